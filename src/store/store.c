/* store lifecycle and the synchronous API (terminals, commands, queries).
 *
 * Statements here are prepared per call rather than cached: these calls are rare, and a fresh
 * statement keeps the list functions re-entrant (a callback may call back into the store).
 */
#include "store/internal.h"
#include "store/pg.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define SYNC_READ_BUSY_MS       100 /* store_opts_t.sync_read_only */

/* ---- Lifecycle ---- */

/* mkdir -p with mode 0700 for the directories it creates (the data dir holds the database and
 * usually the master key: nobody else needs to list it). Returns 0 or -errno. */
static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char *p = xstrdup(dir);
    int rc = 0;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = 0;
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            goto fail;
        }
        *q = '/';
    }
    if (mkdir(p, 0700) != 0) {
        struct stat sb;
        if (errno != EEXIST) {
            rc = -errno;
            goto fail;
        }
        if (stat(p, &sb) != 0) {
            rc = -errno;
            goto fail;
        }
        if (!S_ISDIR(sb.st_mode)) {
            rc = -ENOTDIR;
            goto fail;
        }
    }
    free(p);
    return 0;
fail:
    store__seterr(err, errlen, "cannot create directory %s: %s", p, err_str(rc));
    log_error(STORE_LOG_WHO, "cannot create directory %s: %s", p, err_str(rc));
    free(p);
    return rc;
}

int store__conn_open(store_t *s, sqlx_t **db, sqlite3 **lite, char *err, size_t errlen)
{
    *db = NULL;
    *lite = NULL;
    if (s->pg) {
        char why[512] = "";
        char *url = sqlx_pg_url_defaults(s->url);
        int rc = sqlx_open(url, db, why, sizeof why);
        free(url);
        if (rc < 0) {
            /* libpq's message names host and database, never the password */
            store__seterr(err, errlen, "cannot connect to PostgreSQL: %s", why);
            log_error(STORE_LOG_WHO, "cannot connect to PostgreSQL: %s", why);
            return rc;
        }
        sqlx_set_busy_timeout(*db, s->busy_timeout_ms);
        return 0;
    }
    int rc = store__db_open(s->path, s->sync_full, s->busy_timeout_ms, lite, err, errlen);
    if (rc < 0)
        return rc;
    return sqlx_wrap_sqlite(*lite, db);
}

/* Makes the synchronous connection refuse writes and wait at most busy_ms for a lock. */
static int make_read_only(store_t *s, int busy_ms)
{
    int rc =
        sqlx_exec(s->db, s->pg ? "SET default_transaction_read_only = on" : "PRAGMA query_only=1");
    if (rc < 0)
        return store__db_fail(s->db, "query_only");
    sqlx_set_busy_timeout(s->db, busy_ms);
    return 0;
}

/* PostgreSQL migration hook: migration 4 seals the plaintext secrets, as on SQLite (db.c). */
static int pg_migrate_hook(sqlx_t *db, int to, void *arg, char *err, size_t errlen)
{
    store_t *s = arg;
    if (to != 4)
        return 0;
    int rc = store__migrate_seal(db, s->key, err, errlen);
    return rc < 0 ? rc : 0;
}

/* The schema on either engine, migrated (or, for a reader, checked). */
static int schema_up(store_t *s, int migrate, char *err, size_t errlen)
{
    if (!s->pg) {
        if (migrate)
            return store__migrate(s->db, s->path, s->key, &s->schema_version, err, errlen);
        return store__schema_check(s->db, s->path, &s->schema_version, err, errlen);
    }
    int v = 0, rc;
    if (migrate) {
        char why[400] = "";
        rc = store_pg_migrate(s->db, pg_migrate_hook, s, &v, why, sizeof why);
        if (rc < 0) {
            store__seterr(err, errlen, "PostgreSQL schema: %s", why[0] ? why : err_str(rc));
            log_error(STORE_LOG_WHO, "PostgreSQL schema: %s", why[0] ? why : err_str(rc));
            return rc;
        }
    } else {
        rc = store_pg_schema_version(s->db, &v);
        if (rc < 0) {
            store__seterr(err, errlen, "cannot read the PostgreSQL schema version: %s",
                          sqlx_errmsg(s->db));
            return rc;
        }
        if (v == 0) {
            store__seterr(err, errlen,
                          "no database in PostgreSQL (no gridsense tables in the schema; a "
                          "reader opens an existing one: start the server once first)");
            return GS_ENOTFOUND;
        }
        if (v != store__schema_latest()) {
            store__seterr(err, errlen,
                          "the PostgreSQL database has schema version %d, this program needs %d: "
                          "a reader does not migrate; start the server once first",
                          v, store__schema_latest());
            return GS_ESTATE;
        }
    }
    if (v != store__schema_latest()) {
        store__seterr(err, errlen, "the PostgreSQL schema is at version %d, this program's at %d",
                      v, store__schema_latest());
        return GS_EDB;
    }
    s->schema_version = v;
    return 0;
}

/* store_open for store_opts_t.reader_only: an existing, current database; no key, no
 * migrations, no tightening of the directory, queries only. */
