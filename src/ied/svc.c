/* ied services: the bodies of the MMS confirmed services (ISO 9506-2 clause 10-14 as IEC 61850-8-1
 * uses them) on the model of model.c. Requests are outside bytes: every element is read with the
 * bounded mms_ber reader and anything malformed is a Reject invalid-argument, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ied/ied_int.h"

#define CTX  MMS_BER_CONTEXT
#define CTXC (MMS_BER_CONTEXT | MMS_BER_CONSTRUCTED)
#define UNIV MMS_BER_UNIVERSAL

/* Envelope of a confirmed-ResponsePDU around the service contents (tag + invokeID + service tag
 * with their lengths): what is kept out of max_pdu for the body. */
#define ENVELOPE 24

/* ISO 9506-2 DataAccessError */
enum { DAE_ACCESS_DENIED = 3, DAE_ACCESS_UNSUPPORTED = 9, DAE_NON_EXISTENT = 10 };
/* ISO 9506-2 ServiceError errorClass tags and codes used here */
enum { EC_DEFINITION = 2, EC_RESOURCE = 3, EC_ACCESS = 7 };
enum { DEF_OBJECT_UNDEFINED = 1, RES_CAPABILITY_UNAVAILABLE = 4, ACC_OBJECT_NON_EXISTENT = 2 };
/* ISO 9506-2 ObjectClass basicObjectClass */
enum { OC_NAMED_VARIABLE = 0, OC_NVL = 2, OC_JOURNAL = 8, OC_DOMAIN = 9 };

/* Longest identifier accepted in a request: 8-1 names are at most 64 characters (domain) and
 * object references of 129; anything longer cannot name one of ours. */
#define MAX_IDENT 129

typedef struct {
    int scope; /* 0 vmd-specific, 1 domain-specific, 2 aa-specific */
    const char *dom, *item;
    size_t dom_len, item_len;
} objname_t;

static void reject(ied_answer_t *a, int code)
{
    memset(a, 0, sizeof *a);
    a->kind = IED_REJECT;
    a->reject_code = code;
}

static void error(ied_answer_t *a, int cls, int code)
{
    memset(a, 0, sizeof *a);
    a->kind = IED_ERROR;
    a->err_class = cls;
    a->err_code = code;
}

static void resp(ied_answer_t *a, int svc)
{
    memset(a, 0, sizeof *a);
    a->kind = IED_RESP;
    a->service = svc;
    a->constructed = true;
}

