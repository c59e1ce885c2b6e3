/* gridsense-sim: --schedule specifications. See schedule.h.
 *
 * The parser is strict on purpose: a typo in a test scenario should fail at start-up rather than
 * silently produce a different disturbance. Numbers are plain decimals (no sign, exponent, hex,
 * inf or nan) so that what the operator reads is what the simulator does.
 */
#include "schedule.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define NUM_MAX 24 /* longest decimal accepted, characters */

static int fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errcap > 0)
        vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return GS_EINVAL;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Scans a plain decimal "D+[.D+]" at *p, advancing *p past it. Returns 0 or -1 (nothing or a
 * malformed or over-long number; *p is then unspecified). */
static int scan_decimal(const char **p, double *out)
{
    const char *s = *p, *q = s;
    char buf[NUM_MAX + 1];
    while (is_digit(*q))
        q++;
    if (q == s)
        return -1;
    if (*q == '.') {
        const char *f = ++q;
        while (is_digit(*q))
            q++;
        if (q == f)
            return -1;
    }
    size_t n = (size_t)(q - s);
    if (n > NUM_MAX)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    *out = strtod(buf, NULL); /* cannot fail on this syntax; the C locale is never changed */
    *p = q;
    return 0;
}

/* Scans a plain unsigned integer "D+" at *p of at most 9 digits. Returns 0 or -1. */
static int scan_uint(const char **p, uint32_t *out)
{
    const char *q = *p;
    uint32_t v = 0;
    int n = 0;
    while (is_digit(*q)) {
        if (++n > 9)
            return -1;
        v = v * 10 + (uint32_t)(*q++ - '0');
    }
    if (n == 0)
        return -1;
    *out = v;
    *p = q;
    return 0;
}

int sched_parse(const char *spec, sched_t *out, char *err, size_t errcap)
{
    static const struct {
        const char *name;
        uint8_t kind;
        double def, lo, hi; /* default, and LEVEL range: lo <= L < hi (dip, interruption) */
    } kinds[] = {
        {"dip", SIG_DIP, 50, 0, 100},
        {"swell", SIG_SWELL, 120, 100, 150}, /* 100 < L <= 150 */
        {"interruption", SIG_INTERRUPTION, 0, 0, 5},
    };
    sched_t sc;
    memset(&sc, 0, sizeof sc);
    sc.spec = spec;
    if (!spec || !*spec)
        return fail(err, errcap, "empty specification; expected KIND@T[+DUR][:LEVEL][/TERMS]");

    const char *at = strchr(spec, '@');
    if (!at)
        return fail(err, errcap, "expected KIND@T[+DUR][:LEVEL][/TERMS]");
    size_t klen = (size_t)(at - spec);
    int k = -1;
    for (int i = 0; i < (int)(sizeof kinds / sizeof kinds[0]); i++)
        if (strlen(kinds[i].name) == klen && memcmp(spec, kinds[i].name, klen) == 0)
            k = i;
    if (k < 0)
        return fail(err, errcap, "unknown kind '%.*s': expected dip, swell or interruption",
                    (int)(klen > 32 ? 32 : klen), spec);
    sc.kind = kinds[k].kind;
    sc.phases = 7;
    sc.dur_ms = 100;
    sc.level_pct = kinds[k].def;

    const char *p = at + 1;
    if (scan_decimal(&p, &sc.start_s) != 0)
        return fail(err, errcap, "T: expected seconds after the start, such as 10 or 5.5");
    if (sc.start_s > SCHED_MAX_T_S)
        return fail(err, errcap, "T: at most %.0f s", SCHED_MAX_T_S);

    if (*p == '+') {
        p++;
        if (scan_decimal(&p, &sc.dur_ms) != 0)
            return fail(err, errcap, "DUR: expected milliseconds, such as 200");
        if (sc.dur_ms < 1 || sc.dur_ms > SCHED_MAX_DUR_MS)
            return fail(err, errcap, "DUR: must be 1..%.0f ms", SCHED_MAX_DUR_MS);
    }

    if (*p == ':') {
        p++;
        if (scan_decimal(&p, &sc.level_pct) != 0)
            return fail(err, errcap, "LEVEL: expected percent of nominal, such as 60");
    }
    double L = sc.level_pct;
    if (sc.kind == SIG_DIP && !(L < 100))
        return fail(err, errcap, "LEVEL: a dip's residual must be 0..<100 %% of nominal");
    if (sc.kind == SIG_SWELL && !(L > 100 && L <= 150))
        return fail(err, errcap, "LEVEL: a swell's peak must be >100..150 %% of nominal");
    if (sc.kind == SIG_INTERRUPTION && !(L < 5))
        return fail(err, errcap, "LEVEL: an interruption's residual must be 0..<5 %% of nominal");

    if (*p == '/') {
        p++;
        if (scan_uint(&p, &sc.first) != 0)
            return fail(err, errcap, "TERMS: expected N or N-M (1-based terminal indices)");
        sc.last = sc.first;
        if (*p == '-') {
            p++;
            if (scan_uint(&p, &sc.last) != 0)
                return fail(err, errcap, "TERMS: expected N or N-M (1-based terminal indices)");
        }
        if (sc.first < 1 || sc.last < sc.first || sc.last > SCHED_MAX_TERMINAL)
            return fail(err, errcap, "TERMS: need 1 <= N <= M <= %u", SCHED_MAX_TERMINAL);
    }

    static const char phases_key[] = ",phases=";
    if (strncmp(p, phases_key, sizeof phases_key - 1) == 0) {
        p += sizeof phases_key - 1;
        uint8_t m = 0;
        while (*p == 'A' || *p == 'B' || *p == 'C') {
            uint8_t bit = (uint8_t)(1u << (*p - 'A'));
            if (m & bit)
                return fail(err, errcap, "phases: '%c' given twice", *p);
            m |= bit;
            p++;
        }
        if (m == 0)
            return fail(err, errcap, "phases: expected 1 to 3 of A, B, C, such as A or BC");
        if (sc.kind == SIG_INTERRUPTION && m != 7)
            return fail(err, errcap, "phases: an interruption affects all phases");
        sc.phases = m;
    }

    if (*p)
        return fail(err, errcap,
                    "unexpected '%.32s'; expected KIND@T[+DUR][:LEVEL][/TERMS]"
                    "[,phases=P] in this order",
                    p);
    *out = sc;
    return 0;
}

