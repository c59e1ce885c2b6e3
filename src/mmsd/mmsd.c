/* The MMS server: thread, loop, listener, connections, limits, model feeding, reports, metrics
 * (mmsd.h; docs/iec61850.md "Server"). */
#include "mmsd/mmsd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/xcall.h"
#include "iec61850/mms.h"
#include "ied/ied.h"
#include "mmsd/files.h" /* files: COMTRADE records (files.c) */

#define WHO NULL /* (log lines start with "mms: ") */


typedef struct conn conn_t;

typedef struct {
    _Atomic uint64_t connections_open, connections_total, connections_refused;
    _Atomic uint64_t assoc_ok, assoc_failed, auth_failures;
    _Atomic uint64_t pdus_in[14], pdus_out[14];
    _Atomic uint64_t malformed_in, protocol_errors, aborts_in, aborts_out;
    _Atomic uint64_t reports_sent, clients_cut, events_dropped;
    _Atomic uint64_t bytes_in, bytes_out, logical_devices;
} stats_t;

#define INC(m, f)    atomic_fetch_add_explicit(&(m)->st.f, 1, memory_order_relaxed)
#define ADD(m, f, n) atomic_fetch_add_explicit(&(m)->st.f, (uint64_t)(n), memory_order_relaxed)

struct mmsd {
    mmsd_opts_t o;
    char host[64], data_dir[512], store_url[1024], version[64];
    gw_t *gw;
    int (*event_json)(store_t *st, int64_t id, buf_t *out);
    mmsd_password_t pw[MMSD_MAX_PASSWORDS];
    int n_pw;
    mms_assoc_cfg_t acfg;

    /* MMS thread */
    uv_thread_t thread;
    uv_loop_t loop;
    int loop_ok;
    uv_sem_t started;
    int start_rc;
    char start_err[512];
    uv_tcp_t listener;
    uv_timer_t sweep;   /* 1 s: timeouts, terminal refresh */
    uv_timer_t reports; /* the next report due */
    xcall_t *calls;     /* onto the MMS loop; the main thread holds it */
    store_t *rd;        /* the MMS thread's read-only store connection */
    ied_t *ied;
    mmsd_files_t *files; /* files: the file provider (files.c) */
    conn_t *conns;
    int n_conns;
    int stopping;
    int64_t next_refresh_ns; /* mono */
    int port;

    /* handed over from other threads */
    uv_mutex_t lock;
    hmap_t latest; /* terminal id -> malloc'ed JSON (newest only) */
    int latest_posted;
    atomic_int refresh_posted;
    atomic_int events_pending;

    stats_t st;
};

struct conn {
    uv_tcp_t tcp;
    mmsd_t *m;
    conn_t *next, *prev;
    char addr[64];
    mms_assoc_t *as;
    ied_client_t *ic;
    size_t queued; /* bytes handed to uv_write and not completed */
    int64_t accepted_ns, last_io_ns, close_deadline_ns; /* mono */
    bool want_close, want_abort, closing, shutting, paused, associated;
    bool report_blocked; /* reports were due but the output queue had no room for one */
    uv_shutdown_t shut;
    const char *auth_name;
};

typedef struct {
    uv_write_t req;
    conn_t *c;
    size_t n;
    uint8_t data[];
} wreq_t;

/* log_limited source: one budget per kind of trouble and client address, so that one kind
 * (protocol errors) does not hide another (refusals, authentication failures) */
static const char *src(char *buf, size_t cap, const char *kind, const char *addr)
{
    snprintf(buf, cap, "mms-%s %s", kind, addr);
    return buf;
}

static size_t queue_max(const mmsd_t *m)
{
    return (size_t)m->o.queue_kb * 1024;
}

/* ---- options, passwords -------------------------------------------------------------------- */

void mmsd_opts_default(mmsd_opts_t *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->host, sizeof o->host, "127.0.0.1");
    o->port = 10102;
    o->max_connections = 32;
    o->max_per_address = 4;
    o->assoc_timeout_s = 10;
    o->idle_timeout_s = 300;
    o->queue_kb = 1024;
    o->max_pdu = 65000;
    o->refresh_s = 5;
    o->nice = 5;
    snprintf(o->ied_name, sizeof o->ied_name, "GRIDSENSE");
    o->files_max_mb = 64; /* files */
}

