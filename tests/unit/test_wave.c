/* Stored waveforms (src/wave, src/store/blocks_read.c): blocks with known signals written
 * through the real store writer, read back as raw samples, envelopes and around an event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/util.h"
#include "store/store.h"
#include "wave/wave.h"
#include "tests/unit/ut_tmp.h"
#include "tests/unit/ut_store.h" /* either engine (GS_PG_URL) */

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RATE    4000
#define BLK     400 /* sample sets per block: 100 ms */
#define BLK_NS  100000000LL
#define BASE_NS 1764000000000000000LL /* 2025-11-24T16:00:00Z */
#define VT      100.0
#define CT      40.0
#define SC_V    0.02f   /* V per count (secondary) */
#define SC_I    0.0005f /* A per count */
#define AMP_V   325.0   /* secondary peak volts: 229.8 V RMS */
#define AMP_I   7.0
#define NS(s)   ((int64_t)((s)*1e9 + 0.5))

typedef struct {
    char dir[64];
    store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_wave_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char err[256];
    if (store_open(f->dir, NULL, &f->s, err, sizeof err) != 0)
        return -1;
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    t.nominal_hz = 50;
    t.vt_ratio = VT;
    t.ct_ratio = CT;
    if (store_terminal_add(f->s, &t) != 0)
        return -1;
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

/* ---- The known signal ---- */

/* Ua, Ub, Uc, Ia, Ib, Ic (channel indices 0..5): 50 Hz sines 120° apart. Ua dips to 40 %
 * between dip_from and dip_to (s after BASE_NS), when dip_to > dip_from. */
static double dip_from = 0, dip_to = 0;

static double truth(int ch, int64_t t_ns)
{
    double t = (double)(t_ns - BASE_NS) / 1e9;
    double ph = 2 * M_PI * 50 * t - (ch % 3) * 2 * M_PI / 3;
    if (ch < 3) {
        double a = AMP_V;
        if (ch == 0 && dip_to > dip_from && t >= dip_from && t < dip_to)
            a *= 0.4;
        return a * sin(ph);
    }
    return AMP_I * sin(ph - 0.5);
}

static int16_t counts(int ch, int64_t t_ns)
{
    return (int16_t)lround(truth(ch, t_ns) / (ch < 3 ? SC_V : SC_I));
}

static int64_t set_ns(int64_t t0, int i)
{
    return t0 + (int64_t)i * 1000000000 / RATE;
}

/* A WAVEFORM block of 400 sets at t0 with the 6 channels (or those of mask), with the HELLO
 * layout unless no_layout; scale_v overrides the voltage scale in the layout (not the data). */
static store_item_t *block(uint64_t seq, int64_t t0, int no_layout, float scale_v)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
    it->seq = seq;
    it->t0_ns = t0;
    it->sample_rate = RATE;
    it->channel_mask = 0x3f;
    it->nchannels = 6;
    it->sample_fmt = 1;
    it->time_quality = 1;
    it->nsamples = BLK;
    it->data_len = (size_t)BLK * 6 * 2;
    it->data = xmalloc(it->data_len);
    for (int i = 0; i < BLK; i++)
        for (int c = 0; c < 6; c++) {
            uint16_t v = (uint16_t)counts(c, set_ns(t0, i));
            it->data[(i * 6 + c) * 2] = (uint8_t)(v & 0xff);
            it->data[(i * 6 + c) * 2 + 1] = (uint8_t)(v >> 8);
        }
    if (!no_layout) {
        it->nlayout = 6;
        for (int c = 0; c < 6; c++)
            it->layout[c] = (store_chan_t){.index = (uint8_t)c,
                                           .kind = c < 3 ? 1 : 2,
                                           .phase = (uint8_t)(c % 3 + 1),
                                           .unit = c < 3 ? 1 : 2,
                                           .scale = c < 3 ? scale_v : SC_I};
    }
    return it;
}

/* Writes blocks seq first..last at BASE + (seq − 1) × 100 ms (+ shift_ns from seq shift_from
 * on), skipping seq `skip` (0: none), through the real writer. */
static void write_blocks(fixture_t *f, uint64_t first, uint64_t last, uint64_t skip,
                         uint64_t shift_from, int64_t shift_ns, int no_layout, float scale_v)
{
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = first; q <= last; q++) {
        if (q == skip)
            continue;
        int64_t t0 = BASE_NS + (int64_t)(q - 1) * BLK_NS;
        if (shift_from && q >= shift_from)
            t0 += shift_ns;
        assert_int_equal(store_submit(f->s, block(q, t0, no_layout, scale_v)), 0);
    }
    store_writer_stop(f->s); /* drains and commits */
}

