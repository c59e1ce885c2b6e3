/* Unit tests of the lossless waveform codec (src/wcodec): round trips over every shape and
 * many signal kinds, chunk filling (the largest run that fits), malformed input (every
 * truncation, every single bit flip, garbage) never overruns and is refused or decodes to a
 * valid block, blocks at rest (concatenated segments, leftovers refused), the bound, and the
 * committed test vectors of docs/protocol.md (docs/vectors/wcodec.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>

#include "wcodec/wcodec.h"

#ifndef GS_WCODEC_VECTORS_JSON
#error "GS_WCODEC_VECTORS_JSON must name docs/vectors/wcodec.json"
#endif

/* Every test runs for codec 1 (the plain functions) and codec 2 (the _as functions): g_codec. */
static int g_codec = WCODEC_ID;

static int wc_encode(const uint8_t *block, uint32_t nsets, int nch, int fmt, uint32_t hint,
                     uint32_t first, uint32_t max_sets, uint8_t *out, size_t cap, uint32_t *n_out,
                     size_t *len_out)
{
    if (g_codec == WCODEC_ID)
        return wcodec_encode(block, nsets, nch, fmt, hint, first, max_sets, out, cap, n_out,
                             len_out);
    return wcodec_encode_as(g_codec, block, nsets, nch, fmt, hint, first, max_sets, out, cap,
                            n_out, len_out);
}

static int wc_decode(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                     uint32_t first, uint8_t *block, uint32_t *n_out, size_t *used)
{
    if (g_codec == WCODEC_ID)
        return wcodec_decode(in, len, nsets, nch, fmt, first, block, n_out, used);
    return wcodec_decode_as(g_codec, in, len, nsets, nch, fmt, first, block, n_out, used);
}

static int wc_encode_block(const uint8_t *block, uint32_t nsets, int nch, int fmt, uint32_t hint,
                           uint8_t *out, size_t cap, size_t *len_out)
{
    if (g_codec == WCODEC_ID)
        return wcodec_encode_block(block, nsets, nch, fmt, hint, out, cap, len_out);
    return wcodec_encode_block_as(g_codec, block, nsets, nch, fmt, hint, out, cap, len_out);
}

static int wc_decode_block(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                           uint8_t *block)
{
    if (g_codec == WCODEC_ID)
        return wcodec_decode_block(in, len, nsets, nch, fmt, block);
    return wcodec_decode_block_as(g_codec, in, len, nsets, nch, fmt, block);
}

/* ---- signals ---- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    uint64_t x = g_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g_rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

enum { SIG_NOISE, SIG_SMALLNOISE, SIG_SINE, SIG_STEP, SIG_CONST, SIG_EXTREME, SIG_RAMP, SIG_N };

static int64_t clampv(double v, int fmt)
{
    double lo = fmt == 1 ? -32768.0 : -2147483648.0, hi = fmt == 1 ? 32767.0 : 2147483647.0;
    if (v < lo)
        return (int64_t)lo;
    if (v > hi)
        return (int64_t)hi;
    return (int64_t)llround(v);
}

static void put(uint8_t *b, uint32_t set, int nch, int c, int fmt, int64_t v)
{
    uint8_t *p = b + ((size_t)set * (size_t)nch + (size_t)c) * (size_t)fmt * 2u;
    uint32_t u = (uint32_t)(int32_t)v;
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    if (fmt == 2) {
        p[2] = (uint8_t)(u >> 16);
        p[3] = (uint8_t)(u >> 24);
    }
}

/* Fills a block with signal kind `kind`. Sines: 3-phase fundamental at a slightly off-nominal
 * frequency (period about `period` sets) with 3rd/5th/7th harmonics and a little noise. */
static void fill(uint8_t *b, uint32_t nsets, int nch, int fmt, int kind, double period)
{
    double full = fmt == 1 ? 32767.0 : 2147483647.0;
    for (uint32_t i = 0; i < nsets; i++) {
        for (int c = 0; c < nch; c++) {
            double v = 0;
            switch (kind) {
            case SIG_NOISE:
                v = fmt == 1 ? (double)(int16_t)rnd() : (double)(int32_t)rnd();
                break;
            case SIG_SMALLNOISE:
                v = (double)((int)(rnd() % 41) - 20);
                break;
            case SIG_SINE: {
                double th = 6.283185307179586 * i / (period * 1.0007) - c * 2.0943951;
                v = 0.6 * full *
                        (sin(th) + 0.03 * sin(3 * th + 0.4) + 0.02 * sin(5 * th) +
                         0.01 * sin(7 * th + 1)) +
                    (double)((int)(rnd() % 9) - 4);
                break;
            }
            case SIG_STEP:
                v = ((i / 37 + (uint32_t)c) % 3 == 0) ? full * 0.9 : -full * 0.3;
                break;
            case SIG_CONST:
                v = c * 1000 - 7;
                break;
            case SIG_EXTREME: /* alternating full-range extremes: residuals need 33+ bits */
                v = ((i + (uint32_t)c) % 3 == 0) ? full : ((i % 2) ? -full - 1 : 0);
                break;
            default:
                v = (double)i * (c + 1) * (fmt == 1 ? 3 : 300000);
                v = fmod(v, 2 * full) - full;
                break;
            }
            put(b, i, nch, c, fmt, clampv(v, fmt));
        }
    }
}

