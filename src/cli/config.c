/* Configuration: embedded defaults, INI file (libinih), command-line overrides. */
#include "cli.h"

#include "core/err.h"

#include <errno.h>
#include <sys/stat.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

void config_defaults(config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data_dir, sizeof c->data_dir, "./data");
    c->log_level = LOG_INFO;
    snprintf(c->term_host, sizeof c->term_host, "0.0.0.0");
    c->term_port = 7100;
    snprintf(c->http_host, sizeof c->http_host, "127.0.0.1");
    c->http_port = 8080;
    web_opts_default(&c->web);
    c->session_idle_s = 8 * 3600;
    c->session_max_s = 7 * 86400;
    c->metrics_public = -1;
    c->http_thread = 1;
    c->http_thread_nice = 10;
    c->sync_full = 1;
    c->node_heartbeat_s = 5;
    c->node_stale_s = 20;
    gw_opts_default(&c->gw);
    c->dsp_workers = 0;
    c->dsp_queue_mb = 64;
    c->phasor_rate = 10;
    c->phasor_rate_50 = -1;
    c->phasor_rate_60 = -1;
    c->history.raw_days = 30;
    c->history.pyramid_fine_days = 90;
    c->history.event_pre_s = 10;
    c->history.event_post_s = 10;
    c->history_interval_s = 300;
    mmsd_opts_default(&c->mms);
}

/* C37.118.1-2011 5.3 Table 1 (the same lists as dsp_pmu_rate_valid; the CLI settings do not
 * link the engine). */
static const int RATES_50[] = {10, 25, 50};
static const int RATES_60[] = {10, 12, 15, 20, 30, 60};

/* The largest rate of the nominal frequency's list not above r (0 for r < 10). */
static int fit_rate(int r, int nominal_hz)
{
    const int *l = nominal_hz == 60 ? RATES_60 : RATES_50;
    int n = nominal_hz == 60 ? 6 : 3, best = 0;
    for (int i = 0; i < n; i++)
        if (l[i] <= r)
            best = l[i];
    return best;
}

int config_phasor_rate(const config_t *c, int nominal_hz)
{
    int o = nominal_hz == 60 ? c->phasor_rate_60 : c->phasor_rate_50;
    return o >= 0 ? o : fit_rate(c->phasor_rate, nominal_hz);
}

/* value must be 0 or one of the rates valid at nominal_hz (0: at 50 or at 60 Hz). */
static int set_rate(const char *value, int nominal_hz, int *out, char *err, size_t n,
                    const char *what)
{
    int64_t v;
    int ok = parse_i64(value, 0, 60, &v) == 0;
    if (ok && v != 0) {
        ok = 0;
        for (int i = 0; i < 3 && nominal_hz != 60; i++)
            ok |= RATES_50[i] == v;
        for (int i = 0; i < 6 && nominal_hz != 50; i++)
            ok |= RATES_60[i] == v;
    }
    if (!ok) {
        snprintf(err, n, "%s must be 0 (off) or a C37.118.1 reporting rate%s, got '%s'", what,
                 nominal_hz == 50   ? " at 50 Hz: 10, 25, 50"
                 : nominal_hz == 60 ? " at 60 Hz: 10, 12, 15, 20, 30, 60"
                                    : ": 10, 25, 50 (50 Hz) or 10, 12, 15, 20, 30, 60 (60 Hz)",
                 value);
        return GS_ECONFIG;
    }
    *out = (int)v;
    return 0;
}

static int set_int(const char *value, int64_t min, int64_t max, int *out, char *err, size_t n,
                   const char *what)
{
    int64_t v;
    if (parse_i64(value, min, max, &v) < 0) {
        snprintf(err, n, "%s must be an integer in %lld..%lld, got '%s'", what, (long long)min,
                 (long long)max, value);
        return GS_ECONFIG;
    }
    *out = (int)v;
    return 0;
}

static int set_addr(const char *value, char *host, size_t hostcap, int *port, char *err, size_t n,
                    const char *what)
{
    if (addr_parse(value, host, hostcap, port) < 0) {
        snprintf(err, n, "%s must be ADDR:PORT (e.g. 0.0.0.0:7100), got '%s'", what, value);
        return GS_ECONFIG;
    }
    return 0;
}

