/* The cluster node's worker thread: every blocking database call of the node (cluster.h,
 * "Threads"). One connection for its own statements and, handed to the loop once it LISTENs, a
 * second one for notifications. */
#include "internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TAG "cluster"
#define S   INT64_C(1000000000)

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define LIVE_MAX       (1u << 20) /* terminals listed at most (a fleet far beyond 19,000 each) */

typedef struct {
    cluster_t *c;
    sqlx_t *db;
    int lost_logged;       /* "lost" was logged and "back" is due */
    int64_t lost_ns;       /* when (monotonic) */
    int need_listen;       /* the loop has no LISTEN connection */
    int resync_later;      /* a request or resync failed: resync after the next heartbeat */
    int64_t next_hb;       /* next heartbeat (monotonic) */
    store_pg_live_t *live; /* the live list buffer */
    size_t live_cap;
} wk_t;

/* The connection failed or was lost: closes it, logs once, and has the next connection claim
 * everything again (requests meanwhile are dropped: the registry has what they said). */
static void lost(wk_t *w, int rc)
{
    cluster_t *c = w->c;
    if (!w->lost_logged) {
        char m[256];
        m[0] = '\0';
        if (w->db)
            cluster__oneline(sqlx_errmsg(w->db), m, sizeof m);
        log_warn(TAG,
                 "database lost (%s%s%s); terminals are still served here, the other nodes' "
                 "view of them is stale; reconnecting",
                 err_str(rc), m[0] ? ": " : "", m);
        w->lost_logged = 1;
        w->lost_ns = time_mono_ns();
    }
    sqlx_close(w->db);
    w->db = NULL;
    uv_mutex_lock(&c->mu);
    if (c->worker_up)
        c->st.db_lost++;
    c->worker_up = 0;
    c->resync = 1;
    uv_mutex_unlock(&c->mu);
}

/* Whether a failure means the connection is gone (else a statement failed: logged, go on). */
static int fatal(int rc)
{
    return rc == GS_ECLOSED;
}

/* Fills the state fields of a live entry from the JSON the holding node published (on_session
 * in cluster.c). Unknown or missing fields stay empty. */
