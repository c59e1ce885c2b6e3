/* ISO 8823-1 presentation protocol, normal mode with the BER transfer syntax, as IEC 61850-8-1
 * uses it: CP-type / CPA-PPDU / CPR-PPDU on connect, fully-encoded-data user data on transfer
 * and release, ARU-PPDU / ARP-PPDU on abort. PPDUs are the ASN.1 of ISO 8823-1 clause 8. */
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

const uint32_t MMS_OID_ACSE[5] = {2, 2, 1, 0, 1};
const uint32_t MMS_OID_MMS[5] = {1, 0, 9506, 2, 1};
const uint32_t MMS_OID_BER[3] = {2, 1, 1};
const uint32_t MMS_OID_MMS_CTX[5] = {1, 0, 9506, 2, 3};

#define CTX  MMS_BER_CONTEXT
#define APP  MMS_BER_APPLICATION
#define UNI  MMS_BER_UNIVERSAL
#define CONS MMS_BER_CONSTRUCTED

#define BAD(pp, code, text)                                                                        \
    do {                                                                                           \
        (pp)->why = (text);                                                                        \
        return (code);                                                                             \
    } while (0)

static void init(mms_ppdu_t *pp, int type)
{
    memset(pp, 0, sizeof *pp);
    pp->type = type;
    pp->provider_reason = -1;
}

static int sel(const mms_tlv_t *t, uint8_t *dst, uint8_t *len, bool *has)
{
    if (t->constructed || t->len > 16)
        return GS_EPROTO; /* presentation selectors: OCTET STRING, up to 16 octets here */
    memcpy(dst, t->val, t->len);
    *len = (uint8_t)t->len;
    *has = true;
    return 0;
}

/* Fully-encoded-data, ISO 8823-1 8.4.2: [APPLICATION 1] IMPLICIT SEQUENCE OF PDV-list. Only the
 * single-ASN1-type encoding is accepted (the other two are never used for ACSE/MMS). */
static int fully_encoded(mms_ppdu_t *pp, const mms_ber_reader_t *r, const mms_tlv_t *t)
{
    mms_ber_reader_t lr, pr;
    mms_tlv_t e, f;
    int rc;

    if (!mms_tlv_is(t, APP, true, 1))
        BAD(pp, GS_EPROTO, "user data is not fully-encoded-data");
    if ((rc = mms_ber_enter(r, t, &lr)) < 0)
        BAD(pp, rc, "nesting");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        mms_pdv_t *d;
        if (!mms_tlv_is(&e, UNI, true, 16))
            BAD(pp, GS_EPROTO, "PDV-list is not a SEQUENCE");
        if (pp->n_pdv >= MMS_PRES_MAX_PDV)
            BAD(pp, GS_ELIMIT, "too many PDV-lists");
        d = &pp->pdv[pp->n_pdv];
        if ((rc = mms_ber_enter(&lr, &e, &pr)) < 0)
            BAD(pp, rc, "nesting");
        if ((rc = mms_ber_next(&pr, &f)) != 1)
            BAD(pp, rc < 0 ? rc : GS_ETRUNC, "empty PDV-list");
        if (mms_tlv_is(&f, UNI, false, 6) && (rc = mms_ber_next(&pr, &f)) != 1)
            BAD(pp, rc < 0 ? rc : GS_ETRUNC, "PDV-list without a context identifier");
        if (!mms_tlv_is(&f, UNI, false, 2) || mms_ber_get_i32(&f, &d->ctx_id) < 0 ||
            d->ctx_id < 1 || d->ctx_id > 127) /* ISO 8823-1 8.2: 1..127 (the initiator's odd) */
            BAD(pp, GS_EPROTO, "bad presentation-context-identifier");
        if ((rc = mms_ber_next(&pr, &f)) != 1)
            BAD(pp, rc < 0 ? rc : GS_ETRUNC, "PDV-list without presentation-data-values");
        if (!mms_tlv_is(&f, CTX, true, 0))
            BAD(pp, GS_ENOTSUP, "presentation-data-values other than single-ASN1-type");
        d->data = f.val;
        d->len = f.len;
        if (mms_ber_next(&pr, &f) != 0)
            BAD(pp, GS_EPROTO, "extra element in PDV-list");
        pp->n_pdv++;
    }
    if (rc < 0)
        BAD(pp, rc, lr.why);
    if (pp->n_pdv == 0)
        BAD(pp, GS_EPROTO, "no PDV-list");
    return 0;
}

