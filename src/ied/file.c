/* ied file services: FileDirectory, FileOpen, FileRead, FileClose (ISO 9506-2 clauses 19-20,
 * IEC 61850-8-1 clause 23) over the file provider the server sets (ied_set_file_ops). Requests are
 * outside bytes: bounded readers, Reject invalid-argument on anything malformed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "ied/ied_int.h"

#define CTX  MMS_BER_CONTEXT
#define CTXC (MMS_BER_CONTEXT | MMS_BER_CONSTRUCTED)

/* ServiceError class file (11) codes, ISO 9506-2 7.4.1.3 */
enum { EC_RESOURCE = 3, EC_FILE = 11 };
enum { FE_OTHER = 0, FE_BUSY = 2, FE_SYNTAX = 3, FE_POSITION = 5, FE_NON_EXISTENT = 7 };
enum { RES_CAPABILITY_UNAVAILABLE = 4 };

#define DIR_PAGE 64 /* entries asked from the provider per FileDirectory */

void ied_set_file_ops(ied_t *m, const ied_file_ops_t *ops, void *ud)
{
    if (ops) {
        m->fops = *ops;
        m->has_fops = true;
    } else {
        m->has_fops = false;
    }
    m->fud = ud;
}

static void answer_error(ied_answer_t *a, int cls, int code)
{
    memset(a, 0, sizeof *a);
    a->kind = IED_ERROR;
    a->err_class = cls;
    a->err_code = code;
}

static void answer_reject(ied_answer_t *a)
{
    memset(a, 0, sizeof *a);
    a->kind = IED_REJECT;
    a->reject_code = MMS_REJ_REQ_INVALID_ARGUMENT;
}

static void answer_resp(ied_answer_t *a, int svc, bool cons)
{
    memset(a, 0, sizeof *a);
    a->kind = IED_RESP;
    a->service = svc;
    a->constructed = cons;
}

static int file_error(int rc)
{
    return rc == GS_ENOTFOUND ? FE_NON_EXISTENT
           : rc == GS_EBUSY   ? FE_BUSY
           : rc == GS_EINVAL  ? FE_SYNTAX
                              : FE_OTHER;
}

/* FileName ::= SEQUENCE OF GraphicString, the contents of element t: components joined with
 * '/'. Returns 0, GS_EPROTO (malformed: Reject) or GS_EINVAL (a name we refuse: syntax error). */
static int file_name(const mms_ber_reader_t *r, const mms_tlv_t *t, char *out, size_t cap)
{
    mms_ber_reader_t c;
    mms_tlv_t g;
    size_t n = 0;
    int rc, parts = 0;
    if (mms_ber_enter(r, t, &c) < 0)
        return GS_EPROTO;
    out[0] = 0;
    while ((rc = mms_ber_next(&c, &g)) == 1) {
        if (!mms_tlv_is(&g, MMS_BER_UNIVERSAL, false, 25))
            return GS_EPROTO;
        if (n + (parts ? 1 : 0) + g.len >= cap)
            return GS_EINVAL;
        if (parts && g.len)
            out[n++] = '/';
        for (size_t i = 0; i < g.len; i++) {
            if (g.val[i] < 0x20 || g.val[i] > 0x7E)
                return GS_EINVAL;
            out[n++] = (char)g.val[i];
        }
        out[n] = 0;
        parts++;
    }
    if (rc < 0)
        return GS_EPROTO;
    /* no "." or ".." component, no empty component inside the path */
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.') ||
            (l == 0 && e && p != out))
            return GS_EINVAL;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

/* GeneralizedTime "YYYYMMDDHHMMSSZ" of a UTC time. */
static void gentime(int64_t ns, char out[16])
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || strftime(out, 16, "%Y%m%d%H%M%SZ", &tm) != 15)
        snprintf(out, 16, "19700101000000Z");
}

/* FileAttributes ::= SEQUENCE { sizeOfFile [0] Unsigned32, lastModified [1] GeneralizedTime
 * OPTIONAL }, as the contents of an element the caller wraps. */
static void enc_attrs(mms_ber_writer_t *w, const ied_file_info_t *fi)
{
    if (fi->mtime_ns > 0) {
        char g[16];
        gentime(fi->mtime_ns, g);
        mms_bw_octets(w, CTX, 1, g, strlen(g));
    }
    mms_bw_uint(w, CTX, 0, fi->size > UINT32_MAX ? UINT32_MAX : fi->size);
}

