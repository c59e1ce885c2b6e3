/* The live feed: GET /api/v1/live upgraded to a WebSocket (docs/api.md "Live feed").
 *
 * Clients send {"subscribe":[topics]} / {"unsubscribe":[topics]}; the server sends one JSON text
 * message per update: {"topic":T,"time":"<RFC 3339 UTC>","data":{...}}, and answers a request
 * with {"topic":"subscribed","time":..,"data":{"topics":[...]}} or {"error":{"code","message"},
 * "time":..}. Topics:
 *   fleet                   a terminal came online / went offline, sent a new STATUS, its analysis
 *                           fell behind or caught up (polled from the gateway's snapshot every
 *                           FLEET_POLL_MS; on subscribing, every terminal once)
 *   events                  a voltage event ended (the analysis' event object)
 *   commands                a command was created or changed state (the command resource)
 *   terminal/{id}/latest    the terminal's latest analysis values (at most about 1/s; on
 *                           subscribing, the current ones)
 *   terminal/{id}/phasors   one UTC second of reporting-rate synchrophasors as computed
 *   terminal/{id}/wave      the incoming waveform, decimated: at most WAVE_FPS frames a second,
 *                           each at most 2 nominal cycles and WAVE_POINTS points per channel,
 *                           secondary units
 *
 * Where the data comes from: the main loop's observers (analysis results, the gateway's commands
 * and blocks: api_live_* below) build the message there only when some client subscribed to its
 * topic (the interest set, under its own lock), and hand it to this loop through the API's xcall
 * queue, which is bounded here: past LIVE_HUB_MAX queued messages, latest values, phasors and
 * waveform frames are dropped at the source (counted), events and commands still go.
 * Per client, the transport's send queue has a byte cap (web.h): latest-value topics coalesce to
 * the newest value (fleet per terminal, latest and phasors per topic), waveform frames are
 * droppable (the client is then told {"topic":"lost","data":{"frames":N}}), events and commands
 * are neither; a client over its cap for too long is closed (1008). Credentials are checked again
 * every AUTH_RECHECK_MS: a session that ended or expired, or a revoked token, closes the
 * connection with 4401.
 */
#include "api/internal.h"

#include "ana/json.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xcall.h"
#include "gstp/gstp.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET_POLL_MS    500
#define AUTH_RECHECK_MS  10000
#define LIVE_HUB_MAX     20000 /* messages queued for this loop before sources drop */
#define MAX_TOPICS       1024  /* per client */
#define WAVE_FPS         10
#define WAVE_POINTS      256 /* per channel and frame */

/* One subscriber list of a topic. */
typedef struct {
    live_client_t **v;
    size_t n, cap;
} topic_subs_t;

struct live_client {
    api_t *a;
    web_ws_t *ws;
    principal_t who;
    int via_token;
    hmap_t topics; /* topic -> (void *)1 */
    int ntopics;
    int64_t next_check_ns;
    live_client_t *prev, *next;
};

/* A message from the main loop. */
typedef struct {
    api_t *a;
    int kind; /* MSG_* */
    char topic[96];
    char coalesce; /* coalesce per topic */
    char droppable;
    int64_t cmd_id;  /* MSG_COMMAND */
    int64_t ev_id;   /* MSG_EVENT */
    int cmd_count;   /* MSG_COMMAND expiries */
    size_t len;
    char text[]; /* the complete message (MSG_TEXT) */
} live_msg_t;

enum { MSG_TEXT = 1, MSG_COMMAND, MSG_EVENT };

/* Fleet snapshot entry (web loop). */
typedef struct {
    int online;
    int64_t status_ns;
    int behind;
    int seen; /* in the last poll */
} fleet_ent_t;

/* ---- interest (any thread) ---------------------------------------------------------------- */

static int interested(api_t *a, const char *topic)
{
    /* no client at all: no lock (a stale answer costs one message more or less) */
    if (!__atomic_load_n(&a->live_clients_any, __ATOMIC_RELAXED))
        return 0;
    uv_mutex_lock(&a->interest_lock);
    int yes = hmap_get(&a->interest, topic) != NULL;
    uv_mutex_unlock(&a->interest_lock);
    return yes;
}

