/* gridsense-sim: terminal session state machine, block generation, retransmit ring, commands.
 * See terminal.h.
 *
 * Session: connect -> HELLO -> CHALLENGE -> AUTH -> WELCOME (online) | REJECT. Online, blocks
 * flow from the retransmit ring while fewer than WELCOME.ack_window are unacknowledged and the
 * socket's write queue is below SIM_WQ_LIMIT; ACK frees them. After a reconnect the ring is
 * trimmed to WELCOME.resume_seq and the rest is re-sent with GSTP_FLAG_RESENT.
 */
#include "terminal.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#define IDLE_TICK_MS       1000u
#define MAX_CATCHUP_BLOCKS 20
#define MAX_LAG_S          10 /* further behind real time than this: jump to now */
#define HIST_CYCLES        10 /* pretrigger history, cycles; CAPTURE PRETRIGGER <= this */
#define EVENT_CYCLES       10 /* detector-triggered EVENT length */
#define EVENT_PRE_CYCLES   2
#define CAPTURE_MAX_CYCLES 100
#define NCH                SIG_NCH

static uint8_t rx_shared[64 * 1024]; /* read buffer shared by all terminals (loop thread) */

static void term_close(term_t *t, uint64_t delay_ms, const char *why);
static void on_tick(uv_timer_t *h);
static void pump(term_t *t);

/* ---- time helpers ---- */

static uint64_t now_ms(const term_t *t)
{
    return uv_now(t->sim->loop);
}

/* UTC time of absolute sample index idx on the shared timeline (exact, no overflow). */
static int64_t idx_to_ns(const sim_t *s, uint64_t idx)
{
    uint64_t r = s->cfg.rate;
    return s->start_ns + (int64_t)((idx / r) * 1000000000ull + (idx % r) * 1000000000ull / r);
}

/* Index of the first sample set whose time is not yet past at UTC now_ns. */
static uint64_t due_index(const sim_t *s, int64_t now_ns)
{
    if (now_ns <= s->start_ns)
        return 0;
    uint64_t d = (uint64_t)(now_ns - s->start_ns), r = s->cfg.rate;
    return (d / 1000000000ull) * r + (d % 1000000000ull) * r / 1000000000ull;
}

static uint32_t cycles_to_samples(const sim_t *s, uint32_t cycles)
{
    return (uint32_t)(((uint64_t)cycles * s->cfg.rate + s->cfg.nominal_hz / 2) / s->cfg.nominal_hz);
}

/* Exponential backoff with jitter (protocol.md 9.4): delay d = min(max, min * 2^attempt), the
 * wait uniform in [d/2, d]; each call counts one more failed attempt. The count is reset only
 * after a session stayed ESTABLISHED for TERM_STABLE_MS (see on_tick), not at WELCOME: a server
 * that welcomes and then drops every session must still see the terminals back off. */
static uint64_t backoff_ms(term_t *t)
{
    const sim_config_t *c = &t->sim->cfg;
    uint64_t d = c->backoff_min_ms;
    for (uint32_t i = 0; i < t->attempt && d < c->backoff_max_ms; i++)
        d *= 2;
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    if (t->attempt < 64)
        t->attempt++;
    return d / 2 + term_rand(t) % (d - d / 2 + 1); /* uniform in [d/2, d] */
}

/* A configuration problem (protocol.md 6.8: PROTOCOL, VERSION, BAD_CONFIG, UNKNOWN_ID,
 * BAD_AUTH) does not go away by retrying soon: back off to the cap at once, and stay there. */
static uint64_t backoff_cap_ms(term_t *t)
{
    t->attempt = 64;
    return backoff_ms(t);
}