int config_set(config_t *c, const char *section, const char *key, const char *value, char *err,
               size_t errlen)
{
    int tmp;
    if (strcmp(section, "server") == 0) {
        if (strcmp(key, "data") == 0) {
            if (!*value || strlen(value) >= sizeof c->data_dir) {
                snprintf(err, errlen, "data must be a directory path");
                return GS_ECONFIG;
            }
            snprintf(c->data_dir, sizeof c->data_dir, "%s", value);
            return 0;
        }
        if (strcmp(key, "log_level") == 0) {
            if (log_parse_level(value, &c->log_level) < 0) {
                snprintf(err, errlen, "log_level must be error|warn|info|debug|trace, got '%s'",
                         value);
                return GS_ECONFIG;
            }
            return 0;
        }
    } else if (strcmp(section, "terminals") == 0) {
        gw_opts_t *g = &c->gw;
        if (strcmp(key, "listen") == 0)
            return set_addr(value, c->term_host, sizeof c->term_host, &c->term_port, err, errlen,
                            "terminals.listen");
        if (strcmp(key, "heartbeat") == 0)
            return set_int(value, 5, 600, &g->heartbeat_s, err, errlen, "terminals.heartbeat");
        if (strcmp(key, "ack_window") == 0)
            return set_int(value, 1, 4096, &g->ack_window, err, errlen, "terminals.ack_window");
        if (strcmp(key, "handshake_timeout") == 0) {
            if (set_int(value, 1, 300, &tmp, err, errlen, "terminals.handshake_timeout") < 0)
                return GS_ECONFIG;
            g->handshake_timeout_ms = tmp * 1000;
            return 0;
        }
        if (strcmp(key, "max_connections") == 0)
            return set_int(value, 1, 1000000, &g->max_connections, err, errlen,
                           "terminals.max_connections");
        /* max_per_ip: the earlier name (and serve --max-per-ip), kept as an alias. */
        if (strcmp(key, "max_connections_per_address") == 0 || strcmp(key, "max_per_ip") == 0)
            return set_int(value, 0, 1000000, &g->max_per_ip, err, errlen,
                           key[4] == 'p' ? "terminals.max_per_ip"
                                         : "terminals.max_connections_per_address");
        if (strcmp(key, "max_handshakes_per_address") == 0)
            return set_int(value, 1, 1000000, &g->max_hs_per_ip, err, errlen,
                           "terminals.max_handshakes_per_address");
        if (strcmp(key, "auth_fail_per_ip") == 0)
            return set_int(value, 1, 1000000, &g->auth_fail_per_ip, err, errlen,
                           "terminals.auth_fail_per_ip");
        if (strcmp(key, "auth_fail_per_id") == 0)
            return set_int(value, 1, 1000000, &g->auth_fail_per_id, err, errlen,
                           "terminals.auth_fail_per_id");
        if (strcmp(key, "command_ttl") == 0) {
            if (set_int(value, 1, 365 * 86400, &tmp, err, errlen, "terminals.command_ttl") < 0)
                return GS_ECONFIG;
            g->command_ttl_ns = (int64_t)tmp * 1000000000LL;
            return 0;
        }
    } else if (strcmp(section, "commands") == 0) {
        gw_opts_t *g = &c->gw;
        if (strcmp(key, "max_pending_per_terminal") == 0)
            return set_int(value, 1, 1000000, &g->cmd_max_pending, err, errlen,
                           "commands.max_pending_per_terminal");
        if (strcmp(key, "max_in_flight") == 0)
            return set_int(value, 1, GW_CMD_INFLIGHT_MAX, &g->cmd_max_inflight, err, errlen,
                           "commands.max_in_flight");
        if (strcmp(key, "create_timeout") == 0) {
            /* The web answers a deferred POST within WEB_DEFER_MAX_S or closes it unanswered;
             * the timeout's 503 must come first (the tick checks it every 250 ms). */
            if (set_int(value, 1, WEB_DEFER_MAX_S - 10, &tmp, err, errlen,
                        "commands.create_timeout") < 0)
                return GS_ECONFIG;
            g->cmd_create_timeout_ns = (int64_t)tmp * 1000000000LL;
            return 0;
        }
    } else if (strcmp(section, "http") == 0) {
        if (strcmp(key, "listen") == 0)
            return set_addr(value, c->http_host, sizeof c->http_host, &c->http_port, err, errlen,
                            "http.listen");
        if (strcmp(key, "max_connections") == 0)
            return set_int(value, 1, 1000000, &c->web.max_connections, err, errlen,
                           "http.max_connections");
        if (strcmp(key, "max_connections_per_address") == 0)
            return set_int(value, 1, 1000000, &c->web.max_per_address, err, errlen,
                           "http.max_connections_per_address");
        if (strcmp(key, "request_timeout") == 0)
            return set_int(value, 1, 300, &c->web.request_timeout_s, err, errlen,
                           "http.request_timeout");
        if (strcmp(key, "keepalive_timeout") == 0)
            return set_int(value, 1, 3600, &c->web.keepalive_s, err, errlen,
                           "http.keepalive_timeout");
        if (strcmp(key, "hosts") == 0 || strcmp(key, "trusted_proxies") == 0) {
            char *dst = key[0] == 'h' ? c->http_hosts : c->http_proxies;
            size_t cap = key[0] == 'h' ? sizeof c->http_hosts : sizeof c->http_proxies;
            if (strlen(value) >= cap) {
                snprintf(err, errlen, "http.%s is longer than %zu bytes", key, cap - 1);
                return GS_ECONFIG;
            }
            for (const char *p = value; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '"') {
                    snprintf(err, errlen, "http.%s: a comma list of host names or addresses", key);
                    return GS_ECONFIG;
                }
            snprintf(dst, cap, "%s", value);
            return 0;
        }
        if (strcmp(key, "cert") == 0 || strcmp(key, "key") == 0) {
            char *dst = key[0] == 'c' ? c->http_cert : c->http_key;
            size_t cap = key[0] == 'c' ? sizeof c->http_cert : sizeof c->http_key;
            if (strlen(value) >= cap) {
                snprintf(err, errlen, "http.%s: path longer than %zu bytes", key, cap - 1);
                return GS_ECONFIG;
            }
            snprintf(dst, cap, "%s", value);
            return 0;
        }
        if (strcmp(key, "ws_queue_kb") == 0) {
            int kb;
            int rc = set_int(value, 16, 1024 * 1024, &kb, err, errlen, "http.ws_queue_kb");
            if (rc == 0)
                c->web.ws_queue_cap = (size_t)kb * 1024;
            return rc;
        }
        if (strcmp(key, "ws_slow_close") == 0) {
            int sec;
            int rc = set_int(value, 1, 3600, &sec, err, errlen, "http.ws_slow_close");
            if (rc == 0)
                c->web.ws_over_cap_ms = sec * 1000;
            return rc;
        }
        if (strcmp(key, "ws_ping") == 0) {
            int sec;
            int rc = set_int(value, 1, 3600, &sec, err, errlen, "http.ws_ping");
            if (rc == 0)
                c->web.ws_ping_ms = sec * 1000;
            return rc;
        }
        if (strcmp(key, "session_idle") == 0)
            return set_int(value, 60, 30 * 86400, &c->session_idle_s, err, errlen,
                           "http.session_idle");
        if (strcmp(key, "session_max") == 0)
            return set_int(value, 60, 365 * 86400, &c->session_max_s, err, errlen,
                           "http.session_max");
        if (strcmp(key, "metrics_public") == 0) {
            if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
                c->metrics_public = value[0] == 't';
                return 0;
            }
            snprintf(err, errlen, "http.metrics_public must be true or false, got '%s'", value);
            return GS_ECONFIG;
        }
        if (strcmp(key, "thread_nice") == 0)
            return set_int(value, 0, 19, &c->http_thread_nice, err, errlen, "http.thread_nice");
        if (strcmp(key, "thread") == 0) {
            if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0)
                c->http_thread = 1;
            else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0)
                c->http_thread = 0;
            else {
                snprintf(err, errlen, "http.thread must be on or off, got '%s'", value);
                return GS_ECONFIG;
            }
            return 0;
        }
    } else if (strcmp(section, "mms") == 0) {
        mmsd_opts_t *m = &c->mms;
        if (strcmp(key, "enabled") == 0) {
            if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
                c->mms_enabled = value[0] == 't';
                return 0;
            }
            snprintf(err, errlen, "mms.enabled must be true or false, got '%s'", value);
            return GS_ECONFIG;
        }
        if (strcmp(key, "listen") == 0)
            return set_addr(value, m->host, sizeof m->host, &m->port, err, errlen, "mms.listen");
        if (strcmp(key, "max_connections") == 0)
            return set_int(value, 1, 100000, &m->max_connections, err, errlen,
                           "mms.max_connections");
        if (strcmp(key, "max_connections_per_address") == 0)
            return set_int(value, 1, 100000, &m->max_per_address, err, errlen,
                           "mms.max_connections_per_address");
        if (strcmp(key, "association_timeout") == 0)
            return set_int(value, 1, 300, &m->assoc_timeout_s, err, errlen,
                           "mms.association_timeout");
        if (strcmp(key, "idle_timeout") == 0)
            return set_int(value, 5, 86400, &m->idle_timeout_s, err, errlen, "mms.idle_timeout");
        if (strcmp(key, "client_queue_kb") == 0)
            return set_int(value, 256, 65536, &m->queue_kb, err, errlen, "mms.client_queue_kb");
        if (strcmp(key, "max_pdu_size") == 0)
            return set_int(value, 1024, 65000, &m->max_pdu, err, errlen, "mms.max_pdu_size");
        if (strcmp(key, "thread_nice") == 0)
            return set_int(value, 0, 19, &m->nice, err, errlen, "mms.thread_nice");
        if (strcmp(key, "files_max_mb") == 0)
            return set_int(value, 0, 65536, &m->files_max_mb, err, errlen, "mms.files_max_mb");
        if (strcmp(key, "ied_name") == 0) {
            /* IEC 61850-7-2 / 6: letters, digits, '_', starting with a letter; the LD names are
             * IED name + LD inst within the 64-character MMS identifier (the model checks the
             * rest) */
            size_t n = strlen(value);
            int ok = n >= 1 && n < sizeof m->ied_name &&
                     ((value[0] >= 'A' && value[0] <= 'Z') || (value[0] >= 'a' && value[0] <= 'z'));
            for (size_t i = 0; ok && i < n; i++)
                ok = (value[i] >= 'A' && value[i] <= 'Z') || (value[i] >= 'a' && value[i] <= 'z') ||
                     (value[i] >= '0' && value[i] <= '9') || value[i] == '_';
            if (!ok) {
                snprintf(err, errlen,
                         "mms.ied_name must be 1..%zu letters, digits or '_' starting with a "
                         "letter, got '%s'",
                         sizeof m->ied_name - 1, value);
                return GS_ECONFIG;
            }
            snprintf(m->ied_name, sizeof m->ied_name, "%s", value);
            return 0;
        }
        if (strcmp(key, "password_file") == 0) {
            if (strlen(value) >= sizeof m->password_file) {
                snprintf(err, errlen, "mms.password_file: path longer than %zu bytes",
                         sizeof m->password_file - 1);
                return GS_ECONFIG;
            }
            snprintf(m->password_file, sizeof m->password_file, "%s", value);
            return 0;
        }
        if (strcmp(key, "auth_failure") == 0) {
            if (strcmp(value, "reject") == 0 || strcmp(value, "close") == 0) {
                m->auth_fail_silent = value[0] == 'c';
                return 0;
            }
            snprintf(err, errlen, "mms.auth_failure must be reject or close, got '%s'", value);
            return GS_ECONFIG;
        }
    } else if (strcmp(section, "web") == 0) {
        if (strcmp(key, "root") == 0) {
            if (strlen(value) >= sizeof c->web_root) {
                snprintf(err, errlen, "web.root: path longer than %zu bytes",
                         sizeof c->web_root - 1);
                return GS_ECONFIG;
            }
            snprintf(c->web_root, sizeof c->web_root, "%s", value);
            return 0;
        }
        if (strcmp(key, "tiles") == 0 || strcmp(key, "tiles_attribution") == 0) {
            int t = key[5] == 0;
            char *dst = t ? c->web_tiles : c->web_tiles_attr;
            size_t cap = t ? sizeof c->web_tiles : sizeof c->web_tiles_attr;
            if (strlen(value) >= cap) {
                snprintf(err, errlen, "web.%s: longer than %zu bytes", key, cap - 1);
                return GS_ECONFIG;
            }
            if (t && value[0] &&
                (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)) {
                snprintf(err, errlen,
                         "web.tiles must be an http(s) URL template such as "
                         "https://tiles.example.net/{z}/{x}/{y}.png, got '%s'",
                         value);
                return GS_ECONFIG;
            }
            snprintf(dst, cap, "%s", value);
            return 0;
        }
    } else if (strcmp(section, "store") == 0) {
        if (strcmp(key, "sync") == 0) {
            if (strcmp(value, "full") == 0)
                c->sync_full = 1;
            else if (strcmp(value, "normal") == 0)
                c->sync_full = 0;
            else {
                snprintf(err, errlen, "store.sync must be full or normal, got '%s'", value);
                return GS_ECONFIG;
            }
            return 0;
        }
        if (strcmp(key, "backend") == 0) {
            if (strcmp(value, "sqlite") == 0)
                c->store_pg = 0;
            else if (strcmp(value, "postgresql") == 0)
                c->store_pg = 1;
            else {
                snprintf(err, errlen, "store.backend must be sqlite or postgresql, got '%s'",
                         value);
                return GS_ECONFIG;
            }
            return 0;
        }
        if (strcmp(key, "url") == 0) {
            /* The URL itself is never echoed: it may carry a password. */
            if (strlen(value) >= sizeof c->store_url) {
                snprintf(err, errlen, "store.url: longer than %zu bytes", sizeof c->store_url - 1);
                return GS_ECONFIG;
            }
            if (value[0] && strncmp(value, "postgresql://", 13) != 0 &&
                strncmp(value, "postgres://", 11) != 0) {
                snprintf(err, errlen,
                         "store.url must be a PostgreSQL URI (postgresql://host/dbname?...)");
                return GS_ECONFIG;
            }
            snprintf(c->store_url, sizeof c->store_url, "%s", value);
            return 0;
        }
    } else if (strcmp(section, "cluster") == 0) {
        if (strcmp(key, "node_id") == 0) {
            size_t n = strlen(value);
            if (n >= sizeof c->node_id) {
                snprintf(err, errlen, "cluster.node_id: longer than %zu bytes",
                         sizeof c->node_id - 1);
                return GS_ECONFIG;
            }
            for (size_t i = 0; i < n; i++) {
                char ch = value[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
                      ch == ':')) {
                    snprintf(err, errlen,
                             "cluster.node_id may hold only letters, digits and - _ . :");
                    return GS_ECONFIG;
                }
            }
            snprintf(c->node_id, sizeof c->node_id, "%s", value);
            return 0;
        }
        if (strcmp(key, "heartbeat") == 0)
            return set_int(value, 1, 300, &c->node_heartbeat_s, err, errlen, "cluster.heartbeat");
        if (strcmp(key, "stale") == 0)
            return set_int(value, 2, 3600, &c->node_stale_s, err, errlen, "cluster.stale");
    } else if (strcmp(section, "analysis") == 0) {
        if (strcmp(key, "workers") == 0)
            return set_int(value, 0, 256, &c->dsp_workers, err, errlen, "analysis.workers");
        if (strcmp(key, "queue_mb") == 0)
            return set_int(value, 1, 65536, &c->dsp_queue_mb, err, errlen, "analysis.queue_mb");
        if (strcmp(key, "dc_removal") == 0) {
            if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
                c->dsp_keep_dc = 0;
            else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
                c->dsp_keep_dc = 1;
            else {
                snprintf(err, errlen, "analysis.dc_removal must be true or false, got '%s'", value);
                return GS_ECONFIG;
            }
            return 0;
        }
        if (strcmp(key, "phasor_rate") == 0)
            return set_rate(value, 0, &c->phasor_rate, err, errlen, "analysis.phasor_rate");
        if (strcmp(key, "phasor_rate_50") == 0)
            return set_rate(value, 50, &c->phasor_rate_50, err, errlen, "analysis.phasor_rate_50");
        if (strcmp(key, "phasor_rate_60") == 0)
            return set_rate(value, 60, &c->phasor_rate_60, err, errlen, "analysis.phasor_rate_60");
        if (strcmp(key, "enabled") == 0) {
            if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
                c->analysis_off = 0;
            else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
                c->analysis_off = 1;
            else {
                snprintf(err, errlen, "analysis.enabled must be true or false, got '%s'", value);
                return GS_ECONFIG;
            }
            return 0;
        }
        if (strcmp(key, "backfill") == 0) {
            if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
                c->backfill_off = 0;
            else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
                c->backfill_off = 1;
            else {
                snprintf(err, errlen, "analysis.backfill must be true or false, got '%s'", value);
                return GS_ECONFIG;
            }
            return 0;
        }
        if (strcmp(key, "backfill_idle_s") == 0)
            return set_int(value, 1, 86400, &c->backfill_idle_s, err, errlen,
                           "analysis.backfill_idle_s");
        if (strcmp(key, "backfill_grace_s") == 0)
            return set_int(value, 1, 86400, &c->backfill_grace_s, err, errlen,
                           "analysis.backfill_grace_s");
    } else if (strcmp(section, "history") == 0) {
        /* Each value alone here; how they go together (event_days >= raw_days ...) is checked
         * once the whole file is read (config_check_history). */
        store_retention_t *h = &c->history;
        const struct {
            const char *key;
            int *v, max;
        } keys[] = {{"raw_days", &h->raw_days, 36500},
                    {"event_days", &h->event_days, 36500},
                    {"event_pre_s", &h->event_pre_s, 3600},
                    {"event_post_s", &h->event_post_s, 3600},
                    {"status_days", &h->status_days, 36500},
                    {"events_days", &h->events_days, 36500},
                    {"aggregates_days", &h->aggregates_days, 36500},
                    {"sessions_days", &h->sessions_days, 36500},
                    {"audit_days", &h->audit_days, 36500},
                    {"pyramid_fine_days", &h->pyramid_fine_days, 36500},
                    {"batch_rows", &h->batch_rows, 100000},
                    {"interval", &c->history_interval_s, 86400}};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            if (strcmp(key, keys[i].key) != 0)
                continue;
            char what[48];
            snprintf(what, sizeof what, "history.%s", key);
            int min = strcmp(key, "interval") == 0 || strcmp(key, "batch_rows") == 0 ? 1 : 0;
            return set_int(value, min, keys[i].max, keys[i].v, err, errlen, what);
        }
    } else if (strcmp(section, "security") == 0) {
        if (strcmp(key, "master_key_file") == 0) {
            if (!*value || strlen(value) >= sizeof c->master_key_file) {
                snprintf(err, errlen, "security.master_key_file must be a file path");
                return GS_ECONFIG;
            }
            snprintf(c->master_key_file, sizeof c->master_key_file, "%s", value);
            return 0;
        }
    } else {
        snprintf(err, errlen, "unknown section [%s]", section);
        return GS_ECONFIG;
    }
    snprintf(err, errlen, "unknown setting '%s' in [%s]", key, section);
    return GS_ECONFIG;
}

