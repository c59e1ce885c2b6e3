/* Unit tests for the MMS stack layers (src/iec61850/mms.h) on real traffic: every TPKT of the
 * shared reference captures (the .hex files of tests/vectors/mms, extracted by extract.py there)
 * goes through TPKT -> COTP (with DT reassembly) -> session -> presentation -> ACSE -> MMS, each
 * layer's decoded structure is re-encoded and must give the received bytes again; every strict
 * prefix of every TSDU and TPKT is rejected; then the negative and answer (ER, ABORT, Reject)
 * cases of each layer.
 *
 * `test_mms_stack --corpus DIR` writes the seed corpora of the fuzz targets (one directory per
 * layer, tests/fuzz/corpus/mms_*) from the same vectors instead of running the tests;
 * `test_mms_stack --answers FILE` writes the answers our encoders build as text2pcap input, for
 * tests/unit/mms_tshark_answers.sh to check with Wireshark's dissectors. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/err.h"
#include "iec61850/mms.h"

/* ---- Vectors ------------------------------------------------------------------------------- */

typedef struct {
    char file[96];
    int c2s;
    int stream, idx;
    uint8_t *b;
    size_t n;
} vec_t;

static vec_t *vecs;
static size_t n_vecs;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_vectors(void)
{
    DIR *d;
    struct dirent *e;
    char *names[64];
    size_t nn = 0, i, cap = 0;
    static char line[1 << 18];

    if (vecs)
        return;
    d = opendir(MMS_VECTORS_DIR);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", MMS_VECTORS_DIR);
        abort();
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".hex") == 0 && nn < 64)
            names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof names[0], cmp_name);
    for (i = 0; i < nn; i++) {
        char path[512];
        FILE *fp;
        snprintf(path, sizeof path, "%s/%s", MMS_VECTORS_DIR, names[i]);
        fp = fopen(path, "r");
        if (!fp)
            abort();
        while (fgets(line, sizeof line, fp)) {
            char dir[8], *hex;
            int stream, idx, off = 0;
            size_t hl, k;
            vec_t *v;
            if (sscanf(line, "%7s %d %d %n", dir, &stream, &idx, &off) != 3)
                continue;
            hex = line + off;
            hl = strcspn(hex, "\r\n");
            if (n_vecs == cap) {
                cap = cap ? cap * 2 : 256;
                vecs = realloc(vecs, cap * sizeof *vecs);
                if (!vecs)
                    abort();
            }
            v = &vecs[n_vecs++];
            snprintf(v->file, sizeof v->file, "%.*s", (int)(strlen(names[i]) - 4), names[i]);
            v->c2s = strcmp(dir, "c2s") == 0;
            v->stream = stream;
            v->idx = idx;
            v->n = hl / 2;
            v->b = malloc(v->n);
            if (!v->b)
                abort();
            for (k = 0; k < v->n; k++)
                v->b[k] = (uint8_t)(hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1]));
        }
        fclose(fp);
        free(names[i]);
    }
}

static void free_vectors(void)
{
    size_t i;
    for (i = 0; i < n_vecs; i++)
        free(vecs[i].b);
    free(vecs);
    vecs = NULL;
    n_vecs = 0;
}

static int teardown(void **state)
{
    (void)state;
    free_vectors();
    return 0;
}

/* ---- The chain ------------------------------------------------------------------------------ */

typedef struct {
    size_t tpkts, tsdus, mms_pdus, acse_apdus, cn, ac, dt, fn, dn, ab;
    size_t mms_types[14];
    size_t services_req[100];
} counts_t;

static counts_t cnt;

typedef void (*sink_fn)(const char *layer, const uint8_t *p, size_t n);
static sink_fn sink; /* set in --corpus mode */

static void emit(const char *layer, const uint8_t *p, size_t n)
{
    if (sink)
        sink(layer, p, n);
}

static uint8_t enc_buf[1 << 17];

/* Re-encodes an MMS PDU and compares it with the original bytes. */
static int mms_roundtrip(const uint8_t *p, size_t n, const mms_pdu_t *pdu)
{
    mms_ber_writer_t w;
    mms_bw_init(&w, enc_buf, sizeof enc_buf);
    mms_pdu_encode(&w, pdu);
    if (w.err || mms_bw_len(&w) != n || memcmp(mms_bw_data(&w), p, n) != 0)
        return GS_EPROTO;
    return 0;
}

static int decode_mms(const uint8_t *p, size_t n, int expect_type, bool check)
{
    mms_pdu_t pdu;
    mms_reject_t rej;
    int rc = mms_pdu_decode(p, n, &pdu, &rej);
    if (rc < 0)
        return rc;
    if (expect_type >= 0 && pdu.type != expect_type)
        return GS_EPROTO;
    if (check) {
        emit("mms_pdu", p, n);
        emit("mms_ber", p, n);
        cnt.mms_pdus++;
        cnt.mms_types[pdu.type]++;
        if (pdu.type == MMS_PDU_CONFIRMED_REQ && pdu.service < 100)
            cnt.services_req[pdu.service]++;
        if ((rc = mms_roundtrip(p, n, &pdu)) < 0) {
            fprintf(stderr, "MMS PDU re-encode differs (type %d, %zu octets)\n", pdu.type, n);
            return rc;
        }
    }
    return 0;
}

static int decode_acse(const uint8_t *p, size_t n, int kind, int mms_type, bool check)
{
    mms_apdu_t a;
    mms_ber_writer_t w;
    int rc = mms_acse_decode(p, n, &a);
    if (rc < 0)
        return rc;
    if (a.kind != kind)
        return GS_EPROTO;
    if (a.user_info && (rc = decode_mms(a.user_info, a.user_len, mms_type, check)) < 0)
        return rc;
    if (kind <= MMS_APDU_AARE && !a.user_info)
        return GS_EPROTO; /* 8-1: the initiate PDU rides in AARQ/AARE */
    if (check) {
        emit("mms_acse", p, n);
        cnt.acse_apdus++;
        if (kind <= MMS_APDU_AARE && (!mms_oid_eq(&a.app_ctx, MMS_OID_MMS_CTX, 5)))
            return GS_EPROTO;
        mms_bw_init(&w, enc_buf, sizeof enc_buf);
        mms_acse_encode(&w, &a);
        if (w.err || mms_bw_len(&w) != n || memcmp(mms_bw_data(&w), p, n) != 0) {
            fprintf(stderr, "ACSE re-encode differs (kind %d)\n", kind);
            return GS_EPROTO;
        }
    }
    return 0;
}

static int pres_roundtrip(const uint8_t *p, size_t n, const mms_ppdu_t *pp)
{
    static uint8_t buf[1 << 17];
    mms_ber_writer_t w;
    mms_bw_init(&w, buf, sizeof buf);
    switch (pp->type) {
    case MMS_PPDU_CP:
        mms_pres_encode_cp(&w, pp);
        break;
    case MMS_PPDU_CPA:
        mms_pres_encode_cpa(&w, pp);
        break;
    case MMS_PPDU_ARU:
        mms_pres_encode_aru(&w, pp);
        break;
    default:
        mms_pres_encode_data(&w, pp);
        break;
    }
    if (w.err || mms_bw_len(&w) != n || memcmp(mms_bw_data(&w), p, n) != 0) {
        fprintf(stderr, "presentation re-encode differs (type %d)\n", pp->type);
        return GS_EPROTO;
    }
    return 0;
}

