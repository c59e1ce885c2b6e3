/* sim/signal — synthetic 3-phase waveforms. See signal.h.
 *
 * Speed: the inner loop never calls sin(). The fundamental is a unit phasor z = e^(i theta)
 * rotated by a constant step per sample (complex multiply); harmonics are z^3, z^5, z^7 from a
 * few more complex multiplies; each channel is then a dot product of those phasors with
 * per-segment coefficients. A segment is a run of samples with constant parameters (at most half
 * a cycle long, because the RMS detector steps on half-cycle boundaries); at each segment start
 * the phasor is recomputed from the double phase accumulator, so rounding never accumulates.
 */
#include "signal.h"

#include <math.h>
#include <string.h>

#define TWO_PI       6.283185307179586476925286766559
#define DEG          (TWO_PI / 360.0)
#define HYST_PM      20u /* detector hysteresis, 2 % of nominal (IEC 61000-4-30 5.4.2.1) */
#define INTERRUPT_PM 50u /* interruption threshold, 5 % of nominal (IEC 61000-4-30 5.5) */
#define FULL_SCALE   1.5 /* nominal peak x 1.5 = int16 full scale */

static const int harm_order[SIG_NHARM] = {3, 5, 7};

/* ---- randomness ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s; /* xorshift64* (Vigna) */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_range(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(s);
}

/* Exponentially distributed with the given mean. */
static double rng_exp(uint64_t *s, double mean)
{
    return -log(1.0 - rng_unit(s)) * mean;
}

/* ---- frequency: one smooth pseudo-random drift shared by every generator on the grid ---- */

double sig_frequency(const sig_gen_t *s, uint64_t idx)
{
    double t = (double)idx / s->rate, f = s->nominal_hz;
    for (int k = 0; k < 4; k++)
        f += s->drift_a[k] * sin(s->drift_w[k] * t + s->drift_p[k]);
    return f;
}

/* Phase advance in radians from sample index i1 to i2: 2 pi times the integral of f(t). */
static double phase_advance(const sig_gen_t *s, uint64_t i1, uint64_t i2)
{
    double t1 = (double)i1 / s->rate, t2 = (double)i2 / s->rate;
    double cycles = (double)s->nominal_hz * ((double)(i2 - i1) / s->rate);
    for (int k = 0; k < 4; k++) {
        if (s->drift_a[k] == 0)
            continue;
        double a = s->drift_a[k] / s->drift_w[k];
        cycles +=
            a * (cos(s->drift_w[k] * t1 + s->drift_p[k]) - cos(s->drift_w[k] * t2 + s->drift_p[k]));
    }
    return TWO_PI * cycles;
}

static void advance_theta(sig_gen_t *s, uint64_t to)
{
    s->theta = fmod(s->theta + phase_advance(s, s->index, to), TWO_PI);
    if (s->theta < 0)
        s->theta += TWO_PI;
    s->index = to;
}

/* ---- load and disturbances ---- */

static void load_change(sig_gen_t *s)
{
    s->load = rng_range(&s->rng, 0.2, 1.1);
    if (rng_unit(&s->rng) < 0.9)
        s->pf_angle = rng_range(&s->rng, 5, 35) * DEG; /* lagging (inductive) */
    else
        s->pf_angle = -rng_range(&s->rng, 5, 15) * DEG; /* leading (capacitive) */
    s->next_load = s->index + (uint64_t)(rng_range(&s->rng, 10, 60) * s->rate);
}

static void next_random_at(sig_gen_t *s, uint64_t from)
{
    if (s->clean || s->disturb_per_min <= 0) {
        s->next_random = UINT64_MAX;
        return;
    }
    double mean = 60.0 * s->rate / s->disturb_per_min;
    s->next_random = from + 1 + (uint64_t)rng_exp(&s->rng, mean);
}

