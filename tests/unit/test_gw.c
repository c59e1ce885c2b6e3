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
#include "core/util.h"
#include "gstp/gstp.h"
#include "gw/gw.h"
#include "store/store.h"
#include "tests/unit/ut_tmp.h"

#include <arpa/inet.h>
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
    uint8_t secret[32]; /* T0001's */
} fx_t;

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
    memcpy(f->secret, t.secret, sizeof f->secret);
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
    ut_rm_rf(f->dir);
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

/* ---- registry snapshots read from another thread (gw.h "Registry") ---- */

/* Runs the loop until the server sends a frame of `type` on fd (others, e.g. PING, are skipped;
 * bounded: 20 s) and copies its payload into out (cap bytes); returns its length. */
static size_t await_frame(fx_t *f, int fd, uint8_t type, uint8_t *out, size_t cap)
{
    static uint8_t dbuf[GSTP_MAX_FRAME * 2];
    static gstp_decoder_t dec;
    static int dec_fd = -1;
    if (dec_fd != fd) { /* one decoder per connection: bytes after the frame stay buffered */
        gstp_decoder_init(&dec, dbuf, sizeof dbuf);
        dec_fd = fd;
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        gstp_frame_t fr;
        while (gstp_decoder_next(&dec, &fr) == GSTP_FRAME)
            if (fr.type == type) {
                assert_true(fr.len <= cap);
                memcpy(out, fr.payload, fr.len);
                return fr.len;
            }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uint8_t in[4096];
        ssize_t n = recv(fd, in, sizeof in, MSG_DONTWAIT);
        if (n > 0)
            gstp_decoder_feed(&dec, in, (size_t)n);
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            fail_msg("connection closed while waiting for frame type %u", type);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            fail_msg("no frame type %u from the gateway within 20 s", type);
        usleep(1000);
    }
}

/* The payload of the last WELCOME login_ok received. */
static uint8_t g_welcome[GSTP_MAX_PAYLOAD];
static size_t g_welcome_len;

/* A complete login of T0001 (HELLO, CHALLENGE, AUTH with the HMAC, WELCOME). Returns the fd. */
static int login_ok(fx_t *f, const char *src)
{
    int fd = client(f, src);
    gstp_hello_t h;
    memset(&h, 0, sizeof h);
    h.version_min = h.version_max = 1;
    snprintf(h.terminal_id, sizeof h.terminal_id, "T0001");
    snprintf(h.fw_version, sizeof h.fw_version, "test-1");
    h.sample_rate = 4000;
    h.nominal_hz = 50;
    h.nchannels = 3;
    for (int i = 0; i < 3; i++) {
        h.channels[i].index = (uint8_t)i;
        h.channels[i].kind = GSTP_KIND_VOLTAGE;
        h.channels[i].phase = (uint8_t)(GSTP_PHASE_A + i);
        h.channels[i].unit = GSTP_UNIT_V;
        h.channels[i].scale = 0.01f;
    }
    uint8_t hb[GSTP_MAX_FRAME], pb[GSTP_MAX_FRAME], db[GSTP_MAX_FRAME * 2];
    int n = gstp_encode_hello(hb, sizeof hb, &h);
    assert_true(n > 0);
    /* the HELLO payload exactly as sent, for the MAC: decode our own frame */
    gstp_decoder_t dec;
    gstp_decoder_init(&dec, db, sizeof db);
    gstp_decoder_feed(&dec, hb, (size_t)n);
    gstp_frame_t hf;
    assert_int_equal(gstp_decoder_next(&dec, &hf), GSTP_FRAME);
    assert_int_equal(send(fd, hb, (size_t)n, 0), n);
    size_t cl = await_frame(f, fd, GSTP_CHALLENGE, pb, sizeof pb);
    gstp_frame_t cf = {.type = GSTP_CHALLENGE, .len = (uint16_t)cl, .payload = pb};
    gstp_challenge_t c;
    assert_int_equal(gstp_parse_challenge(&cf, &c), 0);
    gstp_auth_t a;
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, f->secret, sizeof f->secret);
    crypto_auth_hmacsha256_update(&hs, c.nonce, sizeof c.nonce);
    crypto_auth_hmacsha256_update(&hs, hf.payload, hf.len);
    crypto_auth_hmacsha256_final(&hs, a.mac);
    n = gstp_encode_auth(hb, sizeof hb, &a);
    assert_true(n > 0);
    assert_int_equal(send(fd, hb, (size_t)n, 0), n);
    g_welcome_len = await_frame(f, fd, GSTP_WELCOME, g_welcome, sizeof g_welcome);
    return fd;
}

