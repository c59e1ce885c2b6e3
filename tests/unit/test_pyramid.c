/* The waveform summary pyramid (src/store/pyramid.c), the trends (src/store/trend.c) and the
 * long-range envelopes of src/wave: blocks with known samples written through the real store
 * writer; every row checked against statistics computed here, sample by sample, from the same
 * samples. */
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
#include <unistd.h>

#define RATE    4000
#define BLK     400 /* sample sets per block: 100 ms */
#define BLK_NS  100000000LL
#define BASE_NS 1764000000000000000LL /* 2025-11-24T16:00:00Z */
#define OFF_NS  50000000LL            /* blocks start 50 ms past a second: they cross */
#define NS(s)   ((int64_t)((s)*1e9 + 0.5))
#define SC_V    0.02f
#define SC_I    0.0005f
#define VT      100.0

typedef struct {
    char dir[64];
    store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_pyr_XXXXXX");
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
    t.ct_ratio = 1;
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

/* ---- Known samples ---- */

static int64_t set_ns(int64_t t0, int i)
{
    return t0 + (int64_t)i * 1000000000 / RATE;
}

/* Channel c's count at time t: a 50 Hz sine whose amplitude grows with time, so that every
 * second has its own min, max and RMS. */
static int16_t sample(int c, int64_t t)
{
    double s = (double)(t - BASE_NS) / 1e9;
    double a = 1000 + 10 * s + 100 * c;
    return (int16_t)lround(a * sin(2 * M_PI * 50 * s + c));
}

static int64_t block_t0(uint64_t seq)
{
    return BASE_NS + OFF_NS + (int64_t)(seq - 1) * BLK_NS;
}

static store_item_t *block(uint64_t seq, int64_t t0)
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
            uint16_t v = (uint16_t)sample(c, set_ns(t0, i));
            it->data[(i * 6 + c) * 2] = (uint8_t)(v & 0xff);
            it->data[(i * 6 + c) * 2 + 1] = (uint8_t)(v >> 8);
        }
    it->nlayout = 6;
    for (int c = 0; c < 6; c++)
        it->layout[c] = (store_chan_t){.index = (uint8_t)c,
                                       .kind = c < 3 ? 1 : 2,
                                       .phase = (uint8_t)(c % 3 + 1),
                                       .unit = c < 3 ? 1 : 2,
                                       .scale = c < 3 ? SC_V : SC_I};
    return it;
}

static void write_seqs(fixture_t *f, uint64_t first, uint64_t last, uint64_t skip)
{
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = first; q <= last; q++)
        if (q != skip)
            assert_int_equal(store_submit(f->s, block(q, block_t0(q))), 0);
    store_writer_stop(f->s);
}

/* Expected statistics of one bucket, computed sample by sample from the blocks in [first, last]
 * (except skip). */
typedef struct {
    uint32_t n;
    int64_t t_first, t_end;
    uint64_t seq_first, seq_last;
    int32_t mn[6], mx[6];
    double ss[6];
} expect_t;

static void expect(int64_t bucket, int64_t width, uint64_t first, uint64_t last, uint64_t skip,
                   expect_t *e)
{
    memset(e, 0, sizeof *e);
    for (int c = 0; c < 6; c++) {
        e->mn[c] = INT32_MAX;
        e->mx[c] = INT32_MIN;
    }
    for (uint64_t q = first; q <= last; q++) {
        if (q == skip)
            continue;
        int64_t t0 = block_t0(q);
        for (int i = 0; i < BLK; i++) {
            int64_t t = set_ns(t0, i);
            if (t < bucket || t >= bucket + width)
                continue;
            if (e->n == 0) {
                e->t_first = t;
                e->seq_first = q;
            }
            e->n++;
            e->t_end = set_ns(t0, i + 1);
            e->seq_last = q;
            for (int c = 0; c < 6; c++) {
                int32_t v = sample(c, t);
                if (v < e->mn[c])
                    e->mn[c] = v;
                if (v > e->mx[c])
                    e->mx[c] = v;
                e->ss[c] += (double)v * v;
            }
        }
    }
}

