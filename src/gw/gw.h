/* gw — the terminal gateway: GSTP sessions over TCP on the libuv loop.
 *
 * Accepts terminal connections, runs the handshake (HELLO, CHALLENGE, AUTH, WELCOME/REJECT),
 * reassembles waveform blocks, hands them to the store writer and acknowledges them only after
 * the store reports them committed (acknowledged = durable), deduplicates by (terminal, seq),
 * delivers persistent commands, keeps sessions alive with PING/PONG, and keeps the registry of
 * terminals' online state and counters. One bad terminal never affects another: every input is
 * bounded and every protocol error ends only that session.
 *
 * Threads: everything runs on the loop thread except the store's commit callback, which only
 * queues the committed batch and wakes the loop with uv_async_send, and the registry reads
 * gw_term_info, gw_term_list and gw_stats, which any thread may call (see "Registry").
 */
#ifndef GS_GW_H
#define GS_GW_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gstp/gstp.h"
#include "store/store.h"

typedef struct gw gw_t;

/* Gateway settings. gw_opts_default() fills the defaults documented here. */
typedef struct {
    char host[64];            /* listen address, default "0.0.0.0" */
    int port;                 /* default 7100; 0 = OS-chosen */
    int heartbeat_s;          /* PING interval, default 30; BYE DEAD when 3 PINGs in a row are
                                 unanswered when the 4th is due */
    int ack_window;           /* max unacknowledged blocks per terminal, default 64 */
    int handshake_timeout_ms; /* default 10000 */
    int max_connections;      /* global, default 19000 */
    int max_per_ip;           /* connections per remote address (IPv4, IPv6 /64), setting
                                 max_connections_per_address; 0 (default) = max_connections, so
                                 a carrier NAT's terminals are not capped below the global cap */
    int max_hs_per_ip;        /* concurrent unauthenticated sessions per address, default 256 */
    int auth_fail_per_ip;     /* failed logins per address per minute before RATE_LIMIT, 600 */
    int auth_fail_per_id;     /* failed logins per provisioned id per minute, default 5 */
    size_t max_block_bytes;   /* largest reassembled block accepted, default 256 KiB */
    size_t inflight_high;     /* stop reading when bytes waiting for the store exceed, 64 MiB */
    size_t inflight_low;      /* resume below, default 32 MiB */
    size_t max_reassembly;    /* bytes of half-received blocks in total, default 128 MiB */
    size_t max_write_queue;   /* a session whose unsent output exceeds this is closed, 1 MiB */
    int64_t command_ttl_ns;   /* default TTL for commands, 24 h */
    /* commands (docs/operations.md [commands]) */
    int cmd_max_pending;           /* pending commands per terminal before creation is refused
                                      (GS_ELIMIT), default 100 */
    int cmd_max_inflight;          /* commands sent in a session and not yet answered, at most;
                                      default 16, 1..GW_CMD_INFLIGHT_MAX */
    int64_t cmd_create_timeout_ns; /* a creation the database has not taken by then is
                                      cancelled (GS_ETIMEOUT, nothing created), default 30 s */
} gw_opts_t;

#define GW_CMD_INFLIGHT_MAX 64

/* Fills *o with the defaults above. */
void gw_opts_default(gw_opts_t *o);

/* Binds the listener and starts the gateway on `loop`, using `st` (whose writer it starts and
 * whose commit callback it owns). The store must outlive the gateway. On failure returns a
 * negative code with a one-line reason in err; a listener it had opened is then closing, and its
 * memory is released when the loop next runs (uv_run, even UV_RUN_NOWAIT). */
int gw_start(uv_loop_t *loop, store_t *st, const gw_opts_t *opts, gw_t **out, char *err,
             size_t errlen);

/* The bound TCP port (useful with port 0). */
int gw_port(const gw_t *g);

/* Graceful stop, called on the loop thread: stops accepting and reading, drains the store
 * writer (committing everything received), sends the final ACKs, sends BYE (SHUTDOWN) to every
 * session, and closes all handles once their writes are done. `done` is called on the loop when
 * every handle of the gateway is closed. */
void gw_stop(gw_t *g, void (*done)(void *ud), void *ud);

/* Frees the gateway after gw_stop's callback (or after uv_run returned). NULL is a no-op. */
void gw_free(gw_t *g);

/* ---- Registry (any thread) ----
 *
 * The loop thread publishes a copy of each terminal's state and of the counters into a table
 * under a mutex that is held only for a lookup and a memcpy (never during I/O or frame
 * processing), so a reader on another thread (the web thread) never delays a terminal:
 *  - at once on login (online), logout (offline), and each STATUS;
 *  - on the gateway's 250 ms tick for everything else that changed (frame, block and byte
 *    counters, last_seen, durable_seq, and all of gw_stats).
 * A reader on another thread therefore sees online/offline and status transitions as soon as the
 * loop has handled them, and counters at most one tick (250 ms, more if the loop is late) old.
 * Every copy is of one consistent publication (never a torn struct). Called on the loop thread
 * itself, gw_term_info and gw_stats read the live state (never stale), as before. */

