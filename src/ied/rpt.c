/* ied reporting: the static datasets of LLN0 and its report control blocks (IEC 61850-7-2
 * clause 17, mapped by 8-1 clause 17): unbuffered (URCB, FC RP) and buffered (BRCB, FC BR),
 * their attributes as MMS variables (Read, Write), data-change / quality-change detection on
 * every feed, integrity and general interrogation, and the InformationReports (8-1 17.2.3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ied/ied_int.h"

#define CTX  MMS_BER_CONTEXT
#define CTXC (MMS_BER_CONTEXT | MMS_BER_CONSTRUCTED)

/* OptFlds (8-1 17.2.2.x), bit i = 0x8000 >> i */
#define OPT_SEQNUM  0x4000u
#define OPT_TIME    0x2000u
#define OPT_REASON  0x1000u
#define OPT_DATASET 0x0800u
#define OPT_DATAREF 0x0400u
#define OPT_BUFOVFL 0x0200u
#define OPT_ENTRYID 0x0100u
#define OPT_CONFREV 0x0080u
/* TrgOps and ReasonCode, bit i = 0x80 >> i */
#define TRG_DCHG 0x40u
#define TRG_QCHG 0x20u
#define TRG_INTG 0x08u
#define TRG_GI   0x04u

enum {
    DAE_TEMP_UNAVAILABLE = 2,
    DAE_ACCESS_DENIED = 3,
    DAE_TYPE_INCONSISTENT = 7,
    DAE_VALUE_INVALID = 11
};

/* Bounds: an unbuffered RCB keeps at most 16 reports not yet taken; a buffered one 1,000 or
 * 1 MiB (the oldest are dropped, BufOvfl is set in the next report). */
#define URCB_MAX_ENTRIES 16
#define BRCB_MAX_ENTRIES 1000
#define BRCB_MAX_BYTES   (1u << 20)

int ied_ds_find(const char *item, size_t len)
{
    for (int i = 0; i < IED_NDS; i++) {
        size_t l = strlen(ied_ds[i].name);
        if (len == 5 + l && !memcmp(item, "LLN0$", 5) && !memcmp(item + 5, ied_ds[i].name, l))
            return i;
    }
    return -1;
}

static void free_entries(rcb_t *r)
{
    rpt_entry_t *e = r->head;
    while (e) {
        rpt_entry_t *n = e->next;
        free(e);
        e = n;
    }
    r->head = r->tail = r->cursor = NULL;
    r->nent = r->bytes = 0;
}

void ied_rcb_init(ied_t *m, ld_t *ld, int64_t now_ns)
{
    (void)now_ns;
    (void)m;
    for (int i = 0; i < IED_NRCB; i++) {
        rcb_t *r = &ld->rcb[i];
        memset(r, 0, sizeof *r);
        const rcbdef_t *d = &ied_rcbs[i];
        snprintf(r->rptid, sizeof r->rptid, "%s/LLN0$%s$%s", ld->dom, d->buffered ? "BR" : "RP",
                 d->name);
        r->ds = d->ds;
        r->confrev = 1;
        r->optflds = OPT_SEQNUM | OPT_TIME | OPT_REASON | OPT_DATASET | OPT_CONFREV |
                     (d->buffered ? OPT_ENTRYID : 0);
        r->trgops = TRG_DCHG | TRG_QCHG | TRG_INTG | TRG_GI;
    }
}

/* The list of enabled blocks of an association (what its report calls look at). */
static void en_del(ied_client_t *c, const ld_t *ld, int k)
{
    for (size_t i = 0; i < c->nen; i++)
        if (c->en[i].ld == ld && (k < 0 || c->en[i].k == k)) {
            c->en[i] = c->en[--c->nen];
            i--;
        }
}

static int en_add(ied_client_t *c, ld_t *ld, int k)
{
    if (c->nen == c->cap_en) {
        size_t nc = c->cap_en ? c->cap_en * 2 : 8;
        rcbref_t *n2 = realloc(c->en, nc * sizeof *n2);
        if (!n2)
            return GS_ENOMEM;
        c->en = n2;
        c->cap_en = nc;
    }
    c->en[c->nen++] = (rcbref_t){ld, k};
    return 0;
}

