/* Unit tests for the store side of the REST resources (store.h "REST" section): the account ops
 * for terminals, command cancel and event acknowledgement with their audit rows (admin_write.c),
 * sealing under a key rotated by another connection, and the list reads (rest_read.c), against
 * real SQLite databases in temp dirs. */
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

typedef struct {
    char dir[64];
    store_t *s;
} fixture_t;

static store_t *open_ok(const char *dir)
{
    store_t *s = NULL;
    char err[256] = "";
    int rc = store_open(dir, NULL, &s, err, sizeof err);
    if (rc != 0)
        print_error("store_open(%s): %s (%s)\n", dir, err, err_name(rc));
    assert_int_equal(rc, 0);
    return s;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gs_rest_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->s = open_ok(f->dir);
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

/* Statements and one-value queries on a separate connection to dir's database (either
 * engine: tests/unit/ut_store.h). */
static void sql_exec(const char *dir, const char *sql)
{
    ut_db_exec(dir, sql);
}

static int64_t sql_int(const char *dir, const char *sql)
{
    return ut_db_int(dir, sql, NULL);
}

/* An account change as the API builds it, with an audit row. */
static store_acct_t mkacct(int op, const char *action, const char *target)
{
    store_acct_t a;
    memset(&a, 0, sizeof a);
    a.op = op;
    a.has_audit = 1;
    snprintf(a.audit.user, sizeof a.audit.user, "alice");
    snprintf(a.audit.remote, sizeof a.audit.remote, "127.0.0.1");
    snprintf(a.audit.action, sizeof a.audit.action, "%s", action);
    snprintf(a.audit.target, sizeof a.audit.target, "%s", target);
    snprintf(a.audit.outcome, sizeof a.audit.outcome, "ok");
    return a;
}

static int add_terminal(store_t *s, const char *id, const char *name, uint8_t secret[32])
{
    store_acct_t a = mkacct(STORE_ACCT_TERMINAL_ADD, "terminal.add", id);
    snprintf(a.term.id, sizeof a.term.id, "%s", id);
    snprintf(a.term.name, sizeof a.term.name, "%s", name);
    a.term.nominal_hz = 50;
    a.term.vt_ratio = 200;
    a.term.ct_ratio = 40;
    a.term.declared_v = 57.7;
    a.term.has_location = 1;
    a.term.lat = 47.5;
    a.term.lon = 8.25;
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(i * 7 + id[0]);
    assert_int_equal(store_secret_seal(s, id, secret, a.sealed, a.key_id), 0);
    return store_account_apply(s, &a);
}

static void test_terminal_ops(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->s;
    uint8_t sec[32], sec2[32];
    assert_int_equal(add_terminal(s, "T1", "Feeder", sec), 0);
    store_terminal_t t;
    assert_int_equal(store_terminal_get(s, "T1", &t), 0);
    assert_memory_equal(t.secret, sec, 32); /* sealed on this thread, unsealed the same */
    assert_string_equal(t.name, "Feeder");
    assert_true(t.vt_ratio == 200 && t.ct_ratio == 40 && t.declared_v == 57.7 && t.has_location);
    assert_int_equal(add_terminal(s, "T1", "again", sec2), GS_EEXISTS);
    assert_int_equal(add_terminal(s, "bad id", "x", sec2), GS_EINVAL);

    /* update: only the named fields; location and declared voltage can be cleared */
    store_acct_t a = mkacct(STORE_ACCT_TERMINAL_UPDATE, "terminal.change", "T1");
    snprintf(a.term.id, sizeof a.term.id, "T1");
    a.term_fields = STORE_TERM_F_NAME | STORE_TERM_F_LOCATION | STORE_TERM_F_DECLARED_V;
    snprintf(a.term.name, sizeof a.term.name, "Renamed");
    a.term.vt_ratio = 999; /* not in term_fields: ignored */
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_terminal_info(s, "T1", &t), 0);
    assert_string_equal(t.name, "Renamed");
    assert_false(t.has_location);
    assert_true(t.declared_v == 0 && t.vt_ratio == 200);
    a.term_fields = STORE_TERM_F_NOMINAL_HZ;
    a.term.nominal_hz = 55;
    assert_int_equal(store_account_apply(s, &a), GS_EINVAL);
    a.term.nominal_hz = 60;
    assert_int_equal(store_account_apply(s, &a), 0);
    a.term_fields = 0;
    assert_int_equal(store_account_apply(s, &a), GS_EINVAL);
    snprintf(a.term.id, sizeof a.term.id, "NOPE");
    a.term_fields = STORE_TERM_F_CT_RATIO;
    a.term.ct_ratio = 5;
    assert_int_equal(store_account_apply(s, &a), GS_ENOTFOUND);

    /* a new secret bumps the credentials version (the gateway ends the session) */
    int64_t v0, v1;
    assert_int_equal(store_credentials_version(s, &v0), 0);
    store_acct_t r = mkacct(STORE_ACCT_TERMINAL_SECRET, "terminal.secret", "T1");
    snprintf(r.term.id, sizeof r.term.id, "T1");
    memset(sec2, 0xA5, sizeof sec2);
    assert_int_equal(store_secret_seal(s, "T1", sec2, r.sealed, r.key_id), 0);
    assert_int_equal(store_account_apply(s, &r), 0);
    assert_int_equal(store_credentials_version(s, &v1), 0);
    assert_true(v1 > v0);
    assert_int_equal(store_terminal_get(s, "T1", &t), 0);
    assert_memory_equal(t.secret, sec2, 32);
    snprintf(r.term.id, sizeof r.term.id, "NOPE");
    assert_int_equal(store_account_apply(s, &r), GS_ENOTFOUND);

    /* remove: the terminal and its unfinished commands */
    int64_t cid;
    assert_int_equal(store_command_create(s, "T1", 1, NULL, 0, 60000000000LL, &cid), 0);
    store_acct_t d = mkacct(STORE_ACCT_TERMINAL_REMOVE, "terminal.remove", "T1");
    snprintf(d.term.id, sizeof d.term.id, "T1");
    assert_int_equal(store_account_apply(s, &d), 0);
    assert_int_equal(store_terminal_info(s, "T1", &t), GS_ENOTFOUND);
    store_command_t c;
    assert_int_equal(store_command_get(s, cid, &c), GS_ENOTFOUND);
    assert_int_equal(store_account_apply(s, &d), GS_ENOTFOUND);

    /* every attempt has its audit row, failures marked */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM audit WHERE action = 'terminal.add'"
                                     " AND outcome = 'ok'"),
                     1);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM audit WHERE action = 'terminal.add'"
                                     " AND outcome = 'failed'"),
                     2);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM audit WHERE action = 'terminal.remove'"),
                     2);
}

