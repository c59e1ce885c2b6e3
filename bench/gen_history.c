/* A year of history for the historian benchmarks (docs/benchmarks.md "Historian queries"),
 * written quickly THROUGH THE STORE, never with SQL of its own:
 *   - terminals H0001.. (store_terminal_add, one transaction);
 *   - 10-min and 2-h aggregates for --days days of the first --year-terminals terminals (default:
 *     all) and the last --recent-days (default 14) of the others, as the analysis writes them
 *     (STORE_ITEM_MEASUREMENT items through the store writer: the measurement_trend triggers
 *     run as in production; they cost ~50 µs per aggregate, which makes a year of 100 terminals,
 *     5.7 M aggregates, a matter of 10 to 60 minutes on a shared 2-core machine);
 *   - for the first --pyr-terminals terminals, the waveform summary pyramid of the same days
 *     at the 1 min .. 1 day levels, and for the --fine-days days before the last one at the
 *     1 s and 10 s levels too (store_pyramid_put): each finest row synthesised from a signal
 *     model (RMS with a daily profile and noise; min/max its ±peak; sum of squares n·RMS²),
 *     every coarser row the merge of its children (store_pyramid_merge), so the levels agree with
 *     each other as the writer's would; a few outages per terminal (no rows: gaps);
 *   - for those terminals, --raw-s seconds of real 4 kS/s × 6 channel blocks at the end, through
 *     the writer (which computes their pyramid rows itself, at every level), and one block at
 *     the very start that records the channel layout (block_layouts) the rows are read under;
 *   - --fleet more terminals (F0001..) with the last 7 days of 10-min aggregates (for the
 *     1,000-terminal ranking).
 * The synthetic rows never share a bucket with rows the writer computed: the synthetic days
 * are [day 1, day --days − 1), the writer's blocks lie in day 0 (the layout block) and in the
 * last day (the raw tail).
 *
 *   gen_history --data DIR [--terminals 100] [--days 365] [--pyr-terminals 10] [--raw-s 600]
 *               [--fleet 900] [--fine-days 2] [--year-terminals N] [--recent-days 14] [--seed 1]
 * Prints one JSON line: what was written, how long it took, the database size, and the range
 * (t_end_ns) the benchmark should query.
 */
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RATE   4000
#define BLK    400 /* 100 ms blocks */
#define NCH    6
#define SC_V   0.02f
#define SC_I   0.0005f
#define NS     1000000000LL
#define MIN_NS (60 * NS)
#define DAY_NS (86400 * NS)
/* Day 0 of the history: 2025-01-01T00:00:00Z. */
#define START_NS 1735689600000000000LL

static uint64_t rng_state = 1;
static double rnd(void) /* uniform [0, 1) (xorshift64*) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* The model: secondary RMS of channel c of terminal k at time t (ns). Voltages 57.7 V ± a daily
 * 3 % swing; currents a load profile 2..6 A. */
static double model_rms(int k, int c, int64_t t)
{
    double day = (double)((t - START_NS) % DAY_NS) / (double)DAY_NS;
    double ph = 2 * M_PI * (day + 0.03 * (k % 7));
    if (c < 3)
        return 57.735 * (1 + 0.03 * sin(ph) + 0.004 * (c - 1));
    return 4 + 2 * sin(ph - 0.5) + 0.2 * c;
}

static const store_chan_t LAYOUT[NCH] = {
    {0, 1, 1, 1, SC_V}, {1, 1, 2, 1, SC_V}, {2, 1, 3, 1, SC_V},
    {3, 2, 1, 2, SC_I}, {4, 2, 2, 2, SC_I}, {5, 2, 3, 2, SC_I},
};

static int64_t seq_at(int64_t t) /* the block seq a terminal streaming since START would use */
{
    return (t - START_NS) / (BLK * NS / RATE) + 1;
}

