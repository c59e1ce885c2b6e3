/* See ut_store.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ut_store.h"

#undef store_open

#include "store/sql.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ut_pg(void)
{
    const char *u = getenv("GS_PG_URL");
    return u && *u;
}

/* Directories seen in this process (their schema was created fresh once); tests open stores
 * from several threads at once. */
static char seen[256][64];
static int nseen;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

const char *ut_store_url(const char *data_dir)
{
    static _Thread_local char url[2048];
    if (!ut_pg())
        return NULL;
    char abs[PATH_MAX];
    if (!realpath(data_dir, abs))
        snprintf(abs, sizeof abs, "%s", data_dir);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the path */
    for (const char *p = abs; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    char schema[64];
    snprintf(schema, sizeof schema, "ut_%016llx", (unsigned long long)h);
    int known = 0;
    pthread_mutex_lock(&seen_mu);
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], schema) == 0)
            known = 1;
    if (!known) {
        sqlx_t *db = NULL;
        char err[256], sql[256];
        if (sqlx_open(getenv("GS_PG_URL"), &db, err, sizeof err) != 0) {
            fprintf(stderr, "ut_store: cannot connect: %s\n", err);
            abort();
        }
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
                 schema);
        if (sqlx_exec(db, sql) != 0) {
            fprintf(stderr, "ut_store: %s: %s\n", sql, sqlx_errmsg(db));
            abort();
        }
        sqlx_close(db);
        if (nseen < 256)
            snprintf(seen[nseen++], sizeof seen[0], "%s", schema);
    }
    pthread_mutex_unlock(&seen_mu);
    const char *base = getenv("GS_PG_URL");
    snprintf(url, sizeof url, "%s%soptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? "&" : "?", schema);
    return url;
}

/* On PostgreSQL no SQLite database may appear in a data dir: one there means something opened
 * the store without the URL (a store_open this header does not reach), and the test would pass on
 * SQLite while claiming PostgreSQL. Checked at each open of the dir. */
static void no_sqlite_file(const char *data_dir)
{
    char path[PATH_MAX], head[16] = "";
    snprintf(path, sizeof path, "%s/gridsense.db", data_dir);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return;
    size_t n = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (n == sizeof head && memcmp(head, "SQLite format 3", 16) == 0)
        fail_msg("%s is an SQLite database although the tests run on PostgreSQL", path);
}

int ut_store_open(const char *data_dir, const store_opts_t *opts, store_t **out, char *err,
                  size_t errlen)
{
    if (ut_pg() && data_dir && *data_dir)
        no_sqlite_file(data_dir);
    if (!ut_pg() || !data_dir || !*data_dir || (opts && opts->url))
        return store_open(data_dir, opts, out, err, errlen);
    store_opts_t o = opts ? *opts : (store_opts_t){.sync_full = 1};
    o.url = ut_store_url(data_dir);
    return store_open(data_dir, &o, out, err, errlen);
}

sqlx_t *ut_db_open(const char *data_dir)
{
    char path[PATH_MAX], err[256] = "";
    const char *url = ut_store_url(data_dir);
    if (!url) {
        snprintf(path, sizeof path, "%s/gridsense.db", data_dir);
        url = path;
    }
    sqlx_t *db = NULL;
    if (sqlx_open(url, &db, err, sizeof err) != 0)
        fail_msg("ut_db_open(%s): %s", data_dir, err);
    return db;
}

/* The helpers below (ut_db_exec, ut_db_int, ut_db_text). On PostgreSQL they keep one connection,
 * to the data dir used last, instead of a new one per statement: each new one is a new server
 * process (tens of ms on a loaded machine) and some tests run hundreds of statements. Nothing is
 * left in a transaction between calls (a failed multi-statement string is rolled back). On SQLite
 * every call opens and closes its own connection, as the tests did before. Under conn_mu; never
 * left locked by a failing assertion (fail_msg jumps out of the test). */