static size_t block_bytes(uint32_t nsets, int nch, int fmt)
{
    return (size_t)nsets * (size_t)nch * (size_t)fmt * 2u;
}

/* Encodes the whole block, decodes it, compares; also checks the bound. Returns the size. */
static size_t roundtrip(const uint8_t *raw, uint32_t nsets, int nch, int fmt, uint32_t hint)
{
    size_t rb = block_bytes(nsets, nch, fmt), bound = wcodec_bound(nsets, nch, fmt), len = 0;
    uint8_t *enc = malloc(bound), *dec = malloc(rb);
    assert_non_null(enc);
    assert_non_null(dec);
    assert_int_equal(wc_encode_block(raw, nsets, nch, fmt, hint, enc, bound, &len), 0);
    assert_true(len > 0 && len <= bound);
    memset(dec, 0xA5, rb);
    assert_int_equal(wc_decode_block(enc, len, nsets, nch, fmt, dec), 0);
    assert_memory_equal(dec, raw, rb);
    free(enc);
    free(dec);
    return len;
}

static void test_roundtrip_shapes_one(void **state)
{
    static const uint32_t sets[] = {1, 2, 3, 5, 31, 64, 80, 81, 400, 1000, 4097, 8192};
    (void)state;
    for (int fmt = 1; fmt <= 2; fmt++) {
        for (int nch = 1; nch <= WCODEC_MAX_CHANNELS; nch++) {
            for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
                uint32_t nsets = sets[s];
                /* the big blocks only for a few channel counts (test time) */
                if (nsets > 1000 && nch != 1 && nch != 6 && nch != 16)
                    continue;
                uint8_t *raw = malloc(block_bytes(nsets, nch, fmt));
                assert_non_null(raw);
                int kind = (int)((nch + s) % SIG_N);
                fill(raw, nsets, nch, fmt, kind, 80);
                roundtrip(raw, nsets, nch, fmt, 80);
                roundtrip(raw, nsets, nch, fmt, 0);
                free(raw);
            }
        }
    }
}

static void test_roundtrip_kinds_one(void **state)
{
    static const uint32_t hints[] = {0, 1, 2, 3, 80, 81, 333, 4095, 4096, 8192, 100000};
    (void)state;
    for (int fmt = 1; fmt <= 2; fmt++) {
        for (int kind = 0; kind < SIG_N; kind++) {
            for (size_t h = 0; h < sizeof hints / sizeof hints[0]; h++) {
                uint32_t nsets = 1200;
                uint8_t *raw = malloc(block_bytes(nsets, 6, fmt));
                assert_non_null(raw);
                fill(raw, nsets, 6, fmt, kind, hints[h] ? (double)hints[h] : 64.0);
                size_t len = roundtrip(raw, nsets, 6, fmt, hints[h]);
                if (kind == SIG_CONST)
                    assert_true(len < block_bytes(nsets, 6, fmt) / 20); /* next to nothing */
                free(raw);
            }
        }
    }
}

/* Compression is real on waveforms: far below raw with the period hint, and the hint helps. */
static void test_compresses_sines_one(void **state)
{
    (void)state;
    uint32_t nsets = 4000;
    uint8_t *raw = malloc(block_bytes(nsets, 6, 1));
    assert_non_null(raw);
    fill(raw, nsets, 6, 1, SIG_SINE, 80);
    size_t with = roundtrip(raw, nsets, 6, 1, 80), without = roundtrip(raw, nsets, 6, 1, 0);
    assert_true(with < block_bytes(nsets, 6, 1) / 2);
    assert_true(with < without);
    free(raw);
}

/* Chunk filling: each segment fits its cap, and one more set would not have fitted. Segments
 * decoded one by one with wcodec_decode rebuild the block; their concatenation is a block. */
