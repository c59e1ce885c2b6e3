/* Generates the committed seed corpus of the GSTP fuzz target (tests/fuzz/corpus/gstp) with the
 * codec itself, and prints the worked examples of docs/protocol.md.
 *
 *   gen_gstp_corpus DIR     writes seed_*.bin files into DIR (deterministic output)
 *   gen_gstp_corpus --doc   prints hex dumps of a PING and a HELLO frame
 *
 * Seeds: one valid frame of every type, a whole session, multi-chunk EVENT blocks, frames mixed
 * with DTU registration/heartbeat strings and +QIURC lines (between and inside frames), damaged
 * headers and CRCs, truncations, and raw payloads for the parse-as-payload path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gstp/gstp.h"

typedef struct {
    uint8_t b[32768];
    size_t n;
} buf_t;

static void fail(const char *what)
{
    fprintf(stderr, "gen_gstp_corpus: %s\n", what);
    exit(1);
}

static void add(buf_t *s, const void *p, size_t n)
{
    if (s->n + n > sizeof s->b)
        fail("buffer full");
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void add_str(buf_t *s, const char *z)
{
    add(s, z, strlen(z));
}

/* Appends an encoder's result (frame length or negative error). */
static size_t frame(buf_t *s, int n)
{
    if (n <= 0)
        fail("encoder failed");
    s->n += (size_t)n;
    return (size_t)n;
}

#define ROOM(s) ((s)->b + (s)->n), (sizeof(s)->b - (s)->n)

static void example_hello(gstp_hello_t *h)
{
    memset(h, 0, sizeof *h);
    h->version_min = 1;
    h->version_max = 1;
    strcpy(h->terminal_id, "T-0001");
    strcpy(h->fw_version, "1.0.3");
    h->sample_rate = 6400;
    h->nominal_hz = 50;
    h->time_source = GSTP_TS_GNSS;
    h->time_quality = GSTP_TQ_GPS_LOCKED;
    h->nchannels = 1;
    h->channels[0].index = 0;
    h->channels[0].kind = GSTP_KIND_VOLTAGE;
    h->channels[0].phase = GSTP_PHASE_A;
    h->channels[0].unit = GSTP_UNIT_V;
    h->channels[0].scale = 0.01f;
    strcpy(h->channels[0].name, "Ua");
}

static void full_hello(gstp_hello_t *h)
{
    static const char *const names[7] = {"Ua", "Ub", "Uc", "Ia", "Ib", "Ic", "In"};
    uint8_t i;

    example_hello(h);
    h->version_max = 2;
    strcpy(h->terminal_id, "sub-12.feeder_3");
    strcpy(h->hw_version, "GS-T3 rev C");
    strcpy(h->imei, "866123456789012");
    strcpy(h->iccid, "89860412345678901234");
    h->sample_rate = 12800;
    h->vt_ratio = 100.0f;
    h->ct_ratio = 60.0f;
    h->buffer_blocks = 4096;
    h->nchannels = 7;
    for (i = 0; i < 7; i++) {
        h->channels[i].index = i;
        h->channels[i].kind = i < 3 ? GSTP_KIND_VOLTAGE : GSTP_KIND_CURRENT;
        h->channels[i].phase = (uint8_t)(i < 6 ? 1 + i % 3 : GSTP_PHASE_N);
        h->channels[i].unit = i < 3 ? GSTP_UNIT_V : GSTP_UNIT_A;
        h->channels[i].scale = i < 3 ? 0.01f : 0.001f;
        strcpy(h->channels[i].name, names[i]);
    }
}

static void hexdump(const char *title, const uint8_t *p, size_t n)
{
    size_t i;

    printf("%s (%zu bytes)\n", title, n);
    for (i = 0; i < n; i++)
        printf("%02x%s", p[i], (i + 1) % 16 == 0 || i + 1 == n ? "\n" : " ");
}

