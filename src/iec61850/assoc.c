/* Server-side association state machine (mms.h "Server-side association"; docs/iec61850.md
 * "Server"): TPKT framing of the stream, COTP class 0 connection and DT reassembly/segmentation,
 * session CONNECT/ACCEPT, presentation CP/CPA, ACSE AARQ/AARE with the password check, MMS
 * initiate negotiation, confirmed request dispatch, conclude, release and abort, each layer's
 * answer to malformed input. Sans-I/O: bytes in, TPKTs out through the caller's send(). */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

#define CTX  MMS_BER_CONTEXT
#define UNI  MMS_BER_UNIVERSAL
#define APP  MMS_BER_APPLICATION
#define CONS MMS_BER_CONSTRUCTED

/* Room before the MMS PDU in the output buffer: presentation fully-encoded-data (3 TLV headers
 * and the context INTEGER: at most 4 x 6 + 3 octets) and the session's GIVE TOKENS + DATA
 * TRANSFER (4 octets), plus the confirmed envelope around a response (tag + length + invokeID +
 * service tag: at most 6 + 7 + 7 octets). */
#define HEADROOM 128

/* ISO 8327-1 8.3.9.1 transport-disconnect PV: bit 1 transport connection released, bit 3
 * protocol error. */
#define SES_DISC_PROTOCOL_ERROR 0x05

enum { S_WAIT_CR, S_WAIT_CN, S_ASSOC, S_CONCLUDED, S_CLOSED };

struct mms_assoc {
    mms_assoc_cfg_t cfg;
    mms_assoc_io_t io;
    int state;
    /* input: stream bytes until one whole TPKT */
    uint8_t *in;
    size_t in_cap, in_len;
    /* COTP */
    uint16_t peer_ref;
    uint32_t tpdu_size; /* negotiated, octets */
    mms_cotp_reasm_t reasm;
    uint8_t *tsdu;
    /* presentation context identifiers the client chose */
    int32_t ctx_acse, ctx_mms;
    /* MMS */
    uint32_t pdu_size; /* negotiated */
    /* output: one SPDU built back to front, then cut into DTs */
    uint8_t *out;
    size_t out_cap;
    uint8_t *tpkt;
    size_t tpkt_cap;
    bool in_unconfirmed; /* between unconfirmed_begin and _end */
};

static void ev(mms_assoc_t *a, int e, const char *what)
{
    if (a->io.event)
        a->io.event(a->io.ud, e, what);
}

static void count(mms_assoc_t *a, bool out, int type)
{
    if (a->io.pdu)
        a->io.pdu(a->io.ud, out, type);
}

static void close_assoc(mms_assoc_t *a)
{
    if (a->state == S_CLOSED)
        return;
    a->state = S_CLOSED;
    ev(a, MMS_AEV_CLOSE, "closed");
}

/* Sends one TPKT; a refused send (the caller's queue is full) closes the association. */
static int send_tpkt(mms_assoc_t *a, const uint8_t *p, size_t n)
{
    int rc;
    if (a->state == S_CLOSED)
        return GS_ECLOSED;
    rc = a->io.send(a->io.ud, p, n);
    if (rc < 0)
        close_assoc(a);
    return rc;
}

/* Cuts the SPDU spdu[0..n) into DTs of the negotiated TPDU size and sends them. */
static int send_spdu(mms_assoc_t *a, const uint8_t *spdu, size_t n)
{
    size_t off = 0;
    bool last = false;
    while (!last) {
        int len = mms_cotp_segment(a->tpkt, a->tpkt_cap, a->tpdu_size, spdu, n, &off, &last);
        if (len < 0)
            return len;
        if ((len = send_tpkt(a, a->tpkt, (size_t)len)) < 0)
            return len;
    }
    return 0;
}

/* Wraps what w holds (one presentation user data value of context ctx) in fully-encoded-data
 * (ISO 8823 8.4.1: PDV-list with presentation-context-identifier and single-ASN1-type) in
 * place. */
static void wrap_pdv(mms_ber_writer_t *w, int32_t ctx)
{
    size_t m0 = w->cap; /* everything in w is the value */
    mms_bw_wrap(w, CTX, 0, m0);
    mms_bw_int(w, UNI, 2, ctx);
    mms_bw_wrap(w, UNI, 16, m0);
    mms_bw_wrap(w, APP, 1, m0);
}

/* Presentation data around w's content, then a session DATA TRANSFER, sent in DTs. */
static int send_data(mms_assoc_t *a, mms_ber_writer_t *w, int32_t ctx)
{
    static const uint8_t gt_dt[4] = {MMS_SPDU_DT, 0, MMS_SPDU_DT, 0};
    wrap_pdv(w, ctx);
    mms_bw_raw(w, gt_dt, 4);
    if (w->err)
        return w->err;
    return send_spdu(a, mms_bw_data(w), mms_bw_len(w));
}

