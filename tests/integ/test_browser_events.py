#!/usr/bin/env python3
"""The events page in a real browser (issue 9, section 2 "Events"): Debian's chromium driven by
playwright-core (tests/browser/events.mjs) against the real server WITH analysis and two
simulated terminals. The browser opens #/events first (an operator on a desktop viewport, a
viewer on a 390x844 phone) and says READY; only then does the simulator start, with a
scheduled dip on the second terminal and a swell on the first (random disturbances off), so the
events can only reach the page live. The script checks them in the list and the scatter against
the API, the event page's details and waveform (the dip's depth in the RMS(1/2) envelope),
acknowledgement (operator; a 409 shown; none for a viewer), filters, accessibility and
screenshots (build/screenshots/events-*.png, event-*.png), with no console error or failed
request."""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UDIN = 57.735   # declared voltage, secondary V (events are in % of it)
VT = 100
DIP = (5, 200, 40)     # at s after the simulator's start, ms, residual %  (terminal 2)
SWELL = (7, 150, 115)  # at s, ms, maximum %                               (terminal 1)


def main():
    shots = browser_setup()
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "EV", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", str(UDIN), "--vt-ratio", str(VT)])
        users = {"olga": ("operator", "olga-operator-pw"), "vic": ("viewer", "vic-viewer-pw1")}
        for name, (role, pw) in users.items():
            add_user(data, name, role, pw)
        srv = Server(data, extra=["--dsp-workers", "2"]).start()
        node = subprocess.Popen(
            ["node", os.path.join(ROOT, "tests", "browser", "events.mjs"), str(srv.hport),
             shots, "olga", users["olga"][1], "vic", users["vic"][1], "EV0002", "EV0001",
             str(DIP[2]), str(VT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        out, ready = [], threading.Event()

        def reader():
            for line in node.stdout:
                out.append(line)
                print(line, end="", flush=True)
                if line.strip() == "READY":
                    ready.set()
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        sim = None
        try:
            check(ready.wait(90), "the browser opened the events page (READY)")
            sim = sim_start(srv.tport, secrets, 2, 12, [
                "--disturb", "0",
                "--schedule", "dip@%g+%d:%g/2" % DIP,
                "--schedule", "swell@%g+%d:%g/1" % SWELL])
            node.wait(240)
            th.join(10)
            err = node.stderr.read()
            check(node.returncode == 0, "browser flow passed: %s" % err[-3000:])
            rc, summary, _ = sim_finish(sim, timeout=120)
            sim = None
            check(rc == 0, "simulator finished")
        finally:
            if node.poll() is None:
                node.kill()
            if sim is not None and sim.poll() is None:
                sim.terminate()
                sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
