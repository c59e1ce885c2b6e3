"""Abusive terminals and a hostile environment must not take the server down or starve the
others (regressions from review):

1. a terminal that never reads while the server must answer it (PONGs, then ACKs) is closed as
   "stalled", the server keeps running;
2. a database held write-locked by another connection delays ACKs (none while locked) and after
   the lock goes every block is stored once and acknowledged in order, without a gap;
3. hundreds of sessions each holding a half-received big block do not pause reading for all;
4. sessions paused by the server (ack window full while the store waits) outlive the heartbeat
   limit (BYE DEAD comes at 4 heartbeats of unanswered PINGs; their PONGs sit unread);
5. SIGTERM completes within the close grace while a connected terminal does not read.

Every scenario also checks that a separate well-behaved terminal keeps getting its blocks
acknowledged. Output-queue sizes are measured, not guessed: bytes the server generated for a
session minus what the kernel holds (/proc/net/tcp) is what sits in its user-space queue."""
import os
import socket
import sqlite3
import struct
import subprocess
import time

from gslib import *

MAX_WRITE_QUEUE = 1 << 20  # gw_opts_default max_write_queue: above it a session is "stalled"
INFLIGHT_HIGH = 64 << 20   # gw_opts_default inflight_high: store backlog that pauses everyone
CLOSE_GRACE_S = 5          # a closing session whose peer does not read is cut after this
PING_FRAME = frame(PING, struct.pack("<Iq", 7, 0))  # 26 bytes; its PONG is 26 bytes too
PONG_LEN = len(PING_FRAME)
NHOGS = 260                # x 256 KiB half-received blocks > INFLIGHT_HIGH
BIG_NS, BIG_NCH = 8192, 16  # 8192 samples x 16 channels x int16 = 256 KiB (max_block_bytes)
BIG_CHUNK = 62              # samples per chunk: 1984 bytes of samples per frame
HEARTBEAT = 5


def ack_seq(payload):
    return struct.unpack("<Q", payload)[0]


def block(seq, nsamples=100):
    return frame(WAVEFORM, block_payload(seq, time.time_ns(), 4000, nsamples,
                                         b"\x01\x00" * (nsamples * 3)))


def tiny_block(seq):
    return frame(WAVEFORM, block_payload(seq, time.time_ns(), 4000, 1, b"\x01\x00", nch=1))


def big_chunk(seq, t0, index):
    first = index * BIG_CHUNK
    n = min(BIG_CHUNK, BIG_NS - first)
    count = (BIG_NS + BIG_CHUNK - 1) // BIG_CHUNK
    return frame(WAVEFORM, block_payload(seq, t0, 4000, BIG_NS, b"\x02\x00" * (n * BIG_NCH),
                                         chunk_index=index, chunk_count=count, first=first, n=n,
                                         nch=BIG_NCH))


