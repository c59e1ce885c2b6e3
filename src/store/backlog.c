/* The analysis backlog (table ana_pending) and rebuilds: the atomic replacement of a terminal's
 * events and aggregates by a new analysis of its stored blocks. Contract in store.h, "Analysis
 * backlog and rebuilds". */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floor division: the unit of a time before 1970 still starts at a multiple of the unit. */
static int64_t unit_of(int64_t t)
{
    int64_t u = t / STORE_ANA_UNIT_NS;
    if (t % STORE_ANA_UNIT_NS < 0)
        u--;
    return u * STORE_ANA_UNIT_NS;
}

#define SQL_PENDING_NOTE                                                                           \
    "INSERT INTO ana_pending(terminal_id, unit_start_ns, first_seq, last_seq, blocks, captures,"   \
    " signal_ns, restarts) VALUES(?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)"                                 \
    " ON CONFLICT(terminal_id, unit_start_ns) DO UPDATE SET"                                       \
    " first_seq = CASE WHEN excluded.first_seq < ana_pending.first_seq"                            \
    " THEN excluded.first_seq ELSE ana_pending.first_seq END,"                                     \
    " last_seq = CASE WHEN excluded.last_seq > ana_pending.last_seq"                               \
    " THEN excluded.last_seq ELSE ana_pending.last_seq END,"                                       \
    " blocks = ana_pending.blocks + excluded.blocks,"                                              \
    " captures = ana_pending.captures + excluded.captures,"                                        \
    " signal_ns = ana_pending.signal_ns + excluded.signal_ns,"                                     \
    " restarts = ana_pending.restarts + excluded.restarts"

/* Adds (seq, counts) to the terminal's row of the unit holding t0. */
static int note(store_t *s, const char *tid, int64_t t0, uint64_t seq, int blocks, int captures,
                int64_t signal_ns, int restarts)
{
    if (!s->ins_pending && store__prepare(s->wdb, SQL_PENDING_NOTE, &s->ins_pending) < 0)
        return GS_EDB;
    sqlx_stmt_t *st = s->ins_pending;
    sqlx_bind_text(st, 1, tid, (int)strnlen(tid, STORE_ID_MAX + 1));
    sqlx_bind_int64(st, 2, unit_of(t0));
    sqlx_bind_int64(st, 3, (int64_t)seq);
    sqlx_bind_int64(st, 4, blocks);
    sqlx_bind_int64(st, 5, captures);
    sqlx_bind_int64(st, 6, signal_ns);
    sqlx_bind_int64(st, 7, restarts);
    int src = sqlx_step(st);
    sqlx_reset(st);
    if (src != SQLX_DONE)
        return store__db_fail(s->wdb, "note analysis backlog");
    return 0;
}

int store__pending_note(store_t *s, store_item_t *it)
{
    int rc;
    if (it->ana_pending & STORE_ANA_SKIPPED) {
        int64_t dur =
            it->sample_rate ? (int64_t)it->nsamples * 1000000000LL / (int64_t)it->sample_rate : 0;
        rc =
            note(s, it->terminal_id, it->t0_ns, it->seq, it->is_event ? 0 : 1, it->is_event ? 1 : 0,
                 it->is_event ? 0 : dur, (it->ana_pending & STORE_ANA_RESTART) ? 1 : 0);
    } else {
        rc = note(s, it->terminal_id, it->t0_ns, it->seq, 0, 0, 0, 1);
    }
    if (rc < 0 || !(it->ana_pending & STORE_ANA_RESTART))
        return rc;
    /* The live analysis restarts here: what it had in progress for the terminal's previous
     * block (a crash lost it, a flush stored it cut short) is in that block's unit. */
    sqlx_stmt_t *st = NULL;
    rc = store__prepare(s->wdb,
                        "SELECT t0_ns, seq FROM blocks WHERE terminal_id = ?1 AND seq < ?2"
                        " AND kind = 0 ORDER BY seq DESC LIMIT 1",
                        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, it->terminal_id, -1);
    sqlx_bind_int64(st, 2, (int64_t)it->seq);
    int src = sqlx_step(st);
    if (src == SQLX_ROW)
        rc = note(s, it->terminal_id, sqlx_column_int64(st, 0), (uint64_t)sqlx_column_int64(st, 1),
                  0, 0, 0, 1);
    else if (src != SQLX_DONE)
        rc = store__db_fail(s->wdb, "read previous block");
    sqlx_finalize(st);
    return rc;
}

