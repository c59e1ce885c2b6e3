/* Terminal gateway data path: chunk checks, block reassembly, the block observer, submission to
 * the store, and cumulative ACKs once the store reports blocks committed (acknowledged =
 * durable). */
#include "internal.h"

#include "core/err.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- reassembly ------------------------------------------------------------------------------
 */

static void send_ack(sess_t *s, uint64_t seq)
{
    gstp_ack_t a = {.seq = seq};
    SEND(s, gstp_encode_ack, &a);
    s->gw->st_.acks_sent++;
}

void gw__free_block(sess_t *s)
{
    if (s->blk) {
        s->gw->reasm_bytes -= s->blk_size;
        free(s->blk);
        s->blk = NULL;
    }
    if (s->blk_enc) {
        s->gw->reasm_bytes -= s->blk_enc_cap;
        free(s->blk_enc);
        s->blk_enc = NULL;
    }
    s->blk_len = s->blk_size = 0;
    s->blk_enc_len = s->blk_enc_cap = 0;
}

/* Keeps a codec-1 or codec-2 chunk's segment after the block's earlier ones (the block is stored as it
 * came, wcodec.h). The buffer grows by doubling and reassembly memory counts its capacity.
 * Returns 0, or -1 when the 128 MiB reassembly limit would be passed. */
static int keep_segment(sess_t *s, const uint8_t *seg, size_t len)
{
    gw_t *g = s->gw;
    if (s->blk_enc_len + len > s->blk_enc_cap) {
        size_t cap = s->blk_enc_cap ? s->blk_enc_cap : 4096;
        while (cap < s->blk_enc_len + len)
            cap *= 2;
        if (g->reasm_bytes + (cap - s->blk_enc_cap) > g->o.max_reassembly)
            return -1;
        s->blk_enc = xrealloc(s->blk_enc, cap);
        g->reasm_bytes += cap - s->blk_enc_cap;
        s->blk_enc_cap = cap;
    }
    memcpy(s->blk_enc + s->blk_enc_len, seg, len);
    s->blk_enc_len += len;
    return 0;
}

static size_t sample_width(uint8_t fmt)
{
    return fmt == GSTP_FMT_INT32 ? 4 : 2;
}

/* A protocol violation in the data path ends the session: the terminal reconnects and re-sends
 * from the resume point, so nothing is silently skipped (a cumulative ACK must never cover a
 * block we dropped). */
static void data_violation(sess_t *s, uint16_t code, uint8_t type, const char *msg)
{
    s->gw->st_.protocol_errors++;
    log_limited(LOG_WARN, s->ip, "%s: protocol violation: %s; closing session", gw__who(s), msg);
    gw__send_error(s, code, type, msg);
    gw__send_reject(s, 1, GSTP_REJ_PROTOCOL, 0, msg);
    gw__sess_close(s, "protocol error");
}

/* Hands a new waveform block to the observer with the channel descriptions of its session. */
static int observe_block(sess_t *s, const gstp_block_hdr_t *h, const uint8_t *data, size_t len)
{
    gw_t *g = s->gw;
    /* gw__on_block refused any block whose rate or channels differ from HELLO (decision 8). */
    gw_block_info_t bi;
    memset(&bi, 0, sizeof bi);
    bi.seq = h->seq;
    bi.t0_ns = h->t0_ns;
    bi.sample_rate = h->sample_rate;
    bi.nominal_hz = s->nominal_hz;
    bi.channel_mask = h->channel_mask;
    bi.nchannels = h->nchannels;
    bi.sample_fmt = h->sample_fmt;
    bi.time_quality = h->time_quality;
    bi.nsamples = h->nsamples;
    bi.declared_v = s->declared_v;
    int n = 0;
    for (int i = 0; i < (int)GSTP_MAX_CHANNELS && n < (int)GSTP_MAX_CHANNELS; i++) {
        if (!(h->channel_mask & (1u << i)))
            continue;
        bi.ch[n++] = s->chans[i];
    }
    return g->block_cb(g->block_ud, s->term->id, &bi, data, len);
}