def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the ESTABLISHED IPv4 socket local_port -> remote_port."""
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fl = line.split()
            lp = int(fl[1].split(":")[1], 16)
            rp = int(fl[2].split(":")[1], 16)
            if lp == local_port and rp == remote_port and fl[3] == "01":
                tx, rx = fl[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def metrics_text(srv):
    """The /metrics page; a server that died fails the test right here."""
    if srv.proc.poll() is not None:
        fail("server died (exit %s)" % srv.proc.returncode)
    try:
        return srv.http("/metrics")[1]
    except Exception as e:  # reset, or cut in the middle of the answer
        try:
            srv.proc.wait(3)
        except subprocess.TimeoutExpired:
            pass
        fail("cannot read /metrics: %r (server exit %s)" % (e, srv.proc.poll()))


def metric(srv, name):
    """Sum of a metric over its labels, 0 when absent (like Server.metric)."""
    total = 0.0
    for line in metrics_text(srv).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pongs_sent(srv):
    return metric(srv, 'gridsense_frames_sent_total{type="PONG"}')


class Terminal:
    """A well-behaved terminal: reads everything, answers PINGs, remembers ACKs."""

    def __init__(self, port, tid, secret):
        self.tid = tid
        self.c = RawClient(port)
        t, p = self.c.login(tid, secret)
        check(t == WELCOME, "%s logs in" % tid)
        self.seq = struct.unpack_from("<qHHQI", p, 0)[3]
        self.acks = []
        self.pings = 0
        self.bye = None
        self.on_ack = None

    def send_blocks(self, k):
        for _ in range(k):
            self.seq += 1
            self.c.send(block(self.seq))

    def pump(self, seconds, until=None):
        """Handles incoming frames for up to `seconds` or until until() is true."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            t, p = self.c.recv_frame(timeout=min(0.1, max(0.01, deadline - time.monotonic())))
            if t == ACK:
                self.acks.append(ack_seq(p))
                if self.on_ack:
                    self.on_ack(self.acks[-1])
            elif t == PING:
                self.pings += 1
                self.c.send(frame(PONG, p[:4] + struct.pack("<q", time.time_ns())))
            elif t in (BYE, REJECT):
                self.bye = reject_reason(p)
                return

    def last_ack(self):
        return self.acks[-1] if self.acks else 0

    def wait_acked(self, seq, timeout=20):
        self.pump(timeout, lambda: self.last_ack() >= seq or self.bye)
        return self.last_ack() >= seq

    def exchange(self, k, what):
        """Sends k blocks and checks they are acknowledged."""
        self.send_blocks(k)
        ok = self.wait_acked(self.seq)
        check(ok and self.bye is None, "%s: blocks up to %d acknowledged %s"
              % (self.tid, self.seq, what))


def server_drained(sock, server_port):
    """True once the server has read everything sent on sock (frames are handled as read)."""
    port = sock.getsockname()[1]
    mine = tcp_queues(port, server_port)
    theirs = tcp_queues(server_port, port)
    return mine is not None and theirs is not None and mine[0] == 0 and theirs[1] == 0


def server_unread(sock, server_port):
    """Bytes sent on sock that the server has not read (its receive queue plus our send queue)."""
    port = sock.getsockname()[1]
    return tcp_queues(port, server_port)[0] + tcp_queues(server_port, port)[1]


