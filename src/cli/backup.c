/* `gridsense db backup` and `gridsense db restore` (docs/operations.md "Backup and restore"). The
 * work is the store's (store_backup, store_restore); this file parses, checks the data dir's
 * lock and prints what happened. */
#include "cli/cli.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void backup_usage(FILE *f)
{
    fprintf(f,
            "Usage:\n"
            "  gridsense db backup FILE\n"
            "      writes a consistent copy of the database to FILE (a new file, mode 0600)\n"
            "      while the server keeps running. The master key is not in it: keep a copy\n"
            "      of the key file (data/master.key or [security] master_key_file) apart.\n"
            "  gridsense db restore FILE [--yes]\n"
            "      replaces the database by the backup FILE. The server must be stopped. The\n"
            "      current database is moved aside (gridsense.db.replaced-TIME), not deleted.\n"
            "      Data received after the backup was taken is not in it. Without --yes it only\n"
            "      checks FILE and says what it would do.\n"
            "\n"
            "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

static void print_when(const char *label, int64_t ns)
{
    if (ns <= 0) {
        printf("%s: none\n", label);
        return;
    }
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s: %s\n", label, buf);
}

static void print_info(const store_backup_info_t *b)
{
    printf("schema version: %d\n", b->schema_version);
    printf("terminals: %lld\n", (long long)b->terminals);
    printf("size: %.1f MB\n", (double)b->bytes / 1e6);
    print_when("newest block received", b->newest_ns);
}

static int db_backup(int argc, char **argv)
{
    cli_admin_t a = {0};
    char err[1024];
    if (cli_admin_parse(&a, argc, argv, NULL, NULL, NULL, NULL, backup_usage) != 0)
        return EXIT_USAGE;
    if (a.npos != 1) {
        backup_usage(stderr);
        return EXIT_USAGE;
    }
    /* A reader: no key needed and nothing in the data dir is touched, so a backup can run
     * beside the server (and from an account that cannot read the key). */
    store_opts_t so = {.reader_only = 1, .busy_timeout_ms = 10000, .url = a.c.store_pg ? a.c.store_url : NULL};
    if (store_open(a.c.data_dir, &so, &a.st, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        return 1;
    }
    store_backup_info_t info;
    int rc = store_backup(a.st, a.pos[0], &info, err, sizeof err);
    store_close(a.st);
    if (rc < 0) {
        fprintf(stderr, "gridsense: backup failed: %s\n", err);
        return 1;
    }
    printf("backup written: %s\n", a.pos[0]);
    print_info(&info);
    printf("the master key is not in the backup: keep a copy of the key file apart\n");
    return 0;
}

static int db_restore(int argc, char **argv)
{
    cli_admin_t a = {0};
    char err[1024];
    const char *fopts[] = {"--yes", NULL};
    int flags[1] = {0};
    if (cli_admin_parse(&a, argc, argv, NULL, NULL, fopts, flags, backup_usage) != 0)
        return EXIT_USAGE;
    if (a.npos != 1) {
        backup_usage(stderr);
        return EXIT_USAGE;
    }
    store_backup_info_t b;
    if (store_backup_check(a.pos[0], &b, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        return 1;
    }
    printf("backup %s:\n", a.pos[0]);
    print_info(&b);
    if (!flags[0]) {
        printf("nothing changed: run again with --yes to replace the database in %s\n",
               a.c.data_dir);
        return 0;
    }
    if (a.c.store_pg) {
        fprintf(stderr, "gridsense: db restore restores the SQLite database; for PostgreSQL "
                        "use pg_restore or a base backup (docs/operations.md \"Backup and "
                        "restore\")\n");
        return 1;
    }
    int lock = -1;
    struct stat sb;
    if (stat(a.c.data_dir, &sb) == 0 && store_dir_lock(a.c.data_dir, &lock, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s: stop the server first\n", err);
        return 1;
    }
    umask(umask(077) | 077);
    store_opts_t so = {.sync_full = 1,
                       .busy_timeout_ms = 10000,
                       .master_key_file = a.c.master_key_file[0] ? a.c.master_key_file : NULL};
    store_restore_info_t r;
    int rc = store_restore(a.c.data_dir, a.pos[0], &so, &r, err, sizeof err);
    store_dir_unlock(lock);
    if (rc < 0) {
        fprintf(stderr, "gridsense: restore failed: %s\n", err);
        return 1;
    }
    printf("restored into %s (schema version %d)\n", a.c.data_dir, r.schema_version);
    if (r.replaced[0])
        printf("the previous database was moved to %s\n", r.replaced);
    printf("next command id: %lld (past every id terminals may remember)\n",
           (long long)r.next_command_id);
    return 0;
}

int cmd_db(int argc, char **argv)
{
    /* argv[0] is "db" */
    argc--;
    argv++;
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        backup_usage(stdout);
        printf("\n");
        cli_db_stats_help(stdout);
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "stats") == 0)
        return cmd_db_stats(argc, argv); /* db.c */
    if (argc >= 1 && strcmp(argv[0], "backup") == 0)
        return db_backup(argc, argv);
    if (argc >= 1 && strcmp(argv[0], "restore") == 0)
        return db_restore(argc, argv);
    backup_usage(stderr);
    return EXIT_USAGE;
}