/* A session SPDU with the user data ud[0..n) (PGI 193), built after the user data in out. */
static int send_session(mms_assoc_t *a, mms_spdu_t *s, const uint8_t *ud, size_t n)
{
    uint8_t *buf = a->tsdu; /* free: the TSDU that led here was decoded into borrowed fields
                               already copied out (see callers) */
    int len;
    s->has_user_data = ud != NULL;
    s->user_data = ud;
    s->user_len = n;
    len = mms_spdu_encode(buf, a->reasm.cap, s);
    if (len < 0)
        return len;
    return send_spdu(a, buf, (size_t)len);
}

/* Session ABORT (protocol error) optionally carrying an ARP (presentation provider abort with
 * abort_reason; -1 for none), then closed. */
static void abort_protocol(mms_assoc_t *a, int32_t arp_reason, const char *why)
{
    mms_spdu_t s;
    mms_ber_writer_t w;
    if (a->state == S_CLOSED)
        return;
    ev(a, MMS_AEV_PROTOCOL_ERROR, why);
    mms_bw_init(&w, a->out, a->out_cap);
    if (arp_reason >= 0)
        mms_pres_encode_arp(&w, arp_reason);
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_AB;
    s.has_disconnect = true;
    s.disconnect = SES_DISC_PROTOCOL_ERROR;
    if (!w.err)
        send_session(a, &s, arp_reason >= 0 ? mms_bw_data(&w) : NULL,
                     arp_reason >= 0 ? mms_bw_len(&w) : 0);
    close_assoc(a);
}

/* COTP ER answering a bad TPDU, then closed (ISO 8073 class 0 has no recovery). */
static void cotp_error(mms_assoc_t *a, uint8_t cause, const uint8_t *bad, size_t bad_len,
                       const char *why)
{
    uint8_t er[MMS_TPKT_HDR + 8 + 255];
    int n;
    if (a->state == S_CLOSED)
        return;
    ev(a, MMS_AEV_PROTOCOL_ERROR, why);
    /* the rejected TPDU's header: its LI + 1 octets, at most what fits an ER parameter */
    if (bad_len > 0 && (size_t)bad[0] + 1 < bad_len)
        bad_len = (size_t)bad[0] + 1;
    if (bad_len > 64)
        bad_len = 64;
    n = mms_cotp_encode_er(er, sizeof er, a->peer_ref, cause, bad, bad_len);
    if (n > 0)
        send_tpkt(a, er, (size_t)n);
    close_assoc(a);
}

/* ---- association establishment ---------------------------------------------------------- */

static int32_t min32(int32_t x, int32_t y)
{
    return x < y ? x : y;
}

/* ACCEPT + CPA + AARE around the AARE's user information ui[0..ui_len) (an encoded MMS PDU or
 * nothing). The CPA repeats the CP's contexts with their results. */
