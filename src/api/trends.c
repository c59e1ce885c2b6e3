/* Trend routes (docs/api.md "Trends"): one quantity of one terminal's 10min / 2h aggregates
 * over any span (GET /api/v1/terminals/{id}/trend), and a fleet-wide ranking of a quantity's
 * statistic per terminal (GET /api/v1/measurements/ranking). Both read table measurement_trend
 * (src/store/trend.c) by its primary key, never the JSON documents.
 */
#include "api/internal.h"

#include "core/err.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TREND_DEFAULT_LIMIT 100000
#define TREND_MAX_LIMIT     100000 /* two years of 10-min values */
#define RANK_DEFAULT_LIMIT  100
#define RANK_MAX_LIMIT      10000
#define WEEK_NS             (7LL * 86400LL * 1000000000LL)

/* quantity= (required); -1 after answering 400 with the list of names. */
static int quantity_param(rq_t *q)
{
    char v[32];
    int rc = api__qparam(q->req->query, "quantity", v, sizeof v);
    int n = rc > 0 ? store_trend_quantity(v) : GS_EINVAL;
    if (n >= 0)
        return n;
    char m[400];
    size_t len = (size_t)snprintf(m, sizeof m, "quantity: one of ");
    for (int i = 0; store_trend_quantity_name(i) && len < sizeof m; i++)
        len += (size_t)snprintf(m + len, sizeof m - len, "%s%s", i ? ", " : "",
                                store_trend_quantity_name(i));
    api__error(q->resp, 400, "bad_request", m);
    return -1;
}

/* interval= 10min (default) or 2h into out; -1 after answering 400. */
static int interval_param(rq_t *q, char *out, size_t cap)
{
    snprintf(out, cap, "10min");
    int rc = api__qparam(q->req->query, "interval", out, cap);
    if (rc < 0 || (rc > 0 && strcmp(out, "10min") != 0 && strcmp(out, "2h") != 0)) {
        api__error(q->resp, 400, "bad_request", "interval: 10min or 2h");
        return -1;
    }
    return 0;
}

/* Appends v in decimal: a year of 10-min values is 52,560 of them, where printf's cost shows. */
static void put_i64(buf_t *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *q = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    buf_append(b, q, (size_t)(e - q));
}

/* A value as JSON: 9 significant digits, null for NaN (the aggregate had none). */
static void put_value(buf_t *b, double v)
{
    if (isfinite(v))
        buf_printf(b, "%.9g", v);
    else
        buf_puts(b, "null");
}

typedef struct {
    buf_t t, v;
    int n, limit;
    int64_t last_ns;
    int more;
} trend_ctx_t;

static int on_value(void *ud, int64_t t_end_ns, double value)
{
    trend_ctx_t *x = ud;
    if (x->n == x->limit) {
        x->more = 1; /* the limit + 1st row: there is more */
        return 1;
    }
    if (x->n++) {
        buf_putc(&x->t, ',');
        buf_putc(&x->v, ',');
    }
    put_i64(&x->t, t_end_ns);
    put_value(&x->v, value);
    x->last_ns = t_end_ns;
    return 0;
}

