/* Terminal gateway handshake: accept and connection caps, HELLO/CHALLENGE/AUTH/WELCOME,
 * failed-login rate limiting (protocol decision 6) and revocation of changed credentials. */
#include "internal.h"

#include "core/err.h"
#include "core/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DEC_BUF_SIZE   (GSTP_MAX_FRAME + 1024)
#define AUTH_WINDOW_NS (60 * 1000000000LL)
/* Failed-login table entries before it is forgotten (tests/unit/test_gw.c builds the gateway's
 * sources with a small value to reach the limit). */
#ifndef AUTH_MAP_MAX
#define AUTH_MAP_MAX 100000
#endif

typedef struct {
    int64_t window_start;
    int count;
} authfail_t;

/* ---- connection counts ------------------------------------------------------------------------
 */

static void ip_count_add(hmap_t *m, const char *ip, int delta)
{
    uintptr_t n = (uintptr_t)hmap_get(m, ip);
    n = (uintptr_t)((intptr_t)n + delta);
    if (n == 0)
        hmap_del(m, ip);
    else
        hmap_put(m, ip, (void *)n);
}

/* The session has left the handshake (online or closing): it no longer counts against its
 * address's cap on concurrent unauthenticated sessions. */
static void hs_release(sess_t *s)
{
    if (s->counted_hs) {
        ip_count_add(&s->gw->hs_ip, s->ip, -1);
        s->counted_hs = 0;
    }
}

void gw__release_counts(sess_t *s)
{
    if (s->counted_ip) {
        ip_count_add(&s->gw->per_ip, s->ip, -1);
        s->counted_ip = 0;
    }
    hs_release(s);
}

/* ---- handshake --------------------------------------------------------------------------------
 */

/* Ends the handshake with a REJECT and closes. Logged rate-limited per address: every line here
 * can be caused by anyone who can connect. */
static void reject(sess_t *s, uint16_t reason, uint16_t retry, const char *msg)
{
    log_limited(LOG_WARN, s->ip, "login%s%s from %s rejected: %s (%s)",
                s->hello_id[0] ? " of " : "", s->hello_id, s->remote, gstp_reason_name(reason),
                msg);
    s->gw->st_.handshakes_failed++;
    gw__send_reject(s, 0, reason, retry, msg);
    gw__sess_close(s, gstp_reason_name(reason));
}

static authfail_t *authfail_get(gw_t *g, const char *prefix, const char *key, int create)
{
    char k[96];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    authfail_t *a = hmap_get(&g->authfail, k);
    int64_t now = time_mono_ns();
    if (a && now - a->window_start > AUTH_WINDOW_NS) {
        a->window_start = now;
        a->count = 0;
    }
    if (!a && create) {
        /* (gw__login_failed made room first: never flushed here, where it would free entries the
         * caller already holds.) */
        a = xcalloc(1, sizeof *a);
        a->window_start = now;
        hmap_put(&g->authfail, k, a);
    }
    return a;
}

/* A handshake refused because of what the client sent (UNKNOWN_ID, BAD_AUTH, PROTOCOL, VERSION,
 * BAD_CONFIG, TIMEOUT) is a failed login of its address, and of its terminal id when the HELLO
 * named a provisioned one (unknown ids are not counted: they would fill the table). A source that
 * had already reached its limit in the current one-minute window gets REJECT RATE_LIMIT instead
 * of the reason, at the point where the handshake fails. This is the only place rate limiting
 * acts, so a terminal that proves its key (a correct AUTH) is never refused by it: a provisioned
 * id always gets its CHALLENGE and a correct MAC always gets WELCOME (protocol decision 6; a
 * carrier NAT's bad neighbours cannot lock out the good terminals behind the same address). */
