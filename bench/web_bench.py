#!/usr/bin/env python3
"""Web app benchmark (issue 9, section 5), in Debian's chromium driven by playwright-core
(bench/web_perf.mjs), against the real server on 127.0.0.1:

  1. cold first load (new browser profile: empty cache) of the login page, then the fleet page
     after logging in, and the time until the live feed is connected; the bytes the app's files
     took on the wire (gzip) and uncompressed;
  2. the oscilloscope (terminal page, live tab) with 6 channels live: frames drawn per second
     and the page's main-thread CPU;
  3. the fleet page with WEB_N terminals streaming (4 kS/s x 6 channels, STATUS every
     WEB_STATUS_S s; --no-analysis, as in the API benchmark: the analysis of 1,000 terminals
     needs more than these 2 cores): main-thread CPU of the page, JS heap, and the time from a
     terminal's link dropping (SIGKILL of its simulator) / coming back (simulator started) to
     its row saying so, WEB_CHANGES times.
Steps 1-2 use a small server with analysis (WEB_SMALL_N terminals). Prints a markdown report;
--json FILE writes the figures.

Environment: WEB_N (1000), WEB_SMALL_N (3), WEB_WINDOW_S (30), WEB_CHANGES (10), WEB_SCOPE_S
(20), WEB_STATUS_S (10), GS_BUILD (build).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GS_BUILD_DIR", os.environ.get("GS_BUILD", os.path.join(ROOT, "build")))
sys.path.insert(0, os.path.join(ROOT, "tests", "integ"))
from gslib import GRIDSENSE, SIM, Server, TempDir, run, wait_for  # noqa: E402

N = int(os.environ.get("WEB_N", "1000"))
SMALL_N = int(os.environ.get("WEB_SMALL_N", "3"))
WINDOW_S = int(os.environ.get("WEB_WINDOW_S", "30"))
CHANGES = int(os.environ.get("WEB_CHANGES", "10"))
SCOPE_S = int(os.environ.get("WEB_SCOPE_S", "20"))
STATUS_S = int(os.environ.get("WEB_STATUS_S", "10"))
PW = "web-bench-password"


def sim_start(port, secrets, n, duration, extra):
    """The simulator with its output in a file (a pipe nobody reads could fill and stall it)."""
    out = open(secrets + ".log", "a")
    return subprocess.Popen([SIM, "--server", "127.0.0.1:%d" % port, "--secrets", secrets,
                             "--terminals", str(n), "--duration", str(duration)] + list(extra),
                            stdout=out, stderr=subprocess.STDOUT)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def add_user(data):
    p = subprocess.run([GRIDSENSE, "user", "add", "bench", "--role", "viewer", "--password-stdin",
                        "--data", data], input=PW + "\n", capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("user add: " + p.stderr)


def node(args, on_ask=None):
    """Runs bench/web_perf.mjs; returns its RESULT objects. on_ask(word) -> epoch ms answers
    its "@word" questions."""
    p = subprocess.Popen(["node", os.path.join(ROOT, "bench", "web_perf.mjs")] + [str(a) for a in args],
                         cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    results = []
    for line in p.stdout:
        line = line.strip()
        if line.startswith("RESULT "):
            results.append(json.loads(line[7:]))
            log("  ", line[7:])
        elif line.startswith("@") and on_ask:
            p.stdin.write("%d\n" % on_ask(line[1:]))
            p.stdin.flush()
    if p.wait(600) != 0:
        sys.exit("web_perf.mjs %s failed" % args[0])
    return {r["what"]: r for r in results}


def small(d):
    data = os.path.join(d, "small")
    secrets = os.path.join(d, "small.txt")
    run([GRIDSENSE, "terminal", "add", "--count", str(SMALL_N), "--prefix", "WB", "--secrets-out",
         secrets, "--data", data])
    add_user(data)
    srv = Server(data).start()
    sim = sim_start(srv.tport, secrets, SMALL_N, 3600, ["--disturb", "0", "--quiet"])
    try:
        wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == SMALL_N, 60, "online")
        time.sleep(3)
        return node(["cold", srv.hport, "bench", PW, "WB0001", SCOPE_S])
    finally:
        sim.terminate()
        sim.wait(60)
        srv.stop()


def fleet(d):
    data = os.path.join(d, "fleet")
    secrets = os.path.join(d, "fleet.txt")
    run([GRIDSENSE, "terminal", "add", "--count", str(N + 1), "--prefix", "WF", "--secrets-out",
         secrets, "--data", data], timeout=600)
    add_user(data)
    lines = [x for x in open(secrets).read().splitlines() if x and not x.startswith("#")]
    probe_file = os.path.join(d, "probe.txt")
    open(probe_file, "w").write(lines[N] + "\n")
    probe_id = lines[N].split()[0]
    srv = Server(data, extra=["--no-analysis", "--sync", "normal"]).start()
    common = ["--disturb", "0", "--quiet", "--status-interval", str(STATUS_S)]
    sim = sim_start(srv.tport, secrets, N, 3600, common + ["--connect-rate", "500"])
    state = {"probe": sim_start(srv.tport, probe_file, 1, 3600, common)}
    cpu0 = None

    def ask(word):
        if word == "kill":
            state["probe"].kill()
            t = time.time()
            state["probe"].wait(30)
        else:
            t = time.time()
            state["probe"] = sim_start(srv.tport, probe_file, 1, 3600, common)
        return int(t * 1000)

    try:
        wait_for(lambda: srv.json("/api/v1/health")[1]["terminals_online"] == N + 1, 300, "online")
        time.sleep(5)
        cpu0 = cpu_s(srv.proc.pid), time.time()
        r = node(["fleet", srv.hport, "bench", PW, probe_id, WINDOW_S, CHANGES], ask)
        cpu1 = cpu_s(srv.proc.pid), time.time()
        r["server_cpu_pct"] = (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1]) * 100
        return r
    finally:
        state["probe"].kill()
        sim.terminate()
        sim.wait(120)
        srv.stop()


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    with TempDir() as d:
        log("web: cold load and oscilloscope (%d terminals, analysis on)" % SMALL_N)
        s = small(d)
        log("web: fleet page with %d streaming terminals" % N)
        f = fleet(d)
    res = {"small": s, "fleet": f}
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)
    c, sc = s["cold"], s["scope"]
    fl, ch = f["fleet"], f["changes"]
    fps = "%.1f" % sc["fps"] if sc.get("fps") is not None else "not exposed"
    print("## Web app (issue 9)\n")
    ver = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.split()
    print("Chromium %s (Debian, headless) driven by playwright-core, 1280x800, loopback.\n"
          % (ver[1] if len(ver) > 1 else "?"))
    print("| measure | value |\n|---|---|")
    print("| first load, cold cache: login page shown | %d ms (DOMContentLoaded %d ms, load %d ms) |" % (c["login_page_ms"], c["dcl_ms"], c["load_ms"]))
    print("| log in to fleet table drawn | %d ms |" % c["fleet_after_login_ms"])
    print("| log in to live feed connected | %d ms |" % c["feed_live_after_login_ms"])
    print("| app files on the wire (gzip) / uncompressed | %.1f KB / %.1f KB (%d files) |" % (c["bytes_compressed"] / 1024, c["bytes_uncompressed"] / 1024, c["files"]))
    print("| oscilloscope, 6 channels live: frames drawn/s | %s |" % fps)
    print("| oscilloscope page: main-thread CPU | %.1f %% of a core |" % sc["main_thread_cpu_pct"])
    print("| fleet page, %d terminals streaming (STATUS every %d s): main-thread CPU | %.1f %% of a core (server %.0f %%) |" % (fl["rows"], STATUS_S, fl["main_thread_cpu_pct"], f["server_cpu_pct"]))
    print("| fleet page: table of %d rows drawn after login | %d ms (login %s ms, GET /terminals %s ms, GET /events %s ms); JS heap %.1f MB |"
          % (fl["rows"], fl["table_ms"], fl.get("login_ms"), fl.get("terminals_ms"), fl.get("events_ms"), fl["js_heap_mb"]))
    print("| link dropped -> row shows offline (median / max of %d) | %d / %d ms |" % (ch["n"], ch["offline_ms_median"], ch["offline_ms_max"]))
    print("| simulator started -> row shows online (median / max) | %d / %d ms |" % (ch["online_ms_median"], ch["online_ms_max"]))


if __name__ == "__main__":
    main()
