/* Retention (store/retention.c) against a real SQLite store: what is deleted and what is kept
 * (raw blocks past raw_days, event windows and captures kept until event_days, the other
 * tables), bounded steps, the cursor that keeps kept blocks from being examined again, passes
 * through the writer, the policy checks, and the disk-full state of the writer under a real
 * file size limit (RLIMIT_FSIZE). */
#include "core/err.h"
#include "core/util.h"
#include "store/internal.h" /* the disk-full reminder interval (full_remind_ms) */
#include "store/store.h"
#include "tests/unit/ut_store.h" /* either engine (GS_PG_URL) */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define S_NS 1000000000LL
#define DAY  (86400 * S_NS)
#define NOW  1800000000000000000LL /* the policy's "now" */
#define BASE (NOW - 40 * DAY)      /* sample times of the old blocks */

typedef struct {
    char dir[256];
    char db[300];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_ret_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/gridsense.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static store_t *open_store(fixture_t *f)
{
    store_t *s = NULL;
    char err[256];
    store_opts_t o = {.sync_full = 0, .busy_timeout_ms = 5000};
    assert_int_equal(store_open(f->dir, &o, &s, err, sizeof err), 0);
    return s;
}

static void sql(fixture_t *f, const char *fmt, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    ut_db_exec(f->dir, q);
}

static int64_t sql_i64(fixture_t *f, const char *fmt, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return ut_db_int(f->dir, q, NULL);
}

/* n zero bytes as a blob literal. */
static const char *zeroblob_sql(int n)
{
    static char b[64];
    if (ut_pg())
        snprintf(b, sizeof b, "decode(repeat('00', %d), 'hex')", n);
    else
        snprintf(b, sizeof b, "zeroblob(%d)", n);
    return b;
}

/* n blocks of terminal tid from seq first, 100 ms each (400 sample sets at 4 kS/s, 3 channels
 * int16 = 2400 bytes), sample time BASE + t_off + i x 100 ms, stored `age_days` before NOW. */
static void add_blocks(fixture_t *f, const char *tid, int first, int n, int64_t t_off, int kind,
                       int age_days)
{
    sql(f,
        "WITH RECURSIVE c(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM c WHERE i + 1 < %d)"
        " INSERT INTO blocks(terminal_id, seq, kind, t0_ns, sample_rate, channel_mask,"
        " nchannels, sample_fmt, time_quality, nsamples, data, received_ns)"
        " SELECT '%s', %d + i, %d, %lld + i * 100000000, 4000, 7, 3, 1, 2, 400,"
        " %s, %lld + i FROM c",
        n, tid, first, kind, (long long)(BASE + t_off), zeroblob_sql(2400),
        (long long)(NOW - age_days * DAY));
    if (kind == 1)
        sql(f,
            "INSERT INTO events(terminal_id, seq, trigger, trigger_ns) SELECT terminal_id, seq,"
            " 1, t0_ns FROM blocks WHERE terminal_id = '%s' AND kind = 1",
            tid);
}

static void add_event(fixture_t *f, const char *tid, int64_t start_off, int64_t dur)
{
    sql(f,
        "INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, detected_ns)"
        " VALUES('%s', 'dip', %lld, %lld, %lld)",
        tid, (long long)(BASE + start_off), (long long)dur, (long long)(BASE + start_off));
}

static store_retention_t policy(void)
{
    store_retention_t p;
    memset(&p, 0, sizeof p);
    p.raw_days = 30;
    p.event_pre_s = 1;
    p.event_post_s = 1;
    p.now_ns = NOW;
    return p;
}

/* Steps until nothing is due; every step deletes at most batch_rows. Returns the steps. */
static int run_pass(store_t *s, const store_retention_t *p, store_retention_result_t *tot)
{
    int steps = 0;
    memset(tot, 0, sizeof *tot);
    for (;;) {
        store_retention_result_t r;
        memset(&r, 0, sizeof r);
        assert_int_equal(store_retention_step(s, p, &r), 0);
        int64_t n = 0;
        for (int t = 0; t < STORE_RET_NTABLES; t++) {
            if (t != STORE_RET_TREND) /* (deleted by a trigger with the aggregates) */
                n += r.rows[t];
            tot->rows[t] += r.rows[t];
        }
        tot->block_bytes += r.block_bytes;
        tot->kept_rows += r.kept_rows;
        if (p->batch_rows > 0)
            assert_true(n <= p->batch_rows);
        steps++;
        assert_true(steps < 10000);
        if (!r.more)
            return steps;
    }
}

/* Raw blocks past raw_days go; those overlapping [start - pre, end + post] of an event of the
 * same terminal, and captures, stay; blocks stored recently stay whatever their sample time. */
static void test_raw_and_event_windows(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    add_blocks(f, "T1", 1, 100, 0, 0, 35);         /* t 0..10 s, old: due */
    add_blocks(f, "T1", 101, 1, 20 * S_NS, 1, 35); /* a capture, old: kept */
    add_blocks(f, "T2", 1, 100, 0, 0, 35);         /* the other terminal: its own events */
    add_blocks(f, "T1", 1001, 50, 0, 0, 5);        /* stored 5 days ago (old sample time) */
    add_event(f, "T1", 5 * S_NS, 1 * S_NS);        /* [5 s, 6 s]: window [4 s, 7 s] */
    add_event(f, "T2", 1 * S_NS, 0);               /* [1 s]: window [0 s, 2 s] */

    store_retention_t p = policy();
    p.batch_rows = 10;
    store_retention_result_t tot;
    int steps = run_pass(s, &p, &tot);
    /* T1: blocks i = 39..69 touch [4 s, 7 s] (i = 39 ends at 4.0 s, i = 70 starts at 7.0 s,
     * touching counts at the start, not at the end); T2: i = 0..19. */
    assert_int_equal(
        sql_i64(f, "SELECT count(*) FROM blocks WHERE terminal_id = 'T1' AND seq <= 100"), 31);
    assert_int_equal(sql_i64(f, "SELECT min(seq) FROM blocks WHERE terminal_id = 'T1'"), 40);
    assert_int_equal(
        sql_i64(f, "SELECT max(seq) FROM blocks WHERE terminal_id = 'T1' AND seq <= 100"), 70);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks WHERE terminal_id = 'T2'"), 20);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks WHERE kind = 1"), 1);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM events"), 1);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks WHERE seq > 1000"), 50);
    assert_int_equal(tot.rows[STORE_RET_BLOCKS_RAW], 69 + 80);
    assert_int_equal(tot.block_bytes, (69 + 80) * 2400);
    assert_int_equal(tot.kept_rows, 31 + 20 + 1);
    assert_true(steps >= (69 + 80) / 10); /* bounded steps */

    /* The cursor: a second pass examines none of the kept blocks again. */
    assert_true(sql_i64(f, "SELECT value FROM retention_state WHERE name = 'blocks_raw_after'") >
                0);
    run_pass(s, &p, &tot);
    assert_int_equal(tot.kept_rows, 0);
    assert_int_equal(tot.rows[STORE_RET_BLOCKS_RAW], 0);

    /* Past event_days everything goes, captures with their trigger records. */
    p.event_days = 34;
    run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_BLOCKS_KEPT], 31 + 20 + 1);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks"), 50);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM events"), 0);
    store_close(s);
}

