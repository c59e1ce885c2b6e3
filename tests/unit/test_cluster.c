/* Unit tests of src/cluster (cluster.h) against a real PostgreSQL server: GS_PG_URL names a
 * database of a throwaway cluster (integ.pg_unit starts it; by hand: python3
 * tests/integ/pgcluster.py run -- build/tests/test_cluster). Each test's nodes work in a schema
 * of their own (search_path in the URL), so they do not see each other's rows.
 *
 * Two nodes run on one libuv loop here, as two servers would on two machines: heartbeat and
 * the live list; a login on node B displaces the session on node A through the LISTEN
 * connection (even when the two gateways' session ids are equal); a command notification
 * wakes only the node holding the terminal; a session's release removes only its own row;
 * after every connection of the nodes is killed (pg_terminate_backend) they reconnect, claim
 * again what was lost and hear notifications again; a stopped node removes its rows; a node
 * whose database is unreachable keeps running, reports it down and stops at once; a copy of
 * the live list that cannot be refreshed for `stale` seconds shows other nodes as dead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster/cluster.h"
#include "core/err.h"
#include "core/log.h"
#include "store/pg.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int schema_counter;

typedef struct {
    char tid[40];
    uint64_t sid;
} call_t;

typedef struct {
    call_t displaced[8];
    int ndisplaced;
    char commands[8][40];
    int ncommands;
} calls_t;

typedef struct {
    uv_loop_t loop;
    sqlx_t *db; /* the test's own connection, in the schema */
    char schema[32];
    char url[1200];
    cluster_t *a, *b;
    calls_t ca, cb;
} tc_t;

static void on_displace(void *ud, const char *tid, uint64_t sid)
{
    calls_t *c = ud;
    if (c->ndisplaced < 8) {
        snprintf(c->displaced[c->ndisplaced].tid, sizeof c->displaced[0].tid, "%s", tid);
        c->displaced[c->ndisplaced++].sid = sid;
    }
}

static void on_command(void *ud, const char *tid)
{
    calls_t *c = ud;
    if (c->ncommands < 8)
        snprintf(c->commands[c->ncommands++], sizeof c->commands[0], "%s", tid);
}

