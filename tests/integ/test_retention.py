#!/usr/bin/env python3
"""Retention, `gridsense db stats` and the disk-full behaviour of the real server (issue 10).

1. Retention: blocks streamed by the simulator are aged in the database (their stored time moved
   40 days back, status rows 20 days back), then one terminal streams again; one block is made a capture
   and one voltage event put in the middle of a terminal's blocks; a server with [history]
   raw_days = 30, event pre/post 1 s, status_days = 10 and 50 rows per step deletes exactly the
   aged raw blocks outside the event window (in several steps), keeps the window, the capture
   and the blocks the third terminal streamed afterwards, and its metrics, log line and
   `db stats` agree with the database. A copy of a terminal's summary pyramid 100 days back
   loses its 1 s / 10 s rows (pyramid_fine_days = 60) and keeps the coarser ones, and the
   waveform API answers that old range from the 1 min level, as one segment.
2. Disk full: the running server gets a file size limit (prlimit RLIMIT_FSIZE, unprivileged,
   SIGXFSZ ignored by the server) while terminals stream: gridsense_store_disk_full goes to 1
   with one alarm line, POSTs get 507 while GETs answer, and lifting the limit resumes ingest.
   Full again, the server is stopped: the shutdown writes a handful of ERROR lines (summaries),
   not one per block.
"""
import json
import os
import re
import resource
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

DAY = 86400 * 10**9


def db_stats(data, *extra):
    p = run([GRIDSENSE, "db", "stats", "--data", data, "--json"] + list(extra))
    return json.loads(p.stdout)


