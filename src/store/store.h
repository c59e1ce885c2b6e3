/* store — durable storage of terminals, sessions, waveform blocks, status, events and commands.
 *
 * First backend: SQLite in WAL mode. A store_t has two faces:
 *  - a synchronous API (terminals, commands, queries) on one connection owned by the thread that
 *    opened the store (the loop thread in the server, main in the CLI). Not thread-safe: call
 *    from that thread only. Writes here are small and rare (provisioning, command state).
 *  - an asynchronous writer: a dedicated thread with its own connection that takes items from a
 *    queue, writes them in batched transactions and reports each committed batch through a
 *    callback. Acknowledged means durable: callers acknowledge data to terminals only from that
 *    callback. Exactly-once: (terminal_id, seq) is unique, duplicates are ignored and reported.
 * Several processes (the server and admin commands) may open the same data dir at once, and one
 * process may open it more than once: the server's web thread has a store_t of its own opened
 * with store_opts_t.reader_only (a query-only connection without the master key, see there).
 *
 * Threads, precisely: a store_t's synchronous calls belong to one thread at a time (the
 * connection is opened SQLITE_OPEN_NOMUTEX), normally the one that opened it; a reader may be
 * opened on one thread and then used only by another (the web thread). store_submit,
 * store_item_cancel, store_queue_depth and store_writer_stats are safe from any thread (they
 * take the store's mutex, held only for list and counter updates, never during SQL). The
 * writer's done callback runs on the writer thread, never on a loop: a caller that needs its loop
 * (the gateway) queues the batch and wakes that loop with uv_async_send, so the completions of
 * items submitted from any thread (the analysis workers, a web thread) are handled on the loop of
 * whoever started the writer.
 */
#ifndef GS_STORE_H
#define GS_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

#define STORE_ID_MAX     32
#define STORE_SECRET_LEN 32
#define STORE_KEY_LEN    32 /* master key */
#define STORE_KEY_ID_LEN 16
#define STORE_ARGS_MAX   512

/* ---- Lifecycle ---- */

/* Options for store_open. opts == NULL means all defaults (FULL, 5000 ms). With an opts struct,
 * sync_full is taken literally, so a zero-initialised struct selects NORMAL: set sync_full = 1
 * for FULL. busy_timeout_ms <= 0 selects the default. */
typedef struct {
    int sync_full;       /* non-zero: PRAGMA synchronous=FULL (durable across power loss; the
                            default when opts is NULL), 0: NORMAL (durable across process crash
                            only) */
    int busy_timeout_ms; /* wait for locks held by other connections; <= 0: 5000 */
    const char *master_key_file; /* key the terminal secrets are sealed under; NULL:
                                    data_dir/master.key (format and rules in keys.c and
                                    docs/operations.md "Secrets and keys") */
    int key_reset;      /* replace a lost master key by a new one, discarding every terminal's
                           secret (`gridsense key reset`); refused if the key is not lost */
    int sync_read_only; /* non-zero: after the migrations, the synchronous connection refuses
                           writes (PRAGMA query_only; a write fails with GS_EDB instead of
                           waiting for the lock) and waits at most 100 ms for a lock. The server
                           sets it: its synchronous connection belongs to the loop thread, which
                           must never wait for the database; all its writes go through the
                           writer. */
    int reader_only;    /* non-zero: a second, read-only connection to an existing database for
                           another thread (the web thread): nothing is created or migrated (a
                           schema that is not exactly this program's is refused with GS_ESTATE;
                           no database: GS_ENOTFOUND), the data dir is not touched, the
                           connection is query_only and waits busy_timeout_ms (<= 0: 100 ms) for
                           a lock, and the master key is NOT loaded: store_terminal_get (secrets),
                           store_terminal_add, store_terminal_set_secret, store_key_id and
                           store_key_rotate return GS_ESTATE, store_key_path returns NULL, and
                           store_writer_start is refused (GS_ESTATE). Every other synchronous
                           read works (store_terminal_info/list, commands, events, measurements,
                           blocks); writes fail with GS_EDB. master_key_file, key_reset and
                           sync_read_only are ignored. */
    const char *url;    /* NULL or "": the SQLite database data_dir/gridsense.db. A libpq URI
                           (postgresql://...): that PostgreSQL database instead
                           (docs/decisions/0007-postgresql-backend.md); data_dir then holds only
                           the master key. Copied. */
} store_opts_t;

/* Creates data_dir if missing (mode 0700; an existing one and the regular files in it are made
 * private, 0700 / 0600, logged once), opens or creates data_dir/gridsense.db (0600 whatever the
 * umask; SQLite gives -wal/-shm the same mode), enables WAL, loads the master key (creating the
 * key file, 0600, when the database has no sealed secret yet) and applies pending schema
 * migrations (numbered, in one transaction each, recorded in schema_version; migration 4 seals
 * plaintext secrets). Refused with GS_ECONFIG and a reason naming the key file when the key file
 * is missing, unreadable, not 32 bytes, readable by group/others, or not the database's key.
 * opts may be NULL for defaults. On failure returns a negative code and writes a one-line reason
 * into err. The caller owns *out and releases it with store_close(). */
int store_open(const char *data_dir, const store_opts_t *opts, store_t **out, char *err,
               size_t errlen);

/* Stops the writer if running (after draining and committing its queue) and closes everything.
 * NULL is a no-op. */
void store_close(store_t *s);

/* Returns the schema version after migrations. */
int store_schema_version(store_t *s);

/* ---- Master key ---- */

/* Re-seals every terminal secret under a new random master key in one transaction, while other
 * processes (the running server) keep working: the previous key is kept as <key>.old and the new
 * one written to <key>.new (atomically, 0600) before the commit; after it <key>.new is renamed
 * over the key file and <key>.old removed. Other processes holding the previous key find the new
 * one in the key files when they meet a row sealed under it; the secrets themselves do not
 * change, so sessions stay up. Writes the new key id (32 hex digits + NUL) to new_id_hex.
 * Returns 0 or a negative code with the reason in err (nothing changed unless err says the
 * rename failed). Owner thread. */
int store_key_rotate(store_t *s, char *new_id_hex, char *err, size_t errlen);

/* The id of the master key in use (32 hex digits + NUL): names the key (for backups) without
 * revealing it. Returns 0. */
int store_key_id(store_t *s, char out[2 * STORE_KEY_ID_LEN + 1]);

/* The master key file path in use (owned by the store). */
const char *store_key_path(store_t *s);

/* ---- Terminals (synchronous) ---- */

typedef struct {
    char id[STORE_ID_MAX + 1];
    char name[65];
    int has_location;
    double lat, lon;
    int nominal_hz;  /* 50 or 60 */
    double vt_ratio; /* 1 if unknown */
    double ct_ratio;
    uint8_t secret[STORE_SECRET_LEN];
    int64_t created_ns;   /* UTC */
    uint64_t durable_seq; /* highest block seq committed for this terminal */
    double declared_v;    /* declared input voltage Udin (secondary RMS, phase-to-neutral);
                             0 = not set: events use the sliding reference voltage */
} store_terminal_t;

/* Inserts a terminal. GS_EEXISTS if the id is taken, GS_EINVAL if the id is not valid (1..32 of
 * [A-Za-z0-9._-]), nominal_hz is not 0/50/60 or the location is out of range. Defaults: nominal_hz
 * 0 -> 50, ratios <= 0 -> 1, created_ns 0 -> now. durable_seq is ignored: it starts at the highest
 * seq already stored for the id (0 for a new terminal). */
int store_terminal_add(store_t *s, const store_terminal_t *t);
/* Fills *out, with the secret unsealed (callers wipe it with sodium_memzero when done).
 * GS_ESTATE on a reader (no key); GS_ENOTFOUND if absent; GS_EAUTH if the stored secret cannot be used (the terminal has none
 * after a key reset, it does not authenticate under the master key because it was altered or
 * copied from another row, its key is in no key file, or the stored value is malformed): logged
 * with the reason. */
int store_terminal_get(store_t *s, const char *id, store_terminal_t *out);
/* As store_terminal_get without the secret (all zeros): for display (API, CLI), which then
 * neither holds the plaintext nor fails for a terminal whose secret cannot be unsealed. */
int store_terminal_info(store_t *s, const char *id, store_terminal_t *out);
/* Calls cb for each terminal ordered by id; a non-zero return from cb stops and is returned.
 * The secret is not unsealed: t->secret is all zeros (use store_terminal_get). */
int store_terminal_list(store_t *s, int (*cb)(void *ud, const store_terminal_t *t), void *ud);
/* Removes the terminal and its queued commands (stored data is kept). GS_ENOTFOUND if absent. */
int store_terminal_remove(store_t *s, const char *id);
/* Replaces the secret (sealed under the master key). GS_ENOTFOUND if absent. */
int store_terminal_set_secret(store_t *s, const char *id, const uint8_t secret[STORE_SECRET_LEN]);
/* Number of terminals. */
int store_terminal_count(store_t *s, int64_t *n);

