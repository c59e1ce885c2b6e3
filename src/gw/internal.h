/* gw internals: the private state and the functions the gateway's files share (src/gw only; the
 * public interface is gw.h). Internal functions carry the gw__ prefix; everything else stays
 * static in its file.
 *
 *   session.c    session lifecycle, output, read path and frame dispatch, liveness (tick)
 *   handshake.c  accept and connection caps, HELLO/AUTH, failed-login rate limiting, revocation
 *   blocks.c     chunk checks, reassembly, observer, store submission, ACKs after commit
 *   commands.c   delivery and pacing, RESULT, creation and expiry through the store writer
 *   gw.c         start/stop, store completions, periodic work, registry, stats
 *
 * Threads: everything here runs on the loop thread, except store_done (gw.c), which only queues
 * the writer's committed batch and wakes the loop.
 */
#ifndef GS_GW_INTERNAL_H
#define GS_GW_INTERNAL_H

#include "gw.h"

#include "core/hmap.h"
#include "core/log.h"

#include <stdint.h>

#define READ_BUF_SIZE  (64 * 1024)
#define TIMESYNC_SLOTS 8

enum { S_HELLO, S_AUTH, S_ONLINE, S_CLOSING };

typedef struct sess sess_t;

/* A terminal known to the registry. Created on first successful login, never freed before the
 * gateway (so store callbacks and API snapshots can refer to it by id safely). */
typedef struct term {
    char id[GSTP_MAX_ID + 1];
    sess_t *sess; /* current session, NULL when offline */
    char remote[64];
    int64_t connected_since_ns, last_seen_ns;
    uint64_t frames, blocks, bytes, sessions, duplicates;
    uint64_t durable_seq;   /* highest seq the store reported committed */
    uint64_t submitted_seq; /* highest seq handed to the store (>= durable_seq) */
    uint32_t inflight;      /* blocks handed to the store and not yet reported back */
    int ack_dirty;          /* an ACK should be sent at the end of this batch */
    struct term *dirty_next;
    uint32_t sample_rate;
    int nominal_hz, nchannels;
    double hello_vt, hello_ct; /* ratios the terminal reported at its last login, 0 = none */
    int config_conflict;       /* they differ from the provisioned (authoritative) ratios */
    char fw[GSTP_MAX_STR + 1], hw[GSTP_MAX_STR + 1];
    int has_status;
    int64_t status_rx_ns;
    gstp_status_t status;
    uint8_t secret_fp[16]; /* BLAKE2b of the secret the current session logged in with */
    /* snapshot publication (gw__publish_term) */
    gw_term_info_t *pub; /* its entry in the published table (NULL before the first) */
    int pub_dirty;       /* changed in a way the counters below do not show (durable_seq) */
    uint64_t pub_frames, pub_bytes; /* frames and bytes when last published */
    int pub_online;                 /* online when last published */
} term_t;

