/* The MMS server's file provider: COMTRADE records of the stored voltage events, rendered off
 * the MMS loop and served from memory (files.h; docs/iec61850.md "Files"). */
#include "mmsd/files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "export/export.h"
#include "store/store.h"

/* ---- the cache ------------------------------------------------------------------------------ */

#define NFILES 3
static const char *const EXT[NFILES] = {".cfg", ".dat", ".hdr"};

typedef struct {
    char dir[72];   /* the LD's domain name (<= 64) */
    char base[112]; /* mmsd_files_basename */
    int64_t id, start_ns, mtime_ns;
    uint8_t *data[NFILES];
    size_t len[NFILES];
    int refs; /* 1 while in the cache + one per open handle */
} frec_t;

struct mmsd_fcache {
    int per_dir;
    size_t max_bytes;
    frec_t **v; /* sorted by (dir, base): the listing order */
    size_t n, cap;
    size_t bytes;
};

typedef struct {
    frec_t *r;
    int which;
    size_t pos;
} fh_t;

static size_t rec_bytes(const frec_t *r)
{
    return r->len[0] + r->len[1] + r->len[2];
}

static void rec_unref(frec_t *r)
{
    if (--r->refs > 0)
        return;
    for (int i = 0; i < NFILES; i++)
        free(r->data[i]);
    free(r);
}

mmsd_fcache_t *mmsd_fcache_new(int per_dir, size_t max_bytes)
{
    mmsd_fcache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->per_dir = per_dir > 0 ? per_dir : 1;
    c->max_bytes = max_bytes ? max_bytes : 1;
    return c;
}

void mmsd_fcache_free(mmsd_fcache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        rec_unref(c->v[i]);
    free(c->v);
    free(c);
}

void mmsd_files_basename(int64_t event_id, const char *kind, int64_t start_ns, char *out,
                         size_t cap)
{
    char k[16];
    size_t n = 0;
    for (const char *p = kind ? kind : ""; *p && n < sizeof k - 1; p++) {
        char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            k[n++] = ch;
    }
    k[n] = 0;
    int64_t s = start_ns >= 0 ? start_ns / 1000000000 : (start_ns - 999999999) / 1000000000;
    int ms = (int)((start_ns - s * 1000000000) / 1000000);
    time_t t = (time_t)s;
    struct tm tm;
    char ts[32] = "19700101_000000";
    if (gmtime_r(&t, &tm))
        strftime(ts, sizeof ts, "%Y%m%d_%H%M%S", &tm);
    snprintf(out, cap, "%s_%03d_E%lld_%s", ts, ms, (long long)event_id, n ? k : "event");
}

static int key_cmp(const char *dir, const char *base, const frec_t *r)
{
    int c = strcmp(dir, r->dir);
    return c ? c : strcmp(base, r->base);
}

/* Index of the first record >= (dir, base). */
static size_t lower(const mmsd_fcache_t *c, const char *dir, const char *base)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(dir, base, c->v[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void remove_at(mmsd_fcache_t *c, size_t i)
{
    frec_t *r = c->v[i];
    c->bytes -= rec_bytes(r);
    memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof c->v[0]);
    c->n--;
    rec_unref(r);
}

/* Older = earlier start, then lower id: what the caps evict first. */
static bool older(int64_t s1, int64_t id1, int64_t s2, int64_t id2)
{
    return s1 < s2 || (s1 == s2 && id1 < id2);
}

/* Index of the oldest record (of dir, or of all when dir is NULL), or SIZE_MAX; *count: how many. */
static size_t oldest(const mmsd_fcache_t *c, const char *dir, size_t *count)
{
    size_t best = SIZE_MAX, n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const frec_t *r = c->v[i];
        if (dir && strcmp(r->dir, dir) != 0)
            continue;
        n++;
        if (best == SIZE_MAX ||
            older(r->start_ns, r->id, c->v[best]->start_ns, c->v[best]->id))
            best = i;
    }
    if (count)
        *count = n;
    return best;
}

static size_t find_id(const mmsd_fcache_t *c, int64_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i]->id == id)
            return i;
    return SIZE_MAX;
}

size_t mmsd_fcache_ids(const mmsd_fcache_t *c, int64_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n && n < max; i++)
        out[n++] = c->v[i]->id;
    return n;
}

