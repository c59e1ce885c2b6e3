/* ied model: the static LN/CDC tables (IEC 61850-7-4 / 7-3), the FC-constrained MMS view of
 * every LN (IEC 61850-8-1 8.1.2), the logical devices (one per terminal, names by the reversible
 * mapping of docs/iec61850.md) and their values fed from the analysis' latest results. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ied/ied_int.h"

const char *const ied_fc_name[FC_N] = {"MX", "ST", "SP", "CF", "DC", "EX", "BR", "RP"};

/* ---- CDC type tables (7-3), as 8-1 maps them ------------------------------------------------- */

#define LEAF(n, bt, fc, role, size)                                                                \
    {                                                                                              \
        n, bt, fc, role, -1, size, 0, NULL                                                         \
    }
#define STRU(n, fc, kids)                                                                          \
    {                                                                                              \
        n, BT_STRUCT, fc, R_NONE, -1, 0, (uint8_t)(sizeof kids / sizeof kids[0]), kids             \
    }
#define SUBDO(n, sub, kids)                                                                        \
    {                                                                                              \
        n, BT_STRUCT, FC_INH, R_NONE, sub, 0, (uint8_t)(sizeof kids / sizeof kids[0]), kids        \
    }

/* 8-1 sizes the captures' server uses: quality bit-string -13, VisString255 -255. */
#define QSIZE (-13)
#define VS255 (-255)

static const tnode_t AV_MAG[] = {LEAF("f", BT_FLOAT, FC_INH, R_MAG, 32)};
static const tnode_t AV_ANG[] = {LEAF("f", BT_FLOAT, FC_INH, R_ANG, 32)};
static const tnode_t VEC[] = {STRU("mag", FC_INH, AV_MAG), STRU("ang", FC_INH, AV_ANG)};
static const tnode_t UNIT[] = {LEAF("SIUnit", BT_INT, FC_INH, R_UNIT_SI, 8),
                               LEAF("multiplier", BT_INT, FC_INH, R_UNIT_MULT, 8)};

/* MV: measured value (7-3 7.4.2) */
static const tnode_t CDC_MV[] = {STRU("mag", FC_MX, AV_MAG), LEAF("q", BT_BITS, FC_MX, R_Q, QSIZE),
                                 LEAF("t", BT_UTC, FC_MX, R_T, 0), STRU("units", FC_CF, UNIT)};
/* CMV: complex measured value (7-3 7.4.3) */
static const tnode_t CDC_CMV[] = {STRU("cVal", FC_MX, VEC), LEAF("q", BT_BITS, FC_MX, R_Q, QSIZE),
                                  LEAF("t", BT_UTC, FC_MX, R_T, 0), STRU("units", FC_CF, UNIT)};
/* WYE (7-3 7.5.2): phase to ground/neutral values */
static const tnode_t CDC_WYE3[] = {SUBDO("phsA", 0, CDC_CMV), SUBDO("phsB", 1, CDC_CMV),
                                   SUBDO("phsC", 2, CDC_CMV)};
static const tnode_t CDC_WYE4[] = {SUBDO("phsA", 0, CDC_CMV), SUBDO("phsB", 1, CDC_CMV),
                                   SUBDO("phsC", 2, CDC_CMV), SUBDO("neut", 3, CDC_CMV)};
/* DEL (7-3 7.5.3): phase to phase values */
static const tnode_t CDC_DEL[] = {SUBDO("phsAB", 0, CDC_CMV), SUBDO("phsBC", 1, CDC_CMV),
                                  SUBDO("phsCA", 2, CDC_CMV)};
/* ENS (enumerated status, 7-3 7.3.4 Ed2) */
static const tnode_t CDC_ENS[] = {LEAF("stVal", BT_INT, FC_ST, R_STVAL, 8),
                                  LEAF("q", BT_BITS, FC_ST, R_Q, QSIZE),
                                  LEAF("t", BT_UTC, FC_ST, R_T, 0)};
/* ENC (controllable enumerated status, Mod): status-only (ctlModel 0) */
static const tnode_t CDC_ENC[] = {
    LEAF("stVal", BT_INT, FC_ST, R_STVAL, 8), LEAF("q", BT_BITS, FC_ST, R_Q, QSIZE),
    LEAF("t", BT_UTC, FC_ST, R_T, 0), LEAF("ctlModel", BT_INT, FC_CF, R_ZERO, 8)};
/* SPS (single point status) */
static const tnode_t CDC_SPS[] = {LEAF("stVal", BT_BOOL, FC_ST, R_STVAL, 0),
                                  LEAF("q", BT_BITS, FC_ST, R_Q, QSIZE),
                                  LEAF("t", BT_UTC, FC_ST, R_T, 0)};
/* LPL (logical node name plate) of LLN0 */
static const tnode_t CDC_LPL0[] = {LEAF("vendor", BT_VSTR, FC_DC, R_S_VENDOR, VS255),
                                   LEAF("swRev", BT_VSTR, FC_DC, R_S_SWREV, VS255),
                                   LEAF("d", BT_VSTR, FC_DC, R_S_D, VS255),
                                   LEAF("configRev", BT_VSTR, FC_DC, R_S_CONFREV, VS255),
                                   LEAF("ldNs", BT_VSTR, FC_EX, R_S_LDNS, VS255)};
/* DPL (device name plate) of LPHD */
static const tnode_t CDC_DPL[] = {LEAF("vendor", BT_VSTR, FC_DC, R_S_PVENDOR, VS255),
                                  LEAF("hwRev", BT_VSTR, FC_DC, R_S_HWREV, VS255),
                                  LEAF("swRev", BT_VSTR, FC_DC, R_S_PSWREV, VS255),
                                  LEAF("serNum", BT_VSTR, FC_DC, R_S_SERNUM, VS255),
                                  LEAF("model", BT_VSTR, FC_DC, R_S_MODEL, VS255)};

/* SEQ (7-3 7.5.4): sequence components c1 positive, c2 negative, c3 zero */
static const tnode_t CDC_SEQ[] = {SUBDO("c1", 0, CDC_CMV), SUBDO("c2", 1, CDC_CMV),
                                  SUBDO("c3", 2, CDC_CMV), LEAF("seqT", BT_INT, FC_MX, R_ZERO, 8)};
/* HWYE (7-3 7.5.6): harmonics of each phase, an ARRAY [0..numHar] of CMV each */
static const tnode_t HAR_EL[] = {STRU("cVal", FC_INH, VEC), LEAF("q", BT_BITS, FC_INH, R_Q, QSIZE),
                                 LEAF("t", BT_UTC, FC_INH, R_T, 0)};
#define HARR(n, sub)                                                                               \
    {                                                                                              \
        n, BT_ARRAY, FC_MX, R_NONE, sub, IED_NHARM, 1, &HAR_STRUCT                                 \
    }
static const tnode_t HAR_STRUCT = {"", BT_STRUCT, FC_INH, R_NONE, -1, 0, 3, HAR_EL};
static const tnode_t CDC_HWYE3[] = {
    HARR("phsAHar", 0), HARR("phsBHar", IED_NHARM), HARR("phsCHar", 2 * IED_NHARM),
    LEAF("numHar", BT_UINT, FC_CF, R_NUMHAR, 16), STRU("units", FC_CF, UNIT)};
static const tnode_t CDC_HWYE4[] = {HARR("phsAHar", 0),
                                    HARR("phsBHar", IED_NHARM),
                                    HARR("phsCHar", 2 * IED_NHARM),
                                    HARR("neutHar", 3 * IED_NHARM),
                                    LEAF("numHar", BT_UINT, FC_CF, R_NUMHAR, 16),
                                    STRU("units", FC_CF, UNIT)};