static void check_chunks(const uint8_t *raw, uint32_t nsets, int nch, int fmt, uint32_t hint,
                         size_t cap, uint32_t max_sets)
{
    size_t rb = block_bytes(nsets, nch, fmt), total = 0, tcap = wcodec_bound(nsets, nch, fmt) * 4;
    uint8_t *all = malloc(tcap), *dec = malloc(rb), *seg = malloc(cap), *big = malloc(tcap);
    uint32_t first = 0;
    assert_true(all && dec && seg && big);
    memset(dec, 0x5A, rb);
    while (first < nsets) {
        uint32_t n = 0, n2 = 0;
        size_t len = 0, used = 0, len2 = 0;
        int rc = wc_encode(raw, nsets, nch, fmt, hint, first, max_sets, seg, cap, &n, &len);
        if (rc == WCODEC_E_SPACE) {
            /* then really not even one set fits */
            assert_int_equal(
                wc_encode(raw, nsets, nch, fmt, hint, first, 1, big, tcap, &n2, &len2), 0);
            assert_true(len2 > cap);
            goto out;
        }
        assert_int_equal(rc, 0);
        assert_true(n >= 1 && n <= max_sets && first + n <= nsets);
        assert_true(len >= 1 && len <= cap);
        if (first + n < nsets && n < max_sets) {
            /* maximal: n + 1 sets would not fit */
            assert_int_equal(
                wc_encode(raw, nsets, nch, fmt, hint, first, n + 1, big, tcap, &n2, &len2), 0);
            assert_int_equal(n2, n + 1);
            assert_true(len2 > cap);
        }
        /* same bytes when asked for exactly n with room to spare (deterministic) */
        assert_int_equal(wc_encode(raw, nsets, nch, fmt, hint, first, n, big, tcap, &n2, &len2),
                         0);
        assert_int_equal(n2, n);
        assert_int_equal(len2, len);
        assert_memory_equal(big, seg, len);
        /* decode this segment (followed by garbage, which must not be read) */
        memcpy(big, seg, len);
        memset(big + len, 0xFF, 16);
        assert_int_equal(wc_decode(big, len + 16, nsets, nch, fmt, first, dec, &n2, &used), 0);
        assert_int_equal(n2, n);
        assert_int_equal(used, len);
        memcpy(all + total, seg, len);
        total += len;
        first += n;
    }
    assert_memory_equal(dec, raw, rb);
    memset(dec, 0, rb);
    assert_int_equal(wc_decode_block(all, total, nsets, nch, fmt, dec), 0);
    assert_memory_equal(dec, raw, rb);
    /* leftovers and missing segments are refused */
    all[total] = 0;
    assert_int_equal(wc_decode_block(all, total + 1, nsets, nch, fmt, dec),
                     WCODEC_E_MALFORMED);
    if (nsets > 1)
        assert_int_equal(wc_decode_block(all, total, nsets + 1, nch, fmt, dec),
                         WCODEC_E_MALFORMED);
out:
    free(all);
    free(dec);
    free(seg);
    free(big);
}

static void test_chunk_fill_one(void **state)
{
    static const size_t caps[] = {8, 16, 40, 100, 333, 1024, 4000};
    (void)state;
    for (int fmt = 1; fmt <= 2; fmt++) {
        for (int kind = 0; kind < SIG_N; kind++) {
            uint32_t nsets = 800;
            uint8_t *raw = malloc(block_bytes(nsets, 6, fmt));
            assert_non_null(raw);
            fill(raw, nsets, 6, fmt, kind, 80);
            for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
                check_chunks(raw, nsets, 6, fmt, 80, caps[c], WCODEC_MAX_SETS);
                check_chunks(raw, nsets, 6, fmt, 80, caps[c], 100);
            }
            free(raw);
        }
    }
    /* one channel, tiny caps */
    uint8_t raw1[2 * 300];
    fill(raw1, 300, 1, 1, SIG_SINE, 50);
    for (size_t cap = 1; cap < 40; cap++)
        check_chunks(raw1, 300, 1, 1, 50, cap, 7);
}

/* Long periods: the decoder keeps one channel in a window of about 4,160 sets and slides it
 * (flushing to the block, reloading the history) when a block does not fit; with P = 2047 and
 * taps two cycles back the window holds one tile past the history, so it slides every 64 sets.
 * Whole blocks and chunks (each decoded on top of the earlier ones) must come back exactly. */
static void test_long_periods_one(void **state)
{
    static const uint32_t periods[] = {2047, 1500, 700};
    (void)state;
    for (int fmt = 1; fmt <= 2; fmt++) {
        for (size_t p = 0; p < sizeof periods / sizeof periods[0]; p++) {
            uint32_t nsets = WCODEC_MAX_SETS;
            uint8_t *raw = malloc(block_bytes(nsets, 2, fmt));
            assert_non_null(raw);
            fill(raw, nsets, 2, fmt, SIG_SINE, periods[p]);
            size_t len = roundtrip(raw, nsets, 2, fmt, periods[p]);
            assert_true(len < block_bytes(nsets, 2, fmt) / 2); /* the cycle taps were used */
            check_chunks(raw, nsets, 2, fmt, periods[p], 3000, WCODEC_MAX_SETS);
            free(raw);
        }
    }
}