/* Sealed under a key that another process rotated away before the write: GS_EBUSY and nothing
 * written; sealing again (which reloads the key) succeeds. */
static void test_seal_after_rotation(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->s;
    uint8_t sec[32];
    memset(sec, 0x42, sizeof sec);
    store_acct_t a = mkacct(STORE_ACCT_TERMINAL_ADD, "terminal.add", "K1");
    snprintf(a.term.id, sizeof a.term.id, "K1");
    a.term.nominal_hz = 50;
    a.term.vt_ratio = a.term.ct_ratio = 1;
    assert_int_equal(store_secret_seal(s, "K1", sec, a.sealed, a.key_id), 0);

    store_t *other = open_ok(f->dir);
    char id[33], err[256];
    assert_int_equal(store_key_rotate(other, id, err, sizeof err), 0);
    store_close(other);

    assert_int_equal(store_account_apply(s, &a), GS_EBUSY);
    store_terminal_t t;
    assert_int_equal(store_terminal_info(s, "K1", &t), GS_ENOTFOUND);
    assert_int_equal(store_secret_seal(s, "K1", sec, a.sealed, a.key_id), 0);
    assert_int_equal(store_account_apply(s, &a), 0);
    assert_int_equal(store_terminal_get(s, "K1", &t), 0);
    assert_memory_equal(t.secret, sec, 32);
}

