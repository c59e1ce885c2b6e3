/* The waveform summary pyramid (contract in store.h, "Waveform summary pyramid"): per terminal,
 * level and bucket, the min, max, sum of squares and count of every channel's raw counts, so that
 * a plot of a day or a year reads a few thousand small rows instead of the samples.
 *
 * Writing: the writer calls store__pyr_block for every WAVEFORM block it has just inserted (never
 * for a duplicate) and store__pyr_flush before COMMIT, on its own connection and inside the
 * batch's transaction, so the rows always describe exactly the stored blocks: a batch that rolls
 * back takes its pyramid updates with it (store__pyr_forget drops the cache), a crash loses both
 * or neither. The block's samples are cut at 1 s boundaries (every level's width is a multiple
 * of 1 s, so each piece lies inside one bucket of every level); each piece's statistics are
 * folded into a per-terminal cache of the current bucket of every level, loaded from the
 * database when a terminal moves into a bucket and written back (dirty rows only) at the end of
 * the batch: a terminal costs one row write per level per batch, not per block.
 *
 * Row statistics BLOB (little endian, one record per bit of channel_mask, ascending channel
 * index): int32 min, int32 max, float64 sum of squares, uint32 count = 20 bytes.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS         1000000000LL
#define STAT_BYTES 20
/* Sample times accepted (1970 .. ~2191): keeps every sum below inside int64. */
#define T_MAX_NS 7000000000000000000LL

static const int64_t widths_s[STORE_PYR_LEVELS] = {1, 10, 60, 600, 3600, 86400};

int64_t store_pyramid_width_ns(int level)
{
    return level >= 0 && level < STORE_PYR_LEVELS ? widths_s[level] * NS : 0;
}

/* ---- Row arithmetic ---- */

static int tq_rank(int q)
{
    return q == 0 ? 4 : q; /* 0 unknown is the worst */
}

static void row_init(store_pyr_row_t *r, int level, int64_t bucket)
{
    memset(r, 0, sizeof *r);
    r->level = level;
    r->width_ns = store_pyramid_width_ns(level);
    r->bucket_ns = bucket;
}

void store_pyramid_merge(store_pyr_row_t *acc, const store_pyr_row_t *p)
{
    if (p->n == 0)
        return;
    if (acc->n == 0) {
        acc->t_first_ns = p->t_first_ns;
        acc->t_end_ns = p->t_end_ns;
        acc->seq_first = p->seq_first;
        acc->seq_last = p->seq_last;
        acc->time_quality = p->time_quality;
        acc->sample_rate = p->sample_rate;
    } else {
        if (p->t_first_ns < acc->t_first_ns)
            acc->t_first_ns = p->t_first_ns;
        if (p->t_end_ns > acc->t_end_ns)
            acc->t_end_ns = p->t_end_ns;
        if (p->seq_first < acc->seq_first)
            acc->seq_first = p->seq_first;
        if (p->seq_last >= acc->seq_last) {
            acc->seq_last = p->seq_last;
            acc->sample_rate = p->sample_rate; /* the rate of the latest block */
        }
        if (tq_rank(p->time_quality) > tq_rank(acc->time_quality))
            acc->time_quality = p->time_quality;
    }
    acc->n += p->n;
    for (int i = 0; i < STORE_MAX_CHANNELS; i++) {
        if (!(p->channel_mask & (1u << i)))
            continue;
        store_pyr_stat_t *a = &acc->ch[i];
        const store_pyr_stat_t *b = &p->ch[i];
        if (!(acc->channel_mask & (1u << i)) || a->n == 0) {
            *a = *b;
        } else {
            if (b->min < a->min)
                a->min = b->min;
            if (b->max > a->max)
                a->max = b->max;
            a->sumsq += b->sumsq;
            a->n += b->n;
        }
    }
    acc->channel_mask |= p->channel_mask;
}

