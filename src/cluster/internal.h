/* cluster internals, shared by the module's files (public interface: cluster.h).
 *
 *   cluster.c  the loop side: start/stop, requests, the session registry, the LISTEN
 *              connection (uv_poll_t), results from the worker, the snapshot readers
 *   worker.c   the worker thread: connection, heartbeat, claims and releases, live-list
 *              refresh, reconnect and resync
 */
#ifndef GS_CLUSTER_INTERNAL_H
#define GS_CLUSTER_INTERNAL_H

#include "cluster.h"

#include "core/hmap.h"
#include "store/pg.h"

#include <stdint.h>

enum { REQ_OPEN = 1, REQ_CLOSE };

/* A request from the loop to the worker (a ring of queue_max entries). */
typedef struct {
    int kind;
    char tid[GSTP_MAX_ID + 1];
    uint64_t db_sid; /* the session id in the database (see cluster__db_sid) */
    char remote[64];
    char *state; /* malloc'ed JSON (REQ_OPEN), or NULL */
} req_t;

/* One session this node holds (the registry: terminal id -> sessrec_t). */
typedef struct {
    uint64_t gw_sid, db_sid;
    char remote[64];
} sessrec_t;

enum { OUT_LISTEN = 1, OUT_END };

/* A result from the worker to the loop. */
typedef struct out {
    struct out *next;
    int kind;
    sqlx_t *listen;            /* OUT_LISTEN: a connection that LISTENs, now the loop's */
    char tid[GSTP_MAX_ID + 1]; /* OUT_END: end this session (another node holds the row) */
    uint64_t db_sid;
} out_t;

/* The LISTEN connection on the loop: a poll handle per connection (a new connection has a new
 * socket), freed in its close callback after which the connection is closed. */
typedef struct lconn {
    uv_poll_t poll;
    cluster_t *c;
    sqlx_t *db;
} lconn_t;

struct cluster {
    uv_loop_t *loop;
    char *url; /* with connect_timeout added when it had none */
    char node[CLUSTER_NODE_MAX];
    uint64_t node_mix;
    int heartbeat_s, stale_s;
    size_t queue_max;
    gw_t *gw;
    cluster_handlers_t h;
    /* shared between the loop and the worker, under mu */
    uv_mutex_t mu;
    uv_cond_t cv;
    req_t *q;
    size_t qhead, qlen;
    int resync;      /* claim everything again (requests were dropped) */
    int listen_lost; /* the loop lost the LISTEN connection: open another */
    int stopping;
    hmap_t reg; /* terminal id -> sessrec_t (written by the loop, copied by the worker) */
    out_t *out_head, *out_tail;
    int worker_up, listen_up;
    cluster_stats_t st; /* counters (db_up, nodes_alive, live_terminals filled on read) */
    /* the live list copy, under snap_mu */
    uv_mutex_t snap_mu;
    cluster_live_t *snap; /* sorted by terminal_id (strcmp) */
    size_t snap_n;
    int nodes_alive;
    int64_t snap_mono_ns; /* when it was read (monotonic) */
    /* loop side */
    uv_thread_t thr;
    int thr_on;
    uv_async_t async;
    lconn_t *lc; /* the LISTEN connection being watched, or NULL */
    int open_handles;
    int stopped;
    void (*done)(void *ud);
    void *done_ud;
};

/* The first line of a libpq message (they run over several, with hints), trimmed, into out. */
const char *cluster__oneline(const char *msg, char *out, size_t cap);

/* The worker thread's entry (worker.c). */
void cluster__worker(void *arg);

/* Hands a result to the loop (worker thread): queued under mu, then uv_async_send. */
void cluster__post(cluster_t *c, out_t *o);

/* The id of a gateway session in the database: unique per node already, mixed with the node
 * id's hash so that two nodes' sessions do not share one. */
uint64_t cluster__db_sid(const cluster_t *c, uint64_t gw_sid);

#endif
