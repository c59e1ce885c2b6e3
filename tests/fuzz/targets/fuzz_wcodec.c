/* libFuzzer target: the codec 1 and codec 2 decoders (src/wcodec) on arbitrary bytes, and for
 * inputs that decode, a re-encode/decode round trip.
 *
 * Input layout: 5 bytes of shape, then the encoded bytes.
 *   byte 0: bits 0..3 nch - 1, bit 4 fmt - 1, bit 5 mode (0: a block at rest through
 *           wcodec_decode_block; 1: one segment through wcodec_decode at `first`), bit 6 codec
 *           (0: codec 1; 1: codec 2, Appendix A.11, whose decoder must also accept whatever
 *           the codec-1 decoder accepts, with the same samples)
 *   bytes 1..2: nsets - 1 (little-endian, modulo 2048)
 *   bytes 3..4: first (little-endian, modulo nsets; mode 1 only). The sets before it, the
 *           block's "already decoded" history, are filled with a fixed pattern.
 * Checks: the decoder returns 0 or WCODEC_E_MALFORMED, never reads or writes out of bounds
 * (ASan), on success reports a run inside the block and a length inside the input; the decoded
 * samples encode (wcodec_encode_block / wcodec_encode within wcodec_bound) and decode back to the
 * same samples. A failure aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wcodec/wcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void history(uint8_t *blk, size_t bytes)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < bytes; i++) {
        x = x * 1103515245u + 12345u;
        blk[i] = (uint8_t)(x >> 16);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int nch = (data[0] & 15) + 1, fmt = ((data[0] >> 4) & 1) + 1, mode = (data[0] >> 5) & 1;
    int codec = (data[0] >> 6) & 1 ? WCODEC_ID_MODEL : WCODEC_ID;
    uint32_t nsets = (uint32_t)((data[1] | data[2] << 8) % 2048) + 1;
    uint32_t first = mode ? (uint32_t)(data[3] | data[4] << 8) % nsets : 0;
    const uint8_t *in = data + 5;
    size_t len = size - 5, bytes = (size_t)nsets * (size_t)nch * (size_t)fmt * 2u;
    size_t cap = wcodec_bound(nsets, nch, fmt), elen = 0, used = 0, used2 = 0;
    uint8_t *blk = malloc(bytes), *blk2 = malloc(bytes), *enc = malloc(cap);
    uint8_t *copy = malloc(len ? len : 1);
    uint32_t n = 0, n2 = 0;
    int rc;

    if (!blk || !blk2 || !enc || !copy)
        abort();
    memcpy(copy, in, len); /* exact-size buffer: ASan sees any read past the input */
    history(blk, bytes);
    if (codec == WCODEC_ID_MODEL) {
        /* whatever codec 1 accepts, codec 2 accepts with the same samples */
        int r1;
        history(blk2, bytes);
        if (mode == 0)
            r1 = wcodec_decode_block(copy, len, nsets, nch, fmt, blk2);
        else
            r1 = wcodec_decode(copy, len, nsets, nch, fmt, first, blk2, &n2, &used2);
        if (r1 != 0 && r1 != WCODEC_E_MALFORMED)
            abort();
        if (r1 == 0) {
            if (mode == 0)
                rc = wcodec_decode_block_as(codec, copy, len, nsets, nch, fmt, blk);
            else
                rc = wcodec_decode_as(codec, copy, len, nsets, nch, fmt, first, blk, &n, &used);
            if (rc != 0 || memcmp(blk, blk2, bytes) != 0 || (mode && (n != n2 || used != used2)))
                abort();
            history(blk, bytes);
        }
    }
    if (mode == 0) {
        rc = wcodec_decode_block_as(codec, copy, len, nsets, nch, fmt, blk);
        if (rc != 0 && rc != WCODEC_E_MALFORMED)
            abort();
        if (rc == 0) {
            if (wcodec_encode_block_as(codec, blk, nsets, nch, fmt, data[3], enc, cap, &elen) !=
                    0 ||
                elen > cap)
                abort();
            if (wcodec_decode_block_as(codec, enc, elen, nsets, nch, fmt, blk2) != 0 ||
                memcmp(blk, blk2, bytes) != 0)
                abort();
        }
    } else {
        rc = wcodec_decode_as(codec, copy, len, nsets, nch, fmt, first, blk, &n, &used);
        if (rc != 0 && rc != WCODEC_E_MALFORMED)
            abort();
        if (rc == 0) {
            if (n < 1 || first + n > nsets || used < 1 || used > len)
                abort();
            if (wcodec_encode_as(codec, blk, nsets, nch, fmt, data[3], first, n, enc, cap, &n2,
                                 &elen) != 0 ||
                n2 != n || elen > cap)
                abort();
            memcpy(blk2, blk, bytes);
            memset(blk2 + (size_t)first * (size_t)nch * (size_t)fmt * 2u, 0,
                   (size_t)n * (size_t)nch * (size_t)fmt * 2u);
            if (wcodec_decode_as(codec, enc, elen, nsets, nch, fmt, first, blk2, &n2, &used2) !=
                    0 ||
                n2 != n || used2 != elen || memcmp(blk, blk2, bytes) != 0)
                abort();
        }
    }
    free(blk);
    free(blk2);
    free(enc);
    free(copy);
    return 0;
}