bool mmsd_fcache_remove(mmsd_fcache_t *c, int64_t id)
{
    size_t i = find_id(c, id);
    if (i == SIZE_MAX)
        return false;
    remove_at(c, i);
    return true;
}

bool mmsd_fcache_has(const mmsd_fcache_t *c, int64_t id)
{
    return find_id(c, id) != SIZE_MAX;
}

size_t mmsd_fcache_bytes(const mmsd_fcache_t *c)
{
    return c->bytes;
}

size_t mmsd_fcache_count(const mmsd_fcache_t *c)
{
    return c->n;
}

int mmsd_fcache_put(mmsd_fcache_t *c, mmsd_frecord_t *in)
{
    frec_t *r = NULL;
    int rc;
    uint8_t *data[NFILES] = {in->cfg, in->dat, in->hdr};
    size_t len[NFILES] = {in->cfg_len, in->dat_len, in->hdr_len};
    in->cfg = in->dat = in->hdr = NULL;
    size_t total = len[0] + len[1] + len[2];
    if (!in->dir || !in->dir[0] || strlen(in->dir) > 64 || strchr(in->dir, '/')) {
        rc = GS_EINVAL;
        goto fail;
    }
    if (total > c->max_bytes) {
        rc = GS_ELIMIT;
        goto fail;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        rc = GS_ENOMEM;
        goto fail;
    }
    snprintf(r->dir, sizeof r->dir, "%s", in->dir);
    mmsd_files_basename(in->event_id, in->kind, in->start_ns, r->base, sizeof r->base);
    r->id = in->event_id;
    r->start_ns = in->start_ns;
    r->mtime_ns = in->mtime_ns;
    r->refs = 1;
    for (int i = 0; i < NFILES; i++) {
        r->data[i] = data[i];
        r->len[i] = len[i];
        data[i] = NULL;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        frec_t **v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            rc = GS_ENOMEM;
            goto fail;
        }
        c->v = v;
        c->cap = cap;
    }
    size_t i = find_id(c, r->id); /* a re-render replaces */
    if (i != SIZE_MAX)
        remove_at(c, i);
    /* caps: evict the oldest while the new record is newer than it; else the new one goes */
    size_t count;
    while ((i = oldest(c, r->dir, &count)) != SIZE_MAX && count >= (size_t)c->per_dir) {
        if (older(r->start_ns, r->id, c->v[i]->start_ns, c->v[i]->id)) {
            rc = GS_ELIMIT;
            goto fail;
        }
        remove_at(c, i);
    }
    while (c->bytes + total > c->max_bytes && (i = oldest(c, NULL, NULL)) != SIZE_MAX) {
        if (older(r->start_ns, r->id, c->v[i]->start_ns, c->v[i]->id)) {
            rc = GS_ELIMIT;
            goto fail;
        }
        remove_at(c, i);
    }
    i = lower(c, r->dir, r->base);
    memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof c->v[0]);
    c->v[i] = r;
    c->n++;
    c->bytes += total;
    return 0;
fail:
    if (r)
        rec_unref(r);
    for (int k = 0; k < NFILES; k++)
        free(data[k]);
    return rc;
}

/* Whether a record of (dir, start, id) would be kept now (the renderer skips the others). */
static bool fcache_wants(const mmsd_fcache_t *c, const char *dir, int64_t id, int64_t start_ns)
{
    size_t count, i = oldest(c, dir, &count);
    if (i != SIZE_MAX && count >= (size_t)c->per_dir &&
        older(start_ns, id, c->v[i]->start_ns, c->v[i]->id))
        return false;
    i = oldest(c, NULL, NULL);
    if (i != SIZE_MAX && c->bytes >= c->max_bytes &&
        older(start_ns, id, c->v[i]->start_ns, c->v[i]->id))
        return false;
    return true;
}

static void fill_info(const frec_t *r, int which, ied_file_info_t *fi)
{
    memset(fi, 0, sizeof *fi);
    snprintf(fi->name, sizeof fi->name, "%s/%s%s", r->dir, r->base, EXT[which]);
    fi->size = r->len[which];
    fi->mtime_ns = r->mtime_ns;
}

