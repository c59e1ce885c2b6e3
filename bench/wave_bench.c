/* Stored-waveform latency (src/wave): how long the API's waveform queries take against a store
 * holding a realistic history, measured in-process around wave_query / wave_event (the HTTP
 * layer's cost is not included). Part of `make bench` (bench/run.sh, BENCHES=wave).
 *
 * Set-up: T terminals streaming 4 kS/s × 6 channels (3 V + 3 I, int16, 100 ms blocks) for
 * --history seconds, interleaved as the writer stores them from many terminals at once, written
 * through the real store writer (synchronous=NORMAL), and one 200 ms dip event per terminal 30 s
 * before the end. Then, --reps times each (median, min, max; the first run apart):
 *   raw10     the last 10 s of one terminal as raw samples (max_points 100000 ≥ 40000 sets)
 *   env10     the same 10 s as a 2000-point envelope
 *   env600    the last 600 s (the longest range) as a 2000-point envelope
 *   event     the dip's waveform (pre 0.5 s, post 1 s: envelope of 2000 points + RMS(1/2))
 * Prints a markdown section; --json FILE also writes the figures as JSON.
 *
 *   wave_bench [--history S] [--terminals T] [--reps N] [--json FILE] [--only NAME] [--keep]
 */
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "wave/wave.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RATE 4000
#define BLK  400
#define NCH  6
#define T0   1764000000000000000LL

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            rm_rf(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* CPU time of this thread (ns): robust where wall time is not, on a machine shared with other
 * load. */
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
    const char *name, *what;
    double first_ms, med_ms, min_ms, max_ms, cpu_med_ms;
    size_t bytes;
    char mode[16];
} result_t;

static store_item_t *make_block(const char *tid, uint64_t seq, int64_t t0)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->seq = seq;
    it->t0_ns = t0;
    it->sample_rate = RATE;
    it->channel_mask = (1u << NCH) - 1;
    it->nchannels = NCH;
    it->sample_fmt = 1;
    it->time_quality = 1;
    it->nsamples = BLK;
    it->data_len = (size_t)BLK * NCH * 2;
    it->data = xmalloc(it->data_len);
    for (int i = 0; i < BLK; i++) {
        double t = (double)(t0 - T0) / 1e9 + (double)i / RATE;
        for (int c = 0; c < NCH; c++) {
            double ph = 2 * M_PI * 49.97 * t - (c % 3) * 2 * M_PI / 3;
            double v = c < 3 ? 325.0 / 0.02 * sin(ph) : 7.0 / 0.0005 * sin(ph - 0.4);
            /* a little noise so that values do not repeat block after block */
            v += (double)((seq * 7919 + (uint64_t)i * 31 + (uint64_t)c * 17) % 11) - 5;
            uint16_t u = (uint16_t)(int16_t)lround(v);
            it->data[(i * NCH + c) * 2] = (uint8_t)u;
            it->data[(i * NCH + c) * 2 + 1] = (uint8_t)(u >> 8);
        }
    }
    it->nlayout = NCH;
    for (int c = 0; c < NCH; c++)
        it->layout[c] = (store_chan_t){.index = (uint8_t)c,
                                       .kind = c < 3 ? 1 : 2,
                                       .phase = (uint8_t)(c % 3 + 1),
                                       .unit = c < 3 ? 1 : 2,
                                       .scale = c < 3 ? 0.02f : 0.0005f};
    return it;
}

