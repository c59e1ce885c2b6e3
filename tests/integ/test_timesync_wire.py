"""TIME_SYNC RESULT with timestamps a terminal can put on the wire but no clock produces: the
server must not compute the NTP offset with signed overflow (undefined behaviour in C; the
sanitized build aborts), and stores the RESULT without an offset or round trip. Timestamps in
range still give them (integ.commands checks their values)."""
import struct

from gslib import *

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def parse_command(p):
    cid, verb, _flags = struct.unpack_from("<QHH", p, 0)
    return cid, verb


def result(cid, status, tlvs=b""):
    return frame(RESULT, struct.pack("<QHH", cid, status, 0) + tlvs)


def command_of(srv, tid, cid):
    st, j = srv.json("/api/v1/terminals/%s/commands" % tid)
    for c in j["commands"]:
        if c["id"] == cid:
            return c
    return None


def recv_type(c, want, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        t, p = c.recv_frame(timeout=left)
        if t is None or t == want:
            return t, p


def time_sync(srv, c, tid, t_rx, t_tx):
    st, j = srv.json("/api/v1/terminals/%s/commands" % tid, "POST", '{"verb":"time-sync"}')
    check(st == 201, "time-sync created (%d)" % st)
    t, p = recv_type(c, COMMAND)
    check(t == COMMAND and parse_command(p)[0] == j["id"], "time-sync delivered")
    c.send(result(j["id"], 0, tlv(8, struct.pack("<q", t_rx)) + tlv(9, struct.pack("<q", t_tx))))
    wait_for(lambda: command_of(srv, tid, j["id"])["state"] == "done", 30, "time-sync done")
    return command_of(srv, tid, j["id"])


def main():
    with TempDir() as data:
        secrets = read_secrets(provision(data, 1, "W"))
        srv = Server(data).start()
        try:
            c = RawClient(srv.tport, timeout=30)
            t, _ = c.login("W0001", secrets["W0001"])
            check(t == WELCOME, "terminal logs in")
            cmd = time_sync(srv, c, "W0001", INT64_MAX, INT64_MIN)
            st, _ = srv.json("/api/v1/health")
            check(st == 200, "server alive after extreme TIME_SYNC timestamps")
            r = cmd.get("result") or {}
            check("clock_offset_ns" not in r and "round_trip_ns" not in r,
                  "no offset or round trip from timestamps that overflow: %s" % r)
            now = time.time_ns()
            cmd = time_sync(srv, c, "W0001", now, now)
            r = cmd.get("result") or {}
            check("clock_offset_ns" in r and "round_trip_ns" in r,
                  "timestamps in range still give offset and round trip")
            c.close()
        finally:
            check(srv.stop() == 0, "server stops cleanly")


if __name__ == "__main__":
    main()