/* Stack bounds of wcodec.h, measured by painting: each call runs in a thread whose stack is a
 * painted buffer; the deepest byte changed gives the use, less that of a thread doing nothing
 * (libc puts the thread's descriptor and TLS on that stack). Worst-case shapes: 16 channels, int32, 8192 sets,
 * the longest period. Only asserted in optimized builds without sanitizers (their frames are
 * larger); the figures are printed in every build. */
#define STK_SIZE (512 * 1024)
typedef struct {
    uint8_t *raw, *enc, *dec;
    size_t len, cap;
    int rc, encode;
} stk_job_t;

static void *stk_run(void *arg)
{
    stk_job_t *j = arg;
    if (j->encode == 2)
        j->rc = 0; /* baseline: the thread's descriptor and TLS, placed on its stack by libc */
    else if (j->encode == 3)
        j->rc = wcodec_encode_block_as(WCODEC_ID_MODEL, j->raw, WCODEC_MAX_SETS, 16, 2, 2047,
                                       j->enc, j->cap, &j->len);
    else if (j->encode == 4)
        j->rc = wcodec_decode_block_as(WCODEC_ID_MODEL, j->enc, j->len, WCODEC_MAX_SETS, 16, 2,
                                       j->dec);
    else if (j->encode)
        j->rc = wc_encode_block(j->raw, WCODEC_MAX_SETS, 16, 2, 2047, j->enc, j->cap, &j->len);
    else
        j->rc = wc_decode_block(j->enc, j->len, WCODEC_MAX_SETS, 16, 2, j->dec);
    return NULL;
}

static size_t stk_measure(stk_job_t *j)
{
    uint8_t *stk = malloc(STK_SIZE);
    pthread_attr_t at;
    pthread_t th;
    size_t i = 0;
    assert_non_null(stk);
    memset(stk, 0xA5, STK_SIZE);
    assert_int_equal(pthread_attr_init(&at), 0);
    assert_int_equal(pthread_attr_setstack(&at, stk, STK_SIZE), 0);
    assert_int_equal(pthread_create(&th, &at, stk_run, j), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&at);
    while (i < STK_SIZE && stk[i] == 0xA5) /* the stack grows down from stk + STK_SIZE */
        i++;
    free(stk);
    return STK_SIZE - i;
}

static void test_stack_bounds(void **state)
{
    stk_job_t j = {0};
    size_t rb = block_bytes(WCODEC_MAX_SETS, 16, 2), enc_use, dec_use, enc2_use, dec2_use, base;
    (void)state;
    j.cap = wcodec_bound(WCODEC_MAX_SETS, 16, 2);
    j.raw = malloc(rb);
    j.enc = malloc(j.cap);
    j.dec = malloc(rb);
    assert_true(j.raw && j.enc && j.dec);
    fill(j.raw, WCODEC_MAX_SETS, 16, 2, SIG_SINE, 2047);
    j.encode = 2;
    base = stk_measure(&j);
    j.encode = 1;
    enc_use = stk_measure(&j) - base;
    assert_int_equal(j.rc, 0);
    j.encode = 0;
    dec_use = stk_measure(&j) - base;
    assert_int_equal(j.rc, 0);
    assert_memory_equal(j.dec, j.raw, rb);
    /* codec 2: the same shape, its model fitted (8192 sets hold 4 periods of 2047; an amplitude
     * of 2^24 counts, within the model's coefficients of at most 28 bits) */
    for (uint32_t g = 0; g < WCODEC_MAX_SETS; g++)
        for (int c = 0; c < 16; c++)
            put(j.raw, g, 16, c, 2,
                llround(16777216.0 * sin(6.283185307179586 * g / 2047.3 - c * 0.4) +
                        (double)((int)(rnd() % 9) - 4)));
    j.encode = 3;
    enc2_use = stk_measure(&j) - base;
    assert_int_equal(j.rc, 0);
    assert_true((j.enc[0] & 0x20) != 0); /* a model segment */
    memset(j.dec, 0, rb);
    j.encode = 4;
    dec2_use = stk_measure(&j) - base;
    assert_int_equal(j.rc, 0);
    assert_memory_equal(j.dec, j.raw, rb);
    print_message("wcodec stack: encode %zu bytes, decode %zu bytes; codec 2: encode %zu, decode "
                  "%zu (beyond the %zu of an empty thread)\n", enc_use, dec_use, enc2_use, dec2_use,
                  base);
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
    assert_true(enc_use <= WCODEC_ENCODE_STACK);
    assert_true(dec_use <= WCODEC_DECODE_STACK);
    assert_true(enc2_use <= WCODEC_MODEL_ENCODE_STACK);
    assert_true(dec2_use <= WCODEC_MODEL_DECODE_STACK);
#endif
    free(j.raw);
    free(j.enc);
    free(j.dec);
}

