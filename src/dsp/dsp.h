/* gridsense analysis engine: IEC 61000-4-30 Class A measurements and C37.118 synchrophasors from
 * a terminal's sampled waveforms. No I/O and no event loop: a stream takes samples in and calls
 * the sink's functions with results, synchronously, from the thread that pushes.
 *
 * Pipeline for one terminal (dsp_stream_t):
 *   samples (int16/int32/float/double, interleaved, per-channel scale)
 *   -> conditioning: scale to engineering units; above 12.8 kS/s, anti-alias FIR + decimation
 *   -> frequency tracking and resampling: each basic window is exactly C cycles of the measured
 *      fundamental (C = 10 at 50 Hz, 12 at 60 Hz; IEC 61000-4-7 5.5.1, 61000-4-30 5.2) on a grid
 *      of N points (N = 2C * samples per half cycle, close to the input rate)
 *   -> per window: RMS, DC, FFT (FFTW) -> fundamental, harmonic (sub)groups, interharmonic
 *      groups, THD/THDS; synchrophasor; frequency, ROCOF; symmetrical components; power
 *   -> Urms(1/2) -> dips, swells, interruptions (61000-4-30 5.4) and the 4-30 flag (4.7)
 *   -> aggregation: 150/180 cycles, 10 min (UTC aligned), 2 h (61000-4-30 4.5); 10 s frequency
 *      (61000-4-30 5.1).
 * Timestamps are UTC ns since the Unix epoch, taken from the terminal's block timestamps. A break
 * in the sample timeline (missing blocks, time jumps) is reported as a gap and the analysis
 * restarts after it; nothing is interpolated across a gap.
 *
 * Threads: a stream is used by one thread at a time. dsp_global_init() once per process before
 * any stream; FFTW planning is serialised inside, execution is per stream.
 */
#ifndef GS_DSP_DSP_H
#define GS_DSP_DSP_H

#include <stddef.h>
#include <stdint.h>

#define DSP_MAX_CH 16 /* channels per stream */
/* Sample times accepted: UTC 1970-01-01 .. 2200-01-01 (ns since the epoch). */
#define DSP_MAX_TIME_NS 7258118400000000000LL
#define DSP_MAX_H       50 /* highest harmonic order (IEC 61000-4-30 5.8: up to the 50th) */

typedef enum { DSP_KIND_OTHER = 0, DSP_KIND_VOLTAGE = 1, DSP_KIND_CURRENT = 2 } dsp_kind_t;
typedef enum {
    DSP_PHASE_NONE = 0,
    DSP_PHASE_A = 1,
    DSP_PHASE_B = 2,
    DSP_PHASE_C = 3,
    DSP_PHASE_N = 4
} dsp_phase_t; /* same numbering as GSTP's channel phases */

typedef struct {
    uint8_t kind;  /* dsp_kind_t */
    uint8_t phase; /* dsp_phase_t; phase voltages are phase-to-neutral */
    double scale;  /* engineering units per count (integer inputs), multiplies float inputs too */
    char name[32];
} dsp_channel_t;

typedef struct {
    double sample_rate; /* input samples/s per channel, 1600..25600 */
    int nominal_hz;     /* 50 or 60 */
    int nchannels;      /* 1..DSP_MAX_CH */
    dsp_channel_t ch[DSP_MAX_CH];
    /* Declared input voltage Udin (RMS, channel units, phase-to-neutral) for event thresholds;
     * 0 = use the sliding reference voltage of IEC 61000-4-30 5.4.4 (1-min time constant). */
    double declared_v;
    double dip_pct;    /* dip threshold, % of reference (default 90) */
    double swell_pct;  /* swell threshold (default 110) */
    double intr_pct;   /* interruption threshold (default 10) */
    double hyst_pct;   /* hysteresis (default 2) */
    int phasor_cycles; /* synchrophasor estimation window in cycles, 1..4 (default 1) */
    int resync_10min;  /* 1 (default): basic windows restart at each 10-min UTC tick (4-30 4.6) */
    /* 1: remove the signal chain's DC offset (e.g. an ADC offset) before RMS, Urms(1/2), power
     * and line-to-line values: a slow average (5 s) of the means of stationary windows (an
     * event edge cannot move it; frozen while the frequency is held); `dc` still reports each
     * window's mean. 0 (default): RMS is the true RMS of the signal, DC included. */
    int dc_removal;
} dsp_config_t;

