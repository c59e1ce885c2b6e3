/* Unit tests for the COMTRADE reader/writer (src/comtrade/comtrade.h): hand-written .cfg texts
 * in the layouts of C37.111-1991/1999/2013 (date order, time codes, nrates = 0 with timestamps,
 * several sample rates), error messages naming line and field, write/read round trips in every
 * file type for 1999 and 2013 and as .cff, truncated and surplus data, missing values, and
 * primary/secondary conversion. Files go to a mkdtemp directory that is removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comtrade/comtrade.h"
#include "core/err.h"
#include "core/util.h"

#define NS 1000000000LL

/* ---- Helpers ----------------------------------------------------------------------------------
 */

typedef struct {
    char dir[64];
} tmpdir_t;

static int setup_dir(void **state)
{
    tmpdir_t *t = calloc(1, sizeof *t);

    if (!t)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/gs-comtrade-XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    tmpdir_t *t = *state;
    DIR *d = opendir(t->dir);
    struct dirent *e;
    char path[512];

    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", t->dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(t->dir);
    free(t);
    return 0;
}

static int parse(const char *text, comtrade_cfg_t *cfg, char *err, size_t errlen)
{
    return comtrade_cfg_parse(text, strlen(text), cfg, err, errlen);
}

/* Parses text that must be valid. */
static void parse_ok(const char *text, comtrade_cfg_t *cfg)
{
    char err[256] = "";
    int rc = parse(text, cfg, err, sizeof err);

    if (rc != 0)
        fail_msg("parse failed: %s", err);
}

static comtrade_rec_t *dat_ok(const comtrade_cfg_t *cfg, const char *dat, size_t len)
{
    comtrade_rec_t *rec = NULL;
    char err[256] = "";

    if (comtrade_dat_parse(cfg, (const uint8_t *)dat, len, &rec, err, sizeof err) != 0)
        fail_msg("dat parse failed: %s", err);
    return rec;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static char *read_text(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    size_t n;

    assert_non_null(fp);
    assert_non_null(buf);
    n = fread(buf, 1, (1 << 20) - 1, fp);
    fclose(fp);
    if (len)
        *len = n;
    return buf;
}

/* ---- Parsing the standard layouts ---------------------------------------------------------------
 */

/* 1999: dd/mm/yyyy dates, 13-field analog and 5-field digital lines, timemult. */
static void test_parse_1999(void **state)
{
    const char *text = "SUB1,REL7,1999\n"
                       "4,2A,2D\n"
                       "1,IA,A,LINE1,A,0.01,0.5,0,-32767,32767,600,5,P\n"
                       "2,VA,A,LINE1,kV,0.002,0,10.5,-32767,32767,132,0.11,S\n"
                       "1,TRIP,,LINE1,0\n"
                       "2,BKR,A,LINE1,1\n"
                       "50\n"
                       "1\n"
                       "1200,40\n"
                       "12/01/2011,05:55:30.075011\n"
                       "12/01/2011,05:55:30.078261\n"
                       "ASCII\n"
                       "1\n";
    comtrade_cfg_t c;

    (void)state;
    parse_ok(text, &c);
    assert_string_equal(c.station, "SUB1");
    assert_string_equal(c.rec_dev_id, "REL7");
    assert_int_equal(c.rev_year, 1999);
    assert_int_equal(c.nanalog, 2);
    assert_int_equal(c.ndigital, 2);
    assert_int_equal(c.analog[1].index, 2);
    assert_string_equal(c.analog[1].ch_id, "VA");
    assert_string_equal(c.analog[1].ph, "A");
    assert_string_equal(c.analog[1].ccbm, "LINE1");
    assert_string_equal(c.analog[1].uu, "kV");
    assert_true(c.analog[1].a == 0.002 && c.analog[1].b == 0 && c.analog[1].skew == 10.5);
    assert_true(c.analog[1].min == -32767 && c.analog[1].max == 32767);
    assert_true(c.analog[1].primary == 132 && c.analog[1].secondary == 0.11);
    assert_int_equal(c.analog[1].ps, 'S');
    assert_int_equal(c.analog[0].ps, 'P');
    assert_string_equal(c.digital[0].ch_id, "TRIP");
    assert_string_equal(c.digital[0].ph, "");
    assert_int_equal(c.digital[1].y, 1);
    assert_true(c.lf == 50);
    assert_int_equal(c.nrates, 1);
    assert_true(c.rates[0].samp == 1200);
    assert_int_equal(c.rates[0].endsamp, 40);
    assert_int_equal(c.endsamp, 40);
    assert_true(c.start_ns == 1294811730 * NS + 75011000);
    assert_true(c.trigger_ns == 1294811730 * NS + 78261000);
    assert_int_equal(c.nanosec, 0);
    assert_int_equal(c.ft, COMTRADE_ASCII);
    assert_true(c.timemult == 1);
    assert_int_equal(c.tmq_code, -1);
    assert_int_equal(c.leapsec, -1);
    comtrade_cfg_free(&c);
}

/* 1991: no rev_year, mm/dd/yy dates, 10-field analog and 3-field digital lines, no timemult. */
static void test_parse_1991(void **state)
{
    const char *text = "OLD STATION,DFR1\n"
                       "2,1A,1D\n"
                       "1,VA,A,,kV,0.1,0,0,-2048,2047\n"
                       "1,TRIP,0\n"
                       "60\n"
                       "1\n"
                       "960,20\n"
                       "01/12/95,10:00:00.000000\n"
                       "01/12/95,10:00:00.010000\n"
                       "BINARY\n";
    comtrade_cfg_t c;

    (void)state;
    parse_ok(text, &c);
    assert_int_equal(c.rev_year, 1991);
    assert_string_equal(c.station, "OLD STATION");
    assert_true(c.analog[0].a == 0.1 && c.analog[0].min == -2048);
    assert_true(c.analog[0].primary == 1 && c.analog[0].secondary == 1);
    assert_int_equal(c.analog[0].ps, 'P');
    assert_string_equal(c.digital[0].ch_id, "TRIP");
    assert_int_equal(c.digital[0].y, 0);
    /* January 12th: month first in 1991 */
    assert_true(c.start_ns == 789904800 * NS);
    assert_true(c.trigger_ns == 789904800 * NS + 10000000);
    assert_int_equal(c.ft, COMTRADE_BINARY);
    assert_true(c.timemult == 1);
    comtrade_cfg_free(&c);
}

/* 2013: CRLF, BOM, trailing blanks and comma, lowercase ps, 9-digit times, time_code/local_code
 * and tmq_code/leapsec (the layout of the 2013 standard's example). */
static void test_parse_2013(void **state)
{
    const char *text =
        "\xEF\xBB\xBFSMARTSTATION,IED123,2013  \r\n"
        "3,2A,1D\r\n"
        "1,IA ,,Line123, A,0.1138916015625,0.05694580078125,0,-32768,32767,933,1,s\r\n"
        "2,IB,,Line123,A,0.11,0,,,,,,\r\n"
        "1,51A,,Line123,0,\r\n"
        "60\r\n"
        "1\r\n"
        "1200,40\r\n"
        "12/01/2011,05:55:30.075011123\r\n"
        "12/01/2011,05:55:30.078261000\r\n"
        "BINARY32\r\n"
        "1\r\n"
        "-5h30,+10\r\n"
        "B,3\r\n"
        "\r\n";
    comtrade_cfg_t c;

    (void)state;
    parse_ok(text, &c);
    assert_string_equal(c.station, "SMARTSTATION");
    assert_int_equal(c.rev_year, 2013);
    assert_string_equal(c.analog[0].ch_id, "IA");
    assert_string_equal(c.analog[0].uu, "A");
    assert_int_equal(c.analog[0].ps, 'S');
    assert_true(c.analog[0].primary == 933);
    /* empty non-critical fields take their defaults */
    assert_true(c.analog[1].skew == 0 && c.analog[1].min == 0 && c.analog[1].max == 0);
    assert_true(c.analog[1].primary == 1 && c.analog[1].secondary == 1);
    assert_int_equal(c.analog[1].ps, 'P');
    assert_true(c.start_ns == 1294811730 * NS + 75011123);
    assert_int_equal(c.nanosec, 1);
    assert_int_equal(c.ft, COMTRADE_BINARY32);
    assert_string_equal(c.time_code, "-5h30");
    assert_int_equal(c.time_code_min, -330);
    assert_string_equal(c.local_code, "+10");
    assert_int_equal(c.local_code_min, 600);
    assert_int_equal(c.tmq_code, 11);
    assert_int_equal(c.leapsec, 3);
    comtrade_cfg_free(&c);
}

/* nrates = 0: sample times are the .dat timestamps x timemult in µs (ns with 9-digit dates). */
static void test_timestamps_nrates0(void **state)
{
    const char *cfg_us = "S,D,1999\n1,1A,0D\n1,V,,,V,1,0,0,-99999,99998,1,1,P\n50\n0\n0,3\n"
                         "02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\nASCII\n2.5\n";
    const char *cfg_ns = "S,D,2013\n1,1A,0D\n1,V,,,V,1,0,0,-99999,99998,1,1,P\n50\n0\n0,3\n"
                         "02/01/2026,03:04:05.000000000\n02/01/2026,03:04:05.000000000\n"
                         "ASCII\n2\n0,0\n0,0\n";
    const char *dat = "1,0,10\n2,400,11\n3,,12\n";
    int64_t t0 = 1767323045 * NS;
    comtrade_cfg_t c;
    comtrade_rec_t *rec;

    (void)state;
    parse_ok(cfg_us, &c);
    assert_int_equal(c.nrates, 0);
    assert_int_equal(c.endsamp, 3);
    rec = dat_ok(&c, dat, strlen(dat));
    assert_int_equal(comtrade_nsamples(rec), 3);
    assert_true(comtrade_time_ns(rec, 0) == t0);
    assert_true(comtrade_time_ns(rec, 1) == t0 + 400 * 2500); /* 400 x 2.5 µs */
    /* an empty ASCII timestamp is missing */
    assert_true(comtrade_time_ns(rec, 2) == COMTRADE_TIME_NONE);
    assert_int_equal(comtrade_sample_number(rec, 2), 3);
    assert_true(comtrade_value(rec, 0, 2, COMTRADE_AS_RECORDED) == 12);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);

    parse_ok(cfg_ns, &c);
    assert_int_equal(c.nanosec, 1);
    rec = dat_ok(&c, dat, strlen(dat));
    assert_true(comtrade_time_ns(rec, 1) == t0 + 800); /* 400 x 2 ns */
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);
}

