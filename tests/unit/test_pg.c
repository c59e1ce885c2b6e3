/* Unit tests of the store's PostgreSQL foundation (src/store/pg.h) against a real PostgreSQL
 * server: GS_PG_URL names a database of a throwaway cluster (tests/integ/test_pg_unit.py starts
 * it; by hand: python3 tests/integ/pgcluster.py run -- build/tests/test_pg). Each test works in
 * its own schema, so they do not see each other's tables.
 *
 * Schema: migrations (idempotent, concurrent nodes, a failing one rolled back, a newer database
 * refused), the same tables, columns and named indexes as the SQLite schema of db.c, the
 * credentials trigger, the trend trigger (the same rows as SQLite's for the same documents),
 * partitions (created ahead, rows routed by time, default rows moved, retention drops; the
 * pyramid's fine levels by day). Ingest: exactly-once under repeated, overlapping and concurrent
 * batches, codec 1 rows (as received, encoded by the ingest, raw when not smaller), a refused
 * block isolated, acks only from committed state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "store/pg.h"
#include "store/sql.h"
#include "store/store.h"
#include "wcodec/wcodec.h"
#include "tests/unit/ut_tmp.h"

#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY INT64_C(86400000000000)
/* 2026-12-05 00:00:00 UTC */
#define T_BASE INT64_C(1796428800000000000)

static int schema_counter;

typedef struct {
    sqlx_t *db;
    char schema[32];
} tpg_t;

