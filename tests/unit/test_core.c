/* Unit tests for src/core: util.h (buffers, JSON strings, parsers, hex, time formatting), hmap.h,
 * err.h and log.h. JSON output is validated with jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Helpers ---- */

/* Deterministic PRNG (xorshift64*) so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Encodes s[0..n) with buf_json_str, checks the buffer invariants, parses the result as a JSON
 * string with jansson and returns the parsed value (caller json_decref's it). */
static json_t *json_roundtrip(const char *s, size_t n, buf_t *out)
{
    buf_reset(out);
    buf_json_str(out, s, n);
    assert_non_null(out->data);
    assert_int_equal(strlen(out->data), out->len);
    json_error_t e;
    json_t *j = json_loadb(out->data, out->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j)
        fail_msg("not valid JSON: %s (%s at %d)", out->data, e.text, e.position);
    return j;
}

/* Checks that s[0..n) encodes to exactly `expect` and that the JSON decodes to `decoded`
 * (decoded_len bytes). */
static void check_json_str(const char *s, size_t n, const char *expect, const char *decoded,
                           size_t decoded_len)
{
    buf_t b = {0};
    json_t *j = json_roundtrip(s, n, &b);
    assert_string_equal(b.data, expect);
    assert_true(json_is_string(j));
    assert_int_equal(json_string_length(j), decoded_len);
    assert_memory_equal(json_string_value(j), decoded, decoded_len);
    json_decref(j);
    buf_free(&b);
}

/* ---- buf_t ---- */

static void test_buf_append_basic(void **state)
{
    buf_t b = {0};
    buf_reset(&b); /* reset of an empty buffer is a no-op */
    assert_null(b.data);
    buf_append(&b, "", 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.data[0], 0);
    buf_append(&b, "abc", 3);
    buf_puts(&b, "def");
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    /* Binary with an embedded NUL: len counts it, terminator follows. */
    buf_append(&b, "x\0y", 3);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "abcdefx\0y", 10);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_free(&b); /* twice is harmless */
}

static void test_buf_append_growth(void **state)
{
    buf_t b = {0};
    char ref[70000];
    size_t n = 0;
    for (int i = 0; n + 300 < sizeof ref; i++) {
        size_t k = (size_t)(rnd() % 300);
        char chunk[300];
        for (size_t j = 0; j < k; j++)
            chunk[j] = (char)('a' + (i + j) % 26);
        buf_append(&b, chunk, k);
        memcpy(ref + n, chunk, k);
        n += k;
        assert_int_equal(b.len, n);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], 0);
    }
    assert_memory_equal(b.data, ref, n);
    buf_free(&b);
}

static void test_buf_printf_sizes(void **state)
{
    static char src[4200];
    memset(src, 'z', sizeof src - 1);
    const size_t prefixes[] = {0, 1, 254, 255, 256, 511, 1000};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        for (size_t n = 0; n < sizeof src - 1; n += (n < 1100 ? 1 : 37)) {
            buf_t b = {0};
            for (size_t i = 0; i < prefixes[p]; i++)
                buf_append(&b, "p", 1);
            buf_printf(&b, "%.*s", (int)n, src);
            assert_int_equal(b.len, prefixes[p] + n);
            if (b.len == 0) {
                assert_true(b.data == NULL || b.data[0] == 0);
            } else {
                assert_non_null(b.data);
                assert_true(b.cap > b.len);
                assert_int_equal(b.data[b.len], 0);
                assert_int_equal(strlen(b.data), b.len);
                for (size_t i = 0; i < prefixes[p]; i++)
                    assert_int_equal(b.data[i], 'p');
                for (size_t i = 0; i < n; i++)
                    assert_int_equal(b.data[prefixes[p] + i], 'z');
            }
            buf_free(&b);
        }
    }
}

static void test_buf_printf_formats(void **state)
{
    buf_t b = {0};
    buf_printf(&b, "%d-%s-%05.1f", -42, "x", 3.14159);
    assert_string_equal(b.data, "-42-x-003.1");
    buf_printf(&b, "%s", ""); /* empty output appends nothing */
    assert_int_equal(b.len, 11);
    assert_string_equal(b.data, "-42-x-003.1");
    /* Many small printfs accumulate correctly across several reallocations. */
    buf_reset(&b);
    for (int i = 0; i < 5000; i++)
        buf_printf(&b, "%d,", i % 10);
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(b.data[2 * i], '0' + i % 10);
        assert_int_equal(b.data[2 * i + 1], ',');
    }
    assert_int_equal(b.data[b.len], 0);
    buf_free(&b);
}

static void test_buf_reset_reserve(void **state)
{
    buf_t b = {0};
    buf_puts(&b, "hello");
    size_t cap = b.cap;
    char *data = b.data;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap); /* memory kept */
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");
    buf_puts(&b, "again");
    assert_string_equal(b.data, "again");

    buf_reserve(&b, 10000);
    assert_true(b.cap >= b.len + 10000 + 1);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "again"); /* reserve keeps content */
    data = b.data;
    for (int i = 0; i < 10000; i++)
        buf_append(&b, "q", 1);
    assert_ptr_equal(b.data, data); /* no reallocation within the reserved room */
    assert_int_equal(b.len, 10005);
    assert_int_equal(b.data[b.len], 0);
    cap = b.cap;
    buf_reserve(&b, 0);
    assert_int_equal(b.cap, cap);
    buf_free(&b);

    buf_t e = {0};
    buf_reserve(&e, 0);
    assert_non_null(e.data);
    assert_true(e.cap >= 1);
    buf_free(&e);
}

/* ---- buf_json_str ---- */

