/* Unit tests for web's WebSocket transport: the real server on 127.0.0.1:0 on a libuv loop run
 * by the main thread, driven by a client thread speaking raw RFC 6455 over POSIX sockets (a
 * minimal client written here: handshake with the Sec-WebSocket-Accept check, masked frames,
 * fragmentation, control frames).
 *
 * The application side (ws_filter, on_open, on_text, on_close) runs on the loop thread and
 * records what it saw under a mutex; the client thread only records the first failed check
 * (CHECK) and the main thread asserts after joining it. Every wait is bounded.
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
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "web/web.h"

#define IO_TIMEOUT  10 /* seconds, per socket operation */
#define WATCHDOG_MS 60000

/* ---- SHA-1 and base64 for the handshake check (RFC 3174, RFC 4648) ------------------------ */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1(const uint8_t *msg, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((n + 8) / 64 + 1) * 64;
    uint8_t *p = calloc(1, total);
    memcpy(p, msg, n);
    p[n] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        p[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t wv[80];
        for (int i = 0; i < 16; i++)
            wv[i] = (uint32_t)p[off + 4 * i] << 24 | (uint32_t)p[off + 4 * i + 1] << 16 |
                    (uint32_t)p[off + 4 * i + 2] << 8 | p[off + 4 * i + 3];
        for (int i = 16; i < 80; i++)
            wv[i] = rol(wv[i - 3] ^ wv[i - 8] ^ wv[i - 14] ^ wv[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            uint32_t t = rol(a, 5) + f + e + k + wv[i];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    free(p);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static void b64(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* ---- the application (loop thread) ------------------------------------------------------- */

#define FLOOD_MSG 4096

typedef struct {
    uv_timer_t t;
    web_ws_t *ws;
    int hard;         /* non-droppable messages only */
    int64_t until_ns; /* monotonic: stop then ("flood:soft:MS"), 0 = until on_close */
} flood_t;

typedef struct {
    pthread_mutex_t mu;
    int filters, opens, closes, texts;
    char last_user[128];
    int coalesce_rc[9];
    /* flood */
    size_t max_queued;
    int sent, dropped_rc, limit_rc, nondrop_rc;
    int nondrop_sent;
    uint64_t dropped_count;
    int64_t t_flood_start, t_first_over, t_close;
    int other_rtts;           /* echo round trips of a reading client during the flood */
    int64_t other_max_rtt_us; /* and the slowest */
    int flood_closed;
} app_t;

static app_t app = {.mu = PTHREAD_MUTEX_INITIALIZER};
static uv_loop_t *test_loop;
static flood_t *flood;  /* the running flood, one at a time */
static web_t *test_web; /* for web_stats from the callbacks */

static void app_reset(void)
{
    pthread_mutex_lock(&app.mu);
    pthread_mutex_t mu = app.mu;
    memset(&app, 0, sizeof app);
    app.mu = mu;
    pthread_mutex_unlock(&app.mu);
}

static int filter(void *ud, const web_request_t *req, web_response_t *resp)
{
    (void)ud;
    pthread_mutex_lock(&app.mu);
    app.filters++;
    pthread_mutex_unlock(&app.mu);
    if (strcmp(req->path, "/live") == 0 && strcmp(req->method, "GET") == 0) {
        /* The per-connection pointer: what the "authentication" found. */
        char *u = xmalloc(128);
        snprintf(u, 128, "cookie=%s query=%s", req->cookie ? req->cookie : "NULL", req->query);
        resp->ws_user = u;
        return 0;
    }
    if (strcmp(req->path, "/deny") == 0) {
        resp->status = 401;
        resp->content_type = "application/json";
        buf_puts(&resp->body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"log in\"}}");
        buf_puts(&resp->headers, "WWW-Authenticate: Bearer realm=\"gridsense\"\r\n");
        return 1;
    }
    if (strcmp(req->path, "/badhdr") == 0) {
        resp->status = 403;
        buf_puts(&resp->headers, "X-A: b\nX-Injected: 1\r\n");
        return 1;
    }
    resp->status = 404;
    resp->content_type = "application/json";
    buf_puts(&resp->body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\"}}");
    return 1;
}

/* Open connections, for the broadcast test (loop thread only). */
#define MAX_OPEN 512
static web_ws_t *open_ws[MAX_OPEN];
static int n_open;

/* Broadcast: "bcast:COUNT:PERIOD_MS:SIZE" sends COUNT rounds, every PERIOD_MS, of one SIZE-byte
 * droppable message "T<monotonic ns> ..." to every open connection (what the live feed does). */
typedef struct {
    uv_timer_t t;
    int left;
    size_t size;
} bcast_t;

static bcast_t *bcast;

static void bcast_closed(uv_handle_t *h)
{
    free(h->data);
}

static void bcast_stop(void)
{
    if (bcast) {
        uv_timer_stop(&bcast->t);
        uv_close((uv_handle_t *)&bcast->t, bcast_closed);
        bcast = NULL;
    }
}

static void bcast_tick(uv_timer_t *t)
{
    bcast_t *b = t->data;
    static char msg[65536];
    memset(msg, 'p', b->size);
    int n = snprintf(msg, 32, "T%lld ", (long long)time_mono_ns());
    msg[n] = ' ';
    for (int i = 0; i < n_open; i++)
        web_ws_send(open_ws[i], msg, b->size, NULL, 1);
    if (--b->left == 0)
        bcast_stop();
}

static void on_open(void *ud, web_ws_t *ws, void **user)
{
    if (n_open < MAX_OPEN)
        open_ws[n_open++] = ws;
    (void)ud;
    pthread_mutex_lock(&app.mu);
    app.opens++;
    snprintf(app.last_user, sizeof app.last_user, "%s", *user ? (char *)*user : "NULL");
    pthread_mutex_unlock(&app.mu);
    if (*user && strstr(*user, "query=hello")) /* sending from on_open works */
        web_ws_send(ws, "hello", 5, NULL, 0);
}

static void flood_closed(uv_handle_t *h)
{
    free(h->data);
}

static void flood_stop(void)
{
    if (flood) {
        uv_timer_stop(&flood->t);
        uv_close((uv_handle_t *)&flood->t, flood_closed);
        flood = NULL;
    }
}

/* Sends a burst of FLOOD_MSG-byte messages to a client that does not read. Soft: droppable
 * ones, plus one non-droppable at the first drop. Hard: non-droppable ones until refused. */
static void flood_tick(uv_timer_t *t)
{
    flood_t *f = t->data;
    if (f->until_ns && time_mono_ns() >= f->until_ns) {
        flood_stop();
        return;
    }
    static char msg[FLOOD_MSG];
    memset(msg, 'w', sizeof msg);
    for (int i = 0; i < 64; i++) {
        int rc = web_ws_send(f->ws, msg, sizeof msg, NULL, !f->hard);
        pthread_mutex_lock(&app.mu);
        app.sent++;
        if (rc == GS_ELIMIT && !f->hard) {
            app.dropped_rc++;
            if (!app.t_first_over)
                app.t_first_over = time_mono_ns();
            if (!app.nondrop_sent) {
                app.nondrop_sent = 1;
                app.nondrop_rc = web_ws_send(f->ws, msg, sizeof msg, NULL, 0);
            }
        } else if (rc == GS_ELIMIT) {
            app.limit_rc++;
        }
        size_t q = web_ws_queued_bytes(f->ws);
        if (q > app.max_queued)
            app.max_queued = q;
        app.dropped_count += web_ws_dropped(f->ws);
        pthread_mutex_unlock(&app.mu);
        if (rc == GS_ECLOSED || (f->hard && rc == GS_ELIMIT))
            return; /* wait for on_close */
    }
}

/* Throughput: "bench:N:SIZE" sends N messages of SIZE bytes, topping the queue up to 512 KiB
 * from a timer (what a fan-out does per client). */
typedef struct {
    uv_timer_t t;
    web_ws_t *ws;
    int left;
    size_t size;
} bench_t;

static bench_t *bench;

static void bench_closed(uv_handle_t *h)
{
    free(h->data);
}

static void bench_stop(void)
{
    if (bench) {
        uv_timer_stop(&bench->t);
        uv_close((uv_handle_t *)&bench->t, bench_closed);
        bench = NULL;
    }
}

static void bench_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    static char msg[65536];
    if (!msg[0])
        memset(msg, 'b', sizeof msg);
    while (b->left > 0 && web_ws_queued_bytes(b->ws) < 512 * 1024) {
        if (web_ws_send(b->ws, msg, b->size, NULL, 0) < 0)
            break;
        b->left--;
    }
    if (b->left == 0)
        bench_stop();
}

static void on_text(void *ud, web_ws_t *ws, void *user, const char *data, size_t len)
{
    (void)ud;
    pthread_mutex_lock(&app.mu);
    app.texts++;
    pthread_mutex_unlock(&app.mu);
    if (len >= 5 && memcmp(data, "echo:", 5) == 0) {
        web_ws_send(ws, data, len, NULL, 0);
    } else if (strcmp(data, "user?") == 0) {
        web_ws_send(ws, user, strlen(user), NULL, 0);
    } else if (strcmp(data, "coalesce") == 0) {
        static const struct {
            const char *key, *v;
        } s[] = {{"k1", "a"}, {"k1", "b"}, {NULL, "x"}, {"k1", "c"}, {"k2", "y"},
                 {NULL, "m"}, {"k2", "z"}, {"k3", "t"}, {"k3", "u"}};
        for (int i = 0; i < 9; i++) {
            int rc = web_ws_send(ws, s[i].v, 1, s[i].key, 1);
            pthread_mutex_lock(&app.mu);
            app.coalesce_rc[i] = rc;
            pthread_mutex_unlock(&app.mu);
        }
        web_ws_send(ws, "done", 4, NULL, 0);
    } else if (strcmp(data, "close") == 0) {
        web_ws_send(ws, "bye1", 4, NULL, 0);
        web_ws_send(ws, "bye2", 4, NULL, 0);
        web_ws_close(ws, 4401, "session expired");
        int rc = web_ws_send(ws, "late", 4, NULL, 0);
        if (rc != GS_ECLOSED)
            web_ws_send(ws, "closing did not refuse", 22, NULL, 0); /* the client sees it */
    } else if (strncmp(data, "bcast:", 6) == 0 && !bcast) {
        int count = 0, period = 0, size = 0;
        sscanf(data + 6, "%d:%d:%d", &count, &period, &size);
        bcast = xcalloc(1, sizeof *bcast);
        bcast->left = count;
        bcast->size = (size_t)size;
        uv_timer_init(test_loop, &bcast->t);
        bcast->t.data = bcast;
        uv_timer_start(&bcast->t, bcast_tick, (uint64_t)period, (uint64_t)period);
    } else if (strncmp(data, "bench:", 6) == 0 && !bench) {
        bench = xcalloc(1, sizeof *bench);
        bench->ws = ws;
        bench->left = atoi(data + 6);
        bench->size = (size_t)atoi(strchr(data + 6, ':') + 1);
        uv_timer_init(test_loop, &bench->t);
        bench->t.data = bench;
        uv_timer_start(&bench->t, bench_tick, 0, 1);
    } else if (strncmp(data, "flood:", 6) == 0 && !flood) {
        flood = xcalloc(1, sizeof *flood);
        flood->ws = ws;
        flood->hard = strncmp(data + 6, "hard", 4) == 0;
        if (strchr(data + 6, ':'))
            flood->until_ns = time_mono_ns() + atoll(strchr(data + 6, ':') + 1) * 1000000LL;
        uv_timer_init(test_loop, &flood->t);
        flood->t.data = flood;
        pthread_mutex_lock(&app.mu);
        app.t_flood_start = time_mono_ns();
        pthread_mutex_unlock(&app.mu);
        uv_timer_start(&flood->t, flood_tick, 1, 2);
    }
}

static void on_close(void *ud, web_ws_t *ws, void *user)
{
    for (int i = 0; i < n_open; i++)
        if (open_ws[i] == ws) {
            open_ws[i] = open_ws[--n_open];
            break;
        }
    (void)ud;
    pthread_mutex_lock(&app.mu);
    app.closes++;
    if (flood && flood->ws == ws) {
        app.flood_closed = 1;
        app.t_close = time_mono_ns();
    }
    pthread_mutex_unlock(&app.mu);
    if (flood && flood->ws == ws)
        flood_stop();
    if (bench && bench->ws == ws)
        bench_stop();
    free(user);
}

static void http_handler(void *ud, const web_request_t *req, web_response_t *resp)
{
    (void)ud;
    resp->status = 200;
    resp->content_type = "text/plain";
    buf_printf(&resp->body, "http %s", req->path);
}

/* ---- client side ------------------------------------------------------------------------- */

typedef struct client client_t;
typedef void (*scenario_fn)(client_t *c);

struct client {
    int port;
    scenario_fn fn;
    uv_async_t *stop;
    char fail[1024];
};

#define CHECK(c, cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(c)->fail[0])                                                                     \
                snprintf((c)->fail, sizeof(c)->fail, "%s:%d: %s", __FILE__, __LINE__, #cond);      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

typedef struct {
    int fd;
    uint8_t buf[1 << 17];
    size_t len;
} conn_t;

static int cl_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
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

static int conn_fill(conn_t *cn)
{
    if (cn->len >= sizeof cn->buf)
        return -1;
    for (;;) {
        ssize_t k = recv(cn->fd, cn->buf + cn->len, sizeof cn->buf - cn->len, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        cn->len += (size_t)k;
        return 0;
    }
}

static void conn_consume(conn_t *cn, size_t n)
{
    memmove(cn->buf, cn->buf + n, cn->len - n);
    cn->len -= n;
}

/* Sends the opening handshake for path (extra: more header lines) and reads the response
 * head. Returns the status (101 only with a correct Sec-WebSocket-Accept), -1 on I/O failure;
 * head gets the response head (lower-cased), body the rest read so far when not 101. */
static int ws_handshake(conn_t *cn, const char *path, const char *extra, char *head, size_t cap)
{
    uint8_t nonce[16];
    char key[32], want[64], req[1024];
    for (int i = 0; i < 16; i++)
        nonce[i] = (uint8_t)(rand() & 0xff);
    b64(nonce, 16, key);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n%s\r\n",
                     path, key, extra ? extra : "");
    if (cl_send(cn->fd, req, (size_t)n))
        return -1;
    char *eoh;
    for (;;) {
        cn->buf[cn->len < sizeof cn->buf ? cn->len : sizeof cn->buf - 1] = 0;
        if ((eoh = strstr((char *)cn->buf, "\r\n\r\n")) != NULL)
            break;
        if (conn_fill(cn))
            return -1;
    }
    size_t hlen = (size_t)(eoh - (char *)cn->buf) + 4;
    if (hlen >= cap)
        return -1;
    for (size_t i = 0; i < hlen; i++) {
        char ch = (char)cn->buf[i];
        head[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    head[hlen] = 0;
    conn_consume(cn, hlen);
    int status = 0;
    if (sscanf(head, "http/1.1 %d", &status) != 1)
        return -1;
    if (status != 101)
        return status;
    /* RFC 6455 section 4.2.2: base64(SHA-1(key + GUID)). */
    char cat[128];
    uint8_t dg[20];
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    sha1((const uint8_t *)cat, strlen(cat), dg);
    b64(dg, 20, want);
    char line[128];
    snprintf(line, sizeof line, "\r\nsec-websocket-accept: %s\r\n", want);
    for (char *p = line; *p; p++)
        *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
    return strstr(head, line) ? 101 : -2;
}

/* Sends one masked frame (RFC 6455 section 5.2). */
static int ws_frame(int fd, int opcode, int fin, const void *data, size_t n)
{
    uint8_t *f = malloc(n + 14);
    size_t h = 0;
    f[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (n < 126) {
        f[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(n >> 8);
        f[h++] = (uint8_t)n;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t mask[4] = {(uint8_t)rand(), (uint8_t)rand(), (uint8_t)rand(), (uint8_t)rand()};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = ((const uint8_t *)data)[i] ^ mask[i & 3];
    int rc = cl_send(fd, f, h + n);
    free(f);
    return rc;
}

static int ws_text(int fd, const char *s)
{
    return ws_frame(fd, 1, 1, s, strlen(s));
}

/* Reads one frame from the server (unmasked). Returns 0 with *op, *fin and the payload in *pl
 * (NUL-terminated), or -1 on EOF / timeout / a masked or malformed frame. */
static int ws_read(conn_t *cn, int *op, int *fin, buf_t *pl)
{
    buf_reset(pl);
    while (cn->len < 2)
        if (conn_fill(cn))
            return -1;
    if (cn->buf[1] & 0x80)
        return -1;
    size_t h = 2;
    uint64_t n = cn->buf[1] & 0x7f;
    size_t ext = n == 126 ? 2 : n == 127 ? 8 : 0;
    while (cn->len < 2 + ext)
        if (conn_fill(cn))
            return -1;
    if (ext) {
        n = 0;
        for (size_t i = 0; i < ext; i++)
            n = n << 8 | cn->buf[2 + i];
        h += ext;
    }
    if (n > sizeof cn->buf - 16)
        return -1;
    while (cn->len < h + n)
        if (conn_fill(cn))
            return -1;
    *op = cn->buf[0] & 0x0f;
    *fin = !!(cn->buf[0] & 0x80);
    buf_append(pl, cn->buf + h, (size_t)n);
    conn_consume(cn, h + (size_t)n);
    return 0;
}

/* Reads frames, answering pings, until a text or close frame. Returns its opcode or -1. */
static int ws_next(conn_t *cn, buf_t *pl)
{
    for (;;) {
        int op, fin;
        if (ws_read(cn, &op, &fin, pl))
            return -1;
        if (op == 9) {
            if (ws_frame(cn->fd, 10, 1, pl->data, pl->len))
                return -1;
            continue;
        }
        if (op == 10)
            continue;
        return op;
    }
}

/* The close code of a close frame's payload, -1 if none. */
static int close_code(const buf_t *pl)
{
    return pl->len >= 2 ? ((uint8_t)pl->data[0] << 8 | (uint8_t)pl->data[1]) : -1;
}

/* Reads until EOF; 0 on EOF (or reset), -1 on timeout. */
static int wait_eof(int fd)
{
    char tmp[65536];
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
    flood_stop();
    bench_stop();
    bcast_stop();
    web_stop(h->web);
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&h->watchdog, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    harness_t *h = t->data;
    h->timed_out = 1;
    flood_stop();
    bench_stop();
    bcast_stop();
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

static web_opts_t scenario_opts;
static int scenario_no_ws; /* web_ws_set not called */
static web_stats_t scenario_stats;

static void run_scenario(scenario_fn fn)
{
    uv_loop_t loop;
    harness_t h = {0};
    uv_async_t stop;
    client_t c = {.fn = fn, .stop = &stop};
    char err[256] = "";
    pthread_t th;
    web_ws_cbs_t cbs = {filter, on_open, on_text, on_close, NULL};

    app_reset();
    assert_int_equal(uv_loop_init(&loop), 0);
    test_loop = &loop;
    assert_int_equal(web_start_opts(&loop, "127.0.0.1", 0, &scenario_opts, http_handler, NULL,
                                    &h.web, err, sizeof err),
                     0);
    test_web = h.web;
    if (!scenario_no_ws)
        assert_int_equal(web_ws_set(h.web, &cbs), 0);
    c.port = web_port(h.web);
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
    test_web = NULL;
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_false(h.timed_out);
    if (c.fail[0])
        fail_msg("client: %s", c.fail);
    /* on_close exactly once for every accepted upgrade, web_stop included */
    assert_int_equal(app.closes, app.opens);
    assert_int_equal(scenario_stats.ws_open, 0);
}

static void opts_default(void)
{
    web_opts_default(&scenario_opts);
    scenario_no_ws = 0;
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* Upgrade, echo, the filter's user pointer, fragments, the request headers reaching the
 * filter, an upgrade on a kept-alive connection after an HTTP request, and HTTP beside it. */
static void sc_basic(client_t *c)
{
    conn_t *cn = calloc(1, sizeof *cn);
    buf_t pl = {0};
    char head[4096];
    cn->fd = cl_connect(c->port, 0);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live?t=1", "Cookie: sid=abc\r\n", head, sizeof head) == 101);
    CHECK(c, ws_text(cn->fd, "echo:hello") == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "echo:hello") == 0);
    CHECK(c, ws_text(cn->fd, "user?") == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "cookie=sid=abc query=t=1") == 0);
    /* one message in three frames, with a ping between them (control frames may interleave) */
    CHECK(c, ws_frame(cn->fd, 1, 0, "echo:", 5) == 0);
    CHECK(c, ws_frame(cn->fd, 0, 0, "fragm", 5) == 0);
    CHECK(c, ws_frame(cn->fd, 9, 1, "p", 1) == 0);
    CHECK(c, ws_frame(cn->fd, 0, 1, "ents \xc3\xa9", 7) == 0);
    int op, fin;
    CHECK(c, ws_read(cn, &op, &fin, &pl) == 0 && op == 10 && strcmp(pl.data, "p") == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "echo:fragments \xc3\xa9") == 0);
    /* a 60 KiB message in one frame */
    buf_t big = {0};
    buf_puts(&big, "echo:");
    while (big.len < 60000)
        buf_putc(&big, (char)('a' + big.len % 26));
    CHECK(c, ws_frame(cn->fd, 1, 1, big.data, big.len) == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && pl.len == big.len && memcmp(pl.data, big.data, big.len) == 0);
    buf_free(&big);
    /* a normal close: the server answers with a close frame */
    CHECK(c, ws_frame(cn->fd, 8, 1, "\x03\xe8", 2) == 0);
    CHECK(c, ws_next(cn, &pl) == 8 && close_code(&pl) == 1000);
    CHECK(c, wait_eof(cn->fd) == 0);
    close(cn->fd);

    /* HTTP first, then an upgrade on the same connection */
    memset(cn, 0, sizeof *cn);
    cn->fd = cl_connect(c->port, 0);
    CHECK(c, cn->fd >= 0);
    CHECK(c, cl_send(cn->fd, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n", 32) == 0);
    while (!strstr((char *)cn->buf, "http /plain")) {
        CHECK(c, conn_fill(cn) == 0);
        cn->buf[cn->len] = 0;
    }
    cn->len = 0;
    /* what a browser sends besides (lws negotiates no extension: none is configured) */
    CHECK(c, ws_handshake(cn, "/live",
                          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                          "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nPragma: no-cache\r\n"
                          "Cache-Control: no-cache\r\nAccept-Encoding: gzip, deflate, br\r\n"
                          "Accept-Language: en-US,en;q=0.9\r\n",
                          head, sizeof head) == 101);
    CHECK(c, !strstr(head, "sec-websocket-extensions"));
    CHECK(c, ws_text(cn->fd, "echo:again") == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "echo:again") == 0);
    close(cn->fd);

    /* a message sent from on_open comes first */
    memset(cn, 0, sizeof *cn);
    cn->fd = cl_connect(c->port, 0);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live?hello", NULL, head, sizeof head) == 101);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "hello") == 0);
    close(cn->fd);
    free(cn);
    buf_free(&pl);
}

static void test_basic(void **state)
{
    (void)state;
    opts_default();
    run_scenario(sc_basic);
    assert_int_equal(app.opens, 3);
    assert_int_equal(scenario_stats.ws_accepted, 3);
    assert_int_equal(scenario_stats.ws_msgs_sent, 6);
}

/* Refusals: the status, body and headers of ws_filter, then the connection closes; no
 * on_open / on_close. */
static void sc_refused(client_t *c)
{
    char head[4096];
    static const struct {
        const char *path;
        int status;
        const char *must; /* in the head or body */
    } cases[] = {
        {"/deny", 401, "www-authenticate: bearer realm=\"gridsense\""},
        {"/nope", 404, "content-type: application/json"},
        {"/badhdr", 500, "content-length:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conn_t *cn = calloc(1, sizeof *cn);
        cn->fd = cl_connect(c->port, 0);
        CHECK(c, cn->fd >= 0);
        int st = ws_handshake(cn, cases[i].path, NULL, head, sizeof head);
        int ok = st == cases[i].status && strstr(head, cases[i].must) &&
                 strstr(head, "connection: close") && !strstr(head, "x-injected");
        if (i == 0) {
            const char *body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"log in\"}}";
            while (ok && cn->len < strlen(body) && conn_fill(cn) == 0)
                ;
            ok = ok && cn->len == strlen(body) && memcmp(cn->buf, body, cn->len) == 0;
        }
        if (!ok)
            snprintf(c->fail, sizeof c->fail, "case %zu: status %d head %.900s", i, st, head);
        CHECK(c, ok);
        CHECK(c, wait_eof(cn->fd) == 0);
        close(cn->fd);
        free(cn);
    }
}

static void test_refused(void **state)
{
    (void)state;
    opts_default();
    run_scenario(sc_refused);
    assert_int_equal(app.opens, 0);
    assert_int_equal(app.closes, 0);
    assert_int_equal(scenario_stats.ws_refused, 3);
}

/* Without WebSocket callbacks every upgrade gets 404 and HTTP goes on. */
static void sc_no_ws(client_t *c)
{
    char head[4096];
    conn_t *cn = calloc(1, sizeof *cn);
    cn->fd = cl_connect(c->port, 0);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 404);
    close(cn->fd);
    free(cn);
}

/* Handshakes lws would fail after the filter are answered before it: a requested subprotocol
 * (none is offered) and a bad key get 400, another version 426 naming 13. */
static void sc_bad_handshakes(client_t *c)
{
    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Protocol: gs.v1\r\n\r\n",
         400},
        {"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         426},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conn_t *cn = calloc(1, sizeof *cn);
        cn->fd = cl_connect(c->port, 0);
        CHECK(c, cn->fd >= 0);
        CHECK(c, cl_send(cn->fd, cases[i].raw, strlen(cases[i].raw)) == 0);
        while (!strstr((char *)cn->buf, "\r\n\r\n") && conn_fill(cn) == 0)
            cn->buf[cn->len] = 0;
        int st = 0;
        sscanf((char *)cn->buf, "HTTP/1.1 %d", &st);
        if (st != cases[i].status ||
            (st == 426 && !strstr((char *)cn->buf, "Sec-WebSocket-Version: 13\r\n")))
            snprintf(c->fail, sizeof c->fail, "case %zu: %.500s", i, (char *)cn->buf);
        CHECK(c, !c->fail[0]);
        CHECK(c, wait_eof(cn->fd) == 0);
        close(cn->fd);
        free(cn);
    }
}

static void test_bad_handshakes(void **state)
{
    (void)state;
    opts_default();
    run_scenario(sc_bad_handshakes);
    assert_int_equal(app.filters, 0);
    assert_int_equal(scenario_stats.ws_refused, 3);
}

static void test_no_ws(void **state)
{
    (void)state;
    opts_default();
    scenario_no_ws = 1;
    run_scenario(sc_no_ws);
    scenario_no_ws = 0;
    assert_int_equal(app.filters, 0);
    assert_int_equal(scenario_stats.ws_refused, 1);
}

/* Protocol errors: binary 1003, invalid UTF-8 1007, too big 1009 (ws_max_msg 1024). */
static void sc_protocol_errors(client_t *c)
{
    char head[4096];
    buf_t pl = {0};
    for (int i = 0; i < 4; i++) {
        conn_t *cn = calloc(1, sizeof *cn);
        cn->fd = cl_connect(c->port, 0);
        CHECK(c, cn->fd >= 0);
        CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 101);
        int want = 0;
        if (i == 0) {
            CHECK(c, ws_frame(cn->fd, 2, 1, "\x01\x02", 2) == 0);
            want = 1003;
        } else if (i == 1) {
            CHECK(c, ws_frame(cn->fd, 1, 1, "echo:\xc3\x28", 7) == 0);
            want = 1007;
        } else if (i == 2) {
            char big[1100];
            memset(big, 'a', sizeof big);
            CHECK(c, ws_frame(cn->fd, 1, 0, big, 600) == 0);
            CHECK(c, ws_frame(cn->fd, 0, 1, big, 500) == 0);
            want = 1009;
        } else {
            CHECK(c, ws_frame(cn->fd, 1, 1, "echo:\xed\xa0\x80", 8) == 0); /* a surrogate */
            want = 1007;
        }
        int op = ws_next(cn, &pl);
        if (op != 8 || close_code(&pl) != want)
            snprintf(c->fail, sizeof c->fail, "case %d: op %d code %d", i, op, close_code(&pl));
        CHECK(c, !c->fail[0]);
        CHECK(c, wait_eof(cn->fd) == 0);
        close(cn->fd);
        free(cn);
    }
    buf_free(&pl);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.ws_max_msg = 1024;
    run_scenario(sc_protocol_errors);
    assert_int_equal(app.opens, 4);
    assert_int_equal(app.texts, 0);
}

/* Coalescing and web_ws_close (queued messages first, then the close frame). */
static void sc_coalesce_close(client_t *c)
{
    char head[4096];
    buf_t pl = {0};
    conn_t *cn = calloc(1, sizeof *cn);
    cn->fd = cl_connect(c->port, 0);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 101);
    CHECK(c, ws_text(cn->fd, "coalesce") == 0);
    /* k1 replaced at the head, k2 in the middle, k3 at the tail: positions kept */
    static const char *const want[] = {"c", "x", "z", "m", "u", "done"};
    for (int i = 0; i < 6; i++) {
        int op = ws_next(cn, &pl);
        if (op != 1 || strcmp(pl.data, want[i]) != 0)
            snprintf(c->fail, sizeof c->fail, "coalesced #%d: op %d '%s'", i, op, pl.data);
        CHECK(c, !c->fail[0]);
    }
    CHECK(c, ws_text(cn->fd, "close") == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "bye1") == 0);
    CHECK(c, ws_next(cn, &pl) == 1 && strcmp(pl.data, "bye2") == 0);
    int op = ws_next(cn, &pl);
    if (op != 8 || close_code(&pl) != 4401)
        snprintf(c->fail, sizeof c->fail, "close: op %d code %d len %zu", op, close_code(&pl),
                 pl.len);
    CHECK(c, !c->fail[0]);
    CHECK(c, pl.len == 2 + strlen("session expired") &&
                 memcmp(pl.data + 2, "session expired", 15) == 0);
    CHECK(c, ws_frame(cn->fd, 8, 1, pl.data, 2) == 0); /* echo the close */
    CHECK(c, wait_eof(cn->fd) == 0);
    close(cn->fd);
    free(cn);
    buf_free(&pl);
}

static void test_coalesce_close(void **state)
{
    (void)state;
    opts_default();
    run_scenario(sc_coalesce_close);
    static const int want[9] = {0, 1, 0, 1, 0, 0, 1, 0, 1};
    for (int i = 0; i < 9; i++)
        assert_int_equal(app.coalesce_rc[i], want[i]);
    assert_int_equal(scenario_stats.ws_coalesced, 4);
}

/* Heartbeat: a client that answers pings stays; one that does not is closed (1001). */
static void sc_heartbeat(client_t *c)
{
    char head[4096];
    buf_t pl = {0};
    conn_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    a->fd = cl_connect(c->port, 0);
    b->fd = cl_connect(c->port, 0);
    CHECK(c, a->fd >= 0 && b->fd >= 0);
    CHECK(c, ws_handshake(a, "/live", NULL, head, sizeof head) == 101);
    /* a answers its pings for 1.5 s and stays */
    int op, fin;
    int64_t t0 = time_mono_ns();
    int apings = 0;
    while (time_mono_ns() - t0 < 1500000000LL) {
        CHECK(c, ws_read(a, &op, &fin, &pl) == 0);
        if (op != 9)
            snprintf(c->fail, sizeof c->fail, "answering client: op %d code %d after %d pings", op,
                     op == 8 ? close_code(&pl) : 0, apings);
        CHECK(c, op == 9);
        apings++;
        CHECK(c, ws_frame(a->fd, 10, 1, pl.data, pl.len) == 0);
    }
    CHECK(c, apings >= 3);
    CHECK(c, ws_text(a->fd, "echo:alive") == 0);
    CHECK(c, ws_next(a, &pl) == 1 && strcmp(pl.data, "echo:alive") == 0);
    close(a->fd);
    CHECK(c, ws_handshake(b, "/live", NULL, head, sizeof head) == 101);
    /* b reads but never answers: pings, then a close 1001 within ~2 ping periods (300 ms) */
    int pings = 0, code = -1;
    t0 = time_mono_ns();
    while (ws_read(b, &op, &fin, &pl) == 0) {
        if (op == 9)
            pings++;
        if (op == 8) {
            code = close_code(&pl);
            break;
        }
    }
    int64_t ms = (time_mono_ns() - t0) / 1000000;
    if (pings != 1 || code != 1001 || ms < 500 || ms > 5000)
        snprintf(c->fail, sizeof c->fail, "silent client: pings %d code %d after %lld ms", pings,
                 code, (long long)ms);
    CHECK(c, !c->fail[0]);
    close(b->fd);
    free(a);
    free(b);
    buf_free(&pl);
}

static void test_heartbeat(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.ws_ping_ms = 300;
    run_scenario(sc_heartbeat);
    assert_int_equal(scenario_stats.ws_closed_ping, 1);
}

/* A client that never reads while the server sends: the queue stays within its cap (+ the one
 * non-droppable message), droppable messages are dropped and counted, and the connection is
 * closed ws_over_cap_ms after its queue stopped moving ("send queue not moving"). */
static void sc_slow_soft(client_t *c)
{
    char head[4096];
    conn_t *cn = calloc(1, sizeof *cn);
    cn->fd = cl_connect(c->port, 4096);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 101);
    /* another client, which reads, is served meanwhile: echo round trips during the flood */
    conn_t *other = calloc(1, sizeof *other);
    buf_t pl = {0};
    other->fd = cl_connect(c->port, 0);
    CHECK(c, other->fd >= 0);
    CHECK(c, ws_handshake(other, "/live", NULL, head, sizeof head) == 101);
    CHECK(c, ws_text(cn->fd, "flood:soft") == 0);
    /* never read; wait (bounded) for the server to give up on us */
    int64_t max_rtt = 0;
    int rtts = 0;
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&app.mu);
        int done = app.flood_closed;
        pthread_mutex_unlock(&app.mu);
        if (done)
            break;
        int64_t t0 = time_mono_ns();
        CHECK(c, ws_text(other->fd, "echo:rtt") == 0);
        CHECK(c, ws_next(other, &pl) == 1 && strcmp(pl.data, "echo:rtt") == 0);
        int64_t rtt = time_mono_ns() - t0;
        max_rtt = rtt > max_rtt ? rtt : max_rtt;
        rtts++;
        usleep(50000);
    }
    close(other->fd);
    free(other);
    buf_free(&pl);
    pthread_mutex_lock(&app.mu);
    app.other_rtts = rtts;
    app.other_max_rtt_us = max_rtt / 1000;
    pthread_mutex_unlock(&app.mu);
    pthread_mutex_lock(&app.mu);
    int done = app.flood_closed;
    if (!done)
        snprintf(c->fail, sizeof c->fail, "not closed: sent %d dropped %d nondrop rc %d max %zu",
                 app.sent, app.dropped_rc, app.nondrop_rc, app.max_queued);
    pthread_mutex_unlock(&app.mu);
    CHECK(c, done);
    CHECK(c, wait_eof(cn->fd) == 0); /* draining what the kernel held, then the end */
    close(cn->fd);
    free(cn);
}

static void test_slow_client_soft(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.ws_queue_cap = 256 * 1024;
    scenario_opts.ws_over_cap_ms = 1000;
    scenario_opts.ws_ping_ms = 60000;
    run_scenario(sc_slow_soft);
    print_message("slow client (soft): sent %d, dropped %d (counted %llu), max queued %zu "
                  "(cap %zu), over for %lld ms before the close; a reading client meanwhile: "
                  "%d echoes, slowest %lld us\n",
                  app.sent, app.dropped_rc, (unsigned long long)app.dropped_count, app.max_queued,
                  scenario_opts.ws_queue_cap,
                  (long long)((app.t_close - app.t_first_over) / 1000000), app.other_rtts,
                  (long long)app.other_max_rtt_us);
    assert_true(app.other_rtts >= 10);
    assert_true(app.other_max_rtt_us < 1000000); /* generous: a loaded 2-core machine */
    assert_true(app.flood_closed);
    assert_true(app.dropped_rc > 0);
    assert_int_equal(app.dropped_count, (uint64_t)app.dropped_rc);
    assert_int_equal(scenario_stats.ws_dropped, (uint64_t)app.dropped_rc);
    assert_int_equal(app.nondrop_rc, 0); /* queued over the cap */
    assert_true(app.max_queued <= scenario_opts.ws_queue_cap + FLOOD_MSG);
    assert_true(app.max_queued > scenario_opts.ws_queue_cap - FLOOD_MSG);
    assert_int_equal(scenario_stats.ws_closed_slow, 1);
    /* closed ws_over_cap_ms after its queue stopped moving (just before it filled and the
     * first drop), + the sweep period, + the 2 s a close frame is given (it cannot go out) */
    int64_t over_ms = (app.t_close - app.t_first_over) / 1000000;
    assert_true(over_ms >= 500);
    assert_true(over_ms < 1000 + 100 + 2000 + 3000); /* + slack for a loaded machine */
}

/* A client that reads, slowly: it loses droppable messages but is not closed, and gets what
 * was queued once the flood ends (its echo answer comes after the rest). */
static void sc_slow_reader(client_t *c)
{
    char head[4096];
    buf_t pl = {0};
    conn_t *cn = calloc(1, sizeof *cn);
    cn->fd = cl_connect(c->port, 0);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 101);
    CHECK(c, ws_text(cn->fd, "flood:soft:2500") == 0);
    int64_t t0 = time_mono_ns();
    long got = 0;
    int sent_end = 0;
    for (;;) {
        if (!sent_end && time_mono_ns() - t0 > 3000000000LL) {
            CHECK(c, ws_text(cn->fd, "echo:end") == 0); /* after the flood has ended */
            sent_end = 1;
        }
        int op, fin;
        CHECK(c, ws_read(cn, &op, &fin, &pl) == 0);
        if (op == 1 && strcmp(pl.data, "echo:end") == 0)
            break;
        CHECK(c, op == 1);
        got++;
        if (got % 16 == 0)
            usleep(20000); /* ~64 KiB per 20 ms at most: far below the flood */
    }
    pthread_mutex_lock(&app.mu);
    int closed = app.flood_closed;
    app.other_rtts = (int)got; /* reused: messages the slow reader received */
    pthread_mutex_unlock(&app.mu);
    CHECK(c, !closed);
    close(cn->fd);
    free(cn);
    buf_free(&pl);
}

static void test_slow_reader(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.ws_queue_cap = 256 * 1024;
    scenario_opts.ws_over_cap_ms = 1000;
    run_scenario(sc_slow_reader);
    print_message("slow reader: received %d of %d sent (%d dropped), not closed\n", app.other_rtts,
                  app.sent, app.dropped_rc);
    assert_true(app.dropped_rc > 0);
    assert_int_equal(scenario_stats.ws_closed_slow, 0);
    assert_true(app.max_queued <= scenario_opts.ws_queue_cap + FLOOD_MSG);
}

/* Non-droppable messages only: closed as soon as the queue would pass twice its cap. */
static void sc_slow_hard(client_t *c)
{
    char head[4096];
    conn_t *cn = calloc(1, sizeof *cn);
    cn->fd = cl_connect(c->port, 4096);
    CHECK(c, cn->fd >= 0);
    CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 101);
    CHECK(c, ws_text(cn->fd, "flood:hard") == 0);
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&app.mu);
        int done = app.flood_closed;
        pthread_mutex_unlock(&app.mu);
        if (done)
            break;
        usleep(50000);
    }
    pthread_mutex_lock(&app.mu);
    int done = app.flood_closed;
    pthread_mutex_unlock(&app.mu);
    CHECK(c, done);
    CHECK(c, wait_eof(cn->fd) == 0);
    close(cn->fd);
    free(cn);
}

