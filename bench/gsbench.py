#!/usr/bin/env python3
"""Helpers for bench/run.sh: read /proc and /metrics, poll a running benchmark, analyse the
raw artefacts of one run into a result JSON, and print the markdown report with medians.

Only the Python standard library (Debian's python3). Subcommands:

  machine                              machine description as JSON
  port PORTFILE KEY                    a port from the server's --port-file
  proc PID                             {"rss_kib", "cpu_s", "threads", "write_bytes"} of PID
  metric HTTPPORT NAME                 one metric value (sum over labels)
  wait-metric HTTPPORT NAME VALUE TIMEOUT
                                       polls until NAME >= VALUE; prints "T HTTPMAX": the wall
                                       time (time.time()) when it was first seen and the slowest
                                       /metrics answer; exit 1 on timeout
  poll HTTPPORT SRVPID SIMPID OUT INTERVAL
                                       one JSON line per INTERVAL until SIMPID exits
  kv K=V...                             JSON object from pairs (K=@FILE embeds a JSON file)
  storm-log LOG N                      handshake timing of the last server start in LOG
  ingest RUNDIR                        RUNDIR/meta.json + sim.json + poll.jsonl -> result JSON
  report RESULTSDIR                    markdown section with medians of every run in RESULTSDIR
"""

import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

POLL_METRICS = (
    "gridsense_terminals_online",
    "gridsense_connections_open",
    "gridsense_handshakes_ok_total",
    "gridsense_handshakes_failed_total",
    "gridsense_blocks_received_total",
    "gridsense_blocks_stored_total",
    "gridsense_blocks_duplicate_total",
    "gridsense_blocks_failed_total",
    "gridsense_bytes_received_total",
    "gridsense_sessions_paused",
    "gridsense_ingest_inflight_bytes",
    "gridsense_store_queue_items",
    "gridsense_store_queue_bytes",
    "gridsense_store_batches_total",
    "gridsense_store_errors_total",
)


# ---------------------------------------------------------------- /proc and /metrics

def read_file(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def stat_cpu(path):
    """utime+stime in seconds from a /proc/.../stat file, or None."""
    s = read_file(path)
    if not s:
        return None
    fields = s[s.rfind(")") + 2:].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_info(pid):
    pid = int(pid)
    st = read_file("/proc/%d/status" % pid)
    if not st:
        return None
    rss = None
    for line in st.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    threads = {}
    for tdir in glob.glob("/proc/%d/task/*" % pid):
        c = stat_cpu(tdir + "/stat")
        if c is not None:
            tid = int(os.path.basename(tdir))
            threads["main" if tid == pid else str(tid)] = c
    wb = None
    for line in read_file("/proc/%d/io" % pid).splitlines():
        if line.startswith("write_bytes:"):
            wb = int(line.split()[1])
    return {"rss_kib": rss, "cpu_s": stat_cpu("/proc/%d/stat" % pid), "threads": threads,
            "write_bytes": wb}


def metrics(hport, timeout=30):
    import urllib.request  # here: keeps the start-up of the other subcommands short
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % int(hport), timeout=timeout) as r:
        txt = r.read().decode()
    out = {}
    for line in txt.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        except ValueError:
            pass
    return out


# ---------------------------------------------------------------- machine

