/* Terminal gateway: sessions, handshake, reassembly, durable acks, commands, liveness. */
#include "gw.h"

#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_SIZE  (64 * 1024)
#define DEC_BUF_SIZE   (GSTP_MAX_FRAME + 1024)
#define CLOSE_GRACE_NS (5 * 1000000000LL)
#define AUTH_WINDOW_NS (60 * 1000000000LL)
/* Failed-login table entries before it is forgotten (tests/unit/test_gw.c builds gw.c with a
 * small value to reach the limit). */
#ifndef AUTH_MAP_MAX
#define AUTH_MAP_MAX 100000
#endif
#define TIMESYNC_SLOTS 8
/* Missed heartbeats: BYE DEAD when this many PINGs in a row are unanswered at the moment the next
 * one would be sent (protocol.md 9.1), i.e. WELCOME + (DEAD_PINGS + 1) x heartbeat_s. */
#define DEAD_PINGS 3
/* Server-computed tags appended to a TIME_SYNC result (outside the terminal's tag range). */
#define TAG_OFFSET_NS 100
#define TAG_RTT_NS    101
/* A command sent and not answered within this time stops counting against the in-flight limit
 * (a terminal that ignores commands must not stop delivery for good). */
#define CMD_ANSWER_TIMEOUT_NS (30 * 1000000000LL)
/* New commands read per look (once a second and after the writer's creations): a burst created
 * by a script is picked up over several looks, never read into memory at once. */
#define NEWCMD_PAGE 1000

enum { S_HELLO, S_AUTH, S_ONLINE, S_CLOSING };

typedef struct sess sess_t;

/* A terminal known to the registry. Created on first successful login, never freed before the
 * gateway (so store callbacks and API snapshots can refer to it by id safely). */
typedef struct term {
    char id[GSTP_MAX_ID + 1];
    sess_t *sess; /* current session, NULL when offline */
    char remote[64];
    int64_t connected_since_ns, last_seen_ns;
    uint64_t frames, blocks, bytes, sessions, duplicates;
    uint64_t durable_seq;   /* highest seq the store reported committed */
    uint64_t submitted_seq; /* highest seq handed to the store (>= durable_seq) */
    uint32_t inflight;      /* blocks handed to the store and not yet reported back */
    int ack_dirty;          /* an ACK should be sent at the end of this batch */
    struct term *dirty_next;
    uint32_t sample_rate;
    int nominal_hz, nchannels;
    double hello_vt, hello_ct; /* ratios the terminal reported at its last login, 0 = none */
    int config_conflict;       /* they differ from the provisioned (authoritative) ratios */
    char fw[GSTP_MAX_STR + 1], hw[GSTP_MAX_STR + 1];
    int has_status;
    int64_t status_rx_ns;
    gstp_status_t status;
    uint8_t secret_fp[16]; /* BLAKE2b of the secret the current session logged in with */
} term_t;

typedef struct {
    int64_t window_start;
    int count;
} authfail_t;

struct sess {
    uv_tcp_t tcp; /* must stay first: handle->data is not used, we cast */
    gw_t *gw;
    sess_t *prev, *next;
    int state;
    int handle_closing; /* uv_close called */
    int reading;
    int counted_ip;
    int counted_hs;     /* counted in the address's unauthenticated handshakes */
    int id_provisioned; /* HELLO named a provisioned id: its failures count for the id too */
    int close_logged;
    int close_asap; /* close at the next tick (see close_asap()) */
    uint32_t id;
    char remote[64];
    char ip[48]; /* address key for limits: IPv4 text, or the IPv6 /64 prefix */
    term_t *term;
    int64_t accepted_ns, last_rx_ns, last_ping_ns, closing_since_ns;
    uint32_t ping_token; /* token of the last PING sent (incrementing) */
    int pings_out;       /* PINGs in a row not answered yet (protocol.md 9.1) */
    uint8_t version;     /* session version (from CHALLENGE on, every frame carries it) */
    gstp_decoder_t dec;
    uint8_t *decbuf;
    /* handshake */
    uint8_t *hello; /* copy of the HELLO payload for the MAC */
    size_t hello_len;
    char hello_id[GSTP_MAX_ID + 1];
    uint8_t secret[GSTP_SECRET_LEN];
    uint8_t nonce[GSTP_NONCE_LEN];
    uint64_t store_durable; /* durable seq read from the store at HELLO */
    uint8_t secret_fp[16];  /* fingerprint of the secret, kept after the secret is wiped */
    uint32_t sample_rate;
    int nominal_hz, nchannels;
    double hello_vt, hello_ct, prov_vt, prov_ct; /* HELLO and provisioned ratios */
    char fw[GSTP_MAX_STR + 1], hw[GSTP_MAX_STR + 1];
    gw_chan_t chans[GSTP_MAX_CHANNELS]; /* HELLO channels, by index */
    uint16_t chan_present;              /* bit i: chans[i] described */
    double declared_v;
    /* block reassembly */
    uint8_t *blk;
    size_t blk_len, blk_size;
    int blk_type;
    gstp_block_hdr_t blk_hdr;
    gstp_event_hdr_t blk_ev;
    uint8_t blk_next_chunk;
    uint32_t blk_next_sample;
    /* counters */
    uint64_t frames, bytes, blocks;
    /* TIME_SYNC commands in flight: server send time by command id */
    int64_t ts_id[TIMESYNC_SLOTS], ts_tx[TIMESYNC_SLOTS];
    int ts_pos;
    /* command delivery (see send_pending_commands) */
    int64_t cmd_cursor; /* every pending command with id <= cursor was sent in this session */
    int cmd_sweep_done; /* the pending queue was read to its end; later ones come by the poll */
    int cmd_ninflight;
    struct cmd_inflight *cmd_inflight; /* GW_CMD_INFLIGHT_MAX entries, allocated at first use */
    uv_shutdown_t shut;
    char close_reason[64];
};

struct gw {
    uv_loop_t *loop;
    store_t *st;
    gw_opts_t o;
    uv_tcp_t listener;
    uv_timer_t tick;
    uv_async_t async;
    int port;
    int stopping;
    int open_handles; /* listener, tick, async + sessions not yet closed */
    void (*stop_done)(void *ud);
    void *stop_ud;
    sess_t *sessions;     /* all sessions, any state */
    gw_block_cb block_cb; /* block observer (analysis), may be NULL */
    void *block_ud;
    hmap_t terms;    /* id -> term_t */
    hmap_t per_ip;   /* ip -> (uintptr_t) connection count */
    hmap_t hs_ip;    /* ip -> (uintptr_t) sessions still in the handshake */
    hmap_t authfail; /* "i:<ip>" / "t:<id>" -> authfail_t */
    uint32_t next_sess_id;
    uint64_t cookie_base; /* start time in the high half: session ids unique across restarts */
    int64_t last_cmd_id;
    int64_t last_poll_ns;
    int64_t cred_version; /* store_credentials_version seen last */
    int paused;
    size_t backlog_bytes; /* block bytes handed to the store and not yet committed */
    size_t reasm_bytes;   /* block bytes under reassembly */
    uint8_t readbuf[READ_BUF_SIZE];
    int readbuf_busy;
    /* committed batches from the writer thread */
    uv_mutex_t done_lock;
    store_item_t *done_head, *done_tail;
    term_t *dirty;
    gw_stats_t st_;
    /* command creations handed to the writer and not yet reported (gw_command_submit) */
    struct cmd_req *cmd_reqs;
    /* a STORE_ITEM_COMMAND_EXPIRE is with the writer */
    int expire_pending;
};

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

static const char *who(const sess_t *s)
{
    if (s->term)
        return s->term->id;
    if (s->hello_id[0])
        return s->hello_id;
    return s->remote;
}

static void handle_close_cb(uv_handle_t *h);
static void plain_close_cb(uv_handle_t *h);
static void sess_close(sess_t *s, const char *reason);
static void update_reading(sess_t *s);
static void send_pending_commands(sess_t *s);

/* ---- output -----------------------------------------------------------------------------------
 */

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
    uint8_t data[];
} wreq_t;

static void write_cb(uv_write_t *req, int status)
{
    (void)status; /* errors surface on the read side or at close */
    free(req);
}

/* Marks a session to be closed by the next tick instead of closing it in the middle of a call
 * chain (callers may still use s and s->term after a write); it stops reading and writing at
 * once, so it holds no more memory meanwhile. */
static void close_asap(sess_t *s, const char *reason)
{
    if (s->close_asap || s->state == S_CLOSING)
        return;
    s->close_asap = 1;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    if (s->reading) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = 0;
    }
}

/* Queues one encoded frame. A peer that does not take its output (more than max_write_queue
 * bytes pending) gets its session closed: bounded memory per session. */
static void sess_write(sess_t *s, const uint8_t *frame, int len)
{
    if (len <= 0 || s->handle_closing || s->close_asap)
        return;
    wreq_t *w = xmalloc(sizeof *w + (size_t)len);
    memcpy(w->data, frame, (size_t)len);
    w->buf = uv_buf_init((char *)w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &w->buf, 1, write_cb);
    if (rc < 0) {
        free(w);
        if (log_get_level() >= LOG_DEBUG)
            log_limited(LOG_DEBUG, s->ip, "%s: write failed: %s", who(s), uv_strerror(rc));
        close_asap(s, "write error");
        return;
    }
    gw_t *g = s->gw;
    g->st_.bytes_tx += (uint64_t)len;
    g->st_.frames_tx[frame[3]]++;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) > g->o.max_write_queue &&
        s->state != S_CLOSING) {
        log_limited(LOG_WARN, s->ip, "%s: peer not reading (%zu bytes queued), closing", who(s),
                    uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp));
        g->st_.sessions_stalled++;
        close_asap(s, "stalled");
    }
}