static void test_slow_client_twice_cap(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.ws_queue_cap = 256 * 1024;
    scenario_opts.ws_over_cap_ms = 60000;
    scenario_opts.ws_ping_ms = 60000;
    run_scenario(sc_slow_hard);
    print_message("slow client (hard): sent %d, max queued %zu (cap %zu), closed %lld ms after "
                  "the flood began\n",
                  app.sent, app.max_queued, scenario_opts.ws_queue_cap,
                  (long long)((app.t_close - app.t_flood_start) / 1000000));
    assert_true(app.flood_closed);
    assert_int_equal(app.limit_rc, 1);
    assert_true(app.max_queued <= 2 * scenario_opts.ws_queue_cap);
    assert_true(app.max_queued > 2 * scenario_opts.ws_queue_cap - FLOOD_MSG);
    assert_int_equal(scenario_stats.ws_closed_slow, 1);
    assert_int_equal(scenario_stats.ws_dropped, 0);
}

/* web_stop with WebSocket connections open: on_close for each (checked by run_scenario). */
static int open_fds[3] = {-1, -1, -1};

static void sc_stop_open(client_t *c)
{
    char head[4096];
    buf_t pl = {0};
    conn_t *cn[3];
    for (int i = 0; i < 3; i++) {
        cn[i] = calloc(1, sizeof *cn[i]);
        cn[i]->fd = cl_connect(c->port, 0);
        CHECK(c, cn[i]->fd >= 0);
        CHECK(c, ws_handshake(cn[i], "/live", NULL, head, sizeof head) == 101);
        CHECK(c, ws_text(cn[i]->fd, "echo:x") == 0);
        CHECK(c, ws_next(cn[i], &pl) == 1);
    }
    /* leave them open: the harness stops web now; the test closes them afterwards */
    for (int i = 0; i < 3; i++) {
        open_fds[i] = cn[i]->fd;
        free(cn[i]);
    }
    buf_free(&pl);
}

