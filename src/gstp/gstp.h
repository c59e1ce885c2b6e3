/* GSTP — the gridsense terminal protocol: wire codec.
 *
 * This header is the whole contract between a terminal's firmware and the gridsense server; the
 * wire format itself is specified in docs/protocol.md. The codec is portable C99: no malloc, no
 * I/O, no global state, no floating point on the framing path; all buffers are supplied by the
 * caller. The same code runs in the server, in gridsense-sim and on a terminal's MCU.
 *
 * Byte order on the wire is little-endian for every multi-byte integer and for IEEE 754 binary32
 * floats. Strings are UTF-8 with an explicit length and no NUL on the wire.
 *
 * Usage, receiving side:
 *     uint8_t rx[GSTP_MAX_FRAME * 2];
 *     gstp_decoder_t dec;
 *     gstp_decoder_init(&dec, rx, sizeof rx);
 *     while (have bytes) {
 *         size_t used = gstp_decoder_feed(&dec, data, n);   // copies what fits
 *         gstp_frame_t f;
 *         while (gstp_decoder_next(&dec, &f) == GSTP_FRAME) { ...parse f by f.type... }
 *         data += used; n -= used;
 *     }
 * Usage, sending side: gstp_encode_<type>(out, cap, &msg) writes one complete frame (header,
 * payload, CRC) and returns its length.
 */
#ifndef GSTP_H
#define GSTP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Constants ------------------------------------------------------------------------------ */

#define GSTP_MAGIC0                                                                                \
    0xC5u /* first magic byte: not ASCII, so text injected by modems never starts a frame */
#define GSTP_MAGIC1            0x47u /* 'G' */
#define GSTP_VERSION           1u    /* protocol version implemented by this codec */
#define GSTP_HEADER_LEN        10u
#define GSTP_TRAILER_LEN       4u    /* CRC-32C of header and payload */
#define GSTP_MAX_PAYLOAD       2048u /* hard limit; a larger length field is a header error */
#define GSTP_MAX_FRAME         (GSTP_HEADER_LEN + GSTP_MAX_PAYLOAD + GSTP_TRAILER_LEN)
#define GSTP_NONCE_LEN         32u
#define GSTP_MAC_LEN           32u /* HMAC-SHA256 */
#define GSTP_SECRET_LEN        32u
#define GSTP_MAX_ID            32u /* terminal id: 1..32 bytes of [A-Za-z0-9._-] */
#define GSTP_MAX_STR           64u /* other strings in HELLO (versions, IMEI, ICCID, channel names) */
#define GSTP_MAX_CHANNELS      16u
#define GSTP_MAX_TLV           512u /* bytes of TLV arguments in COMMAND / RESULT */
#define GSTP_BLOCK_HDR_LEN     40u  /* fixed part of WAVEFORM and EVENT payloads */
#define GSTP_EVENT_HDR_LEN     16u /* extra fixed part of an EVENT payload after the block header */
#define GSTP_MAX_BLOCK_SAMPLES 8192u /* sample sets per block (per channel) */
/* Largest block seq (protocol.md 7.1): 2^63 - 1, so that every store can keep it as a signed
 * 64-bit integer (SQLite, PostgreSQL bigint) and resume_seq always matches what was acked. */
#define GSTP_MAX_SEQ 0x7FFFFFFFFFFFFFFFull

/* Frame types. 0x01-0x0F session, 0x10-0x1F data, 0x20-0x2F commands, 0x30-0x3F control. */
typedef enum {
    GSTP_HELLO = 0x01,     /* T->S: identity and capabilities */
    GSTP_CHALLENGE = 0x02, /* S->T: chosen version and nonce */
    GSTP_AUTH = 0x03,      /* T->S: HMAC over nonce and HELLO payload */
    GSTP_WELCOME = 0x04,   /* S->T: session accepted, parameters, resume point */
    GSTP_REJECT = 0x05,    /* S->T: session refused; the server closes after sending it */
    GSTP_BYE = 0x06,       /* either: orderly close with a reason */
    GSTP_WAVEFORM = 0x10,  /* T->S: continuous waveform block (chunk) */
    GSTP_STATUS = 0x11,    /* T->S: health and link status */
    GSTP_EVENT = 0x12,     /* T->S: triggered capture with its waveform (chunk) */
    GSTP_ACK = 0x13,       /* S->T: cumulative acknowledgement of durable blocks */
    GSTP_COMMAND = 0x20,   /* S->T: command */
    GSTP_RESULT = 0x21,    /* T->S: command result */
    GSTP_PING = 0x30,      /* either: heartbeat request */
    GSTP_PONG = 0x31,      /* either: heartbeat answer */
    GSTP_ERROR = 0x3F      /* either: a frame was not understood; the session continues */
} gstp_type_t;

/* Header flag bits. Unknown bits must be ignored by receivers and sent as zero. */
#define GSTP_FLAG_RESENT 0x01u /* data frame re-sent after reconnect (diagnostics only) */

