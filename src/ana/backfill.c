/* Backfill and re-analysis: the analysis of stored blocks (ana.h, "Backfill and re-analysis";
 * docs/operations.md). ana_rebuild_range turns a range of a terminal's stored blocks into a
 * store_rebuild_t (shared with `gridsense reanalyze`); the backfill thread walks the analysis
 * backlog and submits one rebuild per settled unit to the store writer. */
#define _GNU_SOURCE /* SCHED_IDLE */
#include "ana/internal.h"

#include "ana/json.h"
#include "core/err.h"
#include "core/log.h"
#include "dsp/dsp.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BF_WHO    "backfill"
#define MARGIN_NS (60LL * 1000000000LL) /* engine state before the range, events after it */
#define POLL_NS   (2LL * 1000000000LL)  /* backlog look when there was nothing to do */
#define LIST_MAX  64                    /* units looked at per round, oldest first */
#define RETRY_NS  (30LL * 1000000000LL) /* after a failed unit */
#define CHUNK_NS  (60LL * 1000000000LL) /* signal read per statement */

/* ---- ana_rebuild_range --------------------------------------------------------------------- */

/* What a stream was configured from; a block that differs restarts it (as in ana.c). */
typedef struct {
    uint32_t rate;
    int nch;
    uint8_t kind[DSP_MAX_CH], phase[DSP_MAX_CH];
    float scale[DSP_MAX_CH];
} rsig_t;

typedef struct {
    int64_t s, e;
} span_t;

typedef struct {
    store_rebuild_t *rb;
    ana_rebuild_info_t *info;
    const volatile int *stop;
    const char *tid;
    int64_t from, to;
    int nominal_hz;
    double declared_v;
    int dc_removal;
    uint64_t max_seq;
    /* the stream being fed */
    dsp_stream_t *ds;
    rsig_t sig;
    json_names_t names;
    int warned;
    /* WAVEFORM coverage (merged spans), to leave out captures of the same samples */
    span_t *cov;
    size_t ncov, cov_cap;
    int captures;     /* pass 2: captures */
    uint64_t fed_seq; /* highest seq fed in this pass (a block read by two chunks: once) */
    int fed_any;
} rctx_t;

static void add_meas(rctx_t *c, const char *interval, int64_t t0, int64_t t1, uint32_t flags,
                     uint32_t count, buf_t *json)
{
    store_rebuild_t *rb = c->rb;
    if (t1 <= c->from || t1 > c->to)
        return; /* another unit's (the margins) */
    if (rb->nmeas == rb->meas_cap) {
        rb->meas_cap = rb->meas_cap ? rb->meas_cap * 2 : 256;
        rb->meas = xrealloc(rb->meas, rb->meas_cap * sizeof *rb->meas);
    }
    store_rb_meas_t *m = &rb->meas[rb->nmeas++];
    memset(m, 0, sizeof *m);
    snprintf(m->interval, sizeof m->interval, "%s", interval);
    m->t_start_ns = t0;
    m->t_end_ns = t1;
    m->flags = flags;
    m->count = count;
    m->data = json->data; /* ownership moves */
    json->data = NULL;
    json->len = json->cap = 0;
}

static void on_agg(void *ud, const dsp_agg_t *g)
{
    rctx_t *c = ud;
    buf_t b = {0};
    /* as the live analysis stores them (ana.c on_agg): spectra for 10 min and 2 h */
    ana_json_agg(&b, g, &c->names, g->kind != DSP_AGG_3S);
    add_meas(c, dsp_agg_name(g->kind), g->t_start_ns, g->t_end_ns, g->flags, g->count, &b);
    buf_free(&b);
}

static void on_freq10(void *ud, const dsp_freq10_t *f)
{
    rctx_t *c = ud;
    buf_t b = {0};
    ana_json_freq10(&b, f);
    add_meas(c, "10s", f->t_start_ns, f->t_end_ns, f->flags, f->cycles, &b);
    buf_free(&b);
}

