/* Unit tests for src/dsp, the analysis engine: accuracy against the synthetic generator's truth
 * (tests/unit/dsp_siggen.h) at the "Required" figures of IEC 61000-4-30 Class A, IEC 61000-4-7
 * and IEEE C37.118.1, plus the engine's contract (events, aggregation, gaps, configuration).
 *
 * Every accuracy case prints the worst error it saw ("# worst ..." lines), so the log documents
 * the margin, and asserts the Required limit (not a tighter goal). As in the standards' steady-
 * state tests, the first windows of a segment (acquisition) and windows touching a step or a gap
 * are not judged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "dsp/dsp.h"
#include "tests/unit/dsp_siggen.h"

#define NS     1000000000LL
#define UDIN   57.735 /* the generator's default phase voltage; Udin in the event tests */
#define SKIP   3      /* acquisition windows not judged */
#define TICK10 (600 * NS)

/* ---- recording sink ------------------------------------------------------------------------ */

typedef struct {
    uint64_t index;
    int64_t t_start, t_end, t_ref;
    uint32_t flags;
    double freq, rocof;
} wsum_t;

typedef struct {
    int keep; /* store complete windows (small runs), else summaries only */
    dsp_window_t *w;
    size_t nw, capw;
    wsum_t *ws;
    size_t nws, capws;
    dsp_agg_t *agg;
    size_t nagg, capagg;
    dsp_event_t ev[64];
    int nev;
    dsp_freq10_t f10[128];
    int nf10;
    dsp_gap_t gap[16];
    int ngap;
} rec_t;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    assert_non_null(q);
    *cap = n;
    return q;
}

static void on_window(void *ud, const dsp_window_t *w)
{
    rec_t *r = ud;
    r->ws = grow(r->ws, &r->capws, r->nws + 1, sizeof *r->ws);
    wsum_t *x = &r->ws[r->nws++];
    x->index = w->index;
    x->t_start = w->t_start_ns;
    x->t_end = w->t_end_ns;
    x->t_ref = w->t_ref_ns;
    x->flags = w->flags;
    x->freq = w->freq;
    x->rocof = w->rocof;
    if (r->keep) {
        r->w = grow(r->w, &r->capw, r->nw + 1, sizeof *r->w);
        r->w[r->nw++] = *w;
    }
}

static void on_event(void *ud, const dsp_event_t *e)
{
    rec_t *r = ud;
    assert_true(r->nev < (int)(sizeof r->ev / sizeof r->ev[0]));
    r->ev[r->nev++] = *e;
}

static void on_agg(void *ud, const dsp_agg_t *a)
{
    rec_t *r = ud;
    r->agg = grow(r->agg, &r->capagg, r->nagg + 1, sizeof *r->agg);
    r->agg[r->nagg++] = *a;
}

static void on_f10(void *ud, const dsp_freq10_t *f)
{
    rec_t *r = ud;
    assert_true(r->nf10 < (int)(sizeof r->f10 / sizeof r->f10[0]));
    r->f10[r->nf10++] = *f;
}

static void on_gap(void *ud, const dsp_gap_t *g)
{
    rec_t *r = ud;
    assert_true(r->ngap < (int)(sizeof r->gap / sizeof r->gap[0]));
    r->gap[r->ngap++] = *g;
}

static void rec_init(rec_t *r, int keep)
{
    memset(r, 0, sizeof *r);
    r->keep = keep;
}

static void rec_free(rec_t *r)
{
    free(r->w);
    free(r->ws);
    free(r->agg);
    memset(r, 0, sizeof *r);
}

/* ---- driving the engine -------------------------------------------------------------------- */

/* Channels 0..2: voltages A, B, C; 3..5: currents A, B, C; 6: neutral current; 7: other. */
static void cfg_for(dsp_config_t *c, const sg_t *g)
{
    dsp_config_default(c, g->fs, g->f0, g->nch);
    for (int i = 0; i < g->nch; i++) {
        if (i < 3) {
            c->ch[i].kind = DSP_KIND_VOLTAGE;
            c->ch[i].phase = (uint8_t)(DSP_PHASE_A + i);
        } else if (i < 6) {
            c->ch[i].kind = DSP_KIND_CURRENT;
            c->ch[i].phase = (uint8_t)(DSP_PHASE_A + i - 3);
        } else if (i == 6) {
            c->ch[i].kind = DSP_KIND_CURRENT;
            c->ch[i].phase = DSP_PHASE_N;
        }
    }
}

static dsp_stream_t *open_stream(const dsp_config_t *cfg, rec_t *r)
{
    dsp_sink_t sink = {on_window, on_event, on_agg, on_f10, on_gap, r};
    char err[256] = "";
    dsp_stream_t *s = NULL;
    int rc = dsp_stream_new(cfg, &sink, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("dsp_stream_new: %d %s", rc, err);
    assert_non_null(s);
    return s;
}

static int64_t t_of(const sg_t *g, uint64_t i)
{
    return g->t_base_ns + (int64_t)llround((double)i * 1e9 / g->fs);
}

/* Pushes samples [first, first + n) of the generator in blocks of `block` sample sets. */
static void feed(dsp_stream_t *s, sg_t *g, uint64_t first, uint64_t n, size_t block)
{
    double *buf = malloc(block * (size_t)g->nch * sizeof *buf);
    assert_non_null(buf);
    for (uint64_t i = 0; i < n;) {
        size_t b = n - i < block ? (size_t)(n - i) : block;
        sg_fill(g, first + i, b, buf);
        assert_int_equal(dsp_stream_push(s, t_of(g, first + i), DSP_FMT_F64, buf, b, 0), 0);
        i += b;
    }
    free(buf);
}

static uint64_t nsamp(const sg_t *g, double seconds)
{
    return (uint64_t)llround(seconds * g->fs);
}

/* One stream over `seconds` of the generator's signal from tau = 0, flushed at the end. */
static void run_cfg(sg_t *g, const dsp_config_t *cfg, double seconds, rec_t *r)
{
    dsp_stream_t *s = open_stream(cfg, r);
    feed(s, g, 0, nsamp(g, seconds), (size_t)(g->fs / 10));
    dsp_stream_flush(s);
    dsp_stream_free(s);
}

static void run(sg_t *g, double seconds, rec_t *r)
{
    dsp_config_t cfg;
    cfg_for(&cfg, g);
    run_cfg(g, &cfg, seconds, r);
}

static double tau_of(const sg_t *g, int64_t t_ns)
{
    return (double)(t_ns - g->t_base_ns) / 1e9;
}

/* The window (plus a cycle each side) stays clear of the generator's step edges. */
static int clear_of_step(const sg_t *g, const dsp_window_t *w)
{
    if (g->step_to <= g->step_from)
        return 1;
    double a = tau_of(g, w->t_start_ns) - 1.0 / g->f0, b = tau_of(g, w->t_end_ns) + 1.0 / g->f0;
    return b < g->step_from || a > g->step_to || (a > g->step_from && b < g->step_to);
}

static void worst(double *acc, double v)
{
    if (!(v <= *acc)) /* NaN propagates */
        *acc = v;
}

static void report(const char *what, double v, double limit, const char *unit)
{
    printf("# worst %-52s %11.5g %-5s (limit %g)\n", what, v, unit, limit);
}

/* Failures a case collects before it asserts, so that one defect does not hide the rest of a
 * sweep's results: the first few are printed. */
static int soft_failures;

static void soft_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void soft_fail(const char *fmt, ...)
{
    if (soft_failures++ < 12) {
        va_list ap;
        va_start(ap, fmt);
        printf("# FAIL ");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    } else if (soft_failures == 13) {
        printf("# FAIL ... (further failures not printed)\n");
    }
}

/* ---- phasor, frequency and ROCOF --------------------------------------------------------- */

typedef struct {
    double tve, ftve, fe, rfe;
    int n;
} phasor_err_t;

/* TVE of the synchrophasor and of the C-cycle fundamental, frequency and ROCOF error of the
 * judged windows of a run, against the generator's truth at each window's t_ref. */
static void phasor_errors(const sg_t *g, const rec_t *r, int nv, phasor_err_t *e)
{
    for (size_t k = SKIP; k < r->nw; k++) {
        const dsp_window_t *w = &r->w[k];
        if (!clear_of_step(g, w))
            continue;
        double tau = tau_of(g, w->t_ref_ns), m, a, f = 0;
        for (int c = 0; c < nv; c++) {
            sg_truth(g, c, tau, &m, &a, &f);
            worst(&e->tve, sg_tve(w->ch[c].ph_mag, w->ch[c].ph_ang, m, a));
            worst(&e->ftve, sg_tve(w->ch[c].fund_mag, w->ch[c].fund_ang, m, a));
        }
        worst(&e->fe, fabs(w->freq - f));
        if (!(w->flags & DSP_F_NO_ROCOF))
            worst(&e->rfe, fabs(w->rocof - g->rocof));
        e->n++;
    }
}

/* Windows follow each other without gap or overlap (outside a resync) and each spans C cycles
 * of the fundamental within 0.03 % (IEC 61000-4-7 5.5.1), for a steady frequency `f`. */
static void check_tiling(const rec_t *r, double f, int C, double *len_err)
{
    for (size_t k = 0; k < r->nws; k++) {
        const wsum_t *w = &r->ws[k];
        if (k >= SKIP) {
            double cyc = (double)(w->t_end - w->t_start) / 1e9 * f;
            worst(len_err, fabs(cyc - C) / C);
            if (!(fabs(cyc - C) / C <= 3e-4))
                fail_msg("window %zu spans %.6f cycles, not %d", k, cyc, C);
        }
        if (k > 0 && !(w->flags & DSP_F_RESYNC)) {
            int64_t d = w->t_start - r->ws[k - 1].t_end;
            if (d < -1000 || d > 1000)
                fail_msg("window %zu starts %lld ns after the previous end", k, (long long)d);
        }
    }
}

static const double PHASES[3] = {0, 1.3, -2.7};

/* C37.118.1 steady state: f0 +- 5 Hz, magnitude 10..120 %, any phase; every sample rate and
 * both systems. FE <= 5 mHz, RFE <= 0.1 Hz/s, TVE <= 1 %. */
static void test_phasor_steady(void **state)
{
    (void)state;
    static const double rates[] = {1600, 4000, 12800, 25600};
    static const double dfs[] = {-5, -2.3, 0, 5};
    static const double mags[] = {0.1, 1.2};
    phasor_err_t e = {0};
    double len_err = 0;
    int runs = 0;
    for (int ri = 0; ri < 4; ri++)
        for (int f0 = 50; f0 <= 60; f0 += 10)
            for (int di = 0; di < 4; di++)
                for (int mi = 0; mi < 2; mi++) {
                    sg_t g;
                    sg_default(&g, rates[ri], f0);
                    g.f = f0 + dfs[di];
                    double ph = PHASES[(di + mi + ri) % 3];
                    for (int c = 0; c < 3; c++) {
                        g.rms[c] = UDIN * mags[mi];
                        g.phase[c] += ph;
                    }
                    rec_t r;
                    rec_init(&r, 1);
                    run(&g, 1.6, &r);
                    assert_true(r.nw >= SKIP + 3);
                    phasor_err_t one = {0};
                    phasor_errors(&g, &r, 3, &one);
                    check_tiling(&r, g.f, f0 == 50 ? 10 : 12, &len_err);
                    if (!(one.tve <= 0.01 && one.ftve <= 0.01 && one.fe <= 0.005 && one.rfe <= 0.1))
                        fail_msg("fs %g f %g mag %g phase %g: TVE %g FTVE %g FE %g RFE %g", g.fs,
                                 g.f, mags[mi], ph, one.tve, one.ftve, one.fe, one.rfe);
                    worst(&e.tve, one.tve);
                    worst(&e.ftve, one.ftve);
                    worst(&e.fe, one.fe);
                    worst(&e.rfe, one.rfe);
                    e.n += one.n;
                    runs++;
                    rec_free(&r);
                }
    printf("# steady: %d runs, %d windows judged\n", runs, e.n);
    report("TVE synchrophasor, steady f0+-5Hz 10..120%", 100 * e.tve, 1, "%");
    report("TVE 10/12-cycle fundamental, steady", 100 * e.ftve, 1, "%");
    report("frequency error, steady", 1000 * e.fe, 5, "mHz");
    report("ROCOF error, steady", e.rfe, 0.1, "Hz/s");
    report("window length error vs C cycles (4-7 5.5.1)", 100 * len_err, 0.03, "%");
}

/* Runs one phasor case and folds its errors into `acc`; fails with the case's description when
 * a limit is exceeded. */
static void phasor_case(sg_t *g, double seconds, double tve_lim, double fe_lim, double rfe_lim,
                        phasor_err_t *acc, const char *what)
{
    rec_t r;
    rec_init(&r, 1);
    run(g, seconds, &r);
    assert_true(r.nw >= SKIP + 3);
    phasor_err_t one = {0};
    phasor_errors(g, &r, g->nch < 3 ? g->nch : 3, &one);
    if (!(one.tve <= tve_lim && one.fe <= fe_lim && one.rfe <= rfe_lim))
        fail_msg("%s: fs %g f0 %d f %g rocof %g: TVE %g FE %g RFE %g", what, g->fs, g->f0, g->f,
                 g->rocof, one.tve, one.fe, one.rfe);
    worst(&acc->tve, one.tve);
    worst(&acc->ftve, one.ftve);
    worst(&acc->fe, one.fe);
    worst(&acc->rfe, one.rfe);
    acc->n += one.n;
    rec_free(&r);
}

/* C37.118.1 harmonic distortion: a single 10 % harmonic of order 2..50 (coarse grid), at and
 * off nominal frequency. TVE <= 1 %, FE <= 25 mHz. Orders beyond the analysis band of the rate
 * (the terminal's anti-alias filter would remove them) are skipped. */
static void test_phasor_harmonic(void **state)
{
    (void)state;
    static const int orders[] = {2, 3, 5, 7, 13, 25, 40, 50};
    static const double rates[] = {4000, 12800, 25600};
    static const double dfs[] = {-5, 0, 5};
    phasor_err_t e = {0};
    int runs = 0;
    for (int ri = 0; ri < 3; ri++)
        for (int f0 = 50; f0 <= 60; f0 += 10)
            for (int di = 0; di < 3; di++)
                for (int oi = 0; oi < 8; oi++) {
                    if (rates[ri] < 12800 && (dfs[di] != 0 || orders[oi] > 25))
                        continue;
                    sg_t g;
                    sg_default(&g, rates[ri], f0);
                    g.f = f0 + dfs[di];
                    g.nharm = 1;
                    g.h_order[0] = orders[oi];
                    g.h_rel[0] = 0.1;
                    g.h_phase[0] = PHASES[(oi + di) % 3];
                    for (int c = 0; c < 3; c++)
                        g.phase[c] += PHASES[(oi + di + ri + 1) % 3];
                    phasor_case(&g, 1.6, 0.01, 0.025, INFINITY, &e, "harmonic");
                    runs++;
                }
    printf("# harmonic: %d runs, %d windows judged\n", runs, e.n);
    report("TVE with a 10 % harmonic 2..50", 100 * e.tve, 1, "%");
    report("frequency error with a 10 % harmonic", 1000 * e.fe, 25, "mHz");
}

/* C37.118.1 frequency ramp: +-1 Hz/s across f0 +- 2 Hz. TVE <= 1 %; FE <= 10 mHz and
 * RFE <= 0.2 Hz/s (C37.118.1a M class ramp limits; not in the brief's table, asserted at the
 * standard's figure). */
static void test_phasor_ramp(void **state)
{
    (void)state;
    phasor_err_t e = {0};
    static const double rates[] = {4000, 12800};
    for (int ri = 0; ri < 2; ri++)
        for (int f0 = 50; f0 <= 60; f0 += 10)
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                sg_t g;
                sg_default(&g, rates[ri], f0);
                g.rocof = sgn;
                g.f = f0 - 2.0 * sgn;
                for (int c = 0; c < 3; c++)
                    g.phase[c] += PHASES[(ri + sgn + 3) % 3];
                phasor_case(&g, 4.0, 0.01, 0.01, 0.2, &e, "ramp");
            }
    report("TVE during +-1 Hz/s ramp", 100 * e.tve, 1, "%");
    report("frequency error during ramp", 1000 * e.fe, 10, "mHz");
    report("ROCOF error during ramp", e.rfe, 0.2, "Hz/s");
}

