#!/usr/bin/env python3
"""`gridsense analyze` on COMTRADE records written here by hand (ASCII 1999, BINARY 1999 with a
multiplier, FLOAT32 2013 with a time code, and a .cff), independently of our own writer: values,
events and aggregates against the known truth of the synthetic signal, CSV output, channel
mapping, and clear errors for bad input."""
import json
import math
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import GRIDSENSE, TempDir, check

FS = 4000
F = 50.2
SECONDS = 14          # crosses a 10-s tick: a complete 10-s frequency value
V = 57.735            # RMS, secondary volts
I = 5.0
H5 = 0.05             # 5th harmonic, relative
DIP_AT, DIP_LEN, DIP_DEPTH = 4.0, 0.1, 0.5   # phase A to 50 % for 100 ms
START = "25/11/2026,10:00:00.000000"          # dd/mm/yyyy (1999/2013)
START_NS = 1795600800 * 10**9                 # 2026-11-25T10:00:00Z


def signal():
    n = FS * SECONDS
    rows = []
    for k in range(n):
        t = k / FS
        ph = 2 * math.pi * F * t
        row = []
        for c in range(3):
            th = ph - 2 * math.pi / 3 * c
            amp = math.sqrt(2) * V
            if c == 0 and DIP_AT <= t < DIP_AT + DIP_LEN:
                amp *= DIP_DEPTH
            row.append(amp * (math.cos(th) + H5 * math.cos(5 * th)))
        for c in range(3):
            th = ph - 2 * math.pi / 3 * c - math.radians(30)
            row.append(math.sqrt(2) * I * math.cos(th))
        rows.append(row)
    return rows


NAMES = [("VA", "A", "V"), ("VB", "B", "V"), ("VC", "C", "V"),
         ("IA", "A", "A"), ("IB", "B", "A"), ("IC", "C", "A")]


def cfg_text(rev, ft, a_list, b_list, extra_lines=(), lf=50, timemult="1"):
    lines = ["GRIDSENSE TEST,T1,%s" % rev if rev != "1991" else "GRIDSENSE TEST,T1",
             "%d,%dA,0D" % (len(NAMES), len(NAMES))]
    for i, (cid, ph, uu) in enumerate(NAMES):
        lines.append("%d,%s,%s,feeder,%s,%r,%r,0,-32767,32767,1,1,S"
                     % (i + 1, cid, ph, uu, a_list[i], b_list[i]))
    lines += [str(lf), "1", "%d,%d" % (FS, FS * SECONDS), START, START, ft, timemult]
    lines += list(extra_lines)
    return "\r\n".join(lines) + "\r\n"


def write_ascii(base, rows):
    a = [0.001] * 6
    with open(base + ".cfg", "w", newline="") as f:
        f.write(cfg_text("1999", "ASCII", a, [0.0] * 6))
    with open(base + ".dat", "w", newline="") as f:
        for k, r in enumerate(rows):
            f.write("%d,%d,%s\r\n" % (k + 1, k * 250, ",".join(str(round(v / 0.001)) for v in r)))


def write_binary(base, rows):
    peak = [max(abs(r[c]) for r in rows) for c in range(6)]
    a = [p / 32000 for p in peak]
    with open(base + ".cfg", "w", newline="") as f:
        f.write(cfg_text("1999", "BINARY", a, [0.0] * 6))
    with open(base + ".dat", "wb") as f:
        for k, r in enumerate(rows):
            f.write(struct.pack("<II", k + 1, k * 250))
            f.write(struct.pack("<6h", *(int(round(v / a[c])) for c, v in enumerate(r))))


