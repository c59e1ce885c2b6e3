/* gridsense: the server (`serve`) and its admin subcommands. */
#include "cli.h"

#include "cluster/cluster.h"

#include "core/err.h"
#include "core/xcall.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "gridsense %s - server for CT/VT measurement terminals\n"
            "\n"
            "Usage: gridsense COMMAND [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  serve                      run the server (see gridsense serve --help)\n"
            "  terminal add|list|set|remove|rotate-secret\n"
            "                             provision terminals (see gridsense terminal --help)\n"
            "  command send|list          commands to terminals (see gridsense command --help)\n"
            "  key show|rotate|reset      the master key sealing terminal secrets (see gridsense\n"
            "                             key --help)\n"
            "  user add|list|passwd|set-role|remove\n"
            "                             people who use the HTTP API (see gridsense user --help)\n"
            "  token create|list|revoke   API tokens for scripts (see gridsense token --help)\n"
            "  audit list                 who changed what, when (see gridsense audit --help)\n"
            "  db backup|restore|stats    copy the database while the server runs, put a copy\n"
            "                             back; disk use per table and terminal (see gridsense\n"
            "                             db --help)\n"
            "  pyramid rebuild ID         recompute a terminal's waveform summary from its blocks\n"
            "  routes                     every HTTP route with the least role it needs\n"
            "  analyze FILE.cfg           IEC 61000-4-30 / C37.118 analysis of a COMTRADE record\n"
            "                             (see gridsense analyze --help)\n"
            "  export comtrade|csv ID     a stored range as COMTRADE or CSV (see gridsense export\n"
            "                             --help)\n"
            "  reanalyze ID --from T --to T\n"
            "                             rebuild a terminal's events and aggregates from its\n"
            "                             stored blocks (see gridsense reanalyze --help)\n"
            "  mms scl [--out FILE]       the IEC 61850 model as an SCL file (see gridsense mms\n"
            "                             --help)\n"
            "  --version                  print the version\n"
            "  --help                     this text\n"
            "\n"
            "Every command takes --data DIR (default ./data), --config FILE and --log-level.\n",
            GS_VERSION);
}

static void serve_usage(FILE *f)
{
    fprintf(f, "Usage: gridsense serve [OPTIONS]\n"
               "\n"
               "Runs the server on embedded defaults unless told otherwise. Precedence: defaults,\n"
               "then the config file, then these flags.\n"
               "\n"
               "  --config FILE          INI file (sections [server] [terminals] [commands]\n"
               "                         [http] [store] [analysis] [security] [history] [mms],\n"
               "                         see docs/operations.md)\n"
               "  --data DIR             data directory holding gridsense.db (default ./data)\n"
               "  --terminals ADDR:PORT  terminal (GSTP) listener (default 0.0.0.0:7100)\n"
               "  --http ADDR:PORT       HTTP API and metrics listener (default 127.0.0.1:8080)\n"
               "  --mms ADDR:PORT        enable the IEC 61850 MMS server on ADDR:PORT ([mms]\n"
               "                         enabled = true, listen; off by default; 102 is the\n"
               "                         field port, 10102 the default)\n"
               "  --log-level LEVEL      error|warn|info|debug|trace (default info)\n"
               "  --heartbeat S          PING interval in seconds, 5..600; 3 unanswered in a\n"
               "                         row close a session (default 30)\n"
               "  --ack-window N         unacknowledged blocks per terminal, 1..4096\n"
               "                         (default 64)\n"
               "  --max-per-ip N         connections per IPv4 address or IPv6 /64\n"
               "                         ([terminals] max_connections_per_address; default\n"
               "                         0 = the --max-connections value)\n"
               "  --max-connections N    terminal connections in total (default 19000)\n"
               "  --sync full|normal     full: acknowledged data survives power loss (default);\n"
               "                         normal: survives a process crash only, faster\n"
               "  --dsp-workers N        analysis threads (default: one per CPU)\n"
               "  --no-analysis          store and acknowledge waveforms without analysing them\n"
               "                         (they wait in the analysis backlog, analysed later by\n"
               "                         the backfill when the analysis runs again)\n"
               "  --port-file FILE       write {\"terminals\":P,\"http\":P} once listening (for\n"
               "                         scripts using port 0), with \"mms\":P when enabled\n"
               "  --help                 this text\n"
               "\n"
               "Retention ([history]): raw waveforms are deleted 30 days after they were stored\n"
               "(except around voltage events and captures, kept forever by default); status,\n"
               "events and aggregates are kept forever unless set. `gridsense db stats` shows\n"
               "the disk use.\n"
               "\n"
               "Signals: SIGINT/SIGTERM stop gracefully (everything received is committed and\n"
               "acknowledged first); a second signal exits at once.\n");
}