/* Several rates: each sample follows the previous one by 1/samp of its own segment. */
static void test_multiple_rates(void **state)
{
    const char *cfg = "S,D,1999\n1,1A,0D\n1,V,,,V,1,0,0,-32767,32767,1,1,P\n50\n2\n1000,10\n"
                      "100,15\n02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\nBINARY\n1\n";
    uint8_t dat[15 * 10];
    int64_t t0 = 1767323045 * NS;
    comtrade_cfg_t c;
    comtrade_rec_t *rec;

    (void)state;
    parse_ok(cfg, &c);
    assert_int_equal(c.nrates, 2);
    assert_int_equal(c.endsamp, 15);
    memset(dat, 0, sizeof dat);
    for (int i = 0; i < 15; i++) {
        dat[i * 10] = (uint8_t)(i + 1);
        dat[i * 10 + 4] = 0xff; /* timestamps are not used when nrates > 0 */
        dat[i * 10 + 5] = 0xff;
        dat[i * 10 + 6] = 0xff;
        dat[i * 10 + 7] = 0xff;
        dat[i * 10 + 8] = (uint8_t)i;
    }
    rec = dat_ok(&c, (const char *)dat, sizeof dat);
    assert_int_equal(comtrade_nsamples(rec), 15);
    assert_true(comtrade_time_ns(rec, 0) == t0);
    assert_true(comtrade_time_ns(rec, 9) == t0 + 9000000);   /* sample 10: 9 ms */
    assert_true(comtrade_time_ns(rec, 10) == t0 + 19000000); /* sample 11: +10 ms */
    assert_true(comtrade_time_ns(rec, 14) == t0 + 59000000);
    assert_true(comtrade_value(rec, 0, 14, COMTRADE_AS_RECORDED) == 14);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);
}

/* ---- Errors name the line and field
 * -------------------------------------------------------------- */

static const char *const base_lines[] = {
    "S,D,2013",                                  /* 1 */
    "2,1A,1D",                                   /* 2 */
    "1,IA,A,L1,A,0.01,0,0,-32767,32767,600,5,P", /* 3 */
    "1,TRIP,,L1,0",                              /* 4 */
    "50",                                        /* 5 */
    "1",                                         /* 6 */
    "1000,10",                                   /* 7 */
    "02/01/2026,03:04:05.000000",                /* 8 */
    "02/01/2026,03:04:05.001000",                /* 9 */
    "BINARY",                                    /* 10 */
    "1",                                         /* 11 */
    "+1,+1",                                     /* 12 */
    "0,0",                                       /* 13 */
};
#define NBASE (sizeof base_lines / sizeof base_lines[0])

/* The base cfg with line `line` (1-based) replaced by `repl` (NULL: dropped, and every later
 * line too when cut is set). */
static void build(char *out, size_t cap, size_t line, const char *repl, int cut)
{
    size_t n = 0;

    out[0] = 0;
    for (size_t i = 1; i <= NBASE; i++) {
        const char *l = i == line ? repl : base_lines[i - 1];
        if (i == line && !repl && cut)
            break;
        if (l)
            n += (size_t)snprintf(out + n, cap - n, "%s\r\n", l);
    }
}