/* An Identifier (VisibleString, ISO 9506-2 7.5.2: letters, digits, '_' and '$'). */
static int ident(const mms_tlv_t *t, const char **p, size_t *n)
{
    if (t->constructed || t->len < 1 || t->len > MAX_IDENT)
        return GS_EPROTO;
    for (size_t i = 0; i < t->len; i++) {
        uint8_t c = t->val[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$'))
            return GS_EPROTO;
    }
    *p = (const char *)t->val;
    *n = t->len;
    return 0;
}

/* ObjectName CHOICE element t. */
static int objname(const mms_ber_reader_t *r, const mms_tlv_t *t, objname_t *o)
{
    memset(o, 0, sizeof *o);
    if (t->cls != MMS_BER_CONTEXT)
        return GS_EPROTO;
    if (t->tag == 0 || t->tag == 2) {
        o->scope = (int)t->tag;
        if (t->tag == 2)
            o->scope = 2;
        return ident(t, &o->item, &o->item_len);
    }
    if (t->tag != 1 || !t->constructed)
        return GS_EPROTO;
    mms_ber_reader_t c;
    mms_tlv_t d, i, x;
    if (mms_ber_enter(r, t, &c) < 0 || mms_ber_expect(&c, UNIV, false, 26, &d) < 0 ||
        mms_ber_expect(&c, UNIV, false, 26, &i) < 0 || mms_ber_next(&c, &x) != 0)
        return GS_EPROTO;
    o->scope = 1;
    if (ident(&d, &o->dom, &o->dom_len) < 0 || ident(&i, &o->item, &o->item_len) < 0)
        return GS_EPROTO;
    return 0;
}

/* ---- Encoders ---------------------------------------------------------------------------------
 */

static void enc_typespec(mms_ber_writer_t *w, const mnode_t *n)
{
    size_t mk = mms_bw_mark(w);
    switch (n->bt) {
    case BT_STRUCT:
        for (int i = n->nk - 1; i >= 0; i--) {
            size_t c = mms_bw_mark(w);
            size_t ct = mms_bw_mark(w);
            enc_typespec(w, &n->kids[i]);
            mms_bw_wrap(w, CTXC, 1, ct);
            mms_bw_octets(w, CTX, 0, n->kids[i].name, strlen(n->kids[i].name));
            mms_bw_wrap(w, UNIV | MMS_BER_CONSTRUCTED, 16, c);
        }
        mms_bw_wrap(w, CTXC, 1, mk);
        mms_bw_wrap(w, CTXC, 2, mk);
        break;
    case BT_BOOL:
        mms_bw_null(w, CTX, 3);
        break;
    case BT_BITS:
        mms_bw_int(w, CTX, 4, n->size);
        break;
    case BT_INT:
        mms_bw_int(w, CTX, 5, n->size);
        break;
    case BT_UINT:
        mms_bw_int(w, CTX, 6, n->size);
        break;
    case BT_FLOAT:
        mms_bw_int(w, UNIV, 2, 8);  /* exponent-width */
        mms_bw_int(w, UNIV, 2, 32); /* format-width */
        mms_bw_wrap(w, CTXC, 7, mk);
        break;
    case BT_UTC:
        mms_bw_null(w, CTX, 17);
        break;
    case BT_VSTR:
        mms_bw_int(w, CTX, 10, n->size);
        break;
    case BT_OCTETS:
        mms_bw_int(w, CTX, 9, n->size);
        break;
    case BT_BINTIME:
        mms_bw_bool(w, CTX, 12, true);
        break;       /* with the date */
    case BT_ARRAY: { /* array [1] { numberOfElements [1], elementType [2] } */
        size_t et = mms_bw_mark(w);
        enc_typespec(w, &n->kids[0]);
        mms_bw_wrap(w, CTXC, 2, et);
        mms_bw_uint(w, CTX, 1, (uint64_t)n->size);
        mms_bw_wrap(w, CTXC, 1, mk);
        break;
    }
    default:
        w->err = GS_EINVAL;
        break;
    }
}

static const char *str_of(const ied_t *m, const ld_t *ld, int role)
{
    switch (role) {
    case R_S_VENDOR:
        return m->o.vendor;
    case R_S_SWREV:
        return m->o.revision;
    case R_S_D:
        return ld->term.name[0] ? ld->term.name : ld->id;
    case R_S_CONFREV:
        return "1";
    case R_S_LDNS:
        return "IEC 61850-7-4:2007B";
    case R_S_PVENDOR:
        return "";
    case R_S_HWREV:
        return "";
    case R_S_PSWREV:
        return "";
    case R_S_SERNUM:
        return ld->id;
    case R_S_MODEL:
        return "GSTP terminal";
    default:
        return "";
    }
}

/* 8-1 8.1.3.7: seconds and a 24-bit binary fraction. */
static void utc_of(int64_t ns, uint8_t tq, mms_utctime_t *u)
{
    if (ns < 0)
        ns = 0;
    u->secs = (uint32_t)(ns / 1000000000);
    u->frac = (uint32_t)(((uint64_t)(ns % 1000000000) << 24) / 1000000000u);
    u->quality = tq;
}

/* Data of node n; `off` is added to the point of every leaf (element i of an array: i). */
void ied_enc_data(mms_ber_writer_t *w, const ied_t *m, const ld_t *ld, const mnode_t *n, int off)
{
    if (n->role >= R_RCB_FIRST) {
        ied_rcb_enc_attr(w, ld, n);
        return;
    }
    int pi = n->point >= 0 ? n->point + off : -1;
    const point_t *p = pi >= 0 && pi < P_N ? &ld->pts[pi] : NULL;
    switch (n->bt) {
    case BT_STRUCT: {
        size_t mk = mms_bw_mark(w);
        for (int i = n->nk - 1; i >= 0; i--)
            ied_enc_data(w, m, ld, &n->kids[i], off);
        mms_bw_wrap(w, CTXC, 2, mk);
        return;
    }
    case BT_ARRAY: {
        size_t mk = mms_bw_mark(w);
        for (int i = n->size - 1; i >= 0; i--)
            ied_enc_data(w, m, ld, &n->kids[0], off + i);
        mms_bw_wrap(w, CTXC, 1, mk);
        return;
    }
    case BT_FLOAT: {
        double v = 0;
        if (p && (n->role == R_MAG || n->role == R_SETMAG))
            v = p->mag;
        else if (p && n->role == R_ANG)
            v = p->ang;
        mms_bw_float(w, CTX, 7, v, false);
        return;
    }
    case BT_BITS: {
        uint16_t q = p ? ied_point_q(ld, pi) : 0;
        uint8_t b[2] = {(uint8_t)(q >> 8), (uint8_t)q};
        mms_bw_bits(w, CTX, 4, b, 13);
        return;
    }
    case BT_UTC: {
        mms_utctime_t u = {0, 0, MMS_TQ_NOT_SYNCED | 31};
        if (p && p->t_ns > 0)
            utc_of(p->t_ns, p->tq, &u);
        mms_bw_utctime(w, CTX, 17, &u);
        return;
    }
    case BT_INT: {
        int64_t v = 0;
        if (n->role == R_STVAL && p)
            v = p->ival;
        else if (n->role == R_UNIT_SI && n->dd)
            v = n->dd->si;
        else if (n->role == R_UNIT_MULT && n->dd)
            v = n->dd->mult;
        mms_bw_int(w, CTX, 5, v); /* R_ZERO: ctlModel 0 status-only, seqT 0 */
        return;
    }
    case BT_UINT:
        mms_bw_uint(w, CTX, 6, n->role == R_NUMHAR ? IED_NHARM - 1 : p ? (uint64_t)p->ival : 0);
        return;
    case BT_BOOL:
        mms_bw_bool(w, CTX, 3, p && p->ival != 0);
        return;
    case BT_VSTR: {
        const char *s = str_of(m, ld, n->role);
        mms_bw_octets(w, CTX, 10, s, strlen(s));
        return;
    }
    default:
        w->err = GS_EINVAL;
        return;
    }
}

/* ---- Identify, Status -------------------------------------------------------------------------
 */

static int svc_identify(ied_client_t *c, bool cons, size_t len, mms_ber_writer_t *w,
                        ied_answer_t *a)
{
    if (cons || len != 0) {
        reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
        return 0;
    }
    const ied_opts_t *o = &c->m->o;
    mms_bw_octets(w, CTX, 2, o->revision, strlen(o->revision));
    mms_bw_octets(w, CTX, 1, o->model, strlen(o->model));
    mms_bw_octets(w, CTX, 0, o->vendor, strlen(o->vendor));
    resp(a, MMS_SVC_IDENTIFY);
    return 0;
}

static int svc_status(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                      mms_ber_writer_t *w, ied_answer_t *a)
{
    /* Status-Request ::= BOOLEAN (extendedDerivation): one octet */
    if (cons || len != 1) {
        reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
        return 0;
    }
    (void)c;
    (void)body;
    mms_bw_int(w, CTX, 1, 0); /* vmdPhysicalStatus: operational */
    mms_bw_int(w, CTX, 0, 0); /* vmdLogicalStatus: state-changes-allowed */
    resp(a, MMS_SVC_STATUS);
    return 0;
}

/* ---- GetNameList ------------------------------------------------------------------------------
 */

/* Writes names[first..] that fit into the PDU, with moreFollows. */
static void name_page(ied_client_t *c, char *const *names, size_t n, const char *after,
                      size_t after_len, mms_ber_writer_t *w)
{
    size_t first = 0;
    if (after) {
        char key[MAX_IDENT + 1];
        memcpy(key, after, after_len);
        key[after_len] = 0;
        size_t lo = 0, hi = n;
        while (lo < hi) { /* first name strictly after `key` */
            size_t mid = (lo + hi) / 2;
            if (ied_name_cmp(names[mid], key) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        first = lo;
    }
    size_t budget = c->max_pdu > ENVELOPE + 8 ? c->max_pdu - ENVELOPE - 8 : 0;
    size_t used = 0, last = first;
    while (last < n) {
        size_t l = strlen(names[last]);
        size_t el = 1 + (l < 128 ? 1 : 2) + l;
        if (used + el > budget)
            break;
        used += el;
        last++;
    }
    mms_bw_bool(w, CTX, 1, last < n); /* moreFollows (DEFAULT TRUE: always written) */
    size_t mk = mms_bw_mark(w);
    for (size_t i = last; i > first; i--)
        mms_bw_octets(w, UNIV, 26, names[i - 1], strlen(names[i - 1]));
    mms_bw_wrap(w, CTXC, 0, mk);
}

static int svc_get_name_list(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                             mms_ber_writer_t *w, ied_answer_t *a)
{
    mms_ber_reader_t r, cr;
    mms_tlv_t t, x;
    int64_t oclass = -1;
    int scope = -1;
    const char *dom = NULL, *after = NULL;
    size_t dom_len = 0, after_len = 0;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    /* objectClass [0] ObjectClass: basicObjectClass [0] IMPLICIT INTEGER */
    if (mms_ber_expect(&r, CTX, true, 0, &t) < 0 || mms_ber_enter(&r, &t, &cr) < 0 ||
        mms_ber_next(&cr, &x) != 1)
        goto bad;
    if (mms_tlv_is(&x, CTX, false, 0)) {
        if (mms_ber_get_int(&x, &oclass) < 0)
            goto bad;
    } else if (!mms_tlv_is(&x, CTX, false, 1) && !mms_tlv_is(&x, CTX, true, 1)) {
        goto bad;
    }
    if (mms_ber_next(&cr, &x) != 0)
        goto bad;
    /* objectScope [1] */
    if (mms_ber_expect(&r, CTX, true, 1, &t) < 0 || mms_ber_enter(&r, &t, &cr) < 0 ||
        mms_ber_next(&cr, &x) != 1 || x.cls != MMS_BER_CONTEXT || x.tag > 2 || x.constructed)
        goto bad;
    scope = (int)x.tag;
    if (scope == 1) {
        if (ident(&x, &dom, &dom_len) < 0)
            goto bad;
    } else if (mms_ber_get_null(&x) < 0) {
        goto bad;
    }
    if (mms_ber_next(&cr, &x) != 0)
        goto bad;
    int rc = mms_ber_next(&r, &t);
    if (rc < 0)
        goto bad;
    if (rc == 1) {
        if (!mms_tlv_is(&t, CTX, false, 2) || ident(&t, &after, &after_len) < 0)
            goto bad;
        if (mms_ber_next(&r, &t) != 0)
            goto bad;
    }
    resp(a, MMS_SVC_GET_NAME_LIST);
    ied_t *m = c->m;
    if (oclass == OC_DOMAIN && scope == 0) {
        /* the LD list is sorted like the names: page over a temporary array of its names */
        char **nm = malloc((m->nld ? m->nld : 1) * sizeof *nm);
        if (!nm)
            return GS_ENOMEM;
        for (size_t i = 0; i < m->nld; i++)
            nm[i] = m->lds[i]->dom;
        name_page(c, nm, m->nld, after, after_len, w);
        free(nm);
    } else if (oclass == OC_NAMED_VARIABLE && scope == 1) {
        if (!ied_ld_find(m, dom, dom_len)) {
            error(a, EC_DEFINITION, DEF_OBJECT_UNDEFINED);
            return 0;
        }
        name_page(c, m->names, m->nnames, after, after_len, w);
    } else if (oclass == OC_NVL && scope == 1) {
        if (!ied_ld_find(m, dom, dom_len)) {
            error(a, EC_DEFINITION, DEF_OBJECT_UNDEFINED);
            return 0;
        }
        ld_t *nld = ied_ld_find(m, dom, dom_len);
        char nb[IED_NDS][64], *nm[IED_NDS + IED_NVL_MAX];
        int cnt = 0;
        for (int i = 0; i < IED_NDS; i++) {
            snprintf(nb[i], sizeof nb[i], "LLN0$%s", ied_ds[i].name);
            nm[cnt++] = nb[i];
        }
        for (int i = 0; i < nld->ndyn; i++)
            nm[cnt++] = nld->dyn[i].name;
        for (int i = 1; i < cnt; i++) /* sorted (a few names) */
            for (int j = i; j > 0 && ied_name_cmp(nm[j - 1], nm[j]) > 0; j--) {
                char *tmp = nm[j];
                nm[j] = nm[j - 1];
                nm[j - 1] = tmp;
            }
        name_page(c, nm, (size_t)cnt, after, after_len, w);
    } else if (oclass == OC_NVL && scope == 2) {
        char *nm[IED_NVL_MAX];
        for (int i = 0; i < c->naa; i++)
            nm[i] = c->aa[i].name;
        for (int i = 1; i < c->naa; i++)
            for (int j = i; j > 0 && ied_name_cmp(nm[j - 1], nm[j]) > 0; j--) {
                char *tmp = nm[j];
                nm[j] = nm[j - 1];
                nm[j - 1] = tmp;
            }
        name_page(c, nm, (size_t)c->naa, after, after_len, w);
    } else {
        if (scope == 1 && !ied_ld_find(m, dom, dom_len)) {
            error(a, EC_DEFINITION, DEF_OBJECT_UNDEFINED);
            return 0;
        }
        /* association-specific lists, journals, other classes and scopes: none */
        name_page(c, NULL, 0, NULL, 0, w);
    }
    return 0;
bad:
    reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
    return 0;
}

/* ---- GetVariableAccessAttributes ------------------------------------------------------------- */

static int svc_get_vaa(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                       mms_ber_writer_t *w, ied_answer_t *a)
{
    mms_ber_reader_t r, cr;
    mms_tlv_t t, x;
    objname_t on;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_next(&r, &t) != 1 || mms_ber_next(&r, &x) != 0)
        goto bad;
    if (mms_tlv_is(&t, CTX, true, 1)) { /* address: we have no addressed variables */
        error(a, EC_ACCESS, ACC_OBJECT_NON_EXISTENT);
        return 0;
    }
    if (!mms_tlv_is(&t, CTX, true, 0) || mms_ber_enter(&r, &t, &cr) < 0 ||
        mms_ber_next(&cr, &x) != 1 || objname(&cr, &x, &on) < 0 || mms_ber_next(&cr, &x) != 0)
        goto bad;
    const mnode_t *n = NULL;
    if (on.scope == 1 && ied_ld_find(c->m, on.dom, on.dom_len))
        n = ied_node_find(c->m, on.item, on.item_len);
    if (!n) {
        error(a, EC_ACCESS, ACC_OBJECT_NON_EXISTENT);
        return 0;
    }
    size_t start = mms_bw_len(w);
    size_t mk = mms_bw_mark(w);
    enc_typespec(w, n);
    mms_bw_wrap(w, CTXC, 2, mk);
    mms_bw_bool(w, CTX, 0, false); /* mmsDeletable */
    if (w->err == GS_ELIMIT || mms_bw_len(w) - start + ENVELOPE > c->max_pdu) {
        w->pos = w->cap - start;
        w->err = 0;
        error(a, EC_RESOURCE, RES_CAPABILITY_UNAVAILABLE);
        return 0;
    }
    resp(a, MMS_SVC_GET_VAR_ACCESS_ATTR);
    return w->err;
bad:
    reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
    return 0;
}

/* ---- Named variable lists -------------------------------------------------------------------- */

enum { DEF_OBJECT_EXISTS = 2 };

static nvl_t *dyn_find(nvl_t *l, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(l[i].name) == len && !memcmp(l[i].name, name, len))
            return &l[i];
    return NULL;
}

/* The list named on: a static dataset (*ds >= 0, in *ld) or a dynamic list (*dl). 0, or -1 if
 * there is none. */
static int list_find(ied_client_t *c, const objname_t *on, const ld_t **ld, int *ds, nvl_t **dl)
{
    *ld = NULL;
    *ds = -1;
    *dl = NULL;
    if (on->scope == 2) {
        *dl = dyn_find(c->aa, c->naa, on->item, on->item_len);
        return *dl ? 0 : -1;
    }
    if (on->scope != 1 || !(*ld = ied_ld_find(c->m, on->dom, on->dom_len)))
        return -1;
    *ds = ied_ds_find(on->item, on->item_len);
    if (*ds >= 0)
        return 0;
    *dl = dyn_find(((ld_t *)*ld)->dyn, (*ld)->ndyn, on->item, on->item_len);
    return *dl ? 0 : -1;
}

static void free_list(nvl_t *l)
{
    free(l->m);
    memset(l, 0, sizeof *l);
}

/* Removes entry i of l[0..*n) keeping the order. */
static void list_remove(nvl_t *l, int *n, int i)
{
    free_list(&l[i]);
    memmove(&l[i], &l[i + 1], (size_t)(*n - i - 1) * sizeof *l);
    (*n)--;
    memset(&l[*n], 0, sizeof *l);
}

/* ---- Read, Write ------------------------------------------------------------------------------
 */

typedef struct {
    objname_t on;
    bool alt; /* alternateAccess given */
} varspec_t;

/* VariableAccessSpecification element t: listOfVariable [0] (-> *out, *n) or variableListName
 * [1] (*is_list). Returns 0 or GS_EPROTO. *out is malloc'ed. */
static int var_access_spec(const mms_ber_reader_t *r, const mms_tlv_t *t, varspec_t **out,
                           size_t *n, bool *is_list, objname_t *list)
{
    mms_ber_reader_t lr, sr, vr;
    mms_tlv_t s, v, x;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    *is_list = false;
    if (mms_tlv_is(t, CTX, true, 1)) {
        if (mms_ber_enter(r, t, &lr) < 0 || mms_ber_next(&lr, &x) != 1 ||
            objname(&lr, &x, list) < 0 || mms_ber_next(&lr, &x) != 0)
            return GS_EPROTO;
        *is_list = true;
        return 0;
    }
    if (!mms_tlv_is(t, CTX, true, 0) || mms_ber_enter(r, t, &lr) < 0)
        return GS_EPROTO;
    int rc;
    while ((rc = mms_ber_next(&lr, &s)) == 1) {
        if (!mms_tlv_is(&s, UNIV, true, 16) || mms_ber_enter(&lr, &s, &sr) < 0)
            goto bad;
        /* variableSpecification: name [0] ObjectName (others: not ours) */
        if (mms_ber_next(&sr, &v) != 1 || !mms_tlv_is(&v, CTX, true, 0) ||
            mms_ber_enter(&sr, &v, &vr) < 0 || mms_ber_next(&vr, &x) != 1)
            goto bad;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            varspec_t *nv = realloc(*out, nc * sizeof *nv);
            if (!nv) {
                free(*out);
                *out = NULL;
                return GS_ENOMEM;
            }
            *out = nv;
            cap = nc;
        }
        varspec_t *vs = &(*out)[*n];
        memset(vs, 0, sizeof *vs);
        if (objname(&vr, &x, &vs->on) < 0 || mms_ber_next(&vr, &x) != 0)
            goto bad;
        rc = mms_ber_next(&sr, &x);
        if (rc == 1) {
            if (!mms_tlv_is(&x, CTX, true, 5) || mms_ber_next(&sr, &x) != 0)
                goto bad;
            vs->alt = true;
        } else if (rc < 0) {
            goto bad;
        }
        (*n)++;
    }
    if (rc < 0 || *n == 0)
        goto bad;
    return 0;
bad:
    free(*out);
    *out = NULL;
    *n = 0;
    return GS_EPROTO;
}