static int setup(void **state)
{
    tc_t *t = calloc(1, sizeof *t);
    snprintf(t->schema, sizeof t->schema, "c%d_%d", (int)getpid() % 100000, ++schema_counter);
    const char *base = getenv("GS_PG_URL");
    snprintf(t->url, sizeof t->url, "%s%soptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? "&" : "?", t->schema);
    char err[256], sql[160];
    if (sqlx_open(base, &t->db, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(sql, sizeof sql,
             "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; SET search_path = %s", t->schema,
             t->schema, t->schema);
    if (sqlx_exec(t->db, sql) != 0 || store_pg_nodes_setup(t->db) != 0) {
        fprintf(stderr, "%s\n", sqlx_errmsg(t->db));
        return -1;
    }
    uv_loop_init(&t->loop);
    *state = t;
    return 0;
}

static void stopped(void *ud)
{
    *(int *)ud = 1;
}

static void stop_node(tc_t *t, cluster_t **c)
{
    if (!*c)
        return;
    int done = 0;
    cluster_stop(*c, stopped, &done);
    while (!done) /* the close callbacks (another node's handles keep the loop alive) */
        uv_run(&t->loop, UV_RUN_ONCE);
    cluster_free(*c);
    *c = NULL;
}

static int teardown(void **state)
{
    tc_t *t = *state;
    stop_node(t, &t->a);
    stop_node(t, &t->b);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0); /* every handle closed */
    char sql[96];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
    sqlx_exec(t->db, sql);
    sqlx_close(t->db);
    free(t);
    return 0;
}

static cluster_t *start_node(tc_t *t, const char *node, calls_t *calls)
{
    cluster_opts_t o;
    cluster_opts_default(&o);
    o.url = t->url;
    o.node_id = node;
    o.heartbeat_s = 1;
    o.stale_s = 5;
    cluster_t *c = NULL;
    char err[256];
    assert_int_equal(cluster_start(&t->loop, &o, &c, err, sizeof err), 0);
    cluster_handlers_t h = {.on_displace = on_displace, .on_command = on_command, .ud = calls};
    cluster_set_handlers(c, &h);
    return c;
}

/* Runs the loop until pred holds; bounded (20 s), never a timed assertion. */
typedef int (*pred_fn)(tc_t *t, void *arg);

static int wait_for(tc_t *t, pred_fn pred, void *arg)
{
    for (int i = 0; i < 2000; i++) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        if (pred(t, arg))
            return 1;
        usleep(10000);
    }
    return 0;
}

static int db_up(tc_t *t, void *arg)
{
    cluster_stats_t s;
    cluster_stats(arg, &s);
    return s.db_up;
}

/* arg: "NODE|TERMINAL": node B's copy lists the terminal on NODE ("-" for: not listed) */
typedef struct {
    cluster_t *c;
    const char *tid, *node;
} listed_t;

static int listed(tc_t *t, void *arg)
{
    listed_t *x = arg;
    cluster_live_t l;
    int rc = cluster_live_get(x->c, x->tid, &l);
    if (!x->node)
        return rc == GS_ENOTFOUND;
    return rc == 0 && strcmp(l.node_id, x->node) == 0;
}

static int ndisplaced(tc_t *t, void *arg)
{
    return ((calls_t *)arg)->ndisplaced > 0;
}

static int ncommands(tc_t *t, void *arg)
{
    return ((calls_t *)arg)->ncommands > 0;
}

/* The session id of terminal tid's row (-1 if none) and its node into node. */
static int64_t row_of(tc_t *t, const char *tid, char *node, size_t cap)
{
    sqlx_stmt_t *st = NULL;
    assert_int_equal(
        sqlx_prepare(t->db, "SELECT session_id, node_id FROM gs_live WHERE terminal_id = ?", &st),
        0);
    sqlx_bind_text(st, 1, tid, -1);
    int64_t sid = -1;
    if (sqlx_step(st) == 1) {
        sid = sqlx_column_int64(st, 0);
        if (node)
            snprintf(node, cap, "%s", sqlx_column_text(st, 1));
    }
    sqlx_finalize(st);
    return sid;
}

typedef struct {
    const char *tid;
    int present;
} row_t;

static int row_is(tc_t *t, void *arg)
{
    row_t *r = arg;
    return (row_of(t, r->tid, NULL, 0) >= 0) == r->present;
}

static void test_heartbeat_live_list(void **state)
{
    tc_t *t = *state;
    t->a = start_node(t, "node-a:7100", &t->ca);
    assert_true(wait_for(t, db_up, t->a));
    cluster_session_open(t->a, "T1", 42, "10.0.0.1:5000",
                         "{\"remote\":\"10.0.0.1:5000\",\"connected_since_ns\":1234,"
                         "\"firmware\":\"fw-1\"}");
    listed_t x = {t->a, "T1", "node-a:7100"};
    assert_true(wait_for(t, listed, &x));
    /* the copy lags the claim by up to a heartbeat: the state arrives with or after it */
    cluster_live_t l;
    for (int i = 0; i < 2000; i++) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        if (cluster_live_get(t->a, "T1", &l) == 0 && l.firmware[0])
            break;
        usleep(10000);
    }
    assert_int_equal(cluster_live_get(t->a, "T1", &l), 0);
    assert_true(l.local);
    assert_true(l.node_alive);
    assert_string_equal(l.remote, "10.0.0.1:5000");
    assert_int_equal(l.connected_since_ns, 1234);
    assert_string_equal(l.firmware, "fw-1");
    assert_int_equal(cluster_live_get(t->a, "T9", &l), GS_ENOTFOUND);
    /* the heartbeat row is in the database and counted */
    int64_t hb = 0;
    assert_int_equal(sqlx_query_int64(t->db, "SELECT count(*) FROM gs_nodes WHERE node_id = ?",
                                      "node-a:7100", &hb),
                     1);
    assert_int_equal(hb, 1);
    cluster_stats_t s;
    cluster_stats(t->a, &s);
    assert_int_equal(s.nodes_alive, 1);
    assert_int_equal(s.live_terminals, 1);
    assert_int_equal(s.db_up, 1);
    /* a stopped node removes its rows: its terminals are offline for the other nodes at once */
    stop_node(t, &t->a);
    assert_int_equal(row_of(t, "T1", NULL, 0), -1);
    assert_int_equal(sqlx_query_int64(t->db, "SELECT count(*) FROM gs_nodes", NULL, &hb), 1);
    assert_int_equal(hb, 0);
}

