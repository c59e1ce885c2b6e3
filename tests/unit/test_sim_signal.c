/* Unit tests for sim/signal: the synthetic waveform generator of gridsense-sim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/signal.h"

#define RATE 4000u
#define PI   3.14159265358979323846

static sig_params_t params(int clean, uint64_t seed)
{
    sig_params_t p = {.rate = RATE,
                      .nominal_hz = 50,
                      .nominal_v = 57.735,
                      .nominal_a = 5.0,
                      .seed = seed,
                      .grid_seed = 7,
                      .clean = clean};
    return p;
}

/* Generates n sample sets (heap, caller frees). */
static int16_t *gen(sig_gen_t *s, uint32_t n)
{
    int16_t *buf = malloc((size_t)n * SIG_NCH * sizeof *buf);
    assert_non_null(buf);
    sig_generate(s, buf, n);
    return buf;
}

/* RMS in engineering units of channel ch over sample sets [from, from + n). */
static double rms(const sig_gen_t *s, const int16_t *buf, unsigned ch, uint32_t from, uint32_t n)
{
    double sum = 0;
    for (uint32_t i = from; i < from + n; i++) {
        double v = buf[(size_t)i * SIG_NCH + ch] * sig_scale(s, ch);
        sum += v * v;
    }
    return sqrt(sum / n);
}

/* Phase angle (rad) of the 50 Hz component of channel ch over n samples (whole cycles). */
static double angle50(const int16_t *buf, unsigned ch, uint32_t n)
{
    double re = 0, im = 0;
    for (uint32_t i = 0; i < n; i++) {
        double w = 2 * PI * 50.0 * i / RATE;
        re += buf[(size_t)i * SIG_NCH + ch] * cos(w);
        im += buf[(size_t)i * SIG_NCH + ch] * sin(w);
    }
    return atan2(re, im); /* angle of sin(w + a) */
}

static double wrap_deg(double rad)
{
    double d = fmod(rad * 180 / PI, 360.0);
    if (d > 180)
        d -= 360;
    if (d <= -180)
        d += 360;
    return d;
}

/* Frequency from positive-going zero crossings (linear interpolation) of channel ch. */
static double zc_frequency(const int16_t *buf, unsigned ch, uint32_t n)
{
    double first = -1, last = -1;
    int count = 0;
    for (uint32_t i = 1; i < n; i++) {
        double a = buf[(size_t)(i - 1) * SIG_NCH + ch], b = buf[(size_t)i * SIG_NCH + ch];
        if (a < 0 && b >= 0) {
            double t = (i - 1) + a / (a - b);
            if (first < 0)
                first = t;
            else
                count++;
            last = t;
        }
    }
    assert_true(count > 0);
    return count * (double)RATE / (last - first);
}

static void test_clean_rms_matches_nominal(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(1, 1);
    assert_int_equal(sig_init(&s, &p), 0);
    int16_t *buf = gen(&s, RATE); /* 1 s = 50 whole cycles */
    for (unsigned ch = 0; ch < 3; ch++)
        assert_true(fabs(rms(&s, buf, ch, 0, RATE) / 57.735 - 1) < 0.005);
    for (unsigned ch = 3; ch < 6; ch++)
        assert_true(fabs(rms(&s, buf, ch, 0, RATE) / 5.0 - 1) < 0.005);
    free(buf);
}

static void test_realistic_rms_close_to_nominal(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(0, 3);
    assert_int_equal(sig_init(&s, &p), 0);
    int16_t *buf = gen(&s, RATE);
    /* harmonics (~3.7 % THD) and unbalance (+-1 %) keep the voltage RMS within 1.5 % */
    for (unsigned ch = 0; ch < 3; ch++)
        assert_true(fabs(rms(&s, buf, ch, 0, RATE) / 57.735 - 1) < 0.015);
    free(buf);
}

static void test_phases_120_apart(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(1, 5);
    assert_int_equal(sig_init(&s, &p), 0);
    int16_t *buf = gen(&s, RATE / 5);
    for (unsigned base = 0; base < 6; base += 3) {
        double a = angle50(buf, base, RATE / 5), b = angle50(buf, base + 1, RATE / 5),
               c = angle50(buf, base + 2, RATE / 5);
        assert_true(fabs(wrap_deg(a - b) - 120) < 0.1);
        assert_true(fabs(wrap_deg(b - c) - 120) < 0.1);
        assert_true(fabs(wrap_deg(c - a) - 120) < 0.1);
    }
    /* with realistic unbalance the angles stay within +-0.5 degrees per phase */
    sig_gen_t r;
    sig_params_t q = params(0, 5);
    assert_int_equal(sig_init(&r, &q), 0);
    int16_t *rb = gen(&r, RATE / 5);
    double a = angle50(rb, 0, RATE / 5), b = angle50(rb, 1, RATE / 5);
    assert_true(fabs(wrap_deg(a - b) - 120) < 1.5);
    free(rb);
    free(buf);
}

