/* Terminal routes beyond reading one (docs/api.md "Terminals"): the list with filters and
 * paging; create, change, remove and secret rotation (admin); status and session history.
 *
 * Changes go through the store writer as account ops (STORE_ACCT_TERMINAL_*) with their audit
 * row in the same transaction and are answered, deferred, once committed. The running server
 * sees them as it sees the admin CLI's: a new terminal can log in at once (the gateway reads the
 * terminal at each login), a removal or new secret ends the terminal's session within a second
 * (credentials_version, gw__check_credentials), and changed name, ratios, declared voltage or
 * nominal frequency apply from the terminal's next login (the gateway reads them at login).
 *
 * Secrets: 32 random bytes, shown once as 64 hex digits. They are sealed under the master key
 * here, on the thread that owns the keyed store (the writer thread has no key: keys.c swaps the
 * key on the owner thread after a rotation by another process), and the writer writes the row
 * only while that key is still the database's; if a rotation slipped in between (GS_EBUSY) the
 * secret is sealed again once and resubmitted.
 */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "gstp/gstp.h"

#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 1000
#define MAX_LIMIT     10000

/* ---- shared helpers (internal.h) ----------------------------------------------------------- */

int api__rest_path_terminal(rq_t *q, store_terminal_t *t)
{
    if (!q->param || strlen(q->param) > GSTP_MAX_ID || !gstp_valid_id(q->param)) {
        api__error(q->resp, 404, "not_found", "no such terminal");
        return -1;
    }
    int rc = store_terminal_info(q->a->st, q->param, t);
    if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 404, "not_found", "no such terminal");
        return -1;
    }
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return -1;
    }
    return 0;
}

int api__rest_path_id(rq_t *q, const char *what, int64_t *id)
{
    if (!q->param || parse_i64(q->param, 1, INT64_MAX, id) < 0) {
        api__error(q->resp, 404, "not_found", what);
        return -1;
    }
    return 0;
}

int api__rest_list_params(rq_t *q, int64_t *from, int64_t *to, int *limit, int max_limit,
                          int64_t *before)
{
    const char *qs = q->req->query;
    char v[64];
    int rc;
    *from = INT64_MIN;
    *to = INT64_MAX;
    if ((rc = api__qparam(qs, "from", v, sizeof v)) != 0 && (rc < 0 || api_parse_time(v, from) < 0))
        return api__error(q->resp, 400, "bad_request",
                          "from: ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z"),
               -1;
    if ((rc = api__qparam(qs, "to", v, sizeof v)) != 0 && (rc < 0 || api_parse_time(v, to) < 0))
        return api__error(q->resp, 400, "bad_request",
                          "to: ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z"),
               -1;
    if ((rc = api__qparam(qs, "limit", v, sizeof v)) != 0) {
        int64_t l;
        if (rc < 0 || parse_i64(v, 1, max_limit, &l) < 0) {
            char m[64];
            snprintf(m, sizeof m, "limit: 1..%d", max_limit);
            return api__error(q->resp, 400, "bad_request", m), -1;
        }
        *limit = (int)l;
    }
    if (before) {
        *before = 0;
        if ((rc = api__qparam(qs, "before", v, sizeof v)) != 0 &&
            (rc < 0 || parse_i64(v, 1, INT64_MAX, before) < 0))
            return api__error(q->resp, 400, "bad_request",
                              "before: the id of the last item of the previous page"),
                   -1;
    }
    return 0;
}

/* ---- list --------------------------------------------------------------------------------- */

typedef struct {
    api_t *a;
    buf_t *b;
    int online; /* -1 any, 0 offline, 1 online */
    int limit, n, more;
    char last[GSTP_MAX_ID + 1];
} tlist_t;

static int tlist_cb(void *ud, const store_terminal_t *t)
{
    tlist_t *x = ud;
    if (x->online >= 0) {
        /* Online is the gateway's runtime state (and, with several nodes, the cluster's copy
         * of the live list), not a column: filtered here, so a page may walk past many rows to
         * fill; each look is a hash lookup (and a binary search). */
        int on = api__terminal_online(x->a, t->id);
        if (on != x->online)
            return 0;
    }
    if (x->n == x->limit) {
        x->more = 1;
        return 1;
    }
    if (x->n++)
        buf_putc(x->b, ',');
    api__terminal_json(x->a, x->b, t, 0);
    snprintf(x->last, sizeof x->last, "%s", t->id);
    return 0;
}