static void test_cfg_errors(void **state)
{
    static const struct {
        size_t line;
        const char *repl;
        int cut, code;
        const char *msg;
    } cases[] = {
        {3, "1,IA,A,L1,A,x,0,0,-32767,32767,600,5,P", 0, GS_EPROTO,
         "line 3: field 6 (a): not a number: 'x'"},
        {3, "1,IA,A,L1,A,,0,0,-32767,32767,600,5,P", 0, GS_EPROTO,
         "line 3: field 6 (a): required field is empty"},
        {3, "1,IA,A,L1,A,0.1,0,0,-32767,32767,600,5", 0, GS_EPROTO,
         "line 3: 12 fields, expected 13 (analog channel 1 of 1)"},
        {3, "1,IA,A,L1,A,0.1,0,0,-32767,32767,600,5,Q", 0, GS_EPROTO,
         "line 3: field 13 (PS): expected P or S: 'Q'"},
        {3, "0,IA,A,L1,A,0.1,0,0,-32767,32767,600,5,P", 0, GS_EPROTO,
         "line 3: field 1 (An): out of range 1..999999: '0'"},
        {3,
         "1,I\x01"
         "A,A,L1,A,0.1,0,0,-32767,32767,600,5,P",
         0, GS_EPROTO, "line 3: field 2 (ch_id): control character in text: 'I?A'"},
        {1, "S,D,2001", 0, GS_EPROTO, "line 1: field 3 (rev_year): unsupported revision"},
        {2, "3,1A,1D", 0, GS_EPROTO, "line 2: field 1 (TT): total is not 1A + 1D: '3'"},
        {2, "2,1,1D", 0, GS_EPROTO, "line 2: field 2 (##A): expected a count followed by 'A'"},
        {2, "5000,5000A,0D", 0, GS_ELIMIT,
         "line 2: field 2 (##A): 5000 channels exceed the limit of 4096"},
        {2, "5000,4000A,1000D", 0, GS_ELIMIT, "line 2: 5000 channels exceed the limit of 4096"},
        {4, "1,TRIP,,L1,2", 0, GS_EPROTO, "line 4: field 5 (y): out of range 0..1: '2'"},
        {5, "fifty", 0, GS_EPROTO, "line 5: field 1 (lf): not a number: 'fifty'"},
        {6, "one", 0, GS_EPROTO, "line 6: field 1 (nrates): not an integer: 'one'"},
        {7, "0,10", 0, GS_EPROTO, "line 7: field 1 (samp): sample rate must be > 0: '0'"},
        {7, "1000,0", 0, GS_EPROTO, "line 7: field 2 (endsamp): out of range"},
        {8, "31/02/2026,03:04:05.000000", 0, GS_EPROTO,
         "line 8: field 1 (date): no such date: '31/02/2026'"},
        {8, "2026-01-02,03:04:05.000000", 0, GS_EPROTO,
         "line 8: field 1 (date): expected dd/mm/yyyy"},
        {9, "02/01/2026,25:04:05.000000", 0, GS_EPROTO,
         "line 9: field 2 (time): no such time of day: '25:04:05.000000'"},
        {9, "02/01/2026,03:04:05.0000001234", 0, GS_EPROTO, "line 9: field 2 (time): expected"},
        {10, "TEXT", 0, GS_EPROTO,
         "line 10: field 1 (ft): expected ASCII, BINARY, BINARY32 or "
         "FLOAT32: 'TEXT'"},
        {11, "0", 0, GS_EPROTO, "line 11: field 1 (timemult): must be > 0: '0'"},
        {12, "+5x30,0", 0, GS_EPROTO, "line 12: field 1 (time_code): expected an offset"},
        {12, "0,+25", 0, GS_EPROTO, "line 12: field 2 (local_code): expected an offset"},
        {13, "G,0", 0, GS_EPROTO, "line 13: field 1 (tmq_code): expected one hex digit: 'G'"},
        {13, "0,7", 0, GS_EPROTO, "line 13: field 2 (leapsec): out of range 0..3: '7'"},
        {5, NULL, 1, GS_EPROTO, "line 5: unexpected end of file, expected lf"},
        {3, NULL, 1, GS_EPROTO, "line 2: declares 2 channels but the file ends before them"},
        {8, NULL, 1, GS_EPROTO, "line 8: unexpected end of file, expected first sample time"},
        {8, "02/01/2026", 0, GS_EPROTO, "line 8: 1 fields, expected 2 (first sample time)"},
    };
    char text[2048], err[256];
    comtrade_cfg_t c;

    (void)state;
    build(text, sizeof text, 0, NULL, 0);
    parse_ok(text, &c);
    comtrade_cfg_free(&c);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        build(text, sizeof text, cases[i].line, cases[i].repl, cases[i].cut);
        err[0] = 0;
        rc = parse(text, &c, err, sizeof err);
        if (rc != cases[i].code || !contains(err, cases[i].msg))
            fail_msg("case %zu: rc %d (%s), err \"%s\", want \"%s\"", i, rc, err_name(rc), err,
                     cases[i].msg);
        assert_null(c.analog); /* left zeroed */
    }

    /* trailing text after the last 2013 line */
    build(text, sizeof text, 0, NULL, 0);
    strcat(text, "extra\r\n");
    assert_int_equal(parse(text, &c, err, sizeof err), GS_EPROTO);
    assert_true(contains(err, "line 14: unexpected text after the end of the configuration"));

    /* an over-long line */
    {
        char *big = malloc(COMTRADE_MAX_LINE + 64);
        assert_non_null(big);
        memset(big, 'x', COMTRADE_MAX_LINE + 10);
        memcpy(big + COMTRADE_MAX_LINE + 10, ",D,1999\n", 9);
        assert_int_equal(parse(big, &c, err, sizeof err), GS_ELIMIT);
        assert_true(contains(err, "line 1: longer than"));
        free(big);
    }
    /* empty input */
    assert_int_equal(comtrade_cfg_parse("", 0, &c, err, sizeof err), GS_EPROTO);
    assert_true(contains(err, "line 1: unexpected end of file"));
}

/* ---- Formatting --------------------------------------------------------------------------------
 */