static store_item_t *make_block(const char *tid, int k, int64_t t0)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->seq = (uint64_t)seq_at(t0);
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
        double t = (double)(t0 - START_NS) / 1e9 + (double)i / RATE;
        for (int c = 0; c < NCH; c++) {
            double a = model_rms(k, c, t0) * M_SQRT2 / (c < 3 ? SC_V : SC_I);
            double v = a * sin(2 * M_PI * 50 * t - (c % 3) * 2 * M_PI / 3 - (c < 3 ? 0 : 0.4));
            v += rnd() * 6 - 3;
            uint16_t u = (uint16_t)(int16_t)lround(v);
            it->data[(i * NCH + c) * 2] = (uint8_t)u;
            it->data[(i * NCH + c) * 2 + 1] = (uint8_t)(u >> 8);
        }
    }
    it->nlayout = NCH;
    memcpy(it->layout, LAYOUT, sizeof LAYOUT);
    return it;
}

static void throttle(store_t *s)
{
    size_t items = 0;
    store_queue_depth(s, &items, NULL);
    while (items > 20000) { /* bounded memory: the writer sets the pace */
        usleep(2000);
        store_queue_depth(s, &items, NULL);
    }
}

/* One aggregate as the analysis writes it (src/ana/json.c ana_json_agg, without the harmonic
 * groups). */
static void submit_measurement(store_t *s, const char *tid, int k, const char *interval,
                               int64_t end, int64_t len, double u2)
{
    store_item_t *it = store_item_new(STORE_ITEM_MEASUREMENT);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    snprintf(it->reason, sizeof it->reason, "%s", interval);
    it->m_start_ns = end - len;
    it->m_end_ns = end;
    uint32_t count = (uint32_t)(len / (200 * 1000000LL)); /* 10/12-cycle windows */
    it->m_count = count;
    buf_t b = {0};
    char t0[40], t1[40];
    buf_printf(&b,
               "{\"interval\":\"%s\",\"t_start\":\"%s\",\"t_start_ns\":%" PRId64
               ",\"t_end\":\"%s\",\"t_end_ns\":%" PRId64
               ",\"count\":%u,\"expected\":%u,\"flags\":[],\"freq\":{\"mean\":%.4f,\"min\":%.4f,"
               "\"max\":%.4f},\"u0_pct\":%.3f,\"u2_pct\":%.3f,\"i0_pct\":%.3f,\"i2_pct\":%.3f,"
               "\"p\":%.1f,\"q\":%.1f,\"s_eff\":%.1f,\"channels\":[",
               interval, time_fmt_utc(end - len, t0, sizeof t0), end - len,
               time_fmt_utc(end, t1, sizeof t1), end, count, count, 50 + (rnd() - 0.5) * 0.04,
               49.95 + rnd() * 0.02, 50.03 + rnd() * 0.02, rnd() * 0.2, u2, rnd() * 3,
               rnd() * 5 + 1, 700 + rnd() * 100, 90 + rnd() * 20, 720 + rnd() * 100);
    static const char *names[NCH] = {"Ua", "Ub", "Uc", "Ia", "Ib", "Ic"};
    for (int c = 0; c < NCH; c++) {
        double r = model_rms(k, c, end - len / 2);
        buf_printf(&b,
                   "%s{\"name\":\"%s\",\"rms\":%.4f,\"rms_min\":%.4f,\"rms_max\":%.4f,"
                   "\"fundamental\":%.4f,\"thd_pct\":%.3f}",
                   c ? "," : "", names[c], r, r * 0.99, r * 1.01, r * 0.999,
                   (c < 3 ? 2 : 8) + rnd());
    }
    buf_puts(&b, "]}");
    it->data = (uint8_t *)b.data; /* the item owns it */
    it->data_len = b.len;
    store_submit(s, it);
}

/* The pyramid of terminal k over whole days [d0, d1): 1-min rows from the model, merged upward.
 * Outages: no rows. Returns rows written, or a negative code. */
enum { L1S, L10S, L1M, L10M, L1H, L1D };