static json_t *query(fixture_t *f, int64_t from, int64_t to, const char *chans, int max_points,
                     int side)
{
    wave_req_t q = {.terminal_id = "T1",
                    .from_ns = from,
                    .to_ns = to,
                    .channels = chans,
                    .max_points = max_points,
                    .side = side};
    buf_t out = {0};
    char err[256] = "";
    int rc = wave_query(f->s, &q, &out, err, sizeof err);
    if (rc != 0)
        fail_msg("wave_query: %s (%s)", err, err_name(rc));
    json_error_t je;
    json_t *j = json_loads(out.data, 0, &je);
    if (!j)
        fail_msg("reply is not JSON: %s", je.text);
    buf_free(&out);
    return j;
}

static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

/* ---- Tests ---- */

/* Raw samples in engineering units on both sides, within the int16 quantisation. */
static void test_raw_primary_secondary(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 20, 0, 0, 0, 0, SC_V);
    int64_t from = BASE_NS + NS(0.5), to = BASE_NS + NS(0.6);
    for (int side = 0; side < 2; side++) {
        json_t *j = query(f, from, to, NULL, 1000, side);
        assert_string_equal(jstr(j, "mode"), "raw");
        assert_string_equal(jstr(j, "side"), side ? "secondary" : "primary");
        assert_int_equal(jint(j, "sample_sets"), 400);
        assert_int_equal(jint(j, "from_ns"), from);
        assert_string_equal(jstr(j, "from"), "2025-11-24T16:00:00.500Z");
        json_t *segs = json_object_get(j, "segments");
        assert_int_equal(json_array_size(segs), 1);
        assert_int_equal(json_array_size(json_object_get(j, "gaps")), 0);
        json_t *s = json_array_get(segs, 0);
        assert_int_equal(jint(s, "t0_ns"), from);
        assert_int_equal(jint(s, "end_ns"), to);
        assert_int_equal(jint(s, "n"), 400);
        assert_int_equal(jint(s, "sample_rate"), RATE);
        assert_int_equal(jint(s, "seq_first"), 6);
        assert_int_equal(jint(s, "seq_last"), 6);
        json_t *chans = json_object_get(s, "channels");
        assert_int_equal(json_array_size(chans), 6);
        const char *names[] = {"Ua", "Ub", "Uc", "Ia", "Ib", "Ic"};
        for (int c = 0; c < 6; c++) {
            json_t *ch = json_array_get(chans, (size_t)c);
            assert_string_equal(jstr(ch, "name"), names[c]);
            assert_string_equal(jstr(ch, "unit"), c < 3 ? "V" : "A");
            double ratio = side ? 1 : c < 3 ? VT : CT;
            double lsb = (c < 3 ? SC_V : SC_I) * ratio;
            assert_float_equal(json_number_value(json_object_get(ch, "ratio")), ratio, 1e-9);
            assert_float_equal(json_number_value(json_object_get(ch, "lsb")), lsb, lsb * 1e-6);
            json_t *v = json_object_get(json_object_get(s, "samples"), names[c]);
            assert_int_equal(json_array_size(v), 400);
            for (int i = 0; i < 400; i++) {
                double want = truth(c, from + (int64_t)i * 250000) * ratio;
                double got = json_number_value(json_array_get(v, (size_t)i));
                if (fabs(got - want) > lsb * 0.5 + lsb * 0.01)
                    fail_msg("side %d %s[%d] = %g, want %g (lsb %g)", side, names[c], i, got, want,
                             lsb);
            }
        }
        json_decref(j);
    }
}