static const mnode_t *resolve(ied_client_t *c, const objname_t *on, const ld_t **ld)
{
    *ld = NULL;
    if (on->scope != 1)
        return NULL;
    *ld = ied_ld_find(c->m, on->dom, on->dom_len);
    if (!*ld)
        return NULL;
    return ied_node_find(c->m, on->item, on->item_len);
}

static int svc_read(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                    mms_ber_writer_t *w, ied_answer_t *a)
{
    mms_ber_reader_t r, cr;
    mms_tlv_t t, spec, x;
    bool with_spec = false, is_list;
    varspec_t *vs = NULL;
    size_t n = 0;
    objname_t list;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_next(&r, &t) != 1)
        goto bad;
    if (mms_tlv_is(&t, CTX, false, 0)) {
        if (mms_ber_get_bool(&t, &with_spec) < 0 || mms_ber_next(&r, &t) != 1)
            goto bad;
    }
    if (!mms_tlv_is(&t, CTX, true, 1) || mms_ber_enter(&r, &t, &cr) < 0 ||
        mms_ber_next(&cr, &spec) != 1 || mms_ber_next(&cr, &x) != 0 || mms_ber_next(&r, &x) != 0)
        goto bad;
    int rc = var_access_spec(&cr, &spec, &vs, &n, &is_list, &list);
    if (rc == GS_ENOMEM)
        return rc;
    if (rc < 0)
        goto bad;
    const ld_t *lld = NULL;
    int ds = -1;
    nvl_t *dl = NULL;
    if (is_list && list_find(c, &list, &lld, &ds, &dl) < 0) {
        error(a, EC_ACCESS, ACC_OBJECT_NON_EXISTENT);
        return 0;
    }
    size_t start = mms_bw_len(w);
    size_t mk = mms_bw_mark(w);
    for (int i = ds >= 0 ? ied_ds[ds].n : 0; i > 0; i--) { /* a static dataset of LLN0 */
        const char *it = ied_ds[ds].members[i - 1];
        const mnode_t *node = ied_node_find(c->m, it, strlen(it));
        if (node)
            ied_enc_data(w, c->m, lld, node, 0);
        else
            mms_bw_int(w, CTX, 0, DAE_NON_EXISTENT);
    }
    for (int i = dl ? dl->n : 0; i > 0; i--) { /* a dynamic list: members resolved now */
        const nvl_ref_t *ref = &dl->m[i - 1];
        const ld_t *mld = ied_ld_find(c->m, ref->dom, strlen(ref->dom));
        const mnode_t *node = mld ? ied_node_find(c->m, ref->item, strlen(ref->item)) : NULL;
        if (node)
            ied_enc_data(w, c->m, mld, node, 0);
        else
            mms_bw_int(w, CTX, 0, DAE_NON_EXISTENT);
    }
    for (size_t i = n; i > 0; i--) {
        const ld_t *ld;
        const mnode_t *node = resolve(c, &vs[i - 1].on, &ld);
        if (!node)
            mms_bw_int(w, CTX, 0, DAE_NON_EXISTENT);
        else if (vs[i - 1].alt)
            mms_bw_int(w, CTX, 0, DAE_ACCESS_UNSUPPORTED);
        else
            ied_enc_data(w, c->m, ld, node, 0);
    }
    mms_bw_wrap(w, CTXC, 1, mk);
    if (with_spec) { /* variableAccessSpecification [0], as the request gave it */
        size_t m2 = mms_bw_mark(w);
        mms_bw_raw(w, spec.raw, (size_t)(spec.val + spec.len - spec.raw));
        mms_bw_wrap(w, CTXC, 0, m2);
    }
    free(vs);
    if (w->err == GS_ELIMIT || mms_bw_len(w) - start + ENVELOPE > c->max_pdu) {
        w->pos = w->cap - start;
        w->err = 0;
        error(a, EC_RESOURCE, RES_CAPABILITY_UNAVAILABLE);
        return 0;
    }
    resp(a, MMS_SVC_READ);
    return w->err;
