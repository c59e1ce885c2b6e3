#!/usr/bin/env python3
"""Long-range waveforms and trends through the HTTP API (docs/api.md "Stored waveforms", "Long
ranges", "Trends"): the simulator streams ~20 s from two terminals; an envelope over an hour and
over a day comes from the summary pyramid with the streamed samples in the right buckets and
gaps (no buckets) everywhere else; for the same 1 s buckets the pyramid's min/max/rms agree with
the envelope computed from the raw blocks; after a restart (the analysis stores its partial
10-min aggregates at shutdown) the trend of one quantity and the fleet ranking answer with the
simulator's terminals; `gridsense pyramid rebuild` recomputes the same rows from the blocks."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (GRIDSENSE, Server, TempDir, check, db, run, sim_finish, sim_start, wait_for)

S = 10**9
# Agreement between the pyramid's and the blocks' envelopes of the same buckets: both are
# computed from the same counts (min/max exactly; rms through a different summation order),
# then formatted with the channel's decimals: allow 1e-6 relative plus the last printed digit.
TOL_REL = 1e-6


def stored_sets(data, tid):
    c = db(data)
    n = c.execute("SELECT coalesce(sum(nsamples), 0), min(t0_ns) FROM blocks WHERE"
                  " terminal_id = ? AND kind = 0", (tid,)).fetchone()
    c.close()
    return n


def check_envelope(w, lo, hi, width, sets, what):
    """One segment covering the stream, gaps before and after (the rest of the range), buckets
    inside the streamed time only, and every stored sample counted once."""
    check(w["mode"] == "envelope" and w["source"] == "pyramid" and w["level_ns"] == width,
          "%s: envelope from the pyramid level %g s (%s %s)"
          % (what, width / S, w["source"], w.get("level_ns")))
    segs = w["segments"]
    check(len(segs) == 1, "%s: the 20 s stream is one segment (%d)" % (what, len(segs)))
    s = segs[0]
    check(abs(s["t0_ns"] - lo) < 2 * S and abs(s["end_ns"] - hi) < 2 * S,
          "%s: the segment spans the stream (%.3f s .. %.3f s after its start)"
          % (what, (s["t0_ns"] - lo) / S, (s["end_ns"] - lo) / S))
    b = s["buckets"]
    span = w["to_ns"] - w["from_ns"]
    bw = span // w["max_points"]
    check(all(s["t0_ns"] - bw <= t < s["end_ns"] for t in b["t_ns"]),
          "%s: %d buckets, all within the streamed time" % (what, len(b["t_ns"])))
    check(sum(b["n"]) == sets == w["sample_sets"] == s["n"],
          "%s: every stored sample set counted once (%d buckets hold %d, stored %d)"
          % (what, len(b["n"]), sum(b["n"]), sets))
    gaps = w["gaps"]
    check(len(gaps) == 2 and gaps[0]["from_ns"] == w["from_ns"] and gaps[0]["to_ns"] == s["t0_ns"]
          and gaps[1]["from_ns"] == s["end_ns"] and gaps[1]["to_ns"] == w["to_ns"]
          and gaps[0]["seq_before"] is None and gaps[1]["seq_after"] is None,
          "%s: the rest of the range is two gaps, no buckets" % what)
    for ch in ("Ua", "Ub", "Uc", "Ia"):
        mn, mx, rms = b["min"][ch], b["max"][ch], b["rms"][ch]
        check(len(mn) == len(mx) == len(rms) == len(b["t_ns"]) and
              all(a <= r <= c for a, r, c in zip(mn, rms, mx) if r is not None and a < 0 < c),
              "%s: %s min <= rms <= max in every bucket" % (what, ch))


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "L", "--secrets-out",
             secrets, "--data", data, "--vt-ratio", "100", "--ct-ratio", "200"])
        srv = Server(data, extra=["--dsp-workers", "1"]).start()
        p = sim_start(srv.tport, secrets, 2, 20, ["--disturb", "0"])
        rc, summary, _ = sim_finish(p, timeout=120)
        check(rc == 0 and summary, "simulator finished")

        def all_stored():
            return stored_sets(data, "L0001")[0] >= 19 * 4000
        wait_for(all_stored, 30, "the blocks stored")
        sets, first_t0 = stored_sets(data, "L0001")
        st, last = srv.json("/api/v1/terminals/L0001/waveform?from=%d&to=%d&max_points=10"
                            % (first_t0, first_t0 + 40 * S))
        check(st == 200 and last["segments"], "the stream as blocks (%d)" % st)
        lo, hi = last["segments"][0]["t0_ns"], last["segments"][-1]["end_ns"]

        # an hour around the stream: 10 s buckets from level 1; a day: 1 min from level 2
        for span, points, width, what in ((3600, 360, 10, "an hour"), (86400, 1440, 60, "a day")):
            f = lo - span * S // 2
            st, w = srv.json("/api/v1/terminals/L0001/waveform?from=%d&to=%d&max_points=%d"
                             % (f, f + span * S, points))
            check(st == 200, "%s: %d" % (what, st))
            check_envelope(w, lo, hi, width * S, sets, what)

        # the same 1 s buckets from the pyramid (a 120 s range) and from the blocks (60 s)
        t = (lo // S + 1) * S
        st, pw = srv.json("/api/v1/terminals/L0001/waveform?from=%d&to=%d&max_points=120"
                          % (t, t + 120 * S))
        st2, bw = srv.json("/api/v1/terminals/L0001/waveform?from=%d&to=%d&max_points=60"
                           % (t, t + 60 * S))
        check(st == st2 == 200 and pw["source"] == "pyramid" and pw["level_ns"] == S and
              bw["source"] == "blocks" and bw["mode"] == "envelope",
              "1 s buckets from the pyramid and from the blocks")
        pb, bb = pw["segments"][0]["buckets"], bw["segments"][0]["buckets"]
        by_t = {tn: i for i, tn in enumerate(pb["t_ns"])}
        compared = worst = 0
        bad = []
        for i, tn in enumerate(bb["t_ns"]):
            j = by_t.get(tn)
            if j is None or pb["n"][j] != bb["n"][i]:
                bad.append("bucket at +%d s: not in the pyramid's, or another count" % ((tn - t) // S))
                continue
            for key in ("min", "max", "rms"):
                for ch, vals in bb[key].items():
                    a, c = vals[i], pb[key][ch][j]
                    err = abs(a - c) / max(abs(a), 1e-9)
                    tol = TOL_REL + 0.06 / max(abs(a), 1e-9)  # the last printed digit
                    if err > tol:
                        bad.append("%s %s at +%d s: blocks %r, pyramid %r"
                                   % (key, ch, (tn - t) // S, a, c))
                    worst = max(worst, err)
                    compared += 1
        check(not bad, "pyramid and blocks agree bucket by bucket (%s)" % bad[:5])
        check(compared >= 6 * 3 * 15, "%d values compared, largest relative difference %.2g"
              % (compared, worst))

        # the analysis stores its partial 10-min aggregates at shutdown: trends after a restart
        srv.stop()
        srv = Server(data, extra=["--dsp-workers", "1"]).start()
        st, tr = srv.json("/api/v1/terminals/L0001/trend?quantity=Ua.rms&from=0")
        check(st == 200 and tr["count"] >= 1 and tr["values"][0] and
              abs(tr["values"][0] - 57.7) < 3,  # secondary volts, as the analysis stores
              "trend: the 10-min Ua RMS of the stream, secondary (%s, %s)"
              % (tr.get("count"), tr.get("values")))
        # (on the intervals' end: the partial interval ends at the next 10-min boundary, which
        # may be after now)
        st, rk = srv.json("/api/v1/measurements/ranking?quantity=u2_pct&from=0&to=%d&stat=max"
                          % (hi + 3600 * S))
        ids = sorted(r["terminal_id"] for r in rk.get("ranking", []))
        check(st == 200 and ids == ["L0001", "L0002"] and rk["terminals"] == 2,
              "ranking: the worst unbalance of each simulated terminal (%s)" % rk)
        vals = [r["value"] for r in rk["ranking"]]
        check(vals == sorted(vals, reverse=True) and all(0 <= v < 5 for v in vals),
              "ranking: largest first, plausible values %s" % vals)
        srv.stop()

        # backfill: `gridsense pyramid rebuild` recomputes from the stored blocks the same rows
        # the writer wrote at ingest (first deleted, as in a database from before the pyramid)
        def rows():
            c = db(data)
            r = c.execute("SELECT level, bucket_ns, t_first_ns, t_end_ns, seq_first, seq_last, n,"
                          " hex(stats) FROM wave_pyramid WHERE terminal_id = 'L0001'"
                          " ORDER BY level, bucket_ns").fetchall()
            c.close()
            return r
        before = rows()
        c = db(data)
        c.execute("DELETE FROM wave_pyramid")
        c.commit()
        c.close()
        run([GRIDSENSE, "pyramid", "rebuild", "L0001", "--data", data])
        after = rows()
        check(before and after == before, "pyramid rebuild: the same %d rows as written at ingest"
              % len(before))
        print("ok")


if __name__ == "__main__":
    main()
