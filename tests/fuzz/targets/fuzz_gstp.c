/* libFuzzer target for the GSTP codec (src/gstp).
 *
 * 1. The input is fed to the decoder in several split patterns (all at once, byte by byte,
 *    pseudo-random pieces, 1024-byte Quectel-style segments) and with the minimum and a double
 *    buffer. Every pattern must return the same frames and statistics, and every byte fed must be
 *    accounted for (frame, skipped or pending).
 * 2. Every parser runs on every frame returned; a message that parses must re-encode, parse again
 *    and re-encode to identical bytes (the encoder never produces what the parser rejects).
 * 3. The raw input is also parsed as the payload of every frame type and walked as a TLV list.
 * 4. The input is reinterpreted as encoder input structs: whatever an encoder accepts must parse.
 * Any violated property calls abort() so libFuzzer (or the replay driver) reports it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gstp/gstp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static gstp_frame_t mkframe(uint8_t type, const uint8_t *p, size_t n)
{
    gstp_frame_t f;
    f.version = GSTP_VERSION;
    f.type = type;
    f.flags = 0;
    f.len = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
    f.payload = p;
    return f;
}

/* Re-encodes an accepted message (out1), parses that frame again with the same parser and
 * re-encodes the result (out2): both encodings must exist and be identical. */
static void check_fixpoint(const gstp_frame_t *f);

/* Encodes the message a parser produced; returns the frame length or a negative code. */
static int reencode(const gstp_frame_t *f, uint8_t *out, size_t cap, int *parse_rc)
{
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

    switch (f->type) {
    case GSTP_HELLO:
        if ((*parse_rc = gstp_parse_hello(f, &hello)) != GSTP_OK)
            return *parse_rc;
        CHECK(gstp_valid_id(hello.terminal_id));
        return gstp_encode_hello(out, cap, &hello);
    case GSTP_CHALLENGE:
        if ((*parse_rc = gstp_parse_challenge(f, &ch)) != GSTP_OK)
            return *parse_rc;
        return gstp_encode_challenge(out, cap, &ch);
    case GSTP_AUTH:
        if ((*parse_rc = gstp_parse_auth(f, &au)) != GSTP_OK)
            return *parse_rc;
        return gstp_encode_auth(out, cap, &au);
    case GSTP_WELCOME:
        if ((*parse_rc = gstp_parse_welcome(f, &we)) != GSTP_OK)
            return *parse_rc;
        return gstp_encode_welcome(out, cap, &we);
    case GSTP_REJECT:
    case GSTP_BYE:
        if ((*parse_rc = gstp_parse_reject(f, &rj)) != GSTP_OK)
            return *parse_rc;
        CHECK(strlen(rj.message) <= GSTP_MAX_STR);
        return f->type == GSTP_REJECT ? gstp_encode_reject(out, cap, &rj)
                                      : gstp_encode_bye(out, cap, &rj);
    case GSTP_STATUS:
        if ((*parse_rc = gstp_parse_status(f, &st)) != GSTP_OK)
            return *parse_rc;
        return gstp_encode_status(out, cap, &st);
    case GSTP_ACK:
        if ((*parse_rc = gstp_parse_ack(f, &ak)) != GSTP_OK)
            return *parse_rc;
        return gstp_encode_ack(out, cap, &ak);
    case GSTP_COMMAND:
        if ((*parse_rc = gstp_parse_command(f, &cm)) != GSTP_OK)
            return *parse_rc;
        CHECK(cm.tlv_len <= GSTP_MAX_TLV);
        return gstp_encode_command(out, cap, &cm);
    case GSTP_RESULT:
        if ((*parse_rc = gstp_parse_result(f, &rs)) != GSTP_OK)
            return *parse_rc;
        CHECK(rs.tlv_len <= GSTP_MAX_TLV);
        return gstp_encode_result(out, cap, &rs);
    case GSTP_PING:
    case GSTP_PONG:
        if ((*parse_rc = gstp_parse_ping(f, &pi)) != GSTP_OK)
            return *parse_rc;
        return f->type == GSTP_PING ? gstp_encode_ping(out, cap, &pi)
                                    : gstp_encode_pong(out, cap, &pi);
    case GSTP_ERROR:
        if ((*parse_rc = gstp_parse_error(f, &er)) != GSTP_OK)
            return *parse_rc;
        return gstp_encode_error(out, cap, &er);
    case GSTP_WAVEFORM:
    case GSTP_EVENT:
        if ((*parse_rc = gstp_parse_block(f, &bl)) != GSTP_OK)
            return *parse_rc;
        CHECK(bl.samples >= f->payload && bl.samples + bl.samples_len <= f->payload + f->len);
        {
            /* The receiver's next step: raw sets copied, a codec-1 segment decoded into the
             * block (chunk rule of protocol.md 7.4); whatever it holds, never out of bounds. */
            static uint8_t blk[GSTP_MAX_BLOCK_SAMPLES * GSTP_MAX_CHANNELS * 4];
            int drc = gstp_block_decode_chunk(&bl, blk, sizeof blk);
            CHECK(drc == GSTP_OK || drc == GSTP_E_RANGE);
            CHECK(bl.hdr.codec != GSTP_CODEC_RAW || drc == GSTP_OK);
        }
        if (bl.hdr.codec == GSTP_CODEC_WCODEC)
            return gstp_encode_block_segment(out, cap, &bl.hdr,
                                             f->type == GSTP_EVENT ? &bl.event : NULL, bl.samples,
                                             bl.samples_len, bl.hdr.n_in_chunk);
        return gstp_encode_block(out, cap, &bl.hdr, f->type == GSTP_EVENT ? &bl.event : NULL,
                                 bl.samples, bl.hdr.n_in_chunk);
    default:
        *parse_rc = GSTP_E_TYPE;
        return GSTP_E_TYPE;
    }
}