/* Decodes one TSDU through every layer above COTP; with check, also counts, re-encodes and
 * compares every layer. Returns 0 or the first error. */
static int decode_tsdu(const uint8_t *p, size_t n, bool c2s, bool check)
{
    static uint8_t buf[1 << 17];
    mms_spdu_t s;
    mms_ppdu_t pp;
    int rc, len;

    if ((rc = mms_spdu_decode(p, n, &s)) < 0)
        return rc;
    if (!s.has_user_data)
        return GS_EPROTO;
    if (check) {
        emit("mms_session", p, n);
        emit("mms_pres", s.user_data, s.user_len);
        cnt.tsdus++;
        len = mms_spdu_encode(buf, sizeof buf, &s);
        if (len < 0 || (size_t)len != n || memcmp(buf, p, n) != 0) {
            fprintf(stderr, "SPDU re-encode differs (SI %u)\n", s.si);
            return GS_EPROTO;
        }
    }
    switch (s.si) {
    case MMS_SPDU_CN:
    case MMS_SPDU_AC: {
        bool cn = s.si == MMS_SPDU_CN;
        bool acse = false, mms = false;
        unsigned i;
        if (cn != c2s)
            return GS_EPROTO;
        rc = cn ? mms_pres_decode_cp(s.user_data, s.user_len, &pp)
                : mms_pres_decode_cpa(s.user_data, s.user_len, &pp);
        if (rc < 0)
            return rc;
        for (i = 0; i < pp.n_ctx; i++) {
            if (!pp.ctx[i].ber)
                return GS_EPROTO;
            if (cn && pp.ctx[i].id == MMS_PCTX_ACSE &&
                mms_oid_eq(&pp.ctx[i].abstract, MMS_OID_ACSE, 5))
                acse = true;
            if (cn && pp.ctx[i].id == MMS_PCTX_MMS &&
                mms_oid_eq(&pp.ctx[i].abstract, MMS_OID_MMS, 5))
                mms = true;
            if (!cn && pp.ctx[i].result != 0)
                return GS_EPROTO;
        }
        if ((cn && (!acse || !mms)) || (!cn && pp.n_ctx != 2))
            return GS_EPROTO;
        if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != MMS_PCTX_ACSE)
            return GS_EPROTO;
        if ((rc = decode_acse(pp.pdv[0].data, pp.pdv[0].len, cn ? MMS_APDU_AARQ : MMS_APDU_AARE,
                              cn ? MMS_PDU_INITIATE_REQ : MMS_PDU_INITIATE_RESP, check)) < 0)
            return rc;
        if (check) {
            cnt.cn += cn;
            cnt.ac += !cn;
        }
        break;
    }
    case MMS_SPDU_DT:
        if ((rc = mms_pres_decode_data(s.user_data, s.user_len, &pp)) < 0)
            return rc;
        if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != MMS_PCTX_MMS)
            return GS_EPROTO;
        if ((rc = decode_mms(pp.pdv[0].data, pp.pdv[0].len, -1, check)) < 0)
            return rc;
        cnt.dt += check;
        break;
    case MMS_SPDU_FN:
    case MMS_SPDU_DN:
        if ((rc = mms_pres_decode_data(s.user_data, s.user_len, &pp)) < 0)
            return rc;
        if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != MMS_PCTX_ACSE)
            return GS_EPROTO;
        if ((rc = decode_acse(pp.pdv[0].data, pp.pdv[0].len,
                              s.si == MMS_SPDU_FN ? MMS_APDU_RLRQ : MMS_APDU_RLRE, -1, check)) < 0)
            return rc;
        if (check) {
            cnt.fn += s.si == MMS_SPDU_FN;
            cnt.dn += s.si == MMS_SPDU_DN;
        }
        break;
    case MMS_SPDU_AB:
        if ((rc = mms_pres_decode_aru(s.user_data, s.user_len, &pp)) < 0)
            return rc;
        if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != MMS_PCTX_ACSE)
            return GS_EPROTO;
        if ((rc = decode_acse(pp.pdv[0].data, pp.pdv[0].len, MMS_APDU_ABRT, -1, check)) < 0)
            return rc;
        cnt.ab += check;
        break;
    default:
        return GS_EPROTO;
    }
    if (check && (rc = pres_roundtrip(s.user_data, s.user_len, &pp)) < 0)
        return rc;
    return 0;
}

/* Every strict prefix of p[0..n), as an exact-size heap copy, must fail to decode. */
static void prefixes_fail(const uint8_t *p, size_t n, bool c2s)
{
    size_t k, step = n > 4096 ? 7 : 1; /* the big read responses: every 7th, plus the tail */
    for (k = 0; k < n; k += (n - k <= 64 ? 1 : step)) {
        uint8_t *c = malloc(k ? k : 1);
        int rc;
        assert_non_null(c);
        memcpy(c, p, k);
        rc = decode_tsdu(c, k, c2s, false);
        if (rc >= 0)
            fprintf(stderr, "prefix %zu of %zu decoded\n", k, n);
        assert_true(rc < 0);
        free(c);
    }
}

/* Runs every vector; returns the number of failures. */
static int run_all(bool prefixes)
{
    static uint8_t rbuf[1 << 17];
    mms_cotp_reasm_t ra;
    size_t i;
    int fails = 0, key_stream = -1, key_c2s = -1;
    const char *key_file = "";

    memset(&cnt, 0, sizeof cnt);
    load_vectors();
    for (i = 0; i < n_vecs; i++) {
        vec_t *v = &vecs[i];
        const uint8_t *pl;
        size_t plen;
        mms_cotp_t c;
        int rc;

        if (v->stream != key_stream || v->c2s != key_c2s || strcmp(v->file, key_file) != 0) {
            mms_cotp_reasm_init(&ra, rbuf, sizeof rbuf);
            key_stream = v->stream;
            key_c2s = v->c2s;
            key_file = v->file;
        }
        emit("mms_cotp", v->b, v->n);
        rc = mms_tpkt_frame(v->b, v->n, MMS_TPKT_MAX, &pl, &plen);
        if (rc != (int)v->n || (rc = mms_cotp_decode(pl, plen, &c)) < 0) {
            fprintf(stderr, "%s %d/%d: TPKT/COTP rc %d\n", v->file, v->stream, v->idx, rc);
            fails++;
            continue;
        }
        cnt.tpkts++;
        if (prefixes) { /* a TPKT prefix is "need more", never a frame */
            size_t k;
            for (k = 0; k < v->n; k++)
                if (mms_tpkt_frame(v->b, k, MMS_TPKT_MAX, &pl, &plen) != 0)
                    fails++;
        }
        if (c.type == MMS_COTP_CR || c.type == MMS_COTP_CC) {
            uint8_t out[128];
            int n = mms_cotp_encode_cr_cc(out, sizeof out, &c);
            if (n != (int)v->n || memcmp(out, v->b, v->n) != 0) {
                fprintf(stderr, "%s: CR/CC re-encode differs\n", v->file);
                fails++;
            }
            if (c.class_opt >> 4 != 0 || !c.tpdu_size)
                fails++;
            continue;
        }
        if (c.type != MMS_COTP_DT) {
            fails++;
            continue;
        }
        rc = mms_cotp_reasm_add(&ra, &c);
        if (rc < 0) {
            fails++;
            continue;
        }
        if (rc == 0)
            continue;
        rc = decode_tsdu(ra.buf, ra.len, v->c2s, true);
        if (rc < 0) {
            fprintf(stderr, "%s %s stream %d tpkt %d: %s\n", v->file, v->c2s ? "c2s" : "s2c",
                    v->stream, v->idx, err_name(rc));
            fails++;
            continue;
        }
        if (prefixes)
            prefixes_fail(ra.buf, ra.len, v->c2s);
    }
    return fails;
}