/* ACT (7-3 7.3.7): protection activation information, general only */
static const tnode_t CDC_ACT[] = {LEAF("general", BT_BOOL, FC_ST, R_STVAL, 0),
                                  LEAF("q", BT_BITS, FC_ST, R_Q, QSIZE),
                                  LEAF("t", BT_UTC, FC_ST, R_T, 0)};
/* INS (7-3 7.3.3): integer status */
static const tnode_t CDC_INS[] = {LEAF("stVal", BT_INT, FC_ST, R_STVAL, 32),
                                  LEAF("q", BT_BITS, FC_ST, R_Q, QSIZE),
                                  LEAF("t", BT_UTC, FC_ST, R_T, 0)};
/* ASG (7-3 7.7.2): analogue setting */
static const tnode_t AV_SET[] = {LEAF("f", BT_FLOAT, FC_INH, R_SETMAG, 32)};
static const tnode_t CDC_ASG[] = {STRU("setMag", FC_SP, AV_SET), STRU("units", FC_CF, UNIT)};

/* Report control blocks (8-1 17.2.2 / 17.2.3 structures, in the captures' order). Their DO-like
 * entries in LLN0 make them MMS variables of FC RP / BR; SCL writes them as ReportControl. */
#define RCBL(n, bt, role, size)                                                                    \
    {                                                                                              \
        n, bt, FC_INH, role, -1, size, 0, NULL                                                     \
    }
static const tnode_t CDC_URCB[] = {RCBL("RptID", BT_VSTR, R_RCB_RPTID, -129),
                                   RCBL("RptEna", BT_BOOL, R_RCB_RPTENA, 0),
                                   RCBL("Resv", BT_BOOL, R_RCB_RESV, 0),
                                   RCBL("DatSet", BT_VSTR, R_RCB_DATSET, -129),
                                   RCBL("ConfRev", BT_UINT, R_RCB_CONFREV, 32),
                                   RCBL("OptFlds", BT_BITS, R_RCB_OPTFLDS, -10),
                                   RCBL("BufTm", BT_UINT, R_RCB_BUFTM, 32),
                                   RCBL("SqNum", BT_UINT, R_RCB_SQNUM, 8),
                                   RCBL("TrgOps", BT_BITS, R_RCB_TRGOPS, -6),
                                   RCBL("IntgPd", BT_UINT, R_RCB_INTGPD, 32),
                                   RCBL("GI", BT_BOOL, R_RCB_GI, 0)};
static const tnode_t CDC_BRCB[] = {RCBL("RptID", BT_VSTR, R_RCB_RPTID, -129),
                                   RCBL("RptEna", BT_BOOL, R_RCB_RPTENA, 0),
                                   RCBL("DatSet", BT_VSTR, R_RCB_DATSET, -129),
                                   RCBL("ConfRev", BT_UINT, R_RCB_CONFREV, 32),
                                   RCBL("OptFlds", BT_BITS, R_RCB_OPTFLDS, -10),
                                   RCBL("BufTm", BT_UINT, R_RCB_BUFTM, 32),
                                   RCBL("SqNum", BT_UINT, R_RCB_SQNUM, 16),
                                   RCBL("TrgOps", BT_BITS, R_RCB_TRGOPS, -6),
                                   RCBL("IntgPd", BT_UINT, R_RCB_INTGPD, 32),
                                   RCBL("GI", BT_BOOL, R_RCB_GI, 0),
                                   RCBL("PurgeBuf", BT_BOOL, R_RCB_PURGEBUF, 0),
                                   RCBL("EntryID", BT_OCTETS, R_RCB_ENTRYID, 8),
                                   RCBL("TimeofEntry", BT_BINTIME, R_RCB_TIMEOFENTRY, 0),
                                   RCBL("ResvTms", BT_INT, R_RCB_RESVTMS, 16)};

/* SIUnit values (7-3 Annex A) */
enum {
    SI_NONE = 1,
    SI_S = 4,
    SI_A = 5,
    SI_DEGC = 23,
    SI_V = 29,
    SI_HZ = 33,
    SI_W = 38,
    SI_VA = 61,
    SI_VAR = 63,
    SI_COSPHI = 65,
    SI_HZS = 75
};

#define N(a) ((int)(sizeof a / sizeof a[0]))
#define DO(n, cdc, t, p, si, mult, tid)                                                            \
    {                                                                                              \
        n, cdc, t, N(t), p, si, mult, tid                                                          \
    }

static const dodef_t LLN0_DO[] = {
    DO("Mod", "ENC", CDC_ENC, P_MOD, 0, 0, "GS_ENC_Mod"),
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("Health", "ENS", CDC_ENS, P_HEALTH, 0, 0, "GS_ENS_Health"),
    DO("NamPlt", "LPL", CDC_LPL0, -1, 0, 0, "GS_LPL_LLN0"),
    /* report control blocks: point = index in ied_rcbs. Ten instances of the measurements
     * URCB so ten clients can each have their own (issue 11: reports to 10 clients). */
    {"MeasRCB01", "URCB", CDC_URCB, N(CDC_URCB), 0, 0, 0, NULL},
    {"MeasRCB02", "URCB", CDC_URCB, N(CDC_URCB), 1, 0, 0, NULL},
    {"MeasRCB03", "URCB", CDC_URCB, N(CDC_URCB), 2, 0, 0, NULL},
    {"MeasRCB04", "URCB", CDC_URCB, N(CDC_URCB), 3, 0, 0, NULL},
    {"MeasRCB05", "URCB", CDC_URCB, N(CDC_URCB), 4, 0, 0, NULL},
    {"MeasRCB06", "URCB", CDC_URCB, N(CDC_URCB), 5, 0, 0, NULL},
    {"MeasRCB07", "URCB", CDC_URCB, N(CDC_URCB), 6, 0, 0, NULL},
    {"MeasRCB08", "URCB", CDC_URCB, N(CDC_URCB), 7, 0, 0, NULL},
    {"MeasRCB09", "URCB", CDC_URCB, N(CDC_URCB), 8, 0, 0, NULL},
    {"MeasRCB10", "URCB", CDC_URCB, N(CDC_URCB), 9, 0, 0, NULL},
    {"EventsRCB01", "URCB", CDC_URCB, N(CDC_URCB), 10, 0, 0, NULL},
    {"EventsRCB02", "URCB", CDC_URCB, N(CDC_URCB), 11, 0, 0, NULL},
    {"StatusRCB01", "URCB", CDC_URCB, N(CDC_URCB), 12, 0, 0, NULL},
    {"StatusRCB02", "URCB", CDC_URCB, N(CDC_URCB), 13, 0, 0, NULL},
    {"MeasBRCB01", "BRCB", CDC_BRCB, N(CDC_BRCB), 14, 0, 0, NULL},
    {"EventsBRCB01", "BRCB", CDC_BRCB, N(CDC_BRCB), 15, 0, 0, NULL},
    {"StatusBRCB01", "BRCB", CDC_BRCB, N(CDC_BRCB), 16, 0, 0, NULL},
};

