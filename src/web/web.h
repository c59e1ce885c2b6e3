/* web — the HTTP and WebSocket server (libwebsockets driven by the application's libuv loop).
 *
 * Transport only: it accepts HTTP/1.1 requests, collects the body (up to WEB_MAX_BODY bytes),
 * hands each request to one application handler and sends the response; WebSocket upgrades go
 * to the application's WebSocket callbacks (see "WebSocket transport" below). Routing and
 * content (REST /api/v1, /metrics, the live feed) live with the application.
 *
 * Threads: a web_t belongs to the loop given to web_start and to the thread that runs it. All
 * web_* calls for it, and all its callbacks, happen on that thread. Several web_t may run on
 * several loops in several threads at once (each has its own lws context; web keeps no
 * process-wide mutable state apart from lws's log level, which every web_start sets alike).
 *
 * Connections are accepted by web itself, not by lws: web admits them against the connection
 * caps (web_opts_t; at a cap the oldest connection without a request outstanding is closed to
 * make room), reads and checks the first request head (431 over WEB_MAX_HEAD bytes or
 * WEB_MAX_FIELDS lines, 400 for a malformed one, 408/close when it does not arrive within
 * request_timeout_s), drops the header lines lws 4.1's parser would stall on (see web.c), and
 * only then hands the socket and the head to lws. Later requests on a kept-alive connection are
 * read by lws directly; one lws has begun but not finished parsing after 1 s gets 408 from web
 * (admit.c), and a connection whose first head had lines dropped is closed after its answer.
 * WebSocket connections count against the same caps (max_connections, max_per_address: raise
 * the latter for tests that open many clients from one address) and are never evicted.
 */
#ifndef GS_WEB_H
#define GS_WEB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/util.h"

#define WEB_MAX_BODY   (64 * 1024)
#define WEB_MAX_HEAD   8192 /* request line + header lines + CRLFs; more gets 431 */
#define WEB_MAX_FIELDS 64   /* header lines per request; more gets 431 (RFC 6585 section 5) */

/* Connection limits and timeouts; web_opts_default fills the defaults. */
typedef struct {
    int max_connections;   /* HTTP connections open at once (default 4096); web_start lowers it
                              to the process's open-file limit minus reserved_fds */
    int max_per_address;   /* per IPv4 address or IPv6 /64 (default 64) */
    int request_timeout_s; /* a request head must be complete this long after the connection
                              opened (or, on a kept-alive connection, after it began) (default 5) */
    int keepalive_s;       /* idle time allowed between requests on one connection (default 15) */
    int reserved_fds;      /* open files the rest of the process may use (default 64); the server
                              adds its terminal connection cap */
    /* WebSocket connections (see "WebSocket transport" below); 0 = the default */
    size_t ws_queue_cap; /* send queue bytes per connection (default WEB_WS_QUEUE_CAP) */
    int ws_over_cap_ms;  /* a connection over its queue cap this long, or whose queue has not
                            moved this long, is closed with 1008 (default 10000) */
    int ws_ping_ms;      /* ping period, and how long a ping may go unanswered before the
                            connection is closed (default 20000) */
    size_t ws_max_msg;   /* largest message accepted from a client; bigger: close 1009 (default
                            WEB_WS_MAX_MSG) */
    /* TLS on the port (lws with OpenSSL): PEM paths of the certificate (chain) and its private
     * key, read by web_start; both NULL (default) = plain HTTP. With TLS every connection must
     * speak TLS (no plain HTTP beside it), web cannot read the first request head before lws
     * (so a stalled head is cut off, not answered 408), and web_request_t.tls is 1. */
    const char *tls_cert;
    const char *tls_key;
} web_opts_t;

#define WEB_WS_QUEUE_CAP (1024 * 1024)
#define WEB_WS_MAX_MSG   (64 * 1024)

/* Fills *o with the defaults above. */
void web_opts_default(web_opts_t *o);