static int send_accept(mms_assoc_t *a, const mms_spdu_t *cn, const mms_ppdu_t *cp,
                       int32_t result, int32_t diag_source, int32_t diag, const uint8_t *ui,
                       size_t ui_len)
{
    mms_apdu_t ae;
    mms_ppdu_t pp;
    mms_spdu_t s;
    mms_ber_writer_t w;
    size_t m;
    unsigned i;
    uint8_t *buf = a->out + a->out_cap / 2; /* ui lives in the first half (see callers) */

    memset(&ae, 0, sizeof ae);
    ae.kind = MMS_APDU_AARE;
    ae.has_app_ctx = true;
    ae.app_ctx.n = 5;
    memcpy(ae.app_ctx.arc, MMS_OID_MMS_CTX, sizeof MMS_OID_MMS_CTX);
    ae.result = result;
    ae.diag_source = diag_source;
    ae.diag = diag;
    ae.reason = -1;
    ae.user_ctx_id = ui ? a->ctx_mms : -1;
    ae.user_info = ui;
    ae.user_len = ui_len;
    mms_bw_init(&w, buf, a->out_cap - a->out_cap / 2);
    m = mms_bw_mark(&w);
    mms_acse_encode(&w, &ae);
    /* CPA around the AARE, in place: encode its parts after the PDV */
    memset(&pp, 0, sizeof pp);
    pp.type = MMS_PPDU_CPA;
    pp.has_responding_sel = cp->has_called_sel;
    pp.responding_sel_len = cp->called_sel_len;
    memcpy(pp.responding_sel, cp->called_sel, cp->called_sel_len);
    pp.n_ctx = cp->n_ctx;
    for (i = 0; i < cp->n_ctx; i++) {
        pp.ctx[i].id = cp->ctx[i].id;
        pp.ctx[i].ber = true;
        pp.ctx[i].result = (cp->ctx[i].id == a->ctx_acse || cp->ctx[i].id == a->ctx_mms) ? 0 : 2;
    }
    /* mms_pres_encode_cpa copies the PDV: give it a copy-free view by encoding the CPA into the
     * first half after the AARE was built in the second (the initiate response, if any, was
     * already copied into the AARE) */
    {
        mms_ber_writer_t w2;
        pp.n_pdv = 1;
        pp.pdv[0].ctx_id = a->ctx_acse;
        pp.pdv[0].data = mms_bw_data(&w);
        pp.pdv[0].len = mms_bw_len(&w);
        (void)m;
        if (w.err)
            return w.err;
        mms_bw_init(&w2, a->out, a->out_cap / 2);
        mms_pres_encode_cpa(&w2, &pp);
        if (w2.err)
            return w2.err;
        memset(&s, 0, sizeof s);
        s.si = MMS_SPDU_AC;
        s.has_protocol_options = true;
        s.protocol_options = 0;
        s.has_version = true;
        s.version = 2;
        s.has_requirements = true;
        s.requirements = cn->has_requirements ? (uint16_t)(cn->requirements & 0x0002) : 2;
        if (!s.requirements)
            s.requirements = 2; /* duplex: the functional unit 8-1 uses */
        s.has_called_ssel = cn->has_called_ssel;
        s.called_ssel_len = cn->called_ssel_len;
        memcpy(s.called_ssel, cn->called_ssel, cn->called_ssel_len);
        return send_session(a, &s, mms_bw_data(&w2), mms_bw_len(&w2));
    }
}

/* Refuses the association with an AARE rejection (ISO 8650-1 7.1.4.3) and closes. */
static void refuse(mms_assoc_t *a, const mms_spdu_t *cn, const mms_ppdu_t *cp, int32_t source,
                   int32_t diag, int event, const char *why)
{
    ev(a, event, why);
    send_accept(a, cn, cp, MMS_ACSE_REJ_PERMANENT, source, diag, NULL, 0);
    close_assoc(a);
}