/* C37.118.1 measurement bandwidth: AM 10 % and PM 0.1 rad at fm up to 5 Hz. TVE <= 3 %. */
static void test_phasor_modulation(void **state)
{
    (void)state;
    static const double fms[] = {0.5, 2, 5};
    phasor_err_t am = {0}, pm = {0};
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (int k = 0; k < 3; k++)
            for (int kind = 0; kind < 2; kind++) {
                sg_t g;
                sg_default(&g, 4000, f0);
                if (kind == 0) {
                    g.am_depth = 0.1;
                    g.am_freq = fms[k];
                } else {
                    g.pm_depth = 0.1;
                    g.pm_freq = fms[k];
                }
                for (int c = 0; c < 3; c++)
                    g.phase[c] += PHASES[(k + kind) % 3];
                phasor_case(&g, 3.0, 0.03, INFINITY, INFINITY, kind ? &pm : &am,
                            kind ? "PM" : "AM");
            }
    report("TVE with AM 10 %, fm <= 5 Hz", 100 * am.tve, 3, "%");
    report("TVE with PM 0.1 rad, fm <= 5 Hz", 100 * pm.tve, 3, "%");
    printf("# (info) FE under AM %.3g mHz, under PM %.3g mHz\n", 1000 * am.fe, 1000 * pm.fe);
}

/* ---- RMS, harmonics, THD, DC ------------------------------------------------------------- */

/* True RMS of channel c of a steady, unmodulated signal over whole cycles. */
static double rms_truth(const sg_t *g, int c)
{
    double s = g->dc[c] * g->dc[c] + g->rms[c] * g->rms[c];
    for (int k = 0; k < g->nharm; k++)
        s += pow(g->rms[c] * g->h_rel[k], 2);
    return sqrt(s);
}

/* RMS voltage, 61000-4-30 5.2 Class A: +-0.1 % of Udin over 10..150 % of Udin, at f0 +- 5 Hz,
 * with harmonics and a DC offset present, at every rate and both systems. */
static void test_rms(void **state)
{
    (void)state;
    static const double rates[] = {1600, 4000, 12800, 25600};
    static const double mags[] = {0.1, 0.5, 1.0, 1.5};
    static const double dfs[] = {-5, 0, 2.7, 5};
    double err = 0, err_rd = 0;
    for (int ri = 0; ri < 4; ri++)
        for (int f0 = 50; f0 <= 60; f0 += 10)
            for (int mi = 0; mi < 4; mi++) {
                sg_t g;
                sg_default(&g, rates[ri], f0);
                g.f = f0 + dfs[(mi + ri) % 4];
                for (int c = 0; c < 3; c++) {
                    g.rms[c] = UDIN * mags[mi];
                    g.phase[c] += PHASES[(mi + ri) % 3];
                }
                if (mi % 2 == 1) { /* harmonics and DC */
                    g.nharm = 3;
                    g.h_order[0] = 3;
                    g.h_rel[0] = 0.05;
                    g.h_order[1] = 5;
                    g.h_rel[1] = 0.08;
                    g.h_order[2] = 7;
                    g.h_rel[2] = 0.04;
                    g.h_phase[1] = 1;
                    g.dc[0] = 0.5;
                    g.dc[2] = -0.3;
                }
                rec_t r;
                rec_init(&r, 1);
                run(&g, 1.6, &r);
                assert_true(r.nw >= SKIP + 3);
                for (size_t k = SKIP; k < r.nw; k++)
                    for (int c = 0; c < 3; c++) {
                        double t = rms_truth(&g, c), d = fabs(r.w[k].ch[c].rms - t);
                        worst(&err, d / UDIN);
                        worst(&err_rd, d / t);
                        if (!(d <= 0.001 * UDIN))
                            fail_msg("fs %g f %g mag %g ch %d: rms %.6f, truth %.6f", g.fs, g.f,
                                     mags[mi], c, r.w[k].ch[c].rms, t);
                    }
                rec_free(&r);
            }
    report("RMS voltage error 10..150 % Udin, % of Udin", 100 * err, 0.1, "%");
    printf("# (info) the same in %% of reading: %.4g %%\n", 100 * err_rd);
}

/* From a short run's first window: the highest harmonic order the engine computes
 * at this rate (w->ch[].hmax). */
static int probe_hmax(double fs, int f0)
{
    sg_t g;
    sg_default(&g, fs, f0);
    g.nch = 1;
    rec_t r;
    rec_init(&r, 1);
    run(&g, 0.5, &r);
    assert_true(r.nw >= 1);
    int h = r.w[0].ch[0].hmax;
    rec_free(&r);
    return h;
}

/* Worst errors per harmonic order: relative for orders >= 1 % of Unom, in Unom for the rest. */
typedef struct {
    double big[DSP_MAX_H + 1];
    double small[DSP_MAX_H + 1];
} harm_err_t;

/* Harmonic groups and subgroups of every judged window against the generator: 61000-4-7
 * Table 1, Class I: within 5 % of the value for Um >= 1 % Unom, within 0.05 % of Unom below
 * (orders not injected, where the truth is 0). */
static void harm_check(const sg_t *g, const rec_t *r, harm_err_t *e)
{
    for (size_t k = SKIP; k < r->nw; k++)
        for (int c = 0; c < g->nch && c < 3; c++) {
            const dsp_chan_result_t *x = &r->w[k].ch[c];
            /* orders are reported up to 0.985 of Nyquist at the window's frequency */
            if (!(x->hmax * r->w[k].freq <= 0.9851 * g->fs / 2))
                soft_fail("fs %g window %zu at %.3f Hz: hmax %d", g->fs, k, r->w[k].freq, x->hmax);
            for (int h = 1; h <= x->hmax; h++) {
                double t = h == 1 ? g->rms[c] : 0;
                for (int j = 0; j < g->nharm; j++)
                    if (g->h_order[j] == h)
                        t = g->rms[c] * g->h_rel[j];
                if (t >= 0.01 * UDIN)
                    worst(&e->big[h], fmax(fabs(x->hg[h] - t), fabs(x->hsg[h] - t)) / t);
                else
                    worst(&e->small[h], fmax(fabs(x->hg[h] - t), fabs(x->hsg[h] - t)) / UDIN);
            }
        }
}

/* Folds per-order errors of one rate into the totals; soft-fails with the list of orders out
 * of tolerance. */
static void harm_summary(const char *what, double fs, int f0, int hmax, const harm_err_t *e,
                         double *big, double *small, double *big_low)
{
    char bad[512] = "";
    size_t at = 0;
    for (int h = 1; h <= hmax; h++) {
        worst(big, e->big[h]);
        worst(small, e->small[h]);
        if (h * f0 * 1.05 <= 0.55 * fs / 2)
            worst(big_low, e->big[h]);
        if ((e->big[h] > 0.05 || e->small[h] > 0.0005) && at < sizeof bad - 40)
            at += (size_t)snprintf(bad + at, sizeof bad - at, " %d (%.3g %% / %.3g %% Unom)", h,
                                   100 * e->big[h], 100 * e->small[h]);
    }
    if (at)
        soft_fail("%s: fs %g f0 %d (hmax %d), orders out of tolerance:%s", what, fs, f0, hmax, bad);
}

/* Harmonic magnitudes at f0 and f0 +- 5 %, at 1 % and 10 % of nominal: every order up to hmax
 * at 1.6 and 12.8 kS/s, a coarse set (plus hmax) at 4 and 25.6 kS/s. Orders whose frequency
 * would lie above 0.98 of the input's Nyquist frequency are not injected (the terminal's
 * anti-alias filter removes them), and hmax must not claim them: each window reports the orders
 * up to 0.985 of Nyquist at its own frequency (below 9.6 kS/s; 50 above). */
static void test_harmonic_magnitude(void **state)
{
    (void)state;
    static const double rates[] = {1600, 4000, 12800, 25600};
    static const double relf[] = {0.95, 1.0, 1.05};
    static const int coarse[] = {2, 3, 5, 7, 13, 25, 40, 50};
    double big = 0, small = 0, big_low = 0;
    int runs = 0;
    soft_failures = 0;
    for (int ri = 0; ri < 4; ri++)
        for (int f0 = 50; f0 <= 60; f0 += 10) {
            int hmax = probe_hmax(rates[ri], f0);
            assert_true(hmax >= 2 && hmax <= DSP_MAX_H);
            /* at f0; harm_check checks every window's hmax against its own frequency */
            if (!(hmax * f0 <= 0.985 * rates[ri] / 2))
                soft_fail("fs %g f0 %d: hmax %d lies beyond the reach at f0", rates[ri], f0, hmax);
            if (rates[ri] >= 12800)
                assert_int_equal(hmax, DSP_MAX_H);
            int list[DSP_MAX_H], n = 0;
            int full = rates[ri] == 1600 || rates[ri] == 12800;
            for (int h = 2; h <= hmax; h++) {
                int in = full || h == hmax || h == hmax - 1;
                for (int j = 0; j < 8; j++)
                    in |= coarse[j] == h;
                if (in)
                    list[n++] = h;
            }
            harm_err_t e;
            memset(&e, 0, sizeof e);
            for (int fi = 0; fi < 3; fi++)
                for (int at = 0; at < n;) {
                    sg_t g;
                    sg_default(&g, rates[ri], f0);
                    g.f = f0 * relf[fi];
                    for (; at < n && g.nharm < SG_MAX_HARM; at++) {
                        if (list[at] * g.f >= 0.98 * g.fs / 2)
                            continue;
                        int k = g.nharm++;
                        g.h_order[k] = list[at];
                        g.h_rel[k] = (at + fi) % 2 ? 0.1 : 0.01; /* 10 % and 1 % of nominal */
                        g.h_phase[k] = PHASES[at % 3];
                    }
                    rec_t r;
                    rec_init(&r, 1);
                    run(&g, 1.6, &r);
                    harm_check(&g, &r, &e);
                    rec_free(&r);
                    runs++;
                }
            harm_summary("harmonics", rates[ri], f0, hmax, &e, &big, &small, &big_low);
            printf("# fs %5g f0 %d: hmax %2d\n", rates[ri], f0, hmax);
        }
    printf("# harmonic magnitude: %d runs\n", runs);
    report("harmonic (sub)group error, >= 1 % Unom, of reading", 100 * big, 5, "%");
    report("harmonic (sub)group error, < 1 % Unom, of Unom", 100 * small, 0.05, "%");
    report("(info) the first, orders below 0.55 x Nyquist only", 100 * big_low, 5, "%");
    assert_int_equal(soft_failures, 0);
}

/* Harmonic reach at 4 kS/s, 50 Hz: orders up to 39 (1950 Hz, 0.975 of the Nyquist frequency)
 * while the measured frequency keeps order 39 within the reach of the interpolator (0.985 of
 * Nyquist: f <= 50.5 Hz), within 61000-4-7 Class I: 5 % of reading for >= 1 % Unom, 0.05 % of
 * Unom for the orders not injected, next to 10 % harmonics of neighbouring orders (their
 * interpolation images must not leak into the empty groups). At 60 Hz, 4 kS/s, order 32 (33 up
 * to 59.7 Hz). */
static void test_harmonic_reach_4k(void **state)
{
    (void)state;
    static const double fr[] = {47.5, 49.5, 49.95, 50.0, 50.03, 50.25, 50.5, 52.5};
    static const struct {
        int ord[4];
        double rel[4];
    } sets[] = {
        {{39, 37, 35, 2}, {0.1, 0.01, 0.1, 0.02}},
        {{39, 38, 36, 3}, {0.01, 0.1, 0.01, 0.05}},
        {{38, 33, 31, 5}, {0.1, 0.1, 0.01, 0.05}},
    };
    double big = 0, small = 0;
    int n39 = 0;
    soft_failures = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (size_t fi = 0; fi < sizeof fr / sizeof fr[0]; fi++)
            for (size_t si = 0; si < sizeof sets / sizeof sets[0]; si++) {
                sg_t g;
                sg_default(&g, 4000, f0);
                g.f = fr[fi] * f0 / 50;
                for (int k = 0; k < 4; k++)
                    if (sets[si].ord[k] * g.f < 0.985 * g.fs / 2) {
                        int j = g.nharm++;
                        g.h_order[j] = sets[si].ord[k];
                        g.h_rel[j] = sets[si].rel[k];
                        g.h_phase[j] = PHASES[k % 3];
                    }
                rec_t r;
                rec_init(&r, 1);
                run(&g, 1.6, &r);
                harm_err_t e;
                memset(&e, 0, sizeof e);
                harm_check(&g, &r, &e);
                int want = (int)floor(0.985 * g.fs / 2 / g.f);
                if (want > (f0 == 50 ? 39 : 35))
                    want = f0 == 50 ? 39 : 35;
                for (size_t k = SKIP; k < r.nw; k++)
                    if (r.w[k].ch[0].hmax != want)
                        soft_fail("f0 %d f %g: window %zu hmax %d, want %d", f0, g.f, k,
                                  r.w[k].ch[0].hmax, want);
                n39 += f0 == 50 && want == 39;
                char what[64];
                snprintf(what, sizeof what, "reach f0 %d f %g set %zu", f0, g.f, si);
                double b = 0, sm = 0, bl = 0;
                harm_summary(what, g.fs, f0, want, &e, &b, &sm, &bl);
                worst(&big, b);
                worst(&small, sm);
                rec_free(&r);
            }
    assert_true(n39 >= 12); /* 49.5 .. 50.5 Hz */
    report("4 kS/s harmonics to the reach, >= 1 % Unom, of reading", 100 * big, 5, "%");
    report("4 kS/s harmonics to the reach, < 1 % Unom, of Unom", 100 * small, 0.05, "%");
    assert_int_equal(soft_failures, 0);
}

/* Harmonic phase angles relative to the fundamental, phi_h - h phi_1 (dsp.h): the generator's
 * h_phase is exactly that (x = a cos th + a r cos(h th + h_phase)). At f0 and f0 +- 5 %, 1 % and
 * 10 % of nominal, 4 and 12.8 kS/s, on phases with different fundamental angles (the value must
 * not depend on them or on the time reference); orders not injected have no angle (NaN). */
/* Decimated rates (above 12.8 kS/s): the 50th order is reported (4-30 5.8) across the 4-7
 * frequency range f0 +- 5 %, as at 12.8 kS/s. The decimator's passband once ended at 3 kHz, the
 * 50th order of exactly 60 Hz, so a 60 Hz system above 60.0 Hz lost order 50 at every
 * decimated rate (hmax 49) while 12.8 kS/s kept it. */
static void test_harmonic_reach_decimated(void **state)
{
    (void)state;
    static const double rates[] = {12800.5, 14400, 16000, 19200, 25600};
    static const double rel[] = {0.95, 1.0, 1.004, 1.03, 1.05};
    double big = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++)
            for (size_t fi = 0; fi < sizeof rel / sizeof rel[0]; fi++) {
                sg_t g;
                sg_default(&g, rates[ri], f0);
                g.f = f0 * rel[fi];
                g.nharm = 2;
                g.h_order[0] = 50;
                g.h_rel[0] = 0.02;
                g.h_order[1] = 49;
                g.h_rel[1] = 0.01;
                rec_t r;
                rec_init(&r, 1);
                run(&g, 1.2, &r);
                assert_true(r.nw > SKIP);
                for (size_t k = SKIP; k < r.nw; k++) {
                    const dsp_chan_result_t *x = &r.w[k].ch[0];
                    if (x->hmax != 50)
                        fail_msg("fs %g f %g: window %zu hmax %d, want 50", g.fs, g.f, k, x->hmax);
                    double e = fabs(x->hg[50] - 0.02 * g.rms[0]) / (0.02 * g.rms[0]);
                    if (!(e <= 0.05))
                        fail_msg("fs %g f %g: H50 %.5g, want %.5g", g.fs, g.f, x->hg[50],
                                 0.02 * g.rms[0]);
                    worst(&big, e);
                }
                rec_free(&r);
            }
    report("decimated rates: order 50 at f0 +- 5 %, of reading", 100 * big, 5, "%");
}