/* Splits "DIR/BASE.ext" into the record and the file index; false when no such file. */
static bool lookup(const mmsd_fcache_t *c, const char *name, frec_t **r, int *which)
{
    const char *slash = strchr(name, '/');
    char dir[72], base[112];
    if (!slash || (size_t)(slash - name) >= sizeof dir || strchr(slash + 1, '/'))
        return false;
    memcpy(dir, name, (size_t)(slash - name));
    dir[slash - name] = 0;
    size_t fl = strlen(slash + 1);
    if (fl <= 4 || fl - 4 >= sizeof base)
        return false;
    for (int k = 0; k < NFILES; k++) {
        if (strcmp(slash + 1 + fl - 4, EXT[k]) != 0)
            continue;
        memcpy(base, slash + 1, fl - 4);
        base[fl - 4] = 0;
        size_t i = lower(c, dir, base);
        if (i < c->n && key_cmp(dir, base, c->v[i]) == 0) {
            *r = c->v[i];
            *which = k;
            return true;
        }
    }
    return false;
}

static int fc_list(void *ud, const char *dir, const char *after, ied_file_info_t *out, size_t max,
                   bool *more)
{
    mmsd_fcache_t *c = ud;
    char d[IED_FILE_NAME_MAX + 1], a[IED_FILE_NAME_MAX + 2];
    size_t n = 0;
    *more = false;
    snprintf(d, sizeof d, "%s", dir ? dir : "");
    size_t dl = strlen(d);
    if (dl && d[dl - 1] == '/') /* "DIR/" names the directory too */
        d[--dl] = 0;
    if (!d[0]) {
        /* the top: one directory per LD holding records, in name order */
        const char *prev = NULL;
        for (size_t i = 0; i < c->n; i++) {
            const frec_t *r = c->v[i];
            if (prev && strcmp(prev, r->dir) == 0)
                continue;
            prev = r->dir;
            if (after && strcmp(r->dir, after) <= 0)
                continue;
            if (n == max) {
                *more = true;
                break;
            }
            memset(&out[n], 0, sizeof out[n]);
            snprintf(out[n].name, sizeof out[n].name, "%s", r->dir);
            n++;
        }
        return (int)n;
    }
    frec_t *r;
    int which;
    if (lookup(c, d, &r, &which)) { /* a file: its own entry */
        if (max == 0)
            return 0;
        fill_info(r, which, &out[0]);
        return 1;
    }
    size_t i = lower(c, d, "");
    if (i >= c->n || strcmp(c->v[i]->dir, d) != 0)
        return GS_ENOTFOUND;
    /* continueAfter: the last entry's full name ("DIR/file"); a bare file name is taken as in
     * this directory */
    a[0] = 0;
    if (after)
        snprintf(a, sizeof a, "%s%s%s", strchr(after, '/') ? "" : d, strchr(after, '/') ? "" : "/",
                 after);
    for (; i < c->n && strcmp(c->v[i]->dir, d) == 0; i++) {
        for (int k = 0; k < NFILES; k++) {
            ied_file_info_t fi;
            fill_info(c->v[i], k, &fi);
            if (a[0] && strcmp(fi.name, a) <= 0)
                continue;
            if (n == max) {
                *more = true;
                return (int)n;
            }
            out[n++] = fi;
        }
    }
    return (int)n;
}

static int fc_open(void *ud, const char *name, void **h, ied_file_info_t *info)
{
    mmsd_fcache_t *c = ud;
    frec_t *r;
    int which;
    if (!lookup(c, name, &r, &which))
        return GS_ENOTFOUND;
    fh_t *f = calloc(1, sizeof *f);
    if (!f)
        return GS_ENOMEM;
    f->r = r;
    f->which = which;
    r->refs++; /* readable until closed, even if evicted meanwhile */
    fill_info(r, which, info);
    *h = f;
    return 0;
}

static int fc_read(void *ud, void *h, uint8_t *buf, size_t cap)
{
    (void)ud;
    fh_t *f = h;
    size_t len = f->r->len[f->which];
    size_t n = len - f->pos < cap ? len - f->pos : cap;
    if (n > INT32_MAX)
        n = INT32_MAX;
    if (n)
        memcpy(buf, f->r->data[f->which] + f->pos, n);
    f->pos += n;
    return (int)n;
}