int store_ana_pending_list(store_t *s, int limit, int (*cb)(void *ud, const store_ana_pending_t *p),
                           void *ud)
{
    if (limit < 1 || limit > 10000)
        return GS_EINVAL;
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT terminal_id, unit_start_ns, first_seq, last_seq, blocks,"
                            " captures, signal_ns, restarts FROM ana_pending"
                            " ORDER BY unit_start_ns, terminal_id LIMIT ?1",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, limit);
    for (;;) {
        int src = sqlx_step(st);
        if (src == SQLX_DONE)
            break;
        if (src != SQLX_ROW) {
            rc = store__db_fail(s->db, "list analysis backlog");
            goto done;
        }
        store_ana_pending_t p;
        memset(&p, 0, sizeof p);
        const char *tid = (const char *)sqlx_column_text(st, 0);
        snprintf(p.terminal_id, sizeof p.terminal_id, "%s", tid ? tid : "");
        p.unit_start_ns = sqlx_column_int64(st, 1);
        p.first_seq = (uint64_t)sqlx_column_int64(st, 2);
        p.last_seq = (uint64_t)sqlx_column_int64(st, 3);
        p.blocks = sqlx_column_int64(st, 4);
        p.captures = sqlx_column_int64(st, 5);
        p.signal_ns = sqlx_column_int64(st, 6);
        p.restarts = sqlx_column_int64(st, 7);
        rc = cb(ud, &p);
        if (rc != 0)
            goto done;
    }
    rc = 0;
done:
    sqlx_finalize(st);
    return rc;
}

int store_ana_backlog(store_t *s, int64_t *units, int64_t *blocks, double *seconds)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT count(*), coalesce(sum(blocks + captures), 0),"
                            " coalesce(sum(signal_ns), 0) FROM ana_pending",
                            &st);
    if (rc < 0)
        return rc;
    if (sqlx_step(st) != SQLX_ROW) {
        rc = store__db_fail(s->db, "read analysis backlog");
    } else {
        *units = sqlx_column_int64(st, 0);
        *blocks = sqlx_column_int64(st, 1);
        *seconds = (double)sqlx_column_int64(st, 2) / 1e9;
    }
    sqlx_finalize(st);
    return rc;
}

int store_last_block(store_t *s, const char *terminal_id, uint64_t *seq, int64_t *received_ns)
{
    sqlx_stmt_t *st = NULL;
    *seq = 0;
    *received_ns = 0;
    /* the (terminal_id, seq) index: one probe */
    int rc = store__prepare(s->db,
                            "SELECT seq, received_ns FROM blocks WHERE terminal_id = ?1"
                            " ORDER BY seq DESC LIMIT 1",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id, -1);
    int src = sqlx_step(st);
    if (src == SQLX_ROW) {
        *seq = (uint64_t)sqlx_column_int64(st, 0);
        *received_ns = sqlx_column_int64(st, 1);
    } else if (src != SQLX_DONE) {
        rc = store__db_fail(s->db, "read last block");
    }
    sqlx_finalize(st);
    return rc;
}

void store_rebuild_clear(store_rebuild_t *rb)
{
    for (size_t i = 0; i < rb->nmeas; i++)
        free(rb->meas[i].data);
    for (size_t i = 0; i < rb->nev; i++)
        free(rb->ev[i].channel_names);
    free(rb->meas);
    free(rb->ev);
    memset(rb, 0, sizeof *rb);
}