/* Nothing is due: nothing changes; raw_days 0 keeps everything. */
static void test_nothing_due(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    add_blocks(f, "T1", 1, 20, 0, 0, 29);
    store_retention_t p = policy();
    store_retention_result_t tot;
    assert_int_equal(run_pass(s, &p, &tot), 1);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks"), 20);
    p.raw_days = 0;
    p.now_ns = NOW + 1000 * DAY;
    run_pass(s, &p, &tot);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks"), 20);
    store_close(s);
}

/* Status, events, aggregates, sessions and audit by their own settings, in bounded steps. */
static void test_other_tables(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    for (int i = 0; i < 30; i++) {
        int64_t t = NOW - (i < 20 ? 15 : 5) * DAY + i;
        sql(f, "INSERT INTO status(terminal_id, time_ns, received_ns) VALUES('T1', %lld, %lld)",
            (long long)t, (long long)t);
        sql(f,
            "INSERT INTO measurements(terminal_id, interval, t_start_ns, t_end_ns, data)"
            " VALUES('T1', '10min', %lld, %lld, '{}')",
            (long long)t - 600 * S_NS, (long long)t);
        sql(f, "INSERT INTO audit(time_ns, action, outcome) VALUES(%lld, 'x', 'ok')", (long long)t);
        sql(f, "INSERT INTO sessions(session_id, terminal_id, opened_ns) VALUES(%d, 'T1', %lld)",
            i + 1, (long long)t);
        sql(f,
            "INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, detected_ns)"
            " VALUES('T1', 'swell', %lld, 1, %lld)",
            (long long)t, (long long)t);
    }
    store_retention_t p = policy();
    p.raw_days = 0;
    p.batch_rows = 7;
    p.status_days = 10;
    p.aggregates_days = 10;
    store_retention_result_t tot;
    run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_STATUS], 20);
    assert_int_equal(tot.rows[STORE_RET_AGGREGATES], 20);
    /* the trend columns of the 10-min aggregates go with them (trigger), counted apart: on
     * SQLite (PostgreSQL does not count a trigger's rows; docs/operations.md "What differs from
     * SQLite"), the rows left below are checked on both */
    assert_int_equal(tot.rows[STORE_RET_TREND], ut_pg() ? 0 : 20);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM measurement_trend"), 10);
    assert_int_equal(sql_i64(f, "SELECT min(t_end_ns) FROM measurement_trend"), NOW - 5 * DAY + 20);
    assert_int_equal(tot.rows[STORE_RET_EVENTS], 0); /* events_days 0: forever */
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM status"), 10);
    assert_int_equal(sql_i64(f, "SELECT min(received_ns) FROM status"), NOW - 5 * DAY + 20);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM pq_events"), 30);
    p.events_days = 10;
    p.sessions_days = 10;
    p.audit_days = 10;
    run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_EVENTS], 20);
    assert_int_equal(tot.rows[STORE_RET_SESSIONS], 20);
    assert_int_equal(tot.rows[STORE_RET_AUDIT], 20);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM audit"), 10);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM sessions"), 10);
    store_close(s);
}