/* Return codes of codec functions. Negative values are errors. (Named gstp_rc_t: the name
 * gstp_result_t belongs to the RESULT message below.) */
typedef enum {
    GSTP_OK = 0,
    GSTP_NEED_MORE = 0, /* gstp_decoder_next: no complete frame buffered yet */
    GSTP_FRAME = 1,     /* gstp_decoder_next: *out holds a frame */
    GSTP_E_SPACE = -1,  /* output buffer too small */
    GSTP_E_TRUNC = -2,  /* payload shorter than its fixed fields */
    GSTP_E_RANGE = -3,  /* a field is outside its allowed range */
    GSTP_E_TYPE = -4,   /* wrong frame type for this parser */
    GSTP_E_TLV = -5,    /* malformed TLV list */
    GSTP_E_ARG = -6,    /* invalid argument from the caller */
    GSTP_E_CONFIG = -7  /* gstp_parse_hello: well-formed, but a capability (sample rate, nominal
                           frequency, channel set) has a value no receiver can use; a receiver
                           answers REJECT BAD_CONFIG rather than PROTOCOL (protocol.md 6.1) */
} gstp_rc_t;

/* ---- CRC and framing --------------------------------------------------------------------------
 */

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), as in
 * RFC 3720 appendix B.4. Returns the CRC of n bytes. Incremental use: pass the previous return
 * value as `crc` (start with 0). */
uint32_t gstp_crc32c(uint32_t crc, const void *data, size_t n);

/* One decoded frame. `payload` points into the decoder's buffer and stays valid until the next
 * call to gstp_decoder_feed() or gstp_decoder_next() on the same decoder. */
typedef struct {
    uint8_t version;        /* header version byte */
    uint8_t type;           /* gstp_type_t, possibly unknown */
    uint8_t flags;          /* GSTP_FLAG_* */
    uint16_t len;           /* payload length */
    const uint8_t *payload; /* len bytes */
} gstp_frame_t;

/* Decoder statistics, cumulative since gstp_decoder_init(). */
typedef struct {
    uint64_t frames;        /* valid frames returned */
    uint64_t skipped_bytes; /* bytes discarded while searching for a frame start */
    uint64_t header_errors; /* candidate headers rejected (check, version or length) */
    uint64_t crc_errors;    /* frames dropped because the payload CRC did not match */
} gstp_decoder_stats_t;

/* Incremental decoder state. Fields are private; read stats only. */
typedef struct {
    uint8_t *buf; /* caller's buffer */
    size_t cap;   /* its size, >= GSTP_MAX_FRAME */
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last buffered byte */
    gstp_decoder_stats_t stats;
} gstp_decoder_t;

/* Initialises `d` over the caller's buffer `buf` of `cap` bytes (cap >= GSTP_MAX_FRAME; twice
 * that avoids frequent compaction). Returns GSTP_OK or GSTP_E_ARG. The buffer must outlive `d`. */
int gstp_decoder_init(gstp_decoder_t *d, uint8_t *buf, size_t cap);

/* Copies up to n bytes of received data into the decoder and returns how many were taken (less
 * than n only when the buffer is full: call gstp_decoder_next() until it returns NEED_MORE, then
 * feed the rest). Invalidates frames previously returned. */
size_t gstp_decoder_feed(gstp_decoder_t *d, const uint8_t *data, size_t n);

/* Looks for the next valid frame in the buffered bytes. Returns GSTP_FRAME and fills *out, or
 * GSTP_NEED_MORE when more bytes are needed. Never fails: garbage before a frame, headers whose
 * check, version (0 or >= 128), reserved byte or length is wrong, and frames whose CRC is wrong
 * are skipped (the search resumes one byte after the rejected magic) and counted in stats. Every
 * byte fed ends up in exactly one of: a returned frame, stats.skipped_bytes, or the pending
 * bytes. A frame of an unknown type is returned; the caller answers it with GSTP_ERROR. */
int gstp_decoder_next(gstp_decoder_t *d, gstp_frame_t *out);

/* Number of buffered bytes not yet consumed (a partial frame or garbage). */
size_t gstp_decoder_pending(const gstp_decoder_t *d);

/* Writes a complete frame (header, payload copied from `payload`, CRC) of the given type into
 * out. Returns the frame length, or GSTP_E_SPACE / GSTP_E_RANGE (len > GSTP_MAX_PAYLOAD).
 * `payload` may alias out + GSTP_HEADER_LEN (the encoders below build payloads in place). */
int gstp_frame_write(uint8_t *out, size_t cap, uint8_t type, uint8_t flags, const uint8_t *payload,
                     size_t len);

/* Rewrites the flags byte of a complete frame previously written into frame[0..len) (for example
 * GSTP_FLAG_RESENT on a stored data frame re-sent after reconnect) and recomputes its header
 * check and CRC. Returns GSTP_OK, or GSTP_E_ARG if frame[0..len) is not one well-formed frame. */
