/* web — HTTP/1.1 transport on libwebsockets 4.1, driven by the application's libuv loop.
 *
 * Shape (as in ttyd): one lws context created with LWS_SERVER_OPTION_LIBUV and the caller's loop
 * as its only foreign loop, one explicit vhost that listens on host:port, one protocol whose
 * callback turns lws events into web_request_t / web_response_t.
 *
 * Per request (lws allocates the per-session data afresh for every HTTP transaction, and frees
 * it on LWS_CALLBACK_HTTP_DROP_PROTOCOL; our heap parts are released there and on
 * LWS_CALLBACK_CLOSED_HTTP, whichever comes first):
 *
 *   LWS_CALLBACK_HTTP             method, path, query, peer; no body → dispatch now
 *   LWS_CALLBACK_HTTP_BODY        append (the Content-Length was checked against WEB_MAX_BODY)
 *   LWS_CALLBACK_HTTP_BODY_COMPLETION  dispatch
 *   LWS_CALLBACK_HTTP_WRITEABLE   headers, then the body in WEB_CHUNK pieces, one per callback,
 *                                 then lws_http_transaction_completed (keep-alive) or close
 *
 * Early rejections (405, 411, 413, 400) are answered at once with "connection: close"; lws may
 * still deliver body chunks meanwhile, which are ignored.
 *
 * In front of lws, admit.c owns the listening socket: it admits each connection against the
 * caps, checks the first request head (answering what is malformed or too large, dropping the
 * header lines lws 4.1.6's lexer would stall on) and adopts the socket into our vhost, which has
 * no listener of its own. Its per-connection record rides on the wsi (opaque user data): this
 * file reports adoption, destruction and the idle time between requests (adm_wsi_*).
 */
#include "web/web.h"
#include "web/admit.h"
#include "web/web_int.h"

#include "core/err.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#define WEB_CHUNK (16 * 1024) /* body bytes written per WRITEABLE callback */
/* Response header block: web's own lines (a few hundred bytes; content types are short static
 * strings) plus up to WEB_MAX_RESP_HEADERS of the handler's. */
#define WEB_HDR_CAP (WEB_MAX_RESP_HEADERS + 2048)
/* lws keeps the parsed head in one buffer per connection: the values of known headers, plus
 * name, value and an 8-byte record for each unknown one, so a WEB_MAX_HEAD raw head can need up
 * to 4 more bytes per line than it had on the wire. */
#define WEB_LWS_HDR   (WEB_MAX_HEAD + 8 * WEB_MAX_FIELDS + 512)
#define WEB_TIMEOUT_S 30 /* lws network round-trip timeout (body, writes) */

/* The request headers passed to handlers (web_request_t fields, in this order). */
static const enum lws_token_indexes req_hdr_tok[] = {
    WSI_TOKEN_HTTP_COOKIE,
    WSI_TOKEN_HTTP_AUTHORIZATION,
    WSI_TOKEN_ORIGIN,
    WSI_TOKEN_HTTP_REFERER,
    WSI_TOKEN_HOST,
    WSI_TOKEN_HTTP_CONTENT_TYPE,
    WSI_TOKEN_X_FORWARDED_FOR,
    WSI_TOKEN_HTTP_ACCEPT_ENCODING,
    WSI_TOKEN_HTTP_USER_AGENT,
    WSI_TOKEN_HTTP_IF_NONE_MATCH,
};
#define WEB_NHDR ((int)(sizeof req_hdr_tok / sizeof req_hdr_tok[0]))

typedef enum {
    SS_IDLE = 0, /* waiting for / parsing a request */
    SS_BODY,     /* collecting the request body */
    SS_WAIT,     /* deferred: waiting for web_complete */
    SS_SEND,     /* response queued or being written */
    SS_CLOSE,    /* response written, close once lws has flushed it */
} sess_state_t;

/* Per-request state; lws zero-allocates it per HTTP transaction. */
typedef struct {
    sess_state_t state;
    const char *method;    /* static string */
    char *path;            /* owned, NUL-terminated, decoded */
    char *query;           /* owned */
    buf_t body;            /* request body */
    size_t body_expect;    /* Content-Length */
    char remote[64];       /* peer address text */
    char *hdrs;            /* owned: the request header values (hdr_off), from the request to the
                              end of its handler call */
    int hdr_off[WEB_NHDR]; /* offset of each value in hdrs, -1 = absent */

    int status;          /* response status */
    const char *ctype;   /* response content type (static) */
    buf_t out;           /* response body, owned */
    buf_t xhdr;          /* the handler's extra header lines (checked), owned */
    int own_cc;          /* xhdr has a Cache-Control line: web leaves out its no-store */
    size_t out_off;      /* bytes of out already written */
    int hdr_sent;        /* header block written */
    int close_after;     /* close instead of keep-alive */
    unsigned char *wbuf; /* LWS_PRE + WEB_CHUNK write buffer, owned */

    /* deferred response handle (owned by the application), NULL when not deferred */
    struct web_pending *pending;

    /* streamed answer (web_response_t.stream), NULL when the body is in out */
    int (*stream)(void *ud, buf_t *out);
    void (*stream_free)(void *ud);
    void *stream_ud;
    int stream_done; /* stream returned 0: what is in out is the rest */
} sess_t;

