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
 * In front of lws (see "admission" below) web owns the listening socket: it admits each
 * connection against the caps, reads the first request head itself, answers what is malformed or
 * too large, and adopts the socket into lws (lws_adopt_socket_vhost_readbuf) with the checked
 * head as lws's first input. This is the work-around for lws 4.1.6's header-name lexer
 * (lib/roles/http/parsers.c, WSI_TOKEN_NAME_PART, built with LWS_WITH_CUSTOM_HEADERS as Debian
 * does): a name that is a strict prefix of one lws knows ("Acc", "Cont", "Us", "Origi", "X-A")
 * is still a live path in its lexical table when the ':' arrives; the ':' is the mismatch that
 * marks the name unknown, but the code that files an unknown header runs only on a ':' seen
 * *after* the mismatch, and a line feed ends the head only while no name is being collected. So
 * every following byte becomes part of the name until another ':' comes, the head never
 * completes, and the connection waits for lws's idle timeout without an answer. Unknown fields
 * may be ignored (RFC 9110 section 5.1), so web drops such lines before lws sees them. The same
 * stall hits a header line without a colon, which web answers with 400 (RFC 9112 section 5).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "web/web.h"

#include "core/err.h"
#include "core/hmap.h"
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

#define WEB_CHUNK   (16 * 1024) /* body bytes written per WRITEABLE callback */
#define WEB_HDR_CAP 1024        /* response header block */
/* lws keeps the parsed head in one buffer per connection: the values of known headers, plus
 * name, value and an 8-byte record for each unknown one, so a WEB_MAX_HEAD raw head can need up
 * to 4 more bytes per line than it had on the wire. */
#define WEB_LWS_HDR      (WEB_MAX_HEAD + 8 * WEB_MAX_FIELDS + 512)
#define WEB_TIMEOUT_S    30   /* lws network round-trip timeout (body, writes) */
#define WEB_LINGER_MS    2000 /* after an answer from web: read and drop input this long */
#define WEB_SWEEP_MS     250  /* deadline check period */
#define WEB_ACCEPT_BURST 64   /* accepts per listener wake-up, for fairness */
#define WEB_WARN_NS      (10 * 1000000000LL) /* at most one connection-limit warning per 10 s */

typedef struct hconn hconn_t;
typedef struct lconn lconn_t;

/* Connections of one peer address (IPv4 address or IPv6 /64), in web->addrs. Connections being
 * read by web hold it through hconn_t.addr, connections served by lws through the lconn_t in
 * their wsi's opaque user data; it is freed when the last one closes. */
typedef struct {
    char key[48];
    int n;                  /* open connections of this address */
    hconn_t *phead, *ptail; /* of those, the ones web is reading, oldest first */
    lconn_t *ihead, *itail; /* of those, lws's kept-alive ones between requests, oldest first */
} addr_t;

/* A connection lws serves (its wsi's opaque user data, from adoption to LWS_CALLBACK_WSI_DESTROY,
 * which releases the address slot). */
struct lconn {
    addr_t *addr;
    struct lws *wsi;
    int idle;               /* between requests on a kept-alive connection: may be evicted */
    lconn_t *prev, *next;   /* web->ihead list while idle, oldest first */
    lconn_t *aprev, *anext; /* addr->ihead list while idle */
};

typedef enum {
    HC_HEAD = 0, /* reading the first request head */
    HC_LINGER,   /* web answered (400/408/414/431) and half-closed; draining input */
} hconn_state_t;

/* A connection web is reading before lws gets it. */
struct hconn {
    web_t *w;
    addr_t *addr;
    int fd;
    hconn_state_t state;
    uv_poll_t poll;
    int64_t deadline_ns;    /* monotonic: head timeout, or end of the linger */
    size_t seen;            /* bytes waiting in the socket at the last look (not consumed) */
    hconn_t *prev, *next;   /* web->phead list, oldest first */
    hconn_t *aprev, *anext; /* addr->phead list */
};
struct web {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    web_handler_fn fn;
    void *ud;
    web_opts_t o;
    int cap;          /* connection cap in force (o.max_connections after the file limit) */
    int port;         /* bound port */
    int stopped;      /* web_stop has run (first lws_context_destroy) */
    char iface[64];   /* the host we listen on, "" = any */
    uv_idle_t reaper; /* completes the release of a context whose vhost failed */
    int reap_busy;    /* reaper saw lws handles still on the loop */

