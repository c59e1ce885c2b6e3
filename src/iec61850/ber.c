/* BER (ISO/IEC 8825-1) decoder and reverse encoder used by every layer of the MMS stack.
 * Decoding never indexes the input directly past a bound check: every octet is taken through
 * take() on a reader whose end is the enclosing element's end. */
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

#define FAIL(r, code, text)                                                                        \
    do {                                                                                           \
        (r)->why = (text);                                                                         \
        return (code);                                                                             \
    } while (0)

void mms_ber_reader_init(mms_ber_reader_t *r, const void *buf, size_t n)
{
    r->p = buf;
    r->end = r->p + (buf ? n : 0);
    r->depth = 0;
    r->max_len = MMS_BER_MAX_LEN;
    r->why = NULL;
}

/* Takes one octet at *q if q < end. */
static int take(const uint8_t **q, const uint8_t *end, uint8_t *o)
{
    if (*q >= end)
        return 0;
    *o = **q;
    (*q)++;
    return 1;
}

int mms_ber_next(mms_ber_reader_t *r, mms_tlv_t *t)
{
    const uint8_t *q = r->p;
    uint8_t o, id = 0;
    size_t len = 0;

    if (q >= r->end)
        return 0;
    memset(t, 0, sizeof *t);
    t->raw = q;
    take(&q, r->end, &id);
    t->cls = id & 0xC0;
    t->constructed = (id & MMS_BER_CONSTRUCTED) != 0;
    t->tag = id & 0x1F;
    if (t->tag == 0x1F) { /* 8.1.2.4: high tag number form */
        uint32_t tag = 0;
        int k;
        for (k = 0;; k++) {
            if (!take(&q, r->end, &o))
                FAIL(r, GS_ETRUNC, "identifier runs past the end");
            if (k == 0 && o == 0x80)
                FAIL(r, GS_EPROTO, "tag number with a leading zero group (8.1.2.4.2 c)");
            if (k >= 3)
                FAIL(r, GS_ELIMIT, "tag number above 2^21-1");
            tag = (tag << 7) | (o & 0x7F);
            if (!(o & 0x80))
                break;
        }
        if (tag < 31)
            FAIL(r, GS_EPROTO, "tag below 31 in the high tag number form (8.1.2.3)");
        t->tag = tag;
    }
    if (!take(&q, r->end, &o))
        FAIL(r, GS_ETRUNC, "length runs past the end");
    t->len_minimal = true;
    if (o < 0x80) { /* 8.1.3.4 short form */
        len = o;
    } else if (o == 0x80) { /* 8.1.3.6 indefinite form */
        FAIL(r, GS_ENOTSUP, "indefinite length (8.1.3.6) is not accepted");
    } else if (o == 0xFF) {
        FAIL(r, GS_EPROTO, "length octet 0xFF is reserved (8.1.3.5 c)");
    } else {
        unsigned k, nb = o & 0x7F;
        if (nb > 4)
            FAIL(r, GS_ELIMIT, "length of more than 4 octets");
        for (k = 0; k < nb; k++) {
            if (!take(&q, r->end, &o))
                FAIL(r, GS_ETRUNC, "length runs past the end");
            len = (len << 8) | o;
        }
        /* Long form with leading zeros or for a value below 128 is valid BER (8.1.3.5 note 2)
         * but not the minimal form our encoder writes. */
        if (len < 0x80 || (nb > 1 && (len >> (8 * (nb - 1))) == 0))
            t->len_minimal = false;
    }
    if (len > r->max_len)
        FAIL(r, GS_ELIMIT, "length above the configured maximum");
    if (len > (size_t)(r->end - q))
        FAIL(r, GS_ETRUNC, "contents run past the end of the enclosing element");
    t->val = q;
    t->len = len;
    r->p = q + len;
    r->why = NULL;
    return 1;
}

bool mms_tlv_is(const mms_tlv_t *t, uint8_t cls, bool constructed, uint32_t tag)
{
    return t->cls == cls && t->constructed == constructed && t->tag == tag;
}

int mms_ber_expect(mms_ber_reader_t *r, uint8_t cls, bool constructed, uint32_t tag, mms_tlv_t *t)
{
    const uint8_t *save = r->p;
    int rc = mms_ber_next(r, t);
    if (rc < 0)
        return rc;
    if (rc == 0)
        FAIL(r, GS_ETRUNC, "expected element missing");
    if (!mms_tlv_is(t, cls, constructed, tag)) {
        r->p = save;
        FAIL(r, GS_EPROTO, "unexpected tag");
    }
    return 0;
}

