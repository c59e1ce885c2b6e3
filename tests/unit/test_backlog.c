/* Unit tests of the analysis backlog and rebuilds (store.h "Analysis backlog and rebuilds",
 * src/store/backlog.c) against real SQLite databases in temp dirs: the writer records blocks not
 * analysed live per 2-h unit in the block's own transaction (counts, seqs, restarts marking the
 * previous block's unit, duplicates not counted twice); a rebuild replaces events (keeping the
 * row of an overlapping one) and aggregates within the covered span, keeps rows beyond it unless
 * the count is larger, and clears only the backlog it read (last_seq <= max_seq), atomically,
 * whether applied on the synchronous connection or as a writer item. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/util.h"
#include "store/store.h"
#include "tests/unit/ut_tmp.h"
#include "tests/unit/ut_store.h" /* either engine (GS_PG_URL) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define U   STORE_ANA_UNIT_NS
#define T0  (1800000000000000000LL / U * U) /* a unit start */
#define SEC 1000000000LL
#define BLK (SEC / 10)

typedef struct {
    char dir[64];
    store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_backlog_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256] = "";
    int rc = store_open(f->dir, NULL, &f->s, err, sizeof err);
    if (rc)
        print_error("store_open: %s\n", err);
    assert_int_equal(rc, 0);
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    assert_int_equal(store_terminal_add(f->s, &t), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    ut_rm_rf(f->dir);
    free(f);
    return 0;
}

static int64_t sql_int(fixture_t *f, const char *sql)
{
    return ut_db_int(f->dir, sql, NULL);
}

static store_item_t *block(uint64_t seq, int64_t t0, int pending, int is_event)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
    it->seq = seq;
    it->is_event = is_event;
    it->t0_ns = t0;
    it->sample_rate = 4000;
    it->channel_mask = 1;
    it->nchannels = 1;
    it->sample_fmt = 1;
    it->nsamples = 400; /* 100 ms */
    it->data_len = 800;
    it->data = xcalloc(1, 800);
    it->ana_pending = pending;
    return it;
}

/* Submits and waits until the writer has committed everything. */
static void flush(store_t *s)
{
    for (int i = 0; i < 5000; i++) {
        size_t items = 1;
        store_queue_depth(s, &items, NULL);
        if (items == 0)
            return;
        usleep(1000);
    }
    fail_msg("writer did not drain");
}

typedef struct {
    store_ana_pending_t p[8];
    int n;
} plist_t;

static int collect(void *ud, const store_ana_pending_t *p)
{
    plist_t *l = ud;
    if (l->n < 8)
        l->p[l->n++] = *p;
    return 0;
}

