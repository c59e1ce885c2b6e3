/* Backup and restore of the SQLite database (store.h "Backup and restore"), and the data-dir
 * lock that tells a restore (or a second server) that a server is using the directory.
 *
 * Backup uses SQLite's online backup API in ONE step (sqlite3_backup_step(-1)): the copy is a
 * single read snapshot, so it is consistent, and in WAL mode the server's writer keeps
 * committing meanwhile (readers never block the writer). A stepwise copy would restart every
 * time another connection writes, which under continuous ingest may never finish.
 *
 * Restore puts a backup in place of the database. Two things make a restored database differ
 * from a fresh one, and both are handled here, not left to the operator:
 *  - command ids: terminals deduplicate commands by id (GSTP 8.2) and remember at least their
 *    last 16; commands created after the backup was taken are gone from the restored database,
 *    so plain AUTOINCREMENT would hand their ids out again and a terminal would answer the new
 *    commands with the old results without executing them. The restore moves the commands id
 *    sequence to at least the current time in milliseconds: larger than any id issued since an
 *    earlier restore unless more than 1,000 commands a second were created on average since.
 *  - terminals' durable seq goes back to the backup's: harmless (GSTP 7.3: a terminal whose
 *    counter is above WELCOME.resume_seq simply continues), but the blocks received after the
 *    backup are lost; the summary says from when.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_FILE "server.lock"

int store_dir_lock(const char *data_dir, int *fd_out, char *err, size_t errlen)
{
    char path[1024];
    *fd_out = -1;
    if (snprintf(path, sizeof path, "%s/%s", data_dir, LOCK_FILE) >= (int)sizeof path) {
        store__seterr(err, errlen, "data directory path too long");
        return GS_EINVAL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        store__seterr(err, errlen, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            store__seterr(err, errlen, "%s is in use by a running gridsense server (lock %s held)",
                          data_dir, path);
            return GS_EBUSY;
        }
        store__seterr(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return -e;
    }
    /* The pid, for people looking; the lock itself is what counts (it goes with the process). */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
        /* not fatal: the flock is held either way */
    }
    *fd_out = fd;
    return 0;
}

