/* ied SCL export (IEC 61850-6 Ed2.1, an ICD-like file of the running model): written from the
 * same LN/CDC tables (model.c) the MMS services answer from, so the DataTypeTemplates expand to
 * exactly the names of GetNameList and the types of GetVariableAccessAttributes (unit test). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "ied/ied_int.h"

typedef struct {
    int (*write)(void *ud, const char *s, size_t n);
    void *ud;
    int rc;
    char done_buf[256][64]; /* type ids already written */
    int ndone;
} sw_t;

static void out(sw_t *s, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    if (s->rc)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        s->rc = GS_ELIMIT;
        return;
    }
    int rc = s->write(s->ud, buf, (size_t)n);
    if (rc < 0)
        s->rc = rc;
}

/* XML attribute value (IEC 61850-6 texts: escaped &, <, >, ", '), into a static-size buffer. */
static const char *esc(const char *in, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 7 < cap; p++) {
        const char *r = NULL;
        switch (*p) {
        case '&':
            r = "&amp;";
            break;
        case '<':
            r = "&lt;";
            break;
        case '>':
            r = "&gt;";
            break;
        case '"':
            r = "&quot;";
            break;
        case '\'':
            r = "&apos;";
            break;
        default:
            break;
        }
        if (r) {
            size_t l = strlen(r);
            memcpy(buf + n, r, l);
            n += l;
        } else if ((unsigned char)*p >= 0x20 || *p == '\t') {
            buf[n++] = *p;
        }
    }
    buf[n] = 0;
    return buf;
}

/* True the first time `id` is seen (the type is then written). */
static int first(sw_t *s, const char *id)
{
    for (int i = 0; i < s->ndone; i++)
        if (!strcmp(s->done_buf[i], id))
            return 0;
    if (s->ndone < 256) {
        snprintf(s->done_buf[s->ndone], sizeof s->done_buf[0], "%s", id);
        s->ndone++;
    }
    return 1;
}

/* bType and type of a leaf DA / BDA (6 Ed2.1 tBasicTypeEnum). */
static const char *btype(const tnode_t *t, const char *doname, const char **type)
{
    *type = NULL;
    switch (t->bt) {
    case BT_BOOL:
        return "BOOLEAN";
    case BT_BITS:
        return "Quality";
    case BT_UTC:
        return "Timestamp";
    case BT_FLOAT:
        return "FLOAT32";
    case BT_VSTR:
        return "VisString255";
    case BT_UINT:
        return t->size == 16 ? "INT16U" : "INT32U";
    case BT_INT:
        if (t->size == 32)
            return "INT32";
        /* 8-bit integers are enumerations (8-1 maps ENUMERATED to integer 8) */
        if (t->role == R_UNIT_SI)
            *type = "GS_SIUnit";
        else if (t->role == R_UNIT_MULT)
            *type = "GS_multiplier";
        else if (!strcmp(t->name, "ctlModel"))
            *type = "GS_ctlModel";
        else if (!strcmp(t->name, "seqT"))
            *type = "GS_seqT";
        else if (doname && (!strcmp(doname, "Health") || !strcmp(doname, "PhyHealth")))
            *type = "GS_Health";
        else
            *type = "GS_Beh"; /* Mod and Beh share the 7-4 Beh values */
        return "Enum";
    default:
        return "Struct";
    }
}

/* DAType of a structured DA. */
static const char *datype(const tnode_t *t)
{
    if (!strcmp(t->name, "cVal"))
        return "GS_Vector";
    if (!strcmp(t->name, "units"))
        return "GS_Unit";
    return "GS_AnalogueValue"; /* mag, ang, setMag: { f FLOAT32 } */
}

static const char *fcname(int fc)
{
    return fc >= 0 && fc < FC_N ? ied_fc_name[fc] : "MX";
}

/* Trigger options of a DA (dchg on values, qchg on quality). */
static const char *trg(const tnode_t *t)
{
    if (t->bt == BT_BITS)
        return " qchg=\"true\"";
    if (!strcmp(t->name, "stVal") || !strcmp(t->name, "general") || !strcmp(t->name, "mag") ||
        !strcmp(t->name, "cVal"))
        return " dchg=\"true\"";
    return "";
}

