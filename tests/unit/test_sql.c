/* Unit tests of the SQL seam (src/store/sql.h): the SAME cases run on SQLite (a temp file) and on
 * PostgreSQL (GS_PG_URL, a throwaway cluster started by tests/integ/test_pg_unit.py), plus the
 * error classes each engine can produce on its own (connection lost, disk full) and the one
 * documented difference (a failed statement aborts a PostgreSQL transaction).
 *
 * Without GS_PG_URL (plain `ctest -R unit.test_sql`) only the SQLite group runs; integ.pg_unit
 * runs this binary with the URL and fails if the PostgreSQL group did not pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "store/sql.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    sqlx_t *db;
    char url[1024]; /* to open a second connection */
    char dir[64];   /* SQLite temp dir */
} tdb_t;

static int setup_sqlite(void **state)
{
    tdb_t *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/gs-sqlx-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->url, sizeof t->url, "%s/t.db", t->dir);
    char err[256];
    if (sqlx_open(t->url, &t->db, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = t;
    return 0;
}

static int setup_pg(void **state)
{
    const char *url = getenv("GS_PG_URL");
    if (!url)
        return -1;
    tdb_t *t = calloc(1, sizeof *t);
    snprintf(t->url, sizeof t->url, "%s", url);
    char err[256];
    if (sqlx_open(t->url, &t->db, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tdb_t *t = *state;
    sqlx_close(t->db);
    if (t->dir[0]) {
        char p[128];
        const char *suffix[] = {"/t.db",    "/t.db-wal",    "/t.db-shm",
                                "/full.db", "/full.db-wal", "/full.db-shm"};
        for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
            snprintf(p, sizeof p, "%s%s", t->dir, suffix[i]);
            unlink(p);
        }
        rmdir(t->dir);
    }
    free(t);
    return 0;
}

/* Runs the DDL for this engine (the dialects differ for types). */
static void ddl(sqlx_t *db, const char *table, const char *lite, const char *pg)
{
    char drop[128];
    snprintf(drop, sizeof drop, "DROP TABLE IF EXISTS %s", table);
    assert_int_equal(sqlx_exec(db, drop), 0);
    int rc = sqlx_exec(db, sqlx_backend(db) == SQLX_POSTGRESQL ? pg : lite);
    if (rc != 0)
        fprintf(stderr, "ddl: %s\n", sqlx_errmsg(db));
    assert_int_equal(rc, 0);
}

static int64_t count(sqlx_t *db, const char *sql)
{
    int64_t n = -1;
    assert_int_equal(sqlx_query_int64(db, sql, NULL, &n), 1);
    return n;
}

/* ---- cases run on both engines ---- */

static void test_types_roundtrip(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    ddl(db, "rt", "CREATE TABLE rt(k INTEGER PRIMARY KEY, i INTEGER, d REAL, s TEXT, b BLOB)",
        "CREATE TABLE rt(k BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, s TEXT, b BYTEA)");
    static const int64_t ints[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT32_MAX + 1LL, INT64_MAX};
    static const double dbls[] = {0.0,    -0.5,    0.1,     1.0 / 3.0, 6.02214076e23,
                                  -1e300, DBL_MIN, DBL_MAX, INFINITY};
    unsigned char blob[300];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(i * 7); /* includes NUL bytes (i = 0, 256 / gcd...) */
    blob[1] = 0;
    blob[299] = 0;
    const char *texts[] = {"", "plain", "Ünïcødé ⚡ 50 Hz", "it's \"quoted\" \\ back"};

    sqlx_stmt_t *ins = NULL, *sel = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO rt(k, i, d, s, b) VALUES(?, ?, ?, ?, ?)", &ins),
                     0);
    int n = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++, n++) {
        assert_int_equal(sqlx_bind_int64(ins, 1, n), 0);
        assert_int_equal(sqlx_bind_int64(ins, 2, ints[i]), 0);
        assert_int_equal(sqlx_bind_double(ins, 3, dbls[i % (sizeof dbls / sizeof dbls[0])]), 0);
        assert_int_equal(sqlx_bind_text(ins, 4, texts[i % 4], -1), 0);
        assert_int_equal(sqlx_bind_blob(ins, 5, blob, i * 40 + 1), 0);
        int rc = sqlx_step(ins);
        if (rc != 0)
            fprintf(stderr, "insert: %s\n", sqlx_errmsg(db));
        assert_int_equal(rc, 0);
        assert_int_equal(sqlx_changes(db), 1);
        assert_int_equal(sqlx_reset(ins), 0);
    }
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++, n++) {
        assert_int_equal(sqlx_bind_int64(ins, 1, n), 0);
        assert_int_equal(sqlx_bind_null(ins, 2), 0);
        assert_int_equal(sqlx_bind_double(ins, 3, dbls[i]), 0);
        assert_int_equal(sqlx_bind_null(ins, 4), 0);
        assert_int_equal(sqlx_bind_blob(ins, 5, NULL, 0), 0); /* empty, not NULL */
        assert_int_equal(sqlx_step(ins), 0);
        assert_int_equal(sqlx_reset(ins), 0);
    }
    /* all NULL: unbound parameters are NULL after clear_bindings */
    assert_int_equal(sqlx_clear_bindings(ins), 0);
    assert_int_equal(sqlx_bind_int64(ins, 1, n), 0);
    assert_int_equal(sqlx_step(ins), 0);
    sqlx_finalize(ins);

    assert_int_equal(sqlx_prepare(db, "SELECT i, d, s, b FROM rt WHERE k = ?", &sel), 0);
    n = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++, n++) {
        assert_int_equal(sqlx_bind_int64(sel, 1, n), 0);
        assert_int_equal(sqlx_step(sel), 1);
        assert_int_equal(sqlx_column_count(sel), 4);
        assert_int_equal(sqlx_column_type(sel, 0), SQLX_INT);
        assert_true(sqlx_column_int64(sel, 0) == ints[i]);
        double want = dbls[i % (sizeof dbls / sizeof dbls[0])];
        assert_int_equal(sqlx_column_type(sel, 1), SQLX_FLOAT);
        assert_true(sqlx_column_double(sel, 1) == want);
        assert_int_equal(sqlx_column_type(sel, 2), SQLX_TEXT);
        assert_string_equal(sqlx_column_text(sel, 2), texts[i % 4]);
        assert_int_equal(sqlx_column_bytes(sel, 2), strlen(texts[i % 4]));
        assert_int_equal(sqlx_column_type(sel, 3), SQLX_BLOB);
        assert_int_equal(sqlx_column_bytes(sel, 3), i * 40 + 1);
        assert_memory_equal(sqlx_column_blob(sel, 3), blob, i * 40 + 1);
        /* the text of a number is its decimal form, on both engines */
        char want_txt[32];
        snprintf(want_txt, sizeof want_txt, "%lld", (long long)ints[i]);
        assert_string_equal(sqlx_column_text(sel, 0), want_txt);
        assert_int_equal(sqlx_step(sel), 0);
        assert_int_equal(sqlx_reset(sel), 0);
    }
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++, n++) {
        assert_int_equal(sqlx_bind_int64(sel, 1, n), 0);
        assert_int_equal(sqlx_step(sel), 1);
        assert_true(sqlx_column_is_null(sel, 0));
        assert_int_equal(sqlx_column_int64(sel, 0), 0);
        assert_true(sqlx_column_double(sel, 1) == dbls[i]);
        assert_true(sqlx_column_is_null(sel, 2));
        assert_null(sqlx_column_text(sel, 2));
        assert_int_equal(sqlx_column_type(sel, 3), SQLX_BLOB);
        assert_int_equal(sqlx_column_bytes(sel, 3), 0);
        assert_int_equal(sqlx_reset(sel), 0);
    }
    assert_int_equal(sqlx_bind_int64(sel, 1, n), 0);
    assert_int_equal(sqlx_step(sel), 1);
    for (int c = 0; c < 4; c++)
        assert_true(sqlx_column_is_null(sel, c));
    assert_int_equal(sqlx_column_bytes(sel, 3), 0);
    assert_null(sqlx_column_blob(sel, 3));
    assert_int_equal(sqlx_step(sel), 0);
    /* misuse is refused, not undefined */
    assert_int_equal(sqlx_bind_int64(sel, 0, 1), GS_EINVAL);
    assert_int_equal(sqlx_bind_int64(sel, 2, 1), GS_EINVAL);
    sqlx_finalize(sel);

    /* int64 extremes survive arithmetic and comparison on the server, not only storage */
    int64_t v = 0;
    assert_int_equal(sqlx_query_int64(db, "SELECT max(i) FROM rt", NULL, &v), 1);
    assert_true(v == INT64_MAX);
    assert_int_equal(sqlx_query_int64(db, "SELECT min(i) FROM rt", NULL, &v), 1);
    assert_true(v == INT64_MIN);
    assert_int_equal(count(db, "SELECT count(*) FROM rt WHERE b IS NULL"), 1);

    /* aggregates read alike on both engines (PostgreSQL: sum(bigint) and avg are numeric) */
    sqlx_stmt_t *agg = NULL;
    assert_int_equal(sqlx_prepare(db,
                                  "SELECT sum(k), sum(k) - 1000000, avg(k), sum(k) * 0.5,"
                                  " -sum(k) * 100000000000 FROM rt WHERE k < 7",
                                  &agg),
                     0);
    assert_int_equal(sqlx_step(agg), 1);
    assert_int_equal(sqlx_column_type(agg, 0), SQLX_INT);
    assert_int_equal(sqlx_column_int64(agg, 0), 21);
    assert_int_equal(sqlx_column_int64(agg, 1), 21 - 1000000);
    assert_string_equal(sqlx_column_text(agg, 0), "21");
    assert_true(sqlx_column_double(agg, 2) == 3.0);
    assert_true(sqlx_column_double(agg, 3) == 10.5);
    assert_int_equal(sqlx_column_type(agg, 3), SQLX_FLOAT);
    assert_true(sqlx_column_int64(agg, 4) == -2100000000000);
    sqlx_finalize(agg);
}