typedef struct web web_t;

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* decoded path without the query, e.g. "/api/v1/terminals/T1"; lws has
                            already resolved "." / ".." segments */
    const char *query;   /* query string without '?', "" if none; lws decodes it, so web re-encodes
                            the non-empty '&' parts ('%', '&', '+', '#', later '=', spaces and
                            non-ASCII as %XX): parse it with an ordinary query decoder */
    const uint8_t *body; /* request body (NULL if none) */
    size_t body_len;
    const char *remote; /* peer address text */

    /* Request header values, NULL when the header is absent, "" when present but empty, with
     * surrounding whitespace removed. Like every pointer here they are valid only during the
     * handler call (a deferred request copies what it needs before returning). A header sent
     * more than once (lws 4.1 keeps every occurrence) arrives as one value, the occurrences
     * joined in order with ", " (RFC 9110 section 5.3), for cookie with "; " (RFC 6265 5.4:
     * "Cookie: a=1" + "Cookie: b=2" -> "a=1; b=2"); empty occurrences add nothing. So a proxy
     * chain in X-Forwarded-For reads left (client) to right (last proxy) either way. */
    const char *cookie;
    const char *authorization;
    const char *origin;
    const char *referer;
    const char *host;
    const char *content_type;
    const char *x_forwarded_for;
    const char *accept_encoding;
    const char *user_agent;
    const char *if_none_match; /* for ETag revalidation of static assets */
    int tls;         /* non-zero when the connection is TLS (web_opts_t.tls_cert set) */
    void *web_priv_; /* the transport's own (for web_defer); handlers do not touch it */
} web_request_t;

/* Extra response header lines a handler may add (web_response_t.headers), in bytes: a response
 * with more, or with a malformed line, is replaced by a 500 (and logged). */
#define WEB_MAX_RESP_HEADERS 4096

typedef struct {
    int status;               /* HTTP status code; the handler must set it */
    const char *content_type; /* static string, e.g. "application/json" */
    buf_t body;               /* response body; web frees it after sending */
    /* Extra header lines, each exactly "Name: value\r\n" (name an RFC 9110 token, value without
     * CR, LF or control bytes other than HTAB), e.g. Set-Cookie, Retry-After, WWW-Authenticate,
     * Vary. web sends them after its own headers (status line, content-type, content-length,
     * "x-content-type-options: nosniff", "cache-control: no-store" unless a Cache-Control line is
     * among the extras, "connection: close" when web closes) and frees the buffer, also when the
     * request is deferred. A malformed block (a bare CR or LF, no final CRLF, an empty or
     * non-token name, a Content-Type, Content-Length, Connection or Transfer-Encoding line, which
     * are web's) or one over WEB_MAX_RESP_HEADERS bytes is not sent: the client gets a 500 and
     * the log names the request. */
    buf_t headers;
    void *ws_user; /* ws_filter only: the application's pointer for an accepted WebSocket,
                      handed to on_open (see below); ignored elsewhere */
    /* Streamed body (optional, for answers too big to build in memory, e.g. exports; body must
     * stay empty): web calls stream(stream_ud, out) whenever the connection can take more; it
     * appends the next bytes to out (an empty buffer) and returns 1 (more to come), 0 (done) or
     * a negative code (failed: web closes the connection without the last chunk, so the client
     * sees an incomplete answer, never a short one taken for whole). The answer is sent with
     * "Transfer-Encoding: chunked" (no Content-Length, RFC 9112 section 7.1) and
     * "connection: close". stream_free(stream_ud) is called exactly once: when the answer is
     * finished, when the connection goes away, or at once when web answers 500 instead (a bad
     * header block). Only for answers given in the handler (not deferred ones); only with a
     * 2xx status (otherwise it is freed unused). Loop thread. */
    int (*stream)(void *stream_ud, buf_t *out);
    void (*stream_free)(void *stream_ud);
    void *stream_ud;
} web_response_t;

/* Application handler. Fills *resp; called once per complete request. */
typedef void (*web_handler_fn)(void *ud, const web_request_t *req, web_response_t *resp);