#define SEND(s, fn, msg)                                                                           \
    do {                                                                                           \
        uint8_t fb_[GSTP_MAX_FRAME];                                                               \
        int n_ = fn(fb_, sizeof fb_, msg);                                                         \
        if (n_ < 0)                                                                                \
            log_error(who(s), "%s failed: %d", #fn, n_);                                           \
        else                                                                                       \
            sess_write(s, fb_, n_);                                                                \
    } while (0)

static void send_reject(sess_t *s, int frame_bye, uint16_t reason, uint16_t retry, const char *msg)
{
    gstp_reject_t r;
    memset(&r, 0, sizeof r);
    r.reason = reason;
    r.retry_after_s = retry;
    snprintf(r.message, sizeof r.message, "%s", msg);
    if (frame_bye) {
        SEND(s, gstp_encode_bye, &r);
    } else {
        SEND(s, gstp_encode_reject, &r);
        if (reason < 16)
            s->gw->st_.reject_by_reason[reason]++;
    }
}

static void send_error(sess_t *s, uint16_t code, uint8_t type, const char *msg)
{
    gstp_error_t e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.frame_type = type;
    snprintf(e.message, sizeof e.message, "%s", msg);
    SEND(s, gstp_encode_error, &e);
}

static void send_ack(sess_t *s, uint64_t seq)
{
    gstp_ack_t a = {.seq = seq};
    SEND(s, gstp_encode_ack, &a);
    s->gw->st_.acks_sent++;
}

/* Ends the handshake with a REJECT and closes. Logged rate-limited per address: every line here
 * can be caused by anyone who can connect. */
static void reject(sess_t *s, uint16_t reason, uint16_t retry, const char *msg)
{
    log_limited(LOG_WARN, s->ip, "login%s%s from %s rejected: %s (%s)",
                s->hello_id[0] ? " of " : "", s->hello_id, s->remote, gstp_reason_name(reason),
                msg);
    s->gw->st_.handshakes_failed++;
    send_reject(s, 0, reason, retry, msg);
    sess_close(s, gstp_reason_name(reason));
}

/* ---- session lifecycle ------------------------------------------------------------------------
 */

static void ip_count_add(hmap_t *m, const char *ip, int delta)
{
    uintptr_t n = (uintptr_t)hmap_get(m, ip);
    n = (uintptr_t)((intptr_t)n + delta);
    if (n == 0)
        hmap_del(m, ip);
    else
        hmap_put(m, ip, (void *)n);
}

/* The session has left the handshake (online or closing): it no longer counts against its
 * address's cap on concurrent unauthenticated sessions. */
static void hs_release(sess_t *s)
{
    if (s->counted_hs) {
        ip_count_add(&s->gw->hs_ip, s->ip, -1);
        s->counted_hs = 0;
    }
}

static void free_block(sess_t *s)
{
    if (s->blk) {
        s->gw->reasm_bytes -= s->blk_size;
        free(s->blk);
        s->blk = NULL;
    }
    s->blk_len = s->blk_size = 0;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    sess_t *s = req->data;
    (void)status;
    if (!s->handle_closing) {
        s->handle_closing = 1;
        uv_close((uv_handle_t *)&s->tcp, handle_close_cb);
    }
}

static void maybe_finish_stop(gw_t *g)
{
    if (g->stopping && g->open_handles == 0 && g->stop_done) {
        void (*cb)(void *) = g->stop_done;
        g->stop_done = NULL;
        cb(g->stop_ud);
    }
}

static void sess_free_cb(uv_handle_t *h)
{
    sess_t *s = (sess_t *)h;
    gw_t *g = s->gw;
    if (s->prev)
        s->prev->next = s->next;
    else
        g->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s->decbuf);
    free(s->hello);
    sodium_memzero(s->secret, sizeof s->secret); /* a handshake may end before AUTH wiped it */
    free(s->cmd_inflight);
    free(s);
    g->open_handles--;
    maybe_finish_stop(g);
}

static void handle_close_cb(uv_handle_t *h)
{
    sess_free_cb(h);
}

/* Writes the end of an online session to the sessions log (once). */
static void log_session_close(sess_t *s, const char *reason)
{
    if (s->close_logged || !s->term)
        return;
    s->close_logged = 1;
    store_item_t *it = store_item_new(STORE_ITEM_SESSION_CLOSE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", s->term->id);
    it->cookie = s->gw->cookie_base | s->id;
    it->when_ns = time_utc_ns();
    snprintf(it->reason, sizeof it->reason, "%s", reason);
    it->frames = (int64_t)s->frames;
    it->bytes = (int64_t)s->bytes;
    it->blocks = (int64_t)s->blocks;
    if (store_submit(s->gw->st, it) < 0)
        log_warn(s->term->id, "session log not written (store stopped)");
}

/* Moves a session to CLOSING: detaches it from its terminal, logs the session end, then lets
 * queued writes finish (shutdown) before the handle is closed. Idempotent. */
static void sess_close(sess_t *s, const char *reason)
{
    gw_t *g = s->gw;
    if (s->state == S_CLOSING)
        return;
    int was_online = s->state == S_ONLINE;
    s->state = S_CLOSING;
    s->closing_since_ns = time_mono_ns();
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    if (s->reading) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = 0;
    }
    free_block(s);
    if (s->counted_ip) {
        ip_count_add(&g->per_ip, s->ip, -1);
        s->counted_ip = 0;
    }
    hs_release(s);
    g->st_.connections_open--;
    if (was_online && s->term && s->term->sess == s) {
        term_t *t = s->term;
        t->sess = NULL;
        g->st_.online--;
        log_info(t->id, "offline (%s) after %llu frames, %llu blocks", reason,
                 (unsigned long long)s->frames, (unsigned long long)s->blocks);
        log_session_close(s, reason);
    } else if (log_get_level() >= LOG_DEBUG) {
        log_limited(LOG_DEBUG, s->ip, "%s: connection from %s closed (%s)", who(s), s->remote,
                    reason);
    }
    s->term = NULL;
    s->shut.data = s;
    if (uv_shutdown(&s->shut, (uv_stream_t *)&s->tcp, shutdown_cb) < 0) {
        s->handle_closing = 1;
        uv_close((uv_handle_t *)&s->tcp, handle_close_cb);
    }
}

/* ---- reading and backpressure -----------------------------------------------------------------
 */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sess_t *s = (sess_t *)h;
    gw_t *g = s->gw;
    (void)suggested;
    /* One shared buffer: the loop is single-threaded and read_cb consumes it completely. */
    if (g->readbuf_busy) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    g->readbuf_busy = 1;
    buf->base = (char *)g->readbuf;
    buf->len = sizeof g->readbuf;
}

static int want_read(const sess_t *s)
{
    const gw_t *g = s->gw;
    if (s->state == S_CLOSING || s->close_asap || g->stopping)
        return 0;
    if (s->state != S_ONLINE)
        return 1; /* handshakes never wait for the store */
    if (g->paused)
        return 0;
    if (s->term && s->term->inflight >= (uint32_t)g->o.ack_window)
        return 0;
    return 1;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void update_reading(sess_t *s)
{
    int want = want_read(s);
    if (want && !s->reading) {
        if (uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb) == 0)
            s->reading = 1;
    } else if (!want && s->reading && s->state != S_CLOSING) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = 0;
    }
}

/* Global backpressure: when block bytes handed to the store and not yet committed pass the high
 * mark, every online session stops reading (TCP flow control then slows the terminals); below
 * the low mark they resume. Only the store backlog counts: it drains by itself, whereas blocks
 * still being reassembled need more reading to complete (they are capped separately). */
static void check_pressure(gw_t *g)
{
    int was = g->paused;
    if (!g->paused && g->backlog_bytes > g->o.inflight_high)
        g->paused = 1;
    else if (g->paused && g->backlog_bytes < g->o.inflight_low)
        g->paused = 0;
    if (was != g->paused) {
        log_warn(NULL, "store backlog %zu bytes: %s reading from terminals", g->backlog_bytes,
                 g->paused ? "pausing" : "resuming");
        for (sess_t *s = g->sessions; s; s = s->next)
            update_reading(s);
    }
}

/* ---- handshake --------------------------------------------------------------------------------
 */

/* Frees a map whose values are malloc'ed (terms, authfail). */
static void free_map(hmap_t *m)
{
    size_t pos = 0;
    const char *k;
    void *v;
    while (hmap_next(m, &pos, &k, &v))
        free(v);
    hmap_free(m);
}

static authfail_t *authfail_get(gw_t *g, const char *prefix, const char *key, int create)
{
    char k[96];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    authfail_t *a = hmap_get(&g->authfail, k);
    int64_t now = time_mono_ns();
    if (a && now - a->window_start > AUTH_WINDOW_NS) {
        a->window_start = now;
        a->count = 0;
    }
    if (!a && create) {
        /* (login_failed made room first: never flushed here, where it would free entries the
         * caller already holds.) */
        a = xcalloc(1, sizeof *a);
        a->window_start = now;
        hmap_put(&g->authfail, k, a);
    }
    return a;
}

