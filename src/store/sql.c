/* sqlx: dispatch to the engine of a handle, argument checks, and the placeholder translation
 * PostgreSQL needs. The contract is in sql.h. */
#include "store/sql_impl.h"

#include "core/err.h"
#include "core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* PostgreSQL's limit on parameters of one statement (the protocol counts them in an int16). */
#define SQLX_MAX_PARAMS 32766

void sqlx__seterr(sqlx_t *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->err, sizeof db->err, fmt, ap);
    va_end(ap);
}

int sqlx_is_postgresql_url(const char *url)
{
    return url && (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0);
}

char *sqlx_pg_url_defaults(const char *url)
{
    static const char *const extra[] = {"connect_timeout=5", "tcp_user_timeout=10000",
                                        "keepalives_idle=30", "keepalives_interval=10",
                                        "keepalives_count=3"};
    size_t n = strlen(url) + 160, len;
    char *u = xmalloc(n);
    len = (size_t)snprintf(u, n, "%s", url);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(strcspn(extra[i], "=") + 1), extra[i]);
        const char *q = strchr(url, '?');
        if (q && strstr(q, name))
            continue; /* the URL's own setting wins */
        len += (size_t)snprintf(u + len, n - len, "%s%s", strchr(u, '?') ? "&" : "?", extra[i]);
    }
    return u;
}

int sqlx_open(const char *url, sqlx_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!url) {
        if (err && errlen)
            snprintf(err, errlen, "no database url");
        return GS_EINVAL;
    }
    if (sqlx_is_postgresql_url(url))
        return sqlx__pg_open(url, out, err, errlen);
    return sqlx__sqlite_open(url, out, err, errlen);
}

int sqlx_wrap_sqlite(void *h, sqlx_t **out)
{
    *out = NULL;
    return h ? sqlx__sqlite_wrap(h, out) : GS_EINVAL;
}

void sqlx_close(sqlx_t *db)
{
    if (db)
        db->ops->close(db);
}

sqlx_backend_t sqlx_backend(const sqlx_t *db)
{
    return db->backend;
}

int sqlx_errcode(const sqlx_t *db)
{
    return db ? db->last_rc : GS_EINVAL;
}

int sqlx_in_transaction(sqlx_t *db)
{
    return db ? db->ops->in_transaction(db) : 0;
}

/* Keeps the class of the last failure (sqlx_errcode). */
static int note(sqlx_t *db, int rc)
{
    db->last_rc = rc < 0 ? rc : 0;
    return rc;
}

const char *sqlx_errmsg(const sqlx_t *db)
{
    return db ? db->err : "no database";
}

int sqlx_set_busy_timeout(sqlx_t *db, int ms)
{
    return db->ops->set_busy_timeout(db, ms < 0 ? 0 : ms);
}

int sqlx_exec(sqlx_t *db, const char *sql)
{
    db->err[0] = '\0';
    return note(db, db->ops->exec(db, sql));
}

int sqlx_prepare(sqlx_t *db, const char *sql, sqlx_stmt_t **out)
{
    *out = NULL;
    db->err[0] = '\0';
    return note(db, db->ops->prepare(db, sql, out));
}

static int bind(sqlx_stmt_t *st, int i, const sqlx_value_t *v)
{
    if (!st || i < 1 || i > st->nparams) {
        if (st)
            sqlx__seterr(st->db, "parameter %d out of range (1..%d)", i, st->nparams);
        return GS_EINVAL;
    }
    return st->db->ops->bind(st, i, v);
}

int sqlx_bind_int64(sqlx_stmt_t *st, int i, int64_t v)
{
    sqlx_value_t x = {.type = SQLX_INT, .i = v};
    return bind(st, i, &x);
}

int sqlx_bind_double(sqlx_stmt_t *st, int i, double v)
{
    sqlx_value_t x = {.type = SQLX_FLOAT, .d = v};
    return bind(st, i, &x);
}

int sqlx_bind_text(sqlx_stmt_t *st, int i, const char *s, ptrdiff_t len)
{
    if (!s)
        return sqlx_bind_null(st, i);
    sqlx_value_t x = {.type = SQLX_TEXT, .p = s, .n = len < 0 ? strlen(s) : (size_t)len};
    return bind(st, i, &x);
}

int sqlx_bind_blob(sqlx_stmt_t *st, int i, const void *p, size_t n)
{
    sqlx_value_t x = {.type = SQLX_BLOB, .p = n ? p : "", .n = n};
    return bind(st, i, &x);
}

int sqlx_bind_null(sqlx_stmt_t *st, int i)
{
    sqlx_value_t x = {.type = SQLX_NULL};
    return bind(st, i, &x);
}

int sqlx_bind_parameter_count(sqlx_stmt_t *st)
{
    return st->nparams;
}

int sqlx_clear_bindings(sqlx_stmt_t *st)
{
    return st->db->ops->clear_bindings(st);
}

int sqlx_step(sqlx_stmt_t *st)
{
    st->db->err[0] = '\0';
    return note(st->db, st->db->ops->step(st));
}

int sqlx_reset(sqlx_stmt_t *st)
{
    return st->db->ops->reset(st);
}

void sqlx_finalize(sqlx_stmt_t *st)
{
    if (st)
        st->db->ops->finalize(st);
}

int sqlx_column_count(sqlx_stmt_t *st)
{
    return st->db->ops->column_count(st);
}