/* ---- Deferred responses ----
 * A handler that cannot answer at once (e.g. it waits for the store writer to commit) calls
 * web_defer(req) and returns, leaving resp untouched (anything put in it is discarded). The
 * request then waits until the application calls web_complete on the loop thread, exactly once
 * per handle. The transport gives a deferred request at most WEB_DEFER_MAX_S before it closes
 * the connection without an answer (a backstop against a handle that is never completed; the
 * application should answer well before, e.g. with 503). If the client went away meanwhile
 * (or web_stop ran), web_complete is a safe no-op that only releases the handle and the body. */
typedef struct web_pending web_pending_t;

#define WEB_DEFER_MAX_S 300

/* Marks the request being handled as deferred and returns its handle (never NULL). Call only
 * from inside the handler, at most once per request. Loop thread. */
web_pending_t *web_defer(const web_request_t *req);

/* Answers a deferred request with status (200..599), content_type (a static string; NULL =
 * application/octet-stream) and body (taken over and reset to empty; NULL = no body), and
 * releases the handle. Loop thread. */
void web_complete(web_pending_t *p, int status, const char *content_type, buf_t *body);

/* web_complete with extra header lines (format and limits as web_response_t.headers; taken over
 * and reset to empty like body; NULL = none). A malformed or oversized block turns the answer
 * into a 500. Loop thread. */
void web_complete_h(web_pending_t *p, int status, const char *content_type, buf_t *headers,
                    buf_t *body);

/* Starts listening on host:port (port 0 = OS-chosen) with `loop` as lws's foreign loop. host is
 * a numeric IPv4/IPv6 address, or NULL / "" / "*" for any. On failure returns a negative code
 * (-errno from bind, e.g. UV_EADDRINUSE, or GS_EINVAL / GS_EIO) with a one-line reason in err;
 * if lws itself failed, the loop must run once more for lws to release its handles. */
int web_start(uv_loop_t *loop, const char *host, int port, web_handler_fn fn, void *ud, web_t **out,
              char *err, size_t errlen);

/* web_start with explicit limits (opts NULL = defaults; start from web_opts_default). Values
 * out of range (< 1; negative ws_* times; only one of tls_cert / tls_key) are GS_EINVAL; a
 * certificate or key lws cannot load is GS_EIO ("web: cannot set up TLS ..." in err). */
int web_start_opts(uv_loop_t *loop, const char *host, int port, const web_opts_t *opts,
                   web_handler_fn fn, void *ud, web_t **out, char *err, size_t errlen);