void api__terminals(rq_t *q)
{
    const char *qs = q->req->query;
    char v[16], search[65] = "", after[GSTP_MAX_ID + 1] = "";
    tlist_t x = {.a = q->a, .b = &q->resp->body, .online = -1, .limit = DEFAULT_LIMIT};
    int rc;
    if ((rc = api__qparam(qs, "online", v, sizeof v)) != 0) {
        if (rc < 0 || (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)) {
            api__error(q->resp, 400, "bad_request", "online: true or false");
            return;
        }
        x.online = v[0] == 't';
    }
    if ((rc = api__qparam(qs, "search", search, sizeof search)) < 0) {
        api__error(q->resp, 400, "bad_request", "search: at most 64 bytes");
        return;
    }
    if ((rc = api__qparam(qs, "after", after, sizeof after)) != 0 &&
        (rc < 0 || !gstp_valid_id(after))) {
        api__error(q->resp, 400, "bad_request", "after: a terminal id (the last of a page)");
        return;
    }
    if ((rc = api__qparam(qs, "limit", v, sizeof v)) != 0) {
        int64_t l;
        if (rc < 0 || parse_i64(v, 1, MAX_LIMIT, &l) < 0) {
            api__error(q->resp, 400, "bad_request", "limit: 1..10000");
            return;
        }
        x.limit = (int)l;
    }
    buf_puts(x.b, "{\"terminals\":[");
    rc = store_terminal_query(q->a->st, after, search, tlist_cb, &x);
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(x.b, "],\"next_after\":");
    if (x.more)
        buf_json_str(x.b, x.last, (size_t)-1);
    else
        buf_puts(x.b, "null");
    buf_puts(x.b, "}");
    q->resp->status = 200;
}

/* ---- changes ------------------------------------------------------------------------------ */

/* A terminal change waiting for the writer. */
typedef struct {
    api_t *a;
    web_pending_t *pending;
    int op;
    char tid[GSTP_MAX_ID + 1];
    uint8_t *secret; /* sodium_malloc'ed plaintext (add, rotate): answered once, resealed on a
                        key change */
    int resealed;
} tchange_t;

static void tchange_free(tchange_t *c)
{
    if (c->secret)
        sodium_free(c->secret);
    free(c);
}

static void tchange_done(api_t *a, store_item_t *it, void *ud);

/* Submits acct for c; answers 503 and frees c when that fails. */
static void tchange_submit(tchange_t *c, store_acct_t *acct)
{
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    it->acct = acct;
    if (api__submit(c->a, it, tchange_done, c) < 0) {
        api__reply_error(c->pending, 503, "unavailable", "the server is shutting down");
        tchange_free(c);
    }
}

/* The answer after the commit: the terminal as stored now (and the secret, the only time it is
 * shown). */
static void tchange_reply(tchange_t *c)
{
    buf_t b = {0};
    int status = c->op == STORE_ACCT_TERMINAL_ADD ? 201 : 200;
    if (c->op == STORE_ACCT_TERMINAL_REMOVE) {
        buf_puts(&b, "{\"removed\":");
        buf_json_str(&b, c->tid, (size_t)-1);
        buf_puts(&b, "}");
    } else if (c->op == STORE_ACCT_TERMINAL_SECRET) {
        buf_puts(&b, "{\"id\":");
        buf_json_str(&b, c->tid, (size_t)-1);
    } else {
        store_terminal_t t;
        int rc = store_terminal_info(c->a->st, c->tid, &t);
        if (rc < 0) {
            /* Committed; only the read back failed (or it was removed right after). */
            char m[160];
            snprintf(m, sizeof m, "the change was stored but the terminal cannot be read back: %s",
                     err_str(rc));
            api__reply_error(c->pending, 503, "store_unavailable", m);
            return;
        }
        api__terminal_json(c->a, &b, &t, 0);
        if (c->secret)
            b.len--; /* reopen the object for the secret */
    }
    if (c->secret) {
        char hex[2 * STORE_SECRET_LEN + 1];
        hex_encode(c->secret, STORE_SECRET_LEN, hex);
        buf_printf(&b, ",\"secret\":\"%s\"}", hex);
        sodium_memzero(hex, sizeof hex);
    }
    web_complete(c->pending, status, "application/json", &b);
    if (b.data)
        sodium_memzero(b.data, b.cap);
    buf_free(&b);
}

