/* Waveform reads: stored blocks of a terminal by time, with the channel layout they were
 * recorded under, and one PQ event by id. Synchronous connection (the thread that owns the
 * store_t; in the server, the web thread's own read-only connection).
 *
 * There is no index on blocks(terminal_id, t0_ns): the UNIQUE(terminal_id, seq) index and a
 * terminal's times growing with its seq (GSTP 7.1) are enough to find a time range with a
 * binary search over seq in O(log n) index probes, without a schema change.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "wcodec/wcodec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Layout text ---- */

size_t store__layout_encode(const store_chan_t *ch, int n, char *out, size_t cap)
{
    if (n < 1 || n > STORE_MAX_CHANNELS || cap < STORE__LAYOUT_TEXT_MAX)
        return 0;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + len, cap - len, "%s%u,%u,%u,%u,%.9g", i ? ";" : "", ch[i].index,
                         ch[i].kind, ch[i].phase, ch[i].unit, (double)ch[i].scale);
        if (w < 0 || (size_t)w >= cap - len)
            return 0;
        len += (size_t)w;
    }
    return len;
}

/* Parses an unsigned decimal 0..255 at *p followed by ','; advances *p past the comma. */
static int take_u8(const char **p, uint8_t *out)
{
    const char *s = *p;
    unsigned v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 3) {
        v = v * 10 + (unsigned)(*s++ - '0');
        digits++;
    }
    if (digits == 0 || v > 255 || *s != ',')
        return GS_EINVAL;
    *out = (uint8_t)v;
    *p = s + 1;
    return 0;
}

int store__layout_decode(const char *text, store_chan_t *ch, int *n)
{
    uint32_t seen = 0;
    const char *p = text;
    *n = 0;
    if (!p || !*p || strlen(p) >= STORE__LAYOUT_TEXT_MAX)
        return GS_EINVAL;
    for (;;) {
        if (*n == STORE_MAX_CHANNELS)
            return GS_EINVAL;
        store_chan_t c;
        if (take_u8(&p, &c.index) < 0 || take_u8(&p, &c.kind) < 0 || take_u8(&p, &c.phase) < 0 ||
            take_u8(&p, &c.unit) < 0)
            return GS_EINVAL;
        char *end = NULL;
        double sc = strtod(p, &end);
        if (end == p || !isfinite(sc) || sc <= 0 || sc > 3.4e38)
            return GS_EINVAL;
        c.scale = (float)sc;
        if (c.index >= STORE_MAX_CHANNELS || (seen & (1u << c.index)))
            return GS_EINVAL;
        seen |= 1u << c.index;
        ch[(*n)++] = c;
        p = end;
        if (*p == '\0')
            return 0;
        if (*p++ != ';')
            return GS_EINVAL;
    }
}

/* ---- Statements ---- */

/* The first block at or after seq ?2 (any kind): one index probe. */
#define SQL_PROBE                                                                                  \
    "SELECT seq, t0_ns FROM blocks WHERE terminal_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1"
/* The first WAVEFORM block at or after seq ?2: the same index search, stepping over the EVENT
 * captures in the way (rare: one capture's blocks between two waveform blocks). */
#define SQL_PROBE_WAVE                                                                             \
    "SELECT seq, t0_ns FROM blocks WHERE terminal_id = ?1 AND seq >= ?2 AND kind = 0"              \
    " ORDER BY seq LIMIT 1"
/* The terminal's highest stored WAVEFORM seq. */
#define SQL_LAST_WAVE                                                                              \
    "SELECT seq FROM blocks WHERE terminal_id = ?1 AND kind = 0 ORDER BY seq DESC LIMIT 1"
/* The terminal's highest stored seq: one index probe. */
#define SQL_LAST "SELECT seq FROM blocks WHERE terminal_id = ?1 ORDER BY seq DESC LIMIT 1"
/* Blocks from seq ?2 on, in seq order, ?3 at a time: read in pages, because PostgreSQL hands a
 * statement's whole result over at once (sql_pg.c) where SQLite steps through the index, and
 * the end of a read is found while reading (a block past the range). */