int mmsd_password_file_load(const char *path, mmsd_password_t *out, int max, char *err,
                            size_t errlen)
{
    struct stat sb;
    char line[512];
    int n = 0, lineno = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "[mms] password_file %s: %s", path, strerror(errno));
        return GS_ECONFIG;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(err, errlen, "[mms] password_file %s is not a regular file", path);
        return GS_ECONFIG;
    }
    if (sb.st_mode & 077) {
        close(fd);
        snprintf(err, errlen,
                 "[mms] password_file %s is readable by group/others (mode %03o): chmod 600 it",
                 path, (unsigned)(sb.st_mode & 0777));
        return GS_ECONFIG;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "[mms] password_file %s: %s", path, strerror(errno));
        return GS_ECONFIG;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "[mms] password_file %s:%d: line too long", path, lineno);
            goto fail;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        char *sp = p + strcspn(p, " \t");
        size_t nl = (size_t)(sp - p);
        if (!*sp || nl >= sizeof out[0].name) {
            snprintf(err, errlen, "[mms] password_file %s:%d: NAME PASSWORD expected", path,
                     lineno);
            goto fail;
        }
        *sp++ = 0;
        while (*sp == ' ' || *sp == '\t')
            sp++;
        size_t pl = strlen(sp);
        if (pl == 0 || pl > 255) {
            snprintf(err, errlen, "[mms] password_file %s:%d: password of 1..255 octets expected",
                     path, lineno);
            goto fail;
        }
        if (n >= max) {
            snprintf(err, errlen, "[mms] password_file %s: more than %d entries", path, max);
            goto fail;
        }
        memcpy(out[n].name, p, nl); /* nl < sizeof name: checked above */
        out[n].name[nl] = 0;
        crypto_generichash(out[n].hash, sizeof out[n].hash, (const unsigned char *)sp, pl, NULL,
                           0);
        sodium_memzero(sp, pl);
        n++;
    }
    sodium_memzero(line, sizeof line);
    fclose(f);
    if (n == 0) {
        snprintf(err, errlen, "[mms] password_file %s holds no entry", path);
        return GS_ECONFIG;
    }
    return n;
fail:
    sodium_memzero(line, sizeof line);
    fclose(f);
    return GS_ECONFIG;
}

int mmsd_password_check(const mmsd_password_t *list, int count, const uint8_t *pw, size_t n)
{
    uint8_t h[32];
    int found = -1;
    /* Hashes of equal length compared in constant time, every entry (no early exit): neither
     * the password's length nor which entry matched shows in the time taken. */
    crypto_generichash(h, sizeof h, pw, n, NULL, 0);
    for (int i = 0; i < count; i++) {
        int eq = sodium_memcmp(h, list[i].hash, sizeof h) == 0;
        found = eq && found < 0 ? i : found;
    }
    sodium_memzero(h, sizeof h);
    return found;
}

/* ---- connections ---------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    mmsd_t *m = c->m;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->n_conns--;
    atomic_fetch_sub_explicit(&m->st.connections_open, 1, memory_order_relaxed);
    ied_client_free(c->ic);
    mms_assoc_free(c->as);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

/* After the association closed: flush what was queued (the last answer, an ABORT), then close;
 * the sweep closes it anyway after 5 s (a client that does not read). */
static void conn_finish(conn_t *c)
{
    if (c->closing || c->shutting)
        return;
    if (c->queued == 0 || c->paused) {
        conn_close(c);
        return;
    }
    c->shutting = true;
    c->close_deadline_ns = time_mono_ns() + 5000000000LL;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

static void pump_reports(conn_t *c, int64_t now);
static void schedule_reports(mmsd_t *m);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->c;
    c->queued -= w->n;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->last_io_ns = time_mono_ns();
    mmsd_t *m = c->m;
    /* the client reads again: resume reading its requests, send the reports that waited */
    if (c->paused && !c->shutting && c->queued < queue_max(m) / 4) {
        c->paused = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    if (c->report_blocked && !c->shutting &&
        c->queued + mms_assoc_pdu_size(c->as) + 1024 <= queue_max(m)) {
        c->report_blocked = false;
        pump_reports(c, time_utc_ns());
        if (c->want_close)
            conn_finish(c);
        schedule_reports(m);
    }
}

static int io_send(void *ud, const uint8_t *p, size_t n)
{
    conn_t *c = ud;
    mmsd_t *m = c->m;
    if (c->closing)
        return GS_ECLOSED;
    if (c->queued + n > queue_max(m)) {
        INC(m, clients_cut);
        char sb[96];
        log_limited(LOG_WARN, src(sb, sizeof sb, "queue", c->addr),
                    "mms: client %s does not read its answers (%zu bytes queued): cut", c->addr,
                    c->queued);
        return GS_ELIMIT;
    }
    wreq_t *w = malloc(sizeof *w + n);
    if (!w)
        return GS_ENOMEM;
    memcpy(w->data, p, n);
    w->c = c;
    w->n = n;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return GS_EIO;
    }
    c->queued += n;
    ADD(m, bytes_out, n);
    return 0;
}