def retention_part():
    with TempDir() as data:
        secrets = provision(data, 3, "R")
        srv = Server(data).start()
        rc, s, err = sim(srv.tport, secrets, 3, 4, ["--rate", "2000", "--block-ms", "100",
                                                    "--disturb", "0"])
        check(rc == 0, "simulator streamed and drained (%s)" % err[-300:])
        check(srv.stop() == 0, "first server stops")

        c = db(data)
        per = dict(c.execute("SELECT terminal_id, count(*) FROM blocks GROUP BY 1").fetchall())
        check(len(per) == 3 and min(per.values()) >= 20, "blocks stored per terminal: %s" % per)
        # Everything stored so far was stored 40 days ago (status rows: 20 days ago).
        c.execute("UPDATE blocks SET received_ns = received_ns - ?", (40 * DAY,))
        c.execute("UPDATE status SET received_ns = received_ns - ?", (20 * DAY,))
        # a capture (EVENT block) of R0002, and a 0.3 s event in the middle of R0001's blocks
        cap_seq = c.execute("SELECT min(seq) + 3 FROM blocks WHERE terminal_id = 'R0002'").fetchone()[0]
        c.execute("UPDATE blocks SET kind = 1 WHERE terminal_id = 'R0002' AND seq = ?", (cap_seq,))
        c.execute("INSERT INTO events(terminal_id, seq, trigger, trigger_ns) VALUES('R0002', ?, 1, 0)",
                  (cap_seq,))
        rows = c.execute("SELECT seq, t0_ns, nsamples, sample_rate FROM blocks WHERE terminal_id = "
                         "'R0001' ORDER BY seq").fetchall()
        mid = rows[len(rows) // 2]
        ev_start, ev_dur = mid[1], 300 * 10**6
        c.execute("INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, detected_ns) "
                  "VALUES('R0001', 'dip', ?, ?, ?)", (ev_start, ev_dur, ev_start))
        # R0001's summary pyramid copied 100 days back (a multiple of every level's width): the
        # fine levels of the copy are past pyramid_fine_days, its coarse ones are kept
        c.execute("INSERT INTO wave_pyramid SELECT terminal_id, level, bucket_ns - ?1, t_first_ns "
                  "- ?1, t_end_ns - ?1, seq_first, seq_last, sample_rate, time_quality, "
                  "channel_mask, n, stats FROM wave_pyramid WHERE terminal_id = 'R0001'",
                  (100 * DAY,))
        old_cut = time.time_ns() - 50 * DAY
        pyr_fine_old = c.execute("SELECT count(*) FROM wave_pyramid WHERE level < 2 AND bucket_ns "
                                 "< ?", (old_cut,)).fetchone()[0]
        pyr_coarse_old = c.execute("SELECT count(*) FROM wave_pyramid WHERE level >= 2 AND "
                                   "bucket_ns < ?", (old_cut,)).fetchone()[0]
        pyr_old_t = c.execute("SELECT min(t_first_ns), max(t_end_ns) FROM wave_pyramid WHERE "
                              "bucket_ns < ? AND level = 0", (old_cut,)).fetchone()
        check(pyr_fine_old > 0 and pyr_coarse_old > 0, "old pyramid rows: %d fine, %d coarse"
              % (pyr_fine_old, pyr_coarse_old))
        c.commit()
        # what must stay: R0001 blocks overlapping [start - 1 s, end + 1 s] (touching the start)
        lo, hi = ev_start - 10**9, ev_start + ev_dur + 10**9
        keep1 = sum(1 for seq, t0, n, r in rows if t0 + n * 10**9 // r >= lo and t0 < hi)
        n1, n2, n3 = per["R0001"], per["R0002"], per["R0003"]
        status_old = c.execute("SELECT count(*) FROM status").fetchone()[0]
        c.close()

        # R0003 streams again now (retention off): recent blocks behind the old ones.
        off = os.path.join(data, "off.ini")
        # (no backfill: it would re-analyse R0001's unit and drop the planted event, which the
        # signal does not contain)
        open(off, "w").write("[history]\nraw_days = 0\n[analysis]\nbackfill = false\n")
        only3 = os.path.join(data, "r3.txt")
        open(only3, "w").write([l for l in open(secrets) if l.startswith("R0003")][0])
        srv = Server(data, extra=["--config", off]).start()
        rc, s, err = sim(srv.tport, only3, 1, 2, ["--rate", "2000", "--block-ms", "100",
                                                  "--disturb", "0"])
        check(rc == 0, "R0003 streamed again")
        check(srv.stop() == 0, "second server stops")
        c = db(data)
        new3 = c.execute("SELECT count(*) FROM blocks WHERE terminal_id = 'R0003'").fetchone()[0] - n3
        status_all = c.execute("SELECT count(*) FROM status").fetchone()[0]
        c.close()
        check(new3 >= 10, "R0003 stored %d new blocks" % new3)
        expect_deleted = (n1 - keep1) + (n2 - 1) + n3

        cfg = os.path.join(data, "ret.ini")
        open(cfg, "w").write("[history]\nraw_days = 30\nevent_pre_s = 1\nevent_post_s = 1\n"
                             "status_days = 10\nbatch_rows = 50\ninterval = 1\n"
                             "pyramid_fine_days = 60\n"
                             "[analysis]\nbackfill = false\n")
        srv = Server(data, extra=["--config", cfg]).start()
        try:
            wait_for(lambda: (srv.metric("gridsense_retention_passes_total") or 0) >= 1, 60,
                     "a retention pass")
            c = db(data)
            left = dict(c.execute("SELECT terminal_id, count(*) FROM blocks GROUP BY 1").fetchall())
            check(left.get("R0001") == keep1, "R0001 keeps its %d blocks around the event (%s)"
                  % (keep1, left.get("R0001")))
            check(left.get("R0002") == 1 and c.execute(
                "SELECT kind FROM blocks WHERE terminal_id = 'R0002'").fetchone()[0] == 1,
                "R0002 keeps only its capture")
            check(left.get("R0003") == new3, "R0003 keeps its %d recent blocks" % new3)
            kept = c.execute("SELECT min(t0_ns), max(t0_ns + nsamples * 1000000000 / sample_rate) "
                             "FROM blocks WHERE terminal_id = 'R0001'").fetchone()
            check(kept[1] >= lo and kept[0] < hi, "the kept blocks are the event window")
            st_left = c.execute("SELECT count(*) FROM status").fetchone()[0]
            check(st_left == status_all - status_old, "old status rows deleted (%d of %d left)"
                  % (st_left, status_all))
            c.close()
            deleted = srv.metric('gridsense_retention_rows_deleted_total{table="blocks_raw"}')
            check(deleted == expect_deleted, "metric: %s raw blocks deleted = %d" % (deleted, expect_deleted))
            steps = srv.metric("gridsense_retention_steps_total")
            check(steps >= expect_deleted / 50, "deleted in steps of <= 50 rows (%s steps)" % steps)
            check(srv.metric('gridsense_retention_rows_deleted_total{table="status"}') == status_old,
                  "metric: status rows deleted")
            check(srv.metric("gridsense_retention_last_run_timestamp_seconds") > time.time() - 120,
                  "metric: last run time")
            check(srv.metric("gridsense_store_disk_full") == 0, "metric: disk not full")
            check(re.search(r"retention pass: deleted blocks_raw %d, status %d, pyramid_fine %d rows"
                            % (expect_deleted, status_old, pyr_fine_old), srv.log()),
                  "log: the pass's status line")
            # the pyramid: the old copy's fine levels gone, its coarse levels and the recent
            # rows kept; the waveform API answers the old range from the 1 min level, no gap
            check(srv.metric('gridsense_retention_rows_deleted_total{table="pyramid_fine"}')
                  == pyr_fine_old, "metric: %d old fine pyramid rows deleted" % pyr_fine_old)
            check(srv.metric('gridsense_retention_rows_deleted_total{table="pyramid_coarse"}')
                  == 0, "metric: no coarse pyramid row deleted")
            c = db(data)
            check(c.execute("SELECT count(*) FROM wave_pyramid WHERE level < 2 AND bucket_ns < ?",
                            (old_cut,)).fetchone()[0] == 0 and
                  c.execute("SELECT count(*) FROM wave_pyramid WHERE level >= 2 AND bucket_ns < ?",
                            (old_cut,)).fetchone()[0] == pyr_coarse_old,
                  "old fine pyramid rows gone, coarse ones kept")
            c.close()
            wf, wt = pyr_old_t[0] - 10**9, pyr_old_t[0] + 119 * 10**9
            st, w = srv.json("/api/v1/terminals/R0001/waveform?from=%d&to=%d&max_points=120"
                             % (wf, wt))
            check(st == 200 and w["source"] == "pyramid" and w["level_ns"] >= 60 * 10**9 and
                  w["sample_sets"] > 0 and len(w["segments"]) == 1,
                  "waveform of the old range from a coarser level (%s, level %s, %s sets)"
                  % (st, w.get("level_ns"), w.get("sample_sets")))

            # db stats (CLI, reader beside the running server) agrees with the database
            js = db_stats(data)
            c = db(data)
            tabs = {t["name"]: t for t in js["tables"]}
            n_blocks = c.execute("SELECT count(*) FROM blocks").fetchone()[0]
            lo_id, hi_id = c.execute("SELECT min(id), max(id) FROM blocks").fetchone()
            check(tabs["blocks"]["rows_upper"] == hi_id - lo_id + 1 >= n_blocks,
                  "db stats: blocks rowid span %d (rows %d)" % (hi_id - lo_id + 1, n_blocks))
            stored, raw, nb = c.execute(
                "SELECT sum(length(data)), sum(nsamples * nchannels * CASE sample_fmt WHEN 2 THEN 4 "
                "ELSE 2 END), count(*) FROM (SELECT * FROM blocks ORDER BY id DESC LIMIT 256)").fetchone()
            cp = js["compression"]
            check(cp["sample_blocks"] == nb and cp["stored_bytes"] == stored and cp["raw_bytes"] == raw
                  and abs(cp["ratio"] - raw / stored) < 1e-3, "db stats: compression %s" % cp)
            terms = {t["id"]: t for t in js["terminals"]}
            for tid in ("R0001", "R0002", "R0003"):
                a, b = c.execute("SELECT min(seq), max(seq) FROM blocks WHERE terminal_id = ?",
                                 (tid,)).fetchone()
                check(terms[tid]["seq_first"] == a and terms[tid]["seq_last"] == b,
                      "db stats: %s seqs %d..%d" % (tid, a, b))
            check(js["ingest"]["blocks"] == c.execute(
                "SELECT count(*) FROM blocks WHERE received_ns >= ?",
                (time.time_ns() - 3600 * 10**9,)).fetchone()[0] or js["ingest"]["blocks"] > 0,
                "db stats: the last hour's blocks")
            check(js["fs_free_bytes"] > 0 and js["file_bytes"] > 0, "db stats: sizes")
            c.close()
            ex = db_stats(data, "--exact")
            etabs = {t["name"]: t for t in ex["tables"]}
            check(ex["exact"] and etabs["blocks"]["rows"] == n_blocks and etabs["blocks"]["bytes"] > stored,
                  "db stats --exact: blocks rows %s, bytes %s" % (etabs["blocks"]["rows"],
                                                                   etabs["blocks"]["bytes"]))
            txt = run([GRIDSENSE, "db", "stats", "--data", data]).stdout
            check("compression" in txt and "R0003" in txt, "db stats: text report")

            # the API route: admin only
            st, body = srv.json("/api/v1/admin/db")
            check(st == 200 and body["exact"] is False and body["disk_full"] is False and
                  {t["id"] for t in body["terminals"]} == {"R0001", "R0002", "R0003"},
                  "GET /api/v1/admin/db (admin)")
            viewer = srv.make_token("ret-viewer", "viewer")
            st, _ = srv.http("/api/v1/admin/db", token=viewer)
            check(st == 403, "GET /api/v1/admin/db refused to a viewer (%d)" % st)
        finally:
            check(srv.stop() == 0, "retention server stops cleanly")


def file_limit(pid, nbytes):
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))