static size_t stats_encode(const store_pyr_row_t *r, uint8_t *out)
{
    size_t len = 0;
    for (int i = 0; i < STORE_MAX_CHANNELS; i++) {
        if (!(r->channel_mask & (1u << i)))
            continue;
        const store_pyr_stat_t *c = &r->ch[i];
        uint64_t d;
        memcpy(&d, &c->sumsq, 8);
        uint32_t w[2] = {(uint32_t)c->min, (uint32_t)c->max};
        for (int k = 0; k < 2; k++)
            for (int b = 0; b < 4; b++)
                out[len++] = (uint8_t)(w[k] >> (8 * b));
        for (int b = 0; b < 8; b++)
            out[len++] = (uint8_t)(d >> (8 * b));
        for (int b = 0; b < 4; b++)
            out[len++] = (uint8_t)(c->n >> (8 * b));
    }
    return len;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The database is outside input too: a BLOB whose size does not match the mask is refused. */
static int stats_decode(store_pyr_row_t *r, const uint8_t *p, size_t len)
{
    if (r->channel_mask >> STORE_MAX_CHANNELS ||
        len != (size_t)__builtin_popcount(r->channel_mask) * STAT_BYTES || (len && !p))
        return GS_EINVAL;
    for (int i = 0; i < STORE_MAX_CHANNELS; i++) {
        if (!(r->channel_mask & (1u << i)))
            continue;
        store_pyr_stat_t *c = &r->ch[i];
        c->min = (int32_t)get_u32(p);
        c->max = (int32_t)get_u32(p + 4);
        uint64_t d = (uint64_t)get_u32(p + 8) | (uint64_t)get_u32(p + 12) << 32;
        memcpy(&c->sumsq, &d, 8);
        c->n = get_u32(p + 16);
        p += STAT_BYTES;
    }
    return 0;
}

/* ---- Statements ---- */

#define SQL_PUT_HEAD                                                                               \
    "INSERT INTO wave_pyramid(terminal_id, level, bucket_ns, t_first_ns, t_end_ns,"                \
    " seq_first, seq_last, sample_rate, time_quality, channel_mask, n, stats) VALUES"
#define SQL_PUT SQL_PUT_HEAD "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)" SQL_PUT_TAIL
#define SQL_PUT_TAIL                                                                               \
    " ON CONFLICT(terminal_id, level, bucket_ns) DO UPDATE SET t_first_ns = excluded.t_first_ns,"  \
    " t_end_ns = excluded.t_end_ns, seq_first = excluded.seq_first, seq_last = excluded.seq_last," \
    " sample_rate = excluded.sample_rate, time_quality = excluded.time_quality,"                   \
    " channel_mask = excluded.channel_mask, n = excluded.n, stats = excluded.stats"
#define SQL_COLS                                                                                   \
    "level, bucket_ns, t_first_ns, t_end_ns, seq_first, seq_last, sample_rate, time_quality,"      \
    " channel_mask, n, stats"
#define SQL_GET                                                                                    \
    "SELECT " SQL_COLS " FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2 AND"              \
    " bucket_ns = ?3"
#define SQL_RANGE                                                                                  \
    "SELECT " SQL_COLS " FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2 AND"              \
    " bucket_ns >= ?3 AND bucket_ns < ?4 ORDER BY bucket_ns"
#define SQL_DELETE                                                                                 \
    "DELETE FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2 AND bucket_ns >= ?3 AND"       \
    " bucket_ns < ?4"
/* The layout in force at seq ?2 (as blocks_read.c reads it) and where the next one starts. */
#define SQL_LAYOUT                                                                                 \
    "SELECT channels, first_seq, (SELECT min(first_seq) FROM block_layouts WHERE"                  \
    " terminal_id = ?1 AND first_seq > ?2) FROM block_layouts WHERE terminal_id = ?1"              \
    " AND first_seq <= ?2 ORDER BY first_seq DESC LIMIT 1"
/* The first layout after seq ?2. */
#define SQL_FIRST_LAYOUT                                                                           \
    "SELECT min(first_seq) FROM block_layouts WHERE terminal_id = ?1 AND first_seq > ?2"

/* Fills r from a row of SQL_COLS. GS_EINVAL for a row that is not well formed. */
static int row_from(sqlx_stmt_t *st, store_pyr_row_t *r)
{
    int level = (int)sqlx_column_int64(st, 0);
    if (level < 0 || level >= STORE_PYR_LEVELS)
        return GS_EINVAL;
    row_init(r, level, sqlx_column_int64(st, 1));
    r->t_first_ns = sqlx_column_int64(st, 2);
    r->t_end_ns = sqlx_column_int64(st, 3);
    r->seq_first = (uint64_t)sqlx_column_int64(st, 4);
    r->seq_last = (uint64_t)sqlx_column_int64(st, 5);
    r->sample_rate = (uint32_t)sqlx_column_int64(st, 6);
    r->time_quality = (int)sqlx_column_int64(st, 7);
    r->channel_mask = (uint32_t)sqlx_column_int64(st, 8);
    r->n = (uint32_t)sqlx_column_int64(st, 9);
    const uint8_t *p = sqlx_column_blob(st, 10);
    size_t len = (size_t)sqlx_column_bytes(st, 10);
    if (stats_decode(r, p, len) < 0 || r->t_end_ns < r->t_first_ns || r->sample_rate == 0)
        return GS_EINVAL;
    return 0;
}

/* Binds a row's 12 columns from column base + 1 on (the seam copies the stats blob). */
static void row_bind(sqlx_stmt_t *st, int base, const char *tid, const store_pyr_row_t *r)
{
    uint8_t blob[STORE_MAX_CHANNELS * STAT_BYTES];
    size_t len = stats_encode(r, blob);
    sqlx_bind_text(st, base + 1, tid, -1);
    sqlx_bind_int64(st, base + 2, r->level);
    sqlx_bind_int64(st, base + 3, r->bucket_ns);
    sqlx_bind_int64(st, base + 4, r->t_first_ns);
    sqlx_bind_int64(st, base + 5, r->t_end_ns);
    sqlx_bind_int64(st, base + 6, (int64_t)r->seq_first);
    sqlx_bind_int64(st, base + 7, (int64_t)r->seq_last);
    sqlx_bind_int64(st, base + 8, r->sample_rate);
    sqlx_bind_int64(st, base + 9, r->time_quality);
    sqlx_bind_int64(st, base + 10, r->channel_mask);
    sqlx_bind_int64(st, base + 11, r->n);
    sqlx_bind_blob(st, base + 12, blob, len);
}

static int row_put(sqlx_t *db, sqlx_stmt_t *st, const char *tid, const store_pyr_row_t *r)
{
    row_bind(st, 0, tid, r);
    int src = sqlx_step(st);
    sqlx_reset(st);
    return src == SQLX_DONE ? 0 : store__db_fail(db, "store pyramid row");
}

/* ---- The accumulator shared by the writer and the rebuild ---- */

typedef struct {
    store_pyr_row_t cur[STORE_PYR_LEVELS];
    uint8_t have[STORE_PYR_LEVELS], dirty[STORE_PYR_LEVELS];
} pyr_term_t;

#define PUT_ROWS 64

struct store_pyr {
    sqlx_t *db;
    sqlx_stmt_t *get, *put;
    sqlx_stmt_t *put_rows[PUT_ROWS]; /* PostgreSQL: [k-1] upserts k rows (pyr_flush) */
    hmap_t terms;                    /* terminal id -> pyr_term_t * */
};

static void pyr_forget(struct store_pyr *p)
{
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&p->terms, &i, &k, &v);)
        free(v);
    hmap_free(&p->terms);
    hmap_init(&p->terms);
}

