#!/usr/bin/env python3
"""The web app in a real browser (issue 9, first slice): Debian's chromium driven by
playwright-core (tests/browser/fleet.mjs) against the real server with simulated terminals:
login (wrong password, then right), the live fleet table, the Chinese switch, logout, on a
desktop and a 390x844 phone viewport, without console errors or failed requests. Screenshots go
to build/screenshots/. scripts/deps.sh installs chromium and the npm packages."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
N = 3


def main():
    check(os.path.exists("/usr/bin/chromium") or os.environ.get("GS_CHROMIUM"),
          "chromium is installed (scripts/deps.sh)")
    check(os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")),
          "playwright-core is installed (npm ci, scripts/deps.sh)")
    shots = os.path.join(os.path.abspath(BUILD), "screenshots")
    os.makedirs(shots, exist_ok=True)
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", str(N), "--prefix", "BR", "--secrets-out",
             secrets, "--data", data])
        pw = "browser-test-password"
        p = subprocess.run([GRIDSENSE, "user", "add", "bea", "--role", "operator",
                            "--password-stdin", "--data", data], input=pw + "\n",
                           capture_output=True, text=True)
        check(p.returncode == 0, "user added")
        srv = Server(data, extra=["--no-analysis"]).start()
        sim = sim_start(srv.tport, secrets, N, 120, ["--disturb", "0"])
        try:
            wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == N, 60,
                     "terminals online")
            r = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "fleet.mjs"),
                                str(srv.hport), "bea", pw, str(N), shots],
                               capture_output=True, text=True, timeout=240, cwd=ROOT)
            print(r.stdout)
            check(r.returncode == 0, "browser flow passed: %s" % r.stderr[-2000:])
        finally:
            sim.terminate()
            sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
