#!/usr/bin/env bash
# `make run`: start gridsense on its defaults with simulated terminals, print where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${GS_BUILD_DIR:-build}
D=${GS_DATA:-./data}
N=${GS_SIM_TERMINALS:-12}
HTTP=${GS_HTTP:-127.0.0.1:8080}
TERM_ADDR=${GS_TERMINALS:-0.0.0.0:7100}
MMS=${GS_MMS:-127.0.0.1:10102} # the IEC 61850 server: loopback only, with a password

mkdir -p "$D"
SECRETS="$D/demo-secrets.txt"
PLACE=0
if [ ! -s "$SECRETS" ]; then
  PLACE=1
  # Secrets are shown once; if the file is gone, re-provision the demo terminals.
  for id in $("$B/gridsense" terminal list --data "$D" 2>/dev/null | awk '$1 ~ /^DEMO-/ {print $1}'); do
    "$B/gridsense" terminal remove "$id" --data "$D" >/dev/null
  done
  "$B/gridsense" terminal add --count "$N" --prefix DEMO- --secrets-out "$SECRETS" --force \
    --name "demo feeder" --location 47.37,8.54 --vt-ratio 100 --ct-ratio 200 \
    --declared-voltage 57.735 --data "$D" \
    --log-level warn
fi

# The web login: an admin with a random password, made on first run and kept (mode 0600) for
# the next runs. No default password exists anywhere. A bearer token of the same user, as a
# ready header file for curl (-H @FILE).
ADMIN_FILE="$D/demo-admin.txt"
AUTH_HDR="$D/demo-auth.hdr"
if [ ! -s "$ADMIN_FILE" ]; then
  "$B/gridsense" user remove admin --data "$D" --log-level warn >/dev/null 2>&1 || true
  PW=$("$B/gridsense" user add admin --role admin --data "$D" --log-level warn)
  (umask 077 && printf 'user admin\npassword %s\n' "$PW" >"$ADMIN_FILE")
  rm -f "$AUTH_HDR"
fi
if [ ! -s "$AUTH_HDR" ]; then
  TOK=$("$B/gridsense" token create admin --name "make run" --data "$D" --log-level warn)
  (umask 077 && printf 'Authorization: Bearer %s\n' "$TOK" >"$AUTH_HDR")
fi
ADMIN_PW=$(sed -n 's/^password //p' "$ADMIN_FILE")

# The IEC 61850 (MMS) server for SCADA clients: one client "scada" with a random password
# (the password file and the config naming it are private, 0600), made on first run and kept.
MMS_PW_FILE="$D/demo-mms-passwords"
if [ ! -s "$MMS_PW_FILE" ]; then
  MPW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  (umask 077 && printf 'scada %s\n' "$MPW" >"$MMS_PW_FILE")
fi
MMS_PW=$(awk '$1 == "scada" {print $2}' "$MMS_PW_FILE")
CFG="$D/demo.ini"
(umask 077 && printf '[mms]\npassword_file = %s\n' "$(cd "$D" && pwd)/demo-mms-passwords" >"$CFG")

# Own sessions (setsid): Ctrl-C reaches only this script, which then stops the simulator
# (it drains its acknowledgements) and the server with exactly one signal each; a second signal
# would make them exit at once.
rm -f "$D/ports.json"
setsid "$B/gridsense" serve --data "$D" --http "$HTTP" --terminals "$TERM_ADDR" \
  --config "$CFG" --mms "$MMS" --port-file "$D/ports.json" >"$D/server.log" 2>&1 &
SERVER=$!
SIM=""
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  [ -n "$SIM" ] && kill -INT "$SIM" 2>/dev/null && wait "$SIM" 2>/dev/null || true
  kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  echo "stopped. Logs: $D/server.log $D/sim.log"
}
trap cleanup INT TERM EXIT

for _ in $(seq 1 100); do
  [ -s "$D/ports.json" ] && break
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "gridsense failed to start:" >&2
    tail -n 20 "$D/server.log" >&2
    SERVER=""
    exit 1
  fi
  sleep 0.1
