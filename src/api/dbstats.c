/* Disk use (issue 10): GET /api/v1/admin/db, the retention and disk-full metrics, and 507 for
 * state changes while the store reports the disk full (docs/api.md "Database", "Errors"). */
#include "api/internal.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

static void num_or_null(buf_t *b, const char *name, int64_t v)
{
    if (v < 0)
        buf_printf(b, ",\"%s\":null", name);
    else
        buf_printf(b, ",\"%s\":%lld", name, (long long)v);
}

static double days_between(int64_t a, int64_t b)
{
    return a && b && b > a ? (double)(b - a) / 86400e9 : 0.0;
}

typedef struct {
    buf_t *b;
    int n;
} term_ctx_t;

static int term_cb(void *ud, const store_terminal_stat_t *t)
{
    term_ctx_t *x = ud;
    buf_t *b = x->b;
    buf_puts(b, x->n++ ? ",{\"id\":" : "{\"id\":");
    buf_json_str(b, t->terminal_id, strlen(t->terminal_id));
    buf_printf(b, ",\"seq_first\":%lld,\"seq_last\":%lld,\"block_bytes\":%lld",
               (long long)t->seq_first, (long long)t->seq_last, (long long)t->block_bytes);
    api__ts_json(b, "oldest", t->oldest_ns);
    api__ts_json(b, "newest", t->newest_ns);
    buf_printf(b, ",\"days\":%.3f}", days_between(t->oldest_ns, t->newest_ns));
    return 0;
}

int api_db_stats_json(store_t *st, store_t *writer, int exact, buf_t *b)
{
    store_db_stats_t s;
    int rc = store_db_stats(st, exact, &s);
    if (rc < 0)
        return rc;
    buf_printf(b,
               "{\"exact\":%s,\"file_bytes\":%lld,\"wal_bytes\":%lld,\"page_size\":%lld,"
               "\"page_count\":%lld,\"free_pages\":%lld,\"free_page_bytes\":%lld,"
               "\"fs_free_bytes\":%lld,\"fs_total_bytes\":%lld",
               s.dbstat ? "true" : "false", (long long)s.file_bytes, (long long)s.wal_bytes,
               (long long)s.page_size, (long long)s.page_count, (long long)s.freelist_pages,
               (long long)(s.freelist_pages * s.page_size), (long long)s.fs_free_bytes,
               (long long)s.fs_total_bytes);
    buf_puts(b, ",\"tables\":[");
    for (int i = 0; i < s.ntables; i++) {
        const store_table_stat_t *t = &s.tables[i];
        buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        buf_json_str(b, t->name, strlen(t->name));
        num_or_null(b, "bytes", t->bytes);
        num_or_null(b, "rows", t->rows);
        num_or_null(b, "rows_upper", t->rows > 0 ? t->rows : t->rows_upper ? t->rows_upper : -1);
        api__ts_json(b, "oldest", t->oldest_ns);
        api__ts_json(b, "newest", t->newest_ns);
        buf_printf(b, ",\"days\":%.3f}", days_between(t->oldest_ns, t->newest_ns));
    }
    double ratio = s.sample_stored > 0 ? (double)s.sample_raw / (double)s.sample_stored : 0;
    buf_printf(b,
               "],\"compression\":{\"sample_blocks\":%lld,\"stored_bytes\":%lld,"
               "\"raw_bytes\":%lld,\"ratio\":%.4f},"
               "\"ingest\":{\"window_s\":%lld,\"blocks\":%lld,\"block_bytes\":%lld,"
               "\"status_rows\":%lld,\"projected_bytes_per_day\":%.0f",
               (long long)s.sample_blocks, (long long)s.sample_stored, (long long)s.sample_raw,
               ratio, (long long)s.window_s, (long long)s.window_blocks,
               (long long)s.window_block_bytes, (long long)s.window_status,
               s.projected_bytes_per_day);
    if (s.projected_bytes_per_day > 0)
        buf_printf(b, ",\"days_until_full\":%.1f",
                   (double)(s.fs_free_bytes + s.freelist_pages * s.page_size) /
                       s.projected_bytes_per_day);
    buf_puts(b, "}");
    if (writer) {
        store_retention_stats_t r;
        store_retention_stats(writer, &r);
        buf_printf(b, ",\"disk_full\":%s", r.disk_full ? "true" : "false");
    }
    buf_puts(b, ",\"terminals\":[");
    term_ctx_t x = {b, 0};
    rc = store_db_terminal_stats(st, term_cb, &x);
    if (rc < 0)
        return rc;
    buf_puts(b, "]}");
    return 0;
}

