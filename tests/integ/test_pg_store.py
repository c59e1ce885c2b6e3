"""integ.pg_store: the store's unit tests (and those of the modules that open a store) against a
real, throwaway PostgreSQL cluster (tests/integ/pgcluster.py). Each binary gets a fresh database
through GS_PG_URL; tests/unit/ut_store.h then opens every store of the binary on PostgreSQL (a
fresh schema per data directory). Each must pass. The few cases that check what only SQLite has
(its files, EXPLAIN QUERY PLAN, ...) skip themselves on PostgreSQL (UT_SQLITE_ONLY); how many
skipped is printed per binary. Never skipped as a whole: no PostgreSQL here is a failure.

It runs the binaries of STORE_TESTS that are in PASSING (those that pass on PostgreSQL today; the
others still meet store SQL or behaviour that is wrong there). GS_PG_STORE_BINARIES
(comma-separated) runs another selection, e.g. all of STORE_TESTS, to see where they stand."""

import concurrent.futures
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402

BUILD = os.environ.get("GS_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "build")
# Every unit test binary that opens a store (and includes tests/unit/ut_store.h), the longest
# first (several run at a time: the long ones should not be left for the end).
STORE_TESTS = ["test_store", "test_wave", "test_pyramid", "test_retention", "test_export",
               "test_backfill", "test_ana", "test_backlog", "test_gw", "test_rest_store",
               "test_blocks_read"]
# Those of them that pass on PostgreSQL.
PASSING = ["test_store", "test_wave", "test_pyramid", "test_retention", "test_export",
           "test_backfill", "test_ana", "test_backlog", "test_gw", "test_rest_store",
           "test_blocks_read"]
BINARIES = [n for n in STORE_TESTS if n in PASSING]

# Three jobs at a time (each in its own database): much of their time is spent waiting for the
# server or for the store's writer thread. test_store, the longest by far (each of its 30 tests
# migrates a fresh schema), runs as two jobs: its test_writer_* tests and the others (cmocka name
# globs through GS_UT_FILTER / GS_UT_SKIP, tests/unit/test_store.c; together they are all its
# tests). Measured here (2 cores shared, load 3-5 from other work): one at a time ~85 s, two 54 s,
# three 41-64 s with test_store whole (~30-34 s of it alone), three with it split 40 s (80 s at
# load 8-11).
PARALLEL = 3
SPLIT = {"test_store": "test_writer_*"}


def jobs_of(names):
    """(label, binary, database name, extra environment) for each job."""
    jobs = []
    for name in names:
        glob = SPLIT.get(name)
        if glob:
            jobs.append(("%s[%s]" % (name, glob), name, "gs_%s_a" % name, {"GS_UT_FILTER": glob}))
            jobs.append(("%s[not %s]" % (name, glob), name, "gs_%s_b" % name,
                         {"GS_UT_SKIP": glob}))
        else:
            jobs.append((name, name, "gs_" + name, {}))
    return jobs


def run_one(name, url, extra):
    """Runs one binary against url: (exit code or None when missing, output, seconds)."""
    exe = os.path.join(BUILD, "tests", name)
    if not os.path.exists(exe):
        return None, "%s: not built (%s)\n" % (name, exe), 0.0
    t0 = time.monotonic()
    p = subprocess.run([exe], env=dict(os.environ, GS_PG_URL=url, **extra), capture_output=True,
                       text=True, timeout=240)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


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
        jobs = jobs_of(names)
        urls = {db: pg.create_db(db) for _, _, db, _ in jobs}
        with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futs = [(label, pool.submit(run_one, name, urls[db], extra))
                    for label, name, db, extra in jobs]
            for label, fut in futs:
                rc, out, secs = fut.result()
                sys.stdout.write(out)
                if rc is None:
                    failed.append("%s: not built" % label)
                    continue
                # cmocka's summary: "[  SKIPPED ] N test(s), listed below:" (absent when none)
                m = re.search(r"^\[  SKIPPED \] (\d+) test", out, re.M)
                skipped = int(m.group(1)) if m else 0
                m = re.search(r"^\[==========\] (\d+) test\(s\) run", out, re.M)
                ran = int(m.group(1)) if m else 0
                print("%s: exit %d in %.2f s, %d tests, %d skipped on PostgreSQL"
                      % (label, rc, secs, ran, skipped))
                if rc != 0:
                    failed.append("%s exited %d" % (label, rc))
                elif ran == 0 or skipped >= ran:
                    failed.append("%s ran no test on PostgreSQL (%d run, %d skipped)"
                                  % (label, ran, skipped))
        if failed:
            sys.stdout.write(pg.server_log()[-4000:])
    print("total %.2f s" % (time.monotonic() - t_all))
    if failed:
        raise AssertionError("; ".join(failed))
    print("ok")


if __name__ == "__main__":
    main()
