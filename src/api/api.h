/* api — the HTTP API of the server: REST /api/v1 (docs/api.md), /metrics, authentication
 * (users and roles, login sessions, API tokens), the CSRF and Host checks and the audit trail.
 *
 * The module turns web_request_t into web_response_t (src/web is the transport). Every route is
 * one row of a table (routes.c) that names its method, path pattern, the least role allowed and
 * whether it changes state; the router checks, in this order: Host (against DNS rebinding),
 * authentication (401), role (403), CSRF for state changes (403), then calls the handler. Every
 * error answer has the shape {"error":{"code":"...","message":"..."}}.
 *
 * Threading: all calls and handlers run on the thread of the loop given to api_new (the loop
 * that runs the web server), except api_free. That loop is the main loop, or (the default, docs/
 * decisions/0006-web-thread.md) a loop of its own on the web thread: the API then reads the
 * gateway and the analysis through their thread-safe snapshot calls and the database through
 * its own connection, and asks the main loop to act (a command for a terminal) through main_q,
 * whose answers come back on an xcall queue of the API's loop. Password hashing runs on libuv's
 * thread pool; database changes go through the store writer (items with their own notify,
 * handed back to this loop).
 */
#ifndef GS_API_H
#define GS_API_H

#include <stdint.h>
#include <uv.h>

#include "ana/ana.h"
#include "cluster/cluster.h"
#include "gw/gw.h"
#include "store/store.h"
#include "web/web.h"

typedef struct api api_t;

typedef struct xcall xcall_t;

typedef struct {
    gw_t *gw;
    store_t *st;     /* reads: a connection of the API's loop thread (a reader_only one when that
                        is not the main loop) */
    store_t *writer; /* the store whose writer takes the API's changes (NULL: st) */
    xcall_t *main_q; /* onto the main loop (gateway, analysis), when the API runs on a loop of its
                        own; NULL when it runs on the main loop */
    ana_t *ana;   /* NULL when analysis is disabled */
    cluster_t *cluster; /* this node among several on one PostgreSQL database ([store] backend =
                           postgresql): terminals online on other nodes are listed from its
                           copy of the live list; NULL on a single node */
    int max_pending;      /* [commands] max_pending_per_terminal (for error messages) */
    int create_timeout_s; /* [commands] create_timeout (for error messages) */

    /* [http] settings */
    const char *bind_host;   /* the address the HTTP server is bound to ("" / "*": any) */
    const char *hosts;       /* comma list of accepted Host names; NULL/"" = defaults
                                (bind address, localhost, 127.0.0.1, ::1, the machine's names) */
    const char *trusted_proxies; /* comma list of proxy addresses whose X-Forwarded-For is used */
    int session_idle_s;      /* login session idle expiry (default 8 h) */
    int session_max_s;       /* login session absolute expiry (default 7 days) */
    int metrics_public;      /* 1: /metrics without authentication (default: only when bound to
                                loopback) */
    int tls;                 /* the HTTP port uses TLS: cookies get Secure */
    const char *web_root;    /* [web] root: serve the web app from this folder (NULL/"": the copy
                                compiled into the binary) */
    const char *web_tiles;   /* [web] tiles: map tile URL template (http(s)://host/{z}/{x}/{y}...;
                                NULL/"": none, the map draws a plain background) */
    const char *web_tiles_attribution; /* [web] tiles_attribution: the tiles' credit line */
    /* More /metrics from another server of the process (the MMS server: mmsd_metrics), called
     * on the API's thread; must be thread-safe. NULL: none. */
    void (*extra_metrics)(void *ud, buf_t *out);
    void *extra_metrics_ud;
} api_opts_t;

/* Fills *o with the defaults (no pointers set). */
void api_opts_default(api_opts_t *o);

/* Creates the API on `loop` (the web server's loop). Copies what it needs from *o. Returns 0 or
 * a negative code with a reason in err. */
int api_new(uv_loop_t *loop, const api_opts_t *o, api_t **out, char *err, size_t errlen);

/* Gives the API the web server it answers for (its counters appear in /metrics). */
void api_set_web(api_t *a, web_t *w);

/* The web_handler_fn: routes one request. ud is the api_t. */
void api_handle(void *ud, const web_request_t *req, web_response_t *resp);

/* Begins shutdown on the API's loop thread: no new work is accepted, outstanding password checks
 * and writer answers are released as they arrive, answers from the main loop are refused from
 * now on (their senders release them); the handles close. Call before the loop's last run;
 * api_free after it (and after the store writer has stopped). */