/* Decodes `in` (exact length, in a malloc'd copy so ASan sees any overrun) into a block with
 * guard bytes; returns the rc and checks the guards and out-params. */
static int decode_guarded(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                          uint32_t first, int whole)
{
    size_t rb = block_bytes(nsets, nch, fmt);
    uint8_t *copy = malloc(len ? len : 1), *blk = malloc(rb + 64);
    uint32_t n = 0;
    size_t used = 0;
    int rc;
    assert_true(copy && blk);
    memcpy(copy, in, len);
    memset(blk, 0, rb);
    memset(blk + rb, 0xEE, 64);
    if (whole)
        rc = wc_decode_block(copy, len, nsets, nch, fmt, blk);
    else
        rc = wc_decode(copy, len, nsets, nch, fmt, first, blk, &n, &used);
    assert_true(rc == 0 || rc == WCODEC_E_MALFORMED);
    if (rc == 0 && !whole) {
        assert_true(n >= 1 && first + n <= nsets);
        assert_true(used >= 1 && used <= len);
    }
    for (int i = 0; i < 64; i++)
        assert_int_equal(blk[rb + (size_t)i], 0xEE);
    free(copy);
    free(blk);
    return rc;
}

static void test_malformed_one(void **state)
{
    (void)state;
    for (int fmt = 1; fmt <= 2; fmt++) {
        for (int kind = 0; kind < SIG_N; kind++) {
            uint32_t nsets = 96;
            int nch = 3;
            size_t rb = block_bytes(nsets, nch, fmt), cap = wcodec_bound(nsets, nch, fmt), len;
            uint8_t *raw = malloc(rb), *enc = malloc(cap);
            assert_true(raw && enc);
            fill(raw, nsets, nch, fmt, kind, 20);
            assert_int_equal(wc_encode_block(raw, nsets, nch, fmt, 20, enc, cap, &len), 0);
            /* every truncation of the segment is refused (its length is in its header) */
            for (size_t t = 0; t < len; t++)
                assert_int_equal(decode_guarded(enc, t, nsets, nch, fmt, 0, 0),
                                 WCODEC_E_MALFORMED);
            assert_int_equal(decode_guarded(enc, len, nsets, nch, fmt, 0, 0), 0);
            /* every single bit flip: refused or a valid decode, never an overrun */
            for (size_t bit = 0; bit < len * 8; bit++) {
                enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                decode_guarded(enc, len, nsets, nch, fmt, 0, 0);
                decode_guarded(enc, len, nsets, nch, fmt, 0, 1);
                enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            /* a wrong shape is refused */
            assert_int_equal(decode_guarded(enc, len, nsets, nch + 1, fmt, 0, 0),
                             WCODEC_E_MALFORMED);
            assert_int_equal(decode_guarded(enc, len, nsets, nch, 3 - fmt, 0, 0),
                             WCODEC_E_MALFORMED);
            /* a run past nsets is refused */
            assert_int_equal(decode_guarded(enc, len, nsets, nch, fmt, 1, 0), WCODEC_E_MALFORMED);
            free(raw);
            free(enc);
        }
    }
    /* random garbage */
    uint8_t junk[256];
    for (int it = 0; it < 20000; it++) {
        size_t l = rnd() % sizeof junk;
        for (size_t i = 0; i < l; i++)
            junk[i] = (uint8_t)rnd();
        if (l > 0 && it % 2)
            junk[0] = (uint8_t)((it % 4 == 1) ? 0x02 : 0x12); /* plausible shape byte */
        decode_guarded(junk, l, 64, 3, 1 + it % 2, 0, 0);
    }
}

static void test_args_one(void **state)
{
    uint8_t raw[64] = {0}, out[256];
    uint32_t n;
    size_t len;
    (void)state;
    assert_int_equal(wc_encode(raw, 0, 1, 1, 0, 0, 1, out, sizeof out, &n, &len), WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 4, 0, 1, 0, 0, 1, out, sizeof out, &n, &len), WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 4, 17, 1, 0, 0, 1, out, sizeof out, &n, &len),
                     WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 4, 1, 3, 0, 0, 1, out, sizeof out, &n, &len), WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 4, 1, 1, 0, 4, 1, out, sizeof out, &n, &len), WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 4, 1, 1, 0, 0, 0, out, sizeof out, &n, &len), WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 8193, 1, 1, 0, 0, 1, out, sizeof out, &n, &len),
                     WCODEC_E_ARG);
    assert_int_equal(wc_encode(raw, 4, 1, 1, 0, 0, 4, out, 0, &n, &len), WCODEC_E_SPACE);
    assert_int_equal(wc_encode_block(raw, 4, 1, 1, 0, out, 2, &len), WCODEC_E_SPACE);
    assert_int_equal(wc_decode(out, 10, 4, 1, 1, 4, raw, &n, &len), WCODEC_E_ARG);
    assert_int_equal(wc_decode_block(out, 0, 4, 1, 1, raw), WCODEC_E_MALFORMED);
}

