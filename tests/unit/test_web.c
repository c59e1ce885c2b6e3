/* Unit tests for web: the real server on 127.0.0.1:0 on a libuv loop run by the main thread,
 * driven by a client thread that speaks raw HTTP/1.1 over POSIX sockets.
 *
 * cmocka assertions must run on the test's own thread (they longjmp), so the client thread only
 * records the first failed check (CHECK) and the main thread asserts after joining it. Every
 * wait is bounded: client sockets have receive/send timeouts and the loop has a watchdog timer.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "web/web.h"

#define BIG_LEN     (2 * 1024 * 1024)
#define IO_TIMEOUT  5 /* seconds, per socket operation */
#define WATCHDOG_MS 30000

/* ---- what the handler saw ---------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    int calls;
    char method[16];
    char path[256];
    char query[256];
    buf_t body;
    int has_body; /* req->body != NULL */
    char remote[64];
} seen_t;

static seen_t seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void seen_reset(void)
{
    pthread_mutex_lock(&seen.mu);
    seen.calls = 0;
    seen.method[0] = seen.path[0] = seen.query[0] = seen.remote[0] = 0;
    buf_free(&seen.body);
    seen.has_body = 0;
    pthread_mutex_unlock(&seen.mu);
}

static uv_loop_t *test_loop; /* the loop web runs on (deferred answers use its timers) */

/* Writes the request header fields as "name=[value]" or "name=NULL" lines. */
static void echo_headers(const web_request_t *req, buf_t *b)
{
    const struct {
        const char *name, *v;
    } h[] = {
        {"cookie", req->cookie},
        {"authorization", req->authorization},
        {"origin", req->origin},
        {"referer", req->referer},
        {"host", req->host},
        {"content-type", req->content_type},
        {"x-forwarded-for", req->x_forwarded_for},
        {"accept-encoding", req->accept_encoding},
        {"user-agent", req->user_agent},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        if (h[i].v)
            buf_printf(b, "%s=[%s]\n", h[i].name, h[i].v);
        else
            buf_printf(b, "%s=NULL\n", h[i].name);
    }
    buf_printf(b, "tls=%d\n", req->tls);
}

/* A deferred answer, completed from a timer on the loop. */
typedef struct {
    uv_timer_t t;
    web_pending_t *p;
} later_t;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_cb(uv_timer_t *t)
{
    later_t *l = t->data;
    buf_t hd = {0}, body = {0};
    buf_puts(&hd, "Retry-After: 3\r\nX-Deferred: yes\r\nSet-Cookie: d=1; HttpOnly\r\n");
    buf_puts(&body, "deferred body");
    web_complete_h(l->p, 202, "text/plain", &hd, &body);
    uv_close((uv_handle_t *)t, later_closed);
}

/* Extra header blocks a handler may return (/xhdr/N): the first ones are valid. */
static const char *const xhdr_cases[] = {
    "Set-Cookie: sid=abc; HttpOnly; SameSite=Strict; Path=/\r\nRetry-After: 7\r\n"
    "WWW-Authenticate: Bearer realm=\"gridsense\"\r\nVary: Origin\r\n",
    "Cache-Control: private, max-age=60\r\n",
    "",                            /* valid ones above this line */
    "X-A: b\r\nX-Injected: yes",   /* no final CRLF */
    "X-A: b\r\n\r\n<html>",        /* an empty line: response splitting */
    "X-A: b\nX-Injected: yes\r\n", /* bare LF */
    "X-A: b\rX-Injected: yes\r\n", /* bare CR */
    "Bad Name: x\r\n",             /* not a token */
    ": x\r\n",                     /* empty name */
    "Content-Length: 0\r\n",       /* web's own */
    "X-A: b\x01c\r\n",             /* control byte */
    NULL,                          /* over WEB_MAX_RESP_HEADERS */
};
#define XHDR_VALID 2

/* A streamed answer (web_response_t.stream): pieces of STREAM_PIECE bytes, digit k % 10 in
 * piece k. */
#define STREAM_PIECE 10000
typedef struct {
    int n, fail_at, k;
} stream_t;
static _Atomic int streams_freed;

static int stream_piece(void *ud, buf_t *out)
{
    stream_t *st = ud;
    if (st->fail_at && st->k + 1 == st->fail_at)
        return -5; /* any negative code */
    if (st->k == st->n)
        return 0;
    char c = (char)('0' + st->k % 10);
    for (int i = 0; i < STREAM_PIECE; i++)
        buf_append(out, &c, 1);
    st->k++;
    return 1;
}

static void stream_done(void *ud)
{
    free(ud);
    streams_freed++;
}

/* Routes: /big → 2 MB, /missing → 404, /nostatus → status 0, /json → JSON, /hdrs → the request
 * headers, /xhdr/N → extra headers xhdr_cases[N], /defer → deferred 202 with headers, else
 * echo. */
static void handler(void *ud, const web_request_t *req, web_response_t *resp)
{
    (void)ud;
    pthread_mutex_lock(&seen.mu);
    seen.calls++;
    snprintf(seen.method, sizeof seen.method, "%s", req->method);
    snprintf(seen.path, sizeof seen.path, "%s", req->path);
    snprintf(seen.query, sizeof seen.query, "%s", req->query);
    snprintf(seen.remote, sizeof seen.remote, "%s", req->remote);
    buf_reset(&seen.body);
    seen.has_body = req->body != NULL;
    if (req->body)
        buf_append(&seen.body, req->body, req->body_len);
    pthread_mutex_unlock(&seen.mu);

    if (strcmp(req->path, "/big") == 0) {
        buf_reserve(&resp->body, BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++) {
            char c = (char)('a' + (i * 7 + i / 4096) % 26);
            buf_append(&resp->body, &c, 1);
        }
        resp->status = 200;
        resp->content_type = "application/json";
    } else if (strcmp(req->path, "/missing") == 0) {
        resp->status = 404;
        resp->content_type = "application/json";
        buf_puts(&resp->body, "{\"error\":\"not found\"}");
    } else if (strcmp(req->path, "/nostatus") == 0) {
        buf_puts(&resp->body, "forgotten");
    } else if (strcmp(req->path, "/empty") == 0) {
        resp->status = 204;
    } else if (strcmp(req->path, "/hdrs") == 0) {
        resp->status = 200;
        resp->content_type = "text/plain";
        echo_headers(req, &resp->body);
    } else if (strncmp(req->path, "/xhdr/", 6) == 0) {
        size_t k = (size_t)atoi(req->path + 6);
        resp->status = 200;
        resp->content_type = "text/plain";
        buf_puts(&resp->body, "x");
        if (k < sizeof xhdr_cases / sizeof xhdr_cases[0] && xhdr_cases[k]) {
            buf_puts(&resp->headers, xhdr_cases[k]);
        } else if (k == 99) { /* as much as allowed */
            static const char line[] = "X-Filler: 0123456789abcdef0123456789abcdef\r\n";
            while (resp->headers.len + 2 * (sizeof line - 1) <= WEB_MAX_RESP_HEADERS)
                buf_puts(&resp->headers, line);
            buf_puts(&resp->headers, "X-Last: ");
            while (resp->headers.len < WEB_MAX_RESP_HEADERS - 2)
                buf_putc(&resp->headers, 'z');
            buf_puts(&resp->headers, "\r\n");
        } else {
            while (resp->headers.len <= WEB_MAX_RESP_HEADERS)
                buf_puts(&resp->headers, "X-Filler: 0123456789abcdef0123456789abcdef\r\n");
        }
    } else if (strncmp(req->path, "/stream/", 8) == 0) {
        /* /stream/N/F: N pieces of STREAM_PIECE bytes, failing at piece F (0: never) */
        stream_t *st = xcalloc(1, sizeof *st);
        sscanf(req->path + 8, "%d/%d", &st->n, &st->fail_at);
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        buf_puts(&resp->headers, "Content-Disposition: attachment; filename=\"s.bin\"\r\n");
        resp->stream = stream_piece;
        resp->stream_free = stream_done;
        resp->stream_ud = st;
    } else if (strcmp(req->path, "/defer") == 0) {
        later_t *l = xcalloc(1, sizeof *l);
        l->p = web_defer(req);
        buf_puts(&resp->headers, "X-Ignored: yes\r\n"); /* discarded: deferred */
        uv_timer_init(test_loop, &l->t);
        l->t.data = l;
        uv_timer_start(&l->t, later_cb, 50, 0);
    } else {
        resp->status = 200;
        resp->content_type = "text/plain";
        buf_printf(&resp->body, "%s %s ?%s #%zu", req->method, req->path, req->query,
                   req->body_len);
    }
}