static int svc_file_directory(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                              mms_ber_writer_t *w, ied_answer_t *a)
{
    ied_t *m = c->m;
    mms_ber_reader_t r;
    mms_tlv_t t;
    char spec[IED_FILE_NAME_MAX + 1] = "", after[IED_FILE_NAME_MAX + 1] = "";
    bool has_after = false;
    int rc, last = -1;
    if (!cons && len)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    while ((rc = mms_ber_next(&r, &t)) == 1) {
        /* fileSpecification [0] then continueAfter [1], both optional */
        if (!t.constructed || t.cls != MMS_BER_CONTEXT || t.tag > 1 || (int)t.tag <= last)
            goto bad;
        last = (int)t.tag;
        rc = file_name(&r, &t, t.tag ? after : spec, IED_FILE_NAME_MAX + 1);
        if (rc == GS_EPROTO)
            goto bad;
        if (rc < 0) {
            answer_error(a, EC_FILE, FE_SYNTAX);
            return 0;
        }
        if (t.tag == 1)
            has_after = true;
    }
    if (rc < 0)
        goto bad;
    ied_file_info_t *e = malloc(DIR_PAGE * sizeof *e);
    if (!e)
        return GS_ENOMEM;
    bool more = false;
    rc = m->fops.list(m->fud, spec, has_after ? after : NULL, e, DIR_PAGE, &more);
    if (rc < 0 || rc > DIR_PAGE) {
        free(e);
        answer_error(a, EC_FILE, rc < 0 ? file_error(rc) : FE_OTHER);
        return 0;
    }
    /* as many entries as fit the PDU (the client continues after the last one) */
    size_t budget = c->max_pdu > 64 ? c->max_pdu - 64 : 0, used = 0;
    int n = 0;
    for (; n < rc; n++) {
        size_t el = strlen(e[n].name) + 40;
        if (used + el > budget)
            break;
        used += el;
    }
    if (n == 0 && rc > 0) { /* not even one entry fits the negotiated PDU */
        free(e);
        answer_error(a, EC_RESOURCE, RES_CAPABILITY_UNAVAILABLE);
        return 0;
    }
    if (n < rc)
        more = true;
    if (more)
        mms_bw_bool(w, CTX, 1, true); /* moreFollows (DEFAULT FALSE) */
    size_t mk = mms_bw_mark(w);
    for (int i = n - 1; i >= 0; i--) {
        size_t me = mms_bw_mark(w);
        size_t ma = mms_bw_mark(w);
        enc_attrs(w, &e[i]);
        mms_bw_wrap(w, CTXC, 1, ma);
        size_t mn = mms_bw_mark(w);
        e[i].name[IED_FILE_NAME_MAX] = 0;
        mms_bw_octets(w, MMS_BER_UNIVERSAL, 25, e[i].name, strlen(e[i].name));
        mms_bw_wrap(w, CTXC, 0, mn);
        mms_bw_wrap(w, MMS_BER_UNIVERSAL | MMS_BER_CONSTRUCTED, 16, me);
    }
    /* listOfDirectoryEntry [0] SEQUENCE OF DirectoryEntry: the one EXPLICIT tag of the
     * response (ISO 9506-2 has no IMPLICIT there; the captures' server and Wireshark agree) */
    mms_bw_wrap(w, MMS_BER_UNIVERSAL | MMS_BER_CONSTRUCTED, 16, mk);
    mms_bw_wrap(w, CTXC, 0, mk);
    free(e);
    answer_resp(a, MMS_SVC_FILE_DIRECTORY, true);
    return w->err;
bad:
    answer_reject(a);
    return 0;
}

static int svc_file_open(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                         mms_ber_writer_t *w, ied_answer_t *a)
{
    ied_t *m = c->m;
    mms_ber_reader_t r;
    mms_tlv_t t, p, x;
    char name[IED_FILE_NAME_MAX + 1];
    uint32_t pos;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, true, 0, &t) < 0 || mms_ber_expect(&r, CTX, false, 1, &p) < 0 ||
        mms_ber_get_u32(&p, &pos) < 0 || mms_ber_next(&r, &x) != 0)
        goto bad;
    int rc = file_name(&r, &t, name, sizeof name);
    if (rc == GS_EPROTO)
        goto bad;
    if (rc < 0 || !name[0]) {
        answer_error(a, EC_FILE, FE_SYNTAX);
        return 0;
    }
    int slot = -1;
    for (int i = 0; i < IED_FRSM_MAX && slot < 0; i++)
        if (!c->frsm[i].open)
            slot = i;
    if (slot < 0) {
        answer_error(a, EC_RESOURCE, RES_CAPABILITY_UNAVAILABLE);
        return 0;
    }
    ied_file_info_t fi;
    void *h = NULL;
    memset(&fi, 0, sizeof fi);
    rc = m->fops.open(m->fud, name, &h, &fi);
    if (rc < 0) {
        answer_error(a, EC_FILE, file_error(rc));
        return 0;
    }
    if (pos > fi.size) {
        m->fops.close(m->fud, h);
        answer_error(a, EC_FILE, FE_POSITION);
        return 0;
    }
    /* initialPosition: skip that many octets */
    uint8_t skip[4096];
    for (uint32_t left = pos; left;) {
        int n = m->fops.read(m->fud, h, skip, left < sizeof skip ? left : sizeof skip);
        if (n <= 0) {
            m->fops.close(m->fud, h);
            answer_error(a, EC_FILE, n < 0 ? FE_OTHER : FE_POSITION);
            return 0;
        }
        left -= (uint32_t)n;
    }
    c->frsm[slot].open = true;
    c->frsm[slot].h = h;
    c->frsm[slot].pos = pos;
    c->frsm[slot].size = fi.size;
    size_t ma = mms_bw_mark(w);
    enc_attrs(w, &fi);
    mms_bw_wrap(w, CTXC, 1, ma);
    mms_bw_int(w, CTX, 0, slot); /* frsmID */
    answer_resp(a, MMS_SVC_FILE_OPEN, true);
    return w->err;