/* Sealing a secret needs the master key, which only the main loop's store holds (the API's
 * own connection may be a key-less reader): the change goes to the main loop to be sealed and
 * comes back to be submitted. */
typedef struct {
    tchange_t *c;
    store_acct_t *acct;
    int rc;
} seal_job_t;

static void seal_back(void *arg, int status)
{
    seal_job_t *j = arg;
    tchange_t *c = j->c;
    if (status < 0 || j->rc < 0) {
        api__reply_error(c->pending, 503, status < 0 ? "unavailable" : "store_unavailable",
                              status < 0 ? "the server is shutting down"
                                         : "the master key cannot be loaded; see the server log");
        sodium_memzero(j->acct, sizeof *j->acct);
        free(j->acct);
        tchange_free(c);
    } else {
        tchange_submit(c, j->acct);
    }
    free(j);
}

static void seal_on_main(void *arg)
{
    seal_job_t *j = arg;
    tchange_t *c = j->c;
    j->rc = store_secret_seal(c->a->writer, c->tid, c->secret, j->acct->sealed, j->acct->key_id);
    if (api__call_web(c->a, seal_back, j) < 0) {
        /* The API has stopped (web_stop detached the request): release only. */
        web_complete(c->pending, 503, NULL, NULL);
        sodium_memzero(j->acct, sizeof *j->acct);
        free(j->acct);
        tchange_free(c);
        free(j);
    }
}

/* Seals c's secret into acct on the main loop, then submits; 0, or GS_ECLOSED (nothing done). */
static int seal_then_submit(tchange_t *c, store_acct_t *acct)
{
    seal_job_t *j = xcalloc(1, sizeof *j);
    j->c = c;
    j->acct = acct;
    int rc = api__call_main(c->a, seal_on_main, j);
    if (rc < 0)
        free(j);
    return rc;
}

static void tchange_done(api_t *a, store_item_t *it, void *ud)
{
    tchange_t *c = ud;
    (void)a;
    char msg[192];
    if (it->result == GS_EBUSY && c->secret && !c->resealed && !c->a->stopping) {
        /* The master key was rotated (by `gridsense key rotate`) between sealing and writing:
         * seal under the new key and try once more. */
        store_acct_t *again = xmalloc(sizeof *again);
        *again = *it->acct;
        c->resealed = 1;
        if (seal_then_submit(c, again) == 0)
            return;
        sodium_memzero(again, sizeof *again);
        free(again);
    }
    switch (it->result) {
    case 0:
        log_info(it->acct->audit.remote, "%s %s by %s", it->acct->audit.action,
                 it->acct->audit.target, it->acct->audit.user);
        tchange_reply(c);
        break;
    case GS_EEXISTS:
        api__reply_error(c->pending, 409, "exists", "a terminal with this id exists");
        break;
    case GS_ENOTFOUND:
        api__reply_error(c->pending, 404, "not_found", "no such terminal");
        break;
    case GS_EINVAL:
        api__reply_error(c->pending, 400, "bad_request", "invalid terminal fields");
        break;
    default:
        snprintf(msg, sizeof msg, "the change was not stored: %s", err_str(it->result));
        api__reply_error(c->pending, 503, "store_unavailable", msg);
        break;
    }
    tchange_free(c);
}