/* One row of the model: [b, b + width) fully covered at 4 kS/s. */
static void model_row(store_pyr_row_t *r, int k, int level, int64_t b, int64_t width)
{
    memset(r, 0, sizeof *r);
    r->level = level;
    r->bucket_ns = b;
    r->t_first_ns = b;
    r->t_end_ns = b + width;
    r->seq_first = (uint64_t)seq_at(b);
    r->seq_last = (uint64_t)seq_at(b + width - 1);
    r->sample_rate = RATE;
    r->time_quality = 1;
    r->channel_mask = (1u << NCH) - 1;
    r->n = (uint32_t)(width / NS * RATE);
    for (int c = 0; c < NCH; c++) {
        double rms = model_rms(k, c, b) * (1 + (rnd() - 0.5) * 0.01) / (c < 3 ? SC_V : SC_I);
        double pk = rms * M_SQRT2 * (1 + rnd() * 0.01);
        r->ch[c] =
            (store_pyr_stat_t){(int32_t)-lround(pk), (int32_t)lround(pk), rms * rms * r->n, r->n};
    }
}

/* The pyramid of terminal k over whole days [d0, d1), from day fine_from on with the 1 s and
 * 10 s levels too. Returns rows written, or a negative code. */
static int64_t synth_pyramid(store_t *s, const char *tid, int k, int d0, int d1, int fine_from)
{
    store_pyr_row_t *rows = xmalloc(sizeof *rows * (86400 + 8640 + 1440 + 144 + 24 + 1));
    int64_t written = 0;
    /* two outages of a few hours per terminal, somewhere in the year */
    int64_t out_a = START_NS + (int64_t)((d0 + rnd() * (d1 - d0)) * DAY_NS);
    int64_t out_b = START_NS + (int64_t)((d0 + rnd() * (d1 - d0)) * DAY_NS);
    int64_t out_len = (int64_t)(1 + rnd() * 5) * 3600 * NS;
    int rc = store_transaction(s, STORE_TX_BEGIN);
    if (rc < 0)
        goto fail;
    for (int d = d0; d < d1; d++) {
        int64_t day = START_NS + (int64_t)d * DAY_NS;
        size_t n = 0;
        store_pyr_row_t dayrow, hour, ten;
        memset(&dayrow, 0, sizeof dayrow);
        dayrow.level = L1D;
        dayrow.bucket_ns = day;
        for (int h = 0; h < 24; h++) {
            memset(&hour, 0, sizeof hour);
            hour.level = L1H;
            hour.bucket_ns = day + (int64_t)h * 3600 * NS;
            for (int tm = 0; tm < 6; tm++) {
                memset(&ten, 0, sizeof ten);
                ten.level = L10M;
                ten.bucket_ns = hour.bucket_ns + (int64_t)tm * 600 * NS;
                for (int m = 0; m < 10; m++) {
                    int64_t b = ten.bucket_ns + (int64_t)m * MIN_NS;
                    if ((b >= out_a && b < out_a + out_len) || (b >= out_b && b < out_b + out_len))
                        continue;
                    store_pyr_row_t minute;
                    if (d >= fine_from) { /* 1 s rows, merged into 10 s rows, into the minute */
                        memset(&minute, 0, sizeof minute);
                        minute.level = L1M;
                        minute.bucket_ns = b;
                        for (int x = 0; x < 6; x++) {
                            store_pyr_row_t tens;
                            memset(&tens, 0, sizeof tens);
                            tens.level = L10S;
                            tens.bucket_ns = b + (int64_t)x * 10 * NS;
                            for (int y = 0; y < 10; y++) {
                                store_pyr_row_t *r = &rows[n++];
                                model_row(r, k, L1S, tens.bucket_ns + (int64_t)y * NS, NS);
                                store_pyramid_merge(&tens, r);
                            }
                            rows[n++] = tens;
                            store_pyramid_merge(&minute, &tens);
                        }
                    } else {
                        model_row(&minute, k, L1M, b, MIN_NS);
                    }
                    rows[n++] = minute;
                    store_pyramid_merge(&ten, &minute);
                }
                if (ten.n)
                    rows[n++] = ten;
                store_pyramid_merge(&hour, &ten);
            }
            if (hour.n)
                rows[n++] = hour;
            store_pyramid_merge(&dayrow, &hour);
        }
        if (dayrow.n)
            rows[n++] = dayrow;
        rc = store_pyramid_put(s, tid, rows, n);
        if (rc < 0)
            goto fail;
        written += (int64_t)n;
        if (d % 30 == 29) { /* a commit a month: bounded WAL */
            if ((rc = store_transaction(s, STORE_TX_COMMIT)) < 0 ||
                (rc = store_transaction(s, STORE_TX_BEGIN)) < 0)
                goto fail;
        }
    }
    rc = store_transaction(s, STORE_TX_COMMIT);
    if (rc < 0)
        goto fail;
    free(rows);
    return written;
fail:
    store_transaction(s, STORE_TX_ROLLBACK);
    free(rows);
    return rc;
}