class DeafClient(RawClient):
    """A terminal that logs in and then never reads its socket (tiny receive buffer)."""

    def __init__(self, srv, tid, secret):
        port = srv.tport
        self.srv = srv
        self.buf = b""
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.s.settimeout(10)
        self.s.connect(("127.0.0.1", port))
        self.port, self.sport = self.s.getsockname()[1], port
        t, _ = self.login(tid, secret)
        check(t == WELCOME, "deaf terminal %s logs in" % tid)
        self.pings = 0
        self.pongs0 = pongs_sent(srv)

    def stream(self, data, until, timeout, what):
        """Writes data (whole frames, partial writes resumed) until until() is true."""
        view = memoryview(data)
        off = 0
        deadline = time.monotonic() + timeout
        self.s.settimeout(0.2)
        while not until():
            if time.monotonic() > deadline:
                fail("timed out after %.0f s streaming %s" % (timeout, what))
            if off < len(view):
                try:
                    off += self.s.send(view[off:off + 65536])
                except socket.timeout:
                    pass
                except OSError:
                    off = len(view)  # closed by the server: just wait for until()
            else:
                time.sleep(0.05)

    def user_queue(self):
        """Bytes of PONGs the server generated for us that are in neither kernel: what sits in
        its own output queue for this session (the queue limited to MAX_WRITE_QUEUE)."""
        srv_tx = tcp_queues(self.sport, self.port)[0]
        my_rx = tcp_queues(self.port, self.sport)[1]
        return self.pings * PONG_LEN - srv_tx - my_rx

    def fill(self, low, high):
        """PINGs until the server's output queue for us holds between low and high bytes."""
        deadline = time.monotonic() + 30
        while True:
            # read by the server, and all answered (PONGs counted after they are queued)
            wait_for(lambda: server_drained(self.s, self.sport) and
                     pongs_sent(self.srv) - self.pongs0 >= self.pings, 20,
                     "server to answer our PINGs")
            q = self.user_queue()
            if q >= low:
                check(q <= high, "deaf terminal: server output queue filled to %d bytes" % q)
                return q
            if time.monotonic() > deadline:
                fail("could not fill the output queue (at %d bytes)" % q)
            k = max(1, min(10000, (high - max(q, 0)) // PONG_LEN))
            self.s.settimeout(20)
            self.s.sendall(PING_FRAME * k)
            self.pings += k


# ---- server A: stalled readers, reassembly hogs, shutdown with a deaf peer --------------------

def server_a():
    with TempDir() as data:
        sec = {}
        for prefix, n in (("H", 1), ("S", 3), ("R", NHOGS)):
            sec.update(read_secrets(provision(data, n, prefix)))
        srv = Server(data, ["--ack-window", "2", "--sync", "normal"]).start()
        try:
            h = Terminal(srv.tport, "H0001", sec["H0001"])
            h.exchange(3, "before the abuse")
            stalled_terminals(srv, h, sec)
            reassembly_hogs(srv, h, sec)
            shutdown_with_deaf_peer(srv, h, sec)
        finally:
            if srv.proc.poll() is None:
                srv.kill()  # a check failed: leave nothing behind


def stalled_terminals(srv, h, sec):
    # 1a. PONG path: a flood of PINGs whose answers are never read
    s1 = DeafClient(srv, "S0001", sec["S0001"])
    s1.stream(PING_FRAME * 250000, lambda: metric(srv, "gridsense_sessions_stalled_total") >= 1, 40,
              "PINGs to a deaf terminal")
    check(srv.proc.poll() is None, "PONGs to a terminal that never reads: session marked stalled, "
                                   "server alive")
    h.exchange(2, "while a stalled session is open")
    check(s1.closed(timeout=CLOSE_GRACE_S + 10), "stalled session is closed by the server")

    # 1b. ACK path: fill the output queue with PONGs to just below the limit, then send blocks
    # one at a time, each acknowledged from the store's completion callback, until an ACK is
    # the write that crosses the limit. (The server batches all blocks of one read into one
    # ACK, so the blocks go one by one.)
    s2 = DeafClient(srv, "S0002", sec["S0002"])
    q = s2.fill(MAX_WRITE_QUEUE - 1200, MAX_WRITE_QUEUE - 100)
    check(metric(srv, "gridsense_sessions_stalled_total") == 1, "not stalled below the limit")
    acks0 = metric(srv, "gridsense_acks_sent_total")
    s2.s.settimeout(10)
    deadline = time.monotonic() + 30
    seq = 0
    while metric(srv, "gridsense_sessions_stalled_total") < 2:
        if time.monotonic() > deadline or seq > 2000:
            fail("no stall after %d acknowledged blocks" % seq)
        seq += 1
        before = metric(srv, "gridsense_acks_sent_total")
        s2.s.sendall(tiny_block(seq))
        wait_for(lambda: metric(srv, "gridsense_acks_sent_total") > before or
                 metric(srv, "gridsense_sessions_stalled_total") >= 2, 20, "ACK of block %d" % seq)
    acks = metric(srv, "gridsense_acks_sent_total") - acks0
    check(acks == seq and acks * 22 >= MAX_WRITE_QUEUE - q,
          "ACKs to a terminal that never reads (%d on top of %d bytes queued): stalled" % (acks, q))
    check(srv.proc.poll() is None, "server alive after closing an ACK-stalled session")
    h.exchange(2, "after an ACK-stalled session")
    check(s2.closed(timeout=CLOSE_GRACE_S + 10), "ACK-stalled session is closed by the server")
    log = srv.log()
    check("S0001" in log and "S0002" in log and log.count("peer not reading") == 2,
          "both stalls logged as 'peer not reading'")
    for c in (s1, s2):
        c.close()
    h.exchange(1, "after both stalled sessions are gone")


def reassembly_hogs(srv, h, sec):
    # 3. NHOGS terminals each send the first chunk of a 256 KiB block and then nothing
    hogs = []
    t0 = time.time_ns()
    for i in range(1, NHOGS + 1):
        tid = "R%04d" % i
        c = RawClient(srv.tport)
        # the HELLO declares the 16 channels its blocks carry (a block's channels must be)
        t, _ = c.login(tid, sec[tid], hello_payload(tid, nch=BIG_NCH))
        if t != WELCOME:
            fail("hog %s could not log in (%r)" % (tid, t))
        c.send(big_chunk(1, t0, 0))
        hogs.append(c)
    want = NHOGS * BIG_NS * BIG_NCH * 2
    wait_for(lambda: metric(srv, "gridsense_ingest_inflight_bytes") >= want, 30,
             "all half blocks under reassembly")
    check(want > INFLIGHT_HIGH, "%d half-received blocks hold %d MiB (> the %d MiB backlog mark)"
          % (NHOGS, want >> 20, INFLIGHT_HIGH >> 20))
    h.exchange(4, "while %d sessions hold half-received big blocks" % NHOGS)
    check(metric(srv, "gridsense_sessions_paused") == 0, "no session is paused for reassembly")
    # a hog can still complete its block: reading continues for the hogs too
    hog = hogs[0]
    count = (BIG_NS + BIG_CHUNK - 1) // BIG_CHUNK
    hog.send(b"".join(big_chunk(1, t0, i) for i in range(1, count)))
    t, p = hog.recv_frame(timeout=20)
    check(t == ACK and ack_seq(p) == 1, "a hog completes its 256 KiB block and gets ACK 1")
    for c in hogs:
        c.close()
    wait_for(lambda: metric(srv, "gridsense_terminals_online") == 1 and
             metric(srv, "gridsense_ingest_inflight_bytes") == 0, 20, "hog sessions to close")
    print("ok: hog sessions closed, reassembly memory released")
    h.exchange(2, "after the hogs left")


def shutdown_with_deaf_peer(srv, h, sec):
    # 5. a terminal whose unread output fills both kernels and part of the server's queue
    stalled = metric(srv, "gridsense_sessions_stalled_total")
    d = DeafClient(srv, "S0003", sec["S0003"])
    d.fill(64 * 1024, 256 * 1024)
    check(metric(srv, "gridsense_sessions_stalled_total") == stalled and
          metric(srv, "gridsense_terminals_online") == 2,
          "deaf terminal with queued output is still online (not stalled)")
    h.exchange(1, "before shutdown")
    t0 = time.monotonic()
    rc = srv.stop(timeout=CLOSE_GRACE_S + 15)
    took = time.monotonic() - t0
    check(rc == 0 and took < CLOSE_GRACE_S + 10,
          "SIGTERM with a peer that does not read: exit 0 after %.1f s" % took)
    h.pump(5, lambda: h.bye is not None)
    check(h.bye == "SHUTDOWN", "healthy terminal got BYE SHUTDOWN")
    check(h.last_ack() == h.seq, "healthy terminal: everything acknowledged at shutdown")
    d.close()
    h.c.close()


# ---- server B: database locked by another connection ------------------------------------------

def stored_seqs(data, tid):
    c = db(data)
    rows = [r[0] for r in c.execute("SELECT seq FROM blocks WHERE terminal_id = ? ORDER BY seq",
                                    (tid,))]
    c.close()
    return rows


def contiguous(seqs):
    n = 0
    for s in seqs:
        if s != n + 1:
            break
        n = s
    return n


def server_b():
    n = 6
    with TempDir() as data:
        sec = {}
        for prefix in ("H", "L"):
            sec.update(read_secrets(provision(data, 1, prefix)))
        srv = Server(data, ["--heartbeat", str(HEARTBEAT), "--ack-window", "2"]).start()
        try:
            run_locked_db(srv, data, sec, n)
        finally:
            if srv.proc.poll() is None:
                srv.kill()  # a check failed: leave nothing behind


def run_locked_db(srv, data, sec, n):
    h = Terminal(srv.tport, "H0001", sec["H0001"])
    v = Terminal(srv.tport, "L0001", sec["L0001"])
    h.exchange(1, "before the lock")
    v.exchange(1, "(victim) before the lock")

    # every ACK the victim sees must be covered by contiguous stored blocks at that moment
    over = []

    def on_ack(a):
        have = contiguous(stored_seqs(data, "L0001"))
        if a > have:
            over.append((a, have))
    v.on_ack = on_ack

    lock = sqlite3.connect(os.path.join(data, "gridsense.db"), timeout=5,
                           isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    locked_at = time.monotonic()
    # blocks 2 and 3 one by one (each read on its own): the ack window (2) is then full
    for _ in range(2):
        v.send_blocks(1)
        wait_for(lambda: server_drained(v.c.s, srv.tport), 10, "server to read a block")
    wait_for(lambda: metric(srv, "gridsense_sessions_paused") == 1, 10, "victim paused")
    v.send_blocks(n - 3)  # 4..n wait in the socket buffers while the session is paused
    h.send_blocks(1)      # within its window: this session keeps reading
    wait_for(lambda: "items failed (attempt 1" in srv.log(), 20, "the writer to hit the lock")
    # hold the lock past the point where unanswered PINGs end a session (BYE DEAD when the 4th
    # PING is due, i.e. 4 heartbeats) plus one heartbeat: a paused session must not be reaped as
    # dead, because the PONGs the victim sends sit unread while the server does not read it
    hold = 5 * HEARTBEAT + 2.5
    while time.monotonic() - locked_at < hold:
        v.pump(0.2)
        h.pump(0.2)
    check(v.acks == [1] and v.bye is None,
          "no ACK and no BYE for the victim while the database is locked")
    check(h.acks == [1] and h.bye is None, "no ACK for the healthy terminal while locked")
    check(h.pings >= 2, "healthy terminal got and answered %d PINGs while locked" % h.pings)
    check(metric(srv, "gridsense_sessions_paused") == 1 and server_unread(v.c.s, srv.tport) > 0,
          "victim paused by the server (its blocks %d..%d unread) for %.1f s (> 5 heartbeats)"
          % (4, n, hold))
    check(metric(srv, "gridsense_sessions_dead_total") == 0 and
          metric(srv, "gridsense_terminals_online") == 2,
          "paused session not closed as dead; both terminals online")
    check(stored_seqs(data, "L0001") == [1], "nothing written while the lock is held")
    lock.execute("ROLLBACK")
    lock.close()

    done = lambda: v.last_ack() >= n and h.last_ack() >= 2
    deadline = time.monotonic() + 30
    while not done() and not v.bye and not h.bye and time.monotonic() < deadline:
        v.pump(0.1)
        h.pump(0.1)
    check(v.last_ack() == n and v.bye is None,
          "after release the victim's blocks are acknowledged up to %d" % n)
    check(h.last_ack() == 2 and h.bye is None, "healthy terminal's block acknowledged too")
    check(v.acks == sorted(v.acks), "victim's ACKs are in order: %s" % v.acks)
    check(not over, "no ACK ran ahead of the stored contiguous blocks %s" % over)
    seqs = stored_seqs(data, "L0001")
    check(seqs == list(range(1, n + 1)), "store holds seqs 1..%d exactly once" % n)
    rep = block_report(data)
    check(rep.get("L0001") == (n, n, 1, n) and rep.get("H0001") == (2, 2, 1, 2),
          "block report: no gap, no duplicate")
    c = db(data)
    dseq = c.execute("SELECT durable_seq FROM terminals WHERE id = 'L0001'").fetchone()[0]
    c.close()
    check(dseq == n, "terminals.durable_seq = %d" % n)
    check(metric(srv, "gridsense_blocks_failed_total") == 0,
          "no block failed: the writer retried until the lock went away")
    h.exchange(1, "after the lock")
    check(srv.stop() == 0, "server B stops cleanly")


def main():
    t0 = time.monotonic()
    server_a()
    print("server A scenarios took %.1f s" % (time.monotonic() - t0))
    t1 = time.monotonic()
    server_b()
    print("server B scenarios took %.1f s" % (time.monotonic() - t1))


if __name__ == "__main__":
    main()
