/* Export (src/export): a known signal written through the real store writer and exported as
 * COMTRADE and CSV. Checks the .cfg text byte for byte for a known layout, every .dat record,
 * the representation of a gap (nrates 0 and timestamps), the .cff read back by the project's
 * reader, the zip structure (central directory, CRCs, read by Python's zipfile when python3 is
 * there) and the measurements CSV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "comtrade/comtrade.h"
#include "core/err.h"
#include "core/util.h"
#include "export/export.h"
#include "store/store.h"
#include "tests/unit/ut_tmp.h"
#include "tests/unit/ut_store.h" /* either engine (GS_PG_URL) */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define RATE    4000
#define BLK     400
#define BLK_NS  100000000LL
#define BASE_NS 1764000000000000000LL /* 2025-11-24T16:00:00Z */
#define VT      100.0
#define CT      40.0
#define SC_V    0.02f
#define SC_I    0.0005f

typedef struct {
    char dir[64];
    store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_export_XXXXXX");
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

static int64_t set_ns(int64_t t0, int i)
{
    return t0 + (int64_t)i * 1000000000 / RATE;
}

/* counts of channel ch at time t: 50 Hz sines, and the extremes of int16 in Ia (BINARY's
 * reserved -32768 must come out as -32767) */
static int16_t counts(int ch, int64_t t_ns)
{
    double t = (double)(t_ns - BASE_NS) / 1e9;
    if (ch == 3 && (t_ns - BASE_NS) == 250000LL)
        return -32768;
    if (ch == 3 && (t_ns - BASE_NS) == 500000LL)
        return 32767;
    double ph = 2 * M_PI * 50 * t - (ch % 3) * 2 * M_PI / 3;
    return (int16_t)lround((ch < 3 ? 16000.0 : 9000.0) * sin(ph));
}

static store_item_t *block(uint64_t seq, int64_t t0, int tq)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
    it->seq = seq;
    it->t0_ns = t0;
    it->sample_rate = RATE;
    it->channel_mask = 0x3f;
    it->nchannels = 6;
    it->sample_fmt = 1;
    it->time_quality = (uint8_t)tq;
    it->nsamples = BLK;
    it->data_len = (size_t)BLK * 6 * 2;
    it->data = xmalloc(it->data_len);
    for (int i = 0; i < BLK; i++)
        for (int c = 0; c < 6; c++) {
            uint16_t v = (uint16_t)counts(c, set_ns(t0, i));
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

/* blocks first..last at BASE + (seq-1) x 100 ms, without `skip`; block tq2 has time quality 2 */
static void write_blocks(fixture_t *f, uint64_t first, uint64_t last, uint64_t skip, uint64_t tq2)
{
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = first; q <= last; q++)
        if (q != skip)
            assert_int_equal(
                store_submit(f->s, block(q, BASE_NS + (int64_t)(q - 1) * BLK_NS, q == tq2 ? 2 : 1)),
                0);
    store_writer_stop(f->s);
}

/* The whole output of an export into *out; the cfg (PLAIN) into *cfg if not NULL. */
static void run_export(fixture_t *f, const export_opts_t *o, buf_t *out, buf_t *cfg)
{
    export_t *ex = NULL;
    char err[256] = "";
    int rc = export_open(f->s, o, &ex, err, sizeof err);
    if (rc != 0)
        fail_msg("export_open: %s", err);
    while ((rc = export_next(ex, out, err, sizeof err)) > 0)
        ;
    if (rc < 0)
        fail_msg("export_next: %s", err);
    if (cfg) {
        rc = export_cfg(ex, cfg, NULL, err, sizeof err);
        if (rc != 0)
            fail_msg("export_cfg: %s", err);
    }
    export_free(ex);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The cfg text of a known layout, exactly; every .dat record exactly. */
static void test_cfg_and_dat_exact(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 3, 0, 0);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 3 * BLK_NS, .side = EXPORT_SECONDARY,
                       .ft = COMTRADE_BINARY, .rev_year = 2013, .container = EXPORT_PLAIN};
    buf_t dat = {0}, cfg = {0};
    run_export(f, &o, &dat, &cfg);
    int mn[6], mx[6];
    for (int c = 0; c < 6; c++) {
        mn[c] = 99999;
        mx[c] = -99999;
        for (int i = 0; i < 3 * BLK; i++) {
            int v = counts(c, set_ns(BASE_NS, i));
            if (v == -32768)
                v = -32767;
            mn[c] = v < mn[c] ? v : mn[c];
            mx[c] = v > mx[c] ? v : mx[c];
        }
    }
    char want[2048];
    snprintf(want, sizeof want,
             "T1,T1,2013\r\n6,6A,0D\r\n"
             "1,Ua,A,,V,0.02,0,0,%d,%d,100,1,S\r\n"
             "2,Ub,B,,V,0.02,0,0,%d,%d,100,1,S\r\n"
             "3,Uc,C,,V,0.02,0,0,%d,%d,100,1,S\r\n"
             "4,Ia,A,,A,0.0005,0,0,%d,%d,40,1,S\r\n"
             "5,Ib,B,,A,0.0005,0,0,%d,%d,40,1,S\r\n"
             "6,Ic,C,,A,0.0005,0,0,%d,%d,40,1,S\r\n"
             "50\r\n1\r\n4000,1200\r\n"
             "24/11/2025,16:00:00.000000\r\n24/11/2025,16:00:00.000000\r\n"
             "BINARY\r\n1\r\n0,x\r\n0,3\r\n",
             mn[0], mx[0], mn[1], mx[1], mn[2], mx[2], mn[3], mx[3], mn[4], mx[4], mn[5], mx[5]);
    assert_string_equal(cfg.data, want);
    assert_int_equal(mn[3], -32767);
    assert_int_equal(mx[3], 32767);
    /* .dat: n, timestamp (µs), 6 int16 */
    assert_int_equal(dat.len, (size_t)3 * BLK * 20);
    for (int i = 0; i < 3 * BLK; i++) {
        const uint8_t *r = (const uint8_t *)dat.data + (size_t)i * 20;
        assert_int_equal(rd32(r), (uint32_t)i + 1);
        assert_int_equal(rd32(r + 4), (uint32_t)i * 250);
        for (int c = 0; c < 6; c++) {
            int16_t v = (int16_t)(uint16_t)(r[8 + 2 * c] | r[9 + 2 * c] << 8);
            int want_v = counts(c, set_ns(BASE_NS, i));
            assert_int_equal(v, want_v == -32768 ? -32767 : want_v);
        }
    }
    /* the project's reader agrees: values a*x on the secondary side */
    comtrade_cfg_t pc;
    char err[256];
    assert_int_equal(comtrade_cfg_parse(cfg.data, cfg.len, &pc, err, sizeof err), 0);
    comtrade_rec_t *rec = NULL;
    assert_int_equal(comtrade_dat_parse(&pc, (const uint8_t *)dat.data, dat.len, &rec, err,
                                        sizeof err),
                     0);
    assert_int_equal(comtrade_nsamples(rec), 3 * BLK);
    assert_int_equal(comtrade_time_ns(rec, 401), set_ns(BASE_NS, 401));
    assert_true(fabs(comtrade_value(rec, 0, 7, COMTRADE_AS_RECORDED) -
                     counts(0, set_ns(BASE_NS, 7)) * 0.02) < 1e-12);
    assert_true(fabs(comtrade_value(rec, 0, 7, COMTRADE_PRIMARY) -
                     counts(0, set_ns(BASE_NS, 7)) * 0.02 * VT) < 1e-9);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&pc);
    buf_free(&dat);
    buf_free(&cfg);
}