static int open_in(const char *schema, sqlx_t **out)
{
    char err[256], sql[96];
    if (sqlx_open(getenv("GS_PG_URL"), out, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(sql, sizeof sql, "SET search_path = %s", schema);
    return sqlx_exec(*out, sql);
}

static int setup(void **state)
{
    tpg_t *t = calloc(1, sizeof *t);
    snprintf(t->schema, sizeof t->schema, "t%d_%d", (int)getpid() % 100000, ++schema_counter);
    char err[256], sql[160];
    if (sqlx_open(getenv("GS_PG_URL"), &t->db, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(sql, sizeof sql,
             "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;"
             " SET search_path = %s",
             t->schema, t->schema, t->schema);
    if (sqlx_exec(t->db, sql) != 0) {
        fprintf(stderr, "%s\n", sqlx_errmsg(t->db));
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tpg_t *t = *state;
    char sql[96];
    sqlx_rollback(t->db);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
    sqlx_exec(t->db, sql);
    sqlx_close(t->db);
    free(t);
    return 0;
}

static int64_t q(sqlx_t *db, const char *sql, const char *param)
{
    int64_t v = -1;
    int rc = sqlx_query_int64(db, sql, param, &v);
    if (rc != 1)
        fprintf(stderr, "query %s: %d %s\n", sql, rc, sqlx_errmsg(db));
    assert_int_equal(rc, 1);
    return v;
}

static void migrate_ok(sqlx_t *db)
{
    char err[256] = "";
    int v = 0;
    int rc = store_pg_migrate(db, NULL, NULL, &v, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "migrate: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(v, store_pg_schema_versions());
}

/* ---- schema ---- */

static void test_migrate_fresh_and_again(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    int v = -1;
    assert_int_equal(store_pg_schema_version(db, &v), 0);
    assert_int_equal(v, 0);
    migrate_ok(db);
    assert_int_equal(store_pg_schema_versions(), 13);
    assert_int_equal(q(db, "SELECT count(*) FROM schema_version", NULL), 13);
    migrate_ok(db); /* already current: nothing applied */
    assert_int_equal(q(db, "SELECT count(*) FROM schema_version", NULL), 13);
    assert_int_equal(q(db, "SELECT count(DISTINCT version) FROM schema_version", NULL), 13);
    /* migration 13: blocks.data out of line, not compressed, on every partition */
    assert_int_equal(q(db, "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON"
                           " c.oid = a.attrelid WHERE a.attname = 'data' AND c.relname LIKE"
                           " 'blocks%' AND a.attstorage <> 'e'",
                       NULL),
                     0);
    /* blocks and measurements are partitioned, by the documented keys */
    assert_int_equal(
        q(db,
          "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c"
          " ON c.oid = p.partrelid WHERE c.relnamespace = current_schema()::regnamespace",
          NULL),
        4); /* blocks, measurements, wave_pyramid and its wave_pyramid_fine */
    assert_int_equal(q(db,
                       "SELECT pg_get_partkeydef(to_regclass('blocks')) ="
                       " 'RANGE (t0_ns)'",
                       NULL),
                     1);
    assert_int_equal(q(db,
                       "SELECT pg_get_partkeydef(to_regclass('measurements')) ="
                       " 'RANGE (t_end_ns)'",
                       NULL),
                     1);
    assert_null(store_pg_migration_sql(0));
    assert_null(store_pg_migration_sql(14));
    assert_non_null(store_pg_migration_sql(13));
}

static void test_newer_database_refused(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    migrate_ok(db);
    assert_int_equal(sqlx_exec(db, "INSERT INTO schema_version VALUES(99)"), 0);
    char err[256] = "";
    int v = 0;
    assert_int_equal(store_pg_migrate(db, NULL, NULL, &v, err, sizeof err), GS_EDB);
    assert_non_null(strstr(err, "newer"));
}

static int failing_hook(sqlx_t *db, int to, void *arg, char *err, size_t errlen)
{
    int *calls = arg;
    (*calls)++;
    if (to == 4) {
        snprintf(err, errlen, "sealing failed (test)");
        return GS_EDB;
    }
    return 0;
}

static void test_failed_migration_rolled_back(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    char err[256] = "";
    int v = 0, calls = 0;
    assert_int_equal(store_pg_migrate(db, failing_hook, &calls, &v, err, sizeof err), GS_EDB);
    assert_int_equal(calls, 4);
    assert_string_equal(err, "sealing failed (test)");
    assert_int_equal(store_pg_schema_version(db, &v), 0);
    assert_int_equal(v, 3); /* 1..3 kept, 4 rolled back with its script */
    assert_int_equal(q(db, "SELECT to_regclass('master_key') IS NULL", NULL), 1);
    assert_int_equal(q(db, "SELECT to_regclass('pq_events') IS NOT NULL", NULL), 1);
    migrate_ok(db);
    assert_int_equal(q(db, "SELECT to_regclass('master_key') IS NOT NULL", NULL), 1);
}

typedef struct {
    const char *schema;
    int rc;
    int version;
} mig_arg_t;

static void *migrate_thread(void *p)
{
    mig_arg_t *a = p;
    sqlx_t *db = NULL;
    char err[256];
    a->rc = open_in(a->schema, &db);
    if (a->rc == 0)
        a->rc = store_pg_migrate(db, NULL, NULL, &a->version, err, sizeof err);
    if (a->rc != 0)
        fprintf(stderr, "concurrent migrate: %d %s\n", a->rc, err);
    sqlx_close(db);
    return NULL;
}

static void test_concurrent_nodes_migrate_once(void **state)
{
    tpg_t *t = *state;
    enum { NODES = 4 };
    pthread_t th[NODES];
    mig_arg_t a[NODES];
    for (int i = 0; i < NODES; i++) {
        a[i] = (mig_arg_t){.schema = t->schema};
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &a[i]), 0);
    }
    for (int i = 0; i < NODES; i++) /* all joined before any assertion ends the test */
        pthread_join(th[i], NULL);
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(a[i].version, store_pg_schema_versions());
    }
    assert_int_equal(q(t->db, "SELECT count(*) FROM schema_version", NULL),
                     store_pg_schema_versions());
    assert_int_equal(q(t->db, "SELECT count(DISTINCT version) FROM schema_version", NULL),
                     store_pg_schema_versions());
}

/* The PostgreSQL dialect has the SQLite schema's tables and columns with matching types, both
 * ways (an SQLite column missing on PostgreSQL fails: a new SQLite migration needs its twin in
 * pg_schema.c), and every named SQLite index under the same name. */
static void test_same_schema_as_sqlite(void **state)
{
    sqlx_t *pg = ((tpg_t *)*state)->db;
    migrate_ok(pg);
    char dir[] = "/tmp/gs-pgschema-XXXXXX", err[256], path[128];
    assert_non_null(mkdtemp(dir));
    store_t *s = NULL;
    assert_int_equal(store_open(dir, NULL, &s, err, sizeof err), 0);
    store_close(s);
    snprintf(path, sizeof path, "%s/gridsense.db", dir);
    sqlx_t *lite = NULL;
    assert_int_equal(sqlx_open(path, &lite, err, sizeof err), 0);

    sqlx_stmt_t *pt = NULL, *lt = NULL;
    assert_int_equal(
        sqlx_prepare(pg,
                     "SELECT c.table_name, c.column_name, c.data_type FROM"
                     " information_schema.columns c JOIN pg_class k ON k.relname = c.table_name"
                     " AND k.relnamespace = current_schema()::regnamespace"
                     " WHERE c.table_schema = current_schema() AND NOT k.relispartition"
                     " AND c.table_name <> 'schema_version' ORDER BY 1, c.ordinal_position",
                     &pt),
        0);
    assert_int_equal(sqlx_prepare(lite,
                                  "SELECT upper(p.type) FROM sqlite_master m,"
                                  " pragma_table_info(m.name) p WHERE m.type = 'table'"
                                  " AND m.name = ? AND p.name = ?",
                                  &lt),
                     0);
    int ncols = 0, rc;
    char tables[64][40];
    int ntables = 0;
    while ((rc = sqlx_step(pt)) == 1) {
        const char *tab = sqlx_column_text(pt, 0), *col = sqlx_column_text(pt, 1),
                   *type = sqlx_column_text(pt, 2);
        assert_int_equal(sqlx_bind_text(lt, 1, tab, -1), 0);
        assert_int_equal(sqlx_bind_text(lt, 2, col, -1), 0);
        int found = sqlx_step(lt);
        if (found != 1)
            fprintf(stderr, "PostgreSQL %s.%s is not in the SQLite schema\n", tab, col);
        assert_int_equal(found, 1);
        const char *lty = sqlx_column_text(lt, 0);
        const char *want = strcmp(type, "bigint") == 0             ? "INTEGER"
                           : strcmp(type, "double precision") == 0 ? "REAL"
                           : strcmp(type, "bytea") == 0            ? "BLOB"
                           : strcmp(type, "text") == 0             ? "TEXT"
                           : strcmp(type, "jsonb") == 0            ? "TEXT" /* measurements.data */
                                                                   : "?";
        if (strcmp(lty, want) != 0)
            fprintf(stderr, "%s.%s: PostgreSQL %s, SQLite %s\n", tab, col, type, lty);
        assert_string_equal(lty, want);
        sqlx_reset(lt);
        ncols++;
        if (ntables == 0 || strcmp(tables[ntables - 1], tab) != 0) {
            assert_true(ntables < 64);
            snprintf(tables[ntables++], sizeof tables[0], "%s", tab);
        }
    }
    assert_int_equal(rc, 0);
    sqlx_finalize(lt);
    sqlx_finalize(pt);
    assert_int_equal(ntables, 19); /* the tables of SQLite v1..v12 */
    assert_true(ncols > 150);
    assert_int_equal(q(pg,
                       "SELECT count(*) FROM information_schema.columns WHERE table_schema ="
                       " current_schema() AND table_name = 'measurements' AND column_name ="
                       " 'data' AND data_type = 'jsonb'",
                       NULL),
                     1);

    /* the other direction: every SQLite column is in the PostgreSQL dialect */
    assert_int_equal(sqlx_prepare(lite,
                                  "SELECT m.name, p.name FROM sqlite_master m,"
                                  " pragma_table_info(m.name) p WHERE m.type = 'table'"
                                  " AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'schema_version'"
                                  " ORDER BY 1, p.cid",
                                  &lt),
                     0);
    assert_int_equal(sqlx_prepare(pg,
                                  "SELECT count(*) FROM information_schema.columns WHERE"
                                  " table_schema = current_schema() AND table_name = ?"
                                  " AND column_name = ?",
                                  &pt),
                     0);
    int missing = 0;
    while ((rc = sqlx_step(lt)) == 1) {
        sqlx_bind_text(pt, 1, sqlx_column_text(lt, 0), -1);
        sqlx_bind_text(pt, 2, sqlx_column_text(lt, 1), -1);
        assert_int_equal(sqlx_step(pt), 1);
        if (sqlx_column_int64(pt, 0) == 0) {
            printf("not yet in the PostgreSQL dialect: %s.%s\n", sqlx_column_text(lt, 0),
                   sqlx_column_text(lt, 1));
            missing++;
        }
        sqlx_reset(pt);
    }
    assert_int_equal(rc, 0);
    printf("SQLite columns not yet in the PostgreSQL dialect: %d\n", missing);
    assert_int_equal(missing, 0);
    sqlx_finalize(lt);
    sqlx_finalize(pt);

    /* and every named SQLite index, under the same name (the readers' plans rely on them) */
    assert_int_equal(sqlx_prepare(lite,
                                  "SELECT name FROM sqlite_master WHERE type = 'index' AND"
                                  " sql IS NOT NULL ORDER BY 1",
                                  &lt),
                     0);
    assert_int_equal(sqlx_prepare(pg,
                                  "SELECT count(*) FROM pg_indexes WHERE schemaname ="
                                  " current_schema() AND indexname = ?",
                                  &pt),
                     0);
    int nidx = 0;
    missing = 0;
    while ((rc = sqlx_step(lt)) == 1) {
        sqlx_bind_text(pt, 1, sqlx_column_text(lt, 0), -1);
        assert_int_equal(sqlx_step(pt), 1);
        if (sqlx_column_int64(pt, 0) == 0) {
            fprintf(stderr, "SQLite index %s is not in the PostgreSQL dialect\n",
                    sqlx_column_text(lt, 0));
            missing++;
        }
        sqlx_reset(pt);
        nidx++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(missing, 0);
    assert_true(nidx >= 8);
    sqlx_finalize(lt);
    sqlx_finalize(pt);
    sqlx_close(lite);
    ut_rm_rf(dir);
}

/* ---- measurement_trend (migration 12): the PL/pgSQL trigger gives SQLite's rows ---- */

static const char *const trend_docs[] = {
    /* every quantity; channels out of order; a second "Ua" later (the first one counts); Ib
     * without thd_pct (no column anyway) */
    "{\"freq\":{\"mean\":50.013,\"min\":49.9},\"u0_pct\":0.11,\"u2_pct\":0.52,\"i0_pct\":1.5,"
    "\"i2_pct\":2.75,\"p\":1000.5,\"q\":-200.25,\"s_eff\":1100,\"channels\":["
    "{\"name\":\"Ia\",\"rms\":10.5,\"thd_pct\":3.1},{\"name\":\"Ua\",\"rms\":230.1,\"thd_pct\":1.2}"
    ","
    "{\"name\":\"Ub\",\"rms\":229.9,\"thd_pct\":1.3},{\"name\":\"Uc\",\"rms\":231,\"thd_pct\":1.4},"
    "{\"name\":\"Ib\",\"rms\":11},{\"name\":\"Ic\",\"rms\":12.25,\"thd_pct\":4},"
    "{\"name\":\"Ua\",\"rms\":999,\"thd_pct\":9}]}",
    /* some quantities missing or null, channels not an array */
    "{\"freq\":{\"mean\":49.5},\"p\":null,\"q\":3e-5,\"channels\":{\"name\":\"Ua\",\"rms\":1}}",
    /* no channels at all; a large exponent */
    "{\"u2_pct\":1e300,\"s_eff\":-0.0}",
    /* "Ua" only as the 17th channel: SQLite looks at channels[0..15] */
    "{\"channels\":[{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},"
    "{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},"
    "{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},{\"name\":\"x\"},"
    "{\"name\":\"x\"},{\"name\":\"Ub\",\"rms\":7.5},{\"name\":\"Ua\",\"rms\":8}]}",
};
static const char *const trend_intervals[] = {"10min", "2h", "10min", "2h", "1min"};

static void trend_insert(sqlx_t *db)
{
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db,
                                  "INSERT INTO measurements(terminal_id, interval, t_start_ns,"
                                  " t_end_ns, flags, count, data) VALUES(?, ?, ?, ?, 0, 1, ?)",
                                  &st),
                     0);
    int nd = (int)(sizeof trend_docs / sizeof trend_docs[0]);
    for (int i = 0; i < nd + 1; i++) { /* the last one again as 1min: no trend row */
        int64_t t_end = T_BASE + (int64_t)(i + 1) * 600000000000;
        sqlx_bind_text(st, 1, "T0", -1);
        sqlx_bind_text(st, 2, trend_intervals[i], -1);
        sqlx_bind_int64(st, 3, t_end - 600000000000);
        sqlx_bind_int64(st, 4, t_end);
        sqlx_bind_text(st, 5, trend_docs[i < nd ? i : 0], -1);
        int rc = sqlx_step(st);
        if (rc != 0)
            fprintf(stderr, "trend insert %d: %s\n", i, sqlx_errmsg(db));
        assert_int_equal(rc, 0);
        sqlx_reset(st);
    }
    sqlx_finalize(st);
}

#define TREND_COLS 20
typedef struct {
    int n;
    char key[8][48];
    int null[8][TREND_COLS];
    double v[8][TREND_COLS];
} trend_rows_t;

static void trend_read(sqlx_t *db, trend_rows_t *r)
{
    sqlx_stmt_t *st = NULL;
    memset(r, 0, sizeof *r);
    assert_int_equal(sqlx_prepare(db,
                                  "SELECT terminal_id, interval, t_end_ns, freq, u0_pct, u2_pct,"
                                  " i0_pct, i2_pct, p, q, s_eff, ua_rms, ub_rms, uc_rms, ia_rms,"
                                  " ib_rms, ic_rms, ua_thd, ub_thd, uc_thd FROM measurement_trend"
                                  " ORDER BY t_end_ns",
                                  &st),
                     0);
    int rc;
    while ((rc = sqlx_step(st)) == 1) {
        assert_true(r->n < 8);
        snprintf(r->key[r->n], sizeof r->key[0], "%s/%s/%lld", sqlx_column_text(st, 0),
                 sqlx_column_text(st, 1), (long long)sqlx_column_int64(st, 2));
        for (int c = 3; c < TREND_COLS; c++) {
            r->null[r->n][c] = sqlx_column_is_null(st, c);
            r->v[r->n][c] = sqlx_column_double(st, c);
        }
        r->n++;
    }
    assert_int_equal(rc, 0);
    sqlx_finalize(st);
}

static void trend_same(const trend_rows_t *a, const trend_rows_t *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->key[i], b->key[i]);
        for (int c = 3; c < TREND_COLS; c++) {
            if (a->null[i][c] != b->null[i][c] || (!a->null[i][c] && a->v[i][c] != b->v[i][c]))
                fprintf(stderr, "trend row %s column %d: PostgreSQL %s%g, SQLite %s%g\n", a->key[i],
                        c, a->null[i][c] ? "NULL " : "", a->v[i][c], b->null[i][c] ? "NULL " : "",
                        b->v[i][c]);
            assert_int_equal(a->null[i][c], b->null[i][c]);
            if (!a->null[i][c])
                assert_true(a->v[i][c] == b->v[i][c]); /* both the nearest double */
        }
    }
}