    int lfd;                  /* listening socket, -1 if none */
    uv_poll_t lpoll;          /* readable = connections to accept */
    int lpoll_init;           /* lpoll initialised (must be closed) */
    int64_t lpause_until;     /* accepting paused after EMFILE until then (monotonic ns), 0 = not */
    uv_timer_t sweep;         /* deadlines of hconn_t, resuming the listener */
    int sweep_init;           /* sweep initialised (must be closed) */
    hmap_t addrs;             /* address key -> addr_t */
    hconn_t *phead, *ptail;   /* connections web is reading, oldest first */
    int nopen;                /* open connections, read by web or served by lws */
    lconn_t *ihead, *itail;   /* lws's kept-alive connections between requests, oldest first */
    addr_t *adopting;         /* address of the socket being handed to lws right now */
    int adopt_claimed;        /* lws's new wsi took over `adopting` */
    web_stats_t st;           /* counters (open is nopen) */
    int64_t warn_ns;          /* last connection-limit warning (monotonic), 0 = none yet */
    unsigned warn_suppressed; /* warnings not printed since */
    char scratch[WEB_MAX_HEAD + 1]; /* where a head is peeked at (one at a time) */
};

typedef enum {
    SS_IDLE = 0, /* waiting for / parsing a request */
    SS_BODY,     /* collecting the request body */
    SS_SEND,     /* response queued or being written */
    SS_CLOSE,    /* response written, close once lws has flushed it */
} sess_state_t;

/* Per-request state; lws zero-allocates it per HTTP transaction. */
typedef struct {
    sess_state_t state;
    const char *method; /* static string */
    char *path;         /* owned, NUL-terminated, decoded */
    char *query;        /* owned */
    buf_t body;         /* request body */
    size_t body_expect; /* Content-Length */
    char remote[64];    /* peer address text */

    int status;          /* response status */
    const char *ctype;   /* response content type (static) */
    buf_t out;           /* response body, owned */
    size_t out_off;      /* bytes of out already written */
    int hdr_sent;        /* header block written */
    int close_after;     /* close instead of keep-alive */
    unsigned char *wbuf; /* LWS_PRE + WEB_CHUNK write buffer, owned */
} sess_t;

/* Releases everything a session owns; idempotent (called on DROP_PROTOCOL and CLOSED_HTTP). */
static void sess_clear(sess_t *s)
{
    free(s->path);
    free(s->query);
    free(s->wbuf);
    s->path = s->query = NULL;
    s->wbuf = NULL;
    buf_free(&s->body);
    buf_free(&s->out);
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
    if ((level & (LLL_ERR | LLL_WARN)) && !strstr(msg, "adopt_socket_readbuf"))
        log_warn("lws", "%s", msg); /* lws reports a peer's malformed request as an error */
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

/* ---- admission: caps, the first request head, hand-over to lws -------------------------- */

/* One warning line per WEB_WARN_NS for connection-limit events (an attack produces thousands);
 * the next line reports how many were suppressed. */
static void warn_limited(web_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn_limited(web_t *w, const char *fmt, ...)
{
    int64_t now = time_mono_ns();
    if (w->warn_ns && now - w->warn_ns < WEB_WARN_NS) {
        w->warn_suppressed++;
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w->warn_suppressed)
        log_warn("web", "%s (and %u similar events in the last %lld s)", msg, w->warn_suppressed,
                 (long long)((now - w->warn_ns) / 1000000000LL));
    else
        log_warn("web", "%s", msg);
    w->warn_ns = now;
    w->warn_suppressed = 0;
}

/* The limit key of a peer: the IPv4 address (also when mapped into IPv6), or the IPv6 /64,
 * because one subscriber usually gets a whole /64 (as the gateway counts). */
static void addr_key(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)cap);
        return;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)cap);
            return;
        }
        const uint8_t *b = a->s6_addr;
        snprintf(out, cap, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2], b[3], b[4],
                 b[5], b[6], b[7]);
        return;
    }
    snprintf(out, cap, "?");
}

/* One connection of `a` has closed. */
static void addr_release(web_t *w, addr_t *a)
{
    w->nopen--;
    if (--a->n > 0)
        return;
    hmap_del(&w->addrs, a->key);
    free(a);
}

static void hconn_free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Poll readability only once more than `n` bytes wait (SO_RCVLOWAT, which Linux's tcp_poll
 * honours): web peeks at a head without consuming it, so level-triggered polling would
 * otherwise report the same incomplete head again and again. EOF and errors still wake. */
