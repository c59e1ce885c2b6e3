/* TPKT (RFC 1006 section 6) and COTP class 0 (ISO 8073 / X.224, as RFC 1006 profiles it). */
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

int mms_tpkt_frame(const uint8_t *p, size_t n, size_t max_len, const uint8_t **payload,
                   size_t *plen)
{
    size_t len;

    if (n < MMS_TPKT_HDR)
        return 0;
    if (p[0] != 3) /* RFC 1006 6: vrsn 3; p[1] is reserved */
        return GS_EPROTO;
    len = ((size_t)p[2] << 8) | p[3];
    if (len < 7) /* header + the smallest TPDU (a 3-octet DT header) */
        return GS_EPROTO;
    if (len > max_len)
        return GS_ELIMIT;
    if (n < len)
        return 0;
    *payload = p + MMS_TPKT_HDR;
    *plen = len - MMS_TPKT_HDR;
    return (int)len;
}

int mms_tpkt_hdr(uint8_t out[MMS_TPKT_HDR], size_t tpdu_len)
{
    size_t len = tpdu_len + MMS_TPKT_HDR;
    if (len > MMS_TPKT_MAX)
        return GS_ELIMIT;
    out[0] = 3;
    out[1] = 0;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 0;
}

uint32_t mms_cotp_size_of_code(uint8_t code)
{
    return (code >= 7 && code <= 13) ? (1u << code) : 0; /* ISO 8073 13.3.4 b */
}

#define BAD(c, cause, text)                                                                        \
    do {                                                                                           \
        (c)->bad_cause = (cause);                                                                  \
        (c)->why = (text);                                                                         \
        return GS_EPROTO;                                                                          \
    } while (0)

/* Reads the variable part (parameters, ISO 8073 13.2.3) of a CR/CC/DR/ER in v[0..n). */
static int cotp_params(mms_cotp_t *c, const uint8_t *v, size_t n)
{
    size_t off = 0;

    while (off < n) {
        uint8_t code, len;
        const uint8_t *val;
        if (n - off < 2)
            BAD(c, MMS_COTP_ER_BAD_PARAM, "parameter header runs past the LI");
        code = v[off];
        len = v[off + 1];
        if (len > n - off - 2)
            BAD(c, MMS_COTP_ER_BAD_PARAM, "parameter value runs past the LI");
        val = v + off + 2;
        off += 2u + len;
        switch (code) {
        case 0xC0: /* TPDU size, 13.3.4 b */
            if (len != 1 || mms_cotp_size_of_code(val[0]) == 0)
                BAD(c, MMS_COTP_ER_BAD_VALUE, "bad TPDU size");
            c->tpdu_size_code = val[0];
            c->tpdu_size = mms_cotp_size_of_code(val[0]);
            break;
        case 0xC1: /* calling TSAP (CR/CC); invalid TPDU in ER (13.12.4) */
            if (c->type == MMS_COTP_ER) {
                c->data = val;
                c->data_len = len;
                break;
            }
            if (len > MMS_COTP_MAX_TSAP)
                BAD(c, MMS_COTP_ER_BAD_VALUE, "calling TSAP too long");
            memcpy(c->calling_tsap, val, len);
            c->calling_tsap_len = len;
            c->has_calling_tsap = true;
            break;
        case 0xC2: /* called / responding TSAP */
            if (len > MMS_COTP_MAX_TSAP)
                BAD(c, MMS_COTP_ER_BAD_VALUE, "called TSAP too long");
            memcpy(c->called_tsap, val, len);
            c->called_tsap_len = len;
            c->has_called_tsap = true;
            break;
        default: /* 13.3.4: parameters not defined for class 0 are ignored */
            break;
        }
    }
    return 0;
}

