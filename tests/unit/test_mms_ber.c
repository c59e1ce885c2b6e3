/* Unit tests for the BER codec of the MMS stack (src/iec61850/mms.h, ISO/IEC 8825-1): exact
 * encodings of integers, lengths, tags, bit strings, OIDs and the IEC 61850-8-1 / ISO 9506-2
 * time and float types; rejection (with the right code) of non-minimal integers, oversize
 * integers, indefinite and reserved length forms, huge lengths, lengths past the end, bad tags,
 * nesting beyond MMS_BER_MAX_DEPTH; every prefix of a valid encoding is rejected. Inputs are
 * copied into exact-size heap buffers so ASan sees any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "iec61850/mms.h"

/* Decodes one element from an exact-size heap copy of p[0..n). */
static int one(const void *p, size_t n, mms_tlv_t *t, uint8_t **copy)
{
    mms_ber_reader_t r;
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    memcpy(*copy, p, n);
    mms_ber_reader_init(&r, *copy, n);
    return mms_ber_next(&r, t);
}

/* Decodes one element straight from a static array (ASan guards globals too). */
#define DECODE(t, rcvar, ...)                                                                      \
    do {                                                                                           \
        static const uint8_t in_[] = {__VA_ARGS__};                                                \
        mms_ber_reader_t r_;                                                                       \
        mms_ber_reader_init(&r_, in_, sizeof in_);                                                 \
        rcvar = mms_ber_next(&r_, &t);                                                             \
        (void)rcvar;                                                                               \
    } while (0)