static int doc(void)
{
    uint8_t out[GSTP_MAX_FRAME];
    gstp_ping_t ping = {0x00000001u, 1700000000000000000LL};
    gstp_hello_t h;
    int n;

    n = gstp_encode_ping(out, sizeof out, &ping);
    if (n < 0)
        fail("ping");
    hexdump("PING token=1 time_ns=1700000000000000000", out, (size_t)n);
    example_hello(&h);
    n = gstp_encode_hello(out, sizeof out, &h);
    if (n < 0)
        fail("hello");
    hexdump("HELLO T-0001", out, (size_t)n);
    return 0;
}

static const char *g_dir; /* output directory (generator only; the codec has no globals) */
static int g_count;

static void save(const char *name, const buf_t *s)
{
    char path[1024];
    FILE *fp;

    snprintf(path, sizeof path, "%s/seed_%02d_%s.bin", g_dir, ++g_count, name);
    fp = fopen(path, "wb");
    if (!fp || fwrite(s->b, 1, s->n, fp) != s->n || fclose(fp) != 0)
        fail(path);
}

static void fix_header(uint8_t *fr)
{
    uint16_t c = (uint16_t)(gstp_crc32c(0, fr, 8) & 0xFFFF);
    fr[8] = (uint8_t)c;
    fr[9] = (uint8_t)(c >> 8);
}

/* Appends the chunks of one block: nch channels of int16, ns sample sets, chunks <= max bytes. */
static void block(buf_t *s, uint64_t seq, uint32_t mask, uint16_t ns, const gstp_event_hdr_t *ev,
                  size_t max_payload)
{
    static uint8_t samples[GSTP_MAX_PAYLOAD];
    gstp_block_hdr_t h;
    uint16_t cap, first = 0;
    uint8_t k = 0;
    unsigned nch = 0, i;
    uint32_t m;

    for (m = mask; m; m &= m - 1)
        nch++;
    for (i = 0; i < sizeof samples; i++)
        samples[i] = (uint8_t)(i * 13 + seq);
    cap = gstp_block_chunk_capacity((uint8_t)nch, GSTP_FMT_INT16, ev != NULL, max_payload);
    memset(&h, 0, sizeof h);
    h.seq = seq;
    h.t0_ns = 1700000000000000000LL + (int64_t)seq * 20000000;
    h.sample_rate = 6400;
    h.channel_mask = mask;
    h.nsamples = ns;
    h.time_quality = GSTP_TQ_GPS_LOCKED;
    h.sample_fmt = GSTP_FMT_INT16;
    h.nchannels = (uint8_t)nch;
    h.chunk_count = (uint8_t)((ns + cap - 1) / cap);
    while (first < ns) {
        uint16_t nin = (uint16_t)(ns - first < cap ? ns - first : cap);
        h.chunk_index = k++;
        h.first_sample = first;
        frame(s, gstp_encode_block(ROOM(s), &h, ev, samples, nin));
        first = (uint16_t)(first + nin);
    }
}

