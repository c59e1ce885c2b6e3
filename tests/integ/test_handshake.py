"""Handshake, auth, rejects, rate limiting, duplicate login, heartbeat and exactly-once acks,
driven by a raw Python GSTP client against the real server. Also the protocol 1.0 rules of
issue 7 (README decisions 2, 3, 4, 6, 7, 8, 10): server-only frame types, heartbeat tokens and
timing, malformed HELLO vs BAD_CONFIG, the one rate-limit rule, header version bytes, blocks
that must match HELLO, provisioned nominal frequency and ratios."""
import os
import struct
import threading
import time

from gslib import *

HB = 5  # heartbeat_s of the main server (the smallest the config allows)


def main():
    with TempDir() as data:
        secrets = read_secrets(provision(data, 3, "T"))
        secrets.update(read_secrets(provision(data, 8, "P")))
        secrets.update(read_secrets(provision(data, 4, "H")))
        out = run([GRIDSENSE, "terminal", "add", "F60", "--nominal-hz", "60", "--vt-ratio", "100",
                   "--ct-ratio", "400", "--data", data]).stdout.split()
        secrets["F60"] = bytes.fromhex(out[1])
        cfg = os.path.join(data, "gs.ini")
        with open(cfg, "w") as f:
            f.write("[terminals]\nhandshake_timeout = 2\nheartbeat = %d\n" % HB)
        srv = Server(data, ["--config", cfg]).start()
        try:
            hb = start_heartbeat_checks(srv.tport, secrets)
            run_checks(srv, data, secrets)
            protocol_checks(srv, data, secrets)
            finish_heartbeat_checks(hb)
        finally:
            rc = srv.stop()
        check(rc == 0, "server exits 0 on SIGTERM")
        rate_limit_rule(data, secrets)
        srv = Server(data, ["--max-per-ip", "3"]).start()
        try:
            conns = [RawClient(srv.tport) for _ in range(3)]
            extra = RawClient(srv.tport)
            t, p = extra.recv_frame()
            check(t == REJECT and reject_reason(p) == "BUSY",
                  "4th connection from one address refused with BUSY (--max-per-ip 3)")
            check(struct.unpack_from("<HH", p)[1] == 5, "connection-cap BUSY: retry_after 5")
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
    # stored compressed when that is smaller (migration 9): read back through the waveform API
    # (raw counts = secondary value / lsb), in set order, channel by channel
    st, w = srv.json("/api/v1/terminals/T0001/waveform?from=%d&to=%d&max_points=100000"
                     "&side=secondary" % (t0, t0 + 10 * 250000))
    seg = w["segments"][0] if st == 200 and w.get("segments") else None
    got = ([round(x / c_["lsb"]) for i in range(10) for c_ in seg["channels"]
            for x in [seg["samples"][c_["name"]][i]]] if seg and seg["n"] == 10 else None)
    check(got == list(range(30)), "reassembled samples stored and read back value for value")

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

    # --- rate limiting per terminal id: wrong keys are limited, the right key never is ---
    for i in range(5):
        c = RawClient(port)
        t, p = c.login("T0002", b"\x01" * 32)
        check(t == REJECT and reject_reason(p) == "BAD_AUTH", "wrong key %d for T0002: BAD_AUTH" % (i + 1))
        c.close()
    c = RawClient(port)
    t, p = c.login("T0002", b"\x01" * 32)
    check(t == REJECT and reject_reason(p) == "RATE_LIMIT",
          "6th wrong key within a minute: RATE_LIMIT instead of BAD_AUTH")
    retry = struct.unpack_from("<HH", p)[1]
    check(retry == 60, "RATE_LIMIT carries retry_after 60 (%d s)" % retry)
    c = RawClient(port)
    t, p = c.login("T0002", secrets["T0002"])
    check(t == WELCOME, "the right key still gets WELCOME while its id is over the limit")
    c.close()

    # --- handshake timeout (2 s from the config file) ---
    c = RawClient(port)
    t, p = c.recv_frame(timeout=10)
    check(t == REJECT and reject_reason(p) == "TIMEOUT", "silent connection rejected with TIMEOUT")

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
    check('gridsense_rejects_total{reason="BAD_AUTH"} 6' in txt, "BAD_AUTH rejects counted by reason")
    check('gridsense_rejects_total{reason="RATE_LIMIT"} 1' in txt, "RATE_LIMIT rejects counted")
    check(srv.metric("gridsense_blocks_stored_total") == 2, "2 blocks stored per metrics")
    check(srv.metric("gridsense_blocks_duplicate_total") >= 1, "duplicate counted")
    check("ERROR" in srv.log() or "WARN" in srv.log(), "rejects are logged")



