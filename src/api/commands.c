/* Command routes beyond creation (docs/api.md "Commands"): the fleet-wide and per-terminal lists
 * with state (and terminal) filters and paging, one command, and cancelling a queued one.
 *
 * Cancelling: only a command still `queued` can be cancelled; it then ends in the final state
 * `cancelled` (store_cmd_state_t) and is never sent. The cancel goes to the gateway
 * (gw_command_cancel), which holds the command back until the writer has applied the cancel:
 * the gateway sends a command and submits its `sent` state to the same writer, so either the
 * send was first (the cancel finds `sent` and is refused, 409) or the send never happens. The
 * audit row (command.cancel) commits with the change, or records the refusal.
 */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "gstp/gstp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    buf_t *b;
    int n;
    int64_t last_id;
} clist_t;

static int clist_cb(void *ud, const store_command_t *c)
{
    clist_t *x = ud;
    if (x->n++)
        buf_putc(x->b, ',');
    api_command_json(x->b, c);
    x->last_id = c->id;
    return 0;
}

/* "queued,sent" -> a bit per state; 0 and a 400 answer on an unknown name. */
static int parse_states(rq_t *q, const char *v, unsigned *mask)
{
    *mask = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int s = STORE_CMD_QUEUED; s <= STORE_CMD_CANCELLED; s++) {
            const char *name = store_cmd_state_name(s);
            if (strlen(name) == len && strncmp(name, p, len) == 0) {
                *mask |= 1u << s;
                found = 1;
            }
        }
        if (!found) {
            api__error(q->resp, 400, "bad_request",
                       "state: comma list of queued, sent, acked, done, failed, expired, "
                       "cancelled");
            return -1;
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

/* The fleet list (tid_path NULL: a `terminal` filter may be given) or one terminal's. */
static void list_commands(rq_t *q, const char *tid_path, int limit)
{
    const char *qs = q->req->query;
    char v[96], tid[GSTP_MAX_ID + 1];
    int64_t from, to, before;
    int rc;
    unsigned mask = 0;
    if (api__rest_list_params(q, &from, &to, &limit, 1000, &before) < 0)
        return;
    if ((rc = api__qparam(qs, "state", v, sizeof v)) != 0) {
        if (rc < 0) {
            api__error(q->resp, 400, "bad_request", "state: too long");
            return;
        }
        if (parse_states(q, v, &mask) < 0)
            return;
    }
    const char *term = tid_path;
    if (!term && (rc = api__qparam(qs, "terminal", tid, sizeof tid)) != 0) {
        if (rc < 0 || !gstp_valid_id(tid)) {
            api__error(q->resp, 400, "bad_request", "terminal: a terminal id");
            return;
        }
        term = tid;
    }
    clist_t x = {.b = &q->resp->body};
    buf_puts(x.b, "{\"commands\":[");
    rc = store_command_query(q->a->st, term, mask, from, to, before, limit, clist_cb, &x);
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(x.b, "],\"next_before\":");
    if (x.n == limit)
        buf_printf(x.b, "%lld}", (long long)x.last_id);
    else
        buf_puts(x.b, "null}");
    q->resp->status = 200;
}

void api__commands_get(rq_t *q)
{
    list_commands(q, NULL, 100);
}

/* GET /terminals/{id}/commands (moved here from routes.c): the same filters and paging; up to
 * 1000 by default, as before. */
void api__terminal_commands_get(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    list_commands(q, t.id, 1000);
}

void api__command_get(rq_t *q)
{
    int64_t id;
    if (api__rest_path_id(q, "no such command", &id) < 0)
        return;
    store_command_t *c = xmalloc(sizeof *c);
    int rc = store_command_get(q->a->st, id, c);
    if (rc == 0) {
        api_command_json(&q->resp->body, c);
        q->resp->status = 200;
    } else if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 404, "not_found", "no such command");
    } else {
        api__error(q->resp, 500, "internal", err_str(rc));
    }
    free(c);
}

typedef struct {
    api_t *a;
    web_pending_t *pending;
    int64_t id;
    store_item_t *it; /* the cancel, until handed to the gateway */
    int result;       /* the writer's answer (main loop), read on the API's loop */
    char remote[64], user[STORE_USER_MAX + 1];
} cancel_t;