static void on_connect(mms_assoc_t *a, const mms_spdu_t *cn)
{
    mms_ppdu_t cp;
    mms_apdu_t aarq;
    mms_pdu_t ini;
    mms_initiate_t rsp;
    mms_ber_writer_t w;
    unsigned i;
    int rc;

    if (!cn->has_user_data) {
        abort_protocol(a, 1, "CONNECT without presentation data");
        return;
    }
    if (mms_pres_decode_cp(cn->user_data, cn->user_len, &cp) < 0 || cp.mode != 1) {
        abort_protocol(a, 1, "malformed CP-type");
        return;
    }
    a->ctx_acse = a->ctx_mms = -1;
    for (i = 0; i < cp.n_ctx; i++) {
        if (!cp.ctx[i].ber)
            continue;
        if (mms_oid_eq(&cp.ctx[i].abstract, MMS_OID_ACSE, 5))
            a->ctx_acse = cp.ctx[i].id;
        else if (mms_oid_eq(&cp.ctx[i].abstract, MMS_OID_MMS, 5))
            a->ctx_mms = cp.ctx[i].id;
    }
    if (a->ctx_acse < 0 || a->ctx_mms < 0 || cp.n_pdv != 1 || cp.pdv[0].ctx_id != a->ctx_acse) {
        abort_protocol(a, 6, "CP without the ACSE and MMS contexts (BER) or its AARQ");
        return;
    }
    if (mms_acse_decode(cp.pdv[0].data, cp.pdv[0].len, &aarq) < 0 ||
        aarq.kind != MMS_APDU_AARQ) {
        refuse(a, cn, &cp, 2, MMS_ACSE_DIAG_NO_REASON, MMS_AEV_REFUSED, "malformed AARQ");
        return;
    }
    if (!aarq.has_app_ctx || !mms_oid_eq(&aarq.app_ctx, MMS_OID_MMS_CTX, 5)) {
        refuse(a, cn, &cp, 1, MMS_ACSE_DIAG_CTX_NOT_SUPPORTED, MMS_AEV_REFUSED,
               "application context other than MMS");
        return;
    }
    if (a->io.authenticate && (rc = a->io.authenticate(a->io.ud, &aarq)) != 0) {
        if (a->cfg.auth_fail_silent) {
            ev(a, MMS_AEV_AUTH_FAILED, "authentication failed");
            close_assoc(a);
        } else {
            refuse(a, cn, &cp, 1, rc, MMS_AEV_AUTH_FAILED, "authentication failed");
        }
        return;
    }
    if (!aarq.user_info || aarq.user_ctx_id != a->ctx_mms ||
        mms_pdu_decode(aarq.user_info, aarq.user_len, &ini, NULL) < 0 ||
        ini.type != MMS_PDU_INITIATE_REQ) {
        refuse(a, cn, &cp, 1, MMS_ACSE_DIAG_NO_REASON, MMS_AEV_REFUSED,
               "AARQ without a valid MMS initiate-request");
        return;
    }
    /* ISO 9506-2 8.2 / 9506-1 8.2.1: the responder answers values no greater than proposed */
    memset(&rsp, 0, sizeof rsp);
    rsp.has_local_detail = true;
    rsp.local_detail = (int32_t)a->cfg.max_pdu;
    if (ini.init.has_local_detail && ini.init.local_detail > 0)
        rsp.local_detail = min32(ini.init.local_detail, (int32_t)a->cfg.max_pdu);
    rsp.max_serv_calling = ini.init.max_serv_calling > 0
                               ? min32(ini.init.max_serv_calling, a->cfg.max_serv)
                               : 1;
    rsp.max_serv_called = ini.init.max_serv_called > 0
                              ? min32(ini.init.max_serv_called, a->cfg.max_serv)
                              : 1;
    rsp.has_nesting = true;
    rsp.nesting = ini.init.has_nesting ? min32(ini.init.nesting, a->cfg.max_nesting)
                                       : a->cfg.max_nesting;
    if (rsp.nesting < 0)
        rsp.nesting = 0;
    rsp.version = 1;
    rsp.param_cbb_bits = a->cfg.param_cbb_bits;
    for (i = 0; i < 2; i++)
        rsp.param_cbb[i] = (uint8_t)(a->cfg.param_cbb[i] &
                                     (i * 8 < ini.init.param_cbb_bits ? ini.init.param_cbb[i] : 0));
    memcpy(rsp.services, a->cfg.services, sizeof rsp.services);
    rsp.services_bits = a->cfg.services_bits;
    count(a, false, MMS_PDU_INITIATE_REQ);
    /* the initiate-response at the end of the first half of out */
    mms_bw_init(&w, a->out, a->out_cap / 2);
    mms_pdu_encode_initiate(&w, true, &rsp);
    if (w.err) {
        close_assoc(a);
        return;
    }
    /* move it where send_accept keeps its first half free: the AARE copies it anyway */
    {
        uint8_t tmp[256];
        size_t n = mms_bw_len(&w);
        if (n > sizeof tmp) {
            close_assoc(a);
            return;
        }
        memcpy(tmp, mms_bw_data(&w), n);
        a->pdu_size = (uint32_t)rsp.local_detail;
        a->state = S_ASSOC;
        if (send_accept(a, cn, &cp, MMS_ACSE_ACCEPTED, 1, MMS_ACSE_DIAG_NULL, tmp, n) < 0) {
            close_assoc(a);
            return;
        }
    }
    if (a->state != S_ASSOC)
        return;
    count(a, true, MMS_PDU_INITIATE_RESP);
    ev(a, MMS_AEV_ASSOCIATED, "associated");
}

/* ---- data phase --------------------------------------------------------------------------- */

static void send_mms(mms_assoc_t *a, mms_ber_writer_t *w, int type)
{
    if (send_data(a, w, a->ctx_mms) == 0)
        count(a, true, type);
}

static void send_reject(mms_assoc_t *a, const mms_reject_t *rej)
{
    mms_ber_writer_t w;
    mms_bw_init(&w, a->out, a->out_cap);
    mms_pdu_encode_reject(&w, rej);
    send_mms(a, &w, MMS_PDU_REJECT);
}

static void send_error(mms_assoc_t *a, uint32_t invoke_id, int32_t cls, int32_t code)
{
    mms_ber_writer_t w;
    mms_bw_init(&w, a->out, a->out_cap);
    mms_pdu_encode_error(&w, invoke_id, cls, code);
    send_mms(a, &w, MMS_PDU_CONFIRMED_ERR);
}

/* ISO 9506-2 ErrorClass resource [3]: other (0), capability-unavailable (4) */
#define ERR_RESOURCE            3
#define ERR_RES_OTHER           0
#define ERR_RES_CAP_UNAVAILABLE 4

