/* The analysis service: DSP worker threads fed from the gateway, results to the store and the
 * loop. See ana.h for the data flow. */
#include "ana/ana.h"
#include "ana/internal.h"

#include "ana/json.h"
#include "ana/phasor_json.h"
#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "dsp/dsp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ANA_WHO        "analysis"
#define BEHIND_DELAY_S 5.0
#define BEHIND_SKIP_NS (60LL * 1000000000LL)
#define IDLE_FREE_NS   (15LL * 60 * 1000000000LL) /* a terminal's stream is freed after 15 min */
#define IDLE_SCAN_NS   (10LL * 1000000000LL)
#define GAP_LOG_NS     (60LL * 1000000000LL) /* at most one gap log line per terminal/min */

/* ---- messages between threads --------------------------------------------------------------- */

enum { JOB_BLOCK = 1 };

typedef struct job {
    struct job *next;
    char id[GSTP_MAX_ID + 1];
    gw_block_info_t bi;
    uint8_t *data;
    size_t len;
    int64_t rx_mono_ns; /* when the loop received the block */
} job_t;

enum { RES_LATEST = 1, RES_EVENT, RES_GAP, RES_PHASOR, RES_EVENT_STORED };

typedef struct res {
    struct res *next;
    int kind;
    char id[GSTP_MAX_ID + 1];
    char *json;     /* RES_LATEST, RES_PHASOR (the second's stored row), RES_EVENT: owned */
    char *json2;    /* RES_PHASOR: the second's last report as an object, owned */
    double delay_s; /* RES_LATEST: receipt -> analysed */
    dsp_event_t ev;
    dsp_gap_t gap;
    int64_t ev_id; /* RES_EVENT_STORED: the stored row's id */
} res_t;

/* ---- worker-side state ------------------------------------------------------------------------
 */

/* What a stream was configured from; a block that differs restarts the stream. */
typedef struct {
    uint32_t rate;
    int nominal_hz;
    int nch;
    double declared_v;
    gw_chan_t ch[GSTP_MAX_CHANNELS];
} streamsig_t;

typedef struct worker worker_t;

/* What a stored event's writer item points at (event_stored), instead of the service itself.
 * The writer hands an event item back after its batch commits, on its own thread and on its
 * own schedule: that can be after ana_stop and after ana_free, since the writer runs until the
 * gateway stops it and ana.h lets the service be freed while it still runs. The item must not
 * hold a pointer into the freed service (it did: a use after free that aborted in
 * uv_mutex_lock under load), so it holds a counted reference to this small object, which
 * lives until the service and every event item in the writer have let go of it. */
typedef struct {
    uv_mutex_t mu;
    ana_t *a; /* under mu: the service while its loop takes notices; NULL from ana_stop on */
    int refs; /* under mu: 1 for the service + 1 per event item not yet back from the writer */
} evref_t;

typedef struct {
    char id[GSTP_MAX_ID + 1];
    worker_t *w;
    dsp_stream_t *ds;
    streamsig_t sig;
    int64_t last_latest_ns; /* t_ref of the last "latest" sent */
    int64_t rx_mono_ns;     /* receipt time of the block being analysed */
    int64_t last_mono_ns;   /* when its last block was analysed (idle streams are freed) */
    int warned_time;        /* logged a block time outside the engine's range */
    json_names_t names;
    /* reporting-rate synchrophasors: reports are gathered per UTC second into one row */
    dsp_pmu_t *pmu;
    int ph_rate;       /* reports per second of the row being gathered */
    int ph_held;       /* the row was kept across a configuration change (see on_pmu_report) */
    int64_t ph_sec;    /* UTC second being gathered */
    int ph_n;          /* reports in it */
    uint32_t ph_flags; /* OR of their flags */
    buf_t ph_rows;     /* their rows, comma separated */
    buf_t ph_cols;     /* column header of the rows */
    buf_t ph_last;     /* last report as an object */
    dsp_pmu_report_t ph_last_r; /* the last report, formatted into ph_last only when needed
                                   (ph_last_format): ten reports a second, one shown */
    int ph_last_pending;
} tstate_t;

struct worker {
    ana_t *a;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    job_t *head, *tail;
    size_t bytes;
    int stop;
    int paused;     /* under mu: wait before taking jobs (ana_opts_t.start_paused) */
    hmap_t streams; /* id -> tstate_t, worker thread only */
};

/* Loop-side view of a terminal. The map of them and their fields are under ana.terms_mu: the
 * loop thread writes them, any thread reads them (ana_latest_json, ana_term_state, ana_stats). */
typedef struct {
    char *latest;        /* JSON object, owned */
    char *latest_phasor; /* last reporting-rate synchrophasor report, JSON object, owned */
    double delay_s;
    int64_t last_skip_mono_ns;
    uint64_t skipped;
    int64_t last_gap_log_ns; /* rate limit of the gap log line */
    uint64_t gaps_unlogged;
    uint64_t seen;         /* blocks offered (ana_opts_t.skip_every) */
    int64_t last_offer_ns; /* when the last block was offered (mono), 0 = never */
} lterm_t;

