/* Stored waveforms for the API (wave.h has the contract and the reply format).
 *
 * Two passes over the stored blocks of the range (store_blocks_read): the first counts the
 * sample sets of the selected channels, which decides between raw samples and an envelope (it
 * stops as soon as there are more than max_points: an envelope); the second converts and writes
 * them. Reading a raw-sized range twice costs little next to formatting the reply,
 * and little of it is held in memory: raw replies keep the counts of the selected channels (at
 * most WAVE_MAX_VALUES), envelope buckets are folded as they go.
 */
#include "wave/wave.h"

#include "ana/json.h"
#include "core/err.h"
#include "dsp/dsp.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_ 16 /* channel name bytes with the NUL (STORE_CH_NAME_MAX) */
#define SEL_MAX   16 /* channel names a request may select */
#define SEEN_MAX  64 /* distinct channel names one reply lists */

/* A channel of the open segment (or of the block being resolved). */
typedef struct {
    char name[NAME_MAX_];
    const char *kind; /* "voltage", "current", "other" */
    int is_voltage;
    const char *unit; /* "V", "A", "count" */
    double ratio;     /* applied VT/CT ratio (1 on the secondary side) */
    double factor;    /* reply units per count: scale × ratio */
    int dec;          /* decimals printed: one more than the LSB needs */
    /* raw mode: the segment's counts, formatted into the reply when it closes (one pass over
     * the output bytes instead of a formatted copy per channel) */
    int32_t *cnt;
    size_t ncnt, capcnt;
    /* envelope mode: per bucket of the segment: min, max, sum of squares (reply units) and the
     * channel's samples */
    double *mn, *mx, *ss;
    uint32_t *cn;
    /* rms_half: sum of squares of the current half cycle and of the previous one */
    double hs, hprev;
    buf_t rms;
} wch_t;

/* The segment being built: a contiguous run of sample sets. */
typedef struct {
    int open;
    int64_t t0_ns;   /* first sample set */
    int64_t next_ns; /* where the next sample set is due (last block's t0 + its sets / rate) */
    uint32_t rate;
    int64_t n; /* sample sets */
    uint64_t seq_first, seq_last;
    int tq_rank; /* worst time quality so far, as a rank (0 unknown is the worst) */
    int nch;
    wch_t ch[STORE_MAX_CHANNELS];
    /* envelope */
    int64_t kfirst; /* bucket index of the segment's first bucket */
    int nb, capb;   /* buckets used / allocated */
    uint32_t *bn;   /* samples per bucket */
    /* rms_half */
    int half;   /* samples per half cycle, 0 = no rms_half */
    int hn;     /* samples in the current half cycle */
    int halves; /* complete half cycles */
    int nrms;   /* values written */
} seg_t;

/* One block's selected channels, resolved against its layout. */
typedef struct {
    int nch;
    wch_t ch[STORE_MAX_CHANNELS]; /* name, kind, unit, ratio, factor, dec only */
    int pos[STORE_MAX_CHANNELS];  /* position of each in the block's sample set */
} blkch_t;

typedef struct {
    /* request */
    const char *tid;
    int64_t from, to;
    int side;
    double vt, ct;
    int nominal_hz;
    int nsel;
    char sel[SEL_MAX][NAME_MAX_];
    int sel_hit[SEL_MAX];
    int want_rms;
    /* pass 1 */
    int64_t sets;
    int nch_max;
    int nseen, nall;
    char seen[SEEN_MAX][NAME_MAX_]; /* selected names found */
    char all[SEEN_MAX][NAME_MAX_];  /* every name found (for the error naming them) */
    int64_t stop_after;             /* pass 1 stops once it has counted more sample sets */
    /* pass 2 */
    int pass;
    int envelope;
    int npoints; /* buckets (envelope) / raw threshold */
    seg_t seg;
    int nsegs, ngaps, nrms_segs;
    int64_t last_next; /* where the previous segment ended (for the trailing gap) */
    double last_period;
    uint64_t last_seq;
    int have_last;
    buf_t *segs; /* the reply: segments are written straight into it */
    buf_t gaps, rms;
    int32_t *kidx; /* scratch: bucket of each sample set of a block (relative to kfirst) */
    size_t kidx_cap;
    /* pyramid rows: the channels resolved for the last mask and layout seen (rows of one
     * layout follow each other: resolve once) */
    int pc_valid, pc_rc, pc_nlayout;
    uint32_t pc_mask;
    store_chan_t pc_layout[STORE_MAX_CHANNELS];
    blkch_t pc_bc;
} ctx_t;

/* ---- Formatting ---- */

static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12};
#define DEC_MAX 12

static size_t fmt_fixed(char *out, double s, int dec);

/* Appends v with `dec` decimals at most (trailing zeros dropped): values are multiples of a
 * channel's LSB, so one decimal more than the LSB needs loses nothing, and this is several
 * times faster than printf("%g") over the hundreds of thousands of numbers of a raw reply. */
static void put_num(buf_t *b, double v, int dec)
{
    if (!isfinite(v)) {
        buf_puts(b, "null");
        return;
    }
    double s = v * p10[dec];
    if (fabs(s) >= 9e15) {
        buf_printf(b, "%.9g", v);
        return;
    }
    buf_reserve(b, 24);
    b->len += fmt_fixed(b->data + b->len, s, dec);
    b->data[b->len] = '\0';
}

/* The digits of s = v·10^dec (|s| < 9e15) as a decimal with dec decimals, trailing zeros
 * dropped, at out (room for 24 bytes; no NUL). Returns the length. */
static size_t fmt_fixed(char *out, double s, int dec)
{
    long long q = llround(s);
    unsigned long long u = q < 0 ? 0ULL - (unsigned long long)q : (unsigned long long)q;
    char tmp[40], *e = tmp + sizeof tmp, *p = e;
    int d = dec;
    while (d > 0 && u % 10 == 0) {
        u /= 10;
        d--;
    }
    if (d > 0) {
        for (int i = 0; i < d; i++) {
            *--p = (char)('0' + u % 10);
            u /= 10;
        }
        *--p = '.';
    }
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (q < 0)
        *--p = '-';
    memcpy(out, p, (size_t)(e - p));
    return (size_t)(e - p);
}