static void interest_add(api_t *a, const char *topic, int delta)
{
    uv_mutex_lock(&a->interest_lock);
    intptr_t n = (intptr_t)hmap_get(&a->interest, topic) + delta;
    if (n > 0)
        hmap_put(&a->interest, topic, (void *)n);
    else
        hmap_del(&a->interest, topic);
    uv_mutex_unlock(&a->interest_lock);
}

/* ---- sending (web loop) ------------------------------------------------------------------- */

static void stamp(buf_t *b, const char *topic)
{
    char t[40];
    buf_puts(b, "{\"topic\":");
    buf_json_str(b, topic, (size_t)-1);
    buf_printf(b, ",\"time\":\"%s\",\"data\":", time_fmt_utc(time_utc_ns(), t, sizeof t));
}

static void client_send(live_client_t *c, const char *topic, const char *text, size_t len,
                        int coalesce, int droppable)
{
    if (droppable) {
        uint64_t lost = web_ws_dropped(c->ws);
        if (lost) {
            buf_t b = {0};
            stamp(&b, "lost");
            buf_printf(&b, "{\"frames\":%llu}}", (unsigned long long)lost);
            web_ws_send(c->ws, b.data, b.len, NULL, 0);
            buf_free(&b);
        }
    }
    int rc = web_ws_send(c->ws, text, len, coalesce ? topic : NULL, droppable);
    if (rc >= 0)
        c->a->live_sent++;
    else if (rc == GS_ELIMIT)
        c->a->live_dropped++;
}

/* Sends text to every subscriber of topic. */
static void publish(api_t *a, const char *topic, const char *text, size_t len, int coalesce,
                    int droppable)
{
    topic_subs_t *t = hmap_get(&a->live_topics, topic);
    for (size_t i = 0; t && i < t->n; i++)
        client_send(t->v[i], topic, text, len, coalesce, droppable);
}

