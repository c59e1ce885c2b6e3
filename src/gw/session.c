/* Terminal gateway sessions: lifecycle, output, the read path with frame dispatch, liveness. */
#include "internal.h"

#include "core/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE_GRACE_NS (5 * 1000000000LL)
/* Missed heartbeats: BYE DEAD when this many PINGs in a row are unanswered at the moment the next
 * one would be sent (protocol.md 9.1), i.e. WELCOME + (DEAD_PINGS + 1) x heartbeat_s. */
#define DEAD_PINGS 3

const char *gw__who(const sess_t *s)
{
    if (s->term)
        return s->term->id;
    if (s->hello_id[0])
        return s->hello_id;
    return s->remote;
}

static void handle_close_cb(uv_handle_t *h);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

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
void gw__sess_write(sess_t *s, const uint8_t *frame, int len)
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
            log_limited(LOG_DEBUG, s->ip, "%s: write failed: %s", gw__who(s), uv_strerror(rc));
        close_asap(s, "write error");
        return;
    }
    gw_t *g = s->gw;
    g->st_.bytes_tx += (uint64_t)len;
    g->st_.frames_tx[frame[3]]++;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) > g->o.max_write_queue &&
        s->state != S_CLOSING) {
        log_limited(LOG_WARN, s->ip, "%s: peer not reading (%zu bytes queued), closing", gw__who(s),
                    uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp));
        g->st_.sessions_stalled++;
        close_asap(s, "stalled");
    }
}

void gw__send_reject(sess_t *s, int frame_bye, uint16_t reason, uint16_t retry, const char *msg)
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

void gw__send_error(sess_t *s, uint16_t code, uint8_t type, const char *msg)
{
    gstp_error_t e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.frame_type = type;
    snprintf(e.message, sizeof e.message, "%s", msg);
    SEND(s, gstp_encode_error, &e);
}

/* ---- session lifecycle ------------------------------------------------------------------------
 */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    sess_t *s = req->data;
    (void)status;
    if (!s->handle_closing) {
        s->handle_closing = 1;
        uv_close((uv_handle_t *)&s->tcp, handle_close_cb);
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
    gw__maybe_finish_stop(g);
}

static void handle_close_cb(uv_handle_t *h)
{
    sess_free_cb(h);
}

/* Writes the end of an online session to the sessions log (once). */
void gw__log_session_close(sess_t *s, const char *reason)
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
void gw__sess_close(sess_t *s, const char *reason)
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
    gw__free_block(s);
    gw__release_counts(s);
    g->st_.connections_open--;
    if (was_online && s->term && s->term->sess == s) {
        term_t *t = s->term;
        t->sess = NULL;
        g->st_.online--;
        log_info(t->id, "offline (%s) after %llu frames, %llu blocks", reason,
                 (unsigned long long)s->frames, (unsigned long long)s->blocks);
        gw__log_session_close(s, reason);
        gw__publish_stats(g);
        gw__term_event(g, t, GW_TERM_OFFLINE); /* visible to other threads at once */
        gw__session_event(g, s, GW_TERM_OFFLINE);
    } else if (log_get_level() >= LOG_DEBUG) {
        log_limited(LOG_DEBUG, s->ip, "%s: connection from %s closed (%s)", gw__who(s), s->remote,
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

void gw__update_reading(sess_t *s)
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
void gw__check_pressure(gw_t *g)
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
            gw__update_reading(s);
    }
}

/* ---- frame dispatch -----------------------------------------------------------------------------
 */

