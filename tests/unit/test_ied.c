/* Unit tests of src/ied: LD naming both ways, GetNameList paging, GetVariableAccessAttributes
 * and Read encodings decoded back with the mms_ber reader, quality and time of offline and
 * unsynchronised terminals, Write refusals, malformed requests (Reject, never a crash), and every
 * confirmed request of the reference captures (tests/vectors/mms) through ied_confirmed.
 *
 * `test_ied --corpus DIR` writes the captures' request bodies as the fuzz corpus seeds of
 * tests/fuzz/ied_confirmed.c (one file per body: service octet, constructed octet, body). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "ied/ied.h"
#include "ied/ied_int.h"

#define T0_NS 1796466031250000000LL /* 2026-12-05T10:20:31.25Z */

/* ---- helpers ----------------------------------------------------------------------------------
 */

static ied_terminal_t term(const char *id, int online, int tq)
{
    ied_terminal_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.name, sizeof t.name, "feeder %s", id);
    t.nominal_hz = 50;
    t.vt_ratio = 200; /* 11 kV / 55 V */
    t.ct_ratio = 40;
    t.online = online;
    t.has_status = tq >= 0;
    t.status.time_quality = (uint8_t)(tq >= 0 ? tq : 0);
    t.status.temp_c10 = GSTP_NA_I16; /* a STATUS without readings */
    t.status.supply_mv = GSTP_NA_U16;
    t.status.rsrp_dbm = t.status.rssi_dbm = GSTP_NA_I16;
    return t;
}

static const char *LATEST =
    "{\"t_ref_ns\":1796466031250000000,\"window\":7,\"freq\":50.01,\"flags\":[],"
    "\"channels\":["
    "{\"name\":\"Ua\",\"rms\":57.5,\"fundamental\":{\"mag\":57.4,\"deg\":10.0}},"
    "{\"name\":\"Ub\",\"rms\":57.6,\"fundamental\":{\"mag\":57.5,\"deg\":-110.0}},"
    "{\"name\":\"Uc\",\"rms\":57.7,\"fundamental\":{\"mag\":57.6,\"deg\":130.0}},"
    "{\"name\":\"Ia\",\"rms\":5.0,\"fundamental\":{\"mag\":5.0,\"deg\":-20.0}},"
    "{\"name\":\"Ib\",\"rms\":5.1,\"fundamental\":{\"mag\":5.1,\"deg\":-140.0}},"
    "{\"name\":\"Ic\",\"rms\":5.2,\"fundamental\":{\"mag\":5.2,\"deg\":100.0}}],"
    "\"line_to_line_rms\":[99.5,99.6,99.7],"
    "\"power\":{\"phases\":[{\"phase\":\"a\",\"p\":250.0,\"q\":30.0,\"s\":252.0,\"pf\":0.99},"
    "{\"phase\":\"b\",\"p\":251.0,\"q\":31.0,\"s\":253.0,\"pf\":0.98},"
    "{\"phase\":\"c\",\"p\":252.0,\"q\":32.0,\"s\":254.0,\"pf\":0.97}],"
    "\"p\":753.0,\"q\":93.0,\"s_eff\":759.0,\"pf\":0.98}}";

/* A window with sequences, harmonics and a synchrophasor report (slice 2 LNs). */
static const char *LATEST2 =
    "{\"t_ref_ns\":1796466031250000000,\"freq\":50.0,\"flags\":[],"
    "\"channels\":["
    "{\"name\":\"Ua\",\"rms\":57.5,\"fundamental\":{\"mag\":57.4,\"deg\":10.0},\"thd_pct\":2.5,"
    "\"harmonic_groups\":[0.01,57.4,0.0,1.5,0.0,0.8],"
    "\"harmonic_angles_deg\":[null,0,null,-171.0,null,33.0]},"
    "{\"name\":\"Ib\",\"rms\":5.1,\"fundamental\":{\"mag\":5.1,\"deg\":-140.0},"
    "\"harmonic_groups\":[0.0,5.1,0.0,0.2]},"
    "{\"name\":\"In\",\"rms\":0.3,\"harmonic_groups\":[0.0,0.1,0.0,0.25],"
    "\"harmonic_angles_deg\":[null,0,null,90.0]}],"
    "\"voltage_sequence\":{\"zero\":0.01,\"positive\":57.7,\"negative\":0.2,"
    "\"positive_deg\":12.0,\"unbalance_zero_pct\":0.02,\"unbalance_neg_pct\":0.35},"
    "\"phasor\":{\"t_ns\":1796466031900000000,\"index\":9,\"rate\":10,\"freq\":50.0123,"
    "\"rocof\":0.0012,\"flags\":[],\"v1\":{\"mag\":57.7349,\"deg\":2.2141},"
    "\"i1\":{\"mag\":5.00012,\"deg\":-27.7859},"
    "\"phasors\":{\"Ua\":{\"mag\":57.7351,\"deg\":2.2135},\"Ic\":{\"mag\":5.0,\"deg\":-150.5}}}}";

typedef struct {
    ied_t *m;
    ied_client_t *c;
    uint8_t buf[70000];
    mms_ber_writer_t w;
    ied_answer_t a;
} fx_t;

static fx_t *fx_new(uint32_t max_pdu)
{
    fx_t *f = calloc(1, sizeof *f);
    ied_opts_t o;
    char err[128];
    ied_opts_default(&o);
    snprintf(o.revision, sizeof o.revision, "0.1.0");
    assert_int_equal(ied_new(&o, &f->m, err, sizeof err), 0);
    ied_terminal_t ts[3] = {term("DEMO-0001", 1, GSTP_TQ_GPS_LOCKED),
                            term("T.2", 0, GSTP_TQ_NETWORK_SYNCED),
                            term("free-run", 1, GSTP_TQ_FREE_RUNNING)};
    assert_int_equal(ied_set_terminals(f->m, ts, 3, T0_NS), 0);
    assert_int_equal(ied_ld_count(f->m), 3);
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST, T0_NS), 0);
    assert_int_equal(ied_update_latest(f->m, "T.2", LATEST, T0_NS), 0);
    assert_int_equal(ied_client_new(f->m, max_pdu, &f->c), 0);
    return f;
}

static void fx_free(fx_t *f)
{
    ied_client_free(f->c);
    ied_free(f->m);
    free(f);
}

/* Runs one request; returns the response contents (valid until the next call). */
static const uint8_t *call(fx_t *f, int svc, bool cons, const uint8_t *body, size_t len,
                           size_t *out_len)
{
    mms_bw_init(&f->w, f->buf, sizeof f->buf);
    memset(&f->a, 0x55, sizeof f->a);
    assert_int_equal(ied_confirmed(f->c, svc, cons, body, len, &f->w, &f->a), 0);
    *out_len = mms_bw_len(&f->w);
    return mms_bw_data(&f->w);
}

/* BER builders for requests (forward, small). */
typedef struct {
    uint8_t b[2048];
    size_t n;
} bb_t;

static void put_tlv(bb_t *o, uint8_t id, const void *p, size_t n)
{
    o->b[o->n++] = id;
    if (n < 128) {
        o->b[o->n++] = (uint8_t)n;
    } else {
        o->b[o->n++] = 0x82;
        o->b[o->n++] = (uint8_t)(n >> 8);
        o->b[o->n++] = (uint8_t)n;
    }
    if (n) /* p may be NULL for an empty value */
        memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put_str(bb_t *o, uint8_t id, const char *s)
{
    put_tlv(o, id, s, strlen(s));
}

static void wrap(bb_t *o, uint8_t id, const bb_t *in)
{
    put_tlv(o, id, in->b, in->n);
}

/* ObjectName domain-specific [1] { dom, item } */
static void objname_dom(bb_t *o, const char *dom, const char *item)
{
    bb_t s = {0};
    put_str(&s, 0x1A, dom);
    put_str(&s, 0x1A, item);
    wrap(o, 0xA1, &s);
}

/* Read request body for n (dom,item) pairs. */
static void read_req(bb_t *o, bool spec, int n, const char *const *dom, const char *const *item)
{
    bb_t list = {0}, vas = {0};
    for (int i = 0; i < n; i++) {
        bb_t on = {0}, name = {0}, seq = {0};
        objname_dom(&on, dom[i], item[i]);
        wrap(&name, 0xA0, &on);
        wrap(&seq, 0x30, &name);
        memcpy(list.b + list.n, seq.b, seq.n);
        list.n += seq.n;
    }
    wrap(&vas, 0xA0, &list);
    o->n = 0;
    if (spec) {
        uint8_t t = 0xFF;
        put_tlv(o, 0x80, &t, 1);
    }
    wrap(o, 0xA1, &vas);
}

static void gnl_req(bb_t *o, int oclass, const char *dom, const char *after)
{
    bb_t oc = {0}, sc = {0};
    uint8_t v = (uint8_t)oclass;
    put_tlv(&oc, 0x80, &v, 1);
    o->n = 0;
    wrap(o, 0xA0, &oc);
    if (dom)
        put_str(&sc, 0x81, dom);
    else
        put_tlv(&sc, 0x80, NULL, 0);
    wrap(o, 0xA1, &sc);
    if (after)
        put_str(o, 0x82, after);
}

/* Collects the identifiers of a GetNameList response; returns moreFollows. */
static bool gnl_parse(const uint8_t *p, size_t n, char names[][130], size_t *count)
{
    mms_ber_reader_t r, l;
    mms_tlv_t t, x;
    bool more = true;
    mms_ber_reader_init(&r, p, n);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 0, &t), 0);
    assert_int_equal(mms_ber_enter(&r, &t, &l), 0);
    while (mms_ber_next(&l, &x) == 1) {
        assert_true(mms_tlv_is(&x, MMS_BER_UNIVERSAL, false, 26));
        assert_int_equal(mms_ber_get_visible(&x, names[*count], 130), 0);
        (*count)++;
    }
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, false, 1, &t), 0);
    assert_int_equal(mms_ber_get_bool(&t, &more), 0);
    assert_int_equal(mms_ber_next(&r, &t), 0);
    return more;
}

/* ---- naming -----------------------------------------------------------------------------------
 */

static void test_naming(void **state)
{
    (void)state;
    char inst[80], id[40];
    assert_int_equal(ied_ldinst_from_id("DEMO-0003", inst, sizeof inst), 10);
    assert_string_equal(inst, "DEMO_M0003");
    assert_int_equal(ied_id_from_ldinst(inst, id, sizeof id), 9);
    assert_string_equal(id, "DEMO-0003");
    assert_true(ied_ldinst_from_id("a.b-c", inst, sizeof inst) > 0);
    assert_string_equal(inst, "a_Db_Mc");
    assert_int_equal(ied_ldinst_from_id("", inst, sizeof inst), GS_EINVAL);
    assert_int_equal(ied_ldinst_from_id("a_b", inst, sizeof inst), GS_EINVAL);
    assert_int_equal(ied_ldinst_from_id("a b", inst, sizeof inst), GS_EINVAL);
    assert_int_equal(ied_ldinst_from_id("a$b", inst, sizeof inst), GS_EINVAL);
    assert_int_equal(ied_ldinst_from_id("abc", inst, 3), GS_ELIMIT);
    /* the reverse accepts only what the forward produces */
    assert_int_equal(ied_id_from_ldinst("a_", id, sizeof id), GS_EINVAL);
    assert_int_equal(ied_id_from_ldinst("a_X", id, sizeof id), GS_EINVAL);
    assert_int_equal(ied_id_from_ldinst("a__M", id, sizeof id), GS_EINVAL);
    assert_int_equal(ied_id_from_ldinst("a$b", id, sizeof id), GS_EINVAL);
    /* longest id: 32 escapes -> 64 characters, round trip */
    char lid[33];
    memset(lid, '-', 32);
    lid[32] = 0;
    assert_int_equal(ied_ldinst_from_id(lid, inst, sizeof inst), 64);
    assert_int_equal(ied_id_from_ldinst(inst, id, sizeof id), 32);
    assert_string_equal(id, lid);

    /* every id of 1..4 characters over an alphabet with both escapes and letters that look
     * like them: all distinct after mapping (no collisions), all round trip, all valid MMS
     * identifier characters */
    static const char alpha[] = "aMD0.-_";
    const int na = 6; /* '_' excluded from ids, used below as the invalid one */
    size_t total = 0;
    char(*seen)[80] = calloc(1600, sizeof *seen);
    for (int len = 1; len <= 4; len++) {
        int lim = 1;
        for (int i = 0; i < len; i++)
            lim *= na;
        for (int v = 0; v < lim; v++) {
            char s[8];
            int x = v;
            for (int i = 0; i < len; i++, x /= na)
                s[i] = alpha[x % na];
            s[len] = 0;
            assert_true(ied_ldinst_from_id(s, inst, sizeof inst) > 0);
            for (const char *p = inst; *p; p++)
                assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                            (*p >= '0' && *p <= '9') || *p == '_');
            assert_true(ied_id_from_ldinst(inst, id, sizeof id) > 0);
            assert_string_equal(id, s);
            snprintf(seen[total++], 80, "%s", inst);
        }
    }
    assert_int_equal(total, 6 + 36 + 216 + 1296);
    qsort(seen, total, sizeof *seen, (int (*)(const void *, const void *))strcmp);
    for (size_t i = 1; i < total; i++)
        assert_true(strcmp(seen[i - 1], seen[i]) != 0);
    free(seen);
}

static void test_new_and_terminals(void **state)
{
    (void)state;
    ied_opts_t o;
    ied_t *m;
    char err[128];
    ied_opts_default(&o);
    assert_string_equal(o.ied_name, "GRIDSENSE");
    snprintf(o.ied_name, sizeof o.ied_name, "1BAD");
    assert_int_equal(ied_new(&o, &m, err, sizeof err), GS_EINVAL);
    assert_non_null(strstr(err, "ied_name"));
    snprintf(o.ied_name, sizeof o.ied_name, "A-B");
    assert_int_equal(ied_new(&o, &m, err, sizeof err), GS_EINVAL);
    snprintf(o.ied_name, sizeof o.ied_name, "GS_1");
    assert_int_equal(ied_new(&o, &m, err, sizeof err), 0);
    ied_terminal_t ts[3] = {term("b", 1, 1), term("a", 1, 1), term("bad id", 1, 1)};
    assert_int_equal(ied_set_terminals(m, ts, 3, T0_NS), 0);
    assert_int_equal(ied_ld_count(m), 2); /* the invalid id has no LD */
    assert_int_equal(ied_update_latest(m, "a", LATEST, T0_NS), 0);
    assert_int_equal(ied_update_latest(m, "zz", LATEST, T0_NS), GS_ENOTFOUND);
    assert_int_equal(ied_update_latest(m, "a", "{\"x\":1}", T0_NS), GS_EPROTO);
    assert_int_equal(ied_update_latest(m, "a", "not json", T0_NS), GS_EPROTO);
    ld_t *a = ied_ld_find(m, "GS_1a", 5);
    assert_non_null(a);
    double mag = a->pts[P_PHV].mag;
    assert_true(mag > 57.4 * 200 && mag < 57.6 * 200);
    /* a malformed update leaves the values unchanged */
    assert_int_equal(ied_update_latest(m, "a", "[1,2]", T0_NS), GS_EPROTO);
    assert_true(a->pts[P_PHV].mag == mag);
    /* removal and re-adding: "a" keeps its values while it stays */
    ied_terminal_t t2[1] = {term("a", 0, 1)};
    assert_int_equal(ied_set_terminals(m, t2, 1, T0_NS + 1000), 0);
    assert_int_equal(ied_ld_count(m), 1);
    assert_ptr_equal(ied_ld_find(m, "GS_1a", 5), a);
    assert_null(ied_ld_find(m, "GS_1b", 5));
    assert_true(a->pts[P_PHV].mag == mag);
    assert_int_equal(ied_set_terminals(m, NULL, 0, T0_NS + 2000), 0);
    assert_int_equal(ied_ld_count(m), 0);
    ied_free(m);
}

