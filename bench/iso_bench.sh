#!/usr/bin/env bash
# Isolation benchmark (issue 8, section 5): do HTTP clients slow the terminals down?
#
# Runs the real server with ISO_N simulated terminals streaming and measures the terminals'
# block -> ACK latency (gridsense-sim --ack-latency: p50/p99 over every block of the run) three
# ways, each against a fresh copy of the same provisioned database:
#   none       no HTTP load
#   health     ISO_CONNS keep-alive HTTP connections hammering GET /api/v1/health (wrk)
#   terminals  the same on GET /api/v1/terminals (one store read and a JSON row per terminal)
# The HTTP load starts before the simulator and lasts past its end, so every block of the
# measured run is sent under load. Everything is on 127.0.0.1 in a temp dir; every process has
# a duration and stops by itself (wrk is interrupted after the simulator ends).
#
#   bench/iso_bench.sh                       defaults below (about 3 minutes on 2 cores)
#   ISO_MODES="none health" ISO_REPS=3 bench/iso_bench.sh
#   BENCHES="iso" bench/run.sh               the same, from the suite (make bench)
#
# Environment:
#   ISO_N         terminals streaming (default 200)
#   ISO_RATE      simulator --rate (sample sets/s per channel, default 4000)
#   ISO_BLOCK_MS  simulator --block-ms (default 100)
#   ISO_DURATION  seconds of streaming per run (default 20)
#   ISO_CONNS     HTTP connections (default 1000)
#   ISO_THREADS   wrk threads (default 1: leave the second core to the server)
#   ISO_WRK_NICE  niceness of wrk (default 0). On one machine the load generator takes CPU that
#                 real clients (on other machines) would not; 19 lets it use only what the server
#                 and the simulator leave. The report states it.
#   ISO_MODES     "none health terminals"
#   ISO_REPS      repetitions, mode-major within each repetition (default 1)
#   ISO_SYNC      server --sync (default normal: full would measure the disk's fsync, not the
#                 loop)
#   ISO_CONFIG    extra lines appended to the server's config file (e.g. "[http]\nthread = on")
#   ISO_VARIANTS  server configurations to compare in one run, interleaved (default "default":
#                 ISO_CONFIG); variant V adds the lines of $ISO_CONFIG_V, e.g.
#                   ISO_VARIANTS="loop web" ISO_CONFIG_web='[http]\nthread = on' bench/iso_bench.sh
#   RESULTS       where the JSON of each run and report.md go (bench/results/<UTC>-iso)
#   GS_BUILD      directory holding gridsense and gridsense-sim (build)
#   ISO_TMPDIR    where the temp dir (databases) goes; default /dev/shm when it exists: the
#                 question is the loop's CPU, and a shared disk's fsync stalls (WAL
#                 checkpoints) would otherwise dominate the p99 of every mode
#   KEEP_TMP      1: keep the temp dir (server logs, wrk output)
#   GS_SOURCE_DESC  how to name the source in the report (git describe of this checkout)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
GS_BUILD=${GS_BUILD:-$ROOT/build}
GS=$GS_BUILD/gridsense
SIM=$GS_BUILD/gridsense-sim

ISO_N=${ISO_N:-200}
ISO_RATE=${ISO_RATE:-4000}
ISO_BLOCK_MS=${ISO_BLOCK_MS:-100}
ISO_DURATION=${ISO_DURATION:-20}
ISO_CONNS=${ISO_CONNS:-1000}
ISO_THREADS=${ISO_THREADS:-1}
ISO_WRK_NICE=${ISO_WRK_NICE:-0}
ISO_MODES=${ISO_MODES:-"none health terminals"}
ISO_REPS=${ISO_REPS:-1}
ISO_SYNC=${ISO_SYNC:-normal}
ISO_CONFIG=${ISO_CONFIG:-}
ISO_VARIANTS=${ISO_VARIANTS:-default}
KEEP_TMP=${KEEP_TMP:-0}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=${RESULTS:-$HERE/results/$STAMP-iso}