void store_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* One integer from a single-row query on db; GS_EDB with the reason in err. */
static int query_i64(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (r != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return 0;
fail:
    store__seterr(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return GS_EDB;
}

/* Fills info from an open database (a backup or the live one). */
static int describe(sqlite3 *db, store_backup_info_t *info, char *err, size_t errlen)
{
    int64_t v;
    memset(info, 0, sizeof *info);
    if (query_i64(db,
                  "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                  "('schema_version', 'terminals', 'blocks')",
                  &v, err, errlen) < 0)
        return GS_EDB;
    if (v != 3) {
        store__seterr(err, errlen, "not a gridsense database (no schema_version/terminals/blocks)");
        return GS_ECONFIG;
    }
    if (query_i64(db, "SELECT coalesce(max(version), 0) FROM schema_version", &v, err, errlen) < 0)
        return GS_EDB;
    info->schema_version = (int)v;
    if (query_i64(db, "SELECT count(*) FROM terminals", &info->terminals, err, errlen) < 0 ||
        query_i64(db, "SELECT coalesce(max(received_ns), 0) FROM blocks", &info->newest_ns, err,
                  errlen) < 0 ||
        query_i64(db, "PRAGMA page_count", &v, err, errlen) < 0)
        return GS_EDB;
    int64_t ps;
    if (query_i64(db, "PRAGMA page_size", &ps, err, errlen) < 0)
        return GS_EDB;
    info->bytes = v * ps;
    return 0;
}

int store_backup(store_t *s, const char *dest, store_backup_info_t *info, char *err, size_t errlen)
{
    sqlite3 *out = NULL;
    sqlite3_backup *b = NULL;
    char part[1100];
    int rc = GS_EDB, created = 0;
    struct stat sb;

    if (s && s->pg) {
        store__seterr(err, errlen,
                      "db backup copies the SQLite database; for PostgreSQL use pg_dump or "
                      "pg_basebackup (docs/operations.md \"Backup and restore\")");
        return GS_ENOTSUP;
    }
    if (!s || !dest || !*dest) {
        store__seterr(err, errlen, "no destination given");
        return GS_EINVAL;
    }
    if (stat(dest, &sb) == 0) {
        store__seterr(err, errlen, "%s exists: refusing to overwrite it", dest);
        return GS_EEXISTS;
    }
    if (snprintf(part, sizeof part, "%s.part", dest) >= (int)sizeof part) {
        store__seterr(err, errlen, "destination path too long");
        return GS_EINVAL;
    }
    /* Private from the first byte: the copy holds sealed secrets and password hashes. */
    int fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        store__seterr(err, errlen, "cannot create %s: %s", part, strerror(e));
        return -e;
    }
    close(fd);
    created = 1;
    if (sqlite3_open_v2(part, &out, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        store__seterr(err, errlen, "cannot open %s: %s", part, out ? sqlite3_errmsg(out) : "");
        goto fail;
    }
    b = sqlite3_backup_init(out, "main", s->lite, "main");
    if (!b) {
        store__seterr(err, errlen, "backup: %s", sqlite3_errmsg(out));
        goto fail;
    }
    int r = sqlite3_backup_step(b, -1); /* one snapshot: see the file comment */
    sqlite3_backup_finish(b);
    b = NULL;
    if (r != SQLITE_DONE) {
        store__seterr(err, errlen, "backup: %s", sqlite3_errstr(r));
        rc = r == SQLITE_FULL ? -ENOSPC : GS_EDB;
        goto fail;
    }
    /* The copy is in rollback-journal mode at the source's WAL setting; make it a single
     * self-contained file (no -wal beside it) before it is renamed into place. */
    if (sqlite3_exec(out, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        store__seterr(err, errlen, "backup: %s", sqlite3_errmsg(out));
        goto fail;
    }
    if (info && describe(out, info, err, errlen) < 0)
        goto fail;
    sqlite3_close(out);
    out = NULL;
    fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        store__seterr(err, errlen, "cannot sync %s: %s", part, strerror(e));
        rc = -e;
        goto fail;
    }
    close(fd);
    if (rename(part, dest) != 0) {
        int e = errno;
        store__seterr(err, errlen, "cannot rename %s to %s: %s", part, dest, strerror(e));
        rc = -e;
        goto fail;
    }
    log_info(STORE_LOG_WHO, "backup written to %s", dest);
    return 0;

fail:
    if (b)
        sqlite3_backup_finish(b);
    sqlite3_close(out);
    if (created)
        unlink(part);
    return rc;
}

int store_backup_check(const char *path, store_backup_info_t *info, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = GS_EDB;
    store_backup_info_t tmp;
    if (!info)
        info = &tmp;
    if (access(path, R_OK) != 0) {
        int e = errno;
        store__seterr(err, errlen, "cannot read %s: %s", path, strerror(e));
        return -e;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        store__seterr(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "");
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK) {
        store__seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    int r = sqlite3_step(st);
    const char *res = r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (!res || strcmp(res, "ok") != 0) {
        store__seterr(err, errlen, "%s is damaged: %s", path, res ? res : sqlite3_errmsg(db));
        sqlite3_finalize(st);
        rc = GS_ECONFIG;
        goto fail;
    }
    sqlite3_finalize(st);
    rc = describe(db, info, err, errlen);
    if (rc < 0)
        goto fail;
    if (info->schema_version > store__schema_latest()) {
        store__seterr(err, errlen,
                      "%s has schema %d, newer than this program's %d: restore it with the "
                      "gridsense version that wrote it",
                      path, info->schema_version, store__schema_latest());
        rc = GS_ECONFIG;
        goto fail;
    }
    rc = 0;
fail:
    sqlite3_close(db);
    return rc;
}

/* Copies src to dst (created 0600, must not exist) and fsyncs it. */
static int copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
    int in = -1, out = -1, rc = 0;
    char buf[1 << 16];
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = -errno;
        store__seterr(err, errlen, "cannot read %s: %s", src, strerror(-rc));
        goto fail;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = -errno;
        store__seterr(err, errlen, "cannot create %s: %s", dst, strerror(-rc));
        goto fail;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            store__seterr(err, errlen, "cannot read %s: %s", src, strerror(-rc));
            goto fail;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                store__seterr(err, errlen, "cannot write %s: %s", dst, strerror(-rc));
                goto fail;
            }
            off += w;
        }
    }
    if (fsync(out) != 0) {
        rc = -errno;
        store__seterr(err, errlen, "cannot sync %s: %s", dst, strerror(-rc));
        goto fail;
    }