/* A handshake refused because of what the client sent (UNKNOWN_ID, BAD_AUTH, PROTOCOL, VERSION,
 * BAD_CONFIG, TIMEOUT) is a failed login of its address, and of its terminal id when the HELLO
 * named a provisioned one (unknown ids are not counted: they would fill the table). A source that
 * had already reached its limit in the current one-minute window gets REJECT RATE_LIMIT instead
 * of the reason, at the point where the handshake fails. This is the only place rate limiting
 * acts, so a terminal that proves its key (a correct AUTH) is never refused by it: a provisioned
 * id always gets its CHALLENGE and a correct MAC always gets WELCOME (protocol decision 6; a
 * carrier NAT's bad neighbours cannot lock out the good terminals behind the same address). */
static void login_failed(sess_t *s, uint16_t reason, const char *msg)
{
    gw_t *g = s->gw;
    /* Under a wide attack, old entries are forgotten rather than the table growing without
     * bound. That happens before either entry is looked up: flushing between the two lookups
     * would free the address's entry while it is still used below. */
    size_t need = (authfail_get(g, "i:", s->ip, 0) == NULL) +
                  (s->id_provisioned && authfail_get(g, "t:", s->hello_id, 0) == NULL);
    if (need && g->authfail.count + need > AUTH_MAP_MAX) {
        free_map(&g->authfail);
        hmap_init(&g->authfail);
    }
    authfail_t *ai = authfail_get(g, "i:", s->ip, 1);
    authfail_t *at = s->id_provisioned ? authfail_get(g, "t:", s->hello_id, 1) : NULL;
    int over = ai->count >= g->o.auth_fail_per_ip || (at && at->count >= g->o.auth_fail_per_id);
    ai->count++;
    if (at)
        at->count++;
    if (over)
        reject(s, GSTP_REJ_RATE_LIMIT, 60, "too many failed logins, retry later");
    else
        reject(s, reason, 0, msg);
}

/* Provisioned ratios are 1 when not provisioned (store.h); a ratio the terminal did not report
 * is 0. Float on the wire vs double in the store: compare to 1e-6 relative. */
static int ratio_conflict(double hello, double prov)
{
    if (hello <= 0 || prov == 1)
        return 0;
    double d = hello > prov ? hello - prov : prov - hello;
    return d > 1e-6 * (hello > prov ? hello : prov);
}

static void on_hello(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_hello_t h;
    char msg[GSTP_MAX_STR + 1];
    /* protocol.md 6.1: a HELLO that does not parse is PROTOCOL; BAD_CONFIG only for one that
     * parses but whose capabilities the server cannot use (GSTP_E_CONFIG, *h filled). */
    int prc = gstp_parse_hello(f, &h);
    if (prc < 0 && prc != GSTP_E_CONFIG) {
        g->st_.parse_errors++;
        login_failed(s, GSTP_REJ_PROTOCOL, "malformed HELLO");
        return;
    }
    snprintf(s->hello_id, sizeof s->hello_id, "%s", h.terminal_id);
    store_terminal_t t;
    int rc = store_terminal_get(g->st, h.terminal_id, &t);
    if (rc == GS_ENOTFOUND) {
        login_failed(s, GSTP_REJ_UNKNOWN_ID, "terminal not provisioned");
        return;
    }
    if (rc == GS_EAUTH) {
        /* Provisioned, but its stored secret cannot be unsealed (master key reset, tampered
         * row): no key can match, so it is a failed login, not a storage fault to retry; of
         * the id as well (decision 6). */
        s->id_provisioned = 1;
        login_failed(s, GSTP_REJ_BAD_AUTH, "no usable secret stored; rotate the terminal's secret");
        return;
    }
    if (rc < 0) {
        reject(s, GSTP_REJ_BUSY, 30, "server storage unavailable");
        return;
    }
    s->id_provisioned = 1;
    if (h.version_min > GSTP_VERSION) {
        sodium_memzero(t.secret, sizeof t.secret);
        login_failed(s, GSTP_REJ_VERSION, "no common protocol version (server speaks 1)");
        return;
    }
    if (prc == GSTP_E_CONFIG || h.nominal_hz != t.nominal_hz) {
        if (prc == GSTP_E_CONFIG)
            snprintf(msg, sizeof msg, "unusable sample rate, nominal frequency or channels");
        else /* protocol decision 10: the provisioned nominal frequency is authoritative */
            snprintf(msg, sizeof msg, "NOMINAL_HZ %d conflicts with provisioned %d", h.nominal_hz,
                     t.nominal_hz);
        sodium_memzero(t.secret, sizeof t.secret);
        login_failed(s, GSTP_REJ_BAD_CONFIG, msg);
        return;
    }
    s->version = h.version_max < GSTP_VERSION ? h.version_max : (uint8_t)GSTP_VERSION;
    memcpy(s->secret, t.secret, sizeof s->secret);
    crypto_generichash(s->secret_fp, sizeof s->secret_fp, t.secret, sizeof t.secret, NULL, 0);
    sodium_memzero(t.secret, sizeof t.secret);
    s->store_durable = t.durable_seq;
    s->sample_rate = h.sample_rate;
    s->nominal_hz = t.nominal_hz;
    s->nchannels = h.nchannels;
    s->declared_v = t.declared_v;
    s->hello_vt = h.vt_ratio;
    s->hello_ct = h.ct_ratio;
    s->prov_vt = t.vt_ratio;
    s->prov_ct = t.ct_ratio;
    s->chan_present = 0;
    for (int i = 0; i < h.nchannels; i++) {
        const gstp_channel_t *hc = &h.channels[i];
        if (hc->index >= GSTP_MAX_CHANNELS)
            continue; /* the parser bounds it; be safe anyway */
        s->chans[hc->index] = (gw_chan_t){.index = hc->index,
                                          .kind = hc->kind,
                                          .phase = hc->phase,
                                          .unit = hc->unit,
                                          .scale = hc->scale};
        s->chan_present |= (uint16_t)(1u << hc->index);
    }
    snprintf(s->fw, sizeof s->fw, "%s", h.fw_version);
    snprintf(s->hw, sizeof s->hw, "%s", h.hw_version);
    s->hello = xmalloc(f->len ? f->len : 1);
    memcpy(s->hello, f->payload, f->len);
    s->hello_len = f->len;
    gstp_challenge_t c;
    memset(&c, 0, sizeof c);
    c.version = s->version;
    randombytes_buf(c.nonce, sizeof c.nonce);
    memcpy(s->nonce, c.nonce, sizeof s->nonce);
    SEND(s, gstp_encode_challenge, &c);
    s->state = S_AUTH;
}

/* Hands a new waveform block to the observer with the channel descriptions of its session. */
static void observe_block(sess_t *s, const gstp_block_hdr_t *h, const uint8_t *data, size_t len)
{
    gw_t *g = s->gw;
    /* on_block refused any block whose rate or channels differ from HELLO (decision 8). */
    gw_block_info_t bi;
    memset(&bi, 0, sizeof bi);
    bi.seq = h->seq;
    bi.t0_ns = h->t0_ns;
    bi.sample_rate = h->sample_rate;
    bi.nominal_hz = s->nominal_hz;
    bi.channel_mask = h->channel_mask;
    bi.nchannels = h->nchannels;
    bi.sample_fmt = h->sample_fmt;
    bi.time_quality = h->time_quality;
    bi.nsamples = h->nsamples;
    bi.declared_v = s->declared_v;
    int n = 0;
    for (int i = 0; i < (int)GSTP_MAX_CHANNELS && n < (int)GSTP_MAX_CHANNELS; i++) {
        if (!(h->channel_mask & (1u << i)))
            continue;
        bi.ch[n++] = s->chans[i];
    }
    g->block_cb(g->block_ud, s->term->id, &bi, data, len);
}

static term_t *term_get(gw_t *g, const char *id)
{
    term_t *t = hmap_get(&g->terms, id);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", id);
        hmap_put(&g->terms, id, t);
    }
    return t;
}

