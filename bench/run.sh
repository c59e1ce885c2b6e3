#!/usr/bin/env bash
# gridsense benchmark suite (`make bench`). Everything runs on 127.0.0.1 in temp dirs; every
# load generator has a --duration so it stops by itself. Prints a markdown section with the
# medians and the machine, and keeps the raw JSON of every run under $RESULTS.
#
#   bench/run.sh                 full suite (about 15 minutes on 2 cores)
#   QUICK=1 bench/run.sh         smoke test (under 2 minutes, small N, 1 repetition)
#   BENCHES="ingest" INGEST_N="50 500" INGEST_SYNC=full bench/run.sh
#
# Benchmarks (see docs/benchmarks.md for the method):
#   idle    N idle terminals held: server/simulator RSS per connection, idle CPU;
#           then (STORM=1) a reconnect storm: SIGKILL the server, restart it on the same
#           terminal port, time until all N are online again (handshakes/s)
#   ingest  N streaming terminals for INGEST_DURATION s each, --sync normal and full:
#           stored samples/s, server and simulator CPU, backlog, ack latency p50/p99
#   wave    stored-waveform queries (build/wave_bench): the last 10 s raw and as an envelope,
#           600 s as an envelope, an event's waveform; median of WAVE_REPS runs
#   dsp     analysis engine: accuracy sweeps and cost per sample (bench/dsp.sh, which lists
#           its own DSP_* knobs; QUICK=1 runs sparse sweeps); its section follows the report
#   api     HTTP API: authenticated req/s, waveform latency, live fan-out with streaming
#           terminals (bench/api_bench.py, which lists its own API_* knobs)
#   iso     terminals' ack latency with and without 1,000 HTTP connections of load
#           (bench/iso_bench.sh, which lists its own ISO_* knobs; QUICK=1: 50 terminals, 8 s)
#   codec   the lossless waveform codec: bytes per sample next to flac -8, xz -9e, zstd -19 on
#           the same blocks, encode/decode speed per core (bench/codec.sh, which lists its own
#           CODEC_* knobs; QUICK=1: shorter signals, 3 repetitions)
#   web     the web app in chromium: cold first load, asset bytes, oscilloscope frames/s, the
#           fleet page with 1,000 streaming terminals (bench/web_bench.py, which lists its own
#           WEB_* knobs; QUICK=1: 100 terminals, short windows)
#   hist    historian queries: build/gen_history writes HIST_DAYS of 10-min/2-h aggregates for
#           HIST_TERMINALS terminals (+ HIST_FLEET with the last week), the waveform pyramid of
#           HIST_PYR of them and HIST_RAW_S s of raw blocks, through the store; build/hist_bench
#           times waveform envelopes (10 ms .. whole history), a trend and the fleet ranking
#           in-process, then bench/hist_http.py the same through `gridsense serve`
#   store   the same ingest on SQLite (sync full) and on PostgreSQL (a throwaway cluster with
#           its safe defaults: fsync and synchronous_commit on), for each N in STORE_N:
#           stored samples/s, kept up, ack p50/p99, gridsense CPU per thread and the
#           PostgreSQL cluster's CPU, CPU s per M samples, disk bytes per block
#           (bench/store_compare.py; needs Debian's postgresql package; about 1 minute per
#           run, 6 runs by default: not in the default BENCHES, run it by name)
#   mms     the MMS server (bench/mms.sh, mms_reports.sh, mms_latency.sh: associations, Reads,
#           reports to 10 clients over 1,000 LDs, measurement-to-report latency; QUICK=1: 100 LDs)
#
# Environment (defaults: full / QUICK=1):
#   BENCHES               "idle ingest wave dsp api iso web codec hist mms"
#   WAVE_REPS             15 / 5             runs per waveform query
#   WAVE_HISTORY_S        600 / 120          seconds of stored history per terminal (4 terminals)
#   HIST_TERMINALS        100 / 10           terminals with a year of aggregates
#   HIST_DAYS             365 / 45           days of history
#   HIST_PYR              10 / 2             terminals with the waveform pyramid of every day
#   HIST_FLEET            900 / 20           more terminals with the last week of aggregates
#   HIST_RAW_S            600 / 120          seconds of raw blocks at the end (HIST_PYR terminals)
#   HIST_REPS             9 / 3              runs per query
#   STORE_N               "50 200 500" / "50" terminals per run (each on both backends)
#   STORE_DURATION        20 / 8             seconds of streaming per run
#   IDLE_N                10000 / 2000       terminals held idle
#   IDLE_REPS             3 / 1
#   IDLE_CONNECT_RATE     5000               simulator --connect-rate
#   IDLE_STATUS_INTERVAL  60                 simulator --status-interval
#   IDLE_SETTLE_S         5 / 3              wait after all are online before reading RSS/CPU
#   IDLE_SYNC             normal             server --sync for the idle/storm runs
#   STORM                 1                  run the reconnect storm after each idle rep
#   STORM_DOWN_S          1                  server down time between SIGKILL and restart
#   STORM_BACKOFF_MIN_MS  100                simulator --backoff-min-ms
#   STORM_BACKOFF_MAX_MS  2000               simulator --backoff-max-ms
#   STORM_TIMEOUT_S       120                give up waiting for all N after this
#   INGEST_N              "50 200 500 1000" / "50 200"
#   INGEST_SYNC           "normal full"
#   INGEST_REPS           3 / 1              repetitions per (N, sync)
#   INGEST_REPS_LARGEST   1 / 1              repetitions for the largest N (time budget)
#   INGEST_DURATION       30 / 8             seconds of streaming per run
#   INGEST_WARMUP_S       5 / 2              skipped at the start of the measuring window
#   INGEST_DRAIN_S        60                 simulator --drain
#   INGEST_RATE           4000               simulator --rate (sample sets/s per channel)
#   INGEST_BLOCK_MS       100                simulator --block-ms
#   INGEST_CONNECT_RATE   5000
#   POLL_INTERVAL         1 / 0.5            seconds between /metrics + /proc samples
#   RESULTS               bench/results/<UTC time>[-quick]
#   GS_BUILD              build              directory holding gridsense and gridsense-sim
#   KEEP_TMP              0                  1: keep the temp dir (logs, databases)
#   GS_SOURCE_DESC        (git describe)     how to name the source in the report, for a
#                                            build made outside this checkout
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
export GS_BUILD=${GS_BUILD:-$ROOT/build}
GS=$GS_BUILD/gridsense
SIM=$GS_BUILD/gridsense-sim
PYH="$HERE/gsbench.py"
py() { python3 "$PYH" "$@"; }

