/* ACSE, ISO 8650-1 (ASN.1 in clause 9 / X.227): AARQ, AARE, RLRQ, RLRE and ABRT APDUs with the
 * fields IEC 61850-8-1 uses (application context, AP titles and AE qualifiers, password
 * authentication of ISO 8650-1 Amd.1 mechanism 2.2.3.1, user-information carrying the MMS PDU
 * in one EXTERNAL). */
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

#define CTX MMS_BER_CONTEXT
#define APP MMS_BER_APPLICATION
#define UNI MMS_BER_UNIVERSAL

const uint32_t MMS_OID_PASSWORD[4] = {2, 2, 3, 1};

#define BAD(a, code, text)                                                                         \
    do {                                                                                           \
        (a)->why = (text);                                                                         \
        return (code);                                                                             \
    } while (0)

/* [n] EXPLICIT wrapper around one element of (cls, tag): returns it in *in. */
static int explicit1(const mms_ber_reader_t *r, const mms_tlv_t *t, uint8_t cls, uint32_t tag,
                     mms_tlv_t *in)
{
    mms_ber_reader_t c;
    mms_tlv_t x;
    int rc;

    if ((rc = mms_ber_enter(r, t, &c)) < 0 || (rc = mms_ber_expect(&c, cls, false, tag, in)) < 0)
        return rc < 0 ? rc : GS_EPROTO;
    if (mms_ber_next(&c, &x) != 0)
        return GS_EPROTO;
    return 0;
}

static int get_oid_explicit(const mms_ber_reader_t *r, const mms_tlv_t *t, mms_oid_t *o)
{
    mms_tlv_t in;
    int rc = explicit1(r, t, UNI, 6, &in);
    return rc < 0 ? rc : mms_ber_get_oid(&in, o);
}

static int get_int_explicit(const mms_ber_reader_t *r, const mms_tlv_t *t, int32_t *v)
{
    mms_tlv_t in;
    int rc = explicit1(r, t, UNI, 2, &in);
    return rc < 0 ? rc : mms_ber_get_i32(&in, v);
}

/* user-information [30] IMPLICIT Association-information (SEQUENCE OF EXTERNAL): exactly one
 * EXTERNAL (X.690 8.18) with single-ASN1-type encoding, as 8-1 uses it. */
static int user_info(mms_apdu_t *a, const mms_ber_reader_t *r, const mms_tlv_t *t)
{
    mms_ber_reader_t lr, er;
    mms_tlv_t x, e;
    int rc;

    if ((rc = mms_ber_enter(r, t, &lr)) < 0 || (rc = mms_ber_expect(&lr, UNI, true, 8, &x)) < 0)
        BAD(a, rc, "user-information without an EXTERNAL");
    if (mms_ber_next(&lr, &e) != 0)
        BAD(a, GS_ENOTSUP, "more than one EXTERNAL in user-information");
    if ((rc = mms_ber_enter(&lr, &x, &er)) < 0)
        BAD(a, rc, "nesting");
    while ((rc = mms_ber_next(&er, &e)) == 1) {
        if (mms_tlv_is(&e, UNI, false, 6) || mms_tlv_is(&e, UNI, false, 7)) {
            continue; /* direct-reference / data-value-descriptor: not used */
        } else if (mms_tlv_is(&e, UNI, false, 2)) {
            if (mms_ber_get_i32(&e, &a->user_ctx_id) < 0)
                BAD(a, GS_EPROTO, "bad indirect-reference");
        } else if (mms_tlv_is(&e, CTX, true, 0)) {
            a->user_info = e.val;
            a->user_len = e.len;
            break;
        } else {
            BAD(a, GS_ENOTSUP, "EXTERNAL encoding other than single-ASN1-type");
        }
    }
    if (rc < 0)
        BAD(a, rc, er.why);
    if (!a->user_info || mms_ber_next(&er, &e) != 0)
        BAD(a, GS_EPROTO, "EXTERNAL without exactly one single-ASN1-type");
    return 0;
}

