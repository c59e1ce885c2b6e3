/* GSTP wire codec: framing, resynchronising decoder, TLV lists, message encoders and parsers.
 * The contract is gstp.h; the wire format is docs/protocol.md.
 *
 * Portable C99: no malloc, no I/O, no mutable globals. Every read of wire bytes goes through a
 * bounded cursor (rd_t) whose errors are sticky, so a short payload can never be over-read; every
 * write goes through a bounded writer (wr_t). Bytes from outside are checked and produce an error
 * code, never an assert. */
#include "gstp/gstp.h"
#include "wcodec/wcodec.h"

#include <string.h>

/* The codec moves IEEE 754 binary32 values through uint32_t with memcpy. */
typedef char gstp_float_is_32_bits[(sizeof(float) == sizeof(uint32_t)) ? 1 : -1];

#define MAX_SAMPLE_RATE 100000u
#define MAX_TQ          3u /* gstp_time_quality_t */
#define MAX_TS          4u /* gstp_time_source_t */

/* ---- Bounded little-endian reader --------------------------------------------------------- */

typedef struct {
    const uint8_t *p; /* bytes being read */
    size_t n;         /* their count */
    size_t off;       /* next byte to read */
    int err;          /* sticky: set when a read would run past n */
} rd_t;

static void rd_init(rd_t *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->n = n;
    r->off = 0;
    r->err = 0;
}

/* Returns a pointer to the next k bytes and advances, or NULL (and sets err) if fewer remain. */
static const uint8_t *rd_take(rd_t *r, size_t k)
{
    const uint8_t *q;

    if (r->err || k > r->n - r->off) {
        r->err = 1;
        return NULL;
    }
    q = r->p + r->off;
    r->off += k;
    return q;
}

static size_t rd_left(const rd_t *r)
{
    return r->err ? 0 : r->n - r->off;
}

static uint8_t rd_u8(rd_t *r)
{
    const uint8_t *q = rd_take(r, 1);
    return q ? q[0] : 0;
}

static uint16_t rd_u16(rd_t *r)
{
    const uint8_t *q = rd_take(r, 2);
    return q ? (uint16_t)(q[0] | (uint16_t)q[1] << 8) : 0;
}

static uint32_t rd_u32(rd_t *r)
{
    const uint8_t *q = rd_take(r, 4);
    return q ? (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24
             : 0;
}

static uint64_t rd_u64(rd_t *r)
{
    uint64_t lo = rd_u32(r);
    uint64_t hi = rd_u32(r);
    return r->err ? 0 : lo | hi << 32;
}

/* Two's complement conversions without implementation-defined behaviour. */
static int16_t to_i16(uint16_t v)
{
    return v <= INT16_MAX ? (int16_t)v : (int16_t)(-(int32_t)(UINT16_MAX - v) - 1);
}

static int64_t to_i64(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(UINT64_MAX - v) - 1;
}

static int16_t rd_i16(rd_t *r)
{
    return to_i16(rd_u16(r));
}

static int64_t rd_i64(rd_t *r)
{
    return to_i64(rd_u64(r));
}

/* Stand-alone little-endian loads for buffers whose length was already checked. */
static uint16_t ld_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void st_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- Bounded little-endian writer --------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t cap;
    size_t off;
    int err; /* sticky: set when a write would run past cap */
} wr_t;

static void wr_init(wr_t *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->cap = cap;
    w->off = 0;
    w->err = 0;
}

/* Returns a pointer to the next k bytes of space and advances, or NULL (and sets err). */
static uint8_t *wr_take(wr_t *w, size_t k)
{
    uint8_t *q;

    if (w->err || k > w->cap - w->off) {
        w->err = 1;
        return NULL;
    }
    q = w->p + w->off;
    w->off += k;
    return q;
}

static void wr_u8(wr_t *w, uint8_t v)
{
    uint8_t *q = wr_take(w, 1);
    if (q)
        q[0] = v;
}

static void wr_u16(wr_t *w, uint16_t v)
{
    uint8_t *q = wr_take(w, 2);
    if (q)
        st_u16(q, v);
}

static void wr_u32(wr_t *w, uint32_t v)
{
    uint8_t *q = wr_take(w, 4);
    if (q)
        st_u32(q, v);
}

static void wr_u64(wr_t *w, uint64_t v)
{
    wr_u32(w, (uint32_t)v);
    wr_u32(w, (uint32_t)(v >> 32));
}

static void wr_i16(wr_t *w, int16_t v)
{
    wr_u16(w, (uint16_t)v);
}

static void wr_i64(wr_t *w, int64_t v)
{
    wr_u64(w, (uint64_t)v);
}

static void wr_bytes(wr_t *w, const void *src, size_t k)
{
    uint8_t *q = wr_take(w, k);
    if (q && k)
        memcpy(q, src, k);
}

/* ---- Small helpers -------------------------------------------------------------------------- */

static unsigned popcount32(uint32_t v)
{
    unsigned c = 0;
    while (v) {
        v &= v - 1;
        c++;
    }
    return c;
}

/* Finite and > 0, tested on the bit pattern (no floating point needed on the MCU). */
static int f32_bits_positive_finite(uint32_t b)
{
    return (b >> 31) == 0 && ((b >> 23) & 0xFFu) != 0xFFu && b != 0;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float f32_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Length of a NUL-terminated string in a fixed array of cap bytes, or cap if unterminated. */
static size_t bounded_strlen(const char *s, size_t cap)
{
    const char *z = (const char *)memchr(s, 0, cap);
    return z ? (size_t)(z - s) : cap;
}

/* Copies n wire bytes into out as a NUL-terminated string. GSTP_E_RANGE if n >= cap or the bytes
 * contain a NUL (strings on the wire carry their length and never a NUL). */
static int copy_wire_str(char *out, size_t cap, const uint8_t *p, size_t n)
{
    if (n >= cap || (n && memchr(p, 0, n)))
        return GSTP_E_RANGE;
    if (n)
        memcpy(out, p, n);
    out[n] = '\0';
    return GSTP_OK;
}

/* Checks that buf[0..n) is a well-formed TLV list. */
static int tlv_check(const uint8_t *buf, size_t n)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    int rc;

    gstp_tlv_iter_init(&it, buf, n);
    while ((rc = gstp_tlv_next(&it, &t)) == 1)
        ;
    return rc;
}

static int valid_version(unsigned v)
{
    return v >= 1 && v <= 127;
}

/* ---- Framing -------------------------------------------------------------------------------- */

/* Header check: low 16 bits of CRC-32C over header bytes 0..7. It lets the decoder reject a false
 * magic in garbage before waiting for up to GSTP_MAX_PAYLOAD bytes of a "frame" that is not one. */
static uint16_t header_check(const uint8_t *hdr)
{
    return (uint16_t)(gstp_crc32c(0, hdr, 8) & 0xFFFFu);
}

int gstp_frame_write(uint8_t *out, size_t cap, uint8_t type, uint8_t flags, const uint8_t *payload,
                     size_t len)
{
    size_t total;

    if (!out || (len && !payload))
        return GSTP_E_ARG;
    if (len > GSTP_MAX_PAYLOAD)
        return GSTP_E_RANGE;
    total = GSTP_HEADER_LEN + len + GSTP_TRAILER_LEN;
    if (cap < total)
        return GSTP_E_SPACE;
    if (len && payload != out + GSTP_HEADER_LEN)
        memmove(out + GSTP_HEADER_LEN, payload, len);
    out[0] = GSTP_MAGIC0;
    out[1] = GSTP_MAGIC1;
    out[2] = GSTP_VERSION;
    out[3] = type;
    out[4] = flags;
    out[5] = 0;
    st_u16(out + 6, (uint16_t)len);
    st_u16(out + 8, header_check(out));
    st_u32(out + GSTP_HEADER_LEN + len, gstp_crc32c(0, out, GSTP_HEADER_LEN + len));
    return (int)total;
}