static void test_harmonic_angles(void **state)
{
    (void)state;
    static const int ord[] = {2, 3, 5, 7, 11, 13, 19, 23};
    static const double ph[] = {0.4, -2.9, 1.7, 3.1, -0.8, 2.2, -1.5, 0.05};
    static const double relf[] = {0.95, 1.0, 1.05};
    double e_big = 0, e_small = 0;
    int judged = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (int ri = 0; ri < 2; ri++)
            for (int fi = 0; fi < 3; fi++) {
                sg_t g;
                sg_default(&g, ri ? 12800 : 4000, f0);
                g.f = f0 * relf[fi];
                g.phase[0] = 0.3; /* A, B, C at different fundamental angles */
                g.nharm = 8;
                for (int k = 0; k < 8; k++) {
                    g.h_order[k] = ord[k];
                    g.h_rel[k] = k % 2 ? 0.01 : 0.1;
                    g.h_phase[k] = ph[k];
                }
                rec_t r;
                rec_init(&r, 1);
                run(&g, 1.6, &r);
                for (size_t w = SKIP; w < r.nw; w++)
                    for (int c = 0; c < 3; c++) {
                        const dsp_chan_result_t *x = &r.w[w].ch[c];
                        assert_true(isnan(x->hang[0]) && x->hang[1] == 0);
                        for (int h = 2; h <= x->hmax; h++) {
                            int k = -1;
                            for (int j = 0; j < 8; j++)
                                if (ord[j] == h)
                                    k = j;
                            if (k < 0) {
                                if (!isnan(x->hang[h]))
                                    fail_msg("f %g order %d not injected: angle %g", g.f, h,
                                             x->hang[h]);
                                continue;
                            }
                            double d = fabs(carg(cexp(I * (x->hang[h] - ph[k])))) * 180 / M_PI;
                            worst(g.h_rel[k] > 0.05 ? &e_big : &e_small, d);
                            judged++;
                            if (!(d <= 0.5))
                                fail_msg("fs %g f %g ch %d order %d: %.3f deg, truth %.3f deg",
                                         g.fs, g.f, c, h, x->hang[h] * 180 / M_PI,
                                         ph[k] * 180 / M_PI);
                        }
                    }
                rec_free(&r);
            }
    assert_true(judged > 1000);
    report("harmonic angle vs fundamental, 10 % orders, degrees", e_big, 0.5, "deg");
    report("harmonic angle vs fundamental, 1 % orders, degrees", e_small, 0.5, "deg");
}

/* The resampling loop has an AVX2+FMA variant chosen at run time and a portable one
 * (GS_DSP_PORTABLE forces it, stream.c resample_fn): both must give the same windows to float
 * rounding (~1e-6 of the fundamental), with both kernels (4 kS/s: 128 taps; 12.8 kS/s: 16). On a
 * CPU without AVX2 both runs use the portable loop and agree exactly. */
static void test_resample_paths_agree(void **state)
{
    (void)state;
    for (int ri = 0; ri < 2; ri++) {
        sg_t g;
        sg_default(&g, ri ? 12800 : 4000, 50);
        g.f = 50.4;
        g.nharm = 3;
        g.h_order[0] = 5, g.h_rel[0] = 0.05;
        g.h_order[1] = 23, g.h_rel[1] = 0.01;
        g.h_order[2] = ri ? 49 : 38, g.h_rel[2] = 0.01;
        rec_t a, b;
        rec_init(&a, 1);
        rec_init(&b, 1);
        unsetenv("GS_DSP_PORTABLE");
        run(&g, 1.2, &a);
        setenv("GS_DSP_PORTABLE", "1", 1);
        run(&g, 1.2, &b);
        unsetenv("GS_DSP_PORTABLE");
        assert_true(a.nw == b.nw && a.nw > SKIP);
        double dmax = 0;
        for (size_t w = 0; w < a.nw; w++) {
            assert_true(a.w[w].flags == b.w[w].flags);
            worst(&dmax, fabs(a.w[w].freq - b.w[w].freq));
            for (int c = 0; c < a.w[w].nch; c++) {
                const dsp_chan_result_t *x = &a.w[w].ch[c], *y = &b.w[w].ch[c];
                double ref = x->fund_mag > 0 ? x->fund_mag : 1;
                assert_true(x->hmax == y->hmax);
                worst(&dmax, fabs(x->rms - y->rms) / ref);
                worst(&dmax, fabs(x->fund_mag - y->fund_mag) / ref);
                worst(&dmax, fabs(carg(cexp(I * (x->fund_ang - y->fund_ang)))));
                for (int h = 1; h <= x->hmax; h++)
                    worst(&dmax, fabs(x->hg[h] - y->hg[h]) / ref);
            }
        }
        if (!(dmax <= 1e-5))
            fail_msg("fs %g: AVX2 and portable resampling differ by %g", g.fs, dmax);
        report(ri ? "AVX2 vs portable resampling, 12.8 kS/s"
                  : "AVX2 vs portable resampling, 4 kS/s",
               dmax, 1e-5, "rel");
        rec_free(&a);
        rec_free(&b);
    }
}

/* THD and THDS (61000-4-7 3.3.2) against the generator's harmonic content, the DC component,
 * and the interharmonic (sub)groups: a tone midway between orders 2 and 3 lies on the boundary
 * bin of both harmonic groups (half weight each: it counts in THD, not in THDS) and wholly in
 * interharmonic group and centred subgroup 2. */
static void test_thd_dc_interharmonic(void **state)
{
    (void)state;
    static const int ord[] = {2, 3, 5, 7, 11, 13};
    static const double rel[] = {0.02, 0.05, 0.06, 0.04, 0.03, 0.025};
    double thd_e = 0, thds_e = 0, dc_e = 0, ih_e = 0, ihs_e = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (int ri = 0; ri < 2; ri++) {
            sg_t g;
            sg_default(&g, ri ? 12800 : 4000, f0);
            g.f = f0 * (ri ? 1.03 : 0.96);
            g.nharm = 6;
            for (int k = 0; k < 6; k++) {
                g.h_order[k] = ord[k];
                g.h_rel[k] = rel[k];
                g.h_phase[k] = PHASES[k % 3];
            }
            g.dc[0] = 5;
            g.dc[1] = -3;
            double tone = 0.02 * UDIN; /* interharmonic: 2 % of nominal, channel A only */
            g.ntone = 1;
            g.tone_freq[0] = 2.5 * g.f;
            g.tone_rms[0] = tone;
            g.tone_phase[0] = 0.4;
            g.tone_mask[0] = 1;
            double t2 = 0;
            for (int k = 0; k < 6; k++)
                t2 += rel[k] * rel[k];
            rec_t r;
            rec_init(&r, 1);
            run(&g, 1.6, &r);
            assert_true(r.nw >= SKIP + 3);
            for (size_t k = SKIP; k < r.nw; k++)
                for (int c = 0; c < 3; c++) {
                    const dsp_chan_result_t *x = &r.w[k].ch[c];
                    double ti = c == 0 ? tone / g.rms[0] : 0;
                    double thd = sqrt(t2 + ti * ti), thds = sqrt(t2);
                    worst(&thd_e, fabs(x->thd - thd) / thd);
                    worst(&thds_e, fabs(x->thds - thds) / thds);
                    worst(&dc_e, fabs(x->dc - g.dc[c]) / UDIN);
                    worst(&dc_e, fabs(x->hg[0] - fabs(g.dc[c])) / UDIN);
                    if (!(fabs(x->thd - thd) <= 0.05 * thd && fabs(x->thds - thds) <= 0.05 * thds))
                        fail_msg("f %g ch %d: THD %.5g (truth %.5g) THDS %.5g (truth %.5g)", g.f, c,
                                 x->thd, thd, x->thds, thds);
                    if (!(fabs(x->dc - g.dc[c]) <= 0.001 * UDIN))
                        fail_msg("f %g ch %d: dc %.5g, truth %.5g", g.f, c, x->dc, g.dc[c]);
                    if (c == 0) {
                        worst(&ih_e, fabs(x->ihg[2] - tone) / tone);
                        worst(&ihs_e, fabs(x->ihsg[2] - tone) / tone);
                        if (!(fabs(x->ihg[2] - tone) <= 0.05 * tone &&
                              fabs(x->ihsg[2] - tone) <= 0.05 * tone))
                            fail_msg("f %g: interharmonic 2.5: IG %.5g ISG %.5g truth %.5g", g.f,
                                     x->ihg[2], x->ihsg[2], tone);
                        /* half of the tone's energy in each neighbouring harmonic group */
                        double g2 = sqrt(pow(g.rms[0] * rel[0], 2) + tone * tone / 2);
                        if (!(fabs(x->hg[2] - g2) <= 0.05 * g2))
                            fail_msg("f %g: G2 %.5g, truth %.5g", g.f, x->hg[2], g2);
                    } else if (!(x->ihg[2] <= 0.0005 * UDIN)) {
                        fail_msg("f %g ch %d: interharmonic group 2 %.5g without a tone", g.f, c,
                                 x->ihg[2]);
                    }
                }
            rec_free(&r);
        }
    report("THD (groups) error, of reading", 100 * thd_e, 5, "%");
    report("THDS (subgroups) error, of reading", 100 * thds_e, 5, "%");
    report("DC component error, of Udin", 100 * dc_e, 0.1, "%");
    report("interharmonic group error (2 % tone), of reading", 100 * ih_e, 5, "%");
    report("interharmonic centred subgroup error, of reading", 100 * ihs_e, 5, "%");
}

/* Above 12.8 kS/s the engine decimates: a tone above the analysis band that would fold into it
 * (10 kHz at 25.6 kS/s folds to 2.8 kHz) must be >= 50 dB down in every harmonic and
 * interharmonic output. The tone is as large as the fundamental. */
static void test_decimation_alias(void **state)
{
    (void)state;
    static const double tones[] = {10000, 10500, 11500, 12500};
    double min_db = INFINITY;
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (int k = 0; k < 4; k++) {
            sg_t g;
            sg_default(&g, 25600, f0);
            g.f = f0 * 1.01;
            g.ntone = 1;
            g.tone_freq[0] = tones[k];
            g.tone_rms[0] = UDIN;
            g.tone_phase[0] = PHASES[k % 3];
            rec_t r;
            rec_init(&r, 1);
            run(&g, 1.6, &r);
            assert_true(r.nw >= SKIP + 3);
            double peak = 0;
            int at = 0;
            for (size_t w = SKIP; w < r.nw; w++)
                for (int c = 0; c < 3; c++) {
                    const dsp_chan_result_t *x = &r.w[w].ch[c];
                    for (int h = 2; h <= x->hmax; h++) {
                        if (x->hg[h] > peak) {
                            peak = x->hg[h];
                            at = h;
                        }
                        if (x->ihg[h - 1] > peak) {
                            peak = x->ihg[h - 1];
                            at = -(h - 1);
                        }
                    }
                    /* the fundamental and the RMS do not see it either */
                    if (!(fabs(x->fund_mag - g.rms[c]) <= 0.001 * UDIN))
                        fail_msg("tone %g Hz: fundamental %.5g", tones[k], x->fund_mag);
                }
            double db = 20 * log10(UDIN / peak);
            printf("# tone %5.0f Hz, f0 %d (folds to %4.0f Hz): %.1f dB down (largest in %s %d)\n",
                   tones[k], f0, 12800 - tones[k], db, at < 0 ? "interharmonic group" : "order",
                   at < 0 ? -at : at);
            min_db = fmin(min_db, db);
            if (!(db >= 50))
                fail_msg("tone %g Hz folds into the band: only %.1f dB down", tones[k], db);
            rec_free(&r);
        }
    printf("# worst %-52s %11.5g dB    (limit >= 50)\n", "decimation: alias attenuation", min_db);
}

/* Every sample format with per-channel scales: the same accuracy as doubles. */
static void test_sample_formats(void **state)
{
    (void)state;
    static const double scales[4][3] = {
        {0.005, 0.01, 0.004}, {1e-6, 3e-6, 2.5e-7}, {0.5, 1, 3}, {2, 1, 0.25}};
    static const int fmts[4] = {DSP_FMT_I16, DSP_FMT_I32, DSP_FMT_F32, DSP_FMT_F64};
    double tve = 0, fe = 0, rms_e = 0, h_e = 0;
    for (int fi = 0; fi < 4; fi++) {
        sg_t g;
        sg_default(&g, 4000, 50);
        g.f = 50.7;
        g.nharm = 1;
        g.h_order[0] = 5;
        g.h_rel[0] = 0.05;
        g.dc[1] = 0.5;
        dsp_config_t cfg;
        cfg_for(&cfg, &g);
        for (int c = 0; c < 3; c++)
            cfg.ch[c].scale = scales[fi][c];
        rec_t r;
        rec_init(&r, 1);
        dsp_stream_t *s = open_stream(&cfg, &r);
        size_t n = (size_t)nsamp(&g, 1.6), blk = 400;
        double *v = malloc(blk * 3 * sizeof *v);
        unsigned char *raw = malloc(blk * 3 * 8);
        assert_non_null(v);
        assert_non_null(raw);
        for (size_t i = 0; i < n; i += blk) {
            sg_fill(&g, i, blk, v);
            for (size_t j = 0; j < blk * 3; j++) {
                double cnt = v[j] / scales[fi][j % 3];
                if (fmts[fi] == DSP_FMT_I16) {
                    assert_true(fabs(cnt) < 32767);
                    int16_t q = (int16_t)lrint(cnt);
                    memcpy(raw + j * 2, &q, 2);
                } else if (fmts[fi] == DSP_FMT_I32) {
                    int32_t q = (int32_t)lrint(cnt);
                    memcpy(raw + j * 4, &q, 4);
                } else if (fmts[fi] == DSP_FMT_F32) {
                    float q = (float)cnt;
                    memcpy(raw + j * 4, &q, 4);
                } else {
                    memcpy(raw + j * 8, &cnt, 8);
                }
            }
            assert_int_equal(dsp_stream_push(s, t_of(&g, i), fmts[fi], raw, blk, 0), 0);
        }
        dsp_stream_flush(s);
        dsp_stream_free(s);
        free(v);
        free(raw);
        assert_true(r.nw >= SKIP + 3);
        for (size_t k = SKIP; k < r.nw; k++) {
            const dsp_window_t *w = &r.w[k];
            double tau = tau_of(&g, w->t_ref_ns), m, a, f;
            for (int c = 0; c < 3; c++) {
                sg_truth(&g, c, tau, &m, &a, &f);
                double e1 = sg_tve(w->ch[c].ph_mag, w->ch[c].ph_ang, m, a);
                double e2 = fabs(w->ch[c].rms - rms_truth(&g, c)) / UDIN;
                double e3 = fabs(w->ch[c].hg[5] - 0.05 * g.rms[c]) / (0.05 * g.rms[c]);
                worst(&tve, e1);
                worst(&rms_e, e2);
                worst(&h_e, e3);
                worst(&fe, fabs(w->freq - f));
                if (!(e1 <= 0.01 && e2 <= 0.001 && e3 <= 0.05 && fabs(w->freq - f) <= 0.005))
                    fail_msg("format %d ch %d: TVE %g RMS %g H5 %g FE %g", fmts[fi], c, e1, e2, e3,
                             fabs(w->freq - f));
            }
        }
        rec_free(&r);
    }
    report("formats I16/I32/F32/F64 + scale: TVE", 100 * tve, 1, "%");
    report("formats: frequency error", 1000 * fe, 5, "mHz");
    report("formats: RMS error, of Udin", 100 * rms_e, 0.1, "%");
    report("formats: 5th harmonic error, of reading", 100 * h_e, 5, "%");

    /* bad arguments */
    sg_t g;
    sg_default(&g, 4000, 50);
    dsp_config_t cfg;
    cfg_for(&cfg, &g);
    rec_t r;
    rec_init(&r, 0);
    dsp_stream_t *s = open_stream(&cfg, &r);
    double x[3] = {0, 0, 0};
    assert_int_equal(dsp_stream_push(s, g.t_base_ns, 0, x, 1, 0), GS_EINVAL);
    assert_int_equal(dsp_stream_push(s, g.t_base_ns, 5, x, 1, 0), GS_EINVAL);
    assert_int_equal(dsp_stream_push(s, g.t_base_ns, DSP_FMT_F64, NULL, 1, 0), GS_EINVAL);
    assert_int_equal(dsp_stream_push(s, g.t_base_ns, DSP_FMT_F64, NULL, 0, 0), 0);
    assert_int_equal(dsp_stream_push(s, g.t_base_ns, DSP_FMT_F64, x, 0, 0), 0);
    dsp_stream_flush(s);
    dsp_stream_free(s);
    assert_int_equal(r.nws, 0);
    assert_int_equal(r.ngap, 0);
    rec_free(&r);
}

