#!/usr/bin/env python3
"""Both places the HTTP server can run (docs/decisions/0006-web-thread.md): on a loop thread of
its own (`[http] thread = on`, the default), where the API answers with the gateway's and the
analysis's published snapshots and its own read-only database connection and sends commands
through the main loop; and on the gateway's loop (`thread = off`). In each, while terminals
stream: terminal list, latest values, health, metrics, a command created and done, the metrics'
writer counters; SIGTERM stops everything with exit status 0 and every block acknowledged."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import GRIDSENSE, Server, TempDir, check, run, sim_finish, sim_start, wait_for


def main():
    for mode in ("on", "off"):
        one(mode)
        print("ok: [http] thread = %s" % mode)


def one(mode):
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "3", "--prefix", "W", "--secrets-out",
             secrets, "--data", data])
        ini = os.path.join(d, "gs.ini")
        with open(ini, "w") as f:
            f.write("[http]\nthread = %s\n" % mode)
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
                              json.dumps({"verb": "get-status"}))
        check(code == 201 and body["state"] in ("queued", "sent", "acked", "done"),
              "a command created through the main loop: %d %s" % (code, body))

        def done():
            c, b = srv.json("/api/v1/terminals/W0001/commands")
            return c == 200 and b["commands"][0]["state"] == "done"
        wait_for(done, 30, "the command done")
        check((srv.metric("gridsense_store_batches_total") or 0) > 0
              or (srv.metric("gridsense_blocks_stored_total") or 0) > 0,
              "writer counters in /metrics")
        rc, summary, err = sim_finish(p, timeout=120)
        check(rc == 0 and summary["unacked"] == 0, "every block acknowledged: %s" % summary)
        rc = srv.stop(signal.SIGTERM)
        check(rc == 0, "clean exit after SIGTERM (%s)" % rc)
        check("stopped cleanly" in srv.log(), "stop sequence completed")


if __name__ == "__main__":
    main()
