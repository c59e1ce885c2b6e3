/* store internals shared by the store's own .c files; not part of the contract.
 *
 * Threading: `db` and everything under "owner thread" belong to the thread that called
 * store_open. The writer connection and its statements belong to the writer thread while it runs
 * (they are created and destroyed by the owner thread around pthread_create / pthread_join). The
 * queue, counters and flags under "mu" are shared.
 */
#ifndef GS_STORE_INTERNAL_H
#define GS_STORE_INTERNAL_H

#include "core/hmap.h"
#include "store/sql.h"
#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>

#define STORE_DB_FILE  "gridsense.db"
#define STORE_KEY_FILE "master.key"
#define STORE_LOG_WHO  "store"

/* The master key and its id (see keys.c). Always sodium_malloc'ed. */
typedef struct {
    uint8_t key[STORE_KEY_LEN];
    uint8_t id[STORE_KEY_ID_LEN]; /* BLAKE2b-128 keyed with key: names the key without
                                     revealing it */
} store_key_t;

/* Bytes of a sealed secret in terminals.secret (format in keys.c). */
#define STORE_SEALED_LEN 89

/* Per-terminal highest seq seen in one writer batch. */
typedef struct {
    const char *terminal_id; /* borrowed from an item of the batch */
    uint64_t seq;
} seq_max_t;

struct store {
    /* owner thread */
    sqlx_t *db;    /* synchronous connection, either engine */
    sqlite3 *lite; /* the SQLite connection under db (NULL on PostgreSQL): SQLite-only work */
    int pg;        /* the database is PostgreSQL (store_opts_t.url) */
    char *url;     /* its URL, owned (NULL for SQLite) */
    char *path;    /* data_dir/gridsense.db, owned */
    int sync_full; /* resolved options, reused for the writer connection */
    int busy_timeout_ms;
    int schema_version;
    char *key_path;           /* master key file, owned */
    store_key_t *key;         /* the key the database's secrets are sealed under */
    int64_t seclog_window_ns; /* rate limit of "unusable secret" log lines (keys.c) */
    int seclog_count, seclog_suppressed;
    int running; /* writer thread started and not yet joined */
    pthread_t thread;
    int sync_read_only; /* PRAGMA query_only on db (store_opts_t.sync_read_only) */
    int reader_only;    /* store_opts_t.reader_only: no key (key NULL), no writer, no migrations */

    /* writer thread while running */
    sqlx_t *wdb;
    sqlite3 *wlite; /* the SQLite connection under wdb (NULL on PostgreSQL) */
    /* PostgreSQL (writer.c): a failed statement aborts the whole transaction there, so a batch
     * whose item the database refuses is retried with one savepoint per item (pg_slow) to let
     * the others through, as SQLite's statement-level rollback does. */
    int pg_slow;        /* this attempt wraps each item in a savepoint */
    int pg_want_slow;   /* an item failed in a fast attempt: the next one is slow */
    int pg_item_failed; /* the current item's statement failed (slow attempt) */
    struct {
        char terminal_id[STORE_ID_MAX + 1];
        int64_t mark; /* highest seq stored (durable_seq, then this batch's) */
        int found;    /* the terminal has a row (locked) */
    } * pg_marks;     /* per distinct terminal of the batch's blocks, locked FOR UPDATE */
    size_t pg_nmarks, pg_marks_cap;
    sqlx_stmt_t *pg_lock;      /* SELECT ... FOR UPDATE of the batch's terminals */
    sqlx_stmt_t *pg_has_block; /* is (terminal, seq) stored? */
    store_item_t **pg_pend;    /* new blocks of this attempt, inserted together (multi-row) */
    size_t pg_npend, pg_pend_cap;
#define STORE__PG_ROWS 64
    sqlx_stmt_t *pg_ins_rows[STORE__PG_ROWS]; /* [k-1]: INSERT of k blocks */
    sqlx_stmt_t *ins_block, *ins_event, *upd_durable, *ins_status, *ins_session, *upd_session,
        *upd_command, *ins_pq_event, *ins_measurement, *ins_command, *exp_commands;
    seq_max_t *maxes; /* scratch for durable_seq updates, capacity nmaxes_cap */
    size_t nmaxes_cap;
    struct {
        char terminal_id[STORE_ID_MAX + 1];
        uint64_t seq; /* lowest block seq that failed; later blocks fail until re-sent */
    } poison[64], poison_save[64];
    int npoison;
    sqlx_stmt_t *ins_layout;  /* STORE__SQL_LAYOUT_INSERT */
    sqlx_stmt_t *ins_pending; /* backlog.c: prepared on first use, finalized with the others */
    hmap_t layouts;           /* terminal id -> struct store_layout_cache * (writer.c) */
    store_done_cb done_cb;
    void *done_ud;
    struct store_pyr *pyr; /* the pyramid's statements and bucket cache (pyramid.c); NULL until
                              the first WAVEFORM block */

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    store_item_t *head, *tail; /* FIFO of submitted items not yet taken by the writer */
    size_t depth_items;        /* queued plus in the batch being written */
    size_t depth_bytes;        /* their data bytes */
    int accepting;             /* store_submit allowed */
    int stopping;              /* writer must drain the queue and exit */
    store_writer_stats_t stats;