/* AARQ (tags 0..30 of AARQ-apdu) and AARE (AARE-apdu): the same walk, the tag numbers differ. */
static int decode_assoc(mms_apdu_t *a, const mms_ber_reader_t *r, bool aare)
{
    mms_ber_reader_t rd = *r;
    mms_tlv_t t;
    int rc;

    while ((rc = mms_ber_next(&rd, &t)) == 1) {
        uint32_t tag = t.tag;
        if (t.cls != CTX)
            BAD(a, GS_EPROTO, "non context-specific element in AARQ/AARE");
        if (tag == 0 && !t.constructed) {
            const uint8_t *b;
            size_t nb;
            if (mms_ber_get_bits(&t, &b, &nb) < 0 || !mms_bits_get(b, nb, 0))
                BAD(a, GS_ENOTSUP, "protocol-version without version1");
        } else if (tag == 1 && t.constructed) {
            if (get_oid_explicit(&rd, &t, &a->app_ctx) < 0)
                BAD(a, GS_EPROTO, "bad application-context-name");
            a->has_app_ctx = true;
        } else if (!aare && (tag == 2 || tag == 6) && t.constructed) {
            mms_oid_t *o = tag == 2 ? &a->called_ap_title : &a->calling_ap_title;
            if (get_oid_explicit(&rd, &t, o) < 0)
                BAD(a, GS_ENOTSUP, "AP-title other than form 2");
            *(tag == 2 ? &a->has_called_ap_title : &a->has_calling_ap_title) = true;
        } else if (!aare && (tag == 3 || tag == 7) && t.constructed) {
            if (get_int_explicit(&rd, &t, tag == 3 ? &a->called_ae_qual : &a->calling_ae_qual) < 0)
                BAD(a, GS_ENOTSUP, "AE-qualifier other than form 2");
            *(tag == 3 ? &a->has_called_ae_qual : &a->has_calling_ae_qual) = true;
        } else if (aare && tag == 2 && t.constructed) {
            if (get_int_explicit(&rd, &t, &a->result) < 0)
                BAD(a, GS_EPROTO, "bad result");
        } else if (aare && tag == 3 && t.constructed) {
            mms_ber_reader_t c;
            mms_tlv_t s;
            if (mms_ber_enter(&rd, &t, &c) < 0 || mms_ber_next(&c, &s) != 1 || s.cls != CTX ||
                (s.tag != 1 && s.tag != 2) || get_int_explicit(&c, &s, &a->diag) < 0)
                BAD(a, GS_EPROTO, "bad result-source-diagnostic");
            a->diag_source = (int32_t)s.tag;
        } else if (aare && tag == 4 && t.constructed) {
            if (get_oid_explicit(&rd, &t, &a->called_ap_title) < 0)
                BAD(a, GS_ENOTSUP, "AP-title other than form 2");
            a->has_called_ap_title = true;
        } else if (aare && tag == 5 && t.constructed) {
            if (get_int_explicit(&rd, &t, &a->called_ae_qual) < 0)
                BAD(a, GS_ENOTSUP, "AE-qualifier other than form 2");
            a->has_called_ae_qual = true;
        } else if (tag == (aare ? 8u : 10u) && !t.constructed) {
            const uint8_t *b;
            size_t nb;
            if (mms_ber_get_bits(&t, &b, &nb) < 0 || nb > 8)
                BAD(a, GS_EPROTO, "bad acse-requirements");
            a->auth_required = mms_bits_get(b, nb, 0); /* bit 0: authentication */
            a->acse_req_nbits = (uint8_t)nb;
        } else if (tag == (aare ? 9u : 11u) && !t.constructed) {
            if (mms_ber_get_oid(&t, &a->mechanism) < 0)
                BAD(a, GS_EPROTO, "bad mechanism-name");
            a->has_mechanism = true;
        } else if (tag == (aare ? 10u : 12u) && t.constructed) {
            mms_ber_reader_t c;
            mms_tlv_t s, extra;
            /* Authentication-value CHOICE: charstring [0] IMPLICIT GraphicString is the
             * password form; the others (bitstring, external, other) are not accepted. */
            if (mms_ber_enter(&rd, &t, &c) < 0 || mms_ber_next(&c, &s) != 1)
                BAD(a, GS_EPROTO, "bad authentication-value");
            if (!mms_tlv_is(&s, CTX, false, 0))
                BAD(a, GS_ENOTSUP, "authentication-value other than charstring");
            if (s.len > 255)
                BAD(a, GS_ELIMIT, "password longer than 255 octets");
            if (mms_ber_next(&c, &extra) != 0)
                BAD(a, GS_EPROTO, "extra element in authentication-value");
            a->auth_value = s.val;
            a->auth_len = s.len;
            a->has_auth = true;
        } else if (tag == 30 && t.constructed) {
            if ((rc = user_info(a, &rd, &t)) < 0)
                return rc;
        } else if (tag <= 30) {
            /* invocation identifiers, implementation-information: not used */
        } else {
            BAD(a, GS_EPROTO, "unknown element in AARQ/AARE");
        }
    }
    if (rc < 0)
        BAD(a, rc, rd.why);
    if (!a->has_app_ctx)
        BAD(a, GS_EPROTO, "application-context-name missing");
    return 0;
}