/* mode-selector [0] IMPLICIT SET { mode-value [0] IMPLICIT INTEGER } */
static int mode_selector(mms_ppdu_t *pp, const mms_ber_reader_t *r, const mms_tlv_t *t)
{
    mms_ber_reader_t mr;
    mms_tlv_t v;
    int rc;

    if ((rc = mms_ber_enter(r, t, &mr)) < 0 || (rc = mms_ber_expect(&mr, CTX, false, 0, &v)) < 0)
        BAD(pp, rc, "bad mode-selector");
    if (mms_ber_get_i32(&v, &pp->mode) < 0 || mms_ber_next(&mr, &v) != 0)
        BAD(pp, GS_EPROTO, "bad mode-value");
    if (pp->mode != 1)
        BAD(pp, GS_ENOTSUP, "X.410-1984 mode"); /* 8.1: only normal mode */
    return 0;
}

/* Context-list (CP) or Result-list (CPA). */
static int ctx_list(mms_ppdu_t *pp, const mms_ber_reader_t *r, const mms_tlv_t *t, bool result)
{
    mms_ber_reader_t lr, ir, sr;
    mms_tlv_t e, f, g;
    int rc;

    if ((rc = mms_ber_enter(r, t, &lr)) < 0)
        BAD(pp, rc, "context list is primitive or too deep");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        mms_pctx_t *c;
        if (!mms_tlv_is(&e, UNI, true, 16))
            BAD(pp, GS_EPROTO, "context list item is not a SEQUENCE");
        if (pp->n_ctx >= MMS_PRES_MAX_CONTEXTS)
            BAD(pp, GS_ELIMIT, "too many presentation contexts");
        c = &pp->ctx[pp->n_ctx];
        memset(c, 0, sizeof *c);
        if ((rc = mms_ber_enter(&lr, &e, &ir)) < 0)
            BAD(pp, rc, "nesting");
        if (!result) {
            if ((rc = mms_ber_expect(&ir, UNI, false, 2, &f)) < 0 ||
                (rc = mms_ber_get_i32(&f, &c->id)) < 0)
                BAD(pp, rc, "bad presentation-context-identifier");
            if ((rc = mms_ber_expect(&ir, UNI, false, 6, &f)) < 0 ||
                (rc = mms_ber_get_oid(&f, &c->abstract)) < 0)
                BAD(pp, rc, "bad abstract-syntax-name");
            if ((rc = mms_ber_expect(&ir, UNI, true, 16, &f)) < 0 ||
                (rc = mms_ber_enter(&ir, &f, &sr)) < 0)
                BAD(pp, rc, "bad transfer-syntax-name-list");
            while ((rc = mms_ber_next(&sr, &g)) == 1) {
                mms_oid_t o;
                if (!mms_tlv_is(&g, UNI, false, 6) || mms_ber_get_oid(&g, &o) < 0)
                    BAD(pp, GS_EPROTO, "bad transfer-syntax-name");
                if (mms_oid_eq(&o, MMS_OID_BER, 3))
                    c->ber = true;
            }
            if (rc < 0)
                BAD(pp, rc, sr.why);
        } else {
            if ((rc = mms_ber_expect(&ir, CTX, false, 0, &f)) < 0 ||
                (rc = mms_ber_get_i32(&f, &c->result)) < 0)
                BAD(pp, rc, "bad Result");
            c->id = -1;
            while ((rc = mms_ber_next(&ir, &f)) == 1) {
                if (mms_tlv_is(&f, CTX, false, 1)) {
                    mms_oid_t o;
                    if (mms_ber_get_oid(&f, &o) < 0)
                        BAD(pp, GS_EPROTO, "bad transfer-syntax-name");
                    c->ber = mms_oid_eq(&o, MMS_OID_BER, 3);
                } else if (!mms_tlv_is(&f, CTX, false, 2)) {
                    BAD(pp, GS_EPROTO, "unexpected element in Result-list item");
                }
            }
            if (rc < 0)
                BAD(pp, rc, ir.why);
        }
        if (!result && mms_ber_next(&ir, &f) != 0)
            BAD(pp, GS_EPROTO, "extra element in Context-list item");
        pp->n_ctx++;
    }
    if (rc < 0)
        BAD(pp, rc, lr.why);
    return 0;
}

