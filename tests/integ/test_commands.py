"""Persistent commands: created while the terminal is offline (CLI and REST), delivered at login,
state machine queued -> sent -> acked -> done | failed | expired, TIME_SYNC offset, CLI --wait.
Issue 7: acked commands are not re-sent at a new session (decision 1), a RESULT with an over-long
MESSAGE is malformed (decision 5), the POST reply echoes the public argument names, STATUS fields
not available are null; the pending cap per terminal (409 / CLI error); paced delivery of a long
queue; and the loop never waits for the database: with an exclusive SQLite lock held for 10 s
while terminals stream, PINGs are answered, /metrics is served, command POSTs are answered after
the lock goes (each command created exactly once), and a POST the database does not take within
[commands] create_timeout gets 503 and is never created."""
import json
import os
import socket
import sqlite3
import struct
import subprocess
import threading
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


def recv_type(c, want, timeout=10):
    """Next frame of type `want`, skipping others (PING from the server, ...)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        t, p = c.recv_frame(timeout=left)
        if t is None or t == want:
            return t, p


def no_command(c, timeout):
    """True if no COMMAND arrives within timeout (other frames are skipped)."""
    t, p = recv_type(c, COMMAND, timeout)
    return t is None, p


def config_file(data, text):
    path = os.path.join(data, "gridsense.ini")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    with TempDir() as data:
        secrets = read_secrets(provision(data, 4, "T"))
        srv = Server(data).start()
        try:
            checks(srv, data, secrets)
            checks_issue7(srv, data, secrets)
        finally:
            check(srv.stop() == 0, "server stops cleanly")
    with TempDir() as data:
        check_limit_and_pacing(data)
    with TempDir() as data:
        check_lock(data)


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
    check(j["args"] == {"report_interval": 5, "stream": False, "dip": 85},
          "POST reply echoes the public argument names and values (%r)" % (j["args"],))
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


def checks_issue7(srv, data, secrets):
    # Decision 1: a command in state acked is not re-sent at a new session; a sent one is.
    c = RawClient(srv.tport)
    t, _ = c.login("T0003", secrets["T0003"])
    check(t == WELCOME, "T0003 logs in")
    st, j = srv.json("/api/v1/terminals/T0003/commands", "POST", '{"verb":"reboot"}')
    check(st == 201 and j["state"] == "sent", "reboot sent to the online terminal")
    reboot_id = j["id"]
    st, j = srv.json("/api/v1/terminals/T0003/commands", "POST", '{"verb":"get-status"}')
    gs_id = j["id"]
    seen = set()
    for _ in range(2):
        t, p = recv_type(c, COMMAND)
        check(t == COMMAND, "command delivered")
        seen.add(parse_command(p)[0])
    check(seen == {reboot_id, gs_id}, "both commands delivered")
    c.send(result(reboot_id, 1))
    wait_for(lambda: state_of(srv, "T0003", reboot_id)["state"] == "acked", 10, "reboot acked")
    wait_for(lambda: state_of(srv, "T0003", gs_id)["state"] == "sent", 10, "get-status sent")
    c.close()
    c = RawClient(srv.tport)
    t, _ = c.login("T0003", secrets["T0003"])
    check(t == WELCOME, "T0003 logs in again")
    t, p = recv_type(c, COMMAND)
    check(t == COMMAND and parse_command(p)[0] == gs_id,
          "the sent (unanswered) command is re-sent at the new session")
    quiet, p = no_command(c, 3)
    check(quiet, "the acked command is not re-sent at the new session (decision 1)")
    # the terminal's unprompted final RESULT completes it
    c.send(result(reboot_id, 0))
    wait_for(lambda: state_of(srv, "T0003", reboot_id)["state"] == "done", 10, "reboot done")
    print("ok: unprompted RESULT OK completes the acked command")

    # Decision 5: MESSAGE over 64 bytes -> ERROR MALFORMED, not applied; a valid one is.
    c.send(result(gs_id, 5, tlv(10, b"x" * 65)))
    t, p = recv_type(c, ERROR)
    check(t == ERROR and struct.unpack_from("<H", p, 0)[0] == 2 and p[2] == RESULT,
          "RESULT with a 65-byte MESSAGE answered with ERROR MALFORMED (frame type RESULT)")
    time.sleep(0.5)
    check(state_of(srv, "T0003", gs_id)["state"] == "sent", "the malformed RESULT is not applied")
    c.send(result(gs_id, 5, tlv(10, b"x" * 64)))
    wait_for(lambda: state_of(srv, "T0003", gs_id)["state"] == "failed", 10, "valid RESULT applied")
    check(state_of(srv, "T0003", gs_id)["result"]["message"] == "x" * 64,
          "a 64-byte MESSAGE is stored")

    # STATUS fields that are not available are null, not left out
    status = struct.pack("<qhhBBBBHhHHII", time.time_ns(), -32768, -32768, 99, 0, 0, 1, 65535,
                         -32768, 3, 0, 60, 0)
    c.send(frame(STATUS, status))
    def status_in():
        st, j = srv.json("/api/v1/terminals/T0003")
        return j["status"]
    s = wait_for(status_in, 10, "status shown")
    for k in ("rsrp_dbm", "rssi_dbm", "csq", "supply_v", "temperature_c"):
        check(k in s and s[k] is None, "STATUS %s not available -> null" % k)
    check(s["uptime_s"] == 60 and s["buffer_permille"] == 3, "available STATUS fields shown")
    st, j = srv.json("/api/v1/terminals/T0004")
    check(all(k in j and j[k] is None for k in ("sample_rate", "channels", "firmware", "hardware")),
          "runtime fields of a terminal not seen yet are null")

    # `blocks` counts new blocks only; re-sent ones are counted in `duplicates`
    rate, n = 4000, 100
    samples = b"\0" * (n * 3 * 2)
    before = srv.json("/api/v1/terminals/T0003")[1]
    for seq in (1, 2, 2, 1):
        c.send(frame(WAVEFORM, block_payload(seq, time.time_ns(), rate, n, samples)))
    def counted():
        j = srv.json("/api/v1/terminals/T0003")[1]
        return j if j["blocks"] - before["blocks"] + j["duplicates"] - before["duplicates"] >= 4 else None
    j = wait_for(counted, 10, "blocks counted")
    check(j["blocks"] - before["blocks"] == 2 and j["duplicates"] - before["duplicates"] == 2,
          "blocks counts the 2 new blocks, duplicates the 2 re-sent ones (%d, %d)"
          % (j["blocks"] - before["blocks"], j["duplicates"] - before["duplicates"]))
    c.close()


def check_limit_and_pacing(data):
    secrets_path = provision(data, 2, "P")
    secrets = read_secrets(secrets_path)
    cfg = config_file(data, "[commands]\nmax_pending_per_terminal = 5\nmax_in_flight = 8\n")
    srv = Server(data, ["--config", cfg]).start()
    try:
        # Cap: 5 pending per terminal, the 6th is refused (REST 409, CLI exit 1)
        for i in range(5):
            st, j = srv.json("/api/v1/terminals/P0001/commands", "POST", '{"verb":"get-status"}')
            check(st == 201, "pending command %d of 5 created" % (i + 1))
        st, j = srv.json("/api/v1/terminals/P0001/commands", "POST", '{"verb":"get-status"}')
        check(st == 409 and j["error"]["code"] == "too_many_pending"
              and "max_pending_per_terminal" in j["error"]["message"],
              "6th pending command refused: 409 too_many_pending (%s)" % j["error"]["message"])
        p = run([GRIDSENSE, "command", "send", "P0001", "reboot", "--data", data, "--config", cfg],
                check_rc=False)
        check(p.returncode == 1 and "max_pending_per_terminal" in p.stderr,
              "CLI command send past the limit fails clearly (%s)" % p.stderr.strip())
        st, j = srv.json("/api/v1/terminals/P0001/commands")
        check(len(j["commands"]) == 5, "exactly 5 commands exist")
        # a finished command frees a slot
        c = RawClient(srv.tport)
        t, _ = c.login("P0001", secrets["P0001"])
        ids = []
        for _ in range(5):
            t, p = recv_type(c, COMMAND)
            ids.append(parse_command(p)[0])
        c.send(result(ids[0], 0))
        wait_for(lambda: state_of(srv, "P0001", ids[0])["state"] == "done", 10, "done")
        st, j = srv.json("/api/v1/terminals/P0001/commands", "POST", '{"verb":"get-status"}')
        check(st == 201, "a finished command frees a slot under the limit")
        c.close()

        # Pacing: a long queue (written straight into the database, past the cap, as a queue
        # built up under an older limit) goes out at most max_in_flight unanswered at a time.
        N = int(os.environ.get("GS_CMD_QUEUE_N", "5000"))
        now = time.time_ns()
        db_ = db(data)
        db_.executemany("INSERT INTO commands(terminal_id, verb, args, state, created_ns, updated_ns,"
                        " expires_ns, result_status) VALUES('P0002', 1, x'', 0, ?, ?, ?, -1)",
                        [(now, now, now + 3600 * 10**9)] * N)
        db_.commit()
        first = db_.execute("SELECT MIN(id) FROM commands WHERE terminal_id = 'P0002'").fetchone()[0]
        db_.close()
        c = RawClient(srv.tport, timeout=30)
        t0 = time.monotonic()
        t, _ = c.login("P0002", secrets["P0002"])
        check(t == WELCOME, "P0002 logs in with %d queued commands" % N)
        got = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            t, p = c.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
            if t == COMMAND:
                got.append(parse_command(p)[0])
        check(len(got) == 8, "without answers only max_in_flight (8) commands are sent (%d)" % len(got))
        # the loop stays responsive meanwhile
        c.send(frame(PING, struct.pack("<Iq", 77, 0)))
        tp = time.monotonic()
        t, p = recv_type(c, PONG, 5)
        check(t == PONG, "PING answered during delivery (%.0f ms)" % ((time.monotonic() - tp) * 1e3))
        # answer everything as it arrives: all N delivered once, in order
        worst_metrics = 0.0
        seen = set(got)
        order_ok = got == sorted(got)
        last = max(got)
        tdel = time.monotonic()
        for cid in got:
            c.send(result(cid, 0))
        while len(seen) < N:
            t, p = c.recv_frame(timeout=15)
            if t is None:
                fail("delivery stopped after %d of %d commands" % (len(seen), N))
            if t != COMMAND:
                continue
            cid = parse_command(p)[0]
            if cid in seen:
                fail("command %d delivered twice" % cid)
            order_ok = order_ok and cid > last
            last = max(last, cid)
            seen.add(cid)
            c.send(result(cid, 0))
            if len(seen) % 500 == 0:
                tm = time.monotonic()
                srv.http("/metrics")
                worst_metrics = max(worst_metrics, time.monotonic() - tm)
        dt = time.monotonic() - tdel
        check(seen == set(range(first, first + N)), "all %d queued commands delivered exactly once" % N)
        check(order_ok, "delivered oldest first")
        check(worst_metrics < 2.0, "/metrics served during delivery (worst %.0f ms)" % (worst_metrics * 1e3))
        print("figure: %d commands delivered and answered in %.1f s (%.0f/s), worst /metrics %.0f ms"
              % (N, dt, N / dt, worst_metrics * 1e3))
        c.close()
    finally:
        check(srv.stop() == 0, "server stops cleanly")


class Poster(threading.Thread):
    """POSTs one command and records status, body and how long the answer took."""

    def __init__(self, srv, tid, body):
        super().__init__(daemon=True)
        self.srv, self.tid, self.body = srv, tid, body
        self.status = self.j = None
        self.t_start = self.t_end = None

    def run(self):
        self.t_start = time.monotonic()
        try:
            self.status, self.j = self.srv.json("/api/v1/terminals/%s/commands" % self.tid, "POST",
                                                self.body)
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            self.status, self.j = -1, {"exception": repr(e)}
        self.t_end = time.monotonic()


def hold_lock(data, seconds):
    """An admin's sqlite3 session holding the write lock (BEGIN EXCLUSIVE) for `seconds`."""
    con = sqlite3.connect(os.path.join(data, "gridsense.db"), timeout=30, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    return con, time.monotonic() + seconds


def check_lock(data):
    secrets_path = provision(data, 4, "L")
    secrets = read_secrets(secrets_path)
    srv = Server(data).start()
    sim_p = None
    try:
        # L0001, L0002 stream from the simulator; L0003 is a raw client that pings; L0004 offline
        sim_p = sim_start(srv.tport, secrets_path, 2, 40,
                          ["--rate", "1000", "--block-ms", "100", "--status-interval", "2"])
        wait_for(lambda: (srv.metric("gridsense_terminals_online") or 0) >= 2, 60, "sim online")
        c = RawClient(srv.tport)
        t, _ = c.login("L0003", secrets["L0003"])
        check(t == WELCOME, "raw client online")
        st, j = srv.json("/api/v1/terminals/L0004/commands", "POST", '{"verb":"reboot","ttl_s":2}')
        check(st == 201, "a command that will expire during the lock")
        exp_id = j["id"]

        con, until = hold_lock(data, 10)
        t_lock = time.monotonic()
        time.sleep(0.5)  # a batch committed just before the lock may still be reported
        stored0 = srv.metric("gridsense_blocks_stored_total")
        posters = [Poster(srv, "L0003", '{"verb":"get-status"}'),
                   Poster(srv, "L0001", '{"verb":"get-status"}'),
                   Poster(srv, "L0003", '{"verb":"set-config","args":{"stream":true,"dip":90}}')]
        for p in posters:
            p.start()
            time.sleep(0.2)
        # a client that gives up and disconnects while its POST waits: completing its deferred
        # answer later must be a harmless no-op (the command is still created, once)
        body = b'{"verb":"stream-stop"}'
        gone = socket.create_connection(("127.0.0.1", srv.hport), timeout=10)
        gone.sendall(b"POST /api/v1/terminals/L0004/commands HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer %s\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (srv.token.encode(), len(body), body))
        time.sleep(0.3)
        gone.close()
        worst_ping = worst_metrics = 0.0
        pings = 0
        token = 1000
        while time.monotonic() < until:
            token += 1
            c.send(frame(PING, struct.pack("<Iq", token, 0)))
            tp = time.monotonic()
            while True:
                t, p = c.recv_frame(timeout=5)
                if t is None or (t == PONG and struct.unpack_from("<I", p, 0)[0] == token):
                    break
            check(t == PONG, "PING answered during the lock")
            worst_ping = max(worst_ping, time.monotonic() - tp)
            pings += 1
            tm = time.monotonic()
            st, txt = srv.http("/metrics")
            worst_metrics = max(worst_metrics, time.monotonic() - tm)
            check(st == 200, "/metrics served during the lock")
            time.sleep(0.3)
        check(all(p.is_alive() for p in posters), "command POSTs wait while the lock is held")
        c4 = RawClient(srv.tport)
        tl = time.monotonic()
        t, _ = c4.login("L0004", secrets["L0004"])
        check(t == WELCOME, "a terminal logs in during the lock (%.0f ms)" % ((time.monotonic() - tl) * 1e3))
        c4.close()
        check(srv.metric("gridsense_blocks_stored_total") == stored0,
              "nothing committed while the lock is held (the lock really blocks the writer)")
        con.execute("ROLLBACK")
        con.close()
        t_free = time.monotonic()
        for p in posters:
            p.join(60)
        check(all(p.status == 201 for p in posters),
              "every POST answered 201 after the lock went (%r)" % [(p.status, p.j) for p in posters])
        waits = [p.t_end - t_free for p in posters]
        check(all(p.t_end >= t_free for p in posters),
              "POSTs answered only once the lock was released (%.1f..%.1f s after)" % (min(waits), max(waits)))
        check(worst_ping < 1.0 and worst_metrics < 1.0,
              "loop responsive during the 10 s lock: %d PINGs, worst PONG %.0f ms, worst /metrics %.0f ms"
              % (pings, worst_ping * 1e3, worst_metrics * 1e3))
        print("figure: lock %.1f s; POST answers %.2f..%.2f s after release; worst PONG %.1f ms, "
              "worst /metrics %.1f ms" % (t_free - t_lock, min(waits), max(waits),
                                          worst_ping * 1e3, worst_metrics * 1e3))
        check(posters[2].j["args"] == {"stream": True, "dip": 90}, "deferred reply echoes the args")
        # created exactly once each, delivered to the online terminals
        d = db(data)
        wait_for(lambda: d.execute("SELECT COUNT(*) FROM commands WHERE verb = 4").fetchone()[0] > 0,
                 30, "the abandoned POST's command")
        rows = d.execute("SELECT terminal_id, verb, COUNT(*) FROM commands WHERE verb IN (1, 4, 5)"
                         " GROUP BY terminal_id, verb ORDER BY terminal_id, verb").fetchall()
        d.close()
        check(rows == [("L0001", 1, 1), ("L0003", 1, 1), ("L0003", 5, 1), ("L0004", 4, 1)],
              "each POSTed command created exactly once, also the one whose client left (%r)" % rows)
        st, j = srv.json("/api/v1/health")
        check(st == 200, "server fine after answering a client that had gone")
        got = set()
        for _ in range(2):
            t, p = recv_type(c, COMMAND, 15)
            if t == COMMAND:
                got.add(parse_command(p)[0])
        check(got == {posters[0].j["id"], posters[2].j["id"]},
              "the raw client receives its two commands after the lock")
        wait_for(lambda: state_of(srv, "L0001", posters[1].j["id"])["state"] == "done", 30,
                 "the simulator answers its command")
        wait_for(lambda: state_of(srv, "L0004", exp_id)["state"] == "expired", 30,
                 "the command whose TTL ran out during the lock is expired after it")
        print("ok: expiry went through the writer")
        st, j = srv.json("/api/v1/terminals")
        sims = [t for t in j["terminals"] if t["id"] in ("L0001", "L0002")]
        check(all(t["online"] and t["reconnects"] == 0 for t in sims),
              "simulated terminals stayed online through the lock, no reconnects")
        rc, summ, err = sim_finish(sim_p, timeout=200)
        sim_p = None
        check(rc == 0 and summ["blocks_acked"] == summ["blocks_generated"],
              "every block streamed around the lock acknowledged (%s)" % summ)
        c.close()
    finally:
        if sim_p:
            sim_p.kill()
        check(srv.stop() == 0, "server stops cleanly")

    # create_timeout: a POST the database does not take in time is answered 503 and is never
    # created, so retrying it cannot duplicate it.
    cfg = config_file(data, "[commands]\ncreate_timeout = 2\n")
    srv = Server(data, ["--config", cfg]).start()
    try:
        d = db(data)
        before = d.execute("SELECT COUNT(*) FROM commands").fetchone()[0]
        d.close()
        con, until = hold_lock(data, 6)
        p = Poster(srv, "L0002", '{"verb":"reboot"}')
        p.start()
        p.join(30)
        check(p.status == 503 and p.j["error"]["code"] == "store_busy",
              "POST not taken within create_timeout: 503 store_busy (%s)" % (p.j,))
        check(p.t_end - p.t_start < 5.5, "answered after about create_timeout (%.1f s)" % (p.t_end - p.t_start))
        while time.monotonic() < until:
            time.sleep(0.1)
        con.execute("ROLLBACK")
        con.close()
        st, j = srv.json("/api/v1/terminals/L0002/commands", "POST", '{"verb":"time-sync"}')
        check(st == 201, "after the lock, a new POST is created")
        d = db(data)
        after = d.execute("SELECT COUNT(*) FROM commands").fetchone()[0]
        reboots = d.execute("SELECT COUNT(*) FROM commands WHERE terminal_id = 'L0002' AND verb = 7").fetchone()[0]
        d.close()
        check(after == before + 1 and reboots == 0, "the timed-out command was never created")
    finally:
        check(srv.stop() == 0, "server stops cleanly")


if __name__ == "__main__":
    main()