static void test_backlog_rows(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->s;
    assert_int_equal(store_writer_start(s, NULL, NULL), 0);
    /* analysed blocks 1..3 in unit 0, skipped 4..6, a capture 7, skipped 8 in unit 1 */
    for (uint64_t q = 1; q <= 3; q++)
        assert_int_equal(store_submit(s, block(q, T0 + (int64_t)q * BLK, 0, 0)), 0);
    for (uint64_t q = 4; q <= 6; q++)
        assert_int_equal(store_submit(s, block(q, T0 + (int64_t)q * BLK, STORE_ANA_SKIPPED, 0)), 0);
    assert_int_equal(store_submit(s, block(7, T0 + 5 * BLK, STORE_ANA_SKIPPED, 1)), 0);
    assert_int_equal(store_submit(s, block(8, T0 + U + BLK, STORE_ANA_SKIPPED, 0)), 0);
    /* a duplicate of 5 is not counted again */
    assert_int_equal(store_submit(s, block(5, T0 + 5 * BLK, STORE_ANA_SKIPPED, 0)), 0);
    flush(s);
    plist_t l = {0};
    assert_int_equal(store_ana_pending_list(s, 10, collect, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.p[0].unit_start_ns, T0);
    assert_int_equal(l.p[0].first_seq, 4);
    assert_int_equal(l.p[0].last_seq, 7);
    assert_int_equal(l.p[0].blocks, 3);
    assert_int_equal(l.p[0].captures, 1);
    assert_int_equal(l.p[0].signal_ns, 3 * BLK);
    assert_int_equal(l.p[0].restarts, 0);
    assert_int_equal(l.p[1].unit_start_ns, T0 + U);
    assert_int_equal(l.p[1].blocks, 1);
    int64_t units, blocks;
    double secs;
    assert_int_equal(store_ana_backlog(s, &units, &blocks, &secs), 0);
    assert_int_equal(units, 2);
    assert_int_equal(blocks, 5);
    assert_true(secs > 0.399 && secs < 0.401);
    uint64_t seq;
    int64_t rx;
    assert_int_equal(store_last_block(s, "T1", &seq, &rx), 0);
    assert_int_equal(seq, 8);
    assert_true(rx > 0);

    /* a live-analysis restart in unit 2 marks unit 2 and the previous block's unit (1) */
    assert_int_equal(store_submit(s, block(9, T0 + 2 * U + BLK, STORE_ANA_RESTART, 0)), 0);
    flush(s);
    memset(&l, 0, sizeof l);
    assert_int_equal(store_ana_pending_list(s, 10, collect, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.p[1].unit_start_ns, T0 + U);
    assert_int_equal(l.p[1].restarts, 1);
    assert_int_equal(l.p[1].blocks, 1); /* not counted as unanalysed */
    assert_int_equal(l.p[2].unit_start_ns, T0 + 2 * U);
    assert_int_equal(l.p[2].restarts, 1);
    assert_int_equal(l.p[2].blocks, 0);
    assert_int_equal(l.p[2].last_seq, 9);
    store_writer_stop(s);
}

static void add_event(store_rebuild_t *rb, const char *kind, int64_t start, int64_t dur, double pct)
{
    if (rb->nev == rb->ev_cap) {
        rb->ev_cap = rb->ev_cap ? rb->ev_cap * 2 : 4;
        rb->ev = xrealloc(rb->ev, rb->ev_cap * sizeof *rb->ev);
    }
    store_rb_event_t *e = &rb->ev[rb->nev++];
    memset(e, 0, sizeof *e);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    e->start_ns = start;
    e->duration_ns = dur;
    e->extreme_pct = pct;
    e->reference = 60;
    e->channel_names = xstrdup("Ua");
    snprintf(e->worst_name, sizeof e->worst_name, "Ua");
}

static void add_meas(store_rebuild_t *rb, const char *iv, int64_t t0, int64_t t1, uint32_t n)
{
    if (rb->nmeas == rb->meas_cap) {
        rb->meas_cap = rb->meas_cap ? rb->meas_cap * 2 : 4;
        rb->meas = xrealloc(rb->meas, rb->meas_cap * sizeof *rb->meas);
    }
    store_rb_meas_t *m = &rb->meas[rb->nmeas++];
    memset(m, 0, sizeof *m);
    snprintf(m->interval, sizeof m->interval, "%s", iv);
    m->t_start_ns = t0;
    m->t_end_ns = t1;
    m->count = n;
    m->data = xstrdup("{\"new\":1}");
}

static void old_rows(store_t *s)
{
    /* events: a dip (acknowledged) the rebuild finds again a little earlier, a swell it does
     * not find, one outside the covered span */
    const struct {
        const char *kind;
        int64_t start;
    } evs[] = {{"dip", T0 + 10 * SEC}, {"swell", T0 + 20 * SEC}, {"dip", T0 + 3000 * SEC}};
    for (size_t i = 0; i < 3; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
        snprintf(it->reason, sizeof it->reason, "%s", evs[i].kind);
        it->ev_start_ns = evs[i].start;
        it->ev_duration_ns = SEC / 5;
        it->ev_extreme_pct = 50;
        assert_int_equal(store_submit(s, it), 0);
    }
    /* aggregates: 3 s inside the span (a partial one with an odd end), a 2 h reaching outside */
    const struct {
        const char *iv;
        int64_t t0, t1;
        uint32_t n;
    } ms[] = {{"3s", T0 + 3 * SEC, T0 + 6 * SEC, 15},
              {"3s", T0 + 6 * SEC, T0 + 7 * SEC + 123, 5},
              {"2h", T0, T0 + U, 300},
              {"phasor", T0 + 3 * SEC, T0 + 4 * SEC, 10}};
    for (size_t i = 0; i < 4; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_MEASUREMENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
        snprintf(it->reason, sizeof it->reason, "%s", ms[i].iv);
        it->m_start_ns = ms[i].t0;
        it->m_end_ns = ms[i].t1;
        it->m_count = ms[i].n;
        assert_int_equal(store_submit(s, it), 0);
    }
}

static void check_rebuilt(fixture_t *f, const store_rebuild_t *rb, int64_t dip_id)
{
    assert_int_equal(rb->events_before, 3);
    assert_int_equal(rb->events_after, 3); /* dip kept, swell gone, new swell, far dip kept */
    assert_int_equal(rb->events_updated, 1);
    assert_int_equal(rb->events_inserted, 1);
    assert_int_equal(rb->events_deleted, 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM pq_events WHERE kind='dip' AND"
                                " extreme_pct = 55 AND acked_by = 'op'"),
                     1);
    char q[200];
    snprintf(q, sizeof q, "SELECT id FROM pq_events WHERE kind='dip' AND extreme_pct = 55");
    assert_int_equal(sql_int(f, q), dip_id);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM pq_events WHERE kind='swell'"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM pq_events WHERE kind='swell' AND"
                                " extreme_pct = 115"),
                     1);
    /* 3 s: both old ones inside the span gone, the two new ones there */
    assert_int_equal(rb->meas_deleted, 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM measurements WHERE interval='3s'"), 2);
    assert_int_equal(sql_int(f, UT_SQL("SELECT count(*) FROM measurements WHERE interval='3s' AND"
                                       " data LIKE '%new%' AND count = 15",
                                       "SELECT count(*) FROM measurements WHERE interval='3s' AND"
                                       " data::text LIKE '%new%' AND count = 15")),
                     2);
    /* 2 h reaches beyond the blocks: the smaller new count does not replace it */
    assert_int_equal(sql_int(f, "SELECT count FROM measurements WHERE interval='2h'"), 300);
    /* phasor rows are not the rebuild's */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM measurements WHERE interval='phasor'"), 1);
    /* backlog: unit 0 cleared (last_seq 7 <= 8), unit 1 (seq 8) is outside the range */
    assert_int_equal(rb->pending_done, 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM ana_pending WHERE unit_start_ns = "
                                "(SELECT min(unit_start_ns) FROM ana_pending)"),
                     1);
}

