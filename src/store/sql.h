/* sqlx — the store's SQL seam: one small API over SQLite (sql_sqlite.c) and PostgreSQL (libpq,
 * sql_pg.c), so the store's code runs on either engine (docs/decisions/0007-postgresql-backend.md).
 *
 * It follows SQLite's shape on purpose (prepare / bind / step / column / reset / finalize), because
 * that is how the store is written today:
 *  - SQL uses SQLite-style placeholders `?` and `?N` on both engines; on PostgreSQL they become
 *    `$N` (outside string literals, quoted identifiers, comments and dollar-quoted bodies). A
 *    plain `?` is numbered one above the largest index so far, as SQLite does. PostgreSQL's
 *    jsonb operators `?`, `?|`, `?&` cannot be written through the seam.
 *  - Types: PostgreSQL must infer every parameter's type; where the context does not give it (a
 *    parameter in a SELECT list, `? IS NULL` alone), write CAST(? AS BIGINT / TEXT / BLOB):
 *    "CAST(... AS BLOB)" becomes bytea on PostgreSQL.
 *  - Parameters are 1-based; binding resets a statement that was stepped. Bound values are copied
 * (SQLITE_TRANSIENT on SQLite), so the caller's buffers need not outlive the bind call. A parameter
 * left unbound is NULL.
 *  - sqlx_step returns 1 when a row is available, 0 when the statement is done, < 0 on error.
 *    Stepping a statement that is done runs it again (SQLite's automatic reset).
 *  - Column getters are 0-based, valid after sqlx_step returned 1; pointers they return stay valid
 *    until the next step, reset or finalize of the statement. Conversions follow SQLite: int64 of
 *    a float truncates, of a text parses (strtoll), of NULL is 0; text of a number is its decimal
 *    form. On PostgreSQL, results travel in binary and are decoded by type (int2/4/8, bool, oid,
 *    float4/8, numeric, text/varchar/bpchar/name, bytea); a numeric (what sum(bigint) and avg
 *    return) is SQLX_INT when integral and within int64, else SQLX_FLOAT (a double: digits
 *    beyond its precision are lost). Other types come back as their raw binary bytes
 *    (SQLX_BLOB).
 *
 * Errors: every function that can fail returns 0 (or the documented positive value) or a negative
 * code whose CLASS is the same on both engines (the writer branches on it):
 *    GS_EBUSY     locked / busy / serialization failure / deadlock: retry the transaction
 *    GS_EEXISTS   unique or primary-key violation
 *    -ENOSPC      disk full (SQLITE_FULL; SQLSTATE 53100, 53400)
 *    GS_ECLOSED   the connection is lost (PostgreSQL only): close the handle, open a new one
 *    GS_EINVAL    misuse (bad parameter index, NULL handle)
 *    GS_EDB       anything else
 * sqlx_errmsg gives the engine's message of the last failure of that handle.
 *
 * Transactions: sqlx_begin / sqlx_commit / sqlx_rollback; SAVEPOINT name / RELEASE name /
 * ROLLBACK TO name work through sqlx_exec on both engines. One difference remains and is
 * reported, not hidden: after a failed statement inside a transaction PostgreSQL refuses every
 * further statement until ROLLBACK (or ROLLBACK TO a savepoint taken before), where SQLite goes
 * on. sqlx_commit of such a transaction rolls it back and returns GS_EDB, so a caller never
 * believes an aborted transaction committed (ack only after COMMIT, docs/decisions/0002).
 *
 * Threads: a handle and its statements belong to one thread at a time (like an SQLite
 * connection opened NOMUTEX, or a PGconn).
 */
#ifndef GS_STORE_SQL_H
#define GS_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>

typedef struct sqlx sqlx_t;
typedef struct sqlx_stmt sqlx_stmt_t;

typedef enum {
    SQLX_SQLITE = 1,
    SQLX_POSTGRESQL = 2,
} sqlx_backend_t;

/* sqlx_step results other than errors. */
enum {
    SQLX_DONE = 0,
    SQLX_ROW = 1,
};

/* Column value types (sqlx_column_type). */
enum {
    SQLX_NULL = 0,
    SQLX_INT = 1,
    SQLX_FLOAT = 2,
    SQLX_TEXT = 3,
    SQLX_BLOB = 4,
};

