/* admit — web's connection front: caps, the first request head, hand-over to lws (admit.h).
 *
 * Why a front at all: lws 4.1.6's header-name lexer (lib/roles/http/parsers.c,
 * WSI_TOKEN_NAME_PART, built with LWS_WITH_CUSTOM_HEADERS as Debian does) never finishes a head
 * holding a name that is a strict prefix of one it knows ("Acc", "Cont", "Us", "Origi", "X-A"):
 * such a name is still a live path in its lexical table when the ':' arrives; the ':' is the
 * mismatch that marks the name unknown, but the code that files an unknown header runs only on
 * a ':' seen *after* the mismatch, and a line feed ends the head only while no name is being
 * collected. So every following byte becomes part of the name until another ':' comes, and the
 * connection waits for lws's idle timeout without an answer. A header line without a colon
 * stalls it the same way, and lws closes an oversized head without a word. Unknown fields may
 * be ignored (RFC 9110 section 5.1), so such lines are dropped before lws sees the head.
 *
 * lws must normally read the head from the socket itself (adm only peeks): lws 4.1.6
 * mishandles a head given to lws_adopt_socket_vhost_readbuf when a body follows
 * (lws_http_action feeds the buffered head to itself again as the body, and loops). A rewritten
 * head can only be given that way, so it is accepted only for requests without a body.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "web/admit.h"

#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#define ADM_LINGER_MS    2000 /* after an answer from adm: read and drop input this long */
#define ADM_SWEEP_MS     250  /* deadline check period */
#define ADM_ACCEPT_BURST 64   /* accepts per listener wake-up, for fairness */
#define ADM_KA_HEAD_MS   1000 /* a later head lws has begun must reach the app within this */
#define ADM_LINGER_READS                                                                           \
    16 /* reads per wake-up while lingering, so one peer cannot hog the loop                       \
        */

typedef struct hconn hconn_t;
typedef struct lconn lconn_t;

/* How a connection was handed to lws (lconn_t.flags). */
#define ADOPT_REWRITTEN                                                                            \
    1               /* its head was given to lws with lines dropped: close after the answer        \
                     */
#define ADOPT_TLS 2 /* handed over at once, TLS and all: adm never saw its first head */

/* Connections of one peer address (IPv4 address or IPv6 /64), in adm->addrs. Connections being
 * read by adm hold it through hconn_t.addr, connections served by lws through the lconn_t in
 * their wsi's opaque user data; it is freed when the last one closes. */
typedef struct {
    char key[48];
    int n;                  /* open connections of this address */
    hconn_t *phead, *ptail; /* of those, the ones adm is reading, oldest first */
    lconn_t *ihead, *itail; /* of those, lws's kept-alive ones between requests, oldest first */
} addr_t;

/* A connection lws serves (its wsi's opaque user data, from adoption to LWS_CALLBACK_WSI_DESTROY,
 * which releases the address slot). */
struct lconn {
    adm_t *ad;
    addr_t *addr;
    struct lws *wsi;
    int flags;              /* ADOPT_* it was adopted with */
    int idle;               /* between requests on a kept-alive connection: may be evicted */
    int64_t head_ns;        /* monotonic: when adm first saw lws parsing its next head, 0 = not */
    lconn_t *prev, *next;   /* adm->ihead list while idle, oldest first */
    lconn_t *aprev, *anext; /* addr->ihead list while idle */
};

typedef enum {
    HC_HEAD = 0, /* reading the first request head */
    HC_LINGER,   /* web answered (400/408/414/431) and half-closed; draining input */
} hconn_state_t;

/* A connection adm is reading before lws gets it. */
struct hconn {
    adm_t *ad;
    addr_t *addr;
    int fd;
    hconn_state_t state;
    uv_poll_t poll;
    int64_t deadline_ns;    /* monotonic: head timeout, or end of the linger */
    size_t seen;            /* bytes waiting in the socket at the last look (not consumed) */
    hconn_t *prev, *next;   /* adm->phead list, oldest first */
    hconn_t *aprev, *anext; /* addr->phead list */
};