void gw__login_failed(sess_t *s, uint16_t reason, const char *msg)
{
    gw_t *g = s->gw;
    /* Under a wide attack, old entries are forgotten rather than the table growing without
     * bound. That happens before either entry is looked up: flushing between the two lookups
     * would free the address's entry while it is still used below. */
    size_t need = (authfail_get(g, "i:", s->ip, 0) == NULL) +
                  (s->id_provisioned && authfail_get(g, "t:", s->hello_id, 0) == NULL);
    if (need && g->authfail.count + need > AUTH_MAP_MAX) {
        gw__free_map(&g->authfail);
        hmap_init(&g->authfail);
    }
    authfail_t *ai = authfail_get(g, "i:", s->ip, 1);
    authfail_t *at = s->id_provisioned ? authfail_get(g, "t:", s->hello_id, 1) : NULL;
    int over = ai->count >= g->o.auth_fail_per_ip || (at && at->count >= g->o.auth_fail_per_id);
    ai->count++;
    if (at)
        at->count++;
    if (over)
        reject(s, GSTP_REJ_RATE_LIMIT, 60, "too many failed logins, retry later");
    else
        reject(s, reason, 0, msg);
}

/* Provisioned ratios are 1 when not provisioned (store.h); a ratio the terminal did not report
 * is 0. Float on the wire vs double in the store: compare to 1e-6 relative. */
static int ratio_conflict(double hello, double prov)
{
    if (hello <= 0 || prov == 1)
        return 0;
    double d = hello > prov ? hello - prov : prov - hello;
    return d > 1e-6 * (hello > prov ? hello : prov);
}

void gw__on_hello(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_hello_t h;
    char msg[GSTP_MAX_STR + 1];
    /* protocol.md 6.1: a HELLO that does not parse is PROTOCOL; BAD_CONFIG only for one that
     * parses but whose capabilities the server cannot use (GSTP_E_CONFIG, *h filled). */
    int prc = gstp_parse_hello(f, &h);
    if (prc < 0 && prc != GSTP_E_CONFIG) {
        g->st_.parse_errors++;
        gw__login_failed(s, GSTP_REJ_PROTOCOL, "malformed HELLO");
        return;
    }
    snprintf(s->hello_id, sizeof s->hello_id, "%s", h.terminal_id);
    store_terminal_t t;
    int rc = store_terminal_get(g->st, h.terminal_id, &t);
    if (rc == GS_ENOTFOUND) {
        gw__login_failed(s, GSTP_REJ_UNKNOWN_ID, "terminal not provisioned");
        return;
    }
    if (rc == GS_EAUTH) {
        /* Provisioned, but its stored secret cannot be unsealed (master key reset, tampered
         * row): no key can match, so it is a failed login, not a storage fault to retry; of
         * the id as well (decision 6). */
        s->id_provisioned = 1;
        gw__login_failed(s, GSTP_REJ_BAD_AUTH,
                         "no usable secret stored; rotate the terminal's secret");
        return;
    }
    if (rc < 0) {
        reject(s, GSTP_REJ_BUSY, 30, "server storage unavailable");
        return;
    }
    s->id_provisioned = 1;
    if (h.version_min > GSTP_VERSION) {
        sodium_memzero(t.secret, sizeof t.secret);
        gw__login_failed(s, GSTP_REJ_VERSION, "no common protocol version (server speaks 1)");
        return;
    }
    if (prc == GSTP_E_CONFIG || h.nominal_hz != t.nominal_hz) {
        if (prc == GSTP_E_CONFIG)
            snprintf(msg, sizeof msg, "unusable sample rate, nominal frequency or channels");
        else /* protocol decision 10: the provisioned nominal frequency is authoritative */
            snprintf(msg, sizeof msg, "NOMINAL_HZ %d conflicts with provisioned %d", h.nominal_hz,
                     t.nominal_hz);
        sodium_memzero(t.secret, sizeof t.secret);
        gw__login_failed(s, GSTP_REJ_BAD_CONFIG, msg);
        return;
    }
    s->version = h.version_max < GSTP_VERSION ? h.version_max : (uint8_t)GSTP_VERSION;
    memcpy(s->secret, t.secret, sizeof s->secret);
    crypto_generichash(s->secret_fp, sizeof s->secret_fp, t.secret, sizeof t.secret, NULL, 0);
    sodium_memzero(t.secret, sizeof t.secret);
    s->store_durable = t.durable_seq;
    s->sample_rate = h.sample_rate;
    s->nominal_hz = t.nominal_hz;
    s->nchannels = h.nchannels;
    s->declared_v = t.declared_v;
    s->hello_vt = h.vt_ratio;
    s->hello_ct = h.ct_ratio;
    s->prov_vt = t.vt_ratio;
    s->prov_ct = t.ct_ratio;
    s->chan_present = 0;
    for (int i = 0; i < h.nchannels; i++) {
        const gstp_channel_t *hc = &h.channels[i];
        if (hc->index >= GSTP_MAX_CHANNELS)
            continue; /* the parser bounds it; be safe anyway */
        s->chans[hc->index] = (gw_chan_t){.index = hc->index,
                                          .kind = hc->kind,
                                          .phase = hc->phase,
                                          .unit = hc->unit,
                                          .scale = hc->scale};
        s->chan_present |= (uint16_t)(1u << hc->index);
    }
    snprintf(s->fw, sizeof s->fw, "%s", h.fw_version);
    snprintf(s->hw, sizeof s->hw, "%s", h.hw_version);
    s->hello = xmalloc(f->len ? f->len : 1);
    memcpy(s->hello, f->payload, f->len);
    s->hello_len = f->len;
    gstp_challenge_t c;
    memset(&c, 0, sizeof c);
    c.version = s->version;
    randombytes_buf(c.nonce, sizeof c.nonce);
    memcpy(s->nonce, c.nonce, sizeof s->nonce);
    SEND(s, gstp_encode_challenge, &c);
    s->state = S_AUTH;
}

