/* wave — stored waveforms for the HTTP API: the samples of a terminal's stored WAVEFORM blocks
 * over a time range, in engineering units, either as they are or as a min/max envelope, with
 * gaps explicit; and the waveform around a stored PQ event with its RMS(1/2) envelope.
 *
 * Pure functions over a store_t connection: no loop, no threads of their own. The server calls
 * them on the web thread with that thread's own read-only connection; each call is synchronous
 * and bounded (WAVE_MAX_RANGE_NS of data read, WAVE_MAX_VALUES numbers written): the last 10 s
 * of a 4 kS/s × 6 channel terminal take ~10 ms of CPU raw, ~2.5 ms as an envelope; the longest
 * range (600 s) ~50 ms (bench/wave_bench.c). The two passes are separate reads, not one
 * snapshot: blocks committed in between show in the second (sample_sets counts those shown).
 *
 * Conversions (GSTP 6.4): value = count × the channel's HELLO scale (secondary side, the same
 * product the analysis computes when it converts samples, src/dsp/stream.c convert_set), × the
 * terminal's provisioned vt_ratio (voltage channels) or ct_ratio (current channels) on the
 * primary side. The scales come from the channel layout stored with the blocks (table
 * block_layouts); a block stored without one (before schema migration 7) is given in counts
 * ("unit": "count") under names "chN" (N = channel index). Channel names are the analysis'
 * (src/ana/json.c ana_json_names: "Ua", "Ib", "In", "chN"), the names events are stored under.
 *
 * Reply format (JSON object, one line), documented for clients in docs/waveform-api.md:
 *
 *   {"terminal_id":"T1",
 *    "from":"2026-12-05T10:00:00.000Z","from_ns":..., "to":"...","to_ns":...,
 *    "side":"primary"|"secondary","vt_ratio":100,"ct_ratio":40,
 *    "mode":"raw"|"envelope","max_points":2000,   the value used (see WAVE_MAX_VALUES)
 *    "source":"blocks"|"pyramid",          where the values come from (see "Long ranges")
 *    "level_ns":60000000000,               pyramid only: the width of the level used
 *    "segments":[SEGMENT...],              contiguous runs of samples, in time order
 *    "gaps":[GAP...],                      every stretch of [from,to) without samples
 *    "sample_sets":40000,                  sample sets of the selected channels in the range
 *    "channels":["Ua","Ub",...]}           names present in the reply, in first-seen order
 *
 *   SEGMENT: {"t0":"...","t0_ns":...,        first sample set in the range
 *             "end":"...","end_ns":...,      last sample set + one period (exclusive end)
 *             "sample_rate":4000,"period_ns":250000,"n":400,     sample sets in the segment
 *             "seq_first":12,"seq_last":15,"time_quality":1,     blocks used; worst quality
 *             "channels":[{"name":"Ua","kind":"voltage","unit":"V","ratio":100,
 *                          "lsb":2}],        one count in the reply's units (7 digits)
 *             raw:      "samples":{"Ua":[v0,v1,...],...}   sample i at t0_ns + i·1e9/rate;
 *                       values with one decimal more than lsb needs, trailing zeros dropped
 *             envelope: "buckets":{"t_ns":[...],"n":[...],"min":{"Ua":[...]},"max":{...},
                                  "rms":{...}}}   rms: of the bucket's samples, DC included
 *   GAP:     {"from":"...","from_ns":...,"to":"...","to_ns":...,
 *             "reason":"missing"|"time_step","seq_before":n|null,"seq_after":n|null}
 *
 * A segment ends where the next stored block does not continue it: its first sample is more than
 * 1.5 sample periods before or after where the previous block ended (a missing block, a seq
 * hole, the terminal's clock stepping), or the sample rate or channel layout changes (a new
 * segment without a gap). Within a segment, per-block time jitter under 1.5 periods is absorbed
 * and sample times are t0_ns + i·1e9/rate. "time_step" marks a stretch where time went
 * backwards (to_ns < from_ns is then possible). Envelope buckets: N = max_points buckets of equal
 * width over [from, to); bucket k starts at t_ns = from_ns + k·(to_ns−from_ns)/N; a bucket lists
 * the min and max of the segment's samples in it and how many there were (n); a bucket a gap
 * cuts appears in both segments, each with its own samples, so no line ever crosses a gap.
 * Raw mode when the range holds at most max_points sample sets (of the selected channels'
 * blocks), envelope otherwise.
 *
 * Long ranges: a range up to WAVE_BLOCKS_RANGE_NS (60 s), or up to WAVE_MAX_RANGE_NS (600 s)
 * when its buckets (span / max_points) would be narrower than 1 s, is read from the blocks as
 * above ("source":"blocks"). Any longer range (up to WAVE_MAX_SPAN_NS) is an envelope from the
 * summary pyramid (store.h; "source":"pyramid"): the coarsest level whose width is at most
 * span / min(max_points, WAVE_PYR_MAX_POINTS), or the finest (1 s) with span / 1 s buckets when
 * even that is too coarse; so at most ~24 × max_points rows are read whatever the span. When
 * retention removed that level's old rows ([history] pyramid_fine_days) and the range reaches
 * before the level's first sample while a coarser level holds samples there, the next coarser
 * level is used instead (for the whole reply: "level_ns" says which), so data that is stored is
 * never shown as a gap. Likewise a short range with no block left (retention, raw_days) whose
 * samples the pyramid still summarises is answered from the pyramid. Each
 * pyramid row (level bucket) goes to the reply bucket holding its first sample in the range;
 * rows are contiguous (one segment) when one starts within 1.5 sample periods of where the
 * previous one ended, otherwise a "missing" gap separates them, with the seqs of the blocks on
 * each side. A hole shorter than the level's width inside one of its buckets is not a gap: the
 * bucket's n shows the samples missing. The first and last rows may hold samples up to one
 * level width outside [from, to) (counted in n and sample_sets: the level is not finer than
 * the reply's buckets).
 */