void ied_rcb_free_ld(ied_t *m, ld_t *ld)
{
    for (size_t i = 0; i < m->nclients; i++)
        en_del(m->cl[i], ld, -1);
    for (int i = 0; i < IED_NRCB; i++)
        free_entries(&ld->rcb[i]);
}

void ied_rcb_release(ied_t *m, ied_client_t *c)
{
    c->nen = 0;
    for (size_t i = 0; i < m->nld; i++)
        for (int k = 0; k < IED_NRCB; k++) {
            rcb_t *r = &m->lds[i]->rcb[k];
            if (r->owner != c)
                continue;
            r->owner = NULL;
            r->ena = false;
            r->resv = false;
            r->resvtms = 0;
            memset(r->pend, 0, sizeof r->pend);
            if (!ied_rcbs[k].buffered)
                free_entries(r); /* a BRCB keeps its buffer and keeps buffering (7-2 17.2) */
        }
}

/* ---- change detection -------------------------------------------------------------------------
 */

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* Hashes of the values (hv) and qualities (hq) of node n: what data-change and quality-change
 * compare (times alone do not trigger; floats as published, single precision). */
static void hash_node(const ld_t *ld, const mnode_t *n, int off, uint32_t *hv, uint32_t *hq)
{
    int pi = n->point >= 0 ? n->point + off : -1;
    const point_t *p = pi >= 0 && pi < P_N ? &ld->pts[pi] : NULL;
    if (n->bt == BT_STRUCT) {
        for (int i = 0; i < n->nk; i++)
            hash_node(ld, &n->kids[i], off, hv, hq);
        return;
    }
    if (n->bt == BT_ARRAY) {
        for (int i = 0; i < n->size; i++)
            hash_node(ld, &n->kids[0], off + i, hv, hq);
        return;
    }
    if (!p)
        return;
    switch (n->role) {
    case R_Q: {
        uint16_t q = ied_point_q(ld, pi);
        *hq = fnv(*hq, &q, sizeof q);
        break;
    }
    case R_MAG:
    case R_SETMAG: {
        float f = (float)p->mag;
        *hv = fnv(*hv, &f, sizeof f);
        break;
    }
    case R_ANG: {
        float f = (float)p->ang;
        *hv = fnv(*hv, &f, sizeof f);
        break;
    }
    case R_STVAL:
        *hv = fnv(*hv, &p->ival, sizeof p->ival);
        break;
    default:
        break;
    }
}

static const mnode_t *member(const ied_t *m, int ds, int i)
{
    const char *it = ied_ds[ds].members[i];
    return ied_node_find(m, it, strlen(it));
}

/* Makes a report entry of the members with reason[i] != 0 (their values now). */
static void make_entry(const ied_t *m, const ld_t *ld, rcb_t *r, bool buffered,
                       const uint8_t *reason, int64_t now_ns)
{
    static uint8_t buf[65536];
    mms_ber_writer_t w;
    const dsdef_t *d = &ied_ds[r->ds];
    mms_bw_init(&w, buf, sizeof buf);
    for (int i = d->n - 1; i >= 0; i--)
        if (reason[i]) {
            const mnode_t *n = member(m, r->ds, i);
            if (n)
                ied_enc_data(&w, m, ld, n, 0);
        }
    if (w.err)
        return; /* cannot happen with our datasets (a few hundred octets) */
    size_t len = mms_bw_len(&w);
    rpt_entry_t *e = malloc(sizeof *e + len);
    if (!e)
        return; /* out of memory: the report is lost, like a buffer overflow */
    memset(e, 0, sizeof *e);
    e->id = ++r->next_id;
    e->t_ns = now_ns;
    e->ds = r->ds;
    e->confrev = r->confrev;
    memcpy(e->reason, reason, sizeof e->reason);
    e->len = len;
    memcpy(e->data, mms_bw_data(&w), len);
    if (r->tail)
        r->tail->next = e;
    else
        r->head = e;
    r->tail = e;
    if (!r->cursor)
        r->cursor = e;
    r->nent++;
    r->bytes += len;
    size_t maxn = buffered ? BRCB_MAX_ENTRIES : URCB_MAX_ENTRIES;
    while (r->nent > maxn || (buffered && r->bytes > BRCB_MAX_BYTES)) {
        rpt_entry_t *h = r->head;
        if (r->cursor == h)
            r->cursor = h->next;
        r->head = h->next;
        if (!r->head)
            r->tail = NULL;
        r->nent--;
        r->bytes -= h->len;
        free(h);
        r->ovfl = true;
    }
}

