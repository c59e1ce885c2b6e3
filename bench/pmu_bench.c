/* Accuracy benchmark of the reporting-rate synchrophasor estimator (src/dsp/pmu.c) under the
 * IEEE C37.118.1-2011 + 1a-2014 M-class test conditions, against analytic truth
 * (tests/unit/pmu_sig.h): steady state over the frequency range, 10 % harmonics 2..50,
 * out-of-band interference, +-1 Hz/s ramps, amplitude and phase modulation, +-10 % magnitude
 * and +-10 degree phase steps (response time, delay, overshoot), for 50 and 60 Hz at two
 * reporting rates each. Prints one table row per condition: worst TVE/FE/RFE over every
 * channel and the positive sequence, the limit, PASS/FAIL. Then the cost per terminal.
 *
 *   build/bench/pmu_bench            (docs/benchmarks.md, "Reporting-rate synchrophasors")
 */
#include <stdio.h>
#include <time.h>

#include "tests/unit/pmu_sig.h"

#define FS    4000.0
#define FS_HI 12800.0 /* harmonics up to the 50th (3 kHz at 60 Hz) */

static int nfail;

static double mrange(int rate)
{
    return rate < 10 ? 2.0 : rate < 25 ? rate / 5.0 : 5.0; /* Table 3 (M) */
}

static void acc(ps_stats_t *w, const ps_stats_t *s)
{
    if (s->tve > w->tve)
        w->tve = s->tve;
    if (s->fe > w->fe)
        w->fe = s->fe;
    if (s->rfe > w->rfe)
        w->rfe = s->rfe;
    w->n += s->n;
    w->off_grid += s->off_grid;
}

/* One row: limits <= 0 are "not specified" (shown as -, not judged). */
static void row(int f0, int rate, const char *what, const ps_stats_t *w, double ltve, double lfe,
                double lrfe)
{
    int ok = w->tve < ltve && (lfe <= 0 || w->fe < lfe) && (lrfe <= 0 || w->rfe < lrfe) &&
             w->off_grid == 0 && w->n > 0;
    nfail += !ok;
    char a[24], b[24];
    snprintf(a, sizeof a, lfe > 0 ? "%.3f" : "-", lfe);
    snprintf(b, sizeof b, lrfe > 0 ? "%.2f" : "-", lrfe);
    printf("| %d Hz | %2d/s | %-34s | %6d | %8.4f | %4.1f | %9.5f | %6s | %8.4f | %5s | %s |\n", f0,
           rate, what, w->n, w->tve * 100, ltve * 100, w->fe, a, w->rfe, b, ok ? "pass" : "FAIL");
}

/* Over +-5 Hz at every rate: the M-class range (Table 3) is narrower below 25/s (+-Fs/5), but
 * a terminal's frequency does not know the reporting rate. */
static void steady(int f0, int rate)
{
    double r = 5.0;
    ps_stats_t w = {0}, s;
    for (double df = -r; df <= r + 1e-9; df += r / 10) {
        ps_t g;
        ps_default(&g, FS, f0);
        g.f = f0 + df;
        ps_run(&g, rate, 0.1, 3.0, 400, 1, -1, -1, &s, NULL, NULL);
        acc(&w, &s);
    }
    char what[64];
    snprintf(what, sizeof what, "steady state, f0 %+.1f..%+.1f Hz", -r, r);
    row(f0, rate, what, &w, 0.01, 0.005, 0.1); /* Table 3 (M) */
}

static void harmonics(int f0, int rate)
{
    ps_stats_t w = {0}, s;
    for (int h = 2; h <= 50; h++) {
        ps_t g;
        ps_default(&g, FS_HI, f0);
        g.horder = h;
        g.hrel = 0.1;
        ps_run(&g, rate, 0.1, 2.0, 1280, 1, -1, -1, &s, NULL, NULL);
        acc(&w, &s);
    }
    /* Table 3 (M): TVE 1 %, FE 25 mHz for Fs > 20 (5 mHz below, 1a-2014), RFE not specified */
    row(f0, rate, "10 % harmonic, orders 2..50", &w, 0.01, rate > 20 ? 0.025 : 0.005, 0);
}

