/* C37.118.1 test signals with analytic truth for the reporting-rate synchrophasor estimator
 * (src/dsp/pmu.c), shared by tests/unit/test_pmu.c and bench/pmu_bench.c (header only).
 *
 * Three phase voltages (channels 0..2, 57.735 V RMS, A 0, B -120, C +120 degrees) and three
 * currents (3..5, 5 A RMS lagging 30 degrees). tau = time since t_base (a whole UTC second),
 *   x_c = sqrt2 A_c g(tau) cos(theta(tau) + phi_c) + harmonic + out-of-band tone
 *   theta = 2 pi (f tau + rocof tau^2 / 2) + ka cos(2 pi fm tau) + (tau >= step_t ? step_ph : 0)
 *   g = (1 + kx cos(2 pi fm tau)) (tau >= step_t ? step_mag : 1)
 * Truth per C37.118.1 4.2: magnitude A_c g, angle theta + phi_c - 2 pi f0 tau, frequency
 * theta' / 2 pi, ROCOF theta'' / 2 pi. */
#ifndef GS_TESTS_PMU_SIG_H
#define GS_TESTS_PMU_SIG_H

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/dsp.h"

#define PS_NS 1000000000LL

typedef struct {
    double fs;
    int f0;
    int64_t t_base_ns;
    double f, rocof;
    double kx, ka, fm;
    double step_t, step_mag, step_ph; /* step at tau = step_t (step_mag 1, step_ph 0: none) */
    int horder;
    double hrel;
    double tone_f, tone_rel;   /* interfering tone (Hz, relative amplitude), 0 = none */
    double ramp_from, ramp_to; /* rocof applies for ramp_from <= tau < ramp_to (else whole) */
} ps_t;

static const double PS_RMS[6] = {57.735, 57.735, 57.735, 5, 5, 5};
static const double PS_PHI[6] = {0,
                                 -2.0943951023931957,
                                 2.0943951023931957,
                                 -0.5235987755982988,
                                 -2.6179938779938731,
                                 1.5707963267948966};

static void ps_default(ps_t *g, double fs, int f0)
{
    memset(g, 0, sizeof *g);
    g->fs = fs;
    g->f0 = f0;
    g->t_base_ns = 1764892800LL * PS_NS; /* 2025-12-05 00:00:00 UTC */
    g->f = f0;
    g->step_t = 1e30;
    g->step_mag = 1;
    g->ramp_from = -1e30;
    g->ramp_to = 1e30;
}

static void ps_config(const ps_t *g, dsp_config_t *cfg)
{
    dsp_config_default(cfg, g->fs, g->f0, 6);
    for (int c = 0; c < 6; c++) {
        cfg->ch[c].kind = c < 3 ? DSP_KIND_VOLTAGE : DSP_KIND_CURRENT;
        cfg->ch[c].phase = (uint8_t)(DSP_PHASE_A + c % 3);
        cfg->ch[c].scale = 1;
    }
}

/* Phase theta(tau) with the ramp limited to [ramp_from, ramp_to) (frequency continuous). */
static double ps_theta(const ps_t *g, double tau, double *freq, double *rocof)
{
    double a = tau < g->ramp_from ? g->ramp_from : tau > g->ramp_to ? g->ramp_to : tau;
    double in = a - (g->ramp_from > -1e29 ? g->ramp_from : 0);
    /* integral of f + rocof (s - base) over the ramp, then constant frequency after it */
    double th = 2 * M_PI * (g->f * tau + g->rocof * (0.5 * in * in + (tau - a) * in));
    double fr = g->f + g->rocof * in;
    double rc = (tau >= g->ramp_from && tau < g->ramp_to) ? g->rocof : 0;
    if (g->ka != 0) {
        double w = 2 * M_PI * g->fm;
        th += g->ka * cos(w * tau);
        fr -= g->ka * g->fm * sin(w * tau);
        rc -= g->ka * g->fm * w * cos(w * tau);
    }
    if (tau >= g->step_t)
        th += g->step_ph;
    if (freq)
        *freq = fr;
    if (rocof)
        *rocof = rc;
    return th;
}

static double ps_gain(const ps_t *g, double tau)
{
    double a = 1;
    if (g->kx != 0)
        a *= 1 + g->kx * cos(2 * M_PI * g->fm * tau);
    if (tau >= g->step_t)
        a *= g->step_mag;
    return a;
}

/* Sample set k (tau = k / fs) into out[6]. */
static void ps_sample(const ps_t *g, int64_t k, double *out)
{
    double tau = (double)k / g->fs;
    double th = ps_theta(g, tau, NULL, NULL), a = ps_gain(g, tau);
    for (int c = 0; c < 6; c++) {
        double v = M_SQRT2 * PS_RMS[c] * a * cos(th + PS_PHI[c]);
        if (g->horder > 1)
            v += M_SQRT2 * PS_RMS[c] * g->hrel * cos(g->horder * (th + PS_PHI[c]));
        if (g->tone_f > 0)
            v += M_SQRT2 * PS_RMS[c] * g->tone_rel *
                 cos(2 * M_PI * g->tone_f * tau + (c % 3) * -2.0943951023931957);
        out[c] = v;
    }
}

