/* cli — the `gridsense` program: server composition (serve) and admin subcommands.
 * Internal header shared by the files of this folder only.
 */
#ifndef GS_CLI_H
#define GS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/util.h"
#include "ana/ana.h"
#include "gw/gw.h"
#include "store/store.h"
#include "web/web.h"

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
    int http_thread; /* [http] thread = on: the HTTP server on a loop thread of its own
                        (prototype, docs/decisions/0006-web-thread.md); default off */
    int http_thread_nice; /* [http] thread_nice = 0..19: scheduling niceness of that thread
                             (Linux, per thread), default 10: under CPU saturation the gateway's
                             loop thread gets the CPU first */
    int sync_full;
    char port_file[512];
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
} config_t;

/* The reporting rate for terminals of nominal frequency `nominal_hz` (50 or 60) under *c. */
int config_phasor_rate(const config_t *c, int nominal_hz);

/* Fills defaults (data ./data, terminals 0.0.0.0:7100, HTTP 127.0.0.1:8080, info). */
void config_defaults(config_t *c);

/* Loads an INI file over *c. Returns 0 or GS_ECONFIG with "FILE:LINE: reason" in err. */
int config_load(config_t *c, const char *path, char *err, size_t errlen);

/* Applies one "section.key = value" setting (used by the INI loader and usable for tests).
 * Returns 0 or GS_ECONFIG with the reason in err. */
int config_set(config_t *c, const char *section, const char *key, const char *value, char *err,
               size_t errlen);

/* Loads the file named by a --config option in argv, if any, so that flags applied afterwards
 * override it. Returns 0, or -1 after printing the error. */
int config_prescan(config_t *c, int argc, char **argv);

/* Common options of every subcommand: --config FILE, --data DIR, --log-level L. If argv[*i] is
 * one of them, consumes it (and its value), updates *c and returns 1; returns 0 if not a common
 * option, -1 after printing an error. --config is only skipped here (see config_prescan). */
int config_common_opt(config_t *c, int argc, char **argv, int *i);

/* Verb names <-> GSTP codes, and "key=value" arguments <-> GSTP TLV. */
int verb_parse(const char *name);
const char *verb_name(int verb);
/* Encodes key=value pairs for verb into TLV; err gets a reason on failure (GS_EINVAL). */
int verb_args_from_kv(int verb, int n, const char *const *kv, uint8_t *out, size_t cap, size_t *len,
                      char *err, size_t errlen);
/* Appends a JSON object describing a TLV argument/result list, with the public argument names
 * and units of `command send` / the REST API (dip and swell in percent, stream a boolean). */
void verb_tlv_json(buf_t *b, const uint8_t *tlv, size_t n);
/* Appends a JSON object for one command row. */
void command_json(buf_t *b, const store_command_t *c);

/* Subcommands. Each returns the process exit code. */
int cmd_serve(int argc, char **argv);
int cmd_terminal(int argc, char **argv);
int cmd_command(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_key(int argc, char **argv);

/* HTTP API handler context. */
typedef struct {
    gw_t *gw;
    store_t *st;
    ana_t *ana; /* NULL when analysis is disabled */
    web_t *web; /* the HTTP server itself, for its counters in /metrics (NULL: none shown) */
    int64_t started_ns;
    int with_latest;      /* terminal_json includes the latest analysis values */
    int max_pending;      /* [commands] max_pending_per_terminal (for error messages) */
    int create_timeout_s; /* [commands] create_timeout (for error messages) */
} api_t;

#include "web/web.h"
/* The web_handler_fn of the server: REST /api/v1 and /metrics. ud is an api_t. */
void api_handle(void *ud, const web_request_t *req, web_response_t *resp);

#endif