/* The bound holds for the worst inputs (full-range noise, extremes). */
static void test_bound_one(void **state)
{
    (void)state;
    for (int fmt = 1; fmt <= 2; fmt++) {
        for (int kind = 0; kind < SIG_N; kind++) {
            for (int nch = 1; nch <= 16; nch += 5) {
                uint32_t nsets = 777;
                uint8_t *raw = malloc(block_bytes(nsets, nch, fmt));
                assert_non_null(raw);
                fill(raw, nsets, nch, fmt, kind, 80);
                size_t len = roundtrip(raw, nsets, nch, fmt, 80);
                assert_true(len <= wcodec_bound(nsets, nch, fmt));
                if (kind == SIG_NOISE) /* incompressible: a few bytes above raw at most */
                    assert_true(len <= block_bytes(nsets, nch, fmt) + 10 + (3u + 2u * (unsigned)fmt) * (unsigned)nch);
                free(raw);
            }
        }
    }
}

/* ---- codec 2 (docs/protocol.md A.11) ---- */

/* The sine table by the integer algorithm of A.11 (quarter wave, then symmetry), against the
 * codec's table and its interpolation. */
static int64_t spec_quarter(int64_t i)
{
    static const int64_t dv[6] = {156, 110, 72, 42, 20, 6};
    int64_t x = (i * 3373259426LL + 256) >> 9, x2 = (x * x + (1LL << 29)) >> 30, t = 1LL << 30;
    for (int k = 0; k < 6; k++)
        t = (1LL << 30) - ((((x2 * t + (1LL << 29)) >> 30) + dv[k] / 2) / dv[k]);
    return (x * t + (1LL << 29)) >> 30;
}

static int64_t spec_table(int64_t i)
{
    return i <= 256 ? spec_quarter(i) : i <= 512 ? spec_quarter(512 - i) : -spec_table(i - 512);
}

static void test_model_sine(void **state)
{
    (void)state;
    for (int64_t i = 0; i < 1024; i++) {
        assert_int_equal(wcodec_model_sin((uint32_t)i << 22), spec_table(i));
        /* accurate: within 3 units of Q30 of the true sine at the table's points */
        assert_true(llabs(spec_table(i) - llround(1073741824.0 * sin(6.283185307179586 * (double)i / 1024))) <= 3);
        /* interpolation: floor(T[i] + (T[i+1] - T[i]) * fr / 2^22) */
        for (uint32_t fr = 1; fr < (1u << 22); fr += 1234567u) {
            int64_t a = spec_table(i), d = spec_table(i + 1) - a, p = d * (int64_t)fr;
            int64_t want = a + (p >= 0 ? p >> 22 : -((-p + (1 << 22) - 1) >> 22));
            assert_int_equal(wcodec_model_sin(((uint32_t)i << 22) | fr), want);
        }
    }
    assert_int_equal(wcodec_model_sin(0x40000000u), 1073741825); /* T[256] = 2^30 + 1 */
    {
        int64_t p = (spec_table(1024) - spec_table(1023)) * 0x3FFFFF; /* negative: floor */
        assert_int_equal(wcodec_model_sin(0xFFFFFFFFu),
                         spec_table(1023) - ((-p + (1 << 22) - 1) >> 22));
    }
}

/* Simulator-like 3-phase block: 50 Hz slightly off nominal, odd harmonics, noise of 8 counts. */
static void fill_grid(uint8_t *b, uint32_t nsets, int nch, double period)
{
    for (uint32_t g = 0; g < nsets; g++)
        for (int c = 0; c < nch; c++) {
            double th = 6.283185307179586 * g / (period * 1.003) - (c % 3) * 2.0943951 + c * 0.1;
            double v = 20000.0 * (sin(th) + 0.04 * sin(3 * th + 0.3) + 0.03 * sin(5 * th + 1) +
                                  0.01 * sin(7 * th + 2)) +
                       ((double)(rnd() % 1000) + (double)(rnd() % 1000) - 999.0) * 0.012;
            put(b, g, nch, c, 1, llround(v));
        }
}

