/* Prints the codec 1 and codec 2 test vectors (docs/vectors/wcodec.json): a few small blocks,
 * their raw interleaved little-endian samples and the bytes our encoder produces for them (one
 * segment each, the form stored at rest); `codec` says which codec (2: Appendix A.11, the block
 * model). tests/unit/test_wcodec.c checks both directions; a ctest
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

static void vec_as(int codec, const char *name, const uint8_t *raw, uint32_t nsets, int nch,
                   int fmt, uint32_t hint)
{
    static uint8_t enc[1 << 16];
    size_t len, rl = (size_t)nsets * (size_t)nch * (size_t)fmt * 2u;
    if (wcodec_encode_block_as(codec, raw, nsets, nch, fmt, hint, enc, sizeof enc, &len) != 0) {
        fprintf(stderr, "encode failed: %s\n", name);
        return;
    }
    printf("%s    {\n      \"name\": \"%s\",\n", first ? "" : ",\n", name);
    printf("      \"codec\": %d,\n      \"nsets\": %u,\n      \"nch\": %d,\n"
           "      \"fmt\": %d,\n      \"period_hint\": %u,\n      \"raw\": \"",
           codec, nsets, nch, fmt, hint);
    hex(raw, rl);
    printf("\",\n      \"encoded\": \"");
    hex(enc, len);
    printf("\"\n    }");
    first = 0;
}

static void vec(const char *name, const uint8_t *raw, uint32_t nsets, int nch, int fmt,
                uint32_t hint)
{
    vec_as(WCODEC_ID, name, raw, nsets, nch, fmt, hint);
}

int main(void)
{
    static uint8_t b[1 << 15];
    uint32_t seed = 12345;

    printf("{\n  \"codec\": \"GSTP codecs 1 and 2 (wcodec; each vector's codec)\",\n"
           "  \"spec\": \"docs/protocol.md, Appendix A (codec 2: A.11)\",\n  \"generator\": \"tests/vectors/gen_wcodec.c\",\n"
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
    /* 6. codec 2: one channel, 64 sets, a sine with a 3rd harmonic, period 16, a little noise:
     * a model segment (H = 2 or more), predictor 0 = the model */
    {
        for (int i = 0; i < 64; i++) {
            double th = 6.283185307179586 * i / 16.2;
            seed = seed * 1103515245u + 12345u;
            put(b, (size_t)i, 1,
                (int32_t)lround(8000 * sin(th + 0.5) + 400 * sin(3 * th)) +
                    (int32_t)((seed >> 16) % 7) - 3);
        }
        vec_as(WCODEC_ID_MODEL, "codec 2, 1 channel, 64 sets, int16, sine and 3rd harmonic, period 16",
               b, 64, 1, 1, 16);
    }
    /* 7. codec 2: 3-phase 50 Hz at 1.6 kHz (period 32), harmonics 3, 5, 7, noise, 160 sets */
    {
        for (int i = 0; i < 160; i++)
            for (int c = 0; c < 3; c++) {
                double th = 6.283185307179586 * i / 32.1 - c * 2.0943951023931953;
                seed = seed * 1103515245u + 12345u;
                put(b, (size_t)(i * 3 + c), 1,
                    (int32_t)lround(15000 * sin(th) + 600 * sin(3 * th + 0.2) +
                                    450 * sin(5 * th + 1) + 150 * sin(7 * th + 2)) +
                        (int32_t)((seed >> 16) % 21) - 10);
            }
        vec_as(WCODEC_ID_MODEL, "codec 2, 3 channels, 160 sets, int16, 3-phase with harmonics 3-7, period 32",
               b, 160, 3, 1, 32);
    }
    /* 8. codec 2: int32, 2 channels, 96 sets, period 24, large amplitude */
    {
        for (int i = 0; i < 96; i++)
            for (int c = 0; c < 2; c++) {
                double th = 6.283185307179586 * i / 23.9 - c * 1.5;
                seed = seed * 1103515245u + 12345u;
                put(b, (size_t)(i * 2 + c), 2,
                    (int32_t)lround(3000000 * sin(th) - 90000 * sin(5 * th)) +
                        (int32_t)((seed >> 16) % 201) - 100);
            }
        vec_as(WCODEC_ID_MODEL, "codec 2, 2 channels, 96 sets, int32, sine and 5th harmonic, period 24",
               b, 96, 2, 2, 24);
    }
    /* 9. codec 2 without a period hint: no model, the codec-1 form (vector 3's samples would
     * do; a short ramp keeps it small) */
    {
        static const int16_t v[] = {100, 101, 103, 102};
        for (int i = 0; i < 4; i++)
            put(b, (size_t)i, 1, v[i]);
        vec_as(WCODEC_ID_MODEL, "codec 2, 1 channel, 4 sets, int16, no period: codec-1 form", b, 4, 1,
               1, 0);
    }
    printf("\n  ]\n}\n");
    return 0;
}
