/* Trends: single quantities of the 10-min and 2-h aggregates, read fast (contract in store.h,
 * "Trends").
 *
 * The aggregates are JSON documents (table measurements); reading one quantity over a year from
 * them parses 52,560 documents of 1-2 KB each. Table measurement_trend (schema migration of
 * slot 10) keeps the scalar quantities of each 10min/2h row in columns, clustered by
 * (terminal_id, interval, t_end_ns) (WITHOUT ROWID: a terminal's year is one contiguous run of
 * the b-tree). Triggers on measurements fill, update and delete it in the same statement as the
 * aggregate itself, whoever writes (the writer, a re-analysis, retention), so it can never
 * disagree with the documents.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* API name -> column of measurement_trend (the order of the migration's columns). */
static const struct {
    const char *name, *col;
} quantities[] = {
    {"freq", "freq"},
    {"u0_pct", "u0_pct"},
    {"u2_pct", "u2_pct"},
    {"i0_pct", "i0_pct"},
    {"i2_pct", "i2_pct"},
    {"p", "p"},
    {"q", "q"},
    {"s_eff", "s_eff"},
    {"Ua.rms", "ua_rms"},
    {"Ub.rms", "ub_rms"},
    {"Uc.rms", "uc_rms"},
    {"Ia.rms", "ia_rms"},
    {"Ib.rms", "ib_rms"},
    {"Ic.rms", "ic_rms"},
    {"Ua.thd_pct", "ua_thd"},
    {"Ub.thd_pct", "ub_thd"},
    {"Uc.thd_pct", "uc_thd"},
};
#define NQ ((int)(sizeof quantities / sizeof quantities[0]))

int store_trend_quantity(const char *name)
{
    for (int i = 0; name && i < NQ; i++)
        if (strcmp(quantities[i].name, name) == 0)
            return i;
    return GS_EINVAL;
}

const char *store_trend_quantity_name(int q)
{
    return q >= 0 && q < NQ ? quantities[q].name : NULL;
}

static int interval_ok(const char *interval)
{
    return interval && (strcmp(interval, "10min") == 0 || strcmp(interval, "2h") == 0);
}

#define SQL_READ_FMT                                                                               \
    "SELECT t_end_ns, %s FROM measurement_trend WHERE terminal_id = ?1 AND interval = ?2"          \
    " AND t_end_ns > ?3 AND t_end_ns <= ?4 ORDER BY t_end_ns LIMIT ?5"
/* The next terminal holding trend rows after ?1: one index probe per terminal. */
#define SQL_NEXT_TERMINAL                                                                          \
    "SELECT terminal_id FROM measurement_trend WHERE terminal_id > ?1 ORDER BY terminal_id"        \
    " LIMIT 1"
/* One terminal's statistic; with max() / min() SQLite takes t_end_ns from the row holding it. */
#define SQL_RANK_FMT                                                                               \
    "SELECT %s(%s), t_end_ns, count(%s) FROM measurement_trend WHERE terminal_id = ?1 AND"         \
    " interval = ?2 AND t_end_ns > ?3 AND t_end_ns <= ?4"
/* The same on PostgreSQL, which has no bare columns beside an aggregate: the extreme's row by
 * ORDER BY (the earliest of ties, as SQLite's index order gives); for avg the time is 0. */
#define PG_WHERE                                                                                   \
    " FROM measurement_trend WHERE terminal_id = ?1 AND interval = ?2 AND t_end_ns > ?3 AND"       \
    " t_end_ns <= ?4"
#define PG_RANK_EXT_FMT                                                                            \
    "SELECT (SELECT %s" PG_WHERE " AND %s IS NOT NULL ORDER BY %s %s, t_end_ns LIMIT 1),"          \
    " (SELECT t_end_ns" PG_WHERE " AND %s IS NOT NULL ORDER BY %s %s, t_end_ns LIMIT 1),"          \
    " count(%s)" PG_WHERE
#define PG_RANK_AVG_FMT "SELECT avg(%s), 0, count(%s)" PG_WHERE

int store_trend_read(store_t *s, const char *terminal_id, const char *interval, int quantity,
                     int64_t from_ns, int64_t to_ns, int limit,
                     int (*cb)(void *ud, int64_t t_end_ns, double value), void *ud)
{
    if (!terminal_id || !interval_ok(interval) || quantity < 0 || quantity >= NQ || limit < 1)
        return GS_EINVAL;
    char sql[1024];
    snprintf(sql, sizeof sql, SQL_READ_FMT, quantities[quantity].col);
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, sql, &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_text(st, 2, interval, -1);
    sqlx_bind_int64(st, 3, from_ns);
    sqlx_bind_int64(st, 4, to_ns);
    sqlx_bind_int64(st, 5, limit);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        double v = sqlx_column_type(st, 1) == SQLX_NULL ? NAN : sqlx_column_double(st, 1);
        rc = cb(ud, sqlx_column_int64(st, 0), v);
        if (rc != 0)
            goto done;
    }
    if (src != SQLX_DONE)
        rc = store__db_fail(s->db, "read trend");
