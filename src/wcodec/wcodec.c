/* wcodec — lossless waveform codec (GSTP codecs 1 and 2). See wcodec.h; the bitstream is
 * specified in docs/protocol.md, Appendix A (codec 2, the block model: A.11).
 *
 * Structure of a segment (all details in the spec):
 *   byte header: shape byte, varint n-1, varint period P, varint payload length;
 *   payload, MSB-first bits, per channel: the block's first sample (segments at set 0 only),
 *   up to two LPC definitions, the partition order, then per partition (sub-block) its
 *   predictor and Rice parameter (relative to the previous partition's) or an escape to
 *   fixed-width two's complement, and the residuals; zero bits pad the payload to a whole byte.
 * Sets before set 0 of the block read as set 0, so every predictor is defined for every set.
 * Codec 2 model segments (shape bit 5) also carry a phase step F at the payload's start and,
 * per channel after its warm-up, H harmonics' integer sine/cosine coefficients; predictor 0 is
 * then the model, synthesized exactly from a constant Q30 sine table (int64, A.11).
 *
 * Portability: C99, no allocation, no global mutable state, no floating point in the decoder
 * (the encoder's least-squares fits use double). All prediction is done in int64_t on values
 * bounded well below 2^62 (samples < 2^31, coefficients < 2^15, at most 37 taps), residuals
 * and results are range-checked, so nothing overflows on any input. Right shifts of negative
 * values are done on unsigned values (floor division by a power of two) to stay clear of
 * implementation-defined behaviour.
 */
#include "wcodec.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- limits of the bitstream (docs/protocol.md, Codec 1) ---- */
#define MAX_PERIOD   2047 /* P: one-cycle-back lag in sets */
#define MAX_SHORT    31   /* LPC short-term order */
#define MAX_LONG     6    /* LPC taps around lags P and 2P */
#define MAX_TAPS     (MAX_SHORT + MAX_LONG)
#define MAX_LAG      (2 * MAX_PERIOD + 1)
#define MAX_LPC      2    /* LPC predictors defined per channel and segment */
#define MAX_PORDER   8    /* at most 256 Rice partitions (sub-blocks) per channel */
#define MIN_PART     16   /* the encoder's smallest partition */
#define LPC_MAG      15   /* the encoder's LPC coefficients: most magnitude bits of the widest */
#define MAX_PARTS    (1 << MAX_PORDER)
#define RICE_ESCAPE  31   /* Rice parameter value announcing fixed-width residuals */
#define MAX_ESC_BITS 40   /* widest escaped residual */
#define MAX_U_BITS   40   /* zigzagged residuals are < 2^40 */
#define HDR_MAX      10   /* shape byte + 3 varints of at most 3 bytes each */

/* Keeps a function out of line (stack frames of alternative paths not merged). */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* Predictor ids of a partition (3 bits). */
enum { P_ZERO = 0, P_ORD1, P_ORD2, P_ORD3, P_CYCLE, P_CYCLE_D1, P_LPC0, P_LPC1, P_COUNT };

/* ---- small helpers ---- */

/* Two's complement value of a 32-bit pattern, without implementation-defined conversions. */
static int32_t u2i32(uint32_t u)
{
    return u >= 0x80000000u ? -(int32_t)(~u) - 1 : (int32_t)u;
}

static int32_t u2i16(uint32_t u)
{
    return (int32_t)((u & 0xFFFFu) ^ 0x8000u) - 32768; /* no branch */
}

static int32_t rd_sample(const uint8_t *p, int fmt)
{
    if (fmt == 1)
        return u2i16((uint32_t)p[0] | (uint32_t)p[1] << 8);
    return u2i32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24);
}

static void wr_sample(uint8_t *p, int fmt, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    if (fmt == 2) {
        p[2] = (uint8_t)(u >> 16);
        p[3] = (uint8_t)(u >> 24);
    }
}

/* Floor division by 2^s of a signed value, without implementation-defined shifts. */
static int64_t sar64(int64_t v, unsigned s)
{
    if (v >= 0)
        return (int64_t)((uint64_t)v >> s);
    return -(int64_t)(((uint64_t)(-(v + 1)) >> s)) - 1;
}

static inline uint64_t zigzag(int64_t r)
{
    return r >= 0 ? (uint64_t)r << 1 : (((uint64_t)(-(r + 1))) << 1) | 1u;
}