int gstp_frame_set_flags(uint8_t *frame, size_t len, uint8_t flags);

/* ---- TLV --------------------------------------------------------------------------------------
 */
/* TLV lists (HELLO extensions, COMMAND arguments, RESULT payloads, WELCOME extensions):
 * u8 tag, u16 length, value. Receivers skip tags they do not know (extension rule). */

typedef struct {
    uint8_t tag;
    uint16_t len;
    const uint8_t *value; /* points into the parsed buffer */
} gstp_tlv_t;

/* Iterator over a TLV list in buf[0..n). Initialise with gstp_tlv_iter_init. */
typedef struct {
    const uint8_t *buf;
    size_t n;
    size_t off;
} gstp_tlv_iter_t;

void gstp_tlv_iter_init(gstp_tlv_iter_t *it, const uint8_t *buf, size_t n);

/* Returns 1 and fills *out with the next element, 0 at the clean end of the list, or
 * GSTP_E_TLV if an element's length runs past the end. */
int gstp_tlv_next(gstp_tlv_iter_t *it, gstp_tlv_t *out);

/* TLV writer over a caller buffer; errors are sticky (check w.err once at the end). An element
 * that does not fit is not written (w.len stays at the end of the last complete element). */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err; /* GSTP_OK, GSTP_E_SPACE, or GSTP_E_ARG (NULL value with len > 0) */
} gstp_tlv_writer_t;

void gstp_tlv_writer_init(gstp_tlv_writer_t *w, uint8_t *buf, size_t cap);
void gstp_tlv_put(gstp_tlv_writer_t *w, uint8_t tag, const void *value, uint16_t len);
void gstp_tlv_put_u8(gstp_tlv_writer_t *w, uint8_t tag, uint8_t v);
void gstp_tlv_put_u16(gstp_tlv_writer_t *w, uint8_t tag, uint16_t v);
void gstp_tlv_put_u32(gstp_tlv_writer_t *w, uint8_t tag, uint32_t v);
void gstp_tlv_put_u64(gstp_tlv_writer_t *w, uint8_t tag, uint64_t v);
void gstp_tlv_put_i64(gstp_tlv_writer_t *w, uint8_t tag, int64_t v);
void gstp_tlv_put_str(gstp_tlv_writer_t *w, uint8_t tag, const char *s); /* NUL-terminated */

/* Typed readers for a TLV value: return GSTP_OK, or GSTP_E_RANGE when the length is wrong. */
int gstp_tlv_u8(const gstp_tlv_t *t, uint8_t *v);
int gstp_tlv_u16(const gstp_tlv_t *t, uint16_t *v);
int gstp_tlv_u32(const gstp_tlv_t *t, uint32_t *v);
int gstp_tlv_u64(const gstp_tlv_t *t, uint64_t *v);
int gstp_tlv_i64(const gstp_tlv_t *t, int64_t *v);
/* Copies a string value into out (cap bytes incl. NUL); GSTP_E_RANGE if it does not fit or
 * contains a NUL byte. */
int gstp_tlv_str(const gstp_tlv_t *t, char *out, size_t cap);

/* Finds the first element with `tag` in a TLV list. Returns 1 (found), 0 (absent) or GSTP_E_TLV. */
int gstp_tlv_find(const uint8_t *buf, size_t n, uint8_t tag, gstp_tlv_t *out);

/* ---- Session messages -------------------------------------------------------------------------
 */

typedef enum { GSTP_KIND_VOLTAGE = 1, GSTP_KIND_CURRENT = 2 } gstp_chan_kind_t;
typedef enum { GSTP_PHASE_A = 1, GSTP_PHASE_B, GSTP_PHASE_C, GSTP_PHASE_N } gstp_phase_t;
typedef enum { GSTP_UNIT_V = 1, GSTP_UNIT_A = 2 } gstp_unit_t;

/* Time quality of timestamps (HELLO, WAVEFORM, EVENT). */
typedef enum {
    GSTP_TQ_UNKNOWN = 0,
    GSTP_TQ_GPS_LOCKED = 1,     /* GNSS PPS-disciplined, ~1 us */
    GSTP_TQ_NETWORK_SYNCED = 2, /* NTP/cellular NITZ/server TIME_SYNC, ~1-50 ms */
    GSTP_TQ_FREE_RUNNING = 3    /* holdover or never synced */
} gstp_time_quality_t;

typedef enum {
    GSTP_TS_NONE = 0,
    GSTP_TS_GNSS = 1,
    GSTP_TS_NTP = 2,
    GSTP_TS_CELLULAR = 3,
    GSTP_TS_SERVER = 4
} gstp_time_source_t;