static term_t *term_get(gw_t *g, const char *id)
{
    term_t *t = hmap_get(&g->terms, id);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", id);
        hmap_put(&g->terms, id, t);
    }
    return t;
}

void gw__on_auth(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_auth_t a;
    if (gstp_parse_auth(f, &a) < 0) {
        g->st_.parse_errors++;
        sodium_memzero(s->secret, sizeof s->secret);
        gw__login_failed(s, GSTP_REJ_PROTOCOL, "malformed AUTH");
        return;
    }
    uint8_t mac[GSTP_MAC_LEN];
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, s->secret, sizeof s->secret);
    crypto_auth_hmacsha256_update(&hs, s->nonce, sizeof s->nonce);
    crypto_auth_hmacsha256_update(&hs, s->hello, s->hello_len);
    crypto_auth_hmacsha256_final(&hs, mac);
    sodium_memzero(&hs, sizeof hs);
    sodium_memzero(s->secret, sizeof s->secret);
    free(s->hello);
    s->hello = NULL;
    if (crypto_verify_32(mac, a.mac) != 0) {
        gw__login_failed(s, GSTP_REJ_BAD_AUTH, "authentication failed");
        return;
    }
    /* Proved its key: WELCOME whatever the failure counters say (decision 6). */
    term_t *t = term_get(g, s->hello_id);
    if (t->sess) {
        sess_t *old = t->sess;
        /* Two devices sharing an id replace each other in a loop: rate-limited. */
        log_limited(LOG_INFO, s->ip, "%s: new login from %s replaces session from %s", t->id,
                    s->remote, old->remote);
        g->st_.sessions_replaced++;
        gw__send_reject(old, 1, GSTP_REJ_REPLACED, 0, "replaced by a newer session");
        gw__sess_close(old, "replaced");
    }
    if (s->store_durable > t->durable_seq)
        t->durable_seq = s->store_durable;
    if (t->submitted_seq < t->durable_seq)
        t->submitted_seq = t->durable_seq;
    t->sess = s;
    s->term = t;
    s->state = S_ONLINE;
    hs_release(s);
    memcpy(t->secret_fp, s->secret_fp, sizeof t->secret_fp);
    t->sessions++;
    t->connected_since_ns = time_utc_ns();
    t->last_seen_ns = t->connected_since_ns;
    snprintf(t->remote, sizeof t->remote, "%s", s->remote);
    t->sample_rate = s->sample_rate;
    t->nominal_hz = s->nominal_hz;
    t->nchannels = s->nchannels;
    /* Decision 10: provisioned ratios are authoritative; what the terminal reports is kept for
     * display and a difference is flagged, not refused (the terminal still measures). */
    t->hello_vt = s->hello_vt;
    t->hello_ct = s->hello_ct;
    t->config_conflict =
        ratio_conflict(s->hello_vt, s->prov_vt) || ratio_conflict(s->hello_ct, s->prov_ct);
    if (t->config_conflict)
        log_limited(LOG_WARN, t->id,
                    "%s: HELLO ratios VT %g CT %g differ from provisioned VT %g CT %g; the "
                    "provisioned ones are used",
                    t->id, s->hello_vt, s->hello_ct, s->prov_vt, s->prov_ct);
    snprintf(t->fw, sizeof t->fw, "%s", s->fw);
    snprintf(t->hw, sizeof t->hw, "%s", s->hw);
    g->st_.handshakes_ok++;
    g->st_.online++;
    gw__publish_stats(g);
    gw__term_event(g, t, GW_TERM_ONLINE); /* visible to other threads at once */

    gstp_welcome_t w;
    memset(&w, 0, sizeof w);
    w.server_time_ns = time_utc_ns();
    w.heartbeat_s = (uint16_t)g->o.heartbeat_s;
    w.ack_window = (uint16_t)g->o.ack_window;
    w.resume_seq = t->durable_seq;
    w.session_id = s->id;
    w.codecs = GSTP_CODECS_KNOWN; /* raw, codec 1 and codec 2 blocks (protocol.md 6.7, 7.4) */
    SEND(s, gstp_encode_welcome, &w);
    s->last_ping_ns = time_mono_ns(); /* the first PING is due heartbeat_s after WELCOME */
    s->pings_out = 0;
    log_info(t->id, "online from %s (session %u, resume after seq %llu, fw %s)", s->remote, s->id,
             (unsigned long long)t->durable_seq, s->fw[0] ? s->fw : "?");
    gw__session_event(g, s, GW_TERM_ONLINE);

    store_item_t *it = store_item_new(STORE_ITEM_SESSION_OPEN);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    it->cookie = s->gw->cookie_base | s->id;
    it->when_ns = t->connected_since_ns;
    snprintf(it->remote, sizeof it->remote, "%s", s->remote);
    store_submit(g->st, it);
    gw__send_pending_commands(s);
    gw__update_reading(s);
}