static double rand_unit(term_t *t)
{
    return (double)(term_rand(t) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- sending ---- */

/* Sends an encoded frame (n = encoder result). On failure the connection is closed. */
static int send_frame(term_t *t, wreq_t *w, int n, const char *what)
{
    if (t->state != TS_HELLO && t->state != TS_AUTH && t->state != TS_ONLINE) {
        free(w); /* the connection is going away */
        return GS_ECLOSED;
    }
    if (n < 0) {
        log_error(t->id, "cannot encode %s: codec error %d", what, n);
        free(w);
        return GS_EPROTO;
    }
    w->len = (uint32_t)n;
    int rc = link_send(t, w);
    if (rc < 0) {
        term_close(t, backoff_ms(t), "write failed");
        return rc;
    }
    return 0;
}

#define SEND(t, fn, m, what)                                                                       \
    do {                                                                                           \
        wreq_t *w_ = link_wreq((t), GSTP_MAX_FRAME);                                               \
        send_frame((t), w_, fn(w_->data, GSTP_MAX_FRAME, (m)), (what));                            \
    } while (0)

static void send_error(term_t *t, uint16_t code, uint8_t type, const char *msg)
{
    gstp_error_t e = {.code = code, .frame_type = type};
    snprintf(e.message, sizeof e.message, "%s", msg);
    SEND(t, gstp_encode_error, &e, "ERROR");
}

/* ---- identity ---- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

/* Appends the Luhn check digit to the digit string d (as used by IMEI and ICCID). */
static void luhn_append(char *d)
{
    size_t n = strlen(d);
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    d[n] = (char)('0' + (10 - sum % 10) % 10);
    d[n + 1] = 0;
}

static void digits(uint64_t h, char *out, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = (char)('0' + h % 10);
        h /= 10;
        if (h == 0)
            h = 0x9E3779B97F4A7C15ull;
    }
    out[n] = 0;
}

/* Builds this terminal's HELLO. Deterministic: the AUTH MAC re-encodes it. */
static void build_hello(const term_t *t, gstp_hello_t *h)
{
    static const char *names[NCH] = {"UA", "UB", "UC", "IA", "IB", "IC"};
    const sim_t *s = t->sim;
    uint64_t hash = fnv1a(t->id);
    memset(h, 0, sizeof *h);
    h->version_min = h->version_max = GSTP_VERSION;
    snprintf(h->terminal_id, sizeof h->terminal_id, "%s", t->id);
    snprintf(h->fw_version, sizeof h->fw_version, "sim-0.1");
    snprintf(h->hw_version, sizeof h->hw_version, "gridsense-sim");
    memcpy(h->imei, "86", 2); /* 2-digit reporting body, 12 digits, Luhn: 15 digits */
    digits(hash, h->imei + 2, 12);
    luhn_append(h->imei);
    memcpy(h->iccid, "8986", 4); /* telecom industry 89, country 86, 15 digits, Luhn: 20 */
    digits(hash * 0x9E3779B97F4A7C15ull + 1, h->iccid + 4, 15);
    luhn_append(h->iccid);
    h->sample_rate = s->cfg.rate;
    h->nominal_hz = (uint8_t)s->cfg.nominal_hz;
    h->vt_ratio = 100.0f; /* 10 kV / 100 V */
    h->ct_ratio = 200.0f;
    h->time_source = t->time_source;
    h->time_quality = t->time_quality;
    h->buffer_blocks = s->cfg.buffer_blocks;
    h->nchannels = NCH;
    for (unsigned i = 0; i < NCH; i++) {
        gstp_channel_t *c = &h->channels[i];
        c->index = (uint8_t)i;
        c->kind = i < 3 ? GSTP_KIND_VOLTAGE : GSTP_KIND_CURRENT;
        c->phase = (uint8_t)(GSTP_PHASE_A + i % 3);
        c->unit = i < 3 ? GSTP_UNIT_V : GSTP_UNIT_A;
        c->scale = (float)sig_scale(&t->sig, i);
        snprintf(c->name, sizeof c->name, "%s", names[i]);
    }
}

/* ---- retransmit ring ---- */

static blk_t *ring_at(const term_t *t, uint32_t i)
{
    return t->ring[(t->head + i) % t->sim->cfg.buffer_blocks];
}

static void ring_pop(term_t *t)
{
    free(t->ring[t->head]);
    t->ring[t->head] = NULL;
    t->head = (t->head + 1) % t->sim->cfg.buffer_blocks;
    t->count--;
    t->sim->st.unacked--;
    if (t->inflight > 0)
        t->inflight--;
}

/* Blocks that may be in flight at once: WELCOME.ack_window, but always fewer than the ring
 * holds, so that a full ring has a block that was never transmitted to evict (see ring_evict). */
static uint32_t send_window(const term_t *t)
{
    uint32_t cap = t->sim->cfg.buffer_blocks - 1; /* --buffer-blocks >= 2 */
    return t->ack_window < cap ? t->ack_window : cap;
}

/* Makes room in a full ring by dropping the oldest block that was never transmitted.
 *
 * Transmitted blocks form a prefix of the ring (every session sends from the head in seq order
 * and only unsent blocks are evicted), and send_window() keeps that prefix shorter than the
 * ring. A block that was handed to a socket is kept until acknowledged: the server may store it
 * even if this session breaks, so dropping it would make blocks_dropped claim a gap the store
 * does not have. Evicting from behind the prefix keeps the counters exact: every dropped block
 * is a gap in the store, every acknowledged one is stored. */
static void ring_evict(term_t *t)
{
    sim_t *s = t->sim;
    uint32_t cap = s->cfg.buffer_blocks, i = t->inflight;
    while (i < t->count && ring_at(t, i)->sent)
        i++;
    if (i == t->count) {
        /* Unreachable while send_window() < capacity; kept so a broken invariant costs
         * accuracy of the counters, not memory. */
        log_warn(t->id, "buffer full of transmitted blocks, dropping block %llu",
                 (unsigned long long)ring_at(t, 0)->seq);
        ring_pop(t);
        s->st.blocks_dropped++;
        return;
    }
    log_debug(t->id, "buffer full, dropping block %llu", (unsigned long long)ring_at(t, i)->seq);
    free(ring_at(t, i));
    for (; i > 0; i--) /* shift the transmitted prefix up by one: O(window), not O(capacity) */
        t->ring[(t->head + i) % cap] = ring_at(t, i - 1);
    t->ring[t->head] = NULL;
    t->head = (t->head + 1) % cap;
    t->count--;
    s->st.unacked--;
    s->st.blocks_dropped++;
}

/* Appends a new block (samples: n sets, host order) with the next seq; makes room first when
 * the ring is full, like a terminal whose flash buffer overflows. */
static blk_t *ring_push(term_t *t, const int16_t *samples, uint16_t n, uint64_t first_index,
                        const gstp_event_hdr_t *ev)
{
    sim_t *s = t->sim;
    uint32_t cap = s->cfg.buffer_blocks;
    if (!t->ring)
        t->ring = xcalloc(cap, sizeof *t->ring);
    if (t->count == cap)
        ring_evict(t);
    size_t nval = (size_t)n * NCH;
    blk_t *b = xmalloc(sizeof *b + nval * sizeof(int16_t));
    b->seq = t->next_seq++;
    b->t0_ns = idx_to_ns(s, first_index);
    b->written_ns = 0;
    b->nsamples = n;
    b->is_event = ev != NULL;
    b->sent = 0;
    if (ev)
        b->ev = *ev;
    else
        memset(&b->ev, 0, sizeof b->ev);
    uint8_t *le = (uint8_t *)b->samples; /* the wire is little-endian whatever the host */
    for (size_t i = 0; i < nval; i++) {
        uint16_t v = (uint16_t)samples[i];
        le[2 * i] = (uint8_t)v;
        le[2 * i + 1] = (uint8_t)(v >> 8);
    }
    t->ring[(t->head + t->count) % cap] = b;
    t->count++;
    s->st.blocks_generated++;
    s->st.unacked++;
    return b;
}

/* Encodes b's chunks with codec t->wcodec, 1 or 2 (protocol.md 7.4: one wcodec segment per chunk, each chunk
 * filled up to --max-payload) into a write request. Returns it with w->len set, or NULL when the
 * block does not fit in 255 chunks that way (the caller sends it raw). */
static wreq_t *wcodec_frames(term_t *t, blk_t *b, uint8_t *nchunks)
{
    sim_t *s = t->sim;
    gstp_block_hdr_t h = {.seq = b->seq,
                          .t0_ns = b->t0_ns,
                          .sample_rate = s->cfg.rate,
                          .channel_mask = (1u << NCH) - 1,
                          .nsamples = b->nsamples,
                          .time_quality = t->time_quality,
                          .sample_fmt = GSTP_FMT_INT16,
                          .nchannels = NCH,
                          .codec = t->wcodec};
    int len = gstp_encode_block_wcodec_all(
        s->frames, SIM_FRAMES_CAP, &h, b->is_event ? &b->ev : NULL, (const uint8_t *)b->samples,
        gstp_period_hint(s->cfg.rate, s->cfg.nominal_hz), s->cfg.max_payload, nchunks);
    if (len <= 0)
        return NULL;
    wreq_t *w = link_wreq(t, (uint32_t)len);
    memcpy(w->data, s->frames, (size_t)len);
    w->len = (uint32_t)len;
    return w;
}

/* Sends all chunks of b back to back (the server expects a block's chunks consecutively). */
static int send_block(term_t *t, blk_t *b)
{
    sim_t *s = t->sim;
    size_t fixed = GSTP_HEADER_LEN + GSTP_BLOCK_HDR_LEN + (b->is_event ? GSTP_EVENT_HDR_LEN : 0) +
                   GSTP_TRAILER_LEN;
    size_t off = 0;
    int len = 0;
    uint8_t nwc = 0;
    wreq_t *w = t->wcodec ? wcodec_frames(t, b, &nwc) : NULL;
    if (w) {
        /* RESENT goes on every chunk; frames are walked by their length fields. */
        off = w->len;
        for (size_t p = 0; b->sent && p < off;) {
            size_t flen = GSTP_HEADER_LEN + ((size_t)w->data[p + 6] | (size_t)w->data[p + 7] << 8) +
                          GSTP_TRAILER_LEN;
            if (gstp_frame_set_flags(w->data + p, flen, GSTP_FLAG_RESENT) < 0) {
                len = GSTP_E_ARG; /* cannot happen for frames just encoded */
                break;
            }
            p += flen;
        }
        s->st.sample_bytes_sent += off - (size_t)nwc * fixed;
        s->st.wcodec_blocks_sent++;
        s->st.wcodec2_blocks_sent += t->wcodec == GSTP_CODEC_WCODEC2;
    } else {
        uint16_t per = b->is_event ? s->chunk_event : s->chunk_wave;
        uint32_t nchunks = ((uint32_t)b->nsamples + per - 1) / per;
        gstp_block_hdr_t h = {.seq = b->seq,
                              .t0_ns = b->t0_ns,
                              .sample_rate = s->cfg.rate,
                              .channel_mask = (1u << NCH) - 1,
                              .nsamples = b->nsamples,
                              .time_quality = t->time_quality,
                              .sample_fmt = GSTP_FMT_INT16,
                              .nchannels = NCH,
                              .chunk_count = (uint8_t)nchunks};
        size_t fcap = GSTP_HEADER_LEN + GSTP_BLOCK_HDR_LEN + GSTP_EVENT_HDR_LEN +
                      (size_t)per * NCH * 2 + GSTP_TRAILER_LEN;
        /* all chunks in one write request: one writev per block instead of one per chunk */
        w = link_wreq(t, (uint32_t)(fcap * nchunks));
        for (uint32_t i = 0; i < nchunks; i++) {
            uint16_t first = (uint16_t)(i * per);
            uint16_t n = (uint16_t)(b->nsamples - first < per ? b->nsamples - first : per);
            h.first_sample = first;
            h.chunk_index = (uint8_t)i;
            len = gstp_encode_block(w->data + off, fcap, &h, b->is_event ? &b->ev : NULL,
                                    (const uint8_t *)(b->samples + (size_t)first * NCH), n);
            if (len < 0)
                break;
            if (b->sent && gstp_frame_set_flags(w->data + off, (size_t)len, GSTP_FLAG_RESENT) < 0) {
                len = GSTP_E_ARG; /* cannot happen for a frame just encoded */
                break;
            }
            off += (size_t)len;
        }
        s->st.sample_bytes_sent += (size_t)b->nsamples * NCH * 2;
    }
    s->st.sample_raw_bytes += (size_t)b->nsamples * NCH * 2;
    if (s->cfg.ack_latency)
        w->mark_seq = b->seq;
    if (send_frame(t, w, len < 0 ? len : (int)off, b->is_event ? "EVENT" : "WAVEFORM") < 0)
        return -1;
    if (s->dump && !b->sent) {
        /* --dump-blocks: "ID SEQ T0_NS NSETS HEX" with the block's raw samples as generated */
        fprintf(s->dump, "%s %llu %lld %u ", t->id, (unsigned long long)b->seq,
                (long long)b->t0_ns, (unsigned)b->nsamples);
        const uint8_t *p = (const uint8_t *)b->samples;
        for (size_t i = 0; i < (size_t)b->nsamples * NCH * 2; i++)
            fprintf(s->dump, "%02x", p[i]);
        fputc('\n', s->dump);
    }
    s->st.blocks_sent++;
    if (b->sent)
        s->st.blocks_resent++;
    else if (b->is_event)
        s->st.events_sent++;
    b->sent = 1;
    return 0;
}

/* Sends ring blocks while the ack window and the write queue allow. */
static void pump(term_t *t)
{
    while (t->state == TS_ONLINE && t->inflight < t->count && t->inflight < send_window(t) &&
           link_queued(t) < SIM_WQ_LIMIT) {
        if (t->inflight == 0)
            t->ack_wait_ms = now_ms(t); /* the ACK timeout runs from the first block in flight */
        if (send_block(t, ring_at(t, t->inflight)) < 0)
            return;
        t->inflight++;
    }
}

void term_writable(term_t *t)
{
    pump(t);
}

void term_write_failed(term_t *t, int status)
{
    term_close(t, backoff_ms(t), uv_strerror(status));
}

void term_block_written(term_t *t, uint64_t seq)
{
    /* seqs increase along the ring, with gaps where blocks were evicted: binary search */
    uint32_t lo = 0, hi = t->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring_at(t, mid)->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->count && ring_at(t, lo)->seq == seq)
        ring_at(t, lo)->written_ns = time_mono_ns();
}