def db_files_size(data):
    p = os.path.join(data, "gridsense.db")
    return max(os.path.getsize(p), os.path.getsize(p + "-wal") if os.path.exists(p + "-wal") else 0)


def disk_full_part():
    N = 20
    with TempDir() as data:
        secrets = provision(data, N, "F")
        # The server ignores SIGXFSZ (inherited: an ignored signal stays ignored across exec),
        # so a write past the limit fails with EFBIG instead of killing it.
        old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        srv = Server(data).start()
        signal.signal(signal.SIGXFSZ, old)
        p = sim_start(srv.tport, secrets, N, 600, ["--rate", "4000", "--block-ms", "100",
                                                    "--disturb", "0", "--drain", "0"])
        try:
            wait_for(lambda: (srv.metric("gridsense_blocks_stored_total") or 0) > N * 5, 60,
                     "streaming under way")
            file_limit(srv.proc.pid, db_files_size(data) + (256 << 10))
            wait_for(lambda: srv.metric("gridsense_store_disk_full") == 1, 60, "disk full reported")
            print("ok: gridsense_store_disk_full = 1")
            check(srv.metric("gridsense_store_disk_full_failures_total") >= 1, "failed batches counted")
            st, body = srv.json("/api/v1/users", "POST",
                                json.dumps({"name": "late", "role": "viewer", "password": "x" * 16}))
            check(st == 507 and body["error"]["code"] == "insufficient_storage",
                  "POST while the disk is full: 507 (%d %s)" % (st, body))
            st, body = srv.json("/api/v1/terminals/F0001/commands", "POST",
                                json.dumps({"verb": "get-status"}))
            check(st == 507, "command POST while full: 507 (%d)" % st)
            st, body = srv.json("/api/v1/terminals")
            check(st == 200 and len(body["terminals"]) == N, "reads keep working (%d)" % st)
            st, body = srv.json("/api/v1/admin/db")
            check(st == 200 and body["disk_full"] is True, "db stats says disk full")
            time.sleep(1.5)  # more failed attempts: still one alarm line
            check(srv.log().count("disk full: the database cannot grow") == 1, "one alarm line")

            stored = srv.metric("gridsense_blocks_stored_total")
            file_limit(srv.proc.pid, resource.RLIM_INFINITY)
            wait_for(lambda: srv.metric("gridsense_store_disk_full") == 0, 60, "disk full cleared")
            wait_for(lambda: srv.metric("gridsense_blocks_stored_total") > stored + N, 60,
                     "ingest resumed")
            check("disk no longer full" in srv.log(), "log: the alarm cleared")
            st, _ = srv.json("/api/v1/users", "POST",
                             json.dumps({"name": "late", "role": "viewer", "password": "x" * 16}))
            check(st == 201, "POST after the disk freed up: %d" % st)
            check(srv.metric("gridsense_store_disk_full_episodes_total") == 1, "one episode")

            # Full again, then stop: a summary, not a line per block.
            before = srv.log().count(" ERROR ")
            file_limit(srv.proc.pid, db_files_size(data) + (256 << 10))
            wait_for(lambda: srv.metric("gridsense_store_disk_full") == 1, 60, "full again")
            time.sleep(2)  # blocks pile up in the queue
            queued = srv.metric("gridsense_store_queue_items")
            print("queued at shutdown:", queued)
            check(srv.stop(timeout=120) == 0, "server stops while the disk is full")
            log = srv.log()
            errors = [l for l in log.splitlines() if " ERROR " in l]
            shutdown_errors = len(errors) - before
            print("ERROR lines at and after the second full disk:", shutdown_errors)
            for l in errors[before:]:
                print("  ", l[:200])
            check(re.search(r"shutdown: \d+ items \(\d+ blocks\) in \d+ batches not stored: the disk is full",
                            log), "one shutdown summary line")
            check(queued >= 10 and shutdown_errors <= 8,
                  "%d ERROR lines for %d queued items" % (shutdown_errors, queued))
        finally:
            p.kill()
            p.wait()