/* ---- GetNameList ------------------------------------------------------------------------------
 */

static void test_get_name_list(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    bb_t rq;
    size_t n, cnt = 0;
    const uint8_t *p;
    static char names[4000][130];

    gnl_req(&rq, 9, NULL, NULL);
    p = call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_GET_NAME_LIST);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 3);
    assert_string_equal(names[0], "GRIDSENSEDEMO_M0001");
    assert_string_equal(names[1], "GRIDSENSEfree_Mrun");
    assert_string_equal(names[2], "GRIDSENSET_D2");
    /* continueAfter on domains */
    cnt = 0;
    gnl_req(&rq, 9, NULL, "GRIDSENSEDEMO_M0001");
    p = call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 2);

    /* all variables in one page */
    cnt = 0;
    gnl_req(&rq, 0, "GRIDSENSEDEMO_M0001", NULL);
    p = call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_false(gnl_parse(p, n, names, &cnt));
    size_t total = cnt;
    assert_true(total > 200);
    int found = 0;
    for (size_t i = 0; i < total; i++) {
        if (i)
            assert_true(ied_name_cmp(names[i - 1], names[i]) < 0);
        found += !strcmp(names[i], "MMXU1$MX$PhV$phsA$cVal$mag$f") || !strcmp(names[i], "MMXU1") ||
                 !strcmp(names[i], "LLN0$ST$Mod$stVal") ||
                 !strcmp(names[i], "MMXU1$CF$PhV$phsA$units$SIUnit") ||
                 !strcmp(names[i], "LPHD1$DC$PhyNam$serNum") ||
                 !strcmp(names[i], "LLN0$EX$NamPlt$ldNs") || !strcmp(names[i], "MMXU1$MX$A$neut$q");
    }
    assert_int_equal(found, 7);
    /* case-insensitive, component order: "LLN0$DC$NamPlt$configRev" before "...$d" before
     * "...$swRev" */
    size_t ic = 0, id = 0, isw = 0;
    for (size_t i = 0; i < total; i++) {
        if (!strcmp(names[i], "LLN0$DC$NamPlt$configRev"))
            ic = i;
        if (!strcmp(names[i], "LLN0$DC$NamPlt$d"))
            id = i;
        if (!strcmp(names[i], "LLN0$DC$NamPlt$swRev"))
            isw = i;
    }
    assert_true(ic < id && id < isw);

    /* paged with a small PDU: same names, each page within the PDU */
    fx_t *g = fx_new(300);
    static char paged[4000][130];
    size_t pc = 0, pages = 0;
    const char *after = NULL;
    char last[130];
    for (;;) {
        size_t before = pc;
        gnl_req(&rq, 0, "GRIDSENSEDEMO_M0001", after);
        p = call(g, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
        assert_int_equal(g->a.kind, IED_RESP);
        assert_true(n + 24 <= 300);
        bool more = gnl_parse(p, n, paged, &pc);
        pages++;
        assert_true(pc > before);
        if (!more)
            break;
        snprintf(last, sizeof last, "%s", paged[pc - 1]);
        after = last;
        assert_true(pages < 1000);
    }
    assert_true(pages > 5);
    assert_int_equal(pc, total);
    for (size_t i = 0; i < total; i++)
        assert_string_equal(paged[i], names[i]);
    /* continueAfter past the end: empty, no more */
    cnt = 0;
    gnl_req(&rq, 0, "GRIDSENSEDEMO_M0001", "ZZZ");
    p = call(g, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 0);
    /* unknown domain: definition / object-undefined */
    gnl_req(&rq, 0, "NOPE", NULL);
    call(g, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_int_equal(g->a.kind, IED_ERROR);
    assert_int_equal(g->a.err_class, 2);
    assert_int_equal(g->a.err_code, 1);
    assert_int_equal(n, 0);
    /* named variable lists of a domain: the static datasets of LLN0, sorted */
    cnt = 0;
    gnl_req(&rq, 2, "GRIDSENSEDEMO_M0001", NULL);
    p = call(g, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_int_equal(g->a.kind, IED_RESP);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 3);
    assert_string_equal(names[0], "LLN0$Events");
    assert_string_equal(names[1], "LLN0$Measurements");
    assert_string_equal(names[2], "LLN0$Status");
    /* journals: none, an empty answer */
    cnt = 0;
    gnl_req(&rq, 8, "GRIDSENSEDEMO_M0001", NULL);
    p = call(g, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_int_equal(g->a.kind, IED_RESP);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 0);
    fx_free(g);
    fx_free(f);
}

/* ---- GetVariableAccessAttributes --------------------------------------------------------------
 */

static void vaa_req(bb_t *o, const char *dom, const char *item)
{
    bb_t on = {0};
    objname_dom(&on, dom, item);
    o->n = 0;
    wrap(o, 0xA0, &on);
}

/* Descends a TypeSpecification: returns the element of the type; for a structure fills the
 * component names. */
static void vaa_top(const uint8_t *p, size_t n, mms_tlv_t *type, mms_ber_reader_t *r)
{
    mms_tlv_t t;
    bool del = true;
    mms_ber_reader_init(r, p, n);
    assert_int_equal(mms_ber_expect(r, MMS_BER_CONTEXT, false, 0, &t), 0);
    assert_int_equal(mms_ber_get_bool(&t, &del), 0);
    assert_false(del);
    assert_int_equal(mms_ber_expect(r, MMS_BER_CONTEXT, true, 2, &t), 0);
    mms_ber_reader_t c;
    assert_int_equal(mms_ber_enter(r, &t, &c), 0);
    assert_int_equal(mms_ber_next(&c, type), 1);
    *r = c;
}

static int struct_names(const mms_ber_reader_t *r, const mms_tlv_t *st, char names[][32],
                        mms_tlv_t *types)
{
    mms_ber_reader_t s, comps, comp, ct;
    mms_tlv_t t, x;
    int k = 0;
    assert_true(mms_tlv_is(st, MMS_BER_CONTEXT, true, 2));
    assert_int_equal(mms_ber_enter(r, st, &s), 0);
    assert_int_equal(mms_ber_expect(&s, MMS_BER_CONTEXT, true, 1, &t), 0);
    assert_int_equal(mms_ber_enter(&s, &t, &comps), 0);
    while (mms_ber_next(&comps, &t) == 1) {
        assert_true(mms_tlv_is(&t, MMS_BER_UNIVERSAL, true, 16));
        assert_int_equal(mms_ber_enter(&comps, &t, &comp), 0);
        assert_int_equal(mms_ber_expect(&comp, MMS_BER_CONTEXT, false, 0, &x), 0);
        assert_int_equal(mms_ber_get_visible(&x, names[k], 32), 0);
        assert_int_equal(mms_ber_expect(&comp, MMS_BER_CONTEXT, true, 1, &x), 0);
        assert_int_equal(mms_ber_enter(&comp, &x, &ct), 0);
        assert_int_equal(mms_ber_next(&ct, &types[k]), 1);
        k++;
    }
    return k;
}

static void test_get_vaa(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    bb_t rq;
    size_t n;
    const uint8_t *p;
    mms_tlv_t ty, kt[32];
    mms_ber_reader_t r;
    char nm[32][32];
    int64_t v;

    vaa_req(&rq, "GRIDSENSEDEMO_M0001", "MMXU1$MX$PhV$phsA$cVal$mag$f");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_GET_VAR_ACCESS_ATTR);
    vaa_top(p, n, &ty, &r);
    assert_true(mms_tlv_is(&ty, MMS_BER_CONTEXT, true, 7)); /* floating-point {32, 8} */
    assert_int_equal(ty.len, 6);
    assert_memory_equal(ty.val, "\x02\x01\x20\x02\x01\x08", 6);

    vaa_req(&rq, "GRIDSENSEDEMO_M0001", "MMXU1$MX$PhV$phsA");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    vaa_top(p, n, &ty, &r);
    assert_int_equal(struct_names(&r, &ty, nm, kt), 3); /* MX part of CMV: cVal, q, t */
    assert_string_equal(nm[0], "cVal");
    assert_string_equal(nm[1], "q");
    assert_true(mms_tlv_is(&kt[1], MMS_BER_CONTEXT, false, 4));
    assert_int_equal(mms_ber_get_int(&kt[1], &v), 0);
    assert_int_equal(v, -13);
    assert_string_equal(nm[2], "t");
    assert_true(mms_tlv_is(&kt[2], MMS_BER_CONTEXT, false, 17));

    vaa_req(&rq, "GRIDSENSEDEMO_M0001", "MMXU1");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    vaa_top(p, n, &ty, &r);
    assert_int_equal(struct_names(&r, &ty, nm, kt), 3);
    assert_string_equal(nm[0], "MX");
    assert_string_equal(nm[1], "ST");
    assert_string_equal(nm[2], "CF");

    vaa_req(&rq, "GRIDSENSEDEMO_M0001", "LLN0");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    vaa_top(p, n, &ty, &r);
    assert_int_equal(struct_names(&r, &ty, nm, kt), 6);
    assert_string_equal(nm[0], "ST");
    assert_string_equal(nm[1], "CF");
    assert_string_equal(nm[2], "DC");
    assert_string_equal(nm[3], "EX");
    assert_string_equal(nm[4], "BR"); /* the report control blocks */
    assert_string_equal(nm[5], "RP");

    vaa_req(&rq, "GRIDSENSEDEMO_M0001", "LLN0$ST$Mod$stVal");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    vaa_top(p, n, &ty, &r);
    assert_true(mms_tlv_is(&ty, MMS_BER_CONTEXT, false, 5));
    assert_int_equal(mms_ber_get_int(&ty, &v), 0);
    assert_int_equal(v, 8);
    vaa_req(&rq, "GRIDSENSEDEMO_M0001", "LLN0$DC$NamPlt$vendor");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    vaa_top(p, n, &ty, &r);
    assert_true(mms_tlv_is(&ty, MMS_BER_CONTEXT, false, 10));
    assert_int_equal(mms_ber_get_int(&ty, &v), 0);
    assert_int_equal(v, -255);

    /* unknown item / domain: access / object-non-existent */
    static const char *const bad[][2] = {{"GRIDSENSEDEMO_M0001", "MMXU3"},
                                         {"GRIDSENSEDEMO_M0001", "MHAI1$MX$HA$phsAHar$"},
                                         {"GRIDSENSEDEMO_M0001", "MMXU1$MX$PhV$phsD"},
                                         {"GRIDSENSEDEMO_M0001", "MMXU1$ST$PhV"},
                                         {"GRIDSENSEDEMO_M0001", "MMXU1$MX$"},
                                         {"GRIDSENSEX", "MMXU1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vaa_req(&rq, bad[i][0], bad[i][1]);
        call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
        assert_int_equal(f->a.kind, IED_ERROR);
        assert_int_equal(f->a.err_class, 7);
        assert_int_equal(f->a.err_code, 2);
        assert_int_equal(n, 0);
    }
    fx_free(f);
}

/* ---- Read -------------------------------------------------------------------------------------
 */

/* Opens listOfAccessResult of a Read response and returns its reader. */
static mms_ber_reader_t read_results(const uint8_t *p, size_t n, bool spec)
{
    mms_ber_reader_t r, l;
    mms_tlv_t t;
    mms_ber_reader_init(&r, p, n);
    if (spec)
        assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 0, &t), 0);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 1, &t), 0);
    assert_int_equal(mms_ber_enter(&r, &t, &l), 0);
    assert_int_equal(mms_ber_next(&r, &t), 0);
    return l;
}

static double read_float(fx_t *f, const char *dom, const char *item)
{
    bb_t rq;
    size_t n;
    const char *d[1] = {dom}, *it[1] = {item};
    read_req(&rq, false, 1, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    mms_ber_reader_t l = read_results(p, n, false);
    mms_tlv_t t;
    double v;
    bool dbl;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 7));
    assert_int_equal(mms_ber_get_float(&t, &v, &dbl), 0);
    assert_false(dbl);
    return v;
}

/* Reads the q and t of a DO part (item = "...$phsA"): q octets, t. */
static void read_qt(fx_t *f, const char *dom, const char *base, uint8_t q[2], mms_utctime_t *u)
{
    bb_t rq;
    size_t n;
    char qi[128], ti[128];
    snprintf(qi, sizeof qi, "%s$q", base);
    snprintf(ti, sizeof ti, "%s$t", base);
    const char *d[2] = {dom, dom}, *it[2] = {qi, ti};
    read_req(&rq, false, 2, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    mms_ber_reader_t l = read_results(p, n, false);
    mms_tlv_t t;
    const uint8_t *bits;
    size_t nbits;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 4));
    assert_int_equal(mms_ber_get_bits(&t, &bits, &nbits), 0);
    assert_int_equal(nbits, 13);
    q[0] = bits[0];
    q[1] = bits[1];
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 17));
    assert_int_equal(mms_ber_get_utctime(&t, u), 0);
}