static void on_auth(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_auth_t a;
    if (gstp_parse_auth(f, &a) < 0) {
        g->st_.parse_errors++;
        sodium_memzero(s->secret, sizeof s->secret);
        login_failed(s, GSTP_REJ_PROTOCOL, "malformed AUTH");
        return;
    }
    uint8_t mac[GSTP_MAC_LEN];
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, s->secret, sizeof s->secret);
    crypto_auth_hmacsha256_update(&hs, s->nonce, sizeof s->nonce);
    crypto_auth_hmacsha256_update(&hs, s->hello, s->hello_len);
    crypto_auth_hmacsha256_final(&hs, mac);
    sodium_memzero(&hs, sizeof hs);
    sodium_memzero(s->secret, sizeof s->secret);
    free(s->hello);
    s->hello = NULL;
    if (crypto_verify_32(mac, a.mac) != 0) {
        login_failed(s, GSTP_REJ_BAD_AUTH, "authentication failed");
        return;
    }
    /* Proved its key: WELCOME whatever the failure counters say (decision 6). */
    term_t *t = term_get(g, s->hello_id);
    if (t->sess) {
        sess_t *old = t->sess;
        /* Two devices sharing an id replace each other in a loop: rate-limited. */
        log_limited(LOG_INFO, s->ip, "%s: new login from %s replaces session from %s", t->id,
                    s->remote, old->remote);
        g->st_.sessions_replaced++;
        send_reject(old, 1, GSTP_REJ_REPLACED, 0, "replaced by a newer session");
        sess_close(old, "replaced");
    }
    if (s->store_durable > t->durable_seq)
        t->durable_seq = s->store_durable;
    if (t->submitted_seq < t->durable_seq)
        t->submitted_seq = t->durable_seq;
    t->sess = s;
    s->term = t;
    s->state = S_ONLINE;
    hs_release(s);
    memcpy(t->secret_fp, s->secret_fp, sizeof t->secret_fp);
    t->sessions++;
    t->connected_since_ns = time_utc_ns();
    t->last_seen_ns = t->connected_since_ns;
    snprintf(t->remote, sizeof t->remote, "%s", s->remote);
    t->sample_rate = s->sample_rate;
    t->nominal_hz = s->nominal_hz;
    t->nchannels = s->nchannels;
    /* Decision 10: provisioned ratios are authoritative; what the terminal reports is kept for
     * display and a difference is flagged, not refused (the terminal still measures). */
    t->hello_vt = s->hello_vt;
    t->hello_ct = s->hello_ct;
    t->config_conflict =
        ratio_conflict(s->hello_vt, s->prov_vt) || ratio_conflict(s->hello_ct, s->prov_ct);
    if (t->config_conflict)
        log_limited(LOG_WARN, t->id,
                    "%s: HELLO ratios VT %g CT %g differ from provisioned VT %g CT %g; the "
                    "provisioned ones are used",
                    t->id, s->hello_vt, s->hello_ct, s->prov_vt, s->prov_ct);
    snprintf(t->fw, sizeof t->fw, "%s", s->fw);
    snprintf(t->hw, sizeof t->hw, "%s", s->hw);
    g->st_.handshakes_ok++;
    g->st_.online++;

    gstp_welcome_t w;
    memset(&w, 0, sizeof w);
    w.server_time_ns = time_utc_ns();
    w.heartbeat_s = (uint16_t)g->o.heartbeat_s;
    w.ack_window = (uint16_t)g->o.ack_window;
    w.resume_seq = t->durable_seq;
    w.session_id = s->id;
    SEND(s, gstp_encode_welcome, &w);
    s->last_ping_ns = time_mono_ns(); /* the first PING is due heartbeat_s after WELCOME */
    s->pings_out = 0;
    log_info(t->id, "online from %s (session %u, resume after seq %llu, fw %s)", s->remote, s->id,
             (unsigned long long)t->durable_seq, s->fw[0] ? s->fw : "?");

    store_item_t *it = store_item_new(STORE_ITEM_SESSION_OPEN);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    it->cookie = s->gw->cookie_base | s->id;
    it->when_ns = t->connected_since_ns;
    snprintf(it->remote, sizeof it->remote, "%s", s->remote);
    store_submit(g->st, it);
    send_pending_commands(s);
    update_reading(s);
}

/* ---- data -------------------------------------------------------------------------------------
 */

static size_t sample_width(uint8_t fmt)
{
    return fmt == GSTP_FMT_INT32 ? 4 : 2;
}

/* A protocol violation in the data path ends the session: the terminal reconnects and re-sends
 * from the resume point, so nothing is silently skipped (a cumulative ACK must never cover a
 * block we dropped). */
static void data_violation(sess_t *s, uint16_t code, uint8_t type, const char *msg)
{
    s->gw->st_.protocol_errors++;
    log_limited(LOG_WARN, s->ip, "%s: protocol violation: %s; closing session", who(s), msg);
    send_error(s, code, type, msg);
    send_reject(s, 1, GSTP_REJ_PROTOCOL, 0, msg);
    sess_close(s, "protocol error");
}

static void block_complete(sess_t *s)
{
    gw_t *g = s->gw;
    term_t *t = s->term;
    const gstp_block_hdr_t *h = &s->blk_hdr;
    s->blocks++;
    t->blocks++;
    g->st_.blocks_received++;
    if (h->seq <= t->submitted_seq) {
        /* Already stored or on its way: ignore, but make sure the terminal hears the ACK. */
        t->duplicates++;
        g->st_.blocks_duplicate++;
        free_block(s);
        if (t->inflight == 0) {
            send_ack(s, t->durable_seq);
        }
        return;
    }
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    it->cookie = s->gw->cookie_base | s->id;
    it->seq = h->seq;
    it->is_event = s->blk_type == GSTP_EVENT;
    it->t0_ns = h->t0_ns;
    it->sample_rate = h->sample_rate;
    it->channel_mask = h->channel_mask;
    it->nchannels = h->nchannels;
    it->sample_fmt = h->sample_fmt;
    it->time_quality = h->time_quality;
    it->nsamples = h->nsamples;
    it->data = s->blk; /* ownership moves to the item */
    it->data_len = s->blk_size;
    size_t nbytes = it->data_len; /* store_submit may free the item */
    g->reasm_bytes -= nbytes;
    if (it->is_event) {
        it->trigger_ns = s->blk_ev.trigger_ns;
        it->trigger = s->blk_ev.trigger;
        it->pretrigger = s->blk_ev.pretrigger;
        it->value_permille = s->blk_ev.value_permille;
        it->trigger_channel = s->blk_ev.channel;
    }
    s->blk = NULL;
    s->blk_len = s->blk_size = 0;
    if (g->block_cb && !it->is_event)
        observe_block(s, h, it->data, it->data_len);
    if (store_submit(g->st, it) < 0) {
        sess_close(s, "store stopped");
        return;
    }
    g->backlog_bytes += nbytes;
    t->submitted_seq = h->seq;
    t->inflight++;
    check_pressure(g);
    update_reading(s);
}

/* Time quality order: a higher number is worse, and 0 (unknown) is the worst of all. */
static int tq_rank(uint8_t q)
{
    return q == 0 ? 256 : q;
}

static int same_block(const gstp_block_hdr_t *a, const gstp_block_hdr_t *b)
{
    return a->seq == b->seq && a->t0_ns == b->t0_ns && a->sample_rate == b->sample_rate &&
           a->channel_mask == b->channel_mask && a->nsamples == b->nsamples &&
           a->sample_fmt == b->sample_fmt && a->chunk_count == b->chunk_count;
}

static void on_block(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_block_t b;
    if (gstp_parse_block(f, &b) < 0) {
        g->st_.parse_errors++;
        data_violation(s, GSTP_ERR_MALFORMED, f->type, "malformed block chunk");
        return;
    }
    const gstp_block_hdr_t *h = &b.hdr;
    if (h->chunk_index == 0) {
        if (s->blk) {
            data_violation(s, GSTP_ERR_SEQUENCE, f->type, "new block before previous completed");
            return;
        }
        /* Decision 8: a block is sampled as HELLO said (the stored block and the analysis are
         * described by it); later chunks must repeat these fields (same_block). */
        if (h->sample_rate != s->sample_rate || (h->channel_mask & ~(uint32_t)s->chan_present)) {
            char m[GSTP_MAX_STR + 1];
            snprintf(m, sizeof m, "block rate %u or channels 0x%x not as in HELLO",
                     (unsigned)h->sample_rate, (unsigned)h->channel_mask);
            data_violation(s, GSTP_ERR_MALFORMED, f->type, m);
            return;
        }
        size_t size = (size_t)h->nsamples * h->nchannels * sample_width(h->sample_fmt);
        if (size > g->o.max_block_bytes) {
            data_violation(s, GSTP_ERR_MALFORMED, f->type, "block larger than server limit");
            return;
        }
        if (g->reasm_bytes + size > g->o.max_reassembly) {
            /* Too many half-received blocks at once (slow links or a flood): shed this session
             * rather than pause everyone; the terminal re-sends the block later. */
            log_limited(LOG_WARN, s->ip, "%s: reassembly memory full (%zu bytes), asking to retry",
                        who(s), g->reasm_bytes);
            send_reject(s, 1, GSTP_REJ_BUSY, 5, "server busy, retry later"); /* decision 9 */
            sess_close(s, "reassembly full");
            return;
        }
        s->blk = xmalloc(size);
        s->blk_size = size;
        s->blk_len = 0;
        s->blk_type = f->type;
        s->blk_hdr = *h;
        s->blk_ev = b.event;
        s->blk_next_chunk = 0;
        s->blk_next_sample = 0;
        g->reasm_bytes += size;
    } else if (!s->blk || !same_block(&s->blk_hdr, h) || s->blk_type != f->type) {
        data_violation(s, GSTP_ERR_SEQUENCE, f->type, "chunk does not continue the open block");
        return;
    }
    if (h->chunk_index != s->blk_next_chunk || h->first_sample != s->blk_next_sample ||
        s->blk_len + b.samples_len > s->blk_size) {
        data_violation(s, GSTP_ERR_SEQUENCE, f->type, "chunk out of order");
        return;
    }
    /* Time quality may vary between chunks: the block keeps the worst (decision 8). */
    if (tq_rank(h->time_quality) > tq_rank(s->blk_hdr.time_quality))
        s->blk_hdr.time_quality = h->time_quality;
    memcpy(s->blk + s->blk_len, b.samples, b.samples_len);
    s->blk_len += b.samples_len;
    s->blk_next_chunk++;
    s->blk_next_sample += h->n_in_chunk;
    if (s->blk_next_chunk == h->chunk_count) {
        if (s->blk_len != s->blk_size) {
            data_violation(s, GSTP_ERR_SEQUENCE, f->type, "block incomplete after last chunk");
            return;
        }
        block_complete(s);
    }
}