def machine():
    cpu = "?"
    for line in read_file("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in read_file("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    virt = "hypervisor" in read_file("/proc/cpuinfo")
    # block device under the directory the benchmarks write to
    tmp = os.environ.get("TMPDIR", "/tmp")
    disk = "?"
    try:
        df = subprocess.run(["df", "--output=source,fstype", tmp], capture_output=True, text=True)
        src, fstype = df.stdout.splitlines()[1].split()
        dev = os.path.basename(os.path.realpath(src))
        base = dev.rstrip("0123456789")
        if base.startswith("nvme") and "p" in dev:
            base = dev.rsplit("p", 1)[0]
        rot = read_file("/sys/block/%s/queue/rotational" % base).strip()
        drv = os.path.basename(os.path.realpath("/sys/block/%s/device/driver" % base)) \
            if os.path.exists("/sys/block/%s/device/driver" % base) else ""
        kind = "rotational=%s" % rot if rot else "?"
        if drv == "virtio_blk" or base.startswith("vd"):
            kind = "virtio block device (virtual disk; backing storage unknown, reports rotational=%s)" % rot
        elif rot == "0":
            kind = "SSD/NVMe (non-rotational)"
        elif rot == "1":
            kind = "rotational"
        disk = "%s (%s) %s" % (src, fstype, kind)
    except (OSError, ValueError, IndexError):
        pass
    build = os.environ.get("GS_BUILD", "build")
    btype = "?"
    for line in read_file(os.path.join(build, "CMakeCache.txt")).splitlines():
        if line.startswith("CMAKE_BUILD_TYPE:"):
            btype = line.split("=", 1)[1] or "(none)"
    cc = "?"
    for line in read_file(os.path.join(build, "CMakeCache.txt")).splitlines():
        if line.startswith("CMAKE_C_COMPILER:"):
            cc = line.split("=", 1)[1]
    try:
        ccv = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        ccv = cc
    try:
        if os.environ.get("GS_SOURCE_DESC"):
            raise OSError("described by the caller")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            commit += " (+ local changes)"
    except OSError:
        commit = os.environ.get("GS_SOURCE_DESC", "?")
    try:
        ver = subprocess.run([os.path.join(build, "gridsense"), "--version"], capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        ver = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "virtualised": virt,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": "Debian " + read_file("/etc/debian_version").strip(),
        "disk": disk,
        "nofile_hard": int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True,
                                          text=True).stdout.strip() or 0),
        "build_type": btype,
        "compiler": ccv,
        "version": ver,
        "commit": commit,
        "loadavg_at_start": read_file("/proc/loadavg").split()[:3],
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---------------------------------------------------------------- polling

def wait_metric(hport, name, value, timeout):
    """Prints "T HTTPMAX": the wall time when NAME >= VALUE was first seen and the slowest
    /metrics answer while waiting (the HTTP server shares the loop with the terminals)."""
    deadline = time.time() + float(timeout)
    slowest = 0.0
    while time.time() < deadline:
        t0 = time.time()
        try:
            v = metrics(hport).get(name, 0.0)
            t = time.time()
            slowest = max(slowest, t - t0)
            if v >= float(value):
                print("%.3f %.3f" % (t, slowest))
                return 0
        except OSError:
            pass
        time.sleep(0.02)
    print("%.3f %.3f" % (time.time(), slowest))
    return 1


def kv(args):
    """k=v pairs to a JSON object: numbers become numbers, k=@FILE embeds FILE's JSON."""
    out = {}
    for a in args:
        k, v = a.split("=", 1)
        if v.startswith("@"):
            try:
                out[k] = json.load(open(v[1:]))
            except (OSError, ValueError):
                out[k] = None
            continue
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def poll(hport, srv, sim, out, interval):
    interval = float(interval)
    with open(out, "w") as f:
        while os.path.exists("/proc/%d" % int(sim)):
            t0 = time.time()
            rec = {"t": t0, "srv": proc_info(srv), "sim": proc_info(sim)}
            try:
                m = metrics(hport, timeout=10)
                rec["m"] = {k: m.get(k) for k in POLL_METRICS}
            except OSError as e:
                rec["m"] = None
                rec["err"] = str(e)
            rec["http_s"] = round(time.time() - t0, 4)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            time.sleep(max(0.0, interval - (time.time() - t0)))


# ---------------------------------------------------------------- storm

