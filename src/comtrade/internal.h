/* Private to src/comtrade: the record layout and helpers shared by comtrade.c (cfg text),
 * dat.c (sample data) and file.c (files and .cff). Not part of the module's contract. */
#ifndef GS_COMTRADE_INTERNAL_H
#define GS_COMTRADE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "comtrade/comtrade.h"

struct comtrade_rec {
    comtrade_cfg_t cfg; /* deep copy */
    size_t nsamples;
    size_t ndw;         /* digital words per sample: (ndigital + 15) / 16 */
    int64_t *sample_no; /* [nsamples] */
    int64_t *time_ns;   /* [nsamples] absolute, or COMTRADE_TIME_NONE */
    double *raw;        /* [nanalog][nsamples] raw x as recorded, NAN = missing */
    uint16_t *dig;      /* [nsamples][ndw] */
    char *hdr, *inf;    /* NUL-terminated copies, or NULL */
    size_t hdr_len, inf_len;
};

/* Formats one line of detail into err (if errlen > 0); always returns `code`. */
int comtrade__fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* comtrade_cfg_parse() for text that starts at line `first_line` of a larger file (a .cff
 * section), so messages give file line numbers. */
int comtrade__cfg_parse_at(const char *text, size_t len, int first_line, comtrade_cfg_t *out,
                           char *err, size_t errlen);

/* Checks that a caller-built or parsed cfg is structurally consistent and every value is one
 * comtrade_cfg_format() can write and comtrade_cfg_parse() reads back: counts and limits,
 * rate table, text fields (no comma or control character, NUL-terminated), finite numbers, date
 * range. Returns 0 or GS_EINVAL with detail. */
int comtrade__cfg_check(const comtrade_cfg_t *cfg, char *err, size_t errlen);

/* Deep-copies src into dst (dst is overwritten, not freed). src must pass comtrade__cfg_check. */
void comtrade__cfg_copy(comtrade_cfg_t *dst, const comtrade_cfg_t *src);

/* A piece of the input: p[0..n). p is never dereferenced when n == 0. */
typedef struct {
    const char *p;
    size_t n;
} span_t;

/* Parses a finite decimal number (no hex, inf or nan) filling all of s. 0 or -1. */
int comtrade__num_of(span_t s, double *out);

/* Appends v in the shortest %g form that strtod() reads back exactly. */
void comtrade__put_num(buf_t *b, double v);

/* Adds a finite offset in ns (a double) to base; returns 0, or GS_ERANGE if the result is not
 * representable as int64. */
int comtrade__add_ns(int64_t base, double off, int64_t *out);

#endif