/* Envelope: N buckets over the range, each with the min and max of its samples. */
static void test_envelope(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 20, 0, 0, 0, 0, SC_V);
    int64_t from = BASE_NS + NS(0.05), to = BASE_NS + NS(1.95);
    int N = 95; /* 20 ms = one cycle per bucket */
    json_t *j = query(f, from, to, "Ua,ic", N, WAVE_SIDE_SECONDARY);
    assert_string_equal(jstr(j, "mode"), "envelope");
    assert_int_equal(jint(j, "sample_sets"), (1.95 - 0.05) * RATE);
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    json_t *b = json_object_get(json_array_get(segs, 0), "buckets");
    json_t *tn = json_object_get(b, "t_ns"), *nn = json_object_get(b, "n");
    assert_int_equal(json_array_size(tn), N);
    const char *names[] = {"Ua", "Ic"};
    int chs[] = {0, 5};
    for (int k = 0; k < N; k++) {
        int64_t t0 = from + (to - from) * k / N, t1 = from + (to - from) * (k + 1) / N;
        assert_int_equal(json_integer_value(json_array_get(tn, (size_t)k)), t0);
        int n = 0;
        for (int m = 0; m < 2; m++) {
            double mn = INFINITY, mx = -INFINITY, lsb = m ? SC_I : SC_V;
            n = 0;
            for (int64_t t = BASE_NS; t < BASE_NS + NS(2); t += 250000)
                if (t >= t0 && t < t1) {
                    double v = counts(chs[m], t) * (double)(m ? SC_I : SC_V);
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                    n++;
                }
            double gmn = json_number_value(
                json_array_get(json_object_get(json_object_get(b, "min"), names[m]), (size_t)k));
            double gmx = json_number_value(
                json_array_get(json_object_get(json_object_get(b, "max"), names[m]), (size_t)k));
            assert_float_equal(gmn, mn, lsb * 0.06);
            assert_float_equal(gmx, mx, lsb * 0.06);
        }
        assert_int_equal(json_integer_value(json_array_get(nn, (size_t)k)), n);
        assert_int_equal(n, 80);
    }
    json_t *top = json_object_get(j, "channels");
    assert_int_equal(json_array_size(top), 2);
    json_decref(j);
}

/* A missing block (seq hole) and a time jump without one: explicit gaps, never bridged, in raw
 * and envelope replies alike. */
static void test_gaps(void **state)
{
    fixture_t *f = *state;
    /* seq 11 (1.0 .. 1.1 s) missing; from seq 16 on, times 5 ms later (a clock step) */
    write_blocks(f, 1, 20, 11, 16, NS(0.005), 0, SC_V);
    int64_t from = BASE_NS, to = BASE_NS + NS(2.5);
    for (int env = 0; env < 2; env++) {
        json_t *j = query(f, from, to, "Ub", env ? 500 : 100000, 0);
        assert_string_equal(jstr(j, "mode"), env ? "envelope" : "raw");
        json_t *segs = json_object_get(j, "segments"), *gaps = json_object_get(j, "gaps");
        assert_int_equal(json_array_size(segs), 3);
        assert_int_equal(json_array_size(gaps), 3);
        json_t *g = json_array_get(gaps, 0);
        assert_int_equal(jint(g, "from_ns"), BASE_NS + NS(1.0));
        assert_int_equal(jint(g, "to_ns"), BASE_NS + NS(1.1));
        assert_string_equal(jstr(g, "reason"), "missing");
        assert_int_equal(jint(g, "seq_before"), 10);
        assert_int_equal(jint(g, "seq_after"), 12);
        g = json_array_get(gaps, 1);
        assert_int_equal(jint(g, "from_ns"), BASE_NS + NS(1.5));
        assert_int_equal(jint(g, "to_ns"), BASE_NS + NS(1.505));
        assert_int_equal(jint(g, "seq_before"), 15);
        g = json_array_get(gaps, 2); /* after the last block, to the end of the range */
        assert_int_equal(jint(g, "from_ns"), BASE_NS + NS(2.005));
        assert_int_equal(jint(g, "to_ns"), to);
        assert_true(json_is_null(json_object_get(g, "seq_after")));
        int64_t ends[] = {NS(1.0), NS(1.5), NS(2.005)}, starts[] = {0, NS(1.1), NS(1.505)};
        int64_t ns[] = {4000, 1600, 2000};
        for (size_t i = 0; i < 3; i++) {
            json_t *s = json_array_get(segs, i);
            assert_int_equal(jint(s, "t0_ns"), BASE_NS + starts[i]);
            assert_int_equal(jint(s, "end_ns"), BASE_NS + ends[i]);
            assert_int_equal(jint(s, "n"), ns[i]);
            if (env) {
                /* no bucket of a segment reaches into the gap after it */
                json_t *tn = json_object_get(json_object_get(s, "buckets"), "t_ns");
                int64_t last = json_integer_value(json_array_get(tn, json_array_size(tn) - 1));
                assert_true(last < BASE_NS + ends[i]);
                int64_t firstb = json_integer_value(json_array_get(tn, 0));
                assert_true(firstb <= BASE_NS + starts[i]);
                assert_true(firstb > BASE_NS + starts[i] - (to - from) / 500);
            } else {
                json_t *v = json_object_get(json_object_get(s, "samples"), "Ub");
                assert_int_equal(json_array_size(v), (size_t)ns[i]);
            }
        }
        json_decref(j);
    }
    /* A range entirely without blocks: one gap, no segments. */
    json_t *j = query(f, BASE_NS + NS(10), BASE_NS + NS(11), NULL, 0, 0);
    assert_int_equal(json_array_size(json_object_get(j, "segments")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "gaps")), 1);
    json_decref(j);
}