/* Runs every parser on f: each must give E_TYPE unless it handles f->type. */
static void parse_every(const gstp_frame_t *f)
{
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
    uint8_t t = f->type;

    CHECK((gstp_parse_hello(f, &hello) == GSTP_E_TYPE) == (t != GSTP_HELLO));
    CHECK((gstp_parse_challenge(f, &ch) == GSTP_E_TYPE) == (t != GSTP_CHALLENGE));
    CHECK((gstp_parse_auth(f, &au) == GSTP_E_TYPE) == (t != GSTP_AUTH));
    CHECK((gstp_parse_welcome(f, &we) == GSTP_E_TYPE) == (t != GSTP_WELCOME));
    CHECK((gstp_parse_reject(f, &rj) == GSTP_E_TYPE) == (t != GSTP_REJECT && t != GSTP_BYE));
    CHECK((gstp_parse_status(f, &st) == GSTP_E_TYPE) == (t != GSTP_STATUS));
    CHECK((gstp_parse_ack(f, &ak) == GSTP_E_TYPE) == (t != GSTP_ACK));
    CHECK((gstp_parse_command(f, &cm) == GSTP_E_TYPE) == (t != GSTP_COMMAND));
    CHECK((gstp_parse_result(f, &rs) == GSTP_E_TYPE) == (t != GSTP_RESULT));
    CHECK((gstp_parse_ping(f, &pi) == GSTP_E_TYPE) == (t != GSTP_PING && t != GSTP_PONG));
    CHECK((gstp_parse_error(f, &er) == GSTP_E_TYPE) == (t != GSTP_ERROR));
    CHECK((gstp_parse_block(f, &bl) == GSTP_E_TYPE) == (t != GSTP_WAVEFORM && t != GSTP_EVENT));
    (void)gstp_type_name(t);
    check_fixpoint(f);
}

static void check_fixpoint(const gstp_frame_t *f)
{
    static uint8_t out1[GSTP_MAX_FRAME], out2[GSTP_MAX_FRAME];
    gstp_frame_t g;
    int rc, n1, n2;

    n1 = reencode(f, out1, sizeof out1, &rc);
    if (rc != GSTP_OK)
        return;
    CHECK(n1 >= (int)(GSTP_HEADER_LEN + GSTP_TRAILER_LEN)); /* accepted => encodable */
    g = mkframe(f->type, out1 + GSTP_HEADER_LEN, (size_t)n1 - GSTP_HEADER_LEN - GSTP_TRAILER_LEN);
    n2 = reencode(&g, out2, sizeof out2, &rc);
    CHECK(rc == GSTP_OK);
    CHECK(n2 == n1 && memcmp(out1, out2, (size_t)n1) == 0);
}

/* ---- Decoder runs -----------------------------------------------------------------------------
 */

typedef struct {
    uint64_t nframes;
    uint32_t digest; /* CRC-32C over every returned frame's type, flags, len and payload */
    gstp_decoder_stats_t stats;
    size_t pending;
} summary_t;

static void take_frames(gstp_decoder_t *d, summary_t *s, size_t *frame_bytes, int parse)
{
    gstp_frame_t f;
    uint8_t meta[5];

    while (gstp_decoder_next(d, &f) == GSTP_FRAME) {
        CHECK(f.len <= GSTP_MAX_PAYLOAD);
        CHECK(f.version >= 1 && f.version <= 127);
        meta[0] = f.type;
        meta[1] = f.flags;
        meta[2] = f.version;
        meta[3] = (uint8_t)f.len;
        meta[4] = (uint8_t)(f.len >> 8);
        s->digest = gstp_crc32c(s->digest, meta, sizeof meta);
        s->digest = gstp_crc32c(s->digest, f.payload, f.len);
        s->nframes++;
        *frame_bytes += GSTP_HEADER_LEN + f.len + GSTP_TRAILER_LEN;
        if (parse)
            parse_every(&f);
    }
}