static void test_json_str_escapes(void **state)
{
    check_json_str("plain", (size_t)-1, "\"plain\"", "plain", 5);
    check_json_str("", (size_t)-1, "\"\"", "", 0);
    check_json_str("a\"b\\c/", (size_t)-1, "\"a\\\"b\\\\c/\"", "a\"b\\c/", 6);
    check_json_str("\x01\n\t\r\x1f", (size_t)-1, "\"\\u0001\\u000a\\u0009\\u000d\\u001f\"",
                   "\x01\n\t\r\x1f", 5);
    check_json_str("\x1b[31m", (size_t)-1, "\"\\u001b[31m\"", "\x1b[31m", 5);
    check_json_str("a\x7f", (size_t)-1, "\"a\\u007f\"", "a\x7f", 2);
    /* Embedded NUL with an explicit length. */
    check_json_str("a\0b", 3, "\"a\\u0000b\"", "a\0b", 3);
    /* An explicit length shorter than the string stops there. */
    check_json_str("abcdef", 3, "\"abc\"", "abc", 3);

    buf_t b = {0};
    buf_json_str(&b, NULL, 5);
    assert_string_equal(b.data, "null");
    buf_puts(&b, ",");
    buf_json_str(&b, "x", (size_t)-1); /* appends, does not reset */
    assert_string_equal(b.data, "null,\"x\"");
    buf_free(&b);
}

static void test_json_str_valid_utf8(void **state)
{
    static const char *const ok[] = {
        "\xc2\x80",         /* U+0080, smallest 2-byte */
        "\xc3\xa9",         /* e acute */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800, smallest 3-byte */
        "\xe2\x82\xac",     /* euro sign */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above the surrogates */
        "\xef\xbf\xbf",     /* U+FFFF */
        "\xf0\x90\x80\x80", /* U+10000, smallest 4-byte */
        "\xf0\x9f\x98\x80", /* emoji */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the largest code point */
        "Gr\xc3\xbc\xc3\x9f"
        "e \xe6\x97\xa5\xe6\x9c\xac",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        char expect[64];
        snprintf(expect, sizeof expect, "\"%s\"", ok[i]);
        check_json_str(ok[i], n, expect, ok[i], n);
    }
}

#define FFFD     "\\ufffd"
#define FFFD_RAW "\xef\xbf\xbd"

