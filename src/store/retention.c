/* Retention: old data leaves the database in small steps, each its own short transaction, and
 * the disk-full alarm of the writer (issue 10; docs/operations.md "Retention", "Disk full").
 *
 * Order of a step: the first table (STORE_RET_* order) with anything due gives up to batch_rows
 * rows (and, for blocks, batch_bytes of samples); tables with nothing due cost one indexed
 * probe each. How each table finds what is due without scanning:
 *  - blocks (raw): in rowid order, which is the order they were stored in (received_ns grows
 *    with the rowid: INTEGER PRIMARY KEY takes max + 1 and the oldest rows are the ones
 *    deleted). The age of a block is the time since it was stored, not its sample time: a
 *    terminal's buffered backlog uploaded late is kept raw_days from its arrival, and a terminal
 *    whose clock is wrong (1970, no GPS yet) does not have its data deleted on arrival. Blocks
 *    kept for an event window or as captures stay behind a cursor (retention_state
 *    'blocks_raw_after': the last rowid examined) so no pass or restart examines them again.
 *  - blocks (kept): past event_days everything goes, again from the first rowid.
 *  - status, aggregates, sessions: rowid order with their time column, the due prefix.
 *  - events, audit: their time index.
 * The event-window check of a block is one probe of pq_events(terminal_id, start_ns) bounded by
 * the longest event (max(duration_ns) by index): an event [s, s + d] protects the blocks that
 * overlap [s - pre, s + d + post].
 */
#include "store/internal.h"
#include "store/pg.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define DAY_NS        86400000000000LL
#define DEF_ROWS      500
#define DEF_BYTES     (8LL << 20)
#define EXAMINE_MUL   4 /* blocks examined per step, as a multiple of batch_rows (kept ones) */
#define MAX_DAYS      36500
#define MAX_PREPOST_S 3600
#define CURSOR_NAME   "blocks_raw_after"

static const char *const NAMES[STORE_RET_NTABLES] = {
    "blocks_raw", "blocks_kept", "status",       "events",         "aggregates",
    "sessions",   "audit",       "pyramid_fine", "pyramid_coarse", "trend"};

const char *store_retention_table_name(int t)
{
    return t >= 0 && t < STORE_RET_NTABLES ? NAMES[t] : "?";
}

int store_retention_check(const store_retention_t *p, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int v;
    } days[] = {{"raw_days", p->raw_days},
                {"event_days", p->event_days},
                {"status_days", p->status_days},
                {"events_days", p->events_days},
                {"aggregates_days", p->aggregates_days},
                {"sessions_days", p->sessions_days},
                {"audit_days", p->audit_days},
                {"pyramid_fine_days", p->pyramid_fine_days}};
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++)
        if (days[i].v < 0 || days[i].v > MAX_DAYS) {
            store__seterr(err, errlen, "%s must be 0 (forever) or 1..%d days, got %d", days[i].name,
                          MAX_DAYS, days[i].v);
            return GS_EINVAL;
        }
    if (p->event_pre_s < 0 || p->event_pre_s > MAX_PREPOST_S || p->event_post_s < 0 ||
        p->event_post_s > MAX_PREPOST_S) {
        store__seterr(err, errlen, "event_pre_s and event_post_s must be 0..%d seconds",
                      MAX_PREPOST_S);
        return GS_EINVAL;
    }
    if (p->raw_days == 0 && p->event_days != 0) {
        store__seterr(err, errlen,
                      "event_days = %d with raw_days = 0 (raw kept forever): the waveform "
                      "around events cannot be kept shorter than the rest; set event_days = 0",
                      p->event_days);
        return GS_EINVAL;
    }
    if (p->event_days != 0 && p->event_days < p->raw_days) {
        store__seterr(err, errlen,
                      "event_days (%d) must be 0 (forever) or at least raw_days (%d): the "
                      "waveform around events is kept longer than the rest, not shorter",
                      p->event_days, p->raw_days);
        return GS_EINVAL;
    }
    return 0;
}

/* The days the pyramid's fine levels (0, 1) are kept (0 = forever): pyramid_fine_days, but at
 * least as long as the raw blocks they summarise (raw_days; 0 keeps them forever too: a zoomed
 * view of a stored block never falls back to a coarser level), and no longer than the coarse
 * levels (aggregates_days) when those go. A setting below raw_days is raised, not refused: the
 * default of 90 must not make a configuration with raw_days = 120 fail to start. */
int store_retention_fine_days(const store_retention_t *p)
{
    int f = p->pyramid_fine_days, a = p->aggregates_days;
    if (p->raw_days == 0)
        f = 0;
    else if (f != 0 && f < p->raw_days)
        f = p->raw_days;
    if (a == 0)
        return f;
    return f == 0 || f > a ? a : f;
}

/* ---- the statements (store_retention_plan shows their query plans) ---- */

