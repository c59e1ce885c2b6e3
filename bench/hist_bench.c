/* Historian query latency (docs/benchmarks.md "Historian queries"): on a database written by
 * gen_history, times in-process (around the calls the HTTP handlers make, formatting of the
 * reply included; the HTTP layer itself not):
 *   wave_10ms   10 ms of H0001 at the end of its raw tail (raw samples, from the blocks)
 *   wave_1min   1 min of the raw tail as a 2000-bucket envelope (from the blocks)
 *   wave_1h     1 h of the fine day (1 s level, 2000 buckets asked: 3600 rows)
 *   wave_1d     the whole fine day (10 s level: 8640 rows)
 *   wave_30d    the 30 days before the last (10 min level: 4320 rows)
 *   wave_1y     the whole history (1 h level: 8760 rows)
 *   trend_1y    H0001's u2_pct over the whole history, 10-min values, as JSON arrays
 *   rank_100    max u2_pct per terminal over the week before the fleet's (only the H terminals
 *               have values there; every terminal is probed)
 *   rank_1000   max u2_pct per terminal over the last week (H and F terminals)
 * each --reps times; prints a markdown table (median, min, max wall time; median CPU time; reply
 * bytes) and, with --json FILE, the figures as JSON.
 *
 *   hist_bench --data DIR --start NS --end NS [--fine-days 2] [--raw-s 600] [--reps 9]
 *              [--json FILE]
 */
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "wave/wave.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS  1000000000LL
#define DAY (86400 * NS)

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    store_t *s;
    int64_t from, to;
    int kind; /* 0 wave, 1 trend, 2 rank */
    buf_t out;
    char note[96];
} job_t;

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

static int on_trend(void *ud, int64_t t, double v)
{
    job_t *j = ud;
    put_i64(&j->out, t);
    buf_putc(&j->out, ',');
    if (isfinite(v))
        buf_printf(&j->out, "%.9g,", v);
    else
        buf_puts(&j->out, "null,");
    return 0;
}

static int on_rank(void *ud, const store_rank_t *r)
{
    job_t *j = ud;
    buf_printf(&j->out, "{\"terminal_id\":\"%s\",\"value\":%.9g,\"t_end_ns\":%" PRId64 "},",
               r->terminal_id, r->value, r->t_end_ns);
    return 0;
}

static int run_job(job_t *j)
{
    char err[256] = "";
    buf_reset(&j->out);
    if (j->kind == 0) {
        wave_req_t q = {.terminal_id = "H0001",
                        .from_ns = j->from,
                        .to_ns = j->to,
                        .max_points = 2000,
                        .side = WAVE_SIDE_PRIMARY};
        int rc = wave_query(j->s, &q, &j->out, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "hist_bench: wave_query: %s\n", err);
        return rc;
    }
    int q = store_trend_quantity("u2_pct");
    if (j->kind == 1)
        return store_trend_read(j->s, "H0001", "10min", q, j->from, j->to, 1000000, on_trend, j);
    int64_t n = 0;
    int rc = store_trend_rank(j->s, "10min", q, STORE_TREND_MAX, j->from, j->to, 1, 10000, &n,
                              on_rank, j);
    snprintf(j->note, sizeof j->note, "%" PRId64 " terminals ranked", n);
    return rc;
}

/* The string value of "key" in a reply (first occurrence) into out. */
static void str_of(const char *d, const char *key, char *out, size_t cap)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(d, pat);
    size_t n = 0;
    if (p)
        for (p += strlen(pat); p[n] && p[n] != '"' && n + 1 < cap; n++)
            out[n] = p[n];
    out[n] = '\0';
}

/* A short description of the reply: waveform mode, source, level, segments and gaps; the
 * number of trend values. */