static void test_channels_and_errors(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 5, 0, 0, 0, 0, SC_V);
    json_t *j = query(f, BASE_NS, BASE_NS + NS(0.1), " ua , IB", 1000, 0);
    json_t *s = json_array_get(json_object_get(j, "segments"), 0);
    json_t *smp = json_object_get(s, "samples");
    assert_int_equal(json_object_size(smp), 2);
    assert_non_null(json_object_get(smp, "Ua"));
    assert_non_null(json_object_get(smp, "Ib"));
    json_decref(j);

    buf_t out = {0};
    char err[256];
    wave_req_t q = {.terminal_id = "T1", .from_ns = BASE_NS, .to_ns = BASE_NS + NS(0.1)};
    q.channels = "Ux";
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    assert_non_null(strstr(err, "Ux"));
    assert_non_null(strstr(err, "Ua,Ub,Uc,Ia,Ib,Ic"));
    q.channels = "Ua;Ub";
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.channels = "Ua,,Ub";
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.channels = NULL;
    q.max_points = WAVE_MAX_POINTS + 1;
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.max_points = -1;
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.max_points = 0;
    q.side = 7;
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.side = 0;
    assert_int_equal(wave_side_parse("primary"), WAVE_SIDE_PRIMARY);
    assert_int_equal(wave_side_parse("secondary"), WAVE_SIDE_SECONDARY);
    assert_int_equal(wave_side_parse("Primary"), GS_EINVAL);
    assert_int_equal(wave_side_parse(NULL), GS_EINVAL);
    q.to_ns = q.from_ns;
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.to_ns = q.from_ns + WAVE_MAX_SPAN_NS + 1;
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.from_ns = INT64_MIN;
    q.to_ns = INT64_MAX;
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_EINVAL);
    q.from_ns = BASE_NS;
    q.to_ns = BASE_NS + 1000;
    q.terminal_id = "NOPE";
    assert_int_equal(wave_query(f->s, &q, &out, err, sizeof err), GS_ENOTFOUND);
    assert_int_equal(wave_event(f->s, 12345, -1, -1, 0, 0, &out, err, sizeof err), GS_ENOTFOUND);
    buf_free(&out);
}

/* The layout is stored once per change; a change starts a new segment (no gap); blocks stored
 * without a layout come back in counts. */