static void test_read_values(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    const char *D = "GRIDSENSEDEMO_M0001";
    /* primary values: secondary x vt (200) / ct (40) / vt*ct */
    assert_float_equal(read_float(f, D, "MMXU1$MX$PhV$phsA$cVal$mag$f"), 57.5 * 200, 0.01);
    assert_float_equal(read_float(f, D, "MMXU1$MX$PhV$phsA$cVal$ang$f"), 0.0, 1e-4);
    assert_float_equal(read_float(f, D, "MMXU1$MX$PhV$phsB$cVal$ang$f"), -120.0, 1e-3);
    assert_float_equal(read_float(f, D, "MMXU1$MX$PhV$phsC$cVal$ang$f"), 120.0, 1e-3);
    assert_float_equal(read_float(f, D, "MMXU1$MX$PPV$phsBC$cVal$mag$f"), 99.6 * 200, 0.01);
    assert_float_equal(read_float(f, D, "MMXU1$MX$A$phsB$cVal$mag$f"), 5.1 * 40, 1e-3);
    assert_float_equal(read_float(f, D, "MMXU1$MX$A$phsA$cVal$ang$f"), -30.0, 1e-3);
    assert_float_equal(read_float(f, D, "MMXU1$MX$W$phsC$cVal$mag$f"), 252.0 * 8000, 0.5);
    assert_float_equal(read_float(f, D, "MMXU1$MX$TotW$mag$f"), 753.0 * 8000, 1.0);
    assert_float_equal(read_float(f, D, "MMXU1$MX$TotVA$mag$f"), 759.0 * 8000, 1.0);
    assert_float_equal(read_float(f, D, "MMXU1$MX$TotVAr$mag$f"), 93.0 * 8000, 1.0);
    assert_float_equal(read_float(f, D, "MMXU1$MX$TotPF$mag$f"), 0.98, 1e-6);
    assert_float_equal(read_float(f, D, "MMXU1$MX$PF$phsB$cVal$mag$f"), 0.98, 1e-6);
    assert_float_equal(read_float(f, D, "MMXU1$MX$Hz$mag$f"), 50.01, 1e-4);

    /* quality good, t = the window's t_ref, GPS-locked: leap seconds known, 20 bits */
    uint8_t q[2];
    mms_utctime_t u;
    read_qt(f, D, "MMXU1$MX$PhV$phsA", q, &u);
    assert_int_equal(q[0], 0);
    assert_int_equal(q[1], 0);
    assert_int_equal(u.secs, (uint32_t)(T0_NS / 1000000000));
    assert_int_equal(u.frac, 1u << 22); /* .25 s */
    assert_int_equal(u.quality, 0x80 | 20);
    /* the neutral current is not in the window: invalid */
    read_qt(f, D, "MMXU1$MX$A$neut", q, &u);
    assert_int_equal(q[0], 0x40);

    /* a whole LN: structure of FCs; a list with an unknown variable -> failure 10 */
    bb_t rq;
    size_t n;
    const char *d[3] = {D, D, D}, *it[3] = {"MMXU1", "MMXU1$MX$Nope", "LLN0$ST$Mod$stVal"};
    read_req(&rq, true, 3, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_READ);
    mms_ber_reader_t l = read_results(p, n, true), s;
    mms_tlv_t t;
    int64_t v;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 2));
    assert_int_equal(mms_ber_check_tree(&l, &t), 0);
    assert_int_equal(mms_ber_enter(&l, &t, &s), 0);
    int nfc = 0;
    while (mms_ber_next(&s, &t) == 1) {
        assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 2));
        nfc++;
    }
    assert_int_equal(nfc, 3); /* MX, ST, CF */
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 0));
    assert_int_equal(mms_ber_get_int(&t, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 5));
    assert_int_equal(mms_ber_get_int(&t, &v), 0);
    assert_int_equal(v, 1); /* Mod on */
    assert_int_equal(mms_ber_next(&l, &t), 0);

    /* strings */
    const char *d1[2] = {D, D}, *i1[2] = {"LPHD1$DC$PhyNam$serNum", "LLN0$DC$NamPlt$d"};
    read_req(&rq, false, 2, d1, i1);
    p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    l = read_results(p, n, false);
    char str[80];
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 10));
    assert_int_equal(mms_ber_get_visible(&t, str, sizeof str), 0);
    assert_string_equal(str, "DEMO-0001");
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_int_equal(mms_ber_get_visible(&t, str, sizeof str), 0);
    assert_string_equal(str, "feeder DEMO-0001");

    /* a response above the negotiated PDU: resource / capability-unavailable, no contents */
    fx_t *g = fx_new(200);
    const char *d2[1] = {D}, *i2[1] = {"MMXU1"};
    read_req(&rq, false, 1, d2, i2);
    call(g, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(g->a.kind, IED_ERROR);
    assert_int_equal(g->a.err_class, 3);
    assert_int_equal(n, 0);
    fx_free(g);
    fx_free(f);
}

static void test_quality_offline_unsync(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    uint8_t q[2];
    mms_utctime_t u;
    /* offline terminal (T.2): questionable + oldData, its own t kept, network-synced time */
    read_qt(f, "GRIDSENSET_D2", "MMXU1$MX$PhV$phsA", q, &u);
    assert_int_equal(q[0], 0xC1); /* validity 11, oldData (bit 7) */
    assert_int_equal(q[1], 0x00);
    assert_int_equal(u.secs, (uint32_t)(T0_NS / 1000000000));
    assert_int_equal(u.quality, 0x80 | 4);
    read_qt(f, "GRIDSENSET_D2", "MMXU1$MX$Hz", q, &u);
    assert_int_equal(q[0], 0xC1);
    /* its health: alarm (3); the online one: ok (1) */
    bb_t rq;
    size_t n;
    const char *d[2] = {"GRIDSENSET_D2", "GRIDSENSEDEMO_M0001"},
               *it[2] = {"LPHD1$ST$PhyHealth$stVal", "LLN0$ST$Health$stVal"};
    read_req(&rq, false, 2, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    mms_ber_reader_t l = read_results(p, n, false);
    mms_tlv_t t;
    int64_t v;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_int_equal(mms_ber_get_int(&t, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_int_equal(mms_ber_get_int(&t, &v), 0);
    assert_int_equal(v, 1);

    /* free-running clock with the time_unsync flag: ClockNotSynchronized, accuracy unspecified */
    char js[2048];
    snprintf(js, sizeof js, "%s", LATEST);
    char *fl = strstr(js, "\"flags\":[]");
    assert_non_null(fl);
    memmove(fl + 23, fl + 10, strlen(fl + 10) + 1);
    memcpy(fl, "\"flags\":[\"time_unsync\"]", 23);
    assert_int_equal(ied_update_latest(f->m, "free-run", js, T0_NS), 0);
    read_qt(f, "GRIDSENSEfree_Mrun", "MMXU1$MX$PhV$phsA", q, &u);
    assert_int_equal(q[0], 0);
    assert_int_equal(u.quality, MMS_TQ_NOT_SYNCED | 31);
    /* GPS-locked status but a window flagged time_unsync: synchronised, coarse accuracy */
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", js, T0_NS), 0);
    read_qt(f, "GRIDSENSEDEMO_M0001", "MMXU1$MX$PhV$phsA", q, &u);
    assert_int_equal(u.quality, 0x80 | 4);
    /* going offline: questionable/oldData from then on, online again: good */
    ied_terminal_t ts[3] = {term("DEMO-0001", 0, GSTP_TQ_GPS_LOCKED),
                            term("T.2", 0, GSTP_TQ_NETWORK_SYNCED),
                            term("free-run", 1, GSTP_TQ_FREE_RUNNING)};
    assert_int_equal(ied_set_terminals(f->m, ts, 3, T0_NS + 5000000000LL), 0);
    read_qt(f, "GRIDSENSEDEMO_M0001", "MMXU1$MX$PhV$phsA", q, &u);
    assert_int_equal(q[0], 0xC1);
    assert_int_equal(u.secs, (uint32_t)(T0_NS / 1000000000)); /* never the read time */
    ts[0].online = 1;
    assert_int_equal(ied_set_terminals(f->m, ts, 3, T0_NS + 6000000000LL), 0);
    read_qt(f, "GRIDSENSEDEMO_M0001", "MMXU1$MX$PhV$phsA", q, &u);
    assert_int_equal(q[0], 0);
    fx_free(f);
}

/* ---- Identify, Status, Write, Reject ----------------------------------------------------------
 */

static void test_identify_status_write(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    size_t n;
    const uint8_t *p = call(f, MMS_SVC_IDENTIFY, false, NULL, 0, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_IDENTIFY);
    assert_true(f->a.constructed);
    static const uint8_t idr[] = {0x80, 9,    'g',  'r', 'i', 'd', 's', 'e', 'n', 's',
                                  'e',  0x81, 9,    'g', 'r', 'i', 'd', 's', 'e', 'n',
                                  's',  'e',  0x82, 5,   '0', '.', '1', '.', '0'};
    assert_int_equal(n, sizeof idr);
    assert_memory_equal(p, idr, sizeof idr);
    static const uint8_t st[] = {0x00};
    p = call(f, MMS_SVC_STATUS, false, st, 1, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    static const uint8_t str[] = {0x80, 1, 0, 0x81, 1, 0};
    assert_int_equal(n, sizeof str);
    assert_memory_equal(p, str, sizeof str);

    /* Write: existing -> object-access-denied (3), unknown -> object-non-existent (10) */
    bb_t list = {0}, vas = {0}, data = {0}, rq = {0};
    const char *items[2] = {"MMXU1$MX$Hz$mag$f", "MMXU1$MX$Nope"};
    for (int i = 0; i < 2; i++) {
        bb_t on = {0}, name = {0}, seq = {0};
        objname_dom(&on, "GRIDSENSEDEMO_M0001", items[i]);
        wrap(&name, 0xA0, &on);
        wrap(&seq, 0x30, &name);
        memcpy(list.b + list.n, seq.b, seq.n);
        list.n += seq.n;
    }
    wrap(&vas, 0xA0, &list);
    static const uint8_t fl[] = {0x08, 0x42, 0x48, 0, 0};
    put_tlv(&data, 0x87, fl, 5);
    put_tlv(&data, 0x87, fl, 5);
    memcpy(rq.b, vas.b, vas.n);
    rq.n = vas.n;
    wrap(&rq, 0xA0, &data);
    p = call(f, MMS_SVC_WRITE, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_WRITE);
    static const uint8_t wr[] = {0x80, 1, 3, 0x80, 1, 10};
    assert_int_equal(n, sizeof wr);
    assert_memory_equal(p, wr, sizeof wr);
    /* fewer data than variables: Reject invalid-argument */
    rq.n = vas.n;
    bb_t one = {0};
    put_tlv(&one, 0x87, fl, 5);
    wrap(&rq, 0xA0, &one);
    call(f, MMS_SVC_WRITE, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_REJECT);
    assert_int_equal(f->a.reject_code, MMS_REJ_REQ_INVALID_ARGUMENT);
    /* unknown services: unrecognized-service */
    call(f, MMS_SVC_OBTAIN_FILE, true, NULL, 0, &n);
    assert_int_equal(f->a.kind, IED_REJECT);
    assert_int_equal(f->a.reject_code, MMS_REJ_REQ_UNRECOGNIZED_SERVICE);
    fx_free(f);
}

static void test_malformed(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    size_t n;
    /* hand-made malformed bodies for each service */
    static const struct {
        int svc;
        bool cons;
        const char *hex;
    } cases[] = {
        {MMS_SVC_IDENTIFY, true, ""},                                /* constructed identify */
        {MMS_SVC_IDENTIFY, false, "00"},                             /* contents in a NULL */
        {MMS_SVC_STATUS, false, ""},                                 /* BOOLEAN without octet */
        {MMS_SVC_GET_NAME_LIST, true, ""},                           /* empty */
        {MMS_SVC_GET_NAME_LIST, true, "a003800109"},                 /* no scope */
        {MMS_SVC_GET_NAME_LIST, true, "a003800109a1028000a1028000"}, /* two scopes */
        {MMS_SVC_GET_NAME_LIST, true, "a003800109a10281018200"},     /* scope with a bad tag */
        {MMS_SVC_GET_NAME_LIST, true, "a003800109a10281012d"},       /* truncated */
        {MMS_SVC_GET_VAR_ACCESS_ATTR, true, "a000"},
        {MMS_SVC_GET_VAR_ACCESS_ATTR, true, "a004a1021a00"},   /* empty identifier */
        {MMS_SVC_GET_VAR_ACCESS_ATTR, true, "a008a1061a0141"}, /* truncated */
        {MMS_SVC_READ, true, ""},
        {MMS_SVC_READ, true, "a100"},
        {MMS_SVC_READ, true, "a102a000"}, /* empty list of variables */
        {MMS_SVC_READ, true, "a104a0023000"},
        {MMS_SVC_READ, false, "a102a000"},
        {MMS_SVC_READ, true, "a10ea00c300aa008a1061a01411a0142ff"},    /* trailing garbage */
        {MMS_SVC_WRITE, true, "a00c300aa008a1061a01411a0142"},         /* no data */
        {MMS_SVC_WRITE, true, "a00c300aa008a1061a01411a0142a0020500"}, /* universal data */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b[64];
        size_t bl = strlen(cases[i].hex) / 2;
        for (size_t j = 0; j < bl; j++)
            sscanf(cases[i].hex + 2 * j, "%2hhx", &b[j]);
        call(f, cases[i].svc, cases[i].cons, b, bl, &n);
        if (f->a.kind != IED_REJECT)
            fail_msg("case %zu (%s) not rejected: kind %d", i, cases[i].hex, f->a.kind);
        assert_int_equal(f->a.reject_code, MMS_REJ_REQ_INVALID_ARGUMENT);
        assert_int_equal(n, 0);
    }
    /* every strict prefix of valid requests, and a deterministic pseudo-random sweep: an
     * answer every time (never a crash; sanitizers check memory) */
    bb_t rq;
    const char *d[2] = {"GRIDSENSEDEMO_M0001", "GRIDSENSEDEMO_M0001"},
               *it[2] = {"MMXU1$MX$PhV", "LLN0"};
    read_req(&rq, true, 2, d, it);
    for (size_t k = 0; k < rq.n; k++) {
        call(f, MMS_SVC_READ, true, rq.b, k, &n);
        assert_int_equal(f->a.kind, IED_REJECT);
    }
    gnl_req(&rq, 0, "GRIDSENSEDEMO_M0001", NULL);
    size_t without_after = rq.n; /* the prefix that ends before continueAfter is valid */
    gnl_req(&rq, 0, "GRIDSENSEDEMO_M0001", "LLN0");
    for (size_t k = 0; k < rq.n; k++) {
        call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, k, &n);
        assert_int_equal(f->a.kind, k == without_after ? IED_RESP : IED_REJECT);
    }
    uint32_t x = 12345;
    uint8_t rnd[96];
    static const int svcs[] = {0, 1, 2, 4, 5, 6, 11, 12, 13};
    for (int i = 0; i < 20000; i++) {
        size_t len = 0;
        read_req(&rq, (i & 1) != 0, 2, d, it);
        memcpy(rnd, rq.b, rq.n < sizeof rnd ? rq.n : sizeof rnd);
        len = rq.n < sizeof rnd ? rq.n : sizeof rnd;
        for (int k = 0; k < 1 + i % 4; k++) {
            x = x * 1103515245u + 12345u;
            rnd[(x >> 8) % len] = (uint8_t)(x >> 16);
        }
        x = x * 1103515245u + 12345u;
        int svc = svcs[(x >> 10) % (sizeof svcs / sizeof svcs[0])];
        call(f, svc, true, rnd, (x >> 4) % (len + 1), &n);
        assert_true(f->a.kind == IED_RESP || f->a.kind == IED_ERROR || f->a.kind == IED_REJECT);
    }
    fx_free(f);
}

/* ---- slice 2 LNs -------------------------------------------------------------------------------
 */

static int64_t read_int(fx_t *f, const char *dom, const char *item, int tag)
{
    bb_t rq;
    size_t n;
    const char *d[1] = {dom}, *it[1] = {item};
    read_req(&rq, false, 1, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    mms_ber_reader_t l = read_results(p, n, false);
    mms_tlv_t t;
    int64_t v;
    bool b;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, (uint32_t)tag));
    if (tag == 3) {
        assert_int_equal(mms_ber_get_bool(&t, &b), 0);
        return b;
    }
    assert_int_equal(mms_ber_get_int(&t, &v), 0);
    return v;
}

/* Magnitude and angle of element idx of a harmonic array (MHAI1$MX$...Har). */
static void read_har(fx_t *f, const char *dom, const char *item, int idx, double *mag, double *ang)
{
    bb_t rq;
    size_t n;
    const char *d[1] = {dom}, *it[1] = {item};
    read_req(&rq, false, 1, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    mms_ber_reader_t l = read_results(p, n, false), ar, el, cv, mg;
    mms_tlv_t t, x, c, mt, ft;
    bool dbl;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 1));
    assert_int_equal(mms_ber_enter(&l, &t, &ar), 0);
    for (int k = 0; k <= idx; k++)
        assert_int_equal(mms_ber_next(&ar, &x), 1);
    assert_int_equal(mms_ber_enter(&ar, &x, &el), 0);
    assert_int_equal(mms_ber_next(&el, &c), 1);
    assert_int_equal(mms_ber_enter(&el, &c, &cv), 0);
    assert_int_equal(mms_ber_next(&cv, &mt), 1);
    assert_int_equal(mms_ber_enter(&cv, &mt, &mg), 0);
    assert_int_equal(mms_ber_next(&mg, &ft), 1);
    assert_int_equal(mms_ber_get_float(&ft, mag, &dbl), 0);
    assert_int_equal(mms_ber_next(&cv, &mt), 1);
    assert_int_equal(mms_ber_enter(&cv, &mt, &mg), 0);
    assert_int_equal(mms_ber_next(&mg, &ft), 1);
    assert_int_equal(mms_ber_get_float(&ft, ang, &dbl), 0);
}

static void test_slice2_lns(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    const char *D = "GRIDSENSEDEMO_M0001";
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST2, T0_NS), 0);
    /* MSQI1: primary, c1 angle relative to Ua, imbalance % */
    assert_float_equal(read_float(f, D, "MSQI1$MX$SeqV$c1$cVal$mag$f"), 57.7 * 200, 0.01);
    assert_float_equal(read_float(f, D, "MSQI1$MX$SeqV$c1$cVal$ang$f"), 2.0, 1e-4);
    assert_float_equal(read_float(f, D, "MSQI1$MX$SeqV$c2$cVal$mag$f"), 0.2 * 200, 1e-3);
    assert_float_equal(read_float(f, D, "MSQI1$MX$ImbNgV$mag$f"), 0.35, 1e-6);
    assert_float_equal(read_float(f, D, "MSQI1$MX$ImbZroV$mag$f"), 0.02, 1e-6);
    uint8_t q[2];
    mms_utctime_t u;
    read_qt(f, D, "MSQI1$MX$SeqA$c1", q, &u); /* no current sequence in this window */
    assert_int_equal(q[0], 0x40);
    read_qt(f, D, "MSQI1$MX$SeqV$c2", q, &u); /* angle not computed: inaccurate */
    assert_int_equal(q[0], 0);
    assert_int_equal(q[1], 0x40);
    /* MHAI1: harmonic group 3 of Ua (primary), its angle, THD; the array as a whole */
    assert_float_equal(read_float(f, D, "MHAI1$MX$ThdPhV$phsA$cVal$mag$f"), 2.5, 1e-6);
    bb_t rq;
    size_t n;
    const char *d[2] = {D, D}, *it[2] = {"MHAI1$MX$HPhV$phsAHar", "MHAI1$CF$HPhV$numHar"};
    read_req(&rq, false, 2, d, it);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    mms_ber_reader_t l = read_results(p, n, false), ar, el, cv, mg;
    mms_tlv_t t, x;
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 1)); /* array */
    assert_int_equal(mms_ber_enter(&l, &t, &ar), 0);
    int k = 0;
    while (mms_ber_next(&ar, &x) == 1) {
        assert_true(mms_tlv_is(&x, MMS_BER_CONTEXT, true, 2));
        if (k == 3) { /* { cVal { mag { f }, ang { f } }, q, t } */
            mms_tlv_t c, mt, ft;
            double v;
            bool dbl;
            assert_int_equal(mms_ber_enter(&ar, &x, &el), 0);
            assert_int_equal(mms_ber_next(&el, &c), 1);
            assert_int_equal(mms_ber_enter(&el, &c, &cv), 0);
            assert_int_equal(mms_ber_next(&cv, &mt), 1);
            assert_int_equal(mms_ber_enter(&cv, &mt, &mg), 0);
            assert_int_equal(mms_ber_next(&mg, &ft), 1);
            assert_int_equal(mms_ber_get_float(&ft, &v, &dbl), 0);
            assert_float_equal(v, 1.5 * 200, 1e-3);
            assert_int_equal(mms_ber_next(&cv, &mt), 1);
            assert_int_equal(mms_ber_enter(&cv, &mt, &mg), 0);
            assert_int_equal(mms_ber_next(&mg, &ft), 1);
            assert_int_equal(mms_ber_get_float(&ft, &v, &dbl), 0);
            assert_float_equal(v, -171.0, 1e-3);
        }
        k++;
    }
    assert_int_equal(k, IED_NHARM);
    assert_int_equal(mms_ber_next(&l, &t), 1);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 6));
    double hm, ha;
    read_har(f, D, "MHAI1$MX$HA$neutHar", 3, &hm, &ha); /* the neutral: the 4th array */
    assert_float_equal(hm, 0.25 * 40, 1e-4);
    assert_float_equal(ha, 90.0, 1e-4);
    read_har(f, D, "MHAI1$MX$HA$phsBHar", 3, &hm, &ha);
    assert_float_equal(hm, 0.2 * 40, 1e-4);
    read_har(f, D, "MHAI1$MX$HPhV$phsCHar", 1, &hm, &ha); /* no Uc: 0 (invalid) */
    assert_float_equal(hm, 0.0, 1e-9);
    /* GetVAA of the array: array of 51 structures */
    vaa_req(&rq, D, "MHAI1$MX$HA$neutHar");
    p = call(f, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    mms_ber_reader_t r;
    vaa_top(p, n, &t, &r);
    assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 1));
    assert_int_equal(mms_ber_enter(&r, &t, &ar), 0);
    assert_int_equal(mms_ber_expect(&ar, MMS_BER_CONTEXT, false, 1, &x), 0);
    uint32_t ne;
    assert_int_equal(mms_ber_get_u32(&x, &ne), 0);
    assert_int_equal(ne, IED_NHARM);
    assert_int_equal(mms_ber_expect(&ar, MMS_BER_CONTEXT, true, 2, &x), 0);
    /* TVTR/TCTR: ratios, rated values, secondary values */
    assert_float_equal(read_float(f, D, "TVTR1$SP$Rat$setMag$f"), 200, 1e-6);
    assert_float_equal(read_float(f, D, "TCTR2$SP$Rat$setMag$f"), 40, 1e-6);
    assert_float_equal(read_float(f, D, "TVTR2$SP$HzRtg$setMag$f"), 50, 1e-6);
    assert_float_equal(read_float(f, D, "TVTR1$MX$SecV$mag$f"), 57.5, 1e-4);
    assert_float_equal(read_float(f, D, "TCTR2$MX$SecA$mag$f"), 5.1, 1e-5);
    read_qt(f, D, "TCTR1$MX$SecA", q, &u); /* no Ia in this window */
    assert_int_equal(q[0], 0x40);
    /* MMXU2 / MSQI2: synchrophasors with absolute angles and the report's own time */
    assert_float_equal(read_float(f, D, "MMXU2$MX$PhV$phsA$cVal$ang$f"), 2.2135, 1e-4);
    assert_float_equal(read_float(f, D, "MMXU2$MX$A$phsC$cVal$mag$f"), 5.0 * 40, 1e-4);
    assert_float_equal(read_float(f, D, "MMXU2$MX$HzRte$mag$f"), 0.0012, 1e-7);
    assert_float_equal(read_float(f, D, "MSQI2$MX$SeqV$c1$cVal$mag$f"), 57.7349 * 200, 0.01);
    read_qt(f, D, "MMXU2$MX$PhV$phsA", q, &u);
    assert_int_equal(q[0], 0);
    assert_int_equal(u.secs, 1796466031u);
    assert_int_equal(u.frac, (uint32_t)((9ull << 24) / 10)); /* .9 s */
    /* QVVR1: no event yet, then a dip */
    assert_int_equal(read_int(f, D, "QVVR1$ST$EvtCnt$stVal", 5), 0);
    assert_int_equal(read_int(f, D, "QVVR1$ST$DipStr$general", 3), 0);
    assert_int_equal(ied_add_event(f->m, "DEMO-0001",
                                   "{\"id\":12,\"terminal\":\"DEMO-0001\",\"kind\":\"dip\","
                                   "\"start_ns\":1796466009994000000,\"duration_s\":0.2126,"
                                   "\"residual\":34.36,\"residual_pct\":59.52,"
                                   "\"reference\":57.735,\"channels\":[\"Ua\"]}",
                                   T0_NS),
                     0);
    assert_int_equal(ied_add_event(f->m, "DEMO-0001", "{\"kind\":\"dip\"}", T0_NS), GS_EPROTO);
    assert_int_equal(ied_add_event(f->m, "nobody", "{}", T0_NS), GS_ENOTFOUND);
    assert_int_equal(read_int(f, D, "QVVR1$ST$EvtCnt$stVal", 5), 1);
    assert_int_equal(read_int(f, D, "QVVR1$ST$DipStr$general", 3), 1);
    assert_int_equal(read_int(f, D, "QVVR1$ST$SwlStr$general", 3), 0);
    assert_float_equal(read_float(f, D, "QVVR1$MX$VVa$mag$f"), 34.36 * 200, 0.01);
    assert_float_equal(read_float(f, D, "QVVR1$MX$VVaPct$mag$f"), 59.52, 1e-4);
    assert_float_equal(read_float(f, D, "QVVR1$MX$VVaTm$mag$f"), 0.2126, 1e-6);
    read_qt(f, D, "QVVR1$ST$DipStr", q, &u);
    assert_int_equal(u.secs, 1796466009u);
    /* status LNs: a STATUS without readings, invalid */
    read_qt(f, D, "STMP1$MX$Tmp", q, &u);
    assert_int_equal(q[0], 0x40);
    fx_free(f);

    /* with a STATUS: the terminal's own readings and time */
    ied_opts_t o;
    ied_t *m;
    char err[64];
    ied_opts_default(&o);
    assert_int_equal(ied_new(&o, &m, err, sizeof err), 0);
    ied_terminal_t ts = term("S1", 1, GSTP_TQ_GPS_LOCKED);
    ts.status.time_ns = T0_NS;
    ts.status.temp_c10 = 415;
    ts.status.supply_mv = 12100;
    ts.status.rsrp_dbm = -95;
    ts.status.rssi_dbm = GSTP_NA_I16;
    assert_int_equal(ied_set_terminals(m, &ts, 1, T0_NS), 0);
    fx_t g;
    memset(&g, 0, sizeof g);
    g.m = m;
    assert_int_equal(ied_client_new(m, 65000, &g.c), 0);
    assert_float_equal(read_float(&g, "GRIDSENSES1", "STMP1$MX$Tmp$mag$f"), 41.5, 1e-5);
    assert_float_equal(read_float(&g, "GRIDSENSES1", "GGIO1$MX$AnIn1$mag$f"), 12.1, 1e-5);
    assert_float_equal(read_float(&g, "GRIDSENSES1", "GGIO1$MX$AnIn2$mag$f"), -95, 1e-5);
    read_qt(&g, "GRIDSENSES1", "GGIO1$MX$AnIn3", q, &u);
    assert_int_equal(q[0], 0x40);
    read_qt(&g, "GRIDSENSES1", "STMP1$MX$Tmp", q, &u);
    assert_int_equal(q[0], 0);
    assert_int_equal(u.secs, (uint32_t)(T0_NS / 1000000000));
    assert_int_equal(u.quality, 0x80 | 20);
    ied_client_free(g.c);
    ied_free(m);
}