/* Fills `c` with defaults for `nchannels` channels of kind OTHER, scale 1, at `sample_rate` and
 * `nominal_hz`. The caller then describes the channels. */
void dsp_config_default(dsp_config_t *c, double sample_rate, int nominal_hz, int nchannels);

/* Window and aggregate flags. */
enum {
    DSP_F_EVENT = 1u << 0,       /* 4-30 flag: a dip, swell or interruption touched the interval */
    DSP_F_FREQ_HELD = 1u << 1,   /* no usable fundamental: frequency held, phasors unreliable */
    DSP_F_NO_ROCOF = 1u << 2,    /* first window of a segment: no previous frequency */
    DSP_F_TIME_UNSYNC = 1u << 3, /* the terminal's clock was not locked to UTC */
    DSP_F_INCOMPLETE = 1u << 4,  /* aggregate: fewer values than the interval should hold */
    DSP_F_RESYNC = 1u << 5       /* window started at a 10-min tick (overlaps the previous one) */
};

/* Per channel results of one basic window. Magnitudes are RMS values in channel units; angles in
 * radians in (-pi, pi], relative to a cosine at nominal frequency synchronised to UTC (IEEE
 * C37.118.1 4.2), at the window's t_ref. */
typedef struct {
    double rms; /* true RMS over the window, DC included (less dc_removed with dc_removal) */
    double dc;  /* mean over the window (integer cycles: exactly the DC component) */
    /* With dc_removal: the offset subtracted before RMS, Urms(1/2), power and line-to-line
     * values, a slow average of the means of stationary windows (not this window's own mean,
     * which an event edge corrupts; docs/dsp.md "Conditioning"). 0 without dc_removal. */
    double dc_removed;
    double fund_mag; /* fundamental over the C-cycle window (DFT bin C), 4-30/4-7 */
    double fund_ang; /* its angle at t_ref */
    double ph_mag;   /* synchrophasor: centred `phasor_cycles`-cycle estimate at t_ref */
    double ph_ang;
    double thd;  /* sqrt(sum_{h=2..H} G_h^2) / G_1, harmonic groups (IEC 61000-4-7 3.3.2) */
    double thds; /* same with harmonic subgroups */
    int hmax;    /* highest order computed (<= DSP_MAX_H, limited by the sample rate) */
    double hg[DSP_MAX_H + 1];  /* harmonic groups G_h, [0] = DC, [1] = fundamental group */
    double hsg[DSP_MAX_H + 1]; /* harmonic subgroups */
    /* Harmonic phase angles relative to the fundamental, radians in (-pi, pi]: phi_h - h phi_1,
     * where phi_h is the angle of DFT bin hC (the harmonic's own bin) at the window centre, for
     * a cosine. Independent of the time reference (a shift by dt adds h w dt to phi_h and to
     * h phi_1); 0 for a waveform whose harmonic peaks coincide with the fundamental's peak. [1]
     * is 0; [0] and orders whose bin holds less than 0.01 % of the fundamental are NaN (noise). */
    double hang[DSP_MAX_H + 1];
    double ihg[DSP_MAX_H + 1];  /* interharmonic groups: [h] lies between orders h and h+1 */
    double ihsg[DSP_MAX_H + 1]; /* interharmonic centred subgroups */
    double urms_half_min; /* extremes of Urms(1/2) (one-cycle RMS every half cycle) in the window */
    double urms_half_max;
} dsp_chan_result_t;

/* Three-phase power per IEEE 1459-2010: P = mean(v i) (all frequencies), Q1 = fundamental
 * reactive power Im(V1 I1*), S = Vrms Irms; totals use the effective apparent power Se. */
typedef struct {
    double p, q, s, pf;
} dsp_power_t;

