"""Every command verb round-trips through the simulator: results, event capture stored, streaming
control, configuration, time sync and a reboot that ends done after reconnect."""
import json
import subprocess

from gslib import *


def send(data, tid, *args, wait=30):
    p = run([GRIDSENSE, "command", "send", tid] + list(args) + ["--wait", str(wait), "--data", data],
            check_rc=False, timeout=wait + 30)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None)


def main():
    with TempDir() as data:
        secrets = provision(data, 2, "S")
        srv = Server(data).start()
        try:
            p = sim_start(srv.tport, secrets, 2, 40, ["--rate", "2000", "--seed", "9", "--drain", "60"])
            wait_for(lambda: (srv.metric("gridsense_terminals_online") or 0) >= 2, 30, "online")
            rc, c = send(data, "S0001", "get-status")
            check(rc == 0 and c["state"] == "done", "get-status done")
            rc, c = send(data, "S0001", "capture", "cycles=10", "pretrigger=2")
            check(rc == 0 and c["state"] == "done" and "block_seq" in c["result"],
                  "capture done with the block seq of its event")
            seq = c["result"]["block_seq"]
            wait_for(lambda: db(data).execute("SELECT COUNT(*) FROM events WHERE terminal_id='S0001' AND seq=?",
                                              (seq,)).fetchone()[0] == 1, 20, "event stored")
            row = db(data).execute("SELECT kind, nsamples FROM blocks WHERE terminal_id='S0001' AND seq=?",
                                   (seq,)).fetchone()
            check(row[0] == 1 and row[1] == 10 * 2000 // 50, "capture stored as an event block of 10 cycles")
            rc, c = send(data, "S0001", "stream-stop")
            check(rc == 0, "stream-stop done")
            rc, c = send(data, "S0001", "stream-start")
            check(rc == 0, "stream-start done")
            rc, c = send(data, "S0001", "set-config", "report_interval=5", "dip=85", "swell=112")
            check(rc == 0, "set-config done")
            rc, c = send(data, "S0001", "set-config", "report_interval=0")
            check(rc == 2, "out-of-range argument refused by the CLI (exit 2)")
            rc, c = send(data, "S0001", "time-sync")
            check(rc == 0 and abs(c["result"]["clock_offset_ns"]) < 50_000_000,
                  "time-sync done, offset %.3f ms" % (c["result"]["clock_offset_ns"] / 1e6))
            rc, c = send(data, "S0002", "reboot", wait=60)
            check(rc == 0 and c["state"] == "done", "reboot acked, terminal reconnects, then done")
            st, j = srv.json("/api/v1/terminals/S0002")
            check(j["reconnects"] >= 1 and j["online"], "rebooted terminal is back online")
            st, j = srv.json("/api/v1/terminals/S0001")
            check(j["status"] is not None and "rsrp_dbm" in j["status"], "status visible in the API")
            subprocess.run(["kill", "-INT", str(p.pid)])
            rc, summ, err = sim_finish(p, timeout=120)
            print("summary:", summ)
            check(summ["commands_answered"] == 7, "simulator executed the 7 commands once each")
            check(rc == 0 and summ["unacked"] == 0, "all blocks acknowledged")
        finally:
            check(srv.stop() == 0, "server stops cleanly")


if __name__ == "__main__":
    main()