static void test_layouts(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 5, 0, 0, 0, 1, 0); /* none (as stored before migration 7) */
    write_blocks(f, 6, 10, 0, 0, 0, 0, SC_V);
    write_blocks(f, 11, 20, 0, 0, 0, 0, SC_V * 2); /* a new scale from seq 11 */
    char firsts[64];
    assert_string_equal(ut_db_text(f->dir,
                                   UT_SQL("SELECT group_concat(first_seq) FROM block_layouts",
                                          "SELECT string_agg(first_seq::text, ',' ORDER BY "
                                          "first_seq) FROM block_layouts"),
                                   firsts, sizeof firsts),
                        "6,11");

    json_t *j = query(f, BASE_NS + NS(0.4), BASE_NS + NS(1.2), "Ua,ch0", 100000, 1);
    /* ch0 (counts) for the blocks without a layout, then Ua under two scales */
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 3);
    assert_int_equal(json_array_size(json_object_get(j, "gaps")), 0);
    json_t *s2 = json_array_get(segs, 0), *s0 = json_array_get(segs, 1),
           *s1 = json_array_get(segs, 2);
    assert_int_equal(jint(s2, "end_ns"), jint(s0, "t0_ns"));
    assert_int_equal(jint(s0, "end_ns"), jint(s1, "t0_ns"));
    assert_int_equal(jint(s0, "t0_ns"), BASE_NS + NS(0.5));
    assert_int_equal(jint(s1, "t0_ns"), BASE_NS + NS(1.0));
    assert_int_equal(jint(s2, "t0_ns"), BASE_NS + NS(0.4));
    double lsb1 = json_number_value(
        json_object_get(json_array_get(json_object_get(s1, "channels"), 0), "lsb"));
    assert_float_equal(lsb1, SC_V * 2, 1e-9);
    /* the data are counts × the stored scale: twice the truth in the second segment */
    double v =
        json_number_value(json_array_get(json_object_get(json_object_get(s1, "samples"), "Ua"), 1));
    assert_float_equal(v, 2 * counts(0, BASE_NS + NS(1.0) + 250000) * (double)SC_V, 1e-6);
    json_t *c2 = json_array_get(json_object_get(s2, "channels"), 0);
    assert_string_equal(jstr(c2, "name"), "ch0");
    assert_string_equal(jstr(c2, "unit"), "count");
    v = json_number_value(
        json_array_get(json_object_get(json_object_get(s2, "samples"), "ch0"), 3));
    assert_float_equal(v, counts(0, BASE_NS + NS(0.4) + 3 * 250000), 0);
    json_decref(j);
}

/* The waveform around a stored dip and its RMS(1/2): depth and timing within half a cycle. */
static void test_event_rms_half(void **state)
{
    fixture_t *f = *state;
    dip_from = 1.0;
    dip_to = 1.2;
    write_blocks(f, 1, 30, 0, 0, 0, 0, SC_V);
    dip_from = dip_to = 0;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
    snprintf(it->reason, sizeof it->reason, "dip");
    it->ev_start_ns = BASE_NS + NS(1.0);
    it->ev_duration_ns = NS(0.2);
    it->ev_extreme = 92;
    it->ev_extreme_pct = 40;
    it->ev_reference = 230;
    it->ev_channels = 1;
    it->data = (uint8_t *)xstrdup("Ua");
    it->data_len = 2;
    snprintf(it->ev_worst_name, sizeof it->ev_worst_name, "Ua");
    assert_int_equal(store_submit(f->s, it), 0);
    store_writer_stop(f->s);
    store_pq_event_t ev;
    int64_t id = 0;
    for (id = 1; id < 10 && store_pq_event_get(f->s, id, &ev) != 0; id++)
        ;
    assert_int_equal(store_pq_event_get(f->s, id, &ev), 0);

    buf_t out = {0};
    char err[256] = "";
    int rc = wave_event(f->s, id, NS(0.5), NS(0.5), 0, WAVE_SIDE_PRIMARY, &out, err, sizeof err);
    if (rc)
        fail_msg("wave_event: %s", err);
    json_error_t je;
    json_t *j = json_loads(out.data, 0, &je);
    assert_non_null(j);
    buf_free(&out);
    assert_int_equal(jint(j, "from_ns"), BASE_NS + NS(0.5));
    assert_int_equal(jint(j, "to_ns"), BASE_NS + NS(1.7));
    assert_string_equal(jstr(j, "mode"), "envelope"); /* 4800 sets > 2000 */
    json_t *e = json_object_get(j, "event");
    assert_int_equal(jint(e, "id"), id);
    assert_string_equal(jstr(e, "kind"), "dip");
    assert_int_equal(jint(e, "start_ns"), BASE_NS + NS(1.0));
    assert_int_equal(jint(e, "duration_ns"), NS(0.2));
    assert_string_equal(jstr(e, "worst_channel"), "Ua");

    json_t *r = json_object_get(j, "rms_half");
    assert_int_equal(jint(r, "nominal_hz"), 50);
    json_t *rs = json_array_get(json_object_get(r, "segments"), 0);
    assert_int_equal(json_array_size(json_object_get(r, "segments")), 1);
    assert_int_equal(jint(rs, "step_ns"), NS(0.01));
    assert_int_equal(jint(rs, "window_ns"), NS(0.02));
    int64_t t0 = jint(rs, "t0_ns");
    assert_int_equal(t0, BASE_NS + NS(0.51));
    json_t *vals = json_object_get(rs, "values");
    assert_int_equal(json_object_size(vals), 3); /* voltages only */
    json_t *ua = json_object_get(vals, "Ua"), *ub = json_object_get(vals, "Ub");
    size_t n = json_array_size(ua);
    assert_int_equal(n, (size_t)jint(rs, "n"));
    assert_int_equal(n, 119); /* 1.2 s: 120 half cycles, the first completes no window */
    double nominal = AMP_V / sqrt(2) * VT, first_below = -1, last_below = -1, depth = 1e30;
    for (size_t k = 0; k < n; k++) {
        double v = json_number_value(json_array_get(ua, k));
        double t = (double)(t0 - BASE_NS) / 1e9 + 0.01 * (double)k;
        double vb = json_number_value(json_array_get(ub, k));
        assert_float_equal(vb, nominal, nominal * 0.002);
        if (v < 0.9 * nominal) {
            if (first_below < 0)
                first_below = t;
            last_below = t;
        }
        depth = v < depth ? v : depth;
    }
    assert_float_equal(depth, 0.4 * nominal, nominal * 0.002);
    assert_true(fabs(first_below - 1.0) <= 0.01 + 1e-9);
    assert_true(fabs(last_below - 1.2) <= 0.01 + 1e-9);
    json_decref(j);
}