static void test_json_str_invalid_utf8(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *expect;
        int replacements; /* number of U+FFFD in the decoded string */
    } cases[] = {
        {"\x80", 1, "\"" FFFD "\"", 1}, /* lone continuation */
        {"a\xbf"
         "b",
         3, "\"a" FFFD "b\"", 1},                                  /* lone continuation */
        {"\xc0\x80", 2, "\"" FFFD FFFD "\"", 2},                   /* overlong NUL */
        {"\xc1\xbf", 2, "\"" FFFD FFFD "\"", 2},                   /* overlong 2-byte */
        {"\xe0\x80\x80", 3, "\"" FFFD FFFD FFFD "\"", 3},          /* overlong 3-byte */
        {"\xf0\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"", 4}, /* overlong 4-byte */
        {"\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\"", 3},          /* surrogate D800 */
        {"\xed\xbf\xbf", 3, "\"" FFFD FFFD FFFD "\"", 3},          /* surrogate DFFF */
        {"\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"", 4}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"", 4}, /* F5 lead */
        {"\xfe\xff", 2, "\"" FFFD FFFD "\"", 2},                   /* never valid */
        {"a\xc3", 2, "\"a" FFFD "\"", 1},                          /* truncated at end */
        {"a\xe2\x82", 3, "\"a" FFFD FFFD "\"", 2},                 /* truncated at end */
        {"\xf0\x9f\x98", 3, "\"" FFFD FFFD FFFD "\"", 3},          /* truncated at end */
        {"\xe2\x82"
         "A",
         3, "\"" FFFD FFFD "A\"", 2},         /* ASCII interrupts */
        {"\xc3\xa9", 1, "\"" FFFD "\"", 1},   /* explicit length cuts a valid sequence */
        {"\xc3\"", 2, "\"" FFFD "\\\"\"", 1}, /* quote cannot be a continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b = {0};
        json_t *j = json_roundtrip(cases[i].in, cases[i].n, &b);
        if (strcmp(b.data, cases[i].expect) != 0)
            fail_msg("case %zu: got %s, expected %s", i, b.data, cases[i].expect);
        const char *v = json_string_value(j);
        int reps = 0;
        for (const char *p = v; (p = strstr(p, FFFD_RAW)); p += 3)
            reps++;
        assert_int_equal(reps, cases[i].replacements);
        json_decref(j);
        buf_free(&b);
    }
}

static void test_json_str_random_bytes(void **state)
{
    /* Whatever the bytes, the output is valid JSON, and valid UTF-8 input survives unchanged. */
    buf_t b = {0};
    for (int iter = 0; iter < 20000; iter++) {
        unsigned char in[40];
        size_t n = (size_t)(rnd() % sizeof in);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            /* Bias towards UTF-8 lead and continuation bytes. */
            in[i] = (r & 3) == 0   ? (unsigned char)(0x80 | (r >> 8 & 0x3f))
                    : (r & 3) == 1 ? (unsigned char)(0xc0 | (r >> 8 & 0x3f))
                                   : (unsigned char)(r >> 8);
        }
        json_t *j = json_roundtrip((const char *)in, n, &b);
        assert_true(json_is_string(j));
        json_decref(j);
    }
    buf_free(&b);
}

/* ---- addr_parse ---- */

static void test_addr_parse(void **state)
{
    char host[64];
    int port = -1;
    static const struct {
        const char *in;
        const char *host;
        int port;
    } ok[] = {
        {"192.168.1.20:7100", "192.168.1.20", 7100},
        {"*:7100", "0.0.0.0", 7100},
        {":7100", "0.0.0.0", 7100},
        {"127.0.0.1:0", "127.0.0.1", 0},
        {"0.0.0.0:65535", "0.0.0.0", 65535},
        {"[::1]:80", "::1", 80},
        {"[::]:8080", "::", 8080},
        {"[fe80::1%eth0]:443", "fe80::1%eth0", 443},
        {"localhost:22", "localhost", 22},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(host, 'X', sizeof host);
        port = -1;
        if (addr_parse(ok[i].in, host, sizeof host, &port) != 0)
            fail_msg("addr_parse(%s) failed", ok[i].in);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
    }

    static const char *const bad[] = {
        "1.2.3.4",               /* missing port */
        "1.2.3.4:",              /* empty port */
        "",                      /* nothing */
        ":65536",                /* port too large */
        ":-1",                   /* negative */
        ":http",                 /* not numeric */
        ":80x",                  /* trailing garbage */
        "1.2.3.4:8 0",           /* embedded space */
        "[::1]",                 /* bracketed host without port */
        ":99999999999999999999", /* overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        port = 12345;
        if (addr_parse(bad[i], host, sizeof host, &port) != GS_EINVAL)
            fail_msg("addr_parse(%s) accepted", bad[i]);
        assert_int_equal(port, 12345); /* untouched on failure */
    }

    /* Host length limit: hostcap includes the NUL. */
    char text[200];
    memset(text, 'h', 63);
    snprintf(text + 63, sizeof text - 63, ":1");
    assert_int_equal(addr_parse(text, host, sizeof host, &port), 0);
    assert_int_equal(strlen(host), 63);
    memset(text, 'h', 64);
    snprintf(text + 64, sizeof text - 64, ":1");
    assert_int_equal(addr_parse(text, host, sizeof host, &port), GS_EINVAL);
    char small[8];
    assert_int_equal(addr_parse("1234567:5", small, sizeof small, &port), 0);
    assert_string_equal(small, "1234567");
    assert_int_equal(addr_parse("12345678:5", small, sizeof small, &port), GS_EINVAL);
    /* Brackets do not count against the limit. */
    assert_int_equal(addr_parse("[1234567]:5", small, sizeof small, &port), 0);
    assert_string_equal(small, "1234567");
}

static void test_addr_parse_unbalanced_bracket(void **state)
{
    char host[64];
    int port;
    assert_int_equal(addr_parse("[::1:80", host, sizeof host, &port), GS_EINVAL);
    assert_int_equal(addr_parse("::1]:80", host, sizeof host, &port), GS_EINVAL);
}

/* ---- parse_i64 / parse_double ---- */

static void test_parse_i64(void **state)
{
    int64_t v = 7;
    assert_int_equal(parse_i64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_i64("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(parse_i64("-10", -10, 10, &v), 0);
    assert_true(v == -10);
    assert_int_equal(parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);

    v = 7;
    static const char *const bad[] = {"11", "-1", "", "5x", "5 ", "0x5", "1.0", "abc", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse_i64(bad[i], 0, 10, &v) != GS_EINVAL)
            fail_msg("parse_i64(\"%s\", 0, 10) accepted", bad[i]);
    }
    assert_int_equal(parse_i64(NULL, 0, 10, &v), GS_EINVAL);
    assert_int_equal(parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), GS_EINVAL);
    assert_int_equal(parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), GS_EINVAL);
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_parse_double(void **state)
{
    double d = 7;
    assert_int_equal(parse_double("1.5", 0, 10, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(parse_double("1e1", 0, 10, &d), 0);
    assert_true(d == 10.0);
    assert_int_equal(parse_double("-0.25", -1, 1, &d), 0);
    assert_true(d == -0.25);
    assert_int_equal(parse_double("0", 0, 0, &d), 0); /* bounds inclusive */
    assert_true(d == 0.0);

    d = 7;
    static const char *const bad[] = {"10.0001", "-0.1", "",     "1.5x",  "1.5 ",
                                      "nan",     "inf",  "-inf", "1e400", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse_double(bad[i], 0, 10, &d) != GS_EINVAL)
            fail_msg("parse_double(\"%s\", 0, 10) accepted", bad[i]);
    }
    assert_int_equal(parse_double(NULL, 0, 10, &d), GS_EINVAL);
    assert_int_equal(parse_double("nan", -1e308, 1e308, &d), GS_EINVAL);
    assert_int_equal(parse_double("1e400", -INFINITY, INFINITY, &d), GS_EINVAL);
    assert_true(d == 7); /* untouched on failure */
}

/* ---- hex ---- */

static void test_hex(void **state)
{
    const uint8_t in[] = {0x00, 0xff, 0xab, 0x12, 0x9c};
    char out[16];
    memset(out, 'X', sizeof out);
    hex_encode(in, sizeof in, out);
    assert_string_equal(out, "00ffab129c");
    hex_encode(in, 0, out);
    assert_string_equal(out, "");

    uint8_t dec[5] = {0};
    assert_int_equal(hex_decode("00ffab129c", dec, 5), 0);
    assert_memory_equal(dec, in, 5);
    memset(dec, 0, sizeof dec);
    assert_int_equal(hex_decode("00FFAB129C", dec, 5), 0); /* uppercase accepted */
    assert_memory_equal(dec, in, 5);
    assert_int_equal(hex_decode("00fFaB129c", dec, 5), 0); /* mixed case */
    assert_memory_equal(dec, in, 5);
    assert_int_equal(hex_decode("", dec, 0), 0);

    assert_int_equal(hex_decode("abc", dec, 1), GS_EINVAL);    /* odd length */
    assert_int_equal(hex_decode("abc", dec, 2), GS_EINVAL);    /* too short */
    assert_int_equal(hex_decode("abcdef", dec, 2), GS_EINVAL); /* too long */
    assert_int_equal(hex_decode("zz", dec, 1), GS_EINVAL);
    assert_int_equal(hex_decode("0g", dec, 1), GS_EINVAL);
    assert_int_equal(hex_decode("g0", dec, 1), GS_EINVAL);
    assert_int_equal(hex_decode(" 1", dec, 1), GS_EINVAL);
    assert_int_equal(hex_decode("-1", dec, 1), GS_EINVAL);

    /* Every byte value round-trips. */
    uint8_t all[256], back[256];
    char text[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    hex_encode(all, 256, text);
    assert_int_equal(strlen(text), 512);
    for (int i = 0; i < 512; i++)
        assert_true((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'));
    assert_int_equal(hex_decode(text, back, 256), 0);
    assert_memory_equal(all, back, 256);
}

/* ---- time_fmt_utc ---- */

static void test_time_fmt_utc(void **state)
{
    char out[32];
    assert_ptr_equal(time_fmt_utc(0, out, sizeof out), out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    time_fmt_utc(1795564509123000000LL, out, sizeof out);
    assert_string_equal(out, "2026-11-24T23:55:09.123Z");
    time_fmt_utc(951827696000000000LL, out, sizeof out); /* leap day */
    assert_string_equal(out, "2000-02-29T12:34:56.000Z");
    /* Milliseconds are truncated, never rounded up into the next second. */
    time_fmt_utc(999999999LL, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00.999Z");
    time_fmt_utc(1500000LL, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00.001Z");
    time_fmt_utc(1795564509999999999LL, out, sizeof out);
    assert_string_equal(out, "2026-11-24T23:55:09.999Z");
    /* Before the epoch, whole milliseconds. */
    time_fmt_utc(-1000000LL, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    time_fmt_utc(-1000000000LL, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.000Z");
    time_fmt_utc(-1500000000LL, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:58.500Z");
    time_fmt_utc(-86400000000000LL, out, sizeof out);
    assert_string_equal(out, "1969-12-31T00:00:00.000Z");
    /* A small cap truncates safely. */
    char small[11];
    time_fmt_utc(0, small, sizeof small);
    assert_string_equal(small, "1970-01-01");
}

static void test_time_fmt_utc_negative_submilli(void **state)
{
    char out[32];
    /* -1 ns is 1969-12-31T23:59:59.999999999; truncated like positive values it is .999.
     * Actual: "1970-01-01T00:00:00.000Z" (a later second than the instant). */
    time_fmt_utc(-1LL, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    /* -1.5 ms is 23:59:59.9985; actual ".999" (rounded towards zero, positive values floor). */
    time_fmt_utc(-1500000LL, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.998Z");
}

static void test_clocks(void **state)
{
    int64_t a = time_mono_ns(), b = time_mono_ns();
    assert_true(b >= a);
    int64_t u = time_utc_ns();
    assert_true(u > 1600000000LL * 1000000000LL); /* after 2020 */
    char *s = xstrdup("dup");
    assert_string_equal(s, "dup");
    free(s);
    void *z = xcalloc(0, 0); /* zero sizes still return a pointer */
    assert_non_null(z);
    z = xrealloc(z, 0);
    assert_non_null(z);
    free(z);
    z = xmalloc(0);
    assert_non_null(z);
    free(z);
}

/* ---- hmap ---- */

static void test_hmap_basic(void **state)
{
    hmap_t m;
    hmap_init(&m);
    assert_null(hmap_get(&m, "a"));
    assert_null(hmap_del(&m, "a"));
    size_t pos = 0;
    const char *k;
    void *v;
    assert_int_equal(hmap_next(&m, &pos, &k, &v), 0);

    int x = 1, y = 2, z = 3;
    char key[8] = "alpha";
    assert_null(hmap_put(&m, key, &x));
    key[0] = 'A'; /* keys are copied */
    assert_ptr_equal(hmap_get(&m, "alpha"), &x);
    assert_null(hmap_get(&m, "Alpha"));
    assert_null(hmap_put(&m, "beta", &y));
    assert_int_equal(m.count, 2);
    assert_ptr_equal(hmap_put(&m, "alpha", &z), &x); /* replace returns the previous value */
    assert_int_equal(m.count, 2);
    assert_ptr_equal(hmap_get(&m, "alpha"), &z);
    assert_null(hmap_put(&m, "", &y)); /* empty key is a key */
    assert_ptr_equal(hmap_get(&m, ""), &y);
    assert_int_equal(m.count, 3);

    assert_ptr_equal(hmap_del(&m, "alpha"), &z);
    assert_null(hmap_get(&m, "alpha"));
    assert_null(hmap_del(&m, "alpha"));
    assert_int_equal(m.count, 2);
    assert_ptr_equal(hmap_get(&m, "beta"), &y);
    assert_null(hmap_put(&m, "alpha", &x)); /* re-insert after delete */
    assert_ptr_equal(hmap_get(&m, "alpha"), &x);
    assert_int_equal(m.count, 3);
    hmap_free(&m);
    assert_int_equal(m.cap, 0);
    assert_int_equal(m.count, 0);
    hmap_free(&m); /* free of a freed map is a no-op */
}

/* Slots come from SipHash-2-4 under a random key per map: the same key lands differently in two
 * maps (so nobody can precompute colliding ids), and the hash depends on every byte of the key. */
static void test_hmap_keyed_hash(void **state)
{
    (void)state;
    hmap_t a, b;
    hmap_init(&a);
    hmap_init(&b);
    /* SipHash-2-4 reference vector (Aumasson & Bernstein, vectors.h): key 00..0f, empty message
     * -> 31 0e 0e dd 47 db 6f 72, read little-endian. */
    for (int i = 0; i < HMAP_KEYBYTES; i++)
        a.key[i] = (unsigned char)i;
    a.keyed = 1;
    assert_true(hmap_hash(&a, "") == 0x726fdb47dd0e0e31ULL);
    hmap_free(&a);

    hmap_init(&a);
    int differ = 0;
    char key[64];
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof key, "T%04d", i);
        uint64_t ha = hmap_hash(&a, key);
        assert_true(ha == hmap_hash(&a, key)); /* stable within a map */
        if (ha != hmap_hash(&b, key))
            differ++;
    }
    assert_int_equal(differ, 32); /* equal by chance with probability 2^-64 each */
    assert_true(hmap_hash(&a, "T0001") != hmap_hash(&a, "T0002"));
    assert_true(hmap_hash(&a, "T0001") != hmap_hash(&a, "T0001 "));
    assert_true(memcmp(a.key, b.key, HMAP_KEYBYTES) != 0);
    /* A map used after hmap_free gets a fresh key. */
    unsigned char old[HMAP_KEYBYTES];
    memcpy(old, a.key, sizeof old);
    hmap_free(&a);
    int x = 1;
    assert_null(hmap_put(&a, "k", &x));
    assert_true(a.keyed && memcmp(a.key, old, sizeof old) != 0);
    hmap_free(&a);
    hmap_free(&b);

    /* A zeroed map (static or calloc'd, never hmap_init'ed) works and draws its key itself. */
    hmap_t z;
    memset(&z, 0, sizeof z);
    assert_null(hmap_get(&z, "k"));
    assert_null(hmap_put(&z, "k", &x));
    assert_ptr_equal(hmap_get(&z, "k"), &x);
    hmap_free(&z);
}

/* Many keys that share a long prefix (as ids chosen by an attacker would) still behave exactly as
 * a map, and their slots spread: no probe chain grows far beyond what a random function gives. */
static void test_hmap_common_prefix_keys(void **state)
{
    (void)state;
    enum { N = 20000, PREFIX = 200 };
    hmap_t m;
    hmap_init(&m);
    char key[PREFIX + 16];
    memset(key, 'A', PREFIX);
    for (int i = 0; i < N; i++) {
        snprintf(key + PREFIX, sizeof key - PREFIX, "%d", i);
        assert_null(hmap_put(&m, key, (void *)(uintptr_t)(i + 1)));
    }
    assert_int_equal(m.count, N);
    for (int i = 0; i < N; i++) {
        snprintf(key + PREFIX, sizeof key - PREFIX, "%d", i);
        assert_ptr_equal(hmap_get(&m, key), (void *)(uintptr_t)(i + 1));
    }
    /* Longest run of occupied slots: with load <= 3/4 and a random function it stays in the
     * hundreds at most; colliding hashes would make it ~N. */
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < 2 * m.cap; i++) {
        if (m.slots[i & (m.cap - 1)].key) {
            run++;
            if (run > longest)
                longest = run;
        } else {
            run = 0;
        }
    }
    assert_true(longest < 1000);
    for (int i = 0; i < N; i += 2) {
        snprintf(key + PREFIX, sizeof key - PREFIX, "%d", i);
        assert_ptr_equal(hmap_del(&m, key), (void *)(uintptr_t)(i + 1));
    }
    assert_int_equal(m.count, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key + PREFIX, sizeof key - PREFIX, "%d", i);
        assert_ptr_equal(hmap_get(&m, key), (i % 2) ? (void *)(uintptr_t)(i + 1) : NULL);
    }
    hmap_free(&m);
}

#define KEYSPACE 20000

static void check_hmap_against(const hmap_t *m, void **ref)
{
    char key[16];
    size_t live = 0;
    for (int i = 0; i < KEYSPACE; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_ptr_equal(hmap_get(m, key), ref[i]);
        if (ref[i])
            live++;
    }
    assert_int_equal(m->count, live);
    /* Iteration visits each live key exactly once with its value. */
    unsigned char *seen = calloc(KEYSPACE, 1);
    size_t visits = 0;
    const char *k;
    void *v;
    for (size_t pos = 0; hmap_next(m, &pos, &k, &v);) {
        assert_int_equal(k[0], 'k');
        int i = atoi(k + 1);
        assert_in_range(i, 0, KEYSPACE - 1);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        assert_ptr_equal(v, ref[i]);
        visits++;
    }
    assert_int_equal(visits, live);
    free(seen);
    /* Structural invariants: power-of-two capacity, at least one empty slot. */
    if (m->cap) {
        assert_int_equal(m->cap & (m->cap - 1), 0);
        assert_true(m->used < m->cap);
        assert_true(m->count <= m->used);
    }
}

static void test_hmap_random_vs_reference(void **state)
{
    hmap_t m;
    hmap_init(&m);
    void **ref = calloc(KEYSPACE, sizeof *ref);
    char key[16];
    for (int op = 0; op < 100000; op++) {
        int i = (int)(rnd() % KEYSPACE);
        snprintf(key, sizeof key, "k%d", i);
        void *val = (void *)(uintptr_t)(op + 1);
        uint64_t r = rnd() % 10;
        if (r < 5) {
            assert_ptr_equal(hmap_put(&m, key, val), ref[i]);
            ref[i] = val;
        } else if (r < 8) {
            assert_ptr_equal(hmap_del(&m, key), ref[i]);
            ref[i] = NULL;
        } else {
            assert_ptr_equal(hmap_get(&m, key), ref[i]);
        }
        if (op % 25000 == 24999)
            check_hmap_against(&m, ref);
    }
    check_hmap_against(&m, ref);
    /* Delete everything, then re-insert: tombstones must not hide or duplicate keys. */
    for (int i = 0; i < KEYSPACE; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_ptr_equal(hmap_del(&m, key), ref[i]);
        ref[i] = NULL;
    }
    check_hmap_against(&m, ref);
    for (int i = 0; i < KEYSPACE; i += 3) {
        snprintf(key, sizeof key, "k%d", i);
        ref[i] = (void *)(uintptr_t)(i + 7);
        assert_null(hmap_put(&m, key, ref[i]));
    }
    check_hmap_against(&m, ref);
    hmap_free(&m);
    free(ref);
}

static void test_hmap_growth_and_tombstones(void **state)
{
    hmap_t m;
    hmap_init(&m);
    char key[32];
    size_t prev_cap = 0;
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "grow-%d", i);
        hmap_put(&m, key, (void *)(uintptr_t)(i + 1));
        assert_true(m.cap >= prev_cap); /* never shrinks while growing */
        assert_true(m.used * 4 < m.cap * 3 + 4);
        prev_cap = m.cap;
    }
    assert_int_equal(m.count, 50000);
    assert_true(m.cap >= 65536);
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "grow-%d", i);
        assert_ptr_equal(hmap_get(&m, key), (void *)(uintptr_t)(i + 1));
    }
    hmap_free(&m);

    /* Churn: many distinct keys inserted and deleted with at most a few live. The table is
     * rehashed in place to drop tombstones instead of growing without bound, and lookups of
     * absent keys terminate. */
    hmap_init(&m);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "churn-%d", i);
        hmap_put(&m, key, &m);
        if (i >= 3) {
            snprintf(key, sizeof key, "churn-%d", i - 3);
            assert_ptr_equal(hmap_del(&m, key), &m);
        }
        assert_true(m.used < m.cap);
    }
    assert_int_equal(m.count, 3);
    assert_true(m.cap <= 64);
    assert_null(hmap_get(&m, "absent"));
    assert_ptr_equal(hmap_get(&m, "churn-99999"), &m);
    hmap_free(&m);
}

/* ---- err ---- */

static void test_err_codes(void **state)
{
    static const struct {
        int code;
        const char *name;
        const char *text;
    } codes[] = {
#define X(n, t) {GS_E##n, "GS_E" #n, t},
        GS_ERR_MAP(X)
#undef X
    };
    assert_int_equal(sizeof codes / sizeof codes[0], 18);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_true(codes[i].code < -9000); /* far below the errno range */
        assert_string_equal(err_name(codes[i].code), codes[i].name);
        assert_string_equal(err_str(codes[i].code), codes[i].text);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(codes[i].code, codes[j].code);
    }
    assert_string_equal(err_name(GS_EINVAL), "GS_EINVAL");
    assert_string_equal(err_name(GS_EIO), "GS_EIO");
    assert_string_equal(err_str(GS_ETIMEOUT), "timed out");
    assert_string_equal(err_name(0), "OK");
    assert_string_equal(err_str(0), "success");
    /* Outside both ranges. */
    assert_string_equal(err_name(1), "UNKNOWN");
    assert_string_equal(err_str(1), "unknown error");
    assert_string_equal(err_name(GS_ERR_BASE_), "UNKNOWN");
    assert_string_equal(err_str(GS_ERR_BASE_), "unknown error");
    assert_string_equal(err_name(-20000), "UNKNOWN");
    assert_string_equal(err_name(INT32_MIN), "UNKNOWN");
}

static void test_err_errno(void **state)
{
    static const struct {
        int code;
        const char *name;
    } sys[] = {
        {-ECONNRESET, "ECONNRESET"}, {-ENOENT, "ENOENT"},       {-EACCES, "EACCES"},
        {-EADDRINUSE, "EADDRINUSE"}, {-ETIMEDOUT, "ETIMEDOUT"}, {-EPIPE, "EPIPE"},
        {-ENOMEM, "ENOMEM"},         {-EINVAL, "EINVAL"},       {-ECONNREFUSED, "ECONNREFUSED"},
    };
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        assert_string_equal(err_name(sys[i].code), sys[i].name);
        const char *s = err_str(sys[i].code);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(err_str(-ECONNRESET), "connection reset by peer");
    assert_string_equal(err_str(-ENOENT), "no such file or directory");
}

static void test_err_errno_unknown_to_libuv(void **state)
{
    /* -EDEADLK, -ECHILD, -ESTALE, -EDQUOT, -EBADMSG are real Linux errno values outside libuv's
     * UV_ERRNO_MAP. uv_err_name()/uv_strerror() then return a new heap string on every call
     * ("Unknown system error -35"), which contradicts "static ... Never NULL" and leaks
     * (LeakSanitizer reports it). Expected: a static string, the same pointer on every call, and
     * for err_name the symbolic name. */
    static const struct {
        int code;
        const char *name;
    } sys[] = {{-EDEADLK, "EDEADLK"}, {-ECHILD, "ECHILD"}, {-ESTALE, "ESTALE"},
               {-EDQUOT, "EDQUOT"},   {-EBADMSG, "EBADMSG"}};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        assert_ptr_equal(err_name(sys[i].code), err_name(sys[i].code));
        assert_ptr_equal(err_str(sys[i].code), err_str(sys[i].code));
        assert_string_equal(err_name(sys[i].code), sys[i].name);
    }
}

/* ---- log ---- */

/* Runs fn with stderr redirected to a temp file; returns the captured text (caller frees). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/gs_core_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    fn(arg);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    text[size] = 0;
    close(fd);
    return text;
}

static void test_log_parse_level(void **state)
{
    static const struct {
        const char *s;
        log_level_t l;
    } ok[] = {{"error", LOG_ERROR}, {"warn", LOG_WARN},   {"info", LOG_INFO}, {"debug", LOG_DEBUG},
              {"trace", LOG_TRACE}, {"DEBUG", LOG_DEBUG}, {"Warn", LOG_WARN}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        log_level_t l = (log_level_t)99;
        assert_int_equal(log_parse_level(ok[i].s, &l), 0);
        assert_int_equal(l, ok[i].l);
    }
    static const char *const bad[] = {"", "warning", "err", "info ", "fatal", "3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_level_t l = LOG_TRACE;
        assert_int_equal(log_parse_level(bad[i], &l), GS_EINVAL);
        assert_int_equal(l, LOG_TRACE);
    }
    log_level_t old = log_get_level();
    log_set_level(LOG_DEBUG);
    assert_int_equal(log_get_level(), LOG_DEBUG);
    log_set_level(old);
}

static void log_escape_fn(void *arg)
{
    log_info("T1\x1b]0;x\x07", "id=%s end", "evil\x1b[2J\nFAKE 2026-01-01 ERROR forged\r\x7f\xff");
}

static void test_log_escapes_control(void **state)
{
    log_level_t old = log_get_level();
    log_set_level(LOG_INFO);
    char *out = capture_stderr(log_escape_fn, NULL);
    log_set_level(old);
    /* Exactly one line. */
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], 0);
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\r'));
    assert_null(strchr(out, '\x07'));
    assert_null(strchr(out, '\x7f'));
    assert_null(strchr(out, '\xff'));
    assert_non_null(strstr(out, " INFO "));
    assert_non_null(strstr(out, "[T1\\x1b]0;x\\x07]"));
    assert_non_null(
        strstr(out, "id=evil\\x1b[2J\\x0aFAKE 2026-01-01 ERROR forged\\x0d\\x7f\\xff end"));
    /* Timestamp prefix "YYYY-MM-DDTHH:MM:SS.mmmZ ". */
    assert_true(strlen(out) > 25);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[23], 'Z');
    free(out);
}