static void test_int_encodings(void **state)
{
    static const struct {
        int64_t v;
        uint8_t enc[12];
        size_t n;
    } cases[] = {
        {0, {0x02, 0x01, 0x00}, 3},
        {127, {0x02, 0x01, 0x7F}, 3},
        {128, {0x02, 0x02, 0x00, 0x80}, 4},
        {-128, {0x02, 0x01, 0x80}, 3},
        {-129, {0x02, 0x02, 0xFF, 0x7F}, 4},
        {65000, {0x02, 0x03, 0x00, 0xFD, 0xE8}, 5},
        {INT64_MAX, {0x02, 0x08, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 10},
        {INT64_MIN, {0x02, 0x08, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10},
    };
    uint8_t buf[32];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mms_ber_writer_t w;
        mms_tlv_t t;
        uint8_t *c;
        int64_t v;
        mms_bw_init(&w, buf, sizeof buf);
        mms_bw_int(&w, MMS_BER_UNIVERSAL, 2, cases[i].v);
        assert_int_equal(w.err, 0);
        assert_int_equal(mms_bw_len(&w), cases[i].n);
        assert_memory_equal(mms_bw_data(&w), cases[i].enc, cases[i].n);
        assert_int_equal(one(cases[i].enc, cases[i].n, &t, &c), 1);
        assert_int_equal(mms_ber_get_int(&t, &v), 0);
        assert_true(v == cases[i].v);
        free(c);
    }
}

static void test_int_rejects(void **state)
{
    mms_tlv_t t;
    int rc;
    int64_t v;
    uint64_t u;
    uint32_t u32;
    int32_t i32;
    (void)state;

    DECODE(t, rc, 0x02, 0x02, 0x00, 0x7F); /* non-minimal (8.3.2) */
    assert_int_equal(rc, 1);
    assert_int_equal(mms_ber_get_int(&t, &v), GS_EPROTO);
    DECODE(t, rc, 0x02, 0x02, 0xFF, 0x80);
    assert_int_equal(mms_ber_get_int(&t, &v), GS_EPROTO);
    DECODE(t, rc, 0x02, 0x00); /* empty */
    assert_int_equal(mms_ber_get_int(&t, &v), GS_EPROTO);
    DECODE(t, rc, 0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0); /* > 64 bits */
    assert_int_equal(mms_ber_get_int(&t, &v), GS_ERANGE);
    DECODE(t, rc, 0x02, 0x09, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    assert_int_equal(mms_ber_get_uint(&t, &u), 0); /* Unsigned64 max needs 9 octets */
    assert_true(u == UINT64_MAX);
    assert_int_equal(mms_ber_get_int(&t, &v), GS_ERANGE);
    DECODE(t, rc, 0x02, 0x01, 0xFF); /* -1 is not Unsigned */
    assert_int_equal(mms_ber_get_uint(&t, &u), GS_ERANGE);
    DECODE(t, rc, 0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00); /* 2^32 */
    assert_int_equal(mms_ber_get_u32(&t, &u32), GS_ERANGE);
    assert_int_equal(mms_ber_get_i32(&t, &i32), GS_ERANGE);
    DECODE(t, rc, 0x22, 0x01, 0x00); /* constructed INTEGER */
    assert_int_equal(mms_ber_get_int(&t, &v), GS_EPROTO);
}

static void test_lengths(void **state)
{
    mms_tlv_t t;
    int rc;
    uint8_t big[300];
    uint8_t *c;
    (void)state;

    DECODE(t, rc, 0x04, 0x81, 0x02, 0xAA, 0xBB); /* long form for 2: valid BER */
    assert_int_equal(rc, 1);
    assert_int_equal(t.len, 2);
    assert_false(t.len_minimal);
    DECODE(t, rc, 0x04, 0x82, 0x00, 0x01, 0xAA); /* leading zero octet */
    assert_int_equal(rc, 1);
    assert_false(t.len_minimal);
    DECODE(t, rc, 0x30, 0x80, 0x00, 0x00); /* indefinite (8.1.3.6) */
    assert_int_equal(rc, GS_ENOTSUP);
    DECODE(t, rc, 0x04, 0xFF, 0x00); /* reserved (8.1.3.5 c) */
    assert_int_equal(rc, GS_EPROTO);
    DECODE(t, rc, 0x04, 0x85, 0, 0, 0, 0, 1, 0); /* 5 length octets */
    assert_int_equal(rc, GS_ELIMIT);
    DECODE(t, rc, 0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0); /* huge */
    assert_int_equal(rc, GS_ELIMIT);
    DECODE(t, rc, 0x04, 0x83, 0x20, 0x00, 0x00); /* 2 MiB > max, before checking
                                                                  the end */
    assert_int_equal(rc, GS_ELIMIT);
    DECODE(t, rc, 0x04, 0x05, 0x01, 0x02); /* past the end */
    assert_int_equal(rc, GS_ETRUNC);
    DECODE(t, rc, 0x04, 0x82, 0x01); /* length octets cut */
    assert_int_equal(rc, GS_ETRUNC);
    DECODE(t, rc, 0x04);
    assert_int_equal(rc, GS_ETRUNC);

    /* 300-octet string: minimal long form 0x82 0x01 0x2C */
    memset(big, 0x41, sizeof big);
    {
        uint8_t out[400];
        mms_ber_writer_t w;
        mms_bw_init(&w, out, sizeof out);
        mms_bw_octets(&w, MMS_BER_UNIVERSAL, 4, big, sizeof big);
        assert_int_equal(mms_bw_len(&w), 304);
        assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x04, 0x82, 0x01, 0x2C}), 4);
        assert_int_equal(one(mms_bw_data(&w), mms_bw_len(&w), &t, &c), 1);
        assert_true(t.len_minimal);
        assert_int_equal(t.len, 300);
        free(c);
        /* a buffer one octet too small fails as a whole and sticks */
        mms_bw_init(&w, out, 303);
        mms_bw_octets(&w, MMS_BER_UNIVERSAL, 4, big, sizeof big);
        assert_int_equal(w.err, GS_ELIMIT);
    }
    /* a lowered max_len is honoured */
    {
        static const uint8_t in[] = {0x04, 0x03, 1, 2, 3};
        mms_ber_reader_t r;
        mms_ber_reader_init(&r, in, sizeof in);
        r.max_len = 2;
        assert_int_equal(mms_ber_next(&r, &t), GS_ELIMIT);
        assert_non_null(r.why);
    }
}