static void test_displace_across_nodes(void **state)
{
    tc_t *t = *state;
    t->a = start_node(t, "A", &t->ca);
    t->b = start_node(t, "B", &t->cb);
    assert_true(wait_for(t, db_up, t->a));
    assert_true(wait_for(t, db_up, t->b));
    /* T1 online on A with gateway session 5 */
    cluster_session_open(t->a, "T1", 5, "10.0.0.1:5000", NULL);
    row_t present = {"T1", 1};
    assert_true(wait_for(t, row_is, &present));
    /* the same terminal logs in on B, whose gateway also numbers it 5 (two nodes started in
     * the same second count alike): still a displacement of A's session */
    cluster_session_open(t->b, "T1", 5, "10.0.0.1:5001", NULL);
    assert_true(wait_for(t, ndisplaced, &t->ca));
    assert_int_equal(t->ca.ndisplaced, 1);
    assert_string_equal(t->ca.displaced[0].tid, "T1");
    assert_int_equal(t->ca.displaced[0].sid, 5); /* the gateway's id, not the database's */
    assert_int_equal(t->cb.ndisplaced, 0);       /* B's own session is left alone */
    char node[64];
    assert_true(row_of(t, "T1", node, sizeof node) >= 0);
    assert_string_equal(node, "B");
    /* A's gateway ends the session and reports it: B's row stays */
    cluster_session_close(t->a, "T1", 5);
    listed_t onb = {t->a, "T1", "B"};
    assert_true(wait_for(t, listed, &onb)); /* A's copy (after its close) lists T1 on B */
    assert_true(row_of(t, "T1", node, sizeof node) >= 0);
    assert_string_equal(node, "B");
    cluster_stats_t s;
    cluster_stats(t->a, &s);
    assert_int_equal(s.displaced_here, 1);
    assert_int_equal(s.displaced_other, 0);
    cluster_stats(t->b, &s);
    assert_int_equal(s.displaced_other, 1);
    assert_int_equal(s.nodes_alive, 2);

    /* a command for T1 wakes B (which holds it), not A */
    assert_int_equal(store_pg_command_notify(t->db, "T1"), 0);
    assert_true(wait_for(t, ncommands, &t->cb));
    assert_string_equal(t->cb.commands[0], "T1");
    cluster_stats(t->a, &s);
    /* A hears it too, and ignores it (bounded like wait_for: 20 s; a loaded machine may take
     * longer than a second to deliver the notification to A's LISTEN connection) */
    for (int i = 0; i < 2000 && s.notifications < 2; i++) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        usleep(10000);
        cluster_stats(t->a, &s);
    }
    assert_true(s.notifications >= 2);
    assert_int_equal(t->ca.ncommands, 0);
}

static void test_release_only_own_session(void **state)
{
    tc_t *t = *state;
    t->a = start_node(t, "A", &t->ca);
    assert_true(wait_for(t, db_up, t->a));
    cluster_session_open(t->a, "T2", 7, "r1", NULL);
    /* a newer session of T2 on the same node replaces the old one (the gateway reports the
     * old one's end after the new one's start when the replacement is seen late) */
    cluster_session_open(t->a, "T2", 8, "r2", NULL);
    cluster_session_close(t->a, "T2", 7);
    cluster_session_open(t->a, "T3", 9, "r3", NULL);
    row_t t3 = {"T3", 1};
    assert_true(wait_for(t, row_is, &t3)); /* requests are applied in order: T2's are done */
    int64_t sid8 = row_of(t, "T2", NULL, 0);
    assert_true(sid8 >= 0); /* session 7's release did not remove session 8's row */
    /* no one was displaced: a node's own older session is not another node's */
    assert_int_equal(t->ca.ndisplaced, 0);
    /* another node's release of T3 with the same database id removes nothing */
    int64_t sid9 = row_of(t, "T3", NULL, 0);
    assert_int_equal(store_pg_session_release_node(t->db, "B", "T3", (uint64_t)sid9), 0);
    assert_int_equal(store_pg_session_release_node(t->db, "A", "T3", (uint64_t)sid9 + 1), 0);
    assert_true(row_of(t, "T3", NULL, 0) >= 0);
    /* the owning session's release does */
    cluster_session_close(t->a, "T2", 8);
    row_t gone = {"T2", 0};
    assert_true(wait_for(t, row_is, &gone));
    assert_true(row_of(t, "T3", NULL, 0) >= 0);
}

