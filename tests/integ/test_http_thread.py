#!/usr/bin/env python3
"""The HTTP server on a loop thread of its own (`[http] thread = on`, the prototype of
docs/decisions/0006-web-thread.md): while terminals stream, the API answers from the web thread
with the gateway's and the analysis's published snapshots and its own read-only database
connection (terminal list, one terminal, latest values, health, metrics); a state-changing
request is refused with 503 and the error shape (not yet routed to the main loop); SIGTERM stops
the web thread first, then the rest, with exit status 0 and every block acknowledged."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import GRIDSENSE, Server, TempDir, check, run, sim_finish, sim_start, wait_for


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "3", "--prefix", "W", "--secrets-out",
             secrets, "--data", data])
        ini = os.path.join(d, "gs.ini")
        with open(ini, "w") as f:
            f.write("[http]\nthread = on\n")
        srv = Server(data, extra=["--config", ini, "--sync", "normal"]).start()
        p = sim_start(srv.tport, secrets, 3, 12, extra=["--drain", "30"])

        def all_online():
            code, body = srv.json("/api/v1/terminals")
            return code == 200 and sum(1 for t in body["terminals"] if t["online"]) == 3

        wait_for(all_online, 60, "three terminals online in the web thread's snapshot")
        code, body = srv.json("/api/v1/health")
        check(code == 200 and body["terminals_online"] == 3, "health from the web thread: %s" % body)

        def blocks_counted():
            code, t = srv.json("/api/v1/terminals/W0001")
            return code == 200 and t["blocks"] > 5 and t["durable_seq"] > 0 and t

        t = wait_for(blocks_counted, 60, "W0001's counters published (tick)")
        check(t["online"] and t["sample_rate"] == 4000, "one terminal: %s" % json.dumps(t)[:200])

        def latest():
            code, _ = srv.http("/api/v1/terminals/W0001/latest")
            return code == 200

        wait_for(latest, 60, "latest analysis values readable from the web thread")
        check(srv.metric("gridsense_terminals_online") == 3, "metrics from the web thread")
        code, body = srv.json("/api/v1/terminals/W0001/commands", "POST",
                              json.dumps({"verb": "ping"}))
        check(code == 503 and body["error"]["code"] == "unavailable",
              "a state-changing request is refused for now: %d %s" % (code, body))
        rc, summary, err = sim_finish(p, timeout=120)
        check(rc == 0 and summary["unacked"] == 0, "every block acknowledged: %s" % summary)
        rc = srv.stop(signal.SIGTERM)
        check(rc == 0, "clean exit after SIGTERM (%s)" % rc)
        check("stopped cleanly" in srv.log(), "stop sequence completed")


if __name__ == "__main__":
    main()
