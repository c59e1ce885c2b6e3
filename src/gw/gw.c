/* Terminal gateway: start/stop, store completions, periodic work, registry and stats. The
 * sessions, handshake, blocks and commands live in the files named in internal.h. */
#include "internal.h"

#include "core/err.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */

void gw_opts_default(gw_opts_t *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->host, sizeof o->host, "0.0.0.0");
    o->port = 7100;
    o->heartbeat_s = 30;
    o->ack_window = 64;
    o->handshake_timeout_ms = 10000;
    o->max_connections = 19000;
    o->max_per_ip = 0; /* = max_connections */
    o->max_hs_per_ip = 256;
    o->auth_fail_per_ip = 600;
    o->auth_fail_per_id = 5;
    o->max_block_bytes = 256 * 1024;
    o->inflight_high = 64u << 20;
    o->inflight_low = 32u << 20;
    o->max_reassembly = 128u << 20;
    o->max_write_queue = 1u << 20;
    o->command_ttl_ns = 24LL * 3600 * 1000000000LL;
    o->cmd_max_pending = 100;
    o->cmd_max_inflight = 16;
    o->cmd_create_timeout_ns = 30 * 1000000000LL;
}

/* Frees a map whose values are malloc'ed (terms, authfail). */
void gw__free_map(hmap_t *m)
{
    size_t pos = 0;
    const char *k;
    void *v;
    while (hmap_next(m, &pos, &k, &v))
        free(v);
    hmap_free(m);
}

void gw__maybe_finish_stop(gw_t *g)
{
    if (g->stopping && g->open_handles == 0 && g->stop_done) {
        void (*cb)(void *) = g->stop_done;
        g->stop_done = NULL;
        cb(g->stop_ud);
    }
}

static void plain_close_cb(uv_handle_t *h)
{
    gw_t *g = h->data;
    g->open_handles--;
    gw__maybe_finish_stop(g);
}

/* ---- store completions ------------------------------------------------------------------------
 */

/* Writer thread: only queue and wake the loop. */
static void store_done(store_item_t *batch, void *ud)
{
    gw_t *g = ud;
    store_item_t *tail = batch;
    while (tail && tail->next)
        tail = tail->next;
    uv_mutex_lock(&g->done_lock);
    if (g->done_tail)
        g->done_tail->next = batch;
    else
        g->done_head = batch;
    g->done_tail = tail;
    uv_mutex_unlock(&g->done_lock);
    uv_async_send(&g->async);
}

static void process_done(gw_t *g)
{
    uv_mutex_lock(&g->done_lock);
    store_item_t *it = g->done_head;
    g->done_head = g->done_tail = NULL;
    uv_mutex_unlock(&g->done_lock);
    cmd_req_list_t reqs_done = {NULL, NULL};
    /* Failures are summarised, one line each for blocks and for the rest (issue 10: a full
     * disk at shutdown fails every queued item, thousands of lines otherwise). */
    uint64_t failed0 = g->st_.blocks_failed;
    size_t other_failed = 0;
    int block_err = 0, other_err = 0;
    char first_tid[STORE_ID_MAX + 1] = "";
    while (it) {
        store_item_t *next = it->next;
        if (it->kind == STORE_ITEM_BLOCK) {
            gw__block_done(g, it);
            if (it->result < 0 && !block_err) {
                block_err = it->result;
                snprintf(first_tid, sizeof first_tid, "%s", it->terminal_id);
            }
        } else if (gw__command_item_done(g, it, &reqs_done)) {
            /* a command creation, expiry or update (commands.c) */
        } else if (it->result < 0) {
            log_debug(it->terminal_id, "store item kind %d failed: %s", it->kind,
                      err_str(it->result));
            other_failed++;
            other_err = it->result;
        }
        store_item_free(it);
        it = next;
    }
    if (g->st_.blocks_failed != failed0)
        log_error(NULL,
                  "%llu blocks not stored (%s; first of terminal %s): not acknowledged, the "
                  "terminals re-send them",
                  (unsigned long long)(g->st_.blocks_failed - failed0), err_str(block_err),
                  first_tid);
    if (other_failed)
        log_warn(NULL, "%zu other store items (sessions, status, aggregates) not stored: %s",
                 other_failed, err_str(other_err));
    gw__send_acks(g);
    gw__finish_cmd_reqs(g, reqs_done.head);
    gw__check_pressure(g);
}

