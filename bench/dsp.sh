#!/usr/bin/env bash
# Analysis engine benchmark (src/dsp), part of `make bench` (bench/run.sh, BENCHES=dsp) or on its
# own. Prints a markdown section "Analysis engine" and keeps the raw output under $RESULTS.
#
#   bench/dsp.sh                 full: dense accuracy sweeps + 7 repetitions of the cost runs
#   QUICK=1 bench/dsp.sh         smoke test: sparse sweeps, 3 repetitions, 10 s of signal
#
# (A) accuracy: `dsp_bench accuracy` generates test signals with known truth (tests/unit/
#     dsp_siggen.c), runs the engine on them, and reports the worst error per quantity, clean
#     and with white noise at 60 dB SNR; twice: with the engine library's defaults (DC kept) and
#     with the server's defaults (DC removal on) plus an ADC offset on every voltage channel.
# (B) cost: per input rate, `dsp_bench perf` (the engine on six channels, 3 V + 3 I with
#     harmonics, int16 counts in 100 ms blocks, and a bare FFTW r2c transform of the engine's
#     window length N) and `dsp_ref.py` (the same per-window computations in numpy) on the same
#     signal, in alternating repetitions, after checking that the reference's results agree with
#     the engine's. Pinned to one core (`taskset -c 0`) when taskset exists.
#
# Environment (defaults: full / QUICK=1):
#   DSP_RATES     "4000 12800"    input sample rates for the cost runs
#   DSP_F0        50              nominal frequency for the cost runs
#   DSP_SECONDS   30 / 10         seconds of signal per cost run
#   DSP_REPS      7 / 3           repetitions (medians are reported)
#   RESULTS       bench/results/<UTC time>-dsp[-quick]
#   GS_BUILD      build           directory holding dsp_bench (built here if missing)
#   REF_PYTHON    /usr/bin/python3  interpreter with numpy for the reference
#   GS_SOURCE_DESC  (git describe)  how to name the source in the report (a build made
#                                   outside this checkout)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
QUICK=${QUICK:-0}
q() { if [ "$QUICK" = 1 ]; then echo "$2"; else echo "$1"; fi; }
GS_BUILD=${GS_BUILD:-$ROOT/build}
DSP_RATES=${DSP_RATES:-"4000 12800"}
DSP_F0=${DSP_F0:-50}
DSP_SECONDS=${DSP_SECONDS:-$(q 30 10)}
DSP_REPS=${DSP_REPS:-$(q 7 3)}
REF_PYTHON=${REF_PYTHON:-/usr/bin/python3}
RESULTS=${RESULTS:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-dsp$(q "" "-quick")}
BENCH=$GS_BUILD/dsp_bench

log() { echo "bench/dsp: $*" >&2; }

if [ ! -x "$BENCH" ]; then
    log "building dsp_bench in $GS_BUILD"
    [ -f "$GS_BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$GS_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$GS_BUILD" --target dsp_bench -j"$(nproc)" >&2
fi
"$REF_PYTHON" -c 'import numpy' 2>/dev/null || {
    log "$REF_PYTHON has no numpy (set REF_PYTHON)"
    exit 1
}
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c 0); fi

mkdir -p "$RESULTS"
W=$(mktemp -d "${TMPDIR:-/tmp}/gs-dsp.XXXXXX")
trap 'rm -rf "$W"' EXIT

# ------------------------------------------------------------------ machine
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo "?")
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$GS_BUILD/CMakeCache.txt" 2>/dev/null | head -1)
ccv=$("${cc:-cc}" --version 2>/dev/null | head -1 || echo "?")
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$GS_BUILD/CMakeCache.txt" 2>/dev/null | head -1)
fftwv=$(pkg-config --modversion fftw3 2>/dev/null || echo "?")
npv=$("$REF_PYTHON" -c 'import numpy, sys; print(numpy.__version__, "(Python", sys.version.split()[0] + ")")')
if [ -n "${GS_SOURCE_DESC:-}" ]; then
    commit=$GS_SOURCE_DESC
