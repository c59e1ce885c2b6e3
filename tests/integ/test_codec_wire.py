"""GSTP codecs 1 and 2 (wcodec) on the wire and at rest (docs/protocol.md 6.7, 7.4, Appendix A;
operations.md):

1. the simulator with --codec raw, with its default (codec 2, the block model, announced by
   WELCOME) and with --codec wcodec1 (codec 1, as a terminal without codec 2 sends): every block
   it sent (--dump-blocks: its samples as generated) reads back through the waveform API (raw
   samples, counts = value / lsb) identical value for value, in all runs;
2. the wire counters (gridsense_sample_bytes_received_total / _raw_bytes_, by codec) and the
   simulator's own byte counts show what codecs 1 and 2 save; every stored block is compressed
   at rest (codec 1 or 2 as received, raw ones encoded by the writer with codec 2; the writer's
   counters agree); the gateway's in-flight byte accounting (reassembly buffers and kept
   segments) returns to 0;
3. a Python terminal (independent encoder; its codec-1 segment is the one of the committed test
   vector) sees CODECS in WELCOME, gets a codec-1 block and a raw block acknowledged (the raw one
   stored raw or encoded by the writer with codec 2), the codec-1
   block is stored byte for byte as it came and reads back as the vector's values; then a
   codec-1 block whose second chunk has a byte after its segment gets ERROR MALFORMED and
   BYE PROTOCOL, nothing past the last ACK is acknowledged or stored, and the next login resumes
   after the last stored block.
"""
import json
import os
import struct
import time

from gslib import *

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "vectors", "gstp-1.0.json")
SIM_ARGS = ["--seed", "7", "--disturbed-fraction", "0", "--status-interval", "60",
            "--drain", "60"]