/* Validates a candidate header at h[0..GSTP_HEADER_LEN). Returns 1 if acceptable. */
static int header_ok(const uint8_t *h)
{
    return h[0] == GSTP_MAGIC0 && h[1] == GSTP_MAGIC1 && valid_version(h[2]) && h[5] == 0 &&
           ld_u16(h + 6) <= GSTP_MAX_PAYLOAD && ld_u16(h + 8) == header_check(h);
}

int gstp_frame_set_flags(uint8_t *frame, size_t len, uint8_t flags)
{
    size_t plen;

    if (!frame || len < GSTP_HEADER_LEN + GSTP_TRAILER_LEN || !header_ok(frame))
        return GSTP_E_ARG;
    plen = ld_u16(frame + 6);
    if (len != GSTP_HEADER_LEN + plen + GSTP_TRAILER_LEN ||
        ld_u32(frame + GSTP_HEADER_LEN + plen) != gstp_crc32c(0, frame, GSTP_HEADER_LEN + plen))
        return GSTP_E_ARG;
    frame[4] = flags;
    st_u16(frame + 8, header_check(frame));
    st_u32(frame + GSTP_HEADER_LEN + plen, gstp_crc32c(0, frame, GSTP_HEADER_LEN + plen));
    return GSTP_OK;
}

int gstp_decoder_init(gstp_decoder_t *d, uint8_t *buf, size_t cap)
{
    if (!d || !buf || cap < GSTP_MAX_FRAME)
        return GSTP_E_ARG;
    memset(d, 0, sizeof *d);
    d->buf = buf;
    d->cap = cap;
    return GSTP_OK;
}

size_t gstp_decoder_feed(gstp_decoder_t *d, const uint8_t *data, size_t n)
{
    size_t room;

    if (!d || !data || n == 0)
        return 0;
    if (d->start == d->end) {
        d->start = d->end = 0;
    } else if (d->start > 0 && d->cap - d->end < n) {
        /* Compact only when the tail is too small: with a 2x buffer this is rare. */
        memmove(d->buf, d->buf + d->start, d->end - d->start);
        d->end -= d->start;
        d->start = 0;
    }
    room = d->cap - d->end;
    if (n > room)
        n = room;
    memcpy(d->buf + d->end, data, n);
    d->end += n;
    return n;
}

/* Discards k bytes at the front of the buffered data as garbage. */
static void skip(gstp_decoder_t *d, size_t k)
{
    d->start += k;
    d->stats.skipped_bytes += k;
    if (d->start == d->end)
        d->start = d->end = 0;
}

int gstp_decoder_next(gstp_decoder_t *d, gstp_frame_t *out)
{
    if (!d || !out)
        return GSTP_NEED_MORE;
    for (;;) {
        const uint8_t *base = d->buf + d->start;
        size_t avail = d->end - d->start;
        const uint8_t *m;
        size_t len, total;

        if (avail == 0)
            return GSTP_NEED_MORE;
        m = (const uint8_t *)memchr(base, GSTP_MAGIC0, avail);
        if (!m) {
            skip(d, avail); /* no frame can start in these bytes */
            return GSTP_NEED_MORE;
        }
        skip(d, (size_t)(m - base));
        base = d->buf + d->start;
        avail = d->end - d->start;
        if (avail < 2)
            return GSTP_NEED_MORE; /* a lone trailing 0xC5 may be the start of a frame */
        if (base[1] != GSTP_MAGIC1) {
            skip(d, 1);
            continue;
        }
        /* Reject a false magic as early as its bytes allow, so garbage is not held back. */
        if ((avail > 2 && !valid_version(base[2])) || (avail > 5 && base[5] != 0) ||
            (avail > 7 && ld_u16(base + 6) > GSTP_MAX_PAYLOAD)) {
            d->stats.header_errors++;
            skip(d, 1);
            continue;
        }
        if (avail < GSTP_HEADER_LEN)
            return GSTP_NEED_MORE;
        if (!header_ok(base)) {
            d->stats.header_errors++;
            skip(d, 1);
            continue;
        }
        len = ld_u16(base + 6);
        total = GSTP_HEADER_LEN + len + GSTP_TRAILER_LEN;
        if (avail < total)
            return GSTP_NEED_MORE; /* total <= GSTP_MAX_FRAME <= cap, so it will fit */
        if (ld_u32(base + GSTP_HEADER_LEN + len) != gstp_crc32c(0, base, GSTP_HEADER_LEN + len)) {
            /* A real frame may begin inside the damaged one (bytes lost mid-frame). */
            d->stats.crc_errors++;
            skip(d, 1);
            continue;
        }
        out->version = base[2];
        out->type = base[3];
        out->flags = base[4];
        out->len = (uint16_t)len;
        out->payload = base + GSTP_HEADER_LEN;
        d->start += total;
        d->stats.frames++;
        /* The indexes may be reset; the bytes stay in place until the next feed. */
        if (d->start == d->end)
            d->start = d->end = 0;
        return GSTP_FRAME;
    }
}

size_t gstp_decoder_pending(const gstp_decoder_t *d)
{
    return d ? d->end - d->start : 0;
}

/* ---- TLV ------------------------------------------------------------------------------------ */

void gstp_tlv_iter_init(gstp_tlv_iter_t *it, const uint8_t *buf, size_t n)
{
    it->buf = buf;
    it->n = buf ? n : 0;
    it->off = 0;
}

int gstp_tlv_next(gstp_tlv_iter_t *it, gstp_tlv_t *out)
{
    size_t left;
    uint16_t len;

    if (it->off >= it->n)
        return 0;
    left = it->n - it->off;
    if (left < 3)
        return GSTP_E_TLV;
    len = ld_u16(it->buf + it->off + 1);
    if (len > left - 3)
        return GSTP_E_TLV;
    out->tag = it->buf[it->off];
    out->len = len;
    out->value = it->buf + it->off + 3;
    it->off += 3 + (size_t)len;
    return 1;
}

void gstp_tlv_writer_init(gstp_tlv_writer_t *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->err = GSTP_OK;
}

void gstp_tlv_put(gstp_tlv_writer_t *w, uint8_t tag, const void *value, uint16_t len)
{
    if (w->err)
        return;
    if (len && !value) {
        w->err = GSTP_E_ARG;
        return;
    }
    if (w->cap - w->len < 3 + (size_t)len) {
        w->err = GSTP_E_SPACE;
        return;
    }
    w->buf[w->len] = tag;
    st_u16(w->buf + w->len + 1, len);
    if (len)
        memcpy(w->buf + w->len + 3, value, len);
    w->len += 3 + (size_t)len;
}

void gstp_tlv_put_u8(gstp_tlv_writer_t *w, uint8_t tag, uint8_t v)
{
    gstp_tlv_put(w, tag, &v, 1);
}

void gstp_tlv_put_u16(gstp_tlv_writer_t *w, uint8_t tag, uint16_t v)
{
    uint8_t b[2];
    st_u16(b, v);
    gstp_tlv_put(w, tag, b, sizeof b);
}

void gstp_tlv_put_u32(gstp_tlv_writer_t *w, uint8_t tag, uint32_t v)
{
    uint8_t b[4];
    st_u32(b, v);
    gstp_tlv_put(w, tag, b, sizeof b);
}