# ---- decision 3: heartbeat ------------------------------------------------------------------

def heartbeat_client(port, tid, secret, mode, res):
    """Logs in and handles the server's PINGs for up to 8 heartbeats, per mode: 'silent' never
    answers, 'wrong' answers with a wrong token and sends STATUS, 'good' echoes every token,
    'lazy' answers only every second PING (with its token, which answers the earlier one too).
    res gets the PING times and tokens, the BYE reason and its time (after WELCOME)."""
    try:
        c = RawClient(port)
        t, p = c.login(tid, secret)
        t_welcome = time.monotonic()
        res.update(welcome=(t == WELCOME), pings=[], tokens=[], bye=None, bye_at=None)
        status = struct.pack("<qhhBBBBHhHHII", time.time_ns(), -90, -60, 20, 1, 8, 1, 12000, 250,
                             0, 0, 100, 0)
        deadline = t_welcome + 8 * HB
        while time.monotonic() < deadline:
            t, p = c.recv_frame(timeout=max(0.05, deadline - time.monotonic()))
            now = time.monotonic() - t_welcome
            if t == PING:
                tok = struct.unpack_from("<I", p)[0]
                res["pings"].append(now)
                res["tokens"].append(tok)
                if mode == "wrong":
                    c.send(frame(PONG, struct.pack("<Iq", (tok + 1000) & 0xFFFFFFFF, 0)))
                    c.send(frame(STATUS, status))
                elif mode == "good" or (mode == "lazy" and len(res["pings"]) % 2 == 0):
                    c.send(frame(PONG, struct.pack("<Iq", tok, time.time_ns())))
            elif t == BYE:
                res["bye"], res["bye_at"] = reject_reason(p), now
                break
            elif t is None and c.closed(0.1):
                break
        c.close()
    except Exception as e:  # reported by the main thread
        res["error"] = repr(e)


def start_heartbeat_checks(port, secrets):
    modes = [("H0001", "silent"), ("H0002", "wrong"), ("H0003", "good"), ("H0004", "lazy")]
    runs = []
    for tid, mode in modes:
        res = {}
        th = threading.Thread(target=heartbeat_client, args=(port, tid, secrets[tid], mode, res))
        th.start()
        runs.append((tid, mode, th, res))
    return runs


def finish_heartbeat_checks(runs):
    for tid, mode, th, res in runs:
        th.join(12 * HB)
        check(not th.is_alive() and "error" not in res and res.get("welcome"),
              "heartbeat client %s (%s) ran: %s" % (tid, mode, res.get("error", "ok")))
        toks = res["tokens"]
        check(all(b == (a + 1) & 0xFFFFFFFF for a, b in zip(toks, toks[1:])),
              "%s: PING tokens increment (%s)" % (mode, toks))
        if mode in ("silent", "wrong"):
            what = "never answers" if mode == "silent" else "answers with wrong tokens + STATUS"
            check(res["bye"] == "DEAD", "%s terminal (%s) gets BYE DEAD" % (mode, what))
            check(3.5 * HB <= res["bye_at"] <= 6 * HB,
                  "%s: BYE DEAD %.1f s after WELCOME (4 heartbeats = %d s; window 3.5..6)"
                  % (mode, res["bye_at"], 4 * HB))
            check(len(res["pings"]) == 3, "%s: exactly 3 PINGs before BYE DEAD (%d)"
                  % (mode, len(res["pings"])))
            check(0.5 * HB <= res["pings"][0] <= 2 * HB,
                  "%s: first PING %.1f s after WELCOME (one heartbeat)" % (mode, res["pings"][0]))
        else:
            check(res["bye"] is None,
                  "%s terminal (PONG with the right token%s) stays online for 8 heartbeats"
                  % (mode, "" if mode == "good" else ", every second PING only"))
            check(len(res["pings"]) >= 6, "%s: got %d PINGs" % (mode, len(res["pings"])))