fail:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == 0) {
        rc = -errno;
        store__seterr(err, errlen, "cannot write %s: %s", dst, strerror(-rc));
    }
    if (rc < 0 && out >= 0)
        unlink(dst);
    return rc;
}

int store_restore(const char *data_dir, const char *src, const store_opts_t *opts,
                  store_restore_info_t *info, char *err, size_t errlen)
{
    char db[1024], aside[1200], side[1100];
    store_t *s = NULL;
    int rc;
    memset(info, 0, sizeof *info);

    rc = store_backup_check(src, &info->backup, err, errlen);
    if (rc < 0)
        return rc;
    if (snprintf(db, sizeof db, "%s/%s", data_dir, STORE_DB_FILE) >= (int)sizeof db) {
        store__seterr(err, errlen, "data directory path too long");
        return GS_EINVAL;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        store__seterr(err, errlen, "cannot create %s: %s", data_dir, strerror(-rc));
        return rc;
    }

    /* Keep the database being replaced (and its WAL: it may hold committed data) beside it. */
    struct stat sb;
    if (stat(db, &sb) == 0) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(aside, sizeof aside, "%s.replaced-%s", db, stamp);
        if (stat(aside, &sb) == 0) {
            store__seterr(err, errlen, "%s exists; try again in a second", aside);
            return GS_EEXISTS;
        }
        if (rename(db, aside) != 0) {
            rc = -errno;
            store__seterr(err, errlen, "cannot move %s aside: %s", db, strerror(-rc));
            return rc;
        }
        snprintf(info->replaced, sizeof info->replaced, "%s", aside);
        static const char *const sfx[] = {"-wal", "-shm"};
        for (int i = 0; i < 2; i++) {
            snprintf(side, sizeof side, "%s%s", db, sfx[i]);
            char to[1300];
            snprintf(to, sizeof to, "%s%s", aside, sfx[i]);
            if (stat(side, &sb) == 0 && rename(side, to) != 0) {
                rc = -errno;
                store__seterr(err, errlen, "cannot move %s aside: %s", side, strerror(-rc));
                return rc;
            }
        }
    }
    rc = copy_file(src, db, err, errlen);
    if (rc < 0)
        return rc;

    /* Open as the server would: checks the master key against the database and applies the
     * migrations of this program. */
    store_opts_t o = opts ? *opts : (store_opts_t){.sync_full = 1};
    o.reader_only = 0;
    o.sync_read_only = 0;
    rc = store_open(data_dir, &o, &s, err, errlen);
    if (rc < 0)
        return rc;
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(s->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto dbfail;
    /* commands uses AUTOINCREMENT, so sqlite_sequence exists; its row appears with the first
     * command ever created. */
    if (sqlite3_prepare_v2(s->lite,
                           "INSERT INTO sqlite_sequence(name, seq) SELECT 'commands', 0"
                           " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence"
                           " WHERE name = 'commands')",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        goto dbfail;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->lite,
                           "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'commands'"
                           " RETURNING seq",
                           -1, &st, NULL) != SQLITE_OK)
        goto dbfail;
    sqlite3_bind_int64(st, 1, now_ms);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto dbfail;
    info->next_command_id = sqlite3_column_int64(st, 0) + 1;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(s->lite, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto dbfail;
    info->schema_version = store_schema_version(s);
    store_close(s);
    log_info(STORE_LOG_WHO, "database restored from %s (next command id %lld)", src,
             (long long)info->next_command_id);
    return 0;

dbfail:
    store__seterr(err, errlen, "restore: %s", sqlite3_errmsg(s->lite));
    sqlite3_finalize(st);
    sqlite3_exec(s->lite, "ROLLBACK", NULL, NULL, NULL);
    store_close(s);
    return GS_EDB;
}