/* Appends a raw channel's values (counts × factor), comma separated. */
static void put_counts(buf_t *b, const wch_t *w)
{
    double scale = p10[w->dec] * w->factor;
    buf_reserve(b, w->ncnt * 24);
    for (size_t i = 0; i < w->ncnt; i++) {
        double x = (double)w->cnt[i];
        if (i)
            b->data[b->len++] = ',';
        if (fabs(x * scale) >= 9e15) { /* a huge ratio: the slow path */
            b->data[b->len] = '\0';
            put_num(b, x * w->factor, w->dec);
            buf_reserve(b, (w->ncnt - i) * 24);
            continue;
        }
        b->len += fmt_fixed(b->data + b->len, x * scale, w->dec);
    }
    b->data[b->len] = '\0';
}

/* Decimals for values that are multiples of lsb. */
static int decimals_for(double lsb)
{
    if (!(lsb > 0) || !isfinite(lsb))
        return 6;
    int d = (int)ceil(-log10(lsb) - 1e-9) + 1;
    return d < 0 ? 0 : d > DEC_MAX ? DEC_MAX : d;
}

/* Appends "key":"<RFC 3339>","key_ns":<ns>. */
static void put_time(buf_t *b, const char *key, int64_t ns)
{
    char t[40];
    time_fmt_utc(ns, t, sizeof t);
    buf_printf(b, "\"%s\":\"%s\",\"%s_ns\":%" PRId64, key, t, key, ns);
}

/* ---- Channels of a block ---- */

static void add_name(char (*list)[NAME_MAX_], int *n, const char *name)
{
    for (int k = 0; k < *n; k++)
        if (strcmp(list[k], name) == 0)
            return;
    if (*n < SEEN_MAX)
        snprintf(list[(*n)++], NAME_MAX_, "%s", name);
}

static int name_selected(ctx_t *c, const char *name)
{
    if (c->nsel == 0)
        return 1;
    for (int i = 0; i < c->nsel; i++)
        if (strcasecmp(c->sel[i], name) == 0) {
            c->sel_hit[i] = 1;
            return 1;
        }
    return 0;
}

/* Resolves the block's channels (mask order, named as the analysis names them) and keeps the
 * selected ones. Returns 0, or GS_EINVAL for a block whose stored sizes do not agree (it is
 * skipped: shown as missing). */
static int resolve(ctx_t *c, const store_block_t *b, blkch_t *out)
{
    int width = b->sample_fmt == 1 ? 2 : b->sample_fmt == 2 ? 4 : 0;
    int nch = __builtin_popcount(b->channel_mask);
    if (!width || nch == 0 || nch > STORE_MAX_CHANNELS || nch != b->nchannels ||
        (size_t)b->nsamples * (size_t)nch * (size_t)width != b->data_len)
        return GS_EINVAL;

    int idx[STORE_MAX_CHANNELS], n = 0;
    for (int i = 0; i < 32 && n < nch; i++)
        if (b->channel_mask & (1u << i))
            idx[n++] = i;
    const store_chan_t *lay[STORE_MAX_CHANNELS];
    int have_layout = b->nlayout > 0;
    for (int p = 0; p < nch && have_layout; p++) {
        lay[p] = NULL;
        for (int k = 0; k < b->nlayout; k++)
            if (b->layout[k].index == idx[p])
                lay[p] = &b->layout[k];
        if (!lay[p])
            have_layout = 0; /* a mask the layout does not describe: counts, as without one */
    }

    json_names_t names;
    if (have_layout) {
        /* the analysis' names for this channel list (src/ana/ana.c open_stream) */
        dsp_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.nchannels = nch;
        for (int p = 0; p < nch; p++) {
            cfg.ch[p].kind = lay[p]->kind <= DSP_KIND_CURRENT ? lay[p]->kind : DSP_KIND_OTHER;
            cfg.ch[p].phase = lay[p]->phase <= DSP_PHASE_N ? lay[p]->phase : DSP_PHASE_NONE;
        }
        ana_json_names(&names, &cfg);
    }

    out->nch = 0;
    for (int p = 0; p < nch; p++) {
        wch_t w;
        memset(&w, 0, sizeof w);
        if (have_layout) {
            snprintf(w.name, sizeof w.name, "%s", names.name[p]);
            int kind = lay[p]->kind;
            w.kind = names.kind[p];
            w.is_voltage = kind == DSP_KIND_VOLTAGE;
            w.unit = lay[p]->unit == 1   ? "V"
                     : lay[p]->unit == 2 ? "A"
                     : kind == 1         ? "V"
                     : kind == 2         ? "A"
                                         : "other";
            w.ratio = c->side == WAVE_SIDE_SECONDARY ? 1
                      : kind == DSP_KIND_VOLTAGE     ? c->vt
                      : kind == DSP_KIND_CURRENT     ? c->ct
                                                     : 1;
            w.factor = (double)lay[p]->scale * w.ratio;
        } else {
            snprintf(w.name, sizeof w.name, "ch%d", idx[p]);
            w.kind = "other";
            w.unit = "count";
            w.ratio = 1;
            w.factor = 1;
        }
        w.dec = decimals_for(w.factor);
        add_name(c->all, &c->nall, w.name);
        if (!name_selected(c, w.name))
            continue;
        out->pos[out->nch] = p;
        out->ch[out->nch++] = w;
    }
    return 0;
}

/* Sample sets [*i0, *i1) of the block that fall in [from, to). */
static void clip(const ctx_t *c, const store_block_t *b, int64_t *i0, int64_t *i1)
{
    int64_t dur = (int64_t)b->nsamples * 1000000000 / b->sample_rate;
    *i0 = 0;
    *i1 = b->nsamples;
    if (c->from > b->t0_ns) /* ceil((from − t0)·rate / 1e9); from − t0 < dur: no overflow */
        *i0 = ((c->from - b->t0_ns) * (int64_t)b->sample_rate + 999999999) / 1000000000;
    if (c->to < b->t0_ns + dur)
        *i1 = ((c->to - b->t0_ns) * (int64_t)b->sample_rate + 999999999) / 1000000000;
    if (*i0 > b->nsamples)
        *i0 = b->nsamples;
    if (*i1 > b->nsamples)
        *i1 = b->nsamples;
}

static int64_t set_time(const store_block_t *b, int64_t i)
{
    return b->t0_ns + i * 1000000000 / b->sample_rate;
}

/* ---- Segments and gaps ---- */

