/* sim/signal — synthetic 3-phase voltage and current waveforms for gridsense-sim.
 *
 * Pure computation: no I/O, no global state, no allocation. One sig_gen_t per simulated terminal
 * produces an endless, sample-accurate stream of sample sets (6 channels: UA UB UC IA IB IC, int16
 * counts, interleaved) on a timeline indexed by an absolute sample index. The waveform has a
 * fundamental with slow grid-wide frequency drift, odd harmonics, white noise, small unbalance,
 * load changes on the currents, and disturbances (dips, swells, interruptions) that are either
 * scheduled by the caller or drawn at random. The generator also runs a dip/swell detector on the
 * voltages (U_rms(1/2): one-cycle RMS refreshed every half cycle, IEC 61000-4-30 5.4.2 / 5.4.2.1)
 * and reports threshold crossings as events, as a terminal's firmware would.
 *
 * Everything is deterministic for a given sig_params_t (including the seed) and sequence of calls
 * that advance the same sample ranges. Not thread-safe per sig_gen_t; distinct sig_gen_t are
 * independent.
 */
#ifndef GS_SIM_SIGNAL_H
#define GS_SIM_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#define SIG_NCH        6  /* channels per sample set: UA UB UC IA IB IC */
#define SIG_NPHASE     3  /* voltage (and current) phases */
#define SIG_NHARM      3  /* modelled harmonics: 3rd, 5th, 7th */
#define SIG_MAX_DIST   16 /* scheduled disturbances held at once */
#define SIG_MAX_EVENTS 4  /* detected events queued until sig_event_pop() */

/* Disturbance kinds; the numbers equal the GSTP trigger codes (DIP 1, SWELL 2, INTERRUPTION 3). */
typedef enum { SIG_DIP = 1, SIG_SWELL = 2, SIG_INTERRUPTION = 3 } sig_kind_t;

/* A voltage disturbance on the timeline. */
typedef struct {
    uint64_t start;  /* absolute sample index of its first sample */
    uint32_t len;    /* duration in sample sets, > 0 */
    uint8_t kind;    /* sig_kind_t */
    uint8_t phases;  /* affected phases: bit 0 = A, 1 = B, 2 = C (INTERRUPTION: all) */
    float magnitude; /* residual (dip, interruption) or peak (swell) as a fraction of nominal */
} sig_dist_t;

/* A threshold crossing seen by the detector. */
typedef struct {
    uint32_t id;             /* 1, 2, ... per generator */
    uint8_t kind;            /* sig_kind_t; a dip becomes an interruption if all phases < 5 % */
    uint8_t active;          /* 1 while the disturbance is still going on */
    uint16_t channel;        /* triggering voltage channel 0..2, or 0xFFFF for several */
    uint16_t value_permille; /* extreme so far: lowest (dip) or highest (swell) RMS, 0.1 % */
    uint64_t index;          /* absolute sample index of the trigger (end of the RMS window) */
} sig_event_t;

/* Generator parameters. Zero-initialise, then set. */
typedef struct {
    uint32_t rate;           /* sample sets per second, 100..100000 */
    uint32_t nominal_hz;     /* 50 or 60 */
    double nominal_v;        /* nominal phase-to-neutral RMS voltage, secondary V (> 0) */
    double nominal_a;        /* nominal RMS current, secondary A (> 0) */
    uint64_t seed;           /* per-generator randomness (harmonics, unbalance, load, noise) */
    uint64_t grid_seed;      /* shared by all generators on one grid: frequency drift */
    double disturb_per_min;  /* mean random disturbances per minute, 0 = only scheduled ones */
    uint16_t dip_permille;   /* dip threshold, 0.1 % of nominal (0 = 900) */
    uint16_t swell_permille; /* swell threshold (0 = 1100) */
    int clean;               /* 1: pure fundamental at exactly nominal_hz, balanced, no noise,
                                harmonics, drift, load changes or random disturbances (tests) */
} sig_params_t;

