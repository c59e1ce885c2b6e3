"""Persistent commands: created while the terminal is offline (CLI and REST), delivered at login,
state machine queued -> sent -> acked -> done | failed | expired, TIME_SYNC offset, CLI --wait."""
import json
import struct
import subprocess
import time

from gslib import *


def parse_command(p):
    cid, verb, _flags = struct.unpack_from("<QHH", p, 0)
    tl = {}
    off = 12
    while off + 3 <= len(p):
        tag, ln = struct.unpack_from("<BH", p, off)
        tl[tag] = p[off + 3:off + 3 + ln]
        off += 3 + ln
    return cid, verb, tl


def result(cid, status, tlvs=b""):
    return frame(RESULT, struct.pack("<QHH", cid, status, 0) + tlvs)


def state_of(srv, tid, cid):
    st, j = srv.json("/api/v1/terminals/%s/commands" % tid)
    for c in j["commands"]:
        if c["id"] == cid:
            return c
    return None


def main():
    with TempDir() as data:
        secrets = read_secrets(provision(data, 2, "T"))
        srv = Server(data).start()
        try:
            checks(srv, data, secrets)
        finally:
            check(srv.stop() == 0, "server stops cleanly")


def checks(srv, data, secrets):
    # queued while offline, from the CLI and from REST
    p = run([GRIDSENSE, "command", "send", "T0001", "capture", "cycles=20", "pretrigger=4",
             "--data", data])
    cap_id = int(p.stdout.strip())
    st, j = srv.json("/api/v1/terminals/T0001/commands", "POST", '{"verb":"time-sync"}')
    check(st == 201 and j["state"] == "queued", "REST creates a queued command (201)")
    ts_id = j["id"]
    check(state_of(srv, "T0001", cap_id)["state"] == "queued", "CLI command queued while offline")
    st, j = srv.json("/api/v1/terminals/T0002/commands", "POST", '{"verb":"reboot","ttl_s":1}')
    exp_id = j["id"]

    # delivered at login, in order
    c = RawClient(srv.tport)
    t, _ = c.login("T0001", secrets["T0001"])
    check(t == WELCOME, "terminal logs in")
    t, p = c.recv_frame()
    cid, verb, tl = parse_command(p)
    check(t == COMMAND and cid == cap_id and verb == 2, "first queued command (capture) delivered")
    check(struct.unpack("<H", tl[1])[0] == 20 and struct.unpack("<H", tl[2])[0] == 4,
          "capture arguments cycles=20 pretrigger=4 encoded as TLV")
    t, p = c.recv_frame()
    ts_rx = time.time_ns()  # when "the terminal" received TIME_SYNC: its t_rx
    cid2, verb2, tl2 = parse_command(p)
    check(t == COMMAND and cid2 == ts_id and verb2 == 6 and 7 in tl2,
          "time-sync delivered with the server's send time")
    wait_for(lambda: state_of(srv, "T0001", cap_id)["state"] == "sent", 10, "state sent")
    print("ok: state is sent after delivery")

    c.send(result(cap_id, 1))
    wait_for(lambda: state_of(srv, "T0001", cap_id)["state"] == "acked", 10, "state acked")
    print("ok: RESULT ACCEPTED moves the command to acked")
    c.send(result(cap_id, 0, tlv(11, struct.pack("<Q", 42))))
    wait_for(lambda: state_of(srv, "T0001", cap_id)["state"] == "done", 10, "state done")
    cmd = state_of(srv, "T0001", cap_id)
    check(cmd["result_status"] == 0 and cmd["result"]["block_seq"] == 42,
          "RESULT OK stored with its payload (block_seq 42)")
    # a late duplicate result does not change a final state
    c.send(result(cap_id, 5))
    server_tx = struct.unpack("<q", tl2[7])[0]
    now = time.time_ns()
    skew = 250_000_000  # pretend our clock is 250 ms ahead
    # NTP-style: the real receive time and the real send time, both on the skewed clock (the
    # exchanges in between take a while on a loaded machine; they must not bias the offset)
    c.send(result(ts_id, 0, tlv(8, struct.pack("<q", ts_rx + skew)) + tlv(9, struct.pack("<q", now + skew))))
    wait_for(lambda: state_of(srv, "T0001", ts_id)["state"] == "done", 10, "time-sync done")
    r = state_of(srv, "T0001", ts_id)["result"]
    off = r["clock_offset_ns"]
    check(abs(off - skew) < 100_000_000, "time sync offset computed (%.1f ms, expected ~250)" % (off / 1e6))
    check(r["round_trip_ns"] >= 0, "round trip computed (%.2f ms)" % (r["round_trip_ns"] / 1e6))
    check(state_of(srv, "T0001", cap_id)["state"] == "done", "late FAILED result ignored for a done command")

    # unknown command id in a RESULT
    c.send(result(999999, 0))
    t, p = c.recv_frame()
    check(t == ERROR, "RESULT for an unknown command id answered with ERROR (%r)" % ((t, p),))

    # CLI --wait while the terminal is online: the server notices the new row and sends it
    proc = subprocess.Popen([GRIDSENSE, "command", "send", "T0001", "get-status", "--wait", "20",
                             "--data", data], stdout=subprocess.PIPE, text=True)
    t, p = c.recv_frame(timeout=15)
    cid3, verb3, _ = parse_command(p)
    check(t == COMMAND and verb3 == 1, "command created by another process reaches the online terminal")
    c.send(result(cid3, 0))
    out, _ = proc.communicate(timeout=30)
    check(proc.returncode == 0 and json.loads(out)["state"] == "done", "CLI --wait reports done")

    # failure status
    st, j = srv.json("/api/v1/terminals/T0001/commands", "POST",
                     '{"verb":"set-config","args":{"report_interval":5,"stream":false,"dip":85}}')
    check(st == 201 and j["state"] == "sent", "command to an online terminal is sent at once")
    t, p = c.recv_frame()
    cid4, verb4, tl4 = parse_command(p)
    check(verb4 == 5 and struct.unpack("<H", tl4[5])[0] == 850 and tl4[4] == b"\x00",
          "set-config args: dip 85 % -> 850 permille, stream off")
    c.send(result(cid4, 3, tlv(10, b"bad interval")))
    wait_for(lambda: state_of(srv, "T0001", cid4)["state"] == "failed", 10, "state failed")
    check(state_of(srv, "T0001", cid4)["result"]["message"] == "bad interval", "failure message kept")

    # TTL expiry for the offline terminal
    wait_for(lambda: state_of(srv, "T0002", exp_id)["state"] == "expired", 15, "expired")
    print("ok: command for an offline terminal expires after its TTL")
    c2 = RawClient(srv.tport)
    t, _ = c2.login("T0002", secrets["T0002"])
    t, p = c2.recv_frame(timeout=2)
    check(t != COMMAND, "expired command is not delivered")

    # REST validation
    for body, code in [('{"verb":"explode"}', 400), ('not json', 400), ('{"verb":"capture","args":{"cycles":0}}', 400),
                       ('{"verb":"capture","args":{"speed":1}}', 400), ('{"verb":"reboot","ttl_s":-1}', 400)]:
        st, j = srv.json("/api/v1/terminals/T0001/commands", "POST", body)
        check(st == code and "error" in j, "POST %s -> %d (%s)" % (body, code, j["error"]["message"]))
    st, j = srv.json("/api/v1/terminals/NOPE/commands", "POST", '{"verb":"reboot"}')
    check(st == 404, "command for unknown terminal -> 404")
    p = run([GRIDSENSE, "command", "list", "T0001", "--data", data])
    check(len(p.stdout.strip().splitlines()) == 4, "CLI command list shows the 4 commands of T0001")


if __name__ == "__main__":
    main()