static void test_reconnect_after_kill(void **state)
{
    tc_t *t = *state;
    t->a = start_node(t, "A", &t->ca);
    assert_true(wait_for(t, db_up, t->a));
    cluster_session_open(t->a, "T4", 11, "r", NULL);
    row_t present = {"T4", 1};
    assert_true(wait_for(t, row_is, &present));
    /* every connection of the node is killed, and its row lost meanwhile (as after a failover
     * of the database, whose unlogged tables start empty) */
    int64_t n = 0;
    assert_int_equal(
        sqlx_query_int64(t->db,
                         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE"
                         " datname = current_database() AND pid <> pg_backend_pid()"
                         " AND backend_type = 'client backend'",
                         NULL, &n),
        1);
    assert_true(n >= 2); /* the worker's and the LISTEN connection */
    assert_int_equal(sqlx_exec(t->db, "DELETE FROM gs_live"), 0);
    /* the node notices, reconnects, and claims its session again */
    cluster_stats_t s;
    for (int i = 0; i < 2000; i++) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        cluster_stats(t->a, &s);
        if (s.db_lost >= 1 && s.db_up && row_of(t, "T4", NULL, 0) >= 0)
            break;
        usleep(10000);
    }
    assert_true(s.db_lost >= 1);
    assert_int_equal(s.db_up, 1);
    assert_true(row_of(t, "T4", NULL, 0) >= 0);
    /* and hears notifications again: another node (here the test) takes T4 */
    char who[STORE_PG_NODE_MAX];
    uint64_t old = 0;
    assert_int_equal(store_pg_session_claim(t->db, "C", "T4", 99, "x", 1, who, &old), 0);
    assert_string_equal(who, "A");
    assert_true(wait_for(t, ndisplaced, &t->ca));
    assert_string_equal(t->ca.displaced[0].tid, "T4");
    assert_int_equal(t->ca.displaced[0].sid, 11);
}

static void test_database_unreachable(void **state)
{
    tc_t *t = *state;
    cluster_opts_t o;
    cluster_opts_default(&o);
    o.url = "postgresql:///nothing?host=/nonexistent-gridsense-socket-dir";
    o.node_id = "lonely";
    o.heartbeat_s = 1;
    char err[256];
    assert_int_equal(cluster_start(&t->loop, &o, &t->a, err, sizeof err), 0);
    /* requests never block the loop; the node reports the database down */
    for (int i = 0; i < 100; i++) {
        cluster_session_open(t->a, "T5", (uint64_t)i + 1, "r", NULL);
        uv_run(&t->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    cluster_stats_t s;
    cluster_stats(t->a, &s);
    assert_int_equal(s.db_up, 0);
    assert_int_equal(s.nodes_alive, 0);
    cluster_live_t l;
    assert_int_equal(cluster_live_get(t->a, "T5", &l), GS_ENOTFOUND);
    /* bad settings are refused without starting anything */
    cluster_t *c = NULL;
    o.node_id = "bad id";
    assert_int_equal(cluster_start(&t->loop, &o, &c, err, sizeof err), GS_EINVAL);
    o.node_id = "ok";
    o.url = "/var/lib/gridsense/gridsense.db";
    assert_int_equal(cluster_start(&t->loop, &o, &c, err, sizeof err), GS_EINVAL);
    assert_null(c);
}

typedef struct {
    cluster_t *c;
    const char *tid;
    int alive;
} alive_t;

static int alive_is(tc_t *t, void *arg)
{
    alive_t *x = arg;
    cluster_live_t l;
    return cluster_live_get(x->c, x->tid, &l) == 0 && l.node_alive == x->alive;
}

/* A node that cannot refresh its copy (its heartbeat waits on a lock the test holds) lists the
 * other nodes' terminals on a dead node once the copy is `stale` old, and alive again when it
 * can refresh. The worker meanwhile does not spin (the statement waits, then fails, then waits
 * for the next heartbeat). */
static void test_stale_copy(void **state)
{
    tc_t *t = *state;
    cluster_opts_t o;
    cluster_opts_default(&o);
    o.url = t->url;
    o.heartbeat_s = 1;
    o.stale_s = 2;
    char err[256];
    o.node_id = "A";
    assert_int_equal(cluster_start(&t->loop, &o, &t->a, err, sizeof err), 0);
    t->b = start_node(t, "B", &t->cb);
    cluster_session_open(t->b, "T6", 3, "r", NULL);
    alive_t on = {t->a, "T6", 1};
    assert_true(wait_for(t, alive_is, &on));
    assert_int_equal(sqlx_begin(t->db), 0);
    assert_int_equal(sqlx_exec(t->db, "LOCK TABLE gs_nodes IN ACCESS EXCLUSIVE MODE"), 0);
    alive_t off = {t->a, "T6", 0};
    assert_true(wait_for(t, alive_is, &off));
    assert_int_equal(sqlx_commit(t->db), 0);
    assert_true(wait_for(t, alive_is, &on));
}

int main(void)
{
    log_set_level(LOG_WARN);
    if (!getenv("GS_PG_URL")) {
        fprintf(stderr, "test_cluster needs GS_PG_URL (integ.pg_unit, or "
                        "tests/integ/pgcluster.py run -- build/tests/test_cluster)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_heartbeat_live_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_displace_across_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_only_own_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_copy, setup, teardown),
    };
    int fails = cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
    printf("postgresql groups run\n"); /* integ.pg_unit checks for this line */
    return fails ? 1 : 0;
}
