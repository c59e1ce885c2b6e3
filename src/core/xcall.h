/* xcall — run a function on another thread's libuv loop.
 *
 * A queue of calls owned by one loop (the "target"). Any thread posts a function and its
 * argument; the target loop's thread runs them one at a time, in the order they were posted
 * (a single FIFO under a mutex: two calls from one thread keep their order, calls from different
 * threads are ordered by when they took the mutex), woken by one uv_async_t. This is how the web
 * thread asks the main loop to act (create a command, ...) and how the main loop hands answers
 * and live events back to the web thread (docs/decisions/0006-web-thread.md).
 *
 * Nothing is ever lost or leaked: every call accepted by xcall_post / xcall_post2 is invoked
 * exactly once on the target thread, either by the loop or by xcall_close (see there). A post
 * after xcall_close is refused with GS_ECLOSED and the caller keeps (and frees) its argument.
 *
 * The queue has no size bound of its own: a producer that can outrun the target (a live feed)
 * bounds its own traffic, e.g. by coalescing, and may read xcall_pending() for that.
 *
 * Lifetime: the xcall_t is freed by libuv's close callback, i.e. when the target loop runs after
 * xcall_close, unless a producer holds it (xcall_hold): then the last xcall_release frees it.
 * Until it is freed posts fail cleanly with GS_ECLOSED. A thread that may post after the target
 * closed its queue (the main loop answering the web thread, which stops first) takes a hold
 * while the queue is surely open, and releases it once it will post no more.
 */
#ifndef GS_CORE_XCALL_H
#define GS_CORE_XCALL_H

#include <stddef.h>
#include <uv.h>

typedef struct xcall xcall_t;

/* A call for xcall_post: runs on the target thread. */
typedef void (*xcall_fn)(void *arg);

/* A call for xcall_post2: status 0 when the loop runs it, GS_ECLOSED when xcall_close hands it
 * back instead (the function then only releases or answers for arg: the target is shutting
 * down). Runs on the target thread either way. */
typedef void (*xcall_fn2)(void *arg, int status);

/* Creates a call queue on `loop`. Call on the thread that runs `loop` (or before that loop's
 * thread starts). Its uv_async_t keeps the loop alive until xcall_close. Returns 0 and *out, or a
 * negative libuv code (nothing allocated). */
int xcall_open(uv_loop_t *loop, xcall_t **out);

/* Queues fn(arg) to run on the target loop's thread. Any thread; never blocks on the target
 * (only on the queue's mutex, held for a list append and a uv_async_send). Returns 0 (fn will be
 * called exactly once: by the loop, or by xcall_close, which runs it as the loop would), or
 * GS_ECLOSED after xcall_close (fn is not called; arg stays the caller's), or GS_EINVAL for a
 * NULL fn. */
int xcall_post(xcall_t *x, xcall_fn fn, void *arg);

/* As xcall_post, but a call still queued when the queue is closed is invoked with status
 * GS_ECLOSED instead of 0, so that it can release arg (and, e.g., answer "shutting down")
 * without acting. Returns 0, GS_ECLOSED (fn not called) or GS_EINVAL. Any thread. */
int xcall_post2(xcall_t *x, xcall_fn2 fn, void *arg);

/* Keeps x's memory after the target closed it, so that posts from this holder keep failing
 * cleanly with GS_ECLOSED instead of touching freed memory. Call while x is surely not freed
 * yet (e.g. right after xcall_open, before the target thread runs). Any thread. */
void xcall_hold(xcall_t *x);

/* Drops a hold; the last one frees x if the target has closed it (and its close callback ran).
 * x must not be used by this holder afterwards. Any thread. */
void xcall_release(xcall_t *x);

/* Number of calls posted and not yet started. Any thread (a snapshot). */
size_t xcall_pending(xcall_t *x);

/* Closes the queue on the target thread (also from inside a call it runs): refuses further
 * posts (GS_ECLOSED), then, before returning and in posting order, invokes every call accepted
 * and not yet run: xcall_post calls as fn(arg), xcall_post2 calls as fn(arg, GS_ECLOSED). Closes
 * the async handle; the memory is freed in its close callback (the next loop turn), or by the
 * last xcall_release if someone holds it. Idempotent until then. */
void xcall_close(xcall_t *x);

#endif