static void test_trend_trigger_as_sqlite(void **state)
{
    sqlx_t *pg = ((tpg_t *)*state)->db;
    migrate_ok(pg);
    assert_int_equal(store_pg_partitions_ensure(pg, T_BASE, T_BASE + DAY, NULL), 0);
    char dir[] = "/tmp/gs-pgtrend-XXXXXX", err[256], path[128];
    assert_non_null(mkdtemp(dir));
    store_t *s = NULL;
    assert_int_equal(store_open(dir, NULL, &s, err, sizeof err), 0);
    store_close(s);
    snprintf(path, sizeof path, "%s/gridsense.db", dir);
    sqlx_t *lite = NULL;
    assert_int_equal(sqlx_open(path, &lite, err, sizeof err), 0);

    trend_rows_t *a = calloc(2, sizeof *a), *b = a + 1;
    trend_insert(pg);
    trend_insert(lite);
    trend_read(pg, a);
    trend_read(lite, b);
    assert_int_equal(a->n, 4); /* the 1min row has none */
    trend_same(a, b);
    /* and the values themselves, for the first document: freq, the first Ua, Ic */
    assert_true(a->v[0][3] == 50.013);
    assert_true(a->v[0][11] == 230.1);
    assert_true(a->v[0][16] == 12.25);
    assert_true(a->null[0][17 + 0] == 0 && a->v[0][17] == 1.2);
    assert_true(a->null[3][11] && a->v[3][12] == 7.5); /* 17th Ua ignored, 16th Ub taken */
    /* jsonb comes back as JSON text through the seam */
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(pg, "SELECT data FROM measurements WHERE interval = '1min'", &st),
                     0);
    assert_int_equal(sqlx_step(st), 1);
    assert_non_null(strstr(sqlx_column_text(st, 0), "\"Ua\""));
    assert_true(sqlx_column_text(st, 0)[0] == '{');
    assert_int_equal(sqlx_column_bytes(st, 0), strlen(sqlx_column_text(st, 0)));
    sqlx_finalize(st);

    /* an update replaces the row, a delete removes it, on both */
    const char *upd = "UPDATE measurements SET data = ? WHERE interval = '2h' AND t_end_ns = ?";
    const char *del = "DELETE FROM measurements WHERE interval = '10min' AND t_end_ns = ?";
    sqlx_t *dbs[2] = {pg, lite};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(sqlx_prepare(dbs[k], upd, &st), 0);
        sqlx_bind_text(st, 1, "{\"p\":42.5,\"channels\":[{\"name\":\"Ic\",\"rms\":3}]}", -1);
        sqlx_bind_int64(st, 2, T_BASE + 2 * 600000000000);
        assert_int_equal(sqlx_step(st), 0);
        sqlx_finalize(st);
        assert_int_equal(sqlx_prepare(dbs[k], del, &st), 0);
        sqlx_bind_int64(st, 1, T_BASE + 3 * 600000000000);
        assert_int_equal(sqlx_step(st), 0);
        sqlx_finalize(st);
    }
    trend_read(pg, a);
    trend_read(lite, b);
    assert_int_equal(a->n, 3);
    trend_same(a, b);
    assert_true(a->v[1][8] == 42.5 && a->null[1][3] && a->v[1][16] == 3);

    free(a);
    sqlx_close(lite);
    ut_rm_rf(dir);
}

/* Migration 12 fills measurement_trend from the measurements already stored, as db.c's does. */
static void test_trend_filled_by_migration(void **state)
{
    sqlx_t *pg = ((tpg_t *)*state)->db;
    char sql[96];
    assert_int_equal(sqlx_exec(pg, "CREATE TABLE schema_version(version BIGINT NOT NULL)"), 0);
    for (int to = 1; to <= 11; to++) {
        assert_int_equal(sqlx_exec(pg, store_pg_migration_sql(to)), 0);
        snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES(%d)", to);
        assert_int_equal(sqlx_exec(pg, sql), 0);
    }
    trend_insert(pg);
    assert_int_equal(q(pg, "SELECT to_regclass('measurement_trend') IS NULL", NULL), 1);
    migrate_ok(pg);
    trend_rows_t *a = calloc(1, sizeof *a);
    trend_read(pg, a);
    assert_int_equal(a->n, 4);
    assert_true(a->v[0][11] == 230.1);
    assert_true(a->v[1][3] == 49.5);
    assert_true(a->null[1][8] && a->v[1][9] == 3e-5); /* p null, q */
    free(a);
}

