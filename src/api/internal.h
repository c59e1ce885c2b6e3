/* api internals shared by the files of src/api; not part of the contract.
 *
 *   api.c     api_new/stop/free, the router (Host, auth, role, CSRF), the writer hand-back
 *   auth.c    who is asking: login sessions, API tokens, login rate limits, password hashing
 *   routes.c  the route table and the terminal, command, analysis and metrics handlers
 *   admin.c   users, tokens and the audit trail (admin routes)
 *   util.c    the error shape, query parameters, times
 */
#ifndef GS_API_INTERNAL_H
#define GS_API_INTERNAL_H

#include "api/api.h"

#include "core/hmap.h"
#include "core/util.h"

#include <uv.h>

#define API_COOKIE       "gs_session"
#define API_TOKEN_PREFIX "gst_"

enum { ROLE_PUBLIC = 0 }; /* and STORE_ROLE_VIEWER / OPERATOR / ADMIN */

/* Who is asking, once authenticated. */
typedef struct {
    int role;                      /* ROLE_PUBLIC when not authenticated */
    char user[STORE_USER_MAX + 1]; /* "" when not authenticated */
    int via_token;                 /* 1: Bearer token, 0: session cookie */
    char token_id[STORE_TOKEN_ID + 1];
    uint8_t session_hash[STORE_HASH_LEN]; /* via cookie */
} principal_t;

/* One request being routed. */
typedef struct {
    api_t *a;
    const web_request_t *req;
    web_response_t *resp;
    principal_t who;
    const char *auth_err;       /* why a credential that was sent is not valid (static) */
    char remote[64];            /* the client's address (X-Forwarded-For from a trusted proxy) */
    const char *param;          /* the {id} path segment, decoded and checked, or NULL */
    char param_buf[STORE_USER_MAX + 1 > 64 ? STORE_USER_MAX + 1 : 64];
} rq_t;

typedef void (*route_fn)(rq_t *q);

typedef struct {
    const char *method;
    const char *pattern; /* "/api/v1/terminals/{id}/commands": one {..} segment at most */
    int role;            /* least role allowed (ROLE_PUBLIC: anyone) */
    route_fn fn;
} route_t;

extern const route_t api__routes[];
extern const size_t api__nroutes;

/* Login failure counters of one key ("a:<addr>", "u:<user>", "p:<user>|<addr>"). */
typedef struct {
    int64_t window_ns; /* start of the current window */
    int count;
} fail_t;

struct api {
    uv_loop_t *loop;
    gw_t *gw;
    store_t *st;
    ana_t *ana;
    web_t *web;
    int64_t started_ns;
    int with_latest; /* terminal_json includes the latest analysis values */
    int max_pending, create_timeout_s;
    int session_idle_s, session_max_s;
    int metrics_public, tls;
    char **hosts; /* accepted Host names (lower case, without port), NULL-terminated */
    char **proxies;
    int port;

    /* writer answers come back through this async (writer thread → loop) */
    uv_async_t async;
    uv_mutex_t done_lock;
    store_item_t *done_head, *done_tail;
    int stopping;
    int pending_work; /* password checks on the thread pool */

    hmap_t fails; /* login failures: key -> fail_t */
    uv_timer_t sweep; /* forgets old login failures once a minute */
    char dummy_hash[128]; /* an argon2id string to verify against for unknown users */
};

/* ---- util.c ---- */

/* Fills resp with {"error":{"code","message"}} and status. Returns 0. */
int api__error(web_response_t *r, int status, const char *code, const char *msg);
/* Value of query parameter `name` (percent-decoded) into out; 1 if present, 0 if not, GS_ERANGE
 * if it does not fit or decodes to a NUL. */
int api__qparam(const char *query, const char *name, char *out, size_t cap);
/* `,"name":"<RFC 3339 UTC>"` or `,"name":null` for 0. */
void api__ts_json(buf_t *b, const char *name, int64_t ns);
/* 1 if the request's body is declared JSON (Content-Type application/json, any parameters). */
int api__is_json(const web_request_t *req);
/* Parses the body as a JSON object (jansson) or answers 400/415 and returns NULL. */
struct json_t *api__body_object(rq_t *q);

/* ---- openapi.c ---- */

/* GET /api/v1/openapi.json: the embedded docs/openapi.json. */
void api__openapi(rq_t *q);

/* ---- api.c: the writer hand-back ---- */

/* Submits an item whose completion `done(it, ud)` runs on the API's loop (the item is freed
 * after done returns). Returns 0 or GS_ESTATE (shutting down / writer stopped: the item is
 * freed and done is not called). */
int api__submit(api_t *a, store_item_t *it, void (*done)(api_t *a, store_item_t *it, void *ud),
                void *ud);

/* An account change with its audit row (action, target, outcome "ok") through the writer;
 * answered, when it commits, by done (may be NULL: fire and forget). */
store_acct_t *api__acct_new(rq_t *q, int op, const char *action, const char *target);
int api__acct_submit(rq_t *q, store_acct_t *acct,
                     void (*done)(api_t *a, store_item_t *it, void *ud), void *ud);
/* Only an audit row (e.g. a refused request, a command created). */
void api__audit(api_t *a, const char *user, const char *remote, const char *action,
                const char *target, const char *outcome, const char *detail);

/* ---- auth.c ---- */

/* Resolves q->who from the Authorization header or the session cookie. Returns 0 (q->who.role
 * is ROLE_PUBLIC when no credential was sent), or answers 401 and returns -1 when a credential
 * was sent but is not valid (unknown, expired, revoked). */
int api__authenticate(rq_t *q);
/* POST/GET/DELETE /api/v1/session. */
void api__session_post(rq_t *q);
void api__session_get(rq_t *q);
void api__session_delete(rq_t *q);
/* A new random secret value (43 base64url characters) and its hash. */
void api__new_secret(char value[64], uint8_t hash[STORE_HASH_LEN]);
/* Hash of a presented secret value. */
void api__hash_secret(const char *value, size_t n, uint8_t hash[STORE_HASH_LEN]);
/* Forgets login failures older than their window (called once a minute). */
void api__fails_sweep(api_t *a);

/* ---- routes.c / admin.c handlers referenced by the table ---- */
void api__metrics(rq_t *q);
void api__health(rq_t *q);
void api__terminals(rq_t *q);
void api__terminal(rq_t *q);
void api__terminal_latest(rq_t *q);
void api__terminal_events(rq_t *q);
void api__terminal_measurements(rq_t *q);
void api__terminal_phasors(rq_t *q);
void api__terminal_commands_get(rq_t *q);
void api__terminal_commands_post(rq_t *q);
void api__events(rq_t *q);
void api__users_get(rq_t *q);
void api__users_post(rq_t *q);
void api__user_get(rq_t *q);
void api__user_patch(rq_t *q);
void api__user_delete(rq_t *q);
void api__tokens_get(rq_t *q);
void api__tokens_post(rq_t *q);
void api__token_delete(rq_t *q);
void api__audit_get(rq_t *q);

#endif
