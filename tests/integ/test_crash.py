"""The server is killed with SIGKILL mid-stream and restarted: the simulator reconnects and
re-sends, and the store ends up holding every block exactly once (no gaps, no duplicates)."""
import os
import signal
import time

from gslib import *

N = 50


def main():
    with TempDir() as data:
        secrets = provision(data, N, "K")
        srv = Server(data).start()
        port = srv.tport
        p = sim_start(port, secrets, N, 14,
                      ["--rate", "2000", "--block-ms", "100", "--drain", "90", "--seed", "3",
                       "--backoff-min-ms", "100", "--backoff-max-ms", "1000"])
        wait_for(lambda: (srv.metric("gridsense_blocks_stored_total") or 0) > N * 10, 60,
                 "streaming under way")
        # Freeze the server first so that every terminal has blocks in flight that were sent
        # but not acknowledged (some may be committed without their ACK having gone out):
        # this makes the re-send and dedup paths certain to run, not a matter of timing luck.
        srv.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: os.path.exists("/proc/%d" % srv.proc.pid), 1, "stopped server")
        time.sleep(0.5)  # the simulator keeps sending into the frozen server's socket buffers
        srv.kill()
        print("ok: server killed with SIGKILL mid-stream")
        stored_before = sum(r[0] for r in block_report(data).values())
        time.sleep(1.0)  # terminals notice, buffer and back off (not a synchronisation)
        # restart on the same port so the simulator finds it again
        srv2 = Server(data, tport=port).start()
        try:
            rc, s, err = sim_finish(p, timeout=300)
            print("summary:", s)
            check(rc == 0 and s["unacked"] == 0, "simulator: every block acknowledged in the end")
            check(s["reconnects"] >= N, "every terminal reconnected (%d)" % s["reconnects"])
            check(s["blocks_resent"] > 0, "blocks were re-sent after the crash (%d)" % s["blocks_resent"])
            rep = block_report(data)
            total = sum(r[0] for r in rep.values())
            check(total == s["blocks_generated"] and total > stored_before,
                  "store holds %d blocks = generated (%d before the kill)" % (total, stored_before))
            bad = [t for t, (cnt, dist, lo, hi) in rep.items() if cnt != dist or lo != 1 or hi != cnt]
            check(len(rep) == N and not bad, "per terminal: seq 1..n exactly once")
            dup = srv2.metric("gridsense_blocks_duplicate_total")
            print("duplicates ignored after restart:", dup)
        finally:
            check(srv2.stop() == 0, "restarted server stops cleanly")


if __name__ == "__main__":
    main()