const rcbdef_t ied_rcbs[IED_NRCB] = {
    {"MeasRCB01", "MeasRCB", 0, false},      {"MeasRCB02", "MeasRCB", 0, false},
    {"MeasRCB03", "MeasRCB", 0, false},      {"MeasRCB04", "MeasRCB", 0, false},
    {"MeasRCB05", "MeasRCB", 0, false},      {"MeasRCB06", "MeasRCB", 0, false},
    {"MeasRCB07", "MeasRCB", 0, false},      {"MeasRCB08", "MeasRCB", 0, false},
    {"MeasRCB09", "MeasRCB", 0, false},      {"MeasRCB10", "MeasRCB", 0, false},
    {"EventsRCB01", "EventsRCB", 1, false},  {"EventsRCB02", "EventsRCB", 1, false},
    {"StatusRCB01", "StatusRCB", 2, false},  {"StatusRCB02", "StatusRCB", 2, false},
    {"MeasBRCB01", "MeasBRCB", 0, true},     {"EventsBRCB01", "EventsBRCB", 1, true},
    {"StatusBRCB01", "StatusBRCB", 2, true},
};

const dsdef_t ied_ds[IED_NDS] = {
    {"Measurements",
     {"MMXU1$MX$PhV", "MMXU1$MX$PPV", "MMXU1$MX$A", "MMXU1$MX$Hz", "MMXU1$MX$TotW",
      "MMXU1$MX$TotVAr", "MMXU1$MX$TotVA", "MMXU1$MX$TotPF", "MSQI1$MX$ImbNgV"},
     9},
    {"Events",
     {"QVVR1$ST$DipStr", "QVVR1$ST$SwlStr", "QVVR1$ST$IntrStr", "QVVR1$MX$VVa", "QVVR1$MX$VVaPct",
      "QVVR1$MX$VVaTm", "QVVR1$ST$EvtCnt"},
     7},
    {"Status",
     {"LLN0$ST$Health", "LPHD1$ST$PhyHealth", "GGIO1$MX$AnIn1", "GGIO1$MX$AnIn2", "GGIO1$MX$AnIn3",
      "STMP1$MX$Tmp"},
     6},
};
static const dodef_t LPHD_DO[] = {
    DO("PhyNam", "DPL", CDC_DPL, -1, 0, 0, "GS_DPL"),
    DO("PhyHealth", "ENS", CDC_ENS, P_PHYHEALTH, 0, 0, "GS_ENS_Health"),
    DO("Proxy", "SPS", CDC_SPS, P_PROXY, 0, 0, "GS_SPS"),
};
static const dodef_t MMXU_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("TotW", "MV", CDC_MV, P_TOTW, SI_W, 0, "GS_MV_W"),
    DO("TotVAr", "MV", CDC_MV, P_TOTVAR, SI_VAR, 0, "GS_MV_VAr"),
    DO("TotVA", "MV", CDC_MV, P_TOTVA, SI_VA, 0, "GS_MV_VA"),
    DO("TotPF", "MV", CDC_MV, P_TOTPF, SI_COSPHI, 0, "GS_MV_PF"),
    DO("Hz", "MV", CDC_MV, P_HZ, SI_HZ, 0, "GS_MV_Hz"),
    DO("PPV", "DEL", CDC_DEL, P_PPV, SI_V, 0, "GS_DEL_V"),
    DO("PhV", "WYE", CDC_WYE3, P_PHV, SI_V, 0, "GS_WYE_V"),
    DO("A", "WYE", CDC_WYE4, P_A, SI_A, 0, "GS_WYE_A"),
    DO("W", "WYE", CDC_WYE3, P_W, SI_W, 0, "GS_WYE_W"),
    DO("VAr", "WYE", CDC_WYE3, P_VAR, SI_VAR, 0, "GS_WYE_VAr"),
    DO("VA", "WYE", CDC_WYE3, P_VA, SI_VA, 0, "GS_WYE_VA"),
    DO("PF", "WYE", CDC_WYE3, P_PF, SI_COSPHI, 0, "GS_WYE_PF"),
};

static const dodef_t GGIO_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("AnIn1", "MV", CDC_MV, P_SUPPLY, SI_V, 0, "GS_MV_V"),
    DO("AnIn2", "MV", CDC_MV, P_RSRP, SI_NONE, 0, "GS_MV_none"),
    DO("AnIn3", "MV", CDC_MV, P_RSSI, SI_NONE, 0, "GS_MV_none"),
};
static const dodef_t STMP_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("Tmp", "MV", CDC_MV, P_TMP, SI_DEGC, 0, "GS_MV_degC"),
};
static const dodef_t MMXU2_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("Hz", "MV", CDC_MV, P_SYNHZ, SI_HZ, 0, "GS_MV_Hz"),
    DO("HzRte", "MV", CDC_MV, P_SYNROCOF, SI_HZS, 0, "GS_MV_HzRte"),
    DO("PhV", "WYE", CDC_WYE3, P_SYNV, SI_V, 0, "GS_WYE_V"),
    DO("A", "WYE", CDC_WYE4, P_SYNA, SI_A, 0, "GS_WYE_A"),
};
static const dodef_t MSQI1_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("SeqV", "SEQ", CDC_SEQ, P_SEQV, SI_V, 0, "GS_SEQ_V"),
    DO("SeqA", "SEQ", CDC_SEQ, P_SEQA, SI_A, 0, "GS_SEQ_A"),
    DO("ImbNgV", "MV", CDC_MV, P_IMBNGV, SI_NONE, 0, "GS_MV_none"),
    DO("ImbZroV", "MV", CDC_MV, P_IMBZROV, SI_NONE, 0, "GS_MV_none"),
    DO("ImbNgA", "MV", CDC_MV, P_IMBNGA, SI_NONE, 0, "GS_MV_none"),
    DO("ImbZroA", "MV", CDC_MV, P_IMBZROA, SI_NONE, 0, "GS_MV_none"),
};
static const dodef_t MSQI2_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("SeqV", "SEQ", CDC_SEQ, P_SYNSEQV, SI_V, 0, "GS_SEQ_V"),
    DO("SeqA", "SEQ", CDC_SEQ, P_SYNSEQA, SI_A, 0, "GS_SEQ_A"),
};
static const dodef_t MHAI_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("HPhV", "HWYE", CDC_HWYE3, P_HPHV, SI_V, 0, "GS_HWYE_V"),
    DO("HA", "HWYE", CDC_HWYE4, P_HA, SI_A, 0, "GS_HWYE_A"),
    DO("ThdPhV", "WYE", CDC_WYE3, P_THDPHV, SI_NONE, 0, "GS_WYE_none"),
    DO("ThdA", "WYE", CDC_WYE4, P_THDA, SI_NONE, 0, "GS_WYE4_none"),
};
static const dodef_t QVVR_DO[] = {
    DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),
    DO("DipStr", "ACT", CDC_ACT, P_EVDIP, 0, 0, "GS_ACT"),
    DO("SwlStr", "ACT", CDC_ACT, P_EVSWL, 0, 0, "GS_ACT"),
    DO("IntrStr", "ACT", CDC_ACT, P_EVINTR, 0, 0, "GS_ACT"),
    DO("VVa", "MV", CDC_MV, P_EVVA, SI_V, 0, "GS_MV_V"),
    DO("VVaPct", "MV", CDC_MV, P_EVVAPCT, SI_NONE, 0, "GS_MV_none"),
    DO("VVaTm", "MV", CDC_MV, P_EVTM, SI_S, 0, "GS_MV_s"),
    DO("EvtCnt", "INS", CDC_INS, P_EVCNT, 0, 0, "GS_INS"),
};
#define TVTR_DO(n)                                                                                 \
    static const dodef_t TVTR##n##_DO[] = {                                                        \
        DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),                                      \
        DO("Rat", "ASG", CDC_ASG, P_VRAT, SI_NONE, 0, "GS_ASG_none"),                              \
        DO("VRtg", "ASG", CDC_ASG, P_VRTG, SI_V, 0, "GS_ASG_V"),                                   \
        DO("HzRtg", "ASG", CDC_ASG, P_HZRTG, SI_HZ, 0, "GS_ASG_Hz"),                               \
        DO("SecV", "MV", CDC_MV, P_SECV + n - 1, SI_V, 0, "GS_MV_V"),                              \
    }
