/* The asynchronous writer: a thread with its own connection that commits queued items in
 * batched transactions and reports every batch through the done callback.
 *
 * Batching is what makes durable storage affordable: with synchronous=FULL each COMMIT costs an
 * fsync, so one transaction carries up to BATCH_MAX_ITEMS items or BATCH_MAX_BYTES of sample data.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "wcodec/wcodec.h"

#include <errno.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX_ITEMS 2000
#define BATCH_MAX_BYTES (16u << 20)
#define RETRY_ATTEMPTS  5        /* tries per batch during shutdown before its items are failed */
#define RETRY_BASE_MS   100      /* backoff doubles after each failed try ... */
#define RETRY_MAX_MS    5000     /* ... up to this */
#define POISON_MAX      64       /* terminals with a failed block remembered at once */
#define NA_I16          (-32768) /* status "not available" sentinels (GSTP_NA_I16 / GSTP_NA_U16) */
#define NA_U16          65535

store_item_t *store_item_new(int kind)
{
    store_item_t *it = xcalloc(1, sizeof *it);
    it->kind = kind;
    return it;
}

void store_item_free(store_item_t *it)
{
    if (!it)
        return;
    free(it->data);
    free(it->enc);
    if (it->acct) {
        sodium_memzero(it->acct, sizeof *it->acct); /* a password hash, a session hash */
        free(it->acct);
    }
    free(it);
}

/* ---- Statement helpers ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void bind_terminal(sqlx_stmt_t *st, int col, const store_item_t *it)
{
    sqlx_bind_text(st, col, it->terminal_id, (int)strnlen(it->terminal_id, sizeof it->terminal_id));
}

/* Status values equal to a GSTP "not available" sentinel are stored as NULL. */
static void bind_status_int(sqlx_stmt_t *st, int col, int v)
{
    if (v == NA_I16 || v == NA_U16)
        sqlx_bind_null(st, col);
    else
        sqlx_bind_int64(st, col, v);
}

/* Steps a bound writer statement and resets it. Returns 0 when it ran, 1 when it failed in a way
 * that concerns only this item (a constraint or a value SQLite refuses; SQLite then undoes just
 * that statement and the transaction stays usable; it->result is set), or GS_EDB when the
 * transaction itself failed (busy, I/O, disk full) and the batch must be retried. */
static int run_ret(store_t *s, sqlx_stmt_t *st, store_item_t *it, const char *what,
                   int64_t *returned);

static int run(store_t *s, sqlx_stmt_t *st, store_item_t *it, const char *what)
{
    return run_ret(s, st, it, what, NULL);
}

/* run() for an INSERT ... RETURNING id: *returned gets the id when a row was inserted, else
 * stays as it was. */
static int run_ret(store_t *s, sqlx_stmt_t *st, store_item_t *it, const char *what,
                   int64_t *returned)
{
    int src = sqlx_step(st);
    int rc = 0;
    if (src == SQLX_ROW && returned) {
        *returned = sqlx_column_int64(st, 0);
        src = SQLX_DONE;
    }
    if (src < 0 && s->pg) {
        /* PostgreSQL: the transaction is aborted whatever failed. A failure of the item's own
         * (a refused value: GS_EDB, GS_EEXISTS) is isolated by a slow attempt; the others
         * (busy, lost connection, disk full) retry the batch as they are. */
        if (src == GS_EDB || src == GS_EEXISTS) {
            if (s->pg_slow) {
                log_error(it->terminal_id, "%s: %s", what, sqlx_errmsg(s->wdb));
                it->result = GS_EDB;
                s->pg_item_failed = 1;
                rc = 1;
            } else {
                s->pg_want_slow = 1;
                rc = store__db_fail(s->wdb, what);
            }
        } else {
            rc = store__db_fail(s->wdb, what);
        }
        sqlx_reset(st);
        return rc;
    }
    if (src != SQLX_DONE) {
        /* SQLite tells a refused value apart from a failed transaction by its result code.
         * PostgreSQL aborts the transaction on any failure: the batch is retried and the item
         * that failed is skipped then (writer_pg_item_failed). */
        int primary = s->wlite ? sqlite3_errcode(s->wlite) & 0xff : 0;
        if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH ||
            primary == SQLITE_TOOBIG || primary == SQLITE_RANGE) {
            log_error(it->terminal_id, "%s: %s", what, sqlx_errmsg(s->wdb));
            it->result = GS_EDB;
            rc = 1;
        } else {
            rc = store__db_fail(s->wdb, what);
        }
    }
    sqlx_reset(st);
    return rc;
}

/* Remembers the highest seq of it->terminal_id in this batch (s->maxes has room for one entry
 * per item of the batch). */
static void note_seq(store_t *s, size_t *nmaxes, const store_item_t *it)
{
    for (size_t i = *nmaxes; i-- > 0;) {
        if (strncmp(s->maxes[i].terminal_id, it->terminal_id, sizeof it->terminal_id) == 0) {
            if (it->seq > s->maxes[i].seq)
                s->maxes[i].seq = it->seq;
            return;
        }
    }
    s->maxes[*nmaxes].terminal_id = it->terminal_id;
    s->maxes[*nmaxes].seq = it->seq;
    (*nmaxes)++;
}

/* ---- Items ---- */

/* ---- Poison: no gap may hide under durable_seq ----
 * If a block fails for a reason of its own (not the transaction), the blocks of the same terminal
 * behind it must not be stored either: durable_seq (and so the terminal's cumulative ACK and
 * resume point) would jump over the missing one. Such blocks fail too, until the terminal
 * re-sends from below the failed seq (which it does: the gateway closes its session). */

static uint64_t poison_get(const store_t *s, const char *tid)
{
    for (int i = 0; i < s->npoison; i++)
        if (strncmp(s->poison[i].terminal_id, tid, STORE_ID_MAX + 1) == 0)
            return s->poison[i].seq;
    return 0;
}

