/* One terminal's analysis: conditioning, frequency tracking, resampled basic windows and the
 * measurements on them. See dsp.h for the pipeline. */
#include "dsp/internal.h"

#include "core/err.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define NS         1000000000LL
#define TEN_MIN_NS (600 * NS)
#define TWO_H_NS   (7200 * NS)
#define TEN_S_NS   (10 * NS)
#define CHUNK      256 /* input sample sets appended between checks for complete windows */
#define FMIN_REL   0.8 /* tracker range: 0.8..1.2 x nominal (40-60 Hz at 50 Hz) */
#define FMAX_REL   1.2
#define FINE_TOL   5e-5 /* window length within 0.005 % of C cycles (4-7 asks 0.03 %) */
#define COARSE_TOL 2e-3 /* switch from the per-cycle to the half-window estimator */
#define MAX_ITER   8
/* Decimator (input above 12.8 kS/s): passband to the 50th order of 63 Hz (60 Hz + 5 %, the
 * 4-7 range) plus the upper half of its group (3181.5 Hz), and the lowest output rate used. */
#define DEC_PASS_HZ 3200.0
#define DEC_MIN_OUT 8000.0
/* Harmonic angles are reported for orders whose bin holds at least this fraction of the
 * fundamental (0.01 %: below it the angle is that of noise or leakage). */
#define HANG_FLOOR 1e-4

/* Resamples channels over [pos, pos + len) onto points of the window grid (resample_body). */
typedef void (*resample_fn_t)(dsp_stream_t *s, const int *chs, int n, double pos, double len,
                              int npoints);
static resample_fn_t resample_fn(void);

struct dsp_stream {
    dsp_config_t cfg;
    dsp_sink_t sink;
    int nch, C, N, M;
    double f0;
    double fs_in, fs; /* input rate; rate after decimation */

    /* decimation (fs_in > 12.8 kS/s) */
    int decim, ndtaps, dhmask;
    double *dtaps;
    double *dhist; /* [nch][dhmask + 1] circular history */
    uint64_t din;  /* input samples fed to the decimator in this segment */

    /* ring of conditioned samples, channel-major; positions count from the segment start */
    float *ring;
    uint64_t cap, mask, nw;

    /* segment and time mapping: input index i (in segment) was sampled at
     * anchor_t + (i - anchor_in) / fs_in; ring position p is input index p * decim + off */
    int in_seg;
    int64_t anchor_t;
    uint64_t anchor_in, nin, off;
    uint32_t push_flags;

    /* windowing and tracking */
    double pos; /* next window's first (fractional) ring position */
    int acquiring, resync_next, have_last, have_prev_half;
    double f_hint, f_last;
    int64_t tref_last;
    uint64_t nwin;

    const dsp_kernel_t *kern;       /* interpolation kernel (kernel.c: short or long) */
    resample_fn_t resample;         /* resampling code for this CPU (resample_fn) */
    double reach_hz;                /* harmonic orders are reported up to this frequency */
    double f_grid;                  /* this window's grid frequency: C cycles = N points */
    int hmax_win;                   /* highest harmonic order reported in this window */
    double *kcomp;                  /* N/2 + 1: 1 / |H|^2 of the kernel per DFT bin, this window */
    int vabc[3], iabc[3], in_ch;    /* channel index per phase, -1 if absent */
    int refch[3], nref, ref_posseq; /* frequency reference channels */
    int evch[DSP_MAX_CH], nev;      /* channels watched for voltage events */
    double *x[DSP_MAX_CH];          /* resampled window per channel (fftw_malloc, N) */
    double *tmp;                    /* N scratch (line-to-line, neutral) */
    fftw_complex *spec;             /* N/2 + 1 */
    fftw_plan plan;
    int plan_owned;                  /* not in the shared cache: destroyed with the stream */
    double *kc, *ks;                 /* cos/sin(2 pi m / M), m = 0..M-1 */
    double complex fund[DSP_MAX_CH]; /* fundamental RMS phasors, UTC-referenced, this window */
    double prev_half[DSP_MAX_CH];
    /* DC removal (dc_removal): the offset removed is a slow average of window means, not the
     * window's own mean (see dc_track). */
    double dcv[DSP_MAX_CH];     /* this window's mean (before removal) */
    double dc_est[DSP_MAX_CH];  /* tracked offset per channel */
    uint32_t dc_n[DSP_MAX_CH];  /* window means accepted so far (0: not initialised) */
    double dc_pend[DSP_MAX_CH]; /* previous window's mean, accepted once its successor is clean */
    int dc_pend_ok[DSP_MAX_CH]; /* the previous window was clean for this channel */

    dsp_events_t ev;
    dsp_acc_t a3, a10, a2h;
    int a3_on, a10_on, a2h_on;
    int64_t a3_key10;

    /* 10-s frequency */
    int f10_on;
    int64_t f10_key, f10_covered;
    double f10_cyc, f10_dur;
    uint32_t f10_flags;
    int f10_gap; /* the stream broke during this 10-s interval */

