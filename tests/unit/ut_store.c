/* See ut_store.h. */
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

int ut_store_open(const char *data_dir, const store_opts_t *opts, store_t **out, char *err,
                  size_t errlen)
{
    if (!ut_pg() || !data_dir || !*data_dir || (opts && opts->url))
        return store_open(data_dir, opts, out, err, errlen);
    store_opts_t o = opts ? *opts : (store_opts_t){.sync_full = 1};
    o.url = ut_store_url(data_dir);
    return store_open(data_dir, &o, out, err, errlen);
}