/* One sampled channel. value = raw * scale in `unit` on the secondary side of the VT/CT. */
typedef struct {
    uint8_t index; /* 0..GSTP_MAX_CHANNELS-1, bit position in channel masks */
    uint8_t kind;  /* gstp_chan_kind_t */
    uint8_t phase; /* gstp_phase_t */
    uint8_t unit;  /* gstp_unit_t */
    float scale;   /* engineering units per count, > 0 */
    char name[GSTP_MAX_STR + 1];
} gstp_channel_t;

/* HELLO tags (TLV). Mandatory: TERMINAL_ID, SAMPLE_RATE, NOMINAL_HZ, at least one CHANNEL. */
enum {
    GSTP_HT_TERMINAL_ID = 1,   /* str */
    GSTP_HT_FW_VERSION = 2,    /* str */
    GSTP_HT_HW_VERSION = 3,    /* str */
    GSTP_HT_IMEI = 4,          /* str */
    GSTP_HT_ICCID = 5,         /* str */
    GSTP_HT_SAMPLE_RATE = 6,   /* u32, samples/s per channel */
    GSTP_HT_NOMINAL_HZ = 7,    /* u8, 50 or 60 */
    GSTP_HT_VT_RATIO = 8,      /* f32 LE, primary/secondary */
    GSTP_HT_CT_RATIO = 9,      /* f32 LE */
    GSTP_HT_TIME_SOURCE = 10,  /* u8 gstp_time_source_t */
    GSTP_HT_TIME_QUALITY = 11, /* u8 gstp_time_quality_t */
    GSTP_HT_CHANNEL = 12,      /* u8 index, u8 kind, u8 phase, u8 unit, f32 scale, name bytes */
    GSTP_HT_BUFFER_BLOCKS = 13 /* u32, capacity of the terminal's unacked-block buffer */
};

typedef struct {
    uint8_t version_min; /* lowest protocol version the terminal speaks */
    uint8_t version_max; /* highest */
    char terminal_id[GSTP_MAX_ID + 1];
    char fw_version[GSTP_MAX_STR + 1];
    char hw_version[GSTP_MAX_STR + 1];
    char imei[GSTP_MAX_STR + 1];
    char iccid[GSTP_MAX_STR + 1];
    uint32_t sample_rate;
    uint8_t nominal_hz;
    float vt_ratio; /* 0 when not reported */
    float ct_ratio;
    uint8_t time_source;
    uint8_t time_quality;
    uint32_t buffer_blocks;
    uint8_t nchannels;
    gstp_channel_t channels[GSTP_MAX_CHANNELS];
} gstp_hello_t;

typedef struct {
    uint8_t version; /* version chosen by the server */
    uint8_t nonce[GSTP_NONCE_LEN];
} gstp_challenge_t;

typedef struct {
    uint8_t mac[GSTP_MAC_LEN];
} gstp_auth_t;

/* Block codecs (block header `codec`, protocol.md 7.4). A terminal sends a codec other than raw
 * only when the server announced it in WELCOME (tag GSTP_WT_CODECS); a server that did not
 * announce it refuses such chunks (ERROR MALFORMED, BYE PROTOCOL). */
#define GSTP_CODEC_RAW    0u /* raw interleaved samples */
#define GSTP_CODEC_WCODEC 1u /* one wcodec segment per chunk (src/wcodec/wcodec.h; protocol.md Appendix A) */
#define GSTP_CODEC_WCODEC2 2u /* the same with codec 2 segments (block model, Appendix A.11) */
#define GSTP_CODECS_KNOWN                                                                          \
    ((1u << GSTP_CODEC_RAW) | (1u << GSTP_CODEC_WCODEC) | (1u << GSTP_CODEC_WCODEC2))
#define GSTP_CODEC_IS_WCODEC(c) ((c) == GSTP_CODEC_WCODEC || (c) == GSTP_CODEC_WCODEC2)

/* WELCOME extension tags (TLV after the fixed part, protocol.md 6.7). */
enum {
    GSTP_WT_CODECS = 1 /* u32 bit mask: bit c set = the server accepts blocks with codec c */
};

typedef struct {
    int64_t server_time_ns; /* UTC, ns since the Unix epoch */
    uint16_t heartbeat_s;   /* PING interval the terminal should expect; 3 missed = dead */
    uint16_t ack_window;    /* max unacknowledged blocks in flight */
    uint64_t resume_seq;    /* highest seq durably stored for this terminal (0 = none) */
    uint32_t session_id;    /* server-chosen, for logs on both sides */
    /* Codecs the server accepts, bit c = codec c (GSTP_CODEC_*). Encode: sent as a CODECS
     * element when it has a bit other than raw's (0 or 1 = nothing sent: raw only, as 1.0).
     * Parse: the element's value with bit 0 set, or 1 (raw only) when WELCOME has none. */
    uint32_t codecs;
} gstp_welcome_t;

