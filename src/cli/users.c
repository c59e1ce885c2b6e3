/* Admin subcommands for the HTTP API's people and scripts: `user`, `token` and `audit`. Like
 * `terminal`, they open the server's database directly (SQLite WAL allows it while the server
 * runs; the server reads users, sessions and tokens from the database at each request, so a
 * change applies to the next request). Every change is audited with remote "local" and the
 * Unix user who ran it. Passwords and token values are printed once and never stored.
 */
#include "cli.h"

#include "core/err.h"

#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void user_usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  gridsense user add NAME --role viewer|operator|admin [--password-stdin]\n"
               "      creates a user; without --password-stdin a strong password is generated\n"
               "      and printed once\n"
               "  gridsense user list [--json]\n"
               "  gridsense user passwd NAME [--password-stdin]   (ends the user's sessions)\n"
               "  gridsense user set-role NAME viewer|operator|admin\n"
               "  gridsense user remove NAME   (its sessions and API tokens end with it)\n"
               "\n"
               "Roles: viewer reads everything except users and secrets; operator also sends\n"
               "commands and acknowledges events; admin may do everything. The last admin can\n"
               "be neither removed nor demoted. Passwords: 10 to 1024 characters.\n"
               "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

static void token_usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  gridsense token create USER [--name LABEL] [--expires DAYS]\n"
               "      prints a bearer token for USER once (only its hash is kept); send it as\n"
               "      'Authorization: Bearer TOKEN'; it acts with USER's current role\n"
               "  gridsense token list [USER] [--json]\n"
               "  gridsense token revoke ID\n"
               "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

static void audit_usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  gridsense audit list [--user NAME] [--action A] [--outcome ok|failed|denied]\n"
               "                       [--from TIME] [--to TIME] [--limit N] [--json]\n"
               "      newest first; A is an action (login, command.create, ...) or a prefix\n"
               "      ending in '.' (user.); TIME is ns since 1970 or YYYY-MM-DDTHH:MM:SSZ\n"
               "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

/* The audit fields of a change made from this command line. */
static void local_audit(store_acct_t *c, const char *action, const char *target)
{
    struct passwd *pw = getpwuid(geteuid());
    c->has_audit = 1;
    snprintf(c->audit.remote, sizeof c->audit.remote, "local");
    snprintf(c->audit.action, sizeof c->audit.action, "%s", action);
    snprintf(c->audit.target, sizeof c->audit.target, "%s", target);
    snprintf(c->audit.outcome, sizeof c->audit.outcome, "ok");
    snprintf(c->audit.detail, sizeof c->audit.detail, "command line, Unix user %s",
             pw ? pw->pw_name : "?");
}

void cli_audit(store_t *st, const char *action, const char *target, const char *detail)
{
    store_acct_t c;
    memset(&c, 0, sizeof c);
    c.op = STORE_ACCT_NONE;
    local_audit(&c, action, target);
    if (detail && detail[0]) {
        size_t n = strlen(c.audit.detail);
        snprintf(c.audit.detail + n, sizeof c.audit.detail - n, ", %s", detail);
    }
    int rc = store_account_apply(st, &c);
    if (rc < 0)
        fprintf(stderr, "gridsense: warning: the audit record of %s could not be written: %s\n",
                action, err_str(rc));
}

/* Reads one line (the password) from stdin into a sodium-guarded buffer. */
static char *read_password(void)
{
    char *buf = sodium_malloc(1100);
    if (!buf)
        return NULL;
    if (!fgets(buf, 1100, stdin)) {
        sodium_free(buf);
        return NULL;
    }
    buf[strcspn(buf, "\r\n")] = 0;
    return buf;
}

static int explain(int rc, const char *what)
{
    switch (rc) {
    case 0:
        return 0;
    case GS_EEXISTS:
        fprintf(stderr, "gridsense: %s already exists\n", what);
        break;
    case GS_ENOTFOUND:
        fprintf(stderr, "gridsense: no such %s\n", what);
        break;
    case GS_ESTATE:
        fprintf(stderr, "gridsense: refused: %s\n",
                strncmp(what, "token", 5) == 0
                    ? "the token is already revoked"
                    : "it would leave no admin (make another user admin first)");
        break;
    case GS_EINVAL:
        fprintf(stderr, "gridsense: invalid %s\n", what);
        break;
    default:
        fprintf(stderr, "gridsense: %s: %s\n", what, err_str(rc));
        break;
    }
    return 1;
}

