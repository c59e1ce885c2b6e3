#!/usr/bin/env python3
"""Historian queries through HTTP (docs/benchmarks.md "Historian queries"): starts
`gridsense serve` on a database written by build/gen_history and times, client side (a new
connection per request, API token, until the reply is read: tests/integ/gslib.py), the waveform
envelope over 1 h / 1 day / 30 days /
the whole history, a year's trend of one quantity and the fleet ranking of the last week.

    bench/hist_http.py DATA_DIR GEN_JSON [REPS]
Prints a markdown table (median, min, max ms; reply bytes)."""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integ"))
from gslib import Server  # noqa: E402

S = 10**9
DAY = 86400 * S


def main():
    data, gen = sys.argv[1], json.load(open(sys.argv[2]))
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    start, end = gen["start_ns"], gen["end_ns"]
    fine = end - DAY - gen.get("fine_days", 2) * DAY
    w = "/api/v1/terminals/H0001/waveform?max_points=2000&from=%d&to=%d"
    cases = [
        ("waveform, 1 min (blocks)", w % (end - 65 * S, end - 5 * S)),
        ("waveform, 1 h", w % (fine + 6 * 3600 * S, fine + 7 * 3600 * S)),
        ("waveform, 1 day", w % (fine, fine + DAY)),
        ("waveform, 30 days", w % (end - 31 * DAY, end - DAY)),
        ("waveform, whole history", w % (start, end)),
        ("trend u2_pct 10 min, whole history",
         "/api/v1/terminals/H0001/trend?quantity=u2_pct&from=%d&to=%d" % (start, end)),
        ("ranking max u2_pct, all terminals, last week",
         "/api/v1/measurements/ranking?quantity=u2_pct&from=%d&to=%d&limit=10000"
         % (end - 7 * DAY, end)),
    ]
    srv = Server(data, log_level="warn").start(timeout=120)
    print("| query (HTTP) | median ms | min ms | max ms | reply bytes |")
    print("|---|---:|---:|---:|---:|")
    for what, path in cases:
        times, size = [], 0
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            st, body = srv.http(path)
            dt = (time.perf_counter() - t0) * 1e3
            if st != 200:
                print("hist_http: %s: %d %s" % (path, st, body[:200]), file=sys.stderr)
                srv.stop()
                return 1
            times.append(dt)
            size = len(body)
        times = times[1:]  # the first run apart (cold caches)
        print("| %s | %.1f | %.1f | %.1f | %d |" % (what, statistics.median(times), min(times),
                                                   max(times), size))
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