/* A deferred response. The application owns it from web_defer to web_complete; the session
 * points to it while it waits, and cuts the link (sess = NULL) when the connection goes away, so
 * a late completion finds nothing to write to. */
struct web_pending {
    struct lws *wsi; /* NULL once the connection is gone */
    sess_t *sess;
    web_t *w; /* on w->pendings while connected */
    struct web_pending *prev, *next;
};

/* Cuts the link between a deferred response and its connection (gone, or being answered). */
static void pending_detach(web_pending_t *p)
{
    if (p->w) {
        if (p->prev)
            p->prev->next = p->next;
        else
            p->w->pendings = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    if (p->sess)
        p->sess->pending = NULL;
    p->prev = p->next = NULL;
    p->w = NULL;
    p->sess = NULL;
    p->wsi = NULL;
}

/* Gives a streamed answer's producer back to the application (once). */
static void stream_release(sess_t *s)
{
    void (*fr)(void *) = s->stream_free;
    void *ud = s->stream_ud;
    s->stream = NULL;
    s->stream_free = NULL;
    s->stream_ud = NULL;
    s->stream_done = 0;
    if (fr)
        fr(ud);
}

/* Releases everything a session owns; idempotent (called on DROP_PROTOCOL and CLOSED_HTTP). */
static void sess_clear(sess_t *s)
{
    if (s->pending)
        pending_detach(s->pending); /* orphaned: web_complete only releases it */
    stream_release(s);
    free(s->path);
    free(s->query);
    free(s->wbuf);
    free(s->hdrs);
    s->path = s->query = s->hdrs = NULL;
    s->wbuf = NULL;
    buf_free(&s->body);
    buf_free(&s->out);
    buf_free(&s->xhdr);
}

/* ---- lws logging through core/log ------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
    char msg[512];
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    if (n >= sizeof msg)
        n = sizeof msg - 1;
    memcpy(msg, line, n);
    msg[n] = 0;
    /* lws 4.1.6 reports every adoption with a head at error level: not a problem. */
    /* lws reports a peer's malformed request as an error, and its lines name no peer: they are
     * limited as one source, "lws" (at most LOG_LIMIT_BURST a minute, then a count). Its
     * notices are only shown at debug level, which an operator turns on to see everything. */
    if ((level & (LLL_ERR | LLL_WARN)) && !strstr(msg, "adopt_socket_readbuf"))
        log_limited(LOG_WARN, "lws", "%s", msg);
    else
        log_debug("lws", "%s", msg);
}

/* Errors and warnings always; notices at debug, everything the library has at trace. */
static void lws_log_setup(void)
{
    int lll = LLL_ERR | LLL_WARN;
    if (log_get_level() >= LOG_DEBUG)
        lll |= LLL_NOTICE;
    if (log_get_level() >= LOG_TRACE)
        lll |= LLL_INFO | LLL_DEBUG;
    lws_set_log_level(lll, lws_log_emit);
}

/* ---- request side ----------------------------------------------------------------------- */

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},     {WSI_TOKEN_PUT_URI, "PUT"},
    {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_DELETE_URI, "DELETE"},
};

/* Appends one query fragment as lws split it at '&' (and percent-decoded it), re-encoding the
 * bytes that would change its meaning inside a query string, so that the joined result parses
 * back into the same key/value pairs. The first '=' stays the key/value separator. */
static void query_append(buf_t *b, const char *frag, size_t n)
{
    int seen_eq = 0;
    if (b->len)
        buf_append(b, "&", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)frag[i];
        if (c == '=' && !seen_eq) {
            seen_eq = 1;
            buf_append(b, "=", 1);
        } else if (c <= 0x20 || c >= 0x7f || c == '%' || c == '&' || c == '+' || c == '#' ||
                   c == '=') {
            buf_printf(b, "%%%02X", c);
        } else {
            buf_append(b, &frag[i], 1);
        }
    }
}

/* Builds the query string from WSI_TOKEN_HTTP_URI_ARGS, the non-empty fragments joined with '&';
 * "" if none. Returns an owned string. */
static char *query_build(struct lws *wsi)
{
    buf_t q = {0};
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total > 0) {
        char *tmp = xmalloc((size_t)total + 1);
        for (int i = 0;; i++) {
            int n = lws_hdr_copy_fragment(wsi, tmp, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
            if (n < 0)
                break;
            /* lws 4.1 quirk: a query ending in '?' or '&' yields a last fragment "/". */
            if (n == 0 ||
                (n == 1 && tmp[0] == '/' &&
                 lws_hdr_copy_fragment(wsi, tmp, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i + 1) < 0))
                continue;
            query_append(&q, tmp, (size_t)n);
        }
        free(tmp);
    }
    if (!q.data)
        return xstrdup("");
    return q.data; /* buf_t keeps its data NUL-terminated */
}