#define SQL_CURSOR_GET "SELECT value FROM retention_state WHERE name = ?1"
#define SQL_CURSOR_SET                                                                             \
    "INSERT INTO retention_state(name, value) VALUES(?1, ?2)"                                      \
    " ON CONFLICT(name) DO UPDATE SET value = excluded.value"
#define SQL_MAXDUR "SELECT max(duration_ns) FROM pq_events"
#define SQL_RAW_SELECT                                                                             \
    "SELECT id, terminal_id, kind, coalesce(t0_ns, 0), coalesce(nsamples, 0),"                     \
    " coalesce(sample_rate, 0), length(data), received_ns FROM blocks WHERE id > ?1"               \
    " ORDER BY id LIMIT ?2"
#define SQL_PROTECT                                                                                \
    "SELECT 1 FROM pq_events WHERE terminal_id = ?1 AND start_ns >= ?2 AND start_ns < ?3"          \
    " AND start_ns + duration_ns > ?4 LIMIT 1"
#define SQL_RANGE_DELETE "DELETE FROM blocks WHERE id BETWEEN ?1 AND ?2"
#define SQL_KEPT_SELECT                                                                            \
    "SELECT id, terminal_id, seq, kind, length(data), received_ns FROM blocks ORDER BY id"         \
    " LIMIT ?1"
#define SQL_KEPT_DELETE    "DELETE FROM blocks WHERE id = ?1"
#define SQL_TRIGGER_DELETE "DELETE FROM events WHERE terminal_id = ?1 AND seq = ?2"
/* What the trigger measurements_trend_delete runs for each deleted measurement (migration 12),
 * shown in the plan: a primary-key lookup. */
#define SQL_TREND_DELETE_PLAN                                                                      \
    "DELETE FROM measurement_trend WHERE terminal_id = ?1 AND interval = ?2 AND t_end_ns = ?3"
/* The pyramid (WITHOUT ROWID, primary key (terminal_id, level, bucket_ns)): the terminals one
 * primary-key seek each, then per terminal and level the bound of the oldest batch (OFFSET walks
 * at most batch_rows entries of the key) and a range delete below it. */
#define SQL_PYR_TERMINAL                                                                           \
    "SELECT terminal_id FROM wave_pyramid WHERE terminal_id >= ?1 ORDER BY terminal_id LIMIT 1"
#define SQL_PYR_BOUND                                                                              \
    "SELECT bucket_ns FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2 AND bucket_ns < ?3"  \
    " ORDER BY bucket_ns LIMIT 1 OFFSET ?4"
#define SQL_PYR_DELETE                                                                             \
    "DELETE FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2 AND bucket_ns < ?3"

static void sql_prefix_select(char *out, size_t n, const char *table, const char *col)
{
    snprintf(out, n, "SELECT id, coalesce(%s, 0) FROM %s ORDER BY id LIMIT ?1", col, table);
}

static void sql_prefix_delete(char *out, size_t n, const char *table)
{
    snprintf(out, n, "DELETE FROM %s WHERE id <= ?1", table);
}

static void sql_indexed_delete(char *out, size_t n, const char *table, const char *col)
{
    snprintf(out, n,
             "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE %s < ?1 ORDER BY %s LIMIT ?2)",
             table, table, col, col);
}

/* The tables in rowid order and their date column, and those with a time index. */
static const struct {
    const char *table, *col;
    int indexed;
} TABLES[] = {{"status", "received_ns", 0},
              {"measurements", "t_end_ns", 0},
              {"sessions", "opened_ns", 0},
              {"pq_events", "start_ns", 1},
              {"audit", "time_ns", 1}};

