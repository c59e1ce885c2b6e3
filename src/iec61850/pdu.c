/* MMS PDU envelope, ISO 9506-2 clause 7 (MMSpdu) and 8.2 (Initiate): the CHOICE of PDU types,
 * invokeID, the service CHOICE tag for dispatch, initiate parameters, errors and rejects. Service
 * bodies stay undecoded (borrowed) but are checked to be well-formed BER within the depth limit. */
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

#define CTX MMS_BER_CONTEXT
#define UNI MMS_BER_UNIVERSAL

/* Highest ConfirmedServiceRequest CHOICE tag of ISO 9506-2 (7.4: ... fileDirectory [77],
 * with the 9506-2 additions up to [86]); higher tags are unrecognized services. */
#define MAX_SERVICE_TAG 86

#define BAD(pdu, code, text)                                                                       \
    do {                                                                                           \
        (pdu)->why = (text);                                                                       \
        rc = (code);                                                                               \
        goto fail;                                                                                 \
    } while (0)

static void set_rej(mms_reject_t *rej, int32_t cls, int32_t code)
{
    if (rej) {
        rej->rej_class = cls;
        rej->rej_code = code;
    }
}

/* Decodes a ServiceError body (7.5.1) far enough for errorClass. */
static int service_error(const mms_ber_reader_t *r, const mms_tlv_t *t, mms_pdu_t *pdu)
{
    mms_ber_reader_t sr, cr;
    mms_tlv_t e, c;
    int rc;

    if ((rc = mms_ber_enter(r, t, &sr)) < 0 || (rc = mms_ber_expect(&sr, CTX, true, 0, &e)) < 0)
        return rc < 0 ? rc : GS_EPROTO;
    if ((rc = mms_ber_enter(&sr, &e, &cr)) < 0 || (rc = mms_ber_next(&cr, &c)) != 1)
        return rc < 0 ? rc : GS_EPROTO;
    if (c.cls != CTX || c.constructed || c.tag > 12 || mms_ber_get_i32(&c, &pdu->err_code) < 0)
        return GS_EPROTO;
    pdu->err_class = (int32_t)c.tag;
    if (mms_ber_next(&cr, &c) != 0)
        return GS_EPROTO;
    return mms_ber_check_tree(r, t);
}

static int i32_in(const mms_tlv_t *t, int32_t lo, int32_t hi, int32_t *v)
{
    int rc = mms_ber_get_i32(t, v);
    if (rc < 0)
        return rc;
    return (*v < lo || *v > hi) ? GS_ERANGE : 0;
}

