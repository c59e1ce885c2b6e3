/* Terminal secrets at rest: the master key file, sealing each terminal's secret under it, the
 * migration of plaintext secrets, key rotation and reset, and the file modes of the data dir.
 *
 * Why: whoever reads gridsense.db must not be able to log in as a terminal (issue 7, section 3).
 * The secrets are sealed with XChaCha20-Poly1305 (libsodium crypto_aead_xchacha20poly1305_ietf,
 * RFC 8439 ChaCha20-Poly1305 with the 192-bit XChaCha nonce) under a 32-byte master key kept in
 * a file outside the database. The AEAD's associated data holds the terminal id and the sealed
 * header, so a sealed secret copied into another terminal's row does not authenticate.
 *
 * Sealed secret, as stored in terminals.secret (STORE_SEALED_LEN = 89 bytes):
 *   [0]      format, 1
 *   [1..16]  key id: BLAKE2b-128 keyed with the master key over "gridsense master key id v1"
 *   [17..40] random 24-byte nonce (a fresh one for every seal)
 *   [41..88] ciphertext of the 32-byte secret and the 16-byte Poly1305 tag
 *   AD = "gridsense terminal secret v1" NUL, terminal id, NUL, bytes [0..16]
 * An empty blob means "no usable secret" (after `gridsense key reset`).
 *
 * Master key file: exactly 32 random bytes, nothing else, mode 0600 (or stricter), a regular
 * file. Default <data dir>/master.key, created on first start when the database holds no sealed
 * secret yet. During a rotation the key file's directory also holds master.key.new (the new key,
 * before the rename) and master.key.old (the previous key, until the rotation is complete);
 * a key whose id matches is looked up in those too, so a process that holds the previous key or
 * a rotation cut short by a crash never loses access.
 *
 * Threading: everything here runs on the store's owner thread (the writer never reads secrets).
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_FORMAT 1
#define SEAL_HDR    (1 + STORE_KEY_ID_LEN)
#define SEAL_NONCE  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_AD_TAG "gridsense terminal secret v1"
#define KEY_ID_MSG  "gridsense master key id v1"

_Static_assert(STORE_SEALED_LEN == SEAL_HDR + SEAL_NONCE + STORE_SECRET_LEN +
                                       crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "sealed secret layout");
_Static_assert(STORE_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

/* ---- keys in memory ---- */

/* A key lives in sodium_malloc'ed memory: guard pages, mlock'ed where the system allows (so it
 * is not swapped out), zeroed by sodium_free. */
static store_key_t *key_new(void)
{
    store_key_t *k = sodium_malloc(sizeof *k);
    if (!k)
        abort(); /* out of memory, as xmalloc */
    memset(k, 0, sizeof *k);
    return k;
}

static void key_free(store_key_t *k)
{
    if (k)
        sodium_free(k);
}

static void key_set_id(store_key_t *k)
{
    crypto_generichash(k->id, sizeof k->id, (const unsigned char *)KEY_ID_MSG,
                       sizeof KEY_ID_MSG - 1, k->key, sizeof k->key);
}

void store__key_id_hex(const uint8_t id[STORE_KEY_ID_LEN], char out[2 * STORE_KEY_ID_LEN + 1])
{
    hex_encode(id, STORE_KEY_ID_LEN, out);
}

/* ---- sealing ---- */

/* AD = tag NUL id NUL header. Returns its length; ad must hold 64 + STORE_ID_MAX bytes. */
static size_t seal_ad(uint8_t *ad, const char *tid, const uint8_t *hdr)
{
    size_t n = 0, idlen = strnlen(tid, STORE_ID_MAX);
    memcpy(ad + n, SEAL_AD_TAG, sizeof SEAL_AD_TAG); /* with its NUL */
    n += sizeof SEAL_AD_TAG;
    memcpy(ad + n, tid, idlen);
    n += idlen;
    ad[n++] = 0;
    memcpy(ad + n, hdr, SEAL_HDR);
    return n + SEAL_HDR;
}

void store__secret_seal(const store_key_t *k, const char *tid, const uint8_t *secret,
                        uint8_t out[STORE_SEALED_LEN])
{
    uint8_t ad[64 + STORE_ID_MAX];
    out[0] = SEAL_FORMAT;
    memcpy(out + 1, k->id, STORE_KEY_ID_LEN);
    randombytes_buf(out + SEAL_HDR, SEAL_NONCE);
    size_t adlen = seal_ad(ad, tid, out);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_HDR + SEAL_NONCE, NULL, secret,
                                               STORE_SECRET_LEN, ad, adlen, NULL, out + SEAL_HDR,
                                               k->key);
}

