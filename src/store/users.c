/* Users, login sessions, API tokens and the audit trail (schema migration 6; contract in
 * store.h).
 *
 * Changes are "account changes" (store_acct_t): one function writes a change and its audit row
 * on a given connection inside the caller's transaction, so the admin CLI (synchronous
 * connection) and the server (writer thread, STORE_ITEM_ACCOUNT) share every rule. A change that
 * fails for a reason of its own (the name is taken, the user is gone, the last admin) is rolled
 * back to a savepoint and its audit row is still written with outcome "failed": the trail shows
 * attempts, not only successes. Foreign keys are off in this store (db.c), so removing a user
 * deletes its sessions and tokens explicitly.
 */
#include "store/internal.h"

#include "core/err.h"
#include "core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {NULL, "viewer", "operator", "admin"};

const char *store_role_name(int role)
{
    return role >= STORE_ROLE_VIEWER && role <= STORE_ROLE_ADMIN ? role_names[role] : "?";
}

int store_role_parse(const char *name)
{
    for (int r = STORE_ROLE_VIEWER; name && r <= STORE_ROLE_ADMIN; r++)
        if (strcmp(name, role_names[r]) == 0)
            return r;
    return GS_EINVAL;
}

int store_user_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > STORE_USER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

/* Copies column i (text, may be NULL) into out. */
static void col_text(sqlx_stmt_t *st, int i, char *out, size_t cap)
{
    const char *t = sqlx_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Runs a statement that returns no rows; resets it. 0 or GS_EDB (logged). */
static int step_done(sqlx_t *db, sqlx_stmt_t *st, const char *what)
{
    int rc = sqlx_step(st);
    sqlx_reset(st);
    return rc == SQLX_DONE ? 0 : store__db_fail(db, what);
}

/* ---- reads ---------------------------------------------------------------------------------- */

int store_user_get(store_t *s, const char *name, store_user_t *out)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        s->db, "SELECT name, role, pwhash, created_ns, updated_ns FROM users WHERE name = ?1", &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, name ? name : "", -1);
    int src = sqlx_step(st);
    if (src == SQLX_ROW) {
        memset(out, 0, sizeof *out);
        col_text(st, 0, out->name, sizeof out->name);
        char role[16];
        col_text(st, 1, role, sizeof role);
        out->role = store_role_parse(role);
        col_text(st, 2, out->pwhash, sizeof out->pwhash);
        out->created_ns = sqlx_column_int64(st, 3);
        out->updated_ns = sqlx_column_int64(st, 4);
        rc = out->role < 0 ? GS_EDB : 0;
    } else if (src == SQLX_DONE) {
        rc = GS_ENOTFOUND;
    } else {
        rc = store__db_fail(s->db, "get user");
    }
    sqlx_finalize(st);
    return rc;
}

int store_user_list(store_t *s, int (*cb)(void *ud, const store_user_t *u), void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        s->db, "SELECT name, role, created_ns, updated_ns FROM users ORDER BY name", &st);
    if (rc < 0)
        return rc;
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_user_t u;
        memset(&u, 0, sizeof u);
        char role[16];
        col_text(st, 0, u.name, sizeof u.name);
        col_text(st, 1, role, sizeof role);
        u.role = store_role_parse(role);
        u.created_ns = sqlx_column_int64(st, 2);
        u.updated_ns = sqlx_column_int64(st, 3);
        if ((rc = cb(ud, &u)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "list users");
out:
    sqlx_finalize(st);
    return rc;
}

int store_user_count(store_t *s, int role, int64_t *n)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        s->db, "SELECT COUNT(*) FROM users WHERE CAST(?1 AS TEXT) IS NULL OR role = ?1", &st);
    if (rc < 0)
        return rc;
    if (role > 0)
        sqlx_bind_text(st, 1, store_role_name(role), -1);
    if (sqlx_step(st) == SQLX_ROW) {
        *n = sqlx_column_int64(st, 0);
        rc = 0;
    } else {
        rc = store__db_fail(s->db, "count users");
    }
    sqlx_finalize(st);
    return rc;
}

#define TOKEN_COLS                                                                                 \
    "t.id, t.\"user\", t.name, u.role, t.created_ns, t.expires_ns, t.last_used_ns, t.revoked_ns"

