#!/usr/bin/env python3
"""Reporting-rate synchrophasors in the server: with `[analysis] phasor_rate = 25` two simulated
terminals stream; GET /api/v1/terminals/{id}/phasors serves one row per UTC second with up to
25 reports on the same UTC grid for both terminals (their values line up in time), the latest
report appears in /latest, and bad queries are 400s. The terminals' V1 angles differ by a
constant: the simulator's per-terminal phase (see test_phasors_same_signal.py)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (GRIDSENSE, Server, TempDir, check, read_secrets, run, sim_finish, sim_start,
                   wait_for)


def rows(srv, tid):
    code, body = srv.json("/api/v1/terminals/%s/phasors?limit=3600" % tid)
    check(code == 200, "phasors of %s: %d" % (tid, code))
    return body["seconds"]


def reports(seconds):
    """{report time ns: {column: value}} from the stored rows."""
    out = {}
    for s in seconds:
        check(s["t_ns"] % 10**9 == 0 and s["rate"] == 25 and 1 <= s["count"] <= 25
              and s["count"] == len(s["reports"]), "row of a whole UTC second: %s"
              % json.dumps(s)[:200])
        for r in s["reports"]:
            rec = dict(zip(s["columns"], r))
            out[s["t_ns"] + rec["index"] * 40_000_000] = rec
    return out


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "P", "--secrets-out",
             secrets, "--data", data])
        check(len(read_secrets(secrets)) == 2, "two terminals provisioned")
        cfg = os.path.join(d, "gridsense.ini")
        with open(cfg, "w") as f:
            f.write("[analysis]\nphasor_rate = 25\n")
        srv = Server(data, extra=["--config", cfg, "--dsp-workers", "2"])
        srv.start()
        try:
            p = sim_start(srv.tport, secrets, 2, 8, ["--disturb", "0"])

            def latest_ok():
                code, body = srv.json("/api/v1/terminals/P0001/latest")
                return code == 200 and body.get("phasor") and body
            latest = wait_for(latest_ok, 60, "a synchrophasor report in the latest values")
            ph = latest["phasor"]
            check(ph["rate"] == 25 and 0 <= ph["index"] < 25 and abs(ph["freq"] - 50) < 0.5,
                  "latest report: %s" % json.dumps(ph)[:300])
            check(set(ph["phasors"]) >= {"Ua", "Ub", "Uc"} and "v1" in ph,
                  "latest report has the phases and the positive sequence")
            rc, summary, err = sim_finish(p, timeout=120)
            check(rc == 0, "simulator exit 0 (rc=%s, stderr=%s)" % (rc, err[-500:]))

            def stored():
                return len(rows(srv, "P0001")) >= 5 and len(rows(srv, "P0002")) >= 5
            wait_for(stored, 60, "phasor rows of both terminals")
            a, b = reports(rows(srv, "P0001")), reports(rows(srv, "P0002"))
            common = sorted(set(a) & set(b))
            check(len(common) >= 100, "both terminals report at the same UTC times: %d common "
                  "of %d / %d" % (len(common), len(a), len(b)))
            for t in common:
                check(abs(a[t]["freq"] - b[t]["freq"]) < 0.005,
                      "same grid frequency at the same time: %s vs %s" % (a[t]["freq"],
                                                                          b[t]["freq"]))
            # The simulator gives each terminal its own seeded initial phase and unbalance
            # (sim/signal.c sig_init), so the two V1 angles differ by a constant (7.87 deg for
            # --seed 1: 7.73 deg of phase, 0.14 deg of unbalance); the clocks are the same. A
            # difference that varied would be a timing error (block times, segment starts):
            # integ.phasors_same_signal checks identical signals give identical angles.
            diffs = [(a[t]["V1.deg"] - b[t]["V1.deg"] + 180) % 360 - 180 for t in common]
            dang = max(abs(x) for x in diffs)
            spread = max(abs((x - diffs[0] + 180) % 360 - 180) for x in diffs)
            print("largest V1 angle difference between the terminals at common times: %.3f deg"
                  " (varies by %.4f deg)" % (dang, spread))
            check(spread < 0.05, "the V1 angle difference is constant (the terminals' own "
                  "phases), varying by %.4f deg" % spread)
            seq = sorted(a)
            gaps = sum(1 for x, y in zip(seq, seq[1:]) if y - x != 40_000_000)
            check(gaps == 0, "P0001's reports are consecutive on the 25/s grid (%d jumps)" % gaps)

            code, body = srv.json("/api/v1/terminals/P0001/phasors?limit=0")
            check(code == 400, "limit=0 is a 400, got %d" % code)
            code, body = srv.json("/api/v1/terminals/P0001/phasors?from=yesterday")
            check(code == 400, "bad from is a 400, got %d" % code)
            code, body = srv.json("/api/v1/terminals/NOPE/phasors")
            check(code == 404, "unknown terminal is a 404, got %d" % code)
            code, body = srv.json("/api/v1/terminals/P0001/phasors?from=%d" % (2**62))
            check(code == 200 and body["seconds"] == [], "empty range: %r" % body)
        finally:
            srv.stop()
    print("ok")


if __name__ == "__main__":
    main()