static void on_status(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_status_t st;
    if (gstp_parse_status(f, &st) < 0) {
        g->st_.parse_errors++;
        send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed STATUS");
        return;
    }
    term_t *t = s->term;
    t->has_status = 1;
    t->status = st;
    t->status_rx_ns = time_utc_ns();
    store_item_t *it = store_item_new(STORE_ITEM_STATUS);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    it->cookie = s->gw->cookie_base | s->id;
    it->time_ns = st.time_ns;
    it->rsrp_dbm = st.rsrp_dbm;
    it->rssi_dbm = st.rssi_dbm;
    it->csq = st.csq;
    it->supply_mv = st.supply_mv;
    it->temp_c10 = st.temp_c10;
    it->gps_fix = st.gps_fix;
    it->gps_sats = st.gps_sats;
    it->buffer_permille = st.buffer_permille;
    it->uptime_s = st.uptime_s;
    it->buffered_blocks = st.buffered_blocks;
    it->time_quality = st.time_quality;
    store_submit(g->st, it);
}

/* ---- commands ---------------------------------------------------------------------------------
 */

/* Command state changes go through the store writer like everything else the terminals cause:
 * the loop thread never waits for the database's write lock on their behalf. The writer applies
 * them in order and leaves final states alone (see store_command_update). */
