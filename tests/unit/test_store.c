/* Unit tests for src/store (store.h contract) against real SQLite databases in temp dirs, or with
 * GS_PG_URL against PostgreSQL (tests/unit/ut_store.h; integ.pg_store runs them so). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "wcodec/wcodec.h"
#include "tests/unit/ut_tmp.h"
#include "tests/unit/ut_store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ---- */

/* Number of schema migrations in src/store/db.c: one row each in schema_version. */
#define SCHEMA_LATEST 13 /* 9: ana_pending, 10: retention_state, 11: blocks.codec, 12: the pyramid and trends, 13: blocks.data storage (PostgreSQL) */

typedef struct {
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_store_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    ut_rm_rf(f->dir);
    free(f);
    return 0;
}

static store_t *open_ok(const char *dir)
{
    store_t *s = NULL;
    char err[256] = "";
    int rc = store_open(dir, NULL, &s, err, sizeof err);
    if (rc != 0)
        print_error("store_open(%s): %s (%s)\n", dir, err, err_name(rc));
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

/* Runs a one-value query on a separate connection to dir's database (either engine:
 * tests/unit/ut_store.h); *is_null tells NULL apart. */
static int64_t sql_value(const char *dir, const char *sql, int *is_null)
{
    return ut_db_int(dir, sql, is_null);
}

static int64_t sql_int(const char *dir, const char *sql)
{
    return sql_value(dir, sql, NULL);
}

static store_terminal_t make_terminal(const char *id)
{
    store_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.name, sizeof t.name, "Substation %s", id);
    t.has_location = 1;
    t.lat = 47.5;
    t.lon = 19.04;
    t.nominal_hz = 50;
    t.vt_ratio = 200;
    t.ct_ratio = 40;
    for (int i = 0; i < STORE_SECRET_LEN; i++)
        t.secret[i] = (uint8_t)(i + id[0]);
    return t;
}

/* Collects writer callbacks; the test thread waits on it. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n, ok, dup, err, batches;
    uint64_t last_cookie;
    int out_of_order;
} collector_t;

static void collector_init(collector_t *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void collector_reset(collector_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->n = c->ok = c->dup = c->err = c->batches = 0;
    c->last_cookie = 0;
    c->out_of_order = 0;
    pthread_mutex_unlock(&c->mu);
}

static void collector_destroy(collector_t *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

static void collect_cb(store_item_t *batch, void *ud)
{
    collector_t *c = ud;
    pthread_mutex_lock(&c->mu);
    c->batches++;
    while (batch) {
        store_item_t *next = batch->next;
        c->n++;
        if (batch->result == 0)
            c->ok++;
        else if (batch->result == 1)
            c->dup++;
        else
            c->err++;
        if (batch->cookie <= c->last_cookie)
            c->out_of_order = 1;
        c->last_cookie = batch->cookie;
        store_item_free(batch);
        batch = next;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Waits until n items were delivered (bounded: 30 s). Returns 0 or -1 on timeout. */
static int collector_wait(collector_t *c, size_t n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    while (c->n < n && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &deadline);
    int ok = c->n >= n;
    pthread_mutex_unlock(&c->mu);
    return ok ? 0 : -1;
}

static store_item_t *make_block(const char *tid, uint64_t seq, uint64_t cookie, size_t data_len)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->cookie = cookie;
    it->seq = seq;
    it->t0_ns = 1700000000000000000LL + (int64_t)seq * 20000000LL;
    it->sample_rate = 6400;
    it->channel_mask = 0x3f;
    it->nchannels = 6;
    it->sample_fmt = 1;
    it->time_quality = 2;
    it->nsamples = (uint32_t)(data_len / 12);
    it->data_len = data_len;
    it->data = xmalloc(data_len);
    for (size_t i = 0; i < data_len; i++)
        it->data[i] = (uint8_t)(seq + i);
    if (seq % 100 == 7) {
        it->is_event = 1;
        it->trigger = 1;
        it->trigger_ns = it->t0_ns + 1000;
        it->pretrigger = 5;
        it->value_permille = 850;
        it->trigger_channel = 2;
    }
    return it;
}

static double now_s(void)
{
    return (double)time_mono_ns() / 1e9;
}

/* ---- Lifecycle ---- */

/* Removing a terminal or replacing its secret changes the credentials version (triggers),
 * whichever connection does it; adding one does not. */
static void test_credentials_version(void **state)
{
    fixture_t *f = *state;
    store_t *a = open_ok(f->dir), *b = open_ok(f->dir);
    int64_t v0, v;
    assert_int_equal(store_credentials_version(a, &v0), 0);
    store_terminal_t t = make_terminal("CV1");
    assert_int_equal(store_terminal_add(b, &t), 0);
    assert_int_equal(store_credentials_version(a, &v), 0);
    assert_true(v == v0);
    uint8_t secret[STORE_SECRET_LEN] = {9};
    assert_int_equal(store_terminal_set_secret(b, "CV1", secret), 0);
    assert_int_equal(store_credentials_version(a, &v), 0);
    assert_true(v == v0 + 1);
    assert_int_equal(store_terminal_remove(b, "CV1"), 0);
    assert_int_equal(store_credentials_version(a, &v), 0);
    assert_true(v == v0 + 2);
    store_close(a);
    store_close(b);
}

/* Command state changes submitted to the writer apply in order, carry the result blob, and leave
 * a final state alone (GS_ESTATE), like store_command_update. */
static void test_writer_command_update(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("CU1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    int64_t id;
    assert_int_equal(store_command_create(s, "CU1", 2, NULL, 0, 3600000000000LL, &id), 0);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    static const int states[] = {STORE_CMD_SENT, STORE_CMD_DONE, STORE_CMD_FAILED};
    static const uint8_t res[] = {11, 8, 0, 42, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_COMMAND_UPDATE);
        snprintf(it->terminal_id, sizeof it->terminal_id, "CU1");
        it->cookie = (uint64_t)i + 1;
        it->cmd_id = id;
        it->cmd_state = states[i];
        it->cmd_result_status = i == 0 ? -1 : (i == 1 ? 0 : 5);
        if (i > 0) {
            it->data = xmalloc(sizeof res);
            memcpy(it->data, res, sizeof res);
            it->data_len = sizeof res;
        }
        assert_int_equal(store_submit(s, it), 0);
    }
    assert_int_equal(collector_wait(&col, 3), 0);
    assert_int_equal(col.ok, 2);
    assert_int_equal(col.err, 1); /* the late FAILED after DONE: GS_ESTATE */
    store_command_t c;
    assert_int_equal(store_command_get(s, id, &c), 0);
    assert_int_equal(c.state, STORE_CMD_DONE);
    assert_int_equal(c.result_status, 0);
    assert_int_equal(c.result_len, sizeof res);
    assert_memory_equal(c.result, res, sizeof res);
    store_close(s);
    collector_destroy(&col);
}

static int ev_list_cb(void *ud, const store_pq_event_t *e)
{
    store_pq_event_t *out = ud;
    int n = out[0].worst_channel; /* slot 0 counts */
    if (n < 4)
        out[1 + n] = *e;
    out[0].worst_channel = n + 1;
    return 0;
}

static int m_list_cb(void *ud, const store_measurement_t *m)
{
    char *out = ud;
    strncat(out, m->interval, 255 - strlen(out));
    strncat(out, "=", 255 - strlen(out));
    /* The JSON object without the blanks between tokens: PostgreSQL keeps it as jsonb and hands
     * out its own spelling ({"a": 9} for {"a":9}); the object is the same. */
    char data[256];
    size_t n = 0;
    int in_str = 0;
    for (const char *p = m->data; *p && n + 1 < sizeof data; p++) {
        if (!ut_pg()) { /* SQLite: the bytes as stored */
        } else if (in_str && *p == '\\' && p[1]) {
            data[n++] = *p++;
        } else if (*p == '"') {
            in_str = !in_str;
        } else if (!in_str && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) {
            continue;
        }
        if (n + 1 < sizeof data)
            data[n++] = *p;
    }
    data[n] = 0;
    strncat(out, data, 255 - strlen(out));
    strncat(out, ";", 255 - strlen(out));
    return 0;
}

/* Analysis results through the writer: events and measurements stored once (a repeat is a
 * duplicate), listed by terminal, time and interval; the declared voltage round-trips. */
static void test_analysis_results(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("AN1");
    t.declared_v = 57.735;
    assert_int_equal(store_terminal_add(s, &t), 0);
    store_terminal_t got;
    assert_int_equal(store_terminal_get(s, "AN1", &got), 0);
    assert_true(fabs(got.declared_v - 57.735) < 1e-9);
    assert_int_equal(store_terminal_set_declared_v(s, "AN1", 0), 0);
    assert_int_equal(store_terminal_get(s, "AN1", &got), 0);
    assert_true(got.declared_v == 0);
    assert_int_equal(store_terminal_set_declared_v(s, "NOPE", 1), GS_ENOTFOUND);
    assert_int_equal(store_terminal_set_declared_v(s, "AN1", -1), GS_EINVAL);

    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    for (int i = 0; i < 3; i++) { /* the third repeats the first */
        store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "AN1");
        snprintf(it->reason, sizeof it->reason, "%s", i == 1 ? "swell" : "dip");
        it->ev_start_ns = 1000 + (i == 1) * 5000;
        it->ev_duration_ns = 200000000;
        it->ev_extreme = 30.5;
        it->ev_extreme_pct = 52.8;
        it->ev_reference = 57.735;
        it->ev_channels = 5;
        it->ev_worst_channel = 2;
        it->ev_flags = 1;
        if (i != 1) { /* the swell comes without names, as from an older writer */
            it->data = (uint8_t *)xstrdup("Ua,Uc");
            it->data_len = 5;
            snprintf(it->ev_worst_name, sizeof it->ev_worst_name, "Uc");
        }
        assert_int_equal(store_submit(s, it), 0);
    }
    for (int i = 0; i < 3; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_MEASUREMENT);
        snprintf(it->terminal_id, sizeof it->terminal_id, "AN1");
        snprintf(it->reason, sizeof it->reason, "%s", i == 1 ? "10min" : "3s");
        it->m_start_ns = 0;
        it->m_end_ns = i == 1 ? 600 : 3;
        it->m_count = 15;
        const char *js = i == 1 ? "{\"b\":2}" : "{\"a\":1}";
        it->data = (uint8_t *)xstrdup(js);
        it->data_len = strlen(js);
        assert_int_equal(store_submit(s, it), 0);
    }
    /* the same 3 s interval again, aggregating more windows: this one is kept */
    store_item_t *more = store_item_new(STORE_ITEM_MEASUREMENT);
    snprintf(more->terminal_id, sizeof more->terminal_id, "AN1");
    snprintf(more->reason, sizeof more->reason, "3s");
    more->m_end_ns = 3;
    more->m_count = 20;
    more->data = (uint8_t *)xstrdup("{\"a\":9}");
    more->data_len = 7;
    assert_int_equal(store_submit(s, more), 0);
    assert_int_equal(collector_wait(&col, 7), 0);
    assert_int_equal(col.err, 0);

    store_pq_event_t ev[5];
    memset(ev, 0, sizeof ev);
    assert_int_equal(store_pq_event_list(s, "AN1", INT64_MIN, INT64_MAX, 10, ev_list_cb, ev), 0);
    assert_int_equal(ev[0].worst_channel, 2); /* two events: the repeat was ignored */
    assert_string_equal(ev[1].kind, "swell"); /* newest first */
    assert_string_equal(ev[2].kind, "dip");
    assert_int_equal(ev[2].start_ns, 1000);
    assert_int_equal(ev[2].channels, 5);
    assert_int_equal(ev[2].flags, 1);
    assert_true(fabs(ev[2].extreme_pct - 52.8) < 1e-9);
    assert_int_equal(ev[2].worst_channel, 2);
    assert_true(ev[2].has_names); /* the names round-trip beside mask and index */
    assert_string_equal(ev[2].channel_names, "Ua,Uc");
    assert_string_equal(ev[2].worst_channel_name, "Uc");
    assert_false(ev[1].has_names); /* stored as NULL, not as "" */
    assert_string_equal(ev[1].channel_names, "");
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM pq_events WHERE channel_names IS NULL"
                                     " AND worst_channel_name IS NULL AND kind = 'swell'"),
                     1);
    memset(ev, 0, sizeof ev);
    assert_int_equal(store_pq_event_list(s, NULL, 2000, INT64_MAX, 10, ev_list_cb, ev), 0);
    assert_int_equal(ev[0].worst_channel, 1); /* time filter, all terminals */

    char out[256] = "";
    assert_int_equal(
        store_measurement_list(s, "AN1", "3s", INT64_MIN, INT64_MAX, 100, m_list_cb, out), 0);
    assert_string_equal(out, "3s={\"a\":9};"); /* 15 windows, again 15 (kept), then 20 */
    out[0] = 0;
    assert_int_equal(store_measurement_list(s, "AN1", "10min", 0, 600, 100, m_list_cb, out), 0);
    assert_string_equal(out, "10min={\"b\":2};");
    out[0] = 0;
    assert_int_equal(store_measurement_list(s, "AN1", "10min", 600, 1200, 100, m_list_cb, out), 0);
    assert_string_equal(out, "");
    store_close(s);
    collector_destroy(&col);
}

static void test_open_migrate_reopen(void **state)
{
    fixture_t *f = *state;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a/b/data", f->dir); /* mkdir -p */

    store_t *s = open_ok(dir);
    assert_int_equal(store_schema_version(s), SCHEMA_LATEST);
    store_close(s);

    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0700, 0700);
    assert_int_equal(sb.st_mode & 0077, 0); /* created 0700 */

    assert_int_equal(sql_int(dir, "SELECT count(*) FROM schema_version"), SCHEMA_LATEST);
    assert_int_equal(sql_int(dir, "SELECT max(version) FROM schema_version"), SCHEMA_LATEST);

    /* Reopen: same version, nothing re-applied, data kept. */
    s = open_ok(dir);
    assert_int_equal(store_schema_version(s), SCHEMA_LATEST);
    store_terminal_t t = make_terminal("T1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    store_close(s);
    s = open_ok(dir);
    assert_int_equal(store_schema_version(s), SCHEMA_LATEST);
    int64_t n = 0;
    assert_int_equal(store_terminal_count(s, &n), 0);
    assert_int_equal(n, 1);
    store_close(s);
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM schema_version"), SCHEMA_LATEST);

    /* WAL is persistent in the file (SQLite's journal; PostgreSQL has none to choose). */
    if (!ut_pg()) {
        char path[300];
        snprintf(path, sizeof path, "%s/gridsense.db", dir);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        sqlite3_close(db);
    }

    store_close(NULL); /* no-op */
}