/* Pending changes become an entry once the buffer time has passed. */
static void flush(const ied_t *m, const ld_t *ld, rcb_t *r, bool buffered, int64_t now_ns)
{
    int any = 0;
    for (int i = 0; i < IED_DS_MAX; i++)
        any |= r->pend[i];
    if (!any || now_ns < r->pend_since + (int64_t)r->buftm * 1000000)
        return;
    make_entry(m, ld, r, buffered, r->pend, now_ns);
    memset(r->pend, 0, sizeof r->pend);
}

void ied_rcb_changed(ied_t *m, ld_t *ld, int64_t now_ns)
{
    for (int k = 0; k < IED_NRCB; k++) {
        rcb_t *r = &ld->rcb[k];
        bool buffered = ied_rcbs[k].buffered;
        if ((!r->ena && !(buffered && r->ever)) || r->ds < 0)
            continue;
        const dsdef_t *d = &ied_ds[r->ds];
        for (int i = 0; i < d->n; i++) {
            uint32_t hv = 2166136261u, hq = 2166136261u;
            const mnode_t *n = member(m, r->ds, i);
            if (n)
                hash_node(ld, n, 0, &hv, &hq);
            if (r->have_h) {
                uint8_t why =
                    (uint8_t)(((hv != r->hv[i] && (r->trgops & TRG_DCHG)) ? TRG_DCHG : 0) |
                              ((hq != r->hq[i] && (r->trgops & TRG_QCHG)) ? TRG_QCHG : 0));
                if (why) {
                    int any = 0;
                    for (int j = 0; j < IED_DS_MAX; j++)
                        any |= r->pend[j];
                    if (!any)
                        r->pend_since = now_ns;
                    r->pend[i] |= why;
                }
            }
            r->hv[i] = hv;
            r->hq[i] = hq;
        }
        r->have_h = true;
        if (!r->ena) /* a disconnected BRCB buffers on its own */
            flush(m, ld, r, buffered, now_ns);
    }
}

/* ---- attributes -------------------------------------------------------------------------------
 */

/* BinaryTime with date (ISO 9506-2 TimeOfDay, 6 octets): ms since midnight, days since
 * 1984-01-01. */
static void bintime_of(int64_t ns, mms_bintime_t *b)
{
    const int64_t day_ms = 86400000LL, epoch84 = 441763200000LL; /* 1984-01-01 in Unix ms */
    int64_t ms = ns / 1000000 - epoch84;
    if (ms < 0)
        ms = 0;
    b->ms = (uint32_t)(ms % day_ms);
    b->days = (uint16_t)(ms / day_ms);
    b->has_days = true;
}

static void datset_ref(const ld_t *ld, int ds, char *out, size_t cap)
{
    if (ds < 0)
        out[0] = 0;
    else
        snprintf(out, cap, "%s/LLN0$%s", ld->dom, ied_ds[ds].name);
}

