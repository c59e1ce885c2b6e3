/* Reporting-rate synchrophasors (IEEE C37.118.1-2011 + 1a-2014, M class): quadrature
 * demodulation at nominal frequency, a short first low-pass (three cascaded boxcars) and
 * decimation to about 500 samples/s, a Hamming-windowed sinc low-pass evaluated on the
 * decimated stream at each report time on the UTC grid, off-nominal compensation of both
 * filters, frequency and ROCOF from the phase derivative.
 * See dsp.h ("Reporting-rate synchrophasors") and docs/dsp.md for the design. Independent of
 * dsp_stream_t: the caller pushes the same sample blocks into both. */
#include "dsp/internal.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS 1000000000LL
/* Largest ROCOF taken as a ramp in the compensation (Hz/s): beyond it (a phase step seen by
 * the differences) compensating a chirp would only add error. */
#define MAX_ROCOF 20.0
/* Decimated rate aimed at (Hz): the demodulated signal of interest lies within ~25 Hz of 0,
 * the image at -2 f0 and out-of-band interference (5.5.5: up to 2 f0, demodulated to -3 f0)
 * within +-180 Hz, all inside the decimated Nyquist band; what lies above (harmonics) folds
 * onto the first stage's nulls (see dsp.md). */
#define DEC_RATE 500.0
/* Frequency step of the finite differences that give the first stage's response slope and
 * curvature around the measured deviation (Hz). */
#define G_STEP 2.0
/* A push that continues the segment moves the time mapping to its own t0 when the two differ
 * by more than this (ns): the mapping follows a drifting sample clock (as dsp_stream_push
 * re-anchors) within 1 us (0.02 deg at 60 Hz, 0.04 % TVE), while timestamps that agree with
 * the sample count to within their ns rounding leave it alone, so that the same samples give
 * the same reports whatever the block boundaries. */
#define REANCHOR_NS 1000

/* Filter per reporting rate (C37.118.1-2011 Annex C: Hamming-windowed sinc; the standard's
 * Table C.1 values were not available here, so the parameters were designed from the clauses'
 * requirements, see docs/dsp.md): ffr = cut-off (-6 dB) in Hz, span = window length in s.
 * Chosen so that the response is >= 0.90 at the edge of the M-class range min(Fs/5, 5 Hz)
 * (modulation and off-nominal passband, 5.5.6/5.5.8), <= 0.05 at Fs/2 (the out-of-band band of
 * 5.5.5, 10 % interference then stays below 0.5 % TVE), and half the span plus the frequency
 * step 1/Fs stays inside the M-class latency of 5/Fs (5.6.1, Table 12). */
typedef struct {
    int rate;
    double ffr, span;
} design_t;

static const design_t DESIGNS[] = {
    {10, 3.50, 0.79}, {12, 4.15, 0.65}, {15, 5.25, 0.52}, {20, 6.75, 0.38},
    {25, 8.50, 0.30}, {30, 9.25, 0.25}, {50, 13.0, 0.12}, {60, 15.0, 0.10},
};

typedef struct {
    int64_t k0;     /* first decimated sample of the span */
    int64_t kfirst; /* first input sample it depends on */
    int n;          /* decimated samples */
    double u0;      /* centre time of decimated sample k0 relative to the evaluation time (s) */
    double *w;
} span_t;

struct dsp_pmu {
    dsp_config_t cfg;
    dsp_pmu_sink_t sink;
    int rate;
    int f0;
    double fs, ts;  /* input rate, sample period (s) */
    double ffr, hw; /* cut-off (Hz), half span (s) */
    double h;       /* frequency difference step: 1/Fs, a whole number of nominal cycles (s) */

    int nsig;              /* channels reported (kind voltage or current) */
    int sigch[DSP_MAX_CH]; /* their channel numbers */
    int vabc[3], iabc[3];  /* index into sig[] per phase, -1 if absent */
    int refsig;            /* frequency reference when no three-phase voltage: index or -1 */

    /* First stage: g = three cascaded boxcars of M samples (L = 3M - 2 taps, sum 1), applied
     * at every M-th sample of the segment: decimated sample m = sum_j g_j d_{mM+r-j}, whose
     * zero-phase centre is at sample mM + r - c (c = (L-1)/2, a half sample when M is even).
     * r (0..M-1, per segment) puts the decimated samples on sample numbers counted from the
     * UTC epoch that are multiples of M (integer fs), so two terminals sampling in step
     * decimate at the same instants whenever they started. L < 3M: each input sample enters
     * at most three decimated samples, so the stage keeps three partial sums per signal
     * instead of a history of L samples (memory independent of the input rate). */
    int M, L, r;
    double c;
    double *g;            /* [L] */
    double sig2;          /* sum_j g_j v_j^2, v_j = (c - j) ts: the chirp term (s^2) */
    double complex *acc;  /* [3][nsig]: partial sums of decimated samples m (row m mod 3) */
    int fq;               /* (k - r) mod M for the next sample k (no division per sample) */
    int fslot;            /* row of fm: fm mod 3 */
    int64_t fm;           /* the next decimated sample at or after k: k <= fm M + r */
    double complex cfix;  /* e^{+j 4 pi f0 c ts}: o2 at the centre from o2 at sample mM */
    float *ring;          /* [cap][nsig] complex (2 floats): decimated demodulated samples */
    double complex *osc2; /* [cap] e^{-j 2 w0 tau_m} per decimated sample (the image) */
    int64_t cap;          /* decimated samples held */
    double tsd;           /* decimated sample period M ts (s) */