typedef struct {
    store_pyr_row_t rows[4096];
    int n;
} rows_t;

static int collect(void *ud, const store_pyr_row_t *r)
{
    rows_t *x = ud;
    if (x->n < 4096)
        x->rows[x->n++] = *r;
    return 0;
}

static void read_level(fixture_t *f, int level, int64_t from, int64_t to, rows_t *x)
{
    x->n = 0;
    assert_int_equal(store_pyramid_read(f->s, "T1", level, from, to, collect, x), 0);
}

/* Every row of every level over the written range equals the statistics of its samples. */
static void check_all(fixture_t *f, uint64_t first, uint64_t last, uint64_t skip)
{
    static rows_t x;
    int64_t from = block_t0(first), to = block_t0(last + 1);
    for (int l = 0; l < STORE_PYR_LEVELS; l++) {
        int64_t w = store_pyramid_width_ns(l);
        read_level(f, l, from, to, &x);
        int64_t b0 = from / w * w;
        int want = 0;
        for (int64_t b = b0; b < to; b += w) {
            expect_t e;
            expect(b, w, first, last, skip, &e);
            if (e.n == 0)
                continue;
            assert_true(want < x.n);
            const store_pyr_row_t *r = &x.rows[want++];
            assert_int_equal(r->level, l);
            assert_int_equal(r->bucket_ns, b);
            assert_int_equal(r->n, e.n);
            assert_int_equal(r->t_first_ns, e.t_first);
            assert_int_equal(r->t_end_ns, e.t_end);
            assert_int_equal(r->seq_first, e.seq_first);
            assert_int_equal(r->seq_last, e.seq_last);
            assert_int_equal(r->channel_mask, 0x3f);
            assert_int_equal(r->sample_rate, RATE);
            assert_int_equal(r->nlayout, 6);
            for (int c = 0; c < 6; c++) {
                assert_int_equal(r->ch[c].n, e.n);
                assert_int_equal(r->ch[c].min, e.mn[c]);
                assert_int_equal(r->ch[c].max, e.mx[c]);
                /* sums of integers below 2^53: exact in any order */
                assert_true(r->ch[c].sumsq == e.ss[c]);
            }
        }
        assert_int_equal(x.n, want);
    }
}

/* ---- Tests ---- */

/* Blocks crossing second boundaries, a missing block, a second writer session continuing the
 * open buckets, and every block sent again: every row of every level is exact, and the
 * duplicates are not counted. */
static void test_pyramid_math(void **state)
{
    fixture_t *f = *state;
    write_seqs(f, 1, 120, 57);  /* 12 s from 50 ms past a second; seq 57 missing */
    write_seqs(f, 121, 150, 0); /* a new writer: open buckets read back and continued */
    write_seqs(f, 100, 150, 0); /* duplicates: ignored */
    check_all(f, 1, 150, 57);

    store_writer_stats_t ws;
    store_writer_stats(f->s, &ws); /* counters of the store's life: 149 + 30 stored, 51 repeated */
    assert_int_equal(ws.blocks_stored, 149);
    assert_int_equal(ws.blocks_duplicate, 51);

    /* The missing block stored late (a terminal re-sending its buffer): it lands in the past
     * buckets, every level still exact. */
    write_seqs(f, 57, 57, 0);
    check_all(f, 1, 150, 0);

    /* The rebuild from the stored blocks gives the same rows. */
    int64_t blocks = 0;
    assert_int_equal(store_pyramid_rebuild(f->s, "T1", block_t0(1), block_t0(151), &blocks), 0);
    assert_int_equal(blocks, 150);
    check_all(f, 1, 150, 0);
}

/* The pyramid is written in the block's transaction: when its write fails, the batch rolls back
 * and neither the blocks nor the rows are there (nothing acknowledged); no half state. */