static void send_error(live_client_t *c, const char *code, const char *msg)
{
    char t[40];
    buf_t b = {0};
    buf_printf(&b, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    buf_json_str(&b, msg, (size_t)-1);
    buf_printf(&b, "},\"time\":\"%s\"}", time_fmt_utc(time_utc_ns(), t, sizeof t));
    web_ws_send(c->ws, b.data, b.len, NULL, 0);
    buf_free(&b);
}

/* ---- fleet (web loop) --------------------------------------------------------------------- */

static void fleet_data(api_t *a, buf_t *b, const gw_term_info_t *ti)
{
    buf_puts(b, "{\"id\":");
    buf_json_str(b, ti->id, (size_t)-1);
    buf_printf(b, ",\"online\":%s", ti->online ? "true" : "false");
    api__ts_json(b, "connected_since", ti->online ? ti->connected_since_ns : 0);
    api__ts_json(b, "last_seen", ti->last_seen_ns);
    buf_puts(b, ",\"status\":");
    api__status_json(b, ti);
    ana_term_state_t as;
    if (a->ana && ana_term_state(a->ana, ti->id, &as) == 0)
        buf_printf(b, ",\"analysis\":{\"behind\":%s,\"blocks_skipped\":%llu,\"delay_s\":%.3f}}",
                   as.behind ? "true" : "false", (unsigned long long)as.skipped, as.delay_s);
    else
        buf_puts(b, ",\"analysis\":null}");
}

/* Sends one fleet entry to one client (c) or to every fleet subscriber (c NULL). */
static void fleet_send(api_t *a, live_client_t *c, const gw_term_info_t *ti)
{
    buf_t b = {0};
    stamp(&b, "fleet");
    fleet_data(a, &b, ti);
    buf_putc(&b, '}');
    char key[96];
    snprintf(key, sizeof key, "fleet/%s", ti->id); /* coalesce per terminal */
    if (c) {
        web_ws_send(c->ws, b.data, b.len, key, 0);
    } else {
        topic_subs_t *t = hmap_get(&a->live_topics, "fleet");
        for (size_t i = 0; t && i < t->n; i++)
            if (web_ws_send(t->v[i]->ws, b.data, b.len, key, 0) >= 0)
                a->live_sent++;
    }
    buf_free(&b);
}

static void fleet_poll(api_t *a, live_client_t *only)
{
    gw_term_info_t *list = NULL;
    size_t n = 0;
    if (gw_term_list(a->gw, &list, &n) < 0)
        return;
    size_t pos = 0;
    const char *k;
    void *v;
    while (hmap_next(&a->fleet, &pos, &k, &v))
        ((fleet_ent_t *)v)->seen = 0;
    for (size_t i = 0; i < n; i++) {
        const gw_term_info_t *ti = &list[i];
        if (only) {
            fleet_send(a, only, ti);
            continue;
        }
        fleet_ent_t *e = hmap_get(&a->fleet, ti->id);
        int behind = 0;
        ana_term_state_t as;
        if (a->ana && ana_term_state(a->ana, ti->id, &as) == 0)
            behind = as.behind;
        int64_t sns = ti->has_status ? ti->status_received_ns : 0;
        int changed = !e || e->online != ti->online || e->status_ns != sns || e->behind != behind;
        if (!e) {
            e = xcalloc(1, sizeof *e);
            hmap_put(&a->fleet, ti->id, e);
        }
        e->online = ti->online;
        e->status_ns = sns;
        e->behind = behind;
        e->seen = 1;
        if (changed)
            fleet_send(a, NULL, ti);
    }
    free(list);
    if (only)
        return;
    pos = 0;
    while (hmap_next(&a->fleet, &pos, &k, &v)) /* gone from the gateway's list (removed) */
        if (!((fleet_ent_t *)v)->seen) {
            hmap_del(&a->fleet, k);
            free(v);
        }
}

/* ---- credentials (web loop) --------------------------------------------------------------- */

/* 0 while the client's credential is still valid (role refreshed), else a reason. */
static const char *recheck(live_client_t *c)
{
    api_t *a = c->a;
    int64_t now = time_utc_ns();
    if (c->via_token) {
        store_token_t t;
        int rc = store_token_find(a->st, c->who.session_hash, &t);
        if (rc == GS_ENOTFOUND || (rc == 0 && t.revoked_ns))
            return "token revoked";
        if (rc == 0 && t.expires_ns && now >= t.expires_ns)
            return "token expired";
        if (rc == 0)
            c->who.role = t.role;
        return NULL; /* (a database error: keep the connection, check again later) */
    }
    store_login_t l;
    int rc = store_login_find(a->st, c->who.session_hash, &l);
    if (rc == GS_ENOTFOUND)
        return "session ended";
    if (rc == 0 && (now >= l.expires_ns ||
                    now - l.last_used_ns > (int64_t)a->session_idle_s * 1000000000LL))
        return "session expired";
    if (rc == 0)
        c->who.role = l.role;
    return NULL;
}

static void tick_cb(uv_timer_t *t)
{
    api_t *a = t->data;
    if (hmap_get(&a->live_topics, "fleet"))
        fleet_poll(a, NULL);
    int64_t now = time_mono_ns();
    for (live_client_t *c = a->live_list; c; c = c->next) {
        if (now < c->next_check_ns)
            continue;
        c->next_check_ns = now + (int64_t)AUTH_RECHECK_MS * 1000000;
        const char *why = recheck(c);
        if (why) {
            log_info(web_ws_remote(c->ws), "live feed of %s closed: %s", c->who.user, why);
            web_ws_close(c->ws, 4401, why);
        }
    }
}

/* ---- subscriptions (web loop) ------------------------------------------------------------- */

/* 1 if topic is one the feed knows (and, for a terminal's, names a provisioned terminal). */
static int topic_ok(api_t *a, const char *topic, const char **why)
{
    if (!strcmp(topic, "fleet") || !strcmp(topic, "events") || !strcmp(topic, "commands"))
        return 1;
    const char *pre = "terminal/";
    const char *slash = strncmp(topic, pre, 9) == 0 ? strchr(topic + 9, '/') : NULL;
    if (!slash || (strcmp(slash, "/latest") && strcmp(slash, "/wave") && strcmp(slash, "/phasors"))) {
        *why = "unknown topic (fleet, events, commands, terminal/ID/latest|wave|phasors)";
        return 0;
    }
    char id[GSTP_MAX_ID + 1];
    size_t n = (size_t)(slash - (topic + 9));
    store_terminal_t t;
    if (n == 0 || n > GSTP_MAX_ID) {
        *why = "no such terminal";
        return 0;
    }
    memcpy(id, topic + 9, n);
    id[n] = 0;
    if (!gstp_valid_id(id) || store_terminal_info(a->st, id, &t) < 0) {
        *why = "no such terminal";
        return 0;
    }
    return 1;
}

static void sub_add(live_client_t *c, const char *topic)
{
    api_t *a = c->a;
    if (hmap_get(&c->topics, topic))
        return;
    hmap_put(&c->topics, topic, (void *)1);
    c->ntopics++;
    a->live_subs++;
    topic_subs_t *t = hmap_get(&a->live_topics, topic);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        hmap_put(&a->live_topics, topic, t);
        interest_add(a, topic, 1);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 4;
        t->v = xrealloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n++] = c;
}

