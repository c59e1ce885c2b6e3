/* Unit tests for the GSTP codec (src/gstp/gstp.h): CRC-32C vectors, round trips of every frame
 * type, decoder resynchronisation over malformed headers, modem/DTU text and split streams,
 * limits, truncations and TLV errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gstp/gstp.h"

/* ---- Helpers ----------------------------------------------------------------------------------
 */

#define MAX_COLLECT 64

/* A frame copied out of the decoder (payload pointers die at the next feed). */
typedef struct {
    uint8_t type, flags, version;
    uint16_t len;
    uint8_t payload[GSTP_MAX_PAYLOAD];
} frame_copy_t;

typedef struct {
    size_t n;
    size_t frame_bytes; /* sum of on-wire sizes of the frames returned */
    size_t fed;         /* bytes accepted by feed */
    frame_copy_t f[MAX_COLLECT];
} collect_t;

static collect_t *collect_new(void)
{
    collect_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    return c;
}

static void drain(gstp_decoder_t *d, collect_t *c)
{
    gstp_frame_t f;

    while (gstp_decoder_next(d, &f) == GSTP_FRAME) {
        assert_true(c->n < MAX_COLLECT);
        c->f[c->n].type = f.type;
        c->f[c->n].flags = f.flags;
        c->f[c->n].version = f.version;
        c->f[c->n].len = f.len;
        memcpy(c->f[c->n].payload, f.payload, f.len);
        c->n++;
        c->frame_bytes += GSTP_HEADER_LEN + f.len + GSTP_TRAILER_LEN;
    }
}

/* Feeds data in pieces of `step` bytes (0 = all at once), draining frames after each piece, as
 * the usage example in gstp.h does (feed may take less than offered when the buffer is full). */
static void feed_stream(gstp_decoder_t *d, collect_t *c, const uint8_t *data, size_t n, size_t step)
{
    while (n > 0) {
        size_t piece = step && step < n ? step : n;
        size_t used = gstp_decoder_feed(d, data, piece);
        c->fed += used;
        drain(d, c);
        if (used == 0) {
            /* After next() returned NEED_MORE there must always be room again. */
            fail_msg("feed took 0 bytes after drain");
        }
        data += used;
        n -= used;
    }
}

/* Every byte fed is in a returned frame, counted as skipped, or still pending. */
static void check_accounting(const gstp_decoder_t *d, const collect_t *c)
{
    assert_int_equal(c->frame_bytes + d->stats.skipped_bytes + gstp_decoder_pending(d), c->fed);
    assert_int_equal(d->stats.frames, c->n);
}

/* Growable byte stream for building test inputs. */
typedef struct {
    uint8_t b[65536];
    size_t n;
} stream_t;

static void put(stream_t *s, const void *p, size_t n)
{
    assert_true(s->n + n <= sizeof s->b);
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void put_str(stream_t *s, const char *z)
{
    put(s, z, strlen(z));
}

static void put_frame(stream_t *s, int len)
{
    assert_true(len > 0);
    s->n += (size_t)len;
}

static int put_ping(stream_t *s, uint32_t token)
{
    gstp_ping_t p = {token, (int64_t)token * 1000};
    int n = gstp_encode_ping(s->b + s->n, sizeof s->b - s->n, &p);
    put_frame(s, n);
    return n;
}

static gstp_frame_t frame_of(uint8_t type, const uint8_t *p, size_t n)
{
    gstp_frame_t f;
    f.version = 1;
    f.type = type;
    f.flags = 0;
    f.len = (uint16_t)n;
    f.payload = p;
    return f;
}

/* Decodes exactly one frame from an encoded buffer. */
static gstp_frame_t decode_one(uint8_t *rx, size_t rxcap, const uint8_t *wire, int n)
{
    gstp_decoder_t d;
    gstp_frame_t f;

    assert_true(n > 0);
    assert_int_equal(gstp_decoder_init(&d, rx, rxcap), GSTP_OK);
    assert_int_equal(gstp_decoder_feed(&d, wire, (size_t)n), (size_t)n);
    assert_int_equal(gstp_decoder_next(&d, &f), GSTP_FRAME);
    assert_int_equal(gstp_decoder_pending(&d), 0);
    assert_int_equal(d.stats.skipped_bytes, 0);
    return f;
}

/* Deterministic pseudo-random bytes (tests must be reproducible). */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void fill_hello(gstp_hello_t *h, uint8_t nch)
{
    uint8_t i;

    memset(h, 0, sizeof *h);
    h->version_min = 1;
    h->version_max = 3;
    strcpy(h->terminal_id, "sub-12.feeder_3");
    strcpy(h->fw_version, "1.4.2+g1a2b3c");
    strcpy(h->hw_version, "GS-T3 rev C");
    strcpy(h->imei, "866123456789012");
    strcpy(h->iccid, "89860412345678901234");
    h->sample_rate = 12800;
    h->nominal_hz = 50;
    h->vt_ratio = 100.0f;
    h->ct_ratio = 60.0f;
    h->time_source = GSTP_TS_GNSS;
    h->time_quality = GSTP_TQ_GPS_LOCKED;
    h->buffer_blocks = 4096;
    h->nchannels = nch;
    for (i = 0; i < nch; i++) {
        h->channels[i].index = (uint8_t)(i * 2 % 16 + (i >= 8));
        h->channels[i].kind = i % 2 ? GSTP_KIND_CURRENT : GSTP_KIND_VOLTAGE;
        h->channels[i].phase = (uint8_t)(1 + i % 4);
        h->channels[i].unit = i % 2 ? GSTP_UNIT_A : GSTP_UNIT_V;
        h->channels[i].scale = 0.001f * (float)(i + 1);
        snprintf(h->channels[i].name, sizeof h->channels[i].name, "%s%c", i % 2 ? "I" : "U",
                 "abcn"[i % 4]);
    }
}

static void assert_hello_equal(const gstp_hello_t *a, const gstp_hello_t *b)
{
    uint8_t i;

    assert_int_equal(a->version_min, b->version_min);
    assert_int_equal(a->version_max, b->version_max);
    assert_string_equal(a->terminal_id, b->terminal_id);
    assert_string_equal(a->fw_version, b->fw_version);
    assert_string_equal(a->hw_version, b->hw_version);
    assert_string_equal(a->imei, b->imei);
    assert_string_equal(a->iccid, b->iccid);
    assert_int_equal(a->sample_rate, b->sample_rate);
    assert_int_equal(a->nominal_hz, b->nominal_hz);
    assert_memory_equal(&a->vt_ratio, &b->vt_ratio, sizeof(float));
    assert_memory_equal(&a->ct_ratio, &b->ct_ratio, sizeof(float));
    assert_int_equal(a->time_source, b->time_source);
    assert_int_equal(a->time_quality, b->time_quality);
    assert_int_equal(a->buffer_blocks, b->buffer_blocks);
    assert_int_equal(a->nchannels, b->nchannels);
    for (i = 0; i < a->nchannels; i++) {
        assert_int_equal(a->channels[i].index, b->channels[i].index);
        assert_int_equal(a->channels[i].kind, b->channels[i].kind);
        assert_int_equal(a->channels[i].phase, b->channels[i].phase);
        assert_int_equal(a->channels[i].unit, b->channels[i].unit);
        assert_memory_equal(&a->channels[i].scale, &b->channels[i].scale, sizeof(float));
        assert_string_equal(a->channels[i].name, b->channels[i].name);
    }
}

static void fill_block_hdr(gstp_block_hdr_t *h, uint32_t mask, uint8_t fmt, uint16_t nsamples)
{
    unsigned bits = 0;
    uint32_t m;

    for (m = mask; m; m &= m - 1)
        bits++;
    memset(h, 0, sizeof *h);
    h->seq = 42;
    h->t0_ns = 1700000000123456789LL;
    h->sample_rate = 12800;
    h->channel_mask = mask;
    h->nsamples = nsamples;
    h->first_sample = 0;
    h->time_quality = GSTP_TQ_GPS_LOCKED;
    h->sample_fmt = fmt;
    h->nchannels = (uint8_t)bits;
    h->chunk_index = 0;
    h->chunk_count = 1;
    h->codec = 0;
}

static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Recomputes header check and CRC of a frame in place after a test mutated it. */
static void reseal(uint8_t *fr, size_t plen)
{
    uint32_t crc;
    le16(fr + 8, (uint16_t)(gstp_crc32c(0, fr, 8) & 0xFFFF));
    crc = gstp_crc32c(0, fr, GSTP_HEADER_LEN + plen);
    fr[GSTP_HEADER_LEN + plen] = (uint8_t)crc;
    fr[GSTP_HEADER_LEN + plen + 1] = (uint8_t)(crc >> 8);
    fr[GSTP_HEADER_LEN + plen + 2] = (uint8_t)(crc >> 16);
    fr[GSTP_HEADER_LEN + plen + 3] = (uint8_t)(crc >> 24);
}

/* ---- CRC, names, ids --------------------------------------------------------------------------
 */

static void test_crc32c_vectors(void **state)
{
    uint8_t b[32];
    int i;
    (void)state;

    memset(b, 0, sizeof b); /* RFC 3720 B.4 */
    assert_int_equal(gstp_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xFF, sizeof b);
    assert_int_equal(gstp_crc32c(0, b, 32), 0x62A8AB43u);
    for (i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(gstp_crc32c(0, b, 32), 0x46DD794Eu);
    for (i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    assert_int_equal(gstp_crc32c(0, b, 32), 0x113FDB5Cu);
    assert_int_equal(gstp_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental use gives the same result as one call. */
    assert_int_equal(gstp_crc32c(gstp_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(gstp_crc32c(0, "", 0), 0);
}

/* Bit by bit from the definition (reflected polynomial 0x82F63B78): the reference for every
 * length and alignment, whichever path gstp_crc32c takes (table, or the CPU's instruction). */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void test_crc32c_lengths_alignments(void **state)
{
    (void)state;
    static uint8_t buf[1100];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n <= 80; n++)
            assert_int_equal(gstp_crc32c(0, buf + off, n), crc_bitwise(0, buf + off, n));
        assert_int_equal(gstp_crc32c(0, buf + off, 1000), crc_bitwise(0, buf + off, 1000));
        assert_int_equal(gstp_crc32c(0x12345678u, buf + off, 77),
                         crc_bitwise(0x12345678u, buf + off, 77));
    }
}

static void test_names_and_ids(void **state)
{
    (void)state;
    assert_string_equal(gstp_type_name(GSTP_HELLO), "HELLO");
    assert_string_equal(gstp_type_name(GSTP_EVENT), "EVENT");
    assert_string_equal(gstp_type_name(GSTP_ERROR), "ERROR");
    assert_string_equal(gstp_type_name(0x7E), "UNKNOWN");
    assert_string_equal(gstp_reason_name(GSTP_REJ_BAD_AUTH), "BAD_AUTH");
    assert_string_equal(gstp_reason_name(GSTP_REJ_BAD_CONFIG), "BAD_CONFIG");
    assert_string_equal(gstp_reason_name(999), "UNKNOWN");

    assert_true(gstp_valid_id("a"));
    assert_true(gstp_valid_id("SUB-01.feeder_3"));
    assert_true(gstp_valid_id("01234567890123456789012345678901"));   /* 32 */
    assert_false(gstp_valid_id("012345678901234567890123456789012")); /* 33 */
    assert_false(gstp_valid_id(""));
    assert_false(gstp_valid_id(NULL));
    assert_false(gstp_valid_id("a b"));
    assert_false(gstp_valid_id("a/b"));
    assert_false(gstp_valid_id("\xC3\xA9"));
}

/* ---- Round trips ------------------------------------------------------------------------------
 */

static void test_roundtrip_hello(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME];
    gstp_hello_t h, p;
    gstp_frame_t f;
    int n;
    (void)state;

    fill_hello(&h, 16);
    n = gstp_encode_hello(out, sizeof out, &h);
    assert_true(n > 0);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_HELLO);
    assert_int_equal(f.version, GSTP_VERSION);
    assert_int_equal(gstp_parse_hello(&f, &p), GSTP_OK);
    assert_hello_equal(&h, &p);

    /* Minimal HELLO: optional fields absent come back as zero / empty. */
    fill_hello(&h, 1);
    h.fw_version[0] = h.hw_version[0] = h.imei[0] = h.iccid[0] = '\0';
    h.vt_ratio = h.ct_ratio = 0.0f;
    h.buffer_blocks = 0;
    h.time_source = 0;
    h.time_quality = 0;
    strcpy(h.channels[0].name, "");
    strcpy(h.terminal_id, "0123456789abcdef0123456789ABCDEF");
    n = gstp_encode_hello(out, sizeof out, &h);
    assert_true(n > 0);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_hello(&f, &p), GSTP_OK);
    assert_hello_equal(&h, &p);
}

static void test_roundtrip_session(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME];
    gstp_challenge_t c, c2;
    gstp_auth_t a, a2;
    gstp_welcome_t w, w2;
    gstp_reject_t r, r2;
    gstp_frame_t f;
    int n, i;
    (void)state;

    c.version = 1;
    for (i = 0; i < 32; i++)
        c.nonce[i] = (uint8_t)(i * 7 + 1);
    n = gstp_encode_challenge(out, sizeof out, &c);
    assert_int_equal(n, 14 + 36);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_challenge(&f, &c2), GSTP_OK);
    assert_int_equal(c2.version, 1);
    assert_memory_equal(c.nonce, c2.nonce, 32);

    for (i = 0; i < 32; i++)
        a.mac[i] = (uint8_t)(0xFF - i);
    n = gstp_encode_auth(out, sizeof out, &a);
    assert_int_equal(n, 14 + 32);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_auth(&f, &a2), GSTP_OK);
    assert_memory_equal(a.mac, a2.mac, 32);

    w.server_time_ns = -5; /* negative i64 survives */
    w.heartbeat_s = 30;
    w.ack_window = 64;
    w.resume_seq = 0x0123456789ABCDEFull;
    w.session_id = 0xDEADBEEFu;
    w.codecs = 0; /* raw only: no extension, the 1.0 layout */
    n = gstp_encode_welcome(out, sizeof out, &w);
    assert_int_equal(n, 14 + 24);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_welcome(&f, &w2), GSTP_OK);
    assert_true(w2.server_time_ns == -5);
    assert_int_equal(w2.heartbeat_s, 30);
    assert_int_equal(w2.ack_window, 64);
    assert_true(w2.resume_seq == 0x0123456789ABCDEFull);
    assert_int_equal(w2.session_id, 0xDEADBEEFu);
    assert_int_equal(w2.codecs, 1u); /* no CODECS element: raw only */

    r.reason = GSTP_REJ_RATE_LIMIT;
    r.retry_after_s = 300;
    strcpy(r.message, "too many failed logins");
    n = gstp_encode_reject(out, sizeof out, &r);
    assert_int_equal(n, 14 + 4 + (int)strlen(r.message));
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_REJECT);
    assert_int_equal(gstp_parse_reject(&f, &r2), GSTP_OK);
    assert_int_equal(r2.reason, GSTP_REJ_RATE_LIMIT);
    assert_int_equal(r2.retry_after_s, 300);
    assert_string_equal(r2.message, r.message);

    r.reason = GSTP_REJ_REPLACED;
    r.retry_after_s = 0;
    memset(r.message, 'x', GSTP_MAX_STR); /* longest allowed message */
    r.message[GSTP_MAX_STR] = '\0';
    n = gstp_encode_bye(out, sizeof out, &r);
    assert_true(n > 0);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_BYE);
    assert_int_equal(gstp_parse_reject(&f, &r2), GSTP_OK);
    assert_int_equal(r2.reason, GSTP_REJ_REPLACED);
    assert_string_equal(r2.message, r.message);
    r.message[0] = '\0';
    n = gstp_encode_bye(out, sizeof out, &r);
    assert_int_equal(n, 14 + 4);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_reject(&f, &r2), GSTP_OK);
    assert_string_equal(r2.message, "");
}

