/* cli — the `gridsense` program: server composition (serve) and admin subcommands.
 * Internal header shared by the files of this folder only.
 */
#ifndef GS_CLI_H
#define GS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"
#include "core/util.h"
#include "ana/ana.h"
#include "gw/gw.h"
#include "store/store.h"
#include "web/web.h"
#include "mmsd/mmsd.h"

/* Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
#define EXIT_USAGE 2

/* Everything `serve` can be configured with; defaults first, then the INI file, then flags. */
typedef struct {
    char data_dir[512];
    char config_file[512];
    log_level_t log_level;
    char term_host[64];
    int term_port;
    char http_host[64];
    int http_port;
    web_opts_t web; /* [http] connection limits and timeouts */
    char web_root[512];       /* [web] root: the web app from this folder ("" = compiled in) */
    char web_tiles[512];      /* [web] tiles: map tile URL template ("" = plain background) */
    char web_tiles_attr[256]; /* [web] tiles_attribution: the tiles' credit line */
    char http_cert[512];      /* [http] cert: PEM certificate chain for TLS ("" = plain HTTP) */
    char http_key[512];       /* [http] key: its PEM private key */
    char http_hosts[1024];    /* [http] hosts: accepted Host names ("" = defaults, api.h) */
    char http_proxies[512];   /* [http] trusted_proxies */
    int session_idle_s;       /* [http] session_idle (default 8 h) */
    int session_max_s;        /* [http] session_max (default 7 days) */
    int metrics_public;       /* [http] metrics_public: -1 = only when bound to loopback */
    int http_thread; /* [http] thread = on: the HTTP server on a loop thread of its own
                        (docs/decisions/0006-web-thread.md); default on */
    int http_thread_nice; /* [http] thread_nice = 0..19: scheduling niceness of that thread
                             (Linux, per thread), default 10: under CPU saturation the gateway's
                             loop thread gets the CPU first */
    int sync_full;
    /* [store] backend / url (docs/decisions/0007-postgresql-backend.md): store_pg = 1 when the
     * database is PostgreSQL at store_url (a libpq URI), 0 for SQLite under data_dir. */
    int store_pg;
    char store_url[1024];
    /* [cluster] several nodes on one PostgreSQL database (docs/operations.md "Several nodes"):
     * node_id ("" = <hostname>:<terminal port>), heartbeat and stale periods in seconds. */
    char node_id[64];
    int node_heartbeat_s; /* default 5 */
    int node_stale_s;     /* default 20: a node silent this long is dead */
    char port_file[512];
    int mms_enabled;   /* [mms] enabled (default false) */
    mmsd_opts_t mms;   /* [mms] settings (mmsd.h; docs/operations.md "[mms]") */
    gw_opts_t gw;
    int dsp_workers;  /* [analysis] workers: 0 = one per CPU */
    int dsp_queue_mb; /* [analysis] queue_mb: samples waiting for analysis, default 64 */
    int analysis_off; /* [analysis] enabled = false */
    int dsp_keep_dc;  /* [analysis] dc_removal = false: RMS includes DC */
    /* [security] master_key_file; "" = <data>/master.key */
    char master_key_file[512];
    /* [analysis] reporting-rate synchrophasors (C37.118.1 Table 1), reports per second:
     * phasor_rate applies to every terminal (the largest valid rate not above it where the
     * terminal's nominal frequency does not admit it); phasor_rate_50 / phasor_rate_60, when
     * set (>= 0), override it per nominal frequency. 0 = off. */
    int phasor_rate;    /* default 10 */
    int phasor_rate_50; /* -1 = from phasor_rate */
    int phasor_rate_60; /* -1 = from phasor_rate */
    /* [analysis] backfill of the analysis backlog (src/ana/backfill.c) */
    int backfill_off;     /* backfill = false */
    int backfill_idle_s;  /* backfill_idle_s, 0 = default (30) */
    int backfill_grace_s; /* backfill_grace_s, 0 = default (120) */
    int ana_skip_every;   /* serve --analysis-skip-every N (testing, undocumented in --help) */
    /* [history] retention (issue 10; docs/operations.md "Retention"): what to keep, and the
     * seconds between retention passes. */
    store_retention_t history;
    int history_interval_s; /* default 300 */
} config_t;

/* The reporting rate for terminals of nominal frequency `nominal_hz` (50 or 60) under *c. */
int config_phasor_rate(const config_t *c, int nominal_hz);

/* Fills defaults (data ./data, terminals 0.0.0.0:7100, HTTP 127.0.0.1:8080, info). */
void config_defaults(config_t *c);

/* Loads an INI file over *c. Returns 0 or GS_ECONFIG with "FILE:LINE: reason" in err. */
/* 1 when a PostgreSQL URI carries a password (user:password@ or ?password=). */
int config_url_has_password(const char *url);

/* Writes url without its password and query parameters into out (for log lines). */
void config_url_redact(const char *url, char *out, size_t cap);

int config_load(config_t *c, const char *path, char *err, size_t errlen);

/* Applies one "section.key = value" setting (used by the INI loader and usable for tests).
 * Returns 0 or GS_ECONFIG with the reason in err. */
int config_set(config_t *c, const char *section, const char *key, const char *value, char *err,
               size_t errlen);

/* The [history] settings together (store_retention_check): 0, or GS_ECONFIG with the reason. */
int config_check_history(const config_t *c, char *err, size_t errlen);

/* Loads the file named by a --config option in argv, if any, so that flags applied afterwards
 * override it. Returns 0, or -1 after printing the error. */
int config_prescan(config_t *c, int argc, char **argv);

/* Common options of every subcommand: --config FILE, --data DIR, --log-level L. If argv[*i] is
 * one of them, consumes it (and its value), updates *c and returns 1; returns 0 if not a common
 * option, -1 after printing an error. --config is only skipped here (see config_prescan). */
int config_common_opt(config_t *c, int argc, char **argv, int *i);

/* An admin subcommand's parsed arguments and its store (admin.c). */
typedef struct {
    config_t c;
    store_t *st;
    const char *pos[32]; /* positional arguments */
    int npos;
} cli_admin_t;

/* Parses common options, collects positionals and the subcommand's own options (given as a
 * list of names taking a value, and flags without one). Returns 0, or EXIT_USAGE. */
int cli_admin_parse(cli_admin_t *a, int argc, char **argv, const char *const *valopts,
                    const char **vals, const char *const *flags, int *flagv, void (*help)(FILE *));
/* Opens the store of a->c (private file modes); 0, or 1 after printing the error. */
int cli_admin_open(cli_admin_t *a);

/* Appends an audit record of a change made from the command line (remote "local", the Unix
 * user in detail; users.c). A failure is only warned about. */
void cli_audit(store_t *st, const char *action, const char *target, const char *detail);

/* Subcommands. Each returns the process exit code. */
int cmd_serve(int argc, char **argv);
int cmd_terminal(int argc, char **argv);
int cmd_command(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_db(int argc, char **argv); /* backup.c: db backup|restore */
int cmd_export(int argc, char **argv); /* export.c */
int cmd_mms(int argc, char **argv);    /* mms.c: gridsense mms scl */
int cmd_reanalyze(int argc, char **argv); /* reanalyze.c */
int cmd_db_stats(int argc, char **argv); /* db.c: `gridsense db stats` (argv[0] "stats") */
void cli_db_stats_help(FILE *f);          /* its usage, also part of `gridsense db --help` */
int cmd_pyramid(int argc, char **argv); /* pyramid.c */



#include "api/api.h"

#endif