/* Truth of channel c at tau (c = -1: positive sequence = phase A voltage, balanced). */
static void ps_truth(const ps_t *g, int c, double tau, double complex *x, double *f, double *r)
{
    if (c < 0)
        c = 0;
    double th = ps_theta(g, tau, f, r);
    double ang = th + PS_PHI[c] - 2 * M_PI * g->f0 * tau;
    *x = PS_RMS[c] * ps_gain(g, tau) * cexp(I * ang);
}

static double ps_tve(const dsp_pmu_phasor_t *p, double complex truth)
{
    return cabs(p->mag * cexp(I * p->ang) - truth) / cabs(truth);
}

/* ---- a run: push the signal in blocks, judge every report ----------------------------------- */

typedef struct {
    int n;                        /* reports judged */
    int total;                    /* reports made */
    int off_grid;                 /* reports not at sec + index / rate */
    int flagged;                  /* reports with flags other than RESTART on the first */
    double tve, fe, rfe;          /* worst over judged reports (all channels and V1) */
    double tve_v1, fe_v1, rfe_v1; /* positive sequence only */
    double first_tau;             /* time of the first report (tau) */
} ps_stats_t;

typedef void (*ps_report_cb)(void *ud, const ps_t *g, const dsp_pmu_report_t *r, double tau);

typedef struct {
    const ps_t *g;
    ps_stats_t *st;
    double skip_from, skip_to; /* reports with tau in [from, to] are not judged */
    ps_report_cb cb;
    void *cb_ud;
} ps_ctx_t;

static void ps_on_report(void *ud, const dsp_pmu_report_t *r)
{
    ps_ctx_t *c = ud;
    const ps_t *g = c->g;
    double tau = (double)(r->t_ns - g->t_base_ns) / 1e9;
    ps_stats_t *st = c->st;
    if (st->total == 0)
        st->first_tau = tau;
    st->total++;
    int64_t expect = r->sec * PS_NS + ((int64_t)r->index * PS_NS + r->rate / 2) / r->rate;
    if (expect != r->t_ns || r->index < 0 || r->index >= r->rate)
        st->off_grid++;
    if (r->flags & ~(uint32_t)DSP_PMU_F_RESTART)
        st->flagged++;
    if (c->cb)
        c->cb(c->cb_ud, g, r, tau);
    if (tau >= c->skip_from && tau <= c->skip_to)
        return;
    /* exact report time: sec + index / rate (t_ns may be rounded) */
    tau = (double)(r->sec * PS_NS - g->t_base_ns) / 1e9 + (double)r->index / r->rate;
    st->n++;
    for (int i = 0; i <= r->nph; i++) {
        const dsp_pmu_phasor_t *p = i < r->nph ? &r->ph[i] : &r->v1;
        if (i == r->nph && !r->has_v1)
            break;
        double complex x;
        double f, rc;
        ps_truth(g, i < r->nph ? p->ch : -1, tau, &x, &f, &rc);
        double tve = ps_tve(p, x), fe = fabs(p->freq - f), rfe = fabs(p->rocof - rc);
        if (tve > st->tve)
            st->tve = tve;
        if (fe > st->fe)
            st->fe = fe;
        if (rfe > st->rfe)
            st->rfe = rfe;
        if (i == r->nph) {
            double fs = fabs(r->freq - f), rs = fabs(r->rocof - rc);
            if (tve > st->tve_v1)
                st->tve_v1 = tve;
            if (fs > st->fe_v1)
                st->fe_v1 = fs;
            if (rs > st->rfe_v1)
                st->rfe_v1 = rs;
        }
    }
}

/* Runs `dur` seconds of g from tau = tau0 through a new estimator at `rate`, pushing `block`
 * sample sets at a time (block sizes cycle through block, block + 7, block - 3 when vary).
 * Returns 0 or the estimator's error. */
static int ps_run(const ps_t *g, int rate, double tau0, double dur, size_t block, int vary,
                  double skip_from, double skip_to, ps_stats_t *st, ps_report_cb cb, void *cb_ud)
{
    memset(st, 0, sizeof *st);
    dsp_config_t cfg;
    ps_config(g, &cfg);
    ps_ctx_t c = {g, st, skip_from, skip_to, cb, cb_ud};
    dsp_pmu_sink_t sink = {ps_on_report, &c};
    dsp_pmu_t *p;
    char err[160];
    int rc = dsp_pmu_new(&cfg, rate, &sink, &p, err, sizeof err);
    if (rc < 0)
        return rc;
    int64_t k0 = (int64_t)llround(tau0 * g->fs);
    int64_t kend = k0 + (int64_t)llround(dur * g->fs);
    size_t cap = block + 16;
    double *buf = malloc(cap * 6 * sizeof *buf);
    int turn = 0;
    for (int64_t k = k0; k < kend;) {
        size_t n = block;
        if (vary)
            n = turn % 3 == 0 ? block : turn % 3 == 1 ? block + 7 : block - 3;
        turn++;
        if ((int64_t)n > kend - k)
            n = (size_t)(kend - k);
        for (size_t i = 0; i < n; i++)
            ps_sample(g, k + (int64_t)i, buf + i * 6);
        int64_t t0 = g->t_base_ns + (int64_t)llround((double)k * 1e9 / g->fs);
        rc = dsp_pmu_push(p, t0, DSP_FMT_F64, buf, n, 0);
        if (rc < 0)
            break;
        k += (int64_t)n;
    }
    free(buf);
    dsp_pmu_free(p);
    return rc;
}

