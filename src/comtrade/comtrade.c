/* COMTRADE configuration (.cfg) text: parser, formatter, validation (IEEE C37.111-1999 clause 6,
 * C37.111-2013 / IEC 60255-24:2013 clause 7). The parser walks the text with bounded spans
 * (pointer + length into the caller's buffer); nothing is read outside text[0..len). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comtrade/internal.h"
#include "core/err.h"
#include "core/util.h"

#define STR_(x)     #x
#define STR(x)      STR_(x)
#define MAX_FIELDS  16           /* more than any cfg line has (analog lines: 13) */
#define MAX_INDEX   999999       /* An / Dn (2013 clause 7.4.3) */
#define MAX_SAMPNUM 9999999999LL /* sample numbers: 10 digits (2013 clause 7.4.6) */
#define MAX_TZ_MIN  (23 * 60 + 59)
#define NS_PER_S    1000000000LL
#define NS_PER_DAY  (86400LL * NS_PER_S)
#define YEAR_MIN    1900
#define YEAR_MAX    2261 /* int64 ns since 1970 end in April 2262 */

/* The fields of one comma-separated line. n counts all fields, even beyond MAX_FIELDS (only the
 * first MAX_FIELDS are kept); lines with that many fields are rejected by their count check. */
typedef struct {
    span_t f[MAX_FIELDS];
    int n;
} fields_t;

/* Line reader over the cfg text. */
typedef struct {
    const char *p, *end; /* unread text */
    int lineno;          /* number of the line last returned */
    char *err;
    size_t errlen;
} lexer_t;

int comtrade__fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int comtrade__add_ns(int64_t base, double off, int64_t *out)
{
    int64_t o;

    if (!(off > -9.2e18 && off < 9.2e18)) /* also rejects NAN */
        return GS_ERANGE;
    o = llround(off);
    if (__builtin_add_overflow(base, o, out) || *out == COMTRADE_TIME_NONE)
        return GS_ERANGE;
    return 0;
}

void comtrade__put_num(buf_t *b, double v)
{
    char tmp[40];

    if (v == 0) { /* also -0 */
        buf_puts(b, "0");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e17) { /* integers without exponent: "1000", not "1e+03" */
        snprintf(tmp, sizeof tmp, "%.0f", v);
        buf_puts(b, tmp);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(b, tmp);
}

/* ---- Spans and fields ------------------------------------------------------------------------ */

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
    while (s.n > 0 && is_blank(s.p[s.n - 1]))
        s.n--;
    return s;
}

static void split(span_t line, fields_t *fs)
{
    fs->n = 0;
    for (;;) {
        const char *comma = line.n ? memchr(line.p, ',', line.n) : NULL;
        size_t k = comma ? (size_t)(comma - line.p) : line.n;
        span_t f = {line.p, k};

        if (fs->n < MAX_FIELDS)
            fs->f[fs->n] = trim(f);
        fs->n++;
        if (!comma)
            break;
        line.p += k + 1;
        line.n -= k + 1;
    }
}

/* Drops one empty trailing field (a trailing comma, written by some recorders). */
static void fit_fields(fields_t *fs, int expected)
{
    if (fs->n == expected + 1 && fs->n <= MAX_FIELDS && fs->f[fs->n - 1].n == 0)
        fs->n--;
}

/* Field i (1-based); empty if the line has fewer. */
static span_t fld(const fields_t *fs, int i)
{
    span_t empty = {"", 0};

    return i >= 1 && i <= fs->n && i <= MAX_FIELDS ? fs->f[i - 1] : empty;
}

