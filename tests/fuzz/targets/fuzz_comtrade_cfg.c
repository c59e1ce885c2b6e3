/* libFuzzer target for the COMTRADE parsers (src/comtrade/comtrade.h).
 *
 * Input: a .cff image if it starts with "---"; otherwise .cfg text, optionally followed by a NUL
 * byte and .dat bytes for that cfg. Beyond "no crash, no overrun, no leak" it checks two
 * oracles and aborts when one fails:
 *  - every cfg the parser accepts is written by comtrade_cfg_format() and reads back to the same
 *    configuration (parse -> format -> parse);
 *  - every record decoded is re-encoded from its own values and reads back with the same sample
 *    count (and the same sample times when a rate table gives them);
 *  - every failure leaves a message in err.
 * Seeds: tests/fuzz/corpus/comtrade (replayed by ctest as fuzz.comtrade_cfg_corpus). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "comtrade/comtrade.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int same_num(double a, double b)
{
    return a == b;
}

/* The fields comtrade_cfg_format() writes for the cfg's revision must read back unchanged. */
static void same_cfg(const comtrade_cfg_t *a, const comtrade_cfg_t *b)
{
    int old = a->rev_year == 1991;

    check(!strcmp(a->station, b->station) && !strcmp(a->rec_dev_id, b->rec_dev_id));
    check(a->rev_year == b->rev_year);
    check(a->nanalog == b->nanalog && a->ndigital == b->ndigital);
    for (size_t k = 0; k < a->nanalog; k++) {
        const comtrade_analog_t *x = &a->analog[k], *y = &b->analog[k];
        check(x->index == y->index && !strcmp(x->ch_id, y->ch_id) && !strcmp(x->ph, y->ph) &&
              !strcmp(x->ccbm, y->ccbm) && !strcmp(x->uu, y->uu));
        check(same_num(x->a, y->a) && same_num(x->b, y->b) && same_num(x->skew, y->skew) &&
              same_num(x->min, y->min) && same_num(x->max, y->max));
        if (!old)
            check(same_num(x->primary, y->primary) && same_num(x->secondary, y->secondary) &&
                  x->ps == y->ps);
    }
    for (size_t k = 0; k < a->ndigital; k++) {
        const comtrade_digital_t *x = &a->digital[k], *y = &b->digital[k];
        check(x->index == y->index && !strcmp(x->ch_id, y->ch_id) && x->y == y->y);
        if (!old)
            check(!strcmp(x->ph, y->ph) && !strcmp(x->ccbm, y->ccbm));
    }
    check(same_num(a->lf, b->lf) && a->nrates == b->nrates && a->endsamp == b->endsamp);
    for (size_t k = 0; k < a->nrates; k++)
        check(same_num(a->rates[k].samp, b->rates[k].samp) &&
              a->rates[k].endsamp == b->rates[k].endsamp);
    check(a->start_ns == b->start_ns && a->trigger_ns == b->trigger_ns);
    check(a->nanosec == b->nanosec && a->ft == b->ft && same_num(a->timemult, b->timemult));
    if (a->rev_year == 2013) {
        check(a->time_code_min == b->time_code_min && a->local_code_min == b->local_code_min);
        check((strcasecmp(a->local_code, "x") == 0) == (strcasecmp(b->local_code, "x") == 0));
        check((a->tmq_code < 0 ? 15 : a->tmq_code) == b->tmq_code);
        check((a->leapsec < 0 ? 3 : a->leapsec) == b->leapsec);
    }
}