static void test_roundtrip_control(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME];
    gstp_status_t s, s2;
    gstp_ack_t k = {UINT64_MAX}, k2;
    gstp_ping_t p = {0xCAFEF00Du, 1700000000000000000LL}, p2;
    gstp_error_t e, e2;
    gstp_frame_t f;
    int n;
    (void)state;

    memset(&s, 0, sizeof s);
    s.time_ns = 1700000000987654321LL;
    s.rsrp_dbm = -97;
    s.rssi_dbm = GSTP_NA_I16;
    s.csq = 99;
    s.gps_fix = 3;
    s.gps_sats = 11;
    s.time_quality = GSTP_TQ_NETWORK_SYNCED;
    s.supply_mv = GSTP_NA_U16;
    s.temp_c10 = -125;
    s.buffer_permille = 1000;
    s.uptime_s = 86400 * 30;
    s.buffered_blocks = 12345;
    n = gstp_encode_status(out, sizeof out, &s);
    assert_int_equal(n, 14 + GSTP_STATUS_LEN);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_status(&f, &s2), GSTP_OK);
    assert_true(s2.time_ns == s.time_ns);
    assert_int_equal(s2.rsrp_dbm, -97);
    assert_int_equal(s2.rssi_dbm, INT16_MIN);
    assert_int_equal(s2.csq, 99);
    assert_int_equal(s2.gps_fix, 3);
    assert_int_equal(s2.gps_sats, 11);
    assert_int_equal(s2.time_quality, GSTP_TQ_NETWORK_SYNCED);
    assert_int_equal(s2.supply_mv, 0xFFFF);
    assert_int_equal(s2.temp_c10, -125);
    assert_int_equal(s2.buffer_permille, 1000);
    assert_int_equal(s2.uptime_s, 86400 * 30);
    assert_int_equal(s2.buffered_blocks, 12345);
    /* Offsets from docs/protocol.md. */
    assert_int_equal(out[10 + 8], (uint8_t)(-97 & 0xFF));
    assert_int_equal(out[10 + 12], 99);
    assert_int_equal(out[10 + 20], 1000 & 0xFF);
    assert_int_equal(out[10 + 21], 1000 >> 8);

    n = gstp_encode_ack(out, sizeof out, &k);
    assert_int_equal(n, 14 + 8);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_ack(&f, &k2), GSTP_OK);
    assert_true(k2.seq == UINT64_MAX);

    n = gstp_encode_ping(out, sizeof out, &p);
    assert_int_equal(n, 14 + 12);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_PING);
    assert_int_equal(gstp_parse_ping(&f, &p2), GSTP_OK);
    assert_int_equal(p2.token, p.token);
    assert_true(p2.sender_time_ns == p.sender_time_ns);
    n = gstp_encode_pong(out, sizeof out, &p);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_PONG);
    assert_int_equal(gstp_parse_ping(&f, &p2), GSTP_OK);
    assert_int_equal(p2.token, p.token);

    e.code = GSTP_ERR_UNKNOWN_TYPE;
    e.frame_type = 0x7E;
    strcpy(e.message, "type 0x7e");
    n = gstp_encode_error(out, sizeof out, &e);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_error(&f, &e2), GSTP_OK);
    assert_int_equal(e2.code, GSTP_ERR_UNKNOWN_TYPE);
    assert_int_equal(e2.frame_type, 0x7E);
    assert_string_equal(e2.message, "type 0x7e");
}

static void test_roundtrip_commands(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME], args[GSTP_MAX_TLV];
    gstp_tlv_writer_t w;
    gstp_command_t c, c2;
    gstp_result_t r, r2;
    gstp_frame_t f;
    gstp_tlv_t t;
    uint16_t u16;
    int64_t i64;
    char str[32];
    int n;
    (void)state;

    gstp_tlv_writer_init(&w, args, sizeof args);
    gstp_tlv_put_u16(&w, GSTP_AT_CYCLES, 10);
    gstp_tlv_put_u16(&w, GSTP_AT_PRETRIGGER, 2);
    gstp_tlv_put_i64(&w, GSTP_AT_SERVER_TIME, -123456789LL);
    gstp_tlv_put_str(&w, GSTP_AT_MESSAGE, "manual");
    assert_int_equal(w.err, GSTP_OK);
    c.id = 77;
    c.verb = GSTP_VERB_CAPTURE;
    c.tlv = args;
    c.tlv_len = (uint16_t)w.len;
    n = gstp_encode_command(out, sizeof out, &c);
    assert_int_equal(n, 14 + 12 + (int)w.len);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_command(&f, &c2), GSTP_OK);
    assert_true(c2.id == 77);
    assert_int_equal(c2.verb, GSTP_VERB_CAPTURE);
    assert_int_equal(c2.tlv_len, w.len);
    assert_memory_equal(c2.tlv, args, w.len);
    assert_int_equal(gstp_tlv_find(c2.tlv, c2.tlv_len, GSTP_AT_PRETRIGGER, &t), 1);
    assert_int_equal(gstp_tlv_u16(&t, &u16), GSTP_OK);
    assert_int_equal(u16, 2);
    assert_int_equal(gstp_tlv_find(c2.tlv, c2.tlv_len, GSTP_AT_SERVER_TIME, &t), 1);
    assert_int_equal(gstp_tlv_i64(&t, &i64), GSTP_OK);
    assert_true(i64 == -123456789LL);
    assert_int_equal(gstp_tlv_find(c2.tlv, c2.tlv_len, GSTP_AT_MESSAGE, &t), 1);
    assert_int_equal(gstp_tlv_str(&t, str, sizeof str), GSTP_OK);
    assert_string_equal(str, "manual");
    assert_int_equal(gstp_tlv_find(c2.tlv, c2.tlv_len, GSTP_AT_BLOCK_SEQ, &t), 0);

    /* Command without arguments. */
    c.tlv = NULL;
    c.tlv_len = 0;
    c.verb = GSTP_VERB_GET_STATUS;
    n = gstp_encode_command(out, sizeof out, &c);
    assert_int_equal(n, 14 + 12);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_command(&f, &c2), GSTP_OK);
    assert_int_equal(c2.tlv_len, 0);

    gstp_tlv_writer_init(&w, args, sizeof args);
    gstp_tlv_put_u64(&w, GSTP_AT_BLOCK_SEQ, 123456789012ull);
    gstp_tlv_put_i64(&w, GSTP_AT_TERM_RX_TIME, 1);
    gstp_tlv_put_i64(&w, GSTP_AT_TERM_TX_TIME, 2);
    r.id = 77;
    r.status = GSTP_RS_OK;
    r.tlv = args;
    r.tlv_len = (uint16_t)w.len;
    n = gstp_encode_result(out, sizeof out, &r);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_RESULT);
    assert_int_equal(gstp_parse_result(&f, &r2), GSTP_OK);
    assert_true(r2.id == 77);
    assert_int_equal(r2.status, GSTP_RS_OK);
    assert_memory_equal(r2.tlv, args, w.len);

    /* TLV of exactly GSTP_MAX_TLV bytes is fine, one more is a range error. */
    memset(args, 0, sizeof args);
    le16(args + 1, GSTP_MAX_TLV - 3);
    r.tlv_len = GSTP_MAX_TLV;
    n = gstp_encode_result(out, sizeof out, &r);
    assert_int_equal(n, 14 + 12 + GSTP_MAX_TLV);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_result(&f, &r2), GSTP_OK);
    r.tlv_len = GSTP_MAX_TLV + 1;
    assert_int_equal(gstp_encode_result(out, sizeof out, &r), GSTP_E_RANGE);
}