/* A counter that changes whenever any terminal is removed or gets a new secret (by any process).
 * Cheap to poll; the server uses it to end sessions whose credentials were revoked. */
int store_credentials_version(store_t *s, int64_t *version);

/* Groups the synchronous calls that follow into one transaction: STORE_TX_BEGIN (takes the
 * write lock, waiting up to the busy timeout), STORE_TX_COMMIT or STORE_TX_ROLLBACK. Used for
 * bulk provisioning, where one commit instead of one per terminal saves an fsync each. */
enum { STORE_TX_BEGIN, STORE_TX_COMMIT, STORE_TX_ROLLBACK };
int store_transaction(store_t *s, int op);

/* ---- Commands (synchronous) ---- */

typedef enum {
    STORE_CMD_QUEUED = 0,
    STORE_CMD_SENT,
    STORE_CMD_ACKED,
    STORE_CMD_DONE,
    STORE_CMD_FAILED,
    STORE_CMD_EXPIRED,
    STORE_CMD_CANCELLED /* final: cancelled by a user while still queued, never sent */
} store_cmd_state_t;

/* "queued", "sent", ... ; NULL for an invalid value. */
const char *store_cmd_state_name(int state);

typedef struct {
    int64_t id;
    char terminal_id[STORE_ID_MAX + 1];
    int verb;                     /* GSTP verb code */
    uint8_t args[STORE_ARGS_MAX]; /* GSTP TLV arguments */
    size_t args_len;
    int state; /* store_cmd_state_t */
    int64_t created_ns, updated_ns, expires_ns;
    int result_status;              /* GSTP result status, -1 if none yet */
    uint8_t result[STORE_ARGS_MAX]; /* GSTP TLV result payload */
    size_t result_len;
} store_command_t;

/* Creates a queued command expiring at now + ttl_ns. GS_ENOTFOUND if the terminal does not exist,
 * GS_ERANGE if args_len > STORE_ARGS_MAX. Writes the new id (> 0) to *id_out. */
int store_command_create(store_t *s, const char *terminal_id, int verb, const uint8_t *args,
                         size_t args_len, int64_t ttl_ns, int64_t *id_out);
/* As store_command_create, but refuses with GS_ELIMIT when the terminal already has max_pending
 * (> 0; <= 0 = no limit) pending commands (queued, sent or acked, not yet expired). The count
 * and the insert are one statement, so concurrent creators (the server's writer, CLI processes)
 * cannot overshoot the limit. */
int store_command_create_limited(store_t *s, const char *terminal_id, int verb, const uint8_t *args,
                                 size_t args_len, int64_t ttl_ns, int max_pending, int64_t *id_out);
/* Fills *out. GS_ENOTFOUND if absent. */
int store_command_get(store_t *s, int64_t id, store_command_t *out);
/* Newest first, at most `limit` (<= 0: no limit); cb as for store_terminal_list. terminal_id
 * NULL = all. */
int store_command_list(store_t *s, const char *terminal_id, int limit,
                       int (*cb)(void *ud, const store_command_t *c), void *ud);
/* Commands of the terminal to (re-)send at a new session: state queued or sent (never acked:
 * protocol decision 1, an acked command waits for its final RESULT), not expired, with
 * id > after_id, oldest first, at most `limit` (<= 0: no limit). Paging with after_id = the last
 * id seen lets the gateway deliver a long queue in bounded steps. */
int store_command_pending(store_t *s, const char *terminal_id, int64_t after_id, int limit,
                          int (*cb)(void *ud, const store_command_t *c), void *ud);
/* Number of pending commands (queued, sent or acked, not expired) of the terminal. */
int store_command_count_pending(store_t *s, const char *terminal_id, int64_t *n);
/* 1 if some non-final command has an expiry <= now_ns, else 0; negative on error. A read: the
 * server checks with it before submitting a STORE_ITEM_COMMAND_EXPIRE. */
int store_command_any_expired(store_t *s, int64_t now_ns);
/* Queued commands (any terminal) with id > after_id, oldest first, at most `limit` (<= 0: no
 * limit): how the server notices commands created by other processes (and by its writer); with a
 * limit, page by passing the last id seen. */
int store_command_new_since(store_t *s, int64_t after_id, int limit,
                            int (*cb)(void *ud, const store_command_t *c), void *ud);
/* The highest command id ever created (0 if none): where the server starts looking for new
 * ones. */
int store_command_max_id(store_t *s, int64_t *id);
/* Sets state (and the result when result_status >= 0). A command already in a final state (done,
 * failed, expired, cancelled), or past the state asked for (states only move forward: queued, sent, acked,
 * then a final one), is left unchanged and GS_ESTATE is returned; GS_ENOTFOUND if absent, GS_EINVAL
 * for an invalid state, GS_ERANGE if result_len > STORE_ARGS_MAX. */
int store_command_update(store_t *s, int64_t id, int state, int result_status,
                         const uint8_t *result, size_t result_len);
/* Moves every non-final command whose expiry is <= now_ns to expired; *n gets the count. */
int store_command_expire(store_t *s, int64_t now_ns, int *n);

/* ---- Queries (synchronous) ---- */

/* Number of stored blocks of a terminal and their min/max seq (0 when none). */
int store_block_stats(store_t *s, const char *terminal_id, int64_t *count, uint64_t *min_seq,
                      uint64_t *max_seq);

/* ---- Analysis results ---- */

/* Longest channel name kept with an event, and longest comma list of them (16 channels of up to
 * 15 characters), each including the terminating NUL. */
#define STORE_CH_NAME_MAX  16
#define STORE_CH_NAMES_MAX 256

/* One stored voltage event. `channels` (bit mask of channel indices) and `worst_channel` (index)
 * are the raw values; `channel_names` ("Ua,Ub") and `worst_channel_name` are the names recorded
 * at detection (schema migration 5), with has_names == 0 for an event stored before it (names
 * then empty). */
typedef struct {
    int64_t id;
    char terminal_id[STORE_ID_MAX + 1];
    char kind[16];
    int64_t start_ns, duration_ns, detected_ns;
    double extreme, extreme_pct, reference;
    uint32_t channels, flags;
    int worst_channel;
    int has_names;
    char channel_names[STORE_CH_NAMES_MAX];
    char worst_channel_name[STORE_CH_NAME_MAX];
} store_pq_event_t;

/* Calls cb for the newest `limit` events (1..10000) of terminal_id (NULL = all terminals) that
 * start in [from_ns, to_ns), newest first. cb returns non-zero to stop. Returns 0 or GS_EDB. */
int store_pq_event_list(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                        int limit, int (*cb)(void *ud, const store_pq_event_t *e), void *ud);

/* One stored aggregate; `data` is its JSON object (valid during the callback). */
typedef struct {
    char terminal_id[STORE_ID_MAX + 1];
    char interval[8];
    int64_t t_start_ns, t_end_ns;
    uint32_t flags, count;
    const char *data;
} store_measurement_t;

/* Calls cb for terminal_id's `interval` aggregates ending in (from_ns, to_ns], oldest first, at
 * most `limit` (1..100000). Returns 0 or GS_EDB. */
int store_measurement_list(store_t *s, const char *terminal_id, const char *interval,
                           int64_t from_ns, int64_t to_ns, int limit,
                           int (*cb)(void *ud, const store_measurement_t *m), void *ud);

/* Sets (v > 0) or clears (v == 0) a terminal's declared input voltage. GS_ENOTFOUND if no such
 * terminal, GS_EINVAL for a negative or non-finite value. */
int store_terminal_set_declared_v(store_t *s, const char *id, double v);

/* ---- Users, login sessions, API tokens and the audit trail (users.c) ----
 * Who may use the HTTP API. Passwords are stored only as argon2id strings (the caller hashes:
 * crypto_pwhash_str, which is slow on purpose and must not run on the loop thread); login
 * sessions and API tokens only as the 32-byte BLAKE2b hash of their random value. Reads run on
 * the calling connection; every change goes through store_account_apply (synchronous, for the
 * admin CLI) or a STORE_ITEM_ACCOUNT writer item (the server), each in one transaction together
 * with its audit row. */

#define STORE_USER_MAX   64  /* user name: 1..64 of [A-Za-z0-9._@-] */
#define STORE_PWHASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define STORE_TOKEN_ID   16  /* public token id: 16 lowercase hex digits */
#define STORE_HASH_LEN   32  /* BLAKE2b-256 of a session or token value */