static void gen(void)
{
    static buf_t s, t;
    static const char *const dtu[] = {"866123456789012", "89860412345678901234",
                                      "REG:DTU-0042;IMEI=866123456789012;CSQ=23\r\n", "HEARTBEAT",
                                      "+QIURC: \"recv\",0\r\n"};
    static const char *const dtu_names[] = {"imei", "iccid", "reg", "heartbeat", "qiurc"};
    gstp_hello_t h;
    gstp_challenge_t ch;
    gstp_auth_t au;
    gstp_welcome_t we = {1700000000000000000LL, 30, 64, 41, 0x1234, 0};
    gstp_reject_t rj = {GSTP_REJ_BAD_AUTH, 60, "bad mac"};
    gstp_reject_t bye = {GSTP_REJ_REPLACED, 0, ""};
    gstp_status_t st;
    gstp_ack_t ak = {42};
    gstp_command_t cm;
    gstp_result_t rs;
    gstp_ping_t pi = {7, 1700000000000000000LL};
    gstp_error_t er = {GSTP_ERR_UNKNOWN_TYPE, 0x7E, "unknown type"};
    gstp_event_hdr_t ev = {1700000000010000000LL, GSTP_TRIG_DIP, 64, 612, 0};
    gstp_tlv_writer_t w;
    uint8_t args[64], res[64], payload[GSTP_MAX_PAYLOAD];
    size_t i, n;

    full_hello(&h);
    memset(&ch, 0, sizeof ch);
    ch.version = 1;
    for (i = 0; i < GSTP_NONCE_LEN; i++)
        ch.nonce[i] = (uint8_t)(i * 29 + 3);
    for (i = 0; i < GSTP_MAC_LEN; i++)
        au.mac[i] = (uint8_t)(i * 31 + 7);
    memset(&st, 0, sizeof st);
    st.time_ns = 1700000000000000000LL;
    st.rsrp_dbm = -97;
    st.rssi_dbm = -65;
    st.csq = 23;
    st.gps_fix = 3;
    st.gps_sats = 9;
    st.time_quality = GSTP_TQ_GPS_LOCKED;
    st.supply_mv = 12100;
    st.temp_c10 = 315;
    st.buffer_permille = 12;
    st.uptime_s = 3600;
    st.buffered_blocks = 3;
    gstp_tlv_writer_init(&w, args, sizeof args);
    gstp_tlv_put_u16(&w, GSTP_AT_CYCLES, 10);
    gstp_tlv_put_u16(&w, GSTP_AT_PRETRIGGER, 2);
    gstp_tlv_put_i64(&w, GSTP_AT_SERVER_TIME, 1700000000000000000LL);
    cm.id = 5;
    cm.verb = GSTP_VERB_CAPTURE;
    cm.tlv = args;
    cm.tlv_len = (uint16_t)w.len;
    gstp_tlv_writer_init(&w, res, sizeof res);
    gstp_tlv_put_u64(&w, GSTP_AT_BLOCK_SEQ, 43);
    gstp_tlv_put_str(&w, GSTP_AT_MESSAGE, "captured");
    rs.id = 5;
    rs.status = GSTP_RS_OK;
    rs.tlv = res;
    rs.tlv_len = (uint16_t)w.len;

    /* One valid frame of every type. */
    s.n = 0, frame(&s, gstp_encode_hello(ROOM(&s), &h)), save("hello", &s);
    s.n = 0, frame(&s, gstp_encode_challenge(ROOM(&s), &ch)), save("challenge", &s);
    s.n = 0, frame(&s, gstp_encode_auth(ROOM(&s), &au)), save("auth", &s);
    s.n = 0, frame(&s, gstp_encode_welcome(ROOM(&s), &we)), save("welcome", &s);
    s.n = 0, frame(&s, gstp_encode_reject(ROOM(&s), &rj)), save("reject", &s);
    s.n = 0, frame(&s, gstp_encode_bye(ROOM(&s), &bye)), save("bye", &s);
    s.n = 0, frame(&s, gstp_encode_status(ROOM(&s), &st)), save("status", &s);
    s.n = 0, frame(&s, gstp_encode_ack(ROOM(&s), &ak)), save("ack", &s);
    s.n = 0, frame(&s, gstp_encode_command(ROOM(&s), &cm)), save("command", &s);
    s.n = 0, frame(&s, gstp_encode_result(ROOM(&s), &rs)), save("result", &s);
    s.n = 0, frame(&s, gstp_encode_ping(ROOM(&s), &pi)), save("ping", &s);
    s.n = 0, frame(&s, gstp_encode_pong(ROOM(&s), &pi)), save("pong", &s);
    s.n = 0, frame(&s, gstp_encode_error(ROOM(&s), &er)), save("error", &s);
    s.n = 0, block(&s, 42, 0x7F, 64, NULL, 1024), save("waveform", &s);
    s.n = 0, block(&s, 43, 0x07, 400, &ev, 512), save("event_multichunk", &s);
    for (i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i % 7 == 0 ? GSTP_MAGIC0 : i % 7 == 1 ? GSTP_MAGIC1 : i);
    s.n = 0, frame(&s, gstp_frame_write(ROOM(&s), 0x7E, 0x80, payload, 7)), save("unknown", &s);
    s.n = 0, frame(&s, gstp_frame_write(ROOM(&s), 0x50, 0, payload, GSTP_MAX_PAYLOAD));
    save("max_payload", &s);

    /* A whole session, with a re-sent block. */
    s.n = 0;
    frame(&s, gstp_encode_hello(ROOM(&s), &h));
    frame(&s, gstp_encode_challenge(ROOM(&s), &ch));
    frame(&s, gstp_encode_auth(ROOM(&s), &au));
    frame(&s, gstp_encode_welcome(ROOM(&s), &we));
    n = s.n;
    block(&s, 41, 0x3F, 64, NULL, 1024); /* one chunk, re-sent after a reconnect */
    if (gstp_frame_set_flags(s.b + n, s.n - n, GSTP_FLAG_RESENT) != GSTP_OK)
        fail("set_flags");
    block(&s, 42, 0x3F, 128, NULL, 1024);
    frame(&s, gstp_encode_status(ROOM(&s), &st));
    frame(&s, gstp_encode_ack(ROOM(&s), &ak));
    frame(&s, gstp_encode_command(ROOM(&s), &cm));
    block(&s, 43, 0x3F, 200, &ev, 1024);
    frame(&s, gstp_encode_result(ROOM(&s), &rs));
    frame(&s, gstp_encode_ping(ROOM(&s), &pi));
    frame(&s, gstp_encode_pong(ROOM(&s), &pi));
    frame(&s, gstp_encode_bye(ROOM(&s), &bye));
    save("session", &s);

    /* DTU and modem text around frames. */
    for (i = 0; i < sizeof dtu / sizeof dtu[0]; i++) {
        s.n = 0;
        add_str(&s, dtu[i]);
        frame(&s, gstp_encode_ping(ROOM(&s), &pi));
        add_str(&s, dtu[i]);
        frame(&s, gstp_encode_status(ROOM(&s), &st));
        add_str(&s, dtu[i]);
        save(dtu_names[i], &s);
    }
    /* +QIURC inside a frame: that frame is lost, the next one decodes. */
    t.n = 0;
    n = frame(&t, gstp_encode_status(ROOM(&t), &st));
    s.n = 0;
    frame(&s, gstp_encode_ping(ROOM(&s), &pi));
    add(&s, t.b, 17);
    add_str(&s, "+QIURC: \"recv\",0\r\n");
    add(&s, t.b + 17, n - 17);
    frame(&s, gstp_encode_pong(ROOM(&s), &pi));
    save("qiurc_inside", &s);

    /* Damaged headers, each followed by a good frame. */
    {
        static const struct {
            const char *name;
            size_t off;
            uint8_t val;
            int reseal;
        } bad[] = {{"bad_magic", 1, 'H', 0},      {"bad_version0", 2, 0, 1},
                   {"bad_version128", 2, 128, 1}, {"bad_reserved", 5, 1, 1},
                   {"bad_len", 7, 0x08, 1},       {"bad_check", 8, 0, 0}};
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            s.n = 0;
            frame(&s, gstp_encode_ack(ROOM(&s), &ak));
            s.b[bad[i].off] = bad[i].val;
            if (bad[i].off == 7)
                s.b[6] = 0x01; /* len 0x0801 = 2049 */
            if (bad[i].reseal)
                fix_header(s.b);
            else if (bad[i].off == 8)
                s.b[8] ^= 0x5A;
            frame(&s, gstp_encode_ack(ROOM(&s), &ak));
            save(bad[i].name, &s);
        }
    }
    s.n = 0;
    n = frame(&s, gstp_encode_welcome(ROOM(&s), &we));
    s.b[n - 1] ^= 0x80;
    frame(&s, gstp_encode_welcome(ROOM(&s), &we));
    save("bad_crc", &s);

    /* Truncations: the link dropped mid-frame, then a new frame. */
    s.n = 0;
    n = frame(&s, gstp_encode_hello(ROOM(&s), &h));
    s.n -= n / 2;
    frame(&s, gstp_encode_ping(ROOM(&s), &pi));
    save("truncated_hello", &s);
    s.n = 0;
    block(&s, 44, 0x01, 100, NULL, 2048);
    s.n -= 30;
    save("truncated_block", &s);

    /* Garbage full of false magic. */
    s.n = 0;
    for (i = 0; i < 600; i++) {
        uint8_t g = (uint8_t)(i % 5 == 0 ? GSTP_MAGIC0 : i % 5 == 1 ? GSTP_MAGIC1 : i * 7);
        add(&s, &g, 1);
    }
    frame(&s, gstp_encode_ping(ROOM(&s), &pi));
    save("garbage_magic", &s);

    /* Raw payloads (no framing) for the parse-as-payload path. */
    t.n = 0;
    n = frame(&t, gstp_encode_hello(ROOM(&t), &h));
    s.n = 0, add(&s, t.b + GSTP_HEADER_LEN, n - 14), save("raw_hello_payload", &s);
    t.n = 0;
    n = frame(&t, gstp_encode_command(ROOM(&t), &cm));
    s.n = 0, add(&s, t.b + GSTP_HEADER_LEN, n - 14), save("raw_command_payload", &s);
    t.n = 0;
    block(&t, 45, 0x03, 20, &ev, 2048);
    s.n = 0, add(&s, t.b + GSTP_HEADER_LEN, t.n - 14), save("raw_event_payload", &s);
    s.n = 0, add(&s, args, cm.tlv_len), save("raw_tlv", &s);

    /* GSTP 1.1: WELCOME with CODECS, then a codec-1 WAVEFORM of several chunks (a 3-phase
     * signal, segments filling 256-byte payloads) and a codec-1 EVENT in one chunk. */
    {
        static uint8_t blk[400 * 3 * 2], out[255 * GSTP_MAX_FRAME];
        gstp_welcome_t wc = we;
        gstp_block_hdr_t bh;
        uint8_t nchunks = 0;
        int len;
        wc.codecs = GSTP_CODECS_KNOWN;
        for (i = 0; i < 400 * 3; i++) {
            /* a triangle wave per channel, phases apart, plus a small pattern: no libm */
            int32_t ph = (int32_t)((i / 3 * 100 + (i % 3) * 2667) % 8000);
            int32_t v = (ph < 4000 ? ph : 8000 - ph) * 4 - 8000 + (int32_t)(i * 7 % 5);
            blk[2 * i] = (uint8_t)(uint32_t)v;
            blk[2 * i + 1] = (uint8_t)((uint32_t)v >> 8);
        }
        memset(&bh, 0, sizeof bh);
        bh.seq = 46;
        bh.t0_ns = 1700000000000000000LL;
        bh.sample_rate = 4000;
        bh.channel_mask = 0x7;
        bh.nsamples = 400;
        bh.time_quality = GSTP_TQ_GPS_LOCKED;
        bh.sample_fmt = GSTP_FMT_INT16;
        bh.nchannels = 3;
        bh.codec = GSTP_CODEC_WCODEC;
        s.n = 0;
        frame(&s, gstp_encode_welcome(ROOM(&s), &wc));
        len = gstp_encode_block_wcodec_all(out, sizeof out, &bh, NULL, blk, 80, 256, &nchunks);
        if (len <= 0 || nchunks < 2)
            fail("codec 1 block");
        add(&s, out, (size_t)len);
        save("codec1_session", &s);
        bh.seq = 47;
        bh.nsamples = 160;
        len = gstp_encode_block_wcodec_all(out, sizeof out, &bh, &ev, blk, 80, 2048, &nchunks);
        if (len <= 0 || nchunks != 1)
            fail("codec 1 event");
        s.n = 0, add(&s, out, (size_t)len), save("codec1_event", &s);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--doc") == 0)
        return doc();
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR | --doc\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    gen();
    printf("wrote %d seeds to %s\n", g_count, g_dir);
    return 0;
}
