"""integ.mms_files: the MMS server's disturbance records (docs/iec61850.md "Files") with the
project's MMS client (build/mms_client) against `gridsense serve --mms` while the simulator
streams one terminal (id with '-') with two scheduled dips:

- the Initiate response announces fileOpen, fileRead, fileClose and fileDirectory;
- FileDirectory of the top lists one directory per LD with records (the LD's domain name);
  the LD's directory lists, for each stored event, BASE.cfg/.dat/.hdr with BASE =
  YYYYMMDD_HHMMSS_mmm_E<id>_<kind> (the event's UTC start), sizes > 0 and a lastModified;
- the .cfg and .dat downloaded (FileOpen/FileRead/FileClose) have the listed sizes, are byte for
  byte the record `gridsense export comtrade ID --event EVENT` writes, read back (an independent
  COMTRADE reader, test_export.py's) agree sample for sample with GET .../waveform in raw mode
  for the same window (start - 0.5 s .. end + 1 s, trigger = the event start), and
  `gridsense analyze` finds the dip in them;
- a file that does not exist: file-non-existent (confirmed-Error class file, code 7); a
  directory that does not exist too;
- the listing paged with a small --max-pdu has several pages and the same entries;
- after a restart, the startup pass renders the stored events again: the same names, sizes and
  bytes;
- with `[mms] files_max_mb = 0` the file services are neither announced nor served (Reject)."""

import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (BUILD, GRIDSENSE, Server, TempDir, check, fail, run, sim_finish,  # noqa
                   mms_client, mms_line, sim_start, wait_for)
from test_export import parse_cfg, parse_dat, sample_times  # noqa: E402

CLIENT = os.path.join(BUILD, "mms_client")
UDIN = 57.735
TID = "F-0001"
DOM = "GRIDSENSEF_M0001"
DIPS = [(2.0, 200, 40.0), (5.0, 150, 60.0)]


def mms(srv, args, stdin=None, want=(0,), max_pdu=None):
    return mms_client(srv.mport, args, stdin, want=want, max_pdu=max_pdu)


one = mms_line


def non_existent(err, lines):
    """confirmed-Error class file (11), code file-non-existent (7): ISO 9506-2 7.4.1.3"""
    return "class file, code 7" in err or "file-non-existent" in err + json.dumps(lines)


