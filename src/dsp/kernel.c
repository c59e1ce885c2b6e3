/* Interpolation kernel for resampling and the decimation filter. Both are Kaiser-windowed sincs:
 * linear phase (no delay distortion of phasor angles) and a stopband that is easy to state. */
#include "dsp/internal.h"

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

static float table[(DSP_KPHASES + 1) * 2 * DSP_KH];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* The kernel is flat to 1e-3 up to 0.6 of the input Nyquist frequency and to 1 % up to 0.66;
 * it is 2.4 % down at 0.7 and 15 % at 0.8 (the analysis reports harmonic orders only inside the
 * 1 % band, see stream.c). Content above is attenuated (terminals filter before sampling, and the
 * decimator does for high rates). The cut-off slightly below Nyquist keeps the short kernel's
 * transition band away from it. */
#define KERNEL_CUTOFF 0.92
#define KERNEL_BETA   8.6

static void build_table(void)
{
    for (int p = 0; p <= DSP_KPHASES; p++) {
        double frac = (double)p / DSP_KPHASES;
        double row[2 * DSP_KH], sum = 0;
        /* Tap k (0..2KH-1) weighs input sample i + k - KH + 1 for output at i + frac. */
        for (int k = 0; k < 2 * DSP_KH; k++) {
            double t = (double)(k - DSP_KH + 1) - frac;
            row[k] = KERNEL_CUTOFF * sinc(KERNEL_CUTOFF * t) * kaiser(t, DSP_KH, KERNEL_BETA);
            sum += row[k];
        }
        for (int k = 0; k < 2 * DSP_KH; k++)
            table[(size_t)p * 2 * DSP_KH + (size_t)k] = (float)(row[k] / sum);
    }
}

const float *dsp__kernel_table(void)
{
    pthread_once(&table_once, build_table);
    return table;
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