/* ---- the rebuild transaction ---- */

typedef struct {
    int64_t id;
    char kind[16];
    int64_t start_ns, end_ns;
    int matched;
} old_ev_t;

static int count_events(sqlx_t *db, const store_rebuild_t *rb, int64_t *n)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db,
                            "SELECT count(*) FROM pq_events WHERE terminal_id = ?1"
                            " AND start_ns >= ?2 AND start_ns < ?3",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, rb->terminal_id, -1);
    sqlx_bind_int64(st, 2, rb->from_ns);
    sqlx_bind_int64(st, 3, rb->to_ns);
    if (sqlx_step(st) == SQLX_ROW)
        *n = sqlx_column_int64(st, 0);
    else
        rc = store__db_fail(db, "count events");
    sqlx_finalize(st);
    return rc;
}

/* Steps a one-shot statement to its end; returns the rows changed or GS_EDB. */
static int step_done(sqlx_t *db, sqlx_stmt_t *st, const char *what)
{
    int src = sqlx_step(st);
    sqlx_reset(st);
    if (src != SQLX_DONE)
        return store__db_fail(db, what);
    return sqlx_changes(db);
}

static void bind_event_values(sqlx_stmt_t *st, const store_rb_event_t *e, int first)
{
    /* first: start, duration, extreme, extreme_pct, reference, channels, worst_channel, flags,
     * channel_names, worst_channel_name */
    sqlx_bind_int64(st, first, e->start_ns);
    sqlx_bind_int64(st, first + 1, e->duration_ns);
    sqlx_bind_double(st, first + 2, e->extreme);
    sqlx_bind_double(st, first + 3, e->extreme_pct);
    sqlx_bind_double(st, first + 4, e->reference);
    sqlx_bind_int64(st, first + 5, e->channels);
    sqlx_bind_int64(st, first + 6, e->worst_channel);
    sqlx_bind_int64(st, first + 7, e->flags);
    if (e->channel_names) {
        sqlx_bind_text(st, first + 8, e->channel_names, -1);
        sqlx_bind_text(st, first + 9, e->worst_name, -1);
    } else {
        sqlx_bind_null(st, first + 8);
        sqlx_bind_null(st, first + 9);
    }
}