/* 60 dB SNR (noise RMS = 1e-3 of the signal) at f0 +- 5 Hz, 10 % and 100 % magnitude, with a
 * 1 % and a 5 % harmonic: every Required limit still holds. */
static void test_noise(void **state)
{
    (void)state;
    static const double rates[] = {4000, 12800};
    static const double dfs[] = {-5, 0, 5};
    phasor_err_t e = {0};
    double rms_e = 0;
    harm_err_t he;
    memset(&he, 0, sizeof he);
    for (int ri = 0; ri < 2; ri++)
        for (int f0 = 50; f0 <= 60; f0 += 10)
            for (int di = 0; di < 3; di++) {
                sg_t g;
                sg_default(&g, rates[ri], f0);
                g.f = f0 + dfs[di];
                double mag = di == 1 ? 0.1 : 1.0;
                for (int c = 0; c < 3; c++) {
                    g.rms[c] = UDIN * mag;
                    g.phase[c] += PHASES[(di + ri) % 3];
                }
                g.noise_rms = g.rms[0] * 1e-3;
                g.seed = (uint64_t)(77 + 10 * ri + di + f0);
                if (mag == 1.0) { /* harmonics >= 1 % of nominal */
                    g.nharm = 2;
                    g.h_order[0] = 3;
                    g.h_rel[0] = 0.01;
                    g.h_order[1] = 7;
                    g.h_rel[1] = 0.05;
                }
                rec_t r;
                rec_init(&r, 1);
                run(&g, 2.0, &r);
                phasor_err_t one = {0};
                phasor_errors(&g, &r, 3, &one);
                if (!(one.tve <= 0.01 && one.fe <= 0.005 && one.rfe <= 0.1))
                    fail_msg("noise: fs %g f %g mag %g: TVE %g FE %g RFE %g", g.fs, g.f, mag,
                             one.tve, one.fe, one.rfe);
                worst(&e.tve, one.tve);
                worst(&e.fe, one.fe);
                worst(&e.rfe, one.rfe);
                for (size_t k = SKIP; k < r.nw; k++)
                    for (int c = 0; c < 3; c++) {
                        double t = sqrt(pow(rms_truth(&g, c), 2) + g.noise_rms * g.noise_rms);
                        double d = fabs(r.w[k].ch[c].rms - t) / UDIN;
                        worst(&rms_e, d);
                        if (!(d <= 0.001))
                            fail_msg("noise: RMS %.6g truth %.6g", r.w[k].ch[c].rms, t);
                    }
                if (mag == 1.0)
                    harm_check(&g, &r, &he);
                rec_free(&r);
            }
    double big = 0, small = 0;
    for (int h = 1; h <= DSP_MAX_H; h++) {
        worst(&big, he.big[h]);
        worst(&small, he.small[h]);
    }
    report("60 dB SNR: TVE", 100 * e.tve, 1, "%");
    report("60 dB SNR: frequency error", 1000 * e.fe, 5, "mHz");
    report("60 dB SNR: ROCOF error", e.rfe, 0.1, "Hz/s");
    report("60 dB SNR: RMS error, of Udin", 100 * rms_e, 0.1, "%");
    report("60 dB SNR: harmonic error (1 %, 5 %), of reading", 100 * big, 5, "%");
    report("60 dB SNR: other orders, of Unom", 100 * small, 0.05, "%");
    assert_true(big <= 0.05);
    assert_true(small <= 0.0005);
}

/* ---- three-phase quantities ------------------------------------------------------------- */

/* Zero, positive and negative sequence of three phasors. */
static void seq3(const double complex *v, double complex *out)
{
    double complex a = cexp(I * 2 * M_PI / 3);
    out[0] = (v[0] + v[1] + v[2]) / 3;
    out[1] = (v[0] + a * v[1] + a * a * v[2]) / 3;
    out[2] = (v[0] + a * a * v[1] + a * v[2]) / 3;
}

/* Sets channels c0..c0+2 to the phasors V0 + V1 + V2 given as sequence components. */
static void set_seq(sg_t *g, int c0, double complex z, double complex p, double complex n)
{
    double complex a = cexp(I * 2 * M_PI / 3);
    double complex v[3] = {z + p + n, z + a * a * p + a * n, z + a * p + a * a * n};
    for (int k = 0; k < 3; k++) {
        g->rms[c0 + k] = cabs(v[k]);
        g->phase[c0 + k] = carg(v[k]);
    }
}

/* Harmonic h's phasor on channel c (h = 1: the fundamental), up to the common rotation. */
static double complex harm_phasor(const sg_t *g, int c, int h)
{
    if (h == 1)
        return g->rms[c] * cexp(I * g->phase[c]);
    for (int k = 0; k < g->nharm; k++)
        if (g->h_order[k] == h)
            return g->rms[c] * g->h_rel[k] * cexp(I * (h * g->phase[c] + g->h_phase[k]));
    return 0;
}

/* RMS of channel a minus channel b (sample by sample). */
static double diff_rms(const sg_t *g, int a, int b)
{
    double s2 = 0;
    for (int h = 1; h <= DSP_MAX_H; h++)
        s2 += pow(cabs(harm_phasor(g, a, h) - harm_phasor(g, b, h)), 2);
    return sqrt(s2);
}

/* Symmetrical components, unbalance u0/u2 (61000-4-30 5.7.1, Class A: +-0.15 % absolute) and
 * derived line-to-line voltages, for phase A at 90 %, for an injected zero- and negative-
 * sequence with unbalanced currents, and for a balanced system with 3rd and 5th harmonics (the
 * 3rd, zero sequence, vanishes between lines). */
static void test_symmetrical_and_line_voltages(void **state)
{
    (void)state;
    double seq_e = 0, ue = 0, ie = 0, v1_tve = 0, vll_e = 0;
    for (int cs = 0; cs < 3; cs++) {
        sg_t g;
        sg_default(&g, cs == 1 ? 12800 : 4000, cs == 1 ? 60 : 50);
        g.f = g.f0 + (cs == 1 ? -0.8 : 0.4);
        if (cs == 0) {
            g.rms[0] = 0.9 * UDIN;
        } else if (cs == 1) {
            g.nch = 6;
            set_seq(&g, 0, 0.015 * UDIN * cexp(-0.5 * I), UDIN * cexp(0.4 * I),
                    0.03 * UDIN * cexp(1.1 * I));
            set_seq(&g, 3, 0.25 * cexp(0.2 * I), 5 * cexp(-0.3 * I), 0.5 * cexp(2.0 * I));
        } else {
            g.nharm = 2;
            g.h_order[0] = 3;
            g.h_rel[0] = 0.1;
            g.h_order[1] = 5;
            g.h_rel[1] = 0.05;
            g.h_phase[1] = 0.7;
        }
        rec_t r;
        rec_init(&r, 1);
        run(&g, 1.6, &r);
        assert_true(r.nw >= SKIP + 3);
        for (size_t k = SKIP; k < r.nw; k++) {
            const dsp_window_t *w = &r.w[k];
            assert_true(w->has_v3);
            assert_int_equal(w->has_i3, g.nch >= 6);
            double tau = tau_of(&g, w->t_ref_ns), m, a, f;
            double complex v[3], sq[3], iv[3], isq[3];
            for (int c = 0; c < 3; c++) {
                sg_truth(&g, c, tau, &m, &a, &f);
                v[c] = m * cexp(I * a);
            }
            seq3(v, sq);
            for (int q = 0; q < 3; q++) {
                double d = fabs(w->v_seq_mag[q] - cabs(sq[q])) / UDIN;
                worst(&seq_e, d);
                if (!(d <= 0.001))
                    fail_msg("case %d: sequence %d magnitude %.6g, truth %.6g", cs, q,
                             w->v_seq_mag[q], cabs(sq[q]));
            }
            double t1 = sg_tve(w->v_seq_mag[1], w->v_seq_ang[1], cabs(sq[1]), carg(sq[1]));
            worst(&v1_tve, t1);
            double u0 = cabs(sq[0]) / cabs(sq[1]), u2 = cabs(sq[2]) / cabs(sq[1]);
            worst(&ue, fmax(fabs(w->u0 - u0), fabs(w->u2 - u2)));
            if (!(t1 <= 0.01 && fabs(w->u0 - u0) <= 0.0015 && fabs(w->u2 - u2) <= 0.0015))
                fail_msg("case %d: V1 TVE %g, u0 %.6f (truth %.6f), u2 %.6f (truth %.6f)", cs, t1,
                         w->u0, u0, w->u2, u2);
            if (g.nch >= 6) {
                for (int c = 0; c < 3; c++) {
                    sg_truth(&g, 3 + c, tau, &m, &a, &f);
                    iv[c] = m * cexp(I * a);
                }
                seq3(iv, isq);
                double i0 = cabs(isq[0]) / cabs(isq[1]), i2 = cabs(isq[2]) / cabs(isq[1]);
                worst(&ie, fmax(fabs(w->i0 - i0), fabs(w->i2 - i2)));
                if (!(fabs(w->i0 - i0) <= 0.0015 && fabs(w->i2 - i2) <= 0.0015))
                    fail_msg("case %d: i0 %.6f (truth %.6f), i2 %.6f (truth %.6f)", cs, w->i0, i0,
                             w->i2, i2);
                for (int q = 0; q < 3; q++)
                    if (!(fabs(w->i_seq_mag[q] - cabs(isq[q])) <= 0.001 * 5))
                        fail_msg("case %d: current sequence %d %.6g, truth %.6g", cs, q,
                                 w->i_seq_mag[q], cabs(isq[q]));
            }
            for (int p = 0; p < 3; p++) { /* AB, BC, CA */
                double tr = diff_rms(&g, p, (p + 1) % 3);
                double tf = cabs(harm_phasor(&g, p, 1) - harm_phasor(&g, (p + 1) % 3, 1));
                double d =
                    fmax(fabs(w->vll_rms[p] - tr), fabs(w->vll_fund[p] - tf)) / (sqrt(3) * UDIN);
                worst(&vll_e, d);
                if (!(d <= 0.001))
                    fail_msg("case %d: line %d: rms %.6g (truth %.6g) fund %.6g (truth %.6g)", cs,
                             p, w->vll_rms[p], tr, w->vll_fund[p], tf);
            }
            if (cs == 2) /* balanced: sqrt(3) x, harmonics aside */
                for (int p = 0; p < 3; p++)
                    assert_true(fabs(w->vll_fund[p] - sqrt(3) * UDIN) <= 0.001 * UDIN);
        }
        rec_free(&r);
    }
    report("sequence magnitudes, of Udin", 100 * seq_e, 0.1, "%");
    report("positive sequence TVE", 100 * v1_tve, 1, "%");
    report("u0/u2 absolute error (voltage)", 100 * ue, 0.15, "%");
    report("i0/i2 absolute error (current)", 100 * ie, 0.15, "%");
    report("line-to-line RMS/fundamental, of sqrt(3) Udin", 100 * vll_e, 0.1, "%");
}

/* Power per IEEE 1459 with known V/I angles (lagging, leading) and harmonics on every channel
 * (the harmonic h of a current lags by h x its fundamental's angle): P includes harmonic
 * power, Q is the fundamental Q1 (positive when the current lags), S = Vrms Irms, PF = P/S;
 * totals with the effective apparent power Se. No Required figure in the brief's table:
 * asserted at 0.2 % of S (twice the RMS figure) and 0.002 in PF. */
static void test_power(void **state)
{
    (void)state;
    static const double lag[3] = {0.5, -0.3, 1.0};
    static const double amps[3] = {5, 4, 6};
    double pe = 0, qe = 0, se = 0, pfe = 0, te = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10) {
        sg_t g;
        sg_default(&g, 4000, f0);
        g.f = f0 * 1.012;
        g.nch = 6;
        for (int p = 0; p < 3; p++) {
            g.rms[3 + p] = amps[p];
            g.phase[3 + p] = g.phase[p] - lag[p];
        }
        g.nharm = 2;
        g.h_order[0] = 3;
        g.h_rel[0] = 0.04;
        g.h_order[1] = 5;
        g.h_rel[1] = 0.03;
        g.h_phase[1] = 0.3;
        double P[3], Q[3], S[3], vr[3], ir[3];
        for (int p = 0; p < 3; p++) {
            P[p] = 0;
            for (int h = 1; h <= 5; h++)
                P[p] += creal(harm_phasor(&g, p, h) * conj(harm_phasor(&g, 3 + p, h)));
            Q[p] = cimag(harm_phasor(&g, p, 1) * conj(harm_phasor(&g, 3 + p, 1)));
            vr[p] = rms_truth(&g, p);
            ir[p] = rms_truth(&g, 3 + p);
            S[p] = vr[p] * ir[p];
        }
        double in2 = 0, ve2 = 0, ie2 = 0;
        for (int h = 1; h <= 5; h++)
            in2 +=
                pow(cabs(harm_phasor(&g, 3, h) + harm_phasor(&g, 4, h) + harm_phasor(&g, 5, h)), 2);
        for (int p = 0; p < 3; p++) {
            ve2 += 3 * vr[p] * vr[p] + pow(diff_rms(&g, p, (p + 1) % 3), 2);
            ie2 += ir[p] * ir[p];
        }
        double Se = 3 * sqrt(ve2 / 18) * sqrt((ie2 + in2) / 3);
        double Pt = P[0] + P[1] + P[2], Qt = Q[0] + Q[1] + Q[2];

        rec_t r;
        rec_init(&r, 1);
        run(&g, 1.6, &r);
        assert_true(r.nw >= SKIP + 3);
        for (size_t k = SKIP; k < r.nw; k++) {
            const dsp_window_t *w = &r.w[k];
            assert_int_equal(w->power_mask, 7);
            for (int p = 0; p < 3; p++) {
                const dsp_power_t *x = &w->pw[p];
                worst(&pe, fabs(x->p - P[p]) / S[p]);
                worst(&qe, fabs(x->q - Q[p]) / S[p]);
                worst(&se, fabs(x->s - S[p]) / S[p]);
                worst(&pfe, fabs(x->pf - P[p] / S[p]));
                if (!(fabs(x->p - P[p]) <= 0.002 * S[p] && fabs(x->q - Q[p]) <= 0.002 * S[p] &&
                      fabs(x->s - S[p]) <= 0.002 * S[p] && fabs(x->pf - P[p] / S[p]) <= 0.002))
                    fail_msg("f0 %d phase %d: P %.5g (%.5g) Q %.5g (%.5g) S %.5g (%.5g) PF %.5f "
                             "(%.5f)",
                             f0, p, x->p, P[p], x->q, Q[p], x->s, S[p], x->pf, P[p] / S[p]);
            }
            double d = fmax(fabs(w->p_tot - Pt), fmax(fabs(w->q_tot - Qt), fabs(w->s_eff - Se)));
            worst(&te, d / Se);
            worst(&pfe, fabs(w->pf_tot - Pt / Se));
            if (!(d <= 0.002 * Se && fabs(w->pf_tot - Pt / Se) <= 0.002))
                fail_msg("f0 %d totals: P %.6g (%.6g) Q %.6g (%.6g) Se %.6g (%.6g) PF %.5f (%.5f)",
                         f0, w->p_tot, Pt, w->q_tot, Qt, w->s_eff, Se, w->pf_tot, Pt / Se);
        }
        rec_free(&r);
    }
    report("P per phase, of S", 100 * pe, 0.2, "%");
    report("Q1 per phase, of S", 100 * qe, 0.2, "%");
    report("S per phase, of S", 100 * se, 0.2, "%");
    report("P, Q, Se totals, of Se", 100 * te, 0.2, "%");
    report("PF per phase and total, absolute", pfe, 0.002, "");

    /* one current channel (phase A): power for phase A only */
    sg_t g;
    sg_default(&g, 4000, 50);
    g.nch = 4;
    g.rms[3] = 5;
    g.phase[3] = -0.5;
    rec_t r;
    rec_init(&r, 1);
    run(&g, 1.0, &r);
    assert_true(r.nw > SKIP);
    for (size_t k = SKIP; k < r.nw; k++) {
        assert_int_equal(r.w[k].power_mask, 1);
        assert_false(r.w[k].has_i3);
        double P = UDIN * 5 * cos(0.5);
        assert_true(fabs(r.w[k].pw[0].p - P) <= 0.002 * UDIN * 5);
    }
    rec_free(&r);
}