int store__secret_unseal(const store_key_t *k, const char *tid, const uint8_t *blob, size_t n,
                         uint8_t secret[STORE_SECRET_LEN])
{
    uint8_t ad[64 + STORE_ID_MAX];
    if (n != STORE_SEALED_LEN || blob[0] != SEAL_FORMAT)
        return GS_EINVAL;
    if (sodium_memcmp(blob + 1, k->id, STORE_KEY_ID_LEN) != 0)
        return GS_ENOTFOUND;
    size_t adlen = seal_ad(ad, tid, blob);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(secret, NULL, NULL, blob + SEAL_HDR + SEAL_NONCE,
                                                   STORE_SEALED_LEN - SEAL_HDR - SEAL_NONCE, ad,
                                                   adlen, blob + SEAL_HDR, k->key) != 0) {
        sodium_memzero(secret, STORE_SECRET_LEN);
        return GS_EAUTH;
    }
    return 0;
}

/* ---- key files ---- */

/* Reads a key file. Returns 0 with *out set, -ENOENT if it does not exist, GS_ECONFIG with the
 * reason in err for anything else wrong with it (not a regular file, readable or writable by
 * group or others, not exactly 32 bytes, unreadable). A key that others could read may have
 * leaked: it is refused rather than silently tightened, so the operator decides (chmod, or
 * rotate). */
static int key_read(const char *path, store_key_t **out, char *err, size_t errlen)
{
    struct stat sb;
    store_key_t *k = NULL;
    /* O_NONBLOCK: a FIFO put in the key's place must not hang the server at start (it is then
     * refused as not a regular file); reads of a regular file ignore the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), rc;
    *out = NULL;
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT)
            return rc;
        store__seterr(err, errlen, "cannot read master key file %s: %s", path, strerror(-rc));
        return GS_ECONFIG;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        store__seterr(err, errlen, "master key file %s is not a regular file", path);
        goto fail;
    }
    if (sb.st_mode & 077) {
        store__seterr(err, errlen,
                      "master key file %s has mode %04o: group or others may read it; make it "
                      "private (chmod 600 %s) and consider `gridsense key rotate` if it may have "
                      "been copied",
                      path, (unsigned)(sb.st_mode & 07777), path);
        goto fail;
    }
    if (sb.st_size != STORE_KEY_LEN) {
        store__seterr(err, errlen, "master key file %s has %lld bytes, expected exactly %d", path,
                      (long long)sb.st_size, STORE_KEY_LEN);
        goto fail;
    }
    k = key_new();
    size_t got = 0;
    while (got < STORE_KEY_LEN) {
        ssize_t r = read(fd, k->key + got, STORE_KEY_LEN - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            store__seterr(err, errlen, "cannot read master key file %s: %s", path,
                          r < 0 ? strerror(errno) : "short read");
            goto fail;
        }
        got += (size_t)r;
    }
    close(fd);
    key_set_id(k);
    *out = k;
    return 0;
fail:
    key_free(k);
    close(fd);
    return GS_ECONFIG;
}

/* fsync of the directory holding path, so that a rename or link in it is durable. */
static int fsync_dir_of(const char *path)
{
    char *d = xstrdup(path);
    char *slash = strrchr(d, '/');
    if (slash == d)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(d, strlen(path) + 1, ".");
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    free(d);
    return rc;
}

/* Writes the key into a new private temporary file next to path (mode 0600 whatever the umask:
 * fchmod after open), fsyncs it and then either renames it over path (replace != 0) or links it
 * to path only if path does not exist yet (replace == 0: -EEXIST then, so two processes creating
 * the first key at once end up with the same one). */
static int key_write(const char *path, const store_key_t *k, int replace, char *err, size_t errlen)
{
    size_t n = strlen(path) + 48;
    char *tmp = xmalloc(n);
    uint8_t rnd[8];
    char rhex[17];
    randombytes_buf(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, rhex);
    snprintf(tmp, n, "%s.tmp-%s", path, rhex);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (fchmod(fd, 0600) != 0)
        goto fail_errno;
    size_t put = 0;
    while (put < STORE_KEY_LEN) {
        ssize_t w = write(fd, k->key + put, STORE_KEY_LEN - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto fail_errno;
        put += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail_errno;
    if (close(fd) != 0) {
        fd = -1;
        goto fail_errno;
    }
    fd = -1;
    if (replace ? rename(tmp, path) != 0 : link(tmp, path) != 0)
        goto fail_errno;
    if (!replace)
        unlink(tmp);
    rc = fsync_dir_of(path);
    if (rc < 0)
        goto fail;
    free(tmp);
    return 0;
fail_errno:
    rc = -errno;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    if (rc != -EEXIST)
        store__seterr(err, errlen, "cannot write master key file %s: %s", path, strerror(-rc));
    free(tmp);
    return rc;
}

/* Looks for the key with the given id in the key file and its rotation companions (.new, .old).
 * Returns the key (caller frees) or NULL. Files that are missing are skipped silently; files that
 * exist but are unusable (mode, size) are logged. */
static store_key_t *key_find(const char *key_path, const uint8_t id[STORE_KEY_ID_LEN], char *which,
                             size_t whichlen)
{
    static const char *const suffix[] = {"", ".new", ".old"};
    size_t n = strlen(key_path) + 8;
    char *p = xmalloc(n);
    store_key_t *found = NULL;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0] && !found; i++) {
        char err[400];
        store_key_t *k = NULL;
        snprintf(p, n, "%s%s", key_path, suffix[i]);
        int rc = key_read(p, &k, err, sizeof err);
        if (rc == -ENOENT)
            continue;
        if (rc < 0) {
            log_warn(STORE_LOG_WHO, "%s", err);
            continue;
        }
        if (sodium_memcmp(k->id, id, STORE_KEY_ID_LEN) == 0) {
            found = k;
            if (which)
                snprintf(which, whichlen, "%s", p);
        } else {
            key_free(k);
        }
    }
    free(p);
    return found;
}

/* ---- the database's key id ---- */

/* Reads master_key.key_id into id. Returns 1 if present, 0 if the table or row does not exist
 * yet (a database before migration 4, or a new one), GS_EDB on error. */
static int db_key_id(sqlx_t *db, uint8_t id[STORE_KEY_ID_LEN])
{
    sqlx_stmt_t *st = NULL;
    int rc = store__table_exists(db, "master_key");
    if (rc <= 0)
        return rc;
    rc = store__prepare(db, "SELECT key_id FROM master_key WHERE id = 1", &st);
    if (rc < 0)
        return rc;
    int src = sqlx_step(st);
    if (src == SQLX_DONE) {
        rc = 0;
        goto fail;
    }
    if (src != SQLX_ROW) {
        rc = store__db_fail(db, "read master key id");
        goto fail;
    }
    if (sqlx_column_bytes(st, 0) != STORE_KEY_ID_LEN) {
        log_error(STORE_LOG_WHO, "master_key.key_id has %zu bytes, expected %d",
                  sqlx_column_bytes(st, 0), STORE_KEY_ID_LEN);
        rc = GS_EDB;
        goto fail;
    }
    memcpy(id, sqlx_column_blob(st, 0), STORE_KEY_ID_LEN);
    rc = 1;
fail:
    sqlx_finalize(st);
    return rc;
}

/* Records key_id as the database's key (inside the caller's transaction). */
static int db_set_key_id(sqlx_t *db, const uint8_t id[STORE_KEY_ID_LEN])
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db,
                            "INSERT INTO master_key(id, key_id, changed_ns) VALUES(1, ?1, ?2)"
                            " ON CONFLICT(id) DO UPDATE SET key_id = ?1, changed_ns = ?2",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_blob(st, 1, id, STORE_KEY_ID_LEN);
    sqlx_bind_int64(st, 2, time_utc_ns());
    if (sqlx_step(st) != SQLX_DONE)
        rc = store__db_fail(db, "record master key id");
    sqlx_finalize(st);
    return rc;
}

