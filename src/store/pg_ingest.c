/* The writer's block ingest on PostgreSQL: one transaction per batch, exactly-once by each
 * terminal's durable_seq under a row lock, multi-row INSERTs, ack only after COMMIT. Contract in
 * pg.h; reasons in docs/decisions/0007 sections 3 and 4.
 *
 * Crash safety (SIGKILL of the server process at any point): everything of a batch is in one
 * transaction, so PostgreSQL either has all of it (COMMIT done) or none of it (the connection
 * dropped before, the server rolls back). ACKs are built only from what this function returned
 * after COMMIT, so a kill between COMMIT and ACK leaves blocks stored but not acknowledged: the
 * terminal re-sends them and they are duplicates here (seq <= durable_seq, which moved in the
 * same transaction). Nothing acknowledged is ever missing, nothing is stored twice. The same
 * holds for a lost connection during COMMIT (outcome unknown: not acknowledged, re-sent,
 * deduplicated) and for two nodes writing one terminal at once (the row lock serialises them,
 * the second sees the first's durable_seq).
 */
#include "store/pg.h"

#include "core/err.h"
#include "core/util.h"
#include "wcodec/wcodec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_PER_INSERT 64 /* 64 x 12 parameters per statement: one round trip per 64 blocks */
#define IDS_PER_LOCK    64
#define BLOCK_COLS      13

struct store_pg_ingest {
    sqlx_t *db;
    sqlx_stmt_t *ins[ROWS_PER_INSERT + 1]; /* by number of rows, prepared when first needed */
    sqlx_stmt_t *lock[IDS_PER_LOCK + 1];   /* by number of ids */
    sqlx_stmt_t *ins_event, *upd_seq;
    int encode; /* encode blocks received raw (store_pg_ingest_set_encode) */
    /* Per item of the current batch, by the item's index: the bytes stored in blocks.data and
     * their codec (migration 11), decided once before the first attempt. */
    const uint8_t **rest;
    size_t *rest_len;
    uint8_t **own; /* encodings made here, freed after the batch */
    size_t cap;
};

/* Per terminal of one batch. */
typedef struct {
    const char *id;    /* borrowed from an item */
    int64_t committed; /* durable_seq read under the lock */
    int64_t mark;      /* highest seq stored or known duplicate so far in this batch */
    int poisoned;      /* a block of it failed in this batch */
} term_t;

static int cmp_term(const void *a, const void *b)
{
    return strcmp(((const term_t *)a)->id, ((const term_t *)b)->id);
}

static term_t *find_term(term_t *t, size_t nt, const char *id)
{
    term_t key = {.id = id};
    return bsearch(&key, t, nt, sizeof *t, cmp_term);
}