/* RLRQ / RLRE / ABRT: reason [0] IMPLICIT INTEGER, (ABRT: diagnostic [1]), user-info [30]. */
static int decode_release(mms_apdu_t *a, const mms_ber_reader_t *r)
{
    mms_ber_reader_t rd = *r;
    mms_tlv_t t;
    int rc;

    while ((rc = mms_ber_next(&rd, &t)) == 1) {
        if (mms_tlv_is(&t, CTX, false, 0)) {
            if (mms_ber_get_i32(&t, &a->reason) < 0)
                BAD(a, GS_EPROTO, "bad reason");
        } else if (mms_tlv_is(&t, CTX, false, 1) && a->kind == MMS_APDU_ABRT) {
            if (mms_ber_get_i32(&t, &a->diag) < 0)
                BAD(a, GS_EPROTO, "bad abort-diagnostic");
        } else if (mms_tlv_is(&t, CTX, true, 30)) {
            if ((rc = user_info(a, &rd, &t)) < 0)
                return rc;
        } else {
            BAD(a, GS_EPROTO, "unexpected element in release/abort APDU");
        }
    }
    if (rc < 0)
        BAD(a, rc, rd.why);
    if (a->kind == MMS_APDU_ABRT && a->reason < 0)
        BAD(a, GS_EPROTO, "ABRT without abort-source");
    return 0;
}

int mms_acse_decode(const uint8_t *p, size_t n, mms_apdu_t *a)
{
    mms_ber_reader_t r, c;
    mms_tlv_t t, x;
    int rc;

    memset(a, 0, sizeof *a);
    a->reason = -1;
    a->user_ctx_id = -1;
    mms_ber_reader_init(&r, p, n);
    if ((rc = mms_ber_next(&r, &t)) != 1)
        BAD(a, rc < 0 ? rc : GS_ETRUNC, rc < 0 ? r.why : "empty APDU");
    if (mms_ber_next(&r, &x) != 0)
        BAD(a, GS_EPROTO, "octets after the APDU");
    if (t.cls != APP || !t.constructed || t.tag > MMS_APDU_ABRT)
        BAD(a, GS_EPROTO, "not an ACSE APDU");
    a->kind = (int)t.tag;
    if ((rc = mms_ber_enter(&r, &t, &c)) < 0)
        BAD(a, rc, "nesting");
    if (a->kind == MMS_APDU_AARQ || a->kind == MMS_APDU_AARE)
        return decode_assoc(a, &c, a->kind == MMS_APDU_AARE);
    return decode_release(a, &c);
}

/* ---- Encoder ------------------------------------------------------------------------------- */