/* ---- sealed rows ---- */

typedef struct {
    char id[STORE_ID_MAX + 1];
    uint8_t blob[STORE_SEALED_LEN];
    int n; /* stored length */
} row_t;

/* Loads (id, secret) of every terminal: updating rows while a SELECT on the same table is still
 * stepping is undefined in SQLite, so the rows are read first. *rows is sodium_malloc'ed (it may
 * hold plaintext secrets: zeroed when freed). */
static int load_rows(sqlx_t *db, row_t **rows, size_t *nrows)
{
    sqlx_stmt_t *st = NULL;
    int64_t count = 0;
    row_t *a = NULL;
    size_t n = 0;
    int rc = store__prepare(db, "SELECT count(*) FROM terminals", &st);
    if (rc < 0)
        goto fail;
    if (sqlx_step(st) != SQLX_ROW) {
        rc = store__db_fail(db, "count terminals");
        goto fail;
    }
    count = sqlx_column_int64(st, 0);
    sqlx_finalize(st);
    st = NULL;
    a = sodium_allocarray((size_t)count + 1, sizeof *a);
    if (!a)
        abort();
    rc = store__prepare(db, "SELECT id, secret FROM terminals ORDER BY id", &st);
    if (rc < 0)
        goto fail;
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW && n < (size_t)count) {
        row_t *r = &a[n++];
        memset(r, 0, sizeof *r);
        const char *z = sqlx_column_text(st, 0);
        snprintf(r->id, sizeof r->id, "%s", z ? (const char *)z : "");
        r->n = (int)sqlx_column_bytes(st, 1);
        const void *b = sqlx_column_blob(st, 1);
        if (r->n > 0 && r->n <= (int)sizeof r->blob && b)
            memcpy(r->blob, b, (size_t)r->n);
    }
    if (src != SQLX_ROW && src != SQLX_DONE) {
        rc = store__db_fail(db, "read terminal secrets");
        goto fail;
    }
    sqlx_finalize(st);
    *rows = a;
    *nrows = n;
    return 0;
