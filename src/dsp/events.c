/* Dips, swells and interruptions from Urms(1/2) values (IEC 61000-4-30 5.4). */
#include "dsp/events.h"

#include <math.h>
#include <string.h>

/* Time at which a value moving from `u0` (at t0) to `u1` (at t1) crosses `th`, so the instant
 * does not depend on where the half-cycle grid happens to fall. The interpolation is linear in
 * u^2: while a voltage step lies inside the one-cycle window, the mean square changes linearly
 * with the window's position, so this finds the threshold crossing of a step exactly. */
static int64_t crossing(int64_t t0, double u0, int64_t t1, double u1, double th)
{
    u0 *= u0;
    u1 *= u1;
    th *= th;
    if (u0 == u1 || t1 <= t0)
        return t1;
    double r = (u0 - th) / (u0 - u1);
    if (r < 0)
        r = 0;
    if (r > 1)
        r = 1;
    return t0 + (int64_t)llround(r * (double)(t1 - t0));
}

static void emit(dsp_evstate_t *st, int kind, int64_t end, uint32_t flags, const dsp_sink_t *sink)
{
    if (sink->event) {
        dsp_event_t e;
        memset(&e, 0, sizeof e);
        e.kind = kind;
        e.start_ns = st->start_ns;
        e.duration_ns = end > st->start_ns ? end - st->start_ns : 0;
        e.extreme = st->extreme;
        e.reference = st->reference;
        e.extreme_pct = st->reference > 0 ? 100 * st->extreme / st->reference : 0;
        e.channels = st->channels;
        e.worst_channel = st->worst;
        e.flags = flags;
        sink->event(sink->ud, &e);
    }
    st->active = 0;
}