/* Retires the blocks the server reports stored (seq <= upto); measure: record their ACK
 * latency. Only transmitted blocks can be covered: a server acknowledging beyond them is wrong,
 * and counting such blocks as acked would claim data the store does not hold. */
static void retire(term_t *t, uint64_t upto, int measure, const char *what)
{
    sim_t *s = t->sim;
    int64_t now = measure && s->cfg.ack_latency ? time_mono_ns() : 0;
    while (t->count > 0 && ring_at(t, 0)->seq <= upto) {
        blk_t *b = ring_at(t, 0);
        if (!b->sent) {
            log_warn(t->id, "%s %llu covers block %llu, which was never sent; ignoring the rest",
                     what, (unsigned long long)upto, (unsigned long long)b->seq);
            break;
        }
        if (now && b->written_ns)
            sim_hist_add(&s->lat, now - b->written_ns);
        ring_pop(t);
        s->st.blocks_acked++;
    }
}

static void on_ack(term_t *t, uint64_t seq)
{
    t->ack_wait_ms = now_ms(t);
    retire(t, seq, 1, "ACK");
    if (seq > t->acked_seq)
        t->acked_seq = seq;
    pump(t);
}

/* ---- command result cache ---- */

static cmd_slot_t *cmd_find(term_t *t, uint64_t id)
{
    if (!t->cmds)
        return NULL;
    for (unsigned i = 0; i < TERM_CMD_CACHE; i++)
        if (t->cmds[i].used && t->cmds[i].id == id)
            return &t->cmds[i];
    return NULL;
}

static void send_result(term_t *t, const cmd_slot_t *c)
{
    gstp_result_t r = {.id = c->id, .status = c->status, .tlv_len = c->tlv_len, .tlv = c->tlv};
    if (t->state == TS_ONLINE)
        SEND(t, gstp_encode_result, &r, "RESULT");
}

/* Records the result of command id (replacing an earlier one for the same id) and sends it. */
static void answer(term_t *t, uint64_t id, uint16_t status, const gstp_tlv_writer_t *tlv)
{
    cmd_slot_t *c = cmd_find(t, id);
    if (!c) {
        if (!t->cmds)
            t->cmds = xcalloc(TERM_CMD_CACHE, sizeof *t->cmds);
        /* round robin, but never evict the capture in progress: its repeat must stay silent */
        do {
            c = &t->cmds[t->cmd_next];
            t->cmd_next = (t->cmd_next + 1) % TERM_CMD_CACHE;
        } while (c->used && c->status == TERM_RS_PENDING);
    }
    c->id = id;
    c->used = 1;
    c->status = status;
    c->tlv_len = 0;
    if (tlv && tlv->err == GSTP_OK && tlv->len <= sizeof c->tlv) {
        memcpy(c->tlv, tlv->buf, tlv->len);
        c->tlv_len = (uint16_t)tlv->len;
    }
    if (status != TERM_RS_PENDING)
        send_result(t, c);
}

static void answer_msg(term_t *t, uint64_t id, uint16_t status, const char *msg)
{
    uint8_t buf[TERM_CMD_TLV_MAX];
    gstp_tlv_writer_t w;
    gstp_tlv_writer_init(&w, buf, sizeof buf);
    gstp_tlv_put_str(&w, GSTP_AT_MESSAGE, msg);
    answer(t, id, status, &w);
}

/* ---- sample generation, history and captures ---- */

static void hist_put(term_t *t, uint64_t from, const int16_t *x, uint32_t n)
{
    if (!t->hist) {
        t->hist_cap = cycles_to_samples(t->sim, HIST_CYCLES);
        t->hist = xmalloc((size_t)t->hist_cap * NCH * sizeof *t->hist);
        t->hist_from = from;
    }
    if (n > t->hist_cap) {
        x += (size_t)(n - t->hist_cap) * NCH;
        from += n - t->hist_cap;
        n = t->hist_cap;
    }
    for (uint32_t i = 0; i < n;) {
        uint32_t slot = (uint32_t)((from + i) % t->hist_cap);
        uint32_t k = t->hist_cap - slot < n - i ? t->hist_cap - slot : n - i;
        memcpy(t->hist + (size_t)slot * NCH, x + (size_t)i * NCH, (size_t)k * NCH * sizeof *x);
        i += k;
    }
}

/* First sample index still held in the history. */
static uint64_t hist_first(const term_t *t)
{
    uint64_t end = sig_index(&t->sig), first = end > t->hist_cap ? end - t->hist_cap : 0;
    return t->hist_from > first ? t->hist_from : first;
}

static void hist_get(const term_t *t, uint64_t from, uint32_t n, int16_t *out)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)((from + i) % t->hist_cap);
        memcpy(out + (size_t)i * NCH, t->hist + (size_t)slot * NCH, NCH * sizeof *out);
    }
}

static void capture_free(term_t *t, const char *why)
{
    if (!t->cap)
        return;
    if (t->cap->cmd_id)
        answer_msg(t, t->cap->cmd_id, GSTP_RS_FAILED, why);
    free(t->cap);
    t->cap = NULL;
}

