/* sqlx over PostgreSQL (libpq). Contract in sql.h; design in docs/decisions/0007.
 *
 * Statements are prepared once per connection as named server-side statements ("gs_sN") and run
 * with PQexecPrepared. Parameters: numbers and text as text (the server infers the type from the
 * context: a BIGINT column, a comparison), blobs as binary (raw bytes: no escaping, NUL-safe; a
 * blob must therefore meet a bytea context, a column or a ::bytea cast). Results are requested
 * in binary and decoded by column type, so a bytea arrives as its bytes; numeric (sum, avg) is
 * decoded too: an integral value that fits is an SQLX_INT, anything else a double.
 *
 * A statement's whole result is fetched at its first step (PQexecPrepared); the store's reads
 * are bounded by LIMITs or by time ranges. Streaming very large results (exports) would use
 * single-row mode, not done here.
 */
#include "store/sql_impl.h"

#include "core/err.h"
#include "core/util.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Type OIDs of pg_type (stable since PostgreSQL 7; src/include/catalog/pg_type.dat). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_CHAR = 18,
    OID_NAME = 19,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_JSON = 114,
    OID_JSONB = 3802,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_UNKNOWN = 705,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
    OID_NUMERIC = 1700,
};

typedef struct {
    struct sqlx base;
    PGconn *c;
    unsigned next_id; /* names of prepared statements */
    int64_t changes;  /* rows changed by the last INSERT/UPDATE/DELETE */
    char **dealloc;   /* prepared statements to DEALLOCATE when the transaction allows */
    size_t ndealloc, capdealloc;
    /* sqlx_set_auto_reconnect: a lost connection is opened again by the next exec, prepare or
     * begin (at most once a second, backing off to 10 s), with the session's settings */
    int auto_reconnect;
    int lock_ms;            /* the lock_timeout in force */
    char *sets[8];          /* SET statements run outside a transaction, replayed */
    int64_t next_try_ns;    /* monotonic: no reconnect attempt before */
    int64_t backoff_ns;
} pg_t;

typedef struct {
    struct sqlx_stmt base;
    char name[24];
    char **vals; /* per parameter: a malloc'ed copy, NULL = SQL NULL */
    int *lens;
    int *fmts; /* 0 text, 1 binary */
    PGresult *res;
    int row, nrows, ncols;
    int done;
    char (*conv)[40]; /* per column: the text of a number (column_text of an int/float) */
} pgst_t;

static const sqlx_ops_t pg_ops;

#define PDB(db) ((pg_t *)(db))
#define PST(st) ((pgst_t *)(st))

/* Copies libpq's message without its trailing newline. */
static void set_msg(sqlx_t *db, const char *msg)
{
    sqlx__seterr(db, "%s", msg && *msg ? msg : "unknown PostgreSQL error");
    size_t n = strlen(db->err);
    while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = '\0';
}

/* Maps a failed result (or a failed call: res NULL) to the seam's error classes. SQLSTATEs from
 * PostgreSQL's Appendix A "Error Codes". */
static int fail(sqlx_t *db, const PGresult *res)
{
    PGconn *c = PDB(db)->c;
    set_msg(db, res ? PQresultErrorMessage(res) : PQerrorMessage(c));
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state) {
        if (strcmp(state, "23505") == 0) /* unique_violation */
            return GS_EEXISTS;
        if (strcmp(state, "40001") == 0 ||
            strcmp(state, "40P01") == 0 || /* serialization, deadlock */
            strcmp(state, "55P03") == 0)   /* lock_not_available */
            return GS_EBUSY;
        if (strcmp(state, "53100") == 0) /* disk_full */
            return -ENOSPC;
        if (strncmp(state, "08", 2) == 0 ||                               /* connection exception */
            strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || /* admin/crash shutdown */
            strcmp(state, "57P03") == 0)                                  /* cannot connect now */
            return GS_ECLOSED;
    }
    if (PQstatus(c) == CONNECTION_BAD)
        return GS_ECLOSED;
    return GS_EDB;
}

