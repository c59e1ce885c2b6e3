/* libFuzzer target for the HTTP API router (src/api: api_handle and every route behind it).
 *
 * Input: one request as text,
 *     METHOD SP TARGET LF                 TARGET = path [ "?" query ]
 *     Name: value LF                      any number; cookie, authorization, origin, referer,
 *     ...                                 host, content-type, x-forwarded-for, accept-encoding,
 *     LF                                  user-agent are passed (case-insensitive), others ignored
 *     body                                the rest of the input, bytes as they are
 * A CR before LF is dropped and values are trimmed, as web.c does. Path and query are passed as
 * given (web.c would have decoded the path and re-encoded the query: the API must cope with any
 * bytes either way); a NUL ends a line's text. In header values these names stand for live
 * credentials made by the target (values are random per run, so a corpus cannot hold them):
 *     @admin @operator @viewer   a valid API token of a user with that role
 *     @revoked                   a revoked token of an admin
 *     @session                   a valid login session cookie value of the admin user
 * e.g. "Authorization: Bearer @admin", "Cookie: gs_session=@session". The request comes from
 * 127.0.0.1, which is a configured trusted proxy, so X-Forwarded-For chooses the client address
 * (and the login rate-limit key).
 *
 * The world is real and kept between inputs: a store in a temporary directory (store_open, its
 * writer), a gateway listening on 127.0.0.1 port 0 (nothing connects), a terminal "T1", users
 * "fz-admin", "fz-oper", "fz-view" (password "fuzz-password-1"), rows for T1 (two voltage events,
 * one with channel names to escape, a 10min measurement, a status report, a session), no
 * analysis (ana NULL). The
 * users and the credentials the placeholders name are repaired before each input (an input may
 * delete a user, revoke a token or log a session out). Deferred answers (web_defer) go through the
 * seam in
 * ../api_seam.c; the loop runs until they complete (at most 60 s, else abort). With
 * GS_FUZZ_VERBOSE set in the environment each answer (status, start of the body) goes to stderr.
 *
 * Properties (abort on violation): no crash or sanitizer report; every answer has a status in
 * 200..599 and an extra header block web would send; a JSON answer parses as JSON; an error
 * answer (>= 400) in JSON has the shape {"error":{"code":STRING,"message":STRING}}. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../api_seam.h"
#include "api/internal.h" /* api__new_secret, api__hash_secret: credentials as the API makes them */
#include "core/err.h"
#include "core/log.h"
#include "gw/gw.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_PASSWORD  "fuzz-password-1"
#define MAX_WAIT_MS  60000
#define MAX_HDR_LINE 16384

enum { FX_ADMIN, FX_OPER, FX_VIEW, FX_REVOKED, FX_N };

static const struct {
    const char *placeholder, *user;
    int role;
} fx_def[FX_N] = {
    {"@admin", "fz-admin", STORE_ROLE_ADMIN},
    {"@operator", "fz-oper", STORE_ROLE_OPERATOR},
    {"@viewer", "fz-view", STORE_ROLE_VIEWER},
    {"@revoked", "fz-admin", STORE_ROLE_ADMIN},
};

static struct {
    int ready;
    char dir[64];
    uv_loop_t loop;
    store_t *st;
    gw_t *gw;
    api_t *api;
    char pwhash[STORE_PWHASH_MAX];
    char token[FX_N][128]; /* token values */
    char token_id[FX_N][STORE_TOKEN_ID + 1];
    char session[64]; /* login session cookie value (fz-admin) */
    uv_timer_t guard;
    int timed_out;
    int verbose; /* GS_FUZZ_VERBOSE set: each answer's status and body start on stderr */
} W;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_api_router: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void apply(store_acct_t *c, int tolerate)
{
    int rc = store_account_apply(W.st, c);
    if (rc < 0 && rc != tolerate)
        die("fixture change failed", err_str(rc));
}