fail:
    sqlx_finalize(st);
    if (a)
        sodium_free(a);
    return rc;
}

static int update_secret(sqlx_t *db, const char *tid, const uint8_t *blob, size_t n)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db, "UPDATE terminals SET secret = ?2 WHERE id = ?1", &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, tid, -1);
    sqlx_bind_blob(st, 2, n ? (const void *)blob : "", (int)n);
    if (sqlx_step(st) != SQLX_DONE)
        rc = store__db_fail(db, "update terminal secret");
    sqlx_finalize(st);
    return rc;
}

int store__migrate_seal(sqlx_t *db, const store_key_t *k, char *err, size_t errlen)
{
    row_t *rows = NULL;
    size_t n = 0;
    int rc = load_rows(db, &rows, &n);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot read terminal secrets: %s", sqlx_errmsg(db));
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t sealed[STORE_SEALED_LEN];
        if (rows[i].n != STORE_SECRET_LEN) {
            store__seterr(err, errlen,
                          "terminal %s: stored plaintext secret has %d bytes, "
                          "expected %d",
                          rows[i].id, rows[i].n, STORE_SECRET_LEN);
            rc = GS_EDB;
            goto fail;
        }
        store__secret_seal(k, rows[i].id, rows[i].blob, sealed);
        rc = update_secret(db, rows[i].id, sealed, sizeof sealed);
        if (rc < 0) {
            store__seterr(err, errlen, "cannot seal the secret of %s: %s", rows[i].id,
                          sqlx_errmsg(db));
            goto fail;
        }
    }
    rc = db_set_key_id(db, k->id);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot record the master key id: %s", sqlx_errmsg(db));
        goto fail;
    }
    if (n)
        log_info(STORE_LOG_WHO, "sealed the secrets of %zu terminals under the master key", n);
    rc = (int)n;
fail:
    sodium_free(rows);
    return rc;
}

/* ---- file modes ---- */

/* The data dir 0700, and every regular file directly in it 0600 or stricter: the database, its
 * -wal and -shm, FFTW wisdom, stray temporary files. SQLite creates -wal/-shm with the mode of
 * the database file (os_unix.c, findCreateFileMode / unixOpenSharedMemory), so a private
 * database keeps them private whatever the umask. Key files are not tightened but refused when
 * open (key_read): a key others could read needs the operator's decision. */
int store__tighten_dir(const char *dir, const char *key_path)
{
    struct stat sb;
    buf_t names = {0}, full = {0};
    int nfiles = 0, rc = 0;
    mode_t dir_before = 0;
    size_t keylen = key_path ? strlen(key_path) : 0;

    if (stat(dir, &sb) != 0)
        return -errno;
    if (sb.st_mode & 077) {
        dir_before = sb.st_mode & 07777;
        if (chmod(dir, sb.st_mode & 07700) != 0)
            return -errno;
    }
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (keylen) {
            /* The key file and its companions (.new, .old, .tmp-*) when they live here. */
            buf_reset(&full);
            buf_printf(&full, "%s/%s", dir, e->d_name);
            if (strncmp(full.data, key_path, keylen) == 0)
                continue;
        }
        if (fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
            !(sb.st_mode & 077))
            continue;
        if (fchmodat(dfd, e->d_name, sb.st_mode & 07700, 0) != 0) {
            rc = -errno;
            log_warn(STORE_LOG_WHO, "cannot make %s/%s private: %s", dir, e->d_name, err_str(rc));
            continue;
        }
        if (nfiles < 8)
            buf_printf(&names, "%s%s (%04o)", nfiles ? ", " : "", e->d_name,
                       (unsigned)(sb.st_mode & 07777));
        nfiles++;
    }
    closedir(d);
    if (dir_before || nfiles) {
        char what[64] = "";
        if (dir_before)
            snprintf(what, sizeof what, "directory %04o -> 0700%s", (unsigned)dir_before,
                     nfiles ? "; " : "");
        log_warn(STORE_LOG_WHO, "data directory %s was open to others: made private (%s%s%s%s)",
                 dir, what, nfiles ? "files -> 0600: " : "", nfiles ? names.data : "",
                 nfiles > 8 ? ", ..." : "");
    }
    buf_free(&names);
    buf_free(&full);
    return 0;
}

/* ---- open ---- */