static void test_tags(void **state)
{
    mms_tlv_t t;
    int rc;
    uint8_t out[16];
    mms_ber_writer_t w;
    (void)state;

    DECODE(t, rc, 0xBF, 0x4D, 0x00); /* fileDirectory [77] */
    assert_int_equal(rc, 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 77));
    DECODE(t, rc, 0x9F, 0x81, 0x00, 0x00); /* [128], two groups */
    assert_int_equal(rc, 1);
    assert_int_equal(t.tag, 128);
    assert_int_equal(t.cls, MMS_BER_CONTEXT);
    assert_false(t.constructed);
    DECODE(t, rc, 0x9F, 0x80, 0x01, 0x00); /* leading 0x80 group */
    assert_int_equal(rc, GS_EPROTO);
    DECODE(t, rc, 0x9F, 0x1E, 0x00); /* 30 in the high form */
    assert_int_equal(rc, GS_EPROTO);
    DECODE(t, rc, 0x9F, 0x81, 0x81, 0x81, 0x01, 0x00); /* 4 groups */
    assert_int_equal(rc, GS_ELIMIT);
    DECODE(t, rc, 0x9F, 0x81); /* cut */
    assert_int_equal(rc, GS_ETRUNC);

    mms_bw_init(&w, out, sizeof out);
    mms_bw_null(&w, MMS_BER_CONTEXT | MMS_BER_CONSTRUCTED, 77);
    assert_int_equal(mms_bw_len(&w), 3);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0xBF, 0x4D, 0x00}), 3);
    mms_bw_init(&w, out, sizeof out);
    mms_bw_null(&w, MMS_BER_CONTEXT, 31);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x9F, 0x1F, 0x00}), 3);

    /* expect: wrong tag and missing element */
    {
        static const uint8_t in[] = {0x02, 0x01, 0x05};
        mms_ber_reader_t r;
        mms_ber_reader_init(&r, in, sizeof in);
        assert_int_equal(mms_ber_expect(&r, MMS_BER_UNIVERSAL, false, 4, &t), GS_EPROTO);
        assert_int_equal(mms_ber_expect(&r, MMS_BER_UNIVERSAL, true, 2, &t), GS_EPROTO);
        assert_int_equal(mms_ber_expect(&r, MMS_BER_UNIVERSAL, false, 2, &t), 0);
        assert_int_equal(mms_ber_expect(&r, MMS_BER_UNIVERSAL, false, 2, &t), GS_ETRUNC);
    }
}

/* n nested SEQUENCEs around a NULL. */
static size_t nested(uint8_t *out, size_t cap, unsigned n)
{
    mms_ber_writer_t w;
    unsigned i;
    mms_bw_init(&w, out, cap);
    mms_bw_null(&w, MMS_BER_UNIVERSAL, 5);
    for (i = 0; i < n; i++)
        mms_bw_wrap(&w, MMS_BER_UNIVERSAL, 16, cap);
    assert_int_equal(w.err, 0);
    memmove(out, mms_bw_data(&w), mms_bw_len(&w));
    return mms_bw_len(&w);
}

static void test_nesting(void **state)
{
    static uint8_t buf[4096];
    mms_ber_reader_t r;
    mms_tlv_t t;
    size_t n;
    (void)state;

    n = nested(buf, sizeof buf, MMS_BER_MAX_DEPTH);
    mms_ber_reader_init(&r, buf, n);
    assert_int_equal(mms_ber_next(&r, &t), 1);
    assert_int_equal(mms_ber_check_tree(&r, &t), 0);
    n = nested(buf, sizeof buf, MMS_BER_MAX_DEPTH + 1);
    mms_ber_reader_init(&r, buf, n);
    assert_int_equal(mms_ber_next(&r, &t), 1);
    assert_int_equal(mms_ber_check_tree(&r, &t), GS_ELIMIT);
    n = nested(buf, sizeof buf, 1000); /* deep hostile nesting: still bounded, no recursion */
    mms_ber_reader_init(&r, buf, n);
    assert_int_equal(mms_ber_next(&r, &t), 1);
    assert_int_equal(mms_ber_check_tree(&r, &t), GS_ELIMIT);
    /* enter refuses past the limit too */
    {
        mms_ber_reader_t deep = r, child;
        deep.depth = MMS_BER_MAX_DEPTH;
        assert_int_equal(mms_ber_enter(&deep, &t, &child), GS_ELIMIT);
        deep.depth = 0;
        assert_int_equal(mms_ber_enter(&deep, &t, &child), 0);
        assert_int_equal(child.depth, 1);
    }
    /* a constructed element whose child runs past the parent's end */
    {
        static const uint8_t in[] = {0x30, 0x03, 0x04, 0x05, 0x01, 0x02, 0x03, 0x04};
        mms_ber_reader_init(&r, in, sizeof in);
        assert_int_equal(mms_ber_next(&r, &t), 1);
        assert_int_equal(mms_ber_check_tree(&r, &t), GS_ETRUNC);
    }
}