static void pyr_free(struct store_pyr *p)
{
    if (!p)
        return;
    pyr_forget(p);
    sqlx_finalize(p->get);
    sqlx_finalize(p->put);
    for (int i = 0; i < PUT_ROWS; i++)
        sqlx_finalize(p->put_rows[i]);
    free(p);
}

static int pyr_new(sqlx_t *db, struct store_pyr **out)
{
    struct store_pyr *p = xcalloc(1, sizeof *p);
    p->db = db;
    hmap_init(&p->terms);
    int rc = store__prepare(db, SQL_GET, &p->get);
    if (rc == 0)
        rc = store__prepare(db, SQL_PUT, &p->put);
    if (rc < 0) {
        pyr_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Writes the dirty rows of one terminal. */
static int term_flush(struct store_pyr *p, const char *tid, pyr_term_t *t)
{
    for (int l = 0; l < STORE_PYR_LEVELS; l++) {
        if (!t->dirty[l])
            continue;
        int rc = row_put(p->db, p->put, tid, &t->cur[l]);
        if (rc < 0)
            return rc;
        t->dirty[l] = 0;
    }
    return 0;
}

/* Makes t->cur[level] the row of `bucket`: the cached one, or (after writing the previous one
 * back if dirty) the stored one, or an empty one. */
static int term_enter(struct store_pyr *p, const char *tid, pyr_term_t *t, int level,
                      int64_t bucket)
{
    if (t->have[level] && t->cur[level].bucket_ns == bucket)
        return 0;
    if (t->have[level] && t->dirty[level]) {
        int rc = row_put(p->db, p->put, tid, &t->cur[level]);
        if (rc < 0)
            return rc;
        t->dirty[level] = 0;
    }
    store_pyr_row_t *r = &t->cur[level];
    row_init(r, level, bucket);
    t->have[level] = 1;
    sqlx_stmt_t *st = p->get;
    sqlx_bind_text(st, 1, tid, -1);
    sqlx_bind_int64(st, 2, level);
    sqlx_bind_int64(st, 3, bucket);
    int src = sqlx_step(st), rc = 0;
    if (src == SQLX_ROW) {
        if (row_from(st, r) < 0 || r->level != level || r->bucket_ns != bucket) {
            /* a damaged row: start it again from what arrives now (logged once per bucket) */
            log_warn(tid, "pyramid row level %d bucket %lld is malformed: replaced", level,
                     (long long)bucket);
            row_init(r, level, bucket);
        }
    } else if (src != SQLX_DONE) {
        t->have[level] = 0;
        rc = store__db_fail(p->db, "read pyramid row");
    }
    sqlx_reset(st);
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Folds sample sets of a block that lie in [lo_ns, hi_ns) into the pyramid of tid. The block's
 * sizes must agree (checked by the callers). */
static int pyr_add(struct store_pyr *p, const char *tid, uint64_t seq, int64_t t0, uint32_t rate,
                   uint32_t mask, int fmt, int tq, uint32_t nsamples, const uint8_t *data,
                   int64_t lo_ns, int64_t hi_ns)
{
    pyr_term_t *t = hmap_get(&p->terms, tid);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        hmap_put(&p->terms, tid, t);
    }
    int nch = __builtin_popcount(mask);
    int idx[STORE_MAX_CHANNELS], k = 0;
    for (int i = 0; i < STORE_MAX_CHANNELS; i++)
        if (mask & (1u << i))
            idx[k++] = i;
    /* sample set i is at t0 + i·1e9/rate (as the waveform reads time them) */
    int64_t i = 0, iend = nsamples;
    if (lo_ns > t0)
        i = ((lo_ns - t0) * (int64_t)rate + NS - 1) / NS;
    int64_t dur = (int64_t)nsamples * NS / rate;
    if (hi_ns < t0 + dur)
        iend = hi_ns <= t0 ? 0 : ((hi_ns - t0) * (int64_t)rate + NS - 1) / NS;
    if (iend > (int64_t)nsamples)
        iend = nsamples;
    while (i < iend) {
        int64_t ti = t0 + i * NS / rate;
        int64_t sec = floor_div(ti, NS) * NS;
        int64_t j = ((sec + NS - t0) * (int64_t)rate + NS - 1) / NS; /* first set of next second */
        if (j <= i)
            j = i + 1;
        if (j > iend)
            j = iend;
        store_pyr_row_t piece;
        row_init(&piece, 0, sec);
        piece.t_first_ns = ti;
        piece.t_end_ns = t0 + j * NS / rate;
        piece.seq_first = piece.seq_last = seq;
        piece.sample_rate = rate;
        piece.time_quality = tq;
        piece.channel_mask = mask;
        piece.n = (uint32_t)(j - i);
        for (int c = 0; c < nch; c++) {
            int32_t mn = INT32_MAX, mx = INT32_MIN;
            double ss = 0;
            for (int64_t s = i; s < j; s++) {
                size_t at = (size_t)s * (size_t)nch + (size_t)c;
                int32_t v;
                if (fmt == 1) {
                    const uint8_t *q = data + 2 * at;
                    v = (int16_t)(uint16_t)(q[0] | (uint16_t)q[1] << 8);
                } else {
                    v = (int32_t)get_u32(data + 4 * at);
                }
                if (v < mn)
                    mn = v;
                if (v > mx)
                    mx = v;
                ss += (double)v * (double)v;
            }
            piece.ch[idx[c]] = (store_pyr_stat_t){mn, mx, ss, (uint32_t)(j - i)};
        }
        for (int l = 0; l < STORE_PYR_LEVELS; l++) {
            int64_t w = widths_s[l] * NS;
            int rc = term_enter(p, tid, t, l, floor_div(sec, w) * w);
            if (rc < 0)
                return rc;
            piece.level = l;
            store_pyramid_merge(&t->cur[l], &piece);
            t->dirty[l] = 1;
        }
        i = j;
    }
    return 0;
}

/* A block the pyramid can summarise: sizes that agree, a time and rate in range, channel
 * indices < 16. Others are stored as blocks but left out of the pyramid (the waveform reads skip
 * them too). */
static int block_ok(int64_t t0, uint32_t rate, uint32_t mask, int nchannels, int fmt,
                    uint32_t nsamples, const void *data, size_t data_len)
{
    int width = fmt == 1 ? 2 : fmt == 2 ? 4 : 0;
    int nch = __builtin_popcount(mask);
    return width && nch > 0 && nch == nchannels && !(mask >> STORE_MAX_CHANNELS) && rate > 0 &&
           nsamples > 0 && data && (size_t)nsamples * (size_t)nch * (size_t)width == data_len &&
           t0 >= 0 && t0 < T_MAX_NS && (int64_t)nsamples * NS / rate < NS * 86400 * 365;
}

/* ---- Writer hooks (writer thread, inside the batch's transaction) ---- */

int store__pyr_block(store_t *s, const store_item_t *it)
{
    if (it->is_event || !block_ok(it->t0_ns, it->sample_rate, it->channel_mask, it->nchannels,
                                  it->sample_fmt, it->nsamples, it->data, it->data_len))
        return 0;
    if (!s->pyr) {
        int rc = pyr_new(s->wdb, &s->pyr);
        if (rc < 0)
            return rc;
    }
    return pyr_add(s->pyr, it->terminal_id, it->seq, it->t0_ns, it->sample_rate, it->channel_mask,
                   it->sample_fmt, it->time_quality, it->nsamples, it->data, INT64_MIN, INT64_MAX);
}

/* PostgreSQL: the dirty rows of every terminal, PUT_ROWS to a statement (one round trip each
 * instead of one per row; the keys are distinct: one current row per terminal and level). */
static int pyr_flush_rows(struct store_pyr *p)
{
    typedef struct {
        const char *tid;
        pyr_term_t *t;
        int level;
    } dirty_t;
    dirty_t *d = NULL;
    size_t n = 0, cap = 0;
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&p->terms, &i, &k, &v);) {
        pyr_term_t *t = v;
        for (int l = 0; l < STORE_PYR_LEVELS; l++) {
            if (!t->dirty[l])
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                d = xrealloc(d, cap * sizeof *d);
            }
            d[n++] = (dirty_t){k, t, l};
        }
    }
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < n;) {
        size_t m = n - at < PUT_ROWS ? n - at : PUT_ROWS;
        sqlx_stmt_t **st = &p->put_rows[m - 1];
        if (!*st) {
            char *q = sqlx_rows_sql(SQL_PUT_HEAD " ", (int)m, 12, ", ", SQL_PUT_TAIL);
            rc = store__prepare(p->db, q, st);
            free(q);
            if (rc < 0)
                break;
        }
        for (size_t r = 0; r < m; r++)
            row_bind(*st, (int)r * 12, d[at + r].tid, &d[at + r].t->cur[d[at + r].level]);
        int src = sqlx_step(*st);
        sqlx_reset(*st);
        if (src != SQLX_DONE) {
            rc = store__db_fail(p->db, "store pyramid rows");
            break;
        }
        for (size_t r = 0; r < m; r++)
            d[at + r].t->dirty[d[at + r].level] = 0;
        at += m;
    }
    free(d);
    return rc;
}