/* The DOType `id` of the DO/SDO whose children are k[0..nk), and the types below it. */
static void dotype(sw_t *s, const char *id, const char *cdc, const tnode_t *k, int nk,
                   const char *doname, int inh_fc)
{
    if (!first(s, id))
        return;
    char sub[64];
    /* sub data objects first (their DOTypes), then this one */
    for (int i = 0; i < nk; i++)
        if (k[i].sub >= 0) {
            const tnode_t *el = k[i].bt == BT_ARRAY ? k[i].k : &k[i];
            snprintf(sub, sizeof sub, "%s_%s", id, k[i].bt == BT_ARRAY ? "HCMV" : "CMV");
            dotype(s, sub, "CMV", el->k, el->nk, NULL, k[i].fc == FC_INH ? inh_fc : k[i].fc);
        }
    out(s, "    <DOType id=\"%s\" cdc=\"%s\">\n", id, cdc);
    for (int i = 0; i < nk; i++) {
        const tnode_t *t = &k[i];
        if (t->sub >= 0) {
            snprintf(sub, sizeof sub, "%s_%s", id, t->bt == BT_ARRAY ? "HCMV" : "CMV");
            if (t->bt == BT_ARRAY)
                out(s, "      <SDO name=\"%s\" type=\"%s\" count=\"%d\"/>\n", t->name, sub,
                    t->size);
            else
                out(s, "      <SDO name=\"%s\" type=\"%s\"/>\n", t->name, sub);
            continue;
        }
        int fc = t->fc == FC_INH ? inh_fc : t->fc;
        const char *ty;
        const char *bt = btype(t, doname, &ty);
        if (t->bt == BT_STRUCT)
            ty = datype(t);
        out(s, "      <DA name=\"%s\" bType=\"%s\"%s%s%s fc=\"%s\"%s/>\n", t->name, bt,
            ty ? " type=\"" : "", ty ? ty : "", ty ? "\"" : "", fcname(fc), trg(t));
    }
    out(s, "    </DOType>\n");
}

static void fixed_types(sw_t *s)
{
    out(s, "    <DAType id=\"GS_AnalogueValue\">\n"
           "      <BDA name=\"f\" bType=\"FLOAT32\"/>\n"
           "    </DAType>\n"
           "    <DAType id=\"GS_Vector\">\n"
           "      <BDA name=\"mag\" bType=\"Struct\" type=\"GS_AnalogueValue\"/>\n"
           "      <BDA name=\"ang\" bType=\"Struct\" type=\"GS_AnalogueValue\"/>\n"
           "    </DAType>\n"
           "    <DAType id=\"GS_Unit\">\n"
           "      <BDA name=\"SIUnit\" bType=\"Enum\" type=\"GS_SIUnit\"/>\n"
           "      <BDA name=\"multiplier\" bType=\"Enum\" type=\"GS_multiplier\"/>\n"
           "    </DAType>\n");
    out(s, "    <EnumType id=\"GS_Beh\">\n"
           "      <EnumVal ord=\"1\">on</EnumVal>\n"
           "      <EnumVal ord=\"2\">on-blocked</EnumVal>\n"
           "      <EnumVal ord=\"3\">test</EnumVal>\n"
           "      <EnumVal ord=\"4\">test/blocked</EnumVal>\n"
           "      <EnumVal ord=\"5\">off</EnumVal>\n"
           "    </EnumType>\n"
           "    <EnumType id=\"GS_Health\">\n"
           "      <EnumVal ord=\"1\">Ok</EnumVal>\n"
           "      <EnumVal ord=\"2\">Warning</EnumVal>\n"
           "      <EnumVal ord=\"3\">Alarm</EnumVal>\n"
           "    </EnumType>\n"
           "    <EnumType id=\"GS_ctlModel\">\n"
           "      <EnumVal ord=\"0\">status-only</EnumVal>\n"
           "    </EnumType>\n"
           "    <EnumType id=\"GS_seqT\">\n"
           "      <EnumVal ord=\"0\">pos-neg-zero</EnumVal>\n"
           "    </EnumType>\n"
           "    <EnumType id=\"GS_multiplier\">\n"
           "      <EnumVal ord=\"0\"></EnumVal>\n"
           "    </EnumType>\n"
           "    <EnumType id=\"GS_SIUnit\">\n"
           "      <EnumVal ord=\"1\"></EnumVal>\n"
           "      <EnumVal ord=\"4\">s</EnumVal>\n"
           "      <EnumVal ord=\"5\">A</EnumVal>\n"
           "      <EnumVal ord=\"23\">degC</EnumVal>\n"
           "      <EnumVal ord=\"29\">V</EnumVal>\n"
           "      <EnumVal ord=\"33\">Hz</EnumVal>\n"
           "      <EnumVal ord=\"38\">W</EnumVal>\n"
           "      <EnumVal ord=\"61\">VA</EnumVal>\n"
           "      <EnumVal ord=\"63\">VAr</EnumVal>\n"
           "      <EnumVal ord=\"65\">cos(phi)</EnumVal>\n"
           "      <EnumVal ord=\"75\">Hz/s</EnumVal>\n"
           "    </EnumType>\n");
}