static void on_event(void *ud, const dsp_event_t *e)
{
    rctx_t *c = ud;
    store_rebuild_t *rb = c->rb;
    if (e->start_ns < c->from || e->start_ns >= c->to)
        return;
    if (rb->nev == rb->ev_cap) {
        rb->ev_cap = rb->ev_cap ? rb->ev_cap * 2 : 16;
        rb->ev = xrealloc(rb->ev, rb->ev_cap * sizeof *rb->ev);
    }
    store_rb_event_t *v = &rb->ev[rb->nev++];
    memset(v, 0, sizeof *v);
    snprintf(v->kind, sizeof v->kind, "%s", dsp_event_name(e->kind));
    v->start_ns = e->start_ns;
    v->duration_ns = e->duration_ns;
    v->extreme = e->extreme;
    v->extreme_pct = e->extreme_pct;
    v->reference = e->reference;
    v->channels = e->channels;
    v->flags = e->flags;
    v->worst_channel = e->worst_channel;
    /* the names as the live analysis stores them (ana.c on_event) */
    buf_t names = {0};
    for (int k = 0; k < c->names.nch && k < 32; k++)
        if (e->channels & (1u << k)) {
            if (names.len)
                buf_putc(&names, ',');
            buf_puts(&names, c->names.name[k]);
        }
    if (!names.data)
        buf_puts(&names, "");
    v->channel_names = names.data;
    if (e->worst_channel >= 0 && e->worst_channel < c->names.nch)
        snprintf(v->worst_name, sizeof v->worst_name, "%s", c->names.name[e->worst_channel]);
}

static void close_stream(rctx_t *c)
{
    if (c->ds) {
        dsp_stream_flush(c->ds);
        dsp_stream_free(c->ds);
        c->ds = NULL;
    }
}

/* The block's signature from its stored layout; -1 when it has none usable. */
static int block_sig(const store_block_t *b, rsig_t *sig)
{
    memset(sig, 0, sizeof *sig);
    if (b->nlayout <= 0 || b->nchannels < 1 || b->nchannels > DSP_MAX_CH)
        return -1;
    sig->rate = b->sample_rate;
    int n = 0;
    for (int i = 0; i < 32 && n < DSP_MAX_CH; i++) {
        if (!(b->channel_mask & (1u << i)))
            continue;
        int k = 0;
        while (k < b->nlayout && b->layout[k].index != i)
            k++;
        if (k == b->nlayout)
            return -1;
        sig->kind[n] = b->layout[k].kind <= DSP_KIND_CURRENT ? b->layout[k].kind : DSP_KIND_OTHER;
        sig->phase[n] = b->layout[k].phase <= DSP_PHASE_N ? b->layout[k].phase : DSP_PHASE_NONE;
        sig->scale[n] = b->layout[k].scale;
        n++;
    }
    if (n != b->nchannels)
        return -1;
    sig->nch = n;
    return 0;
}

static int open_stream(rctx_t *c, const rsig_t *sig)
{
    dsp_config_t cfg;
    dsp_config_default(&cfg, sig->rate, c->nominal_hz, sig->nch);
    cfg.declared_v = c->declared_v;
    cfg.dc_removal = c->dc_removal;
    for (int i = 0; i < sig->nch; i++) {
        cfg.ch[i].kind = sig->kind[i];
        cfg.ch[i].phase = sig->phase[i];
        cfg.ch[i].scale = sig->scale[i];
    }
    ana_json_names(&c->names, &cfg);
    dsp_sink_t sink = {.event = on_event, .agg = on_agg, .freq10 = on_freq10, .ud = c};
    char err[256];
    if (dsp_stream_new(&cfg, &sink, &c->ds, err, sizeof err) < 0) {
        if (!c->warned)
            log_warn(c->tid, "stored blocks not analysable: %s", err);
        c->warned = 1;
        c->ds = NULL;
        return -1;
    }
    c->sig = *sig;
    return 0;
}

/* 1 if [s, e) lies inside one span of WAVEFORM coverage (a millisecond of slack). */
static int covered_by_waveforms(const rctx_t *c, int64_t s, int64_t e)
{
    for (size_t i = 0; i < c->ncov; i++)
        if (c->cov[i].s <= s + 1000000 && e <= c->cov[i].e + 1000000)
            return 1;
    return 0;
}