static void sub_del(live_client_t *c, const char *topic)
{
    api_t *a = c->a;
    if (!hmap_del(&c->topics, topic))
        return;
    c->ntopics--;
    a->live_subs--;
    topic_subs_t *t = hmap_get(&a->live_topics, topic);
    for (size_t i = 0; t && i < t->n; i++)
        if (t->v[i] == c) {
            t->v[i] = t->v[--t->n];
            break;
        }
    if (t && t->n == 0) {
        hmap_del(&a->live_topics, topic);
        free(t->v);
        free(t);
        interest_add(a, topic, -1);
    }
}

/* The current value of a latest-value topic, sent to a new subscriber. */
static void send_current(live_client_t *c, const char *topic)
{
    api_t *a = c->a;
    if (!strcmp(topic, "fleet")) {
        fleet_poll(a, c);
        return;
    }
    const char *slash = strncmp(topic, "terminal/", 9) == 0 ? strchr(topic + 9, '/') : NULL;
    if (!slash || strcmp(slash, "/latest") || !a->ana)
        return;
    char id[GSTP_MAX_ID + 1];
    snprintf(id, sizeof id, "%.*s", (int)(slash - topic - 9), topic + 9);
    buf_t b = {0};
    stamp(&b, topic);
    if (ana_latest_json(a->ana, id, &b) == 0) {
        buf_putc(&b, '}');
        web_ws_send(c->ws, b.data, b.len, topic, 0);
    }
    buf_free(&b);
}