static int64_t unzigzag(uint64_t u)
{
    return (u & 1u) ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

static unsigned bitlen64(uint64_t v)
{
#if defined(__GNUC__)
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
#else
    unsigned n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
#endif
}
/* ---- predictors shared by encoder and decoder ---- */

typedef struct {
    uint8_t order;          /* short-term taps at lags 1..order */
    uint8_t lcode;          /* long taps: 0 none, 1 {P}, 2 {P-1,P,P+1}, 3 + {2P-1,2P,2P+1} */
    uint8_t prec, shift;    /* coefficient width in bits (1..16), right shift (0..31) */
    int32_t coef[MAX_TAPS]; /* short taps then long taps */
    uint32_t lag[MAX_TAPS]; /* derived: lag of each tap */
    uint8_t ntaps;          /* derived */
} lpc_t;

typedef struct {
    uint8_t nlpc;              /* LPC predictors defined (0..MAX_LPC) */
    lpc_t lpc[MAX_LPC];
    uint8_t porder;            /* 2^porder partitions */
    uint8_t pred[MAX_PARTS];   /* per partition: predictor id */
    uint8_t k[MAX_PARTS];      /* per partition: Rice parameter or RICE_ESCAPE */
    uint8_t w[MAX_PARTS];      /* per partition: escape width */
} chan_t;

static unsigned nlong_of(unsigned lcode)
{
    return lcode == 0 ? 0 : lcode == 1 ? 1 : lcode == 2 ? 3 : 6;
}

/* Fills lag[] and ntaps from order/lcode and P. */
static void lpc_lags(lpc_t *l, uint32_t P)
{
    unsigned j, t = 0;
    for (j = 0; j < l->order; j++)
        l->lag[t++] = j + 1;
    if (l->lcode == 1)
        l->lag[t++] = P;
    if (l->lcode >= 2) {
        l->lag[t++] = P - 1;
        l->lag[t++] = P;
        l->lag[t++] = P + 1;
    }
    if (l->lcode == 3) {
        l->lag[t++] = 2 * P - 1;
        l->lag[t++] = 2 * P;
        l->lag[t++] = 2 * P + 1;
    }
    l->ntaps = (uint8_t)t;
}

static uint32_t lpc_maxlag(const lpc_t *l, uint32_t P)
{
    uint32_t m = l->order;
    if (l->lcode == 1 && P > m)
        m = P;
    if (l->lcode == 2 && P + 1 > m)
        m = P + 1;
    if (l->lcode == 3 && 2 * P + 1 > m) /* short taps may reach further than 2P + 1 */
        m = 2 * P + 1;
    return m;
}

/* Largest lag any predictor of the channel may read. */
static uint32_t chan_maxlag(const chan_t *ch, uint32_t P)
{
    uint32_t m = P ? P + 1 : 3, j;
    if (m < 3)
        m = 3;
    for (j = 0; j < ch->nlpc; j++)
        if (lpc_maxlag(&ch->lpc[j], P) > m)
            m = lpc_maxlag(&ch->lpc[j], P);
    return m;
}

static int64_t lpc_predict(const lpc_t *l, const int32_t *x, long i)
{
    int64_t s = 0;
    unsigned t;
    for (t = 0; t < l->ntaps; t++)
        s += (int64_t)l->coef[t] * x[i - (long)l->lag[t]];
    if (l->shift)
        s = sar64(s + ((int64_t)1 << (l->shift - 1)), l->shift);
    return s;
}

/* Residuals r[0..cnt) of samples x[i0 .. i0+cnt) under predictor id. */
static void residuals(const chan_t *ch, unsigned id, uint32_t P, const int32_t *x, long i0,
                      uint32_t cnt, int64_t *r)
{
    const int32_t *p = x + i0;
    long L = (long)P;
    uint32_t i;

    switch (id) {
    case P_ZERO:
        for (i = 0; i < cnt; i++)
            r[i] = p[i];
        break;
    case P_ORD1:
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - p[(long)i - 1];
        break;
    case P_ORD2:
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - 2 * (int64_t)p[(long)i - 1] + p[(long)i - 2];
        break;
    case P_ORD3:
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - 3 * ((int64_t)p[(long)i - 1] - p[(long)i - 2]) -
                   p[(long)i - 3];
        break;
    case P_CYCLE:
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - p[(long)i - L];
        break;
    case P_CYCLE_D1:
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - p[(long)i - 1] - p[(long)i - L] + p[(long)i - L - 1];
        break;
    default: {
        const lpc_t *l = &ch->lpc[id - P_LPC0];
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - lpc_predict(l, x, i0 + (long)i);
        break;
    }
    }
}

/* Partition j of 2^porder over n sets: [n*j >> porder, n*(j+1) >> porder). */
static uint32_t part_start(uint32_t n, unsigned porder, uint32_t j)
{
    return (uint32_t)(((uint64_t)n * j) >> porder);
}

/* ---- the sinusoidal block model of codec 2 (docs/protocol.md, A.11) ---- */

#define MODEL_MAXH     7  /* harmonics 1, 3, ..., 2 * MODEL_MAXH - 1 */
#define MODEL_CW_MAX   28 /* widest coefficient (bits, two's complement) */
#define SHAPE_MODEL    0x20u /* shape byte bit 5: the segment carries a model (codec 2 only) */

/* sin(2 pi i / 1024) in Q30, i = 0..1024: entries 0..256 by the integer algorithm of A.11
 * (tests/unit/test_wcodec.c recomputes them), the rest by symmetry. Constant data. */
static const int32_t sin_tab[1025] = {
    0, 6588356, 13176464, 19764076, 26350943, 32936820, 39521455, 46104602,
    52686015, 59265442, 65842639, 72417357, 78989349, 85558366, 92124162, 98686491,
    105245103, 111799753, 118350194, 124896179, 131437461, 137973796, 144504935, 151030634,
    157550648, 164064728, 170572632, 177074115, 183568930, 190056834, 196537583, 203010933,
    209476638, 215934457, 222384147, 228825464, 235258165, 241682010, 248096755, 254502159,
    260897982, 267283981, 273659918, 280025552, 286380643, 292724951, 299058240, 305380268,
    311690799, 317989595, 324276419, 330551034, 336813204, 343062693, 349299267, 355522688,
    361732726, 367929144, 374111709, 380280190, 386434353, 392573967, 398698801, 404808624,
    410903207, 416982319, 423045732, 429093217, 435124548, 441139496, 447137835, 453119340,
    459083786, 465030947, 470960599, 476872522, 482766489, 488642281, 494499676, 500338452,
    506158392, 511959275, 517740883, 523502998, 529245404, 534967884, 540670222, 546352206,
    552013618, 557654248, 563273883, 568872310, 574449320, 580004702, 585538248, 591049748,
    596538995, 602005783, 607449906, 612871159, 618269338, 623644238, 628995660, 634323400,
    639627258, 644907034, 650162530, 655393548, 660599890, 665781361, 670937767, 676068911,
    681174601, 686254647, 691308855, 696337036, 701339000, 706314559, 711263525, 716185713,
    721080937, 725949013, 730789757, 735602987, 740388522, 745146183, 749875788, 754577161,
    759250125, 763894504, 768510121, 773096806, 777654384, 782182683, 786681534, 791150767,
    795590213, 799999706, 804379078, 808728168, 813046808, 817334838, 821592095, 825818420,
    830013654, 834177638, 838310216, 842411232, 846480531, 850517961, 854523369, 858496606,
    862437520, 866345964, 870221790, 874064853, 877875008, 881652112, 885396022, 889106597,
    892783698, 896427186, 900036924, 903612777, 907154608, 910662286, 914135679, 917574653,
    920979081, 924348836, 927683790, 930983817, 934248792, 937478595, 940673101, 943832191,
    946955747, 950043650, 953095784, 956112037, 959092290, 962036435, 964944360, 967815955,
    970651113, 973449725, 976211688, 978936898, 981625251, 984276646, 986890984, 989468165,
    992008095, 994510675, 996975812, 999403414, 1001793390, 1004145648, 1006460101, 1008736660,
    1010975241, 1013175760, 1015338135, 1017462281, 1019548121, 1021595575, 1023604566, 1025575020,
    1027506861, 1029400018, 1031254417, 1033069991, 1034846671, 1036584388, 1038283080, 1039942680,
    1041563126, 1043144360, 1044686319, 1046188946, 1047652184, 1049075981, 1050460278, 1051805027,
    1053110175, 1054375676, 1055601478, 1056787540, 1057933813, 1059040256, 1060106826, 1061133483,
    1062120189, 1063066909, 1063973603, 1064840240, 1065666786, 1066453211, 1067199484, 1067905576,
    1068571465, 1069197120, 1069782522, 1070327647, 1070832474, 1071296985, 1071721163, 1072104991,
    1072448456, 1072751542, 1073014241, 1073236541, 1073418433, 1073559912, 1073660975, 1073721612,
    1073741825, 1073721612, 1073660975, 1073559912, 1073418433, 1073236541, 1073014241, 1072751542,
    1072448456, 1072104991, 1071721163, 1071296985, 1070832474, 1070327647, 1069782522, 1069197120,
    1068571465, 1067905576, 1067199484, 1066453211, 1065666786, 1064840240, 1063973603, 1063066909,
    1062120189, 1061133483, 1060106826, 1059040256, 1057933813, 1056787540, 1055601478, 1054375676,
    1053110175, 1051805027, 1050460278, 1049075981, 1047652184, 1046188946, 1044686319, 1043144360,
    1041563126, 1039942680, 1038283080, 1036584388, 1034846671, 1033069991, 1031254417, 1029400018,
    1027506861, 1025575020, 1023604566, 1021595575, 1019548121, 1017462281, 1015338135, 1013175760,
    1010975241, 1008736660, 1006460101, 1004145648, 1001793390, 999403414, 996975812, 994510675,
    992008095, 989468165, 986890984, 984276646, 981625251, 978936898, 976211688, 973449725,
    970651113, 967815955, 964944360, 962036435, 959092290, 956112037, 953095784, 950043650,
    946955747, 943832191, 940673101, 937478595, 934248792, 930983817, 927683790, 924348836,
    920979081, 917574653, 914135679, 910662286, 907154608, 903612777, 900036924, 896427186,
    892783698, 889106597, 885396022, 881652112, 877875008, 874064853, 870221790, 866345964,
    862437520, 858496606, 854523369, 850517961, 846480531, 842411232, 838310216, 834177638,
    830013654, 825818420, 821592095, 817334838, 813046808, 808728168, 804379078, 799999706,
    795590213, 791150767, 786681534, 782182683, 777654384, 773096806, 768510121, 763894504,
    759250125, 754577161, 749875788, 745146183, 740388522, 735602987, 730789757, 725949013,
    721080937, 716185713, 711263525, 706314559, 701339000, 696337036, 691308855, 686254647,
    681174601, 676068911, 670937767, 665781361, 660599890, 655393548, 650162530, 644907034,
    639627258, 634323400, 628995660, 623644238, 618269338, 612871159, 607449906, 602005783,
    596538995, 591049748, 585538248, 580004702, 574449320, 568872310, 563273883, 557654248,
    552013618, 546352206, 540670222, 534967884, 529245404, 523502998, 517740883, 511959275,
    506158392, 500338452, 494499676, 488642281, 482766489, 476872522, 470960599, 465030947,
    459083786, 453119340, 447137835, 441139496, 435124548, 429093217, 423045732, 416982319,
    410903207, 404808624, 398698801, 392573967, 386434353, 380280190, 374111709, 367929144,
    361732726, 355522688, 349299267, 343062693, 336813204, 330551034, 324276419, 317989595,
    311690799, 305380268, 299058240, 292724951, 286380643, 280025552, 273659918, 267283981,
    260897982, 254502159, 248096755, 241682010, 235258165, 228825464, 222384147, 215934457,
    209476638, 203010933, 196537583, 190056834, 183568930, 177074115, 170572632, 164064728,
    157550648, 151030634, 144504935, 137973796, 131437461, 124896179, 118350194, 111799753,
    105245103, 98686491, 92124162, 85558366, 78989349, 72417357, 65842639, 59265442,
    52686015, 46104602, 39521455, 32936820, 26350943, 19764076, 13176464, 6588356,
    0, -6588356, -13176464, -19764076, -26350943, -32936820, -39521455, -46104602,
    -52686015, -59265442, -65842639, -72417357, -78989349, -85558366, -92124162, -98686491,
    -105245103, -111799753, -118350194, -124896179, -131437461, -137973796, -144504935, -151030634,
    -157550648, -164064728, -170572632, -177074115, -183568930, -190056834, -196537583, -203010933,
    -209476638, -215934457, -222384147, -228825464, -235258165, -241682010, -248096755, -254502159,
    -260897982, -267283981, -273659918, -280025552, -286380643, -292724951, -299058240, -305380268,
    -311690799, -317989595, -324276419, -330551034, -336813204, -343062693, -349299267, -355522688,
    -361732726, -367929144, -374111709, -380280190, -386434353, -392573967, -398698801, -404808624,
    -410903207, -416982319, -423045732, -429093217, -435124548, -441139496, -447137835, -453119340,
    -459083786, -465030947, -470960599, -476872522, -482766489, -488642281, -494499676, -500338452,
    -506158392, -511959275, -517740883, -523502998, -529245404, -534967884, -540670222, -546352206,
    -552013618, -557654248, -563273883, -568872310, -574449320, -580004702, -585538248, -591049748,
    -596538995, -602005783, -607449906, -612871159, -618269338, -623644238, -628995660, -634323400,
    -639627258, -644907034, -650162530, -655393548, -660599890, -665781361, -670937767, -676068911,
    -681174601, -686254647, -691308855, -696337036, -701339000, -706314559, -711263525, -716185713,
    -721080937, -725949013, -730789757, -735602987, -740388522, -745146183, -749875788, -754577161,
    -759250125, -763894504, -768510121, -773096806, -777654384, -782182683, -786681534, -791150767,
    -795590213, -799999706, -804379078, -808728168, -813046808, -817334838, -821592095, -825818420,
    -830013654, -834177638, -838310216, -842411232, -846480531, -850517961, -854523369, -858496606,
    -862437520, -866345964, -870221790, -874064853, -877875008, -881652112, -885396022, -889106597,
    -892783698, -896427186, -900036924, -903612777, -907154608, -910662286, -914135679, -917574653,
    -920979081, -924348836, -927683790, -930983817, -934248792, -937478595, -940673101, -943832191,
    -946955747, -950043650, -953095784, -956112037, -959092290, -962036435, -964944360, -967815955,
    -970651113, -973449725, -976211688, -978936898, -981625251, -984276646, -986890984, -989468165,
    -992008095, -994510675, -996975812, -999403414, -1001793390, -1004145648, -1006460101, -1008736660,
    -1010975241, -1013175760, -1015338135, -1017462281, -1019548121, -1021595575, -1023604566, -1025575020,
    -1027506861, -1029400018, -1031254417, -1033069991, -1034846671, -1036584388, -1038283080, -1039942680,
    -1041563126, -1043144360, -1044686319, -1046188946, -1047652184, -1049075981, -1050460278, -1051805027,
    -1053110175, -1054375676, -1055601478, -1056787540, -1057933813, -1059040256, -1060106826, -1061133483,
    -1062120189, -1063066909, -1063973603, -1064840240, -1065666786, -1066453211, -1067199484, -1067905576,
    -1068571465, -1069197120, -1069782522, -1070327647, -1070832474, -1071296985, -1071721163, -1072104991,
    -1072448456, -1072751542, -1073014241, -1073236541, -1073418433, -1073559912, -1073660975, -1073721612,
    -1073741825, -1073721612, -1073660975, -1073559912, -1073418433, -1073236541, -1073014241, -1072751542,
    -1072448456, -1072104991, -1071721163, -1071296985, -1070832474, -1070327647, -1069782522, -1069197120,
    -1068571465, -1067905576, -1067199484, -1066453211, -1065666786, -1064840240, -1063973603, -1063066909,
    -1062120189, -1061133483, -1060106826, -1059040256, -1057933813, -1056787540, -1055601478, -1054375676,
    -1053110175, -1051805027, -1050460278, -1049075981, -1047652184, -1046188946, -1044686319, -1043144360,
    -1041563126, -1039942680, -1038283080, -1036584388, -1034846671, -1033069991, -1031254417, -1029400018,
    -1027506861, -1025575020, -1023604566, -1021595575, -1019548121, -1017462281, -1015338135, -1013175760,
    -1010975241, -1008736660, -1006460101, -1004145648, -1001793390, -999403414, -996975812, -994510675,
    -992008095, -989468165, -986890984, -984276646, -981625251, -978936898, -976211688, -973449725,
    -970651113, -967815955, -964944360, -962036435, -959092290, -956112037, -953095784, -950043650,
    -946955747, -943832191, -940673101, -937478595, -934248792, -930983817, -927683790, -924348836,
    -920979081, -917574653, -914135679, -910662286, -907154608, -903612777, -900036924, -896427186,
    -892783698, -889106597, -885396022, -881652112, -877875008, -874064853, -870221790, -866345964,
    -862437520, -858496606, -854523369, -850517961, -846480531, -842411232, -838310216, -834177638,
    -830013654, -825818420, -821592095, -817334838, -813046808, -808728168, -804379078, -799999706,
    -795590213, -791150767, -786681534, -782182683, -777654384, -773096806, -768510121, -763894504,
    -759250125, -754577161, -749875788, -745146183, -740388522, -735602987, -730789757, -725949013,
    -721080937, -716185713, -711263525, -706314559, -701339000, -696337036, -691308855, -686254647,
    -681174601, -676068911, -670937767, -665781361, -660599890, -655393548, -650162530, -644907034,
    -639627258, -634323400, -628995660, -623644238, -618269338, -612871159, -607449906, -602005783,
    -596538995, -591049748, -585538248, -580004702, -574449320, -568872310, -563273883, -557654248,
    -552013618, -546352206, -540670222, -534967884, -529245404, -523502998, -517740883, -511959275,
    -506158392, -500338452, -494499676, -488642281, -482766489, -476872522, -470960599, -465030947,
    -459083786, -453119340, -447137835, -441139496, -435124548, -429093217, -423045732, -416982319,
    -410903207, -404808624, -398698801, -392573967, -386434353, -380280190, -374111709, -367929144,
    -361732726, -355522688, -349299267, -343062693, -336813204, -330551034, -324276419, -317989595,
    -311690799, -305380268, -299058240, -292724951, -286380643, -280025552, -273659918, -267283981,
    -260897982, -254502159, -248096755, -241682010, -235258165, -228825464, -222384147, -215934457,
    -209476638, -203010933, -196537583, -190056834, -183568930, -177074115, -170572632, -164064728,
    -157550648, -151030634, -144504935, -137973796, -131437461, -124896179, -118350194, -111799753,
    -105245103, -98686491, -92124162, -85558366, -78989349, -72417357, -65842639, -59265442,
    -52686015, -46104602, -39521455, -32936820, -26350943, -19764076, -13176464, -6588356,
    0,
};

/* The model's sine of a phase th (2^32 = one turn), Q30: the table, linearly interpolated with a
 * floor shift (A.11). |result| <= 2^30 + 1. */
static inline int64_t msin(uint32_t th)
{
    uint32_t i = th >> 22;
    int64_t a = sin_tab[i], d = (int64_t)sin_tab[i + 1] - a;
    /* floor(d * fr / 2^22) with |d * fr| < 2^45: shifted as a biased unsigned value (no branch,
     * no implementation-defined shift) */
    return a + (int64_t)(((uint64_t)(d * (int64_t)(th & 0x3FFFFFu)) + ((uint64_t)1 << 52)) >> 22) -
           ((int64_t)1 << 30);
}

/* floor((acc + 2^29) / 2^30) for |acc| < 2^61 (the model's final rounding, A.11) */
static inline int64_t model_round(int64_t acc)
{
    return (int64_t)(((uint64_t)acc + ((uint64_t)1 << 29) + ((uint64_t)1 << 62)) >> 30) -
           ((int64_t)1 << 32);
}

/* One channel's model: harmonics 1, 3, ..., 2H-1, coefficient of the sine then of the cosine of
 * each, in counts (|c| < 2^27). */
typedef struct {
    uint8_t H;
    int32_t a[2 * MODEL_MAXH];
} model_t;

/* m[0..cnt) = the model's values at block sets g0 .. g0+cnt-1 for the phase step F (A.11):
 * floor((sum_j a_j sin(h_j F g) + b_j cos(h_j F g) + 2^29) / 2^30), exactly, in int64 (each term
 * below 2^27 * (2^30 + 1), at most 14 terms: below 2^61). |m| < 2^31. */
static void model_tile(const model_t *md, uint32_t F, uint32_t g0, uint32_t cnt, int64_t *m)
{
    uint32_t i, j;
    for (i = 0; i < cnt; i++)
        m[i] = 0;
    for (j = 0; j < md->H; j++) {
        uint32_t step = (2u * j + 1u) * F, ph = step * g0;
        int64_t as = md->a[2 * j], ac = md->a[2 * j + 1];
        for (i = 0; i < cnt; i++, ph += step)
            m[i] += as * msin(ph) + ac * msin(ph + 0x40000000u);
    }
    for (i = 0; i < cnt; i++)
        m[i] = model_round(m[i]);
}

/* ---- bit writer (MSB first) into base[0..room); bytes past room are counted, not written,
 * so the caller learns the size of what did not fit. State can be saved and restored. ---- */

typedef struct {
    uint8_t *base;
    size_t room, pos; /* pos: bytes emitted so far (also those past room) */
    uint64_t acc;     /* pending bits, right-aligned */
    unsigned nacc;    /* < 32 between calls */
} bw_t;

static void bw_emit(bw_t *w, unsigned nbytes)
{
    while (nbytes--) {
        w->nacc -= 8;
        if (w->pos < w->room)
            w->base[w->pos] = (uint8_t)(w->acc >> w->nacc);
        w->pos++;
    }
}

static inline void bw_put(bw_t *w, uint64_t v, unsigned n) /* n <= 32 */
{
    w->acc = (w->acc << n) | (v & (((uint64_t)1 << n) - 1));
    w->nacc += n;
    if (w->nacc >= 32) {
        if (w->pos + 4 <= w->room) {
            uint8_t *q = w->base + w->pos;
            q[0] = (uint8_t)(w->acc >> (w->nacc - 8));
            q[1] = (uint8_t)(w->acc >> (w->nacc - 16));
            q[2] = (uint8_t)(w->acc >> (w->nacc - 24));
            q[3] = (uint8_t)(w->acc >> (w->nacc - 32));
            w->pos += 4;
            w->nacc -= 32;
        } else {
            bw_emit(w, 4);
        }
    }
}

static void bw_bits(bw_t *w, uint64_t v, unsigned n) /* n <= 64 */
{
    if (n > 32) {
        bw_put(w, v >> 32, n - 32);
        n = 32;
    }
    bw_put(w, v, n);
}

static void bw_zeros(bw_t *w, uint64_t n)
{
    while (n > 32) {
        bw_put(w, 0, 32);
        n -= 32;
    }
    bw_put(w, 0, (unsigned)n);
}

/* Bits written so far. */
static uint64_t bw_tell(const bw_t *w)
{
    return (uint64_t)w->pos * 8 + w->nacc;
}

static void bw_flush(bw_t *w)
{
    if (w->nacc % 8)
        bw_put(w, 0, 8 - w->nacc % 8);
    bw_emit(w, w->nacc / 8);
}

/* ---- bit reader: never reads outside [p, end) ---- */

typedef struct {
    const uint8_t *p, *end;
    uint64_t acc; /* unread bits, left-aligned */
    unsigned nacc;
} br_t;

static void br_fill(br_t *r)
{
    while (r->nacc <= 56 && r->p < r->end) {
        r->acc |= (uint64_t)*r->p++ << (56 - r->nacc);
        r->nacc += 8;
    }
}

/* Reads n <= 32 bits; returns -1 when the input ends first. */
static int br_get(br_t *r, unsigned n, uint32_t *v)
{
    if (n == 0) {
        *v = 0;
        return 0;
    }
    if (r->nacc < n) {
        br_fill(r);
        if (r->nacc < n)
            return -1;
    }
    *v = (uint32_t)(r->acc >> (64 - n));
    r->acc <<= n;
    r->nacc -= n;
    return 0;
}

static int br_get64(br_t *r, unsigned n, uint64_t *v) /* n <= 64 */
{
    uint32_t hi = 0, lo;
    if (n > 32) {
        if (br_get(r, n - 32, &hi) != 0)
            return -1;
        n = 32;
    }
    if (br_get(r, n, &lo) != 0)
        return -1;
    *v = ((uint64_t)hi << n) | lo;
    return 0;
}

/* Counts zero bits up to the next one bit (consumed). Fails when the input ends or the count
 * exceeds max. */
static int br_unary(br_t *r, uint64_t max, uint64_t *q)
{
    uint64_t n = 0;
    for (;;) {
        if (r->nacc == 0) {
            br_fill(r);
            if (r->nacc == 0)
                return -1;
        }
        if (r->acc == 0) { /* all buffered bits are zero */
            n += r->nacc;
            r->nacc = 0;
            if (n > max)
                return -1;
            continue;
        }
        {
            uint64_t a = r->acc;
            unsigned z;
#if defined(__GNUC__)
            z = (unsigned)__builtin_clzll(a);
            a <<= z;
#else
            z = 0;
            while (!(a & ((uint64_t)1 << 63))) {
                a <<= 1;
                z++;
            }
#endif
            n += z;
            if (n > max)
                return -1;
            r->acc = a << 1;
            r->nacc -= z + 1;
            *q = n;
            return 0;
        }
    }
}

/* ---- segment header ---- */

static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t varint_len(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a minimal LEB128 varint of at most 3 bytes; returns bytes used or 0 when malformed. */
static size_t get_varint(const uint8_t *p, size_t len, uint32_t *v)
{
    uint32_t x = 0;
    size_t i;
    for (i = 0; i < 3 && i < len; i++) {
        x |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (i > 0 && p[i] == 0)
                return 0; /* not minimal */
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static int check_shape(uint32_t nsets, int nch, int fmt)
{
    return nsets >= 1 && nsets <= WCODEC_MAX_SETS && nch >= 1 && nch <= WCODEC_MAX_CHANNELS &&
           (fmt == 1 || fmt == 2);
}

/* Copies channel c of sets [first - h, first + n) of the block into x[0 .. h + n); sets before
 * 0 read as `fill` (the value of set 0). */
static void load_chan(const uint8_t *block, int nch, int fmt, int c, uint32_t first, uint32_t h,
                      uint32_t n, int32_t fill, int32_t *x)
{
    size_t stride = (size_t)nch * (size_t)fmt * 2u;
    uint32_t i, z = h > first ? h - first : 0;
    const uint8_t *p;

    for (i = 0; i < z; i++)
        x[i] = fill;
    p = block + (size_t)(first + z - h) * stride + (size_t)c * (size_t)fmt * 2u;
    if (fmt == 1) {
        for (; i < h + n; i++, p += stride)
            x[i] = u2i16((uint32_t)p[0] | (uint32_t)p[1] << 8);
    } else {
        for (; i < h + n; i++, p += stride)
            x[i] = rd_sample(p, 2);
    }
}

/* Value of channel c in set 0 of the block. */
static int32_t set0(const uint8_t *block, int fmt, int c)
{
    return rd_sample(block + (size_t)c * (size_t)fmt * 2u, fmt);
}

/* ======================================================================================
 * Encoder
 * ====================================================================================== */

#define TILE      64
#define PART_MAXN 1024 /* the encoder's largest partition (its residual buffer) */
#define SC_NONE   ((uint64_t)1 << 52) /* score of a predictor not offered in a partition */
#define FIT_TAPS  8 /* the encoder's LPCs: 2 short + up to 6 long taps, or 8 short */
#define FIT_H     4 /* the encoder's models (A.11): harmonics 1, 3, 5, 7 */
#define FIT_STRIDE 1  /* the model's normal matrix sums every FIT_STRIDE-th set */
#define FREQ_SPC  20 /* the frequency estimate correlates sets about 1/FREQ_SPC cycle apart */
#define BAS_MAX   1024 /* sets of the model's basis the codec-2 encoder keeps (32 KiB) */

/* Work area of one segment encode (on the stack of wcodec_encode: see wcodec.h). */
typedef struct {
    int32_t x[MAX_LAG + WCODEC_MAX_SETS];
    int64_t r[PART_MAXN];
    uint64_t sc[P_COUNT][MAX_PARTS]; /* per predictor and partition: sum of |residual| */
    uint64_t sw[P_COUNT][MAX_PARTS / 2]; /* the same, merged pairwise while choosing */
    uint64_t psc[MAX_PARTS];         /* chosen partitions: their score */
    chan_t ch;
    /* codec 2 (A.11): the block's model, fitted once per wcodec_encode call; mdl NULL = none */
    const model_t *mdl; /* per channel, or NULL: codec-1 segment form */
    uint32_t F;         /* phase step per set */
    const int32_t (*bas)[2 * FIT_H]; /* the model's basis at sets 0 .. nbas-1 (fit_model), or */
    uint32_t nbas;
    int mvals; /* with mvals: bas[g][c] = channel c's model at set g (nch <= 2 * FIT_H) */
    int use_model;      /* the channel being encoded uses its model: predictor 0 is x - m */
    int any_model;      /* some channel of the segment used its model */
    int mfull;          /* mbuf holds the channel's model over the whole segment */
    unsigned nh;        /* model segment: channels written, and the payload bit offset of */
    uint64_t hpos[WCODEC_MAX_CHANNELS]; /* each channel's H field */
    int64_t mt[TILE];
    int32_t *mbuf; /* BAS_MAX: the channel's model values when the segment lies within nbas */
} enc_t;

/* m[0..cnt) = the model md at block sets g0 .. g0+cnt-1 (cnt <= TILE): from the basis computed
 * by fit_model where it has it (the same integers: 2H multiply-adds a set), else model_tile. */
static void enc_model(const enc_t *e, const model_t *md, uint32_t g0, uint32_t cnt, int64_t *m)
{
    uint32_t i;
    if (g0 + cnt > e->nbas || md->H > FIT_H) {
        model_tile(md, e->F, g0, cnt, m);
        return;
    }
    if (e->mvals) { /* the basis was replaced by every channel's values */
        unsigned c = (unsigned)(md - e->mdl);
        for (i = 0; i < cnt; i++)
            m[i] = e->bas[g0 + i][c];
        return;
    }
    {
        int64_t a[2 * FIT_H];
        unsigned k;
        for (k = 0; k < 2 * FIT_H; k++)
            a[k] = k < 2u * md->H ? md->a[k] : 0;
        for (i = 0; i < cnt; i++) {
            const int32_t *b = e->bas[g0 + i];
            m[i] = model_round(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3] +
                               a[4] * b[4] + a[5] * b[5] + a[6] * b[6] + a[7] * b[7]);
        }
    }
}

/* Residuals of LPC predictor l over x[i0 .. i0+cnt), cnt <= PART_MAXN: tap by tap over the
 * run (vectorizable), then the rounding shift done on a biased unsigned value (exact floor). */
static void lpc_residuals(const lpc_t *l, const int32_t *x, long i0, uint32_t cnt, int64_t *r)
{
    const int32_t *p = x + i0;
    uint32_t i;
    unsigned t;

    for (i = 0; i < cnt; i++)
        r[i] = 0;
    for (t = 0; t < l->ntaps; t++) {
        const int32_t *q = p - (long)l->lag[t];
        int64_t c = l->coef[t];
        for (i = 0; i < cnt; i++)
            r[i] += c * q[i];
    }
    if (l->shift) {
        /* |sum| < 2^57, so sum + half + 2^62 is positive: floor((sum + half) / 2^shift) */
        const uint64_t bias = (uint64_t)1 << 62, half = (uint64_t)1 << (l->shift - 1);
        const int64_t sub = (int64_t)(bias >> l->shift);
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] -
                   ((int64_t)(((uint64_t)r[i] + half + bias) >> l->shift) - sub);
    } else {
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - r[i];
    }
}

/* Replaces r[0..cnt) by their zigzag values (uint64_t in the same storage) and sums them shifted
 * right by k0, k0 + 1, k0 + 2 (the Rice costs of those parameters, less cnt * (k + 1)); *umax
 * gets the OR of the values (the bit length of the largest). */
static void zig_sums(int64_t *r, uint32_t cnt, unsigned k0, uint64_t sq[3], uint64_t *umax)
{
    uint64_t *u = (uint64_t *)(void *)r, s0 = 0, s1 = 0, s2 = 0, m = 0;
    uint32_t i;
    for (i = 0; i < cnt; i++) {
        uint64_t v = zigzag(r[i]);
        u[i] = v;
        m |= v;
        v >>= k0;
        s0 += v;
        s1 += v >> 1;
        s2 += v >> 2;
    }
    sq[0] = s0;
    sq[1] = s1;
    sq[2] = s2;
    *umax = m;
}

/* Rice codes of the zigzagged residuals u[0..cnt) with parameter k (< RICE_ESCAPE): the writer's
 * state kept in locals through the loop (the encoder's hottest). */
static void bw_rice(bw_t *w, const uint64_t *u, uint32_t cnt, unsigned k)
{
    uint64_t acc = w->acc, mask = ((uint64_t)1 << k) - 1;
    unsigned nacc = w->nacc;
    size_t pos = w->pos, room = w->room;
    uint8_t *base = w->base;
    uint32_t i;

    for (i = 0; i < cnt; i++) {
        uint64_t qq = u[i] >> k;
        if (qq + 1 + k <= 32) {
            /* qq zeros, a one, k low bits: one put */
            unsigned nb = (unsigned)qq + 1 + k;
            acc = (acc << nb) | ((uint64_t)1 << k) | (u[i] & mask);
            nacc += nb;
            if (nacc >= 32) {
                nacc -= 32;
                if (pos + 4 <= room) {
                    uint8_t *q = base + pos;
                    q[0] = (uint8_t)(acc >> (nacc + 24));
                    q[1] = (uint8_t)(acc >> (nacc + 16));
                    q[2] = (uint8_t)(acc >> (nacc + 8));
                    q[3] = (uint8_t)(acc >> nacc);
                } else {
                    unsigned b;
                    for (b = 0; b < 4; b++)
                        if (pos + b < room)
                            base[pos + b] = (uint8_t)(acc >> (nacc + 24 - 8 * b));
                }
                pos += 4;
            }
        } else {
            w->acc = acc;
            w->nacc = nacc;
            w->pos = pos;
            bw_zeros(w, qq);
            bw_put(w, 1, 1);
            bw_put(w, u[i] & mask, k);
            acc = w->acc;
            nacc = w->nacc;
            pos = w->pos;
        }
    }
    w->acc = acc;
    w->nacc = nacc;
    w->pos = pos;
}

static void enc_residuals(const chan_t *ch, unsigned id, uint32_t P, const int32_t *x, long i0,
                          uint32_t cnt, int64_t *r)
{
    if (id >= P_LPC0)
        lpc_residuals(&ch->lpc[id - P_LPC0], x, i0, cnt, r);
    else
        residuals(ch, id, P, x, i0, cnt, r);
}

/* Sum of |residual| of each fixed predictor over x[s .. e). */
static void fixed_scores(const int32_t *x, uint32_t s, uint32_t e, uint32_t P, int fmt,
                         uint64_t *sc)
{
    uint32_t i;
    long L = (long)P;

    if (fmt == 1) { /* int16: every residual of a fixed predictor fits int32 */
        uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
        for (i = s; i < e; i++) {
            int32_t a = x[i], b = x[(long)i - 1], c = x[(long)i - 2], d = x[(long)i - 3];
            int32_t e1 = a - b, e2 = e1 - (b - c), e3 = e2 - ((b - c) - (c - d));
            s0 += (uint32_t)(a < 0 ? -a : a);
            s1 += (uint32_t)(e1 < 0 ? -e1 : e1);
            s2 += (uint32_t)(e2 < 0 ? -e2 : e2);
            s3 += (uint32_t)(e3 < 0 ? -e3 : e3);
        }
        if (P) {
            for (i = s; i < e; i++) {
                int32_t a = x[i] - x[(long)i - L];
                int32_t f = a - (x[(long)i - 1] - x[(long)i - L - 1]);
                s4 += (uint32_t)(a < 0 ? -a : a);
                s5 += (uint32_t)(f < 0 ? -f : f);
            }
        }
        /* partitions are at most 2^13 sets and |residual| < 2^18: no overflow */
        sc[P_ZERO] = s0;
        sc[P_ORD1] = s1;
        sc[P_ORD2] = s2;
        sc[P_ORD3] = s3;
        sc[P_CYCLE] = P ? s4 : SC_NONE;
        sc[P_CYCLE_D1] = P ? s5 : SC_NONE;
        return;
    }
    {
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
        for (i = s; i < e; i++) {
            int64_t a = x[i], b = x[(long)i - 1], c = x[(long)i - 2], d = x[(long)i - 3];
            int64_t e1 = a - b, e2 = e1 - (b - c), e3 = e2 - ((b - c) - (c - d));
            s0 += (uint64_t)(a < 0 ? -a : a);
            s1 += (uint64_t)(e1 < 0 ? -e1 : e1);
            s2 += (uint64_t)(e2 < 0 ? -e2 : e2);
            s3 += (uint64_t)(e3 < 0 ? -e3 : e3);
        }
        if (P) {
            for (i = s; i < e; i++) {
                int64_t a = (int64_t)x[i] - x[(long)i - L];
                int64_t f = a - ((int64_t)x[(long)i - 1] - x[(long)i - L - 1]);
                s4 += (uint64_t)(a < 0 ? -a : a);
                s5 += (uint64_t)(f < 0 ? -f : f);
            }
        }
        sc[P_ZERO] = s0;
        sc[P_ORD1] = s1;
        sc[P_ORD2] = s2;
        sc[P_ORD3] = s3;
        sc[P_CYCLE] = P ? s4 : SC_NONE;
        sc[P_CYCLE_D1] = P ? s5 : SC_NONE;
    }
}

/* Estimated Rice bits of cnt residuals whose zigzag values sum to `sum`. */
static uint64_t rice_est(uint64_t sum, uint32_t cnt, unsigned *kout)
{
    /* k near log2(mean): bitlen(sum) - bitlen(cnt) is within one of bitlen(sum / cnt) */
    unsigned bs = bitlen64(sum), bc = bitlen64(cnt), kb = bs > bc ? bs - bc : 0, kk, kbest = 0;
    uint64_t best = UINT64_MAX;
    for (kk = kb; kk <= kb + 1 && kk < RICE_ESCAPE; kk++) {
        uint64_t c = (uint64_t)cnt * (kk + 1) + (sum >> kk);
        if (c < best) {
            best = c;
            kbest = kk;
        }
    }
    if (kout)
        *kout = kbest;
    return best;
}

/* Cholesky solve of the SPD system A y = b for nb right-hand sides (A factored in place, b
 * overwritten by the solutions; rows of FIT_TAPS). Returns 0, or -1 when A is not positive. */
static int chol_multi(double A[][FIT_TAPS], unsigned m, double b[][FIT_TAPS], unsigned nb)
{
    unsigned i, j, q, c;
    for (j = 0; j < m; j++) {
        double d = A[j][j];
        for (q = 0; q < j; q++)
            d -= A[j][q] * A[j][q];
        if (!(d > 0))
            return -1;
        d = sqrt(d);
        A[j][j] = d;
        for (i = j + 1; i < m; i++) {
            double t = A[i][j];
            for (q = 0; q < j; q++)
                t -= A[i][q] * A[j][q];
            A[i][j] = t / d;
        }
    }
    for (c = 0; c < nb; c++) {
        double *y = b[c];
        for (j = 0; j < m; j++) {
            for (q = 0; q < j; q++)
                y[j] -= A[j][q] * y[q];
            y[j] /= A[j][j];
        }
        for (j = m; j-- > 0;) {
            for (q = j + 1; q < m; q++)
                y[j] -= A[q][j] * y[q];
            y[j] /= A[j][j];
        }
    }
    return 0;
}

/* Least-squares fit of an LPC predictor over rows [r0, r1) of x (whose taps all lie inside the
 * block), at most about 128 rows (subsampled), quantized with error feedback. Returns 0, or -1
 * when there is too little data or the system is singular. */
static int fit_lpc(const int32_t *x, uint32_t r0, uint32_t r1, uint32_t P, unsigned order,
                   unsigned lcode, unsigned mag, lpc_t *l)
{
    double A[FIT_TAPS][FIT_TAPS], b[FIT_TAPS], c[FIT_TAPS], v[FIT_TAPS], m = 0, err = 0;
    uint32_t i, stride;
    unsigned nt, j, q, shift;
    int32_t cmax = 0;

    l->order = (uint8_t)order;
    l->lcode = (uint8_t)lcode;
    lpc_lags(l, P);
    nt = l->ntaps;
    if (nt > FIT_TAPS || r0 >= r1 || r1 - r0 < 4 * nt + 16)
        return -1;
    stride = 1 + (r1 - r0) / 64;
    for (j = 0; j < nt; j++) {
        b[j] = 0;
        for (q = 0; q <= j; q++)
            A[j][q] = 0;
    }
    for (i = r0; i < r1; i += stride) {
        double t = x[i];
        for (j = 0; j < nt; j++)
            v[j] = x[(long)i - (long)l->lag[j]];
        for (j = 0; j < nt; j++) {
            b[j] += v[j] * t;
            for (q = 0; q <= j; q++)
                A[j][q] += v[j] * v[q];
        }
    }
    /* Cholesky with a small ridge (keeps flat or tiny signals solvable) */
    for (j = 0; j < nt; j++)
        A[j][j] += A[j][j] * 1e-9 + 1e-3;
    if (chol_multi(A, nt, (double(*)[FIT_TAPS])b, 1) < 0)
        return -1;
    memcpy(c, b, sizeof c);
    for (j = 0; j < nt; j++)
        if (fabs(c[j]) > m)
            m = fabs(c[j]);
    if (!(m > 1e-6) || m > 1e4)
        return -1;
    /* the widest coefficient gets LPC_MAG bits of magnitude, at most 2^-20 resolution */
    shift = 0;
    while (shift < 20 && m * (double)(1u << (shift + 1)) < (double)((1u << mag) - 1))
        shift++;
    for (j = 0; j < nt; j++) {
        double want = c[j] * (double)(1u << shift) + err;
        long cq = lround(want);
        if (cq > 32767)
            cq = 32767;
        if (cq < -32767)
            cq = -32767;
        err = want - (double)cq;
        l->coef[j] = (int32_t)cq;
        if ((cq < 0 ? -cq : cq) > cmax)
            cmax = (int32_t)(cq < 0 ? -cq : cq);
    }
    l->shift = (uint8_t)shift;
    l->prec = (uint8_t)(bitlen64((uint64_t)cmax) + 1);
    return 0;
}

/* The raw form of a channel: warm-up, no LPC, one partition of predictor 0 escaped at wb. */
static void wb_raw(bw_t *w, const int32_t *x, uint32_t n, unsigned warm, int model,
                   unsigned wb)
{
    uint32_t i;
    if (warm)
        bw_put(w, (uint32_t)x[0], warm);
    if (model)
        bw_put(w, 0, 3); /* codec 2 model segment: this channel without its model (H = 0) */
    bw_put(w, 0, 2);
    bw_put(w, 0, 4);
    bw_put(w, P_ZERO, 3);
    bw_put(w, RICE_ESCAPE, 5);
    bw_put(w, wb, 6);
    if (wb)
        for (i = 0; i < n; i++)
            bw_bits(w, (uint64_t)(int64_t)x[i], wb);
}

/* Chooses the partition order (pmin..pmaxo) and each partition's predictor from the finest
 * partitions' scores in e->sc, offering LPC a only when bit a of mask is set. Returns the
 * estimated bits; with `apply`, stores the choice in ch and the chosen scores in e->psc. */
static uint64_t choose_parts(enc_t *e, chan_t *ch, uint32_t n, unsigned pmaxo, unsigned pmin,
                             unsigned mask, int apply)
{
    uint64_t best = UINT64_MAX;
    unsigned po, id, nid = P_LPC0 + ch->nlpc;
    uint32_t j;

    /* score of predictor id in partition j at order po: the finest from e->sc (LPCs outside
     * mask not offered), coarser ones merged pairwise into e->sw (half as many, in place) */
#define CP_SCORE(id, j)                                                                            \
    (po < pmaxo ? e->sw[id][j]                                                                     \
     : ((id) >= P_LPC0 && !(mask >> ((id) - P_LPC0) & 1)) ? SC_NONE : e->sc[id][j])
    for (po = pmaxo + 1; po-- > pmin;) {
        uint32_t np = 1u << po;
        uint64_t c = 4;
        uint8_t pid[MAX_PARTS];
        if (po + 1 == pmaxo) {
            for (id = 0; id < nid; id++) {
                int off = id >= P_LPC0 && !(mask >> (id - P_LPC0) & 1);
                for (j = 0; j < np; j++)
                    e->sw[id][j] = off ? 2 * SC_NONE : e->sc[id][2 * j] + e->sc[id][2 * j + 1];
            }
        } else if (po < pmaxo) {
            for (id = 0; id < nid; id++)
                for (j = 0; j < np; j++)
                    e->sw[id][j] = e->sw[id][2 * j] + e->sw[id][2 * j + 1];
        }
        for (j = 0; j < np; j++) {
            unsigned bi = 0;
            uint64_t bv = CP_SCORE(0, j);
            for (id = 1; id < nid; id++)
                if (CP_SCORE(id, j) < bv) {
                    bi = id;
                    bv = CP_SCORE(id, j);
                }
            pid[j] = (uint8_t)bi;
            c += 4 + rice_est(2 * bv, part_start(n, po, j + 1) - part_start(n, po, j), NULL);
        }
        if (c < best) {
            best = c;
            if (apply) {
                ch->porder = (uint8_t)po;
                for (j = 0; j < np; j++) {
                    ch->pred[j] = pid[j];
                    e->psc[j] = CP_SCORE(pid[j], j);
                }
            }
        }
    }
#undef CP_SCORE
    return best;
}

/* r[0..cnt) = x[s + i] - m(first + s + i): residuals of predictor 0 under the channel's model. */
static void model_resid(enc_t *e, const model_t *md, const int32_t *x, uint32_t first, uint32_t s,
                        uint32_t cnt, int64_t *r)
{
    uint32_t t, i;
    if (e->mfull) {
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)x[s + i] - e->mbuf[s + i];
        return;
    }
    for (t = 0; t < cnt; t += TILE) {
        uint32_t c = cnt - t < TILE ? cnt - t : TILE;
        enc_model(e, md, first + s + t, c, e->mt);
        for (i = 0; i < c; i++)
            r[t + i] = (int64_t)x[s + t + i] - e->mt[i];
    }
}

/* Plans and writes channel ch over x[0..n) (x has the history before it; `first` is the
 * segment's first set): LPC predictors, partitions, per-partition predictor and Rice
 * parameter. Falls back to the channel's samples verbatim when that is smaller. */
static void enc_chan(enc_t *e, bw_t *w, uint32_t P, const int32_t *x, uint32_t n,
                     uint32_t first, int fmt, const model_t *md)
{
    chan_t *ch = &e->ch;
    unsigned sbits = fmt == 1 ? 16u : 32u;
    uint64_t start = bw_tell(w), mbits = 0, *msc = e->psc, mtot = 0; /* psc: free until chosen */
    uint64_t fixbest = 0; /* each finest partition with its best fixed predictor: their sum */
    unsigned pmaxo = 0, pmin = 0, id, a, q, mag;
    uint32_t j;
    bw_t saved = *w;

    ch->nlpc = 0;
    e->use_model = 0;
    while (pmaxo < MAX_PORDER && (n >> (pmaxo + 1)) >= MIN_PART)
        pmaxo++;
    while ((n >> pmin) + 1 > PART_MAXN)
        pmin++;
    /* scores of the fixed predictors on the finest partitions */
    {
        uint64_t tot[P_LPC0] = {0, 0, 0, 0, 0, 0};
        uint64_t gain, best = 0;
        for (j = 0; j < (1u << pmaxo); j++) {
            uint64_t f[P_COUNT], m = UINT64_MAX;
            fixed_scores(x, part_start(n, pmaxo, j), part_start(n, pmaxo, j + 1), P, fmt, f);
            for (id = 0; id < P_LPC0; id++) {
                e->sc[id][j] = f[id];
                tot[id] += f[id];
                m = f[id] < m ? f[id] : m;
            }
            best += m; /* each sub-block with its best fixed predictor */
        }
        e->mfull = 0;
        if (md && md->H) {
            /* codec 2: the scores of x - m per finest partition; the model's values kept for
             * the residuals when the segment lies within the basis */
            if (first + n <= e->nbas) {
                uint32_t t, i;
                for (t = 0; t < n; t += TILE) {
                    uint32_t cnt = n - t < TILE ? n - t : TILE;
                    enc_model(e, md, first + t, cnt, e->mt);
                    for (i = 0; i < cnt; i++)
                        e->mbuf[t + i] = (int32_t)e->mt[i];
                }
                e->mfull = 1;
            }
            for (j = 0; j < (1u << pmaxo); j++) {
                uint32_t s = part_start(n, pmaxo, j), end = part_start(n, pmaxo, j + 1), i, t;
                uint64_t sum = 0;
                if (e->mfull) {
                    for (i = s; i < end; i++) {
                        int64_t r = (int64_t)x[i] - e->mbuf[i];
                        sum += (uint64_t)(r < 0 ? -r : r);
                    }
                } else {
                    for (t = s; t < end; t += TILE) {
                        uint32_t cnt = end - t < TILE ? end - t : TILE;
                        enc_model(e, md, first + t, cnt, e->mt);
                        for (i = 0; i < cnt; i++) {
                            int64_t r = (int64_t)x[t + i] - e->mt[i];
                            sum += (uint64_t)(r < 0 ? -r : r);
                        }
                    }
                }
                msc[j] = sum;
                mtot += sum;
            }
            for (a = 0; a < 2u * md->H; a++)
                mbits += 5 + bitlen64(zigzag(md->a[a]));
        }
        /* Fitting LPCs costs most of the encoder's time and pays only when the best fixed
         * predictor is well above the noise floor (smooth or clean signals). On white noise of
         * deviation s the fixed predictors' mean |residual| is s times sqrt(2), sqrt(6),
         * sqrt(20), sqrt(2), 2 (orders 1..3, cycle, cycle + difference); the least of the
         * scores divided by these bounds the noise from above. An LPC can at best reach about
         * the noise; the cycle LPC is tried when the fixed predictors, each sub-block with its
         * best, are 2 times the noise or more, the short-term one from 4 times. */
        {
            static const uint32_t g16[P_LPC0] = {0, 23, 39, 72, 23, 32}; /* 16 x gain */
            uint64_t floor16 = UINT64_MAX;
            for (id = 1; id < P_LPC0; id++) {
                if (tot[id] >= SC_NONE)
                    continue;
                if (tot[id] * 16 / g16[id] < floor16)
                    floor16 = tot[id] * 16 / g16[id];
            }
            if (mbits) {
                /* x - m is the noise itself where the model fits: it bounds the floor too, and
                 * each sub-block may take it instead of its best fixed predictor */
                uint64_t bm = 0;
                fixbest = best;
                if (mtot < floor16)
                    floor16 = mtot;
                for (j = 0; j < (1u << pmaxo); j++) {
                    uint64_t m = msc[j];
                    for (id = 1; id < P_LPC0; id++)
                        if (e->sc[id][j] < m)
                            m = e->sc[id][j];
                    bm += m;
                }
                if (bm < best)
                    best = bm;
            }
            gain = floor16 && best > floor16 ? bitlen64(best / (floor16 + 1)) : 0;
        }
        /* coefficient precision: the cleaner the signal (the further above the noise), the
         * more it pays (tuned on bench/codec_bench's signals) */
        mag = gain >= 4 ? LPC_MAG : gain == 3 ? 13 : (unsigned)gain + 8;
        if (gain >= 2 || n < 64) {
            /* LPC candidates: with a period, 2 short taps plus taps around one (and on long
             * segments two) cycles back, fitted where those taps lie inside the block; short-term
             * order 8 in a segment with the block's first cycle, or without a period */
            if (P) {
                unsigned lc = (first + n >= 4 * P && n >= 3 * P) ? 3 : 2;
                for (; lc >= 2; lc--) {
                    lpc_t tmp;
                    uint32_t ml;
                    tmp.order = 2;
                    tmp.lcode = (uint8_t)lc;
                    ml = lpc_maxlag(&tmp, P);
                    if (fit_lpc(x, ml > first ? ml - first : 0, n, P, 2, lc, mag,
                                &ch->lpc[ch->nlpc]) == 0) {
                        ch->nlpc++;
                        break;
                    }
                }
            }
            if ((!P || (first < P + 1 && gain >= 3)) &&
                fit_lpc(x, 8 > first ? 8 - first : 0, n, 0, 8, 0, mag, &ch->lpc[ch->nlpc]) == 0)
                ch->nlpc++;
        }
    }
    /* scores of the LPCs */
    for (j = 0; j < (1u << pmaxo); j++) {
        uint32_t s = part_start(n, pmaxo, j), end = part_start(n, pmaxo, j + 1);
        for (a = 0; a < MAX_LPC; a++) {
            uint64_t sum = 0;
            uint32_t i;
            if (a >= ch->nlpc || first + s < lpc_maxlag(&ch->lpc[a], P)) {
                e->sc[P_LPC0 + a][j] = SC_NONE;
                continue;
            }
            lpc_residuals(&ch->lpc[a], x, (long)s, end - s, e->r);
            for (i = 0; i < end - s; i++)
                sum += (uint64_t)(e->r[i] < 0 ? -e->r[i] : e->r[i]);
            e->sc[P_LPC0 + a][j] = sum;
        }
    }
    /* choose the LPC predictors worth their coefficients, the partition order and each
     * partition's predictor, on estimates */
    {
        /* all LPCs or none: the mixed cases rarely win and cost time. The choice with all is
         * applied at once and redone without only when that is strictly cheaper. */
        unsigned bmask = (1u << ch->nlpc) - 1;
        uint64_t bcost;
        if (mbits) {
            /* predictor 0 is x - m when the channel carries its model: worth its coefficients?
             * Clear when the model alone leaves at most 2/3 of the residual of the best fixed
             * predictors and its coefficients cost under half a bit per set; else estimated. */
            uint64_t c0 = 0, c1 = 0, t;
            int clear = mtot * 3 <= fixbest * 2 && mbits * 2 < n;
            if (!clear)
                c0 = choose_parts(e, ch, n, pmaxo, pmin, bmask, 0);
            for (j = 0; j < (1u << pmaxo); j++) { /* swapped back below if not worth it */
                t = e->sc[P_ZERO][j];
                e->sc[P_ZERO][j] = msc[j];
                msc[j] = t;
            }
            if (!clear)
                c1 = choose_parts(e, ch, n, pmaxo, pmin, bmask, 0) + mbits;
            if (clear || c1 < c0)
                e->use_model = 1;
            else
                for (j = 0; j < (1u << pmaxo); j++)
                    e->sc[P_ZERO][j] = msc[j];
        }
        bcost = choose_parts(e, ch, n, pmaxo, pmin, bmask, 1);
        for (a = 0; a < ch->nlpc; a++)
            bcost += 16 + (uint64_t)ch->lpc[a].ntaps * ch->lpc[a].prec;
        if (bmask && choose_parts(e, ch, n, pmaxo, pmin, 0, 0) < bcost) {
            bmask = 0;
            (void)choose_parts(e, ch, n, pmaxo, pmin, 0, 1);
        }
        /* keep the chosen LPCs only, renumbered in order */
        for (a = 0, q = 0; a < ch->nlpc; a++) {
            if (!(bmask >> a & 1))
                continue;
            for (j = 0; j < (1u << ch->porder); j++)
                if (ch->pred[j] == P_LPC0 + a)
                    ch->pred[j] = (uint8_t)(P_LPC0 + q);
            if (q != a)
                ch->lpc[q] = ch->lpc[a];
            q++;
        }
        ch->nlpc = (uint8_t)q;
    }

    /* write: warm-up, LPC definitions, partitions */
    if (first == 0)
        bw_put(w, (uint32_t)x[0], sbits);
    if (e->mdl) /* codec 2 model segment: H, then the coefficients (A.11) */
        e->hpos[e->nh] = bw_tell(w);
    if (e->mdl) {
        if (e->use_model) {
            bw_put(w, md->H, 3);
            for (a = 0; a < 2u * md->H; a++) {
                unsigned cw = md->a[a] ? bitlen64(zigzag(md->a[a])) : 0;
                bw_put(w, cw, 5);
                if (cw)
                    bw_put(w, (uint32_t)md->a[a], cw);
            }
        } else {
            bw_put(w, 0, 3);
        }
    }
    bw_put(w, ch->nlpc, 2);
    for (a = 0; a < ch->nlpc; a++) {
        const lpc_t *l = &ch->lpc[a];
        bw_put(w, l->order, 5);
        bw_put(w, l->lcode, 2);
        bw_put(w, l->prec - 1u, 4);
        bw_put(w, l->shift, 5);
        for (q = 0; q < l->ntaps; q++)
            bw_put(w, (uint32_t)l->coef[q], l->prec);
    }
    bw_put(w, ch->porder, 4);
    for (j = 0; j < (1u << ch->porder); j++) {
        uint32_t s = part_start(n, ch->porder, j), end = part_start(n, ch->porder, j + 1);
        uint32_t cnt = end - s, i;
        uint64_t sq[3] = {0, 0, 0}, umax = 0, pb = UINT64_MAX;
        unsigned kc, k0, k = RICE_ESCAPE, wb;
        (void)rice_est(2 * e->psc[j], cnt, &kc);
        k0 = kc > 0 ? kc - 1 : 0;
        if (k0 + 2 >= RICE_ESCAPE)
            k0 = RICE_ESCAPE - 3;
        if (ch->pred[j] == P_ZERO && e->use_model) {
            model_resid(e, md, x, first, s, cnt, e->r);
        } else {
            enc_residuals(ch, ch->pred[j], P, x, (long)s, cnt, e->r);
        }
        zig_sums(e->r, cnt, k0, sq, &umax);
        if (umax >> MAX_U_BITS) {
            /* an LPC gone wild on extreme int32 samples: residuals too wide for any code;
             * predictor 0 (the samples, < 2^32 zigzagged) always has a valid escape */
            ch->pred[j] = P_ZERO;
            if (e->use_model)
                model_resid(e, md, x, first, s, cnt, e->r);
            else
                enc_residuals(ch, P_ZERO, P, x, (long)s, cnt, e->r);
            zig_sums(e->r, cnt, k0, sq, &umax);
        }
        if (!(umax >> MAX_U_BITS)) {
            for (a = 0; a < 3; a++) {
                uint64_t cb = (uint64_t)cnt * (k0 + a + 1) + sq[a];
                if (cb < pb) {
                    pb = cb;
                    k = k0 + a;
                }
            }
        }
        wb = bitlen64(umax); /* umax is the OR: same bit length as the maximum */
        if (wb <= MAX_ESC_BITS && 6 + (uint64_t)cnt * wb <= pb)
            k = RICE_ESCAPE;
        ch->k[j] = (uint8_t)k;
        ch->w[j] = (uint8_t)wb;
        /* partition header: predictor and Rice parameter, coded relative to the previous
         * partition's (docs/protocol.md, Codec 1) */
        if (j > 0 && ch->pred[j] == ch->pred[j - 1]) {
            bw_put(w, 1, 1);
        } else {
            if (j > 0)
                bw_put(w, 0, 1);
            bw_put(w, ch->pred[j], 3);
        }
        if (j == 0)
            bw_put(w, k, 5);
        else if (k == ch->k[j - 1])
            bw_put(w, 0, 2);
        else if (k == ch->k[j - 1] + 1u)
            bw_put(w, 1, 2);
        else if (k + 1u == ch->k[j - 1])
            bw_put(w, 2, 2);
        else
            bw_put(w, (3u << 5) | k, 7);
        if (k == RICE_ESCAPE) {
            bw_put(w, wb, 6);
            if (wb)
                for (i = 0; i < cnt; i++) /* e->r holds the zigzagged residuals */
                    bw_bits(w, (uint64_t)unzigzag((uint64_t)e->r[i]), wb);
        } else {
            bw_rice(w, (const uint64_t *)(const void *)e->r, cnt, k);
        }
    }
    if (bw_tell(w) - start >
        (first == 0 ? sbits : 0) + (e->mdl ? 3u : 0u) + 2 + 4 + 3 + 5 + 6 + (uint64_t)n * sbits) {
        /* never worse than the samples themselves (wcodec_bound relies on it): no LPC, one
         * partition, order 0, escaped at the width of the widest sample */
        uint64_t umax = 0;
        uint32_t i;
        *w = saved;
        for (i = 0; i < n; i++)
            umax |= zigzag(x[i]);
        e->use_model = 0;
        if (e->mdl)
            e->hpos[e->nh] = bw_tell(w) + (first == 0 ? sbits : 0);
        wb_raw(w, x, n, first == 0 ? sbits : 0, e->mdl != NULL, bitlen64(umax));
    }
    e->any_model |= e->use_model;
    if (e->mdl)
        e->nh++;
}

/* Payload p of nbits bits (MSB first), a model segment where no channel kept its model: removes
 * F (the first 32 bits) and each channel's 3-bit H field at bit offsets hpos[0..nch), in place
 * (bits only move towards the start), zero-pads to a byte. Returns the new length in bytes:
 * the codec-1 form of the same segment. */
static size_t strip_model(uint8_t *p, uint64_t nbits, const uint64_t *hpos, int nch)
{
    /* a reader and a writer on the same bytes: the writer stays at least 32 bits behind what
     * the reader has loaded, so it never overwrites a byte not yet read */
    br_t r;
    bw_t w;
    uint64_t cur = 32, end;
    uint32_t v = 0;
    int c;
    r.p = p;
    r.end = p + (nbits + 7) / 8;
    r.acc = 0;
    r.nacc = 0;
    w.base = p;
    w.room = (size_t)((nbits + 7) / 8);
    w.pos = 0;
    w.acc = 0;
    w.nacc = 0;
    (void)br_get(&r, 32, &v);
    for (c = 0; c <= nch; c++) {
        end = c < nch ? hpos[c] : nbits;
        while (end - cur >= 32) {
            (void)br_get(&r, 32, &v);
            bw_put(&w, v, 32);
            cur += 32;
        }
        if (end > cur) {
            (void)br_get(&r, (unsigned)(end - cur), &v);
            bw_put(&w, v, (unsigned)(end - cur));
            cur = end;
        }
        if (c < nch) {
            (void)br_get(&r, 3, &v); /* H = 0 */
            cur += 3;
        }
    }
    bw_flush(&w);
    return w.pos;
}

/* Sums over g = 0..n-1 of cos(w g) and sin(w g), in closed form. */
static void trig_sums(double w, uint32_t n, double *cs, double *ss)
{
    double h = sin(0.5 * w);
    if (fabs(h) < 1e-12) { /* w a multiple of 2 pi (w = 0: the diagonal) */
        *cs = (double)n;
        *ss = 0;
        return;
    }
    {
        double r = sin(0.5 * w * (double)n) / h, m = 0.5 * w * (double)(n - 1);
        *cs = r * cos(m);
        *ss = r * sin(m);
    }
}

/* Fits the block's model for codec 2: the phase step F near the period hint P, from the drift of
 * the fundamental's phase between the block's two halves (one value for all channels, weighted
 * by amplitude), then per channel the sine and cosine coefficients of harmonics 1, 3, 5, 7 by
 * least squares over the whole block, on the decoder's own basis (msin), rounded to counts. Only
 * what any 50/60 Hz waveform has is assumed. Returns 0, or -1 when there is no model to fit. */
static int fit_model(const uint8_t *block, uint32_t nsets, int nch, int fmt, uint32_t P,
                     model_t *md, uint32_t *Fout, int32_t (*bas_out)[2 * FIT_H], uint32_t *nbas)
{
    const double q30 = 1.0 / 1073741824.0, two_pi = 6.283185307179586476925286766559;
    double s1[WCODEC_MAX_CHANNELS], c1[WCODEC_MAX_CHANNELS], s2[WCODEC_MAX_CHANNELS],
        c2[WCODEC_MAX_CHANNELS], A[FIT_TAPS][FIT_TAPS], b[WCODEC_MAX_CHANNELS][FIT_TAPS];
    double dphi = 0, wsum = 0, w0, w;
    size_t stride = (size_t)nch * (size_t)fmt * 2u, cw = (size_t)fmt * 2u;
    uint32_t F0, F, g, half = nsets / 2, ph, fs;
    unsigned i, j;
    int c;

    if (P < 2 || nsets < 2 * P || nsets < 32)
        return -1;
    F0 = (uint32_t)((((uint64_t)1 << 32) + P / 2) / P);
    for (c = 0; c < nch; c++)
        s1[c] = c1[c] = s2[c] = c2[c] = 0;
    fs = P / FREQ_SPC ? P / FREQ_SPC : 1;
    for (g = 0, ph = 0; g < 2 * half; g += fs, ph += fs * F0) {
        double sv = (double)msin(ph), cv = (double)msin(ph + 0x40000000u);
        const uint8_t *p = block + (size_t)g * stride;
        double *sa = g < half ? s1 : s2, *ca = g < half ? c1 : c2;
        for (c = 0; c < nch; c++, p += cw) {
            double v = (double)rd_sample(p, fmt);
            sa[c] += sv * v;
            ca[c] += cv * v;
        }
    }
    /* each half's phase by a least-squares fit of the fundamental at F0 (its 2 x 2 normal matrix
     * in closed form): unlike the bare correlations, not biased by the negative frequency over
     * a few cycles */
    {
        double wk = (double)F0 * (two_pi / 4294967296.0) * (double)fs, G[2][3];
        uint32_t k1 = (half + fs - 1) / fs, k2 = (2 * half + fs - 1) / fs, hh;
        for (hh = 0; hh < 2; hh++) {
            uint32_t ka = hh ? k1 : 0, nk = hh ? k2 - k1 : k1;
            double C, S, cr, sr;
            trig_sums(2 * wk, nk, &C, &S);
            cr = cos(2 * wk * ka) * C - sin(2 * wk * ka) * S; /* sums over k = ka .. ka+nk-1 */
            sr = sin(2 * wk * ka) * C + cos(2 * wk * ka) * S;
            G[hh][0] = 0.5 * ((double)nk - cr); /* sin sin */
            G[hh][1] = 0.5 * sr;                /* sin cos */
            G[hh][2] = 0.5 * ((double)nk + cr); /* cos cos */
        }
        for (c = 0; c < nch; c++) {
            double *sv[2] = {&s1[c], &s2[c]}, *cv[2] = {&c1[c], &c2[c]};
            for (hh = 0; hh < 2; hh++) {
                double det = G[hh][0] * G[hh][2] - G[hh][1] * G[hh][1], a, bb;
                if (!(det > 1e-9))
                    continue; /* too short: keep the correlations */
                a = (G[hh][2] * *sv[hh] - G[hh][1] * *cv[hh]) / det;
                bb = (G[hh][0] * *cv[hh] - G[hh][1] * *sv[hh]) / det;
                *sv[hh] = a;
                *cv[hh] = bb;
            }
        }
    }
    for (c = 0; c < nch; c++) {
        double d = atan2(c2[c], s2[c]) - atan2(c1[c], s1[c]), a2 = s1[c] * s1[c] + c1[c] * c1[c];
        while (d > two_pi / 2)
            d -= two_pi;
        while (d < -two_pi / 2)
            d += two_pi;
        dphi += d * a2;
        wsum += a2;
    }
    w0 = two_pi / (double)P;
    w = wsum > 0 ? w0 + dphi / wsum / (double)half : w0;
    {
        double f = w / two_pi * 4294967296.0;
        F = f > 0 && fabs(f - (double)F0) < (double)F0 / 8 ? (uint32_t)(f + 0.5) : F0;
    }
    /* least squares on the basis, one normal matrix for all channels */
    for (i = 0; i < 2 * FIT_H; i++)
        for (j = 0; j < 2 * FIT_H; j++)
            A[i][j] = 0;
    for (c = 0; c < nch; c++)
        for (i = 0; i < 2 * FIT_H; i++)
            b[c][i] = 0;
    for (g = 0; g < nsets; g++) {
        double bas[2 * FIT_H];
        int32_t bi[2 * FIT_H];
        const uint8_t *p = block + (size_t)g * stride;
        uint32_t pg = F * g;
        for (j = 0; j < FIT_H; j++) {
            uint32_t t = (2u * j + 1u) * pg;
            bi[2 * j] = (int32_t)msin(t);
            bi[2 * j + 1] = (int32_t)msin(t + 0x40000000u);
        }
        if (g < BAS_MAX) /* kept: the encoder's model values are sums over it */
            memcpy(bas_out[g], bi, sizeof bi);
        for (i = 0; i < 2 * FIT_H; i++)
            bas[i] = (double)bi[i] * q30;
        if (fmt == 1) {
            for (c = 0; c < nch; c++, p += 2) {
                double v = (double)u2i16((uint32_t)p[0] | (uint32_t)p[1] << 8);
                for (i = 0; i < 2 * FIT_H; i++)
                    b[c][i] += bas[i] * v;
            }
        } else {
            for (c = 0; c < nch; c++, p += cw) {
                double v = (double)rd_sample(p, fmt);
                for (i = 0; i < 2 * FIT_H; i++)
                    b[c][i] += bas[i] * v;
            }
        }
    }
    /* The normal matrix depends on F and nsets only: the sums over the block of products of
     * sines and cosines of harmonics, in closed form (the basis is S, a sine within 5e-6; the
     * fit need not be exact, only the decoder's synthesis is) */
    {
        double wf = (double)F * (two_pi / 4294967296.0);
        for (i = 0; i < 2 * FIT_H; i++)
            for (j = 0; j <= i; j++) {
                double hi = (double)(2 * (i / 2) + 1), hj = (double)(2 * (j / 2) + 1);
                double cd, sd, cs, ss, v;
                trig_sums((hi - hj) * wf, nsets, &cd, &sd);
                trig_sums((hi + hj) * wf, nsets, &cs, &ss);
                if (i % 2 == 0 && j % 2 == 0) /* sin sin */
                    v = 0.5 * (cd - cs);
                else if (i % 2 == 1 && j % 2 == 1) /* cos cos */
                    v = 0.5 * (cd + cs);
                else if (i % 2 == 0) /* sin_i cos_j */
                    v = 0.5 * (ss + sd);
                else /* cos_i sin_j = sin_j cos_i: sin((hj + hi) w) + sin((hj - hi) w) */
                    v = 0.5 * (ss - sd);
                A[i][j] = v;
            }
    }
    for (i = 0; i < 2 * FIT_H; i++)
        A[i][i] += A[i][i] * 1e-9 + 1e-6;
    if (chol_multi(A, 2 * FIT_H, b, (unsigned)nch) != 0)
        return -1;
    for (c = 0; c < nch; c++) {
        md[c].H = FIT_H;
        for (i = 0; i < 2 * FIT_H; i++) {
            double y = b[c][i];
            const double lim = (double)((1 << (MODEL_CW_MAX - 1)) - 1);
            md[c].a[i] = (int32_t)lround(y > lim ? lim : y < -lim ? -lim : y);
        }
        while (md[c].H && !md[c].a[2 * md[c].H - 1] && !md[c].a[2 * md[c].H - 2])
            md[c].H--;
    }
    *Fout = F;
    *nbas = nsets < BAS_MAX ? nsets : BAS_MAX;
    return 0;
}

static uint32_t pick_period(uint32_t hint)
{
    return hint >= 2 && hint <= MAX_PERIOD ? hint : 0;
}

/* History the encoder loads before `first`. */
static uint32_t enc_hist(uint32_t P)
{
    return 2 * P + 1 > MAX_SHORT ? 2 * P + 1 : MAX_SHORT;
}

/* Estimated size of the segment [first, first+n) from the fixed predictors alone (no LPC, no
 * writing): about a third of an encode, used to aim the chunk-filling search. With `aim`, also
 * the number of sets whose estimated size reaches cap (from the cumulative estimate over the
 * finest partitions, each with its best fixed predictor, interpolated within a partition): the
 * estimate is above the real size where LPCs pay, so the aim usually fits, close below. */
static size_t estimate_segment(enc_t *e, const uint8_t *block, int nch, int fmt, uint32_t P,
                               uint32_t first, uint32_t n, size_t cap, uint32_t *aim)
{
    uint32_t h = enc_hist(P), j, np;
    uint64_t bits = 0, acc, fixed, mall = 0;
    unsigned pmaxo = 0, id;
    int c;

    while (pmaxo < MAX_PORDER && (n >> (pmaxo + 1)) >= MIN_PART)
        pmaxo++;
    np = 1u << pmaxo;
    for (j = 0; j < np; j++)
        e->psc[j] = 0; /* per finest partition: estimated bits, all channels */
    e->ch.nlpc = 0;
    for (c = 0; c < nch; c++) {
        const model_t *md = e->mdl && e->mdl[c].H ? &e->mdl[c] : NULL;
        load_chan(block, nch, fmt, c, first, h, n, set0(block, fmt, c), e->x);
        for (j = 0; j < np; j++) {
            uint64_t f[P_COUNT], m = UINT64_MAX;
            uint32_t s = part_start(n, pmaxo, j), end = part_start(n, pmaxo, j + 1);
            fixed_scores(e->x + h, s, end, P, fmt, f);
            if (md) { /* codec 2: the model, as predictor 0 (the estimate aims chunks); on
                       * every 4th set where the basis is kept */
                uint32_t t, i, cnt = 0;
                uint64_t sum = 0;
                if (first + end <= e->nbas && e->mvals) {
                    for (i = s; i < end; i++, cnt++) {
                        int64_t r = (int64_t)e->x[h + i] - e->bas[first + i][c];
                        sum += (uint64_t)(r < 0 ? -r : r);
                    }
                } else if (first + end <= e->nbas && md->H <= FIT_H) {
                    int64_t a[2 * FIT_H];
                    unsigned k;
                    for (k = 0; k < 2 * FIT_H; k++)
                        a[k] = k < 2u * md->H ? md->a[k] : 0;
                    for (i = s; i < end; i += 4, cnt++) {
                        const int32_t *b = e->bas[first + i];
                        int64_t r = (int64_t)e->x[h + i] -
                                    model_round(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] +
                                                a[3] * b[3] + a[4] * b[4] + a[5] * b[5] +
                                                a[6] * b[6] + a[7] * b[7]);
                        sum += (uint64_t)(r < 0 ? -r : r);
                    }
                    sum = cnt ? sum * (end - s) / cnt : 0;
                } else {
                    for (t = s; t < end; t += TILE) {
                        uint32_t tc = end - t < TILE ? end - t : TILE;
                        enc_model(e, md, first + t, tc, e->mt);
                        for (i = 0; i < tc; i++) {
                            int64_t r = (int64_t)e->x[h + t + i] - e->mt[i];
                            sum += (uint64_t)(r < 0 ? -r : r);
                        }
                    }
                }
                f[P_ZERO] = sum;
            }
            for (id = 0; id < P_LPC0; id++) {
                e->sc[id][j] = f[id];
                m = f[id] < m ? f[id] : m;
            }
            e->psc[j] += 4 + rice_est(2 * m, end - s, NULL);
        }
        if (md) {
            unsigned a;
            for (a = 0; a < 2u * md->H; a++)
                mall += 5 + bitlen64(zigzag(md->a[a]));
        }
        bits += (first == 0 ? (fmt == 1 ? 16u : 32u) : 0) + 6 +
                choose_parts(e, &e->ch, n, pmaxo, 0, 0, 0);
    }
    if (e->mdl)
        mall += 32 + 3 * (uint64_t)nch;
    bits += mall;
    if (aim) {
        fixed = (uint64_t)(1 + varint_len(n - 1) + varint_len(P) + 3) * 8 + mall +
                (uint64_t)nch * ((first == 0 ? (fmt == 1 ? 16u : 32u) : 0) + 6);
        acc = fixed;
        *aim = 0;
        for (j = 0; j < np; j++) {
            uint32_t s = part_start(n, pmaxo, j), end = part_start(n, pmaxo, j + 1);
            if (acc + e->psc[j] > (uint64_t)cap * 8) {
                if (acc < (uint64_t)cap * 8 && e->psc[j])
                    s += (uint32_t)(((uint64_t)cap * 8 - acc) * (end - s) / e->psc[j]);
                *aim = s;
                break;
            }
            acc += e->psc[j];
            *aim = end;
        }
    }
    return 1 + varint_len(n - 1) + varint_len(P) + 3 + (size_t)((bits + 7) / 8);
}