typedef struct {
    gw_t *g;
    int stop;                                  /* __atomic: set by the main thread */
    int saw_online, saw_status, saw_offline;   /* __atomic: set by the reader */
    long reads, bad;                           /* reader's, read after the join */
} snap_reader_t;

/* Reads the registry in a loop from its own thread, checking that every copy is consistent:
 * the loop thread publishes while this runs (TSan: every shared field is under the lock). */
static void snap_reader(void *arg)
{
    snap_reader_t *r = arg;
    uint64_t last_frames = 0;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        gw_term_info_t ti;
        if (gw_term_info(r->g, "T0001", &ti) == 0) {
            if (strcmp(ti.id, "T0001") != 0 || ti.frames < last_frames)
                r->bad++;
            last_frames = ti.frames;
            if (ti.online) {
                if (ti.connected_since_ns <= 0 || ti.sessions < 1 || !ti.remote[0] ||
                    strcmp(ti.fw_version, "test-1") != 0 || ti.nominal_hz != 50)
                    r->bad++;
                __atomic_store_n(&r->saw_online, 1, __ATOMIC_RELEASE);
                if (ti.has_status) {
                    if (ti.status.uptime_s != 4242 || ti.status_received_ns <= 0)
                        r->bad++;
                    __atomic_store_n(&r->saw_status, 1, __ATOMIC_RELEASE);
                }
            } else if (__atomic_load_n(&r->saw_status, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&r->saw_offline, 1, __ATOMIC_RELEASE);
            }
        } else if (__atomic_load_n(&r->saw_online, __ATOMIC_ACQUIRE)) {
            r->bad++; /* once published, never unpublished */
        }
        gw_stats_t st;
        gw_stats(r->g, &st);
        if (st.online > st.handshakes_ok || st.online > 1)
            r->bad++;
        gw_term_info_t *all;
        size_t n;
        gw_term_list(r->g, &all, &n);
        if (n > 1 || (n == 1 && strcmp(all[0].id, "T0001") != 0))
            r->bad++;
        free(all);
        r->reads++;
    }
}

/* Observers (loop thread): the terminal events in order, the command states committed. */
typedef struct {
    int events[8];
    int nevents;
    int online_seen_by_info; /* at ONLINE, gw_term_info on the loop thread said online */
    int64_t cmd_id;
    int cmd_states[8];
    int ncmd;
    int submit_rc;
    int64_t submit_id;
    int submit_called;
} obs_t;

static void on_term(void *ud, int event, const gw_term_info_t *ti)
{
    obs_t *o = ud;
    if (o->nevents < 8)
        o->events[o->nevents++] = event;
    if (event == GW_TERM_ONLINE && ti->online && strcmp(ti->id, "T0001") == 0)
        o->online_seen_by_info = 1;
}

static void on_cmd(void *ud, int64_t id, const char *tid, int state, int count)
{
    obs_t *o = ud;
    if (id > 0 && tid && strcmp(tid, "T0001") == 0 && count == 1 && o->ncmd < 8) {
        o->cmd_id = id;
        o->cmd_states[o->ncmd++] = state;
    }
}

