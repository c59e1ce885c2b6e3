#!/usr/bin/env python3
"""The terminal page's history tabs in a real browser (issue 9; tests/browser/terminal_history.mjs):
trends of the stored 3 s values (plotted values equal to the measurements API's, zoom, pan, the
quantity and range kept in the URL, the empty state of 10-min values that do not exist yet),
status history charts and sessions, the terminal's events (one arriving live), and commands: an
operator sends a capture that reaches `done` live, a viewer sees no form and is refused (403);
a terminal that never connected shows the empty states and its command stays queued until
cancelled from the page; a seeded week of 10-min values (with a hole) shows in the 7-day view,
its gap as a gap, and zooming in reads the 3 s values of the part on screen.
Desktop and phone; axe-core on every tab; screenshots into build/screenshots/."""
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

N = 2      # simulated terminals (the second also gets a seeded week of 10-min values)
OFFLINE = 1  # one more, provisioned but never connected: empty states, a command stays queued


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def seed_week(data, tid):
    """A week of stored 10-min values (as the analysis writes them) ending 30 min ago, with a
    6-hour hole two days back: history a short run cannot make, for the 7-day view and its gap."""
    end0 = int(time.time()) // 600 * 600
    c = db(data)
    n = 0
    for k in range(3, 7 * 144):
        if 288 <= k < 324:
            continue  # the hole
        te = end0 - k * 600
        f = round(50 + 0.02 * math.sin(k / 9.0), 5)
        doc = {"interval": "10min", "t_start": iso(te - 600), "t_start_ns": (te - 600) * 10**9,
               "t_end": iso(te), "t_end_ns": te * 10**9, "count": 3000, "expected": 3000,
               "flags": [], "freq": {"mean": f, "min": round(f - 0.02, 5), "max": round(f + 0.02, 5)},
               "u0_pct": 0.02, "u2_pct": 0.3, "i0_pct": 1.0, "i2_pct": 2.0, "p": 750.0, "q": 90.0,
               "s_eff": 757.0,
               "channels": [{"name": ch, "rms": 57.7 if ch[0] == "U" else 5.0, "rms_min": 57.5 if ch[0] == "U" else 4.9,
                             "rms_max": 57.9 if ch[0] == "U" else 5.1, "fundamental": 57.6 if ch[0] == "U" else 4.99,
                             "thd_pct": 2.0, "harmonic_groups": []} for ch in ("Ua", "Ub", "Uc", "Ia", "Ib", "Ic")]}
        c.execute("INSERT INTO measurements(terminal_id, interval, t_start_ns, t_end_ns, flags, count, data)"
                  " VALUES (?, '10min', ?, ?, 0, 3000, ?)", (tid, (te - 600) * 10**9, te * 10**9, json.dumps(doc)))
        n += 1
    c.commit()
    c.close()
    return n


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", str(N + OFFLINE), "--prefix", "HI", "--secrets-out",
             secrets, "--data", data])
        users = {"olga": ("operator", "operator-password-1"), "vic": ("viewer", "viewer-password-1")}
        for name, (role, pw) in users.items():
            add_user(data, name, role, pw)
        ids = list(read_secrets(secrets))
        tid, off = ids[0], ids[N]  # the first in the file is the one the dips hit
        seeded = seed_week(data, ids[1])
        check(seeded > 900, "seeded %d 10-min values of %s (a week with a 6-hour hole)" % (seeded, ids[1]))
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
                           [srv.hport, tid, off, ids[1], "olga", users["olga"][1], "vic", users["vic"][1]], timeout=300)
        finally:
            sim.terminate()
            sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
