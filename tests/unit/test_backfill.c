/* ana_rebuild_range (src/ana/backfill.c) on blocks written through a real store: an EVENT
 * capture of a terminal that does not stream is analysed as a segment of its own (its dip is
 * found, with the declared voltage as reference); the same capture with WAVEFORM blocks holding
 * its samples is left out and the dip comes from the waveforms, once; aggregates end inside the
 * range only; the span covered and the highest seq read are reported; blocks without a channel
 * layout are counted as not analysable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ana/ana.h"
#include "core/err.h"
#include "core/util.h"
#include "dsp/dsp.h"
#include "store/store.h"
#include "tests/unit/ut_tmp.h"
#include "tests/unit/ut_store.h" /* either engine (GS_PG_URL) */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC   1000000000LL
#define RATE  4000
#define T0    (1800000000LL * SEC + 600 * SEC) /* 10 min into a 2-h unit */
#define UNIT0 (T0 / STORE_ANA_UNIT_NS * STORE_ANA_UNIT_NS)
#define UDIN  57.735
#define SCALE 0.01

typedef struct {
    char dir[64];
    store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_backfill_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256] = "";
    assert_int_equal(store_open(f->dir, NULL, &f->s, err, sizeof err), 0);
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "C1");
    assert_int_equal(store_terminal_add(f->s, &t), 0);
    assert_int_equal(store_terminal_set_declared_v(f->s, "C1", UDIN), 0);
    dsp_global_init(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    ut_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A 3-phase block of n sample sets from t0 at 50 Hz, UDIN RMS, dipping to 50 % from dip0 for
 * dip_ns (times absolute). */
static store_item_t *block(uint64_t seq, int is_event, int64_t t0, int n, int64_t dip0,
                           int64_t dip_ns, int layout)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "C1");
    it->seq = seq;
    it->is_event = is_event;
    it->t0_ns = t0;
    it->sample_rate = RATE;
    it->channel_mask = 7;
    it->nchannels = 3;
    it->sample_fmt = 1;
    it->time_quality = 1;
    it->nsamples = (uint32_t)n;
    it->data_len = (size_t)n * 3 * 2;
    it->data = xmalloc(it->data_len);
    for (int k = 0; k < n; k++) {
        int64_t t = t0 + (int64_t)k * SEC / RATE;
        double amp = UDIN * sqrt(2.0) * (t >= dip0 && t < dip0 + dip_ns ? 0.5 : 1.0);
        double ph = 2 * M_PI * 50.0 * (double)(t % SEC) / 1e9;
        for (int c = 0; c < 3; c++) {
            int16_t v = (int16_t)lrint(amp * cos(ph - c * 2 * M_PI / 3) / SCALE);
            it->data[(k * 3 + c) * 2] = (uint8_t)(v & 0xff);
            it->data[(k * 3 + c) * 2 + 1] = (uint8_t)((uint16_t)v >> 8);
        }
    }
    if (layout) {
        it->nlayout = 3;
        for (int c = 0; c < 3; c++)
            it->layout[c] = (store_chan_t){.index = (uint8_t)c,
                                           .kind = 1,
                                           .phase = (uint8_t)(c + 1),
                                           .unit = 1,
                                           .scale = SCALE};
    }
    it->ana_pending = STORE_ANA_SKIPPED;
    return it;
}

static void drain(store_t *s)
{
    for (int i = 0; i < 10000; i++) {
        size_t items = 1;
        store_queue_depth(s, &items, NULL);
        if (items == 0)
            return;
        usleep(1000);
    }
    fail_msg("writer did not drain");
}

