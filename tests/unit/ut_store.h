/* Running the store's unit tests on either engine: with GS_PG_URL set (integ.pg_store runs the
 * test binaries against a throwaway cluster, tests/integ/pgcluster.py), every store_open of a
 * test file that includes this header after store/store.h opens PostgreSQL instead of SQLite: a
 * fresh schema per data directory (dropped and created at the first open of that directory in
 * the process, kept for reopenings), named in the URL's search_path. The data directory still
 * holds the master key. Without GS_PG_URL nothing changes. */
#ifndef GS_TESTS_UT_STORE_H
#define GS_TESTS_UT_STORE_H

#include "store/store.h"

#include <stddef.h>

/* 1 when the tests run on PostgreSQL (GS_PG_URL set). */
int ut_pg(void);

/* store_open, on PostgreSQL when ut_pg(): see above. */
int ut_store_open(const char *data_dir, const store_opts_t *opts, store_t **out, char *err,
                  size_t errlen);

/* The URL ut_store_open would use for data_dir (schema created if new), or NULL on SQLite. The
 * string is thread-local (valid until the next call on the thread). */
const char *ut_store_url(const char *data_dir);

/* Skips the calling cmocka test on PostgreSQL (behaviour that only SQLite has: file modes,
 * page statistics, EXPLAIN QUERY PLAN, online backup...). */
#define UT_SQLITE_ONLY()                                                                          \
    do {                                                                                           \
        if (ut_pg()) {                                                                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#define store_open ut_store_open

#endif