struct sess {
    uv_tcp_t tcp; /* must stay first: handle->data is not used, we cast */
    gw_t *gw;
    sess_t *prev, *next;
    int state;
    int handle_closing; /* uv_close called */
    int reading;
    int counted_ip;
    int counted_hs;     /* counted in the address's unauthenticated handshakes */
    int id_provisioned; /* HELLO named a provisioned id: its failures count for the id too */
    int close_logged;
    int close_asap; /* close at the next tick (see close_asap()) */
    uint32_t id;
    char remote[64];
    char ip[48]; /* address key for limits: IPv4 text, or the IPv6 /64 prefix */
    term_t *term;
    int64_t accepted_ns, last_rx_ns, last_ping_ns, closing_since_ns;
    uint32_t ping_token; /* token of the last PING sent (incrementing) */
    int pings_out;       /* PINGs in a row not answered yet (protocol.md 9.1) */
    uint8_t version;     /* session version (from CHALLENGE on, every frame carries it) */
    gstp_decoder_t dec;
    uint8_t *decbuf;
    /* handshake */
    uint8_t *hello; /* copy of the HELLO payload for the MAC */
    size_t hello_len;
    char hello_id[GSTP_MAX_ID + 1];
    uint8_t secret[GSTP_SECRET_LEN];
    uint8_t nonce[GSTP_NONCE_LEN];
    uint64_t store_durable; /* durable seq read from the store at HELLO */
    uint8_t secret_fp[16];  /* fingerprint of the secret, kept after the secret is wiped */
    uint32_t sample_rate;
    int nominal_hz, nchannels;
    double hello_vt, hello_ct, prov_vt, prov_ct; /* HELLO and provisioned ratios */
    char fw[GSTP_MAX_STR + 1], hw[GSTP_MAX_STR + 1];
    gw_chan_t chans[GSTP_MAX_CHANNELS]; /* HELLO channels, by index */
    uint16_t chan_present;              /* bit i: chans[i] described */
    double declared_v;
    /* block reassembly */
    uint8_t *blk;             /* the block's raw sample sets, decoded chunk by chunk */
    size_t blk_len, blk_size; /* raw bytes filled / the block's raw size */
    uint8_t *blk_enc;         /* codec 1: the chunks' segments, concatenated as received */
    size_t blk_enc_len, blk_enc_cap;
    int blk_type;
    gstp_block_hdr_t blk_hdr;
    gstp_event_hdr_t blk_ev;
    uint8_t blk_next_chunk;
    uint32_t blk_next_sample;
    /* counters */
    uint64_t frames, bytes, blocks;
    /* TIME_SYNC commands in flight: server send time by command id */
    int64_t ts_id[TIMESYNC_SLOTS], ts_tx[TIMESYNC_SLOTS];
    int ts_pos;
    /* command delivery (see gw__send_pending_commands) */
    int64_t cmd_cursor; /* every pending command with id <= cursor was sent in this session */
    int cmd_sweep_done; /* the pending queue was read to its end; later ones come by the poll */
    int cmd_ninflight;
    struct cmd_inflight *cmd_inflight; /* GW_CMD_INFLIGHT_MAX entries, allocated at first use */
    uv_shutdown_t shut;
    char close_reason[64];
};

struct gw {
    uv_loop_t *loop;
    store_t *st;
    gw_opts_t o;
    uv_tcp_t listener;
    uv_timer_t tick;
    uv_async_t async;
    int port;
    int stopping;
    int open_handles; /* listener, tick, async + sessions not yet closed */
    void (*stop_done)(void *ud);
    void *stop_ud;
    sess_t *sessions;     /* all sessions, any state */
    gw_block_cb block_cb; /* block observer (analysis), may be NULL */
    void *block_ud;
    gw_term_cb term_cb; /* terminal state observer (live feed), may be NULL */
    void *term_ud;
    gw_cmd_cb cmd_cb; /* command state observer (live feed), may be NULL */
    void *cmd_ud;
    gw_session_cb sess_cb; /* session observer (several nodes: src/cluster), may be NULL */
    void *sess_ud;
    hmap_t terms;    /* id -> term_t */
    hmap_t per_ip;   /* ip -> (uintptr_t) connection count */
    hmap_t hs_ip;    /* ip -> (uintptr_t) sessions still in the handshake */
    hmap_t authfail; /* "i:<ip>" / "t:<id>" -> authfail_t */
    uint32_t next_sess_id;
    uint64_t cookie_base; /* start time in the high half: session ids unique across restarts */
    int64_t last_cmd_id;
    int64_t last_poll_ns;
    int64_t cred_version; /* store_credentials_version seen last */
    int paused;
    size_t backlog_bytes; /* block bytes handed to the store and not yet committed */
    size_t reasm_bytes;   /* block bytes under reassembly */
    uint8_t readbuf[READ_BUF_SIZE];
    int readbuf_busy;
    /* committed batches from the writer thread */
    uv_mutex_t done_lock;
    store_item_t *done_head, *done_tail;
    term_t *dirty;
    gw_stats_t st_;
    /* command creations handed to the writer and not yet reported (gw_command_submit) */
    struct cmd_req *cmd_reqs;
    struct cmd_cancel *cmd_cancels; /* cancels at the writer: their commands are held back */
    /* a STORE_ITEM_COMMAND_EXPIRE is with the writer */
    int expire_pending;
    /* Published snapshots for other threads (gw_term_info / gw_stats / gw_term_list from a
     * thread other than the loop's): written by the loop thread, read by any, all under pub_lock,
     * which is held only for a hash lookup and a memcpy (never during I/O). */
    uv_thread_t loop_thread; /* the thread gw_start ran on */
    uv_mutex_t pub_lock;
    hmap_t pub_terms;           /* id -> gw_term_info_t (malloc'ed, never freed before gw_free) */
    gw_term_info_t **pub_arr;   /* the same entries in publication order, for gw_term_list */
    size_t pub_n, pub_cap;
    gw_stats_t pub_stats;
};