static int open_reader(store_t *s, const store_opts_t *opts, char *err, size_t errlen)
{
    struct stat sb;
    int rc;
    if (!s->pg && stat(s->path, &sb) != 0) {
        store__seterr(err, errlen, "no database at %s (a reader opens an existing one)", s->path);
        return GS_ENOTFOUND;
    }
    /* (store__db_open may create only what stat just found; the WAL mode it asks for is the
     * database's already, which changes nothing) */
    rc = store__conn_open(s, &s->db, &s->lite, err, errlen);
    if (rc < 0)
        return rc;
    sqlx_set_auto_reconnect(s->db, 1); /* statements here are prepared per call */
    rc = schema_up(s, 0, err, errlen);
    if (rc < 0)
        return rc;
    rc = make_read_only(s, opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : SYNC_READ_BUSY_MS);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot make the reader connection read-only");
        return rc;
    }
    s->reader_only = 1;
    s->sync_read_only = 1;
    return 0;
}

int store_open(const char *data_dir, const store_opts_t *opts, store_t **out, char *err,
               size_t errlen)
{
    store_t *s = NULL;
    int rc;

    *out = NULL;
    if (!data_dir || !*data_dir) {
        store__seterr(err, errlen, "no data directory given");
        rc = GS_EINVAL;
        goto fail;
    }
    if (!(opts && opts->reader_only)) { /* a reader creates nothing */
        rc = mkdir_p(data_dir, err, errlen);
        if (rc < 0)
            goto fail;
    }

    s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->sync_full = opts ? opts->sync_full != 0 : 1;
    s->busy_timeout_ms =
        opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    size_t n = strlen(data_dir) + sizeof "/" STORE_DB_FILE;
    s->path = xmalloc(n);
    snprintf(s->path, n, "%s/%s", data_dir, STORE_DB_FILE);
    if (opts && opts->url && *opts->url) {
        if (!sqlx_is_postgresql_url(opts->url)) {
            store__seterr(err, errlen, "the database URL must be postgresql://...");
            rc = GS_ECONFIG;
            goto fail;
        }
        s->pg = 1;
        s->url = xstrdup(opts->url);
    }
    if (opts && opts->reader_only) {
        rc = open_reader(s, opts, err, errlen);
        if (rc < 0)
            goto fail;
        *out = s;
        return 0;
    }
    if (opts && opts->master_key_file && *opts->master_key_file) {
        s->key_path = xstrdup(opts->master_key_file);
    } else {
        n = strlen(data_dir) + sizeof "/" STORE_KEY_FILE;
        s->key_path = xmalloc(n);
        snprintf(s->key_path, n, "%s/%s", data_dir, STORE_KEY_FILE);
    }
    rc = store__tighten_dir(data_dir, s->key_path);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot make data directory %s private: %s", data_dir,
                      err_str(rc));
        goto fail;
    }

    rc = store__conn_open(s, &s->db, &s->lite, err, errlen);
    if (rc < 0)
        goto fail;
    sqlx_set_auto_reconnect(s->db, 1); /* statements here are prepared per call */
    /* secure_delete on this connection (the only one that changes secrets): a replaced secret,
     * plaintext before migration 4 or sealed under a retired key, is overwritten with zeros in
     * the file instead of lingering in a free block of every later copy of the database. */
    if (!s->pg && sqlx_exec(s->db, "PRAGMA secure_delete=ON") != 0) {
        rc = store__db_fail(s->db, "secure_delete");
        store__seterr(err, errlen, "cannot set secure_delete on %s", s->path);
        goto fail;
    }
    rc = store__keys_open(s, opts ? opts->key_reset : 0, err, errlen);
    if (rc < 0)
        goto fail; /* the reason is in err, which callers print */
    rc = schema_up(s, 1, err, errlen);
    if (rc < 0)
        goto fail;
    if (s->pg && (rc = store__pg_partitions(s, s->db, NULL)) < 0) {
        store__seterr(err, errlen, "PostgreSQL partitions: %s", sqlx_errmsg(s->db));
        goto fail;
    }
    rc = store__keys_check(s, err, errlen);
    if (rc < 0)
        goto fail;
    if (opts && opts->sync_read_only) {
        /* The loop thread's connection: a write by mistake fails at once instead of waiting
         * for the writer's lock, and a read waits at most briefly (in WAL mode readers wait
         * only in rare cases such as another process recovering the WAL). */
        rc = make_read_only(s, SYNC_READ_BUSY_MS);
        if (rc < 0) {
            store__seterr(err, errlen, "cannot make the synchronous connection read-only");
            goto fail;
        }
        s->sync_read_only = 1;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    store_writer_stop(s);
    if (s->lite && s->sync_read_only && !s->reader_only) /* the last connection to close
                                                            checkpoints the WAL */
        sqlx_exec(s->db, "PRAGMA query_only=0");
    sqlx_close(s->db); /* a wrapped SQLite handle stays open: closed below */
    if (s->lite && sqlite3_close(s->lite) != 0)
        log_error(STORE_LOG_WHO, "close: %s", sqlite3_errmsg(s->lite));
    store__keys_close(s);
    free(s->path);
    free(s->url);
    free(s->key_path);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int store_schema_version(store_t *s)
{
    return s->schema_version;
}

/* ---- Helpers ---- */

/* Terminal ids appear in file names, logs and URLs: 1..32 of [A-Za-z0-9._-]. */
static int valid_id(const char *id)
{
    size_t n = 0;
    if (!id)
        return 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= STORE_ID_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

/* Copies a text column into dst (cap bytes, always NUL-terminated, truncating). */
static void column_str(sqlx_stmt_t *st, int col, char *dst, size_t cap)
{
    const char *z = sqlx_column_text(st, col);
    size_t n = z ? (size_t)sqlx_column_bytes(st, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, z, n);
    dst[n] = 0;
}

/* Runs a statement that returns no rows; returns 0 or GS_EDB (logged as `what`). */
static int step_done(sqlx_t *db, sqlx_stmt_t *st, const char *what)
{
    if (sqlx_step(st) != SQLX_DONE)
        return store__db_fail(db, what);
    return 0;
}

/* ---- Terminals ---- */

#define TERMINAL_COLS                                                                              \
    "id, name, lat, lon, nominal_hz, vt_ratio, ct_ratio, secret, created_ns, durable_seq, "        \
    "declared_v"

/* Fills *t from a row selected with TERMINAL_COLS, unsealing the secret when s is not NULL
 * (store__secret_open's codes when it cannot be). */
static int row_terminal(store_t *s, sqlx_stmt_t *st, store_terminal_t *t)
{
    memset(t, 0, sizeof *t);
    column_str(st, 0, t->id, sizeof t->id);
    column_str(st, 1, t->name, sizeof t->name);
    t->has_location = sqlx_column_type(st, 2) != SQLX_NULL && sqlx_column_type(st, 3) != SQLX_NULL;
    if (t->has_location) {
        t->lat = sqlx_column_double(st, 2);
        t->lon = sqlx_column_double(st, 3);
    }
    t->nominal_hz = (int)sqlx_column_int64(st, 4);
    t->vt_ratio = sqlx_column_double(st, 5);
    t->ct_ratio = sqlx_column_double(st, 6);
    t->created_ns = sqlx_column_int64(st, 8);
    t->durable_seq = (uint64_t)sqlx_column_int64(st, 9);
    t->declared_v = sqlx_column_type(st, 10) == SQLX_NULL ? 0 : sqlx_column_double(st, 10);
    if (!s)
        return 0;
    const void *sealed = sqlx_column_blob(st, 7);
    return store__secret_open(s, t->id, sealed, (size_t)sqlx_column_bytes(st, 7), t->secret);
}

int store_terminal_add(store_t *s, const store_terminal_t *t)
{
    sqlx_stmt_t *st = NULL;
    uint8_t sealed[STORE_SEALED_LEN];
    int rc;
    if (!s->key)
        return GS_ESTATE; /* a reader (no key, no writes) */

    if (!t || !valid_id(t->id))
        return GS_EINVAL;
    if (t->nominal_hz != 0 && t->nominal_hz != 50 && t->nominal_hz != 60)
        return GS_EINVAL;
    if (t->has_location && !(t->lat >= -90 && t->lat <= 90 && t->lon >= -180 && t->lon <= 180))
        return GS_EINVAL;
    if (!(t->declared_v >= 0 && t->declared_v < 1e9))
        return GS_EINVAL;

    /* durable_seq starts at what is already stored, so a re-added terminal is acknowledged
     * consistently with the blocks kept from its previous life. The secret is sealed under our
     * key, and the row only inserted if that is still the database's key (?11): a rotation by
     * another process in between would otherwise leave a row under a key about to be deleted.
     * Then the key is refreshed and the insert tried once more. */
    rc = store__prepare(s->db,
                        "INSERT INTO terminals(" TERMINAL_COLS ")"
                        " SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS DOUBLE PRECISION),"
                        " CAST(?4 AS DOUBLE PRECISION), CAST(?5 AS INTEGER),"
                        " CAST(?6 AS DOUBLE PRECISION), CAST(?7 AS DOUBLE PRECISION),"
                        " CAST(?8 AS BLOB), CAST(?9 AS BIGINT),"
                        " coalesce((SELECT max(seq) FROM blocks WHERE terminal_id = ?1), 0),"
                        " CAST(?10 AS DOUBLE PRECISION)"
                        " WHERE EXISTS(SELECT 1 FROM master_key WHERE id = 1 AND key_id = ?11)",
                        &st);
    if (rc < 0)
        goto fail;
    for (int attempt = 0; attempt < 2; attempt++) {
        store__secret_seal(s->key, t->id, t->secret, sealed);
        sqlx_reset(st);
        sqlx_bind_text(st, 1, t->id, -1);
        sqlx_bind_text(st, 2, t->name, (int)strnlen(t->name, sizeof t->name - 1));
        if (t->has_location) {
            sqlx_bind_double(st, 3, t->lat);
            sqlx_bind_double(st, 4, t->lon);
        }
        sqlx_bind_int64(st, 5, t->nominal_hz ? t->nominal_hz : 50);
        sqlx_bind_double(st, 6, t->vt_ratio > 0 ? t->vt_ratio : 1.0);
        sqlx_bind_double(st, 7, t->ct_ratio > 0 ? t->ct_ratio : 1.0);
        sqlx_bind_blob(st, 8, sealed, sizeof sealed);
        sqlx_bind_int64(st, 9, t->created_ns ? t->created_ns : time_utc_ns());
        if (t->declared_v > 0)
            sqlx_bind_double(st, 10, t->declared_v);
        sqlx_bind_blob(st, 11, s->key->id, STORE_KEY_ID_LEN);
        int src = sqlx_step(st);
        if (src == GS_EEXISTS) {
            rc = GS_EEXISTS;
            goto fail;
        }
        if (src != SQLX_DONE) {
            rc = store__db_fail(s->db, "add terminal");
            goto fail;
        }
        if (sqlx_changes(s->db) == 1) {
            rc = 0;
            goto fail;
        }
        rc = store__key_refresh(s); /* the key changed under us */
        if (rc < 0)
            goto fail;
    }
    log_error(STORE_LOG_WHO, "add terminal %s: the master key keeps changing", t->id);
    rc = GS_EBUSY;
fail:
    sqlx_finalize(st);
    return rc;
}

/* store_terminal_get / store_terminal_info: unseal selects whether the secret is opened. */
static int terminal_get(store_t *s, const char *id, store_terminal_t *out, int unseal)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, "SELECT " TERMINAL_COLS " FROM terminals WHERE id = ?1", &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(st, 1, id ? id : "", -1);
    int src = sqlx_step(st);
    if (src == SQLX_DONE) {
        rc = GS_ENOTFOUND;
        goto fail;
    }
    if (src != SQLX_ROW) {
        rc = store__db_fail(s->db, "get terminal");
        goto fail;
    }
    rc = row_terminal(unseal ? s : NULL, st, out);
fail:
    sqlx_finalize(st);
    return rc;
}

int store_terminal_get(store_t *s, const char *id, store_terminal_t *out)
{
    if (!s->key)
        return GS_ESTATE; /* a reader has no key: it cannot see secrets */
    return terminal_get(s, id, out, 1);
}

int store_terminal_info(store_t *s, const char *id, store_terminal_t *out)
{
    return terminal_get(s, id, out, 0);
}

int store_terminal_list(store_t *s, int (*cb)(void *ud, const store_terminal_t *t), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, "SELECT " TERMINAL_COLS " FROM terminals ORDER BY id", &st);
    if (rc < 0)
        goto fail;
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_terminal_t t;
        rc = row_terminal(NULL, st, &t);
        if (rc < 0)
            goto fail;
        rc = cb(ud, &t);
        if (rc != 0)
            goto fail;
    }
    if (src != SQLX_DONE) {
        rc = store__db_fail(s->db, "list terminals");
        goto fail;
    }
    rc = 0;
