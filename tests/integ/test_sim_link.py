"""gridsense-sim follows the terminal side of docs/protocol.md, checked against a scripted server
(simpeer.py):

1. handshake timeouts: no CHALLENGE, or no WELCOME, within 12 s of HELLO -> the terminal closes
   (6.1; it waited 30 s, from the last byte received, before);
2. the per-reason action table (6.8): BUSY/RATE_LIMIT wait retry_after, TIMEOUT backs off
   normally, PROTOCOL/BAD_AUTH/UNKNOWN_ID (REJECT, or BYE after rotate-secret) go to the cap at
   once (they retried after the base delay before);
3. two REBOOT commands before the restart are both answered ACCEPTED, then both OK in the next
   session (the second one overwrote the first before); the terminal says BYE SHUTDOWN before it
   restarts (6.10); the final RESULTs are sent once more in the session after (8.2: RESULTs are
   not acknowledged), and not again in the one after that; a repeated id gets the stored RESULT;
4. header version (6.3): once established, a PING with header version 2 in a version-1 session
   gets ERROR UNEXPECTED and no PONG;
5. --latency-ms delays incoming frames too: a PING -> PONG round trip takes 2 x latency (it took
   1 x before), and a BYE sent just before the server closes is still acted on.
"""
import struct
import time

from gslib import *
from simpeer import *


def handshake_timeouts(data):
    sp = SimPeer(data)
    try:
        c, _ = sp.accept(what="first")
        c.expect(HELLO, what="HELLO")
        t0 = time.monotonic()
        t_eof = c.wait_eof(25)
        check(t_eof is not None and 10.5 <= t_eof - t0 <= 18,
              "no CHALLENGE: terminal gives up %.1f s after HELLO (12 s recommended; the server's "
              "own limit is 10 s)" % ((t_eof or time.monotonic()) - t0))
        c.close()
        c, _ = sp.accept(what="second")
        c.expect(HELLO, what="HELLO")
        t0 = time.monotonic()
        time.sleep(6)
        c.send(frame(CHALLENGE, struct.pack("<B3x", 1) + bytes(32)))
        c.expect(AUTH, what="AUTH")
        t_eof = c.wait_eof(25)
        check(t_eof is not None and 10.5 <= t_eof - t0 <= 18,
              "CHALLENGE after 6 s, no WELCOME: terminal gives up %.1f s after HELLO"
              % ((t_eof or time.monotonic()) - t0))
        c.close()
    finally:
        sp.stop()


def reject_actions(data):
    # cap 8 s: a configuration error waits 4..8 s; the base delay is 0.2 s
    sp = SimPeer(data, ["--backoff-min-ms", "200", "--backoff-max-ms", "8000"])
    try:
        c, _ = sp.accept(what="first")
        c.expect(HELLO)
        c.send_reject(False, 6, 2, b"busy")  # BUSY, retry_after 2
        t0 = time.monotonic()
        c.close()
        c, t1 = sp.accept(what="after BUSY")
        check(t1 - t0 >= 1.9, "REJECT BUSY retry_after 2: next attempt after %.2f s" % (t1 - t0))
        c.expect(HELLO)
        c.send_reject(False, 7, 0, b"handshake timeout")  # TIMEOUT
        t0 = time.monotonic()
        c.close()
        c, t1 = sp.accept(what="after TIMEOUT")
        check(t1 - t0 < 3.0, "REJECT TIMEOUT: normal backoff, next attempt after %.2f s" % (t1 - t0))
        for reason, name in ((4, "BAD_AUTH"), (3, "UNKNOWN_ID"), (1, "PROTOCOL")):
            c.expect(HELLO)
            c.send_reject(False, reason, 0, name.encode())
            t0 = time.monotonic()
            c.close()
            c, t1 = sp.accept(what="after " + name)
            check(t1 - t0 >= 3.8, "REJECT %s: backs off to the cap at once (%.2f s, cap 8 s)"
                  % (name, t1 - t0))
        # an established session ended by BYE BAD_AUTH (secret rotated): also a configuration error
        c.handshake()
        time.sleep(0.5)
        c.send_reject(True, 4, 0, b"credentials changed, log in again")
        t0 = time.monotonic()
        c.close()
        c, t1 = sp.accept(what="after BYE BAD_AUTH")
        check(t1 - t0 >= 3.8, "BYE BAD_AUTH: backs off to the cap (%.2f s)" % (t1 - t0))
        c.close()
    finally:
        sp.stop()