static void async_cb(uv_async_t *a)
{
    process_done(a->data);
}

/* ---- periodic work ----------------------------------------------------------------------------
 */

static void publish_changed(gw_t *g);
static void publish_stats(gw_t *g, int full);

static void tick_cb(uv_timer_t *timer)
{
    gw_t *g = timer->data;
    gw__sessions_tick(g);
    if (g->stopping) {
        /* After gw_stop the tick only enforces the close grace; it ends with the last session. */
        if (!g->sessions && !uv_is_closing((uv_handle_t *)&g->tick))
            uv_close((uv_handle_t *)&g->tick, plain_close_cb);
        return;
    }
    int64_t wall = time_utc_ns();
    int second = wall - g->last_poll_ns >= 1000000000LL;
    gw__commands_tick(g, wall); /* (updates last_poll_ns) */
    if (second) {
        gw__check_credentials(g);
        log_limited_flush(); /* "suppressed N" summaries of sources that went quiet */
    }
    gw__check_pressure(g);
    publish_changed(g);
}

/* ---- start/stop -------------------------------------------------------------------------------
 */

/* Frees what gw_start allocated before it failed (nothing of it is on the loop any more). */
static void start_failed_free(gw_t *g)
{
    hmap_free(&g->terms);
    hmap_free(&g->per_ip);
    hmap_free(&g->hs_ip);
    hmap_free(&g->authfail);
    hmap_free(&g->pub_terms);
    uv_mutex_destroy(&g->done_lock);
    uv_mutex_destroy(&g->pub_lock);
    free(g);
}

/* The listener of a failed start is closed: libuv may touch it until this callback, so the gateway
 * (which holds it) is freed only here. */
static void start_failed_close_cb(uv_handle_t *h)
{
    start_failed_free(h->data);
}

int gw_start(uv_loop_t *loop, store_t *st, const gw_opts_t *opts, gw_t **out, char *err,
             size_t errlen)
{
    gw_t *g = xcalloc(1, sizeof *g);
    int rc;
    g->loop = loop;
    g->st = st;
    g->o = *opts;
    hmap_init(&g->terms);
    hmap_init(&g->per_ip);
    hmap_init(&g->hs_ip);
    hmap_init(&g->authfail);
    hmap_init(&g->pub_terms);
    uv_mutex_init(&g->done_lock);
    uv_mutex_init(&g->pub_lock);
    g->loop_thread = uv_thread_self();
    g->cookie_base = (uint64_t)(time_utc_ns() / 1000000000LL) << 32;
    struct sockaddr_storage addr;
    if (strchr(g->o.host, ':'))
        rc = uv_ip6_addr(g->o.host, g->o.port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(g->o.host, g->o.port, (struct sockaddr_in *)&addr);
    if (rc < 0) {
        snprintf(err, errlen, "invalid terminal listen address %s", g->o.host);
        goto fail;
    }
    rc = uv_tcp_init(loop, &g->listener);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the terminal listener: %s", uv_strerror(rc));
        goto fail;
    }
    g->listener.data = g;
    g->open_handles++;
    rc = uv_tcp_bind(&g->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&g->listener, 4096, gw__on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen for terminals on %s:%d: %s", g->o.host, g->o.port,
                 uv_strerror(rc));
        goto fail_listener;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&g->listener, (struct sockaddr *)&bound, &blen);
    g->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    rc = store_writer_start(st, store_done, g);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the store writer: %s", err_str(rc));
        goto fail_listener;
    }
    /* New commands are those created from now on (queued ones are found at each login). */
    store_command_max_id(st, &g->last_cmd_id);
    store_credentials_version(st, &g->cred_version);
    uv_async_init(loop, &g->async, async_cb);
    g->async.data = g;
    g->open_handles++;
    uv_timer_init(loop, &g->tick);
    g->tick.data = g;
    g->open_handles++;
    uv_timer_start(&g->tick, tick_cb, 250, 250);
    publish_stats(g, 1);
    *out = g;
    return 0;