int store_retention_plan(store_t *s, char *out, size_t cap)
{
    const char *fixed[] = {SQL_CURSOR_GET,       SQL_CURSOR_SET,   SQL_MAXDUR,      SQL_RAW_SELECT,
                           SQL_PROTECT,          SQL_RANGE_DELETE, SQL_KEPT_SELECT, SQL_KEPT_DELETE,
                           SQL_TRIGGER_DELETE,   SQL_PYR_TERMINAL, SQL_PYR_BOUND,   SQL_PYR_DELETE,
                           SQL_TREND_DELETE_PLAN};
    char sqls[3 * (sizeof TABLES / sizeof TABLES[0])][256];
    const char *all[sizeof fixed / sizeof fixed[0] + sizeof sqls / sizeof sqls[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        all[n++] = fixed[i];
    size_t k = 0;
    for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++) {
        if (TABLES[i].indexed) {
            sql_indexed_delete(sqls[k], sizeof sqls[k], TABLES[i].table, TABLES[i].col);
            all[n++] = sqls[k++];
        } else {
            sql_prefix_select(sqls[k], sizeof sqls[k], TABLES[i].table, TABLES[i].col);
            all[n++] = sqls[k++];
            sql_prefix_delete(sqls[k], sizeof sqls[k], TABLES[i].table);
            all[n++] = sqls[k++];
        }
    }
    return store__plan(s->db, all, n, out, cap);
}

/* ---- one step ---- */

typedef struct {
    sqlx_t *db;
    const store_retention_t *p;
    char *pyr_at; /* [STORE_ID_MAX + 1]: the pyramid's terminal cursor (store_t.ret_pyr_at) */
    int64_t now;
    int rows;      /* bound per step */
    int64_t bytes; /* bound per step (block bytes) */
} ctx_t;

static int64_t cutoff(const ctx_t *c, int days)
{
    return c->now - (int64_t)days * DAY_NS;
}

/* A single int64 from sql with ?1 bound to a text (NULL: none). def when no row / NULL. */
/* Deletes blocks with id in [lo, hi]. 0 or GS_EDB. */
static int delete_range(sqlx_t *db, sqlx_stmt_t *del, int64_t lo, int64_t hi)
{
    sqlx_bind_int64(del, 1, lo);
    sqlx_bind_int64(del, 2, hi);
    int drc = sqlx_step(del);
    sqlx_reset(del);
    return drc == SQLX_DONE ? 0 : store__db_fail(db, "retention: delete blocks");
}

/* Raw waveform blocks stored before now - raw_days, outside event windows, from the cursor on.
 * Returns rows deleted or GS_EDB; *more when the step stopped at a bound. */
static int64_t step_blocks_raw(const ctx_t *c, store_retention_result_t *res, int *more)
{
    const store_retention_t *p = c->p;
    if (p->raw_days == 0)
        return 0;
    int64_t cut = cutoff(c, p->raw_days), after = 0, maxdur = 0, deleted = 0, bytes = 0;
    int64_t last = -1, examined = 0, limit = (int64_t)c->rows * EXAMINE_MUL;
    int64_t run_lo = -1, run_hi = -1;
    sqlx_stmt_t *sel = NULL, *prot = NULL, *del = NULL, *cur = NULL;
    int64_t rc = store__query_i64(c->db, SQL_CURSOR_GET, CURSOR_NAME, 0, 0, &after, NULL);
    if (rc == 0)
        rc = store__query_i64(c->db, SQL_MAXDUR, NULL, 0, 0, &maxdur, NULL);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_RAW_SELECT, &sel);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_PROTECT, &prot);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_RANGE_DELETE, &del);
    if (rc < 0)
        goto done;
    if (maxdur < 0)
        maxdur = 0;
    int64_t pre = (int64_t)p->event_pre_s * 1000000000LL;
    int64_t post = (int64_t)p->event_post_s * 1000000000LL;
    sqlx_bind_int64(sel, 1, after);
    sqlx_bind_int64(sel, 2, limit);
    int src, due_all = 1;
    while ((src = sqlx_step(sel)) == SQLX_ROW) {
        examined++;
        if (sqlx_column_int64(sel, 7) >= cut) {
            due_all = 0; /* the first block not yet due: nothing after it is either */
            break;
        }
        int64_t id = sqlx_column_int64(sel, 0);
        last = id;
        if ((int)sqlx_column_int64(sel, 2) != 0) {
            res->kept_rows++; /* an EVENT/capture block: event_days */
            goto flush;
        }
        int64_t t0 = sqlx_column_int64(sel, 3), ns = sqlx_column_int64(sel, 4);
        int64_t rate = sqlx_column_int64(sel, 5);
        int64_t end = rate > 0 && ns > 0 ? t0 + (int64_t)((double)ns * 1e9 / (double)rate) : t0;
        /* overlap of [t0, end] with [s - pre, s + d + post]: s < end + pre, s + d > t0 - post,
         * and s >= t0 - post - maxdur follows from the second with d <= maxdur (the index
         * range). */
        sqlx_bind_text(prot, 1, (const char *)sqlx_column_text(sel, 1), -1);
        sqlx_bind_int64(prot, 2, t0 - post - maxdur);
        sqlx_bind_int64(prot, 3, end + pre + 1);
        sqlx_bind_int64(prot, 4, t0 - post);
        int prc = sqlx_step(prot);
        sqlx_reset(prot);
        if (prc == SQLX_ROW) {
            res->kept_rows++;
            goto flush;
        }
        if (prc != SQLX_DONE) {
            rc = store__db_fail(c->db, "retention: event window");
            goto done;
        }
        if (run_lo < 0)
            run_lo = id;
        run_hi = id;
        deleted++;
        bytes += sqlx_column_int64(sel, 6);
        if (deleted >= c->rows || bytes >= c->bytes) {
            *more = 1;
            break;
        }
        continue;
    flush:
        /* a kept block ends a run of deletable ones: one range delete per run (every row of
         * the range was returned above, in id order) */
        if (run_lo >= 0 && (rc = delete_range(c->db, del, run_lo, run_hi)) < 0)
            goto done;
        run_lo = -1;
    }
    if (src != SQLX_ROW && src != SQLX_DONE) {
        rc = store__db_fail(c->db, "retention: read blocks");
        goto done;
    }
    if (run_lo >= 0 && (rc = delete_range(c->db, del, run_lo, run_hi)) < 0)
        goto done;
    if (src == SQLX_ROW && due_all)
        *more = 1; /* stopped at a bound (examined or deleted) with due rows left */
    else if (src == SQLX_DONE && examined == limit)
        *more = 1;
    if (last > after) {
        rc = store__prepare(c->db, SQL_CURSOR_SET, &cur);
        if (rc < 0)
            goto done;
        sqlx_bind_text(cur, 1, CURSOR_NAME, -1);
        sqlx_bind_int64(cur, 2, last);
        if (sqlx_step(cur) != SQLX_DONE) {
            rc = store__db_fail(c->db, "retention: cursor");
            goto done;
        }
    }
    res->rows[STORE_RET_BLOCKS_RAW] += deleted;
    res->block_bytes += bytes;
    rc = deleted;