static int is_rcb(const dodef_t *d)
{
    return !strcmp(d->cdc, "URCB") || !strcmp(d->cdc, "BRCB");
}

/* The static datasets (FCDA per member "LN$FC$DO") and the report control blocks of LLN0
 * (one ReportControl per name, RptEnabled max = its instances 01, 02, ...). */
static void datasets(sw_t *s, const ld_t *ld)
{
    for (int i = 0; i < IED_NDS; i++) {
        out(s, "            <DataSet name=\"%s\">\n", ied_ds[i].name);
        for (int k = 0; k < ied_ds[i].n; k++) {
            char ln[16], fc[4], dn[64];
            if (sscanf(ied_ds[i].members[k], "%15[^$]$%3[^$]$%63s", ln, fc, dn) != 3)
                continue;
            for (size_t j = 0; j < ied_nlns; j++)
                if (!strcmp(ied_lns[j].name, ln))
                    out(s,
                        "              <FCDA ldInst=\"%s\" prefix=\"\" lnClass=\"%s\""
                        " lnInst=\"%s\" doName=\"%s\" fc=\"%s\"/>\n",
                        ld->inst, ied_lns[j].lnclass, ied_lns[j].inst, dn, fc);
        }
        out(s, "            </DataSet>\n");
    }
    for (int k = 0; k < IED_NRCB; k++) {
        const rcbdef_t *d = &ied_rcbs[k];
        if (k > 0 && !strcmp(ied_rcbs[k - 1].scl, d->scl))
            continue; /* a further instance of the same block */
        int max = 0;
        for (int j = k; j < IED_NRCB && !strcmp(ied_rcbs[j].scl, d->scl); j++)
            max++;
        out(s,
            "            <ReportControl name=\"%s\" datSet=\"%s\" confRev=\"1\""
            " buffered=\"%s\" bufTime=\"0\" intgPd=\"0\" indexed=\"true\">\n"
            "              <TrgOps dchg=\"true\" qchg=\"true\" dupd=\"false\" period=\"true\""
            " gi=\"true\"/>\n"
            "              <OptFields seqNum=\"true\" timeStamp=\"true\" dataSet=\"true\""
            " reasonCode=\"true\" dataRef=\"false\" entryID=\"%s\" configRef=\"true\""
            " bufOvfl=\"false\"/>\n"
            "              <RptEnabled max=\"%d\"/>\n"
            "            </ReportControl>\n",
            d->scl, ied_ds[d->ds].name, d->buffered ? "true" : "false",
            d->buffered ? "true" : "false", max);
    }
}