typedef enum {
    GSTP_REJ_PROTOCOL = 1,   /* malformed handshake or wrong frame order */
    GSTP_REJ_VERSION = 2,    /* no common protocol version */
    GSTP_REJ_UNKNOWN_ID = 3, /* terminal id not provisioned */
    GSTP_REJ_BAD_AUTH = 4,   /* HMAC mismatch */
    GSTP_REJ_RATE_LIMIT = 5, /* too many failed logins; retry later */
    GSTP_REJ_BUSY = 6,       /* server at its connection or load limit */
    GSTP_REJ_TIMEOUT = 7,    /* handshake not completed in time */
    GSTP_REJ_REPLACED = 8,   /* (in BYE) a newer session of the same terminal took over */
    GSTP_REJ_SHUTDOWN = 9,   /* (in BYE) server shutting down */
    GSTP_REJ_DEAD = 10,      /* (in BYE) heartbeats missed */
    GSTP_REJ_BAD_CONFIG = 11 /* HELLO capabilities invalid (rate, channels) */
} gstp_reason_t;

/* REJECT and BYE share a layout: u16 reason, u16 retry_after_s, message bytes. */
typedef struct {
    uint16_t reason;        /* gstp_reason_t */
    uint16_t retry_after_s; /* suggested wait before reconnecting, 0 = terminal's own backoff */
    char message[GSTP_MAX_STR + 1];
} gstp_reject_t;

/* The AUTH MAC is HMAC-SHA256(key = the terminal's 32-byte secret, message = CHALLENGE nonce
 * (32 bytes) followed by the HELLO payload exactly as sent). The codec does not implement SHA-256
 * (firmware has hardware or its own library); callers compute the MAC. */

/* ---- Data messages ----------------------------------------------------------------------------
 */

typedef enum { GSTP_FMT_INT16 = 1, GSTP_FMT_INT32 = 2 } gstp_sample_fmt_t;

/* Fixed header at the start of every WAVEFORM and EVENT payload (GSTP_BLOCK_HDR_LEN bytes). A
 * block is the unit of sequencing, acknowledgement and storage; it is carried by chunk_count
 * consecutive frames (chunk_index 0..count-1), each repeating this header and carrying the
 * sample sets [first_sample, first_sample + n_in_chunk). */
typedef struct {
    uint64_t seq;          /* per-terminal block sequence number, 1..GSTP_MAX_SEQ, +1 per block */
    int64_t t0_ns;         /* UTC time of the block's first sample, ns since the epoch */
    uint32_t sample_rate;  /* samples/s per channel */
    uint32_t channel_mask; /* bit i set = capability channel i present, in index order */
    uint16_t nsamples;     /* sample sets in the whole block, 1..GSTP_MAX_BLOCK_SAMPLES */
    uint16_t first_sample; /* index of this chunk's first sample set within the block */
    uint8_t time_quality;  /* gstp_time_quality_t */
    uint8_t sample_fmt;    /* gstp_sample_fmt_t */
    uint8_t nchannels;     /* popcount(channel_mask), repeated as a check */
    uint8_t chunk_index;
    uint8_t chunk_count; /* 1..255 */
    uint8_t codec;       /* GSTP_CODEC_RAW (0), _WCODEC (1) or _WCODEC2 (2), the same in every chunk */
    uint16_t reserved;   /* 0 */
    uint16_t n_in_chunk; /* sample sets carried by this chunk (set by the encoder/parser) */
} gstp_block_hdr_t;

/* EVENT extra header (after the block header, before samples, in every chunk). */
typedef enum {
    GSTP_TRIG_DIP = 1,
    GSTP_TRIG_SWELL = 2,
    GSTP_TRIG_INTERRUPTION = 3,
    GSTP_TRIG_OVERCURRENT = 4,
    GSTP_TRIG_MANUAL = 5,  /* CAPTURE command */
    GSTP_TRIG_EXTERNAL = 6 /* binary input */
} gstp_trigger_t;

typedef struct {
    int64_t trigger_ns;      /* UTC time of the trigger */
    uint16_t trigger;        /* gstp_trigger_t */
    uint16_t pretrigger;     /* sample sets before the trigger */
    uint16_t value_permille; /* residual (dip) or peak (swell) in 0.1 % of nominal, 0 unknown */
    uint16_t channel;        /* channel index that triggered, 0xFFFF = several/unknown */
} gstp_event_hdr_t;

/* A parsed WAVEFORM or EVENT chunk. `samples` points into the frame: codec 0, the raw sample
 * sets (little-endian, interleaved by channel in index order, nchannels * n_in_chunk values of
 * sample_fmt width); codec 1, the chunk's one wcodec segment (the rest of the payload). */
typedef struct {
    gstp_block_hdr_t hdr;
    gstp_event_hdr_t event; /* EVENT only; zero for WAVEFORM */
    const uint8_t *samples;
    size_t samples_len; /* bytes */
} gstp_block_t;