/* Protocol decision 5: a RESULT whose MESSAGE breaks the string rules (over 64 bytes, a NUL,
 * given twice) is malformed; the encoder refuses to build one. */
static void test_result_message_rules(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME], args[200], pl[12 + 3 + 100];
    char msg[100];
    gstp_tlv_writer_t w;
    gstp_result_t r, r2;
    gstp_frame_t f;
    int n;
    (void)state;

    memset(msg, 'x', sizeof msg);
    memset(&r, 0, sizeof r);
    r.id = 9;
    r.status = GSTP_RS_FAILED;
    r.tlv = args;
    /* 64 bytes: fine both ways */
    gstp_tlv_writer_init(&w, args, sizeof args);
    gstp_tlv_put(&w, GSTP_AT_MESSAGE, msg, GSTP_MAX_STR);
    r.tlv_len = (uint16_t)w.len;
    n = gstp_encode_result(out, sizeof out, &r);
    assert_true(n > 0);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_result(&f, &r2), GSTP_OK);
    /* 65 bytes: the encoder refuses; built by hand, the parser refuses */
    gstp_tlv_writer_init(&w, args, sizeof args);
    gstp_tlv_put(&w, GSTP_AT_MESSAGE, msg, GSTP_MAX_STR + 1);
    r.tlv_len = (uint16_t)w.len;
    assert_int_equal(gstp_encode_result(out, sizeof out, &r), GSTP_E_RANGE);
    memset(pl, 0, sizeof pl);
    pl[0] = 9;
    pl[12] = GSTP_AT_MESSAGE;
    le16(pl + 13, GSTP_MAX_STR + 1);
    memset(pl + 15, 'y', GSTP_MAX_STR + 1);
    f = frame_of(GSTP_RESULT, pl, 15 + GSTP_MAX_STR + 1);
    assert_int_equal(gstp_parse_result(&f, &r2), GSTP_E_RANGE);
    /* a NUL inside */
    le16(pl + 13, 5);
    memcpy(pl + 15, "ab\0cd", 5);
    f = frame_of(GSTP_RESULT, pl, 15 + 5);
    assert_int_equal(gstp_parse_result(&f, &r2), GSTP_E_RANGE);
    /* twice */
    gstp_tlv_writer_init(&w, args, sizeof args);
    gstp_tlv_put(&w, GSTP_AT_MESSAGE, "a", 1);
    gstp_tlv_put(&w, GSTP_AT_MESSAGE, "b", 1);
    r.tlv_len = (uint16_t)w.len;
    assert_int_equal(gstp_encode_result(out, sizeof out, &r), GSTP_E_RANGE);
    memcpy(pl + 12, args, w.len);
    f = frame_of(GSTP_RESULT, pl, 12 + w.len);
    assert_int_equal(gstp_parse_result(&f, &r2), GSTP_E_RANGE);
}

static void test_roundtrip_waveform(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME];
    uint8_t samples[8 * 4 * 2];
    gstp_block_hdr_t h;
    gstp_block_t b;
    gstp_frame_t f;
    int n, i;
    (void)state;

    for (i = 0; i < (int)sizeof samples; i++)
        samples[i] = (uint8_t)(i * 3);
    fill_block_hdr(&h, 0x0F, GSTP_FMT_INT16, 8); /* 4 channels */
    n = gstp_encode_block(out, sizeof out, &h, NULL, samples, 8);
    assert_int_equal(n, 14 + 40 + 8 * 4 * 2);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, GSTP_WAVEFORM);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_true(b.hdr.seq == 42);
    assert_true(b.hdr.t0_ns == h.t0_ns);
    assert_int_equal(b.hdr.sample_rate, 12800);
    assert_int_equal(b.hdr.channel_mask, 0x0F);
    assert_int_equal(b.hdr.nsamples, 8);
    assert_int_equal(b.hdr.first_sample, 0);
    assert_int_equal(b.hdr.time_quality, GSTP_TQ_GPS_LOCKED);
    assert_int_equal(b.hdr.sample_fmt, GSTP_FMT_INT16);
    assert_int_equal(b.hdr.nchannels, 4);
    assert_int_equal(b.hdr.chunk_index, 0);
    assert_int_equal(b.hdr.chunk_count, 1);
    assert_int_equal(b.hdr.n_in_chunk, 8);
    assert_int_equal(b.event.trigger, 0);
    assert_int_equal(b.samples_len, sizeof samples);
    assert_memory_equal(b.samples, samples, sizeof samples);

    /* int32 samples, sparse mask. */
    fill_block_hdr(&h, 0x8001, GSTP_FMT_INT32, 8);
    n = gstp_encode_block(out, sizeof out, &h, NULL, samples, 8);
    assert_int_equal(n, 14 + 40 + 8 * 2 * 4);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(b.hdr.nchannels, 2);
    assert_memory_equal(b.samples, samples, 64);
}

/* A 1 s EVENT block of 7 channels at 12.8 kHz would not fit; use 7 channels x 1000 sample sets
 * int16, split into chunks of at most 1 KB payload, sent consecutively with a PING in between
 * blocks, decoded from one stream and reassembled. */
static void test_roundtrip_event_multichunk(void **state)
{
    enum { NS = 1000, NCH = 7 };
    static int16_t block[NS * NCH], back[NS * NCH];
    gstp_block_hdr_t h;
    gstp_event_hdr_t ev = {1700000000500000000LL, GSTP_TRIG_DIP, 256, 612, 1};
    uint8_t rx[GSTP_MAX_FRAME * 2];
    stream_t *s = calloc(1, sizeof *s);
    collect_t *c = collect_new();
    gstp_decoder_t d;
    uint16_t cap, first;
    uint8_t nchunks, k;
    size_t i, got = 0;
    (void)state;

    for (i = 0; i < NS * NCH; i++)
        block[i] = (int16_t)((int)(i * 37 % 65536) - 32768);
    cap = gstp_block_chunk_capacity(NCH, GSTP_FMT_INT16, 1, 1024);
    assert_int_equal(cap, (1024 - 40 - 16) / (NCH * 2));
    nchunks = (uint8_t)((NS + cap - 1) / cap);
    assert_true(nchunks > 1);
    fill_block_hdr(&h, 0x7F, GSTP_FMT_INT16, NS);
    h.chunk_count = nchunks;
    put_ping(s, 1);
    for (k = 0, first = 0; k < nchunks; k++) {
        uint16_t nin = (uint16_t)(NS - first < cap ? NS - first : cap);
        uint8_t wire[NS * NCH * 2]; /* little-endian copy */
        int n;
        for (i = 0; i < (size_t)nin * NCH; i++) {
            uint16_t v = (uint16_t)block[(size_t)first * NCH + i];
            wire[2 * i] = (uint8_t)v;
            wire[2 * i + 1] = (uint8_t)(v >> 8);
        }
        h.chunk_index = k;
        h.first_sample = first;
        n = gstp_encode_block(s->b + s->n, sizeof s->b - s->n, &h, &ev, wire, nin);
        assert_true(n > 0 && n <= 14 + 1024);
        put_frame(s, n);
        first = (uint16_t)(first + nin);
    }
    put_ping(s, 2);

    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    feed_stream(&d, c, s->b, s->n, 700); /* cuts frames like a Quectel re-segmenter would */
    check_accounting(&d, c);
    assert_int_equal(c->n, (size_t)nchunks + 2);
    assert_int_equal(c->f[0].type, GSTP_PING);
    assert_int_equal(c->f[c->n - 1].type, GSTP_PING);
    for (k = 0; k < nchunks; k++) {
        gstp_frame_t f = frame_of(c->f[1 + k].type, c->f[1 + k].payload, c->f[1 + k].len);
        gstp_block_t b;
        assert_int_equal(f.type, GSTP_EVENT);
        assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
        assert_int_equal(b.hdr.chunk_index, k);
        assert_int_equal(b.hdr.chunk_count, nchunks);
        assert_int_equal(b.hdr.first_sample, got);
        assert_true(b.event.trigger_ns == ev.trigger_ns);
        assert_int_equal(b.event.trigger, GSTP_TRIG_DIP);
        assert_int_equal(b.event.pretrigger, 256);
        assert_int_equal(b.event.value_permille, 612);
        assert_int_equal(b.event.channel, 1);
        assert_int_equal(b.samples_len, (size_t)b.hdr.n_in_chunk * NCH * 2);
        for (i = 0; i < (size_t)b.hdr.n_in_chunk * NCH; i++)
            back[got * NCH + i] =
                (int16_t)(uint16_t)(b.samples[2 * i] | (uint16_t)b.samples[2 * i + 1] << 8);
        got += b.hdr.n_in_chunk;
    }
    assert_int_equal(got, NS);
    assert_memory_equal(block, back, sizeof block);
    free(s);
    free(c);
}

static void test_unknown_type_and_flags(void **state)
{
    uint8_t out[64], rx[GSTP_MAX_FRAME];
    gstp_frame_t f;
    gstp_ack_t a = {9};
    gstp_block_t b;
    int n;
    (void)state;

    n = gstp_frame_write(out, sizeof out, 0x7E, 0x80, (const uint8_t *)"abc", 3);
    assert_int_equal(n, 17);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.type, 0x7E);
    assert_int_equal(f.flags, 0x80);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.payload, "abc", 3);

    /* Setting RESENT on an already encoded frame keeps it valid. */
    n = gstp_encode_ack(out, sizeof out, &a);
    assert_int_equal(gstp_frame_set_flags(out, (size_t)n, GSTP_FLAG_RESENT), GSTP_OK);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.flags, GSTP_FLAG_RESENT);
    assert_int_equal(gstp_frame_set_flags(out, (size_t)n - 1, 0), GSTP_E_ARG);
    out[12] ^= 1;
    assert_int_equal(gstp_frame_set_flags(out, (size_t)n, 0), GSTP_E_ARG);

    /* Zero-length payload frames. */
    n = gstp_frame_write(out, sizeof out, GSTP_WAVEFORM, 0, NULL, 0);
    assert_int_equal(n, 14);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(f.len, 0);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_E_TRUNC);

    /* Payload may alias the output buffer (encoders build in place). */
    memcpy(out + GSTP_HEADER_LEN, "xyz", 3);
    n = gstp_frame_write(out, sizeof out, 0x40, 0, out + GSTP_HEADER_LEN, 3);
    f = decode_one(rx, sizeof rx, out, n);
    assert_memory_equal(f.payload, "xyz", 3);
}