void gstp_tlv_put_u64(gstp_tlv_writer_t *w, uint8_t tag, uint64_t v)
{
    uint8_t b[8];
    st_u32(b, (uint32_t)v);
    st_u32(b + 4, (uint32_t)(v >> 32));
    gstp_tlv_put(w, tag, b, sizeof b);
}

void gstp_tlv_put_i64(gstp_tlv_writer_t *w, uint8_t tag, int64_t v)
{
    gstp_tlv_put_u64(w, tag, (uint64_t)v);
}

void gstp_tlv_put_str(gstp_tlv_writer_t *w, uint8_t tag, const char *s)
{
    size_t n;

    if (w->err)
        return;
    if (!s) {
        w->err = GSTP_E_ARG;
        return;
    }
    n = strlen(s);
    if (n > UINT16_MAX) {
        w->err = GSTP_E_SPACE;
        return;
    }
    gstp_tlv_put(w, tag, s, (uint16_t)n);
}

int gstp_tlv_u8(const gstp_tlv_t *t, uint8_t *v)
{
    if (t->len != 1)
        return GSTP_E_RANGE;
    *v = t->value[0];
    return GSTP_OK;
}

int gstp_tlv_u16(const gstp_tlv_t *t, uint16_t *v)
{
    if (t->len != 2)
        return GSTP_E_RANGE;
    *v = ld_u16(t->value);
    return GSTP_OK;
}

int gstp_tlv_u32(const gstp_tlv_t *t, uint32_t *v)
{
    if (t->len != 4)
        return GSTP_E_RANGE;
    *v = ld_u32(t->value);
    return GSTP_OK;
}

int gstp_tlv_u64(const gstp_tlv_t *t, uint64_t *v)
{
    if (t->len != 8)
        return GSTP_E_RANGE;
    *v = (uint64_t)ld_u32(t->value) | (uint64_t)ld_u32(t->value + 4) << 32;
    return GSTP_OK;
}

int gstp_tlv_i64(const gstp_tlv_t *t, int64_t *v)
{
    uint64_t u;
    int rc = gstp_tlv_u64(t, &u);
    if (rc == GSTP_OK)
        *v = to_i64(u);
    return rc;
}

int gstp_tlv_str(const gstp_tlv_t *t, char *out, size_t cap)
{
    if (!out || cap == 0)
        return GSTP_E_ARG;
    return copy_wire_str(out, cap, t->value, t->len);
}

int gstp_tlv_find(const uint8_t *buf, size_t n, uint8_t tag, gstp_tlv_t *out)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    int rc, found = 0;

    /* The whole list is checked, so "found" never hides a malformed tail. */
    gstp_tlv_iter_init(&it, buf, n);
    while ((rc = gstp_tlv_next(&it, &t)) == 1) {
        if (!found && t.tag == tag) {
            *out = t;
            found = 1;
        }
    }
    return rc < 0 ? rc : found;
}

/* ---- Encoders ------------------------------------------------------------------------------- */

/* Starts a payload in place at out + GSTP_HEADER_LEN, bounded by both cap and GSTP_MAX_PAYLOAD.
 * Returns 0, or GSTP_E_SPACE if not even an empty frame fits. */
static int payload_begin(wr_t *w, uint8_t *out, size_t cap)
{
    size_t room;

    if (!out)
        return GSTP_E_ARG;
    if (cap < GSTP_HEADER_LEN + GSTP_TRAILER_LEN)
        return GSTP_E_SPACE;
    room = cap - GSTP_HEADER_LEN - GSTP_TRAILER_LEN;
    wr_init(w, out + GSTP_HEADER_LEN, room < GSTP_MAX_PAYLOAD ? room : GSTP_MAX_PAYLOAD);
    return 0;
}

/* Finishes a payload built with payload_begin into a frame. */
static int payload_end(wr_t *w, uint8_t *out, size_t cap, uint8_t type)
{
    if (w->err)
        return w->cap < GSTP_MAX_PAYLOAD ? GSTP_E_SPACE : GSTP_E_RANGE;
    return gstp_frame_write(out, cap, type, 0, w->p, w->off);
}

/* Validates a NUL-terminated string field of a message struct (array of cap bytes) and returns
 * its length through *n. Terminal ids use gstp_valid_id instead. */
static int str_field(const char *s, size_t cap, size_t *n)
{
    *n = bounded_strlen(s, cap);
    return *n < cap && *n <= GSTP_MAX_STR ? GSTP_OK : GSTP_E_RANGE;
}

static int channel_ok(const gstp_channel_t *c)
{
    return c->index < GSTP_MAX_CHANNELS &&
           (c->kind == GSTP_KIND_VOLTAGE || c->kind == GSTP_KIND_CURRENT) && c->phase >= 1 &&
           c->phase <= GSTP_PHASE_N && (c->unit == GSTP_UNIT_V || c->unit == GSTP_UNIT_A) &&
           f32_bits_positive_finite(f32_to_bits(c->scale));
}

/* Optional ratio: 0 = not reported, otherwise finite and > 0. */
static int ratio_ok(uint32_t bits)
{
    return bits == 0 || f32_bits_positive_finite(bits);
}

int gstp_encode_hello(uint8_t *out, size_t cap, const gstp_hello_t *m)
{
    static const uint8_t str_tags[4] = {GSTP_HT_FW_VERSION, GSTP_HT_HW_VERSION, GSTP_HT_IMEI,
                                        GSTP_HT_ICCID};
    const char *strs[4];
    uint32_t seen = 0;
    wr_t w;
    size_t n;
    unsigned i;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (!valid_version(m->version_min) || !valid_version(m->version_max) ||
        m->version_min > m->version_max)
        return GSTP_E_RANGE;
    if (bounded_strlen(m->terminal_id, sizeof m->terminal_id) == sizeof m->terminal_id ||
        !gstp_valid_id(m->terminal_id))
        return GSTP_E_RANGE;
    if (m->sample_rate < 1 || m->sample_rate > MAX_SAMPLE_RATE ||
        (m->nominal_hz != 50 && m->nominal_hz != 60))
        return GSTP_E_RANGE;
    if (!ratio_ok(f32_to_bits(m->vt_ratio)) || !ratio_ok(f32_to_bits(m->ct_ratio)))
        return GSTP_E_RANGE;
    if (m->nchannels < 1 || m->nchannels > GSTP_MAX_CHANNELS)
        return GSTP_E_RANGE;
    for (i = 0; i < m->nchannels; i++) {
        const gstp_channel_t *c = &m->channels[i];
        if (!channel_ok(c) || (seen & (1u << c->index)) ||
            str_field(c->name, sizeof c->name, &n) != GSTP_OK)
            return GSTP_E_RANGE;
        seen |= 1u << c->index;
    }
    strs[0] = m->fw_version;
    strs[1] = m->hw_version;
    strs[2] = m->imei;
    strs[3] = m->iccid;
    for (i = 0; i < 4; i++)
        if (str_field(strs[i], GSTP_MAX_STR + 1, &n) != GSTP_OK)
            return GSTP_E_RANGE;

    wr_u8(&w, m->version_min);
    wr_u8(&w, m->version_max);
    wr_u16(&w, 0);
    n = strlen(m->terminal_id);
    wr_u8(&w, GSTP_HT_TERMINAL_ID);
    wr_u16(&w, (uint16_t)n);
    wr_bytes(&w, m->terminal_id, n);
    for (i = 0; i < 4; i++) {
        n = strlen(strs[i]);
        if (n == 0)
            continue; /* absent and empty are the same to the receiver */
        wr_u8(&w, str_tags[i]);
        wr_u16(&w, (uint16_t)n);
        wr_bytes(&w, strs[i], n);
    }
    wr_u8(&w, GSTP_HT_SAMPLE_RATE);
    wr_u16(&w, 4);
    wr_u32(&w, m->sample_rate);
    wr_u8(&w, GSTP_HT_NOMINAL_HZ);
    wr_u16(&w, 1);
    wr_u8(&w, m->nominal_hz);
    if (f32_to_bits(m->vt_ratio)) {
        wr_u8(&w, GSTP_HT_VT_RATIO);
        wr_u16(&w, 4);
        wr_u32(&w, f32_to_bits(m->vt_ratio));
    }
    if (f32_to_bits(m->ct_ratio)) {
        wr_u8(&w, GSTP_HT_CT_RATIO);
        wr_u16(&w, 4);
        wr_u32(&w, f32_to_bits(m->ct_ratio));
    }
    wr_u8(&w, GSTP_HT_TIME_SOURCE);
    wr_u16(&w, 1);
    wr_u8(&w, m->time_source);
    wr_u8(&w, GSTP_HT_TIME_QUALITY);
    wr_u16(&w, 1);
    wr_u8(&w, m->time_quality);
    if (m->buffer_blocks) {
        wr_u8(&w, GSTP_HT_BUFFER_BLOCKS);
        wr_u16(&w, 4);
        wr_u32(&w, m->buffer_blocks);
    }
    for (i = 0; i < m->nchannels; i++) {
        const gstp_channel_t *c = &m->channels[i];
        n = strlen(c->name);
        wr_u8(&w, GSTP_HT_CHANNEL);
        wr_u16(&w, (uint16_t)(8 + n));
        wr_u8(&w, c->index);
        wr_u8(&w, c->kind);
        wr_u8(&w, c->phase);
        wr_u8(&w, c->unit);
        wr_u32(&w, f32_to_bits(c->scale));
        wr_bytes(&w, c->name, n);
    }
    return payload_end(&w, out, cap, GSTP_HELLO);
}