void ied_rcb_enc_attr(mms_ber_writer_t *w, const ld_t *ld, const mnode_t *n)
{
    const rcb_t *r = &ld->rcb[n->point];
    char s[200];
    uint8_t b[8];
    switch (n->role) {
    case R_RCB_RPTID:
        mms_bw_octets(w, CTX, 10, r->rptid, strlen(r->rptid));
        break;
    case R_RCB_RPTENA:
        mms_bw_bool(w, CTX, 3, r->ena);
        break;
    case R_RCB_RESV:
        mms_bw_bool(w, CTX, 3, r->resv);
        break;
    case R_RCB_DATSET:
        datset_ref(ld, r->ds, s, sizeof s);
        mms_bw_octets(w, CTX, 10, s, strlen(s));
        break;
    case R_RCB_CONFREV:
        mms_bw_uint(w, CTX, 6, r->confrev);
        break;
    case R_RCB_OPTFLDS:
        b[0] = (uint8_t)(r->optflds >> 8);
        b[1] = (uint8_t)r->optflds;
        mms_bw_bits(w, CTX, 4, b, 10);
        break;
    case R_RCB_BUFTM:
        mms_bw_uint(w, CTX, 6, r->buftm);
        break;
    case R_RCB_SQNUM:
        mms_bw_uint(w, CTX, 6, r->sqnum & (n->size == 8 ? 0xFFu : 0xFFFFu));
        break;
    case R_RCB_TRGOPS:
        b[0] = r->trgops;
        mms_bw_bits(w, CTX, 4, b, 6);
        break;
    case R_RCB_INTGPD:
        mms_bw_uint(w, CTX, 6, r->intgpd);
        break;
    case R_RCB_GI:
        mms_bw_bool(w, CTX, 3, r->gi);
        break;
    case R_RCB_PURGEBUF:
        mms_bw_bool(w, CTX, 3, false);
        break;
    case R_RCB_ENTRYID:
        for (int i = 0; i < 8; i++)
            b[i] = (uint8_t)(r->entry_id >> (56 - 8 * i));
        mms_bw_octets(w, CTX, 9, b, 8);
        break;
    case R_RCB_TIMEOFENTRY: {
        mms_bintime_t bt;
        bintime_of(r->entry_t_ns, &bt);
        mms_bw_bintime(w, CTX, 12, &bt);
        break;
    }
    case R_RCB_RESVTMS:
        mms_bw_int(w, CTX, 5, r->resvtms);
        break;
    default:
        w->err = GS_EINVAL;
        break;
    }
}

/* Sets the hashes of the current values without reporting (on enable). */
static void baseline(const ied_t *m, const ld_t *ld, rcb_t *r)
{
    if (r->ds < 0)
        return;
    for (int i = 0; i < ied_ds[r->ds].n; i++) {
        uint32_t hv = 2166136261u, hq = 2166136261u;
        const mnode_t *n = member(m, r->ds, i);
        if (n)
            hash_node(ld, n, 0, &hv, &hq);
        r->hv[i] = hv;
        r->hq[i] = hq;
    }
    r->have_h = true;
}

