/* Admin routes: users, API tokens and the audit trail (docs/api.md "Users, tokens, audit").
 * Every change goes through the store writer with its audit row in the same transaction, and is
 * answered (deferred) once committed. New passwords are hashed on libuv's thread pool first.
 */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_PASSWORD 10
#define MAX_PASSWORD 1024

/* A change waiting for the writer (and maybe first for the password hash). */
typedef struct {
    api_t *a;
    web_pending_t *pending;
    store_item_t *it;  /* the change, until submitted */
    uv_work_t work;
    char *password;    /* sodium_malloc'ed, to hash before submitting */
    int hash_rc;
    int status_ok;     /* 200 or 201 */
    buf_t body;        /* the answer on success */
} change_t;

static void change_free(change_t *c)
{
    if (c->password)
        sodium_free(c->password);
    store_item_free(c->it);
    /* the body may hold a new password or token shown once */
    if (c->body.data)
        sodium_memzero(c->body.data, c->body.cap);
    buf_free(&c->body);
    free(c);
}

static void change_done(api_t *a, store_item_t *it, void *ud)
{
    change_t *c = ud;
    const store_acct_t *x = it->acct;
    char msg[192];
    switch (it->result) {
    case 0:
        web_complete(c->pending, c->status_ok, "application/json", &c->body);
        if (x->op == STORE_ACCT_TOKEN_REVOKE)
            api__live_revoke(a, NULL, x->token_id);
        break;
    case GS_EEXISTS:
        snprintf(msg, sizeof msg, "%s already exists",
                 x->op == STORE_ACCT_USER_ADD ? "a user of this name" : "this token id");
        api__reply_error(c->pending, 409, "exists", msg);
        break;
    case GS_ENOTFOUND:
        api__reply_error(c->pending, 404, "not_found",
                    x->op == STORE_ACCT_TOKEN_REVOKE ? "no such token" : "no such user");
        break;
    case GS_ESTATE:
        api__reply_error(c->pending, 409, "conflict",
                    x->op == STORE_ACCT_TOKEN_REVOKE
                        ? "this token is already revoked"
                        : "this would leave the server without an admin; make another user "
                          "admin first");
        break;
    case GS_EINVAL:
        api__reply_error(c->pending, 400, "bad_request", "invalid user, role or password");
        break;
    default:
        snprintf(msg, sizeof msg, "the change was not stored: %s", err_str(it->result));
        api__reply_error(c->pending, 503, "store_unavailable", msg);
        break;
    }
    if (it->result == 0)
        log_info(x->audit.remote, "%s %s by %s", x->audit.action, x->audit.target, x->audit.user);
    change_free(c);
}

/* Submits c->it; answers 503 at once if that fails. */
static void change_submit(change_t *c)
{
    store_item_t *it = c->it;
    c->it = NULL;
    if (api__submit(c->a, it, change_done, c) < 0) {
        api__reply_error(c->pending, 503, "unavailable", "the server is shutting down");
        change_free(c);
    }
}

static void hash_work(uv_work_t *w)
{
    change_t *c = w->data;
    c->hash_rc = api_password_hash(c->password, c->it->acct->pwhash);
}

static void hash_done(uv_work_t *w, int status)
{
    change_t *c = w->data;
    c->a->pending_work--;
    sodium_free(c->password);
    c->password = NULL;
    if (status < 0 || c->hash_rc < 0 || c->a->stopping) {
        api__reply_error(c->pending, 503, "unavailable", "the password could not be hashed now");
        change_free(c);
        return;
    }
    change_submit(c);
}

/* Starts a change: hashes `password` first when given. Defers the request. */
static void change_start(rq_t *q, store_acct_t *acct, const char *password, int status_ok,
                         buf_t *body)
{
    change_t *c = xcalloc(1, sizeof *c);
    c->a = q->a;
    c->it = store_item_new(STORE_ITEM_ACCOUNT);
    c->it->acct = acct;
    c->status_ok = status_ok;
    if (body) {
        c->body = *body;
        memset(body, 0, sizeof *body);
    }
    if (password) {
        size_t n = strlen(password);
        c->password = sodium_malloc(n + 1);
        if (!c->password) {
            change_free(c);
            api__error(q->resp, 503, "busy", "out of memory");
            return;
        }
        memcpy(c->password, password, n + 1);
        c->work.data = c;
        if (uv_queue_work(q->a->loop, &c->work, hash_work, hash_done) < 0) {
            change_free(c);
            api__error(q->resp, 503, "busy", "cannot hash the password now; retry");
            return;
        }
        q->a->pending_work++;
        c->pending = web_defer(q->req);
        return;
    }
    /* Submitted first: a refusal (shutting down) is then answered here, not deferred; the
     * writer's answer comes on this loop after the handler has returned. */
    store_item_t *it = c->it;
    c->it = NULL;
    if (api__submit(c->a, it, change_done, c) < 0) {
        change_free(c);
        api__error(q->resp, 503, "unavailable", "the server is shutting down");
        return;
    }
    c->pending = web_defer(q->req);
}