bad:
    free(vs);
    reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
    return 0;
}

static int svc_write(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                     mms_ber_writer_t *w, ied_answer_t *a)
{
    mms_ber_reader_t r, dr;
    mms_tlv_t spec, t, x;
    bool is_list;
    varspec_t *vs = NULL;
    size_t n = 0, nd = 0;
    objname_t list;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_next(&r, &spec) != 1)
        goto bad;
    int rc = var_access_spec(&r, &spec, &vs, &n, &is_list, &list);
    if (rc == GS_ENOMEM)
        return rc;
    if (rc < 0)
        goto bad;
    /* listOfData [0]: one Data per variable, each a well-formed element */
    if (mms_ber_expect(&r, CTX, true, 0, &t) < 0 || mms_ber_enter(&r, &t, &dr) < 0 ||
        mms_ber_next(&r, &x) != 0)
        goto bad;
    while ((rc = mms_ber_next(&dr, &x)) == 1) {
        if (x.cls != MMS_BER_CONTEXT || mms_ber_check_tree(&dr, &x) < 0)
            goto bad;
        nd++;
    }
    if (rc < 0)
        goto bad;
    if (is_list) {
        error(a, EC_ACCESS, ACC_OBJECT_NON_EXISTENT);
        free(vs);
        return 0;
    }
    if (nd != n)
        goto bad;
    /* Only report control block attributes are writable: any other existing variable is
     * object-access-denied, an unknown one object-non-existent. Data are applied in order. */
    int *res = malloc((n ? n : 1) * sizeof *res);
    if (!res) {
        free(vs);
        return GS_ENOMEM;
    }
    mms_ber_enter(&r, &t, &dr); /* succeeded above */
    for (size_t i = 0; i < n; i++) {
        const ld_t *cld;
        const mnode_t *node = resolve(c, &vs[i].on, &cld);
        mms_ber_next(&dr, &x); /* checked above */
        if (!node)
            res[i] = DAE_NON_EXISTENT;
        else if (node->role >= R_RCB_FIRST && !vs[i].alt)
            res[i] = ied_rcb_write(c, (ld_t *)cld, node, &x);
        else
            res[i] = DAE_ACCESS_DENIED;
    }
    for (size_t i = n; i > 0; i--) {
        if (res[i - 1] < 0)
            mms_bw_null(w, CTX, 1); /* success */
        else
            mms_bw_int(w, CTX, 0, res[i - 1]);
    }
    free(res);
    free(vs);
    resp(a, MMS_SVC_WRITE);
    return w->err;