static char big_msg[10 * 1024 + 1];

static void log_big_fn(void *arg)
{
    log_warn(NULL, "%s", (const char *)arg);
    log_error("who", "%s", (const char *)arg);
}

static void test_log_truncates(void **state)
{
    log_level_t old = log_get_level();
    log_set_level(LOG_INFO);
    /* 10 KB of printable text. */
    memset(big_msg, 'A', sizeof big_msg - 1);
    big_msg[sizeof big_msg - 1] = 0;
    char *out = capture_stderr(log_big_fn, big_msg);
    char *l2 = strchr(out, '\n');
    assert_non_null(l2);
    size_t len1 = (size_t)(l2 - out);
    assert_true(len1 < 1100);
    assert_true(len1 > 1000); /* truncated, not dropped */
    assert_non_null(strstr(out, " WARN  AAAA"));
    char *end = strchr(l2 + 1, '\n');
    assert_non_null(end);
    assert_int_equal(end[1], 0);
    assert_true((size_t)(end - l2 - 1) < 1110);
    assert_non_null(strstr(l2 + 1, " ERROR [who] AAAA"));
    free(out);

    /* 10 KB of control bytes: each expands to 4 characters, still bounded. */
    memset(big_msg, '\x01', sizeof big_msg - 1);
    out = capture_stderr(log_big_fn, big_msg);
    l2 = strchr(out, '\n');
    assert_non_null(l2);
    assert_true((size_t)(l2 - out) < 1100);
    assert_null(strchr(out, '\x01'));
    assert_non_null(strstr(out, "\\x01\\x01"));
    free(out);
    log_set_level(old);
}

