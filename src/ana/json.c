/* JSON forms of analysis results. */
#include "ana/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEG (180.0 / M_PI)

void ana_json_names(json_names_t *n, const dsp_config_t *cfg)
{
    static const char ph[] = {0, 'a', 'b', 'c', 'n'};
    memset(n, 0, sizeof *n);
    n->nch = cfg->nchannels;
    for (int i = 0; i < cfg->nchannels; i++) {
        const dsp_channel_t *c = &cfg->ch[i];
        char k = c->kind == DSP_KIND_VOLTAGE ? 'U' : c->kind == DSP_KIND_CURRENT ? 'I' : 0;
        n->kind[i] = c->kind == DSP_KIND_VOLTAGE   ? "voltage"
                     : c->kind == DSP_KIND_CURRENT ? "current"
                                                   : "other";
        if (k && c->phase >= DSP_PHASE_A && c->phase <= DSP_PHASE_N)
            snprintf(n->name[i], sizeof n->name[i], "%c%c", k, ph[c->phase]);
        else
            snprintf(n->name[i], sizeof n->name[i], "ch%d", i);
        /* Names identify channels (keys of a synchrophasor report's "phasors" object, an
         * event's channels): a second channel of the same kind and phase (a bus and a line VT
         * on one phase) is "chN" instead, never a repeated key that a JSON reader collapses. */
        for (int j = 0; j < i; j++)
            if (strcmp(n->name[j], n->name[i]) == 0) {
                snprintf(n->name[i], sizeof n->name[i], "ch%d", i);
                break;
            }
    }
}

void ana_json_number(buf_t *b, const char *fmt, double v)
{
    if (isfinite(v))
        buf_printf(b, fmt, v);
    else
        buf_puts(b, "null");
}

static void num(buf_t *b, const char *key, double v)
{
    if (key)
        buf_printf(b, "\"%s\":", key);
    ana_json_number(b, "%.7g", v);
}

/* `,"key":value`: a further member after the first one of an object. */
static void field(buf_t *b, const char *key, double v)
{
    buf_putc(b, ',');
    num(b, key, v);
}

static void ts(buf_t *b, const char *key, int64_t ns)
{
    char t[40];
    time_fmt_utc(ns, t, sizeof t);
    buf_printf(b, "\"%s\":\"%s\",\"%s_ns\":%lld", key, t, key, (long long)ns);
}

void ana_json_flag_names(buf_t *b, const char *const *names, int n, uint32_t flags)
{
    buf_puts(b, "\"flags\":[");
    int first = 1;
    for (int i = 0; i < n; i++)
        if (flags & (1u << i)) {
            buf_printf(b, "%s\"%s\"", first ? "" : ",", names[i]);
            first = 0;
        }
    buf_puts(b, "]");
}

void ana_json_flags(buf_t *b, uint32_t flags)
{
    static const char *const names[] = {"event",       "freq_held",  "no_rocof",
                                        "time_unsync", "incomplete", "resync"};
    ana_json_flag_names(b, names, 6, flags);
}

static void harmonics(buf_t *b, const char *key, const double *v, int hmax)
{
    buf_printf(b, "\"%s\":[", key);
    for (int h = 0; h <= hmax; h++) {
        if (h)
            buf_putc(b, ',');
        num(b, NULL, v[h]);
    }
    buf_putc(b, ']');
}

static void seq(buf_t *b, const char *key, const double *mag, const double *ang, double r0,
                double r2)
{
    buf_printf(b, "\"%s\":{\"zero\":", key);
    num(b, NULL, mag[0]);
    field(b, "positive", mag[1]);
    field(b, "negative", mag[2]);
    field(b, "positive_deg", ang[1] * DEG);
    field(b, "unbalance_zero_pct", r0 * 100);
    field(b, "unbalance_neg_pct", r2 * 100);
    buf_putc(b, '}');
}