struct adm {
    uv_loop_t *loop;
    struct lws_vhost *vh; /* where accepted connections are adopted */
    web_opts_t o;
    int cap;                /* connection cap in force */
    int stopped;            /* adm_stop has run */
    int tls;                /* the vhost speaks TLS: connections are adopted at once */
    int lfd;                /* listening socket, -1 if none */
    uv_poll_t lpoll;        /* readable = connections to accept */
    int64_t lpause_until;   /* accepting paused after EMFILE until then (monotonic ns), 0 = not */
    uv_timer_t sweep;       /* deadlines of hconn_t, resuming the listener */
    hmap_t addrs;           /* address key -> addr_t */
    hconn_t *phead, *ptail; /* connections adm is reading, oldest first */
    int nopen;              /* open connections, read by adm or served by lws */
    lconn_t *ihead, *itail; /* lws's kept-alive connections between requests, oldest first */
    addr_t *adopting;       /* address of the socket being handed to lws right now */
    int adopt_flags;        /* ADOPT_* of that socket */
    int adopt_claimed;      /* lws's new wsi took over `adopting` */
    web_stats_t st;         /* counters (open is nopen) */
    char scratch[WEB_MAX_HEAD + 1]; /* where a head is peeked at (one at a time) */
};

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
static void addr_release(adm_t *ad, addr_t *a)
{
    ad->nopen--;
    if (--a->n > 0)
        return;
    hmap_del(&ad->addrs, a->key);
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
    adm_t *ad = hc->ad;
    addr_t *a = hc->addr;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        ad->phead = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    else
        ad->ptail = hc->prev;
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
    adm_t *ad = hc->ad;
    addr_t *a = hc->addr;
    hconn_unlink(hc);
    uv_close((uv_handle_t *)&hc->poll, hconn_free_cb); /* stops polling the fd at once */
    hc->addr = NULL;
    if (handover)
        return;
    close(hc->fd);
    addr_release(ad, a);
}

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 405:
        return "Method Not Allowed";
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

/* Answers a connection adm is reading with `status` and half-closes it, then keeps reading (and
 * dropping) what the client still sends for ADM_LINGER_MS: closing with unread input would make
 * the kernel send a reset that can destroy the answer before the client reads it (RFC 9112
 * section 9.6). The answer is a few hundred bytes, which fit in an empty socket buffer. */
static void count_answer(adm_t *ad, int status)
{
    switch (status) {
    case 400:
        ad->st.answered_400++;
        ad->st.bad_requests++;
        break;
    case 408:
        ad->st.answered_408++;
        break;
    case 414:
        ad->st.answered_414++;
        ad->st.bad_requests++;
        break;
    case 431:
        ad->st.answered_431++;
        ad->st.bad_requests++;
        break;
    default:
        break;
    }
}

void adm_error_json(buf_t *b, int status, const char *text)
{
    static const struct {
        int status;
        const char *code;
    } codes[] = {{400, "bad_request"},       {405, "method_not_allowed"},
                 {408, "request_timeout"},   {411, "length_required"},
                 {413, "payload_too_large"}, {414, "uri_too_long"},
                 {431, "header_fields_too_large"}, {500, "internal"}};
    const char *code = "error";
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].status == status)
            code = codes[i].code;
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        n--;
    buf_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    buf_json_str(b, text, n);
    buf_puts(b, "}}");
}

/* Sends web's own answer (counted; the API's error shape) and shuts the sending side down. */
static void send_answer(adm_t *ad, int fd, int status, const char *text)
{
    char msg[768];
    buf_t body = {0};
    count_answer(ad, status);
    adm_error_json(&body, status, text);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n"
                     "x-content-type-options: nosniff\r\nconnection: close\r\n"
                     "server: gridsense\r\n\r\n%.*s",
                     status, status_text(status), body.len, (int)body.len, body.data);
    buf_free(&body);
    if (n > 0 && (size_t)n < sizeof msg)
        (void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
}