static void set_lowat(int fd, size_t n)
{
    int v = (int)n;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v);
}

static void hconn_unlink(hconn_t *hc)
{
    web_t *w = hc->w;
    addr_t *a = hc->addr;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        w->phead = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    else
        w->ptail = hc->prev;
    if (hc->aprev)
        hc->aprev->anext = hc->anext;
    else
        a->phead = hc->anext;
    if (hc->anext)
        hc->anext->aprev = hc->aprev;
    else
        a->ptail = hc->aprev;
    hc->prev = hc->next = hc->aprev = hc->anext = NULL;
}

/* Stops reading and closes the socket, releasing the connection's slot; with handover, keeps
 * both the socket and the slot (the caller hands them to lws). The struct goes when libuv has
 * closed the poll handle. */
static void hconn_end(hconn_t *hc, int handover)
{
    web_t *w = hc->w;
    addr_t *a = hc->addr;
    hconn_unlink(hc);
    uv_close((uv_handle_t *)&hc->poll, hconn_free_cb); /* stops polling the fd at once */
    hc->addr = NULL;
    if (handover)
        return;
    close(hc->fd);
    addr_release(w, a);
}

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Error";
    }
}

/* Answers a connection web is reading with `status` and half-closes it, then keeps reading (and
 * dropping) what the client still sends for WEB_LINGER_MS: closing with unread input would make
 * the kernel send a reset that can destroy the answer before the client reads it (RFC 9112
 * section 9.6). The answer is a few hundred bytes, which fit in an empty socket buffer. */
static void hconn_answer(hconn_t *hc, int status, const char *text)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n"
                     "x-content-type-options: nosniff\r\nconnection: close\r\n"
                     "server: gridsense\r\n\r\n%s",
                     status, status_text(status), strlen(text), text);
    if (n > 0 && (size_t)n < sizeof msg)
        (void)!send(hc->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(hc->fd, SHUT_WR);
    set_lowat(hc->fd, 1);
    hc->state = HC_LINGER;
    hc->deadline_ns = time_mono_ns() + (int64_t)WEB_LINGER_MS * 1000000;
}

/* RFC 9110 section 5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Checks the request line as far as it has arrived, so that garbage is answered at once rather
 * than after the head timeout. Returns 1 complete (*line_end = offset of its CRLF), 0 need more,
 * -1 malformed. One empty line before it is allowed (RFC 9112 section 2.2); *start gets the
 * offset of the request line. */
static int check_request_line(const char *p, size_t n, size_t *start, size_t *line_end)
{
    size_t i = 0;
    static const char ver[] = "HTTP/d.d\r\n";
    if (n >= 1 && p[0] == '\r') {
        if (n < 2)
            return 0;
        if (p[1] != '\n')
            return -1;
        i = 2;
    }
    *start = i;
    size_t m = i;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == n)
        return 0;
    if (i == m || p[i] != ' ')
        return -1;
    m = ++i; /* request-target: visible ASCII (RFC 9112 section 3.2); lws decodes it later */
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == n)
        return 0;
    if (i == m || p[i] != ' ')
        return -1;
    i++;
    for (size_t k = 0; k < sizeof ver - 1; k++, i++) {
        if (i == n)
            return 0;
        if (ver[k] == 'd' ? !(p[i] >= '0' && p[i] <= '9') : p[i] != ver[k])
            return -1;
    }
    *line_end = i - 2;
    return 1;
}

/* Header names lws 4.1's lexer would stall on: a strict prefix of a name (or method) it knows,
 * whose name + ':' is not itself known. The list comes from the linked library
 * (lws_token_to_string), so it is the table lws parses with. */
static int lws_would_stall(const char *name, size_t n)
{
    char low[64];
    if (n >= sizeof low - 1)
        return 0; /* no lws token is that long */
    for (size_t i = 0; i < n; i++)
        low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    int prefix = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const unsigned char *tok = lws_token_to_string((enum lws_token_indexes)t);
        if (!tok)
            continue;
        size_t tl = strlen((const char *)tok);
        if (tl > n && memcmp(tok, low, n) == 0) {
            if (tok[n] == ':' && tl == n + 1)
                return 0; /* the name itself is known */
            prefix = 1;
        }
    }
    return prefix;
}

/* Builds the head lws will parse from a complete raw head (request line at [start, line_end),
 * header lines up to the empty line at hlen): header lines are checked (RFC 9112 section 5:
 * "name:" with a token name and no whitespace before the colon; no obs-fold, section 5.2; no
 * control bytes but HTAB in the value) and lines lws would stall on are dropped. Returns 0 or
 * the status to answer with. */