#define TCTR_DO(n)                                                                                 \
    static const dodef_t TCTR##n##_DO[] = {                                                        \
        DO("Beh", "ENS", CDC_ENS, P_BEH, 0, 0, "GS_ENS_Beh"),                                      \
        DO("Rat", "ASG", CDC_ASG, P_ARAT, SI_NONE, 0, "GS_ASG_none"),                              \
        DO("HzRtg", "ASG", CDC_ASG, P_HZRTG, SI_HZ, 0, "GS_ASG_Hz"),                               \
        DO("SecA", "MV", CDC_MV, P_SECA + n - 1, SI_A, 0, "GS_MV_A"),                              \
    }
TVTR_DO(1);
TVTR_DO(2);
TVTR_DO(3);
TCTR_DO(1);
TCTR_DO(2);
TCTR_DO(3);

const lndef_t ied_lns[] = {
    {"LLN0", "LLN0", "", "GS_LLN0", "logical device of one terminal", LLN0_DO, N(LLN0_DO)},
    {"LPHD1", "LPHD", "1", "GS_LPHD", "the terminal as a physical device", LPHD_DO, N(LPHD_DO)},
    {"GGIO1", "GGIO", "1", "GS_GGIO", "terminal status: supply V, RSRP, RSSI", GGIO_DO, N(GGIO_DO)},
    {"STMP1", "STMP", "1", "GS_STMP", "terminal board temperature", STMP_DO, N(STMP_DO)},
    {"MMXU1", "MMXU", "1", "GS_MMXU1", "measurements, primary side", MMXU_DO, N(MMXU_DO)},
    {"MMXU2", "MMXU", "2", "GS_MMXU2", "synchrophasors (C37.118), primary side", MMXU2_DO,
     N(MMXU2_DO)},
    {"MSQI1", "MSQI", "1", "GS_MSQI1", "sequence and imbalance", MSQI1_DO, N(MSQI1_DO)},
    {"MSQI2", "MSQI", "2", "GS_MSQI2", "synchrophasor positive sequence", MSQI2_DO, N(MSQI2_DO)},
    {"MHAI1", "MHAI", "1", "GS_MHAI", "harmonics (IEC 61000-4-7 groups)", MHAI_DO, N(MHAI_DO)},
    {"QVVR1", "QVVR", "1", "GS_QVVR", "voltage variations (last event)", QVVR_DO, N(QVVR_DO)},
    {"TVTR1", "TVTR", "1", "GS_TVTR", "voltage transformer phase A", TVTR1_DO, N(TVTR1_DO)},
    {"TVTR2", "TVTR", "2", "GS_TVTR", "voltage transformer phase B", TVTR2_DO, N(TVTR2_DO)},
    {"TVTR3", "TVTR", "3", "GS_TVTR", "voltage transformer phase C", TVTR3_DO, N(TVTR3_DO)},
    {"TCTR1", "TCTR", "1", "GS_TCTR", "current transformer phase A", TCTR1_DO, N(TCTR1_DO)},
    {"TCTR2", "TCTR", "2", "GS_TCTR", "current transformer phase B", TCTR2_DO, N(TCTR2_DO)},
    {"TCTR3", "TCTR", "3", "GS_TCTR", "current transformer phase C", TCTR3_DO, N(TCTR3_DO)},
};
const size_t ied_nlns = sizeof ied_lns / sizeof ied_lns[0];

/* ---- Names ------------------------------------------------------------------------------------
 */

int ied_name_cmp(const char *a, const char *b)
{
    /* '$' sorts before every other identifier character, so comparing whole strings
     * case-insensitively orders component by component, as the captures' server lists them. */
    const char *x = a, *y = b;
    for (;; x++, y++) {
        int cx = tolower((unsigned char)*x), cy = tolower((unsigned char)*y);
        if (cx == '$')
            cx = 1;
        if (cy == '$')
            cy = 1;
        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (!cx)
            break;
    }
    return strcmp(a, b);
}

int ied_ldinst_from_id(const char *id, char *out, size_t cap)
{
    size_t n = 0;
    if (!id || !*id)
        return GS_EINVAL;
    for (const char *p = id; *p; p++) {
        char c = *p;
        const char *rep;
        char one[2] = {c, 0};
        if (isalnum((unsigned char)c) && (unsigned char)c < 0x80)
            rep = one;
        else if (c == '-')
            rep = "_M";
        else if (c == '.')
            rep = "_D";
        else
            return GS_EINVAL;
        size_t l = strlen(rep);
        if (n + l + 1 > cap)
            return GS_ELIMIT;
        memcpy(out + n, rep, l);
        n += l;
    }
    out[n] = 0;
    return (int)n;
}

int ied_id_from_ldinst(const char *inst, char *out, size_t cap)
{
    size_t n = 0;
    if (!inst || !*inst)
        return GS_EINVAL;
    for (const char *p = inst; *p; p++) {
        char c = *p;
        if (c == '_') {
            if (p[1] == 'M')
                c = '-';
            else if (p[1] == 'D')
                c = '.';
            else
                return GS_EINVAL;
            p++;
        } else if (!(isalnum((unsigned char)c) && (unsigned char)c < 0x80)) {
            return GS_EINVAL;
        }
        if (n + 2 > cap)
            return GS_ELIMIT;
        out[n++] = c;
    }
    out[n] = 0;
    return (int)n;
}

/* IED name: an SCL tIEDName ([A-Za-z][A-Za-z0-9_]*), at most 32 characters here (so that the
 * IED name and an LD inst fit the 64 characters of an MMS domain name for ids of up to 16
 * characters with two escapes; longer ids are checked one by one). */
static int valid_ied_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32 || !isalpha((unsigned char)s[0]) || (unsigned char)s[0] >= 0x80)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((isalnum((unsigned char)s[i]) && (unsigned char)s[i] < 0x80) || s[i] == '_'))
            return 0;
    return 1;
}

/* ---- The FC-constrained view ------------------------------------------------------------------
 */

static int has_fc(const tnode_t *t, int fc, int inherited)
{
    int f = t->fc == FC_INH ? inherited : t->fc;
    if (t->bt != BT_STRUCT && t->bt != BT_ARRAY)
        return f == fc;
    for (int i = 0; i < t->nk; i++)
        if (has_fc(&t->k[i], fc, f))
            return 1;
    return 0;
}

static void free_node(mnode_t *n)
{
    for (int i = 0; i < n->nk; i++)
        free_node(&n->kids[i]);
    free(n->kids);
    n->kids = NULL;
    n->nk = 0;
}

