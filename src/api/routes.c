/* The route table, and the handlers of one terminal, command creation, analysis results, health
 * and /metrics (Prometheus text format). The terminal list and changes, command lists and cancel,
 * and events are in terminals.c, commands.c and events.c. */
#include "api/internal.h"

#include "core/log.h"

#include "core/err.h"
#include "gstp/gstp.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* A POST of a command waiting for the store writer. */
typedef struct {
    api_t *a;
    web_pending_t *pending;
    char tid[GSTP_MAX_ID + 1];
    char user[STORE_USER_MAX + 1], remote[64], detail[64]; /* for the audit row */
    /* the submission (read on the main loop) */
    int verb;
    uint8_t tlv[STORE_ARGS_MAX];
    size_t tlen;
    int64_t ttl_ns;
    /* the outcome (written on the main loop, read on the API's loop after the hand-over) */
    int rc;
    int64_t cmd_id;
    int sent;
} post_ctx_t;

void api__status_json(buf_t *b, const gw_term_info_t *ti)
{
    if (ti->has_status) {
        const gstp_status_t *s = &ti->status;
        buf_puts(b, "{");
        char tt[40];
        buf_printf(b, "\"received\":\"%s\"", time_fmt_utc(ti->status_received_ns, tt, sizeof tt));
        /* Every field is always present; one the terminal reported as not available (GSTP
         * sentinel) is null, so clients need no "missing key" case. */
        if (s->rsrp_dbm != GSTP_NA_I16)
            buf_printf(b, ",\"rsrp_dbm\":%d", s->rsrp_dbm);
        else
            buf_puts(b, ",\"rsrp_dbm\":null");
        if (s->rssi_dbm != GSTP_NA_I16)
            buf_printf(b, ",\"rssi_dbm\":%d", s->rssi_dbm);
        else
            buf_puts(b, ",\"rssi_dbm\":null");
        if (s->csq != 99)
            buf_printf(b, ",\"csq\":%u", s->csq);
        else
            buf_puts(b, ",\"csq\":null");
        if (s->supply_mv != GSTP_NA_U16)
            buf_printf(b, ",\"supply_v\":%.3f", s->supply_mv / 1000.0);
        else
            buf_puts(b, ",\"supply_v\":null");
        if (s->temp_c10 != GSTP_NA_I16)
            buf_printf(b, ",\"temperature_c\":%.1f", s->temp_c10 / 10.0);
        else
            buf_puts(b, ",\"temperature_c\":null");
        buf_printf(b,
                   ",\"uptime_s\":%u,\"gps_fix\":%u,\"gps_sats\":%u,\"time_quality\":%u,"
                   "\"buffer_permille\":%u,\"buffered_blocks\":%u}",
                   s->uptime_s, s->gps_fix, s->gps_sats, s->time_quality, s->buffer_permille,
                   s->buffered_blocks);
    } else {
        buf_puts(b, "null");
    }
}

/* One terminal: provisioning data from the store merged with the gateway's runtime state. */
/* A terminal whose session another live node holds (several nodes; 0 on a single node or when
 * it is online here), with that node's entry in *cl. */
static int held_elsewhere(api_t *a, const char *id, int online_here, cluster_live_t *cl)
{
    return a->cluster && !online_here && cluster_live_get(a->cluster, id, cl) == 0 && !cl->local &&
           cl->node_alive;
}

int api__terminal_online(api_t *a, const char *id)
{
    gw_term_info_t ti;
    cluster_live_t cl;
    int here = gw_term_info(a->gw, id, &ti) == 0 && ti.online;
    return here || held_elsewhere(a, id, here, &cl);
}