/* Copies the request headers handlers see (req_hdr_tok) into s->hdrs. lws 4.1 files each
 * occurrence of a known header as one fragment of its token (a repeated header adds fragments),
 * so fragment 0 tells presence (-1 absent, 0 empty), and the occurrences are joined here, in
 * the order they came, trimmed, empty ones skipped: with "; " for Cookie (RFC 6265 section
 * 5.4: one cookie-string), with ", " for the others (RFC 9110 section 5.3: a list). The head is
 * at most WEB_LWS_HDR bytes, so the sizes are bounded. */
static void req_headers_copy(struct lws *wsi, sess_t *s)
{
    buf_t b = {0};
    char *tmp = NULL;
    for (int h = 0; h < WEB_NHDR; h++) {
        enum lws_token_indexes tok = req_hdr_tok[h];
        int total = lws_hdr_total_length(wsi, tok);
        int cap = total + 1;
        s->hdr_off[h] = -1;
        tmp = realloc(tmp, (size_t)cap);
        if (!tmp)
            abort();
        for (int f = 0;; f++) {
            int n = lws_hdr_copy_fragment(wsi, tmp, cap, tok, f);
            if (n < 0)
                break; /* -1: no (more) occurrence; -2 cannot happen (a fragment <= total) */
            /* lws trims the first occurrence but keeps the whitespace before a later one */
            const char *v = tmp;
            while (n > 0 && (*v == ' ' || *v == '\t'))
                v++, n--;
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (f == 0)
                s->hdr_off[h] = (int)b.len;
            if (n == 0)
                continue; /* an empty occurrence adds nothing (RFC 9110 section 5.6.1) */
            if (b.len > (size_t)s->hdr_off[h])
                buf_puts(&b, tok == WSI_TOKEN_HTTP_COOKIE ? "; " : ", ");
            buf_append(&b, v, (size_t)n);
        }
        if (s->hdr_off[h] >= 0)
            buf_append(&b, "", 1); /* NUL-terminate this value inside the block */
    }
    free(tmp);
    s->hdrs = b.data; /* NULL when none was present: every hdr_off is then -1 */
}

/* The value of request header h, NULL if absent. */
static const char *req_header(const sess_t *s, int h)
{
    return s->hdrs && s->hdr_off[h] >= 0 ? s->hdrs + s->hdr_off[h] : NULL;
}

/* Headers web writes itself: a handler's extra lines may not carry them. */
static int web_owned_header(const char *name, size_t n)
{
    static const char *const owned[] = {"content-type", "content-length", "connection",
                                        "transfer-encoding"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (strlen(owned[i]) == n && strncasecmp(owned[i], name, n) == 0)
            return 1;
    return 0;
}

#define WEB_XHDR_NAME_MAX 128 /* longest extra header name, with its colon */

/* Checks a handler's extra header block (web_response_t.headers): a sequence of lines
 * "name: value\r\n", token names (RFC 9110 section 5.6.2) shorter than WEB_XHDR_NAME_MAX, values
 * without CR, LF or controls other than HTAB (section 5.5), at most WEB_MAX_RESP_HEADERS bytes.
 * Anything else could split the response (CRLF injection) and is refused whole. Returns NULL
 * if fine (*cc = 1 if it has a Cache-Control line), else what is wrong. */
const char *web_xhdr_check(const buf_t *b, int *cc)
{
    *cc = 0;
    if (b->len > WEB_MAX_RESP_HEADERS)
        return "extra headers too large";
    const char *p = b->data, *end = b->data + b->len;
    while (p < end) {
        const char *colon = p;
        while (colon < end && *colon != ':') {
            unsigned char c = (unsigned char)*colon;
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c && strchr("!#$%&'*+-.^_`|~", c))))
                return "malformed extra header name";
            colon++;
        }
        size_t nlen = (size_t)(colon - p);
        if (colon == end || nlen == 0 || nlen + 1 >= WEB_XHDR_NAME_MAX)
            return "malformed extra header name";
        if (web_owned_header(p, nlen))
            return "extra header that web writes itself";
        if (nlen == 13 && strncasecmp(p, "cache-control", 13) == 0)
            *cc = 1;
        const char *v = colon + 1;
        while (v < end && *v != '\r' && *v != '\n') {
            unsigned char c = (unsigned char)*v;
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return "control character in extra header value";
            v++;
        }
        if (end - v < 2 || v[0] != '\r' || v[1] != '\n')
            return "extra header line not ended by CRLF";
        p = v + 2;
    }
    return NULL;
}

/* Queues a response made here (not by the handler); text is a static string. */
static void respond_text(struct lws *wsi, sess_t *s, int status, const char *text, int close)
{
    stream_release(s);
    buf_free(&s->xhdr);
    s->own_cc = 0;
    buf_free(&s->out);
    adm_error_json(&s->out, status, text);
    s->status = status;
    s->ctype = "application/json";
    s->close_after = close;
    s->state = SS_SEND;
    lws_callback_on_writable(wsi);
}

/* What web_defer needs to find the request's connection. */
typedef struct {
    web_t *w;
    struct lws *wsi;
    sess_t *sess;
} defer_ctx_t;

