/* store_pg — the store's PostgreSQL foundation over the SQL seam (sql.h): the schema in
 * PostgreSQL's dialect with its migration runner, the time partitions of blocks and measurements,
 * and the writer's block ingest with exactly-once and ack-after-commit. Design and reasons:
 * docs/decisions/0007-postgresql-backend.md.
 *
 * Every function takes a PostgreSQL handle (sqlx_backend == SQLX_POSTGRESQL; GS_EINVAL
 * otherwise) and belongs to the thread that owns that handle. Tables are created in the first
 * schema of the connection's search_path, so tests (and several installations in one database)
 * can live side by side in separate schemas.
 */
#ifndef GS_STORE_PG_H
#define GS_STORE_PG_H

#include "store/sql.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* The number of schema versions the PostgreSQL dialect knows (migrations 1..N, numbered as
 * src/store/db.c's SQLite migrations). */
int store_pg_schema_versions(void);

/* The script of migration `to` (1-based), or NULL when out of range. */
const char *store_pg_migration_sql(int to);

/* Called inside the transaction of migration `to`, after its script (e.g. migration 4 seals the
 * secrets, as db.c does for SQLite). Returns 0 or a negative code, which rolls the migration
 * back; may write a reason into err. */
typedef int (*store_pg_migrate_hook_fn)(sqlx_t *db, int to, void *arg, char *err, size_t errlen);

/* Brings the schema to the newest version: each migration in its own transaction, under a
 * transaction-scoped advisory lock, re-reading schema_version inside it, so that several nodes
 * starting at once apply each migration exactly once (the others wait, then see it done).
 * hook may be NULL. Stores the resulting version in *version. Returns 0; GS_EDB (a database
 * newer than this program, or a failed migration: reason in err, that migration rolled back,
 * earlier ones kept); the seam's classes (GS_ECLOSED, GS_EBUSY) as they come. */
int store_pg_migrate(sqlx_t *db, store_pg_migrate_hook_fn hook, void *arg, int *version, char *err,
                     size_t errlen);

/* Reads the schema version (0 for an empty database) into *version. */
int store_pg_schema_version(sqlx_t *db, int *version);

/* ---- partitions ----
 * blocks: one partition per UTC day of t0_ns (blocks_pYYYYMMDD); measurements: one per UTC month
 * of t_end_ns (measurements_pYYYYMM); wave_pyramid_fine (the pyramid's levels 0 and 1, a
 * partition of wave_pyramid): one per UTC day of bucket_ns (wave_pyramid_fine_pYYYYMMDD). Each
 * also has a _default partition for times outside every partition (a terminal whose clock says
 * 1970 or 2099). */

/* Makes sure blocks and wave_pyramid_fine have a partition for every UTC day and measurements
 * for every UTC month that intersects [from_ns, to_ns] (the server calls it at start and hourly
 * with [now - 1 day, now + days_ahead]). Rows already in a default partition for a new range are
 * moved into it in the same transaction (PostgreSQL refuses to create the partition otherwise).
 * Runs in its own transaction under an advisory lock; idempotent. *created (may be NULL) counts the
 * new partitions. At most 4000 days per call (GS_ERANGE beyond). */
int store_pg_partitions_ensure(sqlx_t *db, int64_t from_ns, int64_t to_ns, int *created);

/* Retention: drops the partitions of `table` ("blocks", "measurements" or "wave_pyramid_fine")
 * that lie wholly before cutoff_ns (upper bound <= cutoff_ns): no row-by-row delete, no dead
 * tuples. The default partition is never dropped. *dropped (may be NULL) counts them. */
int store_pg_partitions_drop_before(sqlx_t *db, const char *table, int64_t cutoff_ns, int *dropped);

/* store_pg_partitions_drop_before, but only the partitions that hold no row any more (blocks:
 * the retention's row deletes emptied a day unless it held blocks kept for an event window). */