static void fc_close(void *ud, void *h)
{
    (void)ud;
    fh_t *f = h;
    rec_unref(f->r);
    free(f);
}

void mmsd_fcache_ops(ied_file_ops_t *ops)
{
    ops->list = fc_list;
    ops->open = fc_open;
    ops->read = fc_read;
    ops->close = fc_close;
}

/* ---- the renderer ----------------------------------------------------------------------------- */

#define MAX_PENDING 50000

enum { JOB_STARTUP = 1, JOB_EVENT, JOB_SWEEP };

typedef struct {
    char tid[STORE_ID_MAX + 1];
    int64_t id, start_ns;
} evref_t;

typedef struct job {
    uv_work_t w;
    struct job *next;
    mmsd_files_t *f;
    int kind;
    char tid[STORE_ID_MAX + 1];
    int64_t id;
    int64_t start_hint; /* the event's start when known, else INT64_MAX */
    int64_t due_ns;     /* mono */
    /* results (work function) */
    int rc;
    char err[256];
    bool complete;
    int64_t window_end_ns;
    int64_t work_ns; /* how long the work function took (debug log) */
    int late_tries;  /* retries after the window's end + MMSD_FILES_AFTER_NS */
    store_pq_event_t ev;
    buf_t cfg, dat, hdr;
    evref_t *list;
    size_t n_list, cap_list;
} job_t;

struct mmsd_files {
    uv_loop_t *loop;
    ied_t *ied;
    char ied_name[33];
    char data_dir[512], store_url[1024];
    mmsd_fcache_t *cache;
    store_t *st; /* the render jobs' read-only connection: used by the job in flight only */
    job_t *pending, *tail; /* by due time */
    size_t n_pending;
    job_t *running;
    uv_timer_t timer;
    bool stopping;
    int64_t next_sweep_ns; /* mono */
    uint64_t rendered, dropped;
};

static void job_reset(job_t *j)
{
    buf_free(&j->cfg);
    buf_free(&j->dat);
    buf_free(&j->hdr);
    free(j->list);
    j->list = NULL;
    j->n_list = j->cap_list = 0;
    j->rc = 0;
    j->err[0] = 0;
    j->complete = false;
}

static void job_free(job_t *j)
{
    job_reset(j);
    free(j);
}

/* The LD's domain name (docs/iec61850.md "Names": ied_name + the escaped id), or -1 when the
 * terminal has no LD (an id outside the alphabet, a name above 64 characters). */
static int domain_of(const char *ied_name, const char *id, char *out, size_t cap)
{
    size_t n = strlen(ied_name);
    if (n >= cap || !id[0])
        return -1;
    memcpy(out, ied_name, n);
    for (const char *p = id; *p; p++) {
        char e = 0, ch = *p;
        if (ch == '-')
            e = 'M';
        else if (ch == '.')
            e = 'D';
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return -1;
        if (n + (e ? 2 : 1) >= cap || n + (e ? 2 : 1) > 64)
            return -1;
        if (e) {
            out[n++] = '_';
            out[n++] = e;
        } else {
            out[n++] = ch;
        }
    }
    out[n] = 0;
    return 0;
}

static void enqueue(mmsd_files_t *f, job_t *j)
{
    job_t **p = &f->pending;
    if (f->tail && f->tail->due_ns <= j->due_ns) /* the common case: no walk (the startup pass
                                                    queues thousands due now) */
        p = &f->tail->next;
    while (*p && (*p)->due_ns <= j->due_ns)
        p = &(*p)->next;
    j->next = *p;
    *p = j;
    if (!j->next)
        f->tail = j;
    f->n_pending++;
}

static void kick(mmsd_files_t *f);

static void on_timer(uv_timer_t *t)
{
    kick(t->data);
}

static int open_store(mmsd_files_t *f, char *err, size_t errlen)
{
    if (f->st)
        return 0;
    store_opts_t ro = {.reader_only = 1, .busy_timeout_ms = 5000,
                       .url = f->store_url[0] ? f->store_url : NULL};
    return store_open(f->data_dir, &ro, &f->st, err, errlen);
}