#define SQL_READ                                                                                   \
    "SELECT seq, kind, t0_ns, sample_rate, channel_mask, nchannels, sample_fmt, time_quality,"     \
    " nsamples, data, codec FROM blocks WHERE terminal_id = ?1 AND seq >= ?2 ORDER BY seq"         \
    " LIMIT ?3"
#define READ_PAGE 256
/* The layout in force at seq ?2, and where the next one starts. */
#define SQL_LAYOUT                                                                                 \
    "SELECT first_seq, channels, (SELECT min(first_seq) FROM block_layouts WHERE"                  \
    " terminal_id = ?1 AND first_seq > ?2) FROM block_layouts WHERE terminal_id = ?1"              \
    " AND first_seq <= ?2 ORDER BY first_seq DESC LIMIT 1"
#define SQL_NEXT_LAYOUT                                                                            \
    "SELECT min(first_seq) FROM block_layouts WHERE terminal_id = ?1 AND first_seq > ?2"

/* The first stored seq >= from (any kind) and its t0: 1 found, 0 none, GS_EDB. */
static int probe(sqlx_t *db, sqlx_stmt_t *st, uint64_t from, uint64_t *seq, int64_t *t0)
{
    sqlx_bind_int64(st, 2, (int64_t)from);
    int src = sqlx_step(st), rc = 0;
    if (src == SQLX_ROW) {
        *seq = (uint64_t)sqlx_column_int64(st, 0);
        *t0 = sqlx_column_int64(st, 1);
        rc = 1;
    } else if (src != SQLX_DONE) {
        rc = store__db_fail(db, "find block");
    }
    sqlx_reset(st);
    return rc;
}

/* The seq to start reading at: the highest stored seq whose t0 <= from_ns (the block that may
 * hold from_ns), or the lowest stored seq when every block starts after from_ns. *found = 0
 * when the terminal has no blocks. Invariant of the search: the block at `lo` starts at or
 * before from_ns, and none at or after `hi` does.
 *
 * wave_only: among WAVEFORM blocks only. Their times grow with seq (GSTP 7.1), but EVENT
 * captures share the seq space and start with their pre-trigger samples, earlier than the
 * waveform blocks stored before them: a search over every kind could stop at a capture that
 * starts before from_ns and skip the waveform block holding from_ns, just before it in seq. */
static int find_start(sqlx_t *db, const char *tid, int64_t from_ns, int wave_only, uint64_t *start,
                      int *found)
{
    sqlx_stmt_t *pr = NULL, *last = NULL;
    uint64_t lo = 0, hi, seq = 0;
    int64_t t0 = 0;
    *found = 0;
    int rc = store__prepare(db, wave_only ? SQL_PROBE_WAVE : SQL_PROBE, &pr);
    if (rc < 0)
        goto fail;
    rc = store__prepare(db, wave_only ? SQL_LAST_WAVE : SQL_LAST, &last);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(pr, 1, tid, -1);
    sqlx_bind_text(last, 1, tid, -1);

    rc = probe(db, pr, 0, &lo, &t0);
    if (rc <= 0)
        goto fail; /* no blocks (rc 0) or an error */
    *found = 1;
    *start = lo;
    rc = 0;
    if (t0 > from_ns)
        goto fail; /* everything starts after from_ns: read from the first block */
    int src = sqlx_step(last);
    if (src != SQLX_ROW) {
        rc = store__db_fail(db, "find last block");
        goto fail;
    }
    hi = (uint64_t)sqlx_column_int64(last, 0) + 1;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        rc = probe(db, pr, mid, &seq, &t0);
        if (rc < 0)
            goto fail;
        if (rc == 1 && seq < hi && t0 <= from_ns)
            lo = seq; /* seq >= mid > lo: progress */
        else
            hi = mid; /* no block in [mid, hi) starts at or before from_ns */
    }
    *start = lo;
    rc = 0;
fail:
    sqlx_finalize(pr);
    sqlx_finalize(last);
    return rc;
}

/* The layout cursor of store_blocks_read: the layout in force for seqs in [first, next). */
typedef struct {
    int loaded;
    uint64_t first, next; /* next 0: no later layout */
    int have;             /* a layout row applies (else blocks have none) */
    int n;
    store_chan_t ch[STORE_MAX_CHANNELS];
} layout_cur_t;

