"""integ.pg_cluster: the throwaway PostgreSQL harness itself (tests/integ/pgcluster.py) works here:
a cluster starts from Debian's binaries on a Unix socket only, accepts connections through psql,
creates a database that keeps data, refuses TCP, and is stopped and removed afterwards: when the
test process is sent SIGTERM inside the `with` block (what ctest does to a test that timed out;
it leaves the block as any failure does), and, when the test process was SIGKILLed and could not
clean up, by the next cluster's start. Never skipped: a machine without PostgreSQL fails it."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    bindir = pgcluster.find_bindir()
    check(os.path.isfile(os.path.join(bindir, "postgres")), "server binary in %s" % bindir)

    # 1. a cluster with the fast settings
    d = pid = None
    try:
        with pgcluster.PgCluster(fast=True) as pg:
            d = pg.dir
            pid = pg.postmaster_pid()
            check(pid and pgcluster._alive(pid), "postmaster running")
            check(os.path.isdir(os.path.join(d, "data")), "data dir created")
            check(os.path.exists(os.path.join(d, ".s.PGSQL.%d" % pgcluster.PORT)),
                  "socket in the cluster's own directory")
            print("cluster started in %.2f s (%s)" % (pg.start_seconds, bindir))
            owner = os.stat(os.path.join(d, "data")).st_uid
            if os.geteuid() == 0:  # initdb refuses root: the server runs as postgres
                check(owner != 0, "data dir owned by an unprivileged user, got uid %d" % owner)
            check(pg.psql("postgres", "SHOW listen_addresses").strip() == "", "no TCP listener")
            check(pg.psql("postgres", "SHOW fsync").strip() == "off", "fast settings applied")
            url = pg.create_db("gs_selftest")
            check(url.startswith("postgresql:///gs_selftest?host="), url)
            pg.psql("gs_selftest", "CREATE TABLE t(k bigint PRIMARY KEY, b bytea);"
                    "INSERT INTO t VALUES (9223372036854775807, '\\x00ff00')")
            out = pg.psql("gs_selftest", "SELECT k, encode(b, 'hex') FROM t").strip()
            check(out == "9223372036854775807|00ff00", "row read back: %r" % out)
            dbs = pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1").split()
            check("gs_selftest" in dbs, "database listed: %r" % dbs)
            out = pg.psql("postgres", "SHOW data_directory").strip()
            check(out == os.path.join(d, "data"), "data_directory %r" % out)
            # TCP must not reach this cluster (another one on the machine may listen on 5432,
            # but it has no gs_selftest database)
            p = subprocess.run([os.path.join(bindir, "psql"), "-X", "-h", "127.0.0.1", "-p",
                                str(pgcluster.PORT), "-U", pgcluster.SUPERUSER, "-d",
                                "gs_selftest", "-A", "-t", "-c", "SELECT k FROM t"],
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
            check(p.returncode != 0, "TCP reached our cluster: %r" % p.stdout)
            # what ctest does to a test that timed out: SIGTERM; the harness turns it into
            # SystemExit, which leaves this block like any failure
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            raise AssertionError("SIGTERM did not interrupt the test")
    except SystemExit:
        pass
    check(d is not None and not os.path.exists(d), "temp dir removed after SIGTERM")
    check(not pgcluster._alive(pid), "postmaster %d stopped after SIGTERM" % pid)

    # 2. the command-line wrapper: safe settings by default and the URL handed to the child;
    #    then it is SIGKILLed (no cleanup possible): the cluster is left behind, and the next
    #    cluster started on the machine (reap_orphans) stops and removes it
    w = subprocess.Popen([sys.executable, pgcluster.__file__, "run", "--", "sh", "-c",
                          'echo "URL $GS_PG_URL"; psql -X -A -t -d "$GS_PG_URL" -c '
                          '"SELECT current_database(), current_setting(\'fsync\')"; sleep 60'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        url = w.stdout.readline()
        row = w.stdout.readline().strip()
        check(url.startswith("URL postgresql:///gs_run?host="), "url %r" % url)
        check(row == "gs_run|on", "wrapped command's query: %r (%s)" % (
            row, w.stderr.read() if w.poll() is not None else ""))
        sockdir = re.search(r"host=([^&]+)", url).group(1)
        with open(os.path.join(sockdir, "data", "postmaster.pid")) as f:
            pid2 = int(f.readline())
    finally:
        os.killpg(w.pid, signal.SIGKILL)  # the wrapper, its sh and sleep (pg_ctl's server has
        w.wait(timeout=30)                # a session of its own and survives, as in real life)
    check(os.path.exists(sockdir) and pgcluster._alive(pid2), "orphan left behind")
    pgcluster.reap_orphans(os.path.dirname(sockdir))
    check(not os.path.exists(sockdir), "orphan cluster removed")
    check(not pgcluster._alive(pid2), "orphan postmaster %d stopped" % pid2)
    print("ok")


if __name__ == "__main__":
    main()