static int collect_term(void *ud, const store_terminal_t *t)
{
    job_t *j = ud;
    if (j->n_list == j->cap_list) {
        size_t cap = j->cap_list ? j->cap_list * 2 : 64;
        evref_t *v = realloc(j->list, cap * sizeof *v);
        if (!v)
            return GS_ENOMEM;
        j->list = v;
        j->cap_list = cap;
    }
    memset(&j->list[j->n_list], 0, sizeof j->list[0]);
    snprintf(j->list[j->n_list].tid, sizeof j->list[0].tid, "%s", t->id);
    j->n_list++;
    return 0;
}

static int collect_ev(void *ud, const store_pq_event_t *e)
{
    job_t *j = ud;
    if (j->n_list == j->cap_list) {
        size_t cap = j->cap_list * 2;
        evref_t *v = realloc(j->list, cap * sizeof *v);
        if (!v)
            return GS_ENOMEM;
        j->list = v;
        j->cap_list = cap;
    }
    snprintf(j->list[j->n_list].tid, sizeof j->list[0].tid, "%s", e->terminal_id);
    j->list[j->n_list].id = e->id;
    j->list[j->n_list].start_ns = e->start_ns;
    j->n_list++;
    return 0;
}

/* Pool thread: the startup pass's event list (the newest MMSD_FILES_PER_DIR of each terminal). */
static void work_startup(job_t *j)
{
    mmsd_files_t *f = j->f;
    if ((j->rc = open_store(f, j->err, sizeof j->err)) < 0)
        return;
    if ((j->rc = store_terminal_list(f->st, collect_term, j)) < 0)
        return;
    size_t nterm = j->n_list;
    evref_t *terms = j->list;
    j->list = NULL;
    j->n_list = j->cap_list = 0;
    if (nterm) {
        j->list = malloc(64 * sizeof *j->list);
        j->cap_list = j->list ? 64 : 0;
    }
    for (size_t i = 0; i < nterm && j->rc == 0 && j->list; i++)
        j->rc = store_pq_event_list(f->st, terms[i].tid, INT64_MIN, INT64_MAX, MMSD_FILES_PER_DIR,
                                    collect_ev, j);
    if (nterm && !j->list)
        j->rc = GS_ENOMEM;
    free(terms);
}

/* Pool thread: one event's record, as `gridsense export comtrade ID --event EVENT` writes it. */
static void work_event(job_t *j)
{
    mmsd_files_t *f = j->f;
    export_t *ex = NULL;
    char hdr[160];
    if ((j->rc = open_store(f, j->err, sizeof j->err)) < 0)
        return;
    if ((j->rc = store_pq_event_get(f->st, j->id, &j->ev)) < 0)
        return;
    if (strcmp(j->ev.terminal_id, j->tid) != 0) {
        j->rc = GS_ENOTFOUND;
        return;
    }
    int64_t dur = j->ev.duration_ns > 0 ? j->ev.duration_ns : 0;
    export_opts_t o = {.what = EXPORT_COMTRADE, .terminal_id = j->ev.terminal_id,
                       .from_ns = j->ev.start_ns - MMSD_FILES_PRE_NS,
                       .to_ns = j->ev.start_ns + dur + MMSD_FILES_POST_NS,
                       .side = EXPORT_PRIMARY, .ft = COMTRADE_BINARY, .rev_year = 2013,
                       .container = EXPORT_PLAIN, .trigger_ns = j->ev.start_ns};
    snprintf(hdr, sizeof hdr, "event: %lld (%s), trigger = its start", (long long)j->id,
             j->ev.kind);
    o.hdr = hdr;
    j->window_end_ns = o.to_ns;
    if ((j->rc = export_open(f->st, &o, &ex, j->err, sizeof j->err)) < 0)
        return;
    if (export_empty(ex)) {
        j->rc = GS_ENOTFOUND;
        snprintf(j->err, sizeof j->err, "nothing stored in the event's window");
        goto done;
    }
    int rc;
    while ((rc = export_next(ex, &j->dat, j->err, sizeof j->err)) == 1)
        if (j->dat.len > MMSD_FILES_MAX_RECORD) {
            rc = GS_ELIMIT;
            snprintf(j->err, sizeof j->err, "the record exceeds %u bytes", MMSD_FILES_MAX_RECORD);
            break;
        }
    if (rc < 0) {
        j->rc = rc;
        goto done;
    }
    if ((j->rc = export_cfg(ex, &j->cfg, &j->hdr, j->err, sizeof j->err)) < 0)
        goto done;
    /* complete: the samples reach the window's end (the last sample within 1.5 periods of it) */
    export_stats_t s;
    export_stats(ex, &s);
    int64_t period = s.samples > 1 ? (s.last_ns - s.first_ns) / (int64_t)(s.samples - 1) : 0;
    j->complete = s.samples > 1 && s.last_ns + period + period / 2 >= o.to_ns;
done:
    export_free(ex);
}