static void on_confirmed(mms_assoc_t *a, const mms_pdu_t *req)
{
    mms_ber_writer_t w;
    mms_answer_t ans;
    mms_reject_t rej;
    size_t m;
    int rc;

    if (!a->io.confirmed) {
        rej = (mms_reject_t){true, req->invoke_id, MMS_REJ_CONFIRMED_REQUEST,
                             MMS_REJ_REQ_UNRECOGNIZED_SERVICE};
        send_reject(a, &rej);
        return;
    }
    /* The service contents may use the negotiated PDU size less the envelope; the whole PDU is
     * checked after wrapping. */
    mms_bw_init(&w, a->out, (size_t)a->pdu_size + HEADROOM);
    memset(&ans, 0, sizeof ans);
    m = mms_bw_mark(&w);
    rc = a->io.confirmed(a->io.ud, req, &w, &ans);
    if (rc < 0 || (w.err && w.err != GS_ELIMIT)) {
        send_error(a, req->invoke_id, ERR_RESOURCE, ERR_RES_OTHER);
        return;
    }
    if (w.err == GS_ELIMIT) {
        send_error(a, req->invoke_id, ERR_RESOURCE, ERR_RES_CAP_UNAVAILABLE);
        return;
    }
    switch (ans.kind) {
    case MMS_ANS_RESP:
        if (ans.service < 0 || ans.service > 86) {
            send_error(a, req->invoke_id, ERR_RESOURCE, ERR_RES_OTHER);
            return;
        }
        mms_bw_hdr(&w, (uint8_t)(CTX | (ans.constructed ? CONS : 0)), (uint32_t)ans.service,
                   m - w.pos);
        mms_bw_uint(&w, UNI, 2, req->invoke_id);
        mms_bw_wrap(&w, CTX, MMS_PDU_CONFIRMED_RESP, m);
        if (w.err || mms_bw_len(&w) > a->pdu_size) {
            send_error(a, req->invoke_id, ERR_RESOURCE, ERR_RES_CAP_UNAVAILABLE);
            return;
        }
        send_mms(a, &w, MMS_PDU_CONFIRMED_RESP);
        return;
    case MMS_ANS_ERROR:
        send_error(a, req->invoke_id, ans.err_class, ans.err_code);
        return;
    default:
        rej = (mms_reject_t){true, req->invoke_id, MMS_REJ_CONFIRMED_REQUEST, ans.reject_code};
        send_reject(a, &rej);
        return;
    }
}

static void on_mms(mms_assoc_t *a, const uint8_t *p, size_t n)
{
    mms_pdu_t pdu;
    mms_reject_t rej;
    mms_ber_writer_t w;

    memset(&rej, 0, sizeof rej);
    if (mms_pdu_decode(p, n, &pdu, &rej) < 0) {
        count(a, false, -1);
        ev(a, MMS_AEV_PROTOCOL_ERROR, pdu.why ? pdu.why : "malformed MMS PDU");
        send_reject(a, &rej);
        return;
    }
    count(a, false, pdu.type);
    switch (pdu.type) {
    case MMS_PDU_CONFIRMED_REQ:
        if (a->state == S_CONCLUDED)
            break; /* ISO 9506-1 8.4: after conclude no new request is accepted */
        on_confirmed(a, &pdu);
        return;
    case MMS_PDU_CONCLUDE_REQ:
        if (a->state == S_CONCLUDED)
            break;
        /* every request was answered already (they are served synchronously): conclude now */
        mms_bw_init(&w, a->out, a->out_cap);
        mms_pdu_encode_conclude(&w, true);
        send_mms(a, &w, MMS_PDU_CONCLUDE_RESP);
        if (a->state == S_ASSOC) {
            a->state = S_CONCLUDED;
            ev(a, MMS_AEV_CONCLUDED, "concluded");
        }
        return;
    case MMS_PDU_REJECT:
        return; /* the client rejected something we sent: nothing to answer (7.3) */
    case MMS_PDU_CONFIRMED_RESP:
    case MMS_PDU_CONFIRMED_ERR:
        /* we never send requests: invalid-invokeID (ISO 9506-2 7.3.2, code 2 of both) */
        rej = (mms_reject_t){true, pdu.invoke_id,
                             pdu.type == MMS_PDU_CONFIRMED_RESP ? MMS_REJ_CONFIRMED_RESPONSE
                                                                : MMS_REJ_CONFIRMED_ERROR,
                             2};
        send_reject(a, &rej);
        return;
    case MMS_PDU_CANCEL_REQ:
        /* nothing is outstanding: cancel-requestPDU invalid-invokeID (1) */
        rej = (mms_reject_t){true, pdu.invoke_id, MMS_REJ_CANCEL_REQUEST, 1};
        send_reject(a, &rej);
        return;
    case MMS_PDU_UNCONFIRMED:
        /* a client's InformationReport: nothing a server consumes (unrecognized-service) */
        rej = (mms_reject_t){false, 0, MMS_REJ_UNCONFIRMED, 1};
        send_reject(a, &rej);
        return;
    default:
        break;
    }
    /* initiate within an association, responses to conclude/cancel, or anything after conclude:
     * pdu-error invalid-pdu */
    rej = (mms_reject_t){pdu.has_invoke_id, pdu.invoke_id, MMS_REJ_PDU_ERROR, MMS_REJ_PDU_INVALID};
    ev(a, MMS_AEV_PROTOCOL_ERROR, "unexpected MMS PDU");
    send_reject(a, &rej);
}

