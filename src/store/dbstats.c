/* Database statistics for `gridsense db stats` and GET /api/v1/admin/db (issue 10).
 *
 * Cost on a big database: everything in the default (light) mode is a bounded number of index
 * probes, independent of the row count: first and last rows by rowid (times held, an upper
 * bound of the row count: rowids are handed out in order and retention deletes the oldest), a
 * sample of the newest SAMPLE_BLOCKS blocks (mean stored size, compression), a binary search
 * over rowids for the first block of the last hour (ingest rate: received_ns grows with the
 * rowid), and per terminal a skip-scan of the (terminal_id, seq) index. Exact sizes per table
 * come only from the dbstat virtual table (exact != 0), which reads every page of the file once:
 * minutes on a large database, so only on request (`--exact`, `?exact=true`).
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define SAMPLE_BLOCKS 256
#define TERM_SAMPLE   16
#define WINDOW_S      3600

/* The tables whose rows are many, with the column that dates a row. Others (terminals, users,
 * ...) are small and counted exactly. */
static const struct {
    const char *table, *time_col;
} TIMED[] = {{"blocks", "received_ns"},    {"status", "received_ns"}, {"pq_events", "start_ns"},
             {"measurements", "t_end_ns"}, {"sessions", "opened_ns"}, {"audit", "time_ns"},
             {"commands", "created_ns"},   {"events", "trigger_ns"}};

#define SQL_TERM_NEXT                                                                              \
    "SELECT terminal_id FROM blocks WHERE terminal_id > ?1 ORDER BY terminal_id LIMIT 1"
/* two probes: min() and max() together would walk the terminal's range */
#define SQL_TERM_ENDS                                                                              \
    "SELECT (SELECT seq FROM blocks WHERE terminal_id = ?1 ORDER BY seq LIMIT 1),"                 \
    " (SELECT seq FROM blocks WHERE terminal_id = ?1 ORDER BY seq DESC LIMIT 1)"
#define SQL_TERM_T0 "SELECT t0_ns FROM blocks WHERE terminal_id = ?1 AND seq = ?2"
#define SQL_TERM_SAMPLE                                                                            \
    "SELECT count(*), coalesce(sum(length(data)), 0) FROM (SELECT data FROM blocks"                \
    " WHERE terminal_id = ?1 ORDER BY seq DESC LIMIT ?2)"
#define SQL_NEWEST                                                                                 \
    "SELECT count(*), coalesce(sum(length(data)), 0), coalesce(sum(nsamples * nchannels *"         \
    " CASE sample_fmt WHEN 2 THEN 4 ELSE 2 END), 0) FROM (SELECT data, nsamples, nchannels,"       \
    " sample_fmt FROM blocks ORDER BY id DESC LIMIT ?1)"
#define SQL_SINCE "SELECT received_ns FROM %s WHERE id >= ?1 ORDER BY id LIMIT 1"

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static store_table_stat_t *table_slot(store_db_stats_t *o, const char *name)
{
    for (int i = 0; i < o->ntables; i++)
        if (strcmp(o->tables[i].name, name) == 0)
            return &o->tables[i];
    if (o->ntables == STORE_STATS_TABLES)
        return NULL;
    store_table_stat_t *t = &o->tables[o->ntables++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->bytes = -1;
    t->rows = -1;
    return t;
}

/* Exact bytes and rows per table (indexes counted with their table) from dbstat. */
static int dbstat_sizes(sqlx_t *db, store_db_stats_t *o)
{
    sqlx_stmt_t *st = NULL;
    if (sqlx_prepare(db,
                     "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize),"
                     " sum(CASE WHEN d.pagetype = 'leaf' AND d.name = coalesce(m.tbl_name,"
                     " d.name) THEN d.ncell ELSE 0 END)"
                     " FROM dbstat AS d LEFT JOIN sqlite_master AS m ON m.name = d.name"
                     " GROUP BY 1 ORDER BY 2 DESC",
                     &st) != 0)
        return 0; /* no dbstat in this SQLite: page totals only */
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_table_stat_t *t = table_slot(o, (const char *)sqlx_column_text(st, 0));
        if (!t)
            continue;
        t->bytes = sqlx_column_int64(st, 1);
        t->rows = sqlx_column_int64(st, 2);
    }
    sqlx_finalize(st);
    if (src != SQLX_DONE)
        return store__db_fail(db, "db stats: dbstat");
    o->dbstat = 1;
    return 0;
}