static void test_cfg_format(void **state)
{
    const char *text = "SMARTSTATION,IED123,2013\n"
                       "3,2A,1D\n"
                       "1,IA,,Line123,A,0.1138916015625,0.05694580078125,0,-32768,32767,933,1,s\n"
                       "2,VA,B,Line123,kV,0.5,-1.25,12.5,-32767,32767,132,0.11,P\n"
                       "1,51A,,Line123,1\n"
                       "60\n"
                       "2\n"
                       "1200,40\n"
                       "600,50\n"
                       "12/01/2011,05:55:30.075011\n"
                       "12/01/2011,05:55:30.078261\n"
                       "ASCII\n"
                       "1\n"
                       "-5h30,x\n"
                       "B,3\n";
    const char *want = "SMARTSTATION,IED123,2013\r\n"
                       "3,2A,1D\r\n"
                       "1,IA,,Line123,A,0.1138916015625,0.05694580078125,0,-32768,32767,933,1,S\r\n"
                       "2,VA,B,Line123,kV,0.5,-1.25,12.5,-32767,32767,132,0.11,P\r\n"
                       "1,51A,,Line123,1\r\n"
                       "60\r\n"
                       "2\r\n"
                       "1200,40\r\n"
                       "600,50\r\n"
                       "12/01/2011,05:55:30.075011\r\n"
                       "12/01/2011,05:55:30.078261\r\n"
                       "ASCII\r\n"
                       "1\r\n"
                       "-5h30,x\r\n"
                       "B,3\r\n";
    comtrade_cfg_t c, c2;
    buf_t b = {0};
    char err[256];

    (void)state;
    parse_ok(text, &c);
    assert_int_equal(comtrade_cfg_format(&c, &b, err, sizeof err), 0);
    assert_string_equal(b.data, want);
    parse_ok(b.data, &c2);
    assert_true(c2.start_ns == c.start_ns && c2.trigger_ns == c.trigger_ns);
    assert_true(c2.analog[0].a == c.analog[0].a && c2.analog[0].b == c.analog[0].b);
    comtrade_cfg_free(&c2);

    /* 1991 layout: no revision, mm/dd, short channel lines, no timemult */
    c.rev_year = 1991;
    buf_reset(&b);
    assert_int_equal(comtrade_cfg_format(&c, &b, err, sizeof err), 0);
    assert_true(contains(b.data, "SMARTSTATION,IED123\r\n3,2A,1D\r\n"));
    assert_true(contains(b.data, "\r\n1,IA,,Line123,A,0.1138916015625,0.05694580078125,0,-32768,"
                                 "32767\r\n"));
    assert_true(contains(b.data, "\r\n1,51A,1\r\n"));
    assert_true(contains(b.data, "\r\n01/12/2011,05:55:30.075011\r\n"));
    assert_true(contains(b.data, "ASCII\r\n") && !contains(b.data, "ASCII\r\n1"));
    parse_ok(b.data, &c2);
    assert_true(c2.start_ns == c.start_ns);
    comtrade_cfg_free(&c2);

    /* text that cannot be written */
    strcpy(c.analog[0].ch_id, "I,A");
    buf_reset(&b);
    assert_int_equal(comtrade_cfg_format(&c, &b, err, sizeof err), GS_EINVAL);
    assert_true(contains(err, "analog channel 1: ch_id"));
    buf_free(&b);
    comtrade_cfg_free(&c);
}

/* ---- Write / read round trips ---------------------------------------------------------------- */

#define RT_SAMPLES 500
#define RT_ANALOG  3
#define RT_DIGITAL 20
#define RT_WORDS   2

typedef struct {
    double *a[RT_ANALOG];
    uint16_t dig[RT_SAMPLES * RT_WORDS];
    int64_t t[RT_SAMPLES];
} signal_t;

static void make_signal(signal_t *s)
{
    for (int ch = 0; ch < RT_ANALOG; ch++) {
        s->a[ch] = calloc(RT_SAMPLES, sizeof(double));
        assert_non_null(s->a[ch]);
    }
    for (int i = 0; i < RT_SAMPLES; i++) {
        double t = i / 4000.0;
        s->a[0][i] = 325.27 * sin(2 * M_PI * 50 * t);            /* V */
        s->a[1][i] = 12.5 + 80.0 * sin(2 * M_PI * 50 * t + 0.3); /* A with a DC offset */
        s->a[2][i] = 49.98;                                      /* constant */
        s->dig[i * RT_WORDS] = (uint16_t)(i * 7919u);
        s->dig[i * RT_WORDS + 1] = (uint16_t)((i / 10) & 0xf); /* channels 17..20 only */
        s->t[i] = (int64_t)i * 250000 + (i % 3) * 1000;        /* µs-aligned, irregular */
    }
    s->a[0][7] = NAN; /* a missing value */
    s->a[1][499] = NAN;
}

static void free_signal(signal_t *s)
{
    for (int ch = 0; ch < RT_ANALOG; ch++)
        free(s->a[ch]);
}

static void make_cfg(comtrade_cfg_t *c, int rev, comtrade_ft_t ft, int nrates)
{
    comtrade_cfg_init(c, RT_ANALOG, RT_DIGITAL, nrates ? 1 : 0);
    strcpy(c->station, "GRIDSENSE TEST");
    strcpy(c->rec_dev_id, "T-0042");
    c->rev_year = rev;
    c->ft = ft;
    strcpy(c->analog[0].ch_id, "VA");
    strcpy(c->analog[0].ph, "A");
    strcpy(c->analog[0].uu, "V");
    c->analog[0].ps = 'S';
    c->analog[0].primary = 110000;
    c->analog[0].secondary = 100;
    strcpy(c->analog[1].ch_id, "IA");
    strcpy(c->analog[1].uu, "A");
    c->analog[1].skew = 2.5;
    strcpy(c->analog[2].ch_id, "F");
    strcpy(c->analog[2].uu, "Hz");
    for (int k = 0; k < RT_DIGITAL; k++)
        snprintf(c->digital[k].ch_id, sizeof c->digital[k].ch_id, "DI%02d", k + 1);
    c->digital[3].y = 1;
    if (nrates) {
        c->rates[0].samp = 4000;
        c->rates[0].endsamp = RT_SAMPLES;
        c->endsamp = RT_SAMPLES;
    }
    c->start_ns = 1710510310 * NS + 123456000;
    c->trigger_ns = c->start_ns + 20 * 1000000;
    c->time_code_min = 330;
    c->local_code_min = 330;
    c->tmq_code = 0;
    c->leapsec = 0;
}