int store__keys_open(store_t *s, int key_reset, char *err, size_t errlen)
{
    uint8_t dbid[STORE_KEY_ID_LEN];
    char dbhex[2 * STORE_KEY_ID_LEN + 1], fhex[2 * STORE_KEY_ID_LEN + 1];
    char why[600] = "";
    store_key_t *k = NULL;
    int rc;

    if (err && errlen)
        err[0] = 0;
    if (sodium_init() < 0) {
        store__seterr(err, errlen, "libsodium initialisation failed");
        return GS_ECONFIG;
    }
    int has = db_key_id(s->db, dbid);
    if (has < 0) {
        store__seterr(err, errlen, "cannot read the master key id of %s: %s", s->path,
                      sqlx_errmsg(s->db));
        return has;
    }
    /* A key file that exists but cannot be used is refused, also by a key reset: it may be the
     * right key with the wrong mode, which a reset would throw away with every secret. */
    rc = key_read(s->key_path, &k, why, sizeof why);
    if (rc < 0 && rc != -ENOENT) {
        store__seterr(err, errlen, "%s", why);
        return rc;
    }
    if (!has) {
        /* A new database, or one whose secrets are still plaintext (before migration 4): the key
         * file is used if there is one, created otherwise. */
        if (rc == -ENOENT) {
            k = key_new();
            randombytes_buf(k->key, sizeof k->key);
            key_set_id(k);
            rc = key_write(s->key_path, k, 0, err, errlen);
            if (rc == -EEXIST) { /* another process created it first: use that one */
                key_free(k);
                k = NULL;
                rc = key_read(s->key_path, &k, err, errlen);
            } else if (rc == 0) {
                store__key_id_hex(k->id, fhex);
                log_info(STORE_LOG_WHO,
                         "created master key file %s (key id %s): back it up separately from the "
                         "database",
                         s->key_path, fhex);
            }
            if (rc < 0) {
                key_free(k); /* NULL after a failed re-read */
                if (err && !err[0])
                    store__seterr(err, errlen, "cannot create master key file %s", s->key_path);
                return GS_ECONFIG;
            }
        } else if (key_reset) {
            store__seterr(err, errlen,
                          "key reset: the database has no sealed secrets; nothing "
                          "to reset");
            key_free(k);
            return GS_ESTATE;
        }
        s->key = k;
        return 0;
    }

    store__key_id_hex(dbid, dbhex);
    if (k && sodium_memcmp(k->id, dbid, sizeof dbid) == 0) {
        if (key_reset) {
            store__seterr(err, errlen,
                          "key reset refused: %s matches the database (key id %s); use `gridsense "
                          "key rotate` to replace a key",
                          s->key_path, dbhex);
            key_free(k);
            return GS_ESTATE;
        }
        s->key = k;
        return 0;
    }
    /* Not the database's key: a rotation cut short leaves the right one in .new or .old. */
    char which[600];
    store_key_t *alt = key_find(s->key_path, dbid, which, sizeof which);
    if (alt) {
        if (key_reset) {
            store__seterr(err, errlen,
                          "key reset refused: %s matches the database (key id %s); run `gridsense "
                          "key rotate` to make it the key file",
                          which, dbhex);
            key_free(alt);
            key_free(k);
            return GS_ESTATE;
        }
        log_warn(STORE_LOG_WHO,
                 "master key file %s does not hold the database's key %s; using %s (a key "
                 "rotation was interrupted: run `gridsense key rotate` to complete it)",
                 s->key_path, dbhex, which);
        key_free(k);
        s->key = alt;
        return 0;
    }
    if (key_reset) {
        key_free(k);
        return store__key_reset(s, dbhex, err, errlen);
    }
    if (!k) {
        store__seterr(err, errlen,
                      "master key file %s is missing: the terminal secrets in %s are sealed under "
                      "key id %s. Restore the key file from its backup (docs/operations.md, "
                      "\"Secrets and keys\"); if it is lost, `gridsense key reset` makes a new "
                      "key and every terminal then needs `gridsense terminal rotate-secret`",
                      s->key_path, s->path, dbhex);
        return GS_ECONFIG;
    }
    store__key_id_hex(k->id, fhex);
    store__seterr(err, errlen,
                  "master key file %s (key id %s) is not the key of %s (key id %s): wrong key "
                  "file or wrong data directory? Restore the right key file from its backup",
                  s->key_path, fhex, s->path, dbhex);
    key_free(k);
    return GS_ECONFIG;
}

