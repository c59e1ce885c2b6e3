/* Cross-thread call queue onto a libuv loop (contract in xcall.h). */
#include "core/xcall.h"

#include "core/err.h"
#include "core/util.h"

#include <stdlib.h>

typedef struct node {
    struct node *next;
    xcall_fn fn;   /* xcall_post */
    xcall_fn2 fn2; /* xcall_post2 */
    void *arg;
} node_t;

struct xcall {
    uv_async_t async; /* first: the close callback gets the handle */
    uv_mutex_t mu;
    /* under mu */
    node_t *head, *tail;
    size_t pending;
    int closed;
    int holds;         /* xcall_hold - xcall_release */
    int handle_closed; /* the close callback ran */
    /* target thread only */
    node_t *running; /* the batch async_cb is working through (xcall_close may cut it short) */
};

static void invoke(node_t *n, int status)
{
    if (n->fn2)
        n->fn2(n->arg, status);
    else
        n->fn(n->arg);
}

static void async_cb(uv_async_t *h)
{
    xcall_t *x = (xcall_t *)h;
    uv_mutex_lock(&x->mu);
    if (x->closed) { /* a wake-up that raced xcall_close: it has drained everything */
        uv_mutex_unlock(&x->mu);
        return;
    }
    x->running = x->head;
    x->head = x->tail = NULL;
    x->pending = 0;
    uv_mutex_unlock(&x->mu);
    /* The batch stays reachable through x->running so that a call which closes the queue
     * (xcall_close from inside fn) hands the rest of the batch back too. x itself stays valid
     * during this callback: it is freed only by the close callback, on a later loop turn. */
    node_t *n;
    while ((n = x->running) != NULL) {
        x->running = n->next;
        invoke(n, 0);
        free(n);
    }
}

static void destroy(xcall_t *x)
{
    uv_mutex_destroy(&x->mu);
    free(x);
}

/* Whichever comes last frees: this callback, or the last xcall_release. The one that comes first
 * sets its flag under the mutex and never touches x again. */
static void close_cb(uv_handle_t *h)
{
    xcall_t *x = (xcall_t *)h;
    uv_mutex_lock(&x->mu);
    x->handle_closed = 1;
    int last = x->holds == 0;
    uv_mutex_unlock(&x->mu);
    if (last)
        destroy(x);
}

void xcall_hold(xcall_t *x)
{
    uv_mutex_lock(&x->mu);
    x->holds++;
    uv_mutex_unlock(&x->mu);
}

void xcall_release(xcall_t *x)
{
    uv_mutex_lock(&x->mu);
    int last = --x->holds == 0 && x->handle_closed;
    uv_mutex_unlock(&x->mu);
    if (last)
        destroy(x);
}

int xcall_open(uv_loop_t *loop, xcall_t **out)
{
    xcall_t *x = xcalloc(1, sizeof *x);
    int rc = uv_mutex_init(&x->mu);
    if (rc < 0)
        goto fail;
    rc = uv_async_init(loop, &x->async, async_cb);
    if (rc < 0) {
        uv_mutex_destroy(&x->mu);
        goto fail;
    }
    *out = x;
    return 0;
fail:
    free(x);
    return rc;
}

static int post(xcall_t *x, xcall_fn fn, xcall_fn2 fn2, void *arg)
{
    if (!fn && !fn2)
        return GS_EINVAL;
    node_t *n = xmalloc(sizeof *n);
    n->next = NULL;
    n->fn = fn;
    n->fn2 = fn2;
    n->arg = arg;
    uv_mutex_lock(&x->mu);
    if (x->closed) {
        uv_mutex_unlock(&x->mu);
        free(n);
        return GS_ECLOSED;
    }
    if (x->tail)
        x->tail->next = n;
    else
        x->head = n;
    x->tail = n;
    x->pending++;
    /* Sent under the mutex: xcall_close sets `closed` under it before closing the handle, so no
     * producer can be inside uv_async_send on a closing handle. */
    uv_async_send(&x->async);
    uv_mutex_unlock(&x->mu);
    return 0;
}

int xcall_post(xcall_t *x, xcall_fn fn, void *arg)
{
    return post(x, fn, NULL, arg);
}

int xcall_post2(xcall_t *x, xcall_fn2 fn, void *arg)
{
    return post(x, NULL, fn, arg);
}

size_t xcall_pending(xcall_t *x)
{
    uv_mutex_lock(&x->mu);
    size_t n = x->pending;
    uv_mutex_unlock(&x->mu);
    return n;
}

void xcall_close(xcall_t *x)
{
    uv_mutex_lock(&x->mu);
    if (x->closed) {
        uv_mutex_unlock(&x->mu);
        return;
    }
    x->closed = 1;
    node_t *queued = x->head;
    x->head = x->tail = NULL;
    x->pending = 0;
    uv_mutex_unlock(&x->mu);
    /* Older calls first: the rest of a batch being run (we are inside one of its calls), then
     * the queue. Calls they post to x are refused (closed). */
    node_t *n;
    while ((n = x->running) != NULL) {
        x->running = n->next;
        invoke(n, GS_ECLOSED);
        free(n);
    }
    while ((n = queued) != NULL) {
        queued = n->next;
        invoke(n, GS_ECLOSED);
        free(n);
    }
    uv_close((uv_handle_t *)&x->async, close_cb);
}