static void check_roundtrip(const char *dir, int rev, comtrade_ft_t ft, int nrates, int cff)
{
    static const char *const ftn[] = {"ascii", "binary", "binary32", "float32"};
    comtrade_cfg_t c;
    const comtrade_cfg_t *rc;
    comtrade_data_t d;
    comtrade_rec_t *rec = NULL;
    signal_t s;
    char base[256], path[300], err[256] = "";
    int r;

    make_signal(&s);
    make_cfg(&c, rev, ft, nrates);
    memset(&d, 0, sizeof d);
    d.nsamples = RT_SAMPLES;
    d.analog = (const double *const *)s.a;
    d.digital = s.dig;
    d.time_ns = nrates ? NULL : s.t;
    d.hdr = cff ? "Fault on line 1\r\nphase A to ground\r\n" : NULL;
    d.inf = cff ? "[Public Record_Information]\r\nSource=gridsense\r\n" : NULL;
    snprintf(base, sizeof base, "%s/rt_%d_%s_%d%s", dir, rev, ftn[ft], nrates, cff ? "_cff" : "");
    r = comtrade_write(base, &c, &d, cff ? COMTRADE_WRITE_CFF : 0, err, sizeof err);
    if (r != 0)
        fail_msg("write %s: %s", base, err);
    snprintf(path, sizeof path, "%s.%s", base, cff ? "cff" : "cfg");
    r = comtrade_open(path, &rec, err, sizeof err);
    if (r != 0)
        fail_msg("open %s: %s", path, err);

    rc = comtrade_rec_cfg(rec);
    assert_string_equal(rc->station, "GRIDSENSE TEST");
    assert_int_equal(rc->rev_year, rev);
    assert_int_equal(rc->ft, ft);
    assert_int_equal(rc->nanalog, RT_ANALOG);
    assert_int_equal(rc->ndigital, RT_DIGITAL);
    assert_int_equal(rc->nrates, nrates ? 1 : 0);
    assert_int_equal(rc->endsamp, RT_SAMPLES);
    assert_true(rc->start_ns == c.start_ns && rc->trigger_ns == c.trigger_ns);
    assert_string_equal(rc->analog[0].ch_id, "VA");
    assert_int_equal(rc->analog[0].ps, 'S');
    assert_true(rc->analog[0].primary == 110000 && rc->analog[0].secondary == 100);
    assert_true(rc->analog[1].skew == 2.5);
    assert_string_equal(rc->digital[19].ch_id, "DI20");
    assert_int_equal(rc->digital[3].y, 1);
    if (rev == 2013) {
        assert_int_equal(rc->time_code_min, 330);
        assert_string_equal(rc->time_code, "+5h30");
        assert_int_equal(rc->tmq_code, 0);
    }
    assert_int_equal(comtrade_nsamples(rec), RT_SAMPLES);
    for (size_t i = 0; i < RT_SAMPLES; i++) {
        int64_t want = c.start_ns + (nrates ? (int64_t)i * 250000 : s.t[i]);
        if (comtrade_time_ns(rec, i) != want)
            fail_msg("%s sample %zu: time %lld, want %lld", base, i,
                     (long long)comtrade_time_ns(rec, i), (long long)want);
        assert_int_equal(comtrade_sample_number(rec, i), (int64_t)i + 1);
        for (size_t ch = 0; ch < RT_ANALOG; ch++) {
            double v = comtrade_value(rec, ch, i, COMTRADE_AS_RECORDED), o = s.a[ch][i];
            double tol = ft == COMTRADE_FLOAT32 ? fabs(o) * 1e-7 : rc->analog[ch].a * 0.5000001;
            if (isnan(o)) {
                assert_true(isnan(v));
                continue;
            }
            if (!(fabs(v - o) <= tol + 1e-12))
                fail_msg("%s ch %zu sample %zu: %.9g vs %.9g (tol %g)", base, ch, i, v, o, tol);
        }
        for (size_t ch = 0; ch < RT_DIGITAL; ch++)
            assert_int_equal(comtrade_digital(rec, ch, i),
                             (s.dig[i * RT_WORDS + ch / 16] >> (ch % 16)) & 1);
    }
    if (ft != COMTRADE_FLOAT32) {
        /* the integer range is used and min/max are the raw range */
        double range = ft == COMTRADE_BINARY ? 32767 : ft == COMTRADE_BINARY32 ? 2147483647 : 99998;
        assert_true(rc->analog[1].min == -range && rc->analog[1].max == range);
        assert_true(rc->analog[2].min == 0 && rc->analog[2].max == 0);
        assert_true(comtrade_value(rec, 2, 0, COMTRADE_AS_RECORDED) == 49.98);
    } else {
        assert_true(rc->analog[0].a == 1 && rc->analog[0].b == 0);
    }
    /* VA is recorded on the secondary side (PS = S): primary = value x 110000 / 100 */
    {
        double sec = comtrade_value(rec, 0, 3, COMTRADE_AS_RECORDED);
        assert_true(comtrade_value(rec, 0, 3, COMTRADE_SECONDARY) == sec);
        assert_true(fabs(comtrade_value(rec, 0, 3, COMTRADE_PRIMARY) - sec * 1100) < 1e-6);
    }
    if (cff) {
        size_t n;
        const char *h = comtrade_hdr(rec, &n);
        assert_non_null(h);
        assert_string_equal(h, "Fault on line 1\r\nphase A to ground\r\n");
        assert_true(contains(comtrade_inf(rec, NULL), "Source=gridsense"));
    } else {
        assert_null(comtrade_hdr(rec, NULL));
    }
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);
    free_signal(&s);
}

static void test_roundtrip_formats(void **state)
{
    tmpdir_t *t = *state;
    static const int revs[] = {1999, 2013};

    for (int r = 0; r < 2; r++) {
        for (int ft = COMTRADE_ASCII; ft <= COMTRADE_FLOAT32; ft++) {
            check_roundtrip(t->dir, revs[r], (comtrade_ft_t)ft, 1, 0);
            check_roundtrip(t->dir, revs[r], (comtrade_ft_t)ft, 0, 0);
        }
    }
}

static void test_roundtrip_cff(void **state)
{
    tmpdir_t *t = *state;

    for (int ft = COMTRADE_ASCII; ft <= COMTRADE_FLOAT32; ft++) {
        check_roundtrip(t->dir, 2013, (comtrade_ft_t)ft, 1, 1);
        check_roundtrip(t->dir, 2013, (comtrade_ft_t)ft, 0, 1);
    }
}