struct ana {
    uv_loop_t *loop;
    store_t *st;
    ana_opts_t o;
    int nworkers;
    worker_t *workers;
    uv_async_t async;
    uv_mutex_t res_mu;
    res_t *res_head, *res_tail;
    int async_closed;        /* under res_mu: ana_stop closed the async handle */
    evref_t *evref;          /* the stored-event notices' reference (event_stored) */
    uv_mutex_t terms_mu;     /* guards terms and every lterm_t; held for lookups and copies of
                                a few KB at most, never during DSP (which is on the workers) */
    hmap_t terms;            /* id -> lterm_t; written by the loop thread */
    ana_phasor_cb phasor_cb; /* live-feed hook (loop thread), NULL = none */
    void *phasor_ud;
    ana_event_cb event_cb; /* stored-event hook (loop thread), NULL = none */
    void *event_ud;
    ana_result_cb result_cb; /* live-feed hook (loop thread), NULL = none */
    void *result_ud;
    int stopped;
    size_t per_worker_cap;
    /* counters: written by workers with atomics, read by the loop */
    uint64_t n_blocks, n_skipped, n_samples, n_windows, n_events, n_aggs, n_gaps, n_restarts;
    uint64_t n_phasors;
    ana_bf_t *bf; /* the backfill thread (backfill.c), NULL = none */
};

#define ADD(field, v) __atomic_fetch_add(&(field), (v), __ATOMIC_RELAXED)
#define GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

void ana_opts_default(ana_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 0;
    o->max_queue_bytes = (size_t)64 << 20;
    o->latest_ms = 1000;
    o->dc_removal = 1;
    o->phasor_rate_50 = 10;
    o->phasor_rate_60 = 10;
    o->backfill = 1;
    o->backfill_idle_s = 30;
    o->backfill_grace_s = 120;
}

static void post(ana_t *a, res_t *r)
{
    uv_mutex_lock(&a->res_mu);
    if (a->async_closed) {
        /* after ana_stop: a stored event's notice from the writer (event_stored) has no loop
         * to go to any more */
        uv_mutex_unlock(&a->res_mu);
        free(r->json);
        free(r->json2);
        free(r);
        return;
    }
    if (a->res_tail)
        a->res_tail->next = r;
    else
        a->res_head = r;
    a->res_tail = r;
    /* Sent under res_mu: ana_stop sets async_closed under it before uv_close, so no send can
     * start on a closing (or, later, freed) handle. uv_async_send only wakes the loop; it never
     * waits for it, so holding the lock here cannot deadlock with async_cb. */
    uv_async_send(&a->async);
    uv_mutex_unlock(&a->res_mu);
}

static void evref_release(evref_t *e)
{
    uv_mutex_lock(&e->mu);
    int last = --e->refs == 0;
    uv_mutex_unlock(&e->mu);
    if (last) {
        uv_mutex_destroy(&e->mu);
        free(e);
    }
}

/* ---- sink callbacks (worker thread) ------------------------------------------------------------
 */

static void on_window(void *ud, const dsp_window_t *w)
{
    tstate_t *t = ud;
    ana_t *a = t->w->a;
    ADD(a->n_windows, 1);
    int64_t every = (int64_t)a->o.latest_ms * 1000000;
    if (t->last_latest_ns && w->t_ref_ns - t->last_latest_ns < every &&
        w->t_ref_ns >= t->last_latest_ns)
        return;
    t->last_latest_ns = w->t_ref_ns;
    buf_t b = {0};
    ana_json_window(&b, w, &t->names);
    res_t *r = xcalloc(1, sizeof *r);
    r->kind = RES_LATEST;
    snprintf(r->id, sizeof r->id, "%s", t->id);
    r->json = b.data; /* ownership moves to the message */
    r->delay_s = (double)(time_mono_ns() - t->rx_mono_ns) / 1e9;
    post(a, r);
}

/* Writer thread, once the event's batch committed (or failed): queue its id for the loop, if the
 * service still takes notices (evref_t). */
static void event_stored(store_item_t *it, void *ud)
{
    evref_t *e = ud;
    if (it->result == 0 && it->ev_id > 0) {
        /* e->mu held across post: ana_stop clears e->a under it, so the service cannot be
         * stopped (and then freed) between the check and the post */
        uv_mutex_lock(&e->mu);
        if (e->a) {
            res_t *r = xcalloc(1, sizeof *r);
            r->kind = RES_EVENT_STORED;
            snprintf(r->id, sizeof r->id, "%s", it->terminal_id);
            r->ev_id = it->ev_id;
            post(e->a, r);
        }
        uv_mutex_unlock(&e->mu);
    } else if (it->result < 0) {
        log_warn(it->terminal_id, "voltage event not stored: %s", err_str(it->result));
    }
    store_item_free(it);
    evref_release(e);
}