fail:
    sqlx_finalize(st);
    return rc;
}

int store_terminal_remove(store_t *s, const char *id)
{
    sqlx_stmt_t *st = NULL;
    int rc, in_tx = 0;

    if (sqlx_begin(s->db) != 0) {
        rc = store__db_fail(s->db, "remove terminal");
        goto fail;
    }
    in_tx = 1;
    rc = store__prepare(s->db, "DELETE FROM terminals WHERE id = ?1", &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(st, 1, id ? id : "", -1);
    rc = step_done(s->db, st, "remove terminal");
    if (rc < 0)
        goto fail;
    if (sqlx_changes(s->db) == 0) {
        rc = GS_ENOTFOUND;
        goto fail;
    }
    sqlx_finalize(st);
    rc = store__prepare(s->db, "DELETE FROM commands WHERE terminal_id = ?1 AND state < 3", &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(st, 1, id, -1);
    rc = step_done(s->db, st, "remove terminal commands");
    if (rc < 0)
        goto fail;
    if (sqlx_commit(s->db) != 0) {
        rc = store__db_fail(s->db, "remove terminal");
        goto fail;
    }
    in_tx = 0;
    rc = 0;
fail:
    sqlx_finalize(st);
    if (in_tx)
        sqlx_rollback(s->db);
    return rc;
}

int store_terminal_set_secret(store_t *s, const char *id, const uint8_t secret[STORE_SECRET_LEN])
{
    sqlx_stmt_t *st = NULL;
    uint8_t sealed[STORE_SEALED_LEN];
    const char *tid = id ? id : "";
    if (!s->key)
        return GS_ESTATE; /* a reader (no key, no writes) */
    /* As in store_terminal_add: written only under the database's current key. */
    int rc = store__prepare(s->db,
                            "UPDATE terminals SET secret = ?2 WHERE id = ?1"
                            " AND EXISTS(SELECT 1 FROM master_key WHERE id = 1 AND key_id = ?3)",
                            &st);
    if (rc < 0)
        goto fail;
    for (int attempt = 0; attempt < 2; attempt++) {
        store__secret_seal(s->key, tid, secret, sealed);
        sqlx_reset(st);
        sqlx_bind_text(st, 1, tid, -1);
        sqlx_bind_blob(st, 2, sealed, sizeof sealed);
        sqlx_bind_blob(st, 3, s->key->id, STORE_KEY_ID_LEN);
        rc = step_done(s->db, st, "set secret");
        if (rc < 0)
            goto fail;
        if (sqlx_changes(s->db))
            goto fail; /* rc == 0 */
        rc = store__key_refresh(s);
        if (rc == 0 && attempt == 0)
            continue; /* the key changed under us (or no such terminal: found out below) */
        if (rc < 0)
            goto fail;
    }
    rc = GS_ENOTFOUND;
fail:
    sqlx_finalize(st);
    return rc;
}

int store_credentials_version(store_t *s, int64_t *version)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, "SELECT version FROM credentials_version WHERE id = 1", &st);
    if (rc < 0)
        return rc;
    if (sqlx_step(st) == SQLX_ROW) {
        *version = sqlx_column_int64(st, 0);
        rc = 0;
    } else {
        rc = store__db_fail(s->db, "credentials version");
    }
    sqlx_finalize(st);
    return rc;
}