bad:
    answer_reject(a);
    return 0;
}

/* Integer32 request body (FileRead, FileClose: [73] / [74] IMPLICIT Integer32) -> frsm slot, or
 * -1 if malformed, -2 if no such open file. */
static int frsm_of(const ied_client_t *c, bool cons, const uint8_t *body, size_t len)
{
    mms_tlv_t t;
    int32_t id;
    if (cons)
        return -1;
    memset(&t, 0, sizeof t);
    t.cls = MMS_BER_CONTEXT;
    t.val = body;
    t.len = len;
    t.raw = body;
    if (mms_ber_get_i32(&t, &id) < 0)
        return -1;
    if (id < 0 || id >= IED_FRSM_MAX || !c->frsm[id].open)
        return -2;
    return id;
}

static int svc_file_read(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                         mms_ber_writer_t *w, ied_answer_t *a)
{
    ied_t *m = c->m;
    int id = frsm_of(c, cons, body, len);
    if (id == -1) {
        answer_reject(a);
        return 0;
    }
    if (id < 0) {
        answer_error(a, EC_FILE, FE_OTHER); /* no such open file */
        return 0;
    }
    size_t cap = c->max_pdu > 128 ? c->max_pdu - 64 : 64;
    if (cap > 65536)
        cap = 65536;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return GS_ENOMEM;
    size_t got = 0;
    bool eof = false;
    while (got < cap) {
        int n = m->fops.read(m->fud, c->frsm[id].h, buf + got, cap - got);
        if (n < 0) {
            free(buf);
            answer_error(a, EC_FILE, FE_OTHER);
            return 0;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        got += (size_t)n;
    }
    c->frsm[id].pos += got;
    if (c->frsm[id].size && c->frsm[id].pos >= c->frsm[id].size)
        eof = true;
    mms_bw_bool(w, CTX, 1, !eof); /* moreFollows */
    mms_bw_octets(w, CTX, 0, buf, got);
    free(buf);
    answer_resp(a, MMS_SVC_FILE_READ, true);
    return w->err;
}

static int svc_file_close(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                          ied_answer_t *a)
{
    int id = frsm_of(c, cons, body, len);
    if (id == -1) {
        answer_reject(a);
        return 0;
    }
    if (id < 0) {
        answer_error(a, EC_FILE, FE_OTHER);
        return 0;
    }
    c->m->fops.close(c->m->fud, c->frsm[id].h);
    memset(&c->frsm[id], 0, sizeof c->frsm[id]);
    answer_resp(a, MMS_SVC_FILE_CLOSE, false); /* FileClose-Response ::= NULL */
    return 0;
}

int ied_file_service(ied_client_t *c, int service, bool cons, const uint8_t *body, size_t len,
                     mms_ber_writer_t *w, ied_answer_t *a)
{
    if (!c->m->has_fops)
        return 1; /* not served */
    switch (service) {
    case MMS_SVC_FILE_DIRECTORY:
        return svc_file_directory(c, cons, body, len, w, a);
    case MMS_SVC_FILE_OPEN:
        return svc_file_open(c, cons, body, len, w, a);
    case MMS_SVC_FILE_READ:
        return svc_file_read(c, cons, body, len, w, a);
    case MMS_SVC_FILE_CLOSE:
        return svc_file_close(c, cons, body, len, a);
    default:
        return 1;
    }
}

void ied_file_close_all(ied_client_t *c)
{
    for (int i = 0; i < IED_FRSM_MAX; i++)
        if (c->frsm[i].open) {
            if (c->m->has_fops)
                c->m->fops.close(c->m->fud, c->frsm[i].h);
            memset(&c->frsm[i], 0, sizeof c->frsm[i]);
        }
}