int store__keys_check(store_t *s, char *err, size_t errlen)
{
    uint8_t dbid[STORE_KEY_ID_LEN];
    int has = db_key_id(s->db, dbid);
    if (has < 0) {
        store__seterr(err, errlen, "cannot read the master key id of %s: %s", s->path,
                      sqlx_errmsg(s->db));
        return has;
    }
    if (has && sodium_memcmp(dbid, s->key->id, sizeof dbid) == 0)
        return 0;
    char dbhex[2 * STORE_KEY_ID_LEN + 1] = "none";
    if (has)
        store__key_id_hex(dbid, dbhex);
    store__seterr(err, errlen,
                  "the database %s is sealed under key id %s, not the key in %s (another process "
                  "created or changed the key at the same time?); start again",
                  s->path, dbhex, s->key_path);
    return GS_ECONFIG;
}

void store__keys_close(store_t *s)
{
    key_free(s->key);
    s->key = NULL;
}

/* ---- use ---- */

/* At most 5 "unusable secret" lines per minute: such a terminal retries its login every few
 * seconds to minutes, and a whole fleet does after a key reset. The next line allowed says how
 * many were left out. */
static int secret_log_allowed(store_t *s)
{
    int64_t now = time_mono_ns();
    if (s->seclog_count == 0 || now - s->seclog_window_ns >= 60000000000LL) {
        if (s->seclog_suppressed)
            log_warn(STORE_LOG_WHO,
                     "suppressed %d similar messages about unusable terminal secrets in the "
                     "last 60 s",
                     s->seclog_suppressed);
        s->seclog_window_ns = now;
        s->seclog_count = 0;
        s->seclog_suppressed = 0;
    }
    if (s->seclog_count < 5) {
        s->seclog_count++;
        return 1;
    }
    s->seclog_suppressed++;
    return 0;
}

int store__secret_open(store_t *s, const char *tid, const void *blob, size_t n,
                       uint8_t secret[STORE_SECRET_LEN])
{
    char hex[2 * STORE_KEY_ID_LEN + 1];
    if (n == 0) {
        if (secret_log_allowed(s))
            log_error(STORE_LOG_WHO,
                      "terminal %s has no usable secret (the master key was reset): give it a new "
                      "one with `gridsense terminal rotate-secret %s`",
                      tid, tid);
        return GS_EAUTH;
    }
    if (n != STORE_SEALED_LEN || !blob || ((const uint8_t *)blob)[0] != SEAL_FORMAT) {
        if (secret_log_allowed(s))
            log_error(STORE_LOG_WHO,
                      "terminal %s: stored secret is malformed (%zu bytes): give it a new one "
                      "with `gridsense terminal rotate-secret %s`",
                      tid, n, tid);
        /* As unusable as one that does not authenticate: the terminal cannot log in with any key,
         * and retrying later (GS_EDB means BUSY to the gateway) would not repair it. */
        return GS_EAUTH;
    }
    int rc = store__secret_unseal(s->key, tid, blob, n, secret);
    if (rc == GS_ENOTFOUND) {
        /* Sealed under another key: a rotation (possibly by another process) replaced ours.
         * Reload from the key files; the key found becomes the current one. */
        const uint8_t *id = (const uint8_t *)blob + 1;
        store_key_t *k = key_find(s->key_path, id, NULL, 0);
        if (!k) {
            store__key_id_hex(id, hex);
            if (secret_log_allowed(s))
                log_error(STORE_LOG_WHO,
                          "terminal %s: secret is sealed under key id %s, which no key file (%s, "
                          ".new, .old) holds",
                          tid, hex, s->key_path);
            return GS_EAUTH;
        }
        store__key_id_hex(k->id, hex);
        log_info(STORE_LOG_WHO, "master key changed (rotation): now using key id %s", hex);
        key_free(s->key);
        s->key = k;
        rc = store__secret_unseal(s->key, tid, blob, n, secret);
    }
    if (rc == GS_EAUTH && secret_log_allowed(s))
        log_error(STORE_LOG_WHO,
                  "terminal %s: stored secret does not authenticate under the master key "
                  "(altered, or copied from another terminal's row)",
                  tid);
    return rc;
}

int store__key_refresh(store_t *s)
{
    uint8_t dbid[STORE_KEY_ID_LEN];
    int has = db_key_id(s->db, dbid);
    if (has <= 0)
        return has < 0 ? has : GS_ESTATE;
    if (sodium_memcmp(dbid, s->key->id, sizeof dbid) == 0)
        return 0;
    store_key_t *k = key_find(s->key_path, dbid, NULL, 0);
    if (!k) {
        char hex[2 * STORE_KEY_ID_LEN + 1];
        store__key_id_hex(dbid, hex);
        log_error(STORE_LOG_WHO, "the database's key id %s is in no key file (%s, .new, .old)", hex,
                  s->key_path);
        return GS_ECONFIG;
    }
    key_free(s->key);
    s->key = k;
    return 0;
}

/* Old page images (plaintext secrets before migration 4) leave the WAL. Best effort: a reader
 * in another process can keep it from completing; the frames are then overwritten as the WAL is
 * reused. Not run after a rotation: TRUNCATE holds the write lock while it waits for readers,
 * which would stall the running server's writer; secrets sealed under a retired key are of no use
 * once that key file is gone. */