/* Starts a capture of `total` sets with `pre` of them before trigger index `trig`, taking what
 * the history already holds. Returns 0, or GS_EBUSY while another capture is being filled. */
static int capture_start(term_t *t, uint64_t trig, uint32_t pre, uint32_t total, uint16_t trigger,
                         const sig_event_t *sev, uint64_t cmd_id)
{
    if (t->cap)
        return GS_EBUSY;
    uint64_t avail = t->hist ? hist_first(t) : sig_index(&t->sig);
    uint64_t start = trig >= pre ? trig - pre : 0;
    if (start < avail)
        start = avail;
    if (trig < start)
        trig = start;
    capture_t *c = xmalloc(sizeof *c + (size_t)total * NCH * sizeof(int16_t));
    memset(c, 0, sizeof *c);
    c->start = start;
    c->total = total;
    c->cmd_id = cmd_id;
    if (sev)
        c->sev = *sev;
    c->ev.trigger_ns = idx_to_ns(t->sim, trig);
    c->ev.trigger = trigger;
    c->ev.pretrigger = (uint16_t)(trig - start);
    c->ev.value_permille = sev ? sev->value_permille : 0;
    c->ev.channel = sev ? sev->channel : 0xFFFF;
    uint64_t have = sig_index(&t->sig);
    if (have > start) {
        uint32_t n = (uint32_t)(have - start < total ? have - start : total);
        hist_get(t, start, n, c->samples);
        c->filled = n;
    }
    t->cap = c;
    if (cmd_id)
        answer(t, cmd_id, TERM_RS_PENDING, NULL);
    return 0;
}

static void capture_feed(term_t *t, uint64_t from, const int16_t *x, uint32_t n)
{
    capture_t *c = t->cap;
    if (!c || c->filled == c->total)
        return;
    uint64_t want = c->start + c->filled, end = c->start + c->total;
    if (from > want) {
        capture_free(t, "sampling interrupted");
        return;
    }
    uint64_t hi = from + n < end ? from + n : end;
    if (hi <= want)
        return;
    memcpy(c->samples + (size_t)c->filled * NCH, x + (size_t)(want - from) * NCH,
           (size_t)(hi - want) * NCH * sizeof *x);
    c->filled += (uint32_t)(hi - want);
}

/* Turns a complete capture into an EVENT block and answers its CAPTURE command. */
static void capture_finish(term_t *t)
{
    capture_t *c = t->cap;
    if (!c || c->filled < c->total)
        return;
    if (c->sev.id && sig_event_refresh(&t->sig, &c->sev)) {
        c->ev.trigger = c->sev.kind; /* a dip may have deepened into an interruption */
        c->ev.value_permille = c->sev.value_permille;
    }
    blk_t *b = ring_push(t, c->samples, (uint16_t)c->total, c->start, &c->ev);
    log_debug(t->id, "EVENT block %llu: trigger %u, value %u permille", (unsigned long long)b->seq,
              c->ev.trigger, c->ev.value_permille);
    if (c->cmd_id) {
        uint8_t buf[TERM_CMD_TLV_MAX];
        gstp_tlv_writer_t w;
        gstp_tlv_writer_init(&w, buf, sizeof buf);
        gstp_tlv_put_u64(&w, GSTP_AT_BLOCK_SEQ, b->seq);
        answer(t, c->cmd_id, GSTP_RS_OK, &w);
    }
    free(c);
    t->cap = NULL;
    pump(t);
}

/* Generates the next n sample sets into the scratch buffer, keeps them in the history, feeds
 * the capture and reacts to detector events. Returns the scratch buffer. */
static const int16_t *gen_samples(term_t *t, uint32_t n)
{
    sim_t *s = t->sim;
    uint64_t from = sig_index(&t->sig);
    sig_generate(&t->sig, s->scratch, n);
    s->st.samples_generated += n;
    hist_put(t, from, s->scratch, n);
    capture_feed(t, from, s->scratch, n);
    sig_event_t e;
    while (sig_event_pop(&t->sig, &e)) {
        /* one capture at a time: an event during a running capture is inside it anyway */
        capture_start(t, e.index, cycles_to_samples(s, EVENT_PRE_CYCLES),
                      cycles_to_samples(s, EVENT_CYCLES), e.kind, &e, 0);
    }
    return s->scratch;
}

static void skip_to(term_t *t, uint64_t idx)
{
    uint64_t cur = sig_index(&t->sig);
    if (idx <= cur)
        return;
    sig_skip(&t->sig, idx - cur);
    t->hist_from = idx;
    if (t->cap)
        capture_free(t, "sampling interrupted");
}

static void set_tick(term_t *t)
{
    uint32_t want =
        (t->streaming || t->cap) && t->sim->phase == SIM_RUN ? t->sim->cfg.block_ms : IDLE_TICK_MS;
    if (want != t->tick_ms && !t->stopping) {
        t->tick_ms = want;
        uv_timer_start(&t->tick, on_tick, want, want);
    }
}

/* Generates every block (or capture sample) whose time has come. */
static void generate_due(term_t *t)
{
    sim_t *s = t->sim;
    if (s->phase != SIM_RUN || (!t->streaming && !t->cap))
        return;
    uint64_t due = due_index(s, time_utc_ns()), B = s->block_samples;
    if (t->cap && (!t->streaming || t->resync)) {
        /* a capture outside continuous streaming: sample just what it needs */
        while (t->cap && sig_index(&t->sig) < due) {
            uint64_t n = due - sig_index(&t->sig);
            gen_samples(t, (uint32_t)(n < B ? n : B));
            capture_finish(t);
        }
    }
    if (t->streaming && !(t->resync && t->cap)) {
        uint64_t cur = sig_index(&t->sig);
        if (t->resync || cur + (uint64_t)MAX_LAG_S * s->cfg.rate < due) {
            uint64_t target = due / B * B; /* blocks stay on the shared block grid */
            if (target < cur)
                target = (cur + B - 1) / B * B;
            skip_to(t, target);
            t->resync = 0;
        }
        for (int k = 0; k < MAX_CATCHUP_BLOCKS && sig_index(&t->sig) + B <= due; k++) {
            uint64_t from = sig_index(&t->sig);
            const int16_t *x = gen_samples(t, (uint32_t)B);
            ring_push(t, x, (uint16_t)B, from, NULL);
            capture_finish(t);
        }
        pump(t);
    }
    set_tick(t);
}

/* ---- STATUS ---- */

static void send_status(term_t *t)
{
    uint32_t cap = t->sim->cfg.buffer_blocks;
    t->rsrp_dbm += (int16_t)(term_rand(t) % 5) - 2;
    t->rsrp_dbm = t->rsrp_dbm < -110 ? -110 : t->rsrp_dbm > -70 ? -70 : t->rsrp_dbm;
    t->temp_c10 += (int16_t)(term_rand(t) % 11) - 5;
    t->temp_c10 = t->temp_c10 < 150 ? 150 : t->temp_c10 > 550 ? 550 : t->temp_c10;
    int rssi = t->rsrp_dbm + 22 + (int)(term_rand(t) % 6);
    int csq = (rssi + 113) / 2;
    gstp_status_t st = {
        .time_ns = time_utc_ns(),
        .rsrp_dbm = t->rsrp_dbm,
        .rssi_dbm = (int16_t)rssi,
        .csq = (uint8_t)(csq < 0    ? 0
                         : csq > 31 ? 31
                                    : csq),
        .gps_fix = t->time_source == GSTP_TS_GNSS ? 3 : 0,
        .gps_sats = t->time_source == GSTP_TS_GNSS ? (uint8_t)(7 + term_rand(t) % 8) : 0,
        .time_quality = t->time_quality,
        .supply_mv = (uint16_t)(11850 + term_rand(t) % 301),
        .temp_c10 = t->temp_c10,
        .buffer_permille = (uint16_t)((uint64_t)t->count * 1000 / cap),
        .uptime_s = (uint32_t)((now_ms(t) - t->boot_ms) / 1000),
        .buffered_blocks = t->count,
    };
    SEND(t, gstp_encode_status, &st, "STATUS");
    t->sim->st.status_sent++;
}