static int head_rewrite(const char *p, size_t start, size_t line_end, size_t hlen, buf_t *out,
                        int *dropped, int *has_body, const char **why)
{
    size_t i = line_end + 2, fields = 0;
    *dropped = *has_body = 0;
    /* lws files the request line, its query parts and each known header in one table of
     * WSI_TOKEN_COUNT fragments and drops the connection when it overflows. */
    size_t frags = 3;
    const char *q = memchr(p + start, '?', line_end - start);
    if (q) {
        for (const char *e = q; e < p + line_end && *e != ' '; e++)
            if (*e == '&' || *e == ';')
                frags++;
        if (frags > WSI_TOKEN_COUNT / 2) {
            *why = "too many query parameters\n";
            return 414;
        }
    }
    buf_append(out, p + start, line_end + 2 - start);
    while (i < hlen - 2) { /* header lines; the head ends with the empty line at hlen - 2 */
        const char *line = p + i;
        const char *cr = memchr(line, '\r', hlen - i);
        size_t len = (size_t)(cr - line);
        if (cr[1] != '\n') {
            *why = "bare CR in header line\n";
            return 400;
        }
        if (++fields > WEB_MAX_FIELDS) {
            *why = "too many header fields\n";
            return 431;
        }
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line) {
            *why = "malformed header line\n";
            return 400;
        }
        for (const char *c = line; c < colon; c++)
            if (!is_tchar((unsigned char)*c)) {
                *why = "malformed header name\n";
                return 400;
            }
        for (const char *c = colon + 1; c < cr; c++) {
            unsigned char u = (unsigned char)*c;
            if ((u < 0x20 && u != '\t') || u == 0x7f) {
                *why = "control character in header value\n";
                return 400;
            }
        }
        size_t nlen = (size_t)(colon - line);
        if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
            *has_body = 1;
        if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
            const char *v = colon + 1;
            while (v < cr && (*v == ' ' || *v == '\t'))
                v++;
            if (!(cr - v == 1 && *v == '0'))
                *has_body = 1; /* anything but "0" (lws and on_request check the number) */
        }
        if (lws_would_stall(line, nlen)) {
            (*dropped)++;
            log_debug("web", "dropped header '%.*s' (lws 4.1 cannot parse it)", (int)nlen, line);
        } else {
            buf_append(out, line, len + 2);
            frags++;
        }
        i += len + 2;
    }
    if (frags >= WSI_TOKEN_COUNT) {
        *why = "too many header fields\n";
        return 431;
    }
    buf_append(out, "\r\n", 2);
    return 0;
}

/* Hands the connection to lws (its slot passes to the wsi: claimed in
 * LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED as its opaque user data, released in
 * LWS_CALLBACK_WSI_DESTROY). With a head, lws parses that first; without, it reads the socket. */
static void hconn_adopt(hconn_t *hc, const char *head, size_t len)
{
    web_t *w = hc->w;
    addr_t *a = hc->addr;
    int fd = hc->fd;
    hconn_end(hc, 1); /* our poll stops at once; lws starts its own on the fd */
    set_lowat(fd, 1);
    w->adopting = a;
    w->adopt_claimed = 0;
    if (head)
        lws_adopt_socket_vhost_readbuf(w->vh, fd, head, len); /* closes fd on failure */
    else
        lws_adopt_socket_vhost(w->vh, fd);
    w->adopting = NULL;
    if (!w->adopt_claimed)
        addr_release(w, a);
}

/* Looks at what is waiting in the socket (without consuming it) and answers, waits for more,
 * or hands the connection to lws.
 *
 * lws must normally read the head from the socket itself: lws 4.1.6 mishandles a head given to
 * lws_adopt_socket_vhost_readbuf when a body follows (lws_http_action feeds the buffered head
 * to itself again as the body, and loops). A head web has to rewrite (lines dropped) can only be
 * given that way, so it is accepted only for requests without a body. */
