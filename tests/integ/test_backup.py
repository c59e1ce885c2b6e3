"""Backup and restore (docs/operations.md "Backup and restore"): `gridsense db backup` while the
server runs and terminals stream gives a complete, consistent database (quick_check, every
block of the copy intact, exactly-once keys); a second server on the same data dir and a restore
under a running server are refused (the data dir lock); `db restore` without --yes changes
nothing; with --yes the old database is moved aside, the server starts on the restored one, the
terminals continue (blocks after the restore are stored, nothing twice), and a command created
after the restore gets an id above every id issued before it (terminals deduplicate by id)."""
import os
import sqlite3
import subprocess

from gslib import *


def gs(*args, check_rc=True):
    return run([GRIDSENSE] + list(args), check_rc=check_rc)


def main():
    with TempDir() as data:
        secrets_path = provision(data, 2, "B")
        srv = Server(data).start()
        try:
            # Commands before the backup: their ids must never come back.
            st, c1 = srv.json("/api/v1/terminals/B0001/commands", "POST",
                              '{"verb":"get-status"}')
            check(st == 201, "command before the backup: %d %s" % (st, c1))
            p = sim_start(srv.tport, secrets_path, 2, 12)
            wait_for(lambda: (block_report(data).get("B0001") or (0,))[0] >= 10, 60,
                     "blocks stored before the backup")
            bk = os.path.join(data, "..", os.path.basename(data) + "-backup.db")
            bk = os.path.abspath(bk)
            r = gs("db", "backup", bk, "--data", data)
            check("backup written" in r.stdout, "backup output: %s" % r.stdout)
            check(oct(os.stat(bk).st_mode & 0o777) == "0o600", "backup file is private (0600)")
            check(not os.path.exists(bk + ".part"), "no .part file left")
            # A second backup to the same file is refused, the first left alone.
            r2 = gs("db", "backup", bk, "--data", data, check_rc=False)
            check(r2.returncode == 1 and "exists" in r2.stderr, "overwrite refused: %s" % r2.stderr)
            # More commands after the backup (lost by the restore): ids the terminal has seen.
            later = []
            for _ in range(3):
                st, c = srv.json("/api/v1/terminals/B0001/commands", "POST",
                                 '{"verb":"get-status"}')
                check(st == 201, "command after the backup")
                later.append(c["id"])
            rc, summ, err = sim_finish(p, timeout=120)
            check(rc == 0, "simulator ran: %s" % err[-500:])

            # The copy is a complete database while ingest went on.
            b = sqlite3.connect(bk)
            check(b.execute("PRAGMA quick_check").fetchone()[0] == "ok", "backup passes quick_check")
            check(b.execute("PRAGMA journal_mode").fetchone()[0] == "delete",
                  "backup is one self-contained file (no WAL)")
            n_bk = b.execute("SELECT count(*) FROM blocks").fetchone()[0]
            dup = b.execute("SELECT count(*) - count(DISTINCT terminal_id || ':' || seq)"
                            " FROM blocks").fetchone()[0]
            durable = dict(b.execute("SELECT id, durable_seq FROM terminals").fetchall())
            maxseq = dict(b.execute("SELECT terminal_id, max(seq) FROM blocks"
                                    " GROUP BY terminal_id").fetchall())
            b.close()
            check(n_bk >= 10 and dup == 0, "backup holds %d blocks, none twice" % n_bk)
            for t, m in maxseq.items():
                check(durable[t] >= m, "durable seq of %s covers its stored blocks in the copy" % t)

            # Refused while the server runs: a restore, and a second server on the same dir.
            r = gs("db", "restore", bk, "--yes", "--data", data, check_rc=False)
            check(r.returncode == 1 and "stop the server" in r.stderr,
                  "restore refused while the server runs: %s" % r.stderr)
            second = subprocess.run([GRIDSENSE, "serve", "--data", data, "--terminals",
                                     "127.0.0.1:0", "--http", "127.0.0.1:0"],
                                    capture_output=True, text=True, timeout=60)
            check(second.returncode != 0 and "in use by a running gridsense server" in second.stderr,
                  "a second server on the same data dir is refused: %s" % second.stderr[-300:])
        finally:
            check(srv.stop() == 0, "server stops cleanly")

        n_live = sum(v[0] for v in block_report(data).values())
        check(n_live > n_bk, "the live database went on after the backup (%d > %d)" % (n_live, n_bk))

        # Dry run: nothing changes.
        before = os.stat(os.path.join(data, "gridsense.db")).st_ino
        r = gs("db", "restore", bk, "--data", data)
        check("nothing changed" in r.stdout, "dry run says so: %s" % r.stdout)
        check(os.stat(os.path.join(data, "gridsense.db")).st_ino == before, "dry run changed nothing")

        # Bad input: not a database, a missing file.
        junk = os.path.join(data, "junk.db")
        open(junk, "wb").write(b"not a database" * 100)
        r = gs("db", "restore", junk, "--yes", "--data", data, check_rc=False)
        check(r.returncode == 1 and "gridsense:" in r.stderr, "junk refused: %s" % r.stderr)
        r = gs("db", "restore", junk + ".missing", "--yes", "--data", data, check_rc=False)
        check(r.returncode == 1 and "cannot read" in r.stderr, "missing file refused: %s" % r.stderr)

        r = gs("db", "restore", bk, "--yes", "--data", data)
        check("restored into" in r.stdout, "restore output: %s" % r.stdout)
        aside = [f for f in os.listdir(data) if f.startswith("gridsense.db.replaced-")]
        check(len(aside) >= 1, "the replaced database was moved aside: %s" % os.listdir(data))
        check(sum(1 for _ in sqlite3.connect(os.path.join(data, aside[0]))
                  .execute("SELECT 1 FROM blocks")) == n_live,
              "the moved-aside database is the old one, complete")
        check(sum(v[0] for v in block_report(data).values()) == n_bk,
              "the data dir now holds the backup's blocks")

        srv = Server(data).start()
        try:
            st, c = srv.json("/api/v1/terminals/B0001/commands", "POST", '{"verb":"get-status"}')
            check(st == 201, "command after the restore")
            check(c["id"] > max([c1["id"]] + later),
                  "new command id %d is above every id issued before (%s)" % (c["id"], later))
            rc, summ, err = sim(srv.tport, secrets_path, 2, 6)
            check(rc == 0, "terminals continue after the restore: %s" % err[-500:])
            rep = block_report(data)
            for t, (cnt, distinct, lo, hi) in rep.items():
                check(cnt == distinct, "%s: no block stored twice after the restore" % t)
            check(sum(v[0] for v in rep.values()) > n_bk, "new blocks stored after the restore")
        finally:
            check(srv.stop() == 0, "server stops cleanly after the restore")
    print("ok")


if __name__ == "__main__":
    main()