/* No read scans a terminal's blocks: every statement searches an index. */
static void test_query_plan(void **state)
{
    fixture_t *f = *state;
    char plan[4096];
    if (ut_pg()) { /* the plans are SQLite's: refused on PostgreSQL (store.h), the check skipped */
        assert_int_equal(store_blocks_plan(f->s, plan, sizeof plan), GS_ENOTSUP);
        skip();
    }
    write_blocks(f, 1, 3, 0, 0, 0, 0, SC_V);
    assert_int_equal(store_blocks_plan(f->s, plan, sizeof plan), 0);
    print_message("%s", plan);
    assert_null(strstr(plan, "SCAN"));
    assert_non_null(strstr(plan, "probe: SEARCH blocks USING"));
    assert_non_null(strstr(plan, "read: SEARCH blocks USING"));
    assert_non_null(strstr(plan, "last: SEARCH blocks USING"));
    assert_non_null(strstr(plan, "probe_wave: SEARCH blocks USING"));
    assert_non_null(strstr(plan, "last_wave: SEARCH blocks USING"));
    assert_non_null(strstr(plan, "layout: SEARCH block_layouts USING PRIMARY KEY"));
}

/* Blocks found by binary search among many: the range starts inside a block, and blocks of
 * another terminal do not interfere. */
static void test_find_range(void **state)
{
    fixture_t *f = *state;
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T2");
    assert_int_equal(store_terminal_add(f->s, &t), 0);
    write_blocks(f, 1, 300, 0, 0, 0, 0, SC_V);
    for (int64_t ms = 0; ms < 29600; ms += 1237) {
        int64_t from = BASE_NS + ms * 1000000 + 123, to = from + NS(0.35);
        json_t *j = query(f, from, to, "Uc", 2000, 1);
        json_t *s = json_array_get(json_object_get(j, "segments"), 0);
        int64_t first = ((from - BASE_NS + 249999) / 250000) * 250000 + BASE_NS;
        assert_int_equal(jint(s, "t0_ns"), first);
        if (jint(j, "sample_sets") != 1400)
            fail_msg("range at %lld ms: %lld sets", (long long)ms,
                     (long long)jint(j, "sample_sets"));
        double v = json_number_value(
            json_array_get(json_object_get(json_object_get(s, "samples"), "Uc"), 0));
        assert_float_equal(v, counts(2, first) * (double)SC_V, 1e-6);
        json_decref(j);
    }
    /* 120,000 sets of 6 channels: above the raw threshold (100,000), and the envelope's buckets
     * lowered to 1,000,000 / (2 × 6) so that the reply stays within WAVE_MAX_VALUES numbers */
    json_t *j = query(f, BASE_NS, BASE_NS + NS(30), NULL, WAVE_MAX_POINTS, 0);
    assert_string_equal(jstr(j, "mode"), "envelope");
    assert_int_equal(jint(j, "max_points"), WAVE_MAX_VALUES / 12);
    json_t *b = json_object_get(json_array_get(json_object_get(j, "segments"), 0), "buckets");
    assert_int_equal(json_array_size(json_object_get(b, "t_ns")), WAVE_MAX_VALUES / 12);
    json_decref(j);
}

/* Seqs handed out by store_blocks_read. */
typedef struct {
    uint64_t seq[64];
    int event[64];
    int n;
} seqs_t;