/* ---- voltage events --------------------------------------------------------------------- */

typedef struct {
    const char *name;
    double fs;
    int f0;
    double f;
    double gain[3]; /* step gains per phase */
    double from, to;
    int noise;      /* 60 dB SNR */
    int sliding;    /* no Udin: sliding reference */
    int kind;       /* the event expected */
    uint32_t chans; /* its channel mask */
    int no_intr;    /* an interruption must not be reported */
} ev_case_t;

static const dsp_event_t *find_event(const rec_t *r, int kind, int nth)
{
    for (int i = 0; i < r->nev; i++)
        if (r->ev[i].kind == kind && nth-- == 0)
            return &r->ev[i];
    return NULL;
}

static int count_events(const rec_t *r, int kind)
{
    int n = 0;
    for (int i = 0; i < r->nev; i++)
        n += r->ev[i].kind == kind;
    return n;
}

/* The 4-30 flag: windows overlapping the event by a cycle are flagged, windows a cycle clear of
 * it are not; a 3 s aggregate is flagged exactly when one of its windows is; the 10-min value
 * and the 10-s frequency holding the event are flagged. */
static void check_event_flags(const sg_t *g, const rec_t *r, int64_t es, int64_t ee)
{
    int64_t cyc = (int64_t)(1e9 / g->f0);
    int flagged = 0;
    for (size_t k = 0; k < r->nws; k++) {
        const wsum_t *w = &r->ws[k];
        int ev = (w->flags & DSP_F_EVENT) != 0;
        int64_t ov = (w->t_end < ee ? w->t_end : ee) - (w->t_start > es ? w->t_start : es);
        if (ov >= cyc && !ev)
            fail_msg("window %zu overlaps the event by %lld ns, not flagged", k, (long long)ov);
        if ((w->t_end < es - cyc || w->t_start > ee + cyc) && ev)
            fail_msg("window %zu (%lld..%lld) clear of the event (%lld..%lld) flagged", k,
                     (long long)w->t_start, (long long)w->t_end, (long long)es, (long long)ee);
        flagged += ev;
    }
    assert_true(flagged >= 1);
    int n3 = 0, n3f = 0;
    for (size_t a = 0; a < r->nagg; a++) {
        const dsp_agg_t *x = &r->agg[a];
        if (x->kind != DSP_AGG_3S)
            continue;
        int any = 0;
        for (size_t k = 0; k < r->nws; k++)
            if (r->ws[k].t_start >= x->t_start_ns && r->ws[k].t_end <= x->t_end_ns)
                any |= (r->ws[k].flags & DSP_F_EVENT) != 0;
        assert_int_equal(any, (x->flags & DSP_F_EVENT) != 0);
        n3++;
        n3f += any;
    }
    assert_true(n3 >= 2 && n3f >= 1 && n3f < n3);
    /* and to the 10-min value and the 10-s frequency that hold it */
    int n10 = 0;
    for (size_t a = 0; a < r->nagg; a++)
        if (r->agg[a].kind == DSP_AGG_10MIN && r->agg[a].t_start_ns <= es &&
            r->agg[a].t_end_ns >= ee) {
            assert_true(r->agg[a].flags & DSP_F_EVENT);
            n10++;
        }
    assert_int_equal(n10, 1);
    int nf = 0;
    for (int i = 0; i < r->nf10; i++)
        if (r->f10[i].t_start_ns <= es && r->f10[i].t_end_ns >= ee) {
            assert_true(r->f10[i].flags & DSP_F_EVENT);
            nf++;
        }
    assert_int_equal(nf, 1);
}

static void test_events(void **state)
{
    (void)state;
    static const ev_case_t cases[] = {
        {"dip 3 ph 50 %", 4000, 50, 50.2, {0.5, 0.5, 0.5}, 3.8137, 3.9137, 0, 0, DSP_EV_DIP, 7, 1},
        {"dip B 70 %", 4000, 60, 59.7, {1, 0.7, 1}, 3.8021, 4.0521, 0, 0, DSP_EV_DIP, 2, 1},
        {"dip A 2 % (no interruption)",
         12800,
         50,
         50,
         {0.02, 1, 1},
         3.79,
         4.29,
         0,
         0,
         DSP_EV_DIP,
         1,
         1},
        {"dip 2 ph 40 %, noise", 4000, 50, 49.6, {0.4, 1, 0.4}, 3.8, 4.8, 1, 0, DSP_EV_DIP, 5, 1},
        {"dip 3 ph 75 %, 12.8k, 1.5 cycles",
         12800,
         60,
         60.1,
         {0.75, 0.75, 0.75},
         3.81,
         3.81 + 1.5 / 60,
         0,
         0,
         DSP_EV_DIP,
         7,
         1},
        {"dip sliding ref", 4000, 50, 50, {0.8, 0.8, 0.8}, 3.8, 4.1, 0, 1, DSP_EV_DIP, 7, 1},
        {"swell A C 120 %", 4000, 50, 50.3, {1.2, 1, 1.2}, 3.82, 4.12, 0, 0, DSP_EV_SWELL, 5, 1},
        {"swell 3 ph 140 %, 60 Hz noise",
         12800,
         60,
         60,
         {1.4, 1.4, 1.4},
         3.8,
         4.0,
         1,
         0,
         DSP_EV_SWELL,
         7,
         1},
        {"interruption 2 %",
         4000,
         50,
         50,
         {0.02, 0.02, 0.02},
         3.8,
         4.3,
         0,
         0,
         DSP_EV_INTERRUPTION,
         7,
         0},
        {"interruption 0 %, 60 Hz",
         4000,
         60,
         60,
         {0, 0, 0},
         3.8071,
         4.6071,
         0,
         0,
         DSP_EV_INTERRUPTION,
         7,
         0},
        {"interruption 5 %, 12.8k noise",
         12800,
         50,
         49.8,
         {0.05, 0.05, 0.05},
         3.8033,
         4.9033,
         1,
         0,
         DSP_EV_INTERRUPTION,
         7,
         0},
    };
    double res_e = 0, st_e = 0, du_e = 0, ist_e = 0, idu_e = 0;
    soft_failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ev_case_t *ec = &cases[i];
        sg_t g;
        sg_default(&g, ec->fs, ec->f0);
        g.f = ec->f;
        g.step_from = ec->from;
        g.step_to = ec->to;
        for (int c = 0; c < 3; c++)
            g.step_gain[c] = ec->gain[c];
        if (ec->noise)
            g.noise_rms = UDIN * 1e-3;
        dsp_config_t cfg;
        cfg_for(&cfg, &g);
        cfg.declared_v = ec->sliding ? 0 : UDIN;
        rec_t r;
        rec_init(&r, 0);
        run_cfg(&g, &cfg, 7.0, &r);

        const dsp_event_t *e = find_event(&r, ec->kind, 0);
        if (!e || count_events(&r, ec->kind) != 1)
            fail_msg("%s: %d events of kind %s", ec->name, count_events(&r, ec->kind),
                     dsp_event_name(ec->kind));
        if (ec->kind == DSP_EV_SWELL)
            assert_int_equal(count_events(&r, DSP_EV_DIP), 0);
        if (ec->no_intr)
            assert_int_equal(count_events(&r, DSP_EV_INTERRUPTION), 0);
        if (ec->kind != DSP_EV_SWELL)
            assert_int_equal(count_events(&r, DSP_EV_SWELL), 0);
        double cyc = 1.0 / ec->f0;
        double ex = ec->kind == DSP_EV_SWELL ? 0 : INFINITY;
        int wc = 0;
        for (int c = 0; c < 3; c++)
            if (ec->kind == DSP_EV_SWELL ? ec->gain[c] > ex : ec->gain[c] < ex) {
                ex = ec->gain[c];
                wc = c;
            }
        ex *= UDIN;
        double ref = e->reference;
        double start = tau_of(&g, e->start_ns), dur = (double)e->duration_ns / 1e9;
        double rerr = fabs(e->extreme - ex) / UDIN;
        double serr = fabs(start - ec->from) / cyc, derr = fabs(dur - (ec->to - ec->from)) / cyc;
        if (ec->kind == DSP_EV_INTERRUPTION) {
            /* 4-30 5.5: an interruption starts when the one-cycle RMS of every phase is below
             * 10 % and ends when one is back above 12 %. For a rectangular interruption to
             * residual r that happens when the fraction a = (1 - 0.1^2)/(1 - r^2) of the window
             * lies inside it, and ends when b = (1 - 0.12^2)/(1 - r^2) still does: the
             * standard's own duration is (1 - a - b) cycles (about -1) shorter than the
             * rectangle, its start (a - 1/2) cycles later (values stamped at the window centre).
             * Class A allows one cycle of uncertainty on that definition. */
            double r2 = ex / UDIN * (ex / UDIN);
            double a = (1 - 0.01) / (1 - r2), b = (1 - 0.0144) / (1 - r2);
            serr = fabs(start - ec->from - (a - 0.5) * cyc) / cyc;
            derr = fabs(dur - (ec->to - ec->from) - (1 - a - b) * cyc) / cyc;
        }
        printf("# %-36s %s: start %+.3f cyc, duration %+.3f cyc, residual/max %.3f %% Udin "
               "(err %.4f %%)\n",
               ec->name, dsp_event_name(e->kind), (start - ec->from) / cyc,
               (dur - (ec->to - ec->from)) / cyc, 100 * e->extreme / UDIN, 100 * rerr);
        worst(&res_e, rerr);
        worst(ec->kind == DSP_EV_INTERRUPTION ? &ist_e : &st_e, serr);
        worst(ec->kind == DSP_EV_INTERRUPTION ? &idu_e : &du_e, derr);
        if (!(rerr <= 0.002))
            soft_fail("%s: extreme %.5g, truth %.5g", ec->name, e->extreme, ex);
        if (!(serr <= 1 && derr <= 1))
            soft_fail("%s: start %.6f s (truth %.6f), duration %.6f s (truth %.6f)", ec->name,
                      start, ec->from, dur, ec->to - ec->from);
        assert_int_equal(e->channels, ec->chans);
        assert_true(e->worst_channel >= 0 && e->worst_channel < 3);
        assert_true(ec->gain[e->worst_channel] == ec->gain[wc]); /* a channel of the extreme */
        assert_true(fabs(e->extreme_pct - 100 * e->extreme / ref) <= 1e-6);
        if (ec->sliding) {
            assert_int_equal(e->flags, DSP_EVF_SLIDING);
            assert_true(fabs(ref - UDIN) <= 0.001 * UDIN);
        } else {
            assert_int_equal(e->flags, 0);
            assert_true(ref == UDIN);
        }
        /* the flag covers every event: an interruption is inside a longer dip */
        int64_t es = e->start_ns, ee = e->start_ns + e->duration_ns;
        for (int q = 0; q < r.nev; q++) {
            if (r.ev[q].start_ns < es)
                es = r.ev[q].start_ns;
            if (r.ev[q].start_ns + r.ev[q].duration_ns > ee)
                ee = r.ev[q].start_ns + r.ev[q].duration_ns;
        }
        check_event_flags(&g, &r, es, ee);
        rec_free(&r);
    }
    report("event residual/maximum voltage, of Udin", 100 * res_e, 0.2, "%");
    report("dip/swell start, cycles", st_e, 1, "cyc");
    report("dip/swell duration, cycles", du_e, 1, "cyc");
    report("interruption start vs the 4-30 definition, cycles", ist_e, 1, "cyc");
    report("interruption duration vs the 4-30 definition, cycles", idu_e, 1, "cyc");
    assert_int_equal(soft_failures, 0);
}

/* ---- aggregation ------------------------------------------------------------------------ */

#define T_2026 (1767225600LL * NS) /* 2026-01-01T00:00:00Z: a 10-min and a 2-h tick */

/* 3 s aggregates: 15 windows each (150/180 cycles), RMS aggregation of the window values
 * (61000-4-30 4.5.2), against the truth; a short one at the end of the input is incomplete. */
static void test_aggregate_3s(void **state)
{
    (void)state;
    double rms_e = 0, h_e = 0, f_e = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10) {
        sg_t g;
        sg_default(&g, 4000, f0);
        g.f = f0 + 0.23;
        g.nharm = 1;
        g.h_order[0] = 5;
        g.h_rel[0] = 0.06;
        g.rms[1] = 0.95 * UDIN;
        rec_t r;
        rec_init(&r, 1);
        run(&g, 7.0, &r);
        size_t w0 = 0;
        int n3 = 0, shorts = 0;
        for (size_t a = 0; a < r.nagg; a++) {
            const dsp_agg_t *x = &r.agg[a];
            if (x->kind != DSP_AGG_3S)
                continue;
            assert_int_equal(x->expected, 15);
            assert_true(w0 + x->count <= r.nw);
            assert_int_equal(x->t_start_ns, r.w[w0].t_start_ns);
            assert_int_equal(x->t_end_ns, r.w[w0 + x->count - 1].t_end_ns);
            if (x->count < 15) {
                shorts++;
                assert_true(x->flags & DSP_F_INCOMPLETE);
                assert_int_equal(w0 + x->count, r.nw); /* only the last (flushed) one */
            } else {
                assert_int_equal(x->count, 15);
                assert_false(x->flags & DSP_F_INCOMPLETE);
            }
            assert_false(x->flags & DSP_F_EVENT);
            double fs = 0, fmn = INFINITY, fmx = -INFINITY;
            for (size_t k = w0; k < w0 + x->count; k++) {
                fs += r.w[k].freq;
                fmn = fmin(fmn, r.w[k].freq);
                fmx = fmax(fmx, r.w[k].freq);
            }
            assert_true(fabs(x->freq_mean - fs / x->count) <= 1e-9);
            assert_true(x->freq_min == fmn && x->freq_max == fmx);
            for (int c = 0; c < 3; c++) {
                double s2 = 0;
                for (size_t k = w0; k < w0 + x->count; k++)
                    s2 += r.w[k].ch[c].rms * r.w[k].ch[c].rms;
                assert_true(fabs(x->ch[c].rms - sqrt(s2 / x->count)) <= 1e-9 * UDIN);
                if (w0 >= SKIP) { /* against the generator */
                    worst(&rms_e, fabs(x->ch[c].rms - rms_truth(&g, c)) / UDIN);
                    worst(&h_e, fabs(x->ch[c].hg[5] - 0.06 * g.rms[c]) / (0.06 * g.rms[c]));
                    worst(&f_e, fabs(x->freq_mean - g.f));
                    assert_true(fabs(x->ch[c].rms - rms_truth(&g, c)) <= 0.001 * UDIN);
                    assert_true(fabs(x->ch[c].fund_mag - g.rms[c]) <= 0.001 * UDIN);
                    assert_true(fabs(x->ch[c].thd - 0.06) <= 0.05 * 0.06);
                    assert_true(fabs(x->ch[c].hg[5] - 0.06 * g.rms[c]) <= 0.05 * 0.06 * g.rms[c]);
                    assert_true(fabs(x->freq_mean - g.f) <= 0.005);
                    double u2 = cabs(g.rms[0] + g.rms[1] * cexp(I * 2 * M_PI / 3) +
                                     g.rms[2] * cexp(-I * 2 * M_PI / 3)) /
                                (g.rms[0] + g.rms[1] + g.rms[2]);
                    assert_true(fabs(x->u2 - u2) <= 0.0015);
                }
            }
            w0 += x->count;
            n3++;
        }
        assert_int_equal(w0, r.nw); /* every window in exactly one 3 s value */
        assert_true(n3 >= 3);
        assert_int_equal(shorts, 1);
        rec_free(&r);
    }
    report("3 s aggregate RMS vs truth, of Udin", 100 * rms_e, 0.1, "%");
    report("3 s aggregate 5th harmonic, of reading", 100 * h_e, 5, "%");
    report("3 s aggregate mean frequency", 1000 * f_e, 5, "mHz");
}