static void on_submit(void *ud, int rc, int64_t id, int sent)
{
    obs_t *o = ud;
    (void)sent;
    o->submit_rc = rc;
    o->submit_id = id;
    o->submit_called = 1;
}

/* Runs the loop until *flag (an int set on either thread) is 1; bounded: 20 s. */
static void await_flag(fx_t *f, int *flag, const char *what)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            fail_msg("the reader thread did not see %s within 20 s", what);
        usleep(1000);
    }
}

/* gw_term_info / gw_stats / gw_term_list from another thread while the loop works: login
 * (online), STATUS and logout (offline) are published at once (no tick needed, though it runs
 * too), and every copy read is consistent. */
static void test_registry_other_thread(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof f);
    gw_opts_t o;
    gw_opts_default(&o);
    fx_start(&f, &o);
    snap_reader_t r = {.g = f.g};
    obs_t obs = {0};
    gw_set_term_observer(f.g, on_term, &obs);
    gw_set_command_observer(f.g, on_cmd, &obs);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, snap_reader, &r), 0);
    int fd = login_ok(&f, "127.0.0.9");
    await_flag(&f, &r.saw_online, "the terminal online");
    /* A command: created through the writer (observer: queued), sent to the online terminal
     * (sent), answered OK (done), each reported once the writer committed it. */
    assert_int_equal(gw_command_submit(f.g, "T0001", GSTP_VERB_GET_STATUS, NULL, 0, 0, on_submit,
                                       &obs),
                     0);
    uint8_t pb[GSTP_MAX_FRAME];
    size_t cl = await_frame(&f, fd, GSTP_COMMAND, pb, sizeof pb);
    gstp_frame_t cf = {.type = GSTP_COMMAND, .len = (uint16_t)cl, .payload = pb};
    gstp_command_t cmd;
    assert_int_equal(gstp_parse_command(&cf, &cmd), 0);
    gstp_result_t res = {.id = cmd.id, .status = GSTP_RS_OK};
    uint8_t rb[GSTP_MAX_FRAME];
    int rn = gstp_encode_result(rb, sizeof rb, &res);
    assert_true(rn > 0);
    assert_int_equal(send(fd, rb, (size_t)rn, 0), rn);
    struct timespec c0, cn;
    clock_gettime(CLOCK_MONOTONIC, &c0);
    while (obs.ncmd < 3 || !obs.submit_called) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        clock_gettime(CLOCK_MONOTONIC, &cn);
        if (cn.tv_sec - c0.tv_sec > 20)
            fail_msg("command states not reported within 20 s (%d)", obs.ncmd);
        usleep(1000);
    }
    assert_int_equal(obs.submit_rc, 0);
    assert_int_equal(obs.cmd_id, obs.submit_id);
    assert_int_equal((int64_t)cmd.id, obs.submit_id);
    assert_int_equal(obs.cmd_states[0], STORE_CMD_QUEUED);
    assert_int_equal(obs.cmd_states[1], STORE_CMD_SENT);
    assert_int_equal(obs.cmd_states[2], STORE_CMD_DONE);
    gstp_status_t st;
    memset(&st, 0, sizeof st);
    st.time_ns = time_utc_ns();
    st.rsrp_dbm = st.rssi_dbm = GSTP_NA_I16;
    st.temp_c10 = GSTP_NA_I16;
    st.supply_mv = GSTP_NA_U16;
    st.csq = 99;
    st.uptime_s = 4242;
    uint8_t b[GSTP_MAX_FRAME];
    int n = gstp_encode_status(b, sizeof b, &st);
    assert_true(n > 0);
    assert_int_equal(send(fd, b, (size_t)n, 0), n);
    await_flag(&f, &r.saw_status, "the STATUS");
    close(fd);
    await_flag(&f, &r.saw_offline, "the terminal offline");
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    uv_thread_join(&th);
    assert_int_equal(r.bad, 0);
    assert_true(r.reads > 0);
    /* on the loop thread the live state, as before */
    gw_term_info_t ti;
    assert_int_equal(gw_term_info(f.g, "T0001", &ti), 0);
    assert_int_equal(ti.online, 0);
    assert_int_equal(ti.sessions, 1);
    assert_int_equal(gw_term_info(f.g, "T0002", &ti), GS_ENOTFOUND);
    assert_int_equal(obs.nevents, 3);
    assert_int_equal(obs.events[0], GW_TERM_ONLINE);
    assert_int_equal(obs.events[1], GW_TERM_STATUS);
    assert_int_equal(obs.events[2], GW_TERM_OFFLINE);
    assert_true(obs.online_seen_by_info);
    gw_stats_t gs;
    gw_stats(f.g, &gs);
    assert_int_equal(gs.handshakes_ok, 1);
    assert_int_equal(gs.online, 0);
    fx_stop(&f);
}