static void row_token(sqlx_stmt_t *st, store_token_t *t)
{
    memset(t, 0, sizeof *t);
    char role[16];
    col_text(st, 0, t->id, sizeof t->id);
    col_text(st, 1, t->user, sizeof t->user);
    col_text(st, 2, t->name, sizeof t->name);
    col_text(st, 3, role, sizeof role);
    t->role = store_role_parse(role);
    t->created_ns = sqlx_column_int64(st, 4);
    t->expires_ns = sqlx_column_int64(st, 5);
    t->last_used_ns = sqlx_column_int64(st, 6);
    t->revoked_ns = sqlx_column_int64(st, 7);
}

int store_token_find(store_t *s, const uint8_t hash[STORE_HASH_LEN], store_token_t *out)
{
    sqlx_stmt_t *st = NULL;
    int rc =
        store__prepare(s->db,
                       "SELECT " TOKEN_COLS " FROM api_tokens t JOIN users u ON u.name = t.\"user\""
                       " WHERE t.hash = ?1",
                       &st);
    if (rc < 0)
        return rc;
    sqlx_bind_blob(st, 1, hash, STORE_HASH_LEN);
    int src = sqlx_step(st);
    if (src == SQLX_ROW) {
        row_token(st, out);
        rc = out->role < 0 ? GS_EDB : 0;
    } else {
        rc = src == SQLX_DONE ? GS_ENOTFOUND : store__db_fail(s->db, "find token");
    }
    sqlx_finalize(st);
    return rc;
}

int store_token_list(store_t *s, const char *user, int (*cb)(void *ud, const store_token_t *t),
                     void *ud)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        s->db,
        "SELECT " TOKEN_COLS " FROM api_tokens t JOIN users u ON u.name = t.\"user\""
        " WHERE CAST(?1 AS TEXT) IS NULL OR t.\"user\" = ?1 ORDER BY t.created_ns DESC, t.id",
        &st);
    if (rc < 0)
        return rc;
    if (user)
        sqlx_bind_text(st, 1, user, -1);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_token_t t;
        row_token(st, &t);
        if ((rc = cb(ud, &t)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "list tokens");
out:
    sqlx_finalize(st);
    return rc;
}

int store_login_find(store_t *s, const uint8_t hash[STORE_HASH_LEN], store_login_t *out)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(
        s->db,
        "SELECT l.\"user\", u.role, l.created_ns, l.last_used_ns, l.expires_ns"
        " FROM user_sessions l JOIN users u ON u.name = l.\"user\" WHERE l.hash = ?1",
        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_blob(st, 1, hash, STORE_HASH_LEN);
    int src = sqlx_step(st);
    if (src == SQLX_ROW) {
        memset(out, 0, sizeof *out);
        char role[16];
        col_text(st, 0, out->user, sizeof out->user);
        col_text(st, 1, role, sizeof role);
        out->role = store_role_parse(role);
        out->created_ns = sqlx_column_int64(st, 2);
        out->last_used_ns = sqlx_column_int64(st, 3);
        out->expires_ns = sqlx_column_int64(st, 4);
        rc = out->role < 0 ? GS_EDB : 0;
    } else {
        rc = src == SQLX_DONE ? GS_ENOTFOUND : store__db_fail(s->db, "find login session");
    }
    sqlx_finalize(st);
    return rc;
}

