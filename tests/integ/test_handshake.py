"""Handshake, auth, rejects, rate limiting, duplicate login, heartbeat and exactly-once acks,
driven by a raw Python GSTP client against the real server."""
import os
import struct
import time

from gslib import *


def main():
    with TempDir() as data:
        secrets = read_secrets(provision(data, 3, "T"))
        cfg = os.path.join(data, "gs.ini")
        with open(cfg, "w") as f:
            f.write("[terminals]\nhandshake_timeout = 2\nheartbeat = 5\n")
        srv = Server(data, ["--config", cfg]).start()
        try:
            run_checks(srv, data, secrets)
        finally:
            rc = srv.stop()
        check(rc == 0, "server exits 0 on SIGTERM")
        srv = Server(data, ["--max-per-ip", "3"]).start()
        try:
            conns = [RawClient(srv.tport) for _ in range(3)]
            extra = RawClient(srv.tport)
            t, p = extra.recv_frame()
            check(t == REJECT and reject_reason(p) == "BUSY",
                  "4th connection from one address refused with BUSY (--max-per-ip 3)")
            check(extra.closed(), "refused connection closed")
            t, p = conns[0].login("T0001", secrets["T0001"])
            check(t == WELCOME, "connections within the limit still log in")
            check(srv.metric("gridsense_connections_refused_total") == 1, "refusal counted")
            for c in conns:
                c.close()
            c = RawClient(srv.tport)
            wait_for(lambda: srv.metric("gridsense_connections_open") <= 1, 10, "closed connections released")
            t, p = c.login("T0003", secrets["T0003"])
            check(t == WELCOME, "a slot frees up when a connection closes")
            # revocation from another process takes effect on the running session
            out = run([GRIDSENSE, "terminal", "rotate-secret", "T0003", "--data", data]).stdout
            t, p = c.recv_frame(timeout=10)
            check(t == BYE and reject_reason(p) == "BAD_AUTH",
                  "rotate-secret ends the online session (BYE BAD_AUTH)")
            c = RawClient(srv.tport)
            t, p = c.login("T0003", bytes.fromhex(out.split()[1]))
            check(t == WELCOME, "the terminal logs in with its new secret")
            run([GRIDSENSE, "terminal", "remove", "T0003", "--data", data])
            t, p = c.recv_frame(timeout=10)
            check(t == BYE and reject_reason(p) == "UNKNOWN_ID",
                  "terminal remove ends the online session (BYE UNKNOWN_ID)")
        finally:
            check(srv.stop() == 0, "second server exits 0")