/* Runs the loop until pred(f) holds (bounded: 20 s). */
static void await_stats(fx_t *f, int (*pred)(gw_stats_t *), const char *what)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        gw_stats_t gs;
        uv_run(&f->loop, UV_RUN_NOWAIT);
        gw_stats(f->g, &gs);
        if (pred(&gs))
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            fail_msg("%s: not within 20 s", what);
        usleep(1000);
    }
}

static int nothing_in_flight(gw_stats_t *gs)
{
    return gs->inflight_bytes == 0;
}

typedef struct {
    int n;
    uint8_t data[400 * 6];
    size_t len;
} gw_read_t;

static int gw_read_cb(void *ud, const store_block_t *b)
{
    gw_read_t *r = ud;
    r->n++;
    r->len = b->data_len;
    if (b->data_len <= sizeof r->data)
        memcpy(r->data, b->data, b->data_len);
    return 0;
}

/* GSTP codec 1 through the gateway (protocol.md 6.7, 7.4): WELCOME announces it; a block sent as
 * codec-1 chunks is decoded chunk by chunk, acknowledged after commit, stored (and read back) as
 * the raw samples, and counted on the wire per codec; reassembly memory (raw buffer and kept
 * segments) is all released. A chunk whose segment has a byte after it gets ERROR MALFORMED and
 * BYE PROTOCOL, and its block is dropped. */
