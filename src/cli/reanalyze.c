/* `gridsense reanalyze ID --from T --to T`: rebuilds a terminal's events and aggregates from its
 * stored blocks (e.g. after its declared voltage changed), replacing the old ones in one
 * transaction. The analysis is the backfill's (src/ana/backfill.c, ana_rebuild_range); the
 * replacement is store_rebuild_apply (src/store/backlog.c). docs/operations.md. */
#include "cli.h"

#include "ana/ana.h"
#include "core/err.h"
#include "dsp/dsp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One call rebuilds at most this much (the new rows are held in memory until the commit: about
 * 4 MB per 2-h unit at 3-s resolution); longer ranges are split by the caller, each part
 * atomic on its own. */
#define MAX_RANGE_NS (48LL * 3600 * 1000000000LL)

static void reanalyze_usage(FILE *f)
{
    fprintf(f,
            "Usage: gridsense reanalyze ID --from T --to T [--data DIR] [--config FILE]\n"
            "\n"
            "Analyses the terminal's stored waveform blocks (and EVENT captures no waveform\n"
            "block covers) again and replaces its voltage events and its 3 s, 10 s, 10 min and\n"
            "2 h aggregates in the range with the new results, in one transaction: readers see\n"
            "the old rows or the new ones, never a mix. Uses the terminal's declared voltage and\n"
            "nominal frequency as they are now. Works while the server runs.\n"
            "\n"
            "  --from T, --to T   the range: ns since the Unix epoch or YYYY-MM-DDThh:mm:ssZ;\n"
            "                     widened to whole UTC 2-h intervals (an aggregate is only\n"
            "                     right from all the blocks of its interval); at most 48 h\n"
            "                     after widening (run it again for more: each run is atomic)\n"
            "\n"
            "An event that overlaps a new one of the same kind keeps its id and acknowledgement\n"
            "(its values are rewritten); the others are deleted or inserted. Aggregates whose\n"
            "interval reaches outside the stored blocks are only replaced by a larger count.\n"
            "Prints a summary: blocks read, events before and after, aggregates written.\n"
            "Exit status 0, 1 on a failure (nothing changed), 2 for bad usage.\n");
}

static int64_t floor_unit(int64_t t)
{
    int64_t u = t / STORE_ANA_UNIT_NS;
    if (t % STORE_ANA_UNIT_NS < 0)
        u--;
    return u * STORE_ANA_UNIT_NS;
}

int cmd_reanalyze(int argc, char **argv)
{
    cli_admin_t a;
    memset(&a, 0, sizeof a);
    static const char *const valopts[] = {"--from", "--to", NULL};
    const char *vals[2] = {NULL, NULL};
    int rc = cli_admin_parse(&a, argc, argv, valopts, vals, NULL, NULL, reanalyze_usage);
    if (rc)
        return rc;
    int64_t from, to;
    if (a.npos != 1 || !vals[0] || !vals[1]) {
        reanalyze_usage(stderr);
        return EXIT_USAGE;
    }
    if (api_parse_time(vals[0], &from) < 0 || api_parse_time(vals[1], &to) < 0 || from >= to ||
        from < 0 || to > DSP_MAX_TIME_NS) {
        fprintf(stderr, "gridsense: --from and --to must be times (ns or "
                        "YYYY-MM-DDThh:mm:ssZ), from before to\n");
        return EXIT_USAGE;
    }
    int64_t f = floor_unit(from), t = floor_unit(to - 1) + STORE_ANA_UNIT_NS;
    if (t - f > MAX_RANGE_NS) {
        fprintf(stderr,
                "gridsense: the range widened to 2-h intervals is %.0f h; at most 48 h "
                "per run\n",
                (double)(t - f) / 3.6e12);
        return EXIT_USAGE;
    }
    const char *id = a.pos[0];
    if (cli_admin_open(&a))
        return 1;
    /* the server's FFTW wisdom when there is some: planning takes longer than the analysis of
     * a short range */
    char wisdom[600];
    snprintf(wisdom, sizeof wisdom, "%s/fftw-wisdom", a.c.data_dir);
    dsp_global_init(access(wisdom, R_OK) == 0 ? wisdom : NULL);
    store_rebuild_t rb;
    ana_rebuild_info_t info;
    int64_t t0 = time_mono_ns();
    rc = ana_rebuild_range(a.st, id, f, t, !a.c.dsp_keep_dc, NULL, &rb, &info);
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    if (rc == GS_ENOTFOUND) {
        fprintf(stderr, "gridsense: no terminal '%s'\n", id);
        store_rebuild_clear(&rb);
        store_close(a.st);
        return 1;
    }
    if (rc == 0)
        rc = store_rebuild_apply(a.st, &rb);
    if (rc < 0) {
        fprintf(stderr, "gridsense: reanalyze %s failed: %s (nothing changed)\n", id, err_str(rc));
        store_rebuild_clear(&rb);
        store_close(a.st);
        return 1;
    }
    char fs[40], ts[40];
    time_fmt_utc(f, fs, sizeof fs);
    time_fmt_utc(t, ts, sizeof ts);
    printf("reanalyzed %s from %s to %s\n", id, fs, ts);
    printf("blocks read: %lld waveform, %lld captures (%lld left out: waveforms cover them), "
           "%lld not analysable; %.1f s of signal in %.2f s\n",
           (long long)info.blocks, (long long)info.captures, (long long)info.covered,
           (long long)info.unusable, info.signal_s, secs);
    printf("events: %lld before, %lld after (%lld kept and rewritten, %lld new, %lld removed)\n",
           (long long)rb.events_before, (long long)rb.events_after, (long long)rb.events_updated,
           (long long)rb.events_inserted, (long long)rb.events_deleted);
    printf("aggregates: %lld removed, %lld written, %lld kept (the stored row reaches beyond "
           "the blocks and has as many values)\n",
           (long long)rb.meas_deleted, (long long)rb.meas_written,
           (long long)rb.nmeas - rb.meas_written);
    char detail[200];
    snprintf(detail, sizeof detail, "%s..%s: events %lld -> %lld, %lld aggregates written", fs, ts,
             (long long)rb.events_before, (long long)rb.events_after, (long long)rb.meas_written);
    char target[80];
    snprintf(target, sizeof target, "terminal %s", id);
    cli_audit(a.st, "terminal.reanalyze", target, detail);
    store_rebuild_clear(&rb);
    store_close(a.st);
    return 0;
}
