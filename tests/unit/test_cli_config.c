/* Unit tests for the CLI helpers: src/cli/config.c (defaults, settings, INI files, common options)
 * and src/cli/verbs.c (verb names, key=value arguments to TLV, TLV and commands to JSON). The
 * sources are compiled into this test; JSON output is validated with jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "core/err.h"
#include "gstp/gstp.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Helpers ---- */

static char tmpdir[64];

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gs_cli_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char p[512];
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* Writes text to tmpdir/name and returns the path in a static buffer (one at a time). */
static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    return path;
}

/* stderr capture: the CLI helpers print their errors there. */
static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    assert_non_null(capture_file);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_int_equal(dup2(fileno(capture_file), 2), 2);
}

/* Restores stderr and returns what was written (static buffer). */
static const char *capture_end(void)
{
    static char text[4096];
    fflush(stderr);
    assert_int_equal(dup2(saved_stderr, 2), 2);
    close(saved_stderr);
    rewind(capture_file);
    size_t n = fread(text, 1, sizeof text - 1, capture_file);
    text[n] = 0;
    fclose(capture_file);
    return text;
}

static json_t *parse_json(const buf_t *b)
{
    json_error_t e;
    assert_non_null(b->data);
    json_t *j = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fail_msg("not valid JSON: %s (%s at %d)", b->data, e.text, e.position);
    return j;
}

static long long json_int_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("field %s missing or not an integer", key);
    return (long long)json_integer_value(v);
}

static const char *json_str_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("field %s missing or not a string", key);
    return json_string_value(v);
}

/* ---- config_defaults / config_set ---- */

static void test_config_defaults(void **state)
{
    config_t c;
    memset(&c, 0xAB, sizeof c);
    config_defaults(&c);
    assert_string_equal(c.data_dir, "./data");
    assert_string_equal(c.config_file, "");
    assert_int_equal(c.log_level, LOG_INFO);
    assert_string_equal(c.term_host, "0.0.0.0");
    assert_int_equal(c.term_port, 7100);
    assert_string_equal(c.http_host, "127.0.0.1");
    assert_int_equal(c.http_port, 8080);
    assert_int_equal(c.sync_full, 1);
    assert_string_equal(c.port_file, "");
    assert_int_equal(c.gw.heartbeat_s, 30);
    assert_int_equal(c.gw.ack_window, 64);
    assert_int_equal(c.gw.handshake_timeout_ms, 10000);
    assert_int_equal(c.gw.max_connections, 19000);
    assert_int_equal(c.gw.max_per_ip, 0); /* = max_connections */
    assert_int_equal(c.gw.max_hs_per_ip, 256);
    assert_int_equal(c.gw.auth_fail_per_ip, 600);
    assert_int_equal(c.gw.auth_fail_per_id, 5);
    assert_true(c.gw.command_ttl_ns == 24LL * 3600 * 1000000000LL);
}

/* Integer settings: where they land and the multiplier from the configured unit. */
static const struct {
    const char *key; /* in [terminals] */
    int64_t min, max;
    size_t off;
    int is64;
    int64_t mult;
} int_settings[] = {
    {"heartbeat", 5, 600, offsetof(config_t, gw.heartbeat_s), 0, 1},
    {"ack_window", 1, 4096, offsetof(config_t, gw.ack_window), 0, 1},
    {"handshake_timeout", 1, 300, offsetof(config_t, gw.handshake_timeout_ms), 0, 1000},
    {"max_connections", 1, 1000000, offsetof(config_t, gw.max_connections), 0, 1},
    {"max_per_ip", 0, 1000000, offsetof(config_t, gw.max_per_ip), 0, 1},
    {"max_connections_per_address", 0, 1000000, offsetof(config_t, gw.max_per_ip), 0, 1},
    {"max_handshakes_per_address", 1, 1000000, offsetof(config_t, gw.max_hs_per_ip), 0, 1},
    {"auth_fail_per_ip", 1, 1000000, offsetof(config_t, gw.auth_fail_per_ip), 0, 1},
    {"auth_fail_per_id", 1, 1000000, offsetof(config_t, gw.auth_fail_per_id), 0, 1},
    {"command_ttl", 1, 365 * 86400, offsetof(config_t, gw.command_ttl_ns), 1, 1000000000LL},
};

static int64_t get_setting(const config_t *c, size_t i)
{
    const char *p = (const char *)c + int_settings[i].off;
    if (int_settings[i].is64) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    int v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void test_config_set_ints(void **state)
{
    for (size_t i = 0; i < sizeof int_settings / sizeof int_settings[0]; i++) {
        config_t c;
        char err[256], val[32], want[200];
        int64_t probes[] = {int_settings[i].min, int_settings[i].max,
                            (int_settings[i].min + int_settings[i].max) / 2};
        for (size_t p = 0; p < 3; p++) {
            config_defaults(&c);
            snprintf(val, sizeof val, "%lld", (long long)probes[p]);
            err[0] = 0;
            if (config_set(&c, "terminals", int_settings[i].key, val, err, sizeof err) != 0)
                fail_msg("terminals.%s = %s rejected: %s", int_settings[i].key, val, err);
            assert_true(get_setting(&c, i) == probes[p] * int_settings[i].mult);
        }
        /* Out of range, not a number, trailing garbage, empty: GS_ECONFIG, value unchanged. */
        char below[32], above[32];
        snprintf(below, sizeof below, "%lld", (long long)int_settings[i].min - 1);
        snprintf(above, sizeof above, "%lld", (long long)int_settings[i].max + 1);
        const char *bad[] = {below, above, "abc", "10x", "", "1.5", "99999999999999999999"};
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            config_defaults(&c);
            int64_t before = get_setting(&c, i);
            err[0] = 0;
            if (config_set(&c, "terminals", int_settings[i].key, bad[b], err, sizeof err) !=
                GS_ECONFIG)
                fail_msg("terminals.%s = '%s' accepted", int_settings[i].key, bad[b]);
            assert_true(get_setting(&c, i) == before);
            snprintf(want, sizeof want, "terminals.%s must be an integer in %lld..%lld, got '%s'",
                     int_settings[i].key, (long long)int_settings[i].min,
                     (long long)int_settings[i].max, bad[b]);
            assert_string_equal(err, want);
        }
    }
}

/* [http] connection limits: defaults, where they land, ranges. */
static void test_config_http_limits(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int64_t min, max;
        size_t off;
        int def;
    } hs[] = {
        {"max_connections", 1, 1000000, offsetof(config_t, web.max_connections), 4096},
        {"max_connections_per_address", 1, 1000000, offsetof(config_t, web.max_per_address), 64},
        {"request_timeout", 1, 300, offsetof(config_t, web.request_timeout_s), 5},
        {"keepalive_timeout", 1, 3600, offsetof(config_t, web.keepalive_s), 15},
    };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        config_t c;
        char err[256], val[32], want[200];
        int v;
        config_defaults(&c);
        memcpy(&v, (const char *)&c + hs[i].off, sizeof v);
        assert_int_equal(v, hs[i].def);
        int64_t probes[] = {hs[i].min, hs[i].max, (hs[i].min + hs[i].max) / 2};
        for (size_t p = 0; p < 3; p++) {
            config_defaults(&c);
            snprintf(val, sizeof val, "%lld", (long long)probes[p]);
            if (config_set(&c, "http", hs[i].key, val, err, sizeof err) != 0)
                fail_msg("http.%s = %s rejected: %s", hs[i].key, val, err);
            memcpy(&v, (const char *)&c + hs[i].off, sizeof v);
            assert_true(v == probes[p]);
        }
        char below[32], above[32];
        snprintf(below, sizeof below, "%lld", (long long)hs[i].min - 1);
        snprintf(above, sizeof above, "%lld", (long long)hs[i].max + 1);
        const char *bad[] = {below, above, "abc", "10x", ""};
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            config_defaults(&c);
            assert_int_equal(config_set(&c, "http", hs[i].key, bad[b], err, sizeof err),
                             GS_ECONFIG);
            memcpy(&v, (const char *)&c + hs[i].off, sizeof v);
            assert_int_equal(v, hs[i].def);
            snprintf(want, sizeof want, "http.%s must be an integer in %lld..%lld, got '%s'",
                     hs[i].key, (long long)hs[i].min, (long long)hs[i].max, bad[b]);
            assert_string_equal(err, want);
        }
    }
}