static void on_release(mms_assoc_t *a, const mms_spdu_t *fn)
{
    mms_ppdu_t pp;
    mms_apdu_t rq, re;
    mms_spdu_t s;
    mms_ber_writer_t w;

    if (!fn->has_user_data || mms_pres_decode_data(fn->user_data, fn->user_len, &pp) < 0 ||
        pp.n_pdv != 1 || pp.pdv[0].ctx_id != a->ctx_acse ||
        mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &rq) < 0 || rq.kind != MMS_APDU_RLRQ) {
        abort_protocol(a, 1, "FINISH without an RLRQ");
        return;
    }
    memset(&re, 0, sizeof re);
    re.kind = MMS_APDU_RLRE;
    re.reason = 0; /* normal */
    re.user_ctx_id = -1;
    mms_bw_init(&w, a->out, a->out_cap);
    mms_acse_encode(&w, &re);
    wrap_pdv(&w, a->ctx_acse);
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_DN;
    if (!w.err) {
        /* copy out of `out`: send_session builds the SPDU in the reassembly buffer */
        send_session(a, &s, mms_bw_data(&w), mms_bw_len(&w));
        ev(a, MMS_AEV_RELEASED, "released");
    }
    close_assoc(a);
}

static void on_tsdu(mms_assoc_t *a, const uint8_t *p, size_t n)
{
    mms_spdu_t s;
    mms_ppdu_t pp;

    if (mms_spdu_decode(p, n, &s) < 0) {
        abort_protocol(a, -1, s.why ? s.why : "malformed SPDU");
        return;
    }
    if (s.si == MMS_SPDU_AB) {
        ev(a, MMS_AEV_PEER_ABORT, "peer abort");
        close_assoc(a);
        return;
    }
    if (a->state == S_WAIT_CN) {
        if (s.si != MMS_SPDU_CN) {
            abort_protocol(a, -1, "SPDU other than CONNECT before the session");
            return;
        }
        on_connect(a, &s);
        return;
    }
    switch (s.si) {
    case MMS_SPDU_DT:
        if (mms_pres_decode_data(s.user_data, s.user_len, &pp) < 0) {
            abort_protocol(a, 1, pp.why ? pp.why : "malformed presentation data");
            return;
        }
        if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != a->ctx_mms) {
            abort_protocol(a, 6, "data outside the MMS presentation context");
            return;
        }
        on_mms(a, pp.pdv[0].data, pp.pdv[0].len);
        return;
    case MMS_SPDU_FN:
        on_release(a, &s);
        return;
    default:
        abort_protocol(a, -1, "unexpected SPDU");
        return;
    }
}

static void on_cr(mms_assoc_t *a, const mms_cotp_t *cr, const uint8_t *tpdu, size_t n)
{
    mms_cotp_t cc;
    uint8_t out[MMS_TPKT_HDR + 7 + 3 + 2 * (2 + MMS_COTP_MAX_TSAP)];
    uint8_t code = 7; /* ISO 8073 13.3.4 b: 128 octets when the CR proposes none */
    int len;

    if ((cr->class_opt >> 4) != 0) {
        cotp_error(a, MMS_COTP_ER_BAD_VALUE, tpdu, n, "CR for a class other than 0");
        return;
    }
    if (cr->tpdu_size_code)
        code = cr->tpdu_size_code < a->cfg.tpdu_code ? cr->tpdu_size_code : a->cfg.tpdu_code;
    a->peer_ref = cr->src_ref;
    a->tpdu_size = mms_cotp_size_of_code(code);
    memset(&cc, 0, sizeof cc);
    cc.type = MMS_COTP_CC;
    cc.dst_ref = cr->src_ref;
    cc.src_ref = 1;
    cc.class_opt = 0;
    cc.tpdu_size_code = cr->tpdu_size_code ? code : 0;
    /* TSAPs echoed (ISO 8073 13.4.4: the responder returns the called and calling TSAP) */
    cc.has_calling_tsap = cr->has_calling_tsap;
    cc.calling_tsap_len = cr->calling_tsap_len;
    memcpy(cc.calling_tsap, cr->calling_tsap, cr->calling_tsap_len);
    cc.has_called_tsap = cr->has_called_tsap;
    cc.called_tsap_len = cr->called_tsap_len;
    memcpy(cc.called_tsap, cr->called_tsap, cr->called_tsap_len);
    len = mms_cotp_encode_cr_cc(out, sizeof out, &cc);
    if (len < 0) {
        close_assoc(a);
        return;
    }
    a->state = S_WAIT_CN;
    send_tpkt(a, out, (size_t)len);
}

