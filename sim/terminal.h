/* gridsense-sim: one simulated measurement terminal (GSTP client side).
 *
 * A terminal owns a TCP handle, three timers and a GSTP decoder, all embedded so that an idle
 * terminal costs a few KiB; streaming state (retransmit ring, sample history, command cache) is
 * allocated on first use. All functions run on the simulator's loop thread.
 *
 * Lifecycle: term_init() once, term_start() to begin connecting, term_stop() at the end of the
 * run (sends BYE, closes every handle); term_free() after the loop has run the close callbacks.
 */
#ifndef GS_SIM_TERMINAL_H
#define GS_SIM_TERMINAL_H

#include <stdint.h>
#include <uv.h>

#include "gstp/gstp.h"
#include "sim.h"
#include "signal.h"

/* One block (WAVEFORM or EVENT) kept until acknowledged. Samples are int16 little-endian. */
typedef struct {
    uint64_t seq;
    int64_t t0_ns;
    int64_t written_ns; /* monotonic time its last chunk was handed to the socket, 0 = not */
    uint16_t nsamples;
    uint8_t is_event;
    uint8_t sent;        /* transmitted in an earlier session: re-send with GSTP_FLAG_RESENT */
    gstp_event_hdr_t ev; /* EVENT only */
    int16_t samples[];   /* nsamples * SIG_NCH */
} blk_t;

/* Outgoing frame: a libuv write request plus its bytes; also a node of the delay queue. */
typedef struct wreq {
    uv_write_t req;
    struct wreq *next;
    struct term *t;
    uint64_t mark_seq; /* block whose last chunk this is (latency), 0 = none */
    uint64_t due_ms;   /* delay queue: loop time at which to write */
    uint32_t len;
    uint8_t data[];
} wreq_t;

/* A capture being filled with samples (triggered event or CAPTURE command). */
typedef struct {
    uint64_t start;         /* absolute sample index of the first sample set */
    uint32_t total, filled; /* sample sets wanted / copied so far (contiguous from start) */
    uint64_t cmd_id;        /* CAPTURE command to answer when done, 0 = none */
    sig_event_t sev;        /* detector event (sev.id 0 = manual) */
    gstp_event_hdr_t ev;
    int16_t samples[];
} capture_t;

/* Command results remembered for deduplication by id. */
#define TERM_CMD_CACHE   32
#define TERM_CMD_TLV_MAX 48
#define TERM_RS_PENDING  0xFFFFu /* answer not known yet (capture in progress) */
typedef struct {
    uint64_t id;     /* any value, 0 included (the wire allows it) */
    uint8_t used;    /* 0 = free slot */
    uint16_t status; /* gstp_result_status_t or TERM_RS_PENDING */
    uint16_t tlv_len;
    uint8_t tlv[TERM_CMD_TLV_MAX];
} cmd_slot_t;

/* Received bytes (or the end of the stream) waiting out --latency-ms/--jitter-ms. */
typedef struct rxq {
    struct rxq *next;
    uint64_t due_ms; /* loop time at which the terminal gets them */
    int eof;         /* 0, or the libuv read error / UV_EOF that ended the stream */
    uint32_t len;
    uint8_t data[];
} rxq_t;

/* REBOOT commands remembered across one restart (each is answered OK after it). */
#define TERM_REBOOT_MAX 8

/* Terminal-side timeouts and backoff rules of docs/protocol.md 6.1 and 9.4. */
#define TERM_CONNECT_TIMEOUT_MS   20000u  /* TCP connect */
#define TERM_HANDSHAKE_TIMEOUT_MS 12000u  /* HELLO sent -> CHALLENGE and WELCOME */
#define TERM_ACK_TIMEOUT_MS       120000u /* blocks in flight and no ACK for this long */
#define TERM_STABLE_MS            60000u  /* ESTABLISHED this long: the backoff starts over */

typedef enum {
    TS_IDLE = 0,   /* not started, or stopped */
    TS_CONNECTING, /* TCP connect in progress */
    TS_HELLO,      /* HELLO sent, waiting for CHALLENGE */
    TS_AUTH,       /* AUTH sent, waiting for WELCOME */
    TS_ONLINE,     /* session established */
    TS_CLOSING,    /* uv_close in progress */
    TS_WAIT        /* waiting to reconnect */
} term_state_t;