void api__terminal_json(api_t *a, buf_t *b, const store_terminal_t *t, int with_latest)
{
    gw_term_info_t ti;
    int seen = gw_term_info(a->gw, t->id, &ti) == 0;
    /* Several nodes: online on another node shows online, with that node and the session's
     * remote address and start as it published them (docs/api.md "Terminals"). */
    cluster_live_t cl;
    int other = held_elsewhere(a, t->id, seen && ti.online, &cl);
    buf_puts(b, "{\"id\":");
    buf_json_str(b, t->id, (size_t)-1);
    buf_puts(b, ",\"name\":");
    buf_json_str(b, t->name, (size_t)-1);
    if (t->has_location)
        buf_printf(b, ",\"location\":{\"lat\":%.6f,\"lon\":%.6f}", t->lat, t->lon);
    else
        buf_puts(b, ",\"location\":null");
    buf_printf(b, ",\"nominal_hz\":%d,\"vt_ratio\":%g,\"ct_ratio\":%g", t->nominal_hz, t->vt_ratio,
               t->ct_ratio);
    if (t->declared_v > 0)
        buf_printf(b, ",\"declared_voltage\":%.6g", t->declared_v);
    else
        buf_puts(b, ",\"declared_voltage\":null");
    buf_printf(b, ",\"online\":%s", (seen && ti.online) || other ? "true" : "false");
    if (a->cluster) { /* absent on a single node */
        buf_puts(b, ",\"node\":");
        if (other)
            buf_json_str(b, cl.node_id, (size_t)-1);
        else if (seen && ti.online)
            buf_json_str(b, cluster_node_id(a->cluster), (size_t)-1);
        else
            buf_puts(b, "null");
    }
    buf_puts(b, ",\"remote\":");
    if (other && cl.remote[0])
        buf_json_str(b, cl.remote, (size_t)-1);
    else if (!other && seen && ti.remote[0])
        buf_json_str(b, ti.remote, (size_t)-1);
    else
        buf_puts(b, "null");
    api__ts_json(b, "connected_since",
                 other ? cl.connected_since_ns : seen ? ti.connected_since_ns : 0);
    api__ts_json(b, "last_seen", seen ? ti.last_seen_ns : 0);
    buf_printf(b,
               ",\"frames\":%llu,\"blocks\":%llu,\"bytes\":%llu,\"reconnects\":%llu,"
               "\"duplicates\":%llu,\"durable_seq\":%llu",
               seen ? (unsigned long long)ti.frames : 0ULL,
               /* new blocks only: re-sent ones (already stored) are counted in duplicates */
               seen ? (unsigned long long)(ti.blocks - ti.duplicates) : 0ULL,
               seen ? (unsigned long long)ti.bytes : 0ULL,
               seen ? (unsigned long long)ti.reconnects : 0ULL,
               seen ? (unsigned long long)ti.duplicates : 0ULL,
               (unsigned long long)(seen && ti.durable_seq > t->durable_seq ? ti.durable_seq
                                                                            : t->durable_seq));
    if (seen && ti.sample_rate) {
        buf_printf(b, ",\"sample_rate\":%u,\"channels\":%d,\"firmware\":", ti.sample_rate,
                   ti.nchannels);
        buf_json_str(b, ti.fw_version, (size_t)-1);
        buf_puts(b, ",\"hardware\":");
        buf_json_str(b, ti.hw_version, (size_t)-1);
        /* Ratios as the terminal reported them at login (null: not reported); the provisioned
         * vt_ratio/ct_ratio above are the ones used, config_conflict flags a difference. */
        buf_puts(b, ",\"reported_vt_ratio\":");
        if (ti.hello_vt_ratio > 0)
            buf_printf(b, "%g", ti.hello_vt_ratio);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"reported_ct_ratio\":");
        if (ti.hello_ct_ratio > 0)
            buf_printf(b, "%g", ti.hello_ct_ratio);
        else
            buf_puts(b, "null");
        buf_printf(b, ",\"config_conflict\":%s", ti.config_conflict ? "true" : "false");
    } else {
        buf_puts(b,
                 ",\"sample_rate\":null,\"channels\":null,\"firmware\":null,\"hardware\":null,"
                 "\"reported_vt_ratio\":null,\"reported_ct_ratio\":null,\"config_conflict\":null");
    }
    buf_puts(b, ",\"status\":");
    if (seen)
        api__status_json(b, &ti);
    else
        buf_puts(b, "null");
    if (with_latest) {
        ana_term_state_t as;
        if (a->ana && ana_term_state(a->ana, t->id, &as) == 0)
            buf_printf(b, ",\"analysis\":{\"behind\":%s,\"blocks_skipped\":%llu,\"delay_s\":%.3f}",
                       as.behind ? "true" : "false", (unsigned long long)as.skipped, as.delay_s);
        else
            buf_puts(b, ",\"analysis\":null");
        buf_puts(b, ",\"latest\":");
        if (!a->ana || ana_latest_json(a->ana, t->id, b) < 0)
            buf_puts(b, "null");
    }
    buf_puts(b, "}");
}

typedef struct {
    api_t *a;
    buf_t *b;
    int n;
    int full;        /* stopped at the reply size limit */
    int64_t last_ns; /* end time of the last row written */
} list_ctx_t;

