/* A stand-in for src/web's deferred-answer calls, for the API fuzz target (api_router).
 *
 * web_defer/web_complete/web_complete_h need a live libwebsockets connection (web_priv_ points
 * into web.c's session), so api_handle cannot defer outside the real transport. The fuzz target
 * links with -Wl,--wrap for each of them (and web_stats, for /metrics), and these __wrap_
 * versions implement the contract of web.h instead, checking that the API keeps it:
 *   - web_defer only from inside the handler, at most once per request;
 *   - web_complete exactly once per handle, never from inside the handler that deferred (web.c
 *     would then send the handler's empty response: a 500), with a status in 200..599 and an
 *     extra header block web would accept (the rules of web.c's xhdr_check).
 * Any breach aborts, which libFuzzer and the replay driver report. What the real transport does
 * with the bytes (lws parsing, 431/413/400 answers) is covered by tests/integ/test_api_malformed.py
 * over a socket. */
#include "api_seam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct web_pending {
    seam_req_t *r; /* the request it answers; NULL once completed */
};

struct web {
    int unused; /* web_stats only needs a non-NULL web_t */
};

static struct web fake_web;
static seam_req_t *in_handler; /* the request whose handler is running, NULL outside */

web_t *seam_web(void)
{
    return &fake_web;
}

static void fail(const char *what)
{
    fprintf(stderr, "api seam: contract broken: %s\n", what);
    abort();
}

const char *seam_check_headers(const buf_t *b)
{
    static const char *const owned[] = {"content-type", "content-length", "connection",
                                        "transfer-encoding"};
    if (b->len > WEB_MAX_RESP_HEADERS)
        return "extra headers too large";
    if (!b->len)
        return NULL; /* also an untouched buf_t, whose data is NULL */
    const char *p = b->data, *end = b->data + b->len;
    while (p < end) {
        const char *colon = p;
        while (colon < end && *colon != ':') {
            unsigned char c = (unsigned char)*colon;
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c && strchr("!#$%&'*+-.^_`|~", c))))
                return "malformed extra header name";
            colon++;
        }
        size_t nlen = (size_t)(colon - p);
        if (colon == end || nlen == 0 || nlen + 1 >= 128)
            return "malformed extra header name";
        for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
            if (strlen(owned[i]) == nlen && strncasecmp(owned[i], p, nlen) == 0)
                return "extra header that web writes itself";
        const char *v = colon + 1;
        while (v < end && *v != '\r' && *v != '\n') {
            unsigned char c = (unsigned char)*v;
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return "control character in extra header value";
            v++;
        }
        if (end - v < 2 || v[0] != '\r' || v[1] != '\n')
            return "extra header line not ended by CRLF";
        p = v + 2;
    }
    return NULL;
}

void seam_call(seam_req_t *r, web_handler_fn fn, void *ud)
{
    web_response_t resp;
    memset(&resp, 0, sizeof resp);
    r->req.web_priv_ = r;
    in_handler = r;
    fn(ud, &r->req, &resp);
    in_handler = NULL;
    r->req.web_priv_ = NULL;
    if (r->deferred) {
        /* web.c discards whatever the handler left in resp */
        buf_free(&resp.body);
        buf_free(&resp.headers);
        return;
    }
    const char *why = seam_check_headers(&resp.headers);
    if (why)
        fail(why);
    r->done = 1;
    r->status = resp.status;
    r->content_type = resp.content_type;
    r->body = resp.body;
    r->headers = resp.headers;
}

void seam_req_free(seam_req_t *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
    if (r->pending)
        r->pending->r = NULL; /* a late completion would find no request (checked there) */
    r->pending = NULL;
}

web_pending_t *__wrap_web_defer(const web_request_t *req);
void __wrap_web_complete_h(web_pending_t *p, int status, const char *content_type, buf_t *headers,
                           buf_t *body);
void __wrap_web_complete(web_pending_t *p, int status, const char *content_type, buf_t *body);
void __wrap_web_stats(const web_t *w, web_stats_t *st);
int __wrap_web_ws_set(web_t *w, const web_ws_cbs_t *cbs);

web_pending_t *__wrap_web_defer(const web_request_t *req)
{
    seam_req_t *r = req->web_priv_;
    if (!r || r != in_handler)
        fail("web_defer outside the handler of its request");
    if (r->deferred)
        fail("web_defer called twice for one request");
    web_pending_t *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->r = r;
    r->pending = p;
    r->deferred = 1;
    return p;
}

void __wrap_web_complete_h(web_pending_t *p, int status, const char *content_type, buf_t *headers,
                           buf_t *body)
{
    if (!p)
        fail("web_complete(NULL)"); /* allowed by web.c, but the API never has a NULL handle */
    seam_req_t *r = p->r;
    if (!r)
        fail("web_complete for a request that is no longer waiting (completed twice?)");
    if (r == in_handler)
        fail("web_complete from inside the handler that deferred (web.c answers 500)");
    if (status < 200 || status > 599)
        fail("deferred answer with a status outside 200..599");
    if (headers) {
        const char *why = seam_check_headers(headers);
        if (why)
            fail(why);
        r->headers = *headers;
        memset(headers, 0, sizeof *headers);
    }
    if (body) {
        r->body = *body;
        memset(body, 0, sizeof *body);
    }
    r->status = status;
    r->content_type = content_type ? content_type : "application/octet-stream";
    r->done = 1;
    r->pending = NULL;
    free(p); /* a second completion of p is a use after free (caught under ASan) */
}

void __wrap_web_complete(web_pending_t *p, int status, const char *content_type, buf_t *body)
{
    __wrap_web_complete_h(p, status, content_type, NULL, body);
}

/* The live feed's WebSocket callbacks (api_set_web): the stand-in has no transport to give
 * them to (the feed is exercised by the integration tests over real sockets). */
int __wrap_web_ws_set(web_t *w, const web_ws_cbs_t *cbs)
{
    if (w != &fake_web)
        fail("web_ws_set on a web_t the API was not given");
    (void)cbs;
    return 0;
}

void __wrap_web_stats(const web_t *w, web_stats_t *st)
{
    if (w != &fake_web)
        fail("web_stats on a web_t the API was not given");
    memset(st, 0, sizeof *st);
    st->open = 1;
    st->max_connections = 4096;
    st->accepted = 1;
}