static void on_event(void *ud, const dsp_event_t *e)
{
    tstate_t *t = ud;
    ana_t *a = t->w->a;
    ADD(a->n_events, 1);
    store_item_t *it = store_item_new(STORE_ITEM_PQ_EVENT);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    snprintf(it->reason, sizeof it->reason, "%s", dsp_event_name(e->kind));
    it->ev_start_ns = e->start_ns;
    it->ev_duration_ns = e->duration_ns;
    it->ev_extreme = e->extreme;
    it->ev_extreme_pct = e->extreme_pct;
    it->ev_reference = e->reference;
    it->ev_channels = e->channels;
    it->ev_flags = e->flags;
    it->ev_worst_channel = e->worst_channel;
    /* The names now, with the layout the event was detected under: a terminal's channels can be
     * re-declared later (docs/api.md, events). The same names `gridsense analyze` prints
     * (ana_json_event_channels). */
    buf_t names = {0};
    for (int c = 0; c < t->names.nch && c < 32; c++)
        if (e->channels & (1u << c)) {
            if (names.len)
                buf_putc(&names, ',');
            buf_puts(&names, t->names.name[c]);
        }
    /* No channel named: an empty list, not "unknown" (NULL). */
    if (!names.data)
        buf_puts(&names, "");
    it->data = (uint8_t *)names.data; /* ownership moves to the item */
    it->data_len = names.len;
    if (e->worst_channel >= 0 && e->worst_channel < t->names.nch)
        snprintf(it->ev_worst_name, sizeof it->ev_worst_name, "%s",
                 t->names.name[e->worst_channel]);
    /* the live feed reports the event once it is stored, with its id (event_stored) */
    it->notify = event_stored;
    it->notify_ud = a->evref;
    uv_mutex_lock(&a->evref->mu);
    a->evref->refs++;
    uv_mutex_unlock(&a->evref->mu);
    if (store_submit(a->st, it) < 0)
        evref_release(a->evref); /* refused and freed: it will not come back through notify */
    res_t *r = xcalloc(1, sizeof *r);
    r->kind = RES_EVENT;
    snprintf(r->id, sizeof r->id, "%s", t->id);
    r->ev = *e;
    post(a, r);
}

static void submit_measurement(tstate_t *t, const char *interval, int64_t t0, int64_t t1,
                               uint32_t flags, uint32_t count, buf_t *json)
{
    store_item_t *it = store_item_new(STORE_ITEM_MEASUREMENT);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", t->id);
    snprintf(it->reason, sizeof it->reason, "%s", interval);
    it->m_start_ns = t0;
    it->m_end_ns = t1;
    it->m_flags = flags;
    it->m_count = count;
    it->data = (uint8_t *)json->data; /* ownership moves to the item */
    it->data_len = json->len;
    json->data = NULL;
    json->len = json->cap = 0;
    store_submit(t->w->a->st, it);
    ADD(t->w->a->n_aggs, 1);
}

static void on_agg(void *ud, const dsp_agg_t *g)
{
    tstate_t *t = ud;
    buf_t b = {0};
    /* Harmonic spectra are kept for 10-min and 2-h values (what EN 50160 and reports use);
     * 3 s values carry the rest. */
    ana_json_agg(&b, g, &t->names, g->kind != DSP_AGG_3S);
    submit_measurement(t, dsp_agg_name(g->kind), g->t_start_ns, g->t_end_ns, g->flags, g->count,
                       &b);
    buf_free(&b);
}

static void on_freq10(void *ud, const dsp_freq10_t *f)
{
    tstate_t *t = ud;
    buf_t b = {0};
    ana_json_freq10(&b, f);
    submit_measurement(t, "10s", f->t_start_ns, f->t_end_ns, f->flags, f->cycles, &b);
    buf_free(&b);
}

static void on_gap(void *ud, const dsp_gap_t *g)
{
    tstate_t *t = ud;
    ADD(t->w->a->n_gaps, 1);
    res_t *r = xcalloc(1, sizeof *r);
    r->kind = RES_GAP;
    snprintf(r->id, sizeof r->id, "%s", t->id);
    r->gap = *g;
    post(t->w->a, r);
}

/* Stores the gathered second as one `phasor` measurement row and hands it (and the last report)
 * to the loop for the API and the live-feed hook. One row per terminal and second keeps the
 * volume bounded: at 10 reports/s and 6 channels about 1.5-2 KB per terminal-second. */
/* The last synchrophasor report as JSON (ph_last), made from its copy when first needed. */
static void ph_last_format(tstate_t *t)
{
    if (!t->ph_last_pending)
        return;
    buf_reset(&t->ph_last);
    ana_json_pmu_report(&t->ph_last, &t->ph_last_r, &t->names);
    t->ph_last_pending = 0;
}

static void phasor_emit(tstate_t *t)
{
    if (t->ph_n == 0)
        return;
    ana_t *a = t->w->a;
    buf_t b = {0};
    char when[40];
    int64_t t0 = t->ph_sec * 1000000000LL;
    time_fmt_utc(t0, when, sizeof when);
    buf_printf(&b, "{\"t\":\"%s\",\"t_ns\":%lld,\"rate\":%d,\"count\":%d,\"columns\":", when,
               (long long)t0, t->ph_rate, t->ph_n);
    buf_puts(&b, t->ph_cols.data ? t->ph_cols.data : "[]");
    buf_puts(&b, ",\"reports\":[");
    buf_puts(&b, t->ph_rows.data ? t->ph_rows.data : "");
    buf_puts(&b, "]}");
    res_t *r = xcalloc(1, sizeof *r);
    r->kind = RES_PHASOR;
    snprintf(r->id, sizeof r->id, "%s", t->id);
    r->json = xmalloc(b.len + 1);
    memcpy(r->json, b.data, b.len + 1);
    ph_last_format(t);
    r->json2 = t->ph_last.data;
    t->ph_last.data = NULL;
    t->ph_last.len = t->ph_last.cap = 0;
    /* the row's flags: DSP_PMU_F_* of any report in the second */
    submit_measurement(t, "phasor", t0, t0 + 1000000000LL, t->ph_flags, (uint32_t)t->ph_n, &b);
    buf_free(&b);
    post(a, r);
    t->ph_n = 0;
    t->ph_flags = 0;
    t->ph_held = 0;
    buf_reset(&t->ph_rows);
}