done:
    sqlx_finalize(sel);
    sqlx_finalize(prot);
    sqlx_finalize(del);
    sqlx_finalize(cur);
    return rc;
}

/* Every block (captures and event windows included) stored before now - event_days, from the
 * first rowid, with the captures' trigger records. */
static int64_t step_blocks_kept(const ctx_t *c, store_retention_result_t *res, int *more)
{
    if (c->p->event_days == 0)
        return 0;
    int64_t cut = cutoff(c, c->p->event_days), deleted = 0, bytes = 0, rc = 0;
    sqlx_stmt_t *sel = NULL, *del = NULL, *dev = NULL;
    rc = store__prepare(c->db, SQL_KEPT_SELECT, &sel);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_KEPT_DELETE, &del);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_TRIGGER_DELETE, &dev);
    if (rc < 0)
        goto done;
    sqlx_bind_int64(sel, 1, c->rows);
    int src, n = 0;
    while ((src = sqlx_step(sel)) == SQLX_ROW) {
        n++;
        if (sqlx_column_int64(sel, 5) >= cut)
            break;
        sqlx_bind_int64(del, 1, sqlx_column_int64(sel, 0));
        int drc = sqlx_step(del);
        sqlx_reset(del);
        if (drc == SQLX_DONE && (int)sqlx_column_int64(sel, 3) != 0) {
            sqlx_bind_text(dev, 1, (const char *)sqlx_column_text(sel, 1), -1);
            sqlx_bind_int64(dev, 2, sqlx_column_int64(sel, 2));
            drc = sqlx_step(dev);
            sqlx_reset(dev);
        }
        if (drc != SQLX_DONE) {
            rc = store__db_fail(c->db, "retention: delete kept block");
            goto done;
        }
        deleted++;
        bytes += sqlx_column_int64(sel, 4);
        if (bytes >= c->bytes) {
            *more = 1;
            break;
        }
    }
    if (src != SQLX_ROW && src != SQLX_DONE) {
        rc = store__db_fail(c->db, "retention: read blocks");
        goto done;
    }
    if (src == SQLX_DONE && n == c->rows)
        *more = 1; /* all rows of the step were due */
    res->rows[STORE_RET_BLOCKS_KEPT] += deleted;
    res->block_bytes += bytes;
    rc = deleted;
done:
    sqlx_finalize(sel);
    sqlx_finalize(del);
    sqlx_finalize(dev);
    return rc;
}

/* The due prefix of a table in rowid order (rows stored in time order): the first `rows` rows
 * up to the first one whose time column is at or after the cutoff. Table and column names are
 * constants of this file. */
static int64_t step_prefix(const ctx_t *c, const char *table, const char *col, int days, int t,
                           store_retention_result_t *res, int *more)
{
    if (days == 0)
        return 0;
    char sql[256];
    int64_t cut = cutoff(c, days), last = -1, rc;
    sqlx_stmt_t *sel = NULL, *del = NULL;
    sql_prefix_select(sql, sizeof sql, table, col);
    rc = store__prepare(c->db, sql, &sel);
    if (rc < 0)
        goto done;
    sqlx_bind_int64(sel, 1, c->rows);
    int src, n = 0, all_due = 1;
    while ((src = sqlx_step(sel)) == SQLX_ROW) {
        n++;
        if (sqlx_column_int64(sel, 1) >= cut) {
            all_due = 0;
            break;
        }
        last = sqlx_column_int64(sel, 0);
    }
    if (src != SQLX_ROW && src != SQLX_DONE) {
        rc = store__db_fail(c->db, "retention: read");
        goto done;
    }
    if (last < 0) {
        rc = 0;
        goto done;
    }
    sqlx_finalize(sel);
    sel = NULL;
    sql_prefix_delete(sql, sizeof sql, table);
    rc = store__prepare(c->db, sql, &del);
    if (rc < 0)
        goto done;
    sqlx_bind_int64(del, 1, last);
    sqlite3 *lite = sqlx_sqlite_handle(c->db);
    int64_t total0 = lite ? sqlite3_total_changes64(lite) : 0;
    if (sqlx_step(del) != SQLX_DONE) {
        rc = store__db_fail(c->db, "retention: delete");
        goto done;
    }
    rc = sqlx_changes(c->db);
    res->rows[t] += rc;
    /* rows the triggers deleted with them (measurements: their measurement_trend rows) */
    if (t == STORE_RET_AGGREGATES && lite) /* (PostgreSQL does not count a trigger's rows) */
        res->rows[STORE_RET_TREND] += sqlite3_total_changes64(lite) - total0 - rc;
    if (all_due && n == c->rows)
        *more = 1;
done:
    sqlx_finalize(sel);
    sqlx_finalize(del);
    return rc;
}

