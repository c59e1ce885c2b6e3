/* Small shared helpers: aborting allocators, clocks, a growable byte/string buffer, address
 * parsing. Thread-safe unless stated (a buf_t belongs to one thread at a time).
 */
#ifndef GS_CORE_UTIL_H
#define GS_CORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocators that abort the process with a log line on failure: allocation failure is not a
 * recoverable condition for the server, and every size that comes from outside is bounded before
 * it reaches these. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* UTC wall clock in nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t time_utc_ns(void);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC); for intervals and timeouts only. */
int64_t time_mono_ns(void);

/* Formats a UTC ns timestamp as RFC 3339 with milliseconds ("2026-11-24T23:55:09.123Z") into
 * out (>= 32 bytes). Returns out. */
char *time_fmt_utc(int64_t ns, char *out, size_t cap);

/* Growable buffer. Zero-initialise (buf_t b = {0}) and release with buf_free(). The content is
 * always NUL-terminated (the NUL is not counted in len). */
typedef struct {
    char *data; /* owned; NULL while empty */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
} buf_t;

void buf_free(buf_t *b);
void buf_reset(buf_t *b);
void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *data, size_t n);
void buf_puts(buf_t *b, const char *s);
/* Appends one character. */
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal with quotes, escaping per RFC 8259 section 7; bytes that
 * are not valid UTF-8 are replaced by U+FFFD so output is always valid JSON. n is the length
 * of s, or (size_t)-1 for NUL-terminated. */
void buf_json_str(buf_t *b, const char *s, size_t n);

/* Parses "HOST:PORT" (IPv4 dotted or "*" / "" for any, or [IPv6]:PORT) into host (cap >= 64)
 * and *port (0..65535). Returns 0 or GS_EINVAL. */
int addr_parse(const char *text, char *host, size_t hostcap, int *port);

/* Parses a decimal integer in [min, max]; whole string must be consumed. 0 or GS_EINVAL. */
int parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);

/* Parses a finite double in [min, max]; whole string must be consumed. 0 or GS_EINVAL. */
int parse_double(const char *text, double min, double max, double *out);

/* Encodes n bytes as lowercase hex into out (cap >= 2n+1). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* Decodes exactly n bytes from a 2n-character hex string. Returns 0 or GS_EINVAL. */
int hex_decode(const char *in, uint8_t *out, size_t n);

#endif
