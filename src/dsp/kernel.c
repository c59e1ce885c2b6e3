/* Interpolation kernel for resampling and the decimation filter. Both are Kaiser-windowed sincs:
 * linear phase (no delay distortion of phasor angles) and a stopband that is easy to state. */
#include "dsp/internal.h"

#include <complex.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* Zeroth-order modified Bessel function of the first kind (series; converges fast for the
 * arguments a Kaiser window uses). */
static double bessel_i0(double x)
{
    double sum = 1, term = 1, q = x * x / 4;
    for (int k = 1; k < 64; k++) {
        term *= q / ((double)k * k);
        sum += term;
        if (term < sum * 1e-17)
            break;
    }
    return sum;
}

static double kaiser(double t, double half, double beta)
{
    double r = t / half;
    if (r <= -1 || r >= 1)
        return 0;
    return bessel_i0(beta * sqrt(1 - r * r)) / bessel_i0(beta);
}

static double sinc(double x)
{
    if (fabs(x) < 1e-12)
        return 1;
    return sin(M_PI * x) / (M_PI * x);
}

/* Two kernels, chosen per stream by its (decimated) sample rate:
 *
 * SHORT, 16 taps, cut-off 0.92 of the input Nyquist frequency, beta 8.6: flat to 1e-3 up to 0.6
 * of Nyquist and to 1 % up to 0.66; 2.4 % down at 0.7, 15 % at 0.8. Used from 9.6 kS/s up, where
 * 0.66 of Nyquist already holds the 50th harmonic at 60 Hz + 5 % (4-30 5.8).
 *
 * LONG, 128 taps, cut-off 0.99, beta 6.5 (flat to 1e-5 up to 0.95 of Nyquist, stopband below
 * -60 dB): used below that rate, where the harmonic orders would otherwise end at 0.66 of
 * Nyquist (order 25 at 4 kS/s, 50 Hz). Resampling a tone at nu (fraction of Nyquist) onto the
 * window grid passes it with the gain H(nu) of the kernel's continuous frequency response and
 * lets through its image at 2 - nu with H(2 - nu); on the grid the image lands N (1 - f0/f) bins
 * away. H is known, so the harmonic bins are divided by it; what cannot be divided out is the
 * image, so the reach is where the image stays small next to the tone: at nu = 0.975 H = 0.88
 * and the image is 0.04 % of the tone, at 0.98 H = 0.78 and 0.35 %, at 0.985 H = 0.65 and 2.5 %,
 * at 0.99 H = 0.5 and 10 %. The image of a tone near the reach falls into the tone's own group
 * only within 0.3 Hz of nominal (at 4 kS/s, 50 Hz), where nu <= 0.981 and the image is below
 * 1 % (and in another bin, so it adds in quadrature, except within 0.06 Hz of nominal). So orders
 * are reported up to 0.985 of Nyquist: 39 at 4 kS/s and 50 Hz while f <= 50.5 Hz. Cost: 8 times the
 * multiply-adds of the short kernel per resampled point. */
static const struct {
    int kh;
    double cutoff, beta, reach;
} specs[2] = {{8, 0.92, 8.6, 0.66}, {64, 0.99, 6.5, 0.985}};

static float tab_short[(DSP_KPHASES + 1) * 2 * 8];
static float tab_long[(DSP_KPHASES + 1) * 2 * DSP_KH_MAX];
static double resp_tab[2][DSP_KRESP + 1];
static dsp_kernel_t kernels[2];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_one(int which, float *table)
{
    int kh = specs[which].kh;
    double fc = specs[which].cutoff, beta = specs[which].beta;
    double row[2 * DSP_KH_MAX];
    for (int p = 0; p <= DSP_KPHASES; p++) {
        double frac = (double)p / DSP_KPHASES, sum = 0;
        /* Tap k (0..2kh-1) weighs input sample i + k - kh + 1 for output at i + frac. */
        for (int k = 0; k < 2 * kh; k++) {
            double t = (double)(k - kh + 1) - frac;
            row[k] = fc * sinc(fc * t) * kaiser(t, kh, beta);
            sum += row[k];
        }
        for (int k = 0; k < 2 * kh; k++)
            table[(size_t)p * 2 * kh + (size_t)k] = (float)(row[k] / sum);
    }
    /* Response H(nu pi) = integral of h(t) cos(nu pi t) dt, as the Riemann sum over the table
     * (every 4th phase: a 1/128-sample step, whose aliases lie far in the stopband). Each point
     * t contributes to every nu through a rotation, so building it costs 2049 complex
     * multiplications per point. */
    double *resp = resp_tab[which];
    const int step = 4, nph = DSP_KPHASES / step;
    for (int i = 0; i <= DSP_KRESP; i++)
        resp[i] = 0;
    for (int p = 0; p < DSP_KPHASES; p += step)
        for (int k = 0; k < 2 * kh; k++) {
            double t = (double)(k - kh + 1) - (double)p / DSP_KPHASES;
            double h = table[(size_t)p * 2 * kh + (size_t)k] / (double)nph;
            double complex z = 1, r = cexp(I * M_PI * t / DSP_KRESP);
            for (int i = 0; i <= DSP_KRESP; i++) {
                resp[i] += h * creal(z);
                z *= r;
            }
        }
    kernels[which] = (dsp_kernel_t){kh, fc, beta, specs[which].reach, table, resp};
}

static void build_tables(void)
{
    build_one(DSP_KERNEL_SHORT, tab_short);
    build_one(DSP_KERNEL_LONG, tab_long);
}

const dsp_kernel_t *dsp__kernel(int which)
{
    pthread_once(&table_once, build_tables);
    return &kernels[which == DSP_KERNEL_LONG];
}

double dsp__kernel_resp(const dsp_kernel_t *k, double nu)
{
    double x = nu * DSP_KRESP;
    if (!(x > 0))
        return k->resp[0];
    if (x >= DSP_KRESP)
        return k->resp[DSP_KRESP];
    int i = (int)x;
    return k->resp[i] + (x - i) * (k->resp[i + 1] - k->resp[i]);
}

int dsp__design_decimator(double fs_in, int decim, double pass_hz, double **taps)
{
    double fs_out = fs_in / decim;
    double stop_hz = fs_out - pass_hz;
    double atten = 80;
    double beta = 0.1102 * (atten - 8.7); /* Kaiser's formula for A > 50 dB */
    double dw = 2 * M_PI * (stop_hz - pass_hz) / fs_in;
    int n = (int)ceil((atten - 8) / (2.285 * dw)) + 1;
    if (n < 3)
        n = 3;
    if (n % 2 == 0)
        n++;
    double fc = (pass_hz + stop_hz) / 2 / fs_in; /* cycles/sample: the new Nyquist */
    double *h = dsp__malloc(sizeof(double) * (size_t)n);
    double half = (n - 1) / 2.0, sum = 0;
    for (int k = 0; k < n; k++) {
        double t = k - half;
        h[k] = 2 * fc * sinc(2 * fc * t) * kaiser(t, half + 1, beta);
        sum += h[k];
    }
    for (int k = 0; k < n; k++)
        h[k] /= sum; /* unit gain at DC and, to < 1e-4, across the passband */
    *taps = h;
    return n;
}
