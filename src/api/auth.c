/* Who is asking: login sessions (cookie), API tokens (Bearer), logging in and out, and the
 * login rate limits. Contract of each function in internal.h; the rules in docs/api.md
 * "Authentication".
 *
 * Secrets: a session cookie and a token are 256 random bits; the database keeps only their
 * BLAKE2b-256 hash (a stolen database opens no session). Passwords are checked with argon2id
 * (crypto_pwhash_str_verify) on libuv's thread pool, never on the loop: one check costs about
 * 0.1 s of CPU and 64 MiB. A login for a user that does not exist is checked against a dummy
 * hash, so the answer takes as long and says the same as a wrong password.
 *
 * Rate limits (failures in a 15-minute window; docs/api.md): per address 30; per user name and
 * address 10; per user name over all addresses 100, applied only to addresses that have already
 * failed for that name. A user typing the right password from an address that has not failed is
 * therefore never locked out by someone guessing from elsewhere, while each guessing address
 * gets at most 10 tries per name and 30 in all.
 */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAIL_WINDOW_NS  (900LL * 1000000000LL)
#define FAIL_PER_ADDR   30
#define FAIL_PER_PAIR   10
#define FAIL_PER_USER   100
#define MAX_PW_JOBS     16 /* password checks queued or running at once */
#define TOUCH_EVERY_NS  (60LL * 1000000000LL)
#define MAX_PASSWORD    1024

int api_password_hash(const char *password, char out[STORE_PWHASH_MAX])
{
    return crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? 0
               : GS_ENOMEM;
}

void api__hash_secret(const char *value, size_t n, uint8_t hash[STORE_HASH_LEN])
{
    crypto_generichash(hash, STORE_HASH_LEN, (const unsigned char *)value, n, NULL, 0);
}

void api__new_secret(char value[64], uint8_t hash[STORE_HASH_LEN])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(value, 64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    api__hash_secret(value, strlen(value), hash);
}

void api_token_make(char id[STORE_TOKEN_ID + 1], char value[128], uint8_t hash[STORE_HASH_LEN])
{
    uint8_t rid[STORE_TOKEN_ID / 2];
    char secret[64];
    randombytes_buf(rid, sizeof rid);
    hex_encode(rid, sizeof rid, id);
    api__new_secret(secret, hash);
    snprintf(value, 128, API_TOKEN_PREFIX "%s_%s", id, secret);
    sodium_memzero(secret, sizeof secret);
    api__hash_secret(value, strlen(value), hash); /* the whole value is the credential */
}

/* ---- failure counters -------------------------------------------------------------------- */

static fail_t *fail_get(api_t *a, const char *key, int create, int64_t now)
{
    fail_t *f = hmap_get(&a->fails, key);
    if (f && now - f->window_ns >= FAIL_WINDOW_NS) {
        f->window_ns = now;
        f->count = 0;
    }
    if (!f && create) {
        f = xcalloc(1, sizeof *f);
        f->window_ns = now;
        hmap_put(&a->fails, key, f);
    }
    return f;
}

static void fail_keys(const char *user, const char *addr, char ka[96], char ku[96], char kp[192])
{
    snprintf(ka, 96, "a:%s", addr);
    snprintf(ku, 96, "u:%s", user);
    snprintf(kp, 192, "p:%s|%s", user, addr);
}

/* Seconds until the caller may try again (0: now). */
static int login_retry_after(api_t *a, const char *user, const char *addr)
{
    char ka[96], ku[96], kp[192];
    fail_keys(user, addr, ka, ku, kp);
    int64_t now = time_mono_ns();
    fail_t *fa = fail_get(a, ka, 0, now), *fu = fail_get(a, ku, 0, now), *fp = fail_get(a, kp, 0, now);
    fail_t *over = NULL;
    if (fa && fa->count >= FAIL_PER_ADDR)
        over = fa;
    else if (fp && fp->count >= FAIL_PER_PAIR)
        over = fp;
    else if (fp && fp->count > 0 && fu && fu->count >= FAIL_PER_USER)
        over = fu;
    if (!over)
        return 0;
    int64_t left = over->window_ns + FAIL_WINDOW_NS - now;
    return (int)(left / 1000000000LL) + 1;
}

static void login_failed(api_t *a, const char *user, const char *addr)
{
    char ka[96], ku[96], kp[192];
    fail_keys(user, addr, ka, ku, kp);
    int64_t now = time_mono_ns();
    fail_get(a, ka, 1, now)->count++;
    fail_get(a, ku, 1, now)->count++;
    fail_get(a, kp, 1, now)->count++;
}