int mms_ber_enter(const mms_ber_reader_t *parent, const mms_tlv_t *t, mms_ber_reader_t *child)
{
    if (!t->constructed)
        return GS_EPROTO;
    if (parent->depth + 1 > MMS_BER_MAX_DEPTH)
        return GS_ELIMIT;
    child->p = t->val;
    child->end = t->val + t->len;
    child->depth = parent->depth + 1;
    child->max_len = parent->max_len;
    child->why = NULL;
    return 0;
}

int mms_ber_check_tree(const mms_ber_reader_t *r, const mms_tlv_t *t)
{
    /* Iterative walk with an explicit stack bounded by MMS_BER_MAX_DEPTH, so hostile nesting
     * costs neither C stack nor more than the limit. */
    mms_ber_reader_t st[MMS_BER_MAX_DEPTH + 1];
    mms_tlv_t e;
    int top = 0, rc;

    if (!t->constructed)
        return 0;
    if ((rc = mms_ber_enter(r, t, &st[0])) < 0)
        return rc;
    while (top >= 0) {
        rc = mms_ber_next(&st[top], &e);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            top--;
            continue;
        }
        if (e.constructed) {
            if (top + 1 > MMS_BER_MAX_DEPTH)
                return GS_ELIMIT;
            if ((rc = mms_ber_enter(&st[top], &e, &st[top + 1])) < 0)
                return rc;
            top++;
        }
    }
    return 0;
}

/* ---- Primitive values ---------------------------------------------------------------------- */

int mms_ber_get_int(const mms_tlv_t *t, int64_t *v)
{
    uint64_t u;
    size_t i;

    if (t->constructed || t->len == 0)
        return GS_EPROTO; /* 8.3.1: one or more octets */
    if (t->len > 1 &&
        ((t->val[0] == 0x00 && !(t->val[1] & 0x80)) || (t->val[0] == 0xFF && (t->val[1] & 0x80))))
        return GS_EPROTO; /* 8.3.2: the first nine bits shall not be all equal */
    if (t->len > 8)
        return GS_ERANGE;
    u = (t->val[0] & 0x80) ? UINT64_MAX : 0;
    for (i = 0; i < t->len; i++)
        u = (u << 8) | t->val[i];
    memcpy(v, &u, sizeof u); /* two's complement, no implementation-defined conversion */
    return 0;
}

int mms_ber_get_uint(const mms_tlv_t *t, uint64_t *v)
{
    uint64_t u = 0;
    size_t i;

    if (t->constructed || t->len == 0)
        return GS_EPROTO;
    if (t->len > 1 && t->val[0] == 0x00 && !(t->val[1] & 0x80))
        return GS_EPROTO; /* 8.3.2 */
    if (t->val[0] & 0x80)
        return GS_ERANGE; /* negative */
    if (t->len > 9 || (t->len == 9 && t->val[0] != 0))
        return GS_ERANGE;
    for (i = 0; i < t->len; i++)
        u = (u << 8) | t->val[i];
    *v = u;
    return 0;
}

int mms_ber_get_i32(const mms_tlv_t *t, int32_t *v)
{
    int64_t x;
    int rc = mms_ber_get_int(t, &x);
    if (rc < 0)
        return rc;
    if (x < INT32_MIN || x > INT32_MAX)
        return GS_ERANGE;
    *v = (int32_t)x;
    return 0;
}

int mms_ber_get_u32(const mms_tlv_t *t, uint32_t *v)
{
    uint64_t x;
    int rc = mms_ber_get_uint(t, &x);
    if (rc < 0)
        return rc;
    if (x > UINT32_MAX)
        return GS_ERANGE;
    *v = (uint32_t)x;
    return 0;
}

int mms_ber_get_bool(const mms_tlv_t *t, bool *v)
{
    if (t->constructed || t->len != 1)
        return GS_EPROTO; /* 8.2.1 */
    *v = t->val[0] != 0;  /* 8.2.2: any non-zero octet is TRUE in BER */
    return 0;
}

int mms_ber_get_null(const mms_tlv_t *t)
{
    return (t->constructed || t->len != 0) ? GS_EPROTO : 0; /* 8.8.2 */
}