static void block_complete(sess_t *s)
{
    gw_t *g = s->gw;
    term_t *t = s->term;
    const gstp_block_hdr_t *h = &s->blk_hdr;
    s->blocks++;
    t->blocks++;
    g->st_.blocks_received++;
    if (h->seq <= t->submitted_seq) {
        /* Already stored or on its way: ignore, but make sure the terminal hears the ACK. */
        t->duplicates++;
        g->st_.blocks_duplicate++;
        gw__free_block(s);
        if (t->inflight == 0) {
            send_ack(s, t->durable_seq);
        }
        return;
    }
    store_item_t *it = store_item_new(STORE_ITEM_BLOCK);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    it->cookie = s->gw->cookie_base | s->id;
    it->seq = h->seq;
    it->is_event = s->blk_type == GSTP_EVENT;
    it->t0_ns = h->t0_ns;
    it->sample_rate = h->sample_rate;
    it->channel_mask = h->channel_mask;
    it->nchannels = h->nchannels;
    it->sample_fmt = h->sample_fmt;
    it->time_quality = h->time_quality;
    it->nsamples = h->nsamples;
    /* The session's channel layout goes with the block: the stored counts mean nothing without
     * the scales (the store keeps one row per change). */
    for (int i = 0; i < (int)GSTP_MAX_CHANNELS && it->nlayout < STORE_MAX_CHANNELS; i++)
        if (s->chan_present & (1u << i))
            it->layout[it->nlayout++] = (store_chan_t){.index = s->chans[i].index,
                                                       .kind = s->chans[i].kind,
                                                       .phase = s->chans[i].phase,
                                                       .unit = s->chans[i].unit,
                                                       .scale = s->chans[i].scale};
    it->data = s->blk; /* ownership moves to the item */
    it->data_len = s->blk_size;
    it->nominal_hz = (uint32_t)s->nominal_hz; /* period hint of the writer's encoder */
    g->reasm_bytes -= s->blk_size;
    if (s->blk_enc) {
        g->reasm_bytes -= s->blk_enc_cap;
        if (s->blk_enc_len < s->blk_size) {
            /* Stored as it came (the writer does not re-encode it). A block the terminal's
             * encoder made larger than raw is not worth keeping so: the writer encodes the raw
             * samples itself, or keeps them raw. */
            it->enc = s->blk_enc;
            it->enc_len = s->blk_enc_len;
            it->codec = s->blk_hdr.codec; /* 1 or 2 */
        } else {
            free(s->blk_enc);
        }
        s->blk_enc = NULL;
        s->blk_enc_len = s->blk_enc_cap = 0;
    }
    size_t nbytes = it->data_len + it->enc_len; /* store_submit may free the item */
    if (it->is_event) {
        it->trigger_ns = s->blk_ev.trigger_ns;
        it->trigger = s->blk_ev.trigger;
        it->pretrigger = s->blk_ev.pretrigger;
        it->value_permille = s->blk_ev.value_permille;
        it->trigger_channel = s->blk_ev.channel;
    }
    s->blk = NULL;
    s->blk_len = s->blk_size = 0;
    if (g->block_cb && !it->is_event)
        it->ana_pending = observe_block(s, h, it->data, it->data_len);
    else
        it->ana_pending = STORE_ANA_SKIPPED; /* not analysed live: the backlog (store.h) */
    if (store_submit(g->st, it) < 0) {
        gw__sess_close(s, "store stopped");
        return;
    }
    g->backlog_bytes += nbytes;
    t->submitted_seq = h->seq;
    t->inflight++;
    gw__check_pressure(g);
    gw__update_reading(s);
}

/* Time quality order: a higher number is worse, and 0 (unknown) is the worst of all. */
static int tq_rank(uint8_t q)
{
    return q == 0 ? 256 : q;
}

static int same_block(const gstp_block_hdr_t *a, const gstp_block_hdr_t *b)
{
    return a->seq == b->seq && a->t0_ns == b->t0_ns && a->sample_rate == b->sample_rate &&
           a->channel_mask == b->channel_mask && a->nsamples == b->nsamples &&
           a->sample_fmt == b->sample_fmt && a->chunk_count == b->chunk_count &&
           a->codec == b->codec;
}

