/* The MMS server's file provider (ied_set_file_ops; docs/iec61850.md "Server", "Disturbance
 * records"): each stored voltage event's waveform as a COMTRADE record (C37.111-2013, binary,
 * primary side, from the event's start - 0.5 s to its end + 1 s, trigger at the start: what
 * `gridsense export comtrade ID --event N` writes), in a directory per terminal:
 *
 *   ""                     the provisioned terminals, one directory each (name = terminal id)
 *   "ID"                   the terminal's events, newest first: "ID/EV<n>.cfg", "ID/EV<n>.dat"
 *                          (n = the event id of GET /api/v1/events)
 *
 * Runs on the MMS thread (inside ied_confirmed), on its read-only store connection. A record is
 * built when a file of it is opened or first listed (its sizes are kept, so a directory page
 * lists real sizes), in memory, bounded by MMSD_FILE_MAX. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hmap.h"
#include "export/export.h"
#include "ied/ied.h"
#include "mmsd/mmsd_int.h"

#define EV_PRE_NS  500000000LL  /* as gridsense export --event and the event waveform API */
#define EV_POST_NS 1000000000LL
#define SIZE_CACHE_MAX 100000   /* event ids whose record sizes are kept */

typedef struct {
    uint64_t cfg, dat;
} sizes_t;

typedef struct {
    buf_t data;
    size_t pos;
} fh_t;

/* "ID/EV<n>.cfg|dat" -> id (into tid), n, is_cfg. Returns 0 or GS_ENOTFOUND. */
static int parse_name(const char *name, char *tid, size_t cap, int64_t *ev, int *is_cfg)
{
    const char *slash = strchr(name, '/');
    if (!slash || (size_t)(slash - name) >= cap || slash == name)
        return GS_ENOTFOUND;
    memcpy(tid, name, (size_t)(slash - name));
    tid[slash - name] = 0;
    const char *p = slash + 1;
    if (strncmp(p, "EV", 2) != 0)
        return GS_ENOTFOUND;
    char *end;
    long long n = strtoll(p + 2, &end, 10);
    if (n <= 0 || end == p + 2 || (strcmp(end, ".cfg") != 0 && strcmp(end, ".dat") != 0))
        return GS_ENOTFOUND;
    *ev = n;
    *is_cfg = strcmp(end, ".cfg") == 0;
    return 0;
}

/* Builds the record of event ev of terminal tid: the .dat into dat, the .cfg into cfg. */
static int build(mmsd_t *m, const char *tid, int64_t ev, buf_t *cfg, buf_t *dat)
{
    store_t *st = mmsd__store(m);
    store_pq_event_t e;
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = tid, .ft = COMTRADE_BINARY,
                       .rev_year = 2013, .container = EXPORT_PLAIN};
    export_t *ex = NULL;
    char err[256], hdr[64];
    buf_t h = {0};
    int rc = store_pq_event_get(st, ev, &e);
    if (rc < 0)
        return rc == GS_ENOTFOUND ? GS_ENOTFOUND : rc;
    if (strcmp(e.terminal_id, tid) != 0)
        return GS_ENOTFOUND;
    o.from_ns = e.start_ns - EV_PRE_NS;
    o.to_ns = e.start_ns + (e.duration_ns > 0 ? e.duration_ns : 0) + EV_POST_NS;
    o.trigger_ns = e.start_ns;
    snprintf(hdr, sizeof hdr, "event: %" PRId64, ev);
    o.hdr = hdr;
    if ((rc = export_open(st, &o, &ex, err, sizeof err)) < 0)
        goto done;
    if (export_empty(ex)) { /* no waveform kept for it (retention) */
        rc = GS_ENOTFOUND;
        goto done;
    }
    while ((rc = export_next(ex, dat, err, sizeof err)) == 1)
        if (dat->len > MMSD_FILE_MAX) {
            rc = GS_ELIMIT;
            goto done;
        }
    if (rc == 0)
        rc = export_cfg(ex, cfg, &h, err, sizeof err);
done:
    if (rc < 0 && rc != GS_ENOTFOUND)
        log_limited(LOG_WARN, "mms-files", "mms: COMTRADE of event %" PRId64 " not built: %s", ev,
                    rc == GS_ELIMIT ? "above the size limit" : err);
    buf_free(&h);
    export_free(ex);
    return rc < 0 ? rc : 0;
}

/* Records built for one directory page at most: each costs an export of its window on the MMS
 * thread, so a page of a terminal with many unlisted events ends early (moreFollows) instead
 * of holding the thread for seconds; the client's next page builds the next ones. */
#define BUILDS_PER_PAGE 16

/* The sizes of event ev's record (built once, then kept); *built set when it was built now. */
static int sizes_of(mmsd_t *m, const char *tid, int64_t ev, sizes_t *out, int *built)
{
    hmap_t *cache = mmsd__size_cache(m);
    char key[32];
    snprintf(key, sizeof key, "%" PRId64, ev);
    sizes_t *s = hmap_get(cache, key);
    if (s) {
        *out = *s;
        return 0;
    }
    buf_t cfg = {0}, dat = {0};
    int rc = build(m, tid, ev, &cfg, &dat);
    if (built)
        (*built)++;
    if (rc == 0) {
        out->cfg = cfg.len;
        out->dat = dat.len;
        if (cache->count < SIZE_CACHE_MAX && (s = malloc(sizeof *s))) {
            *s = *out;
            hmap_put(cache, key, s);
        }
    }
    buf_free(&cfg);
    buf_free(&dat);
    return rc;
}

typedef struct {
    mmsd_t *m;
    const char *after; /* list from after this terminal id */
    bool past;         /* after reached */
    ied_file_info_t *out;
    size_t max, n;
    bool more;
} tl_t;

