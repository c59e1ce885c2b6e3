/* Unit tests for src/core/xcall: order, many producer threads, a target loop on its own thread
 * with answers posted back, close with pending calls (nothing lost, nothing leaked: run under
 * the sanitizer build), close from inside a call, posts after close. No timing assumptions: every
 * wait is for a condition, with the loop or a join doing the waiting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/util.h"
#include "core/xcall.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- order on one thread ---- */

typedef struct {
    xcall_t *x;
    int seen[2000];
    int n;
    int close_at; /* close the queue from inside the call with this index (-1: never) */
    int statuses_closed;
} order_t;

typedef struct {
    order_t *o;
    int i;
} item_t;

static void order_fn(void *arg)
{
    item_t *it = arg;
    order_t *o = it->o;
    o->seen[o->n++] = it->i;
    if (it->i == o->close_at)
        xcall_close(o->x);
    free(it);
}

static void order_fn2(void *arg, int status)
{
    item_t *it = arg;
    if (status == GS_ECLOSED)
        it->o->statuses_closed++;
    else
        assert_int_equal(status, 0);
    order_fn(arg);
}

static item_t *item(order_t *o, int i)
{
    item_t *it = xmalloc(sizeof *it);
    it->o = o;
    it->i = i;
    return it;
}

/* 1000 calls posted from the loop's own thread before it runs: all run, in order; the last
 * closes the queue, which ends the loop. */