void api__fails_sweep(api_t *a)
{
    int64_t now = time_mono_ns();
    size_t pos = 0;
    const char *k;
    void *v;
    /* hmap_next tolerates deleting the entry just returned (core/hmap.h). */
    while (hmap_next(&a->fails, &pos, &k, &v)) {
        fail_t *f = v;
        if (now - f->window_ns >= FAIL_WINDOW_NS) {
            hmap_del(&a->fails, k);
            free(f);
        }
    }
}

/* ---- authenticate ------------------------------------------------------------------------ */

/* The value of cookie `name` in a Cookie header ("a=1; b=2"): start and length, or NULL. */
static const char *cookie_value(const char *header, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *p = header; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t pl = strcspn(p, ";");
        if (pl > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            *len = pl - nl - 1;
            return p + nl + 1;
        }
        p += pl;
    }
    return NULL;
}

static void touch(rq_t *q, int op, int64_t last_used_ns, int64_t now)
{
    if (now - last_used_ns < TOUCH_EVERY_NS)
        return;
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    store_acct_t *c = it->acct = xcalloc(1, sizeof *c);
    c->op = op;
    c->when_ns = now;
    memcpy(c->hash, q->who.session_hash, STORE_HASH_LEN);
    snprintf(c->token_id, sizeof c->token_id, "%s", q->who.token_id);
    api__submit(q->a, it, NULL, NULL);
}

int api__authenticate(rq_t *q)
{
    const web_request_t *req = q->req;
    int64_t now = time_utc_ns();
    if (req->authorization) {
        const char *v = req->authorization;
        if (strncasecmp(v, "Bearer ", 7) != 0) {
            q->auth_err = "unsupported Authorization scheme: use Bearer <token>";
            return 0;
        }
        v += 7;
        while (*v == ' ')
            v++;
        size_t n = strlen(v);
        uint8_t h[STORE_HASH_LEN];
        store_token_t t;
        api__hash_secret(v, n, h);
        int rc = n > 200 ? GS_ENOTFOUND : store_token_find(q->a->st, h, &t);
        if (rc == GS_ENOTFOUND) {
            q->auth_err = "unknown token";
        } else if (rc < 0) {
            q->auth_err = "the credentials could not be checked (database error)";
        } else if (t.revoked_ns) {
            q->auth_err = "this token was revoked";
        } else if (t.expires_ns && now >= t.expires_ns) {
            q->auth_err = "this token has expired";
        } else {
            q->who.role = t.role;
            q->who.via_token = 1;
            memcpy(q->who.session_hash, h, STORE_HASH_LEN);
            snprintf(q->who.user, sizeof q->who.user, "%s", t.user);
            snprintf(q->who.token_id, sizeof q->who.token_id, "%s", t.id);
            touch(q, STORE_ACCT_TOKEN_TOUCH, t.last_used_ns, now);
        }
        if (q->auth_err)
            log_limited(LOG_INFO, q->remote, "API token refused: %s", q->auth_err);
        return 0;
    }
    size_t n = 0;
    const char *v = cookie_value(req->cookie, API_COOKIE, &n);
    if (!v)
        return 0;
    store_login_t l;
    uint8_t h[STORE_HASH_LEN];
    api__hash_secret(v, n, h);
    int rc = store_login_find(q->a->st, h, &l);
    if (rc == GS_ENOTFOUND) {
        q->auth_err = "not logged in (the session ended or is unknown)";
    } else if (rc < 0) {
        q->auth_err = "the credentials could not be checked (database error)";
    } else if (now >= l.expires_ns ||
               now - l.last_used_ns > (int64_t)q->a->session_idle_s * 1000000000LL) {
        q->auth_err = "the session has expired; log in again";
    } else {
        q->who.role = l.role;
        q->who.via_token = 0;
        memcpy(q->who.session_hash, h, STORE_HASH_LEN);
        snprintf(q->who.user, sizeof q->who.user, "%s", l.user);
        touch(q, STORE_ACCT_LOGIN_TOUCH, l.last_used_ns, now);
    }
    return 0;
}

/* ---- login ------------------------------------------------------------------------------- */

typedef struct {
    api_t *a;
    web_pending_t *pending;
    uv_work_t work;
    char user[STORE_USER_MAX + 1];
    char remote[64];
    char hash[STORE_PWHASH_MAX]; /* the stored argon2id string (or the dummy) */
    char *password;              /* sodium_malloc'ed, wiped and freed after the check */
    int known;                   /* the user exists */
    int ok;                      /* the password matched (set by the work) */
    char cookie[64];             /* the new session's value */
    int64_t expires_ns;
} login_t;