static int overlaps(const sig_gen_t *s, uint64_t start, uint64_t end, uint64_t *conflict_end)
{
    for (unsigned i = 0; i < s->ndist; i++) {
        uint64_t e = s->dist[i].start + s->dist[i].len;
        if (s->dist[i].start < end && start < e) {
            *conflict_end = e;
            return 1;
        }
    }
    return 0;
}

/* Draws a random disturbance starting at s->next_random (the timeline just reached it). */
static void random_disturbance(sig_gen_t *s)
{
    sig_dist_t d = {.start = s->next_random};
    double u = rng_unit(&s->rng), ms;
    if (u < 0.6) {
        d.kind = SIG_DIP;
        d.magnitude = (float)rng_range(&s->rng, 0.40, 0.88);
        d.phases = (uint8_t)(1 + rng_next(&s->rng) % 7);
        ms = rng_range(&s->rng, 40, 500);
    } else if (u < 0.85) {
        d.kind = SIG_SWELL;
        d.magnitude = (float)rng_range(&s->rng, 1.12, 1.20);
        d.phases = (uint8_t)(1 + rng_next(&s->rng) % 7);
        ms = rng_range(&s->rng, 40, 500);
    } else {
        d.kind = SIG_INTERRUPTION;
        d.magnitude = (float)rng_range(&s->rng, 0.0, 0.04);
        d.phases = 7;
        ms = rng_range(&s->rng, 100, 1500);
    }
    d.len = (uint32_t)(ms * s->rate / 1000.0) + 1;
    uint64_t conflict;
    if (overlaps(s, d.start, d.start + d.len, &conflict)) {
        next_random_at(s, conflict);
        return;
    }
    sig_schedule(s, &d);
    next_random_at(s, d.start + d.len);
}

int sig_schedule(sig_gen_t *s, const sig_dist_t *d)
{
    if (s->ndist >= SIG_MAX_DIST || d->len == 0 || d->kind < SIG_DIP ||
        d->kind > SIG_INTERRUPTION || d->magnitude < 0 || d->magnitude > 2)
        return -1;
    unsigned i = s->ndist;
    while (i > 0 && s->dist[i - 1].start > d->start) {
        s->dist[i] = s->dist[i - 1];
        i--;
    }
    s->dist[i] = *d;
    if (d->kind == SIG_INTERRUPTION)
        s->dist[i].phases = 7;
    s->ndist++;
    return 0;
}

static void drop_finished(sig_gen_t *s)
{
    unsigned j = 0;
    for (unsigned i = 0; i < s->ndist; i++)
        if (s->dist[i].start + s->dist[i].len > s->index)
            s->dist[j++] = s->dist[i];
    s->ndist = (uint8_t)j;
}

/* ---- detector: U_rms(1/2) per IEC 61000-4-30 5.4.2, dips/swells per 5.4.2.1 ---- */

static void hc_reset(sig_gen_t *s)
{
    s->hc_base = s->index;
    s->hc_k = 0;
    s->hc_end = s->index + s->rate / (2 * s->nominal_hz);
    s->hc_n = s->prev_n = 0;
    s->warm = 0;
    for (int p = 0; p < SIG_NPHASE; p++)
        s->hc_sum[p] = s->prev_sum[p] = 0;
    s->ev.active = 0;
}

static void push_event(sig_gen_t *s)
{
    if (s->nevq < SIG_MAX_EVENTS)
        s->evq[s->nevq++] = s->ev;
}