/* ---- datasets and reports ----------------------------------------------------------------------
 */

/* Writes one attribute of an RCB: returns the Write result (-1 success, else DataAccessError). */
static int write_attr(fx_t *f, ied_client_t *c, const char *item, const uint8_t *data, size_t dl)
{
    bb_t list = {0}, vas = {0}, dat = {0}, rq = {0}, on = {0}, name = {0}, seq = {0};
    size_t n;
    objname_dom(&on, "GRIDSENSEDEMO_M0001", item);
    wrap(&name, 0xA0, &on);
    wrap(&seq, 0x30, &name);
    memcpy(list.b, seq.b, seq.n);
    list.n = seq.n;
    wrap(&vas, 0xA0, &list);
    memcpy(dat.b, data, dl);
    dat.n = dl;
    memcpy(rq.b, vas.b, vas.n);
    rq.n = vas.n;
    wrap(&rq, 0xA0, &dat);
    ied_client_t *keep = f->c;
    f->c = c;
    const uint8_t *p = call(f, MMS_SVC_WRITE, true, rq.b, rq.n, &n);
    f->c = keep;
    assert_int_equal(f->a.kind, IED_RESP);
    if (n == 2 && p[0] == 0x81 && p[1] == 0)
        return -1;
    assert_int_equal(n, 3);
    assert_int_equal(p[0], 0x80);
    return p[2];
}

static const uint8_t B_TRUE[] = {0x83, 1, 0xFF}, B_FALSE[] = {0x83, 1, 0x00};

typedef struct {
    mms_tlv_t r[64];
    int n;
} rep_t;

/* The next report of client c (1) or none (0): its AccessResults. */
static int next_rep(fx_t *f, ied_client_t *c, int64_t now, rep_t *out)
{
    int svc = -1;
    mms_bw_init(&f->w, f->buf, sizeof f->buf);
    int rc = ied_client_next_report(c, now, &f->w, &svc);
    assert_true(rc == 0 || rc == 1);
    if (!rc)
        return 0;
    assert_int_equal(svc, MMS_USVC_INFORMATION_REPORT);
    mms_ber_reader_t r, v, l;
    mms_tlv_t t, x;
    mms_ber_reader_init(&r, mms_bw_data(&f->w), mms_bw_len(&f->w));
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 1, &t), 0);
    assert_int_equal(mms_ber_enter(&r, &t, &v), 0);
    assert_int_equal(mms_ber_expect(&v, MMS_BER_CONTEXT, false, 0, &x), 0);
    assert_int_equal(x.len, 3);
    assert_memory_equal(x.val, "RPT", 3);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 0, &t), 0);
    assert_int_equal(mms_ber_enter(&r, &t, &l), 0);
    assert_int_equal(mms_ber_next(&r, &t), 0);
    out->n = 0;
    while (mms_ber_next(&l, &x) == 1) {
        assert_int_equal(mms_ber_check_tree(&l, &x), 0);
        out->r[out->n++] = x;
    }
    return 1;
}

static uint64_t tlv_uint(const mms_tlv_t *t)
{
    uint64_t v;
    assert_true(mms_tlv_is(t, MMS_BER_CONTEXT, false, 6));
    assert_int_equal(mms_ber_get_uint(t, &v), 0);
    return v;
}

/* Checks a default-OptFlds report of the Measurements dataset (9 members): RptID, OptFlds,
 * SqNum, time, DatSet, [EntryID], ConfRev, inclusion, values, reasons. Returns the members
 * included; each must carry reason `why` (change reports: data and/or quality change). */
