"""docs/vectors/gstp-1.0.json checked by an independent implementation: a decoder written in
Python from the tables of docs/protocol.md (not from the C codec that generated the file), the
bit-wise CRC-32C of gslib and Python's own HMAC-SHA256. Every field of every frame vector is
decoded from the hex and compared with the JSON; the invalid frames fail the checks their
`expect` names. This is also a template for a firmware team's CI: it needs only Python 3."""
import hashlib
import hmac
import json
import os
import struct

from gslib import *

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "vectors", "gstp-1.0.json")


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def tlvs(b):
    """[(tag, value bytes)], or None if the list is malformed (protocol.md 5)."""
    out, off = [], 0
    while off < len(b):
        if off + 3 > len(b):
            return None
        tag, n = struct.unpack_from("<BH", b, off)
        if off + 3 + n > len(b):
            return None
        out.append((tag, b[off + 3:off + 3 + n]))
        off += 3 + n
    return out


def typed(t, v):
    fmt = {"u8": "<B", "u16": "<H", "u32": "<I", "u64": "<Q", "i64": "<q"}
    if t == "str":
        return v.decode()
    if struct.calcsize(fmt[t]) != len(v):
        fail("TLV value of %d bytes for type %s" % (len(v), t))
    return struct.unpack(fmt[t], v)[0]


def dec_hello(p):
    vmin, vmax, _ = struct.unpack_from("<BBH", p, 0)
    d = {"version_min": vmin, "version_max": vmax, "terminal_id": "", "fw_version": "",
         "hw_version": "", "imei": "", "iccid": "", "sample_rate": 0, "nominal_hz": 0,
         "vt_ratio": 0.0, "ct_ratio": 0.0, "time_source": 0, "time_quality": 0,
         "buffer_blocks": 0, "channels": []}
    strs = {1: "terminal_id", 2: "fw_version", 3: "hw_version", 4: "imei", 5: "iccid"}
    for tag, v in tlvs(p[4:]):
        if tag in strs:
            d[strs[tag]] = v.decode()
        elif tag in (6, 13):
            d["sample_rate" if tag == 6 else "buffer_blocks"] = struct.unpack("<I", v)[0]
        elif tag in (7, 10, 11):
            d[{7: "nominal_hz", 10: "time_source", 11: "time_quality"}[tag]] = v[0]
        elif tag in (8, 9):
            d["vt_ratio" if tag == 8 else "ct_ratio"] = struct.unpack("<f", v)[0]
        elif tag == 12:
            i, k, ph, u, sc = struct.unpack_from("<BBBBf", v, 0)
            d["channels"].append({"index": i, "kind": k, "phase": ph, "unit": u, "scale": sc,
                                  "name": v[8:].decode()})
    return d


def dec_block(p, event):
    names = ["seq", "t0_ns", "sample_rate", "channel_mask", "nsamples", "first_sample",
             "time_quality", "sample_fmt", "nchannels", "chunk_index", "chunk_count", "codec",
             "reserved", "n_in_chunk", "reserved2"]
    d = dict(zip(names, struct.unpack_from("<QqIIHHBBBBBBHHH", p, 0)))
    off = 40
    if event:
        d.update(zip(["trigger_ns", "trigger", "pretrigger", "value_permille", "channel"],
                     struct.unpack_from("<qHHHH", p, 40)))
        off = 56
    if d["codec"] == 1:
        return dec_segment_chunk(d, p[off:])
    w = 4 if d["sample_fmt"] == 2 else 2
    n = d["n_in_chunk"] * d["nchannels"]
    if len(p) - off != n * w:
        fail("sample bytes: %d, expected %d" % (len(p) - off, n * w))
    d["samples"] = list(struct.unpack_from("<%d%s" % (n, "i" if w == 4 else "h"), p, off))
    if d.pop("reserved") or d.pop("reserved2"):
        fail("reserved block fields not zero")
    return d


def varint(b, off):
    """A minimal LEB128 varint of at most 3 bytes (protocol.md, Appendix A.2)."""
    x = 0
    for i in range(3):
        if off + i >= len(b):
            return None, off
        x |= (b[off + i] & 0x7F) << (7 * i)
        if not b[off + i] & 0x80:
            return x, off + i + 1
    return None, off


def segment_header(seg):
    """(sets, total length in bytes) from a wcodec segment's byte header: shape byte, varint
    n - 1, varint period, varint payload length (Appendix A.2); None if it does not parse."""
    if len(seg) < 4:
        return None
    n1, off = varint(seg, 1)
    _, off = varint(seg, off) if n1 is not None else (None, off)
    plen, off = varint(seg, off) if n1 is not None else (None, off)
    if n1 is None or plen is None:
        return None
    return n1 + 1, off + plen


