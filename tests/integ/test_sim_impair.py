"""The simulator under link impairment and server stalls keeps the protocol's reliability rules
and reports honest counters.

1. Latency, jitter, frequent simulated link loss and a server SIGKILL + restart on the same port,
   through a checking proxy: after every
   WELCOME the terminal sends from resume_seq + 1 in seq order, every block it already put on the
   wire carries RESENT, chunks of a block are consecutive, at most ack_window blocks are
   unacknowledged; in the end every block is acknowledged and stored exactly once (seq 1..n).
2. A tiny retransmit buffer while the server is frozen (SIGSTOP): blocks are dropped, and the
   store shows exactly that many gaps, while every block counted as acknowledged is stored.
"""
import asyncio
import signal
import struct
import threading
import time

from gslib import *

N1 = 20
N2 = 10


class CheckingProxy:
    """Relays 127.0.0.1:port <-> the server and checks the terminal side of each session."""

    def __init__(self, upstream_port):
        self.up = upstream_port
        self.port = None
        self.lock = threading.Lock()
        self.errors = []
        self.wire_max = {}  # terminal id -> highest block seq seen on the wire so far
        self.sessions = 0
        self.resent_frames = 0  # chunk frames with RESENT
        self.resent_seen = 0  # ... of blocks this proxy had relayed before
        self.resent_unseen = 0  # ... whose earlier copy was lost with the link in the delay queue
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(10):
            fail("proxy did not start")

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(asyncio.start_server(self._conn, "127.0.0.1", 0))
        self.port = srv.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(msg)

    async def _conn(self, cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.up)
        except OSError:
            cw.close()
            return
        st = {"tid": None, "resume": None, "window": 0, "acked": 0, "last": None, "sent": set(),
              "chunk": None}
        await asyncio.gather(self._pipe(cr, sw, st, self._from_terminal),
                             self._pipe(sr, cw, st, self._from_server), return_exceptions=True)

    async def _pipe(self, r, w, st, on_frame):
        buf = b""
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                buf += d
                while len(buf) >= 10:
                    if buf[0:2] != b"\xC5\x47":
                        self.error("bytes between frames")
                        buf = buf[1:]
                        continue
                    ln = struct.unpack_from("<H", buf, 6)[0]
                    if len(buf) < 14 + ln:
                        break
                    on_frame(st, buf[3], buf[4], buf[10:10 + ln])
                    buf = buf[14 + ln:]
                w.write(d)  # after parsing: the proxy has seen a WELCOME or ACK before the peer
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    def _from_server(self, st, ftype, flags, p):
        if ftype == WELCOME:
            st["window"] = struct.unpack_from("<H", p, 10)[0]
            st["resume"] = st["acked"] = struct.unpack_from("<Q", p, 12)[0]
            with self.lock:
                self.sessions += 1
        elif ftype == ACK:
            st["acked"] = max(st["acked"], struct.unpack_from("<Q", p, 0)[0])

    def _from_terminal(self, st, ftype, flags, p):
        if ftype == HELLO:
            off = 4
            while off + 3 <= len(p):
                tag, ln = struct.unpack_from("<BH", p, off)
                if tag == 1:
                    st["tid"] = p[off + 3:off + 3 + ln].decode()
                off += 3 + ln
            return
        if ftype not in (WAVEFORM, EVENT):
            return
        tid = st["tid"]
        seq = struct.unpack_from("<Q", p, 0)[0]
        ci, cc = p[31], p[32]
        if st["resume"] is None:
            self.error("%s: block %d before WELCOME" % (tid, seq))
            return
        if st["chunk"] is not None:  # inside a block: the next chunk of the same one
            if (seq, ci) != (st["chunk"][0], st["chunk"][1] + 1):
                self.error("%s: chunk %d/%d of %d after chunk %d of %d" %
                           (tid, ci, cc, seq, st["chunk"][1], st["chunk"][0]))
        elif ci != 0:
            self.error("%s: block %d starts with chunk %d" % (tid, seq, ci))
        st["chunk"] = None if ci + 1 == cc else (seq, ci)
        if ci != 0:
            return
        want = st["resume"] + 1 if st["last"] is None else st["last"] + 1
        if seq != want:
            self.error("%s: block %d sent, expected %d (resume %d)" % (tid, seq, want, st["resume"]))
        st["last"] = seq
        st["sent"].add(seq)
        out = sum(1 for s in st["sent"] if s > st["acked"])
        if out > st["window"]:
            self.error("%s: %d blocks unacknowledged, window %d" % (tid, out, st["window"]))
        with self.lock:
            seen = seq <= self.wire_max.get(tid, 0)
            self.wire_max[tid] = max(self.wire_max.get(tid, 0), seq)
            if flags & 1:
                self.resent_frames += 1
                if seen:
                    self.resent_seen += 1
                else:
                    self.resent_unseen += 1
        if seen and not flags & 1:
            self.error("%s: block %d re-sent without the RESENT flag" % (tid, seq))

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def check_clean(err):
    """Sanitizer builds: the simulator's stderr holds no report (its exit status alone cannot
    tell, as 1 is also the expected status after dropped blocks)."""
    bad = [l for l in err.splitlines() if "Sanitizer" in l or "runtime error" in l]
    check(not bad, "simulator stderr free of sanitizer reports %s" % (bad[:3] or ""))