enum { STORE_ROLE_VIEWER = 1, STORE_ROLE_OPERATOR = 2, STORE_ROLE_ADMIN = 3 };

/* "viewer", "operator", "admin", or "?" for anything else. */
const char *store_role_name(int role);
/* The role of a name above, or GS_EINVAL. */
int store_role_parse(const char *name);
/* 1 if name is a valid user name (1..STORE_USER_MAX of [A-Za-z0-9._@-]), else 0. */
int store_user_name_ok(const char *name);

typedef struct {
    char name[STORE_USER_MAX + 1];
    int role;
    char pwhash[STORE_PWHASH_MAX];
    int64_t created_ns, updated_ns;
} store_user_t;

/* One user by name: 0, GS_ENOTFOUND or GS_EDB. */
int store_user_get(store_t *s, const char *name, store_user_t *out);
/* Every user in name order; cb returning non-zero stops the walk (its value is returned). The
 * records passed have pwhash cleared. */
int store_user_list(store_t *s, int (*cb)(void *ud, const store_user_t *u), void *ud);
/* Number of users (role <= 0: all; else with that role). */
int store_user_count(store_t *s, int role, int64_t *n);

/* An API token as listed (never its value, which is not stored). */
typedef struct {
    char id[STORE_TOKEN_ID + 1];
    char user[STORE_USER_MAX + 1];
    char name[65];
    int role; /* the user's current role */
    int64_t created_ns, expires_ns, last_used_ns, revoked_ns; /* 0 = never / not */
} store_token_t;

/* The token whose value hashes to hash, with its user's current role: 0, GS_ENOTFOUND (also for
 * a token whose user no longer exists) or GS_EDB. Expiry and revocation are the caller's to
 * check (the fields are filled). */
int store_token_find(store_t *s, const uint8_t hash[STORE_HASH_LEN], store_token_t *out);
/* Tokens of one user (NULL: all), newest first. */
int store_token_list(store_t *s, const char *user, int (*cb)(void *ud, const store_token_t *t),
                     void *ud);

/* A login session as stored. */
typedef struct {
    char user[STORE_USER_MAX + 1];
    int role; /* the user's current role */
    int64_t created_ns, last_used_ns, expires_ns; /* expires_ns: the absolute expiry */
} store_login_t;

/* The login session whose cookie value hashes to hash, with its user's role: 0, GS_ENOTFOUND or
 * GS_EDB. Idle and absolute expiry are the caller's to check. */
int store_login_find(store_t *s, const uint8_t hash[STORE_HASH_LEN], store_login_t *out);

/* One audit record. */
typedef struct {
    int64_t id, time_ns;
    char user[STORE_USER_MAX + 1]; /* "" = no user (a failed login names the user tried) */
    char remote[64];               /* source address, "local" for the admin CLI */
    char action[40];               /* e.g. "login", "command.create", "user.add" */
    char target[160];              /* what it acted on ("terminal T1", "user bob"), may be "" */
    char outcome[16];              /* "ok", "denied", "failed", "error" */
    char detail[256];              /* free text, never a secret */
} store_audit_t;

typedef struct {
    int64_t from_ns, to_ns; /* time range, inclusive (INT64_MIN / INT64_MAX: open) */
    int64_t before_id;      /* only ids below (paging backwards; 0 = no bound) */
    const char *user;       /* NULL: any */
    const char *action;     /* NULL: any; "user." matches every action with that prefix */
    const char *outcome;    /* NULL: any */
    int limit;              /* 1..10000 */
} store_audit_filter_t;

/* Audit records matching f, newest first. */
int store_audit_list(store_t *s, const store_audit_filter_t *f,
                     int (*cb)(void *ud, const store_audit_t *a), void *ud);

/* An account change; op decides which fields are read. */
enum {
    STORE_ACCT_NONE = 0,     /* only the audit row */
    STORE_ACCT_USER_ADD,     /* user, role, pwhash; GS_EEXISTS if the name is taken */
    STORE_ACCT_USER_REMOVE,  /* user; its sessions and tokens go too; GS_ENOTFOUND, GS_ESTATE
                                when it is the last admin */
    STORE_ACCT_USER_ROLE,    /* user, role; GS_ESTATE when it would leave no admin */
    STORE_ACCT_USER_PASSWD,  /* user, pwhash; ends every login session of the user */
    STORE_ACCT_TOKEN_ADD,    /* token_id, hash, user, label, expires_ns (0 = never) */
    STORE_ACCT_TOKEN_REVOKE, /* token_id; GS_ENOTFOUND (or already revoked: GS_ESTATE) */
    STORE_ACCT_LOGIN_ADD,    /* hash, user, expires_ns (absolute), remote */
    STORE_ACCT_LOGIN_REMOVE, /* hash (missing: 0, nothing to do) */
    STORE_ACCT_LOGIN_TOUCH,  /* hash, when_ns: last use (never moves back) */
    STORE_ACCT_TOKEN_TOUCH,  /* token_id, when_ns */
    /* REST changes of terminals, commands and events (admin_write.c): */
    STORE_ACCT_TERMINAL_ADD,    /* term (not its secret), sealed, key_id: GS_EEXISTS, GS_EINVAL,
                                   GS_EBUSY when key_id is no longer the database's key (seal
                                   again with store_secret_seal and retry) */
    STORE_ACCT_TERMINAL_UPDATE, /* term.id and the fields named by term_fields: GS_ENOTFOUND */
    STORE_ACCT_TERMINAL_REMOVE, /* term.id; its unfinished commands go too: GS_ENOTFOUND */
    STORE_ACCT_TERMINAL_SECRET, /* term.id, sealed, key_id: GS_ENOTFOUND, GS_EBUSY as for ADD */
    STORE_ACCT_COMMAND_CANCEL,  /* object_id: a queued command becomes cancelled; GS_ENOTFOUND,
                                   GS_ESTATE when it is no longer queued */
    STORE_ACCT_EVENT_ACK,       /* object_id, user (who), when_ns: GS_ENOTFOUND, GS_ESTATE when
                                   already acknowledged */
};

/* Bytes of a terminal secret sealed under the master key (store_secret_seal). */
#define STORE_SEALED_BYTES 89

/* store_acct_t.term_fields: what a STORE_ACCT_TERMINAL_UPDATE changes. */
enum {
    STORE_TERM_F_NAME = 1,
    STORE_TERM_F_LOCATION = 2, /* term.has_location 0 clears it */
    STORE_TERM_F_NOMINAL_HZ = 4,
    STORE_TERM_F_VT_RATIO = 8,
    STORE_TERM_F_CT_RATIO = 16,
    STORE_TERM_F_DECLARED_V = 32, /* term.declared_v 0 clears it */
};

typedef struct {
    int op;
    char user[STORE_USER_MAX + 1];
    int role;
    char pwhash[STORE_PWHASH_MAX];
    uint8_t hash[STORE_HASH_LEN];
    char token_id[STORE_TOKEN_ID + 1];
    char label[65];
    int64_t expires_ns, when_ns; /* when_ns 0 = now */
    char remote[64];
    int has_audit;       /* also append `audit` (time 0 = now) in the same transaction */
    store_audit_t audit; /* its outcome is rewritten "failed" when the change fails */

    /* STORE_ACCT_TERMINAL_* / COMMAND_CANCEL / EVENT_ACK (admin_write.c) */
    store_terminal_t term;                /* term.secret is never used (stays zero) */
    unsigned term_fields;                 /* STORE_TERM_F_* (UPDATE) */
    uint8_t sealed[STORE_SEALED_BYTES];   /* ADD, SECRET: the sealed secret */
    uint8_t key_id[STORE_KEY_ID_LEN];     /* the key it is sealed under */
    int64_t object_id;                    /* COMMAND_CANCEL: command id; EVENT_ACK: event id */
} store_acct_t;

/* Applies a change and its audit row in one transaction on the synchronous connection (the
 * admin CLI). When the change fails for a reason of its own (GS_EEXISTS, GS_ENOTFOUND,
 * GS_ESTATE), the audit row is still written, with outcome "failed" and the reason in detail.
 * Returns 0 or that code, or GS_EDB (nothing written). */
int store_account_apply(store_t *s, store_acct_t *a);

/* ---- Asynchronous writer ---- */

/* One channel as the terminal described it in HELLO (GSTP 6.4). The writer keeps the layout of
 * the session with the blocks it recorded (table block_layouts, schema migration 7), because
 * the samples are raw counts: without the scale, kind and phase of each channel they cannot be
 * converted to volts and amps later (blocks_read.c). */
#define STORE_MAX_CHANNELS 16
typedef struct {
    uint8_t index; /* 0..15: the bit in a block's channel_mask */
    uint8_t kind;  /* 1 voltage, 2 current (other values kept as received) */
    uint8_t phase; /* 1 A, 2 B, 3 C, 4 N */
    uint8_t unit;  /* 1 V, 2 A */
    float scale;   /* engineering units (secondary side) per count, finite > 0 */
} store_chan_t;