static void describe(job_t *j)
{
    if (j->kind == 1) {
        size_t commas = 0;
        for (size_t i = 0; i < j->out.len; i++)
            commas += j->out.data[i] == ',';
        snprintf(j->note, sizeof j->note, "%zu values", commas / 2);
    }
    if (j->kind != 0 || !j->out.data)
        return;
    const char *d = j->out.data;
    char mode[16], src[16], level[16] = "";
    str_of(d, "mode", mode, sizeof mode);
    str_of(d, "source", src, sizeof src);
    int segs = 0, gaps = 0;
    for (const char *p = d; (p = strstr(p, "\"t0_ns\"")); p++)
        segs++;
    for (const char *p = d; (p = strstr(p, "\"reason\"")); p++)
        gaps++;
    const char *lv = strstr(d, "\"level_ns\":");
    if (lv) {
        long long w = strtoll(lv + 11, NULL, 10) / NS;
        snprintf(level, sizeof level, " %s",
                 w >= 86400  ? "1 d"
                 : w >= 3600 ? "1 h"
                 : w >= 600  ? "10 min"
                 : w >= 60   ? "1 min"
                 : w >= 10   ? "10 s"
                             : "1 s");
    }
    snprintf(j->note, sizeof j->note, "%s from %s%s; %d segments, %d gaps", mode, src, level, segs,
             gaps);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *json_path = NULL;
    int64_t start = 0, end = 0;
    int fine_days = 2, raw_s = 600, reps = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--start") && i + 1 < argc)
            start = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--end") && i + 1 < argc)
            end = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--fine-days") && i + 1 < argc)
            fine_days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raw-s") && i + 1 < argc)
            raw_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else {
            fprintf(stderr, "usage: hist_bench --data DIR --start NS --end NS [--fine-days N]"
                            " [--raw-s S] [--reps N] [--json FILE]\n");
            return 2;
        }
    }
    if (!data || end - start < 40 * DAY || fine_days < 1 || raw_s < 70 || reps < 1) {
        fprintf(stderr, "hist_bench: --data, --start/--end (>= 40 days apart), --fine-days >= 1,"
                        " --raw-s >= 70 and --reps >= 1 are required\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    store_t *s = NULL;
    char err[256];
    /* the server's web thread reads through a reader connection: the same here */
    store_opts_t so = {.reader_only = 1};
    if (store_open(data, &so, &s, err, sizeof err) != 0) {
        fprintf(stderr, "hist_bench: %s\n", err);
        return 1;
    }
    int64_t fine = end - DAY - (int64_t)fine_days * DAY; /* the first fine day */
    struct {
        const char *name, *what;
        int kind;
        int64_t from, to;
    } cases[] = {
        {"wave_10ms", "waveform, 10 ms (raw tail)", 0, end - 5 * NS, end - 5 * NS + 10000000},
        {"wave_1min", "waveform, 1 min (raw tail)", 0, end - 65 * NS, end - 5 * NS},
        {"wave_1h", "waveform, 1 h", 0, fine + 6 * 3600 * NS, fine + 7 * 3600 * NS},
        {"wave_1d", "waveform, 1 day", 0, fine, fine + DAY},
        {"wave_30d", "waveform, 30 days", 0, end - 31 * DAY, end - DAY},
        {"wave_1y", "waveform, whole history", 0, start, end},
        {"trend_1y", "trend u2_pct 10 min, whole history", 1, start, end},
        {"rank_100", "ranking max u2_pct, H terminals only, 1 week", 2, end - 14 * DAY,
         end - 7 * DAY},
        {"rank_1000", "ranking max u2_pct, all terminals, 1 week", 2, end - 7 * DAY, end},
    };
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    FILE *jf = json_path ? fopen(json_path, "w") : NULL;
    if (jf)
        fprintf(jf, "{\"reps\":%d,\"results\":[", reps);
    printf("| query | reply | median ms | min ms | max ms | CPU median ms | reply bytes |\n");
    printf("|---|---|---:|---:|---:|---:|---:|\n");
    double *wall = xcalloc((size_t)reps, sizeof *wall), *cpu = xcalloc((size_t)reps, sizeof *cpu);
    for (int c = 0; c < ncases; c++) {
        job_t j = {.s = s, .from = cases[c].from, .to = cases[c].to, .kind = cases[c].kind};
        for (int r = 0; r < reps; r++) {
            int64_t w0 = time_mono_ns(), c0 = cpu_ns();
            int rc = run_job(&j);
            wall[r] = (double)(time_mono_ns() - w0) / 1e6;
            cpu[r] = (double)(cpu_ns() - c0) / 1e6;
            if (rc < 0) {
                fprintf(stderr, "hist_bench: %s failed: %s\n", cases[c].name, err_str(rc));
                return 1;
            }
        }
        describe(&j);
        qsort(wall, (size_t)reps, sizeof *wall, cmp_d);
        qsort(cpu, (size_t)reps, sizeof *cpu, cmp_d);
        printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %zu |\n", cases[c].what, j.note,
               wall[reps / 2], wall[0], wall[reps - 1], cpu[reps / 2], j.out.len);
        if (jf)
            fprintf(jf,
                    "%s{\"name\":\"%s\",\"what\":\"%s\",\"note\":\"%s\",\"med_ms\":%.3f,"
                    "\"min_ms\":%.3f,\"max_ms\":%.3f,\"cpu_med_ms\":%.3f,\"bytes\":%zu}",
                    c ? "," : "", cases[c].name, cases[c].what, j.note, wall[reps / 2], wall[0],
                    wall[reps - 1], cpu[reps / 2], j.out.len);
        buf_free(&j.out);
    }
    if (jf) {
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    free(wall);
    free(cpu);
    store_close(s);
    return 0;
}