int gstp_encode_challenge(uint8_t *out, size_t cap, const gstp_challenge_t *m)
{
    wr_t w;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (!valid_version(m->version))
        return GSTP_E_RANGE;
    wr_u8(&w, m->version);
    wr_u8(&w, 0);
    wr_u16(&w, 0);
    wr_bytes(&w, m->nonce, GSTP_NONCE_LEN);
    return payload_end(&w, out, cap, GSTP_CHALLENGE);
}

int gstp_encode_auth(uint8_t *out, size_t cap, const gstp_auth_t *m)
{
    wr_t w;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    wr_bytes(&w, m->mac, GSTP_MAC_LEN);
    return payload_end(&w, out, cap, GSTP_AUTH);
}

int gstp_encode_welcome(uint8_t *out, size_t cap, const gstp_welcome_t *m)
{
    wr_t w;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (m->heartbeat_s == 0 || m->ack_window == 0)
        return GSTP_E_RANGE;
    wr_i64(&w, m->server_time_ns);
    wr_u16(&w, m->heartbeat_s);
    wr_u16(&w, m->ack_window);
    wr_u64(&w, m->resume_seq);
    wr_u32(&w, m->session_id);
    if (m->codecs & ~(1u << GSTP_CODEC_RAW)) {
        /* 1.1 extension (6.7): the codecs accepted besides raw; absent = raw only. */
        wr_u8(&w, GSTP_WT_CODECS);
        wr_u16(&w, 4);
        wr_u32(&w, m->codecs | (1u << GSTP_CODEC_RAW));
    }
    return payload_end(&w, out, cap, GSTP_WELCOME);
}

/* REJECT and BYE; ERROR has its own layout but the same message rule. */
static int encode_reject(uint8_t *out, size_t cap, const gstp_reject_t *m, uint8_t type)
{
    wr_t w;
    size_t n;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (str_field(m->message, sizeof m->message, &n) != GSTP_OK)
        return GSTP_E_RANGE;
    wr_u16(&w, m->reason);
    wr_u16(&w, m->retry_after_s);
    wr_bytes(&w, m->message, n);
    return payload_end(&w, out, cap, type);
}

int gstp_encode_reject(uint8_t *out, size_t cap, const gstp_reject_t *m)
{
    return encode_reject(out, cap, m, GSTP_REJECT);
}

int gstp_encode_bye(uint8_t *out, size_t cap, const gstp_reject_t *m)
{
    return encode_reject(out, cap, m, GSTP_BYE);
}

int gstp_encode_status(uint8_t *out, size_t cap, const gstp_status_t *m)
{
    wr_t w;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (m->buffer_permille > 1000)
        return GSTP_E_RANGE;
    wr_i64(&w, m->time_ns);
    wr_i16(&w, m->rsrp_dbm);
    wr_i16(&w, m->rssi_dbm);
    wr_u8(&w, m->csq);
    wr_u8(&w, m->gps_fix);
    wr_u8(&w, m->gps_sats);
    wr_u8(&w, m->time_quality);
    wr_u16(&w, m->supply_mv);
    wr_i16(&w, m->temp_c10);
    wr_u16(&w, m->buffer_permille);
    wr_u16(&w, 0);
    wr_u32(&w, m->uptime_s);
    wr_u32(&w, m->buffered_blocks);
    return payload_end(&w, out, cap, GSTP_STATUS);
}

int gstp_encode_ack(uint8_t *out, size_t cap, const gstp_ack_t *m)
{
    wr_t w;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    wr_u64(&w, m->seq);
    return payload_end(&w, out, cap, GSTP_ACK);
}

/* COMMAND and RESULT: u64 id, u16 verb/status, u16 flags/reserved (0), TLV list. */
static int encode_cmd(uint8_t *out, size_t cap, uint64_t id, uint16_t code, const uint8_t *tlv,
                      uint16_t tlv_len, uint8_t type)
{
    wr_t w;
    int rc;

    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (tlv_len && !tlv)
        return GSTP_E_ARG;
    if (tlv_len > GSTP_MAX_TLV)
        return GSTP_E_RANGE;
    if (tlv_check(tlv, tlv_len) < 0)
        return GSTP_E_TLV;
    wr_u64(&w, id);
    wr_u16(&w, code);
    wr_u16(&w, 0);
    wr_bytes(&w, tlv, tlv_len);
    return payload_end(&w, out, cap, type);
}

int gstp_encode_command(uint8_t *out, size_t cap, const gstp_command_t *m)
{
    if (!m)
        return GSTP_E_ARG;
    return encode_cmd(out, cap, m->id, m->verb, m->tlv, m->tlv_len, GSTP_COMMAND);
}

/* A RESULT's MESSAGE follows the string rules of section 2 (at most GSTP_MAX_STR bytes, no NUL)
 * and appears at most once; a RESULT breaking them is malformed as a whole (protocol decision 5:
 * the receiver answers ERROR MALFORMED and applies nothing of it). */
static int result_strings_ok(const uint8_t *tlv, size_t n)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    int rc, seen = 0;

    gstp_tlv_iter_init(&it, tlv, n);
    while ((rc = gstp_tlv_next(&it, &t)) == 1) {
        if (t.tag != GSTP_AT_MESSAGE)
            continue;
        if (seen++ || t.len > GSTP_MAX_STR || (t.len && memchr(t.value, 0, t.len)))
            return GSTP_E_RANGE;
    }
    return rc < 0 ? GSTP_E_TLV : GSTP_OK;
}

int gstp_encode_result(uint8_t *out, size_t cap, const gstp_result_t *m)
{
    if (!m)
        return GSTP_E_ARG;
    if (m->tlv_len <= GSTP_MAX_TLV && (m->tlv || !m->tlv_len) &&
        result_strings_ok(m->tlv, m->tlv_len) == GSTP_E_RANGE)
        return GSTP_E_RANGE; /* what the parser refuses, the encoder does not produce */
    return encode_cmd(out, cap, m->id, m->status, m->tlv, m->tlv_len, GSTP_RESULT);
}