def config_errors_part():
    with TempDir() as data:
        bad = os.path.join(data, "bad.ini")
        open(bad, "w").write("[history]\nraw_days = 30\nevent_days = 7\n")
        p = run([GRIDSENSE, "serve", "--data", data, "--config", bad], check_rc=False, timeout=30)
        check(p.returncode == 2 and "event_days (7) must be 0 (forever) or at least raw_days (30)"
              in p.stderr, "serve refuses event_days < raw_days: %s" % p.stderr.strip())
        open(bad, "w").write("[history]\nstatus_days = -3\n")
        p = run([GRIDSENSE, "serve", "--data", data, "--config", bad], check_rc=False, timeout=30)
        check(p.returncode == 2 and "bad.ini:2: history.status_days must be an integer in 0..36500"
              in p.stderr, "serve refuses a negative status_days: %s" % p.stderr.strip())
        p = run([GRIDSENSE, "db", "stats", "--data", os.path.join(data, "none")], check_rc=False)
        check(p.returncode == 1 and "gridsense db stats:" in p.stderr,
              "db stats without a database: exit 1 (%s)" % p.stderr.strip())
        p = run([GRIDSENSE, "db", "--help"])
        check("--exact" in p.stdout, "db --help")


def main():
    config_errors_part()
    retention_part()
    disk_full_part()


if __name__ == "__main__":
    main()
