/* Admin subcommands: terminal provisioning and commands. They open the same database as the
 * server (SQLite WAL allows it while the server runs); the server picks up new terminals at
 * their next login and new commands within a second. */
#include "cli.h"

#include "core/err.h"
#include "gstp/gstp.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void terminal_usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  gridsense terminal add ID [--name N] [--location LAT,LON] [--nominal-hz 50|60]\n"
               "                            [--vt-ratio R] [--ct-ratio R] [--declared-voltage V]\n"
               "      provisions one terminal and prints its secret (64 hex digits) once;\n"
               "      V is the declared input voltage Udin (secondary RMS, phase-to-neutral)\n"
               "      for dip/swell/interruption thresholds (default: sliding reference)\n"
               "  gridsense terminal add --count N --prefix P --secrets-out FILE [--force] [...]\n"
               "      provisions P0001..PNNNN and writes 'ID SECRET' lines to FILE (mode 0600;\n"
               "      an existing FILE is only replaced with --force)\n"
               "  gridsense terminal list [--json]\n"
               "  gridsense terminal set ID --declared-voltage V   (0 clears; applies at the\n"
               "      terminal's next login)\n"
               "  gridsense terminal remove ID\n"
               "  gridsense terminal rotate-secret ID     prints the new secret once\n"
               "\n"
               "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

static void command_usage(FILE *f)
{
    fprintf(f,
            "Usage:\n"
            "  gridsense command send ID VERB [KEY=VALUE...] [--ttl S] [--wait S]\n"
            "      queues a persistent command; prints its id. With --wait, waits up to S\n"
            "      seconds for a final state and prints the command as JSON (exit 1 unless done)\n"
            "      VERB and keys:\n"
            "        get-status\n"
            "        capture       cycles=N (1..3000) pretrigger=N (0..3000); left out:\n"
            "                      the terminal's defaults (gridsense-sim: 10 and 2)\n"
            "        stream-start | stream-stop\n"
            "        set-config    report_interval=S stream=on|off dip=PCT swell=PCT\n"
            "                      (PCT of the terminal's declared voltage)\n"
            "        time-sync\n"
            "        reboot\n"
            "  gridsense command list [ID] [--limit N] [--json]\n"
            "\n"
            "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

int cli_admin_parse(cli_admin_t *a, int argc, char **argv, const char *const *valopts,
                       const char **vals, const char *const *flags, int *flagv,
                       void (*help)(FILE *))
{
    config_defaults(&a->c);
    if (config_prescan(&a->c, argc, argv) < 0)
        return EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        int r = config_common_opt(&a->c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            help(stdout);
            exit(0);
        }
        if (strncmp(s, "--", 2) != 0) {
            if (a->npos == 32) {
                fprintf(stderr, "gridsense: too many arguments\n");
                return EXIT_USAGE;
            }
            a->pos[a->npos++] = s;
            continue;
        }
        int found = 0;
        for (int k = 0; valopts && valopts[k]; k++) {
            if (strcmp(s, valopts[k]) == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "gridsense: option %s needs a value\n", s);
                    return EXIT_USAGE;
                }
                vals[k] = argv[++i];
                found = 1;
            }
        }
        for (int k = 0; !found && flags && flags[k]; k++) {
            if (strcmp(s, flags[k]) == 0) {
                flagv[k] = 1;
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr, "gridsense: unknown option %s (see --help)\n", s);
            return EXIT_USAGE;
        }
    }
    log_set_level(a->c.log_level);
    return 0;
}