static void test_pyramid_same_transaction(void **state)
{
    fixture_t *f = *state;
    ut_db_exec(f->dir, UT_SQL("CREATE TRIGGER pyr_fail BEFORE INSERT ON wave_pyramid"
                              " BEGIN SELECT RAISE(FAIL, 'disk on fire'); END;",
                              "CREATE FUNCTION pyr_fail() RETURNS trigger LANGUAGE plpgsql AS"
                              " $$BEGIN RAISE EXCEPTION 'disk on fire'; END$$;"
                              " CREATE TRIGGER pyr_fail BEFORE INSERT ON wave_pyramid"
                              " FOR EACH ROW EXECUTE FUNCTION pyr_fail()"));
    write_seqs(f, 1, 5, 0); /* fails every attempt; writer_stop gives up after its retries */
    int64_t n = -1;
    uint64_t mn, mx;
    assert_int_equal(store_block_stats(f->s, "T1", &n, &mn, &mx), 0);
    assert_int_equal(n, 0);
    store_writer_stats_t ws;
    store_writer_stats(f->s, &ws);
    assert_int_equal(ws.blocks_stored, 0);
    assert_true(ws.errors >= 5);
    ut_db_exec(f->dir, UT_SQL("DROP TRIGGER pyr_fail", "DROP TRIGGER pyr_fail ON wave_pyramid"));
    static rows_t x;
    read_level(f, 0, BASE_NS, BASE_NS + NS(10), &x);
    assert_int_equal(x.n, 0);
    /* sent again: stored once, pyramid exact */
    write_seqs(f, 1, 5, 0);
    check_all(f, 1, 5, 0);
}

static json_t *query(fixture_t *f, int64_t from, int64_t to, const char *chans, int max_points)
{
    wave_req_t q = {.terminal_id = "T1",
                    .from_ns = from,
                    .to_ns = to,
                    .channels = chans,
                    .max_points = max_points,
                    .side = WAVE_SIDE_PRIMARY};
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

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        fail_msg("%s is not a string", k);
    return json_string_value(v);
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", k);
    return json_integer_value(v);
}

static double jnum(json_t *v)
{
    if (!json_is_number(v))
        fail_msg("not a number");
    return json_number_value(v);
}

/* A long range comes from the pyramid: the data in the right buckets, gaps where there is none,
 * and per bucket the same min, max and RMS as the envelope of the blocks. */