static void hconn_process(hconn_t *hc, const char *p, size_t n)
{
    web_t *w = hc->w;
    size_t start = 0, line_end = 0;
    const char *why = "bad request\n";

    hc->seen = n;
    int rl = check_request_line(p, n < WEB_MAX_HEAD ? n : WEB_MAX_HEAD, &start, &line_end);
    if (rl < 0) {
        w->st.bad_requests++;
        hconn_answer(hc, 400, "malformed request line\n");
        return;
    }
    /* The head ends at the first CRLF CRLF; a bare LF is refused rather than waited on. */
    size_t hlen = 0;
    for (size_t i = 0; i < n && i < WEB_MAX_HEAD; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
            w->st.bad_requests++;
            hconn_answer(hc, 400, "bare LF in request head\n");
            return;
        }
        if (rl > 0 && i >= line_end + 3 && p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
            p[i - 3] == '\r') {
            hlen = i + 1;
            break;
        }
    }
    if (!hlen) {
        if (n > WEB_MAX_HEAD) {
            w->st.bad_requests++;
            hconn_answer(hc, rl > 0 ? 431 : 414,
                         rl > 0 ? "request head too large\n" : "request line too long\n");
            return;
        }
        set_lowat(hc->fd, n + 1); /* wake when more has arrived, within the deadline */
        return;
    }

    buf_t out = {0};
    int dropped, has_body;
    int status = head_rewrite(p, start, line_end, hlen, &out, &dropped, &has_body, &why);
    if (!status && dropped && has_body) {
        status = 400;
        why = "a header name this server cannot parse (a prefix of a known one) came with a "
              "request body\n";
    }
    if (status) {
        buf_free(&out);
        w->st.bad_requests++;
        hconn_answer(hc, status, why);
        return;
    }
    if (!dropped) {
        buf_free(&out);
        hconn_adopt(hc, NULL, 0);
        return;
    }
    /* Consume the head we rewrite (it is all in the socket buffer: recv cannot block or come
     * short); what follows it stays there for lws. */
    ssize_t k;
    do
        k = recv(hc->fd, w->scratch, hlen, 0);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)hlen) {
        buf_free(&out);
        hconn_end(hc, 0);
        return;
    }
    hconn_adopt(hc, out.data, out.len);
    buf_free(&out);
}

static void hconn_read_cb(uv_poll_t *h, int status, int events)
{
    hconn_t *hc = h->data;
    web_t *w = hc->w;
    (void)events;
    if (status < 0) {
        hconn_end(hc, 0);
        return;
    }
    for (;;) {
        ssize_t k =
            recv(hc->fd, w->scratch, sizeof w->scratch, hc->state == HC_HEAD ? MSG_PEEK : 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) {
            hconn_end(hc, 0); /* peer closed or reset before a complete request */
            return;
        }
        if (hc->state == HC_HEAD) {
            hconn_process(hc, w->scratch, (size_t)k);
            return;
        }
        /* HC_LINGER: drop what arrives until EOF or the deadline */
    }
}

/* Marks an lws connection as between requests (evictable) or busy. */
static void lconn_set_idle(web_t *w, lconn_t *lc, int idle)
{
    if (!lc || lc->idle == idle)
        return;
    addr_t *a = lc->addr;
    if (idle) {
        lc->prev = w->itail;
        lc->next = NULL;
        if (w->itail)
            w->itail->next = lc;
        else
            w->ihead = lc;
        w->itail = lc;
        lc->aprev = a->itail;
        lc->anext = NULL;
        if (a->itail)
            a->itail->anext = lc;
        else
            a->ihead = lc;
        a->itail = lc;
    } else {
        if (lc->prev)
            lc->prev->next = lc->next;
        else
            w->ihead = lc->next;
        if (lc->next)
            lc->next->prev = lc->prev;
        else
            w->itail = lc->prev;
        if (lc->aprev)
            lc->aprev->anext = lc->anext;
        else
            a->ihead = lc->anext;
        if (lc->anext)
            lc->anext->aprev = lc->aprev;
        else
            a->itail = lc->aprev;
        lc->prev = lc->next = lc->aprev = lc->anext = NULL;
    }
    lc->idle = idle;
}

/* Makes room for one connection by closing the oldest one that has no request outstanding:
 * first those web is still reading (from `hc` on: they have not sent a complete request), then
 * lws's kept-alive ones between requests (from `lc` on; RFC 9112 section 9.5 lets a server close
 * an idle connection at any time, and clients retry on a new one). The slot of an lws connection
 * is released when lws has closed it, a loop iteration later: until then the count runs one
 * over the cap, which the fd reserve absorbs. Returns 1 if one was closed. */