static void test_policy_check(void **state)
{
    (void)state;
    char err[256];
    store_retention_t p = policy();
    assert_int_equal(store_retention_check(&p, err, sizeof err), 0);
    p.event_days = 10; /* below raw_days */
    assert_int_equal(store_retention_check(&p, err, sizeof err), GS_EINVAL);
    assert_non_null(strstr(err, "at least raw_days"));
    p.raw_days = 0; /* raw forever, events not */
    assert_int_equal(store_retention_check(&p, err, sizeof err), GS_EINVAL);
    p = policy();
    p.status_days = -1;
    assert_int_equal(store_retention_check(&p, err, sizeof err), GS_EINVAL);
    assert_non_null(strstr(err, "status_days"));
    p = policy();
    p.event_post_s = 3601;
    assert_int_equal(store_retention_check(&p, err, sizeof err), GS_EINVAL);
}

static void wait_for(store_t *s, int (*cond)(store_t *s), const char *what)
{
    for (int i = 0; i < 3000 && !cond(s); i++) {
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    if (!cond(s))
        fail_msg("timed out waiting for %s", what);
}

static int pass_done(store_t *s)
{
    store_retention_stats_t r;
    store_retention_stats(s, &r);
    return r.passes + r.failures >= 1 && !r.running;
}

/* A pass through the writer: the same outcome, in several steps, counters kept. */
static void test_writer_pass(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    add_blocks(f, "T1", 1, 100, 0, 0, 35);
    add_event(f, "T1", 5 * S_NS, 1 * S_NS);
    assert_int_equal(store_writer_start(s, NULL, NULL), 0);
    store_retention_t p = policy();
    p.batch_rows = 10;
    assert_int_equal(store_retention_submit(s, &p), 0);
    int rc = store_retention_submit(s, &p);
    assert_true(rc == GS_EBUSY || rc == 0); /* 0 only if the first pass already ended */
    wait_for(s, pass_done, "the retention pass");
    store_retention_stats_t r;
    store_retention_stats(s, &r);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.rows[STORE_RET_BLOCKS_RAW], 69);
    assert_int_equal(r.block_bytes, 69 * 2400);
    assert_true(r.steps >= 7);
    assert_true(r.last_end_ns > 0);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks"), 31);
    store_close(s);
    p.batch_rows = -1;
    assert_int_equal(store_retention_check(&p, NULL, 0), 0);
}

static int is_full(store_t *s)
{
    return store_disk_full(s);
}

static int not_full(store_t *s)
{
    return !store_disk_full(s);
}