# ---- decisions 2, 4, 7, 8, 10 -----------------------------------------------------------------

def error_of(payload):
    code, ftype = struct.unpack_from("<HB", payload)
    return code, ftype


def reject_message(payload):
    return payload[4:].decode(errors="replace")


def hello_raw(tid="P0001", vmin=1, vmax=1, tlvs=None):
    """HELLO payload from explicit TLVs (default: a valid 3-channel 4 kS/s 50 Hz HELLO)."""
    p = struct.pack("<BBH", vmin, vmax, 0)
    if tlvs is None:
        tlvs = default_tlvs(tid)
    return p + b"".join(tlvs)


def chan(i, kind=1, ph=1, unit=1, scale=0.01, name=b"UA"):
    return tlv(12, struct.pack("<BBBBf", i, kind, ph, unit, scale) + name)


def default_tlvs(tid):
    return [tlv(1, tid.encode()), tlv(2, b"py-1.0"), tlv(6, struct.pack("<I", 4000)),
            tlv(7, bytes([50])), chan(0), chan(1, ph=2, name=b"UB"), chan(2, ph=3, name=b"UC")]


def hello_answer(port, hp, version=1):
    c = RawClient(port)
    c.send(frame(HELLO, hp, version=version))
    t, p = c.recv_frame()
    return c, t, p


def online(port, tid, secret):
    c = RawClient(port)
    t, p = c.login(tid, secret)
    check(t == WELCOME, "%s logs in" % tid)
    return c, struct.unpack_from("<qHHQI", p, 0)[3]


def ping_ok(c, token):
    c.send(frame(PING, struct.pack("<Iq", token, 0)))
    t, p = c.recv_frame()
    return t == PONG and struct.unpack_from("<I", p)[0] == token


