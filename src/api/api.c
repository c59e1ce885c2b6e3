/* api — construction, the router and the store-writer hand-back (contract in api.h).
 *
 * The router answers, for every request, in this order (docs/api.md "Authentication"):
 *   1. Host header not one of the server's names → 400 bad_host (DNS rebinding: a page on
 *      attacker.example that resolves to 127.0.0.1 sends Host: attacker.example);
 *   2. no route with this path → 404; a route but not this method → 405 with Allow;
 *   3. a credential that is not valid → 401; none on a route that needs one → 401;
 *   4. a role below the route's → 403;
 *   5. a state change (not GET) whose Origin is another site, or that is authenticated by the
 *      session cookie and carries neither Origin nor Referer of this server → 403 csrf;
 *   6. the handler.
 * Denied state changes by an authenticated user are audited (outcome "denied").
 */
#include "api/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/xcall.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- lists of names ---------------------------------------------------------------------- */

static void list_add(char ***list, size_t *n, const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!len)
        return;
    char *v = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        v[i] = (char)tolower((unsigned char)s[i]);
    v[len] = 0;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], v) == 0) {
            free(v);
            return;
        }
    *list = xrealloc(*list, (*n + 2) * sizeof **list);
    (*list)[(*n)++] = v;
    (*list)[*n] = NULL;
}

static void list_add_csv(char ***list, size_t *n, const char *csv)
{
    for (const char *p = csv; p && *p;) {
        size_t len = strcspn(p, ",");
        list_add(list, n, p, len);
        p += len + (p[len] == ',');
    }
}

static void list_free(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

static int list_has(char **list, const char *s, size_t len)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

/* The default Host names: the bound address, loopback names, the machine's name and, when bound
 * to every address, each interface address. */
static void default_hosts(char ***list, size_t *n, const char *bind_host)
{
    list_add_csv(list, n, "localhost,127.0.0.1,::1,localhost.localdomain");
    int any = !bind_host || !bind_host[0] || strcmp(bind_host, "*") == 0 ||
              strcmp(bind_host, "0.0.0.0") == 0 || strcmp(bind_host, "::") == 0;
    if (!any)
        list_add(list, n, bind_host, strlen(bind_host));
    char hn[256];
    if (gethostname(hn, sizeof hn) == 0) {
        hn[sizeof hn - 1] = 0;
        list_add(list, n, hn, strlen(hn));
    }
    if (any) {
        uv_interface_address_t *ifs = NULL;
        int nifs = 0;
        if (uv_interface_addresses(&ifs, &nifs) == 0) {
            for (int i = 0; i < nifs; i++) {
                char ip[64];
                if (ifs[i].address.address4.sin_family == AF_INET)
                    uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
                else
                    uv_ip6_name(&ifs[i].address.address6, ip, sizeof ip);
                list_add(list, n, ip, strlen(ip));
            }
            uv_free_interface_addresses(ifs, nifs);
        }
    }
}

/* The name part of a Host header value ("name:port", "[v6]:port", "name"): start and length. */
static int host_name(const char *h, const char **name, size_t *len)
{
    if (!h || !*h)
        return -1;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        if (!e || (e[1] && e[1] != ':'))
            return -1;
        *name = h + 1;
        *len = (size_t)(e - h - 1);
        return 0;
    }
    *name = h;
    const char *c = strchr(h, ':');
    *len = c ? (size_t)(c - h) : strlen(h);
    return *len ? 0 : -1;
}

/* ---- writer hand-back -------------------------------------------------------------------- */

typedef struct {
    void (*done)(api_t *a, store_item_t *it, void *ud);
    void *ud;
    api_t *a;
} handback_t;

/* Writer thread: queue the item for the loop and wake it. */
static void item_notify(store_item_t *it, void *ud)
{
    handback_t *h = ud;
    api_t *a = h->a;
    uv_mutex_lock(&a->done_lock);
    it->next = NULL;
    if (a->done_tail)
        a->done_tail->next = it;
    else
        a->done_head = it;
    a->done_tail = it;
    int closed = a->stopping == 2;
    uv_mutex_unlock(&a->done_lock);
    if (!closed)
        uv_async_send(&a->async);
}