/* 1 when `url` names a PostgreSQL database (postgresql:// or postgres://), else 0 (a path or an
 * SQLite `file:` URI). */
int sqlx_is_postgresql_url(const char *url);

/* A PostgreSQL URL with the connection parameters the server relies on added where the URL
 * does not set them itself: connect_timeout=5 (s) and tcp_user_timeout=10000 (ms), so that an
 * unreachable database fails a call within seconds instead of TCP's minutes (the server's loop
 * thread reads through its connection), and TCP keepalives (idle 30 s, interval 10 s, count 3)
 * so that a silent peer is noticed on an idle connection. libpq ignores the TCP ones on a Unix
 * socket. Returns a malloc'ed string (the caller frees it). */
char *sqlx_pg_url_defaults(const char *url);

/* Opens a connection. `url`: postgresql://... or postgres://... (libpq URI) for PostgreSQL,
 * anything else is an SQLite path or file: URI (created if missing; WAL, busy timeout 5 s).
 * Returns 0 and *out, or GS_EDB / GS_ECLOSED with the reason in err (may be NULL). */
int sqlx_open(const char *url, sqlx_t **out, char *err, size_t errlen);

/* Wraps an SQLite connection opened elsewhere (db.c keeps its pragmas and file-mode rules).
 * The handle does not own `h`: sqlx_close leaves it open. */
int sqlx_wrap_sqlite(void *h, sqlx_t **out);

/* Closes the connection and frees the handle; statements must be finalized first. NULL: no-op. */
void sqlx_close(sqlx_t *db);

/* Which engine the handle talks to, for the few statements whose text differs. */
sqlx_backend_t sqlx_backend(const sqlx_t *db);

/* The error class (GS_EBUSY, GS_EEXISTS, -ENOSPC, GS_ECLOSED, GS_EDB...) of the last failed
 * prepare, step, exec, begin or commit on this handle, 0 when the last of those succeeded: for
 * code that reports a failure later than where it happened. */
int sqlx_errcode(const sqlx_t *db);

/* 1 while the handle is inside a transaction (SQLite: not in autocommit; PostgreSQL: in a
 * transaction block, aborted or not), else 0. */
int sqlx_in_transaction(sqlx_t *db);

/* The sqlite3 * under an SQLite handle (for the few SQLite-only operations: backup, WAL
 * checkpoints, dbstat), NULL for PostgreSQL. */
void *sqlx_sqlite_handle(sqlx_t *db);

/* The engine's message of the last failure on this handle ("" if none). Valid until the next
 * call on the handle. */
const char *sqlx_errmsg(const sqlx_t *db);

/* How long a statement waits for a lock held by another connection before failing with
 * GS_EBUSY: SQLite's busy timeout, PostgreSQL's lock_timeout. 0 = fail at once. */
int sqlx_set_busy_timeout(sqlx_t *db, int ms);

/* Runs one or more ;-separated statements without parameters or results (DDL, migrations). */
int sqlx_exec(sqlx_t *db, const char *sql);

/* Compiles one statement (see the placeholder rules above). 0 and *out, or a negative code. */
int sqlx_prepare(sqlx_t *db, const char *sql, sqlx_stmt_t **out);

int sqlx_bind_int64(sqlx_stmt_t *st, int i, int64_t v);
int sqlx_bind_double(sqlx_stmt_t *st, int i, double v);
/* len < 0: up to the NUL. */
int sqlx_bind_text(sqlx_stmt_t *st, int i, const char *s, ptrdiff_t len);
/* Binds a blob of n bytes (n == 0: an empty blob, not NULL, even if p is NULL). */
int sqlx_bind_blob(sqlx_stmt_t *st, int i, const void *p, size_t n);
int sqlx_bind_null(sqlx_stmt_t *st, int i);
/* The number of parameters (the highest placeholder index). */
int sqlx_bind_parameter_count(sqlx_stmt_t *st);
/* Every parameter back to NULL. */
int sqlx_clear_bindings(sqlx_stmt_t *st);