static void on_text(void *ud, web_ws_t *ws, void *user, const char *data, size_t len)
{
    (void)ud;
    (void)ws;
    live_client_t *c = user;
    api_t *a = c->a;
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    json_t *sub = root ? json_object_get(root, "subscribe") : NULL;
    json_t *uns = root ? json_object_get(root, "unsubscribe") : NULL;
    if (!root || !json_is_object(root) || (!sub && !uns) || (sub && !json_is_array(sub)) ||
        (uns && !json_is_array(uns))) {
        send_error(c, "bad_request",
                   "expected {\"subscribe\": [topics]} or {\"unsubscribe\": [topics]}");
        json_decref(root);
        return;
    }
    size_t i;
    json_t *v;
    /* Check everything first: a request is applied whole or not at all. */
    json_t *lists[2] = {sub, uns};
    for (int l = 0; l < 2; l++) {
        json_array_foreach(lists[l], i, v)
        {
            const char *why = "a topic is a string";
            const char *s = json_string_value(v);
            if (!s || strlen(s) >= 96 || (l == 0 && !topic_ok(a, s, &why))) {
                char msg[200];
                snprintf(msg, sizeof msg, "%s: %s", s ? s : "?", why);
                send_error(c, "bad_topic", msg);
                json_decref(root);
                return;
            }
        }
    }
    if (c->ntopics + (sub ? (int)json_array_size(sub) : 0) > MAX_TOPICS) {
        send_error(c, "too_many_topics", "at most 1024 topics per connection");
        json_decref(root);
        return;
    }
    json_array_foreach(uns, i, v) sub_del(c, json_string_value(v));
    json_array_foreach(sub, i, v) sub_add(c, json_string_value(v));
    buf_t b = {0};
    stamp(&b, "subscribed");
    buf_puts(&b, "{\"topics\":[");
    size_t pos = 0;
    const char *k;
    void *val;
    int n = 0;
    while (hmap_next(&c->topics, &pos, &k, &val)) {
        if (n++)
            buf_putc(&b, ',');
        buf_json_str(&b, k, (size_t)-1);
    }
    buf_puts(&b, "]}}");
    web_ws_send(c->ws, b.data, b.len, NULL, 0);
    buf_free(&b);
    json_array_foreach(sub, i, v) send_current(c, json_string_value(v));
    json_decref(root);
}

/* ---- connections (web loop) --------------------------------------------------------------- */

static int ws_filter(void *ud, const web_request_t *req, web_response_t *resp)
{
    api_t *a = ud;
    rq_t q;
    if (strcmp(req->path, "/api/v1/live") != 0) {
        api__error(resp, 404, "not_found", "WebSocket upgrades are served at /api/v1/live");
        return -1;
    }
    if (a->stopping) {
        api__error(resp, 503, "unavailable", "the server is shutting down");
        return -1;
    }
    /* The router's checks, as for a GET by a viewer, plus the Origin check for a cookie:
     * browsers send Origin with every WebSocket handshake and SameSite does not stop a
     * cross-site page from opening one (cross-site WebSocket hijacking). */
    if (api__admit(a, req, resp, &q, STORE_ROLE_VIEWER) < 0)
        return -1;
    if (!q.who.via_token && !(req->origin && api__same_site(req->origin, req->host))) {
        api__error(resp, 403, "csrf", "a WebSocket authenticated by the session cookie must come "
                                      "from this server's pages (Origin)");
        return -1;
    }
    live_client_t *c = xcalloc(1, sizeof *c);
    c->a = a;
    c->who = q.who;
    c->via_token = q.who.via_token;
    hmap_init(&c->topics);
    resp->ws_user = c;
    return 0;
}

static void on_open(void *ud, web_ws_t *ws, void **user)
{
    api_t *a = ud;
    live_client_t *c = *user;
    c->ws = ws;
    c->next_check_ns = time_mono_ns() + (int64_t)AUTH_RECHECK_MS * 1000000;
    c->next = a->live_list;
    if (a->live_list)
        a->live_list->prev = c;
    a->live_list = c;
    a->live_nclients++;
    __atomic_store_n(&a->live_clients_any, 1, __ATOMIC_RELAXED);
    log_info(web_ws_remote(ws), "live feed opened by %s", c->who.user);
}

static void client_free(live_client_t *c)
{
    size_t pos = 0;
    const char *k;
    void *v;
    /* sub_del removes from the map being walked: collect first */
    char **names = NULL;
    size_t n = 0;
    while (hmap_next(&c->topics, &pos, &k, &v)) {
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(k);
    }
    for (size_t i = 0; i < n; i++) {
        sub_del(c, names[i]);
        free(names[i]);
    }
    free(names);
    hmap_free(&c->topics);
    free(c);
}

static void on_close(void *ud, web_ws_t *ws, void *user)
{
    api_t *a = ud;
    (void)ws;
    live_client_t *c = user;
    if (c->ws) { /* opened */
        if (c->prev)
            c->prev->next = c->next;
        else
            a->live_list = c->next;
        if (c->next)
            c->next->prev = c->prev;
        a->live_nclients--;
        __atomic_store_n(&a->live_clients_any, a->live_nclients > 0, __ATOMIC_RELAXED);
    }
    client_free(c);
}

