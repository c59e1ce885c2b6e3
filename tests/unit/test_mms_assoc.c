/* Unit tests of the server-side association state machine (src/iec61850/assoc.c, mms.h
 * "Server-side association"): the CLIENT side of every connection of the reference captures
 * (tests/vectors/mms) is replayed into it and its answers are decoded layer by layer and
 * compared with what the capture's server answered (CC with the negotiated TPDU size; ACCEPT with
 * CPA + AARE + initiate-response; one answer per confirmed request, same invokeIDs in the same
 * order; conclude-response; DISCONNECT with RLRE; nothing after a client abort); the wrong
 * password of f_acse_password_rejected is refused (silently as the reference server does, or
 * with an AARE authentication-failure); the same bytes split at every position give the same
 * answers; malformed input at every layer gets that layer's answer (ER, ABORT, ARP, AARE
 * rejection, Reject) and the state machine never reads out of bounds (the sanitizer build runs
 * the random mutations below). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "iec61850/mms.h"

/* ---- vectors ------------------------------------------------------------------------------ */

typedef struct {
    char file[96];
    int stream;
    uint8_t *c2s, *s2c; /* the stream's TPKTs of each direction, concatenated */
    size_t n_c2s, n_s2c;
} conn_t;

static conn_t conns[64];
static size_t n_conns;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static conn_t *conn_get(const char *file, int stream)
{
    for (size_t i = 0; i < n_conns; i++)
        if (conns[i].stream == stream && strcmp(conns[i].file, file) == 0)
            return &conns[i];
    assert_true(n_conns < 64);
    conn_t *c = &conns[n_conns++];
    memset(c, 0, sizeof *c);
    snprintf(c->file, sizeof c->file, "%s", file);
    c->stream = stream;
    return c;
}

static void append(uint8_t **b, size_t *n, const uint8_t *p, size_t len)
{
    *b = realloc(*b, *n + len);
    assert_non_null(*b);
    memcpy(*b + *n, p, len);
    *n += len;
}

static const char *const files[] = {
    "a_browse_client_example2",      "a_browse_mms_probe",
    "b_client_async_read_write_control", "b_client_example4_dataset",
    "b_read_write_mms_probe",        "c_report_client_example1",
    "c_report_client_example_reporting", "c_report_mms_probe_brcb_urcb",
    "d_files_file_tool_and_probe",   "d_files_probe_maxpdu4000",
    "e_abort_and_close_mms_probe",   "f_acse_password_rejected",
    "f_selectors_apt_accepted_basic_io",
};

static void load(void)
{
    static char line[1 << 18];
    static uint8_t bin[1 << 17];
    if (n_conns)
        return;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.hex", MMS_VECTORS_DIR, files[f]);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        while (fgets(line, sizeof line, fp)) {
            char dir[8], hex[sizeof line];
            int stream, idx;
            if (sscanf(line, "%7s %d %d %s", dir, &stream, &idx, hex) != 4)
                continue;
            size_t n = strlen(hex) / 2;
            for (size_t i = 0; i < n; i++)
                bin[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
            conn_t *c = conn_get(files[f], stream);
            if (strcmp(dir, "c2s") == 0)
                append(&c->c2s, &c->n_c2s, bin, n);
            else
                append(&c->s2c, &c->n_s2c, bin, n);
        }
        fclose(fp);
    }
}

/* ---- the association under test --------------------------------------------------------- */

typedef struct {
    uint8_t out[1 << 18];
    size_t n_out;
    size_t out_limit; /* a send beyond this fails (client not reading) */
    int events[64];
    int n_events;
    const char *password; /* NULL: no authentication */
    int auth_calls;
    int big_response; /* the service function writes more than any PDU size */
    int own_failure;
} sink_t;

static int t_send(void *ud, const uint8_t *p, size_t n)
{
    sink_t *s = ud;
    if (s->n_out + n > s->out_limit || s->n_out + n > sizeof s->out)
        return GS_ELIMIT;
    memcpy(s->out + s->n_out, p, n);
    s->n_out += n;
    return 0;
}

static void t_event(void *ud, int ev, const char *what)
{
    sink_t *s = ud;
    (void)what;
    if (s->n_events < 64)
        s->events[s->n_events++] = ev;
}

static int t_auth(void *ud, const mms_apdu_t *aarq)
{
    sink_t *s = ud;
    s->auth_calls++;
    if (!aarq->has_auth || !aarq->has_mechanism || !mms_oid_eq(&aarq->mechanism, MMS_OID_PASSWORD, 4))
        return MMS_ACSE_DIAG_AUTH_REQUIRED;
    if (aarq->auth_len != strlen(s->password) ||
        memcmp(aarq->auth_value, s->password, aarq->auth_len) != 0)
        return MMS_ACSE_DIAG_AUTH_FAILURE;
    return 0;
}