/* 1 = row, 0 = done, < 0 = error. */
int sqlx_step(sqlx_stmt_t *st);
/* Makes the statement ready to run again; bindings are kept. Drops any pending result. */
int sqlx_reset(sqlx_stmt_t *st);
/* Frees the statement (and, on PostgreSQL, its server-side prepared statement). NULL: no-op. */
void sqlx_finalize(sqlx_stmt_t *st);

int sqlx_column_count(sqlx_stmt_t *st);
int sqlx_column_type(sqlx_stmt_t *st, int col);
int sqlx_column_is_null(sqlx_stmt_t *st, int col);
int64_t sqlx_column_int64(sqlx_stmt_t *st, int col);
double sqlx_column_double(sqlx_stmt_t *st, int col);
/* NUL-terminated; NULL for an SQL NULL. */
const char *sqlx_column_text(sqlx_stmt_t *st, int col);
/* The bytes of a blob or text (may be NULL when empty); length from sqlx_column_bytes. */
const void *sqlx_column_blob(sqlx_stmt_t *st, int col);
size_t sqlx_column_bytes(sqlx_stmt_t *st, int col);

/* Rows inserted, updated or deleted by the last completed INSERT/UPDATE/DELETE on the handle. */
int64_t sqlx_changes(sqlx_t *db);

/* BEGIN (SQLite: BEGIN IMMEDIATE, taking the write lock first as the writer does). */
int sqlx_begin(sqlx_t *db);
/* COMMIT. GS_EDB (and the transaction rolled back) when PostgreSQL had aborted it. */
int sqlx_commit(sqlx_t *db);
/* ROLLBACK; harmless outside a transaction. */
int sqlx_rollback(sqlx_t *db);

/* A multi-row statement's text: head, then `rows` groups of `cols` plain `?` placeholders
 * ("(?, ?, ...)", or a bare "?" when cols is 1) separated by sep, then tail. Malloc'ed (the
 * caller frees it). The placeholders number 1.. in order (see the placeholder rules above). */
char *sqlx_rows_sql(const char *head, int rows, int cols, const char *sep, const char *tail);

/* Runs a one-row, one-column query with up to one text parameter (NULL: none) and stores the
 * integer in *out (0 for NULL). 1 if there was a row, 0 if none, < 0 on error. For checks and
 * migrations, not hot paths. */
int sqlx_query_int64(sqlx_t *db, const char *sql, const char *param, int64_t *out);

/* PostgreSQL: when on, a lost connection is opened again by the next exec, prepare or begin
 * (libpq's PQreset: the same parameters), at most once a second and backing off to every 10 s
 * while the database stays away (calls fail with GS_ECLOSED meanwhile, without waiting), and
 * the session's settings are restored (lock timeout, time zone, every SET run through
 * sqlx_exec outside a transaction). Statements prepared before the loss fail at their next
 * step: for connections that prepare per call. A transaction in progress is lost with the
 * connection, as always. Off by default; no-op on SQLite. */
void sqlx_set_auto_reconnect(sqlx_t *db, int on);

/* ---- PostgreSQL only: notifications (LISTEN / NOTIFY) ---- */

/* The connection's socket, to watch for readability in an event loop (uv_poll_t) and then call
 * sqlx_pg_notifications; -1 for SQLite or a lost connection. */
int sqlx_pg_socket(sqlx_t *db);

typedef void (*sqlx_notify_cb)(const char *channel, const char *payload, void *arg);

/* Reads what the server sent without blocking and hands every pending notification to cb (in
 * the order sent). Returns how many, GS_ECLOSED when the connection is lost (notifications sent
 * meanwhile are lost with it: NOTIFY is not durable), GS_EINVAL on SQLite. A LISTEN must have
 * been run on this connection (sqlx_exec), outside any transaction to take effect at once. */
int sqlx_pg_notifications(sqlx_t *db, sqlx_notify_cb cb, void *arg);

/* ---- internal to the seam's implementation files ---- */

/* Translates ?/?N placeholders to $N into out (cap bytes). Returns the number of parameters
 * (the highest index) or GS_ERANGE (out too small) / GS_EINVAL (index 0 or > 32766). */
int sqlx__translate_placeholders(const char *sql, char *out, size_t cap);

#endif
