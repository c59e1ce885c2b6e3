/* `gridsense analyze`: the analysis engine offline, on a COMTRADE record from any device. */
#include "cli.h"

#include "ana/json.h"
#include "ana/phasor_json.h"
#include "comtrade/comtrade.h"
#include "core/err.h"
#include "dsp/dsp.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void analyze_usage(FILE *f)
{
    fprintf(
        f, "Usage: gridsense analyze FILE.cfg|FILE.cff [OPTIONS]\n"
           "\n"
           "Runs the IEC 61000-4-30 / C37.118 analysis on a COMTRADE record (C37.111 1991,\n"
           "1999 or 2013; ASCII, BINARY, BINARY32 or FLOAT32) and prints the results on stdout.\n"
           "\n"
           "  --nominal-hz 50|60       nominal frequency (default: the record's line frequency)\n"
           "  --declared-voltage V     Udin for dips/swells/interruptions, phase-to-neutral RMS\n"
           "                           in the output units (default: sliding reference)\n"
           "  --channels MAP           which analog channels to analyse and what they are, e.g.\n"
           "                           Ua=1,Ub=2,Uc=3,Ia=4,Ib=5,Ic=6,In=7 (names U/I + a,b,c,n;\n"
           "                           values: 1-based channel numbers or channel ids).\n"
           "                           Default: guessed from each channel's unit (V/kV = voltage,\n"
           "                           A/kA = current) and phase (A/B/C/N, R/S/T, L1/L2/L3).\n"
           "  --side recorded|primary|secondary\n"
           "                           convert values (default: as recorded)\n"
           "  --format json|csv        json (default): one object per line, each with \"type\"\n"
           "                           window, event, 3s, 10min, 2h, 10s, gap or phasor; csv:\n"
           "                           one table of the --what records\n"
           "  --what LIST              records to print, comma separated from window, event,\n"
           "                           3s, 10min, 2h, 10s, gap, phasors (default: all but\n"
           "                           phasors; csv: window)\n"
           "  --phasor-rate N          reporting-rate synchrophasors (C37.118.1 M class) per\n"
           "                           second: 10, 25, 50 at 50 Hz; 10, 12, 15, 20, 30, 60 at\n"
           "                           60 Hz (default 10; printed with --what phasors)\n"
           "  --phasor-cycles N        synchrophasor estimation window, 1..4 cycles (default 1)\n"
           "  --keep-dc                RMS, Urms(1/2) and power include each window's DC\n"
           "                           component (default: the signal's offset, e.g. an ADC\n"
           "                           offset, tracked over seconds and not moved by events, is\n"
           "                           removed; the DC is reported either way)\n"
           "  --help                   this text\n"
           "\n"
           "Exit status: 0 ok, 1 the record cannot be read or analysed, 2 usage error.\n");
}

enum {
    W_WINDOW = 1,
    W_EVENT = 2,
    W_3S = 4,
    W_10MIN = 8,
    W_2H = 16,
    W_10S = 32,
    W_GAP = 64,
    W_PHASOR = 128
};

typedef struct {
    int what;
    int csv;
    int csv_header_done;
    json_names_t names;
    int nch;
    uint64_t nwin, nev, nphasor;
} out_t;

static int parse_what(const char *s, int *out)
{
    static const struct {
        const char *name;
        int bit;
    } m[] = {{"window", W_WINDOW}, {"event", W_EVENT},    {"3s", W_3S},
             {"10min", W_10MIN},   {"2h", W_2H},          {"10s", W_10S},
             {"gap", W_GAP},       {"phasors", W_PHASOR}, {"phasor", W_PHASOR}};
    *out = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
            if (strcmp(tok, m[i].name) == 0) {
                *out |= m[i].bit;
                found = 1;
            }
        if (!found)
            return -1;
    }
    return *out ? 0 : -1;
}

/* ---- result printing ---------------------------------------------------------------------- */

static void csv_num(buf_t *b, double v)
{
    if (isfinite(v))
        buf_printf(b, ",%.7g", v);
    else
        buf_puts(b, ",");
}