/* ---- Malformed headers ------------------------------------------------------------------------
 */

enum {
    BAD_MAGIC0,
    BAD_MAGIC1,
    BAD_VERSION0,
    BAD_VERSION128,
    BAD_RESERVED,
    BAD_LEN,
    BAD_CHECK,
    BAD_CRC,
    BAD_COUNT
};

static void test_malformed_headers(void **state)
{
    int kind;
    (void)state;

    for (kind = 0; kind < BAD_COUNT; kind++) {
        stream_t *s = calloc(1, sizeof *s);
        collect_t *c = collect_new();
        uint8_t rx[GSTP_MAX_FRAME * 2];
        gstp_decoder_t d;
        gstp_ping_t p;
        int bad_len;

        bad_len = put_ping(s, 0x11111111u);
        switch (kind) {
        case BAD_MAGIC0:
            s->b[0] = 0xC4;
            break;
        case BAD_MAGIC1:
            s->b[1] = 'H';
            break;
        case BAD_VERSION0:
            s->b[2] = 0;
            reseal(s->b, 12);
            break;
        case BAD_VERSION128:
            s->b[2] = 128;
            reseal(s->b, 12);
            break;
        case BAD_RESERVED:
            s->b[5] = 1;
            reseal(s->b, 12);
            break;
        case BAD_LEN:
            le16(s->b + 6, GSTP_MAX_PAYLOAD + 1);
            le16(s->b + 8, (uint16_t)(gstp_crc32c(0, s->b, 8) & 0xFFFF));
            break;
        case BAD_CHECK:
            s->b[8] ^= 0x01;
            break;
        case BAD_CRC:
            s->b[GSTP_HEADER_LEN + 3] ^= 0x40; /* one payload bit */
            break;
        }
        put_ping(s, 0x22222222u);

        assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
        feed_stream(&d, c, s->b, s->n, 0);
        check_accounting(&d, c);
        assert_int_equal(c->n, 1);
        assert_int_equal(c->f[0].type, GSTP_PING);
        {
            gstp_frame_t f = frame_of(GSTP_PING, c->f[0].payload, c->f[0].len);
            assert_int_equal(gstp_parse_ping(&f, &p), GSTP_OK);
            assert_int_equal(p.token, 0x22222222u);
        }
        assert_int_equal(d.stats.skipped_bytes, (size_t)bad_len);
        assert_int_equal(gstp_decoder_pending(&d), 0);
        assert_int_equal(d.stats.crc_errors, kind == BAD_CRC ? 1 : 0);
        assert_int_equal(d.stats.header_errors,
                         kind == BAD_MAGIC0 || kind == BAD_MAGIC1 || kind == BAD_CRC ? 0 : 1);
        free(s);
        free(c);
    }
}

/* A corrupted length field that still passes the check cannot happen by accident (16-bit check),
 * but a valid-looking header with a larger len swallows the next frame: the CRC then fails and
 * the decoder must find the swallowed frame again. */
static void test_frame_inside_bad_frame(void **state)
{
    stream_t *s = calloc(1, sizeof *s);
    collect_t *c = collect_new();
    uint8_t rx[GSTP_MAX_FRAME * 2];
    gstp_decoder_t d;
    (void)state;

    put_ping(s, 1);
    le16(s->b + 6, 12 + 26 + 10); /* claims to contain the next PING and more */
    le16(s->b + 8, (uint16_t)(gstp_crc32c(0, s->b, 8) & 0xFFFF));
    put_ping(s, 2);
    put_ping(s, 3);
    put_ping(s, 4);
    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    feed_stream(&d, c, s->b, s->n, 1);
    check_accounting(&d, c);
    assert_int_equal(c->n, 3);
    assert_int_equal(d.stats.crc_errors, 1);
    assert_int_equal(d.stats.skipped_bytes, 26);
    free(s);
    free(c);
}

/* ---- Resynchronisation over modem / DTU text --------------------------------------------------
 */

static void test_resync_garbage(void **state)
{
    stream_t *s = calloc(1, sizeof *s);
    collect_t *c = collect_new();
    uint8_t rx[GSTP_MAX_FRAME * 2];
    gstp_decoder_t d;
    uint32_t seed = 12345;
    size_t garbage = 0;
    int i, j;
    (void)state;

    for (i = 0; i < 20; i++) {
        int n = (int)(lcg(&seed) % 300);
        for (j = 0; j < n; j++) {
            uint8_t g = (uint8_t)lcg(&seed);
            if (j % 17 == 0)
                g = GSTP_MAGIC0; /* plenty of false starts */
            if (j % 17 == 1)
                g = GSTP_MAGIC1;
            put(s, &g, 1);
        }
        garbage += (size_t)n;
        put_ping(s, (uint32_t)i);
    }
    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    feed_stream(&d, c, s->b, s->n, 0);
    check_accounting(&d, c);
    assert_int_equal(c->n, 20);
    for (i = 0; i < 20; i++) {
        gstp_frame_t f = frame_of(c->f[i].type, c->f[i].payload, c->f[i].len);
        gstp_ping_t p;
        assert_int_equal(gstp_parse_ping(&f, &p), GSTP_OK);
        assert_int_equal(p.token, (uint32_t)i);
    }
    assert_int_equal(d.stats.skipped_bytes, garbage);
    free(s);
    free(c);
}

static const char *const dtu_text[] = {
    "866123456789012",                              /* IMEI registration packet */
    "89860412345678901234",                         /* ICCID registration packet */
    "REG:DTU-0042;IMEI=866123456789012;CSQ=23\r\n", /* custom registration string */
    "HEARTBEAT",                                    /* DTU idle heartbeat */
    "www.usr.cn",                                   /* vendor default heartbeat */
    "+QIURC: \"recv\",0\r\n",                       /* Quectel URC in buffer mode */
    "\r\n+QIURC: \"closed\",0\r\n",
    "\xC5",      /* a lone magic byte */
    "\xC5G\x01", /* magic and a plausible version */
};

static void test_resync_dtu_strings(void **state)
{
    const size_t ntext = sizeof dtu_text / sizeof dtu_text[0];
    size_t step, i;
    (void)state;

    /* Text before, between and after frames; fed whole, byte-at-a-time and in odd pieces. */
    for (step = 0; step < 4; step++) {
        static const size_t steps[4] = {0, 1, 7, 1024};
        stream_t *s = calloc(1, sizeof *s);
        collect_t *c = collect_new();
        uint8_t rx[GSTP_MAX_FRAME];
        gstp_decoder_t d;
        size_t text = 0;

        for (i = 0; i < ntext; i++) {
            put_str(s, dtu_text[i]);
            text += strlen(dtu_text[i]);
            put_ping(s, (uint32_t)i);
        }
        put_str(s, "REG:DTU-0042"); /* prefixed to every packet by some DTUs */
        text += strlen("REG:DTU-0042");
        put_ping(s, 100);
        assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
        feed_stream(&d, c, s->b, s->n, steps[step]);
        check_accounting(&d, c);
        assert_int_equal(c->n, ntext + 1);
        assert_int_equal(d.stats.skipped_bytes, text);
        assert_int_equal(d.stats.crc_errors, 0);
        for (i = 0; i < c->n; i++) {
            gstp_frame_t f = frame_of(c->f[i].type, c->f[i].payload, c->f[i].len);
            gstp_ping_t p;
            assert_int_equal(gstp_parse_ping(&f, &p), GSTP_OK);
            assert_int_equal(p.token, i < ntext ? (uint32_t)i : 100u);
        }
        free(s);
        free(c);
    }
}

/* A URC line inserted inside a frame (the module interleaves it with received data): that frame
 * is lost with a CRC error (payload hit) or a header error (header hit); the next one decodes. */
static void test_resync_urc_inside_frame(void **state)
{
    static const char urc[] = "+QIURC: \"recv\",0\r\n";
    size_t cut;
    (void)state;

    for (cut = 1; cut < 26; cut++) {
        stream_t *s = calloc(1, sizeof *s);
        collect_t *c = collect_new();
        uint8_t rx[GSTP_MAX_FRAME * 2], tmp[64];
        gstp_decoder_t d;
        gstp_ping_t p = {2, 2000};
        int n;

        put_ping(s, 1);
        n = gstp_encode_ping(tmp, sizeof tmp, &p);
        put(s, tmp, cut);
        put_str(s, urc);
        put(s, tmp + cut, (size_t)n - cut);
        put_ping(s, 3);
        assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
        feed_stream(&d, c, s->b, s->n, 0);
        check_accounting(&d, c);
        assert_int_equal(c->n, 2);
        assert_int_equal(c->f[0].payload[0], 1);
        assert_int_equal(c->f[1].payload[0], 3);
        assert_int_equal(d.stats.skipped_bytes, (size_t)n + strlen(urc));
        if (cut < 2)
            assert_int_equal(d.stats.header_errors + d.stats.crc_errors, 0); /* "\xC5+" */
        else if (cut < GSTP_HEADER_LEN)
            assert_int_equal(d.stats.header_errors, 1);
        else
            assert_int_equal(d.stats.crc_errors, 1);
        free(s);
        free(c);
    }
}

/* The same stream cut at every possible position in two, or fed byte by byte, yields the same
 * frames and statistics as one feed. */
static void test_split_invariance(void **state)
{
    stream_t *s = calloc(1, sizeof *s);
    collect_t *ref = collect_new();
    uint8_t rx[GSTP_MAX_FRAME * 2];
    gstp_decoder_t d;
    gstp_decoder_stats_t st;
    gstp_status_t status;
    size_t cut, i;
    (void)state;

    memset(&status, 0, sizeof status);
    put_str(s, "866123456789012");
    put_ping(s, 7);
    put_frame(s, gstp_encode_status(s->b + s->n, sizeof s->b - s->n, &status));
    put_str(s, "+QIURC: \"recv\",0\r\n\xC5");
    put_ping(s, 8);
    s->b[s->n - 3] ^= 1; /* corrupt the last PING's CRC */
    put_ping(s, 9);
    put_str(s, "\xC5G");
    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    feed_stream(&d, ref, s->b, s->n, 0);
    check_accounting(&d, ref);
    st = d.stats;
    assert_int_equal(ref->n, 3);
    assert_int_equal(st.crc_errors, 1);
    assert_int_equal(gstp_decoder_pending(&d), 2); /* trailing "\xC5G" might start a frame */

    for (cut = 0; cut <= s->n + 1; cut++) {
        collect_t *c = collect_new();
        assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
        if (cut <= s->n) {
            feed_stream(&d, c, s->b, cut, 0);
            feed_stream(&d, c, s->b + cut, s->n - cut, 0);
        } else {
            feed_stream(&d, c, s->b, s->n, 1);
        }
        check_accounting(&d, c);
        assert_int_equal(c->n, ref->n);
        for (i = 0; i < c->n; i++) {
            assert_int_equal(c->f[i].type, ref->f[i].type);
            assert_int_equal(c->f[i].len, ref->f[i].len);
            assert_memory_equal(c->f[i].payload, ref->f[i].payload, c->f[i].len);
        }
        assert_memory_equal(&d.stats, &st, sizeof st);
        free(c);
    }
    free(s);
    free(ref);
}

/* ---- Limits and buffer behaviour --------------------------------------------------------------
 */