static void test_capture_alone(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    /* a 1.5 s capture with a 200 ms dip 0.5 s in */
    assert_int_equal(store_submit(f->s, block(1, 1, T0, 6000, T0 + SEC / 2, SEC / 5, 1)), 0);
    drain(f->s);
    store_rebuild_t rb;
    ana_rebuild_info_t info;
    assert_int_equal(
        ana_rebuild_range(f->s, "C1", UNIT0, UNIT0 + STORE_ANA_UNIT_NS, 1, NULL, &rb, &info), 0);
    assert_int_equal(info.blocks, 0);
    assert_int_equal(info.captures, 1);
    assert_int_equal(info.covered, 0);
    assert_int_equal(rb.max_seq, 1);
    assert_int_equal(rb.covered, 1);
    assert_int_equal(rb.cover_from_ns, T0);
    assert_int_equal(rb.cover_to_ns, T0 + 6000LL * SEC / RATE);
    assert_int_equal(rb.nev, 1);
    assert_string_equal(rb.ev[0].kind, "dip");
    assert_true(llabs(rb.ev[0].start_ns - (T0 + SEC / 2)) <= SEC / 50);
    assert_true(fabs(rb.ev[0].extreme_pct - 50) < 2);
    assert_true(fabs(rb.ev[0].reference - UDIN) < 1e-9);
    assert_string_equal(rb.ev[0].channel_names, "Ua,Ub,Uc");
    for (size_t i = 0; i < rb.nmeas; i++)
        assert_true(rb.meas[i].t_end_ns > UNIT0 &&
                    rb.meas[i].t_end_ns <= UNIT0 + STORE_ANA_UNIT_NS);
    store_rebuild_clear(&rb);
    store_writer_stop(f->s);
}

static void test_capture_covered_by_waveforms(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    /* 5 s of waveform blocks (100 ms), the dip 2 s in, and a capture of 1 s around it */
    uint64_t seq = 1;
    for (int b = 0; b < 50; b++) {
        int64_t t0 = T0 + (int64_t)b * SEC / 10;
        if (b == 25)
            assert_int_equal(store_submit(f->s, block(seq++, 1, T0 + 3 * SEC / 2, 4000,
                                                      T0 + 2 * SEC, SEC / 5, 1)),
                             0);
        assert_int_equal(store_submit(f->s, block(seq++, 0, t0, 400, T0 + 2 * SEC, SEC / 5, 1)), 0);
    }
    drain(f->s);
    store_rebuild_t rb;
    ana_rebuild_info_t info;
    assert_int_equal(
        ana_rebuild_range(f->s, "C1", UNIT0, UNIT0 + STORE_ANA_UNIT_NS, 1, NULL, &rb, &info), 0);
    assert_int_equal(info.blocks, 50);
    assert_int_equal(info.captures, 0);
    assert_int_equal(info.covered, 1);
    assert_int_equal(rb.max_seq, 51);
    assert_int_equal(rb.nev, 1); /* once, from the waveforms */
    assert_true(llabs(rb.ev[0].start_ns - (T0 + 2 * SEC)) <= SEC / 50);
    int n3 = 0;
    for (size_t i = 0; i < rb.nmeas; i++)
        n3 += strcmp(rb.meas[i].interval, "3s") == 0;
    assert_true(n3 >= 1);
    store_rebuild_clear(&rb);

    /* a narrower range: only what ends in it, and the span clipped to it */
    int64_t from = T0 + 3 * SEC, to = T0 + 4 * SEC;
    assert_int_equal(ana_rebuild_range(f->s, "C1", from, to, 1, NULL, &rb, &info), 0);
    assert_int_equal(rb.nev, 0); /* the dip started before the range */
    assert_int_equal(rb.cover_from_ns, from);
    assert_int_equal(rb.cover_to_ns, to);
    for (size_t i = 0; i < rb.nmeas; i++)
        assert_true(rb.meas[i].t_end_ns > from && rb.meas[i].t_end_ns <= to);
    store_rebuild_clear(&rb);
    store_writer_stop(f->s);
}

static void test_no_layout_and_unknown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    assert_int_equal(store_submit(f->s, block(1, 0, T0, 400, 0, 0, 0)), 0);
    drain(f->s);
    store_rebuild_t rb;
    ana_rebuild_info_t info;
    assert_int_equal(
        ana_rebuild_range(f->s, "C1", UNIT0, UNIT0 + STORE_ANA_UNIT_NS, 1, NULL, &rb, &info), 0);
    assert_int_equal(info.unusable, 1);
    assert_int_equal(rb.covered, 0);
    store_rebuild_clear(&rb);
    assert_int_equal(
        ana_rebuild_range(f->s, "NOPE", UNIT0, UNIT0 + STORE_ANA_UNIT_NS, 1, NULL, &rb, &info),
        GS_ENOTFOUND);
    store_rebuild_clear(&rb);
    store_writer_stop(f->s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capture_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_covered_by_waveforms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_layout_and_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