static int check_meas_report(const rep_t *rp, uint64_t sq, uint8_t why, bool buffered,
                             uint64_t *entry)
{
    char s[200];
    int i = 0;
    assert_int_equal(mms_ber_get_visible(&rp->r[i++], s, sizeof s), 0);
    assert_string_equal(s, buffered ? "GRIDSENSEDEMO_M0001/LLN0$BR$MeasBRCB01"
                                    : "GRIDSENSEDEMO_M0001/LLN0$RP$MeasRCB01");
    const uint8_t *bits;
    size_t nb;
    assert_int_equal(mms_ber_get_bits(&rp->r[i++], &bits, &nb), 0);
    assert_int_equal(nb, 10);
    assert_int_equal(tlv_uint(&rp->r[i++]), sq);
    mms_bintime_t bt;
    assert_int_equal(mms_ber_get_bintime(&rp->r[i++], &bt), 0);
    assert_true(bt.has_days);
    assert_int_equal(mms_ber_get_visible(&rp->r[i++], s, sizeof s), 0);
    assert_string_equal(s, "GRIDSENSEDEMO_M0001/LLN0$Measurements");
    if (buffered) {
        const uint8_t *p;
        size_t l;
        assert_int_equal(mms_ber_get_octets(&rp->r[i++], 8, &p, &l), 0);
        assert_int_equal(l, 8);
        *entry = 0;
        for (int k = 0; k < 8; k++)
            *entry = *entry << 8 | p[k];
    }
    assert_int_equal(tlv_uint(&rp->r[i++]), 1); /* ConfRev */
    assert_int_equal(mms_ber_get_bits(&rp->r[i++], &bits, &nb), 0);
    assert_int_equal(nb, 9);
    int incl = 0;
    for (size_t k = 0; k < nb; k++)
        incl += mms_bits_get(bits, nb, k);
    assert_int_equal(rp->n, i + 2 * incl); /* values then reason codes */
    for (int k = 0; k < incl; k++) {
        assert_true(mms_tlv_is(&rp->r[i + k], MMS_BER_CONTEXT, true, 2)); /* FCD structures */
        const uint8_t *rb;
        size_t rn;
        assert_int_equal(mms_ber_get_bits(&rp->r[i + incl + k], &rb, &rn), 0);
        assert_int_equal(rn, 7);
        if (why & 0x60) /* change reports: data and/or quality change, at least one `why` */
            assert_true((rb[0] & ~0x60) == 0 && rb[0] != 0);
        else
            assert_int_equal(rb[0], why);
    }
    return incl;
}

static void test_datasets_reports(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    const char *D = "GRIDSENSEDEMO_M0001";
    bb_t rq = {0}, on = {0}, vl = {0};
    size_t n;
    const uint8_t *p;
    /* GetNamedVariableListAttributes of LLN0$Measurements */
    objname_dom(&on, D, "LLN0$Measurements");
    p = call(f, MMS_SVC_GET_NVL_ATTR, true, on.b, on.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_GET_NVL_ATTR);
    {
        mms_ber_reader_t r, l;
        mms_tlv_t t;
        bool del = true;
        mms_ber_reader_init(&r, p, n);
        assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, false, 0, &t), 0);
        assert_int_equal(mms_ber_get_bool(&t, &del), 0);
        assert_false(del);
        assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 1, &t), 0);
        assert_int_equal(mms_ber_enter(&r, &t, &l), 0);
        int k = 0;
        while (mms_ber_next(&l, &t) == 1)
            k++;
        assert_int_equal(k, 9);
    }
    fx_t *g = fx_new(300); /* the answer would not fit a 300-octet PDU: resource error */
    call(g, MMS_SVC_GET_NVL_ATTR, true, on.b, on.n, &n);
    assert_int_equal(g->a.kind, IED_ERROR);
    assert_int_equal(g->a.err_class, 3);
    assert_int_equal(n, 0);
    fx_free(g);
    bb_t bad = {0};
    objname_dom(&bad, D, "LLN0$Nope");
    call(f, MMS_SVC_GET_NVL_ATTR, true, bad.b, bad.n, &n);
    assert_int_equal(f->a.kind, IED_ERROR);
    /* Read of the dataset (variableListName) */
    wrap(&vl, 0xA1, &on);
    wrap(&rq, 0xA1, &vl);
    p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    {
        mms_ber_reader_t l = read_results(p, n, false);
        mms_tlv_t t;
        int k = 0;
        while (mms_ber_next(&l, &t) == 1) {
            assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, true, 2));
            k++;
        }
        assert_int_equal(k, 9);
    }

    /* URCB: IntgPd 1000 ms, enable; a second association is refused */
    ied_client_t *c2;
    assert_int_equal(ied_client_new(f->m, 65000, &c2), 0);
    static const uint8_t intg[] = {0x86, 2, 0x03, 0xE8};
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$IntgPd", intg, sizeof intg), -1);
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$RptEna", B_TRUE, 3), -1);
    assert_int_equal(write_attr(f, c2, "LLN0$RP$MeasRCB01$RptEna", B_TRUE, 3), 2);
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$ConfRev", intg, sizeof intg), 3);
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$BufTm", intg, sizeof intg), 2);
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$RptEna", intg, sizeof intg), 7);
    assert_int_equal(write_attr(f, f->c, "MMXU1$MX$Hz$mag$f", intg, sizeof intg), 3);
    assert_int_equal(read_int(f, D, "LLN0$RP$MeasRCB01$RptEna", 3), 1);
    assert_int_equal(read_int(f, D, "LLN0$RP$MeasRCB01$Resv", 3), 1);
    rep_t rp;
    int64_t t0 = T0_NS;
    assert_int_equal(next_rep(f, f->c, t0, &rp), 0);
    assert_true(ied_client_next_due(f->c) <= t0 + 1000000000LL);
    assert_int_equal(ied_client_next_due(c2), INT64_MAX);
    /* data change: every measured member changed (new window) */
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST2, t0 + 100000000), 0);
    assert_int_equal(next_rep(f, f->c, t0 + 100000000, &rp), 1);
    int incl = check_meas_report(&rp, 0, 0x40, false, NULL);
    assert_true(incl >= 5);
    assert_int_equal(next_rep(f, f->c, t0 + 100000000, &rp), 0);
    assert_int_equal(next_rep(f, c2, t0 + 100000000, &rp), 0);
    /* the same values again: no data change */
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST2, t0 + 200000000), 0);
    assert_int_equal(next_rep(f, f->c, t0 + 200000000, &rp), 0);
    /* integrity period: all 9 members */
    assert_int_equal(next_rep(f, f->c, t0 + 1000000000, &rp), 1);
    assert_int_equal(check_meas_report(&rp, 1, 0x08, false, NULL), 9);
    /* quality change only: the terminal goes offline */
    ied_terminal_t ts[3] = {term("DEMO-0001", 0, GSTP_TQ_GPS_LOCKED),
                            term("T.2", 0, GSTP_TQ_NETWORK_SYNCED),
                            term("free-run", 1, GSTP_TQ_FREE_RUNNING)};
    assert_int_equal(ied_set_terminals(f->m, ts, 3, t0 + 1100000000), 0);
    assert_int_equal(next_rep(f, f->c, t0 + 1100000000, &rp), 1);
    assert_true(check_meas_report(&rp, 2, 0x20, false, NULL) >= 2); /* PhV, Hz, A... */
    /* GI */
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$GI", B_TRUE, 3), -1);
    assert_int_equal(next_rep(f, f->c, t0 + 1200000000, &rp), 1);
    assert_int_equal(check_meas_report(&rp, 3, 0x04, false, NULL), 9);
    assert_int_equal(read_int(f, D, "LLN0$RP$MeasRCB01$SqNum", 6), 4);
    /* disable: nothing more; released on client free */
    assert_int_equal(write_attr(f, f->c, "LLN0$RP$MeasRCB01$RptEna", B_FALSE, 3), -1);
    assert_int_equal(next_rep(f, f->c, t0 + 3000000000LL, &rp), 0);
    assert_int_equal(write_attr(f, c2, "LLN0$RP$MeasRCB01$RptEna", B_TRUE, 3), 2); /* reserved */
    ied_client_free(f->c);
    assert_int_equal(ied_client_new(f->m, 65000, &f->c), 0);
    assert_int_equal(write_attr(f, c2, "LLN0$RP$MeasRCB01$RptEna", B_TRUE, 3), -1);
    assert_int_equal(write_attr(f, c2, "LLN0$RP$MeasRCB01$RptEna", B_FALSE, 3), -1);
    /* DatSet: another dataset of the LD, or invalid */
    static const uint8_t bad_ds[] = {0x8A, 4, 'n', 'o', 'p', 'e'};
    assert_int_equal(write_attr(f, c2, "LLN0$RP$MeasRCB01$DatSet", bad_ds, sizeof bad_ds), 11);

    /* BRCB: buffered while the association is gone, resent to the next one */
    ts[0].online = 1;
    assert_int_equal(ied_set_terminals(f->m, ts, 3, t0 + 4000000000LL), 0);
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$RptEna", B_TRUE, 3), -1);
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST, t0 + 4100000000LL), 0);
    uint64_t e1 = 0, e2 = 0, e3 = 0;
    assert_int_equal(next_rep(f, f->c, t0 + 4100000000LL, &rp), 1);
    check_meas_report(&rp, 0, 0x40, true, &e1);
    ied_client_free(f->c); /* association lost */
    assert_int_equal(ied_client_new(f->m, 65000, &f->c), 0);
    assert_int_equal(read_int(f, D, "LLN0$BR$MeasBRCB01$RptEna", 3), 0);
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST2, t0 + 4200000000LL), 0);
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST, t0 + 4300000000LL), 0);
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$RptEna", B_TRUE, 3), -1);
    assert_int_equal(next_rep(f, f->c, t0 + 4400000000LL, &rp), 1);
    check_meas_report(&rp, 1, 0x40, true, &e2);
    assert_int_equal(next_rep(f, f->c, t0 + 4400000000LL, &rp), 1);
    check_meas_report(&rp, 2, 0x40, true, &e3);
    assert_true(e1 < e2 && e2 < e3);
    assert_int_equal(next_rep(f, f->c, t0 + 4400000000LL, &rp), 0);
    /* resynchronise: disable, EntryID = e2, enable: e3 again */
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$RptEna", B_FALSE, 3), -1);
    uint8_t eid[10] = {0x89, 8};
    for (int k = 0; k < 8; k++)
        eid[2 + k] = (uint8_t)(e2 >> (56 - 8 * k));
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$EntryID", eid, sizeof eid), -1);
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$RptEna", B_TRUE, 3), -1);
    uint64_t e4 = 0;
    assert_int_equal(next_rep(f, f->c, t0 + 4500000000LL, &rp), 1);
    check_meas_report(&rp, 3, 0x40, true, &e4);
    assert_int_equal(e4, e3);
    assert_int_equal(next_rep(f, f->c, t0 + 4500000000LL, &rp), 0);
    /* an EntryID not in the buffer: object-value-invalid; PurgeBuf empties it */
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$RptEna", B_FALSE, 3), -1);
    eid[9] ^= 0x55;
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$EntryID", eid, sizeof eid), 11);
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$PurgeBuf", B_TRUE, 3), -1);
    assert_int_equal(write_attr(f, f->c, "LLN0$BR$MeasBRCB01$RptEna", B_TRUE, 3), -1);
    assert_int_equal(next_rep(f, f->c, t0 + 4600000000LL, &rp), 0);

    /* Events: a dip is a data-change report of QVVR1 */
    assert_int_equal(write_attr(f, c2, "LLN0$RP$EventsRCB01$RptEna", B_TRUE, 3), -1);
    assert_int_equal(ied_add_event(f->m, "DEMO-0001",
                                   "{\"kind\":\"swell\",\"start_ns\":1796466040000000000,"
                                   "\"duration_s\":0.1,\"maximum\":66.0,\"maximum_pct\":114.3}",
                                   t0 + 5000000000LL),
                     0);
    assert_int_equal(next_rep(f, c2, t0 + 5000000000LL, &rp), 1);
    char s[200];
    assert_int_equal(mms_ber_get_visible(&rp.r[0], s, sizeof s), 0);
    assert_string_equal(s, "GRIDSENSEDEMO_M0001/LLN0$RP$EventsRCB01");
    ied_client_free(c2);
    /* a removed LD's blocks stop with it */
    assert_int_equal(ied_set_terminals(f->m, ts + 1, 2, t0 + 6000000000LL), 0);
    assert_int_equal(next_rep(f, f->c, t0 + 7000000000LL, &rp), 0);
    assert_int_equal(ied_client_next_due(f->c), INT64_MAX);
    fx_free(f);
}

/* Ten indexed instances of the measurements URCB (MeasRCB01..10, issue 11: reports to ten
 * clients): GetNameList lists exactly those ten, ten associations each enable their own and each
 * receives its integrity report under its own RptID; an eleventh finds every instance taken and
 * there is no MeasRCB11. */
static void test_ten_meas_rcbs(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    const char *D = "GRIDSENSEDEMO_M0001";
    static char names[4000][130];
    bb_t rq = {0};
    size_t n, cnt = 0;
    gnl_req(&rq, 0, D, NULL);
    const uint8_t *p = call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_false(gnl_parse(p, n, names, &cnt));
    int inst = 0;
    for (size_t i = 0; i < cnt; i++)
        if (!strncmp(names[i], "LLN0$RP$MeasRCB", 15) && !strchr(names[i] + 15, '$')) {
            char want[40];
            snprintf(want, sizeof want, "LLN0$RP$MeasRCB%02d", ++inst);
            assert_string_equal(names[i], want); /* sorted: 01..10 in order */
        }
    assert_int_equal(inst, 10);

    ied_client_t *c[11];
    c[0] = f->c;
    for (int k = 1; k < 11; k++)
        assert_int_equal(ied_client_new(f->m, 65000, &c[k]), 0);
    static const uint8_t intg[] = {0x86, 2, 0x03, 0xE8};
    char item[64];
    for (int k = 0; k < 10; k++) {
        snprintf(item, sizeof item, "LLN0$RP$MeasRCB%02d$IntgPd", k + 1);
        assert_int_equal(write_attr(f, c[k], item, intg, sizeof intg), -1);
        snprintf(item, sizeof item, "LLN0$RP$MeasRCB%02d$RptEna", k + 1);
        assert_int_equal(write_attr(f, c[k], item, B_TRUE, 3), -1);
    }
    for (int k = 0; k < 10; k++) { /* taken: temporarily-unavailable */
        snprintf(item, sizeof item, "LLN0$RP$MeasRCB%02d$RptEna", k + 1);
        assert_int_equal(write_attr(f, c[10], item, B_TRUE, 3), 2);
    }
    assert_int_equal(write_attr(f, c[10], "LLN0$RP$MeasRCB11$RptEna", B_TRUE, 3), 10);
    rep_t rp;
    for (int k = 0; k < 10; k++) /* the integrity period starts at the first report call */
        assert_int_equal(next_rep(f, c[k], T0_NS, &rp), 0);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(next_rep(f, c[k], T0_NS + 1000000000LL, &rp), 1);
        char s[200], want[80];
        assert_int_equal(mms_ber_get_visible(&rp.r[0], s, sizeof s), 0);
        snprintf(want, sizeof want, "%s/LLN0$RP$MeasRCB%02d", D, k + 1);
        assert_string_equal(s, want);
        assert_int_equal(next_rep(f, c[k], T0_NS + 1000000000LL, &rp), 0);
    }
    assert_int_equal(next_rep(f, c[10], T0_NS + 1000000000LL, &rp), 0);
    for (int k = 1; k < 11; k++)
        ied_client_free(c[k]);
    fx_free(f);
}

/* ---- dynamic named variable lists -------------------------------------------------------------
 */

/* ObjectName aa-specific [2] */
static void objname_aa(bb_t *o, const char *item)
{
    put_str(o, 0x82, item);
}

