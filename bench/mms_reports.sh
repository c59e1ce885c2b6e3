#!/usr/bin/env bash
# MMS reports under load (docs/benchmarks.md "MMS server"): MMS_REP_N provisioned terminals (no
# simulator: integrity reports carry whatever the model holds, which costs the same to encode),
# `gridsense serve --mms`, then build/mms_bench in its reports mode: MMS_REP_CLIENTS clients
# (at most 10: the instances MeasRCB01..10 of each LD, one per client, dataset
# LLN0$Measurements) each enable integrity reports every 1 s on every LD and count what they
# receive for MMS_REP_SECONDS; the server's CPU over the same window.
#   MMS_REP_N=1000 MMS_REP_CLIENTS=10 MMS_REP_SECONDS=15 bench/mms_reports.sh
set -euo pipefail
B=${GS_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
N=${MMS_REP_N:-1000}
base=/tmp
[ -d /dev/shm ] && base=/dev/shm
d=$(mktemp -d -p "$base")
pid=
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$d"' EXIT
"$B/gridsense" terminal add --count "$N" --prefix R --secrets-out "$d/s.txt" --data "$d" \
  >/dev/null 2>&1
printf '[mms]\nclient_queue_kb = 16384\nmax_connections_per_address = 16\n' >"$d/mms.ini"
"$B/gridsense" serve --config "$d/mms.ini" --data "$d" --terminals 127.0.0.1:0 \
  --http 127.0.0.1:0 --mms 127.0.0.1:0 --port-file "$d/p.json" --log-level warn >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -s "$d/p.json" ] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mms"])' "$d/p.json")
"$B/mms_bench" "$port" reports "${MMS_REP_CLIENTS:-10}" "${MMS_REP_SECONDS:-15}" "$pid"