static void test_codec1_blocks(void **state)
{
    (void)state;
    enum { NS = 400 };
    static uint8_t blk[NS * 6], frames[255 * GSTP_MAX_FRAME];
    fx_t f;
    memset(&f, 0, sizeof f);
    gw_opts_t o;
    gw_opts_default(&o);
    fx_start(&f, &o);
    int fd = login_ok(&f, "127.0.0.11");
    gstp_frame_t wf = {.type = GSTP_WELCOME, .len = (uint16_t)g_welcome_len, .payload = g_welcome};
    gstp_welcome_t w;
    assert_int_equal(gstp_parse_welcome(&wf, &w), 0);
    assert_int_equal(w.codecs, GSTP_CODECS_KNOWN);

    uint32_t seed = 12345;
    for (int i = 0; i < NS * 3; i++) {
        int32_t ph = (int32_t)((i / 3 * 100 + (i % 3) * 2667) % 8000); /* triangle, 50 Hz */
        seed = seed * 1664525u + 1013904223u;                           /* and noise */
        int32_t v = (ph < 4000 ? ph : 8000 - ph) * 4 - 8000 + (int32_t)(seed >> 24) - 128;
        blk[2 * i] = (uint8_t)(uint32_t)v;
        blk[2 * i + 1] = (uint8_t)((uint32_t)v >> 8);
    }
    gstp_block_hdr_t h;
    memset(&h, 0, sizeof h);
    h.seq = 1;
    h.t0_ns = 1700000000000000000LL;
    h.sample_rate = 4000;
    h.channel_mask = 0x7;
    h.nsamples = NS;
    h.time_quality = GSTP_TQ_GPS_LOCKED;
    h.sample_fmt = GSTP_FMT_INT16;
    h.nchannels = 3;
    h.codec = GSTP_CODEC_WCODEC;
    uint8_t nchunks = 0;
    int len = gstp_encode_block_wcodec_all(frames, sizeof frames, &h, NULL, blk, 80, 512, &nchunks);
    assert_true(len > 0 && nchunks >= 2);
    size_t seg_bytes = (size_t)len - (size_t)nchunks * (GSTP_HEADER_LEN + GSTP_BLOCK_HDR_LEN +
                                                      GSTP_TRAILER_LEN);
    assert_int_equal(send(fd, frames, (size_t)len, 0), len);
    uint8_t pb[GSTP_MAX_FRAME];
    await_frame(&f, fd, GSTP_ACK, pb, sizeof pb);
    assert_int_equal(pb[0], 1);
    await_stats(&f, nothing_in_flight, "in-flight bytes back to 0");
    gw_stats_t gs;
    gw_stats(f.g, &gs);
    assert_int_equal(gs.sample_wire_bytes[1], seg_bytes);
    assert_int_equal(gs.sample_raw_bytes[1], sizeof blk);
    assert_int_equal(gs.sample_wire_bytes[0], 0);
    assert_true(seg_bytes < sizeof blk);
    gw_read_t r = {0};
    assert_int_equal(store_blocks_read(f.st, "T0001", 0, INT64_MAX, STORE_BLOCKS_WAVEFORM,
                                       gw_read_cb, &r),
                     0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.len, sizeof blk);
    assert_memory_equal(r.data, blk, sizeof blk);

    /* block 2: its second chunk's segment has a byte after it */
    h.seq = 2;
    h.t0_ns += 100000000;
    len = gstp_encode_block_wcodec_all(frames, sizeof frames, &h, NULL, blk, 80, 512, &nchunks);
    assert_true(len > 0 && nchunks >= 2);
    size_t first_len = GSTP_HEADER_LEN + (size_t)(frames[6] | frames[7] << 8) + GSTP_TRAILER_LEN;
    uint8_t *c1 = frames + first_len;
    size_t plen = (size_t)(c1[6] | c1[7] << 8);
    uint8_t payload[GSTP_MAX_PAYLOAD];
    memcpy(payload, c1 + GSTP_HEADER_LEN, plen);
    payload[plen] = 0;
    uint8_t bad[GSTP_MAX_FRAME];
    int bn = gstp_frame_write(bad, sizeof bad, GSTP_WAVEFORM, 0, payload, plen + 1);
    assert_true(bn > 0);
    assert_int_equal(send(fd, frames, first_len, 0), (ssize_t)first_len);
    assert_int_equal(send(fd, bad, (size_t)bn, 0), bn);
    size_t el = await_frame(&f, fd, GSTP_ERROR, pb, sizeof pb);
    gstp_frame_t ef = {.type = GSTP_ERROR, .len = (uint16_t)el, .payload = pb};
    gstp_error_t er;
    assert_int_equal(gstp_parse_error(&ef, &er), 0);
    assert_int_equal(er.code, GSTP_ERR_MALFORMED);
    assert_int_equal(er.frame_type, GSTP_WAVEFORM);
    el = await_frame(&f, fd, GSTP_BYE, pb, sizeof pb);
    gstp_frame_t bf = {.type = GSTP_BYE, .len = (uint16_t)el, .payload = pb};
    gstp_reject_t by;
    assert_int_equal(gstp_parse_reject(&bf, &by), 0);
    assert_int_equal(by.reason, GSTP_REJ_PROTOCOL);
    await_stats(&f, nothing_in_flight, "the dropped block's memory released");
    gw_stats(f.g, &gs);
    assert_int_equal(gs.protocol_errors, 1);
    assert_int_equal(gs.blocks_received, 1);
    close(fd);
    fx_stop(&f);
}