static void test_long_envelope(void **state)
{
    fixture_t *f = *state;
    write_seqs(f, 1, 100, 0); /* 20 s, a 1.2 s hole from +10.05 s */
    write_seqs(f, 113, 200, 0);
    int64_t from = BASE_NS - NS(3600), to = BASE_NS + NS(3600);
    json_t *j = query(f, from, to, "Ua", 720); /* 10 s buckets: level 1 */
    assert_string_equal(jstr(j, "mode"), "envelope");
    assert_string_equal(jstr(j, "source"), "pyramid");
    assert_int_equal(jint(j, "level_ns"), NS(10));
    assert_int_equal(jint(j, "max_points"), 720);
    assert_int_equal(jint(j, "sample_sets"), 188 * BLK);
    json_t *segs = json_object_get(j, "segments");
    /* at 10 s the 1.2 s hole is inside a bucket (its n shows it): one segment, gaps before and
     * after */
    assert_int_equal(json_array_size(segs), 1);
    json_t *s0 = json_array_get(segs, 0);
    assert_int_equal(jint(s0, "t0_ns"), block_t0(1));
    assert_int_equal(jint(s0, "end_ns"), block_t0(201));
    json_t *b = json_object_get(s0, "buckets");
    json_t *t = json_object_get(b, "t_ns");
    assert_int_equal(json_array_size(t), 3); /* [0,10) [10,20) [20,30) s after BASE */
    assert_int_equal(json_integer_value(json_array_get(t, 0)), BASE_NS);
    json_t *gaps = json_object_get(j, "gaps");
    assert_int_equal(json_array_size(gaps), 2);
    assert_int_equal(jint(json_array_get(gaps, 0), "from_ns"), from);
    assert_int_equal(jint(json_array_get(gaps, 0), "to_ns"), block_t0(1));
    assert_int_equal(jint(json_array_get(gaps, 1), "from_ns"), block_t0(201));
    assert_int_equal(jint(json_array_get(gaps, 1), "to_ns"), to);
    json_decref(j);

    /* 1 s buckets over 2 min (pyramid level 0) against the blocks' envelope of the same 1 s
     * buckets (a 60 s range is read from the blocks): equal min and max, RMS within 1e-6. */
    int64_t pf = BASE_NS, pt = BASE_NS + NS(120);
    j = query(f, pf, pt, "Ua", 120);
    assert_string_equal(jstr(j, "source"), "pyramid");
    assert_int_equal(jint(j, "level_ns"), NS(1));
    segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 2);                /* the hole is a gap at 1 s */
    json_t *g = json_array_get(json_object_get(j, "gaps"), 1); /* after [BASE, +50 ms) */
    assert_int_equal(jint(g, "from_ns"), block_t0(101));
    assert_int_equal(jint(g, "to_ns"), block_t0(113));
    assert_int_equal(jint(g, "seq_before"), 100);
    assert_int_equal(jint(g, "seq_after"), 113);
    assert_string_equal(jstr(g, "reason"), "missing");
    json_t *k = query(f, pf, pf + NS(60), "Ua", 60);
    assert_string_equal(jstr(k, "source"), "blocks");
    json_t *ksegs = json_object_get(k, "segments");
    assert_int_equal(json_array_size(ksegs), 2);
    int compared = 0;
    for (size_t si = 0; si < 2; si++) {
        json_t *pb = json_object_get(json_array_get(segs, si), "buckets");
        json_t *bb = json_object_get(json_array_get(ksegs, si), "buckets");
        json_t *pt_ = json_object_get(pb, "t_ns"), *bt = json_object_get(bb, "t_ns");
        for (size_t i = 0; i < json_array_size(bt); i++) {
            assert_int_equal(json_integer_value(json_array_get(pt_, i)),
                             json_integer_value(json_array_get(bt, i)));
            assert_int_equal(json_integer_value(json_array_get(json_object_get(pb, "n"), i)),
                             json_integer_value(json_array_get(json_object_get(bb, "n"), i)));
            const char *keys[3] = {"min", "max", "rms"};
            for (int m = 0; m < 3; m++) {
                double a =
                    jnum(json_array_get(json_object_get(json_object_get(pb, keys[m]), "Ua"), i));
                double c =
                    jnum(json_array_get(json_object_get(json_object_get(bb, keys[m]), "Ua"), i));
                assert_true(fabs(a - c) <= 1e-6 * fabs(c) + 1e-3);
            }
            compared++;
        }
    }
    assert_int_equal(compared, 21); /* 11 + 10 buckets in [0, 20.05) s */
    json_decref(k);
    json_decref(j);

    /* A year: the day level, one bucket with the data. */
    j = query(f, BASE_NS - NS(200 * 86400.0), BASE_NS + NS(165 * 86400.0), NULL, 365);
    assert_int_equal(jint(j, "level_ns"), NS(86400));
    segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(json_array_get(segs, 0), "buckets"), "t_ns")),
                     1);
    assert_int_equal(json_array_size(json_object_get(j, "channels")), 6);
    json_decref(j);
}

/* Retention removed the fine levels' old rows ([history] pyramid_fine_days): a range reaching
 * into them is answered from the next coarser level that still holds it, as one segment with
 * every sample set, not with a "missing" gap over stored data; a range within what the fine
 * level still holds keeps it. */
