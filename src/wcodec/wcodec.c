/* wcodec — lossless waveform codec (GSTP codec 1). See wcodec.h; the bitstream is specified in
 * docs/protocol.md, appendix "Codec 1".
 *
 * Structure of a segment (all details in the spec):
 *   byte header: shape byte, varint n-1, varint period P, varint payload length;
 *   payload, MSB-first bits, per channel: predictor id (+ its parameters), partition order,
 *   then per partition a Rice parameter (or an escape to fixed-width two's complement) and the
 *   residuals; zero bits pad the payload to a whole byte.
 * Samples before set 0 of the block read as 0, so every predictor is defined for every set
 * without warm-up samples.
 *
 * Portability: C99, no allocation, no global mutable state, no floating point in the decoder.
 * All prediction is done in int64_t on values bounded well below 2^62 (samples < 2^31,
 * coefficients < 2^15, at most 35 taps), residuals are checked before they are added, so
 * nothing overflows on any input. Right shifts of negative values are done on unsigned values
 * (floor division by a power of two) to stay clear of implementation-defined behaviour.
 */
#include "wcodec.h"

#include <string.h>

/* ---- limits of the bitstream (docs/protocol.md, Codec 1) ---- */
#define MAX_PERIOD   4095 /* P: one-cycle-back lag in sets */
#define MAX_SHORT    31   /* LPC short-term order */
#define MAX_LONG     3    /* LPC taps around lag P */
#define MAX_TAPS     (MAX_SHORT + MAX_LONG)
#define MAX_LAG      (MAX_PERIOD + 1)
#define MAX_PORDER   8    /* at most 256 Rice partitions per channel */
#define MAX_PARTS    (1 << MAX_PORDER)
#define RICE_ESCAPE  31   /* Rice parameter value announcing fixed-width residuals */
#define MAX_ESC_BITS 40   /* widest escaped residual */
#define MAX_U_BITS   40   /* zigzagged residuals are < 2^40 */
#define HDR_MAX      10   /* shape byte + 3 varints of at most 3 bytes each */

enum { P_ZERO = 0, P_ORD1, P_ORD2, P_ORD3, P_CYCLE, P_CYCLE_D1, P_LPC, P_COUNT };

/* ---- small helpers ---- */