static int col_ok(sqlx_stmt_t *st, int col)
{
    return col >= 0 && col < st->db->ops->column_count(st);
}

int sqlx_column_type(sqlx_stmt_t *st, int col)
{
    return col_ok(st, col) ? st->db->ops->column_type(st, col) : SQLX_NULL;
}

int sqlx_column_is_null(sqlx_stmt_t *st, int col)
{
    return sqlx_column_type(st, col) == SQLX_NULL;
}

int64_t sqlx_column_int64(sqlx_stmt_t *st, int col)
{
    return col_ok(st, col) ? st->db->ops->column_int64(st, col) : 0;
}

double sqlx_column_double(sqlx_stmt_t *st, int col)
{
    return col_ok(st, col) ? st->db->ops->column_double(st, col) : 0.0;
}

const char *sqlx_column_text(sqlx_stmt_t *st, int col)
{
    return col_ok(st, col) ? st->db->ops->column_text(st, col) : NULL;
}

const void *sqlx_column_blob(sqlx_stmt_t *st, int col)
{
    return col_ok(st, col) ? st->db->ops->column_blob(st, col) : NULL;
}

size_t sqlx_column_bytes(sqlx_stmt_t *st, int col)
{
    return col_ok(st, col) ? st->db->ops->column_bytes(st, col) : 0;
}

int64_t sqlx_changes(sqlx_t *db)
{
    return db->ops->changes(db);
}

int sqlx_begin(sqlx_t *db)
{
    db->err[0] = '\0';
    return note(db, db->ops->begin(db));
}

int sqlx_commit(sqlx_t *db)
{
    db->err[0] = '\0';
    return note(db, db->ops->commit(db));
}

int sqlx_rollback(sqlx_t *db)
{
    return db->ops->rollback(db);
}

char *sqlx_rows_sql(const char *head, int rows, int cols, const char *sep, const char *tail)
{
    size_t cap =
        strlen(head) + strlen(tail) + (size_t)rows * ((size_t)cols * 3 + strlen(sep) + 8) + 1;
    char *sql = xmalloc(cap);
    size_t len = (size_t)snprintf(sql, cap, "%s", head);
    for (int r = 0; r < rows; r++) {
        len += (size_t)snprintf(sql + len, cap - len, "%s%s", r ? sep : "", cols > 1 ? "(" : "");
        for (int c = 0; c < cols; c++)
            len += (size_t)snprintf(sql + len, cap - len, "%s?", c ? ", " : "");
        if (cols > 1)
            len += (size_t)snprintf(sql + len, cap - len, ")");
    }
    snprintf(sql + len, cap - len, "%s", tail);
    return sql;
}

int sqlx_query_int64(sqlx_t *db, const char *sql, const char *param, int64_t *out)
{
    sqlx_stmt_t *st = NULL;
    *out = 0;
    int rc = sqlx_prepare(db, sql, &st);
    if (rc < 0)
        return rc;
    if (param && (rc = sqlx_bind_text(st, 1, param, -1)) < 0)
        goto done;
    rc = sqlx_step(st);
    if (rc == 1)
        *out = sqlx_column_int64(st, 0);
done:
    sqlx_finalize(st);
    return rc;
}

/* ---- ? placeholders to $N ---- */

/* Appends n bytes to out; GS_ERANGE when full (one byte kept for the NUL). */
static int put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > cap)
        return GS_ERANGE;
    memcpy(out + *len, s, n);
    *len += n;
    return 0;
}

int sqlx__translate_placeholders(const char *sql, char *out, size_t cap)
{
    size_t len = 0;
    int maxidx = 0, rc;
    const char *p = sql;
    while (*p) {
        const char *start = p;
        if (*p == '\'' || *p == '"') {
            /* a literal or quoted identifier; a doubled quote is part of it */
            char q = *p++;
            while (*p && !(*p == q && p[1] != q))
                p += (*p == q) ? 2 : 1;
            if (*p)
                p++;
        } else if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else if (*p == '$' && (p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            /* $tag$ ... $tag$ (a PostgreSQL function body); $1 stays as it is */
            const char *t = p + 1;
            while (isalnum((unsigned char)*t) || *t == '_')
                t++;
            if (*t == '$' && !isdigit((unsigned char)p[1])) {
                size_t taglen = (size_t)(t - p) + 1;
                const char *e = t + 1;
                while (*e && strncmp(e, p, taglen) != 0)
                    e++;
                p = *e ? e + taglen : e;
            } else {
                p++;
            }
        } else if (*p == '?') {
            int idx;
            p++;
            if (isdigit((unsigned char)*p)) {
                long v = 0;
                while (isdigit((unsigned char)*p) && v <= SQLX_MAX_PARAMS)
                    v = v * 10 + (*p++ - '0');
                if (v < 1 || v > SQLX_MAX_PARAMS)
                    return GS_EINVAL;
                idx = (int)v;
            } else {
                idx = maxidx + 1;
                if (idx > SQLX_MAX_PARAMS)
                    return GS_EINVAL;
            }
            if (idx > maxidx)
                maxidx = idx;
            char num[16];
            int n = snprintf(num, sizeof num, "$%d", idx);
            if ((rc = put(out, cap, &len, num, (size_t)n)) < 0)
                return rc;
            continue;
        } else {
            p++;
        }
        if ((rc = put(out, cap, &len, start, (size_t)(p - start))) < 0)
            return rc;
    }
    if (cap == 0)
        return GS_ERANGE;
    out[len] = '\0';
    return maxidx;
}