/* CP-type (8.2.1) and CPA-PPDU (8.2.2): SET { mode-selector [0], normal-mode-parameters [2] }. */
static int decode_connect(const uint8_t *p, size_t n, mms_ppdu_t *pp, int type)
{
    mms_ber_reader_t r, sr, nr;
    mms_tlv_t t, e;
    bool have_mode = false, have_normal = false;
    int rc;

    init(pp, type);
    mms_ber_reader_init(&r, p, n);
    if ((rc = mms_ber_expect(&r, UNI, true, 17, &t)) < 0)
        BAD(pp, rc, "not a SET");
    if (mms_ber_next(&r, &e) != 0)
        BAD(pp, GS_EPROTO, "octets after the PPDU");
    if ((rc = mms_ber_enter(&r, &t, &sr)) < 0)
        BAD(pp, rc, "nesting");
    while ((rc = mms_ber_next(&sr, &t)) == 1) {
        if (mms_tlv_is(&t, CTX, true, 0) && !have_mode) {
            if ((rc = mode_selector(pp, &sr, &t)) < 0)
                return rc;
            have_mode = true;
        } else if (mms_tlv_is(&t, CTX, true, 2) && !have_normal) {
            have_normal = true;
            if ((rc = mms_ber_enter(&sr, &t, &nr)) < 0)
                BAD(pp, rc, "nesting");
            while ((rc = mms_ber_next(&nr, &e)) == 1) {
                if (e.cls == CTX && !e.constructed && e.tag == 0) {
                    const uint8_t *b;
                    size_t nb;
                    /* protocol-version: version-1 (bit 0) is the only one */
                    if (mms_ber_get_bits(&e, &b, &nb) < 0 || !mms_bits_get(b, nb, 0))
                        BAD(pp, GS_ENOTSUP, "protocol-version without version-1");
                } else if (type == MMS_PPDU_CP && mms_tlv_is(&e, CTX, false, 1)) {
                    if (sel(&e, pp->calling_sel, &pp->calling_sel_len, &pp->has_calling_sel) < 0)
                        BAD(pp, GS_EPROTO, "bad calling-presentation-selector");
                } else if (type == MMS_PPDU_CP && mms_tlv_is(&e, CTX, false, 2)) {
                    if (sel(&e, pp->called_sel, &pp->called_sel_len, &pp->has_called_sel) < 0)
                        BAD(pp, GS_EPROTO, "bad called-presentation-selector");
                } else if (type == MMS_PPDU_CPA && mms_tlv_is(&e, CTX, false, 3)) {
                    if (sel(&e, pp->responding_sel, &pp->responding_sel_len,
                            &pp->has_responding_sel) < 0)
                        BAD(pp, GS_EPROTO, "bad responding-presentation-selector");
                } else if (type == MMS_PPDU_CP && mms_tlv_is(&e, CTX, true, 4)) {
                    if ((rc = ctx_list(pp, &nr, &e, false)) < 0)
                        return rc;
                } else if (type == MMS_PPDU_CPA && mms_tlv_is(&e, CTX, true, 5)) {
                    if ((rc = ctx_list(pp, &nr, &e, true)) < 0)
                        return rc;
                } else if (mms_tlv_is(&e, CTX, false, 8)) {
                    const uint8_t *b;
                    size_t nb;
                    if (mms_ber_get_bits(&e, &b, &nb) < 0 || nb > 8)
                        BAD(pp, GS_EPROTO, "bad presentation-requirements");
                    pp->has_pres_req = true;
                    pp->pres_req = nb ? b[0] : 0;
                    pp->pres_req_bits = (uint8_t)nb;
                } else if (mms_tlv_is(&e, APP, true, 1)) {
                    if ((rc = fully_encoded(pp, &nr, &e)) < 0)
                        return rc;
                } else if (e.cls == CTX && (e.tag == 6 || e.tag == 7 || e.tag == 9)) {
                    /* default context, user-session-requirements: not used by MMS peers */
                } else {
                    BAD(pp, GS_EPROTO, "unexpected element in normal-mode-parameters");
                }
            }
            if (rc < 0)
                BAD(pp, rc, nr.why);
        } else {
            BAD(pp, GS_EPROTO, "unexpected element in the connect PPDU");
        }
    }
    if (rc < 0)
        BAD(pp, rc, sr.why);
    if (!have_mode || !have_normal)
        BAD(pp, GS_EPROTO, "mode-selector or normal-mode-parameters missing");
    if (pp->n_pdv == 0)
        BAD(pp, GS_EPROTO, "connect without user data"); /* 61850-8-1 always carries ACSE */
    return 0;
}