/* Starts a change of terminal tid: defers the request; with_secret makes and seals a new one. */
static void tchange_start(rq_t *q, store_acct_t *acct, const char *tid, int with_secret)
{
    tchange_t *c = xcalloc(1, sizeof *c);
    c->a = q->a;
    c->op = acct->op;
    snprintf(c->tid, sizeof c->tid, "%s", tid);
    snprintf(acct->term.id, sizeof acct->term.id, "%s", tid);
    if (with_secret) {
        c->secret = sodium_malloc(STORE_SECRET_LEN);
        if (!c->secret) {
            free(acct);
            tchange_free(c);
            api__error(q->resp, 503, "busy", "out of memory");
            return;
        }
        randombytes_buf(c->secret, STORE_SECRET_LEN);
        if (seal_then_submit(c, acct) < 0) {
            free(acct);
            tchange_free(c);
            api__error(q->resp, 503, "unavailable", "the server is shutting down");
            return;
        }
        /* (the answer comes on this loop after this handler has returned: see post_command) */
        c->pending = web_defer(q->req);
        return;
    }
    /* Submitted first: a refusal (shutting down) is then answered here, not deferred. */
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    it->acct = acct;
    if (api__submit(c->a, it, tchange_done, c) < 0) {
        tchange_free(c);
        api__error(q->resp, 503, "unavailable", "the server is shutting down");
        return;
    }
    c->pending = web_defer(q->req);
}

/* Reads the changeable fields present in root into t, naming them in *fields; answers 400 and
 * returns -1 on a bad value or an unknown key. `allow` lists the keys the route takes besides. */
static int terminal_fields(rq_t *q, json_t *root, store_terminal_t *t, unsigned *fields,
                           const char *allow)
{
    const char *key;
    json_t *v;
    char m[200];
    *fields = 0;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "name") == 0) {
            const char *n = json_string_value(v);
            if (!n || json_string_length(v) >= sizeof t->name || strlen(n) != json_string_length(v))
                goto bad;
            snprintf(t->name, sizeof t->name, "%s", n);
            *fields |= STORE_TERM_F_NAME;
        } else if (strcmp(key, "location") == 0) {
            if (json_is_null(v)) {
                t->has_location = 0;
            } else {
                json_t *la = json_object_get(v, "lat"), *lo = json_object_get(v, "lon");
                if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_number(la) ||
                    !json_is_number(lo))
                    goto bad;
                t->lat = json_number_value(la);
                t->lon = json_number_value(lo);
                if (!(t->lat >= -90 && t->lat <= 90 && t->lon >= -180 && t->lon <= 180))
                    goto bad;
                t->has_location = 1;
            }
            *fields |= STORE_TERM_F_LOCATION;
        } else if (strcmp(key, "nominal_hz") == 0) {
            if (!json_is_integer(v) || (json_integer_value(v) != 50 && json_integer_value(v) != 60))
                goto bad;
            t->nominal_hz = (int)json_integer_value(v);
            *fields |= STORE_TERM_F_NOMINAL_HZ;
        } else if (strcmp(key, "vt_ratio") == 0 || strcmp(key, "ct_ratio") == 0) {
            double r = json_number_value(v);
            if (!json_is_number(v) || !(r >= 1e-6 && r <= 1e9))
                goto bad;
            if (key[0] == 'v') {
                t->vt_ratio = r;
                *fields |= STORE_TERM_F_VT_RATIO;
            } else {
                t->ct_ratio = r;
                *fields |= STORE_TERM_F_CT_RATIO;
            }
        } else if (strcmp(key, "declared_voltage") == 0) {
            double d = json_is_null(v) ? 0 : json_number_value(v);
            if (!json_is_null(v) && (!json_is_number(v) || !(d >= 0 && d <= 1e8)))
                goto bad;
            t->declared_v = d;
            *fields |= STORE_TERM_F_DECLARED_V;
        } else if (!allow || strcmp(key, allow) != 0) {
            snprintf(m, sizeof m,
                     "unknown field \"%.64s\" (fields: name, location, nominal_hz, vt_ratio, "
                     "ct_ratio, declared_voltage)",
                     key);
            api__error(q->resp, 400, "bad_request", m);
            return -1;
        }
        continue;
    bad:
        snprintf(m, sizeof m, "%s: %s", key,
                 strcmp(key, "name") == 0         ? "a string of at most 64 bytes"
                 : strcmp(key, "location") == 0   ? "{\"lat\": -90..90, \"lon\": -180..180} or null"
                 : strcmp(key, "nominal_hz") == 0 ? "50 or 60"
                 : strcmp(key, "declared_voltage") == 0
                     ? "volts (secondary RMS, phase-to-neutral) 0..1e8, or null / 0 to clear"
                     : "a number in 1e-6..1e9");
        api__error(q->resp, 400, "bad_request", m);
        return -1;
    }
    return 0;
}

