/* libFuzzer target for the server-side association state machine (src/iec61850/assoc.c).
 * Input: one option octet, then a client's TCP byte stream. The option octet picks the
 * configuration (password required or not, silent authentication failure, a small PDU size and
 * reassembly bound, a small output queue, a service function that answers with a response,
 * an error, a Reject, an oversized response or a failure) and where the stream is split in two
 * writes. Properties: every TPKT sent frames and decodes as a COTP TPDU (DTs reassemble into an
 * SPDU that decodes); nothing is sent after MMS_AEV_CLOSE, which comes exactly once and last;
 * mms_assoc_input returns GS_ECLOSED exactly when closed; an associated state machine sends a
 * report of the negotiated size limit or refuses it; mms_assoc_abort always ends closed. */
#include "mms_fuzz.h"

typedef struct {
    int closed_events, events_after_close, sends_after_close;
    size_t sent, limit;
    int mode;
    mms_cotp_reasm_t ra;
    uint8_t rbuf[1 << 17];
} st_t;

static st_t st;

static int t_send(void *ud, const uint8_t *p, size_t n)
{
    st_t *s = ud;
    const uint8_t *pl;
    size_t plen;
    mms_cotp_t c;
    if (s->closed_events)
        s->sends_after_close++;
    CHECK(mms_tpkt_frame(p, n, MMS_TPKT_MAX, &pl, &plen) == (int)n);
    CHECK(mms_cotp_decode(pl, plen, &c) == 0);
    if (c.type == MMS_COTP_DT) {
        int rc = mms_cotp_reasm_add(&s->ra, &c);
        CHECK(rc == 0 || rc == 1);
        if (rc == 1) {
            mms_spdu_t sp;
            CHECK(mms_spdu_decode(s->ra.buf, s->ra.len, &sp) == 0);
        }
    } else {
        CHECK(c.type == MMS_COTP_CC || c.type == MMS_COTP_ER);
    }
    if (s->sent + n > s->limit)
        return GS_ELIMIT;
    s->sent += n;
    return 0;
}

static void t_event(void *ud, int ev, const char *what)
{
    st_t *s = ud;
    CHECK(what != NULL);
    if (s->closed_events)
        s->events_after_close++;
    if (ev == MMS_AEV_CLOSE)
        s->closed_events++;
}

static int t_auth(void *ud, const mms_apdu_t *aarq)
{
    (void)ud;
    if (!aarq->has_auth)
        return MMS_ACSE_DIAG_AUTH_REQUIRED;
    return aarq->auth_len == 10 && memcmp(aarq->auth_value, "top secret", 10) == 0
               ? 0
               : MMS_ACSE_DIAG_AUTH_FAILURE;
}

static int t_confirmed(void *ud, const mms_pdu_t *req, mms_ber_writer_t *w, mms_answer_t *a)
{
    st_t *s = ud;
    static uint8_t big[70000];
    CHECK(req->type == MMS_PDU_CONFIRMED_REQ);
    switch ((s->mode >> 5) & 3) {
    case 0:
        mms_bw_octets(w, MMS_BER_CONTEXT, 0, "gridsense", 9);
        a->kind = MMS_ANS_RESP;
        a->service = req->service;
        a->constructed = true;
        return 0;
    case 1:
        a->kind = MMS_ANS_ERROR;
        a->err_class = 7;
        a->err_code = 2;
        return 0;
    case 2:
        mms_bw_octets(w, MMS_BER_CONTEXT, 0, big, (size_t)(req->invoke_id % sizeof big));
        a->kind = MMS_ANS_RESP;
        a->service = req->service;
        a->constructed = req->invoke_id & 1;
        return 0;
    default:
        if (req->invoke_id & 1)
            return GS_ENOMEM;
        a->kind = MMS_ANS_REJECT;
        a->reject_code = MMS_REJ_REQ_INVALID_ARGUMENT;
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mms_assoc_cfg_t cfg;
    mms_assoc_io_t io = {&st, t_send, t_event, NULL, t_confirmed, NULL};
    mms_assoc_t *a = NULL;
    if (size < 1)
        return 0;
    memset(&st, 0, offsetof(st_t, ra));
    mms_cotp_reasm_init(&st.ra, st.rbuf, sizeof st.rbuf);
    st.mode = data[0];
    st.limit = (st.mode & 0x80) ? 2000 : (size_t)-1;
    mms_assoc_cfg_default(&cfg);
    if (st.mode & 1)
        io.authenticate = t_auth;
    cfg.auth_fail_silent = (st.mode & 2) != 0;
    if (st.mode & 4) {
        cfg.max_pdu = 512;
        cfg.max_tsdu = 1024;
        cfg.tpdu_code = 9;
    }
    CHECK(mms_assoc_new(&cfg, &io, &a) == 0);
    data++;
    size--;
    size_t split = size ? (size_t)(st.mode * 7919u) % size : 0;
    int rc1 = mms_assoc_input(a, data, split);
    CHECK(rc1 == 0 || rc1 == GS_ECLOSED);
    int rc2 = mms_assoc_input(a, data + split, size - split);
    CHECK(rc2 == 0 || rc2 == GS_ECLOSED);
    CHECK(rc1 == 0 || rc2 == GS_ECLOSED); /* closed stays closed */
    CHECK((rc2 == GS_ECLOSED) == mms_assoc_closed(a));
    if (mms_assoc_associated(a) && (st.mode & 8)) {
        mms_ber_writer_t w;
        static uint8_t body[70000];
        CHECK(mms_assoc_unconfirmed_begin(a, &w) == 0);
        mms_bw_octets(&w, MMS_BER_CONTEXT, 1, body, (size * 97) % sizeof body);
        int rc = mms_assoc_unconfirmed_end(a, &w, MMS_USVC_INFORMATION_REPORT);
        CHECK(rc == 0 || rc == GS_ELIMIT || rc == GS_ECLOSED);
    }
    if (st.mode & 16)
        mms_assoc_abort(a);
    if (st.mode & 16)
        CHECK(mms_assoc_closed(a));
    CHECK(st.closed_events == (mms_assoc_closed(a) ? 1 : 0));
    CHECK(st.events_after_close == 0 && st.sends_after_close == 0);
    mms_assoc_free(a);
    return 0;
}