/* A stand-in for the model: Identify answered, anything else confirmed-Error
 * access/object-non-existent. */
static int t_confirmed(void *ud, const mms_pdu_t *req, mms_ber_writer_t *w, mms_answer_t *a)
{
    sink_t *s = ud;
    if (s->own_failure)
        return GS_ENOMEM;
    if (s->big_response) {
        static uint8_t big[70000];
        mms_bw_octets(w, MMS_BER_CONTEXT, 0, big, sizeof big);
        a->kind = MMS_ANS_RESP;
        a->service = req->service;
        a->constructed = true;
        return 0;
    }
    if (req->service == MMS_SVC_IDENTIFY) {
        size_t m = mms_bw_mark(w);
        (void)m;
        mms_bw_octets(w, MMS_BER_CONTEXT, 2, "1", 1);
        mms_bw_octets(w, MMS_BER_CONTEXT, 1, "test", 4);
        mms_bw_octets(w, MMS_BER_CONTEXT, 0, "gridsense", 9);
        a->kind = MMS_ANS_RESP;
        a->service = MMS_SVC_IDENTIFY;
        a->constructed = true;
        return 0;
    }
    a->kind = MMS_ANS_ERROR;
    a->err_class = 7;
    a->err_code = 2;
    return 0;
}

static mms_assoc_t *mk(sink_t *s, const mms_assoc_cfg_t *cfg_in)
{
    mms_assoc_cfg_t cfg;
    mms_assoc_io_t io = {s, t_send, t_event, NULL, t_confirmed, NULL};
    mms_assoc_t *a = NULL;
    if (cfg_in)
        cfg = *cfg_in;
    else
        mms_assoc_cfg_default(&cfg);
    if (s->password)
        io.authenticate = t_auth;
    if (!s->out_limit)
        s->out_limit = sizeof s->out;
    assert_int_equal(mms_assoc_new(&cfg, &io, &a), 0);
    return a;
}

static bool has_event(const sink_t *s, int ev)
{
    for (int i = 0; i < s->n_events; i++)
        if (s->events[i] == ev)
            return true;
    return false;
}

/* ---- decoding the server side (ours or the capture's) into a signature ------------------ */

enum { A_CC = 1, A_AC, A_MMS, A_DN, A_AB, A_ER, A_DR };

typedef struct {
    int kind;
    int code;          /* CC: TPDU size code; AC: AARE result; MMS: PDU type; AB: ARP reason */
    uint32_t invoke;   /* MMS answers */
    int diag;          /* AC: AARE diagnostic */
    mms_initiate_t in; /* AC accepted: the initiate-response */
    int rej_class, rej_code;
} ans_t;

typedef struct {
    ans_t a[512];
    int n;
    bool bad; /* something did not decode */
} sig_t;

static void sig_tsdu(sig_t *g, const uint8_t *p, size_t n)
{
    mms_spdu_t s;
    mms_ppdu_t pp;
    mms_apdu_t ap;
    mms_pdu_t pdu;
    ans_t *x = &g->a[g->n];
    memset(x, 0, sizeof *x);
    if (mms_spdu_decode(p, n, &s) < 0) {
        g->bad = true;
        return;
    }
    switch (s.si) {
    case MMS_SPDU_AC:
        x->kind = A_AC;
        if (mms_pres_decode_cpa(s.user_data, s.user_len, &pp) < 0 || pp.n_pdv != 1 ||
            mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &ap) < 0 ||
            ap.kind != MMS_APDU_AARE) {
            g->bad = true;
            return;
        }
        x->code = ap.result;
        x->diag = ap.diag;
        if (ap.result == MMS_ACSE_ACCEPTED) {
            if (!ap.user_info || mms_pdu_decode(ap.user_info, ap.user_len, &pdu, NULL) < 0 ||
                pdu.type != MMS_PDU_INITIATE_RESP) {
                g->bad = true;
                return;
            }
            x->in = pdu.init;
        }
        break;
    case MMS_SPDU_DT:
        x->kind = A_MMS;
        if (mms_pres_decode_data(s.user_data, s.user_len, &pp) < 0 || pp.n_pdv != 1 ||
            mms_pdu_decode(pp.pdv[0].data, pp.pdv[0].len, &pdu, NULL) < 0) {
            g->bad = true;
            return;
        }
        if (pdu.type == MMS_PDU_UNCONFIRMED)
            return; /* reports: the reference server's model, not the association */
        x->code = pdu.type;
        x->invoke = pdu.invoke_id;
        x->rej_class = pdu.rej_class;
        x->rej_code = pdu.rej_code;
        break;
    case MMS_SPDU_DN:
        x->kind = A_DN;
        if (mms_pres_decode_data(s.user_data, s.user_len, &pp) < 0 || pp.n_pdv != 1 ||
            mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &ap) < 0 || ap.kind != MMS_APDU_RLRE)
            g->bad = true;
        break;
    case MMS_SPDU_AB:
        x->kind = A_AB;
        x->code = -1;
        if (s.has_user_data && s.user_len && s.user_data[0] == 0x30) {
            if (mms_pres_decode_arp(s.user_data, s.user_len, &pp) < 0)
                g->bad = true;
            else
                x->code = pp.provider_reason;
        }
        break;
    default:
        g->bad = true;
        return;
    }
    if (g->n < 511)
        g->n++;
}