static int rebuild_events(sqlx_t *db, store_rebuild_t *rb, int64_t now)
{
    sqlx_stmt_t *sel = NULL, *upd = NULL, *ins = NULL, *del = NULL;
    old_ev_t *old = NULL;
    size_t nold = 0, cap = 0;
    int rc = store__prepare(db,
                            "SELECT id, kind, start_ns, duration_ns FROM pq_events"
                            " WHERE terminal_id = ?1 AND start_ns >= ?2 AND start_ns <= ?3",
                            &sel);
    if (rc < 0)
        goto done;
    sqlx_bind_text(sel, 1, rb->terminal_id, -1);
    sqlx_bind_int64(sel, 2, rb->cover_from_ns);
    sqlx_bind_int64(sel, 3, rb->cover_to_ns);
    for (;;) {
        int src = sqlx_step(sel);
        if (src == SQLX_DONE)
            break;
        if (src != SQLX_ROW) {
            rc = store__db_fail(db, "read events to replace");
            goto done;
        }
        if (nold == cap) {
            cap = cap ? cap * 2 : 16;
            old = xrealloc(old, cap * sizeof *old);
        }
        old_ev_t *o = &old[nold++];
        memset(o, 0, sizeof *o);
        o->id = sqlx_column_int64(sel, 0);
        const char *k = (const char *)sqlx_column_text(sel, 1);
        snprintf(o->kind, sizeof o->kind, "%s", k ? k : "");
        o->start_ns = sqlx_column_int64(sel, 2);
        o->end_ns = o->start_ns + sqlx_column_int64(sel, 3);
    }
    if ((rc = store__prepare(db,
                             "UPDATE pq_events SET start_ns = ?2, duration_ns = ?3, extreme = ?4,"
                             " extreme_pct = ?5, reference = ?6, channels = ?7,"
                             " worst_channel = ?8, flags = ?9, channel_names = ?10,"
                             " worst_channel_name = ?11 WHERE id = ?1",
                             &upd)) < 0 ||
        (rc = store__prepare(db,
                             "INSERT INTO pq_events(terminal_id, kind, start_ns,"
                             " duration_ns, extreme, extreme_pct, reference, channels,"
                             " worst_channel, flags, channel_names, worst_channel_name,"
                             " detected_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                             " ?12, ?13) ON CONFLICT DO NOTHING",
                             &ins)) < 0 ||
        (rc = store__prepare(db, "DELETE FROM pq_events WHERE id = ?1", &del)) < 0)
        goto done;
    /* Old rows that a new event does not take over go first, so that an update never collides
     * with an old row's (kind, start) on the UNIQUE key. */
    int *match = rb->nev ? xcalloc(rb->nev, sizeof *match) : NULL;
    for (size_t i = 0; i < rb->nev; i++) {
        const store_rb_event_t *e = &rb->ev[i];
        int64_t e_end = e->start_ns + e->duration_ns;
        int best = -1;
        for (size_t k = 0; k < nold && best < 0; k++)
            if (!old[k].matched && strcmp(old[k].kind, e->kind) == 0 &&
                old[k].start_ns == e->start_ns)
                best = (int)k;
        for (size_t k = 0; k < nold && best < 0; k++)
            if (!old[k].matched && strcmp(old[k].kind, e->kind) == 0 && old[k].start_ns <= e_end &&
                e->start_ns <= old[k].end_ns)
                best = (int)k;
        match[i] = best;
        if (best >= 0)
            old[best].matched = 1;
    }
    for (size_t k = 0; k < nold; k++) {
        if (old[k].matched)
            continue;
        sqlx_bind_int64(del, 1, old[k].id);
        if ((rc = step_done(db, del, "delete replaced event")) < 0)
            goto done_m;
        rb->events_deleted += rc;
    }
    for (size_t i = 0; i < rb->nev; i++) {
        const store_rb_event_t *e = &rb->ev[i];
        if (match[i] >= 0) {
            sqlx_bind_int64(upd, 1, old[match[i]].id);
            bind_event_values(upd, e, 2);
            if ((rc = step_done(db, upd, "update replaced event")) < 0)
                goto done_m;
            rb->events_updated += rc;
        } else {
            sqlx_bind_text(ins, 1, rb->terminal_id, -1);
            sqlx_bind_text(ins, 2, e->kind, -1);
            bind_event_values(ins, e, 3);
            sqlx_bind_int64(ins, 13, now);
            if ((rc = step_done(db, ins, "insert rebuilt event")) < 0)
                goto done_m;
            rb->events_inserted += rc;
        }
    }
    rc = 0;
done_m:
    free(match);
done:
    free(old);
    sqlx_finalize(sel);
    sqlx_finalize(upd);
    sqlx_finalize(ins);
    sqlx_finalize(del);
    return rc < 0 ? rc : 0;
}

