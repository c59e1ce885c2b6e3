/* web internals shared by web.c (HTTP) and ws.c (WebSocket); not for other modules. */
#ifndef GS_WEB_INT_H
#define GS_WEB_INT_H

#include "web/admit.h"
#include "web/web.h"

struct lws;
struct lws_context;
struct lws_vhost;

struct web {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    web_handler_fn fn;
    void *ud;
    web_opts_t o;     /* the ws_* defaults filled in */
    int port;         /* bound port */
    int stopped;      /* web_stop has run (first lws_context_destroy) */
    char iface[64];   /* the host we listen on, "" = any */
    uv_idle_t reaper; /* completes the release of a context whose vhost failed */
    int reap_busy;    /* reaper saw lws handles still on the loop */
    int lfd;          /* listening socket until adm takes it, else -1 */
    adm_t *adm;       /* connection admission (admit.c), NULL until started */

    /* deferred responses waiting for web_complete (cut loose by web_stop) */
    struct web_pending *pendings;

    /* WebSocket (ws.c) */
    web_ws_cbs_t wscb;   /* wscb.ws_filter NULL = upgrades refused */
    struct web_ws *wss;  /* connections from an accepted upgrade to on_close */
    uv_timer_t ws_timer; /* heartbeat and queue-cap deadlines */
    int ws_timer_on;     /* ws_timer initialised (closed by web_stop) */
    web_stats_t ws_st;   /* the ws_* counters */
};

/* ---- web.c for ws.c ---- */

/* A copy of the request head of wsi (its method must be GET) as a web_request_t for ws_filter:
 * returns an owned holder with *req pointing into it, or NULL (not a GET, no usable path). */
void *web_req_snapshot(struct lws *wsi, web_request_t *req);
void web_req_snapshot_free(void *holder);

/* Checks an extra header block (web_response_t.headers): NULL if it may be sent (*cc = it has
 * a Cache-Control line), else what is wrong. */
const char *web_xhdr_check(const buf_t *b, int *cc);

/* ---- ws.c for web.c ---- */

/* Fills the ws_* defaults of *o (those left 0). */
void ws_opts_fill(web_opts_t *o);

/* 1 if an lws user pointer is a WebSocket connection of ours (not an HTTP session). */
int ws_is(const void *user);

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: runs ws_filter; returns the callback's result (0 go on,
 * -1 refused: the answer is written and lws hangs up). */
int ws_confirm_upgrade(web_t *w, struct lws *wsi, const char *proto);

/* The WebSocket callbacks of our protocol, and the end of a connection whose user pointer is a
 * ws (LWS_CALLBACK_CLOSED_HTTP / WSI_DESTROY while still upgrading). */
int ws_callback(web_t *w, struct lws *wsi, int reason, void *user, void *in, size_t len);

/* After lws is set up: the heartbeat timer. Before lws_context_destroy in web_stop: stops it.
 * After lws_context_destroy: ends what lws did not close. */
void ws_start(web_t *w);
void ws_stop(web_t *w);
void ws_stop_after(web_t *w);

#endif