static void log_filter_fn(void *arg)
{
    log_info(NULL, "hidden info");
    log_debug(NULL, "hidden debug");
    log_msg(LOG_TRACE, NULL, "hidden trace");
    log_warn(NULL, "shown warn");
    log_error(NULL, "shown error");
}

static void test_log_level_filter(void **state)
{
    log_level_t old = log_get_level();
    log_set_level(LOG_WARN);
    char *out = capture_stderr(log_filter_fn, NULL);
    log_set_level(old);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "WARN  shown warn\n"));
    assert_non_null(strstr(out, "ERROR shown error\n"));
    free(out);
}

/* ---- log_limited ---- */

static long long fake_now;
static long long fake_clock(void)
{
    return fake_now;
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *l = s; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        if (!needle || strstr(line, needle))
            n++;
        l += len + (nl ? 1 : 0);
    }
    return n;
}

#define SEC 1000000000LL

/* One source: 5 lines a window, then a single summary when its next line is allowed. Another
 * source is not affected by the first one's limit. */
static void ll_burst_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++)
        log_limited(LOG_WARN, "10.0.0.1", "bad login %d", i);
    for (int i = 0; i < 3; i++)
        log_limited(LOG_WARN, "10.0.0.2", "other %d", i);
    fake_now += 59 * SEC;
    log_limited(LOG_WARN, "10.0.0.1", "still limited");
    fake_now += 2 * SEC;
    log_limited(LOG_WARN, "10.0.0.1", "allowed again");
}