static void metric(buf_t *b, const char *name, const char *type, const char *help, double v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* Writes scalar metrics from a table: one place per metric for its name, type and help. */
typedef struct {
    const char *name, *type, *help;
    double v;
} metric_t;

static void metric_table(buf_t *b, const metric_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        metric(b, m[i].name, m[i].type, m[i].help, m[i].v);
}

/* The HTTP front's own counters (web_stats): its connections and the answers it gives itself
 * before a request reaches the API (see docs/operations.md, HTTP connections). */
static void http_metrics(web_t *w, buf_t *b)
{
    web_stats_t ws;
    web_stats(w, &ws);
    const metric_t m[] = {
        {"gridsense_http_connections_open", "gauge", "Open HTTP connections.", (double)ws.open},
        {"gridsense_http_connections_max", "gauge",
         "HTTP connection cap in force (after the open-file limit).", (double)ws.max_connections},
        {"gridsense_http_connections_total", "counter", "Accepted HTTP connections.",
         (double)ws.accepted},
        {"gridsense_http_connections_evicted_total", "counter",
         "Idle HTTP connections closed to make room for a new one at a cap.", (double)ws.evicted},
        {"gridsense_http_request_timeouts_total", "counter",
         "HTTP connections closed because a request head did not arrive in time.",
         (double)ws.timed_out},
        {"gridsense_http_heads_rewritten_total", "counter",
         "Request heads passed on with header lines libwebsockets cannot parse dropped.",
         (double)ws.heads_rewritten},
    };
    metric_table(b, m, sizeof m / sizeof m[0]);
    buf_printf(b,
               "# HELP gridsense_http_connections_refused_total HTTP connections closed at once "
               "at a cap with nothing idle to evict, by cap.\n"
               "# TYPE gridsense_http_connections_refused_total counter\n"
               "gridsense_http_connections_refused_total{cap=\"address\"} %llu\n"
               "gridsense_http_connections_refused_total{cap=\"total\"} %llu\n",
               (unsigned long long)ws.refused_per_address,
               (unsigned long long)(ws.refused - ws.refused_per_address));
    buf_printf(b,
               "# HELP gridsense_http_front_responses_total Answers the HTTP front gives itself "
               "before the API sees a request, by status.\n"
               "# TYPE gridsense_http_front_responses_total counter\n"
               "gridsense_http_front_responses_total{code=\"400\"} %llu\n"
               "gridsense_http_front_responses_total{code=\"408\"} %llu\n"
               "gridsense_http_front_responses_total{code=\"414\"} %llu\n"
               "gridsense_http_front_responses_total{code=\"431\"} %llu\n",
               (unsigned long long)ws.answered_400, (unsigned long long)ws.answered_408,
               (unsigned long long)ws.answered_414, (unsigned long long)ws.answered_431);
    const metric_t wsm[] = {
        {"gridsense_ws_connections_open", "gauge", "Open WebSocket (live feed) connections.",
         (double)ws.ws_open},
        {"gridsense_ws_accepted_total", "counter", "WebSocket upgrades completed.",
         (double)ws.ws_accepted},
        {"gridsense_ws_refused_total", "counter", "WebSocket upgrades refused.",
         (double)ws.ws_refused},
        {"gridsense_ws_messages_sent_total", "counter", "WebSocket messages written.",
         (double)ws.ws_msgs_sent},
        {"gridsense_ws_bytes_sent_total", "counter", "WebSocket message bytes written.",
         (double)ws.ws_bytes_sent},
        {"gridsense_ws_dropped_total", "counter",
         "Droppable messages (waveform frames) dropped at a client's send queue cap.",
         (double)ws.ws_dropped},
        {"gridsense_ws_coalesced_total", "counter",
         "Messages that replaced a queued older value of their topic.", (double)ws.ws_coalesced},
        {"gridsense_ws_closed_slow_total", "counter",
         "WebSocket connections closed for a send queue over its cap (1008).",
         (double)ws.ws_closed_slow},
        {"gridsense_ws_closed_ping_total", "counter",
         "WebSocket connections closed for an unanswered ping.", (double)ws.ws_closed_ping},
    };
    metric_table(b, wsm, sizeof wsm / sizeof wsm[0]);
}

void api__metrics(rq_t *q)
{
    api_t *a = q->a;
    web_response_t *r = q->resp;
    gw_stats_t s;
    gw_stats(a->gw, &s);
    store_writer_stats_t ws;
    store_writer_stats(a->writer, &ws);
    buf_t *b = &r->body;
    const metric_t head[] = {
        {"gridsense_connections_open", "gauge", "Open terminal TCP connections.",
         (double)s.connections_open},
        {"gridsense_connections_total", "counter", "Accepted terminal connections.",
         (double)s.connections_total},
        {"gridsense_connections_refused_total", "counter",
         "Connections refused by connection limits.", (double)s.connections_refused},
        {"gridsense_terminals_online", "gauge", "Authenticated terminal sessions.",
         (double)s.online},
        {"gridsense_handshakes_ok_total", "counter", "Successful terminal logins.",
         (double)s.handshakes_ok},
        {"gridsense_handshakes_failed_total", "counter", "Refused terminal logins.",
         (double)s.handshakes_failed},
    };
    metric_table(b, head, sizeof head / sizeof head[0]);
    buf_puts(b, "# HELP gridsense_rejects_total REJECT frames sent, by reason.\n"
                "# TYPE gridsense_rejects_total counter\n");
    for (int i = 1; i < 16; i++)
        if (s.reject_by_reason[i])
            buf_printf(b, "gridsense_rejects_total{reason=\"%s\"} %llu\n", gstp_reason_name(i),
                       (unsigned long long)s.reject_by_reason[i]);
    buf_puts(b, "# HELP gridsense_frames_received_total GSTP frames received, by type.\n"
                "# TYPE gridsense_frames_received_total counter\n");
    for (int i = 0; i < 256; i++)
        if (s.frames_rx[i])
            buf_printf(b, "gridsense_frames_received_total{type=\"%s\"} %llu\n",
                       gstp_type_name((uint8_t)i), (unsigned long long)s.frames_rx[i]);
    buf_puts(b, "# HELP gridsense_frames_sent_total GSTP frames sent, by type.\n"
                "# TYPE gridsense_frames_sent_total counter\n");
    for (int i = 0; i < 256; i++)
        if (s.frames_tx[i])
            buf_printf(b, "gridsense_frames_sent_total{type=\"%s\"} %llu\n",
                       gstp_type_name((uint8_t)i), (unsigned long long)s.frames_tx[i]);
    /* Block sample data by GSTP codec (protocol.md 7.4): what came over the wire and the raw
     * size it stands for, so the saving of codecs 1 and 2 shows (operations.md). */
    static const char *const codec_names[3] = {"raw", "wcodec", "wcodec2"};
    buf_puts(b, "# HELP gridsense_sample_bytes_received_total Block sample bytes received on the "
                "wire (raw sets or codec-1/2 segments, chunk headers excluded), by codec.\n"
                "# TYPE gridsense_sample_bytes_received_total counter\n");
    for (int i = 0; i < 3; i++)
        buf_printf(b, "gridsense_sample_bytes_received_total{codec=\"%s\"} %llu\n", codec_names[i],
                   (unsigned long long)s.sample_wire_bytes[i]);
    buf_puts(b, "# HELP gridsense_sample_raw_bytes_received_total Raw size of the sample sets "
                "received, by the codec they came in.\n"
                "# TYPE gridsense_sample_raw_bytes_received_total counter\n");
    for (int i = 0; i < 3; i++)
        buf_printf(b, "gridsense_sample_raw_bytes_received_total{codec=\"%s\"} %llu\n",
                   codec_names[i], (unsigned long long)s.sample_raw_bytes[i]);
    const metric_t tail[] = {
        {"gridsense_bytes_received_total", "counter", "Bytes received from terminals.",
         (double)s.bytes_rx},
        {"gridsense_bytes_sent_total", "counter", "Bytes sent to terminals.", (double)s.bytes_tx},
        {"gridsense_blocks_received_total", "counter", "Complete blocks received.",
         (double)s.blocks_received},
        {"gridsense_blocks_stored_total", "counter", "Blocks committed to the store.",
         (double)s.blocks_stored},
        {"gridsense_blocks_duplicate_total", "counter",
         "Blocks received again and ignored (exactly-once).", (double)s.blocks_duplicate},
        {"gridsense_blocks_failed_total", "counter", "Blocks the store could not commit.",
         (double)s.blocks_failed},
        {"gridsense_acks_sent_total", "counter", "ACK frames sent.", (double)s.acks_sent},
        {"gridsense_decode_skipped_bytes_total", "counter", "Bytes skipped while resynchronising.",
         (double)s.decode_skipped_bytes},
        {"gridsense_decode_header_errors_total", "counter", "Rejected frame headers.",
         (double)s.decode_header_errors},
        {"gridsense_decode_crc_errors_total", "counter", "Frames with a bad CRC.",
         (double)s.decode_crc_errors},
        {"gridsense_parse_errors_total", "counter", "Frames whose payload did not parse.",
         (double)s.parse_errors},
        {"gridsense_protocol_errors_total", "counter", "Sessions closed for protocol errors.",
         (double)s.protocol_errors},
        {"gridsense_sessions_replaced_total", "counter", "Sessions replaced by a new login.",
         (double)s.sessions_replaced},
        {"gridsense_sessions_dead_total", "counter", "Sessions closed for missed heartbeats.",
         (double)s.sessions_dead},
        {"gridsense_sessions_stalled_total", "counter",
         "Sessions closed because the peer stopped reading.", (double)s.sessions_stalled},
        {"gridsense_commands_sent_total", "counter", "COMMAND frames sent.",
         (double)s.commands_sent},
        {"gridsense_commands_done_total", "counter", "Commands completed.",
         (double)s.commands_done},
        {"gridsense_commands_failed_total", "counter", "Commands failed.",
         (double)s.commands_failed},
        {"gridsense_commands_expired_total", "counter", "Commands expired.",
         (double)s.commands_expired},
        {"gridsense_sessions_paused", "gauge", "Sessions not being read (backpressure).",
         (double)s.paused_reading},
        {"gridsense_ingest_inflight_bytes", "gauge", "Block bytes received and not yet committed.",
         (double)s.inflight_bytes},
        {"gridsense_store_queue_items", "gauge", "Items waiting for the store writer.",
         (double)s.store_queue_items},
        {"gridsense_store_queue_bytes", "gauge", "Bytes waiting for the store writer.",
         (double)s.store_queue_bytes},
        {"gridsense_store_batches_total", "counter", "Store transactions committed.",
         (double)ws.batches},
        {"gridsense_store_retries_total", "counter",
         "Store transactions rolled back and retried (database locked or failing).",
         (double)ws.retries},
        {"gridsense_store_errors_total", "counter", "Items the store writer could not commit.",
         (double)ws.errors},
        {"gridsense_store_blocks_compressed_total", "counter",
         "Blocks committed compressed at rest (received with codec 1 or 2, or encoded by the writer).",
         (double)ws.blocks_compressed},
        {"gridsense_store_blocks_raw_busy_total", "counter",
         "Blocks received raw and stored raw because the writer was behind.",
         (double)ws.blocks_raw_busy},
    };
    metric_table(b, tail, sizeof tail / sizeof tail[0]);
    if (a->cluster) { /* several nodes (docs/operations.md "Several nodes") */
        cluster_stats_t cs;
        cluster_stats(a->cluster, &cs);
        const metric_t cm[] = {
            {"gridsense_cluster_db_up", "gauge",
             "1 while this node's cluster connections to the database are up.", (double)cs.db_up},
            {"gridsense_cluster_nodes_alive", "gauge",
             "Nodes whose heartbeat is fresh, at this node's last refresh.",
             (double)cs.nodes_alive},
            {"gridsense_cluster_terminals_live", "gauge",
             "Terminals with a live session on any node, at the last refresh.",
             (double)cs.live_terminals},
            {"gridsense_cluster_displacements_total", "counter",
             "Logins here that displaced the terminal's session on another node.",
             (double)cs.displaced_other},
            {"gridsense_cluster_displaced_total", "counter",
             "Sessions here ended because the terminal logged in on another node.",
             (double)cs.displaced_here},
            {"gridsense_cluster_notifications_total", "counter",
             "Notifications received on the LISTEN connection.", (double)cs.notifications},
            {"gridsense_cluster_command_wakeups_total", "counter",
             "Command notifications for a terminal online here (delivered at once).",
             (double)cs.commands_woken},
            {"gridsense_cluster_db_lost_total", "counter",
             "Times the cluster's database connection was lost.", (double)cs.db_lost},
            {"gridsense_cluster_requests_dropped_total", "counter",
             "Session claims/releases dropped (queue full or database away); made good by "
             "the resynchronisation.",
             (double)cs.requests_dropped},
        };
        metric_table(b, cm, sizeof cm / sizeof cm[0]);
    }
    api__retention_metrics(a, b);
    if (a->extra_metrics) /* the MMS server's gridsense_mms_* (docs/operations.md "[mms]") */
        a->extra_metrics(a->extra_metrics_ud, b);
    if (a->ana) {
        ana_stats_t as;
        ana_stats(a->ana, &as);
        const metric_t an[] = {
            {"gridsense_analysis_workers", "gauge", "DSP worker threads.", (double)as.workers},
            {"gridsense_analysis_blocks_total", "counter", "Waveform blocks analysed.",
             (double)as.blocks_analysed},
            {"gridsense_analysis_blocks_skipped_total", "counter",
             "Blocks not analysed because the analysis queue was full (stored as usual).",
             (double)as.blocks_skipped},
            {"gridsense_analysis_samples_total", "counter", "Sample sets analysed.",
             (double)as.samples},
            {"gridsense_analysis_windows_total", "counter", "10/12-cycle windows computed.",
             (double)as.windows},
            {"gridsense_analysis_events_total", "counter", "Dips, swells and interruptions.",
             (double)as.events},
            {"gridsense_analysis_aggregates_total", "counter",
             "Aggregated values stored (3 s, 10 s, 10 min, 2 h).", (double)as.aggregates},
            {"gridsense_analysis_gaps_total", "counter", "Breaks in terminals' sample streams.",
             (double)as.gaps},
            {"gridsense_analysis_stream_restarts_total", "counter",
             "Analysis restarted because a terminal's rate or channels changed.",
             (double)as.stream_restarts},
            {"gridsense_analysis_queue_bytes", "gauge", "Sample bytes waiting for analysis.",
             (double)as.queue_bytes},
            {"gridsense_analysis_terminals", "gauge", "Terminals with analysis results.",
             (double)as.terminals},
            {"gridsense_analysis_terminals_behind", "gauge",
             "Terminals whose analysis skipped blocks in the last minute or lags by > 5 s.",
             (double)as.terminals_behind},
            {"gridsense_analysis_max_delay_seconds", "gauge",
             "Worst delay from block receipt to its analysis among the latest results.",
             as.max_delay_s},
        };
        metric_table(b, an, sizeof an / sizeof an[0]);
        if (as.backfill_on) { /* src/ana/backfill.c; docs/operations.md "Backfill" */
            const metric_t bf[] = {
                {"gridsense_backfill_backlog_units", "gauge",
                 "Terminal 2-h units holding blocks not analysed yet.",
                 (double)as.bf_backlog_units},
                {"gridsense_backfill_backlog_blocks", "gauge",
                 "Stored blocks (and EVENT captures) not analysed yet.",
                 (double)as.bf_backlog_blocks},
                {"gridsense_backfill_backlog_seconds", "gauge",
                 "Signal seconds of the waveform blocks not analysed yet.", as.bf_backlog_s},
                {"gridsense_backfill_units_total", "counter",
                 "Units re-analysed from the store by the backfill.", (double)as.bf_units},
                {"gridsense_backfill_blocks_total", "counter",
                 "Stored waveform blocks analysed by the backfill.", (double)as.bf_blocks},
                {"gridsense_backfill_captures_total", "counter",
                 "Stored EVENT captures analysed by the backfill.", (double)as.bf_captures},
                {"gridsense_backfill_signal_seconds_total", "counter",
                 "Signal seconds analysed by the backfill.", as.bf_signal_s},
                {"gridsense_backfill_busy_seconds_total", "counter",
                 "Time the backfill thread spent analysing.", as.bf_busy_s},
                {"gridsense_backfill_cpu_seconds_total", "counter",
                 "CPU time the backfill thread used for it.", as.bf_cpu_s},
                {"gridsense_backfill_errors_total", "counter",
                 "Units whose backfill failed (retried later).", (double)as.bf_errors},
            };
            metric_table(b, bf, sizeof bf / sizeof bf[0]);
        }
    }
    if (a->web)
        http_metrics(a->web, b);
    api__live_metrics(a, b);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4";
}

/* API loop: answers a deferred POST of a command once the writer has reported its creation
 * (status GS_ECLOSED: the API is stopping, the request goes unanswered). */
static void post_answer(void *arg, int status)
{
    post_ctx_t *x = arg;
    api_t *a = x->a;
    int rc = x->rc, sent = x->sent;
    int64_t cmd_id = x->cmd_id;
    if (status < 0) {
        web_complete(x->pending, 503, NULL, NULL);
        free(x);
        return;
    }
    web_response_t r = {0};
    char msg[256];
    store_command_t c;
    int created = rc == 0; /* the writer committed it; only reading it back can fail now */
    if (rc == 0 && (rc = store_command_get(a->st, cmd_id, &c)) == 0) {
        if (sent && c.state == STORE_CMD_QUEUED)
            c.state = STORE_CMD_SENT; /* sent just now; the row follows when the writer commits */
        r.status = 201;
        r.content_type = "application/json";
        api_command_json(&r.body, &c);
    } else if (rc == GS_ENOTFOUND) {
        api__error(&r, 404, "not_found", "no such terminal");
    } else if (rc == GS_ELIMIT) {
        snprintf(msg, sizeof msg,
                 "terminal %s already has %d pending commands (queued, sent or acked), the limit "
                 "set by [commands] max_pending_per_terminal; wait for them to finish or expire",
                 x->tid, a->max_pending);
        api__error(&r, 409, "too_many_pending", msg);
    } else if (rc == GS_ETIMEOUT) {
        snprintf(msg, sizeof msg,
                 "the database did not accept the command within %d s (locked by another "
                 "process?); nothing was created, retry later",
                 a->create_timeout_s);
        api__error(&r, 503, "store_busy", msg);
    } else if (created) {
        snprintf(msg, sizeof msg,
                 "command %lld was created but could not be read back: %s; see GET "
                 "/api/v1/terminals/%s/commands",
                 (long long)cmd_id, err_str(rc), x->tid);
        api__error(&r, 503, "store_unavailable", msg);
    } else {
        snprintf(msg, sizeof msg, "the command was not created: %s", err_str(rc));
        api__error(&r, 503, "store_unavailable", msg);
    }
    char target[96], detail[160];
    snprintf(target, sizeof target, "terminal %s", x->tid);
    if (created)
        snprintf(detail, sizeof detail, "%s, command %lld", x->detail, (long long)cmd_id);
    else
        snprintf(detail, sizeof detail, "%s: %s", x->detail, r.status == 409 ? "too many pending"
                                                             : r.status == 404 ? "no such terminal"
                                                                               : err_str(rc));
    api__audit(a, x->user, x->remote, "command.create", target, created ? "ok" : "failed",
               detail);
    web_complete(x->pending, r.status, r.content_type, &r.body);
    free(x);
}

/* Main loop, from the gateway: the creation's outcome goes to the API's loop. */
static void post_done_main(void *ud, int rc, int64_t cmd_id, int sent)
{
    post_ctx_t *x = ud;
    x->rc = rc;
    x->cmd_id = cmd_id;
    x->sent = sent;
    if (api__call_web(x->a, post_answer, x) < 0) {
        /* The API has stopped (and web_stop has detached the request): release only. */
        web_complete(x->pending, 503, NULL, NULL);
        free(x);
    }
}

/* Main loop: hands the command to the gateway. */
static void post_on_main(void *arg)
{
    post_ctx_t *x = arg;
    int rc = gw_command_submit(x->a->gw, x->tid, x->verb, x->tlv, x->tlen, x->ttl_ns,
                               post_done_main, x);
    if (rc < 0)
        post_done_main(x, rc == GS_ERANGE ? GS_ERANGE : GS_ESTATE, 0, 0);
}

static void post_command(rq_t *q, const char *id)
{
    api_t *a = q->a;
    web_response_t *r = q->resp;
    json_t *root = api__body_object(q);
    if (!root)
        return;
    const char *vname = json_string_value(json_object_get(root, "verb"));
    int verb = vname ? api_verb_parse(vname) : GS_EINVAL;
    if (verb < 0) {
        json_decref(root);
        api__error(r, 400, "bad_verb",
                   "verb must be one of get-status, capture, stream-start, stream-stop, "
                   "set-config, time-sync, reboot");
        return;
    }
    json_t *args = json_object_get(root, "args");
    const char *kv[16];
    char kvbuf[16][96];
    int n = 0;
    if (args && !json_is_object(args)) {
        json_decref(root);
        api__error(r, 400, "bad_args", "args must be an object");
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(args, key, val)
    {
        if (n == 16) {
            json_decref(root);
            api__error(r, 400, "bad_args", "too many arguments");
            return;
        }
        if (json_is_integer(val))
            snprintf(kvbuf[n], sizeof kvbuf[n], "%s=%lld", key, (long long)json_integer_value(val));
        else if (json_is_real(val))
            snprintf(kvbuf[n], sizeof kvbuf[n], "%s=%.17g", key, json_real_value(val));
        else if (json_is_boolean(val))
            snprintf(kvbuf[n], sizeof kvbuf[n], "%s=%s", key, json_is_true(val) ? "on" : "off");
        else if (json_is_string(val) &&
                 strlen(key) + strlen(json_string_value(val)) + 2 <= sizeof kvbuf[n])
            snprintf(kvbuf[n], sizeof kvbuf[n], "%s=%s", key, json_string_value(val));
        else if (json_is_string(val)) {
            json_decref(root);
            api__error(r, 400, "bad_args", "argument too long");
            return;
        } else {
            json_decref(root);
            api__error(r, 400, "bad_args", "argument values must be numbers, booleans or strings");
            return;
        }
        kv[n] = kvbuf[n];
        n++;
    }
    int64_t ttl_s = 0;
    json_t *ttl = json_object_get(root, "ttl_s");
    if (ttl) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
            json_integer_value(ttl) > 365 * 86400) {
            json_decref(root);
            api__error(r, 400, "bad_ttl", "ttl_s must be an integer in 1..31536000");
            return;
        }
        ttl_s = json_integer_value(ttl);
    }
    uint8_t tlv[STORE_ARGS_MAX];
    size_t tlen = 0;
    char err[256];
    if (api_verb_args(verb, n, kv, tlv, sizeof tlv, &tlen, err, sizeof err) < 0) {
        json_decref(root);
        api__error(r, 400, "bad_args", err);
        return;
    }
    json_decref(root);
    /* The gateway creates the command through the store writer (the loop threads never write),
     * on the main loop; the answer waits (deferred) until the writer has committed it. */
    post_ctx_t *x = xcalloc(1, sizeof *x);
    x->a = a;
    snprintf(x->tid, sizeof x->tid, "%s", id);
    x->verb = verb;
    memcpy(x->tlv, tlv, tlen);
    x->tlen = tlen;
    x->ttl_ns = ttl_s * 1000000000LL;
    snprintf(x->user, sizeof x->user, "%s", q->who.user);
    snprintf(x->remote, sizeof x->remote, "%s", q->remote);
    snprintf(x->detail, sizeof x->detail, "%s", api_verb_name(verb));
    /* The answer (post_answer) runs on this loop after this handler has returned, so the
     * handle set below is there when it is needed; the only cross-thread reader (post_done_main
     * once the API has stopped) is ordered after it by the API's queue lock. */
    if (api__call_main(a, post_on_main, x) < 0) {
        free(x);
        api__error(r, 503, "unavailable", "the server is shutting down");
        return;
    }
    x->pending = web_defer(q->req);
}

