/* The loop side of a cluster node: start/stop, the requests the gateway's sessions make, the
 * registry of this node's sessions, the LISTEN connection and the worker's results. Contract in
 * cluster.h; the worker thread is worker.c. */
#include "internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TAG "cluster"

void cluster_opts_default(cluster_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->heartbeat_s = 5;
    o->stale_s = 20;
    o->queue_max = 65536;
}

/* FNV-1a, 32 bits: only spreads node ids over the high half of the session ids. */
static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

uint64_t cluster__db_sid(const cluster_t *c, uint64_t gw_sid)
{
    /* The gateway's ids are <start second> << 32 | <counter>: unique across one node's
     * restarts, but two nodes started in the same second count 1, 2, ... alike. XOR with the
     * node's hash in the high half keeps one node's ids distinct and makes two nodes' ids meet
     * only if their hashes and start seconds collide together (and releases check the node
     * too: store_pg_session_release_node). */
    return (gw_sid ^ c->node_mix) & INT64_MAX; /* a positive BIGINT */
}

const char *cluster__oneline(const char *msg, char *out, size_t cap)
{
    size_t n = strcspn(msg ? msg : "", "\r\n");
    while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '.'))
        n--;
    snprintf(out, cap, "%.*s", (int)n, msg ? msg : "");
    return out;
}

static int valid_node_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CLUSTER_NODE_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == ':'))
            return 0;
    return 1;
}

static void handles_dec(cluster_t *c);
static void handle_closed(uv_handle_t *h);
static void async_cb(uv_async_t *a);

int cluster_start(uv_loop_t *loop, const cluster_opts_t *o, cluster_t **out, char *err,
                  size_t errlen)
{
    if (!o->url || !sqlx_is_postgresql_url(o->url)) {
        snprintf(err, errlen, "cluster: the database must be PostgreSQL (a postgresql:// url)");
        return GS_EINVAL;
    }
    if (!o->node_id || !valid_node_id(o->node_id)) {
        snprintf(err, errlen, "cluster: node id must be 1..%d letters, digits, - _ . or :",
                 CLUSTER_NODE_MAX - 1);
        return GS_EINVAL;
    }
    cluster_t *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    /* A database that does not answer must not hold the worker (and the shutdown) for long,
     * and a peer gone without a word (a partition, a dead host) must be noticed on the idle
     * LISTEN connection too: timeouts and TCP keepalives, unless the URL sets them. */
    c->url = sqlx_pg_url_defaults(o->url);
    snprintf(c->node, sizeof c->node, "%s", o->node_id);
    c->node_mix = (uint64_t)fnv1a32(c->node) << 32;
    c->heartbeat_s = o->heartbeat_s > 0 ? o->heartbeat_s : 5;
    c->stale_s = o->stale_s > 0 ? o->stale_s : 20;
    c->queue_max = o->queue_max > 0 ? (size_t)o->queue_max : 65536;
    c->q = xcalloc(c->queue_max, sizeof *c->q);
    hmap_init(&c->reg);
    uv_mutex_init(&c->mu);
    uv_cond_init(&c->cv);
    uv_mutex_init(&c->snap_mu);
    c->resync = 1; /* the first connection removes rows a previous run of this node left */
    uv_async_init(loop, &c->async, async_cb);
    c->async.data = c;
    c->open_handles = 1;
    int rc = uv_thread_create(&c->thr, cluster__worker, c);
    if (rc < 0) {
        snprintf(err, errlen, "cluster: cannot start the worker thread: %s", uv_strerror(rc));
        c->stopped = 1;
        uv_close((uv_handle_t *)&c->async, handle_closed); /* freed by cluster_free after */
        *out = c;
        return rc;
    }
    c->thr_on = 1;
    *out = c;
    return 0;
}