int mms_pres_decode_cp(const uint8_t *p, size_t n, mms_ppdu_t *pp)
{
    return decode_connect(p, n, pp, MMS_PPDU_CP);
}

int mms_pres_decode_cpa(const uint8_t *p, size_t n, mms_ppdu_t *pp)
{
    return decode_connect(p, n, pp, MMS_PPDU_CPA);
}

int mms_pres_decode_data(const uint8_t *p, size_t n, mms_ppdu_t *pp)
{
    mms_ber_reader_t r;
    mms_tlv_t t, e;
    int rc;

    init(pp, MMS_PPDU_DATA);
    mms_ber_reader_init(&r, p, n);
    if ((rc = mms_ber_next(&r, &t)) != 1)
        BAD(pp, rc < 0 ? rc : GS_ETRUNC, rc < 0 ? r.why : "empty user data");
    if (mms_ber_next(&r, &e) != 0)
        BAD(pp, GS_EPROTO, "octets after the user data");
    return fully_encoded(pp, &r, &t);
}

/* ARU-PPDU (8.5.2) normal mode: [0] IMPLICIT SEQUENCE { presentation-context-identifier-list
 * [0] OPTIONAL, user-data OPTIONAL }. */
int mms_pres_decode_aru(const uint8_t *p, size_t n, mms_ppdu_t *pp)
{
    mms_ber_reader_t r, sr;
    mms_tlv_t t, e;
    int rc;

    init(pp, MMS_PPDU_ARU);
    mms_ber_reader_init(&r, p, n);
    if ((rc = mms_ber_expect(&r, CTX, true, 0, &t)) < 0)
        BAD(pp, rc, "not an ARU-PPDU");
    if (mms_ber_next(&r, &e) != 0)
        BAD(pp, GS_EPROTO, "octets after the PPDU");
    if ((rc = mms_ber_enter(&r, &t, &sr)) < 0)
        BAD(pp, rc, "nesting");
    while ((rc = mms_ber_next(&sr, &e)) == 1) {
        if (mms_tlv_is(&e, CTX, true, 0))
            continue; /* presentation-context-identifier-list: not needed */
        if ((rc = fully_encoded(pp, &sr, &e)) < 0)
            return rc;
    }
    if (rc < 0)
        BAD(pp, rc, sr.why);
    return 0;
}

/* ARP-PPDU (8.5.3): SEQUENCE { provider-reason [0] OPTIONAL, event-identifier [1] OPTIONAL }. */
int mms_pres_decode_arp(const uint8_t *p, size_t n, mms_ppdu_t *pp)
{
    mms_ber_reader_t r, sr;
    mms_tlv_t t, e;
    int rc;

    init(pp, MMS_PPDU_ARU);
    mms_ber_reader_init(&r, p, n);
    if ((rc = mms_ber_expect(&r, UNI, true, 16, &t)) < 0 || (rc = mms_ber_enter(&r, &t, &sr)) < 0)
        BAD(pp, rc, "not an ARP-PPDU");
    while ((rc = mms_ber_next(&sr, &e)) == 1) {
        if (mms_tlv_is(&e, CTX, false, 0)) {
            if (mms_ber_get_i32(&e, &pp->provider_reason) < 0)
                BAD(pp, GS_EPROTO, "bad abort-reason");
        } else if (!mms_tlv_is(&e, CTX, false, 1)) {
            BAD(pp, GS_EPROTO, "unexpected element in ARP-PPDU");
        }
    }
    if (rc < 0)
        BAD(pp, rc, sr.why);
    return 0;
}

/* ---- Encoders (reverse order: last element first) ------------------------------------------ */

/* Caller-filled counts and lengths must fit the arrays they index. */
static bool bad_input(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    bool bad_oid = false;
    unsigned i;

    for (i = 0; i < pp->n_ctx && i < MMS_PRES_MAX_CONTEXTS; i++)
        bad_oid = bad_oid || pp->ctx[i].abstract.n > MMS_OID_MAX_ARCS;
    if (bad_oid || pp->n_pdv > MMS_PRES_MAX_PDV || pp->n_ctx > MMS_PRES_MAX_CONTEXTS ||
        pp->calling_sel_len > 16 || pp->called_sel_len > 16 || pp->responding_sel_len > 16) {
        if (!w->err)
            w->err = GS_EINVAL;
        return true;
    }
    return false;
}

