/* libFuzzer target for the ACSE codec (src/iec61850/acse.c): whatever decodes keeps its
 * borrowed fields (password, user information) inside the input and re-encodes to an APDU that
 * decodes and re-encodes identically (fixpoint). */
#include "mms_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t b1[1 << 17], b2[1 << 17];
    mms_apdu_t a, a2;
    mms_ber_writer_t w1, w2;
    int rc = mms_acse_decode(data, size, &a);

    CHECK_CODE(rc);
    if (rc < 0) {
        CHECK(a.why != NULL);
        return 0;
    }
    CHECK(a.kind >= MMS_APDU_AARQ && a.kind <= MMS_APDU_ABRT);
    if (a.has_auth)
        CHECK_IN(a.auth_value, a.auth_len, data, size);
    if (a.user_info)
        CHECK_IN(a.user_info, a.user_len, data, size);
    mms_bw_init(&w1, b1, sizeof b1);
    mms_acse_encode(&w1, &a);
    if (w1.err)
        return 0; /* an OID arc the encoder cannot represent */
    CHECK(mms_acse_decode(mms_bw_data(&w1), mms_bw_len(&w1), &a2) == 0 && a2.kind == a.kind);
    mms_bw_init(&w2, b2, sizeof b2);
    mms_acse_encode(&w2, &a2);
    CHECK(w2.err == 0 && mms_bw_len(&w2) == mms_bw_len(&w1) &&
          memcmp(mms_bw_data(&w2), mms_bw_data(&w1), mms_bw_len(&w1)) == 0);
    return 0;
}