static void poison_set(store_t *s, const char *tid, uint64_t seq)
{
    for (int i = 0; i < s->npoison; i++) {
        if (strncmp(s->poison[i].terminal_id, tid, STORE_ID_MAX + 1) == 0) {
            if (seq < s->poison[i].seq)
                s->poison[i].seq = seq;
            return;
        }
    }
    if (s->npoison == POISON_MAX) {
        log_error(STORE_LOG_WHO, "too many terminals with failed blocks; forgetting %s",
                  s->poison[0].terminal_id);
        memmove(&s->poison[0], &s->poison[1], (POISON_MAX - 1) * sizeof s->poison[0]);
        s->npoison--;
    }
    snprintf(s->poison[s->npoison].terminal_id, sizeof s->poison[0].terminal_id, "%s", tid);
    s->poison[s->npoison].seq = seq;
    s->npoison++;
}

static void poison_clear(store_t *s, const char *tid)
{
    for (int i = 0; i < s->npoison; i++) {
        if (strncmp(s->poison[i].terminal_id, tid, STORE_ID_MAX + 1) == 0) {
            s->poison[i] = s->poison[--s->npoison];
            return;
        }
    }
}

static void forget_layouts(store_t *s)
{
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&s->layouts, &i, &k, &v);)
        free(v);
    hmap_free(&s->layouts);
    hmap_init(&s->layouts);
}

_Static_assert(sizeof(store_chan_t) == 8, "store_chan_t compared bytewise: no padding");

/* Keeps the block's channel layout (migration 7) when it differs from the one stored for the
 * terminal at that seq. Returns 0, or GS_EDB when the transaction failed. A layout the database
 * refuses for itself is logged and the block stays stored: its samples matter more. */
static int write_layout(store_t *s, store_item_t *it)
{
    struct store_layout_cache *c = hmap_get(&s->layouts, it->terminal_id);
    if (c && c->n == it->nlayout &&
        memcmp(c->ch, it->layout, (size_t)it->nlayout * sizeof it->layout[0]) == 0)
        return 0; /* the usual case: no formatting, no statement */
    char text[STORE__LAYOUT_TEXT_MAX];
    size_t n = store__layout_encode(it->layout, it->nlayout, text, sizeof text);
    if (n == 0)
        return 0;
    sqlx_stmt_t *st = s->ins_layout;
    bind_terminal(st, 1, it);
    sqlx_bind_int64(st, 2, (int64_t)it->seq);
    sqlx_bind_text(st, 3, text, (int)n);
    int result = it->result;
    int rc = run(s, st, it, "store channel layout");
    if (rc > 0) {
        it->result = result;
        return 0;
    }
    if (rc == 0) {
        if (!c) {
            c = xcalloc(1, sizeof *c);
            hmap_put(&s->layouts, it->terminal_id, c);
        }
        c->n = it->nlayout;
        memcpy(c->ch, it->layout, (size_t)it->nlayout * sizeof it->layout[0]);
    }
    return rc;
}

/* Binds a block's samples as stored at rest (migration 9): the bytes received encoded as they
 * came (codec 1 or 2); or the raw samples encoded here (codec 2, into *enc, which the
 * caller frees after the statement ran), or raw (codec 0) when encoding fails or is not smaller.
 * Returns the codec bound. */
static int block_bind_data(store_t *s, store_item_t *it, sqlx_stmt_t *st, int col, uint8_t **enc)
{
    *enc = NULL;
    it->stored_raw_busy = 0;
    if (it->enc && (it->codec == WCODEC_ID || it->codec == WCODEC_ID_MODEL)) {
        sqlx_bind_blob(st, col, it->enc, it->enc_len);
        return it->codec;
    }
    if (!it->data) {
        sqlx_bind_null(st, col);
        return 0;
    }
    int width = it->sample_fmt == 2 ? 4 : it->sample_fmt == 1 ? 2 : 0;
    pthread_mutex_lock(&s->mu);
    size_t behind = s->depth_bytes;
    pthread_mutex_unlock(&s->mu);
    if (behind > STORE_ENCODE_MAX_BACKLOG) {
        /* Behind: encoding costs writer time the queue does not have; raw is as good a copy. */
        it->stored_raw_busy = 1;
        width = 0;
    }
    if (width && it->nchannels >= 1 && it->nchannels <= WCODEC_MAX_CHANNELS && it->nsamples >= 1 &&
        it->nsamples <= WCODEC_MAX_SETS &&
        it->data_len == (size_t)it->nsamples * it->nchannels * (size_t)width) {
        uint32_t period =
            it->nominal_hz ? (it->sample_rate + it->nominal_hz / 2) / it->nominal_hz : 0;
        size_t cap = wcodec_bound(it->nsamples, it->nchannels, it->sample_fmt), len = 0;
        uint8_t *out = xmalloc(cap ? cap : 1);
        /* codec 2: codec 1 and the block model (protocol.md A.11), the smaller at rest */
        if (wcodec_encode_block_as(WCODEC_ID_MODEL, it->data, it->nsamples, it->nchannels,
                                   it->sample_fmt, period, out, cap, &len) == WCODEC_OK &&
            len > 0 && len < it->data_len) {
            *enc = out;
            sqlx_bind_blob(st, col, out, len);
            return WCODEC_ID_MODEL;
        }
        free(out);
    }
    sqlx_bind_blob(st, col, it->data, it->data_len);
    return 0;
}

/* ---- PostgreSQL: the batch's terminals locked, their durable_seq as the dedup mark ---- */

static int cmp_mark(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b); /* terminal_id is the first member */
}

/* The mark of a terminal of the batch (NULL: not among the locked ones, cannot happen for a
 * block of the batch). */
static int64_t *pg_mark(store_t *s, const char *tid)
{
    for (size_t i = 0; i < s->pg_nmarks; i++)
        if (strncmp(s->pg_marks[i].terminal_id, tid, STORE_ID_MAX + 1) == 0)
            return &s->pg_marks[i].mark;
    return NULL;
}

/* Whether the terminal of this mark has a row (pg_lock_batch found it). */
static int mark_found(store_t *s, const int64_t *mark)
{
    for (size_t i = 0; i < s->pg_nmarks; i++)
        if (&s->pg_marks[i].mark == mark)
            return s->pg_marks[i].found;
    return 0;
}