void api_password_generate(char out[32])
{
    uint8_t raw[15];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, 32, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

static int password_ok(rq_t *q, const char *pw)
{
    size_t n = strlen(pw);
    if (n < MIN_PASSWORD || n > MAX_PASSWORD) {
        api__error(q->resp, 400, "weak_password",
                   "a password has 10 to 1024 characters; leave it out to have one generated");
        return 0;
    }
    return 1;
}

/* ---- users ------------------------------------------------------------------------------- */

static void user_json(buf_t *b, const store_user_t *u)
{
    buf_puts(b, "{\"name\":");
    buf_json_str(b, u->name, (size_t)-1);
    buf_printf(b, ",\"role\":\"%s\"", store_role_name(u->role));
    api__ts_json(b, "created", u->created_ns);
    api__ts_json(b, "updated", u->updated_ns);
    buf_puts(b, "}");
}

typedef struct {
    buf_t *b;
    int n;
} lst_t;

static int user_cb(void *ud, const store_user_t *u)
{
    lst_t *l = ud;
    if (l->n++)
        buf_putc(l->b, ',');
    user_json(l->b, u);
    return 0;
}

void api__users_get(rq_t *q)
{
    lst_t l = {&q->resp->body, 0};
    buf_puts(l.b, "{\"users\":[");
    int rc = store_user_list(q->a->st, user_cb, &l);
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(l.b, "]}");
    q->resp->status = 200;
}

void api__user_get(rq_t *q)
{
    store_user_t u;
    int rc = store_user_name_ok(q->param) ? store_user_get(q->a->st, q->param, &u) : GS_ENOTFOUND;
    if (rc == GS_ENOTFOUND) {
        api__error(q->resp, 404, "not_found", "no such user");
        return;
    }
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    user_json(&q->resp->body, &u);
    q->resp->status = 200;
}

void api__users_post(rq_t *q)
{
    json_t *root = api__body_object(q);
    if (!root)
        return;
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *role = json_string_value(json_object_get(root, "role"));
    json_t *jpw = json_object_get(root, "password");
    const char *pw = json_string_value(jpw);
    int r = role ? store_role_parse(role) : GS_EINVAL;
    if (!name || !store_user_name_ok(name) || r < 0 || (jpw && !pw)) {
        json_decref(root);
        api__error(q->resp, 400, "bad_request",
                   "expected {\"name\": NAME, \"role\": \"viewer\"|\"operator\"|\"admin\", "
                   "\"password\": optional} (NAME: 1..64 of A-Z a-z 0-9 . _ @ -)");
        return;
    }
    if (pw && !password_ok(q, pw)) {
        json_decref(root);
        return;
    }
    char gen[32] = "";
    if (!pw)
        api_password_generate(gen);
    char target[96];
    snprintf(target, sizeof target, "user %s", name);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_USER_ADD, "user.add", target);
    snprintf(c->user, sizeof c->user, "%s", name);
    c->role = r;
    snprintf(c->audit.detail, sizeof c->audit.detail, "role %s", store_role_name(r));
    buf_t body = {0};
    store_user_t u = {.role = r, .created_ns = time_utc_ns()};
    u.updated_ns = u.created_ns;
    snprintf(u.name, sizeof u.name, "%s", name);
    user_json(&body, &u);
    if (gen[0]) {
        body.len--; /* reopen the object: the generated password is shown this once */
        buf_puts(&body, ",\"password\":");
        buf_json_str(&body, gen, (size_t)-1);
        buf_puts(&body, "}");
    }
    change_start(q, c, pw ? pw : gen, 201, &body);
    if (pw)
        sodium_memzero((void *)pw, strlen(pw));
    sodium_memzero(gen, sizeof gen);
    json_decref(root);
}

