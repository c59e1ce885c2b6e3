/* export — stored data out as files: a range of a terminal's stored waveform as a COMTRADE
 * record (IEEE C37.111-1999 / -2013, IEC 60255-24:2013) or as CSV, and its aggregated
 * measurements as CSV. Used by `gridsense export` (src/cli/export.c) and the HTTP export routes
 * (src/api/export.c); docs/operations.md "Export" and docs/api.md "Export" are the contract.
 *
 * Streaming with constant memory: an export_t is a pull source. export_next appends the next
 * piece of the output (a few hundred KiB at most) to a buffer, reading the stored blocks through
 * store_blocks_read one time window at a time (the window adapts: it grows over gaps and
 * shrinks when a window gives too many bytes), so a day-long export never holds the day. The
 * store connection is used only inside export_open / export_next, never between calls (no
 * statement stays open), so the HTTP server can interleave the export with other requests on
 * the same connection.
 *
 * COMTRADE output (export_opts_t.container):
 *   EXPORT_PLAIN  export_next gives the .dat; after it is done, export_cfg gives the .cfg (its
 *                 sample count, rate table and min/max are only known then: the .dat is
 *                 written first, in one pass)
 *   EXPORT_ZIP    one zip stream: BASE.dat, then BASE.cfg and BASE.hdr, each entry with a data
 *                 descriptor (sizes and CRC after the data), zip64 records for an entry that can
 *                 exceed 4 GiB, deflated (zlib, level 1) or stored (export_opts_t.zip_store)
 *   EXPORT_CFF    one 2013 .cff stream (CFG, INF, HDR, DAT sections, in that order). The CFG
 *                 section comes first and the DAT section header states its byte count, so the
 *                 export reads the range twice: a counting pass (samples, gaps, rates, min/max,
 *                 time quality), then the writing pass, which must find the same samples (it
 *                 fails with GS_ESTATE when the stored data changed in between)
 * The counting pass also runs for EXPORT_PLAIN/ZIP when int32 samples must be narrowed
 * (BINARY or 1999 ASCII): the scale factor 2^k is then chosen from the range.
 *
 * Conversions: x in the .dat is the stored count (int16 / int32 formats and ASCII; narrowed by
 * 2^k only where int32 counts do not fit) with a = the channel's HELLO scale (secondary side) or
 * scale × vt_ratio / ct_ratio (primary side), b = 0; FLOAT32 stores the engineering value
 * (count × a, a = 1, b = 0). So integer formats give the stored counts back exactly. A count of
 * −32768 in BINARY (0x8000 is the standard's missing-value code) is written as −32767 and
 * counted in export_stats_t.clamped.
 *
 * Gaps: blocks form segments as in src/wave (a block continues the previous one when its first
 * sample is within 1.5 sample periods of where that one ended; sample times within a segment are
 * segment start + i/rate). One segment, or several contiguous segments at different rates:
 * nrates = number of rate runs with samp/endsamp (timestamps in the .dat informative). A gap
 * anywhere: nrates = 0, "0,N" and the .dat timestamps are the critical sample times (C37.111-1999
 * clause 6.9 / 2013 7.4.8) in µs since the first sample × timemult (timemult 1, or the smallest
 * integer that keeps the range's timestamps below 2^32−1). Blocks that go back in time (clock
 * step) or whose channel layout differs from the first block's are skipped and counted.
 *
 * Time: start/trigger dates in UTC with µs (time_code 0, local_code x in 2013); the trigger is
 * the event's start (export_opts_t.trigger_ns) or the first sample. 2013 tmq_code is the worst
 * GSTP time quality of the exported blocks mapped to IEEE C37.118 codes: 1 GPS locked -> 0
 * (locked), 2 network synced (~1..50 ms) -> 9 (within 100 ms), 0 unknown and 3 free running ->
 * F (unreliable); leapsec 3 (GSTP carries no leap second information).
 */
#ifndef GS_EXPORT_EXPORT_H
#define GS_EXPORT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "comtrade/comtrade.h"
#include "core/util.h"
#include "store/store.h"

enum { EXPORT_COMTRADE = 1, EXPORT_CSV_WAVEFORM, EXPORT_CSV_MEASUREMENTS };
enum { EXPORT_PLAIN = 0, EXPORT_ZIP, EXPORT_CFF };
enum { EXPORT_PRIMARY = 0, EXPORT_SECONDARY = 1 };

/* Longest range one HTTP request may export (the CLI has no bound). */
#define EXPORT_HTTP_MAX_RANGE_NS (86400LL * 1000000000LL)