for b in "$GS" "$SIM"; do
    [ -x "$b" ] || { echo "iso_bench: $b not built (run make build)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "iso_bench: wrk is required (scripts/deps.sh installs it)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((ISO_N + ISO_CONNS + 500)) ]; then
    echo "iso_bench: open-file limit $(ulimit -n) too low for $ISO_N terminals + $ISO_CONNS connections" >&2
    exit 1
fi

mkdir -p "$RESULTS"
if [ -z "${ISO_TMPDIR:-}" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then ISO_TMPDIR=/dev/shm; else ISO_TMPDIR=${TMPDIR:-/tmp}; fi
fi
W=$(mktemp -d "$ISO_TMPDIR/gs-iso.XXXXXX")
SRV_PID=""
SIM_PID=""
WRK_PID=""
log() { echo "iso_bench: $*" >&2; }

stop_pid() { # stop_pid PID SIGNAL TIMEOUT_S: one process we started
    local pid=$1 sig=$2 t=$3 i=0
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -s "$sig" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $((t * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_pid "$WRK_PID" INT 5
    stop_pid "$SIM_PID" TERM 20
    stop_pid "$SRV_PID" TERM 30
    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then log "temp dir kept: $W"; else rm -rf "$W"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# HTTP caps high enough for the load (the defaults allow 64 connections per address), and
# handshakes of the whole fleet from one address; then the variant's own lines.
for v in $ISO_VARIANTS; do
    cv="ISO_CONFIG_$v"
    {
        printf '[terminals]\nmax_handshakes_per_address = 19000\n'
        printf '[http]\nmax_connections = %d\nmax_connections_per_address = %d\n' \
            $((ISO_CONNS + 1000)) $((ISO_CONNS + 1000))
        [ -n "$ISO_CONFIG" ] && printf '%b\n' "$ISO_CONFIG"
        [ -n "${!cv:-}" ] && printf '%b\n' "${!cv}"
    } >"$W/gs-$v.ini"
done

start_server() { # start_server DATA LOG PORTFILE VARIANT: sets SRV_PID, TPORT, HPORT
    local data=$1 logf=$2 pf=$3 v=$4 i=0 txt
    "$GS" serve --data "$data" --terminals 127.0.0.1:0 --http 127.0.0.1:0 --port-file "$pf" \
        --sync "$ISO_SYNC" --config "$W/gs-$v.ini" --log-level warn >>"$logf" 2>&1 &
    SRV_PID=$!
    while [ ! -s "$pf" ]; do
        kill -0 "$SRV_PID" 2>/dev/null || { SRV_PID=""; return 1; }
        i=$((i + 1))
        [ $i -lt 6000 ] || return 1
        sleep 0.01
    done
    txt=$(cat "$pf")
    [[ $txt =~ \"terminals\":([0-9]+) ]] && TPORT=${BASH_REMATCH[1]} || return 1
    [[ $txt =~ \"http\":([0-9]+) ]] && HPORT=${BASH_REMATCH[1]} || return 1
}

# utime + stime of a process (or, with a second argument, of one of its threads): the fields
# after the parenthesised command name, which is the 2nd field only when it has no spaces
cpu_ticks() {
    local f=/proc/$1/stat
    [ -n "${2:-}" ] && f=/proc/$1/task/$2/stat
    awk '{sub(/^.*\) /, ""); print $12 + $13}' "$f" 2>/dev/null || echo 0
}

log "provisioning $ISO_N terminals"
"$GS" terminal add --count "$ISO_N" --prefix S --secrets-out "$W/secrets.txt" --data "$W/tmpl" \
    --log-level warn >/dev/null
# Every /api/v1 route but health needs a credential: a viewer's token, sent by wrk.
"$GS" user add isobench --role viewer --data "$W/tmpl" --log-level warn >/dev/null
TOKEN=$("$GS" token create isobench --data "$W/tmpl" --log-level warn)
HZ=$(getconf CLK_TCK)

run_one() { # run_one VARIANT MODE REP
    local v=$1 mode=$2 rep=$3 d=$W/$1-$2-$3 path="" t0 t1 c0 c1 m0 m1 rc=0
    mkdir -p "$d"
    cp -r "$W/tmpl" "$d/data"
    start_server "$d/data" "$d/server.log" "$d/ports.json" "$v" || { log "server did not start: $d/server.log"; return 1; }
    case $mode in
        none) ;;
        health) path=/api/v1/health ;;
        terminals) path=/api/v1/terminals ;;
        *) log "unknown mode $mode"; return 1 ;;
    esac
    if [ -n "$path" ]; then
        # longer than the run; interrupted (SIGINT: wrk prints its summary) when the sim ends
        nice -n "$ISO_WRK_NICE" wrk -t "$ISO_THREADS" -c "$ISO_CONNS" -d $((ISO_DURATION + 120))s --timeout 10s --latency \
            -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HPORT$path" >"$d/wrk.txt" 2>&1 &
        WRK_PID=$!
        sleep 3 # its connections are open and busy before the first terminal connects
    fi
    c0=$(cpu_ticks "$SRV_PID")
    m0=$(cpu_ticks "$SRV_PID" "$SRV_PID") # the main thread: the gateway's loop
    t0=$(date +%s.%N)
    "$SIM" --server "127.0.0.1:$TPORT" --secrets "$W/secrets.txt" --terminals "$ISO_N" \
        --rate "$ISO_RATE" --block-ms "$ISO_BLOCK_MS" --connect-rate 5000 \
        --duration "$ISO_DURATION" --drain 60 --ack-latency --quiet >"$d/sim.json" 2>"$d/sim.err" &
    SIM_PID=$!
    wait "$SIM_PID" || rc=$?
    SIM_PID=""
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$SRV_PID")
    m1=$(cpu_ticks "$SRV_PID" "$SRV_PID")
    stop_pid "$WRK_PID" INT 10
    WRK_PID=""
    stop_pid "$SRV_PID" TERM 60
    SRV_PID=""
    [ -s "$d/sim.json" ] || echo '{}' >"$d/sim.json"
    [ -f "$d/wrk.txt" ] || : >"$d/wrk.txt"
    python3 - "$d" "$mode" "$rep" "$rc" "$t0" "$t1" "$c0" "$c1" "$HZ" "$ISO_N" "$ISO_CONNS" "$v" "$m0" "$m1" \
        >"$RESULTS/$v-$mode-$rep.json" <<'EOF'
import json, re, sys
d, mode, rep, rc, t0, t1, c0, c1, hz, n, conns, variant, m0, m1 = sys.argv[1:]
sim = json.load(open(d + "/sim.json"))
wrk = open(d + "/wrk.txt").read()
def wrk_num(pat, conv=float):
    m = re.search(pat, wrk)
    return conv(m.group(1)) if m else None
def ms(v, unit):
    return v * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
lat = {}
for q in ("50", "99"):
    m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s)" % q, wrk, re.M)
    lat[q] = ms(float(m.group(1)), m.group(2)) if m else None
wall = float(t1) - float(t0)
r = {
    "variant": variant, "mode": mode, "rep": int(rep), "terminals": int(n),
    "http_connections": int(conns) if mode != "none" else 0,
    "sim_exit": int(rc), "wall_s": round(wall, 2),
    "ack_p50_ms": sim.get("ack_p50_ms"), "ack_p99_ms": sim.get("ack_p99_ms"),
    "blocks_acked": sim.get("blocks_acked"), "blocks_generated": sim.get("blocks_generated"),
    "reconnects": sim.get("reconnects"),
    "server_cpu": round((int(c1) - int(c0)) / float(hz) / wall, 2) if wall > 0 else None,
    "loop_thread_cpu": round((int(m1) - int(m0)) / float(hz) / wall, 2) if wall > 0 else None,
    "http_req_per_s": wrk_num(r"Requests/sec:\s+([\d.]+)"),
    "http_p50_ms": lat["50"], "http_p99_ms": lat["99"],
    "http_errors": wrk_num(r"Socket errors: (.*)", str),
    "http_non2xx": wrk_num(r"Non-2xx or 3xx responses: (\d+)", int),
}
print(json.dumps(r))
EOF
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print("iso_bench: %(variant)s %(mode)s rep %(rep)d: ack p50 %(ack_p50_ms)s ms p99 %(ack_p99_ms)s ms, acked %(blocks_acked)s/%(blocks_generated)s, server %(server_cpu)s cores (loop thread %(loop_thread_cpu)s), http %(http_req_per_s)s req/s p99 %(http_p99_ms)s ms" % r, file=sys.stderr)' "$RESULTS/$v-$mode-$rep.json"
    [ "$KEEP_TMP" = 1 ] || rm -rf "$d/data"
}

# repetition-major, variants interleaved: drift of a shared machine spreads over all of them
for rep in $(seq 1 "$ISO_REPS"); do
    for v in $ISO_VARIANTS; do
        for mode in $ISO_MODES; do
            run_one "$v" "$mode" "$rep"
        done
    done
done

python3 - "$RESULTS" "$ISO_N" "$ISO_RATE" "$ISO_BLOCK_MS" "$ISO_DURATION" "$ISO_CONNS" "$ISO_SYNC" \
    "${GS_SOURCE_DESC:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}" "$ISO_MODES" \
    "$ISO_TMPDIR" "$ISO_VARIANTS" "$ISO_WRK_NICE" \
    <<'EOF' | tee "$RESULTS/report.md"
import glob, json, os, statistics, sys
res, n, rate, bms, dur, conns, sync, src, modes, tmpd, variants, wnice = sys.argv[1:]
modes = modes.split()
variants = variants.split()
def load(v, m):
    out = []
    for i in range(1, 1000):
        p = os.path.join(res, "%s-%s-%d.json" % (v, m, i))
        if not os.path.exists(p):
            break
        out.append(json.load(open(p)))
    return out
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def f(v, fmt):
    return "n/a" if v is None else fmt % v
print("## Isolation: terminal ack latency under HTTP load (%s)\n" % src)
print("%s terminals streaming (%s S/s per channel, %s ms blocks, --sync %s, database in %s), "
      "%s s per run; HTTP load: %s keep-alive connections (wrk, nice %s); medians over "
      "repetitions; %s, load average at the end %.1f.\n"
      % (n, rate, bms, sync, tmpd, dur, conns, wnice,
         os.uname().nodename + ", %d CPUs" % os.cpu_count(), os.getloadavg()[0]))
print("| server | HTTP load | runs | ack p50 ms | ack p99 ms (each run) | p99 vs none | server CPU (cores) | loop thread CPU | HTTP req/s | HTTP p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
for v in variants:
  base = med([r["ack_p99_ms"] for r in load(v, "none")])
  for m in modes:
    rs = load(v, m)
    p99 = med([r["ack_p99_ms"] for r in rs])
    ratio = "%+.0f %%" % (100.0 * (p99 / base - 1)) if base and p99 is not None else "n/a"
    each = ", ".join(f(r["ack_p99_ms"], "%.0f") for r in rs)
    print("| %s | %s | %d | %s | %s (%s) | %s | %s | %s | %s | %s |" % (
        v, m if m == "none" else "GET /api/v1/" + m, len(rs),
        f(med([r["ack_p50_ms"] for r in rs]), "%.2f"), f(p99, "%.2f"), each, ratio,
        f(med([r["server_cpu"] for r in rs]), "%.2f"),
        f(med([r.get("loop_thread_cpu") for r in rs]), "%.2f"),
        f(med([r["http_req_per_s"] for r in rs]), "%.0f"),
        f(med([r["http_p99_ms"] for r in rs]), "%.1f")))
EOF
log "results in $RESULTS"