static void test_log_limited_burst_and_summary(void **state)
{
    (void)state;
    log_level_t old = log_get_level();
    log_set_level(LOG_INFO);
    fake_now = 1000 * SEC;
    log_limited_set_clock(fake_clock);
    char *out = capture_stderr(ll_burst_fn, NULL);
    assert_int_equal(count_lines(out, "[10.0.0.1] bad login"), 5);
    assert_non_null(strstr(out, "bad login 4\n"));
    assert_null(strstr(out, "bad login 5"));
    assert_int_equal(count_lines(out, "[10.0.0.2] other"), 3);
    assert_null(strstr(out, "still limited"));
    assert_non_null(
        strstr(out, "WARN  [10.0.0.1] suppressed 16 similar messages from 10.0.0.1 in the last 60 s\n"));
    /* The summary comes before the line that is allowed again. */
    assert_true(strstr(out, "suppressed 16") < strstr(out, "allowed again"));
    assert_int_equal(count_lines(out, NULL), 5 + 3 + 2);
    free(out);
    log_limited_set_clock(NULL);
    log_set_level(old);
}

/* log_limited_flush writes the summary of a source that went quiet, once its window is over. */
static void ll_flush_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 12; i++)
        log_limited(LOG_WARN, "src", "x %d", i);
    log_limited_flush(); /* window not over: nothing */
    fake_now += 60 * SEC;
    log_limited_flush();
    log_limited_flush(); /* once only */
    log_limited(LOG_DEBUG, "src", "below the level: neither written nor counted");
}

