/* Unit tests for the gateway's failed-login accounting (src/gw/handshake.c, protocol decision 6),
 * driving a real gateway on a private loop over loopback. The gateway's sources are compiled into
 * this test with a small AUTH_MAP_MAX (gw.cmake) so the table's limit is reached with a few
 * addresses; clients bind distinct 127.0.0.x source addresses to be distinct "addresses" for the
 * limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "gstp/gstp.h"
#include "gw/gw.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    char dir[64];
    store_t *st;
    gw_t *g;
    uv_loop_t loop;
    int stopped;
} fx_t;

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Provisions T0001 (50 Hz) with a fresh store, then reopens it as the server does (read-only
 * synchronous connection) and starts the gateway on an OS-chosen port. */
static void fx_start(fx_t *f, const gw_opts_t *o)
{
    char err[512];
    snprintf(f->dir, sizeof f->dir, "/tmp/gs-test-gw-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    store_opts_t so = {.sync_full = 0, .busy_timeout_ms = 5000};
    assert_int_equal(store_open(f->dir, &so, &f->st, err, sizeof err), 0);
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T0001");
    t.nominal_hz = 50;
    randombytes_buf(t.secret, sizeof t.secret);
    assert_int_equal(store_terminal_add(f->st, &t), 0);
    store_close(f->st);
    so.sync_read_only = 1;
    assert_int_equal(store_open(f->dir, &so, &f->st, err, sizeof err), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    gw_opts_t go = *o;
    snprintf(go.host, sizeof go.host, "127.0.0.1");
    go.port = 0;
    assert_int_equal(gw_start(&f->loop, f->st, &go, &f->g, err, sizeof err), 0);
}

static void stopped_cb(void *ud)
{
    ((fx_t *)ud)->stopped = 1;
}

static void fx_stop(fx_t *f)
{
    gw_stop(f->g, stopped_cb, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->stopped);
    gw_free(f->g);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    store_close(f->st);
    rm_rf(f->dir);
}

/* A connection from source address src (127.0.0.x). Blocking connect: the listener's backlog
 * accepts it before the loop runs. */
static int client(fx_t *f, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, src, &a.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    a.sin_port = htons((uint16_t)gw_port(f->g));
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_hello(int fd, const char *tid, int hz)
{
    gstp_hello_t h;
    memset(&h, 0, sizeof h);
    h.version_min = h.version_max = 1;
    snprintf(h.terminal_id, sizeof h.terminal_id, "%s", tid);
    snprintf(h.fw_version, sizeof h.fw_version, "test-1");
    h.sample_rate = 4000;
    h.nominal_hz = (uint8_t)hz;
    h.nchannels = 3;
    for (int i = 0; i < 3; i++) {
        h.channels[i].index = (uint8_t)i;
        h.channels[i].kind = GSTP_KIND_VOLTAGE;
        h.channels[i].phase = (uint8_t)(GSTP_PHASE_A + i);
        h.channels[i].unit = GSTP_UNIT_V;
        h.channels[i].scale = 0.01f;
    }
    uint8_t buf[GSTP_MAX_FRAME];
    int n = gstp_encode_hello(buf, sizeof buf, &h);
    assert_true(n > 0);
    assert_int_equal(send(fd, buf, (size_t)n, 0), n);
}

/* Runs the loop until the server's first frame on fd arrives (bounded: 20 s); returns the
 * REJECT reason, or -1 for another frame type. Closes fd. */
static int await_reject(fx_t *f, int fd)
{
    static uint8_t dbuf[GSTP_MAX_FRAME * 2];
    gstp_decoder_t dec;
    gstp_decoder_init(&dec, dbuf, sizeof dbuf);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uint8_t in[4096];
        ssize_t n = recv(fd, in, sizeof in, MSG_DONTWAIT);
        if (n > 0) {
            gstp_decoder_feed(&dec, in, (size_t)n);
            gstp_frame_t fr;
            if (gstp_decoder_next(&dec, &fr) == GSTP_FRAME) {
                int reason = -1;
                gstp_reject_t r;
                if (fr.type == GSTP_REJECT && gstp_parse_reject(&fr, &r) == 0)
                    reason = r.reason;
                close(fd);
                return reason;
            }
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            fail_msg("connection closed without a frame");
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            fail_msg("no answer from the gateway within 20 s");
        usleep(1000);
    }
}

/* Alters the last byte of T0001's sealed secret (another connection, as an attacker with write
 * access or a damaged row would): it then no longer authenticates under the master key. */
static void tamper_secret(fx_t *f)
{
    char path[128];
    snprintf(path, sizeof path, "%s/gridsense.db", f->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t blob[256];
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT secret FROM terminals WHERE id = 'T0001'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_bytes(st, 0);
    assert_true(n > 0 && n <= (int)sizeof blob);
    memcpy(blob, sqlite3_column_blob(st, 0), (size_t)n);
    sqlite3_finalize(st);
    blob[n - 1] ^= 0x5a;
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE terminals SET secret = ?1 WHERE id = 'T0001'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, blob, n, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int login_reason(fx_t *f, const char *src, const char *tid, int hz)
{
    int fd = client(f, src);
    send_hello(fd, tid, hz);
    return await_reject(f, fd);
}

/* Decision 6 and the table's bound (AUTH_MAP_MAX = 4 here): a failed login that fills the table
 * while creating the id's entry forgets the old entries first, never the address entry it is
 * about to count (that was a use-after-free: the flush freed it between the two lookups, and the
 * failure was written into freed memory and lost). */
static void test_authfail_table_full(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof f);
    gw_opts_t o;
    gw_opts_default(&o);
    o.auth_fail_per_ip = 1; /* one failure per address per minute, then RATE_LIMIT */
    o.auth_fail_per_id = 100;
    fx_start(&f, &o);
    /* three addresses with an unknown id: three entries (unknown ids are not counted) */
    assert_int_equal(login_reason(&f, "127.0.0.2", "X0001", 50), GSTP_REJ_UNKNOWN_ID);
    assert_int_equal(login_reason(&f, "127.0.0.3", "X0001", 50), GSTP_REJ_UNKNOWN_ID);
    assert_int_equal(login_reason(&f, "127.0.0.4", "X0001", 50), GSTP_REJ_UNKNOWN_ID);
    /* a fourth address, provisioned id, wrong nominal frequency: its address entry is the
     * fourth, the id's entry would be the fifth */
    assert_int_equal(login_reason(&f, "127.0.0.5", "T0001", 60), GSTP_REJ_BAD_CONFIG);
    /* that failure was counted for the address: its next failing login is rate limited */
    assert_int_equal(login_reason(&f, "127.0.0.5", "X0001", 50), GSTP_REJ_RATE_LIMIT);
    fx_stop(&f);
}

/* Decision 6: a provisioned id's failed logins count for the id too, also when its stored secret
 * cannot be unsealed (BAD_AUTH at HELLO): the sixth in a minute (per-id limit 5) is rate
 * limited. */
static void test_unusable_secret_counts_for_id(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof f);
    gw_opts_t o;
    gw_opts_default(&o);
    fx_start(&f, &o);
    tamper_secret(&f);
    /* (one address: this build's table holds 4 entries; the address limit is 600) */
    for (int i = 0; i < 5; i++)
        assert_int_equal(login_reason(&f, "127.0.1.1", "T0001", 50), GSTP_REJ_BAD_AUTH);
    assert_int_equal(login_reason(&f, "127.0.1.1", "T0001", 50), GSTP_REJ_RATE_LIMIT);
    fx_stop(&f);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authfail_table_full),
        cmocka_unit_test(test_unusable_secret_counts_for_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
