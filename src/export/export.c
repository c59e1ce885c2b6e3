/* export: stored waveforms as COMTRADE or CSV, measurements as CSV, streamed (export.h). */
#include "export/export.h"

#include "ana/json.h"
#include "core/err.h"
#include "dsp/dsp.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCH_MAX      STORE_MAX_CHANNELS
#define PIECE_BYTES  (256 * 1024) /* export_next hands out about this much at a time */
#define WIN_START_NS 1000000000LL /* first read window: 1 s */
#define WIN_MIN_NS   1000000LL
#define MEAS_PAGE    500
#define LOOKBACK_MAX_NS (600LL * 1000000000LL) /* how far back a window read may restart */
#define MEAS_COLS    4096

/* Output phases of a COMTRADE export. */
enum { PH_START = 0, PH_DATA, PH_TAIL, PH_DONE };

struct export_s {
    store_t *st;
    export_opts_t o;
    char tid[STORE_ID_MAX + 1], base[160], interval[8];
    char *hdr_user;
    store_terminal_t term;
    int phase;

    /* reading */
    int64_t cursor, win;
    uint64_t last_seq;
    int have_seq, read_done, counting;
    int rc_cb; /* an error from inside the block callback */
    int win_first, retry; /* first block of a window read; read it again from earlier */
    int64_t lookback;     /* how far before the window that read starts */
    int stop_early;       /* the block callback stopped a read: PIECE_BYTES are out */
    size_t fill_start;    /* sink length when fill began */
    char err_cb[200];
    buf_t *sink; /* where emitted records go (out, or the zip staging buffer) */
    buf_t stage;
    export_zip_t *zip;

    /* the channel set (from the first usable block) */
    int chset;
    uint32_t mask;
    int nch, fmt, has_layout;
    store_chan_t lay[NCH_MAX];
    char name[NCH_MAX][16];
    double factor[NCH_MAX]; /* engineering units (chosen side) per count */
    double ratio[NCH_MAX];  /* vt_ratio / ct_ratio / 1 */
    int shift[NCH_MAX];     /* narrowing: x = count / 2^shift */
    int csv_dec[NCH_MAX];   /* CSV decimals: one more than a count needs */

    /* segments */
    int have_prev;
    int64_t prev_next, seg_t0;
    uint32_t prev_rate;
    uint64_t seg_idx;
    comtrade_rate_t runs[COMTRADE_MAX_RATES];
    size_t nruns;
    int runs_overflow;
    int tq_worst; /* tmq code, -1 none yet */
    int64_t cmin[NCH_MAX], cmax[NCH_MAX]; /* raw counts */

    /* the plan (counting pass) */
    int planned;
    uint64_t plan_samples, plan_gaps, plan_segments;
    comtrade_rate_t plan_runs[COMTRADE_MAX_RATES];
    size_t plan_nruns;
    int plan_overflow, plan_tq;
    int64_t plan_cmin[NCH_MAX], plan_cmax[NCH_MAX];
    int64_t plan_first;

    double timemult; /* µs per .dat timestamp unit */
    comtrade_cfg_t proto; /* ft, rev_year, nanalog for comtrade_dat_put */
    export_stats_t s;

    /* CSV */
    int csv_head;
    /* measurements */
    char **cols;
    size_t ncols;
    int meas_pass; /* 1 collecting columns, 2 writing */
    int64_t mcur;
    int mpage_done;
    int64_t mlast_end;
    int mrows_page;
};

/* ---- small helpers ---- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int export_ft_parse(const char *s, comtrade_ft_t *ft)
{
    if (strcmp(s, "binary") == 0)
        *ft = COMTRADE_BINARY;
    else if (strcmp(s, "binary32") == 0)
        *ft = COMTRADE_BINARY32;
    else if (strcmp(s, "float32") == 0)
        *ft = COMTRADE_FLOAT32;
    else if (strcmp(s, "ascii") == 0)
        *ft = COMTRADE_ASCII;
    else
        return GS_EINVAL;
    return 0;
}

const char *export_mime(const export_opts_t *o)
{
    if (o->what != EXPORT_COMTRADE)
        return "text/csv; charset=utf-8";
    return o->container == EXPORT_ZIP ? "application/zip" : "application/octet-stream";
}

const char *export_ext(const export_opts_t *o)
{
    if (o->what != EXPORT_COMTRADE)
        return "csv";
    return o->container == EXPORT_ZIP ? "zip" : o->container == EXPORT_CFF ? "cff" : "dat";
}

void export_basename(const char *id, int64_t from_ns, char *out, size_t cap)
{
    time_t t = (time_t)(from_ns / 1000000000LL - (from_ns % 1000000000LL < 0));
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%s_%04d%02d%02dT%02d%02d%02dZ", id, tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* RFC 3339 UTC with 9 fractional digits. The date and time of day are formatted once per
 * second (a CSV row per sample set: the hot path), the fraction by hand. */
static __thread int64_t t9_sec = INT64_MIN;
static __thread char t9_head[80];
static __thread size_t t9_len;