int store_pg_partitions_drop_empty_before(sqlx_t *db, const char *table, int64_t cutoff_ns,
                                          int *dropped);

/* ---- block ingest (the writer's hot path) ---- */

typedef struct store_pg_ingest store_pg_ingest_t;

/* Prepares the ingest statements on db (which must stay open while the ingest exists). */
int store_pg_ingest_new(sqlx_t *db, store_pg_ingest_t **out);
void store_pg_ingest_free(store_pg_ingest_t *g);

/* The highest seq committed for one terminal after a batch: what its ACK may carry. */
typedef struct {
    char terminal_id[STORE_ID_MAX + 1];
    uint64_t durable_seq;
} store_pg_ack_t;

/* Stores a batch of STORE_ITEM_BLOCK items in ONE transaction and returns only after COMMIT:
 *  - each terminal's row is locked (SELECT ... FOR UPDATE, in id order: no deadlock between
 *    nodes) and a block whose seq is not above the terminal's durable_seq, or above an earlier
 *    block of the same terminal in this batch, is a duplicate (GSTP 7.1/7.3): result 1, not
 *    stored. UNIQUE(terminal_id, seq, t0_ns) with ON CONFLICT DO NOTHING is the second line.
 *  - new blocks go in multi-row INSERTs (64 rows per statement), EVENT blocks also in events,
 *    then durable_seq moves up (never down) in the same transaction.
 *  - blocks.data and blocks.codec hold what SQLite's writer stores (migration 11): it->enc as
 *    received when it->codec is 1; else the raw samples encoded by wcodec_encode_block when
 *    encoding is on (store_pg_ingest_set_encode), the codec takes the block's shape and the
 *    result is smaller than it->data; else it->data raw (codec 0). it->stored_codec says which.
 *    Nothing of the item is changed but result, stored_codec and stored_raw_busy (0).
 *  - a block the database refuses (GS_EDB) does not sink the batch: it is replayed with one
 *    savepoint per block; the refused block gets its error and every later block of that
 *    terminal in the batch GS_ESTATE (no gap may hide under durable_seq), the others commit.
 * A terminal without a row in terminals has nothing to lock or move: its blocks are stored and
 * deduplicated by the unique key alone, and its ack is the batch's highest seq (as on SQLite).
 * Items must be in the order received (a terminal's seqs increasing). Sets every it->result
 * (0 stored, 1 duplicate, < 0 error) and, when acks is not NULL, fills acks[0..*nacks) (room for
 * n entries) with each terminal's durable_seq as committed.
 * Returns 0 once committed; on a failure of the whole batch (GS_EBUSY, GS_ECLOSED, -ENOSPC,
 * GS_EDB) every result is that code, nothing is acknowledged and the caller retries the batch
 * (GS_ECLOSED at COMMIT: the outcome is unknown; the retry is made harmless by the dedup). */
int store_pg_ingest_blocks(store_pg_ingest_t *g, store_item_t **items, size_t n,
                           int64_t received_ns, store_pg_ack_t *acks, size_t *nacks);

/* Whether blocks received raw are encoded before they are stored (on after _new). Off: they are
 * stored raw, e.g. while the writer is behind (writer.c's STORE_ENCODE_MAX_BACKLOG rule). */
void store_pg_ingest_set_encode(store_pg_ingest_t *g, int on);

/* ---- several nodes on one database (docs/decisions/0007 section 7) ----
 * Live state lives in two UNLOGGED tables made by store_pg_nodes_setup, outside the numbered
 * migrations: they hold nothing durable (PostgreSQL empties unlogged tables after a crash, when
 * every session is gone anyway, and nodes register again), and SQLite has no use for them.
 *   gs_nodes(node_id, started_ns, heartbeat_ns)
 *   gs_live(terminal_id, node_id, session_id, remote, opened_ns, state)
 * Notification channels: STORE_PG_CH_DISPLACE, payload "<node>:<session_id>:<terminal_id>", tells
 * <node> to end that session (another node took the terminal); STORE_PG_CH_COMMAND, payload
 * "<terminal_id>", says a command was queued for it (sent on commit of the creating
 * transaction; the node holding the terminal delivers it, polling stays the fallback). */

