#!/usr/bin/env python3
"""The terminal page's history tabs in a real browser (issue 9; tests/browser/terminal_history.mjs):
trends of the stored 3 s values (plotted values equal to the measurements API's, zoom, pan, the
quantity and range kept in the URL, the empty state of 10-min values that do not exist yet),
status history charts and sessions, the terminal's events (one arriving live), and commands: an
operator sends a capture that reaches `done` live, a viewer sees no form and is refused (403);
a terminal that never connected shows the empty states and its command stays queued until
cancelled from the page.
Desktop and phone; axe-core on every tab; screenshots into build/screenshots/."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

N = 2      # simulated terminals
OFFLINE = 1  # one more, provisioned but never connected: empty states, a command stays queued


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", str(N + OFFLINE), "--prefix", "HI", "--secrets-out",
             secrets, "--data", data])
        users = {"olga": ("operator", "operator-password-1"), "vic": ("viewer", "viewer-password-1")}
        for name, (role, pw) in users.items():
            p = subprocess.run([GRIDSENSE, "user", "add", name, "--role", role, "--password-stdin",
                                "--data", data], input=pw + "\n", capture_output=True, text=True)
            check(p.returncode == 0, "user %s (%s) added: %s" % (name, role, p.stderr))
        ids = list(read_secrets(secrets))
        tid, off = ids[0], ids[N]  # the first in the file is the one the dips hit
        srv = Server(data).start()  # with analysis: 3 s values, events
        # dips on the first terminal every 12 s, so one arrives while the events tab is open;
        # a STATUS every 2 s so the status charts have points
        sched = []
        for k in range(15):
            sched += ["--schedule", "dip@%d+120:60/1" % (8 + 12 * k)]
        sim = sim_start(srv.tport, secrets, N, 600, ["--disturb", "0", "--status-interval", "2"] + sched)
        try:
            wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == N, 60,
                     "terminals online")
            wait_for(lambda: len(srv.json("/api/v1/terminals/%s/measurements?interval=3s" % tid)[1]
                                 .get("measurements", [])) >= 5, 90, "five 3 s values stored")
            wait_for(lambda: len(srv.json("/api/v1/terminals/%s/events" % tid)[1]
                                 .get("events", [])) >= 1, 60, "a first dip stored")
            browser_script("terminal_history.mjs",
                           [srv.hport, tid, off, "olga", users["olga"][1], "vic", users["vic"][1]], timeout=300)
        finally:
            sim.terminate()
            sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
