/* `gridsense pyramid rebuild ID [--from TIME] [--to TIME]`: recomputes a terminal's waveform
 * summary pyramid from its stored blocks (store_pyramid_rebuild), for databases that held
 * blocks before the pyramid existed (docs/operations.md "Waveform summary pyramid"). */
#include "cli/cli.h"

#include "api/api.h"
#include "core/err.h"
#include "core/util.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void pyramid_usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  gridsense pyramid rebuild ID [--from TIME] [--to TIME]\n"
               "      recompute terminal ID's waveform summary pyramid (min/max/RMS per 1 s ..\n"
               "      1 day) from its stored blocks over [from, to), widened to whole UTC days\n"
               "      (default: all); in one transaction; TIME is ns since 1970 or\n"
               "      YYYY-MM-DDTHH:MM:SSZ. Not over the day a running server is writing.\n"
               "All take --data DIR (default ./data), --config FILE and --log-level LEVEL.\n");
}

int cmd_pyramid(int argc, char **argv)
{
    cli_admin_t a = {0};
    const char *vopts[] = {"--from", "--to", NULL};
    const char *vals[2] = {NULL};
    const char *fopts[] = {NULL};
    int flags[1] = {0};
    if (cli_admin_parse(&a, argc, argv, vopts, vals, fopts, flags, pyramid_usage) != 0)
        return EXIT_USAGE;
    if (a.npos != 2 || strcmp(a.pos[0], "rebuild") != 0) {
        pyramid_usage(stderr);
        return EXIT_USAGE;
    }
    int64_t from = 0, to = INT64_MAX;
    if ((vals[0] && api_parse_time(vals[0], &from) < 0) ||
        (vals[1] && api_parse_time(vals[1], &to) < 0) || from >= to) {
        fprintf(stderr,
                "gridsense: --from/--to: ns since 1970 or YYYY-MM-DDTHH:MM:SSZ, from < to\n");
        return EXIT_USAGE;
    }
    if (cli_admin_open(&a))
        return 1;
    store_terminal_t t;
    int rc = store_terminal_info(a.st, a.pos[1], &t);
    if (rc < 0) {
        fprintf(stderr, "gridsense: terminal '%s': %s\n", a.pos[1],
                rc == GS_ENOTFOUND ? "not found" : err_str(rc));
        store_close(a.st);
        return 1;
    }
    int64_t blocks = 0, t0 = time_mono_ns();
    rc = store_pyramid_rebuild(a.st, t.id, from, to, &blocks);
    if (rc < 0)
        fprintf(stderr, "gridsense: pyramid of %s not rebuilt: %s\n", t.id, err_str(rc));
    else
        printf("%s: pyramid rebuilt from %" PRId64 " blocks in %.1f s\n", t.id, blocks,
               (double)(time_mono_ns() - t0) / 1e9);
    store_close(a.st);
    return rc < 0 ? 1 : 0;
}