else
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (+ local changes)"; fi
fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)
"$REF_PYTHON" - "$RESULTS/machine.json" "$cpu" "$(nproc)" "$ccv" "$btype" "$fftwv" "$npv" \
    "$commit" "$load0" "$QUICK" "${PIN[*]:-none}" <<'EOF'
import datetime, json, sys
k = ["cpu", "cores", "compiler", "build_type", "fftw", "numpy", "commit", "loadavg_start", "quick",
     "pinning"]
d = dict(zip(k, sys.argv[2:]))
d["date_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
json.dump(d, open(sys.argv[1], "w"), indent=1)
EOF

# ------------------------------------------------------------------ (A) accuracy
for conf in library server; do
    log "accuracy sweeps, $conf configuration$(q "" " (quick)")"
    t0=$(date +%s)
    sfx=$([ $conf = library ] && echo "" || echo "-$conf")
    "$BENCH" accuracy $(q "" --quick) --config $conf >"$RESULTS/accuracy$sfx.jsonl" \
        2>"$RESULTS/accuracy$sfx.log"
    log "accuracy ($conf) done in $(($(date +%s) - t0)) s"
done

# ------------------------------------------------------------------ (B) cost
: >"$RESULTS/perf.jsonl"
: >"$RESULTS/ref.jsonl"
: >"$RESULTS/ref-check.jsonl"
for fs in $DSP_RATES; do
    "$BENCH" dump --fs "$fs" --f0 "$DSP_F0" --seconds "$DSP_SECONDS" --signal "$W/sig.f64" \
        --windows "$W/win.jsonl" >"$W/dump.json"
    log "cost at $fs S/s: checking the numpy reference against the engine"
    rc=0
    "$REF_PYTHON" "$HERE/dsp_ref.py" --signal "$W/sig.f64" --windows "$W/win.jsonl" --fs "$fs" \
        --f0 "$DSP_F0" --check-only >>"$RESULTS/ref-check.jsonl" || rc=$?
    [ $rc = 0 ] || log "the numpy reference does NOT agree with the engine at $fs S/s (see ref-check.jsonl)"
    gzip -c "$W/win.jsonl" >"$RESULTS/engine-windows-$fs.jsonl.gz"
    # Repetitions alternate between the engine (+ bare FFT) and the reference, so that drift
    # of a shared machine affects both alike; each process warms up once before its run.
    for rep in $(seq 1 "$DSP_REPS"); do
        log "cost at $fs S/s: repetition $rep/$DSP_REPS ($DSP_SECONDS s of signal)"
        "${PIN[@]}" "$BENCH" perf --rates "$fs" --f0 "$DSP_F0" --seconds "$DSP_SECONDS" \
            --reps 1 >>"$RESULTS/perf.jsonl"
        "${PIN[@]}" "$REF_PYTHON" "$HERE/dsp_ref.py" --signal "$W/sig.f64" --fs "$fs" \
            --f0 "$DSP_F0" --reps 1 --no-check >>"$RESULTS/ref.jsonl"
    done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ report
"$REF_PYTHON" - "$RESULTS" "$load1" <<'EOF' | tee "$RESULTS/dsp.md"
import json, os, statistics, sys

res, load1 = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(res, "machine.json")))
def jl(name):
    p = os.path.join(res, name)
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []
perf1, ref1 = jl("perf.jsonl"), jl("ref.jsonl")
checks = jl("ref-check.jsonl")

def g(v, unit):
    if v is None:
        return "n/a"
    s = "%.2g" % v if v < 0.01 else "%.3g" % v
    if "e" in s:
        s = "%.1e" % v
    return s + (" " + unit if unit else "")