int mms_ber_get_bits(const mms_tlv_t *t, const uint8_t **bits, size_t *nbits)
{
    uint8_t unused;

    if (t->constructed || t->len == 0)
        return GS_EPROTO; /* 8.6.2: the initial octet is always there */
    unused = t->val[0];
    if (unused > 7 || (t->len == 1 && unused != 0))
        return GS_EPROTO; /* 8.6.2.2, 8.6.2.3 */
    *bits = t->val + 1;
    *nbits = (t->len - 1) * 8 - unused;
    return 0;
}

bool mms_bits_get(const uint8_t *bits, size_t nbits, size_t i)
{
    if (i >= nbits)
        return false;
    return (bits[i / 8] >> (7 - i % 8)) & 1;
}

int mms_ber_get_octets(const mms_tlv_t *t, size_t max, const uint8_t **p, size_t *n)
{
    if (t->constructed)
        return GS_EPROTO; /* the constructed form (8.7.3) is not used by MMS peers */
    if (t->len > max)
        return GS_ELIMIT;
    *p = t->val;
    *n = t->len;
    return 0;
}

int mms_ber_get_visible(const mms_tlv_t *t, char *out, size_t cap)
{
    size_t i;

    if (t->constructed)
        return GS_EPROTO;
    if (cap == 0 || t->len > cap - 1)
        return GS_ELIMIT;
    for (i = 0; i < t->len; i++) {
        if (t->val[i] < 0x20 || t->val[i] > 0x7E)
            return GS_EPROTO;
        out[i] = (char)t->val[i];
    }
    out[t->len] = '\0';
    return 0;
}

int mms_ber_get_mmsstring(const mms_tlv_t *t, size_t max, const uint8_t **p, size_t *n)
{
    size_t i = 0;

    if (t->constructed)
        return GS_EPROTO;
    if (t->len > max)
        return GS_ELIMIT;
    while (i < t->len) { /* RFC 3629 section 4 */
        uint8_t c = t->val[i];
        size_t k, more;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return GS_EPROTO;
        }
        if (more > t->len - i - 1)
            return GS_EPROTO;
        for (k = 1; k <= more; k++) {
            uint8_t d = t->val[i + k];
            if ((d & 0xC0) != 0x80)
                return GS_EPROTO;
            cp = (cp << 6) | (d & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return GS_EPROTO;
        i += more + 1;
    }
    *p = t->val;
    *n = t->len;
    return 0;
}

int mms_ber_get_oid(const mms_tlv_t *t, mms_oid_t *oid)
{
    size_t i;
    uint32_t sub = 0;
    bool first = true, in_sub = false;

    if (t->constructed || t->len == 0)
        return GS_EPROTO; /* 8.19.1 */
    oid->n = 0;
    for (i = 0; i < t->len; i++) {
        uint8_t o = t->val[i];
        if (!in_sub && o == 0x80)
            return GS_EPROTO; /* 8.19.2: subidentifiers in the fewest octets */
        if (sub > (UINT32_MAX >> 7))
            return GS_ERANGE;
        sub = (sub << 7) | (o & 0x7F);
        in_sub = (o & 0x80) != 0;
        if (in_sub)
            continue;
        if (first) { /* 8.19.4: the first subidentifier packs two arcs */
            uint32_t a = sub < 40 ? 0 : sub < 80 ? 1 : 2;
            oid->arc[0] = a;
            oid->arc[1] = sub - 40 * a;
            oid->n = 2;
            first = false;
        } else {
            if (oid->n >= MMS_OID_MAX_ARCS)
                return GS_ELIMIT;
            oid->arc[oid->n++] = sub;
        }
        sub = 0;
    }
    if (in_sub)
        return GS_EPROTO; /* last subidentifier unfinished */
    return 0;
}

bool mms_oid_eq(const mms_oid_t *a, const uint32_t *arcs, unsigned n)
{
    unsigned i;
    if (a->n != n)
        return false;
    for (i = 0; i < n; i++)
        if (a->arc[i] != arcs[i])
            return false;
    return true;
}

int mms_ber_get_utctime(const mms_tlv_t *t, mms_utctime_t *v)
{
    const uint8_t *b = t->val;
    if (t->constructed || t->len != 8)
        return GS_EPROTO; /* IEC 61850-8-1 8.1.3.7: exactly 8 octets */
    v->secs = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    v->frac = ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 8) | b[6];
    v->quality = b[7];
    return 0;
}