static void test_captures_decode_and_reencode(void **state)
{
    size_t i;
    (void)state;
    assert_int_equal(run_all(false), 0);
    fprintf(stderr,
            "captures: %zu TPKTs, %zu TSDUs (CN %zu, AC %zu, DT %zu, FN %zu, DN %zu, AB %zu), "
            "%zu MMS PDUs, %zu ACSE APDUs\n",
            cnt.tpkts, cnt.tsdus, cnt.cn, cnt.ac, cnt.dt, cnt.fn, cnt.dn, cnt.ab, cnt.mms_pdus,
            cnt.acse_apdus);
    fprintf(stderr, "MMS PDU types:");
    for (i = 0; i < 14; i++)
        if (cnt.mms_types[i])
            fprintf(stderr, " [%zu]=%zu", i, cnt.mms_types[i]);
    fprintf(stderr, "\nconfirmed request services:");
    for (i = 0; i < 100; i++)
        if (cnt.services_req[i])
            fprintf(stderr, " [%zu]=%zu", i, cnt.services_req[i]);
    fprintf(stderr, "\n");
    /* Every TPKT of the 13 captures (340 when extracted) and every association in them. */
    assert_int_equal(cnt.tpkts, n_vecs);
    assert_true(cnt.tpkts >= 340);
    assert_int_equal(cnt.cn, 17);
    assert_int_equal(cnt.ac, 16); /* the rejected password gets no AC: the server closes */
    /* The committed vectors' exact content: every confirmed request has its response, 43
     * InformationReports, 17 initiate requests / 16 responses, 6 conclude pairs, 5 aborts. */
    assert_int_equal(cnt.tsdus, 303);
    assert_int_equal(cnt.mms_pdus, 286);
    assert_int_equal(cnt.acse_apdus, 50);
    assert_int_equal(cnt.mms_types[MMS_PDU_CONFIRMED_REQ], 99);
    assert_int_equal(cnt.mms_types[MMS_PDU_CONFIRMED_RESP], 99);
    assert_int_equal(cnt.mms_types[MMS_PDU_UNCONFIRMED], 43);
    assert_int_equal(cnt.mms_types[MMS_PDU_INITIATE_REQ], 17);
    assert_int_equal(cnt.mms_types[MMS_PDU_INITIATE_RESP], 16);
    assert_int_equal(cnt.mms_types[MMS_PDU_CONCLUDE_REQ], 6);
    assert_int_equal(cnt.mms_types[MMS_PDU_CONCLUDE_RESP], 6);
    assert_int_equal(cnt.ab, 5);
    assert_int_equal(cnt.fn, 6);
    assert_int_equal(cnt.dn, 6);
    /* services a later dispatcher must route: read, write, GetNameList, files, lists, ... */
    assert_int_equal(cnt.services_req[MMS_SVC_READ], 23);
    assert_int_equal(cnt.services_req[MMS_SVC_WRITE], 17);
    assert_int_equal(cnt.services_req[MMS_SVC_GET_NAME_LIST], 16);
    assert_int_equal(cnt.services_req[MMS_SVC_FILE_READ], 9);
    assert_int_equal(cnt.services_req[MMS_SVC_FILE_DIRECTORY], 4);
}

static void test_captures_prefixes_rejected(void **state)
{
    (void)state;
    assert_int_equal(run_all(true), 0);
}

/* ---- Layer negatives and answers ----------------------------------------------------------- */