/* Sets c->pwhash from stdin (--password-stdin) or a generated password printed at the end. */
static int password_for(store_acct_t *c, int from_stdin, char gen[32])
{
    gen[0] = 0;
    char *pw = NULL;
    if (from_stdin) {
        pw = read_password();
        if (!pw) {
            fprintf(stderr, "gridsense: no password on stdin\n");
            return EXIT_USAGE;
        }
        size_t n = strlen(pw);
        if (n < 10 || n > 1024) {
            sodium_free(pw);
            fprintf(stderr, "gridsense: a password has 10 to 1024 characters\n");
            return EXIT_USAGE;
        }
    } else {
        api_password_generate(gen);
    }
    int rc = api_password_hash(pw ? pw : gen, c->pwhash);
    if (pw)
        sodium_free(pw);
    if (rc < 0) {
        fprintf(stderr, "gridsense: cannot hash the password: %s\n", err_str(rc));
        return 1;
    }
    return 0;
}

static int user_cb(void *ud, const store_user_t *u)
{
    int json = *(int *)ud;
    char t[40];
    if (json) {
        printf("{\"name\":\"%s\",\"role\":\"%s\",\"created\":\"%s\"}\n", u->name,
               store_role_name(u->role), time_fmt_utc(u->created_ns, t, sizeof t));
    } else {
        printf("%-24s %-9s %s\n", u->name, store_role_name(u->role),
               time_fmt_utc(u->created_ns, t, sizeof t));
    }
    return 0;
}

int cmd_user(int argc, char **argv)
{
    cli_admin_t a = {0};
    const char *vopts[] = {"--role", NULL};
    const char *vals[1] = {NULL};
    const char *fopts[] = {"--password-stdin", "--json", NULL};
    int flags[2] = {0, 0};
    if (cli_admin_parse(&a, argc, argv, vopts, vals, fopts, flags, user_usage) != 0)
        return EXIT_USAGE;
    if (a.npos < 1) {
        user_usage(stderr);
        return EXIT_USAGE;
    }
    const char *sub = a.pos[0];
    int rc = EXIT_USAGE;
    store_acct_t c;
    memset(&c, 0, sizeof c);
    char gen[32] = "", target[96];
    if (strcmp(sub, "list") == 0 && a.npos == 1) {
        if (cli_admin_open(&a))
            return 1;
        rc = store_user_list(a.st, user_cb, &flags[1]) < 0 ? 1 : 0;
        goto out;
    }
    if (a.npos < 2 || !store_user_name_ok(a.pos[1])) {
        fprintf(stderr, a.npos < 2 ? "gridsense: user %s needs a NAME\n"
                                   : "gridsense: a user NAME has 1..64 of A-Z a-z 0-9 . _ @ -\n",
                sub);
        return EXIT_USAGE;
    }
    snprintf(c.user, sizeof c.user, "%s", a.pos[1]);
    snprintf(target, sizeof target, "user %s", a.pos[1]);
    if (strcmp(sub, "add") == 0 && a.npos == 2) {
        if (!vals[0] || (c.role = store_role_parse(vals[0])) < 0) {
            fprintf(stderr, "gridsense: user add needs --role viewer|operator|admin\n");
            return EXIT_USAGE;
        }
        c.op = STORE_ACCT_USER_ADD;
        local_audit(&c, "user.add", target);
        snprintf(c.audit.detail + strlen(c.audit.detail),
                 sizeof c.audit.detail - strlen(c.audit.detail), ", role %s",
                 store_role_name(c.role));
    } else if (strcmp(sub, "passwd") == 0 && a.npos == 2) {
        c.op = STORE_ACCT_USER_PASSWD;
        local_audit(&c, "user.passwd", target);
    } else if (strcmp(sub, "set-role") == 0 && a.npos == 3) {
        if ((c.role = store_role_parse(a.pos[2])) < 0) {
            fprintf(stderr, "gridsense: ROLE is viewer, operator or admin\n");
            return EXIT_USAGE;
        }
        c.op = STORE_ACCT_USER_ROLE;
        local_audit(&c, "user.role", target);
    } else if (strcmp(sub, "remove") == 0 && a.npos == 2) {
        c.op = STORE_ACCT_USER_REMOVE;
        local_audit(&c, "user.remove", target);
    } else {
        user_usage(stderr);
        return EXIT_USAGE;
    }
    if (c.op == STORE_ACCT_USER_ADD || c.op == STORE_ACCT_USER_PASSWD) {
        int prc = password_for(&c, flags[0], gen);
        if (prc)
            return prc;
    }
    if (cli_admin_open(&a)) {
        rc = 1;
        goto out;
    }
    rc = explain(store_account_apply(a.st, &c), c.op == STORE_ACCT_USER_ADD ? "user" : "user");
    if (rc == 0) {
        if (gen[0])
            printf("%s\n", gen); /* the only time it is shown */
        else
            fprintf(stderr, "gridsense: %s: done\n", target);
    }
out:
    sodium_memzero(&c, sizeof c);
    sodium_memzero(gen, sizeof gen);
    store_close(a.st);
    return rc;
}

