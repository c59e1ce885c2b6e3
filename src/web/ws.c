/* ws — web's WebSocket transport on libwebsockets 4.1 (contract in web.h, "WebSocket transport").
 *
 * lws upgrades a GET with "Upgrade: websocket" on our one protocol ("http", whose callback is
 * web.c's http_cb), so the WebSocket callbacks arrive there and are passed on here:
 *
 *   LWS_CALLBACK_HTTP_CONFIRM_UPGRADE  ws_filter; refused → our answer written straight to the
 *                                      socket, and -1 (lws hangs up). Accepted → a web_ws_t
 *                                      becomes the wsi's user data (lws_set_wsi_user), so every
 *                                      later callback of this wsi brings it.
 *   LWS_CALLBACK_ESTABLISHED           on_open
 *   LWS_CALLBACK_RECEIVE               fragments assembled → on_text (or a close 1003/1007/1009)
 *   LWS_CALLBACK_RECEIVE_PONG          heartbeat answered
 *   LWS_CALLBACK_SERVER_WRITEABLE      close frame, ping, or queued messages
 *   LWS_CALLBACK_CLOSED (or CLOSED_HTTP / WSI_DESTROY for a handshake that failed)  on_close
 *
 * A refusal is written with send() rather than through lws (with TLS, by lws_write), then lws
 * hangs up (-1): lws 4.1 would otherwise complete the HTTP transaction for a callback that
 * answered itself (return > 0) and go on reading the connection, a path with a known
 * use-after-free in lws_handshake_server (CVE-2025-11677). The socket is fresh from the
 * request, with nothing of lws's pending on it, so a small answer goes out whole.
 *
 * Closing. From RECEIVE, lws_close_reason + return -1 sends the close frame. From WRITEABLE it
 * does not (lws 4.1 takes the -1 for a failed write and drops the socket), so the close frame is
 * written there by hand and the client's answering close ends the connection
 * (WS_PEER_INITIATED_CLOSE). A close the client does not complete is cut off by the sweep
 * (LWS_TO_KILL_SYNC) after WS_CLOSE_WAIT_S: lws timeouts set from outside its own callbacks
 * are not armed until lws next sees I/O, which a client that stopped reading never causes.
 * Heartbeat and queue deadlines run on one uv timer per web_t (WS_SWEEP_MS).
 *
 * Why messages are written whole: lws_write() of a WebSocket message either takes it into the
 * kernel or keeps the rest in its own buffer and reports success; lws then withholds WRITEABLE
 * until that is flushed. So at most one message is in lws's hands per connection, and the queue
 * here, which the cap bounds, is all the rest.
 */
#include "web/web_int.h"

#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#define WS_MAGIC        0x7773636fu /* first field of web_ws_t; never a sess_t state value */
#define WS_SWEEP_MS     100         /* heartbeat and cap deadlines resolution */
#define WS_CLOSE_WAIT_S 2           /* a close the client does not take in time is cut off */
#define WS_WRITE_BURST  32          /* messages written per WRITEABLE, for fairness */
/* lws's private LWS_WRITE_CLOSE (lib/core/private-lib-core.h; 4 since lws 1.x, between
 * LWS_WRITE_HTTP and LWS_WRITE_PING in the public enum, which leaves it out) */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)
#define WS_RX_KEEP     8192 /* receive buffer capacity kept between messages */

/* A queued message: LWS_PRE bytes of headroom, then the payload (lws_write needs the room). */
typedef struct wsmsg {
    struct wsmsg *prev, *next; /* doubly linked: a coalesced replacement relinks in O(1) */
    char *key;                 /* coalesce key (owned; the map's key is its own copy), or NULL */
    size_t len;
    unsigned char data[]; /* LWS_PRE + len */
} wsmsg_t;

typedef enum {
    WS_UPGRADING = 0, /* accepted by ws_filter, handshake not complete */
    WS_OPEN,          /* on_open done */
} ws_state_t;