/* Codec 2 writes model segments on grid waveforms, smaller than codec 1's, which codec 1 refuses;
 * codec 2 decodes codec-1 segments unchanged (every codec-1 stream is a codec-2 stream). */
static void test_model(void **state)
{
    uint32_t nsets = 400;
    size_t rb = block_bytes(nsets, 6, 1), cap = wcodec_bound(nsets, 6, 1), l1, l2, used;
    uint8_t *raw = malloc(rb), *e1 = malloc(cap), *e2 = malloc(cap), *dec = malloc(rb);
    uint32_t n;
    (void)state;
    assert_true(raw && e1 && e2 && dec);
    fill_grid(raw, nsets, 6, 80);
    assert_int_equal(wcodec_encode_block(raw, nsets, 6, 1, 80, e1, cap, &l1), 0);
    assert_int_equal(wcodec_encode_block_as(WCODEC_ID_MODEL, raw, nsets, 6, 1, 80, e2, cap, &l2),
                     0);
    assert_int_equal(e1[0] & 0x20, 0);
    assert_int_equal(e2[0], 0x20 | 0x05); /* int16, 6 channels, model */
    print_message("grid block: codec 1 %zu bytes, codec 2 %zu bytes (raw %zu)\n", l1, l2, rb);
    assert_true(l2 * 100 < l1 * 92); /* at least 8 %% smaller */
    assert_int_equal(wcodec_decode_block_as(WCODEC_ID_MODEL, e2, l2, nsets, 6, 1, dec), 0);
    assert_memory_equal(dec, raw, rb);
    assert_int_equal(wcodec_decode_block_as(WCODEC_ID_MODEL, e1, l1, nsets, 6, 1, dec), 0);
    assert_memory_equal(dec, raw, rb);
    assert_int_equal(wcodec_decode_block(e2, l2, nsets, 6, 1, dec), WCODEC_E_MALFORMED);
    assert_int_equal(wcodec_decode(e2, l2, nsets, 6, 1, 0, dec, &n, &used), WCODEC_E_MALFORMED);
    assert_int_equal(wcodec_decode_block_as(3, e2, l2, nsets, 6, 1, dec), WCODEC_E_MALFORMED);
    assert_int_equal(wcodec_decode_as(0, e2, l2, nsets, 6, 1, 0, dec, &n, &used), WCODEC_E_ARG);
    assert_int_equal(wcodec_encode_block_as(3, raw, nsets, 6, 1, 80, e1, cap, &l1), WCODEC_E_ARG);
    /* chunks: the first segment of the block carries the model (later ones may, or may prefer
     * the cycle predictors over the block's earlier sets); they decode one after the other */
    {
        uint32_t first = 0, nseg = 0;
        memset(dec, 0, rb);
        while (first < nsets) {
            size_t len;
            assert_int_equal(wcodec_encode_as(WCODEC_ID_MODEL, raw, nsets, 6, 1, 80, first,
                                              nsets, e2, 700, &n, &len),
                             0);
            if (first == 0)
                assert_int_equal(e2[0], 0x25);
            else
                assert_true(e2[0] == 0x25 || e2[0] == 0x05);
            assert_int_equal(
                wcodec_decode_as(WCODEC_ID_MODEL, e2, len, nsets, 6, 1, first, dec, &n, &used), 0);
            first += n;
            nseg++;
        }
        assert_true(nseg >= 2);
        assert_memory_equal(dec, raw, rb);
    }
    /* no period hint, or a block shorter than two periods: no model, codec-1 bytes */
    assert_int_equal(wcodec_encode_block_as(WCODEC_ID_MODEL, raw, nsets, 6, 1, 0, e2, cap, &l2), 0);
    assert_int_equal(wcodec_encode_block(raw, nsets, 6, 1, 0, e1, cap, &l1), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(e1, e2, l1);
    assert_int_equal(wcodec_encode_block_as(WCODEC_ID_MODEL, raw, 150, 6, 1, 80, e2, cap, &l2), 0);
    assert_int_equal(e2[0] & 0x20, 0);
    free(raw);
    free(e1);
    free(e2);
    free(dec);
}

/* ---- committed test vectors ---- */

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s) / 2;
    assert_true(strlen(s) % 2 == 0 && n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void test_vectors(void **state)
{
    json_error_t err;
    json_t *doc = json_load_file(GS_WCODEC_VECTORS_JSON, 0, &err), *vs, *v;
    size_t idx, count = 0, count2 = 0, models = 0;
    (void)state;
    if (!doc)
        fail_msg("%s: %s", GS_WCODEC_VECTORS_JSON, err.text);
    vs = json_object_get(doc, "vectors");
    assert_true(json_is_array(vs));
    json_array_foreach(vs, idx, v)
    {
        static uint8_t raw[65536], enc[70000], out[70000], dec[65536];
        uint32_t nsets = (uint32_t)json_integer_value(json_object_get(v, "nsets"));
        int nch = (int)json_integer_value(json_object_get(v, "nch"));
        int fmt = (int)json_integer_value(json_object_get(v, "fmt"));
        uint32_t hint = (uint32_t)json_integer_value(json_object_get(v, "period_hint"));
        const char *rh = json_string_value(json_object_get(v, "raw"));
        const char *eh = json_string_value(json_object_get(v, "encoded"));
        json_t *cj = json_object_get(v, "codec");
        assert_true(rh && eh);
        g_codec = cj ? (int)json_integer_value(cj) : WCODEC_ID;
        assert_true(g_codec == WCODEC_ID || g_codec == WCODEC_ID_MODEL);
        size_t rl = unhex(rh, raw, sizeof raw), el = unhex(eh, enc, sizeof enc), len;
        assert_int_equal(rl, block_bytes(nsets, nch, fmt));
        /* decode gives the raw samples */
        memset(dec, 0, sizeof dec);
        assert_int_equal(wc_decode_block(enc, el, nsets, nch, fmt, dec), 0);
        assert_memory_equal(dec, raw, rl);
        /* our encoder gives exactly these bytes */
        assert_int_equal(wc_encode_block(raw, nsets, nch, fmt, hint, out, sizeof out, &len), 0);
        assert_int_equal(len, el);
        assert_memory_equal(out, enc, el);
        if (g_codec == WCODEC_ID_MODEL) {
            count2++;
            models += (enc[0] & 0x20) != 0;
            if (enc[0] & 0x20) /* a model segment is not codec 1 */
                assert_int_equal(wcodec_decode_block(enc, el, nsets, nch, fmt, dec),
                                 WCODEC_E_MALFORMED);
        } else { /* every codec-1 block is a codec-2 block */
            assert_int_equal(
                wcodec_decode_block_as(WCODEC_ID_MODEL, enc, el, nsets, nch, fmt, dec), 0);
            assert_memory_equal(dec, raw, rl);
        }
        count++;
    }
    g_codec = WCODEC_ID;
    assert_true(count >= 4);
    assert_true(count2 >= 3 && models >= 3);
    json_decref(doc);
}

static void test_args(void **state)
{
    g_codec = WCODEC_ID;
    test_args_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_args_one(state);
    g_codec = WCODEC_ID;
}

static void test_roundtrip_shapes(void **state)
{
    g_codec = WCODEC_ID;
    test_roundtrip_shapes_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_roundtrip_shapes_one(state);
    g_codec = WCODEC_ID;
}

static void test_roundtrip_kinds(void **state)
{
    g_codec = WCODEC_ID;
    test_roundtrip_kinds_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_roundtrip_kinds_one(state);
    g_codec = WCODEC_ID;
}

static void test_compresses_sines(void **state)
{
    g_codec = WCODEC_ID;
    test_compresses_sines_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_compresses_sines_one(state);
    g_codec = WCODEC_ID;
}

static void test_bound(void **state)
{
    g_codec = WCODEC_ID;
    test_bound_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_bound_one(state);
    g_codec = WCODEC_ID;
}

static void test_chunk_fill(void **state)
{
    g_codec = WCODEC_ID;
    test_chunk_fill_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_chunk_fill_one(state);
    g_codec = WCODEC_ID;
}

static void test_malformed(void **state)
{
    g_codec = WCODEC_ID;
    test_malformed_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_malformed_one(state);
    g_codec = WCODEC_ID;
}

static void test_long_periods(void **state)
{
    g_codec = WCODEC_ID;
    test_long_periods_one(state);
    g_codec = WCODEC_ID_MODEL;
    test_long_periods_one(state);
    g_codec = WCODEC_ID;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_sine),       cmocka_unit_test(test_model),
        cmocka_unit_test(test_vectors),          cmocka_unit_test(test_args),
        cmocka_unit_test(test_roundtrip_shapes), cmocka_unit_test(test_roundtrip_kinds),
        cmocka_unit_test(test_compresses_sines), cmocka_unit_test(test_bound),
        cmocka_unit_test(test_chunk_fill),       cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_long_periods),     cmocka_unit_test(test_stack_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