static void test_tpkt_cotp_negative(void **state)
{
    const uint8_t *pl;
    size_t plen;
    mms_cotp_t c;
    uint8_t out[64];
    int n;
    mms_cotp_reasm_t ra;
    uint8_t small[8];
    (void)state;

    assert_int_equal(
        mms_tpkt_frame((const uint8_t[]){2, 0, 0, 7, 2, 0xF0, 0x80}, 7, 65535, &pl, &plen),
        GS_EPROTO); /* version 2 */
    assert_int_equal(mms_tpkt_frame((const uint8_t[]){3, 0, 0, 6, 2, 0xF0}, 6, 65535, &pl, &plen),
                     GS_EPROTO); /* shorter than 7 */
    assert_int_equal(mms_tpkt_frame((const uint8_t[]){3, 0, 0xFF, 0xFF}, 4, 8192, &pl, &plen),
                     GS_ELIMIT);
    assert_int_equal(mms_tpkt_frame((const uint8_t[]){3, 0, 0, 9, 2}, 5, 65535, &pl, &plen), 0);

    /* LI past the end, LI 255, DT with a TPDU-NR, class 0 DT with a wrong LI, unknown code */
    assert_int_equal(mms_cotp_decode((const uint8_t[]){6, 0xE0, 0, 0}, 4, &c), GS_EPROTO);
    assert_int_equal(mms_cotp_decode((const uint8_t[]){255, 0xF0, 0x80}, 3, &c), GS_EPROTO);
    assert_int_equal(mms_cotp_decode((const uint8_t[]){2, 0xF0, 0x81}, 3, &c), GS_EPROTO);
    assert_int_equal(c.bad_cause, MMS_COTP_ER_BAD_VALUE);
    assert_int_equal(mms_cotp_decode((const uint8_t[]){3, 0xF0, 0x80, 0}, 4, &c), GS_EPROTO);
    assert_int_equal(mms_cotp_decode((const uint8_t[]){2, 0x50, 0x80}, 3, &c), GS_EPROTO);
    assert_int_equal(c.bad_cause, MMS_COTP_ER_BAD_TYPE);
    /* CR parameter value past the LI; bad TPDU size code */
    assert_int_equal(mms_cotp_decode((const uint8_t[]){8, 0xE0, 0, 0, 0, 1, 0, 0xC1, 5}, 9, &c),
                     GS_EPROTO);
    assert_int_equal(
        mms_cotp_decode((const uint8_t[]){9, 0xE0, 0, 0, 0, 1, 0, 0xC0, 1, 14}, 10, &c), GS_EPROTO);
    assert_int_equal(c.bad_cause, MMS_COTP_ER_BAD_VALUE);
    /* unknown CR parameters are skipped */
    assert_int_equal(
        mms_cotp_decode((const uint8_t[]){10, 0xE0, 0, 0, 0, 1, 0, 0xC6, 1, 1, 0xC0, 1, 13}, 13,
                        &c),
        GS_EPROTO); /* LI 10 ends inside the second parameter */
    assert_int_equal(
        mms_cotp_decode((const uint8_t[]){12, 0xE0, 0, 0, 0, 1, 0, 0xC6, 1, 1, 0xC0, 1, 13}, 13,
                        &c),
        0);
    assert_int_equal(c.tpdu_size, 8192);

    /* The ER answer decodes back with its cause and the offending header */
    n = mms_cotp_encode_er(out, sizeof out, 0x0001, MMS_COTP_ER_BAD_TYPE,
                           (const uint8_t[]){2, 0x50, 0x80}, 3);
    assert_true(n > 0);
    assert_int_equal(mms_tpkt_frame(out, (size_t)n, 65535, &pl, &plen), n);
    assert_int_equal(mms_cotp_decode(pl, plen, &c), 0);
    assert_int_equal(c.type, MMS_COTP_ER);
    assert_int_equal(c.reason, MMS_COTP_ER_BAD_TYPE);
    assert_int_equal(c.data_len, 3);
    n = mms_cotp_encode_dr(out, sizeof out, 1, 2, 128 + 1);
    assert_int_equal(mms_tpkt_frame(out, (size_t)n, 65535, &pl, &plen), n);
    assert_int_equal(mms_cotp_decode(pl, plen, &c), 0);
    assert_true(c.type == MMS_COTP_DR && c.dst_ref == 1 && c.src_ref == 2 && c.reason == 129);
    assert_int_equal(mms_cotp_encode_dr(out, 10, 1, 2, 0), GS_ELIMIT);

    /* reassembly bound */
    mms_cotp_reasm_init(&ra, small, sizeof small);
    n = mms_cotp_encode_dt(out, sizeof out, false, (const uint8_t[]){1, 2, 3, 4, 5}, 5);
    assert_int_equal(mms_tpkt_frame(out, (size_t)n, 65535, &pl, &plen), n);
    assert_int_equal(mms_cotp_decode(pl, plen, &c), 0);
    assert_int_equal(mms_cotp_reasm_add(&ra, &c), 0);
    assert_int_equal(mms_cotp_reasm_add(&ra, &c), GS_ELIMIT); /* 10 > 8 */
    mms_cotp_reasm_init(&ra, small, sizeof small);
    assert_int_equal(mms_cotp_reasm_add(&ra, &c), 0);
    c.eot = true;
    c.data_len = 3;
    assert_int_equal(mms_cotp_reasm_add(&ra, &c), 1);
    assert_int_equal(ra.len, 8);
    assert_memory_equal(ra.buf, ((uint8_t[]){1, 2, 3, 4, 5, 1, 2, 3}), 8);
}

/* The server response of the captures that spans four DTs (TPDU size 8192): reassembled, then
 * segmented again, it gives the same four TPKTs. */
static void test_cotp_segment_like_capture(void **state)
{
    static uint8_t tsdu[1 << 16], out[9000];
    size_t i, first = 0, count = 0, len = 0, off = 0, k = 0;
    bool last = false;
    (void)state;

    load_vectors();
    for (i = 0; i < n_vecs; i++) {
        const vec_t *v = &vecs[i];
        if (strcmp(v->file, "d_files_file_tool_and_probe") != 0 || v->c2s || v->stream != 3 ||
            v->idx < 5 || v->idx > 8)
            continue;
        if (!count)
            first = i;
        assert_true(v->n > 7);
        memcpy(tsdu + len, v->b + 7, v->n - 7);
        len += v->n - 7;
        count++;
    }
    assert_int_equal(count, 4);
    while (!last) {
        int n = mms_cotp_segment(out, sizeof out, 8192, tsdu, len, &off, &last);
        assert_true(n > 0);
        assert_true(k < 4);
        assert_int_equal((size_t)n, vecs[first + k].n);
        assert_memory_equal(out, vecs[first + k].b, (size_t)n);
        k++;
    }
    assert_int_equal(k, 4);
    assert_int_equal(off, len);
    /* empty TSDU: one DT with EOT; bad sizes refused */
    off = 0;
    assert_int_equal(mms_cotp_segment(out, sizeof out, 128, NULL, 0, &off, &last), 7);
    assert_true(last && out[6] == 0x80);
    assert_int_equal(mms_cotp_segment(out, sizeof out, 64, tsdu, 10, &off, &last), GS_EINVAL);
    assert_int_equal(mms_cotp_segment(out, 100, 8192, tsdu, 200, &off, &last), GS_ELIMIT);
}

static void test_session_negative_and_abort(void **state)
{
    mms_spdu_t s, ab;
    uint8_t out[64];
    int n;
    (void)state;

    assert_int_equal(mms_spdu_decode((const uint8_t[]){13, 10, 5, 6}, 4, &s), GS_ETRUNC);
    assert_int_equal(mms_spdu_decode((const uint8_t[]){13, 0xFF, 0x01}, 3, &s), GS_ETRUNC);
    assert_int_equal(mms_spdu_decode((const uint8_t[]){1, 0, 2, 0}, 4, &s), GS_EPROTO);
    assert_int_equal(mms_spdu_decode((const uint8_t[]){7, 0}, 2, &s), GS_ENOTSUP);
    /* a parameter whose LI runs past the SPDU's */
    assert_int_equal(mms_spdu_decode((const uint8_t[]){13, 3, 20, 2, 0}, 5, &s), GS_ETRUNC);
    assert_int_equal(mms_spdu_decode((const uint8_t[]){13, 5, 20, 3, 0, 2, 0}, 7, &s), GS_EPROTO);
    /* calling SSEL longer than 16 */
    {
        uint8_t b[2 + 2 + 17] = {13, 19, 51, 17};
        assert_int_equal(mms_spdu_decode(b, sizeof b, &s), GS_ELIMIT);
    }
    /* the ABORT answer: transport disconnect = released + protocol error (8.3.9.2) */
    memset(&ab, 0, sizeof ab);
    ab.si = MMS_SPDU_AB;
    ab.has_disconnect = true;
    ab.disconnect = 0x05;
    n = mms_spdu_encode(out, sizeof out, &ab);
    assert_int_equal(n, 5);
    assert_memory_equal(out, ((uint8_t[]){25, 3, 17, 1, 5}), 5);
    assert_int_equal(mms_spdu_decode(out, (size_t)n, &s), 0);
    assert_true(s.si == MMS_SPDU_AB && s.has_disconnect && s.disconnect == 5);
    /* REFUSE: reason code (PI 50) with the user data inside it (8.3.5) */
    {
        static const uint8_t ud[3] = {0x61, 0x01, 0x00};
        memset(&ab, 0, sizeof ab);
        ab.si = MMS_SPDU_RF;
        ab.has_disconnect = true;
        ab.disconnect = 1;
        ab.has_reason = true;
        ab.reason = 2;
        ab.has_user_data = true;
        ab.user_data = ud;
        ab.user_len = sizeof ud;
        n = mms_spdu_encode(out, sizeof out, &ab);
        assert_memory_equal(out, ((uint8_t[]){12, 9, 17, 1, 1, 50, 4, 2, 0x61, 0x01, 0x00}), 11);
        assert_int_equal(mms_spdu_decode(out, (size_t)n, &s), 0);
        assert_true(s.si == MMS_SPDU_RF && s.has_reason && s.reason == 2 && s.user_len == 3);
        assert_memory_equal(s.user_data, ud, 3);
    }
    /* extended LI form for > 254 octets of user data round-trips */
    {
        static uint8_t ud[300], big[400];
        memset(ud, 0x61, sizeof ud);
        memset(&ab, 0, sizeof ab);
        ab.si = MMS_SPDU_FN;
        ab.has_user_data = true;
        ab.user_data = ud;
        ab.user_len = sizeof ud;
        n = mms_spdu_encode(big, sizeof big, &ab);
        assert_int_equal(n, 1 + 3 + 1 + 3 + 300);
        assert_int_equal(big[1], 0xFF);
        assert_int_equal(mms_spdu_decode(big, (size_t)n, &s), 0);
        assert_int_equal(s.user_len, 300);
        assert_int_equal(mms_spdu_encode(big, 100, &ab), GS_ELIMIT);
    }
}