web_pending_t *web_defer(const web_request_t *req)
{
    defer_ctx_t *x = req->web_priv_;
    if (!x) {
        /* a programming error: ws_filter's request cannot be deferred (web.h) */
        log_error("web", "web_defer called outside an HTTP handler (from ws_filter?)");
        abort();
    }
    web_pending_t *p = xcalloc(1, sizeof *p);
    p->wsi = x->wsi;
    p->sess = x->sess;
    p->w = x->w;
    p->next = x->w->pendings;
    if (p->next)
        p->next->prev = p;
    x->w->pendings = p;
    x->sess->pending = p;
    x->sess->state = SS_WAIT;
    /* Not lws's usual content timeouts: the application answers; this is only a backstop. */
    lws_set_timeout(x->wsi, PENDING_TIMEOUT_USER_OK, WEB_DEFER_MAX_S);
    return p;
}

/* Queues the application's answer, taking over *headers and *body (either may be NULL). A
 * status outside 200..599 or a bad header block becomes a 500 (logged, naming the request; a
 * handler that set no status at all is a 500 without a warning, as before). */
static void respond_app(struct lws *wsi, sess_t *s, const char *who, int status,
                        const char *content_type, buf_t *headers, buf_t *body)
{
    const char *why = NULL;
    int cc = 0;
    if (status < 200 || status > 599)
        why = status ? "status out of range" : NULL;
    else if (headers && headers->len)
        why = web_xhdr_check(headers, &cc);
    if (why || status < 200 || status > 599) {
        if (why)
            log_warn("web", "%s %s: %s %s (status %d): answered 500", s->method, s->path, who, why,
                     status);
        if (headers)
            buf_free(headers);
        if (body)
            buf_free(body);
        respond_text(wsi, s, 500, "internal server error\n", 0);
        return;
    }
    buf_free(&s->out);
    buf_free(&s->xhdr);
    if (body && status != 204 && status != 304) {
        s->out = *body; /* RFC 9110 15.3.5, 15.4.5: no content for 204 and 304 */
        memset(body, 0, sizeof *body);
    } else if (body) {
        buf_free(body);
    }
    if (headers) {
        s->xhdr = *headers;
        memset(headers, 0, sizeof *headers);
    }
    s->own_cc = cc;
    s->status = status;
    s->ctype = content_type ? content_type : "application/octet-stream";
    s->state = SS_SEND;
    lws_callback_on_writable(wsi);
}

void web_complete_h(web_pending_t *p, int status, const char *content_type, buf_t *headers,
                    buf_t *body)
{
    if (!p) {
        if (headers)
            buf_free(headers);
        if (body)
            buf_free(body);
        return;
    }
    sess_t *s = p->sess;
    struct lws *wsi = p->wsi;
    if (!s || s->state != SS_WAIT || s->pending != p) {
        log_limited(LOG_DEBUG, "web", "deferred answer (%d) dropped: the client has gone", status);
        pending_detach(p);
        if (headers)
            buf_free(headers);
        if (body)
            buf_free(body); /* the client went away: nothing to answer */
        free(p);
        return;
    }
    pending_detach(p);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    respond_app(wsi, s, "deferred answer", status, content_type, headers, body);
    free(p);
}

void web_complete(web_pending_t *p, int status, const char *content_type, buf_t *body)
{
    web_complete_h(p, status, content_type, NULL, body);
}

static void dispatch(web_t *w, struct lws *wsi, sess_t *s)
{
    defer_ctx_t dx = {w, wsi, s};
    web_request_t req = {
        .method = s->method,
        .path = s->path,
        .query = s->query,
        .body = s->body.len ? (const uint8_t *)s->body.data : NULL,
        .body_len = s->body.len,
        .remote = s->remote,
        .cookie = req_header(s, 0),
        .authorization = req_header(s, 1),
        .origin = req_header(s, 2),
        .referer = req_header(s, 3),
        .host = req_header(s, 4),
        .content_type = req_header(s, 5),
        .x_forwarded_for = req_header(s, 6),
        .accept_encoding = req_header(s, 7),
        .user_agent = req_header(s, 8),
        .if_none_match = req_header(s, 9),
        .tls = lws_is_ssl(wsi),
        .web_priv_ = &dx,
    };
    web_response_t resp = {0};
    w->fn(w->ud, &req, &resp);
    free(s->hdrs); /* the header values live only for the handler call (web.h) */
    s->hdrs = NULL;
    if (s->state == SS_WAIT) {
        buf_free(&resp.body); /* deferred: web_complete answers */
        buf_free(&resp.headers);
        return;
    }
    if (resp.stream) {
        if (resp.status >= 200 && resp.status < 300) {
            s->stream = resp.stream;
            s->stream_free = resp.stream_free;
            s->stream_ud = resp.stream_ud;
            s->stream_done = 0;
            s->close_after = 1;
            buf_free(&resp.body);
        } else if (resp.stream_free) {
            resp.stream_free(resp.stream_ud);
        }
    }
    respond_app(wsi, s, "handler", resp.status, resp.content_type, &resp.headers, &resp.body);
}

/* The peer address text of wsi into out (IPv4-mapped IPv6 shown as IPv4). */
static void peer_text(struct lws *wsi, char *out, size_t cap)
{
    if (!lws_get_peer_simple(wsi, out, cap))
        snprintf(out, cap, "?");
    else if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.'))
        memmove(out, out + 7, strlen(out + 7) + 1);
}

