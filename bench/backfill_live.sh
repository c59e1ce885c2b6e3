#!/bin/sh
# Backfill speed and its effect on live analysis (docs/benchmarks.md "Backfill").
# 1. N_OFF terminals stream DUR_OFF s into a server with --no-analysis: a backlog.
# 2. The server is restarted (analysis on, backfill on or off) while N_LIVE other terminals
#    stream DUR_LIVE s live; /metrics is sampled every second: worst analysis delay, skipped
#    blocks, backfill progress; the server's CPU time at the end.
# Usage: bench/backfill_live.sh BUILD_DIR WORK_DIR [N_OFF DUR_OFF N_LIVE DUR_LIVE]
set -eu
B=$1; W=$2; NOFF=${3:-50}; DOFF=${4:-60}; NLIVE=${5:-100}; DLIVE=${6:-40}
mkdir -p "$W"; cd "$W"
if [ ! -d base ]; then
  "$B/gridsense" terminal add --count "$NOFF" --prefix W --secrets-out off.txt --data base \
      --declared-voltage 57.735 >/dev/null
  "$B/gridsense" terminal add --count "$NLIVE" --prefix X --secrets-out live.txt --data base \
      --declared-voltage 57.735 >/dev/null
  rm -f p.json
  "$B/gridsense" serve --data base --terminals 127.0.0.1:0 --http 127.0.0.1:0 --port-file p.json \
      --no-analysis > off.log 2>&1 &
  S=$!; while [ ! -s p.json ]; do sleep 0.2; done
  TP=$(python3 -c 'import json;print(json.load(open("p.json"))["terminals"])')
  "$B/gridsense-sim" --server 127.0.0.1:$TP --secrets off.txt --duration "$DOFF" --quiet \
      --disturb 0 > off.sim
  kill $S; wait $S || true
fi
for mode in ${MODES:-on off}; do
  rm -rf run; cp -r base run; rm -f p.json
  # WISDOM=FILE: FFTW wisdom for the server (as a server that ran before has it)
  [ -n "${WISDOM:-}" ] && cp "$WISDOM" run/fftw-wisdom
  printf '[analysis]\nbackfill = %s\nbackfill_idle_s = 1\n[http]\nmetrics_public = true\n' \
      $([ $mode = on ] && echo true || echo false) > c.ini
  "$B/gridsense" serve --data run --terminals 127.0.0.1:0 --http 127.0.0.1:0 --port-file p.json \
      --config c.ini --dsp-workers 1 > $mode.log 2>&1 &
  S=$!; while [ ! -s p.json ]; do sleep 0.2; done
  TP=$(python3 -c 'import json;print(json.load(open("p.json"))["terminals"])')
  HP=$(python3 -c 'import json;print(json.load(open("p.json"))["http"])')
  "$B/gridsense-sim" --server 127.0.0.1:$TP --secrets live.txt --duration "$DLIVE" --quiet \
      --disturb 0 > $mode.sim &
  SIM=$!
  python3 - "$HP" "$DLIVE" > $mode.metrics <<'PY'
import sys, time, urllib.request
hp, dur = sys.argv[1], float(sys.argv[2])
worst = 0.0
series = []
t_end = time.time() + dur
while time.time() < t_end:
    time.sleep(1)
    m = {}
    for l in urllib.request.urlopen("http://127.0.0.1:%s/metrics" % hp).read().decode().splitlines():
        if l.startswith("gridsense_") and " " in l:
            k, v = l.rsplit(" ", 1); m[k] = float(v)
    d = m.get("gridsense_analysis_max_delay_seconds", 0)
    worst = max(worst, d)
    series.append("%.2f/%d" % (d, m.get("gridsense_backfill_blocks_total", 0)))
print("worst_delay_s %.3f" % worst)
print("delay_s/backfilled_blocks each second:", " ".join(series))
for k in ("gridsense_analysis_blocks_total", "gridsense_analysis_blocks_skipped_total",
          "gridsense_backfill_blocks_total", "gridsense_backfill_signal_seconds_total",
          "gridsense_backfill_cpu_seconds_total", "gridsense_backfill_busy_seconds_total",
          "gridsense_backfill_backlog_blocks"):
    print(k, m.get(k))
PY
  wait $SIM || true
  echo "server_cpu_s $(ps -o times= -p $S)" >> $mode.metrics
  kill $S; wait $S || true
  echo "== backfill $mode"; cat $mode.metrics
done
