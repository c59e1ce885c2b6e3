/* COMTRADE sample data (.dat): decoding into a record, value access, and encoding
 * (C37.111-2013 clause 8; 1999 clause 7). Binary input is read through a bounded reader that
 * fails instead of overrunning; ASCII input through spans of the caller's buffer. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comtrade/internal.h"
#include "core/err.h"
#include "core/util.h"

#define MAX_ASCII_SAMPNUM 9999999999LL /* ASCII sample numbers / timestamps: 10 digits */
#define MISSING_TS        0xFFFFFFFFu  /* binary timestamp not available (2013 clause 8.4.2) */
#define MISSING16         0x8000u      /* binary missing value (1999 clause 7.3, 2013 8.4.2) */
#define MISSING32         0x80000000u
#define R_BINARY          32767.0
#define R_BINARY32        2147483647.0
#define R_ASCII           99998.0 /* 1999: -99999..99998 with 99999 = missing */

/* ---- Bounded little-endian reader ------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t len, off;
} rd_t;

static int rd_u16(rd_t *r, uint16_t *v)
{
    if (r->len - r->off < 2)
        return -1;
    *v = (uint16_t)(r->p[r->off] | (r->p[r->off + 1] << 8));
    r->off += 2;
    return 0;
}

static int rd_u32(rd_t *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return -1;
    *v = (uint32_t)r->p[r->off] | (uint32_t)r->p[r->off + 1] << 8 |
         (uint32_t)r->p[r->off + 2] << 16 | (uint32_t)r->p[r->off + 3] << 24;
    r->off += 4;
    return 0;
}

/* ---- Sample times ---------------------------------------------------------------------------- */

/* Walks the rate table in sample order (positions 1, 2, ...): the first sample is at offset 0
 * and a sample in segment r follows the previous one by 1/samp_r. Offsets in ns relative to
 * start_ns; rounding is per segment, so it does not accumulate. */
typedef struct {
    const comtrade_cfg_t *cfg;
    size_t r;      /* current segment */
    int64_t first; /* position before the segment's first sample (E_{r-1}) */
    double anchor; /* offset of position `first` (segments after the first) */
    double last;   /* offset of the last position returned */
} ratecur_t;

static void ratecur_init(ratecur_t *rc, const comtrade_cfg_t *cfg)
{
    memset(rc, 0, sizeof *rc);
    rc->cfg = cfg;
}

/* Offset in ns of position k (1-based, called with k = 1, 2, ... in order). */
static double ratecur_next(ratecur_t *rc, int64_t k)
{
    const comtrade_cfg_t *cfg = rc->cfg;

    while (rc->r + 1 < cfg->nrates && k > cfg->rates[rc->r].endsamp) {
        rc->first = cfg->rates[rc->r].endsamp;
        rc->anchor = rc->last;
        rc->r++;
    }
    if (rc->r == 0)
        rc->last = round((double)(k - 1) * 1e9 / cfg->rates[0].samp);
    else
        rc->last = rc->anchor + round((double)(k - rc->first) * 1e9 / cfg->rates[rc->r].samp);
    return rc->last;
}

/* ns per .dat timestamp unit. */
static double ts_unit(const comtrade_cfg_t *cfg)
{
    return cfg->timemult * (cfg->nanosec ? 1.0 : 1000.0);
}

/* ---- Decoding -------------------------------------------------------------------------------- */

typedef struct {
    const comtrade_cfg_t *cfg;
    comtrade_rec_t *rec;
    ratecur_t rc;
    char *err;
    size_t errlen;
} dec_t;

static size_t rec_bytes(const comtrade_cfg_t *cfg, size_t ndw)
{
    size_t w = cfg->ft == COMTRADE_BINARY ? 2 : 4;
    return 8 + cfg->nanalog * w + ndw * 2;
}