/* ---- session hooks (several nodes: src/cluster) ---- */

typedef struct {
    int events[8];
    uint64_t sids[8];
    int n;
} sess_obs_t;

static void on_session(void *ud, int event, const gw_term_info_t *ti, uint64_t sid)
{
    sess_obs_t *o = ud;
    if (o->n < 8 && strcmp(ti->id, "T0001") == 0) {
        o->events[o->n] = event;
        o->sids[o->n++] = sid;
    }
}

/* The session observer sees every login and logout with the session's id; gw_session_end ends
 * only the terminal's current session with that id (BYE with the reason given);
 * gw_commands_check looks only for a terminal online here. */
static void test_session_hooks(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof f);
    gw_opts_t o;
    gw_opts_default(&o);
    fx_start(&f, &o);
    sess_obs_t obs = {0};
    gw_set_session_observer(f.g, on_session, &obs);
    int fd1 = login_ok(&f, "127.0.0.20");
    assert_int_equal(obs.n, 1);
    assert_int_equal(obs.events[0], GW_TERM_ONLINE);
    uint64_t s1 = obs.sids[0];
    assert_true(s1 != 0);
    assert_int_equal(gw_session_end(f.g, "T0001", s1 + 1, GSTP_REJ_REPLACED, "x"), 0);
    assert_int_equal(gw_session_end(f.g, "T0002", s1, GSTP_REJ_REPLACED, "x"), 0);
    assert_int_equal(gw_commands_check(f.g, "T0001"), 1);
    assert_int_equal(gw_commands_check(f.g, "T0002"), 0);
    /* a second login replaces the first within the gateway: its end, then the new one */
    int fd2 = login_ok(&f, "127.0.0.21");
    assert_int_equal(obs.n, 3);
    assert_int_equal(obs.events[1], GW_TERM_OFFLINE);
    assert_int_equal(obs.sids[1], s1);
    assert_int_equal(obs.events[2], GW_TERM_ONLINE);
    uint64_t s2 = obs.sids[2];
    assert_true(s2 != s1);
    /* the old session's id no longer names a session: the new one is left alone */
    assert_int_equal(gw_session_end(f.g, "T0001", s1, GSTP_REJ_REPLACED, "x"), 0);
    gw_term_info_t ti;
    assert_int_equal(gw_term_info(f.g, "T0001", &ti), 0);
    assert_int_equal(ti.online, 1);
    /* the current one is ended: BYE REPLACED, then the observer sees its end */
    assert_int_equal(gw_session_end(f.g, "T0001", s2, GSTP_REJ_REPLACED, "on another node"), 1);
    uint8_t pb[GSTP_MAX_FRAME];
    size_t bl = await_frame(&f, fd2, GSTP_BYE, pb, sizeof pb);
    gstp_frame_t bf = {.type = GSTP_BYE, .len = (uint16_t)bl, .payload = pb};
    gstp_reject_t bye;
    assert_int_equal(gstp_parse_reject(&bf, &bye), 0);
    assert_int_equal(bye.reason, GSTP_REJ_REPLACED);
    assert_int_equal(obs.n, 4);
    assert_int_equal(obs.events[3], GW_TERM_OFFLINE);
    assert_int_equal(obs.sids[3], s2);
    assert_int_equal(gw_term_info(f.g, "T0001", &ti), 0);
    assert_int_equal(ti.online, 0);
    assert_int_equal(gw_commands_check(f.g, "T0001"), 0);
    assert_int_equal(gw_session_end(f.g, "T0001", s2, GSTP_REJ_REPLACED, "x"), 0);
    gw_set_session_observer(f.g, NULL, NULL);
    close(fd1);
    close(fd2);
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
        cmocka_unit_test(test_registry_other_thread),
        cmocka_unit_test(test_codec1_blocks),
        cmocka_unit_test(test_session_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