static int token_cb(void *ud, const store_token_t *t)
{
    int json = *(int *)ud;
    char c[40], e[40], u[40];
    time_fmt_utc(t->created_ns, c, sizeof c);
    snprintf(e, sizeof e, "never");
    if (t->expires_ns)
        time_fmt_utc(t->expires_ns, e, sizeof e);
    snprintf(u, sizeof u, "never");
    if (t->last_used_ns)
        time_fmt_utc(t->last_used_ns, u, sizeof u);
    const char *state = t->revoked_ns ? "revoked" : "active";
    if (json)
        printf("{\"id\":\"%s\",\"user\":\"%s\",\"name\":\"%s\",\"created\":\"%s\","
               "\"expires\":\"%s\",\"last_used\":\"%s\",\"state\":\"%s\"}\n",
               t->id, t->user, t->name, c, e, u, state);
    else
        printf("%s %-16s %-8s created %s expires %s last used %s  %s\n", t->id, t->user, state, c,
               e, u, t->name);
    return 0;
}

int cmd_token(int argc, char **argv)
{
    cli_admin_t a = {0};
    const char *vopts[] = {"--name", "--expires", NULL};
    const char *vals[2] = {NULL, NULL};
    const char *fopts[] = {"--json", NULL};
    int flags[1] = {0};
    if (cli_admin_parse(&a, argc, argv, vopts, vals, fopts, flags, token_usage) != 0)
        return EXIT_USAGE;
    if (a.npos < 1) {
        token_usage(stderr);
        return EXIT_USAGE;
    }
    const char *sub = a.pos[0];
    int rc = EXIT_USAGE;
    store_acct_t c;
    memset(&c, 0, sizeof c);
    char value[128] = "", target[96];
    if (strcmp(sub, "list") == 0 && a.npos <= 2) {
        if (a.npos == 2 && !store_user_name_ok(a.pos[1])) {
            fprintf(stderr, "gridsense: not a user name: %s\n", a.pos[1]);
            return EXIT_USAGE;
        }
        if (cli_admin_open(&a))
            return 1;
        rc = store_token_list(a.st, a.npos == 2 ? a.pos[1] : NULL, token_cb, &flags[0]) < 0 ? 1
                                                                                            : 0;
        goto out;
    }
    if (strcmp(sub, "create") == 0 && a.npos == 2) {
        if (!store_user_name_ok(a.pos[1])) {
            fprintf(stderr, "gridsense: not a user name: %s\n", a.pos[1]);
            return EXIT_USAGE;
        }
        int64_t days = 0;
        if (vals[1] && parse_i64(vals[1], 1, 3650, &days) < 0) {
            fprintf(stderr, "gridsense: --expires DAYS: 1..3650\n");
            return EXIT_USAGE;
        }
        if (vals[0] && strlen(vals[0]) > 64) {
            fprintf(stderr, "gridsense: --name LABEL: at most 64 bytes\n");
            return EXIT_USAGE;
        }
        c.op = STORE_ACCT_TOKEN_ADD;
        snprintf(c.user, sizeof c.user, "%s", a.pos[1]);
        snprintf(c.label, sizeof c.label, "%s", vals[0] ? vals[0] : "");
        api_token_make(c.token_id, value, c.hash);
        c.expires_ns = days ? time_utc_ns() + days * 86400LL * 1000000000LL : 0;
        snprintf(target, sizeof target, "token %s", c.token_id);
        local_audit(&c, "token.create", target);
    } else if (strcmp(sub, "revoke") == 0 && a.npos == 2) {
        uint8_t raw[STORE_TOKEN_ID / 2];
        if (strlen(a.pos[1]) != STORE_TOKEN_ID || hex_decode(a.pos[1], raw, sizeof raw) < 0) {
            fprintf(stderr, "gridsense: a token ID is 16 hex digits (see gridsense token list)\n");
            return EXIT_USAGE;
        }
        c.op = STORE_ACCT_TOKEN_REVOKE;
        snprintf(c.token_id, sizeof c.token_id, "%s", a.pos[1]);
        snprintf(target, sizeof target, "token %s", c.token_id);
        local_audit(&c, "token.revoke", target);
    } else {
        token_usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_admin_open(&a))
        return 1;
    rc = explain(store_account_apply(a.st, &c),
                 c.op == STORE_ACCT_TOKEN_ADD ? "user" : "token");
    if (rc == 0 && value[0])
        printf("%s\n", value); /* the only time it is shown */
    else if (rc == 0)
        fprintf(stderr, "gridsense: %s revoked\n", target);
out:
    sodium_memzero(value, sizeof value);
    store_close(a.st);
    return rc;
}