static void on_tpdu(mms_assoc_t *a, const uint8_t *p, size_t n)
{
    mms_cotp_t c;
    int rc = mms_cotp_decode(p, n, &c);

    if (rc < 0) {
        cotp_error(a, rc == GS_EPROTO ? c.bad_cause : MMS_COTP_ER_UNSPEC, p, n,
                   c.why ? c.why : "malformed TPDU");
        return;
    }
    switch (c.type) {
    case MMS_COTP_CR:
        if (a->state != S_WAIT_CR) {
            cotp_error(a, MMS_COTP_ER_BAD_TYPE, p, n, "second CR");
            return;
        }
        on_cr(a, &c, p, n);
        return;
    case MMS_COTP_DT:
        if (a->state == S_WAIT_CR) {
            cotp_error(a, MMS_COTP_ER_BAD_TYPE, p, n, "DT before the connection");
            return;
        }
        if (c.data_len > a->tpdu_size) {
            cotp_error(a, MMS_COTP_ER_BAD_VALUE, p, n, "DT above the negotiated TPDU size");
            return;
        }
        rc = mms_cotp_reasm_add(&a->reasm, &c);
        if (rc == GS_ELIMIT) {
            abort_protocol(a, -1, "TSDU above the reassembly limit");
            return;
        }
        if (rc == 1)
            on_tsdu(a, a->reasm.buf, a->reasm.len);
        return;
    case MMS_COTP_DR:
        ev(a, MMS_AEV_PEER_ABORT, "COTP disconnect request");
        close_assoc(a);
        return;
    default: /* CC, ER from a client */
        cotp_error(a, MMS_COTP_ER_BAD_TYPE, p, n, "unexpected TPDU");
        return;
    }
}

/* ---- public ------------------------------------------------------------------------------ */

void mms_assoc_cfg_default(mms_assoc_cfg_t *c)
{
    /* ServiceSupportOptions (ISO 9506-2 7.2.1 / 8-1 table 3): status 0, getNameList 1,
     * identify 2, read 4, write 5, getVariableAccessAttributes 6, defineNamedVariableList 11,
     * getNamedVariableListAttributes 12, deleteNamedVariableList 13, informationReport 79,
     * conclude 83 */
    static const uint8_t svc[11] = {0xEE, 0x1C, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x10};
    memset(c, 0, sizeof *c);
    c->max_pdu = 65000;
    c->tpdu_code = 13;
    c->max_serv = 5;
    c->max_nesting = 10;
    c->param_cbb[0] = 0xF1; /* str1 str2 vnam valt vlis (ISO 9506-2 ParameterSupportOptions) */
    c->param_cbb_bits = 11;
    memcpy(c->services, svc, sizeof svc);
    c->services_bits = 85;
}

int mms_assoc_new(const mms_assoc_cfg_t *cfg, const mms_assoc_io_t *io, mms_assoc_t **out)
{
    mms_assoc_t *a;
    size_t tsdu;

    if (!cfg || !io || !io->send || !out || cfg->max_pdu < 256 || cfg->max_pdu > (1u << 20) ||
        cfg->tpdu_code < 7 || cfg->tpdu_code > 13 || cfg->param_cbb_bits > 16 ||
        cfg->services_bits > 96)
        return GS_EINVAL;
    tsdu = cfg->max_tsdu ? cfg->max_tsdu : (size_t)cfg->max_pdu + 1024;
    if (tsdu < 1024)
        return GS_EINVAL;
    a = calloc(1, sizeof *a);
    if (!a)
        return GS_ENOMEM;
    a->cfg = *cfg;
    a->cfg.max_tsdu = tsdu;
    a->io = *io;
    a->in_cap = MMS_TPKT_HDR + mms_cotp_size_of_code(cfg->tpdu_code);
    a->out_cap = 2 * ((size_t)cfg->max_pdu + HEADROOM);
    a->tpkt_cap = MMS_TPKT_HDR + mms_cotp_size_of_code(cfg->tpdu_code);
    a->in = malloc(a->in_cap);
    a->tsdu = malloc(tsdu);
    a->out = malloc(a->out_cap);
    a->tpkt = malloc(a->tpkt_cap);
    if (!a->in || !a->tsdu || !a->out || !a->tpkt) {
        mms_assoc_free(a);
        return GS_ENOMEM;
    }
    mms_cotp_reasm_init(&a->reasm, a->tsdu, tsdu);
    a->tpdu_size = 128;
    a->ctx_acse = a->ctx_mms = -1;
    a->state = S_WAIT_CR;
    *out = a;
    return 0;
}