static void io_event(void *ud, int ev, const char *what)
{
    conn_t *c = ud;
    mmsd_t *m = c->m;
    char sb[96];
    int rc;
    switch (ev) {
    case MMS_AEV_ASSOCIATED:
        INC(m, assoc_ok);
        c->associated = true;
        rc = ied_client_new(m->ied, mms_assoc_pdu_size(c->as), &c->ic);
        if (rc < 0) {
            log_warn(WHO, "mms: %s: no model state for the association: %s", c->addr,
                     err_str(rc));
            c->want_abort = true;
        }
        log_info(WHO, "mms: %s associated%s%s (PDU size %u, TPDU size %u)", c->addr,
                 c->auth_name ? " as " : "", c->auth_name ? c->auth_name : "",
                 mms_assoc_pdu_size(c->as), mms_assoc_tpdu_size(c->as));
        break;
    case MMS_AEV_REFUSED:
        INC(m, assoc_failed);
        log_limited(LOG_WARN, src(sb, sizeof sb, "refused", c->addr),
                    "mms: association from %s refused: %s", c->addr, what);
        break;
    case MMS_AEV_AUTH_FAILED:
        INC(m, assoc_failed);
        INC(m, auth_failures);
        log_limited(LOG_WARN, src(sb, sizeof sb, "auth", c->addr), "mms: authentication failed from %s", c->addr);
        break;
    case MMS_AEV_CONCLUDED:
        log_info(WHO, "mms: %s concluded", c->addr);
        break;
    case MMS_AEV_RELEASED:
        log_info(WHO, "mms: %s released the association", c->addr);
        break;
    case MMS_AEV_PEER_ABORT:
        INC(m, aborts_in);
        log_info(WHO, "mms: %s aborted (%s)", c->addr, what);
        break;
    case MMS_AEV_PROTOCOL_ERROR:
        INC(m, protocol_errors);
        log_limited(LOG_WARN, src(sb, sizeof sb, "proto", c->addr), "mms: %s: protocol error: %s", c->addr, what);
        break;
    case MMS_AEV_CLOSE:
        c->want_close = true;
        break;
    default:
        break;
    }
}

static void io_pdu(void *ud, bool out, int type)
{
    conn_t *c = ud;
    mmsd_t *m = c->m;
    if (type < 0) {
        INC(m, malformed_in);
        return;
    }
    if (type < 14) {
        if (out)
            INC(m, pdus_out[type]);
        else
            INC(m, pdus_in[type]);
    }
}

static int io_auth(void *ud, const mms_apdu_t *aarq)
{
    conn_t *c = ud;
    mmsd_t *m = c->m;
    if (!aarq->has_auth)
        return MMS_ACSE_DIAG_AUTH_REQUIRED;
    if (!aarq->has_mechanism || !mms_oid_eq(&aarq->mechanism, MMS_OID_PASSWORD, 4))
        return MMS_ACSE_DIAG_AUTH_MECH_NOT_RECOGNISED;
    int i = mmsd_password_check(m->pw, m->n_pw, aarq->auth_value, aarq->auth_len);
    if (i < 0)
        return MMS_ACSE_DIAG_AUTH_FAILURE;
    c->auth_name = m->pw[i].name;
    return 0;
}

static int io_confirmed(void *ud, const mms_pdu_t *req, mms_ber_writer_t *w, mms_answer_t *a)
{
    conn_t *c = ud;
    ied_answer_t ia;
    if (!c->ic)
        return GS_ESTATE;
    memset(&ia, 0, sizeof ia);
    int rc = ied_confirmed(c->ic, req->service, req->service_constructed, req->body,
                           req->body_len, w, &ia);
    if (rc < 0)
        return rc;
    a->kind = ia.kind == IED_RESP ? MMS_ANS_RESP : ia.kind == IED_ERROR ? MMS_ANS_ERROR
                                                                       : MMS_ANS_REJECT;
    a->service = ia.service;
    a->constructed = ia.constructed;
    a->err_class = ia.err_class;
    a->err_code = ia.err_code;
    a->reject_code = ia.reject_code;
    return 0;
}

/* Sends the reports due on one association while its output queue has room for a whole PDU. */
static void pump_reports(conn_t *c, int64_t now)
{
    mmsd_t *m = c->m;
    for (int i = 0; i < 1000; i++) {
        mms_ber_writer_t w;
        int svc = MMS_USVC_INFORMATION_REPORT;
        if (!c->ic || c->closing || c->want_close || !mms_assoc_associated(c->as))
            return;
        if (c->queued + mms_assoc_pdu_size(c->as) + 1024 > queue_max(m)) {
            /* stays due in the model (buffered reports stay buffered); on_write pumps again
             * once the client has read enough */
            c->report_blocked = true;
            return;
        }
        if (mms_assoc_unconfirmed_begin(c->as, &w) < 0)
            return;
        int rc = ied_client_next_report(c->ic, now, &w, &svc);
        if (rc <= 0)
            return;
        rc = mms_assoc_unconfirmed_end(c->as, &w, svc);
        if (rc == 0)
            INC(m, reports_sent);
        else if (rc == GS_ELIMIT)
            log_limited(LOG_WARN, "mms-report", "mms: %s: a report above the PDU size was dropped",
                        c->addr);
        else
            return;
    }
}

static void after_input(conn_t *c);

static void schedule_reports(mmsd_t *m);