done
[ -s "$D/ports.json" ] || { echo "gridsense did not start; see $D/server.log" >&2; exit 1; }
# The actual ports (the defaults, or what the OS chose for :0).
TPORT=$(sed -n 's/.*"terminals":\([0-9]*\).*/\1/p' "$D/ports.json")
HPORT=$(sed -n 's/.*"http":\([0-9]*\).*/\1/p' "$D/ports.json")
HTTP="${HTTP%:*}:$HPORT"
MPORT=$(sed -n 's/.*"mms":\([0-9]*\).*/\1/p' "$D/ports.json")
MMS="${MMS%:*}:$MPORT"

# Fresh demo terminals get their own places and names (through the admin API: it applies at
# once, and the web app's map shows them), spread over the Zurich area.
if [ "$PLACE" = 1 ]; then
  for i in $(seq 1 "$N"); do
    body=$(awk -v i="$i" -v n="$N" 'BEGIN { a = 6.2831853 * i / n; r = 0.05 + 0.03 * (i % 3);
      printf "{\"name\":\"demo feeder %d\",\"location\":{\"lat\":%.5f,\"lon\":%.5f}}", i, 47.37 + r * sin(a), 8.54 + 1.5 * r * cos(a) }')
    curl -fs -o /dev/null -X PATCH -H @"$AUTH_HDR" -H 'Content-Type: application/json' \
      -d "$body" "http://$HTTP/api/v1/terminals/DEMO-$(printf %04d "$i")" ||
      echo "note: could not place DEMO-$(printf %04d "$i") on the map" >&2
  done
fi

setsid "$B/gridsense-sim" --server "127.0.0.1:$TPORT" --secrets "$SECRETS" --terminals "$N" \
  --duration 0 --disturbed-fraction 0.35 --disturb 2 >"$D/sim.log" 2>&1 &
SIM=$!

DATA_OPT=""
[ "$D" = "./data" ] || DATA_OPT=" --data $D"
cat <<MSG

  gridsense is running with $N simulated 4G terminals (some with dips and swells).

    Web app     http://$HTTP/   (first slice: log in, live fleet table)
    Log in      user admin, password $ADMIN_PW   (kept in $ADMIN_FILE)
    Terminals   curl -H @$AUTH_HDR http://$HTTP/api/v1/terminals
    One         curl -H @$AUTH_HDR http://$HTTP/api/v1/terminals/DEMO-0001
    Analysis    curl -H @$AUTH_HDR http://$HTTP/api/v1/terminals/DEMO-0001/latest
    Events      curl -H @$AUTH_HDR http://$HTTP/api/v1/events
    10-min      curl -H @$AUTH_HDR 'http://$HTTP/api/v1/terminals/DEMO-0001/measurements?interval=10min'
    Health      curl http://$HTTP/api/v1/health
    Metrics     curl http://$HTTP/metrics
    Command     $B/gridsense command send DEMO-0001 capture cycles=20 --wait 10$DATA_OPT
    IEC 61850   MMS on $MMS, client scada, password $MMS_PW (in $MMS_PW_FILE)
                $B/mms_client --host ${MMS%:*} --port $MPORT --password $MMS_PW domains
                $B/mms_client --host ${MMS%:*} --port $MPORT --password $MMS_PW read GRIDSENSEDEMO_M0001 'MMXU1\$MX\$Hz'
    SCL         $B/gridsense mms scl --out gridsense.icd$DATA_OPT
    Logs        $D/server.log  $D/sim.log

  Press Ctrl-C to stop (everything received is committed before exit).

MSG

metric() { awk -v m="$1" '$1==m {print $2}' <<<"$2"; }
while kill -0 "$SERVER" 2>/dev/null; do
  sleep 10 &
  wait $! || true # a backgrounded sleep lets Ctrl-C run the trap at once
  M=$(curl -fs "http://$HTTP/metrics" 2>/dev/null || true)
  [ -n "$M" ] || continue
  printf '%s  online %s  blocks stored %s  MB received %.1f  voltage events %s\n' \
    "$(date +%H:%M:%S)" "$(metric gridsense_terminals_online "$M")" \
    "$(metric gridsense_blocks_stored_total "$M")" \
    "$(awk '{print $1/1e6}' <<<"$(metric gridsense_bytes_received_total "$M")")" \
    "$(metric gridsense_analysis_events_total "$M")"
done