/* 1 if report r has the columns of the row being gathered. */
static int same_columns(tstate_t *t, const dsp_pmu_report_t *r)
{
    buf_t c = {0};
    ana_json_pmu_columns(&c, r, &t->names);
    int same =
        c.len == t->ph_cols.len && (c.len == 0 || memcmp(c.data, t->ph_cols.data, c.len) == 0);
    buf_free(&c);
    return same;
}

static void on_pmu_report(void *ud, const dsp_pmu_report_t *r)
{
    tstate_t *t = ud;
    ADD(t->w->a->n_phasors, 1);
    /* A row is one UTC second of reports with one column header and rate. After a
     * configuration change the partial second of the old estimator is held (pmu_close) and
     * continued by the new one's reports of the same second when the columns and rate are
     * the same: the reports of the two sides have distinct indices (no report spans the
     * change: each side stops or starts a latency away from it) and the new side's first one
     * is flagged restart. Otherwise the held row is stored first and the new second is a row
     * of its own; for the same second the store keeps the row with more reports (docs/api.md). */
    if (t->ph_n &&
        (r->sec != t->ph_sec || r->rate != t->ph_rate || (t->ph_held && !same_columns(t, r))))
        phasor_emit(t);
    t->ph_held = 0;
    if (t->ph_n == 0) {
        t->ph_sec = r->sec;
        t->ph_rate = r->rate;
        buf_reset(&t->ph_cols);
        ana_json_pmu_columns(&t->ph_cols, r, &t->names);
    } else {
        buf_putc(&t->ph_rows, ',');
    }
    ana_json_pmu_row(&t->ph_rows, r);
    t->ph_n++;
    t->ph_flags |= r->flags;
    t->ph_last_r = *r;
    t->ph_last_pending = 1;
}

/* Ends the terminal's synchrophasor input (idle, restart, shutdown): the partial second is
 * stored, or with `hold` (a configuration change: a new estimator follows) kept for the new
 * estimator's reports of the same second (on_pmu_report); the caller stores it
 * (phasor_emit) if no estimator follows. */
static void pmu_close(tstate_t *t, int free_it, int hold)
{
    if (t->pmu)
        dsp_pmu_flush(t->pmu);
    if (hold && t->ph_n > 0)
        t->ph_held = 1;
    else
        phasor_emit(t);
    if (free_it) {
        dsp_pmu_free(t->pmu);
        t->pmu = NULL;
        if (!t->ph_held) {
            buf_free(&t->ph_rows);
            buf_free(&t->ph_cols);
            buf_free(&t->ph_last);
            t->ph_last_pending = 0;
        }
    }
}

/* ---- worker thread ------------------------------------------------------------------------------
 */

static void make_sig(const gw_block_info_t *b, streamsig_t *s)
{
    memset(s, 0, sizeof *s);
    s->rate = b->sample_rate;
    s->nominal_hz = b->nominal_hz;
    s->nch = b->nchannels;
    s->declared_v = b->declared_v;
    for (int i = 0; i < b->nchannels && i < (int)GSTP_MAX_CHANNELS; i++)
        s->ch[i] = b->ch[i];
}

static int open_stream(tstate_t *t, const gw_block_info_t *b)
{
    dsp_config_t cfg;
    dsp_config_default(&cfg, b->sample_rate, b->nominal_hz, b->nchannels);
    cfg.declared_v = b->declared_v;
    cfg.dc_removal = t->w->a->o.dc_removal;
    for (int i = 0; i < b->nchannels && i < DSP_MAX_CH; i++) {
        cfg.ch[i].kind = b->ch[i].kind <= DSP_KIND_CURRENT ? b->ch[i].kind : DSP_KIND_OTHER;
        cfg.ch[i].phase = b->ch[i].phase <= DSP_PHASE_N ? b->ch[i].phase : DSP_PHASE_NONE;
        cfg.ch[i].scale = b->ch[i].scale;
    }
    ph_last_format(t); /* a held report keeps the names it was made with */
    ana_json_names(&t->names, &cfg);
    dsp_sink_t sink = {.window = on_window,
                       .event = on_event,
                       .agg = on_agg,
                       .freq10 = on_freq10,
                       .gap = on_gap,
                       .ud = t};
    char err[256];
    int rc = dsp_stream_new(&cfg, &sink, &t->ds, err, sizeof err);
    if (rc < 0) {
        /* e.g. a sample rate outside 1.6..25.6 kS/s: stored, but not analysed */
        log_warn(t->id, "waveforms not analysed: %s", err);
        t->ds = NULL;
        return rc;
    }
    /* Reporting-rate synchrophasors: an estimator of its own fed the same blocks. A terminal
     * without voltage or current channels simply has none. */
    int rate = b->nominal_hz == 60 ? t->w->a->o.phasor_rate_60 : t->w->a->o.phasor_rate_50;
    if (rate > 0) {
        dsp_pmu_sink_t ps = {.report = on_pmu_report, .ud = t};
        if (dsp_pmu_new(&cfg, rate, &ps, &t->pmu, err, sizeof err) < 0) {
            log_info(t->id, "no reporting-rate synchrophasors: %s", err);
            t->pmu = NULL;
        }
    }
    return rc;
}

