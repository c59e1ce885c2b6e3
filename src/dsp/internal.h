/* Internal interfaces of the analysis engine (not part of the contract in dsp.h). */
#ifndef GS_DSP_INTERNAL_H
#define GS_DSP_INTERNAL_H

#include "dsp/dsp.h"

/* complex.h first: fftw_complex is then C99 double complex */
#include <complex.h>
#include <fftw3.h>

/* ---- Memory (fft.c) -----------------------------------------------------------------------------
 */

/* Allocation that aborts on failure, as everywhere in gridsense (the module does not link
 * gs_core, so that it stays free of I/O and event-loop code). */
void *dsp__malloc(size_t n);
void *dsp__calloc(size_t count, size_t n);

/* ---- FFT plans (fft.c) ------------------------------------------------------------------------
 */

/* Returns the r2c plan for length n, creating it under the planner lock on first use. Cached
 * plans live until process exit and are shared by all streams (fftw_execute_dft_r2c is
 * thread-safe). If the cache is full, *owned is set and the caller must free the plan with
 * dsp__plan_release. */
fftw_plan dsp__plan_r2c(int n, int *owned);
void dsp__plan_release(fftw_plan p);

/* ---- Interpolation kernel and decimator (kernel.c) --------------------------------------------
 */

#define DSP_KH_MAX  64   /* largest interpolation kernel half-width (input samples) */
#define DSP_KPHASES 512  /* tabulated fractional phases */
#define DSP_KRESP   2048 /* frequency response points from 0 to the input Nyquist frequency */

/* A Kaiser-windowed sinc for fractional-delay interpolation (resampling onto the window grid).
 * Zero-phase, so its frequency response is real and, being known, is divided out of the
 * harmonic DFT bins (stream.c). */
typedef struct {
    int kh;             /* half-width: 2 kh taps */
    double cutoff;      /* sinc cut-off, fraction of the input Nyquist frequency */
    double beta;        /* Kaiser window parameter */
    double reach;       /* harmonic orders are reported up to this fraction of Nyquist (stream.c) */
    const float *tab;   /* row p (0..DSP_KPHASES): the 2 kh weights for a fractional offset
                         * p / DSP_KPHASES, normalised to unit DC gain (double, stored as float) */
    const double *resp; /* response at nu = i / DSP_KRESP of Nyquist, i = 0..DSP_KRESP */
} dsp_kernel_t;

enum { DSP_KERNEL_SHORT = 0, DSP_KERNEL_LONG = 1 };

/* The kernel `which` (DSP_KERNEL_*), built on first use (thread-safe). */
const dsp_kernel_t *dsp__kernel(int which);

/* The kernel's response at `nu` (fraction of the input Nyquist frequency, 0..1), interpolated
 * linearly in the table (the response is smooth on the table's 1/2048 scale). */
double dsp__kernel_resp(const dsp_kernel_t *k, double nu);

/* Designs a linear-phase low-pass FIR for decimation from `fs_in` to `fs_in / decim`: passband
 * to `pass_hz`, stopband from fs_out - pass_hz (the band that folds onto the passband), at least
 * 80 dB down (Kaiser window). Returns the number of taps (odd) written into a new array. */
int dsp__design_decimator(double fs_in, int decim, double pass_hz, double **taps);

#include "dsp/events.h"

/* ---- Aggregation (agg.c) ----------------------------------------------------------------------
 */

typedef struct {
    int kind;
    int64_t key; /* interval number (10 min, 2 h) or start time (3 s) */
    int64_t t_start, t_end;
    uint32_t count;
    uint32_t flags;
    double covered_ns; /* time covered by the values (clipped to [lo, hi) when hi > lo) */
    int64_t lo, hi, cov_until;
    int gap; /* the stream broke during the interval */
    int nch, hmax;
    double f_sum, f_min, f_max;
    double u0, u2, i0, i2; /* sums of squares */
    double p, q, s;        /* sums */
    double rms2[DSP_MAX_CH], rms_min[DSP_MAX_CH], rms_max[DSP_MAX_CH];
    double fund2[DSP_MAX_CH], thd2[DSP_MAX_CH];
    double hg2[DSP_MAX_CH][DSP_MAX_H + 1];
} dsp_acc_t;

void dsp__acc_reset(dsp_acc_t *a, int kind, int64_t key, int nch);
void dsp__acc_add_window(dsp_acc_t *a, const dsp_window_t *w);
void dsp__acc_add_agg(dsp_acc_t *a, const dsp_agg_t *g);
/* Finishes the accumulator into `out`; `expected` values make a complete interval. */
void dsp__acc_finish(const dsp_acc_t *a, uint32_t expected, int64_t nominal_ns, dsp_agg_t *out);

#endif