    dsp_window_t w;
    dsp_agg_t agg;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static double wrap_pi(double a)
{
    a = fmod(a, 2 * M_PI);
    if (a > M_PI)
        a -= 2 * M_PI;
    else if (a <= -M_PI)
        a += 2 * M_PI;
    return a;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Phase of the nominal-frequency UTC cosine at time t (C37.118.1 4.2: the reference is a cosine
 * at nominal frequency whose maxima fall on the UTC second). f0 is an integer, so whole seconds
 * contribute whole cycles and only the fraction of the second matters. */
static double utc_ref_phase(int64_t t_ns, double f0)
{
    int64_t sub = t_ns - floor_div(t_ns, NS) * NS;
    double cyc = fmod(f0 * (double)sub / 1e9, 1.0);
    return 2 * M_PI * cyc;
}

static int smooth235(int n)
{
    while (n % 2 == 0)
        n /= 2;
    while (n % 3 == 0)
        n /= 3;
    while (n % 5 == 0)
        n /= 5;
    return n == 1;
}

/* Ring position p (fractional) -> UTC ns. */
static int64_t pos_time(const dsp_stream_t *s, double p)
{
    double in_idx = p * s->decim + (double)s->off;
    double dt = (in_idx - (double)s->anchor_in) * 1e9 / s->fs_in;
    return s->anchor_t + (int64_t)llround(dt);
}

static double time_pos(const dsp_stream_t *s, int64_t t)
{
    double in_idx = (double)(t - s->anchor_t) * s->fs_in / 1e9 + (double)s->anchor_in;
    return (in_idx - (double)s->off) / s->decim;
}

/* Each channel's ring has RING_GUARD extra slots mirroring its first slots, so that the
 * interpolation kernel reads 2 kh consecutive floats without a wrap test. */
#define RING_GUARD (2 * DSP_KH_MAX)

static float *ring_ch(const dsp_stream_t *s, int c)
{
    return s->ring + (size_t)c * (s->cap + RING_GUARD);
}

static void ring_put(dsp_stream_t *s, int c, uint64_t at, float v)
{
    float *x = ring_ch(s, c);
    x[at] = v;
    if (at < RING_GUARD)
        x[s->cap + at] = v;
}

/* ---- configuration ------------------------------------------------------------------------ */

void dsp_config_default(dsp_config_t *c, double sample_rate, int nominal_hz, int nchannels)
{
    memset(c, 0, sizeof *c);
    c->sample_rate = sample_rate;
    c->nominal_hz = nominal_hz;
    c->nchannels = nchannels;
    for (int i = 0; i < DSP_MAX_CH; i++)
        c->ch[i].scale = 1;
    c->dip_pct = 90;
    c->swell_pct = 110;
    c->intr_pct = 10;
    c->hyst_pct = 2;
    c->phasor_cycles = 1;
    c->resync_10min = 1;
}

static int check_config(const dsp_config_t *c, char *err, size_t errlen)
{
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return GS_ECONFIG;                                                                         \
    } while (0)
    if (!(c->sample_rate >= 1600 && c->sample_rate <= 25600))
        BAD("sample rate %g S/s: must be 1600..25600", c->sample_rate);
    if (c->nominal_hz != 50 && c->nominal_hz != 60)
        BAD("nominal frequency %d Hz: must be 50 or 60", c->nominal_hz);
    if (c->nchannels < 1 || c->nchannels > DSP_MAX_CH)
        BAD("%d channels: must be 1..%d", c->nchannels, DSP_MAX_CH);
    for (int i = 0; i < c->nchannels; i++) {
        if (!(isfinite(c->ch[i].scale) && c->ch[i].scale > 0))
            BAD("channel %d: scale must be finite and > 0", i);
        if (c->ch[i].kind > DSP_KIND_CURRENT || c->ch[i].phase > DSP_PHASE_N)
            BAD("channel %d: unknown kind or phase", i);
    }
    if (!(isfinite(c->declared_v) && c->declared_v >= 0))
        BAD("declared voltage must be >= 0 (0 = sliding reference)");
    if (!(c->hyst_pct >= 0 && c->hyst_pct < 10))
        BAD("hysteresis %g %%: must be 0..<10", c->hyst_pct);
    if (!(c->intr_pct > 0 && c->intr_pct + c->hyst_pct < c->dip_pct &&
          c->dip_pct + c->hyst_pct < 100 && c->swell_pct - c->hyst_pct > 100 &&
          c->swell_pct < 1000))
        BAD("thresholds must satisfy 0 < interruption < dip < 100 < swell (with hysteresis)");
    if (c->phasor_cycles < 1 || c->phasor_cycles > 4)
        BAD("phasor window %d cycles: must be 1..4", c->phasor_cycles);
    return 0;
#undef BAD
}

/* Picks the channel roles: phase voltages and currents by phase, the frequency reference
 * (positive sequence of Va, Vb, Vc when all three exist, else the first voltage channel, else
 * channel 0), and the channels watched for voltage events. */
static void assign_roles(dsp_stream_t *s)
{
    const dsp_config_t *c = &s->cfg;
    for (int p = 0; p < 3; p++)
        s->vabc[p] = s->iabc[p] = -1;
    s->in_ch = -1;
    int first_v = -1;
    for (int i = 0; i < c->nchannels; i++) {
        int ph = c->ch[i].phase;
        if (c->ch[i].kind == DSP_KIND_VOLTAGE) {
            if (first_v < 0)
                first_v = i;
            if (ph >= DSP_PHASE_A && ph <= DSP_PHASE_C && s->vabc[ph - 1] < 0)
                s->vabc[ph - 1] = i;
        } else if (c->ch[i].kind == DSP_KIND_CURRENT) {
            if (ph >= DSP_PHASE_A && ph <= DSP_PHASE_C && s->iabc[ph - 1] < 0)
                s->iabc[ph - 1] = i;
            else if (ph == DSP_PHASE_N && s->in_ch < 0)
                s->in_ch = i;
        }
    }
    if (s->vabc[0] >= 0 && s->vabc[1] >= 0 && s->vabc[2] >= 0) {
        s->nref = 3;
        s->ref_posseq = 1;
        for (int p = 0; p < 3; p++)
            s->refch[p] = s->vabc[p];
    } else {
        s->nref = 1;
        s->ref_posseq = 0;
        s->refch[0] = first_v >= 0 ? first_v : 0;
    }
    s->nev = 0;
    for (int p = 0; p < 3; p++)
        if (s->vabc[p] >= 0)
            s->evch[s->nev++] = s->vabc[p];
    if (s->nev == 0) /* voltage channels without phase information */
        for (int i = 0; i < c->nchannels; i++)
            if (c->ch[i].kind == DSP_KIND_VOLTAGE)
                s->evch[s->nev++] = i;
}

int dsp_stream_new(const dsp_config_t *cfg, const dsp_sink_t *sink, dsp_stream_t **out, char *err,
                   size_t errlen)
{
    int rc = check_config(cfg, err, errlen);
    if (rc < 0)
        return rc;
    dsp_stream_t *s = dsp__calloc(1, sizeof *s);
    s->cfg = *cfg;
    if (sink)
        s->sink = *sink;
    s->nch = cfg->nchannels;
    s->f0 = cfg->nominal_hz;
    s->C = cfg->nominal_hz == 50 ? 10 : 12; /* 4-30 4.4: 10/12-cycle basic interval */
    s->fs_in = cfg->sample_rate;

    /* Above 12.8 kS/s, decimate: the analysis band ends at the 50th harmonic. The decimator
     * passes DEC_PASS_HZ, the 50th order at the top of the 4-7 range (60 Hz + 5 %) and the
     * upper half of its group; its stopband starts at fs/D - DEC_PASS_HZ, so D is used only
     * while fs/D >= DEC_MIN_OUT (a transition band of >= 1.6 kHz, a filter of ~50 taps):
     * 12.8..16 kS/s stay undecimated (fs/2 there would leave no transition band). */
    s->decim = 1;
    if (s->fs_in > 12800 && s->fs_in / ceil(s->fs_in / 12800) >= DEC_MIN_OUT) {
        s->decim = (int)ceil(s->fs_in / 12800);
        s->ndtaps = dsp__design_decimator(s->fs_in, s->decim, DEC_PASS_HZ, &s->dtaps);
        int hp = 1;
        while (hp < s->ndtaps)
            hp <<= 1;
        s->dhmask = hp - 1;
        s->dhist = dsp__calloc((size_t)hp * (size_t)s->nch, sizeof(double));
    }
    s->fs = s->fs_in / s->decim;

    /* N: about one point per input sample over the nominal 200 ms, a multiple of 2C (whole half
     * cycles for Urms(1/2)) and 2-3-5 smooth (fast FFT). */
    int n = (int)ceil(s->fs / 5);
    while (n % (2 * s->C) != 0 || !smooth235(n))
        n++;
    s->N = n;
    s->M = n / s->C;
    /* Interpolation kernel and harmonic reach (kernel.c). The short kernel is flat to 1 % up to
     * 0.66 of the input Nyquist frequency, which holds the 50th order at f0 + 5 % (4-30 5.8)
     * from 7.96 kS/s (50 Hz) / 9.55 kS/s (60 Hz). Below, the long kernel, whose known response
     * is divided out of the harmonic bins, reaches 0.985 of Nyquist: orders are reported per
     * window while h f <= reach (39 at 4 kS/s, 50 Hz, up to 50.5 Hz). After decimation the
     * decimator's passband (DEC_PASS_HZ) bounds the reach as well. */
    int short_ok = floor(0.66 * s->fs / 2 / (1.05 * s->f0)) >= DSP_MAX_H;
    s->kern = dsp__kernel(short_ok ? DSP_KERNEL_SHORT : DSP_KERNEL_LONG);
    s->reach_hz = s->kern->reach * s->fs / 2;
    s->resample = resample_fn();
    if (s->decim > 1 && s->reach_hz > DEC_PASS_HZ)
        s->reach_hz = DEC_PASS_HZ;

    double lmax = s->C * s->fs / (FMIN_REL * s->f0);
    uint64_t need = (uint64_t)(lmax * 1.3) + 4 * (uint64_t)s->kern->kh + CHUNK + 16;
    s->cap = 1;
    while (s->cap < need)
        s->cap <<= 1;
    s->mask = s->cap - 1;
    s->ring = dsp__calloc((size_t)(s->cap + RING_GUARD) * (size_t)s->nch, sizeof(float));

    for (int c = 0; c < s->nch; c++)
        s->x[c] = fftw_alloc_real((size_t)s->N);
    s->tmp = fftw_alloc_real((size_t)s->N);
    s->spec = fftw_alloc_complex((size_t)s->N / 2 + 1);
    s->kcomp = dsp__malloc(sizeof(double) * ((size_t)s->N / 2 + 1));
    s->kc = dsp__malloc(sizeof(double) * (size_t)s->M);
    s->ks = dsp__malloc(sizeof(double) * (size_t)s->M);
    for (int m = 0; m < s->M; m++) {
        s->kc[m] = cos(2 * M_PI * m / s->M);
        s->ks[m] = sin(2 * M_PI * m / s->M);
    }
    s->plan = dsp__plan_r2c(s->N, &s->plan_owned);
    if (!s->plan) {
        snprintf(err, errlen, "FFTW could not plan a %d-point transform", s->N);
        dsp_stream_free(s);
        return GS_ENOMEM;
    }
    assign_roles(s);
    s->f_hint = s->f0;
    *out = s;
    return 0;
}

void dsp_stream_geometry(const dsp_stream_t *s, int *n_points, int *cycles)
{
    if (n_points)
        *n_points = s->N;
    if (cycles)
        *cycles = s->C;
}

void dsp_stream_free(dsp_stream_t *s)
{
    if (!s)
        return;
    for (int c = 0; c < s->nch; c++)
        fftw_free(s->x[c]);
    fftw_free(s->tmp);
    fftw_free(s->spec);
    if (s->plan && s->plan_owned)
        dsp__plan_release(s->plan);
    free(s->kc);
    free(s->ks);
    free(s->kcomp);
    free(s->ring);
    free(s->dtaps);
    free(s->dhist);
    free(s);
}

const char *dsp_event_name(int kind)
{
    switch (kind) {
    case DSP_EV_DIP:
        return "dip";
    case DSP_EV_SWELL:
        return "swell";
    case DSP_EV_INTERRUPTION:
        return "interruption";
    }
    return "unknown";
}

const char *dsp_agg_name(int kind)
{
    switch (kind) {
    case DSP_AGG_3S:
        return "3s";
    case DSP_AGG_10MIN:
        return "10min";
    case DSP_AGG_2H:
        return "2h";
    }
    return "unknown";
}

/* ---- aggregation plumbing ----------------------------------------------------------------- */

static void emit_agg(dsp_stream_t *s, const dsp_acc_t *a, uint32_t expected, int64_t nominal_ns,
                     int64_t t_start, int64_t t_end)
{
    dsp__acc_finish(a, expected, nominal_ns, &s->agg);
    if (t_end > t_start) { /* UTC-aligned intervals carry their tick boundaries */
        s->agg.t_start_ns = t_start;
        s->agg.t_end_ns = t_end;
    }
    if (s->sink.agg)
        s->sink.agg(s->sink.ud, &s->agg);
}

static void close_2h(dsp_stream_t *s)
{
    if (!s->a2h_on)
        return;
    emit_agg(s, &s->a2h, 12, 0, s->a2h.key * TWO_H_NS, (s->a2h.key + 1) * TWO_H_NS);
    s->a2h_on = 0;
}

static void close_10min(dsp_stream_t *s)
{
    if (!s->a10_on)
        return;
    uint32_t expected = (uint32_t)llround(600.0 * s->f0 / s->C);
    emit_agg(s, &s->a10, expected, TEN_MIN_NS, s->a10.key * TEN_MIN_NS,
             (s->a10.key + 1) * TEN_MIN_NS);
    s->a10_on = 0;
    /* 2 h values aggregate the twelve 10-min values (4-30 4.5.4). */
    dsp_agg_t g = s->agg;
    int64_t key2 = floor_div(g.t_start_ns, TWO_H_NS);
    if (s->a2h_on && s->a2h.key != key2)
        close_2h(s);
    if (!s->a2h_on) {
        dsp__acc_reset(&s->a2h, DSP_AGG_2H, key2, s->nch);
        s->a2h_on = 1;
    }
    dsp__acc_add_agg(&s->a2h, &g);
}

static void close_3s(dsp_stream_t *s)
{
    if (!s->a3_on)
        return;
    emit_agg(s, &s->a3, 15, 0, 0, 0); /* 150 cycles / 10 = 180 / 12 = 15 windows */
    s->a3_on = 0;
}

static void close_f10(dsp_stream_t *s)
{
    if (!s->f10_on)
        return;
    if (s->f10_dur > 0 && s->sink.freq10) {
        dsp_freq10_t f;
        memset(&f, 0, sizeof f);
        f.t_start_ns = s->f10_key * TEN_S_NS;
        f.t_end_ns = f.t_start_ns + TEN_S_NS;
        f.freq = s->f10_cyc / (s->f10_dur / 1e9);
        f.cycles = (uint32_t)floor(s->f10_cyc);
        f.flags = s->f10_flags;
        /* Incomplete: a gap, or windows covering less than the 10 s. The tolerance is one
         * nominal cycle: 4-30 counts only the integral cycles inside the interval anyway, so a
         * shortfall below a cycle (the first samples of a stream, sub-sample holes from
         * following the terminal's clock) does not change the definition's value. */
        if (s->f10_gap || s->f10_dur < (double)TEN_S_NS - 1e9 / s->f0)
            f.flags |= DSP_F_INCOMPLETE;
        s->sink.freq10(s->sink.ud, &f);
    }
    s->f10_on = 0;
}

/* The 10-s frequency (4-30 5.1.2) counts cycles of the fundamental: each window holds
 * freq x duration cycles; a window crossing a 10-s tick is shared in proportion to time, and
 * time already counted (a window overlapping the previous one after a resync) is skipped. */
static void add_f10(dsp_stream_t *s, const dsp_window_t *w)
{
    if (w->flags & DSP_F_FREQ_HELD)
        return;
    int64_t a = w->t_start_ns > s->f10_covered ? w->t_start_ns : s->f10_covered;
    int64_t b = w->t_end_ns;
    double span = (double)(w->t_end_ns - w->t_start_ns);
    while (a < b && span > 0) {
        int64_t key = floor_div(a, TEN_S_NS);
        if (s->f10_on && key != s->f10_key)
            close_f10(s);
        if (!s->f10_on) {
            s->f10_on = 1;
            s->f10_key = key;
            s->f10_cyc = s->f10_dur = 0;
            s->f10_flags = 0;
            s->f10_gap = 0;
        }
        int64_t tick = (key + 1) * TEN_S_NS;
        int64_t e = b < tick ? b : tick;
        double part = (double)(e - a);
        s->f10_cyc += w->freq * part / 1e9;
        s->f10_dur += part;
        s->f10_flags |= w->flags & DSP_F_EVENT;
        a = e;
        if (e == tick)
            close_f10(s);
    }
    if (b > s->f10_covered)
        s->f10_covered = b;
}

static void aggregate(dsp_stream_t *s, const dsp_window_t *w)
{
    int64_t key10 = floor_div(w->t_start_ns, TEN_MIN_NS);
    /* 150/180-cycle intervals restart at each 10-min tick (4-30 4.5.3). */
    if (s->a3_on && s->a3_key10 != key10)
        close_3s(s);
    if (!s->a3_on) {
        dsp__acc_reset(&s->a3, DSP_AGG_3S, w->t_start_ns, s->nch);
        s->a3_on = 1;
        s->a3_key10 = key10;
    }
    dsp__acc_add_window(&s->a3, w);
    if (s->a3.count >= 15)
        close_3s(s);

    if (s->a10_on && s->a10.key != key10)
        close_10min(s);
    if (!s->a10_on) {
        dsp__acc_reset(&s->a10, DSP_AGG_10MIN, key10, s->nch);
        s->a10.lo = key10 * TEN_MIN_NS;
        s->a10.hi = s->a10.lo + TEN_MIN_NS;
        s->a10.cov_until = s->a10.lo;
        s->a10_on = 1;
    }
    dsp__acc_add_window(&s->a10, w);
    add_f10(s, w);
}

/* ---- resampling and estimation ------------------------------------------------------------ */

/* Resampling onto the window grid: for each grid point the 2 kh kernel weights (interpolated
 * between table phases, computed once per point and shared by all channels) times 2 kh
 * consecutive ring samples per channel. With the 128-tap kernel this is most of the engine's
 * CPU time (docs/benchmarks.md B), so the products go into independent partial sums, summed
 * pairwise at the end: with a single accumulator each vector add waits for the previous one
 * (add latency, not throughput, set the cost). On x86-64 CPUs with AVX2 and FMA (checked at run
 * time, resample_fn) the dot products use 8-float vectors and fused multiply-adds; elsewhere
 * the compiler vectorises the portable loop for the baseline ISA. 2 kh is a multiple of
 * DOT_LANES for both kernels (16 and 128 taps). Single precision: the samples are floats
 * already and 16..128 products summed in float keep ~1e-6 relative error (fused or not, in any
 * order), far below the accuracy figures. */
#define DOT_LANES 16

static float dot_base(const float *restrict w, const float *restrict x, int nt)
{
    float a[DOT_LANES] = {0};
    for (int k = 0; k < nt; k += DOT_LANES)
#pragma omp simd
        for (int l = 0; l < DOT_LANES; l++)
            a[l] += w[k + l] * x[k + l];
    for (int h = DOT_LANES / 2; h > 0; h /= 2)
#pragma omp simd
        for (int l = 0; l < h; l++)
            a[l] += a[l + h];
    return a[0];
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_PATH 1
/* w: 64-byte aligned; x: any alignment. Four 8-float accumulators (two for the 16-tap
 * kernel). */
__attribute__((target("avx2,fma"))) static inline float dot_avx2(const float *restrict w,
                                                                 const float *restrict x, int nt)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 32 <= nt; k += 32) {
        a0 = _mm256_fmadd_ps(_mm256_load_ps(w + k), _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_load_ps(w + k + 8), _mm256_loadu_ps(x + k + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_load_ps(w + k + 16), _mm256_loadu_ps(x + k + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_load_ps(w + k + 24), _mm256_loadu_ps(x + k + 24), a3);
    }
    for (; k < nt; k += 16) {
        a0 = _mm256_fmadd_ps(_mm256_load_ps(w + k), _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_load_ps(w + k + 8), _mm256_loadu_ps(x + k + 8), a1);
    }
    __m256 t = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}
#endif

static inline __attribute__((always_inline)) void
resample_body(dsp_stream_t *s, const int *chs, int n, double pos, double len, int npoints, int avx2)
{
    const float *tab = s->kern->tab;
    const int kh = s->kern->kh, nt = 2 * kh;
    double step = len / s->N;
    _Alignas(64) float w[2 * DSP_KH_MAX];
    const float *xc[DSP_MAX_CH];
    double *out[DSP_MAX_CH];
    for (int j = 0; j < n; j++) {
        xc[j] = ring_ch(s, chs[j]);
        out[j] = s->x[chs[j]];
    }
    for (int m = 0; m < npoints; m++) {
        double p = pos + m * step;
        double ip = floor(p);
        double q = (p - ip) * DSP_KPHASES;
        int qi = (int)q;
        if (qi >= DSP_KPHASES)
            qi = DSP_KPHASES - 1;
        float qf = (float)(q - qi);
        const float *r0 = tab + (size_t)qi * (size_t)nt, *r1 = r0 + nt;
#pragma omp simd
        for (int k = 0; k < nt; k++)
            w[k] = r0[k] + qf * (r1[k] - r0[k]);
        uint64_t base = ((uint64_t)ip - (uint64_t)kh + 1) & s->mask;
        for (int j = 0; j < n; j++) {
#ifdef HAVE_AVX2_PATH
            if (avx2) {
                out[j][m] = dot_avx2(w, xc[j] + base, nt);
                continue;
            }
#endif
            (void)avx2;
            out[j][m] = dot_base(w, xc[j] + base, nt);
        }
    }
}

static void resample_base(dsp_stream_t *s, const int *chs, int n, double pos, double len,
                          int npoints)
{
    resample_body(s, chs, n, pos, len, npoints, 0);
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2,fma"))) static void
resample_avx2(dsp_stream_t *s, const int *chs, int n, double pos, double len, int npoints)
{
    resample_body(s, chs, n, pos, len, npoints, 1);
}
#endif

/* The variant for this CPU (the check is a lookup in data the runtime filled at start-up).
 * GS_DSP_PORTABLE set in the environment selects the portable loop everywhere: the unit tests
 * compare the two (test_resample_paths_agree), and it gives a machine's figures without AVX2. */
static resample_fn_t resample_fn(void)
{
    if (getenv("GS_DSP_PORTABLE"))
        return resample_base;
#ifdef HAVE_AVX2_PATH
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return resample_avx2;
#endif
    return resample_base;
}

/* Resamples channels `chs` over [pos, pos + len) onto `npoints` points of the N-point grid. */
static void resample_points(dsp_stream_t *s, const int *chs, int n, double pos, double len,
                            int npoints)
{
    s->resample(s, chs, n, pos, len, npoints);
}

static void resample(dsp_stream_t *s, const int *chs, int n, double pos, double len)
{
    resample_points(s, chs, n, pos, len, s->N);
}

/* Per-cycle fundamental phasors Y_i = sum over cycle i of x_m e^{-j 2 pi m / M}. Their sum is
 * DFT bin C of the window; their phase progression measures the frequency error. */
static void cycle_phasors(const dsp_stream_t *s, const double *x, double complex *y)
{
    for (int i = 0; i < s->C; i++) {
        const double *xi = x + (size_t)i * s->M;
        double re = 0, im = 0;
#pragma omp simd reduction(+ : re, im)
        for (int m = 0; m < s->M; m++) {
            re += xi[m] * s->kc[m];
            im -= xi[m] * s->ks[m];
        }
        y[i] = re + im * I;
    }
}

/* Reference phasors per cycle: the positive sequence of the three phase voltages when present
 * (immune to unbalance), else the single reference channel. */
static void ref_phasors(dsp_stream_t *s, double complex *y, double *rms)
{
    double complex a = cexp(I * 2 * M_PI / 3);
    double complex tmp[3][12];
    double ss = 0;
    for (int r = 0; r < s->nref; r++) {
        cycle_phasors(s, s->x[s->refch[r]], tmp[r]);
        const double *x = s->x[s->refch[r]];
#pragma omp simd reduction(+ : ss)
        for (int m = 0; m < s->N; m++)
            ss += x[m] * x[m];
    }
    *rms = sqrt(ss / s->N / s->nref);
    for (int i = 0; i < s->C; i++)
        y[i] = s->ref_posseq ? (tmp[0][i] + a * tmp[1][i] + a * a * tmp[2][i]) / 3 : tmp[0][i];
}

/* ---- one basic window --------------------------------------------------------------------- */

/* Keeps a frequency estimate in the tracking range; NaN (from overflowing input) becomes the
 * lower bound rather than poisoning the window length. */
static double clamp_f(const dsp_stream_t *s, double f)
{
    if (!(f >= FMIN_REL * s->f0))
        return FMIN_REL * s->f0;
    if (f > FMAX_REL * s->f0)
        return FMAX_REL * s->f0;
    return f;
}

/* Fundamental usable for tracking: it dominates the reference signal and is above 5 % of the
 * voltage reference level (an interruption holds the frequency instead of chasing noise). */
static int usable(const dsp_stream_t *s, double fund, double rms)
{
    if (!(fund > 0) || fund < 0.2 * rms)
        return 0;
    double level = s->cfg.declared_v > 0 ? s->cfg.declared_v : s->ev.usr;
    if (s->cfg.ch[s->refch[0]].kind == DSP_KIND_VOLTAGE && level > 0 && fund < 0.05 * level)
        return 0;
    return 1;
}

static void channel_results(dsp_stream_t *s, int c, double eps, double ref_phase)
{
    dsp_chan_result_t *r = &s->w.ch[c];
    const double *x = s->x[c];
    int N = s->N, C = s->C, M = s->M;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int m = 0; m < N; m++)
        ss += x[m] * x[m];
    r->rms = sqrt(ss / N);

    fftw_execute_dft_r2c(s->plan, s->x[c], s->spec);
    const fftw_complex *X = s->spec;
    r->dc = s->cfg.dc_removal ? s->dcv[c] : creal(X[0]) / N;

    /* Fundamental: bin C is the phasor at the window centre (grid point N/2) up to a phase
     * term pi C eps / N from the residual frequency error (derivation in docs/dsp.md). */
    double complex xc = X[C] * (M_SQRT2 / N);
    double ang = carg(xc) + M_PI * C * eps / N - ref_phase;
    s->fund[c] = cabs(xc) * cexp(I * ang);
    r->fund_mag = cabs(xc);
    r->fund_ang = wrap_pi(ang);

    /* Synchrophasor: DFT over the centred `phasor_cycles` cycles, kernel phase zero at N/2 (a
     * multiple of M), so it also refers to the window centre. */
    int P = s->cfg.phasor_cycles, m0 = N / 2 - P * M / 2;
    double re = 0, im = 0;
    for (int m = m0; m < m0 + P * M; m++) {
        int k = m % M;
        re += x[m] * s->kc[k];
        im -= x[m] * s->ks[k];
    }
    double complex z = (re + im * I) * (M_SQRT2 / (P * M));
    r->ph_mag = cabs(z);
    r->ph_ang = wrap_pi(carg(z) - ref_phase);

    /* Harmonic and interharmonic (sub)groups, IEC 61000-4-7 3.2-3.3 (50 Hz: C = 10, 5 Hz bins;
     * 60 Hz: C = 12). e[k] is the mean-square contribution of bin k. */
    int half = C / 2, hmax = s->hmax_win;
    r->hmax = hmax;
    double norm = 2.0 / ((double)N * N);
    /* kcomp: the interpolation kernel's known response divided out per bin (kernel.c) */
#define E(k) (norm * s->kcomp[k] * (creal(X[k]) * creal(X[k]) + cimag(X[k]) * cimag(X[k])))
    r->hg[0] = r->hsg[0] = fabs(r->dc);
    for (int h = 1; h <= hmax; h++) {
        int b = h * C;
        double g = 0.5 * (E(b - half) + E(b + half)), sg = 0;
        for (int k = b - half + 1; k <= b + half - 1; k++)
            g += E(k);
        for (int k = b - 1; k <= b + 1; k++)
            sg += E(k);
        r->hg[h] = sqrt(g);
        r->hsg[h] = sqrt(sg);
    }
    for (int h = 0; h < hmax; h++) {
        int b = h * C;
        double g = 0, sg = 0;
        for (int k = b + 1; k <= b + C - 1; k++)
            g += E(k);
        for (int k = b + 2; k <= b + C - 2; k++)
            sg += E(k);
        r->ihg[h] = sqrt(g);
        r->ihsg[h] = sqrt(sg);
    }
#undef E
    /* Harmonic phase angles relative to the fundamental, phi_h - h phi_1 (dsp.h). Both angles
     * are read at the window centre, where the kernel of every bin hC (C even) has phase 0; the
     * residual-frequency term pi h C eps / N of bin hC equals h times that of bin C and cancels,
     * and so does the UTC reference. */
    double a1 = carg(X[C]), m1 = cabs(X[C]);
    r->hang[0] = NAN;
    r->hang[1] = m1 > 0 ? 0 : NAN;
    for (int h = 2; h <= hmax; h++) {
        double mh = cabs(X[h * C]);
        r->hang[h] = m1 > 0 && mh >= HANG_FLOOR * m1 ? wrap_pi(carg(X[h * C]) - h * a1) : NAN;
    }
    for (int h = hmax + 1; h <= DSP_MAX_H; h++)
        r->hang[h] = NAN;
    for (int h = hmax + 1; h <= DSP_MAX_H; h++)
        r->hg[h] = r->hsg[h] = r->ihg[h] = r->ihsg[h] = 0;
    r->ihg[hmax] = r->ihsg[hmax] = 0;
    double t = 0, ts = 0;
    for (int h = 2; h <= hmax; h++) {
        t += r->hg[h] * r->hg[h];
        ts += r->hsg[h] * r->hsg[h];
    }
    r->thd = r->hg[1] > 0 ? sqrt(t) / r->hg[1] : 0;
    r->thds = r->hsg[1] > 0 ? sqrt(ts) / r->hsg[1] : 0;
}

static void seq_components(const double complex *ph, double *mag, double *ang, double *r0,
                           double *r2)
{
    double complex a = cexp(I * 2 * M_PI / 3), a2 = a * a;
    double complex s0 = (ph[0] + ph[1] + ph[2]) / 3;
    double complex s1 = (ph[0] + a * ph[1] + a2 * ph[2]) / 3;
    double complex s2 = (ph[0] + a2 * ph[1] + a * ph[2]) / 3;
    double complex sq[3] = {s0, s1, s2};
    for (int k = 0; k < 3; k++) {
        mag[k] = cabs(sq[k]);
        ang[k] = wrap_pi(carg(sq[k]));
    }
    /* 4-30 5.7.1: u0 = |U0|/|U1|, u2 = |U2|/|U1| */
    *r0 = mag[1] > 0 ? mag[0] / mag[1] : 0;
    *r2 = mag[1] > 0 ? mag[2] / mag[1] : 0;
}

static double mean_sq(const double *x, int n)
{
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int m = 0; m < n; m++)
        ss += x[m] * x[m];
    return ss / n;
}

static void three_phase(dsp_stream_t *s)
{
    dsp_window_t *w = &s->w;
    int N = s->N;
    w->has_v3 = s->vabc[0] >= 0 && s->vabc[1] >= 0 && s->vabc[2] >= 0;
    w->has_i3 = s->iabc[0] >= 0 && s->iabc[1] >= 0 && s->iabc[2] >= 0;
    double vll2[3] = {0, 0, 0};
    if (w->has_v3) {
        double complex ph[3];
        for (int p = 0; p < 3; p++)
            ph[p] = s->fund[s->vabc[p]];
        seq_components(ph, w->v_seq_mag, w->v_seq_ang, &w->u0, &w->u2);
        for (int p = 0; p < 3; p++) { /* derived line-to-line: AB, BC, CA */
            const double *a = s->x[s->vabc[p]], *b = s->x[s->vabc[(p + 1) % 3]];
            for (int m = 0; m < N; m++)
                s->tmp[m] = a[m] - b[m];
            vll2[p] = mean_sq(s->tmp, N);
            w->vll_rms[p] = sqrt(vll2[p]);
            w->vll_fund[p] = cabs(ph[p] - ph[(p + 1) % 3]);
        }
    }
    if (w->has_i3) {
        double complex ph[3];
        for (int p = 0; p < 3; p++)
            ph[p] = s->fund[s->iabc[p]];
        seq_components(ph, w->i_seq_mag, w->i_seq_ang, &w->i0, &w->i2);
    }
    /* Power per IEEE 1459-2010: P = mean(v i) includes every frequency; Q is the fundamental
     * reactive power Q1 = V1 I1 sin(theta_v - theta_i); S = Vrms Irms; PF = P / S. */
    w->power_mask = 0;
    for (int p = 0; p < 3; p++) {
        int v = s->vabc[p], i = s->iabc[p];
        if (v < 0 || i < 0)
            continue;
        const double *xv = s->x[v], *xi = s->x[i];
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int m = 0; m < N; m++)
            acc += xv[m] * xi[m];
        dsp_power_t *pw = &w->pw[p];
        pw->p = acc / N;
        pw->q = cimag(s->fund[v] * conj(s->fund[i]));
        pw->s = w->ch[v].rms * w->ch[i].rms;
        pw->pf = pw->s > 0 ? pw->p / pw->s : 0;
        w->power_mask |= 1u << p;
    }
    if (w->power_mask == 7 && w->has_v3) {
        /* Effective apparent power for four-wire systems, IEEE 1459-2010 3.2.2.8:
         * Ve^2 = (3 (Va^2 + Vb^2 + Vc^2) + Vab^2 + Vbc^2 + Vca^2) / 18,
         * Ie^2 = (Ia^2 + Ib^2 + Ic^2 + In^2) / 3, Se = 3 Ve Ie. In is measured when a neutral
         * current channel exists, else computed as ia + ib + ic. */
        double va2 = 0, ia2 = 0;
        for (int p = 0; p < 3; p++) {
            va2 += w->ch[s->vabc[p]].rms * w->ch[s->vabc[p]].rms;
            ia2 += w->ch[s->iabc[p]].rms * w->ch[s->iabc[p]].rms;
        }
        double in2;
        if (s->in_ch >= 0) {
            in2 = w->ch[s->in_ch].rms * w->ch[s->in_ch].rms;
        } else {
            const double *a = s->x[s->iabc[0]], *b = s->x[s->iabc[1]], *c = s->x[s->iabc[2]];
            for (int m = 0; m < N; m++)
                s->tmp[m] = a[m] + b[m] + c[m];
            in2 = mean_sq(s->tmp, N);
        }
        double ve = sqrt((3 * va2 + vll2[0] + vll2[1] + vll2[2]) / 18);
        double ie = sqrt((ia2 + in2) / 3);
        w->p_tot = w->pw[0].p + w->pw[1].p + w->pw[2].p;
        w->q_tot = w->pw[0].q + w->pw[1].q + w->pw[2].q;
        w->s_eff = 3 * ve * ie;
        w->pf_tot = w->s_eff > 0 ? w->p_tot / w->s_eff : 0;
    }
}

