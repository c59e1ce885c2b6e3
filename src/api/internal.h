/* api internals shared by the files of src/api; not part of the contract.
 *
 *   api.c     api_new/stop/free, the router (Host, auth, role, CSRF), the writer hand-back
 *   auth.c    who is asking: login sessions, API tokens, login rate limits, password hashing
 *   routes.c  the route table and the terminal, command, analysis and metrics handlers
 *   admin.c   users, tokens and the audit trail (admin routes)
 *   util.c    the error shape, query parameters, times
 *   terminals.c  terminal list (filters, paging), create/change/remove, secret rotation,
 *                status and session history
 *   commands.c   fleet-wide command list, one command, cancel
 *   events.c     event lists (filters, paging, acknowledgement), one event, acknowledge
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

typedef struct live_client live_client_t;

/* Who is asking, once authenticated. */
typedef struct {
    int role;                      /* ROLE_PUBLIC when not authenticated */
    char user[STORE_USER_MAX + 1]; /* "" when not authenticated */
    int via_token;                 /* 1: Bearer token, 0: session cookie */
    char token_id[STORE_TOKEN_ID + 1];
    uint8_t session_hash[STORE_HASH_LEN]; /* the credential's hash (cookie or token) */
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
    store_t *st;     /* reads, on this loop's thread */
    store_t *writer; /* writer submissions and its counters (thread-safe calls only) */
    xcall_t *main_q; /* onto the main loop, NULL when this is the main loop */
    xcall_t *web_q;  /* onto this loop: answers from the main loop (api__call_web) */
    uv_mutex_t web_q_lock; /* guards web_q_closed against a post racing api_stop */
    int web_q_closed;
    ana_t *ana;
    cluster_t *cluster; /* NULL on a single node */
    void (*extra_metrics)(void *ud, buf_t *out); /* api_opts_t.extra_metrics (MMS server) */
    void *extra_metrics_ud;
    web_t *web;
    int64_t started_ns;
    int max_pending, create_timeout_s;
    int session_idle_s, session_max_s;
    int metrics_public, tls;
    char **hosts; /* accepted Host names (lower case, without port), NULL-terminated */
    char **proxies;

    /* writer answers come back through this async (writer thread → loop) */
    uv_async_t async;
    uv_mutex_t done_lock;
    store_item_t *done_head, *done_tail;
    int stopping;
    int pending_work; /* password checks on the thread pool */

    /* live feed (live.c): web loop, except interest (under interest_lock), live_clients_any
     * (atomic), wave_last and live_src_dropped (main loop) */
    live_client_t *live_list;
    int live_nclients;
    int live_clients_any;
    int64_t live_subs;
    uint64_t live_sent, live_dropped;
    uint64_t live_src_dropped;
    hmap_t live_topics; /* topic -> subscriber list */
    hmap_t fleet;       /* terminal -> last published fleet state */
    uv_mutex_t interest_lock;
    hmap_t interest;  /* topics with subscribers: the main loop's sources check it */
    hmap_t wave_last; /* terminal -> time of its last waveform frame */
    uv_timer_t live_tick;
    int live_started;

    char web_root[1024]; /* [web] root: serve the app from this folder ("" = compiled in) */
    char web_tiles[512]; /* [web] tiles URL template ("" = none) */
    char web_tiles_origin[300]; /* its origin for the CSP's img-src ("" = none) */
    char web_tiles_attr[256]; /* [web] tiles_attribution */
    struct api_gz *gz;   /* gzip copies of the compiled-in files, made on first request */

    hmap_t fails; /* login failures: key -> fail_t */
    uv_timer_t sweep; /* forgets old login failures once a minute */
    char dummy_hash[128]; /* an argon2id string to verify against for unknown users */
};

/* ---- util.c ---- */

/* Fills resp with {"error":{"code","message"}} and status. Returns 0. */
int api__error(web_response_t *r, int status, const char *code, const char *msg);
/* Answers a deferred request (web_defer) with the error shape; releases the handle. */
void api__reply_error(web_pending_t *p, int status, const char *code, const char *msg);
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

/* Runs fn(arg) on the main loop (gateway and analysis calls): at once when the API is on the
 * main loop, else posted there. 0, or GS_ECLOSED (not run; arg stays the caller's). */
int api__call_main(api_t *a, void (*fn)(void *arg), void *arg);
/* From the main loop: runs fn(arg, 0) on the API's loop, or fn(arg, GS_ECLOSED) there when the
 * API stops first. Returns 0, or GS_ECLOSED when the API has already stopped (fn not called:
 * the caller releases arg, on its own thread). Any thread. */
int api__call_web(api_t *a, void (*fn)(void *arg, int status), void *arg);

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

/* ---- api.c: the router's checks, shared with the live feed's handshake ---- */

/* Host check, authentication and role check of a request (as for a route needing min_role);
 * fills *q (q->who, q->remote). Returns 0, or -1 after answering in resp (400, 401, 403). */
