/* Waveform routes: GET /api/v1/terminals/{id}/waveform and GET /api/v1/events/{id}/waveform
 * (docs/api.md "Waveforms"). Parameters are checked here; src/wave reads the stored blocks and
 * writes the reply. */
#include "api/internal.h"

#include "core/err.h"
#include "gstp/gstp.h"
#include "wave/wave.h"

#include <stdio.h>
#include <string.h>

/* side=primary|secondary (default primary); -1 after answering 400. */
static int side_param(rq_t *q)
{
    char v[16];
    int rc = api__qparam(q->req->query, "side", v, sizeof v);
    if (rc == 0)
        return WAVE_SIDE_PRIMARY;
    int side = rc > 0 ? wave_side_parse(v) : GS_EINVAL;
    if (side < 0) {
        api__error(q->resp, 400, "bad_request", "side: primary or secondary");
        return -1;
    }
    return side;
}

/* max_points=1..WAVE_MAX_POINTS (default WAVE_DEFAULT_POINTS); -1 after answering 400. */
static int points_param(rq_t *q)
{
    char v[24];
    int64_t n = WAVE_DEFAULT_POINTS;
    int rc = api__qparam(q->req->query, "max_points", v, sizeof v);
    if (rc != 0 && (rc < 0 || parse_i64(v, 1, WAVE_MAX_POINTS, &n) < 0)) {
        char m[64];
        snprintf(m, sizeof m, "max_points: 1..%d", WAVE_MAX_POINTS);
        api__error(q->resp, 400, "bad_request", m);
        return -1;
    }
    return (int)n;
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

/* The wave module's outcome as an answer. */
static void reply(rq_t *q, int rc, const char *err)
{
    if (rc == 0) {
        q->resp->status = 200;
        return;
    }
    buf_reset(&q->resp->body);
    if (rc == GS_ENOTFOUND)
        api__error(q->resp, 404, "not_found", err[0] ? err : "not found");
    else if (rc == GS_EINVAL)
        api__error(q->resp, 400, "bad_request", err[0] ? err : "invalid parameters");
    else
        api__error(q->resp, 500, "internal", err[0] ? err : err_str(rc));
}

void api__terminal_waveform(rq_t *q)
{
    if (!q->param || strlen(q->param) > GSTP_MAX_ID || !gstp_valid_id(q->param)) {
        api__error(q->resp, 404, "not_found", "no such terminal");
        return;
    }
    wave_req_t w = {.terminal_id = q->param};
    int has_from, has_to;
    if ((has_from = time_param(q, "from", &w.from_ns)) < 0 ||
        (has_to = time_param(q, "to", &w.to_ns)) < 0 || (w.side = side_param(q)) < 0 ||
        (w.max_points = points_param(q)) < 0)
        return;
    /* Without a range: the last 10 s up to now (the live view's default). */
    if (!has_to)
        w.to_ns = time_utc_ns();
    if (!has_from)
        w.from_ns = w.to_ns - 10LL * 1000000000LL;
    char chans[256];
    int rc = api__qparam(q->req->query, "channels", chans, sizeof chans);
    if (rc < 0) {
        api__error(q->resp, 400, "bad_request", "channels: a comma list of channel names");
        return;
    }
    w.channels = rc ? chans : NULL;
    char err[256] = "";
    reply(q, wave_query(q->a->st, &w, &q->resp->body, err, sizeof err), err);
}

void api__event_waveform(rq_t *q)
{
    int64_t id;
    if (!q->param || parse_i64(q->param, 1, INT64_MAX, &id) < 0) {
        api__error(q->resp, 404, "not_found", "no such event");
        return;
    }
    int64_t pre = -1, post = -1;
    char v[32];
    int rc;
    /* pre/post in seconds (0..60), as decimals: "0.5" */
    const char *names[2] = {"pre", "post"};
    int64_t *dst[2] = {&pre, &post};
    for (int i = 0; i < 2; i++) {
        if ((rc = api__qparam(q->req->query, names[i], v, sizeof v)) == 0)
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
    int side, points;
    if ((side = side_param(q)) < 0 || (points = points_param(q)) < 0)
        return;
    char err[256] = "";
    reply(q, wave_event(q->a->st, id, pre, post, points, side, &q->resp->body, err, sizeof err),
          err);
}