/* ---- steps (C37.118.1 5.5.7): equivalent-time sampling over NOFF step positions ---------- */

#define PS_NOFF 20

typedef struct {
    double resp_tve;  /* s between the first and the last report with TVE > 1 % */
    double resp_fe;   /* same for FE > 0.005 Hz (system frequency) */
    double resp_rfe;  /* same for RFE > 0.1 Hz/s (M class steady-state limits) */
    double delay;     /* s from the step to the 50 % crossing of the reported value */
    double overshoot; /* largest excursion beyond the final value, fraction of the step */
    int n;
} ps_step_t;

typedef struct {
    double dt, tve, fe, rfe, val;
} ps_pt_t;

typedef struct {
    ps_pt_t *pt;
    int n, cap;
    int phase; /* judge the angle (phase step) rather than the magnitude */
} ps_stepacc_t;

static void ps_step_cb(void *ud, const ps_t *g, const dsp_pmu_report_t *r, double tau)
{
    ps_stepacc_t *a = ud;
    (void)tau;
    if (!r->has_v1)
        return;
    double t = (double)(r->sec * PS_NS - g->t_base_ns) / 1e9 + (double)r->index / r->rate;
    double complex x;
    double f, rc;
    ps_truth(g, -1, t, &x, &f, &rc);
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 1024;
        a->pt = realloc(a->pt, (size_t)a->cap * sizeof *a->pt);
    }
    ps_pt_t *p = &a->pt[a->n++];
    p->dt = t - g->step_t;
    p->tve = ps_tve(&r->v1, x);
    p->fe = fabs(r->freq - f);
    p->rfe = fabs(r->rocof - rc);
    /* angle relative to the pre-step truth (nominal frequency: constant) */
    p->val = a->phase ? carg(r->v1.mag * cexp(I * r->v1.ang) / cexp(I * PS_PHI[0])) : r->v1.mag;
}

static int ps_cmp_dt(const void *a, const void *b)
{
    double x = ((const ps_pt_t *)a)->dt, y = ((const ps_pt_t *)b)->dt;
    return x < y ? -1 : x > y;
}

/* A magnitude step (mag != 1) or phase step (ph != 0, rad) at nominal frequency. */
static int ps_step(int f0, double fs, int rate, double mag, double ph, ps_step_t *out)
{
    ps_stepacc_t acc = {0};
    memset(out, 0, sizeof *out);
    acc.phase = ph != 0;
    for (int j = 0; j < PS_NOFF; j++) {
        ps_t g;
        ps_default(&g, fs, f0);
        g.step_t = 2.0 + (double)j / (rate * PS_NOFF);
        g.step_mag = mag;
        g.step_ph = ph;
        ps_stats_t st;
        int rc = ps_run(&g, rate, 0, 4.0, 512, 0, -1e9, 1e9, &st, ps_step_cb, &acc);
        if (rc < 0) {
            free(acc.pt);
            return rc;
        }
    }
    qsort(acc.pt, (size_t)acc.n, sizeof *acc.pt, ps_cmp_dt);
    memset(out, 0, sizeof *out);
    double lo[3] = {1e9, 1e9, 1e9}, hi[3] = {-1e9, -1e9, -1e9};
    double v0 = ph != 0 ? 0 : PS_RMS[0], v1 = ph != 0 ? ph : PS_RMS[0] * mag;
    double mid = (v0 + v1) / 2, step = v1 - v0;
    out->delay = 1e9;
    for (int i = 0; i < acc.n; i++) {
        ps_pt_t *p = &acc.pt[i];
        double m[3] = {p->tve - 0.01, p->fe - 0.005, p->rfe - 0.1};
        for (int k = 0; k < 3; k++)
            if (m[k] > 0) {
                lo[k] = fmin(lo[k], p->dt);
                hi[k] = fmax(hi[k], p->dt);
            }
        double ex = (p->val - v1) / step; /* > 0: beyond the final value */
        if (p->dt > 0 && ex > out->overshoot)
            out->overshoot = ex;
        if (i > 0 && out->delay > 1e8) {
            ps_pt_t *q = &acc.pt[i - 1];
            if ((q->val - mid) * (p->val - mid) <= 0 && p->val != q->val)
                out->delay = q->dt + (mid - q->val) / (p->val - q->val) * (p->dt - q->dt);
        }
    }
    out->resp_tve = hi[0] > lo[0] ? hi[0] - lo[0] : 0;
    out->resp_fe = hi[1] > lo[1] ? hi[1] - lo[1] : 0;
    out->resp_rfe = hi[2] > lo[2] ? hi[2] - lo[2] : 0;
    out->n = acc.n;
    free(acc.pt);
    return 0;
}

#endif