void api__terminal_trend(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    int quantity;
    char interval[16];
    int64_t from, to;
    int limit = TREND_DEFAULT_LIMIT;
    if ((quantity = quantity_param(q)) < 0 || interval_param(q, interval, sizeof interval) < 0 ||
        api__rest_list_params(q, &from, &to, &limit, TREND_MAX_LIMIT, NULL) < 0)
        return;
    if (from > to) {
        api__error(q->resp, 400, "bad_request", "from is later than to");
        return;
    }
    trend_ctx_t x = {.limit = limit};
    buf_reserve(&x.t, (size_t)64 * 1024);
    buf_reserve(&x.v, (size_t)16 * 1024);
    int rc =
        store_trend_read(q->a->st, t.id, interval, quantity, from, to, limit + 1, on_value, &x);
    if (rc < 0) {
        buf_free(&x.t);
        buf_free(&x.v);
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_t *b = &q->resp->body;
    buf_reserve(b, x.t.len + x.v.len + 256);
    buf_puts(b, "{\"terminal_id\":");
    buf_json_str(b, t.id, (size_t)-1);
    buf_printf(b, ",\"quantity\":\"%s\",\"interval\":\"%s\",\"count\":%d,\"t_end_ns\":[",
               store_trend_quantity_name(quantity), interval, x.n);
    if (x.t.len)
        buf_append(b, x.t.data, x.t.len);
    buf_puts(b, "],\"values\":[");
    if (x.v.len)
        buf_append(b, x.v.data, x.v.len);
    if (x.more)
        buf_printf(b, "],\"more\":true,\"next_from\":%" PRId64 "}", x.last_ns);
    else
        buf_puts(b, "],\"more\":false}");
    buf_free(&x.t);
    buf_free(&x.v);
    q->resp->status = 200;
}

typedef struct {
    buf_t *b;
    int n;
} rank_ctx_t;

static int on_rank(void *ud, const store_rank_t *r)
{
    rank_ctx_t *x = ud;
    buf_t *b = x->b;
    buf_puts(b, x->n++ ? ",{\"terminal_id\":" : "{\"terminal_id\":");
    buf_json_str(b, r->terminal_id, (size_t)-1);
    buf_puts(b, ",\"value\":");
    put_value(b, r->value);
    api__ts_json(b, "t_end", r->t_end_ns);
    if (r->t_end_ns)
        buf_printf(b, ",\"t_end_ns\":%" PRId64, r->t_end_ns);
    else
        buf_puts(b, ",\"t_end_ns\":null");
    buf_printf(b, ",\"count\":%" PRId64 "}", r->count);
    return 0;
}

void api__measurements_ranking(rq_t *q)
{
    int quantity;
    char interval[16], v[16];
    int64_t from, to;
    int limit = RANK_DEFAULT_LIMIT;
    if ((quantity = quantity_param(q)) < 0 || interval_param(q, interval, sizeof interval) < 0 ||
        api__rest_list_params(q, &from, &to, &limit, RANK_MAX_LIMIT, NULL) < 0)
        return;
    /* Without a range: the last 7 days up to now. */
    char tmp[64];
    if (api__qparam(q->req->query, "to", tmp, sizeof tmp) == 0)
        to = time_utc_ns();
    if (api__qparam(q->req->query, "from", tmp, sizeof tmp) == 0)
        from = to - WEEK_NS;
    if (from > to) {
        api__error(q->resp, 400, "bad_request", "from is later than to");
        return;
    }
    int stat = STORE_TREND_MAX, rc;
    const char *stat_name = "max";
    if ((rc = api__qparam(q->req->query, "stat", v, sizeof v)) != 0) {
        if (rc > 0 && strcmp(v, "max") == 0)
            stat = STORE_TREND_MAX, stat_name = "max";
        else if (rc > 0 && strcmp(v, "min") == 0)
            stat = STORE_TREND_MIN, stat_name = "min";
        else if (rc > 0 && strcmp(v, "avg") == 0)
            stat = STORE_TREND_AVG, stat_name = "avg";
        else {
            api__error(q->resp, 400, "bad_request", "stat: max, min or avg");
            return;
        }
    }
    /* order: the worst first by default (largest for max and avg, smallest for min) */
    int desc = stat != STORE_TREND_MIN;
    if ((rc = api__qparam(q->req->query, "order", v, sizeof v)) != 0) {
        if (rc > 0 && strcmp(v, "desc") == 0)
            desc = 1;
        else if (rc > 0 && strcmp(v, "asc") == 0)
            desc = 0;
        else {
            api__error(q->resp, 400, "bad_request", "order: desc or asc");
            return;
        }
    }
    buf_t *b = &q->resp->body;
    buf_printf(b, "{\"quantity\":\"%s\",\"interval\":\"%s\",\"stat\":\"%s\",\"order\":\"%s\"",
               store_trend_quantity_name(quantity), interval, stat_name, desc ? "desc" : "asc");
    char ts[40];
    buf_printf(b, ",\"from\":\"%s\",\"from_ns\":%" PRId64, time_fmt_utc(from, ts, sizeof ts), from);
    buf_printf(b, ",\"to\":\"%s\",\"to_ns\":%" PRId64 ",\"ranking\":[",
               time_fmt_utc(to, ts, sizeof ts), to);
    rank_ctx_t x = {.b = b};
    int64_t nterm = 0;
    rc = store_trend_rank(q->a->st, interval, quantity, stat, from, to, desc, limit, &nterm,
                          on_rank, &x);
    if (rc < 0) {
        buf_reset(b);
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_printf(b, "],\"terminals\":%" PRId64 "}", nterm);
    q->resp->status = 200;
}