static void hconn_answer(hconn_t *hc, int status, const char *text)
{
    send_answer(hc->ad, hc->fd, status, text);
    set_lowat(hc->fd, 1);
    hc->state = HC_LINGER;
    hc->deadline_ns = time_mono_ns() + (int64_t)ADM_LINGER_MS * 1000000;
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

/* The request line's method and target (line p[start..line_end)), once complete: a method lws
 * would answer with its own HTML page (TRACE, anything unknown) gets 405, and a target whose
 * percent-encoding is broken ("%zz", a "%" at the end) or encodes NUL gets 400, both with the
 * error shape, instead of lws's 403 page or a silent close. Returns 0 (fine) or the status, with
 * the reason in *why. */
static int target_check(const char *p, size_t start, size_t line_end, const char **why)
{
    static const char *const ok[] = {"GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ",
                                     "OPTIONS "};
    size_t mlen = 0;
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
        if (line_end - start > strlen(ok[k]) && !strncmp(p + start, ok[k], strlen(ok[k])))
            mlen = strlen(ok[k]);
    if (!mlen) {
        *why = "method not allowed\n";
        return 405;
    }
    const char *t = p + start + mlen, *end = memchr(t, ' ', (size_t)(p + line_end - t));
    if (!end)
        end = p + line_end;
    for (const char *c = t; c < end; c++) {
        if (*c != '%')
            continue;
        if (end - c < 3 || !isxdigit((unsigned char)c[1]) || !isxdigit((unsigned char)c[2])) {
            *why = "bad request: broken percent-encoding in the request target\n";
            return 400;
        }
        if (c[1] == '0' && c[2] == '0') {
            *why = "bad request: %00 (NUL) in the request target\n";
            return 400;
        }
    }
    return 0;
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

/* 1 if an Upgrade header value (between v and end) is "websocket" (RFC 6455 section 4.1; the
 * token is case-insensitive), with optional whitespace around it. */
static int upgrade_is_websocket(const char *v, const char *end)
{
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end - v == 9 && strncasecmp(v, "websocket", 9) == 0;
}

/* Builds the head lws will parse from a complete raw head (request line at [start, line_end),
 * header lines up to the empty line at hlen): header lines are checked (RFC 9112 section 5:
 * "name:" with a token name and no whitespace before the colon; no obs-fold, section 5.2; no
 * control bytes but HTAB in the value) and lines lws would stall on are dropped. Returns 0 or
 * the status to answer with. */
static int head_rewrite(const char *p, size_t start, size_t line_end, size_t hlen, buf_t *out,
                        int *dropped, int *has_body, const char *src, const char **why)
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
            log_limited(LOG_DEBUG, src, "dropped header '%.*s' from %s (lws 4.1 cannot parse it)",
                        (int)nlen, line, src);
        } else if (nlen == 7 && strncasecmp(line, "upgrade", 7) == 0 &&
                   !upgrade_is_websocket(colon + 1, cr)) {
            /* Only WebSocket upgrades are served. Any other (curl --http2 sends "Upgrade: h2c"
             * with an ordinary GET) is ignored, as RFC 9110 section 7.8 allows, so the request
             * is answered in HTTP/1.1: lws would otherwise switch to h2c, which web does not
             * serve. */
            (*dropped)++;
            log_limited(LOG_DEBUG, src, "ignored 'Upgrade: %.*s' from %s", (int)(cr - colon - 1),
                        colon + 1, src);
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
static void hconn_adopt(hconn_t *hc, const char *head, size_t len, int flags)
{
    adm_t *ad = hc->ad;
    addr_t *a = hc->addr;
    int fd = hc->fd;
    hconn_end(hc, 1); /* our poll stops at once; lws starts its own on the fd */
    set_lowat(fd, 1);
    ad->adopting = a;
    ad->adopt_flags = flags;
    ad->adopt_claimed = 0;
    if (head)
        lws_adopt_socket_vhost_readbuf(ad->vh, fd, head, len); /* closes fd on failure */
    else
        lws_adopt_socket_vhost(ad->vh, fd);
    ad->adopting = NULL;
    if (!ad->adopt_claimed)
        addr_release(ad, a);
}

/* What a look at the bytes waiting in a socket found (head_check). */
typedef struct {
    int status;      /* 0: a complete head to pass on; else the status to answer with */
    const char *why; /* the answer's text */
    size_t hlen;     /* bytes of the complete head */
    int dropped;     /* header lines dropped: lws must be given `out` instead of the head */
    buf_t out;       /* the head for lws when dropped (caller frees) */
} verdict_t;

/* 1 if the peer has shut down its sending side (or the socket failed): a head that is not
 * complete now never will be. Linux reports this as POLLRDHUP. */
static int peer_done(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Checks the n bytes at p (peeked from a socket, n <= WEB_MAX_HEAD + 1) as the start of a
 * request. Returns 0 if more bytes are needed, else 1 with *v filled (v->out to be freed). `src`
 * is the peer's address key, for the log. Pure function of the bytes. */
static int head_check(const char *p, size_t n, const char *src, verdict_t *v)
{
    size_t start = 0, line_end = 0;
    memset(v, 0, sizeof *v);
    v->why = "bad request\n";
    int rl = check_request_line(p, n < WEB_MAX_HEAD ? n : WEB_MAX_HEAD, &start, &line_end);
    if (rl < 0) {
        v->status = 400;
        v->why = "malformed request line\n";
        return 1;
    }
    if (rl > 0 && (v->status = target_check(p, start, line_end, &v->why)) != 0)
        return 1;
    /* The head ends at the first CRLF CRLF; a bare LF is refused rather than waited on. */
    for (size_t i = 0; i < n && i < WEB_MAX_HEAD; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
            v->status = 400;
            v->why = "bare LF in request head\n";
            return 1;
        }
        if (rl > 0 && i >= line_end + 3 && p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
            p[i - 3] == '\r') {
            v->hlen = i + 1;
            break;
        }
    }
    if (!v->hlen) {
        if (n <= WEB_MAX_HEAD)
            return 0;
        v->status = rl > 0 ? 431 : 414;
        v->why = rl > 0 ? "request head too large\n" : "request line too long\n";
        return 1;
    }
    int has_body;
    v->status =
        head_rewrite(p, start, line_end, v->hlen, &v->out, &v->dropped, &has_body, src, &v->why);
    if (!v->status && v->dropped && has_body) {
        v->status = 400;
        v->why = "a header name this server cannot parse (a prefix of a known one) came with a "
                 "request body\n";
    }
    return 1;
}

/* Looks at what is waiting in the socket (without consuming it) and answers, waits for more,
 * or hands the connection to lws: as it is (lws reads the head itself), or, for a head with
 * lines dropped, consumed and given as lws's first input, which works only without a body (see
 * the top of this file). */
static void hconn_process(hconn_t *hc, const char *p, size_t n)
{
    adm_t *ad = hc->ad;
    verdict_t v;

    hc->seen = n;
    if (!head_check(p, n, hc->addr->key, &v)) {
        if (peer_done(hc->fd)) {
            /* Without this the EOF would wake the poll again and again (the bytes stay
             * unconsumed) until the deadline: a busy loop any client could cause. */
            hconn_answer(hc, 400, "request head incomplete at the end of the input\n");
            return;
        }
        set_lowat(hc->fd, n + 1); /* wake when more has arrived, within the deadline */
        return;
    }
    if (v.status) {
        buf_free(&v.out);
        hconn_answer(hc, v.status, v.why);
        return;
    }
    if (!v.dropped) {
        buf_free(&v.out);
        hconn_adopt(hc, NULL, 0, 0);
        return;
    }
    /* Consume the head we rewrite (it is all in the socket buffer: recv cannot block or come
     * short); what follows it stays there for lws. */
    ssize_t k;
    do
        k = recv(hc->fd, ad->scratch, v.hlen, 0);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)v.hlen) {
        buf_free(&v.out);
        hconn_end(hc, 0);
        return;
    }
    ad->st.heads_rewritten++;
    hconn_adopt(hc, v.out.data, v.out.len, ADOPT_REWRITTEN);
    buf_free(&v.out);
}