/* The written files follow the standard's layout byte for byte where it is fixed. */
static void test_written_layout(void **state)
{
    tmpdir_t *t = *state;
    comtrade_cfg_t c;
    comtrade_data_t d;
    double v0[4] = {-100, 300, NAN, 100};
    const double *a[1] = {v0};
    uint16_t dig[4] = {1, 0, 1, 0};
    char base[128], path[160], err[256];
    uint8_t *dat;
    char *cfg;
    size_t n;

    (void)state;
    comtrade_cfg_init(&c, 1, 1, 1);
    strcpy(c.station, "ST");
    strcpy(c.rec_dev_id, "DEV");
    strcpy(c.analog[0].ch_id, "IA");
    strcpy(c.analog[0].uu, "A");
    strcpy(c.digital[0].ch_id, "TRIP");
    c.rates[0].samp = 1000;
    c.rates[0].endsamp = 4;
    c.endsamp = 4;
    c.start_ns = 1767323045 * NS + 5000;
    c.trigger_ns = c.start_ns;
    c.rev_year = 1999;
    memset(&d, 0, sizeof d);
    d.nsamples = 4;
    d.analog = a;
    d.digital = dig;
    snprintf(base, sizeof base, "%s/layout", t->dir);
    assert_int_equal(comtrade_write(base, &c, &d, 0, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s.cfg", base);
    cfg = read_text(path, NULL);
    assert_string_equal(cfg, "ST,DEV,1999\r\n"
                             "2,1A,1D\r\n"
                             "1,IA,,,A,0.0061037018951994385,100,0,-32767,32767,1,1,P\r\n"
                             "1,TRIP,,,0\r\n"
                             "50\r\n"
                             "1\r\n"
                             "1000,4\r\n"
                             "02/01/2026,03:04:05.000005\r\n"
                             "02/01/2026,03:04:05.000005\r\n"
                             "BINARY\r\n"
                             "1\r\n");
    free(cfg);
    snprintf(path, sizeof path, "%s.dat", base);
    dat = (uint8_t *)read_text(path, &n);
    assert_int_equal(n, 4 * 12);
    /* sample 2: n = 2, timestamp 1000 µs, x = +32767, digital word 0 */
    {
        static const uint8_t s2[12] = {2, 0, 0, 0, 0xe8, 3, 0, 0, 0xff, 0x7f, 0, 0};
        static const uint8_t s3[12] = {3, 0, 0, 0, 0xd0, 7, 0, 0, 0x00, 0x80, 1, 0};
        assert_memory_equal(dat + 12, s2, 12);
        assert_memory_equal(dat + 24, s3, 12); /* missing value 0x8000 */
    }
    free(dat);

    /* ASCII 1999 writes 99999 for missing values, 2013 an empty field */
    c.ft = COMTRADE_ASCII;
    assert_int_equal(comtrade_write(base, &c, &d, 0, err, sizeof err), 0);
    cfg = read_text(path, NULL);
    assert_string_equal(cfg, "1,0,-99998,1\r\n2,1000,99998,0\r\n3,2000,99999,1\r\n4,3000,0,0\r\n");
    free(cfg);
    c.rev_year = 2013;
    assert_int_equal(comtrade_write(base, &c, &d, 0, err, sizeof err), 0);
    cfg = read_text(path, NULL);
    assert_true(contains(cfg, "\r\n3,2000,,1\r\n"));
    free(cfg);
    snprintf(path, sizeof path, "%s.cfg", base);
    cfg = read_text(path, NULL);
    assert_true(contains(cfg, "\r\nASCII\r\n1\r\n0,0\r\nF,3\r\n"));
    free(cfg);
    comtrade_cfg_free(&c);
}

/* ---- Truncated and surplus data -------------------------------------------------------------- */

static void test_truncated_dat(void **state)
{
    tmpdir_t *t = *state;
    comtrade_cfg_t c;
    comtrade_data_t d;
    comtrade_rec_t *rec = NULL;
    signal_t s;
    char base[128], path[160], err[256];
    size_t n;
    char *text;

    make_signal(&s);
    make_cfg(&c, 2013, COMTRADE_BINARY, 1);
    memset(&d, 0, sizeof d);
    d.nsamples = RT_SAMPLES;
    d.analog = (const double *const *)s.a;
    d.digital = s.dig;
    snprintf(base, sizeof base, "%s/trunc", t->dir);
    assert_int_equal(comtrade_write(base, &c, &d, 0, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s.dat", base);
    /* 3 bytes short: sample 500 is incomplete */
    assert_int_equal(truncate(path, RT_SAMPLES * 18 - 3), 0);
    snprintf(path, sizeof path, "%s.cfg", base);
    assert_int_equal(comtrade_open(path, &rec, err, sizeof err), GS_ETRUNC);
    assert_null(rec);
    assert_true(contains(err, "sample 500 incomplete"));
    assert_true(contains(err, "trunc.dat"));

    /* a whole sample too many */
    snprintf(path, sizeof path, "%s.dat", base);
    assert_int_equal(truncate(path, (RT_SAMPLES + 1) * 18), 0);
    snprintf(path, sizeof path, "%s.cfg", base);
    assert_int_equal(comtrade_open(path, &rec, err, sizeof err), GS_EPROTO);
    assert_true(contains(err, "18 bytes after the 500 samples"));

    /* ASCII: the last line missing */
    c.ft = COMTRADE_ASCII;
    assert_int_equal(comtrade_write(base, &c, &d, 0, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s.dat", base);
    text = read_text(path, &n);
    n -= 2;
    while (n > 0 && text[n - 1] != '\n')
        n--;
    write_bytes(path, text, n);
    free(text);
    snprintf(path, sizeof path, "%s.cfg", base);
    assert_int_equal(comtrade_open(path, &rec, err, sizeof err), GS_ETRUNC);
    assert_true(contains(err, "sample 500 missing"));

    /* no data file at all */
    snprintf(path, sizeof path, "%s.dat", base);
    unlink(path);
    snprintf(path, sizeof path, "%s.cfg", base);
    assert_int_equal(comtrade_open(path, &rec, err, sizeof err), -ENOENT);
    assert_true(contains(err, "no data file"));
    comtrade_cfg_free(&c);
    free_signal(&s);
}

/* An upper-case .DAT next to a .cfg is found; the file name may be upper-case too. */
static void test_open_upper_case(void **state)
{
    tmpdir_t *t = *state;
    const char *cfg = "S,D,1999\r\n1,1A,0D\r\n1,V,,,V,2,1,0,-10,10,1,1,P\r\n50\r\n1\r\n1000,2\r\n"
                      "02/01/2026,03:04:05.000000\r\n02/01/2026,03:04:05.000000\r\nASCII\r\n1\r\n";
    const char *dat = "1,0,5\r\n2,1000,-3\r\n\x1a";
    char path[160], err[256];
    comtrade_rec_t *rec = NULL;

    snprintf(path, sizeof path, "%s/UP.DAT", t->dir);
    write_bytes(path, dat, strlen(dat));
    snprintf(path, sizeof path, "%s/UP.cfg", t->dir);
    write_bytes(path, cfg, strlen(cfg));
    if (comtrade_open(path, &rec, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED) == 11);
    assert_true(comtrade_value(rec, 0, 1, COMTRADE_AS_RECORDED) == -5);
    comtrade_rec_free(rec);

    snprintf(path, sizeof path, "%s/UP.txt", t->dir);
    write_bytes(path, cfg, strlen(cfg));
    assert_int_equal(comtrade_open(path, &rec, err, sizeof err), GS_EINVAL);
}

/* ---- Missing values ------------------------------------------------------------------------- */

static void test_missing_values(void **state)
{
    const char *cfg16 =
        "S,D,2013\n2,1A,1D\n1,V,,,V,0.5,1,0,-32767,32767,1,1,P\n1,B,,,0\n50\n0\n0,2\n"
        "02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\nBINARY\n1\n";
    const uint8_t dat16[2 * 12] = {1, 0, 0, 0, 0,    0,    0,    0,    0x00, 0x80, 1, 0,
                                   2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0, 0};
    const char *cfg32 = "S,D,2013\n1,1A,0D\n1,V,,,V,1,0,0,-1,1,1,1,P\n50\n1\n100,2\n"
                        "02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\nBINARY32\n1\n";
    const uint8_t dat32[2 * 12] = {1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x80,
                                   2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    const char *cfg99 = "S,D,1999\n1,1A,0D\n1,V,,,V,1,0,0,-1,1,1,1,P\n50\n1\n100,3\n"
                        "02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\nASCII\n1\n";
    const char *dat99 = "1,0,99999\n2,0,\n3,0,-7\n";
    comtrade_cfg_t c;
    comtrade_rec_t *rec;

    (void)state;
    parse_ok(cfg16, &c);
    rec = dat_ok(&c, (const char *)dat16, sizeof dat16);
    assert_true(isnan(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED)));
    assert_true(comtrade_value(rec, 0, 1, COMTRADE_AS_RECORDED) == 0); /* 0.5 * -2 + 1 */
    assert_true(comtrade_time_ns(rec, 0) == 1767323045 * NS);
    assert_true(comtrade_time_ns(rec, 1) == COMTRADE_TIME_NONE); /* 0xFFFFFFFF */
    assert_int_equal(comtrade_digital(rec, 0, 0), 1);
    assert_int_equal(comtrade_digital(rec, 0, 1), 0);
    assert_int_equal(comtrade_digital(rec, 1, 0), GS_EINVAL);
    assert_true(isnan(comtrade_value(rec, 1, 0, COMTRADE_AS_RECORDED)));
    assert_true(isnan(comtrade_value(rec, 0, 2, COMTRADE_AS_RECORDED)));
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);

    parse_ok(cfg32, &c);
    rec = dat_ok(&c, (const char *)dat32, sizeof dat32);
    assert_true(isnan(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED)));
    assert_true(comtrade_value(rec, 0, 1, COMTRADE_AS_RECORDED) == -1);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);

    parse_ok(cfg99, &c);
    rec = dat_ok(&c, dat99, strlen(dat99));
    assert_true(isnan(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED))); /* 1999: 99999 */
    assert_true(isnan(comtrade_value(rec, 0, 1, COMTRADE_AS_RECORDED))); /* empty */
    assert_true(comtrade_value(rec, 0, 2, COMTRADE_AS_RECORDED) == -7);
    comtrade_rec_free(rec);
    /* 2013: 99999 is an ordinary value */
    c.rev_year = 2013;
    rec = dat_ok(&c, dat99, strlen(dat99));
    assert_true(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED) == 99999);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);
}

