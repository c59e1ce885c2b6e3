"""gridsense-sim's reconnect backoff starts over only after a session stayed ESTABLISHED for 60 s
(docs/protocol.md 9.4), not at WELCOME, and it answers every PING with the PING's token (9.1):

1. a server that welcomes and at once drops every session: the waits grow (0.2-0.4, 0.4-0.8,
   0.8-1.6, 1.6-3.2 s with --backoff-min-ms 400); before, WELCOME reset them to 0-0.4 s forever;
2. a session kept for 62 s with PINGs every 5 s (each answered with its own token, also two
   PINGs back to back), then dropped: the next wait is back at the base delay.
"""
import struct
import time

from gslib import *
from simpeer import *


def main():
    with TempDir() as data:
        sp = SimPeer(data, ["--backoff-min-ms", "400", "--backoff-max-ms", "20000"])
        try:
            c, _ = sp.accept(what="first")
            gaps = []
            for i in range(4):
                c.handshake(session=i + 1)
                time.sleep(0.2)
                t0 = time.monotonic()
                c.close()  # the server drops the session right after WELCOME
                c, t1 = sp.accept(what="reconnect %d" % (i + 1))
                gaps.append(t1 - t0)
            print("waits after sessions dropped at WELCOME:", ["%.2f" % g for g in gaps])
            check(gaps[3] >= 1.4 and gaps[2] >= 0.7,
                  "backoff keeps growing across WELCOMEs (%.2f s, then %.2f s)" % (gaps[2], gaps[3]))

            # a stable session: 62 s ESTABLISHED, kept alive by PINGs (heartbeat 5 s: the
            # terminal closes after 15 s of silence)
            c.handshake(heartbeat=5, session=10)
            t_end = time.monotonic() + 62
            token = 1000
            while time.monotonic() < t_end:
                n = 2 if token == 1000 else 1
                c.send(b"".join(frame(PING, struct.pack("<Iq", token + k, time.time_ns()))
                                for k in range(n)))
                want = [token + k for k in range(n)]
                got = []
                deadline = time.monotonic() + 10
                while len(got) < n and time.monotonic() < deadline:
                    t, p = c.recv_frame(1)
                    if t == PONG:
                        got.append(struct.unpack_from("<I", p, 0)[0])
                if got != want:
                    fail("PONG tokens %r for PINGs %r" % (got, want))
                token += n
                time.sleep(5)
            check(True, "every PING answered by a PONG with its token (%d PINGs)" % (token - 1000))
            t0 = time.monotonic()
            c.close()
            c, t1 = sp.accept(what="after the stable session")
            check(t1 - t0 < 1.0,
                  "after 62 s online the backoff started over (next attempt after %.2f s)"
                  % (t1 - t0))
            c.close()
        finally:
            sp.stop()


if __name__ == "__main__":
    main()