QUICK=${QUICK:-0}
q() { if [ "$QUICK" = 1 ]; then echo "$2"; else echo "$1"; fi; }

BENCHES=${BENCHES:-"idle ingest wave dsp api iso web codec hist mms"}
WAVE_REPS=${WAVE_REPS:-$(q 15 5)}
WAVE_HISTORY_S=${WAVE_HISTORY_S:-$(q 600 120)}
HIST_TERMINALS=${HIST_TERMINALS:-$(q 100 10)}
HIST_DAYS=${HIST_DAYS:-$(q 365 45)}
HIST_PYR=${HIST_PYR:-$(q 10 2)}
HIST_FLEET=${HIST_FLEET:-$(q 900 20)}
HIST_RAW_S=${HIST_RAW_S:-$(q 600 120)}
HIST_REPS=${HIST_REPS:-$(q 9 3)}
STORE_N=${STORE_N:-$(q "50 200 500" "50")}
STORE_DURATION=${STORE_DURATION:-$(q 20 8)}
IDLE_N=${IDLE_N:-$(q 10000 2000)}
IDLE_REPS=${IDLE_REPS:-$(q 3 1)}
IDLE_CONNECT_RATE=${IDLE_CONNECT_RATE:-5000}
IDLE_STATUS_INTERVAL=${IDLE_STATUS_INTERVAL:-60}
IDLE_SETTLE_S=${IDLE_SETTLE_S:-$(q 5 3)}
IDLE_SYNC=${IDLE_SYNC:-normal}
STORM=${STORM:-1}
STORM_DOWN_S=${STORM_DOWN_S:-1}
STORM_BACKOFF_MIN_MS=${STORM_BACKOFF_MIN_MS:-100}
STORM_BACKOFF_MAX_MS=${STORM_BACKOFF_MAX_MS:-2000}
STORM_TIMEOUT_S=${STORM_TIMEOUT_S:-120}
INGEST_N=${INGEST_N:-$(q "50 200 500 1000" "50 200")}
INGEST_SYNC=${INGEST_SYNC:-"normal full"}
INGEST_REPS=${INGEST_REPS:-$(q 3 1)}
INGEST_REPS_LARGEST=${INGEST_REPS_LARGEST:-1}
INGEST_DURATION=${INGEST_DURATION:-$(q 30 8)}
INGEST_WARMUP_S=${INGEST_WARMUP_S:-$(q 5 2)}
INGEST_DRAIN_S=${INGEST_DRAIN_S:-60}
INGEST_RATE=${INGEST_RATE:-4000}
INGEST_BLOCK_MS=${INGEST_BLOCK_MS:-100}
INGEST_CODEC=${INGEST_CODEC:-wcodec} # the simulator's --codec: wcodec (GSTP codec 1) or raw
INGEST_CONNECT_RATE=${INGEST_CONNECT_RATE:-5000}
POLL_INTERVAL=${POLL_INTERVAL:-$(q 1 0.5)}
KEEP_TMP=${KEEP_TMP:-0}
CHANNELS=6 # the simulator's terminals have 3 voltage + 3 current channels
MAX_PER_IP=19000 # every simulated terminal comes from 127.0.0.1 (connections and pending
                 # handshakes per address are capped at 19000 and 256 by default)

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=${RESULTS:-$HERE/results/$STAMP$(q "" "-quick")}