/* Makes cur describe the layout in force at seq. Returns 0 or GS_EDB. */
static int layout_at(sqlx_t *db, const char *tid, uint64_t seq, layout_cur_t *cur)
{
    if (cur->loaded && seq >= cur->first && (cur->next == 0 || seq < cur->next))
        return 0;
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db, SQL_LAYOUT, &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, tid, -1);
    sqlx_bind_int64(st, 2, (int64_t)seq);
    int src = sqlx_step(st);
    memset(cur, 0, sizeof *cur);
    cur->loaded = 1;
    if (src == SQLX_ROW) {
        cur->first = (uint64_t)sqlx_column_int64(st, 0);
        const char *text = (const char *)sqlx_column_text(st, 1);
        cur->next = sqlx_column_type(st, 2) == SQLX_NULL ? 0 : (uint64_t)sqlx_column_int64(st, 2);
        if (store__layout_decode(text, cur->ch, &cur->n) == 0) {
            cur->have = 1;
        } else {
            cur->n = 0;
            log_error(tid,
                      "stored channel layout from block %llu is malformed; its blocks are"
                      " read without one",
                      (unsigned long long)cur->first);
        }
    } else if (src == SQLX_DONE) {
        /* Blocks before the first layout row: none applies up to that row. */
        sqlx_finalize(st);
        st = NULL;
        rc = store__prepare(db, SQL_NEXT_LAYOUT, &st);
        if (rc < 0)
            return rc;
        sqlx_bind_text(st, 1, tid, -1);
        sqlx_bind_int64(st, 2, (int64_t)seq);
        src = sqlx_step(st);
        if (src != SQLX_ROW) {
            rc = store__db_fail(db, "read channel layout");
            goto fail;
        }
        cur->first = 0;
        cur->next = sqlx_column_type(st, 0) == SQLX_NULL ? 0 : (uint64_t)sqlx_column_int64(st, 0);
    } else {
        rc = store__db_fail(db, "read channel layout");
        goto fail;
    }
    rc = 0;
fail:
    sqlx_finalize(st);
    if (rc < 0)
        cur->loaded = 0;
    return rc;
}

/* Points b->data at the block's raw samples: the stored bytes for codec 0, or the stored wcodec
 * segments of codec 1 (migration 9) or 2 (the block model, protocol.md A.11) decoded into *buf (grown as needed, freed by the caller). Returns 0,
 * or GS_EINVAL when the stored block cannot be decoded (a corrupt row: the caller skips it). */
static int block_samples(sqlx_stmt_t *st, store_block_t *b, uint8_t **buf, size_t *cap)
{
    const uint8_t *data = sqlx_column_blob(st, 9);
    size_t len = (size_t)sqlx_column_bytes(st, 9);
    int codec = (int)sqlx_column_int64(st, 10);
    if (codec == 0) {
        b->data = data;
        b->data_len = len;
        return 0;
    }
    int width = b->sample_fmt == 2 ? 4 : b->sample_fmt == 1 ? 2 : 0;
    if ((codec != WCODEC_ID && codec != WCODEC_ID_MODEL) || !data || width == 0 ||
        b->nchannels < 1 ||
        b->nchannels > WCODEC_MAX_CHANNELS || b->nsamples > WCODEC_MAX_SETS)
        return GS_EINVAL;
    size_t raw = (size_t)b->nsamples * (size_t)b->nchannels * (size_t)width;
    if (raw > *cap) {
        free(*buf);
        *buf = xmalloc(raw);
        *cap = raw;
    }
    if (wcodec_decode_block_as(codec, data, len, b->nsamples, b->nchannels, b->sample_fmt, *buf) !=
        WCODEC_OK)
        return GS_EINVAL;
    b->data = *buf;
    b->data_len = raw;
    return 0;
}