int store_audit_list(store_t *s, const store_audit_filter_t *f,
                     int (*cb)(void *ud, const store_audit_t *a), void *ud)
{
    sqlx_stmt_t *st = NULL;
    /* The action filter matches a whole name, or every name under a prefix ending in '.'. */
    int rc = store__prepare(
        s->db,
        "SELECT id, time_ns, \"user\", remote, action, target, outcome, detail FROM audit"
        " WHERE time_ns BETWEEN ?1 AND ?2 AND (CAST(?3 AS BIGINT) = 0 OR id < ?3)"
        " AND (CAST(?4 AS TEXT) IS NULL OR \"user\" = ?4)"
        " AND (CAST(?5 AS TEXT) IS NULL OR action = ?5 OR (substr(?5, length(?5), 1) = '.'"
        " AND substr(action, 1, length(?5))"
        " = ?5))"
        " AND (CAST(?6 AS TEXT) IS NULL OR outcome = ?6)"
        " ORDER BY id DESC LIMIT ?7",
        &st);
    if (rc < 0)
        return rc;
    sqlx_bind_int64(st, 1, f->from_ns);
    sqlx_bind_int64(st, 2, f->to_ns);
    sqlx_bind_int64(st, 3, f->before_id);
    if (f->user)
        sqlx_bind_text(st, 4, f->user, -1);
    if (f->action)
        sqlx_bind_text(st, 5, f->action, -1);
    if (f->outcome)
        sqlx_bind_text(st, 6, f->outcome, -1);
    sqlx_bind_int64(st, 7, f->limit < 1 ? 1 : f->limit > 10000 ? 10000 : f->limit);
    int src;
    while ((src = sqlx_step(st)) == SQLX_ROW) {
        store_audit_t a;
        memset(&a, 0, sizeof a);
        a.id = sqlx_column_int64(st, 0);
        a.time_ns = sqlx_column_int64(st, 1);
        col_text(st, 2, a.user, sizeof a.user);
        col_text(st, 3, a.remote, sizeof a.remote);
        col_text(st, 4, a.action, sizeof a.action);
        col_text(st, 5, a.target, sizeof a.target);
        col_text(st, 6, a.outcome, sizeof a.outcome);
        col_text(st, 7, a.detail, sizeof a.detail);
        if ((rc = cb(ud, &a)) != 0)
            goto out;
    }
    rc = src == SQLX_DONE ? 0 : store__db_fail(s->db, "list audit");
out:
    sqlx_finalize(st);
    return rc;
}

/* ---- changes -------------------------------------------------------------------------------- */

/* Runs one parameterised statement with the binds described by fmt: 't' text, 'b' hash blob,
 * 'i' int64. Sets *changes. 0 or GS_EDB. */
static int exec1(sqlx_t *db, const char *sql, const char *what, int *changes, const char *fmt, ...)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db, sql, &st);
    if (rc < 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 't')
            sqlx_bind_text(st, i + 1, va_arg(ap, const char *), -1);
        else if (fmt[i] == 'b')
            sqlx_bind_blob(st, i + 1, va_arg(ap, const uint8_t *), STORE_HASH_LEN);
        else
            sqlx_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    rc = step_done(db, st, what);
    if (changes)
        *changes = rc == 0 ? sqlx_changes(db) : 0;
    sqlx_finalize(st);
    return rc;
}

/* Number of admins other than `except`. */
static int other_admins(sqlx_t *db, const char *except, int64_t *n)
{
    sqlx_stmt_t *st = NULL;
    int rc =
        store__prepare(db, "SELECT COUNT(*) FROM users WHERE role = 'admin' AND name <> ?1", &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, except, -1);
    rc = sqlx_step(st) == SQLX_ROW ? 0 : store__db_fail(db, "count admins");
    if (rc == 0)
        *n = sqlx_column_int64(st, 0);
    sqlx_finalize(st);
    return rc;
}

/* The change itself. Returns 0, a code of its own (GS_EEXISTS, GS_ENOTFOUND, GS_ESTATE,
 * GS_EINVAL) or GS_EDB. */