static void put_gap(ctx_t *c, int64_t from, int64_t to, const char *reason, int has_before,
                    uint64_t before, int has_after, uint64_t after)
{
    buf_t *g = &c->gaps;
    buf_puts(g, c->ngaps++ ? ",{" : "{");
    put_time(g, "from", from);
    buf_putc(g, ',');
    put_time(g, "to", to);
    buf_printf(g, ",\"reason\":\"%s\",\"seq_before\":", reason);
    if (has_before)
        buf_printf(g, "%" PRIu64, before);
    else
        buf_puts(g, "null");
    buf_puts(g, ",\"seq_after\":");
    if (has_after)
        buf_printf(g, "%" PRIu64, after);
    else
        buf_puts(g, "null");
    buf_putc(g, '}');
}

static void seg_free_data(seg_t *s)
{
    for (int j = 0; j < STORE_MAX_CHANNELS; j++) {
        free(s->ch[j].cnt);
        buf_free(&s->ch[j].rms);
        free(s->ch[j].mn);
        free(s->ch[j].mx);
        free(s->ch[j].ss);
        free(s->ch[j].cn);
    }
    free(s->bn);
    memset(s, 0, sizeof *s);
}

/* Writes the open segment into c->segs (and its rms_half into c->rms) and closes it. */
static void seg_close(ctx_t *c)
{
    seg_t *s = &c->seg;
    if (!s->open)
        return;
    buf_t *o = c->segs;
    double period = 1e9 / s->rate;
    buf_puts(o, c->nsegs++ ? ",{" : "{");
    put_time(o, "t0", s->t0_ns);
    buf_putc(o, ',');
    put_time(o, "end", s->next_ns);
    buf_printf(o,
               ",\"sample_rate\":%" PRIu32 ",\"period_ns\":%.9g,\"n\":%" PRId64
               ",\"seq_first\":%" PRIu64 ",\"seq_last\":%" PRIu64 ",\"time_quality\":%d",
               s->rate, period, s->n, s->seq_first, s->seq_last, s->tq_rank == 4 ? 0 : s->tq_rank);
    buf_puts(o, ",\"channels\":[");
    for (int j = 0; j < s->nch; j++) {
        const wch_t *w = &s->ch[j];
        buf_printf(o, "%s{\"name\":", j ? "," : "");
        buf_json_str(o, w->name, (size_t)-1);
        buf_printf(o, ",\"kind\":\"%s\",\"unit\":\"%s\",\"ratio\":%.9g,\"lsb\":%.7g}", w->kind,
                   w->unit, w->ratio, w->factor);
    }
    buf_putc(o, ']');
    if (!c->envelope) {
        buf_puts(o, ",\"samples\":{");
        for (int j = 0; j < s->nch; j++) {
            buf_printf(o, "%s", j ? "," : "");
            buf_json_str(o, s->ch[j].name, (size_t)-1);
            buf_puts(o, ":[");
            put_counts(o, &s->ch[j]);
            buf_putc(o, ']');
        }
        buf_putc(o, '}');
    } else {
        int64_t span = c->to - c->from;
        buf_puts(o, ",\"buckets\":{\"t_ns\":[");
        int first = 1;
        for (int k = 0; k < s->nb; k++) {
            if (!s->bn[k])
                continue;
            buf_printf(o, "%s%" PRId64, first ? "" : ",",
                       c->from + (int64_t)((__int128)(s->kfirst + k) * span / c->npoints));
            first = 0;
        }
        buf_puts(o, "],\"n\":[");
        first = 1;
        for (int k = 0; k < s->nb; k++) {
            if (!s->bn[k])
                continue;
            buf_printf(o, "%s%" PRIu32, first ? "" : ",", s->bn[k]);
            first = 0;
        }
        buf_putc(o, ']');
        for (int m = 0; m < 3; m++) {
            buf_puts(o, m == 2 ? ",\"rms\":{" : m ? ",\"max\":{" : ",\"min\":{");
            for (int j = 0; j < s->nch; j++) {
                const wch_t *w = &s->ch[j];
                const double *a = m ? w->mx : w->mn;
                buf_printf(o, "%s", j ? "," : "");
                buf_json_str(o, w->name, (size_t)-1);
                buf_puts(o, ":[");
                first = 1;
                for (int k = 0; k < s->nb; k++) {
                    if (!s->bn[k])
                        continue;
                    if (!first)
                        buf_putc(o, ',');
                    if (m < 2)
                        put_num(o, a[k], w->dec);
                    else /* RMS of the bucket's samples, DC included */
                        put_num(o, w->cn[k] ? sqrt(w->ss[k] / w->cn[k]) : NAN,
                                w->dec < DEC_MAX ? w->dec + 1 : DEC_MAX);
                    first = 0;
                }
                buf_putc(o, ']');
            }
            buf_putc(o, '}');
        }
        buf_putc(o, '}');
    }
    buf_putc(o, '}');

    if (c->want_rms && s->nrms > 0) {
        buf_t *r = &c->rms;
        int64_t step = (int64_t)s->half * 1000000000 / s->rate;
        buf_puts(r, c->nrms_segs++ ? ",{" : "{");
        put_time(r, "t0", s->t0_ns + step);
        buf_printf(r, ",\"step_ns\":%" PRId64 ",\"window_ns\":%" PRId64 ",\"n\":%d,\"values\":{",
                   step, 2 * step, s->nrms);
        int first = 1;
        for (int j = 0; j < s->nch; j++) {
            if (!s->ch[j].is_voltage)
                continue;
            buf_printf(r, "%s", first ? "" : ",");
            buf_json_str(r, s->ch[j].name, (size_t)-1);
            buf_puts(r, ":[");
            buf_append(r, s->ch[j].rms.data, s->ch[j].rms.len);
            buf_putc(r, ']');
            first = 0;
        }
        buf_puts(r, "}}");
    }

    c->last_next = s->next_ns;
    c->last_period = period;
    c->last_seq = s->seq_last;
    c->have_last = 1;
    seg_free_data(s);
}

/* Same channels, names, units and factors (a layout or side change starts a new segment). */
static int same_channels(const seg_t *s, const blkch_t *bc)
{
    if (s->nch != bc->nch)
        return 0;
    for (int j = 0; j < s->nch; j++)
        if (strcmp(s->ch[j].name, bc->ch[j].name) != 0 || s->ch[j].factor != bc->ch[j].factor ||
            strcmp(s->ch[j].unit, bc->ch[j].unit) != 0)
            return 0;
    return 1;
}

