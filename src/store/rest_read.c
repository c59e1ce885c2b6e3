/* Reads behind the REST lists (contract in store.h): terminals filtered and paged, commands
 * fleet-wide by state, status and session history, events with their acknowledgement. All run
 * on the calling (synchronous) connection; none writes. Lists page by keyset (an id bound), so a
 * page costs the same however deep it is.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

static void col_str(sqlx_stmt_t *st, int col, char *dst, size_t cap)
{
    const char *z = sqlx_column_text(st, col);
    size_t n = z ? (size_t)sqlx_column_bytes(st, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, z, n);
    dst[n] = 0;
}

static int64_t col_na(sqlx_stmt_t *st, int col)
{
    return sqlx_column_type(st, col) == SQLX_NULL ? STORE_NA : sqlx_column_int64(st, col);
}

static int clamp_limit(int limit)
{
    return limit < 1 ? 1 : limit > 10000 ? 10000 : limit;
}

/* ---- terminals ------------------------------------------------------------------------------ */

int store_terminal_query(store_t *s, const char *after, const char *search,
                         int (*cb)(void *ud, const store_terminal_t *t), void *ud)
{
    sqlx_stmt_t *st = NULL;
    /* instr / strpos on lower(): a literal substring (no LIKE wildcards to escape), ASCII case
     * folding. */
    int rc = store__prepare(
        s->db,
        sqlx_backend(s->db) == SQLX_POSTGRESQL
            ? "SELECT id, name, lat, lon, nominal_hz, vt_ratio, ct_ratio, created_ns,"
              " durable_seq, declared_v FROM terminals WHERE id > ?1"
              " AND (CAST(?2 AS TEXT) IS NULL OR strpos(lower(id), lower(?2)) > 0"
              " OR strpos(lower(name), lower(?2)) > 0) ORDER BY id"
            : "SELECT id, name, lat, lon, nominal_hz, vt_ratio, ct_ratio, created_ns,"
              " durable_seq, declared_v FROM terminals WHERE id > ?1"
              " AND (CAST(?2 AS TEXT) IS NULL OR instr(lower(id), lower(?2)) > 0"
              " OR instr(lower(name), lower(?2)) > 0) ORDER BY id",
        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, after ? after : "", -1);
    if (search && search[0])
        sqlx_bind_text(st, 2, search, -1);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_terminal_t t;
        memset(&t, 0, sizeof t);
        col_str(st, 0, t.id, sizeof t.id);
        col_str(st, 1, t.name, sizeof t.name);
        t.has_location =
            sqlx_column_type(st, 2) != SQLX_NULL && sqlx_column_type(st, 3) != SQLX_NULL;
        if (t.has_location) {
            t.lat = sqlx_column_double(st, 2);
            t.lon = sqlx_column_double(st, 3);
        }
        t.nominal_hz = (int)sqlx_column_int64(st, 4);
        t.vt_ratio = sqlx_column_double(st, 5);
        t.ct_ratio = sqlx_column_double(st, 6);
        t.created_ns = sqlx_column_int64(st, 7);
        t.durable_seq = (uint64_t)sqlx_column_int64(st, 8);
        t.declared_v = sqlx_column_type(st, 9) == SQLX_NULL ? 0 : sqlx_column_double(st, 9);
        if ((rc = cb(ud, &t)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "query terminals");
out:
    sqlx_finalize(st);
    return rc;
}

/* ---- commands ------------------------------------------------------------------------------- */

int store_command_query(store_t *s, const char *terminal_id, unsigned state_mask, int64_t from_ns,
                        int64_t to_ns, int64_t before_id, int limit,
                        int (*cb)(void *ud, const store_command_t *c), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc =
        store__prepare(s->db,
                       "SELECT id, terminal_id, verb, args, state, created_ns, updated_ns,"
                       " expires_ns, result_status, result FROM commands"
                       " WHERE (CAST(?1 AS TEXT) IS NULL OR terminal_id = ?1) AND (CAST(?2 AS "
                       "BIGINT) = 0 OR id < ?2)"
                       " AND (CAST(?3 AS BIGINT) = 0 OR ((CAST(1 AS BIGINT) << CAST(state AS INTEGER)) & ?3) <> 0)"
                       " AND created_ns >= ?5 AND created_ns < ?6"
                       " ORDER BY id DESC LIMIT ?4",
                       &st);
    if (rc < 0)
        return rc;
    if (terminal_id)
        sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_int64(st, 2, before_id);
    sqlx_bind_int64(st, 3, state_mask);
    sqlx_bind_int64(st, 4, clamp_limit(limit));
    sqlx_bind_int64(st, 5, from_ns);
    sqlx_bind_int64(st, 6, to_ns);
    /* Rows are copied out before any callback runs, so no read transaction stays open while the
     * caller works (see each_command in store.c). */
    store_command_t *rows = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        store_command_t *c = &rows[n];
        memset(c, 0, sizeof *c);
        c->id = sqlx_column_int64(st, 0);
        col_str(st, 1, c->terminal_id, sizeof c->terminal_id);
        c->verb = (int)sqlx_column_int64(st, 2);
        c->state = (int)sqlx_column_int64(st, 4);
        c->created_ns = sqlx_column_int64(st, 5);
        c->updated_ns = sqlx_column_int64(st, 6);
        c->expires_ns = sqlx_column_int64(st, 7);
        c->result_status = (int)sqlx_column_int64(st, 8);
        int na = sqlx_column_bytes(st, 3), nr = sqlx_column_bytes(st, 9);
        if (na > STORE_ARGS_MAX || nr > STORE_ARGS_MAX) {
            rc = GS_EDB; /* not written by us: the insert bounds both */
            goto out;
        }
        if (na)
            memcpy(c->args, sqlx_column_blob(st, 3), (size_t)na);
        c->args_len = (size_t)na;
        if (nr)
            memcpy(c->result, sqlx_column_blob(st, 9), (size_t)nr);
        c->result_len = (size_t)nr;
        n++;
    }
    if (src != SQLX_DONE) {
        rc = store__db_fail(s->db, "query commands");
        goto out;
    }
    sqlx_finalize(st);
    st = NULL;
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(ud, &rows[i]);
out:
    free(rows);
    sqlx_finalize(st);
    return rc;
}