    /* segment: sample k (from 0) was taken at map_t + (k - map_k) ts. The mapping starts at
     * the segment's first sample and moves to a later push's t0 when the terminal's clock has
     * drifted more than REANCHOR_NS from it. Internal times ("segment time") are k ts. */
    int in_seg;
    int64_t map_t, map_k;
    int64_t last_t, last_k; /* the last push's t0 and first sample: the gap rule's anchor */
    int osc_reset;          /* recompute the oscillator at the next sample (mapping moved) */
    int64_t k_next;         /* samples in this segment */
    int64_t k_unsync;       /* last sample pushed with DSP_F_TIME_UNSYNC, -1 none */
    int64_t rep_sec;        /* next report: UTC second and index within it */
    int rep_idx;
    int64_t k_due;          /* sample whose arrival completes the next report's span */
    int first_report;       /* the next report is the first of the segment */
    double delta;           /* last frequency deviation (Hz) */
    double rocof;           /* last ROCOF used in the compensation (Hz/s) */
    double complex osc_cur; /* e^{-j w0 t} of sample k_next - 1 */
    double ref_peak;        /* decaying peak of the reference magnitude */
    uint64_t restarts;

    double *w; /* [4][cap] kernel weights per evaluation time */
    /* The spans and filter outputs at t - h, t, t + h of the last report: the next report's
     * t - h and t are this one's t and t + h (h = 1/rate), so only t + h is new. */
    span_t csp[3];
    double complex cy[3][DSP_MAX_CH];
    int cached;
};

/* Zero-phase response of the first stage at f Hz: (sin(pi f M ts) / (M sin(pi f ts)))^3. */
static double g_resp(const dsp_pmu_t *p, double f)
{
    double a = sin(M_PI * f * p->ts);
    if (fabs(a) < 1e-12)
        return 1; /* f a multiple of fs: not reached for |f| < fs / 2 */
    double d = sin(M_PI * f * p->M * p->ts) / (p->M * a);
    return d * d * d;
}

/* ---- filter ------------------------------------------------------------------------------------
 */

static const design_t *find_design(int rate)
{
    for (size_t i = 0; i < sizeof DESIGNS / sizeof DESIGNS[0]; i++)
        if (DESIGNS[i].rate == rate)
            return &DESIGNS[i];
    return NULL;
}