int mms_cotp_decode(const uint8_t *p, size_t n, mms_cotp_t *c)
{
    size_t li;

    memset(c, 0, sizeof *c);
    if (n < 2)
        BAD(c, MMS_COTP_ER_UNSPEC, "TPDU shorter than LI + code");
    li = p[0];
    if (li == 255) /* 13.2.1: reserved */
        BAD(c, MMS_COTP_ER_BAD_PARAM, "LI 255 is reserved");
    if (li < 1 || li > n - 1)
        BAD(c, MMS_COTP_ER_BAD_PARAM, "LI past the end of the TPDU");
    c->type = p[1] & 0xF0;
    switch (c->type) {
    case MMS_COTP_DT: /* 13.7: LI 2 in class 0, the EOT/NR octet */
        if (p[1] != MMS_COTP_DT || li != 2)
            BAD(c, MMS_COTP_ER_BAD_PARAM, "DT header is not the class 0 form");
        c->eot = (p[2] & 0x80) != 0;
        if ((p[2] & 0x7F) != 0)
            BAD(c, MMS_COTP_ER_BAD_VALUE, "DT TPDU-NR must be 0 in class 0");
        c->data = p + 3;
        c->data_len = n - 3;
        return 0;
    case MMS_COTP_CR:
    case MMS_COTP_CC: /* 13.3, 13.4: DST-REF, SRC-REF, class option */
        if (p[1] & 0x0F)
            BAD(c, MMS_COTP_ER_BAD_VALUE, "CDT must be 0 in class 0");
        if (li < 6)
            BAD(c, MMS_COTP_ER_BAD_PARAM, "CR/CC fixed part truncated");
        c->dst_ref = (uint16_t)((p[2] << 8) | p[3]);
        c->src_ref = (uint16_t)((p[4] << 8) | p[5]);
        c->class_opt = p[6];
        if (n - 1 > li) /* 13.3.5: class 0 CR/CC carry no user data */
            BAD(c, MMS_COTP_ER_BAD_PARAM, "user data in CR/CC");
        return cotp_params(c, p + 7, li - 6);
    case MMS_COTP_DR: /* 13.5 */
        if (p[1] != MMS_COTP_DR || li < 6)
            BAD(c, MMS_COTP_ER_BAD_PARAM, "DR fixed part truncated");
        c->dst_ref = (uint16_t)((p[2] << 8) | p[3]);
        c->src_ref = (uint16_t)((p[4] << 8) | p[5]);
        c->reason = p[6];
        return cotp_params(c, p + 7, li - 6);
    case MMS_COTP_ER: /* 13.12 */
        if (p[1] != MMS_COTP_ER || li < 4)
            BAD(c, MMS_COTP_ER_BAD_PARAM, "ER fixed part truncated");
        c->dst_ref = (uint16_t)((p[2] << 8) | p[3]);
        c->reason = p[4];
        return cotp_params(c, p + 5, li - 4);
    default:
        BAD(c, MMS_COTP_ER_BAD_TYPE, "TPDU code not used in class 0");
    }
}

static int finish(uint8_t *out, size_t cap, size_t tpdu_len)
{
    if (tpdu_len + MMS_TPKT_HDR > cap)
        return GS_ELIMIT;
    if (mms_tpkt_hdr(out, tpdu_len) < 0)
        return GS_ELIMIT;
    return (int)(tpdu_len + MMS_TPKT_HDR);
}

int mms_cotp_encode_cr_cc(uint8_t *out, size_t cap, const mms_cotp_t *c)
{
    uint8_t t[7 + 3 + 2 * (2 + MMS_COTP_MAX_TSAP)];
    size_t n = 7;

    if (!c || (c->type != MMS_COTP_CR && c->type != MMS_COTP_CC) ||
        c->calling_tsap_len > MMS_COTP_MAX_TSAP || c->called_tsap_len > MMS_COTP_MAX_TSAP)
        return GS_EINVAL;
    t[1] = c->type;
    t[2] = (uint8_t)(c->dst_ref >> 8);
    t[3] = (uint8_t)c->dst_ref;
    t[4] = (uint8_t)(c->src_ref >> 8);
    t[5] = (uint8_t)c->src_ref;
    t[6] = c->class_opt;
    /* The order the reference peers use: TPDU size, called, calling (13.3.4 allows any). */
    if (c->tpdu_size_code) {
        t[n++] = 0xC0;
        t[n++] = 1;
        t[n++] = c->tpdu_size_code;
    }
    if (c->has_called_tsap) {
        t[n++] = 0xC2;
        t[n++] = c->called_tsap_len;
        memcpy(t + n, c->called_tsap, c->called_tsap_len);
        n += c->called_tsap_len;
    }
    if (c->has_calling_tsap) {
        t[n++] = 0xC1;
        t[n++] = c->calling_tsap_len;
        memcpy(t + n, c->calling_tsap, c->calling_tsap_len);
        n += c->calling_tsap_len;
    }
    t[0] = (uint8_t)(n - 1);
    if (n + MMS_TPKT_HDR > cap)
        return GS_ELIMIT;
    memcpy(out + MMS_TPKT_HDR, t, n);
    return finish(out, cap, n);
}