static void hconn_read_cb(uv_poll_t *h, int status, int events)
{
    hconn_t *hc = h->data;
    adm_t *ad = hc->ad;
    (void)events;
    if (status < 0) {
        hconn_end(hc, 0);
        return;
    }
    for (int reads = 0; reads < ADM_LINGER_READS; reads++) {
        ssize_t k =
            recv(hc->fd, ad->scratch, sizeof ad->scratch, hc->state == HC_HEAD ? MSG_PEEK : 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) {
            hconn_end(hc, 0); /* peer closed or reset before a complete request */
            return;
        }
        if (hc->state == HC_HEAD) {
            hconn_process(hc, ad->scratch, (size_t)k);
            return;
        }
        /* HC_LINGER: drop what arrives until EOF or the deadline */
    }
}

/* Marks an lws connection as between requests (evictable; its next head is timed by ka_sweep) or
 * busy. */
static void lconn_set_idle(adm_t *ad, lconn_t *lc, int idle)
{
    if (!lc)
        return;
    lc->head_ns = 0;
    if (lc->idle == idle)
        return;
    addr_t *a = lc->addr;
    if (idle) {
        lc->prev = ad->itail;
        lc->next = NULL;
        if (ad->itail)
            ad->itail->next = lc;
        else
            ad->ihead = lc;
        ad->itail = lc;
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
            ad->ihead = lc->next;
        if (lc->next)
            lc->next->prev = lc->prev;
        else
            ad->itail = lc->prev;
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

/* ---- the next request on a kept-alive connection ------------------------------------------
 * lws reads a kept-alive connection's later requests itself, and stalls on the same heads as a
 * first one: a head whose last header line is a prefix of a known name (or has no colon) waits
 * for lws's head timeout and is closed unanswered. adm cannot read those heads first: the only
 * way to keep lws from reading is lws_rx_flow_control, and lws 4.1.6 keeps polling an idle HTTP
 * connection whose reading is off for writing, waking the loop at every iteration. What adm can
 * see is lws's own parse state: a connection between requests whose next request line lws has
 * already parsed (a method token present) but that has not reached LWS_CALLBACK_HTTP within
 * ADM_KA_HEAD_MS is stalled (or its client is very slow). adm answers it 408 itself (lws has no
 * output pending on an idle connection) and lets lws close it; browsers repeat a request
 * answered 408 on a reused connection on a new one, which passes through adm. A connection whose
 * first head was rewritten is closed after its answer instead of kept alive, so a client that
 * sends such a header every time is served on its next connection (adm_wsi_close_after). */

/* 1 if lws has begun parsing a request on wsi (its request line is in the header table). */
static int lws_head_begun(struct lws *wsi)
{
    static const enum lws_token_indexes toks[] = {
        WSI_TOKEN_GET_URI,    WSI_TOKEN_POST_URI,    WSI_TOKEN_PUT_URI,  WSI_TOKEN_PATCH_URI,
        WSI_TOKEN_DELETE_URI, WSI_TOKEN_OPTIONS_URI, WSI_TOKEN_HEAD_URI,
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        if (lws_hdr_total_length(wsi, toks[i]) > 0)
            return 1;
    return 0;
}

/* Sweep of lws's idle connections: answers those stalled in a later head (see above). */
static void ka_sweep(adm_t *ad, int64_t now)
{
    for (lconn_t *lc = ad->ihead; lc;) {
        lconn_t *next = lc->next;
        if (!lws_head_begun(lc->wsi)) {
            lc->head_ns = 0;
        } else if (!lc->head_ns) {
            lc->head_ns = now;
        } else if (now - lc->head_ns >= (int64_t)ADM_KA_HEAD_MS * 1000000 &&
                   !lws_send_pipe_choked(lc->wsi)) {
            int fd = lws_get_socket_fd(lc->wsi);
            int tls = lc->flags & ADOPT_TLS;
            lconn_set_idle(ad, lc, 0); /* no longer evictable: it is being closed */
            ad->st.timed_out++;
            log_limited(LOG_INFO, lc->addr->key,
                        "HTTP request head from %s on a %s connection not complete after %d ms "
                        "(a header this server cannot parse there?): %s",
                        lc->addr->key, tls ? "TLS" : "kept-alive", ADM_KA_HEAD_MS,
                        tls ? "closed" : "answered 408");
            if (fd >= 0 && tls)
                shutdown(fd, SHUT_RDWR); /* no answer inside TLS from here: cut off */
            else if (fd >= 0)
                send_answer(ad, fd, 408,
                            "request head not complete in time on a reused connection (a header "
                            "name that is a prefix of a known one stalls the parser there): send "
                            "the request on a new connection\n");
            lws_set_timeout(lc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
        lc = next;
    }
}

/* Makes room for one connection by closing the oldest one that has no request outstanding:
 * first those web is still reading (from `hc` on: they have not sent a complete request), then
 * lws's kept-alive ones between requests (from `lc` on; RFC 9112 section 9.5 lets a server close
 * an idle connection at any time, and clients retry on a new one). The slot of an lws connection
 * is released when lws has closed it, a loop iteration later: until then the count runs one
 * over the cap, which the fd reserve absorbs. Returns 1 if one was closed. */
static int evict_oldest(adm_t *ad, hconn_t *hc, lconn_t *lc)
{
    if (hc) {
        ad->st.evicted++;
        hconn_end(hc, 0);
        return 1;
    }
    if (lc) {
        ad->st.evicted++;
        lconn_set_idle(ad, lc, 0);
        /* Shutting both directions down ends lws's graceful close at once (it would otherwise
         * wait up to WEB_TIMEOUT_S for the peer's FIN, holding the fd). */
        shutdown(lws_get_socket_fd(lc->wsi), SHUT_RDWR);
        lws_set_timeout(lc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return 1;
    }
    return 0;
}

static hconn_t *hconn_new(adm_t *ad, int fd, addr_t *a);

static void admit(adm_t *ad, int fd, const struct sockaddr_storage *ss)
{
    char key[48];
    addr_key(ss, key, sizeof key);
    addr_t *a = hmap_get(&ad->addrs, key);
    if (a && a->n >= ad->o.max_per_address && !evict_oldest(ad, a->phead, a->ihead)) {
        ad->st.refused++;
        ad->st.refused_per_address++;
        log_limited(LOG_WARN, key,
                    "HTTP connection from %s refused: %d open from this address "
                    "([http] max_connections_per_address)",
                    key, a->n);
        close(fd);
        return;
    }
    if (ad->nopen >= ad->cap && !evict_oldest(ad, ad->phead, ad->ihead)) {
        ad->st.refused++;
        log_limited(LOG_WARN, key,
                    "HTTP connection from %s refused: %d open in total "
                    "([http] max_connections)",
                    key, ad->nopen);
        close(fd);
        return;
    }
    a = hmap_get(&ad->addrs, key); /* an eviction may have freed it */
    if (!a) {
        a = xcalloc(1, sizeof *a);
        snprintf(a->key, sizeof a->key, "%s", key);
        hmap_put(&ad->addrs, a->key, a);
    }
    hconn_t *hc = hconn_new(ad, fd, a);
    if (!hc)
        return;
    ad->st.accepted++;
    /* With TLS the head is encrypted: lws reads everything. Its first head is then timed like
     * a later one on a kept-alive connection (adm_wsi_adopted marks it idle, ka_sweep). */
    if (ad->tls)
        hconn_adopt(hc, NULL, 0, ADOPT_TLS);
}

/* A connection of `a` on fd that adm reads (fd is closed on failure, and `a` freed if it has no
 * other connection). Returns it, polling for input, or NULL. */
static hconn_t *hconn_new(adm_t *ad, int fd, addr_t *a)
{
    hconn_t *hc = xcalloc(1, sizeof *hc);
    hc->ad = ad;
    hc->fd = fd;
    hc->addr = a;
    hc->deadline_ns = time_mono_ns() + (int64_t)ad->o.request_timeout_s * 1000000000LL;
    if (uv_poll_init_socket(ad->loop, &hc->poll, fd) != 0) {
        close(fd);
        free(hc);
        if (a->n == 0) {
            hmap_del(&ad->addrs, a->key);
            free(a);
        }
        return NULL;
    }
    a->n++;
    ad->nopen++;
    hc->poll.data = hc;
    hc->prev = ad->ptail;
    if (ad->ptail)
        ad->ptail->next = hc;
    else
        ad->phead = hc;
    ad->ptail = hc;
    hc->aprev = a->ptail;
    if (a->ptail)
        a->ptail->anext = hc;
    else
        a->phead = hc;
    a->ptail = hc;
    uv_poll_start(&hc->poll, UV_READABLE, hconn_read_cb);
    return hc;
}

static void listen_cb(uv_poll_t *h, int status, int events);

static void listen_pause(adm_t *ad, int err)
{
    /* Out of file descriptors: accepting again at once would spin; the sweep resumes it. */
    uv_poll_stop(&ad->lpoll);
    ad->lpause_until = time_mono_ns() + 250 * 1000000LL;
    log_limited(LOG_WARN, "web", "cannot accept HTTP connections: %s (open files limit?)",
                strerror(err));
}

static void listen_cb(uv_poll_t *h, int status, int events)
{
    adm_t *ad = h->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < ADM_ACCEPT_BURST && !ad->stopped; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(ad->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listen_pause(ad, errno);
            return; /* EAGAIN: all accepted */
        }
        /* Responses go out as a header write and body writes: without TCP_NODELAY, Nagle's
         * algorithm holds the second until the client's delayed ACK (40 ms on Linux), which
         * capped a keep-alive connection at ~25 requests/s. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        admit(ad, fd, &ss);
    }
}

/* Deadlines of the connections adm is reading, and resuming a paused listener. */
static void sweep_cb(uv_timer_t *t)
{
    adm_t *ad = t->data;
    int64_t now = time_mono_ns();
    hconn_t *hc = ad->phead;
    while (hc) {
        hconn_t *next = hc->next;
        if (now >= hc->deadline_ns) {
            if (hc->state == HC_LINGER) {
                hconn_end(hc, 0);
            } else if (hc->seen == 0) {
                ad->st.timed_out++; /* never said anything: just close */
                hconn_end(hc, 0);
            } else {
                ad->st.timed_out++; /* RFC 9110 section 15.5.9 */
                hconn_answer(hc, 408, "request head not received in time\n");
            }
        }
        hc = next;
    }
    ka_sweep(ad, now);
    if (ad->lpause_until && now >= ad->lpause_until && !ad->stopped) {
        ad->lpause_until = 0;
        uv_poll_start(&ad->lpoll, UV_READABLE, listen_cb);
    }
}

int adm_listen(const char *host, int port, char *err, size_t errlen)
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

int adm_fd_budget(const web_opts_t *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return o->max_connections;
    int64_t room = (int64_t)rl.rlim_cur - o->reserved_fds - 16; /* 16: listener, lws pipes */
    if (room < 16)
        room = 16;
    return room < o->max_connections ? (int)room : o->max_connections;
}

int adm_start(uv_loop_t *loop, int lfd, struct lws_vhost *vh, const web_opts_t *o, int cap,
              adm_t **out)
{
    adm_t *ad = xcalloc(1, sizeof *ad);
    ad->loop = loop;
    ad->vh = vh;
    ad->o = *o;
    ad->cap = cap;
    ad->lfd = lfd;
    ad->tls = o->tls_cert != NULL;
    ad->o.tls_cert = ad->o.tls_key = NULL; /* only needed by web_start */
    ad->st.max_connections = cap;
    hmap_init(&ad->addrs);
    int rc = uv_poll_init_socket(loop, &ad->lpoll, lfd);
    if (rc != 0) {
        close(lfd);
        hmap_free(&ad->addrs);
        free(ad);
        *out = NULL;
        return rc;
    }
    ad->lpoll.data = ad;
    uv_poll_start(&ad->lpoll, UV_READABLE, listen_cb);
    uv_timer_init(loop, &ad->sweep);
    ad->sweep.data = ad;
    uv_timer_start(&ad->sweep, sweep_cb, ADM_SWEEP_MS, ADM_SWEEP_MS);
    *out = ad;
    return 0;
}

void adm_stop(adm_t *ad)
{
    if (!ad || ad->stopped)
        return;
    ad->stopped = 1;
    uv_close((uv_handle_t *)&ad->lpoll, NULL);
    close(ad->lfd);
    ad->lfd = -1;
    uv_close((uv_handle_t *)&ad->sweep, NULL);
    while (ad->phead)
        hconn_end(ad->phead, 0);
}

void adm_free(adm_t *ad)
{
    if (!ad)
        return;
    /* Every wsi has been destroyed, releasing its address; free what might be left. */
    const char *k;
    void *v;
    for (size_t pos = 0; hmap_next(&ad->addrs, &pos, &k, &v);)
        free(v);
    hmap_free(&ad->addrs);
    free(ad);
}

void adm_wsi_adopted(adm_t *ad, struct lws *wsi)
{
    if (!ad || !ad->adopting || ad->adopt_claimed)
        return;
    lconn_t *lc = xcalloc(1, sizeof *lc);
    lc->ad = ad;
    lc->flags = ad->adopt_flags;
    lc->addr = ad->adopting;
    lc->wsi = wsi;
    lws_set_opaque_user_data(wsi, lc);
    ad->adopt_claimed = 1;
    if (lc->flags & ADOPT_TLS)
        lconn_set_idle(ad, lc, 1); /* no request yet: evictable, and its head timed */
}

void adm_wsi_destroyed(adm_t *ad, struct lws *wsi)
{
    lconn_t *lc = lws_get_opaque_user_data(wsi);
    if (!ad || !lc)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    lconn_set_idle(ad, lc, 0);
    addr_release(ad, lc->addr);
    free(lc);
}

void adm_wsi_idle(adm_t *ad, struct lws *wsi, int idle)
{
    if (ad)
        lconn_set_idle(ad, lws_get_opaque_user_data(wsi), idle);
}

int adm_wsi_close_after(adm_t *ad, struct lws *wsi)
{
    const lconn_t *lc = ad ? lws_get_opaque_user_data(wsi) : NULL;
    return lc && (lc->flags & ADOPT_REWRITTEN);
}

void adm_stats(const adm_t *ad, web_stats_t *st)
{
    *st = ad->st;
    st->open = ad->nopen;
}