static int pyr_flush(struct store_pyr *p)
{
    const char *k;
    void *v;
    if (sqlx_backend(p->db) == SQLX_POSTGRESQL)
        return pyr_flush_rows(p);
    for (size_t i = 0; hmap_next(&p->terms, &i, &k, &v);) {
        int rc = term_flush(p, k, v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int store__pyr_flush(store_t *s)
{
    return s->pyr ? pyr_flush(s->pyr) : 0;
}

void store__pyr_forget(store_t *s)
{
    if (s->pyr)
        pyr_forget(s->pyr);
}

void store__pyr_close(store_t *s)
{
    pyr_free(s->pyr);
    s->pyr = NULL;
}

/* ---- Reads ---- */

int store_pyramid_read(store_t *s, const char *terminal_id, int level, int64_t from_ns,
                       int64_t to_ns, int (*cb)(void *ud, const store_pyr_row_t *r), void *ud)
{
    if (level < 0 || level >= STORE_PYR_LEVELS || from_ns >= to_ns || !terminal_id)
        return GS_EINVAL;
    sqlx_stmt_t *st = NULL, *lst = NULL, *fst = NULL;
    store_chan_t layout[STORE_MAX_CHANNELS];
    int nlayout = 0, have_layout = 0;
    uint64_t layout_lo = 0, layout_hi = 0;
    int rc = store__prepare(s->db, SQL_RANGE, &st);
    if (rc == 0)
        rc = store__prepare(s->db, SQL_LAYOUT, &lst);
    if (rc == 0)
        rc = store__prepare(s->db, SQL_FIRST_LAYOUT, &fst);
    if (rc < 0)
        goto fail;
    int64_t w = widths_s[level] * NS;
    sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_int64(st, 2, level);
    sqlx_bind_int64(st, 3, floor_div(from_ns, w) * w);
    sqlx_bind_int64(st, 4, to_ns);
    sqlx_bind_text(lst, 1, terminal_id, -1);
    sqlx_bind_text(fst, 1, terminal_id, -1);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_pyr_row_t r;
        if (row_from(st, &r) < 0 || r.n == 0)
            continue; /* a damaged row is shown as a gap */
        if (!have_layout || r.seq_last < layout_lo || r.seq_last >= layout_hi) {
            /* the layout in force at the bucket's last block, kept for the seqs it covers: one
             * probe per change of layout in the range, not one per row */
            sqlx_bind_int64(lst, 2, (int64_t)r.seq_last);
            int lrc = sqlx_step(lst);
            nlayout = 0;
            layout_lo = 0;
            layout_hi = UINT64_MAX;
            if (lrc == SQLX_ROW) {
                const char *text = (const char *)sqlx_column_text(lst, 0);
                if (store__layout_decode(text, layout, &nlayout) < 0)
                    nlayout = 0;
                layout_lo = (uint64_t)sqlx_column_int64(lst, 1);
                if (sqlx_column_type(lst, 2) != SQLX_NULL)
                    layout_hi = (uint64_t)sqlx_column_int64(lst, 2);
            } else if (lrc == SQLX_DONE) {
                /* none at or before: no layout up to the first one after */
                sqlx_reset(lst);
                sqlx_bind_int64(fst, 2, (int64_t)r.seq_last);
                if (sqlx_step(fst) == SQLX_ROW && sqlx_column_type(fst, 0) != SQLX_NULL)
                    layout_hi = (uint64_t)sqlx_column_int64(fst, 0);
                sqlx_reset(fst);
            } else {
                rc = store__db_fail(s->db, "read layout");
                sqlx_reset(lst);
                goto fail;
            }
            sqlx_reset(lst);
            have_layout = 1;
        }
        r.nlayout = nlayout;
        r.layout = layout;
        rc = cb(ud, &r);
        if (rc != 0)
            goto fail;
    }
    if (src != SQLX_DONE)
        rc = store__db_fail(s->db, "read pyramid");
fail:
    sqlx_finalize(st);
    sqlx_finalize(lst);
    sqlx_finalize(fst);
    return rc;
}

#define SQL_FIRST                                                                                  \
    "SELECT t_first_ns FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2"                    \
    " ORDER BY bucket_ns LIMIT 1"

int store_pyramid_first(store_t *s, const char *terminal_id, int64_t first[STORE_PYR_LEVELS])
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, SQL_FIRST, &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id, -1);
    for (int l = 0; l < STORE_PYR_LEVELS; l++) {
        sqlx_bind_int64(st, 2, l);
        int src = sqlx_step(st);
        first[l] = src == SQLX_ROW ? sqlx_column_int64(st, 0) : INT64_MAX;
        sqlx_reset(st);
        if (src != SQLX_ROW && src != SQLX_DONE) {
            rc = store__db_fail(s->db, "pyramid first");
            break;
        }
    }
    sqlx_finalize(st);
    return rc;
}