static int drained(store_t *s)
{
    size_t n = 0;
    store_queue_depth(s, &n, NULL);
    return n == 0;
}

/* A file size limit (what a full filesystem looks like to SQLite, unprivileged; on PostgreSQL
 * the server's "disk full" error, see below): the writer reports the disk full, acknowledges
 * nothing, keeps the items and stores them all once the limit is lifted. */
static void test_disk_full(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    s->full_remind_ms = 300;
    assert_int_equal(store_writer_start(s, NULL, NULL), 0);
    /* the log lines of this test into a file, to count them */
    char logpath[320];
    snprintf(logpath, sizeof logpath, "%s/log.txt", f->dir);
    fflush(stderr);
    int saved = dup(2), lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && lfd >= 0);
    assert_int_equal(dup2(lfd, 2), 2);
    close(lfd);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    if (ut_pg()) {
        /* PostgreSQL's files are the server's, out of this process's reach: its "disk full"
         * (SQLSTATE 53100, what the server answers when it cannot extend a file) comes from a
         * trigger that refuses every block while ut_disk says so (freed by an UPDATE: dropping
         * the trigger would lock the partitioned table against the retrying writer). */
        ut_db_exec(f->dir, "CREATE TABLE ut_disk(is_full BOOLEAN NOT NULL);"
                           " INSERT INTO ut_disk VALUES(true);"
                           " CREATE FUNCTION ut_disk_full() RETURNS trigger LANGUAGE plpgsql AS"
                           " $$BEGIN IF (SELECT is_full FROM ut_disk) THEN RAISE EXCEPTION"
                           " 'could not extend file: No space left on device' USING ERRCODE ="
                           " 'disk_full'; END IF; RETURN NEW; END$$;"
                           " CREATE TRIGGER ut_disk_full BEFORE INSERT ON blocks FOR EACH ROW"
                           " EXECUTE FUNCTION ut_disk_full()");
    } else {
        signal(SIGXFSZ, SIG_IGN);
        struct stat sb;
        char wal[320];
        snprintf(wal, sizeof wal, "%s-wal", f->db);
        off_t big = stat(f->db, &sb) == 0 ? sb.st_size : 0;
        if (stat(wal, &sb) == 0 && sb.st_size > big)
            big = sb.st_size;
        lim = old;
        lim.rlim_cur = (rlim_t)big + 65536;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    }
    for (int i = 0; i < 40; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
        snprintf(it->terminal_id, sizeof it->terminal_id, "F1");
        it->seq = (uint64_t)i + 1;
        it->t0_ns = NOW + i;
        it->sample_rate = 4000;
        it->nchannels = 3;
        it->sample_fmt = 1;
        it->nsamples = 4000;
        it->data_len = 24000;
        it->data = xcalloc(1, it->data_len);
        assert_int_equal(store_submit(s, it), 0);
    }
    wait_for(s, is_full, "the disk-full state");
    struct timespec held = {1, 500000000L}; /* several failed attempts, a few reminders */
    nanosleep(&held, NULL);
    store_retention_stats_t r;
    store_retention_stats(s, &r);
    assert_int_equal(r.full_episodes, 1);
    assert_true(r.full_failures >= 1);
    assert_true(r.full_since_ns > 0);
    assert_false(drained(s));
    if (ut_pg()) /* space again */
        ut_db_exec(f->dir, "UPDATE ut_disk SET is_full = false");
    else
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    wait_for(s, not_full, "the disk-full state to clear");
    wait_for(s, drained, "the queue to drain");
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM blocks WHERE terminal_id = 'F1'"), 40);
    store_retention_stats(s, &r);
    assert_int_equal(r.disk_full, 0);
    assert_int_equal(r.full_episodes, 1);
    store_close(s);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);

    /* One alarm, reminders at most every 300 ms with the counts, one line when it clears;
     * the failed attempts themselves stay quiet (one error line from the first). */
    FILE *lf = fopen(logpath, "r");
    assert_non_null(lf);
    char line[1024];
    int alarms = 0, reminders = 0, cleared = 0, errors = 0, retry_warns = 0;
    while (fgets(line, sizeof line, lf)) {
        fputs(line, stdout);
        alarms += strstr(line, "ERROR [store] disk full: the database cannot grow") != NULL;
        reminders += strstr(line, "WARN  [store] disk still full for") != NULL;
        cleared += strstr(line, "INFO  [store] disk no longer full after") != NULL;
        errors += strstr(line, " ERROR ") != NULL;
        retry_warns += strstr(line, "failed (attempt") != NULL;
    }
    fclose(lf);
    assert_int_equal(alarms, 1);
    assert_int_equal(cleared, 1);
    assert_true(reminders >= 1 && (uint64_t)reminders <= r.full_failures);
    assert_int_equal(errors, 2); /* the first failure's database error and the alarm */
    assert_int_equal(retry_warns, 0);
}