int store_transaction(store_t *s, int op)
{
    static const char *const sql[] = {"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};
    int rc;
    if (op < STORE_TX_BEGIN || op > STORE_TX_ROLLBACK)
        return GS_EINVAL;
    rc = op == STORE_TX_BEGIN    ? sqlx_begin(s->db)
         : op == STORE_TX_COMMIT ? sqlx_commit(s->db)
                                 : sqlx_rollback(s->db);
    if (rc < 0)
        return store__db_fail(s->db, sql[op]);
    return 0;
}

int store_terminal_count(store_t *s, int64_t *n)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, "SELECT count(*) FROM terminals", &st);
    if (rc < 0)
        goto fail;
    if (sqlx_step(st) != SQLX_ROW) {
        rc = store__db_fail(s->db, "count terminals");
        goto fail;
    }
    *n = sqlx_column_int64(st, 0);
fail:
    sqlx_finalize(st);
    return rc;
}

/* ---- Commands ---- */

const char *store_cmd_state_name(int state)
{
    static const char *const names[] = {"queued", "sent",    "acked",    "done",
                                        "failed", "expired", "cancelled"};
    if (state < 0 || state > STORE_CMD_CANCELLED)
        return NULL;
    return names[state];
}

#define COMMAND_COLS                                                                               \
    "id, terminal_id, verb, args, state, created_ns, updated_ns, expires_ns, result_status, "      \
    "result"