def parse_ts(line):
    # 2026-11-25T00:22:18.618Z LEVEL ...
    try:
        d = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
        return d.replace(tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def storm_log(path, n):
    """Times of the last server start in a log shared by several starts."""
    lines = open(path, errors="replace").read().splitlines()
    start_i = None
    for i, line in enumerate(lines):
        if " gridsense " in line and " terminals on " in line:
            start_i = i
    if start_i is None:
        return {"error": "no start line in log"}
    t_start = parse_ts(lines[start_i])
    online = [parse_ts(l) for l in lines[start_i:] if " online from " in l]
    online = [t for t in online if t is not None]
    online.sort()
    res = {"log_logins": len(online)}
    if len(online) >= n:
        t_all = online[n - 1]
        res["log_all_online_s"] = round(t_all - t_start, 3)
        res["log_first_login_s"] = round(online[0] - t_start, 3)
        # busiest one-second window (logins per second the server reached at its peak)
        best, j = 0, 0
        for i in range(len(online)):
            while online[i] - online[j] >= 1.0:
                j += 1
            best = max(best, i - j + 1)
        res["log_peak_logins_per_s"] = best
    return res


# ---------------------------------------------------------------- ingest analysis

def load_jsonl(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def ingest(rundir):
    meta = json.load(open(os.path.join(rundir, "meta.json")))
    sim = json.load(open(os.path.join(rundir, "sim.json")))
    polls = [p for p in load_jsonl(os.path.join(rundir, "poll.jsonl"))
             if p.get("m") and p.get("srv") and p.get("sim")]
    n, dur, rate, nch = meta["n"], meta["duration_s"], meta["rate"], meta["channels"]
    sps_block = meta["samples_per_block"]  # sample sets per waveform block
    t_sim0 = meta["t_sim_start"]
    res = dict(meta)
    res["sim"] = sim
    # steady window: all online, generation running, before the simulator's drain
    w0 = t_sim0 + meta["warmup_s"]
    w1 = t_sim0 + dur - 0.5
    win = [p for p in polls if w0 <= p["t"] <= w1]
    if len(win) >= 2:
        a, b = win[0], win[-1]
        dt = b["t"] - a["t"]
        dblk = b["m"]["gridsense_blocks_stored_total"] - a["m"]["gridsense_blocks_stored_total"]
        samples = dblk * sps_block * nch
        srv_cpu = b["srv"]["cpu_s"] - a["srv"]["cpu_s"]
        sim_cpu = b["sim"]["cpu_s"] - a["sim"]["cpu_s"]
        thr = {}
        for k, v in b["srv"]["threads"].items():
            thr[k] = v - a["srv"]["threads"].get(k, 0.0)
        loop_cpu = thr.pop("main", 0.0)
        other_cpu = sum(thr.values())
        wb = None
        if b["srv"].get("write_bytes") is not None and a["srv"].get("write_bytes") is not None:
            wb = b["srv"]["write_bytes"] - a["srv"]["write_bytes"]
        dbytes = b["m"]["gridsense_bytes_received_total"] - a["m"]["gridsense_bytes_received_total"]
        res["window_s"] = round(dt, 2)
        res["stored_samples_per_s"] = samples / dt if dt > 0 else None
        res["stored_blocks_per_s"] = dblk / dt if dt > 0 else None
        res["received_mib_per_s"] = dbytes / dt / 1048576 if dt > 0 else None
        res["disk_write_mib_per_s"] = wb / dt / 1048576 if (wb is not None and dt > 0) else None
        res["srv_cpu_util"] = srv_cpu / dt  # cores
        res["srv_loop_cpu_util"] = loop_cpu / dt
        res["srv_other_threads_cpu_util"] = other_cpu / dt
        res["sim_cpu_util"] = sim_cpu / dt
        res["srv_cpu_s_per_msample"] = srv_cpu / (samples / 1e6) if samples else None
        res["sim_cpu_s_per_msample"] = sim_cpu / (samples / 1e6) if samples else None
        q = [p["m"]["gridsense_store_queue_items"] for p in win]
        half = len(q) // 2
        res["store_queue_max"] = max(q)
        res["store_queue_mean_first_half"] = statistics.mean(q[:half]) if half else q[0]
        res["store_queue_mean_second_half"] = statistics.mean(q[half:])
        res["inflight_max_mib"] = max(p["m"]["gridsense_ingest_inflight_bytes"] for p in win) / 1048576
        res["paused_max"] = max(p["m"]["gridsense_sessions_paused"] for p in win)
        res["online_min"] = min(p["m"]["gridsense_terminals_online"] for p in win)
        res["srv_rss_max_kib"] = max(p["srv"]["rss_kib"] or 0 for p in win)
        res["sim_rss_max_kib"] = max(p["sim"]["rss_kib"] or 0 for p in win)
        res["http_metrics_max_s"] = max(p["http_s"] for p in win)
    offered = n * rate * nch
    res["offered_samples_per_s"] = offered
    gen = sim.get("samples_generated", 0)
    res["generated_fraction"] = gen / (n * rate * dur) if n and dur else None
    res["drain_s"] = round(meta["t_sim_end"] - t_sim0 - dur, 2)
    all_acked = (sim.get("unacked", 1) == 0 and sim.get("blocks_dropped", 1) == 0
                 and sim.get("blocks_acked") == sim.get("blocks_generated"))
    res["all_acked"] = all_acked
    growing = False
    if "store_queue_mean_second_half" in res:
        growing = res["store_queue_mean_second_half"] > 2 * res["store_queue_mean_first_half"] + 50
    res["queue_growing"] = growing
    res["kept_up"] = bool(all_acked and not growing and res.get("paused_max", 1) == 0
                          and (res["generated_fraction"] or 0) >= 0.97
                          and res.get("online_min", 0) >= n)
    res["ack_p50_ms"] = sim.get("ack_p50_ms")
    res["ack_p99_ms"] = sim.get("ack_p99_ms")
    return res


# ---------------------------------------------------------------- report

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


def si(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return "%.2f M" % (v / 1e6)
    if v >= 1e3:
        return "%.1f k" % (v / 1e3)
    return "%.0f" % v


def report(resdir):
    mach = json.load(open(os.path.join(resdir, "machine.json")))
    cfg = json.load(open(os.path.join(resdir, "config.json")))
    runs = []
    for p in sorted(glob.glob(os.path.join(resdir, "*.json"))):
        if os.path.basename(p) in ("machine.json", "config.json"):
            continue
        try:
            runs.append(json.load(open(p)))
        except ValueError:
            pass
    o = []
    o.append("## gridsense benchmark results (%s%s)" % (mach["date_utc"],
                                                        ", QUICK mode" if cfg.get("quick") else ""))
    o.append("")
    o.append("Machine: %s, %d cores%s, %.1f GiB RAM, Linux %s, %s; disk: %s. "
             "Build: %s, %s; %s, commit %s. Everything on 127.0.0.1; the simulator and the server "
             "share the same cores." % (mach["cpu"], mach["cores"],
                                        " (virtual machine)" if mach["virtualised"] else "",
                                        mach["ram_gib"], mach["kernel"], mach["os"], mach["disk"],
                                        mach["build_type"], mach["compiler"], mach["version"],
                                        mach["commit"]))
    o.append("")
    o.append("Medians of the repetitions in this run (the `reps` column); raw JSON per run in `%s`."
             % resdir)
    o.append("")

    idle = [r for r in runs if r.get("bench") == "idle"]
    if idle:
        n = idle[0]["n"]
        o.append("### 1. Idle terminals held (N = %d, `--no-stream --status-interval %s`, sync %s)"
                 % (n, cfg.get("idle_status_interval"), idle[0].get("sync")))
        o.append("")
        o.append("| metric | median | runs |")
        o.append("|---|---:|---|")

        def row(label, key, spec="%.1f"):
            vals = [r.get(key) for r in idle]
            o.append("| %s | %s | %s |" % (label, fmt(med(vals), spec),
                                          ", ".join(fmt(v, spec) for v in vals)))
        row("server RSS before the simulator (MiB)", "srv_rss_before_mib")
        row("server RSS with all N online (MiB)", "srv_rss_online_mib")
        row("**server RSS per connection (KiB)**", "srv_kib_per_conn", "%.2f")
        row("simulator RSS with all N online (MiB)", "sim_rss_online_mib")
        row("simulator RSS per terminal (KiB)", "sim_kib_per_term", "%.2f")
        row("time until all N online at --connect-rate %s (s)" % cfg.get("idle_connect_rate"),
            "connect_all_s", "%.2f")
        row("server CPU while holding N idle (% of one core)", "srv_idle_cpu_pct", "%.2f")
        row("simulator CPU while holding N idle (% of one core)", "sim_idle_cpu_pct", "%.2f")
        row("server RSS after the reconnect storm (MiB)", "srv_rss_after_storm_mib")
        o.append("")

    storm = [r for r in runs if r.get("bench") == "storm"]
    if storm:
        n = storm[0]["n"]
        o.append("### 2. Reconnect storm (N = %d; server SIGKILLed, down %.1f s, restarted on the "
                 "same port; simulator `--backoff-min-ms %s --backoff-max-ms %s`, full jitter)"
                 % (n, storm[0]["down_s"], storm[0]["backoff_min_ms"], storm[0]["backoff_max_ms"]))
        o.append("")
        o.append("| metric | median | runs |")
        o.append("|---|---:|---|")

        def srow(label, key, spec="%.0f"):
            vals = [r.get(key) for r in storm]
            o.append("| %s | %s | %s |" % (label, fmt(med(vals), spec),
                                          ", ".join(fmt(v, spec) for v in vals)))
        srow("restart: exec until port file (s)", "restart_s", "%.3f")
        srow("port file until /metrics shows all N online (s)", "poll_all_online_s", "%.2f")
        srow("**handshakes/s = N / that time**", "poll_handshakes_per_s")
        srow("handshakes_ok_total delta / that time", "poll_handshakes_ok_delta_per_s")
        srow("server log: listening until N-th login (s)", "log_all_online_s", "%.2f")
        srow("handshakes/s from the log (N / log time)", "log_handshakes_per_s")
        srow("peak logins in any 1 s window (log)", "log_peak_logins_per_s")
        srow("server CPU from restart until all online (cores)", "srv_cpu_util", "%.2f")
        srow("simulator CPU over the same time (cores)", "sim_cpu_util", "%.2f")
        srow("failed handshakes during the storm", "handshakes_failed")
        srow("simulator re-logins (whole run)", "sim_reconnects")
        srow("simulator connection attempts (whole run)", "sim_connect_attempts")
        srow("slowest /metrics answer during the storm (s)", "http_max_s", "%.2f")
        o.append("")

    ing = [r for r in runs if r.get("bench") == "ingest"]
    if ing:
        o.append("### 3./4. Sustained ingest and ack latency (%s sample sets/s per terminal x %d "
                 "channels, %d ms blocks, %s s per run after a %s s warm-up window is skipped)"
                 % (ing[0]["rate"], ing[0]["channels"], ing[0]["block_ms"], ing[0]["duration_s"],
                    ing[0]["warmup_s"]))
        o.append("")
        o.append("| sync | N | reps | offered samples/s | stored samples/s | kept up | server CPU "
                 "(cores) | loop / writer+other | server CPU s per M samples | simulator CPU "
                 "(cores) | sim CPU s per M samples | disk write MiB/s | max store queue | "
                 "ack p50 ms | ack p99 ms |")
        o.append("|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        keys = sorted({(r["sync"], r["n"]) for r in ing}, key=lambda k: (k[0] != "normal", k[1]))
        for sync, n in keys:
            rs = [r for r in ing if r["sync"] == sync and r["n"] == n]

            def m(k):
                return med([r.get(k) for r in rs])
            kept = sum(1 for r in rs if r.get("kept_up"))
            o.append("| %s | %d | %d | %s | %s | %d/%d | %s | %s / %s | %s | %s | %s | %s | %s | "
                     "%s | %s |" % (
                         sync, n, len(rs), si(m("offered_samples_per_s")),
                         si(m("stored_samples_per_s")), kept, len(rs), fmt(m("srv_cpu_util"), "%.2f"),
                         fmt(m("srv_loop_cpu_util"), "%.2f"), fmt(m("srv_other_threads_cpu_util"), "%.2f"),
                         fmt(m("srv_cpu_s_per_msample"), "%.3f"), fmt(m("sim_cpu_util"), "%.2f"),
                         fmt(m("sim_cpu_s_per_msample"), "%.3f"), fmt(m("disk_write_mib_per_s"), "%.1f"),
                         fmt(m("store_queue_max"), "%.0f"), fmt(m("ack_p50_ms"), "%.2f"),
                         fmt(m("ack_p99_ms"), "%.1f")))
        o.append("")
        # ratios full/normal at the same N
        ratios = []
        for sync, n in keys:
            if sync != "full":
                continue
            a = [r for r in ing if r["sync"] == "normal" and r["n"] == n]
            b = [r for r in ing if r["sync"] == "full" and r["n"] == n]
            if a and b:
                pa, pb = med([r.get("ack_p50_ms") for r in a]), med([r.get("ack_p50_ms") for r in b])
                ca = med([r.get("srv_cpu_s_per_msample") for r in a])
                cb = med([r.get("srv_cpu_s_per_msample") for r in b])
                if pa and pb and ca and cb:
                    ratios.append("N=%d: ack p50 full/normal = %.2f, server CPU per M samples "
                                  "full/normal = %.2f" % (n, pb / pa, cb / ca))
        if ratios:
            o.append("Ratios (medians of this run): " + "; ".join(ratios) + ".")
            o.append("")
        o.append("*kept up* = every generated block acknowledged after the drain, none dropped, "
                 "no session paused by backpressure, all N online, the simulator generated >= 97 % "
                 "of the nominal samples and the store queue did not grow through the window. "
                 "Samples = sample sets x channels. CPU in cores = CPU seconds / wall seconds over "
                 "the window; *loop* is the libuv thread, *writer+other* the store writer.")
        o.append("")
    print("\n".join(o))


# ---------------------------------------------------------------- main

def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "machine":
        print(json.dumps(machine(), indent=1))
    elif cmd == "port":
        print(json.load(open(a[0]))[a[1]])
    elif cmd == "proc":
        print(json.dumps(proc_info(a[0])))
    elif cmd == "metric":
        print("%.0f" % metrics(a[0]).get(a[1], 0.0))
    elif cmd == "wait-metric":
        return wait_metric(*a)
    elif cmd == "poll":
        poll(*a)
    elif cmd == "storm-log":
        print(json.dumps(storm_log(a[0], int(a[1]))))
    elif cmd == "ingest":
        print(json.dumps(ingest(a[0]), indent=1))
    elif cmd == "kv":
        print(json.dumps(kv(a), indent=1))
    elif cmd == "report":
        report(a[0])
    else:
        print("unknown subcommand %s" % cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