int store_blocks_read(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                      int kinds, int (*cb)(void *ud, const store_block_t *b), void *ud)
{
    uint8_t *raw = NULL; /* decoded samples of a compressed block, reused */
    size_t raw_cap = 0;
    sqlx_stmt_t *st = NULL;
    uint64_t start = 0;
    int found = 0, rc;
    layout_cur_t lay = {0};

    if (from_ns >= to_ns || !(kinds & (STORE_BLOCKS_WAVEFORM | STORE_BLOCKS_EVENT)))
        return GS_EINVAL;
    /* Waveform blocks: the search among them only (find_start). With captures too, the earlier
     * of that start and the search over every kind (a capture is found as before). */
    if (kinds & STORE_BLOCKS_WAVEFORM) {
        rc = find_start(s->db, terminal_id, from_ns, 1, &start, &found);
        if (rc < 0)
            return rc;
    }
    int wave_done = !(kinds & STORE_BLOCKS_WAVEFORM), any_done = 1;
    uint64_t any_start = 0;
    if (kinds & STORE_BLOCKS_EVENT) {
        int found_any = 0;
        rc = find_start(s->db, terminal_id, from_ns, 0, &any_start, &found_any);
        if (rc < 0)
            return rc;
        if (found_any && (!found || any_start < start))
            start = any_start;
        found |= found_any;
        any_done = !found_any;
    }
    if (!found)
        return 0;
    rc = store__prepare(s->db, SQL_READ, &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_int64(st, 2, (int64_t)start);
    sqlx_bind_int64(st, 3, READ_PAGE);
    int in_page = 0;
    uint64_t last_seq = 0;
    for (;;) {
        int src = sqlx_step(st);
        if (src == SQLX_DONE) {
            if (in_page < READ_PAGE || last_seq >= (uint64_t)INT64_MAX)
                break;
            /* a full page: the next one from the seq after its last (rebinding resets) */
            sqlx_bind_int64(st, 2, (int64_t)(last_seq + 1));
            in_page = 0;
            continue;
        }
        if (src != SQLX_ROW) {
            rc = store__db_fail(s->db, "read blocks");
            goto fail;
        }
        in_page++;
        store_block_t b;
        memset(&b, 0, sizeof b);
        b.seq = last_seq = (uint64_t)sqlx_column_int64(st, 0);
        b.is_event = (int)sqlx_column_int64(st, 1) != 0;
        b.t0_ns = sqlx_column_int64(st, 2);
        if (b.t0_ns >= to_ns) {
            /* Past the range. Waveform blocks: a WAVEFORM block past it ends them (their times
             * grow with seq; a capture past it does not: the waveform blocks stored after it
             * may start earlier, a pre-trigger being shorter than what is still unsent).
             * Captures: any block past it at or after the search over every kind, as that
             * search assumes. */
            if (!b.is_event)
                wave_done = 1;
            if (b.seq >= any_start)
                any_done = 1;
            if (wave_done && any_done)
                break;
            continue;
        }
        if (!(kinds & (b.is_event ? STORE_BLOCKS_EVENT : STORE_BLOCKS_WAVEFORM)))
            continue;
        int64_t rate = sqlx_column_int64(st, 3);
        int64_t nsamples = sqlx_column_int64(st, 8);
        if (rate <= 0 || rate > 1000000 || nsamples <= 0 || nsamples > 65535)
            continue; /* not a block the gateway could have stored: nothing to show */
        b.sample_rate = (uint32_t)rate;
        b.nsamples = (uint32_t)nsamples;
        int64_t dur = (int64_t)nsamples * 1000000000 / rate; /* < 6.6e13: no overflow */
        if (b.t0_ns <= INT64_MAX - dur && b.t0_ns + dur <= from_ns)
            continue; /* ends before the range */
        b.channel_mask = (uint32_t)sqlx_column_int64(st, 4);
        b.nchannels = (int)sqlx_column_int64(st, 5);
        b.sample_fmt = (int)sqlx_column_int64(st, 6);
        b.time_quality = (int)sqlx_column_int64(st, 7);
        if (block_samples(st, &b, &raw, &raw_cap) < 0) {
            /* A corrupt stored block is this block's error, not the read's: it is logged and
             * left out (the reader sees a gap), the blocks after it are still read. */
            log_limited(LOG_ERROR, terminal_id,
                        "stored block %llu (codec %d) does not decode; left out of the read",
                        (unsigned long long)b.seq, (int)sqlx_column_int64(st, 10));
            continue;
        }
        rc = layout_at(s->db, terminal_id, b.seq, &lay);
        if (rc < 0)
            goto fail;
        b.nlayout = lay.have ? lay.n : 0;
        b.layout = lay.ch;
        rc = cb(ud, &b);
        if (rc != 0)
            goto fail;
    }
    rc = 0;
fail:
    sqlx_finalize(st);
    free(raw);
    return rc;
}

int store_pq_event_get(store_t *s, int64_t id, store_pq_event_t *out)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT id, terminal_id, kind, start_ns, duration_ns, detected_ns,"
                            " extreme, extreme_pct, reference, channels, flags, worst_channel,"
                            " channel_names, worst_channel_name FROM pq_events WHERE id = ?1",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, id);
    int src = sqlx_step(st);
    if (src == SQLX_DONE) {
        rc = GS_ENOTFOUND;
        goto fail;
    }
    if (src != SQLX_ROW) {
        rc = store__db_fail(s->db, "read event");
        goto fail;
    }
    memset(out, 0, sizeof *out);
    out->id = sqlx_column_int64(st, 0);
    const char *t = (const char *)sqlx_column_text(st, 1);
    snprintf(out->terminal_id, sizeof out->terminal_id, "%s", t ? t : "");
    t = (const char *)sqlx_column_text(st, 2);
    snprintf(out->kind, sizeof out->kind, "%s", t ? t : "");
    out->start_ns = sqlx_column_int64(st, 3);
    out->duration_ns = sqlx_column_int64(st, 4);
    out->detected_ns = sqlx_column_int64(st, 5);
    out->extreme = sqlx_column_double(st, 6);
    out->extreme_pct = sqlx_column_double(st, 7);
    out->reference = sqlx_column_double(st, 8);
    out->channels = (uint32_t)sqlx_column_int64(st, 9);
    out->flags = (uint32_t)sqlx_column_int64(st, 10);
    out->worst_channel = (int)sqlx_column_int64(st, 11);
    out->has_names = sqlx_column_type(st, 12) != SQLX_NULL;
    if (out->has_names) {
        t = (const char *)sqlx_column_text(st, 12);
        snprintf(out->channel_names, sizeof out->channel_names, "%s", t ? t : "");
        t = (const char *)sqlx_column_text(st, 13);
        snprintf(out->worst_channel_name, sizeof out->worst_channel_name, "%s", t ? t : "");
    }
    rc = 0;