typedef enum {
    STORE_ITEM_BLOCK = 1, /* waveform or event block */
    STORE_ITEM_STATUS,    /* status report */
    STORE_ITEM_SESSION_OPEN,
    STORE_ITEM_SESSION_CLOSE,
    STORE_ITEM_COMMAND_UPDATE, /* command state change, same rules as store_command_update */
    STORE_ITEM_PQ_EVENT,       /* voltage event from the analysis */
    STORE_ITEM_MEASUREMENT,    /* aggregated measurement from the analysis */
    STORE_ITEM_COMMAND_CREATE, /* new queued command, as store_command_create_limited */
    STORE_ITEM_COMMAND_EXPIRE, /* as store_command_expire */
    STORE_ITEM_ACCOUNT,        /* it->acct: as store_account_apply, result its return value */
    STORE_ITEM_ANA_REBUILD,    /* it->rebuild: as store_rebuild_apply (backlog.c, see there) */
    STORE_ITEM_RETENTION       /* internal: a retention pass (store_retention_submit only) */
} store_item_kind_t;

typedef struct store_item {
    struct store_item *next; /* queue link; owned by whoever holds the item */
    int kind;                /* store_item_kind_t */
    char terminal_id[STORE_ID_MAX + 1];
    uint64_t cookie; /* caller's value, returned untouched (e.g. the session id) */
    int result;      /* set by the writer: 0 stored, 1 duplicate ignored, <0 error */

    /* STORE_ITEM_BLOCK */
    uint64_t seq;
    int is_event;
    int64_t t0_ns;
    uint32_t sample_rate;
    uint32_t channel_mask;
    uint8_t nchannels, sample_fmt, time_quality;
    uint32_t nsamples;
    uint8_t *data; /* interleaved little-endian samples, malloc'ed, owned by the item */
    size_t data_len;
    /* The block as received encoded (GSTP codec 1 or 2: its segments concatenated, wcodec.h),
     * stored as it came; malloc'ed, owned by the item. enc NULL: the writer encodes data itself
     * (codec 2, wcodec_encode_block_as) and keeps it raw when encoding fails or is not smaller.
     * data stays the raw samples either way (analysis and summaries use them). The writer never
     * changes data, data_len, enc or enc_len. codec: 0 (enc NULL), 1 or 2. */
    uint8_t *enc;
    size_t enc_len;
    int codec;
    uint32_t nominal_hz; /* the terminal's nominal frequency: the encoder's period hint; 0 none */
    int stored_codec;    /* set by the writer: what `data` holds at rest (0 raw, 1 or 2 wcodec) */
    int stored_raw_busy; /* set by the writer: left raw, not encoded, because it was behind */
    int64_t trigger_ns;  /* events */
    int trigger, pretrigger, value_permille, trigger_channel;
    /* The session's HELLO channels (all of them, not only the block's), by index. Stored once
     * per change of layout; it applies to the terminal's later blocks until the next change.
     * nlayout 0 = not known: nothing recorded (the block is read under the last one). */
    int nlayout;
    store_chan_t layout[STORE_MAX_CHANNELS];

    /* STORE_ITEM_STATUS (GSTP status fields; -32768 / 65535 mean not available and are stored
     * as NULL). time_quality above also carries the status time quality. */
    int64_t time_ns;
    int rsrp_dbm, rssi_dbm, csq, supply_mv, temp_c10, gps_fix, gps_sats, buffer_permille;
    int64_t uptime_s, buffered_blocks;

    /* STORE_ITEM_SESSION_OPEN / _CLOSE: cookie is the session id, unique in the database across
     * server restarts (an OPEN with a known id gets result 1; a CLOSE without a stored OPEN gets
     * GS_ENOTFOUND). */
    char remote[64];
    int64_t when_ns;
    char reason[64];
    int64_t frames, bytes, blocks;

    /* STORE_ITEM_COMMAND_UPDATE: the result TLV travels in data/data_len. result is set to
     * GS_ESTATE when the command was already final or past cmd_state (or no longer exists). */
    int64_t cmd_id;
    int cmd_state, cmd_result_status;

    /* STORE_ITEM_PQ_EVENT: kind name ("dip", "swell", "interruption") in `reason`; the names
     * of the channels that crossed as a comma list ("Ua,Ub", no NUL needed) in data/data_len and
     * the worst channel's name in ev_worst_name (data NULL: the names are stored as NULL, as for
     * an event from before they were kept). A repeated (terminal, kind, start) gets result 1.
     * The new row's id is put in ev_id (0 when it was already stored). */
    int64_t ev_start_ns, ev_duration_ns, ev_id;
    double ev_extreme, ev_extreme_pct, ev_reference;
    uint32_t ev_channels, ev_flags;
    int ev_worst_channel;
    char ev_worst_name[STORE_CH_NAME_MAX];

    /* STORE_ITEM_MEASUREMENT: interval name ("3s", "10s", "10min", "2h") in `reason`, the values
     * as a JSON object in data/data_len. For a repeated (terminal, interval, end) the value with
     * the larger m_count is kept; result 1 when the stored one was kept. */
    int64_t m_start_ns, m_end_ns;
    uint32_t m_flags, m_count;

    /* STORE_ITEM_COMMAND_CREATE: terminal_id, cmd_verb, args in data/data_len, created at
     * when_ns (0 = when written), expiring cmd_ttl_ns later, refused when the terminal has
     * cmd_max_pending (> 0) pending commands. Result 0 with the new id in cmd_id, GS_ENOTFOUND
     * (no such terminal), GS_ELIMIT (too many pending), GS_ERANGE (args too long) or GS_ETIMEOUT
     * when it was cancelled with store_item_cancel before the writer took it.
     * STORE_ITEM_COMMAND_EXPIRE: expires every non-final command with expiry <= when_ns; the
     * number expired in cmd_count. */
    int cmd_verb, cmd_max_pending, cmd_count;
    int64_t cmd_ttl_ns;
    int cmd_claim; /* under the store's lock: 0 waiting, 1 taken by the writer, 2 cancelled */

    /* STORE_ITEM_ACCOUNT: the change, malloc'ed, owned (and wiped) by the item. */
    store_acct_t *acct;

    /* Any kind: when set, the writer hands the item, once its batch has committed or failed,
     * to notify(it, notify_ud) on the writer thread instead of the done callback; ownership
     * passes with it. notify must only queue and wake a loop (e.g. xcall or uv_async_send). */
    void (*notify)(struct store_item *it, void *notify_ud);
    void *notify_ud;

    /* STORE_ITEM_BLOCK: STORE_ANA_* bits for the analysis backlog (table ana_pending), which
     * the writer updates in the block's own transaction (backlog.c): SKIPPED, the block was
     * not handed to the live analysis (skipped under overload, analysis off, an EVENT
     * capture); RESTART, the live analysis of the terminal starts anew at this block (server
     * start, or after its stream was idle), so the aggregates in progress before it were lost
     * or cut: its unit and the unit of the terminal's previous block are to be rebuilt.
     * STORE_ITEM_ANA_REBUILD: the rebuild, borrowed (the submitter frees it after the item
     * came back through notify); its counters are filled. */
    int ana_pending;
    struct store_rebuild *rebuild;
} store_item_t;

/* Allocates a zeroed item of the given kind (aborts on OOM). */
store_item_t *store_item_new(int kind);
/* Frees an item and its data. NULL is a no-op. */
void store_item_free(store_item_t *it);

/* Called on the writer thread (not on any loop) after each batch commits (or fails: items then
 * carry result < 0), with the batch as a linked list in submission order, whichever thread
 * submitted the items. Ownership of the items passes to the callee, which must free them with
 * store_item_free (typically after handing them to its loop thread with uv_async_send, as the
 * gateway does: its completions run on the loop it was started on). */
typedef void (*store_done_cb)(store_item_t *batch, void *ud);

/* Starts the writer thread with its own connection. cb may be NULL (the store then frees the
 * items itself); cb must not call store_writer_stop or store_close. Returns 0, GS_ESTATE if
 * already running or the store is a reader, or a negative code. Call from the owner thread. */
int store_writer_start(store_t *s, store_done_cb cb, void *ud);

/* Queues an item for the writer; any thread (the store's mutex, a list append); ownership passes
 * to the store. Items are written in submission order (across threads: the order they took the
 * mutex). Returns GS_ESTATE if the writer is not running (the item is freed). */
int store_submit(store_t *s, store_item_t *it);

