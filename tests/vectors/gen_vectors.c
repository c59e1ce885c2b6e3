/* Generates docs/vectors/gstp-1.0.json, the GSTP 1.0 test vectors, with the codec itself.
 *
 *   gen_vectors > docs/vectors/gstp-1.0.json
 *
 * Without make or CMake (any C99 compiler, libsodium for the HMAC example):
 *   cc -std=c99 -Isrc tests/vectors/gen_vectors.c src/gstp/gstp.c src/gstp/crc32c.c \
 *      -lsodium -o /tmp/gen_vectors && /tmp/gen_vectors > docs/vectors/gstp-1.0.json
 *
 * Every frame is encoded by the gstp_encode_* functions from the structs below and printed with
 * every field of its struct, so tests/unit/test_vectors.c can check both directions (parse the
 * hex and compare each field; encode the fields and compare the bytes). The output is
 * deterministic: fixed times, nonces and secrets, no clock, no random numbers. The
 * unit.vectors_up_to_date test fails when the committed file differs from this output. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gstp/gstp.h"

/* ---- a minimal JSON writer (one vector per object, two-space indentation) ---- */

static int g_depth;      /* nesting depth of the open containers */
static int g_first[16];  /* 1 while the container at that depth has no member yet */
static int g_inline[16]; /* the container at that depth is printed on one line */

static void fail(const char *what)
{
    fprintf(stderr, "gen_vectors: %s\n", what);
    exit(1);
}

/* Starts a member (key may be NULL inside arrays): comma, newline and indentation. */
static void member(const char *key)
{
    int i;

    if (!g_first[g_depth])
        fputs(g_inline[g_depth] ? ", " : ",", stdout);
    g_first[g_depth] = 0;
    if (!g_inline[g_depth]) {
        putchar('\n');
        for (i = 0; i < g_depth; i++)
            fputs("  ", stdout);
    }
    if (key)
        printf("\"%s\": ", key);
}

static void open_c(const char *key, char c, int one_line)
{
    if (g_depth > 0)
        member(key);
    putchar(c);
    if (++g_depth >= 16)
        fail("nesting too deep");
    g_first[g_depth] = 1;
    g_inline[g_depth] = one_line || (g_depth > 1 && g_inline[g_depth - 1]);
}

static void close_c(char c)
{
    int i, was_inline = g_inline[g_depth], empty = g_first[g_depth];

    g_depth--;
    if (!was_inline && !empty) {
        putchar('\n');
        for (i = 0; i < g_depth; i++)
            fputs("  ", stdout);
    }
    putchar(c);
}

static void obj(const char *key)
{
    open_c(key, '{', 0);
}
static void obj1(const char *key)
{
    open_c(key, '{', 1);
}
static void arr(const char *key)
{
    open_c(key, '[', 0);
}
static void arr1(const char *key)
{
    open_c(key, '[', 1);
}
static void end_obj(void)
{
    close_c('}');
}
static void end_arr(void)
{
    close_c(']');
}

