/* wcodec — lossless codec for interleaved int16/int32 waveform sample blocks (GSTP codecs 1
 * and 2).
 *
 * Designed for power-system waveforms: strongly periodic at the nominal frequency, several
 * correlated channels. Portable C99, no malloc, bounded stack, no global state: the same code
 * runs in terminal firmware (encoder) and in the server (decoder, and encoder for blocks that
 * arrive raw). The bitstream is specified in docs/protocol.md (Appendix A; codec 2: A.11) with
 * test vectors.
 *
 * Model: a block is nsets sample sets of nch channels, interleaved little-endian exactly as GSTP
 * 7.4 sends raw samples (set 0 channel by channel, then set 1, ...), width 2 (fmt 1, int16) or 4
 * (fmt 2, int32). The encoded form is a sequence of SEGMENTS; a segment covers a run of
 * consecutive sets [first, first + n) of one block and is self-delimiting (its header gives n
 * and its byte length), so:
 *   - on the wire one GSTP chunk carries exactly one segment (chunk first_sample = first,
 *     n_in_chunk = n);
 *   - at rest a block is the concatenation of its segments in set order.
 * Predictors may use any set before `first` of the same block (e.g. one cycle back): a segment
 * decodes only into a buffer holding the block's earlier sets, decoded from the earlier segments.
 * Decoding never reads outside [in, in + len) nor writes outside the block buffer, and rejects
 * every malformed input with WCODEC_E_MALFORMED. Error codes are the codec's own small negatives
 * (like gstp.h), so firmware needs nothing else of gridsense; the server maps them to GS_E*.
 *
 * Resources: no heap, no global state (thread-safe, reentrant). Stack (WCODEC_*_STACK below):
 * wcodec_decode and wcodec_decode_block at most 20 KiB whatever the block's size (one channel's
 * samples in a window of about 4,160 int32 sets, slid along long blocks); wcodec_encode and
 * wcodec_encode_block at most 90 KiB (a block's channel of up to 12,287 int32, the scores of
 * 256 sub-blocks; an MCU encoder should keep blocks short, as terminals do). Codec 2 (below)
 * adds the model's basis: at most 130 KiB encoding, 40 KiB decoding a model segment. The
 * encoder uses double-precision floating point (least-squares fits of at most 8 taps; codec 2's
 * model fit), the decoder integers only. Bitstream: docs/protocol.md, Appendix A; the period
 * hint of the encoder is round(sample rate / nominal frequency), values outside 2..2047 mean
 * none.
 */
#ifndef GS_WCODEC_WCODEC_H
#define GS_WCODEC_WCODEC_H

#include <stddef.h>
#include <stdint.h>

#define WCODEC_ID           1  /* GSTP block header `codec` value of this codec */
#define WCODEC_ID_MODEL     2  /* codec 2: codec 1 plus a sinusoidal block model (Appendix A.11) */
#define WCODEC_MAX_CHANNELS 16 /* channels per set */
#define WCODEC_MAX_SETS     8192

/* Stack bounds in bytes (see "Resources" above), checked by unit.test_wcodec (stack painting,
 * worst-case shapes, gcc -O2/-O3 on x86-64; other compilers and targets: within a few hundred
 * bytes, measure with -fstack-usage). */
#define WCODEC_DECODE_STACK (20 * 1024) /* wcodec_decode, wcodec_decode_block */
#define WCODEC_ENCODE_STACK (90 * 1024)  /* wcodec_encode, wcodec_encode_block */
#define WCODEC_MODEL_ENCODE_STACK (130 * 1024) /* the same with codec 2 (its model's basis) */
#define WCODEC_MODEL_DECODE_STACK (40 * 1024)  /* codec 2 decoding a model segment (its basis) */

enum {
    WCODEC_OK = 0,
    WCODEC_E_SPACE = -1,     /* output too small (encode: not even one set fits) */
    WCODEC_E_MALFORMED = -2, /* decode: input is not a valid segment / block */
    WCODEC_E_ARG = -3        /* invalid argument from the caller */
};