/* No statement of a retention step or of the light db stats walks a table: each is a rowid
 * range, an index search, the first rows in rowid order (ORDER BY id LIMIT) or the scan of a
 * bounded subquery; none sorts. */
/* Rows of the summary pyramid, 10 per level at the given ages (days before NOW), for tid. */
static const int PYR_AGES[10] = {400, 300, 200, 100, 70, 61, 59, 40, 10, 1};

static void add_pyramid(fixture_t *f, const char *tid)
{
    for (int level = 0; level < 6; level++)
        for (int i = 0; i < 10; i++) {
            long long b = (long long)(NOW - PYR_AGES[i] * DAY);
            sql(f,
                "INSERT INTO wave_pyramid(terminal_id, level, bucket_ns, t_first_ns, t_end_ns,"
                " seq_first, seq_last, sample_rate, time_quality, channel_mask, n, stats)"
                " VALUES('%s', %d, %lld, %lld, %lld, 1, 1, 4000, 1, 1, 1, %s)",
                tid, level, b, b, b + 1000000, zeroblob_sql(20));
        }
}

/* The summary pyramid: the 1 s and 10 s levels past pyramid_fine_days, the coarser ones past
 * aggregates_days, by bucket start, in steps of batch_rows rows at most, every terminal (the
 * terminal cursor goes on where a full step stopped and wraps at the end); nothing else. */
static void test_pyramid(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    const char *tids[] = {"A1", "B2", "B2x", "C3"};
    for (int i = 0; i < 4; i++)
        add_pyramid(f, tids[i]);
    store_retention_t p = policy();
    p.batch_rows = 7;
    p.pyramid_fine_days = 0; /* raw_days 30: forever (the default of the struct) is kept */
    p.aggregates_days = 0;
    store_retention_result_t tot;
    run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE] + tot.rows[STORE_RET_PYRAMID_COARSE], 0);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid"), 4 * 6 * 10);

    p.pyramid_fine_days = 60;
    int steps = run_pass(s, &p, &tot);
    /* 6 fine rows past 60 days per level, 2 levels, 4 terminals; no coarse one */
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE], 48);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_COARSE], 0);
    assert_true(steps >= 48 / 7 + 1);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid WHERE level < 2"), 4 * 2 * 4);
    assert_int_equal(sql_i64(f, "SELECT max(%lld - bucket_ns) FROM wave_pyramid WHERE level < 2",
                             (long long)NOW),
                     59 * DAY);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid WHERE level >= 2"), 4 * 4 * 10);

    /* coarse levels past aggregates_days; the fine ones are then capped by it too */
    p.aggregates_days = 50;
    run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_COARSE], 4 * 4 * 7); /* 400 .. 59 days */
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE], 4 * 2 * 1);   /* 59 days */
    for (int level = 0; level < 6; level++)
        assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid WHERE level = %d", level),
                         4 * 3);
    /* nothing left due: one step, nothing deleted */
    assert_int_equal(run_pass(s, &p, &tot), 1);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE] + tot.rows[STORE_RET_PYRAMID_COARSE], 0);
    /* raw_days raises a shorter pyramid_fine_days: 30 days, not 5 */
    p.aggregates_days = 0;
    p.pyramid_fine_days = 5;
    run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE], 4 * 2 * 1); /* the 40-day rows */
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid WHERE level < 2"), 4 * 2 * 2);
    store_close(s);
}

/* Many terminals with nothing due: a step looks at batch_rows terminals at most, and the pass
 * still visits them all (the cursor), deleting what is due at the last one. */
