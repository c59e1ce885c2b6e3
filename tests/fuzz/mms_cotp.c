/* libFuzzer target for TPKT framing and COTP class 0 (src/iec61850/cotp.c).
 * The input is a TCP byte stream: TPKTs are cut from it (no prefix of a TPKT is a frame),
 * each TPDU decoded; a reassembled TSDU segments (128-octet TPDUs) and reassembles to itself;
 * CR/CC re-encode to a TPDU that decodes to the same fields; DTs go through a
 * bounded reassembly; a rejected TPDU gets an ER answer that decodes. Any violation aborts. */
#include "mms_fuzz.h"

static void one_tpdu(const uint8_t *pl, size_t plen, mms_cotp_reasm_t *ra)
{
    static uint8_t out[512];
    mms_cotp_t c, c2;
    int rc = mms_cotp_decode(pl, plen, &c), n;
    const uint8_t *pl2;
    size_t plen2;

    CHECK(rc == 0 || rc == GS_EPROTO);
    if (rc < 0) {
        CHECK(c.why != NULL && c.bad_cause <= MMS_COTP_ER_BAD_VALUE);
        n = mms_cotp_encode_er(out, sizeof out, 0, c.bad_cause, pl, plen > 16 ? 16 : plen);
        CHECK(n > 0);
        CHECK(mms_tpkt_frame(out, (size_t)n, MMS_TPKT_MAX, &pl2, &plen2) == n);
        CHECK(mms_cotp_decode(pl2, plen2, &c2) == 0 && c2.type == MMS_COTP_ER);
        return;
    }
    if (c.type == MMS_COTP_CR || c.type == MMS_COTP_CC) {
        n = mms_cotp_encode_cr_cc(out, sizeof out, &c);
        CHECK(n > 0);
        CHECK(mms_tpkt_frame(out, (size_t)n, MMS_TPKT_MAX, &pl2, &plen2) == n);
        CHECK(mms_cotp_decode(pl2, plen2, &c2) == 0);
        CHECK(c2.type == c.type && c2.dst_ref == c.dst_ref && c2.src_ref == c.src_ref &&
              c2.class_opt == c.class_opt && c2.tpdu_size == c.tpdu_size &&
              c2.calling_tsap_len == c.calling_tsap_len && c2.called_tsap_len == c.called_tsap_len);
        CHECK(memcmp(c2.calling_tsap, c.calling_tsap, c.calling_tsap_len) == 0);
    } else if (c.type == MMS_COTP_DT) {
        CHECK_IN(c.data, c.data_len, pl, plen);
        rc = mms_cotp_reasm_add(ra, &c);
        CHECK(rc == 0 || rc == 1 || rc == GS_ELIMIT);
        CHECK(ra->len <= ra->cap);
        if (rc == GS_ELIMIT)
            mms_cotp_reasm_init(ra, ra->buf, ra->cap);
        if (rc == 1) { /* segmenting the TSDU again and reassembling gives it back */
            static uint8_t again[4096], dt[256];
            mms_cotp_reasm_t rb;
            size_t off = 0;
            bool last = false;
            mms_cotp_reasm_init(&rb, again, sizeof again);
            while (!last) {
                const uint8_t *p2;
                size_t n2;
                mms_cotp_t d;
                int m = mms_cotp_segment(dt, sizeof dt, 128, ra->buf, ra->len, &off, &last);
                CHECK(m > 0 && mms_tpkt_frame(dt, (size_t)m, MMS_TPKT_MAX, &p2, &n2) == m);
                CHECK(mms_cotp_decode(p2, n2, &d) == 0 && d.eot == last);
                CHECK(mms_cotp_reasm_add(&rb, &d) == (last ? 1 : 0));
            }
            CHECK(rb.len == ra->len && memcmp(rb.buf, ra->buf, ra->len) == 0);
        }
    } else {
        CHECK(c.type == MMS_COTP_DR || c.type == MMS_COTP_ER);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t rbuf[4096];
    mms_cotp_reasm_t ra;
    size_t off = 0, frames = 0;
    int rc;

    mms_cotp_reasm_init(&ra, rbuf, sizeof rbuf);
    while (off < size) {
        const uint8_t *pl;
        size_t plen, k;
        rc = mms_tpkt_frame(data + off, size - off, MMS_TPKT_MAX, &pl, &plen);
        CHECK(rc >= 0 || rc == GS_EPROTO || rc == GS_ELIMIT);
        if (rc <= 0)
            break;
        CHECK(plen + MMS_TPKT_HDR == (size_t)rc && pl == data + off + MMS_TPKT_HDR);
        /* no shorter prefix of the same bytes yields a frame */
        for (k = (size_t)rc > 64 ? (size_t)rc - 64 : 0; k < (size_t)rc; k++) {
            const uint8_t *x;
            size_t xn;
            CHECK(mms_tpkt_frame(data + off, k, MMS_TPKT_MAX, &x, &xn) == 0);
        }
        one_tpdu(pl, plen, &ra);
        off += (size_t)rc;
        frames++;
    }
    /* the raw input as one TPDU too */
    one_tpdu(data, size, &ra);
    (void)frames;
    return 0;
}