static void test_bits_bool_null(void **state)
{
    mms_tlv_t t;
    int rc;
    const uint8_t *b;
    size_t nb;
    bool v;
    uint8_t out[16];
    mms_ber_writer_t w;
    static const uint8_t cbb[2] = {0xF1, 0x00};
    (void)state;

    DECODE(t, rc, 0x81, 0x03, 0x05, 0xF1, 0x00); /* parameter CBB of the capture */
    assert_int_equal(mms_ber_get_bits(&t, &b, &nb), 0);
    assert_int_equal(nb, 11);
    assert_true(mms_bits_get(b, nb, 0));
    assert_false(mms_bits_get(b, nb, 4));
    assert_true(mms_bits_get(b, nb, 7));
    assert_false(mms_bits_get(b, nb, 11)); /* past the end: false, no read */
    mms_bw_init(&w, out, sizeof out);
    mms_bw_bits(&w, MMS_BER_CONTEXT, 1, cbb, 11);
    assert_int_equal(mms_bw_len(&w), 5);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x81, 0x03, 0x05, 0xF1, 0x00}), 5);
    DECODE(t, rc, 0x03, 0x02, 0x08, 0x00); /* 8 unused bits */
    assert_int_equal(mms_ber_get_bits(&t, &b, &nb), GS_EPROTO);
    DECODE(t, rc, 0x03, 0x01, 0x03); /* unused bits without data */
    assert_int_equal(mms_ber_get_bits(&t, &b, &nb), GS_EPROTO);
    DECODE(t, rc, 0x03, 0x00);
    assert_int_equal(mms_ber_get_bits(&t, &b, &nb), GS_EPROTO);
    DECODE(t, rc, 0x03, 0x01, 0x00); /* empty bit string */
    assert_int_equal(mms_ber_get_bits(&t, &b, &nb), 0);
    assert_int_equal(nb, 0);

    DECODE(t, rc, 0x01, 0x01, 0x01);
    assert_int_equal(mms_ber_get_bool(&t, &v), 0);
    assert_true(v);
    DECODE(t, rc, 0x01, 0x02, 0x00, 0x00);
    assert_int_equal(mms_ber_get_bool(&t, &v), GS_EPROTO);
    DECODE(t, rc, 0x05, 0x00);
    assert_int_equal(mms_ber_get_null(&t), 0);
    DECODE(t, rc, 0x05, 0x01, 0x00);
    assert_int_equal(mms_ber_get_null(&t), GS_EPROTO);
}