int store_pyramid_put(store_t *s, const char *terminal_id, const store_pyr_row_t *rows, size_t n)
{
    if (!terminal_id)
        return GS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const store_pyr_row_t *r = &rows[i];
        if (r->level < 0 || r->level >= STORE_PYR_LEVELS || r->n == 0 ||
            r->channel_mask >> STORE_MAX_CHANNELS ||
            r->bucket_ns % (widths_s[r->level] * NS) != 0 || r->t_first_ns < r->bucket_ns ||
            r->t_end_ns < r->t_first_ns || r->sample_rate == 0)
            return GS_EINVAL;
    }
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, SQL_PUT, &st);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = row_put(s->db, st, terminal_id, &rows[i]);
    sqlx_finalize(st);
    return rc;
}

typedef struct {
    struct store_pyr *p;
    const char *tid;
    int64_t lo, hi;
    int64_t blocks;
    int rc;
} rebuild_t;

static int rebuild_block(void *ud, const store_block_t *b)
{
    rebuild_t *r = ud;
    if (!block_ok(b->t0_ns, b->sample_rate, b->channel_mask, b->nchannels, b->sample_fmt,
                  b->nsamples, b->data, b->data_len))
        return 0;
    r->rc = pyr_add(r->p, r->tid, b->seq, b->t0_ns, b->sample_rate, b->channel_mask, b->sample_fmt,
                    b->time_quality, b->nsamples, b->data, r->lo, r->hi);
    r->blocks++;
    return r->rc < 0 ? 1 : 0;
}