/* Encodes sets [first, first+n) as one segment into out[0..cap). Returns the segment's size,
 * which is > cap when it does not fit (out then holds garbage). */
static size_t encode_try(enc_t *e, const uint8_t *block, int nch, int fmt, uint32_t P,
                         uint32_t first, uint32_t n, uint8_t *out, size_t cap)
{
    uint32_t h = enc_hist(P);
    size_t hg = 1 + varint_len(n - 1) + varint_len(P) + 3, hl, payload, total;
    int c, pass, model = 0;
    uint64_t nbits;
    bw_t w;

    e->any_model = 0;
    for (pass = 0; pass < 2; pass++) {
        /* pass 0 writes the payload after room for the longest header; pass 1 (only when
         * bytes were dropped but the exact header makes it fit) writes it in place */
        w.base = out + (hg < cap ? hg : cap);
        w.room = hg < cap ? cap - hg : 0;
        w.pos = 0;
        w.acc = 0;
        w.nacc = 0;
        e->nh = 0;
        if (e->mdl)
            bw_put(&w, e->F, 32);
        for (c = 0; c < nch; c++) {
            load_chan(block, nch, fmt, c, first, h, n, set0(block, fmt, c), e->x);
            enc_chan(e, &w, P, e->x + h, n, first, fmt, e->mdl ? &e->mdl[c] : NULL);
        }
        nbits = bw_tell(&w);
        bw_flush(&w);
        model = e->mdl != NULL;
        if (e->mdl && !e->any_model) {
            /* no channel took its model: the codec-1 form is smaller. The bits written are
             * that form with F and the H fields removed; when some did not fit, encode anew. */
            if (w.pos > w.room) {
                const model_t *keep = e->mdl;
                size_t r;
                e->mdl = NULL;
                r = encode_try(e, block, nch, fmt, P, first, n, out, cap);
                e->mdl = keep;
                return r;
            }
            w.pos = strip_model(w.base, nbits, e->hpos, nch);
            model = 0;
        }
        payload = w.pos;
        hl = 1 + varint_len(n - 1) + varint_len(P) + varint_len((uint32_t)payload);
        total = hl + payload;
        if (total > cap)
            return total;
        if (hg + payload <= cap)
            break;
        hg = hl; /* everything fits with the exact header: write again in place */
    }
    if (hg != hl)
        memmove(out + hl, out + hg, payload);
    out[0] = (uint8_t)(((fmt - 1) << 4) | (nch - 1) | (model ? SHAPE_MODEL : 0u));
    hl = 1;
    hl += put_varint(out + hl, n - 1);
    hl += put_varint(out + hl, P);
    hl += put_varint(out + hl, (uint32_t)payload);
    return hl + payload;
}

