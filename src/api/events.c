/* Event routes (docs/api.md "Events"): the fleet and per-terminal lists with filters (kind,
 * terminal, time, acknowledged) and paging, one event, and an operator's acknowledgement (who and
 * when, schema migration 8, with its audit row event.ack in the same transaction). Moved here
 * from routes.c, which listed events without filters or acknowledgement. */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "gstp/gstp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An event's `"channels":[...],"worst_channel":"..."` by name, as `gridsense analyze` prints
 * them (ana_json_event_channels): the names recorded at detection, or for an event stored before
 * they were (schema migration 5) "chN" from the mask bits and the worst index, the one name that
 * is right whatever the terminal's channel layout was then (docs/api.md). */
static void event_channels(buf_t *b, const store_pq_event_t *e)
{
    char name[16];
    buf_puts(b, "\"channels\":[");
    if (e->has_names) {
        int n = 0;
        for (const char *p = e->channel_names; *p;) {
            size_t len = strcspn(p, ",");
            if (len) {
                if (n++)
                    buf_putc(b, ',');
                buf_json_str(b, p, len); /* escaped: the column is plain text in the database */
            }
            p += len + (p[len] == ',');
        }
    } else {
        for (int c = 0, n = 0; c < 32; c++)
            if (e->channels & (1u << c))
                buf_printf(b, "%s\"ch%d\"", n++ ? "," : "", c);
    }
    buf_puts(b, "],\"worst_channel\":");
    if (e->has_names) {
        buf_json_str(b, e->worst_channel_name, (size_t)-1);
    } else {
        name[0] = 0;
        if (e->worst_channel >= 0 && e->worst_channel < 32)
            snprintf(name, sizeof name, "ch%d", e->worst_channel);
        buf_json_str(b, name, (size_t)-1);
    }
}

void api__event_json(buf_t *b, const store_pq_event_ack_t *a)
{
    const store_pq_event_t *e = &a->e;
    char t[40];
    buf_printf(b, "{\"id\":%lld,\"terminal\":", (long long)e->id);
    buf_json_str(b, e->terminal_id, (size_t)-1);
    buf_puts(b, ",\"kind\":");
    buf_json_str(b, e->kind, (size_t)-1);
    buf_printf(b, ",\"start\":\"%s\",\"start_ns\":%lld,", time_fmt_utc(e->start_ns, t, sizeof t),
               (long long)e->start_ns);
    buf_printf(b,
               "\"duration_s\":%.6f,\"%s\":%.6g,\"%s_pct\":%.4f,\"reference\":%.6g,"
               "\"reference_kind\":\"%s\",",
               (double)e->duration_ns / 1e9, strcmp(e->kind, "swell") ? "residual" : "maximum",
               e->extreme, strcmp(e->kind, "swell") ? "residual" : "maximum", e->extreme_pct,
               e->reference, (e->flags & 2) ? "sliding" : "declared");
    event_channels(b, e);
    buf_printf(b, ",\"cut_short\":%s,\"acked\":%s,\"acked_by\":", (e->flags & 1) ? "true" : "false",
               a->acked_ns ? "true" : "false");
    if (a->acked_ns)
        buf_json_str(b, a->acked_by, (size_t)-1);
    else
        buf_puts(b, "null");
    api__ts_json(b, "acked_at", a->acked_ns);
    buf_putc(b, '}');
}

typedef struct {
    buf_t *b;
    int n;
    int64_t last_id;
} elist_t;

static int elist_cb(void *ud, const store_pq_event_ack_t *e)
{
    elist_t *x = ud;
    if (x->n++)
        buf_putc(x->b, ',');
    api__event_json(x->b, e);
    x->last_id = e->e.id;
    return 0;
}

static void list_events(rq_t *q, const char *tid)
{
    const char *qs = q->req->query;
    char v[16], kind[16], term[GSTP_MAX_ID + 1];
    store_pq_event_filter_t f = {.acked = -1, .limit = 100, .terminal_id = tid};
    int rc;
    if (api__rest_list_params(q, &f.from_ns, &f.to_ns, &f.limit, 10000, &f.before_id) < 0)
        return;
    if ((rc = api__qparam(qs, "acked", v, sizeof v)) != 0) {
        if (rc < 0 || (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)) {
            api__error(q->resp, 400, "bad_request", "acked: true or false");
            return;
        }
        f.acked = v[0] == 't';
    }
    if ((rc = api__qparam(qs, "kind", kind, sizeof kind)) != 0) {
        if (rc < 0 || (strcmp(kind, "dip") != 0 && strcmp(kind, "swell") != 0 &&
                       strcmp(kind, "interruption") != 0)) {
            api__error(q->resp, 400, "bad_request", "kind: dip, swell or interruption");
            return;
        }
        f.kind = kind;
    }
    if (!tid && (rc = api__qparam(qs, "terminal", term, sizeof term)) != 0) {
        if (rc < 0 || !gstp_valid_id(term)) {
            api__error(q->resp, 400, "bad_request", "terminal: a terminal id");
            return;
        }
        f.terminal_id = term;
    }
    elist_t x = {.b = &q->resp->body};
    buf_puts(x.b, "{\"events\":[");
    rc = store_pq_event_query(q->a->st, &f, elist_cb, &x);
    if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 400, "bad_request", "before: no event with this id");
        return;
    }
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(x.b, "],\"next_before\":");
    if (x.n == f.limit)
        buf_printf(x.b, "%lld}", (long long)x.last_id);
    else
        buf_puts(x.b, "null}");
    q->resp->status = 200;
}

