#!/usr/bin/env python3
"""Extracts every TPKT (RFC 1006) of the shared MMS reference captures into hex vector files.

Usage: extract.py CAPTURE_DIR OUT_DIR

For each CAPTURE_DIR/*.pcapng, tshark lists the TCP segments (stream, source port, sequence
number, payload); each direction of each TCP stream is reassembled in sequence order (duplicate
or overlapping retransmissions are dropped) and cut into TPKTs by their own length field.
OUT_DIR/<capture>.hex gets one line per TPKT:

    <c2s|s2c> <tcp stream> <index in that direction> <hex bytes>

c2s is the direction towards port 10102 (the server). Trailing bytes that do not form a whole
TPKT are reported on stderr and not written. Needs Debian's tshark.
"""
import glob
import os
import subprocess
import sys

SERVER_PORT = 10102


def segments(path):
    out = subprocess.run(
        ["tshark", "-r", path, "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport",
         "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.payload", "-Y", "tcp.len > 0"],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 5 or not f[4]:
            continue
        yield int(f[0]), int(f[1]), int(f[2]), int(f[3]), bytes.fromhex(f[4].replace(":", ""))


def main():
    cap_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for path in sorted(glob.glob(os.path.join(cap_dir, "*.pcapng"))):
        flows = {}
        for stream, sport, dport, seq, data in segments(path):
            d = "c2s" if dport == SERVER_PORT else "s2c"
            flows.setdefault((stream, d), []).append((seq, data))
        lines = []
        for (stream, d), segs in sorted(flows.items()):
            segs.sort(key=lambda s: s[0])
            buf = bytearray()
            nxt = None
            for seq, data in segs:
                if nxt is not None and seq < nxt:  # retransmission / overlap
                    data = data[nxt - seq:]
                    seq = nxt
                if not data:
                    continue
                buf += data
                nxt = seq + len(data)
            off = idx = 0
            while off + 4 <= len(buf):
                n = (buf[off + 2] << 8) | buf[off + 3]
                if buf[off] != 3 or n < 7 or off + n > len(buf):
                    break
                lines.append((stream, d, idx, bytes(buf[off:off + n])))
                off += n
                idx += 1
            if off != len(buf):
                print(f"{path}: stream {stream} {d}: {len(buf) - off} trailing bytes",
                      file=sys.stderr)
        name = os.path.splitext(os.path.basename(path))[0]
        with open(os.path.join(out_dir, name + ".hex"), "w") as fp:
            for stream, d, idx, pdu in sorted(lines, key=lambda x: (x[0], x[1], x[2])):
                fp.write(f"{d} {stream} {idx} {pdu.hex()}\n")
        total += len(lines)
        print(f"{name}: {len(lines)} TPKTs")
    print(f"total {total} TPKTs")


if __name__ == "__main__":
    main()