static int term_cb(void *ud, const store_terminal_t *t)
{
    tl_t *x = ud;
    if (x->after && !x->past) {
        if (strcmp(t->id, x->after) == 0)
            x->past = true;
        return 0;
    }
    if (x->n == x->max) {
        x->more = true;
        return 1;
    }
    ied_file_info_t *f = &x->out[x->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", t->id);
    return 0;
}

typedef struct {
    int64_t ids[2048];
    int64_t start[2048];
    int n;
} evl_t;

static int ev_cb(void *ud, const store_pq_event_ack_t *e)
{
    evl_t *x = ud;
    if (x->n < 2048) {
        x->ids[x->n] = e->e.id;
        x->start[x->n++] = e->e.start_ns;
    }
    return 0;
}

static int f_list(void *ud, const char *dir, const char *after, ied_file_info_t *out,
                  size_t max, bool *more)
{
    mmsd_t *m = ud;
    store_t *st = mmsd__store(m);
    *more = false;
    if (!dir[0]) { /* the top: a directory per terminal */
        tl_t x = {m, after, false, out, max, 0, false};
        int rc = store_terminal_list(st, term_cb, &x);
        if (rc < 0 && rc != 1)
            return rc;
        *more = x.more;
        return (int)x.n;
    }
    char tid[GSTP_MAX_ID + 1];
    int64_t ev;
    int is_cfg;
    if (strchr(dir, '/')) { /* a file: its own entry */
        sizes_t sz;
        if (parse_name(dir, tid, sizeof tid, &ev, &is_cfg) < 0 || max == 0)
            return GS_ENOTFOUND;
        int rc = sizes_of(m, tid, ev, &sz, NULL);
        if (rc < 0)
            return rc;
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", dir);
        out->size = is_cfg ? sz.cfg : sz.dat;
        return 1;
    }
    store_terminal_t t;
    if (store_terminal_info(st, dir, &t) < 0)
        return GS_ENOTFOUND;
    /* events newest first; `after` names the last entry of the previous page: after an
     * event's .cfg comes its .dat, after its .dat the next older event */
    static evl_t evs;
    evs.n = 0;
    int64_t before = 0;
    bool dat_first = false;
    if (after && after[0]) {
        if (parse_name(after, tid, sizeof tid, &ev, &is_cfg) < 0 || strcmp(tid, dir) != 0)
            return GS_ENOTFOUND;
        before = ev;
        if (is_cfg) {
            store_pq_event_t e;
            if (store_pq_event_get(st, ev, &e) < 0)
                return GS_ENOTFOUND;
            dat_first = true;
            evs.ids[0] = ev;
            evs.start[0] = e.start_ns;
            evs.n = 1;
        }
    }
    int limit = (int)(max / 2 + 2);
    if (limit > 1000)
        limit = 1000;
    store_pq_event_filter_t f = {.terminal_id = dir, .from_ns = INT64_MIN, .to_ns = INT64_MAX,
                                 .acked = -1, .before_id = before, .limit = limit};
    int rc = store_pq_event_query(st, &f, ev_cb, &evs);
    if (rc < 0 && rc != GS_ENOTFOUND)
        return rc;
    bool cut = evs.n - (dat_first ? 1 : 0) >= limit;
    size_t n = 0;
    int built = 0;
    for (int i = 0; i < evs.n; i++) {
        sizes_t sz;
        if (built >= BUILDS_PER_PAGE && n > 0) {
            *more = true;
            return (int)n;
        }
        if (sizes_of(m, dir, evs.ids[i], &sz, &built) < 0)
            continue; /* no waveform for it (retention, or not stored yet): not listed */
        for (int k = (i == 0 && dat_first) ? 1 : 0; k < 2; k++) {
            if (n == max) {
                *more = true;
                return (int)n;
            }
            ied_file_info_t *o = &out[n++];
            memset(o, 0, sizeof *o);
            snprintf(o->name, sizeof o->name, "%s/EV%" PRId64 ".%s", dir, evs.ids[i],
                     k == 0 ? "cfg" : "dat");
            o->size = k == 0 ? sz.cfg : sz.dat;
            o->mtime_ns = evs.start[i];
        }
    }
    *more = cut && n > 0;
    return (int)n;
}

static int f_open(void *ud, const char *name, void **h, ied_file_info_t *info)
{
    mmsd_t *m = ud;
    char tid[GSTP_MAX_ID + 1];
    int64_t ev;
    int is_cfg;
    if (parse_name(name, tid, sizeof tid, &ev, &is_cfg) < 0)
        return GS_ENOTFOUND;
    buf_t cfg = {0}, dat = {0};
    int rc = build(m, tid, ev, &cfg, &dat);
    if (rc < 0) {
        buf_free(&cfg);
        buf_free(&dat);
        return rc;
    }
    fh_t *f = calloc(1, sizeof *f);
    if (!f) {
        buf_free(&cfg);
        buf_free(&dat);
        return GS_ENOMEM;
    }
    f->data = is_cfg ? cfg : dat;
    buf_free(is_cfg ? &dat : &cfg);
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->size = f->data.len;
    *h = f;
    return 0;
}

static int f_read(void *ud, void *h, uint8_t *buf, size_t cap)
{
    fh_t *f = h;
    (void)ud;
    size_t n = f->data.len - f->pos;
    if (n > cap)
        n = cap;
    if (n > (size_t)INT32_MAX)
        n = INT32_MAX;
    memcpy(buf, f->data.data + f->pos, n);
    f->pos += n;
    return (int)n;
}

static void f_close(void *ud, void *h)
{
    fh_t *f = h;
    (void)ud;
    buf_free(&f->data);
    free(f);
}

const ied_file_ops_t mmsd__file_ops = {f_list, f_open, f_read, f_close};