int wcodec_encode(const uint8_t *block, uint32_t nsets, int nch, int fmt, uint32_t period_hint,
                  uint32_t first, uint32_t max_sets, uint8_t *out, size_t cap, uint32_t *n_out,
                  size_t *len_out)
{
    return wcodec_encode_as(WCODEC_ID, block, nsets, nch, fmt, period_hint, first, max_sets, out,
                            cap, n_out, len_out);
}

/* The segment search of wcodec_encode_as with the work area e (its model set up). Kept out of
 * line, like its two callers, so that the codec-1 path's stack holds no model basis. */
NOINLINE static int encode_seg(enc_t *pe, const uint8_t *block, uint32_t nsets, int nch,
                               int fmt, uint32_t P, uint32_t first, uint32_t max_sets,
                               uint8_t *out, size_t cap, uint32_t *n_out, size_t *len_out);

NOINLINE static int encode_plain(const uint8_t *block, uint32_t nsets, int nch, int fmt,
                                 uint32_t P, uint32_t first, uint32_t max_sets, uint8_t *out,
                                 size_t cap, uint32_t *n_out, size_t *len_out)
{
    enc_t e;
    e.mdl = NULL;
    e.F = 0;
    e.bas = NULL;
    e.nbas = 0;
    e.mvals = 0;
    e.mbuf = NULL;
    return encode_seg(&e, block, nsets, nch, fmt, P, first, max_sets, out, cap, n_out, len_out);
}