/* ---- accept -----------------------------------------------------------------------------------
 */

void gw__on_connection(uv_stream_t *server, int status)
{
    gw_t *g = server->data;
    if (status < 0) {
        log_limited(LOG_WARN, "accept", "accept error: %s",
                    uv_strerror(status)); /* EMFILE floods */
        return;
    }
    sess_t *s = xcalloc(1, sizeof *s);
    s->gw = g;
    s->state = S_HELLO;
    if (uv_tcp_init(g->loop, &s->tcp) < 0) {
        free(s);
        return;
    }
    g->open_handles++;
    s->next = g->sessions;
    if (g->sessions)
        g->sessions->prev = s;
    g->sessions = s;
    g->st_.connections_open++;
    g->st_.connections_total++;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) < 0) {
        gw__sess_close(s, "accept failed");
        return;
    }
    s->id = ++g->next_sess_id;
    s->accepted_ns = s->last_rx_ns = time_mono_ns();
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(s->ip, sizeof s->ip, "?");
    snprintf(s->remote, sizeof s->remote, "?");
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            char full[INET6_ADDRSTRLEN];
            uv_ip6_name(a, full, sizeof full);
            snprintf(s->remote, sizeof s->remote, "[%s]:%d", full, ntohs(a->sin6_port));
            const uint8_t *b = a->sin6_addr.s6_addr;
            static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (memcmp(b, v4mapped, sizeof v4mapped) == 0) {
                snprintf(s->ip, sizeof s->ip, "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
            } else {
                /* Limits and login-failure counters apply per /64: one subscriber usually gets
                 * a whole /64, so counting single IPv6 addresses would be no limit at all. */
                snprintf(s->ip, sizeof s->ip, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0],
                         b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
            }
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, s->ip, sizeof s->ip);
            snprintf(s->remote, sizeof s->remote, "%s:%d", s->ip, ntohs(a->sin_port));
        }
    }
    /* Caps (decision 6): global, per address, and concurrent handshakes per address. Refusals
     * are BUSY with retry_after 5 s and are not failed logins: the client did nothing wrong. */
    uintptr_t per_ip = (uintptr_t)hmap_get(&g->per_ip, s->ip);
    uintptr_t hs = (uintptr_t)hmap_get(&g->hs_ip, s->ip);
    int max_ip = g->o.max_per_ip > 0 ? g->o.max_per_ip : g->o.max_connections;
    const char *limit = g->st_.connections_open > (uint64_t)g->o.max_connections ? "global"
                        : per_ip >= (uintptr_t)max_ip                            ? "per-address"
                        : hs >= (uintptr_t)g->o.max_hs_per_ip ? "per-address handshake"
                                                              : NULL;
    if (limit) {
        g->st_.connections_refused++;
        log_limited(LOG_WARN, s->ip, "connection from %s refused: %s limit reached", s->remote,
                    limit);
        gw__send_reject(s, 0, GSTP_REJ_BUSY, 5, "connection limit reached");
        gw__sess_close(s, "limit");
        return;
    }
    ip_count_add(&g->per_ip, s->ip, +1);
    s->counted_ip = 1;
    ip_count_add(&g->hs_ip, s->ip, +1);
    s->counted_hs = 1;
    uv_tcp_nodelay(&s->tcp, 1);
    uv_tcp_keepalive(&s->tcp, 1, 60); /* backstop for half-open links; heartbeats come first */
    s->decbuf = xmalloc(DEC_BUF_SIZE);
    gstp_decoder_init(&s->dec, s->decbuf, DEC_BUF_SIZE);
    gw__update_reading(s);
}