static void enc_user_data(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    size_t m0 = mms_bw_mark(w);
    unsigned i;

    for (i = pp->n_pdv; i-- > 0;) {
        size_t m = mms_bw_mark(w);
        mms_bw_raw(w, pp->pdv[i].data, pp->pdv[i].len);
        mms_bw_wrap(w, CTX, 0, m);
        mms_bw_int(w, UNI, 2, pp->pdv[i].ctx_id);
        mms_bw_wrap(w, UNI, 16, m);
    }
    mms_bw_wrap(w, APP, 1, m0);
}

static void enc_mode(mms_ber_writer_t *w)
{
    size_t m = mms_bw_mark(w);
    mms_bw_int(w, CTX, 0, 1); /* normal-mode */
    mms_bw_wrap(w, CTX, 0, m);
}

static void enc_pres_req(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    if (pp->has_pres_req)
        mms_bw_bits(w, CTX, 8, &pp->pres_req, pp->pres_req_bits > 8 ? 8 : pp->pres_req_bits);
}

void mms_pres_encode_cp(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    size_t m_set = mms_bw_mark(w), m_list;
    unsigned i;

    if (bad_input(w, pp))
        return;

    enc_user_data(w, pp);
    enc_pres_req(w, pp);
    m_list = mms_bw_mark(w);
    for (i = pp->n_ctx; i-- > 0;) {
        size_t m = mms_bw_mark(w), m_ts = m;
        if (pp->ctx[i].ber)
            mms_bw_oid(w, UNI, 6, MMS_OID_BER, 3);
        mms_bw_wrap(w, UNI, 16, m_ts);
        mms_bw_oid(w, UNI, 6, pp->ctx[i].abstract.arc, pp->ctx[i].abstract.n);
        mms_bw_int(w, UNI, 2, pp->ctx[i].id);
        mms_bw_wrap(w, UNI, 16, m);
    }
    mms_bw_wrap(w, CTX, 4, m_list);
    if (pp->has_called_sel)
        mms_bw_octets(w, CTX, 2, pp->called_sel, pp->called_sel_len);
    if (pp->has_calling_sel)
        mms_bw_octets(w, CTX, 1, pp->calling_sel, pp->calling_sel_len);
    mms_bw_wrap(w, CTX, 2, m_set);
    enc_mode(w);
    mms_bw_wrap(w, UNI, 17, m_set);
}

void mms_pres_encode_cpa(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    size_t m_set = mms_bw_mark(w), m_list;
    unsigned i;

    if (bad_input(w, pp))
        return;

    enc_user_data(w, pp);
    enc_pres_req(w, pp);
    m_list = mms_bw_mark(w);
    for (i = pp->n_ctx; i-- > 0;) {
        size_t m = mms_bw_mark(w);
        if (pp->ctx[i].ber)
            mms_bw_oid(w, CTX, 1, MMS_OID_BER, 3);
        mms_bw_int(w, CTX, 0, pp->ctx[i].result);
        mms_bw_wrap(w, UNI, 16, m);
    }
    mms_bw_wrap(w, CTX, 5, m_list);
    if (pp->has_responding_sel)
        mms_bw_octets(w, CTX, 3, pp->responding_sel, pp->responding_sel_len);
    mms_bw_wrap(w, CTX, 2, m_set);
    enc_mode(w);
    mms_bw_wrap(w, UNI, 17, m_set);
}

void mms_pres_encode_aru(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    size_t m = mms_bw_mark(w);

    if (bad_input(w, pp))
        return;
    if (pp->n_pdv)
        enc_user_data(w, pp);
    mms_bw_wrap(w, CTX, 0, m);
}

void mms_pres_encode_data(mms_ber_writer_t *w, const mms_ppdu_t *pp)
{
    if (bad_input(w, pp))
        return;
    enc_user_data(w, pp);

    if (bad_input(w, pp))
        return;
}

void mms_pres_encode_cpr(mms_ber_writer_t *w, int32_t provider_reason)
{
    size_t m = mms_bw_mark(w);
    mms_bw_int(w, CTX, 10, provider_reason); /* provider-reason [10] IMPLICIT */
    mms_bw_wrap(w, UNI, 16, m);
}

void mms_pres_encode_arp(mms_ber_writer_t *w, int32_t abort_reason)
{
    size_t m = mms_bw_mark(w);
    mms_bw_int(w, CTX, 0, abort_reason);
    mms_bw_wrap(w, UNI, 16, m);
}