int store_pg_ingest_new(sqlx_t *db, store_pg_ingest_t **out)
{
    *out = NULL;
    if (sqlx_backend(db) != SQLX_POSTGRESQL)
        return GS_EINVAL;
    store_pg_ingest_t *g = xcalloc(1, sizeof *g);
    g->db = db;
    g->encode = 1;
    int rc = sqlx_prepare(db,
                          "INSERT INTO events(terminal_id, seq, trigger, trigger_ns, pretrigger,"
                          " value_permille, channel) VALUES(?, ?, ?, ?, ?, ?, ?)"
                          " ON CONFLICT DO NOTHING",
                          &g->ins_event);
    if (rc == 0)
        rc = sqlx_prepare(db,
                          "UPDATE terminals SET durable_seq = ?2 WHERE id = ?1 AND"
                          " durable_seq < ?2",
                          &g->upd_seq);
    if (rc < 0) {
        store_pg_ingest_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void store_pg_ingest_free(store_pg_ingest_t *g)
{
    if (!g)
        return;
    for (int i = 0; i <= ROWS_PER_INSERT; i++)
        sqlx_finalize(g->ins[i]);
    for (int i = 0; i <= IDS_PER_LOCK; i++)
        sqlx_finalize(g->lock[i]);
    sqlx_finalize(g->ins_event);
    sqlx_finalize(g->upd_seq);
    free(g->rest);
    free(g->rest_len);
    free(g->own);
    free(g);
}

static int get_insert(store_pg_ingest_t *g, int rows, sqlx_stmt_t **out)
{
    if (!g->ins[rows]) {
        char *sql = sqlx_rows_sql(
            "INSERT INTO blocks(terminal_id, seq, kind, t0_ns, sample_rate,"
            " channel_mask, nchannels, sample_fmt, time_quality, nsamples, data,"
            " received_ns, codec) VALUES ",
            rows, BLOCK_COLS, ", ", " ON CONFLICT DO NOTHING RETURNING terminal_id, seq");
        int rc = sqlx_prepare(g->db, sql, &g->ins[rows]);
        free(sql);
        if (rc < 0)
            return rc;
    }
    *out = g->ins[rows];
    return 0;
}

static int get_lock(store_pg_ingest_t *g, int ids, sqlx_stmt_t **out)
{
    if (!g->lock[ids]) {
        char *sql = sqlx_rows_sql("SELECT id, durable_seq FROM terminals WHERE id IN (", ids, 1,
                                  ", ", ") ORDER BY id FOR UPDATE");
        int rc = sqlx_prepare(g->db, sql, &g->lock[ids]);
        free(sql);
        if (rc < 0)
            return rc;
    }
    *out = g->lock[ids];
    return 0;
}

/* Locks the terminals' rows in id order and reads their durable_seq. */
static int lock_terminals(store_pg_ingest_t *g, term_t *t, size_t nt)
{
    for (size_t i = 0; i < nt; i += IDS_PER_LOCK) {
        int k = (int)(nt - i < IDS_PER_LOCK ? nt - i : IDS_PER_LOCK), rc;
        sqlx_stmt_t *st;
        if ((rc = get_lock(g, k, &st)) < 0)
            return rc;
        for (int j = 0; j < k; j++)
            if ((rc = sqlx_bind_text(st, j + 1, t[i + (size_t)j].id, -1)) < 0)
                return rc;
        while ((rc = sqlx_step(st)) == 1) {
            term_t *x = find_term(t, nt, sqlx_column_text(st, 0));
            if (x)
                x->committed = x->mark = sqlx_column_int64(st, 1);
        }
        sqlx_reset(st);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int bind_block(store_pg_ingest_t *g, sqlx_stmt_t *st, int base, size_t idx,
                      const store_item_t *it, int64_t received_ns)
{
    int rc = 0;
    rc |= sqlx_bind_text(st, base + 1, it->terminal_id, -1);
    rc |= sqlx_bind_int64(st, base + 2, (int64_t)it->seq);
    rc |= sqlx_bind_int64(st, base + 3, it->is_event ? 1 : 0);
    rc |= sqlx_bind_int64(st, base + 4, it->t0_ns);
    rc |= sqlx_bind_int64(st, base + 5, it->sample_rate);
    rc |= sqlx_bind_int64(st, base + 6, it->channel_mask);
    rc |= sqlx_bind_int64(st, base + 7, it->nchannels);
    rc |= sqlx_bind_int64(st, base + 8, it->sample_fmt);
    rc |= sqlx_bind_int64(st, base + 9, it->time_quality);
    rc |= sqlx_bind_int64(st, base + 10, it->nsamples);
    if (g->rest[idx])
        rc |= sqlx_bind_blob(st, base + 11, g->rest[idx], g->rest_len[idx]);
    else
        rc |= sqlx_bind_null(st, base + 11);
    rc |= sqlx_bind_int64(st, base + 12, received_ns);
    rc |= sqlx_bind_int64(st, base + 13, it->stored_codec);
    return rc ? GS_EINVAL : 0;
}

static int insert_event(store_pg_ingest_t *g, const store_item_t *it)
{
    sqlx_stmt_t *st = g->ins_event;
    sqlx_bind_text(st, 1, it->terminal_id, -1);
    sqlx_bind_int64(st, 2, (int64_t)it->seq);
    sqlx_bind_int64(st, 3, it->trigger);
    sqlx_bind_int64(st, 4, it->trigger_ns);
    sqlx_bind_int64(st, 5, it->pretrigger);
    sqlx_bind_int64(st, 6, it->value_permille);
    sqlx_bind_int64(st, 7, it->trigger_channel);
    int rc = sqlx_step(st);
    sqlx_reset(st);
    return rc;
}

/* Inserts the pending items items[pend[0..np)] (result 0 so far) in multi-row statements; an
 * item the unique key already had comes back as result 1. */
static int insert_fast(store_pg_ingest_t *g, store_item_t **items, const size_t *pend, size_t np,
                       int64_t received_ns)
{
    for (size_t i = 0; i < np; i += ROWS_PER_INSERT) {
        int k = (int)(np - i < ROWS_PER_INSERT ? np - i : ROWS_PER_INSERT), rc;
        sqlx_stmt_t *st;
        if ((rc = get_insert(g, k, &st)) < 0)
            return rc;
        for (int j = 0; j < k; j++) {
            size_t idx = pend[i + (size_t)j];
            if ((rc = bind_block(g, st, j * BLOCK_COLS, idx, items[idx], received_ns)) < 0)
                return rc;
            items[idx]->result = 1; /* until RETURNING names it */
        }
        while ((rc = sqlx_step(st)) == 1) {
            const char *tid = sqlx_column_text(st, 0);
            uint64_t seq = (uint64_t)sqlx_column_int64(st, 1);
            for (int j = 0; j < k; j++) {
                store_item_t *it = items[pend[i + (size_t)j]];
                if (it->seq == seq && strcmp(it->terminal_id, tid) == 0) {
                    it->result = 0;
                    break;
                }
            }
        }
        sqlx_reset(st);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < np; i++) {
        if (items[pend[i]]->result == 0 && items[pend[i]]->is_event) {
            int rc = insert_event(g, items[pend[i]]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* One block inside a savepoint: 0 stored, 1 duplicate by the unique key, < 0 refused (rolled
 * back to the savepoint, the transaction goes on), or a failure of the whole transaction (the
 * savepoint commands themselves failed): *fatal set. */
static int insert_one(store_pg_ingest_t *g, size_t idx, store_item_t *it, int64_t received_ns,
                      int *fatal)
{
    sqlx_stmt_t *st;
    int rc;
    *fatal = 0;
    if ((rc = sqlx_exec(g->db, "SAVEPOINT gs_block")) < 0 || (rc = get_insert(g, 1, &st)) < 0 ||
        (rc = bind_block(g, st, 0, idx, it, received_ns)) < 0) {
        *fatal = 1;
        return rc;
    }
    rc = sqlx_step(st);
    sqlx_reset(st);
    int stored = rc == 1;
    if (rc >= 0 && stored && it->is_event)
        rc = insert_event(g, it);
    if (rc < 0) {
        if (rc == GS_ECLOSED || rc == GS_EBUSY || rc == -ENOSPC ||
            sqlx_exec(g->db, "ROLLBACK TO gs_block") < 0)
            *fatal = 1;
        return rc;
    }
    if ((rc = sqlx_exec(g->db, "RELEASE gs_block")) < 0) {
        *fatal = 1;
        return rc;
    }
    return stored ? 0 : 1;
}

/* One attempt at the batch; slow = one savepoint per block. Returns 0 once committed, or the
 * error that sank the whole transaction (already rolled back). */
static int attempt(store_pg_ingest_t *g, store_item_t **items, size_t n, term_t *t, size_t nt,
                   int64_t received_ns, int slow, size_t *pend)
{
    size_t np = 0;
    int rc = sqlx_begin(g->db);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nt; i++) {
        t[i].committed = t[i].mark = 0;
        t[i].poisoned = 0;
    }
    if ((rc = lock_terminals(g, t, nt)) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        store_item_t *it = items[i];
        term_t *x = find_term(t, nt, it->terminal_id);
        if (x->poisoned) {
            it->result = GS_ESTATE; /* behind a refused block: see the contract in pg.h */
            continue;
        }
        if ((int64_t)it->seq <= x->mark) {
            it->result = 1; /* GSTP 7.3: not above the highest seq stored */
            continue;
        }
        it->result = 0;
        if (!slow) {
            x->mark = (int64_t)it->seq;
            pend[np++] = i;
            continue;
        }
        int fatal;
        rc = insert_one(g, i, it, received_ns, &fatal);
        if (fatal)
            goto fail;
        if (rc < 0) {
            it->result = rc;
            x->poisoned = 1;
        } else {
            it->result = rc;
            x->mark = (int64_t)it->seq;
        }
    }
    if (!slow && (rc = insert_fast(g, items, pend, np, received_ns)) < 0)
        goto fail;
    for (size_t i = 0; i < nt; i++) {
        if (t[i].mark <= t[i].committed)
            continue;
        sqlx_bind_text(g->upd_seq, 1, t[i].id, -1);
        sqlx_bind_int64(g->upd_seq, 2, t[i].mark);
        rc = sqlx_step(g->upd_seq);
        sqlx_reset(g->upd_seq);
        if (rc < 0)
            goto fail;
    }
    return sqlx_commit(g->db);
fail:
    sqlx_rollback(g->db);
    return rc;
}

void store_pg_ingest_set_encode(store_pg_ingest_t *g, int on)
{
    g->encode = on != 0;
}

/* What blocks.data holds for each item, as writer.c's block_bind_data decides on SQLite: the
 * segments as received (codec 1); else the raw samples encoded here when that is on, the shape
 * is one the codec takes and the result is smaller; else the raw samples (codec 0). Done before
 * BEGIN, once per batch: no encoding while the terminals' rows are locked, none again on a
 * retry. Sets it->stored_codec. */
static void at_rest(store_pg_ingest_t *g, store_item_t **items, size_t n)
{
    if (n > g->cap) {
        free(g->rest);
        free(g->rest_len);
        free(g->own);
        g->rest = xcalloc(n, sizeof *g->rest);
        g->rest_len = xcalloc(n, sizeof *g->rest_len);
        g->own = xcalloc(n, sizeof *g->own);
        g->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        store_item_t *it = items[i];
        g->own[i] = NULL;
        it->stored_raw_busy = 0;
        if (it->enc && (it->codec == WCODEC_ID || it->codec == WCODEC_ID_MODEL)) {
            g->rest[i] = it->enc;
            g->rest_len[i] = it->enc_len;
            it->stored_codec = it->codec;
            continue;
        }
        g->rest[i] = it->data;
        g->rest_len[i] = it->data_len;
        it->stored_codec = 0;
        int width = it->sample_fmt == 2 ? 4 : it->sample_fmt == 1 ? 2 : 0;
        if (!g->encode || !it->data || !width || it->nchannels < 1 ||
            it->nchannels > WCODEC_MAX_CHANNELS || it->nsamples < 1 ||
            it->nsamples > WCODEC_MAX_SETS ||
            it->data_len != (size_t)it->nsamples * it->nchannels * (size_t)width)
            continue;
        uint32_t period =
            it->nominal_hz ? (it->sample_rate + it->nominal_hz / 2) / it->nominal_hz : 0;
        size_t cap = wcodec_bound(it->nsamples, it->nchannels, it->sample_fmt), len = 0;
        uint8_t *out = xmalloc(cap ? cap : 1);
        if (wcodec_encode_block_as(WCODEC_ID_MODEL, it->data, it->nsamples, it->nchannels,
                                   it->sample_fmt, period, out, cap, &len) == WCODEC_OK &&
            len > 0 && len < it->data_len) {
            g->own[i] = out;
            g->rest[i] = out;
            g->rest_len[i] = len;
            it->stored_codec = WCODEC_ID_MODEL;
        } else {
            free(out);
        }
    }
}

int store_pg_ingest_blocks(store_pg_ingest_t *g, store_item_t **items, size_t n,
                           int64_t received_ns, store_pg_ack_t *acks, size_t *nacks)
{
    if (nacks)
        *nacks = 0;
    if (n == 0)
        return 0;
    term_t *t = xcalloc(n, sizeof *t);
    size_t *pend = xcalloc(n, sizeof *pend);
    at_rest(g, items, n);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++)
        t[nt++].id = items[i]->terminal_id;
    qsort(t, nt, sizeof *t, cmp_term);
    size_t u = 0;
    for (size_t i = 0; i < nt; i++)
        if (u == 0 || strcmp(t[u - 1].id, t[i].id) != 0)
            t[u++] = t[i];
    nt = u;

    int rc = attempt(g, items, n, t, nt, received_ns, 0, pend);
    if (rc < 0 && rc != GS_EBUSY && rc != GS_ECLOSED && rc != -ENOSPC && rc != GS_ENOMEM)
        rc = attempt(g, items, n, t, nt, received_ns, 1, pend); /* isolate the refused block */
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            items[i]->result = rc;
    } else if (acks && nacks) {
        for (size_t i = 0; i < nt; i++) {
            snprintf(acks[i].terminal_id, sizeof acks[i].terminal_id, "%s", t[i].id);
            acks[i].durable_seq =
                (uint64_t)(t[i].mark > t[i].committed ? t[i].mark : t[i].committed);
        }
        *nacks = nt;
    }
    for (size_t i = 0; i < n; i++) {
        free(g->own[i]);
        g->own[i] = NULL;
    }
    free(pend);
    free(t);
    return rc;
}