/* Urms(1/2): RMS over one cycle, refreshed every half cycle (4-30 5.4.2.1), on the resampled
 * grid where a cycle is exactly M points. Value j covers half cycles j-1 and j and is stamped at
 * their boundary, the centre of its cycle. Returns 1 if any value lay within an event. */
static int half_cycle_rms(dsp_stream_t *s, double pos, double len)
{
    int H = s->M / 2, nh = 2 * s->C, flagged = 0;
    double hs[DSP_MAX_CH][24];
    for (int c = 0; c < s->nch; c++) {
        const double *x = s->x[c];
        for (int j = 0; j < nh; j++) {
            double acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int m = j * H; m < (j + 1) * H; m++)
                acc += x[m] * x[m];
            hs[c][j] = acc;
        }
        s->w.ch[c].urms_half_min = INFINITY;
        s->w.ch[c].urms_half_max = 0;
    }
    double u[DSP_MAX_CH];
    for (int j = s->have_prev_half ? 0 : 1; j < nh; j++) {
        for (int c = 0; c < s->nch; c++) {
            double prev = j > 0 ? hs[c][j - 1] : s->prev_half[c];
            double v = sqrt((prev + hs[c][j]) / s->M);
            dsp_chan_result_t *r = &s->w.ch[c];
            if (v < r->urms_half_min)
                r->urms_half_min = v;
            if (v > r->urms_half_max)
                r->urms_half_max = v;
        }
        if (s->nev > 0) {
            for (int k = 0; k < s->nev; k++) {
                int c = s->evch[k];
                double prev = j > 0 ? hs[c][j - 1] : s->prev_half[c];
                u[k] = sqrt((prev + hs[c][j]) / s->M);
            }
            int64_t t = pos_time(s, pos + len * j / nh);
            flagged |= dsp__events_step(&s->ev, &s->cfg, &s->sink, t, u, s->evch, s->nev);
        }
    }
    for (int c = 0; c < s->nch; c++) {
        s->prev_half[c] = hs[c][nh - 1];
        if (!isfinite(s->w.ch[c].urms_half_min))
            s->w.ch[c].urms_half_min = 0;
    }
    s->have_prev_half = 1;
    return flagged;
}

