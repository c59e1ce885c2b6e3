/* libFuzzer target for the ISO 8823 presentation codec (src/iec61850/pres.c): the input goes
 * to every PPDU decoder; a PPDU that decodes has its PDVs inside the input and re-encodes to
 * bytes that decode and re-encode identically (fixpoint). */
#include "mms_fuzz.h"

typedef int (*dec_fn)(const uint8_t *, size_t, mms_ppdu_t *);

static void encode(mms_ber_writer_t *w, int which, const mms_ppdu_t *pp)
{
    switch (which) {
    case 0:
        mms_pres_encode_cp(w, pp);
        break;
    case 1:
        mms_pres_encode_cpa(w, pp);
        break;
    case 2:
        mms_pres_encode_aru(w, pp);
        break;
    case 3:
        mms_pres_encode_data(w, pp);
        break;
    default:
        mms_pres_encode_arp(w, pp->provider_reason);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const dec_fn dec[5] = {mms_pres_decode_cp, mms_pres_decode_cpa, mms_pres_decode_aru,
                                  mms_pres_decode_data, mms_pres_decode_arp};
    static uint8_t b1[1 << 17], b2[1 << 17];
    int which;

    for (which = 0; which < 5; which++) {
        mms_ppdu_t pp, pp2;
        mms_ber_writer_t w1, w2;
        unsigned i;
        int rc = dec[which](data, size, &pp);
        CHECK_CODE(rc);
        if (rc < 0) {
            CHECK(pp.why != NULL);
            continue;
        }
        CHECK(pp.n_pdv <= MMS_PRES_MAX_PDV && pp.n_ctx <= MMS_PRES_MAX_CONTEXTS);
        for (i = 0; i < pp.n_pdv; i++)
            CHECK_IN(pp.pdv[i].data, pp.pdv[i].len, data, size);
        if (which == 4 && pp.provider_reason < 0)
            continue; /* an ARP without a reason re-encodes with one */
        mms_bw_init(&w1, b1, sizeof b1);
        encode(&w1, which, &pp);
        if (w1.err)
            continue; /* e.g. an OID arc the encoder cannot represent */
        CHECK(dec[which](mms_bw_data(&w1), mms_bw_len(&w1), &pp2) == 0);
        mms_bw_init(&w2, b2, sizeof b2);
        encode(&w2, which, &pp2);
        CHECK(w2.err == 0 && mms_bw_len(&w2) == mms_bw_len(&w1) &&
              memcmp(mms_bw_data(&w2), mms_bw_data(&w1), mms_bw_len(&w1)) == 0);
    }
    return 0;
}
