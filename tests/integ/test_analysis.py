#!/usr/bin/env python3
"""Live analysis in the server: the simulator streams a scheduled dip and the server stores
exactly that event (start within one cycle, depth within 1 %) and serves it with its channels by
name (an event stored without names gets chN names), serves the latest window values,
stores aggregates and reports analysis metrics. A second terminal without a declared voltage
uses the sliding reference."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (GRIDSENSE, Server, TempDir, check, db, fail, read_secrets, run, sim_finish,
                   sim_start, wait_for)

DIP_AT_S = 6.0      # seconds after the simulator's t = 0 (its start second)
DIP_MS = 200
DIP_LEVEL = 60.0    # residual, % of nominal
CYCLE_NS = 20_000_000
UDIN = 57.735


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "A", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", str(UDIN)])
        # the second terminal: no declared voltage (sliding reference)
        r = run([GRIDSENSE, "terminal", "set", "A0002", "--declared-voltage", "0", "--data",
                 data])
        check("cleared" in r.stdout, "terminal set clears the declared voltage: %r" % r.stdout)
        r = run([GRIDSENSE, "terminal", "set", "NOPE", "--declared-voltage", "1", "--data",
                 data], check_rc=False)
        check(r.returncode == 1 and "no terminal" in r.stderr, "set on an unknown id fails")
        r = run([GRIDSENSE, "terminal", "set", "A0001", "--declared-voltage", "-3", "--data",
                 data], check_rc=False)
        check(r.returncode == 2, "negative declared voltage is a usage error")
        check(len(read_secrets(secrets)) == 2, "two terminals provisioned")

        srv = Server(data, extra=["--dsp-workers", "2"])
        srv.start()
        try:
            p = sim_start(srv.tport, secrets, 2, 14,
                          ["--disturb", "0",
                           "--schedule", "dip@%g+%d:%g/1" % (DIP_AT_S, DIP_MS, DIP_LEVEL)])

            def latest_ok():
                code, body = srv.json("/api/v1/terminals/A0001/latest")
                return code == 200 and body
            latest = wait_for(latest_ok, 30, "latest analysis values for A0001")
            check(abs(latest["freq"] - 50.0) < 0.05, "latest frequency ~50 Hz: %r"
                  % latest["freq"])
            chans = {c["name"]: c for c in latest["channels"]}
            for ph in ("Ua", "Ub", "Uc"):
                check(ph in chans, "channel %s in latest values: %r" % (ph, list(chans)))
                check(abs(chans[ph]["rms"] / UDIN - 1) < 0.05, "%s rms near nominal: %r"
                      % (ph, chans[ph]["rms"]))
            check("voltage_sequence" in latest, "three-phase values present")
            ua = chans["Ua"]
            check(len(ua["harmonic_angles_deg"]) == len(ua["harmonic_groups"])
                  and ua["harmonic_angles_deg"][1] == 0, "harmonic angles beside the groups: %r"
                  % ua["harmonic_angles_deg"][:8])
            check(isinstance(ua["dc_removed"], (int, float)), "removed DC offset reported")
            code, term = srv.json("/api/v1/terminals/A0001")
            check(code == 200 and term.get("latest") and term["declared_voltage"] == UDIN,
                  "terminal resource carries latest values and the declared voltage")
            check(term.get("analysis") and term["analysis"]["behind"] is False
                  and term["analysis"]["blocks_skipped"] == 0,
                  "terminal resource: analysis keeping up: %r" % term.get("analysis"))
            code, body = srv.json("/api/v1/terminals/A0001/measurements?interval=bogus")
            check(code == 400, "bad interval is a 400, got %d" % code)
            code, body = srv.json("/api/v1/terminals/A0001/events?limit=0")
            check(code == 400, "bad limit is a 400, got %d" % code)
            for bad in ("2026-02-30T00:00:00Z", "9999-12-31T23:59:59Z", "2026-01-01T00:00:00.Z",
                        "2026-01-01T00:00:60Z", "yesterday"):
                code, body = srv.json("/api/v1/events?from=" + bad)
                check(code == 400, "from=%s is a 400, got %d" % (bad, code))
            code, body = srv.json("/api/v1/events?from=2026-01-01T00:00:00.5Z&to=%d" % (2**62))
            check(code == 200 and "events" in body, "valid from/to accepted")

            rc, summary, err = sim_finish(p, timeout=120)
            check(rc == 0, "simulator exit 0 (rc=%s, stderr=%s)" % (rc, err[-500:]))
            check(srv.metric("gridsense_analysis_windows_total") > 50, "windows counted")
            check(srv.metric("gridsense_analysis_blocks_skipped_total") == 0,
                  "no analysis skipped")
            check(srv.metric("gridsense_analysis_terminals_behind") == 0, "nobody behind")

            # The events API names the channels as `gridsense analyze` does (docs/api.md).
            def api_event():
                code, body = srv.json("/api/v1/terminals/A0001/events")
                return code == 200 and body["events"]
            evs = wait_for(api_event, 60, "the dip in the events API")
            check(len(evs) == 1 and evs[0]["kind"] == "dip", "one dip in the API: %r" % evs)
            check(evs[0]["channels"] == ["Ua", "Ub", "Uc"],
                  "event channels by name: %r" % evs[0]["channels"])
            check(evs[0]["worst_channel"] in ("Ua", "Ub", "Uc"),
                  "worst channel by name: %r" % evs[0]["worst_channel"])
            # An event stored before the names were kept (schema 5): names from the mask bits.
            c = db(data)
            c.execute("INSERT INTO pq_events(terminal_id, kind, start_ns, duration_ns, extreme,"
                      " extreme_pct, reference, channels, worst_channel, flags, detected_ns)"
                      " VALUES('OLD1', 'swell', 1000, 5, 70, 121, 57.7, 10, 3, 0, 1)")
            c.commit()
            c.close()
            code, body = srv.json("/api/v1/events?limit=10000")
            old = [e for e in body["events"] if e["terminal"] == "OLD1"]
            check(code == 200 and len(old) == 1 and old[0]["channels"] == ["ch1", "ch3"]
                  and old[0]["worst_channel"] == "ch3",
                  "an event without stored names: chN from the mask: %r" % old)
        finally:
            srv.stop()
        check("stopped cleanly" in srv.log(), "server stopped cleanly")

        c = db(data)
        # the simulator's t = 0: the UTC second it started in (its summary says which)
        dip_start = summary["start_ns"] + int(DIP_AT_S * 1e9)
        rows = c.execute("SELECT terminal_id, kind, start_ns, duration_ns, extreme_pct, flags,"
                         " channels FROM pq_events ORDER BY terminal_id, start_ns").fetchall()
        a1 = [r for r in rows if r[0] == "A0001"]
        check(len(a1) == 1, "exactly one event stored for A0001: %r" % rows)
        tid, kind, start, dur, pct, flags, chans = a1[0]
        check(kind == "dip", "it is a dip: %r" % kind)
        check(abs(start - dip_start) <= CYCLE_NS,
              "dip start within one cycle: off by %.2f ms" % ((start - dip_start) / 1e6))
        check(abs(pct - DIP_LEVEL) <= 1.0, "depth within 1 %%: residual %.3f %%" % pct)
        check(abs(dur - DIP_MS * 1e6) <= CYCLE_NS,
              "duration within one cycle: %.2f ms" % (dur / 1e6))
        check(flags == 0, "declared reference, not cut short: flags %d" % flags)
        check(chans == 7, "all three phases dipped: mask %d" % chans)
        names = c.execute("SELECT channel_names FROM pq_events WHERE terminal_id='A0001'")
        names = names.fetchone()[0]
        check(names == "Ua,Ub,Uc", "channel names stored with the event: %r" % names)
        a2 = [r for r in rows if r[0] == "A0002"]
        check(a2 == [], "the undisturbed terminal has no event: %r" % a2)

        n3 = c.execute("SELECT count(*), sum(flags & 1) FROM measurements"
                       " WHERE terminal_id='A0001' AND interval='3s'").fetchone()
        check(n3[0] >= 3, "3 s aggregates stored: %r" % (n3,))
        check(n3[1] >= 1, "the 3 s aggregate holding the dip is flagged: %r" % (n3,))
        n10 = c.execute("SELECT count(*) FROM measurements WHERE terminal_id='A0001'"
                        " AND interval='10s'").fetchone()[0]
        check(n10 >= 1, "10-s frequency stored")
        dup = c.execute("SELECT count(*) FROM (SELECT terminal_id, interval, t_end_ns, count(*) n"
                        " FROM measurements GROUP BY 1, 2, 3 HAVING n > 1)").fetchone()[0]
        check(dup == 0, "no aggregate stored twice")
        print("ok: dip at %+.2f ms, %.2f ms long, residual %.3f %%"
              % ((start - dip_start) / 1e6, dur / 1e6, pct))


if __name__ == "__main__":
    main()