#define MAX_REPLY (8u << 20)

static int measurement_cb(void *ud, const store_measurement_t *m)
{
    list_ctx_t *x = ud;
    if (x->b->len > MAX_REPLY) {
        x->full = 1;
        return 1;
    }
    if (x->n++)
        buf_puts(x->b, ",");
    buf_puts(x->b, m->data); /* JSON written by the analysis */
    x->last_ns = m->t_end_ns;
    return 0;
}

/* Lists stored measurement rows of one interval kind for a terminal: `head` opens the reply
 * object and its array. The reply is built on the loop thread: it stops at MAX_REPLY bytes, and
 * "next_from" tells the client where to continue (from = the last end time returned). */
static void measurement_reply(rq_t *q, const char *id, const char *interval, const char *head,
                              int limit, int max_limit)
{
    api_t *a = q->a;
    web_response_t *r = q->resp;
    int64_t from, to;
    if (api__rest_list_params(q, &from, &to, &limit, max_limit, NULL) < 0)
        return;
    if (from > to) {
        api__error(r, 400, "bad_request", "from is later than to");
        return;
    }
    list_ctx_t x = {.a = a, .b = &r->body};
    buf_puts(&r->body, head);
    int rc = store_measurement_list(a->st, id, interval, from, to, limit, measurement_cb, &x);
    if (rc < 0) {
        api__error(r, 500, "internal", err_str(rc));
        return;
    }
    if (x.full)
        buf_printf(&r->body, "],\"more\":true,\"next_from\":%lld}", (long long)x.last_ns);
    else
        buf_puts(&r->body, "],\"more\":false}");
    r->status = 200;
}