def dec_segment_chunk(d, seg):
    """Codec 1 (7.4): the sample bytes are exactly one segment covering the chunk's sets. This
    checks the chunk rule from the segment's header; the residuals are not decoded here (that
    needs a wcodec decoder: unit.test_vectors decodes them with the C one), so the sample values
    and the period hint are taken from the JSON."""
    hdr = segment_header(seg)
    shape = ((d["sample_fmt"] - 1) << 4) | (d["nchannels"] - 1)  # A.2: must match the block
    if hdr is None or hdr[0] != d["n_in_chunk"] or hdr[1] != len(seg) or seg[0] != shape:
        fail("codec 1 chunk: segment header %r, chunk n_in_chunk %d, %d bytes" %
             (hdr, d["n_in_chunk"], len(seg)))
    if d.pop("reserved") or d.pop("reserved2"):
        fail("reserved block fields not zero")
    d["segment"] = seg.hex()
    d["codec1_unverified"] = True
    return d


def dec_cmd(p, list_key, code_key, want):
    i, code, _ = struct.unpack_from("<QHH", p, 0)
    items = tlvs(p[12:])
    out = []
    for (tag, v), w in zip(items, want[list_key]):
        out.append({"tag": tag, "name": w["name"], "type": w["type"], "value": typed(w["type"], v)})
    if len(items) != len(want[list_key]):
        fail("%d TLV elements, JSON lists %d" % (len(items), len(want[list_key])))
    return {"id": i, code_key: code, list_key: out}


def decode(ftype, p, want):
    if ftype == HELLO:
        return dec_hello(p)
    if ftype == CHALLENGE:
        return {"version": p[0], "nonce": p[4:36].hex()}
    if ftype == AUTH:
        return {"mac": p[:32].hex()}
    if ftype == WELCOME:
        d = dict(zip(["server_time_ns", "heartbeat_s", "ack_window", "resume_seq", "session_id"],
                     struct.unpack_from("<qHHQI", p, 0)))
        ext = tlvs(p[24:])
        if ext is None:
            fail("WELCOME extensions malformed")
        d["codecs"] = 1  # 6.7: no CODECS element = raw only
        for tag, v in ext:
            if tag == 1:
                d["codecs"] = struct.unpack("<I", v)[0] | 1
        return d
    if ftype in (REJECT, BYE):
        r, ra = struct.unpack_from("<HH", p, 0)
        return {"reason": r, "reason_name": REJ_NAMES[r], "retry_after_s": ra,
                "message": p[4:].decode()}
    if ftype in (WAVEFORM, EVENT):
        return dec_block(p, ftype == EVENT)
    if ftype == STATUS:
        v = struct.unpack_from("<qhhBBBBHhHHII", p, 0)
        names = ["time_ns", "rsrp_dbm", "rssi_dbm", "csq", "gps_fix", "gps_sats", "time_quality",
                 "supply_mv", "temp_c10", "buffer_permille", "reserved", "uptime_s",
                 "buffered_blocks"]
        d = dict(zip(names, v))
        d.pop("reserved")
        return d
    if ftype == ACK:
        return {"seq": struct.unpack_from("<Q", p, 0)[0]}
    if ftype == COMMAND:
        return dec_cmd(p, "args", "verb", want)
    if ftype == RESULT:
        return dec_cmd(p, "results", "status", want)
    if ftype in (PING, PONG):
        return dict(zip(["token", "sender_time_ns"], struct.unpack_from("<Iq", p, 0)))
    if ftype == ERROR:
        c, t = struct.unpack_from("<HB", p, 0)
        return {"code": c, "frame_type": t, "message": p[4:].decode()}
    fail("no decoder for type 0x%02x" % ftype)