int dsp__events_step(dsp_events_t *e, const dsp_config_t *cfg, const dsp_sink_t *sink, int64_t t,
                     const double *u, const int *chs, int n)
{
    double ref = cfg->declared_v > 0 ? cfg->declared_v : e->usr;
    uint32_t extra = cfg->declared_v > 0 ? 0 : DSP_EVF_SLIDING;
    int have_prev = e->have_prev && t > e->last_t;
    int touched = 0;
    if (ref <= 0 || n == 0)
        goto done;

    double dip_th = ref * cfg->dip_pct / 100, dip_end = ref * (cfg->dip_pct + cfg->hyst_pct) / 100;
    double sw_th = ref * cfg->swell_pct / 100,
           sw_end = ref * (cfg->swell_pct - cfg->hyst_pct) / 100;
    double in_th = ref * cfg->intr_pct / 100, in_end = ref * (cfg->intr_pct + cfg->hyst_pct) / 100;

    int any_below_dip = 0, all_above_dip_end = 1, any_above_sw = 0, all_below_sw_end = 1;
    int all_below_in = 1, any_above_in_end = 0;
    uint32_t below_mask = 0, above_mask = 0, intr_mask = 0;
    int imin = 0, imax = 0;
    for (int k = 0; k < n; k++) {
        double v = u[k];
        if (v < dip_th) {
            any_below_dip = 1;
            below_mask |= 1u << chs[k];
        }
        if (v < dip_end)
            all_above_dip_end = 0;
        if (v > sw_th) {
            any_above_sw = 1;
            above_mask |= 1u << chs[k];
        }
        if (v > sw_end)
            all_below_sw_end = 0;
        if (v >= in_th)
            all_below_in = 0;
        else
            intr_mask |= 1u << chs[k];
        if (v >= in_end)
            any_above_in_end = 1;
        if (v < u[imin])
            imin = k;
        if (v > u[imax])
            imax = k;
    }

    /* Dip: starts when any channel falls below the threshold, ends when all channels are at or
     * above threshold + hysteresis (4-30 5.4.2.2, polyphase). */
    if (!e->dip.active && any_below_dip) {
        e->dip.active = 1;
        e->dip.reference = ref;
        e->dip.start_ns = t;
        if (have_prev) { /* the first channel to cross sets the start */
            int64_t best = t;
            for (int k = 0; k < n; k++)
                if (u[k] < dip_th && e->prev[k] >= dip_th) {
                    int64_t c = crossing(e->last_t, e->prev[k], t, u[k], dip_th);
                    if (c < best)
                        best = c;
                }
            e->dip.start_ns = best;
        }
        e->dip.extreme = u[imin];
        e->dip.worst = chs[imin];
        e->dip.channels = below_mask;
    } else if (e->dip.active) {
        e->dip.channels |= below_mask;
        if (u[imin] < e->dip.extreme) {
            e->dip.extreme = u[imin];
            e->dip.worst = chs[imin];
        }
        if (all_above_dip_end) {
            int64_t end = t;
            if (have_prev) { /* the last channel to recover sets the end */
                end = e->last_t;
                for (int k = 0; k < n; k++)
                    if (e->prev[k] < dip_end) {
                        int64_t c = crossing(e->last_t, e->prev[k], t, u[k], dip_end);
                        if (c > end)
                            end = c;
                    }
            }
            emit(&e->dip, DSP_EV_DIP, end, extra, sink);
            touched = 1;
        }
    }

    /* Swell: any channel above the threshold; ends when all are at or below threshold -
     * hysteresis (4-30 5.4.3). */
    if (!e->swell.active && any_above_sw) {
        e->swell.active = 1;
        e->swell.reference = ref;
        e->swell.start_ns = t;
        if (have_prev) {
            int64_t best = t;
            for (int k = 0; k < n; k++)
                if (u[k] > sw_th && e->prev[k] <= sw_th) {
                    int64_t c = crossing(e->last_t, e->prev[k], t, u[k], sw_th);
                    if (c < best)
                        best = c;
                }
            e->swell.start_ns = best;
        }
        e->swell.extreme = u[imax];
        e->swell.worst = chs[imax];
        e->swell.channels = above_mask;
    } else if (e->swell.active) {
        e->swell.channels |= above_mask;
        if (u[imax] > e->swell.extreme) {
            e->swell.extreme = u[imax];
            e->swell.worst = chs[imax];
        }
        if (all_below_sw_end) {
            int64_t end = t;
            if (have_prev) {
                end = e->last_t;
                for (int k = 0; k < n; k++)
                    if (e->prev[k] > sw_end) {
                        int64_t c = crossing(e->last_t, e->prev[k], t, u[k], sw_end);
                        if (c > end)
                            end = c;
                    }
            }
            emit(&e->swell, DSP_EV_SWELL, end, extra, sink);
            touched = 1;
        }
    }

    /* Interruption: all channels below the threshold; ends when any channel is at or above
     * threshold + hysteresis (4-30 5.5.2, polyphase). */
    if (!e->intr.active && all_below_in) {
        e->intr.active = 1;
        e->intr.reference = ref;
        e->intr.start_ns = t;
        if (have_prev) { /* the last channel to fall sets the start */
            int64_t best = e->last_t;
            for (int k = 0; k < n; k++)
                if (e->prev[k] >= in_th) {
                    int64_t c = crossing(e->last_t, e->prev[k], t, u[k], in_th);
                    if (c > best)
                        best = c;
                }
            e->intr.start_ns = best;
        }
        e->intr.extreme = u[imin];
        e->intr.worst = chs[imin];
        e->intr.channels = intr_mask;
    } else if (e->intr.active) {
        if (u[imin] < e->intr.extreme) {
            e->intr.extreme = u[imin];
            e->intr.worst = chs[imin];
        }
        if (any_above_in_end) {
            int64_t end = t;
            if (have_prev) { /* the first channel to return sets the end */
                for (int k = 0; k < n; k++)
                    if (u[k] >= in_end && e->prev[k] < in_end) {
                        int64_t c = crossing(e->last_t, e->prev[k], t, u[k], in_end);
                        if (c < end)
                            end = c;
                    }
            }
            emit(&e->intr, DSP_EV_INTERRUPTION, end, extra, sink);
            touched = 1;
        }
    }
    touched |= e->dip.active | e->swell.active | e->intr.active;

done:
    for (int k = 0; k < n && k < DSP_MAX_CH; k++)
        e->prev[k] = u[k];
    e->have_prev = 1;
    e->last_t = t;
    return touched;
}

void dsp__events_end(dsp_events_t *e, const dsp_config_t *cfg, const dsp_sink_t *sink)
{
    uint32_t f = DSP_EVF_GAP | (cfg->declared_v > 0 ? 0 : DSP_EVF_SLIDING);
    if (e->dip.active)
        emit(&e->dip, DSP_EV_DIP, e->last_t, f, sink);
    if (e->swell.active)
        emit(&e->swell, DSP_EV_SWELL, e->last_t, f, sink);
    if (e->intr.active)
        emit(&e->intr, DSP_EV_INTERRUPTION, e->last_t, f, sink);
    e->have_prev = 0;
}