NOINLINE static int encode_model(const uint8_t *block, uint32_t nsets, int nch, int fmt,
                                 uint32_t P, uint32_t first, uint32_t max_sets, uint8_t *out,
                                 size_t cap, uint32_t *n_out, size_t *len_out)
{
    enc_t e;
    model_t md[WCODEC_MAX_CHANNELS];
    int32_t bas[BAS_MAX][2 * FIT_H], mbuf[BAS_MAX];
    e.mbuf = mbuf;
    e.mdl = NULL;
    e.F = 0;
    e.bas = (const int32_t(*)[2 * FIT_H])bas;
    e.nbas = 0;
    e.mvals = 0;
    /* The model pays in the block's first cycle, where the cycle predictors have no history:
     * segments starting later (wire chunks after the first) go without, as codec 1 (measured:
     * the same bytes in 1000-byte chunks, a fifth less time) */
    if (first < P && fit_model(block, nsets, nch, fmt, P, md, &e.F, bas, &e.nbas) == 0) {
        e.mdl = md;
        if (nch <= 2 * FIT_H) {
            /* every channel's model values once, in place of the basis: the chunk search's
             * trial encodes and its estimate read them instead of recomputing them */
            uint32_t g;
            int c;
            int64_t a[2 * FIT_H][2 * FIT_H]; /* per channel, zero past 2H */
            for (c = 0; c < nch; c++) {
                unsigned k;
                for (k = 0; k < 2 * FIT_H; k++)
                    a[c][k] = k < 2u * md[c].H ? md[c].a[k] : 0;
            }
            for (g = 0; g < e.nbas; g++) {
                const int64_t b0 = bas[g][0], b1 = bas[g][1], b2 = bas[g][2], b3 = bas[g][3],
                              b4 = bas[g][4], b5 = bas[g][5], b6 = bas[g][6], b7 = bas[g][7];
                for (c = 0; c < nch; c++) { /* bas[g][c] is read above before any write */
                    const int64_t *q = a[c];
                    bas[g][c] = (int32_t)model_round(q[0] * b0 + q[1] * b1 + q[2] * b2 +
                                                     q[3] * b3 + q[4] * b4 + q[5] * b5 +
                                                     q[6] * b6 + q[7] * b7);
                }
            }
            e.mvals = 1;
        }
    }
    return encode_seg(&e, block, nsets, nch, fmt, P, first, max_sets, out, cap, n_out, len_out);
}