static int audit_cb(void *ud, const store_audit_t *au)
{
    int json = *(int *)ud;
    char t[40];
    time_fmt_utc(au->time_ns, t, sizeof t);
    if (json) {
        buf_t b = {0};
        buf_printf(&b, "{\"id\":%lld,\"time\":\"%s\",\"user\":", (long long)au->id, t);
        buf_json_str(&b, au->user, (size_t)-1);
        buf_puts(&b, ",\"remote\":");
        buf_json_str(&b, au->remote, (size_t)-1);
        buf_puts(&b, ",\"action\":");
        buf_json_str(&b, au->action, (size_t)-1);
        buf_puts(&b, ",\"target\":");
        buf_json_str(&b, au->target, (size_t)-1);
        buf_puts(&b, ",\"outcome\":");
        buf_json_str(&b, au->outcome, (size_t)-1);
        buf_puts(&b, ",\"detail\":");
        buf_json_str(&b, au->detail, (size_t)-1);
        buf_puts(&b, "}");
        printf("%.*s\n", (int)b.len, b.data);
        buf_free(&b);
    } else {
        printf("%s %-7s %-14s %-16s %-24s %s  %s\n", t, au->outcome, au->action,
               au->user[0] ? au->user : "-", au->target[0] ? au->target : "-", au->remote,
               au->detail);
    }
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    cli_admin_t a = {0};
    const char *vopts[] = {"--user", "--action", "--outcome", "--from", "--to", "--limit", NULL};
    const char *vals[6] = {NULL};
    const char *fopts[] = {"--json", NULL};
    int flags[1] = {0};
    if (cli_admin_parse(&a, argc, argv, vopts, vals, fopts, flags, audit_usage) != 0)
        return EXIT_USAGE;
    if (a.npos != 1 || strcmp(a.pos[0], "list") != 0) {
        audit_usage(stderr);
        return EXIT_USAGE;
    }
    store_audit_filter_t f = {.from_ns = INT64_MIN, .to_ns = INT64_MAX, .limit = 100};
    int64_t n;
    f.user = vals[0];
    f.action = vals[1];
    f.outcome = vals[2];
    if ((vals[3] && api_parse_time(vals[3], &f.from_ns) < 0) ||
        (vals[4] && api_parse_time(vals[4], &f.to_ns) < 0)) {
        fprintf(stderr, "gridsense: --from/--to: ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z\n");
        return EXIT_USAGE;
    }
    if (vals[5]) {
        if (parse_i64(vals[5], 1, 10000, &n) < 0) {
            fprintf(stderr, "gridsense: --limit: 1..10000\n");
            return EXIT_USAGE;
        }
        f.limit = (int)n;
    }
    if (cli_admin_open(&a))
        return 1;
    int rc = store_audit_list(a.st, &f, audit_cb, &flags[0]) < 0 ? 1 : 0;
    store_close(a.st);
    return rc;
}