/* API loop: the answer (status GS_ECLOSED: the API stopped; the request is released). */
static void cancel_answer(void *arg, int status)
{
    cancel_t *x = arg;
    if (status < 0) {
        web_complete(x->pending, 503, NULL, NULL);
        free(x);
        return;
    }
    store_command_t *c = xmalloc(sizeof *c);
    char msg[192];
    int rc = store_command_get(x->a->st, x->id, c);
    const struct {
        int result;
    } item = {x->result}, *it = &item;
    if (it->result == 0 && rc == 0) {
        buf_t b = {0};
        api_command_json(&b, c);
        web_complete(x->pending, 200, "application/json", &b);
        log_info(x->remote, "command %lld cancelled by %s", (long long)x->id, x->user);
    } else if (it->result == GS_ENOTFOUND) {
        api__reply_error(x->pending, 404, "not_found", "no such command");
    } else if (it->result == GS_ESTATE) {
        snprintf(msg, sizeof msg,
                 "command %lld is %s: only a queued command can be cancelled (it may already be "
                 "with the terminal)",
                 (long long)x->id, rc == 0 ? store_cmd_state_name(c->state) : "no longer queued");
        api__reply_error(x->pending, 409, "conflict", msg);
    } else if (it->result == 0) {
        snprintf(msg, sizeof msg, "command %lld was cancelled but cannot be read back: %s",
                 (long long)x->id, err_str(rc));
        api__reply_error(x->pending, 503, "store_unavailable", msg);
    } else {
        snprintf(msg, sizeof msg, "the command was not cancelled: %s", err_str(it->result));
        api__reply_error(x->pending, 503, "store_unavailable", msg);
    }
    free(c);
    free(x);
}

/* Main loop, from the gateway: the writer's answer goes to the API's loop. */
static void cancel_done(void *ud, const store_item_t *it)
{
    cancel_t *x = ud;
    x->result = it->result;
    if (api__call_web(x->a, cancel_answer, x) < 0) {
        web_complete(x->pending, 503, NULL, NULL); /* (detached by web_stop: releases only) */
        free(x);
    }
}

/* Main loop: hands the cancel to the gateway. */
static void cancel_on_main(void *arg)
{
    cancel_t *x = arg;
    store_item_t *it = x->it;
    x->it = NULL;
    if (gw_command_cancel(x->a->gw, it, cancel_done, x) < 0) {
        x->result = GS_ECLOSED; /* the gateway is stopping: nothing was done */
        if (api__call_web(x->a, cancel_answer, x) < 0) {
            web_complete(x->pending, 503, NULL, NULL);
            free(x);
        }
    }
}

void api__command_delete(rq_t *q)
{
    int64_t id;
    if (api__rest_path_id(q, "no such command", &id) < 0)
        return;
    char target[64];
    snprintf(target, sizeof target, "command %lld", (long long)id);
    store_acct_t *acct = api__acct_new(q, STORE_ACCT_COMMAND_CANCEL, "command.cancel", target);
    acct->object_id = id;
    store_command_t *c = xmalloc(sizeof *c);
    if (store_command_get(q->a->st, id, c) == 0)
        snprintf(acct->audit.detail, sizeof acct->audit.detail, "terminal %s, %s", c->terminal_id,
                 api_verb_name(c->verb));
    free(c);
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    it->acct = acct;
    cancel_t *x = xcalloc(1, sizeof *x);
    x->a = q->a;
    x->id = id;
    x->it = it;
    snprintf(x->remote, sizeof x->remote, "%s", q->remote);
    snprintf(x->user, sizeof x->user, "%s", q->who.user);
    /* Through the gateway (on the main loop), which holds the command back until the writer
     * answers; the answer comes back on this loop after this handler has returned. */
    if (api__call_main(q->a, cancel_on_main, x) < 0) {
        store_item_free(it);
        free(x);
        api__error(q->resp, 503, "unavailable", "the server is shutting down");
        return;
    }
    x->pending = web_defer(q->req);
}