static void test_fine_levels_removed(void **state)
{
    fixture_t *f = *state;
    write_seqs(f, 1, 200, 0); /* BASE + 50 ms .. BASE + 20.05 s */
    /* the 1 s and 10 s buckets that start before BASE + 10 s go */
    store_retention_t p;
    memset(&p, 0, sizeof p);
    p.raw_days = 1; /* (the blocks were stored now, years after this "now": they stay) */
    p.pyramid_fine_days = 1;
    p.now_ns = BASE_NS + NS(10) + 86400 * NS(1);
    store_retention_result_t r;
    do {
        memset(&r, 0, sizeof r);
        assert_int_equal(store_retention_step(f->s, &p, &r), 0);
    } while (r.more);
    int64_t first[STORE_PYR_LEVELS];
    assert_int_equal(store_pyramid_first(f->s, "T1", first), 0);
    assert_int_equal(first[0], BASE_NS + NS(10));
    assert_int_equal(first[1], BASE_NS + NS(10));
    for (int l = 2; l < STORE_PYR_LEVELS; l++)
        assert_int_equal(first[l], block_t0(1));
    assert_int_equal(store_pyramid_first(f->s, "nobody", first), 0);
    assert_true(first[0] == INT64_MAX && first[5] == INT64_MAX);

    /* 2 min at 120 points would be the 1 s level: its rows before +10 s are gone, and so are
     * the 10 s level's: the 1 min level answers, 2 buckets, all 200 blocks, no gap inside */
    json_t *j = query(f, BASE_NS, BASE_NS + NS(120), "Ua", 120);
    assert_string_equal(jstr(j, "source"), "pyramid");
    assert_int_equal(jint(j, "level_ns"), NS(60));
    assert_int_equal(jint(j, "max_points"), 2);
    assert_int_equal(jint(j, "sample_sets"), 200 * BLK);
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    assert_int_equal(jint(json_array_get(segs, 0), "t0_ns"), block_t0(1));
    assert_int_equal(jint(json_array_get(segs, 0), "end_ns"), block_t0(201));
    json_t *gaps = json_object_get(j, "gaps");
    for (size_t i = 0; i < json_array_size(gaps); i++) /* only before and after the data */
        assert_true(jint(json_array_get(gaps, i), "to_ns") <= block_t0(1) ||
                    jint(json_array_get(gaps, i), "from_ns") >= block_t0(201));
    json_decref(j);

    /* from +10 s on the 1 s level still holds everything: it stays */
    j = query(f, BASE_NS + NS(10), BASE_NS + NS(130), "Ua", 120);
    assert_int_equal(jint(j, "level_ns"), NS(1));
    assert_int_equal(jint(j, "sample_sets"), (200 - 99) * BLK - BLK / 2); /* +10 s .. +20.05 s */
    segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    json_decref(j);
}

/* Retention removed the blocks (raw_days) and kept the pyramid: a short range, which would be
 * read from the blocks, is answered from the pyramid's finest level that holds it instead of a
 * gap over its whole span; a range with no data anywhere stays the blocks' empty reply. */
