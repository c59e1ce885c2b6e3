/* `gridsense db stats`: where the disk goes (issue 10; docs/operations.md "Disk use"). */
#include "cli.h"

#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_db_stats_help(FILE *f)
{
    fprintf(f,
            "Usage: gridsense db stats [--data DIR] [--json] [--exact]\n"
            "\n"
            "Disk use of the database, read-only (works while the server runs):\n"
            "  bytes per table, rows and days held (oldest/newest row), bytes per terminal,\n"
            "  compression (stored sample bytes vs raw nsamples x nchannels x width, from the\n"
            "  newest blocks), ingest of the last hour projected to bytes per day and days\n"
            "  until the filesystem is full, free pages SQLite will reuse, free disk space.\n"
            "\n"
            "  --json    one JSON object (the same as GET /api/v1/admin/db)\n"
            "  --exact   exact bytes and rows per table from SQLite's dbstat table: reads every\n"
            "            page of the file once (minutes on a large database); without it, big\n"
            "            tables show an upper bound of their rows and no bytes, at a cost that\n"
            "            does not grow with the database\n");
}

static void human(double v, char *out, size_t cap)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    int i = 0;
    while (v >= 1000 && i < 5) {
        v /= 1000;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static double jnum(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* The text report, from the JSON (one source for both). */
static void print_text(json_t *j)
{
    char a[32], b[32], c[32];
    human(jnum(j, "file_bytes"), a, sizeof a);
    human(jnum(j, "wal_bytes"), b, sizeof b);
    human(jnum(j, "free_page_bytes"), c, sizeof c);
    printf("database   %s (+ WAL %s), %s in free pages (reused before the file grows)\n", a, b, c);
    human(jnum(j, "fs_free_bytes"), a, sizeof a);
    human(jnum(j, "fs_total_bytes"), b, sizeof b);
    printf("filesystem %s free of %s%s\n", a, b,
           json_is_true(json_object_get(j, "disk_full")) ? "  DISK FULL" : "");
    printf("\n%-22s %12s %14s %-20s %-20s %8s\n", "table", "bytes", "rows", "oldest", "newest",
           "days");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "tables"), i, t)
    {
        json_t *by = json_object_get(t, "bytes"), *rows = json_object_get(t, "rows"),
               *up = json_object_get(t, "rows_upper");
        char rs[32];
        if (json_is_integer(rows))
            snprintf(rs, sizeof rs, "%lld", (long long)json_integer_value(rows));
        else if (json_is_integer(up))
            snprintf(rs, sizeof rs, "<=%lld", (long long)json_integer_value(up));
        else
            snprintf(rs, sizeof rs, "-");
        if (json_is_integer(by))
            human((double)json_integer_value(by), a, sizeof a);
        else
            snprintf(a, sizeof a, "-");
        printf("%-22s %12s %14s %-20.19s %-20.19s %8.2f\n", jstr(t, "name"), a, rs,
               jstr(t, "oldest"), jstr(t, "newest"), jnum(t, "days"));
    }
    json_t *cp = json_object_get(j, "compression");
    human(jnum(cp, "stored_bytes"), a, sizeof a);
    human(jnum(cp, "raw_bytes"), b, sizeof b);
    printf("\ncompression  %.2f : 1 (newest %lld blocks: %s stored for %s raw)\n",
           jnum(cp, "ratio"), (long long)jnum(cp, "sample_blocks"), a, b);
    json_t *in = json_object_get(j, "ingest");
    human(jnum(in, "block_bytes"), a, sizeof a);
    human(jnum(in, "projected_bytes_per_day"), b, sizeof b);
    printf("ingest       last %lld s: %lld blocks (%s), %lld status rows; projected %s per day",
           (long long)jnum(in, "window_s"), (long long)jnum(in, "blocks"), a,
           (long long)jnum(in, "status_rows"), b);
    if (json_object_get(in, "days_until_full"))
        printf(", disk full in %.1f days at this rate", jnum(in, "days_until_full"));
    printf("\n\n%-34s %12s %14s %-20s %-20s %8s\n", "terminal", "bytes (est.)", "seqs", "oldest",
           "newest", "days");
    json_array_foreach(json_object_get(j, "terminals"), i, t)
    {
        char seqs[48];
        human(jnum(t, "block_bytes"), a, sizeof a);
        snprintf(seqs, sizeof seqs, "%lld..%lld", (long long)jnum(t, "seq_first"),
                 (long long)jnum(t, "seq_last"));
        printf("%-34s %12s %14s %-20.19s %-20.19s %8.2f\n", jstr(t, "id"), a, seqs,
               jstr(t, "oldest"), jstr(t, "newest"), jnum(t, "days"));
    }
}

int cmd_db_stats(int argc, char **argv)
{
    /* argv[0] is "stats" (dispatched by cmd_db, backup.c) */
    cli_admin_t a;
    memset(&a, 0, sizeof a);
    const char *const flags[] = {"--json", "--exact", NULL};
    int flagv[2] = {0, 0};
    int rc = cli_admin_parse(&a, argc, argv, NULL, NULL, flags, flagv, cli_db_stats_help);
    if (rc != 0)
        return rc;
    if (a.npos > 0) {
        fprintf(stderr, "gridsense db stats: unexpected argument '%s'\n", a.pos[0]);
        return EXIT_USAGE;
    }
    /* A reader: no key, no migration, no write lock; the server may be running. */
    char err[1024];
    store_t *st = NULL;
    store_opts_t so = {.reader_only = 1, .busy_timeout_ms = 5000, .url = a.c.store_pg ? a.c.store_url : NULL};
    if (store_open(a.c.data_dir, &so, &st, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense db stats: %s\n", err);
        return 1;
    }
    buf_t b = {0};
    rc = api_db_stats_json(st, NULL, flagv[1], &b);
    store_close(st);
    if (rc == GS_ENOTSUP) {
        fprintf(stderr, "gridsense db stats: reads SQLite's pages; on PostgreSQL ask the database "
                        "(pg_total_relation_size, pg_stat_user_tables; docs/operations.md)\n");
        buf_free(&b);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "gridsense db stats: cannot read the database: %s\n", err_str(rc));
        buf_free(&b);
        return 1;
    }
    if (flagv[0]) {
        fwrite(b.data, 1, b.len, stdout);
        putchar('\n');
    } else {
        json_error_t je;
        json_t *j = json_loadb(b.data, b.len, 0, &je);
        if (!j) {
            fprintf(stderr, "gridsense db stats: internal error: %s\n", je.text);
            buf_free(&b);
            return 1;
        }
        print_text(j);
        json_decref(j);
    }
    buf_free(&b);
    return 0;
}