static void seg_open(ctx_t *c, const store_block_t *b, const blkch_t *bc, int64_t t_first)
{
    seg_t *s = &c->seg;
    memset(s, 0, sizeof *s);
    s->open = 1;
    s->t0_ns = t_first;
    s->rate = b->sample_rate;
    s->seq_first = b->seq;
    s->nch = bc->nch;
    for (int j = 0; j < bc->nch; j++)
        s->ch[j] = bc->ch[j]; /* buffers of bc are empty */
    if (c->want_rms && c->nominal_hz > 0) {
        /* one nominal cycle, an even number of samples so that it splits into two halves */
        s->half = (int)lround((double)b->sample_rate / (2.0 * c->nominal_hz));
        if (s->half < 1)
            s->half = 0;
    }
}

static void bucket_grow(seg_t *s, int need)
{
    if (need <= s->capb)
        return;
    int cap = s->capb ? s->capb * 2 : 64;
    while (cap < need)
        cap *= 2;
    s->bn = xrealloc(s->bn, (size_t)cap * sizeof *s->bn);
    memset(s->bn + s->capb, 0, (size_t)(cap - s->capb) * sizeof *s->bn);
    for (int j = 0; j < s->nch; j++) {
        s->ch[j].mn = xrealloc(s->ch[j].mn, (size_t)cap * sizeof(double));
        s->ch[j].mx = xrealloc(s->ch[j].mx, (size_t)cap * sizeof(double));
        s->ch[j].ss = xrealloc(s->ch[j].ss, (size_t)cap * sizeof(double));
        s->ch[j].cn = xrealloc(s->ch[j].cn, (size_t)cap * sizeof(uint32_t));
    }
    s->capb = cap;
}

static inline double sample_at(const uint8_t *d, int fmt, size_t k)
{
    if (fmt == 1) {
        const uint8_t *p = d + 2 * k;
        return (double)(int16_t)(uint16_t)(p[0] | (uint16_t)p[1] << 8);
    }
    const uint8_t *p = d + 4 * k;
    return (double)(int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
}

static int tq_rank(int q)
{
    return q == 0 ? 4 : q;
}

/* ---- Passes ---- */

static int on_block(void *ud, const store_block_t *b)
{
    ctx_t *c = ud;
    blkch_t bc;
    /* Times from the wire can be anything: outside 1970 − 230 y .. 2200 (the analysis' bound)
     * the sums below could overflow, and such a block has nothing to plot anyway. */
    if (b->t0_ns < -DSP_MAX_TIME_NS || b->t0_ns > DSP_MAX_TIME_NS)
        return 0;
    if (resolve(c, b, &bc) < 0 || bc.nch == 0)
        return 0;
    int64_t i0, i1;
    clip(c, b, &i0, &i1);
    if (i0 >= i1)
        return 0;

    c->sets += i1 - i0;
    if (bc.nch > c->nch_max)
        c->nch_max = bc.nch;
    for (int j = 0; j < bc.nch; j++)
        add_name(c->seen, &c->nseen, bc.ch[j].name);
    if (c->pass == 1)
        return c->sets > c->stop_after; /* more than a raw reply may hold: an envelope */

    seg_t *s = &c->seg;
    int64_t t_first = set_time(b, i0);
    double period = 1e9 / b->sample_rate;
    if (s->open) {
        double off = (double)(t_first - s->next_ns);
        int same = s->rate == b->sample_rate && same_channels(s, &bc);
        if (!same || fabs(off) > 1.5 * period) {
            int64_t from = s->next_ns;
            uint64_t before = s->seq_last;
            seg_close(c);
            if (off > 1.5 * period)
                put_gap(c, from, t_first, "missing", 1, before, 1, b->seq);
            else if (off < -1.5 * period)
                put_gap(c, from, t_first, "time_step", 1, before, 1, b->seq);
        }
    }
    if (!s->open) {
        if (!c->have_last && (double)(t_first - c->from) > 1.5 * period)
            put_gap(c, c->from, t_first, "missing", 0, 0, 1, b->seq);
        seg_open(c, b, &bc, t_first);
    }

    int fmt = b->sample_fmt;
    size_t nch_blk = (size_t)b->nchannels;
    int64_t n = i1 - i0;
    if (!c->envelope) {
        for (int j = 0; j < s->nch; j++) {
            wch_t *w = &s->ch[j];
            if (w->ncnt + (size_t)n > w->capcnt) {
                /* raw mode: pass 1 counted every set of the range */
                size_t cap = w->capcnt ? w->capcnt * 2 : (size_t)(c->sets > n ? c->sets : n);
                while (cap < w->ncnt + (size_t)n)
                    cap *= 2;
                w->cnt = xrealloc(w->cnt, cap * sizeof *w->cnt);
                w->capcnt = cap;
            }
            for (int64_t i = i0; i < i1; i++)
                w->cnt[w->ncnt++] =
                    (int32_t)sample_at(b->data, fmt, (size_t)i * nch_blk + (size_t)bc.pos[j]);
        }
    } else {
        if ((size_t)n > c->kidx_cap) {
            c->kidx_cap = (size_t)n;
            c->kidx = xrealloc(c->kidx, c->kidx_cap * sizeof *c->kidx);
        }
        /* Bucket by bucket rather than sample by sample: the first sample set of the next
         * bucket is ceil((its start − t0)·rate / 1e9), two divisions per bucket instead of two
         * per sample set. */
        int64_t span = c->to - c->from;
        for (int64_t i = i0; i < i1;) {
            int64_t k = (set_time(b, i) - c->from) * c->npoints / span;
            if (k < 0)
                k = 0;
            if (k >= c->npoints)
                k = c->npoints - 1;
            int64_t inext = i1;
            if (k + 1 < c->npoints) {
                int64_t tb = c->from + (k + 1) * span / c->npoints;
                inext = ((tb - b->t0_ns) * (int64_t)b->sample_rate + 999999999) / 1000000000;
                if (inext <= i)
                    inext = i + 1;
                if (inext > i1)
                    inext = i1;
            }
            if (s->nb == 0)
                s->kfirst = k;
            int64_t kk = k - s->kfirst;
            if (kk < s->nb - 1)
                kk = s->nb - 1; /* a block starting a little early (jitter): the last bucket */
            if (kk < 0)
                kk = 0;
            if (kk >= s->nb) {
                bucket_grow(s, (int)kk + 1);
                for (int64_t m = s->nb; m <= kk; m++)
                    for (int j = 0; j < s->nch; j++) {
                        s->ch[j].mn[m] = INFINITY;
                        s->ch[j].mx[m] = -INFINITY;
                        s->ch[j].ss[m] = 0;
                        s->ch[j].cn[m] = 0;
                    }
                s->nb = (int)kk + 1;
            }
            s->bn[kk] += (uint32_t)(inext - i);
            for (; i < inext; i++)
                c->kidx[i - i0] = (int32_t)kk;
        }
        for (int j = 0; j < s->nch; j++) {
            wch_t *w = &s->ch[j];
            for (int64_t i = i0; i < i1; i++) {
                double v =
                    sample_at(b->data, fmt, (size_t)i * nch_blk + (size_t)bc.pos[j]) * w->factor;
                int32_t kk = c->kidx[i - i0];
                if (v < w->mn[kk])
                    w->mn[kk] = v;
                if (v > w->mx[kk])
                    w->mx[kk] = v;
                w->ss[kk] += v * v;
                w->cn[kk]++;
            }
        }
    }
    if (s->half > 0) {
        /* RMS over one cycle every half cycle (IEC 61000-4-30 5.4.2): the sums of squares of
         * the last two half cycles. All channels advance together. */
        int hn0 = s->hn, halves0 = s->halves;
        for (int j = 0; j < s->nch; j++) {
            wch_t *w = &s->ch[j];
            if (!w->is_voltage)
                continue;
            int hn = hn0, halves = halves0;
            for (int64_t i = i0; i < i1; i++) {
                double v =
                    sample_at(b->data, fmt, (size_t)i * nch_blk + (size_t)bc.pos[j]) * w->factor;
                w->hs += v * v;
                if (++hn == s->half) {
                    if (halves > 0) {
                        if (w->rms.len)
                            buf_putc(&w->rms, ',');
                        put_num(&w->rms, sqrt((w->hprev + w->hs) / (2.0 * s->half)), w->dec);
                    }
                    w->hprev = w->hs;
                    w->hs = 0;
                    hn = 0;
                    halves++;
                }
            }
            s->hn = hn;
            s->halves = halves;
        }
        int any_v = 0;
        for (int j = 0; j < s->nch; j++)
            any_v |= s->ch[j].is_voltage;
        if (any_v)
            s->nrms = s->halves > 0 ? s->halves - 1 : 0;
    }
    s->n += n;
    s->next_ns = set_time(b, i1);
    s->seq_last = b->seq;
    if (tq_rank(b->time_quality) > s->tq_rank)
        s->tq_rank = tq_rank(b->time_quality);
    return 0;
}

/* Parses the channels= list into c->sel. */
static int parse_sel(ctx_t *c, const char *list, char *err, size_t errlen)
{
    c->nsel = 0;
    if (!list || !*list)
        return 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *q = e;
        while (q > p && q[-1] == ' ')
            q--;
        size_t len = (size_t)(q - p);
        if (len == 0 || len >= NAME_MAX_) {
            snprintf(err, errlen, "channels: names are 1..%d characters, comma separated",
                     NAME_MAX_ - 1);
            return GS_EINVAL;
        }
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '_') {
                snprintf(err, errlen, "channels: a name has letters, digits and '_' only");
                return GS_EINVAL;
            }
        if (c->nsel == SEL_MAX) {
            snprintf(err, errlen, "channels: at most %d names", SEL_MAX);
            return GS_EINVAL;
        }
        memcpy(c->sel[c->nsel], p, len);
        c->sel[c->nsel][len] = '\0';
        c->nsel++;
        if (!*e)
            return 0;
        p = e + 1;
    }
}

