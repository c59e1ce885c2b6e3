#!/usr/bin/env python3
"""The WebSocket live feed (docs/api.md "Live feed") against the real server and simulator:

- the handshake is authenticated like the REST routes: no credential 401, a cookie from another
  Origin 403, another path 404, a plain GET 426;
- a user logs in (cookie), subscribes, and sees: the terminal come online on `fleet`, its latest
  values at most about once a second, decimated waveform frames (<= 2 cycles, <= ~10/s) that
  match the stored waveform, synchrophasor seconds, the scheduled dip on `events`, and a command
  they send go to `done` on `commands`;
- every message has its topic and a server time; a bad request gets the error shape;
- logging out closes the feed with 4401.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

DIP_AT_S = 5.0


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "L", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", "57.735"])
        srv = Server(data, extra=["--dsp-workers", "2"]).start()
        port = srv.hport
        pw = "operator-password-1"
        p = subprocess.run([GRIDSENSE, "user", "add", "olga", "--role", "operator",
                            "--password-stdin", "--data", data], input=pw + "\n",
                           capture_output=True, text=True)
        check(p.returncode == 0, "operator added")

        # ---- handshake checks ----
        w = WsClient(port)
        check(w.status == 401 and json.loads(w.body)["error"]["code"] == "unauthorized",
              "no credential: 401 with the error shape (%s)" % w.status)
        w = WsClient(port, "/api/v1/other", {"Authorization": "Bearer " + srv.token})
        check(w.status == 404, "another path: 404 (%s)" % w.status)
        st, j = srv.json("/api/v1/live")
        check(st == 426 and j["error"]["code"] == "upgrade_required", "plain GET: 426")
        st, body = srv.http("/api/v1/session", "POST", json.dumps({"user": "olga", "password": pw}),
                            auth=False)
        check(st == 200, "olga logs in")
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/api/v1/session", json.dumps({"user": "olga", "password": pw}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        c.close()
        w = WsClient(port, headers={"Cookie": cookie, "Origin": "http://evil.example"})
        check(w.status == 403 and json.loads(w.body)["error"]["code"] == "csrf",
              "cookie from another Origin: 403 csrf (%s)" % w.status)
        w = WsClient(port, headers={"Cookie": cookie, "Origin": "http://127.0.0.1:%d" % port})
        check(w.status == 101, "cookie with this server's Origin: upgraded")
        print("ok: the handshake is authenticated (401/403/404/426/101)")

        # ---- subscribe ----
        w.send({"subscribe": ["nope"]})
        m = w.recv(10)
        check(m and set(m["error"]) == {"code", "message"} and "time" in m,
              "unknown topic: error shape (%s)" % m)
        w.send("not json")
        m = w.recv(10)
        check(m and m["error"]["code"] == "bad_request", "bad JSON: error")
        topics = ["fleet", "commands", "events", "terminal/L0001/latest",
                  "terminal/L0001/wave", "terminal/L0001/phasors"]
        w.send({"subscribe": topics})
        m, _ = w.wait_for(lambda m: m.get("topic") == "subscribed", 10, "subscribed")
        check(sorted(m["data"]["topics"]) == sorted(topics), "subscribed to all six")

        sim = sim_start(srv.tport, secrets, 2, 14,
                        ["--disturb", "0", "--schedule", "dip@%g+200:50/1" % DIP_AT_S])
        msgs = []
        online, _ = w.wait_for(lambda m: m.get("topic") == "fleet" and m["data"]["id"] == "L0001"
                               and m["data"]["online"], 30, "L0001 online on fleet")
        print("ok: fleet says L0001 is online")
        # a command sent now goes to done on the feed
        st, cmd = srv.json("/api/v1/terminals/L0001/commands", "POST", '{"verb":"get-status"}')
        check(st == 201, "command created (%d)" % st)
        states = []

        def cmd_done(m):
            msgs.append(m)
            if m.get("topic") == "commands" and m["data"].get("id") == cmd["id"]:
                states.append(m["data"]["state"])
                return m["data"]["state"] == "done"
            return False
        w.wait_for(cmd_done, 30, "the command done on the feed")
        # each message carries the command as it is when the web thread sends it, so a fast
        # command may show fewer steps (a slow sanitized server: only "done")
        order = ["queued", "sent", "acked", "done"]
        check(states[-1] == "done" and states == sorted(states, key=order.index),
              "command states seen, in order: %s" % states)
        print("ok: the command went %s on the feed" % " -> ".join(states))

        def dip(m):
            msgs.append(m)
            return m.get("topic") == "events" and m["data"]["terminal"] == "L0001"
        ev, _ = w.wait_for(dip, 40, "the dip on events")
        check(ev["data"]["event"]["kind"] == "dip", "a dip: %s" % ev["data"]["event"])
        print("ok: the scheduled dip arrived on events")
        st, stored = srv.json("/api/v1/events/%d" % ev["data"]["event"]["id"])
        check(st == 200 and stored == ev["data"]["event"],
              "the feed's event is the stored one, as GET /events/{id} answers it: %s" % stored)
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end:
            m = w.recv(1)
            if m:
                msgs.append(m)
        rc, summary, _ = sim_finish(sim, timeout=120)

        for m in msgs:
            check("topic" in m and "time" in m and m["time"].endswith("Z"),
                  "every message has topic and time")
        latest = [m for m in msgs if m["topic"] == "terminal/L0001/latest"]
        waves = [m for m in msgs if m["topic"] == "terminal/L0001/wave"]
        phasors = [m for m in msgs if m["topic"] == "terminal/L0001/phasors"]
        check(len(latest) >= 3 and "channels" in latest[-1]["data"], "latest values: %d"
              % len(latest))
        check(len(phasors) >= 3, "phasor seconds: %d" % len(phasors))
        check(len(waves) >= 20, "waveform frames: %d" % len(waves))
        f = waves[-1]["data"]
        names = [ch["name"] for ch in f["channels"]]
        check(names[:3] == ["Ua", "Ub", "Uc"], "channels by name: %s" % names)
        n = len(f["channels"][0]["values"])
        check(n * f["dt_ns"] <= 2 * 20e6 + f["dt_ns"] and n <= 256,
              "a frame is at most 2 cycles and 256 points (%d points, %.0f us apart)"
              % (n, f["dt_ns"] / 1e3))
        t0s = sorted(m["data"]["t0_ns"] for m in waves)
        span = (t0s[-1] - t0s[0]) / 1e9
        check(len(t0s) <= 10 * span + 2, "at most ~10 frames a second (%d in %.1f s)"
              % (len(t0s), span))
        # the frame's values are the stored waveform's (secondary side)
        st, sw = srv.json("/api/v1/terminals/L0001/waveform?from=%d&to=%d&side=secondary"
                          "&max_points=100000&channels=Ua" % (f["t0_ns"], f["t0_ns"] + 10**6))
        check(st == 200 and sw["segments"], "the stored waveform at the frame's time")
        stored = sw["segments"][0]["samples"]["Ua"][0]
        check(abs(stored - f["channels"][0]["values"][0]) <= 1e-3 * max(1, abs(stored)),
              "the frame's first Ua sample is the stored one (%.4f vs %.4f)"
              % (f["channels"][0]["values"][0], stored))
        print("ok: %d latest, %d phasor seconds, %d waveform frames (%d points each)"
              % (len(latest), len(phasors), len(waves), n))

        # ---- logout ends the feed ----
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("DELETE", "/api/v1/session", headers={"Cookie": cookie,
                                                        "Origin": "http://127.0.0.1:%d" % port})
        check(c.getresponse().status == 200, "logout")
        c.close()
        deadline = time.monotonic() + 10
        while w.sock is not None and w.close_code is None and time.monotonic() < deadline:
            w.recv(1)
        check(w.close_code == 4401, "logging out closes the feed with 4401 (%s)" % w.close_code)
        st, txt = srv.http("/metrics")
        check("gridsense_live_clients" in txt, "live metrics exported")
        print("ok: logout closed the live feed (4401)")
        srv.stop()


if __name__ == "__main__":
    main()
