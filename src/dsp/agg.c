/* Aggregation over time intervals (IEC 61000-4-30 4.5): magnitudes are aggregated as the root
 * mean square of the values in the interval; frequency and power as arithmetic means. */
#include "dsp/internal.h"

#include <math.h>
#include <string.h>

void dsp__acc_reset(dsp_acc_t *a, int kind, int64_t key, int nch)
{
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->key = key;
    a->nch = nch;
    a->hmax = DSP_MAX_H;
    a->f_min = INFINITY;
    a->f_max = -INFINITY;
    for (int c = 0; c < nch; c++) {
        a->rms_min[c] = INFINITY;
        a->rms_max[c] = -INFINITY;
    }
}

void dsp__acc_add_window(dsp_acc_t *a, const dsp_window_t *w)
{
    if (a->count == 0)
        a->t_start = w->t_start_ns;
    a->t_end = w->t_end_ns;
    a->count++;
    a->flags |= w->flags & DSP_F_EVENT;
    if (a->hi > a->lo) { /* UTC-aligned interval: count each instant inside it once */
        int64_t b = w->t_start_ns > a->cov_until ? w->t_start_ns : a->cov_until;
        int64_t e = w->t_end_ns < a->hi ? w->t_end_ns : a->hi;
        if (e > b)
            a->covered_ns += (double)(e - b);
        if (e > a->cov_until)
            a->cov_until = e;
    } else {
        a->covered_ns += (double)(w->t_end_ns - w->t_start_ns);
    }
    a->f_sum += w->freq;
    a->f_min = fmin(a->f_min, w->freq);
    a->f_max = fmax(a->f_max, w->freq);
    a->u0 += w->u0 * w->u0;
    a->u2 += w->u2 * w->u2;
    a->i0 += w->i0 * w->i0;
    a->i2 += w->i2 * w->i2;
    a->p += w->p_tot;
    a->q += w->q_tot;
    a->s += w->s_eff;
    for (int c = 0; c < a->nch; c++) {
        const dsp_chan_result_t *r = &w->ch[c];
        a->rms2[c] += r->rms * r->rms;
        a->rms_min[c] = fmin(a->rms_min[c], r->rms);
        a->rms_max[c] = fmax(a->rms_max[c], r->rms);
        a->fund2[c] += r->fund_mag * r->fund_mag;
        a->thd2[c] += r->thd * r->thd;
        for (int h = 0; h <= r->hmax; h++)
            a->hg2[c][h] += r->hg[h] * r->hg[h];
        if (r->hmax < a->hmax)
            a->hmax = r->hmax;
    }
}

void dsp__acc_add_agg(dsp_acc_t *a, const dsp_agg_t *g)
{
    if (a->count == 0)
        a->t_start = g->t_start_ns;
    a->t_end = g->t_end_ns;
    a->count++;
    a->flags |= g->flags & (DSP_F_EVENT | DSP_F_INCOMPLETE);
    a->f_sum += g->freq_mean;
    a->f_min = fmin(a->f_min, g->freq_min);
    a->f_max = fmax(a->f_max, g->freq_max);
    a->u0 += g->u0 * g->u0;
    a->u2 += g->u2 * g->u2;
    a->i0 += g->i0 * g->i0;
    a->i2 += g->i2 * g->i2;
    a->p += g->p_tot;
    a->q += g->q_tot;
    a->s += g->s_eff;
    if (g->hmax < a->hmax)
        a->hmax = g->hmax;
    for (int c = 0; c < a->nch; c++) {
        const dsp_agg_chan_t *r = &g->ch[c];
        a->rms2[c] += r->rms * r->rms;
        a->rms_min[c] = fmin(a->rms_min[c], r->rms_min);
        a->rms_max[c] = fmax(a->rms_max[c], r->rms_max);
        a->fund2[c] += r->fund_mag * r->fund_mag;
        a->thd2[c] += r->thd * r->thd;
        for (int h = 0; h <= g->hmax; h++)
            a->hg2[c][h] += r->hg[h] * r->hg[h];
    }
}

void dsp__acc_finish(const dsp_acc_t *a, uint32_t expected, int64_t nominal_ns, dsp_agg_t *out)
{
    memset(out, 0, sizeof *out);
    double n = a->count ? a->count : 1;
    out->kind = a->kind;
    out->t_start_ns = a->t_start;
    out->t_end_ns = a->t_end;
    out->count = a->count;
    out->expected = expected;
    out->flags = a->flags;
    /* Incomplete: a break in the stream during the interval; for UTC-aligned window intervals,
     * windows covering less than the interval (the tolerance, 1e-4 of it, absorbs sub-sample
     * holes left by following the terminal's clock); for the others, fewer values than a full
     * interval holds. The window count depends on the frequency, so it is not a criterion for
     * the 10-min interval. */
    if (a->gap)
        out->flags |= DSP_F_INCOMPLETE;
    if (nominal_ns > 0 ? a->covered_ns < (double)nominal_ns * (1 - 1e-4) : a->count < expected)
        out->flags |= DSP_F_INCOMPLETE;
    out->freq_mean = a->f_sum / n;
    out->freq_min = a->count ? a->f_min : 0;
    out->freq_max = a->count ? a->f_max : 0;
    out->u0 = sqrt(a->u0 / n);
    out->u2 = sqrt(a->u2 / n);
    out->i0 = sqrt(a->i0 / n);
    out->i2 = sqrt(a->i2 / n);
    out->p_tot = a->p / n;
    out->q_tot = a->q / n;
    out->s_eff = a->s / n;
    out->nch = a->nch;
    out->hmax = a->hmax;
    for (int c = 0; c < a->nch; c++) {
        dsp_agg_chan_t *r = &out->ch[c];
        r->rms = sqrt(a->rms2[c] / n);
        r->rms_min = a->count ? a->rms_min[c] : 0;
        r->rms_max = a->count ? a->rms_max[c] : 0;
        r->fund_mag = sqrt(a->fund2[c] / n);
        r->thd = sqrt(a->thd2[c] / n);
        for (int h = 0; h <= a->hmax; h++)
            r->hg[h] = sqrt(a->hg2[c][h] / n);
    }
}