typedef struct {
    config_t *c;
    FILE *f;
    int line;     /* line number of the text handed to libinih last */
    int at_start; /* the next read starts a new line */
    int err_line; /* line of the first rejected setting */
    char err[256];
} ini_ctx_t;

/* libinih reader that counts lines, so a rejected setting is reported with its own line even
 * when libinih's return value names an earlier syntax error. */
static char *read_line(char *str, int num, void *stream)
{
    ini_ctx_t *x = stream;
    char *r = fgets(str, num, x->f);
    if (r) {
        if (x->at_start)
            x->line++;
        size_t n = strlen(r);
        x->at_start = n > 0 && r[n - 1] == '\n';
    }
    return r;
}

static int ini_cb(void *ud, const char *section, const char *name, const char *value)
{
    ini_ctx_t *x = ud;
    if (x->err[0])
        return 1;
    if (config_set(x->c, section, name, value, x->err, sizeof x->err) < 0) {
        x->err_line = x->line;
        return 0;
    }
    return 1;
}

int config_load(config_t *c, const char *path, char *err, size_t errlen)
{
    ini_ctx_t x = {.c = c, .at_start = 1};
    struct stat sb;
    x.f = fopen(path, "r");
    if (!x.f) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return GS_ECONFIG;
    }
    if (fstat(fileno(x.f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(x.f);
        snprintf(err, errlen, "config file %s is not a regular file", path);
        return GS_ECONFIG;
    }
    int rc = ini_parse_stream(read_line, &x, ini_cb, &x);
    fclose(x.f);
    /* rc is the first line libinih objected to: a syntax error or a line we rejected. */
    if (rc != 0 && (!x.err[0] || rc < x.err_line)) {
        if (rc < 0)
            snprintf(err, errlen, "%s: cannot parse", path);
        else
            snprintf(err, errlen, "%s:%d: syntax error", path, rc);
        return GS_ECONFIG;
    }
    if (x.err[0]) {
        snprintf(err, errlen, "%s:%d: %s", path, x.err_line, x.err);
        return GS_ECONFIG;
    }
    if (c->store_pg && !c->store_url[0]) {
        snprintf(err, errlen, "%s: [store] backend = postgresql needs url = postgresql://...",
                 path);
        return GS_ECONFIG;
    }
    /* A password in the URL is a secret: refuse it in a file others can read (libpq's passfile
     * or PGPASSWORD keep it out of the configuration altogether). */
    if (c->store_url[0] && config_url_has_password(c->store_url) && (sb.st_mode & 077)) {
        snprintf(err, errlen,
                 "%s: [store] url carries a password but the file is readable by group/others "
                 "(chmod 600 it, or use libpq's passfile= / ~/.pgpass)",
                 path);
        return GS_ECONFIG;
    }
    snprintf(c->config_file, sizeof c->config_file, "%s", path);
    return 0;
}

int config_url_has_password(const char *url)
{
    /* postgresql://user:password@host/... or ?password=... (libpq URI forms). */
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    const char *end = p + strcspn(p, "/?");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at && memchr(p, ':', (size_t)(at - p)))
        return 1;
    const char *q = strchr(url, '?');
    return q && (strstr(q, "password=") != NULL);
}

