/* Waveform codec benchmark (docs/benchmarks.md, "Waveform codec"; bench/codec.sh runs it and the
 * general-purpose compressors on the same bytes).
 *
 * Generates the benchmark signals as blocks of interleaved int16 sample sets, exactly as a
 * terminal sends them, encodes every block with wcodec_encode_block (the form stored at rest),
 * checks that it decodes back bit for bit, and measures encode and decode speed (median of
 * --reps runs over all blocks, one thread, in thread CPU time so that other load on the machine
 * does not count), and the same blocks sent as wire chunks (segments of at most --chunk bytes,
 * each filled by wcodec_encode). With --outdir it also writes each signal's raw
 * samples (the concatenated blocks) to DIR/NAME.raw for flac/xz/zstd. Prints one JSON object per
 * signal on stdout.
 *
 * Signals:
 *   sim        gridsense-sim's default signal (sim/signal.c, linked: 4000 sets/s, 50 Hz, 6
 *              channels, harmonics, unbalance, load changes, frequency drift, white noise of
 *              0.05 % of nominal), 100 ms blocks, no disturbances (a quiet terminal)
 *   sim_dist   the same generator with 6 random dips/swells/interruptions per minute
 *   sim_60hz   the same at 60 Hz (period 66.7 sets: the hint is rounded to 67)
 *   sim_12k8   the same at 12800 sets/s (256 sets per cycle, a recorder's rate)
 *   comtrade   the COMTRADE test record of tests/integ/test_analyze.py (4 kHz, 50.2 Hz, 5th
 *              harmonic, a 100-ms dip on phase A, binary form scaled to 32000 counts at the
 *              peak): noise-free apart from the int16 rounding
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/signal.h"
#include "wcodec/wcodec.h"

#define NCH 6

typedef struct {
    const char *name;
    uint32_t rate, nominal, block_sets;
    double seconds, disturb;
    int comtrade;
} sigdef_t;

/* CPU time of this thread: the speed per core, whatever else the machine runs. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* tests/integ/test_analyze.py signal(), written as its write_binary() does. */
static void comtrade_signal(int16_t *out, uint32_t nsets)
{
    const double FS = 4000, F = 50.2, V = 57.735, I = 5.0, H5 = 0.05, PI = 3.14159265358979;
    double peak[NCH] = {0}, *rows = malloc(sizeof(double) * NCH * nsets);
    if (!rows)
        abort();
    for (uint32_t k = 0; k < nsets; k++) {
        double t = k / FS, ph = 2 * PI * F * t;
        for (int c = 0; c < 3; c++) {
            double th = ph - 2 * PI / 3 * c, amp = sqrt(2) * V;
            if (c == 0 && 4.0 <= t && t < 4.1)
                amp *= 0.5;
            rows[k * NCH + c] = amp * (cos(th) + H5 * cos(5 * th));
        }
        for (int c = 0; c < 3; c++) {
            double th = ph - 2 * PI / 3 * c - 30 * PI / 180;
            rows[k * NCH + 3 + c] = sqrt(2) * I * cos(th);
        }
    }
    for (uint32_t k = 0; k < nsets; k++)
        for (int c = 0; c < NCH; c++)
            if (fabs(rows[k * NCH + c]) > peak[c])
                peak[c] = fabs(rows[k * NCH + c]);
    for (uint32_t k = 0; k < nsets; k++)
        for (int c = 0; c < NCH; c++)
            out[k * NCH + c] = (int16_t)lround(rows[k * NCH + c] / (peak[c] / 32000));
    free(rows);
}

static void le16(uint8_t *dst, const int16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = (uint8_t)(uint16_t)src[i];
        dst[2 * i + 1] = (uint8_t)((uint16_t)src[i] >> 8);
    }
}