static void submit_command_update(gw_t *g, const char *tid, int64_t id, int state,
                                  int result_status, const uint8_t *res, size_t rlen)
{
    store_item_t *it = store_item_new(STORE_ITEM_COMMAND_UPDATE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->cmd_id = id;
    it->cmd_state = state;
    it->cmd_result_status = result_status;
    if (rlen) {
        it->data = xmalloc(rlen);
        memcpy(it->data, res, rlen);
        it->data_len = rlen;
    }
    if (store_submit(g->st, it) < 0)
        log_warn(tid, "command %lld state not stored (store stopped)", (long long)id);
}

/* A command creation waiting for the writer (gw_command_submit). The item pointer stays valid
 * until process_done frees it, which also ends the request. */
typedef struct cmd_req {
    struct cmd_req *prev, *next;
    store_item_t *item;
    gw_command_cb cb; /* NULL once answered (timed out) */
    void *ud;
    int64_t deadline_ns; /* monotonic */
    int rc;
    int64_t cmd_id;
    char tid[GSTP_MAX_ID + 1]; /* the command's terminal, once item is gone */
} cmd_req_t;

/* A command sent in a session and not yet answered. */
struct cmd_inflight {
    int64_t id;
    int64_t sent_ns; /* monotonic */
};

/* Commands sent in this session and not answered (nor timed out). */
static int inflight_count(sess_t *s, int64_t now)
{
    int n = 0;
    for (int i = 0; i < s->cmd_ninflight; i++)
        if (now - s->cmd_inflight[i].sent_ns < CMD_ANSWER_TIMEOUT_NS)
            s->cmd_inflight[n++] = s->cmd_inflight[i];
    s->cmd_ninflight = n;
    return n;
}

static int inflight_has(const sess_t *s, int64_t id)
{
    for (int i = 0; i < s->cmd_ninflight; i++)
        if (s->cmd_inflight[i].id == id)
            return 1;
    return 0;
}

static int inflight_room(sess_t *s)
{
    int k = s->gw->o.cmd_max_inflight;
    k = k < 1 ? 1 : k > GW_CMD_INFLIGHT_MAX ? GW_CMD_INFLIGHT_MAX : k;
    return k - inflight_count(s, time_mono_ns());
}

static void send_command(sess_t *s, const store_command_t *c)
{
    gw_t *g = s->gw;
    uint8_t args[GSTP_MAX_TLV];
    size_t alen = 0;
    int64_t now = time_utc_ns();
    if (c->verb == GSTP_VERB_TIME_SYNC) {
        /* The server's send time is stamped now, not when the command was created. */
        gstp_tlv_writer_t w;
        gstp_tlv_writer_init(&w, args, sizeof args);
        gstp_tlv_put_i64(&w, GSTP_AT_SERVER_TIME, now);
        alen = w.len;
        s->ts_id[s->ts_pos] = c->id;
        s->ts_tx[s->ts_pos] = now;
        s->ts_pos = (s->ts_pos + 1) % TIMESYNC_SLOTS;
    } else {
        alen = c->args_len < sizeof args ? c->args_len : sizeof args;
        memcpy(args, c->args, alen);
    }
    gstp_command_t m = {
        .id = (uint64_t)c->id, .verb = (uint16_t)c->verb, .tlv_len = (uint16_t)alen, .tlv = args};
    term_t *t = s->term; /* terms outlive sessions; s may be marked for closing by the write */
    if (!s->cmd_inflight)
        s->cmd_inflight = xcalloc(GW_CMD_INFLIGHT_MAX, sizeof *s->cmd_inflight);
    if (s->cmd_ninflight < GW_CMD_INFLIGHT_MAX) {
        s->cmd_inflight[s->cmd_ninflight].id = c->id;
        s->cmd_inflight[s->cmd_ninflight].sent_ns = time_mono_ns();
        s->cmd_ninflight++;
    }
    SEND(s, gstp_encode_command, &m);
    g->st_.commands_sent++;
    if (c->state == STORE_CMD_QUEUED)
        submit_command_update(g, t->id, c->id, STORE_CMD_SENT, -1, NULL, 0);
    log_info(t->id, "command %lld (verb %d) sent", (long long)c->id, c->verb);
}

typedef struct {
    sess_t *s;
    int n;
} sweep_t;

static int pending_cb(void *ud, const store_command_t *c)
{
    sweep_t *x = ud;
    x->n++;
    if (x->s->state != S_ONLINE || x->s->close_asap)
        return 1;
    x->s->cmd_cursor = c->id;
    send_command(x->s, c);
    return 0;
}

/* Paced delivery (protocol decision 1 and issue 7): the commands to (re-)send in this session
 * are the queued and sent ones (never acked: those wait for their final RESULT), oldest first,
 * read page by page after the session's cursor, and only as many as keep at most
 * cmd_max_inflight unanswered. Called at WELCOME, when answers free room, and every tick until
 * the queue is read to its end, so a long queue (thousands of commands) never costs the loop
 * more than one small page at a time. */
static void send_pending_commands(sess_t *s)
{
    if (s->state != S_ONLINE || s->cmd_sweep_done || s->close_asap)
        return;
    int room = inflight_room(s);
    if (room <= 0)
        return;
    sweep_t x = {.s = s};
    int rc = store_command_pending(s->gw->st, s->term->id, s->cmd_cursor, room, pending_cb, &x);
    if (rc < 0) {
        log_warn(s->term->id, "cannot read pending commands: %s", err_str(rc));
        return;
    }
    if (x.n < room)
        s->cmd_sweep_done = 1;
}

static void on_result(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_result_t r;
    if (gstp_parse_result(f, &r) < 0) {
        /* Includes a MESSAGE over 64 bytes (protocol decision 5): nothing of it is applied, the
         * command keeps its state and a repeated valid RESULT is taken. */
        g->st_.parse_errors++;
        send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed RESULT");
        return;
    }
    /* An answer frees its in-flight slot, whatever it says. */
    for (int i = 0; i < s->cmd_ninflight; i++) {
        if ((uint64_t)s->cmd_inflight[i].id == r.id) {
            s->cmd_inflight[i] = s->cmd_inflight[--s->cmd_ninflight];
            if (!s->cmd_sweep_done && s->cmd_ninflight <= g->o.cmd_max_inflight / 2)
                send_pending_commands(s);
            break;
        }
    }
    store_command_t c;
    if (r.id > INT64_MAX || store_command_get(g->st, (int64_t)r.id, &c) < 0 ||
        strcmp(c.terminal_id, s->term->id) != 0) {
        /* A terminal can repeat this at will: rate-limited per address. */
        log_limited(LOG_WARN, s->ip, "%s: RESULT for unknown command %llu ignored", s->term->id,
                    (unsigned long long)r.id);
        send_error(s, GSTP_ERR_UNEXPECTED, f->type, "unknown command id");
        return;
    }
    if (c.state >= STORE_CMD_DONE || (c.state == STORE_CMD_ACKED && r.status == GSTP_RS_ACCEPTED)) {
        /* A repeated or late RESULT: nothing changes, and no write lock is taken for it. */
        log_debug(s->term->id, "RESULT for command %lld in state %s ignored", (long long)c.id,
                  store_cmd_state_name(c.state));
        return;
    }
    if (r.tlv_len > STORE_ARGS_MAX)
        log_warn(s->term->id, "RESULT payload of command %lld too long (%u bytes), not stored",
                 (long long)c.id, r.tlv_len);
    int state = r.status == GSTP_RS_OK         ? STORE_CMD_DONE
                : r.status == GSTP_RS_ACCEPTED ? STORE_CMD_ACKED
                                               : STORE_CMD_FAILED;
    uint8_t res[STORE_ARGS_MAX];
    size_t rlen = r.tlv && r.tlv_len <= sizeof res ? r.tlv_len : 0;
    if (rlen)
        memcpy(res, r.tlv, rlen);
    if (c.verb == GSTP_VERB_TIME_SYNC && r.status == GSTP_RS_OK) {
        /* NTP-style offset and round trip from the four timestamps (RFC 5905 section 8). */
        int64_t t4 = time_utc_ns(), t1 = 0, t2 = 0, t3 = 0;
        gstp_tlv_t tv;
        for (int i = 0; i < TIMESYNC_SLOTS; i++)
            if (s->ts_id[i] == c.id)
                t1 = s->ts_tx[i];
        if (t1 && gstp_tlv_find(r.tlv, r.tlv_len, GSTP_AT_TERM_RX_TIME, &tv) == 1 &&
            gstp_tlv_i64(&tv, &t2) == 0 &&
            gstp_tlv_find(r.tlv, r.tlv_len, GSTP_AT_TERM_TX_TIME, &tv) == 1 &&
            gstp_tlv_i64(&tv, &t3) == 0) {
            /* t2 and t3 come from the terminal: any int64 can arrive, and signed overflow is
             * undefined (C11 6.5p5). An exchange whose differences do not fit has no offset. */
            int64_t d21, d34, d41, d32, sum, rtt;
            if (__builtin_sub_overflow(t2, t1, &d21) || __builtin_sub_overflow(t3, t4, &d34) ||
                __builtin_add_overflow(d21, d34, &sum) || __builtin_sub_overflow(t4, t1, &d41) ||
                __builtin_sub_overflow(t3, t2, &d32) || __builtin_sub_overflow(d41, d32, &rtt)) {
                log_limited(LOG_WARN, s->ip, "%s: time sync timestamps out of range, no offset",
                            s->term->id);
            } else {
                int64_t offset = sum / 2;
                gstp_tlv_writer_t w;
                gstp_tlv_writer_init(&w, res + rlen, sizeof res - rlen);
                gstp_tlv_put_i64(&w, TAG_OFFSET_NS, offset);
                gstp_tlv_put_i64(&w, TAG_RTT_NS, rtt);
                if (w.err == GSTP_OK)
                    rlen += w.len;
                log_info(s->term->id, "time sync: offset %.3f ms, round trip %.3f ms", offset / 1e6,
                         rtt / 1e6);
            }
        }
    }
    submit_command_update(g, s->term->id, c.id, state, r.status, res, rlen);
    if (state == STORE_CMD_DONE)
        g->st_.commands_done++;
    else if (state == STORE_CMD_FAILED)
        g->st_.commands_failed++;
    log_info(s->term->id, "command %lld: %s (status %u)", (long long)c.id,
             store_cmd_state_name(state), r.status);
}

int gw_command_submit(gw_t *g, const char *id, int verb, const uint8_t *args, size_t args_len,
                      int64_t ttl_ns, gw_command_cb cb, void *ud)
{
    if (args_len > STORE_ARGS_MAX)
        return GS_ERANGE;
    if (g->stopping)
        return GS_ESTATE;
    store_item_t *it = store_item_new(STORE_ITEM_COMMAND_CREATE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", id);
    it->cmd_verb = verb;
    it->cmd_ttl_ns = ttl_ns > 0 ? ttl_ns : g->o.command_ttl_ns;
    it->cmd_max_pending = g->o.cmd_max_pending;
    it->when_ns = time_utc_ns();
    if (args_len) {
        it->data = xmalloc(args_len);
        memcpy(it->data, args, args_len);
        it->data_len = args_len;
    }
    cmd_req_t *q = xcalloc(1, sizeof *q);
    q->item = it;
    q->cb = cb;
    q->ud = ud;
    int64_t timeout =
        g->o.cmd_create_timeout_ns > 0 ? g->o.cmd_create_timeout_ns : 30 * 1000000000LL;
    q->deadline_ns = time_mono_ns() + timeout;
    it->cookie = (uint64_t)(uintptr_t)q;
    if (store_submit(g->st, it) < 0) { /* frees the item */
        free(q);
        return GS_ESTATE;
    }
    q->next = g->cmd_reqs;
    if (g->cmd_reqs)
        g->cmd_reqs->prev = q;
    g->cmd_reqs = q;
    return 0;
}

static int newcmd_cb(void *ud, const store_command_t *c)
{
    gw_t *g = ud;
    if (c->id > g->last_cmd_id)
        g->last_cmd_id = c->id;
    term_t *t = hmap_get(&g->terms, c->terminal_id);
    sess_t *s = t ? t->sess : NULL;
    if (!s || s->state != S_ONLINE || c->id <= s->cmd_cursor || c->expires_ns <= time_utc_ns())
        return 0; /* offline, already covered by this session's sweep, or out of time */
    if (s->cmd_sweep_done && !s->close_asap && inflight_room(s) > 0) {
        s->cmd_cursor = c->id;
        send_command(s, c);
    } else {
        s->cmd_sweep_done = 0; /* the paced sweep takes it, in order */
    }
    return 0;
}

/* Picks up commands created since the last look (by the writer for REST, or by other processes
 * such as `gridsense command send`) and delivers them to online terminals. Rows are visited in
 * id order, and ids grow in commit order, so no row is skipped. A read: never waits for the
 * writer. */
static void deliver_new_commands(gw_t *g)
{
    store_command_new_since(g->st, g->last_cmd_id, NEWCMD_PAGE, newcmd_cb, g);
}

static void cmd_req_unlink(gw_t *g, cmd_req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        g->cmd_reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* Finishes the creations the writer reported (items already processed into q->rc / q->cmd_id):
 * delivers new commands first, so the callback can say whether its command went out at once. */
static void finish_cmd_reqs(gw_t *g, cmd_req_t *done)
{
    int any = 0;
    for (cmd_req_t *q = done; q; q = q->next)
        any |= q->rc == 0;
    if (any && !g->stopping)
        deliver_new_commands(g);
    while (done) {
        cmd_req_t *next = done->next;
        if (done->cb) {
            int sent = 0;
            if (done->rc == 0) {
                term_t *t = hmap_get(&g->terms, done->tid);
                sent = t && t->sess && inflight_has(t->sess, done->cmd_id);
            }
            done->cb(done->ud, done->rc, done->cmd_id, sent);
        }
        free(done);
        done = next;
    }
}

/* Command work of the tick: paced delivery every tick; once a second, expiry (through the
 * writer, checked first with a read so an idle server submits nothing), creations the database
 * did not take in time, and commands created by other processes. */
static void commands_tick(gw_t *g, int64_t wall)
{
    for (sess_t *s = g->sessions; s; s = s->next)
        if (s->state == S_ONLINE && !s->cmd_sweep_done)
            send_pending_commands(s);
    int64_t mono = time_mono_ns();
    for (cmd_req_t *q = g->cmd_reqs; q; q = q->next) {
        if (q->cb && mono > q->deadline_ns && store_item_cancel(g->st, q->item) == 0) {
            log_warn(q->item->terminal_id, "command not created: the database was not available "
                                           "within the create timeout");
            gw_command_cb cb = q->cb;
            q->cb = NULL; /* the writer reports the item later (skipped); then q is freed */
            cb(q->ud, GS_ETIMEOUT, 0, 0);
        }
    }
    if (wall - g->last_poll_ns < 1000000000LL)
        return;
    g->last_poll_ns = wall;
    if (!g->expire_pending && store_command_any_expired(g->st, wall) > 0) {
        store_item_t *it = store_item_new(STORE_ITEM_COMMAND_EXPIRE);
        it->when_ns = wall;
        if (store_submit(g->st, it) == 0)
            g->expire_pending = 1;
    }
    deliver_new_commands(g);
}

/* ---- frame dispatch ---------------------------------------------------------------------------
 */

/* Frame types only the server sends (protocol.md 5). */
static int server_only(uint8_t type)
{
    return type == GSTP_CHALLENGE || type == GSTP_WELCOME || type == GSTP_REJECT ||
           type == GSTP_ACK || type == GSTP_COMMAND;
}

/* Decision 3: a PONG keeps the session alive only if it echoes the token of an outstanding
 * PING; it then answers that PING and every earlier one (a terminal may answer only the
 * latest). Tokens increment per PING, so the outstanding ones are the last pings_out tokens. */
static void on_pong(sess_t *s, const gstp_frame_t *f)
{
    gstp_ping_t p;
    if (gstp_parse_ping(f, &p) < 0) {
        s->gw->st_.parse_errors++;
        send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed PONG");
        return;
    }
    uint32_t behind = s->ping_token - p.token; /* 0 = the latest PING; modulo 2^32 */
    if (behind < (uint32_t)s->pings_out)
        s->pings_out = (int)behind; /* the PINGs after it are still outstanding */
    else if (log_get_level() >= LOG_DEBUG)
        log_limited(LOG_DEBUG, s->ip, "%s: PONG token %u answers no outstanding PING", who(s),
                    p.token);
}

static void on_frame(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    s->frames++;
    g->st_.frames_rx[f->type]++;
    s->last_rx_ns = time_mono_ns();
    if (s->term) {
        s->term->frames++;
        s->term->last_seen_ns = time_utc_ns();
    }
    /* Decision 7: HELLO carries the sender's own preferred version; from CHALLENGE on, every
     * frame carries the session version. */
    if (s->state != S_HELLO && f->version != s->version) {
        char m[GSTP_MAX_STR + 1];
        snprintf(m, sizeof m, "header version %u, session version %u", f->version, s->version);
        if (s->state == S_AUTH) {
            login_failed(s, GSTP_REJ_PROTOCOL, m);
        } else if (s->state == S_ONLINE) {
            log_limited(LOG_WARN, s->ip, "%s: frame %s ignored: %s", who(s),
                        gstp_type_name(f->type), m);
            send_error(s, GSTP_ERR_UNEXPECTED, f->type, m);
        }
        return;
    }
    if (strcmp(gstp_type_name(f->type), "UNKNOWN") == 0) {
        /* Extension rule (protocol.md 6.1): unknown types are answered and ignored in every
         * state, even during the handshake. */
        if (log_get_level() >= LOG_DEBUG)
            log_limited(LOG_DEBUG, s->ip, "%s: unknown frame type 0x%02x ignored", who(s), f->type);
        send_error(s, GSTP_ERR_UNKNOWN_TYPE, f->type, "unknown frame type");
        return;
    }
    switch (s->state) {
    case S_HELLO:
    case S_AUTH: {
        /* Decision 2: during the handshake any known type but the expected one is PROTOCOL. */
        uint8_t want = s->state == S_HELLO ? GSTP_HELLO : GSTP_AUTH;
        if (f->type != want) {
            char m[GSTP_MAX_STR + 1];
            snprintf(m, sizeof m, "expected %s, got %s", gstp_type_name(want),
                     gstp_type_name(f->type));
            login_failed(s, GSTP_REJ_PROTOCOL, m);
        } else if (want == GSTP_HELLO) {
            on_hello(s, f);
        } else {
            on_auth(s, f);
        }
        return;
    }
    case S_ONLINE:
        break;
    default:
        return;
    }
    if (server_only(f->type)) {
        /* Decision 2: answered, ignored; the session continues. */
        log_limited(LOG_WARN, s->ip, "%s: sent %s, a server-only frame type; ignored", who(s),
                    gstp_type_name(f->type));
        send_error(s, GSTP_ERR_UNEXPECTED, f->type, "frame type sent only by the server");
        return;
    }
    switch (f->type) {
    case GSTP_WAVEFORM:
    case GSTP_EVENT:
        on_block(s, f);
        break;
    case GSTP_STATUS:
        on_status(s, f);
        break;
    case GSTP_RESULT:
        on_result(s, f);
        break;
    case GSTP_PING: {
        gstp_ping_t p;
        if (gstp_parse_ping(f, &p) < 0) {
            g->st_.parse_errors++;
            send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed PING");
            break;
        }
        p.sender_time_ns = time_utc_ns();
        SEND(s, gstp_encode_pong, &p);
        break;
    }
    case GSTP_PONG:
        on_pong(s, f);
        break;
    case GSTP_BYE: {
        gstp_reject_t r;
        if (gstp_parse_reject(f, &r) == 0)
            log_info(s->term->id, "terminal said BYE: %s %s", gstp_reason_name(r.reason),
                     r.message);
        sess_close(s, "bye");
        break;
    }
    case GSTP_ERROR: {
        gstp_error_t e;
        if (gstp_parse_error(f, &e) == 0)
            log_limited(LOG_WARN, s->ip, "%s: terminal reports error %u on frame %s: %s", who(s),
                        e.code, gstp_type_name(e.frame_type), e.message);
        break;
    }
    case GSTP_HELLO:
    case GSTP_AUTH:
        send_error(s, GSTP_ERR_UNEXPECTED, f->type, "already authenticated");
        break;
    default:
        /* A type gstp_type_name knows but this version does not handle (none today). */
        send_error(s, GSTP_ERR_UNKNOWN_TYPE, f->type, "unknown frame type");
        break;
    }
}

static void account_decoder(gw_t *g, const gstp_decoder_stats_t *before, const gstp_decoder_t *d)
{
    g->st_.decode_skipped_bytes += d->stats.skipped_bytes - before->skipped_bytes;
    g->st_.decode_header_errors += d->stats.header_errors - before->header_errors;
    g->st_.decode_crc_errors += d->stats.crc_errors - before->crc_errors;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sess_t *s = (sess_t *)stream;
    gw_t *g = s->gw;
    if (buf->base == (char *)g->readbuf)
        g->readbuf_busy = 0;
    if (nread == 0)
        return;
    if (nread < 0) {
        sess_close(s, nread == UV_EOF ? "peer closed" : uv_err_name((int)nread));
        return;
    }
    g->st_.bytes_rx += (uint64_t)nread;
    s->bytes += (uint64_t)nread;
    if (s->term)
        s->term->bytes += (uint64_t)nread;
    gstp_decoder_stats_t before = s->dec.stats;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    while (n > 0 && s->state != S_CLOSING) {
        size_t used = gstp_decoder_feed(&s->dec, p, n);
        p += used;
        n -= used;
        gstp_frame_t f;
        int got = 0;
        while (s->state != S_CLOSING && gstp_decoder_next(&s->dec, &f) == GSTP_FRAME) {
            got = 1;
            on_frame(s, &f);
        }
        if (used == 0 && !got) {
            /* Cannot happen with a correct decoder; never spin on it. */
            log_limited(LOG_ERROR, s->ip, "%s: decoder made no progress; closing", who(s));
            sess_close(s, "decoder stall");
        }
    }
    account_decoder(g, &before, &s->dec);
}

/* ---- accept -----------------------------------------------------------------------------------
 */

static void on_connection(uv_stream_t *server, int status)
{
    gw_t *g = server->data;
    if (status < 0) {
        log_limited(LOG_WARN, "accept", "accept error: %s",
                    uv_strerror(status)); /* EMFILE floods */
        return;
    }
    sess_t *s = xcalloc(1, sizeof *s);
    s->gw = g;
    s->state = S_HELLO;
    if (uv_tcp_init(g->loop, &s->tcp) < 0) {
        free(s);
        return;
    }
    g->open_handles++;
    s->next = g->sessions;
    if (g->sessions)
        g->sessions->prev = s;
    g->sessions = s;
    g->st_.connections_open++;
    g->st_.connections_total++;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) < 0) {
        sess_close(s, "accept failed");
        return;
    }
    s->id = ++g->next_sess_id;
    s->accepted_ns = s->last_rx_ns = time_mono_ns();
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(s->ip, sizeof s->ip, "?");
    snprintf(s->remote, sizeof s->remote, "?");
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            char full[INET6_ADDRSTRLEN];
            uv_ip6_name(a, full, sizeof full);
            snprintf(s->remote, sizeof s->remote, "[%s]:%d", full, ntohs(a->sin6_port));
            const uint8_t *b = a->sin6_addr.s6_addr;
            static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (memcmp(b, v4mapped, sizeof v4mapped) == 0) {
                snprintf(s->ip, sizeof s->ip, "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
            } else {
                /* Limits and login-failure counters apply per /64: one subscriber usually gets
                 * a whole /64, so counting single IPv6 addresses would be no limit at all. */
                snprintf(s->ip, sizeof s->ip, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0],
                         b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
            }
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, s->ip, sizeof s->ip);
            snprintf(s->remote, sizeof s->remote, "%s:%d", s->ip, ntohs(a->sin_port));
        }
    }
    /* Caps (decision 6): global, per address, and concurrent handshakes per address. Refusals
     * are BUSY with retry_after 5 s and are not failed logins: the client did nothing wrong. */
    uintptr_t per_ip = (uintptr_t)hmap_get(&g->per_ip, s->ip);
    uintptr_t hs = (uintptr_t)hmap_get(&g->hs_ip, s->ip);
    int max_ip = g->o.max_per_ip > 0 ? g->o.max_per_ip : g->o.max_connections;
    const char *limit = g->st_.connections_open > (uint64_t)g->o.max_connections ? "global"
                        : per_ip >= (uintptr_t)max_ip                            ? "per-address"
                        : hs >= (uintptr_t)g->o.max_hs_per_ip ? "per-address handshake"
                                                              : NULL;
    if (limit) {
        g->st_.connections_refused++;
        log_limited(LOG_WARN, s->ip, "connection from %s refused: %s limit reached", s->remote,
                    limit);
        send_reject(s, 0, GSTP_REJ_BUSY, 5, "connection limit reached");
        sess_close(s, "limit");
        return;
    }
    ip_count_add(&g->per_ip, s->ip, +1);
    s->counted_ip = 1;
    ip_count_add(&g->hs_ip, s->ip, +1);
    s->counted_hs = 1;
    uv_tcp_nodelay(&s->tcp, 1);
    uv_tcp_keepalive(&s->tcp, 1, 60); /* backstop for half-open links; heartbeats come first */
    s->decbuf = xmalloc(DEC_BUF_SIZE);
    gstp_decoder_init(&s->dec, s->decbuf, DEC_BUF_SIZE);
    update_reading(s);
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