/* Signal and health status. Fields use sentinels for "not available". */
#define GSTP_NA_I16 INT16_MIN
#define GSTP_NA_U16 UINT16_MAX
typedef struct {
    int64_t time_ns;          /* terminal UTC time of the reading */
    int16_t rsrp_dbm;         /* LTE RSRP, dBm (-140..-44), or GSTP_NA_I16 */
    int16_t rssi_dbm;         /* RSSI, dBm, or GSTP_NA_I16 */
    uint8_t csq;              /* AT+CSQ 0..31, 99 unknown */
    uint8_t gps_fix;          /* 0 none, 2 = 2D, 3 = 3D */
    uint8_t gps_sats;         /* satellites used */
    uint8_t time_quality;     /* gstp_time_quality_t */
    uint16_t supply_mv;       /* supply voltage mV, or GSTP_NA_U16 */
    int16_t temp_c10;         /* board temperature in 0.1 degC, or GSTP_NA_I16 */
    uint16_t buffer_permille; /* unsent-buffer fill, 0..1000 */
    uint32_t uptime_s;
    uint32_t buffered_blocks; /* blocks waiting for acknowledgement or transmission */
} gstp_status_t;

#define GSTP_STATUS_LEN 32u

typedef struct {
    uint64_t seq; /* every block with seq <= this is durably stored */
} gstp_ack_t;

/* ---- Commands ---------------------------------------------------------------------------------
 */

typedef enum {
    GSTP_VERB_GET_STATUS = 1,   /* result: a STATUS frame is also sent; RESULT OK */
    GSTP_VERB_CAPTURE = 2,      /* args CYCLES, PRETRIGGER; result BLOCK_SEQ of the EVENT block */
    GSTP_VERB_STREAM_START = 3, /* start continuous WAVEFORM streaming */
    GSTP_VERB_STREAM_STOP = 4,
    GSTP_VERB_SET_CONFIG = 5, /* args REPORT_INTERVAL, STREAM, DIP_PERMILLE, SWELL_PERMILLE */
    GSTP_VERB_TIME_SYNC = 6,  /* arg SERVER_TIME; result TERM_RX_TIME, TERM_TX_TIME */
    GSTP_VERB_REBOOT = 7      /* RESULT ACCEPTED then the terminal restarts */
} gstp_verb_t;

/* Argument and result TLV tags (shared space). */
enum {
    GSTP_AT_CYCLES = 1,          /* u16 */
    GSTP_AT_PRETRIGGER = 2,      /* u16, cycles before the trigger */
    GSTP_AT_REPORT_INTERVAL = 3, /* u32 seconds between STATUS frames */
    GSTP_AT_STREAM = 4,          /* u8 0/1 */
    GSTP_AT_DIP_PERMILLE = 5,    /* u16, dip threshold in 0.1 % of nominal */
    GSTP_AT_SWELL_PERMILLE = 6,  /* u16 */
    GSTP_AT_SERVER_TIME = 7,     /* i64 ns */
    GSTP_AT_TERM_RX_TIME = 8,    /* i64 ns, terminal clock when the command arrived */
    GSTP_AT_TERM_TX_TIME = 9,    /* i64 ns, terminal clock when the result was sent */
    GSTP_AT_MESSAGE = 10,        /* str, human-readable detail */
    GSTP_AT_BLOCK_SEQ = 11       /* u64 */
};

typedef enum {
    GSTP_RS_OK = 0,       /* done */
    GSTP_RS_ACCEPTED = 1, /* received and started; a final RESULT follows */
    GSTP_RS_UNKNOWN_VERB = 2,
    GSTP_RS_BAD_ARGS = 3,
    GSTP_RS_BUSY = 4,
    GSTP_RS_FAILED = 5
} gstp_result_status_t;

typedef struct {
    uint64_t id;   /* server-assigned, unique per server database; terminals deduplicate by it */
    uint16_t verb; /* gstp_verb_t */
    uint16_t tlv_len;
    const uint8_t *tlv; /* encode: caller's bytes; parse: points into the frame */
} gstp_command_t;

typedef struct {
    uint64_t id;
    uint16_t status; /* gstp_result_status_t */
    uint16_t tlv_len;
    const uint8_t *tlv;
} gstp_result_t;

/* ---- Control ----------------------------------------------------------------------------------
 */

typedef struct {
    uint32_t token;         /* echoed in PONG */
    int64_t sender_time_ns; /* PING: sender's clock; PONG: responder's clock */
} gstp_ping_t;

typedef enum {
    GSTP_ERR_UNKNOWN_TYPE = 1, /* frame type not known to the receiver */
    GSTP_ERR_MALFORMED = 2,    /* payload did not parse */
    GSTP_ERR_UNEXPECTED = 3,   /* frame not valid in the current session state */
    GSTP_ERR_WINDOW = 4,       /* more unacknowledged blocks than the ack window */
    GSTP_ERR_SEQUENCE = 5      /* chunk order or block sequence violated */
} gstp_error_code_t;