/* A command creation waiting for the writer (commands.c). */
typedef struct cmd_req cmd_req_t;

/* Creations the writer reported in one batch, in report order (process_done, commands.c). */
typedef struct {
    cmd_req_t *head, *tail;
} cmd_req_list_t;

/* Encodes msg with the gstp encoder fn and queues it on session s (an encoder failure is logged:
 * our own bug, nothing is sent). */
#define SEND(s, fn, msg)                                                                           \
    do {                                                                                           \
        uint8_t fb_[GSTP_MAX_FRAME];                                                               \
        int n_ = fn(fb_, sizeof fb_, msg);                                                         \
        if (n_ < 0)                                                                                \
            log_error(gw__who(s), "%s failed: %d", #fn, n_);                                       \
        else                                                                                       \
            gw__sess_write(s, fb_, n_);                                                            \
    } while (0)

/* ---- session.c: lifecycle, output, reading, liveness ---- */

/* The name to log a session under: its terminal id once known, else its address. */
const char *gw__who(const sess_t *s);

/* Queues one encoded frame of len bytes (copied). A peer that does not take its output (more
 * than max_write_queue bytes pending) or a failed write marks the session close_asap. */
void gw__sess_write(sess_t *s, const uint8_t *frame, int len);

/* Sends REJECT (frame_bye 0, counted per reason) or BYE (frame_bye 1) with reason, retry_after
 * and message. Does not close the session. */
void gw__send_reject(sess_t *s, int frame_bye, uint16_t reason, uint16_t retry, const char *msg);

/* Sends ERROR code about a frame of type `type`. */
void gw__send_error(sess_t *s, uint16_t code, uint8_t type, const char *msg);

/* Moves a session to CLOSING: detaches it from its terminal, logs the session end, then lets
 * queued writes finish (shutdown) before the handle is closed and s freed (in the close
 * callback, never in this call). Idempotent. */
void gw__sess_close(sess_t *s, const char *reason);

/* Submits the end of an online session to the sessions log, once per session. */
void gw__log_session_close(sess_t *s, const char *reason);

/* Starts or stops reading s as backpressure, the ack window and its state require. */
void gw__update_reading(sess_t *s);

/* Global backpressure: pauses or resumes reading on every session when the store backlog
 * crosses the high or low mark. */
void gw__check_pressure(gw_t *g);

/* Per-session work of the tick: sessions marked close_asap are closed, handshake timeouts,
 * PINGs and BYE DEAD (protocol.md 9.1), and the close grace of closing sessions. */
void gw__sessions_tick(gw_t *g);

/* ---- handshake.c: accept, login, rate limiting ---- */

/* The listener's connection callback (uv_connection_cb; server->data is the gateway): creates
 * the session, keys its address and applies the connection caps. */
void gw__on_connection(uv_stream_t *server, int status);

/* Drops the session from its address's connection and handshake counts. Idempotent. */
void gw__release_counts(sess_t *s);

/* Ends a handshake refused for what the client sent (REJECT reason, or RATE_LIMIT for a source
 * over its failed-login limit; protocol decision 6) and closes the session. */
void gw__login_failed(sess_t *s, uint16_t reason, const char *msg);

/* Handles HELLO in state S_HELLO: CHALLENGE and S_AUTH, or a REJECT and closing. */
void gw__on_hello(sess_t *s, const gstp_frame_t *f);

/* Handles AUTH in state S_AUTH: WELCOME and S_ONLINE (replacing the terminal's older session),
 * or a REJECT and closing. */
void gw__on_auth(sess_t *s, const gstp_frame_t *f);

/* Ends the sessions of terminals removed or given a new secret since they logged in (a read,
 * only when the store's credentials version changed). */
void gw__check_credentials(gw_t *g);

/* ---- blocks.c: reassembly, store submission, ACKs ---- */

/* Handles a WAVEFORM or EVENT chunk of an online session: reassembles the block and hands it to
 * the observer and the store, or ends the session on a protocol violation. */
void gw__on_block(sess_t *s, const gstp_frame_t *f);

/* Frees the session's block under reassembly, if any. */
void gw__free_block(sess_t *s);

/* Applies one STORE_ITEM_BLOCK the writer reported (durable seq, backlog, counters); the item
 * stays the caller's. */
void gw__block_done(gw_t *g, const store_item_t *it);

/* Sends one cumulative ACK per terminal whose durable seq moved since the last call. */
void gw__send_acks(gw_t *g);

/* ---- commands.c: delivery, RESULT, creation, expiry ---- */

/* Sends the session's next page of pending commands, as many as its in-flight window allows. */
void gw__send_pending_commands(sess_t *s);

/* Handles RESULT from an online session (state change through the store writer). */
void gw__on_result(sess_t *s, const gstp_frame_t *f);

/* Command work of the tick (wall = time_utc_ns()): paced delivery, creation timeouts, and once
 * a second expiry and commands created by other processes. Updates g->last_poll_ns. */
void gw__commands_tick(gw_t *g, int64_t wall);

/* Takes a command item the writer reported (creation: its request is appended to *done;
 * expiry; an update already final). Returns 1 if it was one of these, 0 otherwise (the caller
 * then treats it as any other item). The item stays the caller's. */
int gw__command_item_done(gw_t *g, const store_item_t *it, cmd_req_list_t *done);

/* Delivers new commands, then answers and frees the creations in the list `done`. */
void gw__finish_cmd_reqs(gw_t *g, cmd_req_t *done);

/* Looks for commands created since the last look and delivers them (store_command_new_since). */
void gw__deliver_new_commands(gw_t *g);

/* Frees the creations never reported by the writer (gw_free). */
void gw__commands_free(gw_t *g);

/* ---- gw.c ---- */

/* Frees a map whose values are malloc'ed (terms, authfail), and the map. */
void gw__free_map(hmap_t *m);

/* Calls gw_stop's callback once the gateway is stopping and its last handle is closed. */
void gw__maybe_finish_stop(gw_t *g);

/* Publishes terminal t's current state for readers on other threads at once (the tick calls it
 * for what changed otherwise). Loop thread. */
void gw__publish_term(gw_t *g, term_t *t);

/* A login, logout or STATUS (GW_TERM_*) of t: publishes t at once and tells the terminal
 * observer. Loop thread. */
void gw__term_event(gw_t *g, term_t *t, int event);

/* Tells the session observer (if any) that s went online or offline (GW_TERM_ONLINE /
 * GW_TERM_OFFLINE). Loop thread. */
void gw__session_event(gw_t *g, sess_t *s, int event);

/* Publishes the gateway counters (gw_stats) at once, on online/offline transitions: a copy
 * (paused_reading stays as the last tick counted it). */
void gw__publish_stats(gw_t *g);

#endif