done:
    sqlx_finalize(st);
    return rc;
}

static int rank_cmp_desc(const void *a, const void *b)
{
    const store_rank_t *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? 1 : -1;
    return strcmp(x->terminal_id, y->terminal_id);
}

static int rank_cmp_asc(const void *a, const void *b)
{
    const store_rank_t *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return strcmp(x->terminal_id, y->terminal_id);
}

int store_trend_rank(store_t *s, const char *interval, int quantity, int stat, int64_t from_ns,
                     int64_t to_ns, int desc, int limit, int64_t *terminals,
                     int (*cb)(void *ud, const store_rank_t *r), void *ud)
{
    if (!interval_ok(interval) || quantity < 0 || quantity >= NQ || limit < 1 ||
        (stat != STORE_TREND_MAX && stat != STORE_TREND_MIN && stat != STORE_TREND_AVG))
        return GS_EINVAL;
    const char *fn = stat == STORE_TREND_MAX ? "max" : stat == STORE_TREND_MIN ? "min" : "avg";
    const char *col = quantities[quantity].col;
    char sql[1024];
    if (sqlx_backend(s->db) != SQLX_POSTGRESQL)
        snprintf(sql, sizeof sql, SQL_RANK_FMT, fn, col, col);
    else if (stat == STORE_TREND_AVG)
        snprintf(sql, sizeof sql, PG_RANK_AVG_FMT, col, col);
    else {
        const char *dir = stat == STORE_TREND_MAX ? "DESC" : "ASC";
        snprintf(sql, sizeof sql, PG_RANK_EXT_FMT, col, col, col, dir, col, col, dir, col);
    }
    sqlx_stmt_t *next = NULL, *one = NULL;
    store_rank_t *v = NULL;
    size_t n = 0, cap = 0;
    int64_t seen = 0;
    char last[STORE_ID_MAX + 1] = "";
    int rc = store__prepare(s->db, SQL_NEXT_TERMINAL, &next);
    if (rc == 0)
        rc = store__prepare(s->db, sql, &one);
    if (rc < 0)
        goto done;
    sqlx_bind_text(one, 2, interval, -1);
    sqlx_bind_int64(one, 3, from_ns);
    sqlx_bind_int64(one, 4, to_ns);
    for (;;) {
        sqlx_bind_text(next, 1, last, -1);
        int src = sqlx_step(next);
        if (src == SQLX_DONE) {
            sqlx_reset(next);
            break;
        }
        if (src != SQLX_ROW) {
            rc = store__db_fail(s->db, "next trend terminal");
            goto done;
        }
        const char *id = sqlx_column_text(next, 0);
        size_t len = id ? (size_t)sqlx_column_bytes(next, 0) : 0;
        if (len > STORE_ID_MAX)
            len = STORE_ID_MAX; /* ids are at most 32 bytes; a longer one would loop: cut */
        memcpy(last, id ? (const char *)id : "", len);
        last[len] = '\0';
        sqlx_reset(next);
        if (!id || len == 0)
            break;
        seen++;
        sqlx_bind_text(one, 1, last, -1);
        src = sqlx_step(one);
        if (src != SQLX_ROW) {
            rc = store__db_fail(s->db, "rank trend");
            goto done;
        }
        if (sqlx_column_type(one, 0) != SQLX_NULL) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                v = xrealloc(v, cap * sizeof *v);
            }
            store_rank_t *r = &v[n++];
            memset(r, 0, sizeof *r);
            snprintf(r->terminal_id, sizeof r->terminal_id, "%s", last);
            r->value = sqlx_column_double(one, 0);
            r->t_end_ns = stat == STORE_TREND_AVG ? 0 : sqlx_column_int64(one, 1);
            r->count = sqlx_column_int64(one, 2);
        }
        sqlx_reset(one);
    }
    if (n > 1)
        qsort(v, n, sizeof *v, desc ? rank_cmp_desc : rank_cmp_asc);
    if (terminals)
        *terminals = (int64_t)n;
    (void)seen;
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        rc = cb(ud, &v[i]);
        if (rc != 0)
            goto done;
    }
    rc = 0;
done:
    sqlx_finalize(next);
    sqlx_finalize(one);
    free(v);
    return rc;
}

int store_trend_plan(store_t *s, char *out, size_t cap)
{
    char read[512], rank[512];
    snprintf(read, sizeof read, SQL_READ_FMT, "u2_pct");
    snprintf(rank, sizeof rank, SQL_RANK_FMT, "max", "u2_pct", "u2_pct");
    const char *names[] = {"trend_read", "trend_next_terminal", "trend_rank"};
    const char *sqls[] = {read, SQL_NEXT_TERMINAL, rank};
    return store__explain(s->db, names, sqls, 3, out, cap);
}