static void signature(const uint8_t *p, size_t n, sig_t *g)
{
    static uint8_t rbuf[1 << 17];
    mms_cotp_reasm_t r;
    memset(g, 0, sizeof *g);
    mms_cotp_reasm_init(&r, rbuf, sizeof rbuf);
    while (n) {
        const uint8_t *pl;
        size_t plen;
        mms_cotp_t c;
        int len = mms_tpkt_frame(p, n, MMS_TPKT_MAX, &pl, &plen);
        if (len <= 0 || mms_cotp_decode(pl, plen, &c) < 0) {
            g->bad = true;
            return;
        }
        ans_t *x = &g->a[g->n];
        memset(x, 0, sizeof *x);
        if (c.type == MMS_COTP_CC) {
            x->kind = A_CC;
            x->code = c.tpdu_size_code;
            g->n++;
        } else if (c.type == MMS_COTP_ER) {
            x->kind = A_ER;
            x->code = c.reason;
            g->n++;
        } else if (c.type == MMS_COTP_DR) {
            x->kind = A_DR;
            g->n++;
        } else if (c.type == MMS_COTP_DT) {
            int rc = mms_cotp_reasm_add(&r, &c);
            if (rc < 0) {
                g->bad = true;
                return;
            }
            if (rc == 1)
                sig_tsdu(g, r.buf, r.len);
        }
        p += len;
        n -= (size_t)len;
    }
}

/* ---- tests ----------------------------------------------------------------------------- */

static bool is_password_conn(const conn_t *c)
{
    return strcmp(c->file, "f_acse_password_rejected") == 0;
}

/* Every connection: our answers match the capture server's, answer for answer. */
static void test_replay_captures(void **state)
{
    (void)state;
    load();
    assert_int_equal(n_conns, 17);
    int n_answers = 0, n_concluded = 0, n_released = 0, n_aborted = 0;
    for (size_t i = 0; i < n_conns; i++) {
        conn_t *c = &conns[i];
        if (is_password_conn(c))
            continue;
        static sink_t s;
        static sig_t ours, theirs;
        memset(&s, 0, sizeof s);
        mms_assoc_t *a = mk(&s, NULL);
        int rc = mms_assoc_input(a, c->c2s, c->n_c2s);
        signature(s.out, s.n_out, &ours);
        signature(c->s2c, c->n_s2c, &theirs);
        assert_false(ours.bad);
        assert_false(theirs.bad);
        if (ours.n != theirs.n) {
            fprintf(stderr, "%s/%d: %d answers, capture %d\n", c->file, c->stream, ours.n,
                    theirs.n);
            for (int k = 0; k < ours.n || k < theirs.n; k++)
                fprintf(stderr, "  ours %d/%d/%u  theirs %d/%d/%u\n", ours.a[k].kind,
                        ours.a[k].code, ours.a[k].invoke, theirs.a[k].kind, theirs.a[k].code,
                        theirs.a[k].invoke);
        }
        assert_int_equal(ours.n, theirs.n);
        for (int k = 0; k < ours.n; k++) {
            ans_t *o = &ours.a[k], *t = &theirs.a[k];
            assert_int_equal(o->kind, t->kind);
            switch (o->kind) {
            case A_CC: /* the same TPDU size: both offer 8192 at most */
                assert_int_equal(o->code, t->code);
                break;
            case A_AC:
                assert_int_equal(o->code, MMS_ACSE_ACCEPTED);
                assert_int_equal(t->code, MMS_ACSE_ACCEPTED);
                /* negotiated PDU size as the reference server (min of the proposal and 65000:
                 * d_files_probe_maxpdu4000 proposes 4000) */
                assert_int_equal(o->in.local_detail, t->in.local_detail);
                assert_int_equal((int)mms_assoc_pdu_size(a), o->in.local_detail);
                assert_true(o->in.has_nesting && o->in.nesting <= 10);
                assert_int_equal(o->in.version, 1);
                assert_true(o->in.max_serv_calling >= 1 && o->in.max_serv_calling <= 5);
                assert_int_equal(o->in.services_bits, 85);
                break;
            case A_MMS:
                /* a confirmed answer (response, error or reject) to the same invokeID, or the
                 * conclude-response */
                if (t->code == MMS_PDU_CONCLUDE_RESP) {
                    assert_int_equal(o->code, MMS_PDU_CONCLUDE_RESP);
                    n_concluded++;
                } else {
                    assert_true(o->code == MMS_PDU_CONFIRMED_RESP ||
                                o->code == MMS_PDU_CONFIRMED_ERR);
                    assert_int_equal(o->invoke, t->invoke);
                    n_answers++;
                }
                break;
            case A_DN:
                n_released++;
                break;
            default:
                break;
            }
        }
        if (has_event(&s, MMS_AEV_PEER_ABORT))
            n_aborted++;
        /* ended connections are closed; the others still associated */
        assert_true(rc == GS_ECLOSED || mms_assoc_associated(a));
        assert_false(has_event(&s, MMS_AEV_PROTOCOL_ERROR));
        mms_assoc_free(a);
    }
    /* what the captures hold (README): 6 releases, 5 client aborts */
    assert_int_equal(n_released, 6);
    assert_int_equal(n_aborted, 5);
    assert_int_equal(n_concluded, 6);
    assert_int_equal(n_answers, 99); /* every confirmed request of the captures */
}