static void analyse(worker_t *w, job_t *j)
{
    tstate_t *t = hmap_get(&w->streams, j->id);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", j->id);
        t->w = w;
        t->last_mono_ns = time_mono_ns();
        hmap_put(&w->streams, t->id, t);
    }
    streamsig_t sig;
    make_sig(&j->bi, &sig);
    if (memcmp(&sig, &t->sig, sizeof sig) != 0) {
        if (t->ds) {
            dsp_stream_flush(t->ds);
            dsp_stream_free(t->ds);
            t->ds = NULL;
            ADD(w->a->n_restarts, 1);
        }
        pmu_close(t, 1, 1);
        t->sig = sig;
        open_stream(t, &j->bi);
        if (t->ph_held && !t->pmu)
            phasor_emit(t); /* no estimator follows: store the held partial second now */
    }
    if (!t->ds)
        return;
    int fmt = j->bi.sample_fmt == GSTP_FMT_INT32 ? DSP_FMT_I32 : DSP_FMT_I16;
    size_t width = fmt == DSP_FMT_I32 ? 4 : 2;
    if ((size_t)j->bi.nsamples * j->bi.nchannels * width != j->len)
        return; /* the gateway checked this; never trust a size twice removed */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t k = 0; k + width <= j->len; k += width)
        for (size_t m = 0; m < width / 2; m++) {
            uint8_t x = j->data[k + m];
            j->data[k + m] = j->data[k + width - 1 - m];
            j->data[k + width - 1 - m] = x;
        }
#endif
    uint32_t flags = j->bi.time_quality == GSTP_TQ_GPS_LOCKED ? 0 : DSP_F_TIME_UNSYNC;
    t->rx_mono_ns = j->rx_mono_ns;
    t->last_mono_ns = time_mono_ns();
    int rc = dsp_stream_push(t->ds, j->bi.t0_ns, fmt, j->data, j->bi.nsamples, flags);
    if (rc == GS_ERANGE) {
        if (!t->warned_time)
            log_warn(t->id, "block %llu: time %lld ns is outside 1970..2199; not analysed",
                     (unsigned long long)j->bi.seq, (long long)j->bi.t0_ns);
        t->warned_time = 1;
        return;
    }
    if (t->pmu)
        dsp_pmu_push(t->pmu, j->bi.t0_ns, fmt, j->data, j->bi.nsamples, flags);
    ADD(w->a->n_blocks, 1);
    ADD(w->a->n_samples, j->bi.nsamples);
}

/* Frees the streams of terminals that sent nothing for IDLE_FREE_NS (offline, removed): their
 * events in progress are closed and partial aggregates stored, as at a gap. Bounds memory by
 * the terminals actually streaming rather than every id seen since start. */
static void free_idle(worker_t *w)
{
    int64_t now = time_mono_ns();
    const char *k;
    void *v;
    char *victims[64];
    int n = 0;
    for (size_t i = 0; n < 64 && hmap_next(&w->streams, &i, &k, &v);) {
        tstate_t *t = v;
        if (now - t->last_mono_ns > IDLE_FREE_NS)
            victims[n++] = t->id;
    }
    for (int i = 0; i < n; i++) {
        tstate_t *t = hmap_del(&w->streams, victims[i]);
        if (!t)
            continue;
        if (t->ds) {
            dsp_stream_flush(t->ds);
            dsp_stream_free(t->ds);
        }
        pmu_close(t, 1, 0);
        free(t);
    }
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    int64_t last_scan = time_mono_ns();
    for (;;) {
        uv_mutex_lock(&w->mu);
        while (w->paused && !w->stop)
            uv_cond_wait(&w->cv, &w->mu);
        while (!w->head && !w->stop) {
            if (uv_cond_timedwait(&w->cv, &w->mu, (uint64_t)IDLE_SCAN_NS) != 0)
                break; /* timed out: time for the idle scan */
        }
        job_t *j = w->head;
        if (j) {
            w->head = j->next;
            if (!w->head)
                w->tail = NULL;
        }
        int stop = w->stop;
        uv_mutex_unlock(&w->mu);
        if (!j && stop)
            break;
        if (time_mono_ns() - last_scan > IDLE_SCAN_NS) {
            free_idle(w);
            last_scan = time_mono_ns();
        }
        if (!j)
            continue;
        analyse(w, j);
        uv_mutex_lock(&w->mu);
        w->bytes -= sizeof(job_t) + j->len;
        uv_mutex_unlock(&w->mu);
        free(j->data);
        free(j);
    }
    /* Shutdown: close events in progress and store the partial aggregates. */
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&w->streams, &i, &k, &v);) {
        tstate_t *t = v;
        if (t->ds)
            dsp_stream_flush(t->ds);
        pmu_close(t, 0, 0);
    }
}

/* ---- loop thread ----------------------------------------------------------------------------- */

/* The terminal's loop-side entry, created if missing. Caller holds terms_mu. */
static lterm_t *lterm_get(ana_t *a, const char *id)
{
    lterm_t *l = hmap_get(&a->terms, id);
    if (!l) {
        l = xcalloc(1, sizeof *l);
        hmap_put(&a->terms, id, l);
    }
    return l;
}