static void test_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    order_t o = {.close_at = 999};
    assert_int_equal(xcall_open(&loop, &o.x), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(i % 2 ? xcall_post(o.x, order_fn, item(&o, i))
                               : xcall_post2(o.x, order_fn2, item(&o, i)),
                         0);
    assert_int_equal(xcall_pending(o.x), 1000);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.n, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(o.seen[i], i);
    assert_int_equal(o.statuses_closed, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* xcall_close with calls queued: each runs exactly once, in order, xcall_post2 ones with
 * GS_ECLOSED; later posts are refused (the argument stays the caller's); the memory goes in the
 * close callback (ASan's leak check). */
static void test_close_pending(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    order_t o = {.close_at = -1};
    assert_int_equal(xcall_open(&loop, &o.x), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(i < 5 ? xcall_post(o.x, order_fn, item(&o, i))
                               : xcall_post2(o.x, order_fn2, item(&o, i)),
                         0);
    xcall_close(o.x);
    assert_int_equal(o.n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(o.seen[i], i);
    assert_int_equal(o.statuses_closed, 5);
    item_t *late = item(&o, 10);
    assert_int_equal(xcall_post(o.x, order_fn, late), GS_ECLOSED);
    assert_int_equal(xcall_post2(o.x, order_fn2, late), GS_ECLOSED);
    free(late);
    xcall_close(o.x); /* idempotent until the close callback */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.n, 10);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A call that closes the queue in the middle of a batch: the rest of that batch and anything
 * queued are handed back (xcall_post2 calls with GS_ECLOSED), still in order. */
static void test_close_inside_call(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    order_t o = {.close_at = 3};
    assert_int_equal(xcall_open(&loop, &o.x), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(xcall_post2(o.x, order_fn2, item(&o, i)), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(o.seen[i], i);
    assert_int_equal(o.statuses_closed, 4); /* 4..7 */
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A producer's hold keeps the queue's memory after the target closed it and its loop ran the
 * close callback: posts still fail cleanly, and the last release frees it (ASan's leak check). */
static void test_hold_after_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    order_t o = {.close_at = -1};
    assert_int_equal(xcall_open(&loop, &o.x), 0);
    xcall_hold(o.x);
    xcall_hold(o.x);
    assert_int_equal(xcall_post2(o.x, order_fn2, item(&o, 0)), 0);
    xcall_close(o.x);
    assert_int_equal(o.statuses_closed, 1);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* the close callback: still held */
    item_t *late = item(&o, 1);
    assert_int_equal(xcall_post(o.x, order_fn, late), GS_ECLOSED);
    xcall_release(o.x);
    assert_int_equal(xcall_post2(o.x, order_fn2, late), GS_ECLOSED);
    assert_int_equal(xcall_pending(o.x), 0);
    xcall_release(o.x); /* the last: frees */
    free(late);
    assert_int_equal(o.n, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Released before the target closes: the close callback frees, as without holds. */
static void test_hold_released_before_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    order_t o = {.close_at = -1};
    assert_int_equal(xcall_open(&loop, &o.x), 0);
    xcall_hold(o.x);
    assert_int_equal(xcall_post(o.x, order_fn, item(&o, 0)), 0);
    xcall_release(o.x);
    xcall_close(o.x);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.n, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- many producers ---- */

#define NPROD    8
#define PER_PROD 20000

typedef struct {
    xcall_t *x;
    uint32_t next[NPROD]; /* next sequence number expected from each producer (target thread) */
    long total;
    int bad;
} mp_t;

typedef struct {
    mp_t *m;
    int p;
} prod_t;

static mp_t *g_mp; /* the target's state; written only on the target thread */

static void mp_fn_checked(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int p = (int)(v >> 32);
    uint32_t seq = (uint32_t)v;
    if (p < 0 || p >= NPROD || g_mp->next[p] != seq)
        g_mp->bad++;
    else
        g_mp->next[p]++;
    if (++g_mp->total == (long)NPROD * PER_PROD)
        xcall_close(g_mp->x);
}

static void producer(void *arg)
{
    prod_t *pr = arg;
    for (uint32_t i = 0; i < PER_PROD; i++) {
        uintptr_t v = ((uintptr_t)pr->p << 32) | i;
        while (xcall_post(pr->m->x, mp_fn_checked, (void *)v) != 0)
            ; /* cannot happen: the queue closes only after the last call */
    }
}

/* 8 threads post 20,000 calls each while the loop runs: every call runs once, each producer's
 * calls in its order. */
static void test_many_producers(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mp_t m = {0};
    g_mp = &m;
    assert_int_equal(xcall_open(&loop, &m.x), 0);
    uv_thread_t th[NPROD];
    prod_t pr[NPROD];
    for (int p = 0; p < NPROD; p++) {
        pr[p].m = &m;
        pr[p].p = p;
        assert_int_equal(uv_thread_create(&th[p], producer, &pr[p]), 0);
    }
    /* Runs until the last call closes the queue (the async handle is the loop's only one). */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int p = 0; p < NPROD; p++)
        uv_thread_join(&th[p]);
    assert_int_equal(m.bad, 0);
    assert_int_equal(m.total, (long)NPROD * PER_PROD);
    for (int p = 0; p < NPROD; p++)
        assert_int_equal(m.next[p], PER_PROD);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- a target loop on its own thread, answers posted back (the web thread's pattern) ---- */

typedef struct {
    uv_loop_t loop;
    xcall_t *x;     /* the worker loop's queue */
    xcall_t *reply; /* the main loop's queue */
    int answered;
    int asked;
} rt_t;

typedef struct {
    rt_t *rt;
    int q;
} ask_t;

static void answer_fn(void *arg) /* main thread */
{
    ask_t *a = arg;
    assert_int_equal(a->q, a->rt->answered * 2);
    a->rt->answered++;
    rt_t *rt = a->rt;
    free(a);
    if (rt->answered == rt->asked)
        xcall_close(rt->reply);
}

static void ask_fn(void *arg) /* worker thread */
{
    ask_t *a = arg;
    a->q *= 2;
    assert_int_equal(xcall_post(a->rt->reply, answer_fn, a), 0);
}

static void stop_fn(void *arg, int status) /* worker thread */
{
    rt_t *rt = arg;
    (void)status;
    xcall_close(rt->x); /* the loop ends: its only handle is closing */
}

static void worker_main(void *arg)
{
    rt_t *rt = arg;
    uv_run(&rt->loop, UV_RUN_DEFAULT);
}

static void test_thread_roundtrip(void **state)
{
    (void)state;
    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    rt_t rt = {.asked = 500};
    uv_loop_init(&rt.loop);
    assert_int_equal(xcall_open(&rt.loop, &rt.x), 0); /* before the worker runs its loop */
    assert_int_equal(xcall_open(&main_loop, &rt.reply), 0);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, worker_main, &rt), 0);
    for (int i = 0; i < rt.asked; i++) {
        ask_t *a = xmalloc(sizeof *a);
        a->rt = &rt;
        a->q = i;
        assert_int_equal(xcall_post(rt.x, ask_fn, a), 0);
    }
    assert_int_equal(uv_run(&main_loop, UV_RUN_DEFAULT), 0); /* until every answer is in */
    assert_int_equal(rt.answered, rt.asked);
    /* The stop sequence of the server: a last call makes the worker close its queue. */
    assert_int_equal(xcall_post2(rt.x, stop_fn, &rt), 0);
    uv_thread_join(&th);
    assert_int_equal(uv_loop_close(&rt.loop), 0);
    assert_int_equal(uv_loop_close(&main_loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_close_pending),
        cmocka_unit_test(test_close_inside_call),
        cmocka_unit_test(test_hold_after_close),
        cmocka_unit_test(test_hold_released_before_close),
        cmocka_unit_test(test_many_producers),
        cmocka_unit_test(test_thread_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