#ifndef GS_WAVE_H
#define GS_WAVE_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "store/store.h"

#define WAVE_SIDE_PRIMARY   0 /* default: voltage × vt_ratio, current × ct_ratio */
#define WAVE_SIDE_SECONDARY 1 /* as the terminal measured (its HELLO scales) */

#define WAVE_DEFAULT_POINTS 2000
#define WAVE_MAX_POINTS     100000
/* Longest range read from the blocks (10 min: 2.4 M sample sets at 4 kS/s), and the longest
 * event window. */
#define WAVE_MAX_RANGE_NS (600LL * 1000000000LL)
/* Ranges up to this are always read from the blocks (raw samples or an envelope as fine as
 * asked); longer ones from the summary pyramid (store.h), except a range up to
 * WAVE_MAX_RANGE_NS whose buckets would be narrower than the pyramid's finest level (1 s). */
#define WAVE_BLOCKS_RANGE_NS (60LL * 1000000000LL)
/* Longest range of a query (about ten years). */
#define WAVE_MAX_SPAN_NS (3660LL * 86400LL * 1000000000LL)
/* Buckets of an envelope from the pyramid at most (a min, max and rms per channel each: 16
 * channels stay under WAVE_MAX_VALUES). */
#define WAVE_PYR_MAX_POINTS 20000
/* Numbers one reply carries at most: the raw/envelope threshold is lowered to WAVE_MAX_VALUES /
 * channels when max_points × channels is above it, and an envelope's bucket count to
 * WAVE_MAX_VALUES / (2 × channels) (a min and a max each); channels: the most selected in one
 * block among those counted before deciding. The reply's max_points states the value used.
 * Bounds a reply to ~12 MB. */
#define WAVE_MAX_VALUES 1000000

#define WAVE_EVENT_PRE_NS  500000000LL  /* default time shown before an event */
#define WAVE_EVENT_POST_NS 1000000000LL /* ... and after its end */

/* WAVE_SIDE_PRIMARY for "primary", WAVE_SIDE_SECONDARY for "secondary" (the words replies use),
 * GS_EINVAL for anything else. */
int wave_side_parse(const char *name);

/* GET /api/v1/terminals/{id}/waveform parameters. */
typedef struct {
    const char *terminal_id;
    int64_t from_ns, to_ns; /* UTC ns, from < to, to − from <= WAVE_MAX_RANGE_NS */
    const char *channels;   /* comma list of channel names (case-insensitive), NULL or "" = all */
    int max_points;         /* 1..WAVE_MAX_POINTS; 0 = WAVE_DEFAULT_POINTS */
    int side;               /* WAVE_SIDE_PRIMARY or WAVE_SIDE_SECONDARY */
} wave_req_t;

/* Writes the reply object described above for q into out (appended; out is reset first).
 * Returns 0; GS_ENOTFOUND (no such terminal) or GS_EINVAL (bad parameters: from >= to, range
 * too long, max_points out of range, a malformed or unknown channel name, bad side) with a
 * one-line message for the client in err; GS_EDB (database) with a message. A range without any
 * stored block is not an error: no segments and one gap over the whole range. Thread: the one
 * that owns st. */
int wave_query(store_t *st, const wave_req_t *q, buf_t *out, char *err, size_t errlen);

/* GET /api/v1/events/{id}/waveform: the waveform of the event's terminal from start − pre_ns to
 * start + duration + post_ns (pre/post < 0: the defaults WAVE_EVENT_PRE_NS/POST_NS; a window
 * longer than WAVE_MAX_RANGE_NS is cut at its end, "truncated": true), all channels, in the
 * wave_query format (max_points and side as there; 0 = default), plus
 *   "event":{"id":..,"terminal_id":..,"kind":"dip","start":..,"start_ns":..,"end":..,"end_ns":..,
 *            "duration_ns":..,"extreme":..,"extreme_pct":..,"reference":..,
 *            "channels":["Ua"],"worst_channel":"Ua"},  (extreme/reference: secondary volts, as
 *                                                       stored by the analysis)
 *   "pre_ns":..,"post_ns":..,"truncated":false,
 *   "rms_half":{"nominal_hz":50,
 *               "segments":[{"t0":..,"t0_ns":..,"step_ns":10000000,"window_ns":20000000,
 *                            "n":169,"values":{"Ua":[...],"Ub":[...],"Uc":[...]}}]}
 * rms_half: per voltage channel, the RMS over one nominal cycle (2·round(rate / 2·nominal_hz)
 * samples) every half cycle (IEC 61000-4-30 5.4.2), value k timed at the centre of its window
 * (t0_ns + k·step_ns; t0_ns = the segment's start + one half cycle), per waveform segment
 * (never across a gap; a segment shorter than one cycle has none), from the full-rate samples
 * whatever the waveform's mode, in the reply's side and units, DC included, windows aligned with
 * the segment start rather than a zero crossing (so its times may differ from the analysis'
 * event times by up to one step). Returns as wave_query; GS_ENOTFOUND for an
 * unknown event or when its terminal no longer exists. */
int wave_event(store_t *st, int64_t event_id, int64_t pre_ns, int64_t post_ns, int max_points,
               int side, buf_t *out, char *err, size_t errlen);

#endif