static void test_pres_acse_negative(void **state)
{
    mms_ppdu_t pp;
    mms_apdu_t a;
    uint8_t out[128];
    mms_ber_writer_t w;
    (void)state;

    /* data user data that is not fully-encoded-data, or octet-aligned */
    assert_int_equal(mms_pres_decode_data((const uint8_t[]){0x60, 0x00}, 2, &pp), GS_EPROTO);
    assert_int_equal(
        mms_pres_decode_data(
            (const uint8_t[]){0x61, 0x07, 0x30, 0x05, 0x02, 0x01, 0x03, 0x81, 0x00}, 9, &pp),
        GS_ENOTSUP);
    assert_int_equal(mms_pres_decode_data((const uint8_t[]){0x61, 0x00}, 2, &pp), GS_EPROTO);
    /* CP mode other than normal */
    assert_int_equal(
        mms_pres_decode_cp((const uint8_t[]){0x31, 0x05, 0xA0, 0x03, 0x80, 0x01, 0x00}, 7, &pp),
        GS_ENOTSUP);
    /* CPR and ARP answers decode */
    mms_bw_init(&w, out, sizeof out);
    mms_pres_encode_arp(&w, 1);
    assert_int_equal(mms_pres_decode_arp(mms_bw_data(&w), mms_bw_len(&w), &pp), 0);
    assert_int_equal(pp.provider_reason, 1);
    mms_bw_init(&w, out, sizeof out);
    mms_pres_encode_cpr(&w, 2);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x30, 0x03, 0x8A, 0x01, 0x02}), 5);

    /* ACSE: not an APDU, AARQ without application context, a rejected AARE */
    assert_int_equal(mms_acse_decode((const uint8_t[]){0x65, 0x00}, 2, &a), GS_EPROTO);
    assert_int_equal(mms_acse_decode((const uint8_t[]){0x60, 0x00}, 2, &a), GS_EPROTO);
    memset(&a, 0, sizeof a);
    a.kind = MMS_APDU_AARE;
    a.app_ctx.n = 5;
    memcpy(a.app_ctx.arc, MMS_OID_MMS_CTX, sizeof MMS_OID_MMS_CTX);
    a.has_app_ctx = true;
    a.result = MMS_ACSE_REJ_PERMANENT;
    a.diag_source = 1;
    a.diag = MMS_ACSE_DIAG_AUTH_FAILURE;
    a.user_ctx_id = -1;
    mms_bw_init(&w, out, sizeof out);
    mms_acse_encode(&w, &a);
    assert_int_equal(w.err, 0);
    {
        mms_apdu_t b;
        assert_int_equal(mms_acse_decode(mms_bw_data(&w), mms_bw_len(&w), &b), 0);
        assert_int_equal(b.kind, MMS_APDU_AARE);
        assert_int_equal(b.result, MMS_ACSE_REJ_PERMANENT);
        assert_int_equal(b.diag_source, 1);
        assert_int_equal(b.diag, MMS_ACSE_DIAG_AUTH_FAILURE);
    }
    /* encoders refuse caller counts that do not fit their arrays */
    memset(&pp, 0, sizeof pp);
    pp.n_pdv = MMS_PRES_MAX_PDV + 1;
    mms_bw_init(&w, out, sizeof out);
    mms_pres_encode_data(&w, &pp);
    assert_int_equal(w.err, GS_EINVAL);
    a.app_ctx.n = MMS_OID_MAX_ARCS + 1;
    mms_bw_init(&w, out, sizeof out);
    mms_acse_encode(&w, &a);
    assert_int_equal(w.err, GS_EINVAL);
    {
        mms_spdu_t s;
        memset(&s, 0, sizeof s);
        s.si = MMS_SPDU_CN;
        s.has_calling_ssel = true;
        s.calling_ssel_len = MMS_SESSION_MAX_SSEL + 1;
        assert_int_equal(mms_spdu_encode(out, sizeof out, &s), GS_EINVAL);
    }
    /* ABRT answer */
    memset(&a, 0, sizeof a);
    a.kind = MMS_APDU_ABRT;
    a.reason = 1; /* acse-service-provider */
    a.user_ctx_id = -1;
    mms_bw_init(&w, out, sizeof out);
    mms_acse_encode(&w, &a);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x64, 0x03, 0x80, 0x01, 0x01}), 5);
}

static void test_password_aarq(void **state)
{
    size_t i;
    bool seen = false;
    (void)state;

    load_vectors();
    for (i = 0; i < n_vecs; i++) { /* the AARQ of the rejected-password capture */
        const vec_t *v = &vecs[i];
        const uint8_t *pl;
        size_t plen;
        mms_cotp_t c;
        mms_spdu_t s;
        mms_ppdu_t pp;
        mms_apdu_t a;
        if (strcmp(v->file, "f_acse_password_rejected") != 0 || !v->c2s || v->idx != 1)
            continue;
        assert_int_equal(mms_tpkt_frame(v->b, v->n, MMS_TPKT_MAX, &pl, &plen), (int)v->n);
        assert_int_equal(mms_cotp_decode(pl, plen, &c), 0);
        assert_int_equal(mms_spdu_decode(c.data, c.data_len, &s), 0);
        assert_int_equal(s.calling_ssel_len, 5);
        assert_int_equal(mms_pres_decode_cp(s.user_data, s.user_len, &pp), 0);
        assert_int_equal(mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &a), 0);
        assert_true(a.auth_required && a.has_mechanism && a.has_auth);
        assert_true(mms_oid_eq(&a.mechanism, MMS_OID_PASSWORD, 4));
        assert_int_equal(a.auth_len, 10);
        assert_memory_equal(a.auth_value, "top secret", 10);
        assert_true(a.has_calling_ap_title && a.has_calling_ae_qual);
        seen = true;
    }
    assert_true(seen);
}

