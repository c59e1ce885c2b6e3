/* Waveform codec headroom estimator (docs/benchmarks.md, "Waveform codec", "Headroom: a
 * sinusoidal block model"). A measurement tool, not a codec: it writes no bitstream. It estimates
 * what GSTP codec 1 (docs/protocol.md Appendix A) would cost per sample if a block could carry a
 * sinusoidal model (fundamental + odd harmonics, fitted by least squares over the block) and code
 * the residual x - model instead of predicting from the previous cycle.
 *
 *   build/codec_bench --outdir DIR --reps 1 [--scale S]     # writes DIR/sim.raw etc.
 *   built as build/codec_model (bench/CMakeLists.txt)
 *   ./codec_model DIR/sim.raw [period_hint=80] [block_sets=400] [channels=6] [search]
 *
 * Input: raw little-endian interleaved int16 sample sets (what codec_bench --outdir writes).
 * The model uses only what any 3-phase waveform has: a fundamental near the period hint (the
 * frequency is estimated per block from the phase drift of the fundamental between the block's
 * two halves, one shared value for all channels; with "search", by a grid search of the total
 * least-squares error of H = 4 fits instead, slow: for short blocks) and odd harmonics 1, 3, ..., 2H-1 with H chosen
 * per channel and block by cost. Nothing of the simulator's seed or formula is used.
 *
 * The model is computed the way a decoder would have to: a 32-bit phase accumulator per set,
 * a sine table of 1025 Q30 entries with linear interpolation, integer coefficients (1 count
 * resolution), int64 sums: so the residuals counted are those of a decodable model.
 *
 * Costs (bits) are estimates in the spirit of Appendix A: residuals in partitions of 25 sets,
 * each with its best Rice parameter and 7 bits of partition header; model parameters 32 bits
 * of frequency per block, per channel 4 bits (H) plus, per coefficient, its magnitude's bit
 * length + 5 (a length prefix and sign). The "fixed predictor" line is the same estimator with
 * the predictors of A.4 ids 1-5 per partition (no LPC), to calibrate against the real encoder.
 *
 * Output, one JSON object: fixed_bps (that baseline), model_hN_bps (harmonics 1..N for every
 * channel), best_bps (per channel and block the cheapest of those), timings in thread CPU ns per
 * sample of the straightforward fits (model_ns_per_sample_all_H, fit_h7_ns_per_sample) and of
 * fast_fit (H = 4 the way an encoder would do it; fast_stride4: its sums over every 4th set),
 * with the bytes per sample each reaches.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXH    7 /* harmonics 1, 3, ..., 13 */
#define MAXCH   16
#define MAXSETS 8192
#define PART    25
#define TWO_PI  6.283185307179586476925286766559

static int64_t sintab[1025]; /* round(2^30 sin(2 pi i / 1024)) */