int api__admit(api_t *a, const web_request_t *req, web_response_t *resp, rq_t *q, int min_role);
/* url ("scheme://host[:port]..." as in Origin or Referer) names host (the Host header). */
int api__same_site(const char *url, const char *host);

/* ---- static.c ---- */
/* The web app's files (GET / and /app/FILE): 1 when the path is one of them (answered), 0 when
 * it is not (the router goes on). */
int api__static(rq_t *q);
/* Checks and keeps the [web] tiles settings (api_new): 0 or GS_ECONFIG with err. */
int api__static_init(api_t *a, const char *tiles, const char *attribution, char *err,
                     size_t errlen);
/* Frees what api__static cached (api_free). */
void api__static_free(api_t *a);

/* ---- live.c ---- */
void api__live_init(api_t *a);
/* Enables WebSocket upgrades on w and starts the feed's timer. Web loop. */
int api__live_start(api_t *a, web_t *w);
void api__live_stop(api_t *a);
/* Closes (4401) the live connections of a login session that ended (session_hash) or of a
 * revoked token (token_id, session_hash NULL). Web loop. */
void api__live_revoke(api_t *a, const uint8_t *session_hash, const char *token_id);
void api__live_free(api_t *a);
void api__live_metrics(api_t *a, buf_t *b);

/* The "status" member value of a terminal (null when none received). */
void api__status_json(buf_t *b, const gw_term_info_t *ti);

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
/* An event as GET /events/{id} answers it (E in docs/api.md), appended to b. */
void api__event_json(buf_t *b, const store_pq_event_ack_t *a);
/* The stored event `id` as E into b, read with the API's store connection: 0, GS_ENOTFOUND or
 * a store error (b unchanged then). */
int api__event_get_json(api_t *a, int64_t id, buf_t *b);
void api__users_get(rq_t *q);
void api__users_post(rq_t *q);
void api__user_get(rq_t *q);
void api__user_patch(rq_t *q);
void api__user_delete(rq_t *q);
void api__tokens_get(rq_t *q);
void api__tokens_post(rq_t *q);
void api__token_delete(rq_t *q);
void api__audit_get(rq_t *q);
void api__terminal_waveform(rq_t *q);
/* Trends (trends.c): one quantity of a terminal over time, and the fleet ranking. */
void api__terminal_trend(rq_t *q);
void api__measurements_ranking(rq_t *q);
void api__event_waveform(rq_t *q);
void api__live_plain(rq_t *q);
/* export.c */
void api__terminal_export(rq_t *q);
void api__event_export(rq_t *q);

/* ---- REST resources: terminals, commands, events (terminals.c, commands.c, events.c) ---- */

/* One terminal as JSON: provisioning data from the store merged with the gateway's runtime
 * state (routes.c; with_latest: also the analysis state and latest values). */
void api__terminal_json(api_t *a, buf_t *b, const store_terminal_t *t, int with_latest);

/* Whether terminal id is online: here (the gateway), or, with several nodes, on another node
 * whose heartbeat is fresh (the cluster's copy of the live list; never a database read). Any
 * thread. */
int api__terminal_online(api_t *a, const char *id);
/* The terminal named by the path ({id}): fills *t (no secret) or answers 404 / 500 and returns
 * -1. */
int api__rest_path_terminal(rq_t *q, store_terminal_t *t);
/* A positive integer path segment ({id} of a command or event), or answers 404 with `what`
 * ("no such command") and returns -1. */
int api__rest_path_id(rq_t *q, const char *what, int64_t *id);
/* Common list parameters: from, to (times; default unbounded), limit (1..max_limit; *limit
 * keeps its default when absent) and before (a positive id; 0 when absent; before may be NULL
 * when the list does not page by id). Answers 400 and returns -1 on a bad value. */
int api__rest_list_params(rq_t *q, int64_t *from, int64_t *to, int *limit, int max_limit,
                          int64_t *before);

void api__terminals(rq_t *q);
void api__terminals_post(rq_t *q);
void api__terminal_patch(rq_t *q);
void api__terminal_delete(rq_t *q);
void api__terminal_secret_post(rq_t *q);
void api__terminal_status(rq_t *q);
void api__terminal_sessions(rq_t *q);
void api__commands_get(rq_t *q);
void api__command_get(rq_t *q);
void api__command_delete(rq_t *q);
void api__event_get(rq_t *q);
void api__event_ack(rq_t *q);
/* api__events, api__terminal_events (events.c) and api__terminal_commands_get (commands.c) are
 * declared above. */

/* ---- disk use (dbstats.c, issue 10) ---- */
void api__admin_db(rq_t *q);
/* 1 after answering 507 insufficient_storage when the store reports the disk full, else 0. */
int api__refuse_if_full(rq_t *q);
/* The retention and disk-full metrics of a->writer. */
void api__retention_metrics(api_t *a, buf_t *b);

#endif