void gw__on_block(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_block_t b;
    if (gstp_parse_block(f, &b) < 0) {
        g->st_.parse_errors++;
        data_violation(s, GSTP_ERR_MALFORMED, f->type, "malformed block chunk");
        return;
    }
    const gstp_block_hdr_t *h = &b.hdr;
    size_t set_bytes = (size_t)h->nchannels * sample_width(h->sample_fmt);
    if (h->chunk_index == 0) {
        if (s->blk) {
            data_violation(s, GSTP_ERR_SEQUENCE, f->type, "new block before previous completed");
            return;
        }
        /* Decision 8: a block is sampled as HELLO said (the stored block and the analysis are
         * described by it); later chunks must repeat these fields (same_block). */
        if (h->sample_rate != s->sample_rate || (h->channel_mask & ~(uint32_t)s->chan_present)) {
            char m[GSTP_MAX_STR + 1];
            snprintf(m, sizeof m, "block rate %u or channels 0x%x not as in HELLO",
                     (unsigned)h->sample_rate, (unsigned)h->channel_mask);
            data_violation(s, GSTP_ERR_MALFORMED, f->type, m);
            return;
        }
        size_t size = (size_t)h->nsamples * h->nchannels * sample_width(h->sample_fmt);
        if (size > g->o.max_block_bytes) {
            data_violation(s, GSTP_ERR_MALFORMED, f->type, "block larger than server limit");
            return;
        }
        if (g->reasm_bytes + size > g->o.max_reassembly) {
            /* Too many half-received blocks at once (slow links or a flood): shed this session
             * rather than pause everyone; the terminal re-sends the block later. */
            log_limited(LOG_WARN, s->ip, "%s: reassembly memory full (%zu bytes), asking to retry",
                        gw__who(s), g->reasm_bytes);
            gw__send_reject(s, 1, GSTP_REJ_BUSY, 5, "server busy, retry later"); /* decision 9 */
            gw__sess_close(s, "reassembly full");
            return;
        }
        s->blk = xmalloc(size);
        s->blk_size = size;
        s->blk_len = 0;
        s->blk_type = f->type;
        s->blk_hdr = *h;
        s->blk_ev = b.event;
        s->blk_next_chunk = 0;
        s->blk_next_sample = 0;
        g->reasm_bytes += size;
    } else if (!s->blk || !same_block(&s->blk_hdr, h) || s->blk_type != f->type) {
        data_violation(s, GSTP_ERR_SEQUENCE, f->type, "chunk does not continue the open block");
        return;
    }
    size_t raw_len = (size_t)h->n_in_chunk * set_bytes;
    if (h->chunk_index != s->blk_next_chunk || h->first_sample != s->blk_next_sample ||
        s->blk_len + raw_len > s->blk_size) {
        data_violation(s, GSTP_ERR_SEQUENCE, f->type, "chunk out of order");
        return;
    }
    /* Raw sets are copied, a codec-1 segment is decoded, into the block at first_sample; a
     * segment that does not decode to exactly this chunk's sets is a malformed chunk (7.4). */
    if (gstp_block_decode_chunk(&b, s->blk, s->blk_size) != GSTP_OK) {
        g->st_.parse_errors++;
        data_violation(s, GSTP_ERR_MALFORMED, f->type, "codec segment does not decode");
        return;
    }
    if (GSTP_CODEC_IS_WCODEC(h->codec) && keep_segment(s, b.samples, b.samples_len) < 0) {
        log_limited(LOG_WARN, s->ip, "%s: reassembly memory full (%zu bytes), asking to retry",
                    gw__who(s), g->reasm_bytes);
        gw__send_reject(s, 1, GSTP_REJ_BUSY, 5, "server busy, retry later"); /* decision 9 */
        gw__sess_close(s, "reassembly full");
        return;
    }
    g->st_.sample_wire_bytes[h->codec] += b.samples_len;
    g->st_.sample_raw_bytes[h->codec] += raw_len;
    /* Time quality may vary between chunks: the block keeps the worst (decision 8). */
    if (tq_rank(h->time_quality) > tq_rank(s->blk_hdr.time_quality))
        s->blk_hdr.time_quality = h->time_quality;
    s->blk_len += raw_len;
    s->blk_next_chunk++;
    s->blk_next_sample += h->n_in_chunk;
    if (s->blk_next_chunk == h->chunk_count) {
        if (s->blk_len != s->blk_size) {
            data_violation(s, GSTP_ERR_SEQUENCE, f->type, "block incomplete after last chunk");
            return;
        }
        block_complete(s);
    }
}

/* ---- store completions --------------------------------------------------------------------------
 */

static void mark_dirty(gw_t *g, term_t *t)
{
    if (!t->ack_dirty) {
        t->ack_dirty = 1;
        t->dirty_next = g->dirty;
        g->dirty = t;
    }
}

void gw__block_done(gw_t *g, const store_item_t *it)
{
    g->backlog_bytes -= it->data_len + it->enc_len;
    term_t *t = hmap_get(&g->terms, it->terminal_id);
    if (it->result == 0)
        g->st_.blocks_stored++;
    else if (it->result == 1)
        g->st_.blocks_duplicate++;
    else
        g->st_.blocks_failed++;
    if (t) {
        if (t->inflight)
            t->inflight--;
        if (it->result >= 0) {
            if (it->seq > t->durable_seq) {
                t->durable_seq = it->seq;
                t->pub_dirty = 1; /* also after the session ended: the next tick publishes it */
            }
            mark_dirty(g, t);
        } else {
            /* Not durable: make the terminal re-send from what is. One line per batch of
             * failures is written by process_done (a full disk at shutdown fails thousands). */
            log_debug(t->id, "block %llu not stored: %s", (unsigned long long)it->seq,
                      err_str(it->result));
            t->submitted_seq = t->durable_seq;
            if (t->sess)
                gw__sess_close(t->sess, "store failure");
        }
    }
}

void gw__send_acks(gw_t *g)
{
    /* One cumulative ACK per terminal per batch. */
    for (term_t *t = g->dirty; t;) {
        term_t *next = t->dirty_next;
        t->ack_dirty = 0;
        t->dirty_next = NULL;
        sess_t *s = t->sess;
        if (s && s->state == S_ONLINE) {
            send_ack(s, t->durable_seq);
            gw__update_reading(s);
        }
        t = next;
    }
    g->dirty = NULL;
}