const char *cluster_node_id(const cluster_t *c)
{
    return c->node;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Queues a request (loop thread); a full queue drops it and asks the worker to claim everything
 * again from the registry (which the caller has already updated). Takes req->state. */
static void enqueue(cluster_t *c, const req_t *r)
{
    uv_mutex_lock(&c->mu);
    if (c->stopping || c->qlen == c->queue_max) {
        if (!c->stopping)
            c->resync = 1;
        c->st.requests_dropped++;
        free(r->state);
    } else {
        c->q[(c->qhead + c->qlen) % c->queue_max] = *r;
        c->qlen++;
    }
    uv_cond_signal(&c->cv);
    uv_mutex_unlock(&c->mu);
}

void cluster_session_open(cluster_t *c, const char *terminal_id, uint64_t session_id,
                          const char *remote, const char *state_json)
{
    req_t r = {.kind = REQ_OPEN, .db_sid = cluster__db_sid(c, session_id)};
    snprintf(r.tid, sizeof r.tid, "%s", terminal_id);
    snprintf(r.remote, sizeof r.remote, "%s", remote ? remote : "");
    r.state = state_json ? xstrdup(state_json) : NULL;
    uv_mutex_lock(&c->mu);
    sessrec_t *s = hmap_get(&c->reg, terminal_id);
    if (!s) {
        s = xcalloc(1, sizeof *s);
        hmap_put(&c->reg, terminal_id, s);
    }
    s->gw_sid = session_id;
    s->db_sid = r.db_sid;
    snprintf(s->remote, sizeof s->remote, "%s", r.remote);
    uv_mutex_unlock(&c->mu);
    enqueue(c, &r);
}

void cluster_session_close(cluster_t *c, const char *terminal_id, uint64_t session_id)
{
    req_t r = {.kind = REQ_CLOSE, .db_sid = cluster__db_sid(c, session_id)};
    snprintf(r.tid, sizeof r.tid, "%s", terminal_id);
    uv_mutex_lock(&c->mu);
    sessrec_t *s = hmap_get(&c->reg, terminal_id);
    if (s && s->gw_sid == session_id)
        free(hmap_del(&c->reg, terminal_id));
    uv_mutex_unlock(&c->mu);
    enqueue(c, &r);
}

void cluster_set_handlers(cluster_t *c, const cluster_handlers_t *h)
{
    if (h)
        c->h = *h;
    else
        memset(&c->h, 0, sizeof c->h);
}

/* The gateway session of terminal tid whose database id is db_sid, or 0 when this node does not
 * hold that session (any more). Loop thread (the registry's writer: no lock for reading). */
static uint64_t gw_session_of(cluster_t *c, const char *tid, uint64_t db_sid)
{
    sessrec_t *s = hmap_get(&c->reg, tid);
    return s && s->db_sid == db_sid ? s->gw_sid : 0;
}

/* Ends this node's session db_sid of terminal tid, which another node took. */
static void end_session(cluster_t *c, const char *tid, uint64_t db_sid, const char *why)
{
    uint64_t gw_sid = gw_session_of(c, tid, db_sid);
    if (!gw_sid || !c->h.on_displace)
        return;
    log_info(tid, "session ended: %s", why);
    uv_mutex_lock(&c->mu);
    c->st.displaced_here++;
    uv_mutex_unlock(&c->mu);
    c->h.on_displace(c->h.ud, tid, gw_sid);
}

/* ---- the LISTEN connection ------------------------------------------------------------------ */

static void lconn_closed(uv_handle_t *h)
{
    lconn_t *l = h->data;
    cluster_t *c = l->c;
    sqlx_close(l->db); /* after the poll handle: libuv must not watch a closed descriptor */
    free(l);
    handles_dec(c);
}

/* Stops watching the LISTEN connection and closes it; unless stopping, the worker opens another
 * (and claims everything again: notifications sent meanwhile are lost). */
static void lconn_drop(cluster_t *c, int lost)
{
    lconn_t *l = c->lc;
    if (!l)
        return;
    c->lc = NULL;
    uv_poll_stop(&l->poll);
    uv_close((uv_handle_t *)&l->poll, lconn_closed);
    uv_mutex_lock(&c->mu);
    c->listen_up = 0;
    if (lost && !c->stopping) {
        c->listen_lost = 1;
        uv_cond_signal(&c->cv);
    }
    uv_mutex_unlock(&c->mu);
}

/* One notification (loop thread). Payloads come from the database, written by gridsense nodes
 * (pg_nodes.c): still parsed defensively. */
static void on_note(const char *channel, const char *payload, void *arg)
{
    cluster_t *c = arg;
    uv_mutex_lock(&c->mu);
    c->st.notifications++;
    uv_mutex_unlock(&c->mu);
    if (strcmp(channel, STORE_PG_CH_DISPLACE) == 0) {
        /* "<node>:<session>:<terminal>": node ids may hold ':' (hostname:port), terminal ids
         * may not (GSTP ids), so split from the right. */
        char buf[STORE_PG_NODE_MAX + GSTP_MAX_ID + 32];
        if (strlen(payload) >= sizeof buf)
            return;
        snprintf(buf, sizeof buf, "%s", payload);
        char *t = strrchr(buf, ':');
        if (!t)
            return;
        *t++ = '\0';
        char *sid = strrchr(buf, ':');
        if (!sid)
            return;
        *sid++ = '\0';
        char *end = NULL;
        unsigned long long v = strtoull(sid, &end, 10);
        if (!*sid || *end || strcmp(buf, c->node) != 0)
            return; /* another node's session */
        end_session(c, t, (uint64_t)v, "the terminal logged in on another node");
    } else if (strcmp(channel, STORE_PG_CH_COMMAND) == 0) {
        if (!hmap_get(&c->reg, payload) || !c->h.on_command)
            return; /* not online here: the node holding it delivers */
        uv_mutex_lock(&c->mu);
        c->st.commands_woken++;
        uv_mutex_unlock(&c->mu);
        c->h.on_command(c->h.ud, payload);
    }
}

static void lconn_poll_cb(uv_poll_t *p, int status, int events)
{
    lconn_t *l = p->data;
    cluster_t *c = l->c;
    int rc = status < 0 ? GS_ECLOSED : sqlx_pg_notifications(l->db, on_note, c);
    if (rc < 0 && c->lc == l) {
        /* debug only: the worker logs the one "database lost" line when it cannot reopen it */
        char m[256];
        log_debug(TAG, "the LISTEN connection was lost (%s): reopening it",
                  status < 0 ? uv_strerror(status)
                             : cluster__oneline(sqlx_errmsg(l->db), m, sizeof m));
        lconn_drop(c, 1);
    }
}

/* Starts watching a LISTEN connection the worker opened. */
static void lconn_start(cluster_t *c, sqlx_t *db)
{
    int fd = sqlx_pg_socket(db);
    lconn_t *l = xcalloc(1, sizeof *l);
    l->c = c;
    l->db = db;
    if (c->stopped || fd < 0 || uv_poll_init(c->loop, &l->poll, fd) < 0) {
        sqlx_close(db);
        free(l);
        if (!c->stopped) {
            uv_mutex_lock(&c->mu);
            c->listen_lost = 1;
            uv_cond_signal(&c->cv);
            uv_mutex_unlock(&c->mu);
        }
        return;
    }
    l->poll.data = l;
    c->open_handles++;
    lconn_drop(c, 0); /* (a previous one, should there be one) */
    c->lc = l;
    uv_poll_start(&l->poll, UV_READABLE, lconn_poll_cb);
    uv_mutex_lock(&c->mu);
    c->listen_up = 1;
    uv_mutex_unlock(&c->mu);
    /* Notifications may have been missed while there was none: read what is already there,
     * and let the gateway look for commands (its poll would within a second anyway). */
    int rc = sqlx_pg_notifications(db, on_note, c);
    if (rc < 0)
        lconn_drop(c, 1);
}

/* ---- results from the worker ----------------------------------------------------------------- */

void cluster__post(cluster_t *c, out_t *o)
{
    uv_mutex_lock(&c->mu);
    o->next = NULL;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
}

static void take_results(cluster_t *c)
{
    uv_mutex_lock(&c->mu);
    out_t *o = c->out_head;
    c->out_head = c->out_tail = NULL;
    uv_mutex_unlock(&c->mu);
    while (o) {
        out_t *next = o->next;
        if (o->kind == OUT_LISTEN)
            lconn_start(c, o->listen);
        else if (o->kind == OUT_END && !c->stopped)
            end_session(c, o->tid, o->db_sid,
                        "another node took the terminal while this one was cut off from the "
                        "database");
        free(o);
        o = next;
    }
}

static void async_cb(uv_async_t *a)
{
    take_results(a->data);
}

/* ---- the gateway ----------------------------------------------------------------------------- */

static void on_session(void *ud, int event, const gw_term_info_t *ti, uint64_t session_id)
{
    cluster_t *c = ud;
    if (event == GW_TERM_ONLINE) {
        /* the live state other nodes' API shows for a terminal online here (docs/api.md) */
        json_t *j = json_pack("{s:s, s:I, s:s}", "remote", ti->remote, "connected_since_ns",
                              (json_int_t)ti->connected_since_ns, "firmware", ti->fw_version);
        char *state = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        cluster_session_open(c, ti->id, session_id, ti->remote, state);
        free(state);
    } else if (event == GW_TERM_OFFLINE) {
        cluster_session_close(c, ti->id, session_id);
    }
}

static void gw_displace(void *ud, const char *terminal_id, uint64_t session_id)
{
    gw_session_end(ud, terminal_id, session_id, GSTP_REJ_REPLACED,
                   "replaced by a newer session on another node");
}

static void gw_command(void *ud, const char *terminal_id)
{
    gw_commands_check(ud, terminal_id);
}

void cluster_attach_gw(cluster_t *c, gw_t *g)
{
    c->gw = g;
    gw_set_session_observer(g, on_session, c);
    cluster_handlers_t h = {.on_displace = gw_displace, .on_command = gw_command, .ud = g};
    cluster_set_handlers(c, &h);
}

/* ---- stop ------------------------------------------------------------------------------------ */

static void handle_closed(uv_handle_t *h)
{
    handles_dec(h->data);
}

static void handles_dec(cluster_t *c)
{
    if (--c->open_handles == 0 && c->done) {
        void (*cb)(void *) = c->done;
        c->done = NULL;
        cb(c->done_ud);
    }
}

void cluster_stop(cluster_t *c, void (*done)(void *ud), void *ud)
{
    if (c->stopped)
        return;
    if (c->gw)
        gw_set_session_observer(c->gw, NULL, NULL);
    cluster_set_handlers(c, NULL);
    uv_mutex_lock(&c->mu);
    c->stopping = 1;
    uv_cond_signal(&c->cv);
    uv_mutex_unlock(&c->mu);
    if (c->thr_on) {
        uv_thread_join(&c->thr);
        c->thr_on = 0;
    }
    c->stopped = 1;
    c->done = done;
    c->done_ud = ud;
    take_results(c); /* a LISTEN connection handed over last is closed at once */
    lconn_drop(c, 0);
    uv_close((uv_handle_t *)&c->async, handle_closed);
}

void cluster_free(cluster_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->qlen; i++)
        free(c->q[(c->qhead + i) % c->queue_max].state);
    free(c->q);
    size_t pos = 0;
    const char *k;
    void *v;
    while (hmap_next(&c->reg, &pos, &k, &v))
        free(v);
    hmap_free(&c->reg);
    while (c->out_head) {
        out_t *o = c->out_head;
        c->out_head = o->next;
        sqlx_close(o->listen);
        free(o);
    }
    free(c->snap);
    uv_mutex_destroy(&c->mu);
    uv_cond_destroy(&c->cv);
    uv_mutex_destroy(&c->snap_mu);
    free(c->url);
    free(c);
}