void api_stop(api_t *a);

/* Frees the API after api_stop, the loop's last run and the store writer's end (any thread then,
 * e.g. the main thread after joining the web thread). NULL is a no-op. */
void api_free(api_t *a);

/* ---- Live feed sources (main loop) ----
 * The main loop's observers feed the live feed (docs/api.md "Live feed") through these; each
 * builds a message only when a client subscribed to its topic, and hands it to the API's loop.
 * All are main-loop calls (ud / a: the api_t). */

/* An ana_result_cb: a terminal's latest values, a second of synchrophasors. */
void api_live_result(void *ud, const char *terminal_id, const char *kind, const char *json);
/* An ana_event_cb: a voltage event was stored; `events` subscribers get it as GET /events/{id}
 * answers it (read back on the API's loop). */
void api_live_event(void *ud, const char *terminal_id, int64_t event_id);
/* The JSON object GET /api/v1/events/{id} answers for a stored event, read on st (any store
 * connection; the thread that owns it): for other servers of the same data (the MMS model).
 * Returns 0, GS_ENOTFOUND or a store error. */
int api_event_json(store_t *st, int64_t id, buf_t *b);

/* A gw_cmd_cb: a command created or changed (or `count` expired). */
void api_live_command(void *ud, int64_t cmd_id, const char *terminal_id, int state, int count);
/* A new waveform block of a terminal (call from the gateway's block observer): decimated
 * oscilloscope frames for terminal/{id}/wave subscribers. */
void api_live_block(api_t *a, const char *terminal_id, const gw_block_info_t *b,
                    const uint8_t *samples, size_t len);

/* ---- Credentials (shared with the admin CLI) ---- */

/* Hashes a password with argon2id (crypto_pwhash_str, interactive limits: ~0.1 s and 64 MiB, so
 * never on a loop thread). 0 or GS_ENOMEM. */
int api_password_hash(const char *password, char out[STORE_PWHASH_MAX]);
/* A strong generated password: 120 random bits as 20 base64url characters. */
void api_password_generate(char out[32]);
/* A new API token: its public id, its value "gst_<id>_<43 base64url>" (shown once) and the hash
 * to store. */
void api_token_make(char id[STORE_TOKEN_ID + 1], char value[128], uint8_t hash[STORE_HASH_LEN]);

/* A time as the API and CLI accept it: integer ns since 1970, or RFC 3339 UTC
 * "YYYY-MM-DDTHH:MM:SS[.fff][Z]" (years 1970..2199). 0 or GS_EINVAL. */
int api_parse_time(const char *text, int64_t *out);

/* Route table walk (for the OpenAPI completeness test and `gridsense routes`): calls cb for each
 * registered route with its method, path pattern and least role ("public", "viewer",
 * "operator", "admin"). */
void api_routes(void (*cb)(void *ud, const char *method, const char *pattern, const char *role),
                void *ud);

/* ---- Command verbs (verbs.c) ----
 * Verb names <-> GSTP codes (docs/protocol.md section 8), and "key=value" arguments <-> GSTP
 * TLV, shared by the REST API and `gridsense command send`. */
/* The GSTP verb of a name ("get-status", "capture", ...), or GS_EINVAL. */
int api_verb_parse(const char *name);
/* The name of a GSTP verb ("?" if unknown). */
const char *api_verb_name(int verb);
/* Encodes key=value pairs for verb into TLV; err gets a reason on failure (GS_EINVAL). */
int api_verb_args(int verb, int n, const char *const *kv, uint8_t *out, size_t cap, size_t *len,
                      char *err, size_t errlen);
/* Appends a JSON object describing a TLV argument/result list, with the public argument names
 * and units of `command send` / the REST API (dip and swell in percent, stream a boolean). */
void api_verb_tlv_json(buf_t *b, const uint8_t *tlv, size_t n);
/* Appends a JSON object for one command row. */
void api_command_json(buf_t *b, const store_command_t *c);

/* The database statistics (store_db_stats, store_db_terminal_stats; docs/api.md "Database")
 * as one JSON object appended to b; writer (may be NULL) adds the disk-full state. Thread of
 * st. Returns 0 or GS_EDB. Also `gridsense db stats --json`. */
int api_db_stats_json(store_t *st, store_t *writer, int exact, buf_t *b);

#endif
