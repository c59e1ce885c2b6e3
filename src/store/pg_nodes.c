/* Several gridsense nodes on one PostgreSQL database: live sessions, duplicate-login
 * displacement and command notifications. Contract in pg.h; design in docs/decisions/0007
 * section 7. */
#include "store/pg.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

/* pg_advisory_xact_lock key of the table set-up ("gsnodset"). */
#define LOCK_SETUP INT64_C(0x67736e6f64736574)

int store_pg_nodes_setup(sqlx_t *db)
{
    if (sqlx_backend(db) != SQLX_POSTGRESQL)
        return GS_EINVAL;
    char sql[640];
    snprintf(sql, sizeof sql,
             "BEGIN;"
             "SELECT pg_advisory_xact_lock(%lld);"
             "CREATE UNLOGGED TABLE IF NOT EXISTS gs_nodes("
             "  node_id TEXT PRIMARY KEY,"
             "  started_ns BIGINT NOT NULL,"
             "  heartbeat_ns BIGINT NOT NULL);"
             "CREATE UNLOGGED TABLE IF NOT EXISTS gs_live("
             "  terminal_id TEXT PRIMARY KEY,"
             "  node_id TEXT NOT NULL,"
             "  session_id BIGINT NOT NULL,"
             "  remote TEXT,"
             "  opened_ns BIGINT NOT NULL,"
             "  state TEXT);"
             "CREATE INDEX IF NOT EXISTS gs_live_node ON gs_live(node_id);"
             "COMMIT",
             (long long)LOCK_SETUP);
    int rc = sqlx_exec(db, sql);
    if (rc < 0)
        sqlx_rollback(db);
    return rc;
}

int store_pg_node_heartbeat(sqlx_t *db, const char *node_id, int64_t now_ns)
{
    sqlx_stmt_t *st = NULL;
    int rc =
        sqlx_prepare(db,
                     "INSERT INTO gs_nodes(node_id, started_ns, heartbeat_ns) VALUES(?1, ?2, ?2)"
                     " ON CONFLICT (node_id) DO UPDATE SET heartbeat_ns = excluded.heartbeat_ns",
                     &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, node_id, -1);
    sqlx_bind_int64(st, 2, now_ns);
    rc = sqlx_step(st);
    sqlx_finalize(st);
    return rc < 0 ? rc : 0;
}

/* Runs a prepared one-shot statement with text/int parameters given as a format: 't' text,
 * 'i' int64. Returns the step's result (0 done, 1 row: then *row is the live statement the
 * caller finalizes) or a negative code. */
static int run(sqlx_t *db, const char *sql, const char *fmt, const void *const *args,
               sqlx_stmt_t **row)
{
    sqlx_stmt_t *st = NULL;
    if (row)
        *row = NULL;
    int rc = sqlx_prepare(db, sql, &st);
    if (rc < 0)
        return rc;
    for (int i = 0; fmt[i] && rc == 0; i++)
        rc = fmt[i] == 't' ? sqlx_bind_text(st, i + 1, args[i], -1)
                           : sqlx_bind_int64(st, i + 1, *(const int64_t *)args[i]);
    rc = rc < 0 ? rc : sqlx_step(st);
    if (rc == 1 && row)
        *row = st;
    else
        sqlx_finalize(st);
    return rc;
}

int store_pg_session_claim(sqlx_t *db, const char *node_id, const char *terminal_id,
                           uint64_t session_id, const char *remote, int64_t now_ns,
                           char *displaced_node, uint64_t *displaced_session)
{
    sqlx_stmt_t *row = NULL;
    int64_t sid = (int64_t)session_id;
    displaced_node[0] = '\0';
    *displaced_session = 0;
    int rc = sqlx_begin(db);
    if (rc < 0)
        return rc;
    /* per terminal: two nodes taking one terminal at once queue here, even when no row exists
     * yet (a row lock would have nothing to lock) */
    const void *a1[] = {terminal_id};
    if ((rc = run(db, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "t", a1, NULL)) < 0 ||
        (rc = run(db, "SELECT node_id, session_id FROM gs_live WHERE terminal_id = ?", "t", a1,
                  &row)) < 0)
        goto fail;
    if (rc == 1) {
        uint64_t old = (uint64_t)sqlx_column_int64(row, 1);
        if (old != session_id) {
            snprintf(displaced_node, STORE_PG_NODE_MAX, "%s", sqlx_column_text(row, 0));
            *displaced_session = old;
        }
        sqlx_finalize(row);
    }
    const void *a2[] = {terminal_id, node_id, &sid, remote ? remote : "", &now_ns};
    rc = run(db,
             "INSERT INTO gs_live(terminal_id, node_id, session_id, remote, opened_ns, state)"
             " VALUES(?, ?, ?, ?, ?, NULL) ON CONFLICT (terminal_id) DO UPDATE SET"
             " node_id = excluded.node_id, session_id = excluded.session_id,"
             " remote = excluded.remote, opened_ns = excluded.opened_ns, state = NULL",
             "ttiti", a2, NULL);
    if (rc < 0)
        goto fail;
    if (displaced_node[0]) {
        char payload[STORE_PG_NODE_MAX + STORE_ID_MAX + 32];
        snprintf(payload, sizeof payload, "%s:%llu:%s", displaced_node,
                 (unsigned long long)*displaced_session, terminal_id);
        const void *a3[] = {payload};
        if ((rc = run(db, "SELECT pg_notify('" STORE_PG_CH_DISPLACE "', ?)", "t", a3, NULL)) < 0)
            goto fail;
    }
    return sqlx_commit(db);
fail:
    sqlx_rollback(db);
    displaced_node[0] = '\0';
    *displaced_session = 0;
    return rc;
}