/* Cancels a submitted STORE_ITEM_COMMAND_CREATE that the writer has not yet taken into a
 * transaction holding the write lock: returns 0 and the writer will skip it (result
 * GS_ETIMEOUT, nothing written), or GS_ESTATE if the writer has taken it (it will be written, or
 * fail, and reported as usual). The caller must still own a reference to the item, i.e. not
 * have freed it from the done callback. Thread-safe. */
int store_item_cancel(store_t *s, store_item_t *it);

/* Items queued and not yet committed, and their data bytes (for backpressure). Thread-safe. */
void store_queue_depth(store_t *s, size_t *items, size_t *bytes);

/* Writer counters, thread-safe. */
typedef struct {
    uint64_t batches;          /* transactions committed */
    uint64_t items;            /* items processed (committed or failed) */
    uint64_t blocks_stored;    /* BLOCK items with result 0 */
    uint64_t blocks_duplicate; /* BLOCK items with result 1 */
    uint64_t errors;           /* items with result < 0 */
    uint64_t retries;          /* batch attempts rolled back (locked or failing database) */
    /* Blocks at rest (migration 9): committed compressed (received so, or encoded by the
     * writer), and received raw but stored raw because the writer's queue held more than
     * STORE_ENCODE_MAX_BACKLOG bytes (encoding would have made it fall further behind). */
    uint64_t blocks_compressed, blocks_raw_busy;
} store_writer_stats_t;

/* Above this many queued bytes the writer stores raw-received blocks raw instead of encoding
 * them (store_writer_stats_t.blocks_raw_busy). */
#define STORE_ENCODE_MAX_BACKLOG (8u * 1024 * 1024)
void store_writer_stats(store_t *s, store_writer_stats_t *out);

/* Drains the queue, commits, calls the last callbacks and joins the thread. Submissions made
 * after this starts are refused with GS_ESTATE. Idempotent; call from the owner thread. */
void store_writer_stop(store_t *s);

/* ---- Waveform reads (blocks_read.c) ---- */

/* One stored block as store_blocks_read hands it to its callback. */
typedef struct {
    uint64_t seq;
    int is_event;               /* 0 WAVEFORM (continuous recording), 1 EVENT capture */
    int64_t t0_ns;              /* UTC time of the first sample set */
    uint32_t sample_rate;       /* sample sets per second */
    uint32_t channel_mask;      /* bit i: channel index i present */
    int nchannels;              /* channels per sample set, as stored */
    int sample_fmt;             /* 1 int16, 2 int32 (GSTP 7.4) */
    int time_quality;           /* GSTP time quality (the worst of the block's chunks) */
    uint32_t nsamples;          /* sample sets */
    const uint8_t *data;        /* interleaved little-endian samples, borrowed for the callback */
    size_t data_len;            /* bytes at data */
    int nlayout;                /* channels in layout; 0: no layout recorded for the terminal
                                   at or before this seq (stored before schema migration 7) */
    const store_chan_t *layout; /* the terminal's HELLO channels when the block was stored,
                                   borrowed for the callback */
} store_block_t;

/* Block kinds for store_blocks_read (or-ed). */
#define STORE_BLOCKS_WAVEFORM 1
#define STORE_BLOCKS_EVENT    2

/* Calls cb, in seq order, for every stored block of terminal_id of the given kinds whose sample
 * sets [t0_ns, t0_ns + nsamples / sample_rate) overlap [from_ns, to_ns). Blocks are found by
 * seq through the (terminal_id, seq) index: a binary search (at most ~64 index probes) finds
 * the last block starting at or before from_ns (among WAVEFORM blocks only when they are asked
 * for: EVENT captures share the seq space but start earlier, with their pre-trigger samples),
 * then blocks are read in seq order up to the first one of the kinds asked (a WAVEFORM one when
 * both are) starting at or after to_ns. This relies on a terminal's block times growing with
 * seq, as the terminal records them (GSTP 7.1); a clock step backwards shows as blocks out of
 * time order, which the caller sees and can treat as a discontinuity. Blocks stored compressed
 * (codec 1, migration 9) are decoded: b->data is always the raw interleaved samples. A stored
 * block that does not decode (a corrupt row) is logged (rate-limited) and left out, as a gap;
 * the read goes on. cb returns non-zero to stop; that value is returned. Returns 0, GS_EINVAL (from_ns >= to_ns, kinds 0) or GS_EDB.
 * Synchronous connection: the thread that owns s. */
int store_blocks_read(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                      int kinds, int (*cb)(void *ud, const store_block_t *b), void *ud);

/* The stored PQ event with that id (pq_events.id). GS_ENOTFOUND if absent, GS_EDB. */
int store_pq_event_get(store_t *s, int64_t id, store_pq_event_t *out);

/* Writes SQLite's EXPLAIN QUERY PLAN of every statement store_blocks_read runs into out (one
 * "statement: plan" line each, NUL-terminated, truncated to cap), so that tests and operators
 * can see that no read scans a terminal's blocks. Returns 0 or GS_EDB; GS_ENOTSUP on
 * PostgreSQL (so are the other *_plan functions below: their plans are SQLite's). */
int store_blocks_plan(store_t *s, char *out, size_t cap);
/* ---- REST: terminal changes, cancel, acknowledge, histories (admin_write.c, rest_read.c) ----
 * The changes themselves are store_acct_t ops (STORE_ACCT_TERMINAL_*, COMMAND_CANCEL,
 * EVENT_ACK) written by the writer with their audit row; below are what a caller needs to build
 * them and the reads of the REST lists. */

/* Seals a terminal secret under the database's current master key (reloading the key files
 * first when another process rotated it) into sealed, and names that key in key_id, for a
 * STORE_ACCT_TERMINAL_ADD / _SECRET change. The writer thread has no key of its own, so sealing
 * happens here, on the thread that owns s (a store opened with its key: not a reader_only
 * store). Returns 0, GS_ECONFIG (the database's key is in no key file) or GS_EDB. */
int store_secret_seal(store_t *s, const char *terminal_id, const uint8_t secret[STORE_SECRET_LEN],
                      uint8_t sealed[STORE_SEALED_BYTES], uint8_t key_id[STORE_KEY_ID_LEN]);

/* Terminals ordered by id with id > after (NULL or "": from the first) whose id or name contains
 * search (ASCII case-insensitive; NULL or "": any). cb as for store_terminal_list (secret all
 * zeros); its non-zero return stops the walk and is returned. */
int store_terminal_query(store_t *s, const char *after, const char *search,
                         int (*cb)(void *ud, const store_terminal_t *t), void *ud);

/* Commands newest first (by id) with id < before_id (0: no bound), of terminal_id (NULL: all)
 * whose state bit (1 << state) is in state_mask (0: any), created in [from_ns, to_ns), at most
 * limit (1..10000). */
int store_command_query(store_t *s, const char *terminal_id, unsigned state_mask, int64_t from_ns,
                        int64_t to_ns, int64_t before_id, int limit,
                        int (*cb)(void *ud, const store_command_t *c), void *ud);

/* A value the terminal reported as not available (stored NULL). */
#define STORE_NA INT64_MIN

/* One stored STATUS report (table status); unavailable fields are STORE_NA. */
typedef struct {
    int64_t id;
    int64_t time_ns, received_ns; /* the terminal's time of the report, our receipt time */
    int64_t rsrp_dbm, rssi_dbm, csq, supply_mv, temp_c10, uptime_s, gps_fix, gps_sats,
        time_quality, buffer_permille, buffered_blocks;
} store_status_t;

/* STATUS reports of terminal_id with time_ns in [from_ns, to_ns) and id < before_id (0: no
 * bound), newest first (by id), at most limit (1..10000). */
int store_status_list(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                      int64_t before_id, int limit, int (*cb)(void *ud, const store_status_t *st),
                      void *ud);

/* One terminal session (table sessions). */
typedef struct {
    int64_t id;         /* row id (paging) */
    int64_t session_id; /* the gateway's session id */
    char remote[64];    /* peer address:port */
    int64_t opened_ns, closed_ns; /* closed_ns 0: still open (or the server stopped hard) */
    char reason[64];    /* close reason, "" while open */
    int64_t frames, bytes, blocks; /* STORE_NA while open */
} store_session_t;

/* Sessions of terminal_id opened in [from_ns, to_ns) with id < before_id (0: no bound), newest
 * first, at most limit (1..10000). */
int store_session_list(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                       int64_t before_id, int limit,
                       int (*cb)(void *ud, const store_session_t *se), void *ud);

/* An event with its acknowledgement (schema migration 8). */
typedef struct {
    store_pq_event_t e;
    char acked_by[STORE_USER_MAX + 1]; /* "" = not acknowledged */
    int64_t acked_ns;                  /* 0 = not acknowledged */
} store_pq_event_ack_t;