def seq_report(data):
    """Per terminal: (stored rows, distinct seqs, max seq)."""
    c = db(data)
    rows = c.execute("SELECT terminal_id, COUNT(*), COUNT(DISTINCT seq), MAX(seq) FROM blocks "
                     "GROUP BY terminal_id").fetchall()
    c.close()
    return {r[0]: r[1:] for r in rows}


def impaired_run():
    with TempDir() as data:
        secrets = provision(data, N1, "J")
        srv = Server(data).start()
        port = srv.tport
        proxy = CheckingProxy(port)
        try:
            p = sim_start(proxy.port, secrets, N1, 12,
                          ["--rate", "2000", "--latency-ms", "50", "--jitter-ms", "30",
                           "--disconnect-every", "2", "--drain", "40", "--seed", "5",
                           "--backoff-min-ms", "50", "--backoff-max-ms", "500"])
            wait_for(lambda: (srv.metric("gridsense_blocks_stored_total") or 0) >= N1 * 20, 30,
                     "streaming under way")
            # Frozen, then killed: blocks sent into its socket buffers are never stored, so they
            # must cross the wire a second time, flagged RESENT.
            srv.proc.send_signal(signal.SIGSTOP)
            time.sleep(0.5)
            srv.kill()
            time.sleep(1.0)
            srv = Server(data, tport=port).start()
            rc, s, err = sim_finish(p, timeout=120)
            print("summary:", s)
            check_clean(err)
            check(s is not None and rc == 0 and s["unacked"] == 0 and s["blocks_dropped"] == 0,
                  "simulator: every block acknowledged, none dropped")
            check(s["reconnects"] >= N1 and s["blocks_resent"] > 0,
                  "links were dropped (%d re-logins) and blocks re-sent (%d)" %
                  (s["reconnects"], s["blocks_resent"]))
            check(s["blocks_acked"] == s["blocks_generated"], "blocks_acked = blocks_generated")
            time.sleep(0.2)  # let the proxy threads finish parsing the last bytes
            with proxy.lock:
                errors = list(proxy.errors)
                print("proxy: %d sessions, %d RESENT blocks: %d re-transmissions, %d of blocks "
                      "whose first copy was lost in the delay queue" %
                      (proxy.sessions, proxy.resent_frames, proxy.resent_seen, proxy.resent_unseen))
            for e in errors:
                print("  " + e)
            check(not errors, "on the wire: resend from resume_seq + 1 in order, RESENT on every "
                              "re-transmission, chunks consecutive, ack window respected")
            check(proxy.resent_seen > 0, "blocks crossed the wire twice, with RESENT")
            rep = seq_report(data)
            bad = {t: r for t, r in rep.items() if r[0] != r[1] or r[2] != r[0]}
            check(len(rep) == N1 and not bad, "store: per terminal seq 1..n exactly once %s" % (bad or ""))
            check(sum(r[0] for r in rep.values()) == s["blocks_acked"], "store holds blocks_acked blocks")
        finally:
            proxy.close()
            check(srv.stop() == 0, "server stops cleanly")


def overflow_run():
    with TempDir() as data:
        secrets = provision(data, N2, "V")
        srv = Server(data).start()
        try:
            p = sim_start(srv.tport, secrets, N2, 8,
                          ["--rate", "2000", "--buffer-blocks", "20", "--drain", "30", "--seed", "6",
                           "--backoff-min-ms", "50", "--backoff-max-ms", "500"])
            wait_for(lambda: (srv.metric("gridsense_blocks_stored_total") or 0) >= N2 * 10, 30,
                     "streaming under way")
            srv.proc.send_signal(signal.SIGSTOP)
            time.sleep(3)  # 30 blocks per terminal arrive for a 20-block buffer
            srv.proc.send_signal(signal.SIGCONT)
            rc, s, err = sim_finish(p, timeout=90)
            print("summary:", s)
            check_clean(err)
            check(s is not None and s["unacked"] == 0, "every block still held was acknowledged")
            check(s["blocks_dropped"] > 0 and rc == 1,
                  "ring overflowed: %d blocks dropped, exit status 1" % s["blocks_dropped"])
            check(s["blocks_generated"] == s["blocks_acked"] + s["blocks_dropped"],
                  "generated = acked + dropped")
            rep = seq_report(data)
            stored = sum(r[0] for r in rep.values())
            gaps = sum(r[2] - r[1] for r in rep.values())
            check(all(r[0] == r[1] for r in rep.values()), "no block stored twice")
            check(stored == s["blocks_acked"], "store holds exactly the %d acknowledged blocks" % stored)
            check(gaps == s["blocks_dropped"], "store has %d gaps = blocks_dropped" % gaps)
        finally:
            check(srv.stop() == 0, "server stops cleanly")


def main():
    impaired_run()
    overflow_run()


if __name__ == "__main__":
    main()