void *web_req_snapshot(struct lws *wsi, web_request_t *req)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI);
    if (n <= 0 || n > WEB_MAX_HEAD)
        return NULL;
    sess_t *s = xcalloc(1, sizeof *s);
    s->method = "GET";
    s->path = xmalloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, s->path, n + 1, WSI_TOKEN_GET_URI) != n ||
        memchr(s->path, 0, (size_t)n)) {
        sess_clear(s);
        free(s);
        return NULL;
    }
    peer_text(wsi, s->remote, sizeof s->remote);
    s->query = query_build(wsi);
    req_headers_copy(wsi, s);
    *req = (web_request_t){
        .method = s->method,
        .path = s->path,
        .query = s->query,
        .remote = s->remote,
        .cookie = req_header(s, 0),
        .authorization = req_header(s, 1),
        .origin = req_header(s, 2),
        .referer = req_header(s, 3),
        .host = req_header(s, 4),
        .content_type = req_header(s, 5),
        .x_forwarded_for = req_header(s, 6),
        .accept_encoding = req_header(s, 7),
        .user_agent = req_header(s, 8),
        .if_none_match = req_header(s, 9),
        .tls = lws_is_ssl(wsi),
    };
    return s;
}

void web_req_snapshot_free(void *holder)
{
    if (!holder)
        return;
    sess_clear(holder);
    free(holder);
}

static int on_request(web_t *w, struct lws *wsi, sess_t *s, const char *uri, size_t len)
{
    adm_wsi_idle(w->adm, wsi, 0);
    sess_clear(s);
    memset(s, 0, sizeof *s);
    peer_text(wsi, s->remote, sizeof s->remote);

    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            s->method = methods[i].name;
            break;
        }
    }
    /* The body of a rejected request is never read, so rejections close the connection. */
    if (!s->method) {
        respond_text(wsi, s, 405, "method not allowed\n", 1);
        return 0;
    }
    if (!uri || memchr(uri, 0, len)) {
        respond_text(wsi, s, 400, "bad request\n", 1);
        return 0;
    }
    s->path = xmalloc(len + 1);
    memcpy(s->path, uri, len);
    s->path[len] = 0;
    s->query = query_build(wsi);
    req_headers_copy(wsi, s);

    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* lws 4.1 does not de-chunk request bodies: demand a Content-Length. */
        respond_text(wsi, s, 411, "length required\n", 1);
        return 0;
    }
    int clen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    int64_t expect = 0;
    if (clen <= 0 && (!strcmp(s->method, "POST") || !strcmp(s->method, "PUT") ||
                      !strcmp(s->method, "PATCH"))) {
        /* lws 4.1 waits for a body of such a request even without a length: the connection
         * would stall and its next request be answered 408. RFC 9110 15.5.12 lets a server
         * demand the length; send "Content-Length: 0" for an empty body. */
        respond_text(wsi, s, 411, "length required: send Content-Length (0 for no body)\n", 1);
        return 0;
    }
    if (clen > 0) {
        char tmp[32];
        if (clen >= (int)sizeof tmp ||
            lws_hdr_copy(wsi, tmp, sizeof tmp, WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
            parse_i64(tmp, 0, INT64_MAX, &expect) != 0) {
            respond_text(wsi, s, 400, "bad content-length\n", 1);
            return 0;
        }
    }
    if (expect > WEB_MAX_BODY) {
        respond_text(wsi, s, 413, "request body too large\n", 1);
        return 0;
    }
    if (expect > 0) {
        s->body_expect = (size_t)expect;
        buf_reserve(&s->body, s->body_expect);
        s->state = SS_BODY;
        return 0;
    }
    dispatch(w, wsi, s);
    return 0;
}

static int on_body(struct lws *wsi, sess_t *s, const void *in, size_t len)
{
    if (s->state != SS_BODY)
        return 0; /* rejected request: discard */
    if (s->body.len + len > s->body_expect) {
        respond_text(wsi, s, 400, "body longer than content-length\n", 1);
        return 0;
    }
    buf_append(&s->body, in, len);
    return 0;
}

/* ---- response side ---------------------------------------------------------------------- */

/* Appends the handler's extra lines (checked by xhdr_check when they were taken over). The
 * block has room for WEB_MAX_RESP_HEADERS of them besides web's own lines, so a failure here
 * means a bug; the connection is then closed. */
static int add_extra_headers(struct lws *wsi, sess_t *s, unsigned char **p, unsigned char *end)
{
    const char *q = s->xhdr.data, *qend = s->xhdr.data + s->xhdr.len;
    char name[WEB_XHDR_NAME_MAX];
    while (q && q < qend) {
        const char *colon = memchr(q, ':', (size_t)(qend - q));
        const char *eol = colon ? memchr(colon, '\r', (size_t)(qend - colon)) : NULL;
        if (!eol || (size_t)(colon - q) + 2 > sizeof name)
            return -1;
        memcpy(name, q, (size_t)(colon - q) + 1); /* "name:" */
        name[colon - q + 1] = 0;
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)v,
                                        (int)(eol - v), p, end))
            return -1;
        q = eol + 2;
    }
    buf_free(&s->xhdr);
    return 0;
}

