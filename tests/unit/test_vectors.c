/* Checks the committed GSTP 1.0 test vectors (docs/vectors/gstp-1.0.json) against the codec in
 * both directions:
 *   - decode: every vector's hex goes through the decoder and the type's parser, and every
 *     decoded field is compared with the JSON (a JSON field the test does not read, or a missing
 *     one, is a failure, so no field escapes the comparison);
 *   - encode: the JSON fields are encoded with the codec and the bytes compared with the hex.
 * Also the CRC-32C examples, the HMAC example (libsodium) and the invalid frames (decoder counts
 * and parser error codes). The JSON is read with jansson; the file path comes from CMake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "gstp/gstp.h"

#ifndef GS_VECTORS_JSON
#error "GS_VECTORS_JSON must name docs/vectors/gstp-1.0.json"
#endif

static json_t *g_doc;
static const char *g_name = "?"; /* vector being checked, for failure messages */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("%s: %s (line %d)", g_name, #cond, __LINE__);                                 \
    } while (0)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            fail_msg("%s: %s = %lld, expected %s = %lld (line %d)", g_name, #a, a_, #b, b_,        \
                     __LINE__);                                                                    \
    } while (0)

/* ---- strict JSON field access: every key of an object must be read exactly once ---- */

typedef struct {
    json_t *o;
    size_t used;
} fields_t;

static fields_t fields_of(json_t *o)
{
    fields_t f = {o, 0};
    if (!json_is_object(o))
        fail_msg("%s: expected a JSON object", g_name);
    return f;
}

static json_t *jget(fields_t *f, const char *key)
{
    json_t *v = json_object_get(f->o, key);
    if (!v)
        fail_msg("%s: field '%s' missing", g_name, key);
    f->used++;
    return v;
}

/* Fails when the object has keys that were not read (a field the test would not compare). */
static void fields_done(const fields_t *f)
{
    if (json_object_size(f->o) != f->used) {
        const char *k;
        json_t *v;
        json_object_foreach(f->o, k, v) fprintf(stderr, "  key %s\n", k);
        fail_msg("%s: %zu JSON fields but %zu compared", g_name, json_object_size(f->o), f->used);
    }
}

static long long jint(fields_t *f, const char *key)
{
    json_t *v = jget(f, key);
    if (!json_is_integer(v))
        fail_msg("%s: field '%s' is not an integer", g_name, key);
    return (long long)json_integer_value(v);
}

static float jf32(fields_t *f, const char *key)
{
    json_t *v = jget(f, key);
    if (!json_is_number(v))
        fail_msg("%s: field '%s' is not a number", g_name, key);
    return (float)json_number_value(v);
}

static const char *jstr(fields_t *f, const char *key)
{
    json_t *v = jget(f, key);
    if (!json_is_string(v))
        fail_msg("%s: field '%s' is not a string", g_name, key);
    return json_string_value(v);
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s), i;
    if (n % 2 || n / 2 > cap)
        fail_msg("%s: bad hex string", g_name);
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            fail_msg("%s: bad hex digit", g_name);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