/* pattern 0: whole input; 1: byte by byte; 2: pseudo-random pieces; 3: 1024-byte segments. */
static void run_decoder(const uint8_t *data, size_t size, size_t cap, int pattern, int parse,
                        summary_t *s)
{
    static uint8_t rx[GSTP_MAX_FRAME * 2];
    gstp_decoder_t d;
    size_t off = 0, fed = 0, frame_bytes = 0;
    uint32_t lcg = (uint32_t)size * 2654435761u;

    memset(s, 0, sizeof *s);
    CHECK(gstp_decoder_init(&d, rx, cap) == GSTP_OK);
    while (off < size) {
        size_t piece = size - off, used;
        if (pattern == 1)
            piece = 1;
        else if (pattern == 2) {
            lcg = lcg * 1664525u + 1013904223u;
            piece = 1 + (lcg >> 16) % 300;
        } else if (pattern == 3)
            piece = 1024;
        if (piece > size - off)
            piece = size - off;
        used = gstp_decoder_feed(&d, data + off, piece);
        fed += used;
        take_frames(&d, s, &frame_bytes, parse);
        /* After NEED_MORE there is always room: a full buffer would stall the caller. */
        CHECK(used > 0);
        CHECK(gstp_decoder_pending(&d) < GSTP_MAX_FRAME);
        off += used;
    }
    s->stats = d.stats;
    s->pending = gstp_decoder_pending(&d);
    CHECK(d.stats.frames == s->nframes);
    CHECK(frame_bytes + d.stats.skipped_bytes + s->pending == fed && fed == size);
}

static int same_summary(const summary_t *a, const summary_t *b)
{
    return a->nframes == b->nframes && a->digest == b->digest && a->pending == b->pending &&
           a->stats.frames == b->stats.frames && a->stats.skipped_bytes == b->stats.skipped_bytes &&
           a->stats.header_errors == b->stats.header_errors &&
           a->stats.crc_errors == b->stats.crc_errors;
}

/* ---- Raw payloads, TLV, encoders --------------------------------------------------------------
 */

static void walk_tlv(const uint8_t *p, size_t n)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    char str[GSTP_MAX_STR + 1];
    int rc, count = 0;

    gstp_tlv_iter_init(&it, p, n);
    while ((rc = gstp_tlv_next(&it, &t)) == 1) {
        CHECK(t.value >= p && t.value + t.len <= p + n);
        (void)gstp_tlv_u8(&t, &u8);
        (void)gstp_tlv_u16(&t, &u16);
        (void)gstp_tlv_u32(&t, &u32);
        (void)gstp_tlv_u64(&t, &u64);
        (void)gstp_tlv_i64(&t, &i64);
        if (gstp_tlv_str(&t, str, sizeof str) == GSTP_OK)
            CHECK(strlen(str) == t.len);
        count++;
    }
    CHECK(rc == 0 || rc == GSTP_E_TLV);
    rc = gstp_tlv_find(p, n, n ? p[0] : 0, &t);
    CHECK(rc == 1 || rc == 0 || rc == GSTP_E_TLV);
    CHECK(rc != 0 || count == 0); /* the first element's own tag is always found */
}

/* Copies the input over an encoder's input struct (strings may end up unterminated, enums and
 * floats arbitrary): the encoder must not over-read, and whatever it accepts must parse. */
