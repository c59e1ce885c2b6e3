/* Export routes: GET /api/v1/terminals/{id}/export and GET /api/v1/events/{id}/export
 * (docs/api.md "Export"): a stored range as a COMTRADE record (zip of .cfg/.dat/.hdr, or one
 * .cff) or as CSV, streamed through web_response_t.stream (src/export reads the blocks one time
 * window at a time on this loop's store connection, between writes: constant memory, and other
 * requests are served in between). One request covers at most EXPORT_HTTP_MAX_RANGE_NS (a day;
 * the CLI has no bound). */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "export/export.h"
#include "gstp/gstp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_PRE_NS  500000000LL  /* as the event waveform (src/wave WAVE_EVENT_PRE_NS) */
#define EV_POST_NS 1000000000LL

typedef struct {
    export_t *ex;
    char tid[GSTP_MAX_ID + 1];
} stream_ctx_t;

static int stream_next(void *ud, buf_t *out)
{
    stream_ctx_t *c = ud;
    char err[256] = "";
    int rc = export_next(c->ex, out, err, sizeof err);
    if (rc < 0)
        log_warn(c->tid, "export cut short: %s", err);
    return rc;
}

static void stream_free(void *ud)
{
    stream_ctx_t *c = ud;
    export_free(c->ex);
    free(c);
}

/* A time parameter; 1 set, 0 absent, -1 after answering 400. */
static int time_param(rq_t *q, const char *name, int64_t *out)
{
    char v[64], m[96];
    int rc = api__qparam(q->req->query, name, v, sizeof v);
    if (rc == 0)
        return 0;
    if (rc > 0 && api_parse_time(v, out) == 0)
        return 1;
    snprintf(m, sizeof m, "%s: ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z", name);
    api__error(q->resp, 400, "bad_request", m);
    return -1;
}

/* An enumerated parameter: index into names (default def when absent), -1 after a 400. */
static int enum_param(rq_t *q, const char *name, const char *const *names, int def)
{
    char v[32], m[160];
    int rc = api__qparam(q->req->query, name, v, sizeof v);
    if (rc == 0)
        return def;
    for (int i = 0; rc > 0 && names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    size_t len = (size_t)snprintf(m, sizeof m, "%s:", name);
    for (int i = 0; names[i] && len < sizeof m; i++)
        len += (size_t)snprintf(m + len, sizeof m - len, "%s %s", i ? "," : "", names[i]);
    api__error(q->resp, 400, "bad_request", m);
    return -1;
}

/* The options every export shares (format, dat, revision, side, container, what, interval);
 * 0 or -1 after answering 400. */
static int parse_opts(rq_t *q, export_opts_t *o)
{
    static const char *const formats[] = {"comtrade", "csv", NULL};
    static const char *const dats[] = {"binary", "binary32", "float32", "ascii", NULL};
    static const comtrade_ft_t dat_ft[] = {COMTRADE_BINARY, COMTRADE_BINARY32, COMTRADE_FLOAT32,
                                           COMTRADE_ASCII};
    static const char *const revs[] = {"2013", "1999", NULL};
    static const char *const sides[] = {"primary", "secondary", NULL};
    static const char *const containers[] = {"zip", "cff", NULL};
    static const char *const whats[] = {"waveform", "measurements", NULL};
    static const char *const intervals[] = {"10min", "3s", "10s", "2h", NULL};
    int f, d, r, s, c, w, iv;
    if ((f = enum_param(q, "format", formats, 0)) < 0 || (d = enum_param(q, "dat", dats, 0)) < 0 ||
        (r = enum_param(q, "revision", revs, 0)) < 0 || (s = enum_param(q, "side", sides, 0)) < 0 ||
        (c = enum_param(q, "container", containers, 0)) < 0 ||
        (w = enum_param(q, "what", whats, 0)) < 0 ||
        (iv = enum_param(q, "interval", intervals, 0)) < 0)
        return -1;
    o->what = f == 0 ? EXPORT_COMTRADE : w == 1 ? EXPORT_CSV_MEASUREMENTS : EXPORT_CSV_WAVEFORM;
    o->ft = dat_ft[d];
    o->rev_year = r == 1 ? 1999 : 2013;
    o->side = s == 1 ? EXPORT_SECONDARY : EXPORT_PRIMARY;
    o->container = c == 1 ? EXPORT_CFF : EXPORT_ZIP;
    o->interval = intervals[iv];
    return 0;
}

/* Opens the export and answers: 200 with the stream, or the error. */
static void start(rq_t *q, export_opts_t *o)
{
    char err[256] = "";
    if (o->what != EXPORT_CSV_MEASUREMENTS &&
        (uint64_t)o->to_ns - (uint64_t)o->from_ns > (uint64_t)EXPORT_HTTP_MAX_RANGE_NS) {
        api__error(q->resp, 400, "bad_request",
                   "the range is longer than one day: split it, or use gridsense export");
        return;
    }
    export_t *ex = NULL;
    int rc = export_open(q->a->st, o, &ex, err, sizeof err);
    if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 404, "not_found", err);
        return;
    }
    if (rc == GS_EINVAL) {
        api__error(q->resp, 400, "bad_request", err);
        return;
    }
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err[0] ? err : err_str(rc));
        return;
    }
    if (o->what != EXPORT_CSV_MEASUREMENTS && export_empty(ex)) {
        export_free(ex);
        api__error(q->resp, 404, "not_found", "no waveform stored in this range");
        return;
    }
    char base[160];
    export_basename(o->terminal_id, o->from_ns, base, sizeof base);
    stream_ctx_t *c = xcalloc(1, sizeof *c);
    c->ex = ex;
    snprintf(c->tid, sizeof c->tid, "%s", o->terminal_id);
    /* ids are [A-Za-z0-9._-]: the name needs no quoting beyond the quotes */
    buf_printf(&q->resp->headers, "Content-Disposition: attachment; filename=\"%s%s.%s\"\r\n",
               base, o->what == EXPORT_CSV_MEASUREMENTS ? "_measurements" : "", export_ext(o));
    q->resp->status = 200;
    q->resp->content_type = export_mime(o);
    q->resp->stream = stream_next;
    q->resp->stream_free = stream_free;
    q->resp->stream_ud = c;
}