static void drain_done(api_t *a)
{
    uv_mutex_lock(&a->done_lock);
    store_item_t *it = a->done_head;
    a->done_head = a->done_tail = NULL;
    uv_mutex_unlock(&a->done_lock);
    while (it) {
        store_item_t *next = it->next;
        handback_t *h = it->notify_ud;
        if (h->done)
            h->done(a, it, h->ud);
        free(h);
        store_item_free(it);
        it = next;
    }
}

static void async_cb(uv_async_t *h)
{
    drain_done(h->data);
}

static void sweep_cb(uv_timer_t *t)
{
    api__fails_sweep(t->data);
}

int api__submit(api_t *a, store_item_t *it, void (*done)(api_t *a, store_item_t *it, void *ud),
                void *ud)
{
    if (a->stopping) {
        store_item_free(it);
        return GS_ESTATE;
    }
    handback_t *h = xcalloc(1, sizeof *h);
    h->done = done;
    h->ud = ud;
    h->a = a;
    it->notify = item_notify;
    it->notify_ud = h;
    int rc = store_submit(a->writer, it); /* frees it on failure */
    if (rc < 0)
        free(h);
    return rc;
}

store_acct_t *api__acct_new(rq_t *q, int op, const char *action, const char *target)
{
    store_acct_t *c = xcalloc(1, sizeof *c);
    c->op = op;
    c->has_audit = 1;
    snprintf(c->audit.user, sizeof c->audit.user, "%s", q->who.user);
    snprintf(c->audit.remote, sizeof c->audit.remote, "%s", q->remote);
    snprintf(c->audit.action, sizeof c->audit.action, "%s", action);
    snprintf(c->audit.target, sizeof c->audit.target, "%s", target ? target : "");
    snprintf(c->audit.outcome, sizeof c->audit.outcome, "ok");
    snprintf(c->remote, sizeof c->remote, "%s", q->remote);
    return c;
}

int api__acct_submit(rq_t *q, store_acct_t *acct,
                     void (*done)(api_t *a, store_item_t *it, void *ud), void *ud)
{
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    it->acct = acct;
    return api__submit(q->a, it, done, ud);
}

static void audit_done(api_t *a, store_item_t *it, void *ud)
{
    (void)a;
    (void)ud;
    if (it->result < 0)
        log_warn("api", "audit record %s could not be stored: %s", it->acct->audit.action,
                 err_str(it->result));
}