/* ---- commands ---- */

static void cmd_capture(term_t *t, const gstp_command_t *c)
{
    sim_t *s = t->sim;
    uint16_t cycles = 10, pre = 2;
    gstp_tlv_t v;
    if ((gstp_tlv_find(c->tlv, c->tlv_len, GSTP_AT_CYCLES, &v) == 1 &&
         gstp_tlv_u16(&v, &cycles) != GSTP_OK) ||
        (gstp_tlv_find(c->tlv, c->tlv_len, GSTP_AT_PRETRIGGER, &v) == 1 &&
         gstp_tlv_u16(&v, &pre) != GSTP_OK)) {
        answer_msg(t, c->id, GSTP_RS_BAD_ARGS, "CYCLES and PRETRIGGER are u16");
        return;
    }
    uint32_t total = cycles_to_samples(s, cycles);
    if (cycles < 1 || cycles > CAPTURE_MAX_CYCLES || pre > HIST_CYCLES || pre >= cycles ||
        total > GSTP_MAX_BLOCK_SAMPLES || (total + s->chunk_event - 1) / s->chunk_event > 255) {
        answer_msg(t, c->id, GSTP_RS_BAD_ARGS, "CYCLES 1..100, PRETRIGGER 0..10 and < CYCLES");
        return;
    }
    if (s->phase != SIM_RUN) {
        answer_msg(t, c->id, GSTP_RS_BUSY, "simulator is draining");
        return;
    }
    if (t->cap) {
        answer_msg(t, c->id, GSTP_RS_BUSY, "capture in progress");
        return;
    }
    uint32_t npre = cycles_to_samples(s, pre);
    uint64_t trig;
    if (t->streaming && !t->resync) {
        trig = sig_index(&t->sig); /* the newest sampled set; history holds the pretrigger */
    } else {
        /* not sampling continuously: sample the pretrigger span up to now first */
        uint64_t due = due_index(s, time_utc_ns());
        uint64_t from = due > npre ? due - npre : 0;
        if (sig_index(&t->sig) < from)
            skip_to(t, from);
        while (sig_index(&t->sig) < due) {
            uint64_t n = due - sig_index(&t->sig);
            gen_samples(t, (uint32_t)(n < s->block_samples ? n : s->block_samples));
        }
        if (t->cap) { /* the detector fired while catching up */
            answer_msg(t, c->id, GSTP_RS_BUSY, "capture in progress");
            return;
        }
        trig = sig_index(&t->sig);
    }
    capture_start(t, trig, npre, total, GSTP_TRIG_MANUAL, NULL, c->id);
    capture_finish(t);
    set_tick(t);
}

static void set_streaming(term_t *t, int on)
{
    if (on && !t->streaming)
        t->resync = 1;
    t->streaming = (uint8_t)on;
    set_tick(t);
}

static void cmd_set_config(term_t *t, const gstp_command_t *c)
{
    uint32_t interval = t->status_interval_s;
    uint8_t stream = t->streaming;
    uint16_t dip = t->sig.dip_pm, swell = t->sig.swell_pm;
    gstp_tlv_iter_t it;
    gstp_tlv_t v;
    int rc, bad = 0;
    gstp_tlv_iter_init(&it, c->tlv, c->tlv_len);
    while ((rc = gstp_tlv_next(&it, &v)) == 1) {
        switch (v.tag) {
        case GSTP_AT_REPORT_INTERVAL:
            bad |= gstp_tlv_u32(&v, &interval) != GSTP_OK || interval < 1 || interval > 86400;
            break;
        case GSTP_AT_STREAM:
            bad |= gstp_tlv_u8(&v, &stream) != GSTP_OK || stream > 1;
            break;
        case GSTP_AT_DIP_PERMILLE:
            bad |= gstp_tlv_u16(&v, &dip) != GSTP_OK;
            break;
        case GSTP_AT_SWELL_PERMILLE:
            bad |= gstp_tlv_u16(&v, &swell) != GSTP_OK;
            break;
        default:
            break; /* extension rule: unknown tags are skipped */
        }
    }
    sig_gen_t probe = t->sig;
    if (rc < 0 || bad || sig_set_thresholds(&probe, dip, swell) != 0) {
        answer_msg(t, c->id, GSTP_RS_BAD_ARGS,
                   "REPORT_INTERVAL 1..86400, STREAM 0/1, DIP 51..999 < 1000 < SWELL 1020..");
        return;
    }
    sig_set_thresholds(&t->sig, dip, swell);
    if (interval != t->status_interval_s) {
        t->status_interval_s = interval;
        t->next_status_ms = now_ms(t) + (uint64_t)interval * 1000;
    }
    set_streaming(t, stream);
    answer(t, c->id, GSTP_RS_OK, NULL);
}

static void on_command(term_t *t, const gstp_frame_t *f)
{
    int64_t rx_ns = time_utc_ns();
    gstp_command_t c;
    if (gstp_parse_command(f, &c) != GSTP_OK) {
        send_error(t, GSTP_ERR_MALFORMED, f->type, "malformed COMMAND");
        return;
    }
    cmd_slot_t *old = cmd_find(t, c.id);
    if (old) {
        log_debug(t->id, "command %llu repeated", (unsigned long long)c.id);
        if (old->status != TERM_RS_PENDING)
            send_result(t, old);
        return;
    }
    t->sim->st.commands_answered++;
    switch (c.verb) {
    case GSTP_VERB_GET_STATUS:
        send_status(t);
        answer(t, c.id, GSTP_RS_OK, NULL);
        break;
    case GSTP_VERB_CAPTURE:
        cmd_capture(t, &c);
        break;
    case GSTP_VERB_STREAM_START:
    case GSTP_VERB_STREAM_STOP:
        set_streaming(t, c.verb == GSTP_VERB_STREAM_START);
        answer(t, c.id, GSTP_RS_OK, NULL);
        break;
    case GSTP_VERB_SET_CONFIG:
        cmd_set_config(t, &c);
        break;
    case GSTP_VERB_TIME_SYNC: {
        uint8_t buf[TERM_CMD_TLV_MAX];
        gstp_tlv_writer_t w;
        gstp_tlv_writer_init(&w, buf, sizeof buf);
        gstp_tlv_put_i64(&w, GSTP_AT_TERM_RX_TIME, rx_ns);
        gstp_tlv_put_i64(&w, GSTP_AT_TERM_TX_TIME, time_utc_ns());
        answer(t, c.id, GSTP_RS_OK, &w);
        break;
    }
    case GSTP_VERB_REBOOT: {
        /* Every REBOOT accepted before the restart is answered OK after it (protocol.md 8.2):
         * a second one arriving while the first is pending (both queued while offline, or sent
         * back to back) must not make the first one's id be forgotten. */
        if (t->nreboot == TERM_REBOOT_MAX) {
            answer_msg(t, c.id, GSTP_RS_BUSY, "too many reboots pending");
            break;
        }
        answer(t, c.id, GSTP_RS_ACCEPTED, NULL);
        t->reboot_ids[t->nreboot++] = c.id;
        log_info(t->id, "rebooting (command %llu)", (unsigned long long)c.id);
        t->rebooting = 1;
        /* close once the (last) ACCEPTED result has left the delay queue */
        const sim_config_t *cfg = &t->sim->cfg;
        uv_timer_start(&t->retry, on_tick, cfg->latency_ms + cfg->jitter_ms + 20, 0);
        break;
    }
    default:
        answer_msg(t, c.id, GSTP_RS_UNKNOWN_VERB, "unknown verb");
        break;
    }
}