void ana_json_window(buf_t *b, const dsp_window_t *w, const json_names_t *n)
{
    buf_putc(b, '{');
    ts(b, "t_start", w->t_start_ns);
    buf_putc(b, ',');
    ts(b, "t_end", w->t_end_ns);
    buf_putc(b, ',');
    ts(b, "t_ref", w->t_ref_ns);
    buf_printf(b, ",\"window\":%llu,", (unsigned long long)w->index);
    num(b, "freq", w->freq);
    field(b, "rocof", w->rocof);
    buf_putc(b, ',');
    ana_json_flags(b, w->flags);
    buf_puts(b, ",\"channels\":[");
    for (int c = 0; c < w->nch; c++) {
        const dsp_chan_result_t *r = &w->ch[c];
        buf_printf(b, "%s{\"name\":\"%s\",\"kind\":\"%s\",", c ? "," : "", n->name[c],
                   n->kind[c] ? n->kind[c] : "other");
        num(b, "rms", r->rms);
        field(b, "dc", r->dc);
        field(b, "dc_removed", r->dc_removed);
        buf_puts(b, ",\"fundamental\":{");
        num(b, "mag", r->fund_mag);
        field(b, "deg", r->fund_ang * DEG);
        buf_puts(b, "},\"phasor\":{");
        num(b, "mag", r->ph_mag);
        field(b, "deg", r->ph_ang * DEG);
        buf_puts(b, "},");
        num(b, "thd_pct", r->thd * 100);
        field(b, "thds_pct", r->thds * 100);
        field(b, "urms_half_min", r->urms_half_min);
        field(b, "urms_half_max", r->urms_half_max);
        buf_putc(b, ',');
        harmonics(b, "harmonic_groups", r->hg, r->hmax);
        buf_puts(b, ",\"harmonic_angles_deg\":[");
        for (int h = 0; h <= r->hmax; h++) {
            if (h)
                buf_putc(b, ',');
            num(b, NULL, r->hang[h] * DEG); /* NaN (no angle) -> null */
        }
        buf_puts(b, "],");
        harmonics(b, "interharmonic_groups", r->ihg, r->hmax);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    if (w->has_v3) {
        buf_putc(b, ',');
        seq(b, "voltage_sequence", w->v_seq_mag, w->v_seq_ang, w->u0, w->u2);
        buf_puts(b, ",\"line_to_line_rms\":[");
        for (int p = 0; p < 3; p++) {
            if (p)
                buf_putc(b, ',');
            num(b, NULL, w->vll_rms[p]);
        }
        buf_putc(b, ']');
    }
    if (w->has_i3) {
        buf_putc(b, ',');
        seq(b, "current_sequence", w->i_seq_mag, w->i_seq_ang, w->i0, w->i2);
    }
    if (w->power_mask) {
        buf_puts(b, ",\"power\":{\"phases\":[");
        int first = 1;
        for (int p = 0; p < 3; p++) {
            if (!(w->power_mask & (1u << p)))
                continue;
            buf_printf(b, "%s{\"phase\":\"%c\",", first ? "" : ",", 'a' + p);
            first = 0;
            num(b, "p", w->pw[p].p);
            field(b, "q", w->pw[p].q);
            field(b, "s", w->pw[p].s);
            field(b, "pf", w->pw[p].pf);
            buf_putc(b, '}');
        }
        buf_putc(b, ']');
        if (w->power_mask == 7) {
            field(b, "p", w->p_tot);
            field(b, "q", w->q_tot);
            field(b, "s_eff", w->s_eff);
            field(b, "pf", w->pf_tot);
        }
        buf_putc(b, '}');
    }
    buf_putc(b, '}');
}

void ana_json_agg(buf_t *b, const dsp_agg_t *g, const json_names_t *n, int with_harmonics)
{
    buf_printf(b, "{\"interval\":\"%s\",", dsp_agg_name(g->kind));
    ts(b, "t_start", g->t_start_ns);
    buf_putc(b, ',');
    ts(b, "t_end", g->t_end_ns);
    buf_printf(b, ",\"count\":%u,\"expected\":%u,", g->count, g->expected);
    ana_json_flags(b, g->flags);
    buf_puts(b, ",\"freq\":{");
    num(b, "mean", g->freq_mean);
    field(b, "min", g->freq_min);
    field(b, "max", g->freq_max);
    buf_puts(b, "},");
    num(b, "u0_pct", g->u0 * 100);
    field(b, "u2_pct", g->u2 * 100);
    field(b, "i0_pct", g->i0 * 100);
    field(b, "i2_pct", g->i2 * 100);
    field(b, "p", g->p_tot);
    field(b, "q", g->q_tot);
    field(b, "s_eff", g->s_eff);
    buf_puts(b, ",\"channels\":[");
    for (int c = 0; c < g->nch; c++) {
        const dsp_agg_chan_t *r = &g->ch[c];
        buf_printf(b, "%s{\"name\":\"%s\",", c ? "," : "", n->name[c]);
        num(b, "rms", r->rms);
        field(b, "rms_min", r->rms_min);
        field(b, "rms_max", r->rms_max);
        field(b, "fundamental", r->fund_mag);
        field(b, "thd_pct", r->thd * 100);
        if (with_harmonics) {
            buf_putc(b, ',');
            harmonics(b, "harmonic_groups", r->hg, g->hmax);
        }
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
}

void ana_json_freq10(buf_t *b, const dsp_freq10_t *f)
{
    buf_puts(b, "{\"interval\":\"10s\",");
    ts(b, "t_start", f->t_start_ns);
    buf_putc(b, ',');
    ts(b, "t_end", f->t_end_ns);
    field(b, "freq", f->freq);
    buf_printf(b, ",\"cycles\":%u,", f->cycles);
    ana_json_flags(b, f->flags);
    buf_putc(b, '}');
}

void ana_json_event(buf_t *b, const dsp_event_t *e, const json_names_t *n)
{
    int swell = e->kind == DSP_EV_SWELL;
    buf_printf(b, "{\"kind\":\"%s\",", dsp_event_name(e->kind));
    ts(b, "start", e->start_ns);
    field(b, "duration_s", (double)e->duration_ns / 1e9);
    buf_putc(b, ',');
    num(b, swell ? "maximum" : "residual", e->extreme);
    buf_putc(b, ',');
    num(b, swell ? "maximum_pct" : "residual_pct", e->extreme_pct);
    field(b, "reference", e->reference);
    buf_printf(b, ",\"reference_kind\":\"%s\",",
               (e->flags & DSP_EVF_SLIDING) ? "sliding" : "declared");
    ana_json_event_channels(b, e->channels, e->worst_channel, n);
    buf_printf(b, ",\"cut_short\":%s}", (e->flags & DSP_EVF_GAP) ? "true" : "false");
}

void ana_json_event_channels(buf_t *b, uint32_t mask, int worst, const json_names_t *n)
{
    buf_puts(b, "\"channels\":[");
    int first = 1;
    for (int c = 0; c < n->nch; c++)
        if (mask & (1u << c)) {
            buf_printf(b, "%s\"%s\"", first ? "" : ",", n->name[c]);
            first = 0;
        }
    buf_printf(b, "],\"worst_channel\":\"%s\"", worst >= 0 && worst < n->nch ? n->name[worst] : "");
}