void api__live_revoke(api_t *a, const uint8_t *session_hash, const char *token_id)
{
    for (live_client_t *c = a->live_list; c; c = c->next) {
        int hit = session_hash ? !c->via_token && !memcmp(c->who.session_hash, session_hash,
                                                          STORE_HASH_LEN)
                               : c->via_token && !strcmp(c->who.token_id, token_id);
        if (hit)
            web_ws_close(c->ws, 4401, session_hash ? "logged out" : "token revoked");
    }
}

int api__live_start(api_t *a, web_t *w)
{
    web_ws_cbs_t cbs = {ws_filter, on_open, on_text, on_close, a};
    int rc = web_ws_set(w, &cbs);
    if (rc < 0)
        return rc;
    uv_timer_init(a->loop, &a->live_tick);
    a->live_tick.data = a;
    uv_timer_start(&a->live_tick, tick_cb, FLEET_POLL_MS, FLEET_POLL_MS);
    uv_unref((uv_handle_t *)&a->live_tick);
    a->live_started = 1;
    return 0;
}

void api__live_stop(api_t *a)
{
    if (a->live_started)
        uv_close((uv_handle_t *)&a->live_tick, NULL);
    a->live_started = 0;
    __atomic_store_n(&a->live_clients_any, 0, __ATOMIC_RELAXED);
}

void api__live_free(api_t *a)
{
    size_t pos = 0;
    const char *k;
    void *v;
    while (hmap_next(&a->fleet, &pos, &k, &v))
        free(v);
    hmap_free(&a->fleet);
    pos = 0;
    while (hmap_next(&a->live_topics, &pos, &k, &v)) {
        free(((topic_subs_t *)v)->v);
        free(v);
    }
    hmap_free(&a->live_topics);
    hmap_free(&a->interest);
    pos = 0;
    while (hmap_next(&a->wave_last, &pos, &k, &v))
        free(v);
    hmap_free(&a->wave_last);
    uv_mutex_destroy(&a->interest_lock);
}

void api__live_init(api_t *a)
{
    hmap_init(&a->fleet);
    hmap_init(&a->live_topics);
    hmap_init(&a->interest);
    hmap_init(&a->wave_last);
    uv_mutex_init(&a->interest_lock);
}

void api__live_metrics(api_t *a, buf_t *b)
{
    buf_printf(b,
               "# HELP gridsense_live_clients Live feed (WebSocket) clients connected.\n"
               "# TYPE gridsense_live_clients gauge\n"
               "gridsense_live_clients %d\n"
               "# HELP gridsense_live_subscriptions Topic subscriptions of live feed clients.\n"
               "# TYPE gridsense_live_subscriptions gauge\n"
               "gridsense_live_subscriptions %lld\n"
               "# HELP gridsense_live_messages_total Live feed messages queued to clients.\n"
               "# TYPE gridsense_live_messages_total counter\n"
               "gridsense_live_messages_total %llu\n"
               "# HELP gridsense_live_source_dropped_total Live updates dropped at the source "
               "(the hand-over queue to the web thread was full).\n"
               "# TYPE gridsense_live_source_dropped_total counter\n"
               "gridsense_live_source_dropped_total %llu\n",
               a->live_nclients, (long long)a->live_subs, (unsigned long long)a->live_sent,
               (unsigned long long)a->live_src_dropped);
}

/* ---- sources (main loop) ------------------------------------------------------------------ */