bad:
    free(vs);
    reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
    return 0;
}

/* ---- DefineNamedVariableList, DeleteNamedVariableList ------------------------------------------
 */

static int svc_define_nvl(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                          mms_ber_writer_t *w, ied_answer_t *a)
{
    /* SEQUENCE { variableListName ObjectName, listOfVariable [0] IMPLICIT SEQUENCE OF ... } */
    mms_ber_reader_t r;
    mms_tlv_t t, lv, x;
    objname_t on;
    varspec_t *vs = NULL;
    size_t n = 0;
    bool is_list;
    objname_t dummy;
    (void)w;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_next(&r, &t) != 1 || objname(&r, &t, &on) < 0 || on.scope == 0)
        goto bad;
    if (mms_ber_next(&r, &lv) != 1 || !mms_tlv_is(&lv, CTX, true, 0) || mms_ber_next(&r, &x) != 0)
        goto bad;
    /* the list has the form of a listOfVariable: reuse its decoder */
    int rc = var_access_spec(&r, &lv, &vs, &n, &is_list, &dummy);
    if (rc == GS_ENOMEM)
        return rc;
    if (rc < 0)
        goto bad;
    ld_t *ld = NULL;
    nvl_t *lists;
    int *cnt;
    if (on.scope == 1) {
        ld = ied_ld_find(c->m, on.dom, on.dom_len);
        if (!ld) {
            error(a, EC_DEFINITION, DEF_OBJECT_UNDEFINED);
            goto out;
        }
        /* 8-1: a domain-specific list is named LN$name, in an LN of the LD */
        const char *d = memchr(on.item, '$', on.item_len);
        if (!d || !ied_node_find(c->m, on.item, (size_t)(d - on.item)) ||
            memchr(d + 1, '$', on.item_len - (size_t)(d + 1 - on.item))) {
            error(a, EC_DEFINITION, DEF_OBJECT_UNDEFINED);
            goto out;
        }
        if (ied_ds_find(on.item, on.item_len) >= 0 ||
            dyn_find(ld->dyn, ld->ndyn, on.item, on.item_len)) {
            error(a, EC_DEFINITION, DEF_OBJECT_EXISTS);
            goto out;
        }
        lists = ld->dyn;
        cnt = &ld->ndyn;
    } else {
        if (dyn_find(c->aa, c->naa, on.item, on.item_len)) {
            error(a, EC_DEFINITION, DEF_OBJECT_EXISTS);
            goto out;
        }
        lists = c->aa;
        cnt = &c->naa;
    }
    if (*cnt >= IED_NVL_MAX || n > IED_NVL_MEMBERS) {
        error(a, EC_RESOURCE, RES_CAPABILITY_UNAVAILABLE);
        goto out;
    }
    /* every member must exist (and be in the list's own domain for a domain-specific list) */
    for (size_t i = 0; i < n; i++) {
        const ld_t *mld;
        if (vs[i].alt || !resolve(c, &vs[i].on, &mld) || (ld && mld != ld)) {
            error(a, EC_ACCESS, ACC_OBJECT_NON_EXISTENT);
            goto out;
        }
    }
    nvl_t *l = &lists[*cnt];
    memset(l, 0, sizeof *l);
    l->m = calloc(n, sizeof *l->m);
    if (!l->m) {
        free(vs);
        return GS_ENOMEM;
    }
    memcpy(l->name, on.item, on.item_len);
    l->name[on.item_len] = 0;
    l->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        memcpy(l->m[i].dom, vs[i].on.dom, vs[i].on.dom_len);
        memcpy(l->m[i].item, vs[i].on.item, vs[i].on.item_len);
    }
    (*cnt)++;
    resp(a, MMS_SVC_DEFINE_NVL);
    a->constructed = false; /* DefineNamedVariableList-Response ::= NULL */
