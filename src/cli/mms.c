/* gridsense mms scl: the IEC 61850 model the MMS server publishes, as an SCL file (IEC 61850-6),
 * built from the provisioned terminals (src/ied; docs/iec61850.md "SCL"). Reads through a
 * read-only store connection, so it works while the server runs. */
#include "cli/cli.h"

#include "core/err.h"
#include "ied/ied.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
    fprintf(f,
            "Usage:\n"
            "  gridsense mms scl [--out FILE] [--ied-name NAME]\n"
            "\n"
            "Writes the IEC 61850 model of the MMS server as an SCL file (IEC 61850-6 Ed2.1: the\n"
            "IED with one logical device per provisioned terminal, their logical nodes and the\n"
            "DataTypeTemplates), consistent with what the server answers to GetNameList and\n"
            "GetVariableAccessAttributes. Works while the server runs.\n"
            "\n"
            "  --out FILE       where to write (default: - = stdout)\n"
            "  --ied-name NAME  the IED name (default: [mms] ied_name of the configuration, as the\n"
            "                   server uses it; GRIDSENSE without one)\n"
            "  --config FILE, --data DIR, --log-level L   as for every command\n"
            "Exit codes: 0 written, 1 failure (store, I/O), 2 usage.\n");
}

typedef struct {
    ied_terminal_t *t;
    size_t n, cap;
} tlist_t;

static int add_term(void *ud, const store_terminal_t *s)
{
    tlist_t *l = ud;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        ied_terminal_t *nt = realloc(l->t, nc * sizeof *nt);
        if (!nt)
            return GS_ENOMEM;
        l->t = nt;
        l->cap = nc;
    }
    ied_terminal_t *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", s->id);
    snprintf(t->name, sizeof t->name, "%s", s->name);
    t->nominal_hz = s->nominal_hz;
    t->vt_ratio = s->vt_ratio;
    t->ct_ratio = s->ct_ratio;
    t->declared_v = s->declared_v;
    return 0;
}

static int fwrite_cb(void *ud, const char *s, size_t n)
{
    return fwrite(s, 1, n, (FILE *)ud) == n ? 0 : GS_EIO;
}

int cmd_mms(int argc, char **argv)
{
    static const char *const valopts[] = {"--out", "--ied-name", NULL};
    const char *v[2] = {0};
    cli_admin_t a = {0};
    int rc = cli_admin_parse(&a, argc, argv, valopts, v, NULL, NULL, help);
    if (rc)
        return rc;
    if (a.npos != 1 || strcmp(a.pos[0], "scl") != 0) {
        fprintf(stderr, "gridsense: mms scl [--out FILE] (see gridsense mms --help)\n");
        return EXIT_USAGE;
    }
    ied_opts_t o;
    ied_opts_default(&o);
    snprintf(o.revision, sizeof o.revision, "%s", GS_VERSION);
    if (a.c.mms.ied_name[0]) /* the server's [mms] ied_name (config file), unless --ied-name */
        snprintf(o.ied_name, sizeof o.ied_name, "%s", a.c.mms.ied_name);
    if (v[1]) {
        if (strlen(v[1]) >= sizeof o.ied_name) {
            fprintf(stderr, "gridsense: --ied-name: at most %zu characters\n",
                    sizeof o.ied_name - 1);
            return EXIT_USAGE;
        }
        snprintf(o.ied_name, sizeof o.ied_name, "%s", v[1]);
    }
    char err[1024];
    ied_t *m = NULL;
    if (ied_new(&o, &m, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        return EXIT_USAGE;
    }
    store_opts_t so = {
        .reader_only = 1, .busy_timeout_ms = 5000, .url = a.c.store_pg ? a.c.store_url : NULL};
    store_t *st = NULL;
    tlist_t l = {0};
    int exit_code = 1;
    FILE *f = NULL;
    char tmp[1200] = "";
    if (store_open(a.c.data_dir, &so, &st, err, sizeof err) < 0) {
        fprintf(stderr, "gridsense: %s\n", err);
        goto done;
    }
    if ((rc = store_terminal_list(st, add_term, &l)) < 0) {
        fprintf(stderr, "gridsense: cannot list terminals: %s\n", err_str(rc));
        goto done;
    }
    if ((rc = ied_set_terminals(m, l.t, l.n, 0)) < 0) {
        fprintf(stderr, "gridsense: %s\n", err_str(rc));
        goto done;
    }
    if (ied_ld_count(m) != l.n)
        fprintf(stderr,
                "gridsense: warning: %zu terminal(s) have no logical device (domain name "
                "longer than 64 characters, docs/iec61850.md)\n",
                l.n - ied_ld_count(m));
    int to_stdout = !v[0] || strcmp(v[0], "-") == 0;
    if (to_stdout) {
        f = stdout;
    } else {
        snprintf(tmp, sizeof tmp, "%s.part", v[0]);
        f = fopen(tmp, "wb");
        if (!f) {
            fprintf(stderr, "gridsense: cannot write %s: %s\n", tmp, strerror(errno));
            goto done;
        }
    }
    rc = ied_scl_write(m, fwrite_cb, f);
    if (!to_stdout) {
        if (fclose(f) != 0 && rc == 0)
            rc = GS_EIO;
        f = NULL;
        if (rc == 0 && rename(tmp, v[0]) != 0)
            rc = GS_EIO;
        if (rc < 0)
            remove(tmp);
    } else if (fflush(stdout) != 0 && rc == 0) {
        rc = GS_EIO;
    }
    if (rc < 0) {
        fprintf(stderr, "gridsense: cannot write the SCL: %s\n", err_str(rc));
        goto done;
    }
    exit_code = 0;
done:
    free(l.t);
    if (st)
        store_close(st);
    ied_free(m);
    return exit_code;
}