static void enc_user_info(mms_ber_writer_t *w, const mms_apdu_t *a)
{
    size_t m = mms_bw_mark(w);
    if (!a->user_info)
        return;
    mms_bw_raw(w, a->user_info, a->user_len);
    mms_bw_wrap(w, CTX, 0, m); /* single-ASN1-type */
    if (a->user_ctx_id >= 0)
        mms_bw_int(w, UNI, 2, a->user_ctx_id); /* indirect-reference */
    mms_bw_wrap(w, UNI, 8, m);                 /* EXTERNAL */
    mms_bw_wrap(w, CTX, 30, m);
}

static void enc_oid_explicit(mms_ber_writer_t *w, uint32_t tag, const mms_oid_t *o)
{
    size_t m = mms_bw_mark(w);
    mms_bw_oid(w, UNI, 6, o->arc, o->n);
    mms_bw_wrap(w, CTX, tag, m);
}

static void enc_int_explicit(mms_ber_writer_t *w, uint32_t tag, int32_t v)
{
    size_t m = mms_bw_mark(w);
    mms_bw_int(w, UNI, 2, v);
    mms_bw_wrap(w, CTX, tag, m);
}

static void enc_auth(mms_ber_writer_t *w, const mms_apdu_t *a, uint32_t req_tag)
{
    if (a->has_auth) {
        size_t m = mms_bw_mark(w);
        mms_bw_octets(w, CTX, 0, a->auth_value, a->auth_len);
        mms_bw_wrap(w, CTX, req_tag + 2, m);
    }
    if (a->has_mechanism)
        mms_bw_oid(w, CTX, req_tag + 1, a->mechanism.arc, a->mechanism.n);
    if (a->auth_required) {
        uint8_t b = 0x80;
        mms_bw_bits(w, CTX, req_tag, &b,
                    a->acse_req_nbits && a->acse_req_nbits <= 8 ? a->acse_req_nbits : 1);
    }
}

void mms_acse_encode(mms_ber_writer_t *w, const mms_apdu_t *a)
{
    size_t m = mms_bw_mark(w);

    if (a->app_ctx.n > MMS_OID_MAX_ARCS || a->called_ap_title.n > MMS_OID_MAX_ARCS ||
        a->calling_ap_title.n > MMS_OID_MAX_ARCS || a->mechanism.n > MMS_OID_MAX_ARCS ||
        a->kind < MMS_APDU_AARQ || a->kind > MMS_APDU_ABRT) {
        if (!w->err)
            w->err = GS_EINVAL; /* caller-filled counts must fit the arrays they index */
        return;
    }
    enc_user_info(w, a);
    switch (a->kind) {
    case MMS_APDU_AARQ:
        enc_auth(w, a, 10);
        if (a->has_calling_ae_qual)
            enc_int_explicit(w, 7, a->calling_ae_qual);
        if (a->has_calling_ap_title)
            enc_oid_explicit(w, 6, &a->calling_ap_title);
        if (a->has_called_ae_qual)
            enc_int_explicit(w, 3, a->called_ae_qual);
        if (a->has_called_ap_title)
            enc_oid_explicit(w, 2, &a->called_ap_title);
        enc_oid_explicit(w, 1, &a->app_ctx);
        break;
    case MMS_APDU_AARE: {
        size_t d = mms_bw_mark(w);
        enc_auth(w, a, 8);
        if (a->has_called_ae_qual)
            enc_int_explicit(w, 5, a->called_ae_qual);
        if (a->has_called_ap_title)
            enc_oid_explicit(w, 4, &a->called_ap_title);
        d = mms_bw_mark(w);
        enc_int_explicit(w, (uint32_t)(a->diag_source == 2 ? 2 : 1), a->diag);
        mms_bw_wrap(w, CTX, 3, d);
        enc_int_explicit(w, 2, a->result);
        enc_oid_explicit(w, 1, &a->app_ctx);
        break;
    }
    default:
        if (a->kind == MMS_APDU_ABRT && a->diag > 0)
            mms_bw_int(w, CTX, 1, a->diag);
        if (a->reason >= 0)
            mms_bw_int(w, CTX, 0, a->reason);
        break;
    }
    mms_bw_wrap(w, APP, (uint32_t)a->kind, m);
}