/* Splits at every byte, and byte by byte: the same answers. */
static void test_splits(void **state)
{
    (void)state;
    load();
    static sink_t whole, part;
    for (size_t i = 0; i < n_conns; i++) {
        conn_t *c = &conns[i];
        memset(&whole, 0, sizeof whole);
        whole.password = is_password_conn(c) ? "secret" : NULL;
        mms_assoc_t *a = mk(&whole, NULL);
        mms_assoc_input(a, c->c2s, c->n_c2s);
        mms_assoc_free(a);
        assert_true(whole.n_out > 0);
        for (size_t k = 0; k <= c->n_c2s; k++) {
            memset(&part, 0, sizeof part);
            part.password = whole.password;
            a = mk(&part, NULL);
            mms_assoc_input(a, c->c2s, k);
            mms_assoc_input(a, c->c2s + k, c->n_c2s - k);
            mms_assoc_free(a);
            assert_int_equal(part.n_out, whole.n_out);
            assert_memory_equal(part.out, whole.out, whole.n_out);
        }
        memset(&part, 0, sizeof part);
        part.password = whole.password;
        a = mk(&part, NULL);
        for (size_t k = 0; k < c->n_c2s; k++)
            mms_assoc_input(a, c->c2s + k, 1);
        mms_assoc_free(a);
        assert_int_equal(part.n_out, whole.n_out);
        assert_memory_equal(part.out, whole.out, whole.n_out);
    }
}

static conn_t *find_conn(const char *file, int stream)
{
    load();
    for (size_t i = 0; i < n_conns; i++)
        if (conns[i].stream == stream && strcmp(conns[i].file, file) == 0)
            return &conns[i];
    fail();
    return NULL;
}

/* f_acse_password_rejected: the client sends "top secret"; the server expects another. */
static void test_password(void **state)
{
    (void)state;
    conn_t *c = find_conn("f_acse_password_rejected", 0);
    static sink_t s;
    static sig_t ours, theirs;
    mms_assoc_cfg_t cfg;

    /* silent, as the reference server: CC, then the connection closes without an answer */
    mms_assoc_cfg_default(&cfg);
    cfg.auth_fail_silent = true;
    memset(&s, 0, sizeof s);
    s.password = "wrong one";
    mms_assoc_t *a = mk(&s, &cfg);
    assert_int_equal(mms_assoc_input(a, c->c2s, c->n_c2s), GS_ECLOSED);
    signature(s.out, s.n_out, &ours);
    signature(c->s2c, c->n_s2c, &theirs);
    assert_int_equal(ours.n, 1);
    assert_int_equal(theirs.n, 1);
    assert_int_equal(ours.a[0].kind, A_CC);
    assert_int_equal(theirs.a[0].kind, A_CC);
    assert_int_equal(ours.a[0].code, theirs.a[0].code);
    assert_int_equal(s.n_out, c->n_s2c); /* the same CC, byte for byte */
    assert_memory_equal(s.out, c->s2c, c->n_s2c);
    assert_true(has_event(&s, MMS_AEV_AUTH_FAILED));
    assert_true(has_event(&s, MMS_AEV_CLOSE));
    assert_false(has_event(&s, MMS_AEV_ASSOCIATED));
    mms_assoc_free(a);

    /* default: an AARE rejected-permanent, authentication-failure (ISO 8650-1), then closed */
    memset(&s, 0, sizeof s);
    s.password = "wrong one";
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, c->c2s, c->n_c2s), GS_ECLOSED);
    signature(s.out, s.n_out, &ours);
    assert_false(ours.bad);
    assert_int_equal(ours.n, 2);
    assert_int_equal(ours.a[1].kind, A_AC);
    assert_int_equal(ours.a[1].code, MMS_ACSE_REJ_PERMANENT);
    assert_int_equal(ours.a[1].diag, MMS_ACSE_DIAG_AUTH_FAILURE);
    assert_true(has_event(&s, MMS_AEV_AUTH_FAILED));
    mms_assoc_free(a);

    /* the right password associates */
    memset(&s, 0, sizeof s);
    s.password = "top secret";
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, c->c2s, c->n_c2s), 0);
    signature(s.out, s.n_out, &ours);
    assert_int_equal(ours.n, 2);
    assert_int_equal(ours.a[1].code, MMS_ACSE_ACCEPTED);
    assert_true(mms_assoc_associated(a));
    assert_int_equal(s.auth_calls, 1);
    mms_assoc_free(a);

    /* a password required and none sent (another capture): authentication-required */
    c = find_conn("a_browse_client_example2", 0);
    memset(&s, 0, sizeof s);
    s.password = "x";
    a = mk(&s, NULL);
    mms_assoc_input(a, c->c2s, c->n_c2s);
    signature(s.out, s.n_out, &ours);
    assert_int_equal(ours.n, 2);
    assert_int_equal(ours.a[1].code, MMS_ACSE_REJ_PERMANENT);
    assert_int_equal(ours.a[1].diag, MMS_ACSE_DIAG_AUTH_REQUIRED);
    assert_true(mms_assoc_closed(a));
    mms_assoc_free(a);
}