static int encode_ping(uint8_t *out, size_t cap, const gstp_ping_t *m, uint8_t type)
{
    wr_t w;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    wr_u32(&w, m->token);
    wr_i64(&w, m->sender_time_ns);
    return payload_end(&w, out, cap, type);
}

int gstp_encode_ping(uint8_t *out, size_t cap, const gstp_ping_t *m)
{
    return encode_ping(out, cap, m, GSTP_PING);
}

int gstp_encode_pong(uint8_t *out, size_t cap, const gstp_ping_t *m)
{
    return encode_ping(out, cap, m, GSTP_PONG);
}

int gstp_encode_error(uint8_t *out, size_t cap, const gstp_error_t *m)
{
    wr_t w;
    size_t n;
    int rc;

    if (!m)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (str_field(m->message, sizeof m->message, &n) != GSTP_OK)
        return GSTP_E_RANGE;
    wr_u16(&w, m->code);
    wr_u8(&w, m->frame_type);
    wr_u8(&w, 0);
    wr_bytes(&w, m->message, n);
    return payload_end(&w, out, cap, GSTP_ERROR);
}

static size_t sample_width(uint8_t fmt)
{
    return fmt == GSTP_FMT_INT16 ? 2 : fmt == GSTP_FMT_INT32 ? 4 : 0;
}

/* Checks a block header as the parser does (n_in_chunk passed separately). */
static int block_hdr_ok(const gstp_block_hdr_t *h, uint16_t n_in_chunk)
{
    return h->seq >= 1 && h->seq <= GSTP_MAX_SEQ && h->sample_rate >= 1 &&
           h->sample_rate <= MAX_SAMPLE_RATE && h->channel_mask != 0 &&
           (h->channel_mask >> GSTP_MAX_CHANNELS) == 0 &&
           h->nchannels == popcount32(h->channel_mask) && sample_width(h->sample_fmt) != 0 &&
           h->codec <= GSTP_CODEC_WCODEC2 && h->chunk_count >= 1 && h->chunk_index < h->chunk_count &&
           h->nsamples >= 1 && h->nsamples <= GSTP_MAX_BLOCK_SAMPLES && n_in_chunk >= 1 &&
           (uint32_t)h->first_sample + n_in_chunk <= h->nsamples;
}

/* Writes the block header (and EVENT header) of a chunk carrying n_in_chunk sets. */
static void wr_block_hdr(wr_t *w, const gstp_block_hdr_t *hdr, const gstp_event_hdr_t *ev,
                         uint16_t n_in_chunk)
{
    wr_u64(w, hdr->seq);
    wr_i64(w, hdr->t0_ns);
    wr_u32(w, hdr->sample_rate);
    wr_u32(w, hdr->channel_mask);
    wr_u16(w, hdr->nsamples);
    wr_u16(w, hdr->first_sample);
    wr_u8(w, hdr->time_quality);
    wr_u8(w, hdr->sample_fmt);
    wr_u8(w, hdr->nchannels);
    wr_u8(w, hdr->chunk_index);
    wr_u8(w, hdr->chunk_count);
    wr_u8(w, hdr->codec);
    wr_u16(w, 0);
    wr_u16(w, n_in_chunk);
    wr_u16(w, 0);
    if (ev) {
        wr_i64(w, ev->trigger_ns);
        wr_u16(w, ev->trigger);
        wr_u16(w, ev->pretrigger);
        wr_u16(w, ev->value_permille);
        wr_u16(w, ev->channel);
    }
}

int gstp_encode_block(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                      const gstp_event_hdr_t *ev, const uint8_t *samples, uint16_t n_in_chunk)
{
    size_t nbytes, plen;
    wr_t w;
    int rc;

    if (!hdr || !samples)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (!block_hdr_ok(hdr, n_in_chunk) || hdr->codec != GSTP_CODEC_RAW)
        return GSTP_E_RANGE;
    nbytes = (size_t)n_in_chunk * hdr->nchannels * sample_width(hdr->sample_fmt);
    plen = GSTP_BLOCK_HDR_LEN + (ev ? GSTP_EVENT_HDR_LEN : 0) + nbytes;
    if (plen > GSTP_MAX_PAYLOAD)
        return GSTP_E_RANGE;
    wr_block_hdr(&w, hdr, ev, n_in_chunk);
    wr_bytes(&w, samples, nbytes);
    return payload_end(&w, out, cap, ev ? GSTP_EVENT : GSTP_WAVEFORM);
}

int gstp_encode_block_segment(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                              const gstp_event_hdr_t *ev, const uint8_t *seg, size_t seg_len,
                              uint16_t n_in_chunk)
{
    wr_t w;
    int rc;

    if (!hdr || !seg)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (!block_hdr_ok(hdr, n_in_chunk) || !GSTP_CODEC_IS_WCODEC(hdr->codec) || seg_len == 0 ||
        GSTP_BLOCK_HDR_LEN + (ev ? GSTP_EVENT_HDR_LEN : 0) + seg_len > GSTP_MAX_PAYLOAD)
        return GSTP_E_RANGE;
    wr_block_hdr(&w, hdr, ev, n_in_chunk);
    wr_bytes(&w, seg, seg_len);
    return payload_end(&w, out, cap, ev ? GSTP_EVENT : GSTP_WAVEFORM);
}

uint32_t gstp_period_hint(uint32_t sample_rate, uint32_t nominal_hz)
{
    return nominal_hz ? (sample_rate + nominal_hz / 2) / nominal_hz : 0;
}

int gstp_encode_block_wcodec(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                             const gstp_event_hdr_t *ev, const uint8_t *block,
                             uint32_t period_hint, size_t max_payload, uint16_t *n_out)
{
    size_t fixed = GSTP_BLOCK_HDR_LEN + (ev ? GSTP_EVENT_HDR_LEN : 0), room, seg_len = 0;
    uint32_t n = 0;
    wr_t w;
    uint8_t *seg;
    int rc;

    if (!hdr || !block || !n_out)
        return GSTP_E_ARG;
    if ((rc = payload_begin(&w, out, cap)) != 0)
        return rc;
    if (!GSTP_CODEC_IS_WCODEC(hdr->codec) || !block_hdr_ok(hdr, 1))
        return GSTP_E_RANGE;
    if (max_payload > GSTP_MAX_PAYLOAD)
        max_payload = GSTP_MAX_PAYLOAD;
    /* The segment goes straight to its place in the frame: payload = header, then segment. */
    if (cap < GSTP_HEADER_LEN + fixed + 1 + GSTP_TRAILER_LEN || max_payload <= fixed)
        return GSTP_E_SPACE;
    room = cap - GSTP_HEADER_LEN - GSTP_TRAILER_LEN - fixed;
    if (room > max_payload - fixed)
        room = max_payload - fixed;
    seg = out + GSTP_HEADER_LEN + fixed;
    rc = wcodec_encode_as(hdr->codec, block, hdr->nsamples, hdr->nchannels, hdr->sample_fmt,
                          period_hint, hdr->first_sample, hdr->nsamples - hdr->first_sample, seg,
                          room, &n, &seg_len);
    if (rc == WCODEC_E_SPACE)
        return GSTP_E_SPACE;
    if (rc != WCODEC_OK || n < 1 || n > (uint32_t)hdr->nsamples - hdr->first_sample ||
        seg_len < 1 || seg_len > room)
        return GSTP_E_RANGE;
    wr_block_hdr(&w, hdr, ev, (uint16_t)n);
    w.off += seg_len; /* already in place */
    *n_out = (uint16_t)n;
    return payload_end(&w, out, cap, ev ? GSTP_EVENT : GSTP_WAVEFORM);
}