int dsp_pmu_rate_valid(int nominal_hz, int rate)
{
    /* C37.118.1-2011 5.3, Table 1: 10, 25, 50 at 50 Hz; 10, 12, 15, 20, 30, 60 at 60 Hz. */
    static const int r50[] = {10, 25, 50}, r60[] = {10, 12, 15, 20, 30, 60};
    const int *r = nominal_hz == 50 ? r50 : r60;
    int n = nominal_hz == 50 ? 3 : 6;
    if (nominal_hz != 50 && nominal_hz != 60)
        return 0;
    for (int i = 0; i < n; i++)
        if (r[i] == rate)
            return 1;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------------
 */

int dsp_pmu_new(const dsp_config_t *cfg, int rate, const dsp_pmu_sink_t *sink, dsp_pmu_t **out,
                char *err, size_t errlen)
{
    *out = NULL;
    if (!(cfg->sample_rate >= 1600 && cfg->sample_rate <= 25600)) {
        snprintf(err, errlen, "sample rate %.6g outside 1600..25600", cfg->sample_rate);
        return GS_ECONFIG;
    }
    if (cfg->nominal_hz != 50 && cfg->nominal_hz != 60) {
        snprintf(err, errlen, "nominal frequency %d is not 50 or 60", cfg->nominal_hz);
        return GS_ECONFIG;
    }
    if (cfg->nchannels < 1 || cfg->nchannels > DSP_MAX_CH) {
        snprintf(err, errlen, "%d channels (1..%d)", cfg->nchannels, DSP_MAX_CH);
        return GS_ECONFIG;
    }
    if (!dsp_pmu_rate_valid(cfg->nominal_hz, rate)) {
        snprintf(err, errlen, "reporting rate %d/s is not one of C37.118.1's rates at %d Hz", rate,
                 cfg->nominal_hz);
        return GS_ECONFIG;
    }
    for (int c = 0; c < cfg->nchannels; c++)
        if (!isfinite(cfg->ch[c].scale) || cfg->ch[c].scale <= 0) {
            snprintf(err, errlen, "channel %d: scale must be finite and positive", c);
            return GS_ECONFIG;
        }
    const design_t *d = find_design(rate);
    dsp_pmu_t *p = dsp__calloc(1, sizeof *p);
    p->cfg = *cfg;
    if (sink)
        p->sink = *sink;
    p->rate = rate;
    p->f0 = cfg->nominal_hz;
    p->fs = cfg->sample_rate;
    p->ts = 1.0 / p->fs;
    p->ffr = d->ffr;
    p->hw = d->span / 2;
    /* 1/Fs: an integer number of nominal cycles for every rate of Table 1, so ripple at
     * multiples of f0 (harmonics demodulated to (n-1) f0) cancels in the differences, and the
     * first difference has a null at Fs/2 from the fundamental, where out-of-band
     * interference begins (5.5.5): it would otherwise dominate FE. */
    p->h = 1.0 / rate;
    for (int i = 0; i < 3; i++)
        p->vabc[i] = p->iabc[i] = -1;
    p->refsig = -1;
    for (int c = 0; c < cfg->nchannels; c++) {
        int k = cfg->ch[c].kind, ph = cfg->ch[c].phase;
        if (k != DSP_KIND_VOLTAGE && k != DSP_KIND_CURRENT)
            continue;
        int s = p->nsig++;
        p->sigch[s] = c;
        if (ph >= DSP_PHASE_A && ph <= DSP_PHASE_C) {
            int *slot = k == DSP_KIND_VOLTAGE ? &p->vabc[ph - 1] : &p->iabc[ph - 1];
            if (*slot < 0)
                *slot = s;
        }
        if (k == DSP_KIND_VOLTAGE && p->refsig < 0)
            p->refsig = s;
    }
    if (p->nsig == 0) {
        snprintf(err, errlen, "no voltage or current channel to report");
        free(p);
        return GS_ECONFIG;
    }
    if (p->refsig < 0)
        p->refsig = 0;
    /* First stage: M = fs / 500 rounded down (3..51 over 1600..25600 S/s). */
    p->M = (int)floor(p->fs / DEC_RATE + 1e-9);
    if (p->M < 1)
        p->M = 1;
    p->L = 3 * p->M - 2;
    p->c = (p->L - 1) / 2.0;
    p->tsd = p->M * p->ts;
    p->g = dsp__calloc((size_t)p->L, sizeof(double));
    for (int a = 0; a < p->M; a++) /* boxcar * boxcar * boxcar, then normalised */
        for (int b = 0; b < p->M; b++)
            for (int e = 0; e < p->M; e++)
                p->g[a + b + e] += 1.0 / ((double)p->M * p->M * p->M);
    for (int j = 0; j < p->L; j++) {
        double v = (p->c - j) * p->ts;
        p->sig2 += p->g[j] * v * v;
    }
    p->cfix = cexp(I * 4 * M_PI * p->f0 * p->c * p->ts);
    p->acc = dsp__calloc(3 * (size_t)p->nsig, sizeof(double complex));
    /* The span of one report: the filter (2 hw) around each of t - h, t, t + h, plus slack. */
    p->cap = (int64_t)ceil((2 * p->hw + 2 * p->h) / p->tsd) + 8;
    p->ring = dsp__calloc((size_t)p->cap * (size_t)p->nsig * 2, sizeof(float));
    p->osc2 = dsp__calloc((size_t)p->cap, sizeof(double complex));
    p->w = dsp__calloc((size_t)p->cap * 4, sizeof(double));
    *out = p;
    return 0;
}

void dsp_pmu_free(dsp_pmu_t *p)
{
    if (!p)
        return;
    free(p->ring);
    free(p->osc2);
    free(p->g);
    free(p->acc);
    free(p->w);
    free(p);
}

double dsp_pmu_latency(const dsp_pmu_t *p)
{
    return p->hw + p->h + p->c * p->ts;
}

uint64_t dsp_pmu_restarts(const dsp_pmu_t *p)
{
    return p->restarts;
}

size_t dsp_pmu_memory(const dsp_pmu_t *p)
{
    size_t cap = (size_t)p->cap, ns = (size_t)p->nsig;
    return sizeof *p + (size_t)p->L * sizeof(double) +                   /* g */
           3 * ns * sizeof(double complex) +                             /* acc */
           cap * ns * 2 * sizeof(float) + cap * sizeof(double complex) + /* ring, osc2 */
           cap * 4 * sizeof(double);                                     /* w */
}

/* ---- scheduling --------------------------------------------------------------------------------
 */

/* Segment time of report (sec, idx), in seconds (long double: a segment may last months). */
static long double rep_rel(const dsp_pmu_t *p, int64_t sec, int idx)
{
    return (long double)(sec * NS - p->map_t) / 1e9L + (long double)idx / p->rate +
           (long double)p->map_k / p->fs;
}

/* Last decimated sample whose centre is at or before t (seconds from t0): centre of m is
 * (mM + r - c) ts. */
static int64_t dec_floor(const dsp_pmu_t *p, long double t)
{
    return (int64_t)floorl((t * p->fs + p->c - p->r) / p->M);
}

/* Sets k_due for the current (rep_sec, rep_idx): the last decimated sample the report needs
 * is centred at or before t + h + hw; the report is made when the input sample that
 * completes it (sample mM + r) has arrived. */
static void set_due(dsp_pmu_t *p)
{
    long double need = rep_rel(p, p->rep_sec, p->rep_idx) + p->h + p->hw;
    p->k_due = dec_floor(p, need) * p->M + p->r;
}

static void next_report(dsp_pmu_t *p)
{
    if (++p->rep_idx >= p->rate) {
        p->rep_idx = 0;
        p->rep_sec++;
    }
    set_due(p);
}

static void start_segment(dsp_pmu_t *p, int64_t t0_ns)
{
    p->r = 0;
    if (p->fs == floor(p->fs)) {
        /* number of the first sample counted from the epoch, modulo M: sec fs + the
         * sample within the second (fs <= 25600: no overflow) */
        int64_t fsi = (int64_t)p->fs, sec = t0_ns / NS;
        int64_t within = llround((double)(t0_ns - sec * NS) * p->fs / 1e9);
        int64_t n = ((sec % p->M) * (fsi % p->M) + within) % p->M;
        p->r = (int)((p->M - n) % p->M);
    }
    p->in_seg = 1;
    p->map_t = p->last_t = t0_ns;
    p->map_k = p->last_k = 0;
    p->osc_reset = 1;
    memset(p->acc, 0, 3 * (size_t)p->nsig * sizeof *p->acc);
    p->fq = (p->M - p->r) % p->M; /* k = 0: (0 - r) mod M */
    p->fm = 0;                    /* ceil((0 - r) / M), r < M */
    p->fslot = 0;
    p->k_next = 0;
    p->k_unsync = -1;
    p->first_report = 1;
    p->cached = 0;
    p->delta = 0;
    p->rocof = 0;
    p->ref_peak = 0;
    /* First report: the first grid time whose whole span (first stage included: c samples
     * more) lies after the segment start, so no report mixes samples from before a gap with
     * samples after it (C37.118.1 4.3). */
    int64_t earliest = t0_ns + (int64_t)ceil((p->h + p->hw + p->c * p->ts) * 1e9);
    int64_t sec = earliest / NS;
    int64_t frac = earliest - sec * NS;
    int idx = (int)((frac * p->rate + NS - 1) / NS); /* ceil(frac / period) */
    if (idx >= p->rate) {
        idx = 0;
        sec++;
    }
    p->rep_sec = sec;
    p->rep_idx = idx;
    set_due(p);
}

/* ---- estimation --------------------------------------------------------------------------------
 */

/* Hamming-windowed sinc (C37.118.1-2011 Annex C, M class) at u seconds from the centre:
 * sin(2 pi ffr u) / (pi u) * (0.54 + 0.46 cos(pi u / hw)), unnormalised. Evaluated for the
 * samples of one span with rotators (cos/sin advance by a constant angle per sample). */
static void kernel(const dsp_pmu_t *p, double u0, int n, double *w)
{
    double a = 2 * M_PI * p->ffr, b = M_PI / p->hw;
    double complex ra = cexp(I * a * p->tsd), za = cexp(I * a * u0);
    double complex rb = cexp(I * b * p->tsd), zb = cexp(I * b * u0);
    for (int i = 0; i < n; i++) {
        double u = u0 + i * p->tsd;
        double s = fabs(u) < 1e-9 ? 2 * p->ffr : cimag(za) / (M_PI * u);
        w[i] = fabs(u) <= p->hw ? s * (0.54 + 0.46 * creal(zb)) : 0;
        za *= ra;
        zb *= rb;
    }
}

/* The span of decimated samples centred within hw of time t (relative to t0, seconds). */
static void make_span(const dsp_pmu_t *p, long double t, double *wbuf, span_t *sp)
{
    int64_t k0 = dec_floor(p, t - p->hw);
    if ((long double)(k0 * p->M + p->r) - p->c < (t - p->hw) * p->fs)
        k0++; /* centre before t - hw: not in the span */
    int64_t k1 = dec_floor(p, t + p->hw);
    int64_t kmin = (p->L - 1 - p->r + p->M - 1) / p->M; /* first complete decimated sample */
    if (k0 < kmin)
        k0 = kmin; /* cannot happen: the first report is scheduled after hw + h + c ts */
    sp->k0 = k0;
    sp->kfirst = k0 * p->M + p->r - (p->L - 1);
    sp->n = (int)(k1 - k0 + 1);
    sp->u0 = (double)(((long double)(k0 * p->M + p->r) - p->c) / p->fs - t);
    sp->w = wbuf;
    kernel(p, sp->u0, sp->n, wbuf);
}

/* Taylor coefficients of e -> g_resp(f + s e) at e = 0 (s = +-1), from central differences. */
static void g_taylor(const dsp_pmu_t *p, double f, double s, double q[3])
{
    double gm = g_resp(p, f - G_STEP), g0 = g_resp(p, f), gp = g_resp(p, f + G_STEP);
    q[0] = g0;
    q[1] = s * (gp - gm) / (2 * G_STEP);
    q[2] = (gp - 2 * g0 + gm) / (2 * G_STEP * G_STEP);
}

/* Response of the span's filters (first stage and Hamming sinc) to the fundamental's phasor
 * trajectory around the evaluation time, e^{j phi(u)}, phi = 2 pi delta u + pi rocof u^2 (W1:
 * off-nominal frequency and its ramp, so that a C37.118.1 5.5.9 ramp is compensated too), and
 * to its negative-frequency image, conj(that) e^{-j 2 w0 t} (W2).
 * The first stage passes a chirp at decimated sample m as the chirp at its centre u_m times
 * the stage's response at the local frequency delta + rocof u_m (image: -2 f0 - delta -
 * rocof u_m), times 1 + j pi rocof sig2 for the chirp's curvature over the stage (a few ms:
 * the next term is ~(pi rocof sig2)^2 < 1e-9; for the image, where the stage's response is
 * not flat, the conjugate factor is approximate, but the whole term is < 1e-4 rocof). The
 * response at the local frequency is
 * expanded to second order in rocof u_m (|rocof u_m| <= 20 Hz/s x 0.4 s; the stage's
 * response varies on the scale of fs/M = 500 Hz, so the third-order term is < 1e-6):
 * W1 = sum_m w_m z_m (G0 + G1 rocof u_m + G2 rocof^2 u_m^2), with z_m = e^{j phi(u_m)}, and
 * the same for W2 with conj(z_m) o2_m. */
static void responses(const dsp_pmu_t *p, const span_t *sp, double delta, double rocof,
                      double complex *w1, double complex *w2)
{
    double ts = p->tsd, u0 = sp->u0;
    /* z_i = e^{j phi(u_i)}; z_{i+1} = z_i r_i with r_{i+1} = r_i e^{j 2 pi rocof ts^2} */
    double complex z = cexp(I * (2 * M_PI * delta * u0 + M_PI * rocof * u0 * u0));
    double complex r = cexp(I * (2 * M_PI * delta * ts + M_PI * rocof * (2 * u0 * ts + ts * ts)));
    double complex rr = cexp(I * 2 * M_PI * rocof * ts * ts);
    double complex a[3] = {0, 0, 0}, b[3] = {0, 0, 0};
    int64_t pos = sp->k0 % p->cap;
    double u = u0;
    for (int i = 0; i < sp->n;) {
        /* contiguous run of the ring up to its end: no modulo per tap */
        int run = (int)(p->cap - pos < sp->n - i ? p->cap - pos : sp->n - i);
        const double complex *o2 = p->osc2 + pos;
        const double *w = sp->w + i;
        for (int j = 0; j < run; j++) {
            double w0 = w[j], wu = w0 * u, wuu = wu * u;
            double complex zi = conj(z) * o2[j];
            a[0] += w0 * z;
            a[1] += wu * z;
            a[2] += wuu * z;
            b[0] += w0 * zi;
            b[1] += wu * zi;
            b[2] += wuu * zi;
            z *= r;
            r *= rr;
            u += ts;
        }
        i += run;
        pos = 0;
    }
    double ga[3], gb[3];
    g_taylor(p, delta, 1, ga);
    g_taylor(p, -2.0 * p->f0 - delta, -1, gb);
    double complex ca = 1 + I * M_PI * rocof * p->sig2, cb = conj(ca);
    /* d = X(t) + conj(X(t)) e^{-j 2 w0 t}, and in steady state X(t_k) = X(t) e^{j phi(u_k)}:
     * y = X(t) W1 + conj(X(t)) W2. */
    *w1 = ca * (ga[0] * a[0] + ga[1] * rocof * a[1] + ga[2] * rocof * rocof * a[2]);
    *w2 = cb * (gb[0] * b[0] + gb[1] * rocof * b[1] + gb[2] * rocof * rocof * b[2]);
}

/* The filter outputs of every signal over a span: y[s] = sum w_k d_k[s]. Tap-major over the
 * ring's layout ([k][signal][re, im]), in contiguous runs (no modulo per tap). */
static void filt(const dsp_pmu_t *p, const span_t *sp, double complex *y)
{
    double acc[2 * DSP_MAX_CH] = {0};
    int m = 2 * p->nsig;
    int64_t pos = sp->k0 % p->cap;
    for (int i = 0; i < sp->n;) {
        int run = (int)(p->cap - pos < sp->n - i ? p->cap - pos : sp->n - i);
        const float *d = p->ring + (size_t)pos * (size_t)m;
        const double *w = sp->w + i;
        for (int t = 0; t < run; t++, d += m)
            for (int c = 0; c < m; c++)
                acc[c] += w[t] * d[c];
        i += run;
        pos = 0;
    }
    for (int c = 0; c < p->nsig; c++)
        y[c] = acc[2 * c] + I * acc[2 * c + 1];
}

/* The phasor X at the evaluation time from the filter output y = X W1 + conj(X) W2 (the
 * demodulated signal holds the fundamental at +delta and its image at -(2 f0 + delta)). */
static double complex solve(double complex y, double complex w1, double complex w2)
{
    double den = creal(w1 * conj(w1)) - creal(w2 * conj(w2));
    if (!(fabs(den) > 0))
        return y / w1;
    return (y * conj(w1) - conj(y) * w2) / den;
}

static double wrap(double a)
{
    while (a > M_PI)
        a -= 2 * M_PI;
    while (a <= -M_PI)
        a += 2 * M_PI;
    return a;
}

static const double complex A120 = -0.5 + 0.86602540378443864676 * I; /* e^{j 2 pi / 3} */

/* Frequency and ROCOF from the phase at t - h, t, t + h (central differences, h = 1/Fs). */
static void freq_of(const dsp_pmu_t *p, const double complex x[3], double expect, double *f,
                    double *r)
{
    /* Each difference spans 1/Fs: a deviation of Fs/2 (5 Hz at 10/s) turns the phase by pi, so
     * the differences are unwrapped around the expected turn (the system deviation `expect`,
     * tracked from report to report and estimated unambiguously at a restart). */
    double pred = 2 * M_PI * expect * p->h;
    double d0 = pred + wrap(carg(x[1]) - carg(x[0]) - pred);
    double d1 = pred + wrap(carg(x[2]) - carg(x[1]) - pred);
    *f = p->f0 + (d0 + d1) / (2 * M_PI * 2 * p->h);
    *r = (d1 - d0) / (2 * M_PI * p->h * p->h);
}

static double complex posseq(double complex a, double complex b, double complex c)
{
    return (a + A120 * b + A120 * A120 * c) / 3;
}

/* The compensated phasors x[e][s] of every signal at the three instants of a report (t - h, t,
 * t + h) for the deviation `delta` and `rocof` (the complete Annex C compensation: docs/dsp.md
 * "Reporting-rate synchrophasors", step 3), and the reference (positive sequence or the reference
 * channel) at each instant. */
static void compensate(const dsp_pmu_t *p, const span_t *sp, double complex (*y)[DSP_MAX_CH],
                       double delta, double rocof, int v3, double complex (*x)[DSP_MAX_CH],
                       double complex ref[3])
{
    for (int e = 0; e < 3; e++) {
        double complex w1, w2;
        responses(p, &sp[e], delta, rocof, &w1, &w2);
        for (int s = 0; s < p->nsig; s++)
            x[e][s] = solve(y[e][s], w1, w2);
        ref[e] =
            v3 ? posseq(x[e][p->vabc[0]], x[e][p->vabc[1]], x[e][p->vabc[2]]) : x[e][p->refsig];
    }
}

static void report(dsp_pmu_t *p)
{
    long double t = rep_rel(p, p->rep_sec, p->rep_idx);
    long double tt[3] = {t - p->h, t, t + p->h};
    span_t *sp = p->csp;
    double complex(*y)[DSP_MAX_CH] = p->cy;
    if (p->cached) {
        double *wfree = sp[0].w;
        sp[0] = sp[1];
        sp[1] = sp[2];
        memcpy(y[0], y[1], sizeof y[0]);
        memcpy(y[1], y[2], sizeof y[1]);
        make_span(p, tt[2], wfree, &sp[2]);
        filt(p, &sp[2], y[2]);
    } else {
        for (int e = 0; e < 3; e++) {
            make_span(p, tt[e], p->w + (size_t)e * (size_t)p->cap, &sp[e]);
            filt(p, &sp[e], y[e]);
        }
    }
    p->cached = 1;
    int v3 = p->vabc[0] >= 0 && p->vabc[1] >= 0 && p->vabc[2] >= 0;
    int i3 = p->iabc[0] >= 0 && p->iabc[1] >= 0 && p->iabc[2] >= 0;
    dsp_pmu_report_t rep, *r = &rep;
    memset(r, 0, sizeof *r);
    /* The frequency deviation for the compensation comes from the reference (positive-
     * sequence voltage, else the first voltage channel), refined up to three times starting
     * from the last report's value (0 after a restart). */
    double delta = p->delta, rocof = p->rocof;
    double complex x[3][DSP_MAX_CH], ref[3];
    int held = 0, converged = 0;
    if (p->first_report) {
        /* No deviation to track yet: a coarse one from the uncompensated reference at t and
         * t + 1/(4 f0), unambiguous to +-2 f0 and accurate to a few 10 mHz (the image is
         * attenuated by the filter), enough to unwrap the 1/Fs differences. */
        span_t sc;
        double complex yc[DSP_MAX_CH];
        double hc = 0.25 / p->f0;
        make_span(p, t + hc, p->w + (size_t)3 * (size_t)p->cap, &sc);
        filt(p, &sc, yc);
        double complex a =
            v3 ? posseq(y[1][p->vabc[0]], y[1][p->vabc[1]], y[1][p->vabc[2]]) : y[1][p->refsig];
        double complex b =
            v3 ? posseq(yc[p->vabc[0]], yc[p->vabc[1]], yc[p->vabc[2]]) : yc[p->refsig];
        if (cabs(a) > 0 && cabs(b) > 0)
            delta = carg(b / a) / (2 * M_PI * hc);
        if (!isfinite(delta) || fabs(delta) > 0.2 * p->f0)
            delta = 0;
    }
    for (int it = 0; it < 3; it++) {
        compensate(p, sp, y, delta, rocof, v3, x, ref);
        if (it == 0) {
            double m = cabs(ref[1]);
            if (!isfinite(m) || !(m > 0.05 * p->ref_peak) || m == 0) {
                held = 1; /* no usable fundamental (an interruption): keep the deviation */
                break;
            }
            p->ref_peak = fmax(m, p->ref_peak * 0.999);
        }
        double f, rc;
        freq_of(p, ref, delta, &f, &rc);
        double nd = f - p->f0;
        if (fabs(nd) > 0.2 * p->f0) /* outside any plausible range: do not chase it */
            nd = nd > 0 ? 0.2 * p->f0 : -0.2 * p->f0;
        if (!isfinite(rc) || fabs(rc) > MAX_ROCOF)
            rc = 0; /* a step, not a ramp: no chirp compensation */
        /* converged: the phasors just computed used a deviation within 1 uHz and a ROCOF
         * within 1 mHz/s of the refined ones (effect < 1e-4 % TVE): keep them */
        converged = fabs(nd - delta) < 1e-6 && fabs(rc - rocof) < 1e-3;
        if (converged)
            break;
        delta = nd;
        rocof = rc;
    }
    if (!held && !converged) {
        /* the final compensation with the refined deviation */
        compensate(p, sp, y, delta, rocof, v3, x, ref);
    }
    if (!held) {
        p->delta = delta;
        p->rocof = rocof;
    }

    r->t_ns = p->rep_sec * NS + ((int64_t)p->rep_idx * NS + p->rate / 2) / p->rate;
    r->sec = p->rep_sec;
    r->index = p->rep_idx;
    r->rate = p->rate;
    if (p->first_report)
        r->flags |= DSP_PMU_F_RESTART;
    if (held)
        r->flags |= DSP_PMU_F_FREQ_HELD;
    if (p->k_unsync >= sp[0].kfirst)
        r->flags |= DSP_PMU_F_TIME_UNSYNC;
    r->nph = p->nsig;
    for (int s = 0; s < p->nsig; s++) {
        dsp_pmu_phasor_t *o = &r->ph[s];
        double complex xx[3] = {x[0][s], x[1][s], x[2][s]};
        o->ch = p->sigch[s];
        o->mag = cabs(x[1][s]);
        o->ang = carg(x[1][s]);
        freq_of(p, xx, p->delta, &o->freq, &o->rocof);
    }
    if (held) {
        r->freq = p->f0 + p->delta;
        r->rocof = 0;
    } else {
        freq_of(p, ref, p->delta, &r->freq, &r->rocof);
    }
    if (v3) {
        r->has_v1 = 1;
        r->v1.ch = -1;
        r->v1.mag = cabs(ref[1]);
        r->v1.ang = carg(ref[1]);
        r->v1.freq = r->freq;
        r->v1.rocof = r->rocof;
    }
    if (i3) {
        double complex c[3];
        for (int e = 0; e < 3; e++)
            c[e] = posseq(x[e][p->iabc[0]], x[e][p->iabc[1]], x[e][p->iabc[2]]);
        r->has_i1 = 1;
        r->i1.ch = -1;
        r->i1.mag = cabs(c[1]);
        r->i1.ang = carg(c[1]);
        freq_of(p, c, p->delta, &r->i1.freq, &r->i1.rocof);
    }
    p->first_report = 0;
    if (p->sink.report)
        p->sink.report(p->sink.ud, r);
}

/* ---- input -------------------------------------------------------------------------------------
 */

/* Value i of the block. memcpy: the input need not be aligned (a payload inside a frame),
 * as in dsp_stream_push; a cast load would be undefined behaviour there (C11 6.3.2.3p7). */
static double sample_at(int fmt, const void *samples, size_t i)
{
    const unsigned char *b = samples;
    switch (fmt) {
    case DSP_FMT_I16: {
        int16_t v;
        memcpy(&v, b + i * 2, 2);
        return v;
    }
    case DSP_FMT_I32: {
        int32_t v;
        memcpy(&v, b + i * 4, 4);
        return v;
    }
    case DSP_FMT_F32: {
        float v;
        memcpy(&v, b + i * 4, 4);
        return v;
    }
    default: {
        double v;
        memcpy(&v, b + i * 8, 8);
        return v;
    }
    }
}

/* e^{-j 2 pi f0 t} for sample k of the segment, t = map_t + (k - map_k) ts. f0 is an
 * integer, so only the fraction of the UTC second matters: the phase is formed from map_t's
 * nanoseconds within its second (exact integer arithmetic) and (k - map_k) f0 / fs (long
 * double), keeping full precision after months. */
static double complex nominal_osc(const dsp_pmu_t *p, int64_t k)
{
    int64_t ns = p->map_t % NS;
    int64_t cyc_ns = (ns * p->f0) % NS; /* f0 * ns < 6.1e10: no overflow */
    long double c =
        (long double)cyc_ns / 1e9L + fmodl((long double)(k - p->map_k) * p->f0 / p->fs, 1.0L);
    double ph = (double)fmodl(c, 1.0L);
    return cexp(-I * 2 * M_PI * ph);
}

/* A push continuing the segment (within half a sample of the gap rule's expectation): moves
 * the time mapping to its t0 if the terminal's sample clock has drifted from it by more than
 * REANCHOR_NS (dsp_stream_push re-anchors at every push: the same time rules, docs/dsp.md).
 * Report times stay on the UTC grid; they are only placed in segment time anew, and the
 * cached filter outputs (placed with the old mapping) are dropped. The decimation instants
 * stay every M samples from the segment start (the filters need uniform spacing): with a
 * drifting clock they leave the UTC sample grid by the accumulated drift. */
static void reanchor(dsp_pmu_t *p, int64_t t0_ns)
{
    long double mapped = (long double)p->map_t + (long double)(p->k_next - p->map_k) * 1e9L / p->fs;
    if (fabsl((long double)t0_ns - mapped) <= REANCHOR_NS)
        return;
    p->map_t = t0_ns;
    p->map_k = p->k_next;
    p->osc_reset = 1;
    p->cached = 0;
    set_due(p);
}

int dsp_pmu_push(dsp_pmu_t *p, int64_t t0_ns, int fmt, const void *samples, size_t nsets,
                 uint32_t flags)
{
    /* nsets bounded as in dsp_stream_push (2^30): index arithmetic stays far from overflow */
    if (fmt < DSP_FMT_I16 || fmt > DSP_FMT_F64 || (nsets && !samples) || nsets > (size_t)1 << 30)
        return GS_EINVAL;
    if (t0_ns < 0 || t0_ns >= DSP_MAX_TIME_NS)
        return GS_ERANGE;
    if (nsets == 0)
        return 0; /* nothing to place in time: not a gap (as dsp_stream_push) */
    double period_ns = 1e9 / p->fs;
    if (p->in_seg) {
        /* dsp_stream_push's rule: a start that does not continue the previous push within
         * half a sample is a gap: no report spans it; estimation restarts (C37.118.1 4.3: no
         * estimate across missing data). Int64 for the epoch part: a double holds epoch ns
         * only to 256 ns. */
        int64_t expected =
            p->last_t + (int64_t)llround((double)(p->k_next - p->last_k) * period_ns);
        if (fabs((double)(t0_ns - expected)) > 0.5 * period_ns) {
            p->in_seg = 0;
            p->restarts++;
        } else {
            p->last_t = t0_ns;
            p->last_k = p->k_next;
            reanchor(p, t0_ns);
        }
    }
    int nch = p->cfg.nchannels;
    /* The oscillator advances by a constant rotation per sample; it is recomputed exactly
     * every 256 samples of the segment and where the mapping moved (whatever the block
     * boundaries otherwise, so that the same samples always give the same reports), so
     * rounding never accumulates. */
    double complex step = cexp(-I * 2 * M_PI * p->f0 / p->fs);
    int ns = p->nsig, M = p->M, L = p->L;
    double v[DSP_MAX_CH];
    for (size_t i = 0; i < nsets; i++) {
        int bad = 0;
        for (int s = 0; s < ns; s++) {
            int c = p->sigch[s];
            v[s] = sample_at(fmt, samples, i * (size_t)nch + (size_t)c) * p->cfg.ch[c].scale;
            if (!isfinite(v[s]) || fabs(v[s]) > 1e30)
                bad = 1;
        }
        if (bad) {
            /* a missing sample ends the segment (one restart for a run of them); the next
             * good one starts a new one */
            if (p->in_seg) {
                p->in_seg = 0;
                p->restarts++;
            }
            continue;
        }
        if (!p->in_seg)
            start_segment(p, t0_ns + (int64_t)llround((double)i * period_ns));
        int64_t k = p->k_next;
        if ((k & 255) == 0 || p->osc_reset) {
            p->osc_cur = nominal_osc(p, k);
            p->osc_reset = 0;
        } else {
            p->osc_cur *= step;
        }
        double complex o = p->osc_cur;
        double complex d[DSP_MAX_CH];
        for (int s = 0; s < ns; s++)
            d[s] = M_SQRT2 * v[s] * o;
        /* First stage: sample k enters decimated sample m with tap j = mM + r - k (0..L-1),
         * i.e. m = fm, fm + 1, fm + 2 with taps j0, j0 + M, j0 + 2M (the last only if < L);
         * fq = (k - r) mod M, j0 = (M - fq) mod M. */
        int j0 = p->fq ? M - p->fq : 0;
        for (int e = 0, row = p->fslot; e < 3 && j0 + e * M < L;
             e++, row = row == 2 ? 0 : row + 1) {
            double gj = p->g[j0 + e * M];
            double complex *a = p->acc + (size_t)row * (size_t)ns;
            for (int s = 0; s < ns; s++)
                a[s] += gj * d[s];
        }
        if (++p->fq == M)
            p->fq = 0;
        if (j0 == 0) {
            /* k = fm M + r: decimated sample fm is complete; stored if all its L samples
             * belong to the segment, and its row is cleared for fm + 3 */
            double complex *a = p->acc + (size_t)p->fslot * (size_t)ns;
            if (k >= L - 1) {
                int64_t pos = p->fm % p->cap;
                float *dst = p->ring + (size_t)pos * (size_t)ns * 2;
                for (int s = 0; s < ns; s++) {
                    dst[2 * s] = (float)creal(a[s]);
                    dst[2 * s + 1] = (float)cimag(a[s]);
                }
                p->osc2[pos] = o * o * p->cfix;
            }
            for (int s = 0; s < ns; s++)
                a[s] = 0;
            p->fm++;
            p->fslot = p->fslot == 2 ? 0 : p->fslot + 1;
        }
        if (flags & DSP_F_TIME_UNSYNC)
            p->k_unsync = k;
        p->k_next = k + 1;
        while (p->k_next > p->k_due) {
            report(p);
            next_report(p);
        }
    }
    return 0;
}

void dsp_pmu_flush(dsp_pmu_t *p)
{
    /* Reports whose span is incomplete are withheld; the next push starts a new segment. */
    if (p->in_seg)
        p->restarts++;
    p->in_seg = 0;
}