int store_pg_session_release(sqlx_t *db, const char *terminal_id, uint64_t session_id)
{
    int64_t sid = (int64_t)session_id;
    const void *a[] = {terminal_id, &sid};
    int rc = run(db, "DELETE FROM gs_live WHERE terminal_id = ? AND session_id = ?", "ti", a, NULL);
    return rc < 0 ? rc : (int)sqlx_changes(db);
}

int store_pg_session_state(sqlx_t *db, const char *terminal_id, uint64_t session_id,
                           const char *state_json)
{
    int64_t sid = (int64_t)session_id;
    const void *a[] = {state_json, terminal_id, &sid};
    int rc = run(db, "UPDATE gs_live SET state = ? WHERE terminal_id = ? AND session_id = ?", "tti",
                 a, NULL);
    return rc < 0 ? rc : (int)sqlx_changes(db);
}

int store_pg_command_notify(sqlx_t *db, const char *terminal_id)
{
    const void *a[] = {terminal_id};
    int rc = run(db, "SELECT pg_notify('" STORE_PG_CH_COMMAND "', ?)", "t", a, NULL);
    return rc < 0 ? rc : 0;
}

int store_pg_live_list(sqlx_t *db, int64_t now_ns, int64_t stale_ns, store_pg_live_t *out,
                       size_t max)
{
    sqlx_stmt_t *st = NULL;
    int rc = sqlx_prepare(db,
                          "SELECT l.terminal_id, l.node_id, l.session_id, coalesce(l.state, ''),"
                          " coalesce(n.heartbeat_ns >= ?, false)"
                          " FROM gs_live l LEFT JOIN gs_nodes n ON n.node_id = l.node_id"
                          " ORDER BY l.terminal_id",
                          &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, now_ns - stale_ns);
    size_t n = 0;
    while (n < max && (rc = sqlx_step(st)) == 1) {
        store_pg_live_t *l = &out[n++];
        snprintf(l->terminal_id, sizeof l->terminal_id, "%s", sqlx_column_text(st, 0));
        snprintf(l->node_id, sizeof l->node_id, "%s", sqlx_column_text(st, 1));
        l->session_id = (uint64_t)sqlx_column_int64(st, 2);
        snprintf(l->state, sizeof l->state, "%s", sqlx_column_text(st, 3));
        l->node_alive = (int)sqlx_column_int64(st, 4);
    }
    sqlx_finalize(st);
    return rc < 0 ? rc : (int)n;
}

int store_pg_listen(sqlx_t *db)
{
    if (sqlx_backend(db) != SQLX_POSTGRESQL)
        return GS_EINVAL;
    return sqlx_exec(db, "LISTEN " STORE_PG_CH_DISPLACE "; LISTEN " STORE_PG_CH_COMMAND);
}

int store_pg_session_release_node(sqlx_t *db, const char *node_id, const char *terminal_id,
                                  uint64_t session_id)
{
    int64_t sid = (int64_t)session_id;
    const void *a[] = {terminal_id, node_id, &sid};
    int rc = run(db, "DELETE FROM gs_live WHERE terminal_id = ? AND node_id = ? AND session_id = ?",
                 "tti", a, NULL);
    return rc < 0 ? rc : (int)sqlx_changes(db);
}

int store_pg_session_claim_if_free(sqlx_t *db, const char *node_id, const char *terminal_id,
                                   uint64_t session_id, const char *remote, int64_t now_ns)
{
    int64_t sid = (int64_t)session_id;
    const void *a[] = {terminal_id, node_id, &sid, remote ? remote : "", &now_ns};
    /* the primary key decides: no advisory lock needed, a row present wins */
    int rc = run(db,
                 "INSERT INTO gs_live(terminal_id, node_id, session_id, remote, opened_ns, state)"
                 " VALUES(?, ?, ?, ?, ?, NULL) ON CONFLICT (terminal_id) DO NOTHING",
                 "ttiti", a, NULL);
    return rc < 0 ? rc : (int)sqlx_changes(db);
}

int store_pg_nodes_alive(sqlx_t *db, int64_t now_ns, int64_t stale_ns)
{
    int64_t since = now_ns - stale_ns, n = 0;
    const void *a[] = {&since};
    sqlx_stmt_t *row = NULL;
    int rc = run(db, "SELECT count(*) FROM gs_nodes WHERE heartbeat_ns >= ?", "i", a, &row);
    if (rc == 1) {
        n = sqlx_column_int64(row, 0);
        sqlx_finalize(row);
    }
    return rc < 0 ? rc : (int)n;
}

int store_pg_node_leave(sqlx_t *db, const char *node_id)
{
    const void *a[] = {node_id};
    int rc = sqlx_begin(db);
    if (rc < 0)
        return rc;
    int64_t n = 0;
    if ((rc = run(db, "DELETE FROM gs_live WHERE node_id = ?", "t", a, NULL)) < 0)
        goto fail;
    n = sqlx_changes(db);
    if ((rc = run(db, "DELETE FROM gs_nodes WHERE node_id = ?", "t", a, NULL)) < 0)
        goto fail;
    rc = sqlx_commit(db);
    return rc < 0 ? rc : (int)n;
fail:
    sqlx_rollback(db);
    return rc;
}