/* [commands]: pending cap, in-flight window, create timeout (defaults and ranges). */
static void test_config_commands(void **state)
{
    config_t c;
    char err[256];
    (void)state;
    config_defaults(&c);
    assert_int_equal(c.gw.cmd_max_pending, 100);
    assert_int_equal(c.gw.cmd_max_inflight, 16);
    assert_true(c.gw.cmd_create_timeout_ns == 30LL * 1000000000LL);
    assert_int_equal(
        config_set(&c, "commands", "max_pending_per_terminal", "20000", err, sizeof err), 0);
    assert_int_equal(c.gw.cmd_max_pending, 20000);
    assert_int_equal(config_set(&c, "commands", "max_in_flight", "64", err, sizeof err), 0);
    assert_int_equal(c.gw.cmd_max_inflight, 64);
    assert_int_equal(config_set(&c, "commands", "max_in_flight", "65", err, sizeof err),
                     GS_ECONFIG);
    assert_string_equal(err, "commands.max_in_flight must be an integer in 1..64, got '65'");
    assert_int_equal(config_set(&c, "commands", "create_timeout", "2", err, sizeof err), 0);
    assert_true(c.gw.cmd_create_timeout_ns == 2LL * 1000000000LL);
    /* A POST waits for its answer at most WEB_DEFER_MAX_S (the web closes it then): a longer
     * create timeout would let a command be created after its client was cut off unanswered. */
    assert_int_equal(config_set(&c, "commands", "create_timeout", "290", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "commands", "create_timeout", "291", err, sizeof err),
                     GS_ECONFIG);
    assert_string_equal(err, "commands.create_timeout must be an integer in 1..290, got '291'");
    assert_int_equal(config_set(&c, "commands", "max_pending_per_terminal", "0", err, sizeof err),
                     GS_ECONFIG);
    assert_int_equal(config_set(&c, "commands", "nope", "1", err, sizeof err), GS_ECONFIG);
}

static void test_config_set_strings(void **state)
{
    config_t c;
    char err[600];
    config_defaults(&c);

    assert_int_equal(config_set(&c, "server", "data", "/var/lib/gridsense", err, sizeof err), 0);
    assert_string_equal(c.data_dir, "/var/lib/gridsense");
    char longpath[600];
    memset(longpath, 'd', 511);
    longpath[511] = 0;
    assert_int_equal(config_set(&c, "server", "data", longpath, err, sizeof err), 0);
    assert_string_equal(c.data_dir, longpath);
    longpath[511] = 'd';
    longpath[512] = 0;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "server", "data", longpath, err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "data must be a directory path");
    assert_string_equal(c.data_dir, "./data");
    assert_int_equal(config_set(&c, "server", "data", "", err, sizeof err), GS_ECONFIG);
    assert_string_equal(c.data_dir, "./data");

    static const struct {
        const char *v;
        log_level_t l;
    } levels[] = {{"error", LOG_ERROR}, {"warn", LOG_WARN},   {"info", LOG_INFO},
                  {"debug", LOG_DEBUG}, {"trace", LOG_TRACE}, {"DEBUG", LOG_DEBUG}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        assert_int_equal(config_set(&c, "server", "log_level", levels[i].v, err, sizeof err), 0);
        assert_int_equal(c.log_level, levels[i].l);
    }
    c.log_level = LOG_WARN;
    assert_int_equal(config_set(&c, "server", "log_level", "verbose", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "log_level must be error|warn|info|debug|trace, got 'verbose'");
    assert_int_equal(c.log_level, LOG_WARN);

    assert_int_equal(config_set(&c, "store", "sync", "normal", err, sizeof err), 0);
    assert_int_equal(c.sync_full, 0);
    assert_int_equal(config_set(&c, "store", "sync", "full", err, sizeof err), 0);
    assert_int_equal(c.sync_full, 1);
    assert_int_equal(config_set(&c, "store", "sync", "off", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "store.sync must be full or normal, got 'off'");
    assert_int_equal(c.sync_full, 1);
    assert_int_equal(config_set(&c, "store", "sync", "FULL", err, sizeof err), GS_ECONFIG);

    /* [analysis] */
    assert_int_equal(c.dsp_workers, 0);
    assert_int_equal(c.dsp_queue_mb, 64);
    assert_int_equal(c.dsp_keep_dc, 0);
    assert_int_equal(config_set(&c, "analysis", "workers", "3", err, sizeof err), 0);
    assert_int_equal(c.dsp_workers, 3);
    assert_int_equal(config_set(&c, "analysis", "workers", "-1", err, sizeof err), GS_ECONFIG);
    assert_int_equal(config_set(&c, "analysis", "queue_mb", "0", err, sizeof err), GS_ECONFIG);
    assert_int_equal(config_set(&c, "analysis", "dc_removal", "false", err, sizeof err), 0);
    assert_int_equal(c.dsp_keep_dc, 1);
    assert_int_equal(config_set(&c, "analysis", "dc_removal", "maybe", err, sizeof err),
                     GS_ECONFIG);
    assert_string_equal(err, "analysis.dc_removal must be true or false, got 'maybe'");
    assert_int_equal(config_set(&c, "analysis", "enabled", "false", err, sizeof err), 0);
    assert_int_equal(c.analysis_off, 1);
    assert_int_equal(config_set(&c, "analysis", "nope", "1", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "unknown setting 'nope' in [analysis]");
}

static void test_config_set_listen(void **state)
{
    config_t c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "terminals", "listen", "10.1.2.3:7200", err, sizeof err), 0);
    assert_string_equal(c.term_host, "10.1.2.3");
    assert_int_equal(c.term_port, 7200);
    assert_int_equal(config_set(&c, "terminals", "listen", "*:7300", err, sizeof err), 0);
    assert_string_equal(c.term_host, "0.0.0.0");
    assert_int_equal(c.term_port, 7300);
    assert_int_equal(config_set(&c, "http", "listen", "[::1]:9090", err, sizeof err), 0);
    assert_string_equal(c.http_host, "::1");
    assert_int_equal(c.http_port, 9090);
    assert_int_equal(config_set(&c, "http", "listen", ":0", err, sizeof err), 0);
    assert_string_equal(c.http_host, "0.0.0.0");
    assert_int_equal(c.http_port, 0);

    char longhost[100];
    memset(longhost, 'h', 70);
    snprintf(longhost + 70, sizeof longhost - 70, ":80");
    const char *bad[] = {"7100", "1.2.3.4:", "1.2.3.4:65536", "host:http", "", longhost};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[300];
        config_defaults(&c);
        assert_int_equal(config_set(&c, "terminals", "listen", bad[i], err, sizeof err),
                         GS_ECONFIG);
        snprintf(want, sizeof want,
                 "terminals.listen must be ADDR:PORT (e.g. 0.0.0.0:7100), got '%s'", bad[i]);
        assert_string_equal(err, want);
        assert_string_equal(c.term_host, "0.0.0.0");
        assert_int_equal(c.term_port, 7100);
        assert_int_equal(config_set(&c, "http", "listen", bad[i], err, sizeof err), GS_ECONFIG);
        snprintf(want, sizeof want, "http.listen must be ADDR:PORT (e.g. 0.0.0.0:7100), got '%s'",
                 bad[i]);
        assert_string_equal(err, want);
        assert_string_equal(c.http_host, "127.0.0.1");
        assert_int_equal(c.http_port, 8080);
    }
}