/* Rows of a table with a time index: the oldest `rows` before the cutoff. */
static int64_t step_indexed(const ctx_t *c, const char *table, const char *col, int days, int t,
                            store_retention_result_t *res, int *more)
{
    if (days == 0)
        return 0;
    char sql[256];
    sqlx_stmt_t *del = NULL;
    sql_indexed_delete(sql, sizeof sql, table, col);
    int64_t rc = store__prepare(c->db, sql, &del);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(del, 1, cutoff(c, days));
    sqlx_bind_int64(del, 2, c->rows);
    if (sqlx_step(del) != SQLX_DONE) {
        rc = store__db_fail(c->db, "retention: delete");
    } else {
        rc = sqlx_changes(c->db);
        res->rows[t] += rc;
        if (rc == c->rows)
            *more = 1;
    }
    sqlx_finalize(del);
    return rc;
}

/* The summary pyramid: per terminal (from the cursor c->pyr_at on, in terminal_id order) and
 * level, the rows whose bucket starts before the level's cutoff (sample time, as for the
 * aggregates), oldest first, at most c->rows rows and c->rows terminals looked at per step. The
 * cursor keeps the terminal a step stopped at, so a pass does not probe the terminals already
 * done again at every step; at the last terminal it goes back to the first. */
static int64_t step_pyramid(const ctx_t *c, store_retention_result_t *res, int *more)
{
    int fdays = store_retention_fine_days(c->p), cdays = c->p->aggregates_days;
    if (fdays == 0 && cdays == 0)
        return 0;
    int64_t deleted = 0, budget = c->rows, rc = 0;
    int looked = 0;
    char tid[STORE_ID_MAX + 1];
    sqlx_stmt_t *term = NULL, *bound = NULL, *del = NULL;
    rc = store__prepare(c->db, SQL_PYR_TERMINAL, &term);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_PYR_BOUND, &bound);
    if (rc == 0)
        rc = store__prepare(c->db, SQL_PYR_DELETE, &del);
    if (rc < 0)
        goto done;
    snprintf(tid, sizeof tid, "%s", c->pyr_at);
    for (;;) {
        sqlx_bind_text(term, 1, tid, -1);
        int src = sqlx_step(term);
        if (src == SQLX_DONE) {
            sqlx_reset(term);
            c->pyr_at[0] = '\0'; /* past the last terminal: the next pass starts over */
            break;
        }
        if (src != SQLX_ROW) {
            rc = store__db_fail(c->db, "retention: pyramid terminals");
            goto done;
        }
        snprintf(tid, sizeof tid, "%s", (const char *)sqlx_column_text(term, 0));
        sqlx_reset(term);
        if (looked++ >= c->rows) {
            snprintf(c->pyr_at, STORE_ID_MAX + 1, "%s", tid); /* the next step goes on here */
            *more = 1;
            break;
        }
        int full = 0;
        for (int level = 0; level < STORE_PYR_LEVELS && !full; level++) {
            int days = level < 2 ? fdays : cdays;
            if (days == 0)
                continue;
            int64_t cut = cutoff(c, days), lim = cut;
            /* the oldest `budget` rows at most: below the bucket after them, when there is one */
            sqlx_bind_text(bound, 1, tid, -1);
            sqlx_bind_int64(bound, 2, level);
            sqlx_bind_int64(bound, 3, cut);
            sqlx_bind_int64(bound, 4, budget);
            int brc = sqlx_step(bound);
            if (brc == SQLX_ROW) {
                lim = sqlx_column_int64(bound, 0);
                full = 1;
            }
            sqlx_reset(bound);
            if (brc != SQLX_ROW && brc != SQLX_DONE) {
                rc = store__db_fail(c->db, "retention: pyramid bound");
                goto done;
            }
            sqlx_bind_text(del, 1, tid, -1);
            sqlx_bind_int64(del, 2, level);
            sqlx_bind_int64(del, 3, lim);
            int drc = sqlx_step(del);
            sqlx_reset(del);
            if (drc != SQLX_DONE) {
                rc = store__db_fail(c->db, "retention: pyramid delete");
                goto done;
            }
            int64_t n = sqlx_changes(c->db);
            res->rows[level < 2 ? STORE_RET_PYRAMID_FINE : STORE_RET_PYRAMID_COARSE] += n;
            deleted += n;
            budget -= n;
            if (budget <= 0)
                full = 1;
        }
        if (full) {
            /* the batch is full: this terminal may have more due; the next step starts here */
            snprintf(c->pyr_at, STORE_ID_MAX + 1, "%s", tid);
            *more = 1;
            break;
        }
        /* the next terminal: the smallest id above this one ("\x01" sorts right after the
         * id's own end, ids being printable) */
        size_t len = strlen(tid);
        if (len + 1 >= sizeof tid)
            tid[len - 1]++; /* (a full-length id: its successor, as no longer id exists) */
        else
            tid[len] = '\x01', tid[len + 1] = '\0';
    }
    rc = deleted;