static void test_max_size_frames(void **state)
{
    static uint8_t payload[GSTP_MAX_PAYLOAD + 1], out[GSTP_MAX_FRAME + 16];
    static uint8_t samples[GSTP_MAX_PAYLOAD];
    uint8_t rx[GSTP_MAX_FRAME];
    gstp_block_hdr_t h;
    gstp_block_t b;
    gstp_frame_t f;
    uint16_t cap;
    int n;
    (void)state;

    memset(payload, 0xC5, sizeof payload); /* magic bytes everywhere inside */
    n = gstp_frame_write(out, sizeof out, 0x50, 0, payload, GSTP_MAX_PAYLOAD);
    assert_int_equal(n, GSTP_MAX_FRAME);
    f = decode_one(rx, sizeof rx, out, n); /* decoder with the minimum buffer */
    assert_int_equal(f.len, GSTP_MAX_PAYLOAD);
    assert_int_equal(gstp_frame_write(out, sizeof out, 0x50, 0, payload, GSTP_MAX_PAYLOAD + 1),
                     GSTP_E_RANGE);
    assert_int_equal(gstp_frame_write(out, GSTP_MAX_FRAME - 1, 0x50, 0, payload, GSTP_MAX_PAYLOAD),
                     GSTP_E_SPACE);

    /* A WAVEFORM chunk filling the payload exactly: 1 channel int16 gives 1004 sample sets. */
    cap = gstp_block_chunk_capacity(1, GSTP_FMT_INT16, 0, 100000);
    assert_int_equal(cap, (GSTP_MAX_PAYLOAD - 40) / 2);
    fill_block_hdr(&h, 0x1, GSTP_FMT_INT16, 8192);
    n = gstp_encode_block(out, sizeof out, &h, NULL, samples, cap);
    assert_int_equal(n, GSTP_MAX_FRAME);
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(b.hdr.n_in_chunk, cap);
    assert_int_equal(gstp_encode_block(out, sizeof out, &h, NULL, samples, (uint16_t)(cap + 1)),
                     GSTP_E_RANGE);
    assert_int_equal(gstp_encode_block(out, 100, &h, NULL, samples, cap), GSTP_E_SPACE);

    assert_int_equal(gstp_block_chunk_capacity(16, GSTP_FMT_INT32, 1, 2048), (2048 - 56) / 64);
    assert_int_equal(gstp_block_chunk_capacity(3, GSTP_FMT_INT16, 0, 40), 0);
    assert_int_equal(gstp_block_chunk_capacity(3, 9, 0, 1024), 0);
    assert_int_equal(gstp_block_chunk_capacity(0, GSTP_FMT_INT16, 0, 1024), 0);
    assert_int_equal(gstp_block_chunk_capacity(17, GSTP_FMT_INT16, 0, 1024), 0);
}

static void test_buffer_full_feed(void **state)
{
    static uint8_t payload[GSTP_MAX_PAYLOAD];
    stream_t *s = calloc(1, sizeof *s);
    collect_t *c = collect_new();
    uint8_t rx[GSTP_MAX_FRAME];
    gstp_decoder_t d;
    size_t used;
    int i;
    (void)state;

    assert_int_equal(gstp_decoder_init(&d, rx, GSTP_MAX_FRAME - 1), GSTP_E_ARG);
    assert_int_equal(gstp_decoder_init(&d, NULL, GSTP_MAX_FRAME), GSTP_E_ARG);

    /* Several maximum frames in one big offer: feed takes what fits, the rest follows. */
    for (i = 0; i < 5; i++) {
        memset(payload, i, sizeof payload);
        put_frame(s, gstp_frame_write(s->b + s->n, sizeof s->b - s->n, 0x50, 0, payload,
                                      GSTP_MAX_PAYLOAD - (size_t)i));
        put_str(s, "+QIURC: \"recv\",0\r\n");
    }
    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    used = gstp_decoder_feed(&d, s->b, s->n);
    assert_int_equal(used, sizeof rx);
    assert_int_equal(gstp_decoder_feed(&d, s->b + used, 1), 0); /* full until drained */
    c->fed = used;
    drain(&d, c);
    feed_stream(&d, c, s->b + used, s->n - used, 0);
    check_accounting(&d, c);
    assert_int_equal(c->n, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(c->f[i].len, GSTP_MAX_PAYLOAD - (size_t)i);
        assert_int_equal(c->f[i].payload[0], i);
    }
    free(c);

    /* Endless garbage without magic never accumulates; a trailing 0xC5 is kept. */
    c = collect_new();
    memset(s->b, 'A', sizeof s->b);
    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    for (i = 0; i < 100; i++) {
        feed_stream(&d, c, s->b, sizeof s->b, 0);
        assert_int_equal(gstp_decoder_pending(&d), 0);
    }
    s->b[0] = GSTP_MAGIC0;
    feed_stream(&d, c, s->b, 1, 0);
    assert_int_equal(gstp_decoder_pending(&d), 1);
    s->b[0] = 'A';
    feed_stream(&d, c, s->b, 1, 0);
    assert_int_equal(gstp_decoder_pending(&d), 0);
    check_accounting(&d, c);

    /* A plausible header whose frame never completes is held (at most one frame's worth) and
     * given up when the CRC finally fails, without losing the frame that follows. */
    free(c);
    c = collect_new();
    s->n = 0;
    put_frame(s, gstp_frame_write(s->b, sizeof s->b, 0x50, 0, payload, 1000));
    s->n = 500; /* truncated: the link dropped mid-frame */
    put_ping(s, 5);
    memset(s->b + s->n, 'z', 600);
    s->n += 600;
    put_ping(s, 6);
    assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
    feed_stream(&d, c, s->b, s->n, 3);
    check_accounting(&d, c);
    assert_int_equal(d.stats.crc_errors, 1);
    assert_int_equal(c->n, 2); /* PING 5 was inside the bad frame's span and is found again */
    free(c);
    free(s);
}

/* ---- Parser errors ----------------------------------------------------------------------------
 */

/* Every parser on every frame type it does not handle returns GSTP_E_TYPE; every fixed layout
 * shortened by any number of bytes returns GSTP_E_TRUNC. */
static void test_truncated_and_wrong_type(void **state)
{
    uint8_t out[GSTP_MAX_FRAME];
    uint8_t samples[64] = {0};
    gstp_hello_t hello;
    gstp_challenge_t ch;
    gstp_auth_t au;
    gstp_welcome_t we;
    gstp_reject_t rj;
    gstp_status_t st;
    gstp_ack_t ak;
    gstp_command_t cm;
    gstp_result_t rs;
    gstp_ping_t pi;
    gstp_error_t er;
    gstp_block_t bl;
    gstp_block_hdr_t bh;
    gstp_event_hdr_t ev = {0, 1, 0, 0, 0};
    struct {
        uint8_t type;
        size_t fixed;
    } layouts[] = {
        {GSTP_HELLO, 4},    {GSTP_CHALLENGE, 36}, {GSTP_AUTH, 32},   {GSTP_WELCOME, 24},
        {GSTP_REJECT, 4},   {GSTP_BYE, 4},        {GSTP_STATUS, 32}, {GSTP_ACK, 8},
        {GSTP_COMMAND, 12}, {GSTP_RESULT, 12},    {GSTP_PING, 12},   {GSTP_PONG, 12},
        {GSTP_ERROR, 4},    {GSTP_WAVEFORM, 40},  {GSTP_EVENT, 56},
    };
    size_t i, k;
    int t;
    (void)state;

    memset(out, 0, sizeof out);
    for (i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        for (k = 0; k < layouts[i].fixed; k++) {
            gstp_frame_t f = frame_of(layouts[i].type, out, k);
            int rc;
            switch (layouts[i].type) {
            case GSTP_HELLO:
                rc = gstp_parse_hello(&f, &hello);
                break;
            case GSTP_CHALLENGE:
                rc = gstp_parse_challenge(&f, &ch);
                break;
            case GSTP_AUTH:
                rc = gstp_parse_auth(&f, &au);
                break;
            case GSTP_WELCOME:
                rc = gstp_parse_welcome(&f, &we);
                break;
            case GSTP_REJECT:
            case GSTP_BYE:
                rc = gstp_parse_reject(&f, &rj);
                break;
            case GSTP_STATUS:
                rc = gstp_parse_status(&f, &st);
                break;
            case GSTP_ACK:
                rc = gstp_parse_ack(&f, &ak);
                break;
            case GSTP_COMMAND:
                rc = gstp_parse_command(&f, &cm);
                break;
            case GSTP_RESULT:
                rc = gstp_parse_result(&f, &rs);
                break;
            case GSTP_PING:
            case GSTP_PONG:
                rc = gstp_parse_ping(&f, &pi);
                break;
            case GSTP_ERROR:
                rc = gstp_parse_error(&f, &er);
                break;
            default:
                rc = gstp_parse_block(&f, &bl);
                break;
            }
            assert_int_equal(rc, GSTP_E_TRUNC);
        }
    }

    /* Block with valid headers but missing (or extra) sample bytes. */
    fill_block_hdr(&bh, 0x3, GSTP_FMT_INT32, 4);
    for (t = 0; t < 2; t++) {
        int n = gstp_encode_block(out, sizeof out, &bh, t ? &ev : NULL, samples, 4);
        size_t plen = (size_t)n - 14;
        gstp_frame_t f = frame_of(t ? GSTP_EVENT : GSTP_WAVEFORM, out + 10, plen);
        assert_int_equal(gstp_parse_block(&f, &bl), GSTP_OK);
        f.len--;
        assert_int_equal(gstp_parse_block(&f, &bl), GSTP_E_TRUNC);
        f.len = (uint16_t)(plen + 1);
        assert_int_equal(gstp_parse_block(&f, &bl), GSTP_E_RANGE);
        f.len = (uint16_t)plen;
        f.type = t ? GSTP_WAVEFORM : GSTP_EVENT; /* the other layout does not fit */
        assert_int_not_equal(gstp_parse_block(&f, &bl), GSTP_OK);
    }

    /* Wrong types. */
    for (t = 0; t < 256; t++) {
        gstp_frame_t f = frame_of((uint8_t)t, out, sizeof out - 100);
        if (t != GSTP_HELLO)
            assert_int_equal(gstp_parse_hello(&f, &hello), GSTP_E_TYPE);
        if (t != GSTP_CHALLENGE)
            assert_int_equal(gstp_parse_challenge(&f, &ch), GSTP_E_TYPE);
        if (t != GSTP_AUTH)
            assert_int_equal(gstp_parse_auth(&f, &au), GSTP_E_TYPE);
        if (t != GSTP_WELCOME)
            assert_int_equal(gstp_parse_welcome(&f, &we), GSTP_E_TYPE);
        if (t != GSTP_REJECT && t != GSTP_BYE)
            assert_int_equal(gstp_parse_reject(&f, &rj), GSTP_E_TYPE);
        if (t != GSTP_STATUS)
            assert_int_equal(gstp_parse_status(&f, &st), GSTP_E_TYPE);
        if (t != GSTP_ACK)
            assert_int_equal(gstp_parse_ack(&f, &ak), GSTP_E_TYPE);
        if (t != GSTP_COMMAND)
            assert_int_equal(gstp_parse_command(&f, &cm), GSTP_E_TYPE);
        if (t != GSTP_RESULT)
            assert_int_equal(gstp_parse_result(&f, &rs), GSTP_E_TYPE);
        if (t != GSTP_PING && t != GSTP_PONG)
            assert_int_equal(gstp_parse_ping(&f, &pi), GSTP_E_TYPE);
        if (t != GSTP_ERROR)
            assert_int_equal(gstp_parse_error(&f, &er), GSTP_E_TYPE);
        if (t != GSTP_WAVEFORM && t != GSTP_EVENT)
            assert_int_equal(gstp_parse_block(&f, &bl), GSTP_E_TYPE);
    }
    /* NULL arguments. */
    assert_int_equal(gstp_parse_ack(NULL, &ak), GSTP_E_ARG);
    {
        gstp_frame_t f = frame_of(GSTP_ACK, NULL, 8);
        assert_int_equal(gstp_parse_ack(&f, &ak), GSTP_E_ARG);
        assert_int_equal(gstp_parse_ack(&f, NULL), GSTP_E_ARG);
    }
}