int wcodec_encode_as(int codec, const uint8_t *block, uint32_t nsets, int nch, int fmt,
                     uint32_t period_hint, uint32_t first, uint32_t max_sets, uint8_t *out,
                     size_t cap, uint32_t *n_out, size_t *len_out)
{
    uint32_t P = pick_period(period_hint);
    if (!block || !out || !n_out || !len_out || !check_shape(nsets, nch, fmt) || first >= nsets ||
        max_sets == 0 || (codec != WCODEC_ID && codec != WCODEC_ID_MODEL))
        return WCODEC_E_ARG;
    if (codec == WCODEC_ID_MODEL)
        return encode_model(block, nsets, nch, fmt, P, first, max_sets, out, cap, n_out,
                            len_out);
    return encode_plain(block, nsets, nch, fmt, P, first, max_sets, out, cap, n_out, len_out);
}

NOINLINE static int encode_seg(enc_t *pe, const uint8_t *block, uint32_t nsets, int nch,
                               int fmt, uint32_t P, uint32_t first, uint32_t max_sets,
                               uint8_t *out, size_t cap, uint32_t *n_out, size_t *len_out)
{
#define e (*pe)
    uint32_t n, lo, hi, last, aim = 0;
    size_t sz, est;
    int hi_tested;

    n = nsets - first;
    if (max_sets < n)
        n = max_sets;
    /* Chunk filling: when even the estimate is far above cap, do not encode all n sets just to
     * learn that they do not fit; aim with the estimate instead (hi is then untested). */
    last = 0;
    if (n > 32 && (uint64_t)n * (uint64_t)nch * (uint64_t)fmt * 2u > cap &&
        (est = estimate_segment(&e, block, nch, fmt, P, first, n, cap, &aim)) > cap + cap / 4) {
        sz = est;
        hi_tested = 0;
    } else {
        sz = encode_try(&e, block, nch, fmt, P, first, n, out, cap);
        last = n;
        hi_tested = 1;
    }
    if (sz > cap) {
        /* Find the largest n that fits, with n + 1 not fitting (sizes grow with n, though not
         * strictly). lo fits (0 = none known), hi does not (or, untested, is the caller's n).
         * Aim from the latest measured size (mm sets, ms bytes; at first the estimate) as if the
         * size were proportional to n beyond a fixed overhead, or from the secant through the two
         * latest measurements when they are apart; each aim m is checked as m + 1 first: when
         * m + 1 does not fit and m does, out holds m and the search is over. Usually 3 encodes
         * in all (the aim, m + 1, m); bisection after 4 aims bounds the worst case. */
        size_t szlo = 0, ovh = 4 + (size_t)nch * 3, ms = hi_tested ? sz : 0, ps = 0;
        uint32_t n0 = n, mm = hi_tested ? n : 0, pm = 0, steps = 0;
        lo = 0;
        hi = n;
        while (hi - lo > 1) {
            double p;
            uint64_t m;
            size_t s2;
            if (++steps > 6)
                p = lo + (hi - lo) / 2; /* bisection */
            else if (steps == 1 && mm == 0 && aim)
                p = aim; /* the estimate's, usually fits and close */
            else if (pm && (pm > mm ? pm - mm : mm - pm) >= 2 && ps != ms)
                p = (double)mm + ((double)cap - (double)ms) * ((double)mm - (double)pm) /
                                     ((double)ms - (double)ps);
            else if (mm && ms > ovh + 1 && cap > ovh)
                p = (double)mm * (double)(cap - ovh) / (double)(ms - ovh);
            else if (sz > ovh + 1 && cap > ovh) /* the estimate for n0 */
                p = (double)n0 * (double)(cap - ovh) / (double)(sz - ovh);
            else
                p = lo;
            m = p <= lo ? lo : p >= hi ? hi - 1 : (uint64_t)p;
            /* m + 1 first: when it does not fit and m does, out holds m and we are done */
            if (m + 1 < hi || !hi_tested) {
                s2 = encode_try(&e, block, nch, fmt, P, first, (uint32_t)m + 1, out, cap);
                last = (uint32_t)m + 1;
                pm = mm;
                ps = ms;
                mm = last;
                ms = s2;
                if (s2 <= cap) {
                    lo = last;
                    szlo = s2;
                    continue;
                }
                hi = last;
                hi_tested = 1;
                /* m is known to fit, or m + 1 missed by more than about two sets: aim again */
                if (m == lo || (uint64_t)(s2 - cap) * mm > 2 * (uint64_t)s2)
                    continue;
            }
            s2 = encode_try(&e, block, nch, fmt, P, first, (uint32_t)m, out, cap);
            last = (uint32_t)m;
            pm = mm;
            ps = ms;
            mm = last;
            ms = s2;
            if (s2 <= cap) {
                lo = last;
                szlo = s2;
            } else {
                hi = last;
            }
        }
        if (lo + 1 == n0 && !hi_tested) { /* the estimate said n0 does not fit: make sure */
            size_t s2 = encode_try(&e, block, nch, fmt, P, first, n0, out, cap);
            last = n0;
            if (s2 <= cap) {
                lo = n0;
                szlo = s2;
            }
        }
        if (lo == 0)
            return WCODEC_E_SPACE;
        n = lo;
        sz = last == n ? szlo : encode_try(&e, block, nch, fmt, P, first, n, out, cap);
    }
    *len_out = sz;
    *n_out = n;
    return WCODEC_OK;
#undef e
}