static void process_results(ana_t *a)
{
    uv_mutex_lock(&a->res_mu);
    res_t *r = a->res_head;
    a->res_head = a->res_tail = NULL;
    uv_mutex_unlock(&a->res_mu);
    while (r) {
        res_t *next = r->next;
        switch (r->kind) {
        case RES_LATEST: {
            uv_mutex_lock(&a->terms_mu);
            lterm_t *l = lterm_get(a, r->id);
            /* swap under the lock; the old string is freed below, outside it */
            char *old = l->latest;
            l->latest = r->json;
            r->json = old;
            l->delay_s = r->delay_s;
            uv_mutex_unlock(&a->terms_mu);
            /* the live feed gets what GET /latest answers: the window with the latest report */
            if (a->result_cb && l->latest) {
                buf_t b = {0};
                if (ana_latest_json(a, r->id, &b) == 0 && b.data)
                    a->result_cb(a->result_ud, r->id, "latest", b.data);
                buf_free(&b);
            }
            break;
        }
        case RES_PHASOR: {
            uv_mutex_lock(&a->terms_mu);
            lterm_t *l = lterm_get(a, r->id);
            char *old = l->latest_phasor;
            l->latest_phasor = r->json2;
            r->json2 = old;
            uv_mutex_unlock(&a->terms_mu);
            /* Live-feed hooks (issue 8 publishes them): the second's row, on the loop thread. */
            if (a->phasor_cb)
                a->phasor_cb(a->phasor_ud, r->id, r->json);
            if (a->result_cb)
                a->result_cb(a->result_ud, r->id, "phasor", r->json);
            break;
        }
        case RES_EVENT: {
            char when[40];
            time_fmt_utc(r->ev.start_ns, when, sizeof when);
            log_info(r->id, "%s at %s for %.3f s: %s %.2f %% of %s %.4g%s",
                     dsp_event_name(r->ev.kind), when, (double)r->ev.duration_ns / 1e9,
                     r->ev.kind == DSP_EV_SWELL ? "maximum" : "residual", r->ev.extreme_pct,
                     (r->ev.flags & DSP_EVF_SLIDING) ? "sliding reference" : "Udin",
                     r->ev.reference, (r->ev.flags & DSP_EVF_GAP) ? " (cut short by a gap)" : "");
            break;
        }
        case RES_EVENT_STORED:
            if (a->event_cb)
                a->event_cb(a->event_ud, r->id, r->ev_id);
            break;
        case RES_GAP: {
            uv_mutex_lock(&a->terms_mu); /* creates the entry; the log fields are the loop's */
            lterm_t *l = lterm_get(a, r->id);
            uv_mutex_unlock(&a->terms_mu);
            int64_t now = time_mono_ns();
            l->gaps_unlogged++;
            if (now - l->last_gap_log_ns >= GAP_LOG_NS || l->last_gap_log_ns == 0) {
                char from[40];
                time_fmt_utc(r->gap.from_ns, from, sizeof from);
                log_info(r->id, "analysis: gap in the waveform stream at %s (%.3f s)%s", from,
                         (double)(r->gap.to_ns - r->gap.from_ns) / 1e9,
                         l->gaps_unlogged > 1 ? " (and earlier ones, at most one line a minute)"
                                              : "");
                l->last_gap_log_ns = now;
                l->gaps_unlogged = 0;
            }
            break;
        }
        }
        free(r->json);
        free(r->json2);
        free(r);
        r = next;
    }
}

static void async_cb(uv_async_t *h)
{
    process_results(h->data);
}

static uint32_t pick_hash(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a: stable pinning of a terminal to a worker */
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h;
}

int ana_block(void *ud, const char *terminal_id, const gw_block_info_t *b, const uint8_t *samples,
              size_t len)
{
    ana_t *a = ud;
    if (a->stopped)
        return STORE_ANA_SKIPPED;
    worker_t *w = &a->workers[pick_hash(terminal_id) % (uint32_t)a->nworkers];
    /* A job costs its samples plus its descriptor; a worker with an empty queue always takes
     * a block, however large, so that no block size is refused for ever. */
    size_t cost = sizeof(job_t) + len;
    uv_mutex_lock(&w->mu);
    int full = w->head && w->bytes + cost > a->per_worker_cap;
    uv_mutex_unlock(&w->mu);
    /* A (re)start of the terminal's live stream: nothing offered since ana_start, or nothing
     * for long enough that the worker freed the stream (free_idle, IDLE_FREE_NS; a minute
     * earlier to be sure). The aggregates in progress before it are lost (crash) or cut (flush):
     * the store marks the units for the backfill. */
    int64_t now_mono = time_mono_ns();
    int bits = 0;
    uv_mutex_lock(&a->terms_mu);
    lterm_t *lt = lterm_get(a, terminal_id);
    if (lt->last_offer_ns == 0 || now_mono - lt->last_offer_ns > IDLE_FREE_NS - 60000000000LL)
        bits |= STORE_ANA_RESTART;
    lt->last_offer_ns = now_mono;
    /* testing: a forced skip, exactly as a full queue's */
    if (a->o.skip_every > 0 && ++lt->seen % (uint64_t)a->o.skip_every == 0)
        full = 1;
    uv_mutex_unlock(&a->terms_mu);
    if (full) {
        /* Analysis falls behind: skip this block for analysis only (it is stored and acked as
         * usual); the stream sees a gap. */
        ADD(a->n_skipped, 1);
        int64_t now = time_mono_ns();
        uv_mutex_lock(&a->terms_mu);
        lterm_t *l = lterm_get(a, terminal_id);
        l->skipped++;
        int warn = now - l->last_skip_mono_ns > BEHIND_SKIP_NS;
        l->last_skip_mono_ns = now;
        uv_mutex_unlock(&a->terms_mu);
        if (warn)
            log_warn(terminal_id, "analysis falling behind: block %llu skipped for analysis",
                     (unsigned long long)b->seq);
        /* the store keeps it in the analysis backlog: backfill.c analyses it later */
        return bits | STORE_ANA_SKIPPED;
    }
    job_t *j = xcalloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", terminal_id);
    j->bi = *b;
    j->data = xmalloc(len ? len : 1);
    memcpy(j->data, samples, len);
    j->len = len;
    j->rx_mono_ns = time_mono_ns();
    uv_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->bytes += cost;
    uv_cond_signal(&w->cv);
    uv_mutex_unlock(&w->mu);
    return bits;
}