static void test_cancel_and_ack(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->s;
    uint8_t sec[32];
    assert_int_equal(add_terminal(s, "C1", "c", sec), 0);
    int64_t q, sent;
    assert_int_equal(store_command_create(s, "C1", 1, NULL, 0, 60000000000LL, &q), 0);
    assert_int_equal(store_command_create(s, "C1", 1, NULL, 0, 60000000000LL, &sent), 0);
    assert_int_equal(store_command_update(s, sent, STORE_CMD_SENT, -1, NULL, 0), 0);

    store_acct_t a = mkacct(STORE_ACCT_COMMAND_CANCEL, "command.cancel", "c");
    a.object_id = q;
    assert_int_equal(store_account_apply(s, &a), 0);
    store_command_t c;
    assert_int_equal(store_command_get(s, q, &c), 0);
    assert_int_equal(c.state, STORE_CMD_CANCELLED);
    assert_string_equal(store_cmd_state_name(c.state), "cancelled");
    assert_int_equal(store_account_apply(s, &a), GS_ESTATE); /* final now */
    /* a cancelled command is final: never pending, never delivered, not moved on */
    int64_t n = -1;
    assert_int_equal(store_command_count_pending(s, "C1", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_command_update(s, q, STORE_CMD_SENT, -1, NULL, 0), GS_ESTATE);
    a.object_id = sent;
    assert_int_equal(store_account_apply(s, &a), GS_ESTATE);
    a.object_id = 999999;
    assert_int_equal(store_account_apply(s, &a), GS_ENOTFOUND);

    sql_exec(f->dir, "INSERT INTO pq_events(id, terminal_id, kind, start_ns, duration_ns, extreme,"
                     " extreme_pct, reference, channels, worst_channel, flags, detected_ns)"
                     " VALUES(7, 'C1', 'dip', 1000, 5, 20, 40, 50, 1, 0, 0, 1)");
    store_acct_t k = mkacct(STORE_ACCT_EVENT_ACK, "event.ack", "event 7");
    k.object_id = 7;
    snprintf(k.user, sizeof k.user, "bob");
    k.when_ns = 12345;
    assert_int_equal(store_account_apply(s, &k), 0);
    assert_int_equal(store_account_apply(s, &k), GS_ESTATE);
    k.object_id = 8;
    assert_int_equal(store_account_apply(s, &k), GS_ENOTFOUND);
    assert_int_equal(sql_int(f->dir, "SELECT acked_ns FROM pq_events WHERE id = 7"), 12345);
}

/* ---- reads ---- */

typedef struct {
    char ids[16][160];
    int n, stop_at;
} col_t;

static int term_cb(void *ud, const store_terminal_t *t)
{
    col_t *c = ud;
    snprintf(c->ids[c->n++], sizeof c->ids[0], "%s", t->id);
    return c->n == c->stop_at;
}

static int cmd_cb(void *ud, const store_command_t *x)
{
    col_t *c = ud;
    snprintf(c->ids[c->n++], sizeof c->ids[0], "%lld", (long long)x->id);
    return 0;
}

static int ev_cb(void *ud, const store_pq_event_ack_t *e)
{
    col_t *c = ud;
    snprintf(c->ids[c->n++], sizeof c->ids[0], "%lld:%s", (long long)e->e.id, e->acked_by);
    return 0;
}

static int status_cb(void *ud, const store_status_t *x)
{
    col_t *c = ud;
    snprintf(c->ids[c->n++], sizeof c->ids[0], "%lld:%lld", (long long)x->id,
             x->rsrp_dbm == STORE_NA ? -1LL : (long long)x->rsrp_dbm);
    return 0;
}

static int sess_cb(void *ud, const store_session_t *x)
{
    col_t *c = ud;
    snprintf(c->ids[c->n++], sizeof c->ids[0], "%lld:%s:%lld", (long long)x->session_id, x->reason,
             x->frames == STORE_NA ? -1LL : (long long)x->frames);
    return 0;
}

static void test_reads(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->s;
    uint8_t sec[32];
    assert_int_equal(add_terminal(s, "A1", "North Substation", sec), 0);
    assert_int_equal(add_terminal(s, "A2", "south pole", sec), 0);
    assert_int_equal(add_terminal(s, "B1", "Harbour", sec), 0);

    col_t c = {0};
    assert_int_equal(store_terminal_query(s, NULL, "SUB", term_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "A1");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_terminal_query(s, "A1", NULL, term_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "A2");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_terminal_query(s, NULL, "%", term_cb, &c), 0);
    assert_int_equal(c.n, 0); /* literal, not a LIKE pattern */
    memset(&c, 0, sizeof c);
    c.stop_at = 1;
    assert_int_equal(store_terminal_query(s, NULL, "a", term_cb, &c), 1); /* cb stops */

    int64_t ids[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            store_command_create(s, i < 3 ? "A1" : "B1", 1, NULL, 0, 60000000000LL, &ids[i]), 0);
    assert_int_equal(store_command_update(s, ids[1], STORE_CMD_SENT, -1, NULL, 0), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_command_query(s, NULL, 1u << STORE_CMD_QUEUED, INT64_MIN, INT64_MAX, 0,
                                         100, cmd_cb, &c),
                     0);
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_command_query(s, "A1", 0, INT64_MIN, INT64_MAX, ids[2], 1, cmd_cb, &c),
                     0);
    assert_int_equal(c.n, 1);
    assert_int_equal(atoll(c.ids[0]), ids[1]);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_command_query(s, NULL, 0, 0, 1, 0, 100, cmd_cb, &c), 0);
    assert_int_equal(c.n, 0); /* created long after 1 ns */

    /* events: two at the same start, paging by (start, id) */
    sql_exec(f->dir,
             "INSERT INTO pq_events(id, terminal_id, kind, start_ns, duration_ns, detected_ns,"
             " acked_by, acked_ns) VALUES(1, 'A1', 'dip', 100, 1, 1, NULL, NULL),"
             " (2, 'A1', 'swell', 300, 1, 1, 'bob', 5), (3, 'A2', 'dip', 300, 1, 1, NULL, NULL),"
             " (4, 'A1', 'dip', 200, 1, 1, NULL, NULL)");
    store_pq_event_filter_t ef = {
        .from_ns = INT64_MIN, .to_ns = INT64_MAX, .acked = -1, .limit = 2};
    memset(&c, 0, sizeof c);
    assert_int_equal(store_pq_event_query(s, &ef, ev_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "3:");
    assert_string_equal(c.ids[1], "2:bob");
    ef.before_id = 2;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_pq_event_query(s, &ef, ev_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "4:");
    assert_string_equal(c.ids[1], "1:");
    ef.before_id = 99;
    assert_int_equal(store_pq_event_query(s, &ef, ev_cb, &c), GS_ENOTFOUND);
    store_pq_event_filter_t f2 = {.from_ns = INT64_MIN,
                                  .to_ns = INT64_MAX,
                                  .acked = 0,
                                  .limit = 10,
                                  .terminal_id = "A1",
                                  .kind = "dip"};
    memset(&c, 0, sizeof c);
    assert_int_equal(store_pq_event_query(s, &f2, ev_cb, &c), 0);
    assert_int_equal(c.n, 2);
    f2.acked = 1;
    f2.kind = NULL;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_pq_event_query(s, &f2, ev_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "2:bob");
    store_pq_event_filter_t one = {.id = 4, .limit = 1};
    memset(&c, 0, sizeof c);
    assert_int_equal(store_pq_event_query(s, &one, ev_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "4:");

    /* status and sessions: newest first, NULL as STORE_NA, from/to and before */
    sql_exec(f->dir, "INSERT INTO status(id, terminal_id, time_ns, received_ns, rsrp_dbm) VALUES"
                     " (1, 'A1', 10, 11, -90), (2, 'A1', 20, 21, NULL), (3, 'A2', 30, 31, -80),"
                     " (4, 'A1', 40, 41, -70)");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_status_list(s, "A1", 0, 100, 0, 10, status_cb, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.ids[0], "4:-70");
    assert_string_equal(c.ids[1], "2:-1");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_status_list(s, "A1", 15, 40, 0, 10, status_cb, &c), 0);
    assert_int_equal(c.n, 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_status_list(s, "A1", 0, 100, 2, 10, status_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "1:-90");
    sql_exec(f->dir, "INSERT INTO sessions(session_id, terminal_id, remote, opened_ns, closed_ns,"
                     " close_reason, frames, bytes, blocks) VALUES"
                     " (101, 'A1', '1.2.3.4:5', 10, 20, 'peer closed', 7, 100, 3),"
                     " (102, 'A1', '1.2.3.4:6', 30, NULL, NULL, NULL, NULL, NULL)");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_session_list(s, "A1", INT64_MIN, INT64_MAX, 0, 10, sess_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "102::-1");
    assert_string_equal(c.ids[1], "101:peer closed:7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_terminal_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_after_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
