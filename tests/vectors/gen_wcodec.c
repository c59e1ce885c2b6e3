/* Prints the Codec 1 test vectors (docs/vectors/wcodec.json): a few small blocks, their raw
 * interleaved little-endian samples and the bytes our encoder produces for them (one segment
 * each, the form stored at rest). tests/unit/test_wcodec.c checks both directions; a ctest
 * checks the committed file equals this program's output.
 *   build/gen_wcodec_vectors > docs/vectors/wcodec.json */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wcodec/wcodec.h"

static void hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static void put(uint8_t *b, size_t i, int fmt, int32_t v)
{
    uint32_t u = (uint32_t)v;
    b[i * (size_t)fmt * 2] = (uint8_t)u;
    b[i * (size_t)fmt * 2 + 1] = (uint8_t)(u >> 8);
    if (fmt == 2) {
        b[i * 4 + 2] = (uint8_t)(u >> 16);
        b[i * 4 + 3] = (uint8_t)(u >> 24);
    }
}

static int first = 1;

static void vec(const char *name, const uint8_t *raw, uint32_t nsets, int nch, int fmt,
                uint32_t hint)
{
    static uint8_t enc[1 << 16];
    size_t len, rl = (size_t)nsets * (size_t)nch * (size_t)fmt * 2u;
    if (wcodec_encode_block(raw, nsets, nch, fmt, hint, enc, sizeof enc, &len) != 0) {
        fprintf(stderr, "encode failed: %s\n", name);
        return;
    }
    printf("%s    {\n      \"name\": \"%s\",\n", first ? "" : ",\n", name);
    printf("      \"nsets\": %u,\n      \"nch\": %d,\n      \"fmt\": %d,\n"
           "      \"period_hint\": %u,\n      \"raw\": \"",
           nsets, nch, fmt, hint);
    hex(raw, rl);
    printf("\",\n      \"encoded\": \"");
    hex(enc, len);
    printf("\"\n    }");
    first = 0;
}

int main(void)
{
    static uint8_t b[1 << 15];
    uint32_t seed = 12345;

    printf("{\n  \"codec\": \"GSTP codec 1 (wcodec)\",\n  \"spec\": \"docs/protocol.md, "
           "appendix Codec 1\",\n  \"generator\": \"tests/vectors/gen_wcodec.c\",\n"
           "  \"notes\": \"raw: interleaved little-endian samples (set 0 channel 0, channel 1, "
           "..., then set 1); encoded: the block at rest (its segments concatenated); "
           "fmt 1 = int16, 2 = int32\",\n  \"vectors\": [\n");

    /* 1. one channel, four int16 samples: order-1 prediction, one Rice partition */
    {
        static const int16_t v[] = {100, 101, 103, 102};
        for (int i = 0; i < 4; i++)
            put(b, (size_t)i, 1, v[i]);
        vec("1 channel, 4 sets, int16, small ramp", b, 4, 1, 1, 0);
    }
    /* 2. constant channel of zeros and a constant channel of 5: escape width 0 */
    {
        for (int i = 0; i < 16; i++) {
            put(b, (size_t)(2 * i), 1, 0);
            put(b, (size_t)(2 * i + 1), 1, 5);
        }
        vec("2 channels, 16 sets, int16, constants", b, 16, 2, 1, 0);
    }
    /* 3. 3-phase sine, 16 sets per cycle, 3 cycles: the cycle-back predictors with P = 16 */
    {
        for (int i = 0; i < 48; i++)
            for (int c = 0; c < 3; c++) {
                double th = 6.283185307179586 * i / 16.0 - c * 2.0943951023931953;
                seed = seed * 1103515245u + 12345u;
                put(b, (size_t)(i * 3 + c), 1,
                    (int32_t)lround(10000 * sin(th) + 300 * sin(3 * th)) +
                        (int32_t)((seed >> 16) % 5) - 2);
            }
        vec("3 channels, 48 sets, int16, 3-phase sine with 3rd harmonic, period 16", b, 48, 3, 1,
            16);
    }
    /* 4. int32 full range: residuals need more than 32 bits (escape) */
    {
        static const int32_t v[] = {INT32_MIN, INT32_MAX, INT32_MIN, 0, INT32_MAX, -1, 1, 7};
        for (int i = 0; i < 8; i++)
            put(b, (size_t)i, 2, v[i]);
        vec("1 channel, 8 sets, int32, extremes", b, 8, 1, 2, 0);
    }
    /* 5. int32 slow ramp on 2 channels, 40 sets (Rice with larger parameters) */
    {
        for (int i = 0; i < 40; i++) {
            put(b, (size_t)(2 * i), 2, 1000000 + i * 777 + (i * i) % 13);
            put(b, (size_t)(2 * i + 1), 2, -5000000 - i * i * 31);
        }
        vec("2 channels, 40 sets, int32, ramps", b, 40, 2, 2, 0);
    }
    printf("\n  ]\n}\n");
    return 0;
}