def basename(ev):
    s, ns = divmod(ev["start_ns"], 10**9)
    t = datetime.datetime.fromtimestamp(s, datetime.timezone.utc)
    return "%s_%03d_E%d_%s" % (t.strftime("%Y%m%d_%H%M%S"), ns // 10**6, ev["id"], ev["kind"])


def listing(srv, d, max_pdu=None):
    return one(mms(srv, ["files", d], max_pdu=max_pdu)[1], "files")


def download(srv, remote, local):
    _, lines, err = mms(srv, ["get-file", remote, local])
    return one(lines, "get-file")


def check_record(srv, d, dl, ev, sizes):
    """Downloads the event's record and checks it against the CLI export, the waveform API
    and gridsense analyze; returns {ext: bytes}."""
    base = DOM + "/" + basename(ev)
    got = {}
    for ext in (".cfg", ".dat", ".hdr"):
        local = os.path.join(dl, basename(ev) + ext)
        g = download(srv, base + ext, local)
        got[ext] = open(local, "rb").read()
        check(g.get("bytes") == len(got[ext]) == sizes[base + ext],
              "%s downloaded: %d bytes = the listed size %d (%d reads)"
              % (ext, len(got[ext]), sizes[base + ext], g.get("reads", 0)))
    cli = os.path.join(d, "cli-%d" % ev["id"])
    os.makedirs(cli)
    run([GRIDSENSE, "export", "comtrade", TID, "--event", str(ev["id"]), "--out", cli]
        + srv.cli_args())
    cc = [f for f in os.listdir(cli) if f.endswith(".cfg")]
    check(len(cc) == 1, "CLI event export wrote a .cfg: %s" % os.listdir(cli))
    ccfg = open(os.path.join(cli, cc[0]), "rb").read()
    cdat = open(os.path.join(cli, cc[0][:-4] + ".dat"), "rb").read()
    check(got[".cfg"] == ccfg and got[".dat"] == cdat,
          "the MMS record is byte for byte `gridsense export comtrade --event %d` "
          "(cfg %d, dat %d bytes)" % (ev["id"], len(ccfg), len(cdat)))
    check(b"event: %d" % ev["id"] in got[".hdr"], "the .hdr names the event")

    cfg = parse_cfg(got[".cfg"].decode())
    recs = parse_dat(cfg, got[".dat"])
    check(abs(cfg["trigger"] - ev["start_ns"]) < 1000, "trigger = the event start")
    times = sample_times(cfg, recs)
    period = 10**9 / cfg["rates"][0][0]
    # the window: the event's start - 0.5 s to its end + 1 s, the whole of it (rendered once
    # the post-window was stored); duration_s has µs precision
    frm = ev["start_ns"] - 500 * 10**6
    to = ev["start_ns"] + round(ev["duration_s"] * 1e9) + 10**9
    check(frm - 1000 <= times[0] < frm + period + 1000 and to - period - 2000 <= times[-1] < to + 2000,
          "E%d: the record spans start - 0.5 s .. end + 1 s (first %+d ns, last %+d ns)"
          % (ev["id"], times[0] - frm, times[-1] - to))
    # the waveform API over the record's own sample range: the same samples
    st, w = srv.json("/api/v1/terminals/%s/waveform?from=%d&to=%d&side=secondary"
                     "&max_points=100000" % (TID, times[0], times[-1] + 1))
    check(st == 200 and w["mode"] == "raw" and len(w["segments"]) == 1,
          "waveform API: one raw segment (%s)" % w.get("mode"))
    seg = w["segments"][0]
    names = [c["name"] for c in seg["channels"]]
    lsb = [c["lsb"] for c in seg["channels"]]
    n = seg["n"]
    check(len(recs) == n and n > 0, "%d samples, the waveform API has %d" % (len(recs), n))
    worst = max(abs(t - (seg["t0_ns"] + i * 10**9 // seg["sample_rate"]))
                for i, t in enumerate(times))
    check(worst <= 1000, "sample times agree within 1 us (worst %d ns)" % worst)
    check([c["id"] for c in cfg["ch"]] == names,
          "channels: %s vs %s" % ([c["id"] for c in cfg["ch"]], names))
    for c, nm in enumerate(names):
        api = [round(seg["samples"][nm][i] / lsb[c]) for i in range(n)]
        xs = [r[2][c] for r in recs]
        bad = [i for i, (x, y) in enumerate(zip(xs, api)) if x != y]
        check(not bad, "%s: every sample is the API's stored count (first mismatch %s)"
              % (nm, bad[:1]))
    cfgp = os.path.join(dl, basename(ev) + ".cfg")
    pa = subprocess.run([GRIDSENSE, "analyze", cfgp, "--what", "event",
                         "--declared-voltage", str(UDIN)], capture_output=True,
                        text=True, timeout=120)
    check(pa.returncode == 0, "gridsense analyze: %s" % pa.stderr[-300:])
    found = [json.loads(l) for l in pa.stdout.splitlines() if l.startswith("{")]
    dips = [e for e in found if e.get("type") == "event" and
            e.get("data", {}).get("kind") == "dip"]
    check(len(dips) == 1, "gridsense analyze finds the dip in the downloaded record: %s"
          % [e.get("data", {}).get("kind") for e in found if e.get("type") == "event"])

    return got


def main():
    if not os.path.exists(CLIENT):
        fail("%s not built" % CLIENT)
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "1", "--prefix", "F-", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", str(UDIN)])
        srv = Server(data, mms=True).start()
        try:
            check(srv.mport, "the server has an MMS port")
            # an empty server: the top directory is empty, an LD's directory does not exist
            top = listing(srv, '""')
            check(top["entries"] == [], "no record yet: the top directory is empty (%s)" % top)
            rc, lines, err = mms(srv, ["files", DOM], want=(3,))
            check(non_existent(err, lines),
                  "a directory without records: file-non-existent (%s)" % err.strip())
            _, lines, _ = mms(srv, ["identify"])
            svc = bytes.fromhex(one(lines, "associate")["services"])
            check(len(svc) > 9 and svc[9] & 0xE4 == 0xE4,
                  "Initiate response announces fileOpen/Read/Close/Directory (octet 9: %02x)"
                  % (svc[9] if len(svc) > 9 else 0))

            sched = []
            for at, ms, lvl in DIPS:
                sched += ["--schedule", "dip@%g+%d:%g" % (at, ms, lvl)]
            p = sim_start(srv.tport, secrets, 1, 8, ["--disturb", "0"] + sched)
            rc, summary, err = sim_finish(p, timeout=120)
            check(rc == 0, "simulator finished: %s" % err[-300:])

            def events():
                st, j = srv.json("/api/v1/terminals/%s/events" % TID)
                evs = [e for e in j.get("events", []) if e["kind"] == "dip"]
                return len(evs) == len(DIPS) and evs
            evs = sorted(wait_for(events, 60, "both dips stored"), key=lambda e: e["start_ns"])
            want = {}
            for ev in evs:
                b = basename(ev)
                for ext in (".cfg", ".dat", ".hdr"):
                    want[DOM + "/" + b + ext] = ev

            def records():
                ls = listing(srv, DOM) if DOM in [e["name"] for e in listing(srv, '""')
                                                  ["entries"]] else None
                return ls and set(e["name"] for e in ls["entries"]) == set(want) and ls
            ls = wait_for(records, 60, "the LD's directory lists both events' records")
            top = listing(srv, '""')
            check([e["name"] for e in top["entries"]] == [DOM],
                  "top directory: one directory per LD with records: %s" % top["entries"])
            ents = ls["entries"]
            check([e["name"] for e in ents] == sorted(want),
                  "entries in name order (time order): %s" % [e["name"] for e in ents])
            check(all(e["size"] > 0 and e.get("mtime") for e in ents),
                  "every file has a size and a lastModified: %s" % ents[:3])
            sizes = {e["name"]: e["size"] for e in ents}

            dl = os.path.join(d, "dl")
            os.makedirs(dl)
            recs_got = {}
            for ev in evs:
                recs_got[ev["id"]] = check_record(srv, d, dl, ev, sizes)
            ev = evs[0]
            got = recs_got[ev["id"]]
            base = DOM + "/" + basename(ev)

            # missing files
            rc, lines, err = mms(srv, ["get-file", base + "x.cfg", os.path.join(dl, "x")],
                                 want=(3,))
            check(non_existent(err, lines),
                  "a missing file: file-non-existent (%s)" % err.strip())
            rc, lines, err = mms(srv, ["files", "NOSUCHLD"], want=(3,))
            check(non_existent(err, lines),
                  "a missing directory: file-non-existent (%s)" % err.strip())

            # paging with a small PDU: the same entries over several pages
            small = listing(srv, DOM, max_pdu=300)
            check(small["pages"] > 1 and small["entries"] == ents,
                  "listing with --max-pdu 300: %d pages, the same %d entries"
                  % (small["pages"], len(small["entries"])))
        finally:
            srv.stop()

        # a restart: the startup pass renders the stored events' records again
        srv = Server(data, mms=True).start()
        try:
            ls2 = wait_for(lambda: DOM in [e["name"] for e in
                                           listing(srv, '""')["entries"]] and
                           len(listing(srv, DOM)["entries"]) == len(want) and listing(srv, DOM),
                           60, "the records after a restart")
            check({e["name"]: e["size"] for e in ls2["entries"]} == sizes,
                  "after a restart: the same names and sizes")
            local = os.path.join(dl, "again.dat")
            download(srv, base + ".dat", local)
            check(open(local, "rb").read() == got[".dat"], "after a restart: the same .dat bytes")
        finally:
            srv.stop()

        # [mms] files_max_mb = 0: no file services, not announced
        conf = os.path.join(d, "gridsense.conf")
        with open(conf, "w") as f:
            f.write("[mms]\nfiles_max_mb = 0\n")
        os.chmod(conf, 0o600)
        srv = Server(data, mms=True, extra=["--config", conf]).start()
        try:
            _, lines, _ = mms(srv, ["identify"])
            svc = bytes.fromhex(one(lines, "associate")["services"])
            check(len(svc) > 9 and svc[9] & 0xE4 == 0,
                  "files_max_mb = 0: file services not announced (octet 9: %02x)" % svc[9])
            rc, lines, err = mms(srv, ["files", '""'], want=(3,))
            check("reject" in (err + json.dumps(lines)).lower(),
                  "files_max_mb = 0: FileDirectory rejected (%s)" % err.strip())
        finally:
            srv.stop()
    print("PASS")


if __name__ == "__main__":
    main()