static void test_config_set_unknown(void **state)
{
    config_t c, ref;
    char err[256];
    config_defaults(&c);
    config_defaults(&ref);
    assert_int_equal(config_set(&c, "bogus", "data", "x", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "unknown section [bogus]");
    assert_int_equal(config_set(&c, "", "data", "x", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "unknown section []");
    assert_int_equal(config_set(&c, "Server", "data", "x", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "unknown section [Server]");

    static const struct {
        const char *section, *key;
    } unknown[] = {
        {"server", "listen"},  {"server", "Data"},           {"terminals", "data"},
        {"terminals", "port"}, {"terminals", "heartbeat_s"}, {"http", "port"},
        {"http", "heartbeat"}, {"store", "journal"},         {"store", ""},
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char want[200];
        assert_int_equal(config_set(&c, unknown[i].section, unknown[i].key, "1", err, sizeof err),
                         GS_ECONFIG);
        snprintf(want, sizeof want, "unknown setting '%s' in [%s]", unknown[i].key,
                 unknown[i].section);
        assert_string_equal(err, want);
    }
    assert_memory_equal(&c, &ref, sizeof c); /* nothing changed */

    /* A small error buffer truncates the message safely. */
    char small[8];
    assert_int_equal(config_set(&c, "bogus", "x", "1", small, sizeof small), GS_ECONFIG);
    assert_string_equal(small, "unknown");
}

/* ---- config_load ---- */

static void test_config_load_good(void **state)
{
    const char *path = write_file("good.ini", "; gridsense configuration\n"
                                              "# another comment\n"
                                              "[server]\n"
                                              "data = /srv/gs data\n"
                                              "log_level = debug ; inline comment\n"
                                              "\n"
                                              "[terminals]\n"
                                              "listen = 10.0.0.1:7200\n"
                                              "heartbeat = 15\n"
                                              "ack_window = 128\n"
                                              "handshake_timeout = 5\n"
                                              "max_connections = 500\n"
                                              "max_per_ip = 10\n"
                                              "auth_fail_per_ip = 3\n"
                                              "auth_fail_per_id = 2\n"
                                              "command_ttl = 3600\n"
                                              "[http]\n"
                                              "listen=[::1]:9090\n"
                                              "[store]\n"
                                              "sync = normal\n");
    char saved[256];
    snprintf(saved, sizeof saved, "%s", path);
    config_t c;
    char err[512] = "";
    config_defaults(&c);
    if (config_load(&c, saved, err, sizeof err) != 0)
        fail_msg("config_load: %s", err);
    assert_string_equal(c.config_file, saved);
    assert_string_equal(c.data_dir, "/srv/gs data");
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_string_equal(c.term_host, "10.0.0.1");
    assert_int_equal(c.term_port, 7200);
    assert_int_equal(c.gw.heartbeat_s, 15);
    assert_int_equal(c.gw.ack_window, 128);
    assert_int_equal(c.gw.handshake_timeout_ms, 5000);
    assert_int_equal(c.gw.max_connections, 500);
    assert_int_equal(c.gw.max_per_ip, 10);
    assert_int_equal(c.gw.auth_fail_per_ip, 3);
    assert_int_equal(c.gw.auth_fail_per_id, 2);
    assert_true(c.gw.command_ttl_ns == 3600LL * 1000000000LL);
    assert_string_equal(c.http_host, "::1");
    assert_int_equal(c.http_port, 9090);
    assert_int_equal(c.sync_full, 0);

    /* An empty file changes nothing but is remembered. */
    path = write_file("empty.ini", "");
    snprintf(saved, sizeof saved, "%s", path);
    config_defaults(&c);
    assert_int_equal(config_load(&c, saved, err, sizeof err), 0);
    assert_string_equal(c.config_file, saved);
    assert_string_equal(c.data_dir, "./data");
}

static void test_config_load_errors(void **state)
{
    static const struct {
        const char *text;
        int line;
        const char *reason;
    } cases[] = {
        {"[server]\nlog_level = info\n\n[terminals]\nheartbeat = 1\n", 5,
         "terminals.heartbeat must be an integer in 5..600, got '1'"},
        {"[bogus]\nx = 1\n", 2, "unknown section [bogus]"},
        {"data = ./x\n", 1, "unknown section []"},
        {"[server]\nnope = 1\n", 2, "unknown setting 'nope' in [server]"},
        {"[server]\nthis line has no equals sign\n", 2, "syntax error"},
        {"[server\n", 1, "syntax error"},
        {"[http]\nlisten = localhost\n", 2,
         "http.listen must be ADDR:PORT (e.g. 0.0.0.0:7100), got 'localhost'"},
        /* The first error is reported; later errors do not overwrite it. */
        {"[store]\nsync = maybe\n[server]\nlog_level = loud\n", 2,
         "store.sync must be full or normal, got 'maybe'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], path[256], err[512] = "", want[600];
        snprintf(name, sizeof name, "bad%zu.ini", i);
        snprintf(path, sizeof path, "%s", write_file(name, cases[i].text));
        config_t c;
        config_defaults(&c);
        assert_int_equal(config_load(&c, path, err, sizeof err), GS_ECONFIG);
        snprintf(want, sizeof want, "%s:%d: %s", path, cases[i].line, cases[i].reason);
        if (strcmp(err, want) != 0)
            fail_msg("case %zu: got \"%s\", expected \"%s\"", i, err, want);
        assert_string_equal(c.config_file, ""); /* not remembered on failure */
    }

    /* Settings after the failing line are not applied. */
    char path[256], err[512];
    snprintf(path, sizeof path, "%s",
             write_file("after.ini", "[server]\nlog_level = nope\nlog_level = trace\n"));
    config_t c;
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), GS_ECONFIG);
    assert_int_equal(c.log_level, LOG_INFO);

    /* A line longer than libinih's INI_MAX_LINE (200) is not silently truncated into a shorter
     * value: the load fails (the remainder of the line is a syntax error). */
    char longtext[400];
    snprintf(longtext, sizeof longtext, "[server]\ndata = /%0300d\n", 0);
    snprintf(path, sizeof path, "%s", write_file("long.ini", longtext));
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "syntax error"));
    assert_string_equal(c.config_file, "");

    /* Missing file. */
    snprintf(path, sizeof path, "%s/does-not-exist.ini", tmpdir);
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), GS_ECONFIG);
    char want[600];
    snprintf(want, sizeof want, "cannot read config file %s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_string_equal(c.config_file, "");
}

