/* ied internals shared by model.c (types, logical devices, values), svc.c (MMS services) and
 * scl.c (SCL export). Not a public header: only src/ied includes it. */
#ifndef GS_IED_IED_INT_H
#define GS_IED_IED_INT_H

#include "ied/ied.h"

/* ---- Basic types of the MMS view (IEC 61850-8-1 clause 8 / ISO 9506-2 TypeSpecification) ---- */
enum {
    BT_STRUCT = 0,
    BT_BOOL,   /* boolean */
    BT_INT,    /* integer, size = bits (8 for enumerations, 32 for INT32) */
    BT_UINT,   /* unsigned, size = bits */
    BT_FLOAT,  /* floating-point, FLOAT32 */
    BT_BITS,   /* bit-string, size = 8-1 size (negative: variable length, as the captures) */
    BT_UTC,    /* utc-time (8-1 8.1.3.7) */
    BT_VSTR,   /* visible-string, size = 8-1 size (negative: up to |size|) */
    BT_ARRAY,  /* array of size elements of k[0]; element i has point + i */
    BT_OCTETS, /* octet-string, size = 8-1 size */
    BT_BINTIME /* binary-time with date (6 octets) */
};

/* Functional constraints (IEC 61850-7-2 Table 18), in the order the LN structure lists its
 * FC components (GetVariableAccessAttributes, Read of a whole LN, SCL). */
enum { FC_MX = 0, FC_ST, FC_SP, FC_CF, FC_DC, FC_EX, FC_BR, FC_RP, FC_N, FC_INH = 0xFF };
extern const char *const ied_fc_name[FC_N];

/* Where a leaf takes its value from. */
enum {
    R_NONE = 0,
    R_MAG,       /* point's magnitude (FLOAT32) */
    R_ANG,       /* point's angle, degrees (FLOAT32) */
    R_Q,         /* point's quality */
    R_T,         /* point's timestamp + time quality */
    R_STVAL,     /* point's integer/boolean status value */
    R_UNIT_SI,   /* DO's SIUnit */
    R_UNIT_MULT, /* DO's multiplier */
    R_ZERO,      /* constant 0: ctlModel (status-only), seqT (pos-neg-zero) */
    R_S_VENDOR,  /* NamPlt.vendor: ied vendor */
    R_S_SWREV,   /* NamPlt.swRev: ied revision */
    R_S_D,       /* NamPlt.d: the terminal's provisioned name (or its id) */
    R_S_CONFREV, /* NamPlt.configRev */
    R_S_LDNS,    /* NamPlt.ldNs: the 7-4 namespace */
    R_S_PVENDOR, /* PhyNam.vendor */
    R_S_HWREV,   /* PhyNam.hwRev */
    R_S_PSWREV,  /* PhyNam.swRev */
    R_S_SERNUM,  /* PhyNam.serNum: the terminal id */
    R_S_MODEL,   /* PhyNam.model */
    R_SETMAG,    /* ASG setMag.f: point's magnitude (settings, SP) */
    R_NUMHAR,    /* HWYE numHar: IED_NHARM - 1 */
    /* report control block attributes (point = RCB index in ld_t.rcb) */
    R_RCB_RPTID,
    R_RCB_RPTENA,
    R_RCB_RESV,
    R_RCB_DATSET,
    R_RCB_CONFREV,
    R_RCB_OPTFLDS,
    R_RCB_BUFTM,
    R_RCB_SQNUM,
    R_RCB_TRGOPS,
    R_RCB_INTGPD,
    R_RCB_GI,
    R_RCB_PURGEBUF,
    R_RCB_ENTRYID,
    R_RCB_TIMEOFENTRY,
    R_RCB_RESVTMS,
};
#define R_RCB_FIRST R_RCB_RPTID

#define IED_NHARM 51 /* harmonic groups 0 (DC) .. 50 (IEC 61000-4-7) */

/* A static type tree node (a CDC's data attributes, or a sub data object). */
typedef struct tnode {
    const char *name;
    uint8_t bt;   /* BT_* */
    uint8_t fc;   /* FC_* of a data attribute; FC_INH below it (and for sub-DOs) */
    uint8_t role; /* R_* for leaves */
    int16_t sub;  /* >= 0: a sub data object whose point is its parent's + sub */
    int16_t size;
    uint8_t nk;
    const struct tnode *k;
} tnode_t;