static int on_block(void *ud, const store_block_t *b)
{
    rctx_t *c = ud;
    if (c->stop && *c->stop)
        return GS_ECLOSED;
    if (b->seq > c->max_seq)
        return 0; /* stored after the rebuild began: the backlog keeps it */
    if (c->fed_any && b->seq <= c->fed_seq)
        return 0; /* overlaps the previous chunk too: fed already */
    c->fed_any = 1;
    c->fed_seq = b->seq;
    int64_t dur = (int64_t)b->nsamples * 1000000000LL / (int64_t)b->sample_rate;
    int64_t end = b->t0_ns + dur;
    int in_range = b->t0_ns < c->to && end > c->from;
    if (c->captures) {
        if (!in_range)
            return 0;
        if (covered_by_waveforms(c, b->t0_ns, end)) {
            c->info->covered++;
            return 0;
        }
    }
    rsig_t sig;
    int width = b->sample_fmt == 2 ? 4 : 2;
    if (block_sig(b, &sig) < 0 || (b->sample_fmt != 1 && b->sample_fmt != 2) ||
        (size_t)b->nsamples * (size_t)b->nchannels * (size_t)width != b->data_len) {
        if (in_range)
            c->info->unusable++;
        return 0;
    }
    if (!c->ds || memcmp(&sig, &c->sig, sizeof sig) != 0) {
        close_stream(c);
        if (open_stream(c, &sig) < 0) {
            if (in_range)
                c->info->unusable++;
            return 0;
        }
    }
    if (c->captures) /* each capture is a segment of its own */
        dsp_stream_flush(c->ds);
    const void *data = b->data;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint8_t *sw = xmalloc(b->data_len ? b->data_len : 1);
    for (size_t k = 0; k + (size_t)width <= b->data_len; k += (size_t)width)
        for (int m = 0; m < width; m++)
            sw[k + (size_t)m] = b->data[k + (size_t)(width - 1 - m)];
    data = sw;
#endif
    uint32_t flags = b->time_quality == 1 ? 0 : DSP_F_TIME_UNSYNC; /* GSTP_TQ_GPS_LOCKED */
    int rc = dsp_stream_push(c->ds, b->t0_ns, b->sample_fmt == 2 ? DSP_FMT_I32 : DSP_FMT_I16, data,
                             b->nsamples, flags);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    free(sw);
#endif
    if (rc < 0 || !in_range)
        return 0;
    store_rebuild_t *rb = c->rb;
    int64_t s = b->t0_ns < c->from ? c->from : b->t0_ns;
    int64_t e = end > c->to ? c->to : end;
    if (!rb->covered || s < rb->cover_from_ns)
        rb->cover_from_ns = s;
    if (!rb->covered || e > rb->cover_to_ns)
        rb->cover_to_ns = e;
    rb->covered = 1;
    c->info->signal_s += (double)(e - s) / 1e9;
    if (c->captures) {
        c->info->captures++;
        return 0;
    }
    c->info->blocks++;
    /* WAVEFORM coverage, merged while contiguous (half a block of slack) */
    if (c->ncov && b->t0_ns <= c->cov[c->ncov - 1].e + dur / 2) {
        if (end > c->cov[c->ncov - 1].e)
            c->cov[c->ncov - 1].e = end;
    } else {
        if (c->ncov == c->cov_cap) {
            c->cov_cap = c->cov_cap ? c->cov_cap * 2 : 16;
            c->cov = xrealloc(c->cov, c->cov_cap * sizeof *c->cov);
        }
        c->cov[c->ncov++] = (span_t){b->t0_ns, end};
    }
    return 0;
}