static void test_credentials_trigger(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    migrate_ok(db);
    assert_int_equal(sqlx_exec(db, "INSERT INTO terminals(id, secret, created_ns) VALUES"
                                   " ('A', '\\x00', 1), ('B', '\\x01', 1)"),
                     0);
    assert_int_equal(q(db, "SELECT version FROM credentials_version", NULL), 0);
    assert_int_equal(sqlx_exec(db, "UPDATE terminals SET name = 'x' WHERE id = 'A'"), 0);
    assert_int_equal(q(db, "SELECT version FROM credentials_version", NULL), 0);
    assert_int_equal(sqlx_exec(db, "UPDATE terminals SET secret = '\\x02' WHERE id = 'A'"), 0);
    assert_int_equal(q(db, "SELECT version FROM credentials_version", NULL), 1);
    assert_int_equal(sqlx_exec(db, "DELETE FROM terminals WHERE id = 'B'"), 0);
    assert_int_equal(q(db, "SELECT version FROM credentials_version", NULL), 2);
}

static void insert_raw_block(sqlx_t *db, const char *tid, int64_t seq, int64_t t0)
{
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db,
                                  "INSERT INTO blocks(terminal_id, seq, kind, t0_ns, received_ns)"
                                  " VALUES(?, ?, 0, ?, 0)",
                                  &st),
                     0);
    sqlx_bind_text(st, 1, tid, -1);
    sqlx_bind_int64(st, 2, seq);
    sqlx_bind_int64(st, 3, t0);
    int rc = sqlx_step(st);
    if (rc != 0)
        fprintf(stderr, "insert block: %s\n", sqlx_errmsg(db));
    assert_int_equal(rc, 0);
    sqlx_finalize(st);
}

static void test_partitions(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    migrate_ok(db);
    /* a block from the future lands in the default partition until its day exists */
    insert_raw_block(db, "A", 1, T_BASE + 2 * DAY + 5);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_default", NULL), 1);

    int created = -1;
    assert_int_equal(store_pg_partitions_ensure(db, T_BASE, T_BASE + 2 * DAY + 1, &created), 0);
    assert_int_equal(created, 3 + 1 + 3); /* Dec 5, 6, 7, the month 2026-12, pyramid days */
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_default", NULL), 0); /* moved */
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_p20261207", NULL), 1);
    assert_int_equal(store_pg_partitions_ensure(db, T_BASE, T_BASE + 2 * DAY + 1, &created), 0);
    assert_int_equal(created, 0); /* idempotent */
    /* bounds are exact UTC days: the last ns of a day and the first of the next */
    insert_raw_block(db, "A", 2, T_BASE + DAY - 1);
    insert_raw_block(db, "A", 3, T_BASE + DAY);
    insert_raw_block(db, "A", 4, 5); /* 1970: default */
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_p20261205", NULL), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_p20261206", NULL), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_default", NULL), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), 4);
    /* a range query touches only the partitions of its days (pruning) */
    assert_int_equal(
        q(db,
          "SELECT count(*) FROM blocks WHERE t0_ns >= 1796428800000000000 AND"
          " t0_ns < 1796515200000000000 AND tableoid <> to_regclass('blocks_p20261205')",
          NULL),
        0);

    /* measurements by month, crossing a year */
    assert_int_equal(store_pg_partitions_ensure(db, T_BASE + 20 * DAY, T_BASE + 40 * DAY, &created),
                     0);
    assert_int_equal(q(db, "SELECT to_regclass('measurements_p202701') IS NOT NULL", NULL), 1);
    assert_int_equal(q(db, "SELECT to_regclass('blocks_p20270114') IS NOT NULL", NULL), 1);
    assert_int_equal(sqlx_exec(db, "INSERT INTO measurements(terminal_id, interval, t_start_ns,"
                                   " t_end_ns, data) VALUES('A', '10min', 0, 1798761600000000000,"
                                   " '{}')"), /* 2027-01-01 00:00 */
                     0);
    assert_int_equal(q(db, "SELECT count(*) FROM measurements_p202701", NULL), 1);
    /* the unique key of measurements is a real constraint */
    assert_int_equal(sqlx_exec(db, "INSERT INTO measurements(terminal_id, interval, t_start_ns,"
                                   " t_end_ns, data) VALUES('A', '10min', 0, 1798761600000000000,"
                                   " '{}')"),
                     GS_EEXISTS);

    /* retention: days wholly before the cutoff go, the default partition stays */
    int dropped = -1;
    assert_int_equal(store_pg_partitions_drop_before(db, "blocks", T_BASE + DAY + 1, &dropped), 0);
    assert_int_equal(dropped, 1); /* Dec 5 only: Dec 6 ends after the cutoff */
    assert_int_equal(q(db, "SELECT to_regclass('blocks_p20261205') IS NULL", NULL), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), 3);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_default", NULL), 1);
    assert_int_equal(
        store_pg_partitions_drop_before(db, "measurements", T_BASE + 60 * DAY, &dropped), 0);
    assert_int_equal(dropped, 2); /* 2026-12 and 2027-01 */
    assert_int_equal(q(db, "SELECT count(*) FROM measurements", NULL), 0);
    assert_int_equal(store_pg_partitions_drop_before(db, "status", 0, &dropped), GS_EINVAL);
    assert_int_equal(store_pg_partitions_drop_before(db, "wave_pyramid", 0, &dropped), GS_EINVAL);
    assert_int_equal(store_pg_partitions_ensure(db, -1, 0, &created), GS_ERANGE);
}

static void pyr_row(sqlx_t *db, int level, int64_t bucket_ns, int64_t n)
{
    sqlx_stmt_t *st = NULL;
    /* the upsert the store's pyramid.c needs on PostgreSQL (its INSERT OR REPLACE) */
    assert_int_equal(sqlx_prepare(db,
                                  "INSERT INTO wave_pyramid(terminal_id, level, bucket_ns,"
                                  " t_first_ns, t_end_ns, seq_first, seq_last, sample_rate,"
                                  " time_quality, channel_mask, n, stats)"
                                  " VALUES('A', ?, ?, ?, ?, 1, 2, 4000, 1, 63, ?, ?)"
                                  " ON CONFLICT (terminal_id, level, bucket_ns) DO UPDATE"
                                  " SET n = EXCLUDED.n, stats = EXCLUDED.stats",
                                  &st),
                     0);
    static const uint8_t stats[4] = {0, 1, 0, 2};
    sqlx_bind_int64(st, 1, level);
    sqlx_bind_int64(st, 2, bucket_ns);
    sqlx_bind_int64(st, 3, bucket_ns);
    sqlx_bind_int64(st, 4, bucket_ns + 1000);
    sqlx_bind_int64(st, 5, n);
    sqlx_bind_blob(st, 6, stats, sizeof stats);
    int rc = sqlx_step(st);
    if (rc != 0)
        fprintf(stderr, "pyramid row: %s\n", sqlx_errmsg(db));
    assert_int_equal(rc, 0);
    sqlx_finalize(st);
}

/* wave_pyramid: levels 0 and 1 in day partitions (retention drops days), the coarse levels in
 * one partition that retention of the fine ones leaves alone; the key works through both. */
