"""integ.pg_cluster: the throwaway PostgreSQL harness itself (tests/integ/pgcluster.py) works here:
a cluster starts from Debian's binaries on a Unix socket only, accepts connections through psql,
creates a database that keeps data, refuses TCP, and is stopped and removed afterwards, also when
the code inside the `with` block fails. Never skipped: a machine without PostgreSQL fails it."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    bindir = pgcluster.find_bindir()
    check(os.path.isfile(os.path.join(bindir, "postgres")), "server binary in %s" % bindir)

    with pgcluster.PgCluster(fast=True) as pg:
        d = pg.dir
        check(os.path.isdir(os.path.join(d, "data")), "data dir created")
        check(os.path.exists(os.path.join(d, ".s.PGSQL.%d" % pgcluster.PORT)),
              "socket in the cluster's own directory")
        print("cluster started in %.2f s (%s)" % (pg.start_seconds, bindir))
        # running as root, the server must run as postgres (initdb refuses root)
        owner = os.stat(os.path.join(d, "data")).st_uid
        if os.geteuid() == 0:
            check(owner != 0, "data dir owned by an unprivileged user, got uid %d" % owner)
        check(pg.psql("postgres", "SHOW listen_addresses").strip() == "",
              "no TCP listener")
        check(pg.psql("postgres", "SHOW fsync").strip() == "off", "fast settings applied")
        url = pg.create_db("gs_selftest")
        check(url.startswith("postgresql:///gs_selftest?host="), url)
        pg.psql("gs_selftest", "CREATE TABLE t(k bigint PRIMARY KEY, b bytea);"
                "INSERT INTO t VALUES (9223372036854775807, '\\x00ff00')")
        out = pg.psql("gs_selftest", "SELECT k, encode(b, 'hex') FROM t").strip()
        check(out == "9223372036854775807|00ff00", "row read back: %r" % out)
        dbs = pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1").split()
        check("gs_selftest" in dbs, "database listed: %r" % dbs)
        # the server really is up and ours: its data dir is inside the temp dir
        out = pg.psql("postgres", "SHOW data_directory").strip()
        check(out == os.path.join(d, "data"), "data_directory %r" % out)
        # a TCP connection must fail (nothing listens on localhost for this cluster)
        p = subprocess.run([os.path.join(bindir, "psql"), "-X", "-h", "127.0.0.1", "-p",
                            str(pgcluster.PORT), "-U", pgcluster.SUPERUSER, "-d",
                            "gs_selftest", "-c", "SELECT 1"], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        # (another cluster of the machine might listen on 5432 with other users: either way
        # our table is not there)
        check(p.returncode != 0 or "1" not in p.stdout, "TCP reached our cluster")
    check(not os.path.exists(d), "temp dir removed after stop")

    # a failure inside the block still stops and removes the cluster
    dir2 = None
    try:
        with pgcluster.PgCluster() as pg2:
            dir2 = pg2.dir
            check(pg2.psql("postgres", "SHOW fsync").strip() == "on",
                  "safe settings by default")
            pid = pg2.postmaster_pid()
            check(pid and pgcluster._alive(pid), "postmaster running")
            raise KeyError("boom")
    except KeyError:
        pass
    check(dir2 is not None and not os.path.exists(dir2), "temp dir removed after a failure")
    check(not pgcluster._alive(pid), "postmaster %d stopped after a failure" % pid)

    # the command-line wrapper hands a working URL to a child
    p = subprocess.run([sys.executable, pgcluster.__file__, "run", "--fast", "--", "sh", "-c",
                        'psql -X -A -t -d "$GS_PG_URL" -c "SELECT current_database()"'],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and p.stdout.strip() == "gs_run",
          "pgcluster.py run: %d %r %r" % (p.returncode, p.stdout, p.stderr))
    print("ok")


if __name__ == "__main__":
    main()