void api__events(rq_t *q)
{
    list_events(q, NULL);
}

void api__terminal_events(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    list_events(q, t.id);
}

typedef struct {
    int found;
    store_pq_event_ack_t e;
} one_t;

static int one_cb(void *ud, const store_pq_event_ack_t *e)
{
    one_t *o = ud;
    o->found = 1;
    o->e = *e;
    return 1;
}

/* The event with that id: 0, GS_ENOTFOUND or a store error. */
static int event_read(api_t *a, int64_t id, one_t *o)
{
    store_pq_event_filter_t f = {.id = id, .limit = 1};
    memset(o, 0, sizeof *o);
    int rc = store_pq_event_query(a->st, &f, one_cb, o);
    return rc < 0 ? rc : o->found ? 0 : GS_ENOTFOUND;
}

int api_event_json(store_t *st, int64_t id, buf_t *b)
{
    store_pq_event_filter_t f = {.id = id, .limit = 1};
    one_t o;
    memset(&o, 0, sizeof o);
    int rc = store_pq_event_query(st, &f, one_cb, &o);
    if (rc < 0)
        return rc;
    if (!o.found)
        return GS_ENOTFOUND;
    api__event_json(b, &o.e);
    return 0;
}

int api__event_get_json(api_t *a, int64_t id, buf_t *b)
{
    one_t o;
    int rc = event_read(a, id, &o);
    if (rc == 0)
        api__event_json(b, &o.e);
    return rc;
}

void api__event_get(rq_t *q)
{
    int64_t id;
    if (api__rest_path_id(q, "no such event", &id) < 0)
        return;
    one_t o;
    int rc = event_read(q->a, id, &o);
    if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 404, "not_found", "no such event");
        return;
    }
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    api__event_json(&q->resp->body, &o.e);
    q->resp->status = 200;
}

typedef struct {
    web_pending_t *pending;
    int64_t id;
} ack_t;

static void ack_done(api_t *a, store_item_t *it, void *ud)
{
    ack_t *x = ud;
    one_t o;
    char msg[192];
    int rc = event_read(a, x->id, &o);
    if (it->result == 0 && rc == 0) {
        buf_t b = {0};
        api__event_json(&b, &o.e);
        web_complete(x->pending, 200, "application/json", &b);
        log_info(it->acct->audit.remote, "event %lld acknowledged by %s", (long long)x->id,
                 it->acct->user);
    } else if (it->result == GS_ENOTFOUND) {
        api__reply_error(x->pending, 404, "not_found", "no such event");
    } else if (it->result == GS_ESTATE) {
        char t[40];
        snprintf(msg, sizeof msg, "event %lld was already acknowledged by %s at %s",
                 (long long)x->id, rc == 0 ? o.e.acked_by : "someone",
                 rc == 0 ? time_fmt_utc(o.e.acked_ns, t, sizeof t) : "an earlier time");
        api__reply_error(x->pending, 409, "conflict", msg);
    } else {
        snprintf(msg, sizeof msg, "the acknowledgement was not stored: %s",
                 err_str(it->result ? it->result : rc));
        api__reply_error(x->pending, 503, "store_unavailable", msg);
    }
    free(x);
}

void api__event_ack(rq_t *q)
{
    int64_t id;
    if (api__rest_path_id(q, "no such event", &id) < 0)
        return;
    char target[64];
    snprintf(target, sizeof target, "event %lld", (long long)id);
    store_acct_t *acct = api__acct_new(q, STORE_ACCT_EVENT_ACK, "event.ack", target);
    acct->object_id = id;
    snprintf(acct->user, sizeof acct->user, "%s", q->who.user);
    ack_t *x = xcalloc(1, sizeof *x);
    x->id = id;
    if (api__acct_submit(q, acct, ack_done, x) < 0) {
        free(x);
        api__error(q->resp, 503, "unavailable", "the server is shutting down");
        return;
    }
    x->pending = web_defer(q->req);
}