static void test_pyramid_partitions(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    migrate_ok(db);
    assert_int_equal(
        q(db, "SELECT pg_get_partkeydef(to_regclass('wave_pyramid')) = 'LIST (level)'", NULL), 1);
    assert_int_equal(q(db,
                       "SELECT pg_get_partkeydef(to_regclass('wave_pyramid_fine')) ="
                       " 'RANGE (bucket_ns)'",
                       NULL),
                     1);
    pyr_row(db, 0, T_BASE + DAY + 7 * INT64_C(1000000000), 1); /* before its day exists */
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid_fine_default", NULL), 1);
    int created = -1;
    assert_int_equal(store_pg_partitions_ensure(db, T_BASE, T_BASE + DAY + 1, &created), 0);
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid_fine_default", NULL), 0); /* moved */
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid_fine_p20261206", NULL), 1);
    pyr_row(db, 0, T_BASE, 1);
    pyr_row(db, 1, T_BASE + 10 * INT64_C(1000000000), 1);
    pyr_row(db, 3, T_BASE, 1);
    pyr_row(db, 5, T_BASE, 1);
    pyr_row(db, 0, T_BASE, 5); /* the same key again: updated, not a second row */
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid_fine_p20261205", NULL), 2);
    assert_int_equal(q(db,
                       "SELECT n FROM wave_pyramid WHERE level = 0 AND bucket_ns ="
                       " 1796428800000000000",
                       NULL),
                     5);
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid_coarse", NULL), 2);
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid", NULL), 5);
    int dropped = -1;
    assert_int_equal(
        store_pg_partitions_drop_before(db, "wave_pyramid_fine", T_BASE + DAY, &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid WHERE level < 2", NULL), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM wave_pyramid WHERE level >= 2", NULL), 2);
}

typedef struct {
    const char *schema;
    int rc, created;
} part_arg_t;

static void *partition_thread(void *p)
{
    part_arg_t *a = p;
    sqlx_t *db = NULL;
    a->rc = open_in(a->schema, &db);
    if (a->rc == 0)
        a->rc = store_pg_partitions_ensure(db, T_BASE, T_BASE + 30 * DAY, &a->created);
    sqlx_close(db);
    return NULL;
}

/* Nodes starting together all make sure of the partitions: each is made once, nobody fails. */
static void test_partitions_concurrent_nodes(void **state)
{
    tpg_t *t = *state;
    migrate_ok(t->db);
    enum { NODES = 4 };
    pthread_t th[NODES];
    part_arg_t a[NODES];
    for (int i = 0; i < NODES; i++) {
        a[i] = (part_arg_t){.schema = t->schema};
        assert_int_equal(pthread_create(&th[i], NULL, partition_thread, &a[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < NODES; i++) /* all joined before any assertion ends the test */
        pthread_join(th[i], NULL);
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(a[i].rc, 0);
        total += a[i].created;
    }
    /* Dec 5 .. Jan 4: 31 days of blocks and of the fine pyramid; months 2026-12 and 2027-01 */
    assert_int_equal(total, 31 + 2 + 31);
    assert_int_equal(q(t->db,
                       "SELECT count(*) FROM pg_inherits WHERE inhparent ="
                       " to_regclass('blocks')",
                       NULL),
                     31 + 1);
}

/* ---- ingest ---- */

static store_item_t *block(const char *tid, uint64_t seq, int is_event)
{
    store_item_t *it = calloc(1, sizeof *it);
    it->kind = STORE_ITEM_BLOCK;
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->seq = seq;
    it->is_event = is_event;
    it->t0_ns = T_BASE + (int64_t)seq * 100000000; /* 100 ms blocks */
    it->sample_rate = 4000;
    it->channel_mask = 0x3f;
    it->nchannels = 6;
    it->sample_fmt = 1;
    it->time_quality = 1;
    it->nsamples = 400;
    it->data_len = 64;
    it->data = malloc(it->data_len);
    for (size_t i = 0; i < it->data_len; i++)
        it->data[i] = (uint8_t)((seq * 31 + i) & 0xff); /* NUL bytes included */
    it->data[0] = 0;
    if (is_event) {
        it->trigger = 2;
        it->trigger_ns = it->t0_ns + 5;
        it->pretrigger = 100;
        it->value_permille = 850;
        it->trigger_channel = 1;
    }
    return it;
}

static void free_items(store_item_t **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i]->data);
        free(items[i]);
    }
}

static void ingest_setup(sqlx_t *db, int nterm)
{
    migrate_ok(db);
    assert_int_equal(store_pg_partitions_ensure(db, T_BASE, T_BASE + 3 * DAY, NULL), 0);
    for (int i = 0; i < nterm; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "INSERT INTO terminals(id, secret, created_ns) VALUES"
                 " ('T%d', '\\x00', 1)",
                 i);
        assert_int_equal(sqlx_exec(db, sql), 0);
    }
}

static int64_t durable(sqlx_t *db, const char *tid)
{
    return q(db, "SELECT durable_seq FROM terminals WHERE id = ?", tid);
}

static void test_ingest_batch(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    ingest_setup(db, 3);
    store_pg_ingest_t *g = NULL;
    assert_int_equal(store_pg_ingest_new(db, &g), 0);
    enum { N = 300 };
    store_item_t *items[N];
    for (int i = 0; i < N; i++) { /* 3 terminals interleaved, 100 blocks each, 5 events */
        char tid[8];
        snprintf(tid, sizeof tid, "T%d", i % 3);
        items[i] = block(tid, (uint64_t)(i / 3 + 1), i % 60 == 0);
    }
    store_pg_ack_t acks[N];
    size_t nacks = 0;
    assert_int_equal(store_pg_ingest_blocks(g, items, N, 777, acks, &nacks), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(items[i]->result, 0);
    assert_int_equal(nacks, 3);
    for (size_t i = 0; i < nacks; i++) {
        assert_int_equal(acks[i].durable_seq, 100);
        assert_int_equal(durable(db, acks[i].terminal_id), 100);
    }
    assert_string_equal(acks[0].terminal_id, "T0");
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), N);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks_default", NULL), 0);
    assert_int_equal(q(db, "SELECT count(*) FROM events", NULL), 5);
    assert_int_equal(q(db,
                       "SELECT count(*) FROM events WHERE trigger = 2 AND pretrigger = 100"
                       " AND value_permille = 850 AND channel = 1 AND trigger_ns > 0",
                       NULL),
                     5);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE kind = 1", NULL), 5);
    /* every column and the data bytes as given */
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db,
                                  "SELECT t0_ns, sample_rate, channel_mask, nchannels, sample_fmt,"
                                  " time_quality, nsamples, data, received_ns FROM blocks"
                                  " WHERE terminal_id = ? AND seq = ?",
                                  &st),
                     0);
    for (int i = 0; i < N; i += 37) {
        sqlx_bind_text(st, 1, items[i]->terminal_id, -1);
        sqlx_bind_int64(st, 2, (int64_t)items[i]->seq);
        assert_int_equal(sqlx_step(st), 1);
        assert_true(sqlx_column_int64(st, 0) == items[i]->t0_ns);
        assert_int_equal(sqlx_column_int64(st, 1), 4000);
        assert_int_equal(sqlx_column_int64(st, 2), 0x3f);
        assert_int_equal(sqlx_column_int64(st, 3), 6);
        assert_int_equal(sqlx_column_int64(st, 4), 1);
        assert_int_equal(sqlx_column_int64(st, 5), 1);
        assert_int_equal(sqlx_column_int64(st, 6), 400);
        assert_int_equal(sqlx_column_bytes(st, 7), items[i]->data_len);
        assert_memory_equal(sqlx_column_blob(st, 7), items[i]->data, items[i]->data_len);
        assert_int_equal(sqlx_column_int64(st, 8), 777);
        sqlx_reset(st);
    }
    sqlx_finalize(st);
    free_items(items, N);
    store_pg_ingest_free(g);
}