typedef struct term {
    sim_t *sim;
    uint32_t index;
    uint8_t state;     /* term_state_t */
    uint8_t streaming; /* generating WAVEFORM blocks */
    uint8_t resync;    /* jump the sample timeline to now before the next block */
    uint8_t welcomed_once;
    uint8_t stopping; /* term_stop() called: never reconnect */
    uint8_t time_source, time_quality;
    uint8_t rebooting; /* the current close is a simulated reboot */
    uint8_t nreboot;   /* REBOOT commands to answer OK after the next WELCOME: reboot_ids[] */
    uint8_t nresend;   /* final RESULTs of accepted commands sent this session: resend_ids[] */
    uint8_t gps_sats;
    uint16_t heartbeat_s, ack_window;
    uint8_t wcodec; /* block codec of this session: 0 raw, 1 or 2 (announced in WELCOME, --codec) */
    uint32_t status_interval_s;
    uint32_t attempt; /* consecutive failed attempts, for the backoff */
    uint32_t tick_ms; /* current tick period */
    char id[GSTP_MAX_ID + 1];
    uint8_t secret[GSTP_SECRET_LEN];
    uint64_t rng;
    uint64_t reboot_ids[TERM_REBOOT_MAX]; /* every REBOOT accepted before the restart */
    uint64_t resend_ids[TERM_REBOOT_MAX]; /* re-sent once after the next WELCOME (8.2) */
    uint64_t next_seq;
    uint64_t acked_seq; /* highest seq acknowledged (ACK or WELCOME.resume_seq) */
    uint64_t last_rx_ms, next_status_ms, drop_at_ms, retry_ms, boot_ms;
    uint64_t hs_start_ms;     /* connect started (CONNECTING) or HELLO sent (HELLO, AUTH) */
    uint64_t online_since_ms; /* WELCOME received; the backoff resets after TERM_STABLE_MS */
    uint64_t ack_wait_ms;     /* last ACK, or first block sent with none in flight */
    uint32_t session_id;
    int16_t rsrp_dbm, temp_c10;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t tick, retry, delay, rx_delay;
    /* retransmit ring, lazily allocated: blocks [head, head + count) in seq order */
    blk_t **ring;
    uint32_t head, count, inflight; /* inflight: ring blocks [head, head+inflight) sent */
    /* delay queue (--latency-ms / --jitter-ms) */
    wreq_t *dq_head, *dq_tail;
    uint32_t dq_bytes;
    uint64_t dq_last_due;
    /* incoming delay queue: received bytes wait here with the same latency and jitter */
    struct rxq *rq_head, *rq_tail;
    uint32_t rq_bytes;
    uint64_t rq_last_due;
    /* sample history (last hist_cap sets before sig index) for pretrigger, lazily allocated */
    int16_t *hist;
    uint32_t hist_cap;
    uint64_t hist_from; /* first sample index the history holds continuously */
    capture_t *cap;
    cmd_slot_t *cmds; /* TERM_CMD_CACHE slots, lazily allocated */
    uint32_t cmd_next;
    sig_gen_t sig;
    gstp_decoder_t dec;
    uint8_t rxbuf[2 * GSTP_MAX_FRAME];
} term_t;

/* Initialises t (zeroed by the caller) as terminal `index` with its id and secret; sets up the
 * signal generator with the --schedule disturbances that select `index`, and the uv handles.
 * Returns 0, GS_EINVAL for invalid signal parameters or GS_ELIMIT if the generator cannot hold
 * the scheduled disturbances. */
int term_init(term_t *t, sim_t *sim, uint32_t index, const char *id, const uint8_t *secret);

/* Starts the terminal: first connection attempt and the tick timer. */
void term_start(term_t *t);

/* Ends the terminal: sends BYE if online and closes every handle; no reconnect. Safe to call in
 * any state and more than once. */
void term_stop(term_t *t);

/* Frees what term_init() and the session allocated. Only after every handle's close callback
 * ran (uv_run returned). */
void term_free(term_t *t);

/* Stops block generation (the run is over and the simulator drains); pending captures are
 * abandoned. */
void term_stop_generating(term_t *t);

/* Returns 1 when t holds no unacknowledged block. */
int term_drained(const term_t *t);

/* Returns the next value of t's private xorshift64* generator (backoff, jitter, status). */
static inline uint64_t term_rand(term_t *t)
{
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Link layer (impair.c): queues one complete frame for sending, directly or after the
 * configured latency and jitter. Takes ownership of w. Returns 0 or a negative libuv code, e.g.
 * UV_ENOBUFS when more than SIM_WQ_HARD bytes would be queued (the caller then drops the
 * connection). */
int link_send(term_t *t, wreq_t *w);

/* Writes one frame now, bypassing the delay queue (BYE at shutdown). Takes ownership of w. */
int link_send_direct(term_t *t, wreq_t *w);

/* Allocates a write request for a frame of up to cap bytes (w->len = 0). */
wreq_t *link_wreq(term_t *t, uint32_t cap);

/* Bytes queued for sending (libuv write queue plus the delay queue). */
size_t link_queued(const term_t *t);

/* Drops every frame still in the delay queues, both directions (connection closed). */
void link_flush(term_t *t);

/* Link layer (impair.c): hands received bytes to the terminal, directly or after the configured
 * latency and jitter (order kept). eof != 0 ends the stream (UV_EOF or a read error) after the
 * bytes queued before it. Returns 0, or UV_ENOBUFS when more than SIM_WQ_HARD bytes wait. */
int link_recv(term_t *t, const uint8_t *data, size_t n, int eof);

/* Called by the link layer with bytes whose delay has passed (or eof != 0: the stream ended). */
void term_received(term_t *t, const uint8_t *data, size_t n, int eof);

/* Called by the link layer when a block's last chunk was handed to the socket. */
void term_block_written(term_t *t, uint64_t seq);

/* Called by the link layer when the write queue drained somewhat (backpressure relief). */
void term_writable(term_t *t);

/* Called by the link layer when a write failed; closes the connection. */
void term_write_failed(term_t *t, int status);

#endif