/* Which events store_pq_event_query returns. */
typedef struct {
    int64_t id;              /* > 0: only this event (the rest is ignored) */
    const char *terminal_id; /* NULL: all */
    const char *kind;        /* "dip", "swell", "interruption"; NULL: all */
    int64_t from_ns, to_ns;  /* start in [from_ns, to_ns) */
    int acked;               /* -1 any, 0 not acknowledged, 1 acknowledged */
    int64_t before_id;       /* > 0: only events after this one in the order (older start, or
                                the same start and a lower id) */
    int limit;               /* 1..10000 */
} store_pq_event_filter_t;

/* Events matching f, newest start first (then id descending). GS_ENOTFOUND when f->before_id
 * names no event. */
int store_pq_event_query(store_t *s, const store_pq_event_filter_t *f,
                         int (*cb)(void *ud, const store_pq_event_ack_t *e), void *ud);

/* ---- Backup and restore (backup.c; docs/operations.md "Backup and restore") ---- */

/* Takes the lock that marks data_dir as used by a running server (flock on
 * data_dir/server.lock, released when fd is closed or the process ends, whatever the way).
 * Returns 0 with the fd in *fd_out, GS_EBUSY (another process holds it: the reason names the
 * directory) or -errno, with the reason in err. */
int store_dir_lock(const char *data_dir, int *fd_out, char *err, size_t errlen);
/* Releases a lock taken by store_dir_lock; fd < 0 is a no-op. */
void store_dir_unlock(int fd);

/* What a backup file holds. */
typedef struct {
    int schema_version; /* of the backup */
    int64_t terminals;  /* provisioned terminals */
    int64_t newest_ns;  /* receive time of the newest stored block (0: none) */
    int64_t bytes;      /* size of the database */
} store_backup_info_t;

/* Writes a consistent copy of s's database to dest (a new file, 0600; written to dest.part,
 * synced, then renamed, so dest exists only when complete) while the server keeps running: one
 * read snapshot, which in WAL mode does not stop the writer. The master key is NOT in it (by
 * design: keep the key file's copy elsewhere). Fills info when not NULL. Returns 0,
 * GS_EEXISTS (dest exists), -ENOSPC, -errno or GS_EDB, with the reason in err. Thread that
 * owns s (a reader_only store works). */
int store_backup(store_t *s, const char *dest, store_backup_info_t *info, char *err,
                 size_t errlen);

/* Checks that path is a complete gridsense database this program can open (SQLite quick_check,
 * schema not newer than ours) and describes it. Returns 0, GS_ECONFIG (not ours, damaged, too
 * new), GS_EDB or -errno with the reason in err. */
int store_backup_check(const char *path, store_backup_info_t *info, char *err, size_t errlen);

typedef struct {
    store_backup_info_t backup; /* the restored file, as store_backup_check saw it */
    int schema_version;         /* after this program's migrations */
    int64_t next_command_id;    /* the id the next command will get (see backup.c) */
    char replaced[1200];        /* where the replaced database was moved ("" if none) */
} store_restore_info_t;

/* Replaces data_dir's database by the backup at src: checks it (store_backup_check), moves the
 * current database and its -wal/-shm aside to gridsense.db.replaced-<UTC time>, copies the
 * backup in (0600, synced), opens it as the server would (master key checked: opts as for
 * store_open; migrations applied) and moves the command id sequence past every id a terminal
 * may have seen (backup.c). The caller must hold the data dir's lock (store_dir_lock): no
 * server may run on it. Returns 0 or a negative code with the reason in err. */
int store_restore(const char *data_dir, const char *src, const store_opts_t *opts,
                  store_restore_info_t *info, char *err, size_t errlen);

/* ---- Analysis backlog and rebuilds (backlog.c) ----
 * Which stored blocks were never analysed, and the atomic replacement of a terminal's events and
 * aggregates by those of a new analysis of its stored blocks (src/ana/backfill.c, `gridsense
 * reanalyze`). docs/operations.md "Backfill and re-analysis".
 *
 * The backlog is kept per terminal and analysis unit: the UTC-aligned 2-h interval (the longest
 * aggregate, IEC 61000-4-30 4.5), because an aggregate is only right when every block of its
 * interval went into it, so a unit is re-analysed as a whole. A block item with ana_pending set
 * adds itself to its unit's row (table ana_pending, schema migration "slot 12") in the block's
 * own transaction: after a crash the backlog is exactly the committed blocks that were not
 * analysed. Blocks stored before that migration are taken as analysed (nothing is known of
 * them): `gridsense reanalyze` rebuilds any range on request. */

#define STORE_ANA_UNIT_NS (2LL * 3600 * 1000000000LL)

/* store_item_t.ana_pending bits (a block item) */
#define STORE_ANA_SKIPPED 1
#define STORE_ANA_RESTART 2

/* One unit with unanalysed blocks. */
typedef struct {
    char terminal_id[STORE_ID_MAX + 1];
    int64_t unit_start_ns; /* the 2-h tick; the unit is [unit_start_ns, + STORE_ANA_UNIT_NS) */
    uint64_t first_seq, last_seq; /* lowest and highest unanalysed seq in it */
    int64_t blocks, captures;     /* unanalysed WAVEFORM blocks, EVENT captures */
    int64_t signal_ns;            /* their signal time (sum of block durations) */
    int64_t restarts;             /* live-analysis restarts marked in it (STORE_ANA_RESTART) */
} store_ana_pending_t;

/* Units with unanalysed blocks, oldest unit first (then terminal id), at most limit (1..10000).
 * cb returning non-zero stops the walk (its value is returned). Any connection (a reader). */
int store_ana_pending_list(store_t *s, int limit, int (*cb)(void *ud, const store_ana_pending_t *p),
                           void *ud);

/* Totals of the backlog: units, unanalysed blocks + captures, their signal seconds. */
int store_ana_backlog(store_t *s, int64_t *units, int64_t *blocks, double *seconds);

/* The receipt time (our clock, UTC ns) of the terminal's highest stored block and its seq
 * (0, 0 when it has none). */
int store_last_block(store_t *s, const char *terminal_id, uint64_t *seq, int64_t *received_ns);

/* One aggregate of a rebuild (the measurements row it becomes). */
typedef struct {
    char interval[8]; /* "3s", "10s", "10min", "2h" */
    int64_t t_start_ns, t_end_ns;
    uint32_t flags, count;
    char *data; /* JSON object, malloc'ed, owned */
} store_rb_meas_t;

/* One voltage event of a rebuild (the pq_events row it becomes). */
typedef struct {
    char kind[16];
    int64_t start_ns, duration_ns;
    double extreme, extreme_pct, reference;
    uint32_t channels, flags;
    int worst_channel;
    char *channel_names; /* "Ua,Ub", malloc'ed, owned */
    char worst_name[STORE_CH_NAME_MAX];
} store_rb_event_t;

/* A rebuild of terminal_id over [from_ns, to_ns) (whole analysis units). Applied in ONE
 * transaction (readers see the old rows or the new ones, never a mix):
 *  - events starting in the covered span [cover_from_ns, cover_to_ns] are replaced by `ev`: a
 *    new event of the same kind that overlaps an old one (same start first) takes over the old
 *    row (its id and acknowledgement stay; values are rewritten), the others are inserted, old
 *    ones no new event overlaps are deleted;
 *  - aggregates (3s, 10s, 10min, 2h; not the `phasor` rows) ending in (from_ns, to_ns] whose
 *    whole interval lies in the covered span are deleted, then `meas` are inserted; a row that
 *    still exists for the same (interval, end) (one reaching outside the covered span, e.g. a
 *    2-h value whose first blocks are no longer stored) is replaced only by a larger count;
 *  - backlog units starting in [from_ns, to_ns) whose last_seq <= max_seq are removed (the
 *    rebuild read every block up to max_seq; one stored since stays in the backlog).
 * covered == 0 (no block could be analysed): nothing is replaced, only the backlog is cleared. */
typedef struct store_rebuild {
    char terminal_id[STORE_ID_MAX + 1];
    int64_t from_ns, to_ns;
    uint64_t max_seq;
    int covered;
    int64_t cover_from_ns, cover_to_ns;
    store_rb_meas_t *meas;
    size_t nmeas, meas_cap;
    store_rb_event_t *ev;
    size_t nev, ev_cap;
    /* filled by the apply */
    int64_t events_before, events_after; /* events starting in [from_ns, to_ns) */
    int64_t events_updated, events_inserted, events_deleted;
    int64_t meas_deleted, meas_written, pending_done;
} store_rebuild_t;

/* Frees what the rebuild owns (not rb itself) and zeroes it. */
void store_rebuild_clear(store_rebuild_t *rb);