/* ---- revocation ---------------------------------------------------------------------------------
 */

/* Ends the sessions of terminals that were removed or got a new secret since they logged in
 * (e.g. `gridsense terminal remove` for a stolen device): revocation takes effect within a second,
 * not at the next reconnect. Costs one point query per online terminal, only when something
 * changed. */
void gw__check_credentials(gw_t *g)
{
    int64_t v;
    if (store_credentials_version(g->st, &v) < 0 || v == g->cred_version)
        return;
    g->cred_version = v;
    for (sess_t *s = g->sessions; s; s = s->next) {
        if (s->state != S_ONLINE)
            continue;
        store_terminal_t t;
        int rc = store_terminal_get(g->st, s->term->id, &t);
        uint8_t fp[16];
        if (rc == 0)
            crypto_generichash(fp, sizeof fp, t.secret, sizeof t.secret, NULL, 0);
        sodium_memzero(t.secret, sizeof t.secret);
        if (rc == GS_ENOTFOUND) {
            log_warn(s->term->id, "terminal removed: ending its session");
            gw__send_reject(s, 1, GSTP_REJ_UNKNOWN_ID, 0, "terminal removed");
            gw__sess_close(s, "terminal removed");
        } else if (rc == 0 && sodium_memcmp(fp, s->term->secret_fp, sizeof fp) != 0) {
            log_warn(s->term->id, "secret replaced: ending its session");
            gw__send_reject(s, 1, GSTP_REJ_BAD_AUTH, 0, "credentials changed, log in again");
            gw__sess_close(s, "credentials changed");
        }
    }
}
