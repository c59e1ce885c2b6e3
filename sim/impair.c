/* gridsense-sim: the link of a terminal, with optional latency and jitter in both directions.
 *
 * With no impairment a frame goes straight to uv_write and received bytes straight to the
 * terminal. Otherwise each waits in a per-terminal, per-direction FIFO until its due time: now +
 * latency + uniform(-jitter, +jitter), but never before the data queued ahead of it, because TCP
 * preserves order. One timer per direction serves each FIFO. Incoming data is delayed too, so a
 * round trip (PING -> PONG, block -> ACK, COMMAND -> RESULT) takes twice the latency, as on a
 * real path; the end of the stream (the server closed) waits behind the bytes sent before it.
 *
 * Frames in the FIFO model the network path: a dropped link loses them (link_flush), so for the
 * terminal they were transmitted. It counts such blocks as sent, keeps them until acknowledged
 * and re-sends them with RESENT, as firmware whose modem took the bytes would.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "terminal.h"

wreq_t *link_wreq(term_t *t, uint32_t cap)
{
    wreq_t *w = xmalloc(sizeof *w + cap);
    w->next = NULL;
    w->t = t;
    w->mark_seq = 0;
    w->due_ms = 0;
    w->len = 0;
    return w;
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    term_t *t = w->t;
    free(w);
    if (status == UV_ECANCELED)
        return; /* the connection is closing */
    if (status < 0) {
        term_write_failed(t, status);
        return;
    }
    if (t->state == TS_ONLINE && link_queued(t) < SIM_WQ_LIMIT / 2)
        term_writable(t);
}

/* Hands w to libuv. Takes ownership. */
static int write_now(term_t *t, wreq_t *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    t->sim->st.bytes_sent += w->len;
    if (w->mark_seq)
        term_block_written(t, w->mark_seq);
    return 0;
}

int link_send_direct(term_t *t, wreq_t *w)
{
    return write_now(t, w);
}

static void on_delay(uv_timer_t *h)
{
    term_t *t = h->data;
    uint64_t now = uv_now(t->sim->loop);
    while (t->dq_head && t->dq_head->due_ms <= now) {
        wreq_t *w = t->dq_head;
        t->dq_head = w->next;
        if (!t->dq_head)
            t->dq_tail = NULL;
        t->dq_bytes -= w->len;
        int rc = write_now(t, w);
        if (rc < 0) {
            term_write_failed(t, rc);
            return;
        }
    }
    if (t->dq_head)
        uv_timer_start(&t->delay, on_delay, t->dq_head->due_ms - now, 0);
}

int link_send(term_t *t, wreq_t *w)
{
    const sim_config_t *c = &t->sim->cfg;
    /* Blocks stop at SIM_WQ_LIMIT; only small control frames (PONG, RESULT, ERROR) pass it. A
     * server that sends without ever reading would make those grow without bound. */
    if (link_queued(t) + w->len > SIM_WQ_HARD) {
        free(w);
        return UV_ENOBUFS;
    }
    if (c->latency_ms == 0 && c->jitter_ms == 0)
        return write_now(t, w);
    uint64_t now = uv_now(t->sim->loop);
    int64_t d = c->latency_ms;
    if (c->jitter_ms)
        d += (int64_t)(term_rand(t) % (2ull * c->jitter_ms + 1)) - (int64_t)c->jitter_ms;
    uint64_t due = now + (uint64_t)(d > 0 ? d : 0);
    if (due < t->dq_last_due)
        due = t->dq_last_due;
    t->dq_last_due = due;
    w->due_ms = due;
    w->next = NULL;
    if (t->dq_tail)
        t->dq_tail->next = w;
    else
        t->dq_head = w;
    t->dq_tail = w;
    t->dq_bytes += w->len;
    if (t->dq_head == w)
        uv_timer_start(&t->delay, on_delay, due - now, 0);
    return 0;
}

static void on_rx_delay(uv_timer_t *h)
{
    term_t *t = h->data;
    uint64_t now = uv_now(t->sim->loop);
    while (t->rq_head && t->rq_head->due_ms <= now) {
        rxq_t *q = t->rq_head;
        t->rq_head = q->next;
        if (!t->rq_head)
            t->rq_tail = NULL;
        t->rq_bytes -= q->len;
        term_received(t, q->data, q->len, q->eof);
        free(q);
    }
    if (t->rq_head)
        uv_timer_start(&t->rx_delay, on_rx_delay, t->rq_head->due_ms - now, 0);
}

int link_recv(term_t *t, const uint8_t *data, size_t n, int eof)
{
    const sim_config_t *c = &t->sim->cfg;
    if (c->latency_ms == 0 && c->jitter_ms == 0) {
        term_received(t, data, n, eof);
        return 0;
    }
    if (t->rq_bytes + n > SIM_WQ_HARD)
        return UV_ENOBUFS;
    uint64_t now = uv_now(t->sim->loop);
    int64_t d = c->latency_ms;
    if (c->jitter_ms)
        d += (int64_t)(term_rand(t) % (2ull * c->jitter_ms + 1)) - (int64_t)c->jitter_ms;
    uint64_t due = now + (uint64_t)(d > 0 ? d : 0);
    if (due < t->rq_last_due)
        due = t->rq_last_due;
    t->rq_last_due = due;
    rxq_t *q = xmalloc(sizeof *q + n);
    q->next = NULL;
    q->due_ms = due;
    q->eof = eof;
    q->len = (uint32_t)n;
    if (n)
        memcpy(q->data, data, n);
    if (t->rq_tail)
        t->rq_tail->next = q;
    else
        t->rq_head = q;
    t->rq_tail = q;
    t->rq_bytes += (uint32_t)n;
    if (t->rq_head == q)
        uv_timer_start(&t->rx_delay, on_rx_delay, due - now, 0);
    return 0;
}

size_t link_queued(const term_t *t)
{
    size_t q = t->dq_bytes;
    if (t->state != TS_IDLE && t->state != TS_WAIT)
        q += uv_stream_get_write_queue_size((const uv_stream_t *)&t->tcp);
    return q;
}

void link_flush(term_t *t)
{
    while (t->dq_head) {
        wreq_t *w = t->dq_head;
        t->dq_head = w->next;
        free(w);
    }
    t->dq_tail = NULL;
    t->dq_bytes = 0;
    t->dq_last_due = 0;
    uv_timer_stop(&t->delay);
    while (t->rq_head) {
        rxq_t *q = t->rq_head;
        t->rq_head = q->next;
        free(q);
    }
    t->rq_tail = NULL;
    t->rq_bytes = 0;
    t->rq_last_due = 0;
    uv_timer_stop(&t->rx_delay);
}