static void test_mms_reject_hints(void **state)
{
    mms_pdu_t pdu;
    mms_reject_t rej;
    uint8_t out[64];
    mms_ber_writer_t w;
    (void)state;

    /* unknown PDU type [14] */
    assert_true(mms_pdu_decode((const uint8_t[]){0x8E, 0x00}, 2, &pdu, &rej) < 0);
    assert_true(rej.rej_class == MMS_REJ_PDU_ERROR && rej.rej_code == MMS_REJ_PDU_UNKNOWN_TYPE);
    assert_false(rej.has_invoke_id);
    /* confirmed request, service [90]: unrecognized-service with the invokeID */
    assert_true(mms_pdu_decode((const uint8_t[]){0xA0, 0x06, 0x02, 0x01, 0x07, 0x9F, 0x5A, 0x00}, 8,
                               &pdu, &rej) < 0);
    assert_true(rej.has_invoke_id && rej.invoke_id == 7);
    assert_true(rej.rej_class == MMS_REJ_CONFIRMED_REQUEST &&
                rej.rej_code == MMS_REJ_REQ_UNRECOGNIZED_SERVICE);
    /* negative invokeID */
    assert_true(mms_pdu_decode((const uint8_t[]){0xA0, 0x05, 0x02, 0x01, 0xFF, 0x82, 0x00}, 7, &pdu,
                               &rej) < 0);
    assert_true(rej.rej_class == MMS_REJ_CONFIRMED_REQUEST &&
                rej.rej_code == MMS_REJ_REQ_INVALID_INVOKEID);
    /* a malformed body: invalid-argument */
    assert_true(
        mms_pdu_decode((const uint8_t[]){0xA0, 0x07, 0x02, 0x01, 0x01, 0xA4, 0x02, 0x30, 0x05}, 9,
                       &pdu, &rej) < 0);
    assert_true(rej.rej_code == MMS_REJ_REQ_INVALID_ARGUMENT && rej.invoke_id == 1);
    /* a body nested beyond the limit: max-recursion-exceeded */
    {
        static uint8_t deep[256];
        mms_bw_init(&w, deep, sizeof deep);
        size_t m0 = mms_bw_mark(&w);
        mms_bw_null(&w, MMS_BER_UNIVERSAL, 5);
        for (int i = 0; i < MMS_BER_MAX_DEPTH + 2; i++)
            mms_bw_wrap(&w, MMS_BER_UNIVERSAL, 16, m0);
        mms_bw_wrap(&w, MMS_BER_CONTEXT, MMS_SVC_READ, m0);
        mms_bw_uint(&w, MMS_BER_UNIVERSAL, 2, 9);
        mms_bw_wrap(&w, MMS_BER_CONTEXT, MMS_PDU_CONFIRMED_REQ, m0);
        assert_int_equal(w.err, 0);
        assert_int_equal(mms_pdu_decode(mms_bw_data(&w), mms_bw_len(&w), &pdu, &rej), GS_ELIMIT);
        assert_true(rej.rej_code == MMS_REJ_REQ_MAX_RECURSION && rej.invoke_id == 9);
    }
    /* unconfirmed-PDU with service [5]: unconfirmedPDU unrecognized-service; a response with
     * a bad body: confirmed-responsePDU invalid-result */
    assert_true(mms_pdu_decode((const uint8_t[]){0xA3, 0x02, 0xA5, 0x00}, 4, &pdu, &rej) < 0);
    assert_true(rej.rej_class == MMS_REJ_UNCONFIRMED && rej.rej_code == 1);
    assert_true(
        mms_pdu_decode((const uint8_t[]){0xA1, 0x07, 0x02, 0x01, 0x01, 0xA4, 0x02, 0x30, 0x05}, 9,
                       &pdu, &rej) < 0);
    assert_true(rej.rej_class == MMS_REJ_CONFIRMED_RESPONSE && rej.rej_code == 3);
    /* a Reject of a conclude-errorPDU ([11]) decodes */
    assert_int_equal(mms_pdu_decode((const uint8_t[]){0xA4, 0x03, 0x8B, 0x01, 0x00}, 5, &pdu, NULL),
                     0);
    assert_int_equal(pdu.rej_class, MMS_REJ_CONCLUDE_ERROR);
    /* the Reject answer decodes back */
    rej.has_invoke_id = true;
    rej.invoke_id = 300;
    rej.rej_class = MMS_REJ_CONFIRMED_REQUEST;
    rej.rej_code = MMS_REJ_REQ_UNRECOGNIZED_SERVICE;
    mms_bw_init(&w, out, sizeof out);
    mms_pdu_encode_reject(&w, &rej);
    assert_memory_equal(mms_bw_data(&w),
                        ((uint8_t[]){0xA4, 0x07, 0x80, 0x02, 0x01, 0x2C, 0x81, 0x01, 0x01}), 9);
    assert_int_equal(mms_pdu_decode(mms_bw_data(&w), mms_bw_len(&w), &pdu, NULL), 0);
    assert_true(pdu.type == MMS_PDU_REJECT && pdu.invoke_id == 300 && pdu.rej_class == 1 &&
                pdu.rej_code == 1);
    /* confirmed error answer */
    mms_bw_init(&w, out, sizeof out);
    mms_pdu_encode_error(&w, 5, 7 /* access */, 3 /* object-access-denied */);
    assert_int_equal(mms_pdu_decode(mms_bw_data(&w), mms_bw_len(&w), &pdu, NULL), 0);
    assert_true(pdu.type == MMS_PDU_CONFIRMED_ERR && pdu.invoke_id == 5 && pdu.err_class == 7 &&
                pdu.err_code == 3);
    /* conclude */
    mms_bw_init(&w, out, sizeof out);
    mms_pdu_encode_conclude(&w, true);
    assert_memory_equal(mms_bw_data(&w), ((uint8_t[]){0x8C, 0x00}), 2);
    assert_true(mms_pdu_decode((const uint8_t[]){0x8B, 0x01, 0x00}, 3, &pdu, &rej) < 0);
    assert_int_equal(rej.rej_class, MMS_REJ_CONCLUDE_REQUEST);
}

/* ---- Corpus mode --------------------------------------------------------------------------- */

static const char *corpus_dir;

