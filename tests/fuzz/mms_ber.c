/* libFuzzer target for the BER codec of the MMS stack (src/iec61850/ber.c).
 * Walks the input as a sequence of BER elements and every element's tree (bounded depth); every
 * element must lie inside the input, re-encode to the same header when its length is minimal,
 * and every primitive getter must either reject it with a documented code or return a value
 * that re-encodes and decodes to the same value. Any violated property aborts. */
#include "mms_fuzz.h"

static void getters(const mms_tlv_t *t)
{
    static uint8_t out[64];
    mms_ber_writer_t w;
    mms_ber_reader_t r;
    mms_tlv_t u;
    int64_t i;
    uint64_t v;
    bool b, dbl;
    const uint8_t *p;
    size_t n;
    char s[64];
    mms_oid_t o, o2;
    mms_utctime_t ut;
    mms_bintime_t bt;
    double d;
    int rc;

    if ((rc = mms_ber_get_int(t, &i)) == 0) {
        int64_t j;
        mms_bw_init(&w, out, sizeof out);
        mms_bw_int(&w, MMS_BER_UNIVERSAL, 2, i);
        mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
        CHECK(mms_ber_next(&r, &u) == 1 && mms_ber_get_int(&u, &j) == 0 && i == j);
        CHECK(u.len == t->len); /* strict minimal form in, minimal form out */
    }
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_uint(t, &v)) == 0) {
        uint64_t j;
        mms_bw_init(&w, out, sizeof out);
        mms_bw_uint(&w, MMS_BER_UNIVERSAL, 2, v);
        mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
        CHECK(mms_ber_next(&r, &u) == 1 && mms_ber_get_uint(&u, &j) == 0 && v == j);
    }
    CHECK_CODE(rc);
    rc = mms_ber_get_bool(t, &b);
    CHECK_CODE(rc);
    rc = mms_ber_get_null(t);
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_bits(t, &p, &n)) == 0) {
        CHECK_IN(p, (n + 7) / 8, t->val, t->len);
        (void)mms_bits_get(p, n, n ? n - 1 : 0);
    }
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_octets(t, 1 << 20, &p, &n)) == 0)
        CHECK_IN(p, n, t->val, t->len);
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_mmsstring(t, 1 << 20, &p, &n)) == 0)
        CHECK(p == t->val && n == t->len);
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_visible(t, s, sizeof s)) == 0)
        CHECK(strlen(s) == t->len);
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_oid(t, &o)) == 0) {
        CHECK(o.n >= 2 && o.n <= MMS_OID_MAX_ARCS);
        mms_bw_init(&w, out, sizeof out);
        mms_bw_oid(&w, MMS_BER_UNIVERSAL, 6, o.arc, o.n);
        if (w.err == 0) {
            mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
            CHECK(mms_ber_next(&r, &u) == 1 && mms_ber_get_oid(&u, &o2) == 0);
            CHECK(mms_oid_eq(&o2, o.arc, o.n));
        }
    }
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_utctime(t, &ut)) == 0)
        CHECK(ut.frac < (1u << 24));
    CHECK_CODE(rc);
    if ((rc = mms_ber_get_bintime(t, &bt)) == 0)
        CHECK(bt.ms < 86400000u);
    CHECK_CODE(rc);
    rc = mms_ber_get_float(t, &d, &dbl);
    CHECK_CODE(rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[16];
    mms_ber_reader_t r;
    mms_tlv_t t;
    int rc, count = 0;

    mms_ber_reader_init(&r, data, size);
    while ((rc = mms_ber_next(&r, &t)) == 1 && count++ < 4096) {
        mms_ber_writer_t w;
        size_t hdr = (size_t)(t.val - t.raw);
        CHECK(t.raw >= data && t.val >= t.raw && t.val + t.len <= data + size);
        CHECK(t.tag <= MMS_BER_MAX_TAG && t.len <= MMS_BER_MAX_LEN);
        /* the header re-encodes to itself when the length was minimal */
        mms_bw_init(&w, out, sizeof out);
        mms_bw_hdr(&w, (uint8_t)(t.cls | (t.constructed ? MMS_BER_CONSTRUCTED : 0)), t.tag, t.len);
        CHECK(w.err == 0);
        if (t.len_minimal)
            CHECK(mms_bw_len(&w) == hdr && memcmp(mms_bw_data(&w), t.raw, hdr) == 0);
        else
            CHECK(mms_bw_len(&w) < hdr);
        rc = mms_ber_check_tree(&r, &t);
        CHECK_CODE(rc);
        if (!t.constructed)
            getters(&t);
    }
    CHECK_CODE(rc);
    CHECK(rc != 1 || count > 4096);
    return 0;
}