void api__terminal_measurements(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    const web_request_t *req = q->req;
    web_response_t *r = q->resp;
    char interval[16] = "10min", head[64];
    int has = api__qparam(req->query, "interval", interval, sizeof interval);
    if (has < 0 || (has && strcmp(interval, "3s") != 0 && strcmp(interval, "10s") != 0 &&
                    strcmp(interval, "10min") != 0 && strcmp(interval, "2h") != 0)) {
        api__error(r, 400, "bad_request", "interval: one of 3s, 10s, 10min, 2h");
        return;
    }
    snprintf(head, sizeof head, "{\"interval\":\"%s\",\"measurements\":[", interval);
    measurement_reply(q, t.id, interval, head, 1000, 10000);
}

/* Reporting-rate synchrophasors: the stored `phasor` rows (one per UTC second, docs/api.md). */
void api__terminal_phasors(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    measurement_reply(q, t.id, "phasor", "{\"seconds\":[", 60, 3600);
}


void api__health(rq_t *q)
{
    gw_stats_t s;
    gw_stats(q->a->gw, &s);
    buf_printf(&q->resp->body,
               "{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%lld,"
               "\"terminals_online\":%llu,\"store_queue_items\":%zu}",
               GS_VERSION, (long long)((time_utc_ns() - q->a->started_ns) / 1000000000LL),
               (unsigned long long)s.online, s.store_queue_items);
    q->resp->status = 200;
}