/* ---- building client input ------------------------------------------------------------- */

/* The first two TPKTs (CR, CONNECT) of a capture connection: the prefix of an association. */
static size_t assoc_prefix(const conn_t *c, int tpkts)
{
    size_t off = 0;
    for (int i = 0; i < tpkts; i++) {
        const uint8_t *pl;
        size_t plen;
        int len = mms_tpkt_frame(c->c2s + off, c->n_c2s - off, MMS_TPKT_MAX, &pl, &plen);
        assert_true(len > 0);
        off += (size_t)len;
    }
    return off;
}

/* A DT TPKT carrying SPDU bytes. */
static size_t dt(uint8_t *out, size_t cap, const uint8_t *spdu, size_t n)
{
    int len = mms_cotp_encode_dt(out, cap, true, spdu, n);
    assert_true(len > 0);
    return (size_t)len;
}

/* A DT TPKT: session DATA TRANSFER, presentation data of context ctx around pdu. */
static size_t data_tpkt(uint8_t *out, size_t cap, int ctx, const uint8_t *pdu, size_t n)
{
    static uint8_t pbuf[4096], sbuf[4200];
    mms_ppdu_t pp;
    mms_spdu_t s;
    mms_ber_writer_t w;
    memset(&pp, 0, sizeof pp);
    pp.n_pdv = 1;
    pp.pdv[0].ctx_id = ctx;
    pp.pdv[0].data = pdu;
    pp.pdv[0].len = n;
    mms_bw_init(&w, pbuf, sizeof pbuf);
    mms_pres_encode_data(&w, &pp);
    assert_int_equal(w.err, 0);
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_DT;
    s.has_user_data = true;
    s.user_data = mms_bw_data(&w);
    s.user_len = mms_bw_len(&w);
    int len = mms_spdu_encode(sbuf, sizeof sbuf, &s);
    assert_true(len > 0);
    return dt(out, cap, sbuf, (size_t)len);
}

/* Runs prefix + extra through a fresh association; returns the signature of what came after
 * the prefix's answers. */
static void run_after(const conn_t *c, int tpkts, const uint8_t *extra, size_t n, sink_t *s,
                      sig_t *g, int *first)
{
    static sig_t pre;
    size_t off = assoc_prefix(c, tpkts);
    mms_assoc_t *a = mk(s, NULL);
    mms_assoc_input(a, c->c2s, off);
    signature(s->out, s->n_out, &pre);
    *first = pre.n;
    mms_assoc_input(a, extra, n);
    signature(s->out, s->n_out, g);
    mms_assoc_free(a);
}