    /* retention.c (issue 10), under mu */
    store_retention_t ret_policy;      /* the running pass's policy */
    store_retention_result_t ret_pass; /* what the running pass deleted so far */
    char ret_pyr_at[STORE_ID_MAX + 1]; /* retention: the terminal whose pyramid rows the next
                                          step looks at first ("": the first one); not under
                                          mu: only the thread running steps touches it */
    int64_t ret_started_mono;          /* monotonic start of the running pass */
    store_retention_stats_t ret_stats; /* counters, disk-full state included */
    /* disk full (writer thread only) */
    int64_t full_last_log_mono;    /* last alarm line (rate limit) */
    uint64_t full_failures_logged; /* full_failures at that line */
    int last_full;                 /* the last failed batch attempt was a full disk */
    int full_remind_ms;            /* reminder interval; 0: STORE__FULL_REMIND_S (tests set it) */
    /* shutdown summary (writer thread only) */
    uint64_t stop_lost_items, stop_lost_batches, stop_lost_blocks;
    int stop_lost_rc;
};

/* ---- retention and disk full (retention.c) ---- */

/* Writer thread: runs one step of the pass carried by item `it` (STORE_ITEM_RETENTION, taken
 * alone from the queue) and either queues it again at the tail (more due, not stopping) or ends
 * the pass (log line, counters) and frees it. Called without mu; takes it as needed. */
void store__retention_item(store_t *s, store_item_t *it);

/* PostgreSQL partition maintenance (retention.c): partitions for the days around now, and, with
 * a policy, whole partitions dropped behind its cutoffs (wave_pyramid_fine by
 * pyramid_fine_days, measurements by aggregates_days, blocks by raw_days once retention emptied
 * them). Runs its own transactions: call outside any. 0 or a negative code (logged). */
int store__pg_partitions(store_t *s, sqlx_t *db, const store_retention_t *p);

/* 1 if the connection's last error means the database cannot grow: SQLITE_FULL, or an I/O
 * error whose errno is ENOSPC, EFBIG (a file size limit) or EDQUOT. */
int store__db_is_full(sqlx_t *db);

/* Writer thread, after each batch attempt: full = the attempt failed for a full disk, ok = it
 * committed. Keeps store_retention_stats_t's disk-full fields and writes the rate-limited alarm
 * (one line when it starts, a reminder at most every STORE__FULL_REMIND_S with the counts, one
 * line when it clears). Returns 1 while the disk is full (the caller then keeps quiet). */
int store__disk_full_note(store_t *s, int full, int ok, size_t batch_items);
#define STORE__FULL_REMIND_S 60

/* EXPLAIN QUERY PLAN of each statement into out, one "<sql start> | <plan step>" line per step
 * (NUL-terminated, truncated to cap). 0, GS_EINVAL (cap 0) or GS_EDB. */
int store__plan(sqlx_t *db, const char *const *sqls, size_t n, char *out, size_t cap);

/* Set on the writer thread while the disk is full: store__db_fail logs disk-full errors at
 * debug level instead of error (the alarm above reports them). */
extern _Thread_local int store__quiet_full;

/* Opens (creating if needed) the SQLite database at path with the store's pragmas: WAL, the
 * given synchronous level, busy timeout, foreign keys off, no SQLite mutexes (the connection is
 * used by one thread at a time). On failure writes "cannot open <path>: <reason>" into err, logs
 * it and returns GS_EDB; *out is then NULL. */
