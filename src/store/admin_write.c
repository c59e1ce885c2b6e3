/* REST changes of terminals, commands and events as account ops (contract in store.h): the
 * writer applies them with their audit row in one transaction (users.c store__account_write calls
 * store__admin_change inside its savepoint), so the trail and the change commit together.
 *
 * The rules are those of the synchronous calls the admin CLI uses (store.c): a terminal's secret
 * is written only while the key it was sealed under is still the database's key (a rotation by
 * another process in between would leave a row under a key about to be retired), and removing a
 * terminal removes its unfinished commands. The credentials_version triggers (schema 2) fire on
 * DELETE and on UPDATE OF secret whoever runs them, so the gateway ends the sessions of a removed
 * or re-keyed terminal within a second exactly as after `gridsense terminal remove`.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

_Static_assert(STORE_SEALED_BYTES == STORE_SEALED_LEN, "sealed secret size");

/* Runs a prepared statement to its end and finalizes it; *changes gets the rows changed. */
static int run(sqlx_t *db, sqlx_stmt_t *st, const char *what, int *changes)
{
    int src = sqlx_step(st);
    int rc = src == SQLX_DONE ? 0 : store__db_fail(db, what);
    if (changes)
        *changes = rc == 0 ? sqlx_changes(db) : 0;
    sqlx_finalize(st);
    return rc;
}

/* 1 if `sql` (one ?1 text parameter, or ?1 integer when id is NULL) selects a row, 0 if not. */
static int exists(sqlx_t *db, const char *sql, const char *id, int64_t n)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db, sql, &st);
    if (rc < 0)
        return rc;
    if (id)
        sqlx_bind_text(st, 1, id, -1);
    else
        sqlx_bind_int64(st, 1, n);
    int src = sqlx_step(st);
    rc = src == SQLX_ROW ? 1 : src == SQLX_DONE ? 0 : store__db_fail(db, "look up");
    sqlx_finalize(st);
    return rc;
}

static int terminal_ok(const store_terminal_t *t, unsigned fields)
{
    if ((fields & STORE_TERM_F_NOMINAL_HZ) && t->nominal_hz != 50 && t->nominal_hz != 60)
        return 0;
    if ((fields & STORE_TERM_F_LOCATION) && t->has_location &&
        !(t->lat >= -90 && t->lat <= 90 && t->lon >= -180 && t->lon <= 180))
        return 0;
    if ((fields & STORE_TERM_F_VT_RATIO) && !(t->vt_ratio > 0 && t->vt_ratio <= 1e9))
        return 0;
    if ((fields & STORE_TERM_F_CT_RATIO) && !(t->ct_ratio > 0 && t->ct_ratio <= 1e9))
        return 0;
    if ((fields & STORE_TERM_F_DECLARED_V) && !(t->declared_v >= 0 && t->declared_v < 1e9))
        return 0;
    if ((fields & STORE_TERM_F_NAME) && memchr(t->name, 0, sizeof t->name) == NULL)
        return 0;
    return 1;
}

#define ALL_FIELDS                                                                                 \
    (STORE_TERM_F_NAME | STORE_TERM_F_LOCATION | STORE_TERM_F_NOMINAL_HZ | STORE_TERM_F_VT_RATIO | \
     STORE_TERM_F_CT_RATIO | STORE_TERM_F_DECLARED_V)