/* DefineNamedVariableList body: name (already encoded in nm) and (dom,item) members. */
static void define_req(bb_t *o, const bb_t *nm, int n, const char *const *dom,
                       const char *const *item)
{
    bb_t list = {0};
    for (int i = 0; i < n; i++) {
        bb_t on = {0}, name = {0}, seq = {0};
        objname_dom(&on, dom[i], item[i]);
        wrap(&name, 0xA0, &on);
        wrap(&seq, 0x30, &name);
        memcpy(list.b + list.n, seq.b, seq.n);
        list.n += seq.n;
    }
    memcpy(o->b, nm->b, nm->n);
    o->n = nm->n;
    wrap(o, 0xA0, &list);
}

static int read_list_count(fx_t *f, const bb_t *nm)
{
    bb_t vl = {0}, rq = {0};
    size_t n;
    wrap(&vl, 0xA1, nm);
    wrap(&rq, 0xA1, &vl);
    const uint8_t *p = call(f, MMS_SVC_READ, true, rq.b, rq.n, &n);
    if (f->a.kind != IED_RESP)
        return -1;
    mms_ber_reader_t l = read_results(p, n, false);
    mms_tlv_t t;
    int k = 0;
    while (mms_ber_next(&l, &t) == 1) {
        assert_false(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 0)); /* no failure */
        k++;
    }
    return k;
}

static void test_dynamic_lists(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    const char *D = "GRIDSENSEDEMO_M0001", *T2 = "GRIDSENSET_D2";
    bb_t nm = {0}, rq = {0};
    size_t n;
    const uint8_t *p;
    /* association-specific, members of two LDs */
    objname_aa(&nm, "my");
    const char *d2[2] = {D, T2}, *i2[2] = {"MMXU1$MX$Hz", "LLN0$ST$Health"};
    define_req(&rq, &nm, 2, d2, i2);
    p = call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_DEFINE_NVL);
    assert_false(f->a.constructed);
    assert_int_equal(n, 0);
    assert_int_equal(read_list_count(f, &nm), 2);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n); /* again: object-exists */
    assert_int_equal(f->a.kind, IED_ERROR);
    assert_int_equal(f->a.err_class, 2);
    assert_int_equal(f->a.err_code, 2);
    p = call(f, MMS_SVC_GET_NVL_ATTR, true, nm.b, nm.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(p[0], 0x80);
    assert_int_equal(p[2], 0xFF); /* mmsDeletable TRUE */
    /* visible to this association only */
    ied_client_t *other;
    assert_int_equal(ied_client_new(f->m, 65000, &other), 0);
    ied_client_t *mine = f->c;
    f->c = other;
    assert_int_equal(read_list_count(f, &nm), -1);
    f->c = mine;
    bb_t gq = {0}, oc = {0}, sc = {0};
    uint8_t two = 2;
    put_tlv(&oc, 0x80, &two, 1);
    wrap(&gq, 0xA0, &oc);
    put_tlv(&sc, 0x82, NULL, 0);
    wrap(&gq, 0xA1, &sc);
    static char names[8][130];
    size_t cnt = 0;
    p = call(f, MMS_SVC_GET_NAME_LIST, true, gq.b, gq.n, &n);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 1);
    assert_string_equal(names[0], "my");
    /* an unknown member: access / object-non-existent, nothing defined */
    bb_t nm2 = {0};
    objname_aa(&nm2, "bad");
    const char *ib[2] = {"MMXU1$MX$Hz", "MMXU1$MX$Nope"};
    define_req(&rq, &nm2, 2, d2, ib);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_ERROR);
    assert_int_equal(f->a.err_class, 7);
    assert_int_equal(read_list_count(f, &nm2), -1);
    /* domain-specific: LN$name in the LD, members of that LD only */
    bb_t nm3 = {0};
    objname_dom(&nm3, D, "LLN0$Mine");
    const char *dd[2] = {D, D}, *id[2] = {"MMXU1$MX$PhV", "QVVR1$ST$DipStr"};
    define_req(&rq, &nm3, 2, dd, id);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    f->c = other; /* visible to every association */
    assert_int_equal(read_list_count(f, &nm3), 2);
    f->c = mine;
    bb_t nm4 = {0};
    objname_dom(&nm4, D, "LLN0$Cross");
    define_req(&rq, &nm4, 2, d2, i2); /* a member of another LD */
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_ERROR);
    bb_t nm5 = {0};
    objname_dom(&nm5, D, "NoLN");
    define_req(&rq, &nm5, 2, dd, id);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_ERROR);
    bb_t nm6 = {0};
    objname_dom(&nm6, D, "LLN0$Measurements"); /* a static one */
    define_req(&rq, &nm6, 2, dd, id);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_ERROR);
    assert_int_equal(f->a.err_code, 2);
    cnt = 0;
    gnl_req(&gq, 2, D, NULL);
    p = call(f, MMS_SVC_GET_NAME_LIST, true, gq.b, gq.n, &n);
    assert_false(gnl_parse(p, n, names, &cnt));
    assert_int_equal(cnt, 4);
    assert_string_equal(names[2], "LLN0$Mine");
    /* Delete specific: the dynamic one goes, the static one is matched but stays */
    bb_t dl = {0}, lst = {0};
    memcpy(lst.b, nm3.b, nm3.n);
    lst.n = nm3.n;
    memcpy(lst.b + lst.n, nm6.b, nm6.n);
    lst.n += nm6.n;
    wrap(&dl, 0xA1, &lst);
    p = call(f, MMS_SVC_DELETE_NVL, true, dl.b, dl.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    static const uint8_t r21[] = {0x80, 1, 2, 0x81, 1, 1};
    assert_int_equal(n, sizeof r21);
    assert_memory_equal(p, r21, sizeof r21);
    assert_int_equal(read_list_count(f, &nm3), -1);
    assert_int_equal(read_list_count(f, &nm6), 9);
    /* Delete aa-specific: all of this association's */
    static const uint8_t aa[] = {0x80, 1, 1};
    p = call(f, MMS_SVC_DELETE_NVL, true, aa, sizeof aa, &n);
    static const uint8_t r11[] = {0x80, 1, 1, 0x81, 1, 1};
    assert_int_equal(n, sizeof r11);
    assert_memory_equal(p, r11, sizeof r11);
    assert_int_equal(read_list_count(f, &nm), -1);
    /* a list left at the end of the association is freed with it (ASan checks) */
    define_req(&rq, &nm, 2, d2, i2);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    define_req(&rq, &nm3, 2, dd, id);
    call(f, MMS_SVC_DEFINE_NVL, true, rq.b, rq.n, &n);
    assert_int_equal(f->a.kind, IED_RESP);
    /* malformed: Reject */
    static const uint8_t junk[] = {0x82, 0x01, 'x', 0xA0, 0x02, 0x30, 0x00};
    call(f, MMS_SVC_DEFINE_NVL, true, junk, sizeof junk, &n);
    assert_int_equal(f->a.kind, IED_REJECT);
    static const uint8_t junk2[] = {0x80, 0x01, 0x07};
    call(f, MMS_SVC_DELETE_NVL, true, junk2, sizeof junk2, &n);
    assert_int_equal(f->a.kind, IED_REJECT);
    ied_client_free(other);
    fx_free(f); /* the domain list goes with its LD */
}

/* ---- file services -----------------------------------------------------------------------------
 */

/* A fake provider: a directory per terminal with two files of generated content. */
typedef struct {
    const char *name;
    size_t size;
} ffile_t;
static const ffile_t FFILES[] = {{"DEMO-0001/EV12.cfg", 300},
                                 {"DEMO-0001/EV12.dat", 100000},
                                 {"COMTRADE_test.cfg", 27019},
                                 {"test", 5}};
#define NFF ((int)(sizeof FFILES / sizeof FFILES[0]))
static int fake_open_count;

static uint8_t fbyte(int f, size_t i)
{
    return (uint8_t)(i * 7 + (size_t)f * 13 + (i >> 8));
}

static int fake_list(void *ud, const char *dir, const char *after, ied_file_info_t *out, size_t max,
                     bool *more)
{
    (void)ud;
    ied_file_info_t all[8];
    int n = 0;
    if (!dir[0]) { /* the top: the terminal directory and the two top files */
        snprintf(all[n].name, sizeof all[n].name, "DEMO-0001");
        all[n].size = 0;
        all[n++].mtime_ns = 0;
        for (int i = 2; i < NFF; i++) {
            snprintf(all[n].name, sizeof all[n].name, "%s", FFILES[i].name);
            all[n].size = FFILES[i].size;
            all[n++].mtime_ns = T0_NS;
        }
    } else if (!strcmp(dir, "DEMO-0001")) {
        for (int i = 0; i < 2; i++) {
            snprintf(all[n].name, sizeof all[n].name, "%s", FFILES[i].name);
            all[n].size = FFILES[i].size;
            all[n++].mtime_ns = T0_NS;
        }
    } else {
        return GS_ENOTFOUND;
    }
    int start = 0;
    if (after)
        for (int i = 0; i < n; i++)
            if (!strcmp(all[i].name, after))
                start = i + 1;
    size_t k = 0;
    for (int i = start; i < n && k < max; i++)
        out[k++] = all[i];
    *more = start + (int)k < n;
    return (int)k;
}

typedef struct {
    int f;
    size_t pos;
} fh_t;

static int fake_open(void *ud, const char *name, void **h, ied_file_info_t *info)
{
    (void)ud;
    for (int i = 0; i < NFF; i++)
        if (!strcmp(FFILES[i].name, name)) {
            fh_t *x = calloc(1, sizeof *x);
            x->f = i;
            *h = x;
            snprintf(info->name, sizeof info->name, "%s", name);
            info->size = FFILES[i].size;
            info->mtime_ns = T0_NS;
            fake_open_count++;
            return 0;
        }
    return GS_ENOTFOUND;
}

static int fake_read(void *ud, void *h, uint8_t *buf, size_t cap)
{
    (void)ud;
    fh_t *x = h;
    size_t left = FFILES[x->f].size - x->pos, n = cap < left ? cap : left;
    if (n > 10000)
        n = 10000; /* short reads: ied must loop */
    for (size_t i = 0; i < n; i++)
        buf[i] = fbyte(x->f, x->pos + i);
    x->pos += n;
    return (int)n;
}

static void fake_close(void *ud, void *h)
{
    (void)ud;
    free(h);
    fake_open_count--;
}

static const ied_file_ops_t FAKE_OPS = {fake_list, fake_open, fake_read, fake_close};

static void filename(bb_t *o, uint8_t tag, const char *name)
{
    bb_t g = {0};
    put_str(&g, 0x19, name);
    wrap(o, tag, &g);
}

/* FileDirectory: names (into names[]), returns moreFollows. */
static bool file_dir(fx_t *f, const char *spec, const char *after, char names[][260],
                     uint64_t *sizes, int *n)
{
    bb_t rq = {0};
    size_t len;
    if (spec)
        filename(&rq, 0xA0, spec);
    if (after)
        filename(&rq, 0xA1, after);
    const uint8_t *p = call(f, MMS_SVC_FILE_DIRECTORY, true, rq.b, rq.n, &len);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_FILE_DIRECTORY);
    mms_ber_reader_t r, l, e, fnr, at;
    mms_tlv_t t, x, y;
    bool more = false;
    mms_ber_reader_init(&r, p, len);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 0, &t), 0);
    assert_int_equal(mms_ber_enter(&r, &t, &e), 0); /* [0] EXPLICIT SEQUENCE OF */
    assert_int_equal(mms_ber_expect(&e, MMS_BER_UNIVERSAL, true, 16, &t), 0);
    assert_int_equal(mms_ber_enter(&e, &t, &l), 0);
    *n = 0;
    while (mms_ber_next(&l, &t) == 1) {
        assert_int_equal(mms_ber_enter(&l, &t, &e), 0);
        assert_int_equal(mms_ber_expect(&e, MMS_BER_CONTEXT, true, 0, &x), 0);
        assert_int_equal(mms_ber_enter(&e, &x, &fnr), 0);
        assert_int_equal(mms_ber_expect(&fnr, MMS_BER_UNIVERSAL, false, 25, &y), 0);
        memcpy(names[*n], y.val, y.len);
        names[*n][y.len] = 0;
        assert_int_equal(mms_ber_expect(&e, MMS_BER_CONTEXT, true, 1, &x), 0);
        assert_int_equal(mms_ber_enter(&e, &x, &at), 0);
        assert_int_equal(mms_ber_expect(&at, MMS_BER_CONTEXT, false, 0, &y), 0);
        assert_int_equal(mms_ber_get_uint(&y, &sizes[*n]), 0);
        (*n)++;
    }
    if (mms_ber_next(&r, &t) == 1) {
        assert_true(mms_tlv_is(&t, MMS_BER_CONTEXT, false, 1));
        assert_int_equal(mms_ber_get_bool(&t, &more), 0);
        assert_true(more); /* DEFAULT FALSE: only written when TRUE */
    }
    return more;
}

/* FileOpen: frsmID or -1 with the error in f->a. */
static int file_open(fx_t *f, const char *name, uint32_t pos, uint64_t *size)
{
    bb_t rq = {0};
    size_t len;
    uint8_t pb[5];
    int k = 0;
    filename(&rq, 0xA0, name);
    if (pos >= 0x800000)
        pb[k++] = (uint8_t)(pos >> 24);
    if (pos >= 0x8000)
        pb[k++] = (uint8_t)(pos >> 16);
    if (pos >= 0x80)
        pb[k++] = (uint8_t)(pos >> 8);
    pb[k++] = (uint8_t)pos;
    if (pb[0] & 0x80) {
        memmove(pb + 1, pb, (size_t)k);
        pb[0] = 0;
        k++;
    }
    put_tlv(&rq, 0x81, pb, (size_t)k);
    const uint8_t *p = call(f, MMS_SVC_FILE_OPEN, true, rq.b, rq.n, &len);
    if (f->a.kind != IED_RESP)
        return -1;
    mms_ber_reader_t r, at;
    mms_tlv_t t, x;
    int64_t id;
    mms_ber_reader_init(&r, p, len);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, false, 0, &t), 0);
    assert_int_equal(mms_ber_get_int(&t, &id), 0);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, true, 1, &t), 0);
    assert_int_equal(mms_ber_enter(&r, &t, &at), 0);
    assert_int_equal(mms_ber_expect(&at, MMS_BER_CONTEXT, false, 0, &x), 0);
    assert_int_equal(mms_ber_get_uint(&x, size), 0);
    assert_int_equal(mms_ber_expect(&at, MMS_BER_CONTEXT, false, 1, &x), 0);
    assert_int_equal(x.len, 15);
    assert_memory_equal(x.val, "20261205102031Z", 15); /* GeneralizedTime of T0 */
    return (int)id;
}

/* FileRead: appends into out, returns moreFollows. */
static bool file_read(fx_t *f, int id, uint8_t *out, size_t *n)
{
    uint8_t b = (uint8_t)id;
    size_t len;
    const uint8_t *p = call(f, MMS_SVC_FILE_READ, false, &b, 1, &len);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_FILE_READ);
    mms_ber_reader_t r;
    mms_tlv_t t;
    bool more;
    mms_ber_reader_init(&r, p, len);
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, false, 0, &t), 0);
    memcpy(out + *n, t.val, t.len);
    *n += t.len;
    assert_int_equal(mms_ber_expect(&r, MMS_BER_CONTEXT, false, 1, &t), 0);
    assert_int_equal(mms_ber_get_bool(&t, &more), 0);
    return more;
}