def float32_parts(rows, time_code="+1"):
    # local time = UTC + 1 h: the date fields say 11:00 for 10:00 UTC (C37.111-2013 7.4.11)
    cfg = cfg_text("2013", "FLOAT32", [1.0] * 6, [0.0] * 6,
                   extra_lines=("%s,x" % time_code, "0,0")).replace(
        START + "\r\n" + START, START.replace("10:00", "11:00") + "\r\n"
        + START.replace("10:00", "11:00"))
    dat = bytearray()
    for k, r in enumerate(rows):
        dat += struct.pack("<II", k + 1, k * 250) + struct.pack("<6f", *r)
    return cfg, bytes(dat)


def write_float32(base, rows):
    cfg, dat = float32_parts(rows)
    with open(base + ".cfg", "w", newline="") as f:
        f.write(cfg)
    with open(base + ".dat", "wb") as f:
        f.write(dat)


def write_cff(path, rows):
    cfg, dat = float32_parts(rows)
    with open(path, "wb") as f:
        f.write(b"--- file type: CFG ---\r\n" + cfg.encode())
        f.write(b"--- file type: DAT BINARY: %d ---\r\n" % len(dat) + dat)


def analyze(args, rc=0):
    p = subprocess.run([GRIDSENSE, "analyze"] + args, capture_output=True, text=True,
                       timeout=300)
    check(p.returncode == rc, "analyze %s: exit %d (want %d); stderr: %s"
          % (" ".join(args[-3:]), p.returncode, rc, p.stderr[-400:]))
    return p


def records(out):
    recs = {}
    for line in out.splitlines():
        r = json.loads(line)
        recs.setdefault(r["type"], []).append(r["data"])
    return recs


def check_results(label, recs, tol_rms):
    wins = recs.get("window", [])
    check(len(wins) >= 60, "%s: windows produced (%d)" % (label, len(wins)))
    steady = [w for w in wins if not w["flags"]]
    check(len(steady) >= 50, "%s: unflagged windows (%d)" % (label, len(steady)))
    fe = max(abs(w["freq"] - F) for w in steady)
    check(fe < 0.005, "%s: frequency within 5 mHz (worst %.4f mHz)" % (label, fe * 1e3))
    want_v = V * math.sqrt(1 + H5 * H5)
    for w in steady:
        ch = {c["name"]: c for c in w["channels"]}
        for name in ("Ua", "Ub", "Uc"):
            err = abs(ch[name]["rms"] / want_v - 1)
            check(err < tol_rms, "%s: %s rms %.5f vs %.5f" % (label, name, ch[name]["rms"],
                                                               want_v))
            h = ch[name]["harmonic_groups"]
            check(abs(h[5] / h[1] - H5) < H5 * 0.05, "%s: 5th harmonic group %.4f" % (label,
                                                                                      h[5] / h[1]))
            # phi_5 - 5 phi_1 of cos(th) + H5 cos(5 th) is 0 on every phase; no angle for the
            # orders not present, none for DC, 0 for the fundamental
            a = ch[name]["harmonic_angles_deg"]
            check(len(a) == len(h) and a[0] is None and a[1] == 0 and a[2] is None
                  and abs(a[5]) < 0.5, "%s: %s harmonic angles %r" % (label, name, a[:8]))
        p = w["power"]
        check(abs(p["pf"] - math.cos(math.radians(30)) / math.sqrt(1 + H5 * H5)) < 0.01,
              "%s: total PF %.4f" % (label, p["pf"]))
        check(abs(w["voltage_sequence"]["unbalance_neg_pct"]) < 0.05, "%s: balanced" % label)
    ev = recs.get("event", [])
    check(len(ev) == 1 and ev[0]["kind"] == "dip", "%s: one dip: %r" % (label, ev))
    e = ev[0]
    start_off = e["start_ns"] - (START_NS + int(DIP_AT * 1e9))
    check(abs(start_off) <= 20e6, "%s: dip start within a cycle (%.2f ms)" % (label, start_off / 1e6))
    check(abs(e["residual_pct"] - 50) <= 0.2, "%s: residual %.3f %%" % (label, e["residual_pct"]))
    check(e["channels"] == ["Ua"], "%s: only Ua dipped: %r" % (label, e["channels"]))
    f10 = [x for x in recs.get("10s", []) if "incomplete" not in x["flags"]]
    check(len(f10) >= 1 and abs(f10[0]["freq"] - F) < 0.01, "%s: 10-s frequency %r"
          % (label, [x["freq"] for x in f10]))
    a3 = recs.get("3s", [])
    check(len(a3) >= 3 and any("event" in a["flags"] for a in a3), "%s: 3 s aggregates, one "
          "flagged" % label)