/* A missing block: nrates 0, "0,N", the timestamps carry the gap; the worst time quality. */
static void test_gap(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 5, 3, 4);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS + 50000000,
                       .to_ns = BASE_NS + 5 * BLK_NS, .side = EXPORT_PRIMARY,
                       .ft = COMTRADE_BINARY32, .rev_year = 2013, .container = EXPORT_PLAIN};
    buf_t dat = {0}, cfg = {0};
    run_export(f, &o, &dat, &cfg);
    /* from 50 ms: 200 sets of block 1, 400 of 2, 400 of 4, 400 of 5 */
    assert_non_null(strstr(cfg.data, "\r\n50\r\n0\r\n0,1400\r\n24/11/2025,16:00:00.050000\r\n"));
    assert_non_null(strstr(cfg.data, "BINARY32\r\n1\r\n0,x\r\n9,3\r\n"));
    assert_non_null(strstr(cfg.data, "1,Ua,A,,V,2,0,0,")); /* 0.02 x 100 on the primary side */
    size_t rl = 8 + 6 * 4;
    assert_int_equal(dat.len, 1400 * rl);
    const uint8_t *r = (const uint8_t *)dat.data;
    assert_int_equal(rd32(r + 599 * rl + 4), 599 * 250);   /* last of block 2 */
    assert_int_equal(rd32(r + 600 * rl + 4), 250000);      /* block 4 starts 300 ms: 250 ms later */
    assert_int_equal((int32_t)rd32(r + 600 * rl + 8), counts(0, BASE_NS + 3 * BLK_NS));
    /* read back: times from the timestamps */
    comtrade_cfg_t pc;
    char err[256];
    assert_int_equal(comtrade_cfg_parse(cfg.data, cfg.len, &pc, err, sizeof err), 0);
    comtrade_rec_t *rec = NULL;
    assert_int_equal(comtrade_dat_parse(&pc, (const uint8_t *)dat.data, dat.len, &rec, err,
                                        sizeof err),
                     0);
    assert_int_equal(comtrade_time_ns(rec, 600), BASE_NS + 3 * BLK_NS);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&pc);
    buf_free(&dat);
    buf_free(&cfg);
}