static void pump_all(mmsd_t *m)
{
    int64_t now = time_utc_ns();
    for (conn_t *c = m->conns; c; c = c->next) {
        pump_reports(c, now);
        if (c->want_close)
            after_input(c);
    }
    schedule_reports(m);
}

static void on_report_timer(uv_timer_t *t)
{
    pump_all(t->data);
}

static void schedule_reports(mmsd_t *m)
{
    int64_t due = INT64_MAX;
    if (m->stopping)
        return;
    for (conn_t *c = m->conns; c; c = c->next)
        if (c->ic && !c->closing && !c->report_blocked) { /* (blocked: on_write pumps) */
            int64_t d = ied_client_next_due(c->ic);
            if (d < due)
                due = d;
        }
    if (due == INT64_MAX) {
        uv_timer_stop(&m->reports);
        return;
    }
    int64_t wait_ms = (due - time_utc_ns()) / 1000000;
    if (wait_ms < 5)
        wait_ms = 5; /* (a report due now was offered already: never spin) */
    if (wait_ms > 1000)
        wait_ms = 1000;
    uv_timer_start(&m->reports, on_report_timer, (uint64_t)wait_ms, 0);
}

/* What an input (or a report) left to do: abort, close, back-pressure. */
static void after_input(conn_t *c)
{
    mmsd_t *m = c->m;
    if (c->closing)
        return;
    if (c->want_abort && !c->want_close) {
        INC(m, aborts_out);
        mms_assoc_abort(c->as);
    }
    if (c->want_close) {
        conn_finish(c);
        return;
    }
    /* a client that sends requests without reading the answers: stop reading until it does */
    if (!c->paused && c->queued > queue_max(m) / 2) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = true;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536]; /* one loop thread: one read at a time */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    mmsd_t *m = c->m;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing || c->shutting)
        return;
    ADD(m, bytes_in, nread);
    c->last_io_ns = time_mono_ns();
    mms_assoc_input(c->as, (const uint8_t *)buf->base, (size_t)nread);
    if (!c->want_close && c->ic)
        pump_reports(c, time_utc_ns());
    after_input(c);
    if (c->ic)
        schedule_reports(m);
}

static int count_addr(const mmsd_t *m, const char *addr)
{
    int n = 0;
    for (const conn_t *c = m->conns; c; c = c->next)
        if (!c->closing && strcmp(c->addr, addr) == 0)
            n++;
    return n;
}