static void encoders_from_bytes(const uint8_t *data, size_t size)
{
    static uint8_t out[GSTP_MAX_FRAME], samples[GSTP_MAX_PAYLOAD];
    static union {
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
        struct {
            gstp_block_hdr_t h;
            gstp_event_hdr_t ev;
            uint16_t n;
        } bl;
    } u;
    static const size_t caps[3] = {sizeof out, 64, 20};
    uint8_t dummy[1];
    gstp_frame_t f;
    size_t ci;
    int which, n, rc;

    if (size < 2)
        return;
    which = data[0] % 14;
    memset(&u, 0, sizeof u);
    memcpy(&u, data + 1, size - 1 < sizeof u ? size - 1 : sizeof u);
    memset(samples, 0, sizeof samples);
    memcpy(samples, data, size < sizeof samples ? size : sizeof samples);
    for (ci = 0; ci < 3; ci++) {
        size_t cap = caps[ci];
        switch (which) {
        case 0:
            n = gstp_encode_hello(out, cap, &u.hello);
            break;
        case 1:
            n = gstp_encode_challenge(out, cap, &u.ch);
            break;
        case 2:
            n = gstp_encode_auth(out, cap, &u.au);
            break;
        case 3:
            n = gstp_encode_welcome(out, cap, &u.we);
            break;
        case 4:
            n = gstp_encode_reject(out, cap, &u.rj);
            break;
        case 5:
            n = gstp_encode_bye(out, cap, &u.rj);
            break;
        case 6:
            n = gstp_encode_status(out, cap, &u.st);
            break;
        case 7:
            n = gstp_encode_ack(out, cap, &u.ak);
            break;
        case 8: /* the TLV pointer comes from the input too, bounded by its length */
            u.cm.tlv = samples;
            u.cm.tlv_len = (uint16_t)(u.cm.tlv_len % (GSTP_MAX_TLV + 8));
            n = gstp_encode_command(out, cap, &u.cm);
            break;
        case 9:
            u.rs.tlv = samples;
            u.rs.tlv_len = (uint16_t)(u.rs.tlv_len % (GSTP_MAX_TLV + 8));
            n = gstp_encode_result(out, cap, &u.rs);
            break;
        case 10:
            n = gstp_encode_ping(out, cap, &u.pi);
            break;
        case 11:
            n = gstp_encode_error(out, cap, &u.er);
            break;
        default: /* 12 WAVEFORM, 13 EVENT; samples has GSTP_MAX_PAYLOAD bytes, enough for any
                    chunk the encoder accepts */
            n = gstp_encode_block(out, cap, &u.bl.h, which == 13 ? &u.bl.ev : NULL, samples,
                                  u.bl.n);
            break;
        }
        if (n < 0)
            continue;
        CHECK((size_t)n <= cap && (size_t)n >= GSTP_HEADER_LEN + GSTP_TRAILER_LEN);
        f = mkframe(out[3], out + GSTP_HEADER_LEN, (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN);
        CHECK(f.len == (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN);
        (void)reencode(&f, dummy, 0, &rc); /* parse only: cap 0 makes the encode fail */
        CHECK(rc == GSTP_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t types[] = {GSTP_HELLO,  GSTP_CHALLENGE, GSTP_AUTH,     GSTP_WELCOME,
                                    GSTP_REJECT, GSTP_BYE,       GSTP_WAVEFORM, GSTP_STATUS,
                                    GSTP_EVENT,  GSTP_ACK,       GSTP_COMMAND,  GSTP_RESULT,
                                    GSTP_PING,   GSTP_PONG,      GSTP_ERROR,    0x7E};
    static uint8_t copy[GSTP_MAX_FRAME + 16];
    summary_t ref, s;
    char id[GSTP_MAX_ID + 8];
    size_t i;
    int pattern;

    if (size > 1 << 16)
        return 0;

    /* 1. Decoder, split patterns and buffer sizes must agree. */
    run_decoder(data, size, GSTP_MAX_FRAME * 2, 0, 1, &ref);
    for (pattern = 1; pattern < 4; pattern++) {
        if (pattern == 1 && size > 8192)
            continue; /* byte-at-a-time is slow on big inputs and adds nothing there */
        run_decoder(data, size, pattern == 3 ? GSTP_MAX_FRAME * 2 : GSTP_MAX_FRAME, pattern, 0, &s);
        CHECK(same_summary(&ref, &s));
    }

    /* 3. The raw input as a payload of every type, and as a TLV list. */
    for (i = 0; i < sizeof types; i++) {
        gstp_frame_t f = mkframe(types[i], data, size);
        parse_every(&f);
    }
    walk_tlv(data, size);

    /* gstp_frame_set_flags on arbitrary bytes: only a well-formed frame is accepted, and stays
     * well-formed. */
    if (size <= sizeof copy) {
        memcpy(copy, data, size);
        if (gstp_frame_set_flags(copy, size, size ? data[0] : 0) == GSTP_OK) {
            summary_t one;
            run_decoder(copy, size, GSTP_MAX_FRAME, 0, 0, &one);
            CHECK(one.nframes == 1 && one.stats.skipped_bytes == 0);
        }
    }

    /* Terminal ids: compare with a straightforward reference. */
    {
        size_t n = size < sizeof id - 1 ? size : sizeof id - 1, k;
        int ok;
        memcpy(id, data, n);
        id[n] = '\0';
        n = strlen(id);
        ok = n >= 1 && n <= GSTP_MAX_ID;
        for (k = 0; k < n && ok; k++)
            ok = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
                        id[k]) != NULL;
        CHECK(gstp_valid_id(id) == ok);
    }

    /* 4. Encoders fed arbitrary structs. */
    encoders_from_bytes(data, size);
    return 0;
}
