/* sqlx over SQLite: a thin layer, the seam's API follows SQLite's. Contract in sql.h. */
#include "store/sql_impl.h"

#include "core/err.h"
#include "core/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct sqlx base;
    sqlite3 *h;
    int owned; /* opened by sqlx_open (closed by sqlx_close), or wrapped */
} lite_t;

typedef struct {
    struct sqlx_stmt base;
    sqlite3_stmt *s;
} lite_stmt_t;

static const sqlx_ops_t lite_ops;

#define LDB(db) ((lite_t *)(db))
#define LST(st) ((lite_stmt_t *)(st))

/* Maps SQLite's (extended) result code to the seam's error classes, keeping the message. */
static int fail(sqlx_t *db, int code)
{
    sqlite3 *h = LDB(db)->h;
    sqlx__seterr(db, "%s", sqlite3_errmsg(h));
    int ext = sqlite3_extended_errcode(h);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return GS_EEXISTS;
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return GS_EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return GS_ENOMEM;
    default:
        return GS_EDB;
    }
}

static lite_t *lite_new(sqlite3 *h, int owned)
{
    lite_t *l = xcalloc(1, sizeof *l);
    l->base.backend = SQLX_SQLITE;
    l->base.ops = &lite_ops;
    l->h = h;
    l->owned = owned;
    return l;
}

int sqlx__sqlite_open(const char *path, sqlx_t **out, char *err, size_t errlen)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(
        path, &h,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK ||
        sqlite3_exec(h, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open %s: %s", path,
                     h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close(h);
        return GS_EDB;
    }
    sqlite3_busy_timeout(h, 5000);
    *out = &lite_new(h, 1)->base;
    return 0;
}

int sqlx__sqlite_wrap(void *h, sqlx_t **out)
{
    *out = &lite_new(h, 0)->base;
    return 0;
}

static void lite_close(sqlx_t *db)
{
    if (LDB(db)->owned)
        sqlite3_close(LDB(db)->h);
    free(db);
}

static int lite_set_busy_timeout(sqlx_t *db, int ms)
{
    sqlite3_busy_timeout(LDB(db)->h, ms);
    return 0;
}

static int lite_exec(sqlx_t *db, const char *sql)
{
    int rc = sqlite3_exec(LDB(db)->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(db, rc);
}

static int lite_prepare(sqlx_t *db, const char *sql, sqlx_stmt_t **out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(LDB(db)->h, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc);
    lite_stmt_t *st = xcalloc(1, sizeof *st);
    st->base.db = db;
    st->base.nparams = sqlite3_bind_parameter_count(s);
    st->s = s;
    *out = &st->base;
    return 0;
}

static int lite_bind(sqlx_stmt_t *st, int i, const sqlx_value_t *v)
{
    sqlite3_stmt *s = LST(st)->s;
    int rc;
    sqlite3_reset(s); /* binding a stepped statement is SQLITE_MISUSE: the seam resets it */
    switch (v->type) {
    case SQLX_INT:
        rc = sqlite3_bind_int64(s, i, (sqlite3_int64)v->i);
        break;
    case SQLX_FLOAT:
        rc = sqlite3_bind_double(s, i, v->d);
        break;
    case SQLX_TEXT:
        rc = sqlite3_bind_text64(s, i, v->p, v->n, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
    case SQLX_BLOB:
        rc = sqlite3_bind_blob64(s, i, v->p, v->n, SQLITE_TRANSIENT);
        break;
    default:
        rc = sqlite3_bind_null(s, i);
        break;
    }
    return rc == SQLITE_OK ? 0 : fail(st->db, rc);
}

static int lite_clear_bindings(sqlx_stmt_t *st)
{
    sqlite3_clear_bindings(LST(st)->s);
    return 0;
}

static int lite_step(sqlx_stmt_t *st)
{
    int rc = sqlite3_step(LST(st)->s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    /* with prepare_v2 the step's code is the specific one; reset so the statement can run again */
    int e = fail(st->db, rc);
    sqlite3_reset(LST(st)->s);
    return e;
}

static int lite_reset(sqlx_stmt_t *st)
{
    sqlite3_reset(LST(st)->s); /* its code repeats the last step's error, already reported */
    return 0;
}

static void lite_finalize(sqlx_stmt_t *st)
{
    sqlite3_finalize(LST(st)->s);
    free(st);
}

static int lite_column_count(sqlx_stmt_t *st)
{
    return sqlite3_data_count(LST(st)->s);
}

static int lite_column_type(sqlx_stmt_t *st, int col)
{
    switch (sqlite3_column_type(LST(st)->s, col)) {
    case SQLITE_INTEGER:
        return SQLX_INT;
    case SQLITE_FLOAT:
        return SQLX_FLOAT;
    case SQLITE_TEXT:
        return SQLX_TEXT;
    case SQLITE_BLOB:
        return SQLX_BLOB;
    default:
        return SQLX_NULL;
    }
}

static int64_t lite_column_int64(sqlx_stmt_t *st, int col)
{
    return (int64_t)sqlite3_column_int64(LST(st)->s, col);
}

static double lite_column_double(sqlx_stmt_t *st, int col)
{
    return sqlite3_column_double(LST(st)->s, col);
}

static const char *lite_column_text(sqlx_stmt_t *st, int col)
{
    return (const char *)sqlite3_column_text(LST(st)->s, col);
}

static const void *lite_column_blob(sqlx_stmt_t *st, int col)
{
    return sqlite3_column_blob(LST(st)->s, col);
}

static size_t lite_column_bytes(sqlx_stmt_t *st, int col)
{
    return (size_t)sqlite3_column_bytes(LST(st)->s, col);
}

static int64_t lite_changes(sqlx_t *db)
{
    return (int64_t)sqlite3_changes(LDB(db)->h);
}

static int lite_begin(sqlx_t *db)
{
    return lite_exec(db, "BEGIN IMMEDIATE");
}

static int lite_commit(sqlx_t *db)
{
    return lite_exec(db, "COMMIT");
}

static int lite_rollback(sqlx_t *db)
{
    if (sqlite3_get_autocommit(LDB(db)->h))
        return 0; /* no transaction (SQLite may have rolled it back itself, e.g. SQLITE_FULL) */
    return lite_exec(db, "ROLLBACK");
}

static int lite_in_transaction(sqlx_t *db)
{
    return !sqlite3_get_autocommit(LDB(db)->h);
}

void *sqlx_sqlite_handle(sqlx_t *db)
{
    return db && db->backend == SQLX_SQLITE ? LDB(db)->h : NULL;
}

static const sqlx_ops_t lite_ops = {
    .close = lite_close,
    .set_busy_timeout = lite_set_busy_timeout,
    .exec = lite_exec,
    .prepare = lite_prepare,
    .bind = lite_bind,
    .clear_bindings = lite_clear_bindings,
    .step = lite_step,
    .reset = lite_reset,
    .finalize = lite_finalize,
    .column_count = lite_column_count,
    .column_type = lite_column_type,
    .column_int64 = lite_column_int64,
    .column_double = lite_column_double,
    .column_text = lite_column_text,
    .column_blob = lite_column_blob,
    .column_bytes = lite_column_bytes,
    .changes = lite_changes,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .in_transaction = lite_in_transaction,
};
