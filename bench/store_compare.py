#!/usr/bin/env python3
"""Ingest on SQLite vs PostgreSQL (bench/run.sh case "store"; docs/benchmarks.md, section
"PostgreSQL vs SQLite (ingest)").

For each N in --n and each backend in --backends (N-major, the backends interleaved so drift of
a shared machine spreads over both), one run:

  1. a fresh store: SQLite in a temp data dir (`--sync full`, the server's default), or a fresh
     throwaway PostgreSQL cluster (tests/integ/pgcluster.py, Debian's binaries, Unix socket only)
     with PostgreSQL's safe defaults: fsync on, synchronous_commit on, full_page_writes on,
     shared_buffers 128MB (PostgreSQL's default; the test harness's 32MB is raised back). Both
     engines then make a batch durable before COMMIT returns, and gridsense acknowledges only
     what a COMMIT covered: the same durability on both sides;
  2. `gridsense terminal add --count N` (through `--config` on PostgreSQL, as every CLI command);
  3. `gridsense serve` on 127.0.0.1 (port 0, --port-file), then `gridsense-sim --terminals N
     --duration D --drain DRAIN --ack-latency` (codec: whatever the server announces, unless
     --codec is given; default 4000 sample sets/s x 6 channels, 100 ms blocks);
  4. every --poll s until the simulator exits: /metrics, /proc of the server (per thread), of the
     simulator and of every process of the PostgreSQL cluster, /proc/stat (the whole machine)
     and /proc/loadavg;
  5. the server is stopped (SIGTERM), the store's size read, the cluster stopped and removed.

The steady window runs from WARMUP s after the simulator starts to 0.5 s before its duration
ends (bench/gsbench.py's `ingest`, which also decides "kept up": every block acknowledged after
the drain, none dropped, no session paused, all N online, >= 97 % of the nominal samples
generated, the store queue not growing). On top of that, per run:

  - gridsense CPU per thread: the loop (main thread), the store writer (the first thread the
    server creates: store_open starts it before the analysis workers, backfill and web threads;
    perf confirmed it, see docs/benchmarks.md) and the rest;
  - PostgreSQL CPU: the sum over the postmaster and all its children (plus the CPU of children
    reaped during the window, from the postmaster's cutime/cstime), by role (client backends,
    walwriter, checkpointer, background writer, autovacuum, ...) and the busiest backend;
    SQLite works inside the gridsense process, so "gridsense + PostgreSQL" is the fair total;
  - disk: write_bytes from /proc/PID/io (gridsense; + every postgres process) over the window,
    and the store's size after the run minus before (SQLite: gridsense.db*; PostgreSQL:
    pg_database_size and the whole cluster directory) per block stored;
  - the whole machine's busy cores from /proc/stat, and what is left after gridsense, the
    simulator and PostgreSQL: other work on a shared machine.

--profile-n N adds one more run at N per backend in --profile-backends (default postgresql),
after the others and excluded from the table, with `perf record -g -e cpu-clock` on the
server during the window (per thread, then the writer thread's top DSOs and symbols, go to
RESULTS/profile-BACKEND-N.txt) and, on PostgreSQL, pg_stat_statements loaded in that cluster
(calls and execution time per statement in its JSON). Every PostgreSQL run also records
pg_stat_database (commits) and pg_stat_user_tables (rows written per table) after the run.
`--report DIR` prints the table again from the JSONs in DIR.

Output: RESULTS/store-BACKEND-N.json (+ .poll.jsonl) per run, RESULTS/report.md and the same
markdown on stdout. Loopback and Unix sockets only; every process has a bounded life; servers,
simulator, clusters and temp dirs are removed on exit, also on failure or SIGTERM/SIGINT.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integ"))
import gsbench  # noqa: E402  (bench/gsbench.py: /proc, /metrics, machine, the ingest analysis)
import pgcluster  # noqa: E402  (tests/integ/pgcluster.py: the throwaway cluster)

CHANNELS = 6  # the simulator's terminals: 3 voltage + 3 current channels
MAX_PER_IP = 19000  # every simulated terminal comes from 127.0.0.1 (see bench/run.sh)
CLK_TCK = gsbench.CLK_TCK

_PROCS = []  # Popen objects we started, stopped by _cleanup_procs


def log(msg):
    sys.stderr.write("store_compare: %s\n" % msg)
    sys.stderr.flush()


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)  # leaves through the finally blocks and atexit


def stop_proc(p, sig=signal.SIGTERM, timeout=30):
    """Signals one process we started, waits, then SIGKILLs it."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log("pid %d did not stop within %d s; killing it" % (p.pid, timeout))
            p.kill()
            p.wait(30)
    if p in _PROCS:
        _PROCS.remove(p)
    return p.returncode


def _cleanup_procs():
    for p in list(reversed(_PROCS)):
        stop_proc(p, signal.SIGTERM, 20)