static void parse_state(cluster_live_t *o, const char *state)
{
    if (!state[0])
        return;
    json_t *j = json_loads(state, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    const char *r = json_string_value(json_object_get(j, "remote"));
    const char *f = json_string_value(json_object_get(j, "firmware"));
    json_t *since = json_object_get(j, "connected_since_ns");
    if (r)
        snprintf(o->remote, sizeof o->remote, "%s", r);
    if (f)
        snprintf(o->firmware, sizeof o->firmware, "%s", f);
    if (json_is_integer(since))
        o->connected_since_ns = (int64_t)json_integer_value(since);
    json_decref(j);
}

static int live_sort(const void *a, const void *b)
{
    return strcmp(((const cluster_live_t *)a)->terminal_id,
                  ((const cluster_live_t *)b)->terminal_id);
}

static int raw_sort(const void *a, const void *b)
{
    return strcmp(((const store_pg_live_t *)a)->terminal_id,
                  ((const store_pg_live_t *)b)->terminal_id);
}

/* Reads the whole live list into w->live (growing it), sorted by strcmp (the database sorts by
 * its collation). Returns the count or a negative code. */
static int read_live(wk_t *w)
{
    cluster_t *c = w->c;
    for (;;) {
        int n =
            store_pg_live_list(w->db, time_utc_ns(), (int64_t)c->stale_s * S, w->live, w->live_cap);
        if (n < 0)
            return n;
        if ((size_t)n < w->live_cap || w->live_cap >= LIVE_MAX) {
            qsort(w->live, (size_t)n, sizeof *w->live, raw_sort);
            return n;
        }
        w->live_cap *= 2;
        free(w->live);
        w->live = xmalloc(w->live_cap * sizeof *w->live);
    }
}

/* Heartbeat, then a fresh copy of the live list and the count of live nodes. */
static int heartbeat(wk_t *w)
{
    cluster_t *c = w->c;
    int64_t now = time_utc_ns();
    int rc = store_pg_node_heartbeat(w->db, c->node, now);
    if (rc < 0)
        return rc;
    int alive = store_pg_nodes_alive(w->db, now, (int64_t)c->stale_s * S);
    if (alive < 0)
        return alive;
    int n = read_live(w);
    if (n < 0)
        return n;
    cluster_live_t *snap = xcalloc((size_t)n + 1, sizeof *snap);
    for (int i = 0; i < n; i++) {
        const store_pg_live_t *l = &w->live[i];
        cluster_live_t *o = &snap[i];
        snprintf(o->terminal_id, sizeof o->terminal_id, "%s", l->terminal_id);
        snprintf(o->node_id, sizeof o->node_id, "%s", l->node_id);
        o->node_alive = l->node_alive;
        o->local = strcmp(l->node_id, c->node) == 0;
        parse_state(o, l->state);
    }
    qsort(snap, (size_t)n, sizeof *snap, live_sort);
    uv_mutex_lock(&c->snap_mu);
    cluster_live_t *old = c->snap;
    c->snap = snap;
    c->snap_n = (size_t)n;
    c->nodes_alive = alive;
    c->snap_mono_ns = time_mono_ns();
    uv_mutex_unlock(&c->snap_mu);
    free(old);
    return 0;
}

/* Applies one request. Returns 0 or the failure (the caller decides whether it was fatal). */
static int apply(wk_t *w, req_t *r)
{
    cluster_t *c = w->c;
    int rc;
    if (r->kind == REQ_CLOSE) {
        rc = store_pg_session_release_node(w->db, c->node, r->tid, r->db_sid);
        return rc < 0 ? rc : 0;
    }
    char who[STORE_PG_NODE_MAX];
    uint64_t old = 0;
    rc = store_pg_session_claim(w->db, c->node, r->tid, r->db_sid, r->remote, time_utc_ns(), who,
                                &old);
    if (rc < 0)
        return rc;
    if (who[0] && strcmp(who, c->node) != 0) {
        log_info(r->tid,
                 "logged in here while online on node %s (session %llu): that session "
                 "is told to end",
                 who, (unsigned long long)old);
        uv_mutex_lock(&c->mu);
        c->st.displaced_other++;
        uv_mutex_unlock(&c->mu);
    }
    if (r->state) {
        rc = store_pg_session_state(w->db, r->tid, r->db_sid, r->state);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const store_pg_live_t *find_live(wk_t *w, int n, const char *tid)
{
    store_pg_live_t key;
    snprintf(key.terminal_id, sizeof key.terminal_id, "%s", tid);
    return bsearch(&key, w->live, (size_t)n, sizeof *w->live, raw_sort);
}

static void post_end(cluster_t *c, const char *tid, uint64_t db_sid)
{
    out_t *o = xcalloc(1, sizeof *o);
    o->kind = OUT_END;
    snprintf(o->tid, sizeof o->tid, "%s", tid);
    o->db_sid = db_sid;
    cluster__post(c, o);
}

typedef struct {
    char tid[GSTP_MAX_ID + 1];
    sessrec_t s;
} regcopy_t;

/* After a gap (start, lost connection, dropped requests): makes the database's rows of this
 * node what the registry says. Rows of this node that are no longer sessions go; sessions with
 * no row are claimed (only if free); a session whose row a live node holds now was displaced
 * while this node could not hear it, and is ended; a row of a dead node is taken over. */
static int reg_sort(const void *a, const void *b)
{
    return strcmp(((const regcopy_t *)a)->tid, ((const regcopy_t *)b)->tid);
}

static int resync(wk_t *w)
{
    cluster_t *c = w->c;
    /* The registry first, and only with no request waiting: then every session in the copy
     * has had its claim applied (or dropped), and no claim is applied until this is done, so
     * the rows read next can be judged against it. */
    uv_mutex_lock(&c->mu);
    if (c->qlen) {
        c->resync = 1; /* after the requests (they come first) */
        uv_mutex_unlock(&c->mu);
        return 0;
    }
    size_t nr = c->reg.count, i = 0, pos = 0;
    regcopy_t *rc_ = xcalloc(nr + 1, sizeof *rc_);
    const char *k;
    void *v;
    while (i < nr && hmap_next(&c->reg, &pos, &k, &v)) {
        snprintf(rc_[i].tid, sizeof rc_[i].tid, "%s", k);
        rc_[i].s = *(sessrec_t *)v;
        i++;
    }
    nr = i;
    uv_mutex_unlock(&c->mu);
    qsort(rc_, nr, sizeof *rc_, reg_sort);
    int n = read_live(w);
    if (n < 0) {
        free(rc_);
        return n;
    }
    int rc = 0, removed = 0, claimed = 0, ended = 0;
    for (int j = 0; j < n && rc >= 0; j++) {
        const store_pg_live_t *l = &w->live[j];
        if (strcmp(l->node_id, c->node) != 0)
            continue;
        regcopy_t key;
        snprintf(key.tid, sizeof key.tid, "%s", l->terminal_id);
        const regcopy_t *r = bsearch(&key, rc_, nr, sizeof *rc_, reg_sort);
        if (!r || r->s.db_sid != l->session_id) {
            rc = store_pg_session_release_node(w->db, c->node, l->terminal_id, l->session_id);
            removed += rc > 0;
        }
    }
    for (size_t x = 0; x < nr && rc >= 0; x++) {
        const store_pg_live_t *l = find_live(w, n, rc_[x].tid);
        if (l && strcmp(l->node_id, c->node) == 0 && l->session_id == rc_[x].s.db_sid)
            continue; /* as it should be */
        if (!l) {
            rc = store_pg_session_claim_if_free(w->db, c->node, rc_[x].tid, rc_[x].s.db_sid,
                                                rc_[x].s.remote, time_utc_ns());
            if (rc == 0) { /* taken in between by another node */
                post_end(c, rc_[x].tid, rc_[x].s.db_sid);
                ended++;
            }
            claimed += rc > 0;
        } else if (strcmp(l->node_id, c->node) == 0 || !l->node_alive) {
            char who[STORE_PG_NODE_MAX];
            uint64_t old;
            rc = store_pg_session_claim(w->db, c->node, rc_[x].tid, rc_[x].s.db_sid,
                                        rc_[x].s.remote, time_utc_ns(), who, &old);
            claimed += rc == 0;
        } else {
            post_end(c, rc_[x].tid, rc_[x].s.db_sid);
            ended++;
        }
    }
    free(rc_);
    if (rc >= 0 && (removed || claimed || ended))
        log_info(TAG,
                 "resynchronised: %d session(s) claimed, %d stale row(s) removed, %d "
                 "session(s) taken by other nodes meanwhile",
                 claimed, removed, ended);
    return rc < 0 ? rc : 0;
}

/* Connects and gets ready: tables, heartbeat, live list. 0 or a negative code (w->db NULL). */
static int connect_db(wk_t *w)
{
    cluster_t *c = w->c;
    char err[256];
    int rc = sqlx_open(c->url, &w->db, err, sizeof err);
    if (rc < 0) {
        if (!w->lost_logged) {
            char m[256];
            log_warn(TAG,
                     "cannot connect to the database (%s); terminals are served here, "
                     "retrying",
                     cluster__oneline(err, m, sizeof m));
            w->lost_logged = 1;
            w->lost_ns = time_mono_ns();
        }
        w->db = NULL;
        return rc;
    }
    sqlx_set_busy_timeout(w->db, 5000);
    if ((rc = store_pg_nodes_setup(w->db)) < 0 || (rc = heartbeat(w)) < 0) {
        lost(w, rc);
        return rc;
    }
    uv_mutex_lock(&c->mu);
    c->worker_up = 1;
    uv_mutex_unlock(&c->mu);
    if (w->lost_logged) {
        log_info(TAG, "database back after %.1f s", (double)(time_mono_ns() - w->lost_ns) / 1e9);
        w->lost_logged = 0;
    }
    w->next_hb = time_mono_ns() + (int64_t)c->heartbeat_s * S;
    return 0;
}

/* Opens the LISTEN connection and hands it to the loop. */
static int open_listen(wk_t *w)
{
    cluster_t *c = w->c;
    sqlx_t *l = NULL;
    char err[256];
    int rc = sqlx_open(c->url, &l, err, sizeof err);
    if (rc == 0 && (rc = store_pg_listen(l)) < 0)
        sqlx_close(l);
    if (rc < 0)
        return rc;
    out_t *o = xcalloc(1, sizeof *o);
    o->kind = OUT_LISTEN;
    o->listen = l;
    cluster__post(c, o);
    w->need_listen = 0;
    /* anything said before LISTEN took effect is lost: look again */
    uv_mutex_lock(&c->mu);
    c->resync = 1;
    uv_mutex_unlock(&c->mu);
    return 0;
}

/* Waits up to ms for a stop (or anything else to do). */
static void nap(cluster_t *c, int64_t ms)
{
    uv_mutex_lock(&c->mu);
    if (!c->stopping)
        uv_cond_timedwait(&c->cv, &c->mu, (uint64_t)ms * 1000000u);
    uv_mutex_unlock(&c->mu);
}

void cluster__worker(void *arg)
{
    wk_t w = {.c = arg, .need_listen = 1, .live_cap = 1024};
    cluster_t *c = w.c;
    w.live = xmalloc(w.live_cap * sizeof *w.live);
    int64_t backoff = BACKOFF_MIN_MS;
    for (;;) {
        uv_mutex_lock(&c->mu);
        int stopping = c->stopping;
        if (!w.db) { /* requests cannot be applied now: the registry keeps what they say */
            for (size_t i = 0; i < c->qlen; i++)
                free(c->q[(c->qhead + i) % c->queue_max].state);
            c->st.requests_dropped += c->qlen;
            c->qhead = c->qlen = 0;
            c->resync = 1;
        }
        uv_mutex_unlock(&c->mu);
        if (!w.db) {
            if (stopping)
                break; /* not connected: the other nodes see this one's heartbeat go stale */
            if (connect_db(&w) < 0) {
                nap(c, backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
        }
        if (w.need_listen && !stopping) {
            int rc = open_listen(&w);
            if (rc < 0) { /* (e.g. the server's connection limit): wait as for a connect */
                lost(&w, rc);
                nap(c, backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
        }
        backoff = BACKOFF_MIN_MS; /* both connections up */
        /* the next thing to do: a request, a resync, the stop, or the heartbeat */
        req_t r = {0};
        int what = 0; /* 1 request, 2 resync, 3 stop, 4 heartbeat */
        uv_mutex_lock(&c->mu);
        for (;;) {
            if (c->listen_lost && !c->stopping) {
                c->listen_lost = 0;
                w.need_listen = 1;
                break;
            }
            if (c->qlen) {
                r = c->q[c->qhead];
                c->qhead = (c->qhead + 1) % c->queue_max;
                c->qlen--;
                what = 1;
                break;
            }
            if (c->resync) {
                c->resync = 0;
                what = 2;
                break;
            }
            if (c->stopping) {
                what = 3;
                break;
            }
            int64_t wait = w.next_hb - time_mono_ns();
            if (wait <= 0) {
                what = 4;
                break;
            }
            uv_cond_timedwait(&c->cv, &c->mu, (uint64_t)wait);
        }
        uv_mutex_unlock(&c->mu);
        int rc = 0;
        switch (what) {
        case 1:
            rc = apply(&w, &r);
            free(r.state);
            break;
        case 2:
            rc = resync(&w);
            break;
        case 3: {
            int n = store_pg_node_leave(w.db, c->node);
            if (n >= 0)
                log_info(TAG, "node %s left the cluster (%d session(s) released)", c->node, n);
            else {
                char m[256];
                log_warn(TAG, "node %s could not remove its rows: %s", c->node,
                         cluster__oneline(sqlx_errmsg(w.db), m, sizeof m));
            }
            sqlx_close(w.db);
            w.db = NULL;
            goto out;
        }
        case 4:
            rc = heartbeat(&w);
            w.next_hb = time_mono_ns() + (int64_t)c->heartbeat_s * S;
            if (w.resync_later && rc >= 0) {
                w.resync_later = 0;
                uv_mutex_lock(&c->mu);
                c->resync = 1;
                uv_mutex_unlock(&c->mu);
            }
            break;
        default:
            break;
        }
        if (rc < 0) {
            if (fatal(rc))
                lost(&w, rc);
            else {
                /* e.g. a lock wait over the busy timeout: what it was to do is made good by a
                 * resynchronisation after the next heartbeat (not at once: no busy loop while
                 * the statement keeps failing) */
                char m[256];
                log_limited(LOG_WARN, TAG, "a statement failed: %s (%s)", err_str(rc),
                            cluster__oneline(sqlx_errmsg(w.db), m, sizeof m));
                if (what != 4)
                    w.resync_later = 1;
            }
        }
    }
out:
    uv_mutex_lock(&c->mu);
    c->worker_up = 0;
    uv_mutex_unlock(&c->mu);
    sqlx_close(w.db);
    free(w.live);
}