static void test_strings_oid(void **state)
{
    mms_tlv_t t;
    int rc;
    char s[8];
    mms_oid_t o;
    const uint8_t *p;
    size_t n;
    uint8_t out[32];
    mms_ber_writer_t w;
    (void)state;

    DECODE(t, rc, 0x1A, 0x04, 'L', 'L', 'N', '0');
    assert_int_equal(mms_ber_get_visible(&t, s, sizeof s), 0);
    assert_string_equal(s, "LLN0");
    assert_int_equal(mms_ber_get_visible(&t, s, 4), GS_ELIMIT); /* no room for the NUL */
    DECODE(t, rc, 0x1A, 0x02, 'A', 0x01);
    assert_int_equal(mms_ber_get_visible(&t, s, sizeof s), GS_EPROTO);
    DECODE(t, rc, 0x04, 0x03, 1, 2, 3);
    assert_int_equal(mms_ber_get_octets(&t, 2, &p, &n), GS_ELIMIT);
    DECODE(t, rc, 0x24, 0x03, 0x04, 0x01, 0x00); /* constructed OCTET STRING */
    assert_int_equal(mms_ber_get_octets(&t, 16, &p, &n), GS_EPROTO);

    DECODE(t, rc, 0x90, 0x05, 'A', 0xC3, 0xA9, 0xE2, 0x82); /* cut 3-octet sequence */
    assert_int_equal(mms_ber_get_mmsstring(&t, 64, &p, &n), GS_EPROTO);
    DECODE(t, rc, 0x90, 0x06, 'A', 0xC3, 0xA9, 0xE2, 0x82, 0xAC); /* "Aé€" */
    assert_int_equal(mms_ber_get_mmsstring(&t, 64, &p, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(mms_ber_get_mmsstring(&t, 5, &p, &n), GS_ELIMIT);
    DECODE(t, rc, 0x90, 0x02, 0xC0, 0x80); /* overlong NUL */
    assert_int_equal(mms_ber_get_mmsstring(&t, 64, &p, &n), GS_EPROTO);
    DECODE(t, rc, 0x90, 0x03, 0xED, 0xA0, 0x80); /* surrogate U+D800 */
    assert_int_equal(mms_ber_get_mmsstring(&t, 64, &p, &n), GS_EPROTO);
    DECODE(t, rc, 0x90, 0x04, 0xF4, 0x90, 0x80, 0x80); /* U+110000 */
    assert_int_equal(mms_ber_get_mmsstring(&t, 64, &p, &n), GS_EPROTO);
    DECODE(t, rc, 0x90, 0x04, 0xF0, 0x9F, 0x98, 0x80); /* U+1F600 */
    assert_int_equal(mms_ber_get_mmsstring(&t, 64, &p, &n), 0);

    DECODE(t, rc, 0x06, 0x05, 0x28, 0xCA, 0x22, 0x02, 0x01); /* 1.0.9506.2.1 */
    assert_int_equal(mms_ber_get_oid(&t, &o), 0);
    assert_true(mms_oid_eq(&o, MMS_OID_MMS, 5));
    DECODE(t, rc, 0x06, 0x04, 0x52, 0x01, 0x00, 0x01); /* 2.2.1.0.1 */
    assert_int_equal(mms_ber_get_oid(&t, &o), 0);
    assert_true(mms_oid_eq(&o, MMS_OID_ACSE, 5));
    DECODE(t, rc, 0x06, 0x02, 0x28, 0xCA); /* unfinished subidentifier */
    assert_int_equal(mms_ber_get_oid(&t, &o), GS_EPROTO);
    DECODE(t, rc, 0x06, 0x02, 0x28, 0x80);
    assert_int_equal(mms_ber_get_oid(&t, &o), GS_EPROTO);
    DECODE(t, rc, 0x06, 0x06, 0x28, 0x9F, 0xFF, 0xFF, 0xFF, 0x7F); /* > 32 bit */
    assert_int_equal(mms_ber_get_oid(&t, &o), GS_ERANGE);
    mms_bw_init(&w, out, sizeof out);
    mms_bw_oid(&w, MMS_BER_UNIVERSAL, 6, MMS_OID_MMS, 5);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x06, 0x05, 0x28, 0xCA, 0x22, 0x02, 0x01}),
                        7);
    mms_bw_init(&w, out, sizeof out);
    mms_bw_oid(&w, MMS_BER_UNIVERSAL, 6, (const uint32_t[]){3, 1}, 2); /* arc 0 > 2 */
    assert_int_equal(w.err, GS_EINVAL);
}