static int change(sqlx_t *db, const store_acct_t *a, int64_t now)
{
    int n = 0, rc;
    int64_t others = 0;
    int64_t when = a->when_ns ? a->when_ns : now;
    switch (a->op) {
    case STORE_ACCT_NONE:
        return 0;
    case STORE_ACCT_USER_ADD:
        if (!store_user_name_ok(a->user) || a->role < STORE_ROLE_VIEWER ||
            a->role > STORE_ROLE_ADMIN || !a->pwhash[0])
            return GS_EINVAL;
        rc = exec1(db,
                   "INSERT INTO users(name, role, pwhash, created_ns, updated_ns)"
                   " VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(name) DO NOTHING",
                   "add user", &n, "ttti", a->user, store_role_name(a->role), a->pwhash, now);
        return rc < 0 ? rc : n ? 0 : GS_EEXISTS;
    case STORE_ACCT_USER_REMOVE:
    case STORE_ACCT_USER_ROLE:
        if (a->op == STORE_ACCT_USER_ROLE &&
            (a->role < STORE_ROLE_VIEWER || a->role > STORE_ROLE_ADMIN))
            return GS_EINVAL;
        if ((rc = other_admins(db, a->user, &others)) < 0)
            return rc;
        /* Nobody could administer the server any more (the CLI could still add one, but a
         * remote admin locking everyone out by mistake is worse than this refusal). */
        if (others == 0 && (a->op == STORE_ACCT_USER_REMOVE || a->role != STORE_ROLE_ADMIN)) {
            sqlx_stmt_t *st = NULL;
            if ((rc = store__prepare(db, "SELECT role FROM users WHERE name = ?1", &st)) < 0)
                return rc;
            sqlx_bind_text(st, 1, a->user, -1);
            int src = sqlx_step(st);
            int is_admin = src == SQLX_ROW && sqlx_column_text(st, 0) &&
                           strcmp((const char *)sqlx_column_text(st, 0), "admin") == 0;
            sqlx_finalize(st);
            if (src != SQLX_ROW && src != SQLX_DONE)
                return store__db_fail(db, "get role");
            if (src == SQLX_DONE)
                return GS_ENOTFOUND;
            if (is_admin)
                return GS_ESTATE;
        }
        if (a->op == STORE_ACCT_USER_ROLE) {
            rc = exec1(db, "UPDATE users SET role = ?2, updated_ns = ?3 WHERE name = ?1",
                       "set role", &n, "tti", a->user, store_role_name(a->role), now);
            return rc < 0 ? rc : n ? 0 : GS_ENOTFOUND;
        }
        if ((rc = exec1(db, "DELETE FROM users WHERE name = ?1", "remove user", &n, "t", a->user)) <
            0)
            return rc;
        if (!n)
            return GS_ENOTFOUND;
        if ((rc = exec1(db, "DELETE FROM user_sessions WHERE \"user\" = ?1", "remove user sessions",
                        NULL, "t", a->user)) < 0)
            return rc;
        return exec1(db, "DELETE FROM api_tokens WHERE \"user\" = ?1", "remove user tokens", NULL,
                     "t", a->user);
    case STORE_ACCT_USER_PASSWD:
        if (!a->pwhash[0])
            return GS_EINVAL;
        rc = exec1(db, "UPDATE users SET pwhash = ?2, updated_ns = ?3 WHERE name = ?1",
                   "set password", &n, "tti", a->user, a->pwhash, now);
        if (rc < 0)
            return rc;
        if (!n)
            return GS_ENOTFOUND;
        /* A new password ends the sessions opened with the old one (someone may have known
         * it); API tokens are separate credentials and stay. */
        return exec1(db, "DELETE FROM user_sessions WHERE \"user\" = ?1", "end sessions", NULL, "t",
                     a->user);
    case STORE_ACCT_TOKEN_ADD:
        rc = exec1(db,
                   "INSERT INTO api_tokens(id, hash, \"user\", name, created_ns, expires_ns)"
                   " SELECT CAST(?1 AS TEXT), CAST(?2 AS BLOB), CAST(?3 AS TEXT), CAST(?4 AS TEXT),"
                   " CAST(?5 AS BIGINT), CAST(?6 AS BIGINT)"
                   " WHERE EXISTS(SELECT 1 FROM users WHERE name = ?3)"
                   " ON CONFLICT DO NOTHING",
                   "add token", &n, "tbttii", a->token_id, a->hash, a->user, a->label, now,
                   a->expires_ns);
        if (rc < 0 || n)
            return rc;
        {
            sqlx_stmt_t *st = NULL;
            if ((rc = store__prepare(db, "SELECT 1 FROM users WHERE name = ?1", &st)) < 0)
                return rc;
            sqlx_bind_text(st, 1, a->user, -1);
            int src = sqlx_step(st);
            sqlx_finalize(st);
            return src == SQLX_ROW ? GS_EEXISTS : GS_ENOTFOUND;
        }
    case STORE_ACCT_TOKEN_REVOKE:
        rc = exec1(db, "UPDATE api_tokens SET revoked_ns = ?2 WHERE id = ?1 AND revoked_ns = 0",
                   "revoke token", &n, "ti", a->token_id, now);
        if (rc < 0 || n)
            return rc;
        rc = exec1(db, "UPDATE api_tokens SET id = id WHERE id = ?1", "find token", &n, "t",
                   a->token_id);
        return rc < 0 ? rc : n ? GS_ESTATE : GS_ENOTFOUND;
    case STORE_ACCT_LOGIN_ADD:
        rc = exec1(db,
                   "INSERT INTO user_sessions(hash, \"user\", created_ns, last_used_ns, expires_ns,"
                   " remote) SELECT CAST(?1 AS BLOB), CAST(?2 AS TEXT), CAST(?3 AS BIGINT),"
                   " CAST(?3 AS BIGINT), CAST(?4 AS BIGINT), CAST(?5 AS TEXT)"
                   " WHERE EXISTS(SELECT 1 FROM users WHERE name = ?2)",
                   "add login session", &n, "btiit", a->hash, a->user, now, a->expires_ns,
                   a->remote);
        return rc < 0 ? rc : n ? 0 : GS_ENOTFOUND;
    case STORE_ACCT_LOGIN_REMOVE:
        return exec1(db, "DELETE FROM user_sessions WHERE hash = ?1", "end login session", NULL,
                     "b", a->hash);
    case STORE_ACCT_LOGIN_TOUCH:
        return exec1(
            db, "UPDATE user_sessions SET last_used_ns = ?2 WHERE hash = ?1 AND last_used_ns < ?2",
            "touch login session", NULL, "bi", a->hash, when);
    case STORE_ACCT_TOKEN_TOUCH:
        return exec1(db,
                     "UPDATE api_tokens SET last_used_ns = ?2 WHERE id = ?1 AND "
                     "coalesce(last_used_ns, 0) < ?2",
                     "touch token", NULL, "ti", a->token_id, when);
    default:
        return store__admin_change(db, a, now); /* terminals, commands, events */
    }
}

