/* libFuzzer target for the ISO 8327-1 session codec (src/iec61850/session.c): whatever
 * decodes keeps its user data inside the input and re-encodes to an SPDU that decodes and
 * re-encodes to identical bytes (fixpoint). An ABORT answer always encodes and decodes. */
#include "mms_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out1[70000], out2[70000];
    mms_spdu_t s, s2;
    int rc = mms_spdu_decode(data, size, &s), n1, n2;

    CHECK_CODE(rc);
    if (rc < 0) {
        CHECK(s.why != NULL);
        memset(&s2, 0, sizeof s2);
        s2.si = MMS_SPDU_AB;
        s2.has_disconnect = true;
        s2.disconnect = 0x05;
        n1 = mms_spdu_encode(out1, sizeof out1, &s2);
        CHECK(n1 > 0 && mms_spdu_decode(out1, (size_t)n1, &s2) == 0 && s2.si == MMS_SPDU_AB);
        return 0;
    }
    if (s.has_user_data)
        CHECK_IN(s.user_data, s.user_len, data, size);
    n1 = mms_spdu_encode(out1, sizeof out1, &s);
    if (n1 == GS_ELIMIT)
        return 0; /* a near-64 KiB parameter set whose re-encode needs the long LI form */
    CHECK(n1 > 0);
    CHECK(mms_spdu_decode(out1, (size_t)n1, &s2) == 0 && s2.si == s.si);
    CHECK(s2.user_len == s.user_len);
    n2 = mms_spdu_encode(out2, sizeof out2, &s2);
    CHECK(n2 == n1 && memcmp(out1, out2, (size_t)n1) == 0);
    return 0;
}