/* ---- readers (any thread) -------------------------------------------------------------------- */

static int live_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const cluster_live_t *)elem)->terminal_id);
}

int cluster_live_get(cluster_t *c, const char *terminal_id, cluster_live_t *out)
{
    int rc = GS_ENOTFOUND;
    uv_mutex_lock(&c->snap_mu);
    const cluster_live_t *l =
        c->snap ? bsearch(terminal_id, c->snap, c->snap_n, sizeof *c->snap, live_cmp) : NULL;
    if (l) {
        *out = *l;
        /* A copy older than `stale` (the database is away) says nothing about other nodes
         * any more: their terminals count as on a dead node, as a silent node's would. */
        if (!l->local && time_mono_ns() - c->snap_mono_ns > (int64_t)c->stale_s * 1000000000)
            out->node_alive = 0;
        rc = 0;
    }
    uv_mutex_unlock(&c->snap_mu);
    return rc;
}

void cluster_stats(cluster_t *c, cluster_stats_t *out)
{
    uv_mutex_lock(&c->mu);
    *out = c->st;
    out->db_up = c->worker_up && c->listen_up;
    uv_mutex_unlock(&c->mu);
    uv_mutex_lock(&c->snap_mu);
    out->nodes_alive = c->nodes_alive;
    out->live_terminals = c->snap_n;
    uv_mutex_unlock(&c->snap_mu);
}