static void test_pyramid_many_terminals(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    for (int i = 0; i < 25; i++)
        sql(f,
            "INSERT INTO wave_pyramid(terminal_id, level, bucket_ns, t_first_ns, t_end_ns,"
            " seq_first, seq_last, sample_rate, time_quality, channel_mask, n, stats)"
            " VALUES('T%02d', 0, %lld, 0, 1, 1, 1, 4000, 1, 1, 1, %s)",
            i, (long long)(NOW - (i == 24 ? 100 : 1) * DAY), zeroblob_sql(20));
    store_retention_t p = policy();
    p.batch_rows = 4;
    p.pyramid_fine_days = 60;
    store_retention_result_t tot;
    int steps = run_pass(s, &p, &tot);
    assert_int_equal(tot.rows[STORE_RET_PYRAMID_FINE], 1);
    assert_true(steps >= 25 / 4);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid"), 24);
    assert_int_equal(sql_i64(f, "SELECT count(*) FROM wave_pyramid WHERE terminal_id = 'T24'"), 0);
    store_close(s);
}

static void test_plans(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f);
    char plan[16384];
    if (ut_pg()) { /* the plans are SQLite's: refused on PostgreSQL (store.h), the check skipped */
        assert_int_equal(store_retention_plan(s, plan, sizeof plan), GS_ENOTSUP);
        assert_int_equal(store_db_stats_plan(s, plan, sizeof plan), GS_ENOTSUP);
        store_close(s);
        skip();
    }
    for (int k = 0; k < 2; k++) {
        int rc = k ? store_db_stats_plan(s, plan, sizeof plan)
                   : store_retention_plan(s, plan, sizeof plan);
        assert_int_equal(rc, 0);
        fputs(plan, stdout);
        for (char *line = plan; *line;) {
            char *nl = strchr(line, '\n');
            assert_non_null(nl);
            *nl = 0;
            const char *step = strstr(line, " | ");
            assert_non_null(step);
            /* "SCAN (subquery-N)" walks a LIMITed subquery, "SCAN t" of "... ORDER BY id LIMIT"
             * (or DESC) reads the first rows in rowid order and stops; any other scan, or a sort
             * (which reads everything first), would walk a table */
            if (strstr(step, "TEMP B-TREE"))
                fail_msg("a sort: %s", line);
            if (strncmp(step + 3, "SCAN ", 5) == 0 &&
                strncmp(step + 3, "SCAN (subquery", 14) != 0 &&
                strcmp(step + 3, "SCAN CONSTANT ROW") != 0 &&
                !(strstr(line, "ORDER BY id LIMIT") || strstr(line, "ORDER BY id DESC LIMIT")))
                fail_msg("a table scan: %s", line);
            line = nl + 1;
        }
    }
    assert_int_equal(store_retention_plan(s, plan, sizeof plan), 0);
    assert_non_null(strstr(plan, "USING INDEX pq_events_terminal_start"));
    assert_non_null(strstr(plan, "pq_events_duration"));
    assert_non_null(strstr(plan, "INDEX pq_events_time (start_ns<?)"));
    assert_non_null(strstr(plan, "INDEX audit_time (time_ns<?)"));
    /* the pyramid: primary-key seeks and range deletes; the trend rows by primary key */
    assert_non_null(strstr(plan, "WHERE terminal_id >= ?1 ORDER BY terminal_id LIMIT 1 | SEARCH "
                                 "wave_pyramid USING PRIMARY KEY (terminal_id>?)"));
    assert_non_null(strstr(plan, "LIMIT 1 OFFSET ?4 | SEARCH wave_pyramid USING PRIMARY KEY "
                                 "(terminal_id=? AND level=? AND bucket_ns<?)"));
    assert_non_null(strstr(plan, "DELETE FROM wave_pyramid WHERE terminal_id = ?1 AND level = ?2 "
                                 "AND bucket_ns < ?3 | SEARCH wave_pyramid USING PRIMARY KEY "
                                 "(terminal_id=? AND level=? AND bucket_ns<?)"));
    assert_non_null(strstr(plan, "DELETE FROM measurement_trend WHERE terminal_id = ?1 AND "
                                 "interval = ?2 AND t_end_ns = ?3 | SEARCH measurement_trend "
                                 "USING PRIMARY KEY (terminal_id=? AND interval=? AND "
                                 "t_end_ns=?)"));
    assert_int_equal(store_db_stats_plan(s, plan, sizeof plan), 0);
    assert_non_null(strstr(plan, "sqlite_autoindex_blocks_1 (terminal_id>?)"));
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_and_event_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_tables, setup, teardown),
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test_setup_teardown(test_writer_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pyramid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pyramid_many_terminals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