def start(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    _PROCS.append(p)
    return p


# ---------------------------------------------------------------- /proc readers

def stat_fields(pid):
    s = gsbench.read_file("/proc/%d/stat" % pid)
    if not s:
        return None
    return s[s.rfind(")") + 2:].split()


def machine_busy_s():
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat."""
    f = gsbench.read_file("/proc/stat").splitlines()[0].split()[1:]
    v = [int(x) for x in f]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    total = sum(v[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return (total - idle) / CLK_TCK


def schedstat(path):
    """[ns on a CPU, ns waiting on a run queue, timeslices] from a /proc/.../schedstat file: how
    much of its time a thread ran, waited for a CPU (a busy machine), or slept (waiting for work
    or for an answer) — the rest of the wall time."""
    v = gsbench.read_file(path).split()
    return [int(x) for x in v[:3]] if len(v) >= 3 else None


def srv_sched(pid):
    out = {}
    for tdir in glob.glob("/proc/%d/task/*" % pid):
        tid = int(os.path.basename(tdir))
        st = schedstat(tdir + "/schedstat")
        if st:
            out["main" if tid == pid else str(tid)] = st
    return out


def pg_role(cmdline):
    """The role of a postgres process from its title ("postgres: walwriter", "postgres: gridsense
    gs_bench [local] INSERT", ...)."""
    if not cmdline.startswith("postgres:"):
        return "postmaster"
    t = cmdline[len("postgres:"):].strip()
    if t.startswith(pgcluster.SUPERUSER + " "):
        return "backend"
    for r in ("autovacuum worker", "autovacuum launcher", "background writer", "checkpointer",
              "walwriter", "logical replication launcher", "stats collector", "archiver"):
        if t.startswith(r):
            return r
    return t.split()[0] if t else "other"


def pg_snapshot(pm):
    """CPU s, role and write_bytes of the postmaster and every child, plus the CPU of children
    the postmaster has reaped (cutime + cstime)."""
    out = {"procs": {}, "reaped_cpu_s": None}
    for pid in [pm] + pgcluster._children(pm):
        f = stat_fields(pid)
        if not f:
            continue
        cmd = gsbench.read_file("/proc/%d/cmdline" % pid).replace("\0", " ").strip()
        wb = None
        for line in gsbench.read_file("/proc/%d/io" % pid).splitlines():
            if line.startswith("write_bytes:"):
                wb = int(line.split()[1])
        out["procs"][str(pid)] = {"role": pg_role(cmd), "cpu_s": (int(f[11]) + int(f[12])) / CLK_TCK,
                                  "wb": wb, "sched": schedstat("/proc/%d/schedstat" % pid)}
        if pid == pm:
            out["reaped_cpu_s"] = (int(f[13]) + int(f[14])) / CLK_TCK
    return out


def dir_bytes(path):
    """Allocated bytes of every file under path (du)."""
    tot = 0
    for d, _, files in os.walk(path):
        for fn in files:
            try:
                st = os.lstat(os.path.join(d, fn))
                tot += st.st_blocks * 512
            except OSError:
                pass
    return tot


def sqlite_bytes(data):
    tot = 0
    for p in glob.glob(os.path.join(data, "gridsense.db*")):
        try:
            tot += os.stat(p).st_size
        except OSError:
            pass
    return tot


# ---------------------------------------------------------------- one run

class PgBench(pgcluster.PgCluster):
    """The test cluster with PostgreSQL's own default shared_buffers (128MB) instead of the
    harness's 32MB; fsync, synchronous_commit and full_page_writes stay on (the defaults)."""

    def __init__(self, stat_statements=False):
        super().__init__()
        self.stat_statements = stat_statements

    def start(self):
        super().start()
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("shared_buffers = 128MB  # PostgreSQL's default (store_compare.py)\n")
            if self.stat_statements:  # the profiled run only: statement counts and times
                f.write("shared_preload_libraries = 'pg_stat_statements'\n"
                        "pg_stat_statements.track_utility = on\n")
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                   "-t", "60", "-s", "stop"])
        self.started = False
        self.restart()
        return self

    def settings(self):
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
                 "wal_level", "shared_buffers", "max_wal_size", "checkpoint_timeout",
                 "wal_buffers", "wal_compression")
        out = {}
        for n in names:
            out[n] = self.psql("postgres", "SHOW %s" % n).strip()
        return out