int ana_rebuild_range(store_t *rd, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                      int dc_removal, const volatile int *stop, store_rebuild_t *rb,
                      ana_rebuild_info_t *info)
{
    memset(rb, 0, sizeof *rb);
    memset(info, 0, sizeof *info);
    snprintf(rb->terminal_id, sizeof rb->terminal_id, "%s", terminal_id);
    rb->from_ns = from_ns;
    rb->to_ns = to_ns;
    if (from_ns >= to_ns)
        return GS_EINVAL;
    store_terminal_t t;
    int rc = store_terminal_info(rd, terminal_id, &t);
    if (rc < 0)
        return rc;
    int64_t rx;
    /* Every block read has seq <= max_seq: what was stored before we began. A block stored
     * while we run has a higher seq (a terminal's stored seqs only grow) and stays in the
     * backlog if it is in it. */
    if ((rc = store_last_block(rd, terminal_id, &rb->max_seq, &rx)) < 0)
        return rc;
    rctx_t c;
    memset(&c, 0, sizeof c);
    c.rb = rb;
    c.info = info;
    c.stop = stop;
    c.tid = terminal_id;
    c.from = from_ns;
    c.to = to_ns;
    c.nominal_hz = t.nominal_hz == 60 ? 60 : 50;
    c.declared_v = t.declared_v;
    c.dc_removal = dc_removal;
    c.max_seq = rb->max_seq;
    int64_t lo = from_ns > INT64_MIN + MARGIN_NS ? from_ns - MARGIN_NS : from_ns;
    int64_t hi = to_ns < INT64_MAX - MARGIN_NS ? to_ns + MARGIN_NS : to_ns;
    /* In chunks: each store_blocks_read is one statement, i.e. one read transaction, and a
     * long one (a 2-h unit at idle priority on a busy machine) would keep SQLite from
     * checkpointing the WAL past it while the server ingests. The stream goes on across
     * chunks. */
    rc = 0;
    for (int64_t k = lo; rc == 0 && k < hi; k = k < hi - CHUNK_NS ? k + CHUNK_NS : hi)
        rc = store_blocks_read(rd, terminal_id, k, k < hi - CHUNK_NS ? k + CHUNK_NS : hi,
                               STORE_BLOCKS_WAVEFORM, on_block, &c);
    close_stream(&c);
    c.captures = 1;
    c.fed_any = 0;
    for (int64_t k = from_ns; rc == 0 && k < to_ns; k = k < to_ns - CHUNK_NS ? k + CHUNK_NS : to_ns)
        rc = store_blocks_read(rd, terminal_id, k, k < to_ns - CHUNK_NS ? k + CHUNK_NS : to_ns,
                               STORE_BLOCKS_EVENT, on_block, &c);
    close_stream(&c);
    free(c.cov);
    return rc;
}

/* ---- the backfill thread ------------------------------------------------------------------- */

struct ana_bf {
    ana_opts_t o;
    store_t *wr; /* the server's store: its writer */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    volatile int stop; /* under mu for the wait; read without it by the analysis (a flag) */
    /* one submitted rebuild at a time, under mu */
    int done, result;
    /* counters, under mu */
    uint64_t units, blocks, captures, errors;
    double signal_s, busy_s, cpu_s;
    int64_t backlog_units, backlog_blocks;
    double backlog_s;
};

/* Writer thread: the rebuild's batch committed (or failed). */
static void rebuilt(store_item_t *it, void *ud)
{
    ana_bf_t *b = ud;
    uv_mutex_lock(&b->mu);
    b->result = it->result;
    b->done = 1;
    uv_cond_broadcast(&b->cv);
    uv_mutex_unlock(&b->mu);
    store_item_free(it); /* (the rebuild is the backfill's) */
}

/* Sleeps up to ns unless stopped. */
static void bf_wait(ana_bf_t *b, int64_t ns)
{
    uv_mutex_lock(&b->mu);
    if (!b->stop)
        uv_cond_timedwait(&b->cv, &b->mu, (uint64_t)ns);
    uv_mutex_unlock(&b->mu);
}

typedef struct {
    store_ana_pending_t p[LIST_MAX];
    int n;
} plist_t;

static int collect(void *ud, const store_ana_pending_t *p)
{
    plist_t *l = ud;
    if (l->n < LIST_MAX)
        l->p[l->n++] = *p;
    return 0;
}