/* The fixture users exist with their role and password (an input may have changed them). */
static void fix_user(int i)
{
    store_user_t u;
    store_acct_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.user, sizeof c.user, "%s", fx_def[i].user);
    int rc = store_user_get(W.st, fx_def[i].user, &u);
    if (rc == GS_ENOTFOUND) {
        c.op = STORE_ACCT_USER_ADD;
        c.role = fx_def[i].role;
        snprintf(c.pwhash, sizeof c.pwhash, "%s", W.pwhash);
        apply(&c, 0);
        return;
    }
    if (rc < 0)
        die("store_user_get", err_str(rc));
    if (u.role != fx_def[i].role) {
        c.op = STORE_ACCT_USER_ROLE;
        c.role = fx_def[i].role;
        apply(&c, GS_ESTATE); /* only a demotion of the last admin is refused: not ours */
    }
    if (strcmp(u.pwhash, W.pwhash) != 0) {
        memset(&c, 0, sizeof c);
        snprintf(c.user, sizeof c.user, "%s", fx_def[i].user);
        c.op = STORE_ACCT_USER_PASSWD;
        snprintf(c.pwhash, sizeof c.pwhash, "%s", W.pwhash);
        apply(&c, 0);
    }
}

static void new_token(int i)
{
    uint8_t hash[STORE_HASH_LEN];
    store_acct_t c;
    memset(&c, 0, sizeof c);
    api_token_make(W.token_id[i], W.token[i], hash);
    c.op = STORE_ACCT_TOKEN_ADD;
    memcpy(c.token_id, W.token_id[i], sizeof c.token_id);
    memcpy(c.hash, hash, sizeof hash);
    snprintf(c.user, sizeof c.user, "%s", fx_def[i].user);
    snprintf(c.label, sizeof c.label, "fuzz %s", fx_def[i].placeholder);
    apply(&c, 0);
    if (i == FX_REVOKED) {
        memset(&c, 0, sizeof c);
        c.op = STORE_ACCT_TOKEN_REVOKE;
        memcpy(c.token_id, W.token_id[i], sizeof c.token_id);
        apply(&c, 0);
    }
}

/* The token of fixture i is valid (revoked for FX_REVOKED); a new one replaces it if not. */
static void fix_token(int i)
{
    uint8_t h[STORE_HASH_LEN];
    store_token_t t;
    api__hash_secret(W.token[i], strlen(W.token[i]), h);
    int rc = W.token[i][0] ? store_token_find(W.st, h, &t) : GS_ENOTFOUND;
    if (rc == 0 && (i == FX_REVOKED ? t.revoked_ns != 0 : t.revoked_ns == 0))
        return;
    if (rc < 0 && rc != GS_ENOTFOUND)
        die("store_token_find", err_str(rc));
    new_token(i);
}

static void fix_session(void)
{
    uint8_t h[STORE_HASH_LEN];
    store_login_t l;
    api__hash_secret(W.session, strlen(W.session), h);
    int rc = W.session[0] ? store_login_find(W.st, h, &l) : GS_ENOTFOUND;
    if (rc == 0)
        return;
    if (rc != GS_ENOTFOUND)
        die("store_login_find", err_str(rc));
    store_acct_t c;
    memset(&c, 0, sizeof c);
    api__new_secret(W.session, h);
    c.op = STORE_ACCT_LOGIN_ADD;
    memcpy(c.hash, h, sizeof h);
    snprintf(c.user, sizeof c.user, "%s", fx_def[FX_ADMIN].user);
    c.expires_ns = time_utc_ns() + 86400LL * 1000000000LL;
    snprintf(c.remote, sizeof c.remote, "127.0.0.1");
    apply(&c, 0);
}

/* ---- stored data, so the list routes have rows to write ---------------------------------- */

static uv_mutex_t seed_lock;
static int seed_done; /* items the writer has handed back */

static void seed_notify(store_item_t *it, void *ud)
{
    (void)ud;
    store_item_free(it);
    uv_mutex_lock(&seed_lock);
    seed_done++;
    uv_mutex_unlock(&seed_lock);
}

static void seed_submit(store_item_t *it)
{
    it->notify = seed_notify;
    if (store_submit(W.st, it) < 0)
        die("store_submit", NULL);
}