/* Encodes sets [first, first + n) of the block at `block` (nsets sets of nch channels, fmt 1
 * int16 or 2 int32) as ONE segment into out[0..cap), choosing n as large as possible with
 * n <= max_sets, first + n <= nsets and the segment fitting in cap bytes. period_hint is the
 * expected cycle length in sets (sample_rate / nominal frequency, rounded; 0 = none): the
 * encoder may use it for a one-cycle-back predictor and records in the segment whatever the
 * decoder needs. Sets of `block` before `first` are history the predictors may read.
 * Returns 0 with *n_out >= 1 and *len_out bytes written; WCODEC_E_SPACE when not even one set fits
 * in cap; WCODEC_E_ARG for bad arguments. Deterministic: equal inputs give equal bytes. */
int wcodec_encode(const uint8_t *block, uint32_t nsets, int nch, int fmt, uint32_t period_hint,
                  uint32_t first, uint32_t max_sets, uint8_t *out, size_t cap, uint32_t *n_out,
                  size_t *len_out);

/* Decodes the segment at the start of in[0..len) into `block` (nsets sets of nch channels of
 * fmt, the block's buffer; sets before `first` must already hold the block's earlier sets),
 * writing sets [first, first + *n_out). *used is the segment's length in bytes (<= len; bytes
 * after it are not read). Returns 0, WCODEC_E_MALFORMED (any inconsistency: bad header, a run past
 * nsets, a residual out of range, a bitstream ending early) or WCODEC_E_ARG (bad arguments). */
int wcodec_decode(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                  uint32_t first, uint8_t *block, uint32_t *n_out, size_t *used);

/* Decodes a whole block at rest: the concatenation of segments in[0..len) that together cover
 * sets 0..nsets-1 in order, exactly, with no byte left over. Returns 0 or WCODEC_E_MALFORMED. */
int wcodec_decode_block(const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                        uint8_t *block);

/* Encodes a whole block for storage (segments of any size, set order) into out[0..cap).
 * Returns 0 with *len_out, WCODEC_E_SPACE (cap too small: wcodec_bound() is always enough) or
 * WCODEC_E_ARG. */
int wcodec_encode_block(const uint8_t *block, uint32_t nsets, int nch, int fmt,
                        uint32_t period_hint, uint8_t *out, size_t cap, size_t *len_out);

/* Codec 2 (docs/protocol.md Appendix A.11): the same functions for a block codec `codec`,
 * WCODEC_ID (1: exactly the functions above) or WCODEC_ID_MODEL (2). A codec-2 segment may carry
 * a model of the block (fundamental and odd harmonics: a phase step per set and per channel
 * integer coefficients), which its predictor 0 then predicts; every codec-1 segment is a valid
 * codec-2 segment, not the converse. For a segment starting in the block's first period
 * (first < period_hint: at rest, every block), the codec-2 encoder fits the model over the whole
 * block (all of `block`, whatever max_sets) when period_hint is 2..2047 and the block holds at
 * least two periods and 32 sets, and writes a model segment when a channel's model pays for its
 * coefficients; otherwise, and for later segments, it writes codec-1 segments. The decoder
 * computes the model with integers only (a constant sine table). An unknown codec is WCODEC_E_ARG (decode_block:
 * WCODEC_E_MALFORMED). Stack: as above. */
int wcodec_encode_as(int codec, const uint8_t *block, uint32_t nsets, int nch, int fmt,
                     uint32_t period_hint, uint32_t first, uint32_t max_sets, uint8_t *out,
                     size_t cap, uint32_t *n_out, size_t *len_out);
int wcodec_decode_as(int codec, const uint8_t *in, size_t len, uint32_t nsets, int nch, int fmt,
                     uint32_t first, uint8_t *block, uint32_t *n_out, size_t *used);
int wcodec_decode_block_as(int codec, const uint8_t *in, size_t len, uint32_t nsets, int nch,
                           int fmt, uint8_t *block);
int wcodec_encode_block_as(int codec, const uint8_t *block, uint32_t nsets, int nch, int fmt,
                           uint32_t period_hint, uint8_t *out, size_t cap, size_t *len_out);

/* The codec-2 model's sine (Appendix A.11): sin(2 pi phase / 2^32) in Q30, from the constant
 * table of 1025 entries with linear interpolation, exactly as the decoder computes it (for
 * tests and other implementations). */
int32_t wcodec_model_sin(uint32_t phase);

/* An upper bound of wcodec_encode_block's (and wcodec_encode_block_as's, either codec) output for
 * any block of that shape (worst case: incompressible noise, a few bytes above raw). */
size_t wcodec_bound(uint32_t nsets, int nch, int fmt);

#endif