void api__terminal(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    api__terminal_json(q->a, &q->resp->body, &t, 1);
    q->resp->status = 200;
}

void api__terminal_latest(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    if (!q->a->ana || ana_latest_json(q->a->ana, t.id, &q->resp->body) < 0) {
        api__error(q->resp, 404, "not_found",
                   q->a->ana ? "no analysis results for this terminal yet"
                             : "analysis is disabled on this server");
        return;
    }
    q->resp->status = 200;
}

void api__terminal_commands_post(rq_t *q)
{
    store_terminal_t t;
    if (api__rest_path_terminal(q, &t) < 0)
        return;
    post_command(q, t.id);
}

/* Every route (docs/api.md; the OpenAPI document lists the same, checked by a test). Public
 * routes: health and logging in; /metrics is public only while bound to loopback (api.c). */
const route_t api__routes[] = {
    {"GET", "/metrics", ROLE_PUBLIC, api__metrics},
    {"GET", "/api/v1/health", ROLE_PUBLIC, api__health},
    {"GET", "/api/v1/openapi.json", ROLE_PUBLIC, api__openapi},
    {"POST", "/api/v1/session", ROLE_PUBLIC, api__session_post},
    {"GET", "/api/v1/session", STORE_ROLE_VIEWER, api__session_get},
    {"DELETE", "/api/v1/session", STORE_ROLE_VIEWER, api__session_delete},
    {"GET", "/api/v1/terminals", STORE_ROLE_VIEWER, api__terminals},
    {"GET", "/api/v1/terminals/{id}", STORE_ROLE_VIEWER, api__terminal},
    {"GET", "/api/v1/terminals/{id}/latest", STORE_ROLE_VIEWER, api__terminal_latest},
    {"GET", "/api/v1/terminals/{id}/events", STORE_ROLE_VIEWER, api__terminal_events},
    {"GET", "/api/v1/terminals/{id}/measurements", STORE_ROLE_VIEWER, api__terminal_measurements},
    {"GET", "/api/v1/terminals/{id}/phasors", STORE_ROLE_VIEWER, api__terminal_phasors},
    {"GET", "/api/v1/terminals/{id}/commands", STORE_ROLE_VIEWER, api__terminal_commands_get},
    {"POST", "/api/v1/terminals/{id}/commands", STORE_ROLE_OPERATOR, api__terminal_commands_post},
    {"GET", "/api/v1/terminals/{id}/waveform", STORE_ROLE_VIEWER, api__terminal_waveform},
    {"GET", "/api/v1/terminals/{id}/trend", STORE_ROLE_VIEWER, api__terminal_trend},
    {"GET", "/api/v1/measurements/ranking", STORE_ROLE_VIEWER, api__measurements_ranking},
    {"GET", "/api/v1/events", STORE_ROLE_VIEWER, api__events},
    {"GET", "/api/v1/live", STORE_ROLE_VIEWER, api__live_plain},
    {"GET", "/api/v1/events/{id}/waveform", STORE_ROLE_VIEWER, api__event_waveform},
    {"GET", "/api/v1/terminals/{id}/export", STORE_ROLE_VIEWER, api__terminal_export},
    {"GET", "/api/v1/events/{id}/export", STORE_ROLE_VIEWER, api__event_export},
    {"GET", "/api/v1/users", STORE_ROLE_ADMIN, api__users_get},
    {"POST", "/api/v1/users", STORE_ROLE_ADMIN, api__users_post},
    {"GET", "/api/v1/users/{name}", STORE_ROLE_ADMIN, api__user_get},
    {"PATCH", "/api/v1/users/{name}", STORE_ROLE_ADMIN, api__user_patch},
    {"DELETE", "/api/v1/users/{name}", STORE_ROLE_ADMIN, api__user_delete},
    {"GET", "/api/v1/tokens", STORE_ROLE_ADMIN, api__tokens_get},
    {"POST", "/api/v1/tokens", STORE_ROLE_ADMIN, api__tokens_post},
    {"DELETE", "/api/v1/tokens/{id}", STORE_ROLE_ADMIN, api__token_delete},
    {"GET", "/api/v1/audit", STORE_ROLE_ADMIN, api__audit_get},
    /* REST resources (terminals.c, commands.c, events.c) */
    {"POST", "/api/v1/terminals", STORE_ROLE_ADMIN, api__terminals_post},
    {"PATCH", "/api/v1/terminals/{id}", STORE_ROLE_ADMIN, api__terminal_patch},
    {"DELETE", "/api/v1/terminals/{id}", STORE_ROLE_ADMIN, api__terminal_delete},
    {"POST", "/api/v1/terminals/{id}/secret", STORE_ROLE_ADMIN, api__terminal_secret_post},
    {"GET", "/api/v1/terminals/{id}/status", STORE_ROLE_VIEWER, api__terminal_status},
    {"GET", "/api/v1/terminals/{id}/sessions", STORE_ROLE_VIEWER, api__terminal_sessions},
    {"GET", "/api/v1/commands", STORE_ROLE_VIEWER, api__commands_get},
    {"GET", "/api/v1/commands/{id}", STORE_ROLE_VIEWER, api__command_get},
    {"DELETE", "/api/v1/commands/{id}", STORE_ROLE_OPERATOR, api__command_delete},
    {"GET", "/api/v1/events/{id}", STORE_ROLE_VIEWER, api__event_get},
    {"POST", "/api/v1/events/{id}/ack", STORE_ROLE_OPERATOR, api__event_ack},
    {"GET", "/api/v1/admin/db", STORE_ROLE_ADMIN, api__admin_db}, /* dbstats.c */
};
const size_t api__nroutes = sizeof api__routes / sizeof api__routes[0];

/* GET /api/v1/live without the WebSocket upgrade (the upgrade itself is live.c's). */
void api__live_plain(rq_t *q)
{
    api__error(q->resp, 426, "upgrade_required",
               "the live feed is a WebSocket: connect with Upgrade: websocket (docs/api.md)");
}