/* Runs a statement without parameters; 0 or the error class. */
static int run(sqlx_t *db, const char *sql)
{
    PGresult *r = PQexec(PDB(db)->c, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = fail(db, r);
    PQclear(r);
    return rc;
}

/* DEALLOCATEs statements finalized while the transaction was aborted (server-side prepared
 * statements are not transactional, DEALLOCATE only fails in an aborted transaction). */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int run(sqlx_t *db, const char *sql);
static void quiet_notice(void *arg, const char *message);

/* A lost connection, with auto_reconnect: PQreset (same parameters), then the session's
 * settings again. Statements prepared before are gone with the old session (their next step
 * fails); the store prepares its synchronous statements per call. 0 when usable. */
static int revive(pg_t *p)
{
    if (PQstatus(p->c) != CONNECTION_BAD || !p->auto_reconnect)
        return 0;
    int64_t now = mono_ns();
    if (now < p->next_try_ns) {
        sqlx__seterr(&p->base, "no connection to PostgreSQL (next attempt in %lld ms)",
                     (long long)((p->next_try_ns - now) / 1000000));
        return GS_ECLOSED;
    }
    PQreset(p->c);
    if (PQstatus(p->c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(p->c);
        sqlx__seterr(&p->base, "no connection to PostgreSQL: %.*s", (int)strcspn(m, "\n"), m);
        p->backoff_ns = p->backoff_ns ? p->backoff_ns * 2 : 1000000000LL;
        if (p->backoff_ns > 10000000000LL)
            p->backoff_ns = 10000000000LL;
        p->next_try_ns = now + p->backoff_ns;
        return GS_ECLOSED;
    }
    p->backoff_ns = 0;
    p->next_try_ns = 0;
    while (p->ndealloc > 0)
        free(p->dealloc[--p->ndealloc]); /* gone with the old session */
    PQsetNoticeProcessor(p->c, quiet_notice, NULL);
    char sql[64];
    snprintf(sql, sizeof sql, "SET lock_timeout = %d; SET TIME ZONE 'UTC'", p->lock_ms);
    int rc = run(&p->base, sql);
    for (int i = 0; rc == 0 && i < 8 && p->sets[i]; i++)
        rc = run(&p->base, p->sets[i]);
    return rc;
}

/* Keeps a SET statement run outside a transaction, for revive (the latest of each name). */
static void remember_set(pg_t *p, const char *sql)
{
    size_t name = strcspn(sql + 4, " =");
    for (int i = 0; i < 8; i++) {
        if (!p->sets[i] || strncmp(p->sets[i] + 4, sql + 4, name + 1) == 0) {
            free(p->sets[i]);
            p->sets[i] = xstrdup(sql);
            return;
        }
    }
}

void sqlx_set_auto_reconnect(sqlx_t *db, int on)
{
    if (db && db->backend == SQLX_POSTGRESQL)
        PDB(db)->auto_reconnect = on != 0;
}

static void flush_dealloc(pg_t *p)
{
    PGTransactionStatusType ts = PQtransactionStatus(p->c);
    if (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS)
        return;
    while (p->ndealloc > 0) {
        char sql[48];
        char *name = p->dealloc[--p->ndealloc];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
        PQclear(PQexec(p->c, sql));
        free(name);
    }
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like: not errors */
}

int sqlx__pg_open(const char *url, sqlx_t **out, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(url);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        if (err && errlen) {
            const char *m = c ? PQerrorMessage(c) : "out of memory";
            snprintf(err, errlen, "cannot connect to PostgreSQL: %.*s", (int)strcspn(m, "\n"), m);
        }
        PQfinish(c);
        return GS_ECLOSED;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    pg_t *p = xcalloc(1, sizeof *p);
    p->base.backend = SQLX_POSTGRESQL;
    p->base.ops = &pg_ops;
    p->c = c;
    p->lock_ms = 5000;
    /* The same default wait for a lock as the SQLite side's busy timeout; UTC so that any
     * timestamp function a statement might use does not depend on the server's zone. */
    int rc = run(&p->base, "SET lock_timeout = 5000; SET TIME ZONE 'UTC'");
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot set up the PostgreSQL session: %s", p->base.err);
        PQfinish(c);
        free(p);
        return rc;
    }
    *out = &p->base;
    return 0;
}

static void pg_close(sqlx_t *db)
{
    pg_t *p = PDB(db);
    for (size_t i = 0; i < p->ndealloc; i++)
        free(p->dealloc[i]);
    free(p->dealloc);
    for (int i = 0; i < 8; i++)
        free(p->sets[i]);
    PQfinish(p->c);
    free(p);
}

static int pg_set_busy_timeout(sqlx_t *db, int ms)
{
    char sql[48];
    PDB(db)->lock_ms = ms > 0 ? ms : 1;
    /* lock_timeout = 0 would mean "wait forever": the seam's 0 means "fail at once" */
    snprintf(sql, sizeof sql, "SET lock_timeout = %d", ms > 0 ? ms : 1);
    return run(db, sql);
}

/* Remembers what an INSERT/UPDATE/DELETE changed, as sqlite3_changes does (other statements
 * leave it as it was). */
static void note_changes(pg_t *p, const PGresult *r)
{
    const char *tag = PQcmdStatus((PGresult *)r);
    if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
        strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0)
        p->changes = strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

static int pg_exec(sqlx_t *db, const char *sql)
{
    int rc0 = revive(PDB(db));
    if (rc0 < 0)
        return rc0;
    if (strncmp(sql, "SET ", 4) == 0 && !strchr(sql, ';') &&
        PQtransactionStatus(PDB(db)->c) == PQTRANS_IDLE)
        remember_set(PDB(db), sql);
    flush_dealloc(PDB(db));
    PGresult *r = PQexec(PDB(db)->c, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        note_changes(PDB(db), r);
    else
        rc = fail(db, r);
    PQclear(r);
    return rc;
}

static int pg_prepare(sqlx_t *db, const char *sql, sqlx_stmt_t **out)
{
    pg_t *p = PDB(db);
    int rc0 = revive(p);
    if (rc0 < 0)
        return rc0;
    flush_dealloc(p);
    size_t cap = strlen(sql) * 6 + 1; /* "?" -> "$32766" at worst */
    char *text = xmalloc(cap);
    int n = sqlx__translate_placeholders(sql, text, cap);
    if (n < 0) {
        sqlx__seterr(db, "bad placeholder in: %.200s", sql);
        free(text);
        return n;
    }
    /* CAST(x AS BLOB), SQLite's blob type, is bytea here (sql.h). There is room: cap is six times
     * the statement. */
    for (char *b = strstr(text, " AS BLOB)"); b; b = strstr(b, " AS BLOB)")) {
        memmove(b + 9, b + 8, strlen(b + 8) + 1);
        memcpy(b, " AS BYTEA)", 10);
        b += 10;
    }
    pgst_t *st = xcalloc(1, sizeof *st);
    st->base.db = db;
    st->base.nparams = n;
    snprintf(st->name, sizeof st->name, "gs_s%u", ++p->next_id);
    PGresult *r = PQprepare(p->c, st->name, text, 0, NULL);
    free(text);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        int rc = fail(db, r);
        PQclear(r);
        free(st);
        return rc;
    }
    PQclear(r);
    if (n > 0) {
        st->vals = xcalloc((size_t)n, sizeof *st->vals);
        st->lens = xcalloc((size_t)n, sizeof *st->lens);
        st->fmts = xcalloc((size_t)n, sizeof *st->fmts);
    }
    *out = &st->base;
    return 0;
}

static void drop_result(pgst_t *st)
{
    PQclear(st->res);
    st->res = NULL;
    free(st->conv);
    st->conv = NULL;
    st->row = st->nrows = st->ncols = 0;
    st->done = 0;
}

static int pg_bind(sqlx_stmt_t *base, int i, const sqlx_value_t *v)
{
    pgst_t *st = PST(base);
    char num[40];
    const char *src = NULL;
    size_t n = 0;
    int fmt = 0;
    switch (v->type) {
    case SQLX_INT:
        n = (size_t)snprintf(num, sizeof num, "%" PRId64, v->i);
        src = num;
        break;
    case SQLX_FLOAT:
        if (isnan(v->d))
            n = (size_t)snprintf(num, sizeof num, "NaN");
        else if (isinf(v->d))
            n = (size_t)snprintf(num, sizeof num, "%sInfinity", v->d < 0 ? "-" : "");
        else
            n = (size_t)snprintf(num, sizeof num, "%.17g", v->d); /* exact round trip */
        src = num;
        break;
    case SQLX_TEXT:
        if (memchr(v->p, '\0', v->n)) {
            sqlx__seterr(base->db, "text parameter %d contains a NUL byte", i);
            return GS_EINVAL; /* PostgreSQL text cannot hold one */
        }
        src = v->p;
        n = v->n;
        break;
    case SQLX_BLOB:
        src = v->p;
        n = v->n;
        fmt = 1;
        break;
    default:
        break;
    }
    drop_result(st); /* binding resets a stepped statement, as on SQLite */
    if (n > INT32_MAX) {
        sqlx__seterr(base->db, "parameter %d too large (%zu bytes)", i, n);
        return GS_ERANGE;
    }
    free(st->vals[i - 1]);
    st->vals[i - 1] = NULL;
    if (src) {
        char *copy = xmalloc(n + 1); /* text parameters are read up to a NUL */
        memcpy(copy, src, n);
        copy[n] = '\0';
        st->vals[i - 1] = copy;
    }
    st->lens[i - 1] = (int)n;
    st->fmts[i - 1] = fmt;
    return 0;
}

static int pg_clear_bindings(sqlx_stmt_t *base)
{
    pgst_t *st = PST(base);
    for (int i = 0; i < base->nparams; i++) {
        free(st->vals[i]);
        st->vals[i] = NULL;
        st->lens[i] = 0;
        st->fmts[i] = 0;
    }
    return 0;
}

static int pg_step(sqlx_stmt_t *base)
{
    pgst_t *st = PST(base);
    pg_t *p = PDB(base->db);
    if (st->done)
        drop_result(st); /* run again, as SQLite does after SQLITE_DONE */
    if (st->res) {
        if (++st->row < st->nrows)
            return 1;
        st->done = 1;
        return 0;
    }
    PGresult *r = PQexecPrepared(p->c, st->name, base->nparams, (const char *const *)st->vals,
                                 st->lens, st->fmts, 1);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK) {
        note_changes(p, r);
        PQclear(r);
        st->done = 1;
        return 0;
    }
    if (s != PGRES_TUPLES_OK) {
        int rc = fail(base->db, r);
        PQclear(r);
        return rc;
    }
    note_changes(p, r); /* INSERT ... RETURNING */
    st->res = r;
    st->nrows = PQntuples(r);
    st->ncols = PQnfields(r);
    st->row = 0;
    if (st->ncols > 0)
        st->conv = xcalloc((size_t)st->ncols, sizeof *st->conv);
    if (st->nrows > 0)
        return 1;
    st->done = 1;
    return 0;
}