/* 61000-4-30 4.6: a stream started 5 s before a 10-min tick. The window containing the tick is
 * followed by one starting exactly at the tick (DSP_F_RESYNC); the 3 s interval in progress is
 * closed short at the tick and the next starts there; the 10-min value of the interval before
 * the tick is incomplete and carries the tick boundaries; the 10-s frequency restarts too. */
static void test_resync_10min(void **state)
{
    (void)state;
    for (int f0 = 50; f0 <= 60; f0 += 10) {
        int64_t tick = T_2026 + 1800 * NS; /* 00:30 */
        sg_t g;
        sg_default(&g, 4000, f0);
        g.t_base_ns = tick - 5 * NS;
        g.f = f0 + 0.3;
        rec_t r;
        rec_init(&r, 1);
        run(&g, 15.5, &r); /* past tick + 10 s: the 10-s interval after the tick is covered */
        size_t rk = 0;
        int nres = 0;
        for (size_t k = 0; k < r.nw; k++)
            if (r.w[k].flags & DSP_F_RESYNC) {
                rk = k;
                nres++;
            }
        assert_int_equal(nres, 1);
        assert_true(rk > 0);
        const dsp_window_t *pre = &r.w[rk - 1], *res = &r.w[rk];
        printf("# f0 %d: resync window starts %lld ns from the tick\n", f0,
               (long long)(res->t_start_ns - tick));
        assert_true(pre->t_start_ns < tick && pre->t_end_ns > tick);
        assert_true(llabs(res->t_start_ns - tick) <= 1);
        /* accurate on both sides of the tick */
        for (size_t k = rk - 2; k <= rk + 2; k++) {
            double m, a, f, tau = tau_of(&g, r.w[k].t_ref_ns);
            sg_truth(&g, 0, tau, &m, &a, &f);
            assert_true(sg_tve(r.w[k].ch[0].ph_mag, r.w[k].ch[0].ph_ang, m, a) <= 0.01);
            assert_true(fabs(r.w[k].freq - f) <= 0.005);
        }
        /* aggregates, in emission order */
        const dsp_agg_t *short3 = NULL, *next3 = NULL, *ten_before = NULL, *ten_after = NULL,
                        *two_h = NULL;
        for (size_t a = 0; a < r.nagg; a++) {
            const dsp_agg_t *x = &r.agg[a];
            if (x->kind == DSP_AGG_3S && x->t_start_ns < tick && x->t_end_ns >= tick)
                short3 = x;
            if (x->kind == DSP_AGG_3S && x->t_start_ns == tick)
                next3 = x;
            if (x->kind == DSP_AGG_3S)
                assert_false(x->t_start_ns < tick && x->t_end_ns > pre->t_end_ns);
            if (x->kind == DSP_AGG_10MIN && x->t_end_ns == tick)
                ten_before = x;
            if (x->kind == DSP_AGG_10MIN && x->t_start_ns == tick)
                ten_after = x;
            if (x->kind == DSP_AGG_2H)
                two_h = x;
        }
        assert_non_null(short3);
        assert_true(short3->count < 15 && short3->count >= 1);
        assert_int_equal(short3->t_end_ns, pre->t_end_ns);
        assert_non_null(next3);
        assert_int_equal(next3->count, 15);
        assert_int_equal(next3->t_start_ns, res->t_start_ns);
        assert_non_null(ten_before);
        assert_int_equal(ten_before->t_start_ns, tick - TICK10);
        assert_true(ten_before->flags & DSP_F_INCOMPLETE);
        assert_int_equal(ten_before->count, rk); /* windows starting before the tick */
        assert_non_null(ten_after);
        assert_int_equal(ten_after->t_end_ns, tick + TICK10);
        assert_true(ten_after->flags & DSP_F_INCOMPLETE);
        assert_int_equal(ten_after->count, r.nw - rk);
        assert_true(fabs(ten_after->freq_mean - g.f) <= 0.005);
        assert_true(fabs(ten_after->ch[0].rms - UDIN) <= 0.001 * UDIN);
        assert_non_null(two_h); /* at the flush: 00:00-02:00, two incomplete 10-min values */
        assert_int_equal(two_h->t_start_ns, T_2026);
        assert_int_equal(two_h->t_end_ns, T_2026 + 7200 * NS);
        assert_int_equal(two_h->count, 2);
        assert_true(two_h->flags & DSP_F_INCOMPLETE);
        /* 10-s frequency: the interval before the tick holds 5 s, the one after is complete */
        const dsp_freq10_t *fb = NULL, *fa = NULL;
        for (int i = 0; i < r.nf10; i++) {
            if (r.f10[i].t_end_ns == tick)
                fb = &r.f10[i];
            if (r.f10[i].t_start_ns == tick)
                fa = &r.f10[i];
        }
        assert_non_null(fb);
        assert_true(fb->flags & DSP_F_INCOMPLETE);
        assert_non_null(fa);
        assert_int_equal(fa->t_end_ns, tick + 10 * NS);
        assert_false(fa->flags & DSP_F_INCOMPLETE);
        assert_true(fabs(fa->freq - g.f) <= 0.01);
        rec_free(&r);
    }
}

/* The 10-s frequency (61000-4-30 5.1.2, Class A +-10 mHz) over 42.5..57.5 Hz (50 Hz) and
 * 51..69 Hz (60 Hz), and on a slow ramp (truth: cycles in the interval / 10 s). */
static void test_freq10(void **state)
{
    (void)state;
    static const double fr[2][5] = {{42.5, 45.2, 50, 53.9, 57.5}, {51, 55.5, 60, 64.1, 69}};
    double err = 0;
    for (int f0 = 50; f0 <= 60; f0 += 10)
        for (int k = 0; k < 6; k++) {
            sg_t g;
            sg_default(&g, 4000, f0);
            int64_t tick = T_2026 + 20 * NS;
            g.t_base_ns = tick - 2 * NS; /* the interval [tick, tick + 10 s) is covered */
            double truth;
            if (k < 5) {
                g.f = fr[f0 == 60][k];
                truth = g.f;
            } else { /* 0.05 Hz/s: mean frequency over tau 2..12 s */
                g.f = f0 - 0.4;
                g.rocof = 0.05;
                truth = g.f + g.rocof * 7;
            }
            rec_t r;
            rec_init(&r, 0);
            run(&g, 12.6, &r);
            const dsp_freq10_t *x = NULL;
            for (int i = 0; i < r.nf10; i++)
                if (r.f10[i].t_start_ns == tick)
                    x = &r.f10[i];
            assert_non_null(x);
            assert_int_equal(x->t_end_ns, tick + 10 * NS);
            assert_false(x->flags & DSP_F_INCOMPLETE);
            assert_false(x->flags & DSP_F_EVENT);
            assert_true(fabs((double)x->cycles - 10 * truth) <= 1.5);
            worst(&err, fabs(x->freq - truth));
            if (!(fabs(x->freq - truth) <= 0.01))
                fail_msg("f0 %d: 10-s frequency %.5f, truth %.5f", f0, x->freq, truth);
            rec_free(&r);
        }
    report("10-s frequency error, 42.5..57.5 / 51..69 Hz", 1000 * err, 10, "mHz");
}

/* A whole 10-min interval (1.6 kS/s to keep it cheap): at 49.95 Hz, 2997 windows start in it
 * (fewer than the nominal 3000) but no data is missing, so it is complete; with a 100 ms gap
 * inside (at 50.05 Hz, where it still holds >= 3000 windows) it is incomplete, and so is the 10-s
 * frequency of the interval holding the gap (the others are complete). 3 s values
 * inside are complete; 10-s frequencies are all present. */
static void test_aggregate_10min(void **state)
{
    (void)state;
    soft_failures = 0;
    for (int withgap = 0; withgap <= 1; withgap++) {
        int64_t tick = T_2026 + 1200 * NS;
        sg_t g;
        sg_default(&g, 1600, 50);
        g.t_base_ns = tick - 1 * NS;
        g.f = withgap ? 50.05 : 49.95;
        rec_t r;
        rec_init(&r, 0);
        dsp_config_t cfg;
        cfg_for(&cfg, &g);
        dsp_stream_t *s = open_stream(&cfg, &r);
        uint64_t n = nsamp(&g, 602.5), cut = nsamp(&g, 305.5), skip = nsamp(&g, 0.1);
        if (withgap) {
            feed(s, &g, 0, cut, 800);
            feed(s, &g, cut + skip, n - cut - skip, 800);
        } else {
            feed(s, &g, 0, n, 800);
        }
        dsp_stream_flush(s);
        dsp_stream_free(s);
        assert_int_equal(r.ngap, withgap);
        const dsp_agg_t *ten = NULL;
        int n3 = 0, n3bad = 0;
        for (size_t a = 0; a < r.nagg; a++) {
            const dsp_agg_t *x = &r.agg[a];
            if (x->kind == DSP_AGG_10MIN && x->t_start_ns == tick)
                ten = x;
            if (x->kind == DSP_AGG_3S && x->t_start_ns >= tick && x->t_end_ns <= tick + TICK10) {
                n3++;
                n3bad += x->count != 15;
            }
        }
        assert_non_null(ten);
        int64_t covered = 0;
        size_t inside = 0;
        for (size_t k = 0; k < r.nws; k++)
            if (r.ws[k].t_start >= tick && r.ws[k].t_start < tick + TICK10) {
                inside++;
                covered += r.ws[k].t_end - r.ws[k].t_start;
            }
        printf("# 10 min at %.2f Hz%s: %u windows (expected %u), %.3f s covered, flags 0x%x\n", g.f,
               withgap ? " with a 100 ms gap" : "", ten->count, ten->expected,
               (double)covered / 1e9, ten->flags);
        assert_int_equal(ten->count, inside);
        assert_int_equal(ten->t_end_ns, tick + TICK10);
        assert_true(fabs(ten->freq_mean - g.f) <= 0.01);
        assert_true(fabs(ten->ch[0].rms - UDIN) <= 0.001 * UDIN);
        if (withgap && !(ten->flags & DSP_F_INCOMPLETE))
            soft_fail("10-min value with a 100 ms gap inside is not flagged incomplete "
                      "(%u windows, expected %u)",
                      ten->count, ten->expected);
        if (!withgap && (ten->flags & DSP_F_INCOMPLETE))
            soft_fail("complete 10-min value at %.2f Hz flagged incomplete (%u windows, "
                      "expected %u)",
                      g.f, ten->count, ten->expected);
        /* 3 s values: all complete except around the gap (the last one before the next tick
         * ends there) */
        printf("# 3 s values inside: %d, not of 15 windows: %d\n", n3, n3bad);
        assert_true(n3 >= 195);
        assert_true(n3bad <= (withgap ? 3 : 1));
        int nf = 0;
        for (int i = 0; i < r.nf10; i++)
            if (r.f10[i].t_start_ns >= tick && r.f10[i].t_end_ns <= tick + TICK10) {
                nf++;
                int has_gap = withgap && r.f10[i].t_start_ns < g.t_base_ns + 306 * NS &&
                              r.f10[i].t_end_ns > g.t_base_ns + 305 * NS;
                assert_int_equal((r.f10[i].flags & DSP_F_INCOMPLETE) != 0, has_gap);
                assert_true(fabs(r.f10[i].freq - g.f) <= 0.01);
            }
        assert_int_equal(nf, 60);
        rec_free(&r);
    }
    assert_int_equal(soft_failures, 0);
}

/* ---- gaps, non-finite samples, time jumps ------------------------------------------------ */

/* No window spans the missing stretch [from, to). */
static void check_no_window_spans(const rec_t *r, int64_t from, int64_t to)
{
    int64_t lo = from < to ? from : to, hi = from < to ? to : from;
    for (size_t k = 0; k < r->nws; k++)
        if (!(r->ws[k].t_end <= lo || r->ws[k].t_start >= (from < to ? hi : to)))
            fail_msg("window %zu (%lld..%lld) spans the gap %lld..%lld", k,
                     (long long)r->ws[k].t_start, (long long)r->ws[k].t_end, (long long)from,
                     (long long)to);
}

/* Index of the first window starting at or after t. */
static size_t first_from(const rec_t *r, int64_t t)
{
    size_t k = 0;
    while (k < r->nw && r->w[k].t_start_ns < t)
        k++;
    return k;
}

/* Windows of a new segment, from window k0 (its first) on, against the truth (skipping the
 * acquisition); `shift` is added to their times to get the generator's. */
static void check_after(const sg_t *g, const rec_t *r, size_t k0, int64_t shift, double *tve)
{
    int seen = 0, judged = 0;
    for (size_t k = k0; k < r->nw; k++) {
        const dsp_window_t *w = &r->w[k];
        if (seen == 0)
            assert_true(w->flags & DSP_F_NO_ROCOF); /* first of a segment */
        if (seen++ < SKIP || !clear_of_step(g, w))
            continue;
        double m, a, f, tau = tau_of(g, w->t_ref_ns + shift);
        for (int c = 0; c < 3; c++) {
            sg_truth(g, c, tau, &m, &a, &f);
            double e = sg_tve(w->ch[c].ph_mag, w->ch[c].ph_ang, m, a);
            worst(tve, e);
            if (!(e <= 0.01 && fabs(w->freq - f) <= 0.005))
                fail_msg("window %zu after the gap: TVE %g, FE %g", k, e, fabs(w->freq - f));
        }
        judged++;
    }
    assert_true(judged >= 3);
}

/* A push whose start jumps 100 ms ahead: a gap from the expected to the actual start, no
 * window across it, the dip in progress closed with DSP_EVF_GAP, the 3 s value in progress
 * closed short, analysis resuming accurately after it. */