static void field_names(char *out, size_t cap, unsigned f)
{
    static const char *const names[] = {"name",     "location", "nominal_hz",
                                        "vt_ratio", "ct_ratio", "declared_voltage"};
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < 6; i++)
        if (f & (1u << i))
            o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? "," : "", names[i]);
}

void api__terminals_post(rq_t *q)
{
    json_t *root = api__body_object(q);
    if (!root)
        return;
    const char *id = json_string_value(json_object_get(root, "id"));
    if (!id || strlen(id) > GSTP_MAX_ID || !gstp_valid_id(id)) {
        json_decref(root);
        api__error(q->resp, 400, "bad_request", "id: 1..32 of A-Z a-z 0-9 . _ -");
        return;
    }
    char tid[GSTP_MAX_ID + 1];
    snprintf(tid, sizeof tid, "%s", id);
    char target[64];
    snprintf(target, sizeof target, "terminal %s", tid);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_TERMINAL_ADD, "terminal.add", target);
    store_terminal_t *t = &c->term;
    t->nominal_hz = 50;
    t->vt_ratio = t->ct_ratio = 1;
    unsigned fields;
    if (terminal_fields(q, root, t, &fields, "id") < 0) {
        json_decref(root);
        free(c);
        return;
    }
    json_decref(root);
    t->created_ns = time_utc_ns();
    snprintf(c->audit.detail, sizeof c->audit.detail, "%d Hz, VT %g, CT %g", t->nominal_hz,
             t->vt_ratio, t->ct_ratio);
    tchange_start(q, c, tid, 1);
}

void api__terminal_patch(rq_t *q)
{
    store_terminal_t cur;
    if (api__rest_path_terminal(q, &cur) < 0)
        return;
    json_t *root = api__body_object(q);
    if (!root)
        return;
    char target[64];
    snprintf(target, sizeof target, "terminal %s", cur.id);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_TERMINAL_UPDATE, "terminal.change", target);
    if (terminal_fields(q, root, &c->term, &c->term_fields, NULL) < 0) {
        json_decref(root);
        free(c);
        return;
    }
    json_decref(root);
    if (!c->term_fields) {
        free(c);
        api__error(q->resp, 400, "bad_request",
                   "nothing to change: give one or more of name, location, nominal_hz, "
                   "vt_ratio, ct_ratio, declared_voltage");
        return;
    }
    field_names(c->audit.detail, sizeof c->audit.detail, c->term_fields);
    tchange_start(q, c, cur.id, 0);
}

void api__terminal_delete(rq_t *q)
{
    store_terminal_t cur;
    if (api__rest_path_terminal(q, &cur) < 0)
        return;
    char target[64];
    snprintf(target, sizeof target, "terminal %s", cur.id);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_TERMINAL_REMOVE, "terminal.remove", target);
    tchange_start(q, c, cur.id, 0);
}

void api__terminal_secret_post(rq_t *q)
{
    store_terminal_t cur;
    if (api__rest_path_terminal(q, &cur) < 0)
        return;
    char target[64];
    snprintf(target, sizeof target, "terminal %s", cur.id);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_TERMINAL_SECRET, "terminal.secret", target);
    tchange_start(q, c, cur.id, 1);
}

/* ---- history ------------------------------------------------------------------------------ */

typedef struct {
    buf_t *b;
    int n, limit;
    int64_t last_id;
} hist_t;

/* `,"name":v` or null for STORE_NA; scale 0: integer, else value / scale with `digits`. */
static void na_field(buf_t *b, const char *name, int64_t v, double scale, int digits)
{
    if (v == STORE_NA)
        buf_printf(b, ",\"%s\":null", name);
    else if (scale)
        buf_printf(b, ",\"%s\":%.*f", name, digits, (double)v / scale);
    else
        buf_printf(b, ",\"%s\":%lld", name, (long long)v);
}