static void write_seed(const char *layer, const uint8_t *p, size_t n)
{
    char path[1024];
    uint64_t h = 1469598103934665603ull; /* FNV-1a names dedupe identical seeds */
    size_t i;
    FILE *fp;
    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    snprintf(path, sizeof path, "%s/%s", corpus_dir, layer);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/cap_%016llx.bin", corpus_dir, layer, (unsigned long long)h);
    fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n)
        abort();
    fclose(fp);
}

/* Seeds for the answers each layer sends on errors (not in the captures). */
static void answer_seeds(void)
{
    static uint8_t out[256];
    mms_ber_writer_t w;
    mms_spdu_t s;
    mms_apdu_t a;
    mms_reject_t rej = {true, 7, MMS_REJ_CONFIRMED_REQUEST, MMS_REJ_REQ_UNRECOGNIZED_SERVICE};
    int n;

    n = mms_cotp_encode_er(out, sizeof out, 1, MMS_COTP_ER_BAD_TYPE,
                           (const uint8_t[]){2, 0x50, 0x80}, 3);
    write_seed("mms_cotp", out, (size_t)n);
    n = mms_cotp_encode_dr(out, sizeof out, 1, 1, 128);
    write_seed("mms_cotp", out, (size_t)n);
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_AB;
    s.has_disconnect = true;
    s.disconnect = 5;
    n = mms_spdu_encode(out, sizeof out, &s);
    write_seed("mms_session", out, (size_t)n);
    s.si = MMS_SPDU_RF;
    s.has_reason = true;
    s.reason = 2;
    n = mms_spdu_encode(out, sizeof out, &s);
    write_seed("mms_session", out, (size_t)n);
    mms_bw_init(&w, out, sizeof out);
    mms_pres_encode_arp(&w, 1);
    write_seed("mms_pres", mms_bw_data(&w), mms_bw_len(&w));
    mms_bw_init(&w, out, sizeof out);
    mms_pres_encode_cpr(&w, 2);
    write_seed("mms_pres", mms_bw_data(&w), mms_bw_len(&w));
    memset(&a, 0, sizeof a);
    a.kind = MMS_APDU_AARE;
    a.app_ctx.n = 5;
    memcpy(a.app_ctx.arc, MMS_OID_MMS_CTX, sizeof MMS_OID_MMS_CTX);
    a.result = MMS_ACSE_REJ_PERMANENT;
    a.diag_source = 1;
    a.diag = MMS_ACSE_DIAG_AUTH_FAILURE;
    a.user_ctx_id = -1;
    mms_bw_init(&w, out, sizeof out);
    mms_acse_encode(&w, &a);
    write_seed("mms_acse", mms_bw_data(&w), mms_bw_len(&w));
    a.kind = MMS_APDU_ABRT;
    a.reason = 1;
    mms_bw_init(&w, out, sizeof out);
    mms_acse_encode(&w, &a);
    write_seed("mms_acse", mms_bw_data(&w), mms_bw_len(&w));
    mms_bw_init(&w, out, sizeof out);
    mms_pdu_encode_reject(&w, &rej);
    write_seed("mms_pdu", mms_bw_data(&w), mms_bw_len(&w));
    mms_bw_init(&w, out, sizeof out);
    mms_pdu_encode_error(&w, 5, 7, 3);
    write_seed("mms_pdu", mms_bw_data(&w), mms_bw_len(&w));
}

/* ---- Answers for tshark (--answers FILE) --------------------------------------------------- */

/* One packet for text2pcap -D: 'O' client to server (a request), 'I' server to client. */
static void hexdump_dir(FILE *fp, char dir, const uint8_t *p, size_t n)
{
    size_t i;
    fprintf(fp, "%c\n", dir);
    for (i = 0; i < n; i++) {
        if (i % 16 == 0)
            fprintf(fp, "%s%06zx", i ? "\n" : "", i);
        fprintf(fp, " %02x", p[i]);
    }
    fprintf(fp, "\n\n");
}

static void hexdump(FILE *fp, const uint8_t *p, size_t n)
{
    hexdump_dir(fp, 'I', p, n);
}

/* Wraps one presentation user data (already encoded) in an SPDU and a DT TPKT. */
static int session_tpkt(uint8_t *out, size_t cap, mms_spdu_t *s, const uint8_t *ud, size_t n)
{
    static uint8_t sbuf[4096];
    int len;
    s->has_user_data = true;
    s->user_data = ud;
    s->user_len = n;
    len = mms_spdu_encode(sbuf, sizeof sbuf, s);
    if (len < 0)
        return len;
    return mms_cotp_encode_dt(out, cap, true, sbuf, (size_t)len);
}

/* Presentation data (one PDV of context ctx) around pdu, then a session SPDU of type si. */
static int data_tpkt(uint8_t *out, size_t cap, uint8_t si, int ctx, const uint8_t *pdu, size_t n)
{
    static uint8_t pbuf[4096];
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
    memset(&s, 0, sizeof s);
    s.si = si;
    return w.err ? w.err : session_tpkt(out, cap, &s, mms_bw_data(&w), mms_bw_len(&w));
}

/* Writes, as text2pcap hex dumps, the answers a server would send, built by our encoders only:
 * CC, AC (CPA + AARE + initiate-response), confirmed-Error, Reject, conclude-response, DN with
 * RLRE, AB with ARU/ABRT, AB with ARP, AC with an AARE rejection, ER. */