static void mark_dirty(gw_t *g, term_t *t)
{
    if (!t->ack_dirty) {
        t->ack_dirty = 1;
        t->dirty_next = g->dirty;
        g->dirty = t;
    }
}

static void process_done(gw_t *g)
{
    uv_mutex_lock(&g->done_lock);
    store_item_t *it = g->done_head;
    g->done_head = g->done_tail = NULL;
    uv_mutex_unlock(&g->done_lock);
    cmd_req_t *reqs_done = NULL, *reqs_tail = NULL;
    while (it) {
        store_item_t *next = it->next;
        if (it->kind == STORE_ITEM_COMMAND_CREATE) {
            cmd_req_t *q = (cmd_req_t *)(uintptr_t)it->cookie;
            cmd_req_unlink(g, q);
            q->rc = it->result;
            q->cmd_id = it->cmd_id;
            if (it->result == 0)
                log_info(it->terminal_id, "command %lld created", (long long)it->cmd_id);
            /* the item is freed below: keep what the callback needs */
            q->item = NULL;
            snprintf(q->tid, sizeof q->tid, "%s", it->terminal_id);
            if (reqs_tail)
                reqs_tail->next = q;
            else
                reqs_done = q;
            reqs_tail = q;
        } else if (it->kind == STORE_ITEM_COMMAND_EXPIRE) {
            g->expire_pending = 0;
            if (it->result >= 0 && it->cmd_count > 0) {
                g->st_.commands_expired += (uint64_t)it->cmd_count;
                log_info(NULL, "%d command(s) expired", it->cmd_count);
            }
        } else if (it->kind == STORE_ITEM_BLOCK) {
            g->backlog_bytes -= it->data_len;
            term_t *t = hmap_get(&g->terms, it->terminal_id);
            if (it->result == 0)
                g->st_.blocks_stored++;
            else if (it->result == 1)
                g->st_.blocks_duplicate++;
            else
                g->st_.blocks_failed++;
            if (t) {
                if (t->inflight)
                    t->inflight--;
                if (it->result >= 0) {
                    if (it->seq > t->durable_seq)
                        t->durable_seq = it->seq;
                    mark_dirty(g, t);
                } else {
                    /* Not durable: make the terminal re-send from what is. */
                    log_error(t->id, "block %llu not stored: %s", (unsigned long long)it->seq,
                              err_str(it->result));
                    t->submitted_seq = t->durable_seq;
                    if (t->sess)
                        sess_close(t->sess, "store failure");
                }
            }
        } else if (it->kind == STORE_ITEM_COMMAND_UPDATE && it->result == GS_ESTATE) {
            log_debug(it->terminal_id, "command %lld was already final or further; update ignored",
                      (long long)it->cmd_id);
        } else if (it->result < 0) {
            log_warn(it->terminal_id, "store item kind %d failed: %s", it->kind,
                     err_str(it->result));
        }
        store_item_free(it);
        it = next;
    }
    /* One cumulative ACK per terminal per batch. */
    for (term_t *t = g->dirty; t;) {
        term_t *next = t->dirty_next;
        t->ack_dirty = 0;
        t->dirty_next = NULL;
        sess_t *s = t->sess;
        if (s && s->state == S_ONLINE) {
            send_ack(s, t->durable_seq);
            update_reading(s);
        }
        t = next;
    }
    g->dirty = NULL;
    finish_cmd_reqs(g, reqs_done);
    check_pressure(g);
}