/* ======================================================================================
 * Decoder
 * ====================================================================================== */

/* The decoder keeps one channel's samples in a sliding window x[0 .. DEC_WIN): x[h + i - base]
 * is set first + i of the channel, for the h sets of history its predictors read before `base`
 * and the sets decoded since. When a tile would run past the window's end, the decoded sets go to
 * the block and the window restarts at the tile, its history reloaded from the block. h <=
 * MAX_LAG leaves room for at least one tile, and for the usual lags (P around 80..256) a whole
 * block fits in one window. This bounds the decoder's stack independently of the block's size. */
#define DEC_WIN (MAX_LAG + 1 + TILE)
#define DEC_BAS   512 /* sets of a model segment's basis the decoder keeps (16 KiB) */
#define DEC_BAS_H 4   /* harmonics it keeps: 1, 3, 5, 7 */

typedef struct {
    int32_t x[DEC_WIN];
    int64_t r[TILE];
    chan_t ch;
    uint8_t *block; /* the window's channel: block, shape, first set, value of set 0 */
    int nch, fmt, c;
    uint32_t first, h, base;
    int32_t fill;
    model_t md;    /* codec 2 model segment: the channel's model (H = 0: none) */
    uint32_t F;    /* its phase step */
    int64_t m[TILE];
    /* model segments: the basis (harmonics 1..DEC_BAS_H) of the segment's first nbas sets,
     * computed once for all channels, in storage of DEC_BAS sets given by the caller (NULL: none) */
    int32_t (*bas)[2 * DEC_BAS_H];
    uint32_t nbas;
} dec_t;

/* Writes the window's decoded sets [base, upto) to the block. */
static void win_flush(dec_t *d, uint32_t upto)
{
    size_t stride = (size_t)d->nch * (size_t)d->fmt * 2u;
    uint8_t *p = d->block + (size_t)(d->first + d->base) * stride +
                 (size_t)d->c * (size_t)d->fmt * 2u;
    const int32_t *x = d->x + d->h;
    uint32_t i, m = upto - d->base;
    if (d->fmt == 1) {
        for (i = 0; i < m; i++, p += stride) {
            uint32_t u = (uint32_t)x[i];
            p[0] = (uint8_t)u;
            p[1] = (uint8_t)(u >> 8);
        }
    } else {
        for (i = 0; i < m; i++, p += stride)
            wr_sample(p, 2, x[i]);
    }
}

/* Restarts the window at set t (segment-relative) after flushing what it holds. */
static void win_move(dec_t *d, uint32_t t)
{
    win_flush(d, t);
    d->base = t;
    load_chan(d->block, d->nch, d->fmt, d->c, d->first + t, d->h, 0, d->fill, d->x);
}

/* Reads the channel's LPC definitions. */
static int dec_lpcs(br_t *br, chan_t *ch, uint32_t P)
{
    uint32_t v, j;
    unsigned q;

    if (br_get(br, 2, &v) != 0 || v > MAX_LPC)
        return -1;
    ch->nlpc = (uint8_t)v;
    for (j = 0; j < ch->nlpc; j++) {
        lpc_t *l = &ch->lpc[j];
        uint32_t o, lc, pr, sh;
        if (br_get(br, 5, &o) || br_get(br, 2, &lc) || br_get(br, 4, &pr) || br_get(br, 5, &sh))
            return -1;
        if (o + nlong_of(lc) == 0 || (lc && P == 0))
            return -1;
        l->order = (uint8_t)o;
        l->lcode = (uint8_t)lc;
        l->prec = (uint8_t)(pr + 1);
        l->shift = (uint8_t)sh;
        lpc_lags(l, P);
        for (q = 0; q < l->ntaps; q++) {
            uint32_t cv;
            if (br_get(br, l->prec, &cv) != 0)
                return -1;
            /* sign-extend a prec-bit two's complement value */
            if (cv & ((uint32_t)1 << (l->prec - 1)))
                l->coef[q] = -(int32_t)(((uint32_t)1 << l->prec) - cv);
            else
                l->coef[q] = (int32_t)cv;
        }
    }
    return 0;
}

/* x[i0 .. i0+cnt) = prediction + r, checked against the format's range. */
static int reconstruct(const chan_t *ch, unsigned id, uint32_t P, int32_t *x, long i0,
                       uint32_t cnt, const int64_t *r, int64_t lo, int64_t hi, const int64_t *mt)
{
    int32_t *p = x + i0;
    long L = (long)P;
    uint32_t i;
    int64_t y;

#define PUT(expr)                                                                                  \
    do {                                                                                           \
        y = (expr) + r[i];                                                                         \
        if (y < lo || y > hi)                                                                      \
            return -1;                                                                             \
        p[i] = (int32_t)y;                                                                         \
    } while (0)
    switch (id) {
    case P_ZERO: /* the model's values (codec 2, A.11), else 0 */
        if (mt)
            for (i = 0; i < cnt; i++)
                PUT(mt[i]);
        else
            for (i = 0; i < cnt; i++)
                PUT(0);
        break;
    case P_ORD1:
        for (i = 0; i < cnt; i++)
            PUT((int64_t)p[(long)i - 1]);
        break;
    case P_ORD2:
        for (i = 0; i < cnt; i++)
            PUT(2 * (int64_t)p[(long)i - 1] - p[(long)i - 2]);
        break;
    case P_ORD3:
        for (i = 0; i < cnt; i++)
            PUT(3 * ((int64_t)p[(long)i - 1] - p[(long)i - 2]) + p[(long)i - 3]);
        break;
    case P_CYCLE:
        for (i = 0; i < cnt; i++)
            PUT((int64_t)p[(long)i - L]);
        break;
    case P_CYCLE_D1:
        for (i = 0; i < cnt; i++)
            PUT((int64_t)p[(long)i - 1] + p[(long)i - L] - p[(long)i - L - 1]);
        break;
    default: {
        const lpc_t *l = &ch->lpc[id - P_LPC0];
        for (i = 0; i < cnt; i++)
            PUT(lpc_predict(l, x, i0 + (long)i));
        break;
    }
    }
#undef PUT
    return 0;
}