static void test_placeholders(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    sqlx_stmt_t *st = NULL;
    /* numbered out of order, reused, a plain ? after ?2 is 3, and a ? inside a literal or a
     * comment is text. (PostgreSQL needs a type for a parameter that meets only other
     * parameters: CAST(? AS BIGINT) is portable.) */
    assert_int_equal(sqlx_prepare(db,
                                  "SELECT CAST(?2 AS BIGINT) - ?1, CAST(?1 AS BIGINT) + ?1,"
                                  " CAST(? AS BIGINT) * 10, '?' || 'x', 'it''s ?' -- ?\n",
                                  &st),
                     0);
    assert_int_equal(sqlx_bind_int64(st, 1, 5), 0);
    assert_int_equal(sqlx_bind_int64(st, 2, 12), 0);
    assert_int_equal(sqlx_bind_int64(st, 3, 4), 0);
    assert_int_equal(sqlx_bind_int64(st, 4, 4), GS_EINVAL);
    assert_int_equal(sqlx_step(st), 1);
    assert_int_equal(sqlx_column_int64(st, 0), 7);
    assert_int_equal(sqlx_column_int64(st, 1), 10);
    assert_int_equal(sqlx_column_int64(st, 2), 40);
    assert_string_equal(sqlx_column_text(st, 3), "?x");
    assert_string_equal(sqlx_column_text(st, 4), "it's ?");
    assert_int_equal(sqlx_step(st), 0);
    /* stepping a finished statement runs it again (SQLite's auto-reset) */
    assert_int_equal(sqlx_step(st), 1);
    assert_int_equal(sqlx_column_int64(st, 0), 7);
    sqlx_finalize(st);

    char out[256];
    assert_int_equal(
        sqlx__translate_placeholders("SELECT ?, ?5, ?, \"a?\" /* ? */ $$?$$ $1", out, sizeof out),
        6);
    assert_string_equal(out, "SELECT $1, $5, $6, \"a?\" /* ? */ $$?$$ $1");
    assert_int_equal(sqlx__translate_placeholders("SELECT ?0", out, sizeof out), GS_EINVAL);
    assert_int_equal(sqlx__translate_placeholders("SELECT ?99999", out, sizeof out), GS_EINVAL);
    assert_int_equal(sqlx__translate_placeholders("SELECT ?, ?", out, 10), GS_ERANGE);
    assert_int_equal(sqlx__translate_placeholders("'unterminated ?", out, sizeof out), 0);
}