/* Applies rb on the synchronous connection in its own BEGIN IMMEDIATE transaction (waiting up
 * to the busy timeout for the server's writer), for `gridsense reanalyze`. The server submits a
 * STORE_ITEM_ANA_REBUILD instead (the same code, in a writer batch). Returns 0, GS_ESTATE on a
 * reader or sync_read_only store, GS_EBUSY (locked), GS_EDB. */
int store_rebuild_apply(store_t *s, store_rebuild_t *rb);
/* ---- Retention, disk full, database statistics (retention.c, dbstats.c; issue 10) ----
 * Old data leaves the database in small steps through the writer, each in its own short
 * transaction queued behind the ingest (docs/operations.md "Retention"). */

/* What to keep. A *_days of 0 keeps that data forever. */
typedef struct {
    int raw_days;       /* waveform blocks (blocks.kind 0) stored longer than this are deleted,
                           except those inside an event window (below) */
    int event_days;     /* EVENT/capture blocks (kind 1) and the waveform blocks within
                           [start - event_pre_s, end + event_post_s] of a voltage event of the
                           same terminal are kept this long; 0 = forever. 0 or >= raw_days;
                           raw_days 0 needs event_days 0 (everything is kept) */
    int event_pre_s;    /* seconds of waveform kept before an event's start */
    int event_post_s;   /* ... and after its end */
    int status_days;     /* STATUS reports (status.received_ns) */
    int events_days;     /* voltage events (pq_events.start_ns); their window's protection goes
                            with them */
    int aggregates_days; /* aggregated measurements (measurements.t_end_ns) */
    int sessions_days;   /* terminal sessions (sessions.opened_ns) */
    int audit_days;      /* audit records (audit.time_ns) */
    int pyramid_fine_days; /* the 1 s and 10 s levels of the waveform summary pyramid
                              (wave_pyramid.bucket_ns), as store_retention_fine_days says. The
                              coarse levels (1 min .. 1 day) follow aggregates_days, and so does
                              measurement_trend (a trigger deletes its row with the measurement) */
    int batch_rows;      /* rows deleted per transaction at most; <= 0: 500 */
    int64_t batch_bytes; /* block bytes deleted per transaction at most; <= 0: 8 MiB */
    int64_t now_ns;      /* the time ages are measured from; 0 = the wall clock (tests set it) */
} store_retention_t;

/* Tables of a retention pass, in the order a pass visits them. */
enum {
    STORE_RET_BLOCKS_RAW = 0, /* blocks past raw_days, outside event windows */
    STORE_RET_BLOCKS_KEPT,    /* blocks past event_days (event windows and captures) */
    STORE_RET_STATUS,
    STORE_RET_EVENTS,
    STORE_RET_AGGREGATES,
    STORE_RET_SESSIONS,
    STORE_RET_AUDIT,
    STORE_RET_PYRAMID_FINE,   /* wave_pyramid levels 0, 1 past pyramid_fine_days */
    STORE_RET_PYRAMID_COARSE, /* wave_pyramid levels 2..5 past aggregates_days */
    STORE_RET_TREND,          /* measurement_trend rows, deleted with their measurements
                                 (counted on SQLite only) */
    STORE_RET_NTABLES
};

/* The name of a STORE_RET_* table ("blocks_raw", "blocks_kept", "status", "events",
 * "aggregates", "sessions", "audit", "pyramid_fine", "pyramid_coarse", "trend"), or "?". */
const char *store_retention_table_name(int t);

/* The days the pyramid's 1 s and 10 s levels are kept under p (0 = forever): pyramid_fine_days
 * raised to raw_days when shorter (forever when raw_days is 0), then capped by aggregates_days
 * when that is set (no level outlives the coarser ones). */
int store_retention_fine_days(const store_retention_t *p);

/* Checks a policy: 0, or GS_EINVAL with the reason in err (negative values, event_days below
 * raw_days, event_days without raw_days, pre/post out of 0..3600). */
int store_retention_check(const store_retention_t *p, char *err, size_t errlen);

/* What one step or pass deleted. */
typedef struct {
    int64_t rows[STORE_RET_NTABLES]; /* rows deleted per table */
    int64_t block_bytes;             /* sample bytes of the deleted blocks (length(data)) */
    int64_t kept_rows;               /* blocks examined and kept (event windows, captures) */
    int more;                        /* 1: a step stopped at its bound and more is due */
} store_retention_result_t;

/* One retention step on the synchronous connection (owner thread; not on a sync_read_only or
 * reader store): deletes at most batch_rows rows / batch_bytes block bytes of the first table
 * (in STORE_RET_* order) with anything due, in one transaction, and adds what it did to *out
 * (zero it first). out->more is 1 when something may still be due. Returns 0, GS_EINVAL (bad
 * policy) or GS_EDB (rolled back). The server does not call this: its passes run in the writer
 * (store_retention_submit); tests and tools do. */
int store_retention_step(store_t *s, const store_retention_t *p, store_retention_result_t *out);

/* Starts a retention pass in the writer: steps as above, each its own transaction, each queued
 * behind whatever was submitted meanwhile (so ingest waits for at most one step), until nothing
 * is due; then one log line with what was deleted and how long it took. Returns 0, GS_EBUSY
 * (a pass is already running), GS_EINVAL (bad policy) or GS_ESTATE (writer not running). Any
 * thread. A step that fails (a locked or full database) ends the pass; the next pass resumes. */
int store_retention_submit(store_t *s, const store_retention_t *p);

/* Retention and disk-full counters (thread-safe). */
typedef struct {
    uint64_t passes;                  /* passes completed */
    uint64_t steps;                   /* transactions committed by retention */
    uint64_t failures;                /* passes ended by an error */
    uint64_t rows[STORE_RET_NTABLES]; /* rows deleted, per table, since the start */
    uint64_t block_bytes;             /* block sample bytes deleted since the start */
    int running;                      /* a pass is in progress */
    int64_t last_end_ns;              /* wall clock at the end of the last pass (0: none yet) */
    int64_t last_duration_ns;         /* how long the last pass took */
    /* disk full (writer): */
    int disk_full;           /* 1 while the database cannot grow (last attempt failed with
                                SQLITE_FULL, ENOSPC, EFBIG or EDQUOT) */
    int64_t full_since_ns;   /* wall clock when it started (0 when not full) */
    uint64_t full_episodes;  /* times the store became full */
    uint64_t full_failures;  /* batch attempts that failed for a full disk */
} store_retention_stats_t;
void store_retention_stats(store_t *s, store_retention_stats_t *out);

/* 1 while the writer reports the disk full (cheap; any thread). */
int store_disk_full(store_t *s);

/* Database statistics (dbstats.c): `gridsense db stats` and GET /api/v1/admin/db. By default
 * every figure costs a bounded number of index probes whatever the database's size (first and
 * last rows by rowid, a sample of the newest blocks, a binary search over rowids for the last
 * hour, a skip-scan of the terminals); exact per-table sizes come from SQLite's dbstat virtual
 * table, which reads every page once, only when asked (exact != 0). */
typedef struct {
    char name[48];
    int64_t bytes;      /* pages x page size, its indexes included; -1: not measured (light) */
    int64_t rows;       /* exact row count; -1: not counted (a big table in light mode) */
    int64_t rows_upper; /* light mode, big tables: last rowid - first rowid + 1 (rows are
                           handed out in order and retention deletes the oldest, so this is
                           exact unless blocks were kept behind for events) */
    int64_t oldest_ns, newest_ns; /* the date column of its first and last row (0: none) */
} store_table_stat_t;

typedef struct {
    char terminal_id[STORE_ID_MAX + 1];
    int64_t seq_first, seq_last;  /* its stored blocks span these seqs */
    int64_t block_bytes;          /* estimate: span x mean stored size of its newest blocks */
    int64_t oldest_ns, newest_ns; /* t0_ns of its first and last stored block */
} store_terminal_stat_t;

#define STORE_STATS_TABLES 48
typedef struct {
    int64_t file_bytes, wal_bytes;                 /* gridsense.db and its -wal */
    int64_t page_size, page_count, freelist_pages; /* free pages are reused before growing */
    int64_t fs_free_bytes, fs_total_bytes;         /* statvfs of the data dir (for us) */
    int ntables;
    store_table_stat_t tables[STORE_STATS_TABLES];
    int dbstat;            /* 1: bytes/rows per table measured by dbstat (exact mode) */
    int64_t blocks_total;  /* blocks rowid span (see rows_upper) */
    /* compression, from the newest blocks: stored bytes (length(data), whatever the encoding)
     * against the raw size nsamples x nchannels x sample width */
    int64_t sample_blocks, sample_stored, sample_raw;
    /* ingest over the last window_s seconds (by received time) */
    int64_t window_s, window_blocks, window_block_bytes, window_status;
    double projected_bytes_per_day; /* window block bytes per day x the file's bytes per stored
                                       sample byte now (capped at 4) */
} store_db_stats_t;