void config_url_redact(const char *url, char *out, size_t cap)
{
    /* Keeps scheme, user, host and database; drops the password and every query parameter
     * (they may carry password= or sslpassword=). */
    const char *p = strstr(url, "://");
    if (!p || cap == 0) {
        snprintf(out, cap, "%s", cap ? "(url)" : "");
        return;
    }
    p += 3;
    size_t hlen = strcspn(p, "?");
    const char *at = memchr(p, '@', strcspn(p, "/?"));
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon)
        snprintf(out, cap, "%.*s%.*s:***%.*s", (int)(p - url), url, (int)(colon - p), p,
                 (int)(p + hlen - at), at);
    else
        snprintf(out, cap, "%.*s", (int)(p - url + hlen), url);
}

int config_check_history(const config_t *c, char *err, size_t errlen)
{
    char why[256];
    if (store_retention_check(&c->history, why, sizeof why) < 0) {
        snprintf(err, errlen, "[history] %s", why);
        return GS_ECONFIG;
    }
    return 0;
}

int config_common_opt(config_t *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    char err[512];
    if (strcmp(a, "--config") && strcmp(a, "--data") && strcmp(a, "--log-level"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "gridsense: option %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(a, "--config") == 0) {
        /* Already loaded by config_prescan, so that flags override the file. */
    } else if (strcmp(a, "--data") == 0) {
        if (config_set(c, "server", "data", v, err, sizeof err) < 0) {
            fprintf(stderr, "gridsense: --data: %s\n", err);
            return -1;
        }
    } else {
        if (config_set(c, "server", "log_level", v, err, sizeof err) < 0) {
            fprintf(stderr, "gridsense: --log-level: %s\n", err);
            return -1;
        }
    }
    return 1;
}

int config_prescan(config_t *c, int argc, char **argv)
{
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gridsense: option --config needs a value\n");
                return -1;
            }
            if (config_load(c, argv[i + 1], err, sizeof err) < 0) {
                fprintf(stderr, "gridsense: %s\n", err);
                return -1;
            }
            i++;
        }
    }
    return 0;
}