out:
    free(vs);
    return 0;
bad:
    free(vs);
    reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
    return 0;
}

static int svc_delete_nvl(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                          mms_ber_writer_t *w, ied_answer_t *a)
{
    /* SEQUENCE { scopeOfDelete [0] INTEGER DEFAULT specific(0), listOfVariableListName [1]
     * SEQUENCE OF ObjectName OPTIONAL, domainName [2] Identifier OPTIONAL } */
    mms_ber_reader_t r, lr;
    mms_tlv_t t, names = {0}, x;
    int64_t scope = 0;
    bool has_names = false;
    const char *dom = NULL;
    size_t dom_len = 0;
    uint32_t matched = 0, deleted = 0;
    int rc;
    if (!cons)
        goto bad;
    mms_ber_reader_init(&r, body, len);
    while ((rc = mms_ber_next(&r, &t)) == 1) {
        if (mms_tlv_is(&t, CTX, false, 0) && !has_names && !dom) {
            if (mms_ber_get_int(&t, &scope) < 0 || scope < 0 || scope > 3)
                goto bad;
        } else if (mms_tlv_is(&t, CTX, true, 1) && !has_names && !dom) {
            names = t;
            has_names = true;
        } else if (mms_tlv_is(&t, CTX, false, 2) && !dom) {
            if (ident(&t, &dom, &dom_len) < 0)
                goto bad;
        } else {
            goto bad;
        }
    }
    if (rc < 0)
        goto bad;
    if (scope == 0 && has_names) {
        if (mms_ber_enter(&r, &names, &lr) < 0)
            goto bad;
        while ((rc = mms_ber_next(&lr, &x)) == 1) {
            objname_t on;
            if (objname(&lr, &x, &on) < 0)
                goto bad;
            const ld_t *ld;
            int ds;
            nvl_t *dl;
            if (list_find(c, &on, &ld, &ds, &dl) < 0)
                continue;
            matched++;
            if (!dl)
                continue; /* a static dataset: not deletable */
            if (on.scope == 2)
                list_remove(c->aa, &c->naa, (int)(dl - c->aa));
            else
                list_remove(((ld_t *)ld)->dyn, &((ld_t *)ld)->ndyn, (int)(dl - ld->dyn));
            deleted++;
        }
        if (rc < 0)
            goto bad;
    } else if (scope == 1) { /* aa-specific: all of this association's lists */
        matched = deleted = (uint32_t)c->naa;
        while (c->naa)
            list_remove(c->aa, &c->naa, c->naa - 1);
    } else if (scope == 2) { /* domain: its dynamic lists (the static ones stay) */
        ld_t *ld = dom ? ied_ld_find(c->m, dom, dom_len) : NULL;
        if (!ld) {
            error(a, EC_DEFINITION, DEF_OBJECT_UNDEFINED);
            return 0;
        }
        matched = (uint32_t)(ld->ndyn + IED_NDS);
        deleted = (uint32_t)ld->ndyn;
        while (ld->ndyn)
            list_remove(ld->dyn, &ld->ndyn, ld->ndyn - 1);
    } else if (scope == 3) { /* vmd: every deletable list this association may delete */
        matched = deleted = (uint32_t)c->naa;
        while (c->naa)
            list_remove(c->aa, &c->naa, c->naa - 1);
        for (size_t i = 0; i < c->m->nld; i++) {
            ld_t *ld = c->m->lds[i];
            matched += (uint32_t)(ld->ndyn + IED_NDS);
            deleted += (uint32_t)ld->ndyn;
            while (ld->ndyn)
                list_remove(ld->dyn, &ld->ndyn, ld->ndyn - 1);
        }
    }
    mms_bw_uint(w, CTX, 1, deleted);
    mms_bw_uint(w, CTX, 0, matched);
    resp(a, MMS_SVC_DELETE_NVL);
    return w->err;
bad:
    reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
    return 0;
}