static void test_config_load_error_line_matches_reason(void **state)
{
    /* Line 2 is a syntax error, line 4 an invalid value. libinih returns the FIRST error line (2)
     * but x.err holds the reason of line 4, so the message is
     * "FILE:2: terminals.heartbeat must be an integer in 5..600, got '1'". Expected: the line and
     * the reason belong together, either "FILE:2: syntax error" or "FILE:4: terminals...". */
    char path[256], err[512], want2[600], want4[600];
    snprintf(path, sizeof path, "%s",
             write_file("mixed.ini", "[terminals]\nnot a setting\n[terminals]\nheartbeat = 1\n"));
    config_t c;
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), GS_ECONFIG);
    snprintf(want2, sizeof want2, "%s:2: syntax error", path);
    snprintf(want4, sizeof want4, "%s:4: terminals.heartbeat must be an integer in 5..600, got '1'",
             path);
    if (strcmp(err, want2) != 0 && strcmp(err, want4) != 0)
        fail_msg("line and reason do not match: %s", err);

    /* Same with an unclosed section header: actual "FILE:1: unknown section []", the reason of
     * line 2 (whose section is "" because line 1 did not open one). */
    snprintf(path, sizeof path, "%s", write_file("unclosed.ini", "[server\ndata = x\n"));
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), GS_ECONFIG);
    snprintf(want2, sizeof want2, "%s:1: syntax error", path);
    snprintf(want4, sizeof want4, "%s:2: unknown section []", path);
    if (strcmp(err, want2) != 0 && strcmp(err, want4) != 0)
        fail_msg("line and reason do not match: %s", err);
}

static void test_config_load_directory(void **state)
{
    /* fopen(dir, "r") succeeds on Linux; ini_parse_file then reads nothing (EISDIR) and returns
     * 0, so `--config /etc` silently loads nothing and sets config_file to the directory. */
    config_t c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(config_load(&c, tmpdir, err, sizeof err), GS_ECONFIG);
    assert_string_equal(c.config_file, "");
}

/* ---- config_prescan / config_common_opt ---- */

/* Applies argv like main.c and admin.c do: prescan, then every common option in order. Returns
 * the first non-zero config_common_opt result that is negative, else 0. */
static int apply_args(config_t *c, int argc, char **argv)
{
    if (config_prescan(c, argc, argv) < 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        int r = config_common_opt(c, argc, argv, &i);
        if (r < 0)
            return -1;
    }
    return 0;
}

static void test_config_flags_override_file(void **state)
{
    char path[256];
    snprintf(path, sizeof path, "%s",
             write_file("prec.ini", "[server]\nlog_level = debug\ndata = /from/file\n"));
    config_t c;

    /* File alone. */
    char *a0[] = {"gridsense", "serve", "--config", path};
    config_defaults(&c);
    assert_int_equal(apply_args(&c, 4, a0), 0);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_string_equal(c.data_dir, "/from/file");
    assert_string_equal(c.config_file, path);

    /* Flag after --config wins. */
    char *a1[] = {"gridsense", "serve", "--config", path, "--log-level", "warn"};
    config_defaults(&c);
    assert_int_equal(apply_args(&c, 6, a1), 0);
    assert_int_equal(c.log_level, LOG_WARN);
    assert_string_equal(c.data_dir, "/from/file");

    /* Flag before --config wins too: the file is loaded first by config_prescan. */
    char *a2[] = {"gridsense", "--log-level", "warn", "--data", "/from/flag", "--config", path};
    config_defaults(&c);
    assert_int_equal(apply_args(&c, 7, a2), 0);
    assert_int_equal(c.log_level, LOG_WARN);
    assert_string_equal(c.data_dir, "/from/flag");

    /* The last of repeated flags wins. */
    char *a3[] = {"gridsense", "--log-level", "error", "--log-level", "trace"};
    config_defaults(&c);
    assert_int_equal(apply_args(&c, 5, a3), 0);
    assert_int_equal(c.log_level, LOG_TRACE);

    /* Several --config files load in order. */
    char path2[256];
    snprintf(path2, sizeof path2, "%s", write_file("prec2.ini", "[server]\nlog_level = error\n"));
    char *a4[] = {"gridsense", "--config", path, "--config", path2};
    config_defaults(&c);
    assert_int_equal(apply_args(&c, 5, a4), 0);
    assert_int_equal(c.log_level, LOG_ERROR);
    assert_string_equal(c.data_dir, "/from/file");
    assert_string_equal(c.config_file, path2);

    /* No --config: prescan is a no-op. */
    char *a5[] = {"gridsense", "serve", "--other", "x"};
    config_t ref;
    config_defaults(&c);
    config_defaults(&ref);
    assert_int_equal(config_prescan(&c, 4, a5), 0);
    assert_memory_equal(&c, &ref, sizeof c);
}

static void test_config_common_opt(void **state)
{
    config_t c;
    config_defaults(&c);
    char *argv[] = {"gridsense", "--foo", "--data", "/d", "--log-level", "debug", "--config", "f"};
    int i = 1;
    assert_int_equal(config_common_opt(&c, 8, argv, &i), 0); /* not ours, not consumed */
    assert_int_equal(i, 1);
    i = 2;
    assert_int_equal(config_common_opt(&c, 8, argv, &i), 1);
    assert_int_equal(i, 3); /* value consumed */
    assert_string_equal(c.data_dir, "/d");
    i = 4;
    assert_int_equal(config_common_opt(&c, 8, argv, &i), 1);
    assert_int_equal(i, 5);
    assert_int_equal(c.log_level, LOG_DEBUG);
    i = 6; /* --config is only skipped here */
    assert_int_equal(config_common_opt(&c, 8, argv, &i), 1);
    assert_int_equal(i, 7);
    assert_string_equal(c.config_file, "");
    /* "--data=x" style is not recognised. */
    char *eq[] = {"gridsense", "--data=/x"};
    i = 1;
    assert_int_equal(config_common_opt(&c, 2, eq, &i), 0);
}

static void test_config_opt_errors(void **state)
{
    config_t c;
    int i;
    const char *out;

    char *missing[] = {"gridsense", "--log-level"};
    config_defaults(&c);
    i = 1;
    capture_begin();
    int r = config_common_opt(&c, 2, missing, &i);
    out = capture_end();
    assert_int_equal(r, -1);
    assert_string_equal(out, "gridsense: option --log-level needs a value\n");

    char *badlevel[] = {"gridsense", "--log-level", "loud"};
    i = 1;
    capture_begin();
    r = config_common_opt(&c, 3, badlevel, &i);
    out = capture_end();
    assert_int_equal(r, -1);
    assert_string_equal(
        out, "gridsense: --log-level: log_level must be error|warn|info|debug|trace, got 'loud'\n");
    assert_int_equal(c.log_level, LOG_INFO);

    char *baddata[] = {"gridsense", "--data", ""};
    i = 1;
    capture_begin();
    r = config_common_opt(&c, 3, baddata, &i);
    out = capture_end();
    assert_int_equal(r, -1);
    assert_string_equal(out, "gridsense: --data: data must be a directory path\n");
    assert_string_equal(c.data_dir, "./data");

    char *nocfg[] = {"gridsense", "serve", "--config"};
    capture_begin();
    r = config_prescan(&c, 3, nocfg);
    out = capture_end();
    assert_int_equal(r, -1);
    assert_string_equal(out, "gridsense: option --config needs a value\n");

    char path[256];
    snprintf(path, sizeof path, "%s/absent.ini", tmpdir);
    char *absent[] = {"gridsense", "--config", path};
    capture_begin();
    r = config_prescan(&c, 3, absent);
    out = capture_end();
    assert_int_equal(r, -1);
    assert_non_null(strstr(out, "gridsense: cannot read config file "));
    assert_non_null(strstr(out, "absent.ini: No such file or directory\n"));

    char bad[256];
    snprintf(bad, sizeof bad, "%s", write_file("opt-bad.ini", "[server]\nlog_level = x\n"));
    char *badfile[] = {"gridsense", "--config", bad};
    capture_begin();
    r = config_prescan(&c, 3, badfile);
    out = capture_end();
    assert_int_equal(r, -1);
    char want[600];
    snprintf(want, sizeof want,
             "gridsense: %s:2: log_level must be error|warn|info|debug|trace, got 'x'\n", bad);
    assert_string_equal(out, want);
}