static void deliver(void *arg, int status)
{
    live_msg_t *m = arg;
    api_t *a = m->a;
    if (status == 0 && !a->stopping) {
        if (m->kind == MSG_TEXT) {
            publish(a, m->topic, m->text, m->len, m->coalesce, m->droppable);
        } else if (m->kind == MSG_EVENT) {
            /* the stored row, as GET /events/{id} answers it (committed before the hand-over,
             * so this connection sees it) */
            buf_t b = {0};
            stamp(&b, "events");
            buf_puts(&b, "{\"terminal\":");
            buf_json_str(&b, m->topic, (size_t)-1);
            buf_puts(&b, ",\"event\":");
            int rc = api__event_get_json(a, m->ev_id, &b);
            if (rc == 0) {
                buf_puts(&b, "}}");
                publish(a, "events", b.data, b.len, 0, 0);
            } else {
                log_warn(m->topic, "live feed: stored event %lld cannot be read: %s",
                         (long long)m->ev_id, err_str(rc));
            }
            buf_free(&b);
        } else if (m->cmd_id) {
            store_command_t cmd;
            if (store_command_get(a->st, m->cmd_id, &cmd) == 0) {
                buf_t b = {0};
                stamp(&b, "commands");
                api_command_json(&b, &cmd);
                buf_putc(&b, '}');
                publish(a, "commands", b.data, b.len, 0, 0);
                buf_free(&b);
            }
        } else {
            buf_t b = {0};
            stamp(&b, "commands");
            buf_printf(&b, "{\"expired\":%d}}", m->cmd_count);
            publish(a, "commands", b.data, b.len, 0, 0);
            buf_free(&b);
        }
    }
    free(m);
}

/* Hands a message to the web loop; optional ones are dropped when the queue is long. */
static void hand_over(api_t *a, live_msg_t *m, int optional)
{
    m->a = a;
    if (optional && xcall_pending(a->web_q) > LIVE_HUB_MAX) {
        a->live_src_dropped++; /* (main loop only) */
        free(m);
        return;
    }
    if (api__call_web(a, deliver, m) < 0)
        free(m);
}

static live_msg_t *text_msg(const char *topic, const char *data, size_t n)
{
    char t[40];
    char head[256];
    int hl = snprintf(head, sizeof head, "{\"topic\":\"%s\",\"time\":\"%s\",\"data\":", topic,
                      time_fmt_utc(time_utc_ns(), t, sizeof t));
    live_msg_t *m = xmalloc(sizeof *m + (size_t)hl + n + 2);
    memset(m, 0, sizeof *m);
    m->kind = MSG_TEXT;
    snprintf(m->topic, sizeof m->topic, "%s", topic);
    memcpy(m->text, head, (size_t)hl);
    memcpy(m->text + hl, data, n);
    m->text[hl + n] = '}';
    m->text[hl + n + 1] = 0;
    m->len = (size_t)hl + n + 1;
    return m;
}

void api_live_result(void *ud, const char *terminal_id, const char *kind, const char *json)
{
    api_t *a = ud;
    char topic[96];
    if (strcmp(kind, "latest") != 0 && strcmp(kind, "phasor") != 0)
        return;
    snprintf(topic, sizeof topic, "terminal/%s/%s", terminal_id,
             strcmp(kind, "phasor") == 0 ? "phasors" : "latest");
    if (!interested(a, topic))
        return;
    live_msg_t *m = text_msg(topic, json, strlen(json));
    m->coalesce = 1;
    hand_over(a, m, 1);
}

void api_live_event(void *ud, const char *terminal_id, int64_t event_id)
{
    api_t *a = ud;
    if (!interested(a, "events"))
        return;
    live_msg_t *m = xcalloc(1, sizeof *m);
    m->kind = MSG_EVENT;
    m->ev_id = event_id;
    snprintf(m->topic, sizeof m->topic, "%s", terminal_id); /* (the terminal, for the message) */
    hand_over(a, m, 0);
}

void api_live_command(void *ud, int64_t cmd_id, const char *terminal_id, int state, int count)
{
    api_t *a = ud;
    (void)terminal_id;
    (void)state; /* read back with the row */
    if (!interested(a, "commands"))
        return;
    live_msg_t *m = xcalloc(1, sizeof *m);
    m->kind = MSG_COMMAND;
    m->cmd_id = cmd_id;
    m->cmd_count = count;
    hand_over(a, m, 0);
}