void api__terminal_export(rq_t *q)
{
    if (!q->param || strlen(q->param) > GSTP_MAX_ID || !gstp_valid_id(q->param)) {
        api__error(q->resp, 404, "not_found", "no such terminal");
        return;
    }
    export_opts_t o = {.terminal_id = q->param};
    int hf, ht;
    if ((hf = time_param(q, "from", &o.from_ns)) < 0 || (ht = time_param(q, "to", &o.to_ns)) < 0)
        return;
    if (!hf || !ht) {
        api__error(q->resp, 400, "bad_request", "from and to are required");
        return;
    }
    if (o.from_ns >= o.to_ns) {
        api__error(q->resp, 400, "bad_request", "the range is empty: from must be before to");
        return;
    }
    if (parse_opts(q, &o) < 0)
        return;
    start(q, &o);
}

void api__event_export(rq_t *q)
{
    int64_t id;
    if (!q->param || parse_i64(q->param, 1, INT64_MAX, &id) < 0) {
        api__error(q->resp, 404, "not_found", "no such event");
        return;
    }
    int64_t pre = EV_PRE_NS, post = EV_POST_NS;
    const char *names[2] = {"pre", "post"};
    int64_t *dst[2] = {&pre, &post};
    for (int i = 0; i < 2; i++) {
        char v[32];
        int rc = api__qparam(q->req->query, names[i], v, sizeof v);
        if (rc == 0)
            continue;
        double s;
        if (rc < 0 || parse_double(v, 0, 60, &s) < 0) {
            char m[64];
            snprintf(m, sizeof m, "%s: seconds, 0..60", names[i]);
            api__error(q->resp, 400, "bad_request", m);
            return;
        }
        *dst[i] = (int64_t)(s * 1e9 + 0.5);
    }
    export_opts_t o = {0};
    if (parse_opts(q, &o) < 0)
        return;
    if (o.what == EXPORT_CSV_MEASUREMENTS) {
        api__error(q->resp, 400, "bad_request", "what: an event export is a waveform");
        return;
    }
    store_pq_event_t e;
    int rc = store_pq_event_get(q->a->st, id, &e);
    if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 404, "not_found", "no such event");
        return;
    }
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    o.terminal_id = e.terminal_id;
    o.from_ns = e.start_ns - pre;
    o.to_ns = e.start_ns + (e.duration_ns > 0 ? e.duration_ns : 0) + post;
    o.trigger_ns = e.start_ns;
    char hdr[160];
    snprintf(hdr, sizeof hdr, "event: %lld (%s), trigger = its start", (long long)id, e.kind);
    o.hdr = hdr;
    start(q, &o);
}
