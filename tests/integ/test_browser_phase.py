#!/usr/bin/env python3
"""The map and the wide-area phase view in a real browser (issue 9): Debian's chromium driven by
playwright-core (tests/browser/phase.mjs) against the real server WITH analysis (synchrophasors
stored at the default [analysis] phasor_rate = 10) and 3 simulated terminals provisioned with
locations (`gridsense terminal add ID --location LAT,LON`; the second one gets a scheduled dip,
so it has an open event; with --seed 39 the simulator makes the third one NTP-synchronised, so
its reports carry time_unsync), plus a 4th terminal without a location that never connects. The
browser script checks the fleet page's map (3 markers coloured by state, no tile request), the
phase page's chart, table and map against the phasors API, the reference switch, desktop and
phone, axe-core, and writes phase-desktop.png, phase-phone.png and map-desktop.png.
Then, with `[web] tiles` pointing at a tile server of the test on loopback, the map loads tiles
from it (and only valid z/x/y paths), shows the escaped credit line, and colours an offline
terminal's marker."""
import http.server
import os
import re
import sys
import threading
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

def png(w=256, h=256):
    """A plain light-grey PNG (a map tile)."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    raw = b"".join(b"\0" + b"\xe0" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big")
            + b"\x08\x00\x00\x00\x00") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class TileServer:
    """GET /{z}/{x}/{y}.png on loopback, recording the paths asked for."""

    def __init__(self):
        tile = png()
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                ok = re.fullmatch(r"/(\d+)/(\d+)/(\d+)\.png", self.path)
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile) if ok else 0))
                self.end_headers()
                if ok:
                    self.wfile.write(tile)

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


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
        add_user(data, "pia", "viewer", pw)
        srv = Server(data, extra=["--dsp-workers", "1"]).start()
        sim = sim_start(srv.tport, secrets, len(PLACES), 600,
                        ["--disturb", "0", "--schedule", "dip@3+200:50/2", "--seed", "39"])
        try:
            wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == len(PLACES), 60,
                     "terminals online")

            def stored():  # enough history for the chart to start full
                for tid, _ in PLACES:
                    code, body = srv.json("/api/v1/terminals/%s/phasors?limit=3600" % tid)
                    if code != 200 or len(body["seconds"]) < 15:
                        return False
                return True
            wait_for(stored, 120, "15 s of stored phasors for every terminal")
            wait_for(lambda: any(e["terminal"] == "PHA2" for e in
                                 srv.json("/api/v1/events?acked=false")[1]["events"]), 60,
                     "the scheduled dip of PHA2 stored as an event")
            browser_script("phase.mjs", [srv.hport, "pia", pw, ",".join(t for t, _ in PLACES),
                                         "PHZ9"], timeout=240)
        finally:
            sim.terminate()
            sim.wait(60)
            srv.stop()

    # [web] tiles: a terminal with a location, never connected (offline), on a map with tiles
    with TempDir() as d:
        data = os.path.join(d, "data")
        run([GRIDSENSE, "terminal", "add", "PHT1", "--location", "47.3769,8.5417", "--data", data])
        pw = "phase-test-password"
        add_user(data, "pia", "viewer", pw)
        tiles = TileServer()
        cfg = os.path.join(d, "tiles.ini")
        with open(cfg, "w") as f:
            f.write("[web]\ntiles = http://127.0.0.1:%d/{z}/{x}/{y}.png\n"
                    "tiles_attribution = Test tiles <ok> & co\n" % tiles.port)
        srv = Server(data, extra=["--config", cfg, "--no-analysis"]).start()
        try:
            browser_script("phase.mjs", [srv.hport, "pia", pw, "PHT1", "-",
                                         "http://127.0.0.1:%d/" % tiles.port], timeout=120)
            check(tiles.seen and all(re.fullmatch(r"/\d+/\d+/\d+\.png", x) for x in tiles.seen),
                  "the tile server got %d tile requests (%s ...)" % (len(tiles.seen),
                                                                     tiles.seen[:3]))
        finally:
            srv.stop()
            tiles.close()


if __name__ == "__main__":
    main()