/* Channel names as the analysis gives them (src/ana/json.c). */
static void wave_names(const gw_block_info_t *b, json_names_t *names)
{
    dsp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nchannels = b->nchannels;
    for (int i = 0; i < b->nchannels && i < DSP_MAX_CH; i++) {
        cfg.ch[i].kind = b->ch[i].kind <= DSP_KIND_CURRENT ? b->ch[i].kind : DSP_KIND_OTHER;
        cfg.ch[i].phase = b->ch[i].phase <= DSP_PHASE_N ? b->ch[i].phase : DSP_PHASE_NONE;
    }
    ana_json_names(names, &cfg);
}

/* Sample s of channel c of an interleaved block, in counts. */
static double count_at(const gw_block_info_t *b, const uint8_t *p, size_t len, uint32_t s, int c)
{
    size_t w = b->sample_fmt == GSTP_FMT_INT32 ? 4 : 2;
    size_t off = ((size_t)s * b->nchannels + (size_t)c) * w;
    if (off + w > len)
        return NAN;
    if (w == 2)
        return (double)(int16_t)(p[off] | p[off + 1] << 8);
    return (double)(int32_t)((uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
                             (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24);
}

void api_live_block(api_t *a, const char *terminal_id, const gw_block_info_t *b,
                    const uint8_t *samples, size_t len)
{
    char topic[96];
    snprintf(topic, sizeof topic, "terminal/%s/wave", terminal_id);
    if (!b->sample_rate || !b->nchannels || !interested(a, topic))
        return;
    int nominal = b->nominal_hz == 60 ? 60 : 50;
    uint32_t per_frame = b->sample_rate / WAVE_FPS;    /* frame spacing, samples */
    uint32_t span = 2 * b->sample_rate / (uint32_t)nominal; /* 2 cycles */
    if (!per_frame || !span)
        return;
    uint32_t stride = (span + WAVE_POINTS - 1) / WAVE_POINTS;
    int64_t *last = hmap_get(&a->wave_last, terminal_id);
    if (!last) {
        last = xcalloc(1, sizeof *last);
        hmap_put(&a->wave_last, terminal_id, last);
    }
    json_names_t names;
    wave_names(b, &names);
    int64_t period = (int64_t)(1e9 / WAVE_FPS);
    for (uint32_t s0 = 0; s0 + span <= b->nsamples; s0 += per_frame) {
        int64_t t0 = b->t0_ns + (int64_t)((double)s0 * 1e9 / b->sample_rate);
        if (t0 < *last + period && t0 >= *last)
            continue; /* at most WAVE_FPS frames a second per terminal */
        *last = t0;
        char tt[40];
        buf_t d = {0};
        buf_printf(&d, "{\"terminal\":\"%s\",\"t0\":\"%s\",\"t0_ns\":%lld,\"dt_ns\":%.1f,"
                       "\"side\":\"secondary\",\"seq\":%llu,\"channels\":[",
                   terminal_id, time_fmt_utc(t0, tt, sizeof tt), (long long)t0,
                   1e9 * stride / b->sample_rate, (unsigned long long)b->seq);
        for (int c = 0; c < b->nchannels && c < DSP_MAX_CH; c++) {
            if (c)
                buf_putc(&d, ',');
            buf_puts(&d, "{\"name\":");
            buf_json_str(&d, names.name[c], (size_t)-1);
            buf_printf(&d, ",\"kind\":\"%s\",\"values\":[", names.kind[c]);
            int k = 0;
            for (uint32_t s = s0; s < s0 + span; s += stride) {
                double v = count_at(b, samples, len, s, c) * b->ch[c].scale;
                buf_printf(&d, k++ ? ",%.5g" : "%.5g", isfinite(v) ? v : 0.0);
            }
            buf_puts(&d, "]}");
        }
        buf_puts(&d, "]}");
        live_msg_t *m = text_msg(topic, d.data, d.len);
        m->droppable = 1;
        buf_free(&d);
        hand_over(a, m, 1);
    }
}