/* One data object of a logical node. */
typedef struct {
    const char *name;
    const char *cdc;     /* CDC name (SCL DOType cdc) */
    const tnode_t *type; /* its DAs and sub-DOs */
    int nt;
    int point;          /* first point (ld_t.pts index) */
    int si, mult;       /* units (7-3 Annex A SIUnit, multiplier), si 0 = no units */
    const char *typeid; /* SCL DOType id */
} dodef_t;

typedef struct {
    const char *name; /* LN name: prefix + class + inst, e.g. "MMXU1" */
    const char *lnclass;
    const char *inst;   /* "" for LLN0 */
    const char *typeid; /* SCL LNodeType id */
    const char *desc;
    const dodef_t *dos;
    int ndo;
} lndef_t;

/* The runtime MMS view: a named tree per LN, FC-constrained (8-1 8.1.2). */
typedef struct mnode {
    const char *name; /* static */
    uint8_t bt, fc, role;
    int16_t size;
    int point;         /* leaves and DO nodes: point index, -1 none */
    const dodef_t *dd; /* DO this node belongs to (NULL above DO level) */
    const tnode_t *tn; /* static node it came from (NULL above DO level) */
    struct mnode *kids;
    uint16_t nk;
} mnode_t;

/* Measured / status points of one logical device (P_MOD and later: the server's own). */
enum {
    P_PHV = 0,         /* 3: phases A, B, C */
    P_PPV = P_PHV + 3, /* 3: AB, BC, CA */
    P_A = P_PPV + 3,   /* 4: A, B, C, neutral */
    P_W = P_A + 4,     /* 3 */
    P_VAR = P_W + 3,   /* 3 */
    P_VA = P_VAR + 3,  /* 3 */
    P_PF = P_VA + 3,   /* 3 */
    P_TOTW = P_PF + 3,
    P_TOTVAR,
    P_TOTVA,
    P_TOTPF,
    P_HZ,
    P_SEQV,              /* 3: c1 positive, c2 negative, c3 zero */
    P_SEQA = P_SEQV + 3, /* 3 */
    P_IMBNGV = P_SEQA + 3,
    P_IMBZROV,
    P_IMBNGA,
    P_IMBZROA,
    P_HPHV,                          /* 3 x IED_NHARM */
    P_HA = P_HPHV + 3 * IED_NHARM,   /* 4 x IED_NHARM */
    P_THDPHV = P_HA + 4 * IED_NHARM, /* 3 */
    P_THDA = P_THDPHV + 3,           /* 4 */
    P_SECV = P_THDA + 4,             /* 3: TVTR1..3 secondary RMS */
    P_SECA = P_SECV + 3,             /* 4: TCTR1..4 secondary RMS */
    P_SYNV = P_SECA + 4,             /* 3: synchrophasors (MMXU2), absolute angles */
    P_SYNA = P_SYNV + 3,             /* 4 */
    P_SYNHZ = P_SYNA + 4,
    P_SYNROCOF,
    P_SYNSEQV,                 /* 3: MSQI2 SeqV: c1 = V1 */
    P_SYNSEQA = P_SYNSEQV + 3, /* 3 */
    P_EVDIP = P_SYNSEQA + 3,   /* QVVR1 DipStr.general */
    P_EVSWL,
    P_EVINTR,
    P_EVVA,    /* residual / maximum, primary V */
    P_EVVAPCT, /* its % of the reference */
    P_EVTM,    /* duration s */
    P_EVCNT,   /* events since the LD was created */
    P_TMP,     /* STMP1.Tmp: board temperature */
    P_SUPPLY,  /* GGIO1.AnIn1: supply voltage */
    P_RSRP,    /* GGIO1.AnIn2: LTE RSRP dBm */
    P_RSSI,    /* GGIO1.AnIn3: RSSI dBm */
    P_MOD,
    P_BEH,
    P_HEALTH,
    P_PHYHEALTH,
    P_PROXY,
    P_VRAT,  /* TVTR Rat: vt_ratio */
    P_ARAT,  /* TCTR Rat: ct_ratio */
    P_VRTG,  /* TVTR VRtg: declared voltage, primary */
    P_HZRTG, /* HzRtg: nominal frequency */
    P_N
};
#define P_LATEST_END P_EVDIP /* points [0, P_LATEST_END) come from the latest values */