void api__user_patch(rq_t *q)
{
    if (!store_user_name_ok(q->param)) {
        api__error(q->resp, 404, "not_found", "no such user");
        return;
    }
    json_t *root = api__body_object(q);
    if (!root)
        return;
    const char *role = json_string_value(json_object_get(root, "role"));
    json_t *jpw = json_object_get(root, "password");
    const char *pw = json_string_value(jpw);
    int r = role ? store_role_parse(role) : 0;
    if ((!role && !jpw) || (role && jpw) || r < 0 || (jpw && !pw)) {
        json_decref(root);
        api__error(q->resp, 400, "bad_request",
                   "expected {\"role\": \"viewer\"|\"operator\"|\"admin\"} or {\"password\": "
                   "NEW}, one per request");
        return;
    }
    if (pw && !password_ok(q, pw)) {
        json_decref(root);
        return;
    }
    char target[96];
    snprintf(target, sizeof target, "user %s", q->param);
    store_acct_t *c =
        api__acct_new(q, role ? STORE_ACCT_USER_ROLE : STORE_ACCT_USER_PASSWD,
                      role ? "user.role" : "user.passwd", target);
    snprintf(c->user, sizeof c->user, "%s", q->param);
    c->role = r;
    if (role)
        snprintf(c->audit.detail, sizeof c->audit.detail, "role %s", store_role_name(r));
    buf_t body = {0};
    buf_puts(&body, "{\"name\":");
    buf_json_str(&body, q->param, (size_t)-1);
    if (role)
        buf_printf(&body, ",\"role\":\"%s\"}", store_role_name(r));
    else
        buf_puts(&body, ",\"password_changed\":true}");
    change_start(q, c, pw, 200, &body);
    if (pw)
        sodium_memzero((void *)pw, strlen(pw));
    json_decref(root);
}

void api__user_delete(rq_t *q)
{
    if (!store_user_name_ok(q->param)) {
        api__error(q->resp, 404, "not_found", "no such user");
        return;
    }
    char target[96];
    snprintf(target, sizeof target, "user %s", q->param);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_USER_REMOVE, "user.remove", target);
    snprintf(c->user, sizeof c->user, "%s", q->param);
    buf_t body = {0};
    buf_puts(&body, "{\"removed\":");
    buf_json_str(&body, q->param, (size_t)-1);
    buf_puts(&body, "}");
    change_start(q, c, NULL, 200, &body);
}

/* ---- tokens ------------------------------------------------------------------------------ */

static void token_json(buf_t *b, const store_token_t *t)
{
    buf_printf(b, "{\"id\":\"%s\",\"user\":", t->id);
    buf_json_str(b, t->user, (size_t)-1);
    buf_puts(b, ",\"name\":");
    buf_json_str(b, t->name, (size_t)-1);
    api__ts_json(b, "created", t->created_ns);
    api__ts_json(b, "expires", t->expires_ns);
    api__ts_json(b, "last_used", t->last_used_ns);
    api__ts_json(b, "revoked", t->revoked_ns);
    buf_puts(b, "}");
}

static int token_cb(void *ud, const store_token_t *t)
{
    lst_t *l = ud;
    if (l->n++)
        buf_putc(l->b, ',');
    token_json(l->b, t);
    return 0;
}

void api__tokens_get(rq_t *q)
{
    char user[STORE_USER_MAX + 1];
    int has = api__qparam(q->req->query, "user", user, sizeof user);
    if (has < 0 || (has && !store_user_name_ok(user))) {
        api__error(q->resp, 400, "bad_request", "user: a user name");
        return;
    }
    lst_t l = {&q->resp->body, 0};
    buf_puts(l.b, "{\"tokens\":[");
    int rc = store_token_list(q->a->st, has ? user : NULL, token_cb, &l);
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(l.b, "]}");
    q->resp->status = 200;
}

void api__tokens_post(rq_t *q)
{
    json_t *root = api__body_object(q);
    if (!root)
        return;
    json_t *ju = json_object_get(root, "user"), *jn = json_object_get(root, "name"),
           *je = json_object_get(root, "expires_days");
    const char *user = ju ? json_string_value(ju) : q->who.user;
    const char *label = jn ? json_string_value(jn) : "";
    if (!user || !store_user_name_ok(user) || !label || strlen(label) > 64 ||
        (je && (!json_is_integer(je) || json_integer_value(je) < 1 ||
                json_integer_value(je) > 3650))) {
        json_decref(root);
        api__error(q->resp, 400, "bad_request",
                   "expected {\"user\": NAME (default: you), \"name\": LABEL (<= 64 bytes), "
                   "\"expires_days\": 1..3650 (default: never)}");
        return;
    }
    store_token_t t;
    memset(&t, 0, sizeof t);
    char value[128];
    uint8_t h[STORE_HASH_LEN];
    api_token_make(t.id, value, h);
    snprintf(t.user, sizeof t.user, "%s", user);
    snprintf(t.name, sizeof t.name, "%s", label);
    t.created_ns = time_utc_ns();
    t.expires_ns = je ? t.created_ns + json_integer_value(je) * 86400LL * 1000000000LL : 0;
    char target[96];
    snprintf(target, sizeof target, "token %s", t.id);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_TOKEN_ADD, "token.create", target);
    snprintf(c->user, sizeof c->user, "%s", user);
    snprintf(c->token_id, sizeof c->token_id, "%s", t.id);
    snprintf(c->label, sizeof c->label, "%s", label);
    memcpy(c->hash, h, sizeof h);
    c->expires_ns = t.expires_ns;
    snprintf(c->audit.detail, sizeof c->audit.detail, "for user %s", user);
    buf_t body = {0};
    token_json(&body, &t);
    body.len--;
    buf_puts(&body, ",\"token\":");
    buf_json_str(&body, value, (size_t)-1); /* shown this once; only its hash is kept */
    buf_puts(&body, "}");
    sodium_memzero(value, sizeof value);
    json_decref(root);
    change_start(q, c, NULL, 201, &body);
}