fail_listener:
    uv_close((uv_handle_t *)&g->listener, start_failed_close_cb);
    return rc < 0 ? rc : GS_EINVAL;
fail:
    start_failed_free(g);
    return rc < 0 ? rc : GS_EINVAL;
}

int gw_port(const gw_t *g)
{
    return g->port;
}

void gw_stop(gw_t *g, void (*done)(void *ud), void *ud)
{
    if (g->stopping)
        return;
    g->stopping = 1;
    g->stop_done = done;
    g->stop_ud = ud;
    uv_close((uv_handle_t *)&g->listener, plain_close_cb);
    /* The tick keeps running until the last session is gone: it closes sessions whose peer does
     * not take their final bytes within the grace period (see tick_cb). */
    for (sess_t *s = g->sessions; s; s = s->next) {
        gw__update_reading(s); /* stopping: no more input */
        if (s->state == S_ONLINE)
            gw__log_session_close(s, "server shutdown");
    }
    /* Commit everything received, then tell the terminals before saying goodbye. */
    store_writer_stop(g->st);
    process_done(g);
    for (sess_t *s = g->sessions, *next; s; s = next) {
        next = s->next;
        if (s->state == S_ONLINE)
            gw__send_reject(s, 1, GSTP_REJ_SHUTDOWN, 5, "server shutting down");
        gw__sess_close(s, "server shutdown");
    }
    uv_close((uv_handle_t *)&g->async, plain_close_cb);
    publish_changed(g); /* the final durable seqs and counters */
    gw__maybe_finish_stop(g);
}

void gw_free(gw_t *g)
{
    if (!g)
        return;
    gw__free_map(&g->terms);
    hmap_free(&g->per_ip);
    hmap_free(&g->hs_ip);
    gw__free_map(&g->authfail);
    gw__free_map(&g->pub_terms); /* the entries; pub_arr holds the same pointers */
    free(g->pub_arr);
    uv_mutex_destroy(&g->pub_lock);
    gw__commands_free(g);
    /* Anything the writer delivered after the last processing (none after gw_stop). */
    store_item_t *it = g->done_head;
    while (it) {
        store_item_t *next = it->next;
        store_item_free(it);
        it = next;
    }
    uv_mutex_destroy(&g->done_lock);
    free(g);
}

/* ---- registry ---------------------------------------------------------------------------------
 */

/* Fills *out from the live state of t (loop thread). */
static void term_fill(const term_t *t, gw_term_info_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", t->id);
    out->online = t->sess != NULL;
    snprintf(out->remote, sizeof out->remote, "%s", t->remote);
    out->connected_since_ns = t->connected_since_ns;
    out->last_seen_ns = t->last_seen_ns;
    out->frames = t->frames;
    out->blocks = t->blocks;
    out->bytes = t->bytes;
    out->sessions = t->sessions;
    out->reconnects = t->sessions ? t->sessions - 1 : 0;
    out->durable_seq = t->durable_seq;
    out->duplicates = t->duplicates;
    out->sample_rate = t->sample_rate;
    out->nominal_hz = t->nominal_hz;
    out->nchannels = t->nchannels;
    out->hello_vt_ratio = t->hello_vt;
    out->hello_ct_ratio = t->hello_ct;
    out->config_conflict = t->config_conflict;
    snprintf(out->fw_version, sizeof out->fw_version, "%s", t->fw);
    snprintf(out->hw_version, sizeof out->hw_version, "%s", t->hw);
    out->has_status = t->has_status;
    out->status_received_ns = t->status_rx_ns;
    out->status = t->status;
}