int store_pyramid_rebuild(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                          int64_t *blocks)
{
    if (!terminal_id || from_ns >= to_ns)
        return GS_EINVAL;
    /* whole buckets of the widest level, so that every level's buckets are rebuilt entirely */
    int64_t w = widths_s[STORE_PYR_LEVELS - 1] * NS;
    if (from_ns < 0)
        from_ns = 0;
    if (to_ns > T_MAX_NS)
        to_ns = T_MAX_NS;
    if (from_ns >= to_ns)
        return GS_EINVAL;
    int64_t lo = floor_div(from_ns, w) * w, hi = floor_div(to_ns - 1, w) * w + w;
    struct store_pyr *p = NULL;
    sqlx_stmt_t *del = NULL;
    rebuild_t r = {.tid = terminal_id, .lo = lo, .hi = hi};
    int rc = store_transaction(s, STORE_TX_BEGIN);
    if (rc < 0)
        return rc;
    rc = store__prepare(s->db, SQL_DELETE, &del);
    if (rc < 0)
        goto fail;
    for (int l = 0; l < STORE_PYR_LEVELS; l++) {
        sqlx_bind_text(del, 1, terminal_id, -1);
        sqlx_bind_int64(del, 2, l);
        sqlx_bind_int64(del, 3, lo);
        sqlx_bind_int64(del, 4, hi);
        int src = sqlx_step(del);
        sqlx_reset(del);
        if (src != SQLX_DONE) {
            rc = store__db_fail(s->db, "clear pyramid");
            goto fail;
        }
    }
    rc = pyr_new(s->db, &p);
    if (rc < 0)
        goto fail;
    r.p = p;
    rc = store_blocks_read(s, terminal_id, lo, hi, STORE_BLOCKS_WAVEFORM, rebuild_block, &r);
    if (rc == 1)
        rc = r.rc;
    if (rc < 0)
        goto fail;
    rc = pyr_flush(p);
    if (rc < 0)
        goto fail;
    sqlx_finalize(del);
    del = NULL;
    pyr_free(p);
    p = NULL;
    rc = store_transaction(s, STORE_TX_COMMIT);
    if (rc < 0)
        return rc;
    if (blocks)
        *blocks = r.blocks;
    return 0;
fail:
    sqlx_finalize(del);
    pyr_free(p);
    store_transaction(s, STORE_TX_ROLLBACK);
    return rc;
}