/* Fills *c from a row selected with COMMAND_COLS. GS_EDB if a stored blob is oversized. */
static int row_command(sqlx_stmt_t *st, store_command_t *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlx_column_int64(st, 0);
    column_str(st, 1, c->terminal_id, sizeof c->terminal_id);
    c->verb = (int)sqlx_column_int64(st, 2);
    int nargs = sqlx_column_bytes(st, 3);
    const void *args = sqlx_column_blob(st, 3);
    c->state = (int)sqlx_column_int64(st, 4);
    c->created_ns = sqlx_column_int64(st, 5);
    c->updated_ns = sqlx_column_int64(st, 6);
    c->expires_ns = sqlx_column_int64(st, 7);
    c->result_status = (int)sqlx_column_int64(st, 8);
    int nresult = sqlx_column_bytes(st, 9);
    const void *result = sqlx_column_blob(st, 9);
    if (nargs > STORE_ARGS_MAX || nresult > STORE_ARGS_MAX) {
        log_error(STORE_LOG_WHO, "command %lld: stored arguments or result too long",
                  (long long)c->id);
        return GS_EDB;
    }
    if (args && nargs > 0)
        memcpy(c->args, args, (size_t)nargs);
    c->args_len = (size_t)nargs;
    if (result && nresult > 0)
        memcpy(c->result, result, (size_t)nresult);
    c->result_len = (size_t)nresult;
    return 0;
}

/* Reads every row of st (prepared with COMMAND_COLS) and finalizes it, then calls cb for each
 * row; a non-zero cb return stops and is returned. The rows are read first so that the read
 * transaction has ended before cb runs: callbacks write (the gateway marks commands sent), and
 * in WAL mode a connection that still holds a read snapshot cannot start writing once another
 * connection has committed (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out). */
static int each_command(sqlx_t *db, sqlx_stmt_t *st, const char *what,
                        int (*cb)(void *ud, const store_command_t *c), void *ud)
{
    store_command_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc, src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        rc = row_command(st, &rows[n]);
        if (rc < 0)
            goto fail;
        n++;
    }
    if (src != SQLX_DONE) {
        rc = store__db_fail(db, what);
        goto fail;
    }
    sqlx_finalize(st);
    st = NULL;
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(ud, &rows[i]);
fail:
    free(rows);
    sqlx_finalize(st);
    return rc;
}

