/* Unit tests for web with TLS (web_opts_t.tls_cert / tls_key): the real server on 127.0.0.1:0
 * with a throw-away self-signed certificate (made with the openssl command), driven by a client
 * thread using OpenSSL: HTTPS requests see req->tls, a WebSocket works inside TLS (and its
 * refusal arrives), plain HTTP on the TLS port is closed, a bad certificate fails web_start.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "web/web.h"

#define IO_TIMEOUT  10
#define WATCHDOG_MS 60000

static char dir[64], cert[128], key[128];

/* ---- the application ---------------------------------------------------------------------- */

static void handler(void *ud, const web_request_t *req, web_response_t *resp)
{
    (void)ud;
    resp->status = 200;
    resp->content_type = "text/plain";
    buf_printf(&resp->body, "tls=%d %s", req->tls, req->path);
}

static int filter(void *ud, const web_request_t *req, web_response_t *resp)
{
    (void)ud;
    if (strcmp(req->path, "/live") == 0 && req->tls)
        return 0;
    resp->status = 401;
    resp->content_type = "application/json";
    buf_puts(&resp->body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"log in\"}}");
    buf_puts(&resp->headers, "WWW-Authenticate: Bearer\r\n");
    return 1;
}

static void on_open(void *ud, web_ws_t *ws, void **user)
{
    (void)ud;
    (void)ws;
    (void)user;
}

static void on_text(void *ud, web_ws_t *ws, void *user, const char *data, size_t len)
{
    (void)ud;
    (void)user;
    web_ws_send(ws, data, len, NULL, 0);
}

static void on_close(void *ud, web_ws_t *ws, void *user)
{
    (void)ud;
    (void)ws;
    (void)user;
}

/* ---- client ------------------------------------------------------------------------------- */

typedef struct {
    int port;
    uv_async_t *stop;
    char fail[512];
} client_t;