/* Initiate-RequestPDU / Initiate-ResponsePDU (8.2.1): the same shape. */
static int initiate(const mms_ber_reader_t *r, const mms_tlv_t *t, mms_initiate_t *in)
{
    mms_ber_reader_t sr, dr;
    mms_tlv_t e;
    int rc;
    bool have1 = false, have2 = false, have4 = false;

    memset(in, 0, sizeof *in);
    if ((rc = mms_ber_enter(r, t, &sr)) < 0)
        return rc;
    while ((rc = mms_ber_next(&sr, &e)) == 1) {
        if (e.cls != CTX)
            return GS_EPROTO;
        switch (e.tag) {
        case 0: /* localDetail: Integer32 */
            if (e.constructed || mms_ber_get_i32(&e, &in->local_detail) < 0)
                return GS_EPROTO;
            in->has_local_detail = true;
            break;
        case 1: /* proposed/negotiatedMaxServOutstandingCalling: Integer16 */
            if (e.constructed || i32_in(&e, -32768, 32767, &in->max_serv_calling) < 0)
                return GS_EPROTO;
            have1 = true;
            break;
        case 2:
            if (e.constructed || i32_in(&e, -32768, 32767, &in->max_serv_called) < 0)
                return GS_EPROTO;
            have2 = true;
            break;
        case 3: /* DataStructureNestingLevel: Integer8 */
            if (e.constructed || i32_in(&e, -128, 127, &in->nesting) < 0)
                return GS_EPROTO;
            in->has_nesting = true;
            break;
        case 4: { /* mmsInitRequestDetail / mmsInitResponseDetail */
            mms_tlv_t f;
            const uint8_t *b;
            size_t nb;
            if (!e.constructed || (rc = mms_ber_enter(&sr, &e, &dr)) < 0)
                return rc < 0 ? rc : GS_EPROTO;
            if ((rc = mms_ber_expect(&dr, CTX, false, 0, &f)) < 0 ||
                (rc = i32_in(&f, -32768, 32767, &in->version)) < 0)
                return rc;
            if ((rc = mms_ber_expect(&dr, CTX, false, 1, &f)) < 0 ||
                (rc = mms_ber_get_bits(&f, &b, &nb)) < 0)
                return rc;
            if (nb > 8 * sizeof in->param_cbb)
                return GS_ELIMIT;
            memcpy(in->param_cbb, b, (nb + 7) / 8);
            in->param_cbb_bits = nb;
            if ((rc = mms_ber_expect(&dr, CTX, false, 2, &f)) < 0 ||
                (rc = mms_ber_get_bits(&f, &b, &nb)) < 0)
                return rc;
            if (nb > 8 * sizeof in->services)
                return GS_ELIMIT;
            memcpy(in->services, b, (nb + 7) / 8);
            in->services_bits = nb;
            /* 9506-2 extensions (additionalSupportedCalling, ...) are allowed and ignored */
            while ((rc = mms_ber_next(&dr, &f)) == 1)
                ;
            if (rc < 0)
                return rc;
            have4 = true;
            break;
        }
        default:
            return GS_EPROTO;
        }
    }
    if (rc < 0)
        return rc;
    return (have1 && have2 && have4) ? 0 : GS_EPROTO;
}

