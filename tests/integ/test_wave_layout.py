"""The channel layout a terminal announces in HELLO is stored with its blocks (schema migration 7,
table block_layouts), once per change, so the stored samples keep their scale for the waveform
API (src/wave) after the session is gone: the real server, a raw Python terminal, three sessions
(layout A, layout B, layout B again)."""
import struct
import time

from gslib import *

RATE = 4000
NS = 100  # sample sets per block (25 ms): 3 channels int16 fit one frame


def hello(tid, scale):
    """HELLO with three voltage channels of the given scale (V per count)."""
    p = struct.pack("<BBH", 1, 1, 0)
    p += tlv(1, tid.encode()) + tlv(2, b"py-1.0") + tlv(6, struct.pack("<I", RATE))
    p += tlv(7, bytes([50]))
    for i in range(3):
        p += tlv(12, struct.pack("<BBBBf", i, 1, i + 1, 1, scale) + ("U%c" % "ABC"[i]).encode())
    return p


def session(srv, tid, secret, scale, seqs, t0):
    c = RawClient(srv.tport)
    t, _ = c.login(tid, secret, hello(tid, scale))
    check(t == WELCOME, "%s logs in with scale %g" % (tid, scale))
    for q in seqs:
        samples = b"".join(struct.pack("<hhh", 100 * q, -100 * q, q) for _ in range(NS))
        c.send(frame(WAVEFORM, block_payload(q, t0 + (q - 1) * NS * 10**9 // RATE, RATE, NS,
                                             samples)))
    acked = 0
    deadline = time.monotonic() + 60
    while acked < seqs[-1] and time.monotonic() < deadline:
        ft, p = c.recv_frame(timeout=5)
        if ft == ACK:
            acked = max(acked, struct.unpack_from("<Q", p)[0])
        elif ft == PING:
            c.send(frame(PONG, p))
    check(acked >= seqs[-1], "blocks %d..%d acknowledged (durable)" % (seqs[0], seqs[-1]))
    c.close()


def main():
    with TempDir() as data:
        secrets = read_secrets(provision(data, 1, "L"))
        tid = sorted(secrets)[0]
        srv = Server(data).start()
        t0 = time.time_ns()
        try:
            session(srv, tid, secrets[tid], 0.01, [1, 2, 3], t0)
            session(srv, tid, secrets[tid], 0.02, [4, 5], t0)
            session(srv, tid, secrets[tid], 0.02, [6], t0)
        finally:
            rc = srv.stop()
        check(rc == 0, "server exits 0")
        c = db(data)
        rows = c.execute("SELECT first_seq, channels FROM block_layouts WHERE terminal_id = ?"
                         " ORDER BY first_seq", (tid,)).fetchall()
        nblocks = c.execute("SELECT count(*) FROM blocks WHERE terminal_id = ?", (tid,)).fetchone()[0]
        c.close()
        check(nblocks == 6, "6 blocks stored")
        check([r[0] for r in rows] == [1, 4],
              "one layout row per change of layout, from the first block under it: %s"
              % [r[0] for r in rows])
        for (first, text), scale in zip(rows, (0.01, 0.02)):
            chans = [x.split(",") for x in text.split(";")]
            check([(int(a), int(k), int(p), int(u)) for a, k, p, u, _ in chans]
                  == [(0, 1, 1, 1), (1, 1, 2, 1), (2, 1, 3, 1)],
                  "layout from seq %d: index, kind, phase, unit of the three channels" % first)
            check(all(abs(float(x[4]) - scale) < 1e-8 for x in chans),
                  "layout from seq %d: scale %g as sent (f32)" % (first, scale))
    print("ok")


if __name__ == "__main__":
    main()