static int rebuild_measurements(sqlx_t *db, store_rebuild_t *rb)
{
    sqlx_stmt_t *del = NULL, *ins = NULL;
    int rc = store__prepare(db,
                            "DELETE FROM measurements WHERE terminal_id = ?1"
                            " AND interval IN ('3s', '10s', '10min', '2h')"
                            " AND t_end_ns > ?2 AND t_end_ns <= ?3"
                            " AND t_start_ns >= ?4 AND t_end_ns <= ?5",
                            &del);
    if (rc < 0)
        goto done;
    sqlx_bind_text(del, 1, rb->terminal_id, -1);
    sqlx_bind_int64(del, 2, rb->from_ns);
    sqlx_bind_int64(del, 3, rb->to_ns);
    sqlx_bind_int64(del, 4, rb->cover_from_ns);
    sqlx_bind_int64(del, 5, rb->cover_to_ns);
    if ((rc = step_done(db, del, "delete replaced aggregates")) < 0)
        goto done;
    rb->meas_deleted = rc;
    /* the writer's rule for a repeated (terminal, interval, end): the larger count stays */
    rc = store__prepare(db,
                        "INSERT INTO measurements(terminal_id, interval, t_start_ns, t_end_ns,"
                        " flags, count, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        " ON CONFLICT(terminal_id, interval, t_end_ns) DO UPDATE SET"
                        " t_start_ns = excluded.t_start_ns, flags = excluded.flags,"
                        " count = excluded.count, data = excluded.data"
                        " WHERE excluded.count > measurements.count",
                        &ins);
    if (rc < 0)
        goto done;
    for (size_t i = 0; i < rb->nmeas; i++) {
        const store_rb_meas_t *m = &rb->meas[i];
        sqlx_bind_text(ins, 1, rb->terminal_id, -1);
        sqlx_bind_text(ins, 2, m->interval, -1);
        sqlx_bind_int64(ins, 3, m->t_start_ns);
        sqlx_bind_int64(ins, 4, m->t_end_ns);
        sqlx_bind_int64(ins, 5, m->flags);
        sqlx_bind_int64(ins, 6, m->count);
        sqlx_bind_text(ins, 7, m->data ? m->data : "{}", -1);
        if ((rc = step_done(db, ins, "insert rebuilt aggregate")) < 0)
            goto done;
        rb->meas_written += rc;
    }
    rc = 0;
done:
    sqlx_finalize(del);
    sqlx_finalize(ins);
    return rc < 0 ? rc : 0;
}

int store__rebuild_write(sqlx_t *db, store_rebuild_t *rb)
{
    int rc;
    rb->events_updated = rb->events_inserted = rb->events_deleted = 0;
    rb->meas_deleted = rb->meas_written = rb->pending_done = 0;
    if ((rc = count_events(db, rb, &rb->events_before)) < 0)
        return rc;
    if (rb->covered) {
        if ((rc = rebuild_events(db, rb, time_utc_ns())) < 0)
            return rc;
        if ((rc = rebuild_measurements(db, rb)) < 0)
            return rc;
    }
    sqlx_stmt_t *st = NULL;
    rc = store__prepare(db,
                        "DELETE FROM ana_pending WHERE terminal_id = ?1 AND unit_start_ns >= ?2"
                        " AND unit_start_ns < ?3 AND last_seq <= ?4",
                        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, rb->terminal_id, -1);
    sqlx_bind_int64(st, 2, rb->from_ns);
    sqlx_bind_int64(st, 3, rb->to_ns);
    sqlx_bind_int64(st, 4, (int64_t)rb->max_seq);
    rc = step_done(db, st, "clear analysis backlog");
    sqlx_finalize(st);
    if (rc < 0)
        return rc;
    rb->pending_done = rc;
    return count_events(db, rb, &rb->events_after);
}

int store_rebuild_apply(store_t *s, store_rebuild_t *rb)
{
    if (s->reader_only || s->sync_read_only)
        return GS_ESTATE;
    if (sqlx_begin(s->db) != 0) {
        int busy = sqlx_errcode(s->db) == GS_EBUSY;
        store__db_fail(s->db, "begin rebuild");
        return busy ? GS_EBUSY : GS_EDB;
    }
    int rc = store__rebuild_write(s->db, rb);
    if (rc == 0 && sqlx_commit(s->db) != 0)
        rc = store__db_fail(s->db, "commit rebuild");
    if (rc < 0 && !!sqlx_in_transaction(s->db))
        sqlx_rollback(s->db);
    return rc;
}
