/* The fuzz targets' stand-in for src/web's deferred answers (api_seam.c): one request, handed to
 * a web_handler_fn outside the real transport, with its answer collected whether the handler
 * answers at once or defers and completes later. */
#ifndef GS_FUZZ_API_SEAM_H
#define GS_FUZZ_API_SEAM_H

#include "web/web.h"

typedef struct {
    web_request_t req; /* filled by the caller (web_priv_ is set by seam_call) */
    int deferred;      /* the handler called web_defer */
    int done;          /* an answer is here (at once, or web_complete ran) */
    int status;        /* the answer */
    const char *content_type;
    buf_t body, headers;    /* owned; seam_req_free releases them */
    web_pending_t *pending; /* the handle while deferred and not completed */
} seam_req_t;

/* Calls fn(ud, &r->req, resp) as web.c's dispatch does and collects an immediate answer (done
 * = 1), or notes that the handler deferred (deferred = 1; web_complete later sets done). Aborts
 * when the handler breaks the contract of web.h (see api_seam.c). */
void seam_call(seam_req_t *r, web_handler_fn fn, void *ud);

/* Releases the answer's buffers; a handle still pending is cut loose (its completion aborts). */
void seam_req_free(seam_req_t *r);

/* NULL if b is an extra header block web.c would send, else why not (web.c's rules). */
const char *seam_check_headers(const buf_t *b);

/* A web_t the API can be given (api_set_web) so /metrics reads web_stats from the seam. */
web_t *seam_web(void);

#endif