/* Snapshot of one terminal's runtime state (only terminals seen since start have one). */
typedef struct {
    char id[GSTP_MAX_ID + 1];
    int online;
    char remote[64];
    int64_t connected_since_ns; /* current or last session start, 0 if never */
    int64_t last_seen_ns;       /* last frame received */
    uint64_t frames, blocks, bytes, sessions, reconnects;
    uint64_t durable_seq; /* highest committed seq */
    uint64_t duplicates;  /* blocks received again and ignored */
    uint32_t sample_rate;
    int nominal_hz, nchannels;
    double hello_vt_ratio, hello_ct_ratio; /* as the terminal reported them, 0 = not reported */
    int config_conflict; /* HELLO ratios differ from the provisioned ones (which are used) */
    char fw_version[GSTP_MAX_STR + 1];
    char hw_version[GSTP_MAX_STR + 1];
    int has_status;
    int64_t status_received_ns;
    gstp_status_t status;
} gw_term_info_t;

/* Fills *out for terminal id. Returns 0, or GS_ENOTFOUND if not seen since start (from another
 * thread: not yet published, i.e. not logged in since start). Any thread. */
int gw_term_info(gw_t *g, const char *id, gw_term_info_t *out);

/* Copies every published terminal (each terminal seen since start, in order of its first
 * login) into a malloc'ed array *out of *n entries (the caller frees it with free(); NULL and 0
 * when there are none). Each entry is one consistent publication; entries are copied a few
 * hundred per hold of the lock, so a large fleet never holds up the loop. Any thread (on the
 * loop thread everything changed is published first, so nothing is stale). Returns 0. */
int gw_term_list(gw_t *g, gw_term_info_t **out, size_t *n);

/* Gateway counters for /metrics. */
typedef struct {
    uint64_t connections_open, connections_total, connections_refused;
    uint64_t handshakes_ok, handshakes_failed;
    uint64_t reject_by_reason[16];
    uint64_t frames_rx[256], frames_tx[256];
    uint64_t bytes_rx, bytes_tx;
    uint64_t blocks_received, blocks_stored, blocks_duplicate, blocks_failed;
    uint64_t acks_sent;
    uint64_t decode_skipped_bytes, decode_header_errors, decode_crc_errors, parse_errors;
    uint64_t protocol_errors, sessions_replaced, sessions_dead, sessions_stalled;
    uint64_t commands_sent, commands_done, commands_failed, commands_expired;
    uint64_t online, paused_reading;
    /* Sample data of the block chunks received, by block codec (0 raw, 1 wcodec, 2 wcodec with
     * the block model): bytes on the wire (the chunks' sample bytes, headers excluded) and the
     * raw size they stand for. */
    uint64_t sample_wire_bytes[3], sample_raw_bytes[3];
    size_t inflight_bytes, store_queue_items, store_queue_bytes;
} gw_stats_t;

/* Fills *out with the counters: live on the loop thread, the last publication (at most one
 * tick old; store_queue_* read fresh) on any other thread. */
void gw_stats(gw_t *g, gw_stats_t *out);

/* ---- State observers (the live feed's "fleet" and "commands" topics) ---- */

enum { GW_TERM_ONLINE = 1, GW_TERM_OFFLINE, GW_TERM_STATUS };

/* Called on the loop thread when a terminal logs in (GW_TERM_ONLINE), its session ends
 * (GW_TERM_OFFLINE) or it reports STATUS (GW_TERM_STATUS), with its state as just published
 * (gw_term_info from any thread sees at least this); `ti` is valid during the call only. */
typedef void (*gw_term_cb)(void *ud, int event, const gw_term_info_t *ti);

/* Installs (or with NULL removes) the terminal observer. Loop thread. */
void gw_set_term_observer(gw_t *g, gw_term_cb cb, void *ud);

/* Called on the loop thread when the store writer has committed a command's state change: its
 * creation (state STORE_CMD_QUEUED, also for gw_command_submit, before that call's callback),
 * sent, acked, done or failed, so that a reader connection already sees the row. Expiry is
 * committed for many commands in one statement: it is reported once with cmd_id 0, terminal_id
 * NULL, state STORE_CMD_EXPIRED and `count` the number expired (read them again). Loop thread. */
typedef void (*gw_cmd_cb)(void *ud, int64_t cmd_id, const char *terminal_id, int state, int count);

/* Installs (or with NULL removes) the command observer. Loop thread. */
void gw_set_command_observer(gw_t *g, gw_cmd_cb cb, void *ud);

/* ---- Block observer (the analysis taps the stream here) ---- */

/* One sampled channel as the terminal described it in HELLO. */
typedef struct {
    uint8_t index, kind, phase, unit; /* GSTP channel fields */
    float scale;                      /* engineering units (secondary) per count */
} gw_chan_t;

/* A new (not duplicate) WAVEFORM block accepted from a terminal. */
typedef struct {
    uint64_t seq;
    int64_t t0_ns;
    uint32_t sample_rate;
    int nominal_hz;
    uint32_t channel_mask;
    uint8_t nchannels, sample_fmt, time_quality;
    uint32_t nsamples;
    double declared_v;               /* the terminal's declared voltage at login, 0 = not set */
    gw_chan_t ch[GSTP_MAX_CHANNELS]; /* the block's channels (those in channel_mask), in order */
} gw_block_info_t;