static void kv_str(const char *key, const char *s)
{
    member(key);
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void kv_u(const char *key, uint64_t v)
{
    member(key);
    printf("%" PRIu64, v);
}

static void kv_i(const char *key, int64_t v)
{
    member(key);
    printf("%" PRId64, v);
}

static void kv_f32(const char *key, float v)
{
    member(key);
    printf("%.9g", (double)v); /* 9 significant digits round-trip every binary32 value */
}

static void kv_hex(const char *key, const uint8_t *p, size_t n)
{
    size_t i;

    member(key);
    putchar('"');
    for (i = 0; i < n; i++)
        printf("%02x", p[i]);
    putchar('"');
}

/* ---- frames ---- */

static uint8_t g_frame[GSTP_MAX_FRAME];
static int g_len;

/* Starts a frame vector: name, the encoder's result in g_frame/g_len, header fields. */
static void frame_begin(const char *name, int n)
{
    if (n <= 0)
        fail(name);
    g_len = n;
    obj(NULL);
    kv_str("name", name);
    kv_str("type_name", gstp_type_name(g_frame[3]));
    kv_u("type", g_frame[3]);
    kv_u("version", g_frame[2]);
    kv_u("flags", g_frame[4]);
    kv_u("len", (uint64_t)g_frame[6] | (uint64_t)g_frame[7] << 8);
    kv_u("hcheck", (uint64_t)g_frame[8] | (uint64_t)g_frame[9] << 8);
    kv_u("crc", (uint64_t)g_frame[n - 4] | (uint64_t)g_frame[n - 3] << 8 |
                    (uint64_t)g_frame[n - 2] << 16 | (uint64_t)g_frame[n - 1] << 24);
    kv_hex("hex", g_frame, (size_t)n);
    obj("fields");
}

static void frame_end(void)
{
    end_obj(); /* fields */
    end_obj();
}

/* One TLV element's value as JSON: type names u8 u16 u32 u64 i64 str. */
typedef struct {
    uint8_t tag;
    const char *name;
    const char *type;
    int64_t v;
    const char *s;
} tlv_t;

static uint16_t tlv_build(const tlv_t *t, size_t n, uint8_t *buf, size_t cap)
{
    gstp_tlv_writer_t w;
    size_t i;

    gstp_tlv_writer_init(&w, buf, cap);
    for (i = 0; i < n; i++) {
        if (!strcmp(t[i].type, "u8"))
            gstp_tlv_put_u8(&w, t[i].tag, (uint8_t)t[i].v);
        else if (!strcmp(t[i].type, "u16"))
            gstp_tlv_put_u16(&w, t[i].tag, (uint16_t)t[i].v);
        else if (!strcmp(t[i].type, "u32"))
            gstp_tlv_put_u32(&w, t[i].tag, (uint32_t)t[i].v);
        else if (!strcmp(t[i].type, "u64"))
            gstp_tlv_put_u64(&w, t[i].tag, (uint64_t)t[i].v);
        else if (!strcmp(t[i].type, "i64"))
            gstp_tlv_put_i64(&w, t[i].tag, t[i].v);
        else
            gstp_tlv_put_str(&w, t[i].tag, t[i].s);
    }
    if (w.err != GSTP_OK)
        fail("tlv");
    return (uint16_t)w.len;
}

static void tlv_print(const char *key, const tlv_t *t, size_t n)
{
    size_t i;

    arr(key);
    for (i = 0; i < n; i++) {
        obj1(NULL);
        kv_u("tag", t[i].tag);
        kv_str("name", t[i].name);
        kv_str("type", t[i].type);
        if (!strcmp(t[i].type, "str"))
            kv_str("value", t[i].s);
        else
            kv_i("value", t[i].v);
        end_obj();
    }
    end_arr();
}

static void print_reject(const gstp_reject_t *r)
{
    kv_u("reason", r->reason);
    kv_str("reason_name", gstp_reason_name(r->reason));
    kv_u("retry_after_s", r->retry_after_s);
    kv_str("message", r->message);
}

static void print_block(const gstp_block_hdr_t *h, const gstp_event_hdr_t *ev, const int32_t *v,
                        uint16_t n_in_chunk)
{
    size_t i, nval = (size_t)n_in_chunk * h->nchannels;

    kv_u("seq", h->seq);
    kv_i("t0_ns", h->t0_ns);
    kv_u("sample_rate", h->sample_rate);
    kv_u("channel_mask", h->channel_mask);
    kv_u("nsamples", h->nsamples);
    kv_u("first_sample", h->first_sample);
    kv_u("time_quality", h->time_quality);
    kv_u("sample_fmt", h->sample_fmt);
    kv_u("nchannels", h->nchannels);
    kv_u("chunk_index", h->chunk_index);
    kv_u("chunk_count", h->chunk_count);
    kv_u("codec", h->codec);
    kv_u("n_in_chunk", n_in_chunk);
    if (ev) {
        kv_i("trigger_ns", ev->trigger_ns);
        kv_u("trigger", ev->trigger);
        kv_u("pretrigger", ev->pretrigger);
        kv_u("value_permille", ev->value_permille);
        kv_u("channel", ev->channel);
    }
    arr1("samples");
    for (i = 0; i < nval; i++) {
        member(NULL);
        printf("%" PRId32, v[i]);
    }
    end_arr();
}

/* Encodes chunk `k` of a block whose sample values (interleaved, all sets) are in v. */
static void block_vector(const char *name, gstp_block_hdr_t h, const gstp_event_hdr_t *ev,
                         const int32_t *v, uint16_t first, uint16_t nin, uint8_t k, uint8_t flags)
{
    uint8_t samples[GSTP_MAX_PAYLOAD];
    size_t w = h.sample_fmt == GSTP_FMT_INT32 ? 4 : 2, i, j, nval = (size_t)nin * h.nchannels;
    int n;

    if (nval * w > sizeof samples)
        fail("block too large");
    for (i = 0; i < nval; i++) {
        uint32_t x = (uint32_t)v[(size_t)first * h.nchannels + i];
        for (j = 0; j < w; j++)
            samples[i * w + j] = (uint8_t)(x >> (8 * j)); /* little-endian (protocol.md 2) */
    }
    h.first_sample = first;
    h.chunk_index = k;
    n = gstp_encode_block(g_frame, sizeof g_frame, &h, ev, samples, nin);
    if (n > 0 && flags && gstp_frame_set_flags(g_frame, (size_t)n, flags) != GSTP_OK)
        fail("set flags");
    frame_begin(name, n);
    print_block(&h, ev, v + (size_t)first * h.nchannels, nin);
    frame_end();
}

/* A 3-phase int16 waveform, 32 sets per cycle (50 Hz at 1600 S/s), amplitude 10000 with a
 * small deterministic disturbance: nsets sets into v (interleaved) and, little-endian, raw. */
static void wave3(int32_t *v, uint8_t *raw, uint16_t nsets)
{
    static const int16_t sine[32] = {0,     1951,  3827,  5556,  7071,  8315,  9239,  9808,
                                     10000, 9808,  9239,  8315,  7071,  5556,  3827,  1951,
                                     0,     -1951, -3827, -5556, -7071, -8315, -9239, -9808,
                                     -10000, -9808, -9239, -8315, -7071, -5556, -3827, -1951};
    uint32_t i, c;

    for (i = 0; i < nsets; i++)
        for (c = 0; c < 3; c++) {
            size_t k = (size_t)i * 3 + c;
            /* phases 120 degrees apart (32 / 3 rounded), a few counts of "noise" */
            v[k] = sine[(i + 32u - (c * 32u + 1u) / 3u) % 32u] + (int32_t)((i * 7u + c * 3u) % 5u) - 2;
            raw[2 * k] = (uint8_t)(uint32_t)v[k];
            raw[2 * k + 1] = (uint8_t)((uint32_t)v[k] >> 8);
        }
}

/* A codec-1 chunk (7.4): its sample bytes are one wcodec segment, printed as `segment`; samples
 * are the values it decodes to. One chunk carries the whole block here. */
static void wcodec_vector(const char *name, gstp_block_hdr_t h, const gstp_event_hdr_t *ev,
                          const int32_t *v, const uint8_t *raw, uint32_t period)
{
    uint16_t nin = 0;
    size_t fixed = GSTP_HEADER_LEN + GSTP_BLOCK_HDR_LEN + (ev ? GSTP_EVENT_HDR_LEN : 0);
    int n = gstp_encode_block_wcodec(g_frame, sizeof g_frame, &h, ev, raw, period,
                                     GSTP_MAX_PAYLOAD, &nin);
    if (n <= 0 || nin != h.nsamples)
        fail("codec 1 vector must fit in one chunk");
    frame_begin(name, n);
    print_block(&h, ev, v, nin);
    kv_u("period_hint", period);
    kv_hex("segment", g_frame + fixed, (size_t)n - fixed - GSTP_TRAILER_LEN);
    frame_end();
}

/* The HELLO of the worked example in protocol.md 11.2, with three channels. */
static void example_hello(gstp_hello_t *h)
{
    static const char *const names[3] = {"Ua", "Ub", "Uc"};
    uint8_t i;

    memset(h, 0, sizeof *h);
    h->version_min = 1;
    h->version_max = 1;
    strcpy(h->terminal_id, "T-0001");
    strcpy(h->fw_version, "1.0.3");
    strcpy(h->hw_version, "GS-T3 rev C");
    strcpy(h->imei, "866123456789012");
    strcpy(h->iccid, "89860412345678901234");
    h->sample_rate = 6400;
    h->nominal_hz = 50;
    h->vt_ratio = 100.0f;
    h->ct_ratio = 60.0f;
    h->time_source = GSTP_TS_GNSS;
    h->time_quality = GSTP_TQ_GPS_LOCKED;
    h->buffer_blocks = 4096;
    h->nchannels = 3;
    for (i = 0; i < 3; i++) {
        h->channels[i].index = i;
        h->channels[i].kind = GSTP_KIND_VOLTAGE;
        h->channels[i].phase = (uint8_t)(GSTP_PHASE_A + i);
        h->channels[i].unit = GSTP_UNIT_V;
        h->channels[i].scale = 0.01f;
        strcpy(h->channels[i].name, names[i]);
    }
}

static void print_hello(const gstp_hello_t *h)
{
    unsigned i;

    kv_u("version_min", h->version_min);
    kv_u("version_max", h->version_max);
    kv_str("terminal_id", h->terminal_id);
    kv_str("fw_version", h->fw_version);
    kv_str("hw_version", h->hw_version);
    kv_str("imei", h->imei);
    kv_str("iccid", h->iccid);
    kv_u("sample_rate", h->sample_rate);
    kv_u("nominal_hz", h->nominal_hz);
    kv_f32("vt_ratio", h->vt_ratio);
    kv_f32("ct_ratio", h->ct_ratio);
    kv_u("time_source", h->time_source);
    kv_u("time_quality", h->time_quality);
    kv_u("buffer_blocks", h->buffer_blocks);
    arr("channels");
    for (i = 0; i < h->nchannels; i++) {
        const gstp_channel_t *c = &h->channels[i];
        obj1(NULL);
        kv_u("index", c->index);
        kv_u("kind", c->kind);
        kv_u("phase", c->phase);
        kv_u("unit", c->unit);
        kv_f32("scale", c->scale);
        kv_str("name", c->name);
        end_obj();
    }
    end_arr();
}

static void cmd_vector(const char *name, uint64_t id, uint16_t verb, const tlv_t *t, size_t nt)
{
    uint8_t tlv[GSTP_MAX_TLV];
    gstp_command_t c = {id, verb, 0, tlv};

    c.tlv_len = tlv_build(t, nt, tlv, sizeof tlv);
    frame_begin(name, gstp_encode_command(g_frame, sizeof g_frame, &c));
    kv_u("id", c.id);
    kv_u("verb", c.verb);
    tlv_print("args", t, nt);
    frame_end();
}

static void result_vector(const char *name, uint64_t id, uint16_t status, const tlv_t *t, size_t nt)
{
    uint8_t tlv[GSTP_MAX_TLV];
    gstp_result_t r = {id, status, 0, tlv};

    r.tlv_len = tlv_build(t, nt, tlv, sizeof tlv);
    frame_begin(name, gstp_encode_result(g_frame, sizeof g_frame, &r));
    kv_u("id", r.id);
    kv_u("status", r.status);
    tlv_print("results", t, nt);
    frame_end();
}

static const uint8_t k_secret[GSTP_SECRET_LEN] = {
    0x5e, 0x8a, 0x1c, 0x22, 0x90, 0x4b, 0x7f, 0x03, 0xd1, 0x66, 0x2e, 0xb9, 0x48, 0x0c, 0x75, 0xfa,
    0x13, 0xc4, 0x57, 0x9d, 0x2a, 0xe0, 0x61, 0x38, 0xbf, 0x04, 0x92, 0x7c, 0xe5, 0x1d, 0x86, 0x4f};

static void nonce_of(uint8_t *nonce)
{
    unsigned i;

    for (i = 0; i < GSTP_NONCE_LEN; i++)
        nonce[i] = (uint8_t)(0xA0 + i);
}

/* HMAC-SHA256(secret, nonce || HELLO payload) (protocol.md 6.2) with libsodium. */
static void hello_mac(const uint8_t *hello_frame, int n, uint8_t *mac)
{
    crypto_auth_hmacsha256_state st;
    uint8_t nonce[GSTP_NONCE_LEN];

    nonce_of(nonce);
    crypto_auth_hmacsha256_init(&st, k_secret, sizeof k_secret);
    crypto_auth_hmacsha256_update(&st, nonce, sizeof nonce);
    crypto_auth_hmacsha256_update(&st, hello_frame + GSTP_HEADER_LEN,
                                  (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN);
    crypto_auth_hmacsha256_final(&st, mac);
}

static void crc_vector(const char *name, const uint8_t *p, size_t n)
{
    obj1(NULL);
    kv_str("name", name);
    kv_hex("input_hex", p, n);
    kv_u("crc32c", gstp_crc32c(0, p, n));
    end_obj();
}

/* An invalid frame and what a receiver does with it. */
static void invalid_vector(const char *name, const uint8_t *p, size_t n, int frames, int hdr_err,
                           int crc_err, const char *parse, const char *action)
{
    obj(NULL);
    kv_str("name", name);
    kv_hex("hex", p, n);
    obj1("expect");
    kv_u("frames", (uint64_t)frames);
    kv_u("header_errors", (uint64_t)hdr_err);
    kv_u("crc_errors", (uint64_t)crc_err);
    kv_str("parse", parse);
    end_obj();
    kv_str("receiver_action", action);
    end_obj();
}

static void frames(void)
{
    gstp_hello_t h;
    uint8_t mac[GSTP_MAC_LEN];
    int n;

    arr("frames");

    example_hello(&h);
    n = gstp_encode_hello(g_frame, sizeof g_frame, &h);
    hello_mac(g_frame, n, mac);
    frame_begin("HELLO of T-0001, three voltage channels", n);
    print_hello(&h);
    frame_end();

    {
        gstp_challenge_t c;
        c.version = 1;
        nonce_of(c.nonce);
        frame_begin("CHALLENGE, version 1", gstp_encode_challenge(g_frame, sizeof g_frame, &c));
        kv_u("version", c.version);
        kv_hex("nonce", c.nonce, sizeof c.nonce);
        frame_end();
    }
    {
        gstp_auth_t a;
        memcpy(a.mac, mac, sizeof a.mac);
        frame_begin("AUTH answering the CHALLENGE above (see hmac)",
                    gstp_encode_auth(g_frame, sizeof g_frame, &a));
        kv_hex("mac", a.mac, sizeof a.mac);
        frame_end();
    }
    {
        gstp_welcome_t w = {1700000000123456789LL, 30, 64, 41, 0x00012345u, 0};
        frame_begin("WELCOME", gstp_encode_welcome(g_frame, sizeof g_frame, &w));
        kv_i("server_time_ns", w.server_time_ns);
        kv_u("heartbeat_s", w.heartbeat_s);
        kv_u("ack_window", w.ack_window);
        kv_u("resume_seq", w.resume_seq);
        kv_u("session_id", w.session_id);
        kv_u("codecs", 1); /* no CODECS element: raw only */
        frame_end();
    }
    {
        gstp_welcome_t w = {1700000000123456789LL, 30, 64, 41, 0x00012346u, GSTP_CODECS_KNOWN};
        frame_begin("WELCOME announcing codecs raw, wcodec and wcodec with the block model "
                    "(extension CODECS, 6.7)",
                    gstp_encode_welcome(g_frame, sizeof g_frame, &w));
        kv_i("server_time_ns", w.server_time_ns);
        kv_u("heartbeat_s", w.heartbeat_s);
        kv_u("ack_window", w.ack_window);
        kv_u("resume_seq", w.resume_seq);
        kv_u("session_id", w.session_id);
        kv_u("codecs", w.codecs);
        frame_end();
    }
    {
        gstp_reject_t r = {GSTP_REJ_RATE_LIMIT, 60, "too many failed logins, retry later"};
        frame_begin("REJECT RATE_LIMIT", gstp_encode_reject(g_frame, sizeof g_frame, &r));
        print_reject(&r);
        frame_end();
    }
    {
        gstp_reject_t r = {GSTP_REJ_BAD_CONFIG, 0, "NOMINAL_HZ 60 conflicts with provisioned 50"};
        frame_begin("REJECT BAD_CONFIG", gstp_encode_reject(g_frame, sizeof g_frame, &r));
        print_reject(&r);
        frame_end();
    }
    {
        gstp_reject_t r = {GSTP_REJ_DEAD, 0, "heartbeat timeout"};
        frame_begin("BYE DEAD (server)", gstp_encode_bye(g_frame, sizeof g_frame, &r));
        print_reject(&r);
        frame_end();
    }
    {
        gstp_reject_t r = {GSTP_REJ_SHUTDOWN, 0, "rebooting"};
        frame_begin("BYE SHUTDOWN (terminal)", gstp_encode_bye(g_frame, sizeof g_frame, &r));
        print_reject(&r);
        frame_end();
    }

    /* WAVEFORM: 3 int16 channels at 6400 S/s. Single chunk: 4 sample sets. */
    {
        static const int32_t v1[12] = {0,    7071, -7071, 1234, 5837, -7071,
                                       2456, 4589, -7045, 3637, 3231, -6868};
        gstp_block_hdr_t b;
        memset(&b, 0, sizeof b);
        b.seq = 42;
        b.t0_ns = 1700000000000000000LL;
        b.sample_rate = 6400;
        b.channel_mask = 0x7;
        b.nsamples = 4;
        b.time_quality = GSTP_TQ_GPS_LOCKED;
        b.sample_fmt = GSTP_FMT_INT16;
        b.nchannels = 3;
        b.chunk_count = 1;
        block_vector("WAVEFORM, one chunk", b, NULL, v1, 0, 4, 0, 0);
        block_vector("WAVEFORM, one chunk, re-sent after reconnect (flag RESENT)", b, NULL, v1, 0,
                     4, 0, GSTP_FLAG_RESENT);
    }
    /* Chunked WAVEFORM: 10 sets of 3 int16 channels, chunks sized for a 64-byte payload limit
     * (kept tiny for readability: gstp_block_chunk_capacity(3, int16, 0, 64) = 4 sets), so
     * chunks of 4, 4 and 2 sets. */
    {
        int32_t v[30];
        gstp_block_hdr_t b;
        uint16_t cap = gstp_block_chunk_capacity(3, GSTP_FMT_INT16, 0, 64), first = 0;
        uint8_t k = 0;
        char name[96];
        int i;

        for (i = 0; i < 30; i++)
            v[i] = (int32_t)((i * 2731) % 20000) - 10000;
        memset(&b, 0, sizeof b);
        b.seq = 43;
        b.t0_ns = 1700000000000625000LL; /* 4 sets after seq 42 at 6400 S/s */
        b.sample_rate = 6400;
        b.channel_mask = 0x7;
        b.nsamples = 10;
        b.time_quality = GSTP_TQ_GPS_LOCKED;
        b.sample_fmt = GSTP_FMT_INT16;
        b.nchannels = 3;
        b.chunk_count = (uint8_t)((b.nsamples + cap - 1) / cap);
        if (b.chunk_count != 3)
            fail("chunked example must have 3 chunks");
        while (first < b.nsamples) {
            uint16_t nin = (uint16_t)(b.nsamples - first < cap ? b.nsamples - first : cap);
            snprintf(name, sizeof name, "WAVEFORM, chunk %u of 3 of block 43", k + 1u);
            block_vector(name, b, NULL, v, first, nin, k, 0);
            first = (uint16_t)(first + nin);
            k++;
        }
    }
    /* WAVEFORM with codec 1: 3 cycles of 3 int16 channels at 1600 S/s, 50 Hz, in one chunk. */
    {
        int32_t v[96 * 3];
        uint8_t raw[96 * 3 * 2];
        gstp_block_hdr_t b;
        memset(&b, 0, sizeof b);
        b.seq = 46;
        b.t0_ns = 1700000000000000000LL;
        b.sample_rate = 1600;
        b.channel_mask = 0x7;
        b.nsamples = 96;
        b.time_quality = GSTP_TQ_GPS_LOCKED;
        b.sample_fmt = GSTP_FMT_INT16;
        b.nchannels = 3;
        b.chunk_count = 1;
        b.codec = GSTP_CODEC_WCODEC;
        wave3(v, raw, 96);
        wcodec_vector("WAVEFORM with codec 1 (wcodec), one chunk", b, NULL, v, raw,
                      gstp_period_hint(1600, 50));
    }
    /* EVENT: a dip on channel 1, 2 int32 channels, 6 sets, 2 of them before the trigger. */
    {
        static const int32_t v[12] = {100000, -50000, 70710,  -70710, 30000, -95000,
                                      -20000, 60000,  -40000, 35000,  10000, -15000};
        gstp_block_hdr_t b;
        gstp_event_hdr_t ev = {1700000000010312500LL, GSTP_TRIG_DIP, 2, 612, 1};
        memset(&b, 0, sizeof b);
        b.seq = 44;
        b.t0_ns = 1700000000010000000LL;
        b.sample_rate = 6400;
        b.channel_mask = 0x3;
        b.nsamples = 6;
        b.time_quality = GSTP_TQ_NETWORK_SYNCED;
        b.sample_fmt = GSTP_FMT_INT32;
        b.nchannels = 2;
        b.chunk_count = 1;
        block_vector("EVENT, dip, int32 samples", b, &ev, v, 0, 6, 0, 0);
    }
    {
        gstp_status_t s = {1700000000500000000LL, -95,   -67, 23, 3,     9,
                           GSTP_TQ_GPS_LOCKED,    12010, 312, 15, 86400, 7};
        frame_begin("STATUS", gstp_encode_status(g_frame, sizeof g_frame, &s));
        kv_i("time_ns", s.time_ns);
        kv_i("rsrp_dbm", s.rsrp_dbm);
        kv_i("rssi_dbm", s.rssi_dbm);
        kv_u("csq", s.csq);
        kv_u("gps_fix", s.gps_fix);
        kv_u("gps_sats", s.gps_sats);
        kv_u("time_quality", s.time_quality);
        kv_u("supply_mv", s.supply_mv);
        kv_i("temp_c10", s.temp_c10);
        kv_u("buffer_permille", s.buffer_permille);
        kv_u("uptime_s", s.uptime_s);
        kv_u("buffered_blocks", s.buffered_blocks);
        frame_end();
    }
    {
        gstp_status_t s = {1700000000500000000LL, GSTP_NA_I16, GSTP_NA_I16, 99, 0,  0,
                           GSTP_TQ_FREE_RUNNING,  GSTP_NA_U16, GSTP_NA_I16, 0,  12, 0};
        frame_begin("STATUS with every optional field not available",
                    gstp_encode_status(g_frame, sizeof g_frame, &s));
        kv_i("time_ns", s.time_ns);
        kv_i("rsrp_dbm", s.rsrp_dbm);
        kv_i("rssi_dbm", s.rssi_dbm);
        kv_u("csq", s.csq);
        kv_u("gps_fix", s.gps_fix);
        kv_u("gps_sats", s.gps_sats);
        kv_u("time_quality", s.time_quality);
        kv_u("supply_mv", s.supply_mv);
        kv_i("temp_c10", s.temp_c10);
        kv_u("buffer_permille", s.buffer_permille);
        kv_u("uptime_s", s.uptime_s);
        kv_u("buffered_blocks", s.buffered_blocks);
        frame_end();
    }
    {
        gstp_ack_t a = {44};
        frame_begin("ACK", gstp_encode_ack(g_frame, sizeof g_frame, &a));
        kv_u("seq", a.seq);
        frame_end();
    }
    {
        static const tlv_t capture[] = {{GSTP_AT_CYCLES, "CYCLES", "u16", 20, NULL},
                                        {GSTP_AT_PRETRIGGER, "PRETRIGGER", "u16", 4, NULL}};
        static const tlv_t config[] = {
            {GSTP_AT_REPORT_INTERVAL, "REPORT_INTERVAL", "u32", 60, NULL},
            {GSTP_AT_STREAM, "STREAM", "u8", 1, NULL},
            {GSTP_AT_DIP_PERMILLE, "DIP_PERMILLE", "u16", 900, NULL},
            {GSTP_AT_SWELL_PERMILLE, "SWELL_PERMILLE", "u16", 1100, NULL}};
        static const tlv_t sync[] = {
            {GSTP_AT_SERVER_TIME, "SERVER_TIME", "i64", 1700000001000000000LL, NULL}};
        cmd_vector("COMMAND GET_STATUS", 101, GSTP_VERB_GET_STATUS, NULL, 0);
        cmd_vector("COMMAND CAPTURE 20 cycles, 4 before the trigger", 102, GSTP_VERB_CAPTURE,
                   capture, 2);
        cmd_vector("COMMAND STREAM_START", 103, GSTP_VERB_STREAM_START, NULL, 0);
        cmd_vector("COMMAND STREAM_STOP", 104, GSTP_VERB_STREAM_STOP, NULL, 0);
        cmd_vector("COMMAND SET_CONFIG", 105, GSTP_VERB_SET_CONFIG, config, 4);
        cmd_vector("COMMAND TIME_SYNC", 106, GSTP_VERB_TIME_SYNC, sync, 1);
        cmd_vector("COMMAND REBOOT", 107, GSTP_VERB_REBOOT, NULL, 0);
    }
    {
        static const tlv_t seq[] = {{GSTP_AT_BLOCK_SEQ, "BLOCK_SEQ", "u64", 44, NULL}};
        static const tlv_t ts[] = {
            {GSTP_AT_TERM_RX_TIME, "TERM_RX_TIME", "i64", 1700000001021000000LL, NULL},
            {GSTP_AT_TERM_TX_TIME, "TERM_TX_TIME", "i64", 1700000001021400000LL, NULL}};
        static const tlv_t bad[] = {
            {GSTP_AT_MESSAGE, "MESSAGE", "str", 0, "PRETRIGGER must be less than CYCLES"}};
        result_vector("RESULT OK for CAPTURE", 102, GSTP_RS_OK, seq, 1);
        result_vector("RESULT OK for TIME_SYNC", 106, GSTP_RS_OK, ts, 2);
        result_vector("RESULT ACCEPTED for REBOOT", 107, GSTP_RS_ACCEPTED, NULL, 0);
        result_vector("RESULT BAD_ARGS with a MESSAGE", 102, GSTP_RS_BAD_ARGS, bad, 1);
    }
    {
        gstp_ping_t p = {1, 1700000000000000000LL};
        frame_begin("PING (protocol.md 11.1)", gstp_encode_ping(g_frame, sizeof g_frame, &p));
        kv_u("token", p.token);
        kv_i("sender_time_ns", p.sender_time_ns);
        frame_end();
        p.sender_time_ns = 1700000000020000000LL;
        frame_begin("PONG echoing token 1", gstp_encode_pong(g_frame, sizeof g_frame, &p));
        kv_u("token", p.token);
        kv_i("sender_time_ns", p.sender_time_ns);
        frame_end();
    }
    {
        gstp_error_t e = {GSTP_ERR_UNEXPECTED, GSTP_ACK, "ACK is sent by the server only"};
        frame_begin("ERROR UNEXPECTED", gstp_encode_error(g_frame, sizeof g_frame, &e));
        kv_u("code", e.code);
        kv_u("frame_type", e.frame_type);
        kv_str("message", e.message);
        frame_end();
    }
    {
        gstp_error_t e = {GSTP_ERR_UNKNOWN_TYPE, 0x40, ""};
        frame_begin("ERROR UNKNOWN_TYPE, no message",
                    gstp_encode_error(g_frame, sizeof g_frame, &e));
        kv_u("code", e.code);
        kv_u("frame_type", e.frame_type);
        kv_str("message", e.message);
        frame_end();
    }
    end_arr();
}

static void hmac_section(void)
{
    gstp_hello_t h;
    uint8_t nonce[GSTP_NONCE_LEN], mac[GSTP_MAC_LEN];
    int n;

    example_hello(&h);
    n = gstp_encode_hello(g_frame, sizeof g_frame, &h);
    if (n <= 0)
        fail("hello");
    hello_mac(g_frame, n, mac);
    nonce_of(nonce);
    arr("hmac");
    obj(NULL);
    kv_str("name", "AUTH.mac for the HELLO and CHALLENGE frames above");
    kv_hex("secret_hex", k_secret, sizeof k_secret);
    kv_hex("nonce_hex", nonce, sizeof nonce);
    kv_hex("hello_payload_hex", g_frame + GSTP_HEADER_LEN,
           (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN);
    kv_hex("mac_hex", mac, sizeof mac);
    end_obj();
    end_arr();
}

static void crc_section(void)
{
    uint8_t z[32], ff[32], inc[32], hdr[8];
    gstp_ping_t p = {1, 1700000000000000000LL};
    unsigned i;

    memset(z, 0, sizeof z);
    memset(ff, 0xFF, sizeof ff);
    for (i = 0; i < sizeof inc; i++)
        inc[i] = (uint8_t)i;
    if (gstp_encode_ping(g_frame, sizeof g_frame, &p) <= 0)
        fail("ping");
    memcpy(hdr, g_frame, sizeof hdr);
    arr("crc32c");
    crc_vector("ASCII 123456789 (the standard check value)", (const uint8_t *)"123456789", 9);
    crc_vector("32 bytes 0x00 (RFC 3720 B.4)", z, sizeof z);
    crc_vector("32 bytes 0xFF (RFC 3720 B.4)", ff, sizeof ff);
    crc_vector("bytes 0x00..0x1F (RFC 3720 B.4)", inc, sizeof inc);
    crc_vector("header bytes 0..7 of the PING vector; hcheck is the low 16 bits", hdr, sizeof hdr);
    end_arr();
}

static void invalid_section(void)
{
    uint8_t b[GSTP_MAX_FRAME], pl[64];
    gstp_ping_t p = {1, 1700000000000000000LL};
    gstp_hello_t h;
    int n;

    arr("invalid");
    n = gstp_encode_ping(b, sizeof b, &p);
    b[8] ^= 0x01;
    invalid_vector("PING with a wrong header check (hcheck)", b, (size_t)n, 0, 1, 0, "",
                   "header error: discard one byte and resynchronise (3.3); nothing is answered");
    n = gstp_encode_ping(b, sizeof b, &p);
    b[n - 1] ^= 0x80;
    invalid_vector("PING with a wrong CRC", b, (size_t)n, 0, 0, 1, "",
                   "CRC error: discard one byte and resynchronise (3.3); nothing is answered");
    n = gstp_encode_ping(b, sizeof b, &p);
    b[7] = 0x09; /* len 0x090c = 2316 > 2048 */
    {
        uint16_t c = (uint16_t)(gstp_crc32c(0, b, 8) & 0xFFFF);
        b[8] = (uint8_t)c;
        b[9] = (uint8_t)(c >> 8);
    }
    invalid_vector("header with len 2316 > 2048 (and a correct hcheck)", b, (size_t)n, 0, 1, 0, "",
                   "header error: discard one byte and resynchronise (3.3)");
    /* COMMAND whose only TLV element says 5 bytes but 2 follow. */
    memset(pl, 0, sizeof pl);
    pl[0] = 108; /* id 108 */
    pl[8] = GSTP_VERB_CAPTURE;
    pl[12] = GSTP_AT_CYCLES;
    pl[13] = 5;
    pl[15] = 20;
    n = gstp_frame_write(b, sizeof b, GSTP_COMMAND, 0, pl, 17);
    invalid_vector("COMMAND whose TLV element runs past the end of the payload", b, (size_t)n, 1, 0,
                   0, "GSTP_E_TLV", "terminal answers ERROR MALFORMED; the session continues");
    /* HELLO with TERMINAL_ID twice: the encoder cannot produce it, so append a second one. */
    example_hello(&h);
    h.nchannels = 1;
    n = gstp_encode_hello(b, sizeof b, &h);
    if (n <= 0)
        fail("hello");
    {
        uint8_t payload[GSTP_MAX_PAYLOAD];
        size_t len = (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN;
        static const uint8_t again[] = {GSTP_HT_TERMINAL_ID, 6, 0, 'T', '-', '0', '0', '0', '2'};
        memcpy(payload, b + GSTP_HEADER_LEN, len);
        memcpy(payload + len, again, sizeof again);
        n = gstp_frame_write(b, sizeof b, GSTP_HELLO, 0, payload, len + sizeof again);
    }
    invalid_vector("HELLO with TERMINAL_ID repeated", b, (size_t)n, 1, 0, 0, "GSTP_E_RANGE",
                   "server answers REJECT PROTOCOL and closes (6.1)");
    /* HELLO with version_min 0. */
    example_hello(&h);
    h.nchannels = 1;
    n = gstp_encode_hello(b, sizeof b, &h);
    {
        uint8_t payload[GSTP_MAX_PAYLOAD];
        size_t len = (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN;
        memcpy(payload, b + GSTP_HEADER_LEN, len);
        payload[0] = 0;
        n = gstp_frame_write(b, sizeof b, GSTP_HELLO, 0, payload, len);
    }
    invalid_vector("HELLO with version_min 0", b, (size_t)n, 1, 0, 0, "GSTP_E_RANGE",
                   "server answers REJECT PROTOCOL and closes (6.1)");
    /* WAVEFORM chunk with one byte more than its sample sets. */
    {
        gstp_block_hdr_t bh;
        uint8_t payload[GSTP_MAX_PAYLOAD], s[12] = {0};
        size_t len;
        memset(&bh, 0, sizeof bh);
        bh.seq = 45;
        bh.t0_ns = 1700000000000000000LL;
        bh.sample_rate = 6400;
        bh.channel_mask = 0x7;
        bh.nsamples = 2;
        bh.time_quality = GSTP_TQ_GPS_LOCKED;
        bh.sample_fmt = GSTP_FMT_INT16;
        bh.nchannels = 3;
        bh.chunk_count = 1;
        n = gstp_encode_block(b, sizeof b, &bh, NULL, s, 2);
        len = (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN;
        memcpy(payload, b + GSTP_HEADER_LEN, len);
        payload[len] = 0;
        n = gstp_frame_write(b, sizeof b, GSTP_WAVEFORM, 0, payload, len + 1);
    }
    invalid_vector("WAVEFORM chunk with one sample byte too many", b, (size_t)n, 1, 0, 0,
                   "GSTP_E_RANGE",
                   "server answers ERROR MALFORMED, then BYE PROTOCOL, and closes (7.1)");
    /* Codec-1 chunk whose sample bytes hold one byte after the segment (7.4: exactly one
     * segment). gstp_parse_block accepts the frame; decoding it in its block
     * (gstp_block_decode_chunk) gives GSTP_E_RANGE, which `parse` names. */
    {
        gstp_block_hdr_t bh;
        int32_t v[16 * 3];
        uint8_t raw[16 * 3 * 2], payload[GSTP_MAX_PAYLOAD];
        uint16_t nin = 0;
        size_t len;
        memset(&bh, 0, sizeof bh);
        bh.seq = 47;
        bh.t0_ns = 1700000000000000000LL;
        bh.sample_rate = 1600;
        bh.channel_mask = 0x7;
        bh.nsamples = 16;
        bh.time_quality = GSTP_TQ_GPS_LOCKED;
        bh.sample_fmt = GSTP_FMT_INT16;
        bh.nchannels = 3;
        bh.chunk_count = 1;
        bh.codec = GSTP_CODEC_WCODEC;
        wave3(v, raw, 16);
        n = gstp_encode_block_wcodec(b, sizeof b, &bh, NULL, raw, 32, GSTP_MAX_PAYLOAD, &nin);
        if (n <= 0 || nin != 16)
            fail("codec 1 invalid vector");
        len = (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN;
        memcpy(payload, b + GSTP_HEADER_LEN, len);
        payload[len] = 0;
        n = gstp_frame_write(b, sizeof b, GSTP_WAVEFORM, 0, payload, len + 1);
    }
    invalid_vector("WAVEFORM codec 1 chunk with a byte after its segment", b, (size_t)n, 1, 0, 0,
                   "GSTP_E_RANGE",
                   "server answers ERROR MALFORMED, then BYE PROTOCOL, and closes (7.1, 7.4)");
    end_arr();
}

int main(void)
{
    if (sodium_init() < 0)
        fail("sodium_init");
    obj(NULL);
    kv_str("protocol", "GSTP");
    kv_str("spec", "docs/protocol.md");
    kv_str("spec_version", "1.1");
    kv_u("wire_version", GSTP_VERSION);
    kv_str("generator", "tests/vectors/gen_vectors.c (with the codec in src/gstp)");
    kv_str("regenerate",
           "cc -std=c99 -Isrc tests/vectors/gen_vectors.c src/gstp/gstp.c src/gstp/crc32c.c "
           "src/wcodec/wcodec.c -lsodium -o /tmp/gen_vectors && /tmp/gen_vectors > "
           "docs/vectors/gstp-1.0.json");
    kv_str("notes",
           "hex: the complete frame (header, payload, CRC-32C). fields: every field of the "
           "decoded payload; header fields (type, version, flags, len, hcheck, crc) are beside "
           "it. Integers are exact JSON numbers, some above 2^53: read them with a 64-bit "
           "integer JSON reader. f32 values are printed with 9 significant digits, which "
           "round-trips binary32. samples: the chunk's values, interleaved by channel in "
           "ascending index order. args/results: the TLV elements in wire order. The chunked "
           "WAVEFORM uses a 64-byte payload limit only to stay short; real chunks are about 1 KB. "
           "codec 1 (wcodec, 1.1): segment is the chunk's sample bytes, one wcodec segment "
           "(protocol.md Appendix A, vectors in docs/vectors/wcodec.json), and samples the "
           "values it decodes to; codecs (WELCOME): the accepted codecs, bit c = codec c.");
    frames();
    hmac_section();
    crc_section();
    invalid_section();
    end_obj();
    putchar('\n');
    return 0;
}