int mms_pdu_decode(const uint8_t *p, size_t n, mms_pdu_t *pdu, mms_reject_t *rej)
{
    mms_ber_reader_t r, sr;
    mms_tlv_t t, e, x;
    int rc;

    memset(pdu, 0, sizeof *pdu);
    pdu->type = -1;
    pdu->service = -1;
    pdu->err_class = -1;
    pdu->rej_class = -1;
    if (rej) {
        memset(rej, 0, sizeof *rej);
        rej->rej_class = MMS_REJ_PDU_ERROR;
        rej->rej_code = MMS_REJ_PDU_INVALID;
    }
    mms_ber_reader_init(&r, p, n);
    if ((rc = mms_ber_next(&r, &t)) != 1)
        BAD(pdu, rc < 0 ? rc : GS_ETRUNC, rc < 0 ? r.why : "empty PDU");
    if (mms_ber_next(&r, &x) != 0)
        BAD(pdu, GS_EPROTO, "octets after the PDU");
    if (t.cls != CTX || t.tag > MMS_PDU_CONCLUDE_ERR) {
        set_rej(rej, MMS_REJ_PDU_ERROR, MMS_REJ_PDU_UNKNOWN_TYPE);
        BAD(pdu, GS_EPROTO, "unknown MMSpdu type");
    }
    pdu->type = (int)t.tag;
    pdu->body = t.val;
    pdu->body_len = t.len;
    switch (pdu->type) {
    case MMS_PDU_CONFIRMED_REQ:
    case MMS_PDU_CONFIRMED_RESP:
        if (!t.constructed || (rc = mms_ber_enter(&r, &t, &sr)) < 0)
            BAD(pdu, GS_EPROTO, "confirmed PDU is not a SEQUENCE");
        if ((rc = mms_ber_expect(&sr, UNI, false, 2, &e)) < 0 ||
            mms_ber_get_u32(&e, &pdu->invoke_id) < 0) {
            if (pdu->type == MMS_PDU_CONFIRMED_REQ)
                set_rej(rej, MMS_REJ_CONFIRMED_REQUEST, MMS_REJ_REQ_INVALID_INVOKEID);
            else
                set_rej(rej, MMS_REJ_CONFIRMED_RESPONSE, 2); /* invalid-invokeID */
            BAD(pdu, GS_EPROTO, "bad invokeID");
        }
        pdu->has_invoke_id = true;
        if (rej) {
            rej->has_invoke_id = true;
            rej->invoke_id = pdu->invoke_id;
            rej->rej_class = pdu->type == MMS_PDU_CONFIRMED_REQ ? MMS_REJ_CONFIRMED_REQUEST
                                                                : MMS_REJ_CONFIRMED_RESPONSE;
            rej->rej_code = pdu->type == MMS_PDU_CONFIRMED_REQ ? MMS_REJ_REQ_INVALID_ARGUMENT
                                                               : 3; /* invalid-result */
        }
        if ((rc = mms_ber_next(&sr, &e)) != 1)
            BAD(pdu, rc < 0 ? rc : GS_ETRUNC, "confirmed PDU without a service");
        if (pdu->type == MMS_PDU_CONFIRMED_REQ && mms_tlv_is(&e, UNI, true, 16)) {
            pdu->modifiers = e.val; /* listOfModifiers */
            pdu->modifiers_len = e.len;
            if ((rc = mms_ber_check_tree(&sr, &e)) < 0)
                BAD(pdu, rc, "malformed listOfModifiers");
            if ((rc = mms_ber_next(&sr, &e)) != 1)
                BAD(pdu, rc < 0 ? rc : GS_ETRUNC, "confirmed PDU without a service");
        }
        if (e.cls != CTX || e.tag > MAX_SERVICE_TAG) {
            if (pdu->type == MMS_PDU_CONFIRMED_REQ)
                set_rej(rej, MMS_REJ_CONFIRMED_REQUEST, MMS_REJ_REQ_UNRECOGNIZED_SERVICE);
            else
                set_rej(rej, MMS_REJ_CONFIRMED_RESPONSE, 1); /* unrecognized-service */
            BAD(pdu, GS_EPROTO, "unrecognized service");
        }
        pdu->service = (int)e.tag;
        pdu->service_constructed = e.constructed;
        pdu->body = e.val;
        pdu->body_len = e.len;
        if ((rc = mms_ber_check_tree(&sr, &e)) < 0) {
            if (rc == GS_ELIMIT && pdu->type == MMS_PDU_CONFIRMED_REQ)
                set_rej(rej, MMS_REJ_CONFIRMED_REQUEST, MMS_REJ_REQ_MAX_RECURSION);
            else if (rc == GS_ELIMIT)
                set_rej(rej, MMS_REJ_CONFIRMED_RESPONSE, 5); /* max-recursion-exceeded */
            BAD(pdu, rc, "malformed service body");
        }
        if (mms_ber_next(&sr, &e) != 0) /* service-ext [79] is not used by 8-1 */
            BAD(pdu, GS_EPROTO, "element after the service");
        return 0;
    case MMS_PDU_CONFIRMED_ERR:
        if (!t.constructed || (rc = mms_ber_enter(&r, &t, &sr)) < 0)
            BAD(pdu, GS_EPROTO, "confirmed-ErrorPDU is not a SEQUENCE");
        if ((rc = mms_ber_expect(&sr, CTX, false, 0, &e)) < 0 ||
            mms_ber_get_u32(&e, &pdu->invoke_id) < 0)
            BAD(pdu, GS_EPROTO, "bad invokeID");
        pdu->has_invoke_id = true;
        if (rej) {
            rej->has_invoke_id = true;
            rej->invoke_id = pdu->invoke_id;
            rej->rej_class = MMS_REJ_CONFIRMED_ERROR;
            rej->rej_code = 0;
        }
        if ((rc = mms_ber_next(&sr, &e)) != 1)
            BAD(pdu, rc < 0 ? rc : GS_ETRUNC, "no serviceError");
        if (mms_tlv_is(&e, CTX, false, 1)) {
            if (mms_ber_get_u32(&e, &pdu->modifier_pos) < 0)
                BAD(pdu, GS_EPROTO, "bad modifierPosition");
            pdu->has_modifier_pos = true;
            if ((rc = mms_ber_next(&sr, &e)) != 1)
                BAD(pdu, rc < 0 ? rc : GS_ETRUNC, "no serviceError");
        }
        if (!mms_tlv_is(&e, CTX, true, 2) || (rc = service_error(&sr, &e, pdu)) < 0)
            BAD(pdu, GS_EPROTO, "bad serviceError");
        pdu->body = e.val;
        pdu->body_len = e.len;
        if (mms_ber_next(&sr, &e) != 0)
            BAD(pdu, GS_EPROTO, "element after serviceError");
        return 0;
    case MMS_PDU_UNCONFIRMED:
        if (!t.constructed || (rc = mms_ber_enter(&r, &t, &sr)) < 0)
            BAD(pdu, GS_EPROTO, "unconfirmed-PDU is not a SEQUENCE");
        /* RejectPDU unconfirmedPDU codes: 1 unrecognized-service, 2 invalid-argument,
         * 3 max-recursion-exceeded */
        set_rej(rej, MMS_REJ_UNCONFIRMED, 2);
        if ((rc = mms_ber_next(&sr, &e)) != 1)
            BAD(pdu, rc < 0 ? rc : GS_EPROTO, "unconfirmed-PDU without a service");
        if (e.cls != CTX || e.tag > 2) {
            set_rej(rej, MMS_REJ_UNCONFIRMED, 1);
            BAD(pdu, GS_EPROTO, "unrecognized unconfirmed service");
        }
        pdu->service = (int)e.tag;
        pdu->service_constructed = e.constructed;
        pdu->body = e.val;
        pdu->body_len = e.len;
        if ((rc = mms_ber_check_tree(&sr, &e)) < 0) {
            if (rc == GS_ELIMIT)
                set_rej(rej, MMS_REJ_UNCONFIRMED, 3);
            BAD(pdu, rc, "malformed unconfirmed service");
        }
        if (mms_ber_next(&sr, &e) != 0)
            BAD(pdu, GS_EPROTO, "element after the service");
        return 0;
    case MMS_PDU_REJECT:
        if (!t.constructed || (rc = mms_ber_enter(&r, &t, &sr)) < 0)
            BAD(pdu, GS_EPROTO, "rejectPDU is not a SEQUENCE");
        if ((rc = mms_ber_next(&sr, &e)) != 1)
            BAD(pdu, rc < 0 ? rc : GS_ETRUNC, "rejectPDU without a reason");
        if (mms_tlv_is(&e, CTX, false, 0)) {
            if (mms_ber_get_u32(&e, &pdu->invoke_id) < 0)
                BAD(pdu, GS_EPROTO, "bad originalInvokeID");
            pdu->has_invoke_id = true;
            if ((rc = mms_ber_next(&sr, &e)) != 1)
                BAD(pdu, rc < 0 ? rc : GS_ETRUNC, "rejectPDU without a reason");
        }
        /* rejectReason CHOICE [1] confirmed-requestPDU .. [11] conclude-errorPDU */
        if (e.cls != CTX || e.constructed || e.tag < 1 || e.tag > 11 ||
            mms_ber_get_i32(&e, &pdu->rej_code) < 0)
            BAD(pdu, GS_EPROTO, "bad rejectReason");
        pdu->rej_class = (int32_t)e.tag;
        if (mms_ber_next(&sr, &e) != 0)
            BAD(pdu, GS_EPROTO, "element after rejectReason");
        return 0;
    case MMS_PDU_CANCEL_REQ:
    case MMS_PDU_CANCEL_RESP:
        if (t.constructed || mms_ber_get_u32(&t, &pdu->invoke_id) < 0)
            BAD(pdu, GS_EPROTO, "bad cancel invokeID");
        pdu->has_invoke_id = true;
        return 0;
    case MMS_PDU_CANCEL_ERR:
        if (!t.constructed || (rc = mms_ber_enter(&r, &t, &sr)) < 0 ||
            (rc = mms_ber_expect(&sr, CTX, false, 0, &e)) < 0 ||
            mms_ber_get_u32(&e, &pdu->invoke_id) < 0)
            BAD(pdu, GS_EPROTO, "bad cancel-ErrorPDU");
        pdu->has_invoke_id = true;
        if (mms_ber_expect(&sr, CTX, true, 1, &e) < 0 || service_error(&sr, &e, pdu) < 0 ||
            mms_ber_next(&sr, &x) != 0)
            BAD(pdu, GS_EPROTO, "bad serviceError");
        return 0;
    case MMS_PDU_INITIATE_REQ:
    case MMS_PDU_INITIATE_RESP:
        if (!t.constructed || (rc = initiate(&r, &t, &pdu->init)) < 0)
            BAD(pdu, rc < 0 ? rc : GS_EPROTO, "bad initiate PDU");
        return 0;
    case MMS_PDU_INITIATE_ERR:
    case MMS_PDU_CONCLUDE_ERR:
        /* ServiceError is IMPLICIT here: t itself is the SEQUENCE */
        if (!t.constructed || service_error(&r, &t, pdu) < 0)
            BAD(pdu, GS_EPROTO, "bad ServiceError");
        return 0;
    case MMS_PDU_CONCLUDE_REQ:
    case MMS_PDU_CONCLUDE_RESP:
        if (mms_ber_get_null(&t) < 0) {
            if (pdu->type == MMS_PDU_CONCLUDE_REQ)
                set_rej(rej, MMS_REJ_CONCLUDE_REQUEST, 1); /* invalid-argument */
            BAD(pdu, GS_EPROTO, "conclude PDU is not a NULL");
        }
        return 0;
    default:
        break;
    }
    BAD(pdu, GS_EPROTO, "unknown MMSpdu type");
fail:
    return rc;
}