/* Touches every accessor, then re-encodes small records and reads them back. */
static void exercise(const comtrade_rec_t *rec)
{
    const comtrade_cfg_t *c = comtrade_rec_cfg(rec);
    size_t n = comtrade_nsamples(rec), na = c->nanalog, ndw = (c->ndigital + 15) / 16;
    volatile double sink = 0;
    double **a = NULL;
    uint16_t *dig = NULL;
    int64_t *t = NULL;
    comtrade_data_t d;
    buf_t cb = {0}, db = {0};
    comtrade_cfg_t c2;
    comtrade_rec_t *rec2 = NULL;
    char err[256];

    for (size_t i = 0; i < n; i++) {
        sink += (double)comtrade_time_ns(rec, i) + (double)comtrade_sample_number(rec, i);
        for (size_t ch = 0; ch < na; ch++)
            for (int mode = 0; mode < 3; mode++)
                sink += comtrade_value(rec, ch, i, mode);
        for (size_t ch = 0; ch < c->ndigital; ch++)
            check(comtrade_digital(rec, ch, i) >> 1 == 0);
    }
    (void)sink;
    check(isnan(comtrade_value(rec, na, 0, 0)) && comtrade_time_ns(rec, n) == COMTRADE_TIME_NONE);
    if (n > 4096 || n * (na + 1) > 65536)
        return;

    memset(&d, 0, sizeof d);
    a = calloc(na + 1, sizeof *a);
    dig = calloc(n * ndw + 1, sizeof *dig);
    t = calloc(n + 1, sizeof *t);
    check(a && dig && t);
    for (size_t ch = 0; ch < na; ch++) {
        a[ch] = calloc(n + 1, sizeof **a);
        check(a[ch] != NULL);
        check(comtrade_values(rec, ch, COMTRADE_AS_RECORDED, 0, n, a[ch]) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t ti = comtrade_time_ns(rec, i);
        t[i] = ti == COMTRADE_TIME_NONE ? COMTRADE_TIME_NONE : ti - c->start_ns;
        for (size_t ch = 0; ch < c->ndigital; ch++)
            if (comtrade_digital(rec, ch, i))
                dig[i * ndw + ch / 16] |= (uint16_t)(1u << (ch % 16));
    }
    d.nsamples = n;
    d.analog = (const double *const *)a;
    d.digital = dig;
    d.time_ns = c->nrates ? NULL : t;
    err[0] = 0;
    if (comtrade_encode(c, &d, 0, &cb, &db, err, sizeof err) != 0) {
        check(err[0] != 0); /* e.g. values a*x+b overflowed to infinity */
        goto done;
    }
    check(comtrade_cfg_parse(cb.data, cb.len, &c2, err, sizeof err) == 0);
    check(comtrade_dat_parse(&c2, (const uint8_t *)db.data, db.len, &rec2, err, sizeof err) == 0);
    check(comtrade_nsamples(rec2) == n);
    if (c->nrates)
        for (size_t i = 0; i < n; i++)
            check(comtrade_time_ns(rec2, i) == comtrade_time_ns(rec, i));
    comtrade_rec_free(rec2);
    comtrade_cfg_free(&c2);
done:
    for (size_t ch = 0; ch < na; ch++)
        free(a[ch]);
    free(a);
    free(dig);
    free(t);
    buf_free(&cb);
    buf_free(&db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    comtrade_cfg_t cfg, again;
    comtrade_rec_t *rec = NULL;
    const uint8_t *nul;
    size_t clen;
    buf_t b = {0};
    char err[256];

    if (size > (1u << 20))
        return 0;
    err[0] = 0;
    if (size >= 3 && memcmp(data, "---", 3) == 0) {
        if (comtrade_cff_parse(data, size, &rec, err, sizeof err) == 0) {
            exercise(rec);
            comtrade_rec_free(rec);
        } else {
            check(err[0] != 0 && rec == NULL);
        }
        return 0;
    }
    nul = memchr(data, 0, size);
    clen = nul ? (size_t)(nul - data) : size;
    if (comtrade_cfg_parse((const char *)data, clen, &cfg, err, sizeof err) != 0) {
        check(err[0] != 0 && cfg.analog == NULL);
        return 0;
    }
    check(comtrade_cfg_format(&cfg, &b, err, sizeof err) == 0);
    check(comtrade_cfg_parse(b.data, b.len, &again, err, sizeof err) == 0);
    same_cfg(&cfg, &again);
    comtrade_cfg_free(&again);
    buf_free(&b);
    if (nul) {
        err[0] = 0;
        if (comtrade_dat_parse(&cfg, nul + 1, size - clen - 1, &rec, err, sizeof err) == 0) {
            exercise(rec);
            comtrade_rec_free(rec);
        } else {
            check(err[0] != 0 && rec == NULL);
        }
    }
    comtrade_cfg_free(&cfg);
    return 0;
}