static void test_ingest_exactly_once(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    ingest_setup(db, 2);
    store_pg_ingest_t *g = NULL;
    assert_int_equal(store_pg_ingest_new(db, &g), 0);
    store_pg_ack_t acks[400];
    size_t nacks;
    store_item_t *a[200];
    for (int i = 0; i < 200; i++)
        a[i] = block("T0", (uint64_t)i + 1, 0);
    assert_int_equal(store_pg_ingest_blocks(g, a, 200, 1, acks, &nacks), 0);

    /* the same batch again (its ACK was lost): all duplicates, nothing stored twice, the ACK
     * carries the committed seq again */
    assert_int_equal(store_pg_ingest_blocks(g, a, 200, 2, acks, &nacks), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(a[i]->result, 1);
    assert_int_equal(nacks, 1);
    assert_int_equal(acks[0].durable_seq, 200);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), 200);

    /* overlapping re-send after a reconnect (151..350), with an in-batch repeat and an
     * out-of-order seq (GSTP 7.1: not above the highest is a duplicate), and T1 in between */
    store_item_t *b[206];
    size_t nb = 0;
    for (int s = 151; s <= 350; s++) {
        b[nb++] = block("T0", (uint64_t)s, s % 50 == 0);
        if (s == 300) {
            b[nb++] = block("T0", 300, 0); /* repeated */
            b[nb++] = block("T0", 120, 0); /* below */
            b[nb++] = block("T1", 7, 0);
            b[nb++] = block("T1", 5, 0); /* below T1's 7 in this batch */
        }
    }
    assert_int_equal(store_pg_ingest_blocks(g, b, nb, 3, acks, &nacks), 0);
    int stored = 0, dup = 0;
    for (size_t i = 0; i < nb; i++) {
        assert_true(b[i]->result == 0 || b[i]->result == 1);
        stored += b[i]->result == 0;
        dup += b[i]->result == 1;
        if (b[i]->result == 0)
            assert_true(strcmp(b[i]->terminal_id, "T1") == 0 ? b[i]->seq == 7 : b[i]->seq > 200);
    }
    assert_int_equal(stored, 150 + 1);
    assert_int_equal(dup, 50 + 2 + 1);
    assert_int_equal(nacks, 2);
    assert_int_equal(durable(db, "T0"), 350);
    assert_int_equal(durable(db, "T1"), 7);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE terminal_id = 'T0'", NULL), 350);
    assert_int_equal(q(db, "SELECT count(DISTINCT seq) FROM blocks WHERE terminal_id = 'T0'", NULL),
                     350);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE terminal_id = 'T1'", NULL), 1);
    /* events only for blocks stored now (s = 250, 300, 350), not for duplicates */
    assert_int_equal(q(db, "SELECT count(*) FROM events", NULL), 3);

    /* a terminal whose durable_seq lags (rows stored by a bug or an import without moving it):
     * the unique key still makes the same block a no-op, reported as a duplicate */
    assert_int_equal(sqlx_exec(db, "UPDATE terminals SET durable_seq = 100 WHERE id = 'T0'"), 0);
    store_item_t *c[1] = {block("T0", 150, 0)};
    assert_int_equal(store_pg_ingest_blocks(g, c, 1, 4, acks, &nacks), 0);
    assert_int_equal(c[0]->result, 1);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE terminal_id = 'T0'", NULL), 350);
    assert_int_equal(durable(db, "T0"), 150); /* moved up to what is known stored */

    free_items(a, 200);
    free_items(b, nb);
    free_items(c, 1);
    store_pg_ingest_free(g);
}

/* A block whose samples compress: 6 channels of int16 sines, 400 sets (100 ms at 4 kHz). */
static store_item_t *sine_block(const char *tid, uint64_t seq)
{
    store_item_t *it = block(tid, seq, 0);
    free(it->data);
    it->nominal_hz = 50;
    it->data_len = (size_t)it->nsamples * it->nchannels * 2;
    it->data = malloc(it->data_len);
    for (uint32_t k = 0; k < it->nsamples; k++)
        for (int c = 0; c < it->nchannels; c++) {
            double ph = 2 * 3.14159265358979 * (50.0 * (seq * it->nsamples + k) / 4000.0 + c / 3.0);
            int16_t v = (int16_t)(12000 * sin(ph) + (int)((k * 7 + (unsigned)c) % 5) - 2);
            it->data[((size_t)k * it->nchannels + (size_t)c) * 2] = (uint8_t)(v & 0xff);
            it->data[((size_t)k * it->nchannels + (size_t)c) * 2 + 1] = (uint8_t)((uint16_t)v >> 8);
        }
    return it;
}

/* blocks.codec and data as SQLite's writer stores them (migration 11): segments as received
 * (codec 1 here, kept), raw blocks encoded (codec 2) when that is smaller, raw otherwise;
 * duplicates of encoded rows are still exactly-once. */
static void test_ingest_codec(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    ingest_setup(db, 2);
    store_pg_ingest_t *g = NULL;
    assert_int_equal(store_pg_ingest_new(db, &g), 0);
    enum { N = 40 };
    store_item_t *items[N];
    for (int i = 0; i < N; i++) {
        uint64_t seq = (uint64_t)(i / 2 + 1);
        const char *tid = i % 2 ? "T1" : "T0";
        items[i] = sine_block(tid, seq);
        if (i % 4 == 0) { /* T0, odd seqs: received encoded (codec 1 on the wire) */
            store_item_t *it = items[i];
            size_t cap = wcodec_bound(it->nsamples, it->nchannels, it->sample_fmt);
            it->enc = malloc(cap);
            assert_int_equal(wcodec_encode_block(it->data, it->nsamples, it->nchannels,
                                                 it->sample_fmt, 80, it->enc, cap, &it->enc_len),
                             0);
            it->codec = 1;
        } else if (i % 4 == 3) {
            items[i]->data_len = 64; /* a shape the codec does not take: stays raw */
        }
    }
    store_pg_ack_t acks[N];
    size_t nacks = 0;
    assert_int_equal(store_pg_ingest_blocks(g, items, N, 5, acks, &nacks), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(items[i]->result, 0);
        assert_int_equal(items[i]->stored_codec, i % 4 == 3 ? 0 : i % 4 == 0 ? 1 : 2);
    }
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE codec = 1", NULL), 10);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE codec = 2", NULL), 20);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE codec = 0", NULL), 10);

    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db,
                                  "SELECT codec, data FROM blocks WHERE terminal_id = ? AND"
                                  " seq = ?",
                                  &st),
                     0);
    uint8_t *dec = malloc(items[0]->nsamples * items[0]->nchannels * 2u);
    for (int i = 0; i < N; i++) {
        store_item_t *it = items[i];
        sqlx_bind_text(st, 1, it->terminal_id, -1);
        sqlx_bind_int64(st, 2, (int64_t)it->seq);
        assert_int_equal(sqlx_step(st), 1);
        const uint8_t *b = sqlx_column_blob(st, 1);
        size_t len = sqlx_column_bytes(st, 1);
        if (i % 4 == 0) { /* the received bytes, as they came */
            assert_int_equal(sqlx_column_int64(st, 0), 1);
            assert_int_equal(len, it->enc_len);
            assert_memory_equal(b, it->enc, len);
        } else if (i % 4 == 3) {
            assert_int_equal(sqlx_column_int64(st, 0), 0);
            assert_int_equal(len, 64);
            assert_memory_equal(b, it->data, 64);
        } else { /* encoded here (codec 2): smaller, and decodes to the samples */
            assert_int_equal(sqlx_column_int64(st, 0), 2);
            assert_true(len < it->data_len);
            assert_int_equal(wcodec_decode_block_as(WCODEC_ID_MODEL, b, len, it->nsamples,
                                                    it->nchannels, it->sample_fmt, dec),
                             0);
            assert_memory_equal(dec, it->data, it->data_len);
        }
        sqlx_reset(st);
    }
    free(dec);

    /* the whole batch again (ack lost): duplicates, nothing stored twice, codecs unchanged */
    assert_int_equal(store_pg_ingest_blocks(g, items, N, 6, acks, &nacks), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(items[i]->result, 1);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), N);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE codec = 1", NULL), 10);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks WHERE codec = 2", NULL), 20);
    assert_int_equal(durable(db, "T0"), 20);

    /* encoding off (the writer is behind): a raw block stays raw, a received one is still
     * stored as received */
    store_pg_ingest_set_encode(g, 0);
    store_item_t *more[2] = {sine_block("T0", 21), sine_block("T0", 22)};
    more[1]->enc = malloc(items[0]->enc_len);
    memcpy(more[1]->enc, items[0]->enc, items[0]->enc_len);
    more[1]->enc_len = items[0]->enc_len;
    more[1]->codec = 1;
    assert_int_equal(store_pg_ingest_blocks(g, more, 2, 7, acks, &nacks), 0);
    assert_int_equal(more[0]->result, 0);
    assert_int_equal(more[0]->stored_codec, 0);
    assert_int_equal(more[1]->stored_codec, 1);
    assert_int_equal(q(db,
                       "SELECT count(*) FROM blocks WHERE terminal_id = 'T0' AND seq = 21 AND"
                       " codec = 0 AND length(data) = 4800",
                       NULL),
                     1);
    assert_int_equal(q(db,
                       "SELECT count(*) FROM blocks WHERE terminal_id = 'T0' AND seq = 22 AND"
                       " codec = 1",
                       NULL),
                     1);
    sqlx_finalize(st);
    for (int i = 0; i < N; i++)
        free(items[i]->enc);
    free(more[1]->enc);
    free_items(items, N);
    free_items(more, 2);
    store_pg_ingest_free(g);
}