/* The harmonic orders this window reports and the kernel compensation of its DFT bins. Bin k
 * of the grid (C cycles of f_grid in N points) lies at nu = 2 k f_grid / (C fs) of the input
 * Nyquist frequency; the resampled signal holds a tone there with the kernel's gain H(nu), so
 * its power is divided by H^2 (floored at 0.25^2 for the top bins of the highest group, which
 * hold only interharmonic content near Nyquist). Orders: up to 50 (4-30 5.8), while the group's
 * bins fit the spectrum, and while h f_grid lies within the kernel's reach. */
static void harmonic_grid(dsp_stream_t *s, double len)
{
    int C = s->C, half = C / 2, nyq = s->N / 2;
    s->f_grid = C * s->fs / len;
    int hmax = (nyq - 1 - half) / C;
    int hr = (int)floor(s->reach_hz / s->f_grid);
    if (hmax > hr)
        hmax = hr;
    if (hmax > DSP_MAX_H)
        hmax = DSP_MAX_H;
    if (hmax < 1)
        hmax = 1;
    s->hmax_win = hmax;
    int top = hmax * C + half;
    if (top > nyq)
        top = nyq;
    for (int k = 0; k <= top; k++) {
        double hk = dsp__kernel_resp(s->kern, 2.0 * k * s->f_grid / (C * s->fs));
        if (hk < 0.25)
            hk = 0.25;
        s->kcomp[k] = 1 / (hk * hk);
    }
}

