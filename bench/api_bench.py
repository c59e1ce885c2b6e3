#!/usr/bin/env python3
"""HTTP API benchmark (issue 8, section 7), all against one server in one run:

  1. authenticated GET /api/v1/terminals/{id} and GET /api/v1/health with API_CONNS keep-alive
     connections (wrk, API_WRK_S seconds each): requests/s, latency p50/p99;
  2. stored-waveform latency over HTTP: the last 10 s of a terminal (envelope of 2000 points, and
     raw: 40,000 sample sets x 6 channels), and an event's waveform (median and max of API_REPS);
  3. live feed fan-out: API_WS clients, each subscribed to one terminal's waveform frames:
     messages/s delivered, delivery latency p50/p99 (receive time minus the message's
     server time, which is stamped when the block is received), server CPU;
while API_N simulated terminals stream 4 kS/s x 6 channels beside it. The analysis is off
(--no-analysis): on these 2 cores, 1,000 terminals' analysis alone needs more than the machine
(docs/benchmarks.md, section C); the event of step 2 is therefore a synthetic row over stored
blocks. Everything on 127.0.0.1, in a temp dir (/dev/shm when present); every process stops by
itself. Prints a markdown report; --json FILE writes the figures.

Environment: API_N (1000), API_CONNS (64), API_WRK_S (10), API_WRK_THREADS (1), API_REPS (15),
API_WS (100), API_WS_S (10), GS_BUILD (build).
"""
import argparse
import base64
import calendar
import http.client
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("GS_BUILD", os.path.join(ROOT, "build"))
GS = os.path.join(BUILD, "gridsense")
SIM = os.path.join(BUILD, "gridsense-sim")
N = int(os.environ.get("API_N", "1000"))
CONNS = int(os.environ.get("API_CONNS", "64"))
WRK_S = int(os.environ.get("API_WRK_S", "10"))
WRK_THREADS = int(os.environ.get("API_WRK_THREADS", "1"))
REPS = int(os.environ.get("API_REPS", "15"))
WS_N = int(os.environ.get("API_WS", "100"))
WS_S = int(os.environ.get("API_WS_S", "10"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else float("nan")


def wrk(port, path, token):
    out = subprocess.run(["wrk", "-t%d" % WRK_THREADS, "-c%d" % CONNS, "-d%ds" % WRK_S,
                          "--latency", "-H", "Authorization: Bearer " + token,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=WRK_S + 60).stdout
    r = {"path": path}
    for line in out.splitlines():
        s = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(s[1])
        elif len(s) == 2 and s[0] in ("50%", "99%"):
            v = s[1]
            ms = float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") \
                else float(v[:-1]) * 1000
            r["p" + s[0][:-1]] = ms
        elif "Non-2xx" in line:
            r["non2xx"] = int(s[-1])
    return r


def timed_get(port, path, token, reps):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ts, size = [], 0
    for _ in range(reps):
        t = time.perf_counter()
        c.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read()
        ts.append((time.perf_counter() - t) * 1e3)
        if r.status != 200:
            raise SystemExit("GET %s: %d %s" % (path, r.status, body[:200]))
        size = len(body)
    c.close()
    return {"path": path, "median_ms": pct(ts, 50), "max_ms": max(ts), "bytes": size}


def ws_connect(port, token, src):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /api/v1/live HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (port, key, token)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise SystemExit("live feed refused: %r" % head[:100])
    return s


def ws_send(s, obj):
    data = json.dumps(obj).encode()
    mask = os.urandom(4)
    hdr = bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big") if len(data) >= 126 else \
        bytes([0x81, 0x80 | len(data)])
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def ws_frames(buf):
    """Complete frames from buf: (list of (opcode, payload), rest)."""
    out = []
    while len(buf) >= 2:
        n, off = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < off + n:
            break
        out.append((buf[0] & 0x0F, buf[off:off + n]))
        buf = buf[off + n:]
    return out, buf


def rfc3339(t):
    base, ms = t[:-1].split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gs-api-bench-",
                           dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    data = os.path.join(tmp, "data")
    secrets = os.path.join(tmp, "secrets.txt")
    procs = []
    try:
        subprocess.run([GS, "terminal", "add", "--count", str(N), "--prefix", "B",
                        "--secrets-out", secrets, "--data", data, "--log-level", "warn"],
                       check=True, capture_output=True)
        subprocess.run([GS, "user", "add", "bench", "--role", "admin", "--data", data],
                       check=True, capture_output=True)
        token = subprocess.run([GS, "token", "create", "bench", "--data", data], check=True,
                               capture_output=True, text=True).stdout.strip()
        pf = os.path.join(tmp, "ports.json")
        cfg = os.path.join(tmp, "gs.ini")
        open(cfg, "w").write("[http]\nmax_connections_per_address = 4096\n")
        srv = subprocess.Popen([GS, "serve", "--data", data, "--config", cfg, "--terminals",
                                "127.0.0.1:0", "--http", "127.0.0.1:0", "--port-file", pf,
                                "--sync", "normal", "--no-analysis", "--log-level", "warn"],
                               stdout=open(os.path.join(tmp, "server.log"), "w"),
                               stderr=subprocess.STDOUT)
        procs.append(srv)
        for _ in range(300):
            if os.path.exists(pf) and os.path.getsize(pf):
                break
            time.sleep(0.1)
        ports = json.load(open(pf))
        hport = ports["http"]
        total_s = 2 * (WRK_S + 5) + 40 + WS_S + 30
        sim = subprocess.Popen([SIM, "--server", "127.0.0.1:%d" % ports["terminals"], "--secrets",
                                secrets, "--terminals", str(N), "--duration", str(total_s),
                                "--disturb", "0"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        procs.append(sim)

        def online():
            c = http.client.HTTPConnection("127.0.0.1", hport, timeout=30)
            c.request("GET", "/api/v1/health")
            return json.loads(c.getresponse().read())["terminals_online"]
        t0 = time.monotonic()
        while online() < N and time.monotonic() - t0 < 120:
            time.sleep(1)
        log("%d terminals online; streaming" % online())
        time.sleep(12)  # 10 s of stored history for the waveform queries

        res = {"n": N, "conns": CONNS, "wrk_s": WRK_S, "wrk_threads": WRK_THREADS}
        c0, w0 = cpu_s(srv.pid), time.monotonic()
        res["health"] = wrk(hport, "/api/v1/health", token)
        res["terminal"] = wrk(hport, "/api/v1/terminals/B0001", token)
        res["http_cpu_cores"] = (cpu_s(srv.pid) - c0) / (time.monotonic() - w0)
        log("wrk done")

        # a synthetic event over the stored blocks of B0001, 2 s ago
        db = sqlite3.connect(os.path.join(data, "gridsense.db"), timeout=30)
        now = time.time_ns()
        cur = db.execute("INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, extreme,"
                         " extreme_pct, reference, channels, worst_channel, flags, detected_ns,"
                         " channel_names, worst_channel_name) VALUES('B0001', 'dip', ?, 200000000,"
                         " 40, 70, 57.7, 7, 0, 0, ?, 'Ua,Ub,Uc', 'Ua')",
                         (now - 3 * 10**9, now))
        db.commit()
        ev = cur.lastrowid
        db.close()
        res["wave_env"] = timed_get(hport, "/api/v1/terminals/B0002/waveform", token, REPS)
        res["wave_raw"] = timed_get(hport, "/api/v1/terminals/B0002/waveform?max_points=100000",
                                    token, REPS)
        res["event_wave"] = timed_get(hport, "/api/v1/events/%d/waveform" % ev, token, REPS)
        log("waveforms done")

        # live feed fan-out
        socks = []
        for i in range(WS_N):
            s = ws_connect(hport, token, "127.0.2.%d" % (1 + i // 200))
            ws_send(s, {"subscribe": ["terminal/B%04d/wave" % (1 + i % N)]})
            socks.append(s)
        time.sleep(2)
        bufs = {s: b"" for s in socks}
        lat, nmsg, nbytes = [], 0, 0
        c0, w0 = cpu_s(srv.pid), time.monotonic()
        end = w0 + WS_S
        while time.monotonic() < end:
            r, _, _ = select.select(socks, [], [], 0.2)
            now = time.time()
            for s in r:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise SystemExit("a live client was closed")
                frames, bufs[s] = ws_frames(bufs[s] + chunk)
                for op, p in frames:
                    if op != 1:
                        continue
                    nmsg += 1
                    nbytes += len(p)
                    if b'"topic":"terminal/' in p[:40]:
                        m = json.loads(p)
                        lat.append((now - rfc3339(m["time"])) * 1e3)
        el = time.monotonic() - w0
        res["ws"] = {"clients": WS_N, "topics_per_client": 1, "seconds": el,
                     "msgs_per_s": nmsg / el, "mbytes_per_s": nbytes / el / 1e6,
                     "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                     "server_cpu_cores": (cpu_s(srv.pid) - c0) / el}
        for s in socks:
            s.close()
        log("live feed done")
        srv.send_signal(signal.SIGTERM)
        sim.send_signal(signal.SIGINT)
        sim.wait(120)
        srv.wait(120)

        print("## HTTP API (`bench/api_bench.py`, %d terminals streaming 4 kS/s x 6 ch beside it, "
              "analysis off)\n" % N)
        print("| request | connections | req/s | p50 ms | p99 ms | non-2xx |")
        print("|---|---:|---:|---:|---:|---:|")
        for k in ("health", "terminal"):
            r = res[k]
            print("| GET %s (token) | %d | %.0f | %.2f | %.2f | %d |" % (
                r["path"], CONNS, r.get("rps", 0), r.get("p50", float("nan")),
                r.get("p99", float("nan")), r.get("non2xx", 0)))
        print("\nServer CPU during the two wrk runs: %.2f cores.\n" % res["http_cpu_cores"])
        print("| waveform request | reply bytes | median ms | max ms (of %d) |" % REPS)
        print("|---|---:|---:|---:|")
        for k, name in (("wave_env", "last 10 s, envelope of 2000"),
                        ("wave_raw", "last 10 s, raw (40,000 sets x 6 ch)"),
                        ("event_wave", "event waveform (1.7 s, RMS(1/2))")):
            r = res[k]
            print("| %s | %d | %.1f | %.1f |" % (name, r["bytes"], r["median_ms"], r["max_ms"]))
        w = res["ws"]
        print("\n| live feed | clients x topics | messages/s | MB/s | latency p50 ms | p99 ms | "
              "server CPU (cores) |")
        print("|---|---|---:|---:|---:|---:|---:|")
        print("| waveform frames (10/s per terminal) | %d x %d | %.0f | %.2f | %.1f | %.1f | %.2f |" % (
            w["clients"], w["topics_per_client"], w["msgs_per_s"], w["mbytes_per_s"],
            w["p50_ms"], w["p99_ms"], w["server_cpu_cores"]))
        if args.json:
            json.dump(res, open(args.json, "w"), indent=1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