static void test_ingest_refused_block_isolated(void **state)
{
    sqlx_t *db = ((tpg_t *)*state)->db;
    ingest_setup(db, 2);
    /* the database refuses one particular block (as it might a malformed value) */
    assert_int_equal(sqlx_exec(db, "ALTER TABLE blocks ADD CONSTRAINT no_777"
                                   " CHECK (nsamples <> 777)"),
                     0);
    store_pg_ingest_t *g = NULL;
    assert_int_equal(store_pg_ingest_new(db, &g), 0);
    store_item_t *items[20];
    for (int i = 0; i < 20; i++)
        items[i] = block(i % 2 ? "T1" : "T0", (uint64_t)(i / 2 + 1), 0);
    items[8]->nsamples = 777; /* T0 seq 5 */
    store_pg_ack_t acks[20];
    size_t nacks;
    assert_int_equal(store_pg_ingest_blocks(g, items, 20, 1, acks, &nacks), 0);
    for (int i = 0; i < 20; i++) {
        int want = i % 2 ? 0 : (i < 8 ? 0 : (i == 8 ? GS_EDB : GS_ESTATE));
        assert_int_equal(items[i]->result, want);
    }
    assert_int_equal(durable(db, "T0"), 4); /* no gap under durable_seq */
    assert_int_equal(durable(db, "T1"), 10);
    assert_string_equal(acks[0].terminal_id, "T0");
    assert_int_equal(acks[0].durable_seq, 4);
    assert_int_equal(acks[1].durable_seq, 10);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), 4 + 10);
    /* the terminal re-sends from 5 with a good block: stored */
    items[8]->nsamples = 400;
    assert_int_equal(store_pg_ingest_blocks(g, items, 20, 2, acks, &nacks), 0);
    assert_int_equal(durable(db, "T0"), 10);
    assert_int_equal(q(db, "SELECT count(*) FROM blocks", NULL), 20);
    free_items(items, 20);
    store_pg_ingest_free(g);
}

typedef struct {
    const char *schema;
    int node;
    int errors, busy;
    long stored;
} node_arg_t;

/* One "node": the same terminals' blocks arrive on two nodes at once (a displaced session still
 * writing while the new one starts), in overlapping batches. */
static void *node_thread(void *p)
{
    node_arg_t *a = p;
    sqlx_t *db = NULL;
    store_pg_ingest_t *g = NULL;
    if (open_in(a->schema, &db) != 0 || store_pg_ingest_new(db, &g) != 0) {
        a->errors++;
        sqlx_close(db);
        return NULL;
    }
    enum { ROUNDS = 20, PER = 25, TERMS = 4 };
    store_item_t *items[PER * TERMS];
    store_pg_ack_t acks[PER * TERMS];
    size_t nacks;
    for (int r = 0; r < ROUNDS; r++) {
        /* node 0 sends seqs r*20+1 .. r*20+25, node 1 starts 10 later: overlaps both ways */
        uint64_t first = (uint64_t)r * 20 + 1 + (a->node ? 10 : 0);
        size_t n = 0;
        for (int s = 0; s < PER; s++)
            for (int t = 0; t < TERMS; t++) {
                char tid[8];
                snprintf(tid, sizeof tid, "T%d", a->node ? TERMS - 1 - t : t); /* other order */
                items[n] = block(tid, first + (uint64_t)s, 0);
                /* node 1's copy of a block differs in t0 by 1 ns: the unique key
                 * (terminal_id, seq, t0_ns) cannot catch it, only durable_seq under the row
                 * lock does (the design's first line, tested alone) */
                items[n++]->t0_ns += a->node;
            }
        int rc;
        do {
            rc = store_pg_ingest_blocks(g, items, n, 1, acks, &nacks);
            if (rc == GS_EBUSY)
                a->busy++;
        } while (rc == GS_EBUSY);
        if (rc != 0)
            a->errors++;
        for (size_t i = 0; i < n; i++)
            a->stored += items[i]->result == 0;
        free_items(items, n);
    }
    store_pg_ingest_free(g);
    sqlx_close(db);
    return NULL;
}

