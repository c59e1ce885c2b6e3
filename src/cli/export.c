/* gridsense export: stored waveforms as COMTRADE or CSV, measurements as CSV (src/export).
 * Reads through a read-only store connection (store_opts_t.reader_only), so it works while the
 * server runs (SQLite WAL: readers do not block the writer). docs/operations.md "Export". */
#include "cli/cli.h"

#include "core/err.h"
#include "export/export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EV_PRE_NS  500000000LL  /* as the event waveform API (src/wave WAVE_EVENT_PRE_NS) */
#define EV_POST_NS 1000000000LL /* ... WAVE_EVENT_POST_NS */

static void help(FILE *f)
{
    fprintf(f,
            "Usage:\n"
            "  gridsense export comtrade ID --from T --to T [--out DIR] [--format F]\n"
            "                   [--revision 1999|2013] [--side primary|secondary]\n"
            "                   [--container files|cff|zip]\n"
            "  gridsense export comtrade ID --event EVENT_ID [--pre S] [--post S] [...]\n"
            "  gridsense export csv ID --from T --to T [--what waveform|measurements]\n"
            "                   [--interval 3s|10s|10min|2h] [--side primary|secondary]\n"
            "                   [--out FILE|-]\n"
            "\n"
            "Writes a stored range of terminal ID as a COMTRADE record (IEEE C37.111-1999/2013):\n"
            "DIR/ID_YYYYMMDDTHHMMSSZ.cfg + .dat + .hdr (default), one .cff (2013) or one .zip\n"
            "of them; or as CSV (time and one column per channel in V/A; measurements: one row\n"
            "per aggregation interval, one column per quantity). Streams with constant memory\n"
            "and shows progress on a terminal. Works while the server runs.\n"
            "\n"
            "  --from, --to T   the range [from, to): ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z\n"
            "  --format F       binary (int16, default), binary32, float32 (2013 only), ascii\n"
            "  --revision Y     2013 (default) or 1999\n"
            "  --side S         primary (default: x VT/CT ratio) or secondary (as measured)\n"
            "  --event ID       the window of a stored event: its start - pre .. end + post\n"
            "                   (defaults 0.5 s and 1 s), trigger time = the event start\n"
            "  --out            COMTRADE: a folder (default .); CSV: a file, - = stdout (default)\n"
            "  --config FILE, --data DIR, --log-level L   as for every command\n"
            "Exit codes: 0 written, 1 failure (unknown terminal or event, nothing stored in the\n"
            "range, I/O), 2 usage.\n");
}

typedef struct {
    int tty;
    int64_t last_ns;
    int64_t t0;
    int shown;
} progress_t;

static void progress(progress_t *p, const export_t *ex, const export_opts_t *o, int final)
{
    if (!p->tty)
        return;
    int64_t now = time_mono_ns();
    if (!final && now - p->last_ns < 200000000LL)
        return;
    p->last_ns = now;
    export_stats_t s;
    export_stats(ex, &s);
    double pct = final ? 100.0
                       : 100.0 * (double)(s.cursor_ns - o->from_ns) /
                             (double)(o->to_ns - o->from_ns);
    if (pct < 0)
        pct = 0;
    fprintf(stderr, "\rexport %s: %5.1f%%  %llu sample sets  %.1f MB   ", o->terminal_id, pct,
            (unsigned long long)s.samples, (double)s.bytes / 1e6);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
    p->shown = 1;
}

/* Streams export_next into f. Returns 0 or a negative code (message printed). */
static int pump(export_t *ex, const export_opts_t *o, FILE *f, const char *path, progress_t *pg)
{
    buf_t b = {0};
    char err[512] = "";
    int rc;
    while ((rc = export_next(ex, &b, err, sizeof err)) > 0) {
        if (fwrite(b.data, 1, b.len, f) != b.len) {
            fprintf(stderr, "%sgridsense: cannot write %s: %s\n", pg->shown ? "\n" : "", path,
                    strerror(errno));
            buf_free(&b);
            return GS_EIO;
        }
        buf_reset(&b);
        progress(pg, ex, o, 0);
    }
    buf_free(&b);
    if (rc < 0) {
        fprintf(stderr, "%sgridsense: export failed: %s\n", pg->shown ? "\n" : "", err);
        return rc;
    }
    return 0;
}