/* ---- Encoders ------------------------------------------------------------------------------ */

void mms_pdu_encode_initiate(mms_ber_writer_t *w, bool response, const mms_initiate_t *in)
{
    size_t m = mms_bw_mark(w), d;

    d = mms_bw_mark(w);
    mms_bw_bits(w, CTX, 2, in->services,
                in->services_bits > 8 * sizeof in->services ? 8 * sizeof in->services
                                                            : in->services_bits);
    mms_bw_bits(w, CTX, 1, in->param_cbb,
                in->param_cbb_bits > 8 * sizeof in->param_cbb ? 8 * sizeof in->param_cbb
                                                              : in->param_cbb_bits);
    mms_bw_int(w, CTX, 0, in->version);
    mms_bw_wrap(w, CTX, 4, d);
    if (in->has_nesting)
        mms_bw_int(w, CTX, 3, in->nesting);
    mms_bw_int(w, CTX, 2, in->max_serv_called);
    mms_bw_int(w, CTX, 1, in->max_serv_calling);
    if (in->has_local_detail)
        mms_bw_int(w, CTX, 0, in->local_detail);
    mms_bw_wrap(w, CTX, response ? MMS_PDU_INITIATE_RESP : MMS_PDU_INITIATE_REQ, m);
}

void mms_pdu_encode_confirmed(mms_ber_writer_t *w, bool response, uint32_t invoke_id, int service,
                              bool constructed, const uint8_t *body, size_t len)
{
    size_t m = mms_bw_mark(w);

    mms_bw_raw(w, body, body ? len : 0);
    mms_bw_hdr(w, (uint8_t)(CTX | (constructed ? MMS_BER_CONSTRUCTED : 0)), (uint32_t)service,
               body ? len : 0);
    mms_bw_uint(w, UNI, 2, invoke_id);
    mms_bw_wrap(w, CTX, response ? MMS_PDU_CONFIRMED_RESP : MMS_PDU_CONFIRMED_REQ, m);
}

