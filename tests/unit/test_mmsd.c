/* Unit tests of the MMS server's pieces that need no socket: the password file (format, mode
 * and symlink refusals, hashes only, constant-time check over every entry) and the [mms]
 * settings of src/cli/config.c (compiled into this test). The server itself runs in
 * integ.mms_replay and integ.mms_abuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "mmsd/mmsd.h"

static char dir[64];

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static void test_password_file(void **state)
{
    (void)state;
    mmsd_password_t pw[MMSD_MAX_PASSWORDS];
    char err[256];
    const char *p = write_file("ok", "# clients\n\nscada  correct horse battery\nhmi\tsecond\r\n",
                               0600);
    int n = mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(pw[0].name, "scada");
    assert_string_equal(pw[1].name, "hmi");
    /* the password is the rest of the line (inner spaces kept), only its hash is kept */
    assert_int_equal(mmsd_password_check(pw, n, (const uint8_t *)"correct horse battery", 21), 0);
    assert_int_equal(mmsd_password_check(pw, n, (const uint8_t *)"second", 6), 1);
    assert_int_equal(mmsd_password_check(pw, n, (const uint8_t *)"correct horse", 13), -1);
    assert_int_equal(mmsd_password_check(pw, n, (const uint8_t *)"", 0), -1);
    assert_null(memmem(pw, sizeof pw, "correct horse", 13));
    /* two entries with the same password: the first matches */
    p = write_file("dup", "a same\nb same\n", 0600);
    n = mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err);
    assert_int_equal(mmsd_password_check(pw, n, (const uint8_t *)"same", 4), 0);

    /* refusals */
    p = write_file("open", "scada pw\n", 0644);
    assert_int_equal(mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG);
    assert_non_null(strstr(err, "chmod 600"));
    p = write_file("group", "scada pw\n", 0640);
    assert_int_equal(mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG);
    p = write_file("noname", "onlyoneword\n", 0600);
    assert_int_equal(mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG);
    assert_non_null(strstr(err, ":1:"));
    p = write_file("empty", "# nothing\n\n", 0600);
    assert_int_equal(mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG);
    char big[400];
    memset(big, 'x', sizeof big);
    memcpy(big, "n ", 2);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = 0;
    p = write_file("long", big, 0600);
    assert_int_equal(mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG); /* 397 octets > 255 */
    p = write_file("many", "", 0600);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < MMSD_MAX_PASSWORDS + 1; i++)
        fprintf(f, "c%d p%d\n", i, i);
    fclose(f);
    assert_int_equal(mmsd_password_file_load(p, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG);
    /* a symlink to a good file is refused (O_NOFOLLOW) */
    char link[128];
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(write_file("target", "a b\n", 0600), link), 0);
    assert_int_equal(mmsd_password_file_load(link, pw, MMSD_MAX_PASSWORDS, err, sizeof err),
                     GS_ECONFIG);
    assert_int_equal(mmsd_password_file_load("/nonexistent/x", pw, 4, err, sizeof err),
                     GS_ECONFIG);
}

static void test_config(void **state)
{
    (void)state;
    config_t c;
    char err[256];
    config_defaults(&c);
    /* secure defaults: off, loopback, 10102 */
    assert_int_equal(c.mms_enabled, 0);
    assert_string_equal(c.mms.host, "127.0.0.1");
    assert_int_equal(c.mms.port, 10102);
    assert_string_equal(c.mms.ied_name, "GRIDSENSE");
    assert_int_equal(c.mms.auth_fail_silent, 0);
    assert_int_equal(config_set(&c, "mms", "enabled", "true", err, sizeof err), 0);
    assert_int_equal(c.mms_enabled, 1);
    assert_int_equal(config_set(&c, "mms", "listen", "0.0.0.0:102", err, sizeof err), 0);
    assert_string_equal(c.mms.host, "0.0.0.0");
    assert_int_equal(c.mms.port, 102);
    static const struct {
        const char *key, *good, *bad;
    } kv[] = {
        {"max_connections", "100", "0"},         {"max_connections_per_address", "2", "-1"},
        {"association_timeout", "30", "301"},   {"idle_timeout", "60", "4"},
        {"client_queue_kb", "256", "255"},       {"max_pdu_size", "4000", "65001"},
        {"thread_nice", "19", "20"},             {"ied_name", "SUB_1", "1SUB"},
        {"auth_failure", "close", "silent"},     {"enabled", "false", "yes"},
        {"listen", "127.0.0.1:10102", "nohost"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        assert_int_equal(config_set(&c, "mms", kv[i].key, kv[i].good, err, sizeof err), 0);
        assert_int_equal(config_set(&c, "mms", kv[i].key, kv[i].bad, err, sizeof err), GS_ECONFIG);
        assert_non_null(strstr(err, "mms."));
    }
    assert_int_equal(c.mms.auth_fail_silent, 1);
    assert_int_equal(c.mms.max_pdu, 4000);
    assert_int_equal(config_set(&c, "mms", "ied_name", "A23456789012345678901234567890123",
                                err, sizeof err),
                     GS_ECONFIG); /* 33 characters */
    assert_int_equal(config_set(&c, "mms", "ied_name", "bad-name", err, sizeof err), GS_ECONFIG);
    assert_int_equal(config_set(&c, "mms", "password_file", "/etc/x", err, sizeof err), 0);
    assert_string_equal(c.mms.password_file, "/etc/x");
    assert_int_equal(config_set(&c, "mms", "nosuch", "1", err, sizeof err), GS_ECONFIG);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    snprintf(dir, sizeof dir, "/tmp/gs_mmsd_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