/* rowid of the first block received at or after since_ns: binary search over rowids (received
 * times grow with them). lo..hi: the table's rowid range. */
static int first_since(sqlx_t *db, const char *table, int64_t lo, int64_t hi, int64_t since,
                       int64_t *out)
{
    char sql[160];
    snprintf(sql, sizeof sql, SQL_SINCE, table);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, t = 0;
        int found = 0;
        int rc = store__query_i64(db, sql, NULL, mid, 0, &t, &found);
        if (rc < 0)
            return rc;
        if (found && t >= since)
            hi = mid;
        else
            lo = mid + 1;
    }
    *out = lo;
    return 0;
}

int store_db_stats(store_t *s, int exact, store_db_stats_t *o)
{
    sqlx_t *db = s->db;
    if (s->pg)
        return GS_ENOTSUP; /* sizes come from SQLite's pages and dbstat */
    int rc;
    char path[1100];
    memset(o, 0, sizeof *o);
    o->file_bytes = file_size(s->path);
    snprintf(path, sizeof path, "%s-wal", s->path);
    o->wal_bytes = file_size(path);
    snprintf(path, sizeof path, "%s", s->path);
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(path, sizeof path, ".");
    struct statvfs vf;
    if (statvfs(path, &vf) == 0) {
        o->fs_free_bytes = (int64_t)vf.f_bavail * (int64_t)vf.f_frsize;
        o->fs_total_bytes = (int64_t)vf.f_blocks * (int64_t)vf.f_frsize;
    }
    if ((rc = store__query_i64(db, "PRAGMA page_size", NULL, 0, 0, &o->page_size, NULL)) < 0 ||
        (rc = store__query_i64(db, "PRAGMA page_count", NULL, 0, 0, &o->page_count, NULL)) < 0 ||
        (rc = store__query_i64(db, "PRAGMA freelist_count", NULL, 0, 0, &o->freelist_pages, NULL)) <
            0)
        return rc;
    if (exact && (rc = dbstat_sizes(db, o)) < 0)
        return rc;

    /* Row ranges and times of the big tables. */
    int64_t blo = 0, bhi = -1;
    for (size_t i = 0; i < sizeof TIMED / sizeof TIMED[0]; i++) {
        int ex = store__table_exists(db, TIMED[i].table);
        if (ex < 0)
            return ex;
        if (!ex)
            continue;
        store_table_stat_t *t = table_slot(o, TIMED[i].table);
        if (!t)
            continue;
        char sql[200];
        int64_t lo = 0, hi = 0;
        int f1 = 0, f2 = 0;
        snprintf(sql, sizeof sql, "SELECT min(id) FROM %s", TIMED[i].table);
        if ((rc = store__query_i64(db, sql, NULL, 0, 0, &lo, &f1)) < 0)
            return rc;
        snprintf(sql, sizeof sql, "SELECT max(id) FROM %s", TIMED[i].table);
        if ((rc = store__query_i64(db, sql, NULL, 0, 0, &hi, &f2)) < 0)
            return rc;
        if (!f1 || !f2) {
            if (t->rows < 0)
                t->rows = 0;
            continue;
        }
        if (t->rows < 0)
            t->rows_upper = hi - lo + 1;
        snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE id = ?1", TIMED[i].time_col,
                 TIMED[i].table);
        if ((rc = store__query_i64(db, sql, NULL, lo, 0, &t->oldest_ns, NULL)) < 0 ||
            (rc = store__query_i64(db, sql, NULL, hi, 0, &t->newest_ns, NULL)) < 0)
            return rc;
        if (strcmp(TIMED[i].table, "blocks") == 0) {
            blo = lo;
            bhi = hi;
            o->blocks_total = hi - lo + 1;
        }
    }

    /* The newest blocks: stored vs raw size (whatever the encoding, from the columns). */
    if (bhi >= blo) {
        sqlx_stmt_t *st = NULL;
        rc = store__prepare(db, SQL_NEWEST, &st);
        if (rc < 0)
            return rc;
        sqlx_bind_int64(st, 1, SAMPLE_BLOCKS);
        if (sqlx_step(st) == SQLX_ROW) {
            o->sample_blocks = sqlx_column_int64(st, 0);
            o->sample_stored = sqlx_column_int64(st, 1);
            o->sample_raw = sqlx_column_int64(st, 2);
        }
        sqlx_finalize(st);

        /* Ingest of the last hour, projected to a day. */
        int64_t first = 0, now = time_utc_ns();
        if ((rc = first_since(db, "blocks", blo, bhi + 1, now - (int64_t)WINDOW_S * 1000000000LL,
                              &first)) < 0)
            return rc;
        o->window_s = WINDOW_S;
        o->window_blocks = bhi + 1 - first;
        if (o->sample_blocks > 0)
            o->window_block_bytes = o->window_blocks * (o->sample_stored / o->sample_blocks);
    }
    store_table_stat_t *stt = NULL;
    for (int i = 0; i < o->ntables; i++)
        if (strcmp(o->tables[i].name, "status") == 0)
            stt = &o->tables[i];
    if (stt && stt->newest_ns) {
        int64_t lo = 0, hi = 0, first = 0;
        if ((rc = store__query_i64(db, "SELECT min(id) FROM status", NULL, 0, 0, &lo, NULL)) < 0 ||
            (rc = store__query_i64(db, "SELECT max(id) FROM status", NULL, 0, 0, &hi, NULL)) < 0 ||
            (rc = first_since(db, "status", lo, hi + 1,
                              time_utc_ns() - (int64_t)WINDOW_S * 1000000000LL, &first)) < 0)
            return rc;
        o->window_status = hi + 1 - first;
    }
    /* Bytes per day: the samples, and the file's overhead per sample byte (pages, indexes, the
     * other tables) as it is now, when the file is mostly blocks. */
    double per_day = (double)o->window_block_bytes * 86400.0 / (double)WINDOW_S;
    double used = (double)(o->page_count - o->freelist_pages) * (double)o->page_size;
    double samples =
        o->sample_blocks > 0
            ? (double)o->blocks_total * ((double)o->sample_stored / (double)o->sample_blocks)
            : 0;
    double overhead = samples > 0 && used > samples ? used / samples : 1.0;
    if (overhead > 4.0)
        overhead = 4.0; /* a nearly empty database says nothing about its overhead */
    o->projected_bytes_per_day = per_day * overhead;

    /* The small tables: exact counts (in exact mode dbstat has them already). */
    sqlx_stmt_t *st = NULL;
    rc = store__prepare(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                        &st);
    if (rc < 0)
        return rc;
    while (sqlx_step(st) == SQLX_ROW) {
        const char *name = (const char *)sqlx_column_text(st, 0);
        if (!name || strncmp(name, "sqlite_", 7) == 0)
            continue;
        store_table_stat_t *t = table_slot(o, name);
        (void)t; /* listed (bytes/rows -1 unless measured) */
    }
    sqlx_finalize(st);
    static const char *const SMALL[] = {"terminals",      "users",         "api_tokens",
                                        "user_sessions",  "block_layouts", "schema_version",
                                        "retention_state"};
    for (size_t i = 0; i < sizeof SMALL / sizeof SMALL[0]; i++) {
        store_table_stat_t *t = NULL;
        for (int k = 0; k < o->ntables; k++)
            if (strcmp(o->tables[k].name, SMALL[i]) == 0)
                t = &o->tables[k];
        if (!t || t->rows >= 0)
            continue;
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", SMALL[i]);
        if ((rc = store__query_i64(db, sql, NULL, 0, 0, &t->rows, NULL)) < 0)
            return rc;
    }
    return 0;
}