static void detector_step(sig_gen_t *s)
{
    double pm[SIG_NPHASE];
    uint32_t n = s->prev_n + s->hc_n;
    for (int p = 0; p < SIG_NPHASE; p++) {
        pm[p] = sqrt((s->prev_sum[p] + s->hc_sum[p]) / n) / s->nom_counts_v * 1000.0;
        s->prev_sum[p] = s->hc_sum[p];
        s->hc_sum[p] = 0;
    }
    s->prev_n = s->hc_n;
    s->hc_n = 0;
    s->hc_k++;
    s->hc_end = s->hc_base + ((s->hc_k + 1) * s->rate) / (2 * s->nominal_hz);
    if (++s->warm < 2)
        return; /* the one-cycle window is not full yet */

    double lo = pm[0], hi = pm[0];
    int nlow = 0, nhigh = 0, nint = 0, plow = 0, phigh = 0;
    for (int p = 0; p < SIG_NPHASE; p++) {
        lo = pm[p] < lo ? pm[p] : lo;
        hi = pm[p] > hi ? pm[p] : hi;
        if (pm[p] < s->dip_pm) {
            nlow++;
            plow = p;
        }
        if (pm[p] > s->swell_pm) {
            nhigh++;
            phigh = p;
        }
        if (pm[p] < INTERRUPT_PM)
            nint++;
    }
    sig_event_t *ev = &s->ev;
    if (ev->active) {
        if (ev->kind == SIG_SWELL) {
            if (hi > ev->value_permille)
                ev->value_permille = (uint16_t)(hi > 65535 ? 65535 : hi);
            if (hi <= s->swell_pm - HYST_PM)
                ev->active = 0;
        } else {
            if (lo < ev->value_permille)
                ev->value_permille = (uint16_t)lo;
            if (nint == SIG_NPHASE)
                ev->kind = SIG_INTERRUPTION;
            if (lo >= s->dip_pm + HYST_PM)
                ev->active = 0;
        }
        return;
    }
    if (nlow > 0) {
        ev->kind = nint == SIG_NPHASE ? SIG_INTERRUPTION : SIG_DIP;
        ev->channel = nlow == 1 ? (uint16_t)plow : 0xFFFF;
        ev->value_permille = (uint16_t)lo;
    } else if (nhigh > 0) {
        ev->kind = SIG_SWELL;
        ev->channel = nhigh == 1 ? (uint16_t)phigh : 0xFFFF;
        ev->value_permille = (uint16_t)(hi > 65535 ? 65535 : hi);
    } else {
        return;
    }
    ev->id++;
    ev->active = 1;
    ev->index = s->index;
    push_event(s);
}

/* ---- public ---- */

int sig_init(sig_gen_t *s, const sig_params_t *p)
{
    if (p->rate < 100 || p->rate > 100000 || (p->nominal_hz != 50 && p->nominal_hz != 60) ||
        !(p->nominal_v > 0) || !(p->nominal_a > 0) || p->disturb_per_min < 0)
        return -1;
    memset(s, 0, sizeof *s);
    s->rate = p->rate;
    s->nominal_hz = p->nominal_hz;
    s->clean = p->clean;
    s->disturb_per_min = p->disturb_per_min;
    if (sig_set_thresholds(s, p->dip_permille ? p->dip_permille : 900,
                           p->swell_permille ? p->swell_permille : 1100) != 0)
        return -1;
    for (int ch = 0; ch < SIG_NCH; ch++)
        s->scale[ch] = (ch < 3 ? p->nominal_v : p->nominal_a) * sqrt(2.0) * FULL_SCALE / 32767.0;
    s->nom_counts_v = p->nominal_v / s->scale[0];

    uint64_t seed = p->seed;
    s->rng = splitmix64(&seed) | 1;
    uint64_t *r = &s->rng;
    static const double harm_nom[2][SIG_NHARM] = {{0.015, 0.03, 0.015}, {0.08, 0.06, 0.03}};
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < SIG_NHARM; j++) {
            s->harm_a[k][j] = s->clean ? 0 : (float)(harm_nom[k][j] * rng_range(r, 0.5, 1.5));
            s->harm_p[k][j] = s->clean ? 0 : (float)rng_range(r, 0, TWO_PI);
        }
        for (int ph = 0; ph < SIG_NPHASE; ph++) {
            s->unb_mag[k][ph] = s->clean ? 1 : (float)rng_range(r, 0.99, 1.01);
            s->unb_ang[k][ph] = s->clean ? 0 : (float)(rng_range(r, -0.5, 0.5) * DEG);
        }
    }
    /* noise: standard deviation 0.05 % of nominal RMS; a uniform of half-width a has a/sqrt(3) */
    s->noise_amp[0] = s->clean ? 0 : 0.0005 * sqrt(3.0) * p->nominal_v / s->scale[0];
    s->noise_amp[1] = s->clean ? 0 : 0.0005 * sqrt(3.0) * p->nominal_a / s->scale[3];
    s->theta = rng_range(r, 0, TWO_PI);

    uint64_t g = p->grid_seed;
    uint64_t gr = splitmix64(&g) | 1;
    double wsum = 0, w[4];
    for (int k = 0; k < 4; k++) {
        w[k] = rng_range(&gr, 0.3, 1.0);
        wsum += w[k];
    }
    for (int k = 0; k < 4; k++) {
        s->drift_a[k] = s->clean ? 0 : 0.045 * w[k] / wsum; /* |drift| <= 0.045 Hz */
        s->drift_w[k] = TWO_PI / rng_range(&gr, 40, 600);
        s->drift_p[k] = rng_range(&gr, 0, TWO_PI);
    }

    if (s->clean) {
        s->load = 1;
        s->pf_angle = 0;
        s->next_load = UINT64_MAX;
    } else {
        load_change(s);
        s->load = rng_range(r, 0.3, 0.9);
    }
    next_random_at(s, 0);
    hc_reset(s);
    return 0;
}