/* The handler gave its own Allow line (the methods of its route). */
static int has_allow(const sess_t *s)
{
    for (size_t i = 0; i + 6 <= s->xhdr.len; i++)
        if ((i == 0 || s->xhdr.data[i - 1] == '\n') && strncasecmp(s->xhdr.data + i, "allow:", 6) == 0)
            return 1;
    return 0;
}

static int send_headers(struct lws *wsi, sess_t *s)
{
    unsigned char hdr[LWS_PRE + WEB_HDR_CAP];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    static const char nostore[] = "no-store", nosniff[] = "nosniff", close[] = "close",
                      allow[] = "GET, POST, PUT, PATCH, DELETE";

    static const char chunked[] = "chunked";
    if (s->stream) {
        /* no length known: chunked (RFC 9112 section 7.1), and the connection closes after */
        if (lws_add_http_header_status(wsi, (unsigned)s->status, &p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)s->ctype, (int)strlen(s->ctype),
                                         &p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                         (const unsigned char *)chunked, sizeof chunked - 1, &p,
                                         end))
            return -1;
    }
    if ((!s->stream && lws_add_http_common_headers(wsi, (unsigned)s->status, s->ctype,
                                                   (lws_filepos_t)s->out.len, &p, end)) ||
        (!s->own_cc && lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                                   (const unsigned char *)nostore,
                                                   sizeof nostore - 1, &p, end)) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)nosniff, sizeof nosniff - 1, &p, end))
        return -1;
    if (adm_wsi_close_after(((web_t *)lws_context_user(lws_get_context(wsi)))->adm, wsi))
        s->close_after = 1;
    if (s->status == 405 && !has_allow(s) && lws_add_http_header_by_name(
                                wsi, (const unsigned char *)"allow:", (const unsigned char *)allow,
                                sizeof allow - 1, &p, end))
        return -1; /* RFC 9110 15.5.6 */
    if (s->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)close,
                                     sizeof close - 1, &p, end))
        return -1;
    if (add_extra_headers(wsi, s, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    s->hdr_sent = 1;
    return 0;
}

/* Called when the response is completely handed to lws. Returns the callback's result. */
static int finish(struct lws *wsi, sess_t *s)
{
    if (s->close_after) {
        /* Close only after lws has flushed what it may have buffered: wait one more
         * WRITEABLE, which lws delivers only once its pending output is gone. */
        s->state = SS_CLOSE;
        lws_callback_on_writable(wsi);
        return 0;
    }
    s->state = SS_IDLE;
    sess_clear(s);
    if (lws_http_transaction_completed(wsi))
        return -1;
    adm_wsi_idle(((web_t *)lws_context_user(lws_get_context(wsi)))->adm, wsi, 1);
    return 0;
}

/* One chunk of a streamed answer per WRITEABLE: "<hex length>\r\n<data>\r\n", and after the
 * producer's last bytes the last chunk "0\r\n\r\n" (RFC 9112 section 7.1). */
static int stream_writeable(struct lws *wsi, sess_t *s)
{
    /* A long answer outlives lws's own timeout for the request (the header table is held
     * timeout_secs_ah_idle = request_timeout_s): replace it with one that only fires when the
     * answer stops moving (WEB_TIMEOUT_S without a writeable socket). */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, WEB_TIMEOUT_S);
    if (s->out_off == s->out.len && !s->stream_done) {
        buf_reset(&s->out);
        s->out_off = 0;
        int r = s->stream(s->stream_ud, &s->out);
        if (r < 0)
            return -1; /* no last chunk: the client sees the answer is incomplete */
        if (r == 0)
            s->stream_done = 1;
    }
    size_t n = s->out.len - s->out_off;
    if (n > WEB_CHUNK)
        n = WEB_CHUNK;
    int last = s->stream_done && s->out_off + n == s->out.len;
    unsigned char *p = s->wbuf + LWS_PRE;
    size_t len = 0;
    if (n) {
        len = (size_t)snprintf((char *)p, 16, "%zx\r\n", n);
        memcpy(p + len, s->out.data + s->out_off, n);
        len += n;
        memcpy(p + len, "\r\n", 2);
        len += 2;
    }
    if (last) {
        memcpy(p + len, "0\r\n\r\n", 5);
        len += 5;
    }
    if (len) {
        int m = lws_write(wsi, p, len, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
        if (m < 0 || (size_t)m < len)
            return -1;
    }
    s->out_off += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    stream_release(s);
    return finish(wsi, s);
}

static int on_writeable(struct lws *wsi, sess_t *s)
{
    if (s->state == SS_CLOSE)
        return -1;
    if (s->state != SS_SEND)
        return 0;
    if (!s->hdr_sent) {
        if (send_headers(wsi, s))
            return -1;
        if (s->stream) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (s->out.len == 0)
            return finish(wsi, s);
        if (lws_send_pipe_choked(wsi)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (!s->wbuf)
        s->wbuf = xmalloc(LWS_PRE + WEB_CHUNK + 32);
    if (s->stream)
        return stream_writeable(wsi, s);
    size_t n = s->out.len - s->out_off;
    if (n > WEB_CHUNK)
        n = WEB_CHUNK;
    int last = s->out_off + n == s->out.len;
    memcpy(s->wbuf + LWS_PRE, s->out.data + s->out_off, n);
    int m = lws_write(wsi, s->wbuf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    if (m < 0 || (size_t)m < n)
        return -1;
    s->out_off += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return finish(wsi, s);
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    web_t *w = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: /* WebSocket only: ours from the accepted upgrade (ws.c) */
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_CLOSED:
        if (w && ws_is(user))
            return ws_callback(w, wsi, (int)reason, user, in, len);
        return reason == LWS_CALLBACK_ESTABLISHED ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP: /* both: user is a sess_t or, once upgrading, a ws */
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_WSI_DESTROY:
        if (w && ws_is(user))
            return ws_callback(w, wsi, (int)reason, user, in, len);
        break;
    default:
        break;
    }
    sess_t *s = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!s)
            return -1;
        return on_request(w, wsi, s, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        if (!s)
            return -1;
        return on_body(wsi, s, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!s)
            return -1;
        if (s->state != SS_BODY)
            return 0;
        if (s->body.len != s->body_expect) {
            respond_text(wsi, s, 400, "incomplete body\n", 1);
            return 0;
        }
        dispatch(w, wsi, s);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!s)
            return -1;
        return on_writeable(wsi, s);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (s)
            sess_clear(s);
        return 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        /* Inside adm's adoption: the wsi takes over the address slot. */
        if (w)
            adm_wsi_adopted(w->adm, wsi);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (w)
            adm_wsi_destroyed(w->adm, wsi);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (!w)
            return -1;
        if (s)
            sess_clear(s); /* nothing of an HTTP request is kept: ws.c replaces the user data */
        return ws_confirm_upgrade(w, wsi, in);
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", http_cb, sizeof(sess_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifecycle -------------------------------------------------------------------------- */

static void reap_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void reap_walk(uv_handle_t *h, void *arg)
{
    web_t *w = arg;
    /* lws's static uv handles carry the context in .data; its closes come in two waves (the
     * cancel-pipe poll first, whose close callback then closes the idle and timer handles). */
    if (h != (uv_handle_t *)&w->reaper && (h->data == (void *)w->ctx || uv_is_closing(h)))
        w->reap_busy = 1;
}

/* Completes the release of a context whose start failed, once none of lws's handles is left on
 * the loop: the last lws_context_destroy unloads the libuv event-lib plugin, so a close callback
 * still pending into it would jump into unmapped code. */
static void reap_cb(uv_idle_t *t)
{
    web_t *w = t->data;
    w->reap_busy = 0;
    uv_walk(t->loop, reap_walk, w);
    if (w->reap_busy)
        return;
    lws_context_destroy(w->ctx);
    uv_close((uv_handle_t *)t, reap_close_cb);
}

void web_opts_default(web_opts_t *o)
{
    o->max_connections = 4096;
    o->max_per_address = 64;
    o->request_timeout_s = 5;
    o->keepalive_s = 15;
    o->reserved_fds = 64;
    o->ws_queue_cap = 0;
    o->ws_over_cap_ms = 0;
    o->ws_ping_ms = 0;
    o->ws_max_msg = 0;
    o->tls_cert = o->tls_key = NULL;
    ws_opts_fill(o);
}

int web_start(uv_loop_t *loop, const char *host, int port, web_handler_fn fn, void *ud, web_t **out,
              char *err, size_t errlen)
{
    return web_start_opts(loop, host, port, NULL, fn, ud, out, err, errlen);
}

int web_start_opts(uv_loop_t *loop, const char *host, int port, const web_opts_t *opts,
                   web_handler_fn fn, void *ud, web_t **out, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    void *loops[1] = {loop};
    web_t *w = NULL;
    int rc = GS_EINVAL;
    web_opts_t o;

    *out = NULL;
    if (opts)
        o = *opts;
    else
        web_opts_default(&o);
    if (!loop || !fn || port < 0 || port > 65535 || o.max_connections < 1 ||
        o.max_per_address < 1 || o.request_timeout_s < 1 || o.keepalive_s < 1 ||
        o.reserved_fds < 0 || o.ws_over_cap_ms < 0 || o.ws_ping_ms < 0 ||
        !o.tls_cert != !o.tls_key) {
        snprintf(err, errlen, "web: invalid arguments");
        goto fail;
    }
    if (host && strlen(host) >= sizeof w->iface) {
        snprintf(err, errlen, "web: host name too long");
        goto fail;
    }
    ws_opts_fill(&o);
    w = xcalloc(1, sizeof *w);
    w->loop = loop;
    w->fn = fn;
    w->ud = ud;
    w->o = o;
    w->lfd = -1;
    if (host && *host && strcmp(host, "*") != 0)
        snprintf(w->iface, sizeof w->iface, "%s", host);
    int cap = adm_fd_budget(&o);
    if (cap < o.max_connections)
        log_warn("web",
                 "HTTP connections capped at %d (not %d): the open-file limit leaves no "
                 "more room; raise it (e.g. LimitNOFILE) to allow more",
                 cap, o.max_connections);

    /* Our own listener, bound before lws puts anything on the loop, so that the usual failures
     * (address in use, not local, permission) are reported precisely. */
    rc = adm_listen(w->iface[0] ? w->iface : NULL, port, err, errlen);
    if (rc < 0)
        goto fail;
    w->lfd = rc;
    rc = 0;
    lws_log_setup();

    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (o.tls_cert)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = loops;
    info.user = w;
    info.port = CONTEXT_PORT_NO_LISTEN;
    /* No fd_limit_per_thread: lws then sizes its tables by the process's open-file limit and
     * finds a connection by indexing them with its fd (16 bytes per possible fd, 320 KiB at
     * 20,000). A smaller limit would make every lookup a linear search. web enforces the cap. */
    info.max_http_header_data = WEB_LWS_HDR;
    info.gid = -1;
    info.uid = -1;
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        snprintf(err, errlen, "web: cannot create libwebsockets context");
        rc = GS_EIO;
        goto fail;
    }

    memset(&info, 0, sizeof info);
    info.vhost_name = "gridsense";
    info.protocols = protocols;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* a server vhost that only adopts */
    info.keepalive_timeout = o.keepalive_s;
    info.timeout_secs = WEB_TIMEOUT_S;
    info.timeout_secs_ah_idle = o.request_timeout_s; /* a later request's head, kept-alive */
    info.server_string = "gridsense";
    info.user = w;
    if (o.tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = o.tls_cert;
        info.ssl_private_key_filepath = o.tls_key;
    }
    w->vh = lws_create_vhost(w->ctx, &info);
    if (!w->vh) {
        if (o.tls_cert)
            snprintf(err, errlen, "web: cannot set up TLS with certificate %s and key %s",
                     o.tls_cert, o.tls_key);
        else
            snprintf(err, errlen, "web: cannot create libwebsockets vhost");
        rc = GS_EIO;
        goto fail;
    }

    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(w->lfd, (struct sockaddr *)&ss, &sl) == 0)
            w->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    rc = adm_start(loop, w->lfd, w->vh, &o, cap, &w->adm);
    w->o.tls_cert = w->o.tls_key = NULL; /* the caller's strings: only needed until here */
    w->lfd = -1;                         /* adm owns it now, also on failure */
    if (rc < 0) {
        snprintf(err, errlen, "web: cannot poll the listening socket: %s", err_str(rc));
        goto fail;
    }
    ws_start(w);
    log_info("web", "listening on %s:%d%s (up to %d connections, %d per address)",
             host && *host ? host : "*", w->port, o.tls_cert ? " with TLS" : "", cap,
             o.max_per_address);
    *out = w;
    return 0;

fail:
    if (w) {
        if (w->lfd >= 0)
            close(w->lfd);
        if (w->ctx) {
            /* Foreign-loop lws closes its uv handles asynchronously, so the context can only be
             * released after the loop has run their close callbacks: the first destroy here,
             * the second from an idle handle once they are gone. The caller's loop must run
             * for that (uv_run returns once it is done). */
            lws_context_destroy(w->ctx);
            uv_idle_init(loop, &w->reaper);
            w->reaper.data = w;
            uv_idle_start(&w->reaper, reap_cb);
        } else {
            free(w);
        }
    }
    return rc;
}

int web_port(const web_t *w)
{
    return w ? w->port : -1;
}

void web_stats(const web_t *w, web_stats_t *st)
{
    if (w->adm) {
        adm_stats(w->adm, st);
    } else {
        memset(st, 0, sizeof *st);
    }
    st->ws_open = w->ws_st.ws_open;
    st->ws_accepted = w->ws_st.ws_accepted;
    st->ws_refused = w->ws_st.ws_refused;
    st->ws_msgs_sent = w->ws_st.ws_msgs_sent;
    st->ws_bytes_sent = w->ws_st.ws_bytes_sent;
    st->ws_dropped = w->ws_st.ws_dropped;
    st->ws_coalesced = w->ws_st.ws_coalesced;
    st->ws_closed_slow = w->ws_st.ws_closed_slow;
    st->ws_closed_ping = w->ws_st.ws_closed_ping;
}

void web_stop(web_t *w)
{
    if (!w || w->stopped)
        return;
    w->stopped = 1;
    adm_stop(w->adm); /* no more connections; those lws serves it closes below */
    /* Deferred responses completed from now on find no connection (lws frees them). */
    while (w->pendings)
        pending_detach(w->pendings);
    ws_stop(w);
    lws_context_destroy(w->ctx); /* closes connections and the listener, starts closing lws's
                                    uv handles; the loop finishes them */
    ws_stop_after(w);            /* on_close for any WebSocket lws did not report closed */
}

void web_free(web_t *w)
{
    if (!w)
        return;
    if (!w->stopped)
        web_stop(w); /* the handles it closes are not waited for: call web_stop in the loop */
    lws_context_destroy(w->ctx); /* final release of the context memory */
    adm_free(w->adm);            /* after lws: every wsi destroyed has released its address */
    free(w);
}
