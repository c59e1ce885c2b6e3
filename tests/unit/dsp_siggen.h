/* Synthetic three-phase test signals with known truth, for the analysis engine's tests and its
 * accuracy benchmark. Time is relative to `t_base_ns`, a whole UTC second, so the nominal-
 * frequency UTC reference cosine has phase 2 pi f0 tau exactly. */
#ifndef GS_TESTS_DSP_SIGGEN_H
#define GS_TESTS_DSP_SIGGEN_H

#include <stddef.h>
#include <stdint.h>

#define SG_MAX_CH   8
#define SG_MAX_HARM 8
#define SG_MAX_TONE 4

typedef struct {
    double fs;         /* sample rate */
    int f0;            /* nominal frequency (reference cosine) */
    int64_t t_base_ns; /* a whole UTC second: tau = 0 */
    double f;          /* fundamental frequency at tau = 0 */
    double rocof;      /* Hz/s linear ramp */
    int nch;
    double rms[SG_MAX_CH];   /* fundamental RMS per channel */
    double phase[SG_MAX_CH]; /* fundamental angle at tau = 0 (rad) */
    double dc[SG_MAX_CH];
    int nharm;
    int h_order[SG_MAX_HARM];
    double h_rel[SG_MAX_HARM];   /* amplitude relative to the fundamental */
    double h_phase[SG_MAX_HARM]; /* added to order * fundamental phase */
    double am_depth, am_freq;    /* x (1 + kx cos(2 pi fm tau)) */
    double pm_depth, pm_freq;    /* phase + ka cos(2 pi fm tau) */
    double noise_rms;            /* absolute white Gaussian noise per channel */
    /* Magnitude step: channel gains multiply by step_gain[c] for step_from <= tau < step_to. */
    double step_from, step_to;
    double step_gain[SG_MAX_CH];
    uint64_t seed;
    /* Tones at arbitrary frequencies (interharmonics, out-of-band content): tone k has RMS
     * tone_rms[k] (absolute, channel units), frequency tone_freq[k] (Hz) and
     * angle tone_phase[k] at tau = 0, on the channels in tone_mask[k] (0 = every channel).
     * Not affected by modulation or steps. */
    int ntone;
    double tone_freq[SG_MAX_TONE];
    double tone_rms[SG_MAX_TONE];
    double tone_phase[SG_MAX_TONE];
    uint32_t tone_mask[SG_MAX_TONE];
} sg_t;

/* Defaults: 3 channels, 57.735 V RMS balanced (A 0, B -120, C +120 degrees), f = f0. */
void sg_default(sg_t *g, double fs, int f0);

/* Writes `n` interleaved sample sets starting at sample index `first` (tau = first / fs). */
void sg_fill(sg_t *g, uint64_t first, size_t n, double *out);

/* Truth at tau: fundamental phasor of channel c per C37.118 (RMS magnitude and angle relative
 * to the UTC cosine at f0) and the instantaneous frequency. */
void sg_truth(const sg_t *g, int c, double tau, double *mag, double *ang, double *freq);

/* Total vector error between an estimate and the truth. */
double sg_tve(double mag, double ang, double tmag, double tang);

#endif
