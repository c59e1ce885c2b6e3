/* Unit tests for sim/schedule: the --schedule parser of gridsense-sim, its checks, and a parsed
 * schedule applied through sim/signal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "sim/schedule.h"
#include "sim/signal.h"

#define RATE  4000u
#define NOM_V 57.735

static sched_t parse_ok(const char *spec)
{
    sched_t sc;
    char err[160] = "";
    int rc = sched_parse(spec, &sc, err, sizeof err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", spec, err);
    return sc;
}

static void test_parse_full(void **state)
{
    sched_t sc = parse_ok("dip@10+200:60");
    assert_int_equal(sc.kind, SIG_DIP);
    assert_true(sc.start_s == 10 && sc.dur_ms == 200 && sc.level_pct == 60);
    assert_int_equal(sc.phases, 7);
    assert_int_equal(sc.first, 0);
    assert_true(sched_selects(&sc, 0) && sched_selects(&sc, 9999));

    sc = parse_ok("swell@5.5+100:115");
    assert_int_equal(sc.kind, SIG_SWELL);
    assert_true(sc.start_s == 5.5 && sc.dur_ms == 100 && sc.level_pct == 115);

    sc = parse_ok("interruption@30+1000");
    assert_int_equal(sc.kind, SIG_INTERRUPTION);
    assert_true(sc.start_s == 30 && sc.dur_ms == 1000 && sc.level_pct == 0);
    assert_int_equal(sc.phases, 7);

    sc = parse_ok("dip@0.25+12.5:40.5/2-4,phases=CA");
    assert_true(sc.start_s == 0.25 && sc.dur_ms == 12.5 && sc.level_pct == 40.5);
    assert_int_equal(sc.first, 2);
    assert_int_equal(sc.last, 4);
    assert_int_equal(sc.phases, 5);
    /* 1-based in the option, 0-based in the call */
    assert_false(sched_selects(&sc, 0));
    assert_true(sched_selects(&sc, 1) && sched_selects(&sc, 3));
    assert_false(sched_selects(&sc, 4));

    sc = parse_ok("swell@7/3");
    assert_int_equal(sc.first, 3);
    assert_int_equal(sc.last, 3);
    assert_true(sc.dur_ms == 100 && sc.level_pct == 120); /* defaults */
    assert_true(sched_selects(&sc, 2) && !sched_selects(&sc, 3) && !sched_selects(&sc, 1));

    sc = parse_ok("dip@3");
    assert_true(sc.dur_ms == 100 && sc.level_pct == 50);
    sc = parse_ok("interruption@1:4.9,phases=ABC");
    assert_true(sc.level_pct == 4.9);
    sc = parse_ok("dip@1000000+3600000:0");
    sc = parse_ok("swell@0+1:150,phases=B");
    assert_int_equal(sc.phases, 2);
}