for b in "$GS" "$SIM"; do
    [ -x "$b" ] || { echo "bench: $b not built (run make build)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }

# Each process raises its own soft limit; raise ours too so children inherit a high one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
for n in $IDLE_N $INGEST_N $STORE_N; do
    if [ "$NOFILE" != unlimited ] && [ "$n" -gt $((NOFILE - 200)) ]; then
        echo "bench: open-file limit $NOFILE is too low for $n terminals" >&2
        exit 1
    fi
done

mkdir -p "$RESULTS"
W=$(mktemp -d "${TMPDIR:-/tmp}/gs-bench.XXXXXX")
# A fleet behind one address reconnecting at once would otherwise meet the 256-handshake cap
# (BUSY, retry after 5 s): in production the terminals come from many addresses.
printf '[terminals]\nmax_handshakes_per_address = %d\n' "$MAX_PER_IP" >"$W/gw.ini"
SRV_PID=""
SIM_PID=""
POLL_PID=""

log() { echo "bench: $*" >&2; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "null" }'; }

stop_pid() { # stop_pid PID SIGNAL TIMEOUT_S: signal one process we started, wait, then KILL
    local pid=$1 sig=$2 t=$3 i=0
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -s "$sig" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $((t * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop within ${t}s after SIG$sig; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_pid "$POLL_PID" TERM 5
    stop_pid "$SIM_PID" TERM 20
    stop_pid "$SRV_PID" TERM 30
    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then
        log "temp dir kept: $W"
    else
        rm -rf "$W"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server DATA TPORT SYNC LOG PORTFILE: sets SRV_PID, TPORT, HPORT; returns 1 if the
# server exits before writing its port file (for example: terminal port in use).
start_server() {
    local data=$1 tport=$2 sync=$3 logf=$4 pf=$5 i=0
    rm -f "$pf"
    "$GS" serve --data "$data" --terminals "127.0.0.1:$tport" --http 127.0.0.1:0 \
        --port-file "$pf" --sync "$sync" --max-per-ip $MAX_PER_IP --config "$W/gw.ini" \
        --log-level info \
        >>"$logf" 2>&1 &
    SRV_PID=$!
    while [ ! -s "$pf" ]; do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            wait "$SRV_PID" 2>/dev/null || true
            SRV_PID=""
            return 1
        fi
        i=$((i + 1))
        [ $i -lt 6000 ] || { log "server wrote no port file within 60 s"; return 1; }
        sleep 0.01
    done
    PF_SEEN=$(now)
    # {"terminals":P,"http":P}, written to a temp file and renamed: parse it in bash (a python
    # start-up here would be slow on a saturated machine and delay the storm's clock)
    local txt
    txt=$(cat "$pf")
    if [[ $txt =~ \"terminals\":([0-9]+) ]]; then TPORT=${BASH_REMATCH[1]}; else return 1; fi
    if [[ $txt =~ \"http\":([0-9]+) ]]; then HPORT=${BASH_REMATCH[1]}; else return 1; fi
}

# A terminal port below the kernel's ephemeral range, so that none of the simulator's
# outgoing connections can take it while the server is down during the storm (a loopback
# connect from the port to itself would otherwise block the restart). The port actually
# used is the one the server writes to its port file.
start_server_fixed_port() {
    local data=$1 sync=$2 logf=$3 pf=$4 lo tries=0 p
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    while [ $tries -lt 20 ]; do
        if [ "$lo" -gt 12000 ]; then
            p=$((10000 + RANDOM % (lo - 11000)))
        else
            p=0
        fi
        if start_server "$data" "$p" "$sync" "$logf" "$pf"; then
            return 0
        fi
        tries=$((tries + 1))
    done
    log "could not start the server on a free port"
    return 1
}

provision() { # provision DATA COUNT PREFIX SECRETS
    "$GS" terminal add --count "$2" --prefix "$3" --secrets-out "$4" --data "$1" \
        --log-level warn >/dev/null
}

rss_kib() { py proc "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rss_kib"] if d else "null")'; }
cpu_s() { py proc "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["cpu_s"] if d else "null")'; }

# ------------------------------------------------------------------ configuration record
py machine >"$RESULTS/machine.json"
py kv quick="$QUICK" benches="$BENCHES" idle_n="$IDLE_N" idle_reps="$IDLE_REPS" \
    idle_connect_rate="$IDLE_CONNECT_RATE" idle_status_interval="$IDLE_STATUS_INTERVAL" \
    idle_settle_s="$IDLE_SETTLE_S" idle_sync="$IDLE_SYNC" storm="$STORM" \
    storm_down_s="$STORM_DOWN_S" storm_backoff_min_ms="$STORM_BACKOFF_MIN_MS" \
    storm_backoff_max_ms="$STORM_BACKOFF_MAX_MS" ingest_n="$INGEST_N" ingest_sync="$INGEST_SYNC" \
    ingest_reps="$INGEST_REPS" ingest_reps_largest="$INGEST_REPS_LARGEST" \
    ingest_duration="$INGEST_DURATION" ingest_warmup_s="$INGEST_WARMUP_S" \
    ingest_rate="$INGEST_RATE" ingest_block_ms="$INGEST_BLOCK_MS" \
    max_per_ip="$MAX_PER_IP" >"$RESULTS/config.json"
log "results in $RESULTS, temp dir $W"

# ------------------------------------------------------------------ 1 + 2: idle and storm
bench_idle() {
    local tmpl=$W/idle-template secrets=$W/idle-secrets.txt rep
    log "idle: provisioning $IDLE_N terminals"
    provision "$tmpl" "$IDLE_N" I "$secrets"
    # the simulator outlives every phase of one repetition, then is stopped with SIGTERM;
    # its --duration is the backstop that makes the load stop by itself
    local sim_dur=$((60 + IDLE_SETTLE_S + STORM_TIMEOUT_S + 60))
    for rep in $(seq 1 "$IDLE_REPS"); do
        local d=$W/idle-$rep
        mkdir -p "$d"
        cp -r "$tmpl" "$d/data"
        local pf=$d/ports.json logf=$d/server.log
        start_server_fixed_port "$d/data" "$IDLE_SYNC" "$logf" "$pf"
        sleep 1
        local rss0
        rss0=$(rss_kib "$SRV_PID")
        local t0
        t0=$(now)
        "$SIM" --server "127.0.0.1:$TPORT" --secrets "$secrets" --terminals "$IDLE_N" --no-stream \
            --status-interval "$IDLE_STATUS_INTERVAL" --connect-rate "$IDLE_CONNECT_RATE" \
            --backoff-min-ms "$STORM_BACKOFF_MIN_MS" --backoff-max-ms "$STORM_BACKOFF_MAX_MS" \
            --duration "$sim_dur" --drain 0 --quiet >"$d/sim.json" 2>"$d/sim.err" &
        SIM_PID=$!
        local t_all hmax out
        if ! out=$(py wait-metric "$HPORT" gridsense_terminals_online "$IDLE_N" 60); then
            log "idle rep $rep: not all $IDLE_N terminals online within 60 s; see $d"
            return 1
        fi
        read -r t_all hmax <<<"$out"
        local connect_s
        connect_s=$(sub "$t_all" "$t0")
        local srv_c0 sim_c0 ta tb
        srv_c0=$(cpu_s "$SRV_PID")
        sim_c0=$(cpu_s "$SIM_PID")
        ta=$(now)
        sleep "$IDLE_SETTLE_S"
        local srv_c1 sim_c1 rss1 simrss
        srv_c1=$(cpu_s "$SRV_PID")
        sim_c1=$(cpu_s "$SIM_PID")
        tb=$(now)
        rss1=$(rss_kib "$SRV_PID")
        simrss=$(rss_kib "$SIM_PID")
        local online
        online=$(py metric "$HPORT" gridsense_terminals_online)
        log "idle rep $rep: $online online after ${connect_s}s; server RSS ${rss0} -> ${rss1} KiB, simulator ${simrss} KiB"

        local storm_args=() rss_after="null"
        if [ "$STORM" = 1 ]; then
            local old=$SRV_PID
            kill -KILL "$old"
            wait "$old" 2>/dev/null || true
            SRV_PID=""
            sleep "$STORM_DOWN_S"
            local port=$TPORT t_exec t_pf
            t_exec=$(now)
            if ! start_server "$d/data" "$port" "$IDLE_SYNC" "$logf" "$pf"; then
                log "storm rep $rep: the server could not restart on port $port; see $logf"
                return 1
            fi
            t_pf=$PF_SEEN
            local t_all2 hmax2 ok=1
            if ! out=$(py wait-metric "$HPORT" gridsense_terminals_online "$IDLE_N" "$STORM_TIMEOUT_S"); then
                ok=0
                log "storm rep $rep: not all $IDLE_N back within ${STORM_TIMEOUT_S}s"
            fi
            read -r t_all2 hmax2 <<<"$out"
            local storm_srv_cpu storm_sim_cpu t_cpu
            storm_srv_cpu=$(cpu_s "$SRV_PID")
            storm_sim_cpu=$(cpu_s "$SIM_PID")
            t_cpu=$(now)
            local hs_ok hs_fail poll_s
            hs_ok=$(py metric "$HPORT" gridsense_handshakes_ok_total)
            hs_fail=$(py metric "$HPORT" gridsense_handshakes_failed_total)
            poll_s=$(sub "$t_all2" "$t_pf")
            sleep 2
            rss_after=$(rss_kib "$SRV_PID")
            log "storm rep $rep: all $IDLE_N online ${poll_s}s after the port file ($hs_ok logins, $hs_fail failed)"
            # sim_c1 was read just before the server was killed: the simulator's CPU share
            storm_args=(restart_s="$(sub "$t_pf" "$t_exec")" poll_all_online_s="$poll_s"
                srv_cpu_util="$(div "$storm_srv_cpu" "$(sub "$t_cpu" "$t_exec")")"
                sim_cpu_util="$(awk -v a="$sim_c1" -v b="$storm_sim_cpu" -v x="$tb" -v y="$t_cpu" 'BEGIN{printf "%.3f", (b-a)/(y-x)}')"
                complete="$ok" handshakes_ok="$hs_ok" handshakes_failed="$hs_fail"
                http_max_s="$hmax2")
            if [ "$ok" = 1 ]; then
                storm_args+=(poll_handshakes_per_s="$(div "$IDLE_N" "$poll_s")"
                    poll_handshakes_ok_delta_per_s="$(div "$hs_ok" "$poll_s")")
            fi
        fi
        stop_pid "$SIM_PID" TERM 30
        SIM_PID=""
        stop_pid "$SRV_PID" TERM 60
        SRV_PID=""

        py kv bench=idle rep="$rep" n="$IDLE_N" sync="$IDLE_SYNC" \
            connect_rate="$IDLE_CONNECT_RATE" status_interval="$IDLE_STATUS_INTERVAL" \
            srv_rss_before_kib="$rss0" srv_rss_online_kib="$rss1" sim_rss_online_kib="$simrss" \
            srv_rss_before_mib="$(div "$rss0" 1024)" srv_rss_online_mib="$(div "$rss1" 1024)" \
            sim_rss_online_mib="$(div "$simrss" 1024)" \
            srv_kib_per_conn="$(div "$((rss1 - rss0))" "$IDLE_N")" \
            sim_kib_per_term="$(div "$simrss" "$IDLE_N")" connect_all_s="$connect_s" \
            online="$online" settle_s="$(sub "$tb" "$ta")" \
            srv_idle_cpu_pct="$(awk -v a="$srv_c0" -v b="$srv_c1" -v x="$ta" -v y="$tb" 'BEGIN{printf "%.3f", 100*(b-a)/(y-x)}')" \
            sim_idle_cpu_pct="$(awk -v a="$sim_c0" -v b="$sim_c1" -v x="$ta" -v y="$tb" 'BEGIN{printf "%.3f", 100*(b-a)/(y-x)}')" \
            srv_rss_after_storm_kib="$rss_after" \
            srv_rss_after_storm_mib="$(div "$rss_after" 1024)" \
            sim=@"$d/sim.json" >"$RESULTS/idle-$rep.json"
        if [ "$STORM" = 1 ]; then
            local lg
            lg=$(py storm-log "$logf" "$IDLE_N")
            echo "$lg" >"$d/storm-log.json"
            local lt
            lt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("log_all_online_s", "null"))' "$d/storm-log.json")
            py kv bench=storm rep="$rep" n="$IDLE_N" sync="$IDLE_SYNC" down_s="$STORM_DOWN_S" \
                backoff_min_ms="$STORM_BACKOFF_MIN_MS" backoff_max_ms="$STORM_BACKOFF_MAX_MS" \
                "${storm_args[@]}" log=@"$d/storm-log.json" \
                log_all_online_s="$lt" log_handshakes_per_s="$(div "$IDLE_N" "$lt")" \
                log_peak_logins_per_s="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("log_peak_logins_per_s", "null"))' "$d/storm-log.json")" \
                sim_reconnects="$(python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("reconnects", "null"))
except Exception: print("null")' "$d/sim.json")" \
                sim_connect_attempts="$(python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("connect_attempts", "null"))
except Exception: print("null")' "$d/sim.json")" >"$RESULTS/storm-$rep.json"
        fi
        rm -rf "$d/data"
    done
}

# ------------------------------------------------------------------ 3 + 4: ingest and latency
bench_ingest() {
    local tmpl=$W/ingest-template secrets=$W/ingest-secrets.txt maxn=0 n
    for n in $INGEST_N; do [ "$n" -gt "$maxn" ] && maxn=$n; done
    log "ingest: provisioning $maxn terminals"
    provision "$tmpl" "$maxn" S "$secrets"
    local maxreps=$INGEST_REPS
    [ "$INGEST_REPS_LARGEST" -gt "$maxreps" ] && maxreps=$INGEST_REPS_LARGEST
    local spb=$((INGEST_RATE * INGEST_BLOCK_MS / 1000)) rep sync
    # repetition-major order: drift of a shared machine spreads over every configuration
    for rep in $(seq 1 "$maxreps"); do
        for n in $INGEST_N; do
            local reps=$INGEST_REPS
            [ "$n" = "$maxn" ] && reps=$INGEST_REPS_LARGEST
            [ "$rep" -le "$reps" ] || continue
            for sync in $INGEST_SYNC; do
                local d=$W/ingest-$sync-$n-$rep
                mkdir -p "$d"
                cp -r "$tmpl" "$d/data"
                start_server "$d/data" 0 "$sync" "$d/server.log" "$d/ports.json" || {
                    log "ingest: server did not start; see $d/server.log"
                    return 1
                }
                local t0 rc=0 t1
                t0=$(now)
                "$SIM" --server "127.0.0.1:$TPORT" --secrets "$secrets" --terminals "$n" \
                    --rate "$INGEST_RATE" --block-ms "$INGEST_BLOCK_MS" \
                    --connect-rate "$INGEST_CONNECT_RATE" --duration "$INGEST_DURATION" \
                    --drain "$INGEST_DRAIN_S" --codec "$INGEST_CODEC" --ack-latency --quiet \
                    >"$d/sim.json" 2>"$d/sim.err" &
                SIM_PID=$!
                py poll "$HPORT" "$SRV_PID" "$SIM_PID" "$d/poll.jsonl" "$POLL_INTERVAL" &
                POLL_PID=$!
                wait "$SIM_PID" || rc=$?
                t1=$(now)
                SIM_PID=""
                wait "$POLL_PID" || true
                POLL_PID=""
                [ -s "$d/sim.json" ] || echo '{}' >"$d/sim.json"
                py kv bench=ingest rep="$rep" n="$n" sync="$sync" duration_s="$INGEST_DURATION" \
                    warmup_s="$INGEST_WARMUP_S" rate="$INGEST_RATE" block_ms="$INGEST_BLOCK_MS" \
                    channels=$CHANNELS samples_per_block="$spb" t_sim_start="$t0" t_sim_end="$t1" \
                    sim_exit="$rc" >"$d/meta.json"
                py ingest "$d" >"$RESULTS/ingest-$sync-$n-$rep.json"
                cp "$d/poll.jsonl" "$RESULTS/ingest-$sync-$n-$rep.poll.jsonl"
                python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
f = lambda k, s: "n/a" if r.get(k) is None else s % r[k]
print("bench: ingest %s N=%s rep %s: stored %s samples/s (offered %s), kept up %s, server %s cores, sim %s cores, ack p50 %s p99 %s ms" % (
    r["sync"], r["n"], r["rep"], f("stored_samples_per_s", "%.3g"), f("offered_samples_per_s", "%.3g"),
    r["kept_up"], f("srv_cpu_util", "%.2f"), f("sim_cpu_util", "%.2f"), f("ack_p50_ms", "%.2f"),
    f("ack_p99_ms", "%.1f")), file=sys.stderr)' "$RESULTS/ingest-$sync-$n-$rep.json"
                stop_pid "$SRV_PID" TERM 60
                SRV_PID=""
                rm -rf "$d/data"
            done
        done
    done
}

T_BEGIN=$(now)
for b in $BENCHES; do
    case $b in
        idle) bench_idle ;;
        ingest) bench_ingest ;;
        wave) mkdir -p "$RESULTS/wave" # (not beside the run JSONs that `py report` reads)
              "$GS_BUILD/wave_bench" --history "$WAVE_HISTORY_S" --terminals 4 --reps "$WAVE_REPS" \
                  --json "$RESULTS/wave/wave.json" >"$W/wave.md" ;;
        dsp) RESULTS="$RESULTS/dsp" QUICK="$QUICK" GS_BUILD="$GS_BUILD" "$HERE/dsp.sh" >"$W/dsp.md" ;;
        api)
            if [ "$QUICK" = 1 ]; then
                : "${API_N:=50}" "${API_WRK_S:=3}" "${API_WS_S:=3}" "${API_REPS:=3}"
                export API_N API_WRK_S API_WS_S API_REPS
            fi
            mkdir -p "$RESULTS/api"
            GS_BUILD="$GS_BUILD" python3 "$HERE/api_bench.py" --json "$RESULTS/api/api.json" >"$W/api.md"
            ;;
        iso)
            if [ "$QUICK" = 1 ]; then
                : "${ISO_N:=50}" "${ISO_DURATION:=8}"
                export ISO_N ISO_DURATION
            fi
            RESULTS="$RESULTS/iso" GS_BUILD="$GS_BUILD" "$HERE/iso_bench.sh" >"$W/iso.md"
            ;;
        web)
            if [ "$QUICK" = 1 ]; then
                : "${WEB_N:=100}" "${WEB_WINDOW_S:=10}" "${WEB_CHANGES:=3}" "${WEB_SCOPE_S:=5}"
                export WEB_N WEB_WINDOW_S WEB_CHANGES WEB_SCOPE_S
            fi
            mkdir -p "$RESULTS/web"
            GS_BUILD="$GS_BUILD" python3 "$HERE/web_bench.py" --json "$RESULTS/web/web.json" >"$W/web.md"
            ;;
        codec) RESULTS="$RESULTS/codec" QUICK="$QUICK" GS_BUILD="$GS_BUILD" "$HERE/codec.sh" >"$W/codec.md" ;;
        hist)
            mkdir -p "$RESULTS/hist"
            log "hist: generating $HIST_DAYS days of $HIST_TERMINALS terminals (+$HIST_FLEET)"
            "$GS_BUILD/gen_history" --data "$W/hist" --terminals "$HIST_TERMINALS" \
                --days "$HIST_DAYS" --pyr-terminals "$HIST_PYR" --fleet "$HIST_FLEET" \
                --raw-s "$HIST_RAW_S" >"$RESULTS/hist/gen.json"
            read -r HS HE < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["start_ns"], d["end_ns"])' "$RESULTS/hist/gen.json")
            {
                echo "## Historian queries"
                echo
                echo "Data: \`$(cat "$RESULTS/hist/gen.json")\`"
                echo
                "$GS_BUILD/hist_bench" --data "$W/hist" --start "$HS" --end "$HE" \
                    --raw-s "$HIST_RAW_S" --reps "$HIST_REPS" --json "$RESULTS/hist/hist.json"
                echo
                GS_BUILD_DIR="$GS_BUILD" python3 "$HERE/hist_http.py" "$W/hist" \
                    "$RESULTS/hist/gen.json" "$HIST_REPS" | grep -v '^ok: '
            } >"$W/hist.md"
            rm -rf "$W/hist"
            ;;
        store)
            # its own cluster and servers per run, stopped and removed by the script itself
            python3 "$HERE/store_compare.py" --n "$STORE_N" --duration "$STORE_DURATION" \
                --warmup "$(q 5 2)" --poll "$POLL_INTERVAL" --build "$GS_BUILD" \
                --results "$RESULTS/store" >"$W/store.md"
            ;;
        mms)
            # the MMS server (docs/benchmarks.md "MMS server"): associations and Reads, reports
            # to 10 clients over 1,000 LDs, measurement-to-report latency; each script starts
            # and stops its own server
            {
                echo "### MMS: associations, Reads, memory per association"
                GS_BUILD_DIR="$GS_BUILD" MMS_ASSOC="$(q 500 100)" MMS_READS="$(q 5000 500)" \
                    "$HERE/mms.sh"
                echo
                echo "### MMS: reports, $(q 1000 100) LDs at 1 s integrity, 10 clients"
                GS_BUILD_DIR="$GS_BUILD" MMS_REP_N="$(q 1000 100)" MMS_REP_CLIENTS=10 \
                    MMS_REP_SECONDS="$(q 15 5)" "$HERE/mms_reports.sh"
                echo
                echo "### MMS: measurement to report, 10 streaming terminals, 10 clients"
                GS_BUILD_DIR="$GS_BUILD" MMS_LAT_N=10 MMS_LAT_CLIENTS=10 \
                    MMS_LAT_SECONDS="$(q 20 8)" "$HERE/mms_latency.sh"
            } >"$W/mms.md" 2>&1
            ;;
        *) log "unknown benchmark '$b' (known: idle ingest wave dsp api iso web codec hist store mms)"; exit 2 ;;
    esac
done
log "suite took $(sub "$(now)" "$T_BEGIN") s"

py report "$RESULTS" | tee "$RESULTS/report.md"
if [ -s "$W/wave.md" ]; then printf '\n' | cat - "$W/wave.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/dsp.md" ]; then printf '\n' | cat - "$W/dsp.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/api.md" ]; then printf '\n' | cat - "$W/api.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/iso.md" ]; then printf '\n' | cat - "$W/iso.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/web.md" ]; then printf '\n' | cat - "$W/web.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/codec.md" ]; then printf '\n' | cat - "$W/codec.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/hist.md" ]; then printf '\n' | cat - "$W/hist.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/store.md" ]; then printf '\n' | cat - "$W/store.md" | tee -a "$RESULTS/report.md"; fi
if [ -s "$W/mms.md" ]; then printf '\n' | cat - "$W/mms.md" | tee -a "$RESULTS/report.md"; fi