void api__token_delete(rq_t *q)
{
    uint8_t raw[8];
    if (strlen(q->param) != STORE_TOKEN_ID || hex_decode(q->param, raw, sizeof raw) < 0) {
        api__error(q->resp, 404, "not_found", "no such token");
        return;
    }
    char target[96];
    snprintf(target, sizeof target, "token %s", q->param);
    store_acct_t *c = api__acct_new(q, STORE_ACCT_TOKEN_REVOKE, "token.revoke", target);
    snprintf(c->token_id, sizeof c->token_id, "%s", q->param);
    buf_t body = {0};
    buf_printf(&body, "{\"revoked\":\"%s\"}", q->param);
    change_start(q, c, NULL, 200, &body);
}

/* ---- audit ------------------------------------------------------------------------------- */

typedef struct {
    buf_t *b;
    int n;
    int64_t last_id;
} audit_lst_t;

static int audit_cb(void *ud, const store_audit_t *au)
{
    audit_lst_t *l = ud;
    char t[40];
    if (l->n++)
        buf_putc(l->b, ',');
    buf_printf(l->b, "{\"id\":%lld,\"time\":\"%s\",\"user\":", (long long)au->id,
               time_fmt_utc(au->time_ns, t, sizeof t));
    if (au->user[0])
        buf_json_str(l->b, au->user, (size_t)-1);
    else
        buf_puts(l->b, "null");
    buf_puts(l->b, ",\"remote\":");
    buf_json_str(l->b, au->remote, (size_t)-1);
    buf_puts(l->b, ",\"action\":");
    buf_json_str(l->b, au->action, (size_t)-1);
    buf_puts(l->b, ",\"target\":");
    buf_json_str(l->b, au->target, (size_t)-1);
    buf_puts(l->b, ",\"outcome\":");
    buf_json_str(l->b, au->outcome, (size_t)-1);
    buf_puts(l->b, ",\"detail\":");
    buf_json_str(l->b, au->detail, (size_t)-1);
    buf_puts(l->b, "}");
    l->last_id = au->id;
    return 0;
}

void api__audit_get(rq_t *q)
{
    const char *qs = q->req->query;
    char user[STORE_USER_MAX + 1], action[40], outcome[16];
    store_audit_filter_t f = {.limit = 100};
    int rc;
    if (api__rest_list_params(q, &f.from_ns, &f.to_ns, &f.limit, 1000, &f.before_id) < 0)
        return;
    if ((rc = api__qparam(qs, "user", user, sizeof user)) < 0 ||
        (rc && !store_user_name_ok(user))) {
        api__error(q->resp, 400, "bad_request", "user: a user name");
        return;
    }
    f.user = rc ? user : NULL;
    if ((rc = api__qparam(qs, "action", action, sizeof action)) < 0) {
        api__error(q->resp, 400, "bad_request", "action: too long");
        return;
    }
    f.action = rc ? action : NULL;
    if ((rc = api__qparam(qs, "outcome", outcome, sizeof outcome)) < 0) {
        api__error(q->resp, 400, "bad_request", "outcome: ok, failed or denied");
        return;
    }
    f.outcome = rc ? outcome : NULL;
    audit_lst_t l = {&q->resp->body, 0, 0};
    buf_puts(l.b, "{\"audit\":[");
    rc = store_audit_list(q->a->st, &f, audit_cb, &l);
    if (rc < 0) {
        api__error(q->resp, 500, "internal", err_str(rc));
        return;
    }
    buf_puts(l.b, "],\"next_before\":");
    if (l.n == f.limit)
        buf_printf(l.b, "%lld}", (long long)l.last_id);
    else
        buf_puts(l.b, "null}");
    q->resp->status = 200;
}
