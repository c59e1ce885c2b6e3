/* Synthetic test signals with known truth (see dsp_siggen.h). */
#include "tests/unit/dsp_siggen.h"

#include <complex.h>
#include <math.h>
#include <string.h>

void sg_default(sg_t *g, double fs, int f0)
{
    memset(g, 0, sizeof *g);
    g->fs = fs;
    g->f0 = f0;
    g->t_base_ns = 1767225600LL * 1000000000LL; /* 2026-01-01T00:00:00Z */
    g->f = f0;
    g->nch = 3;
    for (int c = 0; c < SG_MAX_CH; c++) {
        g->rms[c] = 57.735;
        g->phase[c] = -2 * M_PI / 3 * (c % 3);
        g->step_gain[c] = 1;
    }
    g->step_from = g->step_to = -1;
    g->seed = 12345;
}

static double gauss(uint64_t *s)
{
    /* xorshift64* + Box-Muller: deterministic, good enough for test noise */
    double u[2];
    for (int i = 0; i < 2; i++) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        uint64_t r = *s * 2685821657736338717ULL;
        u[i] = ((double)(r >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]);
}

/* Phase of the fundamental (without the channel offset) at tau. */
static double fund_phase(const sg_t *g, double tau)
{
    double p = 2 * M_PI * (g->f * tau + 0.5 * g->rocof * tau * tau);
    if (g->pm_depth != 0)
        p += g->pm_depth * cos(2 * M_PI * g->pm_freq * tau);
    return p;
}

static double gain(const sg_t *g, int c, double tau)
{
    double a = 1;
    if (g->am_depth != 0)
        a *= 1 + g->am_depth * cos(2 * M_PI * g->am_freq * tau);
    if (tau >= g->step_from && tau < g->step_to)
        a *= g->step_gain[c];
    return a;
}

void sg_fill(sg_t *g, uint64_t first, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++) {
        double tau = (double)(first + i) / g->fs;
        double ph = fund_phase(g, tau);
        for (int c = 0; c < g->nch; c++) {
            double a = M_SQRT2 * g->rms[c] * gain(g, c, tau);
            double th = ph + g->phase[c];
            double v = g->dc[c] + a * cos(th);
            for (int k = 0; k < g->nharm; k++)
                v += a * g->h_rel[k] * cos(g->h_order[k] * th + g->h_phase[k]);
            for (int k = 0; k < g->ntone; k++)
                if (g->tone_mask[k] == 0 || (g->tone_mask[k] >> c & 1u))
                    v += M_SQRT2 * g->tone_rms[k] *
                         cos(2 * M_PI * g->tone_freq[k] * tau + g->tone_phase[k]);
            if (g->noise_rms > 0)
                v += g->noise_rms * gauss(&g->seed);
            out[i * (size_t)g->nch + (size_t)c] = v;
        }
    }
}

void sg_truth(const sg_t *g, int c, double tau, double *mag, double *ang, double *freq)
{
    double ph = fund_phase(g, tau) + g->phase[c] - 2 * M_PI * g->f0 * tau;
    *mag = g->rms[c] * gain(g, c, tau);
    *ang = carg(cexp(I * ph));
    double f = g->f + g->rocof * tau;
    if (g->pm_depth != 0)
        f -= g->pm_depth * g->pm_freq * sin(2 * M_PI * g->pm_freq * tau);
    *freq = f;
}

double sg_tve(double mag, double ang, double tmag, double tang)
{
    double complex e = mag * cexp(I * ang), t = tmag * cexp(I * tang);
    return cabs(e - t) / cabs(t);
}