static void test_unique_violation(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    ddl(db, "uq", "CREATE TABLE uq(t TEXT NOT NULL, seq INTEGER NOT NULL, UNIQUE(t, seq))",
        "CREATE TABLE uq(t TEXT NOT NULL, seq BIGINT NOT NULL, UNIQUE(t, seq))");
    sqlx_stmt_t *st = NULL, *ign = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO uq(t, seq) VALUES(?1, ?2)", &st), 0);
    assert_int_equal(sqlx_bind_text(st, 1, "T1", -1), 0);
    assert_int_equal(sqlx_bind_int64(st, 2, 42), 0);
    assert_int_equal(sqlx_step(st), 0);
    assert_int_equal(sqlx_reset(st), 0);
    assert_int_equal(sqlx_step(st), GS_EEXISTS);
    assert_true(strlen(sqlx_errmsg(db)) > 0);
    assert_int_equal(sqlx_reset(st), 0);
    /* the statement is usable after the error */
    assert_int_equal(sqlx_bind_int64(st, 2, 43), 0);
    assert_int_equal(sqlx_step(st), 0);
    sqlx_finalize(st);
    /* the portable way to make a duplicate a no-op */
    assert_int_equal(
        sqlx_prepare(db, "INSERT INTO uq(t, seq) VALUES(?1, ?2) ON CONFLICT DO NOTHING", &ign), 0);
    assert_int_equal(sqlx_bind_text(ign, 1, "T1", -1), 0);
    assert_int_equal(sqlx_bind_int64(ign, 2, 42), 0);
    assert_int_equal(sqlx_step(ign), 0);
    assert_int_equal(sqlx_changes(db), 0);
    assert_int_equal(sqlx_bind_int64(ign, 2, 44), 0);
    assert_int_equal(sqlx_step(ign), 0);
    assert_int_equal(sqlx_changes(db), 1);
    sqlx_finalize(ign);
    assert_int_equal(count(db, "SELECT count(*) FROM uq"), 3);
    /* a unique violation through exec has the same class */
    assert_int_equal(sqlx_exec(db, "INSERT INTO uq VALUES('T1', 43)"), GS_EEXISTS);
}