void mms_assoc_free(mms_assoc_t *a)
{
    if (!a)
        return;
    free(a->in);
    free(a->tsdu);
    free(a->out);
    free(a->tpkt);
    free(a);
}

int mms_assoc_input(mms_assoc_t *a, const uint8_t *p, size_t n)
{
    while (a->state != S_CLOSED) {
        const uint8_t *payload;
        size_t plen, take = a->in_cap - a->in_len;
        int rc;
        if (take > n)
            take = n;
        memcpy(a->in + a->in_len, p, take);
        a->in_len += take;
        p += take;
        n -= take;
        rc = mms_tpkt_frame(a->in, a->in_len, a->in_cap, &payload, &plen);
        if (rc < 0) {
            ev(a, MMS_AEV_PROTOCOL_ERROR,
               rc == GS_ELIMIT ? "TPKT above the TPDU size" : "malformed TPKT");
            close_assoc(a);
            break;
        }
        if (rc == 0) {
            if (n == 0)
                break;
            continue; /* (cannot happen: a TPKT fits in_cap, so take > 0 left bytes) */
        }
        on_tpdu(a, payload, plen);
        memmove(a->in, a->in + rc, a->in_len - (size_t)rc);
        a->in_len -= (size_t)rc;
        if (n == 0 && a->in_len < MMS_TPKT_HDR)
            break;
    }
    return a->state == S_CLOSED ? GS_ECLOSED : 0;
}

bool mms_assoc_closed(const mms_assoc_t *a)
{
    return a->state == S_CLOSED;
}

bool mms_assoc_associated(const mms_assoc_t *a)
{
    return a->state == S_ASSOC;
}

uint32_t mms_assoc_pdu_size(const mms_assoc_t *a)
{
    return a->pdu_size;
}

uint32_t mms_assoc_tpdu_size(const mms_assoc_t *a)
{
    return a->tpdu_size;
}

int mms_assoc_unconfirmed_begin(mms_assoc_t *a, mms_ber_writer_t *w)
{
    if (a->state != S_ASSOC)
        return GS_ECLOSED;
    mms_bw_init(w, a->out, (size_t)a->pdu_size + HEADROOM);
    a->in_unconfirmed = true;
    return 0;
}

int mms_assoc_unconfirmed_end(mms_assoc_t *a, mms_ber_writer_t *w, int service)
{
    if (!a->in_unconfirmed || w->buf != a->out)
        return GS_EINVAL;
    a->in_unconfirmed = false;
    if (a->state != S_ASSOC)
        return GS_ECLOSED;
    if (w->err)
        return w->err;
    mms_bw_wrap(w, CTX, (uint32_t)service, w->cap);
    mms_bw_wrap(w, CTX, MMS_PDU_UNCONFIRMED, w->cap);
    if (w->err || mms_bw_len(w) > a->pdu_size)
        return GS_ELIMIT;
    if (send_data(a, w, a->ctx_mms) < 0)
        return a->state == S_CLOSED ? GS_ECLOSED : GS_ELIMIT;
    count(a, true, MMS_PDU_UNCONFIRMED);
    return 0;
}

void mms_assoc_abort(mms_assoc_t *a)
{
    mms_apdu_t ab;
    mms_ppdu_t pp;
    mms_spdu_t s;
    mms_ber_writer_t w, w2;

    if (a->state == S_CLOSED)
        return;
    if (a->state == S_ASSOC || a->state == S_CONCLUDED) {
        memset(&ab, 0, sizeof ab);
        ab.kind = MMS_APDU_ABRT;
        ab.reason = 1; /* abort-source acse-service-provider */
        ab.user_ctx_id = -1;
        mms_bw_init(&w, a->out, a->out_cap / 2);
        mms_acse_encode(&w, &ab);
        memset(&pp, 0, sizeof pp);
        pp.n_pdv = 1;
        pp.pdv[0].ctx_id = a->ctx_acse;
        pp.pdv[0].data = mms_bw_data(&w);
        pp.pdv[0].len = mms_bw_len(&w);
        mms_bw_init(&w2, a->out + a->out_cap / 2, a->out_cap - a->out_cap / 2);
        mms_pres_encode_aru(&w2, &pp);
        memset(&s, 0, sizeof s);
        s.si = MMS_SPDU_AB;
        s.has_disconnect = true;
        s.disconnect = 0x0B; /* released, user abort (ISO 8327-1 8.3.9.1) */
        if (!w.err && !w2.err)
            send_session(a, &s, mms_bw_data(&w2), mms_bw_len(&w2));
    }
    close_assoc(a);
}