static int pg_reset(sqlx_stmt_t *base)
{
    drop_result(PST(base));
    return 0;
}

static void pg_finalize(sqlx_stmt_t *base)
{
    pgst_t *st = PST(base);
    pg_t *p = PDB(base->db);
    drop_result(st);
    pg_clear_bindings(base);
    free(st->vals);
    free(st->lens);
    free(st->fmts);
    if (PQstatus(p->c) == CONNECTION_OK) {
        if (p->ndealloc == p->capdealloc) {
            p->capdealloc = p->capdealloc ? 2 * p->capdealloc : 8;
            char **a = realloc(p->dealloc, p->capdealloc * sizeof *a);
            if (!a)
                abort(); /* allocation failure aborts (style.md) */
            p->dealloc = a;
        }
        p->dealloc[p->ndealloc++] = xstrdup(st->name);
        flush_dealloc(p);
    }
    free(st);
}

static int pg_column_count(sqlx_stmt_t *base)
{
    pgst_t *st = PST(base);
    return st->res && !st->done ? st->ncols : 0;
}

static uint64_t be(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | b[i];
    return v;
}

/* A numeric (what sum(bigint) and avg return) from its binary form: int16 ndigits, int16
 * weight, uint16 sign, int16 dscale, then ndigits base-10000 digits, the first weighing
 * 10000^weight (PostgreSQL src/backend/utils/adt/numeric.c, numeric_send). Sets *is_int when
 * the value is integral and fits in int64 (then *i holds it). Returns 0, or -1 if malformed or
 * NaN / infinite. */
