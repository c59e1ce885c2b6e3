#!/usr/bin/env python3
"""Export of stored data (docs/operations.md "Export", docs/api.md "Export"): the simulator
streams with a scheduled dip; the stored range is exported through `gridsense export` and
through GET /terminals/{id}/export in every COMTRADE file type and revision (cfg+dat, zip, cff),
each read back by an independent Python COMTRADE reader here and by `gridsense analyze`, and
compared sample for sample with what GET /terminals/{id}/waveform returns in raw mode: the
integer formats give the stored counts exactly (x = count, a = the channel's scale, or scale x
ratio on the primary side), float32 within its precision, CSV to its 10 digits. The event
export (--event and /events/{id}/export) covers the dip with the trigger at the event start;
Python's zipfile opens every zip; CSV of measurements has one row per stored interval; the
CLI's errors (unknown terminal, empty range, nothing stored) are clear."""
import calendar
import io
import json
import math
import os
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gslib
from gslib import GRIDSENSE, Server, TempDir, check, run, sim_finish, sim_start, wait_for

VT, CT, UDIN = 100.0, 200.0, 57.735
DIP_AT_S, DIP_MS = 4.0, 200


# ---- an independent COMTRADE reader (C37.111-1999/2013), enough for what we write ----------

def parse_stamp(text):
    d, t = text.strip().split(",")
    dd, mm, yy = (int(x) for x in d.split("/"))
    hh, mi, ss = t.split(":")
    sec, frac = ss.split(".")
    base = calendar.timegm((yy, mm, dd, int(hh), int(mi), int(sec)))
    return base * 10**9 + int(frac.ljust(9, "0"))


def parse_cfg(text):
    lines = text.split("\r\n")
    check(text.endswith("\r\n"), "cfg lines end with CRLF")
    head = lines[0].split(",")
    cfg = {"station": head[0], "rec_dev_id": head[1], "rev": int(head[2])}
    tt = lines[1].split(",")
    na, nd = int(tt[1][:-1]), int(tt[2][:-1])
    check(tt[1].endswith("A") and tt[2].endswith("D") and int(tt[0]) == na + nd, "TT,nA,nD")
    cfg["ch"] = []
    for i in range(na):
        p = lines[2 + i].split(",")
        check(len(p) == 13, "analog channel line has 13 fields: %r" % lines[2 + i])
        cfg["ch"].append({"n": int(p[0]), "id": p[1], "ph": p[2], "ccbm": p[3], "uu": p[4],
                          "a": float(p[5]), "b": float(p[6]), "skew": float(p[7]),
                          "min": float(p[8]), "max": float(p[9]), "primary": float(p[10]),
                          "secondary": float(p[11]), "ps": p[12]})
    k = 2 + na + nd
    cfg["lf"] = float(lines[k])
    nrates = int(lines[k + 1])
    cfg["rates"] = []
    for j in range(max(nrates, 1)):
        s, e = lines[k + 2 + j].split(",")
        cfg["rates"].append((float(s), int(e)))
    cfg["nrates"] = nrates
    k += 2 + max(nrates, 1)
    cfg["start"] = parse_stamp(lines[k])
    cfg["trigger"] = parse_stamp(lines[k + 1])
    cfg["ft"] = lines[k + 2]
    cfg["timemult"] = float(lines[k + 3])
    if cfg["rev"] == 2013:
        cfg["time_code"], cfg["local_code"] = lines[k + 4].split(",")
        tmq, leap = lines[k + 5].split(",")
        cfg["tmq"], cfg["leapsec"] = int(tmq, 16), int(leap)
        k += 2
    check(all(l == "" for l in lines[k + 4:]), "nothing after the last cfg line")
    return cfg