int ied_rcb_write(ied_client_t *c, ld_t *ld, const mnode_t *n, const mms_tlv_t *t)
{
    int k = n->point;
    rcb_t *r = &ld->rcb[k];
    bool buffered = ied_rcbs[k].buffered;
    bool bv;
    uint64_t u;
    int64_t iv;
    const uint8_t *bits;
    size_t nbits;
    if (n->role == R_RCB_CONFREV || n->role == R_RCB_SQNUM || n->role == R_RCB_TIMEOFENTRY)
        return DAE_ACCESS_DENIED; /* read-only */
    /* another association's block: 7-2 17.2.2 reservation (URCB Resv, BRCB enabled/ResvTms) */
    if (r->owner && r->owner != c && (r->ena || r->resv || r->resvtms > 0))
        return DAE_TEMP_UNAVAILABLE;
    bool settable_while_enabled =
        n->role == R_RCB_RPTENA || n->role == R_RCB_GI || n->role == R_RCB_RESV;
    if (r->ena && !settable_while_enabled)
        return DAE_TEMP_UNAVAILABLE;
    switch (n->role) {
    case R_RCB_RPTID: {
        char s[130];
        if (!mms_tlv_is(t, CTX, false, 10))
            return DAE_TYPE_INCONSISTENT;
        if (t->len >= sizeof s || mms_ber_get_visible(t, s, sizeof s) < 0)
            return DAE_VALUE_INVALID;
        snprintf(r->rptid, sizeof r->rptid, "%s", s);
        break;
    }
    case R_RCB_RPTENA:
        if (!mms_tlv_is(t, CTX, false, 3) || mms_ber_get_bool(t, &bv) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (bv && !r->ena) {
            if (en_add(c, ld, k) < 0)
                return DAE_TEMP_UNAVAILABLE; /* out of memory */
            r->ena = true;
            r->owner = c;
            if (!buffered)
                r->resv = true;
            if (buffered && !r->ever) {
                r->ever = true;
                r->cursor = r->head;
            }
            memset(r->pend, 0, sizeof r->pend);
            baseline(c->m, ld, r);
            r->next_intg = 0; /* set at the next report call, from its clock */
        } else if (!bv && r->ena) {
            en_del(c, ld, k);
            r->ena = false;
            memset(r->pend, 0, sizeof r->pend);
            if (!buffered)
                free_entries(r);
        }
        break;
    case R_RCB_RESV:
        if (!mms_tlv_is(t, CTX, false, 3) || mms_ber_get_bool(t, &bv) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (bv) {
            r->resv = true;
            r->owner = c;
        } else if (!r->ena) {
            r->resv = false;
            r->owner = NULL;
        }
        return -1;
    case R_RCB_DATSET: {
        char s[200], want[200];
        int ds = -1;
        if (!mms_tlv_is(t, CTX, false, 10))
            return DAE_TYPE_INCONSISTENT;
        if (t->len >= 130 || mms_ber_get_visible(t, s, sizeof s) < 0)
            return DAE_VALUE_INVALID;
        for (int i = 0; s[0] && i < IED_NDS; i++) {
            datset_ref(ld, i, want, sizeof want);
            if (!strcmp(s, want))
                ds = i;
        }
        if (s[0] && ds < 0)
            return DAE_VALUE_INVALID;
        if (ds != r->ds) {
            r->ds = ds;
            r->confrev++; /* 7-2 17.2.2.6: ConfRev counts DatSet changes */
            r->have_h = false;
            memset(r->pend, 0, sizeof r->pend);
        }
        break;
    }
    case R_RCB_OPTFLDS:
        if (!mms_tlv_is(t, CTX, false, 4) || mms_ber_get_bits(t, &bits, &nbits) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (nbits != 10)
            return DAE_VALUE_INVALID;
        r->optflds = (uint16_t)((bits[0] << 8 | bits[1]) & 0x7FC0);
        break;
    case R_RCB_TRGOPS:
        if (!mms_tlv_is(t, CTX, false, 4) || mms_ber_get_bits(t, &bits, &nbits) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (nbits != 6)
            return DAE_VALUE_INVALID;
        r->trgops = (uint8_t)(bits[0] & 0x7C);
        break;
    case R_RCB_BUFTM:
    case R_RCB_INTGPD:
        if (!mms_tlv_is(t, CTX, false, 6) || mms_ber_get_uint(t, &u) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (u > UINT32_MAX)
            return DAE_VALUE_INVALID;
        if (n->role == R_RCB_BUFTM)
            r->buftm = (uint32_t)u;
        else
            r->intgpd = (uint32_t)u;
        break;
    case R_RCB_GI:
        if (!mms_tlv_is(t, CTX, false, 3) || mms_ber_get_bool(t, &bv) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (bv && r->ena)
            r->gi = true; /* the report is made at the next report call */
        break;
    case R_RCB_PURGEBUF:
        if (!mms_tlv_is(t, CTX, false, 3) || mms_ber_get_bool(t, &bv) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (bv) {
            free_entries(r);
            r->ovfl = false;
        }
        break;
    case R_RCB_ENTRYID: {
        const uint8_t *p;
        size_t len;
        if (!mms_tlv_is(t, CTX, false, 9) || mms_ber_get_octets(t, 8, &p, &len) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (len != 8)
            return DAE_VALUE_INVALID;
        uint64_t id = 0;
        for (int i = 0; i < 8; i++)
            id = id << 8 | p[i];
        if (id == 0) {
            r->cursor = r->head; /* everything buffered */
        } else {
            rpt_entry_t *e = r->head;
            while (e && e->id != id)
                e = e->next;
            if (!e)
                return DAE_VALUE_INVALID;
            r->cursor = e->next; /* resynchronise after the client's last entry */
        }
        r->entry_id = id;
        break;
    }
    case R_RCB_RESVTMS:
        if (!mms_tlv_is(t, CTX, false, 5) || mms_ber_get_int(t, &iv) < 0)
            return DAE_TYPE_INCONSISTENT;
        if (iv < -1 || iv > 32767)
            return DAE_VALUE_INVALID;
        r->resvtms = (int16_t)iv;
        r->owner = iv > 0 ? c : (r->ena ? r->owner : NULL);
        return -1;
    default:
        return DAE_ACCESS_DENIED; /* ConfRev, SqNum, TimeofEntry: read-only */
    }
    if (!r->owner)
        r->owner = c;
    if (!buffered)
        r->resv = true; /* 7-2: writing an URCB reserves it */
    return -1;
}

/* ---- reports ----------------------------------------------------------------------------------
 */

static void all_members(const rcb_t *r, uint8_t why, uint8_t *reason)
{
    memset(reason, 0, IED_DS_MAX);
    for (int i = 0; r->ds >= 0 && i < ied_ds[r->ds].n; i++)
        reason[i] = why;
}

/* GI, integrity period and buffer time of an enabled RCB. */
static void collect(const ied_t *m, const ld_t *ld, rcb_t *r, bool buffered, int64_t now_ns)
{
    uint8_t reason[IED_DS_MAX];
    if (r->ds < 0)
        return;
    flush(m, ld, r, buffered, now_ns);
    if (r->gi) {
        r->gi = false;
        if (r->trgops & TRG_GI) {
            all_members(r, TRG_GI, reason);
            make_entry(m, ld, r, buffered, reason, now_ns);
        }
    }
    if (r->intgpd && (r->trgops & TRG_INTG)) {
        int64_t per = (int64_t)r->intgpd * 1000000;
        if (!r->next_intg) {
            r->next_intg = now_ns + per;
        } else if (now_ns >= r->next_intg) {
            all_members(r, TRG_INTG, reason);
            make_entry(m, ld, r, buffered, reason, now_ns);
            while (r->next_intg <= now_ns)
                r->next_intg += per;
        }
    }
}

/* InformationReport contents (8-1 17.2.3.x, ISO 9506-2 15.4) of entry e of RCB r. */
static void enc_report(mms_ber_writer_t *w, const ld_t *ld, const rcb_t *r, const rpt_entry_t *e,
                       bool buffered)
{
    const dsdef_t *d = &ied_ds[e->ds];
    uint16_t opt = r->optflds;
    char s[200];
    size_t mk = mms_bw_mark(w);
    if (opt & OPT_REASON)
        for (int i = d->n - 1; i >= 0; i--)
            if (e->reason[i])
                mms_bw_bits(w, CTX, 4, &e->reason[i], 7);
    mms_bw_raw(w, e->data, e->len);
    if (opt & OPT_DATAREF)
        for (int i = d->n - 1; i >= 0; i--)
            if (e->reason[i]) {
                snprintf(s, sizeof s, "%s/%s", ld->dom, d->members[i]);
                mms_bw_octets(w, CTX, 10, s, strlen(s));
            }
    uint8_t incl[(IED_DS_MAX + 7) / 8] = {0};
    for (int i = 0; i < d->n; i++)
        if (e->reason[i])
            incl[i / 8] |= (uint8_t)(0x80 >> (i % 8));
    mms_bw_bits(w, CTX, 4, incl, (size_t)d->n);
    if (opt & OPT_CONFREV)
        mms_bw_uint(w, CTX, 6, e->confrev);
    if (opt & OPT_ENTRYID) {
        uint8_t b[8];
        for (int i = 0; i < 8; i++)
            b[i] = (uint8_t)(e->id >> (56 - 8 * i));
        mms_bw_octets(w, CTX, 9, b, 8);
    }
    if (opt & OPT_BUFOVFL)
        mms_bw_bool(w, CTX, 3, r->ovfl);
    if (opt & OPT_DATASET) {
        datset_ref(ld, e->ds, s, sizeof s);
        mms_bw_octets(w, CTX, 10, s, strlen(s));
    }
    if (opt & OPT_TIME) {
        mms_bintime_t bt;
        bintime_of(e->t_ns, &bt);
        mms_bw_bintime(w, CTX, 12, &bt);
    }
    if (opt & OPT_SEQNUM) /* SqNum: 8 bits (URCB), 16 bits (BRCB), wrapping */
        mms_bw_uint(w, CTX, 6, r->sqnum & (buffered ? 0xFFFFu : 0xFFu));
    uint8_t ob[2] = {(uint8_t)(opt >> 8), (uint8_t)opt};
    mms_bw_bits(w, CTX, 4, ob, 10);
    mms_bw_octets(w, CTX, 10, r->rptid, strlen(r->rptid));
    mms_bw_wrap(w, CTXC, 0, mk); /* listOfAccessResult */
    size_t m2 = mms_bw_mark(w);
    mms_bw_octets(w, CTX, 0, "RPT", 3); /* variableListName vmd-specific "RPT" */
    mms_bw_wrap(w, CTXC, 1, m2);
}

int ied_client_next_report(ied_client_t *c, int64_t now_ns, mms_ber_writer_t *w, int *service)
{
    if (!c || !w || !service)
        return GS_EINVAL;
    ied_t *m = c->m;
    if (now_ns > m->now_ns)
        m->now_ns = now_ns;
    /* round robin from where the last report came from: draining n blocks costs O(n) */
    for (size_t j = 0; j < c->nen; j++) {
        size_t i = (c->scan + j) % c->nen;
        ld_t *ld = c->en[i].ld;
        int k = c->en[i].k;
        rcb_t *r = &ld->rcb[k];
        bool buffered = ied_rcbs[k].buffered;
        if (r->owner != c || !r->ena)
            continue;
        collect(m, ld, r, buffered, now_ns);
        while (r->cursor) {
            rpt_entry_t *e = r->cursor;
            size_t start = mms_bw_len(w);
            enc_report(w, ld, r, e, buffered);
            if (w->err)
                return w->err;
            bool fits = mms_bw_len(w) - start + 16 <= c->max_pdu;
            r->cursor = e->next;
            if (buffered) {
                r->entry_id = e->id;
                r->entry_t_ns = e->t_ns;
                r->ovfl = false;
            } else { /* sent: an unbuffered report is gone */
                r->head = e->next;
                if (!r->head)
                    r->tail = NULL;
                r->nent--;
                r->bytes -= e->len;
                free(e);
            }
            if (!fits) { /* no segmentation: our datasets always fit (docs) */
                w->pos = w->cap - start;
                continue;
            }
            r->sqnum++;
            *service = MMS_USVC_INFORMATION_REPORT;
            c->scan = i;
            return 1;
        }
    }
    return 0;
}

int64_t ied_client_next_due(const ied_client_t *c)
{
    if (!c)
        return INT64_MAX;
    const ied_t *m = c->m;
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < c->nen; i++) {
        const rcb_t *r = &c->en[i].ld->rcb[c->en[i].k];
        if (r->owner != c || !r->ena)
            continue;
        if (r->cursor || r->gi)
            return m->now_ns; /* something to send now */
        int any = 0;
        for (int j = 0; j < IED_DS_MAX; j++)
            any |= r->pend[j];
        if (any && r->pend_since + (int64_t)r->buftm * 1000000 < due)
            due = r->pend_since + (int64_t)r->buftm * 1000000;
        if (r->intgpd && (r->trgops & TRG_INTG)) {
            int64_t t = r->next_intg ? r->next_intg : m->now_ns;
            if (t < due)
                due = t;
        }
    }
    return due;
}