int sched_selects(const sched_t *sc, uint32_t index)
{
    if (sc->first == 0)
        return 1;
    return index + 1 >= sc->first && index + 1 <= sc->last;
}

void sched_dist(const sched_t *sc, uint32_t rate, sig_dist_t *d)
{
    double len = round(sc->dur_ms * rate / 1000.0);
    memset(d, 0, sizeof *d);
    d->start = (uint64_t)llround(sc->start_s * rate);
    d->len = len < 1 ? 1 : (uint32_t)len;
    d->kind = sc->kind;
    d->phases = sc->phases;
    d->magnitude = (float)(sc->level_pct / 100.0);
}

/* 1 if the terminal ranges of a and b share a terminal. */
static int share_terminal(const sched_t *a, const sched_t *b)
{
    if (a->first == 0 || b->first == 0)
        return 1;
    return a->first <= b->last && b->first <= a->last;
}

int sched_check(const sched_t *a, size_t n, uint32_t rate, uint32_t nterms, char *err,
                size_t errcap)
{
    if (n > SCHED_MAX)
        return fail(err, errcap, "--schedule: at most %d disturbances", SCHED_MAX);
    for (size_t i = 0; i < n; i++) {
        if (a[i].first != 0 && a[i].last > nterms)
            return fail(err, errcap, "--schedule '%s': selects terminal %u but only %u simulated",
                        a[i].spec, a[i].last, nterms);
        sig_dist_t di;
        sched_dist(&a[i], rate, &di);
        for (size_t j = 0; j < i; j++) {
            sig_dist_t dj;
            sched_dist(&a[j], rate, &dj);
            if (share_terminal(&a[i], &a[j]) && di.start < dj.start + dj.len &&
                dj.start < di.start + di.len)
                return fail(err, errcap, "--schedule '%s' overlaps '%s' on the same terminals",
                            a[i].spec, a[j].spec);
        }
    }
    return 0;
}