def run_checks(srv, data, secrets):
    port = srv.tport
    # --- good login, one block, ack after commit, duplicate ignored ---
    c = RawClient(port)
    t, p = c.login("T0001", secrets["T0001"])
    check(t == WELCOME, "correct secret gets WELCOME")
    srv_time, hb, window, resume, sid = struct.unpack_from("<qHHQI", p, 0)
    check(hb == 5 and resume == 0 and window >= 1, "WELCOME carries heartbeat 5 (config), resume 0")
    check(abs(srv_time - time.time_ns()) < 5e9, "WELCOME carries server UTC time")
    samples = struct.pack("<" + "h" * 30, *range(30))
    c.send(frame(WAVEFORM, block_payload(1, time.time_ns(), 4000, 10, samples)))
    t, p = c.recv_frame()
    check(t == ACK and struct.unpack("<Q", p)[0] == 1, "block 1 acknowledged")
    rep = block_report(data)
    check(rep.get("T0001") == (1, 1, 1, 1), "block 1 is in the store once")
    # a chunk that does not continue its block is a protocol violation: session closed, and
    # nothing of block 2 is acknowledged or stored
    c.send(frame(WAVEFORM, block_payload(2, 1000, 4000, 10, samples[:24], 0, 2, 0, 4)))
    c.send(frame(WAVEFORM, block_payload(2, 2000, 4000, 10, samples[24:], 1, 2, 4, 6)))
    t, p = c.recv_frame()
    check(t == ERROR, "mismatched chunk answered with ERROR")
    t, p = c.recv_frame()
    check(t == BYE and reject_reason(p) == "PROTOCOL", "then BYE PROTOCOL")
    check(c.closed(), "and the session is closed")
    c = RawClient(port)
    t, p = c.login("T0001", secrets["T0001"])
    resume = struct.unpack_from("<qHHQI", p, 0)[3]
    check(t == WELCOME and resume == 1, "reconnect: resume point is the last durable seq (1)")
    t0 = time.time_ns()
    c.send(frame(WAVEFORM, block_payload(2, t0, 4000, 10, samples[:24], 0, 2, 0, 4)))
    c.send(frame(WAVEFORM, block_payload(2, t0, 4000, 10, samples[24:], 1, 2, 4, 6)))
    t, p = c.recv_frame()
    check(t == ACK and struct.unpack("<Q", p)[0] == 2, "two-chunk block 2 reassembled and acked (%r)" % ((t, p),))
    c.send(frame(WAVEFORM, block_payload(1, t0, 4000, 10, samples), flags=1))
    t, p = c.recv_frame()
    check(t == ACK and struct.unpack("<Q", p)[0] == 2, "re-sent block 1 is acked, not stored")
    rep = block_report(data)
    check(rep.get("T0001") == (2, 2, 1, 2), "store holds blocks 1 and 2 exactly once")
    c2 = RawClient(port)
    with_blob = db(data).execute("SELECT data FROM blocks WHERE terminal_id='T0001' AND seq=2").fetchone()[0]
    check(with_blob == samples, "reassembled samples stored byte for byte")

    # --- ping, unknown type ---
    c.send(frame(PING, struct.pack("<Iq", 77, time.time_ns())))
    t, p = c.recv_frame()
    check(t == PONG and struct.unpack_from("<I", p)[0] == 77, "PING answered by PONG with token")
    c.send(frame(0x7E, b"future"))
    t, p = c.recv_frame()
    check(t == ERROR and struct.unpack_from("<HB", p)[0] == 1 and p[2] == 0x7E,
          "unknown frame type answered with ERROR UNKNOWN_TYPE")
    c.send(frame(PING, struct.pack("<Iq", 78, 0)))
    t, p = c.recv_frame()
    check(t == PONG, "session continues after an unknown frame type")

    # --- duplicate login replaces the old session ---
    t, p = c2.login("T0001", secrets["T0001"])
    check(t == WELCOME, "second login of the same terminal accepted")
    t, p = c.recv_frame()
    check(t == BYE and reject_reason(p) == "REPLACED", "old session told BYE REPLACED")
    check(c.closed(), "old session closed")
    c2.close()

    # --- rejects ---
    c = RawClient(port)
    t, p = c.login("T0003", b"\x00" * 32)
    check(t == REJECT and reject_reason(p) == "BAD_AUTH", "wrong secret rejected with BAD_AUTH")
    check(c.closed(), "connection closed after REJECT")
    c = RawClient(port)
    t, p = c.login("NOPE", secrets["T0001"])
    check(t == REJECT and reject_reason(p) == "UNKNOWN_ID", "unknown terminal rejected with UNKNOWN_ID")
    c = RawClient(port)
    hp = bytearray(hello_payload("T0001"))
    hp[0] = 2
    hp[1] = 3
    c.send(frame(HELLO, bytes(hp)))
    t, p = c.recv_frame()
    check(t == REJECT and reject_reason(p) == "VERSION", "no common version rejected with VERSION")
    c = RawClient(port)
    c.send(frame(PING, struct.pack("<Iq", 1, 0)))
    t, p = c.recv_frame()
    check(t == REJECT and reject_reason(p) == "PROTOCOL", "frame before HELLO rejected with PROTOCOL")

    # --- rate limiting per terminal id ---
    for i in range(5):
        c = RawClient(port)
        t, p = c.login("T0002", b"\x01" * 32)
        c.close()
    c = RawClient(port)
    t, p = c.login("T0002", secrets["T0002"])
    check(t == REJECT and reject_reason(p) == "RATE_LIMIT",
          "after 5 failures even the right secret is rate-limited")
    retry = struct.unpack_from("<HH", p)[1]
    check(retry > 0, "RATE_LIMIT carries retry_after (%d s)" % retry)
    for i in range(5):
        c = RawClient(port)
        c.login("T0001", b"\x01" * 32)
        c.close()
    c = RawClient(port)
    t, p = c.login("T0001", secrets["T0001"])
    check(t == WELCOME, "bad logins cannot lock a terminal out of the address it last logged in from")
    c.close()

    # --- handshake timeout (2 s from the config file) ---
    c = RawClient(port)
    t, p = c.recv_frame(timeout=10)
    check(t == REJECT and reject_reason(p) == "TIMEOUT", "silent connection rejected with TIMEOUT")

    # --- heartbeat: a terminal that stops answering is closed after 3 intervals ---
    c = RawClient(port)
    t, p = c.login("T0003", secrets["T0003"])
    check(t == WELCOME, "T0003 logs in")
    got_ping = False
    deadline = time.monotonic() + 40
    reason = None
    while time.monotonic() < deadline:
        t, p = c.recv_frame(timeout=deadline - time.monotonic())
        if t == PING:
            got_ping = True
        elif t == BYE:
            reason = reject_reason(p)
            break
        elif t is None:
            break
    check(got_ping, "server sends PING every heartbeat")
    check(reason == "DEAD", "silent terminal closed with BYE DEAD after 3 heartbeats")

    # --- HELLO extension: unknown TLV tags are skipped ---
    c = RawClient(port)
    hp = hello_payload("T0001") + tlv(200, b"future capability")
    c.send(frame(HELLO, hp))
    t, p = c.recv_frame()
    check(t == CHALLENGE, "HELLO with an unknown TLV tag is accepted (extension rule)")
    c.close()

    # --- metrics reflect all of it ---
    check(srv.metric("gridsense_handshakes_failed_total") >= 9, "failed handshakes counted")
    st, txt = srv.http("/metrics")
    check('gridsense_rejects_total{reason="BAD_AUTH"} 11' in txt, "BAD_AUTH rejects counted by reason")
    check(srv.metric("gridsense_blocks_stored_total") == 2, "2 blocks stored per metrics")
    check(srv.metric("gridsense_blocks_duplicate_total") >= 1, "duplicate counted")
    check("ERROR" in srv.log() or "WARN" in srv.log(), "rejects are logged")


if __name__ == "__main__":
    main()