int mms_ber_get_bintime(const mms_tlv_t *t, mms_bintime_t *v)
{
    const uint8_t *b = t->val;
    if (t->constructed || (t->len != 4 && t->len != 6))
        return GS_EPROTO; /* ISO 9506-2 TimeOfDay: 4 or 6 octets */
    v->ms = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    if (v->ms >= 86400000u)
        return GS_ERANGE;
    v->has_days = t->len == 6;
    v->days = v->has_days ? (uint16_t)((b[4] << 8) | b[5]) : 0;
    return 0;
}

int mms_ber_get_float(const mms_tlv_t *t, double *v, bool *is_double)
{
    const uint8_t *b = t->val;
    if (t->constructed || t->len == 0)
        return GS_EPROTO;
    if (t->len == 5 && b[0] == 8) { /* ISO 9506-2 FloatingPoint: exponent width 8, single */
        uint32_t u = ((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 8) | b[4];
        float f;
        memcpy(&f, &u, sizeof f);
        *v = f;
        *is_double = false;
        return 0;
    }
    if (t->len == 9 && b[0] == 11) { /* exponent width 11, double */
        uint64_t u = 0;
        int i;
        for (i = 1; i < 9; i++)
            u = (u << 8) | b[i];
        memcpy(v, &u, sizeof u);
        *is_double = true;
        return 0;
    }
    if (t->len == 5 || t->len == 9)
        return GS_ENOTSUP; /* other exponent widths: no IEEE type to map them to */
    return GS_EPROTO;
}

/* ---- Reverse writer ------------------------------------------------------------------------ */

void mms_bw_init(mms_ber_writer_t *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->pos = w->cap;
    w->err = 0;
}

size_t mms_bw_mark(const mms_ber_writer_t *w)
{
    return w->pos;
}

size_t mms_bw_len(const mms_ber_writer_t *w)
{
    return w->cap - w->pos;
}

const uint8_t *mms_bw_data(const mms_ber_writer_t *w)
{
    return w->buf + w->pos;
}

void mms_bw_raw(mms_ber_writer_t *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > w->pos) {
        w->err = GS_ELIMIT;
        return;
    }
    w->pos -= n;
    if (n)
        memcpy(w->buf + w->pos, p, n);
}

static void put1(mms_ber_writer_t *w, uint8_t o)
{
    mms_bw_raw(w, &o, 1);
}

void mms_bw_hdr(mms_ber_writer_t *w, uint8_t cls_cons, uint32_t tag, size_t len)
{
    uint8_t tmp[16];
    int n = 0;

    if (len > 0xFFFFFFFFu) {
        w->err = w->err ? w->err : GS_ELIMIT;
        return;
    }
    /* length, written back to front: 8.1.3.4 short form or 8.1.3.5 minimal long form */
    if (len < 0x80) {
        tmp[15 - n++] = (uint8_t)len;
    } else {
        size_t l = len;
        int k = 0;
        while (l) {
            tmp[15 - n++] = (uint8_t)l;
            l >>= 8;
            k++;
        }
        tmp[15 - n++] = (uint8_t)(0x80 | k);
    }
    if (tag < 31) {
        tmp[15 - n++] = (uint8_t)(cls_cons | tag);
    } else {
        uint32_t x = tag;
        tmp[15 - n++] = (uint8_t)(x & 0x7F);
        x >>= 7;
        while (x) {
            tmp[15 - n++] = (uint8_t)(0x80 | (x & 0x7F));
            x >>= 7;
        }
        tmp[15 - n++] = (uint8_t)(cls_cons | 0x1F);
    }
    mms_bw_raw(w, tmp + 16 - n, (size_t)n);
}

void mms_bw_wrap(mms_ber_writer_t *w, uint8_t cls_cons, uint32_t tag, size_t mark)
{
    if (w->err)
        return;
    mms_bw_hdr(w, (uint8_t)(cls_cons | MMS_BER_CONSTRUCTED), tag, mark - w->pos);
}