done:
    sqlx_finalize(term);
    sqlx_finalize(bound);
    sqlx_finalize(del);
    return rc;
}

/* One transaction on db. */
static int run_step(sqlx_t *db, const store_retention_t *p, char *pyr_at,
                    store_retention_result_t *out)
{
    ctx_t c = {.db = db,
               .p = p,
               .pyr_at = pyr_at,
               .now = p->now_ns ? p->now_ns : time_utc_ns(),
               .rows = p->batch_rows > 0 ? p->batch_rows : DEF_ROWS,
               .bytes = p->batch_bytes > 0 ? p->batch_bytes : DEF_BYTES};
    if (sqlx_begin(db) != 0)
        return store__db_fail(db, "retention: begin");
    int more = 0;
    int64_t rc = 0;
    for (int t = 0; t < STORE_RET_NTABLES && rc == 0 && !more; t++) {
        switch (t) {
        case STORE_RET_BLOCKS_RAW:
            rc = step_blocks_raw(&c, out, &more);
            break;
        case STORE_RET_BLOCKS_KEPT:
            rc = step_blocks_kept(&c, out, &more);
            break;
        case STORE_RET_STATUS:
            rc = step_prefix(&c, "status", "received_ns", p->status_days, t, out, &more);
            break;
        case STORE_RET_EVENTS:
            rc = step_indexed(&c, "pq_events", "start_ns", p->events_days, t, out, &more);
            break;
        case STORE_RET_AGGREGATES:
            rc = step_prefix(&c, "measurements", "t_end_ns", p->aggregates_days, t, out, &more);
            break;
        case STORE_RET_SESSIONS:
            rc = step_prefix(&c, "sessions", "opened_ns", p->sessions_days, t, out, &more);
            break;
        case STORE_RET_AUDIT:
            rc = step_indexed(&c, "audit", "time_ns", p->audit_days, t, out, &more);
            break;
        case STORE_RET_PYRAMID_FINE:
            rc = step_pyramid(&c, out, &more); /* both pyramid tables */
            break;
        case STORE_RET_PYRAMID_COARSE:
        case STORE_RET_TREND:
            break; /* (done above, and with the aggregates) */
        }
        if (rc > 0)
            more = 1; /* something was deleted here: the next step looks again */
    }
    if (rc < 0 || sqlx_commit(db) != 0) {
        if (rc >= 0)
            rc = store__db_fail(db, "retention: commit");
        if (!!sqlx_in_transaction(db))
            sqlx_rollback(db);
        return (int)rc;
    }
    out->more = more;
    return 0;
}

int store_retention_step(store_t *s, const store_retention_t *p, store_retention_result_t *out)
{
    if (store_retention_check(p, NULL, 0) < 0)
        return GS_EINVAL;
    if (s->reader_only || s->sync_read_only)
        return GS_ESTATE;
    store_retention_result_t r;
    memset(&r, 0, sizeof r);
    int rc = run_step(s->db, p, s->ret_pyr_at, &r);
    if (rc < 0)
        return rc;
    for (int t = 0; t < STORE_RET_NTABLES; t++)
        out->rows[t] += r.rows[t];
    out->block_bytes += r.block_bytes;
    out->kept_rows += r.kept_rows;
    out->more = r.more;
    return 0;
}

/* ---- passes in the writer ---- */

