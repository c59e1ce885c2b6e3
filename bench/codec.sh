#!/usr/bin/env bash
# Waveform codec benchmark (src/wcodec, GSTP codecs 2 and 1), part of `make bench` (bench/run.sh,
# BENCHES=codec) or on its own. Prints a markdown section "Waveform codec" and keeps the raw
# output under $RESULTS.
#
#   bench/codec.sh               full: 60 s of each simulator signal, 7 speed repetitions
#   QUICK=1 bench/codec.sh       smoke test: a fifth of the signal, 3 repetitions
#
# build/codec_bench generates the signals (see the comment at its top: the simulator's default
# signal linked from sim/signal.c, with disturbances, at 60 Hz, at 12.8 kHz, and the COMTRADE
# test record of tests/integ/test_analyze.py), encodes every 100 ms block with wcodec (the form
# stored at rest; codec 2, the block model, then codec 1, docs/protocol.md Appendix A), checks
# the round trip (at rest and chunk by chunk), measures encode/decode speed in thread CPU time
# (median), and writes each signal's raw int16 samples. The same raw bytes then go through
# `flac -8` (raw input, 6 channels, the signal's rate), `xz -9e` and `zstd -19`, whole files
# (which favours them: wcodec compresses each 100 ms block on its own, as stored).
#
# Environment (defaults: full / QUICK=1):
#   CODEC_REPS    7 / 3        speed repetitions (medians are reported)
#   CODEC_SCALE   1 / 0.2      signal length factor
#   RESULTS       bench/results/<UTC time>-codec[-quick]
#   GS_BUILD      build        directory holding codec_bench (built here if missing)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
QUICK=${QUICK:-0}
q() { if [ "$QUICK" = 1 ]; then echo "$2"; else echo "$1"; fi; }
GS_BUILD=${GS_BUILD:-$ROOT/build}
CODEC_REPS=${CODEC_REPS:-$(q 7 3)}
CODEC_SCALE=${CODEC_SCALE:-$(q 1 0.2)}
RESULTS=${RESULTS:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-codec$([ "$QUICK" = 1 ] && echo -quick || true)}
mkdir -p "$RESULTS"

if [ ! -x "$GS_BUILD/codec_bench" ]; then
    cmake --build "$GS_BUILD" --target codec_bench >&2
fi
for t in flac xz zstd; do
    command -v $t >/dev/null || { echo "codec.sh: $t not installed (scripts/deps.sh)" >&2; exit 2; }
done

RAW="$RESULTS/raw"
mkdir -p "$RAW"
load_before=$(cut -d' ' -f1 /proc/loadavg)
"$GS_BUILD/codec_bench" --codec 2 --outdir "$RAW" --reps "$CODEC_REPS" --scale "$CODEC_SCALE" \
    >"$RESULTS/codec_bench.jsonl"
"$GS_BUILD/codec_bench" --codec 1 --reps "$CODEC_REPS" --scale "$CODEC_SCALE" \
    >"$RESULTS/codec1_bench.jsonl"
load_after=$(cut -d' ' -f1 /proc/loadavg)

# general-purpose compressors on the same bytes (one thread each)
while read -r line; do
    name=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["signal"])' "$line")
    rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rate"])' "$line")
    f="$RAW/$name.raw"
    flac -8 -f -s --force-raw-format --endian=little --sign=signed --bps=16 --channels=6 \
        --sample-rate="$rate" -o "$f.flac" "$f"
    xz -9e -T1 -k -f -c "$f" >"$f.xz"
    zstd -19 -T1 -q -f -c "$f" >"$f.zst"
    printf '{"signal":"%s","raw":%d,"flac8":%d,"xz9e":%d,"zstd19":%d}\n' "$name" \
        "$(stat -c %s "$f")" "$(stat -c %s "$f.flac")" "$(stat -c %s "$f.xz")" \
        "$(stat -c %s "$f.zst")" >>"$RESULTS/others.jsonl"
done <"$RESULTS/codec_bench.jsonl"
rm -f "$RAW"/*.raw # large; the compressed files stay as evidence

python3 - "$RESULTS" "$CODEC_REPS" "$load_before" "$load_after" \
    "${GS_SOURCE_DESC:-$(git describe --always --dirty 2>/dev/null || echo unknown)}" <<'PY'
import json, sys, time
res, reps, lb, la, src = sys.argv[1:6]
ours = [json.loads(l) for l in open(res + "/codec_bench.jsonl")]
c1 = {o["signal"]: o for o in (json.loads(l) for l in open(res + "/codec1_bench.jsonl"))}
others = {o["signal"]: o for o in (json.loads(l) for l in open(res + "/others.jsonl"))}
desc = {
    "sim": "simulator default (4 kHz, 50 Hz, noise 0.05 %)",
    "sim_dist": "simulator, 6 dips/swells/interruptions per minute",
    "sim_60hz": "simulator at 60 Hz (period 66.7 sets)",
    "sim_12k8": "simulator at 12.8 kHz (256 sets per cycle)",
    "comtrade": "COMTRADE test record (no noise)",
}
print("## Waveform codec (%s, `bench/codec.sh` at %s)" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), src))
print()
print("Bytes per sample (int16 samples, 6 channels; raw int16 is 2.000). wcodec codec 2 (the "
      "block model) and codec 1: every block encoded on its own (`wcodec_encode_block_as`, as "
      "stored); flac/xz/zstd: the whole file. Speed: one core, thread CPU time, median of %s "
      "runs, M samples/s (a sample = one channel of one set), codec 2 / codec 1. Wire chunks: "
      "the same blocks as GSTP chunk segments of at most %s bytes each (`wcodec_encode_as` "
      "filling each chunk). Load average %s before, %s after." % (
          reps, ours[0]["chunk_bytes"], lb, la))
print()
print("| signal | samples | codec 2 | codec 1 | flac -8 | xz -9e | zstd -19 | encode (2 / 1) | decode (2 / 1) | wire chunks, codec 2: B/sample, encode | wire chunks, codec 1 |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for o in ours:
    t = others[o["signal"]]
    w = c1[o["signal"]]
    n = o["samples"]
    print("| %s | %.2f M | **%.3f** | %.3f | %.3f | %.3f | %.3f | %.1f / %.1f M/s | %.1f / %.1f M/s | %.3f, %.1f M/s | %.3f, %.1f M/s |" % (
        desc.get(o["signal"], o["signal"]), n / 1e6, o["wcodec_bytes"] / n,
        w["wcodec_bytes"] / n, t["flac8"] / n, t["xz9e"] / n, t["zstd19"] / n,
        o["encode_msps"], w["encode_msps"], o["decode_msps"], w["decode_msps"],
        o["chunk_bps"], o["chunk_encode_msps"], w["chunk_bps"], w["chunk_encode_msps"]))
PY