double sig_scale(const sig_gen_t *s, unsigned ch)
{
    return ch < SIG_NCH ? s->scale[ch] : 0;
}

uint64_t sig_index(const sig_gen_t *s)
{
    return s->index;
}

int sig_set_thresholds(sig_gen_t *s, uint16_t dip_permille, uint16_t swell_permille)
{
    if (dip_permille <= INTERRUPT_PM || dip_permille >= 1000 || swell_permille <= 1000 ||
        swell_permille < HYST_PM + 1000)
        return -1;
    s->dip_pm = dip_permille;
    s->swell_pm = swell_permille;
    return 0;
}

int sig_event_pop(sig_gen_t *s, sig_event_t *ev)
{
    if (s->nevq == 0)
        return 0;
    *ev = s->evq[0];
    memmove(s->evq, s->evq + 1, (size_t)(s->nevq - 1) * sizeof s->evq[0]);
    s->nevq--;
    return 1;
}

int sig_event_refresh(const sig_gen_t *s, sig_event_t *ev)
{
    if (ev->id == 0 || ev->id != s->ev.id)
        return 0;
    *ev = s->ev;
    return 1;
}

void sig_skip(sig_gen_t *s, uint64_t n)
{
    if (n == 0)
        return;
    advance_theta(s, s->index + n);
    drop_finished(s);
    if (s->next_random < s->index)
        next_random_at(s, s->index);
    if (s->next_load < s->index)
        load_change(s);
    hc_reset(s);
}

static inline int16_t quantize(double x)
{
    if (x >= 32767.0)
        return 32767;
    if (x <= -32768.0)
        return -32768;
    return (int16_t)(x >= 0 ? (int32_t)(x + 0.5) : -(int32_t)(0.5 - x));
}