/* ---- GetNamedVariableListAttributes ---------------------------------------------------------- */

static int svc_get_nvl_attr(ied_client_t *c, bool cons, const uint8_t *body, size_t len,
                            mms_ber_writer_t *w, ied_answer_t *a)
{
    /* GetNamedVariableListAttributes-Request ::= ObjectName */
    mms_ber_reader_t r;
    mms_tlv_t t, x;
    objname_t on;
    mms_ber_reader_init(&r, body, len);
    if (!cons || mms_ber_next(&r, &t) != 1 || mms_ber_next(&r, &x) != 0 ||
        objname(&r, &t, &on) < 0) {
        reject(a, MMS_REJ_REQ_INVALID_ARGUMENT);
        return 0;
    }
    const ld_t *ld;
    int ds;
    nvl_t *dl;
    if (list_find(c, &on, &ld, &ds, &dl) < 0) {
        error(a, EC_ACCESS, ACC_OBJECT_NON_EXISTENT);
        return 0;
    }
    size_t mk = mms_bw_mark(w);
    int nm = ds >= 0 ? ied_ds[ds].n : dl->n;
    for (int i = nm - 1; i >= 0; i--) {
        const char *it = ds >= 0 ? ied_ds[ds].members[i] : dl->m[i].item;
        const char *dom = ds >= 0 ? ld->dom : dl->m[i].dom;
        size_t m1 = mms_bw_mark(w);
        mms_bw_octets(w, MMS_BER_UNIVERSAL, 26, it, strlen(it));
        mms_bw_octets(w, MMS_BER_UNIVERSAL, 26, dom, strlen(dom));
        mms_bw_wrap(w, CTXC, 1, m1); /* domain-specific */
        mms_bw_wrap(w, CTXC, 0, m1); /* variableSpecification name */
        mms_bw_wrap(w, MMS_BER_UNIVERSAL | MMS_BER_CONSTRUCTED, 16, m1);
    }
    mms_bw_wrap(w, CTXC, 1, mk);        /* listOfVariable */
    mms_bw_bool(w, CTX, 0, dl != NULL); /* mmsDeletable: the dynamic lists */
    resp(a, MMS_SVC_GET_NVL_ATTR);
    return w->err;
}