def reboot_twice(data):
    sp = SimPeer(data)
    try:
        c, _ = sp.accept(what="first")
        c.handshake()
        cmd = lambda i: frame(COMMAND, struct.pack("<QHH", i, 7, 0))  # REBOOT
        c.send(cmd(7) + cmd(8))
        r = c.results(2)
        check(sorted(r) == [(7, 1), (8, 1)], "both REBOOTs answered ACCEPTED: %r" % r)
        p = c.expect(BYE, timeout=15, what="BYE before the restart")
        check(reject_reason(p) == "SHUTDOWN", "terminal says BYE SHUTDOWN before it restarts")
        check(c.wait_eof(15) is not None, "terminal restarts (closes the connection)")
        c.close()
        c, _ = sp.accept(what="after the reboot")
        c.handshake(session=2)
        r = c.results(2)
        check(sorted(r) == [(7, 0), (8, 0)], "after the restart both REBOOTs answered OK: %r" % r)
        time.sleep(0.5)
        c.close()  # the session breaks: the OKs may have been lost with it
        c, _ = sp.accept(what="after a broken session")
        c.handshake(session=3)
        r = c.results(2)
        check(sorted(r) == [(7, 0), (8, 0)], "final RESULTs re-sent once in the next session: %r" % r)
        time.sleep(0.5)
        c.close()
        c, _ = sp.accept(what="one more session")
        c.handshake(session=4)
        r = c.results(1, timeout=3)
        check(r == [], "and not again in the session after that")
        c.send(cmd(7))  # a repeated id (an older server re-sending): stored RESULT, no new reboot
        r = c.results(1)
        check(r == [(7, 0)], "repeated REBOOT id answered from the stored result: %r" % r)
        check(c.wait_eof(3) is None, "and not executed again (no restart)")
        c.close()
    finally:
        sp.stop()


def header_version(data):
    sp = SimPeer(data)
    try:
        c, _ = sp.accept(what="first")
        c.handshake()
        c.send(frame(PING, struct.pack("<Iq", 5, time.time_ns()), version=2))
        c.send(frame(PING, struct.pack("<Iq", 6, time.time_ns())))
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            t, p = c.recv_frame(1)
            if t == ERROR:
                got.append(("ERROR", struct.unpack_from("<HB", p, 0)))
            elif t == PONG:
                got.append(("PONG", struct.unpack_from("<I", p, 0)[0]))
        check(got == [("ERROR", (3, PING)), ("PONG", 6)],
              "PING with header version 2: ERROR UNEXPECTED, no PONG; version 1 answered: %r" % got)
        c.close()
    finally:
        sp.stop()


def latency_both_ways(data):
    sp = SimPeer(data, ["--latency-ms", "700", "--backoff-min-ms", "200"])
    try:
        c, _ = sp.accept(what="first")
        c.handshake(heartbeat=30)
        time.sleep(0.5)
        c.send(frame(PING, struct.pack("<Iq", 77, time.time_ns())))
        t0 = time.monotonic()
        while True:
            t, p = c.recv_frame(10)
            if t is None:
                fail("no PONG within 10 s")
            if t == PONG:
                break
        rtt = time.monotonic() - t0
        check(struct.unpack_from("<I", p, 0)[0] == 77, "PONG echoes the PING's token")
        check(1.3 <= rtt <= 6, "PING -> PONG round trip %.2f s with --latency-ms 700 (2 x 0.7 s)"
              % rtt)
        # BYE SHUTDOWN retry_after 3, then the server closes at once: the BYE is delivered before
        # the end of the stream, so the terminal waits 3 s, not its 0.1..0.2 s backoff
        c.send_reject(True, 9, 3, b"server shutting down")
        t0 = time.monotonic()
        c.close()
        c, t1 = sp.accept(what="after BYE SHUTDOWN")
        check(t1 - t0 >= 2.9, "BYE SHUTDOWN retry_after 3 heard before the close (%.2f s)"
              % (t1 - t0))
        c.close()
    finally:
        sp.stop()


def main():
    with TempDir() as data:
        handshake_timeouts(data)
        reject_actions(data)
        reboot_twice(data)
        header_version(data)
        latency_both_ways(data)


if __name__ == "__main__":
    main()