int gstp_encode_block_wcodec_all(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                                 const gstp_event_hdr_t *ev, const uint8_t *block,
                                 uint32_t period_hint, size_t max_payload, uint8_t *nchunks)
{
    gstp_block_hdr_t h;
    size_t off = 0, starts[255];
    unsigned count = 0;
    uint32_t first = 0;

    if (!hdr || !out || !block || !nchunks)
        return GSTP_E_ARG;
    h = *hdr;
    h.chunk_count = 255; /* provisional: rewritten once the count is known */
    while (first < h.nsamples) {
        uint16_t n = 0;
        int len;
        if (count == 255)
            return GSTP_E_RANGE;
        h.chunk_index = (uint8_t)count;
        h.first_sample = (uint16_t)first;
        len = gstp_encode_block_wcodec(out + off, cap - off, &h, ev, block, period_hint,
                                       max_payload, &n);
        if (len < 0)
            return len;
        starts[count++] = off;
        off += (size_t)len;
        first += n;
    }
    for (unsigned i = 0; i < count; i++) {
        size_t end = i + 1 < count ? starts[i + 1] : off;
        int rc = gstp_block_set_chunk_count(out + starts[i], end - starts[i], (uint8_t)count);
        if (rc != GSTP_OK)
            return rc;
    }
    *nchunks = (uint8_t)count;
    return (int)off;
}

int gstp_block_set_chunk_count(uint8_t *frame, size_t len, uint8_t chunk_count)
{
    size_t plen;

    if (!frame || len < GSTP_HEADER_LEN + GSTP_TRAILER_LEN || !header_ok(frame))
        return GSTP_E_ARG;
    plen = ld_u16(frame + 6);
    if ((frame[3] != GSTP_WAVEFORM && frame[3] != GSTP_EVENT) || plen < GSTP_BLOCK_HDR_LEN ||
        len != GSTP_HEADER_LEN + plen + GSTP_TRAILER_LEN ||
        ld_u32(frame + GSTP_HEADER_LEN + plen) != gstp_crc32c(0, frame, GSTP_HEADER_LEN + plen))
        return GSTP_E_ARG;
    if (chunk_count == 0 || frame[GSTP_HEADER_LEN + 31] >= chunk_count)
        return GSTP_E_RANGE;
    frame[GSTP_HEADER_LEN + 32] = chunk_count;
    st_u32(frame + GSTP_HEADER_LEN + plen, gstp_crc32c(0, frame, GSTP_HEADER_LEN + plen));
    return GSTP_OK;
}

int gstp_block_decode_chunk(const gstp_block_t *b, uint8_t *block, size_t block_len)
{
    const gstp_block_hdr_t *h;
    size_t set;

    if (!b || !block)
        return GSTP_E_ARG;
    h = &b->hdr;
    set = (size_t)h->nchannels * sample_width(h->sample_fmt);
    if (set == 0 || block_len < (size_t)h->nsamples * set)
        return GSTP_E_ARG;
    if ((uint32_t)h->first_sample + h->n_in_chunk > h->nsamples)
        return GSTP_E_RANGE;
    if (h->codec == GSTP_CODEC_RAW) {
        if (b->samples_len != (size_t)h->n_in_chunk * set)
            return GSTP_E_RANGE;
        memcpy(block + (size_t)h->first_sample * set, b->samples, b->samples_len);
        return GSTP_OK;
    }
    if (GSTP_CODEC_IS_WCODEC(h->codec)) {
        uint32_t n = 0;
        size_t used = 0;
        int rc = wcodec_decode_as(h->codec, b->samples, b->samples_len, h->nsamples,
                                  h->nchannels, h->sample_fmt, h->first_sample, block, &n, &used);
        /* The chunk rule (7.4): exactly one segment, covering exactly the chunk's sets. */
        if (rc != WCODEC_OK || n != h->n_in_chunk || used != b->samples_len)
            return GSTP_E_RANGE;
        return GSTP_OK;
    }
    return GSTP_E_RANGE;
}

uint16_t gstp_block_chunk_capacity(uint8_t nchannels, uint8_t sample_fmt, int is_event,
                                   size_t max_payload)
{
    size_t fixed = GSTP_BLOCK_HDR_LEN + (is_event ? GSTP_EVENT_HDR_LEN : 0);
    size_t set = (size_t)nchannels * sample_width(sample_fmt);
    size_t n;

    if (nchannels == 0 || nchannels > GSTP_MAX_CHANNELS || set == 0)
        return 0;
    if (max_payload > GSTP_MAX_PAYLOAD)
        max_payload = GSTP_MAX_PAYLOAD;
    if (max_payload <= fixed)
        return 0;
    n = (max_payload - fixed) / set;
    return (uint16_t)(n > GSTP_MAX_BLOCK_SAMPLES ? GSTP_MAX_BLOCK_SAMPLES : n);
}

/* ---- Parsers -------------------------------------------------------------------------------- */

/* Common entry checks: arguments and frame type. */
static int parse_begin(const gstp_frame_t *f, const void *m, uint8_t t1, uint8_t t2, rd_t *r)
{
    if (!f || !m || (f->len && !f->payload))
        return GSTP_E_ARG;
    if (f->type != t1 && f->type != t2)
        return GSTP_E_TYPE;
    rd_init(r, f->payload, f->len);
    return GSTP_OK;
}

/* One HELLO TLV element into *m. `seen` tracks single-valued tags (bit = tag) so a repeated tag
 * is rejected instead of silently overriding: the MAC covers the bytes, but every reader of the
 * HELLO should see one unambiguous value. */