static void out_of_band(int f0, int rate)
{
    ps_stats_t w = {0}, s;
    double lo = f0 - rate / 2.0, hi = f0 + rate / 2.0;
    for (int k = -1; k <= 1; k++) /* fundamental at f0 and f0 +- 10 % of Fs/2 (5.5.6) */
        for (double ft = 10; ft <= 2 * f0; ft += 1.0) {
            if (ft > lo && ft < hi)
                continue;
            ps_t g;
            ps_default(&g, FS, f0);
            g.f = f0 + k * 0.1 * rate / 2.0;
            g.tone_f = ft;
            g.tone_rel = 0.1;
            ps_run(&g, rate, 0.1, 2.0, 400, 1, -1, -1, &s, NULL, NULL);
            acc(&w, &s);
        }
    row(f0, rate, "10 % out-of-band tone, 10 Hz..2 f0", &w, 0.013, 0.01, 0); /* Table 4 (M) */
}

static void ramp(int f0, int rate)
{
    double r = mrange(rate);
    ps_stats_t w = {0}, s;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        ps_t g;
        ps_default(&g, FS, f0);
        g.f = f0 - sgn * r;
        g.rocof = sgn;
        /* exclusion interval (5.5.9): the estimator never sees the ramp's ends here, the
         * signal ramps through the whole run, which stays within the range */
        ps_run(&g, rate, 0.0, 2 * r, 400, 1, -1, -1, &s, NULL, NULL);
        acc(&w, &s);
    }
    char what[64];
    snprintf(what, sizeof what, "ramp +-1 Hz/s over f0 +-%.1f Hz", r);
    row(f0, rate, what, &w, 0.01, 0.01, 0.2); /* Table 8 (M, 1a-2014) */
}

static void modulation(int f0, int rate, int pm)
{
    double fmax = mrange(rate);
    ps_stats_t w = {0}, s;
    for (double fm = 0.1; fm <= fmax + 1e-9; fm += fmax / 10) {
        ps_t g;
        ps_default(&g, FS, f0);
        g.fm = fm;
        if (pm)
            g.ka = 0.1;
        else
            g.kx = 0.1;
        ps_run(&g, rate, 0.0, fm < 0.5 ? 8.0 : 4.0, 400, 1, -1, -1, &s, NULL, NULL);
        acc(&w, &s);
    }
    char what[64];
    snprintf(what, sizeof what, "%s 0.1, fm 0.1..%.1f Hz", pm ? "phase mod. ka" : "ampl. mod. kx",
             fmax);
    row(f0, rate, what, &w, 0.03, 0.3, 14); /* Table 5 (M, 1a-2014) */
}

static void steps(int f0, int rate)
{
    const double st[][2] = {{1.1, 0}, {0.9, 0}, {1, M_PI / 18}, {1, -M_PI / 18}};
    const char *name[] = {"magnitude +10 %", "magnitude -10 %", "phase +10 deg", "phase -10 deg"};
    for (int i = 0; i < 4; i++) {
        ps_step_t s;
        ps_step(f0, FS, rate, st[i][0], st[i][1], &s);
        /* Table 6 (M): TVE response 7/Fs, FE and RFE response 14/Fs, delay 1/(4 Fs),
         * overshoot 10 % of the step */
        int ok = s.resp_tve <= 7.0 / rate && s.resp_fe <= 14.0 / rate &&
                 s.resp_rfe <= 14.0 / rate && fabs(s.delay) <= 0.25 / rate && s.overshoot <= 0.1;
        nfail += !ok;
        printf("| %d Hz | %2d/s | step %-15s | %6.3f / %5.3f | %6.3f / %5.3f | %6.3f / %5.3f | "
               "%7.4f / %6.4f | %5.2f / 10 | %s |\n",
               f0, rate, name[i], s.resp_tve, 7.0 / rate, s.resp_fe, 14.0 / rate, s.resp_rfe,
               14.0 / rate, s.delay, 0.25 / rate, s.overshoot * 100, ok ? "pass" : "FAIL");
    }
}