static void test_times_floats(void **state)
{
    mms_tlv_t t;
    int rc;
    mms_utctime_t ut, ut2 = {0x5F5E1000u, 0x800000u, MMS_TQ_CLOCK_FAILURE | 10};
    mms_bintime_t bt;
    double d;
    bool dbl;
    uint8_t out[32], *c;
    mms_ber_writer_t w;
    (void)state;

    DECODE(t, rc, 0x91, 0x08, 0x69, 0x23, 0x9E, 0x1F, 0x80, 0x00, 0x00, 0x0A);
    assert_int_equal(mms_ber_get_utctime(&t, &ut), 0);
    assert_int_equal(ut.secs, 0x69239E1Fu);
    assert_int_equal(ut.frac, 0x800000u);
    assert_int_equal(ut.quality, 0x0A);
    DECODE(t, rc, 0x91, 0x07, 0, 0, 0, 0, 0, 0, 0);
    assert_int_equal(mms_ber_get_utctime(&t, &ut), GS_EPROTO);
    mms_bw_init(&w, out, sizeof out);
    mms_bw_utctime(&w, MMS_BER_CONTEXT, 17, &ut2);
    assert_int_equal(one(mms_bw_data(&w), mms_bw_len(&w), &t, &c), 1);
    assert_int_equal(mms_ber_get_utctime(&t, &ut), 0);
    assert_true(ut.secs == ut2.secs && ut.frac == ut2.frac && ut.quality == ut2.quality);
    free(c);

    DECODE(t, rc, 0x8C, 0x06, 0x00, 0x00, 0x03, 0xE8, 0x01, 0x00);
    assert_int_equal(mms_ber_get_bintime(&t, &bt), 0);
    assert_int_equal(bt.ms, 1000);
    assert_true(bt.has_days);
    assert_int_equal(bt.days, 256);
    DECODE(t, rc, 0x8C, 0x04, 0x05, 0x26, 0x5C, 0x00); /* 86400000 ms */
    assert_int_equal(mms_ber_get_bintime(&t, &bt), GS_ERANGE);
    DECODE(t, rc, 0x8C, 0x05, 0, 0, 0, 0, 0);
    assert_int_equal(mms_ber_get_bintime(&t, &bt), GS_EPROTO);

    DECODE(t, rc, 0x87, 0x05, 0x08, 0x3F, 0x80, 0x00, 0x00); /* 1.0f */
    assert_int_equal(mms_ber_get_float(&t, &d, &dbl), 0);
    assert_true(d == 1.0 && !dbl);
    DECODE(t, rc, 0x87, 0x09, 0x0B, 0xC0, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18);
    assert_int_equal(mms_ber_get_float(&t, &d, &dbl), 0);
    assert_true(dbl && d < -3.14159 && d > -3.1416);
    DECODE(t, rc, 0x87, 0x05, 0x07, 0x3F, 0x80, 0x00, 0x00); /* width 7 */
    assert_int_equal(mms_ber_get_float(&t, &d, &dbl), GS_ENOTSUP);
    DECODE(t, rc, 0x87, 0x04, 0x08, 0x3F, 0x80, 0x00);
    assert_int_equal(mms_ber_get_float(&t, &d, &dbl), GS_EPROTO);
    mms_bw_init(&w, out, sizeof out);
    mms_bw_float(&w, MMS_BER_CONTEXT, 7, 1.0, false);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x87, 0x05, 0x08, 0x3F, 0x80, 0x00, 0x00}),
                        7);
}

/* Every strict prefix of a valid nested encoding is rejected (never read past its end). */
static void test_every_prefix(void **state)
{
    static const uint8_t in[] = {0xA1, 0x12, 0x02, 0x01, 0x05, 0xA0, 0x0D, 0x1A, 0x03, 'a',
                                 'b',  'c',  0xBF, 0x4D, 0x05, 0x80, 0x03, 0x01, 0x02, 0x03};
    size_t k;
    (void)state;

    for (k = 0; k < sizeof in; k++) {
        uint8_t *c = malloc(k ? k : 1);
        mms_ber_reader_t r;
        mms_tlv_t t;
        int rc;
        memcpy(c, in, k);
        mms_ber_reader_init(&r, c, k);
        rc = mms_ber_next(&r, &t);
        if (k == 0)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, GS_ETRUNC);
        free(c);
    }
    {
        mms_ber_reader_t r;
        mms_tlv_t t;
        mms_ber_reader_init(&r, in, sizeof in);
        assert_int_equal(mms_ber_next(&r, &t), 1);
        assert_int_equal(mms_ber_check_tree(&r, &t), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_encodings), cmocka_unit_test(test_int_rejects),
        cmocka_unit_test(test_lengths),       cmocka_unit_test(test_tags),
        cmocka_unit_test(test_nesting),       cmocka_unit_test(test_bits_bool_null),
        cmocka_unit_test(test_strings_oid),   cmocka_unit_test(test_times_floats),
        cmocka_unit_test(test_every_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