static void put_time9(buf_t *b, int64_t ns)
{
    int64_t s = ns / 1000000000LL, f = ns % 1000000000LL;
    if (f < 0) {
        f += 1000000000LL;
        s--;
    }
    if (s != t9_sec) {
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(t9_head, sizeof t9_head, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        t9_len = strlen(t9_head);
        t9_sec = s;
    }
    char frac[11];
    for (int i = 8; i >= 0; i--) {
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    frac[9] = 'Z';
    buf_append(b, t9_head, t9_len);
    buf_append(b, frac, 10);
}

/* GSTP time quality (docs/protocol.md HELLO tag 11) -> IEEE C37.118 time quality code, the one
 * C37.111-2013 clause 7.4.12 uses for tmq_code. Larger is worse. */
static int tmq_of(int gstp_tq)
{
    switch (gstp_tq) {
    case 1:
        return 0x0; /* GPS locked (~1 µs): clock locked to a UTC-traceable source */
    case 2:
        return 0x9; /* network synced (~1..50 ms): within 100 ms */
    default:
        return 0xF; /* 0 unknown, 3 free running: time not reliable */
    }
}

/* The shortest decimal that reads back as the float f (%.1g .. %.9g), as a double. */
static double float_decimal(float f)
{
    char t[40];
    for (int p = 1; p <= 9; p++) {
        snprintf(t, sizeof t, "%.*g", p, (double)f);
        if ((float)strtod(t, NULL) == f)
            return strtod(t, NULL);
    }
    return (double)f;
}

static int64_t get_count(const uint8_t *p, int fmt)
{
    if (fmt == 1)
        return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

/* The raw x written for count c on channel ch (narrowing, then BINARY's reserved -32768). */
static int64_t x_of(const export_t *ex, int ch, int64_t c, int *clamped)
{
    int64_t x = c;
    if (ex->shift[ch])
        x = (int64_t)llround((double)c / (double)(1LL << ex->shift[ch]));
    int64_t lo = ex->o.ft == COMTRADE_BINARY ? -32767 : ex->o.ft == COMTRADE_BINARY32 ? -2147483647LL
                 : ex->o.rev_year <= 1999 ? -99999 : INT64_MIN + 1;
    int64_t hi = ex->o.ft == COMTRADE_BINARY ? 32767 : ex->o.ft == COMTRADE_BINARY32 ? 2147483647LL
                 : ex->o.rev_year <= 1999 ? 99998 : INT64_MAX;
    if (x < lo || x > hi) {
        if (clamped)
            *clamped = 1;
        x = x < lo ? lo : hi;
    }
    return x;
}

/* ---- the channel set ---- */

/* Takes the first block's channels (names as the analysis gives them, src/wave does the same). */
static int chset_take(export_t *ex, const store_block_t *b)
{
    int idx[NCH_MAX], n = 0;
    for (int i = 0; i < 32 && n < b->nchannels; i++)
        if (b->channel_mask & (1u << i))
            idx[n++] = i;
    ex->mask = b->channel_mask;
    ex->nch = b->nchannels;
    ex->fmt = b->sample_fmt;
    ex->has_layout = b->nlayout > 0;
    for (int p = 0; p < n && ex->has_layout; p++) {
        int found = 0;
        for (int k = 0; k < b->nlayout; k++)
            if (b->layout[k].index == idx[p]) {
                ex->lay[p] = b->layout[k];
                found = 1;
            }
        if (!found)
            ex->has_layout = 0;
    }
    json_names_t names;
    if (ex->has_layout) {
        dsp_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.nchannels = n;
        for (int p = 0; p < n; p++) {
            cfg.ch[p].kind = ex->lay[p].kind <= DSP_KIND_CURRENT ? ex->lay[p].kind : DSP_KIND_OTHER;
            cfg.ch[p].phase = ex->lay[p].phase <= DSP_PHASE_N ? ex->lay[p].phase : DSP_PHASE_NONE;
        }
        ana_json_names(&names, &cfg);
    }
    for (int p = 0; p < n; p++) {
        if (ex->has_layout) {
            snprintf(ex->name[p], sizeof ex->name[p], "%s", names.name[p]);
            int kind = ex->lay[p].kind;
            ex->ratio[p] = kind == DSP_KIND_VOLTAGE   ? ex->term.vt_ratio
                           : kind == DSP_KIND_CURRENT ? ex->term.ct_ratio
                                                      : 1;
            double sc = float_decimal(ex->lay[p].scale);
            ex->factor[p] = ex->o.side == EXPORT_SECONDARY ? sc : sc * ex->ratio[p];
        } else {
            snprintf(ex->name[p], sizeof ex->name[p], "ch%d", idx[p]);
            ex->ratio[p] = 1;
            ex->factor[p] = 1;
        }
        ex->cmin[p] = INT64_MAX;
        ex->cmax[p] = INT64_MIN;
        int dec = (int)ceil(-log10(ex->factor[p])) + 1;
        ex->csv_dec[p] = dec < 0 ? 0 : dec > 12 ? 12 : dec;
    }
    ex->chset = 1;
    return 0;
}

/* The block's channels are the first block's (same mask, format, kinds, phases, units, scales). */
static int chset_same(const export_t *ex, const store_block_t *b)
{
    if (b->channel_mask != ex->mask || b->nchannels != ex->nch || b->sample_fmt != ex->fmt ||
        (b->nlayout > 0) != ex->has_layout)
        return 0;
    if (!ex->has_layout)
        return 1;
    int idx = 0;
    for (int i = 0; i < 32 && idx < ex->nch; i++) {
        if (!(ex->mask & (1u << i)))
            continue;
        const store_chan_t *c = NULL;
        for (int k = 0; k < b->nlayout; k++)
            if (b->layout[k].index == i)
                c = &b->layout[k];
        const store_chan_t *f = &ex->lay[idx++];
        if (!c || c->kind != f->kind || c->phase != f->phase || c->unit != f->unit ||
            c->scale != f->scale)
            return 0;
    }
    return 1;
}

/* ---- emitting sample sets ---- */

/* ",value" with dec decimals (one more than one count needs, as src/wave writes them, so that
 * value / scale gives the count back), trailing zeros dropped; formatted by hand (a CSV row per
 * sample set is the hot path). Values too large for that fall back to %.10g. */
static void put_value(buf_t *b, double v, int dec)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12};
    double sc = v * p10[dec];
    if (!(fabs(sc) < 9e17)) {
        buf_printf(b, ",%.10g", v);
        return;
    }
    int64_t q = llround(sc);
    uint64_t u = q < 0 ? (uint64_t)0 - (uint64_t)q : (uint64_t)q;
    char tmp[48];
    int k = 0, d = dec;
    while (d > 0 && u % 10 == 0) { /* trailing zeros of the fraction */
        u /= 10;
        d--;
    }
    for (int i = 0; i < d; i++) {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    }
    if (d > 0)
        tmp[k++] = '.';
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    char line[52];
    size_t len = 0;
    line[len++] = ',';
    if (q < 0)
        line[len++] = '-';
    while (k)
        line[len++] = tmp[--k];
    buf_append(b, line, len);
}

static int emit(export_t *ex, int64_t t, const uint8_t *set)
{
    int width = ex->fmt == 1 ? 2 : 4;
    int64_t c[NCH_MAX];
    for (int ch = 0; ch < ex->nch; ch++) {
        c[ch] = get_count(set + ch * width, ex->fmt);
        if (c[ch] < ex->cmin[ch])
            ex->cmin[ch] = c[ch];
        if (c[ch] > ex->cmax[ch])
            ex->cmax[ch] = c[ch];
    }
    ex->s.samples++;
    if (ex->s.samples == 1)
        ex->s.first_ns = t;
    ex->s.last_ns = t;
    if (ex->counting)
        return 0;
    if (ex->planned && ex->s.samples > ex->plan_samples)
        return fail(ex->err_cb, sizeof ex->err_cb, GS_ESTATE,
                    "the stored data changed during the export (more samples than counted)");
    buf_t *b = ex->sink;
    if (ex->o.what == EXPORT_CSV_WAVEFORM) {
        put_time9(b, t);
        for (int ch = 0; ch < ex->nch; ch++)
            put_value(b, (double)c[ch] * ex->factor[ch], ex->csv_dec[ch]);
        buf_puts(b, "\r\n");
        return 0;
    }
    int64_t x[NCH_MAX];
    float xf[NCH_MAX];
    for (int ch = 0; ch < ex->nch; ch++) {
        if (ex->o.ft == COMTRADE_FLOAT32) {
            xf[ch] = (float)((double)c[ch] * ex->factor[ch]);
        } else {
            int cl = 0;
            x[ch] = x_of(ex, ch, c[ch], &cl);
            ex->s.clamped += (uint64_t)cl;
        }
    }
    int64_t start = ex->planned ? ex->plan_first : ex->s.first_ns;
    int64_t ts = llround((double)(t - start) / (ex->timemult * 1000.0));
    int rc = comtrade_dat_put(&ex->proto, b, ex->s.samples, ts, x, xf);
    if (rc < 0)
        return fail(ex->err_cb, sizeof ex->err_cb, rc,
                    "sample %llu does not fit the COMTRADE format (number or timestamp too large:"
                    " export a shorter range)",
                    (unsigned long long)ex->s.samples);
    return 0;
}

static int on_block(void *ud, const store_block_t *b)
{
    export_t *ex = ud;
    if (ex->win_first) {
        /* The first block of a window read: store_blocks_read found it by a binary search on
         * time that assumes times grow with seq, which EVENT blocks break (a capture is sent,
         * and numbered, after the waveform blocks that follow its start). Landing past
         * unread seqs may have skipped waveform blocks: fill reads again from earlier. */
        ex->win_first = 0;
        if (ex->have_seq && b->seq > ex->last_seq + 1 && ex->lookback < LOOKBACK_MAX_NS) {
            ex->retry = 1;
            return 1;
        }
    }
    if (ex->have_seq && b->seq <= ex->last_seq)
        return 0; /* read in an earlier window */
    ex->have_seq = 1;
    ex->last_seq = b->seq;
    if (b->is_event)
        return 0; /* captures overlap the continuous recording: not exported */
    int width = b->sample_fmt == 1 ? 2 : b->sample_fmt == 2 ? 4 : 0;
    int nch = __builtin_popcount(b->channel_mask);
    if (!width || nch == 0 || nch > NCH_MAX || nch != b->nchannels ||
        (size_t)b->nsamples * (size_t)nch * (size_t)width != b->data_len) {
        ex->s.skipped_layout++;
        return 0;
    }
    if (!ex->chset)
        chset_take(ex, b);
    else if (!chset_same(ex, b)) {
        ex->s.skipped_layout++;
        return 0;
    }
    int64_t from = ex->o.from_ns, to = ex->o.to_ns, t0 = b->t0_ns;
    uint32_t rate = b->sample_rate;
    int64_t dur = (int64_t)b->nsamples * 1000000000LL / rate;
    int64_t i0 = 0, i1 = b->nsamples;
    if (t0 < from)
        i0 = ((from - t0) * (int64_t)rate + 999999999LL) / 1000000000LL;
    if (to - t0 < dur + 1000000000LL) {
        int64_t lim = to <= t0 ? 0 : ((to - t0) * (int64_t)rate + 999999999LL) / 1000000000LL;
        if (lim < i1)
            i1 = lim;
    }
    if (i0 >= i1)
        return 0;
    int64_t first_t = t0 + i0 * 1000000000LL / rate;
    double period = 1e9 / rate;
    if (ex->have_prev) {
        double d = (double)(first_t - ex->prev_next);
        double pp = 1e9 / ex->prev_rate;
        if (d < -1.5 * pp) {
            ex->s.skipped_time++;
            return 0; /* back in time: the terminal's clock stepped, or an overlap */
        }
        if (rate != ex->prev_rate || fabs(d) > 1.5 * period) {
            ex->seg_t0 = first_t;
            ex->seg_idx = 0;
            ex->s.segments++;
            if (d > 1.5 * period)
                ex->s.gaps++;
        }
    } else {
        ex->seg_t0 = first_t;
        ex->seg_idx = 0;
        ex->s.segments = 1;
    }
    if (ex->nruns == 0 || ex->runs[ex->nruns - 1].samp != (double)rate) {
        if (ex->nruns == COMTRADE_MAX_RATES)
            ex->runs_overflow = 1;
        else
            ex->runs[ex->nruns++].samp = rate;
    }
    int tq = tmq_of(b->time_quality);
    if (tq > ex->tq_worst)
        ex->tq_worst = tq;
    ex->s.blocks++;
    size_t stride = (size_t)nch * (size_t)width;
    for (int64_t k = i0; k < i1; k++) {
        int64_t t = ex->seg_t0 + (int64_t)(ex->seg_idx * 1000000000ULL / rate);
        int rc = emit(ex, t, b->data + (size_t)k * stride);
        if (rc < 0) {
            ex->rc_cb = rc;
            return rc;
        }
        ex->seg_idx++;
    }
    if (!ex->runs_overflow)
        ex->runs[ex->nruns - 1].endsamp = (int64_t)ex->s.samples;
    ex->prev_next = ex->seg_t0 + (int64_t)(ex->seg_idx * 1000000000ULL / rate);
    ex->prev_rate = rate;
    ex->have_prev = 1;
    if (!ex->counting && ex->sink && ex->sink->len - ex->fill_start >= PIECE_BYTES) {
        ex->stop_early = 1; /* a window after a long gap is wide: memory stays bounded */
        return 1;
    }
    return 0;
}

/* Reads windows until about PIECE_BYTES went to the sink (counting: until the range is done). */
static int fill(export_t *ex, char *err, size_t errlen)
{
    size_t start = ex->sink ? ex->sink->len : 0;
    ex->fill_start = start;
    ex->stop_early = 0;
    while (!ex->read_done) {
        uint64_t samples_before = ex->s.samples;
        int64_t to = ex->o.to_ns;
        int64_t wend = ex->cursor > to - ex->win ? to : ex->cursor + ex->win;
        int rc;
        ex->lookback = 0;
        for (;;) {
            /* both kinds: every seq is seen, so a read that started past unread seqs shows */
            ex->rc_cb = 0;
            ex->win_first = 1;
            ex->retry = 0;
            rc = store_blocks_read(ex->st, ex->tid, ex->cursor - ex->lookback, wend,
                                   STORE_BLOCKS_WAVEFORM | STORE_BLOCKS_EVENT, on_block, ex);
            if (!ex->retry)
                break;
            ex->lookback = ex->lookback ? ex->lookback * 4 : 1000000000LL;
            if (ex->lookback > LOOKBACK_MAX_NS)
                ex->lookback = LOOKBACK_MAX_NS; /* then a seq hole is taken as real */
        }
        if (ex->rc_cb < 0)
            return fail(err, errlen, ex->rc_cb, "%s", ex->err_cb);
        if (rc < 0)
            return fail(err, errlen, rc, "cannot read the stored blocks: %s", err_str(rc));
        if (ex->stop_early) {
            /* go on after the last block used (its end is inside the window) */
            ex->stop_early = 0;
            if (ex->prev_next > ex->cursor && ex->prev_next < wend)
                wend = ex->prev_next;
            ex->win = WIN_START_NS;
        }
        ex->cursor = wend;
        ex->s.cursor_ns = wend;
        if (wend >= to)
            ex->read_done = 1;
        /* adapt the window: wider over gaps, narrower when one window gives too much */
        uint64_t got = ex->s.samples - samples_before;
        if (got == 0 && ex->win < to - ex->o.from_ns)
            ex->win *= 4;
        else if (got > 200000 && ex->win > WIN_MIN_NS)
            ex->win /= 2;
        if (!ex->counting && ex->sink && ex->sink->len - start >= PIECE_BYTES / 4)
            break; /* enough for this piece */
    }
    return 0;
}

static void read_reset(export_t *ex)
{
    ex->cursor = ex->o.from_ns;
    ex->win = WIN_START_NS;
    ex->have_seq = 0;
    ex->last_seq = 0;
    ex->read_done = 0;
    ex->have_prev = 0;
    ex->nruns = 0;
    ex->runs_overflow = 0;
    ex->tq_worst = -1;
    memset(&ex->s, 0, sizeof ex->s);
    for (int ch = 0; ch < NCH_MAX; ch++) {
        ex->cmin[ch] = INT64_MAX;
        ex->cmax[ch] = INT64_MIN;
    }
}

/* The counting pass: everything the cfg needs before the data. */
static int plan(export_t *ex, char *err, size_t errlen)
{
    read_reset(ex);
    ex->counting = 1;
    int rc = fill(ex, err, errlen);
    ex->counting = 0;
    if (rc < 0)
        return rc;
    ex->planned = 1;
    ex->plan_samples = ex->s.samples;
    ex->plan_gaps = ex->s.gaps;
    ex->plan_segments = ex->s.segments;
    ex->plan_nruns = ex->nruns;
    memcpy(ex->plan_runs, ex->runs, sizeof ex->runs);
    ex->plan_overflow = ex->runs_overflow;
    ex->plan_tq = ex->tq_worst;
    ex->plan_first = ex->s.first_ns;
    memcpy(ex->plan_cmin, ex->cmin, sizeof ex->cmin);
    memcpy(ex->plan_cmax, ex->cmax, sizeof ex->cmax);
    /* int32 counts that do not fit BINARY / 1999 ASCII: x = count / 2^k with the smallest k */
    if (ex->fmt == 2 &&
        (ex->o.ft == COMTRADE_BINARY || (ex->o.ft == COMTRADE_ASCII && ex->o.rev_year <= 1999))) {
        int64_t lim = ex->o.ft == COMTRADE_BINARY ? 32767 : 99998;
        for (int ch = 0; ch < ex->nch; ch++) {
            int64_t m = ex->cmax[ch] > -ex->cmin[ch] ? ex->cmax[ch] : -ex->cmin[ch];
            int k = 0;
            while (k < 32 && (m >> k) > lim)
                k++;
            ex->shift[ch] = k;
        }
    }
    read_reset(ex);
    ex->s.passes = 2;
    return 0;
}

/* ---- the cfg and the header text ---- */

static void text_field(char *dst, size_t cap, const char *src)
{
    /* C37.111 text fields: no commas; keep them printable */
    size_t i = 0;
    for (; src[i] && i + 1 < cap && i < 64; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c == ',' ? ';' : (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    dst[i] = '\0';
}

static int build_cfg(export_t *ex, comtrade_cfg_t *cfg, char *err, size_t errlen)
{
    uint64_t n = ex->planned ? ex->plan_samples : ex->s.samples;
    uint64_t gaps = ex->planned ? ex->plan_gaps : ex->s.gaps;
    size_t nruns = ex->planned ? ex->plan_nruns : ex->nruns;
    int overflow = ex->planned ? ex->plan_overflow : ex->runs_overflow;
    const comtrade_rate_t *runs = ex->planned ? ex->plan_runs : ex->runs;
    const int64_t *cmin = ex->planned ? ex->plan_cmin : ex->cmin;
    const int64_t *cmax = ex->planned ? ex->plan_cmax : ex->cmax;
    int tq = ex->planned ? ex->plan_tq : ex->tq_worst;
    int64_t first = ex->planned ? ex->plan_first : ex->s.first_ns;
    /* a rate table when the samples are contiguous; sample times in the .dat when not */
    int use_rates = n > 0 && gaps == 0 && !overflow;
    comtrade_cfg_init(cfg, (size_t)ex->nch, 0, use_rates ? nruns : 0);
    text_field(cfg->station, sizeof cfg->station, ex->term.name[0] ? ex->term.name : ex->tid);
    text_field(cfg->rec_dev_id, sizeof cfg->rec_dev_id, ex->tid);
    cfg->rev_year = ex->o.rev_year;
    cfg->ft = ex->o.ft;
    cfg->lf = ex->term.nominal_hz > 0 ? ex->term.nominal_hz : 50;
    if (use_rates)
        memcpy(cfg->rates, runs, nruns * sizeof *runs);
    cfg->endsamp = (int64_t)n;
    cfg->start_ns = n ? first : ex->o.from_ns;
    cfg->trigger_ns = ex->o.trigger_ns ? ex->o.trigger_ns : cfg->start_ns;
    cfg->timemult = ex->timemult;
    snprintf(cfg->time_code, sizeof cfg->time_code, "0");
    snprintf(cfg->local_code, sizeof cfg->local_code, "x");
    cfg->time_code_min = cfg->local_code_min = 0;
    cfg->tmq_code = tq < 0 ? 15 : tq;
    cfg->leapsec = 3;
    static const char *const ph_names[] = {"", "A", "B", "C", "N"};
    for (int ch = 0; ch < ex->nch; ch++) {
        comtrade_analog_t *a = &cfg->analog[ch];
        a->index = ch + 1;
        snprintf(a->ch_id, sizeof a->ch_id, "%s", ex->name[ch]);
        int kind = ex->has_layout ? ex->lay[ch].kind : 0;
        int unit = ex->has_layout ? ex->lay[ch].unit : 0;
        int ph = ex->has_layout ? ex->lay[ch].phase : 0;
        snprintf(a->ph, sizeof a->ph, "%s", ph >= 1 && ph <= 4 ? ph_names[ph] : "");
        snprintf(a->uu, sizeof a->uu, "%s",
                 !ex->has_layout              ? ""
                 : unit == 1 || (unit != 2 && kind == DSP_KIND_VOLTAGE) ? "V"
                 : unit == 2 || kind == DSP_KIND_CURRENT                 ? "A"
                                                                         : "");
        a->b = 0;
        a->skew = 0;
        a->primary = ex->ratio[ch];
        a->secondary = 1;
        a->ps = ex->o.side == EXPORT_SECONDARY ? 'S' : 'P';
        if (ex->o.ft == COMTRADE_FLOAT32) {
            a->a = 1;
            a->min = n ? (double)(float)((double)cmin[ch] * ex->factor[ch]) : 0;
            a->max = n ? (double)(float)((double)cmax[ch] * ex->factor[ch]) : 0;
        } else {
            a->a = ex->factor[ch] * (double)(1LL << ex->shift[ch]);
            a->min = n ? (double)x_of(ex, ch, cmin[ch], NULL) : 0;
            a->max = n ? (double)x_of(ex, ch, cmax[ch], NULL) : 0;
        }
    }
    (void)err;
    (void)errlen;
    return 0;
}

static void hdr_text(export_t *ex, buf_t *b)
{
    char f[40], t[40];
    uint64_t n = ex->planned ? ex->plan_samples : ex->s.samples;
    uint64_t segs = ex->planned ? ex->plan_segments : ex->s.segments;
    uint64_t gaps = ex->planned ? ex->plan_gaps : ex->s.gaps;
    int tq = ex->planned ? ex->plan_tq : ex->tq_worst;
    buf_printf(b, "gridsense export of terminal %s", ex->tid);
    if (ex->term.name[0])
        buf_printf(b, " (%s)", ex->term.name);
    buf_printf(b, "\r\nrange: %s to %s (UTC, to exclusive)\r\n",
               time_fmt_utc(ex->o.from_ns, f, sizeof f), time_fmt_utc(ex->o.to_ns, t, sizeof t));
    buf_printf(b, "side: %s (vt_ratio %.9g, ct_ratio %.9g)\r\n",
               ex->o.side == EXPORT_SECONDARY ? "secondary" : "primary", ex->term.vt_ratio,
               ex->term.ct_ratio);
    buf_printf(b, "samples: %llu in %llu segment(s), %llu gap(s)%s\r\n", (unsigned long long)n,
               (unsigned long long)segs, (unsigned long long)gaps,
               gaps ? ": sample times are the .dat timestamps (nrates 0)" : "");
    if (!ex->planned)
        buf_printf(b, "blocks: %llu used, %llu skipped (channel layout differs from the first"
                      " block's), %llu skipped (back in time)\r\n",
                   (unsigned long long)ex->s.blocks, (unsigned long long)ex->s.skipped_layout,
                   (unsigned long long)ex->s.skipped_time);
    buf_printf(b, "time quality: tmq_code %X (worst of the blocks)\r\n", tq < 0 ? 15 : tq);
    if (ex->s.clamped)
        buf_printf(b, "values -32768 written as -32767 (0x8000 marks a missing value): %llu\r\n",
                   (unsigned long long)ex->s.clamped);
    if (ex->hdr_user) {
        buf_puts(b, ex->hdr_user);
        buf_puts(b, "\r\n");
    }
}

/* The probe: the first usable block fixes the channel set. */
static int probe_cb(void *ud, const store_block_t *b)
{
    export_t *ex = ud;
    int width = b->sample_fmt == 1 ? 2 : b->sample_fmt == 2 ? 4 : 0;
    int nch = __builtin_popcount(b->channel_mask);
    if (!width || nch == 0 || nch > NCH_MAX || nch != b->nchannels ||
        (size_t)b->nsamples * (size_t)nch * (size_t)width != b->data_len)
        return 0;
    chset_take(ex, b);
    ex->fmt = b->sample_fmt;
    ex->prev_rate = b->sample_rate; /* for the size estimate only */
    return 1;
}

int export_open(store_t *st, const export_opts_t *o, export_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!o->terminal_id || strlen(o->terminal_id) > STORE_ID_MAX)
        return fail(err, errlen, GS_ENOTFOUND, "no such terminal");
    if (o->from_ns >= o->to_ns)
        return fail(err, errlen, GS_EINVAL, "the range is empty: from must be before to");
    if (o->what != EXPORT_COMTRADE && o->what != EXPORT_CSV_WAVEFORM &&
        o->what != EXPORT_CSV_MEASUREMENTS)
        return fail(err, errlen, GS_EINVAL, "unknown export kind");
    if (o->what == EXPORT_COMTRADE) {
        if (o->rev_year != 1999 && o->rev_year != 2013)
            return fail(err, errlen, GS_EINVAL, "revision: 1999 or 2013");
        if (o->rev_year == 1999 && (o->ft == COMTRADE_BINARY32 || o->ft == COMTRADE_FLOAT32))
            return fail(err, errlen, GS_EINVAL,
                        "binary32 and float32 are C37.111-2013 file types: use revision 2013");
        if (o->rev_year == 1999 && o->container == EXPORT_CFF)
            return fail(err, errlen, GS_EINVAL,
                        "the .cff single file is a C37.111-2013 form: use revision 2013");
        if ((int)o->ft < COMTRADE_ASCII || (int)o->ft > COMTRADE_FLOAT32 ||
            o->container < EXPORT_PLAIN || o->container > EXPORT_CFF)
            return fail(err, errlen, GS_EINVAL, "bad format or container");
    }
    if (o->what == EXPORT_CSV_MEASUREMENTS) {
        const char *iv = o->interval ? o->interval : "10min";
        if (strcmp(iv, "3s") && strcmp(iv, "10s") && strcmp(iv, "10min") && strcmp(iv, "2h"))
            return fail(err, errlen, GS_EINVAL, "interval: 3s, 10s, 10min or 2h");
    }
    export_t *ex = xcalloc(1, sizeof *ex);
    ex->st = st;
    ex->o = *o;
    snprintf(ex->tid, sizeof ex->tid, "%s", o->terminal_id);
    ex->o.terminal_id = ex->tid;
    snprintf(ex->interval, sizeof ex->interval, "%s", o->interval ? o->interval : "10min");
    ex->o.interval = ex->interval;
    if (o->base)
        snprintf(ex->base, sizeof ex->base, "%s", o->base);
    else
        export_basename(ex->tid, o->from_ns, ex->base, sizeof ex->base);
    ex->o.base = ex->base;
    ex->hdr_user = o->hdr ? xstrdup(o->hdr) : NULL;
    ex->o.hdr = NULL;
    int rc = store_terminal_info(st, ex->tid, &ex->term);
    if (rc < 0) {
        rc = rc == GS_ENOTFOUND ? fail(err, errlen, rc, "no such terminal: %s", ex->tid)
                                : fail(err, errlen, rc, "cannot read the terminal: %s",
                                       err_str(rc));
        goto fail;
    }
    if (ex->term.vt_ratio <= 0)
        ex->term.vt_ratio = 1;
    if (ex->term.ct_ratio <= 0)
        ex->term.ct_ratio = 1;
    read_reset(ex);
    if (o->what == EXPORT_CSV_MEASUREMENTS) {
        ex->meas_pass = 1;
        ex->mcur = o->from_ns;
        *out = ex;
        return 0;
    }
    /* timestamps: µs since the first sample, × timemult so that the range fits 32 bits */
    int64_t span_us = (o->to_ns - o->from_ns) / 1000 + 1;
    ex->timemult = span_us <= 0xFFFFFFFELL ? 1 : (double)((span_us + 0xFFFFFFFDLL) / 0xFFFFFFFELL);
    comtrade_cfg_init(&ex->proto, 0, 0, 0);
    ex->proto.ft = o->ft;
    ex->proto.rev_year = o->rev_year;
    rc = store_blocks_read(st, ex->tid, o->from_ns, o->to_ns, STORE_BLOCKS_WAVEFORM, probe_cb, ex);
    if (rc < 0) {
        rc = fail(err, errlen, rc, "cannot read the stored blocks: %s", err_str(rc));
        goto fail;
    }
    ex->prev_rate = ex->chset ? ex->prev_rate : 0;
    ex->proto.nanalog = (size_t)ex->nch;
    if (o->what == EXPORT_COMTRADE && ex->chset &&
        (o->container == EXPORT_CFF ||
         (ex->fmt == 2 && (o->ft == COMTRADE_BINARY ||
                           (o->ft == COMTRADE_ASCII && o->rev_year <= 1999))))) {
        if ((rc = plan(ex, err, errlen)) < 0)
            goto fail;
    } else {
        ex->s.passes = 1;
    }
    *out = ex;
    return 0;
fail:
    export_free(ex);
    return rc;
}

int export_empty(const export_t *ex)
{
    return !ex->chset;
}

/* Bytes of the .dat at most (a zip entry over 4 GiB needs zip64 sizes). */
static int dat_may_be_big(const export_t *ex)
{
    double recs = (double)(ex->o.to_ns - ex->o.from_ns) / 1e9 * (double)ex->prev_rate + 1;
    double per = ex->o.ft == COMTRADE_ASCII ? 24.0 + 8.0 * ex->nch
                 : 8.0 + ex->nch * (ex->o.ft == COMTRADE_BINARY ? 2.0 : 4.0);
    return recs * per > 4.0e9;
}

static int zip_text_entry(export_t *ex, buf_t *out, const char *ext, const buf_t *text)
{
    char name[200];
    snprintf(name, sizeof name, "%s.%s", ex->base, ext);
    int rc = export_zip_begin(ex->zip, out, name, time(NULL), 0);
    if (rc == 0 && text->len)
        rc = export_zip_data(ex->zip, out, text->data, text->len);
    if (rc == 0)
        rc = export_zip_end(ex->zip, out);
    return rc;
}

int export_cfg(export_t *ex, buf_t *cfgout, buf_t *hdr, char *err, size_t errlen)
{
    comtrade_cfg_t cfg;
    if (ex->o.what != EXPORT_COMTRADE)
        return fail(err, errlen, GS_EINVAL, "not a COMTRADE export");
    int rc = build_cfg(ex, &cfg, err, errlen);
    if (rc == 0)
        rc = comtrade_cfg_format(&cfg, cfgout, err, errlen);
    comtrade_cfg_free(&cfg);
    if (rc == 0 && hdr)
        hdr_text(ex, hdr);
    return rc;
}

static void csv_field(buf_t *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        buf_puts(b, s);
        return;
    }
    buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            buf_putc(b, '"');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

static int meas_next(export_t *ex, buf_t *out, char *err, size_t errlen);

int export_next(export_t *ex, buf_t *out, char *err, size_t errlen)
{
    if (ex->o.what == EXPORT_CSV_MEASUREMENTS)
        return meas_next(ex, out, err, errlen);
    size_t start = out->len;
    int rc = 0;
    while (out->len == start && ex->phase != PH_DONE) {
        switch (ex->phase) {
        case PH_START:
            if (ex->o.what == EXPORT_CSV_WAVEFORM) {
                buf_puts(out, "time");
                for (int ch = 0; ch < ex->nch; ch++) {
                    char h[48];
                    const char *u = !ex->has_layout ? "count"
                                    : ex->lay[ch].unit == 2 || (ex->lay[ch].unit != 1 &&
                                                                ex->lay[ch].kind == 2)
                                        ? "A"
                                        : "V";
                    snprintf(h, sizeof h, "%s [%s]", ex->name[ch], u);
                    buf_putc(out, ',');
                    csv_field(out, h);
                }
                buf_puts(out, "\r\n");
            } else if (ex->o.container == EXPORT_ZIP) {
                ex->zip = export_zip_new(ex->o.zip_store);
                char name[200];
                snprintf(name, sizeof name, "%s.dat", ex->base);
                if ((rc = export_zip_begin(ex->zip, out, name, time(NULL), dat_may_be_big(ex))) < 0)
                    return fail(err, errlen, rc, "zip: %s", err_str(rc));
            } else if (ex->o.container == EXPORT_CFF) {
                comtrade_cff_section(out, "CFG", ex->o.ft, 0);
                if ((rc = export_cfg(ex, out, NULL, err, errlen)) < 0)
                    return rc;
                comtrade_cff_section(out, "INF", ex->o.ft, 0);
                comtrade_cff_section(out, "HDR", ex->o.ft, 0);
                hdr_text(ex, out);
                comtrade_cff_section(out, "DAT", ex->o.ft,
                                     ex->plan_samples * comtrade_dat_record_bytes(&ex->proto));
            }
            ex->phase = PH_DATA;
            break;
        case PH_DATA:
            ex->sink = ex->o.container == EXPORT_ZIP && ex->o.what == EXPORT_COMTRADE ? &ex->stage
                                                                                      : out;
            if ((rc = fill(ex, err, errlen)) < 0)
                return rc;
            if (ex->sink == &ex->stage) {
                if ((rc = export_zip_data(ex->zip, out, ex->stage.data, ex->stage.len)) < 0)
                    return fail(err, errlen, rc,
                                "zip: %s (the .dat exceeds 4 GiB: export a shorter range)",
                                err_str(rc));
                buf_reset(&ex->stage);
            }
            if (ex->read_done) {
                if (ex->planned && ex->s.samples != ex->plan_samples)
                    return fail(err, errlen, GS_ESTATE,
                                "the stored data changed during the export (%llu samples"
                                " counted, %llu found): try again",
                                (unsigned long long)ex->plan_samples,
                                (unsigned long long)ex->s.samples);
                ex->phase = ex->o.container == EXPORT_ZIP && ex->o.what == EXPORT_COMTRADE
                                ? PH_TAIL
                                : PH_DONE;
            }
            break;
        case PH_TAIL: {
            buf_t cfg = {0}, hdr = {0};
            if ((rc = export_zip_end(ex->zip, out)) < 0 ||
                (rc = export_cfg(ex, &cfg, &hdr, err, errlen)) < 0 ||
                (rc = zip_text_entry(ex, out, "cfg", &cfg)) < 0 ||
                (rc = zip_text_entry(ex, out, "hdr", &hdr)) < 0 ||
                (rc = export_zip_close(ex->zip, out)) < 0) {
                buf_free(&cfg);
                buf_free(&hdr);
                return fail(err, errlen, rc, "zip: %s", err_str(rc));
            }
            buf_free(&cfg);
            buf_free(&hdr);
            ex->phase = PH_DONE;
            break;
        }
        default:
            ex->phase = PH_DONE;
        }
    }
    ex->s.bytes += out->len - start;
    return out->len > start ? 1 : 0;
}

void export_stats(const export_t *ex, export_stats_t *out)
{
    *out = ex->s;
    if (ex->planned && ex->phase == PH_START) {
        out->samples = ex->plan_samples;
        out->segments = ex->plan_segments;
        out->gaps = ex->plan_gaps;
    }
}

void export_free(export_t *ex)
{
    if (!ex)
        return;
    for (size_t i = 0; i < ex->ncols; i++)
        free(ex->cols[i]);
    free(ex->cols);
    free(ex->hdr_user);
    buf_free(&ex->stage);
    export_zip_free(ex->zip);
    comtrade_cfg_free(&ex->proto);
    free(ex);
}

/* ---- measurements as CSV ----
 * Pass 1 reads the rows' JSON to collect the columns (first-seen order), pass 2 writes one row
 * per interval. Flattening: nested objects "freq.mean"; the "channels" array by channel name
 * ("Ua.rms", "Ua.thd_pct"); arrays of numbers by index ("Ua.harmonic_groups.3"); "flags" (an
 * array of strings) as one column joined with ';'. At most MEAS_COLS columns. */

static long col_find(export_t *ex, const char *name, int add)
{
    for (size_t i = 0; i < ex->ncols; i++)
        if (strcmp(ex->cols[i], name) == 0)
            return (long)i;
    if (!add || ex->ncols == MEAS_COLS)
        return -1;
    if ((ex->ncols & 63) == 0)
        ex->cols = xrealloc(ex->cols, (ex->ncols + 64) * sizeof *ex->cols);
    ex->cols[ex->ncols] = xstrdup(name);
    return (long)ex->ncols++;
}

typedef struct {
    export_t *ex;
    char **vals; /* pass 2: value text per column (malloc'd) */
} flat_t;

static void flat_put(flat_t *f, const char *key, const char *text)
{
    long c = col_find(f->ex, key, f->vals == NULL);
    if (c < 0 || !f->vals)
        return;
    free(f->vals[c]);
    f->vals[c] = xstrdup(text);
}

static void flatten(flat_t *f, const char *prefix, json_t *v)
{
    char key[256], num[40];
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            if (!*prefix && (!strcmp(k, "interval") || !strcmp(k, "t_start") ||
                             !strcmp(k, "t_end") || !strcmp(k, "t_start_ns") ||
                             !strcmp(k, "t_end_ns") || !strcmp(k, "count")))
                continue; /* the row's own columns */
            if (!*prefix && !strcmp(k, "channels") && json_is_array(m)) {
                size_t i;
                json_t *c;
                json_array_foreach(m, i, c)
                {
                    const char *nm = json_string_value(json_object_get(c, "name"));
                    char p[64];
                    if (nm)
                        snprintf(p, sizeof p, "%s", nm);
                    else
                        snprintf(p, sizeof p, "ch%zu", i);
                    const char *k2;
                    json_t *m2;
                    json_object_foreach(c, k2, m2)
                    {
                        if (strcmp(k2, "name") == 0)
                            continue;
                        snprintf(key, sizeof key, "%s.%s", p, k2);
                        flatten(f, key, m2);
                    }
                }
                continue;
            }
            if (*prefix)
                snprintf(key, sizeof key, "%s.%s", prefix, k);
            else
                snprintf(key, sizeof key, "%s", k);
            flatten(f, key, m);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        int strings = json_array_size(v) == 0 || json_is_string(json_array_get(v, 0));
        if (strings) {
            buf_t j = {0};
            json_array_foreach(v, i, e)
            {
                if (i)
                    buf_putc(&j, ';');
                buf_puts(&j, json_is_string(e) ? json_string_value(e) : "");
            }
            flat_put(f, prefix, j.data ? j.data : "");
            buf_free(&j);
            return;
        }
        json_array_foreach(v, i, e)
        {
            snprintf(key, sizeof key, "%s.%zu", prefix, i);
            flatten(f, key, e);
        }
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        flat_put(f, prefix, num);
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.10g", json_real_value(v));
        flat_put(f, prefix, num);
    } else if (json_is_string(v)) {
        flat_put(f, prefix, json_string_value(v));
    } else if (json_is_boolean(v)) {
        flat_put(f, prefix, json_is_true(v) ? "true" : "false");
    } else {
        flat_put(f, prefix, "");
    }
}

typedef struct {
    export_t *ex;
    buf_t *out;
} mctx_t;

static int meas_cb(void *ud, const store_measurement_t *m)
{
    mctx_t *c = ud;
    export_t *ex = c->ex;
    ex->mlast_end = m->t_end_ns;
    ex->mrows_page++;
    json_t *j = json_loads(m->data ? m->data : "{}", 0, NULL);
    flat_t f = {ex, NULL};
    if (ex->meas_pass == 1) {
        if (j)
            flatten(&f, "", j);
        json_decref(j);
        return 0;
    }
    f.vals = xcalloc(ex->ncols ? ex->ncols : 1, sizeof *f.vals);
    if (j)
        flatten(&f, "", j);
    json_decref(j);
    buf_t *b = c->out;
    put_time9(b, m->t_start_ns);
    buf_putc(b, ',');
    put_time9(b, m->t_end_ns);
    buf_printf(b, ",%s,%u", m->interval, m->count);
    for (size_t i = 0; i < ex->ncols; i++) {
        buf_putc(b, ',');
        if (f.vals[i])
            csv_field(b, f.vals[i]);
        free(f.vals[i]);
    }
    free(f.vals);
    buf_puts(b, "\r\n");
    ex->s.samples++;
    return 0;
}

static int meas_next(export_t *ex, buf_t *out, char *err, size_t errlen)
{
    size_t start = out->len;
    mctx_t c = {ex, out};
    while (out->len == start && ex->meas_pass <= 2) {
        if (ex->meas_pass == 2 && ex->phase == PH_START) {
            buf_puts(out, "t_start,t_end,interval,count");
            for (size_t i = 0; i < ex->ncols; i++) {
                buf_putc(out, ',');
                csv_field(out, ex->cols[i]);
            }
            buf_puts(out, "\r\n");
            ex->phase = PH_DATA;
        }
        ex->mrows_page = 0;
        int rc = store_measurement_list(ex->st, ex->tid, ex->interval, ex->mcur, ex->o.to_ns,
                                        MEAS_PAGE, meas_cb, &c);
        if (rc < 0)
            return fail(err, errlen, rc, "cannot read the measurements: %s", err_str(rc));
        if (ex->mrows_page > 0)
            ex->mcur = ex->mlast_end;
        ex->s.cursor_ns = ex->mcur;
        if (ex->mrows_page < MEAS_PAGE) {
            ex->meas_pass++;
            ex->mcur = ex->o.from_ns;
            if (ex->meas_pass == 2 && ex->ncols == 0 && 0)
                break;
        }
    }
    ex->s.bytes += out->len - start;
    return out->len > start ? 1 : 0;
}