def met(r):
    req, goal = r["required"], r["goal"]
    vals = [r["worst_clean"]] + ([r["worst_snr60"]] if r["cases_snr60"] else [])
    fails = r["fails_clean"] + r["fails_snr60"]
    if fails or any(v is None or v > req for v in vals):
        return "**no**"
    if all(v <= goal for v in vals):
        return "yes; goal met"
    if r["worst_clean"] <= goal:
        return "yes; goal met clean only"
    return "yes; goal not met"

o = []
o.append("## Analysis engine (%s%s)" % (m["date_utc"], ", QUICK mode" if m["quick"] == "1" else ""))
o.append("")
o.append("Machine: %s, %s cores; %s (%s); FFTW %s; numpy %s. Source: %s. Cost runs pinned with "
         "`%s`. Load average %s at the start, %s at the end. Raw output: `%s`."
         % (m["cpu"], m["cores"], m["compiler"], m["build_type"], m["fftw"], m["numpy"],
            m["commit"], m["pinning"], m["loadavg_start"], load1, res))
o.append("")
CONF = {
    "library": ("the engine library's defaults (`dsp_config_default`: DC kept in RMS)",
                "accuracy.jsonl"),
    "server": ("the server's defaults (`[analysis] dc_removal = true`, src/cli/config.c and "
               "src/ana/ana.c; thresholds, phasor window and resync as the library) with an ADC "
               "offset of +0.6, −0.45, +0.3 V on the three voltage channels",
               "accuracy-server.jsonl"),
}