static int evict_oldest(web_t *w, hconn_t *hc, lconn_t *lc)
{
    if (hc) {
        w->st.evicted++;
        hconn_end(hc, 0);
        return 1;
    }
    if (lc) {
        w->st.evicted++;
        lconn_set_idle(w, lc, 0);
        /* Shutting both directions down ends lws's graceful close at once (it would otherwise
         * wait up to WEB_TIMEOUT_S for the peer's FIN, holding the fd). */
        shutdown(lws_get_socket_fd(lc->wsi), SHUT_RDWR);
        lws_set_timeout(lc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return 1;
    }
    return 0;
}

static void admit(web_t *w, int fd, const struct sockaddr_storage *ss)
{
    char key[48];
    addr_key(ss, key, sizeof key);
    addr_t *a = hmap_get(&w->addrs, key);
    if (a && a->n >= w->o.max_per_address && !evict_oldest(w, a->phead, a->ihead)) {
        w->st.refused++;
        warn_limited(w,
                     "HTTP connection from %s refused: %d open from this address "
                     "([http] max_connections_per_address)",
                     key, a->n);
        close(fd);
        return;
    }
    if (w->nopen >= w->cap && !evict_oldest(w, w->phead, w->ihead)) {
        w->st.refused++;
        warn_limited(w,
                     "HTTP connection from %s refused: %d open in total "
                     "([http] max_connections)",
                     key, w->nopen);
        close(fd);
        return;
    }
    a = hmap_get(&w->addrs, key); /* an eviction may have freed it */
    if (!a) {
        a = xcalloc(1, sizeof *a);
        snprintf(a->key, sizeof a->key, "%s", key);
        hmap_put(&w->addrs, a->key, a);
    }
    hconn_t *hc = xcalloc(1, sizeof *hc);
    hc->w = w;
    hc->fd = fd;
    hc->addr = a;
    hc->deadline_ns = time_mono_ns() + (int64_t)w->o.request_timeout_s * 1000000000LL;
    if (uv_poll_init_socket(w->loop, &hc->poll, fd) != 0) {
        close(fd);
        free(hc);
        if (a->n == 0) {
            hmap_del(&w->addrs, a->key);
            free(a);
        }
        return;
    }
    a->n++;
    w->nopen++;
    w->st.accepted++;
    hc->poll.data = hc;
    hc->prev = w->ptail;
    if (w->ptail)
        w->ptail->next = hc;
    else
        w->phead = hc;
    w->ptail = hc;
    hc->aprev = a->ptail;
    if (a->ptail)
        a->ptail->anext = hc;
    else
        a->phead = hc;
    a->ptail = hc;
    uv_poll_start(&hc->poll, UV_READABLE, hconn_read_cb);
}

static void listen_cb(uv_poll_t *h, int status, int events);

static void listen_pause(web_t *w, int err)
{
    /* Out of file descriptors: accepting again at once would spin; the sweep resumes it. */
    uv_poll_stop(&w->lpoll);
    w->lpause_until = time_mono_ns() + 250 * 1000000LL;
    warn_limited(w, "cannot accept HTTP connections: %s (open files limit?)", strerror(err));
}

static void listen_cb(uv_poll_t *h, int status, int events)
{
    web_t *w = h->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < WEB_ACCEPT_BURST && !w->stopped; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(w->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listen_pause(w, errno);
            return; /* EAGAIN: all accepted */
        }
        admit(w, fd, &ss);
    }
}

/* Deadlines of the connections web is reading, and resuming a paused listener. */
static void sweep_cb(uv_timer_t *t)
{
    web_t *w = t->data;
    int64_t now = time_mono_ns();
    hconn_t *hc = w->phead;
    while (hc) {
        hconn_t *next = hc->next;
        if (now >= hc->deadline_ns) {
            if (hc->state == HC_LINGER) {
                hconn_end(hc, 0);
            } else if (hc->seen == 0) {
                w->st.timed_out++; /* never said anything: just close */
                hconn_end(hc, 0);
            } else {
                w->st.timed_out++; /* RFC 9110 section 15.5.9 */
                hconn_answer(hc, 408, "request head not received in time\n");
            }
        }
        hc = next;
    }
    if (w->lpause_until && now >= w->lpause_until && !w->stopped) {
        w->lpause_until = 0;
        uv_poll_start(&w->lpoll, UV_READABLE, listen_cb);
    }
}

/* Creates the listening socket: numeric IPv4 or IPv6 host, or any address (IPv6 dual-stack,
 * else IPv4). Returns the fd, or -errno with the reason in err. */