/* Fills *out (synchronous connection; a reader store works). Returns 0 or GS_EDB. */
int store_db_stats(store_t *s, int exact, store_db_stats_t *out);

/* EXPLAIN QUERY PLAN of every statement of store_retention_step (store_retention_plan) and of
 * the light store_db_stats / store_db_terminal_stats (store_db_stats_plan), one
 * "<statement start> | <plan step>" line each, into out (NUL-terminated, truncated to cap): the
 * tests check that none scans a table. 0, GS_EDB, or GS_ENOTSUP on PostgreSQL. */
int store_retention_plan(store_t *s, char *out, size_t cap);
int store_db_stats_plan(store_t *s, char *out, size_t cap);

/* Calls cb for every terminal id with stored blocks (also removed terminals), in id order; a
 * non-zero return stops and is returned. A few index probes per terminal. */
int store_db_terminal_stats(store_t *s, int (*cb)(void *ud, const store_terminal_stat_t *t),
                            void *ud);
/* ---- Waveform summary pyramid (pyramid.c; issue 10, migration slot 10) ----
 * Per terminal and channel, the min, max (raw counts), sum of squares and count of the samples of
 * its WAVEFORM blocks in buckets of fixed width at STORE_PYR_LEVELS levels: 1 s, 10 s, 1 min,
 * 10 min, 1 h and 1 day (level 0..5). A bucket starts at a multiple of its width in UTC ns since
 * the epoch; sample set i of a block is at t0_ns + i·1e9/sample_rate (as the waveform reads time
 * it) and counts in the bucket holding that time, so a block crossing a boundary is split.
 * Written by the writer in the transaction that inserts each new WAVEFORM block (never for a
 * duplicate, never for an EVENT block or one whose sizes disagree): the pyramid always describes
 * exactly the stored blocks, across crashes and retries. Rows of past buckets are final; the
 * current bucket of each level is rewritten at each batch. Conversion to volts and amps uses the
 * channel layout in force at the bucket's last block (a bucket recorded under two layouts, a
 * reconfiguration inside it, is converted with the later one). */

#define STORE_PYR_LEVELS 6

/* Width of a level's buckets in ns (0 for a level out of range). */
int64_t store_pyramid_width_ns(int level);

typedef struct {
    int32_t min, max; /* raw counts */
    double sumsq;     /* sum of count² (RMS = sqrt(sumsq / n) × scale) */
    uint32_t n;       /* samples */
} store_pyr_stat_t;

typedef struct {
    int level;
    int64_t width_ns, bucket_ns; /* [bucket_ns, bucket_ns + width_ns) */
    int64_t t_first_ns;          /* first sample set in the bucket */
    int64_t t_end_ns;            /* last sample set + one period (exclusive end) */
    uint64_t seq_first, seq_last;
    uint32_t sample_rate;  /* of the last block */
    int time_quality;      /* the worst (GSTP value; 0 unknown counts as worst) */
    uint32_t channel_mask; /* channels with statistics (bit = channel index < 16) */
    uint32_t n;            /* sample sets */
    store_pyr_stat_t ch[STORE_MAX_CHANNELS]; /* by channel index, where channel_mask has it */
    int nlayout;                /* reads: layout in force at seq_last (0: none recorded) */
    const store_chan_t *layout; /* borrowed for the callback */
} store_pyr_row_t;

/* Folds p into acc (min of mins, max of maxes, sums, union of channels, earliest first sample,
 * latest end, worst time quality, the later block's rate). acc->level / bucket_ns are kept. */
void store_pyramid_merge(store_pyr_row_t *acc, const store_pyr_row_t *p);

/* Calls cb in time order for every row of terminal_id at `level` whose bucket overlaps
 * [from_ns, to_ns) (bucket_ns from from_ns rounded down to the width, up to to_ns), through the
 * primary key: a range seek, never a scan. Malformed rows are skipped (a gap). cb returns
 * non-zero to stop; that value is returned. 0, GS_EINVAL or GS_EDB. Synchronous connection. */
int store_pyramid_read(store_t *s, const char *terminal_id, int level, int64_t from_ns,
                       int64_t to_ns, int (*cb)(void *ud, const store_pyr_row_t *r), void *ud);

/* The first sample time (t_first_ns of the oldest row) held at every level for terminal_id:
 * first[level], INT64_MAX where the level holds nothing. One primary-key seek per level. All
 * levels are written from the same blocks, so they agree unless retention removed a level's old
 * rows (pyramid_fine_days): the waveform reader takes a coarser level where a finer one is gone.
 * 0 or GS_EDB. Synchronous connection. */
int store_pyramid_first(store_t *s, const char *terminal_id, int64_t first[STORE_PYR_LEVELS]);

/* Stores (replacing) n rows as given, on the synchronous connection: for generators of
 * synthetic history (bench/gen_history.c) and imports; nothing checks that they agree with
 * stored blocks. GS_EINVAL (nothing written) when a row is not well formed (level, alignment,
 * n 0, channels >= 16, times), GS_EDB. Wrap in store_transaction to make many calls one commit. */
int store_pyramid_put(store_t *s, const char *terminal_id, const store_pyr_row_t *rows, size_t n);

/* Backfill: rebuilds every level of terminal_id's pyramid over [from_ns, to_ns), widened to whole
 * days, from its stored WAVEFORM blocks (store_blocks_read), in one transaction on the
 * synchronous connection (the CLI's, not the server's read-only one): rows of the range are
 * deleted, then recomputed. For databases that held blocks before the pyramid existed; do not
 * run it over the day a running server is writing (its writer keeps that day's current buckets
 * in memory and would overwrite them with its own view, which is the same unless blocks were
 * stored before the upgrade in that day). *blocks (may be NULL) gets the blocks folded. */
int store_pyramid_rebuild(store_t *s, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                          int64_t *blocks);

/* EXPLAIN QUERY PLAN of the pyramid's statements, as store_blocks_plan. */
int store_pyramid_plan(store_t *s, char *out, size_t cap);

/* ---- Trends (trend.c; issue 10, migration slot 10) ----
 * The scalar quantities of the 10min and 2h aggregates as columns of table measurement_trend,
 * kept by triggers on measurements (insert, the upsert's update, delete) in the same statement.
 * Quantities (API names): freq (the interval's mean), u0_pct, u2_pct, i0_pct, i2_pct, p, q, s_eff,
 * Ua.rms, Ub.rms, Uc.rms, Ia.rms, Ib.rms, Ic.rms, Ua.thd_pct, Ub.thd_pct, Uc.thd_pct. */

/* The quantity's number for the calls below, or GS_EINVAL for an unknown name. */
int store_trend_quantity(const char *name);
/* Its API name; NULL when out of range (iterate from 0 to list them). */
const char *store_trend_quantity_name(int q);

/* cb(t_end_ns, value) for terminal_id's `interval` ("10min" or "2h") rows ending in
 * (from_ns, to_ns], oldest first, at most limit; value NAN when the aggregate has none (null in
 * its JSON). One range seek of the primary key. 0, GS_EINVAL, GS_EDB, or cb's non-zero. */
int store_trend_read(store_t *s, const char *terminal_id, const char *interval, int quantity,
                     int64_t from_ns, int64_t to_ns, int limit,
                     int (*cb)(void *ud, int64_t t_end_ns, double value), void *ud);

enum { STORE_TREND_MAX = 1, STORE_TREND_MIN, STORE_TREND_AVG };

typedef struct {
    char terminal_id[STORE_ID_MAX + 1];
    double value;     /* the statistic over the terminal's rows of the range */
    int64_t t_end_ns; /* max / min: end of the interval that holds it; avg: 0 */
    int64_t count;    /* rows with a value */
} store_rank_t;

/* Fleet ranking: for every terminal with trend rows (found by one index probe each), stat
 * (STORE_TREND_MAX / MIN / AVG) of the quantity over its `interval` rows ending in
 * (from_ns, to_ns] (one primary-key range per terminal); terminals without a value in the range
 * are left out. Sorted by value (desc != 0: largest first; ties by id), the first `limit` handed
 * to cb; *terminals (may be NULL) gets how many had a value. 0, GS_EINVAL, GS_EDB. */
int store_trend_rank(store_t *s, const char *interval, int quantity, int stat, int64_t from_ns,
                     int64_t to_ns, int desc, int limit, int64_t *terminals,
                     int (*cb)(void *ud, const store_rank_t *r), void *ud);

/* EXPLAIN QUERY PLAN of the trend statements, as store_blocks_plan. */
int store_trend_plan(store_t *s, char *out, size_t cap);

#endif