struct web_ws {
    uint32_t magic; /* WS_MAGIC: tells this user pointer from web.c's sess_t */
    web_t *w;
    struct lws *wsi;
    ws_state_t state;
    void *user; /* the application's */
    char remote[64];

    wsmsg_t *qhead, *qtail;
    size_t qbytes; /* payload bytes queued */
    hmap_t keys;   /* coalesce key -> queued wsmsg_t */
    uint64_t dropped;
    int64_t over_since_ns; /* monotonic: queue over its cap since, 0 = not */
    int64_t moved_ns;      /* monotonic: when the queue last moved (a message written, or the
                              first queued into an empty queue); 0 while empty */

    int64_t next_ping_ns; /* monotonic: when the next ping is due */
    int64_t ping_out_ns;  /* monotonic: a ping was requested then and not answered, 0 = none */
    int ping_want;        /* write a ping at the next WRITEABLE */

    int closing;     /* 0; 1 = close after the queue; 2 = close now (queue dropped) */
    int close_sent;  /* our close frame is written: waiting for the client's */
    int64_t kill_ns; /* monotonic: a close not finished by then is cut off (sweep), 0 = none */
    int close_code;
    char close_reason[124]; /* RFC 6455 5.5: 125 bytes of control payload, 2 for the code */

    buf_t rx; /* text message being assembled */

    struct web_ws *prev, *next; /* w->wss */
};

void ws_opts_fill(web_opts_t *o)
{
    if (!o->ws_queue_cap)
        o->ws_queue_cap = WEB_WS_QUEUE_CAP;
    if (!o->ws_over_cap_ms)
        o->ws_over_cap_ms = 10000;
    if (!o->ws_ping_ms)
        o->ws_ping_ms = 20000;
    if (!o->ws_max_msg)
        o->ws_max_msg = WEB_WS_MAX_MSG;
}

int ws_is(const void *user)
{
    return user && *(const uint32_t *)user == WS_MAGIC;
}

/* ---- queue ------------------------------------------------------------------------------- */

static void msg_free(wsmsg_t *m)
{
    free(m->key);
    free(m);
}

static void queue_drop(web_ws_t *ws)
{
    while (ws->qhead) {
        wsmsg_t *m = ws->qhead;
        ws->qhead = m->next;
        msg_free(m);
    }
    ws->qtail = NULL;
    ws->qbytes = 0;
    hmap_free(&ws->keys);
    hmap_init(&ws->keys);
    ws->over_since_ns = 0;
    ws->moved_ns = 0;
}

/* Re-evaluates "over its cap" after the queue changed: over it while non-droppable messages
 * have taken the queue past the cap. */
static void cap_check(web_ws_t *ws)
{
    if (ws->qbytes > ws->w->o.ws_queue_cap) {
        if (!ws->over_since_ns)
            ws->over_since_ns = time_mono_ns();
    } else {
        ws->over_since_ns = 0;
    }
}

/* Starts closing: mode 1 after the queue, 2 now (queue dropped). WRITEABLE sends the close
 * frame; a client that takes nothing more is cut off after WS_CLOSE_WAIT_S. */
static void ws_begin_close(web_ws_t *ws, int mode, int code, const char *reason)
{
    if (ws->closing || !ws->wsi)
        return;
    ws->closing = mode;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    size_t n = strlen(ws->close_reason);
    if (reason && strlen(reason) > n) /* cut: not inside a UTF-8 sequence (RFC 6455 5.5.1) */
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80) /* reason[n]: first cut */
            ws->close_reason[--n] = 0;
    if (mode == 2)
        queue_drop(ws);
    /* Our own deadline, not lws_set_timeout: called outside lws's service (from the
     * application or a timer), an lws timeout is not armed until lws next sees I/O on some
     * connection, which a client that reads nothing never causes. */
    ws->kill_ns = time_mono_ns() + (int64_t)WS_CLOSE_WAIT_S * 1000000000;
    lws_callback_on_writable(ws->wsi);
}

