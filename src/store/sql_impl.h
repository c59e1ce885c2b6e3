/* sqlx internals shared by sql.c and the two engines (sql_sqlite.c, sql_pg.c); not a contract. */
#ifndef GS_STORE_SQL_IMPL_H
#define GS_STORE_SQL_IMPL_H

#include "store/sql.h"

#include <stdarg.h>

/* A value handed to ops->bind. */
typedef struct {
    int type; /* SQLX_NULL, SQLX_INT, SQLX_FLOAT, SQLX_TEXT, SQLX_BLOB */
    int64_t i;
    double d;
    const void *p; /* text or blob bytes */
    size_t n;      /* their length */
} sqlx_value_t;

typedef struct {
    void (*close)(sqlx_t *db);
    int (*set_busy_timeout)(sqlx_t *db, int ms);
    int (*exec)(sqlx_t *db, const char *sql);
    int (*prepare)(sqlx_t *db, const char *sql, sqlx_stmt_t **out);
    int (*bind)(sqlx_stmt_t *st, int i, const sqlx_value_t *v);
    int (*clear_bindings)(sqlx_stmt_t *st);
    int (*step)(sqlx_stmt_t *st);
    int (*reset)(sqlx_stmt_t *st);
    void (*finalize)(sqlx_stmt_t *st);
    int (*column_count)(sqlx_stmt_t *st);
    int (*column_type)(sqlx_stmt_t *st, int col);
    int64_t (*column_int64)(sqlx_stmt_t *st, int col);
    double (*column_double)(sqlx_stmt_t *st, int col);
    const char *(*column_text)(sqlx_stmt_t *st, int col);
    const void *(*column_blob)(sqlx_stmt_t *st, int col);
    size_t (*column_bytes)(sqlx_stmt_t *st, int col);
    int64_t (*changes)(sqlx_t *db);
    int (*begin)(sqlx_t *db);
    int (*commit)(sqlx_t *db);
    int (*rollback)(sqlx_t *db);
    int (*in_transaction)(sqlx_t *db);
} sqlx_ops_t;

/* The common head of both engines' handles and statements. */
struct sqlx {
    sqlx_backend_t backend;
    const sqlx_ops_t *ops;
    char err[512]; /* last failure's message */
    int last_rc;   /* class of the last failed prepare/step/exec/begin/commit, 0 after success */
};

struct sqlx_stmt {
    sqlx_t *db;
    int nparams; /* highest placeholder index */
};

/* Records a message in db->err (printf-style). */
void sqlx__seterr(sqlx_t *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int sqlx__sqlite_open(const char *path, sqlx_t **out, char *err, size_t errlen);
int sqlx__sqlite_wrap(void *h, sqlx_t **out);
int sqlx__pg_open(const char *url, sqlx_t **out, char *err, size_t errlen);

#endif