static void test_parse_rejects(void **state)
{
    static const char *bad[] = {
        "",
        "dip",
        "@10",
        "Dip@10",
        "sag@10",
        "dip@",
        "dip@-1",
        "dip@+1",
        "dip@1e3",
        "dip@.5",
        "dip@5.",
        "dip@inf",
        "dip@nan",
        "dip@0x10",
        "dip@1000000.5",
        "dip@ 10",
        "dip@10 ",
        "dip@10+",
        "dip@10+0",
        "dip@10+0.5",
        "dip@10+3600001",
        "dip@10+-5",
        "dip@10:",
        "dip@10:100",
        "dip@10:-1",
        "swell@10:100",
        "swell@10:150.1",
        "swell@10:90",
        "interruption@10:5",
        "interruption@10:50",
        "dip@10/",
        "dip@10/0",
        "dip@10/0-3",
        "dip@10/5-2",
        "dip@10/1-",
        "dip@10/-3",
        "dip@10/1-2-3",
        "dip@10/1234567890",
        "dip@10/1000001",
        "dip@10:60+200",   /* out of order */
        "dip@10/2:60",     /* out of order */
        "dip@10,phases=",  /* empty */
        "dip@10,phases=D", /* unknown */
        "dip@10,phases=a", /* lower case */
        "dip@10,phases=ABA",
        "dip@10,phases=ABCA",
        "dip@10,phase=A",
        "interruption@10,phases=AB",
        "dip@10+200:60/1,phases=A,",
        "dip@10@11",
        "dip@00000000000000000000000000001", /* longer than any sensible number */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sched_t sc;
        char err[160] = "";
        memset(&sc, 0xA5, sizeof sc);
        int rc = sched_parse(bad[i], &sc, err, sizeof err);
        if (rc != GS_EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(strlen(err) > 5);    /* a reason */
        assert_null(strchr(err, '\n'));  /* one line */
        assert_int_equal(sc.kind, 0xA5); /* *out untouched on failure */
    }
    char tiny[8];
    sched_t sc;
    assert_int_equal(sched_parse("dip@x", &sc, tiny, sizeof tiny), GS_EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1); /* truncated, terminated */
    assert_int_equal(sched_parse(NULL, &sc, tiny, sizeof tiny), GS_EINVAL);
}

static void test_dist_conversion(void **state)
{
    sig_dist_t d;
    sched_t sc = parse_ok("dip@10+200:60");
    sched_dist(&sc, RATE, &d);
    assert_int_equal(d.start, 10 * RATE);
    assert_int_equal(d.len, RATE / 5);
    assert_int_equal(d.kind, SIG_DIP);
    assert_int_equal(d.phases, 7);
    assert_true(fabsf(d.magnitude - 0.6f) < 1e-6f);

    sc = parse_ok("swell@5.5+100:115,phases=B");
    sched_dist(&sc, 4800, &d);
    assert_int_equal(d.start, 26400); /* 5.5 s x 4800 */
    assert_int_equal(d.len, 480);
    assert_int_equal(d.phases, 2);
    assert_true(fabsf(d.magnitude - 1.15f) < 1e-6f);

    sc = parse_ok("dip@0.0001+1"); /* rounds to sample 0; at least one sample set long */
    sched_dist(&sc, 200, &d);
    assert_int_equal(d.start, 0);
    assert_int_equal(d.len, 1);

    sc = parse_ok("dip@1000000+3600000"); /* the extremes fit the types */
    sched_dist(&sc, 100000, &d);
    assert_int_equal(d.start, 100000000000ull);
    assert_int_equal(d.len, 360000000u);
}

static void test_check(void **state)
{
    char err[200];
    sched_t a[4];
    a[0] = parse_ok("dip@10+200:60");
    a[1] = parse_ok("swell@10.2+100:115"); /* starts where the dip ends: no overlap */
    a[2] = parse_ok("interruption@30+1000/1-5");
    assert_int_equal(sched_check(a, 3, RATE, 5, err, sizeof err), 0);
    assert_int_equal(sched_check(a, 0, RATE, 1, err, sizeof err), 0);

    /* TERMS beyond the simulated terminals */
    assert_int_equal(sched_check(a, 3, RATE, 4, err, sizeof err), GS_EINVAL);
    assert_non_null(strstr(err, "interruption@30+1000/1-5"));

    /* overlapping in time on shared terminals */
    a[3] = parse_ok("dip@30.5/5");
    assert_int_equal(sched_check(a, 4, RATE, 5, err, sizeof err), GS_EINVAL);
    assert_non_null(strstr(err, "dip@30.5/5"));
    assert_non_null(strstr(err, "overlaps"));
    /* the same time on other terminals is fine */
    a[3] = parse_ok("dip@30.5/6-7");
    assert_int_equal(sched_check(a, 4, RATE, 7, err, sizeof err), 0);
    /* "all terminals" shares every terminal */
    a[3] = parse_ok("swell@10.1/7");
    assert_int_equal(sched_check(a, 4, RATE, 7, err, sizeof err), GS_EINVAL);

    /* more than the signal generator can hold */
    sched_t many[SCHED_MAX + 1];
    char specs[SCHED_MAX + 1][32];
    for (int i = 0; i <= SCHED_MAX; i++) {
        snprintf(specs[i], sizeof specs[i], "dip@%d", i);
        many[i] = parse_ok(specs[i]);
    }
    assert_int_equal(sched_check(many, SCHED_MAX, RATE, 1, err, sizeof err), 0);
    assert_int_equal(sched_check(many, SCHED_MAX + 1, RATE, 1, err, sizeof err), GS_EINVAL);
}

/* Voltage RMS of phase ch over the half cycle starting at sample set k, % of nominal. */
static double hc_rms_pct(const sig_gen_t *s, const int16_t *buf, unsigned ch, uint32_t k)
{
    uint32_t hc = RATE / 100; /* 50 Hz: 40 sample sets per half cycle */
    double sum = 0;
    for (uint32_t i = k; i < k + hc; i++) {
        double v = buf[(size_t)i * SIG_NCH + ch] * sig_scale(s, ch);
        sum += v * v;
    }
    return 100.0 * sqrt(sum / hc) / NOM_V;
}

static void init_clean(sig_gen_t *s)
{
    sig_params_t p = {.rate = RATE,
                      .nominal_hz = 50,
                      .nominal_v = NOM_V,
                      .nominal_a = 5,
                      .seed = 5,
                      .grid_seed = 7,
                      .clean = 1};
    assert_int_equal(sig_init(s, &p), 0);
}

/* Applies the specs as gridsense-sim's terminal `index` does, generates 2 s. */
static int16_t *run(sig_gen_t *s, const char *const *specs, size_t n, uint32_t index)
{
    init_clean(s);
    for (size_t i = 0; i < n; i++) {
        sched_t sc = parse_ok(specs[i]);
        sig_dist_t d;
        if (!sched_selects(&sc, index))
            continue;
        sched_dist(&sc, RATE, &d);
        assert_int_equal(sig_schedule(s, &d), 0);
    }
    int16_t *buf = malloc((size_t)2 * RATE * SIG_NCH * sizeof *buf);
    assert_non_null(buf);
    sig_generate(s, buf, 2 * RATE);
    return buf;
}

static void test_schedule_through_signal(void **state)
{
    static const char *const specs[] = {"dip@0.5+200:60", "swell@1.5+100:115/2,phases=B"};
    sig_gen_t s;
    int16_t *buf = run(&s, specs, 2, 0);
    uint32_t hc = RATE / 100, d0 = RATE / 2, d1 = RATE / 2 + RATE / 5;
    for (uint32_t k = 0; k + hc <= 2 * RATE; k += hc) {
        for (unsigned ch = 0; ch < 3; ch++) {
            double pct = hc_rms_pct(&s, buf, ch, k);
            if (k >= d0 && k + hc <= d1) /* inside the dip window: 60 % residual */
                assert_true(fabs(pct - 60.0) < 0.3);
            else if (k + hc <= d0 || k >= d1) /* outside: nominal (the swell is terminal 2's) */
                assert_true(fabs(pct - 100.0) < 0.3);
        }
    }
    /* the terminal-side detector reports it as a DIP with ~600 permille on every phase */
    sig_event_t ev;
    assert_int_equal(sig_event_pop(&s, &ev), 1);
    assert_int_equal(ev.kind, SIG_DIP);
    assert_int_equal(ev.channel, 0xFFFF);
    assert_true(ev.index >= d0 && ev.index <= d0 + RATE / 50);
    assert_int_equal(sig_event_refresh(&s, &ev), 1);
    assert_int_equal(ev.active, 0);
    assert_true(ev.value_permille >= 595 && ev.value_permille <= 605);
    assert_int_equal(sig_event_pop(&s, &ev), 0);
    free(buf);

    /* terminal 2 (index 1) gets both; its swell is on phase B only */
    buf = run(&s, specs, 2, 1);
    uint32_t s0 = RATE * 3 / 2, s1 = s0 + RATE / 10;
    for (uint32_t k = s0; k + hc <= s1; k += hc) {
        assert_true(fabs(hc_rms_pct(&s, buf, 1, k) - 115.0) < 0.3);
        assert_true(fabs(hc_rms_pct(&s, buf, 0, k) - 100.0) < 0.3);
        assert_true(fabs(hc_rms_pct(&s, buf, 2, k) - 100.0) < 0.3);
    }
    assert_true(fabs(hc_rms_pct(&s, buf, 1, s1 + hc) - 100.0) < 0.3);
    assert_int_equal(sig_event_pop(&s, &ev), 1);
    assert_int_equal(ev.kind, SIG_DIP);
    assert_int_equal(sig_event_pop(&s, &ev), 1);
    assert_int_equal(ev.kind, SIG_SWELL);
    assert_int_equal(ev.channel, 1);
    assert_true(ev.index >= s0 && ev.index <= s0 + RATE / 50);
    free(buf);
}

static void test_interruption_through_signal(void **state)
{
    static const char *const specs[] = {"interruption@1+300"};
    sig_gen_t s;
    int16_t *buf = run(&s, specs, 1, 0);
    uint32_t hc = RATE / 100;
    for (uint32_t k = RATE; k + hc <= RATE + RATE * 3 / 10; k += hc)
        for (unsigned ch = 0; ch < 3; ch++)
            assert_true(hc_rms_pct(&s, buf, ch, k) < 0.1);
    assert_true(fabs(hc_rms_pct(&s, buf, 0, RATE - hc) - 100.0) < 0.3);
    assert_true(fabs(hc_rms_pct(&s, buf, 0, RATE + RATE * 3 / 10) - 100.0) < 0.3);
    sig_event_t ev;
    assert_int_equal(sig_event_pop(&s, &ev), 1);
    assert_int_equal(sig_event_refresh(&s, &ev), 1);
    assert_int_equal(ev.kind, SIG_INTERRUPTION);
    assert_true(ev.value_permille <= 5);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_dist_conversion),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_schedule_through_signal),
        cmocka_unit_test(test_interruption_through_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
