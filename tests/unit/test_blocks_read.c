/* store_blocks_read over more blocks than one page of its query (blocks_read.c reads in pages of
 * 256: PostgreSQL hands a whole result over at once): every block once, in seq order, exactly
 * the range asked for, and a callback's stop honoured. Runs on SQLite, and on PostgreSQL under
 * integ.pg_store (GS_PG_URL, tests/unit/ut_store.h). Also the writer's summary-pyramid rows of many
 * terminals written at one batch's end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "tests/unit/ut_store.h"
#include "tests/unit/ut_tmp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0   1700000000000000000LL
#define STEP 1000000LL /* 1 ms blocks: 4 sample sets at 4000 Hz */
#define NBLK 700

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, errors;
} wait_t;

static void done_cb(store_item_t *batch, void *ud)
{
    wait_t *w = ud;
    pthread_mutex_lock(&w->mu);
    for (store_item_t *it = batch, *next; it; it = next) {
        next = it->next;
        w->done++;
        w->errors += it->result < 0;
        store_item_free(it);
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

typedef struct {
    uint64_t seq[NBLK + 1];
    int n, stop_after;
} got_t;

static int got_cb(void *ud, const store_block_t *b)
{
    got_t *g = ud;
    if (g->n <= NBLK)
        g->seq[g->n++] = b->seq;
    /* the samples are what was stored: 4 sets x 2 channels of int16 = seq, seq+1, ... */
    int16_t v0, v7;
    if (b->nsamples != 4 || b->nchannels != 2 || b->data_len != 16)
        return -1000;
    memcpy(&v0, b->data, 2);
    memcpy(&v7, b->data + 14, 2);
    if (v0 != (int16_t)b->seq || v7 != (int16_t)(b->seq + 7))
        return -1001;
    return g->stop_after && g->n == g->stop_after ? 42 : 0;
}

static void test_read_pages(void **state)
{
    (void)state;
    char dir[] = "/tmp/gs-blocks-read-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_t *s = NULL;
    char err[256];
    assert_int_equal(store_open(dir, NULL, &s, err, sizeof err), 0);
    store_terminal_t t = {0};
    snprintf(t.id, sizeof t.id, "R1");
    memset(t.secret, 7, sizeof t.secret);
    assert_int_equal(store_terminal_add(s, &t), 0);
    wait_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    assert_int_equal(store_writer_start(s, done_cb, &w), 0);
    for (int i = 1; i <= NBLK; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
        snprintf(it->terminal_id, sizeof it->terminal_id, "R1");
        it->seq = (uint64_t)i;
        it->cookie = (uint64_t)i;
        it->t0_ns = T0 + (int64_t)i * STEP;
        it->sample_rate = 4000;
        it->channel_mask = 3;
        it->nchannels = 2;
        it->sample_fmt = 1;
        it->time_quality = 1;
        it->nsamples = 4;
        it->data_len = 16;
        it->data = xmalloc(16);
        for (int k = 0; k < 8; k++) {
            int16_t x = (int16_t)(i + k);
            memcpy(it->data + 2 * k, &x, 2);
        }
        assert_int_equal(store_submit(s, it), 0);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60; /* bounded wait */
    pthread_mutex_lock(&w.mu);
    while (w.done < NBLK)
        if (pthread_cond_timedwait(&w.cv, &w.mu, &until) != 0)
            break;
    int done = w.done, errors = w.errors;
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(done, NBLK);
    assert_int_equal(errors, 0);

    got_t *g = calloc(1, sizeof *g);
    /* everything: three pages */
    assert_int_equal(store_blocks_read(s, "R1", 0, INT64_MAX, STORE_BLOCKS_WAVEFORM, got_cb, g), 0);
    assert_int_equal(g->n, NBLK);
    for (int i = 0; i < NBLK; i++)
        assert_int_equal(g->seq[i], (uint64_t)i + 1);
    /* a range across a page boundary: blocks 300..649 (each 1 ms long) */
    memset(g, 0, sizeof *g);
    assert_int_equal(store_blocks_read(s, "R1", T0 + 300 * STEP, T0 + 650 * STEP,
                                       STORE_BLOCKS_WAVEFORM, got_cb, g),
                     0);
    assert_int_equal(g->n, 350);
    assert_int_equal(g->seq[0], 300);
    assert_int_equal(g->seq[349], 649);
    /* a callback's non-zero return ends the read in the second page and is returned */
    memset(g, 0, sizeof *g);
    g->stop_after = 300;
    assert_int_equal(store_blocks_read(s, "R1", 0, INT64_MAX, STORE_BLOCKS_WAVEFORM, got_cb, g),
                     42);
    assert_int_equal(g->n, 300);
    free(g);
    store_close(s);
    ut_rm_rf(dir);
}

/* ---- the writer's pyramid rows of many terminals in one flush ----
 * 100 terminals, three 100 ms blocks each, all in one second: one row per terminal and level,
 * 600 rows written at the batch's end (on PostgreSQL in statements of 64 rows: pyramid.c
 * pyr_flush_rows); every row must hold its terminal's three blocks. */

#define NTERM 100

typedef struct {
    int rows;
    store_pyr_row_t r;
} pyr_got_t;

static int pyr_cb(void *ud, const store_pyr_row_t *r)
{
    pyr_got_t *g = ud;
    g->rows++;
    g->r = *r;
    return 0;
}

static void test_pyramid_many_terminals(void **state)
{
    (void)state;
    char dir[] = "/tmp/gs-pyr-many-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_t *s = NULL;
    char err[256];
    assert_int_equal(store_open(dir, NULL, &s, err, sizeof err), 0);
    wait_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    for (int k = 0; k < NTERM; k++) {
        store_terminal_t t = {0};
        snprintf(t.id, sizeof t.id, "M%03d", k);
        memset(t.secret, 7, sizeof t.secret);
        assert_int_equal(store_terminal_add(s, &t), 0);
    }
    assert_int_equal(store_writer_start(s, done_cb, &w), 0);
    for (int b = 1; b <= 3; b++)
        for (int k = 0; k < NTERM; k++) {
            store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
            snprintf(it->terminal_id, sizeof it->terminal_id, "M%03d", k);
            it->seq = (uint64_t)b;
            it->cookie = (uint64_t)(b * 1000 + k);
            it->t0_ns = T0 + (int64_t)(b - 1) * 100000000LL;
            it->sample_rate = 4000;
            it->channel_mask = 3;
            it->nchannels = 2;
            it->sample_fmt = 1;
            it->time_quality = 1;
            it->nsamples = 400;
            it->data_len = 1600;
            it->data = xmalloc(1600);
            for (int i = 0; i < 400; i++) {
                int16_t a = (int16_t)(k + b), c = (int16_t)(-k - b);
                memcpy(it->data + 4 * i, &a, 2);
                memcpy(it->data + 4 * i + 2, &c, 2);
            }
            assert_int_equal(store_submit(s, it), 0);
        }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&w.mu);
    while (w.done < 3 * NTERM)
        if (pthread_cond_timedwait(&w.cv, &w.mu, &until) != 0)
            break;
    int done = w.done, errors = w.errors;
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(done, 3 * NTERM);
    assert_int_equal(errors, 0);
    store_writer_stop(s);
    for (int k = 0; k < NTERM; k++) {
        char id[8];
        snprintf(id, sizeof id, "M%03d", k);
        for (int l = 0; l < STORE_PYR_LEVELS; l++) {
            pyr_got_t g = {0};
            assert_int_equal(store_pyramid_read(s, id, l, T0, T0 + 1000000000LL, pyr_cb, &g), 0);
            assert_int_equal(g.rows, 1);
            assert_int_equal(g.r.n, 1200);
            assert_int_equal(g.r.seq_first, 1);
            assert_int_equal(g.r.seq_last, 3);
            assert_int_equal(g.r.ch[0].min, k + 1);
            assert_int_equal(g.r.ch[0].max, k + 3);
            assert_int_equal(g.r.ch[1].min, -k - 3);
            assert_int_equal(g.r.ch[1].max, -k - 1);
        }
    }
    store_close(s);
    ut_rm_rf(dir);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_read_pages),
                                       cmocka_unit_test(test_pyramid_many_terminals)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