def protocol_checks(srv, data, secrets):
    port = srv.tport
    # decision 2: server-only types from an established terminal -> ERROR UNEXPECTED, continue
    c, _ = online(port, "P0001", secrets["P0001"])
    for ftype, name in [(CHALLENGE, "CHALLENGE"), (WELCOME, "WELCOME"), (REJECT, "REJECT"),
                        (ACK, "ACK"), (COMMAND, "COMMAND")]:
        c.send(frame(ftype, b"\x00" * 40))
        t, p = c.recv_frame()
        check(t == ERROR and error_of(p) == (3, ftype),
              "%s from an established terminal: ERROR UNEXPECTED naming it" % name)
    check(ping_ok(c, 5), "session continues after the server-only frames")
    # decision 7: a frame with another header version once established: ERROR UNEXPECTED,
    # ignored (no PONG), session continues
    c.send(frame(PING, struct.pack("<Iq", 6, 0), version=2))
    t, p = c.recv_frame()
    check(t == ERROR and error_of(p) == (3, PING),
          "established: PING with header version 2 -> ERROR UNEXPECTED")
    check(ping_ok(c, 7), "the version-2 PING was ignored (next frame is the PONG of PING 7)")
    samples = struct.pack("<" + "h" * 30, *range(30))
    c.send(frame(WAVEFORM, block_payload(1, time.time_ns(), 4000, 10, samples), version=3))
    t, p = c.recv_frame()
    check(t == ERROR and error_of(p) == (3, WAVEFORM), "a version-3 block is not taken")
    check(ping_ok(c, 8) and "P0001" not in block_report(data), "nor stored; session continues")
    # decision 2 in the handshake: a known type other than the expected one -> REJECT PROTOCOL
    for ftype, name in [(ACK, "ACK"), (COMMAND, "COMMAND"), (AUTH, "AUTH")]:
        c2 = RawClient(port)
        c2.send(frame(ftype, b"\x00" * 32))
        t, p = c2.recv_frame()
        check(t == REJECT and reject_reason(p) == "PROTOCOL", "%s before HELLO: REJECT PROTOCOL" % name)
    c2 = RawClient(port)
    c2.send(frame(0x7D, b"x"))
    t, p = c2.recv_frame()
    check(t == ERROR and error_of(p) == (1, 0x7D), "unknown type before HELLO: ERROR UNKNOWN_TYPE")
    c2.close()

    # decision 8: a block's rate / channels must be as in HELLO; time quality = worst of chunks
    t0 = time.time_ns()
    seq = 0

    def two_chunks(seq, tq1, tq2):
        a = bytearray(block_payload(seq, t0 + seq, 4000, 10, samples[:24], 0, 2, 0, 4))
        b = bytearray(block_payload(seq, t0 + seq, 4000, 10, samples[24:], 1, 2, 4, 6))
        a[28], b[28] = tq1, tq2
        return frame(WAVEFORM, bytes(a)) + frame(WAVEFORM, bytes(b))

    for tq1, tq2, want in [(1, 3, 3), (3, 1, 3), (2, 0, 0), (0, 1, 0)]:
        seq += 1
        c.send(two_chunks(seq, tq1, tq2))
        t, p = c.recv_frame()
        check(t == ACK and struct.unpack("<Q", p)[0] == seq, "block %d acked" % seq)
        got = db(data).execute("SELECT time_quality FROM blocks WHERE terminal_id='P0001' AND "
                               "seq=?", (seq,)).fetchone()[0]
        check(got == want, "chunks with time quality %d, %d: block stored with the worst, %d (%s)"
              % (tq1, tq2, want, got))
    c.send(frame(WAVEFORM, block_payload(seq + 1, t0, 2000, 10, samples)))
    t, p = c.recv_frame()
    check(t == ERROR and error_of(p) == (2, WAVEFORM), "block at 2000 S/s (HELLO 4000): ERROR MALFORMED")
    t, p = c.recv_frame()
    check(t == BYE and reject_reason(p) == "PROTOCOL", "then BYE PROTOCOL")
    check(c.closed() and block_report(data)["P0001"][3] == seq, "and the block is not stored")
    c, resume = online(port, "P0001", secrets["P0001"])
    check(resume == seq, "resume point is the last good block (%d)" % resume)

    def event(seq, nch):
        return frame(EVENT, block_payload(seq, t0, 4000, 1, b"\x01\x00" * nch, nch=nch)[:40] +
                     struct.pack("<qHHHH", t0, 1, 0, 500, 0) + b"\x01\x00" * nch)
    seq += 1
    c.send(event(seq, 3))
    t, p = c.recv_frame()
    check(t == ACK and struct.unpack("<Q", p)[0] == seq, "EVENT with the HELLO's 3 channels acked")
    c.send(event(seq + 1, 4))
    t, p = c.recv_frame()
    check(t == ERROR and error_of(p) == (2, EVENT),
          "EVENT with channel 3 not declared in HELLO: ERROR MALFORMED")
    t, p = c.recv_frame()
    check(t == BYE and reject_reason(p) == "PROTOCOL", "then BYE PROTOCOL")
    c.close()

    # decision 4: a HELLO that does not parse -> PROTOCOL; one that parses but is unusable ->
    # BAD_CONFIG. Different provisioned ids, so the per-id limit (5/min) is not what answers.
    d = default_tlvs("P0002")
    malformed = [
        ("missing TERMINAL_ID", hello_raw(tlvs=d[1:])),
        ("bad id characters", hello_raw(tlvs=[tlv(1, b"P0002 x")] + d[1:])),
        ("bad id characters (slash)", hello_raw(tlvs=[tlv(1, b"P/0002")] + d[1:])),
        ("repeated tag", hello_raw(tlvs=d + [tlv(6, struct.pack("<I", 4000))])),
        ("NUL in a string", hello_raw(tlvs=d[:1] + [tlv(2, b"1.0\x00x")] + d[2:])),
        ("NUL in the id", hello_raw(tlvs=[tlv(1, b"P0002\x00")] + d[1:])),
        ("SAMPLE_RATE as u16", hello_raw(tlvs=d[:2] + [tlv(6, struct.pack("<H", 4000))] + d[3:])),
        ("NOMINAL_HZ as u16", hello_raw(tlvs=d[:3] + [tlv(7, struct.pack("<H", 50))] + d[4:])),
        ("version_min 0", hello_raw("P0002", vmin=0)),
        ("truncated TLV", hello_raw("P0002")[:-3]),
        # CHANNEL is a required tag (protocol.md 6.4): none at all is a HELLO that does not
        # parse, not an unusable one (decision 4)
        ("no CHANNEL tag", hello_raw(tlvs=d[:4])),
    ]
    for what, hp in malformed:
        c, t, p = hello_answer(port, hp)
        check(t == REJECT and reject_reason(p) == "PROTOCOL",
              "malformed HELLO (%s): REJECT PROTOCOL (%s)" % (what, reject_reason(p) if t == REJECT else t))
        c.close()
    unusable = [
        ("P0003", "sample rate 0", hello_raw(tlvs=default_tlvs("P0003")[:2] +
                                             [tlv(6, struct.pack("<I", 0))] + default_tlvs("P0003")[3:])),
        ("P0004", "NOMINAL_HZ 55", hello_raw(tlvs=default_tlvs("P0004")[:3] + [tlv(7, bytes([55]))] +
                                             default_tlvs("P0004")[4:])),
        ("P0005", "17 channels", hello_raw(tlvs=default_tlvs("P0005")[:4] +
                                           [chan(i % 16, name=b"C%d" % i) for i in range(17)])),
        ("P0006", "channel of unknown kind", hello_raw(tlvs=default_tlvs("P0006")[:4] + [chan(0, kind=9)])),
    ]
    for tid, what, hp in unusable:
        c, t, p = hello_answer(port, hp)
        check(t == REJECT and reject_reason(p) == "BAD_CONFIG",
              "HELLO that parses, %s: REJECT BAD_CONFIG (%s)" % (what, reject_reason(p) if t == REJECT else t))
        c.close()

    # decision 7: HELLO carries the sender's preferred version, AUTH the session version
    hp = hello_payload("P0007")
    c, t, p = hello_answer(port, hp, version=2)
    check(t == CHALLENGE and p[0] == 1, "HELLO with header version 2 (its own preference) gets "
          "CHALLENGE choosing version 1")
    import hmac as _h, hashlib as _hl
    mac = _h.new(secrets["P0007"], p[4:36] + hp, _hl.sha256).digest()
    c.send(frame(AUTH, mac, version=2))
    t, p = c.recv_frame()
    check(t == REJECT and reject_reason(p) == "PROTOCOL",
          "AUTH with header version 2 in a version-1 session: REJECT PROTOCOL")
    c, t, p = hello_answer(port, hp, version=2)
    mac = _h.new(secrets["P0007"], p[4:36] + hp, _hl.sha256).digest()
    c.send(frame(AUTH, mac))
    t, p = c.recv_frame()
    check(t == WELCOME, "the same HELLO (version 2) with AUTH at the session version: WELCOME")
    c.close()

    # decision 10: provisioned nominal frequency is authoritative; ratios are flagged
    c, t, p = hello_answer(port, hello_payload("P0008", hz=60))
    check(t == REJECT and reject_reason(p) == "BAD_CONFIG" and
          reject_message(p) == "NOMINAL_HZ 60 conflicts with provisioned 50",
          "60 Hz HELLO for a 50 Hz terminal: REJECT BAD_CONFIG '%s'" % reject_message(p))
    c, t, p = hello_answer(port, hello_payload("F60", hz=50))
    check(t == REJECT and reject_reason(p) == "BAD_CONFIG" and
          reject_message(p) == "NOMINAL_HZ 50 conflicts with provisioned 60",
          "50 Hz HELLO for a 60 Hz terminal: REJECT BAD_CONFIG")
    c = RawClient(port)
    t, p = c.login("F60", secrets["F60"], hello_payload("F60", hz=60, vt=100.0, ct=200.0))
    check(t == WELCOME, "60 Hz HELLO for the 60 Hz terminal: WELCOME, despite a CT ratio conflict")
    wait_for(lambda: "HELLO ratios VT 100 CT 200 differ from provisioned VT 100 CT 400" in srv.log(),
             10, "ratio conflict logged")
    print("ok: ratio conflict logged")
    st, j = srv.json("/api/v1/terminals/F60")
    check(st == 200 and j.get("config_conflict") is True and j.get("reported_ct_ratio") == 200 and
          j.get("reported_vt_ratio") == 100 and j.get("ct_ratio") == 400 and j.get("nominal_hz") == 60,
          "API: provisioned ratios kept, reported ones shown, config_conflict true (%r)"
          % {k: j.get(k) for k in ("ct_ratio", "reported_ct_ratio", "config_conflict")})
    st, j = srv.json("/api/v1/terminals/P0001")
    check(j.get("config_conflict") is False and j.get("reported_vt_ratio") is None,
          "API: no ratios reported, no conflict")
    c.close()


