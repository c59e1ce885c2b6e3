#!/usr/bin/env python3
"""Stored waveforms through the HTTP API (docs/api.md "Waveforms"): the simulator streams a
scheduled dip; GET /api/v1/events/{id}/waveform returns the samples around it whose depth and
timing match what the simulator generated (from the raw samples and from the RMS(1/2)
envelope), in primary and secondary units; the simulator then stops and restarts, and an
envelope of a range spanning the pause shows the gap explicitly (no bucket bridges it)."""
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (GRIDSENSE, Server, TempDir, check, run, sim_finish, sim_start, wait_for)

DIP_AT_S = 4.0
DIP_MS = 200
DIP_LEVEL = 60.0  # residual, % of nominal
UDIN = 57.735     # secondary V, phase-neutral
VT = 100.0
CYCLE_NS = 20_000_000


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "1", "--prefix", "W", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", str(UDIN), "--vt-ratio", str(VT),
             "--ct-ratio", "200"])
        srv = Server(data, extra=["--dsp-workers", "2"]).start()
        p = sim_start(srv.tport, secrets, 1, 9,
                      ["--disturb", "0", "--schedule",
                       "dip@%g+%d:%g/1" % (DIP_AT_S, DIP_MS, DIP_LEVEL)])
        rc, summary, _ = sim_finish(p, timeout=120)
        check(rc == 0 and summary, "simulator finished")
        t_sim0 = summary["start_ns"]

        def event():
            st, j = srv.json("/api/v1/terminals/W0001/events")
            return st == 200 and j["events"] and j["events"][0]
        ev = wait_for(event, 60, "the dip stored")
        dip_start = t_sim0 + int(DIP_AT_S * 1e9)

        st, w = srv.json("/api/v1/events/%d/waveform?pre=0.2&post=0.2&max_points=100000"
                         % ev["id"])
        check(st == 200 and w["mode"] == "raw" and w["side"] == "primary",
              "event waveform: raw samples on the primary side (%d %s)" % (st, w.get("mode")))
        check(w["event"]["id"] == ev["id"] and w["event"]["kind"] == "dip", "the event's fields")
        seg = w["segments"][0]
        ua = seg["samples"]["Ua"]
        rate, t0 = seg["sample_rate"], seg["t0_ns"]
        per_cycle = rate // 50

        def cycle_rms(k):
            xs = ua[k:k + per_cycle]
            return math.sqrt(sum(x * x for x in xs) / len(xs))
        nominal = UDIN * VT
        before = cycle_rms(0)
        check(abs(before / nominal - 1) < 0.02, "before the dip: Ua %.1f V primary (nominal %.1f)"
              % (before, nominal))
        # the middle of the dip, from the samples themselves
        mid = int((dip_start + DIP_MS * 1e6 / 2 - t0) * rate / 1e9)
        during = cycle_rms(mid)
        check(abs(during / nominal * 100 - DIP_LEVEL) < 1.0,
              "in the dip: Ua at %.2f %% of nominal (simulated %.0f %%)"
              % (during / nominal * 100, DIP_LEVEL))
        # RMS(1/2): where it first drops under 90 % is the dip's start (within a cycle)
        rh = w["rms_half"]["segments"][0]
        vals = rh["values"]["Ua"]
        first = next(i for i, v in enumerate(vals) if v < 0.9 * nominal)
        # value k is timed at the centre of its one-cycle window: the first window under 90 %
        # ends after the dip began, and within a cycle of it (IEC 61000-4-30 5.4.2)
        t_first = rh["t0_ns"] + first * rh["step_ns"] + rh["window_ns"] // 2
        check(0 <= t_first - dip_start <= CYCLE_NS,
              "the first RMS(1/2) window under 90 %% ends within a cycle after the simulated start (%.1f ms)"
              % ((t_first - dip_start) / 1e6))
        check(abs(min(vals) / nominal * 100 - DIP_LEVEL) < 1.0,
              "RMS(1/2) minimum %.2f %%" % (min(vals) / nominal * 100))
        st, w2 = srv.json("/api/v1/events/%d/waveform?pre=0.2&post=0.2&max_points=100000"
                          "&side=secondary" % ev["id"])
        check(st == 200 and w2["side"] == "secondary"
              and abs(w2["segments"][0]["samples"]["Ua"][5] * VT - ua[5]) < 1e-6 * nominal + 0.5,
              "secondary side = primary / vt_ratio")
        print("ok: event waveform matches the simulated dip (%.2f %% residual, start %+.1f ms)"
              % (during / nominal * 100, (t_first - dip_start) / 1e6))

        # ---- a gap: the terminal is silent for a while, then streams again ----
        t_gap0 = time.time_ns()
        time.sleep(3)
        p = sim_start(srv.tport, secrets, 1, 4, ["--disturb", "0"])
        rc, summary2, _ = sim_finish(p, timeout=120)
        t_end = summary2["start_ns"] + 4 * 10**9
        st, e = srv.json("/api/v1/terminals/W0001/waveform?from=%d&to=%d&max_points=400"
                         "&channels=Ua,Ia" % (t_sim0, t_end))
        check(st == 200 and e["mode"] == "envelope", "a long range comes as an envelope")
        inner = [g for g in e["gaps"] if g["from_ns"] > t_sim0 + 10**9 and g["to_ns"] < t_end]
        check(len(inner) >= 1, "the silence shows as a gap: %r" % e["gaps"])
        g = inner[0]
        check(g["from_ns"] <= t_gap0 + 10**9 and g["to_ns"] >= t_gap0 + 3 * 10**9 - 10**9,
              "the gap covers the pause (%.1f s)" % ((g["to_ns"] - g["from_ns"]) / 1e9))
        check(len(e["segments"]) >= 2, "two segments, one each side of the gap")
        for s in e["segments"]:
            ts = s["buckets"]["t_ns"]
            check(all(s["t0_ns"] - 10**9 <= t <= s["end_ns"] + 10**9 for t in ts),
                  "no bucket of a segment lies inside the gap")
            check(set(s["buckets"]["min"]) == {"Ua", "Ia"}, "only the selected channels")
        st, j = srv.json("/api/v1/terminals/W0001/waveform?max_points=0")
        check(st == 400 and j["error"]["code"] == "bad_request", "max_points=0: 400")
        st, j = srv.json("/api/v1/terminals/NOPE/waveform")
        check(st == 404, "unknown terminal: 404")
        st, j = srv.json("/api/v1/events/99999/waveform")
        check(st == 404, "unknown event: 404")
        print("ok: the pause is an explicit gap (%.1f s)" % ((g["to_ns"] - g["from_ns"]) / 1e9))
        srv.stop()


if __name__ == "__main__":
    main()