def main():
    rows = signal()
    with TempDir() as d:
        base = os.path.join(d, "rec")
        write_ascii(base + "_ascii", rows)
        p = analyze([base + "_ascii.cfg", "--declared-voltage", str(V)])
        check_results("ASCII 1999", records(p.stdout), 0.001)

        write_binary(base + "_bin", rows)
        p = analyze([base + "_bin.cfg", "--declared-voltage", str(V)])
        check_results("BINARY 1999", records(p.stdout), 0.001)

        write_float32(base + "_f32", rows)
        p = analyze([base + "_f32.cfg", "--declared-voltage", str(V)])
        check_results("FLOAT32 2013 +1h", records(p.stdout), 0.001)

        write_cff(base + ".cff", rows)
        p = analyze([base + ".cff", "--declared-voltage", str(V), "--what", "event"])
        recs = records(p.stdout)
        check(list(recs) == ["event"] and len(recs["event"]) == 1, ".cff: --what event only")

        # CSV of windows; explicit channel map by number and by id
        p = analyze([base + "_f32.cfg", "--format", "csv", "--channels",
                     "Ua=1,Ub=VB,Uc=3,Ia=4,Ib=5,Ic=IC"])
        lines = p.stdout.splitlines()
        check(lines[0].startswith("t_end,t_end_ns,freq,rocof,flags,Ua_rms"), "CSV header: %s"
              % lines[0])
        check(len(lines) > 60 and all(l.count(",") == lines[0].count(",") for l in lines),
              "CSV rows have the header's columns")

        # errors
        p = analyze([os.path.join(d, "missing.cfg")], rc=1)
        check("missing.cfg" in p.stderr, "missing file named: %s" % p.stderr)
        bad = os.path.join(d, "bad")
        txt = open(base + "_ascii.cfg", newline="").read().replace("2,VB,B,feeder,V,0.001", "2,VB,B,feeder,V,x")
        open(bad + ".cfg", "w", newline="").write(txt)
        os.link(base + "_ascii.dat", bad + ".dat")
        p = analyze([bad + ".cfg"], rc=1)
        check("line 4" in p.stderr, "bad cfg: error names the line: %s" % p.stderr.strip())
        nolf = os.path.join(d, "nolf")
        txt = open(base + "_ascii.cfg", newline="").read().replace("\r\n50\r\n", "\r\n0\r\n")
        check("\r\n0\r\n" in txt, "line frequency removed")
        open(nolf + ".cfg", "w", newline="").write(txt)
        os.link(base + "_ascii.dat", nolf + ".dat")
        p = analyze([nolf + ".cfg"], rc=1)
        check("--nominal-hz" in p.stderr, "no line frequency: asks for --nominal-hz")
        analyze([nolf + ".cfg", "--nominal-hz", "50", "--what", "10s"])
        p = analyze([base + "_ascii.cfg", "--channels", "Xa=1"], rc=2)
        check("unknown name" in p.stderr, "bad channel map: %s" % p.stderr.strip())
        p = analyze([base + "_ascii.cfg", "--channels", "Ua=99"], rc=2)
        check("no analog channel" in p.stderr, "channel out of range: %s" % p.stderr.strip())
        analyze([base + "_ascii.cfg", "--format", "csv", "--what", "window,event"], rc=2)
        analyze(["--help"])
        print("ok: analyze")


if __name__ == "__main__":
    main()