typedef struct {
    uint64_t index;     /* window number in this stream, from 0 */
    int64_t t_start_ns; /* first sample of the window */
    int64_t t_end_ns;   /* end of the window (its timestamp per 4-30) */
    int64_t t_ref_ns;   /* centre: the phasor/frequency reporting time */
    double freq;        /* Hz, over this window */
    double rocof;       /* Hz/s, between this window's centre and the previous one's */
    uint32_t flags;
    int nch;
    dsp_chan_result_t ch[DSP_MAX_CH];
    /* Three-phase voltage (channels with kind VOLTAGE and phases A, B, C), when present. */
    int has_v3;
    double v_seq_mag[3]; /* zero, positive, negative sequence (fundamental), RMS */
    double v_seq_ang[3];
    double u0, u2;      /* unbalance ratios |V0|/|V1|, |V2|/|V1| (4-30 5.7.1), not % */
    double vll_rms[3];  /* derived line-to-line RMS: AB, BC, CA */
    double vll_fund[3]; /* fundamental of the same */
    /* Three-phase current, likewise. */
    int has_i3;
    double i_seq_mag[3];
    double i_seq_ang[3];
    double i0, i2;
    /* Power: phases that have both a voltage and a current channel. */
    uint32_t power_mask; /* bit p-1 set = phase p has power values */
    dsp_power_t pw[3];
    double p_tot, q_tot, s_eff, pf_tot; /* valid when all three phases have power */
} dsp_window_t;

typedef enum { DSP_EV_DIP = 1, DSP_EV_SWELL = 2, DSP_EV_INTERRUPTION = 3 } dsp_event_kind_t;

/* A voltage event, reported when it ends (IEC 61000-4-30 5.4). */
typedef struct {
    int kind;            /* dsp_event_kind_t */
    int64_t start_ns;    /* first Urms(1/2) beyond the threshold (centre of its cycle) */
    int64_t duration_ns; /* to the first Urms(1/2) back inside threshold + hysteresis */
    double extreme;      /* residual voltage (dip, interruption) or maximum (swell) */
    double extreme_pct;  /* the same in % of the reference */
    double reference;    /* Udin or the sliding reference at the start */
    uint32_t channels;   /* bit i = channel i crossed the threshold */
    int worst_channel;   /* channel of the extreme */
    uint32_t flags;      /* DSP_EVF_* */
} dsp_event_t;

enum {
    DSP_EVF_GAP = 1u << 0,    /* ended by a gap in the data or the end of the input */
    DSP_EVF_SLIDING = 1u << 1 /* thresholds relative to the sliding reference voltage */
};

typedef enum { DSP_AGG_3S = 1, DSP_AGG_10MIN = 2, DSP_AGG_2H = 3 } dsp_agg_kind_t;

/* Aggregated values per channel. RMS aggregation (4-30 4.5) for magnitudes. */
typedef struct {
    double rms, rms_min, rms_max;
    double fund_mag;
    double thd;
    double hg[DSP_MAX_H + 1];
} dsp_agg_chan_t;

typedef struct {
    int kind;           /* dsp_agg_kind_t */
    int64_t t_start_ns; /* interval start (a UTC tick for 10 min and 2 h) */
    int64_t t_end_ns;   /* interval end: the value's timestamp */
    uint32_t count;     /* values aggregated (basic windows; 10-min values for 2 h) */
    uint32_t expected;  /* values a complete interval holds */
    uint32_t flags;     /* DSP_F_EVENT if any value was flagged; DSP_F_INCOMPLETE */
    double freq_mean, freq_min, freq_max;
    double u0, u2, i0, i2;
    double p_tot, q_tot, s_eff; /* arithmetic means */
    int nch;
    int hmax;
    dsp_agg_chan_t ch[DSP_MAX_CH];
} dsp_agg_t;

/* The 10-s frequency of IEC 61000-4-30 5.1.2: integral cycles of the fundamental within the
 * 10-s UTC interval divided by their cumulative duration. */
typedef struct {
    int64_t t_start_ns; /* the 10-s tick */
    int64_t t_end_ns;
    double freq;
    uint32_t cycles; /* integral cycles counted */
    uint32_t flags;  /* DSP_F_EVENT, DSP_F_INCOMPLETE (data did not cover the 10 s) */
} dsp_freq10_t;

/* A break in the input timeline: samples from `from_ns` to `to_ns` are missing (to < from: the
 * clock jumped back). */
typedef struct {
    int64_t from_ns;
    int64_t to_ns;
} dsp_gap_t;

/* Where results go. Any function may be NULL. Called synchronously from dsp_stream_push/flush;
 * the pointers are valid only during the call. */
typedef struct {
    void (*window)(void *ud, const dsp_window_t *w);
    void (*event)(void *ud, const dsp_event_t *e);
    void (*agg)(void *ud, const dsp_agg_t *a);
    void (*freq10)(void *ud, const dsp_freq10_t *f);
    void (*gap)(void *ud, const dsp_gap_t *g);
    void *ud;
} dsp_sink_t;