static void test_transactions(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    ddl(db, "tx", "CREATE TABLE tx(k INTEGER PRIMARY KEY, v TEXT)",
        "CREATE TABLE tx(k BIGINT PRIMARY KEY, v TEXT)");
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO tx(k, v) VALUES(?, ?)", &st), 0);

    assert_int_equal(sqlx_begin(db), 0);
    for (int k = 1; k <= 10; k++) {
        assert_int_equal(sqlx_bind_int64(st, 1, k), 0);
        assert_int_equal(sqlx_bind_text(st, 2, "rolled back", -1), 0);
        assert_int_equal(sqlx_step(st), 0);
    }
    assert_int_equal(count(db, "SELECT count(*) FROM tx"), 10); /* visible inside */
    assert_int_equal(sqlx_rollback(db), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM tx"), 0);
    assert_int_equal(sqlx_rollback(db), 0); /* harmless outside a transaction */

    assert_int_equal(sqlx_begin(db), 0);
    for (int k = 1; k <= 10; k++) {
        assert_int_equal(sqlx_bind_int64(st, 1, k), 0);
        assert_int_equal(sqlx_bind_text(st, 2, "kept", -1), 0);
        assert_int_equal(sqlx_step(st), 0);
    }
    assert_int_equal(sqlx_commit(db), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM tx WHERE v = 'kept'"), 10);

    /* a savepoint isolates a failing statement; the rest of the transaction commits (how the
     * PostgreSQL writer isolates one bad block, docs/decisions/0007 section 3) */
    assert_int_equal(sqlx_begin(db), 0);
    for (int k = 9; k <= 12; k++) {
        assert_int_equal(sqlx_exec(db, "SAVEPOINT item"), 0);
        assert_int_equal(sqlx_bind_int64(st, 1, k), 0);
        int rc = sqlx_step(st);
        if (k <= 10) {
            assert_int_equal(rc, GS_EEXISTS);
            assert_int_equal(sqlx_exec(db, "ROLLBACK TO item"), 0);
        } else {
            assert_int_equal(rc, 0);
        }
        assert_int_equal(sqlx_exec(db, "RELEASE item"), 0);
    }
    assert_int_equal(sqlx_commit(db), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM tx"), 12);
    sqlx_finalize(st);

    /* a statement prepared and finalized inside a rolled-back transaction leaves nothing
     * behind, and prepare works again afterwards */
    assert_int_equal(sqlx_begin(db), 0);
    assert_int_equal(sqlx_prepare(db, "SELECT count(*) FROM tx", &st), 0);
    assert_int_equal(sqlx_step(st), 1);
    assert_int_equal(sqlx_column_int64(st, 0), 12);
    sqlx_finalize(st);
    assert_int_equal(sqlx_rollback(db), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM tx"), 12);
}

static void test_busy(void **state)
{
    tdb_t *t = *state;
    sqlx_t *db = t->db, *other = NULL;
    ddl(db, "busy", "CREATE TABLE busy(k INTEGER PRIMARY KEY, v INTEGER)",
        "CREATE TABLE busy(k BIGINT PRIMARY KEY, v BIGINT)");
    assert_int_equal(sqlx_exec(db, "INSERT INTO busy VALUES(1, 0)"), 0);
    char err[256];
    assert_int_equal(sqlx_open(t->url, &other, err, sizeof err), 0);
    assert_int_equal(sqlx_set_busy_timeout(other, 50), 0);

    assert_int_equal(sqlx_begin(db), 0);
    assert_int_equal(sqlx_exec(db, "UPDATE busy SET v = 1 WHERE k = 1"), 0);
    /* SQLite refuses the second writer at BEGIN IMMEDIATE, PostgreSQL at the row: either way
     * the class is GS_EBUSY within the timeout */
    int rc = sqlx_begin(other);
    if (rc == 0)
        rc = sqlx_exec(other, "UPDATE busy SET v = 2 WHERE k = 1");
    assert_int_equal(rc, GS_EBUSY);
    assert_int_equal(sqlx_rollback(other), 0);
    assert_int_equal(sqlx_commit(db), 0);
    /* the lock is gone: the other connection writes now */
    assert_int_equal(sqlx_begin(other), 0);
    assert_int_equal(sqlx_exec(other, "UPDATE busy SET v = 2 WHERE k = 1"), 0);
    assert_int_equal(sqlx_changes(other), 1);
    assert_int_equal(sqlx_commit(other), 0);
    assert_int_equal(count(db, "SELECT v FROM busy WHERE k = 1"), 2);
    sqlx_close(other);
}

static void test_reuse_and_changes(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    ddl(db, "many", "CREATE TABLE many(k INTEGER PRIMARY KEY, v INTEGER)",
        "CREATE TABLE many(k BIGINT PRIMARY KEY, v BIGINT)");
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO many VALUES(?, ?)", &st), 0);
    assert_int_equal(sqlx_begin(db), 0);
    for (int k = 0; k < 500; k++) {
        assert_int_equal(sqlx_bind_int64(st, 1, k), 0);
        assert_int_equal(sqlx_bind_int64(st, 2, k % 7), 0);
        assert_int_equal(sqlx_step(st), 0); /* no reset: a done statement runs again */
    }
    assert_int_equal(sqlx_commit(db), 0);
    sqlx_finalize(st);
    assert_int_equal(sqlx_exec(db, "UPDATE many SET v = v + 1 WHERE v = 0"), 0);
    assert_int_equal(sqlx_changes(db), 72); /* k = 0, 7, ..., 497 */
    assert_int_equal(sqlx_exec(db, "DELETE FROM many WHERE k >= 100"), 0);
    assert_int_equal(sqlx_changes(db), 400);
    /* a SELECT does not change the count */
    assert_int_equal(count(db, "SELECT count(*) FROM many"), 100);
    assert_int_equal(sqlx_changes(db), 400);
    /* rows are returned in order, all of them */
    assert_int_equal(sqlx_prepare(db, "SELECT k FROM many WHERE k < ? ORDER BY k DESC", &st), 0);
    assert_int_equal(sqlx_bind_int64(st, 1, 50), 0);
    int n = 0;
    int rc;
    while ((rc = sqlx_step(st)) == 1) {
        assert_int_equal(sqlx_column_int64(st, 0), 49 - n);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 50);
    assert_int_equal(sqlx_column_count(st), 0); /* no row: no columns */
    sqlx_finalize(st);
    /* a syntax error is GS_EDB with the engine's message */
    assert_int_equal(sqlx_prepare(db, "SELEC 1", &st), GS_EDB);
    assert_null(st);
    assert_non_null(strstr(sqlx_errmsg(db), "syntax"));
}

/* A JSON column (measurements.data): TEXT on SQLite, JSONB on PostgreSQL, bound as text and read
 * back as the JSON text on both (the document is in jsonb's own output form, so the text is the
 * same byte for byte). */
static void test_json_column(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    ddl(db, "js", "CREATE TABLE js(k INTEGER PRIMARY KEY, d TEXT)",
        "CREATE TABLE js(k BIGINT PRIMARY KEY, d JSONB)");
    const char *doc = "{\"a\": 1.5, \"b\": [1, \"x\"], \"c\": null}";
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO js(k, d) VALUES(?, ?)", &st), 0);
    sqlx_bind_int64(st, 1, 1);
    sqlx_bind_text(st, 2, doc, -1);
    assert_int_equal(sqlx_step(st), 0);
    sqlx_reset(st);
    sqlx_bind_int64(st, 1, 2);
    sqlx_bind_null(st, 2);
    assert_int_equal(sqlx_step(st), 0);
    sqlx_finalize(st);
    assert_int_equal(sqlx_prepare(db, "SELECT d FROM js ORDER BY k", &st), 0);
    assert_int_equal(sqlx_step(st), 1);
    assert_int_equal(sqlx_column_type(st, 0), SQLX_TEXT);
    assert_string_equal(sqlx_column_text(st, 0), doc);
    assert_int_equal(sqlx_column_bytes(st, 0), strlen(doc));
    assert_memory_equal(sqlx_column_blob(st, 0), doc, strlen(doc));
    assert_int_equal(sqlx_step(st), 1);
    assert_true(sqlx_column_is_null(st, 0));
    assert_null(sqlx_column_text(st, 0));
    assert_int_equal(sqlx_step(st), 0);
    sqlx_finalize(st);
}

/* ---- engine-specific ---- */

/* PostgreSQL: a connection killed under us is GS_ECLOSED, and a failed statement aborts the
 * transaction so that COMMIT cannot succeed. */
static void test_pg_connection_lost(void **state)
{
    tdb_t *t = *state;
    sqlx_t *victim = NULL;
    char err[256];
    assert_int_equal(sqlx_open(t->url, &victim, err, sizeof err), 0);
    int64_t pid = 0;
    assert_int_equal(sqlx_query_int64(victim, "SELECT pg_backend_pid()", NULL, &pid), 1);
    assert_true(pid > 0);
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(victim, "SELECT 1", &st), 0);
    assert_int_equal(sqlx_begin(victim), 0);
    char pidtxt[24];
    snprintf(pidtxt, sizeof pidtxt, "%lld", (long long)pid);
    int64_t ok = 0;
    assert_int_equal(sqlx_query_int64(t->db,
                                      "SELECT pg_terminate_backend(CAST(? AS integer), 10000)::int",
                                      pidtxt, &ok),
                     1);
    assert_int_equal(ok, 1);
    /* (the 10 s timeout makes the call wait until that backend has exited, PostgreSQL 14+) */
    int rc = sqlx_step(st);
    assert_int_equal(rc, GS_ECLOSED);
    assert_int_equal(sqlx_commit(victim), GS_ECLOSED);
    assert_int_equal(sqlx_rollback(victim), GS_ECLOSED);
    sqlx_finalize(st);
    sqlx_close(victim);
    /* connecting to nothing is GS_ECLOSED too, with a message */
    sqlx_t *none = NULL;
    assert_int_equal(
        sqlx_open("postgresql:///x?host=/nonexistent-gs&connect_timeout=2", &none, err, sizeof err),
        GS_ECLOSED);
    assert_null(none);
    assert_non_null(strstr(err, "cannot connect"));
}

static void test_pg_aborted_transaction(void **state)
{
    sqlx_t *db = ((tdb_t *)*state)->db;
    ddl(db, "ab", "", "CREATE TABLE ab(k BIGINT PRIMARY KEY)");
    assert_int_equal(sqlx_exec(db, "INSERT INTO ab VALUES(1)"), 0);
    assert_int_equal(sqlx_begin(db), 0);
    assert_int_equal(sqlx_exec(db, "INSERT INTO ab VALUES(2)"), 0);
    assert_int_equal(sqlx_exec(db, "INSERT INTO ab VALUES(1)"), GS_EEXISTS);
    /* every further statement is refused until ROLLBACK, and COMMIT reports the abort */
    assert_int_equal(sqlx_exec(db, "INSERT INTO ab VALUES(3)"), GS_EDB);
    assert_int_equal(sqlx_commit(db), GS_EDB);
    assert_non_null(strstr(sqlx_errmsg(db), "not committed"));
    assert_int_equal(count(db, "SELECT count(*) FROM ab"), 1);
    /* the same when the COMMIT is sent after a failure libpq did not see as the caller's */
    assert_int_equal(sqlx_begin(db), 0);
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO ab VALUES(?)", &st), 0);
    assert_int_equal(sqlx_bind_int64(st, 1, 1), 0);
    assert_int_equal(sqlx_step(st), GS_EEXISTS);
    sqlx_finalize(st); /* DEALLOCATE deferred: the transaction is aborted */
    assert_int_equal(sqlx_commit(db), GS_EDB);
    assert_int_equal(count(db, "SELECT count(*) FROM ab"), 1);
    /* bytea parameters must meet a bytea context; a NUL in text is refused before sending */
    assert_int_equal(sqlx_prepare(db, "SELECT ?", &st), 0);
    assert_int_equal(sqlx_bind_text(st, 1, "a\0b", 3), GS_EINVAL);
    sqlx_finalize(st);
}

/* SQLite: a full disk is -ENOSPC; a failed statement does not abort the transaction. */
static void test_sqlite_full_and_continue(void **state)
{
    tdb_t *t = *state;
    sqlx_t *db = NULL;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/full.db", t->dir);
    assert_int_equal(sqlx_open(path, &db, err, sizeof err), 0);
    assert_int_equal(sqlx_exec(db, "CREATE TABLE f(b BLOB)"), 0);
    int64_t pages = 0;
    assert_int_equal(sqlx_query_int64(db, "PRAGMA page_count", NULL, &pages), 1);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages + 8);
    assert_int_equal(sqlx_exec(db, sql), 0);
    sqlx_stmt_t *st = NULL;
    assert_int_equal(sqlx_prepare(db, "INSERT INTO f VALUES(?)", &st), 0);
    static unsigned char big[16384];
    int rc = 0, i;
    for (i = 0; i < 100 && rc == 0; i++) {
        assert_int_equal(sqlx_bind_blob(st, 1, big, sizeof big), 0);
        rc = sqlx_step(st);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_true(i > 1 && i < 100);
    sqlx_finalize(st);
    sqlx_close(db);

    db = t->db;
    ddl(db, "cont", "CREATE TABLE cont(k INTEGER PRIMARY KEY)", "");
    assert_int_equal(sqlx_begin(db), 0);
    assert_int_equal(sqlx_exec(db, "INSERT INTO cont VALUES(1)"), 0);
    assert_int_equal(sqlx_exec(db, "INSERT INTO cont VALUES(1)"), GS_EEXISTS);
    assert_int_equal(sqlx_exec(db, "INSERT INTO cont VALUES(2)"), 0);
    assert_int_equal(sqlx_commit(db), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM cont"), 2);
}

/* A connection opened elsewhere (db.c keeps opening SQLite with its own rules) can be used
 * through the seam, and outlives the wrapper. */
static void test_sqlite_wrap(void **state)
{
    tdb_t *t = *state;
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(t->url, &h), SQLITE_OK);
    sqlx_t *w = NULL;
    assert_int_equal(sqlx_wrap_sqlite(NULL, &w), GS_EINVAL);
    assert_int_equal(sqlx_wrap_sqlite(h, &w), 0);
    assert_int_equal(sqlx_backend(w), SQLX_SQLITE);
    assert_int_equal(sqlx_exec(w, "CREATE TABLE IF NOT EXISTS wrapped(k INTEGER)"), 0);
    assert_int_equal(sqlx_exec(w, "INSERT INTO wrapped VALUES(7)"), 0);
    sqlx_close(w);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT k FROM wrapped", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 7);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(h), SQLITE_OK);
    /* no notifications on SQLite */
    assert_int_equal(sqlx_pg_socket(t->db), -1);
    assert_int_equal(sqlx_pg_notifications(t->db, NULL, NULL), GS_EINVAL);
    assert_false(sqlx_is_postgresql_url("/var/lib/gridsense/gridsense.db"));
    assert_true(sqlx_is_postgresql_url("postgresql://db.example/gs"));
    assert_true(sqlx_is_postgresql_url("postgres:///gs?host=/run/postgresql"));
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test(test_types_roundtrip),
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_unique_violation),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_reuse_and_changes),
        cmocka_unit_test(test_json_column),
    };
    const struct CMUnitTest lite_only[] = {
        cmocka_unit_test(test_sqlite_full_and_continue),
        cmocka_unit_test(test_sqlite_wrap),
    };
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test(test_pg_connection_lost),
        cmocka_unit_test(test_pg_aborted_transaction),
    };
    int fails = cmocka_run_group_tests_name("sqlite", both, setup_sqlite, teardown);
    fails += cmocka_run_group_tests_name("sqlite_only", lite_only, setup_sqlite, teardown);
    if (getenv("GS_PG_URL")) {
        fails += cmocka_run_group_tests_name("postgresql", both, setup_pg, teardown);
        fails += cmocka_run_group_tests_name("postgresql_only", pg_only, setup_pg, teardown);
        printf("postgresql groups run\n"); /* integ.pg_unit checks for this line */
    } else {
        printf("postgresql groups not run: GS_PG_URL unset (integ.pg_unit runs them)\n");
    }
    return fails ? 1 : 0;
}