static void on_window(void *ud, const dsp_window_t *w)
{
    out_t *o = ud;
    o->nwin++;
    if (!(o->what & W_WINDOW))
        return;
    buf_t b = {0};
    if (o->csv) {
        if (!o->csv_header_done) {
            buf_puts(&b, "t_end,t_end_ns,freq,rocof,flags");
            for (int c = 0; c < w->nch; c++)
                buf_printf(&b, ",%s_rms,%s_fund,%s_deg,%s_thd_pct", o->names.name[c],
                           o->names.name[c], o->names.name[c], o->names.name[c]);
            buf_puts(&b, ",u2_pct,p,q,s_eff\n");
            o->csv_header_done = 1;
        }
        char t[40];
        buf_printf(&b, "%s,%lld", time_fmt_utc(w->t_end_ns, t, sizeof t), (long long)w->t_end_ns);
        csv_num(&b, w->freq);
        csv_num(&b, w->rocof);
        buf_printf(&b, ",%u", w->flags);
        for (int c = 0; c < w->nch; c++) {
            csv_num(&b, w->ch[c].rms);
            csv_num(&b, w->ch[c].fund_mag);
            csv_num(&b, w->ch[c].fund_ang * 180 / M_PI);
            csv_num(&b, w->ch[c].thd * 100);
        }
        csv_num(&b, w->has_v3 ? w->u2 * 100 : NAN);
        csv_num(&b, w->power_mask == 7 ? w->p_tot : NAN);
        csv_num(&b, w->power_mask == 7 ? w->q_tot : NAN);
        csv_num(&b, w->power_mask == 7 ? w->s_eff : NAN);
        buf_putc(&b, '\n');
    } else {
        buf_puts(&b, "{\"type\":\"window\",\"data\":");
        ana_json_window(&b, w, &o->names);
        buf_puts(&b, "}\n");
    }
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

static void on_event(void *ud, const dsp_event_t *e)
{
    out_t *o = ud;
    o->nev++;
    if (!(o->what & W_EVENT))
        return;
    buf_t b = {0};
    if (o->csv) {
        if (!o->csv_header_done) {
            buf_puts(&b, "kind,start,start_ns,duration_s,extreme,extreme_pct,reference,channels,"
                         "worst_channel,flags\n");
            o->csv_header_done = 1;
        }
        char t[40];
        buf_printf(&b, "%s,%s,%lld,%.6f,%.7g,%.4f,%.7g,%u,%s,%u\n", dsp_event_name(e->kind),
                   time_fmt_utc(e->start_ns, t, sizeof t), (long long)e->start_ns,
                   (double)e->duration_ns / 1e9, e->extreme, e->extreme_pct, e->reference,
                   e->channels, o->names.name[e->worst_channel], e->flags);
    } else {
        buf_puts(&b, "{\"type\":\"event\",\"data\":");
        ana_json_event(&b, e, &o->names);
        buf_puts(&b, "}\n");
    }
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

static void on_agg(void *ud, const dsp_agg_t *g)
{
    out_t *o = ud;
    int bit = g->kind == DSP_AGG_3S ? W_3S : g->kind == DSP_AGG_10MIN ? W_10MIN : W_2H;
    if (!(o->what & bit))
        return;
    buf_t b = {0};
    if (o->csv) {
        if (!o->csv_header_done) {
            buf_puts(&b, "interval,t_end,t_end_ns,count,flags,freq_mean,freq_min,freq_max,u2_pct");
            for (int c = 0; c < g->nch; c++)
                buf_printf(&b, ",%s_rms,%s_min,%s_max,%s_thd_pct", o->names.name[c],
                           o->names.name[c], o->names.name[c], o->names.name[c]);
            buf_putc(&b, '\n');
            o->csv_header_done = 1;
        }
        char t[40];
        buf_printf(&b, "%s,%s,%lld,%u,%u", dsp_agg_name(g->kind),
                   time_fmt_utc(g->t_end_ns, t, sizeof t), (long long)g->t_end_ns, g->count,
                   g->flags);
        csv_num(&b, g->freq_mean);
        csv_num(&b, g->freq_min);
        csv_num(&b, g->freq_max);
        csv_num(&b, g->u2 * 100);
        for (int c = 0; c < g->nch; c++) {
            csv_num(&b, g->ch[c].rms);
            csv_num(&b, g->ch[c].rms_min);
            csv_num(&b, g->ch[c].rms_max);
            csv_num(&b, g->ch[c].thd * 100);
        }
        buf_putc(&b, '\n');
    } else {
        buf_printf(&b, "{\"type\":\"%s\",\"data\":", dsp_agg_name(g->kind));
        ana_json_agg(&b, g, &o->names, g->kind != DSP_AGG_3S);
        buf_puts(&b, "}\n");
    }
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

static void on_freq10(void *ud, const dsp_freq10_t *f)
{
    out_t *o = ud;
    if (!(o->what & W_10S))
        return;
    buf_t b = {0};
    if (o->csv) {
        if (!o->csv_header_done) {
            buf_puts(&b, "t_start,t_start_ns,freq,cycles,flags\n");
            o->csv_header_done = 1;
        }
        char t[40];
        buf_printf(&b, "%s,%lld,%.7f,%u,%u\n", time_fmt_utc(f->t_start_ns, t, sizeof t),
                   (long long)f->t_start_ns, f->freq, f->cycles, f->flags);
    } else {
        buf_puts(&b, "{\"type\":\"10s\",\"data\":");
        ana_json_freq10(&b, f);
        buf_puts(&b, "}\n");
    }
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

static void on_gap(void *ud, const dsp_gap_t *g)
{
    out_t *o = ud;
    if (!(o->what & W_GAP))
        return;
    char a[40], z[40];
    if (o->csv)
        printf("%s,%s\n", time_fmt_utc(g->from_ns, a, sizeof a),
               time_fmt_utc(g->to_ns, z, sizeof z));
    else
        printf("{\"type\":\"gap\",\"data\":{\"from\":\"%s\",\"to\":\"%s\",\"from_ns\":%lld,"
               "\"to_ns\":%lld}}\n",
               time_fmt_utc(g->from_ns, a, sizeof a), time_fmt_utc(g->to_ns, z, sizeof z),
               (long long)g->from_ns, (long long)g->to_ns);
}

static void on_phasor(void *ud, const dsp_pmu_report_t *r)
{
    out_t *o = ud;
    o->nphasor++;
    buf_t b = {0};
    if (o->csv) {
        if (!o->csv_header_done) {
            buf_puts(&b, "time,t_ns,index,flags,freq,rocof");
            if (r->has_v1)
                buf_puts(&b, ",V1_mag,V1_deg");
            if (r->has_i1)
                buf_puts(&b, ",I1_mag,I1_deg");
            for (int i = 0; i < r->nph; i++)
                buf_printf(&b, ",%s_mag,%s_deg,%s_freq,%s_rocof", o->names.name[r->ph[i].ch],
                           o->names.name[r->ph[i].ch], o->names.name[r->ph[i].ch],
                           o->names.name[r->ph[i].ch]);
            buf_putc(&b, '\n');
            o->csv_header_done = 1;
        }
        char t[40];
        buf_printf(&b, "%s,%lld,%d,%u", time_fmt_utc(r->t_ns, t, sizeof t), (long long)r->t_ns,
                   r->index, r->flags);
        csv_num(&b, r->freq);
        csv_num(&b, r->rocof);
        const dsp_pmu_phasor_t *seq[2] = {r->has_v1 ? &r->v1 : NULL, r->has_i1 ? &r->i1 : NULL};
        for (int k = 0; k < 2; k++)
            if (seq[k]) {
                csv_num(&b, seq[k]->mag);
                csv_num(&b, seq[k]->ang * 180 / M_PI);
            }
        for (int i = 0; i < r->nph; i++) {
            csv_num(&b, r->ph[i].mag);
            csv_num(&b, r->ph[i].ang * 180 / M_PI);
            csv_num(&b, r->ph[i].freq);
            csv_num(&b, r->ph[i].rocof);
        }
        buf_putc(&b, '\n');
    } else {
        buf_puts(&b, "{\"type\":\"phasor\",\"data\":");
        ana_json_pmu_report(&b, r, &o->names);
        buf_puts(&b, "}\n");
    }
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

/* ---- channel mapping ---------------------------------------------------------------------- */

typedef struct {
    size_t src;    /* 0-based analog channel */
    uint8_t kind;  /* dsp_kind_t */
    uint8_t phase; /* dsp_phase_t */
} map_t;

static int phase_of(const char *s)
{
    char t[64];
    size_t n = 0;
    for (; *s && n + 1 < sizeof t; s++)
        if (!isspace((unsigned char)*s))
            t[n++] = (char)toupper((unsigned char)*s);
    t[n] = 0;
    if (!strcmp(t, "A") || !strcmp(t, "R") || !strcmp(t, "L1") || !strcmp(t, "1") ||
        !strcmp(t, "PHA"))
        return DSP_PHASE_A;
    if (!strcmp(t, "B") || !strcmp(t, "S") || !strcmp(t, "L2") || !strcmp(t, "2") ||
        !strcmp(t, "PHB"))
        return DSP_PHASE_B;
    if (!strcmp(t, "C") || !strcmp(t, "T") || !strcmp(t, "L3") || !strcmp(t, "3") ||
        !strcmp(t, "PHC"))
        return DSP_PHASE_C;
    if (!strcmp(t, "N") || !strcmp(t, "0") || !strcmp(t, "NEUT"))
        return DSP_PHASE_N;
    return DSP_PHASE_NONE;
}

static int kind_of_unit(const char *uu)
{
    char t[16];
    size_t n = 0;
    for (; *uu && n + 1 < sizeof t; uu++)
        if (!isspace((unsigned char)*uu))
            t[n++] = *uu;
    t[n] = 0;
    if (!strcasecmp(t, "V") || !strcasecmp(t, "kV") || !strcasecmp(t, "mV") || !strcasecmp(t, "MV"))
        return DSP_KIND_VOLTAGE;
    if (!strcasecmp(t, "A") || !strcasecmp(t, "kA") || !strcasecmp(t, "mA"))
        return DSP_KIND_CURRENT;
    return DSP_KIND_OTHER;
}

/* Phase from a channel id such as "VA", "Ua", "IA", "V_L1", "Ib": its last letter or digit. */
static int phase_from_id(const char *id)
{
    size_t n = strlen(id);
    while (n > 0 && isspace((unsigned char)id[n - 1]))
        n--;
    if (n == 0)
        return DSP_PHASE_NONE;
    char last[2] = {id[n - 1], 0};
    if (n >= 2 && toupper((unsigned char)id[n - 2]) == 'L' && isdigit((unsigned char)last[0]))
        return phase_of(id + n - 2);
    return phase_of(last);
}

static int guess_map(const comtrade_cfg_t *cfg, map_t *m, int *n)
{
    int taken[3][5] = {{0}};
    *n = 0;
    for (size_t i = 0; i < cfg->nanalog && *n < DSP_MAX_CH; i++) {
        const comtrade_analog_t *a = &cfg->analog[i];
        int kind = kind_of_unit(a->uu);
        if (kind == DSP_KIND_OTHER)
            continue;
        int ph = phase_of(a->ph);
        if (ph == DSP_PHASE_NONE)
            ph = phase_from_id(a->ch_id);
        if (ph == DSP_PHASE_NONE || taken[kind][ph])
            continue;
        taken[kind][ph] = 1;
        m[*n] = (map_t){i, (uint8_t)kind, (uint8_t)ph};
        (*n)++;
    }
    return *n > 0 ? 0 : -1;
}

static int parse_map(const char *spec, const comtrade_cfg_t *cfg, map_t *m, int *n)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq - tok != 2) {
            fprintf(stderr,
                    "gridsense analyze: --channels: '%s' is not NAME=CHANNEL (NAME like "
                    "Ua or Ic)\n",
                    tok);
            return -1;
        }
        int kind = toupper((unsigned char)tok[0]) == 'U' || toupper((unsigned char)tok[0]) == 'V'
                       ? DSP_KIND_VOLTAGE
                   : toupper((unsigned char)tok[0]) == 'I' ? DSP_KIND_CURRENT
                                                           : -1;
        char phs[2] = {tok[1], 0};
        int ph = phase_of(phs);
        if (kind < 0 || ph == DSP_PHASE_NONE) {
            fprintf(stderr,
                    "gridsense analyze: --channels: unknown name '%.2s' (U or I, then "
                    "a, b, c or n)\n",
                    tok);
            return -1;
        }
        const char *val = eq + 1;
        int64_t num;
        size_t src = (size_t)-1;
        if (parse_i64(val, 1, (int64_t)cfg->nanalog, &num) == 0) {
            src = (size_t)(num - 1);
        } else {
            for (size_t i = 0; i < cfg->nanalog; i++)
                if (strcmp(cfg->analog[i].ch_id, val) == 0) {
                    src = i;
                    break;
                }
        }
        if (src == (size_t)-1) {
            fprintf(stderr,
                    "gridsense analyze: --channels: no analog channel '%s' (1..%zu or a "
                    "channel id)\n",
                    val, cfg->nanalog);
            return -1;
        }
        if (*n >= DSP_MAX_CH) {
            fprintf(stderr, "gridsense analyze: --channels: at most %d channels\n", DSP_MAX_CH);
            return -1;
        }
        m[*n] = (map_t){src, (uint8_t)kind, (uint8_t)ph};
        (*n)++;
    }
    if (*n == 0) {
        fprintf(stderr, "gridsense analyze: --channels: empty map\n");
        return -1;
    }
    return 0;
}

/* The record's fixed sample rate: one rate (or several equal ones), or, with nrates 0, uniform
 * timestamps. Returns 0 or prints why the record cannot be analysed. */
static int fixed_rate(const comtrade_rec_t *rec, double *fs)
{
    const comtrade_cfg_t *cfg = comtrade_rec_cfg(rec);
    size_t n = comtrade_nsamples(rec);
    if (cfg->nrates > 0) {
        for (size_t r = 1; r < cfg->nrates; r++)
            if (fabs(cfg->rates[r].samp - cfg->rates[0].samp) > 1e-9 * cfg->rates[0].samp) {
                fprintf(stderr,
                        "gridsense analyze: the record changes its sample rate (%g then %g "
                        "S/s); the analysis needs one fixed rate\n",
                        cfg->rates[0].samp, cfg->rates[r].samp);
                return -1;
            }
        *fs = cfg->rates[0].samp;
        return 0;
    }
    if (n < 2) {
        fprintf(stderr, "gridsense analyze: fewer than 2 samples\n");
        return -1;
    }
    int64_t t0 = comtrade_time_ns(rec, 0), t1 = comtrade_time_ns(rec, n - 1);
    if (t0 == COMTRADE_TIME_NONE || t1 == COMTRADE_TIME_NONE || t1 <= t0) {
        fprintf(stderr, "gridsense analyze: no sample rate in the cfg and no usable timestamps\n");
        return -1;
    }
    *fs = (double)(n - 1) * 1e9 / (double)(t1 - t0);
    /* The timestamps must follow that rate (a recorder with a fixed clock), within half a
     * sample; otherwise resampling to a fixed grid first would be guesswork. */
    double period = 1e9 / *fs;
    for (size_t i = 0; i < n; i += 1 + n / 1000) {
        int64_t ti = comtrade_time_ns(rec, i);
        if (ti != COMTRADE_TIME_NONE && fabs((double)(ti - t0) - (double)i * period) > period / 2) {
            fprintf(stderr,
                    "gridsense analyze: timestamps are not uniform (sample %zu is %.1f us off a "
                    "%.3f S/s grid); the analysis needs a fixed rate\n",
                    i + 1, ((double)(ti - t0) - (double)i * period) / 1000, *fs);
            return -1;
        }
    }
    return 0;
}

int cmd_analyze(int argc, char **argv)
{
    const char *file = NULL, *chmap = NULL, *what = NULL;
    int nominal = 0, csv = 0, side = COMTRADE_AS_RECORDED, phasor_cycles = 1, keep_dc = 0;
    int phasor_rate = 10;
    double udin = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            analyze_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--keep-dc")) {
            keep_dc = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (file) {
                fprintf(stderr, "gridsense analyze: one record at a time ('%s')\n", a);
                return EXIT_USAGE;
            }
            file = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gridsense analyze: missing value for %s (see --help)\n", a);
            return EXIT_USAGE;
        }
        const char *v = argv[++i];
        int64_t iv;
        if (!strcmp(a, "--nominal-hz")) {
            if (parse_i64(v, 50, 60, &iv) < 0 || (iv != 50 && iv != 60)) {
                fprintf(stderr, "gridsense analyze: --nominal-hz must be 50 or 60\n");
                return EXIT_USAGE;
            }
            nominal = (int)iv;
        } else if (!strcmp(a, "--declared-voltage")) {
            if (parse_double(v, 0, 1e9, &udin) < 0) {
                fprintf(stderr, "gridsense analyze: --declared-voltage must be a number >= 0\n");
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--channels")) {
            chmap = v;
        } else if (!strcmp(a, "--side")) {
            if (!strcmp(v, "recorded"))
                side = COMTRADE_AS_RECORDED;
            else if (!strcmp(v, "primary"))
                side = COMTRADE_PRIMARY;
            else if (!strcmp(v, "secondary"))
                side = COMTRADE_SECONDARY;
            else {
                fprintf(stderr, "gridsense analyze: --side must be recorded, primary or "
                                "secondary\n");
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "json"))
                csv = 0;
            else if (!strcmp(v, "csv"))
                csv = 1;
            else {
                fprintf(stderr, "gridsense analyze: --format must be json or csv\n");
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--what")) {
            what = v;
        } else if (!strcmp(a, "--phasor-cycles")) {
            if (parse_i64(v, 1, 4, &iv) < 0) {
                fprintf(stderr, "gridsense analyze: --phasor-cycles must be 1..4\n");
                return EXIT_USAGE;
            }
            phasor_cycles = (int)iv;
        } else if (!strcmp(a, "--phasor-rate")) {
            if (parse_i64(v, 1, 60, &iv) < 0 ||
                !(dsp_pmu_rate_valid(50, (int)iv) || dsp_pmu_rate_valid(60, (int)iv))) {
                fprintf(stderr, "gridsense analyze: --phasor-rate must be a C37.118.1 rate: 10, "
                                "25, 50 (50 Hz) or 10, 12, 15, 20, 30, 60 (60 Hz)\n");
                return EXIT_USAGE;
            }
            phasor_rate = (int)iv;
        } else {
            fprintf(stderr, "gridsense analyze: unknown option %s (see --help)\n", a);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        analyze_usage(stderr);
        return EXIT_USAGE;
    }
    out_t o;
    memset(&o, 0, sizeof o);
    o.csv = csv;
    o.what = csv ? W_WINDOW : 0x7f;
    if (what && parse_what(what, &o.what) < 0) {
        fprintf(stderr, "gridsense analyze: --what: expected a list of window, event, 3s, 10min, "
                        "2h, 10s, gap, phasors\n");
        return EXIT_USAGE;
    }
    if (csv && (o.what & (o.what - 1)) != 0) {
        fprintf(stderr, "gridsense analyze: --format csv prints one kind of record: choose one "
                        "with --what\n");
        return EXIT_USAGE;
    }

    char err[512];
    comtrade_rec_t *rec = NULL;
    dsp_stream_t *ds = NULL;
    dsp_pmu_t *pmu = NULL;
    double *buf = NULL, *col = NULL;
    int rc = 1;
    int r = comtrade_open(file, &rec, err, sizeof err);
    if (r < 0) {
        /* the reader's message names the file (and line) already */
        if (err[0])
            fprintf(stderr, "gridsense analyze: %s\n", err);
        else
            fprintf(stderr, "gridsense analyze: %s: %s\n", file, err_str(r));
        return 1;
    }
    const comtrade_cfg_t *cfg = comtrade_rec_cfg(rec);
    if (!nominal) {
        if (fabs(cfg->lf - 50) < 1e-6 || fabs(cfg->lf - 60) < 1e-6) {
            nominal = (int)llround(cfg->lf);
        } else {
            fprintf(stderr,
                    "gridsense analyze: the record's line frequency is %g Hz; give --nominal-hz "
                    "50 or 60\n",
                    cfg->lf);
            goto fail;
        }
    }
    double fs;
    if (fixed_rate(rec, &fs) < 0)
        goto fail;
    map_t map[DSP_MAX_CH];
    int nmap;
    if (chmap) {
        if (parse_map(chmap, cfg, map, &nmap) < 0) {
            rc = EXIT_USAGE;
            goto fail;
        }
    } else if (guess_map(cfg, map, &nmap) < 0) {
        fprintf(stderr, "gridsense analyze: cannot tell which channels are phase voltages and "
                        "currents (units V/kV/A/kA and phases A/B/C/N expected); use --channels\n");
        goto fail;
    }

    dsp_config_t dc;
    dsp_config_default(&dc, fs, nominal, nmap);
    dc.declared_v = udin;
    dc.phasor_cycles = phasor_cycles;
    dc.dc_removal = !keep_dc;
    for (int k = 0; k < nmap; k++) {
        dc.ch[k].kind = map[k].kind;
        dc.ch[k].phase = map[k].phase;
        dc.ch[k].scale = 1;
    }
    ana_json_names(&o.names, &dc);
    o.nch = nmap;
    dsp_sink_t sink = {.window = on_window,
                       .event = on_event,
                       .agg = on_agg,
                       .freq10 = on_freq10,
                       .gap = on_gap,
                       .ud = &o};
    dsp_global_init(NULL);
    r = dsp_stream_new(&dc, &sink, &ds, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "gridsense analyze: %s: %s\n", file, err);
        goto fail;
    }
    if (o.what & W_PHASOR) {
        if (!dsp_pmu_rate_valid(nominal, phasor_rate)) {
            fprintf(stderr,
                    "gridsense analyze: --phasor-rate %d is not a C37.118.1 rate at %d Hz "
                    "(%s)\n",
                    phasor_rate, nominal, nominal == 50 ? "10, 25, 50" : "10, 12, 15, 20, 30, 60");
            rc = EXIT_USAGE;
            goto fail;
        }
        dsp_pmu_sink_t ps = {.report = on_phasor, .ud = &o};
        r = dsp_pmu_new(&dc, phasor_rate, &ps, &pmu, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "gridsense analyze: %s: %s\n", file, err);
            goto fail;
        }
    }
    int64_t start = cfg->start_ns - (int64_t)cfg->time_code_min * 60 * 1000000000LL; /* to UTC */
    size_t n = comtrade_nsamples(rec), chunk = 4096;
    buf = xmalloc(sizeof(double) * chunk * (size_t)nmap);
    col = xmalloc(sizeof(double) * chunk);
    for (size_t first = 0; first < n; first += chunk) {
        size_t cnt = n - first < chunk ? n - first : chunk;
        for (int k = 0; k < nmap; k++) {
            if (comtrade_values(rec, map[k].src, side, first, cnt, col) < 0) {
                fprintf(stderr,
                        "gridsense analyze: channel %zu: cannot convert to the %s side (its "
                        "primary or secondary factor is 0)\n",
                        map[k].src + 1, side == COMTRADE_PRIMARY ? "primary" : "secondary");
                goto fail;
            }
            for (size_t i = 0; i < cnt; i++)
                buf[i * (size_t)nmap + (size_t)k] = col[i];
        }
        int64_t t0 = start + (int64_t)llround((double)first * 1e9 / fs);
        if (pmu)
            dsp_pmu_push(pmu, t0, DSP_FMT_F64, buf, cnt, 0);
        if (dsp_stream_push(ds, t0, DSP_FMT_F64, buf, cnt, 0) == GS_ERANGE) {
            char t[40];
            fprintf(stderr,
                    "gridsense analyze: the record's time (%s) is outside 1970..2199; "
                    "check the start date in the cfg\n",
                    time_fmt_utc(t0, t, sizeof t));
            goto fail;
        }
    }
    dsp_stream_flush(ds);
    if (pmu)
        dsp_pmu_flush(pmu);
    fflush(stdout);
    if (o.nwin == 0)
        fprintf(stderr, "gridsense analyze: note: the record is shorter than one 10/12-cycle "
                        "window after frequency acquisition; no values\n");
    rc = 0;
fail:
    free(buf);
    free(col);
    dsp_stream_free(ds);
    dsp_pmu_free(pmu);
    comtrade_rec_free(rec);
    return rc;
}