static void test_stop_with_open(void **state)
{
    (void)state;
    opts_default();
    run_scenario(sc_stop_open);
    for (int i = 0; i < 3; i++)
        if (open_fds[i] >= 0)
            close(open_fds[i]);
    assert_int_equal(app.opens, 3);
    assert_int_equal(app.closes, 3);
}

/* WebSocket connections hold their address slot and are never evicted: with
 * max_per_address 2 and two open, a third connection is refused and both keep working. */
static void sc_caps(client_t *c)
{
    char head[4096];
    buf_t pl = {0};
    conn_t *cn[2];
    for (int i = 0; i < 2; i++) {
        cn[i] = calloc(1, sizeof *cn[i]);
        cn[i]->fd = cl_connect(c->port, 0);
        CHECK(c, cn[i]->fd >= 0);
        CHECK(c, ws_handshake(cn[i], "/live", NULL, head, sizeof head) == 101);
    }
    int fd = cl_connect(c->port, 0);
    CHECK(c, fd >= 0);
    CHECK(c, wait_eof(fd) == 0); /* refused: closed at once */
    close(fd);
    for (int i = 0; i < 2; i++) {
        CHECK(c, ws_text(cn[i]->fd, "echo:still") == 0);
        CHECK(c, ws_next(cn[i], &pl) == 1 && strcmp(pl.data, "echo:still") == 0);
        close(cn[i]->fd);
        free(cn[i]);
    }
    buf_free(&pl);
}

