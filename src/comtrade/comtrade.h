/* COMTRADE (IEEE C37.111-1991/1999/2013, IEC 60255-24:2013) reader and writer.
 *
 * A record is a configuration (.cfg text) plus sample data (.dat, ASCII or binary), either as a
 * FILE.cfg + FILE.dat pair or as one 2013 FILE.cff holding CFG, INF, HDR and DAT sections.
 * The parsers are pure functions over bytes (comtrade_cfg_parse, comtrade_dat_parse,
 * comtrade_cff_parse); comtrade_open and comtrade_write add the file I/O. Every function returns
 * 0 or a negative GS_E* code (core/err.h) or -errno, and on failure writes one line of detail
 * into the caller's err buffer (naming the line and field for malformed input). All functions are
 * reentrant; a cfg or record belongs to one thread at a time.
 *
 * Times are int64 nanoseconds since the Unix epoch. The date fields of the .cfg are converted as
 * if they were UTC; for 2013 files the true UTC instant is that value minus time_code_min minutes
 * (C37.111-2013 clause 7.4.11). The years that fit are 1900..2261.
 */
#ifndef GS_COMTRADE_COMTRADE_H
#define GS_COMTRADE_COMTRADE_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define COMTRADE_MAX_CHANNELS 4096 /* analog + digital channels in one cfg */
#define COMTRADE_MAX_RATES    256  /* sample-rate lines */
#define COMTRADE_MAX_LINE     4096 /* bytes in one cfg line */
#define COMTRADE_NAME_MAX     128  /* bytes of a text field (2013 allows 64; we are tolerant) */
#define COMTRADE_MAX_CFG      (16u << 20)       /* bytes of a .cfg/.hdr/.inf file */
#define COMTRADE_MAX_DAT      ((size_t)1 << 30) /* bytes of a .dat file or .cff */
#define COMTRADE_MAX_VALUES                                                                        \
    ((size_t)1 << 27)                /* decoded doubles/int64s in one record:                      \
                                       samples x (analog channels + 2) */
#define COMTRADE_TIME_NONE INT64_MIN /* sample time unknown (missing .dat timestamp) */

/* Data file type (the cfg "ft" line). */
typedef enum {
    COMTRADE_ASCII,    /* text, one sample per line */
    COMTRADE_BINARY,   /* int16 analogs */
    COMTRADE_BINARY32, /* int32 analogs (2013) */
    COMTRADE_FLOAT32,  /* IEEE 754 float32 analogs (2013) */
} comtrade_ft_t;

/* Value conversions for comtrade_value()/comtrade_values(). */
enum {
    COMTRADE_AS_RECORDED = 0, /* a*x+b in the channel's unit, primary or secondary as PS says */
    COMTRADE_PRIMARY = 1,     /* converted to the primary side (x primary/secondary if PS=S) */
    COMTRADE_SECONDARY = 2,   /* converted to the secondary side (x secondary/primary if PS=P) */
};

/* Flags for comtrade_write()/comtrade_encode(). */
enum {
    COMTRADE_WRITE_CFF = 1, /* one BASE.cff (2013 layout) instead of BASE.cfg + BASE.dat */
};

typedef struct {
    int index;                         /* An, as written (1-based) */
    char ch_id[COMTRADE_NAME_MAX + 1]; /* channel identifier */
    char ph[COMTRADE_NAME_MAX + 1];    /* phase identifier */
    char ccbm[COMTRADE_NAME_MAX + 1];  /* circuit component being monitored */
    char uu[COMTRADE_NAME_MAX + 1];    /* unit ("kV", "A") */
    double a, b;                       /* value = a*x + b */
    double skew;                       /* µs, channel time skew (not applied by the reader) */
    double min, max;                   /* range of the raw values x in the .dat */
    double primary, secondary;         /* transformer ratio factors (1991: 1, 1) */
    char ps;                           /* 'P' or 'S': which side a*x+b is on (1991: 'P') */
} comtrade_analog_t;

typedef struct {
    int index; /* Dn, as written (1-based) */
    char ch_id[COMTRADE_NAME_MAX + 1];
    char ph[COMTRADE_NAME_MAX + 1];
    char ccbm[COMTRADE_NAME_MAX + 1];
    int y; /* normal state, 0 or 1 */
} comtrade_digital_t;