int store_command_create(store_t *s, const char *terminal_id, int verb, const uint8_t *args,
                         size_t args_len, int64_t ttl_ns, int64_t *id_out)
{
    return store_command_create_limited(s, terminal_id, verb, args, args_len, ttl_ns, 0, id_out);
}

int store__command_create(sqlx_t *db, sqlx_stmt_t *st, const char *terminal_id, int verb,
                          const uint8_t *args, size_t args_len, int64_t now, int64_t ttl_ns,
                          int max_pending, int64_t *id_out)
{
    sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_int64(st, 2, verb);
    sqlx_bind_blob(st, 3, args_len ? (const void *)args : "", (int)args_len);
    sqlx_bind_int64(st, 4, now);
    sqlx_bind_int64(st, 5, now + ttl_ns);
    sqlx_bind_int64(st, 6, max_pending);
    /* RETURNING id: a row when inserted (SQLite >= 3.35 and PostgreSQL alike). */
    int src = sqlx_step(st);
    int64_t id = src == SQLX_ROW ? sqlx_column_int64(st, 0) : 0;
    sqlx_reset(st);
    sqlx_clear_bindings(st);
    if (src != SQLX_DONE && src != SQLX_ROW)
        return store__db_fail(db, "create command");
    if (src == SQLX_ROW) {
        if (id_out)
            *id_out = id;
        /* Several nodes: wake the node holding the terminal (sent when this commits; its
         * one-second poll is the fallback, so a failure here costs only latency). */
        if (sqlx_backend(db) == SQLX_POSTGRESQL && store_pg_command_notify(db, terminal_id) < 0)
            log_warn(STORE_LOG_WHO, "command notification for %s not sent: %s", terminal_id,
                     sqlx_errmsg(db));
        return 0;
    }
    /* Nothing inserted: no such terminal, or the limit. Inside the writer's transaction (or
     * right after the statement) the answer is consistent with the insert's view. */
    sqlx_stmt_t *q = NULL;
    int rc = store__prepare(db, "SELECT EXISTS(SELECT 1 FROM terminals WHERE id = ?1)", &q);
    if (rc < 0)
        return rc;
    sqlx_bind_text(q, 1, terminal_id, -1);
    src = sqlx_step(q);
    rc = src != SQLX_ROW                ? store__db_fail(db, "create command")
         : (int)sqlx_column_int64(q, 0) ? GS_ELIMIT
                                        : GS_ENOTFOUND;
    sqlx_finalize(q);
    return rc;
}

int store_command_create_limited(store_t *s, const char *terminal_id, int verb, const uint8_t *args,
                                 size_t args_len, int64_t ttl_ns, int max_pending, int64_t *id_out)
{
    sqlx_stmt_t *st = NULL;
    int rc;

    if (args_len > STORE_ARGS_MAX)
        return GS_ERANGE;
    if (!terminal_id || (args_len && !args))
        return GS_EINVAL;
    rc = store__prepare(s->db, STORE__SQL_COMMAND_CREATE, &st);
    if (rc < 0)
        return rc;
    rc = store__command_create(s->db, st, terminal_id, verb, args, args_len, time_utc_ns(), ttl_ns,
                               max_pending, id_out);
    sqlx_finalize(st);
    return rc;
}

int store_command_get(store_t *s, int64_t id, store_command_t *out)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, "SELECT " COMMAND_COLS " FROM commands WHERE id = ?1", &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_int64(st, 1, id);
    int src = sqlx_step(st);
    if (src == SQLX_DONE) {
        rc = GS_ENOTFOUND;
        goto fail;
    }
    if (src != SQLX_ROW) {
        rc = store__db_fail(s->db, "get command");
        goto fail;
    }
    rc = row_command(st, out);
fail:
    sqlx_finalize(st);
    return rc;
}

int store_command_list(store_t *s, const char *terminal_id, int limit,
                       int (*cb)(void *ud, const store_command_t *c), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        s->db,
        "SELECT " COMMAND_COLS " FROM commands"
        " WHERE CAST(?1 AS TEXT) IS NULL OR terminal_id = ?1 ORDER BY id DESC LIMIT ?2",
        &st);
    if (rc < 0)
        return rc;
    if (terminal_id)
        sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_int64(st, 2, limit > 0 ? limit : INT64_MAX); /* no limit */
    return each_command(s->db, st, "list commands", cb, ud);
}

int store_command_pending(store_t *s, const char *terminal_id, int64_t after_id, int limit,
                          int (*cb)(void *ud, const store_command_t *c), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT " COMMAND_COLS " FROM commands"
                            " WHERE terminal_id = ?1 AND state < 2 AND expires_ns > ?2"
                            " AND id > ?3 ORDER BY id LIMIT ?4",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id ? terminal_id : "", -1);
    sqlx_bind_int64(st, 2, time_utc_ns());
    sqlx_bind_int64(st, 3, after_id);
    sqlx_bind_int64(st, 4, limit > 0 ? limit : INT64_MAX);
    return each_command(s->db, st, "pending commands", cb, ud);
}