static void test_caps(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.max_per_address = 2;
    run_scenario(sc_caps);
    assert_int_equal(scenario_stats.refused_per_address, 1);
    assert_int_equal(scenario_stats.evicted, 0);
}

/* How many messages a reading client receives per second through the transport (a figure
 * for the report; only sanity is asserted). */
static double bench_rate[2];
static void sc_throughput(client_t *c)
{
    static const struct {
        int n, size;
    } runs[2] = {{100000, 200}, {20000, 4096}};
    char head[4096], cmd[64];
    buf_t pl = {0};
    for (int r = 0; r < 2; r++) {
        conn_t *cn = calloc(1, sizeof *cn);
        cn->fd = cl_connect(c->port, 0);
        CHECK(c, cn->fd >= 0);
        CHECK(c, ws_handshake(cn, "/live", NULL, head, sizeof head) == 101);
        snprintf(cmd, sizeof cmd, "bench:%d:%d", runs[r].n, runs[r].size);
        int64_t t0 = time_mono_ns();
        CHECK(c, ws_text(cn->fd, cmd) == 0);
        for (int i = 0; i < runs[r].n; i++) {
            if (ws_next(cn, &pl) != 1 || pl.len != (size_t)runs[r].size)
                snprintf(c->fail, sizeof c->fail, "bench message %d", i);
            CHECK(c, !c->fail[0]);
        }
        bench_rate[r] = runs[r].n / ((double)(time_mono_ns() - t0) / 1e9);
        close(cn->fd);
        free(cn);
    }
    buf_free(&pl);
}