int web_ws_send(web_ws_t *ws, const char *data, size_t len, const char *coalesce_key, int droppable)
{
    if (!ws || ws->state != WS_OPEN || ws->closing || !ws->wsi)
        return GS_ECLOSED;
    web_t *w = ws->w;
    size_t cap = w->o.ws_queue_cap;
    wsmsg_t *old = coalesce_key ? hmap_get(&ws->keys, coalesce_key) : NULL;
    size_t base = ws->qbytes - (old ? old->len : 0);

    if (base + len > cap && (!old || base + len > 2 * cap)) {
        /* a replacement is made even past the cap: it adds at most its size difference */
        if (droppable && !old) {
            ws->dropped++;
            w->ws_st.ws_dropped++;
            return GS_ELIMIT;
        }
        if (base + len > 2 * cap) {
            w->ws_st.ws_closed_slow++;
            log_limited(LOG_INFO, ws->remote,
                        "WebSocket %s closed: send queue would pass twice its limit (%zu bytes)",
                        ws->remote, 2 * cap);
            ws_begin_close(ws, 2, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                           "send queue over twice its limit");
            return GS_ELIMIT;
        }
    }
    wsmsg_t *m = xmalloc(sizeof *m + LWS_PRE + len);
    m->prev = m->next = NULL;
    m->key = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, data, len);
    if (old) {
        /* In place of the old one: same position, same key. */
        m->key = old->key;
        old->key = NULL;
        m->prev = old->prev;
        m->next = old->next;
        if (m->prev)
            m->prev->next = m;
        else
            ws->qhead = m;
        if (m->next)
            m->next->prev = m;
        else
            ws->qtail = m;
        hmap_put(&ws->keys, m->key, m);
        ws->qbytes = base + len;
        msg_free(old);
        w->ws_st.ws_coalesced++;
        cap_check(ws);
        return 1; /* already waiting for WRITEABLE */
    }
    if (coalesce_key) {
        m->key = xstrdup(coalesce_key);
        hmap_put(&ws->keys, m->key, m);
    }
    int was_empty = !ws->qhead;
    m->prev = ws->qtail;
    if (ws->qtail)
        ws->qtail->next = m;
    else
        ws->qhead = m;
    ws->qtail = m;
    ws->qbytes += len;
    cap_check(ws);
    if (was_empty) { /* else WRITEABLE is already asked for (on_writeable asks again) */
        ws->moved_ns = time_mono_ns();
        lws_callback_on_writable(ws->wsi);
    }
    return 0;
}

size_t web_ws_queued_bytes(const web_ws_t *ws)
{
    return ws ? ws->qbytes : 0;
}

uint64_t web_ws_dropped(web_ws_t *ws)
{
    if (!ws)
        return 0;
    uint64_t n = ws->dropped;
    ws->dropped = 0;
    return n;
}

const char *web_ws_remote(const web_ws_t *ws)
{
    return ws ? ws->remote : "?";
}

void web_ws_close(web_ws_t *ws, int code, const char *reason)
{
    if (!ws || ws->state != WS_OPEN)
        return;
    if (code < 1000 || code > 4999)
        code = LWS_CLOSE_STATUS_NORMAL;
    ws_begin_close(ws, 1, code, reason);
}

int web_ws_set(web_t *w, const web_ws_cbs_t *cbs)
{
    if (!w)
        return GS_EINVAL;
    if (!cbs) {
        if (w->wss)
            return GS_EBUSY;
        memset(&w->wscb, 0, sizeof w->wscb);
        return 0;
    }
    if (!cbs->ws_filter || !cbs->on_open || !cbs->on_text || !cbs->on_close)
        return GS_EINVAL;
    if (w->wss)
        return GS_EBUSY; /* their on_close must come from the callbacks that opened them */
    w->wscb = *cbs;
    return 0;
}