int store__db_open(const char *path, int sync_full, int busy_timeout_ms, sqlite3 **out, char *err,
                   size_t errlen);

/* Applies pending schema migrations (migration 4 seals plaintext secrets under key), each in its
 * own BEGIN IMMEDIATE transaction so that concurrent openers serialise and none applies a script
 * twice. Writes the resulting version to *version. Returns 0 or GS_EDB with a reason in err. */
int store__migrate(sqlx_t *db, const char *path, const store_key_t *key, int *version, char *err,
                   size_t errlen);

/* For a reader (store_opts_t.reader_only): the schema must be exactly this program's (a reader
 * never migrates). Writes it to *version and returns 0, or GS_ESTATE / GS_EDB with the reason in
 * err. */
int store__schema_check(sqlx_t *db, const char *path, int *version, char *err, size_t errlen);

/* Opens a connection to the store's database: SQLite at s->path through store__db_open (its
 * pragmas and file rules), wrapped in the seam (*lite is the raw handle, closed by the caller
 * after sqlx_close), or PostgreSQL at s->url (*lite NULL). 0, or a negative code with the reason
 * in err (logged). */
int store__conn_open(store_t *s, sqlx_t **db, sqlite3 **lite, char *err, size_t errlen);

/* The schema version this program's migrations end at. */
int store__schema_latest(void);

/* Logs the connection's last SQLite error as "<what>: <message>" and returns GS_EDB. */
int store__db_fail(sqlx_t *db, const char *what);

/* Prepares sql on db; returns 0 or GS_EDB (logged). */
int store__prepare(sqlx_t *db, const char *sql, sqlx_stmt_t **out);

/* Runs a one-value query: ?1, if the statement has it, is text1 (when not NULL) or int1. *out
 * gets the value, or def when there is no row or the value is NULL (*found, may be NULL, says
 * which). 0 or a negative code (logged). */
int store__query_i64(sqlx_t *db, const char *sql, const char *text1, int64_t int1, int64_t def,
                     int64_t *out, int *found);

/* Returns 1 if table `name` exists in db, 0 if not, GS_EDB on error (logged). */
int store__table_exists(sqlx_t *db, const char *name);

/* The command state change shared by store_command_update (loop thread) and the writer's
 * STORE_ITEM_COMMAND_UPDATE. Final states (>= done) are immutable and the others only move
 * forward (queued < sent < acked): the server submits changes from a possibly stale read, so a
 * late `sent` must not undo `acked` (which would re-send it at every session, against protocol
 * decision 1). The WHERE clause makes the check and the write one atomic step even if another
 * process updates the same command. */
#define STORE__SQL_COMMAND_UPDATE                                                                  \
    "UPDATE commands SET state = ?2, updated_ns = ?3,"                                             \
    " result_status = CASE WHEN ?4 >= 0 THEN ?4 ELSE result_status END,"                           \
    " result = CASE WHEN ?4 >= 0 THEN ?5 ELSE result END"                                          \
    " WHERE id = ?1 AND state < 3 AND state <= ?2"

/* Pending commands of terminal ?1 at time ?4 (queued, sent or acked, not expired); the rest of
 * a statement after "SELECT ". */
#define STORE__SQL_COUNT_PENDING                                                                   \
    "COUNT(*) FROM commands WHERE terminal_id = ?1 AND state < 3 AND expires_ns > ?4"

/* A new queued command (?1 terminal, ?2 verb, ?3 args, ?4 now, ?5 expiry), inserted only if the
 * terminal exists and, when ?6 > 0, has fewer than ?6 pending commands: one statement, so the
 * checks and the insert are atomic against other processes. */
#define STORE__SQL_COMMAND_CREATE                                                                  \
    "INSERT INTO commands(terminal_id, verb, args, state, created_ns, updated_ns, expires_ns,"     \
    " result_status) SELECT CAST(?1 AS TEXT), CAST(?2 AS INTEGER), CAST(?3 AS BLOB), 0, CAST(?4 "  \
    "AS BIGINT),"                                                                                  \
    " CAST(?4 AS BIGINT), CAST(?5 AS BIGINT), -1"                                                  \
    " WHERE EXISTS(SELECT 1 FROM terminals WHERE id = ?1)"                                         \
    " AND (CAST(?6 AS BIGINT) <= 0 OR (SELECT " STORE__SQL_COUNT_PENDING ") < ?6) RETURNING id"