typedef struct {
    double samp;     /* samples per second (> 0) */
    int64_t endsamp; /* number of the last sample at this rate */
} comtrade_rate_t;

typedef struct {
    char station[COMTRADE_NAME_MAX + 1];
    char rec_dev_id[COMTRADE_NAME_MAX + 1];
    int rev_year; /* 1991, 1999 or 2013 */
    size_t nanalog, ndigital;
    comtrade_analog_t *analog;   /* malloc'd, nanalog entries */
    comtrade_digital_t *digital; /* malloc'd, ndigital entries */
    double lf;                   /* nominal line frequency, Hz (0 = not given) */
    size_t nrates;               /* 0: no fixed rate, sample times come from .dat timestamps */
    comtrade_rate_t *rates;      /* malloc'd, nrates entries */
    int64_t endsamp;             /* last sample number (rates[nrates-1].endsamp, or the "0,N"
                                    line when nrates == 0; 0 = not given) */
    int64_t start_ns;            /* time of the first sample */
    int64_t trigger_ns;          /* trigger time */
    int nanosec;                 /* 1: dates carry 9 fractional digits and .dat timestamps are in
                                    ns; 0: 6 digits and µs */
    comtrade_ft_t ft;
    double timemult;     /* .dat timestamp multiplier (> 0; 1991 files: 1) */
    char time_code[16];  /* 2013 raw text ("-4", "+5h30"); "" if absent */
    char local_code[16]; /* 2013 raw text, "x" = not used; "" if absent */
    int time_code_min;   /* time_code as minutes east of UTC */
    int local_code_min;  /* local_code as minutes (0 when "x" or absent) */
    int tmq_code;        /* 2013 time quality 0..15 (IEEE C37.118), -1 if absent */
    int leapsec;         /* 2013 leap second indicator 0..3, -1 if absent */
} comtrade_cfg_t;

/* Data to write: see comtrade_write(). */
typedef struct {
    size_t nsamples;
    const double *const *analog; /* [nanalog][nsamples] in each channel's unit as recorded (the
                                    side its PS names); NAN = missing value */
    const uint16_t *digital;     /* [nsamples][(ndigital+15)/16], bit j of word k = digital
                                    channel 16k+j; NULL = all zero */
    const int64_t *time_ns;      /* [nsamples] ns after cfg->start_ns (COMTRADE_TIME_NONE =
                                    missing); required when cfg->nrates == 0, else NULL = times
                                    from the rate table */
    const char *hdr, *inf;       /* optional header/information text (NULL = none) */
} comtrade_data_t;

/* An opened record: the cfg plus decoded samples. Opaque; see the accessors below. */
typedef struct comtrade_rec comtrade_rec_t;

/* Initialises *cfg for building a record to write: zeroes it, allocates nanalog/ndigital channel
 * entries (indices 1..n, primary = secondary = 1, ps 'P', a = 1) and nrates rate entries, and
 * sets rev_year 2013, ft BINARY, timemult 1, lf 50, time codes 0, tmq_code and leapsec -1.
 * Counts are the caller's (trusted). Release with comtrade_cfg_free(). */
void comtrade_cfg_init(comtrade_cfg_t *cfg, size_t nanalog, size_t ndigital, size_t nrates);

/* Frees the arrays of *cfg and zeroes it; a zeroed cfg is a no-op. */
void comtrade_cfg_free(comtrade_cfg_t *cfg);

/* Parses .cfg text (len bytes, need not be NUL-terminated) of any revision into *out, which the
 * caller must free with comtrade_cfg_free() after success; on failure *out is left zeroed.
 * Accepts LF or CRLF, trailing blanks, a UTF-8 BOM, and empty non-critical fields (defaults:
 * skew/min/max 0, primary/secondary 1, PS 'P', y 0, lf 0, timemult 1); the 2013 time_code and
 * tmq lines may be absent. Returns 0, GS_EPROTO for malformed text ("line 4: field 6 (a): not a
 * number: 'x'"), or GS_ELIMIT beyond COMTRADE_MAX_* limits. Never reads outside text[0..len). */