/* ---- Dispatch -----------------------------------------------------------------------------------
 */

int ied_client_new(ied_t *m, uint32_t max_pdu, ied_client_t **out)
{
    *out = NULL;
    if (!m || max_pdu < 64)
        return GS_EINVAL;
    ied_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return GS_ENOMEM;
    c->m = m;
    c->max_pdu = max_pdu;
    if (m->nclients == m->cap_cl) {
        size_t nc = m->cap_cl ? m->cap_cl * 2 : 16;
        ied_client_t **n2 = realloc(m->cl, nc * sizeof *n2);
        if (!n2) {
            free(c);
            return GS_ENOMEM;
        }
        m->cl = n2;
        m->cap_cl = nc;
    }
    m->cl[m->nclients++] = c;
    *out = c;
    return 0;
}

void ied_client_free(ied_client_t *c)
{
    if (!c)
        return;
    ied_rcb_release(c->m, c);
    ied_file_close_all(c);
    for (int i = 0; i < c->naa; i++) /* its association-specific lists */
        free(c->aa[i].m);
    ied_t *m = c->m;
    for (size_t i = 0; i < m->nclients; i++)
        if (m->cl[i] == c) {
            m->cl[i] = m->cl[--m->nclients];
            break;
        }
    free(c->en);
    free(c);
}

int ied_confirmed(ied_client_t *c, int service, bool constructed, const uint8_t *body, size_t len,
                  mms_ber_writer_t *w, ied_answer_t *a)
{
    if (!c || !w || !a || (len && !body))
        return GS_EINVAL;
    size_t start_pos = w->pos;
    int rc;
    switch (service) {
    case MMS_SVC_IDENTIFY:
        rc = svc_identify(c, constructed, len, w, a);
        break;
    case MMS_SVC_STATUS:
        rc = svc_status(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_GET_NAME_LIST:
        rc = svc_get_name_list(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_GET_VAR_ACCESS_ATTR:
        rc = svc_get_vaa(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_READ:
        rc = svc_read(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_WRITE:
        rc = svc_write(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_GET_NVL_ATTR:
        rc = svc_get_nvl_attr(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_DEFINE_NVL:
        rc = svc_define_nvl(c, constructed, body, len, w, a);
        break;
    case MMS_SVC_DELETE_NVL:
        rc = svc_delete_nvl(c, constructed, body, len, w, a);
        break;
    default:
        rc = ied_file_service(c, service, constructed, body, len, w, a);
        if (rc == 1) { /* not ours, or no file provider */
            reject(a, MMS_REJ_REQ_UNRECOGNIZED_SERVICE);
            rc = 0;
        }
        break;
    }
    if (rc == 0 && a->kind == IED_RESP && w->cap - w->pos > w->cap - start_pos &&
        (w->cap - w->pos) - (w->cap - start_pos) + ENVELOPE > c->max_pdu) {
        /* any response that would not fit the negotiated PDU (GetNameList pages instead) */
        error(a, EC_RESOURCE, RES_CAPABILITY_UNAVAILABLE);
    }
    if (rc == 0 && a->kind != IED_RESP)
        w->pos = start_pos; /* an error or reject has no contents */
    if (rc == 0 && w->err)
        rc = w->err;
    return rc;
}