/* ---- DC removal --------------------------------------------------------------------------- */

/* What is removed is the offset of the signal chain (an ADC or sensor offset): constant, or
 * drifting with temperature over minutes. A window's own mean is that offset only while the
 * window is stationary: a window holding an event edge holds a partial cycle of a different
 * amplitude, and its mean is then up to (A_before - A_after) / (pi C) of leftover of that cycle
 * (2.6 V for an interruption of a 57.7-V phase at 50 Hz), which the window's own subtraction
 * turned into a residual of ~1 V where the truth was 0.044 V. So the offset removed is an
 * exponential average of the means of stationary windows with a time constant of DC_TAU_S: an
 * event edge cannot move it (the windows around it are not stationary), a genuine change of the
 * offset (a terminal's
 * recalibration, a DC-coupled sensor's drift, real DC injection that persists) is followed
 * within a few time constants, and a transient DC component (a decaying fault or inrush offset,
 * which is part of the true RMS) is not removed. */
#define DC_TAU_S 5.0 /* time constant of the offset tracker, seconds */
/* A window whose one-cycle RMS values spread by more than this fraction of their maximum is not
 * stationary (a change too small to be an event still leaves partial-cycle leftover in its
 * mean): its mean is not used. */
#define DC_SPREAD 0.05

/* Subtracts the tracked offset from every channel of the resampled window (before RMS,
 * Urms(1/2), power and line-to-line values). Until a channel's tracker holds a value (the first
 * two windows of a stream, or a channel that is never stationary) the window's own mean is
 * used, as the best estimate available. Records each window's mean in dcv (reported as `dc`). */