/* Rows for T1 through the writer, as the gateway and the analysis store them: two events (one
 * with channel names that need escaping, bytes that are not UTF-8 among them), a measurement, a
 * status report and a terminal session. Waits (bounded) until they are committed. */
static void seed_rows(void)
{
    int64_t t0 = 1796400000LL * 1000000000LL; /* 2026-12-04T16:00:00Z */
    const char *names[] = {"Ua,Ub", "U\"a\",\xff\xfe\x01,\u00e9"};
    uv_mutex_init(&seed_lock);
    for (int i = 0; i < 2; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
        snprintf(it->reason, sizeof it->reason, "%s", i ? "swell" : "dip");
        it->ev_start_ns = t0 + i * 60000000000LL;
        it->ev_duration_ns = 120000000;
        it->ev_extreme = i ? 260.5 : 150.25;
        it->ev_extreme_pct = i ? 113.3 : 65.3;
        it->ev_reference = 230.0;
        it->ev_channels = i ? 0xffffffffu : 3;
        it->ev_flags = (uint32_t)i;
        it->ev_worst_channel = i ? 31 : 1;
        snprintf(it->ev_worst_name, sizeof it->ev_worst_name, "%s", i ? "\xff\"" : "Ub");
        it->data = (uint8_t *)xstrdup(names[i]);
        it->data_len = strlen(names[i]);
        seed_submit(it);
    }
    static const char mdata[] =
        "{\"u_rms\":[230.1,229.8,231.0],\"f_hz\":50.01,\"thd_pct\":[1.2,null,"
        "1.4],\"flags\":\"\u00e9\\\"\"}";
    store_item_t *m = store_item_new(STORE_ITEM_MEASUREMENT);
    snprintf(m->terminal_id, sizeof m->terminal_id, "T1");
    snprintf(m->reason, sizeof m->reason, "10min");
    m->m_start_ns = t0;
    m->m_end_ns = t0 + 600000000000LL;
    m->m_count = 200;
    m->m_flags = 1;
    m->data = (uint8_t *)xstrdup(mdata);
    m->data_len = strlen(mdata);
    seed_submit(m);
    store_item_t *st = store_item_new(STORE_ITEM_STATUS);
    snprintf(st->terminal_id, sizeof st->terminal_id, "T1");
    st->time_ns = t0;
    st->rsrp_dbm = -95;
    st->rssi_dbm = -32768;
    st->csq = 99;
    st->supply_mv = 65535;
    st->temp_c10 = 215;
    st->uptime_s = 86400;
    seed_submit(st);
    store_item_t *so = store_item_new(STORE_ITEM_SESSION_OPEN);
    snprintf(so->terminal_id, sizeof so->terminal_id, "T1");
    so->cookie = 1;
    so->when_ns = t0;
    snprintf(so->remote, sizeof so->remote, "10.1.2.3:40000");
    seed_submit(so);
    for (int waited = 0;; waited++) {
        uv_mutex_lock(&seed_lock);
        int n = seed_done;
        uv_mutex_unlock(&seed_lock);
        if (n == 5)
            break;
        if (waited > 6000)
            die("the writer did not store the seed rows within 60 s", NULL);
        uv_sleep(10);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void walk_close(uv_handle_t *h, void *ud)
{
    (void)ud;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* At exit: an orderly shutdown (its paths run under the sanitizers too) and the temp dir goes. */
static void world_down(void)
{
    if (!W.ready)
        return;
    W.ready = 0;
    api_stop(W.api);
    gw_stop(W.gw, NULL, NULL);
    uv_close((uv_handle_t *)&W.guard, NULL);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    gw_free(W.gw);
    store_close(W.st);
    api_free(W.api);
    uv_walk(&W.loop, walk_close, NULL);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    uv_loop_close(&W.loop);
    nftw(W.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void world_up(void)
{
    char err[256];
    log_set_level(LOG_ERROR);
    W.verbose = getenv("GS_FUZZ_VERBOSE") != NULL;
    if (sodium_init() < 0)
        die("sodium_init", NULL);
    snprintf(W.dir, sizeof W.dir, "%s", "/tmp/gs-fuzz-api-XXXXXX");
    if (!mkdtemp(W.dir))
        die("mkdtemp", NULL);
    if (uv_loop_init(&W.loop) < 0)
        die("uv_loop_init", NULL);
    /* Unlike the server (sync_read_only = 1), the loop's connection may write: the fixtures are
     * made with store_account_apply on it, as the admin CLI does. */
    store_opts_t so = {.sync_full = 0, .busy_timeout_ms = 5000};
    if (store_open(W.dir, &so, &W.st, err, sizeof err) < 0)
        die("store_open", err);
    gw_opts_t go;
    gw_opts_default(&go);
    snprintf(go.host, sizeof go.host, "127.0.0.1");
    go.port = 0;
    if (gw_start(&W.loop, W.st, &go, &W.gw, err, sizeof err) < 0)
        die("gw_start", err);
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    snprintf(t.name, sizeof t.name, "fuzz terminal");
    t.nominal_hz = 50;
    randombytes_buf(t.secret, sizeof t.secret);
    if (store_terminal_add(W.st, &t) < 0)
        die("store_terminal_add", NULL);
    seed_rows();
    api_opts_t ao;
    api_opts_default(&ao);
    ao.gw = W.gw;
    ao.st = W.st;
    ao.ana = NULL;
    ao.max_pending = go.cmd_max_pending;
    ao.create_timeout_s = (int)(go.cmd_create_timeout_ns / 1000000000LL);
    ao.bind_host = "127.0.0.1";
    ao.trusted_proxies = "127.0.0.1";
    if (api_new(&W.loop, &ao, &W.api, err, sizeof err) < 0)
        die("api_new", err);
    api_set_web(W.api, seam_web());
    if (api_password_hash(FZ_PASSWORD, W.pwhash) < 0)
        die("api_password_hash", NULL);
    uv_timer_init(&W.loop, &W.guard);
    W.ready = 1;
    atexit(world_down);
}

/* ---- the request --------------------------------------------------------------------------- */

static const char *const hdr_names[] = {
    "cookie",       "authorization",   "origin",          "referer",   "host",
    "content-type", "x-forwarded-for", "accept-encoding", "user-agent"};
#define NHDR ((int)(sizeof hdr_names / sizeof hdr_names[0]))

/* value with each placeholder replaced by its credential (fixtures repaired first). */
static void expand(buf_t *out, const char *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        int hit = 0;
        if (v[i] == '@') {
            for (int f = 0; f < FX_N && !hit; f++) {
                size_t pl = strlen(fx_def[f].placeholder);
                if (n - i >= pl && memcmp(v + i, fx_def[f].placeholder, pl) == 0) {
                    fix_token(f);
                    buf_puts(out, W.token[f]);
                    i += pl, hit = 1;
                }
            }
            if (!hit && n - i >= 8 && memcmp(v + i, "@session", 8) == 0) {
                fix_session();
                buf_puts(out, W.session);
                i += 8, hit = 1;
            }
        }
        if (!hit)
            buf_append(out, v + i, 1), i++;
    }
}

static void guard_cb(uv_timer_t *t)
{
    (void)t;
    W.timed_out = 1;
}

/* Checks one answer against the properties in the header comment. */
static void check_answer(const seam_req_t *r)
{
    if (r->status < 200 || r->status > 599)
        die("status outside 200..599", NULL);
    const char *why = seam_check_headers(&r->headers);
    if (why)
        die("extra headers", why);
    if (!r->content_type || strncasecmp(r->content_type, "application/json", 16) != 0)
        return;
    json_error_t je;
    json_t *root = json_loadb(r->body.data ? r->body.data : "", r->body.len,
                              JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!root) {
        fprintf(stderr, "body: %.*s\n", (int)(r->body.len > 2000 ? 2000 : r->body.len),
                r->body.data ? r->body.data : "");
        die("a JSON answer that is not JSON", je.text);
    }
    if (r->status >= 400) {
        json_t *e = json_object_get(root, "error");
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "code")) ||
            !json_is_string(json_object_get(e, "message")))
            die("an error answer without the error shape", r->body.data);
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!W.ready)
        world_up();
    for (int f = FX_ADMIN; f <= FX_VIEW; f++)
        fix_user(f); /* three reads, unless an earlier input changed one */
    const char *p = (const char *)data, *end = p + size;

    /* request line */
    const char *nl = memchr(p, '\n', size);
    size_t ll = nl ? (size_t)(nl - p) : size;
    char *line = strndup(p, ll); /* stops at a NUL too */
    if (!line)
        abort();
    size_t lo = strlen(line);
    if (lo && line[lo - 1] == '\r')
        line[--lo] = 0;
    char *sp = strchr(line, ' ');
    const char *method = line, *target = "/";
    if (sp) {
        *sp = 0;
        target = sp + 1;
    }
    char *path = strdup(target), *query = NULL;
    if (!path)
        abort();
    char *qm = strchr(path, '?');
    if (qm) {
        *qm = 0;
        query = qm + 1;
    }
    p = nl ? nl + 1 : end;

    /* header lines up to an empty line */
    buf_t val[NHDR];
    int have[NHDR];
    memset(val, 0, sizeof val);
    memset(have, 0, sizeof have);
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *l = p;
        p = nl ? nl + 1 : end;
        if (n && l[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        const char *z = memchr(l, 0, n);
        if (z)
            n = (size_t)(z - l);
        const char *colon = memchr(l, ':', n);
        if (!colon || n > MAX_HDR_LINE)
            continue;
        for (int h = 0; h < NHDR; h++) {
            if ((size_t)(colon - l) != strlen(hdr_names[h]) ||
                strncasecmp(l, hdr_names[h], (size_t)(colon - l)) != 0)
                continue;
            const char *v = colon + 1, *ve = l + n;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            /* repeated: joined as web.c joins them */
            if (have[h] && ve > v)
                buf_puts(&val[h], h == 0 ? "; " : ", ");
            have[h] = 1;
            expand(&val[h], v, (size_t)(ve - v));
            if (!val[h].data)
                buf_puts(&val[h], "");
        }
    }

    seam_req_t r;
    memset(&r, 0, sizeof r);
    r.req.method = method;
    r.req.path = path;
    r.req.query = query ? query : "";
    /* the body in its own allocation of exactly its size, so a read past it is caught */
    size_t blen = (size_t)(end - p);
    uint8_t *body = blen ? malloc(blen) : NULL;
    if (blen) {
        if (!body)
            abort();
        memcpy(body, p, blen);
    }
    r.req.body = body;
    r.req.body_len = blen;
    r.req.remote = "127.0.0.1";
    const char **fields[NHDR] = {
        &r.req.cookie,    &r.req.authorization, &r.req.origin,          &r.req.referer,
        &r.req.host,      &r.req.content_type,  &r.req.x_forwarded_for, &r.req.accept_encoding,
        &r.req.user_agent};
    for (int h = 0; h < NHDR; h++)
        *fields[h] = have[h] ? val[h].data : NULL;

    seam_call(&r, api_handle, W.api);
    /* The body and header values are only the handler's (web.h): a deferred request copied
     * what it needs. Release them now so a later use of them is caught under ASan. */
    free(body);
    for (int h = 0; h < NHDR; h++)
        buf_free(&val[h]);
    free(path);
    free(line);
    if (r.deferred && !r.done) {
        W.timed_out = 0;
        uv_timer_start(&W.guard, guard_cb, MAX_WAIT_MS, 0);
        while (!r.done && !W.timed_out)
            uv_run(&W.loop, UV_RUN_ONCE);
        uv_timer_stop(&W.guard);
        if (!r.done)
            die("a deferred request was not completed within 60 s", NULL);
    }
    if (W.verbose)
        fprintf(stderr, "%d%s %.300s\n", r.status, r.deferred ? " (deferred)" : "",
                r.body.data ? r.body.data : "");
    check_answer(&r);
    seam_req_free(&r);
    uv_run(&W.loop, UV_RUN_NOWAIT); /* writer answers of fire-and-forget items (audit, touch) */
    return 0;
}