/* Fills `out` as the part of type t (a DA or sub-DO of DO dd at point `point`) with FC fc. */
static int build_da(mnode_t *out, const tnode_t *t, const dodef_t *dd, int point, int fc,
                    int inherited)
{
    int f = t->fc == FC_INH ? inherited : t->fc;
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->bt = t->bt;
    out->fc = (uint8_t)fc;
    out->role = t->role;
    out->size = t->size;
    out->dd = dd;
    out->tn = t;
    out->point = t->sub >= 0 ? point + t->sub : point;
    if (t->bt != BT_STRUCT && t->bt != BT_ARRAY)
        return 0;
    int n = 0;
    for (int i = 0; i < t->nk; i++)
        n += has_fc(&t->k[i], fc, f);
    out->kids = calloc((size_t)n ? (size_t)n : 1, sizeof *out->kids);
    if (!out->kids)
        return GS_ENOMEM;
    for (int i = 0; i < t->nk; i++) {
        if (!has_fc(&t->k[i], fc, f))
            continue;
        int rc = build_da(&out->kids[out->nk++], &t->k[i], dd, out->point, fc, f);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* FC of a report control block entry of LLN0 (its leaves inherit it), or -1. */
static int rcb_fc(const dodef_t *d)
{
    if (!strcmp(d->cdc, "URCB"))
        return FC_RP;
    if (!strcmp(d->cdc, "BRCB"))
        return FC_BR;
    return -1;
}

static int type_has_fc(const dodef_t *d, int fc, int nk)
{
    if (rcb_fc(d) >= 0)
        return rcb_fc(d) == fc;
    for (int i = 0; i < nk; i++)
        if (has_fc(&d->type[i], fc, FC_INH))
            return 1;
    return 0;
}

static int do_nk(const dodef_t *d)
{
    return d->nt;
}

static int build_ln(mnode_t *ln, const lndef_t *def)
{
    memset(ln, 0, sizeof *ln);
    ln->name = def->name;
    ln->bt = BT_STRUCT;
    ln->point = -1;
    ln->fc = FC_INH;
    ln->kids = calloc(FC_N, sizeof *ln->kids);
    if (!ln->kids)
        return GS_ENOMEM;
    for (int fc = 0; fc < FC_N; fc++) {
        int ndo = 0;
        for (int i = 0; i < def->ndo; i++)
            ndo += type_has_fc(&def->dos[i], fc, do_nk(&def->dos[i]));
        if (!ndo)
            continue;
        mnode_t *f = &ln->kids[ln->nk++];
        f->name = ied_fc_name[fc];
        f->bt = BT_STRUCT;
        f->fc = (uint8_t)fc;
        f->point = -1;
        f->kids = calloc((size_t)ndo, sizeof *f->kids);
        if (!f->kids)
            return GS_ENOMEM;
        for (int i = 0; i < def->ndo; i++) {
            const dodef_t *d = &def->dos[i];
            int nk = do_nk(d);
            if (!type_has_fc(d, fc, nk))
                continue;
            mnode_t *dn = &f->kids[f->nk++];
            dn->name = d->name;
            dn->bt = BT_STRUCT;
            dn->fc = (uint8_t)fc;
            dn->point = d->point;
            dn->dd = d;
            int nsel = 0, inh = rcb_fc(d) >= 0 ? fc : FC_INH;
            for (int j = 0; j < nk; j++)
                nsel += has_fc(&d->type[j], fc, inh);
            dn->kids = calloc((size_t)nsel, sizeof *dn->kids);
            if (!dn->kids)
                return GS_ENOMEM;
            for (int j = 0; j < nk; j++) {
                if (!has_fc(&d->type[j], fc, inh))
                    continue;
                int rc = build_da(&dn->kids[dn->nk++], &d->type[j], d, d->point, fc, inh);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* Appends every name below n (prefix$name) to the model's name list. */
static int collect_names(ied_t *m, const mnode_t *n, const char *prefix, size_t *cap)
{
    char buf[160];
    int l = prefix ? snprintf(buf, sizeof buf, "%s$%s", prefix, n->name)
                   : snprintf(buf, sizeof buf, "%s", n->name);
    if (l < 0 || (size_t)l >= sizeof buf)
        return GS_ELIMIT;
    if (m->nnames == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        char **nn = realloc(m->names, nc * sizeof *nn);
        if (!nn)
            return GS_ENOMEM;
        m->names = nn;
        *cap = nc;
    }
    m->names[m->nnames] = strdup(buf);
    if (!m->names[m->nnames])
        return GS_ENOMEM;
    m->nnames++;
    /* array elements have no names of their own (8-1: reached by alternate access) */
    for (int i = 0; n->bt != BT_ARRAY && i < n->nk; i++) {
        int rc = collect_names(m, &n->kids[i], buf, cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return ied_name_cmp(*(const char *const *)a, *(const char *const *)b);
}

const mnode_t *ied_node_find(const ied_t *m, const char *item, size_t len)
{
    const mnode_t *cur = NULL;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && item[j] != '$')
            j++;
        size_t cl = j - i;
        const mnode_t *kids = cur ? cur->kids : m->lns;
        size_t nk = cur ? cur->nk : m->nln;
        const mnode_t *hit = NULL;
        if (cur && cur->bt == BT_ARRAY)
            return NULL;
        for (size_t k = 0; k < nk; k++)
            if (cl && strlen(kids[k].name) == cl && !memcmp(kids[k].name, item + i, cl)) {
                hit = &kids[k];
                break;
            }
        if (!hit)
            return NULL;
        cur = hit;
        i = j + 1;
        if (j == len)
            break;
    }
    return cur;
}

/* ---- Model ------------------------------------------------------------------------------------
 */

void ied_opts_default(ied_opts_t *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->ied_name, sizeof o->ied_name, "GRIDSENSE");
    snprintf(o->vendor, sizeof o->vendor, "gridsense");
    snprintf(o->model, sizeof o->model, "gridsense");
}

static void free_ld(ied_t *m, ld_t *ld)
{
    ied_rcb_free_ld(m, ld);            /* its report control blocks stop with it */
    for (int k = 0; k < ld->ndyn; k++) /* and its dynamic lists go */
        free(ld->dyn[k].m);
    free(ld);
}

void ied_free(ied_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nld; i++)
        free_ld(m, m->lds[i]);
    free(m->lds);
    for (size_t i = 0; i < m->nln; i++)
        free_node(&m->lns[i]);
    free(m->lns);
    for (size_t i = 0; i < m->nnames; i++)
        free(m->names[i]);
    free(m->names);
    free(m->cl);
    free(m);
}

int ied_new(const ied_opts_t *o, ied_t **out, char *err, size_t errlen)
{
    int rc = GS_ENOMEM;
    size_t cap = 0;
    *out = NULL;
    if (!valid_ied_name(o->ied_name)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "ied_name \"%s\": 1..32 letters, digits or '_', starting with a letter",
                     o->ied_name);
        return GS_EINVAL;
    }
    ied_t *m = calloc(1, sizeof *m);
    if (!m)
        goto fail;
    m->o = *o;
    m->lns = calloc(ied_nlns, sizeof *m->lns);
    if (!m->lns)
        goto fail;
    for (size_t i = 0; i < ied_nlns; i++) {
        m->nln = i + 1;
        if ((rc = build_ln(&m->lns[i], &ied_lns[i])) < 0)
            goto fail;
    }
    for (size_t i = 0; i < m->nln; i++)
        if ((rc = collect_names(m, &m->lns[i], NULL, &cap)) < 0)
            goto fail;
    qsort(m->names, m->nnames, sizeof *m->names, cmp_names);
    *out = m;
    return 0;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", err_str(rc));
    ied_free(m);
    return rc;
}

size_t ied_ld_count(const ied_t *m)
{
    return m ? m->nld : 0;
}

ld_t *ied_ld_find(const ied_t *m, const char *dom, size_t len)
{
    char key[128];
    if (len >= sizeof key)
        return NULL;
    memcpy(key, dom, len);
    key[len] = 0;
    size_t lo = 0, hi = m->nld;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = ied_name_cmp(m->lds[mid]->dom, key);
        if (c == 0)
            return m->lds[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The LD of a terminal id: by its domain name (binary search; the mapping is injective). */
static ld_t *ld_by_id(const ied_t *m, const char *id)
{
    char inst[72], dom[100];
    if (ied_ldinst_from_id(id, inst, sizeof inst) < 0)
        return NULL;
    int n = snprintf(dom, sizeof dom, "%s%s", m->o.ied_name, inst);
    if (n < 0 || (size_t)n >= sizeof dom)
        return NULL;
    ld_t *ld = ied_ld_find(m, dom, (size_t)n);
    return ld && !strcmp(ld->id, id) ? ld : NULL;
}

/* TimeQuality octet (8-1 8.1.3.7) of a window's values: from the terminal's last STATUS time
 * quality and the window's time_unsync flag (docs/iec61850.md "Quality and time"). */
static uint8_t time_quality(const ld_t *ld, int unsync)
{
    int tq = ld->term.has_status ? ld->term.status.time_quality : GSTP_TQ_UNKNOWN;
    if (tq == GSTP_TQ_GPS_LOCKED && !unsync)
        return 0x80 | 20; /* leap seconds known, 2^-20 s (~1 us) */
    if (tq == GSTP_TQ_NETWORK_SYNCED || tq == GSTP_TQ_GPS_LOCKED)
        return 0x80 | 4; /* synchronised, 2^-4 s (62.5 ms) covers NTP/cellular 1-50 ms */
    if (tq == GSTP_TQ_FREE_RUNNING)
        return MMS_TQ_NOT_SYNCED | 31; /* 31: accuracy unspecified */
    /* unknown source: the window flag is all we know (time_unsync = not GPS-locked) */
    return unsync ? (MMS_TQ_NOT_SYNCED | 31) : (0x80 | 20);
}

static void setp(point_t *p, double mag, double ang, int64_t t, uint8_t tq, uint16_t q)
{
    p->mag = mag;
    p->ang = ang;
    p->t_ns = t;
    p->tq = tq;
    p->q = q;
}

/* Status points of the LD from its terminal's state. */
static void set_status(ld_t *ld, int64_t now_ns, int first)
{
    int online = ld->term.online != 0;
    int64_t t = ld->state_ns ? ld->state_ns : now_ns;
    const int health = online ? 1 : 3; /* 7-3 Health: 1 Ok, 3 Alarm */
    if (first || ld->pts[P_HEALTH].ival != health)
        t = now_ns;
    ld->state_ns = t;
    /* The server's own knowledge of the terminal: its clock, time quality of a synchronised
     * server (the time the server saw the change). */
    struct {
        int p;
        int64_t v;
    } st[] = {{P_MOD, 1}, {P_BEH, 1}, {P_HEALTH, health}, {P_PHYHEALTH, health}, {P_PROXY, 1}};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        point_t *p = &ld->pts[st[i].p];
        p->ival = st[i].v;
        p->q = 0;
        p->t_ns =
            (st[i].p == P_HEALTH || st[i].p == P_PHYHEALTH) ? t : (p->t_ns ? p->t_ns : now_ns);
        p->tq = 0x80 | 10; /* leap seconds known, ~1 ms (2^-10 s) */
    }
    /* provisioned settings (TVTR/TCTR ASG: no quality or time of their own) */
    double vt = ld->term.vt_ratio > 0 ? ld->term.vt_ratio : 1;
    double ct = ld->term.ct_ratio > 0 ? ld->term.ct_ratio : 1;
    ld->pts[P_VRAT].mag = vt;
    ld->pts[P_ARAT].mag = ct;
    ld->pts[P_VRTG].mag = ld->term.declared_v > 0 ? ld->term.declared_v * vt : 0;
    ld->pts[P_HZRTG].mag = ld->term.nominal_hz;
    /* the terminal's last STATUS: its own time and time quality */
    const gstp_status_t *st2 = &ld->term.status;
    int hs = ld->term.has_status;
    int64_t ts = hs && st2->time_ns > 0 ? st2->time_ns : 0;
    uint8_t tq = time_quality(ld, 0);
    setp(&ld->pts[P_TMP], hs && st2->temp_c10 != GSTP_NA_I16 ? st2->temp_c10 / 10.0 : 0, 0, ts, tq,
         hs && st2->temp_c10 != GSTP_NA_I16 ? 0 : Q_INVALID);
    setp(&ld->pts[P_SUPPLY], hs && st2->supply_mv != GSTP_NA_U16 ? st2->supply_mv / 1000.0 : 0, 0,
         ts, tq, hs && st2->supply_mv != GSTP_NA_U16 ? 0 : Q_INVALID);
    setp(&ld->pts[P_RSRP], hs && st2->rsrp_dbm != GSTP_NA_I16 ? st2->rsrp_dbm : 0, 0, ts, tq,
         hs && st2->rsrp_dbm != GSTP_NA_I16 ? 0 : Q_INVALID);
    setp(&ld->pts[P_RSSI], hs && st2->rssi_dbm != GSTP_NA_I16 ? st2->rssi_dbm : 0, 0, ts, tq,
         hs && st2->rssi_dbm != GSTP_NA_I16 ? 0 : Q_INVALID);
}

typedef struct {
    ld_t *ld;
    size_t src; /* index in the caller's list */
    bool fresh; /* created by this pass */
} setent_t;

static int cmp_ent(const void *a, const void *b)
{
    return ied_name_cmp(((const setent_t *)a)->ld->dom, ((const setent_t *)b)->ld->dom);
}

int ied_set_terminals(ied_t *m, const ied_terminal_t *list, size_t n, int64_t now_ns)
{
    /* O(n log n): old LDs are found by binary search and marked with this pass's generation */
    setent_t *e = calloc(n ? n : 1, sizeof *e);
    ld_t **nl = calloc(n ? n : 1, sizeof *nl);
    size_t ne = 0, nn = 0;
    uint64_t gen = m->gen + 1;
    if (!e || !nl)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        char inst[72], dom[100];
        if (ied_ldinst_from_id(list[i].id, inst, sizeof inst) < 0)
            continue;
        if ((size_t)snprintf(dom, sizeof dom, "%s%s", m->o.ied_name, inst) > 64)
            continue; /* not representable: domain names are at most 64 characters */
        ld_t *old = ld_by_id(m, list[i].id);
        if (old) {
            if (old->gen != gen) /* else listed twice: the first entry counts */
                e[ne++] = (setent_t){old, i, false};
            old->gen = gen;
            continue;
        }
        ld_t *ld = calloc(1, sizeof *ld);
        if (!ld)
            goto nomem;
        snprintf(ld->id, sizeof ld->id, "%s", list[i].id);
        snprintf(ld->inst, sizeof ld->inst, "%s", inst);
        snprintf(ld->dom, sizeof ld->dom, "%s", dom);
        ld->gen = gen;
        for (int p = 0; p < P_N; p++)
            ld->pts[p].q = Q_INVALID;            /* no value yet */
        for (int p = P_EVDIP; p <= P_EVCNT; p++) /* no event yet: FALSE, count 0 */
            if (p <= P_EVINTR || p == P_EVCNT)
                setp(&ld->pts[p], 0, 0, now_ns, 0x80 | 10, 0);
        ied_rcb_init(m, ld, now_ns);
        e[ne++] = (setent_t){ld, i, true};
    }
    qsort(e, ne, sizeof *e, cmp_ent);
    /* commit: nothing can fail from here */
    m->gen = gen;
    for (size_t k = 0; k < ne; k++) {
        if (nn && !strcmp(nl[nn - 1]->dom, e[k].ld->dom)) { /* a new id listed twice */
            free_ld(m, e[k].ld);
            continue;
        }
        ld_t *ld = e[k].ld;
        int first = ld->state_ns == 0;
        ld->term = list[e[k].src];
        set_status(ld, now_ns, first);
        nl[nn++] = ld;
    }
    for (size_t j = 0; j < m->nld; j++)
        if (m->lds[j]->gen != gen)
            free_ld(m, m->lds[j]);
    free(m->lds);
    free(e);
    m->lds = nl;
    m->nld = nn;
    if (now_ns > m->now_ns)
        m->now_ns = now_ns;
    for (size_t i = 0; i < nn; i++) /* health, status readings may have changed */
        ied_rcb_changed(m, nl[i], now_ns);
    return 0;
nomem:
    for (size_t k = 0; e && k < ne; k++)
        if (e[k].fresh)
            free(e[k].ld);
    for (size_t j = 0; j < m->nld; j++) /* the old LDs stay as they were */
        m->lds[j]->gen = m->gen;
    free(e);
    free(nl);
    return GS_ENOMEM;
}

uint16_t ied_point_q(const ld_t *ld, int point)
{
    const point_t *p = &ld->pts[point];
    uint16_t q = p->q;
    if (point >= P_MOD || (point >= P_EVDIP && point <= P_EVCNT))
        return q; /* the server's own status and settings; past events stay what they were */
    /* 7-3 6.2: a value that is not being updated (terminal offline) is questionable, oldData;
     * an invalid one stays invalid. */
    if (!ld->term.online && (q & Q_VALIDITY) != Q_INVALID)
        q = (uint16_t)((q & ~Q_VALIDITY) | Q_QUESTIONABLE | Q_OLDDATA);
    return q;
}

/* ---- Latest values ----------------------------------------------------------------------------
 */

static int jnum(json_t *o, const char *k, double *v)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_number(x))
        return 0;
    *v = json_number_value(x);
    return isfinite(*v);
}

static json_t *channel(json_t *chs, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(chs, i, c)
    {
        json_t *n = json_object_get(c, "name");
        if (json_is_string(n) && !strcmp(json_string_value(n), name))
            return c;
    }
    return NULL;
}

static double wrap180(double d)
{
    d = fmod(d, 360.0);
    if (d > 180.0)
        d -= 360.0;
    if (d <= -180.0)
        d += 360.0;
    return d;
}

int ied_update_latest(ied_t *m, const char *terminal_id, const char *json, int64_t now_ns)
{
    ld_t *ld = ld_by_id(m, terminal_id);
    if (!ld)
        return GS_ENOTFOUND;
    json_error_t je;
    json_t *root = json_loads(json ? json : "", 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return GS_EPROTO;
    }
    json_t *tr = json_object_get(root, "t_ref_ns");
    if (!json_is_integer(tr) || json_integer_value(tr) <= 0) {
        json_decref(root);
        return GS_EPROTO;
    }
    int64_t t = json_integer_value(tr);
    int unsync = 0, freq_held = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(root, "flags"), i, f)
    {
        if (json_is_string(f) && !strcmp(json_string_value(f), "time_unsync"))
            unsync = 1;
        if (json_is_string(f) && !strcmp(json_string_value(f), "freq_held"))
            freq_held = 1;
    }
    uint8_t tq = time_quality(ld, unsync);
    double vt = ld->term.vt_ratio > 0 ? ld->term.vt_ratio : 1;
    double ct = ld->term.ct_ratio > 0 ? ld->term.ct_ratio : 1;
    point_t np[P_N];
    memcpy(np, ld->pts, sizeof np);
    /* every measured point is replaced: what this window lacks becomes invalid */
    for (int p = 0; p < P_LATEST_END; p++)
        setp(&np[p], 0, 0, t, tq, Q_INVALID);

    json_t *chs = json_object_get(root, "channels");
    static const char *const vn[3] = {"Ua", "Ub", "Uc"};
    static const char *const in[4] = {"Ia", "Ib", "Ic", "In"};
    double ref = 0, vre[3] = {0}, vim[3] = {0};
    int hasv[3] = {0};
    json_t *ua = channel(chs, "Ua");
    if (ua) {
        double d;
        if (jnum(json_object_get(ua, "fundamental"), "deg", &d))
            ref = d;
    }
    for (int k = 0; k < 3; k++) {
        json_t *c = channel(chs, vn[k]);
        double rms, fm = 0, fd = 0;
        if (!c || !jnum(c, "rms", &rms))
            continue;
        json_t *fu = json_object_get(c, "fundamental");
        int hf = jnum(fu, "mag", &fm) && jnum(fu, "deg", &fd);
        setp(&np[P_PHV + k], rms * vt, hf ? wrap180(fd - ref) : 0, t, tq, hf ? 0 : Q_INACCURATE);
        if (hf) {
            hasv[k] = 1;
            vre[k] = fm * cos(fd * M_PI / 180.0);
            vim[k] = fm * sin(fd * M_PI / 180.0);
        }
    }
    json_t *ll = json_object_get(root, "line_to_line_rms");
    for (int k = 0; k < 3; k++) {
        json_t *x = json_array_get(ll, (size_t)k);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            continue;
        int a = k, b = (k + 1) % 3;
        double ang = 0;
        uint16_t q = Q_INACCURATE;
        if (hasv[a] && hasv[b]) {
            ang = wrap180(atan2(vim[a] - vim[b], vre[a] - vre[b]) * 180.0 / M_PI - ref);
            q = 0;
        }
        setp(&np[P_PPV + k], json_number_value(x) * vt, ang, t, tq, q);
    }
    for (int k = 0; k < 4; k++) {
        json_t *c = channel(chs, in[k]);
        double rms, fd = 0;
        if (!c || !jnum(c, "rms", &rms))
            continue;
        int hf = jnum(json_object_get(c, "fundamental"), "deg", &fd);
        setp(&np[P_A + k], rms * ct, hf ? wrap180(fd - ref) : 0, t, tq, hf ? 0 : Q_INACCURATE);
    }
    json_t *pw = json_object_get(root, "power");
    json_t *ph;
    json_array_foreach(json_object_get(pw, "phases"), i, ph)
    {
        json_t *pn = json_object_get(ph, "phase");
        if (!json_is_string(pn))
            continue;
        const char *s = json_string_value(pn);
        int k = !strcmp(s, "a") ? 0 : !strcmp(s, "b") ? 1 : !strcmp(s, "c") ? 2 : -1;
        double v;
        if (k < 0)
            continue;
        if (jnum(ph, "p", &v))
            setp(&np[P_W + k], v * vt * ct, 0, t, tq, 0);
        if (jnum(ph, "q", &v))
            setp(&np[P_VAR + k], v * vt * ct, 0, t, tq, 0);
        if (jnum(ph, "s", &v))
            setp(&np[P_VA + k], v * vt * ct, 0, t, tq, 0);
        if (jnum(ph, "pf", &v))
            setp(&np[P_PF + k], v, 0, t, tq, 0);
    }
    double v;
    if (jnum(pw, "p", &v))
        setp(&np[P_TOTW], v * vt * ct, 0, t, tq, 0);
    if (jnum(pw, "q", &v))
        setp(&np[P_TOTVAR], v * vt * ct, 0, t, tq, 0);
    if (jnum(pw, "s_eff", &v))
        setp(&np[P_TOTVA], v * vt * ct, 0, t, tq, 0);
    if (jnum(pw, "pf", &v))
        setp(&np[P_TOTPF], v, 0, t, tq, 0);
    if (jnum(root, "freq", &v))
        setp(&np[P_HZ], v, 0, t, tq, freq_held ? (Q_QUESTIONABLE | Q_OLDDATA) : 0);
    /* MSQI1: sequence components (c2/c3 angles are not computed: 0, inaccurate) */
    static const char *const seqn[2] = {"voltage_sequence", "current_sequence"};
    for (int k = 0; k < 2; k++) {
        json_t *sq = json_object_get(root, seqn[k]);
        double sc = k ? ct : vt, pos, neg, zer, deg = 0, pct;
        int base = k ? P_SEQA : P_SEQV;
        if (!json_is_object(sq))
            continue;
        int hd = jnum(sq, "positive_deg", &deg);
        if (jnum(sq, "positive", &pos))
            setp(&np[base], pos * sc, hd ? wrap180(deg - ref) : 0, t, tq, hd ? 0 : Q_INACCURATE);
        if (jnum(sq, "negative", &neg))
            setp(&np[base + 1], neg * sc, 0, t, tq, Q_INACCURATE);
        if (jnum(sq, "zero", &zer))
            setp(&np[base + 2], zer * sc, 0, t, tq, Q_INACCURATE);
        if (jnum(sq, "unbalance_neg_pct", &pct))
            setp(&np[k ? P_IMBNGA : P_IMBNGV], pct, 0, t, tq, 0);
        if (jnum(sq, "unbalance_zero_pct", &pct))
            setp(&np[k ? P_IMBZROA : P_IMBZROV], pct, 0, t, tq, 0);
    }
    /* MHAI1 (harmonic groups h = 0..50, angles relative to the fundamental), THD; TVTR/TCTR
     * secondary RMS */
    static const char *const hn[7] = {"Ua", "Ub", "Uc", "Ia", "Ib", "Ic", "In"};
    for (int k = 0; k < 7; k++) {
        json_t *c = channel(chs, hn[k]);
        int isv = k < 3;
        double sc = isv ? vt : ct, x;
        int hb = isv ? P_HPHV + k * IED_NHARM : P_HA + (k - 3) * IED_NHARM;
        if (!c)
            continue;
        json_t *hg = json_object_get(c, "harmonic_groups");
        json_t *ha = json_object_get(c, "harmonic_angles_deg");
        for (int h = 0; h < IED_NHARM; h++) {
            json_t *mv = json_array_get(hg, (size_t)h);
            if (!json_is_number(mv) || !isfinite(json_number_value(mv)))
                continue;
            json_t *av = json_array_get(ha, (size_t)h);
            int hasang = json_is_number(av) && isfinite(json_number_value(av));
            setp(&np[hb + h], json_number_value(mv) * sc, hasang ? json_number_value(av) : 0, t, tq,
                 hasang || h == 0 ? 0 : Q_INACCURATE);
        }
        if (jnum(c, "thd_pct", &x))
            setp(&np[isv ? P_THDPHV + k : P_THDA + (k - 3)], x, 0, t, tq, 0);
        if (jnum(c, "rms", &x) && k < 6)
            setp(&np[isv ? P_SECV + k : P_SECA + (k - 3)], x, 0, t, tq, 0);
    }
    /* MMXU2 / MSQI2: the latest synchrophasor report, absolute angles (UTC cosine reference) */
    json_t *ph2 = json_object_get(root, "phasor");
    json_t *pt = json_object_get(ph2, "t_ns");
    if (json_is_object(ph2) && json_is_integer(pt) && json_integer_value(pt) > 0) {
        int64_t tp = json_integer_value(pt);
        int un = 0;
        json_array_foreach(json_object_get(ph2, "flags"), i, f)
        {
            if (json_is_string(f) && !strcmp(json_string_value(f), "time_unsync"))
                un = 1;
        }
        uint8_t tqp = time_quality(ld, un);
        json_t *pp = json_object_get(ph2, "phasors");
        for (int k = 0; k < 7; k++) {
            json_t *c = json_object_get(pp, hn[k]);
            double mg, dg;
            if (!jnum(c, "mag", &mg) || !jnum(c, "deg", &dg))
                continue;
            setp(&np[k < 3 ? P_SYNV + k : P_SYNA + (k - 3)], mg * (k < 3 ? vt : ct), wrap180(dg),
                 tp, tqp, 0);
        }
        if (jnum(ph2, "freq", &v))
            setp(&np[P_SYNHZ], v, 0, tp, tqp, 0);
        if (jnum(ph2, "rocof", &v))
            setp(&np[P_SYNROCOF], v, 0, tp, tqp, 0);
        static const char *const sn[2] = {"v1", "i1"};
        for (int k = 0; k < 2; k++) {
            json_t *c = json_object_get(ph2, sn[k]);
            double mg, dg;
            if (jnum(c, "mag", &mg) && jnum(c, "deg", &dg))
                setp(&np[k ? P_SYNSEQA : P_SYNSEQV], mg * (k ? ct : vt), wrap180(dg), tp, tqp, 0);
        }
    }
    memcpy(ld->pts, np, sizeof np);
    json_decref(root);
    if (now_ns > m->now_ns)
        m->now_ns = now_ns;
    ied_rcb_changed(m, ld, now_ns);
    return 0;
}