/* ---- verbs ---- */

static void test_verb_names(void **state)
{
    static const struct {
        int verb;
        const char *name;
    } v[] = {
        {GSTP_VERB_GET_STATUS, "get-status"},
        {GSTP_VERB_CAPTURE, "capture"},
        {GSTP_VERB_STREAM_START, "stream-start"},
        {GSTP_VERB_STREAM_STOP, "stream-stop"},
        {GSTP_VERB_SET_CONFIG, "set-config"},
        {GSTP_VERB_TIME_SYNC, "time-sync"},
        {GSTP_VERB_REBOOT, "reboot"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(api_verb_parse(v[i].name), v[i].verb);
        assert_string_equal(api_verb_name(v[i].verb), v[i].name);
        assert_int_equal(api_verb_parse(api_verb_name(v[i].verb)), v[i].verb);
    }
    static const char *const bad[] = {"", "Capture", "capture ", "status", "stream", "unknown"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(api_verb_parse(bad[i]), GS_EINVAL);
    assert_string_equal(api_verb_name(0), "unknown");
    assert_string_equal(api_verb_name(8), "unknown");
    assert_string_equal(api_verb_name(-1), "unknown");
}

typedef struct {
    uint8_t tag;
    uint16_t len;
    uint64_t value;
} tlv_expect_t;

/* Encodes args for verb and checks the TLV elements against expect[0..n). */
static void check_kv(int verb, int argc, const char *const *kv, const tlv_expect_t *expect,
                     size_t n)
{
    uint8_t out[GSTP_MAX_TLV];
    size_t len = 9999;
    char err[256] = "";
    if (api_verb_args(verb, argc, kv, out, sizeof out, &len, err, sizeof err) != 0)
        fail_msg("verb %s args rejected: %s", api_verb_name(verb), err);
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    gstp_tlv_iter_init(&it, out, len);
    size_t k = 0;
    int rc;
    while ((rc = gstp_tlv_next(&it, &t)) == 1) {
        assert_true(k < n);
        assert_int_equal(t.tag, expect[k].tag);
        assert_int_equal(t.len, expect[k].len);
        uint64_t v = 0;
        if (t.len == 1) {
            uint8_t u;
            assert_int_equal(gstp_tlv_u8(&t, &u), GSTP_OK);
            v = u;
        } else if (t.len == 2) {
            uint16_t u;
            assert_int_equal(gstp_tlv_u16(&t, &u), GSTP_OK);
            v = u;
        } else {
            uint32_t u;
            assert_int_equal(gstp_tlv_u32(&t, &u), GSTP_OK);
            v = u;
        }
        if (v != expect[k].value)
            fail_msg("element %zu (tag %d): got %llu, expected %llu", k, t.tag,
                     (unsigned long long)v, (unsigned long long)expect[k].value);
        k++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(k, n);
}

static void test_verb_args_each_key(void **state)
{
    {
        const char *kv[] = {"cycles=20", "pretrigger=5"};
        tlv_expect_t e[] = {{GSTP_AT_CYCLES, 2, 20}, {GSTP_AT_PRETRIGGER, 2, 5}};
        check_kv(GSTP_VERB_CAPTURE, 2, kv, e, 2);
    }
    {
        const char *kv[] = {"cycles=1", "cycles=3000", "pretrigger=0", "pretrigger=3000"};
        tlv_expect_t e[] = {{GSTP_AT_CYCLES, 2, 1},
                            {GSTP_AT_CYCLES, 2, 3000},
                            {GSTP_AT_PRETRIGGER, 2, 0},
                            {GSTP_AT_PRETRIGGER, 2, 3000}};
        check_kv(GSTP_VERB_CAPTURE, 4, kv, e, 4);
    }
    {
        const char *kv[] = {"report_interval=60", "report_interval=1", "report_interval=86400"};
        tlv_expect_t e[] = {{GSTP_AT_REPORT_INTERVAL, 4, 60},
                            {GSTP_AT_REPORT_INTERVAL, 4, 1},
                            {GSTP_AT_REPORT_INTERVAL, 4, 86400}};
        check_kv(GSTP_VERB_SET_CONFIG, 3, kv, e, 3);
    }
    {
        const char *kv[] = {"stream=on", "stream=off",  "stream=1",
                            "stream=0",  "stream=true", "stream=false"};
        tlv_expect_t e[] = {{GSTP_AT_STREAM, 1, 1}, {GSTP_AT_STREAM, 1, 0}, {GSTP_AT_STREAM, 1, 1},
                            {GSTP_AT_STREAM, 1, 0}, {GSTP_AT_STREAM, 1, 1}, {GSTP_AT_STREAM, 1, 0}};
        check_kv(GSTP_VERB_SET_CONFIG, 6, kv, e, 6);
    }
    {
        /* Percentages scaled x10 to permille, rounded to the nearest permille. */
        const char *kv[] = {"dip=90",    "dip=0.1",   "dip=100",   "dip=87.5",   "dip=0.14",
                            "swell=110", "swell=100", "swell=200", "swell=112.5"};
        tlv_expect_t e[] = {{GSTP_AT_DIP_PERMILLE, 2, 900},    {GSTP_AT_DIP_PERMILLE, 2, 1},
                            {GSTP_AT_DIP_PERMILLE, 2, 1000},   {GSTP_AT_DIP_PERMILLE, 2, 875},
                            {GSTP_AT_DIP_PERMILLE, 2, 1},      {GSTP_AT_SWELL_PERMILLE, 2, 1100},
                            {GSTP_AT_SWELL_PERMILLE, 2, 1000}, {GSTP_AT_SWELL_PERMILLE, 2, 2000},
                            {GSTP_AT_SWELL_PERMILLE, 2, 1125}};
        check_kv(GSTP_VERB_SET_CONFIG, 9, kv, e, 9);
    }
    {
        const char *kv[] = {"report_interval=300", "stream=on", "dip=85", "swell=115"};
        tlv_expect_t e[] = {{GSTP_AT_REPORT_INTERVAL, 4, 300},
                            {GSTP_AT_STREAM, 1, 1},
                            {GSTP_AT_DIP_PERMILLE, 2, 850},
                            {GSTP_AT_SWELL_PERMILLE, 2, 1150}};
        check_kv(GSTP_VERB_SET_CONFIG, 4, kv, e, 4);
    }
    /* No arguments: empty TLV for every verb. */
    for (int v = GSTP_VERB_GET_STATUS; v <= GSTP_VERB_REBOOT; v++)
        check_kv(v, 0, NULL, NULL, 0);
}

static void test_verb_args_rejected(void **state)
{
    static const struct {
        int verb;
        const char *kv;
        const char *msg;
    } cases[] = {
        /* Out of range. */
        {GSTP_VERB_CAPTURE, "cycles=0", "cycles must be a number in 1..3000"},
        {GSTP_VERB_CAPTURE, "cycles=3001", "cycles must be a number in 1..3000"},
        {GSTP_VERB_CAPTURE, "cycles=-5", "cycles must be a number in 1..3000"},
        {GSTP_VERB_CAPTURE, "pretrigger=3001", "pretrigger must be a number in 0..3000"},
        {GSTP_VERB_CAPTURE, "pretrigger=-1", "pretrigger must be a number in 0..3000"},
        {GSTP_VERB_SET_CONFIG, "report_interval=0", "report_interval must be a number in 1..86400"},
        {GSTP_VERB_SET_CONFIG, "report_interval=86401",
         "report_interval must be a number in 1..86400"},
        {GSTP_VERB_SET_CONFIG, "dip=0.05", "dip must be a number in 0.1..100"},
        {GSTP_VERB_SET_CONFIG, "dip=0", "dip must be a number in 0.1..100"},
        {GSTP_VERB_SET_CONFIG, "dip=100.1", "dip must be a number in 0.1..100"},
        {GSTP_VERB_SET_CONFIG, "swell=99.9", "swell must be a number in 100..200"},
        {GSTP_VERB_SET_CONFIG, "swell=200.1", "swell must be a number in 100..200"},
        /* Not a number. */
        {GSTP_VERB_CAPTURE, "cycles=abc", "cycles must be a number in 1..3000"},
        {GSTP_VERB_CAPTURE, "cycles=", "cycles must be a number in 1..3000"},
        {GSTP_VERB_CAPTURE, "cycles=5x", "cycles must be a number in 1..3000"},
        {GSTP_VERB_CAPTURE, "cycles=nan", "cycles must be a number in 1..3000"},
        {GSTP_VERB_SET_CONFIG, "dip=inf", "dip must be a number in 0.1..100"},
        {GSTP_VERB_SET_CONFIG, "stream=yes", "stream must be on or off"},
        {GSTP_VERB_SET_CONFIG, "stream=", "stream must be on or off"},
        {GSTP_VERB_SET_CONFIG, "stream=ON", "stream must be on or off"},
        /* Wrong verb, unknown key. */
        {GSTP_VERB_CAPTURE, "report_interval=5",
         "verb capture takes no argument 'report_interval'"},
        {GSTP_VERB_CAPTURE, "stream=on", "verb capture takes no argument 'stream'"},
        {GSTP_VERB_SET_CONFIG, "cycles=5", "verb set-config takes no argument 'cycles'"},
        {GSTP_VERB_REBOOT, "cycles=5", "verb reboot takes no argument 'cycles'"},
        {GSTP_VERB_GET_STATUS, "dip=50", "verb get-status takes no argument 'dip'"},
        {GSTP_VERB_TIME_SYNC, "swell=110", "verb time-sync takes no argument 'swell'"},
        {GSTP_VERB_STREAM_START, "stream=on", "verb stream-start takes no argument 'stream'"},
        {GSTP_VERB_CAPTURE, "foo=1", "verb capture takes no argument 'foo'"},
        {GSTP_VERB_CAPTURE, "=1", "verb capture takes no argument ''"},
        {GSTP_VERB_CAPTURE, "Cycles=1", "verb capture takes no argument 'Cycles'"},
        {0, "cycles=1", "verb unknown takes no argument 'cycles'"},
        {GSTP_VERB_CAPTURE, "a_very_long_argument_name_over_32_chars=1",
         "unknown argument 'a_very_long_argument_name_over_32_chars'"},
        /* Not key=value. */
        {GSTP_VERB_CAPTURE, "cycles", "argument 'cycles' is not key=value"},
        {GSTP_VERB_CAPTURE, "", "argument '' is not key=value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[GSTP_MAX_TLV];
        size_t len = 12345;
        char err[256] = "";
        const char *kv[] = {"cycles=10", cases[i].kv}; /* a good one first */
        int verb = cases[i].verb;
        int n = 2, first = verb == GSTP_VERB_CAPTURE ? 0 : 1;
        int rc =
            api_verb_args(verb, n - first, kv + first, out, sizeof out, &len, err, sizeof err);
        if (rc != GS_EINVAL)
            fail_msg("case %zu '%s' accepted", i, cases[i].kv);
        if (strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: got \"%s\", expected \"%s\"", i, err, cases[i].msg);
        assert_int_equal(len, 12345); /* untouched on failure */
    }

    /* Output space exhausted. */
    uint8_t small[8];
    size_t len = 0;
    char err[256] = "";
    const char *kv[] = {"cycles=1", "pretrigger=2"};
    assert_int_equal(api_verb_args(GSTP_VERB_CAPTURE, 1, kv, small, 5, &len, err, sizeof err),
                     0);
    assert_int_equal(len, 5);
    assert_int_equal(
        api_verb_args(GSTP_VERB_CAPTURE, 2, kv, small, sizeof small, &len, err, sizeof err),
        GS_EINVAL);
    assert_string_equal(err, "too many arguments");
}

static void test_verb_args_integer_keys_reject_fractions(void **state)
{
    /* cycles, pretrigger and report_interval are counts of cycles/seconds but are parsed with
     * parse_double (strtod) and rounded: "cycles=2.5" becomes 3, "cycles=0x10" becomes 16,
     * "report_interval=1e3" becomes 1000. Expected: GS_EINVAL, as for other non-integers. */
    static const char *const capture_bad[] = {"cycles=2.5", "cycles=0x10", "pretrigger=1.4"};
    uint8_t out[64];
    size_t len;
    char err[256];
    for (size_t i = 0; i < sizeof capture_bad / sizeof capture_bad[0]; i++)
        assert_int_equal(api_verb_args(GSTP_VERB_CAPTURE, 1, &capture_bad[i], out, sizeof out,
                                           &len, err, sizeof err),
                         GS_EINVAL);
    const char *ri[] = {"report_interval=1e3"};
    assert_int_equal(
        api_verb_args(GSTP_VERB_SET_CONFIG, 1, ri, out, sizeof out, &len, err, sizeof err),
        GS_EINVAL);
}

static void test_verb_tlv_json_each_tag(void **state)
{
    uint8_t tlv[GSTP_MAX_TLV];
    gstp_tlv_writer_t w;
    gstp_tlv_writer_init(&w, tlv, sizeof tlv);
    gstp_tlv_put_u16(&w, GSTP_AT_CYCLES, 20);
    gstp_tlv_put_u16(&w, GSTP_AT_PRETRIGGER, 5);
    gstp_tlv_put_u32(&w, GSTP_AT_REPORT_INTERVAL, 86400);
    gstp_tlv_put_u8(&w, GSTP_AT_STREAM, 1);
    gstp_tlv_put_u16(&w, GSTP_AT_DIP_PERMILLE, 900);
    gstp_tlv_put_u16(&w, GSTP_AT_SWELL_PERMILLE, 1100);
    gstp_tlv_put_i64(&w, GSTP_AT_SERVER_TIME, 1795564509123456789LL);
    gstp_tlv_put_i64(&w, GSTP_AT_TERM_RX_TIME, -5);
    gstp_tlv_put_i64(&w, GSTP_AT_TERM_TX_TIME, 1795564509123999999LL);
    gstp_tlv_put_str(&w, GSTP_AT_MESSAGE, "said \"hi\"\n\\ \x1b \xff caf\xc3\xa9");
    gstp_tlv_put_u64(&w, GSTP_AT_BLOCK_SEQ, 123456789012ULL);
    gstp_tlv_put_i64(&w, 100, -1234567);
    gstp_tlv_put_i64(&w, 101, 89000000);
    gstp_tlv_put_u32(&w, 50, 7);     /* unknown tag: skipped */
    gstp_tlv_put(&w, 200, "xyz", 3); /* unknown tag: skipped */
    assert_int_equal(w.err, GSTP_OK);

    buf_t b = {0};
    buf_puts(&b, "");
    api_verb_tlv_json(&b, tlv, w.len);
    json_t *j = parse_json(&b);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 13);
    assert_int_equal(json_int_field(j, "cycles"), 20);
    assert_int_equal(json_int_field(j, "pretrigger"), 5);
    assert_int_equal(json_int_field(j, "report_interval"), 86400);
    /* public names and units, as `command send` and the REST API take them */
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_int_equal(json_int_field(j, "dip"), 90);
    assert_int_equal(json_int_field(j, "swell"), 110);
    assert_null(json_object_get(j, "dip_permille"));
    assert_true(json_int_field(j, "server_time_ns") == 1795564509123456789LL);
    assert_true(json_int_field(j, "terminal_rx_time_ns") == -5);
    assert_true(json_int_field(j, "terminal_tx_time_ns") == 1795564509123999999LL);
    assert_string_equal(json_str_field(j, "message"),
                        "said \"hi\"\n\\ \x1b \xef\xbf\xbd caf\xc3\xa9");
    assert_true(json_int_field(j, "block_seq") == 123456789012LL);
    assert_true(json_int_field(j, "clock_offset_ns") == -1234567);
    assert_true(json_int_field(j, "round_trip_ns") == 89000000);
    json_decref(j);
    buf_free(&b);
}

static void test_verb_tlv_json_edge(void **state)
{
    buf_t b = {0};
    api_verb_tlv_json(&b, NULL, 0);
    assert_string_equal(b.data, "{}");
    buf_reset(&b);
    uint8_t none[1];
    api_verb_tlv_json(&b, none, 0);
    assert_string_equal(b.data, "{}");

    /* A known tag with a width that matches no integer type is skipped; the next one stays. */
    uint8_t tlv[64];
    gstp_tlv_writer_t w;
    gstp_tlv_writer_init(&w, tlv, sizeof tlv);
    gstp_tlv_put(&w, GSTP_AT_CYCLES, "abc", 3);
    gstp_tlv_put(&w, GSTP_AT_STREAM, NULL, 0);
    gstp_tlv_put_u16(&w, GSTP_AT_PRETRIGGER, 7);
    gstp_tlv_put(&w, GSTP_AT_MESSAGE, NULL, 0);
    buf_reset(&b);
    api_verb_tlv_json(&b, tlv, w.len);
    json_t *j = parse_json(&b);
    assert_int_equal(json_object_size(j), 2);
    assert_int_equal(json_int_field(j, "pretrigger"), 7);
    assert_string_equal(json_str_field(j, "message"), "");
    json_decref(j);

    /* A malformed tail (length past the end) ends the object cleanly. */
    size_t good = w.len;
    tlv[good] = GSTP_AT_CYCLES;
    tlv[good + 1] = 0x10; /* claims 16 bytes */
    tlv[good + 2] = 0x00;
    tlv[good + 3] = 1;
    buf_reset(&b);
    api_verb_tlv_json(&b, tlv, good + 4);
    j = parse_json(&b);
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
    /* Just two stray bytes. */
    buf_reset(&b);
    api_verb_tlv_json(&b, tlv, 2);
    assert_string_equal(b.data, "{}");

    /* Output of verb_args_from_kv round-trips. */
    const char *kv[] = {"report_interval=900", "stream=off", "dip=88.8", "swell=111.1"};
    uint8_t args[64];
    size_t len;
    char err[128];
    assert_int_equal(
        api_verb_args(GSTP_VERB_SET_CONFIG, 4, kv, args, sizeof args, &len, err, sizeof err),
        0);
    buf_reset(&b);
    api_verb_tlv_json(&b, args, len);
    assert_string_equal(b.data,
                        "{\"report_interval\":900,\"stream\":false,\"dip\":88.8,\"swell\":111.1}");
    j = parse_json(&b);
    json_decref(j);
    buf_free(&b);
}

static void test_command_json(void **state)
{
    store_command_t *c = calloc(1, sizeof *c);
    c->id = 42;
    snprintf(c->terminal_id, sizeof c->terminal_id, "FEEDER-12\"x");
    c->verb = GSTP_VERB_CAPTURE;
    char err[128];
    const char *kv[] = {"cycles=20", "pretrigger=4"};
    assert_int_equal(
        api_verb_args(c->verb, 2, kv, c->args, sizeof c->args, &c->args_len, err, sizeof err),
        0);
    c->state = STORE_CMD_DONE;
    c->created_ns = 1795564509123000000LL;
    c->updated_ns = 1795564510000000000LL;
    c->expires_ns = 1795650909123000000LL;
    c->result_status = GSTP_RS_OK;
    gstp_tlv_writer_t w;
    gstp_tlv_writer_init(&w, c->result, sizeof c->result);
    gstp_tlv_put_u64(&w, GSTP_AT_BLOCK_SEQ, 77);
    gstp_tlv_put_str(&w, GSTP_AT_MESSAGE, "captured");
    c->result_len = w.len;

    buf_t b = {0};
    api_command_json(&b, c);
    json_t *j = parse_json(&b);
    assert_int_equal(json_int_field(j, "id"), 42);
    assert_string_equal(json_str_field(j, "terminal"), "FEEDER-12\"x");
    assert_string_equal(json_str_field(j, "verb"), "capture");
    json_t *args = json_object_get(j, "args");
    assert_true(json_is_object(args));
    assert_int_equal(json_int_field(args, "cycles"), 20);
    assert_int_equal(json_int_field(args, "pretrigger"), 4);
    assert_string_equal(json_str_field(j, "state"), "done");
    assert_string_equal(json_str_field(j, "created"), "2026-11-24T23:55:09.123Z");
    assert_string_equal(json_str_field(j, "updated"), "2026-11-24T23:55:10.000Z");
    assert_string_equal(json_str_field(j, "expires"), "2026-11-25T23:55:09.123Z");
    assert_int_equal(json_int_field(j, "result_status"), 0);
    json_t *res = json_object_get(j, "result");
    assert_true(json_is_object(res));
    assert_int_equal(json_int_field(res, "block_seq"), 77);
    assert_string_equal(json_str_field(res, "message"), "captured");
    assert_int_equal(json_object_size(j), 10);
    json_decref(j);

    /* No result yet: no result fields. Every state name; an invalid state shows "?". */
    static const char *const states[] = {"queued", "sent",    "acked",    "done",
                                         "failed", "expired", "cancelled"};
    c->result_status = -1;
    for (int s = 0; s <= 7; s++) {
        c->state = s;
        buf_reset(&b);
        api_command_json(&b, c);
        j = parse_json(&b);
        assert_null(json_object_get(j, "result_status"));
        assert_null(json_object_get(j, "result"));
        assert_string_equal(json_str_field(j, "state"), s < 7 ? states[s] : "?");
        json_decref(j);
    }

    /* Unknown verb, no args, hostile terminal id bytes, timestamps before the epoch. */
    c->verb = 99;
    c->args_len = 0;
    snprintf(c->terminal_id, sizeof c->terminal_id, "\x01\\\xc0\x80");
    c->created_ns = c->updated_ns = c->expires_ns = -1000000000LL;
    c->result_status = GSTP_RS_BAD_ARGS;
    c->result_len = 0;
    buf_reset(&b);
    api_command_json(&b, c);
    j = parse_json(&b);
    assert_string_equal(json_str_field(j, "verb"), "unknown");
    assert_string_equal(json_str_field(j, "terminal"), "\x01\\\xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(json_object_size(json_object_get(j, "args")), 0);
    assert_string_equal(json_str_field(j, "created"), "1969-12-31T23:59:59.000Z");
    assert_int_equal(json_int_field(j, "result_status"), GSTP_RS_BAD_ARGS);
    assert_int_equal(json_object_size(json_object_get(j, "result")), 0);
    json_decref(j);

    /* Appends to what is already in the buffer (used to build JSON arrays). */
    buf_reset(&b);
    buf_puts(&b, "[");
    api_command_json(&b, c);
    buf_puts(&b, ",");
    api_command_json(&b, c);
    buf_puts(&b, "]");
    j = parse_json(&b);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    buf_free(&b);
    free(c);
}

/* [analysis] phasor_rate: C37.118.1 Table 1 rates, validated per nominal frequency. */
static void test_config_phasor_rate(void **state)
{
    (void)state;
    config_t c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_phasor_rate(&c, 50), 10); /* default 10 at both frequencies */
    assert_int_equal(config_phasor_rate(&c, 60), 10);
    assert_int_equal(config_set(&c, "analysis", "phasor_rate", "25", err, sizeof err), 0);
    assert_int_equal(config_phasor_rate(&c, 50), 25);
    assert_int_equal(config_phasor_rate(&c, 60), 20); /* largest 60 Hz rate not above 25 */
    assert_int_equal(config_set(&c, "analysis", "phasor_rate", "60", err, sizeof err), 0);
    assert_int_equal(config_phasor_rate(&c, 50), 50);
    assert_int_equal(config_phasor_rate(&c, 60), 60);
    assert_int_equal(config_set(&c, "analysis", "phasor_rate", "11", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "analysis.phasor_rate must be 0 (off) or a C37.118.1 reporting rate: "
                             "10, 25, 50 (50 Hz) or 10, 12, 15, 20, 30, 60 (60 Hz), got '11'");
    assert_int_equal(config_set(&c, "analysis", "phasor_rate", "100", err, sizeof err), GS_ECONFIG);
    /* per-frequency overrides are strict and win over phasor_rate, whatever the order */
    assert_int_equal(config_set(&c, "analysis", "phasor_rate_60", "25", err, sizeof err),
                     GS_ECONFIG);
    assert_string_equal(err, "analysis.phasor_rate_60 must be 0 (off) or a C37.118.1 reporting "
                             "rate at 60 Hz: 10, 12, 15, 20, 30, 60, got '25'");
    assert_int_equal(config_set(&c, "analysis", "phasor_rate_50", "30", err, sizeof err),
                     GS_ECONFIG);
    assert_int_equal(config_set(&c, "analysis", "phasor_rate_60", "12", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "analysis", "phasor_rate_50", "0", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "analysis", "phasor_rate", "10", err, sizeof err), 0);
    assert_int_equal(config_phasor_rate(&c, 60), 12);
    assert_int_equal(config_phasor_rate(&c, 50), 0); /* off for 50 Hz terminals */
    assert_int_equal(config_set(&c, "analysis", "phasor_rate", "0", err, sizeof err), 0);
    assert_int_equal(config_phasor_rate(&c, 60), 12);
}

/* [history] (issue 10): defaults, each value's range, and how they go together. */
static void test_config_history(void **state)
{
    (void)state;
    config_t c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(c.history.raw_days, 30);
    assert_int_equal(c.history.event_days, 0);
    assert_int_equal(c.history.event_pre_s, 10);
    assert_int_equal(c.history.event_post_s, 10);
    assert_int_equal(c.history.status_days + c.history.events_days + c.history.aggregates_days +
                         c.history.sessions_days + c.history.audit_days,
                     0);
    assert_int_equal(c.history_interval_s, 300);
    assert_int_equal(c.history.pyramid_fine_days, 90);
    assert_int_equal(store_retention_fine_days(&c.history), 90);
    assert_int_equal(config_check_history(&c, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "history", "pyramid_fine_days", "36501", err, sizeof err),
                     GS_ECONFIG);
    assert_string_equal(err,
                        "history.pyramid_fine_days must be an integer in 0..36500, got '36501'");
    assert_int_equal(config_set(&c, "history", "raw_days", "7", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "history", "event_days", "365", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "history", "aggregates_days", "3650", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "history", "interval", "60", err, sizeof err), 0);
    assert_int_equal(c.history.raw_days, 7);
    assert_int_equal(c.history.event_days, 365);
    assert_int_equal(c.history.aggregates_days, 3650);
    assert_int_equal(c.history_interval_s, 60);
    /* the fine levels: at least raw_days, at most aggregates_days */
    assert_int_equal(config_set(&c, "history", "pyramid_fine_days", "5", err, sizeof err), 0);
    assert_int_equal(store_retention_fine_days(&c.history), 7);
    assert_int_equal(config_set(&c, "history", "pyramid_fine_days", "0", err, sizeof err), 0);
    assert_int_equal(store_retention_fine_days(&c.history), 3650);
    assert_int_equal(config_set(&c, "history", "pyramid_fine_days", "120", err, sizeof err), 0);
    assert_int_equal(store_retention_fine_days(&c.history), 120);
    assert_int_equal(config_check_history(&c, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "history", "raw_days", "-1", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "history.raw_days must be an integer in 0..36500, got '-1'");
    assert_int_equal(config_set(&c, "history", "event_pre_s", "3601", err, sizeof err),
                     GS_ECONFIG);
    assert_int_equal(config_set(&c, "history", "interval", "0", err, sizeof err), GS_ECONFIG);
    assert_int_equal(config_set(&c, "history", "raw_dayz", "1", err, sizeof err), GS_ECONFIG);
    assert_string_equal(err, "unknown setting 'raw_dayz' in [history]");
    /* event windows kept shorter than the raw waveform: refused as a whole */
    assert_int_equal(config_set(&c, "history", "event_days", "3", err, sizeof err), 0);
    assert_int_equal(config_check_history(&c, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "[history] event_days (3) must be 0 (forever) or at least raw_days"));
    assert_int_equal(config_set(&c, "history", "raw_days", "0", err, sizeof err), 0);
    assert_int_equal(config_check_history(&c, err, sizeof err), GS_ECONFIG);
    assert_non_null(strstr(err, "raw_days = 0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_http_limits),
        cmocka_unit_test(test_config_set_ints),
        cmocka_unit_test(test_config_set_strings),
        cmocka_unit_test(test_config_commands),
        cmocka_unit_test(test_config_set_listen),
        cmocka_unit_test(test_config_set_unknown),
        cmocka_unit_test(test_config_load_good),
        cmocka_unit_test(test_config_load_errors),
        cmocka_unit_test(test_config_load_error_line_matches_reason),
        cmocka_unit_test(test_config_load_directory),
        cmocka_unit_test(test_config_flags_override_file),
        cmocka_unit_test(test_config_common_opt),
        cmocka_unit_test(test_config_opt_errors),
        cmocka_unit_test(test_verb_names),
        cmocka_unit_test(test_verb_args_each_key),
        cmocka_unit_test(test_verb_args_rejected),
        cmocka_unit_test(test_verb_args_integer_keys_reject_fractions),
        cmocka_unit_test(test_verb_tlv_json_each_tag),
        cmocka_unit_test(test_verb_tlv_json_edge),
        cmocka_unit_test(test_command_json),
        cmocka_unit_test(test_config_phasor_rate),
        cmocka_unit_test(test_config_history),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