int store_retention_submit(store_t *s, const store_retention_t *p)
{
    if (store_retention_check(p, NULL, 0) < 0)
        return GS_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (s->ret_stats.running) {
        pthread_mutex_unlock(&s->mu);
        return GS_EBUSY;
    }
    if (!s->accepting) {
        pthread_mutex_unlock(&s->mu);
        return GS_ESTATE;
    }
    s->ret_policy = *p;
    memset(&s->ret_pass, 0, sizeof s->ret_pass);
    s->ret_started_mono = time_mono_ns();
    s->ret_stats.running = 1;
    pthread_mutex_unlock(&s->mu);
    int rc = store_submit(s, store_item_new(STORE_ITEM_RETENTION));
    if (rc < 0) {
        pthread_mutex_lock(&s->mu);
        s->ret_stats.running = 0;
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

static void log_pass(const store_retention_result_t *r, int64_t dur_ns, uint64_t steps, int rc,
                     int interrupted)
{
    int64_t total = 0;
    for (int t = 0; t < STORE_RET_NTABLES; t++)
        total += r->rows[t];
    char what[512];
    size_t n = 0;
    for (int t = 0; t < STORE_RET_NTABLES; t++)
        if (r->rows[t] && n < sizeof what)
            n += (size_t)snprintf(what + n, sizeof what - n, "%s%s %" PRId64, n ? ", " : "",
                                  NAMES[t], r->rows[t]);
    if (rc < 0) {
        log_warn(STORE_LOG_WHO,
                 "retention pass stopped after %" PRIu64 " steps in %.1f ms: %s (deleted: %s; "
                 "the next pass resumes)",
                 steps, (double)dur_ns / 1e6, err_str(rc), n ? what : "nothing");
        return;
    }
    if (total == 0) {
        log_debug(STORE_LOG_WHO, "retention pass: nothing due (%" PRId64 " blocks kept, %.1f ms)",
                  r->kept_rows, (double)dur_ns / 1e6);
        return;
    }
    log_info(STORE_LOG_WHO,
             "retention pass%s: deleted %s rows (%.1f MB of samples), %" PRId64
             " blocks kept for events, in %" PRIu64 " steps, %.1f ms",
             interrupted ? " cut short by the shutdown (the next start resumes)" : "", what,
             (double)r->block_bytes / 1e6, r->kept_rows, steps, (double)dur_ns / 1e6);
}

int store__pg_partitions(store_t *s, sqlx_t *db, const store_retention_t *p)
{
    const int64_t day = 86400LL * 1000000000LL;
    int64_t now = time_utc_ns();
    int created = 0, d_fine = 0, d_meas = 0, d_blocks = 0;
    /* the days ahead: a terminal whose clock runs a little fast, and the hours until the next
     * pass; anything further out lands in the default partition */
    int rc = store_pg_partitions_ensure(db, now - day, now + 3 * day, &created);
    if (rc == 0 && p && p->pyramid_fine_days > 0)
        rc = store_pg_partitions_drop_before(db, "wave_pyramid_fine",
                                             now - (int64_t)p->pyramid_fine_days * day, &d_fine);
    if (rc == 0 && p && p->aggregates_days > 0)
        rc = store_pg_partitions_drop_before(db, "measurements",
                                             now - (int64_t)p->aggregates_days * day, &d_meas);
    if (rc == 0 && p && p->raw_days > 0)
        rc = store_pg_partitions_drop_empty_before(db, "blocks", now - (int64_t)p->raw_days * day,
                                                   &d_blocks);
    if (rc < 0) {
        log_error(STORE_LOG_WHO, "partition maintenance: %s", sqlx_errmsg(db));
        return rc;
    }
    if (created || d_fine || d_meas || d_blocks)
        log_info(STORE_LOG_WHO,
                 "partitions: %d created, dropped %d of blocks (emptied by retention), %d of "
                 "wave_pyramid_fine, %d of measurements",
                 created, d_blocks, d_fine, d_meas);
    return 0;
}

void store__retention_item(store_t *s, store_item_t *it)
{
    pthread_mutex_lock(&s->mu);
    store_retention_t p = s->ret_policy;
    pthread_mutex_unlock(&s->mu);

    store_retention_result_t r;
    memset(&r, 0, sizeof r);
    int rc = run_step(s->wdb, &p, s->ret_pyr_at, &r);

    pthread_mutex_lock(&s->mu);
    store_retention_result_t *pass = &s->ret_pass;
    store_retention_stats_t *st = &s->ret_stats;
    for (int t = 0; t < STORE_RET_NTABLES; t++) {
        pass->rows[t] += r.rows[t];
        st->rows[t] += (uint64_t)r.rows[t];
    }
    pass->block_bytes += r.block_bytes;
    pass->kept_rows += r.kept_rows;
    st->block_bytes += (uint64_t)r.block_bytes;
    if (rc == 0) {
        st->steps++;
        pass->more++; /* (counts the steps of this pass) */
    }
    if (rc == 0 && r.more && !s->stopping) {
        /* Behind everything submitted meanwhile: ingest waits for one step at most. */
        it->next = NULL;
        if (s->tail)
            s->tail->next = it;
        else
            s->head = it;
        s->tail = it;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int interrupted = rc == 0 && r.more; /* (only when stopping) */
    int64_t dur = time_mono_ns() - s->ret_started_mono;
    store_retention_result_t done = *pass;
    uint64_t steps = (uint64_t)pass->more;
    st->running = 0;
    if (rc < 0)
        st->failures++;
    else
        st->passes++;
    st->last_end_ns = time_utc_ns();
    st->last_duration_ns = dur;
    s->depth_items--;
    s->stats.items++;
    pthread_mutex_unlock(&s->mu);
    log_pass(&done, dur, steps, rc, interrupted);
    /* PostgreSQL: the partitions ahead, and whole partitions dropped behind the rows */
    if (s->pg && rc == 0 && !interrupted)
        store__pg_partitions(s, s->wdb, &p);
    store_item_free(it);
}

void store_retention_stats(store_t *s, store_retention_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->ret_stats;
    pthread_mutex_unlock(&s->mu);
}

/* ---- disk full ---- */

int store_disk_full(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    int full = s->ret_stats.disk_full;
    pthread_mutex_unlock(&s->mu);
    return full;
}

int store__plan(sqlx_t *db, const char *const *sqls, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return GS_EINVAL;
    out[0] = '\0';
    if (sqlx_backend(db) != SQLX_SQLITE)
        return GS_ENOTSUP; /* EXPLAIN QUERY PLAN is SQLite's */
    for (size_t i = 0; i < n; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", sqls[i]);
        sqlx_stmt_t *st = NULL;
        int rc = store__prepare(db, sql, &st);
        if (rc < 0)
            return rc;
        int src;
        while ((src = sqlx_step(st)) == SQLX_ROW) {
            const char *d = (const char *)sqlx_column_text(st, 3);
            int w = snprintf(out + len, cap - len, "%s | %s\n", sqls[i], d ? d : "");
            if (w > 0)
                len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
        }
        sqlx_finalize(st);
        if (src != SQLX_DONE)
            return store__db_fail(db, "explain");
    }
    return 0;
}

/* 1 when a file of the database is within a page of the process's file size limit
 * (RLIMIT_FSIZE): SQLite reports EFBIG as a plain write error and does not keep the errno. */
static int at_fsize_limit(sqlite3 *db)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !*path)
        return 0;
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", path);
    const char *files[] = {path, wal};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        if (stat(files[i], &sb) == 0 && (uint64_t)sb.st_size + 65536 >= (uint64_t)rl.rlim_cur)
            return 1;
    }
    return 0;
}