/* Called on the loop thread once per new WAVEFORM block, when it is handed to the store (before
 * it is durable: the observer must not delay acknowledgement). `samples` (interleaved,
 * little-endian) is borrowed for the duration of the call. Returns the block's STORE_ANA_* bits
 * (store_item_t.ana_pending: 0 = analysed live as usual; SKIPPED when it was not, RESTART when
 * the live analysis starts anew there), which the store records in the analysis backlog with
 * the block. EVENT blocks, which are not observed, and every block while no observer is set,
 * are recorded as SKIPPED. */
typedef int (*gw_block_cb)(void *ud, const char *terminal_id, const gw_block_info_t *b,
                           const uint8_t *samples, size_t len);

/* Installs (or with NULL removes) the block observer. Loop thread. */
void gw_set_block_observer(gw_t *g, gw_block_cb cb, void *ud);

/* Outcome of gw_command_submit, called once on the loop thread. rc: 0 created (cmd_id > 0;
 * sent = 1 if it went to the online terminal at once, its row then becomes `sent` when the
 * writer applies it), GS_ENOTFOUND (no such terminal), GS_ELIMIT (the terminal has
 * cmd_max_pending pending commands), GS_ETIMEOUT (the database did not take the creation within
 * cmd_create_timeout_ns, e.g. locked by another process: nothing was or will be created), or
 * another negative code (store failure, e.g. at shutdown: nothing created). */
typedef void (*gw_command_cb)(void *ud, int rc, int64_t cmd_id, int sent);

/* Creates a persistent command for terminal `id` (verb and TLV args as in GSTP; TTL 0 = the
 * default) through the store writer: the loop thread never writes to or waits for the database.
 * Returns 0 and calls cb later (never from inside this call), or a negative code (GS_ERANGE for
 * oversized args, GS_ESTATE when the gateway is stopping) without calling it. Loop thread. */
int gw_command_submit(gw_t *g, const char *id, int verb, const uint8_t *args, size_t args_len,
                      int64_t ttl_ns, gw_command_cb cb, void *ud);

/* Outcome of gw_command_cancel, called once on the loop thread with the writer's answer in
 * it->result: 0 cancelled (it will never be sent), GS_ENOTFOUND (no such command), GS_ESTATE (no
 * longer queued: sent, acked or final), or another negative code (not stored). `it` (with its
 * acct) is borrowed for the call. */
typedef void (*gw_cancel_cb)(void *ud, const store_item_t *it);

/* Cancels a queued command through the store writer. `it` is a STORE_ITEM_ACCOUNT whose acct is
 * a STORE_ACCT_COMMAND_CANCEL of acct->object_id (with its audit row); ownership passes (its
 * notify is cleared: the answer comes through cb). From now until the writer has applied it the
 * gateway does not send that command, and every send is written before the cancel (one writer,
 * items in order), so a cancel that succeeds is one of a command never sent. Returns 0 and calls
 * cb later, or GS_ESTATE (stopping: the item is freed, cb not called). Loop thread. */
int gw_command_cancel(gw_t *g, store_item_t *it, gw_cancel_cb cb, void *ud);

/* ---- Several nodes on one database (src/cluster) ----
 * The gateway knows nothing of other nodes: the cluster module watches its sessions through
 * this observer, ends a session another node took over (gw_session_end) and, when told a
 * command was queued for a terminal, has it looked for at once (gw_commands_check). */

/* Called on the loop thread when a terminal's session goes online (GW_TERM_ONLINE, after the
 * WELCOME is queued) or ends (GW_TERM_OFFLINE, also when a newer session of the same terminal
 * replaced it, and at gw_stop), with the state just published and the session's id: the id of
 * the sessions log (GET /terminals/{id}/sessions), unique across restarts of this gateway but
 * not across nodes. `ti` is valid during the call only. */
typedef void (*gw_session_cb)(void *ud, int event, const gw_term_info_t *ti, uint64_t session_id);

/* Installs (or with NULL removes) the session observer. Loop thread. */
void gw_set_session_observer(gw_t *g, gw_session_cb cb, void *ud);

/* Ends terminal_id's session if, and only if, it is online with session_id (an older session
 * of the terminal, or a newer one on this node, is left alone): sends BYE with `reason` (a
 * GSTP_REJ_* code, e.g. GSTP_REJ_REPLACED) and `msg`, then closes it (the observer sees
 * GW_TERM_OFFLINE). Returns 1 if it was ended, 0 otherwise. Loop thread. */
int gw_session_end(gw_t *g, const char *terminal_id, uint64_t session_id, uint16_t reason,
                   const char *msg);

/* A command was queued for terminal_id by another process or node: if the terminal is online
 * here, looks for new commands now instead of at the next once-a-second poll (which stays the
 * fallback). Returns 1 if it looked, 0 if the terminal is not online here. Loop thread. */
int gw_commands_check(gw_t *g, const char *terminal_id);

#endif