typedef struct {
    uint16_t code;      /* gstp_error_code_t */
    uint8_t frame_type; /* type of the offending frame */
    char message[GSTP_MAX_STR + 1];
} gstp_error_t;

/* ---- Encoders ---------------------------------------------------------------------------------
 */
/* Each writes one complete frame into out[0..cap) and returns its length (> 0), or a negative
 * gstp_rc_t. Header version byte = GSTP_VERSION, flags 0. Strings longer than their limit are
 * GSTP_E_RANGE. */

int gstp_encode_hello(uint8_t *out, size_t cap, const gstp_hello_t *m);
int gstp_encode_challenge(uint8_t *out, size_t cap, const gstp_challenge_t *m);
int gstp_encode_auth(uint8_t *out, size_t cap, const gstp_auth_t *m);
int gstp_encode_welcome(uint8_t *out, size_t cap, const gstp_welcome_t *m);
int gstp_encode_reject(uint8_t *out, size_t cap, const gstp_reject_t *m);
int gstp_encode_bye(uint8_t *out, size_t cap, const gstp_reject_t *m);
int gstp_encode_status(uint8_t *out, size_t cap, const gstp_status_t *m);
int gstp_encode_ack(uint8_t *out, size_t cap, const gstp_ack_t *m);
int gstp_encode_command(uint8_t *out, size_t cap, const gstp_command_t *m);
int gstp_encode_result(uint8_t *out, size_t cap, const gstp_result_t *m);
int gstp_encode_ping(uint8_t *out, size_t cap, const gstp_ping_t *m);
int gstp_encode_pong(uint8_t *out, size_t cap, const gstp_ping_t *m);
int gstp_encode_error(uint8_t *out, size_t cap, const gstp_error_t *m);

/* Encodes one chunk of a WAVEFORM (ev == NULL) or EVENT (ev != NULL) block. `samples` holds the
 * chunk's n_in_chunk sample sets (nchannels values each, little-endian, sample_fmt width);
 * hdr->first_sample, chunk_index and chunk_count describe the chunk. */
int gstp_encode_block(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                      const gstp_event_hdr_t *ev, const uint8_t *samples, uint16_t n_in_chunk);
/* (hdr->n_in_chunk is ignored by the encoder; the n_in_chunk argument is written.) */

/* Codec 1 or 2 (protocol.md 7.4): writes one chunk whose sample bytes are `seg_len` bytes of an
 * already encoded wcodec segment covering sets [hdr->first_sample, + n_in_chunk); hdr->codec
 * must be GSTP_CODEC_WCODEC or GSTP_CODEC_WCODEC2. The codec does not look inside the segment (the receiver decodes it
 * in its block, gstp_block_decode_chunk). Returns the frame length or a negative gstp_rc_t. */
int gstp_encode_block_segment(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                              const gstp_event_hdr_t *ev, const uint8_t *seg, size_t seg_len,
                              uint16_t n_in_chunk);

/* Codec 1 or 2 (hdr->codec), terminal side: encodes the chunk that starts at hdr->first_sample of the whole block
 * `block` (hdr->nsamples sets, raw interleaved little-endian; the sets before first_sample are
 * the history the codec's predictors use) with as many sets as fit in a payload of max_payload
 * bytes (clamped to GSTP_MAX_PAYLOAD), via wcodec_encode_as. period_hint: sample sets per cycle
 * (sample_rate / nominal_hz rounded, gstp_period_hint), 0 = none. hdr->codec must be
 * GSTP_CODEC_WCODEC or GSTP_CODEC_WCODEC2; hdr->chunk_index / chunk_count are written as given. *n_out = the sets it
 * carries. Returns the frame length, GSTP_E_SPACE (out too small or not one set fits) or
 * GSTP_E_RANGE / GSTP_E_ARG. */
int gstp_encode_block_wcodec(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                             const gstp_event_hdr_t *ev, const uint8_t *block,
                             uint32_t period_hint, size_t max_payload, uint16_t *n_out);

/* Codec 1 or 2, terminal side: writes ALL the chunks of a block back to back into out[0..cap)
 * (chunk_index 0.., first_sample and chunk_count filled in; hdr's values of these are ignored),
 * each chunk filled up to max_payload. *nchunks = frames written. Returns the total length, or
 * GSTP_E_SPACE (out too small), GSTP_E_RANGE (more than 255 chunks needed: send the block raw or
 * split it), GSTP_E_ARG. A chunk is at most GSTP_MAX_FRAME bytes and there are at most 255.
 * Uses about 2 KiB of stack (the chunk offsets) besides wcodec_encode's own (wcodec.h). */
int gstp_encode_block_wcodec_all(uint8_t *out, size_t cap, const gstp_block_hdr_t *hdr,
                                 const gstp_event_hdr_t *ev, const uint8_t *block,
                                 uint32_t period_hint, size_t max_payload, uint8_t *nchunks);

