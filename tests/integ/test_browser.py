#!/usr/bin/env python3
"""The web app's login and fleet page in a real browser (issue 9): Debian's chromium driven by
playwright-core (tests/browser/fleet.mjs) against the real server with simulated terminals:
login (wrong password, then right), the live fleet table with the API's values changing live,
sort/filter/search in the URL, the Chinese switch, logout, on a desktop and a 390x844 phone
viewport, axe-core, without console errors or failed requests. Screenshots go to
build/screenshots/. scripts/deps.sh installs chromium and the npm packages."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

N = 3


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", str(N), "--prefix", "BR", "--secrets-out",
             secrets, "--data", data])
        pw = "browser-test-password"
        add_user(data, "bea", "operator", pw)
        srv = Server(data, extra=["--no-analysis"]).start()
        sim = sim_start(srv.tport, secrets, N, 300, ["--disturb", "0", "--status-interval", "1"])
        try:
            wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == N, 60,
                     "terminals online")
            # names and places (the admin API), for the map and the name column
            for i in range(N):
                st, _ = srv.json("/api/v1/terminals/BR%04d" % (i + 1), "PATCH", json.dumps(
                    {"name": "feeder %d" % (i + 1),
                     "location": {"lat": 47.3 + 0.05 * i, "lon": 8.4 + 0.08 * i}}))
                check(st == 200, "BR%04d named and placed" % (i + 1))
            browser_script("fleet.mjs", [srv.hport, "bea", pw, N])
        finally:
            sim.terminate()
            sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