static void test_throughput(void **state)
{
    (void)state;
    opts_default();
    run_scenario(sc_throughput);
    print_message("throughput to one reading client: %.0f msg/s of 200 B, %.0f msg/s of 4 KiB "
                  "(%.0f MB/s)\n",
                  bench_rate[0], bench_rate[1], bench_rate[1] * 4096 / 1e6);
    assert_true(bench_rate[0] > 1000 && bench_rate[1] > 1000);
}

/* Fan-out: FAN_N clients, the server broadcasting to all of them; every client gets every
 * message, and the delivery latency (broadcast tick to receipt by the one client thread that
 * reads all of them) is measured. */
#define FAN_N      200
#define FAN_ROUNDS 100
static int64_t fan_p50, fan_p99, fan_max;
static long fan_received;

/* A complete frame in cn's buffer: 1 with *op and *pl (consumed), 0 if more is needed. */
static int frame_ready(conn_t *cn, int *op, buf_t *pl)
{
    if (cn->len < 2)
        return 0;
    size_t h = 2;
    uint64_t n = cn->buf[1] & 0x7f;
    size_t ext = n == 126 ? 2 : n == 127 ? 8 : 0;
    if (cn->len < 2 + ext)
        return 0;
    if (ext) {
        n = 0;
        for (size_t i = 0; i < ext; i++)
            n = n << 8 | cn->buf[2 + i];
        h += ext;
    }
    if (cn->len < h + n)
        return 0;
    *op = cn->buf[0] & 0x0f;
    buf_reset(pl);
    buf_append(pl, cn->buf + h, (size_t)n);
    conn_consume(cn, h + (size_t)n);
    return 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* CHECK that goes to the function's cleanup instead of returning. */
#define CHECKG(c, cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(c)->fail[0])                                                                     \
                snprintf((c)->fail, sizeof(c)->fail, "%s:%d: %s", __FILE__, __LINE__, #cond);      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static void sc_fanout(client_t *c)
{
    int total = FAN_N;
    conn_t **cn = calloc((size_t)total, sizeof *cn);
    struct pollfd *pf = calloc(FAN_N, sizeof *pf);
    int64_t *lat = calloc((size_t)FAN_N * FAN_ROUNDS, sizeof *lat);
    char head[4096];
    buf_t pl = {0};
    long got = 0;
    for (int i = 0; i < total; i++) {
        cn[i] = calloc(1, sizeof *cn[i]);
        cn[i]->fd = cl_connect(c->port, 0);
        CHECKG(c, cn[i]->fd >= 0);
        CHECKG(c, ws_handshake(cn[i], "/live", NULL, head, sizeof head) == 101);
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "bcast:%d:20:1024", FAN_ROUNDS); /* 50 rounds/s, 1 KiB */
    CHECKG(c, ws_text(cn[0]->fd, cmd) == 0);
    for (int i = 0; i < FAN_N; i++)
        pf[i] = (struct pollfd){.fd = cn[i]->fd, .events = POLLIN};
    int64_t deadline = time_mono_ns() + 30000000000LL;
    while (got < (long)FAN_N * FAN_ROUNDS && time_mono_ns() < deadline) {
        if (poll(pf, FAN_N, 1000) <= 0)
            continue;
        for (int i = 0; i < FAN_N; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            CHECKG(c, conn_fill(cn[i]) == 0);
            int op;
            while (frame_ready(cn[i], &op, &pl)) {
                int64_t now = time_mono_ns();
                if (op == 1 && pl.len == 1024 && pl.data[0] == 'T' &&
                    got < (long)FAN_N * FAN_ROUNDS)
                    lat[got++] = now - strtoll(pl.data + 1, NULL, 10);
            }
        }
    }
    fan_received = got;
    qsort(lat, (size_t)got, sizeof *lat, cmp_i64);
    if (got > 0) {
        fan_p50 = lat[got / 2];
        fan_p99 = lat[got * 99 / 100];
        fan_max = lat[got - 1];
    }
out:
    for (int i = 0; i < total; i++)
        if (cn[i]) {
            close(cn[i]->fd);
            free(cn[i]);
        }
    free(cn);
    free(pf);
    free(lat);
    buf_free(&pl);
}

static void test_fanout(void **state)
{
    (void)state;
    opts_default();
    scenario_opts.max_per_address = 512;
    run_scenario(sc_fanout);
    print_message("fan-out to %d reading clients, %d rounds of 1 KiB every 20 ms: received %ld, "
                  "latency (tick to receipt, client thread included) p50 %.2f ms p99 %.2f ms "
                  "max %.2f ms\n",
                  FAN_N, FAN_ROUNDS, fan_received, fan_p50 / 1e6, fan_p99 / 1e6, fan_max / 1e6);
    assert_int_equal(fan_received, (long)FAN_N * FAN_ROUNDS); /* nothing lost by readers */
    assert_int_equal(scenario_stats.ws_dropped, 0);
    assert_true(fan_p99 < 1000000000LL); /* generous: a loaded 2-core machine */
}

/* Two servers, each on its own loop in its own thread (as the web thread runs beside the
 * gateway's loop): both serve HTTP and WebSocket at the same time, and stop cleanly. */
typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    web_t *web;
    int port;
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
} server_t;

static void server_stop_cb(uv_async_t *a)
{
    server_t *sv = a->data;
    web_stop(sv->web);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg)
{
    server_t *sv = arg;
    char err[256];
    web_ws_cbs_t cbs = {filter, on_open, on_text, on_close, NULL};
    int rc = uv_loop_init(&sv->loop);
    if (rc == 0)
        rc = web_start_opts(&sv->loop, "127.0.0.1", 0, NULL, http_handler, NULL, &sv->web, err,
                            sizeof err);
    if (rc == 0)
        rc = web_ws_set(sv->web, &cbs);
    if (rc == 0) {
        sv->stop.data = sv;
        uv_async_init(&sv->loop, &sv->stop, server_stop_cb);
        sv->port = web_port(sv->web);
    }
    pthread_mutex_lock(&sv->mu);
    sv->rc = rc;
    sv->ready = 1;
    pthread_cond_signal(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    if (rc != 0)
        return NULL;
    sv->rc = uv_run(&sv->loop, UV_RUN_DEFAULT);
    web_free(sv->web);
    if (uv_loop_close(&sv->loop) != 0)
        sv->rc = -1;
    return NULL;
}

static void test_two_loops_two_threads(void **state)
{
    (void)state;
    server_t sv[2];
    pthread_t th[2];
    client_t c = {0};
    char head[4096];
    buf_t pl = {0};
    conn_t *cn[2];
    app_reset();
    for (int i = 0; i < 2; i++) {
        memset(&sv[i], 0, sizeof sv[i]);
        pthread_mutex_init(&sv[i].mu, NULL);
        pthread_cond_init(&sv[i].cv, NULL);
        assert_int_equal(pthread_create(&th[i], NULL, server_main, &sv[i]), 0);
        pthread_mutex_lock(&sv[i].mu);
        while (!sv[i].ready)
            pthread_cond_wait(&sv[i].cv, &sv[i].mu);
        pthread_mutex_unlock(&sv[i].mu);
        assert_int_equal(sv[i].rc, 0);
    }
    for (int i = 0; i < 2; i++) {
        cn[i] = calloc(1, sizeof *cn[i]);
        cn[i]->fd = cl_connect(sv[i].port, 0);
        assert_true(cn[i]->fd >= 0);
        assert_int_equal(ws_handshake(cn[i], "/live", NULL, head, sizeof head), 101);
    }
    for (int k = 0; k < 200 && !c.fail[0]; k++) {
        for (int i = 0; i < 2; i++) {
            char msg[64];
            snprintf(msg, sizeof msg, "echo:%d:%d", i, k);
            if (ws_text(cn[i]->fd, msg) != 0 || ws_next(cn[i], &pl) != 1 ||
                strcmp(pl.data, msg) != 0)
                snprintf(c.fail, sizeof c.fail, "server %d message %d", i, k);
        }
    }
    for (int i = 0; i < 2; i++) {
        uv_async_send(&sv[i].stop);
        pthread_join(th[i], NULL);
        close(cn[i]->fd);
        free(cn[i]);
        assert_int_equal(sv[i].rc, 0);
        pthread_mutex_destroy(&sv[i].mu);
        pthread_cond_destroy(&sv[i].cv);
    }
    buf_free(&pl);
    if (c.fail[0])
        fail_msg("%s", c.fail);
    assert_int_equal(app.opens, 2);
    assert_int_equal(app.closes, 2);
    assert_int_equal(app.texts, 400);
}

int main(void)
{
    log_set_level(getenv("TEST_DEBUG") ? LOG_TRACE : LOG_WARN);
    srand(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_no_ws),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_coalesce_close),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_slow_client_soft),
        cmocka_unit_test(test_slow_client_twice_cap),
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test(test_stop_with_open),
        cmocka_unit_test(test_bad_handshakes),
        cmocka_unit_test(test_two_loops_two_threads),
        cmocka_unit_test(test_throughput),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_fanout),
    };
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