static void enc_service_error(mms_ber_writer_t *w, int32_t err_class, int32_t err_code)
{
    size_t m = mms_bw_mark(w);
    mms_bw_int(w, CTX, (uint32_t)err_class, err_code);
    mms_bw_wrap(w, CTX, 0, m); /* errorClass [0] */
}

void mms_pdu_encode_error(mms_ber_writer_t *w, uint32_t invoke_id, int32_t err_class,
                          int32_t err_code)
{
    size_t m = mms_bw_mark(w);

    enc_service_error(w, err_class, err_code);
    mms_bw_wrap(w, CTX, 2, m); /* serviceError [2] */
    mms_bw_uint(w, CTX, 0, invoke_id);
    mms_bw_wrap(w, CTX, MMS_PDU_CONFIRMED_ERR, m);
}

void mms_pdu_encode_reject(mms_ber_writer_t *w, const mms_reject_t *rej)
{
    size_t m = mms_bw_mark(w);

    mms_bw_int(w, CTX, (uint32_t)rej->rej_class, rej->rej_code);
    if (rej->has_invoke_id)
        mms_bw_uint(w, CTX, 0, rej->invoke_id);
    mms_bw_wrap(w, CTX, MMS_PDU_REJECT, m);
}

void mms_pdu_encode_unconfirmed(mms_ber_writer_t *w, int service, const uint8_t *body, size_t len)
{
    size_t m = mms_bw_mark(w);

    mms_bw_raw(w, body, body ? len : 0);
    mms_bw_hdr(w, CTX | MMS_BER_CONSTRUCTED, (uint32_t)service, body ? len : 0);
    mms_bw_wrap(w, CTX, MMS_PDU_UNCONFIRMED, m);
}

