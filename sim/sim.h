/* gridsense-sim: shared configuration, counters and the process-wide simulator state.
 *
 * Everything here is owned by the loop thread; the simulator has no other threads.
 */
#ifndef GS_SIM_SIM_H
#define GS_SIM_SIM_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "gstp/gstp.h"
#include "schedule.h"

#define SIM_MAX_TERMINALS 10000
#define SIM_WQ_LIMIT      (64 * 1024)   /* stop sending data while more than this is queued */
#define SIM_WQ_HARD       (1024 * 1024) /* a peer that lets more pile up is dropped */
#define SIM_FRAMES_CAP    (255u * GSTP_MAX_FRAME) /* every chunk a block may have */

/* --codec: GSTP block codec (protocol.md 7.4). WCODEC (the default): codec 2 (the block model)
 * with a server whose WELCOME announced it (6.7), else codec 1 when announced; WCODEC1: codec 1
 * only; otherwise, and with RAW, blocks go raw. */
enum { SIM_CODEC_RAW = 0, SIM_CODEC_WCODEC = 1, SIM_CODEC_WCODEC1 = 2 };

/* Command-line configuration; defaults in sim_config_defaults(). */
typedef struct {
    char host[64]; /* server address */
    int port;
    const char *secrets_path; /* required */
    uint32_t terminals;       /* 0 = all in the secrets file */
    double duration_s;        /* 0 = until SIGINT/SIGTERM */
    double drain_s;           /* wait for acks after the run; 0 = do not drain */
    uint64_t seed;
    uint32_t rate;               /* sample sets per second */
    uint32_t nominal_hz;         /* 50 or 60 */
    double nominal_v, nominal_a; /* secondary nominal phase voltage and current, RMS */
    uint32_t block_ms;
    uint32_t max_payload;   /* bytes per chunk payload */
    uint32_t buffer_blocks; /* retransmit ring capacity per terminal */
    int stream;             /* stream waveforms by default */
    uint32_t status_interval_s;
    double disturb_per_min; /* random disturbances on disturbed terminals */
    double disturbed_fraction;
    sched_t sched[SCHED_MAX]; /* --schedule, in option order */
    uint32_t nsched;
    uint32_t latency_ms, jitter_ms;
    double disconnect_every_s; /* 0 = never */
    uint32_t backoff_min_ms, backoff_max_ms;
    uint32_t connect_rate; /* new connections per second at start-up */
    int ack_latency;       /* record block write -> ACK latency */
    int codec;             /* SIM_CODEC_*: block codec used when WELCOME announces it */
    const char *dump_path; /* --dump-blocks: every block's samples as first sent, or NULL */
    int quiet;
} sim_config_t;

/* Counters reported at exit. Invariant: blocks_generated = blocks_acked + blocks_dropped +
 * unacked (blocks_acked includes blocks the server reported durable in WELCOME.resume_seq). */
typedef struct {
    uint64_t blocks_generated; /* WAVEFORM and EVENT blocks given a seq */
    uint64_t blocks_sent;      /* block transmissions, first or re-sent */
    uint64_t blocks_acked;
    uint64_t blocks_resent;
    uint64_t blocks_dropped; /* never transmitted, evicted from a full ring: gaps in the store */
    uint64_t events_sent;    /* EVENT blocks sent for the first time */
    uint64_t status_sent;
    uint64_t commands_answered; /* first executions (repeats answered from the cache excluded) */
    uint64_t reconnects;        /* successful re-logins: WELCOMEs after a terminal's first */
    uint64_t connect_attempts;  /* TCP connection attempts, first and failed ones included */
    uint64_t auth_rejected;     /* REJECT frames received */
    uint64_t samples_generated; /* sample sets (one value per channel) */
    uint64_t unacked;           /* blocks currently held in retransmit rings */
    uint32_t online;            /* terminals in an authenticated session now */
    uint64_t bytes_sent;       /* every byte handed to the sockets */
    uint64_t sample_bytes_sent; /* block chunks' sample bytes (raw sets or codec-1 segments) */
    uint64_t sample_raw_bytes;  /* the raw size of the sets those chunks carried */
    uint64_t wcodec_blocks_sent;  /* block transmissions with codec 1 or 2 */
    uint64_t wcodec2_blocks_sent; /* of which with codec 2 (the block model) */
    uint64_t errors_received;   /* GSTP ERROR frames from the server */
} sim_stats_t;

/* Log-bucketed latency histogram (about 4.4 % resolution from 1 us to ~18 min). */
#define SIM_LAT_BUCKETS 512
typedef struct {
    uint64_t count;
    uint64_t bucket[SIM_LAT_BUCKETS];
} sim_hist_t;

typedef enum { SIM_RUN = 0, SIM_DRAIN, SIM_STOP } sim_phase_t;

typedef struct term term_t;

/* Process-wide state. */
typedef struct sim {
    sim_config_t cfg;
    uv_loop_t *loop;
    struct sockaddr_storage addr; /* resolved server address */
    term_t *terms;                /* cfg.terminals entries */
    uint32_t nterms;
    uint32_t started; /* terminals started by the connect ramp */
    sim_phase_t phase;
    int64_t start_ns;                 /* UTC origin of every terminal's sample timeline */
    uint32_t block_samples;           /* sample sets per WAVEFORM block */
    uint16_t chunk_wave, chunk_event; /* sample sets per chunk */
    sim_stats_t st;
    sim_hist_t lat;   /* --ack-latency */
    int16_t *scratch; /* GSTP_MAX_BLOCK_SAMPLES sample sets, loop-thread scratch */
    uint8_t *frames;  /* SIM_FRAMES_CAP bytes: a codec-1 block's chunks, loop-thread scratch */
    FILE *dump;       /* --dump-blocks file, or NULL */
} sim_t;

/* Records one latency sample in nanoseconds. */
void sim_hist_add(sim_hist_t *h, int64_t ns);

/* Returns the q-quantile (0..1) of h in milliseconds, or 0 when empty. */
double sim_hist_quantile(const sim_hist_t *h, double q);

#endif