static void test_log_limited_flush(void **state)
{
    (void)state;
    log_level_t old = log_get_level();
    log_set_level(LOG_INFO);
    fake_now = 5 * SEC;
    log_limited_set_clock(fake_clock);
    char *out = capture_stderr(ll_flush_fn, NULL);
    assert_int_equal(count_lines(out, "] x "), 5);
    assert_int_equal(count_lines(out, "suppressed 7 similar messages from src in the last 60 s"), 1);
    assert_int_equal(count_lines(out, NULL), 6);
    free(out);
    log_limited_set_clock(NULL);
    log_set_level(old);
}

/* Many sources: the table stays fixed-size (entries are recycled) and the total stays within
 * the global budget, with a "*" summary for the rest. */
static void ll_many_fn(void *arg)
{
    (void)arg;
    char src[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(src, sizeof src, "2001:db8:%x::/64", i);
        log_limited(LOG_WARN, src, "hello from %d", i);
        log_limited(LOG_WARN, src, "again from %d", i);
    }
    fake_now += 61 * SEC;
    log_limited_flush();
}

static void test_log_limited_bounded(void **state)
{
    (void)state;
    log_level_t old = log_get_level();
    log_set_level(LOG_INFO);
    fake_now = 7 * SEC;
    log_limited_set_clock(fake_clock);
    char *out = capture_stderr(ll_many_fn, NULL);
    assert_int_equal(count_lines(out, "from "), LOG_LIMIT_GLOBAL + 1);
    assert_int_equal(count_lines(out, "suppressed 39800 similar messages from * in the last 60 s"), 1);
    free(out);
    log_limited_set_clock(NULL);
    log_set_level(old);
}