static void test_frequency_from_zero_crossings(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(1, 9);
    assert_int_equal(sig_init(&s, &p), 0);
    int16_t *buf = gen(&s, 2 * RATE);
    assert_true(fabs(zc_frequency(buf, 0, 2 * RATE) - 50.0) < 0.001);
    free(buf);

    /* 60 Hz, with drift: within the drift band and agreeing with sig_frequency() */
    sig_gen_t d;
    sig_params_t q = params(0, 9);
    q.nominal_hz = 60;
    assert_int_equal(sig_init(&d, &q), 0);
    buf = gen(&d, RATE / 2);
    double f = zc_frequency(buf, 0, RATE / 2);
    assert_true(fabs(f - 60.0) < 0.06);
    assert_true(fabs(f - sig_frequency(&d, RATE / 4)) < 0.01);
    free(buf);
}

static void test_scheduled_dip(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(1, 11);
    assert_int_equal(sig_init(&s, &p), 0);
    /* 50 % residual on phase B from 0.5 s for 200 ms (10 cycles) */
    sig_dist_t d = {
        .start = RATE / 2, .len = RATE / 5, .kind = SIG_DIP, .phases = 2, .magnitude = 0.5f};
    assert_int_equal(sig_schedule(&s, &d), 0);
    int16_t *buf = gen(&s, RATE);
    uint32_t hc = RATE / 100; /* samples per half cycle */
    /* half cycles fully inside the dip */
    for (uint32_t k = RATE / 2; k + hc <= RATE / 2 + RATE / 5; k += hc) {
        assert_true(fabs(rms(&s, buf, 1, k, hc) / 57.735 - 0.5) < 0.01);
        assert_true(fabs(rms(&s, buf, 0, k, hc) / 57.735 - 1.0) < 0.005);
    }
    /* before and after */
    assert_true(fabs(rms(&s, buf, 1, 0, RATE / 2) / 57.735 - 1) < 0.005);
    assert_true(fabs(rms(&s, buf, 1, RATE * 3 / 4, RATE / 4) / 57.735 - 1) < 0.005);

    /* the detector saw one dip on phase B with ~50 % residual, triggered within one cycle */
    sig_event_t ev;
    assert_int_equal(sig_event_pop(&s, &ev), 1);
    assert_int_equal(ev.kind, SIG_DIP);
    assert_int_equal(ev.channel, 1);
    assert_true(ev.index >= d.start && ev.index <= d.start + RATE / 50);
    assert_int_equal(sig_event_refresh(&s, &ev), 1);
    assert_int_equal(ev.active, 0);
    assert_true(ev.value_permille >= 495 && ev.value_permille <= 505);
    assert_int_equal(sig_event_pop(&s, &ev), 0);
    free(buf);
}

static void test_interruption_and_swell_detected(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(1, 12);
    assert_int_equal(sig_init(&s, &p), 0);
    sig_dist_t in = {.start = 1000, .len = 800, .kind = SIG_INTERRUPTION, .magnitude = 0.01f};
    sig_dist_t sw = {.start = 3000, .len = 400, .kind = SIG_SWELL, .phases = 5, .magnitude = 1.15f};
    assert_int_equal(sig_schedule(&s, &sw), 0);
    assert_int_equal(sig_schedule(&s, &in), 0);
    int16_t *buf = gen(&s, RATE);
    sig_event_t a, b;
    assert_int_equal(sig_event_pop(&s, &a), 1);
    assert_int_equal(sig_event_pop(&s, &b), 1);
    /* the interruption first crosses the dip threshold; its class is known once it deepens */
    assert_int_equal(a.kind, SIG_DIP);
    assert_int_equal(b.kind, SIG_SWELL);
    assert_int_equal(b.channel, 0xFFFF);
    assert_true(b.value_permille > 1100);
    free(buf);

    sig_gen_t t;
    assert_int_equal(sig_init(&t, &p), 0);
    assert_int_equal(sig_schedule(&t, &in), 0);
    buf = gen(&t, 1400);
    assert_int_equal(sig_event_pop(&t, &a), 1);
    assert_int_equal(sig_event_refresh(&t, &a), 1);
    assert_int_equal(a.kind, SIG_INTERRUPTION);
    assert_true(a.value_permille <= 20);
    free(buf);
}

