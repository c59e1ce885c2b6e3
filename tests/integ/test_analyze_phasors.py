#!/usr/bin/env python3
"""`gridsense analyze --what phasors --phasor-rate N`: reporting-rate synchrophasors from a
COMTRADE record (the synthetic record of test_analyze.py: 50.2 Hz, 5 % 5th harmonic, a 100-ms
dip on phase A at 4 s) against its analytic truth; report times on the UTC grid; CSV; errors."""
import cmath
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import TempDir, check
import test_analyze as ta


def truth(t_rel, c):
    """Phasor of channel c at t_rel s after the record start (a whole UTC second)."""
    ang = 2 * math.pi * (ta.F - 50) * t_rel - 2 * math.pi / 3 * (c % 3)
    mag = ta.V if c < 3 else ta.I
    if c >= 3:
        ang -= math.radians(30)
    return cmath.rect(mag, ang)


def main():
    rows = ta.signal()
    with TempDir() as d:
        base = os.path.join(d, "rec")
        ta.write_ascii(base, rows)
        p = ta.analyze([base + ".cfg", "--what", "phasors", "--phasor-rate", "25"])
        recs = ta.records(p.stdout)
        check(list(recs) == ["phasor"], "only phasor records: %s" % list(recs))
        ph = recs["phasor"]
        # 14 s less the filter span (0.33 s) and one cycle either side: about 13.6 s of reports
        check(330 <= len(ph) <= 345, "25 reports/s: %d" % len(ph))
        worst = 0.0
        for r in ph:
            check(r["t_ns"] == (r["t_ns"] // 10**9) * 10**9 + r["index"] * 40000000,
                  "report time on the 25/s UTC grid: %d" % r["t_ns"])
            t = (r["t_ns"] - ta.START_NS) / 1e9
            if abs(t - ta.DIP_AT) < 0.3 or abs(t - ta.DIP_AT - ta.DIP_LEN) < 0.3:
                continue  # the dip's edges: step response, not steady state
            for c, name in enumerate(["Ua", "Ub", "Uc", "Ia", "Ib", "Ic"]):
                x = r["phasors"][name]
                est = cmath.rect(x["mag"], math.radians(x["deg"]))
                worst = max(worst, abs(est - truth(t, c)) / abs(truth(t, c)))
            check(abs(r["freq"] - ta.F) < 0.005, "FE < 5 mHz at %.2f s: %.6f" % (t, r["freq"]))
        print("worst TVE %.4f %%" % (worst * 100))
        check(worst < 0.01, "TVE < 1 %% (C37.118.1 steady state with a 5 %% harmonic): %.4f %%"
              % (worst * 100))
        check(ph[0]["flags"] == ["restart"] and ph[1]["flags"] == [], "first report flagged")
        check(abs(ph[10]["v1"]["mag"] - ta.V) < 0.01, "positive sequence: %s" % ph[10]["v1"])

        p = ta.analyze([base + ".cfg", "--what", "phasors", "--phasor-rate", "10",
                        "--format", "csv"])
        lines = p.stdout.splitlines()
        check(lines[0].startswith("time,t_ns,index,flags,freq,rocof,V1_mag,V1_deg,I1_mag"),
              "CSV header: %s" % lines[0])
        check(130 <= len(lines) - 1 <= 140, "10 reports/s in CSV: %d" % (len(lines) - 1))

        p = ta.analyze([base + ".cfg", "--what", "phasors", "--phasor-rate", "30"], rc=2)
        check("not a C37.118.1 rate at 50 Hz" in p.stderr, "30/s refused at 50 Hz: %s" % p.stderr)
        p = ta.analyze([base + ".cfg", "--phasor-rate", "7"], rc=2)
        check("--phasor-rate must be" in p.stderr, "7/s refused: %s" % p.stderr)
    print("ok")


if __name__ == "__main__":
    main()