# ---- decision 6: the one rate-limit rule, and the handshake cap --------------------------------

def rate_limit_rule(data, secrets):
    cfg = os.path.join(data, "rl.ini")
    with open(cfg, "w") as f:
        f.write("[terminals]\nhandshake_timeout = 6\nauth_fail_per_ip = 5\n"
                "max_handshakes_per_address = 3\n")
    srv = Server(data, ["--config", cfg]).start()
    port = srv.tport
    try:
        # 5 failures (limit 5/min per address), each with its own reason
        for i in range(5):
            c, t, p = hello_answer(port, hello_payload("NOPE%d" % i))
            check(t == REJECT and reject_reason(p) == "UNKNOWN_ID", "unknown id %d: UNKNOWN_ID" % i)
        # now over the limit: every failing handshake gets RATE_LIMIT at the point it fails
        c, t, p = hello_answer(port, hello_payload("NOPE9"))
        check(t == REJECT and reject_reason(p) == "RATE_LIMIT" and struct.unpack_from("<HH", p)[1] == 60,
              "address over its limit: unknown id gets RATE_LIMIT (retry_after 60) at HELLO")
        c, t, p = hello_answer(port, hello_raw("T0003", vmin=0))
        check(t == REJECT and reject_reason(p) == "RATE_LIMIT", "malformed HELLO: RATE_LIMIT, not PROTOCOL")
        hp = bytearray(hello_payload("T0003"))
        hp[0], hp[1] = 2, 3
        c, t, p = hello_answer(port, bytes(hp))
        check(t == REJECT and reject_reason(p) == "RATE_LIMIT", "no common version: RATE_LIMIT, not VERSION")
        c, t, p = hello_answer(port, hello_payload("T0003", hz=60))
        check(t == REJECT and reject_reason(p) == "RATE_LIMIT", "nominal conflict: RATE_LIMIT, not BAD_CONFIG")
        c = RawClient(port)
        c.send(frame(HELLO, hello_payload("T0003")))
        t, p = c.recv_frame()
        check(t == CHALLENGE, "a provisioned id still gets its CHALLENGE from the over-limit address")
        c.send(frame(AUTH, b"\x00" * 32))
        t, p = c.recv_frame()
        check(t == REJECT and reject_reason(p) == "RATE_LIMIT", "wrong key: RATE_LIMIT, not BAD_AUTH")
        c = RawClient(port)
        t, p = c.recv_frame(timeout=20)
        check(t == REJECT and reject_reason(p) == "RATE_LIMIT", "handshake timeout: RATE_LIMIT, not TIMEOUT")
        for tid in ("T0001", "T0002", "T0003"):
            c = RawClient(port)
            t, p = c.login(tid, secrets[tid])
            check(t == WELCOME, "%s proves its key from the over-limit address: WELCOME" % tid)
            c.close()
        wait_for(lambda: srv.metric("gridsense_connections_open") == 0, 10, "connections closed")
        # concurrent unauthenticated handshakes per address: 3, then BUSY retry_after 5
        idle = [RawClient(port) for _ in range(3)]
        wait_for(lambda: srv.metric("gridsense_connections_open") == 3, 10, "3 idle connections")
        c = RawClient(port)
        t, p = c.recv_frame()
        check(t == REJECT and reject_reason(p) == "BUSY" and struct.unpack_from("<HH", p)[1] == 5,
              "4th concurrent handshake from one address: REJECT BUSY, retry_after 5")
        t, p = idle[0].login("T0001", secrets["T0001"])
        check(t == WELCOME, "a pending handshake completes (WELCOME) under the cap")
        c = RawClient(port)
        t, p = c.login("T0002", secrets["T0002"])
        check(t == WELCOME, "an authenticated session frees its handshake slot")
        for x in idle + [c]:
            x.close()

    finally:
        check(srv.stop() == 0, "rate-limit server exits 0")


if __name__ == "__main__":
    main()