def wait_port_file(pf, srv, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if srv.poll() is not None:
            raise RuntimeError("the server exited (%s) before writing its port file" % srv.returncode)
        try:
            with open(pf) as f:
                j = json.load(f)
            return j["terminals"], j["http"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise RuntimeError("no port file within %d s" % timeout)


def one_run(a, backend, n, work, profile=False):
    tag = "%s-%d%s" % (backend, n, "-profile" if profile else "")
    d = os.path.join(work, tag)
    os.makedirs(d)
    data = os.path.join(d, "data")
    os.makedirs(data, mode=0o700)  # serve would tighten it (and say so in its log)
    cfg = os.path.join(d, "gridsense.ini")
    pg = None
    srv = sim = perf = perf_pg = None
    res = {"bench": "store", "backend": backend, "n": n, "profile": profile}
    try:
        text = "[terminals]\nmax_handshakes_per_address = %d\n" % MAX_PER_IP
        if backend == "postgresql":
            t = time.time()
            pg = PgBench(stat_statements=profile).start()
            res["pg_start_s"] = round(time.time() - t, 2)
            res["pg_settings"] = pg.settings()
            url = pg.create_db("gs_bench")
            if profile:
                pg.psql("gs_bench", "CREATE EXTENSION pg_stat_statements")
            text += "[store]\nbackend = postgresql\nurl = %s\n" % url
        with open(cfg, "w") as f:
            f.write(text)
        os.chmod(cfg, 0o600)  # a store URL may carry a password: serve refuses readable files
        conf = ["--config", cfg]
        secrets = os.path.join(d, "secrets.txt")
        t = time.time()
        subprocess.run([a.gs, "terminal", "add", "--count", str(n), "--prefix", "S",
                        "--secrets-out", secrets, "--data", data, "--log-level", "warn"] + conf,
                       check=True, stdout=subprocess.DEVNULL, timeout=600)
        res["provision_s"] = round(time.time() - t, 2)

        def store_size():
            if pg:
                return int(pg.psql("gs_bench", "SELECT pg_database_size('gs_bench')").strip())
            return sqlite_bytes(data)
        res["store_bytes_before"] = store_size()
        if pg:
            res["pg_dir_bytes_before"] = dir_bytes(pg.data)

        pf = os.path.join(d, "ports.json")
        srvlog = open(os.path.join(d, "server.log"), "w")
        srv = start([a.gs, "serve", "--data", data, "--terminals", "127.0.0.1:0", "--http",
                     "127.0.0.1:0", "--port-file", pf, "--sync", "full", "--max-per-ip",
                     str(MAX_PER_IP), "--log-level", "info"] + conf,
                    stdout=srvlog, stderr=subprocess.STDOUT)
        tport, hport = wait_port_file(pf, srv)
        simargs = [a.sim, "--server", "127.0.0.1:%d" % tport, "--secrets", secrets,
                   "--terminals", str(n), "--rate", str(a.rate), "--block-ms", str(a.block_ms),
                   "--connect-rate", "5000", "--duration", str(a.duration), "--drain",
                   str(a.drain), "--ack-latency", "--quiet"]
        if a.codec:
            simargs += ["--codec", a.codec]
        simout = open(os.path.join(d, "sim.json"), "w")
        simerr = open(os.path.join(d, "sim.err"), "w")
        t_sim0 = time.time()
        sim = start(simargs, stdout=simout, stderr=simerr)
        pm = pg.postmaster_pid() if pg else None
        writer_tid = None
        pg_backend = None
        hard = t_sim0 + a.duration + a.drain + 60
        perf_at = t_sim0 + a.warmup + 1
        perf_data = os.path.join(d, "perf.data")
        with open(os.path.join(d, "poll.jsonl"), "w") as pf_out:
            while sim.poll() is None:
                t0 = time.time()
                if t0 > hard:
                    log("%s: the simulator outlived duration + drain + 60 s; stopping it" % tag)
                    stop_proc(sim, signal.SIGTERM, 20)
                    break
                rec = {"t": t0, "srv": gsbench.proc_info(srv.pid), "sim": gsbench.proc_info(sim.pid),
                       "srv_sched": srv_sched(srv.pid), "machine_busy_s": machine_busy_s(),
                       "loadavg": gsbench.read_file("/proc/loadavg").split()[:3]}
                if pm:
                    rec["pg"] = pg_snapshot(pm)
                try:
                    m = gsbench.metrics(hport, timeout=10)
                    rec["m"] = {k: m.get(k) for k in gsbench.POLL_METRICS}
                except OSError as e:
                    rec["m"] = None
                    rec["err"] = str(e)
                rec["http_s"] = round(time.time() - t0, 4)
                pf_out.write(json.dumps(rec) + "\n")
                pf_out.flush()
                if writer_tid is None and rec["srv"]:
                    tids = sorted(int(k) for k in rec["srv"]["threads"] if k != "main")
                    writer_tid = tids[0] if tids else None
                if profile and perf is None and time.time() >= perf_at and writer_tid:
                    secs = max(3, min(10, int(a.duration - a.warmup - 3)))
                    # the whole server (report per thread below: shows which thread runs the
                    # writer's functions, i.e. checks the writer-is-the-first-thread rule)
                    perf = start(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-p",
                                  str(srv.pid), "-o", perf_data, "--", "sleep", str(secs)],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "perf.err"), "w"))
                    if rec.get("pg"):  # and the busiest PostgreSQL backend so far (the writer's)
                        bk = [(v["cpu_s"], pid) for pid, v in rec["pg"]["procs"].items()
                              if v["role"] == "backend"]
                        if bk:
                            pg_backend = max(bk)[1]
                            perf_pg = start(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-p",
                                             pg_backend, "-o", perf_data + ".pg", "--", "sleep",
                                             str(secs)], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                time.sleep(max(0.0, a.poll - (time.time() - t0)))
        t_sim1 = time.time()
        sim_rc = sim.wait(30)
        if sim in _PROCS:
            _PROCS.remove(sim)
        simout.close()
        simerr.close()
        for pp in (perf, perf_pg):
            if pp:
                try:
                    pp.wait(30)
                except subprocess.TimeoutExpired:
                    pass
                stop_proc(pp, signal.SIGINT, 10)
        try:
            mend = gsbench.metrics(hport, timeout=30)
            res["blocks_stored_total"] = mend.get("gridsense_blocks_stored_total")
            res["blocks_failed_total"] = mend.get("gridsense_blocks_failed_total")
            res["store_errors_total"] = mend.get("gridsense_store_errors_total")
        except OSError as e:
            res["metrics_end_error"] = str(e)
        res["srv_exit"] = stop_proc(srv, signal.SIGTERM, 60)
        srv = None
        srvlog.close()
        res["store_bytes_after"] = store_size()
        if pg:
            res["pg_dir_bytes_after"] = dir_bytes(pg.data)
            res["blocks_rows"] = int(pg.psql("gs_bench", "SELECT count(*) FROM blocks").strip())
            # whole-run counters (provisioning included): rows written per table, commits
            row = pg.psql("gs_bench", "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated,"
                          " tup_deleted FROM pg_stat_database WHERE datname = 'gs_bench'").strip()
            res["pg_stat_database"] = dict(zip(("xact_commit", "xact_rollback", "tup_inserted",
                                                "tup_updated", "tup_deleted"),
                                               (int(x) for x in row.split("|"))))
            tabs = {}
            for line in pg.psql("gs_bench", "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM"
                                " pg_stat_user_tables").split():
                rel, ins, upd, dele = line.split("|")
                rel = re.sub(r"_(p\d+|default)$", "", rel)  # partitions under their parent
                t3 = tabs.setdefault(rel, [0, 0, 0])
                for i, v in enumerate((ins, upd, dele)):
                    t3[i] += int(v)
            res["pg_rows_written"] = {k: {"ins": v[0], "upd": v[1], "del": v[2]}
                                      for k, v in sorted(tabs.items()) if any(v)}
            if profile:
                res["pg_statements"] = []
                for line in pg.psql("gs_bench", "SELECT calls, round(total_exec_time::numeric, 1),"
                                    " rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
                                    " FROM pg_stat_statements ORDER BY calls DESC LIMIT 25"
                                    ).splitlines():
                    c = line.split("|", 3)
                    if len(c) == 4:
                        res["pg_statements"].append({"calls": int(c[0]), "exec_ms": float(c[1]),
                                                     "rows": int(c[2]), "query": c[3]})
            res["blocks_table_bytes"] = int(pg.psql(
                "gs_bench", "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN "
                "pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE p.relname = 'blocks'").strip() or 0)
        else:
            import sqlite3
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "gridsense.db"), uri=True)
            res["blocks_rows"] = db.execute("SELECT count(*) FROM blocks").fetchone()[0]
            db.close()
        if perf and os.path.exists(perf_data):
            rep = []
            wt = ["--tid", str(writer_tid), "--percentage", "relative"]
            for extra in (["--sort", "pid", "--percent-limit", "1"],
                          ["--tid", str(writer_tid), "--sort", "pid,symbol", "--percent-limit", "3"],
                          wt + ["--sort", "dso", "--percent-limit", "1"],
                          wt + ["--sort", "symbol", "--percent-limit", "0.7"],
                          wt + ["--sort", "symbol", "--children", "--percent-limit", "3"]):
                p = subprocess.run(["perf", "report", "-i", perf_data, "--stdio", "-g", "none"]
                                   + (["--no-children"] if "--children" not in extra else [])
                                   + extra, capture_output=True, text=True, timeout=300)
                rep.append("### perf report %s (writer thread = %d)\n%s"
                           % (" ".join(extra), writer_tid, p.stdout))
            if perf_pg and os.path.exists(perf_data + ".pg"):
                for extra in (["--sort", "dso", "--percent-limit", "1"],
                              ["--sort", "symbol", "--percent-limit", "1"],
                              ["--sort", "symbol", "--children", "--percent-limit", "4"]):
                    p = subprocess.run(["perf", "report", "-i", perf_data + ".pg", "--stdio", "-g",
                                        "none", "--no-children"] + extra,
                                       capture_output=True, text=True, timeout=300)
                    rep.append("### PostgreSQL backend %s: perf report %s\n%s"
                               % (pg_backend, " ".join(extra), p.stdout))
            with open(os.path.join(a.results, "profile-%s-%d.txt" % (backend, n)), "w") as f:
                f.write("\n".join(rep))
            for src in (perf_data, perf_data + ".pg"):  # for more `perf report` by hand
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(a.results, "%s-%d.%s" % (
                        backend, n, os.path.basename(src))))
        # the analysis of bench/gsbench.py, then our additions
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"bench": "store", "backend": backend, "n": n, "sync": "full",
                       "duration_s": a.duration, "warmup_s": a.warmup, "rate": a.rate,
                       "block_ms": a.block_ms, "channels": CHANNELS,
                       "samples_per_block": a.rate * a.block_ms // 1000, "t_sim_start": t_sim0,
                       "t_sim_end": t_sim1, "sim_exit": sim_rc, "codec": a.codec or "announced",
                       "writer_tid": writer_tid}, f)
        if os.path.getsize(os.path.join(d, "sim.json")) == 0:
            with open(os.path.join(d, "sim.json"), "w") as f:
                f.write("{}")
        base = gsbench.ingest(d)
        base.update(res)
        analyse(base, os.path.join(d, "poll.jsonl"), writer_tid)
        if pg:
            base["pg_log_tail"] = pg.server_log()[-1500:]
        return base, d
    finally:
        for p in (perf, perf_pg, sim, srv):
            if p is not None and p in _PROCS:
                stop_proc(p, signal.SIGTERM, 30)
        if pg:
            pg.stop()