static void async_cb(uv_async_t *a)
{
    process_done(a->data);
}

/* Ends the sessions of terminals that were removed or got a new secret since they logged in
 * (e.g. `gridsense terminal remove` for a stolen device): revocation takes effect within a second,
 * not at the next reconnect. Costs one point query per online terminal, only when something
 * changed. */
static void check_credentials(gw_t *g)
{
    int64_t v;
    if (store_credentials_version(g->st, &v) < 0 || v == g->cred_version)
        return;
    g->cred_version = v;
    for (sess_t *s = g->sessions; s; s = s->next) {
        if (s->state != S_ONLINE)
            continue;
        store_terminal_t t;
        int rc = store_terminal_get(g->st, s->term->id, &t);
        uint8_t fp[16];
        if (rc == 0)
            crypto_generichash(fp, sizeof fp, t.secret, sizeof t.secret, NULL, 0);
        sodium_memzero(t.secret, sizeof t.secret);
        if (rc == GS_ENOTFOUND) {
            log_warn(s->term->id, "terminal removed: ending its session");
            send_reject(s, 1, GSTP_REJ_UNKNOWN_ID, 0, "terminal removed");
            sess_close(s, "terminal removed");
        } else if (rc == 0 && sodium_memcmp(fp, s->term->secret_fp, sizeof fp) != 0) {
            log_warn(s->term->id, "secret replaced: ending its session");
            send_reject(s, 1, GSTP_REJ_BAD_AUTH, 0, "credentials changed, log in again");
            sess_close(s, "credentials changed");
        }
    }
}

/* ---- periodic work ----------------------------------------------------------------------------
 */

static void tick_cb(uv_timer_t *timer)
{
    gw_t *g = timer->data;
    int64_t now = time_mono_ns();
    int64_t hb = (int64_t)g->o.heartbeat_s * 1000000000LL;
    int64_t hs = (int64_t)g->o.handshake_timeout_ms * 1000000LL;
    for (sess_t *s = g->sessions, *next; s; s = next) {
        next = s->next;
        if (s->close_asap && s->state != S_CLOSING) {
            char reason[64];
            snprintf(reason, sizeof reason, "%s", s->close_reason);
            sess_close(s, reason);
        }
        if (g->stopping && s->state != S_CLOSING)
            continue; /* gw_stop closes every session itself */
        switch (s->state) {
        case S_HELLO:
        case S_AUTH:
            if (now - s->accepted_ns > hs)
                login_failed(s, GSTP_REJ_TIMEOUT, "handshake timeout");
            break;
        case S_ONLINE:
            /* Decision 3 (protocol.md 9.1). While we do not read (backpressure) the terminal's
             * PONGs wait in the socket: those PINGs are not counted as missed. */
            if (!s->reading)
                s->pings_out = 0;
            if (now - s->last_ping_ns < hb)
                break;
            if (s->pings_out >= DEAD_PINGS) {
                log_limited(LOG_WARN, s->ip, "%s: %d PINGs unanswered (heartbeat %d s), closing",
                            s->term->id, s->pings_out, g->o.heartbeat_s);
                g->st_.sessions_dead++;
                send_reject(s, 1, GSTP_REJ_DEAD, 0, "heartbeat timeout");
                sess_close(s, "heartbeat timeout");
                break;
            }
            /* Keep the schedule (tick jitter does not accumulate) unless the loop fell behind. */
            s->last_ping_ns = now - s->last_ping_ns < 2 * hb ? s->last_ping_ns + hb : now;
            {
                gstp_ping_t p = {.token = ++s->ping_token, .sender_time_ns = time_utc_ns()};
                SEND(s, gstp_encode_ping, &p);
            }
            s->pings_out++;
            break;
        case S_CLOSING:
            if (!s->handle_closing && now - s->closing_since_ns > CLOSE_GRACE_NS) {
                /* The peer does not take our last bytes: stop waiting for the shutdown. */
                s->handle_closing = 1;
                uv_close((uv_handle_t *)&s->tcp, handle_close_cb);
            }
            break;
        }
    }
    if (g->stopping) {
        /* After gw_stop the tick only enforces the close grace; it ends with the last session. */
        if (!g->sessions && !uv_is_closing((uv_handle_t *)&g->tick))
            uv_close((uv_handle_t *)&g->tick, plain_close_cb);
        return;
    }
    int64_t wall = time_utc_ns();
    int second = wall - g->last_poll_ns >= 1000000000LL;
    commands_tick(g, wall); /* (updates last_poll_ns) */
    if (second) {
        check_credentials(g);
        log_limited_flush(); /* "suppressed N" summaries of sources that went quiet */
    }
    check_pressure(g);
}

/* ---- start/stop -------------------------------------------------------------------------------
 */

static void plain_close_cb(uv_handle_t *h)
{
    gw_t *g = h->data;
    g->open_handles--;
    maybe_finish_stop(g);
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
    uv_mutex_init(&g->done_lock);
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
    uv_tcp_init(loop, &g->listener);
    g->listener.data = g;
    g->open_handles++;
    rc = uv_tcp_bind(&g->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&g->listener, 4096, on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen for terminals on %s:%d: %s", g->o.host, g->o.port,
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&g->listener, NULL);
        g->open_handles--;
        goto fail;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&g->listener, (struct sockaddr *)&bound, &blen);
    g->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    rc = store_writer_start(st, store_done, g);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the store writer: %s", err_str(rc));
        uv_close((uv_handle_t *)&g->listener, NULL);
        g->open_handles--;
        goto fail;
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
    *out = g;
    return 0;
fail:
    hmap_free(&g->terms);
    hmap_free(&g->per_ip);
    hmap_free(&g->hs_ip);
    hmap_free(&g->authfail);
    uv_mutex_destroy(&g->done_lock);
    free(g);
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
        update_reading(s); /* stopping: no more input */
        if (s->state == S_ONLINE)
            log_session_close(s, "server shutdown");
    }
    /* Commit everything received, then tell the terminals before saying goodbye. */
    store_writer_stop(g->st);
    process_done(g);
    for (sess_t *s = g->sessions, *next; s; s = next) {
        next = s->next;
        if (s->state == S_ONLINE)
            send_reject(s, 1, GSTP_REJ_SHUTDOWN, 5, "server shutting down");
        sess_close(s, "server shutdown");
    }
    uv_close((uv_handle_t *)&g->async, plain_close_cb);
    maybe_finish_stop(g);
}

void gw_free(gw_t *g)
{
    if (!g)
        return;
    free_map(&g->terms);
    hmap_free(&g->per_ip);
    hmap_free(&g->hs_ip);
    free_map(&g->authfail);
    /* Creations never reported (none once gw_stop has drained the writer). */
    while (g->cmd_reqs) {
        cmd_req_t *q = g->cmd_reqs;
        g->cmd_reqs = q->next;
        free(q);
    }
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

int gw_term_info(gw_t *g, const char *id, gw_term_info_t *out)
{
    term_t *t = hmap_get(&g->terms, id);
    if (!t)
        return GS_ENOTFOUND;
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
    return 0;
}

void gw_stats(gw_t *g, gw_stats_t *out)
{
    store_queue_depth(g->st, &g->st_.store_queue_items, &g->st_.store_queue_bytes);
    g->st_.inflight_bytes = g->reasm_bytes + g->backlog_bytes;
    g->st_.paused_reading = 0;
    for (sess_t *s = g->sessions; s; s = s->next)
        if (s->state == S_ONLINE && !s->reading)
            g->st_.paused_reading++;
    *out = g->st_;
}

void gw_set_block_observer(gw_t *g, gw_block_cb cb, void *ud)
{
    g->block_cb = cb;
    g->block_ud = ud;
}
