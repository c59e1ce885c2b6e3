/* cluster — one `gridsense serve` node among several on one PostgreSQL database
 * (docs/decisions/0007-postgresql-backend.md section 7; docs/operations.md "Several nodes").
 *
 * A node keeps the database's directory of live terminals (the UNLOGGED tables gs_nodes and
 * gs_live of src/store/pg_nodes.c) in step with its gateway, and acts on what other nodes say:
 *  - its heartbeat row, refreshed every `heartbeat_s` (a node silent for `stale_s` is dead);
 *  - a claim of the terminal's row at each login (another node's older session of the same
 *    terminal is then told to end: NOTIFY gs_displace), a release at each logout (only the
 *    row of that very session), and the session's live state (remote address, connected
 *    since, firmware) published for the other nodes' API;
 *  - a copy of every node's live terminals (store_pg_live_list), refreshed every heartbeat,
 *    that any thread reads without touching the database (the HTTP API runs on its own thread);
 *  - a LISTEN connection watched on the loop (uv_poll_t): gs_displace for one of this node's
 *    sessions ends it in the gateway (BYE REPLACED), gs_command for a terminal online here
 *    makes the gateway look for new commands at once (its once-a-second poll stays the
 *    fallback: NOTIFY is not durable).
 *
 * Threads. Every blocking database call runs on the node's worker thread, over connections of
 * its own (never the store's): the loop thread only queues requests (bounded; results and
 * notifications come back through uv_async_send) and reads the LISTEN socket without blocking.
 * When the database goes away the worker logs one line, reconnects with a growing delay (1 s to
 * 30 s, never a busy loop) and logs one line when it is back; then it claims again the
 * sessions this node holds (the requests of the gap were dropped), removes rows of its own that
 * are no longer sessions, and ends the sessions another node took meanwhile. The gateway keeps
 * serving terminals all along; only the cluster view is stale.
 *
 * Session ids in the database are the gateway's session id (unique across its restarts) mixed
 * with a hash of the node id, so that two nodes' ids do not meet (see cluster.c).
 */
#ifndef GS_CLUSTER_H
#define GS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gw/gw.h"

typedef struct cluster cluster_t;

#define CLUSTER_NODE_MAX 64 /* node id bytes, NUL included (STORE_PG_NODE_MAX) */

typedef struct {
    const char *url;     /* postgresql://... (libpq URI; copied, never logged unredacted) */
    const char *node_id; /* this node's id: 1..63 bytes of letters, digits, - _ . : (copied) */
    int heartbeat_s;     /* heartbeat and live-list refresh period, default 5 */
    int stale_s;         /* a node whose heartbeat is older is dead, default 20 */
    int queue_max;       /* requests waiting for the worker, default 65536; beyond, a request is
                            dropped and the worker claims everything again (as after a gap) */
} cluster_opts_t;

/* Fills *o with the defaults above (url and node_id NULL). */
void cluster_opts_default(cluster_opts_t *o);

/* Starts the node on `loop`: the worker thread connects (not this call: it never blocks on the
 * database, which may well be down at start), creates the live-state tables if missing, and
 * registers the node. Returns 0, or GS_EINVAL (no url or a bad node id, reason in err: nothing
 * to free), or the thread's error (reason in err; *out is then set and its handle closing: free
 * it with cluster_free after the loop has run). */
int cluster_start(uv_loop_t *loop, const cluster_opts_t *o, cluster_t **out, char *err,
                  size_t errlen);

/* Connects the node to its gateway: watches its sessions (gw_set_session_observer), ends the
 * sessions other nodes took over (gw_session_end) and wakes its command delivery
 * (gw_commands_check). Call once, after both started. Loop thread. */
void cluster_attach_gw(cluster_t *c, gw_t *g);

/* Stops on the loop thread, after the gateway has stopped (its last sessions' releases are
 * queued by then): stops watching the gateway, lets the worker finish the queued requests and
 * remove this node's rows (its sessions and its heartbeat, so the other nodes' API shows them
 * offline at once), joins the worker (a database that does not answer delays this by at most
 * the connection timeout, 5 s, per statement), then closes the handles. `done` (may be NULL) is
 * called on the loop once every handle is closed. */
void cluster_stop(cluster_t *c, void (*done)(void *ud), void *ud);

/* Frees the node after cluster_stop's callback (or after uv_run returned). NULL: no-op. */
void cluster_free(cluster_t *c);

/* This node's id. Any thread. */
const char *cluster_node_id(const cluster_t *c);

/* One terminal as the database's directory shows it (copy of the last refresh). */
typedef struct {
    char terminal_id[GSTP_MAX_ID + 1];
    char node_id[CLUSTER_NODE_MAX];  /* the node holding its session */
    int node_alive;                  /* that node's heartbeat is fresh (stale_s) */
    int local;                       /* node_id is this node */
    char remote[64];                 /* the session's peer address as that node saw it, "" */
    int64_t connected_since_ns;      /* the session's start, 0 if not published */
    char firmware[GSTP_MAX_STR + 1]; /* "" if not published */
} cluster_live_t;

/* Looks terminal_id up in the copy of the live list (at most heartbeat_s old, or older while
 * the database is away: once the copy is older than stale_s, another node's entry has
 * node_alive 0, as this node can no longer tell). Returns 0 and *out, or GS_ENOTFOUND (no live
 * session anywhere, or not yet listed). Any thread; never touches the database. */
int cluster_live_get(cluster_t *c, const char *terminal_id, cluster_live_t *out);

/* Counters for /metrics. Any thread. */
typedef struct {
    int db_up;                 /* 1 while the worker's connection and the LISTEN one are up */
    int nodes_alive;           /* nodes with a fresh heartbeat, at the last refresh (0 if never) */
    uint64_t live_terminals;   /* terminals with a live session on any node, last refresh */
    uint64_t displaced_other;  /* logins here that displaced a session on another node */
    uint64_t displaced_here;   /* sessions here ended because another node took the terminal */
    uint64_t notifications;    /* notifications received on the LISTEN connection */
    uint64_t commands_woken;   /* gs_command notifications for a terminal online here */
    uint64_t db_lost;          /* times the database connection was lost */
    uint64_t requests_dropped; /* requests dropped on a full queue or while disconnected */
} cluster_stats_t;

void cluster_stats(cluster_t *c, cluster_stats_t *out);

/* ---- Requests (loop thread): what cluster_attach_gw's observer calls; public for tests and
 * for a gateway of another kind. session_id is the gateway's. Each returns at once: the worker
 * applies it in order. ---- */

/* A session of terminal_id went online here: claim its row; `state_json` (may be NULL) is
 * published as its live state after the claim. */
void cluster_session_open(cluster_t *c, const char *terminal_id, uint64_t session_id,
                          const char *remote, const char *state_json);

/* The session ended: release its row (only if still this session's). */
void cluster_session_close(cluster_t *c, const char *terminal_id, uint64_t session_id);

/* Handlers for what other nodes say (loop thread); cluster_attach_gw installs the gateway's.
 * on_displace: end terminal_id's session_id (a gateway session id); on_command: a command was
 * queued for terminal_id (it may not be online here). */
typedef struct {
    void (*on_displace)(void *ud, const char *terminal_id, uint64_t session_id);
    void (*on_command)(void *ud, const char *terminal_id);
    void *ud;
} cluster_handlers_t;

void cluster_set_handlers(cluster_t *c, const cluster_handlers_t *h);

#endif