int store_command_count_pending(store_t *s, const char *terminal_id, int64_t *n)
{
    sqlx_stmt_t *st = NULL;
    /* ?2 and ?3 of the shared text are not used here: PostgreSQL must still give them a type */
    int rc = store__prepare(s->db,
                            "SELECT " STORE__SQL_COUNT_PENDING
                            " AND CAST(?2 AS BIGINT) IS NULL AND CAST(?3 AS BIGINT) IS NULL",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, terminal_id ? terminal_id : "", -1);
    sqlx_bind_int64(st, 4, time_utc_ns());
    if (sqlx_step(st) == SQLX_ROW) {
        *n = sqlx_column_int64(st, 0);
        rc = 0;
    } else {
        rc = store__db_fail(s->db, "count pending commands");
    }
    sqlx_finalize(st);
    return rc;
}

int store_command_new_since(store_t *s, int64_t after_id, int limit,
                            int (*cb)(void *ud, const store_command_t *c), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT " COMMAND_COLS " FROM commands"
                            " WHERE id > ?1 AND state = 0 ORDER BY id LIMIT ?2",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, after_id);
    sqlx_bind_int64(st, 2, limit > 0 ? limit : INT64_MAX);
    return each_command(s->db, st, "new commands", cb, ud);
}

int store_command_max_id(store_t *s, int64_t *id)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db, "SELECT COALESCE(MAX(id), 0) FROM commands", &st);
    if (rc < 0)
        return rc;
    if (sqlx_step(st) == SQLX_ROW) {
        *id = sqlx_column_int64(st, 0);
        rc = 0;
    } else {
        rc = store__db_fail(s->db, "max command id");
    }
    sqlx_finalize(st);
    return rc;
}

void store__bind_command_update(sqlx_stmt_t *st, int64_t id, int state, int64_t now,
                                int result_status, const uint8_t *result, size_t result_len)
{
    sqlx_bind_int64(st, 1, id);
    sqlx_bind_int64(st, 2, state);
    sqlx_bind_int64(st, 3, now);
    sqlx_bind_int64(st, 4, result_status);
    sqlx_bind_blob(st, 5, result_len ? (const void *)result : "", (int)result_len);
}

int store_command_update(store_t *s, int64_t id, int state, int result_status,
                         const uint8_t *result, size_t result_len)
{
    sqlx_stmt_t *st = NULL;
    int rc;

    if (!store_cmd_state_name(state))
        return GS_EINVAL;
    if (result_len > STORE_ARGS_MAX)
        return GS_ERANGE;
    if (result_len && !result)
        return GS_EINVAL;
    rc = store__prepare(s->db, STORE__SQL_COMMAND_UPDATE, &st);
    if (rc < 0)
        goto fail;
    store__bind_command_update(st, id, state, time_utc_ns(), result_status, result, result_len);
    rc = step_done(s->db, st, "update command");
    if (rc < 0)
        goto fail;
    if (sqlx_changes(s->db) == 0) {
        store_command_t *c = xmalloc(sizeof *c);
        rc = store_command_get(s, id, c);
        free(c);
        if (rc == 0)
            rc = GS_ESTATE;
        goto fail;
    }
    rc = 0;
fail:
    sqlx_finalize(st);
    return rc;
}

int store_command_any_expired(store_t *s, int64_t now_ns)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT EXISTS(SELECT 1 FROM commands"
                            " WHERE state < 3 AND expires_ns <= ?1)",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, now_ns);
    if (sqlx_step(st) == SQLX_ROW)
        rc = (int)sqlx_column_int64(st, 0) != 0;
    else
        rc = store__db_fail(s->db, "expire commands");
    sqlx_finalize(st);
    return rc;
}

int store_command_expire(store_t *s, int64_t now_ns, int *n)
{
    sqlx_stmt_t *st = NULL;
    if (n)
        *n = 0;
    /* Look first with a read so that the UPDATE, which must wait for the write lock, only runs
     * when something has actually expired. */
    int rc = store_command_any_expired(s, now_ns);
    if (rc <= 0)
        return rc;
    rc = store__prepare(s->db, STORE__SQL_COMMAND_EXPIRE, &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_int64(st, 1, now_ns);
    rc = step_done(s->db, st, "expire commands");
    if (rc < 0)
        goto fail;
    if (n)
        *n = sqlx_changes(s->db);
fail:
    sqlx_finalize(st);
    return rc;
}

/* ---- Queries ---- */

int store_block_stats(store_t *s, const char *terminal_id, int64_t *count, uint64_t *min_seq,
                      uint64_t *max_seq)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0)"
                            " FROM blocks WHERE terminal_id = ?1",
                            &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(st, 1, terminal_id ? terminal_id : "", -1);
    if (sqlx_step(st) != SQLX_ROW) {
        rc = store__db_fail(s->db, "block stats");
        goto fail;
    }
    if (count)
        *count = sqlx_column_int64(st, 0);
    if (min_seq)
        *min_seq = (uint64_t)sqlx_column_int64(st, 1);
    if (max_seq)
        *max_seq = (uint64_t)sqlx_column_int64(st, 2);