void mms_pdu_encode_conclude(mms_ber_writer_t *w, bool response)
{
    mms_bw_null(w, CTX, response ? MMS_PDU_CONCLUDE_RESP : MMS_PDU_CONCLUDE_REQ);
}

void mms_pdu_encode(mms_ber_writer_t *w, const mms_pdu_t *pdu)
{
    size_t m = mms_bw_mark(w);

    switch (pdu->type) {
    case MMS_PDU_CONFIRMED_REQ:
    case MMS_PDU_CONFIRMED_RESP:
        mms_bw_raw(w, pdu->body, pdu->body_len);
        mms_bw_hdr(w, (uint8_t)(CTX | (pdu->service_constructed ? MMS_BER_CONSTRUCTED : 0)),
                   (uint32_t)pdu->service, pdu->body_len);
        if (pdu->modifiers) {
            size_t mm = mms_bw_mark(w);
            mms_bw_raw(w, pdu->modifiers, pdu->modifiers_len);
            mms_bw_wrap(w, UNI, 16, mm);
        }
        mms_bw_uint(w, UNI, 2, pdu->invoke_id);
        mms_bw_wrap(w, CTX, (uint32_t)pdu->type, m);
        break;
    case MMS_PDU_CONFIRMED_ERR:
        mms_bw_raw(w, pdu->body, pdu->body_len);
        mms_bw_wrap(w, CTX, 2, m);
        if (pdu->has_modifier_pos)
            mms_bw_uint(w, CTX, 1, pdu->modifier_pos);
        mms_bw_uint(w, CTX, 0, pdu->invoke_id);
        mms_bw_wrap(w, CTX, MMS_PDU_CONFIRMED_ERR, m);
        break;
    case MMS_PDU_UNCONFIRMED:
        mms_bw_raw(w, pdu->body, pdu->body_len);
        mms_bw_hdr(w, (uint8_t)(CTX | (pdu->service_constructed ? MMS_BER_CONSTRUCTED : 0)),
                   (uint32_t)pdu->service, pdu->body_len);
        mms_bw_wrap(w, CTX, MMS_PDU_UNCONFIRMED, m);
        break;
    case MMS_PDU_REJECT: {
        mms_reject_t rj = {pdu->has_invoke_id, pdu->invoke_id, pdu->rej_class, pdu->rej_code};
        mms_pdu_encode_reject(w, &rj);
        break;
    }
    case MMS_PDU_CANCEL_REQ:
    case MMS_PDU_CANCEL_RESP:
        mms_bw_uint(w, CTX, (uint32_t)pdu->type, pdu->invoke_id);
        break;
    case MMS_PDU_INITIATE_REQ:
    case MMS_PDU_INITIATE_RESP:
        mms_pdu_encode_initiate(w, pdu->type == MMS_PDU_INITIATE_RESP, &pdu->init);
        break;
    case MMS_PDU_CONCLUDE_REQ:
    case MMS_PDU_CONCLUDE_RESP:
        mms_pdu_encode_conclude(w, pdu->type == MMS_PDU_CONCLUDE_RESP);
        break;
    default: /* error PDUs with their ServiceError kept raw */
        mms_bw_raw(w, pdu->body, pdu->body_len);
        mms_bw_wrap(w, CTX, (uint32_t)pdu->type, m);
        break;
    }
}