/* ---- serve ------------------------------------------------------------------------------------
 */

typedef struct webthr webthr_t;

typedef struct {
    uv_loop_t *loop;
    gw_t *gw;
    ana_t *ana;
    web_t *web;   /* HTTP on the main loop ([http] thread = off), else NULL */
    webthr_t *wt; /* HTTP on its own thread ([http] thread = on, the default), else NULL */
    api_t *api;
    uv_signal_t sigint, sigterm;
    int signals_on; /* sigint/sigterm initialised (closed when the gateway has stopped) */
    int stopping;
    store_t *st;                 /* the store (its writer runs the retention passes) */
    store_retention_t retention; /* [history] */
    uv_timer_t retention_timer;  /* submits a retention pass every [history] interval */
    int retention_on;
    cluster_t *cluster; /* [store] backend = postgresql: this node among several, else NULL */
    mmsd_t *mmsd;       /* [mms] enabled: the MMS server (its own thread), else NULL */
} server_t;

/* A retention pass (store_retention_submit): a no-op while the last one still runs. */
static void retention_tick(uv_timer_t *t)
{
    server_t *sv = t->data;
    int rc = store_retention_submit(sv->st, &sv->retention);
    if (rc < 0 && rc != GS_EBUSY)
        log_warn(NULL, "retention pass not started: %s", err_str(rc));
}

/* Starts the retention timer when [history] deletes anything. */
static void retention_start(server_t *sv, const config_t *c)
{
    const store_retention_t *h = &c->history;
    if (!h->raw_days && !h->event_days && !h->status_days && !h->events_days &&
        !h->aggregates_days && !h->sessions_days && !h->audit_days) {
        log_info(NULL, "retention: everything is kept ([history] sets no limit)");
        return;
    }
    sv->retention = *h;
    uv_timer_init(sv->loop, &sv->retention_timer);
    sv->retention_timer.data = sv;
    /* The first pass soon after the start (whatever was due while the server was down), then
     * every interval. */
    uint64_t first = c->history_interval_s < 10 ? (uint64_t)c->history_interval_s * 1000 : 10000;
    uv_timer_start(&sv->retention_timer, retention_tick, first,
                   (uint64_t)c->history_interval_s * 1000);
    sv->retention_on = 1;
    log_info(NULL,
             "retention: raw %d d, event windows (-%d s/+%d s) and captures %d d, status %d d, "
             "events %d d, aggregates %d d, sessions %d d, audit %d d, pyramid 1 s/10 s %d d "
             "(0 = forever); a pass every %d s",
             h->raw_days, h->event_pre_s, h->event_post_s, h->event_days, h->status_days,
             h->events_days, h->aggregates_days, h->sessions_days, h->audit_days,
             store_retention_fine_days(h), c->history_interval_s);
}

static void gw_stopped(void *ud)
{
    server_t *sv = ud;
    if (sv->cluster) /* after the gateway: its last sessions' releases are queued */
        cluster_stop(sv->cluster, NULL, NULL);
    if (!sv->signals_on)
        return; /* a start that failed before the signals were set up */
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
}

/* The gateway's block observer: the analysis, then the live feed's waveform view. */
static int on_block(void *ud, const char *terminal_id, const gw_block_info_t *b,
                    const uint8_t *samples, size_t len)
{
    server_t *sv = ud;
    /* not analysed (analysis off or skipped): the store keeps it in the analysis backlog */
    int pending = sv->ana ? ana_block(sv->ana, terminal_id, b, samples, len) : STORE_ANA_SKIPPED;
    if (sv->api)
        api_live_block(sv->api, terminal_id, b, samples, len);
    return pending;
}