int main(int argc, char **argv)
{
    const char *data = NULL;
    int nterm = 100, days = 365, npyr = 10, raw_s = 600, fleet = 900, fine_days = 2;
    int nyear = -1, recent_days = 14;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--terminals") && i + 1 < argc)
            nterm = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc)
            days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pyr-terminals") && i + 1 < argc)
            npyr = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raw-s") && i + 1 < argc)
            raw_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fleet") && i + 1 < argc)
            fleet = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fine-days") && i + 1 < argc)
            fine_days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--year-terminals") && i + 1 < argc)
            nyear = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--recent-days") && i + 1 < argc)
            recent_days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state = (uint64_t)strtoull(argv[++i], NULL, 10) | 1;
        else {
            fprintf(stderr, "usage: gen_history --data DIR [--terminals N] [--days D]"
                            " [--pyr-terminals N] [--raw-s S] [--fleet N] [--fine-days N]"
                            " [--year-terminals N] [--recent-days N] [--seed N]\n");
            return 2;
        }
    }
    if (nyear < 0)
        nyear = nterm;
    if (!data || nyear > nterm || recent_days < 7 || nterm < 1 || nterm > 9999 || days < 3 ||
        days > 3650 || npyr < 0 || npyr > nterm || raw_s < 0 || raw_s > 86000 || fleet < 0 ||
        fleet > 9999 || fine_days < 0 || fine_days > days - 2) {
        fprintf(stderr, "gen_history: --data is required; --terminals 1..9999, --days 3..3650,"
                        " --pyr-terminals <= --terminals, --raw-s 0..86000, --fleet 0..9999,"
                        " --fine-days 0..days-2\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    store_t *s = NULL;
    char err[256];
    store_opts_t so = {.sync_full = 0};
    if (store_open(data, &so, &s, err, sizeof err) != 0) {
        fprintf(stderr, "gen_history: %s\n", err);
        return 1;
    }
    int64_t t_start = time_mono_ns();
    int64_t end_ns = START_NS + (int64_t)days * DAY_NS;

    /* terminals */
    if (store_transaction(s, STORE_TX_BEGIN) < 0)
        return 1;
    for (int k = 0; k < nterm + fleet; k++) {
        store_terminal_t t;
        memset(&t, 0, sizeof t);
        if (k < nterm)
            snprintf(t.id, sizeof t.id, "H%04d", k + 1);
        else
            snprintf(t.id, sizeof t.id, "F%04d", k - nterm + 1);
        t.nominal_hz = 50;
        t.vt_ratio = 100;
        t.ct_ratio = 40;
        int rc = store_terminal_add(s, &t);
        if (rc < 0 && rc != GS_EEXISTS) {
            fprintf(stderr, "gen_history: cannot add %s: %s\n", t.id, err_str(rc));
            return 1;
        }
    }
    if (store_transaction(s, STORE_TX_COMMIT) < 0)
        return 1;

    /* aggregates, interval by interval across terminals (as the analysis delivers them) */
    if (store_writer_start(s, NULL, NULL) != 0)
        return 1;
    double *u2 = xcalloc((size_t)(nterm + fleet), sizeof *u2);
    for (int k = 0; k < nterm + fleet; k++)
        u2[k] = 0.2 + rnd();
    int64_t nmeas = 0;
    int64_t fleet_from = end_ns - 7 * DAY_NS, recent_from = end_ns - recent_days * DAY_NS;
    for (int64_t e = START_NS + 600 * NS; e <= end_ns; e += 600 * NS) {
        int nk = e > fleet_from ? nterm + fleet : e > recent_from ? nterm : nyear;
        for (int k = 0; k < nk; k++) {
            char tid[16];
            if (k < nterm)
                snprintf(tid, sizeof tid, "H%04d", k + 1);
            else
                snprintf(tid, sizeof tid, "F%04d", k - nterm + 1);
            /* a random walk with rare excursions: the unbalance a ranking looks for */
            u2[k] += (rnd() - 0.5) * 0.05;
            if (u2[k] < 0.05)
                u2[k] = 0.05;
            if (u2[k] > 3)
                u2[k] = 3;
            double v = rnd() < 0.001 ? u2[k] + 2 * rnd() : u2[k];
            submit_measurement(s, tid, k, "10min", e, 600 * NS, v);
            nmeas++;
            if ((e - START_NS) % (7200 * NS) == 0) {
                submit_measurement(s, tid, k, "2h", e, 7200 * NS, v);
                nmeas++;
            }
        }
        throttle(s);
    }
    /* the channel layout block at the start, and the raw tail, through the writer */
    int64_t nblocks = 0;
    int64_t raw_from = end_ns - (int64_t)raw_s * NS;
    for (int k = 0; k < npyr; k++) {
        char tid[16];
        snprintf(tid, sizeof tid, "H%04d", k + 1);
        store_submit(s, make_block(tid, k, START_NS));
        nblocks++;
    }
    for (int64_t t = raw_from; t < end_ns; t += BLK * NS / RATE) {
        for (int k = 0; k < npyr; k++) {
            char tid[16];
            snprintf(tid, sizeof tid, "H%04d", k + 1);
            store_submit(s, make_block(tid, k, t));
            nblocks++;
        }
        throttle(s);
    }
    store_writer_stop(s);
    double meas_s = (double)(time_mono_ns() - t_start) / 1e9;

    /* the pyramid of days 1 .. days − 1 (day 0: the layout block; the last: the raw tail) */
    int64_t t_pyr = time_mono_ns(), nrows = 0;
    for (int k = 0; k < npyr; k++) {
        char tid[16];
        snprintf(tid, sizeof tid, "H%04d", k + 1);
        int64_t n = synth_pyramid(s, tid, k, 1, days - 1, days - 1 - fine_days);
        if (n < 0) {
            fprintf(stderr, "gen_history: pyramid of %s: %s\n", tid, err_str((int)n));
            return 1;
        }
        nrows += n;
    }
    double pyr_s = (double)(time_mono_ns() - t_pyr) / 1e9;
    store_close(s);

    char path[512];
    snprintf(path, sizeof path, "%s/gridsense.db", data);
    struct stat sb;
    long long bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    printf("{\"terminals\":%d,\"fleet\":%d,\"days\":%d,\"pyr_terminals\":%d,\"raw_s\":%d,"
           "\"fine_days\":%d,\"year_terminals\":%d,\"recent_days\":%d,\"measurements\":%" PRId64
           ",\"blocks\":%" PRId64 ",\"pyramid_rows\":%" PRId64 ",\"start_ns\":%" PRId64
           ",\"end_ns\":%" PRId64
           ",\"measurements_s\":%.1f,\"pyramid_s\":%.1f,\"total_s\":%.1f,\"db_bytes\":%lld}\n",
           nterm, fleet, days, npyr, raw_s, fine_days, nyear, recent_days, nmeas, nblocks, nrows,
           (int64_t)START_NS, end_ns, meas_s, pyr_s, (double)(time_mono_ns() - t_start) / 1e9,
           bytes);
    free(u2);
    return 0;
}