static void test_file_services(void **state)
{
    (void)state;
    fx_t *f = fx_new(65000);
    size_t len;
    /* no provider: not served */
    call(f, MMS_SVC_FILE_DIRECTORY, true, NULL, 0, &len);
    assert_int_equal(f->a.kind, IED_REJECT);
    assert_int_equal(f->a.reject_code, MMS_REJ_REQ_UNRECOGNIZED_SERVICE);
    ied_set_file_ops(f->m, &FAKE_OPS, NULL);
    static char names[64][260];
    uint64_t sizes[64];
    int n;
    assert_false(file_dir(f, NULL, NULL, names, sizes, &n)); /* the top (empty request) */
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "DEMO-0001");
    assert_false(file_dir(f, "", NULL, names, sizes, &n)); /* "" = the top, as the captures */
    assert_int_equal(n, 3);
    assert_false(file_dir(f, "DEMO-0001", NULL, names, sizes, &n));
    assert_int_equal(n, 2);
    assert_string_equal(names[1], "DEMO-0001/EV12.dat");
    assert_int_equal(sizes[1], 100000);
    assert_false(file_dir(f, "DEMO-0001", "DEMO-0001/EV12.cfg", names, sizes, &n));
    assert_int_equal(n, 1);
    bb_t rq = {0};
    filename(&rq, 0xA0, "NOPE");
    call(f, MMS_SVC_FILE_DIRECTORY, true, rq.b, rq.n, &len);
    assert_int_equal(f->a.kind, IED_ERROR);
    assert_int_equal(f->a.err_class, 11);
    assert_int_equal(f->a.err_code, 7);
    /* a small PDU pages the directory */
    ied_client_t *small, *big = f->c;
    assert_int_equal(ied_client_new(f->m, 150, &small), 0);
    f->c = small;
    assert_true(file_dir(f, "", NULL, names, sizes, &n));
    assert_true(n >= 1 && n < 3);
    char last[260];
    snprintf(last, sizeof last, "%s", names[n - 1]);
    int n2;
    file_dir(f, "", last, names, sizes, &n2); /* the rest, after the last one */
    assert_true(n2 >= 1 && n + n2 <= 3);
    f->c = big;
    ied_client_free(small);

    /* the whole .dat in PDU-sized pieces, equal to the provider's content */
    uint64_t size;
    int id = file_open(f, "DEMO-0001/EV12.dat", 0, &size);
    assert_int_equal(id, 0);
    assert_int_equal(size, 100000);
    static uint8_t data[200000];
    size_t got = 0;
    int reads = 0;
    while (file_read(f, id, data, &got))
        assert_true(++reads < 100);
    assert_int_equal(got, 100000);
    assert_true(reads >= 1); /* 65000-octet PDUs: at least two reads */
    for (size_t i = 0; i < got; i++)
        if (data[i] != fbyte(1, i))
            fail_msg("byte %zu differs", i);
    /* initialPosition */
    int id2 = file_open(f, "DEMO-0001/EV12.dat", 99990, &size);
    assert_int_equal(id2, 1);
    got = 0;
    assert_false(file_read(f, id2, data, &got));
    assert_int_equal(got, 10);
    assert_int_equal(data[0], fbyte(1, 99990));
    /* errors */
    assert_int_equal(file_open(f, "DEMO-0001/EV13.dat", 0, &size), -1);
    assert_int_equal(f->a.err_class, 11);
    assert_int_equal(f->a.err_code, 7);
    assert_int_equal(file_open(f, "DEMO-0001/../x", 0, &size), -1);
    assert_int_equal(f->a.err_code, 3);
    assert_int_equal(file_open(f, "test", 6, &size), -1);
    assert_int_equal(f->a.err_code, 5);
    for (int i = 2; i < 8; i++)
        assert_int_equal(file_open(f, "test", 0, &size), i);
    assert_int_equal(file_open(f, "test", 0, &size), -1); /* 8 open per association */
    assert_int_equal(f->a.err_class, 3);
    assert_int_equal(fake_open_count, 8);
    uint8_t b = 5;
    call(f, MMS_SVC_FILE_CLOSE, false, &b, 1, &len);
    assert_int_equal(f->a.kind, IED_RESP);
    assert_int_equal(f->a.service, MMS_SVC_FILE_CLOSE);
    assert_false(f->a.constructed);
    assert_int_equal(len, 0);
    call(f, MMS_SVC_FILE_CLOSE, false, &b, 1, &len); /* closed already */
    assert_int_equal(f->a.kind, IED_ERROR);
    call(f, MMS_SVC_FILE_READ, false, &b, 1, &len);
    assert_int_equal(f->a.kind, IED_ERROR);
    call(f, MMS_SVC_FILE_READ, true, &b, 1, &len); /* malformed */
    assert_int_equal(f->a.kind, IED_REJECT);
    static const uint8_t bad_open[] = {0xA0, 0x03, 0x1A, 0x01, 'x', 0x81, 0x01, 0x00};
    call(f, MMS_SVC_FILE_OPEN, true, bad_open, sizeof bad_open, &len);
    assert_int_equal(f->a.kind, IED_REJECT);
    assert_int_equal(fake_open_count, 7);
    ied_client_free(f->c); /* closes the rest */
    assert_int_equal(fake_open_count, 0);
    assert_int_equal(ied_client_new(f->m, 65000, &f->c), 0);
    fx_free(f);
}

/* ---- Captures ---------------------------------------------------------------------------------
 */

static const char *corpus_dir;

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Every c2s confirmed request of the captures through ied_confirmed. */
/* 0: the usual fixture (the captures name another server's domain: errors mostly); 1: a model
 * whose IED name "simpleIO" and terminal "GenericIO" give that domain, simpleIOGenericIO, so
 * the captured requests reach our LNs and report control blocks (EventsRCB01 exists in both). */
static int capture_model;
static int capture_write_ok, capture_read_ok, capture_file_ok;

static void test_capture_requests(void **state)
{
    (void)state;
    static const char *const files[] = {"a_browse_client_example2",
                                        "a_browse_mms_probe",
                                        "b_client_async_read_write_control",
                                        "b_client_example4_dataset",
                                        "b_read_write_mms_probe",
                                        "c_report_client_example1",
                                        "c_report_client_example_reporting",
                                        "c_report_mms_probe_brcb_urcb",
                                        "d_files_file_tool_and_probe",
                                        "d_files_probe_maxpdu4000",
                                        "e_abort_and_close_mms_probe",
                                        "f_acse_password_rejected",
                                        "f_selectors_apt_accepted_basic_io"};
    fx_t *f = fx_new(65000);
    if (capture_model) {
        ied_client_free(f->c);
        ied_free(f->m);
        ied_opts_t o;
        char err[64];
        ied_opts_default(&o);
        snprintf(o.ied_name, sizeof o.ied_name, "simpleIO");
        assert_int_equal(ied_new(&o, &f->m, err, sizeof err), 0);
        ied_terminal_t t = term("GenericIO", 1, GSTP_TQ_GPS_LOCKED);
        assert_int_equal(ied_set_terminals(f->m, &t, 1, T0_NS), 0);
        assert_int_equal(ied_update_latest(f->m, "GenericIO", LATEST, T0_NS), 0);
        assert_int_equal(ied_client_new(f->m, 65000, &f->c), 0);
        ied_set_file_ops(f->m, &FAKE_OPS, NULL); /* COMTRADE_test.cfg and test, as theirs */
    }
    int per_svc[128] = {0}, rejected_args = 0, total = 0;
    static uint8_t line_bytes[70000], tsdu[70000];
    static char line[150000];
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.hex", MMS_VECTORS_DIR, files[fi]);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        mms_cotp_reasm_t ra;
        int cur_stream = -1;
        while (fgets(line, sizeof line, fp)) {
            char dir[8];
            int stream, idx, off = 0;
            if (sscanf(line, "%7s %d %d %n", dir, &stream, &idx, &off) < 3 || strcmp(dir, "c2s"))
                continue;
            if (stream != cur_stream) {
                mms_cotp_reasm_init(&ra, tsdu, sizeof tsdu);
                cur_stream = stream;
            }
            size_t nb = 0;
            for (const char *h = line + off; hexval(h[0]) >= 0 && hexval(h[1]) >= 0; h += 2)
                line_bytes[nb++] = (uint8_t)(hexval(h[0]) << 4 | hexval(h[1]));
            const uint8_t *pl;
            size_t plen;
            assert_true(mms_tpkt_frame(line_bytes, nb, 65535, &pl, &plen) > 0);
            mms_cotp_t ct;
            assert_int_equal(mms_cotp_decode(pl, plen, &ct), 0);
            if (ct.type != MMS_COTP_DT || mms_cotp_reasm_add(&ra, &ct) != 1)
                continue;
            mms_spdu_t sp;
            if (mms_spdu_decode(ra.buf, ra.len, &sp) < 0 || sp.si != MMS_SPDU_DT)
                continue;
            mms_ppdu_t pp;
            assert_int_equal(mms_pres_decode_data(sp.user_data, sp.user_len, &pp), 0);
            mms_pdu_t pdu;
            assert_int_equal(mms_pdu_decode(pp.pdv[0].data, pp.pdv[0].len, &pdu, NULL), 0);
            if (pdu.type != MMS_PDU_CONFIRMED_REQ)
                continue;
            size_t n;
            const uint8_t *rp =
                call(f, pdu.service, pdu.service_constructed, pdu.body, pdu.body_len, &n);
            total++;
            if (f->a.kind == IED_RESP && pdu.service == MMS_SVC_WRITE) {
                mms_ber_reader_t wr;
                mms_tlv_t wt;
                mms_ber_reader_init(&wr, rp, n);
                while (mms_ber_next(&wr, &wt) == 1)
                    capture_write_ok += mms_tlv_is(&wt, MMS_BER_CONTEXT, false, 1);
            }
            if (f->a.kind == IED_RESP && pdu.service == MMS_SVC_READ) {
                mms_ber_reader_t rr, rl;
                mms_tlv_t rt;
                mms_ber_reader_init(&rr, rp, n);
                while (mms_ber_next(&rr, &rt) == 1)
                    if (mms_tlv_is(&rt, MMS_BER_CONTEXT, true, 1) &&
                        mms_ber_enter(&rr, &rt, &rl) == 0)
                        while (mms_ber_next(&rl, &rt) == 1)
                            capture_read_ok += !mms_tlv_is(&rt, MMS_BER_CONTEXT, false, 0);
            }
            if (pdu.service >= 0 && pdu.service < 128)
                per_svc[pdu.service]++;
            int ours = pdu.service == MMS_SVC_IDENTIFY || pdu.service == MMS_SVC_STATUS ||
                       pdu.service == MMS_SVC_GET_NAME_LIST || pdu.service == MMS_SVC_READ ||
                       pdu.service == MMS_SVC_WRITE || pdu.service == MMS_SVC_GET_VAR_ACCESS_ATTR ||
                       pdu.service == MMS_SVC_GET_NVL_ATTR || pdu.service == MMS_SVC_DEFINE_NVL ||
                       pdu.service == MMS_SVC_DELETE_NVL;
            if (ours && f->a.kind == IED_REJECT) {
                rejected_args++;
                fail_msg("%s stream %d #%d: service %d rejected", files[fi], stream, idx,
                         pdu.service);
            }
            bool file = pdu.service == MMS_SVC_FILE_DIRECTORY || pdu.service == MMS_SVC_FILE_OPEN ||
                        pdu.service == MMS_SVC_FILE_READ || pdu.service == MMS_SVC_FILE_CLOSE;
            if (file && capture_model) {
                if (f->a.kind == IED_REJECT)
                    fail_msg("%s stream %d #%d: file service %d rejected", files[fi], stream, idx,
                             pdu.service);
                capture_file_ok += f->a.kind == IED_RESP;
            } else if (!ours) {
                assert_int_equal(f->a.kind, IED_REJECT); /* not served: unrecognized-service */
            }
            if (corpus_dir) {
                char cp[600];
                snprintf(cp, sizeof cp, "%s/cap_%s_%d_%d", corpus_dir, files[fi], stream, idx);
                FILE *o = fopen(cp, "wb");
                if (o) {
                    uint8_t hd[2] = {(uint8_t)pdu.service, (uint8_t)pdu.service_constructed};
                    fwrite(hd, 1, 2, o);
                    fwrite(pdu.body, 1, pdu.body_len, o);
                    fclose(o);
                }
            }
        }
        fclose(fp);
    }
    /* the captures' requests: GetNameList, GetVAA, Read and Write bodies all decode */
    assert_true(per_svc[MMS_SVC_GET_NAME_LIST] >= 10);
    assert_true(per_svc[MMS_SVC_READ] >= 20);
    assert_true(per_svc[MMS_SVC_GET_VAR_ACCESS_ATTR] >= 5);
    assert_true(per_svc[MMS_SVC_WRITE] >= 5);
    assert_int_equal(rejected_args, 0);
    assert_true(per_svc[MMS_SVC_GET_NVL_ATTR] >= 1);
    assert_true(per_svc[MMS_SVC_DEFINE_NVL] >= 1);
    print_message("capture requests on %s: %d Write results succeeded, %d Read results\n",
                  capture_model ? "simpleIOGenericIO" : "the fixture", capture_write_ok,
                  capture_read_ok);
    assert_true(per_svc[MMS_SVC_DELETE_NVL] >= 1);
    print_message("capture requests: %d (GetNameList %d, Read %d, GetVAA %d, Write %d, "
                  "Identify %d, GetNVLAttributes %d, Define %d, Delete %d)\n",
                  total, per_svc[1], per_svc[4], per_svc[6], per_svc[5], per_svc[2], per_svc[12],
                  per_svc[11], per_svc[13]);
    fx_free(f);
}

/* ---- SCL and model dump (--scl FILE NAMES): for tests/unit/ied_scl_check.py -------------------
 */

static int scl_fwrite(void *ud, const char *p, size_t n)
{
    return fwrite(p, 1, n, (FILE *)ud) == n ? 0 : GS_EIO;
}

/* Type code of a TypeSpecification element, as ied_scl_check.py derives it from the SCL. */
static void typecode(const mms_tlv_t *t, char *out, size_t cap)
{
    int64_t v;
    switch (t->tag) {
    case 1: {
        mms_ber_reader_t r, a;
        mms_tlv_t x;
        uint32_t ne = 0;
        mms_ber_reader_init(&r, t->raw, (size_t)(t->val + t->len - t->raw));
        if (mms_ber_next(&r, &x) == 1 && mms_ber_enter(&r, &x, &a) == 0 &&
            mms_ber_expect(&a, MMS_BER_CONTEXT, false, 1, &x) == 0)
            mms_ber_get_u32(&x, &ne);
        snprintf(out, cap, "array:%u", ne);
        return;
    }
    case 2:
        snprintf(out, cap, "struct");
        return;
    case 3:
        snprintf(out, cap, "bool");
        return;
    case 7:
        snprintf(out, cap, "float");
        return;
    case 12:
        snprintf(out, cap, "bintime");
        return;
    case 17:
        snprintf(out, cap, "utc");
        return;
    default:
        break;
    }
    mms_ber_get_int(t, &v);
    snprintf(out, cap, "%s:%lld",
             t->tag == 4    ? "bits"
             : t->tag == 5  ? "int"
             : t->tag == 6  ? "uint"
             : t->tag == 9  ? "octets"
             : t->tag == 10 ? "vstr"
                            : "?",
             (long long)v);
}

