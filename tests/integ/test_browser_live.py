#!/usr/bin/env python3
"""The terminal page's live tab in a real browser (issue 9): the server WITH analysis, three
terminals provisioned with VT ratio 100 and CT ratio 200 and a viewer user: LV0001 streams from
the simulator for the whole test, LV0002 streams for a few seconds and goes offline (its last
known values stay), LV0003 is never seen (no analysis values). tests/browser/terminal_live.mjs
then checks the oscilloscope, phasors, spectrum and values against the API's /latest, Hold, a
channel toggle, the primary side, the offline and empty states, on a desktop and a phone
viewport, with axe-core and screenshots (terminal-live-desktop.png, terminal-live-phone.png).
Then the same data served with --no-analysis: the tab says so and the scope still draws."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

VT, CT = 100, 200


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "3", "--prefix", "LV", "--secrets-out",
             secrets, "--vt-ratio", str(VT), "--ct-ratio", str(CT), "--data", data])
        ids = sorted(read_secrets(secrets))
        check(ids == ["LV0001", "LV0002", "LV0003"], "terminals provisioned: %s" % ids)
        # LV0002 alone in a secrets file of its own, for a short second simulator
        second = os.path.join(d, "second.txt")
        with open(secrets) as f, open(second, "w") as g:
            g.writelines(l for l in f if l.startswith("LV0002 "))
        os.chmod(second, 0o600)
        pw = "live-tab-password"
        add_user(data, "vic", "viewer", pw)
        srv = Server(data).start()
        sim = sim_start(srv.tport, secrets, 1, 600, ["--disturb", "0"])
        short = sim_start(srv.tport, second, 1, 5, ["--disturb", "0", "--drain", "5"])
        try:
            def latest(tid):
                st, body = srv.json("/api/v1/terminals/%s" % tid)
                return body if st == 200 else None
            wait_for(lambda: (latest("LV0001") or {}).get("latest") is not None, 60,
                     "LV0001's first analysis values")
            wait_for(lambda: (latest("LV0001") or {}).get("latest", {}).get("phasor") is not None, 30,
                     "LV0001's first synchrophasor report")
            rc, _, err = sim_finish(short, 120)
            check(rc == 0, "the short simulator ran: %s" % err[-500:])
            wait_for(lambda: not latest("LV0002")["online"], 30, "LV0002 offline")
            t2 = latest("LV0002")
            check(t2["latest"] is not None, "LV0002 keeps its last values: %s" % t2["latest"])
            t3 = latest("LV0003")
            check(not t3["online"] and t3["latest"] is None, "LV0003 never seen")
            t1 = latest("LV0001")
            check(t1["vt_ratio"] == VT and t1["ct_ratio"] == CT, "ratios provisioned")
            browser_script("terminal_live.mjs", [srv.hport, "vic", pw, "LV0001", "LV0002", "LV0003",
                                                 VT, CT], timeout=240)
            # the same data served with --no-analysis: the tab says so, the scope still draws
            srv.stop()
            srv = Server(data, extra=["--no-analysis"], tport=srv.tport).start()
            wait_for(lambda: latest("LV0001")["online"], 60, "LV0001 back online")
            check(srv.http("/api/v1/terminals/LV0001/latest")[0] == 404, "/latest is 404 without analysis")
            browser_script("terminal_live.mjs", [srv.hport, "vic", pw, "LV0001", "--no-analysis"],
                           timeout=120)
        finally:
            for s in (sim, short):
                if s.poll() is None:
                    s.terminate()
                    s.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