/* Binds the 13 columns of a block row from column base + 1 on (ins_block's order). */
static void bind_block_row(store_t *s, sqlx_stmt_t *st, int base, store_item_t *it, int64_t now)
{
    bind_terminal(st, base + 1, it);
    sqlx_bind_int64(st, base + 2, (int64_t)it->seq);
    sqlx_bind_int64(st, base + 3, it->is_event ? 1 : 0);
    sqlx_bind_int64(st, base + 4, it->t0_ns);
    sqlx_bind_int64(st, base + 5, it->sample_rate);
    sqlx_bind_int64(st, base + 6, it->channel_mask);
    sqlx_bind_int64(st, base + 7, it->nchannels);
    sqlx_bind_int64(st, base + 8, it->sample_fmt);
    sqlx_bind_int64(st, base + 9, it->time_quality);
    sqlx_bind_int64(st, base + 10, it->nsamples);
    uint8_t *enc = NULL; /* the writer's own encoding of a block received raw */
    int codec = it->stored_codec = block_bind_data(s, it, st, base + 11, &enc);
    free(enc); /* the seam copied it */
    sqlx_bind_int64(st, base + 12, now);
    sqlx_bind_int64(st, base + 13, codec);
}

#define BLOCK_COLS                                                                                 \
    "terminal_id, seq, kind, t0_ns, sample_rate, channel_mask, nchannels, sample_fmt,"             \
    " time_quality, nsamples, data, received_ns, codec"

/* PostgreSQL: inserts the attempt's new blocks (s->pg_pend) STORE__PG_ROWS to a statement, one
 * round trip per statement instead of one per block. A failure fails the attempt; the retry
 * then inserts block by block with a savepoint each (the refused one isolated). */
static int pg_flush_blocks(store_t *s, int64_t now)
{
    for (size_t at = 0; at < s->pg_npend;) {
        size_t k = s->pg_npend - at;
        if (k > STORE__PG_ROWS)
            k = STORE__PG_ROWS;
        sqlx_stmt_t **st = &s->pg_ins_rows[k - 1];
        if (!*st) {
            char *q = sqlx_rows_sql("INSERT INTO blocks(" BLOCK_COLS ") VALUES ", (int)k, 13, ", ",
                                    " ON CONFLICT DO NOTHING");
            int rc = store__prepare(s->wdb, q, st);
            free(q);
            if (rc < 0)
                return rc;
        }
        for (size_t r = 0; r < k; r++)
            bind_block_row(s, *st, (int)(r * 13), s->pg_pend[at + r], now);
        int src = sqlx_step(*st);
        sqlx_reset(*st);
        if (src < 0) {
            if (src == GS_EDB || src == GS_EEXISTS)
                s->pg_want_slow = 1;
            return store__db_fail(s->wdb, "store blocks");
        }
        at += k;
    }
    s->pg_npend = 0;
    return 0;
}

/* 1 if block (terminal, seq) is stored, 0 if not, < 0 on error. */
static int pg_block_exists(store_t *s, const store_item_t *it)
{
    int rc = 0;
    for (size_t i = 0; i < s->pg_npend; i++) /* new in this attempt, not inserted yet */
        if (s->pg_pend[i]->seq == it->seq &&
            strncmp(s->pg_pend[i]->terminal_id, it->terminal_id, sizeof it->terminal_id) == 0)
            return 1;
    if (!s->pg_has_block &&
        (rc = store__prepare(s->wdb, "SELECT 1 FROM blocks WHERE terminal_id = ?1 AND seq = ?2",
                             &s->pg_has_block)) < 0)
        return rc;
    bind_terminal(s->pg_has_block, 1, it);
    sqlx_bind_int64(s->pg_has_block, 2, (int64_t)it->seq);
    int src = sqlx_step(s->pg_has_block);
    sqlx_reset(s->pg_has_block);
    if (src < 0)
        return store__db_fail(s->wdb, "look up a block");
    return src == SQLX_ROW;
}

/* Locks the terminal rows of the batch's blocks (in id order: two nodes never wait on each
 * other in a cycle) and reads their durable_seq. A terminal without a row keeps mark 0: its
 * blocks are deduplicated by the unique key alone, as on SQLite. Terminal ids are
 * [A-Za-z0-9._-] (store.c valid_id; the gateway checks them at login), so the array literal
 * needs no quoting; an id with any other byte is left out of the lock (mark 0). */
static int pg_lock_batch(store_t *s, store_item_t *batch)
{
    size_t n = 0;
    for (store_item_t *it = batch; it; it = it->next)
        n += it->kind == STORE_ITEM_BLOCK;
    s->pg_nmarks = 0;
    if (n == 0)
        return 0;
    if (s->pg_marks_cap < n) {
        s->pg_marks = xrealloc(s->pg_marks, n * sizeof *s->pg_marks);
        s->pg_marks_cap = n;
    }
    for (store_item_t *it = batch; it; it = it->next) {
        if (it->kind != STORE_ITEM_BLOCK)
            continue;
        snprintf(s->pg_marks[s->pg_nmarks].terminal_id, STORE_ID_MAX + 1, "%.*s", STORE_ID_MAX,
                 it->terminal_id);
        s->pg_marks[s->pg_nmarks].found = 0;
        s->pg_marks[s->pg_nmarks++].mark = 0;
    }
    qsort(s->pg_marks, s->pg_nmarks, sizeof *s->pg_marks, cmp_mark);
    size_t u = 0;
    for (size_t i = 0; i < s->pg_nmarks; i++)
        if (u == 0 || strcmp(s->pg_marks[u - 1].terminal_id, s->pg_marks[i].terminal_id) != 0)
            s->pg_marks[u++] = s->pg_marks[i];
    s->pg_nmarks = u;
    buf_t arr = {0};
    buf_printf(&arr, "{");
    for (size_t i = 0; i < u; i++) {
        const char *id = s->pg_marks[i].terminal_id;
        if (strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            strlen(id))
            continue;
        buf_printf(&arr, "%s\"%s\"", arr.len > 1 ? "," : "", id);
    }
    buf_printf(&arr, "}");
    int rc = 0;
    if (!s->pg_lock &&
        (rc = store__prepare(s->wdb,
                             "SELECT id, durable_seq FROM terminals"
                             " WHERE id = ANY(CAST(?1 AS TEXT[])) ORDER BY id FOR UPDATE",
                             &s->pg_lock)) < 0)
        goto done;
    sqlx_bind_text(s->pg_lock, 1, arr.data, (ptrdiff_t)arr.len);
    int src;
    while ((src = sqlx_step(s->pg_lock)) == SQLX_ROW) {
        int64_t *m = pg_mark(s, sqlx_column_text(s->pg_lock, 0));
        if (m) {
            *m = sqlx_column_int64(s->pg_lock, 1);
            s->pg_marks[(size_t)((char *)m - (char *)&s->pg_marks[0].mark) / sizeof *s->pg_marks]
                .found = 1;
        }
    }
    sqlx_reset(s->pg_lock);
    if (src != SQLX_DONE)
        rc = store__db_fail(s->wdb, "lock terminals");
done:
    buf_free(&arr);
    return rc;
}