static void ctx_free(ctx_t *c)
{
    seg_free_data(&c->seg);
    buf_free(&c->gaps);
    buf_free(&c->rms);
    free(c->kidx);
}

static int finish(ctx_t *c, buf_t *out, char *err, size_t errlen);

/* Both passes over [c->from, c->to) and the reply up to (not including) its closing brace. */
static int stop_at_first(void *ud, const store_block_t *b)
{
    (void)ud;
    (void)b;
    return 1;
}

static int stop_at_overlap(void *ud, const store_pyr_row_t *r)
{
    const ctx_t *c = ud;
    return r->t_first_ns < c->to && r->t_end_ns > c->from;
}

/* 1 when no block of the range is stored but the pyramid holds samples in it (retention removed
 * the blocks, raw_days, and kept their summaries), 0 otherwise, or a GS_E* code. */
static int blocks_gone(store_t *st, ctx_t *c)
{
    int rc = store_blocks_read(st, c->tid, c->from, c->to, STORE_BLOCKS_WAVEFORM, stop_at_first, c);
    if (rc != 0)
        return rc < 0 ? rc : 0; /* a block: the blocks' reply */
    for (int l = 0; l < STORE_PYR_LEVELS; l++) {
        rc = store_pyramid_read(st, c->tid, l, c->from, c->to, stop_at_overlap, c);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Returns 0 with the reply in out, 1 when the range must come from the pyramid instead (no
 * block left in it, its summary kept: blocks_gone), or a GS_E* code. */
static int run(store_t *st, ctx_t *c, int max_points, buf_t *out, char *err, size_t errlen)
{
    /* Pass 1 decides raw or envelope: it counts sample sets and stops as soon as there are
     * more than max_points (then an envelope it is, and the blocks are read once more only). */
    c->pass = 1;
    c->stop_after = max_points;
    int rc = store_blocks_read(st, c->tid, c->from, c->to, STORE_BLOCKS_WAVEFORM, on_block, c);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the stored blocks: %s", err_str(rc));
        return rc;
    }
    if (c->sets == 0 && (rc = blocks_gone(st, c)) != 0) {
        if (rc < 0)
            snprintf(err, errlen, "cannot read the stored blocks: %s", err_str(rc));
        return rc;
    }
    /* At most WAVE_MAX_VALUES numbers: a raw value per channel per set, or a min and a max per
     * channel per bucket (channels: the most in one block counted). */
    int nch = c->nch_max > 0 ? c->nch_max : 1;
    c->npoints = max_points;
    if ((int64_t)c->npoints * nch > WAVE_MAX_VALUES)
        c->npoints = WAVE_MAX_VALUES / nch;
    c->envelope = c->sets > c->npoints;
    if (c->envelope && (int64_t)c->npoints * 2 * nch > WAVE_MAX_VALUES)
        c->npoints = WAVE_MAX_VALUES / (2 * nch);
    int nch_est = c->nch_max > 0 ? c->nch_max : 1;
    size_t est = c->envelope ? (size_t)c->npoints * 20 * (size_t)nch_est
                             : (size_t)c->sets * 10 * (size_t)nch_est;
    c->sets = 0;
    c->nch_max = 0;
    c->nseen = c->nall = 0;

    /* The fields known now, then the segments as they close; sample_sets and channels
     * (counted on the way) at the end. */
    buf_reset(out);
    buf_reserve(out, 4096 + est);
    buf_puts(out, "{\"terminal_id\":");
    buf_json_str(out, c->tid, (size_t)-1);
    buf_putc(out, ',');
    put_time(out, "from", c->from);
    buf_putc(out, ',');
    put_time(out, "to", c->to);
    buf_printf(out,
               ",\"side\":\"%s\",\"vt_ratio\":%.9g,\"ct_ratio\":%.9g,\"mode\":\"%s\","
               "\"max_points\":%d,\"source\":\"blocks\",\"segments\":[",
               c->side == WAVE_SIDE_SECONDARY ? "secondary" : "primary", c->vt, c->ct,
               c->envelope ? "envelope" : "raw", c->npoints);

    c->pass = 2;
    c->segs = out;
    memset(c->sel_hit, 0, sizeof c->sel_hit);
    rc = store_blocks_read(st, c->tid, c->from, c->to, STORE_BLOCKS_WAVEFORM, on_block, c);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the stored blocks: %s", err_str(rc));
        return rc;
    }
    return finish(c, out, err, errlen);
}

