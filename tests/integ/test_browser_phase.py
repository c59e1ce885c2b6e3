#!/usr/bin/env python3
"""The map and the wide-area phase view in a real browser (issue 9): Debian's chromium driven by
playwright-core (tests/browser/phase.mjs) against the real server WITH analysis (synchrophasors
stored at the default [analysis] phasor_rate = 10) and 3 simulated terminals provisioned with
locations (`gridsense terminal add ID --location LAT,LON`; the second one gets a scheduled dip,
so it has an open event), plus a 4th terminal without a location that never connects. The
browser script checks the fleet page's map (3 markers coloured by state, no tile request), the
phase page's chart, table and map against the phasors API, the reference switch, desktop and
phone, axe-core, and writes phase-desktop.png, phase-phone.png and map-desktop.png."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

PLACES = [("PHA1", "47.3769,8.5417"), ("PHA2", "47.0502,8.3093"), ("PHA3", "46.9480,7.4474")]


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        with open(secrets, "w") as f:
            for tid, loc in PLACES:
                p = run([GRIDSENSE, "terminal", "add", tid, "--name", "site " + tid[-1],
                         "--location", loc, "--data", data])
                f.write(p.stdout.strip().splitlines()[-1] + "\n")  # "ID SECRET"
        run([GRIDSENSE, "terminal", "add", "PHZ9", "--name", "not placed", "--data", data])
        pw = "phase-test-password"
        p = subprocess.run([GRIDSENSE, "user", "add", "pia", "--role", "viewer",
                            "--password-stdin", "--data", data], input=pw + "\n",
                           capture_output=True, text=True)
        check(p.returncode == 0, "user added")
        srv = Server(data, extra=["--dsp-workers", "1"]).start()
        sim = sim_start(srv.tport, secrets, len(PLACES), 600,
                        ["--disturb", "0", "--schedule", "dip@3+200:50/2"])
        try:
            wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == len(PLACES), 60,
                     "terminals online")

            def stored():  # enough history for the chart to start full
                for tid, _ in PLACES:
                    code, body = srv.json("/api/v1/terminals/%s/phasors?limit=3600" % tid)
                    if code != 200 or len(body["seconds"]) < 20:
                        return False
                return True
            wait_for(stored, 120, "20 s of stored phasors for every terminal")
            wait_for(lambda: any(e["terminal"] == "PHA2" for e in
                                 srv.json("/api/v1/events?acked=false")[1]["events"]), 60,
                     "the scheduled dip of PHA2 stored as an event")
            browser_script("phase.mjs", [srv.hport, "pia", pw, ",".join(t for t, _ in PLACES),
                                         "PHZ9"], timeout=240)
        finally:
            sim.terminate()
            sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