static int nrep;
static void count_cb(void *ud, const dsp_pmu_report_t *r)
{
    (void)ud;
    (void)r;
    nrep++;
}

/* CPU per second of a 6-channel stream at `fs` (one terminal). */
static double cost(int f0, int rate, double fs)
{
    ps_t g;
    ps_default(&g, fs, f0);
    dsp_config_t cfg;
    ps_config(&g, &cfg);
    dsp_pmu_sink_t sink = {count_cb, NULL};
    dsp_pmu_t *p;
    char err[128];
    if (dsp_pmu_new(&cfg, rate, &sink, &p, err, sizeof err) < 0)
        return -1;
    size_t n = (size_t)fs / 10; /* 100-ms blocks */
    double *buf = malloc(n * 6 * sizeof *buf);
    for (size_t i = 0; i < n; i++)
        ps_sample(&g, (int64_t)i, buf + i * 6);
    int secs = 30;
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (int k = 0; k < secs * 10; k++) /* the same block again and again: timing only */
        dsp_pmu_push(p, g.t_base_ns + (int64_t)k * 100000000LL, DSP_FMT_F64, buf, n, 0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    free(buf);
    dsp_pmu_free(p);
    return ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9) / secs;
}

int main(void)
{
    const int cases[][2] = {{50, 10}, {50, 50}, {60, 10}, {60, 60}};
    printf("Reporting-rate synchrophasors, M class (C37.118.1-2011 + 1a-2014), analytic truth.\n"
           "Signals: balanced 3-phase, 57.735 V / 5 A, 4 kS/s (harmonics 12.8 kS/s); worst over\n"
           "6 channels and the positive sequence. TVE in %%, FE in Hz, RFE in Hz/s.\n\n");
    printf("| f0 | Fs | condition | reports | max TVE | limit | max FE | limit | max RFE | limit "
           "| |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 4; i++) {
        int f0 = cases[i][0], rate = cases[i][1];
        steady(f0, rate);
        harmonics(f0, rate);
        out_of_band(f0, rate);
        ramp(f0, rate);
        modulation(f0, rate, 0);
        modulation(f0, rate, 1);
    }
    printf("\nSteps (equivalent-time sampling, %d step positions per report interval), "
           "measured / limit:\n\n",
           PS_NOFF);
    printf("| f0 | Fs | step | TVE response s | FE response s | RFE response s | delay s | "
           "overshoot %% | |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 4; i++)
        steps(cases[i][0], cases[i][1]);
    printf("\nLatency (report time -> last sample needed) and cost per terminal (6 channels):\n\n"
           "| f0 | Fs | latency s | limit 5/Fs | CPU ms per s at 4 kS/s | at 12.8 kS/s |\n"
           "|---|---|---|---|---|---|\n");
    for (int i = 0; i < 4; i++) {
        int f0 = cases[i][0], rate = cases[i][1];
        ps_t g;
        ps_default(&g, FS, f0);
        dsp_config_t cfg;
        ps_config(&g, &cfg);
        dsp_pmu_t *p;
        char err[128];
        dsp_pmu_new(&cfg, rate, NULL, &p, err, sizeof err);
        double lat = dsp_pmu_latency(p);
        dsp_pmu_free(p);
        printf("| %d Hz | %2d/s | %.3f | %.3f | %.2f | %.2f |\n", f0, rate, lat, 5.0 / rate,
               cost(f0, rate, 4000) * 1e3, cost(f0, rate, 12800) * 1e3);
    }
    printf("\n%s: %d condition(s) outside the limits\n", nfail ? "FAIL" : "ok", nfail);
    return nfail ? 1 : 0;
}