static void refuse_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    mmsd_t *m = server->data;
    if (status < 0 || m->stopping)
        return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(&m->loop, &c->tcp);
    c->tcp.data = c;
    c->m = m;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, refuse_closed);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof sa;
    snprintf(c->addr, sizeof c->addr, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&sa, c->addr, sizeof c->addr);
        else
            uv_ip4_name((struct sockaddr_in *)&sa, c->addr, sizeof c->addr);
    }
    INC(m, connections_total);
    const char *why = NULL;
    if (m->n_conns >= m->o.max_connections)
        why = "max_connections reached";
    else if (count_addr(m, c->addr) >= m->o.max_per_address)
        why = "max_connections_per_address reached";
    mms_assoc_io_t io = {c, io_send, io_event, m->n_pw ? io_auth : NULL, io_confirmed, io_pdu};
    if (!why && mms_assoc_new(&m->acfg, &io, &c->as) < 0)
        why = "out of memory";
    if (why) {
        INC(m, connections_refused);
        char sb[96];
        log_limited(LOG_WARN, src(sb, sizeof sb, "limit", c->addr),
                    "mms: connection from %s refused: %s", c->addr, why);
        mms_assoc_free(c->as);
        uv_close((uv_handle_t *)&c->tcp, refuse_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->accepted_ns = c->last_io_ns = time_mono_ns();
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    m->n_conns++;
    atomic_fetch_add_explicit(&m->st.connections_open, 1, memory_order_relaxed);
    log_debug(WHO, "mms: connection from %s", c->addr);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- feeding the model ---------------------------------------------------------------------- */

typedef struct {
    store_terminal_t *v;
    size_t n, cap;
} tlist_t;

static int tlist_cb(void *ud, const store_terminal_t *t)
{
    tlist_t *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        store_terminal_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return GS_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *t;
    return 0;
}

/* The provisioned terminals (store) with their live state (gateway) into the model. */
static void refresh_terminals(mmsd_t *m)
{
    tlist_t l = {0};
    gw_term_info_t *live = NULL;
    size_t n_live = 0;
    hmap_t idx;
    ied_terminal_t *t = NULL;
    hmap_init(&idx);
    int rc = store_terminal_list(m->rd, tlist_cb, &l);
    if (rc < 0) {
        log_limited(LOG_WARN, "mms-store", "mms: cannot list the terminals: %s", err_str(rc));
        goto done;
    }
    if (m->gw)
        gw_term_list(m->gw, &live, &n_live);
    for (size_t i = 0; i < n_live; i++)
        hmap_put(&idx, live[i].id, &live[i]);
    t = calloc(l.n ? l.n : 1, sizeof *t);
    if (!t)
        goto done;
    for (size_t i = 0; i < l.n; i++) {
        const store_terminal_t *s = &l.v[i];
        ied_terminal_t *x = &t[i];
        snprintf(x->id, sizeof x->id, "%s", s->id);
        snprintf(x->name, sizeof x->name, "%s", s->name);
        x->nominal_hz = s->nominal_hz;
        x->vt_ratio = s->vt_ratio;
        x->ct_ratio = s->ct_ratio;
        x->declared_v = s->declared_v;
        const gw_term_info_t *g = hmap_get(&idx, s->id);
        if (g) {
            x->online = g->online;
            x->last_seen_ns = g->last_seen_ns;
            x->sample_rate = g->sample_rate;
            x->nchannels = g->nchannels;
            x->has_status = g->has_status;
            x->status_received_ns = g->status_received_ns;
            x->status = g->status;
        }
    }
    rc = ied_set_terminals(m->ied, t, l.n, time_utc_ns());
    if (rc < 0)
        log_limited(LOG_WARN, "mms-model", "mms: terminal list not applied: %s", err_str(rc));
    atomic_store_explicit(&m->st.logical_devices, (uint64_t)ied_ld_count(m->ied),
                          memory_order_relaxed);
done:
    hmap_free(&idx);
    free(live);
    free(l.v);
    free(t);
}

static void on_refresh(void *arg)
{
    mmsd_t *m = arg;
    atomic_store(&m->refresh_posted, 0);
    refresh_terminals(m);
    pump_all(m);
}

void mmsd_terminals_changed(mmsd_t *m)
{
    if (!m || atomic_exchange(&m->refresh_posted, 1))
        return;
    if (xcall_post(m->calls, on_refresh, m) < 0)
        atomic_store(&m->refresh_posted, 0);
}

static void on_latest(void *arg)
{
    mmsd_t *m = arg;
    hmap_t batch;
    uv_mutex_lock(&m->lock);
    batch = m->latest;
    hmap_init(&m->latest);
    m->latest_posted = 0;
    uv_mutex_unlock(&m->lock);
    int64_t now = time_utc_ns();
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&batch, &i, &k, &v);) {
        int rc = ied_update_latest(m->ied, k, v, now);
        if (rc < 0 && rc != GS_ENOTFOUND)
            log_limited(LOG_WARN, "mms-latest", "mms: latest values of %s not applied: %s", k,
                        err_str(rc));
        free(v);
    }
    hmap_free(&batch);
    pump_all(m);
}

void mmsd_post_latest(mmsd_t *m, const char *terminal_id, const char *json)
{
    if (!m)
        return;
    char *copy = strdup(json);
    if (!copy)
        return;
    int post = 0;
    uv_mutex_lock(&m->lock);
    if (m->latest.count >= MMSD_MAX_PENDING_TERMINALS && !hmap_get(&m->latest, terminal_id)) {
        uv_mutex_unlock(&m->lock);
        free(copy);
        return;
    }
    free(hmap_put(&m->latest, terminal_id, copy));
    if (!m->latest_posted)
        post = m->latest_posted = 1;
    uv_mutex_unlock(&m->lock);
    if (post && xcall_post(m->calls, on_latest, m) < 0) {
        uv_mutex_lock(&m->lock);
        m->latest_posted = 0;
        uv_mutex_unlock(&m->lock);
    }
}

typedef struct {
    mmsd_t *m;
    int64_t id;
    char tid[GSTP_MAX_ID + 1];
} evpost_t;

static void on_event(void *arg, int status)
{
    evpost_t *e = arg;
    mmsd_t *m = e->m;
    atomic_fetch_sub(&m->events_pending, 1);
    if (status == 0 && m->event_json) {
        buf_t b = {0};
        int rc = m->event_json(m->rd, e->id, &b);
        if (rc == 0) {
            buf_putc(&b, 0);
            rc = ied_add_event(m->ied, e->tid, b.data, time_utc_ns());
            mmsd_files_event(m->files, e->tid, e->id); /* files: render its record */
        }
        if (rc < 0 && rc != GS_ENOTFOUND)
            log_limited(LOG_WARN, "mms-event", "mms: event %lld not added to the model: %s",
                        (long long)e->id, err_str(rc));
        buf_free(&b);
        pump_all(m);
    }
    free(e);
}

void mmsd_post_event(mmsd_t *m, const char *terminal_id, int64_t event_id)
{
    if (!m)
        return;
    if (atomic_fetch_add(&m->events_pending, 1) >= MMSD_MAX_PENDING_EVENTS) {
        atomic_fetch_sub(&m->events_pending, 1);
        INC(m, events_dropped);
        return;
    }
    evpost_t *e = calloc(1, sizeof *e);
    if (!e) {
        atomic_fetch_sub(&m->events_pending, 1);
        return;
    }
    e->m = m;
    e->id = event_id;
    snprintf(e->tid, sizeof e->tid, "%s", terminal_id);
    if (xcall_post2(m->calls, on_event, e) < 0) {
        atomic_fetch_sub(&m->events_pending, 1);
        free(e);
    }
}

