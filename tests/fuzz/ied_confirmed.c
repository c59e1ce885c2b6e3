/* libFuzzer target for the MMS service bodies of src/ied (ied_confirmed): input = service tag
 * octet, flags octet (bit 0: constructed, bit 1: a small negotiated PDU of 300 octets), then the
 * request body. Properties: ied_confirmed answers every input (return 0), with a known kind; a
 * response is well-formed BER within the negotiated PDU size; an error or reject has no
 * contents. Each input runs on a fresh association (report control blocks it enabled are
 * released when it ends); after the request new values are fed and the association's reports
 * (if the request enabled any) must encode as well-formed BER. The model: one online terminal
 * with latest values, one offline. */
#include <stdbool.h>

#include "ied/ied.h"
#include "mms_fuzz.h"

static ied_t *model;
static int64_t now = 1796466031000000000LL;
static const char *const LATEST[2] = {
    "{\"t_ref_ns\":1796466031250000000,\"freq\":50.0,\"flags\":[],"
    "\"channels\":[{\"name\":\"Ua\",\"rms\":57.7,\"fundamental\":"
    "{\"mag\":57.7,\"deg\":1}}],\"power\":{\"p\":1,\"q\":2}}",
    "{\"t_ref_ns\":1796466032250000000,\"freq\":50.1,\"flags\":[\"time_unsync\"],"
    "\"channels\":[{\"name\":\"Ua\",\"rms\":57.2}],\"power\":{\"p\":3}}"};

static void setup(void)
{
    ied_opts_t o;
    char err[128];
    ied_terminal_t t[2];
    ied_opts_default(&o);
    CHECK(ied_new(&o, &model, err, sizeof err) == 0);
    memset(t, 0, sizeof t);
    strcpy(t[0].id, "DEMO-0001");
    strcpy(t[1].id, "T.2");
    t[0].online = 1;
    t[0].vt_ratio = t[1].vt_ratio = 100;
    t[0].ct_ratio = t[1].ct_ratio = 20;
    CHECK(ied_set_terminals(model, t, 2, 1796466031000000000LL) == 0);
    CHECK(ied_update_latest(model, "DEMO-0001", LATEST[0], now) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[70000];
    mms_ber_writer_t w;
    ied_answer_t a;
    if (!model)
        setup();
    if (size < 2)
        return 0;
    bool cons = data[1] & 1;
    uint32_t max_pdu = (data[1] & 2) ? 300 : 65000;
    ied_client_t *c;
    CHECK(ied_client_new(model, max_pdu, &c) == 0);
    mms_bw_init(&w, buf, sizeof buf);
    int rc = ied_confirmed(c, data[0], cons, data + 2, size - 2, &w, &a);
    CHECK(rc == 0);
    CHECK(a.kind == IED_RESP || a.kind == IED_ERROR || a.kind == IED_REJECT);
    mms_ber_reader_t r;
    mms_tlv_t t;
    if (a.kind != IED_RESP) {
        CHECK(mms_bw_len(&w) == 0);
    } else {
        CHECK(mms_bw_len(&w) <= max_pdu);
        mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
        while ((rc = mms_ber_next(&r, &t)) == 1)
            CHECK(mms_ber_check_tree(&r, &t) == 0);
        CHECK(rc == 0);
    }
    /* new values, then the association's reports */
    now += 1000000000LL;
    CHECK(ied_update_latest(model, "DEMO-0001", LATEST[(now / 1000000000LL) & 1], now) == 0);
    for (int i = 0; i < 64; i++) {
        int svc = -1;
        mms_bw_init(&w, buf, sizeof buf);
        rc = ied_client_next_report(c, now, &w, &svc);
        CHECK(rc == 0 || rc == 1);
        if (!rc)
            break;
        CHECK(svc == MMS_USVC_INFORMATION_REPORT && mms_bw_len(&w) <= max_pdu);
        mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
        while ((rc = mms_ber_next(&r, &t)) == 1)
            CHECK(mms_ber_check_tree(&r, &t) == 0);
        CHECK(rc == 0);
    }
    CHECK(ied_client_next_due(c) >= 0);
    ied_client_free(c);
    return 0;
}