def same(a, b):
    """Deep equality with f32 values compared as binary32."""
    if isinstance(a, float) or isinstance(b, float):
        return f32(float(a)) == f32(float(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def header_ok(b):
    """protocol.md 3.3 step 2: magic, version 1..127, reserved 0, len <= 2048, hcheck."""
    return (len(b) >= 10 and b[0:2] == b"\xC5\x47" and 1 <= b[2] <= 127 and b[5] == 0
            and struct.unpack_from("<H", b, 6)[0] <= 2048
            and struct.unpack_from("<H", b, 8)[0] == crc32c(b[:8]) & 0xFFFF)


def main():
    doc = json.load(open(VECTORS))
    check(doc["spec_version"] in ("1.0", "1.1") and doc["wire_version"] == 1,
          "vectors are for GSTP 1.x, wire version 1")
    types = set()
    codec1 = 0
    for v in doc["frames"]:
        b = bytes.fromhex(v["hex"])
        name = v["name"]
        if not header_ok(b):
            fail("%s: header check fails" % name)
        ln = struct.unpack_from("<H", b, 6)[0]
        if len(b) != 14 + ln or struct.unpack_from("<I", b, 10 + ln)[0] != crc32c(b[:10 + ln]):
            fail("%s: length or CRC wrong" % name)
        hdr = {"type": b[3], "version": b[2], "flags": b[4], "len": ln,
               "hcheck": struct.unpack_from("<H", b, 8)[0],
               "crc": struct.unpack_from("<I", b, 10 + ln)[0]}
        for k, x in hdr.items():
            if v[k] != x:
                fail("%s: header %s = %r, JSON %r" % (name, k, x, v[k]))
        got = decode(b[3], b[10:10 + ln], v["fields"])
        if got.pop("codec1_unverified", False):
            codec1 += 1
            got["samples"] = v["fields"]["samples"]
            got["period_hint"] = v["fields"]["period_hint"]
        if not same(got, v["fields"]):
            fail("%s: decoded %r\n  JSON    %r" % (name, got, v["fields"]))
        types.add(b[3])
    check(types == {HELLO, CHALLENGE, AUTH, WELCOME, REJECT, BYE, WAVEFORM, STATUS, EVENT, ACK,
                    COMMAND, RESULT, PING, PONG, ERROR},
          "%d frame vectors cover every frame type; each decoded independently matches its "
          "fields" % len(doc["frames"]))
    check(codec1 >= 1, "%d codec-1 chunk(s): one segment each, its header's set count and length "
          "match the chunk (values decoded by unit.test_vectors, not here)" % codec1)

    h = doc["hmac"][0]
    mac = hmac.new(bytes.fromhex(h["secret_hex"]),
                   bytes.fromhex(h["nonce_hex"]) + bytes.fromhex(h["hello_payload_hex"]),
                   hashlib.sha256).hexdigest()
    check(mac == h["mac_hex"], "HMAC example: Python's HMAC-SHA256 gives the same MAC")
    for c in doc["crc32c"]:
        if crc32c(bytes.fromhex(c["input_hex"])) != c["crc32c"]:
            fail("CRC example %s" % c["name"])
    check(True, "%d CRC-32C examples match the bit-wise CRC" % len(doc["crc32c"]))

    for v in doc["invalid"]:
        b, e = bytes.fromhex(v["hex"]), v["expect"]
        if e["header_errors"]:
            check(not header_ok(b), "invalid '%s': header rejected" % v["name"])
        elif e["crc_errors"]:
            ln = struct.unpack_from("<H", b, 6)[0]
            check(header_ok(b) and struct.unpack_from("<I", b, 10 + ln)[0] != crc32c(b[:10 + ln]),
                  "invalid '%s': CRC rejected" % v["name"])
        else:
            ln = struct.unpack_from("<H", b, 6)[0]
            check(header_ok(b) and struct.unpack_from("<I", b, 10 + ln)[0] == crc32c(b[:10 + ln])
                  and e["frames"] == 1 and payload_defect(b[3], b[10:10 + ln]),
                  "invalid '%s': a valid frame whose payload breaks a rule (codec: %s)"
                  % (v["name"], e["parse"]))


def payload_defect(ftype, p):
    """True when the payload breaks a rule of protocol.md (the ones the invalid vectors use)."""
    if ftype == COMMAND:
        return tlvs(p[12:]) is None  # 5: an element runs past the end
    if ftype == HELLO:
        items = tlvs(p[4:])
        tags = [t for t, _ in items or [] if t != 12]
        return p[0] == 0 or items is None or len(tags) != len(set(tags))  # 6.4
    if ftype in (WAVEFORM, EVENT):
        nch, fmt, n = p[30], p[29], struct.unpack_from("<H", p, 36)[0]
        fixed = 56 if ftype == EVENT else 40
        if p[33] == 1:  # codec 1: exactly one segment, of the chunk's sets (7.4)
            hdr = segment_header(p[fixed:])
            return hdr is None or hdr[0] != n or hdr[1] != len(p) - fixed
        return len(p) - fixed != n * nch * (4 if fmt == 2 else 2)  # 7.4: exact sample bytes
    return False


if __name__ == "__main__":
    main()