static int append_audit(sqlx_t *db, const store_audit_t *au, int64_t now)
{
    return exec1(db,
                 "INSERT INTO audit(time_ns, \"user\", remote, action, target, outcome, detail)"
                 " VALUES(?1, NULLIF(?2, ''), NULLIF(?3, ''), ?4, NULLIF(?5, ''), ?6,"
                 " NULLIF(?7, ''))",
                 "append audit", NULL, "itttttt", au->time_ns ? au->time_ns : now, au->user,
                 au->remote, au->action, au->target, au->outcome[0] ? au->outcome : "ok",
                 au->detail);
}

/* Inside the caller's transaction: the change (rolled back to a savepoint when it fails for a
 * reason of its own) and its audit row. Returns GS_EDB (the caller rolls back) or 0 with the
 * change's own outcome in *result. */
int store__account_write(sqlx_t *db, store_acct_t *a, int64_t now, int *result)
{
    if (sqlx_exec(db, "SAVEPOINT acct") != 0)
        return store__db_fail(db, "savepoint");
    int rc = change(db, a, now);
    if (rc == GS_EDB)
        return rc;
    if (rc < 0 && sqlx_exec(db, "ROLLBACK TO acct") != 0)
        return store__db_fail(db, "rollback to savepoint");
    if (sqlx_exec(db, "RELEASE acct") != 0)
        return store__db_fail(db, "release savepoint");
    *result = rc;
    if (a->has_audit) {
        store_audit_t au = a->audit;
        if (rc < 0) {
            snprintf(au.outcome, sizeof au.outcome, "failed");
            size_t dn = strlen(au.detail); /* the reason, after what the caller said */
            snprintf(au.detail + dn, sizeof au.detail - dn, "%s%s", dn ? ": " : "", err_str(rc));
        }
        int arc = append_audit(db, &au, now);
        if (arc < 0)
            return arc;
    }
    return 0;
}

int store_account_apply(store_t *s, store_acct_t *a)
{
    if (sqlx_begin(s->db) != 0)
        return store__db_fail(s->db, "begin account change");
    int result = 0;
    int rc = store__account_write(s->db, a, time_utc_ns(), &result);
    if (rc == 0 && sqlx_commit(s->db) != 0)
        rc = store__db_fail(s->db, "commit account change");
    if (rc < 0) {
        if (!!sqlx_in_transaction(s->db))
            sqlx_rollback(s->db);
        return rc;
    }
    return result;
}