def analyse(res, pollpath, writer_tid):
    """Adds the per-thread, PostgreSQL, disk and machine figures of the steady window."""
    polls = [p for p in gsbench.load_jsonl(pollpath) if p.get("m") and p.get("srv") and p.get("sim")]
    w0 = res["t_sim_start"] + res["warmup_s"]
    w1 = res["t_sim_start"] + res["duration_s"] - 0.5
    win = [p for p in polls if w0 <= p["t"] <= w1]
    if len(win) < 2:
        res["window_error"] = "fewer than 2 polls in the steady window"
        return
    a, b = win[0], win[-1]
    dt = b["t"] - a["t"]
    dblk = b["m"]["gridsense_blocks_stored_total"] - a["m"]["gridsense_blocks_stored_total"]
    samples = dblk * res["samples_per_block"] * res["channels"]
    ms = samples / 1e6
    srv_cpu = b["srv"]["cpu_s"] - a["srv"]["cpu_s"]
    sim_cpu = b["sim"]["cpu_s"] - a["sim"]["cpu_s"]
    # threads of the server: loop, writer, the rest (sorted by CPU for the record)
    thr = {k: v - a["srv"]["threads"].get(k, 0.0) for k, v in b["srv"]["threads"].items()}
    wkey = str(writer_tid) if writer_tid else None
    res["srv_threads_cpu_util"] = {k: round(v / dt, 3) for k, v in
                                   sorted(thr.items(), key=lambda kv: -kv[1])}
    res["srv_writer_cpu_util"] = thr.get(wkey, 0.0) / dt if wkey else None
    res["srv_rest_cpu_util"] = (sum(thr.values()) - thr.get("main", 0.0)
                                - (thr.get(wkey, 0.0) if wkey else 0.0)) / dt
    res["srv_writer_cpu_s_per_msample"] = thr.get(wkey, 0.0) / ms if (wkey and ms) else None
    def sched_share(sa, sb, nblk):
        if not sa or not sb:
            return None
        run, wait, sl = (sb[i] - sa[i] for i in range(3))
        return {"on_cpu": round(run / 1e9 / dt, 3), "runqueue": round(wait / 1e9 / dt, 3),
                "asleep": round(1 - (run + wait) / 1e9 / dt, 3),
                "timeslices_per_block": round(sl / nblk, 2) if nblk else None}
    if a.get("srv_sched") and b.get("srv_sched"):
        res["writer_sched"] = sched_share(a["srv_sched"].get(wkey), b["srv_sched"].get(wkey), dblk)
        res["loop_sched"] = sched_share(a["srv_sched"].get("main"), b["srv_sched"].get("main"), dblk)
    # PostgreSQL
    pg_cpu = None
    if a.get("pg") and b.get("pg"):
        pa, pb = a["pg"]["procs"], b["pg"]["procs"]
        roles = {}
        backends = []
        pg_cpu = 0.0
        pg_wb = 0
        for pid, v in pb.items():
            c = v["cpu_s"] - (pa[pid]["cpu_s"] if pid in pa else 0.0)
            pg_cpu += c
            roles[v["role"]] = roles.get(v["role"], 0.0) + c
            if v["role"] == "backend":
                backends.append(c)
            if v["wb"] is not None:
                pg_wb += v["wb"] - ((pa[pid]["wb"] or 0) if pid in pa else 0)
        reaped = (b["pg"]["reaped_cpu_s"] or 0) - (a["pg"]["reaped_cpu_s"] or 0)
        # children that ended inside the window (autovacuum workers, ...): their CPU moved to
        # the postmaster's cutime; what they had before the window start is in pa and must go
        gone = sum(v["cpu_s"] for pid, v in pa.items() if pid not in pb)
        pg_cpu += max(0.0, reaped - gone)
        if reaped - gone > 0:
            roles["ended children"] = reaped - gone
        res["pg_cpu_util"] = pg_cpu / dt
        res["pg_roles_cpu_util"] = {k: round(v / dt, 3) for k, v in
                                    sorted(roles.items(), key=lambda kv: -kv[1])}
        res["pg_busiest_backend_cpu_util"] = max(backends) / dt if backends else 0.0
        busiest = max((pid for pid, v in pb.items() if v["role"] == "backend" and pid in pa),
                      key=lambda pid: pb[pid]["cpu_s"] - pa[pid]["cpu_s"], default=None)
        if busiest:
            res["pg_backend_sched"] = sched_share(pa[busiest].get("sched"), pb[busiest].get("sched"),
                                                  dblk)
        res["pg_cpu_s_per_msample"] = pg_cpu / ms if ms else None
        res["pg_write_mib_per_s"] = pg_wb / dt / 1048576
        res["pg_write_bytes_window"] = pg_wb
    srv_wb = None
    if a["srv"].get("write_bytes") is not None and b["srv"].get("write_bytes") is not None:
        srv_wb = b["srv"]["write_bytes"] - a["srv"]["write_bytes"]
    res["srv_write_mib_per_s"] = srv_wb / dt / 1048576 if srv_wb is not None else None
    res["store_write_mib_per_s"] = ((srv_wb or 0) / dt / 1048576
                                    + (res.get("pg_write_mib_per_s") or 0))
    res["store_write_bytes_per_block"] = (((srv_wb or 0) + res.get("pg_write_bytes_window", 0))
                                          / dblk if dblk else None)
    dbat = b["m"]["gridsense_store_batches_total"] - a["m"]["gridsense_store_batches_total"]
    res["store_batches_per_s"] = dbat / dt
    res["blocks_per_batch"] = dblk / dbat if dbat else None
    res["total_cpu_s_per_msample"] = (srv_cpu + (pg_cpu or 0.0)) / ms if ms else None
    res["total_store_cpu_util"] = (srv_cpu + (pg_cpu or 0.0)) / dt
    mb = b["machine_busy_s"] - a["machine_busy_s"]
    res["machine_busy_cores"] = mb / dt
    res["others_busy_cores"] = (mb - srv_cpu - sim_cpu - (pg_cpu or 0.0)) / dt
    res["loadavg_window"] = [a["loadavg"], b["loadavg"]]
    stored = res.get("blocks_stored_total")
    grow = res["store_bytes_after"] - res["store_bytes_before"]
    res["store_bytes_per_block"] = grow / stored if stored else None
    if "pg_dir_bytes_after" in res and stored:
        res["pg_dir_bytes_per_block"] = (res["pg_dir_bytes_after"] - res["pg_dir_bytes_before"]) / stored
    if res.get("blocks_table_bytes") and res.get("blocks_rows"):
        res["pg_blocks_table_bytes_per_row"] = res["blocks_table_bytes"] / res["blocks_rows"]