/* Rewrites the chunk_count of a complete WAVEFORM/EVENT frame frame[0..len) and recomputes its
 * header check and CRC (a sender that learns the count only after encoding the chunks).
 * Returns GSTP_OK, GSTP_E_RANGE (count 0 or not above the chunk's index) or GSTP_E_ARG. */
int gstp_block_set_chunk_count(uint8_t *frame, size_t len, uint8_t chunk_count);

/* Sample sets per cycle for a codec's one-cycle-back predictor: sample_rate / nominal_hz rounded,
 * 0 when nominal_hz is 0. */
uint32_t gstp_period_hint(uint32_t sample_rate, uint32_t nominal_hz);

/* Receiver side: puts the chunk's sample sets into the block buffer block[0..block_len) (the
 * whole block, nsamples sets, raw interleaved): codec 0 copies them; codec 1 or 2 decodes the
 * segment (wcodec_decode_as), which must cover exactly [first_sample, first_sample + n_in_chunk) and use
 * every sample byte of the chunk. The sets before first_sample must already be in `block`
 * (chunks in order, 7.1). Returns GSTP_OK, GSTP_E_RANGE (a segment that does not decode or does
 * not match the chunk header: the chunk is malformed) or GSTP_E_ARG (block_len too small). */
int gstp_block_decode_chunk(const gstp_block_t *b, uint8_t *block, size_t block_len);

/* Largest number of sample sets that fit in one RAW (codec 0) chunk whose payload is at most
 * max_payload bytes (clamped to GSTP_MAX_PAYLOAD), for the given channel count and format; 0 if
 * none fit. (A codec 1 chunk carries as many sets as its encoder fits: gstp_encode_block_wcodec.) */
uint16_t gstp_block_chunk_capacity(uint8_t nchannels, uint8_t sample_fmt, int is_event,
                                   size_t max_payload);

/* ---- Parsers ----------------------------------------------------------------------------------
 */
/* Each parses the payload of a frame of the matching type into *m. Returns GSTP_OK or a negative
 * gstp_rc_t; on error *m is unspecified. Pointers in *m point into `f`'s payload. Fields are
 * range-checked (lengths, enums where closed, counts); trailing bytes after fixed layouts are
 * ignored for forward compatibility. */

/* HELLO: GSTP_E_CONFIG (rather than E_RANGE/E_TLV) when the HELLO is well-formed but its
 * sample rate, nominal frequency or channel set is unusable; *m is then filled. A HELLO without
 * any CHANNEL element lacks a required tag: GSTP_E_RANGE, like a missing TERMINAL_ID. */
int gstp_parse_hello(const gstp_frame_t *f, gstp_hello_t *m);
int gstp_parse_challenge(const gstp_frame_t *f, gstp_challenge_t *m);
int gstp_parse_auth(const gstp_frame_t *f, gstp_auth_t *m);
int gstp_parse_welcome(const gstp_frame_t *f, gstp_welcome_t *m);
int gstp_parse_reject(const gstp_frame_t *f, gstp_reject_t *m); /* REJECT or BYE */
int gstp_parse_status(const gstp_frame_t *f, gstp_status_t *m);
int gstp_parse_ack(const gstp_frame_t *f, gstp_ack_t *m);
int gstp_parse_command(const gstp_frame_t *f, gstp_command_t *m);
/* RESULT: also GSTP_E_RANGE when its MESSAGE (GSTP_AT_MESSAGE) is longer than GSTP_MAX_STR,
 * holds a NUL or appears twice (section 2 string rules; the encoder refuses the same). */
int gstp_parse_result(const gstp_frame_t *f, gstp_result_t *m);
int gstp_parse_ping(const gstp_frame_t *f, gstp_ping_t *m); /* PING or PONG */
int gstp_parse_error(const gstp_frame_t *f, gstp_error_t *m);
/* WAVEFORM or EVENT: checks seq >= 1, sample rate, mask, nchannels == popcount(mask), format,
 * codec 0, 1 or 2, chunk_index < chunk_count, first_sample + n_in_chunk <= nsamples, and, codec 0,
 * that the sample bytes are exactly n_in_chunk sets (no trailing bytes); codec 1 or 2, that there is
 * at least one byte of segment (its contents are checked by gstp_block_decode_chunk, which
 * needs the block's earlier sets). */
int gstp_parse_block(const gstp_frame_t *f, gstp_block_t *m);

/* Returns a static name for a frame type ("HELLO", ...) or "UNKNOWN". */
const char *gstp_type_name(uint8_t type);

/* Returns a static name for a reject reason or "UNKNOWN". */
const char *gstp_reason_name(uint16_t reason);

/* Returns 1 if s (NUL-terminated) is a valid terminal id: 1..GSTP_MAX_ID bytes of
 * [A-Za-z0-9._-]. */
int gstp_valid_id(const char *s);

#ifdef __cplusplus
}
#endif

#endif