static void test_malformed_layers(void **state)
{
    (void)state;
    conn_t *c = find_conn("a_browse_mms_probe", 0);
    static sink_t s;
    static sig_t g;
    static uint8_t in[8192];
    int first;
    size_t n;

    /* TPKT version 2: closed, nothing sent */
    memset(&s, 0, sizeof s);
    mms_assoc_t *a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, (const uint8_t[]){2, 0, 0, 8, 2, 0xF0, 0x80, 0}, 8),
                     GS_ECLOSED);
    assert_int_equal(s.n_out, 0);
    assert_true(has_event(&s, MMS_AEV_PROTOCOL_ERROR));
    mms_assoc_free(a);
    /* TPKT longer than the largest TPDU (8192 + 4): closed before the bytes arrive */
    memset(&s, 0, sizeof s);
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, (const uint8_t[]){3, 0, 0xFF, 0xFF}, 4), GS_ECLOSED);
    assert_int_equal(s.n_out, 0);
    mms_assoc_free(a);
    /* TPKT shorter than 7: closed */
    memset(&s, 0, sizeof s);
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, (const uint8_t[]){3, 0, 0, 5, 0}, 5), GS_ECLOSED);
    mms_assoc_free(a);

    /* COTP: unknown TPDU type -> ER, closed */
    memset(&s, 0, sizeof s);
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, (const uint8_t[]){3, 0, 0, 7, 2, 0x50, 0x80}, 7),
                     GS_ECLOSED);
    signature(s.out, s.n_out, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.a[0].kind, A_ER);
    mms_assoc_free(a);
    /* DT before CR -> ER bad type */
    memset(&s, 0, sizeof s);
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, (const uint8_t[]){3, 0, 0, 8, 2, 0xF0, 0x80, 1}, 8),
                     GS_ECLOSED);
    signature(s.out, s.n_out, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.a[0].kind, A_ER);
    assert_int_equal(g.a[0].code, MMS_COTP_ER_BAD_TYPE);
    mms_assoc_free(a);
    /* a second CR -> ER */
    memset(&s, 0, sizeof s);
    n = assoc_prefix(c, 1);
    memcpy(in, c->c2s, n);
    memcpy(in + n, c->c2s, n);
    a = mk(&s, NULL);
    assert_int_equal(mms_assoc_input(a, in, 2 * n), GS_ECLOSED);
    signature(s.out, s.n_out, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.a[0].kind, A_CC);
    assert_int_equal(g.a[1].kind, A_ER);
    mms_assoc_free(a);
    /* COTP DR from the client: closed, peer abort */
    memset(&s, 0, sizeof s);
    n = (size_t)mms_cotp_encode_dr(in, sizeof in, 1, 1, 0);
    run_after(c, 1, in, n, &s, &g, &first);
    assert_int_equal(g.n, first);
    assert_true(has_event(&s, MMS_AEV_PEER_ABORT));

    /* session: garbage SPDU after CC -> ABORT (protocol error), no ARP */
    memset(&s, 0, sizeof s);
    n = dt(in, sizeof in, (const uint8_t[]){0x77, 0x02, 0x01, 0x00}, 4);
    run_after(c, 1, in, n, &s, &g, &first);
    assert_int_equal(g.n, first + 1);
    assert_int_equal(g.a[first].kind, A_AB);
    assert_int_equal(g.a[first].code, -1);
    /* session: DATA TRANSFER before CONNECT -> ABORT */
    memset(&s, 0, sizeof s);
    n = data_tpkt(in, sizeof in, 3, (const uint8_t[]){0xA0, 0x03, 0x02, 0x01, 0x01}, 5);
    run_after(c, 1, in, n, &s, &g, &first);
    assert_int_equal(g.n, first + 1);
    assert_int_equal(g.a[first].kind, A_AB);

    /* presentation: CONNECT whose CP is garbage -> ABORT with ARP */
    memset(&s, 0, sizeof s);
    {
        mms_spdu_t cn;
        static uint8_t sbuf[512];
        memset(&cn, 0, sizeof cn);
        cn.si = MMS_SPDU_CN;
        cn.has_user_data = true;
        cn.user_data = (const uint8_t[]){0x31, 0x03, 0x02, 0x01, 0x05};
        cn.user_len = 5;
        int len = mms_spdu_encode(sbuf, sizeof sbuf, &cn);
        assert_true(len > 0);
        n = dt(in, sizeof in, sbuf, (size_t)len);
    }
    run_after(c, 1, in, n, &s, &g, &first);
    assert_int_equal(g.n, first + 1);
    assert_int_equal(g.a[first].kind, A_AB);
    assert_true(g.a[first].code >= 0);

    /* ACSE: the capture's CONNECT with the AARQ's application context changed -> AARE
     * rejected (application-context-name-not-supported) */
    {
        size_t p1 = assoc_prefix(c, 1), p2 = assoc_prefix(c, 2);
        static const uint8_t mmsctx[] = {0x06, 0x05, 0x28, 0xCA, 0x22, 0x02, 0x03};
        memcpy(in, c->c2s + p1, p2 - p1);
        uint8_t *hit = NULL;
        for (size_t k = 0; k + sizeof mmsctx <= p2 - p1; k++)
            if (memcmp(in + k, mmsctx, sizeof mmsctx) == 0)
                hit = in + k;
        assert_non_null(hit);
        hit[6] = 0x07; /* 1.0.9506.2.7 */
        memset(&s, 0, sizeof s);
        run_after(c, 1, in, p2 - p1, &s, &g, &first);
        assert_int_equal(g.n, first + 1);
        assert_int_equal(g.a[first].kind, A_AC);
        assert_int_equal(g.a[first].code, MMS_ACSE_REJ_PERMANENT);
        assert_int_equal(g.a[first].diag, MMS_ACSE_DIAG_CTX_NOT_SUPPORTED);
        assert_true(has_event(&s, MMS_AEV_REFUSED));
    }

    /* MMS: a garbage PDU after association -> Reject, the association stays and answers the
     * next request (Identify, invokeID 9) */
    {
        static const uint8_t bad[] = {0xA0, 0x03, 0x02, 0x01}; /* truncated */
        static const uint8_t ident[] = {0xA0, 0x05, 0x02, 0x01, 0x09, 0x82, 0x00};
        static const uint8_t unknown_svc[] = {0xA0, 0x06, 0x02, 0x01, 0x0A, 0xBF, 0x5A, 0x00};
        n = data_tpkt(in, sizeof in, 3, bad, sizeof bad);
        n += data_tpkt(in + n, sizeof in - n, 3, ident, sizeof ident);
        n += data_tpkt(in + n, sizeof in - n, 3, unknown_svc, sizeof unknown_svc);
        memset(&s, 0, sizeof s);
        run_after(c, 2, in, n, &s, &g, &first);
        assert_false(g.bad);
        assert_int_equal(g.n, first + 3);
        assert_int_equal(g.a[first].code, MMS_PDU_REJECT);
        assert_int_equal(g.a[first + 1].code, MMS_PDU_CONFIRMED_RESP);
        assert_int_equal(g.a[first + 1].invoke, 9);
        assert_int_equal(g.a[first + 2].code, MMS_PDU_REJECT);
        assert_int_equal(g.a[first + 2].rej_class, MMS_REJ_CONFIRMED_REQUEST);
        assert_true(has_event(&s, MMS_AEV_ASSOCIATED));
        assert_false(has_event(&s, MMS_AEV_CLOSE));
    }
    /* MMS data in the ACSE context -> ABORT with ARP */
    {
        static const uint8_t ident[] = {0xA0, 0x05, 0x02, 0x01, 0x09, 0x82, 0x00};
        n = data_tpkt(in, sizeof in, 1, ident, sizeof ident);
        memset(&s, 0, sizeof s);
        run_after(c, 2, in, n, &s, &g, &first);
        assert_int_equal(g.n, first + 1);
        assert_int_equal(g.a[first].kind, A_AB);
        assert_int_equal(g.a[first].code, 6);
    }
    /* a TSDU beyond the reassembly bound (DTs without EOT) -> ABORT */
    {
        static uint8_t chunk[8000];
        memset(&s, 0, sizeof s);
        mms_assoc_cfg_t cfg;
        mms_assoc_cfg_default(&cfg);
        cfg.max_pdu = 4000;
        cfg.max_tsdu = 5000;
        a = mk(&s, &cfg);
        mms_assoc_input(a, c->c2s, assoc_prefix(c, 2));
        assert_true(mms_assoc_associated(a));
        size_t before = s.n_out;
        for (int k = 0; k < 4 && !mms_assoc_closed(a); k++) {
            int len = mms_cotp_encode_dt(in, sizeof in, false, chunk, 2000);
            mms_assoc_input(a, in, (size_t)len);
        }
        assert_true(mms_assoc_closed(a));
        signature(s.out + before, s.n_out - before, &g);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.a[0].kind, A_AB);
        mms_assoc_free(a);
    }
}