# ---------------------------------------------------------------- report

def f(v, spec):
    return "n/a" if v is None else spec % v


def report(runs, mach, a):
    o = []
    o.append("### PostgreSQL vs SQLite: sustained ingest (%s, %s s per run, window from %s s, "
             "one run per cell)" % (mach["date_utc"], a.duration, a.warmup))
    o.append("")
    o.append("Machine: %s, %d cores, %.1f GiB RAM, Linux %s, %s, disk %s; build %s, commit %s; "
             "PostgreSQL %s. Load average at the start: %s."
             % (mach["cpu"], mach["cores"], mach["ram_gib"], mach["kernel"], mach["os"],
                mach["disk"], mach["build_type"], mach["commit"],
                next((r["pg_settings"]["server_version"] for r in runs if r.get("pg_settings")), "?"),
                " ".join(mach["loadavg_at_start"])))
    o.append("")
    o.append("| store | N | offered samples/s | stored samples/s (blocks/s) | kept up | ack p50 / p99 ms "
             "| max store queue | blocks per COMMIT | gridsense CPU cores (loop / writer / rest) | PostgreSQL CPU cores "
             "(busiest backend) | CPU s per M samples: gridsense + PostgreSQL = total | simulator "
             "cores | machine busy / others (cores) | disk write MiB/s | store bytes per block |")
    o.append("|---|---:|---:|---:|---|---:|---:|---:|---|---|---|---:|---|---:|---:|")
    main = [r for r in runs if not r.get("profile")]
    for r in sorted(main, key=lambda r: (r["n"], r["backend"] != "sqlite")):
        pgc = "–" if r["backend"] == "sqlite" else "%s (%s)" % (
            f(r.get("pg_cpu_util"), "%.2f"), f(r.get("pg_busiest_backend_cpu_util"), "%.2f"))
        cpm = "%s + %s = %s" % (f(r.get("srv_cpu_s_per_msample"), "%.3f"),
                                "0" if r["backend"] == "sqlite" else f(r.get("pg_cpu_s_per_msample"), "%.3f"),
                                f(r.get("total_cpu_s_per_msample"), "%.3f"))
        o.append("| %s | %d | %s | %s (%s) | %s | %s / %s | %s | %s | %s (%s / %s / %s) | %s | %s | %s | "
                 "%s / %s | %s | %s |" % (
                     r["backend"], r["n"], gsbench.si(r.get("offered_samples_per_s")),
                     gsbench.si(r.get("stored_samples_per_s")), f(r.get("stored_blocks_per_s"), "%.0f"),
                     "yes" if r.get("kept_up") else "**no**",
                     f(r.get("ack_p50_ms"), "%.1f"), f(r.get("ack_p99_ms"), "%.0f"),
                     f(r.get("store_queue_max"), "%.0f"), f(r.get("blocks_per_batch"), "%.0f"),
                     f(r.get("srv_cpu_util"), "%.2f"), f(r.get("srv_loop_cpu_util"), "%.2f"),
                     f(r.get("srv_writer_cpu_util"), "%.2f"), f(r.get("srv_rest_cpu_util"), "%.2f"),
                     pgc, cpm, f(r.get("sim_cpu_util"), "%.2f"),
                     f(r.get("machine_busy_cores"), "%.2f"), f(r.get("others_busy_cores"), "%.2f"),
                     f(r.get("store_write_mib_per_s"), "%.1f"),
                     f(r.get("store_bytes_per_block"), "%.0f")))
    o.append("")
    ratios = []
    for n in sorted({r["n"] for r in main}):
        s = [r for r in main if r["n"] == n and r["backend"] == "sqlite"]
        p = [r for r in main if r["n"] == n and r["backend"] == "postgresql"]
        if not (s and p):
            continue
        s, p = s[0], p[0]

        def ratio(k):
            if s.get(k) and p.get(k) is not None:
                return "%.2f" % (p[k] / s[k])
            return "n/a"
        ratios.append("N=%d: stored samples/s %s, total CPU per M samples %s, writer thread CPU "
                      "%s, ack p50 %s, ack p99 %s, disk write per block %s, store bytes per "
                      "block %s" % (n, ratio("stored_samples_per_s"), ratio("total_cpu_s_per_msample"),
                                    ratio("srv_writer_cpu_util"), ratio("ack_p50_ms"),
                                    ratio("ack_p99_ms"), ratio("store_write_bytes_per_block"),
                                    ratio("store_bytes_per_block")))
    if ratios:
        o.append("PostgreSQL / SQLite (one run each): " + "; ".join(ratios) + ".")
        o.append("")
    o.append("PostgreSQL CPU by role (cores; roles under 0.005 left out): " + "; ".join(
        "N=%d: %s" % (r["n"], ", ".join("%s %.2f" % kv for kv in r.get("pg_roles_cpu_util", {}).items()
                                    if kv[1] >= 0.005))
        for r in sorted(main, key=lambda r: r["n"]) if r["backend"] == "postgresql") + ".")
    o.append("")
    o.append("Where the time of the store's two ends goes over the window (/proc/TID/schedstat: "
             "share of wall time on a CPU / waiting for a CPU / asleep, and timeslices per stored "
             "block; *asleep* is waiting for work, for the disk, or for the other end's answer):")
    o.append("")
    o.append("| store | N | writer thread: on CPU / run queue / asleep | writer timeslices per block "
             "| loop thread: on CPU / run queue / asleep | busiest PostgreSQL backend: on CPU / run "
             "queue / asleep | its timeslices per block |")
    o.append("|---|---:|---|---:|---|---|---:|")

    def sh(x):
        return "n/a" if not x else "%.2f / %.2f / %.2f" % (x["on_cpu"], x["runqueue"], x["asleep"])

    def ts(x):
        return "n/a" if not x or x.get("timeslices_per_block") is None else "%.2f" % x["timeslices_per_block"]
    for r in sorted(main, key=lambda r: (r["n"], r["backend"] != "sqlite")):
        o.append("| %s | %d | %s | %s | %s | %s | %s |" % (
            r["backend"], r["n"], sh(r.get("writer_sched")), ts(r.get("writer_sched")),
            sh(r.get("loop_sched")), "–" if r["backend"] == "sqlite" else sh(r.get("pg_backend_sched")),
            "–" if r["backend"] == "sqlite" else ts(r.get("pg_backend_sched"))))
    o.append("")
    rw = []
    for r in sorted(main, key=lambda r: r["n"]):
        if r["backend"] != "postgresql" or not r.get("pg_rows_written") or not r.get("blocks_stored_total"):
            continue
        nb = r["blocks_stored_total"]
        parts = ["%s %s" % (t, "/".join("%s %.2f" % (k, v[k] / nb) for k in ("ins", "upd", "del")
                                        if v[k] / nb >= 0.005))
                 for t, v in r["pg_rows_written"].items() if sum(v.values()) / nb >= 0.01]
        rw.append("N=%d: %s" % (r["n"], ", ".join(parts)))
    if rw:
        o.append("PostgreSQL rows written per stored block over the whole run (pg_stat_user_tables, "
                 "partitions summed under their table; rows below 0.01 per block left out): "
                 + "; ".join(rw) + ".")
        o.append("")
    o.append("*kept up* = every generated block acknowledged after the drain, none dropped, no "
             "session paused, all N online, >= 97 % of the nominal samples generated, the store "
             "queue not growing (bench/gsbench.py). *writer* = the store's writer thread; *rest* "
             "= analysis workers, backfill, web thread. PostgreSQL CPU = postmaster + all its "
             "children (+ children ended in the window). *machine busy* = all processes from "
             "/proc/stat; *others* = busy minus gridsense, simulator and PostgreSQL. Disk write "
             "= /proc/PID/io write_bytes of gridsense (+ every postgres process). Store bytes per "
             "block = growth of gridsense.db* (SQLite, after the server stopped) or of "
             "pg_database_size (PostgreSQL) / blocks stored, including indexes, the summary "
             "pyramid and measurements.")
    return "\n".join(o)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite postgresql")
    ap.add_argument("--n", default="50 200 500", help="terminal counts (space-separated)")
    ap.add_argument("--duration", type=int, default=20, help="simulator --duration (s)")
    ap.add_argument("--warmup", type=float, default=5, help="skipped at the window's start (s)")
    ap.add_argument("--drain", type=int, default=30, help="simulator --drain (s)")
    ap.add_argument("--rate", type=int, default=4000)
    ap.add_argument("--block-ms", type=int, default=100)
    ap.add_argument("--codec", default="", help="simulator --codec (default: as announced)")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between samples")
    ap.add_argument("--profile-n", type=int, default=0,
                    help="one more run at this N with perf on the server (and "
                    "pg_stat_statements), excluded from the table")
    ap.add_argument("--profile-backends", default="postgresql")
    ap.add_argument("--build", default=os.environ.get("GS_BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--results", default=None)
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--report", metavar="DIR", help="only print the table of the runs in DIR")
    a = ap.parse_args(argv[1:])
    if a.report:
        runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(a.report, "store-*.json")))]
        mach = json.load(open(os.path.join(a.report, "machine.json")))
        a.duration = runs[0]["duration_s"] if runs else a.duration
        a.warmup = runs[0]["warmup_s"] if runs else a.warmup
        print(report(runs, mach, a))
        return 0
    a.gs = os.path.join(a.build, "gridsense")
    a.sim = os.path.join(a.build, "gridsense-sim")
    for b in (a.gs, a.sim):
        if not os.access(b, os.X_OK):
            log("%s not built" % b)
            return 1
    backends = a.backends.split()
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            log("unknown backend %r" % b)
            return 2
    ns = [int(x) for x in a.n.split()]
    if a.results is None:
        a.results = os.path.join(HERE, "results", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                                 + "-store")
    os.makedirs(a.results, exist_ok=True)
    a.results = os.path.abspath(a.results)
    os.environ["GS_BUILD"] = a.build
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    mach = gsbench.machine()
    with open(os.path.join(a.results, "machine.json"), "w") as fo:
        json.dump(mach, fo, indent=1)
    work = tempfile.mkdtemp(prefix="gs-store.")
    log("results in %s, temp dir %s" % (a.results, work))
    runs = []
    ok = False
    try:
        plan = [(b, n, False) for n in ns for b in backends]
        if a.profile_n:
            plan += [(b, a.profile_n, True) for b in a.profile_backends.split()]
        for backend, n, prof in plan:
            t = time.time()
            try:
                r, d = one_run(a, backend, n, work, prof)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                log("%s N=%d failed: %s" % (backend, n, e))
                # keep the logs in the results, the rest of the run dir goes
                tag = "%s-%d%s" % (backend, n, "-profile" if prof else "")
                keep = os.path.join(a.results, "failed-" + tag)
                os.makedirs(keep, exist_ok=True)
                for fn in ("server.log", "sim.err", "sim.json", "poll.jsonl", "perf.err"):
                    src = os.path.join(work, tag, fn)
                    if os.path.exists(src):
                        shutil.copy(src, keep)
                if not a.keep_tmp:
                    shutil.rmtree(os.path.join(work, tag), ignore_errors=True)
                continue
            name = "store-%s-%d%s" % (backend, n, "-profile" if prof else "")
            with open(os.path.join(a.results, name + ".json"), "w") as fo:
                json.dump(r, fo, indent=1)
            shutil.copy(os.path.join(d, "poll.jsonl"), os.path.join(a.results, name + ".poll.jsonl"))
            if not a.keep_tmp:
                shutil.rmtree(d, ignore_errors=True)
            runs.append(r)
            log("%s N=%d%s: stored %s samples/s (offered %s), kept up %s, gridsense %s cores "
                "(writer %s), postgres %s cores, %s CPU s/M samples total, ack p50 %s p99 %s ms, "
                "machine %s cores busy, run took %.0f s" % (
                    backend, n, " (profiled)" if prof else "",
                    gsbench.si(r.get("stored_samples_per_s")), gsbench.si(r.get("offered_samples_per_s")),
                    r.get("kept_up"), f(r.get("srv_cpu_util"), "%.2f"),
                    f(r.get("srv_writer_cpu_util"), "%.2f"), f(r.get("pg_cpu_util"), "%.2f"),
                    f(r.get("total_cpu_s_per_msample"), "%.3f"), f(r.get("ack_p50_ms"), "%.1f"),
                    f(r.get("ack_p99_ms"), "%.0f"), f(r.get("machine_busy_cores"), "%.2f"),
                    time.time() - t))
        md = report(runs, mach, a)
        with open(os.path.join(a.results, "report.md"), "w") as fo:
            fo.write(md + "\n")
        print(md)
        ok = bool(runs)
    finally:
        _cleanup_procs()
        if a.keep_tmp:
            log("temp dir kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