#define STORE_PG_CH_DISPLACE "gs_displace"
#define STORE_PG_CH_COMMAND  "gs_command"
#define STORE_PG_NODE_MAX    64

/* Creates the live-state tables if missing (idempotent, safe for nodes starting together). */
int store_pg_nodes_setup(sqlx_t *db);

/* Registers the node or refreshes its heartbeat (every few seconds). */
int store_pg_node_heartbeat(sqlx_t *db, const char *node_id, int64_t now_ns);

/* A terminal logged in on node_id with session_id: takes its gs_live row, serialised per
 * terminal by an advisory lock. If another session held it, that session's node is told to end
 * it (NOTIFY on STORE_PG_CH_DISPLACE, delivered at commit) and its node and session are returned
 * in displaced_node (STORE_PG_NODE_MAX bytes, "" if none) and *displaced_session. */
int store_pg_session_claim(sqlx_t *db, const char *node_id, const char *terminal_id,
                           uint64_t session_id, const char *remote, int64_t now_ns,
                           char *displaced_node, uint64_t *displaced_session);

/* The session ended: drops the row only if it is still this session's (a displaced session's
 * late logout does not remove its successor). 1 if removed, 0 if not ours any more. */
int store_pg_session_release(sqlx_t *db, const char *terminal_id, uint64_t session_id);

/* Publishes a session's live state (a JSON text the API shows); only while the row is its own.
 * 1 if updated, 0 if not ours. */
int store_pg_session_state(sqlx_t *db, const char *terminal_id, uint64_t session_id,
                           const char *state_json);

/* Queues the "command for terminal_id" notification; call it inside the transaction that
 * inserts the command, so it is sent only if that commits. */
int store_pg_command_notify(sqlx_t *db, const char *terminal_id);

/* One live terminal as any node's API lists it. */
typedef struct {
    char terminal_id[STORE_ID_MAX + 1];
    char node_id[STORE_PG_NODE_MAX];
    uint64_t session_id;
    int node_alive;  /* the node's heartbeat is newer than now - stale_ns */
    char state[512]; /* JSON text ("" if none published), truncated to fit */
} store_pg_live_t;

/* Lists every terminal with a live session on any node, by terminal id, at most max entries.
 * Returns the number listed or a negative code. */
int store_pg_live_list(sqlx_t *db, int64_t now_ns, int64_t stale_ns, store_pg_live_t *out,
                       size_t max);

/* Subscribes the connection (a node's listening connection) to both channels. */
int store_pg_listen(sqlx_t *db);

/* ---- several nodes: the cluster module's additions (src/cluster) ---- */

/* The session ended: drops terminal_id's row only if it is still node_id's session_id (session
 * ids are unique per node only). 1 if removed, 0 if not. */
int store_pg_session_release_node(sqlx_t *db, const char *node_id, const char *terminal_id,
                                  uint64_t session_id);

/* Takes terminal_id's row for node_id/session_id only if no session holds it (a node that was
 * cut off from the database claims its sessions again this way: one that another node took
 * meanwhile is not taken back). 1 if taken, 0 if a row was there (whoever's), or a negative
 * code. */
int store_pg_session_claim_if_free(sqlx_t *db, const char *node_id, const char *terminal_id,
                                   uint64_t session_id, const char *remote, int64_t now_ns);

/* The number of nodes whose heartbeat is newer than now - stale_ns, or a negative code. */
int store_pg_nodes_alive(sqlx_t *db, int64_t now_ns, int64_t stale_ns);

/* A node stops: removes its live sessions and its gs_nodes row in one transaction. Returns the
 * number of sessions removed or a negative code. */
int store_pg_node_leave(sqlx_t *db, const char *node_id);

#endif