def parse_dat(cfg, dat):
    """[(sample number, timestamp, [x...])]"""
    na, ft, out = len(cfg["ch"]), cfg["ft"], []
    if ft == "ASCII":
        for line in dat.decode().split("\r\n"):
            if line:
                f = line.split(",")
                out.append((int(f[0]), int(f[1]), [int(x) for x in f[2:2 + na]]))
        return out
    code, w = {"BINARY": ("h", 2), "BINARY32": ("i", 4), "FLOAT32": ("f", 4)}[ft]
    rec = struct.Struct("<II" + code * na)
    check(len(dat) % rec.size == 0, "dat is whole records")
    for i in range(len(dat) // rec.size):
        v = rec.unpack_from(dat, i * rec.size)
        out.append((v[0], v[1], list(v[2:])))
    return out


def sample_times(cfg, recs):
    if cfg["nrates"] == 0:
        return [cfg["start"] + round(r[1] * cfg["timemult"] * 1000) for r in recs]
    times, t, n0 = [], cfg["start"], 0
    for samp, end in cfg["rates"]:
        for i in range(end - n0):
            times.append(t + round(i * 1e9 / samp))
        t = times[-1] + round(1e9 / samp)
        n0 = end
    return times


def parse_cff(data):
    parts, pos = {}, 0
    while pos < len(data):
        nl = data.index(b"\r\n", pos)
        head = data[pos:nl].decode()
        check(head.startswith("--- file type: ") and head.endswith(" ---"), "cff header %r" % head)
        kind = head[len("--- file type: "):-4]
        pos = nl + 2
        if kind.startswith("DAT BINARY: "):
            n = int(kind.split(": ")[1])
            parts["DAT"] = data[pos:pos + n]
            pos += n
            continue
        nxt = data.find(b"\r\n--- file type: ", pos - 2)
        end = len(data) if nxt < 0 else nxt + 2
        parts[kind.split(" ")[0]] = data[pos:end]
        pos = end
    check(list(parts)[:3] == ["CFG", "INF", "HDR"], "cff sections in order CFG, INF, HDR, DAT")
    return parts["CFG"].decode(), parts["DAT"]


# ---- helpers ---------------------------------------------------------------------------------

def http_get(srv, path, token):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (srv.hport, path),
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            st, ct, body, cd = r.status, r.headers.get("Content-Type"), r.read(), \
                r.headers.get("Content-Disposition")
    except urllib.error.HTTPError as e:
        st, ct, body, cd = e.code, e.headers.get("Content-Type"), e.read(), None
    text = body.decode() if ct and ct.startswith("application/json") else "(%d bytes)" % len(body)
    gslib._record("GET", path, st, ct, text, None)
    return st, ct, body, cd


def check_against(label, cfg, recs, want, side, exact):
    """want: [(t_ns, [counts])]; side 'primary'|'secondary'."""
    check(len(recs) == len(want), "%s: %d samples, the waveform API has %d"
          % (label, len(recs), len(want)))
    check([r[0] for r in recs] == list(range(1, len(recs) + 1)), "%s: sample numbers 1..N" % label)
    times = sample_times(cfg, recs)
    worst = max(abs(t - w[0]) for t, w in zip(times, want))
    check(worst <= 1000, "%s: sample times agree within 1 µs (worst %d ns)" % (label, worst))
    for c, ch in enumerate(cfg["ch"]):
        ratio = ch["primary"] / ch["secondary"]
        check(ch["ps"] == ("P" if side == "primary" else "S"), "%s: PS flag" % label)
        lsb = SCALES[c] * (ratio if side == "primary" else 1)
        xs = [r[2][c] for r in recs]
        if exact:
            check(abs(ch["a"] / lsb - 1) < 1e-6 and ch["b"] == 0,
                  "%s %s: a = one count (%g vs %g)" % (label, ch["id"], ch["a"], lsb))
            bad = [i for i, (x, w) in enumerate(zip(xs, want)) if x != w[1][c]]
            check(not bad, "%s %s: every sample is the stored count (first mismatch at %s)"
                  % (label, ch["id"], bad[:1]))
            check(ch["min"] == min(xs) and ch["max"] == max(xs), "%s: min/max" % label)
        else:
            bad = [i for i, (x, w) in enumerate(zip(xs, want))
                   if round((ch["a"] * x + ch["b"]) / lsb) != w[1][c]]
            check(not bad, "%s %s: every float32 value is count x a (first mismatch at %s)"
                  % (label, ch["id"], bad[:1]))


def analyze_ok(path, extra=()):
    p = subprocess.run([GRIDSENSE, "analyze", path] + list(extra), capture_output=True,
                       text=True, timeout=120)
    check(p.returncode == 0, "gridsense analyze %s: exit %d: %s"
          % (os.path.basename(path), p.returncode, p.stderr[-300:]))
    kinds = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        kinds.setdefault(r["type"], []).append(r["data"])
    check(kinds.get("window"), "gridsense analyze %s: analysis windows" % os.path.basename(path))
    return kinds


SCALES = []


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "1", "--prefix", "X", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", str(UDIN), "--vt-ratio", str(VT),
             "--ct-ratio", str(CT)])
        srv = Server(data, extra=["--dsp-workers", "1"]).start()
        viewer = srv.make_token("exp-viewer", "viewer")
        p = sim_start(srv.tport, secrets, 1, 8,
                      ["--disturb", "0", "--schedule", "dip@%g+%d:40/1" % (DIP_AT_S, DIP_MS)])
        rc, summary, err = sim_finish(p, timeout=120)
        check(rc == 0 and summary, "simulator finished: %s" % err[-300:])
        t0 = summary["start_ns"]

        def event():
            st, j = srv.json("/api/v1/terminals/X0001/events")
            return st == 200 and j["events"] and j["events"][0]
        ev = wait_for(event, 60, "the dip stored as an event")
        frm, to = t0 + 2 * 10**9, t0 + 5 * 10**9

        # what the waveform API gives: raw counts = value / lsb on the secondary side
        st, w = srv.json("/api/v1/terminals/X0001/waveform?from=%d&to=%d&side=secondary"
                         "&max_points=100000" % (frm, to))
        check(st == 200 and w["mode"] == "raw" and len(w["segments"]) == 1,
              "waveform API: one raw segment (%s, %d segments)" % (w.get("mode"),
                                                                   len(w.get("segments", []))))
        seg = w["segments"][0]
        names = [c["name"] for c in seg["channels"]]
        check(names == ["Ua", "Ub", "Uc", "Ia", "Ib", "Ic"], "channels %s" % names)
        SCALES[:] = [c["lsb"] for c in seg["channels"]]
        n = seg["n"]
        want = [(seg["t0_ns"] + i * 10**9 // seg["sample_rate"],
                 [round(seg["samples"][nm][i] / SCALES[c]) for c, nm in enumerate(names)])
                for i in range(n)]
        check(n == 12000, "3 s at 4 kS/s in the API (%d)" % n)

        out = os.path.join(d, "out")
        os.makedirs(out)
        combos = [("binary", "2013"), ("binary", "1999"), ("ascii", "2013"), ("ascii", "1999"),
                  ("binary32", "2013"), ("float32", "2013")]
        # ---- CLI: cfg + dat (+ hdr), secondary side, every file type and revision
        for fmt, rev in combos:
            sub = os.path.join(out, "cli-%s-%s" % (fmt, rev))
            os.makedirs(sub)
            p = run([GRIDSENSE, "export", "comtrade", "X0001", "--from", str(frm), "--to",
                     str(to), "--out", sub, "--format", fmt, "--revision", rev, "--side",
                     "secondary"] + srv.cli_args())
            check("wrote" in p.stderr and "12000 sample sets" in p.stderr,
                  "CLI summary: %s" % p.stderr.strip())
            files = sorted(os.listdir(sub))
            check(len(files) == 3 and files[0].endswith(".cfg") and files[1].endswith(".dat")
                  and files[2].endswith(".hdr"), "cfg, dat and hdr written: %s" % files)
            cfg = parse_cfg(open(os.path.join(sub, files[0]), newline="").read())
            check(cfg["rev"] == int(rev) and cfg["ft"] == fmt.upper() and cfg["nrates"] == 1
                  and cfg["rates"] == [(4000.0, 12000)], "%s %s: header lines" % (fmt, rev))
            check(cfg["station"] and cfg["rec_dev_id"] == "X0001", "station and device ids")
            check([c["uu"] for c in cfg["ch"]] == ["V"] * 3 + ["A"] * 3 and
                  [c["ph"] for c in cfg["ch"]] == ["A", "B", "C"] * 2, "units and phases")
            check([c["primary"] for c in cfg["ch"]] == [VT] * 3 + [CT] * 3, "ratios")
            if rev == "2013":
                check(cfg["time_code"] == "0" and cfg["local_code"] == "x" and cfg["tmq"] in
                      (0, 9, 15) and cfg["leapsec"] == 3, "2013 time codes: tmq %X leapsec %d" % (cfg["tmq"], cfg["leapsec"]))
            recs = parse_dat(cfg, open(os.path.join(sub, files[1]), "rb").read())
            check_against("CLI %s %s" % (fmt, rev), cfg, recs, want, "secondary",
                          fmt != "float32")
            analyze_ok(os.path.join(sub, files[0]))

        # ---- HTTP: zip (and cff for 2013), primary and secondary
        for fmt, rev in combos:
            for container in (["zip", "cff"] if rev == "2013" else ["zip"]):
                side = "primary" if fmt in ("binary", "float32") else "secondary"
                path = ("/api/v1/terminals/X0001/export?format=comtrade&from=%d&to=%d&dat=%s"
                        "&revision=%s&side=%s&container=%s" % (frm, to, fmt, rev, side, container))
                st, ct, body, cd = http_get(srv, path, viewer)
                check(st == 200, "HTTP export %s: %d %s" % (path, st, body[:200] if st != 200 else ""))
                check(cd and cd.startswith("attachment; filename=\"X0001_") and
                      cd.endswith('.%s"' % container), "Content-Disposition %s" % cd)
                label = "HTTP %s %s %s" % (fmt, rev, container)
                if container == "zip":
                    check(ct == "application/zip", "zip content type")
                    z = zipfile.ZipFile(io.BytesIO(body))
                    check(z.testzip() is None, "%s: CRCs" % label)
                    nm = z.namelist()
                    check(len(nm) == 3 and nm[0].endswith(".dat") and nm[1].endswith(".cfg"),
                          "%s: members %s" % (label, nm))
                    cfg_text, dat = z.read(nm[1]).decode(), z.read(nm[0])
                    base = os.path.join(out, "http-%s-%s" % (fmt, rev))
                    os.makedirs(base)
                    z.extractall(base)
                    analyze_ok(os.path.join(base, nm[1]))
                else:
                    cfg_text, dat = parse_cff(body)
                    cff = os.path.join(out, "http-%s-%s.cff" % (fmt, rev))
                    open(cff, "wb").write(body)
                    analyze_ok(cff)
                cfg = parse_cfg(cfg_text)
                check_against(label, cfg, parse_dat(cfg, dat), want, side, fmt != "float32")

        # ---- the event: CLI --event and /events/{id}/export, trigger at the event start
        sub = os.path.join(out, "event")
        os.makedirs(sub)
        run([GRIDSENSE, "export", "comtrade", "X0001", "--event", str(ev["id"]), "--pre", "1",
             "--post", "1", "--out", sub] + srv.cli_args())
        cfgp = [f for f in os.listdir(sub) if f.endswith(".cfg")][0]
        cfg = parse_cfg(open(os.path.join(sub, cfgp), newline="").read())
        ev_start = ev["start_ns"]
        check(abs(cfg["trigger"] - ev_start) < 1000, "event export: trigger time = event start")
        recs = parse_dat(cfg, open(os.path.join(sub, cfgp[:-4] + ".dat"), "rb").read())
        times = sample_times(cfg, recs)
        check(times[0] >= ev_start - 10**9 - 10**6 and times[-1] >= ev_start + DIP_MS * 10**6,
              "event export covers 1 s before to after the dip")
        kinds = analyze_ok(os.path.join(sub, cfgp), ["--declared-voltage", str(UDIN * VT)])
        dips = [e for e in kinds.get("event", []) if e.get("kind") == "dip"]
        check(len(dips) == 1, "gridsense analyze finds the dip in the event export: %s"
              % kinds.get("event"))
        st, ct, body, cd = http_get(srv, "/api/v1/events/%d/export?format=comtrade&container=cff"
                                    "&pre=1&post=1" % ev["id"], viewer)
        check(st == 200, "event export over HTTP: %d" % st)
        cfg_text, dat = parse_cff(body)
        cfg2 = parse_cfg(cfg_text)
        check(cfg2["trigger"] == cfg["trigger"] and len(parse_dat(cfg2, dat)) == len(recs),
              "the HTTP event export is the CLI's record")

        # ---- CSV: waveform (CLI, HTTP) and measurements
        csvp = os.path.join(out, "w.csv")
        run([GRIDSENSE, "export", "csv", "X0001", "--from", str(frm), "--to", str(to), "--side",
             "secondary", "--out", csvp] + srv.cli_args())
        rows = open(csvp).read().split("\n")
        check(rows[0].strip() == "time,Ua [V],Ub [V],Uc [V],Ia [A],Ib [A],Ic [A]",
              "CSV header: %s" % rows[0])
        rows = [r.strip().split(",") for r in rows[1:] if r.strip()]
        check(len(rows) == n, "CSV: one row per sample set (%d)" % len(rows))
        bad = [i for i, r in enumerate(rows)
               if [round(float(v) / SCALES[c]) for c, v in enumerate(r[1:])] != want[i][1]]
        check(not bad, "CSV values are the stored counts x scale (first mismatch %s)" % bad[:1])
        st, ct, body, cd = http_get(srv, "/api/v1/terminals/X0001/export?format=csv&from=%d&to=%d"
                                    "&side=secondary" % (frm, to), viewer)
        check(st == 200 and ct.startswith("text/csv") and body.decode() == open(csvp, newline="").read(),
              "HTTP CSV is the CLI's CSV")
        st, j = srv.json("/api/v1/terminals/X0001/measurements?interval=3s&limit=10000")
        p = run([GRIDSENSE, "export", "csv", "X0001", "--from", "0", "--to", str(to + 60 * 10**9),
                 "--what", "measurements", "--interval", "3s"] + srv.cli_args())
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
        check(lines[0].startswith("t_start,t_end,interval,count,") and "Ua.rms" in lines[0],
              "measurements CSV header: %s" % lines[0][:120])
        check(len(lines) - 1 == len(j["measurements"]),
              "one CSV row per stored 3 s value (%d vs %d)" % (len(lines) - 1,
                                                               len(j["measurements"])))

        # ---- errors
        p = run([GRIDSENSE, "export", "comtrade", "NOPE", "--from", str(frm), "--to", str(to)]
                + srv.cli_args(), check_rc=False)
        check(p.returncode == 1 and "no such terminal" in p.stderr, "unknown terminal: %s"
              % p.stderr)
        p = run([GRIDSENSE, "export", "comtrade", "X0001", "--from", str(to), "--to", str(frm)]
                + srv.cli_args(), check_rc=False)
        check(p.returncode == 2 and "empty" in p.stderr, "empty range: %s" % p.stderr)
        p = run([GRIDSENSE, "export", "comtrade", "X0001", "--from", "0", "--to", "1000"]
                + srv.cli_args(), check_rc=False)
        check(p.returncode == 1 and "nothing stored" in p.stderr, "nothing stored: %s" % p.stderr)
        p = run([GRIDSENSE, "export", "comtrade", "X0001", "--from", str(frm), "--to", str(to),
                 "--format", "float32", "--revision", "1999"] + srv.cli_args(), check_rc=False)
        check(p.returncode == 1 and "2013" in p.stderr, "float32 with 1999 refused: %s" % p.stderr)
        for q, code in (("format=comtrade&from=0&to=1000", 404), ("format=pdf&from=0&to=1", 400),
                        ("from=%d&to=%d" % (to, frm), 400), ("from=0&to=%d" % to, 400)):
            st, ct, body, cd = http_get(srv, "/api/v1/terminals/X0001/export?" + q, viewer)
            check(st == code and ct.startswith("application/json"), "%s: %d (want %d)"
                  % (q, st, code))
        st, ct, body, cd = http_get(srv, "/api/v1/terminals/NOPE/export?from=0&to=1", viewer)
        check(st == 404, "unknown terminal over HTTP: %d" % st)
        check(srv.stop() == 0, "server stopped cleanly")
    print("ok: export")


if __name__ == "__main__":
    main()
