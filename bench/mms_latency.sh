#!/usr/bin/env bash
# MMS report latency, measurement to report (docs/benchmarks.md "MMS server"): MMS_LAT_N
# simulated terminals stream; MMS_LAT_CLIENTS clients (1..10; build/mms_bench latency mode)
# each enable data-change reports of their own instance LLN0$RP$MeasRCB01..10 (dataset
# LLN0$Measurements: MMXU values with their t) on every LD and, for MMS_LAT_SECONDS, take for
# each report the newest value time it carries (the
# terminal's own window time) against the wall clock at reception. That spans the analysis
# window, the analysis, the hand-over to the MMS thread and the report: what a SCADA sees.
#   MMS_LAT_N=10 MMS_LAT_CLIENTS=1 MMS_LAT_SECONDS=20 bench/mms_latency.sh
set -euo pipefail
B=${GS_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
N=${MMS_LAT_N:-10}
S=${MMS_LAT_SECONDS:-20}
base=/tmp
[ -d /dev/shm ] && base=/dev/shm
d=$(mktemp -d -p "$base")
pid=
sp=
trap 'kill $sp $pid 2>/dev/null || true; wait $sp $pid 2>/dev/null || true; rm -rf "$d"' EXIT
"$B/gridsense" terminal add --count "$N" --prefix L --secrets-out "$d/s.txt" --data "$d" \
  >/dev/null 2>&1
# up to 10 clients from one address: above the default per-address limit (docs/operations.md)
printf '[mms]\nmax_connections_per_address = 16\n' >"$d/mms.ini"
"$B/gridsense" serve --config "$d/mms.ini" --data "$d" --terminals 127.0.0.1:0 --http 127.0.0.1:0 --sync normal \
  --mms 127.0.0.1:0 --port-file "$d/p.json" --log-level warn >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$d/p.json" ] && break; sleep 0.1; done
read -r tport mport < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["terminals"], p["mms"])' "$d/p.json")
"$B/gridsense-sim" --server "127.0.0.1:$tport" --secrets "$d/s.txt" --terminals "$N" \
  --duration $((S + 15)) --quiet >/dev/null 2>&1 &
sp=$!
sleep 5 # the terminals log in and the first analysis windows come out
"$B/mms_bench" "$mport" latency "${MMS_LAT_CLIENTS:-1}" "$S" "$pid"