static int admin_open_opts(cli_admin_t *a, int key_reset)
{
    char err[1024];
    /* Files the store creates (database, key) are private whatever the caller's umask. */
    umask(umask(077) | 077);
    store_opts_t so = {.sync_full = a->c.sync_full,
                       .busy_timeout_ms = 10000,
                       .master_key_file = a->c.master_key_file[0] ? a->c.master_key_file : NULL,
                       .key_reset = key_reset,
                       .url = a->c.store_pg ? a->c.store_url : NULL};
    if (store_open(a->c.data_dir, &so, &a->st, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        return 1;
    }
    return 0;
}

int cli_admin_open(cli_admin_t *a)
{
    return admin_open_opts(a, 0);
}

/* ---- terminal ---------------------------------------------------------------------------------
 */

static int parse_terminal_fields(store_terminal_t *t, const char **v)
{
    /* v: name, location, nominal-hz, vt-ratio, ct-ratio */
    t->nominal_hz = 50;
    t->vt_ratio = 1;
    t->ct_ratio = 1;
    if (v[0]) {
        if (strlen(v[0]) >= sizeof t->name) {
            fprintf(stderr, "gridsense: --name is longer than %zu bytes\n", sizeof t->name - 1);
            return EXIT_USAGE;
        }
        snprintf(t->name, sizeof t->name, "%s", v[0]);
    }
    if (v[1]) {
        char lat[64], *comma;
        snprintf(lat, sizeof lat, "%s", v[1]);
        comma = strchr(lat, ',');
        if (!comma) {
            fprintf(stderr, "gridsense: --location must be LAT,LON\n");
            return EXIT_USAGE;
        }
        *comma = 0;
        if (parse_double(lat, -90, 90, &t->lat) < 0 ||
            parse_double(comma + 1, -180, 180, &t->lon) < 0) {
            fprintf(stderr,
                    "gridsense: --location must be LAT,LON in degrees (-90..90,-180..180)\n");
            return EXIT_USAGE;
        }
        t->has_location = 1;
    }
    if (v[2]) {
        int64_t hz;
        if (parse_i64(v[2], 50, 60, &hz) < 0 || (hz != 50 && hz != 60)) {
            fprintf(stderr, "gridsense: --nominal-hz must be 50 or 60\n");
            return EXIT_USAGE;
        }
        t->nominal_hz = (int)hz;
    }
    if (v[3] && parse_double(v[3], 1e-6, 1e9, &t->vt_ratio) < 0) {
        fprintf(stderr, "gridsense: --vt-ratio must be a positive number\n");
        return EXIT_USAGE;
    }
    if (v[4] && parse_double(v[4], 1e-6, 1e9, &t->ct_ratio) < 0) {
        fprintf(stderr, "gridsense: --ct-ratio must be a positive number\n");
        return EXIT_USAGE;
    }
    if (v[8] && parse_double(v[8], 0, 1e8, &t->declared_v) < 0) {
        fprintf(stderr, "gridsense: --declared-voltage must be a number of volts >= 0\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int list_print_cb(void *ud, const store_terminal_t *t)
{
    int json = *(int *)ud;
    char when[40];
    time_fmt_utc(t->created_ns, when, sizeof when);
    if (json) {
        buf_t b = {0};
        buf_puts(&b, "{\"id\":");
        buf_json_str(&b, t->id, (size_t)-1);
        buf_puts(&b, ",\"name\":");
        buf_json_str(&b, t->name, (size_t)-1);
        buf_printf(&b,
                   ",\"nominal_hz\":%d,\"vt_ratio\":%g,\"ct_ratio\":%g,\"declared_voltage\":%g,"
                   "\"durable_seq\":%llu,\"created\":\"%s\"}",
                   t->nominal_hz, t->vt_ratio, t->ct_ratio, t->declared_v,
                   (unsigned long long)t->durable_seq, when);
        puts(b.data);
        buf_free(&b);
    } else {
        printf("%-20s %-24s %4d Hz  VT %-8g CT %-8g seq %-10llu %s\n", t->id, t->name,
               t->nominal_hz, t->vt_ratio, t->ct_ratio, (unsigned long long)t->durable_seq, when);
    }
    return 0;
}

int cmd_terminal(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        terminal_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    static const char *const valopts[] = {
        "--name",  "--location", "--nominal-hz",  "--vt-ratio",         "--ct-ratio",
        "--count", "--prefix",   "--secrets-out", "--declared-voltage", NULL};
    static const char *const flags[] = {"--json", "--force", NULL};
    const char *vals[10] = {0};
    int flagv[2] = {0};
    cli_admin_t a;
    memset(&a, 0, sizeof a);
    int rc = cli_admin_parse(&a, argc - 1, argv + 1, valopts, vals, flags, flagv, terminal_usage);
    if (rc)
        return rc;
    if (sodium_init() < 0)
        return 1;
    if (strcmp(sub, "add") == 0) {
        store_terminal_t t;
        memset(&t, 0, sizeof t);
        if ((rc = parse_terminal_fields(&t, vals)) != 0)
            return rc;
        if (vals[5] || vals[6] || vals[7]) {
            int64_t count;
            if (!vals[5] || !vals[6] || !vals[7] || a.npos) {
                fprintf(stderr, "gridsense: fleet provisioning needs --count N --prefix P "
                                "--secrets-out FILE and no ID\n");
                return EXIT_USAGE;
            }
            if (parse_i64(vals[5], 1, 100000, &count) < 0) {
                fprintf(stderr, "gridsense: --count must be 1..100000\n");
                return EXIT_USAGE;
            }
            char probe[GSTP_MAX_ID + 16];
            snprintf(probe, sizeof probe, "%s%04lld", vals[6], (long long)count);
            if (!gstp_valid_id(probe)) {
                fprintf(stderr,
                        "gridsense: --prefix gives invalid ids like '%s' (1..32 of "
                        "A-Z a-z 0-9 . _ -)\n",
                        probe);
                return EXIT_USAGE;
            }
            int fd = open(vals[7], O_WRONLY | O_CREAT | (flagv[1] ? O_TRUNC : O_EXCL), 0600);
            if (fd < 0) {
                fprintf(stderr, "gridsense: cannot create %s: %s%s\n", vals[7], strerror(errno),
                        errno == EEXIST ? " (use --force to replace it)" : "");
                return 1;
            }
            FILE *f = fdopen(fd, "w");
            if (!f) {
                fprintf(stderr, "gridsense: cannot write %s: %s\n", vals[7], strerror(errno));
                close(fd);
                return 1;
            }
            if (cli_admin_open(&a)) {
                fclose(f);
                return 1;
            }
            fprintf(f, "# gridsense terminal secrets: ID SECRET (keep private)\n");
            /* All or nothing, in one transaction: a fleet is provisioned completely, or not at
             * all and without a secrets file (secrets of terminals that do not exist). */
            int added = 0;
            int r = store_transaction(a.st, STORE_TX_BEGIN);
            for (int64_t k = 1; r == 0 && k <= count; k++) {
                snprintf(t.id, sizeof t.id, "%s%04lld", vals[6], (long long)k);
                randombytes_buf(t.secret, sizeof t.secret);
                t.created_ns = time_utc_ns();
                r = store_terminal_add(a.st, &t);
                if (r < 0) {
                    fprintf(stderr, "gridsense: cannot add %s: %s\n", t.id,
                            r == GS_EEXISTS ? "a terminal with this id exists" : err_str(r));
                    break;
                }
                char hex[2 * STORE_SECRET_LEN + 1];
                hex_encode(t.secret, sizeof t.secret, hex);
                fprintf(f, "%s %s\n", t.id, hex);
                added++;
            }
            if (fclose(f) != 0 && r == 0) {
                fprintf(stderr, "gridsense: writing %s failed\n", vals[7]);
                r = GS_EIO;
            }
            if (r == 0)
                r = store_transaction(a.st, STORE_TX_COMMIT);
            if (r == 0) {
                char target[96];
                snprintf(target, sizeof target, "terminals %s0001..%s%04lld", vals[6], vals[6],
                         (long long)count);
                cli_audit(a.st, "terminal.add", target, NULL);
            }
            if (r < 0) {
                store_transaction(a.st, STORE_TX_ROLLBACK);
                unlink(vals[7]);
                fprintf(stderr, "gridsense: no terminals added\n");
                store_close(a.st);
                return 1;
            }
            printf("added %d terminals (%s%04d..), secrets in %s\n", added, vals[6], 1, vals[7]);
            store_close(a.st);
            return rc;
        }
        if (a.npos != 1) {
            fprintf(stderr, "gridsense: terminal add needs exactly one ID (see --help)\n");
            return EXIT_USAGE;
        }
        if (!gstp_valid_id(a.pos[0])) {
            fprintf(stderr, "gridsense: invalid terminal id '%s' (1..32 of A-Z a-z 0-9 . _ -)\n",
                    a.pos[0]);
            return EXIT_USAGE;
        }
        snprintf(t.id, sizeof t.id, "%s", a.pos[0]);
        randombytes_buf(t.secret, sizeof t.secret);
        t.created_ns = time_utc_ns();
        if (cli_admin_open(&a))
            return 1;
        int r = store_terminal_add(a.st, &t);
        char target[64];
        snprintf(target, sizeof target, "terminal %s", t.id);
        if (r == 0)
            cli_audit(a.st, "terminal.add", target, NULL);
        store_close(a.st);
        if (r < 0) {
            fprintf(stderr, "gridsense: cannot add %s: %s\n", t.id,
                    r == GS_EEXISTS ? "a terminal with this id exists" : err_str(r));
            return 1;
        }
        char hex[2 * STORE_SECRET_LEN + 1];
        hex_encode(t.secret, sizeof t.secret, hex);
        printf("%s %s\n", t.id, hex);
        sodium_memzero(hex, sizeof hex);
        sodium_memzero(t.secret, sizeof t.secret);
        fprintf(stderr, "terminal %s added; the secret above is shown only once\n", t.id);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        if (a.npos) {
            fprintf(stderr, "gridsense: terminal list takes no arguments\n");
            return EXIT_USAGE;
        }
        if (cli_admin_open(&a))
            return 1;
        int json = flagv[0];
        int r = store_terminal_list(a.st, list_print_cb, &json);
        store_close(a.st);
        return r < 0 ? 1 : 0;
    }
    if (strcmp(sub, "set") == 0) {
        double v;
        if (a.npos != 1 || !vals[8]) {
            fprintf(stderr, "gridsense: terminal set needs one ID and --declared-voltage V\n");
            return EXIT_USAGE;
        }
        if (parse_double(vals[8], 0, 1e8, &v) < 0) {
            fprintf(stderr, "gridsense: --declared-voltage must be a number of volts >= 0\n");
            return EXIT_USAGE;
        }
        if (cli_admin_open(&a))
            return 1;
        int r = store_terminal_set_declared_v(a.st, a.pos[0], v);
        char target[64], detail[64];
        snprintf(target, sizeof target, "terminal %s", a.pos[0]);
        snprintf(detail, sizeof detail, "declared voltage %g V", v);
        if (r == 0)
            cli_audit(a.st, "terminal.change", target, detail);
        store_close(a.st);
        if (r == GS_ENOTFOUND) {
            fprintf(stderr, "gridsense: no terminal '%s'\n", a.pos[0]);
            return 1;
        }
        if (r < 0) {
            fprintf(stderr, "gridsense: %s\n", err_str(r));
            return 1;
        }
        if (v > 0)
            printf("terminal %s: declared voltage %g V (from its next login)\n", a.pos[0], v);
        else
            printf("terminal %s: declared voltage cleared (sliding reference)\n", a.pos[0]);
        return 0;
    }
    if (strcmp(sub, "remove") == 0 || strcmp(sub, "rotate-secret") == 0) {
        if (a.npos != 1) {
            fprintf(stderr, "gridsense: terminal %s needs exactly one ID\n", sub);
            return EXIT_USAGE;
        }
        if (cli_admin_open(&a))
            return 1;
        int r;
        uint8_t secret[STORE_SECRET_LEN];
        if (strcmp(sub, "remove") == 0) {
            r = store_terminal_remove(a.st, a.pos[0]);
        } else {
            randombytes_buf(secret, sizeof secret);
            r = store_terminal_set_secret(a.st, a.pos[0], secret);
        }
        char target[64];
        snprintf(target, sizeof target, "terminal %s", a.pos[0]);
        if (r == 0)
            cli_audit(a.st, strcmp(sub, "remove") == 0 ? "terminal.remove" : "terminal.secret",
                      target, NULL);
        store_close(a.st);
        if (r == GS_ENOTFOUND) {
            fprintf(stderr, "gridsense: no terminal '%s'\n", a.pos[0]);
            return 1;
        }
        if (r < 0) {
            fprintf(stderr, "gridsense: %s\n", err_str(r));
            return 1;
        }
        if (strcmp(sub, "remove") == 0) {
            printf("terminal %s removed (its stored data is kept)\n", a.pos[0]);
        } else {
            char hex[2 * STORE_SECRET_LEN + 1];
            hex_encode(secret, sizeof secret, hex);
            printf("%s %s\n", a.pos[0], hex);
            sodium_memzero(hex, sizeof hex);
            sodium_memzero(secret, sizeof secret);
        }
        return 0;
    }
    fprintf(stderr, "gridsense: unknown terminal subcommand '%s' (see --help)\n", sub);
    return EXIT_USAGE;
}

/* ---- command ----------------------------------------------------------------------------------
 */

static int cmd_print_cb(void *ud, const store_command_t *c)
{
    int json = *(int *)ud;
    buf_t b = {0};
    if (json) {
        api_command_json(&b, c);
        puts(b.data);
    } else {
        char when[40];
        api_verb_tlv_json(&b, c->result, c->result_len);
        printf("%-8lld %-16s %-13s %-8s %s %s\n", (long long)c->id, c->terminal_id,
               api_verb_name(c->verb), store_cmd_state_name(c->state),
               time_fmt_utc(c->updated_ns, when, sizeof when), c->result_status >= 0 ? b.data : "");
    }
    buf_free(&b);
    return 0;
}

int cmd_command(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        command_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    static const char *const valopts[] = {"--ttl", "--wait", "--limit", NULL};
    static const char *const flags[] = {"--json", NULL};
    const char *vals[3] = {0};
    int flagv[1] = {0};
    cli_admin_t a;
    memset(&a, 0, sizeof a);
    int rc = cli_admin_parse(&a, argc - 1, argv + 1, valopts, vals, flags, flagv, command_usage);
    if (rc)
        return rc;
    if (strcmp(sub, "send") == 0) {
        if (a.npos < 2) {
            fprintf(stderr, "gridsense: command send needs ID and VERB (see --help)\n");
            return EXIT_USAGE;
        }
        int verb = api_verb_parse(a.pos[1]);
        if (verb < 0) {
            fprintf(stderr, "gridsense: unknown verb '%s' (see --help)\n", a.pos[1]);
            return EXIT_USAGE;
        }
        int64_t ttl = 24 * 3600, wait = 0;
        if (vals[0] && parse_i64(vals[0], 1, 365 * 86400, &ttl) < 0) {
            fprintf(stderr, "gridsense: --ttl must be 1..31536000 seconds\n");
            return EXIT_USAGE;
        }
        if (vals[1] && parse_i64(vals[1], 1, 86400, &wait) < 0) {
            fprintf(stderr, "gridsense: --wait must be 1..86400 seconds\n");
            return EXIT_USAGE;
        }
        uint8_t tlv[STORE_ARGS_MAX];
        size_t tlen = 0;
        char err[256];
        if (api_verb_args(verb, a.npos - 2, a.pos + 2, tlv, sizeof tlv, &tlen, err,
                              sizeof err) < 0) {
            fprintf(stderr, "gridsense: %s\n", err);
            return EXIT_USAGE;
        }
        if (cli_admin_open(&a))
            return 1;
        int64_t id;
        int r = store_command_create_limited(a.st, a.pos[0], verb, tlv, tlen, ttl * 1000000000LL,
                                             a.c.gw.cmd_max_pending, &id);
        if (r == GS_ELIMIT) {
            fprintf(stderr,
                    "gridsense: terminal %s already has %d pending commands (queued, sent or "
                    "acked), the limit set by [commands] max_pending_per_terminal; wait for them "
                    "to finish or expire\n",
                    a.pos[0], a.c.gw.cmd_max_pending);
            store_close(a.st);
            return 1;
        }
        if (r < 0) {
            fprintf(stderr, "gridsense: %s\n", r == GS_ENOTFOUND ? "no such terminal" : err_str(r));
            store_close(a.st);
            return 1;
        }
        if (!wait) {
            printf("%lld\n", (long long)id);
            store_close(a.st);
            return 0;
        }
        store_command_t c;
        int64_t deadline = time_mono_ns() + wait * 1000000000LL;
        do {
            r = store_command_get(a.st, id, &c);
            if (r < 0 || c.state >= STORE_CMD_DONE)
                break;
            usleep(100 * 1000);
        } while (time_mono_ns() < deadline);
        int json = 1;
        if (r == 0)
            cmd_print_cb(&json, &c);
        store_close(a.st);
        return r == 0 && c.state == STORE_CMD_DONE ? 0 : 1;
    }
    if (strcmp(sub, "list") == 0) {
        int64_t limit = 100;
        if (vals[2] && parse_i64(vals[2], 1, 1000000, &limit) < 0) {
            fprintf(stderr, "gridsense: --limit must be a positive integer\n");
            return EXIT_USAGE;
        }
        if (a.npos > 1) {
            fprintf(stderr, "gridsense: command list takes at most one ID\n");
            return EXIT_USAGE;
        }
        if (cli_admin_open(&a))
            return 1;
        int json = flagv[0];
        int r = store_command_list(a.st, a.npos ? a.pos[0] : NULL, (int)limit, cmd_print_cb, &json);
        store_close(a.st);
        return r < 0 ? 1 : 0;
    }
    fprintf(stderr, "gridsense: unknown command subcommand '%s' (see --help)\n", sub);
    return EXIT_USAGE;
}

/* ---- key ---------------------------------------------------------------------------------------
 */

static void key_usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  gridsense key show\n"
               "      prints the master key file and its key id (the id names the key for\n"
               "      backups; it does not reveal it)\n"
               "  gridsense key rotate\n"
               "      re-seals every terminal secret under a new random key in one transaction\n"
               "      and replaces the key file atomically (the previous key stays as\n"
               "      <file>.old until done); safe while the server runs, which picks up the new\n"
               "      key by itself. Back up the new key file afterwards.\n"
               "  gridsense key reset --discard-secrets\n"
               "      only when the key file is lost: makes a new key and discards every\n"
               "      terminal's secret; each terminal then needs `terminal rotate-secret`\n"
               "\n"
               "The key file is [security] master_key_file in the config (default\n"
               "<data>/master.key). All take --data DIR, --config FILE and --log-level LEVEL.\n");
}

int cmd_key(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        key_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    static const char *const flags[] = {"--discard-secrets", NULL};
    int flagv[1] = {0};
    cli_admin_t a;
    memset(&a, 0, sizeof a);
    int rc = cli_admin_parse(&a, argc - 1, argv + 1, NULL, NULL, flags, flagv, key_usage);
    if (rc)
        return rc;
    if (a.npos) {
        fprintf(stderr, "gridsense: key %s takes no arguments\n", sub);
        return EXIT_USAGE;
    }
    if (sodium_init() < 0)
        return 1;
    char id[2 * STORE_KEY_ID_LEN + 1];
    if (strcmp(sub, "show") == 0) {
        if (cli_admin_open(&a))
            return 1;
        int64_t n = 0;
        store_key_id(a.st, id);
        store_terminal_count(a.st, &n);
        printf("master key file %s\nkey id %s\nterminals %lld\n", store_key_path(a.st), id,
               (long long)n);
        store_close(a.st);
        return 0;
    }
    if (strcmp(sub, "rotate") == 0) {
        char err[1024];
        if (cli_admin_open(&a))
            return 1;
        rc = store_key_rotate(a.st, id, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "gridsense: key rotation failed: %s\n", err);
            store_close(a.st);
            return 1;
        }
        printf("master key rotated: key id %s in %s; back up this file now (the previous key "
               "no longer opens the database)\n",
               id, store_key_path(a.st));
        store_close(a.st);
        return 0;
    }
    if (strcmp(sub, "reset") == 0) {
        if (!flagv[0]) {
            fprintf(stderr, "gridsense: key reset discards every terminal's secret; run it with "
                            "--discard-secrets if the key file is really lost\n");
            return EXIT_USAGE;
        }
        if (admin_open_opts(&a, 1))
            return 1;
        store_key_id(a.st, id);
        printf("new master key id %s in %s; every terminal needs `gridsense terminal "
               "rotate-secret ID` now\n",
               id, store_key_path(a.st));
        store_close(a.st);
        return 0;
    }
    fprintf(stderr, "gridsense: unknown key subcommand '%s' (see --help)\n", sub);
    return EXIT_USAGE;
}
