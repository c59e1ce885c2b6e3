/* Terminal gateway commands: paced delivery, RESULT, TIME_SYNC offsets, creation and expiry
 * through the store writer. */
#include "internal.h"

#include "core/err.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* Server-computed tags appended to a TIME_SYNC result (outside the terminal's tag range). */
#define TAG_OFFSET_NS 100
#define TAG_RTT_NS    101
/* A command sent and not answered within this time stops counting against the in-flight limit
 * (a terminal that ignores commands must not stop delivery for good). */
#define CMD_ANSWER_TIMEOUT_NS (30 * 1000000000LL)
/* New commands read per look (once a second and after the writer's creations): a burst created
 * by a script is picked up over several looks, never read into memory at once. */
#define NEWCMD_PAGE 1000

/* Command state changes go through the store writer like everything else the terminals cause:
 * the loop thread never waits for the database's write lock on their behalf. The writer applies
 * them in order and leaves final states alone (see store_command_update). */
static void submit_command_update(gw_t *g, const char *tid, int64_t id, int state,
                                  int result_status, const uint8_t *res, size_t rlen)
{
    store_item_t *it = store_item_new(STORE_ITEM_COMMAND_UPDATE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", tid);
    it->cmd_id = id;
    it->cmd_state = state;
    it->cmd_result_status = result_status;
    if (rlen) {
        it->data = xmalloc(rlen);
        memcpy(it->data, res, rlen);
        it->data_len = rlen;
    }
    if (store_submit(g->st, it) < 0)
        log_warn(tid, "command %lld state not stored (store stopped)", (long long)id);
}

/* A command creation waiting for the writer (gw_command_submit). The item pointer stays valid
 * until process_done frees it, which also ends the request. */
struct cmd_req {
    struct cmd_req *prev, *next;
    store_item_t *item;
    gw_command_cb cb; /* NULL once answered (timed out) */
    void *ud;
    int64_t deadline_ns; /* monotonic */
    int rc;
    int64_t cmd_id;
    char tid[GSTP_MAX_ID + 1]; /* the command's terminal, once item is gone */
};

/* A command sent in a session and not yet answered. */
struct cmd_inflight {
    int64_t id;
    int64_t sent_ns; /* monotonic */
};

/* A cancel with the writer (gw_command_cancel): its command is not sent until it is answered. */
struct cmd_cancel {
    struct cmd_cancel *next;
    int64_t cmd_id;
    char tid[GSTP_MAX_ID + 1]; /* the command's terminal ("" if not known) */
    gw_cancel_cb cb;
    void *ud;
};

static int cancel_held(const gw_t *g, int64_t id)
{
    for (const struct cmd_cancel *c = g->cmd_cancels; c; c = c->next)
        if (c->cmd_id == id)
            return 1;
    return 0;
}

/* Commands sent in this session and not answered (nor timed out). */
static int inflight_count(sess_t *s, int64_t now)
{
    int n = 0;
    for (int i = 0; i < s->cmd_ninflight; i++)
        if (now - s->cmd_inflight[i].sent_ns < CMD_ANSWER_TIMEOUT_NS)
            s->cmd_inflight[n++] = s->cmd_inflight[i];
    s->cmd_ninflight = n;
    return n;
}

static int inflight_has(const sess_t *s, int64_t id)
{
    for (int i = 0; i < s->cmd_ninflight; i++)
        if (s->cmd_inflight[i].id == id)
            return 1;
    return 0;
}

static int inflight_room(sess_t *s)
{
    int k = s->gw->o.cmd_max_inflight;
    k = k < 1 ? 1 : k > GW_CMD_INFLIGHT_MAX ? GW_CMD_INFLIGHT_MAX : k;
    return k - inflight_count(s, time_mono_ns());
}

static void send_command(sess_t *s, const store_command_t *c)
{
    gw_t *g = s->gw;
    uint8_t args[GSTP_MAX_TLV];
    size_t alen = 0;
    int64_t now = time_utc_ns();
    if (c->verb == GSTP_VERB_TIME_SYNC) {
        /* The server's send time is stamped now, not when the command was created. */
        gstp_tlv_writer_t w;
        gstp_tlv_writer_init(&w, args, sizeof args);
        gstp_tlv_put_i64(&w, GSTP_AT_SERVER_TIME, now);
        alen = w.len;
        s->ts_id[s->ts_pos] = c->id;
        s->ts_tx[s->ts_pos] = now;
        s->ts_pos = (s->ts_pos + 1) % TIMESYNC_SLOTS;
    } else {
        alen = c->args_len < sizeof args ? c->args_len : sizeof args;
        memcpy(args, c->args, alen);
    }
    gstp_command_t m = {
        .id = (uint64_t)c->id, .verb = (uint16_t)c->verb, .tlv_len = (uint16_t)alen, .tlv = args};
    term_t *t = s->term; /* terms outlive sessions; s may be marked for closing by the write */
    if (!s->cmd_inflight)
        s->cmd_inflight = xcalloc(GW_CMD_INFLIGHT_MAX, sizeof *s->cmd_inflight);
    if (s->cmd_ninflight < GW_CMD_INFLIGHT_MAX) {
        s->cmd_inflight[s->cmd_ninflight].id = c->id;
        s->cmd_inflight[s->cmd_ninflight].sent_ns = time_mono_ns();
        s->cmd_ninflight++;
    }
    SEND(s, gstp_encode_command, &m);
    g->st_.commands_sent++;
    if (c->state == STORE_CMD_QUEUED)
        submit_command_update(g, t->id, c->id, STORE_CMD_SENT, -1, NULL, 0);
    log_info(t->id, "command %lld (verb %d) sent", (long long)c->id, c->verb);
}

typedef struct {
    sess_t *s;
    int n;
} sweep_t;

static int pending_cb(void *ud, const store_command_t *c)
{
    sweep_t *x = ud;
    x->n++;
    if (x->s->state != S_ONLINE || x->s->close_asap)
        return 1;
    x->s->cmd_cursor = c->id;
    if (cancel_held(x->s->gw, c->id))
        return 0; /* a cancel is with the writer; if it fails the cursor is wound back */
    send_command(x->s, c);
    return 0;
}

/* Paced delivery (protocol decision 1 and issue 7): the commands to (re-)send in this session
 * are the queued and sent ones (never acked: those wait for their final RESULT), oldest first,
 * read page by page after the session's cursor, and only as many as keep at most
 * cmd_max_inflight unanswered. Called at WELCOME, when answers free room, and every tick until
 * the queue is read to its end, so a long queue (thousands of commands) never costs the loop
 * more than one small page at a time. */
void gw__send_pending_commands(sess_t *s)
{
    if (s->state != S_ONLINE || s->cmd_sweep_done || s->close_asap)
        return;
    int room = inflight_room(s);
    if (room <= 0)
        return;
    sweep_t x = {.s = s};
    int rc = store_command_pending(s->gw->st, s->term->id, s->cmd_cursor, room, pending_cb, &x);
    if (rc < 0) {
        log_warn(s->term->id, "cannot read pending commands: %s", err_str(rc));
        return;
    }
    if (x.n < room)
        s->cmd_sweep_done = 1;
}

void gw__on_result(sess_t *s, const gstp_frame_t *f)
{
    gw_t *g = s->gw;
    gstp_result_t r;
    if (gstp_parse_result(f, &r) < 0) {
        /* Includes a MESSAGE over 64 bytes (protocol decision 5): nothing of it is applied, the
         * command keeps its state and a repeated valid RESULT is taken. */
        g->st_.parse_errors++;
        gw__send_error(s, GSTP_ERR_MALFORMED, f->type, "malformed RESULT");
        return;
    }
    /* An answer frees its in-flight slot, whatever it says. */
    for (int i = 0; i < s->cmd_ninflight; i++) {
        if ((uint64_t)s->cmd_inflight[i].id == r.id) {
            s->cmd_inflight[i] = s->cmd_inflight[--s->cmd_ninflight];
            if (!s->cmd_sweep_done && s->cmd_ninflight <= g->o.cmd_max_inflight / 2)
                gw__send_pending_commands(s);
            break;
        }
    }
    store_command_t c;
    if (r.id > INT64_MAX || store_command_get(g->st, (int64_t)r.id, &c) < 0 ||
        strcmp(c.terminal_id, s->term->id) != 0) {
        /* A terminal can repeat this at will: rate-limited per address. */
        log_limited(LOG_WARN, s->ip, "%s: RESULT for unknown command %llu ignored", s->term->id,
                    (unsigned long long)r.id);
        gw__send_error(s, GSTP_ERR_UNEXPECTED, f->type, "unknown command id");
        return;
    }
    if (c.state >= STORE_CMD_DONE || (c.state == STORE_CMD_ACKED && r.status == GSTP_RS_ACCEPTED)) {
        /* A repeated or late RESULT: nothing changes, and no write lock is taken for it. */
        log_debug(s->term->id, "RESULT for command %lld in state %s ignored", (long long)c.id,
                  store_cmd_state_name(c.state));
        return;
    }
    if (r.tlv_len > STORE_ARGS_MAX)
        log_warn(s->term->id, "RESULT payload of command %lld too long (%u bytes), not stored",
                 (long long)c.id, r.tlv_len);
    int state = r.status == GSTP_RS_OK         ? STORE_CMD_DONE
                : r.status == GSTP_RS_ACCEPTED ? STORE_CMD_ACKED
                                               : STORE_CMD_FAILED;
    uint8_t res[STORE_ARGS_MAX];
    size_t rlen = r.tlv && r.tlv_len <= sizeof res ? r.tlv_len : 0;
    if (rlen)
        memcpy(res, r.tlv, rlen);
    if (c.verb == GSTP_VERB_TIME_SYNC && r.status == GSTP_RS_OK) {
        /* NTP-style offset and round trip from the four timestamps (RFC 5905 section 8). */
        int64_t t4 = time_utc_ns(), t1 = 0, t2 = 0, t3 = 0;
        gstp_tlv_t tv;
        for (int i = 0; i < TIMESYNC_SLOTS; i++)
            if (s->ts_id[i] == c.id)
                t1 = s->ts_tx[i];
        if (t1 && gstp_tlv_find(r.tlv, r.tlv_len, GSTP_AT_TERM_RX_TIME, &tv) == 1 &&
            gstp_tlv_i64(&tv, &t2) == 0 &&
            gstp_tlv_find(r.tlv, r.tlv_len, GSTP_AT_TERM_TX_TIME, &tv) == 1 &&
            gstp_tlv_i64(&tv, &t3) == 0) {
            /* t2 and t3 come from the terminal: any int64 can arrive, and signed overflow is
             * undefined (C11 6.5p5). An exchange whose differences do not fit has no offset. */
            int64_t d21, d34, d41, d32, sum, rtt;
            if (__builtin_sub_overflow(t2, t1, &d21) || __builtin_sub_overflow(t3, t4, &d34) ||
                __builtin_add_overflow(d21, d34, &sum) || __builtin_sub_overflow(t4, t1, &d41) ||
                __builtin_sub_overflow(t3, t2, &d32) || __builtin_sub_overflow(d41, d32, &rtt)) {
                log_limited(LOG_WARN, s->ip, "%s: time sync timestamps out of range, no offset",
                            s->term->id);
            } else {
                int64_t offset = sum / 2;
                gstp_tlv_writer_t w;
                gstp_tlv_writer_init(&w, res + rlen, sizeof res - rlen);
                gstp_tlv_put_i64(&w, TAG_OFFSET_NS, offset);
                gstp_tlv_put_i64(&w, TAG_RTT_NS, rtt);
                if (w.err == GSTP_OK)
                    rlen += w.len;
                log_info(s->term->id, "time sync: offset %.3f ms, round trip %.3f ms", offset / 1e6,
                         rtt / 1e6);
            }
        }
    }
    submit_command_update(g, s->term->id, c.id, state, r.status, res, rlen);
    if (state == STORE_CMD_DONE)
        g->st_.commands_done++;
    else if (state == STORE_CMD_FAILED)
        g->st_.commands_failed++;
    log_info(s->term->id, "command %lld: %s (status %u)", (long long)c.id,
             store_cmd_state_name(state), r.status);
}

int gw_command_submit(gw_t *g, const char *id, int verb, const uint8_t *args, size_t args_len,
                      int64_t ttl_ns, gw_command_cb cb, void *ud)
{
    if (args_len > STORE_ARGS_MAX)
        return GS_ERANGE;
    if (g->stopping)
        return GS_ESTATE;
    store_item_t *it = store_item_new(STORE_ITEM_COMMAND_CREATE);
    snprintf(it->terminal_id, sizeof it->terminal_id, "%s", id);
    it->cmd_verb = verb;
    it->cmd_ttl_ns = ttl_ns > 0 ? ttl_ns : g->o.command_ttl_ns;
    it->cmd_max_pending = g->o.cmd_max_pending;
    it->when_ns = time_utc_ns();
    if (args_len) {
        it->data = xmalloc(args_len);
        memcpy(it->data, args, args_len);
        it->data_len = args_len;
    }
    cmd_req_t *q = xcalloc(1, sizeof *q);
    q->item = it;
    q->cb = cb;
    q->ud = ud;
    int64_t timeout =
        g->o.cmd_create_timeout_ns > 0 ? g->o.cmd_create_timeout_ns : 30 * 1000000000LL;
    q->deadline_ns = time_mono_ns() + timeout;
    it->cookie = (uint64_t)(uintptr_t)q;
    if (store_submit(g->st, it) < 0) { /* frees the item */
        free(q);
        return GS_ESTATE;
    }
    q->next = g->cmd_reqs;
    if (g->cmd_reqs)
        g->cmd_reqs->prev = q;
    g->cmd_reqs = q;
    return 0;
}

static int newcmd_cb(void *ud, const store_command_t *c)
{
    gw_t *g = ud;
    if (c->id > g->last_cmd_id)
        g->last_cmd_id = c->id;
    term_t *t = hmap_get(&g->terms, c->terminal_id);
    sess_t *s = t ? t->sess : NULL;
    if (!s || s->state != S_ONLINE || c->id <= s->cmd_cursor || c->expires_ns <= time_utc_ns() ||
        cancel_held(g, c->id))
        return 0; /* offline, already covered by this session's sweep, out of time, or being
                     cancelled (if that fails, the sweep takes it: see cancel_done) */
    if (s->cmd_sweep_done && !s->close_asap && inflight_room(s) > 0) {
        s->cmd_cursor = c->id;
        send_command(s, c);
    } else {
        s->cmd_sweep_done = 0; /* the paced sweep takes it, in order */
    }
    return 0;
}

/* Picks up commands created since the last look (by the writer for REST, or by other processes
 * such as `gridsense command send`) and delivers them to online terminals. Rows are visited in
 * id order, and ids grow in commit order, so no row is skipped. A read: never waits for the
 * writer. */
void gw__deliver_new_commands(gw_t *g)
{
    store_command_new_since(g->st, g->last_cmd_id, NEWCMD_PAGE, newcmd_cb, g);
}

static void cmd_req_unlink(gw_t *g, cmd_req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        g->cmd_reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* Finishes the creations the writer reported (items already processed into q->rc / q->cmd_id):
 * delivers new commands first, so the callback can say whether its command went out at once. */
void gw__finish_cmd_reqs(gw_t *g, cmd_req_t *done)
{
    int any = 0;
    for (cmd_req_t *q = done; q; q = q->next)
        any |= q->rc == 0;
    if (any && !g->stopping)
        gw__deliver_new_commands(g);
    while (done) {
        cmd_req_t *next = done->next;
        if (done->cb) {
            int sent = 0;
            if (done->rc == 0) {
                term_t *t = hmap_get(&g->terms, done->tid);
                sent = t && t->sess && inflight_has(t->sess, done->cmd_id);
            }
            done->cb(done->ud, done->rc, done->cmd_id, sent);
        }
        free(done);
        done = next;
    }
}

/* Command work of the tick: paced delivery every tick; once a second, expiry (through the
 * writer, checked first with a read so an idle server submits nothing), creations the database
 * did not take in time, and commands created by other processes. */
void gw__commands_tick(gw_t *g, int64_t wall)
{
    for (sess_t *s = g->sessions; s; s = s->next)
        if (s->state == S_ONLINE && !s->cmd_sweep_done)
            gw__send_pending_commands(s);
    int64_t mono = time_mono_ns();
    for (cmd_req_t *q = g->cmd_reqs; q; q = q->next) {
        if (q->cb && mono > q->deadline_ns && store_item_cancel(g->st, q->item) == 0) {
            log_warn(q->item->terminal_id, "command not created: the database was not available "
                                           "within the create timeout");
            gw_command_cb cb = q->cb;
            q->cb = NULL; /* the writer reports the item later (skipped); then q is freed */
            cb(q->ud, GS_ETIMEOUT, 0, 0);
        }
    }
    if (wall - g->last_poll_ns < 1000000000LL)
        return;
    g->last_poll_ns = wall;
    if (!g->expire_pending && store_command_any_expired(g->st, wall) > 0) {
        store_item_t *it = store_item_new(STORE_ITEM_COMMAND_EXPIRE);
        it->when_ns = wall;
        if (store_submit(g->st, it) == 0)
            g->expire_pending = 1;
    }
    gw__deliver_new_commands(g);
}

int gw_command_cancel(gw_t *g, store_item_t *it, gw_cancel_cb cb, void *ud)
{
    if (g->stopping || it->kind != STORE_ITEM_ACCOUNT || !it->acct ||
        it->acct->op != STORE_ACCT_COMMAND_CANCEL) {
        store_item_free(it);
        return g->stopping ? GS_ESTATE : GS_EINVAL;
    }
    struct cmd_cancel *c = xcalloc(1, sizeof *c);
    c->cmd_id = it->acct->object_id;
    c->cb = cb;
    c->ud = ud;
    store_command_t *cmd = xmalloc(sizeof *cmd);
    if (store_command_get(g->st, c->cmd_id, cmd) == 0)
        snprintf(c->tid, sizeof c->tid, "%s", cmd->terminal_id);
    free(cmd);
    it->notify = NULL; /* the answer comes back through the gateway's own completions */
    it->notify_ud = NULL;
    it->cookie = (uint64_t)(uintptr_t)c;
    /* Held from now: any send of this command after this point is skipped, and any send before
     * it has already submitted its `sent` state, which the writer applies first. */
    c->next = g->cmd_cancels;
    g->cmd_cancels = c;
    if (store_submit(g->st, it) < 0) { /* frees the item */
        g->cmd_cancels = c->next;
        free(c);
        return GS_ESTATE;
    }
    return 0;
}

/* The writer answered a cancel: release the hold, and when the command was not cancelled after
 * all (a store failure) let the terminal's session sweep deliver it again from before it. */
static void cancel_done(gw_t *g, const store_item_t *it)
{
    struct cmd_cancel *c = (struct cmd_cancel *)(uintptr_t)it->cookie, **pp = &g->cmd_cancels;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (!*pp)
        return; /* not ours */
    *pp = c->next;
    if (it->result != 0 && c->tid[0]) {
        term_t *t = hmap_get(&g->terms, c->tid);
        sess_t *s = t ? t->sess : NULL;
        if (s && s->state == S_ONLINE && s->cmd_cursor >= c->cmd_id) {
            s->cmd_cursor = c->cmd_id - 1; /* re-sends of sent ones are deduplicated by id */
            s->cmd_sweep_done = 0;
        }
    }
    if (it->result == 0 && g->cmd_cb)
        g->cmd_cb(g->cmd_ud, c->cmd_id, c->tid[0] ? c->tid : NULL, STORE_CMD_CANCELLED, 1);
    if (c->cb)
        c->cb(c->ud, it);
    free(c);
}

int gw__command_item_done(gw_t *g, const store_item_t *it, cmd_req_list_t *done)
{
    if (it->kind == STORE_ITEM_ACCOUNT && it->acct && it->acct->op == STORE_ACCT_COMMAND_CANCEL &&
        it->cookie) {
        cancel_done(g, it);
    } else if (it->kind == STORE_ITEM_COMMAND_CREATE) {
        cmd_req_t *q = (cmd_req_t *)(uintptr_t)it->cookie;
        cmd_req_unlink(g, q);
        q->rc = it->result;
        q->cmd_id = it->cmd_id;
        if (it->result == 0) {
            log_info(it->terminal_id, "command %lld created", (long long)it->cmd_id);
            if (g->cmd_cb)
                g->cmd_cb(g->cmd_ud, it->cmd_id, it->terminal_id, STORE_CMD_QUEUED, 1);
        }
        /* the caller frees the item next: keep what the callback needs */
        q->item = NULL;
        snprintf(q->tid, sizeof q->tid, "%s", it->terminal_id);
        if (done->tail)
            done->tail->next = q;
        else
            done->head = q;
        done->tail = q;
    } else if (it->kind == STORE_ITEM_COMMAND_EXPIRE) {
        g->expire_pending = 0;
        if (it->result >= 0 && it->cmd_count > 0) {
            g->st_.commands_expired += (uint64_t)it->cmd_count;
            log_info(NULL, "%d command(s) expired", it->cmd_count);
            if (g->cmd_cb)
                g->cmd_cb(g->cmd_ud, 0, NULL, STORE_CMD_EXPIRED, it->cmd_count);
        }
    } else if (it->kind == STORE_ITEM_COMMAND_UPDATE && it->result == GS_ESTATE) {
        log_debug(it->terminal_id, "command %lld was already final or further; update ignored",
                  (long long)it->cmd_id);
    } else if (it->kind == STORE_ITEM_COMMAND_UPDATE && it->result == 0) {
        if (g->cmd_cb)
            g->cmd_cb(g->cmd_ud, it->cmd_id, it->terminal_id, it->cmd_state, 1);
    } else {
        return 0;
    }
    return 1;
}

void gw__commands_free(gw_t *g)
{
    /* Creations never reported (none once gw_stop has drained the writer). */
    while (g->cmd_reqs) {
        cmd_req_t *q = g->cmd_reqs;
        g->cmd_reqs = q->next;
        free(q);
    }
    while (g->cmd_cancels) {
        struct cmd_cancel *c = g->cmd_cancels;
        g->cmd_cancels = c->next;
        free(c);
    }
}