/* Quality (IEC 61850-7-3 6.2, 8-1 coding): bit i of the 13-bit string is mask 0x8000 >> i. */
#define Q_INVALID      0x4000u /* validity 01 */
#define Q_QUESTIONABLE 0xC000u /* validity 11 */
#define Q_VALIDITY     0xC000u
#define Q_FAILURE      0x0200u /* detailQual bit 6 */
#define Q_OLDDATA      0x0100u /* detailQual bit 7 */
#define Q_INACCURATE   0x0040u /* detailQual bit 9 */

typedef struct {
    double mag, ang;
    int64_t ival;
    uint16_t q;
    uint8_t tq;   /* time quality octet */
    int64_t t_ns; /* 0: never set */
} point_t;

/* ---- Datasets and report control blocks (rpt.c) ---------------------------------------------- */

#define IED_NDS    3  /* static datasets of LLN0 */
#define IED_NRCB   17 /* report control blocks of LLN0 (ied_rcbs) */
#define IED_DS_MAX 16 /* members of a dataset */

typedef struct {
    const char *name;                /* "Measurements": the list LLN0$Measurements */
    const char *members[IED_DS_MAX]; /* item paths (FC-constrained data) */
    int n;
} dsdef_t;
extern const dsdef_t ied_ds[IED_NDS];

typedef struct {
    const char *name; /* "MeasRCB01" */
    const char *scl;  /* its SCL ReportControl name ("MeasRCB") */
    int ds;           /* default dataset */
    bool buffered;
} rcbdef_t;
extern const rcbdef_t ied_rcbs[IED_NRCB];

typedef struct rpt_entry {
    struct rpt_entry *next;
    uint64_t id;  /* EntryID (buffered) */
    int64_t t_ns; /* TimeOfEntry */
    int ds;       /* dataset of the values */
    uint32_t confrev;
    uint8_t reason[IED_DS_MAX]; /* ReasonCode bits per member, 0 = not included */
    size_t len;                 /* data: the included members' Data, concatenated in member order */
    uint8_t data[];
} rpt_entry_t;

typedef struct {
    char rptid[130];
    bool ena, resv, gi;
    bool ever; /* a BRCB once enabled: keeps buffering while disabled */
    ied_client_t *owner;
    int ds; /* -1: none */
    uint32_t confrev;
    uint16_t optflds; /* 10 bits, bit i = mask 0x8000 >> i */
    uint8_t trgops;   /* 6 bits, bit i = mask 0x80 >> i */
    uint32_t buftm, intgpd;
    uint32_t sqnum;
    int16_t resvtms;
    uint64_t entry_id;  /* last EntryID sent (BRCB) */
    int64_t entry_t_ns; /* its TimeOfEntry */
    uint32_t hv[IED_DS_MAX], hq[IED_DS_MAX];
    bool have_h;
    uint8_t pend[IED_DS_MAX];
    int64_t pend_since;
    int64_t next_intg;
    rpt_entry_t *head, *tail, *cursor; /* queue; cursor: next entry to send */
    size_t nent, bytes;
    uint64_t next_id;
    bool ovfl;
} rcb_t;

/* Dynamic named variable lists (DefineNamedVariableList): association-specific ones live in
 * the ied_client_t, domain-specific ones in their LD. */
#define IED_NVL_MAX     16 /* lists per association and per LD */
#define IED_NVL_MEMBERS 64 /* members per list */
typedef struct {
    char dom[100];
    char item[130];
} nvl_ref_t;
typedef struct {
    char name[130];
    int n;
    nvl_ref_t *m; /* malloc'ed */
} nvl_t;

typedef struct ld {
    char id[GSTP_MAX_ID + 1];
    char inst[72]; /* LD inst (escaped id) */
    char dom[100]; /* domain name = ied name + inst */
    ied_terminal_t term;
    int64_t state_ns; /* when online/health last changed (status DOs' t) */
    uint64_t gen;     /* ied_set_terminals pass that last listed it */
    point_t pts[P_N];
    rcb_t rcb[IED_NRCB];
    nvl_t dyn[IED_NVL_MAX]; /* domain-specific dynamic lists */
    int ndyn;
} ld_t;