static int collect_seq(void *ud, const store_block_t *b)
{
    seqs_t *q = ud;
    if (q->n < 64) {
        q->seq[q->n] = b->seq;
        q->event[q->n] = b->is_event;
        q->n++;
    }
    return 0;
}

/* An EVENT capture shares the seq space of the waveform blocks and starts earlier than those
 * stored before it (its pre-trigger samples): a range starting inside the waveform block just
 * before the capture (in seq) still gets that block first, from store_blocks_read and from the
 * waveform API, with captures or without. */
static void test_capture_between(void **state)
{
    fixture_t *f = *state;
    /* waveform seq 1..10 at 0..1.0 s, capture seq 11 at 0.3 s, waveform seq 12..21 at 1.0.. */
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = 1; q <= 21; q++) {
        store_item_t *it;
        if (q == 11) {
            it = block(q, BASE_NS + NS(0.3), 0, SC_V);
            it->is_event = 1;
            it->trigger = 1;
            it->trigger_ns = BASE_NS + NS(0.35);
            it->pretrigger = 200;
        } else {
            it = block(q, BASE_NS + (int64_t)(q < 11 ? q - 1 : q - 2) * BLK_NS, 0, SC_V);
        }
        assert_int_equal(store_submit(f->s, it), 0);
    }
    store_writer_stop(f->s);

    int64_t from = BASE_NS + NS(0.95), to = BASE_NS + NS(1.25);
    seqs_t q = {0};
    assert_int_equal(
        store_blocks_read(f->s, "T1", from, to, STORE_BLOCKS_WAVEFORM, collect_seq, &q), 0);
    assert_int_equal(q.n, 4); /* 0.9..1.0 (seq 10), 1.0, 1.1, 1.2 (seq 12..14) */
    assert_int_equal(q.seq[0], 10);
    assert_int_equal(q.seq[1], 12);
    assert_int_equal(q.seq[3], 14);
    /* with captures: the same waveform blocks and the capture (0.3 .. 0.4 s) is outside */
    memset(&q, 0, sizeof q);
    assert_int_equal(store_blocks_read(f->s, "T1", from, to,
                                       STORE_BLOCKS_WAVEFORM | STORE_BLOCKS_EVENT, collect_seq, &q),
                     0);
    assert_int_equal(q.n, 4);
    assert_int_equal(q.seq[0], 10);
    /* a range over the capture: it comes in seq order among the waveform blocks */
    memset(&q, 0, sizeof q);
    assert_int_equal(store_blocks_read(f->s, "T1", BASE_NS + NS(0.32), BASE_NS + NS(0.38),
                                       STORE_BLOCKS_WAVEFORM | STORE_BLOCKS_EVENT, collect_seq, &q),
                     0);
    assert_int_equal(q.n, 2);
    assert_int_equal(q.seq[0], 4);
    assert_int_equal(q.seq[1], 11);
    assert_int_equal(q.event[1], 1);
    memset(&q, 0, sizeof q);
    assert_int_equal(store_blocks_read(f->s, "T1", BASE_NS + NS(0.32), BASE_NS + NS(0.38),
                                       STORE_BLOCKS_EVENT, collect_seq, &q),
                     0);
    assert_int_equal(q.n, 1);
    assert_int_equal(q.seq[0], 11);
    /* the waveform API: 0.95 .. 1.25 s is 1,200 sets in one segment, no gap */
    json_t *j = query(f, from, to, "Ua", 2000, 1);
    assert_int_equal(jint(j, "sample_sets"), 1200);
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    assert_int_equal(jint(json_array_get(segs, 0), "t0_ns"), from);
    json_decref(j);
}

/* Raw up to max_points sample sets, envelope beyond; a clock step back is a "time_step" gap; a
 * block with an absurd time and a malformed stored layout do not break the reply. */