def section_a(conf, letter):
    desc, fname = CONF[conf]
    acc = jl(fname)
    if not acc:
        return
    rows = [r for r in acc if r["bench"] == "dsp_accuracy"]
    horders = [r for r in acc if r["bench"] == "dsp_accuracy_harm_orders"]
    meta = next((r for r in acc if r["bench"] == "dsp_accuracy_meta"), {})
    o.append("### %s. Accuracy, %s configuration: worst case over the sweep (%s engine runs in %s s)"
             % (letter, conf, meta.get("runs", "?"), meta.get("seconds", "?")))
    o.append("")
    o.append("Configuration: %s." % desc)
    o.append("")
    o.append("| Quantity | Condition | Required | Goal | Worst (clean) | Worst (60 dB SNR) | Met |")
    o.append("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        if not r["main"]:
            continue
        u = r["unit"]
        fl = ""
        if r["fails_clean"] or r["fails_snr60"]:
            fl = " (%d/%d cases failed)" % (r["fails_clean"], r["fails_snr60"])
        if r.get("unmeasured_clean"):
            fl += " (%d+%d cases above the engine's hmax not reported, not counted)" % (
                r["unmeasured_clean"], r["unmeasured_snr60"])
        o.append("| %s | %s | ±%s | ±%s | %s | %s | %s%s |" % (
            r["quantity"], r["condition"], g(r["required"], u), g(r["goal"], u),
            g(r["worst_clean"], u), g(r["worst_snr60"], u) if r["cases_snr60"] else "n/a",
            met(r), fl))
    o.append("")
    o.append("Worst cases (clean / 60 dB SNR):")
    o.append("")
    for r in rows:
        if r["main"]:
            line = "- %s, %s: %s / %s" % (r["quantity"], r["row"], r["where_clean"] or "-",
                                         r["where_snr60"] or "-")
            if r["fails_clean"] or r["fails_snr60"]:
                line += "; failed cases %d / %d, first: %s" % (
                    r["fails_clean"], r["fails_snr60"], r["first_fail_clean"] or r["first_fail_snr60"])
            o.append(line)
    o.append("")
    if horders:
        o.append("Harmonic magnitude by order (groups, clean; every swept order up to the one named "
                 "is within the limit):")
        o.append("")
        o.append("| input | system | orders swept up to | within ±5 % up to | within ±0.5 % up to "
                 "| worst order: error |")
        o.append("|---|---|---:|---:|---:|---|")
        for h in horders:
            if h["noisy"]:
                continue
            wb = h["worst_by_order"]
            k = max(wb, key=lambda x: wb[x]) if wb else "-"
            o.append("| %g S/s | %d Hz | %d | %d | %d | %s: %s %% |" % (
                h["fs"], h["f0"], h["highest_order_swept"], h["all_orders_within_required_upto"],
                h["all_orders_within_goal_upto"], k, g(wb.get(k), "")))
        o.append("")
    o.append("Further measurements (no requirement given):")
    o.append("")
    o.append("| Quantity | Condition | Worst (clean) | Worst (60 dB SNR) |")
    o.append("|---|---|---:|---:|")
    for r in rows:
        if not r["main"]:
            o.append("| %s | %s | %s | %s |" % (r["quantity"], r["condition"],
                                              g(r["worst_clean"], r["unit"]),
                                              g(r["worst_snr60"], r["unit"])))
    o.append("")



section_a("library", "A")
section_a("server", "A2")

med = statistics.median
rates = sorted({p["fs"] for p in perf1})
o.append("### B. Cost per sample and channel (one core, CPU time, median of %d repetitions)"
         % max([sum(1 for p in perf1 if p["fs"] == fs) for fs in rates] or [0]))
o.append("")
o.append("| input | N (C cycles) | windows per rep | engine ns/sample | bare FFTW r2c ns/sample "
         "| engine / FFT (goal ≤ 5) | numpy reference ns/sample | numpy / engine (goal ≥ 20) "
         "| numpy rfft alone ns/sample |")
o.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
notes = []
rng = lambda v: "%.3g–%.3g" % (min(v), max(v)) if v else "n/a"
for fs in rates:
    ps = [p for p in perf1 if p["fs"] == fs]
    rs = [r for r in ref1 if r["fs"] == fs]
    p0 = ps[0]
    e = [p["engine_cpu_ns_per_sample"][0] for p in ps]
    f = [p["fft_cpu_ns_per_sample"][0] for p in ps]
    ew = [p["engine_wall_ns_per_sample"][0] for p in ps]
    n = [r["ref_cpu_ns_per_sample"][0] for r in rs]
    nw = [r["ref_wall_ns_per_sample"][0] for r in rs]
    nf = [r["numpy_rfft_cpu_ns_per_sample"][0] for r in rs]
    o.append("| %g S/s | %d (%d) | %d | %.2f | %.3f | %.1f | %s | %s | %s |" % (
        fs, p0["N"], p0["C"], p0["windows"], med(e), med(f), med(e) / med(f),
        "%.1f" % med(n) if n else "n/a", "%.1f" % (med(n) / med(e)) if n else "n/a",
        "%.2f" % med(nf) if nf else "n/a"))
    s = ("- %g S/s (%d repetitions, %g s of signal each): engine %s ns (wall clock: median "
         "%.2f), FFT %s ns, engine / FFT per repetition %s" % (
             fs, len(ps), p0["seconds"], rng(e), med(ew), rng(f),
             rng([a / b for a, b in zip(e, f)])))
    if n:
        s += ("; numpy %s ns (wall clock: median %.1f), numpy / engine per repetition %s"
              % (rng(n), med(nw), rng([a / b for a, b in zip(n, e)])))
    c = next((x for x in checks if x["fs"] == fs), None)
    if c:
        d = c["max_diff"]
        s += ("; reference vs engine on all %d windows: %s (largest differences: frequency "
              "%.1g Hz, RMS %.1g, harmonic groups %.1g relative to the fundamental, angles "
              "%.1g rad, power %.1g of S)" % (
                  c["windows_engine"], "agree" if c["agree"] else "**DISAGREE** " +
                  json.dumps(c["out_of_tolerance"]), d["freq_hz"], d["rms_rel"], d["hg_rel"],
                  max(d["fund_ang_rad"], d["ph_ang_rad"]), d["power_rel"]))
    notes.append(s)
o.append("")
o.append("Ranges over the repetitions, wall clock, and the reference check:")
o.append("")
o.extend(notes)
o.append("")
print("\n".join(o))
EOF
log "results in $RESULTS"
