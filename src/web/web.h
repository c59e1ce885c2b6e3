/* web — the HTTP server (libwebsockets driven by the application's libuv loop).
 *
 * This first version is transport only: it accepts HTTP/1.1 requests, collects the body (up to
 * WEB_MAX_BODY bytes), hands each request to one application handler and sends the response.
 * Routing and content (REST /api/v1, /metrics) live with the handler. All calls and the handler
 * run on the loop thread.
 */
#ifndef GS_WEB_H
#define GS_WEB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/util.h"

#define WEB_MAX_BODY (64 * 1024)

typedef struct web web_t;

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* decoded path without the query, e.g. "/api/v1/terminals/T1"; lws has
                            already resolved "." / ".." segments */
    const char *query;   /* query string without '?', "" if none; lws decodes it, so web re-encodes
                            the non-empty '&' parts ('%', '&', '+', '#', later '=', spaces and
                            non-ASCII as %XX): parse it with an ordinary query decoder */
    const uint8_t *body; /* request body (NULL if none) */
    size_t body_len;
    const char *remote; /* peer address text */
    void *web_priv_;    /* the transport's own (for web_defer); handlers do not touch it */
} web_request_t;

typedef struct {
    int status;               /* HTTP status code; the handler must set it */
    const char *content_type; /* static string, e.g. "application/json" */
    buf_t body;               /* response body; web frees it after sending */
} web_response_t;

/* Application handler. Fills *resp; called once per complete request. */
typedef void (*web_handler_fn)(void *ud, const web_request_t *req, web_response_t *resp);

/* ---- Deferred responses ----
 * A handler that cannot answer at once (e.g. it waits for the store writer to commit) calls
 * web_defer(req) and returns, leaving resp untouched (anything put in it is discarded). The
 * request then waits until the application calls web_complete on the loop thread, exactly once
 * per handle. The transport gives a deferred request at most WEB_DEFER_MAX_S before it closes
 * the connection without an answer (a backstop against a handle that is never completed; the
 * application should answer well before, e.g. with 503). If the client went away meanwhile
 * (or web_stop ran), web_complete is a safe no-op that only releases the handle and the body. */
typedef struct web_pending web_pending_t;

#define WEB_DEFER_MAX_S 300

/* Marks the request being handled as deferred and returns its handle (never NULL). Call only
 * from inside the handler, at most once per request. Loop thread. */
web_pending_t *web_defer(const web_request_t *req);

/* Answers a deferred request with status (200..599), content_type (a static string; NULL =
 * application/octet-stream) and body (taken over and reset to empty; NULL = no body), and
 * releases the handle. Loop thread. */
void web_complete(web_pending_t *p, int status, const char *content_type, buf_t *body);

/* Starts listening on host:port (port 0 = OS-chosen) with `loop` as lws's foreign loop. host is
 * a numeric IPv4/IPv6 address, or NULL / "" / "*" for any. On failure returns a negative code
 * (-errno from bind, e.g. UV_EADDRINUSE, or GS_EINVAL / GS_EIO) with a one-line reason in err;
 * if lws itself failed, the loop must run once more for lws to release its handles. */
int web_start(uv_loop_t *loop, const char *host, int port, web_handler_fn fn, void *ud, web_t **out,
              char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
int web_port(const web_t *w);

/* Begins shutdown from inside the running loop: stops listening and closes connections (lws
 * needs lws_context_destroy once here and once after uv_run returns). */
void web_stop(web_t *w);

/* Final release after uv_run has returned; web_stop must have run inside the loop before.
 * NULL is a no-op. */
void web_free(web_t *w);

#endif