/* After the last block or pyramid row: the unknown-channel check, the open segment, the
 * trailing gap, and the reply's fields up to (not including) its closing brace. */
static int finish(ctx_t *c, buf_t *out, char *err, size_t errlen)
{
    if (c->nall > 0)
        for (int i = 0; i < c->nsel; i++)
            if (!c->sel_hit[i]) {
                char have[SEEN_MAX * NAME_MAX_ + 1] = "";
                size_t len = 0;
                for (int k = 0; k < c->nall && len + NAME_MAX_ + 1 < sizeof have; k++)
                    len += (size_t)snprintf(have + len, sizeof have - len, "%s%s", k ? "," : "",
                                            c->all[k]);
                snprintf(err, errlen, "channels: no channel '%s' in this range (it has %s)",
                         c->sel[i], have);
                return GS_EINVAL;
            }
    seg_close(c);
    if (!c->have_last)
        put_gap(c, c->from, c->to, "missing", 0, 0, 0, 0);
    else if ((double)(c->to - c->last_next) > 1.5 * c->last_period)
        put_gap(c, c->last_next, c->to, "missing", 1, c->last_seq, 0, 0);
    buf_puts(out, "],\"gaps\":[");
    if (c->gaps.len)
        buf_append(out, c->gaps.data, c->gaps.len);
    buf_printf(out, "],\"sample_sets\":%" PRId64 ",\"channels\":[", c->sets);
    for (int k = 0; k < c->nseen; k++) {
        if (k)
            buf_putc(out, ',');
        buf_json_str(out, c->seen[k], (size_t)-1);
    }
    buf_putc(out, ']');
    return 0;
}

/* Checks what wave_query and wave_event share and fills the terminal's values into c. */
static int prepare(store_t *st, ctx_t *c, const char *tid, int64_t from, int64_t to,
                   int *max_points, int side, char *err, size_t errlen)
{
    if (from >= to) {
        snprintf(err, errlen, "from must be before to");
        return GS_EINVAL;
    }
    if ((uint64_t)to - (uint64_t)from > (uint64_t)WAVE_MAX_SPAN_NS) {
        snprintf(err, errlen, "range longer than %lld days",
                 WAVE_MAX_SPAN_NS / (86400LL * 1000000000LL));
        return GS_EINVAL;
    }
    if (*max_points == 0)
        *max_points = WAVE_DEFAULT_POINTS;
    if (*max_points < 1 || *max_points > WAVE_MAX_POINTS) {
        snprintf(err, errlen, "max_points must be 1..%d", WAVE_MAX_POINTS);
        return GS_EINVAL;
    }
    if (side != WAVE_SIDE_PRIMARY && side != WAVE_SIDE_SECONDARY) {
        snprintf(err, errlen, "side must be primary or secondary");
        return GS_EINVAL;
    }
    store_terminal_t t;
    int rc = store_terminal_info(st, tid, &t);
    if (rc == GS_ENOTFOUND) {
        snprintf(err, errlen, "no terminal '%s'", tid);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the terminal: %s", err_str(rc));
        return rc;
    }
    c->tid = tid;
    c->from = from;
    c->to = to;
    c->side = side;
    c->vt = t.vt_ratio > 0 ? t.vt_ratio : 1;
    c->ct = t.ct_ratio > 0 ? t.ct_ratio : 1;
    c->nominal_hz = t.nominal_hz;
    return 0;
}

/* ---- Long ranges: the summary pyramid ---- */

/* One pyramid row: a bucket of the stored samples, folded into the reply bucket holding its first
 * sample (in the range). Rows are contiguous when one starts within 1.5 sample periods of where
 * the previous one ended; otherwise a "missing" gap separates them, as between blocks. */
