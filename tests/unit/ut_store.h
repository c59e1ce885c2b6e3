/* Running the store's unit tests on either engine: with GS_PG_URL set (integ.pg_store runs the
 * test binaries against a throwaway cluster, tests/integ/pgcluster.py), every store_open of a
 * test file that includes this header after store/store.h opens PostgreSQL instead of SQLite: a
 * fresh schema per data directory (dropped and created at the first open of that directory in
 * the process, kept for reopenings), named in the URL's search_path. The data directory still
 * holds the master key. Without GS_PG_URL nothing changes. */
#ifndef GS_TESTS_UT_STORE_H
#define GS_TESTS_UT_STORE_H

#include "store/sql.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when the tests run on PostgreSQL (GS_PG_URL set). */
int ut_pg(void);

/* store_open, on PostgreSQL when ut_pg(): see above. */
int ut_store_open(const char *data_dir, const store_opts_t *opts, store_t **out, char *err,
                  size_t errlen);

/* The URL ut_store_open would use for data_dir (schema created if new), or NULL on SQLite. The
 * string is thread-local (valid until the next call on the thread). */
const char *ut_store_url(const char *data_dir);

/* A connection to the database store_open(data_dir) uses, for tests that look at (or tamper
 * with) the stored rows behind the store's back: data_dir/gridsense.db on SQLite (opened through
 * the seam: WAL, busy timeout 5 s), the directory's schema on PostgreSQL. The SQL must be valid on
 * the engine in use. Fails the calling test when it cannot connect. */
sqlx_t *ut_db_open(const char *data_dir);

/* Runs ;-separated statements without results on a new connection (ut_db_open); fails the
 * calling test on an error, with the engine's message. */
void ut_db_exec(const char *data_dir, const char *sql);

/* The first column of the one row `sql` returns (a new connection); fails the calling test when
 * the statement fails or returns no row. *is_null (may be NULL) tells an SQL NULL apart. */
int64_t ut_db_int(const char *data_dir, const char *sql, int *is_null);

/* Same, for a text column: copied into buf (cap bytes, truncated); "" for NULL. Returns buf. */
const char *ut_db_text(const char *data_dir, const char *sql, char *buf, size_t cap);

/* Skips the calling cmocka test on PostgreSQL (behaviour that only SQLite has: file modes,
 * page statistics, EXPLAIN QUERY PLAN, online backup...). */
#define UT_SQLITE_ONLY()                                                                          \
    do {                                                                                           \
        if (ut_pg()) {                                                                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The text of a statement whose spelling differs between the engines. */
#define UT_SQL(sqlite_sql, pg_sql) (ut_pg() ? (pg_sql) : (sqlite_sql))

#define store_open ut_store_open

#endif