#define CHECK(c, cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(c)->fail[0])                                                                     \
                snprintf((c)->fail, sizeof(c)->fail, "%s:%d: %s", __FILE__, __LINE__, #cond);      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
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

/* Reads until `until` appears (or `n` bytes when until is NULL); returns bytes in buf or -1. */
static int tls_read(SSL *ssl, char *buf, size_t cap, const char *until, size_t n)
{
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        if (until ? strstr(buf, until) != NULL : len >= n)
            return (int)len;
        if (len + 1 >= cap)
            return -1;
        int k = SSL_read(ssl, buf + len, (int)(cap - 1 - len));
        if (k <= 0)
            return -1;
        len += (size_t)k;
    }
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd = -1;
    char buf[8192];
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* self-signed, made for this test */

    /* HTTPS: two requests on one kept-alive connection */
    fd = tcp_connect(c->port);
    CHECK(c, fd >= 0);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    CHECK(c, SSL_connect(ssl) == 1);
    for (int i = 0; i < 2; i++) {
        const char req[] = "GET /secure HTTP/1.1\r\nHost: localhost\r\n\r\n";
        CHECK(c, SSL_write(ssl, req, (int)sizeof req - 1) == (int)sizeof req - 1);
        int n = tls_read(ssl, buf, sizeof buf, "tls=1 /secure", 0);
        CHECK(c, n > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0);
    }
    SSL_free(ssl);
    ssl = NULL;
    close(fd);

    /* WebSocket inside TLS: the handshake, an echo */
    fd = tcp_connect(c->port);
    CHECK(c, fd >= 0);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    CHECK(c, SSL_connect(ssl) == 1);
    const char up[] = "GET /live HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK(c, SSL_write(ssl, up, (int)sizeof up - 1) == (int)sizeof up - 1);
    int n = tls_read(ssl, buf, sizeof buf, "\r\n\r\n", 0);
    CHECK(c, n > 0 && strncmp(buf, "HTTP/1.1 101", 12) == 0);
    CHECK(c, strstr(buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")); /* RFC 6455 section 1.3's example */
    uint8_t frame[2 + 4 + 5] = {0x81, 0x80 | 5, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++)
        frame[6 + i] = (uint8_t)("hello"[i] ^ frame[2 + (i & 3)]);
    CHECK(c, SSL_write(ssl, frame, sizeof frame) == (int)sizeof frame);
    n = tls_read(ssl, buf, sizeof buf, NULL, 7);
    CHECK(c, n == 7 && (uint8_t)buf[0] == 0x81 && buf[1] == 5 && memcmp(buf + 2, "hello", 5) == 0);
    SSL_free(ssl);
    ssl = NULL;
    close(fd);

    /* A refused upgrade inside TLS: the application's 401 arrives */
    fd = tcp_connect(c->port);
    CHECK(c, fd >= 0);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    CHECK(c, SSL_connect(ssl) == 1);
    const char deny[] = "GET /deny HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n";
    CHECK(c, SSL_write(ssl, deny, (int)sizeof deny - 1) == (int)sizeof deny - 1);
    n = tls_read(ssl, buf, sizeof buf, "\"log in\"}}", 0);
    CHECK(c, n > 0 && strncmp(buf, "HTTP/1.1 401", 12) == 0 &&
                 strstr(buf, "WWW-Authenticate: Bearer\r\n"));
    SSL_free(ssl);
    ssl = NULL;
    close(fd);

    /* Plain HTTP on the TLS port: no answer, closed (bounded) */
    fd = tcp_connect(c->port);
    CHECK(c, fd >= 0);
    const char plain[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(c, send(fd, plain, sizeof plain - 1, MSG_NOSIGNAL) == (ssize_t)sizeof plain - 1);
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
            break;                                       /* closed (or reset) */
        CHECK(c, !(k < 0 && errno == EAGAIN));           /* timed out: never closed */
        CHECK(c, k < 0 || memcmp(buf, "HTTP/", 5) != 0); /* no plain answer */
    }
out:
    if (ssl)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    uv_async_send(c->stop);
    return NULL;
}

/* ---- harness ------------------------------------------------------------------------------ */

typedef struct {
    web_t *web;
    uv_timer_t watchdog;
    uv_async_t stop;
    int timed_out;
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
    uv_close((uv_handle_t *)&h->stop, NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gs-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=localhost >/dev/null 2>&1",
             key, cert);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return 0;
}

static void test_tls(void **state)
{
    (void)state;
    uv_loop_t loop;
    harness_t h = {0};
    client_t c = {.stop = &h.stop};
    web_opts_t o;
    char err[256] = "";
    pthread_t th;
    web_ws_cbs_t cbs = {filter, on_open, on_text, on_close, NULL};

    web_opts_default(&o);
    o.tls_cert = cert;
    o.tls_key = key;
    assert_int_equal(uv_loop_init(&loop), 0);
    int rc = web_start_opts(&loop, "127.0.0.1", 0, &o, handler, NULL, &h.web, err, sizeof err);
    if (rc != 0)
        fail_msg("web_start: %s", err);
    assert_int_equal(web_ws_set(h.web, &cbs), 0);
    c.port = web_port(h.web);
    h.stop.data = &h;
    assert_int_equal(uv_async_init(&loop, &h.stop, on_stop), 0);
    h.watchdog.data = &h;
    uv_timer_init(&loop, &h.watchdog);
    uv_timer_start(&h.watchdog, on_watchdog, WATCHDOG_MS, 0);
    assert_int_equal(pthread_create(&th, NULL, client_main, &c), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    web_stats_t st;
    web_stats(h.web, &st);
    web_free(h.web);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_false(h.timed_out);
    if (c.fail[0])
        fail_msg("client: %s", c.fail);
    assert_int_equal(st.ws_accepted, 1);
    assert_int_equal(st.ws_refused, 1);
}

/* A missing key file: web_start fails with a reason, and the loop releases lws. */
static void test_tls_bad_key(void **state)
{
    (void)state;
    uv_loop_t loop;
    web_t *w = NULL;
    web_opts_t o;
    char err[256] = "", nokey[160];
    snprintf(nokey, sizeof nokey, "%s/missing.pem", dir);
    web_opts_default(&o);
    o.tls_cert = cert;
    o.tls_key = nokey;
    assert_int_equal(uv_loop_init(&loop), 0);
    int rc = web_start_opts(&loop, "127.0.0.1", 0, &o, handler, NULL, &w, err, sizeof err);
    assert_true(rc < 0);
    assert_null(w);
    assert_non_null(strstr(err, "TLS"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* one of the two: GS_EINVAL */
    o.tls_key = NULL;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_true(web_start_opts(&loop, "127.0.0.1", 0, &o, handler, NULL, &w, err, sizeof err) < 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    log_set_level(getenv("TEST_DEBUG") ? LOG_TRACE : LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_tls_bad_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