/* Writes text to path via path.part and a rename. */
static int write_small(const char *path, const buf_t *text)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || (text->len && fwrite(text->data, 1, text->len, f) != text->len) || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        fprintf(stderr, "gridsense: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cmd_export(int argc, char **argv)
{
    static const char *const valopts[] = {"--from",  "--to",     "--out",      "--format",
                                          "--revision", "--side", "--event",   "--pre",
                                          "--post",  "--what",   "--interval", "--container",
                                          NULL};
    const char *v[13] = {0};
    cli_admin_t a = {0};
    int rc = cli_admin_parse(&a, argc, argv, valopts, v, NULL, NULL, help);
    if (rc)
        return rc;
    if (a.npos != 2 || (strcmp(a.pos[0], "comtrade") != 0 && strcmp(a.pos[0], "csv") != 0)) {
        fprintf(stderr, "gridsense: export comtrade|csv ID ... (see gridsense export --help)\n");
        return EXIT_USAGE;
    }
    int comtrade = strcmp(a.pos[0], "comtrade") == 0;
    export_opts_t o = {.terminal_id = a.pos[1], .ft = COMTRADE_BINARY, .rev_year = 2013};
    o.what = comtrade ? EXPORT_COMTRADE : EXPORT_CSV_WAVEFORM;
    int have_from = 0, have_to = 0;
    if (v[0]) {
        if (api_parse_time(v[0], &o.from_ns) < 0) {
            fprintf(stderr, "gridsense: --from: ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z\n");
            return EXIT_USAGE;
        }
        have_from = 1;
    }
    if (v[1]) {
        if (api_parse_time(v[1], &o.to_ns) < 0) {
            fprintf(stderr, "gridsense: --to: ns since 1970 or YYYY-MM-DDTHH:MM:SS[.fff]Z\n");
            return EXIT_USAGE;
        }
        have_to = 1;
    }
    if (v[3] && (!comtrade || export_ft_parse(v[3], &o.ft) < 0)) {
        fprintf(stderr, "gridsense: --format: binary, binary32, float32 or ascii (COMTRADE)\n");
        return EXIT_USAGE;
    }
    if (v[4]) {
        if (!comtrade || (strcmp(v[4], "1999") && strcmp(v[4], "2013"))) {
            fprintf(stderr, "gridsense: --revision: 1999 or 2013 (COMTRADE)\n");
            return EXIT_USAGE;
        }
        o.rev_year = atoi(v[4]);
    }
    if (v[5]) {
        if (strcmp(v[5], "primary") == 0)
            o.side = EXPORT_PRIMARY;
        else if (strcmp(v[5], "secondary") == 0)
            o.side = EXPORT_SECONDARY;
        else {
            fprintf(stderr, "gridsense: --side: primary or secondary\n");
            return EXIT_USAGE;
        }
    }
    if (v[9]) {
        if (comtrade || (strcmp(v[9], "waveform") && strcmp(v[9], "measurements"))) {
            fprintf(stderr, "gridsense: --what: waveform or measurements (CSV)\n");
            return EXIT_USAGE;
        }
        if (strcmp(v[9], "measurements") == 0)
            o.what = EXPORT_CSV_MEASUREMENTS;
    }
    if (v[10]) {
        if (o.what != EXPORT_CSV_MEASUREMENTS) {
            fprintf(stderr, "gridsense: --interval goes with --what measurements\n");
            return EXIT_USAGE;
        }
        o.interval = v[10];
    }
    if (v[11]) {
        if (!comtrade) {
            fprintf(stderr, "gridsense: --container is for COMTRADE\n");
            return EXIT_USAGE;
        }
        if (strcmp(v[11], "files") == 0)
            o.container = EXPORT_PLAIN;
        else if (strcmp(v[11], "cff") == 0)
            o.container = EXPORT_CFF;
        else if (strcmp(v[11], "zip") == 0)
            o.container = EXPORT_ZIP;
        else {
            fprintf(stderr, "gridsense: --container: files, cff or zip\n");
            return EXIT_USAGE;
        }
    }
    int64_t pre = EV_PRE_NS, post = EV_POST_NS, ev_id = 0;
    if ((v[7] || v[8]) && !v[6]) {
        fprintf(stderr, "gridsense: --pre and --post go with --event\n");
        return EXIT_USAGE;
    }
    for (int k = 7; k <= 8; k++) {
        double s;
        if (v[k] && parse_double(v[k], 0, 3600, &s) < 0) {
            fprintf(stderr, "gridsense: %s: seconds, 0..3600\n", k == 7 ? "--pre" : "--post");
            return EXIT_USAGE;
        }
        if (v[k])
            *(k == 7 ? &pre : &post) = (int64_t)(s * 1e9 + 0.5);
    }
    if (v[6]) {
        if (o.what == EXPORT_CSV_MEASUREMENTS || parse_i64(v[6], 1, INT64_MAX, &ev_id) < 0 ||
            have_from || have_to) {
            fprintf(stderr, "gridsense: --event EVENT_ID (a positive id) replaces --from/--to\n");
            return EXIT_USAGE;
        }
    } else if (!have_from || !have_to) {
        fprintf(stderr, "gridsense: --from and --to are required (or --event)\n");
        return EXIT_USAGE;
    }
    if (!v[6] && o.from_ns >= o.to_ns) {
        fprintf(stderr, "gridsense: the range is empty: --from must be before --to\n");
        return EXIT_USAGE;
    }

    char err[1024];
    store_opts_t so = {.reader_only = 1, .busy_timeout_ms = 5000, .url = a.c.store_pg ? a.c.store_url : NULL};
    store_t *st = NULL;
    if (store_open(a.c.data_dir, &so, &st, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        return 1;
    }
    int exit_code = 1;
    export_t *ex = NULL;
    FILE *f = NULL;
    char path[1100] = "", tmp[1200] = "";
    if (ev_id) {
        store_pq_event_t e;
        rc = store_pq_event_get(st, ev_id, &e);
        if (rc < 0) {
            fprintf(stderr, "gridsense: %s\n",
                    rc == GS_ENOTFOUND ? "no such event" : "cannot read the event");
            goto done;
        }
        if (strcmp(e.terminal_id, o.terminal_id) != 0) {
            fprintf(stderr, "gridsense: event %lld belongs to terminal %s, not %s\n",
                    (long long)ev_id, e.terminal_id, o.terminal_id);
            goto done;
        }
        o.from_ns = e.start_ns - pre;
        o.to_ns = e.start_ns + (e.duration_ns > 0 ? e.duration_ns : 0) + post;
        o.trigger_ns = e.start_ns;
    }
    char hdr[128] = "";
    if (ev_id) {
        snprintf(hdr, sizeof hdr, "event: %lld", (long long)ev_id);
        o.hdr = hdr;
    }
    rc = export_open(st, &o, &ex, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        goto done;
    }
    if (o.what != EXPORT_CSV_MEASUREMENTS && export_empty(ex)) {
        char f1[40], t1[40];
        fprintf(stderr, "gridsense: nothing stored for %s between %s and %s\n", o.terminal_id,
                time_fmt_utc(o.from_ns, f1, sizeof f1), time_fmt_utc(o.to_ns, t1, sizeof t1));
        goto done;
    }
    progress_t pg = {.tty = isatty(2)};
    int64_t t_start = time_mono_ns();
    char base[200];
    export_basename(o.terminal_id, o.from_ns, base, sizeof base);
    if (comtrade) {
        const char *dir = v[2] ? v[2] : ".";
        struct stat sb;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "gridsense: --out %s is not a folder\n", dir);
            goto done;
        }
        snprintf(path, sizeof path, "%s/%s.%s", dir, base, export_ext(&o));
    } else if (v[2] && strcmp(v[2], "-") != 0) {
        snprintf(path, sizeof path, "%s", v[2]);
    }
    if (path[0]) {
        snprintf(tmp, sizeof tmp, "%s.part", path);
        f = fopen(tmp, "wb");
        if (!f) {
            fprintf(stderr, "gridsense: cannot create %s: %s\n", tmp, strerror(errno));
            goto done;
        }
    }
    rc = pump(ex, &o, f ? f : stdout, path[0] ? path : "stdout", &pg);
    if (rc < 0)
        goto done;
    if (f) {
        if (fclose(f) != 0 || rename(tmp, path) != 0) {
            f = NULL;
            fprintf(stderr, "gridsense: cannot write %s: %s\n", path, strerror(errno));
            goto done;
        }
        f = NULL;
        tmp[0] = '\0';
    } else if (fflush(stdout) != 0) {
        fprintf(stderr, "gridsense: cannot write stdout: %s\n", strerror(errno));
        goto done;
    }
    if (comtrade && o.container == EXPORT_PLAIN) {
        buf_t cfg = {0}, h = {0};
        char p2[1100];
        rc = export_cfg(ex, &cfg, &h, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "gridsense: %s\n", err);
            buf_free(&cfg);
            buf_free(&h);
            goto done;
        }
        snprintf(p2, sizeof p2, "%s/%s.cfg", v[2] ? v[2] : ".", base);
        int w = write_small(p2, &cfg);
        snprintf(p2, sizeof p2, "%s/%s.hdr", v[2] ? v[2] : ".", base);
        if (w == 0)
            w = write_small(p2, &h);
        buf_free(&cfg);
        buf_free(&h);
        if (w < 0)
            goto done;
        snprintf(path, sizeof path, "%s/%s.cfg", v[2] ? v[2] : ".", base);
    }
    progress(&pg, ex, &o, 1);
    export_stats_t s;
    export_stats(ex, &s);
    double secs = (double)(time_mono_ns() - t_start) / 1e9;
    fprintf(stderr,
            "gridsense: wrote %s: %llu %s, %llu segment(s), %llu gap(s), %.1f MB in %.2f s"
            " (%.1f MB/s)%s\n",
            path[0] ? path : "stdout", (unsigned long long)s.samples,
            o.what == EXPORT_CSV_MEASUREMENTS ? "rows" : "sample sets",
            (unsigned long long)s.segments, (unsigned long long)s.gaps, (double)s.bytes / 1e6,
            secs, secs > 0 ? (double)s.bytes / 1e6 / secs : 0.0,
            s.skipped_layout + s.skipped_time ? " (blocks skipped: see the .hdr)" : "");
    exit_code = 0;
done:
    if (f)
        fclose(f);
    if (tmp[0])
        unlink(tmp);
    export_free(ex);
    store_close(st);
    return exit_code;
}