static void on_status(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_status_t st;
    if (gstp_parse_status(f, &st) < 0) {
        g->st_.parse_errors++;
        gw__send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed STATUS");
        return;
    }
    term_t *t = s->term;
    t->has_status = 1;
    t->status = st;
    t->status_rx_ns = time_utc_ns();
    gw__term_event(g, t, GW_TERM_STATUS);
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
        gw__send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed PONG");
        return;
    }
    uint32_t behind = s->ping_token - p.token; /* 0 = the latest PING; modulo 2^32 */
    if (behind < (uint32_t)s->pings_out)
        s->pings_out = (int)behind; /* the PINGs after it are still outstanding */
    else if (log_get_level() >= LOG_DEBUG)
        log_limited(LOG_DEBUG, s->ip, "%s: PONG token %u answers no outstanding PING", gw__who(s),
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
            gw__login_failed(s, GSTP_REJ_PROTOCOL, m);
        } else if (s->state == S_ONLINE) {
            log_limited(LOG_WARN, s->ip, "%s: frame %s ignored: %s", gw__who(s),
                        gstp_type_name(f->type), m);
            gw__send_error(s, GSTP_ERR_UNEXPECTED, f->type, m);
        }
        return;
    }
    if (strcmp(gstp_type_name(f->type), "UNKNOWN") == 0) {
        /* Extension rule (protocol.md 6.1): unknown types are answered and ignored in every
         * state, even during the handshake. */
        if (log_get_level() >= LOG_DEBUG)
            log_limited(LOG_DEBUG, s->ip, "%s: unknown frame type 0x%02x ignored", gw__who(s),
                        f->type);
        gw__send_error(s, GSTP_ERR_UNKNOWN_TYPE, f->type, "unknown frame type");
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
            gw__login_failed(s, GSTP_REJ_PROTOCOL, m);
        } else if (want == GSTP_HELLO) {
            gw__on_hello(s, f);
        } else {
            gw__on_auth(s, f);
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
        log_limited(LOG_WARN, s->ip, "%s: sent %s, a server-only frame type; ignored", gw__who(s),
                    gstp_type_name(f->type));
        gw__send_error(s, GSTP_ERR_UNEXPECTED, f->type, "frame type sent only by the server");
        return;
    }
    switch (f->type) {
    case GSTP_WAVEFORM:
    case GSTP_EVENT:
        gw__on_block(s, f);
        break;
    case GSTP_STATUS:
        on_status(s, f);
        break;
    case GSTP_RESULT:
        gw__on_result(s, f);
        break;
    case GSTP_PING: {
        gstp_ping_t p;
        if (gstp_parse_ping(f, &p) < 0) {
            g->st_.parse_errors++;
            gw__send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed PING");
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
        gw__sess_close(s, "bye");
        break;
    }
    case GSTP_ERROR: {
        gstp_error_t e;
        if (gstp_parse_error(f, &e) == 0)
            log_limited(LOG_WARN, s->ip, "%s: terminal reports error %u on frame %s: %s",
                        gw__who(s), e.code, gstp_type_name(e.frame_type), e.message);
        break;
    }
    case GSTP_HELLO:
    case GSTP_AUTH:
        gw__send_error(s, GSTP_ERR_UNEXPECTED, f->type, "already authenticated");
        break;
    default:
        /* A type gstp_type_name knows but this version does not handle (none today). */
        gw__send_error(s, GSTP_ERR_UNKNOWN_TYPE, f->type, "unknown frame type");
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
        gw__sess_close(s, nread == UV_EOF ? "peer closed" : uv_err_name((int)nread));
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
            log_limited(LOG_ERROR, s->ip, "%s: decoder made no progress; closing", gw__who(s));
            gw__sess_close(s, "decoder stall");
        }
    }
    account_decoder(g, &before, &s->dec);
}

/* ---- liveness -----------------------------------------------------------------------------------
 */

void gw__sessions_tick(gw_t *g)
{
    int64_t now = time_mono_ns();
    int64_t hb = (int64_t)g->o.heartbeat_s * 1000000000LL;
    int64_t hs = (int64_t)g->o.handshake_timeout_ms * 1000000LL;
    for (sess_t *s = g->sessions, *next; s; s = next) {
        next = s->next;
        if (s->close_asap && s->state != S_CLOSING) {
            char reason[64];
            snprintf(reason, sizeof reason, "%s", s->close_reason);
            gw__sess_close(s, reason);
        }
        if (g->stopping && s->state != S_CLOSING)
            continue; /* gw_stop closes every session itself */
        switch (s->state) {
        case S_HELLO:
        case S_AUTH:
            if (now - s->accepted_ns > hs)
                gw__login_failed(s, GSTP_REJ_TIMEOUT, "handshake timeout");
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
                gw__send_reject(s, 1, GSTP_REJ_DEAD, 0, "heartbeat timeout");
                gw__sess_close(s, "heartbeat timeout");
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
}
