/* JSON forms of analysis results, shared by the server (latest values, the measurements table)
 * and `gridsense analyze`; docs/api.md describes them. Values are in the channel's units (secondary
 * side). */
#ifndef GS_ANA_JSON_H
#define GS_ANA_JSON_H

#include "core/util.h"
#include "dsp/dsp.h"

/* Display names of a stream's channels ("Ua", "Ib", "In", "ch3"), unique within the stream. */
typedef struct {
    int nch;
    char name[DSP_MAX_CH][16];
    const char *kind[DSP_MAX_CH]; /* "voltage", "current", "other" */
} json_names_t;

/* Derives names from the channel kinds and phases of cfg: U/I + phase a/b/c/n, else "chN"
 * (N the channel index), also for a later channel whose U/I name an earlier one has. */
void ana_json_names(json_names_t *n, const dsp_config_t *cfg);

/* One basic window: time, frequency, per-channel values and harmonic groups, three-phase
 * values, power. */
void ana_json_window(buf_t *b, const dsp_window_t *w, const json_names_t *n);

/* One aggregate; harmonic groups only when `harmonics` is set. */
void ana_json_agg(buf_t *b, const dsp_agg_t *g, const json_names_t *n, int harmonics);

/* One 10-s frequency value. */
void ana_json_freq10(buf_t *b, const dsp_freq10_t *f);

/* One voltage event (as `gridsense analyze` prints it). */
void ana_json_event(buf_t *b, const dsp_event_t *e, const json_names_t *n);

/* An event's channels by name, the one form of them (docs/dsp.md, "Voltage events"):
 * `"channels":["Ua","Ub"],"worst_channel":"Ub"` for the channel bit mask `mask` and the index
 * `worst` (an index outside the names gives ""). The server stores the same names with each
 * event (src/ana/ana.c, on_event) and its events API prints them in this form. */
void ana_json_event_channels(buf_t *b, uint32_t mask, int worst, const json_names_t *n);

/* The "flags" member listing the DSP_F_* names set in flags. */
void ana_json_flags(buf_t *b, uint32_t flags);

/* The "flags" member for any flag set: the names of the bits set in `flags`, bit i named
 * names[i] (n names), in bit order. Shared by the window/aggregate and synchrophasor flags. */
void ana_json_flag_names(buf_t *b, const char *const *names, int n, uint32_t flags);

/* A number printed with `fmt`, or null when it is not finite (JSON has no NaN or infinity). */
void ana_json_number(buf_t *b, const char *fmt, double v);

#endif
