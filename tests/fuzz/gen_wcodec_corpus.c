/* Writes the seed corpus of fuzz_wcodec (tests/fuzz/corpus/wcodec) from real encodings: blocks
 * of several shapes and signals encoded at rest (mode 0) and as chunk segments at an offset
 * (mode 1), in the target's input layout (see targets/fuzz_wcodec.c).
 *   build/gen_wcodec_corpus tests/fuzz/corpus/wcodec */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wcodec/wcodec.h"

static int write_seed(const char *dir, const char *name, const uint8_t hdr[5], const uint8_t *p,
                      size_t n)
{
    char path[4096];
    FILE *fp;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp || fwrite(hdr, 1, 5, fp) != 5 || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static uint8_t blk[2048 * 16 * 4], enc[2048 * 16 * 4 + 1024];
    static const struct {
        uint32_t nsets;
        int nch, fmt, kind;
        uint32_t hint, first, cap;
        int codec;
    } cases[] = {
        {4, 1, 1, 0, 0, 0, 0, 1},       {64, 3, 1, 1, 16, 0, 0, 1},   {400, 6, 1, 1, 80, 0, 0, 1},
        {400, 6, 1, 1, 80, 80, 300, 1}, {100, 2, 2, 2, 0, 0, 0, 1},   {50, 16, 1, 3, 10, 0, 0, 1},
        {200, 4, 2, 1, 40, 120, 0, 1},  {33, 1, 2, 2, 0, 5, 0, 1},    {300, 6, 1, 4, 50, 0, 0, 1},
        /* codec 2 (A.11): model segments at rest and as chunks, and a codec-1 form */
        {400, 6, 1, 1, 80, 0, 0, 2}, {400, 6, 1, 1, 80, 150, 400, 2}, {96, 2, 2, 5, 24, 0, 0, 2},
        {160, 3, 1, 1, 32, 0, 300, 2}, {64, 3, 1, 0, 0, 0, 0, 2},
    };
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        uint32_t nsets = cases[ci].nsets, first = cases[ci].first, n;
        int nch = cases[ci].nch, fmt = cases[ci].fmt;
        uint32_t seed = (uint32_t)ci * 7919u + 1;
        size_t len;
        char name[64];
        uint8_t hdr[5];
        for (uint32_t i = 0; i < nsets; i++) {
            for (int c = 0; c < nch; c++) {
                double v;
                seed = seed * 1103515245u + 12345u;
                switch (cases[ci].kind) {
                case 0: v = 100 + i; break;
                case 1:
                    v = 20000 * sin(6.2831853 * i / (cases[ci].hint * 1.001) - c * 2.0943951) +
                        (int)((seed >> 16) % 17) - 8;
                    break;
                case 2: v = (seed & 1) ? 2147483647.0 : -2147483648.0; break;
                case 3: v = c * 100; break;
                case 5: /* int32 within the model's coefficients */
                    v = 3000000 * sin(6.2831853 * i / (cases[ci].hint * 0.998) - c) +
                        (int)((seed >> 16) % 201) - 100;
                    break;
                default: v = (i / 50 % 2) ? 30000 : -30000; break;
                }
                if (fmt == 1) {
                    v = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
                    int16_t s = (int16_t)lround(v);
                    memcpy(blk + ((size_t)i * nch + c) * 2, &s, 2);
                } else {
                    int32_t s = v >= 2147483647.0 ? INT32_MAX
                                : v <= -2147483648.0 ? INT32_MIN
                                                     : (int32_t)lround(v);
                    memcpy(blk + ((size_t)i * nch + c) * 4, &s, 4);
                }
            }
        }
        int codec = cases[ci].codec == 2 ? WCODEC_ID_MODEL : WCODEC_ID;
        hdr[0] = (uint8_t)((nch - 1) | (fmt - 1) << 4 | (first || cases[ci].cap ? 1 : 0) << 5 |
                           (codec == WCODEC_ID_MODEL ? 1 : 0) << 6);
        hdr[1] = (uint8_t)((nsets - 1) & 0xFF);
        hdr[2] = (uint8_t)((nsets - 1) >> 8);
        hdr[3] = (uint8_t)(first & 0xFF);
        hdr[4] = (uint8_t)(first >> 8);
        if (first == 0 && !cases[ci].cap) {
            if (wcodec_encode_block_as(codec, blk, nsets, nch, fmt, cases[ci].hint, enc,
                                       sizeof enc, &len) != 0)
                return 1;
        } else if (wcodec_encode_as(codec, blk, nsets, nch, fmt, cases[ci].hint, first,
                                    nsets - first, enc, cases[ci].cap ? cases[ci].cap : sizeof enc,
                                    &n, &len) != 0) {
            return 1;
        }
        snprintf(name, sizeof name, "seed_%02zu_%uch_fmt%d_%usets%s%s", ci, (unsigned)nch, fmt,
                 nsets, first || cases[ci].cap ? "_segment" : "_block",
                 codec == WCODEC_ID_MODEL ? "_codec2" : "");
        if (write_seed(argv[1], name, hdr, enc, len) != 0)
            return 1;
    }
    return 0;
}