int comtrade_cfg_parse(const char *text, size_t len, comtrade_cfg_t *out, char *err, size_t errlen);

/* Appends the .cfg text of *cfg to *out in the layout of cfg->rev_year (1991: mm/dd/yyyy dates,
 * no revision field, 10-field analog and 3-field digital lines, timemult line only if != 1;
 * 2013: time_code and tmq lines), comma separated with CRLF line ends. Numbers are written in
 * the shortest form that reads back exactly. Returns 0, or GS_EINVAL (out untouched) if a text
 * field holds a comma or control character, counts or values are out of range, or the rate
 * table is inconsistent. */
int comtrade_cfg_format(const comtrade_cfg_t *cfg, buf_t *out, char *err, size_t errlen);

/* Decodes the .dat bytes dat[0..len) described by *cfg into a new record (*out, free with
 * comtrade_rec_free; the record holds its own copy of cfg). The number of samples is
 * cfg->endsamp; if that is 0 it is taken from the data. Returns 0, GS_EINVAL if cfg does not
 * validate (see comtrade_cfg_format), GS_ETRUNC when the data
 * ends before the declared samples (naming the first incomplete sample), GS_EPROTO for
 * malformed ASCII lines or surplus data, GS_ERANGE for sample times outside int64 ns, or
 * GS_ELIMIT beyond COMTRADE_MAX_DAT / COMTRADE_MAX_VALUES. */
int comtrade_dat_parse(const comtrade_cfg_t *cfg, const uint8_t *dat, size_t len,
                       comtrade_rec_t **out, char *err, size_t errlen);

/* Parses a whole 2013 .cff image (sections "--- file type: CFG ---", "INF", "HDR", "DAT ASCII"
 * or "DAT BINARY: <nbytes>", any order, INF/HDR optional) into a new record. Returns as
 * comtrade_cfg_parse/comtrade_dat_parse; cfg line numbers count from the start of the file. */
int comtrade_cff_parse(const uint8_t *data, size_t len, comtrade_rec_t **out, char *err,
                       size_t errlen);

/* Opens a record from disk: a .cff (recognised by its first line), or a .cfg whose data is the
 * file with the same base name and extension .dat or .DAT (and .hdr/.inf if present). Returns 0
 * with *out set, -errno for I/O failures, or the parse errors above. */
int comtrade_open(const char *cfg_path, comtrade_rec_t **out, char *err, size_t errlen);

/* Frees a record; NULL is a no-op. */
void comtrade_rec_free(comtrade_rec_t *rec);

/* The record's configuration (owned by rec; the analog a, b, min, max are as read). */
const comtrade_cfg_t *comtrade_rec_cfg(const comtrade_rec_t *rec);

/* Number of samples in the record. */
size_t comtrade_nsamples(const comtrade_rec_t *rec);

/* Sample number n of sample i (0-based position) as written in the .dat; -1 if i is out of
 * range. */
int64_t comtrade_sample_number(const comtrade_rec_t *rec, size_t i);

/* Time of sample i in ns since the epoch: start_ns plus the offset from the rate table (sample
 * at position k of rate segment r is 1/samp_r after position k-1; the first sample is at
 * start_ns), or, when nrates == 0, start_ns + timestamp * timemult µs (ns if cfg->nanosec).
 * COMTRADE_TIME_NONE if the timestamp is missing or i is out of range. */
int64_t comtrade_time_ns(const comtrade_rec_t *rec, size_t i);

/* Value of analog channel ch (0-based) at sample i: a*x+b, converted per mode
 * (COMTRADE_AS_RECORDED/PRIMARY/SECONDARY). NAN for a missing value, an out-of-range index, or a
 * conversion that needs a zero primary/secondary factor. */
double comtrade_value(const comtrade_rec_t *rec, size_t ch, size_t i, int mode);

/* Fills out[0..n) with comtrade_value(rec, ch, first + k, mode). Returns 0, or GS_EINVAL if the
 * channel or range is out of bounds or the conversion needs a zero factor (out untouched). */
int comtrade_values(const comtrade_rec_t *rec, size_t ch, int mode, size_t first, size_t n,
                    double *out);