void mms_bw_int(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, int64_t v)
{
    uint8_t b[8];
    uint64_t u;
    int n = 8;

    memcpy(&u, &v, sizeof u);
    for (int i = 7; i >= 0; i--, u >>= 8)
        b[i] = (uint8_t)u;
    /* 8.3.2: drop leading octets while the first nine bits are equal */
    while (n > 1 &&
           ((b[8 - n] == 0x00 && !(b[9 - n] & 0x80)) || (b[8 - n] == 0xFF && (b[9 - n] & 0x80))))
        n--;
    mms_bw_raw(w, b + 8 - n, (size_t)n);
    mms_bw_hdr(w, cls, tag, (size_t)n);
}

void mms_bw_uint(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, uint64_t v)
{
    uint8_t b[9];
    int n = 9;

    b[0] = 0;
    for (int i = 8; i >= 1; i--, v >>= 8)
        b[i] = (uint8_t)v;
    while (n > 1 && b[9 - n] == 0x00 && !(b[10 - n] & 0x80))
        n--;
    mms_bw_raw(w, b + 9 - n, (size_t)n);
    mms_bw_hdr(w, cls, tag, (size_t)n);
}

void mms_bw_bool(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, bool v)
{
    put1(w, v ? 0xFF : 0x00); /* the DER value; any non-zero is TRUE on decode */
    mms_bw_hdr(w, cls, tag, 1);
}

void mms_bw_null(mms_ber_writer_t *w, uint8_t cls, uint32_t tag)
{
    mms_bw_hdr(w, cls, tag, 0);
}

void mms_bw_octets(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const void *p, size_t n)
{
    mms_bw_raw(w, p, n);
    mms_bw_hdr(w, cls, tag, n);
}

void mms_bw_bits(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const uint8_t *bits, size_t nbits)
{
    size_t nbytes = (nbits + 7) / 8;
    uint8_t unused = (uint8_t)(nbytes * 8 - nbits);

    if (w->err)
        return;
    if (nbytes > w->pos) {
        w->err = GS_ELIMIT;
        return;
    }
    mms_bw_raw(w, bits, nbytes);
    if (unused && !w->err) /* 8.6.2.4 (DER 11.2.1): unused bits are zero */
        w->buf[w->pos + nbytes - 1] &= (uint8_t)(0xFF << unused);
    put1(w, unused);
    mms_bw_hdr(w, cls, tag, nbytes + 1);
}

void mms_bw_oid(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const uint32_t *arcs, unsigned n)
{
    size_t mark = w->pos;
    unsigned i;

    if (n < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) || arcs[1] > UINT32_MAX - 80) {
        w->err = w->err ? w->err : GS_EINVAL;
        return;
    }
    for (i = n; i-- > 1;) { /* 8.19.2, back to front */
        uint32_t x = i == 1 ? arcs[0] * 40 + arcs[1] : arcs[i];
        put1(w, (uint8_t)(x & 0x7F));
        for (x >>= 7; x; x >>= 7)
            put1(w, (uint8_t)(0x80 | (x & 0x7F)));
    }
    if (!w->err)
        mms_bw_hdr(w, cls, tag, mark - w->pos);
}

void mms_bw_utctime(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const mms_utctime_t *v)
{
    uint8_t b[8] = {(uint8_t)(v->secs >> 24), (uint8_t)(v->secs >> 16),
                    (uint8_t)(v->secs >> 8),  (uint8_t)v->secs,
                    (uint8_t)(v->frac >> 16), (uint8_t)(v->frac >> 8),
                    (uint8_t)v->frac,         v->quality};
    mms_bw_octets(w, cls, tag, b, 8);
}

void mms_bw_bintime(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const mms_bintime_t *v)
{
    uint8_t b[6] = {(uint8_t)(v->ms >> 24), (uint8_t)(v->ms >> 16),  (uint8_t)(v->ms >> 8),
                    (uint8_t)v->ms,         (uint8_t)(v->days >> 8), (uint8_t)v->days};
    mms_bw_octets(w, cls, tag, b, v->has_days ? 6 : 4);
}

void mms_bw_float(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, double v, bool is_double)
{
    uint8_t b[9];
    if (is_double) {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        b[0] = 11;
        for (int i = 8; i >= 1; i--, u >>= 8)
            b[i] = (uint8_t)u;
        mms_bw_octets(w, cls, tag, b, 9);
    } else {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        b[0] = 8;
        for (int i = 4; i >= 1; i--, u >>= 8)
            b[i] = (uint8_t)u;
        mms_bw_octets(w, cls, tag, b, 5);
    }
}