static int hello_tlv(const gstp_tlv_t *t, gstp_hello_t *m, uint32_t *seen, uint32_t *chan_seen)
{
    uint32_t bits = 0;
    uint8_t nhz = 0;
    int rc = GSTP_OK;

    if (t->tag >= GSTP_HT_TERMINAL_ID && t->tag <= GSTP_HT_BUFFER_BLOCKS &&
        t->tag != GSTP_HT_CHANNEL) {
        if (*seen & (1u << t->tag))
            return GSTP_E_RANGE;
        *seen |= 1u << t->tag;
    }
    if (t->tag == GSTP_HT_CHANNEL)
        *seen |= 1u << t->tag; /* required at least once; repeats are the channel list */
    switch (t->tag) {
    case GSTP_HT_TERMINAL_ID:
        if (t->len > GSTP_MAX_ID)
            return GSTP_E_RANGE;
        rc = gstp_tlv_str(t, m->terminal_id, sizeof m->terminal_id);
        if (rc == GSTP_OK && !gstp_valid_id(m->terminal_id))
            rc = GSTP_E_RANGE;
        break;
    case GSTP_HT_FW_VERSION:
        rc = gstp_tlv_str(t, m->fw_version, sizeof m->fw_version);
        break;
    case GSTP_HT_HW_VERSION:
        rc = gstp_tlv_str(t, m->hw_version, sizeof m->hw_version);
        break;
    case GSTP_HT_IMEI:
        rc = gstp_tlv_str(t, m->imei, sizeof m->imei);
        break;
    case GSTP_HT_ICCID:
        rc = gstp_tlv_str(t, m->iccid, sizeof m->iccid);
        break;
    case GSTP_HT_SAMPLE_RATE:
        rc = gstp_tlv_u32(t, &m->sample_rate);
        if (rc == GSTP_OK && (m->sample_rate < 1 || m->sample_rate > MAX_SAMPLE_RATE))
            rc = GSTP_E_CONFIG;
        break;
    case GSTP_HT_NOMINAL_HZ:
        rc = gstp_tlv_u8(t, &nhz);
        if (rc == GSTP_OK && nhz != 50 && nhz != 60)
            rc = GSTP_E_CONFIG;
        m->nominal_hz = nhz;
        break;
    case GSTP_HT_VT_RATIO:
    case GSTP_HT_CT_RATIO:
        rc = gstp_tlv_u32(t, &bits);
        if (rc == GSTP_OK && !f32_bits_positive_finite(bits))
            rc = GSTP_E_RANGE;
        if (t->tag == GSTP_HT_VT_RATIO)
            m->vt_ratio = f32_from_bits(bits);
        else
            m->ct_ratio = f32_from_bits(bits);
        break;
    case GSTP_HT_TIME_SOURCE:
        rc = gstp_tlv_u8(t, &m->time_source);
        break;
    case GSTP_HT_TIME_QUALITY:
        rc = gstp_tlv_u8(t, &m->time_quality);
        break;
    case GSTP_HT_BUFFER_BLOCKS:
        rc = gstp_tlv_u32(t, &m->buffer_blocks);
        break;
    case GSTP_HT_CHANNEL: {
        gstp_channel_t *c;
        rd_t r;

        if (m->nchannels >= GSTP_MAX_CHANNELS)
            return GSTP_E_CONFIG;
        if (t->len < 8)
            return GSTP_E_RANGE;
        c = &m->channels[m->nchannels];
        rd_init(&r, t->value, t->len);
        c->index = rd_u8(&r);
        c->kind = rd_u8(&r);
        c->phase = rd_u8(&r);
        c->unit = rd_u8(&r);
        c->scale = f32_from_bits(rd_u32(&r));
        rc = copy_wire_str(c->name, sizeof c->name, t->value + r.off, rd_left(&r));
        if (rc == GSTP_OK && (!channel_ok(c) || (*chan_seen & (1u << c->index))))
            rc = GSTP_E_CONFIG; /* well-formed element, unusable channel description */
        if (rc == GSTP_OK) {
            *chan_seen |= 1u << c->index;
            m->nchannels++;
        }
        break;
    }
    default:
        break; /* extension rule: unknown tags are skipped */
    }
    return rc;
}

int gstp_parse_hello(const gstp_frame_t *f, gstp_hello_t *m)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    uint32_t seen = 0, chan_seen = 0;
    rd_t r;
    int rc, cfg = GSTP_OK;

    if ((rc = parse_begin(f, m, GSTP_HELLO, GSTP_HELLO, &r)) != GSTP_OK)
        return rc;
    memset(m, 0, sizeof *m);
    m->version_min = rd_u8(&r);
    m->version_max = rd_u8(&r);
    (void)rd_u16(&r); /* reserved */
    if (r.err)
        return GSTP_E_TRUNC;
    if (!valid_version(m->version_min) || !valid_version(m->version_max) ||
        m->version_min > m->version_max)
        return GSTP_E_RANGE;
    gstp_tlv_iter_init(&it, f->payload + r.off, rd_left(&r));
    while ((rc = gstp_tlv_next(&it, &t)) == 1) {
        /* An unusable capability is reported only if the whole HELLO parses: a HELLO that is
         * both malformed and unusable is malformed (PROTOCOL before BAD_CONFIG). */
        rc = hello_tlv(&t, m, &seen, &chan_seen);
        if (rc == GSTP_E_CONFIG)
            cfg = GSTP_E_CONFIG;
        else if (rc != GSTP_OK)
            return rc;
    }
    if (rc < 0)
        return rc;
    /* A required tag is missing (CHANNEL included: protocol.md 6.4 requires at least one, and
     * decision 4 makes a missing required tag PROTOCOL): the HELLO does not parse. */
    if (!(seen & (1u << GSTP_HT_TERMINAL_ID)) || !(seen & (1u << GSTP_HT_SAMPLE_RATE)) ||
        !(seen & (1u << GSTP_HT_NOMINAL_HZ)) || !(seen & (1u << GSTP_HT_CHANNEL)))
        return GSTP_E_RANGE;
    if (m->nchannels == 0)
        return GSTP_E_CONFIG; /* CHANNEL elements present, none of them usable */
    return cfg;
}

int gstp_parse_challenge(const gstp_frame_t *f, gstp_challenge_t *m)
{
    const uint8_t *q;
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_CHALLENGE, GSTP_CHALLENGE, &r)) != GSTP_OK)
        return rc;
    m->version = rd_u8(&r);
    (void)rd_take(&r, 3); /* reserved */
    q = rd_take(&r, GSTP_NONCE_LEN);
    if (!q)
        return GSTP_E_TRUNC;
    memcpy(m->nonce, q, GSTP_NONCE_LEN);
    return valid_version(m->version) ? GSTP_OK : GSTP_E_RANGE;
}

int gstp_parse_auth(const gstp_frame_t *f, gstp_auth_t *m)
{
    const uint8_t *q;
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_AUTH, GSTP_AUTH, &r)) != GSTP_OK)
        return rc;
    q = rd_take(&r, GSTP_MAC_LEN);
    if (!q)
        return GSTP_E_TRUNC;
    memcpy(m->mac, q, GSTP_MAC_LEN);
    return GSTP_OK;
}

int gstp_parse_welcome(const gstp_frame_t *f, gstp_welcome_t *m)
{
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_WELCOME, GSTP_WELCOME, &r)) != GSTP_OK)
        return rc;
    m->server_time_ns = rd_i64(&r);
    m->heartbeat_s = rd_u16(&r);
    m->ack_window = rd_u16(&r);
    m->resume_seq = rd_u64(&r);
    m->session_id = rd_u32(&r);
    if (r.err)
        return GSTP_E_TRUNC;
    /* TLV extensions follow (6.7): the list must be well-formed; unknown tags are skipped. */
    {
        const uint8_t *ext = f->payload + r.off;
        size_t n = rd_left(&r);
        gstp_tlv_t t;
        uint32_t codecs = 1u << GSTP_CODEC_RAW;
        if ((rc = tlv_check(ext, n)) != GSTP_OK)
            return rc;
        rc = gstp_tlv_find(ext, n, GSTP_WT_CODECS, &t);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (gstp_tlv_u32(&t, &codecs) != GSTP_OK)
                return GSTP_E_RANGE;
            codecs |= 1u << GSTP_CODEC_RAW;
        }
        m->codecs = codecs;
    }
    return m->heartbeat_s && m->ack_window ? GSTP_OK : GSTP_E_RANGE;
}

int gstp_parse_reject(const gstp_frame_t *f, gstp_reject_t *m)
{
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_REJECT, GSTP_BYE, &r)) != GSTP_OK)
        return rc;
    m->reason = rd_u16(&r);
    m->retry_after_s = rd_u16(&r);
    if (r.err)
        return GSTP_E_TRUNC;
    return copy_wire_str(m->message, sizeof m->message, f->payload + r.off, rd_left(&r));
}

int gstp_parse_status(const gstp_frame_t *f, gstp_status_t *m)
{
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_STATUS, GSTP_STATUS, &r)) != GSTP_OK)
        return rc;
    m->time_ns = rd_i64(&r);
    m->rsrp_dbm = rd_i16(&r);
    m->rssi_dbm = rd_i16(&r);
    m->csq = rd_u8(&r);
    m->gps_fix = rd_u8(&r);
    m->gps_sats = rd_u8(&r);
    m->time_quality = rd_u8(&r);
    m->supply_mv = rd_u16(&r);
    m->temp_c10 = rd_i16(&r);
    m->buffer_permille = rd_u16(&r);
    (void)rd_u16(&r); /* reserved */
    m->uptime_s = rd_u32(&r);
    m->buffered_blocks = rd_u32(&r);
    if (r.err)
        return GSTP_E_TRUNC;
    return m->buffer_permille <= 1000 ? GSTP_OK : GSTP_E_RANGE;
}