/* The analysis' result and event observers have one slot each: the live feed and the MMS
 * model both take them (main loop). */
static void on_result(void *ud, const char *terminal_id, const char *kind, const char *json)
{
    server_t *sv = ud;
    if (sv->api)
        api_live_result(sv->api, terminal_id, kind, json);
    if (sv->mmsd && strcmp(kind, "latest") == 0)
        mmsd_post_latest(sv->mmsd, terminal_id, json);
}

static void on_event(void *ud, const char *terminal_id, int64_t event_id)
{
    server_t *sv = ud;
    if (sv->api)
        api_live_event(sv->api, terminal_id, event_id);
    if (sv->mmsd)
        mmsd_post_event(sv->mmsd, terminal_id, event_id);
}

/* The gateway's terminal observer: the MMS model's terminal list (online, status). */
static void on_term(void *ud, int event, const gw_term_info_t *ti)
{
    server_t *sv = ud;
    (void)event;
    (void)ti;
    mmsd_terminals_changed(sv->mmsd);
}

/* Stops what runs on the main loop, once HTTP is gone. */
static void stop_backend(server_t *sv)
{
    if (sv->retention_on) { /* (a running pass ends at its next step: the writer stops) */
        uv_close((uv_handle_t *)&sv->retention_timer, NULL);
        sv->retention_on = 0;
    }
    gw_set_block_observer(sv->gw, NULL, NULL);
    gw_set_command_observer(sv->gw, NULL, NULL);
    gw_set_term_observer(sv->gw, NULL, NULL);
    if (sv->ana) {
        ana_set_result_observer(sv->ana, NULL, NULL);
        ana_set_event_observer(sv->ana, NULL, NULL);
    }
    /* MMS before the analysis and the gateway (like HTTP): nothing feeds it any more; its
     * associations are aborted and its thread joined. */
    mmsd_stop(sv->mmsd);
    sv->mmsd = NULL;
    /* Analysis first: its last results (events, partial aggregates) still reach the store,
     * whose writer the gateway stops after committing everything received. */
    if (sv->ana) {
        gw_set_block_observer(sv->gw, NULL, NULL);
        ana_stop(sv->ana);
    }
    gw_stop(sv->gw, gw_stopped, sv);
}

/* ---- HTTP on a loop thread of its own ([http] thread = on) --------------------------------------
 *
 * docs/decisions/0006-web-thread.md. The web thread runs lws, the API (api_handle, the live feed)
 * and its loop; the main loop keeps the gateway, the analysis results and the store completions.
 * The API reads the database through a reader connection of its own (store_opts_t.reader_only),
 * the gateway and the analysis through their thread-safe snapshot calls, and acts on the main
 * loop through an xcall queue (src/api: api_opts_t.main_q).
 *
 * Stop: a signal on the main loop posts the stop call to the web thread (web_stop, api_stop, the
 * web queue closes); its loop ends, the thread frees lws and posts "stopped" to the main loop,
 * which joins it and only then stops the analysis and the gateway. */
struct webthr {
    server_t *sv;
    uv_loop_t loop;
    uv_thread_t thread;
    xcall_t *calls;      /* onto the web loop (the stop call); the main thread holds it, so that
                            it may post after the web thread closed it (GS_ECLOSED) */
    xcall_t *main_calls; /* onto the main loop (the API's calls, "stopped"); closed by main */
    uv_sem_t started;
    /* start parameters (main thread, before the thread runs) */
    const char *host;
    int port;
    int nice; /* [http] thread_nice */
    web_opts_t opts;
    /* results of the start (read by main after `started`) */
    int start_rc;
    char err[256];
    int bound_port;
    web_t *web;  /* web thread only once started */
    int loop_ok; /* loop initialised (closed at exit) */
};

