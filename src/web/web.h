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
} web_request_t;

typedef struct {
    int status;               /* HTTP status code; the handler must set it */
    const char *content_type; /* static string, e.g. "application/json" */
    buf_t body;               /* response body; web frees it after sending */
} web_response_t;

/* Application handler. Fills *resp; called once per complete request. */
typedef void (*web_handler_fn)(void *ud, const web_request_t *req, web_response_t *resp);

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