/* ---- session ---- */

static void on_challenge(term_t *t, const gstp_frame_t *f)
{
    gstp_challenge_t ch;
    if (gstp_parse_challenge(f, &ch) != GSTP_OK || ch.version != GSTP_VERSION) {
        log_warn(t->id, "bad CHALLENGE from server");
        term_close(t, backoff_ms(t), "bad challenge");
        return;
    }
    /* MAC over nonce || HELLO payload exactly as sent; the HELLO encoding is deterministic. */
    gstp_hello_t h;
    uint8_t buf[GSTP_MAX_FRAME];
    build_hello(t, &h);
    int n = gstp_encode_hello(buf, sizeof buf, &h);
    if (n < (int)(GSTP_HEADER_LEN + GSTP_TRAILER_LEN)) {
        log_error(t->id, "cannot encode HELLO: %d", n);
        term_close(t, backoff_ms(t), "hello");
        return;
    }
    gstp_auth_t a;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, t->secret, GSTP_SECRET_LEN);
    crypto_auth_hmacsha256_update(&st, ch.nonce, GSTP_NONCE_LEN);
    crypto_auth_hmacsha256_update(&st, buf + GSTP_HEADER_LEN,
                                  (size_t)n - GSTP_HEADER_LEN - GSTP_TRAILER_LEN);
    crypto_auth_hmacsha256_final(&st, a.mac);
    SEND(t, gstp_encode_auth, &a, "AUTH");
    if (t->state == TS_HELLO)
        t->state = TS_AUTH;
}

/* Protocol 7.1: a terminal whose counter is behind WELCOME.resume_seq continues from
 * resume_seq + 1, or the server would discard its new blocks as duplicates (and acknowledge
 * them). Called after the blocks up to resume_seq were retired, so a ring head at or below
 * resume_seq was never sent, and neither was any block after it: renumbering is safe. */
static void continue_after(term_t *t, uint64_t resume)
{
    uint64_t first = t->count ? ring_at(t, 0)->seq : t->next_seq;
    if (first > resume)
        return;
    uint64_t shift = resume + 1 - first;
    log_warn(t->id, "server holds seqs up to %llu, beyond this terminal's %llu: renumbering",
             (unsigned long long)resume, (unsigned long long)first - 1);
    for (uint32_t i = 0; i < t->count; i++)
        ring_at(t, i)->seq += shift;
    t->next_seq += shift;
}

static void on_welcome(term_t *t, const gstp_frame_t *f)
{
    sim_t *s = t->sim;
    gstp_welcome_t w;
    if (gstp_parse_welcome(f, &w) != GSTP_OK) {
        log_warn(t->id, "malformed WELCOME");
        term_close(t, backoff_ms(t), "bad welcome");
        return;
    }
    t->heartbeat_s = w.heartbeat_s ? w.heartbeat_s : 30;
    t->ack_window = w.ack_window ? w.ack_window : 1;
    t->session_id = w.session_id;
    /* A codec only to a server that announced it (protocol.md 6.7): an older one refuses it.
     * --codec wcodec: codec 2 when announced, else codec 1; wcodec1: codec 1 only. */
    if (s->cfg.codec == SIM_CODEC_WCODEC && (w.codecs & (1u << GSTP_CODEC_WCODEC2)))
        t->wcodec = GSTP_CODEC_WCODEC2;
    else if (s->cfg.codec != SIM_CODEC_RAW && (w.codecs & (1u << GSTP_CODEC_WCODEC)))
        t->wcodec = GSTP_CODEC_WCODEC;
    else
        t->wcodec = 0;
    if (!t->welcomed_once && w.resume_seq > 0) {
        /* The server already holds blocks of this terminal from an earlier simulator run: continue
         * its sequence, as a terminal that kept its counter in flash would. Nothing was sent
         * yet, so renumbering the buffered blocks is safe. */
        uint64_t shift = w.resume_seq;
        for (uint32_t i = 0; i < t->count; i++)
            ring_at(t, i)->seq += shift;
        t->next_seq += shift;
        log_debug(t->id, "continuing after server's seq %llu", (unsigned long long)w.resume_seq);
    }
    if (t->welcomed_once)
        s->st.reconnects++; /* a re-login: the first WELCOME is the initial login */
    t->welcomed_once = 1;
    retire(t, w.resume_seq, 0, "WELCOME.resume_seq"); /* durable on the server */
    continue_after(t, w.resume_seq);
    if (w.resume_seq > t->acked_seq)
        t->acked_seq = w.resume_seq;
    t->inflight = 0;
    t->state = TS_ONLINE;
    s->st.online++;
    uint64_t now = now_ms(t);
    t->online_since_ms = now; /* the backoff resets after TERM_STABLE_MS of this (on_tick) */
    t->ack_wait_ms = now;
    t->next_status_ms = now + term_rand(t) % ((uint64_t)t->status_interval_s * 1000 + 1);
    if (s->cfg.disconnect_every_s > 0)
        t->drop_at_ms =
            now + (uint64_t)(-log(1.0 - rand_unit(t)) * s->cfg.disconnect_every_s * 1000);
    else
        t->drop_at_ms = UINT64_MAX;
    log_debug(t->id, "online, session %u, resume %llu, window %u", w.session_id,
              (unsigned long long)w.resume_seq, t->ack_window);
    /* protocol.md 8.2: RESULTs are not acknowledged, so the final RESULTs of accepted commands
     * sent in the previous session are sent once more (the server ignores repeats), then the
     * ones owed since the restart. */
    for (uint8_t i = 0; i < t->nresend; i++) {
        cmd_slot_t *c = cmd_find(t, t->resend_ids[i]);
        if (c && c->status != TERM_RS_PENDING)
            send_result(t, c);
    }
    t->nresend = 0;
    for (uint8_t i = 0; i < t->nreboot; i++) {
        answer(t, t->reboot_ids[i], GSTP_RS_OK, NULL);
        t->resend_ids[t->nresend++] = t->reboot_ids[i];
    }
    t->nreboot = 0;
    pump(t);
}

static void on_reject(term_t *t, const gstp_frame_t *f)
{
    gstp_reject_t r;
    int bye = f->type == GSTP_BYE;
    if (gstp_parse_reject(f, &r) != GSTP_OK) {
        r.reason = 0;
        r.retry_after_s = 0;
        r.message[0] = 0;
    }
    if (!bye)
        t->sim->st.auth_rejected++;
    /* protocol.md 6.8, the terminal's action per reason */
    uint64_t delay, after = (uint64_t)r.retry_after_s * 1000;
    switch (r.reason) {
    case GSTP_REJ_PROTOCOL:
    case GSTP_REJ_VERSION:
    case GSTP_REJ_BAD_CONFIG:
    case GSTP_REJ_UNKNOWN_ID:
    case GSTP_REJ_BAD_AUTH:
        delay = backoff_cap_ms(t); /* a configuration problem: retrying soon cannot help */
        break;
    default: /* TIMEOUT, DEAD, SHUTDOWN, BUSY, RATE_LIMIT, and reasons of later versions */
        delay = backoff_ms(t);
        break;
    }
    if (after > delay)
        delay = after;
    if (bye && r.reason == GSTP_REJ_REPLACED && delay < t->sim->cfg.backoff_max_ms) {
        /* Protocol 9.4: this connection must not trigger a reconnect of its own. A simulated
         * terminal has no other connection, so another client logged in with its id: retry
         * only after the longest backoff rather than fight it over the session. */
        log_warn(t->id, "session taken over by another client with this id");
        delay = t->sim->cfg.backoff_max_ms;
    }
    if (bye)
        log_info(t->id, "server said BYE: %s (%s), reconnecting in %llu ms",
                 gstp_reason_name(r.reason), r.message, (unsigned long long)delay);
    else
        log_warn(t->id, "rejected: %s (%s), retrying in %llu ms", gstp_reason_name(r.reason),
                 r.message, (unsigned long long)delay);
    term_close(t, delay, bye ? "bye" : "reject");
}