static void test_string_fields(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], p[128];
    gstp_reject_t r;
    gstp_error_t e;
    gstp_frame_t f;
    (void)state;

    memset(&r, 0, sizeof r);
    memset(r.message, 'm', sizeof r.message); /* no terminator within the array */
    assert_int_equal(gstp_encode_reject(out, sizeof out, &r), GSTP_E_RANGE);
    memset(&e, 0, sizeof e);
    memset(e.message, 'm', sizeof e.message);
    assert_int_equal(gstp_encode_error(out, sizeof out, &e), GSTP_E_RANGE);

    memset(p, 'a', sizeof p);
    f = frame_of(GSTP_REJECT, p, 4 + GSTP_MAX_STR);
    assert_int_equal(gstp_parse_reject(&f, &r), GSTP_OK);
    assert_int_equal(strlen(r.message), GSTP_MAX_STR);
    f.len++; /* 65-byte message */
    assert_int_equal(gstp_parse_reject(&f, &r), GSTP_E_RANGE);
    f.len = 10;
    p[7] = 0; /* NUL inside the message */
    assert_int_equal(gstp_parse_reject(&f, &r), GSTP_E_RANGE);
    f.type = GSTP_ERROR;
    assert_int_equal(gstp_parse_error(&f, &e), GSTP_E_RANGE);
    p[7] = 'a';
    assert_int_equal(gstp_parse_error(&f, &e), GSTP_OK);
    assert_string_equal(e.message, "aaaaaa");
}

static void test_range_checks(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], pl[64];
    uint8_t samples[256] = {0};
    gstp_challenge_t ch;
    gstp_welcome_t we = {0, 30, 16, 0, 1, 0};
    gstp_status_t st;
    gstp_block_hdr_t h;
    gstp_block_t b;
    gstp_frame_t f;
    int n, i;
    (void)state;

    memset(&ch, 0, sizeof ch);
    assert_int_equal(gstp_encode_challenge(out, sizeof out, &ch), GSTP_E_RANGE);
    ch.version = 128;
    assert_int_equal(gstp_encode_challenge(out, sizeof out, &ch), GSTP_E_RANGE);
    memset(pl, 0, sizeof pl);
    f = frame_of(GSTP_CHALLENGE, pl, 36);
    assert_int_equal(gstp_parse_challenge(&f, &ch), GSTP_E_RANGE);

    we.ack_window = 0;
    assert_int_equal(gstp_encode_welcome(out, sizeof out, &we), GSTP_E_RANGE);
    we.ack_window = 1;
    we.heartbeat_s = 0;
    assert_int_equal(gstp_encode_welcome(out, sizeof out, &we), GSTP_E_RANGE);
    we.heartbeat_s = 30;
    n = gstp_encode_welcome(out, sizeof out, &we);
    f = frame_of(GSTP_WELCOME, out + 10, (size_t)n - 14);
    assert_int_equal(gstp_parse_welcome(&f, &we), GSTP_OK);
    out[10 + 10] = out[10 + 11] = 0; /* ack_window 0 */
    assert_int_equal(gstp_parse_welcome(&f, &we), GSTP_E_RANGE);

    memset(&st, 0, sizeof st);
    st.buffer_permille = 1001;
    assert_int_equal(gstp_encode_status(out, sizeof out, &st), GSTP_E_RANGE);
    f = frame_of(GSTP_STATUS, pl, 32);
    le16(pl + 20, 1001);
    assert_int_equal(gstp_parse_status(&f, &st), GSTP_E_RANGE);
    memset(&st, 0, sizeof st);
    assert_int_equal(gstp_encode_status(out, 20, &st), GSTP_E_SPACE);
    assert_int_equal(gstp_encode_status(out, 5, &st), GSTP_E_SPACE);
    assert_int_equal(gstp_encode_status(NULL, 100, &st), GSTP_E_ARG);
    assert_int_equal(gstp_encode_status(out, 100, NULL), GSTP_E_ARG);

    /* Each block header rule, violated through the encoder and through a mutated payload. */
    for (i = 0; i < 15; i++) {
        uint16_t nin = 2;
        fill_block_hdr(&h, 0x7, GSTP_FMT_INT16, 4);
        n = gstp_encode_block(out, sizeof out, &h, NULL, samples, nin);
        assert_true(n > 0);
        f = frame_of(GSTP_WAVEFORM, out + 10, (size_t)n - 14);
        switch (i) {
        case 0:
            h.seq = 0;
            out[10] = 0;
            break;
        case 1:
            h.sample_rate = 0;
            memset(out + 10 + 16, 0, 4);
            break;
        case 2:
            h.sample_rate = 100001;
            out[10 + 16] = 0xA1, out[10 + 17] = 0x86, out[10 + 18] = 0x01; /* 100001 */
            break;
        case 3:
            h.channel_mask = 0x10007; /* bit 16 */
            out[10 + 22] = 1;
            break;
        case 4:
            h.nchannels = 2;
            out[10 + 30] = 2;
            break;
        case 5:
            h.sample_fmt = 3;
            out[10 + 29] = 3;
            break;
        case 6: /* codec 3 is unknown (0 raw, 1 and 2 wcodec are defined, 7.4) */
            h.codec = 3;
            out[10 + 33] = 3;
            break;
        case 7:
            h.chunk_count = 0;
            out[10 + 32] = 0;
            break;
        case 8:
            h.chunk_index = 1;
            out[10 + 31] = 1;
            break;
        case 9:
            h.nsamples = 0;
            out[10 + 24] = 0;
            break;
        case 10:
            h.nsamples = 8193;
            le16(out + 10 + 24, 8193);
            break;
        case 11:
            nin = 0;
            le16(out + 10 + 36, 0);
            break;
        case 12:
            h.first_sample = 3;
            out[10 + 26] = 3;
            break;
        case 13:
            h.channel_mask = 0;
            h.nchannels = 0;
            memset(out + 10 + 20, 0, 4);
            out[10 + 30] = 0;
            break;
        case 14: /* seq above 2^63 - 1: no store holds it as a signed 64-bit integer */
            h.seq |= 1ull << 63;
            out[10 + 7] |= 0x80;
            break;
        }
        assert_int_equal(gstp_parse_block(&f, &b), GSTP_E_RANGE);
        assert_int_equal(gstp_encode_block(out, sizeof out, &h, NULL, samples, nin), GSTP_E_RANGE);
    }
    /* The largest seq, 2^63 - 1, is valid. */
    fill_block_hdr(&h, 0x7, GSTP_FMT_INT16, 4);
    h.seq = GSTP_MAX_SEQ;
    n = gstp_encode_block(out, sizeof out, &h, NULL, samples, 4);
    assert_true(n > 0);
    f = frame_of(GSTP_WAVEFORM, out + 10, (size_t)n - 14);
    assert_int_equal(gstp_parse_block(&f, &b), 0);
    assert_true(b.hdr.seq == GSTP_MAX_SEQ);
    /* Reserved fields are written as zero and ignored on receipt. */
    fill_block_hdr(&h, 0x7, GSTP_FMT_INT16, 4);
    n = gstp_encode_block(out, sizeof out, &h, NULL, samples, 4);
    f = frame_of(GSTP_WAVEFORM, out + 10, (size_t)n - 14);
    out[10 + 34] = out[10 + 38] = 0x55;
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_encode_block(out, sizeof out, &h, NULL, NULL, 4), GSTP_E_ARG);
}

/* HELLO payloads built by hand with the TLV writer. */
static int hello_with(uint8_t *buf, size_t cap, int variant)
{
    gstp_tlv_writer_t w;
    uint8_t ch[8 + 4];
    int i;

    buf[0] = 1;
    buf[1] = 1;
    buf[2] = buf[3] = 0;
    if (variant == 1)
        buf[0] = 2; /* min > max */
    if (variant == 2)
        buf[0] = buf[1] = 0;
    gstp_tlv_writer_init(&w, buf + 4, cap - 4);
    if (variant != 3)
        gstp_tlv_put_str(&w, GSTP_HT_TERMINAL_ID, variant == 4 ? "bad id" : "t1");
    if (variant != 5)
        gstp_tlv_put_u32(&w, GSTP_HT_SAMPLE_RATE, variant == 6 ? 0 : variant == 7 ? 100001 : 4000);
    if (variant != 8 && variant != 10)
        gstp_tlv_put_u8(&w, GSTP_HT_NOMINAL_HZ, variant == 9 ? 55 : 60);
    if (variant == 10)
        gstp_tlv_put_u16(&w, GSTP_HT_NOMINAL_HZ, 60); /* wrong value length */
    if (variant == 11)
        gstp_tlv_put(&w, 200, "future extension", 16); /* unknown tag: skipped */
    if (variant == 12)
        gstp_tlv_put_str(&w, GSTP_HT_FW_VERSION, "1.0\0x"); /* fine: strlen stops at NUL */
    if (variant == 13)
        gstp_tlv_put(&w, GSTP_HT_FW_VERSION, "1.0\0x", 5); /* NUL on the wire */
    if (variant == 14)
        gstp_tlv_put_str(&w, GSTP_HT_TERMINAL_ID, "t2"); /* duplicate */
    if (variant == 15)
        gstp_tlv_put_u32(&w, GSTP_HT_VT_RATIO, 0x7F800000u); /* +inf */
    if (variant == 16)
        gstp_tlv_put_u32(&w, GSTP_HT_CT_RATIO, 0x3F800000u);
    for (i = 0; i < (variant == 17 ? 17 : variant == 18 ? 0 : 2); i++) {
        memset(ch, 0, sizeof ch);
        ch[0] = (uint8_t)i;
        ch[1] = GSTP_KIND_VOLTAGE;
        ch[2] = GSTP_PHASE_A;
        ch[3] = GSTP_UNIT_V;
        ch[4] = 0x00, ch[5] = 0x00, ch[6] = 0x80, ch[7] = 0x3F; /* 1.0f LE */
        memcpy(ch + 8, "Ua", 2);
        if (variant == 19 && i == 1)
            ch[0] = 0; /* duplicate index */
        if (variant == 20)
            ch[0] = 16;
        if (variant == 21)
            ch[1] = 3;
        if (variant == 22)
            ch[3] = 0;
        if (variant == 23)
            ch[7] = 0x7F, ch[6] = 0xC0; /* NaN */
        if (variant == 24)
            ch[7] = 0xBF; /* -1.0 */
        if (variant == 25)
            ch[4] = ch[5] = ch[6] = ch[7] = 0; /* 0.0 */
        if (variant == 26)
            ch[2] = 0;
        gstp_tlv_put(&w, GSTP_HT_CHANNEL, ch, variant == 27 ? 7 : 10);
    }
    if (variant == 28)
        buf[4 + w.len++] = 99; /* a dangling tag byte */
    if (variant == 29) {
        for (i = 0; i < 65; i++)
            buf[4 + w.len + 3 + (size_t)i] = 'x';
        buf[4 + w.len] = GSTP_HT_IMEI;
        le16(buf + 4 + w.len + 1, 65); /* string one byte too long */
        w.len += 3 + 65;
    }
    assert_int_equal(w.err, GSTP_OK);
    return 4 + (int)w.len;
}