typedef enum { DSP_FMT_I16 = 1, DSP_FMT_I32 = 2, DSP_FMT_F32 = 3, DSP_FMT_F64 = 4 } dsp_fmt_t;

typedef struct dsp_stream dsp_stream_t;

/* Prepares FFTW for use by several threads: loads wisdom from `wisdom_path` when it exists
 * (NULL = none). Call once per process before dsp_stream_new. Returns 0. */
int dsp_global_init(const char *wisdom_path);

/* Saves the FFTW wisdom gathered so far to `wisdom_path` (written to a temporary file and
 * renamed). Returns 0 or -errno. */
int dsp_global_save_wisdom(const char *wisdom_path);

/* Creates a stream for one terminal. Validates `cfg` (rate 1600..25600, nominal 50/60, 1..16
 * channels, finite positive scales, thresholds in order); on error returns GS_ECONFIG with a
 * message in `err`. The sink is copied. Creates (or reuses) the FFT plan for the window size;
 * that part is serialised across threads. */
int dsp_stream_new(const dsp_config_t *cfg, const dsp_sink_t *sink, dsp_stream_t **out, char *err,
                   size_t errlen);

/* Feeds `nsets` sample sets (each `nchannels` values, interleaved in channel order, format
 * `fmt`, raw counts times the channel scale) whose first sample was taken at `t0_ns`. A start
 * time that does not continue the previous push (more than half a sample off) ends the current
 * segment: a gap is reported, events in progress are closed, and analysis restarts here.
 * `flags`: DSP_F_TIME_UNSYNC when the terminal's clock is not UTC-locked. Results go to the sink
 * before this returns. Returns 0, GS_EINVAL for a bad format or count, or GS_ERANGE (nothing
 * consumed) when t0_ns lies outside [0, DSP_MAX_TIME_NS). Non-finite samples, and values whose
 * magnitude after scaling exceeds 1e30, are treated as missing (a gap in the data). */
int dsp_stream_push(dsp_stream_t *s, int64_t t0_ns, int fmt, const void *samples, size_t nsets,
                    uint32_t flags);

/* Ends the input: closes events in progress (flagged DSP_EVF_GAP) and reports the aggregates in
 * progress as incomplete. The stream can be fed again afterwards (as after a gap). */
void dsp_stream_flush(dsp_stream_t *s);

/* Window length N (resampled points per basic window) and cycles C of this stream. */
void dsp_stream_geometry(const dsp_stream_t *s, int *n_points, int *cycles);

/* Frees the stream; NULL is a no-op. Nothing is reported to the sink. */
void dsp_stream_free(dsp_stream_t *s);

/* Name of an event kind ("dip", "swell", "interruption") and of an aggregate kind ("3s",
 * "10min", "2h"). */
const char *dsp_event_name(int kind);
const char *dsp_agg_name(int kind);

/* ==== Reporting-rate synchrophasors (IEEE C37.118.1-2011 + 1a-2014, M class) ==============
 *
 * An object of its own, independent of dsp_stream_t: the caller pushes the same sample blocks
 * (same formats, times and channel scales) into it. Per report: phasors of every voltage and
 * current channel and the positive sequence (RMS magnitude; angle relative to a cosine at
 * nominal frequency synchronised to UTC, C37.118.1 4.2), frequency and ROCOF per channel and
 * for the positive sequence, at `rate` reports per second, at times that are exact multiples
 * of 1/rate from the UTC second (so reports of different terminals line up).
 * Method (docs/dsp.md): quadrature demodulation at nominal frequency, a short first low-pass
 * and decimation to about 500 samples/s (at sample numbers counted from the UTC epoch, fixed
 * at the segment start), a Hamming-windowed sinc low-pass (Annex C M class) evaluated on the
 * decimated stream at the report time, compensation of both filters' response at the
 * measured frequency deviation and ROCOF (and of the fundamental's negative-frequency image),
 * frequency and ROCOF from the positive-sequence phase by central differences over 1/rate. A
 * report is made when its whole span has arrived: latency dsp_pmu_latency() after the report
 * time. No report spans a gap or missing samples. */

enum {
    DSP_PMU_F_TIME_UNSYNC = 1u << 0, /* a sample in the span came from an unsynchronised clock */
    DSP_PMU_F_RESTART = 1u << 1,     /* first report after a start or a gap (not continuous
                                        with the previous one; its values are complete) */
    DSP_PMU_F_FREQ_HELD = 1u << 2    /* reference below 5 % of its recent peak: frequency held,
                                        ROCOF 0 */
};