static int terminal_add(sqlx_t *db, const store_acct_t *a, int64_t now)
{
    const store_terminal_t *t = &a->term;
    if (!memchr(t->id, 0, sizeof t->id) || !t->id[0] || !terminal_ok(t, ALL_FIELDS))
        return GS_EINVAL;
    for (const char *p = t->id; *p; p++) /* ids appear in file names, logs and URLs */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return GS_EINVAL;
    int rc = exists(db, "SELECT 1 FROM terminals WHERE id = ?1", t->id, 0);
    if (rc != 0)
        return rc < 0 ? rc : GS_EEXISTS;
    /* durable_seq starts at what is already stored for the id, as store_terminal_add does. */
    sqlx_stmt_t *st = NULL;
    rc = store__prepare(db,
                        "INSERT INTO terminals(id, name, lat, lon, nominal_hz, vt_ratio, ct_ratio,"
                        " secret, created_ns, durable_seq, declared_v)"
                        " SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS DOUBLE PRECISION),"
                        " CAST(?4 AS DOUBLE PRECISION), CAST(?5 AS INTEGER),"
                        " CAST(?6 AS DOUBLE PRECISION), CAST(?7 AS DOUBLE PRECISION),"
                        " CAST(?8 AS BLOB), CAST(?9 AS BIGINT),"
                        " coalesce((SELECT max(seq) FROM blocks WHERE terminal_id = ?1), 0),"
                        " CAST(?10 AS DOUBLE PRECISION)"
                        " WHERE EXISTS(SELECT 1 FROM master_key WHERE id = 1 AND key_id = ?11)",
                        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, t->id, -1);
    sqlx_bind_text(st, 2, t->name, -1);
    if (t->has_location) {
        sqlx_bind_double(st, 3, t->lat);
        sqlx_bind_double(st, 4, t->lon);
    }
    sqlx_bind_int64(st, 5, t->nominal_hz);
    sqlx_bind_double(st, 6, t->vt_ratio);
    sqlx_bind_double(st, 7, t->ct_ratio);
    sqlx_bind_blob(st, 8, a->sealed, STORE_SEALED_BYTES);
    sqlx_bind_int64(st, 9, t->created_ns ? t->created_ns : now);
    if (t->declared_v > 0)
        sqlx_bind_double(st, 10, t->declared_v);
    sqlx_bind_blob(st, 11, a->key_id, STORE_KEY_ID_LEN);
    int n = 0;
    rc = run(db, st, "add terminal", &n);
    return rc < 0 ? rc : n ? 0 : GS_EBUSY; /* no row: sealed under a key no longer current */
}

static int terminal_update(sqlx_t *db, const store_acct_t *a)
{
    const store_terminal_t *t = &a->term;
    unsigned f = a->term_fields;
    if (!f || (f & ~(unsigned)ALL_FIELDS) || !terminal_ok(t, f))
        return GS_EINVAL;
    /* One statement: every column keeps its value unless its bit is set (?2). */
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        db,
        "UPDATE terminals SET"
        " name = CASE WHEN (CAST(?2 AS BIGINT) & 1) <> 0 THEN ?3 ELSE name END,"
        " lat = CASE WHEN (CAST(?2 AS BIGINT) & 2) <> 0 THEN ?4 ELSE lat END,"
        " lon = CASE WHEN (CAST(?2 AS BIGINT) & 2) <> 0 THEN ?5 ELSE lon END,"
        " nominal_hz = CASE WHEN (CAST(?2 AS BIGINT) & 4) <> 0 THEN ?6 ELSE nominal_hz END,"
        " vt_ratio = CASE WHEN (CAST(?2 AS BIGINT) & 8) <> 0 THEN ?7 ELSE vt_ratio END,"
        " ct_ratio = CASE WHEN (CAST(?2 AS BIGINT) & 16) <> 0 THEN ?8 ELSE ct_ratio END,"
        " declared_v = CASE WHEN (CAST(?2 AS BIGINT) & 32) <> 0 THEN ?9 ELSE declared_v END"
        " WHERE id = ?1",
        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, t->id, -1);
    sqlx_bind_int64(st, 2, (int)f);
    sqlx_bind_text(st, 3, t->name, -1);
    if (t->has_location) { /* else NULL: the location is cleared */
        sqlx_bind_double(st, 4, t->lat);
        sqlx_bind_double(st, 5, t->lon);
    }
    sqlx_bind_int64(st, 6, t->nominal_hz);
    sqlx_bind_double(st, 7, t->vt_ratio);
    sqlx_bind_double(st, 8, t->ct_ratio);
    if (t->declared_v > 0)
        sqlx_bind_double(st, 9, t->declared_v);
    int n = 0;
    rc = run(db, st, "change terminal", &n);
    return rc < 0 ? rc : n ? 0 : GS_ENOTFOUND;
}

static int terminal_remove(sqlx_t *db, const store_acct_t *a)
{
    sqlx_stmt_t *st = NULL;
    int n = 0;
    int rc = store__prepare(db, "DELETE FROM terminals WHERE id = ?1", &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, a->term.id, -1);
    if ((rc = run(db, st, "remove terminal", &n)) < 0)
        return rc;
    if (!n)
        return GS_ENOTFOUND;
    /* Unfinished commands would otherwise wait for a terminal that can no longer log in (and
     * be delivered to a new terminal given the same id). Stored data is kept. */
    if ((rc = store__prepare(db, "DELETE FROM commands WHERE terminal_id = ?1 AND state < 3",
                             &st)) < 0)
        return rc;
    sqlx_bind_text(st, 1, a->term.id, -1);
    return run(db, st, "remove terminal commands", NULL);
}