int ied_scl_write(const ied_t *m, int (*write)(void *ud, const char *s, size_t n), void *ud)
{
    static sw_t s; /* large; ied is single-threaded by contract */
    char e1[600], e2[600];
    memset(&s, 0, sizeof s);
    s.write = write;
    s.ud = ud;
    const ied_opts_t *o = &m->o;
    out(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<SCL xmlns=\"http://www.iec.ch/61850/2003/SCL\" version=\"2007\" revision=\"B\""
            " release=\"4\">\n");
    out(&s,
        "  <Header id=\"%s\" version=\"1\" revision=\"A\" toolID=\"%s %s\""
        " nameStructure=\"IEDName\"/>\n",
        o->ied_name, esc(o->vendor, e1, sizeof e1), esc(o->revision, e2, sizeof e2));
    /* the OSI selectors every capture's client uses, and an address to edit */
    out(&s,
        "  <Communication>\n"
        "    <SubNetwork name=\"W1\" type=\"8-MMS\">\n"
        "      <ConnectedAP iedName=\"%s\" apName=\"AP1\">\n"
        "        <Address>\n"
        "          <P type=\"IP\">127.0.0.1</P>\n"
        "          <P type=\"OSI-TSEL\">0001</P>\n"
        "          <P type=\"OSI-SSEL\">0001</P>\n"
        "          <P type=\"OSI-PSEL\">00000001</P>\n"
        "        </Address>\n"
        "      </ConnectedAP>\n"
        "    </SubNetwork>\n"
        "  </Communication>\n",
        o->ied_name);
    out(&s, "  <IED name=\"%s\" manufacturer=\"%s\" type=\"%s\" configVersion=\"%s\">\n",
        o->ied_name, esc(o->vendor, e1, sizeof e1), esc(o->model, e2, sizeof e2),
        o->revision[0] ? o->revision : "1");
    /* what the services of ied answer (docs/iec61850.md "Services"), in the tServices order */
    out(&s,
        "    <Services nameLength=\"64\">\n"
        "      <DynAssociation/>\n"
        "      <GetDirectory/>\n"
        "      <GetDataObjectDefinition/>\n"
        "      <DataObjectDirectory/>\n"
        "      <GetDataSetValue/>\n"
        "      <DataSetDirectory/>\n"
        "      <ConfDataSet max=\"%d\" maxAttributes=\"%d\"/>\n"
        "      <DynDataSet max=\"%d\" maxAttributes=\"%d\"/>\n"
        "      <ReadWrite/>\n"
        "      <ConfReportControl max=\"%d\"/>\n"
        "      <GetCBValues/>\n"
        "      <ReportSettings cbName=\"Fix\" datSet=\"Dyn\" rptID=\"Dyn\" optFields=\"Dyn\""
        " bufTime=\"Dyn\" trgOps=\"Dyn\" intgPd=\"Dyn\"/>\n"
        "      <ConfLNs fixPrefix=\"true\" fixLnInst=\"true\"/>\n"
        "    </Services>\n",
        IED_NDS, IED_DS_MAX, IED_NVL_MAX, IED_NVL_MEMBERS, IED_NRCB);
    out(&s, "    <AccessPoint name=\"AP1\">\n"
            "      <Server>\n"
            "        <Authentication none=\"true\"/>\n");
    for (size_t i = 0; i < m->nld && !s.rc; i++) {
        const ld_t *ld = m->lds[i];
        out(&s, "        <LDevice inst=\"%s\" desc=\"%s\">\n", ld->inst,
            esc(ld->term.name[0] ? ld->term.name : ld->id, e1, sizeof e1));
        for (size_t j = 0; j < ied_nlns; j++) {
            const lndef_t *l = &ied_lns[j];
            if (!strcmp(l->lnclass, "LLN0")) {
                out(&s, "          <LN0 lnClass=\"LLN0\" inst=\"\" lnType=\"%s\">\n", l->typeid);
                datasets(&s, ld);
                out(&s, "          </LN0>\n");
            } else
                out(&s,
                    "          <LN prefix=\"\" lnClass=\"%s\" inst=\"%s\" lnType=\"%s\""
                    " desc=\"%s\"/>\n",
                    l->lnclass, l->inst, l->typeid, esc(l->desc, e1, sizeof e1));
        }
        out(&s, "        </LDevice>\n");
    }
    out(&s, "      </Server>\n"
            "    </AccessPoint>\n"
            "  </IED>\n"
            "  <DataTypeTemplates>\n");
    for (size_t j = 0; j < ied_nlns; j++) {
        const lndef_t *l = &ied_lns[j];
        if (!first(&s, l->typeid))
            continue;
        out(&s, "    <LNodeType id=\"%s\" lnClass=\"%s\">\n", l->typeid, l->lnclass);
        for (int d = 0; d < l->ndo; d++)
            if (!is_rcb(&l->dos[d]))
                out(&s, "      <DO name=\"%s\" type=\"%s\"/>\n", l->dos[d].name, l->dos[d].typeid);
        out(&s, "    </LNodeType>\n");
    }
    for (size_t j = 0; j < ied_nlns; j++)
        for (int d = 0; d < ied_lns[j].ndo; d++) {
            const dodef_t *dd = &ied_lns[j].dos[d];
            if (!is_rcb(dd))
                dotype(&s, dd->typeid, dd->cdc, dd->type, dd->nt, dd->name, FC_INH);
        }
    fixed_types(&s);
    out(&s, "  </DataTypeTemplates>\n"
            "</SCL>\n");
    return s.rc;
}