static void test_limits_and_reports(void **state)
{
    (void)state;
    conn_t *c = find_conn("a_browse_mms_probe", 0);
    static sink_t s;
    static sig_t g;
    static uint8_t in[4096];
    static const uint8_t ident[] = {0xA0, 0x05, 0x02, 0x01, 0x09, 0x82, 0x00};
    size_t n;

    /* a response above the negotiated PDU size -> confirmed-Error resource */
    memset(&s, 0, sizeof s);
    s.big_response = 1;
    mms_assoc_t *a = mk(&s, NULL);
    mms_assoc_input(a, c->c2s, assoc_prefix(c, 2));
    size_t before = s.n_out;
    n = data_tpkt(in, sizeof in, 3, ident, sizeof ident);
    mms_assoc_input(a, in, n);
    signature(s.out + before, s.n_out - before, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.a[0].code, MMS_PDU_CONFIRMED_ERR);
    assert_int_equal(g.a[0].invoke, 9);
    /* an unconfirmed PDU (report) goes out in DTs of the negotiated TPDU size */
    mms_ber_writer_t w;
    static uint8_t body[20000];
    assert_int_equal(mms_assoc_unconfirmed_begin(a, &w), 0);
    mms_bw_octets(&w, MMS_BER_CONTEXT, 1, body, sizeof body);
    before = s.n_out;
    assert_int_equal(mms_assoc_unconfirmed_end(a, &w, MMS_USVC_INFORMATION_REPORT), 0);
    signature(s.out + before, s.n_out - before, &g);
    assert_false(g.bad);
    assert_int_equal(g.n, 0); /* (unconfirmed PDUs are left out of signatures) */
    assert_true(s.n_out - before > 20000 + 3 * 7); /* three DTs at least (8192) */
    /* too big for the PDU size: refused, not sent */
    static uint8_t huge[70000];
    assert_int_equal(mms_assoc_unconfirmed_begin(a, &w), 0);
    mms_bw_octets(&w, MMS_BER_CONTEXT, 1, huge, sizeof huge);
    before = s.n_out;
    assert_int_equal(mms_assoc_unconfirmed_end(a, &w, MMS_USVC_INFORMATION_REPORT), GS_ELIMIT);
    assert_int_equal(s.n_out, before);
    /* our abort: ABORT with ARU/ABRT, closed, idempotent */
    mms_assoc_abort(a);
    mms_assoc_abort(a);
    signature(s.out + before, s.n_out - before, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.a[0].kind, A_AB);
    assert_true(mms_assoc_closed(a));
    assert_int_equal(mms_assoc_unconfirmed_begin(a, &w), GS_ECLOSED);
    mms_assoc_free(a);

    /* the service function failing -> confirmed-Error, association stays */
    memset(&s, 0, sizeof s);
    s.own_failure = 1;
    a = mk(&s, NULL);
    mms_assoc_input(a, c->c2s, assoc_prefix(c, 2));
    before = s.n_out;
    mms_assoc_input(a, in, n);
    signature(s.out + before, s.n_out - before, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.a[0].code, MMS_PDU_CONFIRMED_ERR);
    assert_true(mms_assoc_associated(a));
    mms_assoc_free(a);

    /* a client that does not read: the caller's queue refuses -> closed */
    memset(&s, 0, sizeof s);
    a = mk(&s, NULL);
    mms_assoc_input(a, c->c2s, assoc_prefix(c, 2));
    s.out_limit = s.n_out + 10;
    assert_int_equal(mms_assoc_input(a, in, n), GS_ECLOSED);
    assert_true(has_event(&s, MMS_AEV_CLOSE));
    mms_assoc_free(a);

    /* a CR proposing 1024-octet TPDUs: CC says 1024 (code 10), DTs of that size */
    {
        mms_cotp_t cr;
        memset(&cr, 0, sizeof cr);
        cr.type = MMS_COTP_CR;
        cr.src_ref = 7;
        cr.tpdu_size_code = 10;
        int len = mms_cotp_encode_cr_cc(in, sizeof in, &cr);
        memset(&s, 0, sizeof s);
        a = mk(&s, NULL);
        mms_assoc_input(a, in, (size_t)len);
        signature(s.out, s.n_out, &g);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.a[0].code, 10);
        assert_int_equal(mms_assoc_tpdu_size(a), 1024);
        mms_assoc_free(a);
        /* none proposed: 128 (ISO 8073 default), not written in the CC */
        cr.tpdu_size_code = 0;
        len = mms_cotp_encode_cr_cc(in, sizeof in, &cr);
        memset(&s, 0, sizeof s);
        a = mk(&s, NULL);
        mms_assoc_input(a, in, (size_t)len);
        assert_int_equal(mms_assoc_tpdu_size(a), 128);
        mms_assoc_free(a);
    }
}

/* Random mutations of every capture connection's client bytes: whatever happens, every TPKT
 * we send decodes, and nothing reads out of bounds (sanitizer build). */
static void test_mutations(void **state)
{
    (void)state;
    load();
    static sink_t s;
    static sig_t g;
    static uint8_t buf[1 << 14];
    uint32_t seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        conn_t *c = &conns[(size_t)iter % n_conns];
        size_t n = c->n_c2s < sizeof buf ? c->n_c2s : sizeof buf;
        memcpy(buf, c->c2s, n);
        int muts = 1 + iter % 4;
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            buf[pos] = (uint8_t)(seed >> 16);
        }
        memset(&s, 0, sizeof s);
        mms_assoc_t *a = mk(&s, NULL);
        mms_assoc_input(a, buf, n);
        mms_assoc_free(a);
        signature(s.out, s.n_out, &g);
        assert_false(g.bad);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_captures),  cmocka_unit_test(test_splits),
        cmocka_unit_test(test_password),         cmocka_unit_test(test_malformed_layers),
        cmocka_unit_test(test_limits_and_reports), cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