static const char *scl_path, *names_path;

/* Writes the SCL of the fixture model and, for LD GRIDSENSEDEMO_M0001, every name GetNameList
 * gives (paged at a 1000-octet PDU) with the type GetVariableAccessAttributes gives for it, and
 * the domain list. */
static void test_dump_scl(void **state)
{
    (void)state;
    fx_t *f = fx_new(1000);
    FILE *fp = fopen(scl_path, "w");
    assert_non_null(fp);
    assert_int_equal(ied_scl_write(f->m, scl_fwrite, fp), 0);
    fclose(fp);
    FILE *nf = fopen(names_path, "w");
    assert_non_null(nf);
    static char names[4000][130];
    size_t cnt = 0, n;
    bb_t rq;
    const uint8_t *p;
    gnl_req(&rq, 9, NULL, NULL);
    p = call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
    assert_false(gnl_parse(p, n, names, &cnt));
    for (size_t i = 0; i < cnt; i++)
        fprintf(nf, "domain\t%s\n", names[i]);
    cnt = 0;
    char last[130];
    const char *after = NULL;
    for (;;) {
        gnl_req(&rq, 0, "GRIDSENSEDEMO_M0001", after);
        p = call(f, MMS_SVC_GET_NAME_LIST, true, rq.b, rq.n, &n);
        assert_int_equal(f->a.kind, IED_RESP);
        bool more = gnl_parse(p, n, names, &cnt);
        if (!more)
            break;
        snprintf(last, sizeof last, "%s", names[cnt - 1]);
        after = last;
    }
    fx_t *g = fx_new(65000); /* whole LNs' types need the big PDU */
    for (size_t i = 0; i < cnt; i++) {
        mms_tlv_t ty;
        mms_ber_reader_t r;
        char tc[64];
        vaa_req(&rq, "GRIDSENSEDEMO_M0001", names[i]);
        p = call(g, MMS_SVC_GET_VAR_ACCESS_ATTR, true, rq.b, rq.n, &n);
        assert_int_equal(g->a.kind, IED_RESP);
        vaa_top(p, n, &ty, &r);
        typecode(&ty, tc, sizeof tc);
        fprintf(nf, "var\t%s\t%s\n", names[i], tc);
    }
    fclose(nf);
    fx_free(g);
    fx_free(f);
}

/* ---- Answers for tshark (--answers FILE) ------------------------------------------------------
 */

static void hexdump_dir(FILE *fp, char dir, const uint8_t *p, size_t n)
{
    fprintf(fp, "%c\n", dir);
    for (size_t i = 0; i < n; i++) {
        if (i % 16 == 0)
            fprintf(fp, "%s%06zx", i ? "\n" : "", i);
        fprintf(fp, " %02x", p[i]);
    }
    fprintf(fp, "\n\n");
}

/* An MMS PDU in presentation data, a DATA TRANSFER SPDU and COTP DTs (segmented at 8192). */
static void dump_mms(FILE *fp, char dir, const uint8_t *pdu, size_t n)
{
    static uint8_t pbuf[70000], sbuf[70000], out[9000];
    mms_ppdu_t pp;
    mms_spdu_t s;
    mms_ber_writer_t w;
    memset(&pp, 0, sizeof pp);
    pp.n_pdv = 1;
    pp.pdv[0].ctx_id = MMS_PCTX_MMS;
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
    int sl = mms_spdu_encode(sbuf, sizeof sbuf, &s);
    assert_true(sl > 0);
    size_t off = 0;
    bool last = false;
    while (!last) {
        int l = mms_cotp_segment(out, sizeof out, 8192, sbuf, (size_t)sl, &off, &last);
        assert_true(l > 0);
        hexdump_dir(fp, dir, out, (size_t)l);
    }
}

/* Our answer to one request, in a confirmed-Response/Error or Reject envelope. */
static void dump_exchange(FILE *fp, fx_t *f, uint32_t invoke, int svc, bool cons, const bb_t *rq)
{
    static uint8_t pdu[70000];
    mms_ber_writer_t w;
    size_t n;
    mms_bw_init(&w, pdu, sizeof pdu);
    mms_pdu_encode_confirmed(&w, false, invoke, svc, cons, rq->b, rq->n);
    dump_mms(fp, 'O', mms_bw_data(&w), mms_bw_len(&w));
    if (corpus_dir) { /* fuzz seeds that reach our model (the captures' name other servers) */
        char cp[600];
        snprintf(cp, sizeof cp, "%s/own_%u", corpus_dir, invoke);
        FILE *o = fopen(cp, "wb");
        if (o) {
            uint8_t hd[2] = {(uint8_t)svc, (uint8_t)cons};
            fwrite(hd, 1, 2, o);
            fwrite(rq->b, 1, rq->n, o);
            fclose(o);
        }
    }
    const uint8_t *p = call(f, svc, cons, rq->b, rq->n, &n);
    mms_bw_init(&w, pdu, sizeof pdu);
    if (f->a.kind == IED_RESP) {
        mms_pdu_encode_confirmed(&w, true, invoke, f->a.service, f->a.constructed, p, n);
    } else if (f->a.kind == IED_ERROR) {
        mms_pdu_encode_error(&w, invoke, f->a.err_class, f->a.err_code);
    } else {
        mms_reject_t rej = {true, invoke, MMS_REJ_CONFIRMED_REQUEST, f->a.reject_code};
        mms_pdu_encode_reject(&w, &rej);
    }
    dump_mms(fp, 'I', mms_bw_data(&w), mms_bw_len(&w));
}

static const char *answers_path;

/* The client's CR and CONNECT of a capture (for the dissectors' presentation contexts), then our
 * answers to Identify, GetNameList (domains, variables), GetVAA and Read (attribute, FC part,
 * whole LN, a list with an unknown variable), Write and an unknown domain. */
static void test_write_answers(void **state)
{
    (void)state;
    FILE *fp = fopen(answers_path, "w");
    assert_non_null(fp);
    char path[512];
    static char line[150000];
    static uint8_t b[70000];
    snprintf(path, sizeof path, "%s/a_browse_mms_probe.hex", MMS_VECTORS_DIR);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    int got = 0;
    while (got < 2 && fgets(line, sizeof line, in)) {
        int off = 0, st, idx;
        char dir[8];
        if (sscanf(line, "%7s %d %d %n", dir, &st, &idx, &off) < 3 || strcmp(dir, "c2s"))
            continue;
        size_t nb = 0;
        for (const char *h = line + off; hexval(h[0]) >= 0 && hexval(h[1]) >= 0; h += 2)
            b[nb++] = (uint8_t)(hexval(h[0]) << 4 | hexval(h[1]));
        hexdump_dir(fp, 'O', b, nb);
        got++;
    }
    fclose(in);
    fx_t *f = fx_new(65000);
    const char *D = "GRIDSENSEDEMO_M0001";
    bb_t rq = {0};
    uint32_t inv = 1;
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST2, T0_NS), 0);
    dump_exchange(fp, f, inv++, MMS_SVC_IDENTIFY, false, &rq);
    gnl_req(&rq, 9, NULL, NULL);
    dump_exchange(fp, f, inv++, MMS_SVC_GET_NAME_LIST, true, &rq);
    gnl_req(&rq, 0, D, NULL);
    dump_exchange(fp, f, inv++, MMS_SVC_GET_NAME_LIST, true, &rq);
    static const char *const items[] = {
        "LLN0",  "LPHD1", "MMXU1", "MMXU1$MX$PhV", "MMXU1$MX$A$phsA$cVal$mag$f",
        "MHAI1", "MSQI1", "QVVR1", "TVTR1",        "TCTR3",
        "MMXU2", "GGIO1", "STMP1"};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        vaa_req(&rq, D, items[i]);
        dump_exchange(fp, f, inv++, MMS_SVC_GET_VAR_ACCESS_ATTR, true, &rq);
        const char *d[1] = {D}, *it[1] = {items[i]};
        read_req(&rq, i % 2 == 0, 1, d, it);
        dump_exchange(fp, f, inv++, MMS_SVC_READ, true, &rq);
    }
    const char *d2[3] = {D, D, "GRIDSENSET_D2"},
               *i2[3] = {"MMXU1$MX$Hz", "MMXU1$MX$Nope", "LLN0$ST"};
    read_req(&rq, true, 3, d2, i2);
    dump_exchange(fp, f, inv++, MMS_SVC_READ, true, &rq);
    vaa_req(&rq, "NOPE", "LLN0");
    dump_exchange(fp, f, inv++, MMS_SVC_GET_VAR_ACCESS_ATTR, true, &rq);
    uint8_t junk[3] = {0xA1, 0x05, 0x00};
    memcpy(rq.b, junk, 3);
    rq.n = 3;
    dump_exchange(fp, f, inv++, MMS_SVC_READ, true, &rq);
    /* datasets and report control blocks */
    bb_t on = {0}, vl = {0};
    objname_dom(&on, D, "LLN0$Measurements");
    dump_exchange(fp, f, inv++, MMS_SVC_GET_NVL_ATTR, true, &on);
    wrap(&vl, 0xA1, &on);
    rq.n = 0;
    wrap(&rq, 0xA1, &vl);
    dump_exchange(fp, f, inv++, MMS_SVC_READ, true, &rq);
    static const char *const rcbs[] = {"LLN0$BR$MeasBRCB01", "LLN0$RP$MeasRCB01", "LLN0$RP"};
    for (size_t i = 0; i < sizeof rcbs / sizeof rcbs[0]; i++) {
        vaa_req(&rq, D, rcbs[i]);
        dump_exchange(fp, f, inv++, MMS_SVC_GET_VAR_ACCESS_ATTR, true, &rq);
        const char *d1[1] = {D}, *i1[1] = {rcbs[i]};
        read_req(&rq, false, 1, d1, i1);
        dump_exchange(fp, f, inv++, MMS_SVC_READ, true, &rq);
    }
    static const char *const en[] = {"LLN0$RP$MeasRCB01$RptEna", "LLN0$BR$EventsBRCB01$RptEna"};
    for (size_t i = 0; i < 2; i++) {
        bb_t list = {0}, vas = {0}, dat = {0}, o2 = {0}, name = {0}, seq = {0};
        objname_dom(&o2, D, en[i]);
        wrap(&name, 0xA0, &o2);
        wrap(&seq, 0x30, &name);
        memcpy(list.b, seq.b, seq.n);
        list.n = seq.n;
        wrap(&vas, 0xA0, &list);
        put_tlv(&dat, 0x83, "\xff", 1);
        memcpy(rq.b, vas.b, vas.n);
        rq.n = vas.n;
        wrap(&rq, 0xA0, &dat);
        dump_exchange(fp, f, inv++, MMS_SVC_WRITE, true, &rq);
    }
    /* reports: a data change of the measurements, a dip on the events' buffered block */
    assert_int_equal(ied_update_latest(f->m, "DEMO-0001", LATEST, T0_NS + 1000000000LL), 0);
    assert_int_equal(ied_add_event(f->m, "DEMO-0001",
                                   "{\"kind\":\"dip\",\"start_ns\":1796466040000000000,"
                                   "\"duration_s\":0.1,\"residual\":30.0,\"residual_pct\":52.0}",
                                   T0_NS + 1000000000LL),
                     0);
    int svc, nrep = 0;
    static uint8_t rb[70000], pdu[70000];
    for (;;) {
        mms_ber_writer_t w, w2;
        mms_bw_init(&w, rb, sizeof rb);
        int rc = ied_client_next_report(f->c, T0_NS + 1000000000LL, &w, &svc);
        assert_true(rc >= 0);
        if (!rc)
            break;
        mms_bw_init(&w2, pdu, sizeof pdu);
        mms_pdu_encode_unconfirmed(&w2, svc, mms_bw_data(&w), mms_bw_len(&w));
        dump_mms(fp, 'I', mms_bw_data(&w2), mms_bw_len(&w2));
        nrep++;
    }
    assert_int_equal(nrep, 2);
    /* file services */
    ied_set_file_ops(f->m, &FAKE_OPS, NULL);
    rq.n = 0;
    dump_exchange(fp, f, inv++, MMS_SVC_FILE_DIRECTORY, true, &rq);
    rq.n = 0;
    filename(&rq, 0xA0, "DEMO-0001");
    dump_exchange(fp, f, inv++, MMS_SVC_FILE_DIRECTORY, true, &rq);
    rq.n = 0;
    filename(&rq, 0xA0, "DEMO-0001/EV12.cfg");
    put_tlv(&rq, 0x81, "\0", 1);
    dump_exchange(fp, f, inv++, MMS_SVC_FILE_OPEN, true, &rq);
    rq.n = 1;
    rq.b[0] = 0;
    dump_exchange(fp, f, inv++, MMS_SVC_FILE_READ, false, &rq);
    dump_exchange(fp, f, inv++, MMS_SVC_FILE_CLOSE, false, &rq);
    fx_free(f);
    fclose(fp);
}

/* The captured client's requests on an LD with the captures' domain name: its writes to
 * LLN0$RP$EventsRCB01 (Resv, OptFlds, TrgOps, RptEna, GI with the captures' encodings) succeed
 * and its reads of common names return data. */
static void test_capture_on_our_model(void **state)
{
    capture_model = 1;
    capture_write_ok = capture_read_ok = 0;
    test_capture_requests(state);
    capture_model = 0;
    assert_true(capture_write_ok >= 7);
    assert_true(capture_read_ok >= 5);
    print_message("captured file service requests answered: %d\n", capture_file_ok);
    assert_true(capture_file_ok >= 8); /* FileDirectory, Open, Read, Close of both files */
    assert_int_equal(fake_open_count, 0);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--scl")) {
        scl_path = argv[2];
        names_path = argv[3];
        const struct CMUnitTest only[] = {cmocka_unit_test(test_dump_scl)};
        return cmocka_run_group_tests(only, NULL, NULL);
    }
    if (argc == 3 && !strcmp(argv[1], "--answers")) {
        answers_path = argv[2];
        const struct CMUnitTest only[] = {cmocka_unit_test(test_write_answers)};
        return cmocka_run_group_tests(only, NULL, NULL);
    }
    if (argc == 3 && !strcmp(argv[1], "--corpus"))
        corpus_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naming),
        cmocka_unit_test(test_new_and_terminals),
        cmocka_unit_test(test_get_name_list),
        cmocka_unit_test(test_get_vaa),
        cmocka_unit_test(test_read_values),
        cmocka_unit_test(test_quality_offline_unsync),
        cmocka_unit_test(test_identify_status_write),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_slice2_lns),
        cmocka_unit_test(test_datasets_reports),
        cmocka_unit_test(test_ten_meas_rcbs),
        cmocka_unit_test(test_dynamic_lists),
        cmocka_unit_test(test_file_services),
        cmocka_unit_test(test_capture_requests),
        cmocka_unit_test(test_capture_on_our_model),
    };
    if (corpus_dir) {
        answers_path = "/dev/null";
        const struct CMUnitTest only[] = {cmocka_unit_test(test_capture_requests),
                                          cmocka_unit_test(test_write_answers)};
        return cmocka_run_group_tests(only, NULL, NULL);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