static void login_free(login_t *l)
{
    if (l->password)
        sodium_free(l->password);
    sodium_memzero(l->cookie, sizeof l->cookie);
    free(l);
}

static void login_work(uv_work_t *w)
{
    login_t *l = w->data;
    l->ok = crypto_pwhash_str_verify(l->hash, l->password, strlen(l->password)) == 0 && l->known;
}

static void login_stored(api_t *a, store_item_t *it, void *ud)
{
    login_t *l = ud;
    (void)a;
    if (it->result < 0) {
        log_warn(l->remote, "login of %s succeeded but its session could not be stored: %s",
                 l->user, err_str(it->result));
        api__reply_error(l->pending, 503, "store_unavailable",
                          "the session could not be stored; try again");
        login_free(l);
        return;
    }
    log_info(l->remote, "user %s logged in", l->user);
    buf_t body = {0}, hdr = {0};
    char t[40];
    buf_puts(&body, "{\"user\":");
    buf_json_str(&body, l->user, (size_t)-1);
    buf_printf(&body, ",\"role\":\"%s\",\"via\":\"cookie\",\"expires\":\"%s\"}",
               store_role_name(it->acct->role), time_fmt_utc(l->expires_ns, t, sizeof t));
    buf_printf(&hdr,
               "Set-Cookie: " API_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s\r\n",
               l->cookie, l->a->session_max_s, l->a->tls ? "; Secure" : "");
    web_complete_h(l->pending, 200, "application/json", &hdr, &body);
    buf_free(&hdr);
    buf_free(&body);
    login_free(l);
}

static void login_checked(uv_work_t *w, int status)
{
    login_t *l = w->data;
    api_t *a = l->a;
    a->pending_work--;
    if (status < 0 || a->stopping) {
        api__reply_error(l->pending, 503, "unavailable", "the server is shutting down");
        login_free(l);
        return;
    }
    sodium_free(l->password);
    l->password = NULL;
    if (!l->ok) {
        login_failed(a, l->user, l->remote);
        log_limited(LOG_WARN, l->remote, "failed login as \"%s\"%s", l->user,
                    l->known ? "" : " (no such user)");
        api__audit(a, l->user, l->remote, "login", NULL, "failed",
                   l->known ? "wrong password" : "no such user");
        api__reply_error(l->pending, 401, "bad_credentials", "wrong user name or password");
        login_free(l);
        return;
    }
    /* The session exists once the writer has committed it: only then is the cookie usable. */
    store_user_t u;
    int role = store_user_get(a->st, l->user, &u) == 0 ? u.role : STORE_ROLE_VIEWER;
    sodium_memzero(&u, sizeof u);
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    store_acct_t *c = it->acct = xcalloc(1, sizeof *c);
    c->op = STORE_ACCT_LOGIN_ADD;
    c->role = role; /* (not written: the reply reads it back from here) */
    uint8_t h[STORE_HASH_LEN];
    api__new_secret(l->cookie, h);
    memcpy(c->hash, h, sizeof h);
    snprintf(c->user, sizeof c->user, "%s", l->user);
    snprintf(c->remote, sizeof c->remote, "%s", l->remote);
    l->expires_ns = time_utc_ns() + (int64_t)a->session_max_s * 1000000000LL;
    c->expires_ns = l->expires_ns;
    c->has_audit = 1;
    snprintf(c->audit.user, sizeof c->audit.user, "%s", l->user);
    snprintf(c->audit.remote, sizeof c->audit.remote, "%s", l->remote);
    snprintf(c->audit.action, sizeof c->audit.action, "login");
    snprintf(c->audit.outcome, sizeof c->audit.outcome, "ok");
    if (api__submit(a, it, login_stored, l) < 0) {
        api__reply_error(l->pending, 503, "unavailable", "the server is shutting down");
        login_free(l);
    }
}