/* Fills *out from the live counters (loop thread). */
static void stats_fill(gw_t *g, gw_stats_t *out)
{
    store_queue_depth(g->st, &g->st_.store_queue_items, &g->st_.store_queue_bytes);
    g->st_.inflight_bytes = g->reasm_bytes + g->backlog_bytes;
    g->st_.paused_reading = 0;
    for (sess_t *s = g->sessions; s; s = s->next)
        if (s->state == S_ONLINE && !s->reading)
            g->st_.paused_reading++;
    *out = g->st_;
}

static int on_loop_thread(gw_t *g)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &g->loop_thread);
}

void gw__publish_term(gw_t *g, term_t *t)
{
    gw_term_info_t ti; /* filled outside the lock: the lock covers one memcpy */
    term_fill(t, &ti);
    t->pub_dirty = 0;
    t->pub_frames = t->frames;
    t->pub_bytes = t->bytes;
    t->pub_online = ti.online;
    uv_mutex_lock(&g->pub_lock);
    gw_term_info_t *p = t->pub;
    if (!p) { /* once per terminal and gateway lifetime */
        p = xmalloc(sizeof *p);
        hmap_put(&g->pub_terms, t->id, p);
        if (g->pub_n == g->pub_cap) {
            g->pub_cap = g->pub_cap ? 2 * g->pub_cap : 64;
            g->pub_arr = xrealloc(g->pub_arr, g->pub_cap * sizeof *g->pub_arr);
        }
        g->pub_arr[g->pub_n++] = p;
        t->pub = p; /* written under the lock, read only by this thread */
    }
    *p = ti;
    uv_mutex_unlock(&g->pub_lock);
}

/* The tick's publication of a terminal whose session did not change: only the fields that move
 * with traffic and commits (everything else changes at login, logout or STATUS, which publish
 * in full). About a tenth of a full publication: no strings, no lookup. */
static void publish_counters(gw_t *g, term_t *t)
{
    if (!t->pub) {
        gw__publish_term(g, t);
        return;
    }
    t->pub_dirty = 0;
    t->pub_frames = t->frames;
    t->pub_bytes = t->bytes;
    uv_mutex_lock(&g->pub_lock);
    gw_term_info_t *p = t->pub;
    p->last_seen_ns = t->last_seen_ns;
    p->frames = t->frames;
    p->blocks = t->blocks;
    p->bytes = t->bytes;
    p->durable_seq = t->durable_seq;
    p->duplicates = t->duplicates;
    uv_mutex_unlock(&g->pub_lock);
}

void gw__term_event(gw_t *g, term_t *t, int event)
{
    gw__publish_term(g, t);
    if (g->term_cb) {
        gw_term_info_t ti;
        term_fill(t, &ti);
        g->term_cb(g->term_ud, event, &ti);
    }
}

void gw_set_term_observer(gw_t *g, gw_term_cb cb, void *ud)
{
    g->term_cb = cb;
    g->term_ud = ud;
}

void gw__session_event(gw_t *g, sess_t *s, int event)
{
    if (!g->sess_cb || !s->term)
        return;
    gw_term_info_t ti;
    term_fill(s->term, &ti);
    g->sess_cb(g->sess_ud, event, &ti, g->cookie_base | s->id);
}

void gw_set_session_observer(gw_t *g, gw_session_cb cb, void *ud)
{
    g->sess_cb = cb;
    g->sess_ud = ud;
}

int gw_session_end(gw_t *g, const char *terminal_id, uint64_t session_id, uint16_t reason,
                   const char *msg)
{
    term_t *t = hmap_get(&g->terms, terminal_id);
    sess_t *s = t ? t->sess : NULL;
    if (!s || s->state != S_ONLINE || (g->cookie_base | s->id) != session_id)
        return 0;
    gw__send_reject(s, 1, reason, 0, msg);
    gw__sess_close(s, reason == GSTP_REJ_REPLACED ? "replaced on another node" : msg);
    return 1;
}

int gw_commands_check(gw_t *g, const char *terminal_id)
{
    term_t *t = hmap_get(&g->terms, terminal_id);
    if (g->stopping || !t || !t->sess || t->sess->state != S_ONLINE)
        return 0;
    gw__deliver_new_commands(g);
    return 1;
}

