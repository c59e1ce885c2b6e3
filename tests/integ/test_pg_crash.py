"""integ.pg_crash: exactly-once and ack-after-commit of the PostgreSQL block ingest
(src/store/pg_ingest.c) when the writer process is SIGKILLed and when the database server itself
is SIGKILLed mid-ingest, on a throwaway cluster (synchronous_commit on; fsync off, which only
matters for a crash of the machine).

The writer is build/tests/pg_ingest_tool: it prints "ACK n" after each COMMIT (every terminal has
all blocks up to n). Like a terminal, each restart re-sends from a few blocks BELOW the last ACK it
saw (ACKs lost in flight), so duplicates of committed blocks are offered every time. At the end
every terminal must hold every seq 1..N exactly once, durable_seq = N, and nothing acknowledged
may be missing after the server crash."""

import atexit
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402

BUILD = os.environ.get("GS_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "build")
TOOL = os.path.join(BUILD, "tests", "pg_ingest_tool")
TERMINALS = 8
PER = 10  # blocks per terminal per batch
T0 = time.monotonic()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


_TOOLS = []


def start_tool(url, first, until):
    """Starts the writer (blocks of 400 x 6 int16 sines: codec 1 as sent by odd terminals, codec 2 as the ingest encodes the even ones' raw blocks, see pg_ingest_tool.c);
    killed at exit whatever happens (test failure included)."""
    p = subprocess.Popen([TOOL, url, str(first), str(until), str(TERMINALS), str(PER), "4800"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _TOOLS.append(p)
    return p


def _kill_tools():
    for p in _TOOLS:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_tools)


def read_acks(p, at_least, timeout=60):
    """Reads ACK lines until one >= at_least (or DONE); returns the last ACK seen."""
    last = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("ACK "):
            last = int(line.split()[1])
            if last >= at_least:
                return last
        elif line.startswith("DONE"):
            return last
    raise AssertionError("no ACK >= %d (last %d): %s" % (at_least, last, p.stderr.read()
                                                          if p.poll() is not None else ""))


def check_codec(pg, db, what):
    """Every stored block is encoded and smaller than its 4,800 raw bytes, whatever crashes and
    re-sends happened: odd terminals sent them as codec 1 (kept as received), the ingest encoded
    the even ones' raw blocks as codec 2 (the writer's codec, docs/protocol.md A.11)."""
    out = pg.psql(db, "SELECT count(*),"
                      " count(*) FILTER (WHERE codec = 1 AND length(data) < 4800"
                      "                  AND right(terminal_id, 1) IN ('1','3','5','7','9')),"
                      " count(*) FILTER (WHERE codec = 2 AND length(data) < 4800"
                      "                  AND right(terminal_id, 1) IN ('0','2','4','6','8'))"
                      " FROM gs.blocks")
    total, enc1, enc2 = (int(x) for x in out.split("|"))
    check(total > 0 and enc1 + enc2 == total,
          "%s: %d blocks, %d codec 1 (as sent), %d codec 2 (encoded by the ingest)"
          % (what, total, enc1, enc2))


def stored_state(pg, db):
    out = pg.psql(db, "SELECT t.id, t.durable_seq, count(b.seq), count(DISTINCT b.seq),"
                      " coalesce(max(b.seq), 0), coalesce(min(b.seq), 0)"
                      " FROM gs.terminals t LEFT JOIN gs.blocks b ON b.terminal_id = t.id"
                      " GROUP BY t.id, t.durable_seq ORDER BY t.id")
    rows = [line.split("|") for line in out.split()]
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


def main():
    check(os.path.exists(TOOL), "pg_ingest_tool not built: " + TOOL)
    print("%.1f s: start" % (time.monotonic() - T0))
    # synchronous_commit on (a COMMIT's WAL is written before it returns), fsync off: a killed
    # server loses nothing committed; the machine itself does not crash here
    with pgcluster.PgCluster(no_fsync=True) as pg:
        print("%.1f s: cluster up" % (time.monotonic() - T0))
        pg.create_db("crash")
        pg.psql("crash", "CREATE SCHEMA gs")
        url = pg.url("crash") + "&options=-csearch_path%3Dgs"
        acked = 0

        # 1. the writer is SIGKILLed three times in the middle of its batches
        for round_ in range(2):
            first = max(1, acked - 25)  # re-send some acknowledged blocks too
            p = start_tool(url, first, 100000)
            last = read_acks(p, acked + 30)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            check(last > acked, "progress in round %d" % round_)
            acked = last
            st = stored_state(pg, "crash")
            for tid, (durable, n, distinct, mx, mn) in st.items():
                check(n == distinct == mx == durable and mn == 1,
                      "after writer kill %d: %s %r" % (round_, tid, (durable, n, distinct, mx, mn)))
                check(durable >= acked, "%s: acknowledged %d but durable %d" % (tid, acked, durable))
            check_codec(pg, "crash", "after writer kill %d" % round_)
            print("%.1f s: writer kill %d: acked %d, stored %d per terminal"
                  % (time.monotonic() - T0, round_, acked, durable))

        # 2. the database server is SIGKILLed (postmaster and backends) while the writer runs;
        #    the writer reconnects once it is back and re-sends the batch whose outcome it lost
        until = acked + 120
        p = start_tool(url, max(1, acked - 25), until)
        acked = read_acks(p, acked + 30)
        print("%.1f s: crashing the server at ack %d" % (time.monotonic() - T0, acked))
        pg.crash()
        print("%.1f s: crashed" % (time.monotonic() - T0))
        pg.restart()
        print("%.1f s: restarted" % (time.monotonic() - T0))
        t0 = time.monotonic()
        out, err = p.communicate(timeout=120)
        print("writer resumed and finished %.1f s after the restart" % (time.monotonic() - t0))
        check(p.returncode == 0, "tool after server crash: %d %s" % (p.returncode, err))
        check("DONE" in out, "tool finished: %r" % out)
        last = acked
        for line in out.split("\n"):
            if line.startswith("ACK "):
                last = int(line.split()[1])
        check(last >= until, "last ack %d, until %d" % (last, until))
        st = stored_state(pg, "crash")
        check(len(st) == TERMINALS, "terminals %r" % st)
        for tid, (durable, n, distinct, mx, mn) in st.items():
            check(n == distinct == mx == durable and mn == 1,
                  "after server crash: %s %r" % (tid, (durable, n, distinct, mx, mn)))
            check(durable >= last, "%s: acknowledged %d but durable %d" % (tid, last, durable))
        check_codec(pg, "crash", "after server crash")
        print("server crash: every terminal holds 1..%d exactly once, all encoded" % durable)
        print("%.1f s: ok" % (time.monotonic() - T0))


if __name__ == "__main__":
    main()