static int cmp_tid(const void *a, const void *b)
{
    return strcmp(((const evref_t *)a)->tid, ((const evref_t *)b)->tid);
}

/* Pool thread: which cached records lost their event or their terminal (deleted, retention of
 * events, terminal removed): their ids get start_ns = 1 in j->list. */
static void work_sweep(job_t *j)
{
    mmsd_files_t *f = j->f;
    job_t t = {0};
    if ((j->rc = open_store(f, j->err, sizeof j->err)) < 0)
        return;
    if ((j->rc = store_terminal_list(f->st, collect_term, &t)) < 0)
        goto done;
    if (t.n_list)
        qsort(t.list, t.n_list, sizeof t.list[0], cmp_tid);
    for (size_t i = 0; i < j->n_list; i++) {
        store_pq_event_t e;
        int rc = store_pq_event_get(f->st, j->list[i].id, &e);
        if (rc == GS_ENOTFOUND) {
            j->list[i].start_ns = 1;
            continue;
        }
        if (rc < 0) {
            j->rc = rc;
            goto done;
        }
        evref_t key;
        snprintf(key.tid, sizeof key.tid, "%s", e.terminal_id);
        if (!t.n_list || !bsearch(&key, t.list, t.n_list, sizeof t.list[0], cmp_tid))
            j->list[i].start_ns = 1;
    }
done:
    free(t.list);
}

static void on_work(uv_work_t *w)
{
    job_t *j = w->data;
    int64_t t0 = time_mono_ns();
    if (j->kind == JOB_STARTUP)
        work_startup(j);
    else if (j->kind == JOB_SWEEP)
        work_sweep(j);
    else
        work_event(j);
    j->work_ns = time_mono_ns() - t0;
}

