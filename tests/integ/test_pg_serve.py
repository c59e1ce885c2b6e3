"""integ.pg_serve: `gridsense serve` on PostgreSQL ([store] backend = postgresql) against a throwaway
cluster (tests/integ/pgcluster.py): terminals provisioned by the CLI, blocks stored exactly once
through a SIGKILL of the server in the middle of ingest (every acknowledged block present, none
twice, no gap), commands created by the CLI (another process) reach the terminal, the HTTP API
reads back terminals, waveform and measurements, partitions exist, and the SQLite-only commands
say what to use instead."""
import json
import os
import signal
import subprocess
import time

import pgcluster
from gslib import *


def main():
    with pgcluster.PgCluster(fast=True) as pg, TempDir() as data:
        url = pg.create_db("gs_serve")
        cfg = os.path.join(data, "gridsense.ini")
        with open(cfg, "w") as f:
            f.write("[store]\nbackend = postgresql\nurl = %s\n" % url)
        os.chmod(cfg, 0o600)
        conf = ["--config", cfg]

        # A config file others can read is refused when the URL carries a password.
        bad = os.path.join(data, "bad.ini")
        with open(bad, "w") as f:
            f.write("[store]\nbackend = postgresql\nurl = postgresql://u:secret@localhost/x\n")
        os.chmod(bad, 0o644)
        p = run([GRIDSENSE, "terminal", "list", "--data", data, "--config", bad], check_rc=False)
        check(p.returncode == 2 and "password" in p.stderr and "secret" not in p.stderr,
              "a password in a readable config file is refused, without echoing it")

        secrets = os.path.join(data, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "3", "--prefix", "P", "--secrets-out", secrets,
             "--data", data] + conf)
        check(not os.path.exists(os.path.join(data, "gridsense.db")),
              "no SQLite database made in the data dir")
        names = pg.psql("gs_serve", "SELECT string_agg(id, ',' ORDER BY id) FROM terminals").strip()
        check(names == "P0001,P0002,P0003", "terminals provisioned in PostgreSQL: %s" % names)
        parts = int(pg.psql("gs_serve", "SELECT count(*) FROM pg_inherits i JOIN pg_class c"
                            " ON c.oid = i.inhrelid WHERE c.relname LIKE 'blocks_p2%'").strip())
        check(parts >= 4, "day partitions of blocks made ahead (%d)" % parts)

        srv = Server(data, extra=conf).start()
        sp = sim_start(srv.tport, secrets, 3, 14, ["--seed", "5", "--drain", "60"])
        wait_for(lambda: (srv.metric("gridsense_blocks_stored_total") or 0) >= 30, 30,
                 "blocks stored")
        srv.kill()  # SIGKILL in the middle of ingest
        time.sleep(1.0)
        srv = Server(data, extra=conf, tport=srv.tport).start()
        wait_for(lambda: (srv.metric("gridsense_terminals_online") or 0) >= 3, 60, "back online")

        # A command from another process (the CLI) reaches the terminal through the database.
        p = run([GRIDSENSE, "command", "send", "P0002", "get-status", "--wait", "30", "--data", data]
                + conf, check_rc=False, timeout=60)
        c = json.loads(p.stdout) if p.stdout.strip() else {}
        check(p.returncode == 0 and c.get("state") == "done",
              "command from the CLI done: %s %s" % (p.returncode, p.stderr.strip()[-300:]))

        rc, summ, err = sim_finish(sp, timeout=180)
        check(rc == 0 and summ["unacked"] == 0, "every block acknowledged (%s)" % summ)
        acked = summ["blocks_acked"]
        rows = pg.psql("gs_serve", "SELECT terminal_id, count(*), count(DISTINCT seq), min(seq),"
                       " max(seq) FROM blocks GROUP BY 1 ORDER BY 1").split()
        total = 0
        for r in rows:
            tid, n, nd, lo, hi = r.split("|")
            n, nd, lo, hi = int(n), int(nd), int(lo), int(hi)
            total += n
            check(n == nd, "%s: no block stored twice (%d rows, %d seqs)" % (tid, n, nd))
            check(lo == 1 and hi == n, "%s: no gap (seq 1..%d, %d rows)" % (tid, hi, n))
            dseq = int(pg.psql("gs_serve", "SELECT durable_seq FROM terminals WHERE id = '%s'"
                               % tid).strip())
            check(dseq == hi, "%s: durable_seq %d = highest stored %d" % (tid, dseq, hi))
        check(total >= acked, "every acknowledged block stored (%d rows, %d acks)" % (total, acked))
        # the simulator sends codec 2 when the server announces it; kept as received
        codec2 = int(pg.psql("gs_serve", "SELECT count(*) FROM blocks WHERE codec = 2").strip())
        check(codec2 == total, "blocks stored encoded as sent (codec 2): %d of %d"
              % (codec2, total))

        st, j = srv.json("/api/v1/terminals")
        check(st == 200 and len(j["terminals"]) == 3, "API lists the terminals")
        st, j = srv.json("/api/v1/terminals/P0001/waveform?from=%d&to=%d&max_points=200"
                         % (summ["start_ns"], time.time_ns()))
        check(st == 200 and j.get("source") == "blocks" and len(j.get("segments", [])) > 0,
              "waveform API reads blocks from PostgreSQL (%s, %d segments)"
              % (j.get("source"), len(j.get("segments", []))))
        st, j = srv.json("/api/v1/terminals/P0001/waveform?from=%d&to=%d&max_points=50"
                         % (summ["start_ns"] - 3600 * 10**9, time.time_ns() + 3600 * 10**9))
        check(st == 200 and len(j.get("segments", [])) > 0,
              "a 2-hour range answered (%s)" % j.get("source"))
        wait_for(lambda: int(pg.psql("gs_serve", "SELECT count(*) FROM measurements").strip()) > 0,
                 30, "measurements stored")
        # PostgreSQL crashed and restarted under the running server (crash recovery): the
        # loop's and the web thread's connections come back by themselves.
        pg.crash()
        pg.restart()

        def api_back():
            try:
                st, j = srv.json("/api/v1/terminals")
                return st == 200 and len(j["terminals"]) == 3
            except Exception:
                return False
        wait_for(api_back, 60, "the API answering again after PostgreSQL restarted")
        st, j = srv.json("/api/v1/events")
        check(st == 200, "reads work again after the restart")
        st, j = srv.json("/api/v1/admin/db")
        check(st == 501, "db stats route says it reads SQLite only (%d)" % st)
        p = run([GRIDSENSE, "db", "backup", os.path.join(data, "b.db"), "--data", data] + conf,
                check_rc=False)
        check(p.returncode != 0 and "pg_dump" in p.stderr, "db backup points to pg_dump")
        check(srv.stop() == 0, "server stops cleanly")
        log = srv.log()
        check("url" not in log.lower() or "postgresql://" not in log, "the URL is not logged")
        lost = [l for l in log.splitlines() if "database connection" in l]
        check(len(lost) <= 12, "a database away is logged a few times, not per call (%d lines)"
              % len(lost))
        print("ok: %d blocks, %d acks" % (total, acked))


if __name__ == "__main__":
    main()
