"""integ.pg_store: the store's unit tests (and those of the modules that open a store) against a
real, throwaway PostgreSQL cluster (tests/integ/pgcluster.py). Each binary gets a fresh database
through GS_PG_URL; tests/unit/ut_store.h then opens every store of the binary on PostgreSQL (a
fresh schema per data directory). Each must pass. The few cases that check what only SQLite has
(its files, EXPLAIN QUERY PLAN, ...) skip themselves on PostgreSQL (UT_SQLITE_ONLY); how many
skipped is printed per binary. Never skipped as a whole: no PostgreSQL here is a failure.

BINARIES lists the binaries that pass on PostgreSQL today; the others of STORE_TESTS still meet
store SQL or behaviour that is wrong on PostgreSQL. GS_PG_STORE_BINARIES (comma-separated)
runs another selection, e.g. all of STORE_TESTS, to see where they stand."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402

BUILD = os.environ.get("GS_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "build")
# Every unit test binary that opens a store (and includes tests/unit/ut_store.h).
STORE_TESTS = ["test_store", "test_retention", "test_pyramid", "test_backlog", "test_backfill",
               "test_blocks_read", "test_rest_store", "test_wave", "test_export", "test_gw",
               "test_ana"]
# Those that pass on PostgreSQL.
BINARIES = ["test_retention", "test_backlog", "test_backfill", "test_blocks_read", "test_wave",
            "test_export", "test_gw", "test_ana"]


def main():
    names = BINARIES
    sel = os.environ.get("GS_PG_STORE_BINARIES")
    if sel:
        names = [n.strip() for n in sel.split(",") if n.strip()]
    if not names:
        raise AssertionError("no binaries to run")
    failed = []
    t_all = time.monotonic()
    with pgcluster.PgCluster(fast=True) as pg:
        print("cluster started in %.2f s" % pg.start_seconds)
        for name in names:
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
            # cmocka's summary: "[  SKIPPED ] N test(s), listed below:" (absent when none)
            m = re.search(r"^\[  SKIPPED \] (\d+) test", out, re.M)
            skipped = int(m.group(1)) if m else 0
            m = re.search(r"^\[==========\] (\d+) test\(s\) run", out, re.M)
            ran = int(m.group(1)) if m else 0
            print("%s: exit %d in %.2f s, %d tests, %d skipped on PostgreSQL"
                  % (name, p.returncode, time.monotonic() - t0, ran, skipped))
            if p.returncode != 0:
                failed.append("%s exited %d" % (name, p.returncode))
            elif ran == 0 or skipped >= ran:
                failed.append("%s ran no test on PostgreSQL (%d run, %d skipped)"
                              % (name, ran, skipped))
        if failed:
            sys.stdout.write(pg.server_log()[-4000:])
    print("total %.2f s" % (time.monotonic() - t_all))
    if failed:
        raise AssertionError("; ".join(failed))
    print("ok")


if __name__ == "__main__":
    main()