void api__audit(api_t *a, const char *user, const char *remote, const char *action,
                const char *target, const char *outcome, const char *detail)
{
    store_item_t *it = store_item_new(STORE_ITEM_ACCOUNT);
    store_acct_t *c = it->acct = xcalloc(1, sizeof *c);
    c->op = STORE_ACCT_NONE;
    c->has_audit = 1;
    snprintf(c->audit.user, sizeof c->audit.user, "%s", user ? user : "");
    snprintf(c->audit.remote, sizeof c->audit.remote, "%s", remote ? remote : "");
    snprintf(c->audit.action, sizeof c->audit.action, "%s", action);
    snprintf(c->audit.target, sizeof c->audit.target, "%s", target ? target : "");
    snprintf(c->audit.outcome, sizeof c->audit.outcome, "%s", outcome);
    snprintf(c->audit.detail, sizeof c->audit.detail, "%s", detail ? detail : "");
    api__submit(a, it, audit_done, NULL);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

void api_opts_default(api_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->session_idle_s = 8 * 3600;
    o->session_max_s = 7 * 86400;
    o->metrics_public = -1; /* decided from the bind address */
}

static int is_loopback(const char *h)
{
    return h &&
           (strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 || strcmp(h, "localhost") == 0);
}

int api_new(uv_loop_t *loop, const api_opts_t *o, api_t **out, char *err, size_t errlen)
{
    api_t *a = xcalloc(1, sizeof *a);
    a->loop = loop;
    a->gw = o->gw;
    a->st = o->st;
    a->writer = o->writer ? o->writer : o->st;
    a->main_q = o->main_q;
    a->ana = o->ana;
    a->cluster = o->cluster;
    a->extra_metrics = o->extra_metrics;
    a->extra_metrics_ud = o->extra_metrics_ud;
    a->started_ns = time_utc_ns();
    a->max_pending = o->max_pending;
    a->create_timeout_s = o->create_timeout_s;
    a->session_idle_s = o->session_idle_s > 0 ? o->session_idle_s : 8 * 3600;
    a->session_max_s = o->session_max_s > 0 ? o->session_max_s : 7 * 86400;
    a->metrics_public = o->metrics_public >= 0 ? o->metrics_public : is_loopback(o->bind_host);
    a->tls = o->tls;
    snprintf(a->web_root, sizeof a->web_root, "%s", o->web_root ? o->web_root : "");
    if (api__static_init(a, o->web_tiles, o->web_tiles_attribution, err, errlen) < 0) {
        free(a);
        return GS_ECONFIG;
    }
    size_t n = 0, np = 0;
    if (o->hosts && o->hosts[0])
        list_add_csv(&a->hosts, &n, o->hosts);
    else
        default_hosts(&a->hosts, &n, o->bind_host);
    list_add_csv(&a->proxies, &np, o->trusted_proxies);
    hmap_init(&a->fails);
    api__live_init(a);
    /* Unknown users are checked against this hash, so that "no such user" takes as long as a
     * wrong password (no user enumeration by timing). */
    if (api_password_hash("gridsense-no-such-user", a->dummy_hash) < 0) {
        snprintf(err, errlen, "cannot hash a password (out of memory?)");
        goto fail;
    }
    if (xcall_open(loop, &a->web_q) < 0) {
        snprintf(err, errlen, "cannot create the API's call queue");
        goto fail;
    }
    uv_mutex_init(&a->web_q_lock);
    uv_mutex_init(&a->done_lock);
    if (uv_async_init(loop, &a->async, async_cb) < 0) {
        uv_mutex_destroy(&a->done_lock);
        uv_mutex_destroy(&a->web_q_lock);
        xcall_close(a->web_q); /* (freed when the loop runs) */
        snprintf(err, errlen, "cannot create the API's async handle");
        goto fail;
    }
    a->async.data = a;
    uv_timer_init(loop, &a->sweep);
    a->sweep.data = a;
    uv_timer_start(&a->sweep, sweep_cb, 60000, 60000);
    uv_unref((uv_handle_t *)&a->sweep);
    *out = a;
    return 0;
fail:
    list_free(a->hosts);
    list_free(a->proxies);
    hmap_free(&a->fails);
    api__live_free(a);
    free(a);
    return GS_EIO;
}

void api_set_web(api_t *a, web_t *w)
{
    a->web = w;
    int rc = api__live_start(a, w);
    if (rc < 0)
        log_error("api", "the live feed cannot start: %s", err_str(rc));
}

void api_stop(api_t *a)
{
    if (!a || a->stopping)
        return;
    a->stopping = 1;
    api__live_stop(a);
    drain_done(a);
    uv_mutex_lock(&a->done_lock);
    a->stopping = 2; /* no more wake-ups: api_free drains what arrives later */
    uv_mutex_unlock(&a->done_lock);
    uv_close((uv_handle_t *)&a->async, NULL);
    uv_close((uv_handle_t *)&a->sweep, NULL);
    /* Answers the main loop still sends are refused from here on (their senders release
     * them); those already queued run now, with GS_ECLOSED. */
    uv_mutex_lock(&a->web_q_lock);
    a->web_q_closed = 1;
    uv_mutex_unlock(&a->web_q_lock);
    xcall_close(a->web_q);
}

int api__call_main(api_t *a, void (*fn)(void *arg), void *arg)
{
    if (!a->main_q) {
        fn(arg);
        return 0;
    }
    return xcall_post(a->main_q, fn, arg);
}

int api__call_web(api_t *a, void (*fn)(void *arg, int status), void *arg)
{
    uv_mutex_lock(&a->web_q_lock);
    int rc = a->web_q_closed ? GS_ECLOSED : xcall_post2(a->web_q, fn, arg);
    uv_mutex_unlock(&a->web_q_lock);
    return rc;
}

void api_free(api_t *a)
{
    if (!a)
        return;
    drain_done(a); /* answers the writer gave after api_stop (their web_complete is a no-op) */
    uv_mutex_destroy(&a->done_lock);
    uv_mutex_destroy(&a->web_q_lock);
    size_t pos = 0;
    const char *k;
    void *v;
    while (hmap_next(&a->fails, &pos, &k, &v))
        free(v);
    hmap_free(&a->fails);
    api__live_free(a);
    api__static_free(a);
    list_free(a->hosts);
    list_free(a->proxies);
    free(a);
}

void api_routes(void (*cb)(void *ud, const char *method, const char *pattern, const char *role),
                void *ud)
{
    for (size_t i = 0; i < api__nroutes; i++)
        cb(ud, api__routes[i].method, api__routes[i].pattern,
           api__routes[i].role == ROLE_PUBLIC ? "public" : store_role_name(api__routes[i].role));
}

/* ---- routing ----------------------------------------------------------------------------- */

/* Matches path against pattern; a "{...}" segment matches one non-empty segment, copied to
 * param (at most cap-1 bytes, else no match). */
static int match(const char *pattern, const char *path, char *param, size_t cap, int *has_param)
{
    *has_param = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *pe = strchr(pattern, '}');
            size_t len = strcspn(path, "/");
            if (!pe || len == 0 || len >= cap)
                return 0;
            memcpy(param, path, len);
            param[len] = 0;
            *has_param = 1;
            pattern = pe + 1;
            path += len;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *pattern == 0 && *path == 0;
}

static int is_state_change(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Origin ("scheme://host[:port]") or Referer ("scheme://host[:port]/...") names this server,
 * i.e. the same host[:port] the request was sent to (Host, already checked). */
int api__same_site(const char *url, const char *host)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    size_t len = strcspn(p, "/?#");
    return strlen(host) == len && strncasecmp(p, host, len) == 0;
}

static void client_address(rq_t *q)
{
    const web_request_t *req = q->req;
    snprintf(q->remote, sizeof q->remote, "%s", req->remote ? req->remote : "");
    /* A trusted proxy appends the address it received the request from as the last entry of
     * X-Forwarded-For; earlier entries were written by the client and prove nothing. */
    if (req->x_forwarded_for && list_has(q->a->proxies, q->remote, strlen(q->remote))) {
        const char *last = strrchr(req->x_forwarded_for, ',');
        last = last ? last + 1 : req->x_forwarded_for;
        while (*last == ' ')
            last++;
        size_t len = strcspn(last, " ");
        if (len > 0 && len < sizeof q->remote) {
            memcpy(q->remote, last, len);
            q->remote[len] = 0;
        }
    }
}

static void deny(rq_t *q, int status, const char *code, const char *msg)
{
    api__error(q->resp, status, code, msg);
    if (q->who.role != ROLE_PUBLIC && is_state_change(q->req->method)) {
        char target[160];
        snprintf(target, sizeof target, "%s %s", q->req->method, q->req->path);
        api__audit(q->a, q->who.user, q->remote, "request", target, "denied", msg);
    }
}

/* The Host check: 0, or -1 after answering 400. */
static int check_host(rq_t *q)
{
    const char *hn;
    size_t hl;
    if (host_name(q->req->host, &hn, &hl) < 0 || !list_has(q->a->hosts, hn, hl)) {
        log_limited(LOG_WARN, q->remote,
                    "HTTP request for host \"%.64s\" refused (not in [http] hosts)",
                    q->req->host ? q->req->host : "");
        api__error(q->resp, 400, "bad_host",
                   "the Host header does not name this server (see [http] hosts in "
                   "docs/operations.md)");
        return -1;
    }
    return 0;
}

/* Authentication and role: 0, or -1 after answering 401/403. */
static int check_role(rq_t *q, int needs)
{
    if (api__authenticate(q) < 0)
        return -1;
    if (needs != ROLE_PUBLIC && q->who.role == ROLE_PUBLIC) {
        api__error(q->resp, 401, "unauthorized",
                   q->auth_err ? q->auth_err
                               : "log in (POST /api/v1/session) or send Authorization: Bearer "
                                 "<token>");
        buf_puts(&q->resp->headers, "WWW-Authenticate: Bearer realm=\"gridsense\"\r\n");
        return -1;
    }
    if (q->who.role < needs) {
        char msg[128];
        snprintf(msg, sizeof msg, "this needs the %s role; %s is %s", store_role_name(needs),
                 q->who.user, store_role_name(q->who.role));
        deny(q, 403, "forbidden", msg);
        return -1;
    }
    return 0;
}

static void rq_init(rq_t *q, api_t *a, const web_request_t *req, web_response_t *resp)
{
    memset(q, 0, sizeof *q);
    q->a = a;
    q->req = req;
    q->resp = resp;
    resp->content_type = "application/json";
    client_address(q);
}

int api__admit(api_t *a, const web_request_t *req, web_response_t *resp, rq_t *q, int min_role)
{
    rq_init(q, a, req, resp);
    return check_host(q) < 0 || check_role(q, min_role) < 0 ? -1 : 0;
}

void api_handle(void *ud, const web_request_t *req, web_response_t *resp)
{
    rq_t q;
    rq_init(&q, ud, req, resp);
    if (check_host(&q) < 0)
        return;
    if (api__static(&q))
        return; /* the web app's files */

    const route_t *r = NULL;
    char allow[64] = "";
    int path_known = 0;
    for (size_t i = 0; i < api__nroutes; i++) {
        int hp;
        if (!match(api__routes[i].pattern, req->path, q.param_buf, sizeof q.param_buf, &hp))
            continue;
        path_known = 1;
        if (strlen(allow) + strlen(api__routes[i].method) + 3 < sizeof allow)
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", api__routes[i].method);
        if (strcmp(api__routes[i].method, req->method) == 0) {
            r = &api__routes[i];
            q.param = hp ? q.param_buf : NULL;
            break;
        }
    }
    if (!r) {
        if (!path_known) {
            api__error(resp, 404, "not_found", "no such resource");
            return;
        }
        char msg[96];
        snprintf(msg, sizeof msg, "use %s", allow);
        api__error(resp, 405, "method_not_allowed", msg);
        buf_printf(&resp->headers, "Allow: %s\r\n", allow);
        return;
    }
    int needs = r->role;
    if (r->fn == api__metrics && !q.a->metrics_public)
        needs = STORE_ROLE_VIEWER;
    if (check_role(&q, needs) < 0)
        return;
    if (is_state_change(req->method)) {
        int ok = 1;
        if (req->origin)
            ok = api__same_site(req->origin, req->host);
        else if (q.who.role != ROLE_PUBLIC && !q.who.via_token)
            ok = req->referer && api__same_site(req->referer, req->host);
        if (!ok) {
            log_limited(LOG_WARN, q.remote,
                        "cross-site %s %s refused (Origin %.80s, Referer %.80s)", req->method,
                        req->path, req->origin ? req->origin : "-",
                        req->referer ? req->referer : "-");
            deny(&q, 403, "csrf", "cross-site request refused: Origin/Referer must be this server");
            return;
        }
        if (api__refuse_if_full(&q))
            return; /* 507 while the disk is full (dbstats.c) */
    }
    r->fn(&q);
}