void gw_set_command_observer(gw_t *g, gw_cmd_cb cb, void *ud)
{
    g->cmd_cb = cb;
    g->cmd_ud = ud;
}

/* Copies the counters for other threads; `full` recounts the sessions paused by backpressure
 * (a pass over every session: the tick's job) where a login or logout only copies, so that a
 * reconnect storm of n terminals costs n copies, not n passes over n sessions. */
static void publish_stats(gw_t *g, int full)
{
    gw_stats_t st; /* about 4.5 KB: filled outside the lock, copied under it */
    if (full) {
        stats_fill(g, &st);
    } else {
        g->st_.inflight_bytes = g->reasm_bytes + g->backlog_bytes;
        st = g->st_; /* paused_reading as of the last tick */
    }
    uv_mutex_lock(&g->pub_lock);
    g->pub_stats = st;
    uv_mutex_unlock(&g->pub_lock);
}

void gw__publish_stats(gw_t *g)
{
    publish_stats(g, 0);
}

/* The tick's publication: every terminal whose state moved since it was last published (a frame
 * received, its durable seq advanced, online changed), then the counters. Terminals that are
 * quiet cost one comparison each. */
static void publish_changed(gw_t *g)
{
    const char *k;
    void *v;
    for (size_t pos = 0; hmap_next(&g->terms, &pos, &k, &v);) {
        term_t *t = v;
        if (t->pub_online != (t->sess != NULL))
            gw__publish_term(g, t); /* (login and logout publish at once; this is a backstop) */
        else if (t->pub_dirty || t->pub_frames != t->frames || t->pub_bytes != t->bytes)
            publish_counters(g, t);
    }
    publish_stats(g, 1);
}

int gw_term_info(gw_t *g, const char *id, gw_term_info_t *out)
{
    if (on_loop_thread(g)) {
        term_t *t = hmap_get(&g->terms, id);
        if (!t)
            return GS_ENOTFOUND;
        term_fill(t, out);
        return 0;
    }
    int rc = GS_ENOTFOUND;
    uv_mutex_lock(&g->pub_lock);
    const gw_term_info_t *p = hmap_get(&g->pub_terms, id);
    if (p) {
        *out = *p;
        rc = 0;
    }
    uv_mutex_unlock(&g->pub_lock);
    return rc;
}

/* Entries copied per hold of pub_lock: bounds how long the loop can wait for the lock to publish
 * while a reader lists a large fleet (256 x ~0.5 KB, a few microseconds). */
#define LIST_CHUNK 256

int gw_term_list(gw_t *g, gw_term_info_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (on_loop_thread(g))
        publish_changed(g); /* the loop's own view is never stale */
    uv_mutex_lock(&g->pub_lock);
    size_t total = g->pub_n;
    uv_mutex_unlock(&g->pub_lock);
    if (total == 0)
        return 0;
    /* Entries are only ever appended, so the first `total` stay where they are. */
    gw_term_info_t *a = xmalloc(total * sizeof *a);
    for (size_t i = 0; i < total;) {
        uv_mutex_lock(&g->pub_lock);
        for (size_t end = i + LIST_CHUNK; i < total && i < end; i++)
            a[i] = *g->pub_arr[i];
        uv_mutex_unlock(&g->pub_lock);
    }
    *out = a;
    *n = total;
    return 0;
}

void gw_stats(gw_t *g, gw_stats_t *out)
{
    if (on_loop_thread(g)) {
        stats_fill(g, out);
        return;
    }
    uv_mutex_lock(&g->pub_lock);
    *out = g->pub_stats;
    uv_mutex_unlock(&g->pub_lock);
    /* The store's queue has a lock of its own: read it fresh. */
    store_queue_depth(g->st, &out->store_queue_items, &out->store_queue_bytes);
}

void gw_set_block_observer(gw_t *g, gw_block_cb cb, void *ud)
{
    g->block_cb = cb;
    g->block_ud = ud;
}
