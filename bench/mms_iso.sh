#!/usr/bin/env bash
# Do MMS clients slow the terminals down? (issue 11 section 6, last item; docs/benchmarks.md
# "MMS server"). One server (`--sync normal --mms`), MMS_ISO_N simulated terminals streaming
# for MMS_ISO_DURATION s with --ack-latency, runs in a row (MMS_ISO_MODES): none = no MMS load;
# mms = build/mms_bench reads a whole MMXU1 back to back on one association (as fast as the
# loopback allows); reports = MMS_ISO_REP_CLIENTS (10) clients with integrity reports every 1 s
# on each of the MMS_ISO_LDS provisioned terminals' LDs (mms_bench reports mode, MeasRCB01..10:
# 10 x MMS_ISO_LDS reports/s).
# Prints each run's ack p50/p99.
#   MMS_ISO_N=50 MMS_ISO_LDS=1000 MMS_ISO_DURATION=15 MMS_ISO_MODES="none mms reports none" \
#     bench/mms_iso.sh
set -euo pipefail
B=${GS_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
N=${MMS_ISO_N:-50}
D=${MMS_ISO_DURATION:-15}
LDS=${MMS_ISO_LDS:-1000}
MODES=${MMS_ISO_MODES:-"none mms reports none"}
base=/tmp
[ -d /dev/shm ] && base=/dev/shm
d=$(mktemp -d -p "$base")
pid=
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$d"' EXIT
"$B/gridsense" terminal add --count "$LDS" --prefix I --secrets-out "$d/s.txt" --data "$d" \
  >/dev/null 2>&1
printf '[mms]\nclient_queue_kb = 16384\nmax_connections_per_address = 16\n' >"$d/mms.ini"
"$B/gridsense" serve --config "$d/mms.ini" --data "$d" --terminals 127.0.0.1:0 --http 127.0.0.1:0 --sync normal \
  --mms 127.0.0.1:0 --port-file "$d/p.json" --log-level warn >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$d/p.json" ] && break; sleep 0.1; done
read -r tport mport < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["terminals"], p["mms"])' "$d/p.json")
for mode in $MODES; do
  lp=
  if [ "$mode" = mms ]; then
    "$B/mms_bench" "$mport" 1 100000000 >"$d/bench.out" 2>&1 &
    lp=$!
    sleep 1
  fi
  if [ "$mode" = reports ]; then
    "$B/mms_bench" "$mport" reports "${MMS_ISO_REP_CLIENTS:-10}" $((D + 4)) "$pid" >"$d/bench.out" 2>&1 &
    lp=$!
    sleep 3 # (the enables take 0.4-1.5 s)
  fi
  t0=$(date +%s.%N)
  "$B/gridsense-sim" --server "127.0.0.1:$tport" --secrets "$d/s.txt" --terminals "$N" \
    --duration "$D" --ack-latency --quiet >"$d/sim.out" 2>/dev/null || true
  t1=$(date +%s.%N)
  if [ -n "$lp" ]; then
    if [ "$mode" = reports ]; then
      wait "$lp" 2>/dev/null || true
      grep -o '"reports_per_s": [0-9]*\|"server_cpu_cores": [0-9.]*' "$d/bench.out" | tr '\n' ' '
      echo
    else
      kill "$lp" 2>/dev/null || true
      wait "$lp" 2>/dev/null || true
    fi
  fi
  python3 - "$mode" "$d/sim.out" "$d/log" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[2]) if l.startswith("{")]
s = json.loads(lines[-1]) if lines else {}
print("mode %-4s: ack p50 %s ms, p99 %s ms, blocks acked %s/%s" % (
    sys.argv[1], s.get("ack_p50_ms"), s.get("ack_p99_ms"), s.get("blocks_acked"),
    s.get("blocks_generated")))
PY
  if [ "$mode" = mms ]; then
    # reads done while the simulator ran: the server's counter
    :
  fi
done
curl -s "http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$d/p.json")/metrics" \
  | grep -E '^gridsense_mms_pdus_in_total\{type="confirmed_request"\}' || true