static void test_edges(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 10, 0, 0, 0, 0, SC_V);
    /* seq 11.. restart 300 ms back in time (the terminal's clock stepped) */
    write_blocks(f, 11, 12, 0, 11, -NS(0.3), 0, SC_V);
    int64_t from = BASE_NS + NS(0.2), to = BASE_NS + NS(0.3); /* 400 sets */
    json_t *j = query(f, from, to, NULL, 400, 0);
    assert_string_equal(jstr(j, "mode"), "raw");
    json_decref(j);
    j = query(f, from, to, NULL, 399, 0);
    assert_string_equal(jstr(j, "mode"), "envelope");
    assert_int_equal(
        json_array_size(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "segments"), 0), "buckets"), "t_ns")),
        399);
    json_decref(j);

    j = query(f, BASE_NS + NS(0.5), BASE_NS + NS(1.2), "Ua", 100000, 0);
    json_t *gaps = json_object_get(j, "gaps");
    int steps = 0;
    for (size_t i = 0; i < json_array_size(gaps); i++) {
        json_t *g = json_array_get(gaps, i);
        if (!strcmp(jstr(g, "reason"), "time_step")) {
            steps++;
            assert_int_equal(jint(g, "from_ns"), BASE_NS + NS(1.0));
            assert_int_equal(jint(g, "to_ns"), BASE_NS + NS(0.7));
            assert_int_equal(jint(g, "seq_before"), 10);
            assert_int_equal(jint(g, "seq_after"), 11);
        }
    }
    assert_int_equal(steps, 1);
    json_decref(j);

    /* A block dated 2300 (as a broken terminal could send) is skipped, not a crash. */
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    store_item_t *it = block(13, INT64_MAX - NS(1000), 0, SC_V);
    assert_int_equal(store_submit(f->s, it), 0);
    store_writer_stop(f->s);
    j = query(f, INT64_MAX - NS(1100), INT64_MAX - NS(600), NULL, 0, 0);
    assert_int_equal(json_array_size(json_object_get(j, "segments")), 0);
    json_decref(j);

    /* A stored layout that does not parse: its blocks come back in counts (and it is logged). */
    ut_db_exec(f->dir, "UPDATE block_layouts SET channels = '0,1,1,1,nan;x'");
    j = query(f, BASE_NS, BASE_NS + NS(0.1), NULL, 0, 0);
    json_t *ch = json_object_get(j, "channels");
    assert_int_equal(json_array_size(ch), 6);
    assert_string_equal(json_string_value(json_array_get(ch, 0)), "ch0");
    json_decref(j);
}

/* Event windows: the defaults, and an event without stored names. */
static void test_event_defaults(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 30, 0, 0, 0, 0, SC_V);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO pq_events(id, terminal_id, kind, start_ns, duration_ns, extreme,"
             " extreme_pct, reference, channels, worst_channel, flags, detected_ns)"
             " VALUES(7, 'T1', 'swell', %lld, 100000000, 260, 113, 230, 6, 2, 0, 1)",
             (long long)(BASE_NS + NS(1.0)));
    ut_db_exec(f->dir, sql);
    buf_t out = {0};
    char err[256] = "";
    assert_int_equal(wave_event(f->s, 7, -1, -1, 0, WAVE_SIDE_SECONDARY, &out, err, sizeof err), 0);
    json_t *j = json_loads(out.data, 0, NULL);
    assert_non_null(j);
    assert_int_equal(jint(j, "pre_ns"), WAVE_EVENT_PRE_NS);
    assert_int_equal(jint(j, "post_ns"), WAVE_EVENT_POST_NS);
    assert_int_equal(jint(j, "from_ns"), BASE_NS + NS(0.5));
    assert_int_equal(jint(j, "to_ns"), BASE_NS + NS(2.1));
    assert_string_equal(jstr(j, "side"), "secondary");
    json_t *e = json_object_get(j, "event");
    assert_string_equal(jstr(e, "worst_channel"), "ch2");
    json_t *ch = json_object_get(e, "channels");
    assert_int_equal(json_array_size(ch), 2);
    assert_string_equal(json_string_value(json_array_get(ch, 0)), "ch1");
    /* secondary: the RMS of Ub is the secondary 229.8 V */
    json_t *ub = json_object_get(
        json_object_get(
            json_array_get(json_object_get(json_object_get(j, "rms_half"), "segments"), 0),
            "values"),
        "Ub");
    assert_float_equal(json_number_value(json_array_get(ub, 5)), AMP_V / sqrt(2), 0.3);
    json_decref(j);
    assert_int_equal(wave_event(f->s, 7, WAVE_MAX_RANGE_NS + 1, 0, 0, 0, &out, err, sizeof err),
                     GS_EINVAL);
    assert_int_equal(wave_event(f->s, 7, 0, 0, 0, 0, &out, err, sizeof err), 0);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_primary_secondary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_rms_half, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_between, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_defaults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