static int write_answers(const char *path)
{
    static uint8_t out[4096], b1[1024], b2[1024], b3[1024];
    FILE *fp = fopen(path, "w");
    mms_cotp_t cc;
    mms_initiate_t in;
    mms_apdu_t a;
    mms_ppdu_t pp;
    mms_spdu_t s;
    mms_ber_writer_t w1, w2, w3;
    mms_reject_t rej = {true, 7, MMS_REJ_CONFIRMED_REQUEST, MMS_REJ_REQ_UNRECOGNIZED_SERVICE};
    static const uint8_t services[11] = {0xEE, 0x1C, 0x00, 0x00, 0x04, 0x08,
                                         0x00, 0x00, 0x79, 0xEF, 0x18};
    static const uint8_t cbb[2] = {0xF1, 0x00};
    int n, pass;

    if (!fp)
        return 1;
    /* the client's CR and CONNECT of the first capture, so the dissectors learn the
     * presentation contexts (3 = MMS) from the CP */
    load_vectors();
    for (size_t i = 0; i < n_vecs; i++)
        if (vecs[i].c2s && vecs[i].stream == 0 && vecs[i].idx <= 1 &&
            strcmp(vecs[i].file, vecs[0].file) == 0)
            hexdump_dir(fp, 'O', vecs[i].b, vecs[i].n);
    memset(&cc, 0, sizeof cc);
    cc.type = MMS_COTP_CC;
    cc.dst_ref = 1;
    cc.src_ref = 1;
    cc.tpdu_size_code = 13;
    cc.has_calling_tsap = cc.has_called_tsap = true;
    cc.calling_tsap_len = cc.called_tsap_len = 2;
    cc.calling_tsap[1] = cc.called_tsap[1] = 1;
    n = mms_cotp_encode_cr_cc(out, sizeof out, &cc);
    hexdump(fp, out, (size_t)n);

    for (pass = 0; pass < 2; pass++) { /* 0: accepted association, 1: password refused */
        memset(&in, 0, sizeof in);
        in.has_local_detail = true;
        in.local_detail = 65000;
        in.max_serv_calling = in.max_serv_called = 5;
        in.has_nesting = true;
        in.nesting = 10;
        in.version = 1;
        memcpy(in.param_cbb, cbb, 2);
        in.param_cbb_bits = 11;
        memcpy(in.services, services, 11);
        in.services_bits = 85;
        mms_bw_init(&w1, b1, sizeof b1);
        mms_pdu_encode_initiate(&w1, true, &in);
        memset(&a, 0, sizeof a);
        a.kind = MMS_APDU_AARE;
        a.app_ctx.n = 5;
        memcpy(a.app_ctx.arc, MMS_OID_MMS_CTX, sizeof MMS_OID_MMS_CTX);
        a.has_app_ctx = true;
        a.result = pass ? MMS_ACSE_REJ_PERMANENT : MMS_ACSE_ACCEPTED;
        a.diag_source = 1;
        a.diag = pass ? MMS_ACSE_DIAG_AUTH_FAILURE : MMS_ACSE_DIAG_NULL;
        a.reason = -1;
        a.user_ctx_id = MMS_PCTX_MMS;
        a.user_info = pass ? NULL : mms_bw_data(&w1);
        a.user_len = pass ? 0 : mms_bw_len(&w1);
        mms_bw_init(&w2, b2, sizeof b2);
        mms_acse_encode(&w2, &a);
        memset(&pp, 0, sizeof pp);
        pp.type = MMS_PPDU_CPA;
        pp.has_responding_sel = true;
        pp.responding_sel_len = 4;
        pp.responding_sel[3] = 1;
        pp.n_ctx = 2;
        pp.ctx[0].ber = pp.ctx[1].ber = true;
        pp.n_pdv = 1;
        pp.pdv[0].ctx_id = MMS_PCTX_ACSE;
        pp.pdv[0].data = mms_bw_data(&w2);
        pp.pdv[0].len = mms_bw_len(&w2);
        mms_bw_init(&w3, b3, sizeof b3);
        mms_pres_encode_cpa(&w3, &pp);
        if (w1.err || w2.err || w3.err)
            goto fail;
        memset(&s, 0, sizeof s);
        s.si = MMS_SPDU_AC;
        s.has_protocol_options = true;
        s.has_version = true;
        s.version = 2;
        s.has_requirements = true;
        s.requirements = 2;
        s.has_called_ssel = true;
        s.called_ssel_len = 2;
        s.called_ssel[1] = 1;
        n = session_tpkt(out, sizeof out, &s, mms_bw_data(&w3), mms_bw_len(&w3));
        if (n < 0)
            goto fail;
        hexdump(fp, out, (size_t)n);
    }

    mms_bw_init(&w1, b1, sizeof b1);
    mms_pdu_encode_error(&w1, 5, 7, 3); /* access / object-access-denied */
    n = data_tpkt(out, sizeof out, MMS_SPDU_DT, MMS_PCTX_MMS, mms_bw_data(&w1), mms_bw_len(&w1));
    hexdump(fp, out, (size_t)n);
    mms_bw_init(&w1, b1, sizeof b1);
    mms_pdu_encode_reject(&w1, &rej);
    n = data_tpkt(out, sizeof out, MMS_SPDU_DT, MMS_PCTX_MMS, mms_bw_data(&w1), mms_bw_len(&w1));
    hexdump(fp, out, (size_t)n);
    mms_bw_init(&w1, b1, sizeof b1);
    mms_pdu_encode_conclude(&w1, true);
    n = data_tpkt(out, sizeof out, MMS_SPDU_DT, MMS_PCTX_MMS, mms_bw_data(&w1), mms_bw_len(&w1));
    hexdump(fp, out, (size_t)n);
    memset(&a, 0, sizeof a);
    a.kind = MMS_APDU_RLRE;
    a.reason = 0;
    a.user_ctx_id = -1;
    mms_bw_init(&w1, b1, sizeof b1);
    mms_acse_encode(&w1, &a);
    n = data_tpkt(out, sizeof out, MMS_SPDU_DN, MMS_PCTX_ACSE, mms_bw_data(&w1), mms_bw_len(&w1));
    hexdump(fp, out, (size_t)n);
    /* AB with ARU(ABRT) */
    a.kind = MMS_APDU_ABRT;
    a.reason = 1;
    mms_bw_init(&w1, b1, sizeof b1);
    mms_acse_encode(&w1, &a);
    memset(&pp, 0, sizeof pp);
    pp.n_pdv = 1;
    pp.pdv[0].ctx_id = MMS_PCTX_ACSE;
    pp.pdv[0].data = mms_bw_data(&w1);
    pp.pdv[0].len = mms_bw_len(&w1);
    mms_bw_init(&w2, b2, sizeof b2);
    mms_pres_encode_aru(&w2, &pp);
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_AB;
    s.has_disconnect = true;
    s.disconnect = 0x0B;
    n = session_tpkt(out, sizeof out, &s, mms_bw_data(&w2), mms_bw_len(&w2));
    hexdump(fp, out, (size_t)n);
    /* AB with ARP (presentation provider abort, unrecognized-ppdu) */
    mms_bw_init(&w2, b2, sizeof b2);
    mms_pres_encode_arp(&w2, 1);
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_AB;
    s.has_disconnect = true;
    s.disconnect = 0x05;
    n = session_tpkt(out, sizeof out, &s, mms_bw_data(&w2), mms_bw_len(&w2));
    hexdump(fp, out, (size_t)n);
    n = mms_cotp_encode_er(out, sizeof out, 1, MMS_COTP_ER_BAD_TYPE,
                           (const uint8_t[]){2, 0x50, 0x80}, 3);
    hexdump(fp, out, (size_t)n);
    return fclose(fp) == 0 ? 0 : 1;
fail:
    fclose(fp);
    return 1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_decode_and_reencode),
        cmocka_unit_test(test_captures_prefixes_rejected),
        cmocka_unit_test(test_tpkt_cotp_negative),
        cmocka_unit_test(test_cotp_segment_like_capture),
        cmocka_unit_test(test_session_negative_and_abort),
        cmocka_unit_test(test_pres_acse_negative),
        cmocka_unit_test(test_password_aarq),
        cmocka_unit_test(test_mms_reject_hints),
    };
    if (argc == 3 && strcmp(argv[1], "--answers") == 0) {
        int rc = write_answers(argv[2]);
        free_vectors();
        return rc;
    }
    if (argc == 3 && strcmp(argv[1], "--corpus") == 0) {
        corpus_dir = argv[2];
        mkdir(corpus_dir, 0755);
        sink = write_seed;
        int fails = run_all(false);
        answer_seeds();
        free_vectors();
        return fails == 0 ? 0 : 1;
    }
    return cmocka_run_group_tests(tests, NULL, teardown);
}