/* Stores sample i's number and time; ts < 0 = timestamp missing. */
static int put_sample(dec_t *d, size_t i, int64_t n, int64_t ts)
{
    comtrade_rec_t *rec = d->rec;
    double off;

    rec->sample_no[i] = n;
    if (d->cfg->nrates) {
        off = ratecur_next(&d->rc, (int64_t)i + 1);
    } else if (ts < 0) {
        rec->time_ns[i] = COMTRADE_TIME_NONE;
        return 0;
    } else {
        off = (double)ts * ts_unit(d->cfg);
    }
    if (comtrade__add_ns(d->cfg->start_ns, off, &rec->time_ns[i]))
        return comtrade__fail(GS_ERANGE, d->err, d->errlen,
                              "dat sample %zu: time is outside the int64 ns range", i + 1);
    return 0;
}

static int decode_binary(dec_t *d, const uint8_t *dat, size_t len)
{
    const comtrade_cfg_t *cfg = d->cfg;
    comtrade_rec_t *rec = d->rec;
    rd_t r = {dat, len, 0};
    size_t ns = rec->nsamples, na = cfg->nanalog;
    int rc;

    for (size_t i = 0; i < ns; i++) {
        uint32_t n, ts;

        if (rd_u32(&r, &n) || rd_u32(&r, &ts))
            goto trunc;
        if ((rc = put_sample(d, i, n, ts == MISSING_TS ? -1 : (int64_t)ts)) != 0)
            return rc;
        for (size_t ch = 0; ch < na; ch++) {
            double *x = &rec->raw[ch * ns + i];
            if (cfg->ft == COMTRADE_BINARY) {
                uint16_t v;
                if (rd_u16(&r, &v))
                    goto trunc;
                *x = v == MISSING16 ? NAN : (double)(v >= 0x8000u ? (int32_t)v - 0x10000 : v);
            } else {
                uint32_t v;
                if (rd_u32(&r, &v))
                    goto trunc;
                if (cfg->ft == COMTRADE_FLOAT32) {
                    float f;
                    memcpy(&f, &v, sizeof f);
                    *x = f;
                } else {
                    *x = v == MISSING32
                             ? NAN
                             : (double)(v >= 0x80000000u ? (int64_t)v - 0x100000000LL : (int64_t)v);
                }
            }
        }
        for (size_t w = 0; w < rec->ndw; w++)
            if (rd_u16(&r, &rec->dig[i * rec->ndw + w]))
                goto trunc;
    }
    return 0;
trunc: /* the size was checked up front; this is the reader's own guard */
    return comtrade__fail(GS_ETRUNC, d->err, d->errlen, "dat truncated inside sample %zu",
                          r.off / rec_bytes(cfg, rec->ndw) + 1);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static span_t trim(span_t s)
{
    while (s.n > 0 && is_blank(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (is_blank(s.p[s.n - 1]) || s.p[s.n - 1] == '\r'))
        s.n--;
    return s;
}

/* Cuts the next comma-separated field off *line; 0 when none is left. */
static int next_field(span_t *line, span_t *f, int *more)
{
    const char *comma;
    size_t k;

    if (!*more)
        return 0;
    comma = line->n ? memchr(line->p, ',', line->n) : NULL;
    k = comma ? (size_t)(comma - line->p) : line->n;
    f->p = line->p;
    f->n = k;
    *f = trim(*f);
    if (comma) {
        line->p += k + 1;
        line->n -= k + 1;
    } else {
        *more = 0;
    }
    return 1;
}

/* Next line of the text; blank lines and a DOS ^Z are skipped. 0 at the end. */
static int next_data_line(span_t *text, span_t *line, size_t *lineno)
{
    while (text->n > 0) {
        const char *nl = memchr(text->p, '\n', text->n);
        size_t k = nl ? (size_t)(nl - text->p) : text->n;
        span_t l = {text->p, k};

        text->p += nl ? k + 1 : k;
        text->n -= nl ? k + 1 : k;
        (*lineno)++;
        l = trim(l);
        if (l.n == 0 || (l.n == 1 && l.p[0] == 0x1a))
            continue;
        *line = l;
        return 1;
    }
    return 0;
}

/* Unsigned decimal integer up to MAX_ASCII_SAMPNUM. */
static int uint_of(span_t s, int64_t *out)
{
    int64_t v = 0;

    if (s.n == 0 || s.n > 10)
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return 0;
}

static int ascii_err(dec_t *d, size_t lineno, int field, const char *name, const char *problem,
                     span_t v)
{
    char q[48];
    size_t k = 0;

    for (size_t i = 0; i < v.n && i < 40 && k + 1 < sizeof q; i++) {
        unsigned char c = (unsigned char)v.p[i];
        q[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    q[k] = 0;
    return comtrade__fail(GS_EPROTO, d->err, d->errlen, "dat line %zu: field %d (%s): %s: '%s'",
                          lineno, field, name, problem, q);
}

static int decode_ascii(dec_t *d, span_t text)
{
    const comtrade_cfg_t *cfg = d->cfg;
    comtrade_rec_t *rec = d->rec;
    size_t ns = rec->nsamples, na = cfg->nanalog, nd = cfg->ndigital, lineno = 0;
    size_t nf = 2 + na + nd;
    span_t line, f;
    char name[32];
    int rc;

    for (size_t i = 0; i < ns; i++) {
        int more = 1;
        int64_t n, ts = -1;
        size_t got = 0;

        if (!next_data_line(&text, &line, &lineno))
            return comtrade__fail(GS_ETRUNC, d->err, d->errlen,
                                  "dat truncated: sample %zu of %zu missing", i + 1, ns);
        /* sample number, timestamp */
        if (!next_field(&line, &f, &more) || uint_of(f, &n))
            return ascii_err(d, lineno, 1, "n", "not a sample number", f);
        got++;
        if (!next_field(&line, &f, &more))
            goto count;
        got++;
        if (f.n && uint_of(f, &ts))
            return ascii_err(d, lineno, 2, "timestamp", "not a timestamp", f);
        if ((rc = put_sample(d, i, n, ts)) != 0)
            return rc;
        for (size_t ch = 0; ch < na; ch++) {
            double v;
            if (!next_field(&line, &f, &more))
                goto count;
            got++;
            if (f.n == 0) {
                v = NAN;
            } else if (comtrade__num_of(f, &v)) {
                snprintf(name, sizeof name, "A%zu", ch + 1);
                return ascii_err(d, lineno, (int)got, name, "not a number", f);
            } else if (cfg->rev_year <= 1999 && v == 99999) {
                v = NAN; /* 1999 clause 7.2: 99999 marks a missing value */
            }
            rec->raw[ch * ns + i] = v;
        }
        for (size_t ch = 0; ch < nd; ch++) {
            if (!next_field(&line, &f, &more))
                goto count;
            got++;
            if (f.n != 1 || (f.p[0] != '0' && f.p[0] != '1')) {
                snprintf(name, sizeof name, "D%zu", ch + 1);
                return ascii_err(d, lineno, (int)got, name, "expected 0 or 1", f);
            }
            if (f.p[0] == '1')
                rec->dig[i * rec->ndw + ch / 16] |= (uint16_t)(1u << (ch % 16));
        }
        /* one trailing comma is tolerated */
        if (next_field(&line, &f, &more) && (f.n != 0 || next_field(&line, &f, &more))) {
            got = nf + 1 + (more ? 1 : 0);
            goto count;
        }
        continue;
    count:
        return comtrade__fail(GS_EPROTO, d->err, d->errlen,
                              "dat line %zu (sample %zu): %s fields, expected %zu", lineno, i + 1,
                              got > nf ? "too many" : "too few", nf);
    }
    if (next_data_line(&text, &line, &lineno))
        return comtrade__fail(GS_EPROTO, d->err, d->errlen,
                              "dat line %zu: more samples than the %zu the cfg declares", lineno,
                              ns);
    return 0;
}

/* Counts non-blank lines (bounds the allocation for ASCII data). */
static size_t count_lines(span_t text)
{
    span_t line;
    size_t n = 0, lineno = 0;

    while (next_data_line(&text, &line, &lineno))
        n++;
    return n;
}

int comtrade_dat_parse(const comtrade_cfg_t *cfg, const uint8_t *dat, size_t len,
                       comtrade_rec_t **out, char *err, size_t errlen)
{
    comtrade_rec_t *rec = NULL;
    dec_t d;
    size_t ns, ndw;
    int rc;

    *out = NULL;
    if ((rc = comtrade__cfg_check(cfg, err, errlen)) != 0)
        return rc;
    if (!dat && len)
        return comtrade__fail(GS_EINVAL, err, errlen, "no dat bytes");
    if (len > COMTRADE_MAX_DAT)
        return comtrade__fail(GS_ELIMIT, err, errlen, "dat is %zu bytes, limit %zu", len,
                              (size_t)COMTRADE_MAX_DAT);
    ndw = (cfg->ndigital + 15) / 16;
    if (cfg->ft == COMTRADE_ASCII) {
        span_t text = {(const char *)dat, len};
        size_t nl = count_lines(text);
        ns = cfg->endsamp ? (size_t)cfg->endsamp : nl;
        if (nl < ns)
            return comtrade__fail(GS_ETRUNC, err, errlen,
                                  "dat truncated: sample %zu missing (the file has %zu of the "
                                  "%zu samples the cfg declares)",
                                  nl + 1, nl, ns);
    } else {
        size_t rb = rec_bytes(cfg, ndw);
        if (cfg->endsamp == 0) {
            if (len % rb)
                return comtrade__fail(GS_ETRUNC, err, errlen,
                                      "dat truncated: sample %zu incomplete (%zu bytes is not a "
                                      "multiple of the %zu-byte sample)",
                                      len / rb + 1, len, rb);
            ns = len / rb;
        } else {
            ns = (size_t)cfg->endsamp;
            if (ns > len / rb)
                return comtrade__fail(GS_ETRUNC, err, errlen,
                                      "dat truncated: sample %zu incomplete (%zu bytes, the cfg "
                                      "declares %zu samples of %zu bytes)",
                                      len / rb + 1, len, ns, rb);
            if (len > ns * rb)
                return comtrade__fail(GS_EPROTO, err, errlen,
                                      "dat has %zu bytes after the %zu samples the cfg declares",
                                      len - ns * rb, ns);
        }
    }
    if (ns > COMTRADE_MAX_VALUES / (cfg->nanalog + 2))
        return comtrade__fail(GS_ELIMIT, err, errlen,
                              "record too large: %zu samples x %zu analog channels", ns,
                              cfg->nanalog);

    rec = xcalloc(1, sizeof *rec);
    comtrade__cfg_copy(&rec->cfg, cfg);
    rec->nsamples = ns;
    rec->ndw = ndw;
    rec->sample_no = xmalloc((ns + 1) * sizeof *rec->sample_no);
    rec->time_ns = xmalloc((ns + 1) * sizeof *rec->time_ns);
    rec->raw = xmalloc((ns * cfg->nanalog + 1) * sizeof *rec->raw);
    rec->dig = xcalloc(ns * ndw + 1, sizeof *rec->dig);
    d.cfg = &rec->cfg;
    d.rec = rec;
    d.err = err;
    d.errlen = errlen;
    ratecur_init(&d.rc, &rec->cfg);
    if (cfg->ft == COMTRADE_ASCII) {
        span_t text = {(const char *)dat, len};
        rc = decode_ascii(&d, text);
    } else {
        rc = decode_binary(&d, dat, len);
    }
    if (rc)
        goto fail;
    *out = rec;
    return 0;
fail:
    comtrade_rec_free(rec);
    return rc;
}

/* ---- Record access --------------------------------------------------------------------------- */

void comtrade_rec_free(comtrade_rec_t *rec)
{
    if (!rec)
        return;
    comtrade_cfg_free(&rec->cfg);
    free(rec->sample_no);
    free(rec->time_ns);
    free(rec->raw);
    free(rec->dig);
    free(rec->hdr);
    free(rec->inf);
    free(rec);
}

const comtrade_cfg_t *comtrade_rec_cfg(const comtrade_rec_t *rec)
{
    return &rec->cfg;
}

size_t comtrade_nsamples(const comtrade_rec_t *rec)
{
    return rec->nsamples;
}

int64_t comtrade_sample_number(const comtrade_rec_t *rec, size_t i)
{
    return i < rec->nsamples ? rec->sample_no[i] : -1;
}

int64_t comtrade_time_ns(const comtrade_rec_t *rec, size_t i)
{
    return i < rec->nsamples ? rec->time_ns[i] : COMTRADE_TIME_NONE;
}

/* Factor from the recorded side to the side `mode` asks for; NAN if impossible. */
static double side_factor(const comtrade_analog_t *a, int mode)
{
    int secondary = a->ps == 'S' || a->ps == 's';

    int ok = a->primary != 0 && a->secondary != 0;

    if (mode == COMTRADE_PRIMARY && secondary)
        return ok ? a->primary / a->secondary : NAN;
    if (mode == COMTRADE_SECONDARY && !secondary)
        return ok ? a->secondary / a->primary : NAN;
    if (mode < COMTRADE_AS_RECORDED || mode > COMTRADE_SECONDARY)
        return NAN;
    return 1;
}

double comtrade_value(const comtrade_rec_t *rec, size_t ch, size_t i, int mode)
{
    const comtrade_analog_t *a;

    if (ch >= rec->cfg.nanalog || i >= rec->nsamples)
        return NAN;
    a = &rec->cfg.analog[ch];
    return (a->a * rec->raw[ch * rec->nsamples + i] + a->b) * side_factor(a, mode);
}

int comtrade_values(const comtrade_rec_t *rec, size_t ch, int mode, size_t first, size_t n,
                    double *out)
{
    const comtrade_analog_t *a;
    const double *x;
    double f;

    if (ch >= rec->cfg.nanalog || first > rec->nsamples || n > rec->nsamples - first)
        return GS_EINVAL;
    a = &rec->cfg.analog[ch];
    f = side_factor(a, mode);
    if (isnan(f))
        return GS_EINVAL;
    x = rec->raw + ch * rec->nsamples + first;
    for (size_t k = 0; k < n; k++)
        out[k] = (a->a * x[k] + a->b) * f;
    return 0;
}

int comtrade_digital(const comtrade_rec_t *rec, size_t ch, size_t i)
{
    if (ch >= rec->cfg.ndigital || i >= rec->nsamples)
        return GS_EINVAL;
    return (rec->dig[i * rec->ndw + ch / 16] >> (ch % 16)) & 1;
}

const char *comtrade_hdr(const comtrade_rec_t *rec, size_t *len)
{
    if (len)
        *len = rec->hdr_len;
    return rec->hdr;
}

const char *comtrade_inf(const comtrade_rec_t *rec, size_t *len)
{
    if (len)
        *len = rec->inf_len;
    return rec->inf;
}

/* ---- Encoding -------------------------------------------------------------------------------- */

/* Chooses a, b, min, max of channel ch for cfg->ft from its data (see comtrade_encode). */
static int scale_channel(comtrade_cfg_t *cfg, size_t ch, const double *v, size_t n, char *err,
                         size_t errlen)
{
    comtrade_analog_t *a = &cfg->analog[ch];
    double lo = INFINITY, hi = -INFINITY, range, mid, half;
    int any = 0;

    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            continue;
        if (!isfinite(v[i]) || (cfg->ft == COMTRADE_FLOAT32 && fabs(v[i]) > FLT_MAX))
            return comtrade__fail(GS_EINVAL, err, errlen,
                                  "analog channel %zu sample %zu: value not representable", ch + 1,
                                  i + 1);
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        any = 1;
    }
    if (cfg->ft == COMTRADE_FLOAT32) {
        a->a = 1;
        a->b = 0;
        a->min = any ? (float)lo : 0;
        a->max = any ? (float)hi : 0;
        return 0;
    }
    range = cfg->ft == COMTRADE_BINARY     ? R_BINARY
            : cfg->ft == COMTRADE_BINARY32 ? R_BINARY32
                                           : R_ASCII;
    if (!any) {
        a->a = 1;
        a->b = 0;
        a->min = a->max = 0;
        return 0;
    }
    mid = lo / 2 + hi / 2;
    half = hi / 2 - lo / 2;
    a->b = mid;
    a->a = half > 0 ? half / range : 1;
    if (!(a->a > 0) || !isfinite(a->a))
        return comtrade__fail(GS_EINVAL, err, errlen,
                              "analog channel %zu: value range not representable", ch + 1);
    a->min = range; /* narrowed to the raw values actually written, below */
    a->max = -range;
    for (size_t i = 0; i < n; i++) {
        double x;
        if (isnan(v[i]))
            continue;
        x = round((v[i] - a->b) / a->a);
        x = x < -range ? -range : x > range ? range : x;
        a->min = x < a->min ? x : a->min;
        a->max = x > a->max ? x : a->max;
    }
    return 0;
}

static double quantise(const comtrade_analog_t *a, double v, double range)
{
    double x = round((v - a->b) / a->a);

    if (x == 0)
        x = 0; /* no "-0" in ASCII files */
    return x < -range ? -range : x > range ? range : x;
}

static void put_u16(buf_t *b, uint16_t v)
{
    uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_append(b, le, 2);
}

static void put_u32(buf_t *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    buf_append(b, le, 4);
}

/* Encodes the .dat of a cfg already scaled by scale_channel(). */
static int encode_dat(const comtrade_cfg_t *cfg, const comtrade_data_t *data, buf_t *dat, char *err,
                      size_t errlen)
{
    size_t ns = data->nsamples, ndw = (cfg->ndigital + 15) / 16;
    int64_t tsmax = cfg->ft == COMTRADE_ASCII ? MAX_ASCII_SAMPNUM : (int64_t)MISSING_TS - 1;
    double unit = ts_unit(cfg);
    ratecur_t rc;

    ratecur_init(&rc, cfg);
    if (cfg->ft != COMTRADE_ASCII)
        buf_reserve(dat, ns * rec_bytes(cfg, ndw));
    for (size_t i = 0; i < ns; i++) {
        int64_t ts = -1;
        double t;

        if (cfg->nrates) {
            t = ratecur_next(&rc, (int64_t)i + 1) / unit;
            if (t >= 0 && t <= (double)tsmax) /* else non-critical: written as missing */
                ts = llround(t);
        } else if (data->time_ns[i] != COMTRADE_TIME_NONE) {
            t = round((double)data->time_ns[i] / unit);
            if (!(t >= 0 && t <= (double)tsmax))
                return comtrade__fail(GS_EINVAL, err, errlen,
                                      "sample %zu: time %lld ns gives timestamp %.0f outside "
                                      "0..%lld (adjust timemult)",
                                      i + 1, (long long)data->time_ns[i], t, (long long)tsmax);
            ts = llround(t);
        }
        if (cfg->ft == COMTRADE_ASCII) {
            buf_printf(dat, "%zu,", i + 1);
            if (ts >= 0)
                buf_printf(dat, "%lld", (long long)ts);
            for (size_t ch = 0; ch < cfg->nanalog; ch++) {
                double v = data->analog[ch][i];
                if (isnan(v))
                    buf_puts(dat, cfg->rev_year <= 1999 ? ",99999" : ",");
                else
                    buf_printf(dat, ",%.0f", quantise(&cfg->analog[ch], v, R_ASCII));
            }
            for (size_t ch = 0; ch < cfg->ndigital; ch++) {
                uint16_t w = data->digital ? data->digital[i * ndw + ch / 16] : 0;
                buf_puts(dat, (w >> (ch % 16)) & 1 ? ",1" : ",0");
            }
            buf_puts(dat, "\r\n");
            continue;
        }
        put_u32(dat, (uint32_t)(i + 1));
        put_u32(dat, ts >= 0 ? (uint32_t)ts : MISSING_TS);
        for (size_t ch = 0; ch < cfg->nanalog; ch++) {
            double v = data->analog[ch][i];
            if (cfg->ft == COMTRADE_FLOAT32) {
                float f = (float)v;
                uint32_t u;
                memcpy(&u, &f, sizeof u);
                put_u32(dat, u);
            } else if (cfg->ft == COMTRADE_BINARY) {
                put_u16(dat, isnan(v) ? (uint16_t)MISSING16
                                      : (uint16_t)(int16_t)quantise(&cfg->analog[ch], v, R_BINARY));
            } else {
                put_u32(dat, isnan(v)
                                 ? MISSING32
                                 : (uint32_t)(int32_t)quantise(&cfg->analog[ch], v, R_BINARY32));
            }
        }
        for (size_t w = 0; w < ndw; w++)
            put_u16(dat, data->digital ? data->digital[i * ndw + w] : 0);
    }
    return 0;
}

/* Appends text as a .cff section body, refusing lines that would read as section headers. */
static int put_section_text(buf_t *out, const char *name, const char *text, char *err,
                            size_t errlen)
{
    size_t n = text ? strlen(text) : 0;
    const char *p = text;

    buf_printf(out, "--- file type: %s ---\r\n", name);
    if (!n)
        return 0;
    for (const char *end = text + n; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(end - p) >= 3 && memcmp(p, "---", 3) == 0)
            return comtrade__fail(GS_EINVAL, err, errlen,
                                  "%s text has a line starting with '---' (a .cff section "
                                  "header)",
                                  name);
        p = nl ? nl + 1 : end;
    }
    buf_append(out, text, n);
    if (text[n - 1] != '\n')
        buf_puts(out, "\r\n");
    return 0;
}

int comtrade_encode(const comtrade_cfg_t *cfg, const comtrade_data_t *data, unsigned flags,
                    buf_t *cfg_out, buf_t *dat_out, char *err, size_t errlen)
{
    comtrade_cfg_t w;
    buf_t dat = {0};
    size_t ns;
    int rc;

    memset(&w, 0, sizeof w);
    if ((rc = comtrade__cfg_check(cfg, err, errlen)) != 0)
        return rc;
    if (!data || !cfg_out || (!(flags & COMTRADE_WRITE_CFF) && !dat_out) ||
        (flags & ~(unsigned)COMTRADE_WRITE_CFF))
        return comtrade__fail(GS_EINVAL, err, errlen, "bad arguments");
    ns = data->nsamples;
    if (ns > (size_t)(cfg->ft == COMTRADE_ASCII ? MAX_ASCII_SAMPNUM : (int64_t)UINT32_MAX))
        return comtrade__fail(GS_EINVAL, err, errlen, "%zu samples exceed the format's limit", ns);
    if (ns && cfg->nanalog && !data->analog)
        return comtrade__fail(GS_EINVAL, err, errlen, "no analog data");
    for (size_t ch = 0; ns && ch < cfg->nanalog; ch++)
        if (!data->analog[ch])
            return comtrade__fail(GS_EINVAL, err, errlen, "no data for analog channel %zu", ch + 1);
    if (cfg->nrates == 0 && ns && !data->time_ns)
        return comtrade__fail(GS_EINVAL, err, errlen, "nrates is 0 but no sample times given");
    if (cfg->nrates && (size_t)cfg->endsamp != ns)
        return comtrade__fail(GS_EINVAL, err, errlen,
                              "the rate table ends at sample %lld but there are %zu samples",
                              (long long)cfg->endsamp, ns);

    comtrade__cfg_copy(&w, cfg);
    if (w.nrates == 0)
        w.endsamp = (int64_t)ns;
    for (size_t ch = 0; ch < w.nanalog; ch++)
        if ((rc = scale_channel(&w, ch, ns ? data->analog[ch] : NULL, ns, err, errlen)) != 0)
            goto fail;
    if ((rc = encode_dat(&w, data, &dat, err, errlen)) != 0)
        goto fail;
    if (!(flags & COMTRADE_WRITE_CFF)) {
        if ((rc = comtrade_cfg_format(&w, cfg_out, err, errlen)) != 0)
            goto fail;
        buf_append(dat_out, dat.data, dat.len);
    } else {
        buf_t cff = {0};
        buf_puts(&cff, "--- file type: CFG ---\r\n");
        if ((rc = comtrade_cfg_format(&w, &cff, err, errlen)) != 0 ||
            (rc = put_section_text(&cff, "INF", data->inf, err, errlen)) != 0 ||
            (rc = put_section_text(&cff, "HDR", data->hdr, err, errlen)) != 0) {
            buf_free(&cff);
            goto fail;
        }
        if (w.ft == COMTRADE_ASCII)
            buf_puts(&cff, "--- file type: DAT ASCII ---\r\n");
        else
            buf_printf(&cff, "--- file type: DAT BINARY: %zu ---\r\n", dat.len);
        buf_append(&cff, dat.data, dat.len);
        buf_append(cfg_out, cff.data, cff.len);
        buf_free(&cff);
    }
    rc = 0;
fail:
    buf_free(&dat);
    comtrade_cfg_free(&w);
    return rc;
}