/* Web thread: the stop call the main loop posts. */
static void web_thread_stop(void *arg, int status)
{
    webthr_t *wt = arg;
    (void)status; /* closing or not, the answer is the same: stop */
    web_stop(wt->web);
    api_stop(wt->sv->api);
    xcall_close(wt->calls); /* the loop ends once lws has closed its handles */
}

/* Main loop: the web thread has ended; join it and stop the rest. */
static void web_thread_stopped(void *arg)
{
    webthr_t *wt = arg;
    uv_thread_join(&wt->thread);
    /* Nothing posts to the main loop any more: the API's calls came from the web thread, which
     * has ended (its last post was this one). */
    xcall_close(wt->main_calls);
    wt->main_calls = NULL;
    xcall_release(wt->calls); /* (the web thread closed it; its memory goes with the hold) */
    stop_backend(wt->sv);
}

static void web_thread_main(void *arg)
{
    webthr_t *wt = arg;
    /* Linux schedules threads individually: a nicer web thread leaves the CPU to the gateway's
     * loop when both want it (the 2-core measurement in the decision record). */
    if (wt->nice > 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), wt->nice) != 0)
        log_warn(NULL, "cannot lower the web thread's priority: %s", strerror(errno));
    wt->start_rc = web_start_opts(&wt->loop, wt->host, wt->port, &wt->opts, api_handle,
                                  wt->sv->api, &wt->web, wt->err, sizeof wt->err);
    if (wt->start_rc == 0) {
        api_set_web(wt->sv->api, wt->web);
        wt->bound_port = web_port(wt->web);
    } else {
        api_stop(wt->sv->api);
        xcall_close(wt->calls); /* the loop ends once lws released what it had opened */
    }
    uv_sem_post(&wt->started);
    uv_run(&wt->loop, UV_RUN_DEFAULT);
    web_free(wt->web);
    wt->web = NULL;
    if (wt->start_rc == 0) /* after a failed start the main thread joins at once */
        xcall_post(wt->main_calls, web_thread_stopped, wt);
}

/* Starts the web thread (main thread); the API must already exist on wt->loop. Returns 0, or a
 * negative code with the reason in err (nothing left running). */