static void dc_remove(dsp_stream_t *s)
{
    for (int c = 0; c < s->nch; c++) {
        double *x = s->x[c], m = 0;
#pragma omp simd reduction(+ : m)
        for (int k = 0; k < s->N; k++)
            m += x[k];
        m /= s->N;
        s->dcv[c] = m;
        double off = s->dc_n[c] > 0 ? s->dc_est[c] : m;
        s->w.ch[c].dc_removed = off;
#pragma omp simd
        for (int k = 0; k < s->N; k++)
            x[k] -= off;
    }
}

/* Feeds the tracker after a window is analysed. A window's mean is accepted when that window
 * and the next one are both clean: frequency not held, and the channel's one-cycle RMS spread
 * within DC_SPREAD. Waiting for the next window catches an edge late in a window, which only
 * the next window's first one-cycle value straddles. The 4-30 event flag does not exclude a
 * window: the edges of an event are what corrupts a mean, and they fail the spread test; the
 * stationary windows inside a long dip or swell hold the offset like any other. Excluding them
 * would lock up on a genuine offset step large enough to lift the RMS past the swell
 * threshold: the swell the unremoved offset causes would flag every window that could remove
 * it. The first accepted means are averaged (1/n) until the time constant's weight takes over,
 * so the tracker starts at once. */
static void dc_track(dsp_stream_t *s, double len)
{
    const dsp_window_t *w = &s->w;
    int clean = !(w->flags & DSP_F_FREQ_HELD);
    double alpha = (len / s->fs) / DC_TAU_S;
    for (int c = 0; c < s->nch; c++) {
        const dsp_chan_result_t *r = &w->ch[c];
        int ok = clean && isfinite(s->dcv[c]) &&
                 r->urms_half_max - r->urms_half_min <= DC_SPREAD * r->urms_half_max;
        if (ok && s->dc_pend_ok[c]) {
            double a = 1.0 / ((double)s->dc_n[c] + 1);
            if (a < alpha)
                a = alpha;
            s->dc_est[c] += a * (s->dc_pend[c] - s->dc_est[c]);
            if (s->dc_n[c] < UINT32_MAX)
                s->dc_n[c]++;
        }
        s->dc_pend[c] = s->dcv[c];
        s->dc_pend_ok[c] = ok;
    }
}

/* The offset to remove from channel c outside a basic window (the tail at a gap). */
static double dc_offset(const dsp_stream_t *s, int c)
{
    return s->dc_n[c] > 0 ? s->dc_est[c] : s->dcv[c];
}