/* An EVENT capture numbered after later waveform blocks (its t0 is earlier): every waveform
 * block is still exported, none twice, and the capture is not. */
static void test_event_block_between(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = 1; q <= 31; q++) {
        store_item_t *it;
        if (q == 22) {
            it = block(q, BASE_NS + 1500000000LL, 1);
            it->is_event = 1;
        } else {
            it = block(q, BASE_NS + (int64_t)(q < 22 ? q - 1 : q - 2) * BLK_NS, 1);
        }
        assert_int_equal(store_submit(f->s, it), 0);
    }
    store_writer_stop(f->s);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 3 * 1000000000LL, .side = EXPORT_SECONDARY,
                       .ft = COMTRADE_BINARY, .rev_year = 2013, .container = EXPORT_PLAIN};
    buf_t dat = {0}, cfg = {0};
    run_export(f, &o, &dat, &cfg);
    assert_non_null(strstr(cfg.data, "\r\n1\r\n4000,12000\r\n"));
    assert_int_equal(dat.len, (size_t)12000 * 20);
    for (int i = 0; i < 12000; i += 7) {
        const uint8_t *r = (const uint8_t *)dat.data + (size_t)i * 20;
        assert_int_equal(rd32(r + 4), (uint32_t)i * 250);
        int want = counts(1, set_ns(BASE_NS, i));
        assert_int_equal((int16_t)(uint16_t)(r[10] | r[11] << 8), want);
    }
    buf_free(&dat);
    buf_free(&cfg);
}

/* After a long gap the read window is wide; export_next still hands out bounded pieces
 * (constant memory), and every sample arrives. */
static void test_bounded_pieces(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = 1; q <= 250; q++) {
        int64_t t0 = BASE_NS + (int64_t)(q - 1) * BLK_NS + (q > 2 ? 2000LL * 1000000000LL : 0);
        assert_int_equal(store_submit(f->s, block(q, t0, 1)), 0);
    }
    store_writer_stop(f->s);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 3000LL * 1000000000LL, .side = EXPORT_SECONDARY,
                       .ft = COMTRADE_BINARY, .rev_year = 2013, .container = EXPORT_PLAIN};
    export_t *ex = NULL;
    char err[256];
    assert_int_equal(export_open(f->s, &o, &ex, err, sizeof err), 0);
    buf_t piece = {0};
    size_t total = 0, biggest = 0;
    int rc;
    while ((rc = export_next(ex, &piece, err, sizeof err)) > 0) {
        total += piece.len;
        biggest = piece.len > biggest ? piece.len : biggest;
        buf_reset(&piece);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, (size_t)250 * BLK * 20);
    assert_true(biggest <= 256 * 1024 + BLK * 20); /* a piece and one block at most */
    export_stats_t st;
    export_stats(ex, &st);
    assert_int_equal(st.gaps, 1);
    export_free(ex);
    buf_free(&piece);
}