static int on_pyr_row(void *ud, const store_pyr_row_t *r)
{
    ctx_t *c = ud;
    int64_t t_first = r->t_first_ns > c->from ? r->t_first_ns : c->from;
    int64_t t_end = r->t_end_ns < c->to ? r->t_end_ns : c->to;
    if (t_end <= t_first || r->t_first_ns < -DSP_MAX_TIME_NS || r->t_end_ns > DSP_MAX_TIME_NS)
        return 0; /* every sample of the bucket lies outside the range */
    int nch = __builtin_popcount(r->channel_mask);
    int idx[STORE_MAX_CHANNELS], m = 0;
    for (int i = 0; i < STORE_MAX_CHANNELS; i++)
        if (r->channel_mask & (1u << i))
            idx[m++] = i;
    /* resolve() names channels from a block's mask and layout: a block of one sample set */
    store_block_t b;
    memset(&b, 0, sizeof b);
    b.seq = r->seq_first;
    b.t0_ns = t_first;
    b.sample_rate = r->sample_rate;
    b.channel_mask = r->channel_mask;
    b.nchannels = nch;
    b.sample_fmt = 1;
    b.nsamples = 1;
    b.data_len = (size_t)nch * 2;
    b.time_quality = r->time_quality;
    b.nlayout = r->nlayout;
    b.layout = r->layout;
    if (!c->pc_valid || c->pc_mask != r->channel_mask || c->pc_nlayout != r->nlayout ||
        (r->nlayout > 0 &&
         memcmp(c->pc_layout, r->layout, (size_t)r->nlayout * sizeof r->layout[0]) != 0)) {
        c->pc_rc = resolve(c, &b, &c->pc_bc);
        c->pc_valid = 1;
        c->pc_mask = r->channel_mask;
        c->pc_nlayout = r->nlayout;
        if (r->nlayout > 0)
            memcpy(c->pc_layout, r->layout, (size_t)r->nlayout * sizeof r->layout[0]);
    }
    const blkch_t *bcp = &c->pc_bc;
    if (c->pc_rc < 0 || bcp->nch == 0)
        return 0;
    c->sets += r->n;
    if (bcp->nch > c->nch_max)
        c->nch_max = bcp->nch;
    for (int j = 0; j < bcp->nch; j++)
        add_name(c->seen, &c->nseen, bcp->ch[j].name);

    seg_t *s = &c->seg;
    double period = 1e9 / r->sample_rate;
    if (s->open) {
        double off = (double)(t_first - s->next_ns);
        int same = s->rate == r->sample_rate && same_channels(s, bcp);
        if (!same || off > 1.5 * period) {
            int64_t from = s->next_ns;
            uint64_t before = s->seq_last;
            seg_close(c);
            if (off > 1.5 * period)
                put_gap(c, from, t_first, "missing", 1, before, 1, r->seq_first);
        }
    }
    if (!s->open) {
        if (!c->have_last && (double)(t_first - c->from) > 1.5 * period)
            put_gap(c, c->from, t_first, "missing", 0, 0, 1, r->seq_first);
        seg_open(c, &b, bcp, t_first);
    }
    int64_t span = c->to - c->from;
    int64_t k = (int64_t)((__int128)(t_first - c->from) * c->npoints / span);
    if (k >= c->npoints)
        k = c->npoints - 1;
    if (s->nb == 0)
        s->kfirst = k;
    int64_t kk = k - s->kfirst;
    if (kk < s->nb - 1)
        kk = s->nb - 1;
    if (kk < 0)
        kk = 0;
    if (kk >= s->nb) {
        bucket_grow(s, (int)kk + 1);
        for (int64_t q = s->nb; q <= kk; q++)
            for (int j = 0; j < s->nch; j++) {
                s->ch[j].mn[q] = INFINITY;
                s->ch[j].mx[q] = -INFINITY;
                s->ch[j].ss[q] = 0;
                s->ch[j].cn[q] = 0;
            }
        s->nb = (int)kk + 1;
    }
    s->bn[kk] += r->n;
    for (int j = 0; j < s->nch; j++) {
        wch_t *w = &s->ch[j];
        const store_pyr_stat_t *st = &r->ch[idx[bcp->pos[j]]];
        if (st->n == 0)
            continue;
        /* factor > 0 (a scale and a ratio are positive): min stays min */
        double lo = st->min * w->factor, hi = st->max * w->factor;
        if (lo < w->mn[kk])
            w->mn[kk] = lo;
        if (hi > w->mx[kk])
            w->mx[kk] = hi;
        w->ss[kk] += st->sumsq * w->factor * w->factor;
        w->cn[kk] += st->n;
    }
    s->n += r->n;
    s->next_ns = t_end;
    s->seq_last = r->seq_last;
    if (tq_rank(r->time_quality) > s->tq_rank)
        s->tq_rank = tq_rank(r->time_quality);
    return 0;
}

/* The envelope of a long range from the pyramid (wave.h: which level, how many buckets). */
static int run_pyramid(store_t *st, ctx_t *c, int max_points, buf_t *out, char *err, size_t errlen)
{
    int64_t span = c->to - c->from;
    int64_t n = max_points < WAVE_PYR_MAX_POINTS ? max_points : WAVE_PYR_MAX_POINTS;
    int level = 0;
    for (int l = STORE_PYR_LEVELS - 1; l >= 0; l--)
        if (store_pyramid_width_ns(l) <= span / n) {
            level = l;
            break;
        }
    /* A level whose old rows retention removed (pyramid_fine_days) while a coarser one still
     * has them: the coarser level for the whole reply, where the range reaches into what the
     * finer one lost, rather than a "missing" gap over data that is stored. */
    int64_t first[STORE_PYR_LEVELS];
    int frc = store_pyramid_first(st, c->tid, first);
    if (frc < 0) {
        snprintf(err, errlen, "cannot read the waveform summary: %s", err_str(frc));
        return frc;
    }
    while (level < STORE_PYR_LEVELS - 1) {
        int64_t coarser = INT64_MAX;
        for (int l = level + 1; l < STORE_PYR_LEVELS; l++)
            if (first[l] < coarser)
                coarser = first[l];
        if (first[level] > c->from && coarser < first[level] && coarser < c->to)
            level++; /* the coarser levels hold samples in the range before this one's first */
        else
            break;
    }
    int64_t width = store_pyramid_width_ns(level);
    if (span / n < width) /* finer than the finest level: one bucket per level bucket */
        n = span / width > 0 ? span / width : 1;
    c->npoints = (int)n;
    c->envelope = 1;
    buf_reset(out);
    buf_reserve(out, 4096 + (size_t)n * 60);
    buf_puts(out, "{\"terminal_id\":");
    buf_json_str(out, c->tid, (size_t)-1);
    buf_putc(out, ',');
    put_time(out, "from", c->from);
    buf_putc(out, ',');
    put_time(out, "to", c->to);
    buf_printf(out,
               ",\"side\":\"%s\",\"vt_ratio\":%.9g,\"ct_ratio\":%.9g,\"mode\":\"envelope\","
               "\"max_points\":%d,\"source\":\"pyramid\",\"level_ns\":%" PRId64 ",\"segments\":[",
               c->side == WAVE_SIDE_SECONDARY ? "secondary" : "primary", c->vt, c->ct, c->npoints,
               width);
    c->pass = 2;
    c->segs = out;
    int rc = store_pyramid_read(st, c->tid, level, c->from, c->to, on_pyr_row, c);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the waveform summary: %s", err_str(rc));
        return rc;
    }
    return finish(c, out, err, errlen);
}