/* CPU time of the calling thread (the backfill runs at idle priority: its wall time says how
 * busy the machine is, its CPU time how fast it analyses). */
static double thread_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Captures-only units: 1 when every EVENT capture of the unit (up to max_seq) lies within
 * WAVEFORM blocks (a streaming terminal's capture: the live analysis saw the same samples), so
 * the unit needs no re-analysis; 0 when one does not, or < 0. */
typedef struct {
    store_t *rd;
    const char *tid;
    uint64_t max_seq;
    int64_t need, have; /* per capture: its length, the waveform time found inside it */
    int all;
} capchk_t;

static int wave_in(void *ud, const store_block_t *b)
{
    capchk_t *k = ud;
    int64_t dur = (int64_t)b->nsamples * 1000000000LL / (int64_t)b->sample_rate;
    k->have += dur;
    return 0;
}

static int cap_one(void *ud, const store_block_t *b)
{
    capchk_t *k = ud;
    if (b->seq > k->max_seq)
        return 0;
    int64_t dur = (int64_t)b->nsamples * 1000000000LL / (int64_t)b->sample_rate;
    k->have = 0;
    int rc = store_blocks_read(k->rd, k->tid, b->t0_ns, b->t0_ns + dur, STORE_BLOCKS_WAVEFORM,
                               wave_in, k);
    if (rc < 0)
        return rc;
    /* the waveform blocks overlapping the capture hold at least its length (they may reach
     * beyond it at both ends: a sum >= the capture's length with none missing) */
    if (k->have < dur) {
        k->all = 0;
        return 1; /* stop: a full rebuild is needed */
    }
    return 0;
}

static int captures_covered(store_t *rd, const store_ana_pending_t *p)
{
    capchk_t k = {.rd = rd, .tid = p->terminal_id, .max_seq = p->last_seq, .all = 1};
    int rc =
        store_blocks_read(rd, p->terminal_id, p->unit_start_ns,
                          p->unit_start_ns + STORE_ANA_UNIT_NS, STORE_BLOCKS_EVENT, cap_one, &k);
    if (rc < 0)
        return rc;
    return k.all;
}

/* Rebuilds one unit: 1 done, 0 not settled yet, < 0 failed. */
static int do_unit(ana_bf_t *b, store_t *rd, const store_ana_pending_t *p)
{
    int64_t now = time_utc_ns();
    int64_t end = p->unit_start_ns + STORE_ANA_UNIT_NS;
    uint64_t last_seq;
    int64_t last_rx;
    int rc = store_last_block(rd, p->terminal_id, &last_seq, &last_rx);
    if (rc < 0)
        return rc;
    int settled = end + (int64_t)b->o.backfill_grace_s * 1000000000LL <= now ||
                  last_rx + (int64_t)b->o.backfill_idle_s * 1000000000LL <= now;
    if (!settled)
        return 0;
    store_rebuild_t *rb = xcalloc(1, sizeof *rb);
    ana_rebuild_info_t info;
    memset(&info, 0, sizeof info);
    int64_t t0 = time_mono_ns();
    double cpu0 = thread_cpu_s();
    int skip = 0;
    if (p->blocks == 0 && p->restarts == 0 && p->captures > 0) {
        skip = captures_covered(rd, p);
        if (skip < 0) {
            free(rb);
            return skip;
        }
        info.covered = skip ? p->captures : 0;
    }
    if (skip)
        rc = GS_ENOTFOUND; /* nothing to analyse */
    else
        rc = ana_rebuild_range(rd, p->terminal_id, p->unit_start_ns, end, b->o.dc_removal, &b->stop,
                               rb, &info);
    if (rc == GS_ENOTFOUND) {
        /* captures the waveforms cover, or the terminal was removed (its blocks stay stored,
         * with nothing to attribute them to): the rebuild (covered 0) only clears the unit from
         * the backlog */
        memset(rb, 0, sizeof *rb);
        snprintf(rb->terminal_id, sizeof rb->terminal_id, "%s", p->terminal_id);
        rb->from_ns = p->unit_start_ns;
        rb->to_ns = end;
        rb->max_seq = p->last_seq;
        rc = 0;
    }
    double busy = (double)(time_mono_ns() - t0) / 1e9;
    double cpu = thread_cpu_s() - cpu0;
    if (rc < 0) {
        store_rebuild_clear(rb);
        free(rb);
        return rc;
    }
    store_item_t *it = store_item_new(STORE_ITEM_ANA_REBUILD);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", p->terminal_id);
    it->rebuild = rb;
    it->notify = rebuilt;
    it->notify_ud = b;
    uv_mutex_lock(&b->mu);
    b->done = 0;
    uv_mutex_unlock(&b->mu);
    rc = store_submit(b->wr, it);
    if (rc == 0) {
        uv_mutex_lock(&b->mu);
        while (!b->done)
            uv_cond_wait(&b->cv, &b->mu);
        rc = b->result < 0 ? b->result : 0;
        uv_mutex_unlock(&b->mu);
    }
    if (rc == 0) {
        char when[40];
        time_fmt_utc(p->unit_start_ns, when, sizeof when);
        log_info(p->terminal_id,
                 "backfill: unit %s: %lld blocks, %lld captures (%.1f s of signal) analysed in "
                 "%.2f s (%.2f s of CPU: %.0fx real time), %lld captures left (waveforms cover "
                 "them); events "
                 "%lld -> %lld, %lld aggregates written",
                 when, (long long)info.blocks, (long long)info.captures, info.signal_s, busy, cpu,
                 cpu > 0 ? info.signal_s / cpu : 0.0, (long long)info.covered,
                 (long long)rb->events_before, (long long)rb->events_after,
                 (long long)rb->meas_written);
        uv_mutex_lock(&b->mu);
        b->units++;
        b->blocks += (uint64_t)info.blocks;
        b->captures += (uint64_t)info.captures;
        b->signal_s += info.signal_s;
        b->busy_s += busy;
        b->cpu_s += cpu;
        uv_mutex_unlock(&b->mu);
    }
    store_rebuild_clear(rb);
    free(rb);
    return rc < 0 ? rc : 1;
}

static void refresh_backlog(ana_bf_t *b, store_t *rd)
{
    int64_t units = 0, blocks = 0;
    double secs = 0;
    if (store_ana_backlog(rd, &units, &blocks, &secs) < 0)
        return;
    uv_mutex_lock(&b->mu);
    b->backlog_units = units;
    b->backlog_blocks = blocks;
    b->backlog_s = secs;
    uv_mutex_unlock(&b->mu);
}

/* Pre-warm: the stream of the first block of a unit, created and freed, so that its FFT plan is
 * in the engine's cache. */
typedef struct {
    const char *tid;
    int nominal_hz;
} warm_t;

static int warm_block(void *ud, const store_block_t *b)
{
    warm_t *w = ud;
    rsig_t sig;
    if (block_sig(b, &sig) < 0)
        return 1;
    rctx_t c;
    memset(&c, 0, sizeof c);
    c.tid = w->tid;
    c.nominal_hz = w->nominal_hz;
    c.warned = 1; /* a config the engine refuses is logged when it is analysed */
    if (open_stream(&c, &sig) == 0)
        dsp_stream_free(c.ds);
    return 1; /* the first block is enough */
}

static int warm_unit(void *ud, const store_ana_pending_t *p)
{
    store_t *rd = ud;
    store_terminal_t t;
    if (store_terminal_info(rd, p->terminal_id, &t) < 0)
        return 0;
    warm_t w = {.tid = p->terminal_id, .nominal_hz = t.nominal_hz == 60 ? 60 : 50};
    store_blocks_read(rd, p->terminal_id, p->unit_start_ns, p->unit_start_ns + STORE_ANA_UNIT_NS,
                      STORE_BLOCKS_WAVEFORM | STORE_BLOCKS_EVENT, warm_block, &w);
    return 0;
}

static void bf_main(void *arg)
{
    ana_bf_t *b = arg;
    store_t *rd = NULL;
    char err[256];
    store_opts_t ro = {.reader_only = 1,
                       .busy_timeout_ms = 1000,
                       .url = b->o.store_url[0] ? b->o.store_url : NULL};
    if (store_open(b->o.data_dir, &ro, &rd, err, sizeof err) < 0) {
        log_error(BF_WHO, "no backfill: %s", err);
        return;
    }
    /* FFT planning (without saved wisdom, up to seconds) holds the engine's planner lock; done
     * at idle priority on a busy machine it would hold it for much longer, while a live worker
     * creating a stream waits (priority inversion, measured: 5-7 s of live delay). So the
     * streams of the backlog's first units are created once at normal priority, putting their
     * plans in the engine's cache; later units normally need the same few sizes. */
    store_ana_pending_list(rd, LIST_MAX, warm_unit, rd);
    /* Then the lowest priority there is: SCHED_IDLE runs only on a CPU nothing else wants, so
     * the live analysis (and the gateway, the writer) does not wait for the backfill. Linux
     * schedules threads individually. */
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0 &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
        log_warn(BF_WHO, "cannot lower the backfill thread's priority: %s", strerror(errno));
    int64_t retry_after = 0;
    while (!b->stop) {
        refresh_backlog(b, rd);
        plist_t *l = xcalloc(1, sizeof *l);
        int did = 0;
        if (store_ana_pending_list(rd, LIST_MAX, collect, l) == 0 &&
            time_mono_ns() >= retry_after) {
            for (int i = 0; i < l->n && !b->stop; i++) {
                int rc = do_unit(b, rd, &l->p[i]);
                if (rc > 0) {
                    did = 1;
                    refresh_backlog(b, rd);
                } else if (rc < 0 && rc != GS_ECLOSED) {
                    log_limited(LOG_WARN, BF_WHO, "%s: unit not analysed: %s; retrying later",
                                l->p[i].terminal_id, err_str(rc));
                    uv_mutex_lock(&b->mu);
                    b->errors++;
                    uv_mutex_unlock(&b->mu);
                    retry_after = time_mono_ns() + RETRY_NS;
                    break;
                }
            }
        }
        free(l);
        if (!did)
            bf_wait(b, POLL_NS);
    }
    store_close(rd);
}

int ana__bf_start(const ana_opts_t *o, store_t *writer, ana_bf_t **out)
{
    *out = NULL;
    ana_bf_t *b = xcalloc(1, sizeof *b);
    b->o = *o;
    b->wr = writer;
    if (b->o.backfill_idle_s <= 0)
        b->o.backfill_idle_s = 30;
    if (b->o.backfill_grace_s <= 0)
        b->o.backfill_grace_s = 120;
    uv_mutex_init(&b->mu);
    uv_cond_init(&b->cv);
    int rc = uv_thread_create(&b->thread, bf_main, b);
    if (rc < 0) {
        log_error(BF_WHO, "cannot start the backfill thread: %s", uv_strerror(rc));
        uv_mutex_destroy(&b->mu);
        uv_cond_destroy(&b->cv);
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void ana__bf_stop(ana_bf_t *b)
{
    if (!b)
        return;
    uv_mutex_lock(&b->mu);
    b->stop = 1;
    uv_cond_broadcast(&b->cv);
    uv_mutex_unlock(&b->mu);
    uv_thread_join(&b->thread);
    uv_mutex_destroy(&b->mu);
    uv_cond_destroy(&b->cv);
    free(b);
}

void ana__bf_stats(ana_bf_t *b, ana_stats_t *out)
{
    if (!b)
        return;
    uv_mutex_lock(&b->mu);
    out->backfill_on = 1;
    out->bf_units = b->units;
    out->bf_blocks = b->blocks;
    out->bf_captures = b->captures;
    out->bf_signal_s = b->signal_s;
    out->bf_busy_s = b->busy_s;
    out->bf_cpu_s = b->cpu_s;
    out->bf_errors = b->errors;
    out->bf_backlog_units = b->backlog_units;
    out->bf_backlog_blocks = b->backlog_blocks;
    out->bf_backlog_s = b->backlog_s;
    uv_mutex_unlock(&b->mu);
}