static void test_continuity_across_blocks(void **state)
{
    /* one long block == many short odd-sized blocks, sample for sample */
    sig_gen_t a, b;
    sig_params_t p = params(0, 21);
    p.disturb_per_min = 60; /* plenty of disturbances and segment splits */
    assert_int_equal(sig_init(&a, &p), 0);
    assert_int_equal(sig_init(&b, &p), 0);
    uint32_t n = 10 * RATE;
    int16_t *one = gen(&a, n);
    int16_t *many = malloc((size_t)n * SIG_NCH * sizeof *many);
    assert_non_null(many);
    uint32_t off = 0, sizes[] = {1, 7, 400, 333, 99, 1024};
    for (unsigned i = 0; off < n; i++) {
        uint32_t k = sizes[i % 6];
        if (k > n - off)
            k = n - off;
        sig_generate(&b, many + (size_t)off * SIG_NCH, k);
        off += k;
    }
    /* within 1 count: only floating-point rounding differs between the two paths */
    for (size_t i = 0; i < (size_t)n * SIG_NCH; i++)
        assert_true(abs(one[i] - many[i]) <= 1);
    free(one);

    /* no phase jump at block boundaries of a clean signal: each sample step stays below the
     * maximum slope of the sine, 2 pi f / rate * peak, also across boundaries */
    sig_gen_t c;
    sig_params_t q = params(1, 22);
    assert_int_equal(sig_init(&c, &q), 0);
    for (uint32_t i = 0; i < 50; i++)
        sig_generate(&c, many + (size_t)i * 80 * SIG_NCH, 80);
    double peak = sqrt(2.0) * 57.735 / sig_scale(&c, 0);
    double max_step = 2 * PI * 50.0 / RATE * peak * 1.01 + 1;
    for (uint32_t i = 1; i < 50 * 80; i++)
        assert_true(fabs((double)many[i * SIG_NCH] - many[(i - 1) * SIG_NCH]) <= max_step);
    free(many);
}

static void test_skip_keeps_phase(void **state)
{
    sig_gen_t a, b;
    sig_params_t p = params(1, 31);
    assert_int_equal(sig_init(&a, &p), 0);
    assert_int_equal(sig_init(&b, &p), 0);
    int16_t *x = gen(&a, 12345);
    free(x);
    sig_skip(&b, 12345);
    assert_int_equal(sig_index(&a), sig_index(&b));
    int16_t *ya = gen(&a, 800), *yb = gen(&b, 800);
    for (size_t i = 0; i < 800 * SIG_NCH; i++)
        assert_true(abs(ya[i] - yb[i]) <= 1);
    free(ya);
    free(yb);
}

static void test_deterministic_with_seed(void **state)
{
    sig_gen_t a, b, c;
    sig_params_t p = params(0, 42), q = params(0, 43);
    p.disturb_per_min = q.disturb_per_min = 10;
    assert_int_equal(sig_init(&a, &p), 0);
    assert_int_equal(sig_init(&b, &p), 0);
    assert_int_equal(sig_init(&c, &q), 0);
    int16_t *x = gen(&a, 5 * RATE), *y = gen(&b, 5 * RATE), *z = gen(&c, 5 * RATE);
    assert_memory_equal(x, y, (size_t)5 * RATE * SIG_NCH * sizeof *x);
    assert_memory_not_equal(x, z, (size_t)5 * RATE * SIG_NCH * sizeof *x);
    free(x);
    free(y);
    free(z);
}

static void test_rejects_bad_params(void **state)
{
    sig_gen_t s;
    sig_params_t p = params(0, 1);
    p.nominal_hz = 55;
    assert_int_equal(sig_init(&s, &p), -1);
    p = params(0, 1);
    p.rate = 10;
    assert_int_equal(sig_init(&s, &p), -1);
    p = params(0, 1);
    assert_int_equal(sig_init(&s, &p), 0);
    assert_int_equal(sig_set_thresholds(&s, 1000, 1100), -1);
    assert_int_equal(sig_set_thresholds(&s, 850, 1005), -1);
    assert_int_equal(sig_set_thresholds(&s, 850, 1150), 0);
    sig_dist_t d = {.start = 0, .len = 0, .kind = SIG_DIP, .magnitude = 0.5f};
    assert_int_equal(sig_schedule(&s, &d), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_rms_matches_nominal),
        cmocka_unit_test(test_realistic_rms_close_to_nominal),
        cmocka_unit_test(test_phases_120_apart),
        cmocka_unit_test(test_frequency_from_zero_crossings),
        cmocka_unit_test(test_scheduled_dip),
        cmocka_unit_test(test_interruption_and_swell_detected),
        cmocka_unit_test(test_continuity_across_blocks),
        cmocka_unit_test(test_skip_keeps_phase),
        cmocka_unit_test(test_deterministic_with_seed),
        cmocka_unit_test(test_rejects_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