static int block_after_insert(store_t *s, store_item_t *it, size_t *nmaxes);

static int write_block(store_t *s, store_item_t *it, int64_t now, size_t *nmaxes)
{
    uint64_t poisoned = poison_get(s, it->terminal_id);
    if (poisoned && it->seq > poisoned) {
        it->result = GS_ESTATE; /* behind a failed block: see the poison comment */
        return 0;
    }
    int64_t *mark = s->pg ? pg_mark(s, it->terminal_id) : NULL;
    if (mark && ((int64_t)it->seq <= *mark || !mark_found(s, mark))) {
        /* PostgreSQL: the unique key there includes t0_ns (a partitioned table's keys hold its
         * partition key), so (terminal, seq) is checked here. A seq above the terminal's
         * durable_seq (its row locked by this transaction) and above this batch's earlier
         * blocks is new; one at or below is looked up (re-sent blocks, rare), and so is every
         * block of a terminal without a row (nothing locked, nothing to compare with). */
        int rc = pg_block_exists(s, it);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            it->result = 1;
            note_seq(s, nmaxes, it);
            return 0;
        }
    }
    if (mark && !s->pg_slow) {
        /* PostgreSQL, first attempt: new for sure (above), inserted with the batch's other
         * blocks in multi-row INSERTs before the commit (pg_flush_blocks); a refusal fails the
         * attempt and the slow retry takes the path below, one block at a time. */
        if (s->pg_npend == s->pg_pend_cap) {
            s->pg_pend_cap = s->pg_pend_cap ? 2 * s->pg_pend_cap : 64;
            s->pg_pend = xrealloc(s->pg_pend, s->pg_pend_cap * sizeof *s->pg_pend);
        }
        s->pg_pend[s->pg_npend++] = it;
        if ((int64_t)it->seq > *mark)
            *mark = (int64_t)it->seq;
        if (poisoned)
            poison_clear(s, it->terminal_id);
        return block_after_insert(s, it, nmaxes);
    }
    sqlx_stmt_t *st = s->ins_block;
    bind_block_row(s, st, 0, it, now);
    int rc = run(s, st, it, "store block");
    if (rc > 0)
        poison_set(s, it->terminal_id, it->seq);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (poisoned)
        poison_clear(s, it->terminal_id); /* re-sent from at or below the failed block */

    if (mark && sqlx_changes(s->wdb) > 0 && (int64_t)it->seq > *mark)
        *mark = (int64_t)it->seq;
    if (sqlx_changes(s->wdb) == 0) {
        it->result = 1; /* (terminal_id, seq) already stored: exactly-once */
        note_seq(s, nmaxes, it);
        return 0;
    }
    return block_after_insert(s, it, nmaxes);
}

/* What follows a new block in its transaction: its event row, layout, backlog entry, pyramid
 * and the batch's durable_seq. */