typedef struct {
    int what;                /* EXPORT_COMTRADE, EXPORT_CSV_WAVEFORM, EXPORT_CSV_MEASUREMENTS */
    const char *terminal_id; /* a stored terminal (store_terminal_info) */
    int64_t from_ns, to_ns;  /* [from, to) (measurements: end times in (from, to]) */
    int side;                /* EXPORT_PRIMARY (default) or EXPORT_SECONDARY */
    /* COMTRADE */
    comtrade_ft_t ft;        /* default COMTRADE_BINARY (0 is ASCII: set it) */
    int rev_year;            /* 1999 or 2013 */
    int container;           /* EXPORT_PLAIN, EXPORT_ZIP or EXPORT_CFF */
    int zip_store;           /* 1: zip entries stored, not deflated */
    int64_t trigger_ns;      /* 0: the first sample */
    const char *base;        /* file name without extension inside a zip/cff ("export") */
    const char *hdr;         /* extra header text (.hdr / HDR section), NULL = a generated one */
    /* measurements */
    const char *interval;    /* "3s", "10s", "10min" (default), "2h" */
} export_opts_t;

typedef struct {
    uint64_t samples;        /* sample sets written (CSV: rows) */
    uint64_t blocks;         /* blocks used */
    uint64_t skipped_layout; /* blocks skipped: channel layout differs from the first block's */
    uint64_t skipped_time;   /* blocks skipped: they go back in time */
    uint64_t segments;       /* continuous runs (gaps + rate changes + 1) */
    uint64_t gaps;
    uint64_t clamped;        /* BINARY values -32768 written as -32767 */
    uint64_t bytes;          /* bytes handed out by export_next */
    int64_t first_ns, last_ns; /* first and last sample time (0 if none) */
    int64_t cursor_ns;       /* how far the reading has got (progress: from..to) */
    int passes;              /* 1, or 2 with a counting pass */
} export_stats_t;

typedef struct export_s export_t;

/* Checks the options and the terminal, and for CFF (or narrowing) runs the counting pass.
 * Returns 0 with *out, GS_ENOTFOUND (no such terminal), GS_EINVAL (bad options: err says which)
 * or a store error. Nothing stored in the range is not an error here: export_next then gives an
 * empty record (the CLI refuses that; see export_stats). */
int export_open(store_t *st, const export_opts_t *o, export_t **out, char *err, size_t errlen);

/* Appends the next piece of the output to out. Returns 1 (more to come), 0 (done, nothing
 * appended), or a negative code with err (the output so far is not valid). */
int export_next(export_t *ex, buf_t *out, char *err, size_t errlen);

/* EXPORT_COMTRADE with EXPORT_PLAIN, after export_next returned 0: the .cfg text (appended to
 * cfg) and a header text (.hdr: what was exported, skipped blocks) to hdr (may be NULL). */
int export_cfg(export_t *ex, buf_t *cfg, buf_t *hdr, char *err, size_t errlen);

void export_stats(const export_t *ex, export_stats_t *out);

/* 1 when the range holds no usable waveform block (waveform exports; known after export_open):
 * the CLI and the API refuse such an export instead of writing an empty record. */
int export_empty(const export_t *ex);

/* MIME type and file extension of the output ("application/zip", "zip"). */
const char *export_mime(const export_opts_t *o);
const char *export_ext(const export_opts_t *o);

/* A file base name "ID_YYYYMMDDTHHMMSSZ" for a range starting at from_ns (id as given; ids are
 * [A-Za-z0-9._-]). */
void export_basename(const char *id, int64_t from_ns, char *out, size_t cap);

/* Parses "binary" | "binary32" | "float32" | "ascii" (0) into *ft, else GS_EINVAL. */
int export_ft_parse(const char *s, comtrade_ft_t *ft);

void export_free(export_t *ex);

/* ---- zip writer (zip.c): usable alone (tests) ---- */
typedef struct export_zip export_zip_t;
/* A zip stream: entries are written one after the other with data descriptors; close appends
 * the central directory (zip64 end records when needed). Output goes to the buf_t given to each
 * call. store: 1 stored, 0 deflate (level 1). */
export_zip_t *export_zip_new(int store);
/* Starts an entry; big: 1 when it may exceed 4 GiB (zip64 sizes). mtime: Unix seconds. */
int export_zip_begin(export_zip_t *z, buf_t *out, const char *name, int64_t mtime_s, int big);
int export_zip_data(export_zip_t *z, buf_t *out, const void *data, size_t len);
int export_zip_end(export_zip_t *z, buf_t *out);
int export_zip_close(export_zip_t *z, buf_t *out);
void export_zip_free(export_zip_t *z);

#endif
