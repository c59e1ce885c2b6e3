/* Voltage event detection (internal to the dsp module). */
#ifndef GS_DSP_EVENTS_H
#define GS_DSP_EVENTS_H

#include "dsp/dsp.h"

typedef struct {
    int active;
    int64_t start_ns;
    double extreme;
    uint32_t channels;
    int worst;
    double reference;
} dsp_evstate_t;

typedef struct {
    dsp_evstate_t dip, swell, intr;
    double usr;     /* sliding reference voltage (4-30 5.4.4), 0 until initialised */
    int have_prev;  /* prev[] and last_t hold the previous step */
    int64_t last_t; /* time of the last Urms(1/2) value examined */
    double prev[DSP_MAX_CH];
} dsp_events_t;

/* Examines one set of Urms(1/2) values `u` (one per event channel, channel indices `chs`) at
 * time `t` (centre of their cycle) and reports events that end to the sink. Returns 1 when the
 * value lies within an event (the 4-30 flag), else 0. Thresholds are relative to Udin, or to
 * the sliding reference when no Udin is configured (no detection until it is known). */
int dsp__events_step(dsp_events_t *e, const dsp_config_t *cfg, const dsp_sink_t *sink, int64_t t,
                     const double *u, const int *chs, int n);

/* Ends events in progress at the last examined time (a gap or the end of the input), flagged
 * DSP_EVF_GAP, and forgets the previous values. */
void dsp__events_end(dsp_events_t *e, const dsp_config_t *cfg, const dsp_sink_t *sink);

#endif