static int block_after_insert(store_t *s, store_item_t *it, size_t *nmaxes)
{
    sqlx_stmt_t *st;
    int rc;
    if (it->is_event) {
        st = s->ins_event;
        bind_terminal(st, 1, it);
        sqlx_bind_int64(st, 2, (int64_t)it->seq);
        sqlx_bind_int64(st, 3, it->trigger);
        sqlx_bind_int64(st, 4, it->trigger_ns);
        sqlx_bind_int64(st, 5, it->pretrigger);
        sqlx_bind_int64(st, 6, it->value_permille);
        sqlx_bind_int64(st, 7, it->trigger_channel);
        rc = run(s, st, it, "store event");
        if (rc > 0)
            poison_set(s, it->terminal_id, it->seq);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    if (it->result == 0 && it->nlayout > 0) {
        rc = write_layout(s, it);
        if (rc < 0)
            return rc;
    }
    if (it->result == 0 && it->ana_pending && (rc = store__pending_note(s, it)) < 0)
        return rc; /* the analysis backlog, in the block's transaction (backlog.c) */
    if (it->result == 0 && (rc = store__pyr_block(s, it)) < 0) /* new blocks only */
        return rc;
    note_seq(s, nmaxes, it);
    return 0;
}

static int write_status(store_t *s, store_item_t *it, int64_t now)
{
    sqlx_stmt_t *st = s->ins_status;
    bind_terminal(st, 1, it);
    sqlx_bind_int64(st, 2, it->time_ns);
    sqlx_bind_int64(st, 3, now);
    bind_status_int(st, 4, it->rsrp_dbm);
    bind_status_int(st, 5, it->rssi_dbm);
    bind_status_int(st, 6, it->csq);
    bind_status_int(st, 7, it->supply_mv);
    bind_status_int(st, 8, it->temp_c10);
    sqlx_bind_int64(st, 9, it->uptime_s);
    bind_status_int(st, 10, it->gps_fix);
    bind_status_int(st, 11, it->gps_sats);
    sqlx_bind_int64(st, 12, it->time_quality);
    bind_status_int(st, 13, it->buffer_permille);
    sqlx_bind_int64(st, 14, it->buffered_blocks);
    int rc = run(s, st, it, "store status");
    return rc < 0 ? rc : 0;
}

static int write_session_open(store_t *s, store_item_t *it)
{
    sqlx_stmt_t *st = s->ins_session;
    sqlx_bind_int64(st, 1, (int64_t)it->cookie);
    bind_terminal(st, 2, it);
    sqlx_bind_text(st, 3, it->remote, (int)strnlen(it->remote, sizeof it->remote));
    sqlx_bind_int64(st, 4, it->when_ns);
    int rc = run(s, st, it, "store session open");
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (sqlx_changes(s->wdb) == 0)
        it->result = 1; /* this session id is already recorded */
    return 0;
}

static int write_session_close(store_t *s, store_item_t *it)
{
    sqlx_stmt_t *st = s->upd_session;
    sqlx_bind_int64(st, 1, (int64_t)it->cookie);
    sqlx_bind_int64(st, 2, it->when_ns);
    sqlx_bind_text(st, 3, it->reason, (int)strnlen(it->reason, sizeof it->reason));
    sqlx_bind_int64(st, 4, it->frames);
    sqlx_bind_int64(st, 5, it->bytes);
    sqlx_bind_int64(st, 6, it->blocks);
    int rc = run(s, st, it, "store session close");
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (sqlx_changes(s->wdb) == 0)
        it->result = GS_ENOTFOUND; /* no SESSION_OPEN was stored for this id */
    return 0;
}

static int write_command_update(store_t *s, store_item_t *it, int64_t now)
{
    sqlx_stmt_t *st = s->upd_command;
    store__bind_command_update(st, it->cmd_id, it->cmd_state, now, it->cmd_result_status, it->data,
                               it->data_len);
    int rc = run(s, st, it, "store command update");
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (sqlx_changes(s->wdb) == 0)
        it->result = GS_ESTATE; /* already final, or removed with its terminal */
    return 0;
}

static int write_pq_event(store_t *s, store_item_t *it, int64_t now)
{
    sqlx_stmt_t *st = s->ins_pq_event;
    bind_terminal(st, 1, it);
    sqlx_bind_text(st, 2, it->reason, (int)strnlen(it->reason, sizeof it->reason));
    sqlx_bind_int64(st, 3, it->ev_start_ns);
    sqlx_bind_int64(st, 4, it->ev_duration_ns);
    sqlx_bind_double(st, 5, it->ev_extreme);
    sqlx_bind_double(st, 6, it->ev_extreme_pct);
    sqlx_bind_double(st, 7, it->ev_reference);
    sqlx_bind_int64(st, 8, it->ev_channels);
    sqlx_bind_int64(st, 9, it->ev_worst_channel);
    sqlx_bind_int64(st, 10, it->ev_flags);
    sqlx_bind_int64(st, 11, now);
    /* Names only with the list: a NULL pair is what an event from before migration 5 has. Bound
     * every time, because a reset statement keeps the previous item's (freed) bindings. */
    if (it->data) {
        sqlx_bind_text(st, 12, (const char *)it->data, (int)it->data_len);
        sqlx_bind_text(st, 13, it->ev_worst_name,
                       (int)strnlen(it->ev_worst_name, sizeof it->ev_worst_name));
    } else {
        sqlx_bind_null(st, 12);
        sqlx_bind_null(st, 13);
    }
    int64_t id = 0;
    int rc = run_ret(s, st, it, "store voltage event", &id);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (id == 0)
        it->result = 1; /* already stored (no row returned) */
    else
        it->ev_id = id;
    return 0;
}

static int write_measurement(store_t *s, store_item_t *it)
{
    sqlx_stmt_t *st = s->ins_measurement;
    bind_terminal(st, 1, it);
    sqlx_bind_text(st, 2, it->reason, (int)strnlen(it->reason, sizeof it->reason));
    sqlx_bind_int64(st, 3, it->m_start_ns);
    sqlx_bind_int64(st, 4, it->m_end_ns);
    sqlx_bind_int64(st, 5, it->m_flags);
    sqlx_bind_int64(st, 6, it->m_count);
    sqlx_bind_text(st, 7, it->data ? (const char *)it->data : "{}",
                   it->data ? (int)it->data_len : 2);
    int rc = run(s, st, it, "store measurement");
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (sqlx_changes(s->wdb) == 0)
        it->result = 1;
    return 0;
}

/* A command created for the server's loop thread (which never writes itself). The claim is
 * taken only now, inside a transaction that holds the write lock, so a creation the loop gave up
 * on while the database was locked (store_item_cancel) is never written behind its back. A batch
 * that is rolled back releases its claims (release_claims), so the loop can still cancel while
 * the database keeps failing. */
static int write_command_create(store_t *s, store_item_t *it, int64_t now)
{
    /* PostgreSQL takes no lock at BEGIN: take the one the INSERT needs before claiming, so that
     * a writer waiting for it has not claimed (what SQLite's BEGIN IMMEDIATE gives). */
    if (s->pg && sqlx_exec(s->wdb, "LOCK TABLE commands IN ROW EXCLUSIVE MODE") < 0)
        return store__db_fail(s->wdb, "lock commands");
    pthread_mutex_lock(&s->mu);
    int cancelled = it->cmd_claim == 2;
    if (!cancelled)
        it->cmd_claim = 1;
    pthread_mutex_unlock(&s->mu);
    if (cancelled) {
        it->result = GS_ETIMEOUT;
        return 0;
    }
    if (it->data_len > STORE_ARGS_MAX) {
        it->result = GS_ERANGE;
        return 0;
    }
    int64_t id = 0;
    int rc = store__command_create(s->wdb, s->ins_command, it->terminal_id, it->cmd_verb, it->data,
                                   it->data_len, it->when_ns ? it->when_ns : now, it->cmd_ttl_ns,
                                   it->cmd_max_pending, &id);
    if (rc == GS_ENOTFOUND || rc == GS_ELIMIT) {
        it->result = rc;
        return 0;
    }
    if (rc < 0)
        return rc;
    it->cmd_id = id;
    return 0;
}

static int write_command_expire(store_t *s, store_item_t *it)
{
    sqlx_stmt_t *st = s->exp_commands;
    sqlx_bind_int64(st, 1, it->when_ns);
    int rc = run(s, st, it, "expire commands");
    if (rc != 0)
        return rc < 0 ? rc : 0;
    it->cmd_count = sqlx_changes(s->wdb);
    return 0;
}

/* After a rollback nothing of the batch was written: command creations it claimed become
 * cancellable again until the next attempt claims them. */
static void release_claims(store_t *s, store_item_t *batch)
{
    pthread_mutex_lock(&s->mu);
    for (store_item_t *it = batch; it; it = it->next)
        if (it->kind == STORE_ITEM_COMMAND_CREATE && it->cmd_claim == 1) {
            it->cmd_claim = 0;
            it->cmd_id = 0;
        }
    pthread_mutex_unlock(&s->mu);
}

/* One attempt at committing the batch in a single transaction. Returns 0 (committed; per-item
 * outcomes in it->result) or GS_EDB (rolled back). */
static int try_batch(store_t *s, store_item_t *batch)
{
    size_t nmaxes = 0;
    int64_t now = time_utc_ns();
    int rc;

    if (sqlx_begin(s->wdb) != 0) {
        rc = store__db_fail(s->wdb, "begin batch");
        goto fail;
    }
    s->pg_npend = 0;
    if (s->pg && (rc = pg_lock_batch(s, batch)) < 0)
        goto fail;
    for (store_item_t *it = batch; it; it = it->next) {
        it->result = 0;
        if (s->pg_slow) {
            s->pg_item_failed = 0;
            if ((rc = sqlx_exec(s->wdb, "SAVEPOINT gs_item")) < 0) {
                rc = store__db_fail(s->wdb, "savepoint");
                goto fail;
            }
        }
        switch (it->kind) {
        case STORE_ITEM_BLOCK:
            rc = write_block(s, it, now, &nmaxes);
            break;
        case STORE_ITEM_STATUS:
            rc = write_status(s, it, now);
            break;
        case STORE_ITEM_SESSION_OPEN:
            rc = write_session_open(s, it);
            break;
        case STORE_ITEM_SESSION_CLOSE:
            rc = write_session_close(s, it);
            break;
        case STORE_ITEM_COMMAND_UPDATE:
            rc = write_command_update(s, it, now);
            break;
        case STORE_ITEM_PQ_EVENT:
            rc = write_pq_event(s, it, now);
            break;
        case STORE_ITEM_MEASUREMENT:
            rc = write_measurement(s, it);
            break;
        case STORE_ITEM_COMMAND_CREATE:
            rc = write_command_create(s, it, now);
            break;
        case STORE_ITEM_COMMAND_EXPIRE:
            rc = write_command_expire(s, it);
            break;
        case STORE_ITEM_ACCOUNT:
            rc = it->acct ? store__account_write(s->wdb, it->acct, now, &it->result) : 0;
            if (!it->acct)
                it->result = GS_EINVAL;
            break;
        case STORE_ITEM_ANA_REBUILD:
            rc = it->rebuild ? store__rebuild_write(s->wdb, it->rebuild) : 0;
            if (!it->rebuild)
                it->result = GS_EINVAL;
            break;
        default:
            it->result = GS_EINVAL;
            rc = 0;
            break;
        }
        if (rc < 0)
            goto fail;
        if (s->pg_slow) {
            /* the item's own failure: undo just its statements, as SQLite does */
            if ((s->pg_item_failed && sqlx_exec(s->wdb, "ROLLBACK TO SAVEPOINT gs_item") < 0) ||
                sqlx_exec(s->wdb, "RELEASE SAVEPOINT gs_item") < 0) {
                rc = store__db_fail(s->wdb, "release savepoint");
                goto fail;
            }
        }
    }
    if (s->pg_npend && (rc = pg_flush_blocks(s, now)) < 0)
        goto fail;
    /* One durable_seq update per terminal per batch, never moving backwards. */
    for (size_t i = 0; i < nmaxes; i++) {
        sqlx_stmt_t *st = s->upd_durable;
        sqlx_bind_text(st, 1, s->maxes[i].terminal_id,
                       (int)strnlen(s->maxes[i].terminal_id, STORE_ID_MAX + 1));
        sqlx_bind_int64(st, 2, (int64_t)s->maxes[i].seq);
        int src = sqlx_step(st);
        sqlx_reset(st);
        if (src != SQLX_DONE) {
            rc = store__db_fail(s->wdb, "update durable_seq");
            goto fail;
        }
    }
    if ((rc = store__pyr_flush(s)) < 0)
        goto fail;
    if (sqlx_commit(s->wdb) != 0) {
        rc = store__db_fail(s->wdb, "commit batch");
        goto fail;
    }
    return 0;
fail:
    s->last_full = store__db_is_full(s->wdb); /* before ROLLBACK resets the error */
    if (!!sqlx_in_transaction(s->wdb))
        sqlx_rollback(s->wdb);
    /* layouts written in this attempt are gone with it: forget them (all: rollbacks are rare) */
    forget_layouts(s);
    store__pyr_forget(s);
    release_claims(s, batch);
    return rc;
}

/* Commits the batch, retrying with backoff for as long as it takes while the server runs: a
 * locked or full database must delay acknowledgements (the gateway applies backpressure), never
 * lose or skip data. Once stopping, it gives up after RETRY_ATTEMPTS so shutdown cannot hang;
 * then every item gets result < 0 (unacknowledged: the terminals re-send after restart). */
static void writer_reconnect(store_t *s);

static int write_batch(store_t *s, store_item_t *batch, size_t n)
{
    if (s->nmaxes_cap < n) {
        s->maxes = xrealloc(s->maxes, n * sizeof *s->maxes);
        s->nmaxes_cap = n;
    }
    int rc = 0, delay = RETRY_BASE_MS;
    for (int attempt = 1;; attempt++) {
        /* try_batch may poison and clear within an attempt that is then rolled back; the same
         * items produce the same outcome on the next attempt, so keep a copy to restore. */
        int npoison = s->npoison;
        memcpy(s->poison_save, s->poison, sizeof s->poison);
        s->last_full = 0;
        s->pg_slow = s->pg_want_slow;
        s->pg_want_slow = 0;
        rc = try_batch(s, batch);
        int quiet = store__disk_full_note(s, rc != 0 && s->last_full, rc == 0, n);
        s->pg_slow = 0;
        if (rc == 0)
            return 0;
        if (s->pg && sqlx_errcode(s->wdb) == GS_ECLOSED)
            writer_reconnect(s); /* PostgreSQL went away (restart, failover): a new connection */
        if (s->pg_want_slow)
            delay = RETRY_BASE_MS; /* not a busy database: isolate the refused item at once */
        s->npoison = npoison;
        memcpy(s->poison, s->poison_save, sizeof s->poison);
        pthread_mutex_lock(&s->mu);
        s->stats.retries++;
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        /* At shutdown: RETRY_ATTEMPTS for the first batch that fails, then one try each for
         * the rest (the cause is the same; a full disk must not make stopping take minutes). */
        if (stopping && (attempt >= RETRY_ATTEMPTS || s->stop_lost_batches > 0))
            break;
        if (!quiet && (attempt <= 3 || attempt % 20 == 0))
            log_warn(STORE_LOG_WHO, "batch of %zu items failed (attempt %d), retrying in %d ms", n,
                     attempt, delay);
        sleep_ms(delay);
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
    /* Counted, and logged once when the writer ends (writer_main): a full disk at shutdown
     * fails every queued batch, and a line per batch (let alone per item) helps nobody. */
    s->stop_lost_batches++;
    s->stop_lost_items += n;
    s->stop_lost_rc = rc;
    for (store_item_t *it = batch; it; it = it->next) {
        it->result = rc;
        if (it->kind == STORE_ITEM_BLOCK)
            s->stop_lost_blocks++;
    }
    return rc;
}

/* ---- Thread ---- */

static void *writer_main(void *arg)
{
    store_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->head)
            break; /* stopping and drained */

        /* Take a batch from the front of the FIFO; the first item is always taken, whatever its
         * size. */
        store_item_t *batch = s->head, *last = s->head;
        size_t n = 1, bytes = batch->data_len;
        /* A retention step is a transaction of its own (retention.c), never batched. */
        while (batch->kind != STORE_ITEM_RETENTION && last->next &&
               last->next->kind != STORE_ITEM_RETENTION && n < BATCH_MAX_ITEMS &&
               bytes + last->next->data_len <= BATCH_MAX_BYTES) {
            last = last->next;
            n++;
            bytes += last->data_len;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);

        if (batch->kind == STORE_ITEM_RETENTION) {
            store__retention_item(s, batch); /* requeues or frees it */
            pthread_mutex_lock(&s->mu);
            continue;
        }
        int rc = write_batch(s, batch, n);

        uint64_t stored = 0, dup = 0, errors = 0, compressed = 0, raw_busy = 0;
        for (store_item_t *it = batch; it; it = it->next) {
            if (it->result < 0 &&
                !((it->kind == STORE_ITEM_COMMAND_CREATE || it->kind == STORE_ITEM_ACCOUNT) &&
                  it->result != rc))
                errors++; /* (a refused creation or account change is an answer, not a store
                             error) */
            else if (it->kind == STORE_ITEM_BLOCK && it->result == 0) {
                stored++;
                compressed += it->stored_codec != 0;
                raw_busy += it->stored_raw_busy;
            } else if (it->kind == STORE_ITEM_BLOCK)
                dup++;
        }
        pthread_mutex_lock(&s->mu);
        s->depth_items -= n;
        s->depth_bytes -= bytes;
        if (rc == 0)
            s->stats.batches++;
        s->stats.items += n;
        s->stats.blocks_stored += stored;
        s->stats.blocks_duplicate += dup;
        s->stats.blocks_compressed += compressed;
        s->stats.blocks_raw_busy += raw_busy;
        s->stats.errors += errors;
        pthread_mutex_unlock(&s->mu);

        /* Items with their own notify leave the batch here (store.h). */
        store_item_t **pp = &batch;
        while (*pp) {
            store_item_t *it = *pp;
            if (it->notify) {
                *pp = it->next;
                it->next = NULL;
                it->notify(it, it->notify_ud);
            } else {
                pp = &it->next;
            }
        }
        if (!batch) {
            /* nothing left for the done callback */
        } else if (s->done_cb) {
            s->done_cb(batch, s->done_ud);
        } else {
            while (batch) {
                store_item_t *next = batch->next;
                store_item_free(batch);
                batch = next;
            }
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->stop_lost_items)
        log_error(STORE_LOG_WHO,
                  "shutdown: %llu items (%llu blocks) in %llu batches not stored: %s; nothing of "
                  "them was acknowledged, the terminals re-send their blocks at the next session",
                  (unsigned long long)s->stop_lost_items, (unsigned long long)s->stop_lost_blocks,
                  (unsigned long long)s->stop_lost_batches,
                  s->last_full ? "the disk is full" : err_str(s->stop_lost_rc));
    s->stop_lost_items = s->stop_lost_blocks = s->stop_lost_batches = 0;
    store__quiet_full = 0;
    return NULL;
}

/* The writer's prepared statements, on wdb. */
static int writer_prepare(store_t *s)
{
    int rc = 0;
    struct {
        sqlx_stmt_t **st;
        const char *sql;
    } prep[] = {
        {&s->ins_block,
         s->pg ? "INSERT INTO blocks(terminal_id, seq, kind, t0_ns, sample_rate,"
                 " channel_mask, nchannels, sample_fmt, time_quality, nsamples, data,"
                 " received_ns, codec)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                 " ON CONFLICT DO NOTHING"
               : "INSERT OR IGNORE INTO blocks(terminal_id, seq, kind, t0_ns, sample_rate,"
                 " channel_mask, nchannels, sample_fmt, time_quality, nsamples, data,"
                 " received_ns, codec)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"},
        {&s->ins_event, "INSERT INTO events(terminal_id, seq, trigger, trigger_ns,"
                        " pretrigger, value_permille, channel) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        " ON CONFLICT DO NOTHING"},
        {&s->upd_durable,
         "UPDATE terminals SET durable_seq = ?2 WHERE id = ?1 AND durable_seq < ?2"},
        {&s->ins_status, "INSERT INTO status(terminal_id, time_ns, received_ns, rsrp_dbm, rssi_dbm,"
                         " csq, supply_mv, temp_c10, uptime_s, gps_fix, gps_sats, time_quality,"
                         " buffer_permille, buffered_blocks)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"},
        {&s->ins_session, "INSERT INTO sessions(session_id, terminal_id, remote,"
                          " opened_ns) VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"},
        {&s->upd_command, STORE__SQL_COMMAND_UPDATE},
        {&s->upd_session, "UPDATE sessions SET closed_ns = ?2, close_reason = ?3, frames = ?4,"
                          " bytes = ?5, blocks = ?6 WHERE session_id = ?1"},
        {&s->ins_pq_event,
         "INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, extreme,"
         " extreme_pct, reference, channels, worst_channel, flags, detected_ns, channel_names,"
         " worst_channel_name) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
         " ON CONFLICT DO NOTHING RETURNING id"},
        {&s->ins_measurement,
         /* An interval reported twice (a restart inside it, each run's partial value): keep
          * the one that aggregates more values. */
         "INSERT INTO measurements(terminal_id, interval, t_start_ns, t_end_ns, flags, count,"
         " data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
         " ON CONFLICT(terminal_id, interval, t_end_ns) DO UPDATE SET"
         " t_start_ns = excluded.t_start_ns, flags = excluded.flags, count = excluded.count,"
         " data = excluded.data WHERE excluded.count > measurements.count"},
        {&s->ins_command, STORE__SQL_COMMAND_CREATE},
        {&s->exp_commands, STORE__SQL_COMMAND_EXPIRE},
        {&s->ins_layout, STORE__SQL_LAYOUT_INSERT},
    };
    for (size_t i = 0; i < sizeof prep / sizeof prep[0]; i++) {
        rc = store__prepare(s->wdb, prep[i].sql, prep[i].st);
        if (rc < 0)
            goto fail;
    }
    return 0;
fail:
    return rc;
}

/* Finalizes the writer's statements (those of pyramid.c and backlog.c too). */
static void writer_finalize(store_t *s)
{
    sqlx_stmt_t **stmts[] = {
        &s->ins_block,    &s->ins_event,   &s->upd_durable,  &s->ins_status,      &s->ins_session,
        &s->upd_session,  &s->upd_command, &s->ins_pq_event, &s->ins_measurement, &s->ins_command,
        &s->exp_commands, &s->ins_layout,  &s->pg_lock,      &s->pg_has_block};
    for (int i = 0; i < STORE__PG_ROWS; i++) {
        sqlx_finalize(s->pg_ins_rows[i]);
        s->pg_ins_rows[i] = NULL;
    }
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlx_finalize(*stmts[i]);
        *stmts[i] = NULL;
    }
    sqlx_finalize(s->ins_pending); /* backlog.c */
    s->ins_pending = NULL;
    store__pyr_close(s); /* its statements are on wdb */
}

/* PostgreSQL lost the connection: a new one replaces it (the old one is kept, broken, when the
 * new one cannot be opened: the next attempt tries again). Layouts and the pyramid's cache go
 * with the old connection's transaction. */
static void writer_reconnect(store_t *s)
{
    char err[256];
    sqlx_t *db = NULL;
    sqlite3 *lite = NULL;
    if (store__conn_open(s, &db, &lite, err, sizeof err) < 0)
        return;
    writer_finalize(s);
    sqlx_close(s->wdb);
    s->wdb = db;
    forget_layouts(s);
    if (writer_prepare(s) < 0)
        log_error(STORE_LOG_WHO, "writer: cannot prepare its statements after reconnecting");
    else
        log_info(STORE_LOG_WHO, "writer: reconnected to PostgreSQL");
}

static void writer_close_db(store_t *s)
{
    writer_finalize(s);
    sqlx_close(s->wdb); /* a wrapped SQLite handle stays open: closed below */
    s->wdb = NULL;
    if (s->wlite && sqlite3_close(s->wlite) != 0)
        log_error(STORE_LOG_WHO, "close writer connection: %s", sqlite3_errmsg(s->wlite));
    s->wlite = NULL;
    free(s->maxes);
    s->maxes = NULL;
    free(s->pg_marks);
    s->pg_marks = NULL;
    free(s->pg_pend);
    s->pg_pend = NULL;
    s->pg_pend_cap = s->pg_npend = 0;
    s->pg_marks_cap = s->pg_nmarks = 0;
    forget_layouts(s);
    s->nmaxes_cap = 0;
}

int store_writer_start(store_t *s, store_done_cb cb, void *ud)
{
    char err[256];
    int rc;

    if (s->running || s->reader_only)
        return GS_ESTATE;
    rc = store__conn_open(s, &s->wdb, &s->wlite, err, sizeof err);
    if (rc < 0)
        goto fail;
    rc = writer_prepare(s);
    if (rc < 0)
        goto fail;
    s->done_cb = cb;
    s->done_ud = ud;
    pthread_mutex_lock(&s->mu);
    s->accepting = 1;
    s->stopping = 0;
    pthread_mutex_unlock(&s->mu);

    /* Signals belong to the loop thread, not to ours. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&s->thread, NULL, writer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        rc = -e;
        log_error(STORE_LOG_WHO, "cannot start writer thread: %s", err_str(rc));
        pthread_mutex_lock(&s->mu);
        s->accepting = 0;
        pthread_mutex_unlock(&s->mu);
        goto fail;
    }
    s->running = 1;
    return 0;
fail:
    writer_close_db(s);
    return rc;
}

int store_submit(store_t *s, store_item_t *it)
{
    if (!it)
        return GS_EINVAL;
    it->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (!s->accepting) {
        pthread_mutex_unlock(&s->mu);
        store_item_free(it);
        return GS_ESTATE;
    }
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->depth_items++;
    s->depth_bytes += it->data_len;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int store_item_cancel(store_t *s, store_item_t *it)
{
    pthread_mutex_lock(&s->mu);
    int rc = it->cmd_claim == 0 ? 0 : GS_ESTATE;
    if (rc == 0)
        it->cmd_claim = 2;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void store_queue_depth(store_t *s, size_t *items, size_t *bytes)
{
    pthread_mutex_lock(&s->mu);
    if (items)
        *items = s->depth_items;
    if (bytes)
        *bytes = s->depth_bytes;
    pthread_mutex_unlock(&s->mu);
}

void store_writer_stats(store_t *s, store_writer_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

void store_writer_stop(store_t *s)
{
    if (!s || !s->running)
        return;
    pthread_mutex_lock(&s->mu);
    s->accepting = 0;
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->running = 0;
    writer_close_db(s);
}