/* ---- status and sessions -------------------------------------------------------------------- */

int store_status_list(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                      int64_t before_id, int limit, int (*cb)(void *ud, const store_status_t *st),
                      void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT id, time_ns, received_ns, rsrp_dbm, rssi_dbm, csq, supply_mv,"
                            " temp_c10, uptime_s, gps_fix, gps_sats, time_quality,"
                            " buffer_permille, buffered_blocks FROM status"
                            " WHERE terminal_id = ?1 AND time_ns >= ?2 AND time_ns < ?3"
                            " AND (CAST(?4 AS BIGINT) = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id ? terminal_id : "", -1);
    sqlx_bind_int64(st, 2, from_ns);
    sqlx_bind_int64(st, 3, to_ns);
    sqlx_bind_int64(st, 4, before_id);
    sqlx_bind_int64(st, 5, clamp_limit(limit));
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_status_t r;
        r.id = sqlx_column_int64(st, 0);
        r.time_ns = sqlx_column_int64(st, 1);
        r.received_ns = sqlx_column_int64(st, 2);
        r.rsrp_dbm = col_na(st, 3);
        r.rssi_dbm = col_na(st, 4);
        r.csq = col_na(st, 5);
        r.supply_mv = col_na(st, 6);
        r.temp_c10 = col_na(st, 7);
        r.uptime_s = col_na(st, 8);
        r.gps_fix = col_na(st, 9);
        r.gps_sats = col_na(st, 10);
        r.time_quality = col_na(st, 11);
        r.buffer_permille = col_na(st, 12);
        r.buffered_blocks = col_na(st, 13);
        if ((rc = cb(ud, &r)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "list status");
out:
    sqlx_finalize(st);
    return rc;
}

int store_session_list(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                       int64_t before_id, int limit, int (*cb)(void *ud, const store_session_t *se),
                       void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT id, session_id, remote, opened_ns, closed_ns, close_reason,"
                            " frames, bytes, blocks FROM sessions"
                            " WHERE terminal_id = ?1 AND opened_ns >= ?2 AND opened_ns < ?3"
                            " AND (CAST(?4 AS BIGINT) = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id ? terminal_id : "", -1);
    sqlx_bind_int64(st, 2, from_ns);
    sqlx_bind_int64(st, 3, to_ns);
    sqlx_bind_int64(st, 4, before_id);
    sqlx_bind_int64(st, 5, clamp_limit(limit));
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_session_t r;
        memset(&r, 0, sizeof r);
        r.id = sqlx_column_int64(st, 0);
        r.session_id = sqlx_column_int64(st, 1);
        col_str(st, 2, r.remote, sizeof r.remote);
        r.opened_ns = sqlx_column_int64(st, 3);
        r.closed_ns = sqlx_column_int64(st, 4); /* NULL -> 0: open */
        col_str(st, 5, r.reason, sizeof r.reason);
        r.frames = col_na(st, 6);
        r.bytes = col_na(st, 7);
        r.blocks = col_na(st, 8);
        if ((rc = cb(ud, &r)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "list sessions");
out:
    sqlx_finalize(st);
    return rc;
}

/* ---- events --------------------------------------------------------------------------------- */

int store_pq_event_query(store_t *s, const store_pq_event_filter_t *f,
                         int (*cb)(void *ud, const store_pq_event_ack_t *e), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int64_t bstart = 0;
    int rc;
    if (f->id <= 0 && f->before_id > 0) {
        /* The keyset of the page's last event: (start, id) in the list's order. */
        if ((rc = store__prepare(s->db, "SELECT start_ns FROM pq_events WHERE id = ?1", &st)) < 0)
            return rc;
        sqlx_bind_int64(st, 1, f->before_id);
        int src = sqlx_step(st);
        rc = src == SQLX_ROW    ? 0
             : src == SQLX_DONE ? GS_ENOTFOUND
                                : store__db_fail(s->db, "event page");
        if (rc == 0)
            bstart = sqlx_column_int64(st, 0);
        sqlx_finalize(st);
        st = NULL;
        if (rc < 0)
            return rc;
    }
    rc = store__prepare(
        s->db,
        "SELECT id, terminal_id, kind, start_ns, duration_ns, detected_ns,"
        " extreme, extreme_pct, reference, channels, flags, worst_channel,"
        " channel_names, worst_channel_name, acked_by, acked_ns FROM pq_events"
        " WHERE (?1 > 0 AND id = ?1) OR (?1 <= 0"
        " AND (CAST(?2 AS TEXT) IS NULL OR terminal_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR kind "
        "= ?3)"
        " AND start_ns >= ?4 AND start_ns < ?5"
        " AND (CAST(?6 AS BIGINT) < 0 OR (?6 = 0 AND acked_ns IS NULL)"
        " OR (?6 = 1 AND acked_ns IS NOT NULL))"
        " AND (CAST(?7 AS BIGINT) = 0 OR start_ns < ?8 OR (start_ns = ?8 AND id < ?7)))"
        " ORDER BY start_ns DESC, id DESC LIMIT ?9",
        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, f->id);
    if (f->terminal_id)
        sqlx_bind_text(st, 2, f->terminal_id, -1);
    if (f->kind)
        sqlx_bind_text(st, 3, f->kind, -1);
    sqlx_bind_int64(st, 4, f->from_ns);
    sqlx_bind_int64(st, 5, f->to_ns);
    sqlx_bind_int64(st, 6, f->acked);
    sqlx_bind_int64(st, 7, f->before_id > 0 ? f->before_id : 0);
    sqlx_bind_int64(st, 8, bstart);
    sqlx_bind_int64(st, 9, clamp_limit(f->limit));
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_pq_event_ack_t a;
        memset(&a, 0, sizeof a);
        store_pq_event_t *e = &a.e;
        e->id = sqlx_column_int64(st, 0);
        col_str(st, 1, e->terminal_id, sizeof e->terminal_id);
        col_str(st, 2, e->kind, sizeof e->kind);
        e->start_ns = sqlx_column_int64(st, 3);
        e->duration_ns = sqlx_column_int64(st, 4);
        e->detected_ns = sqlx_column_int64(st, 5);
        e->extreme = sqlx_column_double(st, 6);
        e->extreme_pct = sqlx_column_double(st, 7);
        e->reference = sqlx_column_double(st, 8);
        e->channels = (uint32_t)sqlx_column_int64(st, 9);
        e->flags = (uint32_t)sqlx_column_int64(st, 10);
        e->worst_channel = (int)sqlx_column_int64(st, 11);
        e->has_names = sqlx_column_type(st, 12) != SQLX_NULL;
        col_str(st, 12, e->channel_names, sizeof e->channel_names);
        col_str(st, 13, e->worst_channel_name, sizeof e->worst_channel_name);
        col_str(st, 14, a.acked_by, sizeof a.acked_by);
        a.acked_ns = sqlx_column_type(st, 15) == SQLX_NULL ? 0 : sqlx_column_int64(st, 15);
        if ((rc = cb(ud, &a)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "query events");
out:
    sqlx_finalize(st);
    return rc;
}