static void analyse_window(dsp_stream_t *s)
{
    dsp_window_t *w = &s->w;
    double complex y[12];
    double f = s->f_hint, f_meas = f, eps = 0, len = 0, rms_ref = 0;
    int held = 0;

    /* Frequency tracking: resample the reference at the current estimate, measure the residual
     * error from the phase progression of the fundamental, repeat until the window spans C
     * cycles within FINE_TOL. Far off (acquisition), the per-cycle phase step is unambiguous
     * up to half a cycle; close in, the two half windows give the precise figure. */
    /* The lowest frequency the samples at hand allow (a longer window would read ahead). */
    double f_avail = s->C * s->fs / ((double)s->nw - s->kern->kh - 2 - s->pos);
    /* In steady state the first pass is final (the prediction is within FINE_TOL), so it
     * resamples every channel at once: one set of kernel weights per point instead of two.
     * all_fresh: the last pass covered every channel at the current len. */
    int all[DSP_MAX_CH], all_fresh = 0;
    for (int c = 0; c < s->nch; c++)
        all[c] = c;
    for (int it = 0; it < MAX_ITER; it++) {
        if (f < f_avail)
            f = f_avail;
        len = s->C * s->fs / f;
        all_fresh = it == 0 && !s->acquiring;
        if (all_fresh)
            resample(s, all, s->nch, s->pos, len);
        else
            resample(s, s->refch, s->nref, s->pos, len);
        ref_phasors(s, y, &rms_ref);
        double complex h1 = 0, h2 = 0, steps = 0;
        double amp = 0; /* mean per-cycle magnitude: the whole-window sum cancels far off */
        for (int i = 0; i < s->C; i++) {
            amp += cabs(y[i]);
            if (i < s->C / 2)
                h1 += y[i];
            else
                h2 += y[i];
            if (i > 0)
                steps += y[i] * conj(y[i - 1]);
        }
        if (!isfinite(amp) || !isfinite(rms_ref) || !usable(s, amp * M_SQRT2 / s->N, rms_ref)) {
            held = 1;
            break;
        }
        double ec = carg(steps) / (2 * M_PI);
        if ((s->acquiring || it == 0) && fabs(ec) > COARSE_TOL) {
            f = clamp_f(s, f * (1 + ec));
            continue;
        }
        eps = carg(h2 * conj(h1)) / (M_PI * s->C);
        f_meas = f * (1 + eps);
        if (!isfinite(f_meas)) {
            held = 1;
            break;
        }
        if (fabs(eps) < FINE_TOL || it == MAX_ITER - 1)
            break;
        f = clamp_f(s, f_meas);
    }

    memset(w, 0, sizeof *w);
    w->nch = s->nch;
    w->index = s->nwin++;
    w->flags = (s->push_flags & DSP_F_TIME_UNSYNC) | (s->resync_next ? DSP_F_RESYNC : 0);
    if (held) {
        /* the last good frequency, within the range the look-ahead was sized for */
        f = clamp_f(s, s->have_last ? s->f_last : s->f_hint);
        if (f < f_avail)
            f = f_avail;
        f_meas = f;
        eps = 0;
        len = s->C * s->fs / f;
        w->flags |= DSP_F_FREQ_HELD | DSP_F_NO_ROCOF;
        s->acquiring = 1;
        resample(s, all, s->nch, s->pos, len);
    } else {
        s->acquiring = 0;
        int rest[DSP_MAX_CH], n = 0;
        for (int c = 0; c < s->nch && !all_fresh; c++) {
            int is_ref = 0;
            for (int r = 0; r < s->nref; r++)
                is_ref |= s->refch[r] == c;
            if (!is_ref)
                rest[n++] = c;
        }
        if (n)
            resample(s, rest, n, s->pos, len);
    }

    harmonic_grid(s, len);
    w->t_start_ns = pos_time(s, s->pos);
    w->t_end_ns = pos_time(s, s->pos + len);
    w->t_ref_ns = pos_time(s, s->pos + len / 2);
    w->freq = f_meas;
    double ref_phase = utc_ref_phase(w->t_ref_ns, s->f0);

    if (s->cfg.dc_removal)
        dc_remove(s);
    if (half_cycle_rms(s, s->pos, len))
        w->flags |= DSP_F_EVENT;
    for (int c = 0; c < s->nch; c++)
        channel_results(s, c, f_meas / f - 1, ref_phase);
    three_phase(s);
    if (s->cfg.dc_removal)
        dc_track(s, len);

    if (!held && s->have_last && w->t_ref_ns > s->tref_last) {
        w->rocof = (f_meas - s->f_last) / ((double)(w->t_ref_ns - s->tref_last) / 1e9);
    } else {
        w->flags |= DSP_F_NO_ROCOF;
    }
    if (!held) {
        s->f_last = f_meas;
        s->tref_last = w->t_ref_ns;
        s->have_last = 1;
        double rocof = (w->flags & DSP_F_NO_ROCOF) ? 0 : w->rocof;
        /* Predict the next window's frequency: a ramp continues, anything else stays. */
        double r = fabs(rocof) < 5 ? rocof : 0;
        s->f_hint = clamp_f(s, f_meas + r * len / s->fs);
    }

    /* Sliding reference voltage, 4-30 5.4.4: Usr(n) = 0.9967 Usr(n-1) + 0.0033 U10/12rms, from
     * unflagged windows (mean of the event channels). */
    if (s->nev > 0 && !(w->flags & (DSP_F_EVENT | DSP_F_FREQ_HELD))) {
        double m = 0;
        for (int k = 0; k < s->nev; k++)
            m += w->ch[s->evch[k]].rms;
        m /= s->nev;
        s->ev.usr = s->ev.usr > 0 ? 0.9967 * s->ev.usr + 0.0033 * m : m;
    }

    if (s->sink.window)
        s->sink.window(s->sink.ud, w);
    aggregate(s, w);

    /* Next window: gapless, except that a window containing a 10-min tick is followed by one
     * starting at the tick (4-30 4.6 resynchronisation; the two overlap). */
    double next = s->pos + len;
    s->resync_next = 0;
    if (s->cfg.resync_10min) {
        int64_t tick = (floor_div(w->t_start_ns, TEN_MIN_NS) + 1) * TEN_MIN_NS;
        if (tick > w->t_start_ns && tick < w->t_end_ns) {
            double p = time_pos(s, tick);
            if (p > s->pos && p < next) {
                next = p;
                s->resync_next = 1;
                s->have_prev_half = 0;
            }
        }
    }
    s->pos = next;
}

static void process_ready(dsp_stream_t *s)
{
    for (;;) {
        double margin = s->acquiring ? 1.0 / FMIN_REL - 1 + 0.05 : 0.03;
        double len = s->C * s->fs / s->f_hint;
        double need = s->pos + len * (1 + margin) + s->kern->kh + 2;
        if ((double)s->nw < need)
            break;
        analyse_window(s);
    }
}

/* ---- input -------------------------------------------------------------------------------- */

/* The samples after the last complete window, at a gap or the end of the input: not enough
 * for a basic window, but their whole half cycles still go through event detection (a dip in
 * the last 100 ms before a gap must not vanish), resampled at the last frequency. */
static void tail_events(dsp_stream_t *s)
{
    if (s->nev == 0 || !s->have_last || !s->have_prev_half)
        return;
    double len = s->C * s->fs / s->f_last; /* a full window's span, for the grid step */
    double avail = (double)s->nw - s->kern->kh - 2 - s->pos;
    int H = s->M / 2;
    double half_len = len / (2 * s->C);
    int nh = avail > 0 ? (int)floor(avail / half_len) : 0;
    if (nh > 2 * s->C - 1)
        nh = 2 * s->C - 1;
    if (nh < 1)
        return;
    resample_points(s, s->evch, s->nev, s->pos, len, nh * H);
    if (s->cfg.dc_removal) /* the same definition as inside the windows */
        for (int k = 0; k < s->nev; k++) {
            double *x = s->x[s->evch[k]], off = dc_offset(s, s->evch[k]);
            for (int m = 0; m < nh * H; m++)
                x[m] -= off;
        }
    double u[DSP_MAX_CH], hs_prev[DSP_MAX_CH];
    for (int k = 0; k < s->nev; k++)
        hs_prev[k] = s->prev_half[s->evch[k]];
    for (int j = 0; j < nh; j++) {
        for (int k = 0; k < s->nev; k++) {
            const double *x = s->x[s->evch[k]] + (size_t)j * H;
            double acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int m = 0; m < H; m++)
                acc += x[m] * x[m];
            u[k] = sqrt((hs_prev[k] + acc) / s->M);
            hs_prev[k] = acc;
        }
        int64_t t = pos_time(s, s->pos + len * j / (2 * s->C));
        dsp__events_step(&s->ev, &s->cfg, &s->sink, t, u, s->evch, s->nev);
    }
}