/* ---- WebSocket transport -------------------------------------------------------------------
 * An HTTP/1.1 GET with "Upgrade: websocket" (RFC 6455 section 4) on any path, first request of a
 * connection or a later one, reaches the application only through web_ws_cbs_t, never through
 * the HTTP handler. Everything below runs on the loop thread of the web_t, in its callbacks or
 * from other code on that thread; nothing may be called from another thread.
 *
 * 1. ws_filter(ud, req, resp) decides BEFORE the upgrade completes. req is as for the HTTP
 *    handler (method "GET", path, query, remote, the request headers; valid during the call
 *    only; body NULL). Return 0 to accept: resp->ws_user may carry the application's pointer for
 *    this connection (e.g. the authenticated principal), which on_open receives. Return non-zero
 *    to refuse: the client gets resp->status (400..599; anything else becomes 403) with
 *    resp->content_type, resp->body and resp->headers (same rules as for HTTP responses; a bad
 *    header block becomes a 500) and the connection is closed. A refusal is written at once, so
 *    keep it small (a few KiB). ws_filter cannot defer (no web_defer): it decides
 *    synchronously. It is the place for authentication (cookie / authorization), the Host
 *    check and, for cookie sessions, the Origin check (browsers send cookies with cross-site
 *    WebSocket handshakes: cross-site WebSocket hijacking). Without callbacks (web_ws_set never
 *    called, or cbs NULL) every upgrade is refused with 404. Upgrades that are not for
 *    WebSocket (e.g. curl's "Upgrade: h2c") are ignored on a connection's first request, which
 *    is then served as HTTP/1.1, and hung up on a later one.
 * 2. on_open(ud, ws, &user) comes when the handshake is complete (101 sent); *user holds
 *    resp->ws_user and may be replaced. From then on ws is valid until on_close returns.
 * 3. on_text(ud, ws, user, data, len): one complete text message (fragments assembled, at most
 *    ws_max_msg bytes, valid UTF-8; data is NUL-terminated for convenience and valid during the
 *    call). A binary message closes the connection with 1003, a bigger one with 1009, invalid
 *    UTF-8 with 1007 (RFC 6455 sections 7.4.1, 8.1); pings are answered by the transport.
 *    Nothing is delivered once the connection is closing. The callbacks run on the loop: they
 *    must not block (no waiting on another thread; post the work and answer later with
 *    web_ws_send). web_ws_send and web_ws_close may be called from on_open and on_text.
 * 4. on_close(ud, ws, user) comes exactly once for every upgrade ws_filter accepted: after
 *    on_open normally, or without on_open in the rare case lws fails the handshake after the
 *    filter (web checks Sec-WebSocket-Key and -Version before the filter, answering 400 / 426,
 *    and refuses a requested subprotocol with 400: none is offered). The handle is invalid
 *    when it returns (free `user` there). It also comes from inside web_stop for connections
 *    still open. Do not call web_ws_* on ws from inside on_close.
 *
 * Sending: web_ws_send queues one text message; the transport writes queued messages in order
 * when the socket can take them (one whole message per write, lws buffering at most one
 * partly written message). Per connection the queue holds at most ws_queue_cap bytes:
 *  - coalesce_key != NULL: a queued message with the same key that has not begun to be written
 *    is replaced in place (its position kept), also past the cap (never dropped): latest-value
 *    topics ("terminal/T1/latest"). Without such a message it is queued like any other.
 *  - droppable (e.g. waveform frames): dropped if it does not fit; counted (web_ws_dropped, for
 *    telling the client, and web_stats_t.ws_dropped).
 *  - not droppable: queued even past the cap; the connection is then "over its cap" until the
 *    queue is back within it.
 *  Closed with 1008 and a reason (counted in ws_closed_slow), the queue dropped:
 *  - over its cap for ws_over_cap_ms: "send queue over its limit for 10 s";
 *  - messages waiting and none written for ws_over_cap_ms (a client that stopped reading; its
 *    droppable messages are dropped meanwhile): "send queue not moving for 10 s";
 *  - at once when a send would take the queue past twice the cap: "send queue over twice its
 *    limit" (web_ws_send returns GS_ELIMIT).
 *  So a connection never holds more than 2 x ws_queue_cap (+ the one message lws may hold),
 *  and a client that reads, even slowly, is never closed for dropped droppable messages: it
 *  gets fewer of them (tell it with web_ws_dropped).
 * Heartbeat: a ping every ws_ping_ms; if its pong has not come ws_ping_ms later (a client that
 * does not read cannot answer), the connection is closed (1001 "ping not answered").
 * Closing: web_ws_close(ws, code, reason) sends what is queued, then the close frame (code and
 * reason, e.g. 4401 "session expired"); a client that does not take them within 2 s is cut off
 * (the same 2 s apply to the closes above, whose queue is dropped first). on_close follows in
 * every case. A client's own close is answered and ends in on_close too.
 * Accepting: what the filter put in resp->body / resp->headers when it returns 0 is discarded;
 * the 101 answer carries only the handshake headers.
 */
typedef struct web_ws web_ws_t;

typedef struct {
    int (*ws_filter)(void *ud, const web_request_t *req, web_response_t *resp);
    void (*on_open)(void *ud, web_ws_t *ws, void **user);
    void (*on_text)(void *ud, web_ws_t *ws, void *user, const char *data, size_t len);
    void (*on_close)(void *ud, web_ws_t *ws, void *user);
    void *ud; /* first argument of the four */
} web_ws_cbs_t;