int mms_cotp_encode_dr(uint8_t *out, size_t cap, uint16_t dst_ref, uint16_t src_ref, uint8_t reason)
{
    uint8_t t[7] = {6,
                    MMS_COTP_DR,
                    (uint8_t)(dst_ref >> 8),
                    (uint8_t)dst_ref,
                    (uint8_t)(src_ref >> 8),
                    (uint8_t)src_ref,
                    reason};
    if (sizeof t + MMS_TPKT_HDR > cap)
        return GS_ELIMIT;
    memcpy(out + MMS_TPKT_HDR, t, sizeof t);
    return finish(out, cap, sizeof t);
}

int mms_cotp_encode_er(uint8_t *out, size_t cap, uint16_t dst_ref, uint8_t cause,
                       const uint8_t *bad, size_t bad_len)
{
    size_t n;

    if (bad_len > 250 - 6)
        bad_len = 250 - 6; /* the parameter is the rejected header; LI stays below 255 */
    if (!bad)
        bad_len = 0;
    n = 5 + (bad_len ? 2 + bad_len : 0);
    if (n + MMS_TPKT_HDR > cap)
        return GS_ELIMIT;
    out[MMS_TPKT_HDR + 0] = (uint8_t)(n - 1);
    out[MMS_TPKT_HDR + 1] = MMS_COTP_ER;
    out[MMS_TPKT_HDR + 2] = (uint8_t)(dst_ref >> 8);
    out[MMS_TPKT_HDR + 3] = (uint8_t)dst_ref;
    out[MMS_TPKT_HDR + 4] = cause;
    if (bad_len) {
        out[MMS_TPKT_HDR + 5] = 0xC1;
        out[MMS_TPKT_HDR + 6] = (uint8_t)bad_len;
        memcpy(out + MMS_TPKT_HDR + 7, bad, bad_len);
    }
    return finish(out, cap, n);
}

int mms_cotp_encode_dt(uint8_t *out, size_t cap, bool eot, const uint8_t *data, size_t n)
{
    if (n > MMS_TPKT_MAX - MMS_COTP_DT_OVERHEAD || (n && !data))
        return GS_ELIMIT;
    if (n + MMS_COTP_DT_OVERHEAD > cap)
        return GS_ELIMIT;
    out[MMS_TPKT_HDR + 0] = 2;
    out[MMS_TPKT_HDR + 1] = MMS_COTP_DT;
    out[MMS_TPKT_HDR + 2] = eot ? 0x80 : 0x00;
    if (n)
        memmove(out + MMS_COTP_DT_OVERHEAD, data, n);
    return finish(out, cap, n + 3);
}

int mms_cotp_segment(uint8_t *out, size_t cap, uint32_t tpdu_size, const uint8_t *tsdu, size_t n,
                     size_t *off, bool *last)
{
    size_t room, chunk;
    int rc;

    if (tpdu_size < 128 || tpdu_size > MMS_TPKT_MAX - MMS_TPKT_HDR || *off > n || (n && !tsdu))
        return GS_EINVAL;
    room = tpdu_size - 3; /* the DT header counts in the TPDU size */
    chunk = n - *off < room ? n - *off : room;
    rc = mms_cotp_encode_dt(out, cap, *off + chunk == n, tsdu ? tsdu + *off : NULL, chunk);
    if (rc < 0)
        return rc;
    *off += chunk;
    *last = *off == n;
    return rc;
}

void mms_cotp_reasm_init(mms_cotp_reasm_t *r, uint8_t *buf, size_t cap)
{
    r->buf = buf;
    r->cap = buf ? cap : 0;
    r->len = 0;
    r->done = false;
}

int mms_cotp_reasm_add(mms_cotp_reasm_t *r, const mms_cotp_t *dt)
{
    if (dt->type != MMS_COTP_DT)
        return GS_EINVAL;
    if (r->done) {
        r->len = 0;
        r->done = false;
    }
    if (dt->data_len > r->cap - r->len)
        return GS_ELIMIT;
    if (dt->data_len)
        memcpy(r->buf + r->len, dt->data, dt->data_len);
    r->len += dt->data_len;
    if (!dt->eot)
        return 0;
    r->done = true;
    return 1;
}