typedef struct {
    const char *dir;
    int rc;
    int version;
} opener_t;

static void *opener_main(void *arg)
{
    opener_t *o = arg;
    store_t *s = NULL;
    char err[256];
    o->rc = store_open(o->dir, NULL, &s, err, sizeof err);
    if (o->rc == 0) {
        o->version = store_schema_version(s);
        store_close(s);
    }
    return NULL;
}

static void test_open_concurrent(void **state)
{
    fixture_t *f = *state;
    enum { N = 6 };
    pthread_t th[N];
    opener_t o[N];
    for (int i = 0; i < N; i++) {
        o[i] = (opener_t){f->dir, -1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, opener_main, &o[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(o[i].rc, 0);
        assert_int_equal(o[i].version, SCHEMA_LATEST);
    }
    /* Exactly one opener applied the migration. */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM schema_version"), SCHEMA_LATEST);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    char path[256], err[256];
    store_t *s = (store_t *)1;

    assert_int_equal(store_open("", NULL, &s, err, sizeof err), GS_EINVAL);
    s = (store_t *)1;

    /* A file that is not a database. */
    snprintf(path, sizeof path, "%s/gridsense.db", f->dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, just text. ", fp);
    fclose(fp);
    err[0] = 0;
    if (!ut_pg()) { /* the SQLite file (on PostgreSQL nothing reads it) */
        assert_int_equal(store_open(f->dir, NULL, &s, err, sizeof err), GS_EDB);
        assert_null(s);
        assert_non_null(strstr(err, "cannot open "));
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "file is not a database"));
    }

    /* data_dir is a regular file. */
    s = (store_t *)1;
    assert_int_not_equal(store_open(path, NULL, &s, err, sizeof err), 0);
    assert_null(s);
    assert_non_null(strstr(err, "cannot create directory"));

    if (ut_pg()) /* the rest is about SQLite's file */
        return;
    /* gridsense.db is a directory. */
    char dir2[256], sub[300];
    snprintf(dir2, sizeof dir2, "%s/d2", f->dir);
    snprintf(sub, sizeof sub, "%s/gridsense.db", dir2);
    assert_int_equal(mkdir(dir2, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    s = (store_t *)1;
    assert_int_equal(store_open(dir2, NULL, &s, err, sizeof err), GS_EDB);
    assert_null(s);
    assert_non_null(strstr(err, "cannot open "));

    /* err may be omitted. */
    assert_int_equal(store_open(dir2, NULL, &s, NULL, 0), GS_EDB);
}

static void test_open_opts(void **state)
{
    fixture_t *f = *state;
    store_opts_t o = {0};
    o.busy_timeout_ms = 100;
    store_t *s = NULL;
    char err[256];
    assert_int_equal(store_open(f->dir, &o, &s, err, sizeof err), 0);
    store_close(s);
    o.sync_full = 1;
    o.busy_timeout_ms = 0;
    assert_int_equal(store_open(f->dir, &o, &s, err, sizeof err), 0);
    store_close(s);
}

/* ---- Terminals ---- */

typedef struct {
    char ids[8][STORE_ID_MAX + 1];
    int n;
    int stop_after;
} list_t;

static int list_cb(void *ud, const store_terminal_t *t)
{
    list_t *l = ud;
    if (l->n < 8)
        snprintf(l->ids[l->n], sizeof l->ids[0], "%s", t->id);
    l->n++;
    return l->stop_after && l->n >= l->stop_after ? 42 : 0;
}

static void test_terminals(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);

    store_terminal_t t = make_terminal("PQ-0002");
    assert_int_equal(store_terminal_add(s, &t), 0);
    store_terminal_t t2 = make_terminal("pq.0001_a");
    t2.has_location = 0;
    t2.nominal_hz = 0; /* defaults */
    t2.vt_ratio = 0;
    t2.ct_ratio = 0;
    assert_int_equal(store_terminal_add(s, &t2), 0);
    assert_int_equal(store_terminal_add(s, &t), GS_EEXISTS);

    /* Invalid ids and values. */
    store_terminal_t bad = make_terminal("x");
    const char *bad_ids[] = {"", "has space", "slash/", "semi;colon", "\xc3\xbcn", "a\nb"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        snprintf(bad.id, sizeof bad.id, "%s", bad_ids[i]);
        assert_int_equal(store_terminal_add(s, &bad), GS_EINVAL);
    }
    memset(bad.id, 'x', sizeof bad.id); /* 33 characters, unterminated: refused, not overrun */
    assert_int_equal(store_terminal_add(s, &bad), GS_EINVAL);
    snprintf(bad.id, sizeof bad.id, "%s", "12345678901234567890123456789012"); /* 32: ok */
    assert_int_equal(store_terminal_add(s, &bad), 0);
    store_terminal_t bad_hz = make_terminal("hz");
    bad_hz.nominal_hz = 55;
    assert_int_equal(store_terminal_add(s, &bad_hz), GS_EINVAL);
    bad_hz.nominal_hz = 60;
    bad_hz.lat = 91;
    assert_int_equal(store_terminal_add(s, &bad_hz), GS_EINVAL);

    store_terminal_t g;
    assert_int_equal(store_terminal_get(s, "PQ-0002", &g), 0);
    assert_string_equal(g.id, "PQ-0002");
    assert_string_equal(g.name, "Substation PQ-0002");
    assert_true(g.has_location);
    assert_true(g.lat == 47.5 && g.lon == 19.04);
    assert_int_equal(g.nominal_hz, 50);
    assert_true(g.vt_ratio == 200 && g.ct_ratio == 40);
    assert_memory_equal(g.secret, t.secret, STORE_SECRET_LEN);
    assert_true(g.created_ns > 0);
    assert_int_equal(g.durable_seq, 0);

    assert_int_equal(store_terminal_get(s, "pq.0001_a", &g), 0);
    assert_false(g.has_location);
    assert_int_equal(g.nominal_hz, 50);
    assert_true(g.vt_ratio == 1 && g.ct_ratio == 1);
    assert_int_equal(store_terminal_get(s, "nope", &g), GS_ENOTFOUND);

    int64_t n = 0;
    assert_int_equal(store_terminal_count(s, &n), 0);
    assert_int_equal(n, 3);

    list_t l = {0};
    assert_int_equal(store_terminal_list(s, list_cb, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], "12345678901234567890123456789012");
    assert_string_equal(l.ids[1], "PQ-0002");
    assert_string_equal(l.ids[2], "pq.0001_a");
    list_t l2 = {.stop_after = 2};
    assert_int_equal(store_terminal_list(s, list_cb, &l2), 42);
    assert_int_equal(l2.n, 2);

    uint8_t secret[STORE_SECRET_LEN];
    memset(secret, 0xAB, sizeof secret);
    assert_int_equal(store_terminal_set_secret(s, "PQ-0002", secret), 0);
    assert_int_equal(store_terminal_get(s, "PQ-0002", &g), 0);
    assert_memory_equal(g.secret, secret, STORE_SECRET_LEN);
    assert_int_equal(store_terminal_set_secret(s, "nope", secret), GS_ENOTFOUND);

    assert_int_equal(store_terminal_remove(s, "PQ-0002"), 0);
    assert_int_equal(store_terminal_remove(s, "PQ-0002"), GS_ENOTFOUND);
    assert_int_equal(store_terminal_get(s, "PQ-0002", &g), GS_ENOTFOUND);
    assert_int_equal(store_terminal_count(s, &n), 0);
    assert_int_equal(n, 2);
    /* Can be re-added after removal. */
    assert_int_equal(store_terminal_add(s, &t), 0);
    store_close(s);
}

/* ---- Commands ---- */

typedef struct {
    int64_t ids[16];
    int n;
} cmds_t;

static int cmd_cb(void *ud, const store_command_t *c)
{
    cmds_t *l = ud;
    if (l->n < 16)
        l->ids[l->n] = c->id;
    l->n++;
    return 0;
}

/* Protocol decision 1: states only move forward. The loop reads a command's state from the
 * database and submits its changes through the writer, so a stale read can submit `sent` for a
 * command whose RESULT ACCEPTED (acked) is still queued ahead of it (a terminal that reconnects
 * while the writer lags re-receives it): applied in order, that `sent` must not undo `acked`, or
 * the command would be re-sent at every later session. */
static void test_writer_command_no_regress(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("CR1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    int64_t id;
    assert_int_equal(store_command_create(s, "CR1", 2, NULL, 0, 3600000000000LL, &id), 0);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    static const int states[] = {STORE_CMD_SENT, STORE_CMD_ACKED, STORE_CMD_SENT};
    for (int i = 0; i < 3; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_COMMAND_UPDATE);
        snprintf(it->terminal_id, sizeof it->terminal_id, "CR1");
        it->cookie = (uint64_t)i + 1;
        it->cmd_id = id;
        it->cmd_state = states[i];
        it->cmd_result_status = states[i] == STORE_CMD_ACKED ? 1 : -1;
        assert_int_equal(store_submit(s, it), 0);
    }
    assert_int_equal(collector_wait(&col, 3), 0);
    assert_int_equal(col.ok, 2);
    assert_int_equal(col.err, 1); /* the stale `sent`: GS_ESTATE */
    store_command_t c;
    assert_int_equal(store_command_get(s, id, &c), 0);
    assert_int_equal(c.state, STORE_CMD_ACKED);
    assert_int_equal(c.result_status, 1);
    cmds_t l = {0};
    assert_int_equal(store_command_pending(s, "CR1", 0, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 0); /* not re-sent at the next session */
    /* the synchronous API keeps the same order */
    assert_int_equal(store_command_update(s, id, STORE_CMD_QUEUED, -1, NULL, 0), GS_ESTATE);
    assert_int_equal(store_command_update(s, id, STORE_CMD_ACKED, 1, NULL, 0), 0);
    assert_int_equal(store_command_update(s, id, STORE_CMD_DONE, 0, NULL, 0), 0);
    store_close(s);
    collector_destroy(&col);
}

static void test_commands(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("T1"), t2 = make_terminal("T2");
    assert_int_equal(store_terminal_add(s, &t), 0);
    assert_int_equal(store_terminal_add(s, &t2), 0);

    const uint8_t args[] = {1, 2, 0, 10, 0};
    int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0;
    int64_t before = time_utc_ns();
    assert_int_equal(store_command_create(s, "T1", 2, args, sizeof args, 60000000000LL, &id1), 0);
    assert_true(id1 > 0);
    assert_int_equal(store_command_create(s, "T1", 1, NULL, 0, 60000000000LL, &id2), 0);
    assert_int_equal(store_command_create(s, "T2", 7, NULL, 0, 60000000000LL, &id3), 0);
    assert_true(id1 < id2 && id2 < id3);
    assert_int_equal(store_command_create(s, "nope", 1, NULL, 0, 1000, &id4), GS_ENOTFOUND);
    uint8_t big[STORE_ARGS_MAX + 1] = {0};
    assert_int_equal(store_command_create(s, "T1", 1, big, sizeof big, 1000, &id4), GS_ERANGE);
    assert_int_equal(store_command_create(s, "T1", 1, big, STORE_ARGS_MAX, 1000, &id4), 0);
    assert_int_equal(store_command_update(s, id4, STORE_CMD_FAILED, 5, NULL, 0), 0);

    store_command_t c;
    assert_int_equal(store_command_get(s, id1, &c), 0);
    assert_int_equal(c.id, id1);
    assert_string_equal(c.terminal_id, "T1");
    assert_int_equal(c.verb, 2);
    assert_int_equal(c.args_len, sizeof args);
    assert_memory_equal(c.args, args, sizeof args);
    assert_int_equal(c.state, STORE_CMD_QUEUED);
    assert_int_equal(c.result_status, -1);
    assert_int_equal(c.result_len, 0);
    assert_true(c.created_ns >= before && c.updated_ns == c.created_ns);
    assert_int_equal(c.expires_ns, c.created_ns + 60000000000LL);
    assert_int_equal(store_command_get(s, 999999, &c), GS_ENOTFOUND);

    cmds_t l = {0};
    assert_int_equal(store_command_list(s, NULL, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.ids[0], id4); /* newest first */
    l = (cmds_t){0};
    assert_int_equal(store_command_list(s, "T1", 2, cmd_cb, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], id4);
    assert_int_equal(l.ids[1], id2);

    l = (cmds_t){0};
    assert_int_equal(store_command_pending(s, "T1", 0, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 2); /* id4 is failed */
    assert_int_equal(l.ids[0], id1);
    assert_int_equal(l.ids[1], id2);
    /* paged: after an id, at most `limit` */
    l = (cmds_t){0};
    assert_int_equal(store_command_pending(s, "T1", 0, 1, cmd_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], id1);
    l = (cmds_t){0};
    assert_int_equal(store_command_pending(s, "T1", id1, 5, cmd_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], id2);
    int64_t np = 0;
    assert_int_equal(store_command_count_pending(s, "T1", &np), 0);
    assert_int_equal(np, 2);

    l = (cmds_t){0};
    assert_int_equal(store_command_new_since(s, id1, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], id2);
    assert_int_equal(l.ids[1], id3);

    /* State machine: non-final states only move forward (queued, sent, acked); final ones are
     * immutable. */
    assert_int_equal(store_command_update(s, id1, STORE_CMD_SENT, -1, NULL, 0), 0);
    assert_int_equal(store_command_get(s, id1, &c), 0);
    assert_int_equal(c.state, STORE_CMD_SENT);
    assert_int_equal(c.result_status, -1);
    l = (cmds_t){0};
    assert_int_equal(store_command_new_since(s, 0, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 2); /* only queued ones */
    l = (cmds_t){0};
    assert_int_equal(store_command_new_since(s, 0, 1, cmd_cb, &l), 0);
    assert_int_equal(l.n, 1); /* paged */
    int64_t maxid = 0;
    assert_int_equal(store_command_max_id(s, &maxid), 0);
    assert_int_equal(maxid, id4);
    const uint8_t res[] = {11, 8, 0, 0, 0, 0, 0, 0, 0, 0, 42};
    assert_int_equal(store_command_update(s, id1, STORE_CMD_ACKED, 1, NULL, 0), 0);
    /* Protocol decision 1: an acked command is not re-sent at a new session, but it is still
     * pending (it counts against the limit until its final result or expiry). */
    l = (cmds_t){0};
    assert_int_equal(store_command_pending(s, "T1", 0, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], id2);
    assert_int_equal(store_command_count_pending(s, "T1", &np), 0);
    assert_int_equal(np, 2);
    assert_int_equal(store_command_update(s, id1, STORE_CMD_DONE, 0, res, sizeof res), 0);
    assert_int_equal(store_command_get(s, id1, &c), 0);
    assert_int_equal(c.state, STORE_CMD_DONE);
    assert_int_equal(c.result_status, 0);
    assert_int_equal(c.result_len, sizeof res);
    assert_memory_equal(c.result, res, sizeof res);
    assert_true(c.updated_ns >= c.created_ns);
    assert_int_equal(store_command_update(s, id1, STORE_CMD_SENT, -1, NULL, 0), GS_ESTATE);
    assert_int_equal(store_command_update(s, id1, STORE_CMD_FAILED, 5, NULL, 0), GS_ESTATE);
    assert_int_equal(store_command_get(s, id1, &c), 0);
    assert_int_equal(c.state, STORE_CMD_DONE);
    assert_int_equal(c.result_status, 0);
    assert_int_equal(store_command_update(s, 999999, STORE_CMD_SENT, -1, NULL, 0), GS_ENOTFOUND);
    assert_int_equal(store_command_update(s, id2, 7, -1, NULL, 0), GS_EINVAL);
    assert_int_equal(store_command_update(s, id2, STORE_CMD_DONE, 0, big, sizeof big), GS_ERANGE);

    /* Expiry: id2 (T1, queued) and id3 (T2, queued) expire; done/failed ones do not. */
    int n = -1;
    assert_int_equal(store_command_expire(s, time_utc_ns(), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_command_expire(s, time_utc_ns() + 61000000000LL, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_command_get(s, id2, &c), 0);
    assert_int_equal(c.state, STORE_CMD_EXPIRED);
    assert_int_equal(store_command_get(s, id4, &c), 0);
    assert_int_equal(c.state, STORE_CMD_FAILED);
    assert_int_equal(store_command_update(s, id2, STORE_CMD_SENT, -1, NULL, 0), GS_ESTATE);
    assert_int_equal(store_command_expire(s, time_utc_ns() + 61000000000LL, &n), 0);
    assert_int_equal(n, 0);

    /* A command with ttl 0 is never pending. */
    int64_t id5 = 0;
    assert_int_equal(store_command_create(s, "T2", 1, NULL, 0, 0, &id5), 0);
    l = (cmds_t){0};
    assert_int_equal(store_command_pending(s, "T2", 0, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 0);

    /* Removing a terminal drops its non-final commands and keeps the history; ids are never
     * reused. */
    int64_t id6 = 0;
    assert_int_equal(store_command_create(s, "T2", 1, NULL, 0, 60000000000LL, &id6), 0);
    assert_int_equal(store_terminal_remove(s, "T2"), 0);
    assert_int_equal(store_command_get(s, id6, &c), GS_ENOTFOUND);
    assert_int_equal(store_command_get(s, id5, &c), GS_ENOTFOUND);
    assert_int_equal(store_command_get(s, id3, &c), 0); /* expired: kept */
    assert_int_equal(store_command_create(s, "T2", 1, NULL, 0, 1000, &id4), GS_ENOTFOUND);
    assert_int_equal(store_terminal_add(s, &t2), 0);
    int64_t id7 = 0;
    assert_int_equal(store_command_create(s, "T2", 1, NULL, 0, 60000000000LL, &id7), 0);
    assert_true(id7 > id6);

    assert_string_equal(store_cmd_state_name(STORE_CMD_QUEUED), "queued");
    assert_string_equal(store_cmd_state_name(STORE_CMD_EXPIRED), "expired");
    assert_string_equal(store_cmd_state_name(STORE_CMD_CANCELLED), "cancelled");
    assert_null(store_cmd_state_name(7));
    assert_null(store_cmd_state_name(-1));
    store_close(s);
}

/* The pending limit counts queued, sent and acked commands that have not expired. */
static void test_command_limit(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("L1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    int64_t id[4] = {0}, x = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            store_command_create_limited(s, "L1", 1, NULL, 0, 60000000000LL, 3, &id[i]), 0);
    assert_int_equal(store_command_create_limited(s, "L1", 1, NULL, 0, 60000000000LL, 3, &x),
                     GS_ELIMIT);
    assert_int_equal(store_command_create_limited(s, "L2", 1, NULL, 0, 60000000000LL, 3, &x),
                     GS_ENOTFOUND);
    assert_int_equal(store_command_update(s, id[0], STORE_CMD_ACKED, 1, NULL, 0), 0);
    assert_int_equal(store_command_create_limited(s, "L1", 1, NULL, 0, 60000000000LL, 3, &x),
                     GS_ELIMIT); /* acked is still pending */
    assert_int_equal(store_command_update(s, id[0], STORE_CMD_DONE, 0, NULL, 0), 0);
    assert_int_equal(store_command_create_limited(s, "L1", 1, NULL, 0, 60000000000LL, 3, &id[3]),
                     0);
    assert_int_equal(store_command_create_limited(s, "L1", 1, NULL, 0, 60000000000LL, 0, &x), 0);
    int64_t np = 0;
    assert_int_equal(store_command_count_pending(s, "L1", &np), 0);
    assert_int_equal(np, 4);
    store_close(s);
}

/* Collects every delivered item without freeing it (the test inspects and frees them). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    store_item_t *items[16];
    int n;
} keep_t;

static void keep_cb(store_item_t *batch, void *ud)
{
    keep_t *k = ud;
    pthread_mutex_lock(&k->mu);
    while (batch) {
        store_item_t *next = batch->next;
        batch->next = NULL;
        if (k->n < 16)
            k->items[k->n++] = batch;
        else
            store_item_free(batch);
        batch = next;
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static int keep_wait(keep_t *k, int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    int rc = 0;
    pthread_mutex_lock(&k->mu);
    while (k->n < n && rc == 0)
        rc = pthread_cond_timedwait(&k->cv, &k->mu, &deadline);
    int ok = k->n >= n;
    pthread_mutex_unlock(&k->mu);
    return ok ? 0 : -1;
}

static store_item_t *make_create(const char *tid, int verb, int max_pending)
{
    store_item_t *it = store_item_new(STORE_ITEM_COMMAND_CREATE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->cmd_verb = verb;
    it->cmd_ttl_ns = 60000000000LL;
    it->cmd_max_pending = max_pending;
    it->when_ns = time_utc_ns();
    return it;
}

/* The server's loop thread never writes: command creation and expiry are writer items. A
 * creation still waiting for the write lock can be cancelled and is then never written; one the
 * writer has taken cannot. The read-only synchronous connection refuses writes at once. */
static void test_writer_command_create(void **state)
{
    fixture_t *f = *state;
    store_t *s = NULL;
    char err[256];
    store_opts_t so = {.sync_full = 1, .busy_timeout_ms = 5000, .sync_read_only = 1};
    {
        store_t *admin = open_ok(f->dir);
        store_terminal_t t = make_terminal("W1");
        assert_int_equal(store_terminal_add(admin, &t), 0);
        store_close(admin);
    }
    assert_int_equal(store_open(f->dir, &so, &s, err, sizeof err), 0);
    int64_t x;
    int64_t t0 = time_utc_ns();
    assert_int_equal(store_command_create(s, "W1", 1, NULL, 0, 1000, &x), GS_EDB);
    assert_true(time_utc_ns() - t0 < 1000000000LL); /* refused, not waited for */

    keep_t k;
    memset(&k, 0, sizeof k);
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    assert_int_equal(store_writer_start(s, keep_cb, &k), 0);

    const uint8_t args[] = {1, 2, 0, 20, 0};
    store_item_t *a = make_create("W1", 2, 2);
    a->data = xmalloc(sizeof args);
    memcpy(a->data, args, sizeof args);
    a->data_len = sizeof args;
    assert_int_equal(store_submit(s, a), 0);
    assert_int_equal(store_submit(s, make_create("W1", 1, 2)), 0);
    assert_int_equal(store_submit(s, make_create("W1", 1, 2)), 0); /* over the limit */
    assert_int_equal(store_submit(s, make_create("NOPE", 1, 2)), 0);
    assert_int_equal(keep_wait(&k, 4), 0);
    assert_int_equal(k.items[0]->result, 0);
    assert_int_equal(k.items[1]->result, 0);
    assert_true(k.items[0]->cmd_id > 0 && k.items[1]->cmd_id > k.items[0]->cmd_id);
    assert_int_equal(k.items[2]->result, GS_ELIMIT);
    assert_int_equal(k.items[3]->result, GS_ENOTFOUND);
    store_command_t c;
    assert_int_equal(store_command_get(s, k.items[0]->cmd_id, &c), 0);
    assert_int_equal(c.state, STORE_CMD_QUEUED);
    assert_int_equal(c.verb, 2);
    assert_int_equal(c.args_len, sizeof args);
    assert_memory_equal(c.args, args, sizeof args);
    assert_int_equal(c.created_ns, k.items[0]->when_ns);
    assert_int_equal(c.expires_ns, c.created_ns + 60000000000LL);
    int64_t first = k.items[0]->cmd_id;
    for (int i = 0; i < 4; i++)
        store_item_free(k.items[i]);
    k.n = 0;
    store_writer_stats_t ws;
    store_writer_stats(s, &ws);
    assert_int_equal(ws.errors, 0); /* refusals are answers, not store errors */

    /* Expiry through the writer. */
    store_item_t *e = store_item_new(STORE_ITEM_COMMAND_EXPIRE);
    e->when_ns = time_utc_ns() + 61000000000LL;
    assert_int_equal(store_command_any_expired(s, e->when_ns), 1);
    assert_int_equal(store_submit(s, e), 0);
    assert_int_equal(keep_wait(&k, 1), 0);
    assert_int_equal(k.items[0]->result, 0);
    assert_int_equal(k.items[0]->cmd_count, 2);
    assert_int_equal(store_command_any_expired(s, time_utc_ns() + 61000000000LL), 0);
    assert_int_equal(store_command_get(s, first, &c), 0);
    assert_int_equal(c.state, STORE_CMD_EXPIRED);
    store_item_free(k.items[0]);
    k.n = 0;

    /* Lock held by another connection: a creation waits; cancelled, it is never written. On
     * PostgreSQL the lock that keeps the writer from creating a command is one on the commands
     * table. */
    sqlx_t *db = ut_db_open(f->dir);
    /* The writer retries failing batches with BEGIN IMMEDIATE: this connection's own statements
     * (the trigger below, dropped while the writer retries) wait for the lock between attempts
     * instead of failing with SQLITE_BUSY. */
    assert_int_equal(sqlx_set_busy_timeout(db, 10000), 0);
    assert_int_equal(
        sqlx_exec(db, UT_SQL("BEGIN EXCLUSIVE", "BEGIN; LOCK TABLE commands IN EXCLUSIVE MODE")),
        0);
    store_item_t *b = make_create("W1", 7, 0);
    assert_int_equal(store_submit(s, b), 0);
    struct timespec half = {0, 500000000L};
    nanosleep(&half, NULL);
    assert_int_equal(store_item_cancel(s, b), 0);
    store_item_t *d = make_create("W1", 6, 0);
    assert_int_equal(store_submit(s, d), 0);
    assert_int_equal(sqlx_exec(db, "COMMIT"), 0);
    assert_int_equal(keep_wait(&k, 2), 0);
    assert_int_equal(k.items[0]->result, GS_ETIMEOUT);
    assert_int_equal(k.items[1]->result, 0);
    assert_int_equal(store_item_cancel(s, k.items[1]), GS_ESTATE); /* taken: too late */
    cmds_t l = {0};
    assert_int_equal(store_command_list(s, "W1", 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 3); /* the two created above and d; b never */
    assert_int_equal(l.ids[0], k.items[1]->cmd_id);
    store_item_free(k.items[0]);
    store_item_free(k.items[1]);
    k.n = 0;

    /* A batch that fails after BEGIN IMMEDIATE (here a trigger refuses the insert) is rolled
     * back and retried: the creation it had claimed was not written, so the loop can still
     * cancel it (and answer 503) instead of waiting for the database to recover. */
    assert_int_equal(sqlx_exec(db, UT_SQL("CREATE TRIGGER refuse BEFORE INSERT ON commands BEGIN "
                                          "SELECT RAISE(ABORT, 'refused by test'); END",
                                          "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE "
                                          "plpgsql AS $$BEGIN RAISE EXCEPTION 'refused by test';"
                                          " END$$; CREATE TRIGGER refuse BEFORE INSERT ON "
                                          "commands FOR EACH ROW EXECUTE FUNCTION refuse()")),
                     0);
    store_writer_stats(s, &ws);
    uint64_t retries0 = ws.retries;
    store_item_t *r = make_create("W1", 5, 0);
    assert_int_equal(store_submit(s, r), 0);
    for (int i = 0; i < 300 && ws.retries == retries0; i++) { /* bounded: 30 s */
        struct timespec tenth = {0, 100000000L};
        nanosleep(&tenth, NULL);
        store_writer_stats(s, &ws);
    }
    assert_true(ws.retries > retries0); /* tried and rolled back at least once */
    /* Between attempts the claim is released; during one (a few ms every 0.1..5 s) it is held,
     * so a cancel may find it taken and, like the gateway's tick, tries again (bounded: 10 s). */
    int cancelled = store_item_cancel(s, r);
    for (int i = 0; i < 1000 && cancelled != 0; i++) {
        struct timespec ms10 = {0, 10000000L};
        nanosleep(&ms10, NULL);
        cancelled = store_item_cancel(s, r);
    }
    assert_int_equal(cancelled, 0);
    assert_int_equal(sqlx_exec(db, UT_SQL("DROP TRIGGER refuse", "DROP TRIGGER refuse ON commands")),
                     0);
    assert_int_equal(keep_wait(&k, 1), 0);
    assert_int_equal(k.items[0]->result, GS_ETIMEOUT);
    memset(&l, 0, sizeof l);
    assert_int_equal(store_command_list(s, "W1", 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 3); /* nothing new */
    store_item_free(k.items[0]);
    sqlx_close(db);
    store_close(s);
    pthread_cond_destroy(&k.cv);
    pthread_mutex_destroy(&k.mu);
}

/* ---- Writer ---- */

#define NTERM 4
static const char *const tids[NTERM] = {"W0", "W1", "W2", "W3"};

static void test_writer_blocks(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    collector_t col;
    collector_init(&col);
    for (int i = 0; i < NTERM; i++) {
        store_terminal_t t = make_terminal(tids[i]);
        assert_int_equal(store_terminal_add(s, &t), 0);
    }
    assert_int_equal(store_submit(s, make_block("W0", 1, 1, 10)), GS_ESTATE); /* not running */
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    assert_int_equal(store_writer_start(s, collect_cb, &col), GS_ESTATE);

    enum { N = 10000, DATA = 2048 };
    double t0 = now_s();
    uint64_t cookie = 0;
    for (int i = 0; i < N; i++) {
        const char *tid = tids[i % NTERM];
        uint64_t seq = (uint64_t)(i / NTERM) + 1;
        assert_int_equal(store_submit(s, make_block(tid, seq, ++cookie, DATA)), 0);
    }
    size_t qi = 0, qb = 0;
    store_queue_depth(s, &qi, &qb);
    assert_true(qi <= N && qb <= (size_t)N * DATA);
    assert_int_equal(collector_wait(&col, N), 0);
    double dt = now_s() - t0;
    print_message("writer: %d blocks of %d B in %.3f s (%.0f blocks/s, %zu batches)\n", N, DATA, dt,
                  N / dt, col.batches);
    assert_int_equal(col.ok, N);
    assert_int_equal(col.dup, 0);
    assert_int_equal(col.err, 0);
    assert_false(col.out_of_order);
    store_queue_depth(s, &qi, &qb);
    assert_int_equal(qi, 0);
    assert_int_equal(qb, 0);

    for (int i = 0; i < NTERM; i++) {
        int64_t count = 0;
        uint64_t lo = 0, hi = 0;
        assert_int_equal(store_block_stats(s, tids[i], &count, &lo, &hi), 0);
        assert_int_equal(count, N / NTERM);
        assert_int_equal(lo, 1);
        assert_int_equal(hi, N / NTERM);
        store_terminal_t t;
        assert_int_equal(store_terminal_get(s, tids[i], &t), 0);
        assert_int_equal(t.durable_seq, N / NTERM);
    }
    int64_t count = -1;
    uint64_t lo = 9, hi = 9;
    assert_int_equal(store_block_stats(s, "none", &count, &lo, &hi), 0);
    assert_int_equal(count, 0);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 0);

    /* Duplicates: resubmit a subset (plus a few new ones) -> result 1, nothing stored twice. */
    collector_reset(&col);
    cookie = 0;
    size_t ndup = 0;
    for (uint64_t seq = 100; seq < 600; seq++, ndup++)
        assert_int_equal(store_submit(s, make_block("W1", seq, ++cookie, DATA)), 0);
    /* duplicate inside one batch too */
    assert_int_equal(store_submit(s, make_block("W2", 5000, ++cookie, DATA)), 0);
    assert_int_equal(store_submit(s, make_block("W2", 5000, ++cookie, DATA)), 0);
    assert_int_equal(collector_wait(&col, ndup + 2), 0);
    assert_int_equal(col.dup, ndup + 1);
    assert_int_equal(col.ok, 1);
    assert_int_equal(col.err, 0);
    assert_int_equal(store_block_stats(s, "W1", &count, &lo, &hi), 0);
    assert_int_equal(count, N / NTERM);
    assert_int_equal(store_block_stats(s, "W2", &count, &lo, &hi), 0);
    assert_int_equal(count, N / NTERM + 1);
    assert_int_equal(hi, 5000);
    store_terminal_t t;
    assert_int_equal(store_terminal_get(s, "W2", &t), 0);
    assert_int_equal(t.durable_seq, 5000);
    /* durable_seq never moves backwards */
    collector_reset(&col);
    assert_int_equal(store_submit(s, make_block("W2", 4000, 1, DATA)), 0);
    assert_int_equal(collector_wait(&col, 1), 0);
    assert_int_equal(store_terminal_get(s, "W2", &t), 0);
    assert_int_equal(t.durable_seq, 5000);

    /* Blocks of unknown terminals are stored (no durable_seq to update). */
    collector_reset(&col);
    assert_int_equal(store_submit(s, make_block("ghost", 3, 1, 16)), 0);
    assert_int_equal(collector_wait(&col, 1), 0);
    assert_int_equal(col.ok, 1);

    store_writer_stats_t ws;
    store_writer_stats(s, &ws);
    assert_int_equal(ws.items, N + ndup + 2 + 1 + 1);
    assert_int_equal(ws.blocks_stored, N + 1 + 1 + 1);
    assert_int_equal(ws.blocks_duplicate, ndup + 1);
    assert_int_equal(ws.errors, 0);
    assert_true(ws.batches >= 4);

    store_writer_stop(s);
    store_writer_stop(s); /* idempotent */
    assert_int_equal(store_submit(s, make_block("W0", 1, 1, 10)), GS_ESTATE);

    /* Content round trip and events. */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM blocks"), N + 3);
    assert_int_equal(sql_int(f->dir, "SELECT length(data) FROM blocks WHERE terminal_id = 'W3'"
                                     " AND seq = 17"),
                     DATA);
    assert_int_equal(sql_int(f->dir, UT_SQL("SELECT unicode(substr(data, 2, 1)) FROM blocks"
                                            " WHERE terminal_id = 'W3' AND seq = 17",
                                            "SELECT get_byte(data, 1) FROM blocks"
                                            " WHERE terminal_id = 'W3' AND seq = 17")),
                     18);
    int64_t nevents = sql_int(f->dir, "SELECT count(*) FROM blocks WHERE kind = 1");
    assert_true(nevents > 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM events"), nevents);
    assert_int_equal(sql_int(f->dir, "SELECT value_permille FROM events WHERE terminal_id = 'W0'"
                                     " AND seq = 107"),
                     850);

    /* Restart the writer on the same store. */
    collector_reset(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    assert_int_equal(store_submit(s, make_block("W0", 9999, 1, 10)), 0);
    assert_int_equal(collector_wait(&col, 1), 0);
    store_close(s);
    collector_destroy(&col);
}

static void test_writer_drain_on_close(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("D1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    enum { N = 6000 };
    for (int i = 0; i < N; i++)
        assert_int_equal(store_submit(s, make_block("D1", (uint64_t)i + 1, (uint64_t)i + 1, 512)),
                         0);
    size_t qi = 0;
    store_queue_depth(s, &qi, NULL);
    print_message("drain: %zu of %d items still queued at close\n", qi, N);
    store_close(s); /* must drain and commit */
    assert_int_equal(col.n, N);
    assert_int_equal(col.ok, N);

    s = open_ok(f->dir);
    int64_t count = 0;
    uint64_t hi = 0;
    assert_int_equal(store_block_stats(s, "D1", &count, NULL, &hi), 0);
    assert_int_equal(count, N);
    assert_int_equal(hi, N);
    assert_int_equal(store_terminal_get(s, "D1", &t), 0);
    assert_int_equal(t.durable_seq, N);
    store_close(s);
    collector_destroy(&col);

    /* A writer without a callback frees items itself. */
    s = open_ok(f->dir);
    assert_int_equal(store_writer_start(s, NULL, NULL), 0);
    assert_int_equal(store_submit(s, make_block("D1", N + 1, 1, 64)), 0);
    store_close(s);
    assert_int_equal(sql_int(f->dir, "SELECT max(seq) FROM blocks"), N + 1);
}

/* A batch whose transaction cannot start (another connection holds the write lock past the busy
 * timeout) is retried with backoff for as long as the server runs: it commits once the lock goes
 * away, never failing (a full or locked database must delay acknowledgements, not lose data).
 * Only at shutdown does the writer give up, after a bounded number of attempts. */
static void test_writer_busy_retry(void **state)
{
    fixture_t *f = *state;
    store_opts_t o = {.sync_full = 1, .busy_timeout_ms = 50};
    store_t *s = NULL;
    char err[256];
    assert_int_equal(store_open(f->dir, &o, &s, err, sizeof err), 0);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);

    sqlx_t *db = ut_db_open(f->dir);
    /* SQLite's write lock; on PostgreSQL a lock on the blocks table, which every block insert
     * needs (and waits for, up to busy_timeout_ms, as for SQLite's lock). */
    const char *lock = UT_SQL("BEGIN IMMEDIATE", "BEGIN; LOCK TABLE blocks IN EXCLUSIVE MODE");

    /* Lock held for a while, then released: the retry succeeds. */
    assert_int_equal(sqlx_exec(db, lock), 0);
    assert_int_equal(store_submit(s, make_block("R1", 1, 1, 64)), 0);
    struct timespec ts = {0, 250000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(sqlx_exec(db, "ROLLBACK"), 0);
    assert_int_equal(collector_wait(&col, 1), 0);
    assert_int_equal(col.ok, 1);

    /* Lock held for longer than the old five attempts (~1.5 s): still no failure, and both
     * items commit as soon as the lock is released. */
    collector_reset(&col);
    assert_int_equal(sqlx_exec(db, lock), 0);
    assert_int_equal(store_submit(s, make_block("R1", 2, 1, 64)), 0);
    assert_int_equal(store_submit(s, make_block("R1", 3, 2, 64)), 0);
    struct timespec two = {2, 0};
    nanosleep(&two, NULL);
    pthread_mutex_lock(&col.mu);
    size_t delivered = col.n;
    pthread_mutex_unlock(&col.mu);
    assert_int_equal(delivered, 0);
    assert_int_equal(sqlx_exec(db, "ROLLBACK"), 0);
    assert_int_equal(collector_wait(&col, 2), 0);
    assert_int_equal(col.ok, 2);
    store_writer_stats_t ws;
    store_writer_stats(s, &ws);
    assert_int_equal(ws.errors, 0);
    assert_int_equal(ws.blocks_stored, 3);

    /* Shutdown while the lock is held: bounded attempts, then the item is failed, not hung. */
    collector_reset(&col);
    assert_int_equal(sqlx_exec(db, lock), 0);
    assert_int_equal(store_submit(s, make_block("R1", 4, 1, 64)), 0);
    store_writer_stop(s);
    assert_int_equal(collector_wait(&col, 1), 0);
    assert_int_equal(col.err, 1);
    assert_int_equal(sqlx_exec(db, "ROLLBACK"), 0);
    int64_t count = 0;
    assert_int_equal(store_block_stats(s, "R1", &count, NULL, NULL), 0);
    assert_int_equal(count, 3);
    sqlx_close(db);
    store_close(s);
    collector_destroy(&col);
}

static void test_two_stores(void **state)
{
    fixture_t *f = *state;
    store_t *server = open_ok(f->dir);
    store_t *admin = open_ok(f->dir);
    collector_t col;
    collector_init(&col);
    store_terminal_t t = make_terminal("S1");
    assert_int_equal(store_terminal_add(server, &t), 0);
    assert_int_equal(store_writer_start(server, collect_cb, &col), 0);

    /* Keep the server's writer busy with large blocks. */
    enum { N = 4000, DATA = 16384 };
    for (int i = 0; i < N; i++)
        assert_int_equal(
            store_submit(server, make_block("S1", (uint64_t)i + 1, (uint64_t)i + 1, DATA)), 0);

    /* The admin CLI provisions a terminal and queues a command meanwhile. */
    store_terminal_t a = make_terminal("A1");
    assert_int_equal(store_terminal_add(admin, &a), 0);
    int64_t cid = 0;
    assert_int_equal(store_command_create(admin, "A1", 6, NULL, 0, 60000000000LL, &cid), 0);
    assert_int_equal(store_terminal_add(admin, &t), GS_EEXISTS); /* sees the server's terminal */

    size_t qi = 0;
    store_queue_depth(server, &qi, NULL);
    print_message("two stores: writer had %zu items queued while the admin wrote\n", qi);

    store_terminal_t g;
    assert_int_equal(store_terminal_get(server, "A1", &g), 0);
    assert_memory_equal(g.secret, a.secret, STORE_SECRET_LEN);
    cmds_t l = {0};
    assert_int_equal(store_command_new_since(server, 0, 0, cmd_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], cid);

    /* And the other way round, still while the writer works. */
    store_terminal_t b = make_terminal("B1");
    assert_int_equal(store_terminal_add(server, &b), 0);
    assert_int_equal(store_terminal_get(admin, "B1", &g), 0);
    assert_int_equal(store_command_update(server, cid, STORE_CMD_SENT, -1, NULL, 0), 0);
    store_command_t c;
    assert_int_equal(store_command_get(admin, cid, &c), 0);
    assert_int_equal(c.state, STORE_CMD_SENT);

    assert_int_equal(collector_wait(&col, N), 0);
    assert_int_equal(col.ok, N);
    int64_t count = 0;
    assert_int_equal(store_block_stats(admin, "S1", &count, NULL, NULL), 0);
    assert_int_equal(count, N);
    assert_int_equal(store_terminal_get(admin, "S1", &g), 0);
    assert_int_equal(g.durable_seq, N);
    store_close(admin);
    store_close(server);
    collector_destroy(&col);
}

/* ---- a reader connection for another thread (store_opts_t.reader_only) ---- */

typedef struct {
    store_t *reader; /* used only by the reader thread once it runs */
    store_t *server; /* its writer takes the reader thread's submissions */
    int submitted;   /* blocks submitted from the reader thread */
    long reads, bad;
    int stop; /* __atomic */
} rthread_t;

static int count_cb(void *ud, const store_terminal_t *t)
{
    int *n = ud;
    for (size_t i = 0; i < sizeof t->secret; i++)
        if (t->secret[i])
            return -1;
    (*n)++;
    return 0;
}

/* The reader thread: queries on its own connection while the server's writer commits, and
 * submissions to that writer from this thread (store_submit is safe from any thread). */
static void *reader_main(void *arg)
{
    rthread_t *r = arg;
    for (int i = 0; i < 200; i++)
        if (store_submit(r->server, make_block("S1", 1000 + (uint64_t)i, 1000 + (uint64_t)i, 512)) ==
            0)
            r->submitted++;
    int64_t last = 0;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        store_terminal_t t;
        int n = 0;
        int64_t count = 0;
        if (store_terminal_info(r->reader, "S1", &t) != 0 || strcmp(t.id, "S1") != 0)
            r->bad++;
        if (store_terminal_list(r->reader, count_cb, &n) != 0 || n != 1)
            r->bad++;
        if (store_block_stats(r->reader, "S1", &count, NULL, NULL) != 0 || count < last)
            r->bad++;
        last = count;
        size_t qi = 0, qb = 0;
        store_queue_depth(r->server, &qi, &qb);
        r->reads++;
    }
    return NULL;
}

static void test_reader_connection(void **state)
{
    fixture_t *f = *state;
    char err[256] = "", sub[128];
    store_t *rd = NULL;
    store_opts_t ro = {.reader_only = 1};
    /* no database: refused, and nothing is created */
    snprintf(sub, sizeof sub, "%s/none", f->dir);
    assert_int_equal(store_open(sub, &ro, &rd, err, sizeof err), GS_ENOTFOUND);
    assert_null(rd);
    assert_non_null(strstr(err, "no database"));
    struct stat sb;
    assert_int_equal(stat(sub, &sb), -1);
    /* a database of another schema version: refused with the reason, never migrated */
    snprintf(sub, sizeof sub, "%s/old", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    ut_db_exec(sub, "CREATE TABLE schema_version(version INTEGER); "
                  "INSERT INTO schema_version VALUES(1)"); /* WAL: set by the seam's open */
    err[0] = 0;
    assert_int_equal(store_open(sub, &ro, &rd, err, sizeof err), GS_ESTATE);
    assert_non_null(strstr(err, "schema version 1"));
    assert_int_equal(sql_int(sub, UT_SQL("SELECT count(*) FROM sqlite_master WHERE name = "
                                         "'terminals'",
                                         "SELECT count(*) FROM information_schema.tables WHERE "
                                         "table_schema = current_schema() AND table_name = "
                                         "'terminals'")),
                     0);

    /* the server's store, with a terminal and its writer running */
    store_t *server = open_ok(f->dir);
    store_terminal_t t = make_terminal("S1");
    assert_int_equal(store_terminal_add(server, &t), 0);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(server, collect_cb, &col), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(store_submit(server, make_block("S1", (uint64_t)i + 1, (uint64_t)i + 1,
                                                         4096)),
                         0);

    /* The reader does not need the master key: opened with the key file moved away. */
    char key[256], away[256];
    snprintf(key, sizeof key, "%s/master.key", f->dir);
    snprintf(away, sizeof away, "%s/master.key.away", f->dir);
    assert_int_equal(rename(key, away), 0);
    ro.busy_timeout_ms = 2000;
    err[0] = 0;
    int rc = store_open(f->dir, &ro, &rd, err, sizeof err);
    if (rc != 0)
        print_error("reader: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(rename(away, key), 0);
    assert_int_equal(store_schema_version(rd), store_schema_version(server));

    /* what a reader cannot do: secrets, keys, writes, a writer */
    store_terminal_t g;
    assert_int_equal(store_terminal_get(rd, "S1", &g), GS_ESTATE);
    assert_int_equal(store_terminal_info(rd, "S1", &g), 0);
    store_terminal_t x = make_terminal("X1");
    assert_int_equal(store_terminal_add(rd, &x), GS_ESTATE);
    assert_int_equal(store_terminal_set_secret(rd, "S1", x.secret), GS_ESTATE);
    char hex[2 * STORE_KEY_ID_LEN + 1];
    assert_int_equal(store_key_id(rd, hex), GS_ESTATE);
    assert_null(store_key_path(rd));
    assert_int_equal(store_key_rotate(rd, hex, err, sizeof err), GS_ESTATE);
    assert_int_equal(store_writer_start(rd, NULL, NULL), GS_ESTATE);
    int64_t cid = 0;
    assert_int_equal(store_command_create(rd, "S1", 6, NULL, 0, 60000000000LL, &cid), GS_EDB);

    /* used from another thread while the server's writer commits */
    rthread_t r = {.reader = rd, .server = server};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
    assert_int_equal(collector_wait(&col, 400), 0); /* both threads' blocks committed */
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    assert_int_equal(r.submitted, 200);
    assert_int_equal(r.bad, 0);
    assert_true(r.reads > 0);
    assert_int_equal(col.err, 0);
    int64_t count = 0;
    assert_int_equal(store_block_stats(rd, "S1", &count, NULL, NULL), 0);
    assert_int_equal(count, 400);
    store_close(rd);
    store_close(server);
    collector_destroy(&col);
}

static void test_status_sessions(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);

    store_item_t *it = store_item_new(STORE_ITEM_SESSION_OPEN);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T9");
    it->cookie = 0x1234567890ULL;
    snprintf(it->remote, sizeof it->remote, "10.0.0.7:40000");
    it->when_ns = 1000;
    assert_int_equal(store_submit(s, it), 0);

    it = store_item_new(STORE_ITEM_STATUS);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T9");
    it->cookie = 2;
    it->time_ns = 2000;
    it->rsrp_dbm = -95;
    it->rssi_dbm = -32768; /* not available */
    it->csq = 20;
    it->supply_mv = 65535; /* not available */
    it->temp_c10 = -32768; /* not available */
    it->uptime_s = 86400;
    it->gps_fix = 3;
    it->gps_sats = 9;
    it->time_quality = 2;
    it->buffer_permille = 12;
    it->buffered_blocks = 3;
    assert_int_equal(store_submit(s, it), 0);

    it = store_item_new(STORE_ITEM_SESSION_CLOSE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T9");
    it->cookie = 0x1234567890ULL;
    it->when_ns = 3000;
    snprintf(it->reason, sizeof it->reason, "peer closed");
    it->frames = 10;
    it->bytes = 4096;
    it->blocks = 7;
    it->cookie = 0x1234567890ULL;
    assert_int_equal(store_submit(s, it), 0);
    assert_int_equal(collector_wait(&col, 3), 0);
    assert_int_equal(col.ok, 3);

    /* Session edge cases: a repeated open is a duplicate, a close without an open an error, an
     * unknown kind an error; none of them fails the batch. */
    collector_reset(&col);
    it = store_item_new(STORE_ITEM_SESSION_OPEN);
    snprintf(it->terminal_id, sizeof it->terminal_id, "T9");
    it->cookie = 0x1234567890ULL;
    assert_int_equal(store_submit(s, it), 0);
    it = store_item_new(STORE_ITEM_SESSION_CLOSE);
    it->cookie = 77;
    assert_int_equal(store_submit(s, it), 0);
    it = store_item_new(99);
    it->cookie = 78;
    assert_int_equal(store_submit(s, it), 0);
    assert_int_equal(store_submit(s, make_block("T9", 1, 79, 8)), 0);
    assert_int_equal(collector_wait(&col, 4), 0);
    assert_int_equal(col.dup, 1);
    assert_int_equal(col.err, 2);
    assert_int_equal(col.ok, 1);
    store_close(s);
    collector_destroy(&col);

    int null = 0;
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM status"), 1);
    assert_int_equal(sql_value(f->dir, "SELECT rsrp_dbm FROM status", &null), -95);
    assert_false(null);
    sql_value(f->dir, "SELECT rssi_dbm FROM status", &null);
    assert_true(null);
    sql_value(f->dir, "SELECT supply_mv FROM status", &null);
    assert_true(null);
    sql_value(f->dir, "SELECT temp_c10 FROM status", &null);
    assert_true(null);
    assert_int_equal(sql_int(f->dir, "SELECT csq FROM status"), 20);
    assert_int_equal(sql_int(f->dir, "SELECT uptime_s FROM status"), 86400);
    assert_int_equal(sql_int(f->dir, "SELECT gps_sats FROM status"), 9);
    assert_int_equal(sql_int(f->dir, "SELECT time_quality FROM status"), 2);
    assert_int_equal(sql_int(f->dir, "SELECT buffered_blocks FROM status"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT time_ns FROM status"), 2000);
    assert_true(sql_int(f->dir, "SELECT received_ns FROM status") > 0);

    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM sessions"), 1);
    assert_int_equal(sql_int(f->dir, "SELECT session_id FROM sessions"), 0x1234567890LL);
    assert_int_equal(sql_int(f->dir, "SELECT opened_ns FROM sessions"), 1000);
    assert_int_equal(sql_int(f->dir, "SELECT closed_ns FROM sessions"), 3000);
    assert_int_equal(sql_int(f->dir, "SELECT frames + bytes + blocks FROM sessions"),
                     10 + 4096 + 7);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM sessions WHERE terminal_id = 'T9'"
                                     " AND remote = '10.0.0.7:40000'"
                                     " AND close_reason = 'peer closed'"),
                     1);
}

/* ---- Secrets at rest (issue 7 section 3) ---- */

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Returns the file's size and mode bits (or -1 when absent). */
static long file_info(const char *path, unsigned *mode)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    if (mode)
        *mode = (unsigned)(sb.st_mode & 07777);
    return (long)sb.st_size;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

/* Does the file contain the byte string? (the whole file is scanned) */
static int file_contains(const char *path, const uint8_t *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, fp);
    fclose(fp);
    int found = 0;
    for (size_t i = 0; !found && i + n <= got; i++)
        found = memcmp(buf + i, needle, n) == 0;
    free(buf);
    return found;
}

/* Runs statements on a separate connection to dir's database (either engine). */
static void sql_exec(const char *dir, const char *sql)
{
    ut_db_exec(dir, sql);
}

static int open_err(const char *dir, const store_opts_t *o, char *err, size_t errlen)
{
    store_t *s = (store_t *)1;
    err[0] = 0;
    int rc = store_open(dir, o, &s, err, errlen);
    if (rc == 0)
        store_close(s);
    else
        assert_null(s);
    return rc;
}

static void test_secret_sealed_roundtrip(void **state)
{
    fixture_t *f = *state;
    char kpath[300];
    uint8_t key[64];
    unsigned mode = 0;
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("S1"), g;
    assert_int_equal(store_terminal_add(s, &t), 0);
    assert_int_equal(store_terminal_get(s, "S1", &g), 0);
    assert_memory_equal(g.secret, t.secret, STORE_SECRET_LEN);

    /* Stored sealed: 89 bytes (format, key id, nonce, ciphertext + tag), not the plaintext. */
    assert_int_equal(sql_int(f->dir, "SELECT length(secret) FROM terminals WHERE id = 'S1'"), 89);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM master_key"), 1);

    /* The key file: exactly 32 bytes, 0600, and its id is what the store reports. */
    path_in(kpath, sizeof kpath, f->dir, "master.key");
    assert_int_equal(file_info(kpath, &mode), 32);
    assert_int_equal(mode, 0600);
    assert_int_equal(read_file(kpath, key, sizeof key), 32);
    assert_string_equal(store_key_path(s), kpath);
    char id[33];
    store_key_id(s, id);
    assert_int_equal(strlen(id), 32);

    /* Two seals of the same secret differ (fresh nonce); list does not unseal. */
    assert_int_equal(store_terminal_set_secret(s, "S1", t.secret), 0);
    assert_int_equal(store_terminal_get(s, "S1", &g), 0);
    assert_memory_equal(g.secret, t.secret, STORE_SECRET_LEN);
    assert_int_equal(store_terminal_set_secret(s, "nope", t.secret), GS_ENOTFOUND);
    store_close(s);

    /* The files never held the plaintext. Read after closing: a descriptor of ours closed while
     * the store is open would drop its POSIX locks (fcntl(2)). */
    char dbpath[300], wal[320];
    path_in(dbpath, sizeof dbpath, f->dir, "gridsense.db");
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    if (!ut_pg()) { /* SQLite's files (PostgreSQL's are the server's, not in the data dir) */
        assert_true(file_info(dbpath, NULL) > 0);
        assert_false(file_contains(dbpath, t.secret, STORE_SECRET_LEN));
        assert_false(file_contains(wal, t.secret, STORE_SECRET_LEN));
    }

    /* Reopen: same key, same secret. */
    s = open_ok(f->dir);
    assert_int_equal(store_terminal_get(s, "S1", &g), 0);
    assert_memory_equal(g.secret, t.secret, STORE_SECRET_LEN);
    store_close(s);
}

static void test_secret_wrong_key(void **state)
{
    fixture_t *f = *state;
    char kpath[300], err[1024], copy[300], cdb[320], ckey[320], dbpath[300];
    uint8_t key[32], other[32];
    store_t *s = open_ok(f->dir);
    store_terminal_t t = make_terminal("W1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    store_close(s);
    path_in(kpath, sizeof kpath, f->dir, "master.key");
    path_in(dbpath, sizeof dbpath, f->dir, "gridsense.db");
    assert_int_equal(read_file(kpath, key, sizeof key), 32);

    /* The database copied without its key: refused, naming the missing key file. On PostgreSQL:
     * another data dir (another node) on the same database, without the key. */
    snprintf(copy, sizeof copy, "%s/copy", f->dir);
    assert_int_equal(mkdir(copy, 0700), 0);
    path_in(cdb, sizeof cdb, copy, "gridsense.db");
    path_in(ckey, sizeof ckey, copy, "master.key");
    char url[2048] = "";
    store_opts_t co = {.sync_full = 1};
    const store_opts_t *cop = NULL; /* SQLite: the defaults, as before */
    if (ut_pg()) {
        snprintf(url, sizeof url, "%s", ut_store_url(f->dir));
        co.url = url;
        cop = &co;
    } else {
        uint8_t *buf = malloc(4 << 20);
        size_t n = read_file(dbpath, buf, 4 << 20);
        assert_true(n > 0);
        write_file(cdb, buf, n, 0600);
        free(buf);
    }
    assert_int_equal(open_err(copy, cop, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, ckey));
    assert_non_null(strstr(err, "is missing"));
    assert_int_equal(file_info(ckey, NULL), -1); /* not replaced by a new key */

    /* Another key: refused as not the database's key. */
    for (int i = 0; i < 32; i++)
        other[i] = (uint8_t)(key[i] ^ 0x5a);
    write_file(ckey, other, 32, 0600);
    assert_int_equal(open_err(copy, cop, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "is not the key of"));

    /* Wrong size, too open, not a regular file: refused with the reason. */
    write_file(ckey, key, 31, 0600);
    assert_int_equal(open_err(copy, cop, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "has 31 bytes, expected exactly 32"));
    write_file(ckey, key, 32, 0640);
    assert_int_equal(open_err(copy, cop, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "mode 0640"));
    unlink(ckey);
    assert_int_equal(mkdir(ckey, 0700), 0);
    assert_int_not_equal(open_err(copy, cop, err, sizeof err), 0);
    assert_non_null(strstr(err, ckey));
    rmdir(ckey);

    /* The right key (given by path, as [security] master_key_file): opens, secret intact. */
    char elsewhere[300];
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere.key", f->dir);
    write_file(elsewhere, key, 32, 0400);
    store_opts_t o = {.sync_full = 1, .master_key_file = elsewhere, .url = co.url};
    s = NULL;
    assert_int_equal(store_open(copy, &o, &s, err, sizeof err), 0);
    store_terminal_t g;
    assert_int_equal(store_terminal_get(s, "W1", &g), 0);
    assert_memory_equal(g.secret, t.secret, STORE_SECRET_LEN);
    store_close(s);
    assert_int_equal(file_info(ckey, NULL), -1); /* the configured file is used, none made */
}

static void test_secret_moved_row(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_terminal_t a = make_terminal("A1"), b = make_terminal("B1"), g;
    assert_int_equal(store_terminal_add(s, &a), 0);
    assert_int_equal(store_terminal_add(s, &b), 0);
    store_close(s);
    /* A1's sealed secret copied into B1's row: the terminal id is in the AEAD's associated data,
     * so it does not open as B1's (else whoever can write the database but not read the key
     * could give B1 the secret A1 knows). */
    sql_exec(f->dir, "UPDATE terminals SET secret = (SELECT secret FROM terminals WHERE id = "
                     "'A1') WHERE id = 'B1'");
    s = open_ok(f->dir);
    assert_int_equal(store_terminal_get(s, "B1", &g), GS_EAUTH);
    assert_int_equal(store_terminal_get(s, "A1", &g), 0);
    assert_memory_equal(g.secret, a.secret, STORE_SECRET_LEN);
    store_close(s);
    /* One altered byte of the ciphertext: does not authenticate either. */
    sql_exec(f->dir, UT_SQL("UPDATE terminals SET secret = substr(secret, 1, 60) || CASE WHEN "
                            "substr(secret, 61, 1) = X'00' THEN X'01' ELSE X'00' END || "
                            "substr(secret, 62) WHERE id = 'A1'",
                            "UPDATE terminals SET secret = set_byte(secret, 60, CASE WHEN "
                            "get_byte(secret, 60) = 0 THEN 1 ELSE 0 END) WHERE id = 'A1'"));
    s = open_ok(f->dir);
    assert_int_equal(store_terminal_get(s, "A1", &g), GS_EAUTH);
    /* Truncated: malformed, just as unusable (the gateway answers BAD_AUTH, not BUSY). */
    store_close(s);
    sql_exec(f->dir, "UPDATE terminals SET secret = substr(secret, 1, 40) WHERE id = 'A1'");
    s = open_ok(f->dir);
    assert_int_equal(store_terminal_get(s, "A1", &g), GS_EAUTH);
    /* A new secret repairs it. */
    assert_int_equal(store_terminal_set_secret(s, "A1", a.secret), 0);
    assert_int_equal(store_terminal_get(s, "A1", &g), 0);
    store_close(s);
}

/* PostgreSQL: what migrations 12 down to 5 added (src/store/pg_schema.c), dropped newest first
 * (13 only sets blocks.data's storage: left as it is, and applied again). */
#define PG_DOWN_TO_5                                                                               \
    " DROP TRIGGER measurements_trend ON measurements; DROP FUNCTION measurements_trend();"       \
    " DROP FUNCTION measurement_trend_put; DROP FUNCTION gs_jnum;"                                \
    " DROP TABLE wave_pyramid; DROP TABLE measurement_trend;"                                     \
    " ALTER TABLE blocks DROP COLUMN codec;"                                                      \
    " DROP TABLE retention_state; DROP INDEX pq_events_terminal_start;"                           \
    " DROP INDEX pq_events_duration;"                                                             \
    " DROP TABLE ana_pending;"                                                                    \
    " ALTER TABLE pq_events DROP COLUMN acked_by, DROP COLUMN acked_ns;"                          \
    " DROP TABLE block_layouts;"                                                                  \
    " DROP TABLE users, user_sessions, api_tokens, audit;"
/* ... and down to 4 (before migration 5): the event names too (master_key is migration 4). */
#define PG_DOWN_TO_4                                                                               \
    PG_DOWN_TO_5 " ALTER TABLE pq_events DROP COLUMN channel_names, DROP COLUMN worst_channel_name;"

/* Turns a current database back into the layout before migration 4 (the same tables without
 * master_key) with plaintext secrets, as a database written by the previous release. */
static void make_old_layout(const char *dir, const store_terminal_t *ts, int n)
{
    store_t *s = open_ok(dir);
    for (int i = 0; i < n; i++)
        assert_int_equal(store_terminal_add(s, &ts[i]), 0);
    store_close(s);
    sqlx_t *db = ut_db_open(dir);
    assert_int_equal(sqlx_exec(db, ut_pg() ? "BEGIN; DROP TABLE master_key;" PG_DOWN_TO_4
                                                 " DELETE FROM schema_version WHERE version >= 4;"
                                           : "BEGIN; DROP TABLE master_key;"
                                  " DROP TABLE users; DROP TABLE user_sessions; DROP TABLE api_tokens; DROP TABLE audit;"
                                  " ALTER TABLE pq_events DROP COLUMN channel_names;"
                                  " ALTER TABLE pq_events DROP COLUMN worst_channel_name;"
                                  " DROP TABLE block_layouts;"
                                  " DROP TABLE wave_pyramid; DROP TABLE measurement_trend;"
                                  " DROP TRIGGER measurements_trend_insert;"
                                  " DROP TRIGGER measurements_trend_update;"
                                  " DROP TRIGGER measurements_trend_delete;"
                                  " ALTER TABLE pq_events DROP COLUMN acked_by;"
                                  " ALTER TABLE pq_events DROP COLUMN acked_ns;"
                                  " DROP TABLE ana_pending;"
                                  " DROP TABLE retention_state; DROP INDEX pq_events_terminal_start;"
                                  " DROP INDEX pq_events_duration;"
                                  " ALTER TABLE blocks DROP COLUMN codec;"
                                  " DELETE FROM schema_version WHERE version >= 4;"),
                     0);
    for (int i = 0; i < n; i++) {
        sqlx_stmt_t *st = NULL;
        assert_int_equal(sqlx_prepare(db, "UPDATE terminals SET secret = ?2 WHERE id = ?1", &st),
                         0);
        sqlx_bind_text(st, 1, ts[i].id, -1);
        sqlx_bind_blob(st, 2, ts[i].secret, STORE_SECRET_LEN);
        assert_int_equal(sqlx_step(st), SQLX_DONE);
        sqlx_finalize(st);
    }
    assert_int_equal(sqlx_exec(db, "COMMIT"), 0);
    sqlx_close(db);
    char key[300];
    path_in(key, sizeof key, dir, "master.key");
    unlink(key); /* the old release had none */
}

static void test_secret_migration(void **state)
{
    fixture_t *f = *state;
    store_terminal_t ts[3] = {make_terminal("M1"), make_terminal("M2"), make_terminal("M3")};
    make_old_layout(f->dir, ts, 3);
    assert_int_equal(sql_int(f->dir, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT length(secret) FROM terminals WHERE id = 'M2'"), 32);
    int64_t cv0 = sql_int(f->dir, "SELECT version FROM credentials_version");

    /* First start of the new release: key created, secrets sealed in place, same secrets. */
    store_t *s = open_ok(f->dir);
    assert_int_equal(store_schema_version(s), SCHEMA_LATEST);
    for (int i = 0; i < 3; i++) {
        store_terminal_t g;
        assert_int_equal(store_terminal_get(s, ts[i].id, &g), 0);
        assert_memory_equal(g.secret, ts[i].secret, STORE_SECRET_LEN);
    }
    store_close(s);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM terminals WHERE length(secret) = 89"),
                     3);
    assert_true(sql_int(f->dir, "SELECT version FROM credentials_version") > cv0);
    char kpath[300], dbpath[300], wal[320];
    unsigned mode = 0;
    path_in(kpath, sizeof kpath, f->dir, "master.key");
    assert_int_equal(file_info(kpath, &mode), 32);
    assert_int_equal(mode, 0600);
    /* No plaintext left anywhere in the files (secure_delete, WAL truncated): SQLite's files. */
    path_in(dbpath, sizeof dbpath, f->dir, "gridsense.db");
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    for (int i = 0; i < 3 && !ut_pg(); i++) {
        assert_false(file_contains(dbpath, ts[i].secret, STORE_SECRET_LEN));
        assert_false(file_contains(wal, ts[i].secret, STORE_SECRET_LEN));
    }

    /* A plaintext secret of the wrong length: the migration fails as a whole, nothing sealed. */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/two", f->dir);
    store_terminal_t t2[2] = {make_terminal("N1"), make_terminal("N2")};
    make_old_layout(dir2, t2, 2);
    sql_exec(dir2, UT_SQL("UPDATE terminals SET secret = X'0102' WHERE id = 'N2'",
                          "UPDATE terminals SET secret = '\\x0102'::bytea WHERE id = 'N2'"));
    char err[512];
    assert_int_equal(open_err(dir2, NULL, err, sizeof err), GS_EDB);
    assert_non_null(strstr(err, "N2"));
    assert_int_equal(sql_int(dir2, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(sql_int(dir2, "SELECT length(secret) FROM terminals WHERE id = 'N1'"), 32);
}

/* Migration 5 on a database of the previous release (schema 4) holding an event: the event
 * keeps its mask and index and reads back without names (NULL, has_names 0); an event stored
 * afterwards carries its names. Reopening applies nothing twice. */
static void test_event_names_migration(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_close(s);
    sql_exec(f->dir, ut_pg() ? "BEGIN;" PG_DOWN_TO_5
                               " ALTER TABLE pq_events DROP COLUMN channel_names,"
                               " DROP COLUMN worst_channel_name;"
                               " DELETE FROM schema_version WHERE version >= 5;"
                               " INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns,"
                               "  extreme, extreme_pct, reference, channels, worst_channel, flags,"
                               "  detected_ns)"
                               "  VALUES('OLD', 'dip', 100, 5, 20.0, 40.0, 50.0, 10, 3, 0, 1);"
                               " COMMIT;"
                             : "BEGIN; DROP TABLE users; DROP TABLE user_sessions; DROP TABLE api_tokens; DROP TABLE audit;"
                     " ALTER TABLE pq_events DROP COLUMN channel_names;"
                     " ALTER TABLE pq_events DROP COLUMN worst_channel_name;"
                     " DROP TABLE block_layouts;"
                     " DROP TABLE wave_pyramid; DROP TABLE measurement_trend;"
                     " DROP TRIGGER measurements_trend_insert; DROP TRIGGER measurements_trend_update;"
                     " DROP TRIGGER measurements_trend_delete;"
                     " ALTER TABLE pq_events DROP COLUMN acked_by;"
                     " ALTER TABLE pq_events DROP COLUMN acked_ns;"
                     " DROP TABLE ana_pending;"
                     " DROP TABLE retention_state; DROP INDEX pq_events_terminal_start;"
                     " DROP INDEX pq_events_duration;"
                     " ALTER TABLE blocks DROP COLUMN codec;"
                     " DELETE FROM schema_version WHERE version >= 5;"
                     " INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, extreme,"
                     "  extreme_pct, reference, channels, worst_channel, flags, detected_ns)"
                     "  VALUES('OLD', 'dip', 100, 5, 20.0, 40.0, 50.0, 10, 3, 0, 1);"
                     " COMMIT;");
    assert_int_equal(sql_int(f->dir, "SELECT max(version) FROM schema_version"), 4);

    s = open_ok(f->dir);
    assert_int_equal(store_schema_version(s), SCHEMA_LATEST);
    assert_int_equal(sql_int(f->dir, "SELECT max(version) FROM schema_version"), SCHEMA_LATEST);
    assert_int_equal(sql_int(f->dir, UT_SQL("SELECT count(*) FROM pragma_table_info('pq_events')"
                                            " WHERE name IN ('channel_names', 'worst_channel_name')",
                                            "SELECT count(*) FROM information_schema.columns WHERE"
                                            " table_schema = current_schema() AND table_name ="
                                            " 'pq_events' AND column_name IN ('channel_names',"
                                            " 'worst_channel_name')")),
                     2);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
    snprintf(it->terminal_id, sizeof it->terminal_id, "OLD");
    snprintf(it->reason, sizeof it->reason, "swell");
    it->ev_start_ns = 200;
    it->ev_duration_ns = 5;
    it->ev_channels = 0x12;
    it->ev_worst_channel = 4;
    it->data = (uint8_t *)xstrdup("Ib,In");
    it->data_len = 5;
    snprintf(it->ev_worst_name, sizeof it->ev_worst_name, "In");
    assert_int_equal(store_submit(s, it), 0);
    assert_int_equal(collector_wait(&col, 1), 0);
    assert_int_equal(col.ok, 1);

    store_pq_event_t ev[5];
    memset(ev, 0, sizeof ev);
    assert_int_equal(store_pq_event_list(s, "OLD", INT64_MIN, INT64_MAX, 10, ev_list_cb, ev), 0);
    assert_int_equal(ev[0].worst_channel, 2);
    assert_string_equal(ev[1].kind, "swell");
    assert_true(ev[1].has_names);
    assert_string_equal(ev[1].channel_names, "Ib,In");
    assert_string_equal(ev[1].worst_channel_name, "In");
    assert_int_equal(ev[1].channels, 0x12);
    assert_string_equal(ev[2].kind, "dip"); /* from before the migration */
    assert_false(ev[2].has_names);
    assert_string_equal(ev[2].channel_names, "");
    assert_string_equal(ev[2].worst_channel_name, "");
    assert_int_equal(ev[2].channels, 10);
    assert_int_equal(ev[2].worst_channel, 3);
    store_close(s);
    collector_destroy(&col);

    s = open_ok(f->dir);
    store_close(s);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM schema_version WHERE version = 5"), 1);
}

static void test_key_rotate(void **state)
{
    fixture_t *f = *state;
    char err[512], id0[33], id1[33], kpath[300], oldkey[300];
    uint8_t k0[32];
    store_t *server = open_ok(f->dir); /* the running server's connection */
    store_terminal_t a = make_terminal("R1"), b = make_terminal("R2"), g;
    assert_int_equal(store_terminal_add(server, &a), 0);
    assert_int_equal(store_terminal_add(server, &b), 0);
    store_key_id(server, id0);
    path_in(kpath, sizeof kpath, f->dir, "master.key");
    assert_int_equal(read_file(kpath, k0, sizeof k0), 32);
    int64_t cv0 = 0, cv1 = 0;
    assert_int_equal(store_credentials_version(server, &cv0), 0);

    /* The admin rotates from another connection while the server's is open. */
    store_t *admin = open_ok(f->dir);
    assert_int_equal(store_key_rotate(admin, id1, err, sizeof err), 0);
    assert_string_not_equal(id0, id1);
    char id1b[33];
    store_key_id(admin, id1b);
    assert_string_equal(id1, id1b);
    store_close(admin);
    char side[320];
    snprintf(side, sizeof side, "%s.old", kpath);
    assert_int_equal(file_info(side, NULL), -1);
    snprintf(side, sizeof side, "%s.new", kpath);
    assert_int_equal(file_info(side, NULL), -1);
    unsigned mode = 0;
    assert_int_equal(file_info(kpath, &mode), 32);
    assert_int_equal(mode, 0600);

    /* The server notices through credentials_version and keeps reading the same secrets with
     * the new key (loaded from the key file when a row names it). */
    assert_int_equal(store_credentials_version(server, &cv1), 0);
    assert_true(cv1 != cv0);
    assert_int_equal(store_terminal_get(server, "R1", &g), 0);
    assert_memory_equal(g.secret, a.secret, STORE_SECRET_LEN);
    store_key_id(server, id1b);
    assert_string_equal(id1, id1b);
    store_close(server);

    /* A process still holding the old key that writes a secret: written under the new one. */
    server = open_ok(f->dir);
    admin = open_ok(f->dir);
    assert_int_equal(store_key_rotate(admin, id1, err, sizeof err), 0);
    store_terminal_t c = make_terminal("R3");
    assert_int_equal(store_terminal_add(server, &c), 0);
    assert_int_equal(store_terminal_set_secret(server, "R2", b.secret), 0);
    store_close(server);
    store_close(admin);
    server = open_ok(f->dir);
    assert_int_equal(store_terminal_get(server, "R3", &g), 0);
    assert_memory_equal(g.secret, c.secret, STORE_SECRET_LEN);
    assert_int_equal(store_terminal_get(server, "R2", &g), 0);
    assert_memory_equal(g.secret, b.secret, STORE_SECRET_LEN);
    store_close(server);

    /* The retired key no longer opens the database. */
    snprintf(oldkey, sizeof oldkey, "%s/old.key", f->dir);
    write_file(oldkey, k0, 32, 0600);
    store_opts_t o = {.sync_full = 1, .master_key_file = oldkey};
    assert_int_equal(open_err(f->dir, &o, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "is not the key of"));

    /* A rotation cut short after its commit (the new key only in master.key.new): still opens,
     * and the next rotation completes it. */
    uint8_t k1[32];
    assert_int_equal(read_file(kpath, k1, sizeof k1), 32);
    snprintf(side, sizeof side, "%s.new", kpath);
    assert_int_equal(rename(kpath, side), 0);
    write_file(kpath, k0, 32, 0600); /* master.key holds an older key */
    server = open_ok(f->dir);
    assert_int_equal(store_terminal_get(server, "R1", &g), 0);
    assert_memory_equal(g.secret, a.secret, STORE_SECRET_LEN);
    /* A rotation that fails in that state (a secret that does not open) must not throw away
     * the only copy of the database's key with its companion files. */
    sql_exec(f->dir, UT_SQL("INSERT INTO terminals(id, secret, created_ns) VALUES('BAD', X'00', 1)",
                            "INSERT INTO terminals(id, secret, created_ns) VALUES('BAD', "
                            "'\\x00'::bytea, 1)"));
    assert_int_equal(store_key_rotate(server, id1, err, sizeof err) < 0, 1);
    assert_non_null(strstr(err, "BAD"));
    store_close(server);
    server = open_ok(f->dir);
    assert_int_equal(store_terminal_get(server, "R1", &g), 0);
    assert_memory_equal(g.secret, a.secret, STORE_SECRET_LEN);
    assert_int_equal(store_terminal_remove(server, "BAD"), 0);
    assert_int_equal(store_key_rotate(server, id1, err, sizeof err), 0);
    store_close(server);
    assert_int_equal(file_info(side, NULL), -1);
    server = open_ok(f->dir);
    store_key_id(server, id1b);
    assert_string_equal(id1, id1b);
    store_close(server);
}

static void test_key_reset(void **state)
{
    fixture_t *f = *state;
    char err[512], kpath[300];
    store_t *s = open_ok(f->dir);
    store_terminal_t a = make_terminal("K1"), g;
    assert_int_equal(store_terminal_add(s, &a), 0);
    store_close(s);
    store_opts_t o = {.sync_full = 1, .key_reset = 1};
    /* Refused while the key is there. */
    assert_int_equal(open_err(f->dir, &o, err, sizeof err), GS_ESTATE);
    assert_non_null(strstr(err, "key rotate"));
    /* Lost key: a new one, the secrets discarded (each terminal needs a new one). */
    path_in(kpath, sizeof kpath, f->dir, "master.key");
    unlink(kpath);
    s = NULL;
    assert_int_equal(store_open(f->dir, &o, &s, err, sizeof err), 0);
    assert_int_equal(store_terminal_get(s, "K1", &g), GS_EAUTH);
    assert_int_equal(store_terminal_set_secret(s, "K1", a.secret), 0);
    assert_int_equal(store_terminal_get(s, "K1", &g), 0);
    assert_memory_equal(g.secret, a.secret, STORE_SECRET_LEN);
    store_close(s);
}

static void test_file_modes(void **state)
{
    fixture_t *f = *state;
    char dir[300], p[340];
    unsigned mode = 0;
    mode_t old = umask(022);
    snprintf(dir, sizeof dir, "%s/data", f->dir);
    store_t *s = open_ok(dir);
    assert_int_equal(store_writer_start(s, NULL, NULL), 0);
    store_item_t *it = store_item_new(STORE_ITEM_STATUS);
    snprintf(it->terminal_id, sizeof it->terminal_id, "X1");
    assert_int_equal(store_submit(s, it), 0);
    store_writer_stop(s); /* committed: -wal and -shm exist while the store is open */
    file_info(dir, &mode);
    assert_int_equal(mode, 0700);
    static const char *const names[] = {"master.key", "gridsense.db", "gridsense.db-wal",
                                        "gridsense.db-shm"};
    /* On PostgreSQL the data dir holds only the key (the database files are the server's). */
    for (int i = 0; i < (ut_pg() ? 1 : 4); i++) {
        path_in(p, sizeof p, dir, names[i]);
        assert_true(file_info(p, &mode) >= 0);
        if (mode != 0600)
            fail_msg("%s has mode %04o with umask 022", p, mode);
    }
    store_close(s);

    /* A data dir from the previous release (0755, files 0644): made private at open. */
    assert_int_equal(chmod(dir, 0755), 0);
    path_in(p, sizeof p, dir, "gridsense.db");
    if (!ut_pg()) /* (PostgreSQL: no database file here) */
        assert_int_equal(chmod(p, 0644), 0);
    path_in(p, sizeof p, dir, "fftw-wisdom");
    write_file(p, "(wisdom)", 8, 0644);
    s = open_ok(dir);
    store_close(s);
    file_info(dir, &mode);
    assert_int_equal(mode, 0700);
    assert_true(file_info(p, &mode) > 0);
    assert_int_equal(mode, 0600);
    path_in(p, sizeof p, dir, "gridsense.db");
    if (!ut_pg()) {
        file_info(p, &mode);
        assert_int_equal(mode, 0600);
    }
    umask(old);
}

/* ---- users, sessions, tokens, audit (users.c) ---- */

static store_acct_t mk_acct(int op, const char *user, int role)
{
    store_acct_t a;
    memset(&a, 0, sizeof a);
    a.op = op;
    snprintf(a.user, sizeof a.user, "%s", user);
    a.role = role;
    snprintf(a.pwhash, sizeof a.pwhash, "$argon2id$fake-for-%s", user);
    a.has_audit = 1;
    snprintf(a.audit.action, sizeof a.audit.action, "test.%d", op);
    snprintf(a.audit.target, sizeof a.audit.target, "user %s", user);
    snprintf(a.audit.remote, sizeof a.audit.remote, "local");
    return a;
}

static int audit_collect(void *ud, const store_audit_t *au)
{
    store_audit_t *out = ud;
    int i = 0;
    while (out[i].id)
        i++;
    if (i < 15)
        out[i] = *au;
    return 0;
}

static void test_users_roles(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_acct_t a = mk_acct(STORE_ACCT_USER_ADD, "ann", STORE_ROLE_ADMIN);
    assert_int_equal(store_account_apply(s, &a), 0);
    a = mk_acct(STORE_ACCT_USER_ADD, "ann", STORE_ROLE_VIEWER);
    assert_int_equal(store_account_apply(s, &a), GS_EEXISTS);
    a = mk_acct(STORE_ACCT_USER_ADD, "bad name", STORE_ROLE_VIEWER);
    assert_int_equal(store_account_apply(s, &a), GS_EINVAL);
    store_user_t u;
    assert_int_equal(store_user_get(s, "ann", &u), 0);
    assert_int_equal(u.role, STORE_ROLE_ADMIN);
    assert_string_equal(u.pwhash, "$argon2id$fake-for-ann");
    /* the last admin can be neither demoted nor removed */
    a = mk_acct(STORE_ACCT_USER_ROLE, "ann", STORE_ROLE_VIEWER);
    assert_int_equal(store_account_apply(s, &a), GS_ESTATE);
    a = mk_acct(STORE_ACCT_USER_REMOVE, "ann", 0);
    assert_int_equal(store_account_apply(s, &a), GS_ESTATE);
    a = mk_acct(STORE_ACCT_USER_ADD, "bo", STORE_ROLE_OPERATOR);
    assert_int_equal(store_account_apply(s, &a), 0);
    a = mk_acct(STORE_ACCT_USER_ROLE, "bo", STORE_ROLE_ADMIN);
    assert_int_equal(store_account_apply(s, &a), 0);
    a = mk_acct(STORE_ACCT_USER_ROLE, "ann", STORE_ROLE_VIEWER);
    assert_int_equal(store_account_apply(s, &a), 0); /* bo is admin now */
    int64_t n;
    assert_int_equal(store_user_count(s, STORE_ROLE_ADMIN, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_user_count(s, 0, &n), 0);
    assert_int_equal(n, 2);
    a = mk_acct(STORE_ACCT_USER_REMOVE, "nobody", 0);
    assert_int_equal(store_account_apply(s, &a), GS_ENOTFOUND);

    /* every attempt is audited, failures with outcome "failed" and the reason */
    store_audit_t rows[16];
    memset(rows, 0, sizeof rows);
    store_audit_filter_t fl = {.from_ns = INT64_MIN, .to_ns = INT64_MAX, .limit = 100};
    assert_int_equal(store_audit_list(s, &fl, audit_collect, rows), 0);
    assert_int_equal(rows[9].id, 0);
    assert_int_not_equal(rows[8].id, 0); /* 9 attempts */
    assert_string_equal(rows[0].outcome, "failed"); /* newest first: the remove of nobody */
    assert_string_equal(rows[0].detail, "not found");
    assert_string_equal(rows[8].outcome, "ok");
    fl.outcome = "failed";
    memset(rows, 0, sizeof rows);
    assert_int_equal(store_audit_list(s, &fl, audit_collect, rows), 0);
    assert_int_not_equal(rows[4].id, 0);
    assert_int_equal(rows[5].id, 0); /* EEXISTS, EINVAL, 2 x ESTATE, ENOTFOUND */
    fl.outcome = NULL;
    fl.action = "test.";
    fl.limit = 3;
    memset(rows, 0, sizeof rows);
    assert_int_equal(store_audit_list(s, &fl, audit_collect, rows), 0);
    assert_int_equal(rows[3].id, 0);
    fl.before_id = rows[2].id; /* the next page */
    fl.limit = 100;
    memset(rows, 0, sizeof rows);
    assert_int_equal(store_audit_list(s, &fl, audit_collect, rows), 0);
    assert_int_not_equal(rows[5].id, 0);
    assert_int_equal(rows[6].id, 0);
    store_close(s);
}

static void test_sessions_tokens(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    store_acct_t a = mk_acct(STORE_ACCT_USER_ADD, "cy", STORE_ROLE_OPERATOR);
    assert_int_equal(store_account_apply(s, &a), 0);
    /* a login session */
    a = mk_acct(STORE_ACCT_LOGIN_ADD, "cy", 0);
    memset(a.hash, 0x11, sizeof a.hash);
    a.expires_ns = 2000;
    assert_int_equal(store_account_apply(s, &a), 0);
    store_login_t l;
    uint8_t h[STORE_HASH_LEN];
    memset(h, 0x11, sizeof h);
    assert_int_equal(store_login_find(s, h, &l), 0);
    assert_string_equal(l.user, "cy");
    assert_int_equal(l.role, STORE_ROLE_OPERATOR);
    assert_int_equal(l.expires_ns, 2000);
    a = mk_acct(STORE_ACCT_LOGIN_TOUCH, "cy", 0);
    memset(a.hash, 0x11, sizeof a.hash);
    a.when_ns = l.last_used_ns + 5;
    assert_int_equal(store_account_apply(s, &a), 0);
    int64_t before = l.last_used_ns;
    assert_int_equal(store_login_find(s, h, &l), 0);
    assert_int_equal(l.last_used_ns, before + 5);
    a.when_ns = 1; /* never moves back */
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_login_find(s, h, &l), 0);
    assert_int_equal(l.last_used_ns, before + 5);
    /* a session of a user that does not exist is not created */
    a = mk_acct(STORE_ACCT_LOGIN_ADD, "ghost", 0);
    assert_int_equal(store_account_apply(s, &a), GS_ENOTFOUND);
    /* a new password ends the sessions */
    a = mk_acct(STORE_ACCT_USER_PASSWD, "cy", 0);
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_login_find(s, h, &l), GS_ENOTFOUND);

    /* tokens */
    a = mk_acct(STORE_ACCT_TOKEN_ADD, "cy", 0);
    snprintf(a.token_id, sizeof a.token_id, "0123456789abcdef");
    memset(a.hash, 0x22, sizeof a.hash);
    snprintf(a.label, sizeof a.label, "ci");
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_account_apply(s, &a), GS_EEXISTS);
    a = mk_acct(STORE_ACCT_TOKEN_ADD, "ghost", 0);
    snprintf(a.token_id, sizeof a.token_id, "1123456789abcdef");
    memset(a.hash, 0x33, sizeof a.hash);
    assert_int_equal(store_account_apply(s, &a), GS_ENOTFOUND);
    store_token_t t;
    memset(h, 0x22, sizeof h);
    assert_int_equal(store_token_find(s, h, &t), 0);
    assert_string_equal(t.id, "0123456789abcdef");
    assert_string_equal(t.user, "cy");
    assert_string_equal(t.name, "ci");
    assert_int_equal(t.role, STORE_ROLE_OPERATOR);
    assert_int_equal(t.revoked_ns, 0);
    a = mk_acct(STORE_ACCT_TOKEN_REVOKE, "", 0);
    snprintf(a.token_id, sizeof a.token_id, "0123456789abcdef");
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_account_apply(s, &a), GS_ESTATE);
    assert_int_equal(store_token_find(s, h, &t), 0);
    assert_true(t.revoked_ns > 0);
    snprintf(a.token_id, sizeof a.token_id, "fffffffffffffff0");
    assert_int_equal(store_account_apply(s, &a), GS_ENOTFOUND);
    /* removing the user removes its tokens and sessions */
    a = mk_acct(STORE_ACCT_USER_ADD, "adm", STORE_ROLE_ADMIN);
    assert_int_equal(store_account_apply(s, &a), 0);
    a = mk_acct(STORE_ACCT_USER_REMOVE, "cy", 0);
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_token_find(s, h, &t), GS_ENOTFOUND);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM api_tokens"), 0);
    store_close(s);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, result[8];
    pthread_t thread[8];
} notified_t;

static void notify_cb(store_item_t *it, void *ud)
{
    notified_t *x = ud;
    pthread_mutex_lock(&x->mu);
    if (x->n < 8) {
        x->result[x->n] = it->result;
        x->thread[x->n] = pthread_self();
        x->n++;
    }
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    store_item_free(it);
}

/* STORE_ITEM_ACCOUNT through the writer, answered through the item's own notify (not the done
 * callback), on the writer thread; the audit row commits with the change. */
static void test_writer_account(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_ok(f->dir);
    collector_t col;
    collector_init(&col);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);
    notified_t x = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    const char *names[] = {"dee", "dee", "ed"};
    for (int i = 0; i < 3; i++) {
        store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
        it->acct = xcalloc(1, sizeof *it->acct);
        *it->acct = mk_acct(STORE_ACCT_USER_ADD, names[i], STORE_ROLE_VIEWER);
        it->notify = notify_cb;
        it->notify_ud = &x;
        assert_int_equal(store_submit(s, it), 0);
    }
    pthread_mutex_lock(&x.mu);
    while (x.n < 3)
        pthread_cond_wait(&x.cv, &x.mu);
    pthread_mutex_unlock(&x.mu);
    assert_int_equal(x.result[0], 0);
    assert_int_equal(x.result[1], GS_EEXISTS);
    assert_int_equal(x.result[2], 0);
    assert_false(pthread_equal(x.thread[0], pthread_self()));
    store_writer_stats_t ws;
    store_writer_stats(s, &ws);
    assert_int_equal(ws.errors, 0); /* a refused change is an answer, not a store error */
    store_close(s);
    assert_int_equal(col.ok + col.err, 0); /* nothing reached the done callback */
    collector_destroy(&col);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM users"), 2);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM audit WHERE outcome = 'failed'"), 1);
}

/* ---- Blocks compressed at rest (migration 9) ---- */

/* 6 int16 channels (3 voltages, 3 currents) of a 50 Hz signal at 6400 S/s, with a little noise;
 * noise_only: full-scale pseudo-random values (incompressible). */
static uint8_t *codec_samples(uint32_t nsets, uint32_t seed, int noise_only)
{
    uint8_t *p = xmalloc((size_t)nsets * 12);
    for (uint32_t i = 0; i < nsets; i++)
        for (int c = 0; c < 6; c++) {
            seed = seed * 1664525u + 1013904223u;
            double ph = 2 * M_PI * (50.0 * i / 6400.0 - (c % 3) / 3.0);
            int v = noise_only ? (int)(int16_t)(seed >> 16)
                               : (int)lrint((c < 3 ? 9000 : 3000) * sin(ph)) + (int)(seed >> 29) - 4;
            uint16_t u = (uint16_t)(int16_t)v;
            p[(size_t)i * 12 + (size_t)c * 2] = (uint8_t)u;
            p[(size_t)i * 12 + (size_t)c * 2 + 1] = (uint8_t)(u >> 8);
        }
    return p;
}

static store_item_t *codec_block(uint64_t seq, uint8_t *raw, uint32_t nsets)
{
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "Z1");
    it->cookie = seq;
    it->seq = seq;
    it->t0_ns = 1700000000000000000LL + (int64_t)seq * 100000000LL;
    it->sample_rate = 6400;
    it->channel_mask = 0x3f;
    it->nchannels = 6;
    it->sample_fmt = 1;
    it->time_quality = 1;
    it->nsamples = nsets;
    it->nominal_hz = 50;
    it->data = raw;
    it->data_len = (size_t)nsets * 12;
    return it;
}

typedef struct {
    int n;
    uint64_t seq[8];
    uint8_t *data[8];
    size_t len[8];
} codec_read_t;

static int codec_read_cb(void *ud, const store_block_t *b)
{
    codec_read_t *r = ud;
    if (r->n < 8) {
        r->seq[r->n] = b->seq;
        r->len[r->n] = b->data_len;
        r->data[r->n] = xmalloc(b->data_len ? b->data_len : 1);
        memcpy(r->data[r->n], b->data, b->data_len);
        r->n++;
    }
    return 0;
}

/* A block received raw is encoded by the writer (codec 2, fewer bytes); one received encoded
 * (codec 1 here) is stored byte for byte as it came, its codec kept; an incompressible one stays raw; a raw row from before the
 * migration (codec defaults to 0) still reads; a corrupt compressed row is left out of the read
 * with a log line, and the blocks after it are still read. Reads hand out the raw samples. */
static void test_blocks_codec_at_rest(void **state)
{
    fixture_t *f = *state;
    enum { NS = 640 };
    store_t *s = open_ok(f->dir);
    collector_t col;
    collector_init(&col);
    store_terminal_t t = make_terminal("Z1");
    assert_int_equal(store_terminal_add(s, &t), 0);
    assert_int_equal(store_writer_start(s, collect_cb, &col), 0);

    uint8_t *a = codec_samples(NS, 1, 0), *b = codec_samples(NS, 2, 0), *c = codec_samples(NS, 3, 1);
    uint8_t *a_copy = xmalloc(NS * 12), *b_copy = xmalloc(NS * 12), *c_copy = xmalloc(NS * 12);
    memcpy(a_copy, a, NS * 12);
    memcpy(b_copy, b, NS * 12);
    memcpy(c_copy, c, NS * 12);
    /* seq 2 arrives encoded (as the gateway hands over a codec-1 block) */
    size_t cap = wcodec_bound(NS, 6, 1), enc_len = 0;
    uint8_t *enc = xmalloc(cap);
    assert_int_equal(wcodec_encode_block(b, NS, 6, 1, 128, enc, cap, &enc_len), WCODEC_OK);
    assert_true(enc_len < NS * 12);
    store_item_t *ib = codec_block(2, b, NS);
    ib->enc = xmalloc(enc_len);
    memcpy(ib->enc, enc, enc_len);
    ib->enc_len = enc_len;
    ib->codec = 1;
    assert_int_equal(store_submit(s, codec_block(1, a, NS)), 0);
    assert_int_equal(store_submit(s, ib), 0);
    assert_int_equal(store_submit(s, codec_block(3, c, NS)), 0);
    assert_int_equal(collector_wait(&col, 3), 0);
    assert_int_equal(col.ok, 3);
    store_writer_stop(s);

    assert_int_equal(sql_int(f->dir, "SELECT codec FROM blocks WHERE seq = 1"), 2);
    int64_t len1 = sql_int(f->dir, "SELECT length(data) FROM blocks WHERE seq = 1");
    print_message("raw-received block encoded by the writer: %lld of %d bytes\n",
                  (long long)len1, NS * 12);
    assert_true(len1 > 0 && len1 < NS * 12);
    assert_int_equal(sql_int(f->dir, "SELECT codec FROM blocks WHERE seq = 2"), 1);
    assert_int_equal(sql_int(f->dir, "SELECT length(data) FROM blocks WHERE seq = 2"), enc_len);
    char sql[1024];
    /* the stored bytes are the received ones, byte for byte */
    {
        sqlx_t *db = ut_db_open(f->dir);
        sqlx_stmt_t *st = NULL;
        assert_int_equal(sqlx_prepare(db, "SELECT data FROM blocks WHERE seq = 2", &st), 0);
        assert_int_equal(sqlx_step(st), SQLX_ROW);
        assert_int_equal(sqlx_column_bytes(st, 0), enc_len);
        assert_memory_equal(sqlx_column_blob(st, 0), enc, enc_len);
        sqlx_finalize(st);
        sqlx_close(db);
    }
    assert_int_equal(sql_int(f->dir, "SELECT codec FROM blocks WHERE seq = 3"), 0);
    assert_int_equal(sql_int(f->dir, "SELECT length(data) FROM blocks WHERE seq = 3"), NS * 12);

    /* a raw row as stored before migration 9 (codec left to its default), then a corrupt
     * compressed row, then another raw row */
    snprintf(sql, sizeof sql,
             "INSERT INTO blocks(terminal_id, seq, kind, t0_ns, sample_rate, channel_mask,"
             " nchannels, sample_fmt, time_quality, nsamples, data, received_ns) VALUES"
             " ('Z1', 4, 0, %lld, 6400, 3, 2, 1, 1, 2, %s, 1),"
             " ('Z1', 5, 0, %lld, 6400, 3, 2, 1, 1, 2, %s, 1),"
             " ('Z1', 6, 0, %lld, 6400, 3, 2, 1, 1, 2, %s, 1);"
             "UPDATE blocks SET codec = 1 WHERE seq = 5;",
             1700000000000000000LL + 400000000LL,
             UT_SQL("X'0100020003000400'", "'\\x0100020003000400'::bytea"),
             1700000000000000000LL + 500000000LL,
             UT_SQL("X'ffffffffffff'", "'\\xffffffffffff'::bytea"),
             1700000000000000000LL + 600000000LL,
             UT_SQL("X'0500060007000800'", "'\\x0500060007000800'::bytea"));
    sql_exec(f->dir, sql);
    assert_int_equal(sql_int(f->dir, "SELECT codec FROM blocks WHERE seq = 4"), 0);

    codec_read_t r = {0};
    assert_int_equal(store_blocks_read(s, "Z1", 0, INT64_MAX, STORE_BLOCKS_WAVEFORM,
                                       codec_read_cb, &r),
                     0);
    assert_int_equal(r.n, 5);
    static const uint64_t want_seq[5] = {1, 2, 3, 4, 6};
    const uint8_t *want[3] = {a_copy, b_copy, c_copy};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.seq[i], want_seq[i]);
        if (i < 3) {
            assert_int_equal(r.len[i], NS * 12);
            assert_memory_equal(r.data[i], want[i], NS * 12);
        }
    }
    assert_int_equal(r.len[3], 8);
    assert_memory_equal(r.data[3], "\x01\x00\x02\x00\x03\x00\x04\x00", 8);
    assert_memory_equal(r.data[4], "\x05\x00\x06\x00\x07\x00\x08\x00", 8);
    for (int i = 0; i < r.n; i++)
        free(r.data[i]);
    free(enc);
    free(a_copy);
    free(b_copy);
    free(c_copy);
    store_close(s);
    collector_destroy(&col);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    /* A part of the tests only (cmocka globs on the test names): integ.pg_store runs this binary
     * in two parts at once, test_writer_* and the others. */
    if (getenv("GS_UT_FILTER"))
        cmocka_set_test_filter(getenv("GS_UT_FILTER"));
    if (getenv("GS_UT_SKIP"))
        cmocka_set_skip_filter(getenv("GS_UT_SKIP"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_codec_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_drain_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_busy_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_command_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_command_no_regress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_command_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_analysis_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_sealed_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_moved_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_names_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_account, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