/* ---- Primary / secondary ----------------------------------------------------------------------
 */

static void test_primary_secondary(void **state)
{
    const char *cfg = "S,D,2013\n3,3A,0D\n"
                      "1,VA,A,,kV,0.01,0,0,-32767,32767,132,0.11,S\n"
                      "2,IA,A,,A,1,0,0,-32767,32767,600,5,P\n"
                      "3,X,,,A,1,0,0,-32767,32767,0,5,S\n"
                      "50\n1\n1000,2\n02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\n"
                      "ASCII\n1\n0,0\n0,0\n";
    const char *dat = "1,0,10000,300,1\n2,1000,-5000,-60,2\n";
    comtrade_cfg_t c;
    comtrade_rec_t *rec;
    double out[2];

    (void)state;
    parse_ok(cfg, &c);
    rec = dat_ok(&c, dat, strlen(dat));
    /* VA recorded as secondary: 100 (kV, secondary side) -> primary x 132/0.11 */
    assert_true(fabs(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED) - 100) < 1e-9);
    assert_true(fabs(comtrade_value(rec, 0, 0, COMTRADE_SECONDARY) - 100) < 1e-9);
    assert_true(fabs(comtrade_value(rec, 0, 0, COMTRADE_PRIMARY) - 120000) < 1e-6);
    /* IA recorded as primary: 300 A -> secondary x 5/600 */
    assert_true(fabs(comtrade_value(rec, 1, 0, COMTRADE_SECONDARY) - 2.5) < 1e-12);
    assert_true(comtrade_value(rec, 1, 0, COMTRADE_PRIMARY) == 300);
    assert_int_equal(comtrade_values(rec, 1, COMTRADE_SECONDARY, 0, 2, out), 0);
    assert_true(fabs(out[0] - 2.5) < 1e-12 && fabs(out[1] + 0.5) < 1e-12);
    assert_int_equal(comtrade_values(rec, 0, COMTRADE_PRIMARY, 1, 1, out), 0);
    assert_true(fabs(out[0] + 60000) < 1e-6);
    /* a zero factor cannot be converted */
    assert_true(isnan(comtrade_value(rec, 2, 0, COMTRADE_PRIMARY)));
    assert_int_equal(comtrade_values(rec, 2, COMTRADE_PRIMARY, 0, 2, out), GS_EINVAL);
    assert_true(comtrade_value(rec, 2, 0, COMTRADE_SECONDARY) == 1);
    /* ranges */
    assert_int_equal(comtrade_values(rec, 0, COMTRADE_PRIMARY, 1, 2, out), GS_EINVAL);
    assert_int_equal(comtrade_values(rec, 3, COMTRADE_PRIMARY, 0, 1, out), GS_EINVAL);
    comtrade_rec_free(rec);
    comtrade_cfg_free(&c);
}

/* ---- ASCII data errors, .cff parsing
 * ------------------------------------------------------------- */

static void test_dat_errors(void **state)
{
    const char *cfg = "S,D,1999\n2,1A,1D\n1,V,,,V,1,0,0,-9,9,1,1,P\n1,B,,,0\n50\n1\n100,2\n"
                      "02/01/2026,03:04:05.000000\n02/01/2026,03:04:05.000000\nASCII\n1\n";
    static const struct {
        const char *dat;
        int code;
        const char *msg;
    } cases[] = {
        {"1,0,1,0\n2,10,x,1\n", GS_EPROTO, "dat line 2: field 3 (A1): not a number: 'x'"},
        {"1,0,1,0\n2,10,1,2\n", GS_EPROTO, "dat line 2: field 4 (D1): expected 0 or 1: '2'"},
        {"1,0,1,0\n2,10,1\n", GS_EPROTO, "dat line 2 (sample 2): too few fields, expected 4"},
        {"1,0,1,0\n2,10,1,1,5\n", GS_EPROTO, "dat line 2 (sample 2): too many fields"},
        {"1,0,1,0\nx,10,1,1\n", GS_EPROTO, "dat line 2: field 1 (n): not a sample number: 'x'"},
        {"1,0,1,0\n2,-1,1,1\n", GS_EPROTO, "dat line 2: field 2 (timestamp): not a timestamp"},
        {"1,0,1,0\n", GS_ETRUNC, "sample 2 missing"},
        {"1,0,1,0\n2,1,1,1\n3,2,1,1\n", GS_EPROTO, "dat line 3: more samples than the 2"},
    };
    comtrade_cfg_t c;
    comtrade_rec_t *rec;
    char err[256];

    (void)state;
    parse_ok(cfg, &c);
    rec = dat_ok(&c, "1,0,1,0,\n\n2,10,1,1\r\n", 20); /* trailing comma, blank line, CRLF */
    assert_int_equal(comtrade_nsamples(rec), 2);
    comtrade_rec_free(rec);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = comtrade_dat_parse(&c, (const uint8_t *)cases[i].dat, strlen(cases[i].dat), &rec,
                                    err, sizeof err);
        if (rc != cases[i].code || !contains(err, cases[i].msg))
            fail_msg("case %zu: rc %d, err \"%s\", want \"%s\"", i, rc, err, cases[i].msg);
        assert_null(rec);
    }
    comtrade_cfg_free(&c);
}