/* ---- the thread ------------------------------------------------------------------------------ */

static void on_sweep(uv_timer_t *t)
{
    mmsd_t *m = t->data;
    int64_t now = time_mono_ns();
    for (conn_t *c = m->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->shutting) {
            if (now > c->close_deadline_ns)
                conn_close(c);
            continue;
        }
        if (!c->associated && now - c->accepted_ns > (int64_t)m->o.assoc_timeout_s * 1000000000LL) {
            char sb[96];
            log_limited(LOG_WARN, src(sb, sizeof sb, "timeout", c->addr),
                        "mms: %s: no association within %d s: closed",
                        c->addr, m->o.assoc_timeout_s);
            conn_close(c);
            continue;
        }
        if (now - c->last_io_ns > (int64_t)m->o.idle_timeout_s * 1000000000LL) {
            log_info(WHO, "mms: %s idle for %d s: %s", c->addr, m->o.idle_timeout_s,
                     c->associated ? "aborted" : "closed");
            if (c->associated) {
                INC(m, aborts_out);
                mms_assoc_abort(c->as);
            }
            conn_finish(c);
            continue;
        }
        if (c->paused && c->queued < queue_max(m) / 4) {
            c->paused = false;
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        }
    }
    if (now >= m->next_refresh_ns) {
        m->next_refresh_ns = now + (int64_t)m->o.refresh_s * 1000000000LL;
        refresh_terminals(m);
        pump_all(m);
    }
}

static void on_stop(void *arg)
{
    mmsd_t *m = arg;
    m->stopping = 1;
    mmsd_files_stop(m->files); /* files */
    uv_close((uv_handle_t *)&m->listener, NULL);
    uv_close((uv_handle_t *)&m->sweep, NULL);
    uv_close((uv_handle_t *)&m->reports, NULL);
    for (conn_t *c = m->conns; c; c = c->next) {
        if (c->closing)
            continue;
        if (mms_assoc_associated(c->as)) {
            INC(m, aborts_out);
            mms_assoc_abort(c->as); /* (uv_write tries the socket at once) */
        }
        conn_close(c);
    }
    xcall_close(m->calls);
}

static void thread_main(void *arg)
{
    mmsd_t *m = arg;
    char err[256];
    struct sockaddr_storage addr;
    int rc;
    /* Linux schedules threads individually: a nicer MMS thread leaves the CPU to the gateway */
    if (m->o.nice > 0 && setpriority(PRIO_PROCESS, 0, m->o.nice) != 0)
        log_warn(WHO, "cannot lower the MMS thread's priority: %s", strerror(errno));
    store_opts_t ro = {.reader_only = 1, .busy_timeout_ms = 1000,
                       .url = m->store_url[0] ? m->store_url : NULL};
    ied_opts_t io;
    ied_opts_default(&io);
    snprintf(io.ied_name, sizeof io.ied_name, "%s", m->o.ied_name);
    snprintf(io.revision, sizeof io.revision, "%s", m->version);
    if ((rc = store_open(m->data_dir, &ro, &m->rd, err, sizeof err)) < 0) {
        snprintf(m->start_err, sizeof m->start_err, "mms: %s", err);
        goto fail;
    }
    if ((rc = ied_new(&io, &m->ied, err, sizeof err)) < 0) {
        snprintf(m->start_err, sizeof m->start_err, "[mms] ied_name: %s", err);
        goto fail;
    }
    if (strchr(m->host, ':'))
        rc = uv_ip6_addr(m->host, m->o.port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(m->host, m->o.port, (struct sockaddr_in *)&addr);
    if (rc < 0) {
        snprintf(m->start_err, sizeof m->start_err, "invalid [mms] listen address %s", m->host);
        goto fail;
    }
    uv_tcp_init(&m->loop, &m->listener);
    m->listener.data = m;
    rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, 128, on_connection);
    if (rc < 0) {
        snprintf(m->start_err, sizeof m->start_err, "cannot listen for MMS on %s:%d: %s",
                 m->host, m->o.port, uv_strerror(rc));
        uv_close((uv_handle_t *)&m->listener, NULL);
        uv_run(&m->loop, UV_RUN_NOWAIT);
        goto fail;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&m->listener, (struct sockaddr *)&bound, &blen);
    m->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_init(&m->loop, &m->sweep);
    m->sweep.data = m;
    uv_timer_init(&m->loop, &m->reports);
    m->reports.data = m;
    if (m->o.files_max_mb > 0 && /* files */
        mmsd_files_start(&m->loop, m->ied, &m->acfg, m->o.ied_name, m->data_dir, m->store_url,
                         (size_t)m->o.files_max_mb << 20, &m->files) < 0)
        log_warn(WHO, "mms: no file services (out of memory)");
    refresh_terminals(m);
    m->next_refresh_ns = time_mono_ns() + (int64_t)m->o.refresh_s * 1000000000LL;
    uv_timer_start(&m->sweep, on_sweep, 1000, 1000);
    m->start_rc = 0;
    uv_sem_post(&m->started);
    uv_run(&m->loop, UV_RUN_DEFAULT);
    mmsd_files_free(m->files); /* files */
    m->files = NULL;
    ied_free(m->ied);
    m->ied = NULL;
    store_close(m->rd);
    m->rd = NULL;
    return;
fail:
    m->start_rc = rc < 0 ? rc : GS_EIO;
    xcall_close(m->calls);
    uv_run(&m->loop, UV_RUN_NOWAIT);
    ied_free(m->ied);
    m->ied = NULL;
    store_close(m->rd);
    m->rd = NULL;
    uv_sem_post(&m->started);
}