static void on_frame(term_t *t, const gstp_frame_t *f)
{
    /* protocol.md 6.3: from CHALLENGE on every frame carries the session version (this
     * simulator speaks only GSTP_VERSION). Another one ends a handshake; once established the
     * frame is answered with ERROR UNEXPECTED and ignored (an ERROR is never answered). */
    if ((t->state == TS_AUTH || t->state == TS_ONLINE) && f->version != GSTP_VERSION) {
        log_warn(t->id, "%s with header version %u in a version %u session",
                 gstp_type_name(f->type), f->version, GSTP_VERSION);
        if (t->state == TS_AUTH)
            term_close(t, backoff_ms(t), "wrong header version");
        else if (f->type != GSTP_ERROR)
            send_error(t, GSTP_ERR_UNEXPECTED, f->type, "header version is not the session's");
        return;
    }
    switch (f->type) {
    case GSTP_CHALLENGE:
        if (t->state != TS_HELLO)
            send_error(t, GSTP_ERR_UNEXPECTED, f->type, "unexpected CHALLENGE");
        else
            on_challenge(t, f);
        break;
    case GSTP_WELCOME:
        if (t->state != TS_AUTH)
            send_error(t, GSTP_ERR_UNEXPECTED, f->type, "unexpected WELCOME");
        else
            on_welcome(t, f);
        break;
    case GSTP_REJECT:
    case GSTP_BYE:
        on_reject(t, f);
        break;
    case GSTP_PING: {
        gstp_ping_t p;
        if (gstp_parse_ping(f, &p) != GSTP_OK) {
            send_error(t, GSTP_ERR_MALFORMED, f->type, "malformed PING");
            break;
        }
        p.sender_time_ns = time_utc_ns();
        SEND(t, gstp_encode_pong, &p, "PONG");
        break;
    }
    case GSTP_PONG:
        break;
    case GSTP_ACK: {
        gstp_ack_t a;
        if (t->state != TS_ONLINE)
            send_error(t, GSTP_ERR_UNEXPECTED, f->type, "ACK before WELCOME");
        else if (gstp_parse_ack(f, &a) != GSTP_OK)
            send_error(t, GSTP_ERR_MALFORMED, f->type, "malformed ACK");
        else
            on_ack(t, a.seq);
        break;
    }
    case GSTP_COMMAND:
        if (t->state != TS_ONLINE)
            send_error(t, GSTP_ERR_UNEXPECTED, f->type, "COMMAND before WELCOME");
        else
            on_command(t, f);
        break;
    case GSTP_ERROR: {
        gstp_error_t e;
        t->sim->st.errors_received++;
        if (gstp_parse_error(f, &e) == GSTP_OK)
            log_warn(t->id, "server reports error %u about %s: %s", e.code,
                     gstp_type_name(e.frame_type), e.message);
        break;
    }
    case GSTP_HELLO:
    case GSTP_AUTH:
    case GSTP_WAVEFORM:
    case GSTP_STATUS:
    case GSTP_EVENT:
    case GSTP_RESULT:
        send_error(t, GSTP_ERR_UNEXPECTED, f->type, "terminal-to-server frame type");
        break;
    default:
        send_error(t, GSTP_ERR_UNKNOWN_TYPE, f->type, "unknown frame type");
        break;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init((char *)rx_shared, sizeof rx_shared);
}

static int session_open(const term_t *t)
{
    return t->state == TS_HELLO || t->state == TS_AUTH || t->state == TS_ONLINE;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    term_t *t = stream->data;
    if (nread == 0)
        return;
    /* through the link: --latency-ms/--jitter-ms delay what the terminal hears, too */
    int rc = nread < 0 ? link_recv(t, NULL, 0, (int)nread)
                       : link_recv(t, (const uint8_t *)buf->base, (size_t)nread, 0);
    if (rc < 0)
        term_close(t, backoff_ms(t), "receive queue full");
}

void term_received(term_t *t, const uint8_t *data, size_t n, int eof)
{
    if (eof) {
        if (eof != UV_EOF)
            log_debug(t->id, "read: %s", uv_strerror(eof));
        term_close(t, backoff_ms(t), eof == UV_EOF ? "server closed" : "read error");
        return;
    }
    if (n == 0 || !session_open(t))
        return;
    t->last_rx_ms = now_ms(t);
    const uint8_t *p = data;
    while (n > 0 && session_open(t)) {
        size_t used = gstp_decoder_feed(&t->dec, p, n);
        p += used;
        n -= used;
        gstp_frame_t f;
        while (session_open(t) && gstp_decoder_next(&t->dec, &f) == GSTP_FRAME)
            on_frame(t, &f);
        if (used == 0 && n > 0) {
            log_error(t->id, "decoder stalled");
            term_close(t, backoff_ms(t), "decoder stalled");
            return;
        }
    }
}

static void send_hello(term_t *t)
{
    gstp_hello_t h;
    build_hello(t, &h);
    SEND(t, gstp_encode_hello, &h, "HELLO");
}

static void on_connect(uv_connect_t *req, int status)
{
    term_t *t = req->data;
    if (status == UV_ECANCELED || t->state != TS_CONNECTING)
        return;
    if (status < 0) {
        log_debug(t->id, "connect: %s", uv_strerror(status));
        term_close(t, backoff_ms(t), "connect failed");
        return;
    }
    uv_tcp_nodelay(&t->tcp, 1);
    gstp_decoder_init(&t->dec, t->rxbuf, sizeof t->rxbuf);
    t->last_rx_ms = now_ms(t);
    int rc = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
    if (rc < 0) {
        term_close(t, backoff_ms(t), "read start");
        return;
    }
    t->state = TS_HELLO;
    t->hs_start_ms = now_ms(t); /* CHALLENGE and WELCOME are due within the handshake timeout */
    send_hello(t);
}

static void on_retry(uv_timer_t *h);

static void connect_now(term_t *t)
{
    t->sim->st.connect_attempts++; /* a socket that cannot even be created is a failed attempt */
    int rc = uv_tcp_init(t->sim->loop, &t->tcp);
    if (rc < 0) {
        log_warn(t->id, "socket: %s", uv_strerror(rc));
        t->state = TS_WAIT;
        uv_timer_start(&t->retry, on_retry, backoff_ms(t), 0);
        return;
    }
    t->tcp.data = t;
    t->creq.data = t;
    t->state = TS_CONNECTING;
    t->last_rx_ms = now_ms(t);
    t->hs_start_ms = t->last_rx_ms;
    rc = uv_tcp_connect(&t->creq, &t->tcp, (const struct sockaddr *)&t->sim->addr, on_connect);
    if (rc < 0) {
        log_debug(t->id, "connect: %s", uv_strerror(rc));
        term_close(t, backoff_ms(t), "connect failed");
    }
}

static void on_retry(uv_timer_t *h)
{
    term_t *t = h->data;
    if (t->stopping || t->state != TS_WAIT)
        return;
    connect_now(t);
}

static void on_tcp_close(uv_handle_t *h)
{
    term_t *t = h->data;
    link_flush(t);
    t->inflight = 0;
    if (t->stopping) {
        t->state = TS_IDLE;
        return;
    }
    t->state = TS_WAIT;
    if (t->rebooting) {
        t->rebooting = 0;
        t->boot_ms = now_ms(t) + t->retry_ms;
        capture_free(t, "rebooted");
    }
    uv_timer_start(&t->retry, on_retry, t->retry_ms, 0);
}

/* Writes BYE at once, behind what the delay queue already holds (the close that follows drops
 * the queue, so the BYE goes first and the queued frames are lost with the link). */
static void send_bye_now(term_t *t, uint16_t reason, const char *msg)
{
    gstp_reject_t r = {.reason = reason};
    snprintf(r.message, sizeof r.message, "%s", msg);
    link_flush(t);
    wreq_t *w = link_wreq(t, GSTP_MAX_FRAME);
    int n = gstp_encode_bye(w->data, GSTP_MAX_FRAME, &r);
    if (n > 0) {
        w->len = (uint32_t)n;
        link_send_direct(t, w);
    } else {
        free(w);
    }
}

/* Closes the connection; reconnects after delay_ms unless the terminal is stopping. */
static void term_close(term_t *t, uint64_t delay_ms, const char *why)
{
    if (t->state == TS_IDLE || t->state == TS_CLOSING || t->state == TS_WAIT)
        return;
    if (t->state == TS_ONLINE)
        t->sim->st.online--;
    log_debug(t->id, "closing connection: %s", why);
    t->state = TS_CLOSING;
    t->retry_ms = delay_ms;
    uv_close((uv_handle_t *)&t->tcp, on_tcp_close);
}

static void on_tick(uv_timer_t *h)
{
    term_t *t = h->data;
    if (t->stopping)
        return;
    uint64_t now = now_ms(t);
    if (h == &t->retry) { /* reboot: the ACCEPTED result has been written */
        if (t->rebooting && t->state == TS_ONLINE) {
            send_bye_now(t, GSTP_REJ_SHUTDOWN, "rebooting"); /* protocol.md 6.10 */
            term_close(t, 1000 + term_rand(t) % 1001, "reboot");
        }
        return;
    }
    generate_due(t);
    switch (t->state) {
    case TS_CONNECTING: /* protocol.md 6.1, terminal-side timeouts */
        if (now - t->hs_start_ms > TERM_CONNECT_TIMEOUT_MS)
            term_close(t, backoff_ms(t), "connect timeout");
        break;
    case TS_HELLO:
    case TS_AUTH:
        if (now - t->hs_start_ms > TERM_HANDSHAKE_TIMEOUT_MS) {
            log_info(t->id, "no %s within %u s of HELLO, reconnecting",
                     t->state == TS_HELLO ? "CHALLENGE" : "WELCOME",
                     TERM_HANDSHAKE_TIMEOUT_MS / 1000);
            term_close(t, backoff_ms(t), "handshake timeout");
        }
        break;
    case TS_ONLINE:
        if (now - t->last_rx_ms > 3000ull * t->heartbeat_s) {
            log_info(t->id, "no data from server for %u s, reconnecting", 3u * t->heartbeat_s);
            term_close(t, backoff_ms(t), "heartbeat timeout");
            break;
        }
        if (t->inflight > 0 && now - t->ack_wait_ms > TERM_ACK_TIMEOUT_MS) {
            log_info(t->id, "no ACK for %u s with blocks in flight, reconnecting",
                     TERM_ACK_TIMEOUT_MS / 1000);
            term_close(t, backoff_ms(t), "ack timeout");
            break;
        }
        if (t->attempt && now - t->online_since_ms >= TERM_STABLE_MS)
            t->attempt = 0; /* protocol.md 9.4: stable for 60 s, the backoff starts over */
        if (now >= t->drop_at_ms) {
            term_close(t, backoff_ms(t), "simulated link loss");
            break;
        }
        if (now >= t->next_status_ms) {
            send_status(t);
            t->next_status_ms = now + (uint64_t)t->status_interval_s * 1000;
        }
        pump(t);
        break;
    default:
        break;
    }
}

/* ---- public ---- */

int term_init(term_t *t, sim_t *sim, uint32_t index, const char *id, const uint8_t *secret)
{
    const sim_config_t *c = &sim->cfg;
    uint64_t x = c->seed * 0x9E3779B97F4A7C15ull + index + 1;
    t->sim = sim;
    t->index = index;
    snprintf(t->id, sizeof t->id, "%s", id);
    memcpy(t->secret, secret, GSTP_SECRET_LEN);
    t->rng = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull | 1;
    for (int i = 0; i < 4; i++)
        term_rand(t);
    t->next_seq = 1;
    t->streaming = (uint8_t)c->stream;
    t->resync = 1;
    t->status_interval_s = c->status_interval_s;
    t->heartbeat_s = 30;
    t->ack_window = 1;
    t->drop_at_ms = UINT64_MAX;
    /* most terminals have GNSS; the rest are synchronised by NTP */
    int gnss = term_rand(t) % 10 != 0;
    t->time_source = gnss ? GSTP_TS_GNSS : GSTP_TS_NTP;
    t->time_quality = gnss ? GSTP_TQ_GPS_LOCKED : GSTP_TQ_NETWORK_SYNCED;
    t->rsrp_dbm = (int16_t)(-70 - (int)(term_rand(t) % 41));
    t->temp_c10 = (int16_t)(250 + term_rand(t) % 150);

    int disturbed = rand_unit(t) < c->disturbed_fraction;
    sig_params_t p = {.rate = c->rate,
                      .nominal_hz = c->nominal_hz,
                      .nominal_v = c->nominal_v,
                      .nominal_a = c->nominal_a,
                      .seed = c->seed ^ (0xD1B54A32D192ED03ull * (index + 1)),
                      .grid_seed = c->seed,
                      .disturb_per_min = disturbed ? c->disturb_per_min : 0};
    if (sig_init(&t->sig, &p) != 0)
        return GS_EINVAL;
    /* --schedule: on the terminal's own sample timeline, whose index 0 is sim->start_ns */
    for (uint32_t i = 0; i < c->nsched; i++) {
        sig_dist_t d;
        if (!sched_selects(&c->sched[i], index))
            continue;
        sched_dist(&c->sched[i], c->rate, &d);
        if (sig_schedule(&t->sig, &d) != 0)
            return GS_ELIMIT; /* sched_check() and SCHED_MAX rule this out */
    }

    uv_timer_init(sim->loop, &t->tick);
    uv_timer_init(sim->loop, &t->retry);
    uv_timer_init(sim->loop, &t->delay);
    uv_timer_init(sim->loop, &t->rx_delay);
    t->tick.data = t->retry.data = t->delay.data = t->rx_delay.data = t;
    t->tcp.data = t;
    t->state = TS_IDLE;
    return 0;
}

void term_start(term_t *t)
{
    t->boot_ms = now_ms(t);
    t->state = TS_WAIT;
    t->tick_ms = (t->streaming ? t->sim->cfg.block_ms : IDLE_TICK_MS);
    /* spread the ticks of all terminals over the period */
    uv_timer_start(&t->tick, on_tick, term_rand(t) % t->tick_ms, t->tick_ms);
    connect_now(t);
}

void term_stop_generating(term_t *t)
{
    if (t->cap) {
        capture_free(t, "simulator stopping");
    }
    set_tick(t);
}

int term_drained(const term_t *t)
{
    return t->count == 0;
}

void term_stop(term_t *t)
{
    if (t->stopping)
        return;
    if (t->state == TS_ONLINE)
        send_bye_now(t, GSTP_REJ_SHUTDOWN, "simulation ended");
    t->stopping = 1;
    term_close(t, 0, "stop");
    uv_close((uv_handle_t *)&t->tick, NULL);
    uv_close((uv_handle_t *)&t->retry, NULL);
    uv_close((uv_handle_t *)&t->delay, NULL);
    uv_close((uv_handle_t *)&t->rx_delay, NULL);
}

void term_free(term_t *t)
{
    if (t->ring) {
        for (uint32_t i = 0; i < t->count; i++)
            free(ring_at(t, i));
        free(t->ring);
    }
    free(t->hist);
    free(t->cap);
    free(t->cmds);
    t->ring = NULL;
    t->hist = NULL;
    t->cap = NULL;
    t->cmds = NULL;
}