/* State (0 or 1) of digital channel ch (0-based) at sample i; GS_EINVAL if out of range. */
int comtrade_digital(const comtrade_rec_t *rec, size_t ch, size_t i);

/* Header / information text of the record (from a .cff or .hdr/.inf files) and its length;
 * NULL (and *len 0) if none. Owned by rec, NUL-terminated. len may be NULL. */
const char *comtrade_hdr(const comtrade_rec_t *rec, size_t *len);
const char *comtrade_inf(const comtrade_rec_t *rec, size_t *len);

/* Encodes a record in memory: appends the .cfg text to *cfg_out and the .dat bytes to *dat_out,
 * or with COMTRADE_WRITE_CFF the whole .cff to *cfg_out (dat_out unused, may be NULL). Format
 * and layout follow cfg->ft and cfg->rev_year. The given a, b, min, max are ignored: for
 * integer formats each channel gets b = mid-range and a = half-range / R of its finite data (R =
 * 32767 for BINARY, 2^31-1 for BINARY32, 99998 for ASCII), min/max the raw range written;
 * FLOAT32 uses a = 1, b = 0. When cfg->nrates == 0 the .dat timestamps are data->time_ns /
 * (timemult * 1000) (or / timemult if cfg->nanosec), and cfg->endsamp is taken as nsamples;
 * otherwise the last rate's endsamp must equal nsamples and timestamps follow the rate table.
 * BINARY32 and FLOAT32 are 2013 file types: with rev_year 1999 they are written (and read back
 * here) but strict 1999 readers will refuse them. Returns 0, or GS_EINVAL (with detail) for
 * inconsistent input, infinite values or timestamps that do not fit the format. */
int comtrade_encode(const comtrade_cfg_t *cfg, const comtrade_data_t *data, unsigned flags,
                    buf_t *cfg_out, buf_t *dat_out, char *err, size_t errlen);

/* Writes a record as base_path + ".cfg" and ".dat" (plus ".hdr"/".inf" if data gives them), or
 * base_path + ".cff" with COMTRADE_WRITE_CFF, via comtrade_encode(). Files are written to a
 * temporary name and renamed into place. Returns 0, -errno for I/O failures, or as
 * comtrade_encode. */
int comtrade_write(const char *base_path, const comtrade_cfg_t *cfg, const comtrade_data_t *data,
                   unsigned flags, char *err, size_t errlen);

/* ---- Streaming .dat writer (stream.c) ----
 * For records too long to hold in memory (gridsense export): the caller writes the .dat one
 * sample record at a time with the values already in the form the file stores (raw x of
 * x·a + b; the caller chooses a and b), and formats the .cfg with comtrade_cfg_format once it
 * knows the sample count, rates and min/max. No allocation. */

/* Bytes of one binary .dat record of cfg (sample number, timestamp, analog values, digital
 * status words); 0 for COMTRADE_ASCII, whose records vary in length. */
size_t comtrade_dat_record_bytes(const comtrade_cfg_t *cfg);

/* Appends sample record n (1-based) to dat in cfg->ft: ts is the timestamp in units of
 * timemult (µs, or ns if cfg->nanosec), < 0 = missing (binary 0xFFFFFFFF, ASCII empty); for the
 * integer formats x[0..nanalog) are the raw values, COMTRADE_X_MISSING for a missing one (the
 * caller keeps them in range: BINARY -32767..32767, BINARY32 -2^31+1..2^31-1, ASCII 1999
 * -99999..99998); for FLOAT32 xf[0..nanalog) (NaN = missing). No digital channels are written
 * (cfg->ndigital must be 0). Returns 0, or GS_EINVAL for a value or number out of range. */
#define COMTRADE_X_MISSING INT64_MIN
int comtrade_dat_put(const comtrade_cfg_t *cfg, buf_t *dat, uint64_t n, int64_t ts,
                     const int64_t *x, const float *xf);

/* The .cff section header line ("--- file type: CFG ---\r\n", "--- file type: DAT BINARY: 123
 * ---\r\n") for name CFG, INF, HDR or DAT; dat_bytes is used for a binary DAT section. */
void comtrade_cff_section(buf_t *out, const char *name, comtrade_ft_t ft, uint64_t dat_bytes);

#endif