/* Blocks for short ranges (raw samples, or an envelope as fine as asked), the pyramid beyond. */
static int use_pyramid(int64_t span, int max_points)
{
    if (span <= WAVE_BLOCKS_RANGE_NS)
        return 0;
    int n = max_points > 0 ? max_points : WAVE_DEFAULT_POINTS;
    if (span / n < store_pyramid_width_ns(0) && span <= WAVE_MAX_RANGE_NS)
        return 0; /* buckets finer than the pyramid's: the blocks, while they stay affordable */
    return 1;
}

int wave_side_parse(const char *name)
{
    if (name && strcmp(name, "primary") == 0)
        return WAVE_SIDE_PRIMARY;
    if (name && strcmp(name, "secondary") == 0)
        return WAVE_SIDE_SECONDARY;
    return GS_EINVAL;
}

int wave_query(store_t *st, const wave_req_t *q, buf_t *out, char *err, size_t errlen)
{
    ctx_t *c = xcalloc(1, sizeof *c);
    int max_points = q->max_points;
    int rc;
    if (!q->terminal_id || !*q->terminal_id) {
        snprintf(err, errlen, "no terminal id");
        rc = GS_EINVAL;
        goto fail;
    }
    rc = parse_sel(c, q->channels, err, errlen);
    if (rc < 0)
        goto fail;
    rc = prepare(st, c, q->terminal_id, q->from_ns, q->to_ns, &max_points, q->side, err, errlen);
    if (rc < 0)
        goto fail;
    if (use_pyramid(c->to - c->from, max_points))
        rc = run_pyramid(st, c, max_points, out, err, errlen);
    else if ((rc = run(st, c, max_points, out, err, errlen)) == 1)
        rc = run_pyramid(st, c, max_points, out, err, errlen); /* the blocks are gone */
    if (rc < 0)
        goto fail;
    buf_putc(out, '}');
fail:
    ctx_free(c);
    free(c);
    return rc;
}

/* Appends the event's channel names as a JSON array: the stored names, or "chN" from the mask
 * for an event stored before names were kept (as docs/api.md says for the events API). */
static void put_event_channels(buf_t *b, const store_pq_event_t *e)
{
    buf_puts(b, "\"channels\":[");
    int n = 0;
    if (e->has_names) {
        const char *p = e->channel_names;
        while (*p) {
            const char *q = strchr(p, ',');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            if (len) {
                if (n++)
                    buf_putc(b, ',');
                buf_json_str(b, p, len);
            }
            if (!q)
                break;
            p = q + 1;
        }
        buf_puts(b, "],\"worst_channel\":");
        buf_json_str(b, e->worst_channel_name, (size_t)-1);
    } else {
        for (int i = 0; i < 32; i++)
            if (e->channels & (1u << i))
                buf_printf(b, "%s\"ch%d\"", n++ ? "," : "", i);
        buf_printf(b, "],\"worst_channel\":\"ch%d\"", e->worst_channel);
    }
}

int wave_event(store_t *st, int64_t event_id, int64_t pre_ns, int64_t post_ns, int max_points,
               int side, buf_t *out, char *err, size_t errlen)
{
    ctx_t *c = xcalloc(1, sizeof *c);
    store_pq_event_t e;
    int rc = store_pq_event_get(st, event_id, &e);
    if (rc == GS_ENOTFOUND) {
        snprintf(err, errlen, "no event %" PRId64, event_id);
        goto fail;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the event: %s", err_str(rc));
        goto fail;
    }
    if (pre_ns < 0)
        pre_ns = WAVE_EVENT_PRE_NS;
    if (post_ns < 0)
        post_ns = WAVE_EVENT_POST_NS;
    if (pre_ns > WAVE_MAX_RANGE_NS || post_ns > WAVE_MAX_RANGE_NS) {
        snprintf(err, errlen, "pre and post are at most %lld s", WAVE_MAX_RANGE_NS / 1000000000LL);
        rc = GS_EINVAL;
        goto fail;
    }
    if (e.start_ns < -DSP_MAX_TIME_NS || e.start_ns > DSP_MAX_TIME_NS) {
        snprintf(err, errlen, "event %" PRId64 " has a start time out of range", event_id);
        rc = GS_EINVAL;
        goto fail;
    }
    /* bounded so that every sum below stays far inside int64 (1e18 ns: 31 years) */
    int64_t dur = e.duration_ns < 0                       ? 0
                  : e.duration_ns > 1000000000000000000LL ? 1000000000000000000LL
                                                          : e.duration_ns;
    int64_t from = e.start_ns - pre_ns, to = e.start_ns + dur + post_ns;
    int truncated = 0;
    if (to - from > WAVE_MAX_RANGE_NS) {
        to = from + WAVE_MAX_RANGE_NS;
        truncated = 1;
    }
    c->want_rms = 1;
    rc = prepare(st, c, e.terminal_id, from, to, &max_points, side, err, errlen);
    if (rc == GS_ENOTFOUND)
        snprintf(err, errlen, "the terminal '%s' of event %" PRId64 " no longer exists",
                 e.terminal_id, event_id);
    if (rc < 0)
        goto fail;
    rc = run(st, c, max_points, out, err, errlen);
    if (rc < 0)
        goto fail;

    buf_printf(out, ",\"pre_ns\":%" PRId64 ",\"post_ns\":%" PRId64 ",\"truncated\":%s", pre_ns,
               post_ns, truncated ? "true" : "false");
    buf_printf(out, ",\"event\":{\"id\":%" PRId64 ",\"terminal_id\":", e.id);
    buf_json_str(out, e.terminal_id, (size_t)-1);
    buf_puts(out, ",\"kind\":");
    buf_json_str(out, e.kind, (size_t)-1);
    buf_putc(out, ',');
    put_time(out, "start", e.start_ns);
    buf_putc(out, ',');
    put_time(out, "end", e.start_ns + dur);
    buf_printf(out, ",\"duration_ns\":%" PRId64 ",\"extreme\":", e.duration_ns);
    put_num(out, e.extreme, 6);
    buf_puts(out, ",\"extreme_pct\":");
    put_num(out, e.extreme_pct, 4);
    buf_puts(out, ",\"reference\":");
    put_num(out, e.reference, 6);
    buf_putc(out, ',');
    put_event_channels(out, &e);
    buf_putc(out, '}');

    buf_printf(out, ",\"rms_half\":{\"nominal_hz\":%d", c->nominal_hz);
    buf_puts(out, ",\"segments\":[");
    if (c->rms.len)
        buf_append(out, c->rms.data, c->rms.len);
    buf_puts(out, "]}}");
    rc = 0;
fail:
    ctx_free(c);
    free(c);
    return rc;
}