/* Enables WebSocket upgrades with these callbacks (copied; all four must be set, else
 * GS_EINVAL), or refuses them again with cbs NULL. Returns 0, or GS_EBUSY while WebSocket
 * connections are open (their on_close belongs to the callbacks that accepted them). Call it
 * right after web_start. Loop thread. */
int web_ws_set(web_t *w, const web_ws_cbs_t *cbs);

/* Queues the text message data[0..len) (copied; the caller keeps data; must be valid UTF-8,
 * which is not checked). Returns 0 queued, 1 replaced a queued message with the same
 * coalesce_key, GS_ELIMIT dropped (droppable and over the cap, or the connection is being
 * closed for its queue), GS_ECLOSED if the connection is closing (web_ws_close, a failure,
 * web_stop). Loop thread. */
int web_ws_send(web_ws_t *ws, const char *data, size_t len, const char *coalesce_key,
                int droppable);

/* Bytes of messages queued and not yet handed to the socket. */
size_t web_ws_queued_bytes(const web_ws_t *ws);

/* Messages dropped (web_ws_send returned GS_ELIMIT) since the last call; resets the count. */
uint64_t web_ws_dropped(web_ws_t *ws);

/* The peer address text of the connection (as web_request_t.remote). */
const char *web_ws_remote(const web_ws_t *ws);

/* Closes the connection: queued messages first, then a close frame with code (1000..4999) and
 * reason (at most 123 bytes; NULL = none); further sends return GS_ECLOSED. on_close follows
 * (later, never from inside this call). A second call is a no-op. Loop thread. */
void web_ws_close(web_ws_t *ws, int code, const char *reason);

/* Connection counters, for metrics and tests (all counters since web_start). */
typedef struct {
    int open;                     /* connections open now (being read by web or served by lws) */
    int max_connections;          /* the cap in force (after the open-file limit) */
    uint64_t accepted;            /* admitted */
    uint64_t refused;             /* closed at once: over a cap with nothing idle to evict */
    uint64_t refused_per_address; /* of those, over max_per_address (the rest: the total cap) */
    uint64_t evicted;      /* idle connections (no request outstanding) closed to make room */
    uint64_t timed_out;    /* closed because a request head did not arrive in time (silently if
                              nothing came, else after a 408) */
    uint64_t bad_requests; /* answered 400/414/431 by web before lws saw them */
    uint64_t answered_400; /* answers web gave itself, by status: to a connection's first head, */
    uint64_t answered_408; /* and 408 also to a later head stalled in lws (see admit.c) */
    uint64_t answered_414;
    uint64_t answered_431;
    uint64_t heads_rewritten; /* heads passed to lws with unparseable header lines dropped */
    /* WebSocket */
    int ws_open;             /* WebSocket connections open now (on_open done, on_close not) */
    uint64_t ws_accepted;    /* upgrades completed (on_open) */
    uint64_t ws_refused;     /* upgrades refused (ws_filter, or no callbacks) */
    uint64_t ws_msgs_sent;   /* messages handed to the socket */
    uint64_t ws_bytes_sent;  /* their payload bytes */
    uint64_t ws_dropped;     /* droppable messages dropped at the queue cap */
    uint64_t ws_coalesced;   /* messages that replaced a queued one (coalesce_key) */
    uint64_t ws_closed_slow; /* connections closed for their send queue (1008) */
    uint64_t ws_closed_ping; /* connections closed for an unanswered ping */
} web_stats_t;

/* Copies the counters into *st. */
void web_stats(const web_t *w, web_stats_t *st);

/* The port actually bound (useful with port 0). */
int web_port(const web_t *w);

/* Begins shutdown from inside the running loop: stops listening and closes connections (lws
 * needs lws_context_destroy once here and once after uv_run returns). */
void web_stop(web_t *w);

/* Final release after uv_run has returned; web_stop must have run inside the loop before.
 * NULL is a no-op. */
void web_free(web_t *w);

#endif