static void jhex(fields_t *f, const char *key, uint8_t *out, size_t want)
{
    uint8_t buf[GSTP_MAX_FRAME];
    size_t n = unhex(jstr(f, key), buf, sizeof buf);
    CHECK_EQ(n, want);
    memcpy(out, buf, want);
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* ---- TLV lists: JSON [{tag, name, type, value}] ---- */

/* Builds the TLV bytes of a JSON list with the codec's writer (encode direction). */
static uint16_t tlv_from_json(json_t *list, uint8_t *buf, size_t cap)
{
    gstp_tlv_writer_t w;
    size_t i;
    json_t *e;

    gstp_tlv_writer_init(&w, buf, cap);
    json_array_foreach(list, i, e)
    {
        fields_t f = fields_of(e);
        uint8_t tag = (uint8_t)jint(&f, "tag");
        const char *type = jstr(&f, "type");
        (void)jstr(&f, "name");
        if (!strcmp(type, "str")) {
            gstp_tlv_put_str(&w, tag, jstr(&f, "value"));
        } else {
            long long v = jint(&f, "value");
            if (!strcmp(type, "u8"))
                gstp_tlv_put_u8(&w, tag, (uint8_t)v);
            else if (!strcmp(type, "u16"))
                gstp_tlv_put_u16(&w, tag, (uint16_t)v);
            else if (!strcmp(type, "u32"))
                gstp_tlv_put_u32(&w, tag, (uint32_t)v);
            else if (!strcmp(type, "u64"))
                gstp_tlv_put_u64(&w, tag, (uint64_t)v);
            else if (!strcmp(type, "i64"))
                gstp_tlv_put_i64(&w, tag, (int64_t)v);
            else
                fail_msg("%s: unknown TLV type %s", g_name, type);
        }
        fields_done(&f);
    }
    CHECK_EQ(w.err, GSTP_OK);
    return (uint16_t)w.len;
}

/* Walks parsed TLV bytes and compares each element with the JSON list (decode direction). */
static void tlv_compare(const uint8_t *tlv, size_t n, json_t *list)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    size_t i = 0;
    int rc;

    if (!json_is_array(list))
        fail_msg("%s: TLV list is not an array", g_name);
    gstp_tlv_iter_init(&it, tlv, n);
    while ((rc = gstp_tlv_next(&it, &t)) == 1) {
        json_t *e = json_array_get(list, i++);
        fields_t f = fields_of(e);
        const char *type;
        CHECK_EQ(t.tag, jint(&f, "tag"));
        (void)jstr(&f, "name");
        type = jstr(&f, "type");
        if (!strcmp(type, "str")) {
            char s[GSTP_MAX_STR + 1];
            CHECK_EQ(gstp_tlv_str(&t, s, sizeof s), GSTP_OK);
            CHECK(strcmp(s, jstr(&f, "value")) == 0);
        } else if (!strcmp(type, "u8")) {
            uint8_t v;
            CHECK_EQ(gstp_tlv_u8(&t, &v), GSTP_OK);
            CHECK_EQ(v, jint(&f, "value"));
        } else if (!strcmp(type, "u16")) {
            uint16_t v;
            CHECK_EQ(gstp_tlv_u16(&t, &v), GSTP_OK);
            CHECK_EQ(v, jint(&f, "value"));
        } else if (!strcmp(type, "u32")) {
            uint32_t v;
            CHECK_EQ(gstp_tlv_u32(&t, &v), GSTP_OK);
            CHECK_EQ(v, jint(&f, "value"));
        } else if (!strcmp(type, "u64")) {
            uint64_t v;
            CHECK_EQ(gstp_tlv_u64(&t, &v), GSTP_OK);
            CHECK_EQ(v, jint(&f, "value"));
        } else if (!strcmp(type, "i64")) {
            int64_t v;
            CHECK_EQ(gstp_tlv_i64(&t, &v), GSTP_OK);
            CHECK_EQ(v, jint(&f, "value"));
        } else {
            fail_msg("%s: unknown TLV type %s", g_name, type);
        }
        fields_done(&f);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(i, json_array_size(list));
}

/* ---- per-type field checks ---- */

static void hello_check(const gstp_frame_t *fr, fields_t *f, uint8_t *enc, int *enc_len)
{
    gstp_hello_t p, j;
    json_t *chans, *c;
    size_t i;

    memset(&j, 0, sizeof j);
    j.version_min = (uint8_t)jint(f, "version_min");
    j.version_max = (uint8_t)jint(f, "version_max");
    snprintf(j.terminal_id, sizeof j.terminal_id, "%s", jstr(f, "terminal_id"));
    snprintf(j.fw_version, sizeof j.fw_version, "%s", jstr(f, "fw_version"));
    snprintf(j.hw_version, sizeof j.hw_version, "%s", jstr(f, "hw_version"));
    snprintf(j.imei, sizeof j.imei, "%s", jstr(f, "imei"));
    snprintf(j.iccid, sizeof j.iccid, "%s", jstr(f, "iccid"));
    j.sample_rate = (uint32_t)jint(f, "sample_rate");
    j.nominal_hz = (uint8_t)jint(f, "nominal_hz");
    j.vt_ratio = jf32(f, "vt_ratio");
    j.ct_ratio = jf32(f, "ct_ratio");
    j.time_source = (uint8_t)jint(f, "time_source");
    j.time_quality = (uint8_t)jint(f, "time_quality");
    j.buffer_blocks = (uint32_t)jint(f, "buffer_blocks");
    chans = jget(f, "channels");
    CHECK(json_array_size(chans) <= GSTP_MAX_CHANNELS);
    json_array_foreach(chans, i, c)
    {
        fields_t cf = fields_of(c);
        gstp_channel_t *ch = &j.channels[i];
        ch->index = (uint8_t)jint(&cf, "index");
        ch->kind = (uint8_t)jint(&cf, "kind");
        ch->phase = (uint8_t)jint(&cf, "phase");
        ch->unit = (uint8_t)jint(&cf, "unit");
        ch->scale = jf32(&cf, "scale");
        snprintf(ch->name, sizeof ch->name, "%s", jstr(&cf, "name"));
        fields_done(&cf);
    }
    j.nchannels = (uint8_t)json_array_size(chans);

    CHECK_EQ(gstp_parse_hello(fr, &p), GSTP_OK);
    CHECK_EQ(p.version_min, j.version_min);
    CHECK_EQ(p.version_max, j.version_max);
    CHECK(strcmp(p.terminal_id, j.terminal_id) == 0);
    CHECK(strcmp(p.fw_version, j.fw_version) == 0);
    CHECK(strcmp(p.hw_version, j.hw_version) == 0);
    CHECK(strcmp(p.imei, j.imei) == 0);
    CHECK(strcmp(p.iccid, j.iccid) == 0);
    CHECK_EQ(p.sample_rate, j.sample_rate);
    CHECK_EQ(p.nominal_hz, j.nominal_hz);
    CHECK_EQ(f32_bits(p.vt_ratio), f32_bits(j.vt_ratio));
    CHECK_EQ(f32_bits(p.ct_ratio), f32_bits(j.ct_ratio));
    CHECK_EQ(p.time_source, j.time_source);
    CHECK_EQ(p.time_quality, j.time_quality);
    CHECK_EQ(p.buffer_blocks, j.buffer_blocks);
    CHECK_EQ(p.nchannels, j.nchannels);
    for (i = 0; i < j.nchannels; i++) {
        CHECK_EQ(p.channels[i].index, j.channels[i].index);
        CHECK_EQ(p.channels[i].kind, j.channels[i].kind);
        CHECK_EQ(p.channels[i].phase, j.channels[i].phase);
        CHECK_EQ(p.channels[i].unit, j.channels[i].unit);
        CHECK_EQ(f32_bits(p.channels[i].scale), f32_bits(j.channels[i].scale));
        CHECK(strcmp(p.channels[i].name, j.channels[i].name) == 0);
    }
    *enc_len = gstp_encode_hello(enc, GSTP_MAX_FRAME, &j);
}

static void reject_check(const gstp_frame_t *fr, fields_t *f, uint8_t *enc, int *enc_len)
{
    gstp_reject_t p, j;

    memset(&j, 0, sizeof j);
    j.reason = (uint16_t)jint(f, "reason");
    CHECK(strcmp(jstr(f, "reason_name"), gstp_reason_name(j.reason)) == 0);
    j.retry_after_s = (uint16_t)jint(f, "retry_after_s");
    snprintf(j.message, sizeof j.message, "%s", jstr(f, "message"));
    CHECK_EQ(gstp_parse_reject(fr, &p), GSTP_OK);
    CHECK_EQ(p.reason, j.reason);
    CHECK_EQ(p.retry_after_s, j.retry_after_s);
    CHECK(strcmp(p.message, j.message) == 0);
    *enc_len = fr->type == GSTP_BYE ? gstp_encode_bye(enc, GSTP_MAX_FRAME, &j)
                                    : gstp_encode_reject(enc, GSTP_MAX_FRAME, &j);
}

static void block_check(const gstp_frame_t *fr, fields_t *f, uint8_t *enc, int *enc_len)
{
    gstp_block_t p;
    gstp_block_hdr_t j;
    gstp_event_hdr_t ev;
    uint8_t samples[GSTP_MAX_PAYLOAD];
    json_t *list, *v;
    size_t i, w, k;
    uint16_t n_in;

    memset(&j, 0, sizeof j);
    memset(&ev, 0, sizeof ev);
    j.seq = (uint64_t)jint(f, "seq");
    j.t0_ns = (int64_t)jint(f, "t0_ns");
    j.sample_rate = (uint32_t)jint(f, "sample_rate");
    j.channel_mask = (uint32_t)jint(f, "channel_mask");
    j.nsamples = (uint16_t)jint(f, "nsamples");
    j.first_sample = (uint16_t)jint(f, "first_sample");
    j.time_quality = (uint8_t)jint(f, "time_quality");
    j.sample_fmt = (uint8_t)jint(f, "sample_fmt");
    j.nchannels = (uint8_t)jint(f, "nchannels");
    j.chunk_index = (uint8_t)jint(f, "chunk_index");
    j.chunk_count = (uint8_t)jint(f, "chunk_count");
    j.codec = (uint8_t)jint(f, "codec");
    n_in = (uint16_t)jint(f, "n_in_chunk");
    if (fr->type == GSTP_EVENT) {
        ev.trigger_ns = (int64_t)jint(f, "trigger_ns");
        ev.trigger = (uint16_t)jint(f, "trigger");
        ev.pretrigger = (uint16_t)jint(f, "pretrigger");
        ev.value_permille = (uint16_t)jint(f, "value_permille");
        ev.channel = (uint16_t)jint(f, "channel");
    }
    list = jget(f, "samples");
    w = j.sample_fmt == GSTP_FMT_INT32 ? 4 : 2;
    CHECK_EQ(json_array_size(list), (size_t)n_in * j.nchannels);
    CHECK(json_array_size(list) * w <= sizeof samples);
    json_array_foreach(list, i, v)
    {
        uint32_t x = (uint32_t)json_integer_value(v);
        CHECK(json_is_integer(v));
        for (k = 0; k < w; k++)
            samples[i * w + k] = (uint8_t)(x >> (8 * k)); /* little-endian (protocol.md 2) */
    }

    CHECK_EQ(gstp_parse_block(fr, &p), GSTP_OK);
    CHECK_EQ(p.hdr.seq, j.seq);
    CHECK_EQ(p.hdr.t0_ns, j.t0_ns);
    CHECK_EQ(p.hdr.sample_rate, j.sample_rate);
    CHECK_EQ(p.hdr.channel_mask, j.channel_mask);
    CHECK_EQ(p.hdr.nsamples, j.nsamples);
    CHECK_EQ(p.hdr.first_sample, j.first_sample);
    CHECK_EQ(p.hdr.time_quality, j.time_quality);
    CHECK_EQ(p.hdr.sample_fmt, j.sample_fmt);
    CHECK_EQ(p.hdr.nchannels, j.nchannels);
    CHECK_EQ(p.hdr.chunk_index, j.chunk_index);
    CHECK_EQ(p.hdr.chunk_count, j.chunk_count);
    CHECK_EQ(p.hdr.codec, j.codec);
    CHECK_EQ(p.hdr.n_in_chunk, n_in);
    CHECK_EQ(p.event.trigger_ns, ev.trigger_ns);
    CHECK_EQ(p.event.trigger, ev.trigger);
    CHECK_EQ(p.event.pretrigger, ev.pretrigger);
    CHECK_EQ(p.event.value_permille, ev.value_permille);
    CHECK_EQ(p.event.channel, ev.channel);
    if (j.codec == GSTP_CODEC_WCODEC) {
        /* codec 1: the sample bytes are the segment; it decodes (into the block, here from set
         * 0) to the listed values; the segment re-encodes to the same frame, and the terminal
         * helper (deterministic encoder) produces the same frame from the raw values. */
        static uint8_t seg[GSTP_MAX_PAYLOAD], blk[GSTP_MAX_BLOCK_SAMPLES * 16 * 4];
        size_t seg_len = unhex(jstr(f, "segment"), seg, sizeof seg);
        uint32_t period = (uint32_t)jint(f, "period_hint");
        uint16_t n_out = 0;
        CHECK_EQ(j.first_sample, 0);
        CHECK_EQ(p.samples_len, seg_len);
        CHECK(memcmp(p.samples, seg, seg_len) == 0);
        CHECK_EQ(gstp_block_decode_chunk(&p, blk, sizeof blk), GSTP_OK);
        CHECK(memcmp(blk, samples, json_array_size(list) * w) == 0);
        *enc_len = gstp_encode_block_segment(enc, GSTP_MAX_FRAME, &j,
                                             fr->type == GSTP_EVENT ? &ev : NULL, seg, seg_len,
                                             n_in);
        if (n_in == j.nsamples) {
            static uint8_t enc2[GSTP_MAX_FRAME];
            int n2 = gstp_encode_block_wcodec(enc2, sizeof enc2, &j,
                                              fr->type == GSTP_EVENT ? &ev : NULL, samples,
                                              period, GSTP_MAX_PAYLOAD, &n_out);
            CHECK_EQ(n2, *enc_len);
            CHECK_EQ(n_out, n_in);
            CHECK(memcmp(enc2, enc, (size_t)n2) == 0);
        }
        return;
    }
    CHECK_EQ(p.samples_len, json_array_size(list) * w);
    /* each sample value, sign-extended from its wire width */
    json_array_foreach(list, i, v)
    {
        const uint8_t *q = p.samples + i * w;
        int64_t got = w == 4 ? (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 |
                                         (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24)
                             : (int16_t)((uint16_t)q[0] | (uint16_t)q[1] << 8);
        CHECK_EQ(got, json_integer_value(v));
    }
    *enc_len = gstp_encode_block(enc, GSTP_MAX_FRAME, &j, fr->type == GSTP_EVENT ? &ev : NULL,
                                 samples, n_in);
}

static void status_check(const gstp_frame_t *fr, fields_t *f, uint8_t *enc, int *enc_len)
{
    gstp_status_t p, j;

    memset(&j, 0, sizeof j);
    j.time_ns = (int64_t)jint(f, "time_ns");
    j.rsrp_dbm = (int16_t)jint(f, "rsrp_dbm");
    j.rssi_dbm = (int16_t)jint(f, "rssi_dbm");
    j.csq = (uint8_t)jint(f, "csq");
    j.gps_fix = (uint8_t)jint(f, "gps_fix");
    j.gps_sats = (uint8_t)jint(f, "gps_sats");
    j.time_quality = (uint8_t)jint(f, "time_quality");
    j.supply_mv = (uint16_t)jint(f, "supply_mv");
    j.temp_c10 = (int16_t)jint(f, "temp_c10");
    j.buffer_permille = (uint16_t)jint(f, "buffer_permille");
    j.uptime_s = (uint32_t)jint(f, "uptime_s");
    j.buffered_blocks = (uint32_t)jint(f, "buffered_blocks");
    CHECK_EQ(gstp_parse_status(fr, &p), GSTP_OK);
    CHECK_EQ(p.time_ns, j.time_ns);
    CHECK_EQ(p.rsrp_dbm, j.rsrp_dbm);
    CHECK_EQ(p.rssi_dbm, j.rssi_dbm);
    CHECK_EQ(p.csq, j.csq);
    CHECK_EQ(p.gps_fix, j.gps_fix);
    CHECK_EQ(p.gps_sats, j.gps_sats);
    CHECK_EQ(p.time_quality, j.time_quality);
    CHECK_EQ(p.supply_mv, j.supply_mv);
    CHECK_EQ(p.temp_c10, j.temp_c10);
    CHECK_EQ(p.buffer_permille, j.buffer_permille);
    CHECK_EQ(p.uptime_s, j.uptime_s);
    CHECK_EQ(p.buffered_blocks, j.buffered_blocks);
    *enc_len = gstp_encode_status(enc, GSTP_MAX_FRAME, &j);
}

static void cmd_check(const gstp_frame_t *fr, fields_t *f, uint8_t *enc, int *enc_len)
{
    uint8_t tlv[GSTP_MAX_TLV];
    int is_cmd = fr->type == GSTP_COMMAND;
    json_t *list;
    uint64_t id = (uint64_t)jint(f, "id");
    uint16_t code = (uint16_t)jint(f, is_cmd ? "verb" : "status"), tlv_len;

    list = jget(f, is_cmd ? "args" : "results");
    tlv_len = tlv_from_json(list, tlv, sizeof tlv);
    if (is_cmd) {
        gstp_command_t p, j = {id, code, tlv_len, tlv};
        CHECK_EQ(gstp_parse_command(fr, &p), GSTP_OK);
        CHECK_EQ(p.id, id);
        CHECK_EQ(p.verb, code);
        tlv_compare(p.tlv, p.tlv_len, list);
        *enc_len = gstp_encode_command(enc, GSTP_MAX_FRAME, &j);
    } else {
        gstp_result_t p, j = {id, code, tlv_len, tlv};
        CHECK_EQ(gstp_parse_result(fr, &p), GSTP_OK);
        CHECK_EQ(p.id, id);
        CHECK_EQ(p.status, code);
        tlv_compare(p.tlv, p.tlv_len, list);
        *enc_len = gstp_encode_result(enc, GSTP_MAX_FRAME, &j);
    }
}

static void small_check(const gstp_frame_t *fr, fields_t *f, uint8_t *enc, int *enc_len)
{
    switch (fr->type) {
    case GSTP_CHALLENGE: {
        gstp_challenge_t p, j;
        j.version = (uint8_t)jint(f, "version");
        jhex(f, "nonce", j.nonce, sizeof j.nonce);
        CHECK_EQ(gstp_parse_challenge(fr, &p), GSTP_OK);
        CHECK_EQ(p.version, j.version);
        CHECK(memcmp(p.nonce, j.nonce, sizeof j.nonce) == 0);
        *enc_len = gstp_encode_challenge(enc, GSTP_MAX_FRAME, &j);
        break;
    }
    case GSTP_AUTH: {
        gstp_auth_t p, j;
        jhex(f, "mac", j.mac, sizeof j.mac);
        CHECK_EQ(gstp_parse_auth(fr, &p), GSTP_OK);
        CHECK(memcmp(p.mac, j.mac, sizeof j.mac) == 0);
        *enc_len = gstp_encode_auth(enc, GSTP_MAX_FRAME, &j);
        break;
    }
    case GSTP_WELCOME: {
        gstp_welcome_t p, j;
        j.server_time_ns = (int64_t)jint(f, "server_time_ns");
        j.heartbeat_s = (uint16_t)jint(f, "heartbeat_s");
        j.ack_window = (uint16_t)jint(f, "ack_window");
        j.resume_seq = (uint64_t)jint(f, "resume_seq");
        j.session_id = (uint32_t)jint(f, "session_id");
        j.codecs = (uint32_t)jint(f, "codecs");
        CHECK_EQ(gstp_parse_welcome(fr, &p), GSTP_OK);
        CHECK_EQ(p.codecs, j.codecs);
        CHECK_EQ(p.server_time_ns, j.server_time_ns);
        CHECK_EQ(p.heartbeat_s, j.heartbeat_s);
        CHECK_EQ(p.ack_window, j.ack_window);
        CHECK_EQ(p.resume_seq, j.resume_seq);
        CHECK_EQ(p.session_id, j.session_id);
        *enc_len = gstp_encode_welcome(enc, GSTP_MAX_FRAME, &j);
        break;
    }
    case GSTP_ACK: {
        gstp_ack_t p, j;
        j.seq = (uint64_t)jint(f, "seq");
        CHECK_EQ(gstp_parse_ack(fr, &p), GSTP_OK);
        CHECK_EQ(p.seq, j.seq);
        *enc_len = gstp_encode_ack(enc, GSTP_MAX_FRAME, &j);
        break;
    }
    case GSTP_PING:
    case GSTP_PONG: {
        gstp_ping_t p, j;
        j.token = (uint32_t)jint(f, "token");
        j.sender_time_ns = (int64_t)jint(f, "sender_time_ns");
        CHECK_EQ(gstp_parse_ping(fr, &p), GSTP_OK);
        CHECK_EQ(p.token, j.token);
        CHECK_EQ(p.sender_time_ns, j.sender_time_ns);
        *enc_len = fr->type == GSTP_PING ? gstp_encode_ping(enc, GSTP_MAX_FRAME, &j)
                                         : gstp_encode_pong(enc, GSTP_MAX_FRAME, &j);
        break;
    }
    case GSTP_ERROR: {
        gstp_error_t p, j;
        memset(&j, 0, sizeof j);
        j.code = (uint16_t)jint(f, "code");
        j.frame_type = (uint8_t)jint(f, "frame_type");
        snprintf(j.message, sizeof j.message, "%s", jstr(f, "message"));
        CHECK_EQ(gstp_parse_error(fr, &p), GSTP_OK);
        CHECK_EQ(p.code, j.code);
        CHECK_EQ(p.frame_type, j.frame_type);
        CHECK(strcmp(p.message, j.message) == 0);
        *enc_len = gstp_encode_error(enc, GSTP_MAX_FRAME, &j);
        break;
    }
    default:
        fail_msg("%s: no check for frame type 0x%02x", g_name, fr->type);
    }
}

/* Decodes one vector's bytes: exactly one frame, nothing skipped or left over. */
static void decode_one(const uint8_t *b, size_t n, uint8_t *decbuf, gstp_frame_t *fr)
{
    gstp_decoder_t d;

    CHECK_EQ(gstp_decoder_init(&d, decbuf, 2 * GSTP_MAX_FRAME), GSTP_OK);
    CHECK_EQ(gstp_decoder_feed(&d, b, n), n);
    CHECK_EQ(gstp_decoder_next(&d, fr), GSTP_FRAME);
    CHECK_EQ(gstp_decoder_pending(&d), 0);
    CHECK_EQ(d.stats.skipped_bytes, 0);
}

static void test_frames(void **state)
{
    static uint8_t decbuf[2 * GSTP_MAX_FRAME];
    json_t *list = json_object_get(g_doc, "frames"), *v;
    unsigned seen[256] = {0};
    size_t i;
    (void)state;

    assert_true(json_array_size(list) > 0);
    json_array_foreach(list, i, v)
    {
        fields_t top = fields_of(v), ff;
        uint8_t b[GSTP_MAX_FRAME], enc[GSTP_MAX_FRAME];
        gstp_frame_t fr;
        size_t n;
        long long hcheck;
        int enc_len = 0;

        g_name = jstr(&top, "name");
        n = unhex(jstr(&top, "hex"), b, sizeof b);
        decode_one(b, n, decbuf, &fr);
        /* header fields */
        CHECK_EQ(fr.type, jint(&top, "type"));
        CHECK(strcmp(gstp_type_name(fr.type), jstr(&top, "type_name")) == 0);
        CHECK_EQ(fr.version, jint(&top, "version"));
        CHECK_EQ(fr.flags, jint(&top, "flags"));
        CHECK_EQ(fr.len, jint(&top, "len"));
        hcheck = jint(&top, "hcheck");
        CHECK_EQ((uint32_t)b[8] | (uint32_t)b[9] << 8, hcheck);
        CHECK_EQ(gstp_crc32c(0, b, 8) & 0xFFFFu, hcheck);
        CHECK_EQ(gstp_crc32c(0, b, n - 4), jint(&top, "crc"));
        seen[fr.type]++;
        /* payload fields, decode and encode direction */
        ff = fields_of(jget(&top, "fields"));
        switch (fr.type) {
        case GSTP_HELLO:
            hello_check(&fr, &ff, enc, &enc_len);
            break;
        case GSTP_REJECT:
        case GSTP_BYE:
            reject_check(&fr, &ff, enc, &enc_len);
            break;
        case GSTP_WAVEFORM:
        case GSTP_EVENT:
            block_check(&fr, &ff, enc, &enc_len);
            break;
        case GSTP_STATUS:
            status_check(&fr, &ff, enc, &enc_len);
            break;
        case GSTP_COMMAND:
        case GSTP_RESULT:
            cmd_check(&fr, &ff, enc, &enc_len);
            break;
        default:
            small_check(&fr, &ff, enc, &enc_len);
            break;
        }
        fields_done(&ff);
        fields_done(&top);
        CHECK((size_t)enc_len == n);
        if (fr.flags)
            CHECK_EQ(gstp_frame_set_flags(enc, (size_t)enc_len, fr.flags), GSTP_OK);
        CHECK(memcmp(enc, b, n) == 0);
    }
    /* every frame type of protocol.md 4 has at least one vector; several COMMAND verbs */
    g_name = "coverage";
    CHECK(seen[GSTP_HELLO] && seen[GSTP_CHALLENGE] && seen[GSTP_AUTH] && seen[GSTP_WELCOME]);
    CHECK(seen[GSTP_REJECT] && seen[GSTP_BYE] && seen[GSTP_STATUS] && seen[GSTP_ACK]);
    CHECK(seen[GSTP_WAVEFORM] >= 4 && seen[GSTP_EVENT] && seen[GSTP_RESULT]);
    CHECK(seen[GSTP_COMMAND] >= 5 && seen[GSTP_PING] && seen[GSTP_PONG] && seen[GSTP_ERROR]);
}

/* The chunked WAVEFORM vectors form one complete block of at least 3 chunks. */
static void test_chunked_block(void **state)
{
    static uint8_t decbuf[2 * GSTP_MAX_FRAME];
    json_t *list = json_object_get(g_doc, "frames"), *v;
    size_t i;
    unsigned chunks = 0, next_sample = 0, count = 0;
    (void)state;

    g_name = "chunked WAVEFORM";
    json_array_foreach(list, i, v)
    {
        uint8_t b[GSTP_MAX_FRAME];
        gstp_frame_t fr;
        gstp_block_t blk;
        size_t n = unhex(json_string_value(json_object_get(v, "hex")), b, sizeof b);
        decode_one(b, n, decbuf, &fr);
        if (fr.type != GSTP_WAVEFORM || gstp_parse_block(&fr, &blk) != GSTP_OK ||
            blk.hdr.chunk_count < 3)
            continue;
        CHECK_EQ(blk.hdr.chunk_index, chunks);
        CHECK_EQ(blk.hdr.first_sample, next_sample);
        count = blk.hdr.chunk_count;
        next_sample += blk.hdr.n_in_chunk;
        chunks++;
        if (chunks == count)
            CHECK_EQ(next_sample, blk.hdr.nsamples);
    }
    CHECK(count >= 3);
    CHECK_EQ(chunks, count);
}

static void test_crc(void **state)
{
    json_t *list = json_object_get(g_doc, "crc32c"), *v;
    size_t i;
    (void)state;

    assert_true(json_array_size(list) >= 4);
    json_array_foreach(list, i, v)
    {
        fields_t f = fields_of(v);
        uint8_t b[256];
        size_t n;
        g_name = jstr(&f, "name");
        n = unhex(jstr(&f, "input_hex"), b, sizeof b);
        CHECK_EQ(gstp_crc32c(0, b, n), jint(&f, "crc32c"));
        fields_done(&f);
    }
}

static void test_hmac(void **state)
{
    json_t *list = json_object_get(g_doc, "hmac"), *v;
    size_t i;
    (void)state;

    assert_true(json_array_size(list) >= 1);
    json_array_foreach(list, i, v)
    {
        fields_t f = fields_of(v);
        uint8_t secret[GSTP_SECRET_LEN], nonce[GSTP_NONCE_LEN], hello[GSTP_MAX_PAYLOAD];
        uint8_t want[GSTP_MAC_LEN], mac[GSTP_MAC_LEN];
        crypto_auth_hmacsha256_state st;
        size_t n;
        g_name = jstr(&f, "name");
        jhex(&f, "secret_hex", secret, sizeof secret);
        jhex(&f, "nonce_hex", nonce, sizeof nonce);
        n = unhex(jstr(&f, "hello_payload_hex"), hello, sizeof hello);
        jhex(&f, "mac_hex", want, sizeof want);
        fields_done(&f);
        crypto_auth_hmacsha256_init(&st, secret, sizeof secret);
        crypto_auth_hmacsha256_update(&st, nonce, sizeof nonce);
        crypto_auth_hmacsha256_update(&st, hello, n);
        crypto_auth_hmacsha256_final(&st, mac);
        CHECK(memcmp(mac, want, sizeof mac) == 0);
    }
}

static int rc_of(const char *name)
{
    if (!strcmp(name, "GSTP_E_TRUNC"))
        return GSTP_E_TRUNC;
    if (!strcmp(name, "GSTP_E_RANGE"))
        return GSTP_E_RANGE;
    if (!strcmp(name, "GSTP_E_TLV"))
        return GSTP_E_TLV;
    fail_msg("%s: unknown parse result %s", g_name, name);
    return 0;
}

static int parse_any(const gstp_frame_t *fr)
{
    union {
        gstp_hello_t h;
        gstp_command_t c;
        gstp_block_t b;
    } u;
    switch (fr->type) {
    case GSTP_HELLO:
        return gstp_parse_hello(fr, &u.h);
    case GSTP_COMMAND:
        return gstp_parse_command(fr, &u.c);
    case GSTP_WAVEFORM:
    case GSTP_EVENT: {
        /* A codec-1 chunk is checked further in its block (gstp_block_decode_chunk); the
         * invalid vectors' chunks start their blocks. */
        static uint8_t blk[GSTP_MAX_BLOCK_SAMPLES * 16 * 4];
        int rc = gstp_parse_block(fr, &u.b);
        if (rc == GSTP_OK && u.b.hdr.codec == GSTP_CODEC_WCODEC && u.b.hdr.first_sample == 0)
            rc = gstp_block_decode_chunk(&u.b, blk, sizeof blk);
        return rc;
    }
    default:
        fail_msg("%s: no parser wired for type 0x%02x", g_name, fr->type);
        return 0;
    }
}

static void test_invalid(void **state)
{
    static uint8_t decbuf[2 * GSTP_MAX_FRAME];
    json_t *list = json_object_get(g_doc, "invalid"), *v;
    size_t i;
    (void)state;

    assert_true(json_array_size(list) >= 4);
    json_array_foreach(list, i, v)
    {
        fields_t f = fields_of(v), e;
        uint8_t b[GSTP_MAX_FRAME];
        gstp_decoder_t d;
        gstp_frame_t fr;
        const char *parse;
        size_t n;
        int got = 0;
        g_name = jstr(&f, "name");
        n = unhex(jstr(&f, "hex"), b, sizeof b);
        (void)jstr(&f, "receiver_action");
        e = fields_of(jget(&f, "expect"));
        gstp_decoder_init(&d, decbuf, sizeof decbuf);
        CHECK_EQ(gstp_decoder_feed(&d, b, n), n);
        while (gstp_decoder_next(&d, &fr) == GSTP_FRAME) {
            got++;
            parse = json_string_value(json_object_get(e.o, "parse"));
            CHECK(parse && *parse);
            CHECK_EQ(parse_any(&fr), rc_of(parse));
        }
        CHECK_EQ(got, jint(&e, "frames"));
        CHECK_EQ(d.stats.header_errors, jint(&e, "header_errors"));
        CHECK_EQ(d.stats.crc_errors, jint(&e, "crc_errors"));
        parse = jstr(&e, "parse");
        CHECK(got ? *parse != 0 : *parse == 0);
        fields_done(&e);
        fields_done(&f);
    }
}

static int setup(void **state)
{
    json_error_t err;
    (void)state;
    if (sodium_init() < 0)
        return -1;
    g_doc = json_load_file(GS_VECTORS_JSON, 0, &err);
    if (!g_doc) {
        fprintf(stderr, "%s:%d: %s\n", GS_VECTORS_JSON, err.line, err.text);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g_doc);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),  cmocka_unit_test(test_chunked_block),
        cmocka_unit_test(test_crc),     cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