/* Every non-final command whose expiry is <= ?1 becomes expired. */
#define STORE__SQL_COMMAND_EXPIRE                                                                  \
    "UPDATE commands SET state = 5, updated_ns = ?1 WHERE state < 3 AND expires_ns <= ?1"

/* Runs a statement prepared from STORE__SQL_COMMAND_CREATE (reset afterwards) and, when nothing
 * was inserted, tells why. Returns 0 with the new id in *id_out, GS_ENOTFOUND, GS_ELIMIT or
 * GS_EDB (logged). Shared by the synchronous API and the writer. */
int store__command_create(sqlx_t *db, sqlx_stmt_t *st, const char *terminal_id, int verb,
                          const uint8_t *args, size_t args_len, int64_t now, int64_t ttl_ns,
                          int max_pending, int64_t *id_out);

/* Binds the parameters of STORE__SQL_COMMAND_UPDATE (result may be NULL when result_len is 0;
 * the blob is bound without copying, so it must outlive the step). */
void store__bind_command_update(sqlx_stmt_t *st, int64_t id, int state, int64_t now,
                                int result_status, const uint8_t *result, size_t result_len);

/* Writes an account change and its audit row inside the caller's transaction on db (users.c):
 * GS_EDB (the caller rolls back), or 0 with the change's own outcome (0, GS_EEXISTS,
 * GS_ENOTFOUND, GS_ESTATE, GS_EINVAL) in *result. */
int store__account_write(sqlx_t *db, store_acct_t *a, int64_t now, int *result);

/* ---- channel layouts kept with the blocks (blocks_read.c, schema migration 7) ---- */

/* Longest layout text: 16 channels of "iii,kkk,ppp,uuu,<%.9g scale>;" fit with room. */
#define STORE__LAYOUT_TEXT_MAX 640

/* The writer's cache of the layout it last stored per terminal: a terminal's layout changes
 * only at a login, so nearly every block finds its layout there and costs no statement. One
 * entry per terminal that sent blocks since the writer started (provisioned ids only). */
struct store_layout_cache {
    int n;                               /* channels in ch */
    store_chan_t ch[STORE_MAX_CHANNELS]; /* the layout last stored (compared bytewise: the
                                            struct has no padding) */
};

/* Stores layout text ?3 for terminal ?1 from block seq ?2 on, unless the layout already in force
 * at that seq is the same text. */
#define STORE__SQL_LAYOUT_INSERT                                                                   \
    "INSERT INTO block_layouts(terminal_id, first_seq, channels)"                                  \
    " SELECT ?1, CAST(?2 AS BIGINT), CAST(?3 AS TEXT)"                                             \
    " WHERE coalesce((SELECT channels FROM block_layouts WHERE terminal_id = ?1"                   \
    " AND first_seq <= ?2 ORDER BY first_seq DESC LIMIT 1), '') <> ?3 ON CONFLICT DO NOTHING"

/* Encodes n (1..STORE_MAX_CHANNELS) channels as "index,kind,phase,unit,scale;..." (scale with 9
 * significant digits, which round-trips a float) into out (cap >= STORE__LAYOUT_TEXT_MAX).
 * Returns the length, or 0 when n is out of range. */
size_t store__layout_encode(const store_chan_t *ch, int n, char *out, size_t cap);

/* Parses a layout text into ch (room for STORE_MAX_CHANNELS) and *n. Returns 0, or GS_EINVAL for
 * text that is not exactly what store__layout_encode writes with valid values (index < 16 and
 * unique, scale finite > 0): the database is outside input too. */
int store__layout_decode(const char *text, store_chan_t *ch, int *n);

/* The REST account ops (STORE_ACCT_TERMINAL_*, COMMAND_CANCEL, EVENT_ACK; admin_write.c), called
 * by the account change inside its savepoint: 0 or the op's own code (see store.h), GS_EDB, or
 * GS_EINVAL for an op it does not know. */
int store__admin_change(sqlx_t *db, const store_acct_t *a, int64_t now);

/* ---- secrets at rest (keys.c) ---- */

/* Loads the master key for the database (before migrations): the key file if present, checked
 * (regular file, mode without group/other bits, exactly 32 bytes) and matched against the key id
 * the database records; created (0600, atomically, never replacing one made by a concurrent
 * opener) when the database records none yet. A key id found only in key_path.new / .old (a
 * rotation cut short) is used with a warning. key_reset: replace a missing or non-matching key by
 * a new one and discard every sealed secret. Returns 0 with s->key set, or GS_ECONFIG / GS_EDB /
 * GS_ESTATE with the reason in err. */