/* ---- client side ------------------------------------------------------------------------- */

typedef struct client client_t;
typedef void (*scenario_fn)(client_t *c);

struct client {
    int port;
    scenario_fn fn;
    uv_async_t *stop; /* signalled when the scenario ends */
    char fail[1024];  /* first failed CHECK, "" if none */
    void *arg;
};

#define CHECK(c, cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(c)->fail[0])                                                                     \
                snprintf((c)->fail, sizeof(c)->fail, "%s:%d: %s", __FILE__, __LINE__, #cond);      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static int cl_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cl_send(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int cl_sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cl_sendf(int fd, const char *fmt, ...)
{
    buf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    int rc = cl_send(fd, b.data, b.len);
    buf_free(&b);
    return rc;
}

typedef struct {
    int status;
    char headers[16384]; /* header block, lower-cased */
    long clen;           /* Content-Length or -1 */
    buf_t body;
} resp_t;

/* A client connection with its read-ahead buffer (bytes received past the last response). */
typedef struct {
    int fd;
    char buf[65536]; /* always NUL-terminated at len */
    size_t len;
} conn_t;

static int conn_fill(conn_t *cn)
{
    if (cn->len + 1 >= sizeof cn->buf)
        return -1;
    for (;;) {
        ssize_t k = recv(cn->fd, cn->buf + cn->len, sizeof cn->buf - 1 - cn->len, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1; /* EOF, reset or timeout */
        cn->len += (size_t)k;
        cn->buf[cn->len] = 0; /* lets the header search use string functions */
        return 0;
    }
}

static void conn_consume(conn_t *cn, size_t n)
{
    memmove(cn->buf, cn->buf + n, cn->len - n);
    cn->len -= n;
    cn->buf[cn->len] = 0;
}

/* Reads one response, framed by Content-Length. 0, or -1 on EOF / timeout / bad framing. */
static int read_response(conn_t *cn, resp_t *r)
{
    char *eoh;
    buf_free(&r->body);
    memset(r, 0, sizeof *r);
    r->clen = -1;
    for (;;) {
        if (cn->len) {
            cn->buf[cn->len] = 0;
            eoh = strstr(cn->buf, "\r\n\r\n"); /* header bytes contain no NUL */
            if (eoh)
                break;
        }
        if (conn_fill(cn))
            return -1;
    }
    size_t hlen = (size_t)(eoh - cn->buf) + 4;
    if (hlen >= sizeof r->headers)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        r->headers[i] =
            (char)((cn->buf[i] >= 'A' && cn->buf[i] <= 'Z') ? cn->buf[i] + 32 : cn->buf[i]);
    r->headers[hlen] = 0;
    if (sscanf(r->headers, "http/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl = strstr(r->headers, "\r\ncontent-length:");
    if (cl)
        r->clen = strtol(cl + 17, NULL, 10);
    conn_consume(cn, hlen);
    size_t want = r->clen > 0 ? (size_t)r->clen : 0;
    while (r->body.len < want) {
        if (cn->len == 0 && conn_fill(cn))
            return -1;
        size_t n = cn->len < want - r->body.len ? cn->len : want - r->body.len;
        buf_append(&r->body, cn->buf, n);
        conn_consume(cn, n);
    }
    return 0;
}

static int has_header(const resp_t *r, const char *line)
{
    char needle[256];
    snprintf(needle, sizeof needle, "\r\n%s\r\n", line);
    return strstr(r->headers, needle) != NULL;
}

/* Reads until EOF; returns 0 on EOF (or reset), -1 on timeout. */
static int wait_eof(int fd)
{
    char tmp[4096];
    for (;;) {
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k == 0)
            return 0;
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : 0;
    }
}

/* ---- harness ----------------------------------------------------------------------------- */

typedef struct {
    web_t *web;
    uv_timer_t watchdog;
    int timed_out;
    client_t *client;
} harness_t;

static void on_stop(uv_async_t *a)
{
    harness_t *h = a->data;
    web_stop(h->web);
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&h->watchdog, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    harness_t *h = t->data;
    h->timed_out = 1;
    web_stop(h->web);
    uv_close((uv_handle_t *)t, NULL);
    uv_close((uv_handle_t *)h->client->stop, NULL);
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    c->fn(c);
    uv_async_send(c->stop);
    return NULL;
}

/* Starts web, runs `fn` on a client thread while the loop runs here, stops web from inside the
 * loop when the client is done, and checks the loop closes cleanly. */
static const char *scenario_host = "127.0.0.1";
static const web_opts_t *scenario_opts; /* NULL = defaults */
static web_stats_t scenario_stats;      /* web's counters when the scenario ended */

static void run_scenario(scenario_fn fn, void *arg)
{
    uv_loop_t loop;
    harness_t h = {0};
    uv_async_t stop;
    client_t c = {.fn = fn, .stop = &stop, .arg = arg};
    char err[256] = "";
    pthread_t th;

    seen_reset();
    assert_int_equal(uv_loop_init(&loop), 0);
    test_loop = &loop;
    assert_int_equal(web_start_opts(&loop, scenario_host, 0, scenario_opts, handler, NULL, &h.web,
                                    err, sizeof err),
                     0);
    assert_non_null(h.web);
    c.port = web_port(h.web);
    assert_true(c.port > 0 && c.port < 65536);
    h.client = &c;
    stop.data = &h;
    assert_int_equal(uv_async_init(&loop, &stop, on_stop), 0);
    h.watchdog.data = &h;
    assert_int_equal(uv_timer_init(&loop, &h.watchdog), 0);
    assert_int_equal(uv_timer_start(&h.watchdog, on_watchdog, WATCHDOG_MS, 0), 0);

    assert_int_equal(pthread_create(&th, NULL, client_main, &c), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    web_stats(h.web, &scenario_stats);
    web_free(h.web);
    assert_int_equal(uv_loop_close(&loop), 0); /* no handle left behind by lws or us */
    assert_false(h.timed_out);
    if (c.fail[0])
        fail_msg("client: %s", c.fail);
    pthread_mutex_lock(&seen.mu);
    buf_free(&seen.body);
    pthread_mutex_unlock(&seen.mu);
}

/* ---- scenarios --------------------------------------------------------------------------- */

static void sc_get(client_t *c)
{
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /api/v1/terminals/T%%201?limit=5&from=a%%26b HTTP/1.1\r\n"
                             "Host: x\r\n\r\n") == 0);
    int rc = read_response(&cn, &r);
    close(cn.fd);
    CHECK(c, rc == 0);
    CHECK(c, r.status == 200);
    CHECK(c, has_header(&r, "content-type: text/plain"));
    CHECK(c, has_header(&r, "cache-control: no-store"));
    CHECK(c, has_header(&r, "x-content-type-options: nosniff"));
    CHECK(c, r.clen == (long)r.body.len);
    pthread_mutex_lock(&seen.mu);
    int ok = seen.calls == 1 && strcmp(seen.method, "GET") == 0 &&
             strcmp(seen.path, "/api/v1/terminals/T 1") == 0 &&
             strcmp(seen.query, "limit=5&from=a%26b") == 0 && !seen.has_body &&
             strcmp(seen.remote, "127.0.0.1") == 0;
    if (!ok)
        snprintf(c->fail, sizeof c->fail, "seen %d %s '%s' '%s' %d %s", seen.calls, seen.method,
                 seen.path, seen.query, seen.has_body, seen.remote);
    pthread_mutex_unlock(&seen.mu);
    CHECK(c, r.body.data &&
                 strcmp(r.body.data, "GET /api/v1/terminals/T 1 ?limit=5&from=a%26b #0") == 0);

    /* Query normalisation: lws splits at '&' and decodes ('+' too); web re-encodes. */
    static const char *const qs[][2] = {
        {"/q?q=a+b&e=x%3Dy&flag&&z=", "q=a%20b&e=x%3Dy&flag&z="},
        {"/q?", ""},
        {"/q?a&", "a"},
        {"/q?a=%2F", "a=/"},
        {"/q?x=%C3%A9", "x=%C3%A9"},
        {"/q/%2e%2e/%2e%2e/etc", ""},
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        cn = (conn_t){.fd = cl_connect(c->port)};
        CHECK(c, cn.fd >= 0);
        CHECK(c, cl_sendf(cn.fd, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", qs[i][0]) == 0);
        rc = read_response(&cn, &r);
        close(cn.fd);
        CHECK(c, rc == 0 && r.status == 200);
        pthread_mutex_lock(&seen.mu);
        ok = strcmp(seen.query, qs[i][1]) == 0 && strstr(seen.path, "..") == NULL;
        if (!ok)
            snprintf(c->fail, sizeof c->fail, "%s: path '%s' query '%s'", qs[i][0], seen.path,
                     seen.query);
        pthread_mutex_unlock(&seen.mu);
        CHECK(c, ok);
    }
    buf_free(&r.body);
}

static void test_get(void **state)
{
    (void)state;
    run_scenario(sc_get, NULL);
}

/* POST, PUT, PATCH, DELETE with and without bodies, all on one keep-alive connection. */
static void sc_methods(client_t *c)
{
    static const char *const ms[] = {"POST", "PUT", "PATCH", "DELETE"};
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    CHECK(c, cn.fd >= 0);
    for (size_t i = 0; i < 4; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"i\":%zu}", i);
        CHECK(c, cl_sendf(cn.fd,
                          "%s /things/%zu HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n%s",
                          ms[i], i, n, body) == 0);
        CHECK(c, read_response(&cn, &r) == 0);
        CHECK(c, r.status == 200);
        pthread_mutex_lock(&seen.mu);
        int ok = strcmp(seen.method, ms[i]) == 0 && seen.has_body && seen.body.len == (size_t)n &&
                 memcmp(seen.body.data, body, (size_t)n) == 0 && strcmp(seen.query, "") == 0;
        pthread_mutex_unlock(&seen.mu);
        CHECK(c, ok);
    }
    /* DELETE and POST without a body. */
    CHECK(c, cl_sendf(cn.fd, "DELETE /things/9 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 200);
    CHECK(c, strcmp(r.body.data, "DELETE /things/9 ? #0") == 0);
    CHECK(c, cl_sendf(cn.fd, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 200);
    CHECK(c, strcmp(r.body.data, "POST /p ? #0") == 0);
    pthread_mutex_lock(&seen.mu);
    int calls = seen.calls;
    pthread_mutex_unlock(&seen.mu);
    CHECK(c, calls == 6);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_methods_and_bodies(void **state)
{
    (void)state;
    run_scenario(sc_methods, NULL);
}

/* A body sent in several TCP segments with pauses is reassembled. */
static void sc_split_body(client_t *c)
{
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    buf_t body = {0};
    CHECK(c, cn.fd >= 0);
    for (int i = 0; i < WEB_MAX_BODY; i++)
        buf_append(&body, &"0123456789abcdef"[i % 16], 1);
    int one = 1;
    setsockopt(cn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = cl_sendf(cn.fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                      body.len);
    for (size_t off = 0; rc == 0 && off < body.len; off += 10000) {
        size_t n = body.len - off < 10000 ? body.len - off : 10000;
        rc = cl_send(cn.fd, body.data + off, n);
        usleep(1000); /* spreads the body over many reads; not a synchronisation */
    }
    if (rc == 0)
        rc = read_response(&cn, &r);
    close(cn.fd);
    pthread_mutex_lock(&seen.mu);
    int ok = seen.body.len == body.len && memcmp(seen.body.data, body.data, body.len) == 0;
    pthread_mutex_unlock(&seen.mu);
    buf_free(&body);
    CHECK(c, rc == 0);
    CHECK(c, r.status == 200);
    buf_free(&r.body);
    CHECK(c, ok);
}

static void test_body_at_limit_in_pieces(void **state)
{
    (void)state;
    run_scenario(sc_split_body, NULL);
}

static void sc_big(client_t *c)
{
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    CHECK(c, cn.fd >= 0);
    /* Twice on one connection: the second response must start exactly after the first. */
    for (int round = 0; round < 2; round++) {
        CHECK(c, cl_sendf(cn.fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        CHECK(c, read_response(&cn, &r) == 0);
        CHECK(c, r.status == 200);
        CHECK(c, has_header(&r, "content-type: application/json"));
        CHECK(c, r.clen == BIG_LEN);
        CHECK(c, r.body.len == BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++)
            CHECK(c, r.body.data[i] == (char)('a' + (i * 7 + i / 4096) % 26));
    }
    CHECK(c, cn.len == 0);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_big_response(void **state)
{
    (void)state;
    run_scenario(sc_big, NULL);
}

/* Slow reader: the server must not give up while the client drains 2 MB slowly. */
static void sc_big_slow_reader(client_t *c)
{
    int fd = cl_connect(c->port);
    CHECK(c, fd >= 0);
    int small = 65536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    CHECK(c, cl_sendf(fd, "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
    size_t total = 0;
    char tmp[8192];
    for (;;) {
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k <= 0)
            break;
        total += (size_t)k;
    }
    close(fd);
    CHECK(c, total > BIG_LEN);
}

static void test_big_response_slow_reader(void **state)
{
    (void)state;
    run_scenario(sc_big_slow_reader, NULL);
}

static void sc_keepalive(client_t *c)
{
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 200);
    CHECK(c, strcmp(r.body.data, "GET /one ? #0") == 0);
    CHECK(c, !has_header(&r, "connection: close"));
    CHECK(c, cl_sendf(cn.fd, "GET /two?x=1 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 200);
    CHECK(c, strcmp(r.body.data, "GET /two ?x=1 #0") == 0);
    /* Pipelined: two requests in one write. */
    CHECK(c, cl_sendf(cn.fd, "GET /three HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /four HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, strcmp(r.body.data, "GET /three ? #0") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, strcmp(r.body.data, "GET /four ? #0") == 0);
    /* Connection: close is honoured. */
    CHECK(c, cl_sendf(cn.fd, "GET /five HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, strcmp(r.body.data, "GET /five ? #0") == 0);
    CHECK(c, cn.len == 0 && wait_eof(cn.fd) == 0);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_keepalive(void **state)
{
    (void)state;
    run_scenario(sc_keepalive, NULL);
}

static void sc_too_large(client_t *c)
{
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    size_t n = WEB_MAX_BODY + 1;
    char *body = xmalloc(n);
    memset(body, 'x', n);
    CHECK(c, cn.fd >= 0);
    int rc = cl_sendf(cn.fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
    if (rc == 0)
        rc = cl_send(cn.fd, body, n); /* may fail once the server has closed: fine */
    free(body);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 413);
    CHECK(c, has_header(&r, "connection: close"));
    CHECK(c, wait_eof(cn.fd) == 0);
    close(cn.fd);
    buf_free(&r.body);
    pthread_mutex_lock(&seen.mu);
    int calls = seen.calls;
    pthread_mutex_unlock(&seen.mu);
    CHECK(c, calls == 0);

    /* A huge announced length is refused before any body is sent. */
    cn = (conn_t){.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n") ==
                 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 413);
    CHECK(c, wait_eof(cn.fd) == 0);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_body_too_large(void **state)
{
    (void)state;
    run_scenario(sc_too_large, NULL);
}

static void sc_statuses(client_t *c)
{
    conn_t cn = {.fd = cl_connect(c->port)};
    resp_t r = {0};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 404);
    CHECK(c, has_header(&r, "content-type: application/json"));
    CHECK(c, strcmp(r.body.data, "{\"error\":\"not found\"}") == 0);
    /* Status left 0 by the handler: 500, body dropped, connection still usable. */
    CHECK(c, cl_sendf(cn.fd, "GET /nostatus HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 500);
    CHECK(c, r.body.data && strstr(r.body.data, "forgotten") == NULL);
    CHECK(c, cl_sendf(cn.fd, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 204);
    CHECK(c, r.body.len == 0);
    CHECK(c, cl_sendf(cn.fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 200);
    close(cn.fd);

    /* Methods we do not serve: 405 and the handler is not called. */
    static const char *const bad[] = {"OPTIONS", "HEAD"};
    for (size_t i = 0; i < 2; i++) {
        seen_reset();
        cn = (conn_t){.fd = cl_connect(c->port)};
        CHECK(c, cn.fd >= 0);
        CHECK(c, cl_sendf(cn.fd, "%s / HTTP/1.1\r\nHost: x\r\n\r\n", bad[i]) == 0);
        int rc = read_response(&cn, &r);
        close(cn.fd);
        CHECK(c, rc == 0);
        CHECK(c, r.status == 405);
        CHECK(c, has_header(&r, "allow: get, post, put, patch, delete"));
        CHECK(c, has_header(&r, "connection: close"));
        pthread_mutex_lock(&seen.mu);
        int calls = seen.calls;
        pthread_mutex_unlock(&seen.mu);
        CHECK(c, calls == 0);
    }
    buf_free(&r.body);
}

static void test_statuses(void **state)
{
    (void)state;
    run_scenario(sc_statuses, NULL);
}

/* Garbage must not crash the server; each junk connection is answered and/or closed (never left
 * hanging) and the next client is served normally. status 0 = any answer or none. */
static void sc_garbage(client_t *c)
{
    static const struct {
        const char *bytes;
        int status; /* expected first status, 0 = don't care */
        int calls;  /* handler calls expected */
    } junk[] = {
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n", 0, 0},
        {"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0},
        {"GET\r\n\r\n", 0, 0},
        {"GET / HTTP/9.9\r\n\r\n", 0, 1}, /* lws serves it as HTTP/1.0 */
        {"GET /%00x HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n", 400, 0},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411, 0},
        {"\r\n\r\n\r\n\r\n", 0, 0},
        {NULL, 0, 0}, /* 4 KiB of pseudo-random bytes */
    };
    uint8_t rnd[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1103515245u + 12345u;
        rnd[i] = (uint8_t)(x >> 16);
    }
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        seen_reset();
        conn_t cn = {.fd = cl_connect(c->port)};
        resp_t r = {0};
        CHECK(c, cn.fd >= 0);
        if (junk[i].bytes)
            cl_send(cn.fd, junk[i].bytes, strlen(junk[i].bytes));
        else
            cl_send(cn.fd, rnd, sizeof rnd);
        int got = read_response(&cn, &r) == 0;
        int eof = wait_eof(cn.fd); /* server closes; must not hang */
        close(cn.fd);
        buf_free(&r.body);
        pthread_mutex_lock(&seen.mu);
        int calls = seen.calls;
        pthread_mutex_unlock(&seen.mu);
        if (eof != 0 || (junk[i].status && (!got || r.status != junk[i].status)) ||
            calls != junk[i].calls)
            snprintf(c->fail, sizeof c->fail, "junk #%zu: eof %d status %d calls %d", i, eof,
                     got ? r.status : -1, calls);
        CHECK(c, !c->fail[0]);

        cn = (conn_t){.fd = cl_connect(c->port)};
        CHECK(c, cn.fd >= 0);
        CHECK(c, cl_sendf(cn.fd, "GET /alive HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        int rc = read_response(&cn, &r);
        close(cn.fd);
        buf_free(&r.body);
        CHECK(c, rc == 0 && r.status == 200);
    }
}

static void test_garbage(void **state)
{
    (void)state;
    run_scenario(sc_garbage, NULL);
}

/* Many connections at once, each with a request outstanding. */
static void sc_concurrent(client_t *c)
{
    enum { N = 64 };
    conn_t *cn = xcalloc(N, sizeof *cn);
    resp_t r = {0};
    int i;
    for (i = 0; i < N; i++) {
        cn[i].fd = cl_connect(c->port);
        if (cn[i].fd < 0)
            break;
        if (cl_sendf(cn[i].fd, "GET /c/%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
            break;
    }
    int ok = i == N;
    for (int j = N - 1; ok && j >= 0; j--) {
        char want[64];
        snprintf(want, sizeof want, "GET /c/%d ? #0", j);
        ok = read_response(&cn[j], &r) == 0 && r.status == 200 && strcmp(r.body.data, want) == 0;
    }
    for (int j = 0; j < i; j++)
        close(cn[j].fd);
    free(cn);
    buf_free(&r.body);
    CHECK(c, ok);
}

static void test_concurrent(void **state)
{
    (void)state;
    run_scenario(sc_concurrent, NULL);
}

/* Listening on any address (dual-stack where available): IPv4 peers still show as a.b.c.d. */
static void test_any_host(void **state)
{
    (void)state;
    scenario_host = "*";
    run_scenario(sc_get, NULL);
    scenario_host = "";
    run_scenario(sc_get, NULL);
    scenario_host = "127.0.0.1";
}

/* The process may hold thousands of fds; lws must cope with fd numbers above its own table. */
static void test_high_fd_numbers(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
        rl.rlim_cur = 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 4096)
        skip();
    enum { FILL = 3000 };
    int *fds = xmalloc(FILL * sizeof *fds);
    int n = 0;
    while (n < FILL) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    assert_int_equal(n, FILL);
    run_scenario(sc_keepalive, NULL);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
}

/* web_stop while a client holds an idle keep-alive connection: the client sees EOF, the loop
 * ends and closes with no handles left. */
typedef struct {
    uv_loop_t loop;
    web_t *web;
    uv_timer_t t;
    uv_async_t go;
    int port;
    int client_eof;
    int client_ok;
} stop_t;

static void on_go(uv_async_t *a)
{
    stop_t *st = a->data;
    web_stop(st->web);
    web_stop(st->web); /* idempotent */
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&st->t, NULL);
}

static void on_stop_watchdog(uv_timer_t *t)
{
    stop_t *st = t->data;
    web_stop(st->web);
    uv_close((uv_handle_t *)t, NULL);
    uv_close((uv_handle_t *)&st->go, NULL);
}

static void *stop_client(void *arg)
{
    stop_t *st = arg;
    conn_t cn = {.fd = cl_connect(st->port)};
    resp_t r = {0};
    if (cn.fd >= 0 && cl_sendf(cn.fd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n") == 0 &&
        read_response(&cn, &r) == 0 && r.status == 200)
        st->client_ok = 1;
    uv_async_send(&st->go);
    if (cn.fd >= 0) {
        st->client_eof = wait_eof(cn.fd) == 0;
        close(cn.fd);
    }
    buf_free(&r.body);
    return NULL;
}

static void test_stop_with_open_connection(void **state)
{
    (void)state;
    stop_t st = {0};
    char err[256];
    pthread_t th;
    assert_int_equal(uv_loop_init(&st.loop), 0);
    assert_int_equal(web_start(&st.loop, "127.0.0.1", 0, handler, NULL, &st.web, err, sizeof err),
                     0);
    st.port = web_port(st.web);
    st.go.data = st.t.data = &st;
    assert_int_equal(uv_async_init(&st.loop, &st.go, on_go), 0);
    assert_int_equal(uv_timer_init(&st.loop, &st.t), 0);
    assert_int_equal(uv_timer_start(&st.t, on_stop_watchdog, WATCHDOG_MS, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, stop_client, &st), 0);
    assert_int_equal(uv_run(&st.loop, UV_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    web_free(st.web);
    assert_int_equal(uv_loop_close(&st.loop), 0);
    assert_true(st.client_ok);
    assert_true(st.client_eof);
}

/* Start and stop with no traffic at all, from a timer. */
static void on_stop_timer(uv_timer_t *t)
{
    web_stop(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_start_stop_idle(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        uv_loop_t loop;
        uv_timer_t t;
        web_t *w = NULL;
        char err[256];
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(web_start(&loop, "127.0.0.1", 0, handler, NULL, &w, err, sizeof err), 0);
        uv_timer_init(&loop, &t);
        t.data = w;
        uv_timer_start(&t, on_stop_timer, 1, 0);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        web_free(w);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
    web_free(NULL);
}

/* A port already in use is reported as an error, without leaving handles on the loop. */
static void test_port_in_use(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_timer_t t;
    web_t *a = NULL, *b = (web_t *)1;
    char err[256] = "";
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(web_start(&loop, "127.0.0.1", 0, handler, NULL, &a, err, sizeof err), 0);
    int rc = web_start(&loop, "127.0.0.1", web_port(a), handler, NULL, &b, err, sizeof err);
    assert_int_equal(rc, UV_EADDRINUSE);
    assert_null(b);
    assert_non_null(strstr(err, "listen"));
    uv_timer_init(&loop, &t);
    t.data = a;
    uv_timer_start(&t, on_stop_timer, 1, 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    web_free(a);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* An interface that does not exist fails inside lws, after it has put handles on the loop:
     * they must be gone once the loop has run. */
    assert_int_equal(uv_loop_init(&loop), 0);
    b = (web_t *)1;
    assert_true(web_start(&loop, "gsnoiface0", 0, handler, NULL, &b, err, sizeof err) < 0);
    assert_null(b);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_true(web_start(&loop, "127.0.0.1", 70000, handler, NULL, &b, err, sizeof err) < 0);
    assert_true(web_start(&loop, "127.0.0.1", 80, NULL, NULL, &b, err, sizeof err) < 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Header names that are strict prefixes of names lws knows stall lws 4.1.6's parser for ever:
 * web drops them, so the request is served at once; with a body it answers 400. */
static void sc_prefix_headers(client_t *c)
{
    static const char *const names[] = {"Acc", "Cont", "Us", "Origi", "X-A", "A", "Ge", "Ho"};
    resp_t r = {0};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        conn_t cn = {.fd = cl_connect(c->port)};
        CHECK(c, cn.fd >= 0);
        CHECK(c,
              cl_sendf(cn.fd, "GET /p/%zu HTTP/1.1\r\n%s: x\r\nHost: x\r\n\r\n", i, names[i]) == 0);
        int rc = read_response(&cn, &r);
        /* The rewritten head's connection is closed after the answer (the client would send
         * the header again, and only a new connection passes through the front). */
        int st1 = r.status, closes = has_header(&r, "connection: close");
        int eof = wait_eof(cn.fd);
        close(cn.fd);
        cn = (conn_t){.fd = cl_connect(c->port)};
        int rc2 = cl_sendf(cn.fd, "GET /again HTTP/1.1\r\n%s: x\r\nHost: x\r\n\r\n", names[i]);
        if (rc2 == 0)
            rc2 = read_response(&cn, &r);
        close(cn.fd);
        if (rc != 0 || st1 != 200 || !closes || eof != 0 || rc2 != 0 || r.status != 200)
            snprintf(c->fail, sizeof c->fail,
                     "%s: rc %d status %d close %d eof %d, then rc %d status %d", names[i], rc, st1,
                     closes, eof, rc2, r.status);
        CHECK(c, !c->fail[0]);
    }
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c,
          cl_sendf(cn.fd,
                   "POST /b HTTP/1.1\r\nHost: x\r\nCont: x\r\nContent-Length: 2\r\n\r\n{}") == 0);
    CHECK(c, read_response(&cn, &r) == 0);
    CHECK(c, r.status == 400);
    CHECK(c, has_header(&r, "connection: close"));
    CHECK(c, wait_eof(cn.fd) == 0);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_prefix_headers(void **state)
{
    (void)state;
    run_scenario(sc_prefix_headers, NULL);
}

/* Heads over WEB_MAX_HEAD bytes or WEB_MAX_FIELDS lines: 431; malformed heads: 400. */
static void sc_head_limits(client_t *c)
{
    static const struct {
        int kind; /* 0 long value, 1 many lines, 2..: literal */
        const char *raw;
        int status;
    } cases[] = {
        {0, NULL, 431},
        {1, NULL, 431},
        {2, "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {2, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {2, "GET / HTTP/1.1\r\n folded\r\n\r\n", 400},
        {2, "GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", 400},
        {2, "GET / HTTP/1.1\nHost: x\n\n", 400},
        {2, "GET /x HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400},
    };
    resp_t r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b = {0};
        if (cases[i].kind == 0) {
            buf_puts(&b, "GET / HTTP/1.1\r\nX-Big: ");
            for (int k = 0; k < WEB_MAX_HEAD; k++)
                buf_putc(&b, 'a');
            buf_puts(&b, "\r\n\r\n");
        } else if (cases[i].kind == 1) {
            buf_puts(&b, "GET / HTTP/1.1\r\n");
            for (int k = 0; k <= WEB_MAX_FIELDS; k++)
                buf_printf(&b, "X-F%d: v\r\n", k);
            buf_puts(&b, "\r\n");
        } else {
            buf_puts(&b, cases[i].raw);
        }
        conn_t cn = {.fd = cl_connect(c->port)};
        CHECK(c, cn.fd >= 0);
        cl_send(cn.fd, b.data, b.len); /* may fail part-way once the server answered */
        buf_free(&b);
        int rc = read_response(&cn, &r);
        int eof = wait_eof(cn.fd);
        close(cn.fd);
        if (rc != 0 || r.status != cases[i].status || !has_header(&r, "connection: close") ||
            eof != 0)
            snprintf(c->fail, sizeof c->fail, "case %zu: rc %d status %d eof %d", i, rc, r.status,
                     eof);
        CHECK(c, !c->fail[0]);
    }
    /* Exactly at the limits: served. */
    buf_t b = {0};
    buf_puts(&b, "GET /ok HTTP/1.1\r\n");
    for (int k = 0; k < WEB_MAX_FIELDS - 1; k++)
        buf_printf(&b, "X-F%d: v\r\n", k);
    buf_puts(&b, "X-Pad: ");
    while (b.len < WEB_MAX_HEAD - 4)
        buf_putc(&b, 'p');
    buf_puts(&b, "\r\n\r\n");
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, b.len == WEB_MAX_HEAD);
    CHECK(c, cl_send(cn.fd, b.data, b.len) == 0);
    buf_free(&b);
    int rc = read_response(&cn, &r);
    close(cn.fd);
    CHECK(c, rc == 0 && r.status == 200);
    buf_free(&r.body);
}

static void test_head_limits(void **state)
{
    (void)state;
    run_scenario(sc_head_limits, NULL);
}

/* Per-address cap 3, request timeout 1 s: idle connections are evicted oldest first to serve a
 * new one; one that sent nothing is closed after the timeout, one with part of a head gets 408. */
static void sc_caps_and_timeouts(client_t *c)
{
    int idle[3];
    resp_t r = {0};
    for (int i = 0; i < 3; i++) {
        idle[i] = cl_connect(c->port);
        CHECK(c, idle[i] >= 0);
    }
    usleep(200 * 1000); /* let the server accept them in order; not a synchronisation */
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /fresh HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    close(cn.fd);
    CHECK(c, wait_eof(idle[0]) == 0); /* the oldest idle one made room */
    for (int i = 0; i < 3; i++)
        close(idle[i]);

    int fd = cl_connect(c->port);
    CHECK(c, fd >= 0);
    int64_t t0 = time_mono_ns();
    CHECK(c, wait_eof(fd) == 0);
    int64_t took_ms = (time_mono_ns() - t0) / 1000000;
    close(fd);
    CHECK(c, took_ms >= 700 && took_ms < 4500);

    cn = (conn_t){.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET / HTTP/1.1\r\nHo") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 408);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_caps_and_timeouts(void **state)
{
    (void)state;
    web_opts_t o;
    web_opts_default(&o);
    o.max_per_address = 3;
    o.request_timeout_s = 1;
    scenario_opts = &o;
    run_scenario(sc_caps_and_timeouts, NULL);
    scenario_opts = NULL;
}

/* Per-address cap 2: two kept-alive connections between requests; a third client is served and
 * the oldest idle one is closed, the other stays usable. */
static void sc_keepalive_eviction(client_t *c)
{
    conn_t ka[2];
    resp_t r = {0};
    for (int i = 0; i < 2; i++) {
        ka[i] = (conn_t){.fd = cl_connect(c->port)};
        CHECK(c, ka[i].fd >= 0);
        CHECK(c, cl_sendf(ka[i].fd, "GET /ka/%d HTTP/1.1\r\nHost: x\r\n\r\n", i) == 0);
        CHECK(c, read_response(&ka[i], &r) == 0 && r.status == 200);
        usleep(50 * 1000); /* orders the two as idle; not a synchronisation */
    }
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /third HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    CHECK(c, wait_eof(ka[0].fd) == 0); /* the oldest idle one made room */
    close(ka[0].fd);
    close(cn.fd);
    CHECK(c, cl_sendf(ka[1].fd, "GET /still HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&ka[1], &r) == 0 && r.status == 200);
    close(ka[1].fd);
    buf_free(&r.body);
}

static void test_keepalive_eviction(void **state)
{
    (void)state;
    web_opts_t o;
    web_opts_default(&o);
    o.max_per_address = 2;
    scenario_opts = &o;
    run_scenario(sc_keepalive_eviction, NULL);
    scenario_opts = NULL;
}

/* Later requests on a kept-alive connection are read by lws itself. One whose last header line
 * stalls lws's lexer (a prefix of a known name, a line without a colon) or that stops part-way
 * is answered 408 by web after about 1 s (ADM_KA_HEAD_MS), not closed unanswered at lws's head
 * timeout (request_timeout, 5 s here); good ones, with a body too, stay on the connection. */
static void kept_alive(client_t *c, conn_t *cn)
{
    resp_t r = {0};
    *cn = (conn_t){.fd = cl_connect(c->port)};
    CHECK(c, cn->fd >= 0);
    CHECK(c, cl_sendf(cn->fd, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(cn, &r) == 0 && r.status == 200);
    CHECK(c, !has_header(&r, "connection: close"));
    buf_free(&r.body);
}

static void sc_keepalive_heads(client_t *c)
{
    static const char *const stalled[] = {
        "GET /k HTTP/1.1\r\nHost: x\r\nAcc: x\r\n\r\n",
        "GET /k HTTP/1.1\r\nHost: x\r\nCont: x\r\n\r\n",
        "GET /k HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        "GET /k HTTP/1.1\r\nHo",
    };
    resp_t r = {0};
    conn_t cn;
    kept_alive(c, &cn);
    for (int i = 0; i < 3; i++) {
        CHECK(c, cl_sendf(cn.fd, "POST /b%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
                          i) == 0);
        CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
        CHECK(c, !has_header(&r, "connection: close"));
    }
    close(cn.fd);
    for (size_t i = 0; i < sizeof stalled / sizeof stalled[0]; i++) {
        kept_alive(c, &cn);
        int64_t t0 = time_mono_ns();
        CHECK(c, cl_sendf(cn.fd, "%s", stalled[i]) == 0);
        int rc = read_response(&cn, &r);
        int64_t ms = (time_mono_ns() - t0) / 1000000;
        int eof = wait_eof(cn.fd);
        close(cn.fd);
        if (rc != 0 || r.status != 408 || !has_header(&r, "connection: close") || eof != 0 ||
            ms < 700 || ms > 3000)
            snprintf(c->fail, sizeof c->fail, "case %zu: rc %d status %d eof %d after %lld ms", i,
                     rc, r.status, eof, (long long)ms);
        CHECK(c, !c->fail[0]);
    }
    buf_free(&r.body);
}

static void test_keepalive_heads(void **state)
{
    (void)state;
    run_scenario(sc_keepalive_heads, NULL);
    assert_int_equal(scenario_stats.answered_408, 4);
    assert_int_equal(scenario_stats.timed_out, 4);
    assert_int_equal(scenario_stats.open, 0);
}

/* A first head cut short by the client's FIN is answered 400 at once. Before, the EOF woke the
 * poll again and again (the head stays unread in the socket) until request_timeout: a busy loop
 * for 5 s that any client could start, then a 408. */
static void sc_head_then_fin(client_t *c)
{
    resp_t r = {0};
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    int64_t t0 = time_mono_ns();
    CHECK(c, cl_sendf(cn.fd, "GET /cut HTTP/1.1\r\nHost: x\r\nX-") == 0);
    shutdown(cn.fd, SHUT_WR);
    CHECK(c, read_response(&cn, &r) == 0);
    int64_t ms = (time_mono_ns() - t0) / 1000000;
    if (r.status != 400 || ms > 1000)
        snprintf(c->fail, sizeof c->fail, "status %d after %lld ms", r.status, (long long)ms);
    CHECK(c, !c->fail[0]);
    CHECK(c, wait_eof(cn.fd) == 0);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_head_then_fin(void **state)
{
    (void)state;
    run_scenario(sc_head_then_fin, NULL);
    assert_int_equal(scenario_stats.answered_400, 1);
    assert_int_equal(scenario_stats.timed_out, 0);
}

/* Refused connections are logged through log_limited with the address as the source: 300
 * refusals give at most LOG_LIMIT_BURST lines, then one "suppressed N similar messages" line
 * once the window has ended (the clock is moved on; the gateway's timer calls the flush). */
static long long clock_offset_ns;
static long long fake_clock(void)
{
    return time_mono_ns() + __atomic_load_n(&clock_offset_ns, __ATOMIC_SEQ_CST);
}

static void sc_refusals(client_t *c)
{
    int busy[2];
    for (int i = 0; i < 2; i++) {
        busy[i] = cl_connect(c->port);
        CHECK(c, busy[i] >= 0);
        /* a request waiting for its body is not idle: it cannot be evicted */
        CHECK(c,
              cl_sendf(busy[i], "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n") == 0);
    }
    usleep(300 * 1000); /* lets lws take them; a refusal below is checked by its EOF anyway */
    for (int i = 0; i < 300; i++) {
        int fd = cl_connect(c->port);
        CHECK(c, fd >= 0);
        CHECK(c, wait_eof(fd) == 0);
        close(fd);
    }
    for (int i = 0; i < 2; i++)
        close(busy[i]);
}

static void test_refusals_logged_limited(void **state)
{
    (void)state;
    char path[] = "/tmp/gs-test-web-log-XXXXXX";
    int lfd = mkstemp(path);
    assert_true(lfd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    dup2(lfd, 2);
    log_limited_set_clock(fake_clock);
    web_opts_t o;
    web_opts_default(&o);
    o.max_per_address = 2;
    scenario_opts = &o;
    run_scenario(sc_refusals, NULL);
    scenario_opts = NULL;
    __atomic_store_n(&clock_offset_ns, 61 * 1000000000LL, __ATOMIC_SEQ_CST);
    log_limited_flush();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_limited_set_clock(NULL);
    clock_offset_ns = 0;

    char text[65536];
    ssize_t n = pread(lfd, text, sizeof text - 1, 0);
    close(lfd);
    assert_true(n > 0);
    text[n] = 0;
    int refused_lines = 0, summaries = 0;
    unsigned long suppressed = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "HTTP connection from 127.0.0.1 refused"))
            refused_lines++;
        const char *sp = strstr(line, "suppressed ");
        if (sp && strstr(line, "similar messages from 127.0.0.1")) {
            summaries++;
            suppressed = strtoul(sp + 11, NULL, 10);
        }
    }
    assert_int_equal(scenario_stats.refused_per_address, 300);
    assert_int_equal(scenario_stats.refused, 300);
    assert_int_equal(refused_lines, LOG_LIMIT_BURST);
    assert_int_equal(summaries, 1);
    assert_int_equal(suppressed, 300 - LOG_LIMIT_BURST);
}

/* Request headers reach the handler: absent NULL, empty "", repeated ones joined, a long
 * Cookie whole. */
static void sc_req_headers(client_t *c)
{
    resp_t r = {0};
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /hdrs HTTP/1.1\r\nHost: gs.example:8080\r\n"
                             "Cookie: sid=abc; theme=dark\r\nAuthorization: Bearer tok.123\r\n"
                             "Origin: http://evil.example\r\nReferer: http://gs.example/ui\r\n"
                             "Content-Type: text/plain\r\nX-Forwarded-For: 10.0.0.1\r\n"
                             "Accept-Encoding: gzip, br\r\nUser-Agent: test/1.0\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    static const char want1[] =
        "cookie=[sid=abc; theme=dark]\nauthorization=[Bearer tok.123]\n"
        "origin=[http://evil.example]\nreferer=[http://gs.example/ui]\nhost=[gs.example:8080]\n"
        "content-type=[text/plain]\nx-forwarded-for=[10.0.0.1]\naccept-encoding=[gzip, br]\n"
        "user-agent=[test/1.0]\ntls=0\n";
    if (!r.body.data || strcmp(r.body.data, want1) != 0)
        snprintf(c->fail, sizeof c->fail, "all headers: got '%s'", r.body.data);
    CHECK(c, !c->fail[0]);

    /* None but Host, on the same connection: NULL, nothing left over from the request before. */
    CHECK(c, cl_sendf(cn.fd, "GET /hdrs HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    static const char want2[] = "cookie=NULL\nauthorization=NULL\norigin=NULL\nreferer=NULL\n"
                                "host=[x]\ncontent-type=NULL\nx-forwarded-for=NULL\n"
                                "accept-encoding=NULL\nuser-agent=NULL\ntls=0\n";
    if (!r.body.data || strcmp(r.body.data, want2) != 0)
        snprintf(c->fail, sizeof c->fail, "no headers: got '%s'", r.body.data);
    CHECK(c, !c->fail[0]);

    /* Present but empty; repeated (joined in order). */
    CHECK(c,
          cl_sendf(cn.fd, "GET /hdrs HTTP/1.1\r\nHost: x\r\nOrigin:\r\nReferer: \r\n"
                          "Cookie: a=1\r\nCookie:\r\nCookie: b=2 \r\nX-Forwarded-For: 10.0.0.1\r\n"
                          "X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    static const char want3[] = "cookie=[a=1; b=2]\nauthorization=NULL\norigin=[]\nreferer=[]\n"
                                "host=[x]\ncontent-type=NULL\n"
                                "x-forwarded-for=[10.0.0.1, 10.0.0.2, 10.0.0.3]\n"
                                "accept-encoding=NULL\nuser-agent=NULL\ntls=0\n";
    if (!r.body.data || strcmp(r.body.data, want3) != 0)
        snprintf(c->fail, sizeof c->fail, "empty/repeated: got '%s'", r.body.data);
    CHECK(c, !c->fail[0]);
    close(cn.fd);

    /* A Cookie that fills the head up to WEB_MAX_HEAD arrives whole. */
    buf_t b = {0}, cookie = {0};
    buf_puts(&b, "GET /hdrs HTTP/1.1\r\nHost: x\r\nCookie: ");
    while (b.len + cookie.len < WEB_MAX_HEAD - 4)
        buf_putc(&cookie, (char)('a' + cookie.len % 26));
    buf_append(&b, cookie.data, cookie.len);
    buf_puts(&b, "\r\n\r\n");
    cn = (conn_t){.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, b.len == WEB_MAX_HEAD);
    CHECK(c, cl_send(cn.fd, b.data, b.len) == 0);
    buf_free(&b);
    int rc = read_response(&cn, &r);
    close(cn.fd);
    CHECK(c, rc == 0 && r.status == 200);
    buf_printf(&b, "cookie=[%s]\n", cookie.data);
    int ok = r.body.data && strncmp(r.body.data, b.data, b.len) == 0;
    buf_free(&b);
    buf_free(&cookie);
    buf_free(&r.body);
    CHECK(c, ok);
}

static void test_request_headers(void **state)
{
    (void)state;
    run_scenario(sc_req_headers, NULL);
}

/* The handler's extra header lines reach the client; a malformed block becomes a 500 and the
 * connection stays usable. */
static void sc_extra_headers(client_t *c)
{
    resp_t r = {0};
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c, cl_sendf(cn.fd, "GET /xhdr/0 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    CHECK(c, has_header(&r, "set-cookie: sid=abc; httponly; samesite=strict; path=/"));
    CHECK(c, has_header(&r, "retry-after: 7"));
    CHECK(c, has_header(&r, "www-authenticate: bearer realm=\"gridsense\""));
    CHECK(c, has_header(&r, "vary: origin"));
    CHECK(c, has_header(&r, "cache-control: no-store"));
    CHECK(c, has_header(&r, "x-content-type-options: nosniff"));
    CHECK(c, r.body.len == 1);

    /* The handler's Cache-Control replaces web's no-store. */
    CHECK(c, cl_sendf(cn.fd, "GET /xhdr/1 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    CHECK(c, has_header(&r, "cache-control: private, max-age=60"));
    CHECK(c, !strstr(r.headers, "no-store"));

    /* Exactly WEB_MAX_RESP_HEADERS bytes of extras fit. */
    CHECK(c, cl_sendf(cn.fd, "GET /xhdr/99 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    CHECK(c, strstr(r.headers, "\r\nx-last: zzz") && strstr(r.headers, "x-filler: 0123"));

    for (size_t k = XHDR_VALID + 1; k < sizeof xhdr_cases / sizeof xhdr_cases[0]; k++) {
        CHECK(c, cl_sendf(cn.fd, "GET /xhdr/%zu HTTP/1.1\r\nHost: x\r\n\r\n", k) == 0);
        int rc = read_response(&cn, &r);
        if (rc != 0 || r.status != 500 || strstr(r.headers, "x-injected") ||
            strstr(r.headers, "x-filler") || strstr(r.headers, "x-a:"))
            snprintf(c->fail, sizeof c->fail, "xhdr case %zu: rc %d status %d", k, rc, r.status);
        CHECK(c, !c->fail[0]);
    }
    CHECK(c, cl_sendf(cn.fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(c, read_response(&cn, &r) == 0 && r.status == 200);
    close(cn.fd);
    buf_free(&r.body);
}

static void test_extra_headers(void **state)
{
    (void)state;
    run_scenario(sc_extra_headers, NULL);
}

/* A deferred answer carries the headers given to web_complete_h (not those left in resp). */
static void sc_deferred_headers(client_t *c)
{
    resp_t r = {0};
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    for (int i = 0; i < 2; i++) { /* twice: the kept-alive connection serves the next one */
        CHECK(c, cl_sendf(cn.fd, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        CHECK(c, read_response(&cn, &r) == 0);
        CHECK(c, r.status == 202);
        CHECK(c, has_header(&r, "retry-after: 3"));
        CHECK(c, has_header(&r, "x-deferred: yes"));
        CHECK(c, has_header(&r, "set-cookie: d=1; httponly"));
        CHECK(c, !strstr(r.headers, "x-ignored"));
        CHECK(c, r.body.data && strcmp(r.body.data, "deferred body") == 0);
    }
    close(cn.fd);
    buf_free(&r.body);
}

/* Reads a whole answer until EOF into *raw. */
static void read_all(int fd, buf_t *raw)
{
    char tmp[8192];
    for (;;) {
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k <= 0)
            break;
        buf_append(raw, tmp, (size_t)k);
    }
}

/* Decodes a chunked body at p: 1 with the last chunk seen, 0 when it ends without one. */
static int dechunk(const char *p, const char *end, buf_t *body)
{
    while (p < end) {
        char *e = NULL;
        unsigned long n = strtoul(p, &e, 16);
        if (!e || e + 2 > end || e[0] != '\r' || e[1] != '\n')
            return 0;
        p = e + 2;
        if (n == 0)
            return p + 2 <= end && p[0] == '\r' && p[1] == '\n';
        if (p + n + 2 > end)
            return 0;
        buf_append(body, p, n);
        p += n + 2;
    }
    return 0;
}

/* A streamed answer: chunked, closes after, every piece in order, the producer freed once; one
 * that fails half way ends without the last chunk. */
static void sc_stream(client_t *c)
{
    for (int fail = 0; fail < 2; fail++) {
        int before = streams_freed;
        int fd = cl_connect(c->port);
        CHECK(c, fd >= 0);
        CHECK(c, cl_sendf(fd, fail ? "GET /stream/300/120 HTTP/1.1\r\nHost: x\r\n\r\n"
                                   : "GET /stream/300/0 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        buf_t raw = {0}, body = {0};
        read_all(fd, &raw); /* the server closes after a streamed answer */
        close(fd);
        CHECK(c, raw.len > 0 && strncmp(raw.data, "HTTP/1.1 200", 12) == 0);
        const char *hend = raw.data ? strstr(raw.data, "\r\n\r\n") : NULL;
        CHECK(c, hend != NULL);
        if (!hend)
            return;
        for (char *q = raw.data; q < hend; q++)
            *q = (char)tolower((unsigned char)*q);
        CHECK(c, strstr(raw.data, "transfer-encoding: chunked") != NULL);
        CHECK(c, strstr(raw.data, "content-length") == NULL || strstr(raw.data, "content-length") > hend);
        CHECK(c, strstr(raw.data, "content-disposition: attachment") != NULL);
        int complete = dechunk(hend + 4, raw.data + raw.len, &body);
        int pieces = fail ? 119 : 300;
        CHECK(c, complete == !fail);
        CHECK(c, body.len == (size_t)pieces * STREAM_PIECE);
        for (size_t i = 0; i < body.len; i += 997)
            CHECK(c, body.data[i] == (char)('0' + (i / STREAM_PIECE) % 10));
        for (int w = 0; w < 200 && streams_freed == before; w++)
            usleep(5000);
        CHECK(c, streams_freed == before + 1);
        buf_free(&raw);
        buf_free(&body);
    }
}

static void test_stream(void **state)
{
    (void)state;
    run_scenario(sc_stream, NULL);
}

static void test_deferred_headers(void **state)
{
    (void)state;
    run_scenario(sc_deferred_headers, NULL);
}

/* An Upgrade other than websocket (curl --http2 sends "Upgrade: h2c") is ignored: the request
 * is answered in HTTP/1.1 (RFC 9110 section 7.8). */
static void sc_upgrade_ignored(client_t *c)
{
    resp_t r = {0};
    conn_t cn = {.fd = cl_connect(c->port)};
    CHECK(c, cn.fd >= 0);
    CHECK(c,
          cl_sendf(cn.fd, "GET /hdrs HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                          "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n") == 0);
    int rc = read_response(&cn, &r);
    close(cn.fd);
    CHECK(c, rc == 0 && r.status == 200);
    CHECK(c, r.body.data && strstr(r.body.data, "host=[x]"));
    buf_free(&r.body);
}

static void test_upgrade_ignored(void **state)
{
    (void)state;
    run_scenario(sc_upgrade_ignored, NULL);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_stop_idle),    cmocka_unit_test(test_get),
        cmocka_unit_test(test_methods_and_bodies), cmocka_unit_test(test_body_at_limit_in_pieces),
        cmocka_unit_test(test_big_response),       cmocka_unit_test(test_big_response_slow_reader),
        cmocka_unit_test(test_keepalive),          cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_statuses),           cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_concurrent),         cmocka_unit_test(test_stop_with_open_connection),
        cmocka_unit_test(test_port_in_use),        cmocka_unit_test(test_any_host),
        cmocka_unit_test(test_high_fd_numbers),    cmocka_unit_test(test_prefix_headers),
        cmocka_unit_test(test_head_limits),        cmocka_unit_test(test_caps_and_timeouts),
        cmocka_unit_test(test_keepalive_eviction), cmocka_unit_test(test_keepalive_heads),
        cmocka_unit_test(test_head_then_fin),      cmocka_unit_test(test_refusals_logged_limited),
        cmocka_unit_test(test_request_headers),    cmocka_unit_test(test_extra_headers),
        cmocka_unit_test(test_deferred_headers),   cmocka_unit_test(test_upgrade_ignored),
        cmocka_unit_test(test_stream),
    };
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
