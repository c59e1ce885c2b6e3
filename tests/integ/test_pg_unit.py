"""integ.pg_unit: the C unit tests of the PostgreSQL foundation against a real, throwaway
PostgreSQL cluster (tests/integ/pgcluster.py). Each binary gets a fresh database through
GS_PG_URL and must run its PostgreSQL groups (it prints "postgresql groups run") and pass:
test_sql runs the seam's cases on SQLite and on PostgreSQL; test_pg runs the PostgreSQL schema,
migrations and block ingest. Never skipped: no PostgreSQL here is a failure."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402

BUILD = os.environ.get("GS_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "build")
BINARIES = ["test_sql", "test_pg", "test_cluster"]


def main():
    failed = []
    with pgcluster.PgCluster(fast=True) as pg:
        print("cluster started in %.2f s" % pg.start_seconds)
        for name in BINARIES:
            exe = os.path.join(BUILD, "tests", name)
            if not os.path.exists(exe):
                failed.append("%s: not built (%s)" % (name, exe))
                continue
            url = pg.create_db("gs_" + name)
            t0 = time.monotonic()
            p = subprocess.run([exe], env=dict(os.environ, GS_PG_URL=url), capture_output=True,
                               text=True, timeout=240)
            out = p.stdout + p.stderr
            sys.stdout.write(out)
            print("%s: exit %d in %.2f s" % (name, p.returncode, time.monotonic() - t0))
            if p.returncode != 0:
                failed.append("%s exited %d" % (name, p.returncode))
            elif "postgresql groups run" not in out:
                failed.append("%s did not run its PostgreSQL groups" % name)
        if failed:
            sys.stdout.write(pg.server_log()[-4000:])
    if failed:
        raise AssertionError("; ".join(failed))
    print("ok")


if __name__ == "__main__":
    main()