int main(int argc, char **argv)
{
    static const sigdef_t sigs[] = {
        {"sim", 4000, 50, 400, 60, 0, 0},      {"sim_dist", 4000, 50, 400, 60, 6, 0},
        {"sim_60hz", 4000, 60, 400, 60, 0, 0}, {"sim_12k8", 12800, 50, 1280, 20, 0, 0},
        {"comtrade", 4000, 50, 400, 14, 0, 1},
    };
    const char *outdir = NULL, *only = NULL;
    int reps = 5;
    double scale = 1.0;
    size_t chunk = 1000;
    int codec = WCODEC_ID_MODEL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--outdir") && i + 1 < argc)
            outdir = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--codec") && i + 1 < argc)
            codec = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--outdir DIR] [--reps N] [--scale F (signal length)] "
                    "[--only NAME] [--chunk BYTES (wire chunk payload, default 1000)] "
                    "[--codec 1|2 (default 2)]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 101)
        reps = 5;

    for (size_t s = 0; s < sizeof sigs / sizeof sigs[0]; s++) {
        const sigdef_t *d = &sigs[s];
        if (only && strcmp(only, d->name))
            continue;
        uint32_t bs = d->block_sets;
        uint32_t nblocks = (uint32_t)(d->seconds * scale * d->rate / bs);
        size_t nsets = (size_t)nblocks * bs, bbytes = (size_t)bs * NCH * 2;
        uint32_t hint = (d->rate + d->nominal / 2) / d->nominal;
        int16_t *smp = malloc(nsets * NCH * sizeof *smp);
        uint8_t *raw = malloc(nsets * NCH * 2), *dec = malloc(bbytes);
        size_t bound = wcodec_bound(bs, NCH, 1);
        uint8_t *enc = malloc(bound * nblocks);
        size_t *elen = malloc(sizeof *elen * nblocks), total = 0;
        double te[101], td[101];
        if (!smp || !raw || !dec || !enc || !elen)
            abort();

        if (d->comtrade) {
            comtrade_signal(smp, (uint32_t)nsets);
        } else {
            sig_gen_t g;
            sig_params_t p = {.rate = d->rate,
                              .nominal_hz = d->nominal,
                              .nominal_v = 57.735,
                              .nominal_a = 5,
                              .seed = 1 ^ 0xD1B54A32D192ED03ull,
                              .grid_seed = 1,
                              .disturb_per_min = d->disturb};
            if (sig_init(&g, &p) != 0)
                abort();
            for (uint32_t b = 0; b < nblocks; b++)
                sig_generate(&g, smp + (size_t)b * bs * NCH, bs);
        }
        le16(raw, smp, nsets * NCH);
        if (outdir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.raw", outdir, d->name);
            FILE *fp = fopen(path, "wb");
            if (!fp || fwrite(raw, 1, nsets * NCH * 2, fp) != nsets * NCH * 2 || fclose(fp)) {
                perror(path);
                return 1;
            }
        }
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            total = 0;
            for (uint32_t b = 0; b < nblocks; b++) {
                if (wcodec_encode_block_as(codec, raw + (size_t)b * bbytes, bs, NCH, 1, hint,
                                           enc + (size_t)b * bound, bound, &elen[b]) != 0)
                    abort();
                total += elen[b];
            }
            te[r] = now_s() - t0;
        }
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            for (uint32_t b = 0; b < nblocks; b++) {
                if (wcodec_decode_block_as(codec, enc + (size_t)b * bound, elen[b], bs, NCH, 1,
                                           dec) != 0)
                    abort();
                if (r == 0 && memcmp(dec, raw + (size_t)b * bbytes, bbytes) != 0) {
                    fprintf(stderr, "%s: block %u does not round-trip\n", d->name, b);
                    return 1;
                }
            }
            td[r] = now_s() - t0;
        }
        /* the wire: each block as segments of at most `chunk` bytes (wcodec_encode fills each) */
        double tc[101];
        size_t ctotal = 0, nchunks = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            ctotal = nchunks = 0;
            for (uint32_t b = 0; b < nblocks; b++) {
                uint32_t first = 0, n;
                size_t len;
                while (first < bs) {
                    if (wcodec_encode_as(codec, raw + (size_t)b * bbytes, bs, NCH, 1, hint, first,
                                         bs - first, enc, chunk, &n, &len) != 0)
                        abort();
                    if (r == 0) { /* untimed check: the chunk decodes into the block */
                        uint32_t n2;
                        size_t used;
                        double tp = now_s();
                        if (wcodec_decode_as(codec, enc, len, bs, NCH, 1, first, dec, &n2,
                                             &used) != 0 ||
                            n2 != n || used != len ||
                            memcmp(dec + (size_t)first * NCH * 2,
                                   raw + (size_t)b * bbytes + (size_t)first * NCH * 2,
                                   (size_t)n * NCH * 2) != 0) {
                            fprintf(stderr, "%s: block %u chunk at %u does not round-trip\n",
                                    d->name, b, first);
                            return 1;
                        }
                        t0 += now_s() - tp;
                    }
                    first += n;
                    ctotal += len;
                    nchunks++;
                }
            }
            tc[r] = now_s() - t0;
        }
        double ns = (double)nsets * NCH;
        printf("{\"codec\":%d,\"signal\":\"%s\",\"rate\":%u,\"nominal_hz\":%u,\"block_sets\":%u,"
               "\"channels\":%d,\"samples\":%.0f,\"period_hint\":%u,\"wcodec_bytes\":%zu,"
               "\"wcodec_bps\":%.4f,\"encode_msps\":%.1f,\"decode_msps\":%.1f,"
               "\"chunk_bytes\":%zu,\"chunks\":%zu,\"chunk_bps\":%.4f,\"chunk_encode_msps\":%.1f}\n",
               codec, d->name, d->rate, d->nominal, bs, NCH, ns, hint, total, total / ns,
               ns / median(te, reps) / 1e6, ns / median(td, reps) / 1e6, chunk, nchunks,
               ctotal / ns, ns / median(tc, reps) / 1e6);
        fflush(stdout);
        free(smp);
        free(raw);
        free(dec);
        free(enc);
        free(elen);
    }
    return 0;
}