void api__admin_db(rq_t *q)
{
    /* Light mode only: dbstat would read the whole file on the web thread. */
    int rc = api_db_stats_json(q->a->st, q->a->writer, 0, &q->resp->body);
    if (rc == GS_ENOTSUP) {
        buf_reset(&q->resp->body);
        api__error(q->resp, 501, "not_supported",
                   "disk use is read from SQLite's pages; on PostgreSQL ask the database "
                   "(pg_total_relation_size)");
        return;
    }
    if (rc < 0) {
        buf_reset(&q->resp->body);
        api__error(q->resp, 503, "store_unavailable", "the database could not be read");
        return;
    }
    q->resp->status = 200;
}

int api__refuse_if_full(rq_t *q)
{
    if (!q->a->writer || !store_disk_full(q->a->writer))
        return 0;
    api__error(q->resp, 507, "insufficient_storage",
               "the server's disk is full: changes are refused until space is freed (reads "
               "keep working)");
    return 1;
}

void api__retention_metrics(api_t *a, buf_t *b)
{
    if (!a->writer)
        return;
    store_retention_stats_t r;
    store_retention_stats(a->writer, &r);
    buf_puts(b, "# HELP gridsense_retention_rows_deleted_total Rows deleted by retention, by "
                "table.\n# TYPE gridsense_retention_rows_deleted_total counter\n");
    for (int t = 0; t < STORE_RET_NTABLES; t++)
        buf_printf(b, "gridsense_retention_rows_deleted_total{table=\"%s\"} %llu\n",
                   store_retention_table_name(t), (unsigned long long)r.rows[t]);
    buf_printf(b,
               "# HELP gridsense_retention_bytes_deleted_total Sample bytes of the blocks "
               "deleted by retention.\n# TYPE gridsense_retention_bytes_deleted_total counter\n"
               "gridsense_retention_bytes_deleted_total %llu\n"
               "# HELP gridsense_retention_passes_total Retention passes completed.\n"
               "# TYPE gridsense_retention_passes_total counter\n"
               "gridsense_retention_passes_total %llu\n"
               "# HELP gridsense_retention_failures_total Retention passes ended by an error.\n"
               "# TYPE gridsense_retention_failures_total counter\n"
               "gridsense_retention_failures_total %llu\n"
               "# HELP gridsense_retention_steps_total Retention transactions committed.\n"
               "# TYPE gridsense_retention_steps_total counter\n"
               "gridsense_retention_steps_total %llu\n"
               "# HELP gridsense_retention_last_run_timestamp_seconds End of the last pass "
               "(0: none yet).\n# TYPE gridsense_retention_last_run_timestamp_seconds gauge\n"
               "gridsense_retention_last_run_timestamp_seconds %.3f\n"
               "# HELP gridsense_retention_last_pass_seconds Duration of the last pass.\n"
               "# TYPE gridsense_retention_last_pass_seconds gauge\n"
               "gridsense_retention_last_pass_seconds %.6f\n"
               "# HELP gridsense_store_disk_full 1 while the database cannot grow (disk or "
               "file size limit full).\n# TYPE gridsense_store_disk_full gauge\n"
               "gridsense_store_disk_full %d\n"
               "# HELP gridsense_store_disk_full_failures_total Batch attempts that failed for "
               "a full disk.\n# TYPE gridsense_store_disk_full_failures_total counter\n"
               "gridsense_store_disk_full_failures_total %llu\n"
               "# HELP gridsense_store_disk_full_episodes_total Times the disk became full.\n"
               "# TYPE gridsense_store_disk_full_episodes_total counter\n"
               "gridsense_store_disk_full_episodes_total %llu\n",
               (unsigned long long)r.block_bytes, (unsigned long long)r.passes,
               (unsigned long long)r.failures, (unsigned long long)r.steps,
               (double)r.last_end_ns / 1e9, (double)r.last_duration_ns / 1e9, r.disk_full,
               (unsigned long long)r.full_failures, (unsigned long long)r.full_episodes);
}