void api__session_post(rq_t *q)
{
    api_t *a = q->a;
    json_t *root = api__body_object(q);
    if (!root)
        return;
    const char *user = json_string_value(json_object_get(root, "user"));
    const char *pw = json_string_value(json_object_get(root, "password"));
    if (!user || !pw || !store_user_name_ok(user) || strlen(pw) > MAX_PASSWORD) {
        json_decref(root);
        api__error(q->resp, 400, "bad_request",
                   "expected {\"user\": NAME, \"password\": PASSWORD} (NAME: 1..64 of "
                   "A-Z a-z 0-9 . _ @ -; PASSWORD at most 1024 bytes)");
        return;
    }
    int wait = login_retry_after(a, user, q->remote);
    if (wait > 0) {
        log_limited(LOG_WARN, q->remote, "login as \"%s\" refused: too many failed logins", user);
        json_decref(root); /* (user points into it) */
        api__error(q->resp, 429, "too_many_attempts",
                   "too many failed logins from this address or for this user; wait and retry");
        buf_printf(&q->resp->headers, "Retry-After: %d\r\n", wait);
        return;
    }
    if (a->pending_work >= MAX_PW_JOBS) {
        json_decref(root);
        api__error(q->resp, 503, "busy", "too many logins at once; retry in a second");
        buf_puts(&q->resp->headers, "Retry-After: 1\r\n");
        return;
    }
    login_t *l = xcalloc(1, sizeof *l);
    l->a = a;
    snprintf(l->user, sizeof l->user, "%s", user);
    snprintf(l->remote, sizeof l->remote, "%s", q->remote);
    size_t pl = strlen(pw);
    l->password = sodium_malloc(pl + 1);
    if (!l->password) {
        json_decref(root);
        free(l);
        api__error(q->resp, 503, "busy", "out of memory");
        return;
    }
    memcpy(l->password, pw, pl + 1);
    /* jansson's copy of the body: wipe the password before giving the memory back */
    sodium_memzero((void *)pw, pl);
    json_decref(root);
    store_user_t u;
    int rc = store_user_get(a->st, l->user, &u);
    l->known = rc == 0;
    snprintf(l->hash, sizeof l->hash, "%s", l->known ? u.pwhash : a->dummy_hash);
    sodium_memzero(&u, sizeof u);
    if (rc < 0 && rc != GS_ENOTFOUND) {
        login_free(l);
        api__error(q->resp, 503, "store_unavailable", "the user database could not be read");
        return;
    }
    l->work.data = l;
    if (uv_queue_work(a->loop, &l->work, login_work, login_checked) < 0) {
        login_free(l);
        api__error(q->resp, 503, "busy", "cannot check the password now; retry");
        return;
    }
    a->pending_work++;
    l->pending = web_defer(q->req);
}

void api__session_get(rq_t *q)
{
    buf_t *b = &q->resp->body;
    buf_puts(b, "{\"user\":");
    buf_json_str(b, q->who.user, (size_t)-1);
    buf_printf(b, ",\"role\":\"%s\",\"via\":\"%s\"", store_role_name(q->who.role),
               q->who.via_token ? "token" : "cookie");
    if (q->who.via_token)
        buf_printf(b, ",\"token_id\":\"%s\"", q->who.token_id);
    buf_puts(b, "}");
    q->resp->status = 200;
}

typedef struct {
    web_pending_t *pending;
    int tls;
    uint8_t hash[STORE_HASH_LEN];
} logout_t;

static void logout_done(api_t *a, store_item_t *it, void *ud)
{
    logout_t *x = ud;
    buf_t hdr = {0}, body = {0};
    if (it->result < 0) {
        api__reply_error(x->pending, 503, "store_unavailable",
                         "the session could not be ended; retry");
    } else {
        buf_printf(&hdr,
                   "Set-Cookie: " API_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s\r\n",
                   x->tls ? "; Secure" : "");
        buf_puts(&body, "{\"logged_out\":true}");
        api__live_revoke(a, x->hash, NULL);
        web_complete_h(x->pending, 200, "application/json", &hdr, &body);
    }
    buf_free(&hdr);
    buf_free(&body);
    free(x);
}

void api__session_delete(rq_t *q)
{
    if (q->who.via_token) {
        api__error(q->resp, 400, "not_a_session",
                   "this request is authenticated by a token, not a session; revoke tokens with "
                   "DELETE /api/v1/tokens/{id}");
        return;
    }
    store_acct_t *c = api__acct_new(q, STORE_ACCT_LOGIN_REMOVE, "logout", NULL);
    memcpy(c->hash, q->who.session_hash, STORE_HASH_LEN);
    logout_t *x = xcalloc(1, sizeof *x);
    x->tls = q->a->tls;
    memcpy(x->hash, q->who.session_hash, STORE_HASH_LEN);
    if (api__acct_submit(q, c, logout_done, x) < 0) {
        free(x);
        api__error(q->resp, 503, "unavailable", "the server is shutting down");
        return;
    }
    log_info(q->remote, "user %s logged out", q->who.user);
    x->pending = web_defer(q->req);
}