static void make_rebuild(store_rebuild_t *rb, uint64_t max_seq)
{
    memset(rb, 0, sizeof *rb);
    snprintf(rb->terminal_id, sizeof rb->terminal_id, "T1");
    rb->from_ns = T0;
    rb->to_ns = T0 + U;
    rb->max_seq = max_seq;
    rb->covered = 1;
    rb->cover_from_ns = T0 + SEC;
    rb->cover_to_ns = T0 + 60 * SEC;
    add_event(rb, "dip", T0 + 10 * SEC - SEC / 100, SEC / 5, 55); /* overlaps the old dip */
    add_event(rb, "swell", T0 + 40 * SEC, SEC / 5, 115);
    add_meas(rb, "3s", T0 + 3 * SEC, T0 + 6 * SEC, 15);
    add_meas(rb, "3s", T0 + 6 * SEC, T0 + 9 * SEC, 15);
    add_meas(rb, "2h", T0, T0 + U, 20);
}

static int64_t setup_rows(fixture_t *f)
{
    store_t *s = f->s;
    assert_int_equal(store_writer_start(s, NULL, NULL), 0);
    for (uint64_t q = 4; q <= 7; q++)
        assert_int_equal(store_submit(s, block(q, T0 + (int64_t)q * BLK, STORE_ANA_SKIPPED, 0)), 0);
    assert_int_equal(store_submit(s, block(8, T0 + U + BLK, STORE_ANA_SKIPPED, 0)), 0);
    old_rows(s);
    flush(s);
    int64_t dip = sql_int(f, "SELECT id FROM pq_events WHERE kind='dip' ORDER BY start_ns");
    char q[120];
    snprintf(q, sizeof q, "UPDATE pq_events SET acked_by = 'op', acked_ns = 1 WHERE id = %lld",
             (long long)dip);
    ut_db_exec(f->dir, q);
    return dip;
}

static void test_rebuild_sync(void **state)
{
    fixture_t *f = *state;
    int64_t dip = setup_rows(f);
    store_writer_stop(f->s);
    store_rebuild_t rb;
    make_rebuild(&rb, 7);
    assert_int_equal(store_rebuild_apply(f->s, &rb), 0);
    check_rebuilt(f, &rb, dip);
    store_rebuild_clear(&rb);
}

static void test_rebuild_backlog_newer_kept(void **state)
{
    fixture_t *f = *state;
    setup_rows(f);
    store_writer_stop(f->s);
    /* the rebuild read up to seq 5 only: the unit's row (last_seq 7) stays */
    store_rebuild_t rb;
    make_rebuild(&rb, 5);
    assert_int_equal(store_rebuild_apply(f->s, &rb), 0);
    assert_int_equal(rb.pending_done, 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM ana_pending"), 2);
    store_rebuild_clear(&rb);
}

typedef struct {
    int result;
    int done;
} waitres_t;

static void notified(store_item_t *it, void *ud)
{
    waitres_t *w = ud;
    w->result = it->result;
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    store_item_free(it);
}

static void test_rebuild_writer_item(void **state)
{
    fixture_t *f = *state;
    int64_t dip = setup_rows(f);
    store_rebuild_t rb;
    make_rebuild(&rb, 7);
    store_item_t *it = store_item_new(STORE_ITEM_ANA_REBUILD);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T1");
    it->rebuild = &rb;
    waitres_t w = {0};
    it->notify = notified;
    it->notify_ud = &w;
    assert_int_equal(store_submit(f->s, it), 0);
    for (int i = 0; i < 5000 && !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    assert_int_equal(w.done, 1);
    assert_int_equal(w.result, 0);
    check_rebuilt(f, &rb, dip);
    store_writer_stop(f->s);
    store_rebuild_clear(&rb);
}

static void test_rebuild_reader_refused(void **state)
{
    fixture_t *f = *state;
    store_t *rd = NULL;
    char err[200];
    store_opts_t ro = {.reader_only = 1};
    assert_int_equal(store_open(f->dir, &ro, &rd, err, sizeof err), 0);
    store_rebuild_t rb;
    make_rebuild(&rb, 7);
    assert_int_equal(store_rebuild_apply(rd, &rb), GS_ESTATE);
    store_rebuild_clear(&rb);
    store_close(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backlog_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_backlog_newer_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_writer_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_reader_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