fail:
    sqlx_finalize(st);
    return rc;
}

/* ---- Analysis results ---- */

int store_terminal_set_declared_v(store_t *s, const char *id, double v)
{
    sqlx_stmt_t *st = NULL;
    if (!(v >= 0 && v < 1e9))
        return GS_EINVAL;
    int rc = store__prepare(s->db, "UPDATE terminals SET declared_v = ?2 WHERE id = ?1", &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(st, 1, id ? id : "", -1);
    if (v > 0)
        sqlx_bind_double(st, 2, v);
    rc = step_done(s->db, st, "set declared voltage");
    if (rc == 0 && sqlx_changes(s->db) == 0)
        rc = GS_ENOTFOUND;
fail:
    sqlx_finalize(st);
    return rc;
}

int store_pq_event_list(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                        int limit, int (*cb)(void *ud, const store_pq_event_t *e), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT id, terminal_id, kind, start_ns, duration_ns, detected_ns,"
                            " extreme, extreme_pct, reference, channels, flags, worst_channel,"
                            " channel_names, worst_channel_name FROM pq_events"
                            " WHERE (CAST(?1 AS TEXT) IS NULL OR terminal_id = ?1)"
                            " AND start_ns >= ?2 AND start_ns < ?3"
                            " ORDER BY start_ns DESC, id DESC LIMIT ?4",
                            &st);
    if (rc < 0)
        goto fail;
    if (terminal_id)
        sqlx_bind_text(st, 1, terminal_id, -1);
    sqlx_bind_int64(st, 2, from_ns);
    sqlx_bind_int64(st, 3, to_ns);
    sqlx_bind_int64(st, 4, limit < 1 ? 1 : limit > 10000 ? 10000 : limit);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_pq_event_t e;
        memset(&e, 0, sizeof e);
        e.id = sqlx_column_int64(st, 0);
        column_str(st, 1, e.terminal_id, sizeof e.terminal_id);
        column_str(st, 2, e.kind, sizeof e.kind);
        e.start_ns = sqlx_column_int64(st, 3);
        e.duration_ns = sqlx_column_int64(st, 4);
        e.detected_ns = sqlx_column_int64(st, 5);
        e.extreme = sqlx_column_double(st, 6);
        e.extreme_pct = sqlx_column_double(st, 7);
        e.reference = sqlx_column_double(st, 8);
        e.channels = (uint32_t)sqlx_column_int64(st, 9);
        e.flags = (uint32_t)sqlx_column_int64(st, 10);
        e.worst_channel = (int)sqlx_column_int64(st, 11);
        /* NULL names: stored before migration 5 (or without them). */
        e.has_names = sqlx_column_type(st, 12) != SQLX_NULL;
        column_str(st, 12, e.channel_names, sizeof e.channel_names);
        column_str(st, 13, e.worst_channel_name, sizeof e.worst_channel_name);
        if (cb(ud, &e))
            break;
    }
    if (src != SQLX_ROW && src != SQLX_DONE)
        rc = store__db_fail(s->db, "list events");
fail:
    sqlx_finalize(st);
    return rc;
}

int store_measurement_list(store_t *s, const char *terminal_id, const char *interval,
                           int64_t from_ns, int64_t to_ns, int limit,
                           int (*cb)(void *ud, const store_measurement_t *m), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(s->db,
                            "SELECT terminal_id, interval, t_start_ns, t_end_ns, flags, count,"
                            " data FROM measurements WHERE terminal_id = ?1 AND interval = ?2"
                            " AND t_end_ns > ?3 AND t_end_ns <= ?4 ORDER BY t_end_ns LIMIT ?5",
                            &st);
    if (rc < 0)
        goto fail;
    sqlx_bind_text(st, 1, terminal_id ? terminal_id : "", -1);
    sqlx_bind_text(st, 2, interval ? interval : "", -1);
    sqlx_bind_int64(st, 3, from_ns);
    sqlx_bind_int64(st, 4, to_ns);
    sqlx_bind_int64(st, 5, limit < 1 ? 1 : limit > 100000 ? 100000 : limit);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_measurement_t m;
        memset(&m, 0, sizeof m);
        column_str(st, 0, m.terminal_id, sizeof m.terminal_id);
        column_str(st, 1, m.interval, sizeof m.interval);
        m.t_start_ns = sqlx_column_int64(st, 2);
        m.t_end_ns = sqlx_column_int64(st, 3);
        m.flags = (uint32_t)sqlx_column_int64(st, 4);
        m.count = (uint32_t)sqlx_column_int64(st, 5);
        m.data = (const char *)sqlx_column_text(st, 6);
        if (!m.data)
            m.data = "{}";
        if (cb(ud, &m))
            break;
    }
    if (src != SQLX_ROW && src != SQLX_DONE)
        rc = store__db_fail(s->db, "list measurements");
fail:
    sqlx_finalize(st);
    return rc;
}