/* Threads logging from one source at once: exactly the burst is written and every other call
 * is counted in the summary (no lost or doubled counts). */
static void *ll_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        log_limited(LOG_WARN, "shared", "line %d", i);
    return NULL;
}

static void ll_threads_fn(void *arg)
{
    (void)arg;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ll_thread, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    fake_now += 60 * SEC;
    log_limited_flush();
}

static void test_log_limited_threads(void **state)
{
    (void)state;
    log_level_t old = log_get_level();
    log_set_level(LOG_INFO);
    fake_now = 9 * SEC;
    log_limited_set_clock(fake_clock);
    char *out = capture_stderr(ll_threads_fn, NULL);
    assert_int_equal(count_lines(out, "[shared] line "), 5);
    assert_int_equal(count_lines(out, "suppressed 7995 similar messages from shared"), 1);
    free(out);
    log_limited_set_clock(NULL);
    log_set_level(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_basic),
        cmocka_unit_test(test_buf_append_growth),
        cmocka_unit_test(test_buf_printf_sizes),
        cmocka_unit_test(test_buf_printf_formats),
        cmocka_unit_test(test_buf_reset_reserve),
        cmocka_unit_test(test_json_str_escapes),
        cmocka_unit_test(test_json_str_valid_utf8),
        cmocka_unit_test(test_json_str_invalid_utf8),
        cmocka_unit_test(test_json_str_random_bytes),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_addr_parse_unbalanced_bracket),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_time_fmt_utc),
        cmocka_unit_test(test_time_fmt_utc_negative_submilli),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_hmap_basic),
        cmocka_unit_test(test_hmap_random_vs_reference),
        cmocka_unit_test(test_hmap_growth_and_tombstones),
        cmocka_unit_test(test_hmap_keyed_hash),
        cmocka_unit_test(test_hmap_common_prefix_keys),
        cmocka_unit_test(test_err_codes),
        cmocka_unit_test(test_err_errno),
        cmocka_unit_test(test_err_errno_unknown_to_libuv),
        cmocka_unit_test(test_log_parse_level),
        cmocka_unit_test(test_log_escapes_control),
        cmocka_unit_test(test_log_truncates),
        cmocka_unit_test(test_log_level_filter),
        cmocka_unit_test(test_log_limited_burst_and_summary),
        cmocka_unit_test(test_log_limited_flush),
        cmocka_unit_test(test_log_limited_bounded),
        cmocka_unit_test(test_log_limited_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