int gstp_parse_ack(const gstp_frame_t *f, gstp_ack_t *m)
{
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_ACK, GSTP_ACK, &r)) != GSTP_OK)
        return rc;
    m->seq = rd_u64(&r);
    return r.err ? GSTP_E_TRUNC : GSTP_OK;
}

/* COMMAND and RESULT share a layout; the TLV list runs to the end of the payload. */
static int parse_cmd(const gstp_frame_t *f, const void *m, uint8_t type, uint64_t *id,
                     uint16_t *code, const uint8_t **tlv, uint16_t *tlv_len)
{
    size_t n;
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, type, type, &r)) != GSTP_OK)
        return rc;
    *id = rd_u64(&r);
    *code = rd_u16(&r);
    (void)rd_u16(&r); /* flags / reserved */
    if (r.err)
        return GSTP_E_TRUNC;
    n = rd_left(&r);
    if (n > GSTP_MAX_TLV)
        return GSTP_E_RANGE;
    *tlv = n ? f->payload + r.off : NULL;
    *tlv_len = (uint16_t)n;
    return tlv_check(*tlv, n) < 0 ? GSTP_E_TLV : GSTP_OK;
}

int gstp_parse_command(const gstp_frame_t *f, gstp_command_t *m)
{
    return m ? parse_cmd(f, m, GSTP_COMMAND, &m->id, &m->verb, &m->tlv, &m->tlv_len) : GSTP_E_ARG;
}

int gstp_parse_result(const gstp_frame_t *f, gstp_result_t *m)
{
    int rc;

    if (!m)
        return GSTP_E_ARG;
    rc = parse_cmd(f, m, GSTP_RESULT, &m->id, &m->status, &m->tlv, &m->tlv_len);
    return rc != GSTP_OK ? rc : result_strings_ok(m->tlv, m->tlv_len);
}

int gstp_parse_ping(const gstp_frame_t *f, gstp_ping_t *m)
{
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_PING, GSTP_PONG, &r)) != GSTP_OK)
        return rc;
    m->token = rd_u32(&r);
    m->sender_time_ns = rd_i64(&r);
    return r.err ? GSTP_E_TRUNC : GSTP_OK;
}

int gstp_parse_error(const gstp_frame_t *f, gstp_error_t *m)
{
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_ERROR, GSTP_ERROR, &r)) != GSTP_OK)
        return rc;
    m->code = rd_u16(&r);
    m->frame_type = rd_u8(&r);
    (void)rd_u8(&r); /* reserved */
    if (r.err)
        return GSTP_E_TRUNC;
    return copy_wire_str(m->message, sizeof m->message, f->payload + r.off, rd_left(&r));
}

int gstp_parse_block(const gstp_frame_t *f, gstp_block_t *m)
{
    gstp_block_hdr_t *h;
    size_t nbytes;
    rd_t r;
    int rc;

    if ((rc = parse_begin(f, m, GSTP_WAVEFORM, GSTP_EVENT, &r)) != GSTP_OK)
        return rc;
    memset(m, 0, sizeof *m);
    h = &m->hdr;
    h->seq = rd_u64(&r);
    h->t0_ns = rd_i64(&r);
    h->sample_rate = rd_u32(&r);
    h->channel_mask = rd_u32(&r);
    h->nsamples = rd_u16(&r);
    h->first_sample = rd_u16(&r);
    h->time_quality = rd_u8(&r);
    h->sample_fmt = rd_u8(&r);
    h->nchannels = rd_u8(&r);
    h->chunk_index = rd_u8(&r);
    h->chunk_count = rd_u8(&r);
    h->codec = rd_u8(&r);
    h->reserved = rd_u16(&r);
    h->n_in_chunk = rd_u16(&r);
    (void)rd_u16(&r); /* reserved2 */
    if (f->type == GSTP_EVENT) {
        m->event.trigger_ns = rd_i64(&r);
        m->event.trigger = rd_u16(&r);
        m->event.pretrigger = rd_u16(&r);
        m->event.value_permille = rd_u16(&r);
        m->event.channel = rd_u16(&r);
    }
    if (r.err)
        return GSTP_E_TRUNC;
    if (!block_hdr_ok(h, h->n_in_chunk))
        return GSTP_E_RANGE;
    if (GSTP_CODEC_IS_WCODEC(h->codec)) {
        /* One segment, the rest of the payload; decoded (and checked) in its block. */
        if (rd_left(&r) == 0)
            return GSTP_E_TRUNC;
        m->samples = f->payload + r.off;
        m->samples_len = rd_left(&r);
        return GSTP_OK;
    }
    nbytes = (size_t)h->n_in_chunk * h->nchannels * sample_width(h->sample_fmt);
    if (rd_left(&r) < nbytes)
        return GSTP_E_TRUNC;
    if (rd_left(&r) > nbytes)
        return GSTP_E_RANGE;
    m->samples = f->payload + r.off;
    m->samples_len = nbytes;
    return GSTP_OK;
}

/* ---- Names ---------------------------------------------------------------------------------- */

const char *gstp_type_name(uint8_t type)
{
    switch (type) {
    case GSTP_HELLO:
        return "HELLO";
    case GSTP_CHALLENGE:
        return "CHALLENGE";
    case GSTP_AUTH:
        return "AUTH";
    case GSTP_WELCOME:
        return "WELCOME";
    case GSTP_REJECT:
        return "REJECT";
    case GSTP_BYE:
        return "BYE";
    case GSTP_WAVEFORM:
        return "WAVEFORM";
    case GSTP_STATUS:
        return "STATUS";
    case GSTP_EVENT:
        return "EVENT";
    case GSTP_ACK:
        return "ACK";
    case GSTP_COMMAND:
        return "COMMAND";
    case GSTP_RESULT:
        return "RESULT";
    case GSTP_PING:
        return "PING";
    case GSTP_PONG:
        return "PONG";
    case GSTP_ERROR:
        return "ERROR";
    default:
        return "UNKNOWN";
    }
}

const char *gstp_reason_name(uint16_t reason)
{
    switch (reason) {
    case GSTP_REJ_PROTOCOL:
        return "PROTOCOL";
    case GSTP_REJ_VERSION:
        return "VERSION";
    case GSTP_REJ_UNKNOWN_ID:
        return "UNKNOWN_ID";
    case GSTP_REJ_BAD_AUTH:
        return "BAD_AUTH";
    case GSTP_REJ_RATE_LIMIT:
        return "RATE_LIMIT";
    case GSTP_REJ_BUSY:
        return "BUSY";
    case GSTP_REJ_TIMEOUT:
        return "TIMEOUT";
    case GSTP_REJ_REPLACED:
        return "REPLACED";
    case GSTP_REJ_SHUTDOWN:
        return "SHUTDOWN";
    case GSTP_REJ_DEAD:
        return "DEAD";
    case GSTP_REJ_BAD_CONFIG:
        return "BAD_CONFIG";
    default:
        return "UNKNOWN";
    }
}

int gstp_valid_id(const char *s)
{
    size_t n;

    if (!s)
        return 0;
    for (n = 0; s[n]; n++) {
        char c = s[n];
        if (n >= GSTP_MAX_ID)
            return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1;
}