static void test_blocks_removed(void **state)
{
    fixture_t *f = *state;
    write_seqs(f, 1, 200, 0); /* BASE + 50 ms .. BASE + 20.05 s */
    json_t *j = query(f, BASE_NS, BASE_NS + NS(30), "Ua", 1000);
    assert_string_equal(jstr(j, "source"), "blocks");
    json_decref(j);
    store_retention_t p;
    memset(&p, 0, sizeof p);
    p.raw_days = 1; /* every block: stored (now) more than a day before this "now" */
    p.pyramid_fine_days = 36500;
    p.now_ns = time_utc_ns() + 2 * 86400 * NS(1);
    store_retention_result_t r, tot;
    memset(&tot, 0, sizeof tot);
    do {
        memset(&r, 0, sizeof r);
        assert_int_equal(store_retention_step(f->s, &p, &r), 0);
        tot.rows[STORE_RET_BLOCKS_RAW] += r.rows[STORE_RET_BLOCKS_RAW];
        tot.rows[STORE_RET_PYRAMID_FINE] += r.rows[STORE_RET_PYRAMID_FINE];
    } while (r.more);
    assert_int_equal(tot.rows[STORE_RET_BLOCKS_RAW], 200);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE], 0);

    j = query(f, BASE_NS, BASE_NS + NS(30), "Ua", 1000);
    assert_string_equal(jstr(j, "source"), "pyramid");
    assert_string_equal(jstr(j, "mode"), "envelope");
    assert_int_equal(jint(j, "level_ns"), NS(1));
    assert_int_equal(jint(j, "max_points"), 30);
    assert_int_equal(jint(j, "sample_sets"), 200 * BLK);
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    assert_int_equal(jint(json_array_get(segs, 0), "t0_ns"), block_t0(1));
    json_decref(j);
    /* nothing stored there at all: the blocks' reply, one gap */
    j = query(f, BASE_NS + NS(100), BASE_NS + NS(130), "Ua", 1000);
    assert_string_equal(jstr(j, "source"), "blocks");
    assert_int_equal(jint(j, "sample_sets"), 0);
    assert_int_equal(json_array_size(json_object_get(j, "segments")), 0);
    json_decref(j);
}

/* Trends follow the measurements (insert, replacing upsert, 3 s ignored) and rank a fleet. */
static void submit_m(fixture_t *f, const char *tid, const char *interval, int64_t end, int count,
                     double u2, double ua)
{
    store_item_t *it = store_item_new(STORE_ITEM_MEASUREMENT);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    snprintf(it->reason, sizeof it->reason, "%s", interval);
    it->m_start_ns = end - NS(600);
    it->m_end_ns = end;
    it->m_count = (uint32_t)count;
    char js[512];
    int n = snprintf(js, sizeof js,
                     "{\"interval\":\"%s\",\"freq\":{\"mean\":50.01,\"min\":49.9,\"max\":50.1},"
                     "\"u0_pct\":0.1,\"u2_pct\":%.3f,\"i0_pct\":null,\"p\":1000,"
                     "\"channels\":[{\"name\":\"Ub\",\"rms\":231},{\"name\":\"Ua\",\"rms\":%.2f,"
                     "\"thd_pct\":2.5}]}",
                     interval, u2, ua);
    it->data = xmalloc((size_t)n + 1);
    memcpy(it->data, js, (size_t)n + 1);
    it->data_len = (size_t)n;
    assert_int_equal(store_submit(f->s, it), 0);
}

typedef struct {
    int n;
    int64_t t[64];
    double v[64];
    store_rank_t r[16];
} tr_t;

static int on_trend(void *ud, int64_t t, double v)
{
    tr_t *x = ud;
    if (x->n < 64) {
        x->t[x->n] = t;
        x->v[x->n++] = v;
    }
    return 0;
}

static int on_rank(void *ud, const store_rank_t *r)
{
    tr_t *x = ud;
    if (x->n < 16)
        x->r[x->n++] = *r;
    return 0;
}

