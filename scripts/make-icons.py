#!/usr/bin/env python3
"""Draws the web app's PNG icons (web/icon-192.png, web/icon-512.png: the phone's home screen
and install dialogs need PNGs) from the same design as web/icon.svg: a three-phase sine on the
app's dark blue, with a margin so it survives a "maskable" crop. Plain Python (zlib), no image
library. Run once after changing the design: python3 scripts/make-icons.py"""
import math
import os
import struct
import zlib

BG = (0x1d, 0x3b, 0x57)
PHASES = [(0xf2, 0xc0, 0x37), (0x5b, 0xd1, 0x7a), (0x6c, 0xb4, 0xff)]


def png(path, w, h, rows):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def icon(size):
    px = [[list(BG) for _ in range(size)] for _ in range(size)]
    margin = size * 0.2  # inside the maskable safe zone (80 % circle)
    amp = (size - 2 * margin) * 0.32
    width = max(2.0, size / 40)
    for k, col in enumerate(PHASES):
        for xi in range(int(margin), int(size - margin)):
            for sub in range(8):
                x = xi + sub / 8
                ph = 2 * math.pi * (x - margin) / (size - 2 * margin) * 1.5 - k * 2 * math.pi / 3
                y = size / 2 - amp * math.sin(ph)
                for yy in range(int(y - width), int(y + width) + 1):
                    if 0 <= yy < size and abs(yy - y) <= width:
                        px[yy][xi] = list(col)
    return [sum(r, []) for r in px]


here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web")
for s in (192, 512):
    png(os.path.join(here, "icon-%d.png" % s), s, s, icon(s))