static int64_t isin(uint32_t ph)
{
    uint32_t i = ph >> 22, fr = ph & 0x3fffffu;
    return sintab[i] + (((sintab[i + 1] - sintab[i]) * (int64_t)fr) >> 22);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Rice cost of r[0..n) with its best parameter, plus a 7-bit partition header. */
static double rice_bits(const int64_t *r, int n)
{
    double best = 1e300;
    for (int k = 0; k < 24; k++) {
        double b = 7;
        for (int i = 0; i < n; i++) {
            uint64_t u = r[i] >= 0 ? 2u * (uint64_t)r[i] : 2u * (uint64_t)(-r[i]) - 1u;
            b += 1 + k + (double)(u >> k);
        }
        if (b < best)
            best = b;
    }
    return best;
}

static int bitlen(int64_t v)
{
    int n = 0;
    if (v < 0)
        v = -v;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/* Cholesky solve of the m x m SPD system A y = b (A overwritten); 0 on success. */
static int chol_solve(double *A, double *b, int m)
{
    for (int j = 0; j < m; j++) {
        double d = A[j * m + j];
        for (int k = 0; k < j; k++)
            d -= A[j * m + k] * A[j * m + k];
        if (d <= 1e-9)
            return -1;
        A[j * m + j] = sqrt(d);
        for (int i = j + 1; i < m; i++) {
            double s = A[i * m + j];
            for (int k = 0; k < j; k++)
                s -= A[i * m + k] * A[j * m + k];
            A[i * m + j] = s / A[j * m + j];
        }
    }
    for (int i = 0; i < m; i++) {
        for (int k = 0; k < i; k++)
            b[i] -= A[i * m + k] * b[k];
        b[i] /= A[i * m + i];
    }
    for (int i = m - 1; i >= 0; i--) {
        for (int k = i + 1; k < m; k++)
            b[i] -= A[k * m + i] * b[k];
        b[i] /= A[i * m + i];
    }
    return 0;
}

/* Fixed predictors of A.4 (ids 1-5), best per partition: the calibration baseline. */
static double fixed_bits(const int16_t *blk, int nch, int c, int n, int P, double *first_cycle)
{
    int64_t r[PART];
    double tot = 0;
    *first_cycle = 0;
#define X(k) ((g - (k)) >= 0 ? (int64_t)blk[(g - (k)) * nch + c] : (int64_t)blk[c])
    for (int p0 = 0; p0 < n; p0 += PART) {
        int len = n - p0 < PART ? n - p0 : PART;
        double best = 1e300;
        for (int id = 1; id <= 5; id++) {
            if (id >= 4 && p0 < P)
                continue; /* only history inside the block */
            for (int g = p0; g < p0 + len; g++) {
                int64_t p = id == 1   ? X(1)
                            : id == 2 ? 2 * X(1) - X(2)
                            : id == 3 ? 3 * X(1) - 3 * X(2) + X(3)
                            : id == 4 ? X(P)
                                      : X(1) + X(P) - X(P + 1);
                r[g - p0] = X(0) - p;
            }
            double b = rice_bits(r, len);
            if (b < best)
                best = b;
        }
        tot += best;
        if (p0 < P)
            *first_cycle += best;
    }
#undef X
    return tot;
}

/* Sum over channels of the least-squares error of an H = 4 fit (harmonics 1, 3, 5, 7) at the
 * angular frequency w (radians per set), in double precision: the frequency search's objective. */
static double fit_error(const int16_t *blk, int nch, int n, double w)
{
    enum { M = 8 };
    double A[M * M] = {0}, b[MAXCH][M], bas[M], e = 0, sumsq[MAXCH] = {0};
    memset(b, 0, sizeof b);
    for (int g = 0; g < n; g++) {
        for (int h = 0; h < M / 2; h++) {
            bas[2 * h] = sin((2 * h + 1) * w * g);
            bas[2 * h + 1] = cos((2 * h + 1) * w * g);
        }
        for (int i = 0; i < M; i++)
            for (int j = 0; j < M; j++)
                A[i * M + j] += bas[i] * bas[j];
        for (int c = 0; c < nch; c++) {
            double v = blk[g * nch + c];
            sumsq[c] += v * v;
            for (int i = 0; i < M; i++)
                b[c][i] += bas[i] * v;
        }
    }
    for (int c = 0; c < nch; c++) {
        double L[M * M], y[M];
        memcpy(L, A, sizeof L);
        memcpy(y, b[c], sizeof y);
        if (chol_solve(L, y, M))
            return 1e300;
        /* residual energy = sum v^2 - y . b (normal equations) */
        double proj = 0;
        for (int i = 0; i < M; i++)
            proj += y[i] * b[c][i];
        e += sumsq[c] - proj;
    }
    return e;
}

/* The encoder-side cost as a codec would do it: H = 4 with the decoder's integer basis built once
 * per block (table lookups shared by all channels), one normal matrix per block (it depends only
 * on the basis), one right-hand side per channel, integer coefficients, residuals. Returns the
 * estimated bits (as the H = 4 line) and adds the thread CPU time spent to *t. The least-squares
 * sums may skip sets (fit_stride > 1): the fit needs far fewer than 400 sets for 8 unknowns. */
static double fast_fit(const int16_t *blk, int nch, int n, uint32_t dph, int fit_stride, double *t)
{
    enum { M = 8 };
    static int32_t ib[MAXSETS][M]; /* Q30 fits int32 */
    static int64_t r[MAXCH][MAXSETS];
    double A[M * M] = {0}, b[MAXCH][M], params = 0, bits = 0;
    int64_t coef[MAXCH][M];
    double t0 = now_s();
    memset(b, 0, sizeof b);
    for (int g = 0; g < n; g++) {
        uint32_t ph = dph * (uint32_t)g;
        double d[M];
        for (int h = 0; h < M / 2; h++) {
            uint32_t p = (uint32_t)(2 * h + 1) * ph;
            ib[g][2 * h] = (int32_t)isin(p);
            ib[g][2 * h + 1] = (int32_t)isin(p + 0x40000000u);
        }
        if (g % fit_stride)
            continue; /* the fit sees every fit_stride-th set; the residual all of them */
        for (int i = 0; i < M; i++)
            d[i] = (double)ib[g][i] * (1.0 / 1073741824.0);
        for (int i = 0; i < M; i++)
            for (int j = 0; j <= i; j++)
                A[i * M + j] += d[i] * d[j];
        for (int c = 0; c < nch; c++) {
            double v = blk[g * nch + c];
            for (int i = 0; i < M; i++)
                b[c][i] += d[i] * v;
        }
    }
    for (int i = 0; i < M; i++)
        for (int j = i + 1; j < M; j++)
            A[i * M + j] = A[j * M + i];
    double L[M * M];
    memcpy(L, A, sizeof L);
    /* factor once: chol_solve factors in place, so solve the first channel with it and reuse */
    for (int c = 0; c < nch; c++) {
        double y[M];
        memcpy(y, b[c], sizeof y);
        if (c == 0) {
            if (chol_solve(L, y, M))
                return 1e300;
        } else {
            for (int i = 0; i < M; i++) {
                for (int k = 0; k < i; k++)
                    y[i] -= L[i * M + k] * y[k];
                y[i] /= L[i * M + i];
            }
            for (int i = M - 1; i >= 0; i--) {
                for (int k = i + 1; k < M; k++)
                    y[i] -= L[k * M + i] * y[k];
                y[i] /= L[i * M + i];
            }
        }
        for (int i = 0; i < M; i++)
            coef[c][i] = llround(y[i]);
    }
    for (int g = 0; g < n; g++)
        for (int c = 0; c < nch; c++) {
            int64_t sum = 0;
            for (int i = 0; i < M; i++)
                sum += coef[c][i] * ib[g][i];
            r[c][g] = blk[g * nch + c] - ((sum + (1 << 29)) >> 30);
        }
    *t += now_s() - t0;
    for (int c = 0; c < nch; c++) {
        params += 4;
        for (int i = 0; i < M; i++)
            params += bitlen(coef[c][i]) + 5;
        for (int p0 = 0; p0 < n; p0 += PART)
            bits += rice_bits(r[c] + p0, n - p0 < PART ? n - p0 : PART);
    }
    return bits + params;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: codec_model FILE.raw [period_hint] [block_sets] [channels]\n");
        return 2;
    }
    int P = argc > 2 ? atoi(argv[2]) : 80, n = argc > 3 ? atoi(argv[3]) : 400,
        nch = argc > 4 ? atoi(argv[4]) : 6, search = argc > 5 && !strcmp(argv[5], "search");
    if (P < 2 || n < 2 * PART || n > MAXSETS || nch < 1 || nch > MAXCH) {
        fprintf(stderr, "codec_model: bad arguments\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    int16_t *x = malloc((size_t)sz);
    if (!x || fread(x, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "codec_model: read failed\n");
        return 1;
    }
    fclose(f);
    for (int i = 0; i <= 1024; i++)
        sintab[i] = llround(1073741824.0 * sin(TWO_PI * i / 1024));

    long nblk = sz / 2 / nch / n;
    static double basis[MAXSETS][2 * MAXH];
    static int64_t ibasis[MAXSETS][2 * MAXH];
    double bits_fixed = 0, bits_fixed_c1 = 0, bits_model[MAXH + 1] = {0}, bits_best = 0,
           bits_params = 0, t_model = 0, t_h7 = 0, t_fast = 0, bits_fast = 0, t_fast4 = 0, bits_fast4 = 0, w0 = TWO_PI / P;
    long model_chosen = 0, fixed_chosen = 0;
    for (long bi = 0; bi < nblk; bi++) {
        const int16_t *blk = x + bi * n * nch;
        double t0 = now_s();
        /* frequency: phase advance of the fundamental (at the hint) from the first half to the
         * second, weighted by each channel's amplitude, over half a block */
        double dphi = 0, wsum = 0;
        for (int c = 0; c < nch; c++) {
            double s1 = 0, c1 = 0, s2 = 0, c2 = 0;
            for (int g = 0; g < n; g++) {
                double v = blk[g * nch + c], s = sin(w0 * g) * v, co = cos(w0 * g) * v;
                if (g < n / 2) {
                    s1 += s;
                    c1 += co;
                } else {
                    s2 += s;
                    c2 += co;
                }
            }
            double d = atan2(c2, s2) - atan2(c1, s1);
            while (d > TWO_PI / 2)
                d -= TWO_PI;
            while (d < -TWO_PI / 2)
                d += TWO_PI;
            dphi += d * (s1 * s1 + c1 * c1);
            wsum += s1 * s1 + c1 * c1;
        }
        double w = wsum > 0 ? w0 + dphi / wsum / (n / 2) : w0;
        if (search) {
            double best_e = 1e300, step = w0 * 1e-4;
            for (int it = -100; it <= 100; it++) {
                double e = fit_error(blk, nch, n, w0 * (1 + it * 1e-4));
                if (e < best_e) {
                    best_e = e;
                    w = w0 * (1 + it * 1e-4);
                }
            }
            for (int it = 0; it < 12; it++) {
                step /= 2;
                for (int d = -1; d <= 1; d += 2) {
                    double e = fit_error(blk, nch, n, w + d * step);
                    if (e < best_e) {
                        best_e = e;
                        w += d * step;
                    }
                }
            }
        }
        uint32_t dph = (uint32_t)llround(w / TWO_PI * 4294967296.0);
        /* the decoder's basis: sin and cos of h * phase(g), table-interpolated, Q30 */
        for (int g = 0; g < n; g++)
            for (int h = 0; h < MAXH; h++) {
                uint32_t ph = (uint32_t)(2 * h + 1) * (dph * (uint32_t)g);
                ibasis[g][2 * h] = isin(ph);
                ibasis[g][2 * h + 1] = isin(ph + 0x40000000u);
                basis[g][2 * h] = (double)ibasis[g][2 * h] / 1073741824.0;
                basis[g][2 * h + 1] = (double)ibasis[g][2 * h + 1] / 1073741824.0;
            }
        t_model += now_s() - t0;
        bits_fast += fast_fit(blk, nch, n, dph, 1, &t_fast);
        bits_fast4 += fast_fit(blk, nch, n, dph, 4, &t_fast4);
        double blk_best = 32; /* frequency */
        for (int c = 0; c < nch; c++) {
            double c1, fb = fixed_bits(blk, nch, c, n, P, &c1);
            bits_fixed += fb;
            bits_fixed_c1 += c1;
            double best = fb, best_params = 0;
            int best_h = 0;
            for (int H = 1; H <= MAXH; H++) {
                int m = 2 * H;
                double A[4 * MAXH * MAXH], b[2 * MAXH];
                t0 = now_s();
                memset(A, 0, sizeof A);
                memset(b, 0, sizeof b);
                for (int g = 0; g < n; g++) {
                    double v = blk[g * nch + c];
                    for (int i = 0; i < m; i++) {
                        b[i] += basis[g][i] * v;
                        for (int j = 0; j <= i; j++)
                            A[i * m + j] += basis[g][i] * basis[g][j];
                    }
                }
                for (int i = 0; i < m; i++)
                    for (int j = i + 1; j < m; j++)
                        A[i * m + j] = A[j * m + i];
                if (chol_solve(A, b, m))
                    continue;
                int64_t coef[2 * MAXH], r[MAXSETS];
                double params = 4;
                for (int i = 0; i < m; i++) {
                    coef[i] = llround(b[i]);
                    params += bitlen(coef[i]) + 5;
                }
                for (int g = 0; g < n; g++) {
                    int64_t s = 0;
                    for (int i = 0; i < m; i++)
                        s += coef[i] * ibasis[g][i];
                    r[g] = blk[g * nch + c] - ((s + (1 << 29)) >> 30);
                }
                double dt = now_s() - t0;
                t_model += dt;
                if (H == 4)
                    t_h7 += dt;
                double bits = params;
                for (int p0 = 0; p0 < n; p0 += PART)
                    bits += rice_bits(r + p0, n - p0 < PART ? n - p0 : PART);
                bits_model[H] += bits;
                if (bits < best) {
                    best = bits;
                    best_h = H;
                    best_params = params;
                }
            }
            blk_best += best;
            bits_params += best_params;
            if (best_h)
                model_chosen++;
            else
                fixed_chosen++;
        }
        bits_best += blk_best;
    }
    double ns = (double)nblk * n * nch;
    printf("{\"file\":\"%s\",\"blocks\":%ld,\"block_sets\":%d,\"channels\":%d,\"period_hint\":%d,"
           "\"fixed_bps\":%.4f,\"fixed_first_cycle_bits\":%.2f",
           argv[1], nblk, n, nch, P, bits_fixed / 8 / ns,
           bits_fixed_c1 / ((double)nblk * (P < n ? P : n) * nch));
    for (int H = 1; H <= MAXH; H++)
        printf(",\"model_h%d_bps\":%.4f", 2 * H - 1, bits_model[H] / 8 / ns);
    printf(",\"best_bps\":%.4f,\"params_bits_per_sample\":%.3f,\"channel_blocks_model\":%ld,"
           "\"channel_blocks_fixed\":%ld,\"model_ns_per_sample_all_H\":%.1f,"
           "\"fit_h7_ns_per_sample\":%.1f,\"fast_h7_bps\":%.4f,\"fast_fit_ns_per_sample\":%.1f,"
           "\"fast_stride4_bps\":%.4f,\"fast_stride4_ns_per_sample\":%.1f}\n",
           bits_best / 8 / ns, bits_params / ns, model_chosen, fixed_chosen, t_model / ns * 1e9,
           t_h7 / ns * 1e9, bits_fast / 8 / ns, t_fast / ns * 1e9,
           bits_fast4 / 8 / ns, t_fast4 / ns * 1e9);
    free(x);
    return 0;
}