static int32_t rd_sample(const uint8_t *p, int fmt)
{
    if (fmt == 1)
        return (int16_t)(uint16_t)(p[0] | (uint16_t)p[1] << 8);
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
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

static uint64_t zigzag(int64_t r)
{
    return r >= 0 ? (uint64_t)r << 1 : (((uint64_t)(-(r + 1))) << 1) | 1u;
}

static int64_t unzigzag(uint64_t u)
{
    return (u & 1u) ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

static unsigned bitlen64(uint64_t v)
{
    unsigned n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/* ---- predictor description shared by encoder and decoder ---- */

typedef struct {
    uint8_t id;               /* P_* */
    uint8_t order, nlong;     /* LPC: short order, taps around P */
    uint8_t prec, shift;      /* LPC: coefficient bits, right shift */
    int32_t coef[MAX_TAPS];   /* LPC: short taps (lags 1..order) then long taps */
    uint8_t porder;           /* Rice partition order */
    uint8_t k[MAX_PARTS];     /* per partition Rice parameter or RICE_ESCAPE */
    uint8_t w[MAX_PARTS];     /* escape width */
} chan_t;

/* Long-tap lags: nlong 1 -> {P}, 2 -> {P, P+1}, 3 -> {P-1, P, P+1}. */
static uint32_t long_lag(uint32_t P, unsigned nlong, unsigned j)
{
    if (nlong == 3)
        return P - 1 + j;
    return P + j;
}

/* Largest lag the channel's predictor reads. */
static uint32_t chan_maxlag(const chan_t *ch, uint32_t P)
{
    switch (ch->id) {
    case P_ZERO: return 0;
    case P_ORD1: return 1;
    case P_ORD2: return 2;
    case P_ORD3: return 3;
    case P_CYCLE: return P;
    case P_CYCLE_D1: return P + 1;
    default: {
        uint32_t m = ch->order;
        if (ch->nlong) {
            uint32_t l = long_lag(P, ch->nlong, ch->nlong - 1u);
            if (l > m)
                m = l;
        }
        return m;
    }
    }
}

/* Prediction of x[i] (x points at the channel's buffer, valid back to the max lag). */
static int64_t predict(const chan_t *ch, uint32_t P, const int32_t *x, long i)
{
    switch (ch->id) {
    case P_ZERO: return 0;
    case P_ORD1: return x[i - 1];
    case P_ORD2: return 2 * (int64_t)x[i - 1] - x[i - 2];
    case P_ORD3: return 3 * ((int64_t)x[i - 1] - x[i - 2]) + x[i - 3];
    case P_CYCLE: return x[i - (long)P];
    case P_CYCLE_D1: return (int64_t)x[i - 1] + x[i - (long)P] - x[i - (long)P - 1];
    default: {
        int64_t s = 0;
        unsigned j;
        for (j = 0; j < ch->order; j++)
            s += (int64_t)ch->coef[j] * x[i - 1 - (long)j];
        for (j = 0; j < ch->nlong; j++)
            s += (int64_t)ch->coef[ch->order + j] * x[i - (long)long_lag(P, ch->nlong, j)];
        return sar64(s, ch->shift);
    }
    }
}

/* Residuals r[0..cnt) of samples x[i0 .. i0+cnt). */
static void residuals(const chan_t *ch, uint32_t P, const int32_t *x, long i0, uint32_t cnt,
                      int64_t *r)
{
    const int32_t *p = x + i0;
    long L = (long)P;
    uint32_t i;

    switch (ch->id) {
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
    default:
        for (i = 0; i < cnt; i++)
            r[i] = (int64_t)p[i] - predict(ch, P, x, i0 + (long)i);
        break;
    }
}

/* Partition j of np over n sets: [n*j/np, n*(j+1)/np). */
static uint32_t part_start(uint32_t n, unsigned porder, uint32_t j)
{
    return (uint32_t)(((uint64_t)n * j) >> porder);
}

/* ---- bit writer (MSB first); the caller guarantees the capacity (sizes are exact) ---- */

typedef struct {
    uint8_t *p, *end;
    uint64_t acc; /* pending bits, right-aligned */
    unsigned nacc;
} bw_t;

static void bw_put(bw_t *w, uint64_t v, unsigned n) /* n <= 32 */
{
    w->acc = (w->acc << n) | (v & (((uint64_t)1 << n) - 1));
    w->nacc += n;
    while (w->nacc >= 8) {
        w->nacc -= 8;
        if (w->p < w->end)
            *w->p++ = (uint8_t)(w->acc >> w->nacc);
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

static void bw_flush(bw_t *w)
{
    if (w->nacc)
        bw_put(w, 0, 8 - w->nacc);
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
 * 0 read as 0. */
static void load_chan(const uint8_t *block, int nch, int fmt, int c, uint32_t first, uint32_t h,
                      uint32_t n, int32_t *x)
{
    size_t stride = (size_t)nch * (size_t)fmt * 2u;
    uint32_t i, z = h > first ? h - first : 0;
    const uint8_t *p;

    for (i = 0; i < z; i++)
        x[i] = 0;
    p = block + (size_t)(first + z - h) * stride + (size_t)c * (size_t)fmt * 2u;
    if (fmt == 1) {
        for (; i < h + n; i++, p += stride)
            x[i] = (int16_t)(uint16_t)(p[0] | (uint16_t)p[1] << 8);
    } else {
        for (; i < h + n; i++, p += stride)
            x[i] = rd_sample(p, 2);
    }
}

/* ======================================================================================
 * Encoder
 * ====================================================================================== */

#define TILE 512

/* Work area of one segment encode (on the stack of wcodec_encode: see WCODEC_STACK_BYTES). */
typedef struct {
    int32_t x[MAX_LAG + WCODEC_MAX_SETS];
    int64_t r[TILE];
    chan_t ch[WCODEC_MAX_CHANNELS];
} enc_t;

/* Sum of |residual| of each fixed predictor over x[h .. h+n) (cheap selection score). */
static void fixed_scores(const int32_t *x, uint32_t n, uint32_t P, uint64_t *sc)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
    uint32_t i;
    long L = (long)P;

    for (i = 0; i < n; i++) {
        int64_t a = x[i], b = x[(long)i - 1], c = x[(long)i - 2], d = x[(long)i - 3];
        int64_t e1 = a - b, e2 = e1 - (b - c), e3 = e2 - ((b - c) - (c - d));
        s0 += (uint64_t)(a < 0 ? -a : a);
        s1 += (uint64_t)(e1 < 0 ? -e1 : e1);
        s2 += (uint64_t)(e2 < 0 ? -e2 : e2);
        s3 += (uint64_t)(e3 < 0 ? -e3 : e3);
    }
    sc[P_ZERO] = s0;
    sc[P_ORD1] = s1;
    sc[P_ORD2] = s2;
    sc[P_ORD3] = s3;
    if (P) {
        for (i = 0; i < n; i++) {
            int64_t e = (int64_t)x[i] - x[(long)i - L];
            int64_t f = e - ((int64_t)x[(long)i - 1] - x[(long)i - L - 1]);
            s4 += (uint64_t)(e < 0 ? -e : e);
            s5 += (uint64_t)(f < 0 ? -f : f);
        }
        sc[P_CYCLE] = s4;
        sc[P_CYCLE_D1] = s5;
    }
}

/* Bits of one partition of cnt residuals with zigzag sum `sum` and max `umax`, choosing its
 * Rice parameter (estimate) or the escape. Sets *k, *w. */
static uint64_t part_choose(uint64_t sum, uint64_t umax, uint32_t cnt, uint8_t *k, uint8_t *w)
{
    unsigned wb = bitlen64(umax); /* signed width that holds every residual */
    uint64_t esc = 5 + 6 + (uint64_t)cnt * wb, best = UINT64_MAX;
    unsigned kk, k0 = 0, kbest = 0;

    if (cnt) {
        uint64_t mean = sum / cnt;
        k0 = bitlen64(mean);
        k0 = k0 > 2 ? k0 - 2 : 0;
    }
    for (kk = k0; kk < k0 + 4 && kk < RICE_ESCAPE; kk++) {
        /* unary part estimated as sum >> k (exact cost is computed later) */
        uint64_t c;
        if (umax >> MAX_U_BITS)
            break; /* beyond the decoder's bound on zigzagged residuals */
        c = 5 + (uint64_t)cnt * (kk + 1) + (sum >> kk);
        if (c < best) {
            best = c;
            kbest = kk;
        }
    }
    if (wb <= MAX_ESC_BITS && esc <= best) {
        *k = RICE_ESCAPE;
        *w = (uint8_t)wb;
        return esc;
    }
    *k = (uint8_t)kbest;
    *w = 0;
    return best;
}

/* Plans the residual coding of channel ch (predictor already chosen): partition order, Rice
 * parameters; returns the exact bit count of the channel's partitions (after the predictor
 * fields). */
static uint64_t plan_parts(enc_t *e, chan_t *ch, uint32_t P, const int32_t *x, uint32_t n)
{
    uint64_t psum[MAX_PARTS], pmax[MAX_PARTS];
    uint64_t best = UINT64_MAX, total;
    unsigned pmaxo = 0, po, bpo = 0;
    uint32_t t, j;

    while (pmaxo < MAX_PORDER && (n >> (pmaxo + 1)) >= 32)
        pmaxo++;
    /* finest partition sums */
    memset(psum, 0, sizeof psum);
    memset(pmax, 0, sizeof pmax);
    for (t = 0; t < n; t += TILE) {
        uint32_t cnt = n - t < TILE ? n - t : TILE, i;
        residuals(ch, P, x, (long)t, cnt, e->r);
        j = 0;
        for (i = 0; i < cnt; i++) {
            uint32_t idx = t + i;
            uint64_t u = zigzag(e->r[i]);
            while (idx >= part_start(n, pmaxo, j + 1))
                j++;
            psum[j] += u;
            if (u > pmax[j])
                pmax[j] = u;
        }
    }
    /* try every order from the finest up, merging pairs */
    for (po = pmaxo + 1; po-- > 0;) {
        uint32_t np = 1u << po;
        uint64_t c = 4;
        uint8_t k, w;
        if (po < pmaxo) {
            for (j = 0; j < np; j++) {
                psum[j] = psum[2 * j] + psum[2 * j + 1];
                pmax[j] = pmax[2 * j] > pmax[2 * j + 1] ? pmax[2 * j] : pmax[2 * j + 1];
            }
        }
        for (j = 0; j < np; j++)
            c += part_choose(psum[j], pmax[j], part_start(n, po, j + 1) - part_start(n, po, j),
                             &k, &w);
        if (c < best) {
            best = c;
            bpo = po;
        }
    }
    /* recompute the chosen order's parameters exactly */
    ch->porder = (uint8_t)bpo;
    {
        uint32_t np = 1u << bpo;
        uint64_t s2[MAX_PARTS], m2[MAX_PARTS];
        memset(s2, 0, sizeof s2);
        memset(m2, 0, sizeof m2);
        for (t = 0; t < n; t += TILE) {
            uint32_t cnt = n - t < TILE ? n - t : TILE, i;
            residuals(ch, P, x, (long)t, cnt, e->r);
            j = 0;
            for (i = 0; i < cnt; i++) {
                uint32_t idx = t + i;
                uint64_t u = zigzag(e->r[i]);
                while (idx >= part_start(n, bpo, j + 1))
                    j++;
                s2[j] += u;
                if (u > m2[j])
                    m2[j] = u;
            }
        }
        for (j = 0; j < np; j++)
            (void)part_choose(s2[j], m2[j], part_start(n, bpo, j + 1) - part_start(n, bpo, j),
                              &ch->k[j], &ch->w[j]);
        /* exact size */
        total = 4;
        memset(s2, 0, sizeof s2);
        for (t = 0; t < n; t += TILE) {
            uint32_t cnt = n - t < TILE ? n - t : TILE, i;
            residuals(ch, P, x, (long)t, cnt, e->r);
            j = 0;
            for (i = 0; i < cnt; i++) {
                uint32_t idx = t + i;
                while (idx >= part_start(n, bpo, j + 1))
                    j++;
                if (ch->k[j] != RICE_ESCAPE)
                    s2[j] += zigzag(e->r[i]) >> ch->k[j];
            }
        }
        for (j = 0; j < np; j++) {
            uint32_t cnt = part_start(n, bpo, j + 1) - part_start(n, bpo, j);
            if (ch->k[j] == RICE_ESCAPE)
                total += 5 + 6 + (uint64_t)cnt * ch->w[j];
            else
                total += 5 + (uint64_t)cnt * (ch->k[j] + 1u) + s2[j];
        }
    }
    return total;
}

static unsigned pred_hdr_bits(const chan_t *ch)
{
    if (ch->id != P_LPC)
        return 4;
    return 4 + 5 + 2 + 4 + 5 + (unsigned)(ch->order + ch->nlong) * ch->prec;
}

/* Chooses channel c's coding for sets [first, first+n); x = channel buffer with h history
 * entries. Returns its exact size in bits. */
static uint64_t plan_chan(enc_t *e, chan_t *ch, uint32_t P, const int32_t *x, uint32_t n,
                          int fmt)
{
    uint64_t sc[P_COUNT], bits, raw = 4 + 4 + 5 + 6 + (uint64_t)n * (fmt == 1 ? 16u : 32u);
    int id, best = P_ZERO, nid = P ? P_CYCLE_D1 + 1 : P_ORD3 + 1;

    fixed_scores(x, n, P, sc);
    for (id = 1; id < nid; id++)
        if (sc[id] < sc[best])
            best = id;
    memset(ch, 0, sizeof *ch);
    ch->id = (uint8_t)best;
    bits = pred_hdr_bits(ch) + plan_parts(e, ch, P, x, n);
    if (bits > raw) {
        /* never worse than the samples themselves (wcodec_bound relies on it): order 0, one
         * escape partition as wide as the widest sample */
        memset(ch, 0, sizeof *ch);
        ch->id = P_ZERO;
        bits = 4 + plan_parts(e, ch, P, x, n);
        if (bits > raw) {
            uint64_t umax = 0;
            uint32_t i;
            for (i = 0; i < n; i++)
                if (zigzag(x[i]) > umax)
                    umax = zigzag(x[i]);
            ch->porder = 0;
            ch->k[0] = RICE_ESCAPE;
            ch->w[0] = (uint8_t)bitlen64(umax);
            bits = 4 + 4 + 5 + 6 + (uint64_t)n * ch->w[0];
        }
    }
    return bits;
}

static void write_chan(enc_t *e, bw_t *w, const chan_t *ch, uint32_t P, const int32_t *x,
                       uint32_t n)
{
    uint32_t np = 1u << ch->porder, j, t;

    bw_put(w, ch->id, 4);
    if (ch->id == P_LPC) {
        unsigned q;
        bw_put(w, ch->order, 5);
        bw_put(w, ch->nlong, 2);
        bw_put(w, ch->prec - 1u, 4);
        bw_put(w, ch->shift, 5);
        for (q = 0; q < (unsigned)(ch->order + ch->nlong); q++)
            bw_put(w, (uint32_t)ch->coef[q], ch->prec);
    }
    bw_put(w, ch->porder, 4);
    for (j = 0; j < np; j++) {
        uint32_t s = part_start(n, ch->porder, j), end = part_start(n, ch->porder, j + 1);
        unsigned k = ch->k[j];
        bw_put(w, k, 5);
        if (k == RICE_ESCAPE)
            bw_put(w, ch->w[j], 6);
        for (t = s; t < end; t += TILE) {
            uint32_t cnt = end - t < TILE ? end - t : TILE, i;
            residuals(ch, P, x, (long)t, cnt, e->r);
            if (k == RICE_ESCAPE) {
                unsigned wb = ch->w[j];
                if (wb)
                    for (i = 0; i < cnt; i++)
                        bw_bits(w, (uint64_t)e->r[i], wb);
            } else {
                for (i = 0; i < cnt; i++) {
                    uint64_t u = zigzag(e->r[i]), q = u >> k;
                    if (q < 32 - k) {
                        /* q zeros, a one, k low bits: one put */
                        bw_put(w, ((uint64_t)1 << k) | (u & (((uint64_t)1 << k) - 1)),
                               (unsigned)q + 1 + k);
                    } else {
                        bw_zeros(w, q);
                        bw_put(w, 1, 1);
                        bw_put(w, u & (((uint64_t)1 << k) - 1), k);
                    }
                }
            }
        }
    }
}

static uint32_t pick_period(uint32_t hint)
{
    return hint >= 2 && hint <= MAX_PERIOD ? hint : 0;
}

/* Plans sets [first, first+n); returns the exact segment size in bytes. */
static size_t plan_segment(enc_t *e, const uint8_t *block, int nch, int fmt, uint32_t P,
                           uint32_t first, uint32_t n, uint64_t *payload_bits)
{
    uint64_t bits = 0;
    uint32_t h = P ? P + 1 : 3;
    size_t payload;
    int c;

    for (c = 0; c < nch; c++) {
        load_chan(block, nch, fmt, c, first, h, n, e->x);
        bits += plan_chan(e, &e->ch[c], P, e->x + h, n, fmt);
    }
    *payload_bits = bits;
    payload = (size_t)((bits + 7) / 8);
    return 1 + varint_len(n - 1) + varint_len(P) + varint_len((uint32_t)payload) + payload;
}

static size_t write_segment(enc_t *e, const uint8_t *block, int nch, int fmt, uint32_t P,
                            uint32_t first, uint32_t n, uint64_t bits, uint8_t *out)
{
    size_t payload = (size_t)((bits + 7) / 8), hl = 0;
    uint32_t h = P ? P + 1 : 3;
    bw_t w;
    int c;

    out[hl++] = (uint8_t)(((fmt - 1) << 4) | (nch - 1));
    hl += put_varint(out + hl, n - 1);
    hl += put_varint(out + hl, P);
    hl += put_varint(out + hl, (uint32_t)payload);
    w.p = out + hl;
    w.end = out + hl + payload;
    w.acc = 0;
    w.nacc = 0;
    for (c = 0; c < nch; c++) {
        load_chan(block, nch, fmt, c, first, h, n, e->x);
        write_chan(e, &w, &e->ch[c], P, e->x + h, n);
    }
    bw_flush(&w);
    return hl + payload;
}

int wcodec_encode(const uint8_t *block, uint32_t nsets, int nch, int fmt, uint32_t period_hint,
                  uint32_t first, uint32_t max_sets, uint8_t *out, size_t cap, uint32_t *n_out,
                  size_t *len_out)
{
    enc_t e;
    uint32_t P = pick_period(period_hint), n, lo, hi;
    uint64_t bits;
    size_t sz;

    if (!block || !out || !n_out || !len_out || !check_shape(nsets, nch, fmt) || first >= nsets ||
        max_sets == 0)
        return WCODEC_E_ARG;
    n = nsets - first;
    if (max_sets < n)
        n = max_sets;
    sz = plan_segment(&e, block, nch, fmt, P, first, n, &bits);
    if (sz > cap) {
        /* Find the largest n that fits: sizes grow with n (not strictly monotonic, so this
         * finds an n that fits with n + 1 not fitting). Start from the proportional guess. */
        uint64_t guess;
        lo = 0;
        hi = n; /* hi does not fit */
        guess = (uint64_t)n * cap / sz;
        if (guess >= hi)
            guess = hi - 1;
        if (guess >= 1) {
            if (plan_segment(&e, block, nch, fmt, P, first, (uint32_t)guess, &bits) <= cap) {
                uint32_t step = 1;
                lo = (uint32_t)guess;
                /* gallop upwards */
                while (lo + step < hi) {
                    if (plan_segment(&e, block, nch, fmt, P, first, lo + step, &bits) <= cap)
                        lo += step;
                    else {
                        hi = lo + step;
                        break;
                    }
                    step *= 2;
                }
            } else {
                hi = (uint32_t)guess;
            }
        }
        if (lo == 0) {
            if (plan_segment(&e, block, nch, fmt, P, first, 1, &bits) > cap)
                return WCODEC_E_SPACE;
            lo = 1;
        }
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (plan_segment(&e, block, nch, fmt, P, first, mid, &bits) <= cap)
                lo = mid;
            else
                hi = mid;
        }
        n = lo;
        sz = plan_segment(&e, block, nch, fmt, P, first, n, &bits);
    }
    *len_out = write_segment(&e, block, nch, fmt, P, first, n, bits, out);
    *n_out = n;
    return WCODEC_OK;
}

/* ======================================================================================
 * Decoder
 * ====================================================================================== */

typedef struct {
    int32_t x[MAX_LAG + WCODEC_MAX_SETS];
    chan_t ch;
} dec_t;

static int dec_pred(br_t *br, chan_t *ch, uint32_t P)
{
    uint32_t v;
    unsigned q;

    memset(ch, 0, sizeof *ch);
    if (br_get(br, 4, &v) != 0 || v >= P_COUNT)
        return -1;
    ch->id = (uint8_t)v;
    if ((v == P_CYCLE || v == P_CYCLE_D1) && P == 0)
        return -1;
    if (v == P_LPC) {
        uint32_t o, m, pr, sh;
        if (br_get(br, 5, &o) || br_get(br, 2, &m) || br_get(br, 4, &pr) || br_get(br, 5, &sh))
            return -1;
        if (o + m == 0 || (m && P < 2))
            return -1;
        ch->order = (uint8_t)o;
        ch->nlong = (uint8_t)m;
        ch->prec = (uint8_t)(pr + 1);
        ch->shift = (uint8_t)sh;
        for (q = 0; q < o + m; q++) {
            uint32_t c;
            if (br_get(br, ch->prec, &c) != 0)
                return -1;
            /* sign-extend a prec-bit two's complement value */
            if (c & ((uint32_t)1 << (ch->prec - 1)))
                ch->coef[q] = -(int32_t)(((uint32_t)1 << ch->prec) - c);
            else
                ch->coef[q] = (int32_t)c;
        }
    }
    return 0;
}

/* Decodes channel residuals and reconstructs x[0..n) (x = buffer with history before it). */
static int dec_chan(br_t *br, chan_t *ch, uint32_t P, int32_t *x, uint32_t n, int fmt)
{
    uint32_t v, np, j;
    int64_t lo = fmt == 1 ? -32768 : -(int64_t)2147483648LL;
    int64_t hi = fmt == 1 ? 32767 : 2147483647;

    if (br_get(br, 4, &v) != 0 || v > MAX_PORDER || (1u << v) > n)
        return -1;
    ch->porder = (uint8_t)v;
    np = 1u << v;
    for (j = 0; j < np; j++) {
        uint32_t s = part_start(n, ch->porder, j), end = part_start(n, ch->porder, j + 1), i;
        uint32_t k;
        if (br_get(br, 5, &k) != 0)
            return -1;
        if (k == RICE_ESCAPE) {
            uint32_t wb;
            if (br_get(br, 6, &wb) != 0 || wb > MAX_ESC_BITS)
                return -1;
            for (i = s; i < end; i++) {
                uint64_t u;
                int64_t r, y;
                if (br_get64(br, wb, &u) != 0)
                    return -1;
                if (wb && (u >> (wb - 1)) & 1u) /* sign-extend */
                    r = -(int64_t)((((uint64_t)1 << wb) - u));
                else
                    r = (int64_t)u;
                y = predict(ch, P, x, (long)i) + r;
                if (y < lo || y > hi)
                    return -1;
                x[i] = (int32_t)y;
            }
        } else {
            uint64_t qmax = ((uint64_t)1 << (MAX_U_BITS - k)) - 1;
            for (i = s; i < end; i++) {
                uint64_t q, u;
                uint32_t low;
                int64_t y;
                if (br_unary(br, qmax, &q) != 0 || br_get(br, k, &low) != 0)
                    return -1;
                u = (q << k) | low;
                y = predict(ch, P, x, (long)i) + unzigzag(u);
                if (y < lo || y > hi)
                    return -1;
                x[i] = (int32_t)y;
            }
        }
    }
    return 0;
}

int wcodec_decode(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                  uint32_t first, uint8_t *block, uint32_t *n_out, size_t *used)
{
    dec_t d;
    uint32_t nm1, P, plen, n;
    size_t pos = 1, u;
    br_t br;
    int c;

    if (!in || !block || !n_out || !used || !check_shape(nsets, nch, fmt) || first >= nsets)
        return WCODEC_E_ARG;
    if (len < 1 || in[0] != (uint8_t)(((fmt - 1) << 4) | (nch - 1)))
        return WCODEC_E_MALFORMED;
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
    for (c = 0; c < nch; c++) {
        uint32_t h;
        if (dec_pred(&br, &d.ch, P) != 0)
            return WCODEC_E_MALFORMED;
        h = chan_maxlag(&d.ch, P);
        load_chan(block, nch, fmt, c, first, h, 0, d.x);
        if (dec_chan(&br, &d.ch, P, d.x + h, n, fmt) != 0)
            return WCODEC_E_MALFORMED;
        {
            size_t stride = (size_t)nch * (size_t)fmt * 2u;
            uint8_t *p = block + (size_t)first * stride + (size_t)c * (size_t)fmt * 2u;
            uint32_t i;
            for (i = 0; i < n; i++, p += stride)
                wr_sample(p, fmt, d.x[h + i]);
        }
    }
    /* the payload must end exactly: fewer than 8 bits left, all zero, and no whole byte unread */
    if (br.p != br.end || br.nacc >= 8 || (br.nacc && (br.acc >> (64 - br.nacc)) != 0))
        return WCODEC_E_MALFORMED;
    *n_out = n;
    *used = pos + plen;
    return WCODEC_OK;
}

int wcodec_decode_block(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                        uint8_t *block)
{
    uint32_t first = 0;
    size_t off = 0;

    if (!in || !block || !check_shape(nsets, nch, fmt))
        return WCODEC_E_MALFORMED;
    while (first < nsets) {
        uint32_t n;
        size_t used;
        if (off >= len ||
            wcodec_decode(in + off, len - off, nsets, nch, fmt, first, block, &n, &used) != 0)
            return WCODEC_E_MALFORMED;
        first += n;
        off += used;
    }
    return off == len ? WCODEC_OK : WCODEC_E_MALFORMED;
}

int wcodec_encode_block(const uint8_t *block, uint32_t nsets, int nch, int fmt,
                        uint32_t period_hint, uint8_t *out, size_t cap, size_t *len_out)
{
    uint32_t first = 0;
    size_t off = 0;

    if (!block || !out || !len_out || !check_shape(nsets, nch, fmt))
        return WCODEC_E_ARG;
    while (first < nsets) {
        uint32_t n;
        size_t len;
        int rc = wcodec_encode(block, nsets, nch, fmt, period_hint, first, nsets - first,
                               out + off, cap - off, &n, &len);
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

size_t wcodec_bound(uint32_t nsets, int nch, int fmt)
{
    /* One segment: header, then per channel predictor (4 bits), partition order (4), one
     * escape partition (5 + 6) with 16 or 32 bits per sample (order-0 residual = sample). The
     * encoder never emits more than this because an escape of the raw width is always
     * available and is chosen when cheaper. */
    uint64_t bits = (uint64_t)nch * (4 + 4 + 5 + 6 + (uint64_t)nsets * (fmt == 1 ? 16u : 32u));
    return HDR_MAX + (size_t)((bits + 7) / 8);
}