int store__explain(sqlx_t *db, const char *const *names, const char *const *sqls, int n, char *out,
                   size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return GS_EINVAL;
    out[0] = '\0';
    if (sqlx_backend(db) != SQLX_SQLITE)
        return GS_ENOTSUP; /* EXPLAIN QUERY PLAN is SQLite's */
    for (int i = 0; i < n; i++) {
        char sql[2048];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", sqls[i]);
        sqlx_stmt_t *st = NULL;
        int rc = store__prepare(db, sql, &st);
        if (rc < 0)
            return rc;
        /* placeholder values of the right types: text first, then integers */
        int np = sqlx_bind_parameter_count(st);
        for (int k = 1; k <= np; k++) {
            if (k == 1)
                sqlx_bind_text(st, k, "x", -1);
            else
                sqlx_bind_int64(st, k, 1);
        }
        int src;
        while ((src = sqlx_step(st)) == SQLX_ROW) {
            const char *d = (const char *)sqlx_column_text(st, 3);
            int w = snprintf(out + len, cap - len, "%s: %s\n", names[i], d ? d : "");
            if (w > 0)
                len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
        }
        sqlx_finalize(st);
        if (src != SQLX_DONE)
            return store__db_fail(db, "explain");
    }
    return 0;
}

int store_pyramid_plan(store_t *s, char *out, size_t cap)
{
    static const char *const names[] = {"pyramid_range",  "pyramid_get",         "pyramid_delete",
                                        "pyramid_layout", "pyramid_next_layout", "pyramid_first"};
    static const char *const sqls[] = {SQL_RANGE,  SQL_GET,          SQL_DELETE,
                                       SQL_LAYOUT, SQL_FIRST_LAYOUT, SQL_FIRST};
    return store__explain(s->db, names, sqls, 6, out, cap);
}