/* ---- lifecycle of a connection ----------------------------------------------------------- */

static void ws_link(web_t *w, web_ws_t *ws)
{
    ws->next = w->wss;
    if (w->wss)
        w->wss->prev = ws;
    w->wss = ws;
}

static void ws_unlink(web_t *w, web_ws_t *ws)
{
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        w->wss = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    ws->prev = ws->next = NULL;
}

/* The end of a connection: on_close, then the handle is freed. The wsi forgets it first, so
 * the callbacks lws still makes for this wsi (DROP_PROTOCOL, WSI_DESTROY) find no user data. */
static void ws_end(web_ws_t *ws)
{
    web_t *w = ws->w;
    if (ws->wsi)
        lws_set_wsi_user(ws->wsi, NULL);
    ws->wsi = NULL;
    ws->closing = 2;
    ws_unlink(w, ws);
    if (ws->state == WS_OPEN)
        w->ws_st.ws_open--;
    ws->magic = 0;
    if (w->wscb.on_close)
        w->wscb.on_close(w->wscb.ud, ws, ws->user);
    queue_drop(ws);
    hmap_free(&ws->keys);
    buf_free(&ws->rx);
    free(ws);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Writes a refusal straight to the socket (see the top of this file), or with TLS through lws. */
static void write_refusal(struct lws *wsi, int status, const char *ctype, const buf_t *xhdr,
                          int own_cc, const buf_t *body)
{
    buf_t out = {0};
    buf_printf(&out,
               "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n%s"
               "x-content-type-options: nosniff\r\n",
               status, reason_phrase(status), ctype, body->len,
               own_cc ? "" : "cache-control: no-store\r\n");
    if (xhdr->len)
        buf_append(&out, xhdr->data, xhdr->len);
    buf_puts(&out, "connection: close\r\nserver: gridsense\r\n\r\n");
    if (body->len)
        buf_append(&out, body->data, body->len);
    if (lws_is_ssl(wsi)) {
        /* Inside TLS: through lws (which buffers what the socket does not take at once). */
        unsigned char *tb = xmalloc(LWS_PRE + out.len);
        memcpy(tb + LWS_PRE, out.data, out.len);
        if (lws_write(wsi, tb + LWS_PRE, out.len, LWS_WRITE_HTTP) < (int)out.len)
            log_limited(LOG_DEBUG, "web", "WebSocket refusal %d: not written", status);
        free(tb);
        buf_free(&out);
        return;
    }
    int fd = lws_get_socket_fd(wsi);
    size_t off = 0;
    while (fd >= 0 && off < out.len) {
        ssize_t k = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    if (off < out.len)
        log_limited(LOG_DEBUG, "web", "WebSocket refusal %d: %zu of %zu bytes written", status, off,
                    out.len);
    else
        shutdown(fd, SHUT_WR);
    buf_free(&out);
}

/* What lws would fail after ws_filter accepted (then only a hang-up), answered before it:
 * RFC 6455 section 4.2.1 (a 16-byte Sec-WebSocket-Key in base64, version 13, else 426 with
 * the version we speak, section 4.4), and a requested subprotocol, of which none is offered
 * (lws 4.1 drops such a connection). Returns NULL if fine, else the answer's text (*status). */
static const char *handshake_check(struct lws *wsi, int *status)
{
    char v[8];
    *status = 400;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_KEY) != 24)
        return "missing or malformed Sec-WebSocket-Key\n";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_VERSION) >= (int)sizeof v ||
        lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_VERSION) < 0 || strcmp(v, "13") != 0) {
        *status = 426;
        return "WebSocket version 13 required\n";
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0)
        return "no WebSocket subprotocol is offered: connect without Sec-WebSocket-Protocol\n";
    return NULL;
}