static void test_gap(void **state)
{
    (void)state;
    double tve = 0;
    soft_failures = 0;
    for (int ri = 0; ri < 2; ri++) {
        sg_t g;
        sg_default(&g, ri ? 25600 : 4000, ri ? 60 : 50);
        g.f = g.f0 + 0.2;
        g.step_from = 1.9; /* a dip, 60 %, across the gap and beyond */
        g.step_to = 2.5;
        for (int c = 0; c < 3; c++)
            g.step_gain[c] = 0.6;
        dsp_config_t cfg;
        cfg_for(&cfg, &g);
        cfg.declared_v = UDIN;
        rec_t r;
        rec_init(&r, 1);
        dsp_stream_t *s = open_stream(&cfg, &r);
        uint64_t n1 = nsamp(&g, 2.05), skip = nsamp(&g, 0.1);
        feed(s, &g, 0, n1, (size_t)(g.fs / 20));
        assert_int_equal(r.ngap, 0);
        int nev_before = r.nev;
        feed(s, &g, n1 + skip, nsamp(&g, 2.5), (size_t)(g.fs / 20));
        dsp_stream_flush(s);
        dsp_stream_free(s);
        assert_int_equal(nev_before, 0);
        assert_int_equal(r.ngap, 1);
        int64_t from = t_of(&g, n1), to = t_of(&g, n1 + skip);
        /* within a microsecond here; to the nanosecond at the end of the test */
        int64_t from_err = r.gap[0].from_ns - from;
        assert_true(llabs(from_err) <= 1000);
        assert_true(llabs(r.gap[0].to_ns - to) <= 1);
        check_no_window_spans(&r, from, to);
        check_after(&g, &r, first_from(&r, to), 0, &tve);
        /* the dip: closed at the gap, then a new one after it that ends normally */
        assert_int_equal(count_events(&r, DSP_EV_DIP), 2);
        const dsp_event_t *e1 = find_event(&r, DSP_EV_DIP, 0), *e2 = find_event(&r, DSP_EV_DIP, 1);
        double cyc = 1.0 / g.f0;
        assert_true(e1->flags & DSP_EVF_GAP);
        assert_true(fabs(tau_of(&g, e1->start_ns) - 1.9) <= cyc);
        /* it ends at the last Urms(1/2) examined: samples after the last whole window of the
         * segment are not analysed, so up to a window (+ lookahead) before the gap */
        int64_t e1_end = e1->start_ns + e1->duration_ns;
        printf("# fs %g: dip closed by the gap %.1f ms before it\n", g.fs,
               (double)(from - e1_end) / 1e6);
        assert_true(e1_end <= from);
        assert_true(e1_end >= from - (int64_t)(0.25 * NS));
        assert_true(fabs(e1->extreme - 0.6 * UDIN) <= 0.002 * UDIN);
        assert_false(e2->flags & DSP_EVF_GAP);
        assert_true(e2->start_ns >= to);
        assert_true(fabs(tau_of(&g, e2->start_ns + e2->duration_ns) - 2.5) <= cyc);
        /* the 3 s value in progress ends before the gap, short and incomplete */
        int found = 0;
        for (size_t a = 0; a < r.nagg; a++) {
            const dsp_agg_t *x = &r.agg[a];
            if (x->kind == DSP_AGG_3S && x->t_end_ns <= from && x->t_end_ns > from - NS / 4) {
                found = 1;
                assert_true(x->count < 15);
                assert_true(x->flags & DSP_F_INCOMPLETE);
                assert_true(x->flags & DSP_F_EVENT);
            }
            if (x->kind == DSP_AGG_3S)
                assert_false(x->t_start_ns < from && x->t_end_ns > from);
        }
        assert_true(found);
        rec_free(&r);
        if (from_err != 0)
            soft_fail("fs %g: gap from_ns %lld ns off the first missing sample's time", g.fs,
                      (long long)from_err);
    }
    report("TVE after a gap (4 and 25.6 kS/s)", 100 * tve, 1, "%");
    assert_int_equal(soft_failures, 0);
}

/* Non-finite samples (NaN on one channel, an Inf on another) are a gap: from the first bad
 * sample to the next good one; also when they end a push. */
static void test_nonfinite_samples(void **state)
{
    (void)state;
    sg_t g;
    sg_default(&g, 4000, 50);
    g.f = 50.1;
    dsp_config_t cfg;
    cfg_for(&cfg, &g);
    rec_t r;
    rec_init(&r, 1);
    dsp_stream_t *s = open_stream(&cfg, &r);
    uint64_t n1 = 4000;
    feed(s, &g, 0, n1, 400);
    double buf[400 * 3];
    sg_fill(&g, n1, 400, buf);
    for (int i = 100; i < 137; i++)
        buf[i * 3 + 1] = NAN;
    buf[120 * 3 + 0] = INFINITY;
    assert_int_equal(dsp_stream_push(s, t_of(&g, n1), DSP_FMT_F64, buf, 400, 0), 0);
    assert_int_equal(r.ngap, 1);
    assert_int_equal(r.gap[0].from_ns, t_of(&g, n1 + 100));
    assert_int_equal(r.gap[0].to_ns, t_of(&g, n1 + 137));
    feed(s, &g, n1 + 400, 6000, 400);
    /* bad samples at the end of a push */
    uint64_t n2 = n1 + 6400;
    sg_fill(&g, n2, 400, buf);
    for (int i = 390; i < 400; i++)
        buf[i * 3 + 2] = NAN;
    assert_int_equal(dsp_stream_push(s, t_of(&g, n2), DSP_FMT_F64, buf, 400, 0), 0);
    feed(s, &g, n2 + 400, 6000, 400);
    dsp_stream_flush(s);
    dsp_stream_free(s);
    assert_int_equal(r.ngap, 2);
    assert_int_equal(r.gap[1].from_ns, t_of(&g, n2 + 390));
    assert_int_equal(r.gap[1].to_ns, t_of(&g, n2 + 400));
    double tve = 0;
    check_no_window_spans(&r, r.gap[0].from_ns, r.gap[0].to_ns);
    check_no_window_spans(&r, r.gap[1].from_ns, r.gap[1].to_ns);
    rec_t part = r; /* windows between the two gaps, then after the second */
    check_after(&g, &part, first_from(&r, r.gap[1].to_ns), 0, &tve);
    size_t cut = 0;
    while (cut < r.nw && r.w[cut].t_start_ns < r.gap[1].to_ns)
        cut++;
    part.nw = cut;
    check_after(&g, &part, first_from(&r, r.gap[0].to_ns), 0, &tve);
    report("TVE after non-finite samples", 100 * tve, 1, "%");
    rec_free(&r);
}

/* The terminal's clock jumps back 1 s: a gap with to < from, analysis restarts at the new
 * time (at f = f0 the UTC-referenced phasor is the same 1 s earlier). Also the TIME_UNSYNC
 * push flag reaches the windows. */
static void test_time_jump_back(void **state)
{
    (void)state;
    sg_t g;
    sg_default(&g, 4000, 50);
    dsp_config_t cfg;
    cfg_for(&cfg, &g);
    rec_t r;
    rec_init(&r, 1);
    dsp_stream_t *s = open_stream(&cfg, &r);
    uint64_t n1 = nsamp(&g, 2.0), n2 = nsamp(&g, 2.0);
    feed(s, &g, 0, n1, 400);
    double *buf = malloc(400 * 3 * sizeof *buf);
    assert_non_null(buf);
    for (uint64_t i = n1; i < n1 + n2; i += 400) {
        sg_fill(&g, i, 400, buf);
        uint32_t fl = i < n1 + n2 / 2 ? DSP_F_TIME_UNSYNC : 0;
        assert_int_equal(dsp_stream_push(s, t_of(&g, i) - NS, DSP_FMT_F64, buf, 400, fl), 0);
    }
    free(buf);
    dsp_stream_flush(s);
    dsp_stream_free(s);
    assert_int_equal(r.ngap, 1);
    assert_int_equal(r.gap[0].from_ns, t_of(&g, n1));
    assert_int_equal(r.gap[0].to_ns, t_of(&g, n1) - NS);
    int64_t to = r.gap[0].to_ns;
    size_t k = 1; /* windows before the jump: synchronised, before the gap's start */
    while (k < r.nw && r.w[k].t_start_ns > r.w[k - 1].t_start_ns)
        k++;
    assert_true(k >= 5 && k < r.nw);
    for (size_t j = 0; j < k; j++) {
        assert_false(r.w[j].flags & DSP_F_TIME_UNSYNC);
        assert_true(r.w[j].t_end_ns <= t_of(&g, n1));
    }
    for (size_t j = k; j < r.nw; j++) { /* after the jump: new time line */
        assert_true(r.w[j].t_start_ns >= to);
        int64_t unsync_end = t_of(&g, n1 + n2 / 2) - NS;
        if (r.w[j].t_end_ns <= unsync_end - NS / 10)
            assert_true(r.w[j].flags & DSP_F_TIME_UNSYNC);
        if (r.w[j].t_start_ns >= unsync_end + NS / 10)
            assert_false(r.w[j].flags & DSP_F_TIME_UNSYNC);
    }
    double tve = 0;
    check_after(&g, &r, k, NS, &tve);
    report("TVE after the clock jumped back", 100 * tve, 1, "%");
    rec_free(&r);
}

/* The same signal pushed in blocks of 1, 37, 1000 sample sets and in one piece: the same
 * windows, all accurate. */
static void test_block_sizes(void **state)
{
    (void)state;
    static const size_t blocks[] = {1, 37, 1000, 0};
    size_t nw0 = 0;
    int64_t t0[64];
    phasor_err_t e = {0};
    for (int b = 0; b < 4; b++) {
        sg_t g;
        sg_default(&g, 4000, 50);
        g.f = 50.37;
        g.rocof = 0.2;
        dsp_config_t cfg;
        cfg_for(&cfg, &g);
        rec_t r;
        rec_init(&r, 1);
        dsp_stream_t *s = open_stream(&cfg, &r);
        uint64_t n = nsamp(&g, 2.5);
        feed(s, &g, 0, n, blocks[b] ? blocks[b] : (size_t)n);
        dsp_stream_flush(s);
        dsp_stream_free(s);
        phasor_errors(&g, &r, 3, &e);
        assert_true(e.tve <= 0.01 && e.fe <= 0.005);
        assert_true(r.nw >= SKIP + 5 && r.nw < 64);
        if (b == 0) {
            nw0 = r.nw;
            for (size_t k = 0; k < r.nw; k++)
                t0[k] = r.w[k].t_start_ns;
        } else {
            assert_int_equal(r.nw, nw0);
            for (size_t k = SKIP; k < r.nw; k++)
                assert_true(llabs(r.w[k].t_start_ns - t0[k]) <= 1000);
        }
        rec_free(&r);
    }
    report("TVE, blocks of 1..whole", 100 * e.tve, 1, "%");
}

/* Configuration validation: GS_ECONFIG with a message, nothing created. */
static void test_config_validation(void **state)
{
    (void)state;
    dsp_config_t base;
    dsp_config_default(&base, 4000, 50, 3);
    dsp_sink_t sink = {0};
    char err[256];
    dsp_stream_t *s = NULL;
    assert_int_equal(dsp_stream_new(&base, &sink, &s, err, sizeof err), 0);
    assert_non_null(s);
    dsp_stream_free(s);
    dsp_stream_free(NULL);
    /* boundaries that are valid */
    static const double ok_rates[] = {1600, 25600};
    for (int i = 0; i < 2; i++) {
        dsp_config_t c;
        dsp_config_default(&c, ok_rates[i], 60, i ? DSP_MAX_CH : 1);
        s = NULL;
        assert_int_equal(dsp_stream_new(&c, NULL, &s, err, sizeof err), 0);
        dsp_stream_free(s);
    }
    for (int k = 0;; k++) {
        dsp_config_t c = base;
        switch (k) {
        case 0:
            c.sample_rate = 1599;
            break;
        case 1:
            c.sample_rate = 25601;
            break;
        case 2:
            c.sample_rate = NAN;
            break;
        case 3:
            c.sample_rate = 0;
            break;
        case 4:
            c.nominal_hz = 55;
            break;
        case 5:
            c.nominal_hz = 0;
            break;
        case 6:
            c.nchannels = 0;
            break;
        case 7:
            c.nchannels = DSP_MAX_CH + 1;
            break;
        case 8:
            c.nchannels = -1;
            break;
        case 9:
            c.ch[1].scale = 0;
            break;
        case 10:
            c.ch[2].scale = -1;
            break;
        case 11:
            c.ch[0].scale = NAN;
            break;
        case 12:
            c.ch[0].scale = INFINITY;
            break;
        case 13:
            c.ch[0].kind = 3;
            break;
        case 14:
            c.ch[1].phase = 5;
            break;
        case 15:
            c.declared_v = -1;
            break;
        case 16:
            c.declared_v = NAN;
            break;
        case 17:
            c.dip_pct = 5;
            break; /* below the interruption threshold */
        case 18:
            c.dip_pct = 99;
            break; /* + hysteresis reaches 100 */
        case 19:
            c.swell_pct = 101;
            break; /* - hysteresis reaches 100 */
        case 20:
            c.intr_pct = 0;
            break;
        case 21:
            c.intr_pct = 89;
            break; /* + hysteresis reaches the dip threshold */
        case 22:
            c.hyst_pct = 10;
            break;
        case 23:
            c.hyst_pct = -1;
            break;
        case 24:
            c.swell_pct = 1000;
            break;
        case 25:
            c.phasor_cycles = 0;
            break;
        case 26:
            c.phasor_cycles = 5;
            break;
        case 27:
            c.dip_pct = NAN;
            break;
        default:
            return;
        }
        s = (dsp_stream_t *)&base; /* must not be overwritten */
        err[0] = 0;
        int rc = dsp_stream_new(&c, &sink, &s, err, sizeof err);
        if (rc != GS_ECONFIG)
            fail_msg("case %d: returned %d, not GS_ECONFIG", k, rc);
        assert_true(s == (dsp_stream_t *)&base);
        assert_true(strlen(err) > 5);
        if (k < 2)
            printf("# case %d: \"%s\"\n", k, err);
    }
}

/* dc_removal: each window's DC (an ADC offset here) is reported but removed before RMS,
 * Urms(1/2) and power; without it RMS is the true RMS including DC. */
static void test_dc_removal(void **state)
{
    (void)state;
    for (int on = 0; on <= 1; on++) {
        sg_t g;
        sg_default(&g, 4000, 50);
        g.nch = 6;
        for (int c = 3; c < 6; c++)
            g.rms[c] = 5;
        g.dc[0] = 5.0;  /* volts */
        g.dc[3] = 0.25; /* amps */
        dsp_config_t cfg;
        cfg_for(&cfg, &g);
        cfg.dc_removal = on;
        rec_t r;
        rec_init(&r, 1);
        run_cfg(&g, &cfg, 3.0, &r);
        assert_true(r.nw > 5);
        for (size_t k = 3; k < r.nw; k++) {
            const dsp_window_t *w = &r.w[k];
            double ac = g.rms[0], with_dc = sqrt(ac * ac + 25.0);
            double want = on ? ac : with_dc;
            assert_true(fabs(w->ch[0].rms - want) <= 0.001 * UDIN);
            assert_true(fabs(w->ch[0].dc - 5.0) <= 0.001 * UDIN);
            assert_true(fabs(w->ch[0].hg[0] - 5.0) <= 0.001 * UDIN);
            /* Urms(1/2) of the offset channel follows the same definition */
            assert_true(fabs(w->ch[0].urms_half_max - want) <= 0.002 * UDIN);
            /* P of phase A: the DC product 5 V x 0.25 A counts only without removal */
            double p_ac = g.rms[0] * g.rms[3] * cos(g.phase[0] - g.phase[3]);
            double p_want = on ? p_ac : p_ac + 5.0 * 0.25;
            assert_true(fabs(w->pw[0].p - p_want) <= 0.002 * g.rms[0] * g.rms[3]);
        }
        rec_free(&r);
    }
}

/* Events with DC removal on (the server's and `gridsense analyze`'s default) and an ADC offset on
 * every voltage channel: short rectangular events (3..14 cycles, the range where a window's mean
 * is most often leftover of partial cycles rather than DC) at several positions in the basic
 * window and points on wave. Truth is analytic: the offset is not part of the AC residual, so the
 * residual must equal gain x Udin within 0.2 % of Udin (4-30 5.4.2/5.5.2, Class A), start and
 * duration within a cycle (Class A) of the standard's own definition for a rectangle (see
 * test_events), and the phases that stay at Udin must not show a one-cycle
 * minimum below Udin - 0.2 %. */