static int terminal_secret(sqlx_t *db, const store_acct_t *a)
{
    sqlx_stmt_t *st = NULL;
    int n = 0;
    int rc = store__prepare(db,
                            "UPDATE terminals SET secret = ?2 WHERE id = ?1"
                            " AND EXISTS(SELECT 1 FROM master_key WHERE id = 1 AND key_id = ?3)",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, a->term.id, -1);
    sqlx_bind_blob(st, 2, a->sealed, STORE_SEALED_BYTES);
    sqlx_bind_blob(st, 3, a->key_id, STORE_KEY_ID_LEN);
    if ((rc = run(db, st, "rotate secret", &n)) < 0)
        return rc;
    if (n)
        return 0;
    rc = exists(db, "SELECT 1 FROM terminals WHERE id = ?1", a->term.id, 0);
    return rc < 0 ? rc : rc ? GS_EBUSY : GS_ENOTFOUND;
}

/* Only a queued command can be cancelled: once sent, the terminal may already be executing it.
 * The gateway sends a command and then submits its `sent` state to this same writer, so a send
 * that happened before the cancel reached the writer is ordered before it here and the cancel
 * finds state 1 (GS_ESTATE); the gateway's hold (gw_command_cancel) covers the other order. */
static int command_cancel(sqlx_t *db, const store_acct_t *a, int64_t now)
{
    sqlx_stmt_t *st = NULL;
    int n = 0;
    int rc = store__prepare(db,
                            "UPDATE commands SET state = 6, updated_ns = ?2 WHERE id = ?1"
                            " AND state = 0",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, a->object_id);
    sqlx_bind_int64(st, 2, now);
    if ((rc = run(db, st, "cancel command", &n)) < 0)
        return rc;
    if (n)
        return 0;
    rc = exists(db, "SELECT 1 FROM commands WHERE id = ?1", NULL, a->object_id);
    return rc < 0 ? rc : rc ? GS_ESTATE : GS_ENOTFOUND;
}

static int event_ack(sqlx_t *db, const store_acct_t *a, int64_t now)
{
    if (!store_user_name_ok(a->user))
        return GS_EINVAL;
    sqlx_stmt_t *st = NULL;
    int n = 0;
    int rc = store__prepare(db,
                            "UPDATE pq_events SET acked_by = ?2, acked_ns = ?3 WHERE id = ?1"
                            " AND acked_ns IS NULL",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, a->object_id);
    sqlx_bind_text(st, 2, a->user, -1);
    sqlx_bind_int64(st, 3, a->when_ns ? a->when_ns : now);
    if ((rc = run(db, st, "acknowledge event", &n)) < 0)
        return rc;
    if (n)
        return 0;
    rc = exists(db, "SELECT 1 FROM pq_events WHERE id = ?1", NULL, a->object_id);
    return rc < 0 ? rc : rc ? GS_ESTATE : GS_ENOTFOUND;
}

int store__admin_change(sqlx_t *db, const store_acct_t *a, int64_t now)
{
    switch (a->op) {
    case STORE_ACCT_TERMINAL_ADD:
        return terminal_add(db, a, now);
    case STORE_ACCT_TERMINAL_UPDATE:
        return terminal_update(db, a);
    case STORE_ACCT_TERMINAL_REMOVE:
        return terminal_remove(db, a);
    case STORE_ACCT_TERMINAL_SECRET:
        return terminal_secret(db, a);
    case STORE_ACCT_COMMAND_CANCEL:
        return command_cancel(db, a, now);
    case STORE_ACCT_EVENT_ACK:
        return event_ack(db, a, now);
    default:
        return GS_EINVAL;
    }
}

int store_secret_seal(store_t *s, const char *terminal_id, const uint8_t secret[STORE_SECRET_LEN],
                      uint8_t sealed[STORE_SEALED_BYTES], uint8_t key_id[STORE_KEY_ID_LEN])
{
    if (!s->key)
        return GS_ESTATE; /* a store without the key (a reader) */
    int rc = store__key_refresh(s);
    if (rc < 0)
        return rc;
    store__secret_seal(s->key, terminal_id, secret, sealed);
    memcpy(key_id, s->key->id, STORE_KEY_ID_LEN);
    return 0;
}