static void test_cff_parse(void **state)
{
    const char *ascii = "--- file type: CFG ---\n"
                        "SMARTSTATION,IED123,2013\n"
                        "2,1A,1D\n"
                        "1,IA ,,Line123, A,0.1,0.05,0,-32768,32767,933,1,s\n"
                        "1,51A,,Line123,0\n"
                        "60\n1\n1200,3\n"
                        "12/01/2011,05:55:30.075011\n12/01/2011,05:55:30.078261\n"
                        "ASCII\n1\n-5h30,-5h30\nB,3\n"
                        "--- file type: INF ---\n"
                        "--- file type: HDR ---\n"
                        "relay trip\n"
                        "--- file type: DAT ASCII ---\n"
                        "1,72500,-83,0\n2,73333,-15,1\n3,74167,55,1\n";
    uint8_t bin[512];
    const char *head =
        "--- File Type: CFG ---\r\n"
        "S,D,2013\r\n1,1A,0D\r\n1,V,,,V,1,0,0,-1,1,1,1,P\r\n50\r\n1\r\n100,2\r\n"
        "02/01/2026,03:04:05.000000\r\n02/01/2026,03:04:05.000000\r\nFLOAT32\r\n1\r\n"
        "0,0\r\n0,0\r\n"
        "--- file type: DAT BINARY: 24 ---\r\n";
    const uint8_t samples[24] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0x3f,
                                 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0xc1};
    comtrade_rec_t *rec = NULL;
    char err[256];
    size_t n = strlen(head), hl;

    (void)state;
    if (comtrade_cff_parse((const uint8_t *)ascii, strlen(ascii), &rec, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(comtrade_nsamples(rec), 3);
    assert_true(fabs(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED) - (-8.25)) < 1e-12);
    assert_int_equal(comtrade_digital(rec, 0, 1), 1);
    assert_string_equal(comtrade_hdr(rec, &hl), "relay trip\n");
    assert_int_equal(hl, 11);
    assert_string_equal(comtrade_inf(rec, NULL), "");
    comtrade_rec_free(rec);

    memcpy(bin, head, n);
    memcpy(bin + n, samples, sizeof samples);
    memcpy(bin + n + sizeof samples, "\r\n", 2);
    if (comtrade_cff_parse(bin, n + sizeof samples + 2, &rec, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(comtrade_value(rec, 0, 0, COMTRADE_AS_RECORDED) == 1.5);
    assert_true(comtrade_value(rec, 0, 1, COMTRADE_AS_RECORDED) == -10);
    assert_null(comtrade_hdr(rec, NULL));
    comtrade_rec_free(rec);

    /* the DAT section declares more bytes than follow */
    assert_int_equal(comtrade_cff_parse(bin, n + 20, &rec, err, sizeof err), GS_ETRUNC);
    assert_true(contains(err, "DAT section declares 24 bytes but 20 follow"));
    /* cfg errors carry the line number in the .cff */
    {
        char bad[1024];
        snprintf(bad, sizeof bad, "%s", ascii);
        memcpy(strstr(bad, "0.1,"), "0.x,", 4);
        assert_int_equal(
            comtrade_cff_parse((const uint8_t *)bad, strlen(bad), &rec, err, sizeof err),
            GS_EPROTO);
        assert_true(contains(err, "line 4: field 6 (a): not a number: '0.x'"));
    }
    assert_int_equal(comtrade_cff_parse((const uint8_t *)"hello\n", 6, &rec, err, sizeof err),
                     GS_EPROTO);
    assert_true(contains(err, "line 1: text outside a .cff section"));
    assert_int_equal(
        comtrade_cff_parse((const uint8_t *)"--- file type: CFG\n", 19, &rec, err, sizeof err),
        GS_EPROTO);
    assert_true(contains(err, "line 1: malformed section header"));
}

/* Writer argument checks. */
static void test_encode_errors(void **state)
{
    comtrade_cfg_t c;
    comtrade_data_t d;
    double v[2] = {1, INFINITY};
    const double *a[1] = {v};
    int64_t t[2] = {0, -1000};
    buf_t cb = {0}, db = {0};
    char err[256];

    (void)state;
    comtrade_cfg_init(&c, 1, 0, 0);
    c.start_ns = 1767323045 * NS;
    c.trigger_ns = c.start_ns;
    memset(&d, 0, sizeof d);
    d.nsamples = 2;
    d.analog = a;
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), GS_EINVAL);
    assert_true(contains(err, "no sample times"));
    d.time_ns = t;
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), GS_EINVAL);
    assert_true(contains(err, "analog channel 1 sample 2: value not representable"));
    v[1] = 2;
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), GS_EINVAL);
    assert_true(contains(err, "sample 2: time -1000 ns"));
    t[1] = 1000;
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), 0);
    c.timemult = 1e-6; /* 1000 ns is 1e6 timestamp units: fine; 1e-9 would overflow 32 bits */
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), 0);
    t[1] = 5 * NS;
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), GS_EINVAL);
    assert_true(contains(err, "adjust timemult"));
    c.start_ns = -3000000000 * NS; /* 1874 */
    assert_int_equal(comtrade_encode(&c, &d, 0, &cb, &db, err, sizeof err), GS_EINVAL);
    assert_true(contains(err, "outside 1900..2261"));
    buf_free(&cb);
    buf_free(&db);
    comtrade_cfg_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_1999),
        cmocka_unit_test(test_parse_1991),
        cmocka_unit_test(test_parse_2013),
        cmocka_unit_test(test_timestamps_nrates0),
        cmocka_unit_test(test_multiple_rates),
        cmocka_unit_test(test_cfg_errors),
        cmocka_unit_test(test_cfg_format),
        cmocka_unit_test_setup_teardown(test_roundtrip_formats, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_roundtrip_cff, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_written_layout, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_truncated_dat, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_upper_case, setup_dir, teardown_dir),
        cmocka_unit_test(test_missing_values),
        cmocka_unit_test(test_primary_secondary),
        cmocka_unit_test(test_dat_errors),
        cmocka_unit_test(test_cff_parse),
        cmocka_unit_test(test_encode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