static int web_thread_start(webthr_t *wt, char *err, size_t errlen)
{
    int rc = xcall_open(&wt->loop, &wt->calls);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the web call queue: %s", uv_strerror(rc));
        return rc;
    }
    xcall_hold(wt->calls);
    uv_sem_init(&wt->started, 0);
    rc = uv_thread_create(&wt->thread, web_thread_main, wt);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the web thread: %s", uv_strerror(rc));
        uv_sem_destroy(&wt->started);
        xcall_close(wt->calls);
        api_stop(wt->sv->api);
        uv_run(&wt->loop, UV_RUN_DEFAULT); /* the close callbacks */
        xcall_release(wt->calls);
        return rc;
    }
    uv_sem_wait(&wt->started);
    uv_sem_destroy(&wt->started);
    if (wt->start_rc < 0) {
        uv_thread_join(&wt->thread);
        xcall_release(wt->calls);
        snprintf(err, errlen, "%s", wt->err);
        return wt->start_rc;
    }
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *sv = h->data;
    if (sv->stopping) {
        log_warn(NULL, "second signal: exiting now");
        _exit(1);
    }
    sv->stopping = 1;
    log_info(NULL, "%s received: shutting down (send again to exit at once)",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (sv->wt && xcall_post2(sv->wt->calls, web_thread_stop, sv->wt) == 0)
        return; /* the rest stops once the web thread has (web_thread_stopped) */
    if (sv->web)
        web_stop(sv->web);
    api_stop(sv->api);
    stop_backend(sv);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int write_port_file(const char *path, int tport, int hport, int mport)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    if (mport > 0)
        fprintf(f, "{\"terminals\":%d,\"http\":%d,\"mms\":%d}\n", tport, hport, mport);
    else
        fprintf(f, "{\"terminals\":%d,\"http\":%d}\n", tport, hport);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int cmd_serve(int argc, char **argv)
{
    config_t c;
    config_defaults(&c);
    char err[512];
    if (config_prescan(&c, argc, argv) < 0)
        return EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = config_common_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            serve_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--no-analysis") == 0) {
            c.analysis_off = 1;
            continue;
        }
        if (strcmp(a, "--analysis-skip-every") == 0 && i + 1 < argc) {
            /* testing (tests/integ/test_backfill.py): every Nth block of each terminal is
             * skipped for analysis as under overload; not in --help */
            if (parse_i64(argv[++i], 0, 1000000, &(int64_t){0}) < 0) {
                fprintf(stderr, "gridsense serve: --analysis-skip-every needs 0..1000000\n");
                return EXIT_USAGE;
            }
            c.ana_skip_every = atoi(argv[i]);
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "gridsense serve: %s '%s' (see --help)\n",
                    strncmp(a, "--", 2) ? "unexpected argument" : "missing value for", a);
            return EXIT_USAGE;
        }
        const char *v = argv[++i];
        const char *sec = NULL, *key = NULL;
        if (strcmp(a, "--terminals") == 0)
            sec = "terminals", key = "listen";
        else if (strcmp(a, "--http") == 0)
            sec = "http", key = "listen";
        else if (strcmp(a, "--mms") == 0) {
            sec = "mms", key = "listen";
            c.mms_enabled = 1;
        }
        else if (strcmp(a, "--heartbeat") == 0)
            sec = "terminals", key = "heartbeat";
        else if (strcmp(a, "--ack-window") == 0)
            sec = "terminals", key = "ack_window";
        else if (strcmp(a, "--max-per-ip") == 0)
            sec = "terminals", key = "max_per_ip";
        else if (strcmp(a, "--max-connections") == 0)
            sec = "terminals", key = "max_connections";
        else if (strcmp(a, "--sync") == 0)
            sec = "store", key = "sync";
        else if (strcmp(a, "--dsp-workers") == 0)
            sec = "analysis", key = "workers";
        else if (strcmp(a, "--port-file") == 0) {
            snprintf(c.port_file, sizeof c.port_file, "%s", v);
            continue;
        } else {
            fprintf(stderr, "gridsense serve: unknown option %s (see --help)\n", a);
            return EXIT_USAGE;
        }
        if (config_set(&c, sec, key, v, err, sizeof err) < 0) {
            fprintf(stderr, "gridsense serve: %s: %s\n", a, err);
            return EXIT_USAGE;
        }
    }
    if (config_check_history(&c, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense serve: %s\n", err);
        return EXIT_USAGE;
    }
    log_set_level(c.log_level);
    if (sodium_init() < 0) {
        log_error(NULL, "libsodium initialisation failed");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    /* Everything the server creates (the database's files, FFTW wisdom, the port file) is
     * private to its user whatever umask it was started with; the store sets its own files'
     * modes explicitly as well. */
    umask(umask(077) | 077);

    int rc = 1, dir_lock = -1;
    store_t *st = NULL, *rd = NULL;
    webthr_t *wt = NULL;
    server_t sv;
    memset(&sv, 0, sizeof sv);
    /* The loop thread owns the synchronous connection: read-only, so it never waits for the
     * write lock (every write goes through the store writer). */
    store_opts_t so = {.sync_full = c.sync_full,
                       .busy_timeout_ms = 5000,
                       .sync_read_only = 1,
                       .master_key_file = c.master_key_file[0] ? c.master_key_file : NULL,
                       .url = c.store_pg ? c.store_url : NULL};
    /* One server per data dir: a second one would hand out the same session ids and fight
     * over durable seqs, and `gridsense db restore` must know that none is running. The lock
     * goes with the process, however it ends. */
    if (mkdir(c.data_dir, 0700) != 0 && errno != EEXIST) {
        log_error(NULL, "cannot create %s: %s", c.data_dir, strerror(errno));
        return 1;
    }
    if (store_dir_lock(c.data_dir, &dir_lock, err, sizeof err) < 0) {
        log_error(NULL, "%s", err);
        return 1;
    }
    if (store_open(c.data_dir, &so, &st, err, sizeof err) < 0) {
        log_error(NULL, "%s", err);
        store_dir_unlock(dir_lock);
        return 1;
    }
    sv.loop = uv_default_loop();
    snprintf(c.gw.host, sizeof c.gw.host, "%s", c.term_host);
    c.gw.port = c.term_port;
    if (gw_start(sv.loop, st, &c.gw, &sv.gw, err, sizeof err) < 0) {
        log_error(NULL, "%s", err);
        uv_run(sv.loop, UV_RUN_NOWAIT); /* nothing else is on the loop yet: frees the listener */
        goto fail;
    }
    if (!c.analysis_off) {
        ana_opts_t ao;
        ana_opts_default(&ao);
        ao.workers = c.dsp_workers;
        ao.max_queue_bytes = (size_t)c.dsp_queue_mb << 20;
        ao.dc_removal = !c.dsp_keep_dc;
        ao.phasor_rate_50 = config_phasor_rate(&c, 50);
        ao.phasor_rate_60 = config_phasor_rate(&c, 60);
        ao.backfill = !c.backfill_off;
        if (c.backfill_idle_s > 0)
            ao.backfill_idle_s = c.backfill_idle_s;
        if (c.backfill_grace_s > 0)
            ao.backfill_grace_s = c.backfill_grace_s;
        ao.skip_every = c.ana_skip_every;
        snprintf(ao.data_dir, sizeof ao.data_dir, "%s", c.data_dir);
        if (c.store_pg)
            snprintf(ao.store_url, sizeof ao.store_url, "%s", c.store_url);
        if ((size_t)snprintf(ao.wisdom_path, sizeof ao.wisdom_path, "%s/fftw-wisdom", c.data_dir) >=
            sizeof ao.wisdom_path)
            ao.wisdom_path[0] = 0; /* data dir path too long: plan without saved wisdom */
        if (ana_start(sv.loop, st, &ao, &sv.ana, err, sizeof err) < 0) {
            log_error(NULL, "%s", err);
            gw_stop(sv.gw, NULL, NULL);
            uv_run(sv.loop, UV_RUN_DEFAULT);
            goto fail;
        }
    }
    if (c.store_pg) {
        /* Several nodes on one PostgreSQL database (docs/operations.md "Several nodes"): this
         * node's heartbeat, its sessions in the shared directory, displacement and command
         * notifications. Its own connections, on its own thread; never blocks the start. */
        char node[CLUSTER_NODE_MAX], host[CLUSTER_NODE_MAX - 8] = "localhost", redacted[1024];
        if (c.node_id[0]) {
            snprintf(node, sizeof node, "%s", c.node_id);
        } else {
            if (gethostname(host, sizeof host) != 0 || !host[0])
                snprintf(host, sizeof host, "localhost");
            host[sizeof host - 1] = '\0';
            snprintf(node, sizeof node, "%s:%d", host, gw_port(sv.gw));
        }
        cluster_opts_t co;
        cluster_opts_default(&co);
        co.url = c.store_url;
        co.node_id = node;
        co.heartbeat_s = c.node_heartbeat_s;
        co.stale_s = c.node_stale_s;
        config_url_redact(c.store_url, redacted, sizeof redacted);
        if (cluster_start(sv.loop, &co, &sv.cluster, err, sizeof err) < 0) {
            log_error(NULL, "%s", err);
            stop_backend(&sv); /* (gw_stopped stops the cluster's handles too) */
            uv_run(sv.loop, UV_RUN_DEFAULT);
            goto fail;
        }
        cluster_attach_gw(sv.cluster, sv.gw);
        log_info(NULL, "cluster: node %s on %s (heartbeat %d s, stale after %d s)", node,
                 redacted, c.node_heartbeat_s, c.node_stale_s);
    }
    gw_set_block_observer(sv.gw, on_block, &sv);
    sv.st = st;
    retention_start(&sv, &c); /* the gateway started the writer */
    /* HTTP gets the open files the terminal connections and the rest leave (web_start). */
    c.web.reserved_fds = c.gw.max_connections + 64;
    if (c.http_cert[0] || c.http_key[0]) {
        if (!c.http_cert[0] || !c.http_key[0]) {
            log_error(NULL, "[http] cert and key go together: set both, or neither for plain "
                            "HTTP");
            stop_backend(&sv);
            uv_run(sv.loop, UV_RUN_DEFAULT);
            goto fail;
        }
        c.web.tls_cert = c.http_cert;
        c.web.tls_key = c.http_key;
    }
    if (c.mms_enabled) {
        /* The MMS server on its own thread (docs/iec61850.md "Server"), before the API so that
         * /metrics can read its counters. */
        c.mms.data_dir = c.data_dir;
        c.mms.store_url = c.store_pg ? c.store_url : NULL;
        c.mms.version = GS_VERSION;
        c.mms.event_json = api_event_json;
        if (mmsd_start(&c.mms, sv.gw, &sv.mmsd, err, sizeof err) < 0) {
            log_error(NULL, "%s", err);
            stop_backend(&sv);
            uv_run(sv.loop, UV_RUN_DEFAULT);
            goto fail;
        }
    }
    uv_loop_t *api_loop = sv.loop;
    if (c.http_thread) {
        /* The web thread's own read-only connection (no key: it cannot open secrets). */
        store_opts_t ro = {.reader_only = 1,
                           .busy_timeout_ms = 1000,
                           .url = c.store_pg ? c.store_url : NULL};
        wt = xcalloc(1, sizeof *wt);
        wt->sv = &sv;
        wt->host = c.http_host;
        wt->port = c.http_port;
        wt->nice = c.http_thread_nice;
        wt->opts = c.web;
        int lrc = uv_loop_init(&wt->loop);
        wt->loop_ok = lrc == 0;
        if (lrc < 0 || store_open(c.data_dir, &ro, &rd, err, sizeof err) < 0 ||
            (lrc = xcall_open(sv.loop, &wt->main_calls)) < 0) {
            if (lrc < 0)
                snprintf(err, sizeof err, "cannot create the web loop: %s", uv_strerror(lrc));
            log_error(NULL, "%s", err);
            stop_backend(&sv);
            uv_run(sv.loop, UV_RUN_DEFAULT);
            goto fail;
        }
        api_loop = &wt->loop;
    }
    api_opts_t aop;
    api_opts_default(&aop);
    aop.gw = sv.gw;
    aop.st = rd ? rd : st;
    aop.writer = st;
    aop.main_q = wt ? wt->main_calls : NULL;
    aop.ana = sv.ana;
    aop.cluster = sv.cluster;
    aop.max_pending = c.gw.cmd_max_pending;
    aop.create_timeout_s = (int)(c.gw.cmd_create_timeout_ns / 1000000000LL);
    aop.bind_host = c.http_host;
    aop.hosts = c.http_hosts;
    aop.trusted_proxies = c.http_proxies;
    aop.session_idle_s = c.session_idle_s;
    aop.session_max_s = c.session_max_s;
    aop.metrics_public = c.metrics_public;
    aop.tls = c.http_cert[0] != 0;
    aop.web_root = c.web_root;
    aop.web_tiles = c.web_tiles;
    aop.web_tiles_attribution = c.web_tiles_attr;
    if (sv.mmsd) {
        aop.extra_metrics = mmsd_metrics;
        aop.extra_metrics_ud = sv.mmsd;
    }
    int hrc = api_new(api_loop, &aop, &sv.api, err, sizeof err);
    if (hrc == 0 && wt) {
        if ((hrc = web_thread_start(wt, err, sizeof err)) == 0)
            sv.wt = wt;
    } else if (hrc == 0) {
        hrc = web_start_opts(sv.loop, c.http_host, c.http_port, &c.web, api_handle, sv.api,
                             &sv.web, err, sizeof err);
        if (hrc < 0)
            api_stop(sv.api);
        else
            api_set_web(sv.api, sv.web);
    }
    if (hrc == 0) { /* the live feed's sources */
        gw_set_command_observer(sv.gw, api_live_command, sv.api);
        if (sv.ana) {
            ana_set_result_observer(sv.ana, on_result, &sv);
            ana_set_event_observer(sv.ana, on_event, &sv);
        }
        if (sv.mmsd)
            gw_set_term_observer(sv.gw, on_term, &sv);
    }
    if (hrc < 0) {
        log_error(NULL, "%s", err);
        if (wt && wt->main_calls) {
            xcall_close(wt->main_calls);
            wt->main_calls = NULL;
        }
        stop_backend(&sv);
        uv_run(sv.loop, UV_RUN_DEFAULT);
        goto fail;
    }
    uv_signal_init(sv.loop, &sv.sigint);
    uv_signal_init(sv.loop, &sv.sigterm);
    sv.signals_on = 1;
    sv.sigint.data = sv.sigterm.data = &sv;
    uv_signal_start(&sv.sigint, on_signal, SIGINT);
    uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
    int hport = sv.wt ? sv.wt->bound_port : web_port(sv.web);
    log_info(NULL, "gridsense %s: terminals on %s:%d, HTTP on %s://%s:%d/, data in %s",
             GS_VERSION, c.term_host, gw_port(sv.gw), c.http_cert[0] ? "https" : "http",
             c.http_host, hport, c.data_dir);
    if (c.port_file[0] &&
        write_port_file(c.port_file, gw_port(sv.gw), hport, sv.mmsd ? mmsd_port(sv.mmsd) : 0) < 0)
        log_warn(NULL, "cannot write port file %s", c.port_file);
    uv_run(sv.loop, UV_RUN_DEFAULT);
    log_info(NULL, "stopped cleanly");
    rc = 0;
fail:
    web_free(sv.web);
    ana_free(sv.ana);
    gw_free(sv.gw);
    cluster_free(sv.cluster);
    store_close(st); /* joins the writer: its last answers to the API are queued by now */
    api_free(sv.api); /* (answers posted to the main loop after it stopped are released) */
    if (wt) { /* its thread was joined (web_thread_stopped, or a failed start) */
        if (wt->loop_ok && uv_loop_close(&wt->loop) != 0)
            log_debug(NULL, "web loop closed with open handles");
        free(wt);
    }
    store_close(rd);
    if (uv_loop_close(sv.loop) != 0)
        log_debug(NULL, "loop closed with open handles");
    store_dir_unlock(dir_lock);
    return rc;
}

static void route_line(void *ud, const char *method, const char *pattern, const char *role)
{
    (void)ud;
    printf("%-6s %-42s %s\n", method, pattern, role);
}

/* `gridsense routes`: the server's route table (docs/api.md; the OpenAPI test reads it). */
static int cmd_routes(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "Usage: gridsense routes   (prints METHOD PATH ROLE per route)\n");
        return EXIT_USAGE;
    }
    api_routes(route_line, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    /* Every command may hash, seal or draw random numbers: initialise libsodium once here
     * (idempotent; it only fails without a usable random source). */
    if (sodium_init() < 0) {
        fprintf(stderr, "gridsense: libsodium cannot be initialised (no random source?)\n");
        return 1;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("gridsense %s\n", GS_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "terminal") == 0)
        return cmd_terminal(argc - 1, argv + 1);
    if (strcmp(cmd, "analyze") == 0)
        return cmd_analyze(argc - 1, argv + 1);
    if (strcmp(cmd, "command") == 0)
        return cmd_command(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0)
        return cmd_key(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0)
        return cmd_routes(argc - 1, argv + 1);
    if (strcmp(cmd, "user") == 0)
        return cmd_user(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return cmd_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "db") == 0)
        return cmd_db(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "reanalyze") == 0)
        return cmd_reanalyze(argc - 1, argv + 1);
    if (strcmp(cmd, "pyramid") == 0)
        return cmd_pyramid(argc - 1, argv + 1);
    if (strcmp(cmd, "mms") == 0)
        return cmd_mms(argc - 1, argv + 1);
    fprintf(stderr, "gridsense: unknown command '%s' (see gridsense --help)\n", cmd);
    return EXIT_USAGE;
}