typedef struct {
    int ch;       /* channel number, -1 for a positive-sequence value */
    double mag;   /* RMS, channel units */
    double ang;   /* rad, (-pi, pi], relative to the UTC-synchronised nominal cosine */
    double freq;  /* Hz, from this phasor's phase */
    double rocof; /* Hz/s */
} dsp_pmu_phasor_t;

typedef struct {
    int64_t t_ns;   /* report time (UTC ns, rounded to the ns for rates not dividing 1e9) */
    int64_t sec;    /* UTC second (s since the epoch) */
    int index;      /* report number within the second, 0..rate-1: t = sec + index / rate */
    int rate;       /* reports per second */
    uint32_t flags; /* DSP_PMU_F_* */
    double freq;    /* system frequency: positive-sequence voltage, else the first voltage
                       channel, else the first channel (Hz) */
    double rocof;   /* Hz/s, same reference */
    int nph;        /* per channel phasors: every channel of kind voltage or current */
    dsp_pmu_phasor_t ph[DSP_MAX_CH];
    int has_v1, has_i1; /* positive sequence (voltage / current phases A, B, C present) */
    dsp_pmu_phasor_t v1, i1;
} dsp_pmu_report_t;

typedef struct {
    void (*report)(void *ud, const dsp_pmu_report_t *r); /* valid only during the call */
    void *ud;
} dsp_pmu_sink_t;

typedef struct dsp_pmu dsp_pmu_t;

/* 1 if `rate` reports/s is one of C37.118.1's rates at `nominal_hz` (Table 1: 10, 25, 50 at
 * 50 Hz; 10, 12, 15, 20, 30, 60 at 60 Hz), else 0. */
int dsp_pmu_rate_valid(int nominal_hz, int rate);

/* Creates an estimator for a stream described by `cfg` (sample rate, nominal frequency,
 * channels with kind, phase and scale; the other fields are ignored) reporting `rate` times a
 * second to `sink` (copied). Returns 0, or GS_ECONFIG with a message in `err` (rate not valid
 * for the nominal frequency, no voltage or current channel, bad rate/scale). */
int dsp_pmu_new(const dsp_config_t *cfg, int rate, const dsp_pmu_sink_t *sink, dsp_pmu_t **out,
                char *err, size_t errlen);

/* Feeds samples exactly as dsp_stream_push (same formats, scaling and time rules; `samples`
 * need not be aligned). A start that does not continue the previous push within half a
 * sample (t0 against the previous push's t0 plus its samples), or a run of non-finite samples,
 * ends the segment (one restart each): estimation restarts and the first report after it is
 * flagged DSP_PMU_F_RESTART. A push that continues the segment re-anchors the time mapping at
 * its t0 when the two differ by more than 1 us, so a drifting sample clock is followed
 * without restarts. Reports whose span is complete go to the sink before this returns.
 * nsets 0 does nothing. Returns 0, GS_EINVAL (format, NULL samples, nsets > 2^30), GS_ERANGE
 * (t0_ns outside [0, DSP_MAX_TIME_NS)). One thread at a time. */
int dsp_pmu_push(dsp_pmu_t *p, int64_t t0_ns, int fmt, const void *samples, size_t nsets,
                 uint32_t flags);

/* Ends the input; reports still waiting for samples are withheld. Pushing again starts a new
 * segment. */
void dsp_pmu_flush(dsp_pmu_t *p);

/* Time from a report's time to the arrival of the last sample it needs (s): half the filter
 * span plus 1/rate plus half the first stage (1.5 decimated periods, < 3 ms). The reporting
 * latency of C37.118.1 5.6.1 adds the transport of the terminal's blocks. */
double dsp_pmu_latency(const dsp_pmu_t *p);

/* Segments ended (gaps, runs of missing samples, flushes of a running segment) since
 * creation. */
uint64_t dsp_pmu_restarts(const dsp_pmu_t *p);

/* Bytes held by the estimator (its object and buffers; allocator overhead not counted). */
size_t dsp_pmu_memory(const dsp_pmu_t *p);

/* Frees the estimator; NULL is a no-op. */
void dsp_pmu_free(dsp_pmu_t *p);

#endif