int store__keys_open(store_t *s, int key_reset, char *err, size_t errlen);

/* After migrations: the database's key id must be s->key's. GS_ECONFIG otherwise. */
int store__keys_check(store_t *s, char *err, size_t errlen);

/* Frees s->key (zeroing it). */
void store__keys_close(store_t *s);

/* Migration 4: seals every plaintext secret under k and records k's id, inside the caller's
 * transaction. Returns the number of secrets sealed or a negative code with the reason in err. */
int store__migrate_seal(sqlx_t *db, const store_key_t *k, char *err, size_t errlen);

/* PRAGMA wal_checkpoint(TRUNCATE), best effort: after sealing plaintext secrets, so that the
 * old page images leave the WAL. */
void store__checkpoint_truncate(sqlite3 *db);

/* Seals a 32-byte secret for terminal tid under k into out (fresh random nonce). */
void store__secret_seal(const store_key_t *k, const char *tid, const uint8_t *secret,
                        uint8_t out[STORE_SEALED_LEN]);

/* Opens a sealed secret with k. 0, GS_EINVAL (malformed), GS_ENOTFOUND (sealed under another
 * key id) or GS_EAUTH (does not authenticate: altered, or another terminal's row). */
int store__secret_unseal(const store_key_t *k, const char *tid, const uint8_t *blob, size_t n,
                         uint8_t secret[STORE_SECRET_LEN]);

/* store__secret_unseal with s->key, reloading the key files when the row names another key id
 * (a rotation by another process). Logs the reason of a failure (never the secret): GS_EAUTH
 * for no usable secret / not authenticating / key not found, GS_EDB if malformed. */
int store__secret_open(store_t *s, const char *tid, const void *blob, size_t n,
                       uint8_t secret[STORE_SECRET_LEN]);

/* Makes s->key the database's current key (reloading key files after a rotation elsewhere). */
int store__key_refresh(store_t *s);

/* Replaces a lost key: new key file, every secret discarded (see store__keys_open). */
int store__key_reset(store_t *s, const char *old_hex, char *err, size_t errlen);

/* Data dir 0700 and its regular files 0600 (key files excepted), logged once when something was
 * looser. Returns 0 or -errno. */
int store__tighten_dir(const char *dir, const char *key_path);

/* Hex of a key id (32 digits). */
void store__key_id_hex(const uint8_t id[STORE_KEY_ID_LEN], char out[2 * STORE_KEY_ID_LEN + 1]);

/* Writes a formatted message into err (if err and errlen are non-zero). */
void store__seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Analysis backlog (backlog.c). In the writer's transaction: adds a stored block item with
 * ana_pending to its unit's ana_pending row. Returns 0 or GS_EDB (the batch is retried). */
int store__pending_note(store_t *s, store_item_t *it);

/* Applies a rebuild (store.h, store_rebuild_t) inside the caller's open transaction on db.
 * Returns 0 or GS_EDB (the caller rolls back). */
int store__rebuild_write(sqlx_t *db, store_rebuild_t *rb);
/* ---- waveform summary pyramid (pyramid.c), called by the writer ---- */

/* Folds a WAVEFORM block the writer has just inserted (result 0, never a duplicate) into the
 * pyramid cache of its terminal, inside the batch's transaction on s->wdb; EVENT blocks and
 * blocks whose sizes disagree are left out. Returns 0 or GS_EDB (the batch must roll back). */
int store__pyr_block(store_t *s, const store_item_t *it);
/* Writes the cached rows the batch changed; called before COMMIT. 0 or GS_EDB. */
int store__pyr_flush(store_t *s);
/* After a rollback: drops the cache (rows are read again from the database). */
void store__pyr_forget(store_t *s);
/* Finalizes the pyramid's statements (writer_close_db). */
void store__pyr_close(store_t *s);

/* EXPLAIN QUERY PLAN of n statements into out as "name: plan" lines (parameter 1 bound to a
 * text, the others to integers). 0, GS_EINVAL (cap 0) or GS_EDB. */
int store__explain(sqlx_t *db, const char *const *names, const char *const *sqls, int n, char *out,
                   size_t cap);

#endif
