#!/usr/bin/env python3
"""The installable web app in a real browser (issue 9, section 3; tests/browser/pwa.mjs): the
manifest and icons, the service worker, the offline view while the server is down and the live
feed after it restarts on the same ports; axe-core on the login and fleet pages (phone)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
N = 2


def main():
    shots = browser_setup()
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", str(N), "--prefix", "PW", "--secrets-out",
             secrets, "--data", data])
        pw = "pwa-test-password"
        add_user(data, "vic", "viewer", pw)
        srv = Server(data, extra=["--no-analysis"]).start()
        sim = sim_start(srv.tport, secrets, N, 600, ["--disturb", "0", "--backoff-max-ms", "1000"])
        node = None
        try:
            wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == N, 60,
                     "terminals online")
            node = subprocess.Popen(["node", os.path.join(ROOT, "tests", "browser", "pwa.mjs"),
                                     str(srv.hport), "vic", pw, str(N)], cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                    env=dict(os.environ, GS_SHOTS=shots))
            tport, hport = srv.tport, srv.hport
            for line in node.stdout:
                print(line, end="")
                if line.strip() == "@stop":
                    check(srv.stop() == 0, "server stopped cleanly")
                    node.stdin.write("stopped\n")
                    node.stdin.flush()
                elif line.strip() == "@start":
                    srv = Server(data, extra=["--no-analysis"], tport=tport, hport=hport).start()
                    node.stdin.write("started\n")
                    node.stdin.flush()
            check(node.wait(240) == 0, "the browser flow passed")
        finally:
            if node and node.poll() is None:
                node.kill()
            sim.terminate()
            sim.wait(60)
            srv.stop()


if __name__ == "__main__":
    main()