static pthread_mutex_t conn_mu = PTHREAD_MUTEX_INITIALIZER;
static sqlx_t *conn;
static char conn_dir[PATH_MAX];

static void conn_close_at_exit(void)
{
    sqlx_close(conn); /* a goodbye to the server rather than a dropped socket in its log */
    conn = NULL;
}

/* A connection for data_dir (conn_mu held), or NULL with the reason in err. */
static sqlx_t *helper_conn(const char *data_dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    const char *url = ut_store_url(data_dir);
    if (url && conn && strcmp(conn_dir, data_dir) == 0)
        return conn;
    if (!url) {
        snprintf(path, sizeof path, "%s/gridsense.db", data_dir);
        url = path;
    }
    sqlx_t *db = NULL;
    if (sqlx_open(url, &db, err, errlen) != 0) {
        if (!err[0])
            snprintf(err, errlen, "cannot connect to %.200s", url);
        return NULL;
    }
    if (ut_pg()) {
        static int registered;
        if (!registered && atexit(conn_close_at_exit) == 0)
            registered = 1;
        sqlx_close(conn);
        conn = db;
        snprintf(conn_dir, sizeof conn_dir, "%s", data_dir);
    }
    return db;
}

/* Done with a helper's connection (conn_mu held): SQLite's is closed, PostgreSQL's kept. */
static void helper_done(sqlx_t *db)
{
    if (db != conn)
        sqlx_close(db);
}

void ut_db_exec(const char *data_dir, const char *sql)
{
    char msg[1024] = "";
    pthread_mutex_lock(&conn_mu);
    sqlx_t *db = helper_conn(data_dir, msg, sizeof msg);
    if (db && sqlx_exec(db, sql) != 0) {
        snprintf(msg, sizeof msg, "%s", *sqlx_errmsg(db) ? sqlx_errmsg(db) : "failed");
        sqlx_rollback(db); /* a BEGIN in the string: not left open (or aborted) */
    }
    if (db)
        helper_done(db);
    pthread_mutex_unlock(&conn_mu);
    if (msg[0])
        fail_msg("%s: %s", sql, msg);
}

/* Runs `sql` on a helper's connection and copies the first column of its first row: an integer
 * (*iv, *is_null) or, when tbuf, its text. Fails the calling test when there is no row. */
static void first_value(const char *data_dir, const char *sql, int64_t *iv, int *is_null,
                        char *tbuf, size_t tcap)
{
    char msg[1024] = "";
    pthread_mutex_lock(&conn_mu);
    sqlx_t *db = helper_conn(data_dir, msg, sizeof msg);
    if (db) {
        sqlx_stmt_t *st = NULL;
        int rc = sqlx_prepare(db, sql, &st);
        if (rc == 0)
            rc = sqlx_step(st);
        if (rc == SQLX_ROW) {
            if (is_null)
                *is_null = sqlx_column_is_null(st, 0);
            if (iv)
                *iv = sqlx_column_int64(st, 0);
            if (tbuf) {
                const char *t = sqlx_column_text(st, 0);
                snprintf(tbuf, tcap, "%s", t ? t : "");
            }
        } else {
            snprintf(msg, sizeof msg, "%s",
                     rc == SQLX_DONE ? "no row" : *sqlx_errmsg(db) ? sqlx_errmsg(db) : "failed");
        }
        sqlx_finalize(st);
        helper_done(db);
    }
    pthread_mutex_unlock(&conn_mu);
    if (msg[0])
        fail_msg("%s: %s", sql, msg);
}

int64_t ut_db_int(const char *data_dir, const char *sql, int *is_null)
{
    int64_t v = 0;
    first_value(data_dir, sql, &v, is_null, NULL, 0);
    return v;
}

const char *ut_db_text(const char *data_dir, const char *sql, char *buf, size_t cap)
{
    first_value(data_dir, sql, NULL, NULL, buf, cap);
    return buf;
}