/* .cff (two passes) read back by the project's reader; FLOAT32 on the primary side. */
static void test_cff_float32(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 4, 0, 0);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 4 * BLK_NS, .side = EXPORT_PRIMARY,
                       .ft = COMTRADE_FLOAT32, .rev_year = 2013, .container = EXPORT_CFF};
    buf_t out = {0};
    run_export(f, &o, &out, NULL);
    assert_memory_equal(out.data, "--- file type: CFG ---\r\n", 24);
    assert_non_null(strstr(out.data, "--- file type: DAT BINARY: 51200 ---\r\n")); /* 1600 x 32 */
    comtrade_rec_t *rec = NULL;
    char err[256];
    int rc = comtrade_cff_parse((const uint8_t *)out.data, out.len, &rec, err, sizeof err);
    if (rc)
        fail_msg("cff: %s", err);
    assert_int_equal(comtrade_nsamples(rec), 1600);
    for (int i = 0; i < 1600; i += 37)
        for (int c = 0; c < 6; c++) {
            double want = (float)(counts(c, set_ns(BASE_NS, i)) * (c < 3 ? 0.02 * VT : 0.0005 * CT));
            assert_true(comtrade_value(rec, (size_t)c, (size_t)i, COMTRADE_AS_RECORDED) == want);
        }
    comtrade_rec_free(rec);
    buf_free(&out);
}

/* int32 counts that do not fit BINARY: the counting pass picks x = count / 2^k, a = scale x 2^k
 * (k = 2 for counts up to 100000); BINARY32 keeps them exact. */
static void test_int32_narrowing(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (uint64_t q = 1; q <= 2; q++) {
        store_item_t *it = block(q, BASE_NS + (int64_t)(q - 1) * BLK_NS, 1);
        free(it->data);
        it->sample_fmt = 2;
        it->data_len = (size_t)BLK * 6 * 4;
        it->data = xmalloc(it->data_len);
        for (int i = 0; i < BLK; i++)
            for (int c = 0; c < 6; c++) {
                int32_t v = (int32_t)((q - 1) * BLK + (uint64_t)i) * 250 - 100000 + c;
                uint32_t u = (uint32_t)v;
                for (int b = 0; b < 4; b++)
                    it->data[(i * 6 + c) * 4 + b] = (uint8_t)(u >> (8 * b));
            }
        assert_int_equal(store_submit(f->s, it), 0);
    }
    store_writer_stop(f->s);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 2 * BLK_NS, .side = EXPORT_SECONDARY,
                       .ft = COMTRADE_BINARY, .rev_year = 2013, .container = EXPORT_PLAIN};
    buf_t dat = {0}, cfg = {0};
    run_export(f, &o, &dat, &cfg);
    /* counts -100000 .. 99750 (+c): k = 2, a = 0.02 x 4 */
    assert_non_null(strstr(cfg.data, "1,Ua,A,,V,0.08,0,0,-25000,24938,100,1,S\r\n"));
    for (int i = 0; i < 800; i += 13) {
        const uint8_t *r = (const uint8_t *)dat.data + (size_t)i * 20;
        int16_t x = (int16_t)(uint16_t)(r[8] | r[9] << 8);
        assert_int_equal(x, (int)lround((i * 250 - 100000) / 4.0));
    }
    buf_free(&dat);
    buf_free(&cfg);
    o.ft = COMTRADE_BINARY32;
    run_export(f, &o, &dat, &cfg);
    assert_non_null(strstr(cfg.data, "1,Ua,A,,V,0.02,0,0,-100000,99750,100,1,S\r\n"));
    const uint8_t *r = (const uint8_t *)dat.data + 799 * 32;
    assert_int_equal((int32_t)rd32(r + 8 + 4 * 5), 799 * 250 - 100000 + 5);
    buf_free(&dat);
    buf_free(&cfg);
}

/* Revisions and file types the standard does not combine are refused. */
static void test_refusals(void **state)
{
    fixture_t *f = *state;
    export_t *ex = NULL;
    char err[256];
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + BLK_NS, .ft = COMTRADE_FLOAT32, .rev_year = 1999};
    assert_int_equal(export_open(f->s, &o, &ex, err, sizeof err), GS_EINVAL);
    o.ft = COMTRADE_BINARY;
    o.container = EXPORT_CFF;
    assert_int_equal(export_open(f->s, &o, &ex, err, sizeof err), GS_EINVAL);
    o.rev_year = 2013;
    o.terminal_id = "NOPE";
    assert_int_equal(export_open(f->s, &o, &ex, err, sizeof err), GS_ENOTFOUND);
    o.terminal_id = "T1";
    o.to_ns = o.from_ns;
    assert_int_equal(export_open(f->s, &o, &ex, err, sizeof err), GS_EINVAL);
    o.to_ns = o.from_ns + BLK_NS;
    assert_int_equal(export_open(f->s, &o, &ex, err, sizeof err), 0);
    assert_true(export_empty(ex)); /* nothing stored yet */
    export_free(ex);
}