int ied_add_event(ied_t *m, const char *terminal_id, const char *json, int64_t now_ns)
{
    ld_t *ld = ld_by_id(m, terminal_id);
    if (!ld)
        return GS_ENOTFOUND;
    json_t *root = json_loads(json ? json : "", 0, NULL);
    json_t *k = json_object_get(root, "kind"), *st = json_object_get(root, "start_ns");
    double dur, va = 0, pct = 0;
    if (!json_is_object(root) || !json_is_string(k) || !json_is_integer(st) ||
        json_integer_value(st) <= 0 || !jnum(root, "duration_s", &dur)) {
        json_decref(root);
        return GS_EPROTO;
    }
    const char *kind = json_string_value(k);
    int which = !strcmp(kind, "dip")            ? 0
                : !strcmp(kind, "swell")        ? 1
                : !strcmp(kind, "interruption") ? 2
                                                : -1;
    if (which < 0) {
        json_decref(root);
        return GS_EPROTO;
    }
    /* residual (dip, interruption) or maximum (swell), secondary V and % of the reference */
    const char *vk = which == 1 ? "maximum" : "residual";
    char pk[24];
    snprintf(pk, sizeof pk, "%s_pct", vk);
    int hv = jnum(root, vk, &va), hp = jnum(root, pk, &pct);
    int64_t t = json_integer_value(st);
    uint8_t tq = time_quality(ld, 0);
    double vt = ld->term.vt_ratio > 0 ? ld->term.vt_ratio : 1;
    for (int i = 0; i < 3; i++) {
        point_t *p = &ld->pts[P_EVDIP + i];
        p->ival = i == which;
        p->q = 0;
        p->t_ns = t;
        p->tq = tq;
    }
    setp(&ld->pts[P_EVVA], va * vt, 0, t, tq, hv ? 0 : Q_INVALID);
    setp(&ld->pts[P_EVVAPCT], pct, 0, t, tq, hp ? 0 : Q_INVALID);
    setp(&ld->pts[P_EVTM], dur, 0, t, tq, 0);
    point_t *c = &ld->pts[P_EVCNT];
    c->ival++;
    c->q = 0;
    c->t_ns = t;
    c->tq = tq;
    json_decref(root);
    if (now_ns > m->now_ns)
        m->now_ns = now_ns;
    ied_rcb_changed(m, ld, now_ns);
    return 0;
}