void store__checkpoint_truncate(sqlite3 *db)
{
    int logn = 0, ckpt = 0;
    if (!db)
        return; /* PostgreSQL */
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logn, &ckpt);
    if (rc != 0)
        log_debug(STORE_LOG_WHO, "WAL checkpoint after re-sealing: %s", sqlite3_errmsg(db));
}

/* Writes key to path + suffix atomically (replacing). */
static int key_write_suffix(const char *key_path, const char *suffix, const store_key_t *k,
                            char *err, size_t errlen)
{
    size_t n = strlen(key_path) + strlen(suffix) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%s%s", key_path, suffix);
    int rc = key_write(p, k, 1, err, errlen);
    free(p);
    return rc;
}

static void unlink_suffix(const char *key_path, const char *suffix)
{
    size_t n = strlen(key_path) + strlen(suffix) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%s%s", key_path, suffix);
    unlink(p);
    free(p);
}

int store_key_rotate(store_t *s, char *new_id_hex, char *err, size_t errlen)
{
    row_t *rows = NULL;
    size_t nrows = 0;
    store_key_t *nk = NULL;
    int rc, in_tx = 0, wrote_files = 0;
    char *newpath = NULL;
    if (!s->key) {
        store__seterr(err, errlen, "a reader connection cannot rotate the master key");
        return GS_ESTATE;
    }

    /* The write lock serialises rotations (and every other writer) for the re-seal. */
    if (sqlx_begin(s->db) != 0) {
        store__seterr(err, errlen, "cannot lock the database: %s", sqlx_errmsg(s->db));
        rc = GS_EDB;
        goto fail;
    }
    in_tx = 1;
    rc = store__key_refresh(s);
    if (rc < 0) {
        store__seterr(err, errlen, "the database's current master key cannot be found");
        goto fail;
    }
    /* A rotation cut short after its commit left the database's key in .new (or .old) only:
     * put it back in the key file first, so that the companions written below, and removed if
     * this rotation fails, never hold the only copy of a key the database needs. */
    store_key_t *onfile = NULL;
    char why[600];
    if (key_read(s->key_path, &onfile, why, sizeof why) < 0 ||
        sodium_memcmp(onfile->id, s->key->id, STORE_KEY_ID_LEN) != 0) {
        rc = key_write(s->key_path, s->key, 1, err, errlen);
        if (rc < 0) {
            key_free(onfile);
            goto fail;
        }
        log_info(STORE_LOG_WHO,
                 "completed an interrupted key rotation: %s holds the database's "
                 "key again",
                 s->key_path);
    }
    key_free(onfile);
    nk = key_new();
    randombytes_buf(nk->key, sizeof nk->key);
    key_set_id(nk);

    /* The previous key stays on disk as .old until the new one is in place; the new one goes to
     * .new before the database commits to it. Whatever the crash point, some file holds the key
     * the database is sealed under (key_find looks in all three). */
    rc = key_write_suffix(s->key_path, ".old", s->key, err, errlen);
    if (rc < 0)
        goto fail;
    wrote_files = 1;
    rc = key_write_suffix(s->key_path, ".new", nk, err, errlen);
    if (rc < 0)
        goto fail;

    rc = load_rows(s->db, &rows, &nrows);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot read terminal secrets: %s", sqlx_errmsg(s->db));
        goto fail;
    }
    for (size_t i = 0; i < nrows; i++) {
        uint8_t plain[STORE_SECRET_LEN], sealed[STORE_SEALED_LEN];
        if (rows[i].n == 0)
            continue; /* no usable secret (after a reset): stays so */
        rc = rows[i].n == STORE_SEALED_LEN
                 ? store__secret_unseal(s->key, rows[i].id, rows[i].blob, STORE_SEALED_LEN, plain)
                 : GS_EINVAL;
        if (rc < 0) {
            store__seterr(err, errlen,
                          "terminal %s: its stored secret does not open under the current key "
                          "(%s); give it a new one (`gridsense terminal rotate-secret %s`) or "
                          "remove it, then rotate again",
                          rows[i].id, err_str(rc), rows[i].id);
            goto fail;
        }
        store__secret_seal(nk, rows[i].id, plain, sealed);
        sodium_memzero(plain, sizeof plain);
        rc = update_secret(s->db, rows[i].id, sealed, sizeof sealed);
        if (rc < 0) {
            store__seterr(err, errlen, "cannot re-seal %s: %s", rows[i].id, sqlx_errmsg(s->db));
            goto fail;
        }
    }
    rc = db_set_key_id(s->db, nk->id);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot record the new key id: %s", sqlx_errmsg(s->db));
        goto fail;
    }
    if (sqlx_commit(s->db) != 0) {
        store__seterr(err, errlen, "cannot commit: %s", sqlx_errmsg(s->db));
        rc = GS_EDB;
        goto fail;
    }
    in_tx = 0;

    /* Committed: the database is sealed under the new key, which is in .new. */
    size_t n = strlen(s->key_path) + 8;
    newpath = xmalloc(n);
    snprintf(newpath, n, "%s.new", s->key_path);
    if (rename(newpath, s->key_path) != 0 || fsync_dir_of(s->key_path) != 0) {
        rc = -errno;
        store__seterr(err, errlen,
                      "the database now uses the new key, but %s could not be renamed to %s (%s): "
                      "rename it by hand; running processes find it meanwhile",
                      newpath, s->key_path, strerror(errno));
        key_free(s->key);
        s->key = nk;
        nk = NULL;
        goto done;
    }
    unlink_suffix(s->key_path, ".old");
    fsync_dir_of(s->key_path);
    key_free(s->key);
    s->key = nk;
    nk = NULL;
    store__key_id_hex(s->key->id, new_id_hex);
    log_info(STORE_LOG_WHO, "master key rotated: %zu terminal secrets re-sealed under key id %s",
             nrows, new_id_hex);
    rc = 0;
    goto done;