/* The zip: its central directory, entries and CRCs (and Python's zipfile when available). */
static void test_zip(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 3, 0, 0);
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 3 * BLK_NS, .ft = COMTRADE_ASCII, .rev_year = 1999,
                       .container = EXPORT_ZIP, .base = "rec"};
    buf_t z = {0};
    run_export(f, &o, &z, NULL);
    const uint8_t *p = (const uint8_t *)z.data;
    size_t n = z.len;
    assert_true(n > 22);
    const uint8_t *eocd = p + n - 22;
    assert_int_equal(rd32(eocd), 0x06054b50);
    assert_int_equal(eocd[10] | eocd[11] << 8, 3); /* entries */
    uint32_t cd_size = rd32(eocd + 12), cd_off = rd32(eocd + 16);
    assert_int_equal(cd_off + cd_size, n - 22);
    const char *names[3] = {"rec.dat", "rec.cfg", "rec.hdr"};
    const uint8_t *c = p + cd_off;
    for (int e = 0; e < 3; e++) {
        assert_int_equal(rd32(c), 0x02014b50);
        uint32_t crc = rd32(c + 16), csize = rd32(c + 20), usize = rd32(c + 24);
        int nlen = c[28] | c[29] << 8, xlen = c[30] | c[31] << 8, clen = c[32] | c[33] << 8;
        uint32_t loff = rd32(c + 42);
        assert_int_equal(nlen, (int)strlen(names[e]));
        assert_memory_equal(c + 46, names[e], (size_t)nlen);
        const uint8_t *l = p + loff;
        assert_int_equal(rd32(l), 0x04034b50);
        assert_int_equal(l[6] & 8, 8); /* data descriptor */
        const uint8_t *data = l + 30 + (l[26] | l[27] << 8) + (l[28] | l[29] << 8);
        /* inflate and check the CRC */
        uint8_t *u = malloc(usize + 1);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        assert_int_equal(inflateInit2(&zs, -15), Z_OK);
        zs.next_in = (Bytef *)(uintptr_t)data;
        zs.avail_in = csize;
        zs.next_out = u;
        zs.avail_out = usize + 1;
        assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
        assert_int_equal(zs.total_out, usize);
        inflateEnd(&zs);
        assert_int_equal((uint32_t)crc32(0, u, usize), crc);
        /* the descriptor after the data repeats crc and sizes */
        assert_int_equal(rd32(data + csize), 0x08074b50);
        assert_int_equal(rd32(data + csize + 4), crc);
        if (e == 0) /* ASCII 1999: "1,0,x,..." */
            assert_memory_equal(u, "1,0,", 4);
        if (e == 1)
            assert_memory_equal(u, "T1,T1,1999\r\n", 12);
        free(u);
        c += 46 + nlen + xlen + clen;
    }
    /* Python's zipfile, if there is a python3 */
    if (system("python3 -c 'import zipfile' >/dev/null 2>&1") == 0) {
        char path[128], cmd[512];
        snprintf(path, sizeof path, "%s/t.zip", f->dir);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(z.data, 1, z.len, fp), z.len);
        fclose(fp);
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import zipfile,sys; z=zipfile.ZipFile('%s'); "
                 "sys.exit(z.testzip() is not None or z.namelist()!=['rec.dat','rec.cfg','rec.hdr'])\"",
                 path);
        assert_int_equal(system(cmd), 0);
    }
    buf_free(&z);
}

/* A zip64 entry (declared big) stays readable: sizes in the descriptor and central directory. */
static void test_zip64_entry(void **state)
{
    fixture_t *f = *state;
    buf_t z = {0};
    export_zip_t *zw = export_zip_new(1);
    assert_int_equal(export_zip_begin(zw, &z, "a.bin", 1764000000, 1), 0);
    assert_int_equal(export_zip_data(zw, &z, "hello", 5), 0);
    assert_int_equal(export_zip_end(zw, &z), 0);
    assert_int_equal(export_zip_begin(zw, &z, "b.txt", 1764000000, 0), 0);
    assert_int_equal(export_zip_data(zw, &z, "world", 5), 0);
    assert_int_equal(export_zip_end(zw, &z), 0);
    assert_int_equal(export_zip_close(zw, &z), 0);
    export_zip_free(zw);
    assert_int_equal(rd32((const uint8_t *)z.data + z.len - 22), 0x06054b50);
    assert_int_equal(rd32((const uint8_t *)z.data + z.len - 22 - 20), 0x07064b50); /* locator */
    if (system("python3 -c 'import zipfile' >/dev/null 2>&1") == 0) {
        char path[128], cmd[512];
        snprintf(path, sizeof path, "%s/t64.zip", f->dir);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(z.data, 1, z.len, fp), z.len);
        fclose(fp);
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import zipfile,sys; z=zipfile.ZipFile('%s'); "
                 "sys.exit(z.testzip() is not None or z.read('a.bin')!=b'hello' or "
                 "z.read('b.txt')!=b'world')\"",
                 path);
        assert_int_equal(system(cmd), 0);
    }
    buf_free(&z);
}