static uint8_t *take(buf_t *b, size_t *len)
{
    uint8_t *p = (uint8_t *)b->data;
    *len = b->len;
    if (!p)
        p = malloc(1); /* an empty file still needs a non-NULL buffer to free */
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

static int cmp_newest(const void *a, const void *b)
{
    const evref_t *x = a, *y = b;
    return x->start_ns < y->start_ns ? 1 : x->start_ns > y->start_ns ? -1
           : x->id < y->id           ? 1
           : x->id > y->id           ? -1
                                     : 0;
}

static void queue_event(mmsd_files_t *f, const char *tid, int64_t id, int64_t start,
                        int64_t due)
{
    if (f->n_pending >= MAX_PENDING) {
        f->dropped++;
        log_limited(LOG_WARN, "mms-files", "mms: files: too many records waiting, event %lld "
                    "gets none", (long long)id);
        return;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->f = f;
    j->kind = JOB_EVENT;
    snprintf(j->tid, sizeof j->tid, "%s", tid);
    j->id = id;
    j->start_hint = start;
    j->due_ns = due;
    enqueue(f, j);
}

static void after_startup(mmsd_files_t *f, job_t *j)
{
    if (j->rc < 0) {
        log_warn(NULL, "mms: files: cannot list the stored events: %s%s%s", err_str(j->rc),
                 j->err[0] ? ": " : "", j->err);
        return;
    }
    /* newest first: under the caps the newest records are the ones kept */
    if (j->n_list)
        qsort(j->list, j->n_list, sizeof j->list[0], cmp_newest);
    int64_t now = time_mono_ns();
    for (size_t i = 0; i < j->n_list; i++)
        queue_event(f, j->list[i].tid, j->list[i].id, j->list[i].start_ns, now);
    log_info(NULL, "mms: files: rendering the records of %zu stored events", j->n_list);
}

static void after_event(mmsd_files_t *f, job_t *j)
{
    int64_t now_utc = time_utc_ns();
    bool settled = now_utc > j->window_end_ns + MMSD_FILES_SETTLE_NS;
    char dir[72];
    if (j->rc == GS_ENOTFOUND && j->window_end_ns && !settled) {
        /* nothing stored yet in the window (blocks in flight): try again */
    } else if (j->rc < 0) {
        if (j->rc != GS_ENOTFOUND)
            log_limited(LOG_WARN, "mms-files", "mms: files: no record for event %lld: %s%s%s",
                        (long long)j->id, err_str(j->rc), j->err[0] ? ": " : "", j->err);
        job_free(j);
        return;
    } else if (j->complete || settled) {
        if (domain_of(f->ied_name, j->ev.terminal_id, dir, sizeof dir) < 0) {
            job_free(j);
            return;
        }
        mmsd_frecord_t r = {.dir = dir, .event_id = j->id, .kind = j->ev.kind,
                            .start_ns = j->ev.start_ns, .mtime_ns = now_utc};
        r.cfg = take(&j->cfg, &r.cfg_len);
        r.dat = take(&j->dat, &r.dat_len);
        r.hdr = take(&j->hdr, &r.hdr_len);
        size_t bytes = r.cfg_len + r.dat_len + r.hdr_len;
        int rc = mmsd_fcache_put(f->cache, &r);
        log_debug(NULL, "mms: files: event %lld: %zu bytes rendered in %.1f ms (%s)%s",
                  (long long)j->id, bytes, (double)j->work_ns / 1e6,
                  j->complete ? "complete" : "as stored", rc == 0 ? "" : ", not kept (caps)");
        if (rc == 0)
            f->rendered++;
        else if (rc != GS_ELIMIT)
            log_limited(LOG_WARN, "mms-files", "mms: files: record of event %lld not kept: %s",
                        (long long)j->id, err_str(rc));
        job_free(j);
        return;
    }
    /* incomplete: the post-window's blocks may still be in flight */
    /* 0.5 s after the window's end; once that has passed, 0.5, 1, 2, 3, 3... s apart */
    int64_t wait = j->window_end_ns + MMSD_FILES_AFTER_NS - now_utc;
    if (wait < MMSD_FILES_RETRY_MIN_NS)
        wait = MMSD_FILES_RETRY_MIN_NS << (j->late_tries < 3 ? j->late_tries++ : 3);
    if (wait > MMSD_FILES_RETRY_MAX_NS)
        wait = MMSD_FILES_RETRY_MAX_NS;
    log_debug(NULL, "mms: files: event %lld: window not stored to its end yet, again in %lld ms",
              (long long)j->id, (long long)(wait / 1000000));
    job_reset(j);
    j->due_ns = time_mono_ns() + wait;
    enqueue(f, j);
}

static void on_after_work(uv_work_t *w, int status)
{
    job_t *j = w->data;
    mmsd_files_t *f = j->f;
    f->running = NULL;
    if (f->stopping || status < 0) {
        job_free(j);
        return;
    }
    if (j->kind == JOB_STARTUP) {
        after_startup(f, j);
        job_free(j);
    } else if (j->kind == JOB_SWEEP) {
        size_t gone = 0;
        for (size_t i = 0; j->rc == 0 && i < j->n_list; i++)
            if (j->list[i].start_ns == 1 && mmsd_fcache_remove(f->cache, j->list[i].id))
                gone++;
        if (gone)
            log_info(NULL, "mms: files: %zu records of deleted events or terminals removed", gone);
        job_free(j);
    } else {
        after_event(f, j);
    }
    kick(f);
}

/* Starts the next due job (one at a time: the store connection is the job's), or arms the
 * timer for it. */
static void kick(mmsd_files_t *f)
{
    if (f->stopping || f->running)
        return;
    int64_t now = time_mono_ns();
    while (f->pending && f->pending->due_ns <= now) {
        job_t *j = f->pending;
        f->pending = j->next;
        if (!f->pending)
            f->tail = NULL;
        f->n_pending--;
        j->next = NULL;
        if (j->kind == JOB_EVENT) {
            /* skip what the caps would not keep (the startup pass's older events) */
            char dir[72];
            if (domain_of(f->ied_name, j->tid, dir, sizeof dir) < 0 ||
                (!mmsd_fcache_has(f->cache, j->id) &&
                 !fcache_wants(f->cache, dir, j->id, j->start_hint))) {
                job_free(j);
                continue;
            }
        }
        j->w.data = j;
        if (uv_queue_work(f->loop, &j->w, on_work, on_after_work) < 0) {
            job_free(j);
            continue;
        }
        f->running = j;
        return;
    }
    /* the periodic check of the cached records against the store, when nothing else is due */
    if (now >= f->next_sweep_ns) {
        f->next_sweep_ns = now + MMSD_FILES_SWEEP_NS;
        size_t n = mmsd_fcache_count(f->cache);
        job_t *j = n ? calloc(1, sizeof *j) : NULL;
        int64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
        if (j && ids && (j->list = calloc(n, sizeof *j->list))) {
            n = mmsd_fcache_ids(f->cache, ids, n);
            for (size_t i = 0; i < n; i++)
                j->list[i].id = ids[i];
            j->n_list = j->cap_list = n;
            j->f = f;
            j->kind = JOB_SWEEP;
            j->w.data = j;
            if (uv_queue_work(f->loop, &j->w, on_work, on_after_work) == 0) {
                f->running = j;
                j = NULL;
            }
        }
        free(ids);
        if (j)
            job_free(j);
        if (f->running)
            return;
    }
    int64_t due = f->pending && f->pending->due_ns < f->next_sweep_ns ? f->pending->due_ns
                                                                       : f->next_sweep_ns;
    uv_timer_start(&f->timer, on_timer, (uint64_t)((due - now) / 1000000 + 1), 0);
}

int mmsd_files_start(uv_loop_t *loop, ied_t *ied, mms_assoc_cfg_t *acfg, const char *ied_name,
                     const char *data_dir, const char *store_url, size_t max_bytes,
                     mmsd_files_t **out)
{
    mmsd_files_t *f = calloc(1, sizeof *f);
    if (!f)
        return GS_ENOMEM;
    f->cache = mmsd_fcache_new(MMSD_FILES_PER_DIR, max_bytes);
    job_t *j = calloc(1, sizeof *j);
    if (!f->cache || !j) {
        mmsd_fcache_free(f->cache);
        free(j);
        free(f);
        return GS_ENOMEM;
    }
    f->loop = loop;
    f->ied = ied;
    snprintf(f->ied_name, sizeof f->ied_name, "%s", ied_name);
    snprintf(f->data_dir, sizeof f->data_dir, "%s", data_dir ? data_dir : ".");
    snprintf(f->store_url, sizeof f->store_url, "%s", store_url ? store_url : "");
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    ied_file_ops_t ops;
    mmsd_fcache_ops(&ops);
    ied_set_file_ops(ied, &ops, f->cache);
    /* ServiceSupportOptions (ISO 9506-2 7.2.1, bit 0 = the first octet's MSB): fileOpen 72,
     * fileRead 73, fileClose 74, fileDirectory 77 */
    acfg->services[9] |= 0x80 | 0x40 | 0x20 | 0x04;
    if (acfg->services_bits < 78)
        acfg->services_bits = 78;
    f->next_sweep_ns = time_mono_ns() + MMSD_FILES_SWEEP_NS;
    j->f = f;
    j->kind = JOB_STARTUP;
    j->due_ns = time_mono_ns();
    enqueue(f, j);
    kick(f);
    *out = f;
    return 0;
}

void mmsd_files_event(mmsd_files_t *f, const char *terminal_id, int64_t event_id)
{
    if (!f || f->stopping)
        return;
    queue_event(f, terminal_id, event_id, INT64_MAX, time_mono_ns());
    kick(f);
}

void mmsd_files_stop(mmsd_files_t *f)
{
    if (!f || f->stopping)
        return;
    f->stopping = true;
    uv_close((uv_handle_t *)&f->timer, NULL);
}

void mmsd_files_free(mmsd_files_t *f)
{
    if (!f)
        return;
    while (f->pending) {
        job_t *j = f->pending;
        f->pending = j->next;
        job_free(j);
    }
    if (f->running) /* (the loop ran until the job's after-work: not reached) */
        f->running = NULL;
    ied_set_file_ops(f->ied, NULL, NULL);
    mmsd_fcache_free(f->cache);
    store_close(f->st);
    free(f);
}
