#!/usr/bin/env bash
# MMS server benchmark (docs/benchmarks.md "MMS server"): a throwaway data dir with one
# provisioned terminal (no simulator: the values are "never received", which costs the same to
# encode), `gridsense serve --mms 127.0.0.1:0`, then build/mms_bench: association set-up rate,
# Read p50/p99 of one MMXU attribute and of the whole MMXU1, server RSS per held association.
#   MMS_ASSOC=500 MMS_READS=5000 MMS_HOLD=50 bench/mms.sh
set -euo pipefail
B=${GS_BUILD_DIR:-$(dirname "$0")/../build}
d=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$d"' EXIT
"$B/gridsense" terminal add --count 1 --prefix B --secrets-out "$d/s.txt" --data "$d" >/dev/null 2>&1
printf '[mms]\nmax_connections = 2000\nmax_connections_per_address = 2000\n' >"$d/mms.ini"
"$B/gridsense" serve --config "$d/mms.ini" --data "$d" --terminals 127.0.0.1:0 --http 127.0.0.1:0 \
  --mms 127.0.0.1:0 --port-file "$d/p.json" --log-level warn >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$d/p.json" ] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mms"])' "$d/p.json")
"$B/mms_bench" "$port" "${MMS_ASSOC:-500}" "${MMS_READS:-5000}" "${MMS_HOLD:-50}" "$pid"