fail:
    if (in_tx)
        sqlx_rollback(s->db);
    if (wrote_files) {
        /* Nothing committed: the key file is untouched and still the database's key. */
        unlink_suffix(s->key_path, ".new");
        unlink_suffix(s->key_path, ".old");
    }
done:
    if (rows)
        sodium_free(rows);
    key_free(nk);
    free(newpath);
    return rc;
}

int store__key_reset(store_t *s, const char *old_hex, char *err, size_t errlen)
{
    int rc, in_tx = 0;
    store_key_t *nk = key_new();
    char hex[2 * STORE_KEY_ID_LEN + 1];
    randombytes_buf(nk->key, sizeof nk->key);
    key_set_id(nk);

    if (sqlx_begin(s->db) != 0) {
        store__seterr(err, errlen, "cannot lock the database: %s", sqlx_errmsg(s->db));
        rc = GS_EDB;
        goto fail;
    }
    in_tx = 1;
    /* An existing key file that is not the database's key is kept aside, never overwritten:
     * it may be the right key of another data dir. */
    struct stat sb;
    if (stat(s->key_path, &sb) == 0) {
        size_t n = strlen(s->key_path) + 40;
        char *aside = xmalloc(n);
        snprintf(aside, n, "%s.replaced-%lld", s->key_path,
                 (long long)(time_utc_ns() / 1000000000));
        if (rename(s->key_path, aside) != 0) {
            rc = -errno;
            store__seterr(err, errlen, "cannot move %s aside: %s", s->key_path, strerror(errno));
            free(aside);
            goto fail;
        }
        log_warn(STORE_LOG_WHO, "key reset: the previous key file is kept as %s", aside);
        free(aside);
    }
    rc = key_write(s->key_path, nk, 0, err, errlen);
    if (rc < 0)
        goto fail;
    /* an empty blob: X'' on SQLite, '\x'::bytea on PostgreSQL (X'' is a bit string there) */
    if (sqlx_exec(s->db, s->pg ? "UPDATE terminals SET secret = '\\x'::bytea"
                               : "UPDATE terminals SET secret = X''") != 0) {
        store__seterr(err, errlen, "cannot clear secrets: %s", sqlx_errmsg(s->db));
        rc = GS_EDB;
        goto fail;
    }
    int64_t cleared = sqlx_changes(s->db);
    rc = db_set_key_id(s->db, nk->id);
    if (rc < 0 || sqlx_commit(s->db) != 0) {
        store__seterr(err, errlen, "cannot commit the key reset: %s", sqlx_errmsg(s->db));
        unlink(s->key_path);
        rc = GS_EDB;
        goto fail;
    }
    in_tx = 0;
    store__key_id_hex(nk->id, hex);
    log_warn(STORE_LOG_WHO,
             "master key reset: key id %s replaced the lost key %s; the secrets of %lld "
             "terminals were discarded: each needs `gridsense terminal rotate-secret`",
             hex, old_hex, (long long)cleared);
    s->key = nk;
    return 0;
fail:
    if (in_tx)
        sqlx_rollback(s->db);
    key_free(nk);
    return rc < 0 ? rc : GS_EDB;
}

int store_key_id(store_t *s, char out[2 * STORE_KEY_ID_LEN + 1])
{
    if (!s->key)
        return GS_ESTATE; /* a reader holds no key */
    store__key_id_hex(s->key->id, out);
    return 0;
}

const char *store_key_path(store_t *s)
{
    return s->key_path;
}