struct ied {
    ied_opts_t o;
    ld_t **lds; /* sorted by dom (ied_name_cmp) */
    size_t nld;
    mnode_t *lns; /* one per lndef, in ied_lns order */
    size_t nln;
    char **names; /* every domain-specific variable name of an LD, sorted (ied_name_cmp) */
    size_t nnames;
    size_t nclients;
    ied_client_t **cl; /* the associations (to drop their references to a removed LD) */
    size_t cap_cl;
    int64_t now_ns; /* the latest time any feeding or report call gave */
    uint64_t gen;   /* ied_set_terminals passes */
    ied_file_ops_t fops; /* file provider (file.c) */
    void *fud;
    bool has_fops;
};

typedef struct {
    ld_t *ld;
    int k;
} rcbref_t;

#define IED_FRSM_MAX 8 /* open files per association */

struct ied_client {
    ied_t *m;
    uint32_t max_pdu;
    rcbref_t *en; /* the report control blocks this association has enabled */
    size_t nen, cap_en;
    size_t scan; /* where the last report came from: the next call resumes there */
    struct {
        bool open;
        void *h;
        uint64_t pos, size;
    } frsm[IED_FRSM_MAX]; /* open files (FRSM id = index) */
    nvl_t aa[IED_NVL_MAX]; /* association-specific lists */
    int naa;
};

/* rpt.c */
void ied_rcb_init(ied_t *m, ld_t *ld, int64_t now_ns);
void ied_rcb_free_ld(ied_t *m, ld_t *ld);
void ied_rcb_release(ied_t *m, ied_client_t *c);
/* After the LD's values changed: data/quality-change detection of its enabled RCBs. */
void ied_rcb_changed(ied_t *m, ld_t *ld, int64_t now_ns);
/* Data of the RCB attribute leaf n of rcb r. */
void ied_rcb_enc_attr(mms_ber_writer_t *w, const ld_t *ld, const mnode_t *n);
/* Write of one RCB attribute: returns the DataAccessError, or -1 for success. */
int ied_rcb_write(ied_client_t *c, ld_t *ld, const mnode_t *n, const mms_tlv_t *data);
/* Data of node n of ld into w (svc.c). */
void ied_enc_data(mms_ber_writer_t *w, const ied_t *m, const ld_t *ld, const mnode_t *n, int off);
/* file.c: a file service request; 1 when not served (no provider or another service). */
int ied_file_service(ied_client_t *c, int service, bool cons, const uint8_t *body, size_t len,
                     mms_ber_writer_t *w, ied_answer_t *a);
void ied_file_close_all(ied_client_t *c);
/* The dataset named by item ("LLN0$Measurements") or -1. */
int ied_ds_find(const char *item, size_t len);

extern const lndef_t ied_lns[];
extern const size_t ied_nlns;

/* Name order of GetNameList: component by component ('$'), case-insensitive, then byte order. */
int ied_name_cmp(const char *a, const char *b);
/* The LD of domain `dom` or NULL. */
ld_t *ied_ld_find(const ied_t *m, const char *dom, size_t len);
/* The node of item path `item` ("MMXU1$MX$PhV") in the LN views, or NULL. */
const mnode_t *ied_node_find(const ied_t *m, const char *item, size_t len);
/* Effective quality and time of a point as published (offline terminals: questionable|oldData). */
uint16_t ied_point_q(const ld_t *ld, int point);

/* Maps a terminal id to an LD inst (docs/iec61850.md "Data model"): letters and digits stay,
 * '-' -> "_M", '.' -> "_D". Returns the length, or GS_EINVAL for a character outside the id set
 * or an empty id, GS_ELIMIT if out[cap] is too small. */
int ied_ldinst_from_id(const char *id, char *out, size_t cap);
/* The reverse: GS_EINVAL for anything ied_ldinst_from_id cannot produce. */
int ied_id_from_ldinst(const char *inst, char *out, size_t cap);

#endif