int main(int argc, char **argv)
{
    int history = 600, nterm = 4, reps = 15, keep = 0;
    const char *json_path = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--history") && i + 1 < argc)
            history = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--terminals") && i + 1 < argc)
            nterm = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: wave_bench [--history S] [--terminals T] [--reps N]"
                            " [--json FILE] [--only raw10|env10|env600|event] [--keep]\n");
            return 2;
        }
    }
    if (history < 60 || nterm < 1 || nterm > 100 || reps < 1) {
        fprintf(stderr, "wave_bench: --history >= 60, --terminals 1..100, --reps >= 1\n");
        return 2;
    }
    log_set_level(LOG_WARN);

    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/gs_wavebench_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    store_t *s = NULL;
    char err[256];
    store_opts_t so = {.sync_full = 0};
    if (store_open(dir, &so, &s, err, sizeof err) != 0) {
        fprintf(stderr, "wave_bench: %s\n", err);
        return 1;
    }
    for (int k = 0; k < nterm; k++) {
        store_terminal_t t;
        memset(&t, 0, sizeof t);
        snprintf(t.id, sizeof t.id, "W%d", k + 1);
        t.nominal_hz = 50;
        t.vt_ratio = 100;
        t.ct_ratio = 40;
        if (store_terminal_add(s, &t) != 0)
            return 1;
    }

    /* History, terminals interleaved block by block as the writer gets them. */
    int64_t t_setup = time_mono_ns();
    int nblocks = history * 10;
    if (store_writer_start(s, NULL, NULL) != 0)
        return 1;
    for (int b = 0; b < nblocks; b++) {
        for (int k = 0; k < nterm; k++) {
            char tid[16];
            snprintf(tid, sizeof tid, "W%d", k + 1);
            store_submit(s, make_block(tid, (uint64_t)b + 1, T0 + (int64_t)b * 100000000));
        }
        size_t items = 0;
        store_queue_depth(s, &items, NULL);
        while (items > 4000) { /* bounded memory */
            usleep(2000);
            store_queue_depth(s, &items, NULL);
        }
    }
    int64_t end_ns = T0 + (int64_t)nblocks * 100000000;
    int64_t ev_start = end_ns - 30000000000LL;
    for (int k = 0; k < nterm; k++) {
        store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "W%d", k + 1);
        snprintf(it->reason, sizeof it->reason, "dip");
        it->ev_start_ns = ev_start;
        it->ev_duration_ns = 200000000;
        it->ev_extreme = 150;
        it->ev_extreme_pct = 65;
        it->ev_reference = 230;
        it->ev_channels = 1;
        store_submit(s, it);
    }
    store_writer_stop(s);
    double setup_s = (double)(time_mono_ns() - t_setup) / 1e9;
    int64_t nstored = 0;
    uint64_t a, z;
    store_block_stats(s, "W1", &nstored, &a, &z);
    store_pq_event_t ev;
    int64_t ev_id = 0;
    for (int64_t id = 1; id < 1000 && !ev_id; id++)
        if (store_pq_event_get(s, id, &ev) == 0 && !strcmp(ev.terminal_id, "W1"))
            ev_id = id;

    result_t res[] = {
        {"raw10", "last 10 s, raw samples (40,000 sets × 6 ch)", 0, 0, 0, 0, 0, 0, ""},
        {"env10", "last 10 s, envelope of 2,000 points", 0, 0, 0, 0, 0, 0, ""},
        {"env600", "last 600 s, envelope of 2,000 points", 0, 0, 0, 0, 0, 0, ""},
        {"event", "event waveform (0.5 s + 0.2 s dip + 1 s; 2,000 points + RMS(1/2))", 0, 0, 0, 0,
         0, 0, ""},
    };
    int nres = (int)(sizeof res / sizeof res[0]);
    double *ms = xmalloc((size_t)reps * sizeof *ms), *cpu = xmalloc((size_t)reps * sizeof *cpu);
    buf_t out = {0};
    int failed = 0;
    for (int r = 0; r < nres; r++) {
        if (only && strcmp(only, res[r].name) != 0)
            continue;
        for (int i = 0; i <= reps; i++) {
            int64_t t = time_mono_ns(), tc = cpu_ns();
            int rc;
            if (r == 3) {
                rc = wave_event(s, ev_id, -1, -1, 2000, WAVE_SIDE_PRIMARY, &out, err, sizeof err);
            } else {
                int64_t span = r == 2 ? 600000000000LL : 10000000000LL;
                if (span > (int64_t)history * 1000000000)
                    span = (int64_t)history * 1000000000;
                wave_req_t q = {.terminal_id = "W1",
                                .from_ns = end_ns - span,
                                .to_ns = end_ns,
                                .max_points = r == 0 ? 100000 : 2000};
                rc = wave_query(s, &q, &out, err, sizeof err);
            }
            double d = (double)(time_mono_ns() - t) / 1e6;
            double dc = (double)(cpu_ns() - tc) / 1e6;
            if (rc != 0) {
                fprintf(stderr, "wave_bench: %s: %s\n", res[r].name, err);
                failed = 1;
                break;
            }
            if (i == 0)
                res[r].first_ms = d;
            else {
                ms[i - 1] = d;
                cpu[i - 1] = dc;
            }
        }
        if (failed)
            break;
        qsort(ms, (size_t)reps, sizeof *ms, cmp_d);
        res[r].med_ms = ms[reps / 2];
        res[r].min_ms = ms[0];
        res[r].max_ms = ms[reps - 1];
        qsort(cpu, (size_t)reps, sizeof *cpu, cmp_d);
        res[r].cpu_med_ms = cpu[reps / 2];
        res[r].bytes = out.len;
        const char *m = strstr(out.data, "\"mode\":\"");
        if (m)
            sscanf(m + 8, "%15[a-z]", res[r].mode);
    }
    buf_free(&out);
    free(ms);
    free(cpu);
    store_close(s);
    if (!keep)
        rm_rf(dir);
    if (failed)
        return 1;

    printf("## Stored waveforms (wave_bench)\n\n");
    printf("Store: %d terminals × %d s of 4 kS/s × 6 channels int16 in 100 ms blocks (%d blocks, "
           "%.0f MB of samples), interleaved; written in %.1f s. In-process wave_query / "
           "wave_event on the store's synchronous connection, %d runs each after a first "
           "(cold connection) run; wall times in ms, and the median CPU time of the calling thread "
           "(what the query costs when the machine is shared).\n\n",
           nterm, history, nblocks * nterm, (double)nblocks * nterm * BLK * NCH * 2 / 1e6, setup_s,
           reps);
    printf("| query | mode | reply bytes | first | median | min | max | CPU median |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < nres; r++)
        if (!only || !strcmp(only, res[r].name))
            printf("| %s | %s | %zu | %.2f | %.2f | %.2f | %.2f | %.2f |\n", res[r].what,
                   res[r].mode, res[r].bytes, res[r].first_ms, res[r].med_ms, res[r].min_ms,
                   res[r].max_ms, res[r].cpu_med_ms);
    printf("\nTarget: the last 10 s in < 50 ms (issue 8, section 3).\n");
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            perror(json_path);
            return 1;
        }
        fprintf(f, "{\"terminals\":%d,\"history_s\":%d,\"reps\":%d,\"results\":[", nterm, history,
                reps);
        for (int r = 0; r < nres; r++)
            fprintf(f,
                    "%s{\"name\":\"%s\",\"mode\":\"%s\",\"bytes\":%zu,\"first_ms\":%.3f,"
                    "\"median_ms\":%.3f,\"min_ms\":%.3f,\"max_ms\":%.3f,\"cpu_median_ms\":%.3f}",
                    r ? "," : "", res[r].name, res[r].mode, res[r].bytes, res[r].first_ms,
                    res[r].med_ms, res[r].min_ms, res[r].max_ms, res[r].cpu_med_ms);
        fprintf(f, "]}\n");
        fclose(f);
    }
    (void)nstored;
    return 0;
}