/* Generates one segment [index, end) with constant parameters into out. */
static void segment(sig_gen_t *s, int16_t *out, uint64_t end, const sig_dist_t *d)
{
    uint32_t n = (uint32_t)(end - s->index);
    double k[SIG_NCH][2 * (1 + SIG_NHARM)];
    for (int ch = 0; ch < SIG_NCH; ch++) {
        int kind = ch / 3, ph = ch % 3;
        /* both kinds use the same full scale, so nominal RMS is nom_counts_v counts for each */
        double m = sqrt(2.0) * s->nom_counts_v * s->unb_mag[kind][ph] * (kind ? s->load : 1.0);
        if (d && (d->phases >> ph) & 1)
            m *= d->magnitude; /* currents follow the voltage: constant-impedance load */
        double a = -ph * (TWO_PI / 3) + s->unb_ang[kind][ph] - (kind ? s->pf_angle : 0);
        /* A sin(h (theta + a) + p) = A cos(ha + p) sin(h theta) + A sin(ha + p) cos(h theta) */
        k[ch][0] = m * cos(a);
        k[ch][1] = m * sin(a);
        for (int j = 0; j < SIG_NHARM; j++) {
            double hm = m * s->harm_a[kind][j], ha = harm_order[j] * a + s->harm_p[kind][j];
            k[ch][2 + 2 * j] = hm * cos(ha);
            k[ch][3 + 2 * j] = hm * sin(ha);
        }
    }
    double step = phase_advance(s, s->index, end) / n;
    double c = cos(s->theta), sn = sin(s->theta), cr = cos(step), sr = sin(step);
    double nv = s->noise_amp[0] * (1.0 / 32768.0), ni = s->noise_amp[1] * (1.0 / 32768.0);
    int noisy = nv > 0 || ni > 0;
    double sum0 = 0, sum1 = 0, sum2 = 0;
    for (uint32_t i = 0; i < n; i++) {
        double c2 = c * c - sn * sn, s2 = 2 * c * sn;
        double c3 = c2 * c - s2 * sn, s3 = s2 * c + c2 * sn;
        double c5 = c3 * c2 - s3 * s2, s5 = s3 * c2 + c3 * s2;
        double c7 = c5 * c2 - s5 * s2, s7 = s5 * c2 + c5 * s2;
        double v[SIG_NCH];
        for (int ch = 0; ch < SIG_NCH; ch++)
            v[ch] = k[ch][0] * sn + k[ch][1] * c + k[ch][2] * s3 + k[ch][3] * c3 + k[ch][4] * s5 +
                    k[ch][5] * c5 + k[ch][6] * s7 + k[ch][7] * c7;
        sum0 += v[0] * v[0];
        sum1 += v[1] * v[1];
        sum2 += v[2] * v[2];
        if (noisy) {
            uint64_t r1 = rng_next(&s->rng), r2 = rng_next(&s->rng);
            v[0] += nv * (int16_t)(r1);
            v[1] += nv * (int16_t)(r1 >> 16);
            v[2] += nv * (int16_t)(r1 >> 32);
            v[3] += ni * (int16_t)(r1 >> 48);
            v[4] += ni * (int16_t)(r2);
            v[5] += ni * (int16_t)(r2 >> 16);
        }
        for (int ch = 0; ch < SIG_NCH; ch++)
            out[ch] = quantize(v[ch]);
        out += SIG_NCH;
        double t = c * cr - sn * sr;
        sn = sn * cr + c * sr;
        c = t;
    }
    s->hc_sum[0] += sum0;
    s->hc_sum[1] += sum1;
    s->hc_sum[2] += sum2;
    s->hc_n += n;
    advance_theta(s, end);
    s->nsamples += n;
}

void sig_generate(sig_gen_t *s, int16_t *out, uint32_t n)
{
    uint64_t stop = s->index + n;
    drop_finished(s);
    while (s->index < stop) {
        if (s->index >= s->next_random)
            random_disturbance(s);
        if (s->index >= s->next_load)
            load_change(s);
        uint64_t end = stop;
        if (s->hc_end < end)
            end = s->hc_end;
        if (s->next_random < end)
            end = s->next_random;
        if (s->next_load < end)
            end = s->next_load;
        const sig_dist_t *active = NULL;
        for (unsigned i = 0; i < s->ndist; i++) {
            const sig_dist_t *d = &s->dist[i];
            if (d->start <= s->index && s->index < d->start + d->len) {
                active = d;
                if (d->start + d->len < end)
                    end = d->start + d->len;
                break;
            }
            if (d->start > s->index) {
                if (d->start < end)
                    end = d->start;
                break;
            }
        }
        uint64_t from = s->index;
        segment(s, out, end, active);
        out += (end - from) * SIG_NCH;
        if (s->index == s->hc_end)
            detector_step(s);
        if (active && s->index >= active->start + active->len)
            drop_finished(s);
    }
}