fail:
    sqlx_finalize(st);
    return rc;
}

int store_blocks_plan(store_t *s, char *out, size_t cap)
{
    static const struct {
        const char *name, *sql;
    } q[] = {{"probe", SQL_PROBE},
             {"last", SQL_LAST},
             {"probe_wave", SQL_PROBE_WAVE},
             {"last_wave", SQL_LAST_WAVE},
             {"read", SQL_READ},
             {"layout", SQL_LAYOUT},
             {"next_layout", SQL_NEXT_LAYOUT}};
    size_t len = 0;
    int rc = 0;
    if (cap == 0)
        return GS_EINVAL;
    out[0] = '\0';
    if (s->pg)
        return GS_ENOTSUP; /* EXPLAIN QUERY PLAN is SQLite's */
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", q[i].sql);
        sqlx_stmt_t *st = NULL;
        rc = store__prepare(s->db, sql, &st);
        if (rc < 0)
            return rc;
        sqlx_bind_text(st, 1, "x", -1);
        sqlx_bind_int64(st, 2, 1);
        int src;
        while ((src = sqlx_step(st)) == SQLX_ROW) {
            const char *d = (const char *)sqlx_column_text(st, 3);
            int w = snprintf(out + len, cap - len, "%s: %s\n", q[i].name, d ? d : "");
            if (w > 0)
                len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
        }
        sqlx_finalize(st);
        if (src != SQLX_DONE)
            return store__db_fail(s->db, "explain");
    }
    return 0;
}