/* Copies a field value for a message: at most 40 bytes, non-printable bytes as '?'. */
static void quote(span_t v, char *out, size_t cap)
{
    size_t n = v.n < 40 ? v.n : 40, k = 0;

    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)v.p[i];
        out[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (v.n > n && k + 4 < cap) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

static int num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

int comtrade__num_of(span_t s, double *out)
{
    char tmp[65], *end;
    double v;

    if (s.n == 0 || s.n >= sizeof tmp)
        return -1;
    for (size_t i = 0; i < s.n; i++)
        if (!num_char(s.p[i]))
            return -1;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = 0;
    v = strtod(tmp, &end);
    if (end != tmp + s.n || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Parses an optionally signed decimal integer that fits int64. 0 or -1. */
static int int_of(span_t s, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;

    if (s.n > 0 && (s.p[0] == '+' || s.p[0] == '-')) {
        neg = s.p[0] == '-';
        i = 1;
    }
    if (i == s.n)
        return -1;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        if (v > (uint64_t)INT64_MAX / 10)
            return -1;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
        if (v > (uint64_t)INT64_MAX)
            return -1;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* ---- Calendar (proleptic Gregorian, H. Hinnant's days_from_civil) --------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Consumes mind..maxd decimal digits from the front of *s into *val. 0 or -1. */
static int take_digits(span_t *s, int mind, int maxd, int64_t *val, int *ndig)
{
    int n = 0;
    int64_t v = 0;

    while (n < maxd && (size_t)n < s->n && s->p[n] >= '0' && s->p[n] <= '9') {
        v = v * 10 + (s->p[n] - '0');
        n++;
    }
    if (n < mind)
        return -1;
    s->p += n;
    s->n -= (size_t)n;
    *val = v;
    if (ndig)
        *ndig = n;
    return 0;
}

static int take_char(span_t *s, char c)
{
    if (s->n == 0 || s->p[0] != c)
        return -1;
    s->p++;
    s->n--;
    return 0;
}

/* "dd/mm/yyyy" (mdy: "mm/dd/yyyy", 1991; yy allowed then, 70..99 = 19yy) to days since
 * 1970-01-01. Returns 0, or -1 with *why set. */
static int date_of(span_t s, int mdy, int64_t *days, const char **why)
{
    int64_t a, b, y;
    int ny;

    *why = "expected dd/mm/yyyy";
    if (mdy)
        *why = "expected mm/dd/yyyy";
    if (take_digits(&s, 1, 2, &a, NULL) || take_char(&s, '/') || take_digits(&s, 1, 2, &b, NULL) ||
        take_char(&s, '/') || take_digits(&s, 2, 4, &y, &ny) || s.n != 0 || ny == 3 ||
        (ny == 2 && !mdy))
        return -1;
    if (ny == 2)
        y += y >= 70 ? 1900 : 2000;
    if (mdy) {
        int64_t t = a;
        a = b;
        b = t;
    }
    /* a = day, b = month */
    if (b < 1 || b > 12 || a < 1 || a > days_in_month((int)y, (int)b)) {
        *why = "no such date";
        return -1;
    }
    if (y < YEAR_MIN || y > YEAR_MAX) {
        *why = "year outside 1900..2261";
        return -1;
    }
    *days = days_from_civil(y, (int)b, (int)a);
    return 0;
}

/* "hh:mm:ss[.f]" with 1..9 fraction digits to ns since midnight. 0 or -1. */
static int time_of(span_t s, int64_t *ns, int *fracdig, const char **why)
{
    int64_t h, m, sec, frac = 0;
    int nf = 0;

    *why = "expected hh:mm:ss.ssssss";
    if (take_digits(&s, 1, 2, &h, NULL) || take_char(&s, ':') || take_digits(&s, 2, 2, &m, NULL) ||
        take_char(&s, ':') || take_digits(&s, 2, 2, &sec, NULL))
        return -1;
    if (s.n > 0 && (take_char(&s, '.') || take_digits(&s, 1, 9, &frac, &nf)))
        return -1;
    if (s.n != 0)
        return -1;
    if (h > 23 || m > 59 || sec > 60) {
        *why = "no such time of day";
        return -1;
    }
    for (int i = nf; i < 9; i++)
        frac *= 10;
    *ns = ((h * 60 + m) * 60 + sec) * NS_PER_S + frac;
    *fracdig = nf;
    return 0;
}

/* time_code / local_code (2013 clause 7.4.11): "0", "-4", "+5h30"; "x" where allow_x. Empty is
 * accepted as 0. Returns minutes east of UTC via *min; 0 or -1. */
static int tz_of(span_t s, int allow_x, int *min)
{
    int64_t h, m = 0;
    int sign = 1;

    *min = 0;
    if (s.n == 0)
        return 0;
    if (allow_x && s.n == 1 && (s.p[0] == 'x' || s.p[0] == 'X'))
        return 0;
    if (s.p[0] == '+' || s.p[0] == '-') {
        sign = s.p[0] == '-' ? -1 : 1;
        s.p++;
        s.n--;
    }
    if (take_digits(&s, 1, 2, &h, NULL))
        return -1;
    if (s.n > 0 && ((take_char(&s, 'h') && take_char(&s, 'H')) || take_digits(&s, 2, 2, &m, NULL)))
        return -1;
    if (s.n != 0 || h > 23 || m > 59)
        return -1;
    *min = sign * (int)(h * 60 + m);
    return 0;
}

/* ---- Lexer and typed field readers ----------------------------------------------------------- */

/* Returns 1 with the next line (CR and trailing blanks removed), 0 at the end of the text, or a
 * negative error for a line longer than COMTRADE_MAX_LINE. */
static int next_line(lexer_t *lx, span_t *line)
{
    size_t avail, n;
    const char *nl;

    if (lx->p >= lx->end)
        return 0;
    avail = (size_t)(lx->end - lx->p);
    nl = memchr(lx->p, '\n', avail);
    n = nl ? (size_t)(nl - lx->p) : avail;
    lx->lineno++;
    line->p = lx->p;
    line->n = n;
    lx->p = nl ? nl + 1 : lx->end;
    if (line->n > 0 && line->p[line->n - 1] == '\r')
        line->n--;
    while (line->n > 0 && is_blank(line->p[line->n - 1]))
        line->n--;
    if (line->n > COMTRADE_MAX_LINE)
        return comtrade__fail(GS_ELIMIT, lx->err, lx->errlen, "line %d: longer than %d bytes",
                              lx->lineno, COMTRADE_MAX_LINE);
    return 1;
}

/* next_line() where the line is required. */
static int need_line(lexer_t *lx, span_t *line, const char *what)
{
    int rc = next_line(lx, line);

    if (rc == 0)
        return comtrade__fail(GS_EPROTO, lx->err, lx->errlen,
                              "line %d: unexpected end of file, expected %s", lx->lineno + 1, what);
    return rc < 0 ? rc : 0;
}

static int nfields_err(lexer_t *lx, const fields_t *fs, const char *expected, const char *what)
{
    return comtrade__fail(GS_EPROTO, lx->err, lx->errlen, "line %d: %d fields, expected %s (%s)",
                          lx->lineno, fs->n, expected, what);
}

static int field_err(lexer_t *lx, int i, const char *name, const char *problem, span_t v)
{
    char q[64];

    if (v.n == 0)
        return comtrade__fail(GS_EPROTO, lx->err, lx->errlen, "line %d: field %d (%s): %s",
                              lx->lineno, i, name, problem);
    quote(v, q, sizeof q);
    return comtrade__fail(GS_EPROTO, lx->err, lx->errlen, "line %d: field %d (%s): %s: '%s'",
                          lx->lineno, i, name, problem, q);
}

static int get_text(lexer_t *lx, const fields_t *fs, int i, const char *name, char *dst)
{
    span_t v = fld(fs, i);

    if (v.n > COMTRADE_NAME_MAX)
        return field_err(lx, i, name, "too long (limit " STR(COMTRADE_NAME_MAX) " bytes)", v);
    for (size_t k = 0; k < v.n; k++) {
        unsigned char c = (unsigned char)v.p[k];
        if (c < 0x20 || c == 0x7f)
            return field_err(lx, i, name, "control character in text", v);
    }
    if (v.n)
        memcpy(dst, v.p, v.n);
    dst[v.n] = 0;
    return 0;
}

/* A number field; empty gives dflt unless required. */
static int get_num(lexer_t *lx, const fields_t *fs, int i, const char *name, int required,
                   double dflt, double *out)
{
    span_t v = fld(fs, i);

    if (v.n == 0) {
        if (required)
            return field_err(lx, i, name, "required field is empty", v);
        *out = dflt;
        return 0;
    }
    if (comtrade__num_of(v, out))
        return field_err(lx, i, name, "not a number", v);
    return 0;
}

/* An integer field in [min, max]; empty gives dflt unless required. */
static int get_int(lexer_t *lx, const fields_t *fs, int i, const char *name, int64_t min,
                   int64_t max, int required, int64_t dflt, int64_t *out)
{
    span_t v = fld(fs, i);
    char problem[80];

    if (v.n == 0) {
        if (required)
            return field_err(lx, i, name, "required field is empty", v);
        *out = dflt;
        return 0;
    }
    if (int_of(v, out))
        return field_err(lx, i, name, "not an integer", v);
    if (*out < min || *out > max) {
        snprintf(problem, sizeof problem, "out of range %lld..%lld", (long long)min,
                 (long long)max);
        return field_err(lx, i, name, problem, v);
    }
    return 0;
}

/* "12A" / "3D" of line 2. */
static int get_count(lexer_t *lx, const fields_t *fs, int i, const char *name, char suffix,
                     int64_t *out)
{
    span_t v = fld(fs, i), d;

    if (v.n < 2 || (v.p[v.n - 1] != suffix && v.p[v.n - 1] != suffix + ('a' - 'A')))
        return field_err(lx, i, name,
                         suffix == 'A' ? "expected a count followed by 'A'"
                                       : "expected a count followed by 'D'",
                         v);
    d.p = v.p;
    d.n = v.n - 1;
    if (int_of(trim(d), out) || *out < 0)
        return field_err(lx, i, name, "not a count", v);
    if (*out > COMTRADE_MAX_CHANNELS)
        return comtrade__fail(GS_ELIMIT, lx->err, lx->errlen,
                              "line %d: field %d (%s): %lld channels exceed the limit of %d",
                              lx->lineno, i, name, (long long)*out, COMTRADE_MAX_CHANNELS);
    return 0;
}

/* One date line ("dd/mm/yyyy,hh:mm:ss.ssssss"). */
static int get_stamp(lexer_t *lx, const char *what, int mdy, int64_t *ns, int *fracdig)
{
    span_t line;
    fields_t fs;
    int64_t days, tod;
    const char *why;
    int rc;

    if ((rc = need_line(lx, &line, what)) != 0)
        return rc;
    split(line, &fs);
    fit_fields(&fs, 2);
    if (fs.n != 2)
        return nfields_err(lx, &fs, "2", what);
    if (date_of(fld(&fs, 1), mdy, &days, &why))
        return field_err(lx, 1, "date", why, fld(&fs, 1));
    if (time_of(fld(&fs, 2), &tod, fracdig, &why))
        return field_err(lx, 2, "time", why, fld(&fs, 2));
    *ns = days * NS_PER_DAY + tod;
    if (*ns >= days_from_civil(YEAR_MAX + 1, 1, 1) * NS_PER_DAY) /* 31/12/2261 23:59:60 */
        return field_err(lx, 2, "time", "after the end of 2261", fld(&fs, 2));
    return 0;
}

/* Number of newlines left: bounds the channel arrays by what the input can hold. */
static size_t lines_left(const lexer_t *lx)
{
    size_t n = 1;
    const char *p = lx->p;

    while (p < lx->end) {
        const char *nl = memchr(p, '\n', (size_t)(lx->end - p));
        if (!nl)
            break;
        n++;
        p = nl + 1;
    }
    return n;
}

/* ---- Parser ---------------------------------------------------------------------------------- */

static int parse_channels(lexer_t *lx, comtrade_cfg_t *c)
{
    span_t line;
    fields_t fs;
    int64_t v;
    char what[64];
    int rc;

    for (size_t k = 0; k < c->nanalog; k++) {
        comtrade_analog_t *a = &c->analog[k];
        int n13;

        snprintf(what, sizeof what, "analog channel %zu of %zu", k + 1, c->nanalog);
        if ((rc = need_line(lx, &line, what)) != 0)
            return rc;
        split(line, &fs);
        fit_fields(&fs, 13);
        n13 = fs.n == 13;
        if (!n13 && !(c->rev_year == 1991 && fs.n == 10))
            return nfields_err(lx, &fs, c->rev_year == 1991 ? "10 or 13" : "13", what);
        if ((rc = get_int(lx, &fs, 1, "An", 1, MAX_INDEX, 1, 0, &v)) != 0)
            return rc;
        a->index = (int)v;
        if ((rc = get_text(lx, &fs, 2, "ch_id", a->ch_id)) != 0 ||
            (rc = get_text(lx, &fs, 3, "ph", a->ph)) != 0 ||
            (rc = get_text(lx, &fs, 4, "ccbm", a->ccbm)) != 0 ||
            (rc = get_text(lx, &fs, 5, "uu", a->uu)) != 0 ||
            (rc = get_num(lx, &fs, 6, "a", 1, 0, &a->a)) != 0 ||
            (rc = get_num(lx, &fs, 7, "b", 1, 0, &a->b)) != 0 ||
            (rc = get_num(lx, &fs, 8, "skew", 0, 0, &a->skew)) != 0 ||
            (rc = get_num(lx, &fs, 9, "min", 0, 0, &a->min)) != 0 ||
            (rc = get_num(lx, &fs, 10, "max", 0, 0, &a->max)) != 0)
            return rc;
        a->primary = a->secondary = 1;
        a->ps = 'P';
        if (n13) {
            span_t ps = fld(&fs, 13);
            if ((rc = get_num(lx, &fs, 11, "primary", 0, 1, &a->primary)) != 0 ||
                (rc = get_num(lx, &fs, 12, "secondary", 0, 1, &a->secondary)) != 0)
                return rc;
            if (ps.n == 1 && (ps.p[0] == 'P' || ps.p[0] == 'p'))
                a->ps = 'P';
            else if (ps.n == 1 && (ps.p[0] == 'S' || ps.p[0] == 's'))
                a->ps = 'S';
            else if (ps.n != 0)
                return field_err(lx, 13, "PS", "expected P or S", ps);
        }
    }
    for (size_t k = 0; k < c->ndigital; k++) {
        comtrade_digital_t *d = &c->digital[k];
        int n5;

        snprintf(what, sizeof what, "digital channel %zu of %zu", k + 1, c->ndigital);
        if ((rc = need_line(lx, &line, what)) != 0)
            return rc;
        split(line, &fs);
        fit_fields(&fs, 5);
        n5 = fs.n == 5;
        if (!n5 && !(c->rev_year == 1991 && fs.n == 3))
            return nfields_err(lx, &fs, c->rev_year == 1991 ? "3 or 5" : "5", what);
        if ((rc = get_int(lx, &fs, 1, "Dn", 1, MAX_INDEX, 1, 0, &v)) != 0)
            return rc;
        d->index = (int)v;
        if ((rc = get_text(lx, &fs, 2, "ch_id", d->ch_id)) != 0)
            return rc;
        if (n5 && ((rc = get_text(lx, &fs, 3, "ph", d->ph)) != 0 ||
                   (rc = get_text(lx, &fs, 4, "ccbm", d->ccbm)) != 0))
            return rc;
        if ((rc = get_int(lx, &fs, n5 ? 5 : 3, "y", 0, 1, 0, 0, &v)) != 0)
            return rc;
        d->y = (int)v;
    }
    return 0;
}

static int parse_rates(lexer_t *lx, comtrade_cfg_t *c)
{
    span_t line;
    fields_t fs;
    int64_t v, prev = 0;
    char what[64];
    int rc;

    if ((rc = need_line(lx, &line, "nrates")) != 0)
        return rc;
    split(line, &fs);
    fit_fields(&fs, 1);
    if (fs.n != 1)
        return nfields_err(lx, &fs, "1", "nrates");
    if ((rc = get_int(lx, &fs, 1, "nrates", 0, INT64_MAX, 1, 0, &v)) != 0)
        return rc;
    if (v > COMTRADE_MAX_RATES)
        return comtrade__fail(GS_ELIMIT, lx->err, lx->errlen,
                              "line %d: field 1 (nrates): %lld rates exceed the limit of %d",
                              lx->lineno, (long long)v, COMTRADE_MAX_RATES);
    c->nrates = (size_t)v;
    if (c->nrates == 0) {
        /* "0,endsamp" follows (1999 clause 3.3.5); tolerate its absence. */
        lexer_t save = *lx;
        if ((rc = need_line(lx, &line, "samp,endsamp")) != 0)
            return rc;
        if (line.n && memchr(line.p, '/', line.n)) {
            *lx = save;
            return 0;
        }
        split(line, &fs);
        fit_fields(&fs, 2);
        if (fs.n != 2)
            return nfields_err(lx, &fs, "2", "samp,endsamp");
        double samp;
        if ((rc = get_num(lx, &fs, 1, "samp", 0, 0, &samp)) != 0 ||
            (rc = get_int(lx, &fs, 2, "endsamp", 0, MAX_SAMPNUM, 0, 0, &c->endsamp)) != 0)
            return rc;
        return 0;
    }
    c->rates = xcalloc(c->nrates, sizeof *c->rates);
    for (size_t k = 0; k < c->nrates; k++) {
        comtrade_rate_t *r = &c->rates[k];

        snprintf(what, sizeof what, "samp,endsamp %zu of %zu", k + 1, c->nrates);
        if ((rc = need_line(lx, &line, what)) != 0)
            return rc;
        split(line, &fs);
        fit_fields(&fs, 2);
        if (fs.n != 2)
            return nfields_err(lx, &fs, "2", what);
        if ((rc = get_num(lx, &fs, 1, "samp", 1, 0, &r->samp)) != 0 ||
            (rc = get_int(lx, &fs, 2, "endsamp", 1, MAX_SAMPNUM, 1, 0, &r->endsamp)) != 0)
            return rc;
        if (!(r->samp > 0))
            return field_err(lx, 1, "samp", "sample rate must be > 0", fld(&fs, 1));
        if (r->endsamp <= prev)
            return field_err(lx, 2, "endsamp", "not after the previous rate's endsamp",
                             fld(&fs, 2));
        prev = r->endsamp;
    }
    c->endsamp = prev;
    return 0;
}

/* Reads an optional line: 1 with a non-blank line, 0 if the text ended or the line is blank. */
static int optional_line(lexer_t *lx, span_t *line)
{
    int rc = next_line(lx, line);

    if (rc <= 0)
        return rc;
    return line->n > 0;
}

static int parse_tail(lexer_t *lx, comtrade_cfg_t *c)
{
    span_t line;
    fields_t fs;
    int64_t v;
    int rc, d1 = 0, d2 = 0;
    static const char *const ft_names[] = {"ASCII", "BINARY", "BINARY32", "FLOAT32"};

    if ((rc = get_stamp(lx, "first sample time", c->rev_year == 1991, &c->start_ns, &d1)) != 0 ||
        (rc = get_stamp(lx, "trigger time", c->rev_year == 1991, &c->trigger_ns, &d2)) != 0)
        return rc;
    c->nanosec = d1 > 6 || d2 > 6;

    if ((rc = need_line(lx, &line, "file type")) != 0)
        return rc;
    split(line, &fs);
    fit_fields(&fs, 1);
    if (fs.n != 1)
        return nfields_err(lx, &fs, "1", "file type");
    {
        span_t f = fld(&fs, 1);
        int found = 0;
        for (int k = 0; k < 4 && !found; k++) {
            if (f.n == strlen(ft_names[k]) && strncasecmp(f.p, ft_names[k], f.n) == 0) {
                c->ft = (comtrade_ft_t)k;
                found = 1;
            }
        }
        if (!found)
            return field_err(lx, 1, "ft", "expected ASCII, BINARY, BINARY32 or FLOAT32", f);
    }

    c->timemult = 1;
    if ((rc = optional_line(lx, &line)) < 0)
        return rc;
    if (rc > 0) {
        split(line, &fs);
        fit_fields(&fs, 1);
        if (fs.n != 1)
            return nfields_err(lx, &fs, "1", "timemult");
        if ((rc = get_num(lx, &fs, 1, "timemult", 0, 1, &c->timemult)) != 0)
            return rc;
        if (!(c->timemult > 0))
            return field_err(lx, 1, "timemult", "must be > 0", fld(&fs, 1));
    }

    if (c->rev_year == 2013) {
        if ((rc = optional_line(lx, &line)) < 0)
            return rc;
        if (rc > 0) {
            span_t tc, lc;
            split(line, &fs);
            fit_fields(&fs, 2);
            if (fs.n != 2)
                return nfields_err(lx, &fs, "2", "time_code,local_code");
            tc = fld(&fs, 1);
            lc = fld(&fs, 2);
            if (tz_of(tc, 0, &c->time_code_min))
                return field_err(lx, 1, "time_code", "expected an offset like -4 or +5h30", tc);
            if (tz_of(lc, 1, &c->local_code_min))
                return field_err(lx, 2, "local_code", "expected an offset like -4, +5h30 or x", lc);
            memcpy(c->time_code, tc.p, tc.n); /* the grammar bounds these to 6 bytes */
            c->time_code[tc.n] = 0;
            memcpy(c->local_code, lc.p, lc.n);
            c->local_code[lc.n] = 0;
        }
        if ((rc = optional_line(lx, &line)) < 0)
            return rc;
        if (rc > 0) {
            span_t q;
            split(line, &fs);
            fit_fields(&fs, 2);
            if (fs.n != 2)
                return nfields_err(lx, &fs, "2", "tmq_code,leapsec");
            q = fld(&fs, 1);
            if (q.n == 1 && q.p[0] >= '0' && q.p[0] <= '9')
                c->tmq_code = q.p[0] - '0';
            else if (q.n == 1 && (q.p[0] | 0x20) >= 'a' && (q.p[0] | 0x20) <= 'f')
                c->tmq_code = (q.p[0] | 0x20) - 'a' + 10;
            else if (q.n != 0)
                return field_err(lx, 1, "tmq_code", "expected one hex digit", q);
            if ((rc = get_int(lx, &fs, 2, "leapsec", 0, 3, 0, -1, &v)) != 0)
                return rc;
            c->leapsec = (int)v;
        }
    }

    /* Only blank lines (and a DOS end-of-file ^Z) may follow. */
    while ((rc = next_line(lx, &line)) > 0) {
        for (size_t k = 0; k < line.n; k++)
            if (!is_blank(line.p[k]) && line.p[k] != 0x1a)
                return comtrade__fail(GS_EPROTO, lx->err, lx->errlen,
                                      "line %d: unexpected text after the end of the "
                                      "configuration (revision %d)",
                                      lx->lineno, c->rev_year);
    }
    return rc;
}

int comtrade__cfg_parse_at(const char *text, size_t len, int first_line, comtrade_cfg_t *out,
                           char *err, size_t errlen)
{
    lexer_t lx = {text, text + len, first_line - 1, err, errlen};
    comtrade_cfg_t c;
    span_t line;
    fields_t fs;
    int64_t tt, na, nd;
    size_t cap;
    int rc;

    memset(out, 0, sizeof *out);
    memset(&c, 0, sizeof c);
    c.tmq_code = c.leapsec = -1;
    if (!text)
        return comtrade__fail(GS_EINVAL, err, errlen, "no cfg text");
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        lx.p += 3;

    /* station_name,rec_dev_id,rev_year (no rev_year: 1991) */
    if ((rc = need_line(&lx, &line, "station_name,rec_dev_id,rev_year")) != 0)
        goto fail;
    split(line, &fs);
    while (fs.f[0].n >= 3 && memcmp(fs.f[0].p, "\xEF\xBB\xBF", 3) == 0) { /* BOMs, blanks */
        fs.f[0].p += 3;
        fs.f[0].n -= 3;
        fs.f[0] = trim(fs.f[0]);
    }
    if (fs.n < 2 || fs.n > 3) {
        rc = nfields_err(&lx, &fs, "2 or 3", "station_name,rec_dev_id,rev_year");
        goto fail;
    }
    if ((rc = get_text(&lx, &fs, 1, "station_name", c.station)) != 0 ||
        (rc = get_text(&lx, &fs, 2, "rec_dev_id", c.rec_dev_id)) != 0 ||
        (rc = get_int(&lx, &fs, 3, "rev_year", 0, 9999, 0, 1991, &tt)) != 0)
        goto fail;
    if (tt != 1991 && tt != 1999 && tt != 2013) {
        rc = field_err(&lx, 3, "rev_year", "unsupported revision (1991, 1999, 2013)", fld(&fs, 3));
        goto fail;
    }
    c.rev_year = (int)tt;

    /* TT,##A,##D */
    if ((rc = need_line(&lx, &line, "TT,##A,##D")) != 0)
        goto fail;
    split(line, &fs);
    fit_fields(&fs, 3);
    if (fs.n != 3) {
        rc = nfields_err(&lx, &fs, "3", "TT,##A,##D");
        goto fail;
    }
    if ((rc = get_int(&lx, &fs, 1, "TT", 0, INT64_MAX, 1, 0, &tt)) != 0 ||
        (rc = get_count(&lx, &fs, 2, "##A", 'A', &na)) != 0 ||
        (rc = get_count(&lx, &fs, 3, "##D", 'D', &nd)) != 0)
        goto fail;
    if (tt != na + nd) {
        char problem[80];
        snprintf(problem, sizeof problem, "total is not %lldA + %lldD", (long long)na,
                 (long long)nd);
        rc = field_err(&lx, 1, "TT", problem, fld(&fs, 1));
        goto fail;
    }
    if (na + nd > COMTRADE_MAX_CHANNELS) {
        rc = comtrade__fail(GS_ELIMIT, err, errlen, "line %d: %lld channels exceed the limit of %d",
                            lx.lineno, (long long)tt, COMTRADE_MAX_CHANNELS);
        goto fail;
    }
    /* Never allocate more channel lines than the text has lines: input bounds the memory. */
    cap = lines_left(&lx);
    if ((size_t)(na + nd) > cap) {
        rc = comtrade__fail(GS_EPROTO, err, errlen,
                            "line %d: declares %lld channels but the file ends before them",
                            lx.lineno, (long long)tt);
        goto fail;
    }
    c.nanalog = (size_t)na;
    c.ndigital = (size_t)nd;
    if (na)
        c.analog = xcalloc((size_t)na, sizeof *c.analog);
    if (nd)
        c.digital = xcalloc((size_t)nd, sizeof *c.digital);
    if ((rc = parse_channels(&lx, &c)) != 0)
        goto fail;

    /* lf */
    if ((rc = need_line(&lx, &line, "lf")) != 0)
        goto fail;
    split(line, &fs);
    fit_fields(&fs, 1);
    if (fs.n != 1) {
        rc = nfields_err(&lx, &fs, "1", "lf");
        goto fail;
    }
    if ((rc = get_num(&lx, &fs, 1, "lf", 0, 0, &c.lf)) != 0)
        goto fail;
    if (c.lf < 0) {
        rc = field_err(&lx, 1, "lf", "must be >= 0", fld(&fs, 1));
        goto fail;
    }

    if ((rc = parse_rates(&lx, &c)) != 0 || (rc = parse_tail(&lx, &c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    comtrade_cfg_free(&c);
    return rc;
}

int comtrade_cfg_parse(const char *text, size_t len, comtrade_cfg_t *out, char *err, size_t errlen)
{
    return comtrade__cfg_parse_at(text, len, 1, out, err, errlen);
}

/* ---- Life cycle ------------------------------------------------------------------------------ */

void comtrade_cfg_init(comtrade_cfg_t *cfg, size_t nanalog, size_t ndigital, size_t nrates)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rev_year = 2013;
    cfg->nanalog = nanalog;
    cfg->ndigital = ndigital;
    cfg->nrates = nrates;
    if (nanalog)
        cfg->analog = xcalloc(nanalog, sizeof *cfg->analog);
    if (ndigital)
        cfg->digital = xcalloc(ndigital, sizeof *cfg->digital);
    if (nrates)
        cfg->rates = xcalloc(nrates, sizeof *cfg->rates);
    for (size_t k = 0; k < nanalog; k++) {
        cfg->analog[k].index = (int)(k + 1);
        cfg->analog[k].a = 1;
        cfg->analog[k].primary = cfg->analog[k].secondary = 1;
        cfg->analog[k].ps = 'P';
    }
    for (size_t k = 0; k < ndigital; k++)
        cfg->digital[k].index = (int)(k + 1);
    cfg->lf = 50;
    cfg->ft = COMTRADE_BINARY;
    cfg->timemult = 1;
    cfg->tmq_code = cfg->leapsec = -1;
}

void comtrade_cfg_free(comtrade_cfg_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->analog);
    free(cfg->digital);
    free(cfg->rates);
    memset(cfg, 0, sizeof *cfg);
}

void comtrade__cfg_copy(comtrade_cfg_t *dst, const comtrade_cfg_t *src)
{
    *dst = *src;
    dst->analog = NULL;
    dst->digital = NULL;
    dst->rates = NULL;
    if (src->nanalog) {
        dst->analog = xmalloc(src->nanalog * sizeof *dst->analog);
        memcpy(dst->analog, src->analog, src->nanalog * sizeof *dst->analog);
    }
    if (src->ndigital) {
        dst->digital = xmalloc(src->ndigital * sizeof *dst->digital);
        memcpy(dst->digital, src->digital, src->ndigital * sizeof *dst->digital);
    }
    if (src->nrates) {
        dst->rates = xmalloc(src->nrates * sizeof *dst->rates);
        memcpy(dst->rates, src->rates, src->nrates * sizeof *dst->rates);
    }
}

/* ---- Validation and formatting --------------------------------------------------------------- */

/* A text field the formatter can write and the parser reads back: NUL-terminated within cap,
 * at most COMTRADE_NAME_MAX bytes, no comma or control character. */
static const char *text_problem(const char *s, size_t cap)
{
    const char *nul = memchr(s, 0, cap);

    if (!nul)
        return "not NUL-terminated";
    if ((size_t)(nul - s) > COMTRADE_NAME_MAX)
        return "too long";
    for (const char *p = s; p < nul; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ',' || c < 0x20 || c == 0x7f)
            return "contains a comma or control character";
    }
    return NULL;
}

#define CHECK_TEXT(field, label, ...)                                                              \
    do {                                                                                           \
        const char *why_ = text_problem((field), sizeof(field));                                   \
        if (why_)                                                                                  \
            return comtrade__fail(GS_EINVAL, err, errlen, label ": %s", __VA_ARGS__, why_);        \
    } while (0)

static int finite_all(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

int comtrade__cfg_check(const comtrade_cfg_t *cfg, char *err, size_t errlen)
{
    int64_t lo = days_from_civil(YEAR_MIN, 1, 1) * NS_PER_DAY;
    int64_t hi = days_from_civil(YEAR_MAX + 1, 1, 1) * NS_PER_DAY;
    int64_t prev = 0;

    if (!cfg)
        return comtrade__fail(GS_EINVAL, err, errlen, "no cfg");
    if (cfg->rev_year != 1991 && cfg->rev_year != 1999 && cfg->rev_year != 2013)
        return comtrade__fail(GS_EINVAL, err, errlen, "rev_year %d is not 1991, 1999 or 2013",
                              cfg->rev_year);
    CHECK_TEXT(cfg->station, "station_name%s", "");
    CHECK_TEXT(cfg->rec_dev_id, "rec_dev_id%s", "");
    if (cfg->nanalog > COMTRADE_MAX_CHANNELS || cfg->ndigital > COMTRADE_MAX_CHANNELS ||
        cfg->nanalog + cfg->ndigital > COMTRADE_MAX_CHANNELS)
        return comtrade__fail(GS_EINVAL, err, errlen, "%zu + %zu channels exceed the limit of %d",
                              cfg->nanalog, cfg->ndigital, COMTRADE_MAX_CHANNELS);
    if ((cfg->nanalog && !cfg->analog) || (cfg->ndigital && !cfg->digital) ||
        (cfg->nrates && !cfg->rates))
        return comtrade__fail(GS_EINVAL, err, errlen, "channel or rate array missing");
    for (size_t k = 0; k < cfg->nanalog; k++) {
        const comtrade_analog_t *a = &cfg->analog[k];
        double nums[7] = {a->a, a->b, a->skew, a->min, a->max, a->primary, a->secondary};
        if (a->index < 1 || a->index > MAX_INDEX)
            return comtrade__fail(GS_EINVAL, err, errlen, "analog channel %zu: index %d", k + 1,
                                  a->index);
        CHECK_TEXT(a->ch_id, "analog channel %zu: ch_id", k + 1);
        CHECK_TEXT(a->ph, "analog channel %zu: ph", k + 1);
        CHECK_TEXT(a->ccbm, "analog channel %zu: ccbm", k + 1);
        CHECK_TEXT(a->uu, "analog channel %zu: uu", k + 1);
        if (!finite_all(nums, 7))
            return comtrade__fail(GS_EINVAL, err, errlen, "analog channel %zu: non-finite number",
                                  k + 1);
        if (a->ps != 'P' && a->ps != 'S' && a->ps != 'p' && a->ps != 's')
            return comtrade__fail(GS_EINVAL, err, errlen, "analog channel %zu: PS is not P or S",
                                  k + 1);
    }
    for (size_t k = 0; k < cfg->ndigital; k++) {
        const comtrade_digital_t *d = &cfg->digital[k];
        if (d->index < 1 || d->index > MAX_INDEX)
            return comtrade__fail(GS_EINVAL, err, errlen, "digital channel %zu: index %d", k + 1,
                                  d->index);
        CHECK_TEXT(d->ch_id, "digital channel %zu: ch_id", k + 1);
        CHECK_TEXT(d->ph, "digital channel %zu: ph", k + 1);
        CHECK_TEXT(d->ccbm, "digital channel %zu: ccbm", k + 1);
        if (d->y != 0 && d->y != 1)
            return comtrade__fail(GS_EINVAL, err, errlen, "digital channel %zu: y is not 0 or 1",
                                  k + 1);
    }
    if (!isfinite(cfg->lf) || cfg->lf < 0)
        return comtrade__fail(GS_EINVAL, err, errlen, "lf must be finite and >= 0");
    if (cfg->nrates > COMTRADE_MAX_RATES)
        return comtrade__fail(GS_EINVAL, err, errlen, "%zu rates exceed the limit of %d",
                              cfg->nrates, COMTRADE_MAX_RATES);
    for (size_t k = 0; k < cfg->nrates; k++) {
        const comtrade_rate_t *r = &cfg->rates[k];
        if (!isfinite(r->samp) || !(r->samp > 0) || r->endsamp <= prev || r->endsamp > MAX_SAMPNUM)
            return comtrade__fail(GS_EINVAL, err, errlen,
                                  "rate %zu: samp must be > 0 and endsamp increase (1..%lld)",
                                  k + 1, MAX_SAMPNUM);
        prev = r->endsamp;
    }
    if (cfg->nrates ? cfg->endsamp != prev : (cfg->endsamp < 0 || cfg->endsamp > MAX_SAMPNUM))
        return comtrade__fail(GS_EINVAL, err, errlen, "endsamp %lld does not match the rate table",
                              (long long)cfg->endsamp);
    if (cfg->start_ns < lo || cfg->start_ns >= hi || cfg->trigger_ns < lo || cfg->trigger_ns >= hi)
        return comtrade__fail(GS_EINVAL, err, errlen, "start or trigger time outside 1900..2261");
    if (cfg->nanosec != 0 && cfg->nanosec != 1)
        return comtrade__fail(GS_EINVAL, err, errlen, "nanosec must be 0 or 1");
    if ((int)cfg->ft < COMTRADE_ASCII || (int)cfg->ft > COMTRADE_FLOAT32)
        return comtrade__fail(GS_EINVAL, err, errlen, "unknown file type %d", (int)cfg->ft);
    if (!isfinite(cfg->timemult) || !(cfg->timemult > 0))
        return comtrade__fail(GS_EINVAL, err, errlen, "timemult must be finite and > 0");
    if (cfg->time_code_min < -MAX_TZ_MIN || cfg->time_code_min > MAX_TZ_MIN ||
        cfg->local_code_min < -MAX_TZ_MIN || cfg->local_code_min > MAX_TZ_MIN)
        return comtrade__fail(GS_EINVAL, err, errlen, "time_code/local_code beyond +-23h59");
    if (!memchr(cfg->local_code, 0, sizeof cfg->local_code) ||
        !memchr(cfg->time_code, 0, sizeof cfg->time_code))
        return comtrade__fail(GS_EINVAL, err, errlen, "time_code/local_code not NUL-terminated");
    if (cfg->tmq_code < -1 || cfg->tmq_code > 15 || cfg->leapsec < -1 || cfg->leapsec > 3)
        return comtrade__fail(GS_EINVAL, err, errlen, "tmq_code (0..15) or leapsec (0..3)");
    return 0;
}

static void put_stamp(buf_t *b, int64_t ns, int mdy, int nanosec)
{
    int64_t days = ns / NS_PER_DAY, rem, secs, frac;
    int y, m, d;

    if (ns % NS_PER_DAY < 0)
        days--;
    rem = ns - days * NS_PER_DAY;
    civil_from_days(days, &y, &m, &d);
    secs = rem / NS_PER_S;
    frac = rem % NS_PER_S;
    if (mdy)
        buf_printf(b, "%02d/%02d/%04d", m, d, y);
    else
        buf_printf(b, "%02d/%02d/%04d", d, m, y);
    buf_printf(b, ",%02d:%02d:%02d.", (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    if (nanosec)
        buf_printf(b, "%09lld\r\n", (long long)frac);
    else
        buf_printf(b, "%06lld\r\n", (long long)(frac / 1000));
}

/* 2013 clause 7.4.11 offsets: "0", "-4", "+5h30". */
static void put_tz(buf_t *b, int min)
{
    int a = min < 0 ? -min : min;

    if (min == 0)
        buf_puts(b, "0");
    else if (a % 60)
        buf_printf(b, "%c%dh%02d", min < 0 ? '-' : '+', a / 60, a % 60);
    else
        buf_printf(b, "%c%d", min < 0 ? '-' : '+', a / 60);
}

int comtrade_cfg_format(const comtrade_cfg_t *cfg, buf_t *out, char *err, size_t errlen)
{
    static const char *const ft_names[] = {"ASCII", "BINARY", "BINARY32", "FLOAT32"};
    int rc = comtrade__cfg_check(cfg, err, errlen);
    int old;

    if (rc)
        return rc;
    old = cfg->rev_year == 1991;
    buf_printf(out, "%s,%s", cfg->station, cfg->rec_dev_id);
    if (!old)
        buf_printf(out, ",%d", cfg->rev_year);
    buf_printf(out, "\r\n%zu,%zuA,%zuD\r\n", cfg->nanalog + cfg->ndigital, cfg->nanalog,
               cfg->ndigital);
    for (size_t k = 0; k < cfg->nanalog; k++) {
        const comtrade_analog_t *a = &cfg->analog[k];
        buf_printf(out, "%d,%s,%s,%s,%s,", a->index, a->ch_id, a->ph, a->ccbm, a->uu);
        comtrade__put_num(out, a->a);
        buf_puts(out, ",");
        comtrade__put_num(out, a->b);
        buf_puts(out, ",");
        comtrade__put_num(out, a->skew);
        buf_puts(out, ",");
        comtrade__put_num(out, a->min);
        buf_puts(out, ",");
        comtrade__put_num(out, a->max);
        if (!old) {
            buf_puts(out, ",");
            comtrade__put_num(out, a->primary);
            buf_puts(out, ",");
            comtrade__put_num(out, a->secondary);
            buf_printf(out, ",%c", a->ps == 'S' || a->ps == 's' ? 'S' : 'P');
        }
        buf_puts(out, "\r\n");
    }
    for (size_t k = 0; k < cfg->ndigital; k++) {
        const comtrade_digital_t *d = &cfg->digital[k];
        if (old)
            buf_printf(out, "%d,%s,%d\r\n", d->index, d->ch_id, d->y);
        else
            buf_printf(out, "%d,%s,%s,%s,%d\r\n", d->index, d->ch_id, d->ph, d->ccbm, d->y);
    }
    comtrade__put_num(out, cfg->lf);
    buf_printf(out, "\r\n%zu\r\n", cfg->nrates);
    for (size_t k = 0; k < cfg->nrates; k++) {
        comtrade__put_num(out, cfg->rates[k].samp);
        buf_printf(out, ",%lld\r\n", (long long)cfg->rates[k].endsamp);
    }
    if (cfg->nrates == 0)
        buf_printf(out, "0,%lld\r\n", (long long)cfg->endsamp);
    put_stamp(out, cfg->start_ns, old, cfg->nanosec);
    put_stamp(out, cfg->trigger_ns, old, cfg->nanosec);
    buf_printf(out, "%s\r\n", ft_names[cfg->ft]);
    if (!old || cfg->timemult != 1) {
        comtrade__put_num(out, cfg->timemult);
        buf_puts(out, "\r\n");
    }
    if (cfg->rev_year == 2013) {
        put_tz(out, cfg->time_code_min);
        buf_puts(out, ",");
        if ((cfg->local_code[0] == 'x' || cfg->local_code[0] == 'X') && !cfg->local_code[1])
            buf_puts(out, "x");
        else
            put_tz(out, cfg->local_code_min);
        /* Unknown time quality is written as F (clock unreliable) and unknown leap second
         * handling as 3 (no capability), the honest values (2013 clause 7.4.12). */
        buf_printf(out, "\r\n%X,%d\r\n", cfg->tmq_code < 0 ? 15 : cfg->tmq_code,
                   cfg->leapsec < 0 ? 3 : cfg->leapsec);
    }
    return 0;
}