int mmsd_start(const mmsd_opts_t *o, gw_t *gw, mmsd_t **out, char *err, size_t errlen)
{
    mmsd_t *m = calloc(1, sizeof *m);
    int rc;
    if (!m)
        return GS_ENOMEM;
    m->o = *o;
    snprintf(m->host, sizeof m->host, "%s", o->host);
    snprintf(m->data_dir, sizeof m->data_dir, "%s", o->data_dir ? o->data_dir : ".");
    snprintf(m->store_url, sizeof m->store_url, "%s", o->store_url ? o->store_url : "");
    snprintf(m->version, sizeof m->version, "%s", o->version ? o->version : "");
    m->gw = gw;
    m->event_json = o->event_json;
    if (o->password_file[0]) {
        rc = mmsd_password_file_load(o->password_file, m->pw, MMSD_MAX_PASSWORDS, err, errlen);
        if (rc < 0) {
            free(m);
            return rc;
        }
        m->n_pw = rc;
    }
    mms_assoc_cfg_default(&m->acfg);
    m->acfg.max_pdu = (uint32_t)o->max_pdu;
    m->acfg.auth_fail_silent = o->auth_fail_silent != 0;
    uv_mutex_init(&m->lock);
    hmap_init(&m->latest);
    if ((rc = uv_loop_init(&m->loop)) < 0) {
        snprintf(err, errlen, "cannot create the MMS loop: %s", uv_strerror(rc));
        goto fail;
    }
    m->loop_ok = 1;
    if ((rc = xcall_open(&m->loop, &m->calls)) < 0) {
        snprintf(err, errlen, "cannot create the MMS call queue: %s", uv_strerror(rc));
        goto fail;
    }
    xcall_hold(m->calls);
    uv_sem_init(&m->started, 0);
    if ((rc = uv_thread_create(&m->thread, thread_main, m)) < 0) {
        snprintf(err, errlen, "cannot start the MMS thread: %s", uv_strerror(rc));
        xcall_close(m->calls);
        uv_run(&m->loop, UV_RUN_NOWAIT);
        xcall_release(m->calls);
        uv_sem_destroy(&m->started);
        goto fail;
    }
    uv_sem_wait(&m->started);
    uv_sem_destroy(&m->started);
    if (m->start_rc < 0) {
        uv_thread_join(&m->thread);
        xcall_release(m->calls);
        snprintf(err, errlen, "%s", m->start_err);
        rc = m->start_rc;
        goto fail;
    }
    log_info(WHO, "MMS (IEC 61850) on %s:%d, IED %s, %s", m->host, m->port, m->o.ied_name,
             m->n_pw ? "ACSE password authentication" : "no authentication");
    *out = m;
    return 0;
fail:
    if (m->loop_ok)
        uv_loop_close(&m->loop);
    hmap_free(&m->latest);
    uv_mutex_destroy(&m->lock);
    sodium_memzero(m->pw, sizeof m->pw);
    free(m);
    return rc < 0 ? rc : GS_EIO;
}

int mmsd_port(const mmsd_t *m)
{
    return m->port;
}

void mmsd_stop(mmsd_t *m)
{
    if (!m)
        return;
    if (xcall_post(m->calls, on_stop, m) == 0)
        uv_thread_join(&m->thread);
    xcall_release(m->calls);
    if (uv_loop_close(&m->loop) != 0)
        log_debug(WHO, "MMS loop closed with open handles");
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&m->latest, &i, &k, &v);)
        free(v);
    hmap_free(&m->latest);
    uv_mutex_destroy(&m->lock);
    sodium_memzero(m->pw, sizeof m->pw);
    log_info(WHO, "MMS server stopped");
    free(m);
}

/* ---- stats ------------------------------------------------------------------------------------ */

#define LD(f) atomic_load_explicit(&m->st.f, memory_order_relaxed)

