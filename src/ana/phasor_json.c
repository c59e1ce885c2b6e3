/* JSON forms of reporting-rate synchrophasors (see phasor_json.h). */
#include "ana/phasor_json.h"

#include <math.h>
#include <stdio.h>

#define DEG (180.0 / M_PI)

void ana_json_pmu_flags(buf_t *b, uint32_t flags)
{
    static const char *const names[] = {"time_unsync", "restart", "freq_held"};
    ana_json_flag_names(b, names, 3, flags);
}

static void phasor_obj(buf_t *b, const dsp_pmu_phasor_t *p, int with_freq)
{
    buf_puts(b, "{\"mag\":");
    ana_json_number(b, "%.7g", p->mag);
    buf_puts(b, ",\"deg\":");
    ana_json_number(b, "%.4f", p->ang * DEG);
    if (with_freq) {
        buf_puts(b, ",\"freq\":");
        ana_json_number(b, "%.6f", p->freq);
        buf_puts(b, ",\"rocof\":");
        ana_json_number(b, "%.4f", p->rocof);
    }
    buf_puts(b, "}");
}

void ana_json_pmu_report(buf_t *b, const dsp_pmu_report_t *r, const json_names_t *n)
{
    char t[40];
    time_fmt_utc(r->t_ns, t, sizeof t);
    buf_printf(b, "{\"t\":\"%s\",\"t_ns\":%lld,\"index\":%d,\"rate\":%d,\"freq\":", t,
               (long long)r->t_ns, r->index, r->rate);
    ana_json_number(b, "%.6f", r->freq);
    buf_puts(b, ",\"rocof\":");
    ana_json_number(b, "%.4f", r->rocof);
    buf_puts(b, ",");
    ana_json_pmu_flags(b, r->flags);
    if (r->has_v1) {
        buf_puts(b, ",\"v1\":");
        phasor_obj(b, &r->v1, 0);
    }
    if (r->has_i1) {
        buf_puts(b, ",\"i1\":");
        phasor_obj(b, &r->i1, 0);
    }
    buf_puts(b, ",\"phasors\":{");
    for (int i = 0; i < r->nph; i++) {
        int ch = r->ph[i].ch;
        buf_printf(b, "%s\"%s\":", i ? "," : "", ch >= 0 && ch < n->nch ? n->name[ch] : "?");
        phasor_obj(b, &r->ph[i], 1);
    }
    buf_puts(b, "}}");
}

void ana_json_pmu_columns(buf_t *b, const dsp_pmu_report_t *r, const json_names_t *n)
{
    buf_puts(b, "[\"index\",\"flags\",\"freq\",\"rocof\"");
    if (r->has_v1)
        buf_puts(b, ",\"V1.mag\",\"V1.deg\"");
    if (r->has_i1)
        buf_puts(b, ",\"I1.mag\",\"I1.deg\"");
    for (int i = 0; i < r->nph; i++) {
        int ch = r->ph[i].ch;
        const char *nm = ch >= 0 && ch < n->nch ? n->name[ch] : "?";
        buf_printf(b, ",\"%s.mag\",\"%s.deg\"", nm, nm);
    }
    buf_puts(b, "]");
}

void ana_json_pmu_row(buf_t *b, const dsp_pmu_report_t *r)
{
    buf_printf(b, "[%d,%u,", r->index, r->flags);
    ana_json_number(b, "%.6f", r->freq);
    buf_puts(b, ",");
    ana_json_number(b, "%.4f", r->rocof);
    const dsp_pmu_phasor_t *seq[2] = {r->has_v1 ? &r->v1 : NULL, r->has_i1 ? &r->i1 : NULL};
    for (int k = 0; k < 2; k++)
        if (seq[k]) {
            buf_puts(b, ",");
            ana_json_number(b, "%.6g", seq[k]->mag);
            buf_puts(b, ",");
            ana_json_number(b, "%.3f", seq[k]->ang * DEG);
        }
    for (int i = 0; i < r->nph; i++) {
        buf_puts(b, ",");
        ana_json_number(b, "%.6g", r->ph[i].mag);
        buf_puts(b, ",");
        ana_json_number(b, "%.3f", r->ph[i].ang * DEG);
    }
    buf_puts(b, "]");
}