static int listen_open(const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    int one = 1, zero = 0, any6 = 0;

    memset(&ss, 0, sizeof ss);
    if (!host) {
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
        any6 = 1;
    } else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
    } else {
        snprintf(err, errlen, "web: cannot listen on %s:%d: not a numeric IPv4/IPv6 address", host,
                 port);
        return GS_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && any6 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
        memset(&ss, 0, sizeof ss); /* no IPv6 in this kernel: IPv4 any */
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
        any6 = 0;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (any6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* IPv4 too */
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0)
        goto fail;
    return fd;

fail:;
    int rc = -errno;
    if (fd >= 0)
        close(fd);
    snprintf(err, errlen, "web: cannot listen on %s:%d: %s", host ? host : "*", port,
             strerror(-rc));
    return rc;
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

/* Queues a response made here (not by the handler); text is a static string. */
static void respond_text(struct lws *wsi, sess_t *s, int status, const char *text, int close)
{
    buf_free(&s->out);
    buf_puts(&s->out, text);
    s->status = status;
    s->ctype = "text/plain; charset=utf-8";
    s->close_after = close;
    s->state = SS_SEND;
    lws_callback_on_writable(wsi);
}

static void dispatch(web_t *w, struct lws *wsi, sess_t *s)
{
    web_request_t req = {
        .method = s->method,
        .path = s->path,
        .query = s->query,
        .body = s->body.len ? (const uint8_t *)s->body.data : NULL,
        .body_len = s->body.len,
        .remote = s->remote,
    };
    web_response_t resp = {0};
    w->fn(w->ud, &req, &resp);
    if (resp.status < 200 || resp.status > 599) {
        if (resp.status != 0)
            log_warn("web", "%s %s: handler returned status %d", s->method, s->path, resp.status);
        buf_free(&resp.body);
        respond_text(wsi, s, 500, "internal server error\n", 0);
        return;
    }
    if (resp.status == 204 || resp.status == 304)
        buf_free(&resp.body); /* RFC 9110 15.3.5, 15.4.5: no content */
    buf_free(&s->out);
    s->out = resp.body;
    s->status = resp.status;
    s->ctype = resp.content_type ? resp.content_type : "application/octet-stream";
    s->state = SS_SEND;
    lws_callback_on_writable(wsi);
}

static int on_request(web_t *w, struct lws *wsi, sess_t *s, const char *uri, size_t len)
{
    lconn_set_idle(w, lws_get_opaque_user_data(wsi), 0);
    sess_clear(s);
    memset(s, 0, sizeof *s);
    if (!lws_get_peer_simple(wsi, s->remote, sizeof s->remote))
        snprintf(s->remote, sizeof s->remote, "?");
    else if (strncmp(s->remote, "::ffff:", 7) == 0 && strchr(s->remote + 7, '.'))
        memmove(s->remote, s->remote + 7, strlen(s->remote + 7) + 1);

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

    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* lws 4.1 does not de-chunk request bodies: demand a Content-Length. */
        respond_text(wsi, s, 411, "length required\n", 1);
        return 0;
    }
    int clen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    int64_t expect = 0;
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

static int send_headers(struct lws *wsi, sess_t *s)
{
    unsigned char hdr[LWS_PRE + WEB_HDR_CAP];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    static const char nostore[] = "no-store", nosniff[] = "nosniff", close[] = "close",
                      allow[] = "GET, POST, PUT, PATCH, DELETE";

    if (lws_add_http_common_headers(wsi, (unsigned)s->status, s->ctype, (lws_filepos_t)s->out.len,
                                    &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)nostore, sizeof nostore - 1, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)nosniff, sizeof nosniff - 1, &p, end))
        return -1;
    if (s->status == 405 && lws_add_http_header_by_name(
                                wsi, (const unsigned char *)"allow:", (const unsigned char *)allow,
                                sizeof allow - 1, &p, end))
        return -1; /* RFC 9110 15.5.6 */
    if (s->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)close,
                                     sizeof close - 1, &p, end))
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
    lconn_set_idle(lws_context_user(lws_get_context(wsi)), lws_get_opaque_user_data(wsi), 1);
    return 0;
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
        if (s->out.len == 0)
            return finish(wsi, s);
        if (lws_send_pipe_choked(wsi)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (!s->wbuf)
        s->wbuf = xmalloc(LWS_PRE + WEB_CHUNK);
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
    sess_t *s = user;
    web_t *w = lws_context_user(lws_get_context(wsi));

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
        /* Inside lws_adopt_socket_vhost_readbuf: the wsi takes over the address slot. */
        if (w && w->adopting && !w->adopt_claimed) {
            lconn_t *lc = xcalloc(1, sizeof *lc);
            lc->addr = w->adopting;
            lc->wsi = wsi;
            lws_set_opaque_user_data(wsi, lc);
            w->adopt_claimed = 1;
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY: {
        lconn_t *lc = lws_get_opaque_user_data(wsi);
        if (w && lc) {
            lws_set_opaque_user_data(wsi, NULL);
            lconn_set_idle(w, lc, 0);
            addr_release(w, lc->addr);
            free(lc);
        }
        return 0;
    }
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
}

/* The connection cap that fits the process's open-file limit: every HTTP connection is one fd,
 * and the rest of the process (terminal connections, database, pipes) needs reserved_fds. */
static int fd_budget(const web_opts_t *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return o->max_connections;
    int64_t room = (int64_t)rl.rlim_cur - o->reserved_fds - 16; /* 16: listener, lws pipes */
    if (room < 16)
        room = 16;
    return room < o->max_connections ? (int)room : o->max_connections;
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
        o.reserved_fds < 0) {
        snprintf(err, errlen, "web: invalid arguments");
        goto fail;
    }
    if (host && strlen(host) >= sizeof w->iface) {
        snprintf(err, errlen, "web: host name too long");
        goto fail;
    }
    w = xcalloc(1, sizeof *w);
    w->loop = loop;
    w->fn = fn;
    w->ud = ud;
    w->o = o;
    w->lfd = -1;
    hmap_init(&w->addrs);
    if (host && *host && strcmp(host, "*") != 0)
        snprintf(w->iface, sizeof w->iface, "%s", host);
    w->cap = fd_budget(&o);
    if (w->cap < o.max_connections)
        log_warn("web",
                 "HTTP connections capped at %d (not %d): the open-file limit leaves no "
                 "more room; raise it (e.g. LimitNOFILE) to allow more",
                 w->cap, o.max_connections);

    /* Our own listener, bound before lws puts anything on the loop, so that the usual failures
     * (address in use, not local, permission) are reported precisely. */
    rc = listen_open(w->iface[0] ? w->iface : NULL, port, err, errlen);
    if (rc < 0)
        goto fail;
    w->lfd = rc;
    rc = 0;
    lws_log_setup();

    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
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
    w->vh = lws_create_vhost(w->ctx, &info);
    if (!w->vh) {
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
    uv_poll_init_socket(loop, &w->lpoll, w->lfd);
    w->lpoll.data = w;
    w->lpoll_init = 1;
    uv_poll_start(&w->lpoll, UV_READABLE, listen_cb);
    uv_timer_init(loop, &w->sweep);
    w->sweep.data = w;
    w->sweep_init = 1;
    uv_timer_start(&w->sweep, sweep_cb, WEB_SWEEP_MS, WEB_SWEEP_MS);
    log_info("web", "listening on %s:%d (up to %d connections, %d per address)",
             host && *host ? host : "*", w->port, w->cap, o.max_per_address);
    w->st.max_connections = w->cap;
    *out = w;
    return 0;

fail:
    if (w) {
        if (w->lfd >= 0)
            close(w->lfd);
        hmap_free(&w->addrs);
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
    *st = w->st;
    st->open = w->nopen;
}

void web_stop(web_t *w)
{
    if (!w || w->stopped)
        return;
    w->stopped = 1;
    if (w->lpoll_init)
        uv_close((uv_handle_t *)&w->lpoll, NULL);
    if (w->lfd >= 0)
        close(w->lfd);
    w->lfd = -1;
    if (w->sweep_init)
        uv_close((uv_handle_t *)&w->sweep, NULL);
    while (w->phead)
        hconn_end(w->phead, 0);
    lws_context_destroy(w->ctx); /* closes connections and the listener, starts closing lws's
                                    uv handles; the loop finishes them */
}

void web_free(web_t *w)
{
    if (!w)
        return;
    if (!w->stopped)
        web_stop(w); /* the handles it closes are not waited for: call web_stop in the loop */
    lws_context_destroy(w->ctx); /* final release of the context memory */
    /* Every wsi has been destroyed, releasing its address; nothing should be left. */
    const char *k;
    void *v;
    for (size_t pos = 0; hmap_next(&w->addrs, &pos, &k, &v);)
        free(v);
    hmap_free(&w->addrs);
    free(w);
}