int store_db_terminal_stats(store_t *s, int (*cb)(void *ud, const store_terminal_stat_t *t),
                            void *ud)
{
    sqlx_t *db = s->db;
    if (s->pg)
        return GS_ENOTSUP;
    sqlx_stmt_t *next = NULL, *ends = NULL, *t0 = NULL, *samp = NULL;
    int rc = store__prepare(db, SQL_TERM_NEXT, &next);
    if (rc == 0)
        rc = store__prepare(db, SQL_TERM_ENDS, &ends);
    if (rc == 0)
        rc =
            store__prepare(db, "SELECT t0_ns FROM blocks WHERE terminal_id = ?1 AND seq = ?2", &t0);
    if (rc == 0)
        rc = store__prepare(db, SQL_TERM_SAMPLE, &samp);
    if (rc < 0)
        goto done;
    char after[STORE_ID_MAX + 1] = "";
    for (;;) {
        sqlx_bind_text(next, 1, after, -1);
        int src = sqlx_step(next);
        if (src == SQLX_DONE)
            break;
        if (src != SQLX_ROW) {
            rc = store__db_fail(db, "db stats: terminals");
            goto done;
        }
        store_terminal_stat_t ts;
        memset(&ts, 0, sizeof ts);
        snprintf(ts.terminal_id, sizeof ts.terminal_id, "%s",
                 (const char *)sqlx_column_text(next, 0));
        sqlx_reset(next);
        snprintf(after, sizeof after, "%s", ts.terminal_id);

        sqlx_bind_text(ends, 1, ts.terminal_id, -1);
        if (sqlx_step(ends) == SQLX_ROW) {
            ts.seq_first = sqlx_column_int64(ends, 0);
            ts.seq_last = sqlx_column_int64(ends, 1);
        }
        sqlx_reset(ends);
        for (int k = 0; k < 2; k++) {
            sqlx_bind_text(t0, 1, ts.terminal_id, -1);
            sqlx_bind_int64(t0, 2, k ? ts.seq_last : ts.seq_first);
            if (sqlx_step(t0) == SQLX_ROW)
                *(k ? &ts.newest_ns : &ts.oldest_ns) = sqlx_column_int64(t0, 0);
            sqlx_reset(t0);
        }
        sqlx_bind_text(samp, 1, ts.terminal_id, -1);
        sqlx_bind_int64(samp, 2, TERM_SAMPLE);
        if (sqlx_step(samp) == SQLX_ROW && sqlx_column_int64(samp, 0) > 0)
            ts.block_bytes = (ts.seq_last - ts.seq_first + 1) *
                             (sqlx_column_int64(samp, 1) / sqlx_column_int64(samp, 0));
        sqlx_reset(samp);
        rc = cb(ud, &ts);
        if (rc != 0)
            goto done;
    }
    rc = 0;
done:
    sqlx_finalize(next);
    sqlx_finalize(ends);
    sqlx_finalize(t0);
    sqlx_finalize(samp);
    return rc;
}

int store_db_stats_plan(store_t *s, char *out, size_t cap)
{
    char since[160], first[96], last[96], date[160];
    snprintf(since, sizeof since, SQL_SINCE, "blocks");
    snprintf(first, sizeof first, "SELECT min(id) FROM blocks");
    snprintf(last, sizeof last, "SELECT max(id) FROM blocks");
    snprintf(date, sizeof date, "SELECT received_ns FROM blocks WHERE id = ?1");
    const char *q[] = {SQL_TERM_NEXT,   SQL_TERM_ENDS, SQL_TERM_T0,
                       SQL_TERM_SAMPLE, SQL_NEWEST,    since,
                       first,           last,          date};
    return store__plan(s->db, q, sizeof q / sizeof q[0], out, cap);
}