def read_dump(path):
    """--dump-blocks: {terminal: [(t0_ns, nsets, [int16 values interleaved])]} in seq order."""
    out = {}
    for line in open(path):
        tid, seq, t0, n, hx = line.split()
        raw = bytes.fromhex(hx)
        out.setdefault(tid, []).append((int(seq), int(t0), int(n),
                                        list(struct.unpack("<%dh" % (len(raw) // 2), raw))))
    for v in out.values():
        v.sort()
    return out


def stored_counts(srv, tid, blocks, rate):
    """The terminal's samples from the waveform API (raw, secondary side) over the time of the
    given blocks, as counts per channel: value / the channel's lsb (its HELLO scale)."""
    f = blocks[0][1]
    to = blocks[-1][1] + blocks[-1][2] * 1000000000 // rate
    st, w = srv.json("/api/v1/terminals/%s/waveform?from=%d&to=%d&max_points=100000&side=secondary"
                     % (tid, f, to))
    check(st == 200 and w["mode"] == "raw" and len(w["segments"]) == 1 and not w["gaps"],
          "%s: raw samples in one segment without gaps (%d %s)" % (tid, st, w.get("mode")))
    seg = w["segments"][0]
    return {c["name"]: [round(x / c["lsb"]) for x in seg["samples"][c["name"]]]
            for c in seg["channels"]}


def check_stored(srv, dump, rate, what):
    """Every block the simulator sent reads back from the store sample for sample."""
    names = ["Ua", "Ub", "Uc", "Ia", "Ib", "Ic"]  # SIG_NCH channel order of gridsense-sim
    for tid, blocks in sorted(dump.items()):
        got = stored_counts(srv, tid, blocks, rate)
        sent = [x for b in blocks for x in b[3]]
        want = {n: sent[i::6] for i, n in enumerate(names)}
        check(sorted(got) == sorted(names) and all(got[n] == want[n] for n in names),
              "%s, %s: the %d blocks (%d sample sets x 6 channels) read back exactly as sent"
              % (what, tid, len(blocks), len(sent) // 6))


def sim_run(srv, secrets, codec, data):
    dump = os.path.join(data, "dump-%s.txt" % codec)
    rc, s, err = sim(srv.tport, secrets, 2, 3, SIM_ARGS + ["--codec", codec,
                                                           "--dump-blocks", dump])
    check(rc == 0 and s and s["blocks_acked"] == s["blocks_generated"] > 0,
          "simulator --codec %s: every block acknowledged (%s)" % (codec, s))
    d = read_dump(dump)
    check(sum(len(v) for v in d.values()) == s["blocks_generated"],
          "--dump-blocks: one line per block (%d)" % s["blocks_generated"])
    check_stored(srv, d, 4000, "--codec " + codec)
    return s


def simulator_runs(data):
    secrets = provision(data, 2, "C")
    srv = Server(data).start()
    try:
        raw = sim_run(srv, secrets, "raw", data)
        check(raw["wcodec_blocks_sent"] == 0 and raw["sample_bytes_sent"] == raw["sample_raw_bytes"],
              "--codec raw: no codec-1 block, sample bytes sent = their raw size (%d)"
              % raw["sample_bytes_sent"])
        w_raw = srv.metric('gridsense_sample_bytes_received_total{codec="raw"}')
        check(w_raw == srv.metric('gridsense_sample_raw_bytes_received_total{codec="raw"}') > 0
              and srv.metric('gridsense_sample_bytes_received_total{codec="wcodec"}') == 0
              and srv.metric('gridsense_sample_bytes_received_total{codec="wcodec2"}') == 0,
              "server: raw sample bytes on the wire = their raw size (%d), none with codec 1 or 2"
              % w_raw)
        runs = {}
        for arg, label, want2 in (("wcodec", "wcodec2", True), ("wcodec1", "wcodec", False)):
            wc = runs[arg] = sim_run(srv, secrets, arg, data)
            n2 = wc["wcodec2_blocks_sent"]
            check(wc["wcodec_blocks_sent"] == wc["blocks_sent"] > 0
                  and n2 == (wc["blocks_sent"] if want2 else 0),
                  "--codec %s: every block sent with codec %d (%d, %d with codec 2)"
                  % (arg, 2 if want2 else 1, wc["wcodec_blocks_sent"], n2))
            wire = srv.metric('gridsense_sample_bytes_received_total{codec="%s"}' % label)
            rawsz = srv.metric('gridsense_sample_raw_bytes_received_total{codec="%s"}' % label)
            check(0 < wire < rawsz and rawsz == wc["sample_raw_bytes"]
                  and wire == wc["sample_bytes_sent"],
                  "server counters (codec=%s) match the simulator's: %d sample bytes on the wire "
                  "for %d raw (%.3f, %.3f bytes/sample)"
                  % (label, wire, rawsz, wire / rawsz, 2 * wire / rawsz))
        wc, w1 = runs["wcodec"], runs["wcodec1"]
        print("figures: simulator default signal, 2 terminals x 3 s at 4000 S/s x 6 ch, "
              "--max-payload 1024: raw run %d bytes sent (%d sample bytes); codec-2 run %d bytes "
              "sent (%d sample bytes for %d raw: %.3f bytes/sample); codec-1 run %d bytes sent "
              "(%d sample bytes for %d raw: %.3f bytes/sample)"
              % (raw["bytes_sent"], raw["sample_bytes_sent"], wc["bytes_sent"],
                 wc["sample_bytes_sent"], wc["sample_raw_bytes"],
                 2.0 * wc["sample_bytes_sent"] / wc["sample_raw_bytes"], w1["bytes_sent"],
                 w1["sample_bytes_sent"], w1["sample_raw_bytes"],
                 2.0 * w1["sample_bytes_sent"] / w1["sample_raw_bytes"]))

        # reassembly and store backlog accounting (raw buffers and kept segments) back to zero
        wait_for(lambda: srv.metric("gridsense_ingest_inflight_bytes") == 0, 30,
                 "ingest in-flight bytes back to 0")
        check(srv.metric("gridsense_store_blocks_compressed_total") == raw["blocks_generated"]
              + wc["blocks_generated"] + w1["blocks_generated"]
              and srv.metric("gridsense_store_blocks_raw_busy_total") == 0,
              "every block committed compressed (%d), none left raw for a busy writer"
              % srv.metric("gridsense_store_blocks_compressed_total"))
        c = db(data)
        rows = c.execute("SELECT codec, COUNT(*), SUM(length(data)),"
                         " SUM(nsamples * nchannels * 2) FROM blocks GROUP BY codec").fetchall()
        c.close()
        by = {r[0]: r for r in rows}
        check(sorted(by) == [1, 2] and by[1][1] == w1["blocks_generated"]
              and by[2][1] == raw["blocks_generated"] + wc["blocks_generated"]
              and all(r[2] < r[3] for r in rows),
              "at rest: %d blocks with codec 1 (received so), %d with codec 2 (received so, or "
              "encoded by the writer), %d and %d bytes for %d and %d raw (%.3f, %.3f)"
              % (by[1][1], by[2][1], by[1][2], by[2][2], by[1][3], by[2][3],
                 by[1][2] / by[1][3], by[2][2] / by[2][3]))
    finally:
        srv.stop()


def codec1_vector():
    doc = json.load(open(VECTORS))
    for v in doc["frames"]:
        f = v["fields"]
        if v["type"] == WAVEFORM and f.get("codec") == 1:
            return f
    fail("no codec-1 WAVEFORM vector")


def wc_block(seq, t0, rate, nsamples, seg, chunk_index=0, chunk_count=1, first=0, n=None):
    """A codec-1 chunk built by hand (7.4): block header with codec 1, then the segment."""
    n = nsamples if n is None else n
    h = struct.pack("<QqIIHHBBBBBBHHH", seq, t0, rate, 0x7, nsamples, first, 1, 1, 3,
                    chunk_index, chunk_count, 1, 0, n, 0)
    return frame(WAVEFORM, h + seg)


def wait_ack(c, seq, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t, p = c.recv_frame(max(0.1, deadline - time.monotonic()))
        if t is None:
            return None
        if t == ACK:
            got = struct.unpack("<Q", p)[0]
            if got >= seq:
                return got
        elif t == PING:
            c.send(frame(PONG, p))
    return None


def python_terminal(data):
    v = codec1_vector()
    seg = bytes.fromhex(v["segment"])
    ns, rate = v["nsamples"], v["sample_rate"]
    check(v["nchannels"] == 3 and v["sample_fmt"] == 1 and ns == v["n_in_chunk"],
          "vector: one chunk of %d sets of 3 int16 channels at %d S/s" % (ns, rate))
    secrets = read_secrets(provision(data, 1, "P"))
    srv = Server(data).start()
    try:
        c = RawClient(srv.tport)
        hp = hello_payload("P0001", rate=rate, nch=3)
        t, w = c.login("P0001", secrets["P0001"], hp)
        check(t == WELCOME, "login: WELCOME")
        ext = w[24:]
        check(ext == tlv(1, struct.pack("<I", 7)),
              "WELCOME carries CODECS = 0x7 (raw, wcodec, wcodec with the block model): %s"
              % ext.hex())
        t0 = (time.time_ns() // 1000000000 - 5) * 1000000000
        period = ns * 1000000000 // rate
        c.send(wc_block(1, t0, rate, ns, seg))
        check(wait_ack(c, 1) == 1, "codec-1 block 1 acknowledged")
        raw = b"".join(struct.pack("<h", x) for x in v["samples"])
        c.send(frame(WAVEFORM, block_payload(2, t0 + period, rate, ns, raw)))
        check(wait_ack(c, 2) == 2, "raw block 2 acknowledged")
        # block 3: two codec-1 chunks; the second has a byte after its segment
        c.send(wc_block(3, t0 + 2 * period, rate, 2 * ns, seg, 0, 2, 0, ns))
        c.send(wc_block(3, t0 + 2 * period, rate, 2 * ns, seg + b"\x00", 1, 2, ns, ns))
        got = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            t, p = c.recv_frame(max(0.1, deadline - time.monotonic()))
            if t is None:
                break
            got.append((t, p))
        acks = [struct.unpack("<Q", p)[0] for t, p in got if t == ACK]
        errs = [struct.unpack_from("<HB", p, 0) for t, p in got if t == ERROR]
        byes = [reject_reason(p) for t, p in got if t == BYE]
        check(errs == [(2, WAVEFORM)] and byes == ["PROTOCOL"],
              "segment with a byte after it: ERROR MALFORMED for WAVEFORM, then BYE PROTOCOL "
              "(%r, %r)" % (errs, byes))
        check(all(a <= 2 for a in acks), "nothing past the last ACK acknowledged (%r)" % acks)
        check(c.closed(10), "server closed the session")
        c.close()

        cdb = db(data)
        rows = cdb.execute("SELECT seq, codec, data FROM blocks WHERE terminal_id = 'P0001'"
                           " ORDER BY seq").fetchall()
        cdb.close()
        check([r[0] for r in rows] == [1, 2], "stored: blocks 1 and 2, not 3 (%r)"
              % [r[0] for r in rows])
        check(rows[0][1] == 1 and bytes(rows[0][2]) == seg,
              "block 1 stored with codec 1, byte for byte the segment received")
        check(rows[1][1] in (0, 2), "block 2 (received raw) stored with codec %d" % rows[1][1])
        # read back through the API: the vector's values (counts x 0.01 V, secondary side)
        for k in (0, 1):
            st, j = srv.json("/api/v1/terminals/P0001/waveform?from=%d&to=%d&max_points=100000"
                             "&side=secondary" % (t0 + k * period, t0 + (k + 1) * period))
            s = j["segments"][0]["samples"] if st == 200 and j["segments"] else {}
            vals = list(s.values())
            ok = len(vals) == 3 and all(
                abs(vals[ch][i] - v["samples"][3 * i + ch] * 0.01) < 0.006
                for ch in range(3) for i in range(ns))
            check(ok, "block %d reads back as the vector's %d x 3 values" % (k + 1, ns))

        c = RawClient(srv.tport)
        t, w = c.login("P0001", secrets["P0001"], hp)
        check(t == WELCOME and struct.unpack_from("<Q", w, 12)[0] == 2,
              "next login resumes after block 2 (WELCOME resume_seq 2)")
        c.close()
        check(srv.metric("gridsense_protocol_errors_total") == 1,
              "one session closed for a protocol error")
        wait_for(lambda: srv.metric("gridsense_ingest_inflight_bytes") == 0, 30,
                 "the dropped block's reassembly memory released (in-flight bytes 0)")
    finally:
        srv.stop()


def main():
    with TempDir() as data:
        simulator_runs(data)
    with TempDir() as data:
        python_terminal(data)
    print("ok")


if __name__ == "__main__":
    main()