static void test_hello_validation(void **state)
{
    static const int expect[30] = {
        /* E_RANGE: does not parse (REJECT PROTOCOL); E_CONFIG: parses, capabilities unusable
         * (REJECT BAD_CONFIG). */
        [0] = GSTP_OK,        [1] = GSTP_E_RANGE,   [2] = GSTP_E_RANGE,   [3] = GSTP_E_RANGE,
        [4] = GSTP_E_RANGE,   [5] = GSTP_E_RANGE,   [6] = GSTP_E_CONFIG,  [7] = GSTP_E_CONFIG,
        [8] = GSTP_E_RANGE,   [9] = GSTP_E_CONFIG,  [10] = GSTP_E_RANGE,  [11] = GSTP_OK,
        [12] = GSTP_OK,       [13] = GSTP_E_RANGE,  [14] = GSTP_E_RANGE,  [15] = GSTP_E_RANGE,
        [16] = GSTP_OK,       [17] = GSTP_E_CONFIG, [18] = GSTP_E_RANGE,  [19] = GSTP_E_CONFIG,
        [20] = GSTP_E_CONFIG, [21] = GSTP_E_CONFIG, [22] = GSTP_E_CONFIG, [23] = GSTP_E_CONFIG,
        [24] = GSTP_E_CONFIG, [25] = GSTP_E_CONFIG, [26] = GSTP_E_CONFIG, [27] = GSTP_E_RANGE,
        [28] = GSTP_E_TLV,    [29] = GSTP_E_RANGE,
    };
    uint8_t buf[1024], out[GSTP_MAX_FRAME];
    gstp_hello_t h, h2;
    int v;
    (void)state;

    for (v = 0; v < 30; v++) {
        int n = hello_with(buf, sizeof buf, v);
        gstp_frame_t f = frame_of(GSTP_HELLO, buf, (size_t)n);
        int rc = gstp_parse_hello(&f, &h);
        if (rc != expect[v])
            fail_msg("variant %d: rc %d, expected %d", v, rc, expect[v]);
        if (rc == GSTP_OK) {
            /* What the parser accepts, the encoder accepts and reproduces. */
            n = gstp_encode_hello(out, sizeof out, &h);
            assert_true(n > 0);
            f = frame_of(GSTP_HELLO, out + 10, (size_t)n - 14);
            assert_int_equal(gstp_parse_hello(&f, &h2), GSTP_OK);
            assert_hello_equal(&h, &h2);
        }
    }
    /* Encoder side of the same rules. */
    fill_hello(&h, 2);
    assert_true(gstp_encode_hello(out, sizeof out, &h) > 0);
    h.nchannels = 0;
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    h.channels[1].index = h.channels[0].index;
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    h.nominal_hz = 0;
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    strcpy(h.terminal_id, "no spaces");
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    h.channels[0].scale = -1.0f;
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    h.vt_ratio = -2.0f;
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    memset(h.imei, '1', sizeof h.imei);
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    h.version_min = 4;
    assert_int_equal(gstp_encode_hello(out, sizeof out, &h), GSTP_E_RANGE);
    fill_hello(&h, 2);
    assert_int_equal(gstp_encode_hello(out, 60, &h), GSTP_E_SPACE);
}

static void test_tlv(void **state)
{
    uint8_t buf[16], big[600];
    gstp_tlv_writer_t w;
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    gstp_command_t c;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    char s[4];
    (void)state;

    /* Writer: sticky E_SPACE, nothing partial written. */
    gstp_tlv_writer_init(&w, buf, sizeof buf);
    gstp_tlv_put_u64(&w, 1, 0x1122334455667788ull); /* 11 bytes */
    gstp_tlv_put_u32(&w, 2, 7);                     /* 7 more: does not fit */
    assert_int_equal(w.err, GSTP_E_SPACE);
    assert_int_equal(w.len, 11);
    gstp_tlv_put_u8(&w, 3, 1); /* would fit, but the error is sticky */
    assert_int_equal(w.len, 11);
    gstp_tlv_writer_init(&w, buf, sizeof buf);
    gstp_tlv_put(&w, 1, NULL, 3);
    assert_int_equal(w.err, GSTP_E_ARG);

    /* Iterator. */
    gstp_tlv_writer_init(&w, buf, sizeof buf);
    gstp_tlv_put_u8(&w, 1, 0xAB);
    gstp_tlv_put(&w, 2, NULL, 0);
    gstp_tlv_put_str(&w, 3, "hi");
    assert_int_equal(w.err, GSTP_OK);
    gstp_tlv_iter_init(&it, buf, w.len);
    assert_int_equal(gstp_tlv_next(&it, &t), 1);
    assert_int_equal(t.tag, 1);
    assert_int_equal(gstp_tlv_u8(&t, &u8), GSTP_OK);
    assert_int_equal(u8, 0xAB);
    assert_int_equal(gstp_tlv_u16(&t, &u16), GSTP_E_RANGE);
    assert_int_equal(gstp_tlv_u32(&t, &u32), GSTP_E_RANGE);
    assert_int_equal(gstp_tlv_u64(&t, &u64), GSTP_E_RANGE);
    assert_int_equal(gstp_tlv_next(&it, &t), 1);
    assert_int_equal(t.len, 0);
    assert_int_equal(gstp_tlv_next(&it, &t), 1);
    assert_int_equal(gstp_tlv_str(&t, s, sizeof s), GSTP_OK);
    assert_string_equal(s, "hi");
    assert_int_equal(gstp_tlv_str(&t, s, 2), GSTP_E_RANGE); /* no room for the NUL */
    assert_int_equal(gstp_tlv_next(&it, &t), 0);
    assert_int_equal(gstp_tlv_next(&it, &t), 0);

    /* Malformed lists: dangling header bytes, length past the end. */
    gstp_tlv_iter_init(&it, buf, 1);
    assert_int_equal(gstp_tlv_next(&it, &t), GSTP_E_TLV);
    gstp_tlv_iter_init(&it, buf, 2);
    assert_int_equal(gstp_tlv_next(&it, &t), GSTP_E_TLV);
    gstp_tlv_iter_init(&it, buf, w.len - 1); /* last element cut */
    assert_int_equal(gstp_tlv_next(&it, &t), 1);
    assert_int_equal(gstp_tlv_next(&it, &t), 1);
    assert_int_equal(gstp_tlv_next(&it, &t), GSTP_E_TLV);
    assert_int_equal(gstp_tlv_find(buf, w.len - 1, 1, &t), GSTP_E_TLV);
    assert_int_equal(gstp_tlv_find(buf, w.len, 9, &t), 0);
    assert_int_equal(gstp_tlv_find(NULL, 0, 9, &t), 0);
    buf[5] = 0xFF; /* element 2 now claims 255 bytes */
    assert_int_equal(gstp_tlv_find(buf, w.len, 1, &t), GSTP_E_TLV);

    /* Malformed TLV in COMMAND and RESULT: encoder refuses, parser refuses. */
    memset(big, 0, sizeof big);
    c.id = 1;
    c.verb = 1;
    c.tlv = big;
    c.tlv_len = 2;
    assert_int_equal(gstp_encode_command(big + 100, 400, &c), GSTP_E_TLV);
    {
        uint8_t pl[12 + 5] = {0};
        gstp_frame_t f = frame_of(GSTP_COMMAND, pl, sizeof pl);
        gstp_result_t r;
        pl[12] = 1;
        le16(pl + 13, 3); /* claims 3 bytes, 2 present */
        assert_int_equal(gstp_parse_command(&f, &c), GSTP_E_TLV);
        f.type = GSTP_RESULT;
        assert_int_equal(gstp_parse_result(&f, &r), GSTP_E_TLV);
        le16(pl + 13, 2);
        assert_int_equal(gstp_parse_result(&f, &r), GSTP_OK);
    }
    {
        gstp_frame_t f = frame_of(GSTP_COMMAND, big, 12 + GSTP_MAX_TLV + 1);
        assert_int_equal(gstp_parse_command(&f, &c), GSTP_E_RANGE);
    }
}

/* ---- Codec 1 (wcodec segments in chunks, protocol.md 6.7 and 7.4) ---------------------------
 */

/* WELCOME's CODECS extension: written only when a codec besides raw is accepted, parsed with
 * bit 0 forced, unknown tags skipped, a malformed list or a CODECS of the wrong size refused. */
static void test_welcome_codecs(void **state)
{
    uint8_t out[GSTP_MAX_FRAME], rx[GSTP_MAX_FRAME], p[64];
    gstp_welcome_t w, w2;
    gstp_frame_t f;
    int n;
    (void)state;

    memset(&w, 0, sizeof w);
    w.heartbeat_s = 30;
    w.ack_window = 64;
    w.session_id = 7;
    w.codecs = GSTP_CODECS_KNOWN;
    n = gstp_encode_welcome(out, sizeof out, &w);
    assert_int_equal(n, 14 + 24 + 7);
    assert_int_equal(out[10 + 24], GSTP_WT_CODECS);
    assert_int_equal(out[10 + 25], 4);
    assert_int_equal(out[10 + 27], 7); /* raw, codec 1, codec 2 */
    f = decode_one(rx, sizeof rx, out, n);
    assert_int_equal(gstp_parse_welcome(&f, &w2), GSTP_OK);
    assert_int_equal(w2.codecs, 7u);

    /* Built by hand: an unknown tag before CODECS (skipped), CODECS without bit 0 (set). */
    memcpy(p, out + 10, 24);
    memcpy(p + 24, "\x63\x02\x00\xaa\xbb", 5);
    memcpy(p + 29, "\x01\x04\x00\x02\x00\x00\x00", 7);
    f = frame_of(GSTP_WELCOME, p, 36);
    assert_int_equal(gstp_parse_welcome(&f, &w2), GSTP_OK);
    assert_int_equal(w2.codecs, 3u);
    /* CODECS with 2 bytes: a range error; a TLV running past the end: malformed list. */
    memcpy(p + 24, "\x01\x02\x00\x02\x00", 5);
    f = frame_of(GSTP_WELCOME, p, 29);
    assert_int_equal(gstp_parse_welcome(&f, &w2), GSTP_E_RANGE);
    memcpy(p + 24, "\x01\x04\x00\x02\x00", 5);
    f = frame_of(GSTP_WELCOME, p, 29);
    assert_int_equal(gstp_parse_welcome(&f, &w2), GSTP_E_TLV);
}