/* Waveform CSV: header and a row; measurements CSV: one row per interval, flattened columns. */
static void test_csv(void **state)
{
    fixture_t *f = *state;
    write_blocks(f, 1, 1, 0, 0);
    export_opts_t o = {.what = EXPORT_CSV_WAVEFORM, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 1000000, .side = EXPORT_SECONDARY};
    buf_t out = {0};
    run_export(f, &o, &out, NULL);
    /* values with 3 (0.02 V) and 5 (0.0005 A) decimals, trailing zeros dropped: the counts
     * are 0, -13856, 13856 (V) and -4315 (Ia), 8959, -4644 at t = 0 */
    const char *want = "time,Ua [V],Ub [V],Uc [V],Ia [A],Ib [A],Ic [A]\r\n"
                       "2025-11-24T16:00:00.000000000Z,";
    assert_memory_equal(out.data, want, strlen(want));
    char row1[256];
    snprintf(row1, sizeof row1, "%s", out.data + strlen(want));
    *strchr(row1, '\r') = '\0';
    double v[6];
    assert_int_equal(sscanf(row1, "%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4],
                            &v[5]),
                     6);
    for (int c = 0; c < 6; c++)
        assert_int_equal(lround(v[c] / (c < 3 ? 0.02 : 0.0005)), counts(c, BASE_NS));
    char exact[64];
    snprintf(exact, sizeof exact, ",%.3f,", counts(1, BASE_NS) * 0.02);
    while (exact[strlen(exact) - 2] == '0')
        memmove(exact + strlen(exact) - 2, exact + strlen(exact) - 1, 2);
    if (exact[strlen(exact) - 2] == '.')
        memmove(exact + strlen(exact) - 2, exact + strlen(exact) - 1, 2);
    assert_non_null(strstr(out.data, exact));
    int rows = 0;
    for (size_t i = 0; i < out.len; i++)
        rows += out.data[i] == '\n';
    assert_int_equal(rows, 1 + 4); /* [0, 1 ms): 4 sets at 4 kS/s */
    buf_free(&out);

    assert_int_equal(store_writer_start(f->s, NULL, NULL), 0);
    for (int k = 0; k < 3; k++) {
        store_item_t *it = store_item_new(STORE_ITEM_MEASUREMENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
        snprintf(it->reason, sizeof it->reason, "10min");
        it->m_start_ns = BASE_NS + k * 600000000000LL;
        it->m_end_ns = it->m_start_ns + 600000000000LL;
        it->m_count = 3000;
        char js[256];
        snprintf(js, sizeof js,
                 "{\"freq\":{\"mean\":%d.5},\"flags\":[%s],\"channels\":[{\"name\":\"Ua\","
                 "\"rms\":57.%d}]}",
                 50 + k, k == 1 ? "\"event\",\"incomplete\"" : "", k);
        it->data_len = strlen(js);
        it->data = (uint8_t *)xstrdup(js);
        assert_int_equal(store_submit(f->s, it), 0);
    }
    store_writer_stop(f->s);
    export_opts_t m = {.what = EXPORT_CSV_MEASUREMENTS, .terminal_id = "T1", .from_ns = BASE_NS,
                       .to_ns = BASE_NS + 3 * 600000000000LL, .interval = "10min"};
    buf_t mo = {0};
    run_export(f, &m, &mo, NULL);
    const char *wantm =
        "t_start,t_end,interval,count,freq.mean,flags,Ua.rms\r\n"
        "2025-11-24T16:00:00.000000000Z,2025-11-24T16:10:00.000000000Z,10min,3000,50.5,,57\r\n";
    assert_memory_equal(mo.data, wantm, strlen(wantm));
    assert_non_null(strstr(mo.data, ",10min,3000,51.5,event;incomplete,57.1\r\n"));
    assert_non_null(strstr(mo.data, ",10min,3000,52.5,,57.2\r\n"));
    buf_free(&mo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cfg_and_dat_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_block_between, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cff_float32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int32_narrowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zip64_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