int ana_latest_json(ana_t *a, const char *terminal_id, buf_t *out)
{
    /* Under the lock: a copy of the two strings (a few KB; growing out may allocate). */
    int rc = GS_ENOTFOUND;
    uv_mutex_lock(&a->terms_mu);
    lterm_t *l = hmap_get(&a->terms, terminal_id);
    if (!l || (!l->latest && !l->latest_phasor))
        goto done;
    rc = 0;
    if (!l->latest_phasor) {
        /* no report yet (stream start, phasors off): the member is there, null (docs/api.md:
         * fields are never left out) */
        size_t n = strlen(l->latest);
        if (n >= 2 && l->latest[n - 1] == '}') {
            buf_append(out, l->latest, n - 1);
            buf_puts(out, ",\"phasor\":null}");
        } else {
            buf_puts(out, l->latest);
        }
        goto done;
    }
    /* the window object with one more member: the latest synchrophasor report */
    size_t n = l->latest ? strlen(l->latest) : 0;
    if (n >= 2 && l->latest[n - 1] == '}') {
        buf_append(out, l->latest, n - 1);
        buf_puts(out, ",\"phasor\":");
        buf_puts(out, l->latest_phasor);
        buf_putc(out, '}');
    } else {
        buf_puts(out, "{\"phasor\":");
        buf_puts(out, l->latest_phasor);
        buf_putc(out, '}');
    }
done:
    uv_mutex_unlock(&a->terms_mu);
    return rc;
}

int ana_latest_phasor_json(ana_t *a, const char *terminal_id, buf_t *out)
{
    int rc = GS_ENOTFOUND;
    uv_mutex_lock(&a->terms_mu);
    lterm_t *l = hmap_get(&a->terms, terminal_id);
    if (l && l->latest_phasor) {
        buf_puts(out, l->latest_phasor);
        rc = 0;
    }
    uv_mutex_unlock(&a->terms_mu);
    return rc;
}

void ana_set_result_observer(ana_t *a, ana_result_cb cb, void *ud)
{
    a->result_cb = cb;
    a->result_ud = ud;
}

void ana_set_event_observer(ana_t *a, ana_event_cb cb, void *ud)
{
    a->event_cb = cb;
    a->event_ud = ud;
}

void ana_set_phasor_observer(ana_t *a, ana_phasor_cb cb, void *ud)
{
    a->phasor_cb = cb;
    a->phasor_ud = ud;
}

static int is_behind(const lterm_t *l, int64_t now)
{
    return l->delay_s > BEHIND_DELAY_S ||
           (l->last_skip_mono_ns && now - l->last_skip_mono_ns < BEHIND_SKIP_NS);
}

int ana_term_state(ana_t *a, const char *terminal_id, ana_term_state_t *out)
{
    int64_t now = time_mono_ns();
    int rc = GS_ENOTFOUND;
    uv_mutex_lock(&a->terms_mu);
    lterm_t *l = hmap_get(&a->terms, terminal_id);
    if (l) {
        out->behind = is_behind(l, now);
        out->skipped = l->skipped;
        out->delay_s = l->delay_s;
        rc = 0;
    }
    uv_mutex_unlock(&a->terms_mu);
    return rc;
}

void ana_stats(ana_t *a, ana_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->workers = a->nworkers;
    out->blocks_analysed = GET(a->n_blocks);
    out->blocks_skipped = GET(a->n_skipped);
    out->samples = GET(a->n_samples);
    out->windows = GET(a->n_windows);
    out->events = GET(a->n_events);
    out->aggregates = GET(a->n_aggs);
    out->gaps = GET(a->n_gaps);
    out->stream_restarts = GET(a->n_restarts);
    out->phasor_reports = GET(a->n_phasors);
    for (int i = 0; i < a->nworkers; i++) {
        uv_mutex_lock(&a->workers[i].mu);
        out->queue_bytes += a->workers[i].bytes;
        uv_mutex_unlock(&a->workers[i].mu);
    }
    int64_t now = time_mono_ns();
    const char *k;
    void *v;
    /* One pass of comparisons per terminal under the lock (no allocation, no I/O). */
    uv_mutex_lock(&a->terms_mu);
    for (size_t i = 0; hmap_next(&a->terms, &i, &k, &v);) {
        lterm_t *l = v;
        out->terminals++;
        if (l->delay_s > out->max_delay_s)
            out->max_delay_s = l->delay_s;
        if (is_behind(l, now))
            out->terminals_behind++;
    }
    uv_mutex_unlock(&a->terms_mu);
    ana__bf_stats(a->bf, out);
}