static int status_cb(void *ud, const store_status_t *s)
{
    hist_t *h = ud;
    if (h->n++)
        buf_putc(h->b, ',');
    buf_printf(h->b, "{\"id\":%lld", (long long)s->id);
    api__ts_json(h->b, "time", s->time_ns);
    api__ts_json(h->b, "received", s->received_ns);
    /* Field names and units as in GET /terminals/{id} "status". */
    na_field(h->b, "rsrp_dbm", s->rsrp_dbm, 0, 0);
    na_field(h->b, "rssi_dbm", s->rssi_dbm, 0, 0);
    na_field(h->b, "csq", s->csq, 0, 0);
    na_field(h->b, "supply_v", s->supply_mv, 1000.0, 3);
    na_field(h->b, "temperature_c", s->temp_c10, 10.0, 1);
    na_field(h->b, "uptime_s", s->uptime_s, 0, 0);
    na_field(h->b, "gps_fix", s->gps_fix, 0, 0);
    na_field(h->b, "gps_sats", s->gps_sats, 0, 0);
    na_field(h->b, "time_quality", s->time_quality, 0, 0);
    na_field(h->b, "buffer_permille", s->buffer_permille, 0, 0);
    na_field(h->b, "buffered_blocks", s->buffered_blocks, 0, 0);
    buf_putc(h->b, '}');
    h->last_id = s->id;
    return 0;
}

static int session_cb(void *ud, const store_session_t *s)
{
    hist_t *h = ud;
    if (h->n++)
        buf_putc(h->b, ',');
    /* session_id as a string: the gateway's ids use all 64 bits, beyond the 2^53 a JavaScript
     * number holds exactly */
    buf_printf(h->b, "{\"id\":%lld,\"session_id\":\"%llu\",\"remote\":", (long long)s->id,
               (unsigned long long)s->session_id);
    if (s->remote[0])
        buf_json_str(h->b, s->remote, (size_t)-1);
    else
        buf_puts(h->b, "null");
    api__ts_json(h->b, "connected", s->opened_ns);
    api__ts_json(h->b, "disconnected", s->closed_ns);
    buf_puts(h->b, ",\"reason\":");
    if (s->closed_ns && s->reason[0])
        buf_json_str(h->b, s->reason, (size_t)-1);
    else
        buf_puts(h->b, "null");
    if (s->closed_ns)
        buf_printf(h->b, ",\"duration_s\":%.3f", (double)(s->closed_ns - s->opened_ns) / 1e9);
    else
        buf_puts(h->b, ",\"duration_s\":null");
    na_field(h->b, "frames", s->frames, 0, 0);
    na_field(h->b, "bytes", s->bytes, 0, 0);
    na_field(h->b, "blocks", s->blocks, 0, 0);
    buf_putc(h->b, '}');
    h->last_id = s->id;
    return 0;
}

static void history(rq_t *q, int sessions)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    int64_t from, to, before;
    hist_t h = {.b = &q->resp->body, .limit = 100};
    if (api__rest_list_params(q, &from, &to, &h.limit, MAX_LIMIT, &before) < 0)
        return;
    buf_puts(h.b, "{\"terminal\":");
    buf_json_str(h.b, t.id, (size_t)-1);
    buf_puts(h.b, sessions ? ",\"sessions\":[" : ",\"status\":[");
    int rc = sessions
                 ? store_session_list(q->a->st, t.id, from, to, before, h.limit, session_cb, &h)
                 : store_status_list(q->a->st, t.id, from, to, before, h.limit, status_cb, &h);
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(h.b, "],\"next_before\":");
    if (h.n == h.limit)
        buf_printf(h.b, "%lld}", (long long)h.last_id);
    else
        buf_puts(h.b, "null}");
    q->resp->status = 200;
}

void api__terminal_status(rq_t *q)
{
    history(q, 0);
}

void api__terminal_sessions(rq_t *q)
{
    history(q, 1);
}