int ws_confirm_upgrade(web_t *w, struct lws *wsi, const char *proto)
{
    web_request_t req;
    web_response_t resp = {0};
    int cc = 0, status;
    const char *why = NULL;

    /* A connection being upgraded has a request outstanding: not an idle one to evict. */
    adm_wsi_idle(w->adm, wsi, 0);
    if (!proto || strcasecmp(proto, "websocket") != 0)
        return -1; /* h2c on a later request (a first one loses the header in admit.c) */
    void *snap = web_req_snapshot(wsi, &req);
    const char *bad = snap ? handshake_check(wsi, &status) : "bad request\n";
    if (bad) {
        if (!snap)
            status = 400;
        buf_puts(&resp.body, bad);
        if (status == 426)
            buf_puts(&resp.headers, "Sec-WebSocket-Version: 13\r\n");
        resp.content_type = "text/plain; charset=utf-8";
    } else if (!w->wscb.ws_filter) {
        status = 404;
        buf_puts(&resp.body, "not found\n");
        resp.content_type = "text/plain; charset=utf-8";
    } else if (w->wscb.ws_filter(w->wscb.ud, &req, &resp) == 0) {
        web_ws_t *ws = xcalloc(1, sizeof *ws);
        ws->magic = WS_MAGIC;
        ws->w = w;
        ws->wsi = wsi;
        ws->user = resp.ws_user;
        snprintf(ws->remote, sizeof ws->remote, "%s", req.remote);
        hmap_init(&ws->keys);
        ws_link(w, ws);
        /* Replaces (and frees) lws's per-session data of the HTTP request: every later callback
         * of this wsi carries ws, and lws never frees it (externally allocated). */
        lws_set_wsi_user(wsi, ws);
        buf_free(&resp.body);
        buf_free(&resp.headers);
        web_req_snapshot_free(snap);
        return 0;
    } else {
        status = resp.status;
        if (status < 400 || status > 599) {
            log_warn("web", "GET %s: WebSocket refused with status %d: answered 403", req.path,
                     status);
            status = 403;
        }
        if (resp.headers.len && (why = web_xhdr_check(&resp.headers, &cc)) != NULL) {
            log_warn("web", "GET %s: WebSocket refusal: %s: answered 500", req.path, why);
            status = 500;
            cc = 0;
            buf_free(&resp.headers);
            buf_free(&resp.body);
            buf_puts(&resp.body, "internal server error\n");
            resp.content_type = "text/plain; charset=utf-8";
        }
    }
    w->ws_st.ws_refused++;
    write_refusal(wsi, status, resp.content_type ? resp.content_type : "application/octet-stream",
                  &resp.headers, cc, &resp.body);
    buf_free(&resp.body);
    buf_free(&resp.headers);
    web_req_snapshot_free(snap);
    return -1;
}

/* ---- the connection's callbacks ---------------------------------------------------------- */

/* RFC 3629 section 4 (no overlongs, no surrogates, nothing above U+10FFFF). */
static int utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0; /* truncated sequence */
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xbf)
                return 0;
        i += k + 1;
    }
    return 1;
}