/* A 3-phase int16 block (50 Hz at 4000 sets/s with a little noise). */
static void fill_wave(uint8_t *blk, uint16_t nsets, uint32_t seed)
{
    static const int16_t cyc[80] = {
        0,     1636,  3231,  4746,  6142,  7386,  8444,  9290,  9903,  10268, 10377, 10226,
        9819,  9167,  8287,  7202,  5938,  4528,  3006,  1411,  -217,  -1839, -3414, -4906,
        -6281, -7501, -8534, -9352, -9934, -10265, -10338, -10152, -9714, -9035, -8135, -7038,
        -5773, -4367, -2850, -1252, 378,   1994,  3564,  5047,  6409,  7614,  8629,  9421,
        9973,  10268, 10295, 10053, 9548,  8796,  7821,  6655,  5331,  3881,  2344,  757,
        -858,  -2460, -4012, -5474, -6803, -7963, -8919, -9645, -10121, -10333, -10277, -9955,
        -9377, -8561, -7531, -6316, -4950, -3471, -1920, -342};
    for (uint16_t i = 0; i < nsets; i++)
        for (int c = 0; c < 3; c++) {
            int v = cyc[(i + (uint32_t)c * 27u) % 80u] + (int)(lcg(&seed) % 7u) - 3;
            le16(blk + ((size_t)i * 3 + (size_t)c) * 2, (uint16_t)(int16_t)v);
        }
}

/* Terminal side builds the chunks, receiver side parses and decodes them back into the block:
 * sample for sample, with each chunk filling its payload limit and fewer bytes than raw; with
 * codec 1 and with codec 2 (Appendix A.11; model segments are tested in test_wcodec). */
static void test_codec1_roundtrip(void **state)
{
    enum { NS = 800 };
    static uint8_t frames[255 * GSTP_MAX_FRAME];
    uint8_t blk[NS * 6], got[NS * 6], rx[GSTP_MAX_FRAME * 2];
    gstp_block_hdr_t h;
    gstp_event_hdr_t ev = {1700000000200000000LL, GSTP_TRIG_DIP, 100, 500, 0};
    gstp_decoder_t d;
    gstp_frame_t f;
    gstp_block_t b;
    uint8_t nchunks = 0;
    size_t seg_bytes = 0;
    (void)state;

    fill_wave(blk, NS, 5);
    for (int it = 0; it < 4; it++) {
        int is_event = it & 1;
        uint8_t codec = it < 2 ? GSTP_CODEC_WCODEC : GSTP_CODEC_WCODEC2;
        fill_block_hdr(&h, 0x7, GSTP_FMT_INT16, NS);
        h.sample_rate = 4000;
        h.codec = codec;
        size_t maxp = 256;
        int total = gstp_encode_block_wcodec_all(frames, sizeof frames, &h,
                                                 is_event ? &ev : NULL, blk, 80, maxp, &nchunks);
        assert_true(total > 0);
        assert_true(nchunks >= 2);
        memset(got, 0xEE, sizeof got);
        assert_int_equal(gstp_decoder_init(&d, rx, sizeof rx), GSTP_OK);
        size_t off = 0;
        uint32_t next = 0;
        seg_bytes = 0;
        for (unsigned i = 0; i < nchunks; i++) {
            size_t flen = 14 + (size_t)(frames[off + 6] | frames[off + 7] << 8);
            assert_true(flen - 14 <= maxp);
            assert_int_equal(gstp_decoder_feed(&d, frames + off, flen), flen);
            assert_int_equal(gstp_decoder_next(&d, &f), GSTP_FRAME);
            assert_int_equal(f.type, is_event ? GSTP_EVENT : GSTP_WAVEFORM);
            assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
            assert_int_equal(b.hdr.codec, codec);
            if (codec == GSTP_CODEC_WCODEC) /* shape byte bit 5 (a model) only in codec 2 */
                assert_int_equal(b.samples[0] & 0x20, 0);
            assert_int_equal(b.hdr.chunk_index, i);
            assert_int_equal(b.hdr.chunk_count, nchunks);
            assert_int_equal(b.hdr.first_sample, next);
            if (is_event)
                assert_int_equal(b.event.pretrigger, 100);
            assert_int_equal(b.samples_len,
                             f.len - GSTP_BLOCK_HDR_LEN - (is_event ? GSTP_EVENT_HDR_LEN : 0));
            assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_OK);
            seg_bytes += b.samples_len;
            next += b.hdr.n_in_chunk;
            off += flen;
        }
        assert_int_equal(off, (size_t)total);
        assert_int_equal(next, NS);
        assert_memory_equal(got, blk, sizeof blk);
        assert_true(seg_bytes < sizeof blk); /* smaller than raw */
    }
    /* The same helper one chunk at a time: chunk 0 holds what fits in 256 bytes. */
    fill_block_hdr(&h, 0x7, GSTP_FMT_INT16, NS);
    h.codec = GSTP_CODEC_WCODEC;
    h.chunk_count = 4;
    uint16_t n0 = 0;
    int n = gstp_encode_block_wcodec(frames, GSTP_MAX_FRAME, &h, NULL, blk, 80, 256, &n0);
    assert_true(n > 0 && n <= 14 + 256);
    assert_true(n0 > gstp_block_chunk_capacity(3, GSTP_FMT_INT16, 0, 256)); /* beats raw */
    assert_int_equal(gstp_block_set_chunk_count(frames, (size_t)n, 9), GSTP_OK);
    f = decode_one(rx, sizeof rx, frames, n);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(b.hdr.chunk_count, 9);
    assert_int_equal(b.hdr.n_in_chunk, n0);
    assert_int_equal(gstp_block_set_chunk_count(frames, (size_t)n, 0), GSTP_E_RANGE);
    h.chunk_index = 3;
    n = gstp_encode_block_wcodec(frames, GSTP_MAX_FRAME, &h, NULL, blk, 80, 256, &n0);
    assert_true(n > 0);
    assert_int_equal(gstp_block_set_chunk_count(frames, (size_t)n, 3), GSTP_E_RANGE);
    /* Each encoder refuses the other codec; a payload limit below the fixed part has no room. */
    assert_int_equal(gstp_encode_block(frames, GSTP_MAX_FRAME, &h, NULL, blk, 10), GSTP_E_RANGE);
    h.codec = GSTP_CODEC_RAW;
    assert_int_equal(gstp_encode_block_segment(frames, GSTP_MAX_FRAME, &h, NULL, blk, 10, 10),
                     GSTP_E_RANGE);
    assert_int_equal(gstp_encode_block_wcodec(frames, GSTP_MAX_FRAME, &h, NULL, blk, 80, 256, &n0),
                     GSTP_E_RANGE);
    h.codec = GSTP_CODEC_WCODEC;
    assert_int_equal(gstp_encode_block_wcodec(frames, GSTP_MAX_FRAME, &h, NULL, blk, 80, 40, &n0),
                     GSTP_E_SPACE);
    assert_int_equal(gstp_period_hint(4000, 50), 80u);
    assert_int_equal(gstp_period_hint(12800, 60), 213u);
    assert_int_equal(gstp_period_hint(4000, 0), 0u);
}

/* Chunk rule (7.4): the sample bytes are exactly one segment covering exactly the chunk's sets.
 * A segment cut short, one byte too many, a set count that differs from n_in_chunk, garbage, and
 * an empty segment are refused (the receiver answers ERROR MALFORMED). */
static void test_codec1_malformed(void **state)
{
    enum { NS = 300 };
    uint8_t blk[NS * 6], got[NS * 6], seg[GSTP_MAX_PAYLOAD], out[GSTP_MAX_FRAME], pl[GSTP_MAX_PAYLOAD];
    gstp_block_hdr_t h;
    gstp_frame_t f;
    gstp_block_t b;
    uint16_t n0 = 0;
    (void)state;

    fill_wave(blk, NS, 9);
    fill_block_hdr(&h, 0x7, GSTP_FMT_INT16, NS);
    h.codec = GSTP_CODEC_WCODEC;
    int n = gstp_encode_block_wcodec(out, sizeof out, &h, NULL, blk, 80, 512, &n0);
    assert_true(n > 0);
    size_t plen = (size_t)n - 14, slen = plen - GSTP_BLOCK_HDR_LEN;
    memcpy(pl, out + 10, plen);
    memcpy(seg, pl + GSTP_BLOCK_HDR_LEN, slen);
    f = frame_of(GSTP_WAVEFORM, pl, plen);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_OK);
    assert_memory_equal(got, blk, (size_t)n0 * 6);

    /* cut short by one byte */
    f = frame_of(GSTP_WAVEFORM, pl, plen - 1);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_E_RANGE);
    /* a byte after the segment */
    pl[plen] = 0;
    f = frame_of(GSTP_WAVEFORM, pl, plen + 1);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_E_RANGE);
    /* n_in_chunk one less (and one more) than the segment's sets */
    le16(pl + 36, (uint16_t)(n0 - 1));
    f = frame_of(GSTP_WAVEFORM, pl, plen);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_E_RANGE);
    le16(pl + 36, (uint16_t)(n0 + 1));
    f = frame_of(GSTP_WAVEFORM, pl, plen);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_E_RANGE);
    le16(pl + 36, n0);
    /* garbage instead of the segment */
    memset(pl + GSTP_BLOCK_HDR_LEN, 0xFF, slen);
    f = frame_of(GSTP_WAVEFORM, pl, plen);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_E_RANGE);
    /* no segment at all */
    f = frame_of(GSTP_WAVEFORM, pl, GSTP_BLOCK_HDR_LEN);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_E_TRUNC);
    /* the same segment sent through gstp_encode_block_segment decodes again */
    n = gstp_encode_block_segment(out, sizeof out, &h, NULL, seg, slen, n0);
    assert_int_equal(n, (int)(14 + plen));
    f = frame_of(GSTP_WAVEFORM, out + 10, plen);
    assert_int_equal(gstp_parse_block(&f, &b), GSTP_OK);
    memset(got, 0, sizeof got);
    assert_int_equal(gstp_block_decode_chunk(&b, got, sizeof got), GSTP_OK);
    assert_memory_equal(got, blk, (size_t)n0 * 6);
    /* a block buffer smaller than the block is the caller's error */
    assert_int_equal(gstp_block_decode_chunk(&b, got, 6), GSTP_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_crc32c_lengths_alignments),
        cmocka_unit_test(test_names_and_ids),
        cmocka_unit_test(test_roundtrip_hello),
        cmocka_unit_test(test_roundtrip_session),
        cmocka_unit_test(test_roundtrip_control),
        cmocka_unit_test(test_roundtrip_commands),
        cmocka_unit_test(test_roundtrip_waveform),
        cmocka_unit_test(test_roundtrip_event_multichunk),
        cmocka_unit_test(test_unknown_type_and_flags),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_frame_inside_bad_frame),
        cmocka_unit_test(test_resync_garbage),
        cmocka_unit_test(test_resync_dtu_strings),
        cmocka_unit_test(test_resync_urc_inside_frame),
        cmocka_unit_test(test_split_invariance),
        cmocka_unit_test(test_max_size_frames),
        cmocka_unit_test(test_buffer_full_feed),
        cmocka_unit_test(test_truncated_and_wrong_type),
        cmocka_unit_test(test_string_fields),
        cmocka_unit_test(test_range_checks),
        cmocka_unit_test(test_hello_validation),
        cmocka_unit_test(test_tlv),
        cmocka_unit_test(test_result_message_rules),
        cmocka_unit_test(test_welcome_codecs),
        cmocka_unit_test(test_codec1_roundtrip),
        cmocka_unit_test(test_codec1_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