/* d->m[0..cnt) = the channel's model at the segment's sets t .. t+cnt-1 (A.11): from the basis
 * kept for the segment's first sets (computed on first use, shared by the channels), else
 * model_tile. Both give the same integers. */
static void dec_model_vals(dec_t *d, uint32_t t, uint32_t cnt)
{
    uint32_t i;
    if (!d->bas || d->md.H > DEC_BAS_H || t + cnt > DEC_BAS) {
        model_tile(&d->md, d->F, d->first + t, cnt, d->m);
        return;
    }
    while (d->nbas < t + cnt) { /* extend the basis up to the sets needed */
        uint32_t g = d->nbas, pg = d->F * (d->first + g), j;
        for (j = 0; j < DEC_BAS_H; j++) {
            uint32_t th = (2u * j + 1u) * pg;
            d->bas[g][2 * j] = (int32_t)msin(th);
            d->bas[g][2 * j + 1] = (int32_t)msin(th + 0x40000000u);
        }
        d->nbas++;
    }
    {
        int64_t a[2 * DEC_BAS_H];
        unsigned k;
        for (k = 0; k < 2 * DEC_BAS_H; k++)
            a[k] = k < 2u * d->md.H ? d->md.a[k] : 0;
        for (i = 0; i < cnt; i++) {
            const int32_t *b = d->bas[t + i];
            d->m[i] = model_round(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3] +
                                  a[4] * b[4] + a[5] * b[5] + a[6] * b[6] + a[7] * b[7]);
        }
    }
}

/* Decodes one channel's partitions into x[0..n) (x has the history before it). */
static int dec_chan(br_t *br, dec_t *d, uint32_t P, uint32_t n, int fmt)
{
    int32_t *x = d->x + d->h;
    chan_t *ch = &d->ch;
    uint32_t v, np, j, pid, pk;
    int64_t lo = fmt == 1 ? -32768 : -(int64_t)2147483647 - 1;
    int64_t hi = fmt == 1 ? 32767 : 2147483647;

    if (br_get(br, 4, &v) != 0 || v > MAX_PORDER || (1u << v) > n)
        return -1;
    ch->porder = (uint8_t)v;
    np = 1u << v;
    pid = pk = 0;
    for (j = 0; j < np; j++) {
        uint32_t s = part_start(n, ch->porder, j), end = part_start(n, ch->porder, j + 1), t;
        uint32_t id, k, wb = 0, f;
        /* partition header: predictor and Rice parameter relative to the previous partition */
        if (j > 0 && br_get(br, 1, &f) == 0 && f == 1)
            id = pid;
        else if (br_get(br, 3, &id) != 0)
            return -1;
        if (j == 0) {
            if (br_get(br, 5, &k) != 0)
                return -1;
        } else {
            if (br_get(br, 2, &f) != 0)
                return -1;
            if (f == 0)
                k = pk;
            else if (f == 1 && pk < RICE_ESCAPE)
                k = pk + 1;
            else if (f == 2 && pk > 0)
                k = pk - 1;
            else if (f != 3 || br_get(br, 5, &k) != 0)
                return -1;
        }
        pid = id;
        pk = k;
        if ((id == P_CYCLE || id == P_CYCLE_D1) && P == 0)
            return -1;
        if (id >= P_LPC0 && id - P_LPC0 >= ch->nlpc)
            return -1;
        if (k == RICE_ESCAPE && (br_get(br, 6, &wb) != 0 || wb > MAX_ESC_BITS))
            return -1;
        for (t = s; t < end; t += TILE) {
            uint32_t cnt = end - t < TILE ? end - t : TILE, i;
            if (k == RICE_ESCAPE) {
                for (i = 0; i < cnt; i++) {
                    uint64_t u;
                    if (br_get64(br, wb, &u) != 0)
                        return -1;
                    if (wb && (u >> (wb - 1)) & 1u) /* sign-extend */
                        d->r[i] = -(int64_t)((((uint64_t)1 << wb) - u));
                    else
                        d->r[i] = (int64_t)u;
                }
            } else {
                uint64_t qmax = ((uint64_t)1 << (MAX_U_BITS - k)) - 1;
                for (i = 0; i < cnt; i++) {
                    uint64_t q;
                    uint32_t low;
                    if (br_unary(br, qmax, &q) != 0 || br_get(br, k, &low) != 0)
                        return -1;
                    d->r[i] = unzigzag((q << k) | low);
                }
            }
            if (t + cnt - d->base > DEC_WIN - d->h)
                win_move(d, t);
            if (id == P_ZERO && d->md.H)
                dec_model_vals(d, t, cnt);
            if (reconstruct(ch, id, P, x, (long)(t - d->base), cnt, d->r, lo, hi,
                            id == P_ZERO && d->md.H ? d->m : NULL) != 0)
                return -1;
        }
    }
    return 0;
}

/* Reads a channel's model (A.11): H, then 2H coefficients, each a 5-bit width and that many
 * bits, two's complement. */
static int dec_model(br_t *br, model_t *md)
{
    uint32_t h, v, cw, a;
    if (br_get(br, 3, &h) != 0)
        return -1;
    md->H = (uint8_t)h;
    for (a = 0; a < 2 * h; a++) {
        if (br_get(br, 5, &cw) != 0 || cw > MODEL_CW_MAX || br_get(br, cw, &v) != 0)
            return -1;
        if (cw && (v >> (cw - 1)) & 1u) /* sign-extend */
            md->a[a] = -(int32_t)(((uint32_t)1 << cw) - v);
        else
            md->a[a] = (int32_t)v;
    }
    return 0;
}

int wcodec_decode(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                  uint32_t first, uint8_t *block, uint32_t *n_out, size_t *used)
{
    return wcodec_decode_as(WCODEC_ID, in, len, nsets, nch, fmt, first, block, n_out, used);
}

static int decode_seg(dec_t *pd, int codec, const uint8_t *in, size_t len, uint32_t nsets,
                      int nch, int fmt, uint32_t first, uint8_t *block, uint32_t *n_out,
                      size_t *used);

/* The codec-2 path keeps a model segment's basis; the codec-1 path's stack holds none. */
NOINLINE static int decode_with_basis(int codec, const uint8_t *in, size_t len, uint32_t nsets,
                                      int nch, int fmt, uint32_t first, uint8_t *block,
                                      uint32_t *n_out, size_t *used)
{
    dec_t d;
    int32_t bas[DEC_BAS][2 * DEC_BAS_H];
    d.bas = bas;
    d.nbas = 0;
    return decode_seg(&d, codec, in, len, nsets, nch, fmt, first, block, n_out, used);
}

NOINLINE static int decode_plain(int codec, const uint8_t *in, size_t len, uint32_t nsets,
                                 int nch, int fmt, uint32_t first, uint8_t *block,
                                 uint32_t *n_out, size_t *used)
{
    dec_t d;
    d.bas = NULL;
    d.nbas = 0;
    return decode_seg(&d, codec, in, len, nsets, nch, fmt, first, block, n_out, used);
}

int wcodec_decode_as(int codec, const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                     uint32_t first, uint8_t *block, uint32_t *n_out, size_t *used)
{
    if (codec == WCODEC_ID_MODEL && in && len >= 1 && (in[0] & SHAPE_MODEL))
        return decode_with_basis(codec, in, len, nsets, nch, fmt, first, block, n_out, used);
    return decode_plain(codec, in, len, nsets, nch, fmt, first, block, n_out, used);
}

static int decode_seg(dec_t *pd, int codec, const uint8_t *in, size_t len, uint32_t nsets,
                      int nch, int fmt, uint32_t first, uint8_t *block, uint32_t *n_out,
                      size_t *used)
{
#define d (*pd)
    uint32_t nm1, P, plen, n;
    size_t pos = 1, u;
    br_t br;
    int c, model;
    uint8_t shape = (uint8_t)(((fmt - 1) << 4) | (nch - 1));

    if (!in || !block || !n_out || !used || !check_shape(nsets, nch, fmt) || first >= nsets ||
        (codec != WCODEC_ID && codec != WCODEC_ID_MODEL))
        return WCODEC_E_ARG;
    /* codec 2 segments may carry a model (shape bit 5); codec 1 segments never do */
    if (len < 1 || (in[0] != shape && (codec != WCODEC_ID_MODEL || in[0] != (shape | SHAPE_MODEL))))
        return WCODEC_E_MALFORMED;
    model = (in[0] & SHAPE_MODEL) != 0;
    if (!(u = get_varint(in + pos, len - pos, &nm1)))
        return WCODEC_E_MALFORMED;
    pos += u;
    if (!(u = get_varint(in + pos, len - pos, &P)))
        return WCODEC_E_MALFORMED;
    pos += u;
    if (!(u = get_varint(in + pos, len - pos, &plen)))
        return WCODEC_E_MALFORMED;
    pos += u;
    n = nm1 + 1;
    if (nm1 >= WCODEC_MAX_SETS || n > nsets - first || P > MAX_PERIOD || P == 1 ||
        plen > len - pos)
        return WCODEC_E_MALFORMED;
    br.p = in + pos;
    br.end = in + pos + plen;
    br.acc = 0;
    br.nacc = 0;
    d.block = block;
    d.nch = nch;
    d.fmt = fmt;
    d.first = first;
    d.md.H = 0;
    d.F = 0;
    if (model && br_get(&br, 32, &d.F) != 0)
        return WCODEC_E_MALFORMED;
    for (c = 0; c < nch; c++) {
        uint32_t wv = 0;
        int32_t fill;
        if (first == 0) { /* warm-up: the block's first sample, verbatim */
            if (br_get(&br, fmt == 1 ? 16 : 32, &wv) != 0)
                return WCODEC_E_MALFORMED;
            fill = fmt == 1 ? u2i16(wv) : u2i32(wv);
        } else {
            fill = set0(block, fmt, c);
        }
        if (model && dec_model(&br, &d.md) != 0)
            return WCODEC_E_MALFORMED;
        if (dec_lpcs(&br, &d.ch, P) != 0)
            return WCODEC_E_MALFORMED;
        d.c = c;
        d.fill = fill;
        d.h = chan_maxlag(&d.ch, P); /* <= MAX_LAG */
        d.base = 0;
        load_chan(block, nch, fmt, c, first, d.h, 0, fill, d.x);
        if (dec_chan(&br, &d, P, n, fmt) != 0)
            return WCODEC_E_MALFORMED;
        win_flush(&d, n);
        if (first == 0 && set0(block, fmt, c) != fill)
            return WCODEC_E_MALFORMED;
    }
    /* the payload must end exactly: fewer than 8 bits left, all zero, and no whole byte unread */
    if (br.p != br.end || br.nacc >= 8 || (br.nacc && (br.acc >> (64 - br.nacc)) != 0))
        return WCODEC_E_MALFORMED;
    *n_out = n;
    *used = pos + plen;
    return WCODEC_OK;
#undef d
}

int wcodec_decode_block(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                        uint8_t *block)
{
    return wcodec_decode_block_as(WCODEC_ID, in, len, nsets, nch, fmt, block);
}

int wcodec_decode_block_as(int codec, const uint8_t *in, size_t len, uint32_t nsets, int nch,
                           int fmt, uint8_t *block)
{
    uint32_t first = 0;
    size_t off = 0;

    if (!in || !block || !check_shape(nsets, nch, fmt) ||
        (codec != WCODEC_ID && codec != WCODEC_ID_MODEL))
        return WCODEC_E_MALFORMED;
    while (first < nsets) {
        uint32_t n;
        size_t used;
        if (off >= len ||
            wcodec_decode_as(codec, in + off, len - off, nsets, nch, fmt, first, block, &n,
                             &used) != 0)
            return WCODEC_E_MALFORMED;
        first += n;
        off += used;
    }
    return off == len ? WCODEC_OK : WCODEC_E_MALFORMED;
}

int wcodec_encode_block(const uint8_t *block, uint32_t nsets, int nch, int fmt,
                        uint32_t period_hint, uint8_t *out, size_t cap, size_t *len_out)
{
    return wcodec_encode_block_as(WCODEC_ID, block, nsets, nch, fmt, period_hint, out, cap,
                                  len_out);
}

int wcodec_encode_block_as(int codec, const uint8_t *block, uint32_t nsets, int nch, int fmt,
                           uint32_t period_hint, uint8_t *out, size_t cap, size_t *len_out)
{
    uint32_t first = 0;
    size_t off = 0;

    if (!block || !out || !len_out || !check_shape(nsets, nch, fmt))
        return WCODEC_E_ARG;
    while (first < nsets) {
        uint32_t n;
        size_t len;
        int rc = wcodec_encode_as(codec, block, nsets, nch, fmt, period_hint, first,
                                  nsets - first, out + off, cap - off, &n, &len);
        if (rc != 0)
            return rc;
        if (first + n < nsets)
            return WCODEC_E_SPACE; /* a whole block is one segment unless cap is too small */
        first += n;
        off += len;
    }
    *len_out = off;
    return WCODEC_OK;
}

int32_t wcodec_model_sin(uint32_t phase)
{
    return (int32_t)msin(phase);
}

size_t wcodec_bound(uint32_t nsets, int nch, int fmt)
{
    /* One segment: header, then per channel the first sample verbatim, no LPC (2 bits),
     * partition order (4), one
     * partition of predictor 0 (3) escaped (5 + 6) with 16 or 32 bits per sample. The
     * encoder never emits more than this because an escape of the raw width is always
     * available and is chosen when cheaper. Codec 2 adds at most its phase step (32) and, per
     * channel, a model's H (3): a model segment's channel costs at most its raw form plus H. */
    uint64_t bits = 32 + (uint64_t)nch * (3 + 2 + 4 + 3 + 5 + 6 +
                                          (uint64_t)(nsets + 1) * (fmt == 1 ? 16u : 32u));
    return HDR_MAX + (size_t)((bits + 7) / 8);
}
