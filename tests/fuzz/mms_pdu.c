/* libFuzzer target for the MMS PDU envelope (src/iec61850/pdu.c): a PDU that decodes has its
 * body inside the input and re-encodes to a PDU that decodes and re-encodes identically
 * (fixpoint; identical to the input when every length was minimal); a PDU that does not decode
 * yields a Reject hint whose RejectPDU encodes and decodes back with the same reason. */
#include "mms_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t b1[1 << 17], b2[1 << 17];
    mms_pdu_t pdu, pdu2;
    mms_reject_t rej;
    mms_ber_writer_t w1, w2;
    int rc = mms_pdu_decode(data, size, &pdu, &rej);

    CHECK_CODE(rc);
    if (rc < 0) {
        CHECK(pdu.why != NULL);
        CHECK(rej.rej_class >= MMS_REJ_CONFIRMED_REQUEST && rej.rej_class <= 11);
        mms_bw_init(&w1, b1, sizeof b1);
        mms_pdu_encode_reject(&w1, &rej);
        CHECK(w1.err == 0);
        CHECK(mms_pdu_decode(mms_bw_data(&w1), mms_bw_len(&w1), &pdu2, NULL) == 0);
        CHECK(pdu2.type == MMS_PDU_REJECT && pdu2.rej_class == rej.rej_class &&
              pdu2.rej_code == rej.rej_code && pdu2.has_invoke_id == rej.has_invoke_id);
        return 0;
    }
    CHECK(pdu.type >= 0 && pdu.type <= MMS_PDU_CONCLUDE_ERR);
    if (pdu.body_len)
        CHECK_IN(pdu.body, pdu.body_len, data, size);
    mms_bw_init(&w1, b1, sizeof b1);
    mms_pdu_encode(&w1, &pdu);
    CHECK(w1.err == 0);
    CHECK(mms_pdu_decode(mms_bw_data(&w1), mms_bw_len(&w1), &pdu2, NULL) == 0);
    CHECK(pdu2.type == pdu.type && pdu2.invoke_id == pdu.invoke_id && pdu2.service == pdu.service);
    /* the borrowed body survives as is (initiate PDUs drop 9506-2 extension elements) */
    CHECK(pdu.type > MMS_PDU_UNCONFIRMED || pdu2.body_len == pdu.body_len);
    mms_bw_init(&w2, b2, sizeof b2);
    mms_pdu_encode(&w2, &pdu2);
    CHECK(w2.err == 0 && mms_bw_len(&w2) == mms_bw_len(&w1) &&
          memcmp(mms_bw_data(&w2), mms_bw_data(&w1), mms_bw_len(&w1)) == 0);
    return 0;
}