/* Generator state; embed it, treat the fields as private. */
typedef struct {
    /* configuration */
    uint32_t rate, nominal_hz;
    double scale[SIG_NCH]; /* engineering units per count, per channel */
    double nom_counts_v;   /* nominal RMS voltage in counts */
    double disturb_per_min;
    double noise_amp[2]; /* uniform noise half-width in counts: [0] voltage, [1] current */
    uint16_t dip_pm, swell_pm;
    int clean;
    /* per-generator character */
    float harm_a[2][SIG_NHARM]; /* harmonic amplitude relative to the fundamental, V and I */
    float harm_p[2][SIG_NHARM]; /* harmonic phase, rad */
    float unb_mag[2][SIG_NPHASE];
    float unb_ang[2][SIG_NPHASE];
    double drift_a[4], drift_w[4], drift_p[4]; /* grid frequency drift: sum of slow sinusoids */
    /* timeline */
    uint64_t index; /* absolute index of the next sample set */
    double theta;   /* fundamental phase at `index`, rad, kept in [0, 2 pi) */
    uint64_t rng;   /* xorshift64* state */
    /* load (currents) */
    double load;        /* current magnitude as a fraction of nominal */
    double pf_angle;    /* current lags voltage by this angle, rad */
    uint64_t next_load; /* index of the next load change */
    /* disturbances, sorted by start */
    sig_dist_t dist[SIG_MAX_DIST];
    uint8_t ndist;
    uint64_t next_random; /* index of the next random disturbance */
    /* detector */
    double hc_sum[SIG_NPHASE], prev_sum[SIG_NPHASE];
    uint32_t hc_n, prev_n;
    uint64_t hc_base;      /* index where half-cycle counting (re)started */
    uint64_t hc_k, hc_end; /* half-cycle counter and index where the current one ends */
    int warm;              /* half cycles seen since the last reset (RMS valid from 2) */
    sig_event_t ev;        /* current or most recent event (ev.id 0 = none yet) */
    sig_event_t evq[SIG_MAX_EVENTS];
    uint8_t nevq;
    uint64_t nsamples; /* total sample sets generated (statistics) */
} sig_gen_t;

/* Initialises s. Returns 0, or -1 if a parameter is out of range. The timeline starts at sample
 * index 0 with a random (seeded) phase angle. */
int sig_init(sig_gen_t *s, const sig_params_t *p);

/* Returns the engineering value of one count of channel ch (V or A on the secondary side): the
 * scale is chosen so that 1.5 x the nominal peak fits int16. */
double sig_scale(const sig_gen_t *s, unsigned ch);

/* Generates the next n sample sets (index .. index+n-1) into out[n * SIG_NCH], interleaved in
 * channel order, and advances the timeline. Detected threshold crossings are queued for
 * sig_event_pop(). */
void sig_generate(sig_gen_t *s, int16_t *out, uint32_t n);

/* Advances the timeline by n sample sets without producing samples (the phase stays continuous;
 * the detector restarts, load changes and random disturbances that fell into the gap are
 * skipped). Use when the terminal was not sampling for a while. */
void sig_skip(sig_gen_t *s, uint64_t n);

/* Returns the absolute index of the next sample set to be generated. */
uint64_t sig_index(const sig_gen_t *s);

/* Schedules a disturbance. Returns 0, or -1 if the table is full or d is invalid. Disturbances
 * must not overlap; the earliest active one wins. */
int sig_schedule(sig_gen_t *s, const sig_dist_t *d);

/* Sets the detector thresholds (0.1 % of nominal). Returns 0 or -1 unless dip < 1000 < swell. */
int sig_set_thresholds(sig_gen_t *s, uint16_t dip_permille, uint16_t swell_permille);

/* Pops the oldest newly triggered event into *ev. Returns 1, or 0 if none is queued. */
int sig_event_pop(sig_gen_t *s, sig_event_t *ev);

/* Refreshes *ev (kind, extreme value, active) from the detector if ev->id is still the current
 * or most recent event. Returns 1 if refreshed, 0 if the event is gone. */
int sig_event_refresh(const sig_gen_t *s, sig_event_t *ev);

/* Returns the grid frequency (Hz) at absolute sample index idx, as used by the generator. */
double sig_frequency(const sig_gen_t *s, uint64_t idx);

#endif