static void test_trends(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (int i = 1; i <= 10; i++) {
        submit_m(f, "T1", "10min", BASE_NS + i * NS(600), 3000, 0.1 * i, 230 + i);
        submit_m(f, "T2", "10min", BASE_NS + i * NS(600), 3000, 0.05 * i, 229);
        submit_m(f, "T3", "3s", BASE_NS + i * NS(600), 3000, 9.9, 1); /* not a trend */
    }
    /* the same interval again with fewer values: kept the first; with more: replaced */
    submit_m(f, "T1", "10min", BASE_NS + 3 * NS(600), 10, 7.7, 0);
    submit_m(f, "T2", "10min", BASE_NS + 4 * NS(600), 4000, 3.0, 228);
    submit_m(f, "T3", "10min", BASE_NS + NS(600), 3000, 0.5, 0);
    store_writer_stop(f->s);

    tr_t x = {0};
    int q = store_trend_quantity("u2_pct");
    assert_true(q >= 0);
    assert_int_equal(store_trend_quantity("nope"), GS_EINVAL);
    assert_int_equal(
        store_trend_read(f->s, "T1", "10min", q, BASE_NS, BASE_NS + NS(6000), 100, on_trend, &x),
        0);
    assert_int_equal(x.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(x.t[i], BASE_NS + (i + 1) * NS(600));
        assert_true(fabs(x.v[i] - 0.1 * (i + 1)) < 1e-9);
    }
    x.n = 0;
    int qa = store_trend_quantity("Ua.rms");
    assert_int_equal(store_trend_read(f->s, "T1", "10min", qa, BASE_NS + NS(600),
                                      BASE_NS + NS(1800), 100, on_trend, &x),
                     0);
    assert_int_equal(x.n, 2); /* (from, to] */
    assert_true(fabs(x.v[0] - 232) < 1e-9);
    x.n = 0;
    assert_int_equal(store_trend_read(f->s, "T1", "10min", store_trend_quantity("i0_pct"), BASE_NS,
                                      BASE_NS + NS(700), 100, on_trend, &x),
                     0);
    assert_int_equal(x.n, 1);
    assert_true(isnan(x.v[0])); /* null in the aggregate */

    x.n = 0;
    int64_t nt = 0;
    assert_int_equal(store_trend_rank(f->s, "10min", q, STORE_TREND_MAX, BASE_NS,
                                      BASE_NS + NS(6000), 1, 10, &nt, on_rank, &x),
                     0);
    assert_int_equal(nt, 3);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.r[0].terminal_id, "T2"); /* 3.0, replaced by the larger count */
    assert_true(fabs(x.r[0].value - 3.0) < 1e-9);
    assert_int_equal(x.r[0].t_end_ns, BASE_NS + 4 * NS(600));
    assert_string_equal(x.r[1].terminal_id, "T1");
    assert_true(fabs(x.r[1].value - 1.0) < 1e-9);
    assert_int_equal(x.r[1].count, 10);
    assert_string_equal(x.r[2].terminal_id, "T3");
    x.n = 0;
    assert_int_equal(store_trend_rank(f->s, "10min", q, STORE_TREND_AVG, BASE_NS,
                                      BASE_NS + NS(6000), 0, 1, &nt, on_rank, &x),
                     0);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.r[0].terminal_id, "T3"); /* lowest average first */
}

/* No statement of the pyramid or the trends scans a table (EXPLAIN QUERY PLAN). */
static void test_plans(void **state)
{
    fixture_t *f = *state;
    char plan[4096];
    if (ut_pg()) { /* the plans are SQLite's: refused on PostgreSQL (store.h), the check skipped */
        assert_int_equal(store_pyramid_plan(f->s, plan, sizeof plan), GS_ENOTSUP);
        assert_int_equal(store_trend_plan(f->s, plan, sizeof plan), GS_ENOTSUP);
        skip();
    }
    assert_int_equal(store_pyramid_plan(f->s, plan, sizeof plan), 0);
    print_message("%s", plan);
    assert_non_null(strstr(plan, "pyramid_range: SEARCH wave_pyramid USING PRIMARY KEY"));
    assert_non_null(strstr(plan, "pyramid_first: SEARCH wave_pyramid USING PRIMARY KEY"));
    assert_null(strstr(plan, "SCAN"));
    assert_int_equal(store_trend_plan(f->s, plan, sizeof plan), 0);
    print_message("%s", plan);
    assert_non_null(strstr(plan, "trend_read: SEARCH measurement_trend USING PRIMARY KEY"));
    assert_non_null(strstr(plan, "trend_rank: SEARCH measurement_trend USING PRIMARY KEY"));
    assert_null(strstr(plan, "SCAN"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pyramid_math, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pyramid_same_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fine_levels_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