static void test_ingest_two_nodes_exactly_once(void **state)
{
    tpg_t *t = *state;
    ingest_setup(t->db, 4);
    /* seqs 1..10 first: node 1 starts at 11, and if it ran before node 0 at all, 1..10 would be
     * a gap its terminal skipped (GSTP 7.1: later copies are duplicates), whatever the timing */
    store_pg_ingest_t *g = NULL;
    assert_int_equal(store_pg_ingest_new(t->db, &g), 0);
    store_item_t *first[40];
    for (int i = 0; i < 40; i++) {
        char tid[8];
        snprintf(tid, sizeof tid, "T%d", i % 4);
        first[i] = block(tid, (uint64_t)(i / 4 + 1), 0);
    }
    assert_int_equal(store_pg_ingest_blocks(g, first, 40, 1, NULL, NULL), 0);
    free_items(first, 40);
    store_pg_ingest_free(g);
    pthread_t th[2];
    node_arg_t a[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (node_arg_t){.schema = t->schema, .node = i};
        assert_int_equal(pthread_create(&th[i], NULL, node_thread, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(a[0].errors + a[1].errors, 0);
    /* the highest seq: node 1's last round, 19*20 + 11 + 24 = 415 */
    for (int i = 0; i < 4; i++) {
        char tid[8];
        snprintf(tid, sizeof tid, "T%d", i);
        assert_int_equal(durable(t->db, tid), 415);
        assert_int_equal(q(t->db, "SELECT count(*) FROM blocks WHERE terminal_id = ?", tid), 415);
        assert_int_equal(
            q(t->db, "SELECT count(DISTINCT seq) FROM blocks WHERE terminal_id = ?", tid), 415);
    }
    /* each block above 10 was reported stored by exactly one node */
    assert_int_equal(a[0].stored + a[1].stored, 4 * (415 - 10));
    printf("two nodes: stored %ld + %ld, busy retries %d + %d\n", a[0].stored, a[1].stored,
           a[0].busy, a[1].busy);
}

/* ---- several nodes ---- */

typedef struct {
    char got[8][160]; /* "channel|payload" */
    int n;
} notes_t;

static void on_note(const char *channel, const char *payload, void *arg)
{
    notes_t *ns = arg;
    if (ns->n < 8)
        snprintf(ns->got[ns->n++], sizeof ns->got[0], "%s|%s", channel, payload);
}

/* Waits (bounded: 10 s) until the listening connection has received `want` notifications in
 * all; polls its socket as an event loop would. */
static void wait_notes(sqlx_t *db, notes_t *ns, int want)
{
    for (int i = 0; i < 1000 && ns->n < want; i++) {
        struct pollfd pfd = {.fd = sqlx_pg_socket(db), .events = POLLIN};
        assert_true(pfd.fd >= 0);
        poll(&pfd, 1, 10);
        assert_true(sqlx_pg_notifications(db, on_note, ns) >= 0);
    }
    assert_int_equal(ns->n, want);
}

static void test_nodes_displace_commands_live(void **state)
{
    tpg_t *t = *state;
    sqlx_t *a = NULL, *b = NULL, *la = NULL, *lb = NULL, *cli = NULL;
    migrate_ok(t->db);
    assert_int_equal(store_pg_nodes_setup(t->db), 0);
    assert_int_equal(store_pg_nodes_setup(t->db), 0); /* idempotent */
    assert_int_equal(open_in(t->schema, &a), 0);
    assert_int_equal(open_in(t->schema, &b), 0);
    assert_int_equal(open_in(t->schema, &la), 0); /* each node's listening connection */
    assert_int_equal(open_in(t->schema, &lb), 0);
    assert_int_equal(open_in(t->schema, &cli), 0);
    assert_int_equal(store_pg_listen(la), 0);
    assert_int_equal(store_pg_listen(lb), 0);
    notes_t na = {0}, nb = {0};
    int64_t now = T_BASE;
    assert_int_equal(store_pg_node_heartbeat(a, "A", now), 0);
    assert_int_equal(store_pg_node_heartbeat(b, "B", now), 0);

    /* T1 logs in on A: nobody displaced */
    char who[STORE_PG_NODE_MAX];
    uint64_t old = 99;
    assert_int_equal(store_pg_session_claim(a, "A", "T1", 11, "10.0.0.1:5000", now, who, &old), 0);
    assert_string_equal(who, "");
    assert_int_equal(old, 0);
    assert_int_equal(store_pg_session_claim(a, "A", "T2", 12, "10.0.0.2:5000", now, who, &old), 0);
    assert_int_equal(store_pg_session_state(a, "T1", 11, "{\"rsrp_dbm\":-90}"), 1);

    /* the API of node B lists every terminal, with A's live state */
    store_pg_live_t live[8];
    assert_int_equal(store_pg_live_list(b, now, 15 * INT64_C(1000000000), live, 8), 2);
    assert_string_equal(live[0].terminal_id, "T1");
    assert_string_equal(live[0].node_id, "A");
    assert_int_equal(live[0].session_id, 11);
    assert_int_equal(live[0].node_alive, 1);
    assert_string_equal(live[0].state, "{\"rsrp_dbm\":-90}");
    assert_string_equal(live[1].terminal_id, "T2");

    /* T1 logs in again on B (its old TCP connection to A is half dead): A is told to end
     * session 11, and only A's listener needs it, but every listener sees the channel */
    assert_int_equal(store_pg_session_claim(b, "B", "T1", 21, "10.0.0.1:5001", now + 1, who, &old),
                     0);
    assert_string_equal(who, "A");
    assert_int_equal(old, 11);
    wait_notes(la, &na, 1);
    assert_string_equal(na.got[0], STORE_PG_CH_DISPLACE "|A:11:T1");
    /* A's displaced session logs out late: B's row stays; A cannot publish over it either */
    assert_int_equal(store_pg_session_release(a, "T1", 11), 0);
    assert_int_equal(store_pg_session_state(a, "T1", 11, "{}"), 0);
    assert_int_equal(store_pg_live_list(a, now, 15 * INT64_C(1000000000), live, 8), 2);
    assert_string_equal(live[0].node_id, "B");
    assert_int_equal(live[0].session_id, 21);
    assert_string_equal(live[0].state, "");

    /* a command created by the CLI reaches the node holding T1 (B): notified on commit, not
     * before; one created in a rolled-back transaction is never announced */
    nb.n = 0;
    wait_notes(lb, &nb, 1); /* B saw the displacement notice too (same channel) */
    nb.n = 0;
    na.n = 0;
    assert_int_equal(sqlx_begin(cli), 0);
    assert_int_equal(sqlx_exec(cli, "INSERT INTO commands(terminal_id, verb, created_ns,"
                                    " updated_ns, expires_ns) VALUES('T1', 1, 1, 1, 2)"),
                     0);
    assert_int_equal(store_pg_command_notify(cli, "T1"), 0);
    assert_int_equal(sqlx_pg_notifications(lb, on_note, &nb), 0); /* nothing before COMMIT */
    assert_int_equal(sqlx_commit(cli), 0);
    wait_notes(lb, &nb, 1);
    assert_string_equal(nb.got[0], STORE_PG_CH_COMMAND "|T1");
    wait_notes(la, &na, 1); /* A hears it as well and ignores it: T1 is not on A */
    assert_int_equal(sqlx_begin(cli), 0);
    assert_int_equal(store_pg_command_notify(cli, "T2"), 0);
    assert_int_equal(sqlx_rollback(cli), 0);
    assert_int_equal(store_pg_command_notify(cli, "T2"), 0); /* outside a transaction: now */
    wait_notes(la, &na, 2);
    assert_string_equal(na.got[1], STORE_PG_CH_COMMAND "|T2");
    /* B receives exactly one T2 notice: the rolled-back one was never sent (the sent one
     * arrived after it in the server's order, so nothing can still be in flight behind it) */
    wait_notes(lb, &nb, 2);
    assert_string_equal(nb.got[1], STORE_PG_CH_COMMAND "|T2");
    assert_int_equal(sqlx_pg_notifications(lb, on_note, &nb), 0);
    assert_int_equal(nb.n, 2);

    /* node A stops heartbeating: its terminals show as on a dead node */
    assert_int_equal(store_pg_node_heartbeat(b, "B", now + 60 * INT64_C(1000000000)), 0);
    assert_int_equal(
        store_pg_live_list(b, now + 60 * INT64_C(1000000000), 15 * INT64_C(1000000000), live, 8),
        2);
    assert_string_equal(live[1].terminal_id, "T2");
    assert_int_equal(live[1].node_alive, 0);
    assert_int_equal(live[0].node_alive, 1);
    /* B's session ends normally */
    assert_int_equal(store_pg_session_release(b, "T1", 21), 1);
    assert_int_equal(store_pg_live_list(b, now, 1, live, 8), 1);
    /* SQLite handles have no notifications */
    assert_int_equal(sqlx_pg_socket(NULL), -1);
    sqlx_close(a);
    sqlx_close(b);
    sqlx_close(la);
    sqlx_close(lb);
    sqlx_close(cli);
}

int main(void)
{
    log_set_level(LOG_WARN);
    if (!getenv("GS_PG_URL")) {
        fprintf(stderr,
                "test_pg needs GS_PG_URL (integ.pg_unit, or "
                "tests/integ/pgcluster.py run -- %s)\n",
                "build/tests/test_pg");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_fresh_and_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_rolled_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_nodes_migrate_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_schema_as_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trend_trigger_as_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trend_filled_by_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions_concurrent_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pyramid_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_refused_block_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_two_nodes_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_displace_commands_live, setup, teardown),
    };
    int fails = cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
    printf("postgresql groups run\n"); /* integ.pg_unit checks for this line */
    return fails ? 1 : 0;
}