static int numeric_value(pgst_t *st, int col, double *d, int64_t *i, int *is_int)
{
    const unsigned char *b = (const unsigned char *)PQgetvalue(st->res, st->row, col);
    int len = PQgetlength(st->res, st->row, col);
    if (len < 8)
        return -1;
    int ndigits = (int16_t)be(b, 2), weight = (int16_t)be(b + 2, 2);
    unsigned sign = (unsigned)be(b + 4, 2);
    if (ndigits < 0 || len != 8 + 2 * ndigits || (sign != 0 && sign != 0x4000))
        return -1;
    double v = 0.0;
    int integral = 1, fits = 1;
    uint64_t u = 0;
    for (int k = 0; k < ndigits; k++) {
        unsigned dig = (unsigned)be(b + 8 + 2 * k, 2);
        if (dig > 9999)
            return -1;
        int w = weight - k;
        v += (double)dig * pow(10000.0, w);
        if (w < 0 && dig != 0)
            integral = 0;
    }
    /* exact integer path: digits at weights weight..0 */
    if (integral && weight >= 0) {
        for (int w = weight; w >= 0; w--) {
            int k = weight - w;
            unsigned dig = k < ndigits ? (unsigned)be(b + 8 + 2 * k, 2) : 0;
            if (u > (UINT64_MAX - dig) / 10000) {
                fits = 0;
                break;
            }
            u = u * 10000 + dig;
        }
    }
    *d = sign ? -v : v;
    *is_int = integral && fits && (sign ? u <= (uint64_t)INT64_MAX + 1 : u <= (uint64_t)INT64_MAX);
    if (*is_int)
        *i = sign ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

/* Bytes before a text value: jsonb's binary form is a version byte (1) and the JSON text. */
static int text_skip(pgst_t *st, int col)
{
    return PQftype(st->res, col) == OID_JSONB && PQgetlength(st->res, st->row, col) >= 1 &&
                   PQgetvalue(st->res, st->row, col)[0] == 1
               ? 1
               : 0;
}

static int pg_column_type(sqlx_stmt_t *base, int col)
{
    pgst_t *st = PST(base);
    if (PQgetisnull(st->res, st->row, col))
        return SQLX_NULL;
    switch (PQftype(st->res, col)) {
    case OID_NUMERIC: {
        double d;
        int64_t i;
        int is_int;
        if (numeric_value(st, col, &d, &i, &is_int) < 0)
            return SQLX_BLOB;
        return is_int ? SQLX_INT : SQLX_FLOAT;
    }
    case OID_BOOL:
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return SQLX_INT;
    case OID_FLOAT4:
    case OID_FLOAT8:
        return SQLX_FLOAT;
    case OID_TEXT:
    case OID_VARCHAR:
    case OID_BPCHAR:
    case OID_NAME:
    case OID_CHAR:
    case OID_JSON:
    case OID_JSONB:
    case OID_UNKNOWN:
        return SQLX_TEXT;
    default:
        return SQLX_BLOB;
    }
}

/* The value of an integer column, decoded from its binary form (network byte order). */
static int64_t int_value(pgst_t *st, int col)
{
    const unsigned char *b = (const unsigned char *)PQgetvalue(st->res, st->row, col);
    int len = PQgetlength(st->res, st->row, col);
    switch (PQftype(st->res, col)) {
    case OID_NUMERIC: {
        double d;
        int64_t i = 0;
        int is_int = 0;
        numeric_value(st, col, &d, &i, &is_int);
        return is_int ? i : 0;
    }
    case OID_BOOL:
        return len == 1 && b[0] != 0;
    case OID_INT2:
        return len == 2 ? (int16_t)be(b, 2) : 0;
    case OID_INT4:
        return len == 4 ? (int32_t)be(b, 4) : 0;
    case OID_OID:
        return len == 4 ? (int64_t)be(b, 4) : 0;
    case OID_INT8:
        return len == 8 ? (int64_t)be(b, 8) : 0;
    default:
        return 0;
    }
}

static double float_value(pgst_t *st, int col)
{
    const unsigned char *b = (const unsigned char *)PQgetvalue(st->res, st->row, col);
    int len = PQgetlength(st->res, st->row, col);
    if (PQftype(st->res, col) == OID_NUMERIC) {
        double d = 0.0;
        int64_t i;
        int is_int;
        numeric_value(st, col, &d, &i, &is_int);
        return d;
    }
    if (PQftype(st->res, col) == OID_FLOAT4 && len == 4) {
        uint32_t u = (uint32_t)be(b, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    if (len == 8) {
        uint64_t u = be(b, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    return 0.0;
}

static int64_t pg_column_int64(sqlx_stmt_t *base, int col)
{
    pgst_t *st = PST(base);
    switch (pg_column_type(base, col)) {
    case SQLX_INT:
        return int_value(st, col);
    case SQLX_FLOAT: {
        double d = float_value(st, col);
        /* SQLite clamps out-of-range floats to the int64 range */
        if (!(d > -9223372036854775808.0))
            return isnan(d) ? 0 : INT64_MIN;
        if (d >= 9223372036854775808.0)
            return INT64_MAX;
        return (int64_t)d;
    }
    case SQLX_TEXT:
        return strtoll(PQgetvalue(st->res, st->row, col) + text_skip(st, col), NULL, 10);
    default:
        return 0;
    }
}

static double pg_column_double(sqlx_stmt_t *base, int col)
{
    pgst_t *st = PST(base);
    switch (pg_column_type(base, col)) {
    case SQLX_INT:
        return (double)int_value(st, col);
    case SQLX_FLOAT:
        return float_value(st, col);
    case SQLX_TEXT:
        return strtod(PQgetvalue(st->res, st->row, col) + text_skip(st, col), NULL);
    default:
        return 0.0;
    }
}

static const char *pg_column_text(sqlx_stmt_t *base, int col)
{
    pgst_t *st = PST(base);
    switch (pg_column_type(base, col)) {
    case SQLX_NULL:
        return NULL;
    case SQLX_INT:
        snprintf(st->conv[col], sizeof st->conv[col], "%" PRId64, int_value(st, col));
        return st->conv[col];
    case SQLX_FLOAT:
        snprintf(st->conv[col], sizeof st->conv[col], "%.17g", float_value(st, col));
        return st->conv[col];
    default:
        /* libpq adds a NUL after every value */
        return PQgetvalue(st->res, st->row, col) + text_skip(st, col);
    }
}

static const void *pg_column_blob(sqlx_stmt_t *base, int col)
{
    pgst_t *st = PST(base);
    int t = pg_column_type(base, col);
    if (t == SQLX_NULL)
        return NULL;
    if (t == SQLX_INT || t == SQLX_FLOAT)
        return pg_column_text(base, col);
    int skip = text_skip(st, col);
    return PQgetlength(st->res, st->row, col) > skip ? PQgetvalue(st->res, st->row, col) + skip
                                                     : NULL;
}

static size_t pg_column_bytes(sqlx_stmt_t *base, int col)
{
    pgst_t *st = PST(base);
    int t = pg_column_type(base, col);
    if (t == SQLX_NULL)
        return 0;
    if (t == SQLX_INT || t == SQLX_FLOAT)
        return strlen(pg_column_text(base, col));
    return (size_t)(PQgetlength(st->res, st->row, col) - text_skip(st, col));
}

static int64_t pg_changes(sqlx_t *db)
{
    return PDB(db)->changes;
}

static int pg_begin(sqlx_t *db)
{
    int rc0 = revive(PDB(db));
    if (rc0 < 0)
        return rc0;
    flush_dealloc(PDB(db));
    return run(db, "BEGIN");
}

static int pg_commit(sqlx_t *db)
{
    PGconn *c = PDB(db)->c;
    if (PQtransactionStatus(c) == PQTRANS_INERROR) {
        run(db, "ROLLBACK");
        sqlx__seterr(db, "transaction aborted by an earlier error: rolled back, not committed");
        return GS_EDB;
    }
    PGresult *r = PQexec(c, "COMMIT");
    int rc = 0;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = fail(db, r); /* GS_ECLOSED here: the outcome is unknown (docs/decisions/0007) */
    else if (strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        sqlx__seterr(db, "transaction aborted by an earlier error: rolled back, not committed");
        rc = GS_EDB;
    }
    PQclear(r);
    return rc;
}

static int pg_rollback(sqlx_t *db)
{
    PGconn *c = PDB(db)->c;
    if (PQstatus(c) != CONNECTION_OK)
        return GS_ECLOSED;
    if (PQtransactionStatus(c) == PQTRANS_IDLE)
        return 0;
    return run(db, "ROLLBACK");
}

static int pg_in_transaction(sqlx_t *db)
{
    PGTransactionStatusType ts = PQtransactionStatus(PDB(db)->c);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

static const sqlx_ops_t pg_ops = {
    .close = pg_close,
    .set_busy_timeout = pg_set_busy_timeout,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind = pg_bind,
    .clear_bindings = pg_clear_bindings,
    .step = pg_step,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .column_count = pg_column_count,
    .column_type = pg_column_type,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .column_bytes = pg_column_bytes,
    .changes = pg_changes,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
};

int sqlx_pg_socket(sqlx_t *db)
{
    if (!db || db->backend != SQLX_POSTGRESQL || PQstatus(PDB(db)->c) != CONNECTION_OK)
        return -1;
    return PQsocket(PDB(db)->c);
}

int sqlx_pg_notifications(sqlx_t *db, sqlx_notify_cb cb, void *arg)
{
    if (!db || db->backend != SQLX_POSTGRESQL)
        return GS_EINVAL;
    PGconn *c = PDB(db)->c;
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
        set_msg(db, PQerrorMessage(c));
        return GS_ECLOSED;
    }
    int n = 0;
    PGnotify *nf;
    while ((nf = PQnotifies(c)) != NULL) {
        if (cb)
            cb(nf->relname, nf->extra ? nf->extra : "", arg);
        PQfreemem(nf);
        n++;
    }
    return n;
}