/* Fails the connection from inside a callback with a close frame (RFC 6455 section 7.1.7). */
static int ws_fail(web_ws_t *ws, int code, const char *reason)
{
    log_limited(LOG_INFO, ws->remote, "WebSocket %s closed (%d): %s", ws->remote, code, reason);
    ws->closing = 2;
    queue_drop(ws);
    lws_close_reason(ws->wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    return -1;
}

static int on_receive(web_ws_t *ws, const void *in, size_t len)
{
    web_t *w = ws->w;
    if (ws->closing)
        return 0; /* closing: what the client still sends is not for the application */
    if (lws_frame_is_binary(ws->wsi))
        return ws_fail(ws, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary messages not accepted");
    if (ws->rx.len + len > w->o.ws_max_msg)
        return ws_fail(ws, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
    buf_append(&ws->rx, in, len);
    if (!lws_is_final_fragment(ws->wsi))
        return 0;
    if (!utf8_valid((const unsigned char *)ws->rx.data, ws->rx.len))
        return ws_fail(ws, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text message is not valid UTF-8");
    w->wscb.on_text(w->wscb.ud, ws, ws->user, ws->rx.data ? ws->rx.data : "", ws->rx.len);
    if (ws->rx.cap > WS_RX_KEEP)
        buf_free(&ws->rx);
    else
        buf_reset(&ws->rx);
    return 0;
}

static int on_writeable(web_ws_t *ws)
{
    web_t *w = ws->w;
    struct lws *wsi = ws->wsi;
    if (ws->close_sent)
        return 0;
    if (ws->closing == 2 || (ws->closing == 1 && !ws->qhead)) {
        /* Written here rather than by lws_close_reason + return -1: lws 4.1 takes a non-zero
         * return from WRITEABLE for a failed write and drops the socket without the frame.
         * The client's answering close comes as WS_PEER_INITIATED_CLOSE, which ends it. */
        unsigned char buf[LWS_PRE + 2 + sizeof ws->close_reason];
        size_t rl = strlen(ws->close_reason);
        buf[LWS_PRE] = (unsigned char)(ws->close_code >> 8);
        buf[LWS_PRE + 1] = (unsigned char)ws->close_code;
        memcpy(buf + LWS_PRE + 2, ws->close_reason, rl);
        ws->close_sent = 1;
        if (lws_write(wsi, buf + LWS_PRE, 2 + rl, WS_WRITE_CLOSE) < 0)
            return -1;
        ws->kill_ns = time_mono_ns() + (int64_t)WS_CLOSE_WAIT_S * 1000000000;
        return 0;
    }
    if (ws->ping_want) {
        /* With a payload: lws 4.1 reports no RECEIVE_PONG for an empty pong. */
        unsigned char buf[LWS_PRE + 8];
        uint64_t t = (uint64_t)ws->ping_out_ns;
        for (int i = 0; i < 8; i++)
            buf[LWS_PRE + i] = (unsigned char)(t >> (56 - 8 * i));
        ws->ping_want = 0;
        if (lws_write(wsi, buf + LWS_PRE, 8, LWS_WRITE_PING) < 0)
            return -1;
    }
    for (int i = 0; i < WS_WRITE_BURST && ws->qhead && !lws_send_pipe_choked(wsi); i++) {
        wsmsg_t *m = ws->qhead;
        ws->qhead = m->next;
        if (ws->qhead)
            ws->qhead->prev = NULL;
        else
            ws->qtail = NULL;
        ws->qbytes -= m->len;
        if (m->key && hmap_get(&ws->keys, m->key) == m)
            hmap_del(&ws->keys, m->key);
        int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        size_t len = m->len;
        msg_free(m);
        if (n < 0 || (size_t)n < len)
            return -1;
        w->ws_st.ws_msgs_sent++;
        w->ws_st.ws_bytes_sent += len;
        ws->moved_ns = ws->qhead ? time_mono_ns() : 0;
    }
    cap_check(ws);
    if (ws->qhead || ws->closing)
        lws_callback_on_writable(wsi);
    return 0;
}

int ws_callback(web_t *w, struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    web_ws_t *ws = user;
    (void)w;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        ws->state = WS_OPEN;
        ws->next_ping_ns = time_mono_ns() + (int64_t)ws->w->o.ws_ping_ms * 1000000;
        ws->w->ws_st.ws_open++;
        ws->w->ws_st.ws_accepted++;
        ws->w->wscb.on_open(ws->w->wscb.ud, ws, &ws->user);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(ws, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        ws->ping_out_ns = 0;
        ws->next_ping_ns = time_mono_ns() + (int64_t)ws->w->o.ws_ping_ms * 1000000;
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(ws);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* the answer to our close frame: done (else lws answers the client's close) */
        return ws->close_sent ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (reason == LWS_CALLBACK_WSI_DESTROY) {
            ws_end(ws);
            adm_wsi_destroyed(w->adm, wsi); /* web.c's share of this callback */
            return 0;
        }
        ws_end(ws);
        return 0;
    default:
        (void)wsi;
        return 0;
    }
}

/* ---- heartbeat and queue deadlines ------------------------------------------------------- */

static void sweep_cb(uv_timer_t *t)
{
    web_t *w = t->data;
    int64_t now = time_mono_ns();
    int64_t ping_ns = (int64_t)w->o.ws_ping_ms * 1000000;
    for (web_ws_t *ws = w->wss, *next; ws; ws = next) {
        next = ws->next; /* ws may end right here (the synchronous kill) */
        if (ws->kill_ns && now >= ws->kill_ns && ws->wsi) {
            /* The close did not complete in time: cut the connection off. Synchronous (we are
             * outside lws's service, the wsi is not in use); CLOSED → ws_end → on_close. */
            ws->kill_ns = 0;
            lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
            continue;
        }
        if (ws->state != WS_OPEN || ws->closing || !ws->wsi)
            continue;
        int64_t limit = (int64_t)w->o.ws_over_cap_ms * 1000000;
        int over = ws->over_since_ns && now - ws->over_since_ns >= limit;
        int stuck = ws->qhead && ws->moved_ns && now - ws->moved_ns >= limit;
        if (over || stuck) {
            /* Past the cap too long, or nothing of the queue taken for as long (a client that
             * has stopped reading: its queue sits at the cap, full of what could not be
             * dropped, while droppable messages are dropped). */
            char why[96];
            const char *what = over ? "over its limit" : "not moving";
            if (w->o.ws_over_cap_ms % 1000 == 0)
                snprintf(why, sizeof why, "send queue %s for %d s", what,
                         w->o.ws_over_cap_ms / 1000);
            else
                snprintf(why, sizeof why, "send queue %s for %d ms", what, w->o.ws_over_cap_ms);
            w->ws_st.ws_closed_slow++;
            log_limited(LOG_INFO, ws->remote, "WebSocket %s closed: %s", ws->remote, why);
            ws_begin_close(ws, 2, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
        } else if (ws->ping_out_ns && now - ws->ping_out_ns >= ping_ns) {
            w->ws_st.ws_closed_ping++;
            log_limited(LOG_INFO, ws->remote, "WebSocket %s closed: ping not answered in %d ms",
                        ws->remote, w->o.ws_ping_ms);
            ws_begin_close(ws, 2, LWS_CLOSE_STATUS_GOINGAWAY, "ping not answered");
        } else if (!ws->ping_out_ns && now >= ws->next_ping_ns) {
            ws->ping_out_ns = now;
            ws->ping_want = 1;
            lws_callback_on_writable(ws->wsi);
        }
    }
}

void ws_start(web_t *w)
{
    uv_timer_init(w->loop, &w->ws_timer);
    w->ws_timer.data = w;
    uv_timer_start(&w->ws_timer, sweep_cb, WS_SWEEP_MS, WS_SWEEP_MS);
    w->ws_timer_on = 1;
}

void ws_stop(web_t *w)
{
    if (w->ws_timer_on) {
        uv_close((uv_handle_t *)&w->ws_timer, NULL);
        w->ws_timer_on = 0;
    }
}

void ws_stop_after(web_t *w)
{
    /* lws_context_destroy closes every connection with its callbacks; this is for any it did
     * not (so that on_close comes exactly once in every case). */
    if (w->wss)
        log_debug("web", "WebSocket connections lws did not close: ending them");
    while (w->wss) {
        w->wss->wsi = NULL; /* lws is done with it: not to be touched */
        ws_end(w->wss);
    }
}