static void test_events_dc_removal(void **state)
{
    (void)state;
    static const double offs[3] = {0.6, -0.45, 0.3}; /* volts: ~1 % of Udin, a few LSB */
    static const double durs[] = {3, 4, 5, 7, 10, 14};
    static const double at[] = {0.031, 0.0707, 0.1171, 0.1634}; /* s into a 200-ms stretch */
    static const struct {
        const char *name;
        double gain[3];
        int kind;
        uint32_t chans;
    } kinds[] = {
        {"interruption to 0.044 V",
         {0.044 / UDIN, 0.044 / UDIN, 0.044 / UDIN},
         DSP_EV_INTERRUPTION,
         7},
        {"dip A to 0.044 V", {0.044 / UDIN, 1, 1}, DSP_EV_DIP, 1},
        {"dip 3 ph 40 %", {0.4, 0.4, 0.4}, DSP_EV_DIP, 7},
    };
    static const struct {
        double fs;
        int f0;
        double f;
        int ndur;
    } rates[] = {{4000, 50, 50.07, 6}, {12800, 60, 59.96, 6}};
    double res_e = 0, st_e = 0, du_e = 0, oth_e = 0;
    int runs = 0;
    soft_failures = 0;
    for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++)
        for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++)
            for (int di = 0; di < rates[ri].ndur; di++)
                for (size_t ai = 0; ai < sizeof at / sizeof at[0]; ai++) {
                    sg_t g;
                    sg_default(&g, rates[ri].fs, rates[ri].f0);
                    g.f = rates[ri].f;
                    double cyc = 1.0 / g.f;
                    for (int c = 0; c < 3; c++) {
                        g.dc[c] = offs[c];
                        g.step_gain[c] = kinds[ki].gain[c];
                    }
                    g.step_from = 3.0 + at[ai];
                    g.step_to = g.step_from + durs[di] * cyc;
                    dsp_config_t cfg;
                    cfg_for(&cfg, &g);
                    cfg.declared_v = UDIN;
                    cfg.dc_removal = 1;
                    rec_t r;
                    rec_init(&r, 1);
                    run_cfg(&g, &cfg, 4.5, &r);
                    runs++;
                    char name[96];
                    snprintf(name, sizeof name, "%g S/s %s, %g cycles at +%g s", g.fs,
                             kinds[ki].name, durs[di], at[ai]);
                    const dsp_event_t *e = find_event(&r, kinds[ki].kind, 0);
                    if (!e || count_events(&r, kinds[ki].kind) != 1) {
                        soft_fail("%s: %d events of kind %s", name,
                                  count_events(&r, kinds[ki].kind), dsp_event_name(kinds[ki].kind));
                        rec_free(&r);
                        continue;
                    }
                    double gmin =
                        fmin(kinds[ki].gain[0], fmin(kinds[ki].gain[1], kinds[ki].gain[2]));
                    double ex = gmin * UDIN;
                    double start = tau_of(&g, e->start_ns), dur = (double)e->duration_ns / 1e9;
                    double rerr = fabs(e->extreme - ex) / UDIN;
                    /* The 4-30 definition's offsets from the rectangle (see test_events):
                     * the one-cycle window crosses the threshold th when the fraction
                     * a = (1 - th^2) / (1 - r^2) of it lies in the event, and is back above
                     * th + hysteresis while b = (1 - (th + 2 %)^2) / (1 - r^2) still does. */
                    double th = kinds[ki].kind == DSP_EV_INTERRUPTION ? 0.10 : 0.90;
                    double r2 = gmin * gmin;
                    double a = (1 - th * th) / (1 - r2);
                    double b = (1 - (th + 0.02) * (th + 0.02)) / (1 - r2);
                    double ds = a - 0.5, dd = 1 - a - b; /* cycles */
                    double serr = fabs((start - g.step_from) / cyc - ds);
                    double derr = fabs((dur - (g.step_to - g.step_from)) / cyc - dd);
                    worst(&res_e, rerr);
                    worst(&st_e, serr);
                    worst(&du_e, derr);
                    if (!(rerr <= 0.002))
                        soft_fail("%s: residual %.4g V, truth %.4g V (%.3f %% of Udin off)", name,
                                  e->extreme, ex, 100 * rerr);
                    if (!(serr <= 1 && derr <= 1))
                        soft_fail("%s: start %+.3f cycles, duration %+.3f cycles", name,
                                  (start - g.step_from) / cyc,
                                  (dur - (g.step_to - g.step_from)) / cyc);
                    if (e->channels != kinds[ki].chans)
                        soft_fail("%s: channels 0x%x", name, e->channels);
                    /* phases that stay at Udin: their one-cycle RMS never moves */
                    for (size_t k = SKIP; k < r.nw; k++)
                        for (int c = 0; c < 3; c++) {
                            if (kinds[ki].gain[c] != 1)
                                continue;
                            double d = fmax(fabs(r.w[k].ch[c].urms_half_min - UDIN),
                                            fabs(r.w[k].ch[c].urms_half_max - UDIN)) /
                                       UDIN;
                            worst(&oth_e, d);
                            if (!(d <= 0.002))
                                soft_fail("%s: window %zu phase %d Urms(1/2) %.4f..%.4f V", name, k,
                                          c, r.w[k].ch[c].urms_half_min,
                                          r.w[k].ch[c].urms_half_max);
                        }
                    rec_free(&r);
                }
    printf("# events with DC removal and ADC offsets: %d runs\n", runs);
    report("event residual, DC removal + offset, of Udin", 100 * res_e, 0.2, "%");
    report("event start vs the 4-30 definition, DC removal + offset, cyc", st_e, 1, "cyc");
    report("event duration vs the 4-30 definition, DC removal + offset, cyc", du_e, 1, "cyc");
    report("Urms(1/2) of the phases not in the event, of Udin", 100 * oth_e, 0.2, "%");
    assert_int_equal(soft_failures, 0);
}

/* The offset removed follows a genuine, lasting change of the offset (a recalibrated or
 * drifting ADC) with the tracker's 5-s time constant, and reports what it removed. */
static void test_dc_tracker_follows(void **state)
{
    (void)state;
    sg_t g;
    sg_default(&g, 4000, 50);
    g.dc[0] = 0.8;
    dsp_config_t cfg;
    cfg_for(&cfg, &g);
    cfg.declared_v = UDIN;
    cfg.dc_removal = 1;
    rec_t r;
    rec_init(&r, 1);
    dsp_stream_t *s = open_stream(&cfg, &r);
    feed(s, &g, 0, nsamp(&g, 5), 400);
    size_t k5 = r.nw;
    g.dc[0] = -0.4; /* the offset jumps at 5 s */
    feed(s, &g, nsamp(&g, 5), nsamp(&g, 30), 400);
    dsp_stream_flush(s);
    dsp_stream_free(s);
    assert_true(k5 > 10 && r.nw > k5 + 100);
    /* settled before the jump; 25 s (5 time constants) after it, within 1 % of the step */
    assert_true(fabs(r.w[k5 - 1].ch[0].dc_removed - 0.8) <= 1e-3);
    const dsp_window_t *last = &r.w[r.nw - 2];
    printf("# offset tracker: %.4f V removed 25 s after a 0.8 -> -0.4 V step\n",
           last->ch[0].dc_removed);
    assert_true(fabs(last->ch[0].dc_removed + 0.4) <= 0.012);
    assert_true(fabs(last->ch[0].rms - UDIN) <= 1e-4 * UDIN);
    assert_true(fabs(last->ch[0].dc + 0.4) <= 1e-3); /* `dc` is the window's own mean */
    for (size_t k = 0; k < r.nw; k++)
        assert_true(r.w[k].ch[1].dc_removed == r.w[k].ch[1].dc_removed); /* not NaN */
    rec_free(&r);
}

/* A long interruption (an outage of 12 s, frequency held, every window flagged) with an ADC
 * offset: the tracker stays frozen at the offset throughout, the residual is the AC residual,
 * and the first windows after the recovery read the right RMS at once. */
static void test_dc_long_interruption(void **state)
{
    (void)state;
    sg_t g;
    sg_default(&g, 4000, 50);
    for (int c = 0; c < 3; c++) {
        g.dc[c] = 0.5 - 0.3 * c;
        g.step_gain[c] = 0.044 / UDIN;
    }
    g.step_from = 3.0537;
    g.step_to = 15.0537;
    dsp_config_t cfg;
    cfg_for(&cfg, &g);
    cfg.declared_v = UDIN;
    cfg.dc_removal = 1;
    rec_t r;
    rec_init(&r, 1);
    run_cfg(&g, &cfg, 18.0, &r);
    const dsp_event_t *e = find_event(&r, DSP_EV_INTERRUPTION, 0);
    assert_non_null(e);
    assert_int_equal(count_events(&r, DSP_EV_INTERRUPTION), 1);
    assert_true(fabs(e->extreme - 0.044) <= 0.002 * UDIN);
    int after = 0;
    for (size_t k = SKIP; k < r.nw; k++) {
        const dsp_window_t *w = &r.w[k];
        for (int c = 0; c < 3; c++)
            if (fabs(w->ch[c].dc_removed - g.dc[c]) > 1e-3)
                fail_msg("window %zu ch %d: removed %.5f V, offset %.5f V", k, c,
                         w->ch[c].dc_removed, g.dc[c]);
        if (tau_of(&g, w->t_start_ns) > g.step_to + 0.02) {
            after++;
            for (int c = 0; c < 3; c++)
                assert_true(fabs(w->ch[c].rms - UDIN) <= 1e-4 * UDIN);
        }
    }
    assert_true(after >= 10);
    rec_free(&r);
}

/* A genuine step of a voltage channel's offset large enough that, not yet removed, it lifts the
 * RMS past the swell threshold (30 V on 57.7 V: +13 %). The windows that would let the tracker
 * follow it are all flagged by the swell the unremoved offset itself causes; the tracker must
 * still follow the step, so that the RMS comes back and the swell ends, instead of a swell that
 * lasts as long as the offset. */
static void test_dc_step_swell(void **state)
{
    (void)state;
    sg_t g;
    sg_default(&g, 4000, 50);
    dsp_config_t cfg;
    cfg_for(&cfg, &g);
    cfg.declared_v = UDIN;
    cfg.dc_removal = 1;
    rec_t r;
    rec_init(&r, 1);
    dsp_stream_t *s = open_stream(&cfg, &r);
    feed(s, &g, 0, nsamp(&g, 5), 400);
    g.dc[0] = 30; /* the offset of phase A jumps at 5 s */
    feed(s, &g, nsamp(&g, 5), nsamp(&g, 55), 400);
    int nev_before_flush = r.nev;
    dsp_stream_flush(s);
    dsp_stream_free(s);
    const dsp_window_t *last = &r.w[r.nw - 2];
    printf("# DC step 0 -> 30 V: %.3f V removed, RMS %.3f V after 55 s; %d events before the "
           "end\n",
           last->ch[0].dc_removed, last->ch[0].rms, nev_before_flush);
    for (int i = 0; i < r.nev; i++)
        printf("#   %s at %.2f s for %.2f s, %.1f %%\n", dsp_event_name(r.ev[i].kind),
               tau_of(&g, r.ev[i].start_ns), r.ev[i].duration_ns / 1e9, r.ev[i].extreme_pct);
    assert_true(fabs(last->ch[0].dc_removed - 30) <= 0.3);
    assert_true(fabs(last->ch[0].rms - UDIN) <= 0.01 * UDIN);
    assert_true(!(last->flags & DSP_F_EVENT));
    /* a swell while the tracker catches up is allowed; it ends, and nothing is open at the end */
    for (int i = 0; i < r.nev; i++)
        assert_true(!(r.ev[i].flags & DSP_EVF_GAP));
    rec_free(&r);
}

static void count_window(void *ud, const dsp_window_t *w)
{
    assert_true(isfinite(w->freq));
    ((int *)ud)[0]++;
}

static void count_gap(void *ud, const dsp_gap_t *g)
{
    (void)g;
    ((int *)ud)[1]++;
}

/* Hostile input from a terminal must not crash, hang or poison the stream: a channel scale
 * that makes values overflow (treated as missing), times outside 1970..2199 (GS_ERANGE, nothing
 * consumed), and one block stamped a year ahead between normal ones (the 10-s frequency goes
 * on afterwards). */
static void test_hostile_input(void **state)
{
    (void)state;
    dsp_global_init(NULL);
    /* 1: scale 9.8e33, a square wave of int16 counts */
    dsp_config_t cfg;
    dsp_config_default(&cfg, 4000, 50, 1);
    cfg.ch[0].kind = DSP_KIND_VOLTAGE;
    cfg.ch[0].phase = DSP_PHASE_A;
    cfg.ch[0].scale = 9.8e33;
    int counts[2] = {0, 0}; /* windows, gaps */
    dsp_sink_t cs = {.window = count_window, .gap = count_gap, .ud = counts};
    dsp_stream_t *s;
    char err[128];
    assert_int_equal(dsp_stream_new(&cfg, &cs, &s, err, sizeof err), 0);
    int16_t sq[400];
    int64_t t0 = 1767225600LL * NS;
    for (int b = 0; b < 50; b++) {
        for (int i = 0; i < 400; i++)
            sq[i] = (int16_t)(((b * 400 + i) % 73) < 21 ? 32767 : 0);
        assert_int_equal(dsp_stream_push(s, t0 + (int64_t)b * 100000000, DSP_FMT_I16, sq, 400, 0),
                         0);
    }
    dsp_stream_flush(s);
    assert_int_equal(counts[0], 0); /* every set with a huge value is missing: no window */
    assert_true(counts[1] > 100);   /* each run of them is a gap */
    dsp_stream_free(s);

    /* 2: times out of range */
    rec_t r;
    dsp_config_default(&cfg, 4000, 50, 1);
    rec_init(&r, 0);
    s = open_stream(&cfg, &r);
    double v[400] = {0};
    assert_int_equal(dsp_stream_push(s, 9223372036000000000LL, DSP_FMT_F64, v, 400, 0), GS_ERANGE);
    assert_int_equal(dsp_stream_push(s, -1, DSP_FMT_F64, v, 400, 0), GS_ERANGE);
    assert_int_equal(dsp_stream_push(s, DSP_MAX_TIME_NS, DSP_FMT_F64, v, 400, 0), GS_ERANGE);
    dsp_stream_flush(s);
    assert_int_equal(r.nws + r.nf10 + r.nagg, 0);
    dsp_stream_free(s);
    rec_free(&r);

    /* 3: 25 s, one block a year ahead, then the next 25 s of the original timeline */
    sg_t g;
    sg_default(&g, 4000, 50);
    dsp_config_default(&cfg, 4000, 50, 3);
    cfg_for(&cfg, &g);
    rec_init(&r, 0);
    s = open_stream(&cfg, &r);
    feed(s, &g, 0, nsamp(&g, 25), 400);
    double blk[400 * 3];
    sg_fill(&g, 0, 400, blk);
    assert_int_equal(dsp_stream_push(s, g.t_base_ns + 365LL * 86400 * NS, DSP_FMT_F64, blk, 400, 0),
                     0);
    int before = r.nf10;
    feed(s, &g, nsamp(&g, 25), nsamp(&g, 25), 400);
    dsp_stream_flush(s);
    int after_complete = 0;
    for (int i = before; i < r.nf10; i++)
        if (!(r.f10[i].flags & DSP_F_INCOMPLETE) && r.f10[i].t_start_ns < g.t_base_ns + 60 * NS) {
            after_complete++;
            assert_true(fabs(r.f10[i].freq - g.f) < 0.01);
        }
    assert_true(after_complete >= 1);
    dsp_stream_free(s);
    rec_free(&r);
}

int main(void)
{
    dsp_global_init(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phasor_steady),
        cmocka_unit_test(test_phasor_harmonic),
        cmocka_unit_test(test_phasor_ramp),
        cmocka_unit_test(test_phasor_modulation),
        cmocka_unit_test(test_rms),
        cmocka_unit_test(test_harmonic_magnitude),
        cmocka_unit_test(test_harmonic_reach_4k),
        cmocka_unit_test(test_harmonic_reach_decimated),
        cmocka_unit_test(test_harmonic_angles),
        cmocka_unit_test(test_resample_paths_agree),
        cmocka_unit_test(test_thd_dc_interharmonic),
        cmocka_unit_test(test_decimation_alias),
        cmocka_unit_test(test_sample_formats),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_symmetrical_and_line_voltages),
        cmocka_unit_test(test_power),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_aggregate_3s),
        cmocka_unit_test(test_resync_10min),
        cmocka_unit_test(test_freq10),
        cmocka_unit_test(test_aggregate_10min),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_nonfinite_samples),
        cmocka_unit_test(test_time_jump_back),
        cmocka_unit_test(test_block_sizes),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_dc_removal),
        cmocka_unit_test(test_events_dc_removal),
        cmocka_unit_test(test_dc_tracker_follows),
        cmocka_unit_test(test_dc_long_interruption),
        cmocka_unit_test(test_dc_step_swell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