static void end_segment(dsp_stream_t *s)
{
    if (!s->in_seg)
        return;
    tail_events(s);
    dsp__events_end(&s->ev, &s->cfg, &s->sink);
    close_3s(s);
    if (s->a10_on)
        s->a10.gap = 1;
    if (s->f10_on)
        s->f10_gap = 1;
    s->in_seg = 0;
}

static void start_segment(dsp_stream_t *s, int64_t t0)
{
    s->in_seg = 1;
    s->anchor_t = t0;
    s->anchor_in = 0;
    s->nin = 0;
    s->din = 0;
    s->nw = 0;
    s->pos = s->kern->kh; /* the kernel reaches kh - 1 samples back */
    s->off = s->decim > 1 ? (uint64_t)(s->ndtaps - 1) / 2 : 0;
    s->acquiring = 1;
    s->resync_next = 0;
    s->have_last = 0;
    s->have_prev_half = 0;
    /* The offset tracker keeps its value across a gap (it belongs to the terminal's hardware),
     * but the window before the gap is not adjacent to the next one. */
    for (int c = 0; c < s->nch; c++)
        s->dc_pend_ok[c] = 0;
    /* time jumps back after a gap: do not keep skipping "already counted" 10-s time */
    s->f10_covered = INT64_MIN;
    if (s->decim > 1)
        memset(s->dhist, 0, sizeof(double) * (size_t)(s->dhmask + 1) * (size_t)s->nch);
}

static void append(dsp_stream_t *s, const double *v) /* one sample set, engineering units */
{
    s->nin++;
    if (s->decim == 1) {
        uint64_t at = s->nw & s->mask;
        for (int c = 0; c < s->nch; c++)
            ring_put(s, c, at, (float)v[c]);
        s->nw++;
        return;
    }
    int hp = s->dhmask + 1;
    uint64_t at = s->din & (uint64_t)s->dhmask;
    for (int c = 0; c < s->nch; c++)
        s->dhist[(size_t)c * hp + at] = v[c];
    s->din++;
    /* Output for centre input index (din - 1 - half) = off + j * decim. */
    if (s->din < (uint64_t)s->ndtaps || (s->din - (uint64_t)s->ndtaps) % (uint64_t)s->decim != 0)
        return;
    uint64_t first = s->din - (uint64_t)s->ndtaps, ring_at = s->nw & s->mask;
    for (int c = 0; c < s->nch; c++) {
        const double *h = s->dhist + (size_t)c * hp;
        double acc = 0;
        for (int k = 0; k < s->ndtaps; k++)
            acc += s->dtaps[k] * h[(first + (uint64_t)k) & (uint64_t)s->dhmask];
        ring_put(s, c, ring_at, (float)acc);
    }
    s->nw++;
}

static double sample_at(const void *samples, int fmt, size_t idx)
{
    switch (fmt) {
    case DSP_FMT_I16: {
        int16_t v;
        memcpy(&v, (const uint8_t *)samples + idx * 2, 2);
        return v;
    }
    case DSP_FMT_I32: {
        int32_t v;
        memcpy(&v, (const uint8_t *)samples + idx * 4, 4);
        return v;
    }
    case DSP_FMT_F32: {
        float v;
        memcpy(&v, (const uint8_t *)samples + idx * 4, 4);
        return v;
    }
    default: {
        double v;
        memcpy(&v, (const uint8_t *)samples + idx * 8, 8);
        return v;
    }
    }
}

/* Largest magnitude accepted after scaling: beyond it a value is treated as missing (sums of
 * squares and the float ring would overflow; no instrument transformer secondary is near it). */
#define MAX_VALUE 1e30

/* Converts sample set `first`..+n of the input to engineering units; returns 0 if a value is
 * not finite or beyond MAX_VALUE (a wild channel scale). memcpy: the input need not be
 * aligned. */
static int convert_set(const void *samples, int fmt, size_t first, int n, const double *scale,
                       double *v)
{
    const uint8_t *b = samples;
    switch (fmt) {
    case DSP_FMT_I16: {
        int ok = 1;
        for (int c = 0; c < n; c++) {
            int16_t x;
            memcpy(&x, b + (first + (size_t)c) * 2, 2);
            v[c] = x * scale[c];
            ok &= fabs(v[c]) <= MAX_VALUE;
        }
        return ok;
    }
    case DSP_FMT_I32: {
        int ok = 1;
        for (int c = 0; c < n; c++) {
            int32_t x;
            memcpy(&x, b + (first + (size_t)c) * 4, 4);
            v[c] = x * scale[c];
            ok &= fabs(v[c]) <= MAX_VALUE;
        }
        return ok;
    }
    default: {
        int ok = 1;
        for (int c = 0; c < n; c++) {
            v[c] = sample_at(samples, fmt, first + (size_t)c) * scale[c];
            ok &= fabs(v[c]) <= MAX_VALUE; /* false for NaN too */
        }
        return ok;
    }
    }
}

static void report_gap(dsp_stream_t *s, int64_t from, int64_t to)
{
    if (s->sink.gap) {
        dsp_gap_t g = {from, to};
        s->sink.gap(s->sink.ud, &g);
    }
}

int dsp_stream_push(dsp_stream_t *s, int64_t t0_ns, int fmt, const void *samples, size_t nsets,
                    uint32_t flags)
{
    if (fmt < DSP_FMT_I16 || fmt > DSP_FMT_F64 || (nsets > 0 && !samples) ||
        nsets > (size_t)1 << 30)
        return GS_EINVAL;
    /* UTC 1970..2199: keeps every tick computation (10 s .. 2 h keys, their ends) far from
     * int64 overflow whatever a terminal or file claims. */
    if (t0_ns < 0 || t0_ns >= DSP_MAX_TIME_NS)
        return GS_ERANGE;
    if (nsets == 0)
        return 0;
    s->push_flags = flags;
    double period_ns = 1e9 / s->fs_in;
    if (s->in_seg) {
        /* int64 arithmetic for the epoch part: a double holds epoch ns only to 256 ns */
        int64_t expected =
            s->anchor_t + (int64_t)llround((double)(s->nin - s->anchor_in) * period_ns);
        if (fabs((double)(t0_ns - expected)) > 0.5 * period_ns) {
            report_gap(s, expected, t0_ns);
            end_segment(s);
        }
    }
    if (!s->in_seg)
        start_segment(s, t0_ns);
    else { /* re-anchor: follow the terminal's clock, absorbing sub-sample jitter */
        s->anchor_t = t0_ns;
        s->anchor_in = s->nin;
    }

    double v[DSP_MAX_CH], scale[DSP_MAX_CH];
    for (int c = 0; c < s->nch; c++)
        scale[c] = s->cfg.ch[c].scale;
    int gap_open = 0;
    int64_t gap_from = 0;
    for (size_t i = 0; i < nsets; i++) {
        int finite = convert_set(samples, fmt, i * (size_t)s->nch, s->nch, scale, v);
        if (!finite) { /* missing values end the segment; analysis resumes after them */
            if (s->in_seg) {
                gap_open = 1;
                gap_from = t0_ns + (int64_t)llround((double)i * period_ns);
                end_segment(s);
            }
            continue;
        }
        if (gap_open || !s->in_seg) { /* times only where a segment breaks or starts */
            int64_t t_i = t0_ns + (int64_t)llround((double)i * period_ns);
            if (gap_open) {
                report_gap(s, gap_from, t_i);
                gap_open = 0;
            }
            if (!s->in_seg)
                start_segment(s, t_i);
        }
        append(s, v);
        if ((s->nin & (CHUNK - 1)) == 0)
            process_ready(s);
    }
    if (gap_open)
        report_gap(s, gap_from, t0_ns + (int64_t)llround((double)nsets * period_ns));
    process_ready(s);
    return 0;
}

void dsp_stream_flush(dsp_stream_t *s)
{
    end_segment(s);
    close_10min(s);
    close_2h(s);
    close_f10(s);
}