void mmsd_stats(const mmsd_t *m, mmsd_stats_t *o)
{
    mmsd_t *mm = (mmsd_t *)m; /* (atomic loads of a const object) */
    m = mm;
    memset(o, 0, sizeof *o);
    o->connections_open = LD(connections_open);
    o->connections_total = LD(connections_total);
    o->connections_refused = LD(connections_refused);
    o->assoc_ok = LD(assoc_ok);
    o->assoc_failed = LD(assoc_failed);
    o->auth_failures = LD(auth_failures);
    for (int i = 0; i < 14; i++) {
        o->pdus_in[i] = LD(pdus_in[i]);
        o->pdus_out[i] = LD(pdus_out[i]);
    }
    o->malformed_in = LD(malformed_in);
    o->protocol_errors = LD(protocol_errors);
    o->aborts_in = LD(aborts_in);
    o->aborts_out = LD(aborts_out);
    o->reports_sent = LD(reports_sent);
    o->clients_cut = LD(clients_cut);
    o->events_dropped = LD(events_dropped);
    o->bytes_in = LD(bytes_in);
    o->bytes_out = LD(bytes_out);
    o->logical_devices = LD(logical_devices);
}

static const char *const PDU_NAMES[14] = {
    "confirmed_request", "confirmed_response", "confirmed_error", "unconfirmed",
    "reject",            "cancel_request",     "cancel_response", "cancel_error",
    "initiate_request",  "initiate_response",  "initiate_error",  "conclude_request",
    "conclude_response", "conclude_error",
};

static void metric(buf_t *b, const char *name, const char *type, const char *help, uint64_t v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
               (unsigned long long)v);
}

void mmsd_metrics(void *ud, buf_t *b)
{
    mmsd_stats_t s;
    mmsd_stats(ud, &s);
    metric(b, "gridsense_mms_connections_open", "gauge", "Open MMS client connections.",
           s.connections_open);
    metric(b, "gridsense_mms_connections_total", "counter", "Accepted MMS TCP connections.",
           s.connections_total);
    metric(b, "gridsense_mms_connections_refused_total", "counter",
           "MMS connections refused by [mms] connection limits.", s.connections_refused);
    metric(b, "gridsense_mms_associations_total", "counter", "MMS associations established.",
           s.assoc_ok);
    metric(b, "gridsense_mms_associations_failed_total", "counter",
           "MMS associations refused (authentication, application context, initiate).",
           s.assoc_failed);
    metric(b, "gridsense_mms_auth_failures_total", "counter",
           "MMS associations refused for a missing or wrong ACSE password.", s.auth_failures);
    buf_puts(b, "# HELP gridsense_mms_pdus_in_total MMS PDUs received, by type.\n"
                "# TYPE gridsense_mms_pdus_in_total counter\n");
    for (int i = 0; i < 14; i++)
        buf_printf(b, "gridsense_mms_pdus_in_total{type=\"%s\"} %llu\n", PDU_NAMES[i],
                   (unsigned long long)s.pdus_in[i]);
    buf_puts(b, "# HELP gridsense_mms_pdus_out_total MMS PDUs sent, by type.\n"
                "# TYPE gridsense_mms_pdus_out_total counter\n");
    for (int i = 0; i < 14; i++)
        buf_printf(b, "gridsense_mms_pdus_out_total{type=\"%s\"} %llu\n", PDU_NAMES[i],
                   (unsigned long long)s.pdus_out[i]);
    metric(b, "gridsense_mms_rejects_total", "counter", "MMS RejectPDUs sent.",
           s.pdus_out[MMS_PDU_REJECT]);
    metric(b, "gridsense_mms_malformed_pdus_total", "counter",
           "MMS PDUs that did not decode (answered with a RejectPDU).", s.malformed_in);
    metric(b, "gridsense_mms_protocol_errors_total", "counter",
           "Malformed or unexpected input below MMS (answered with COTP ER or ABORT, closed).",
           s.protocol_errors);
    metric(b, "gridsense_mms_aborts_received_total", "counter",
           "Associations aborted by the client.", s.aborts_in);
    metric(b, "gridsense_mms_aborts_sent_total", "counter",
           "Associations aborted by the server (idle, shutdown).", s.aborts_out);
    metric(b, "gridsense_mms_reports_sent_total", "counter", "InformationReports sent.",
           s.reports_sent);
    metric(b, "gridsense_mms_clients_cut_total", "counter",
           "Clients disconnected because their output queue was full.", s.clients_cut);
    metric(b, "gridsense_mms_events_dropped_total", "counter",
           "Stored events not handed to the model (too many pending).", s.events_dropped);
    metric(b, "gridsense_mms_bytes_received_total", "counter", "Bytes received from MMS clients.",
           s.bytes_in);
    metric(b, "gridsense_mms_bytes_sent_total", "counter", "Bytes sent to MMS clients.",
           s.bytes_out);
    metric(b, "gridsense_mms_logical_devices", "gauge",
           "Logical devices of the model (one per provisioned terminal).", s.logical_devices);
}