int store__db_is_full(sqlx_t *x)
{
    sqlite3 *db = sqlx_sqlite_handle(x);
    if (!db)
        return sqlx_errcode(x) == -ENOSPC; /* PostgreSQL: SQLSTATE 53100 / 53400 */
    int code = sqlite3_extended_errcode(db);
    if ((code & 0xff) == SQLITE_FULL)
        return 1; /* ENOSPC (os_unix.c unixWrite), or max_page_count */
    if ((code & 0xff) == SQLITE_IOERR) {
        int e = sqlite3_system_errno(db);
        if (e == ENOSPC || e == EFBIG || e == EDQUOT)
            return 1;
        return (code == SQLITE_IOERR_WRITE || code == SQLITE_IOERR_SHORT_READ) &&
               at_fsize_limit(db);
    }
    return 0;
}

int store__disk_full_note(store_t *s, int full, int ok, size_t batch_items)
{
    int64_t mono = time_mono_ns();
    int64_t remind_ns = s->full_remind_ms > 0 ? (int64_t)s->full_remind_ms * 1000000LL
                                              : (int64_t)STORE__FULL_REMIND_S * 1000000000LL;
    pthread_mutex_lock(&s->mu);
    store_retention_stats_t *st = &s->ret_stats;
    int was = st->disk_full;
    int64_t began = st->full_since_ns;
    if (full) {
        st->full_failures++;
        if (!was) {
            st->disk_full = 1;
            st->full_since_ns = time_utc_ns();
            st->full_episodes++;
        }
    } else if (ok && was) {
        st->disk_full = 0;
        st->full_since_ns = 0;
    }
    int now_full = st->disk_full;
    uint64_t failures = st->full_failures;
    size_t qi = s->depth_items, qb = s->depth_bytes;
    int64_t since = st->full_since_ns;
    pthread_mutex_unlock(&s->mu);

    if (full && !was) {
        log_error(STORE_LOG_WHO,
                  "disk full: the database cannot grow (a batch of %zu items failed); nothing "
                  "is acknowledged until space is freed, the writer retries (reminders every "
                  "%.0f s at most)",
                  batch_items, (double)remind_ns / 1e9);
        s->full_last_log_mono = mono;
        s->full_failures_logged = failures;
    } else if (now_full && full && mono - s->full_last_log_mono >= remind_ns) {
        log_warn(STORE_LOG_WHO,
                 "disk still full for %.1f s: %llu batch attempts failed since the last line, "
                 "%zu items (%zu bytes) waiting",
                 (double)(time_utc_ns() - since) / 1e9,
                 (unsigned long long)(failures - s->full_failures_logged), qi, qb);
        s->full_last_log_mono = mono;
        s->full_failures_logged = failures;
    } else if (was && !now_full) {
        log_info(STORE_LOG_WHO,
                 "disk no longer full after %.1f s (%llu batch attempts failed in all); ingest "
                 "resumed",
                 (double)(time_utc_ns() - began) / 1e9, (unsigned long long)failures);
    }
    store__quiet_full = now_full;
    return now_full;
}