int ana_start(uv_loop_t *loop, store_t *st, const ana_opts_t *o, ana_t **out, char *err,
              size_t errlen)
{
    ana_t *a = xcalloc(1, sizeof *a);
    a->loop = loop;
    a->st = st;
    a->o = *o;
    if (a->o.latest_ms <= 0)
        a->o.latest_ms = 1000;
    if (a->o.max_queue_bytes == 0)
        a->o.max_queue_bytes = (size_t)64 << 20;
    a->nworkers = o->workers > 0 ? o->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (a->nworkers < 1)
        a->nworkers = 1;
    if (a->nworkers > 256)
        a->nworkers = 256;
    a->per_worker_cap = a->o.max_queue_bytes / (size_t)a->nworkers;
    dsp_global_init(a->o.wisdom_path[0] ? a->o.wisdom_path : NULL);
    hmap_init(&a->terms);
    uv_mutex_init(&a->terms_mu);
    uv_mutex_init(&a->res_mu);
    a->evref = xcalloc(1, sizeof *a->evref);
    uv_mutex_init(&a->evref->mu);
    a->evref->a = a;
    a->evref->refs = 1;
    uv_async_init(loop, &a->async, async_cb);
    a->async.data = a;
    a->workers = xcalloc((size_t)a->nworkers, sizeof *a->workers);
    for (int i = 0; i < a->nworkers; i++) {
        worker_t *w = &a->workers[i];
        w->a = a;
        w->paused = o->start_paused;
        uv_mutex_init(&w->mu);
        uv_cond_init(&w->cv);
        hmap_init(&w->streams);
        int rc = uv_thread_create(&w->thread, worker_main, w);
        if (rc < 0) {
            snprintf(err, errlen, "cannot start analysis worker: %s", uv_strerror(rc));
            uv_mutex_destroy(&w->mu);
            uv_cond_destroy(&w->cv);
            hmap_free(&w->streams);
            a->nworkers = i; /* stop and free the ones running */
            ana_stop(a);
            *out = a;
            return rc;
        }
    }
    log_info(ANA_WHO, "%d DSP worker%s", a->nworkers, a->nworkers == 1 ? "" : "s");
    /* The backfill of the analysis backlog; the server runs without it if it cannot start. */
    if (a->o.backfill && a->o.data_dir[0])
        ana__bf_start(&a->o, st, &a->bf);
    *out = a;
    return 0;
}

void ana_resume(ana_t *a)
{
    for (int i = 0; i < a->nworkers; i++) {
        worker_t *w = &a->workers[i];
        uv_mutex_lock(&w->mu);
        w->paused = 0;
        uv_cond_broadcast(&w->cv);
        uv_mutex_unlock(&w->mu);
    }
}

void ana_stop(ana_t *a)
{
    if (!a || a->stopped)
        return;
    a->stopped = 1;
    /* The backfill first: a rebuild it submitted still needs the writer, which runs until the
     * gateway stops after us. */
    ana__bf_stop(a->bf);
    a->bf = NULL;
    for (int i = 0; i < a->nworkers; i++) {
        worker_t *w = &a->workers[i];
        uv_mutex_lock(&w->mu);
        w->stop = 1;
        uv_cond_signal(&w->cv);
        uv_mutex_unlock(&w->mu);
    }
    for (int i = 0; i < a->nworkers; i++)
        uv_thread_join(&a->workers[i].thread);
    process_results(a);
    if (a->o.wisdom_path[0]) {
        int rc = dsp_global_save_wisdom(a->o.wisdom_path);
        if (rc < 0)
            log_warn(ANA_WHO, "cannot save FFTW wisdom to %s: %s", a->o.wisdom_path, err_str(rc));
    }
    /* Stored-event notices from the writer stop here: a notice being posted finishes first
     * (event_stored holds evref->mu), later ones are dropped. */
    uv_mutex_lock(&a->evref->mu);
    a->evref->a = NULL;
    uv_mutex_unlock(&a->evref->mu);
    uv_mutex_lock(&a->res_mu);
    a->async_closed = 1;
    uv_mutex_unlock(&a->res_mu);
    uv_close((uv_handle_t *)&a->async, NULL);
}

void ana_free(ana_t *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->nworkers; i++) {
        worker_t *w = &a->workers[i];
        const char *k;
        void *v;
        for (size_t p = 0; hmap_next(&w->streams, &p, &k, &v);) {
            tstate_t *t = v;
            dsp_stream_free(t->ds);
            dsp_pmu_free(t->pmu);
            buf_free(&t->ph_rows);
            buf_free(&t->ph_cols);
            buf_free(&t->ph_last);
            free(t);
        }
        hmap_free(&w->streams);
        for (job_t *j = w->head, *n; j; j = n) {
            n = j->next;
            free(j->data);
            free(j);
        }
        uv_mutex_destroy(&w->mu);
        uv_cond_destroy(&w->cv);
    }
    free(a->workers);
    const char *k;
    void *v;
    for (size_t p = 0; hmap_next(&a->terms, &p, &k, &v);) {
        lterm_t *l = v;
        free(l->latest);
        free(l->latest_phasor);
        free(l);
    }
    hmap_free(&a->terms);
    uv_mutex_destroy(&a->terms_mu);
    for (res_t *r = a->res_head, *n; r; r = n) {
        n = r->next;
        free(r->json);
        free(r->json2);
        free(r);
    }
    uv_mutex_destroy(&a->res_mu);
    /* event items still in the writer keep the reference alive; the last one frees it */
    evref_release(a->evref);
    free(a);
}
