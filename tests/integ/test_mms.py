"""integ.mms: the IEC 61850 / MMS server end to end, with the project's own MMS client
(build/mms_client, tests/integ/mms_client.c on our codecs) against the real `gridsense serve
--mms` while the simulator streams two terminals (one id with '-', mapped as docs/iec61850.md
says) with a scheduled dip:

- associate without a password; Identify; GetNameList of the domains = one LD per terminal;
- browse every LD and every LN: GetNameList of each LD (all pages), GetVariableAccessAttributes
  of each LN, every listed name is a path of its LN's type tree, and a Read of each whole LN
  answers a value of exactly that shape (no DataAccessError);
- MMXU1 values equal GET /api/v1/terminals/{id}/latest for the same analysis window (matched by
  the value's UtcTime = the window's t_ref_ns): PhV.phsA magnitude, Hz, with good quality;
- QVVR1 shows the scheduled dip the server stored (when the model has QVVR1), and a URCB on
  LLN0's events data set, enabled before the dip, reports it (data-change of QVVR1);
- Write outside RCBs refused (object-access-denied), unknown names object-non-existent;
- LLN0's static datasets (listed, their members, read as lists) and a dynamic named variable
  list defined, read and deleted: run when offered, else SKIP with the server's answer;
- reports (URCB/BRCB: GI and integrity/data-change reports while the simulator streams; a BRCB
  left enabled by a client that vanished keeps buffering: after a reconnect with the last
  EntryID seen, the entries made meanwhile arrive, SeqNum continuing) and file services (an event's COMTRADE downloaded and read back with
  `gridsense analyze`): run when the server offers them; when it answers that the service or
  object does not exist the test prints SKIP with the server's answer (never a pass);
- once the simulator stops, the terminal's values read questionable + oldData;
- conclude and abort end associations (the server keeps serving);
- then with `[mms] password_file`: no password and a wrong one are refused (exit 2, said so),
  the right one associates.
Exit 77 (ctest: skipped) when this build's server has no MMS port."""

import inspect
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (BUILD, GRIDSENSE, Server, TempDir, check, fail, run, sim_start,  # noqa
                   mms_client, mms_line, wait_for)

CLIENT = os.path.join(BUILD, "mms_client")
UDIN = 57.735
DIP_AT_S, DIP_MS, DIP_LEVEL = 8.0, 200, 60.0
SIM_S = 120  # an upper bound: the test stops the simulator itself once it has what it needs
SKIPPED = []


def skip(what, why):
    SKIPPED.append(what)
    print("SKIP: %s: %s" % (what, why))


def mms(srv, args, stdin=None, password=None, want=(0,), timeout=60, port=None):
    return mms_client(port or srv.mport, args, stdin, password, want, timeout)


one = mms_line


def domain_of(term_id, ied="GRIDSENSE"):
    """docs/iec61850.md "Names": letters and digits stay, '-' -> _M, '.' -> _D."""
    return ied + term_id.replace("-", "_M").replace(".", "_D")


def zip_type(t, v, path):
    """The value v (read output) laid on the type tree t: a dict by component name; fails on
    any shape mismatch (GetVariableAccessAttributes and Read must agree)."""
    if isinstance(t, dict) and "struct" in t:
        comps = list(t["struct"].items())
        if not isinstance(v, list) or len(v) != len(comps):
            fail("%s: value %r does not have the %d components of its type" %
                 (path, str(v)[:200], len(comps)))
        return {k: zip_type(ct, cv, path + "$" + k) for (k, ct), cv in zip(comps, v)}
    if isinstance(t, dict) and "array" in t:
        if not isinstance(v, list) or len(v) != t["array"]:
            fail("%s: array value of %s elements, type says %d" % (path, len(v), t["array"]))
        return [zip_type(t["of"], x, path) for x in v]
    kind = t
    ok = (kind == "boolean" and isinstance(v, bool)) or \
         (kind.startswith(("int", "uint")) and isinstance(v, int) and not isinstance(v, bool)) or \
         (kind.startswith("float") and isinstance(v, float)) or \
         (kind.startswith("bitstring") and isinstance(v, dict) and "bits" in v) or \
         (kind.startswith(("vstring", "mmsstring")) and isinstance(v, str)) or \
         (kind.startswith("octets") and isinstance(v, dict) and "octets" in v) or \
         (kind == "utctime" and isinstance(v, dict) and "utc" in v) or \
         (kind.startswith("btime") and isinstance(v, dict))
    if not ok:
        fail("%s: value %r is not a %s" % (path, v, kind))
    return v


def has_path(t, comps):
    for c in comps:
        if isinstance(t, dict) and "array" in t:
            t = t["of"]
        if not (isinstance(t, dict) and "struct" in t and c in t["struct"]):
            return False
        t = t["struct"][c]
    return True


def qbit(q, i):
    """Bit i of a 13-bit quality (IEC 61850-8-1 8.1.3.4: validity 0-1, ..., oldData 7)."""
    b = bytes.fromhex(q["bits"])
    return bool(b[i // 8] & (0x80 >> (i % 8)))


def validity(q):
    return {(False, False): "good", (False, True): "invalid", (True, True): "questionable",
            (True, False): "reserved"}[(qbit(q, 0), qbit(q, 1))]


def browse(srv, doms):
    """Every LD, every LN: names, types, whole-LN reads. Returns {dom: {ln: type}}."""
    model = {}
    for dom in doms:
        _, lines, _ = mms(srv, ["names", dom])
        names = one(lines, "names")["names"]
        lns = [n for n in names if "$" not in n]
        check(len(names) == one(lines, "names")["count"] and len(set(names)) == len(names),
              "%s: %d variable names over %d page(s), no duplicates" %
              (dom, len(names), one(lines, "names")["pages"]))
        batch = "".join("attrs %s %s\nread %s %s\n" % (dom, ln, dom, ln) for ln in lns)
        _, lines, _ = mms(srv, ["batch"], batch)
        types = {l["item"]: l["type"] for l in lines if l.get("cmd") == "attrs"}
        reads = [l for l in lines if l.get("cmd") == "read"]
        check(set(types) == set(lns) and len(reads) == len(lns),
              "%s: GetVariableAccessAttributes and Read of all %d LNs: %s" %
              (dom, len(lns), " ".join(lns)))
        for r in reads:
            res = r["results"][0]
            if "error" in res:
                fail("%s: Read of the whole LN %s: %s" % (dom, res["item"], res["error"]))
            zip_type(types[res["item"]], res["value"], dom + "/" + res["item"])
        missing = [n for n in names if "$" in n and
                   not has_path(types[n.split("$")[0]], n.split("$")[1:])]
        check(not missing, "%s: every GetNameList name is a path of its LN's type "
              "(%d names; missing: %s)" % (dom, len(names), missing[:5]))
        check({"LLN0", "LPHD1", "MMXU1"} <= set(lns), "%s: LLN0, LPHD1 and MMXU1 present" % dom)
        # the same names through 1000-octet PDUs: paging with continueAfter
        _, lines, _ = mms(srv, ["--max-pdu", "1000", "names", dom])
        small = one(lines, "names")
        check(small["names"] == names and small["pages"] > 1 and
              one(lines, "associate")["max_pdu"] <= 1000,
              "%s: at a 1000-octet PDU the same %d names over %d pages" %
              (dom, len(names), small["pages"]))
        model[dom] = {"types": types, "names": names}
    return model


def mmxu_vs_api(srv, dom, tid, types):
    """MMXU1$MX read over MMS, latest values over HTTP, matched on the window time."""
    t = types["MMXU1"]["struct"]["MX"]
    for attempt in range(30):
        code, l1 = srv.json("/api/v1/terminals/%s/latest" % tid)
        _, lines, _ = mms(srv, ["read", dom, "MMXU1$MX"])
        code2, l2 = srv.json("/api/v1/terminals/%s/latest" % tid)
        res = one(lines, "read")["results"][0]
        if "error" in res:
            fail("read MMXU1$MX: %s" % res["error"])
        mx = zip_type(t, res["value"], dom + "/MMXU1$MX")
        pha = mx["PhV"]["phsA"]
        tns = pha["t"]["ns"]
        for lat in (l1, l2):
            if code == 200 and lat and abs(lat["t_ref_ns"] - tns) < 1000:
                chans = {c["name"]: c for c in lat["channels"]}
                mag = pha["cVal"]["mag"]["f"]
                want = chans["Ua"]["rms"]
                check(abs(mag - want) <= 1e-6 * abs(want) + 1e-4,
                      "%s MMXU1.PhV.phsA = %.6f = API Ua rms %.6f (window t_ref %d, attempt %d)"
                      % (tid, mag, want, tns, attempt + 1))
                pairs = [("PhV", "phs" + ph, "U" + ph.lower()) for ph in "ABC"] + \
                        [("A", "phs" + ph, "I" + ph.lower()) for ph in "ABC"]
                n = 0
                for do, phs, ch in pairs:
                    if ch in chans and do in mx and phs in mx[do]:
                        v = mx[do][phs]["cVal"]["mag"]["f"]
                        w = chans[ch]["rms"]
                        if abs(v - w) > 1e-6 * abs(w) + 1e-4 or mx[do][phs]["t"]["ns"] != tns:
                            fail("%s MMXU1.%s.%s = %r, API %s rms %r (same window)" %
                                 (tid, do, phs, v, ch, w))
                        n += 1
                pw = lat.get("power")
                if pw:
                    for do, key in (("TotW", "p"), ("TotVAr", "q"), ("TotVA", "s_eff"),
                                    ("TotPF", "pf")):
                        v = mx[do]["mag"]["f"]
                        if abs(v - pw[key]) > 1e-6 * abs(pw[key]) + 1e-4:
                            fail("%s MMXU1.%s = %r, API power.%s %r" % (tid, do, v, key, pw[key]))
                        n += 1
                check(n >= 3, "%s: %d more MMXU1 values equal the API's for that window "
                      "(phase voltages/currents, total powers)" % (tid, n))
                hz = mx["Hz"]["mag"]["f"]
                check(abs(hz - lat["freq"]) <= 1e-6 * lat["freq"] + 1e-5,
                      "%s MMXU1.Hz = %.6f = API freq %.6f" % (tid, hz, lat["freq"]))
                check(validity(pha["q"]) == "good" and not qbit(pha["q"], 7),
                      "%s PhV.phsA quality good while online: %r" % (tid, pha["q"]))
                tq = pha["t"]["tq"]
                check(not tq["clock_failure"], "%s t: no ClockFailure; time quality %r" %
                      (tid, tq))
                return mx
        time.sleep(0.2)
    fail("%s: no MMS read of MMXU1 fell on a window the API served before or after it" % tid)


def iso_ns(s):
    """'2026-12-06T02:14:09.191000Z' -> ns since 1970 (UTC)."""
    import calendar
    day, frac = s.rstrip("Z").split(".")
    t = calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S"))
    return t * 10**9 + int(frac.ljust(9, "0")[:9])


def rcbs(names, kind):
    """LLN0's RCBs of a kind; those whose name says measurements first (their data set changes
    every second, so a buffered one has entries to keep while its client is away)."""
    rs = [n for n in names if n.startswith("LLN0$%s$" % kind) and n.count("$") == 2]
    return sorted(rs, key=lambda n: ("meas" not in n.lower(), n))


def try_reports(srv, dom, names):
    """URCB and BRCB while the simulator streams; buffered reports after a reconnect."""
    opts = ["--optflds", "0111110110", "--trgops", "011011", "--intgpd", "1000", "--gi"]
    for kind, what in (("RP", "unbuffered reports (URCB)"), ("BR", "buffered reports (BRCB)")):
        rs = rcbs(names, kind)
        if not rs:
            skip(what, "the server's LLN0 has no %s report control block "
                 "(GetNameList of %s lists none)" % (kind, dom))
            continue
        rc, lines, err = mms(srv, ["reports", "--enable", "%s/%s" % (dom, rs[0])] + opts +
                             ["--seconds", "10", "--count", "3"], want=(0, 3))
        if rc == 3 and not [l for l in lines if l.get("cmd") == "report"]:
            skip(what, "the server answered: %s" % err.strip().splitlines()[-1])
            continue
        reps = [l for l in lines if l.get("cmd") == "report"]
        check(rc == 0 and len(reps) >= 3, "%s on %s: %d reports" % (what, rs[0], len(reps)))
        reasons = {r for rep in reps for e in rep["entries"] for r in e.get("reason", [])}
        check("general-interrogation" in reasons and reasons & {"integrity", "data-change"},
              "%s: a GI report, and integrity or data-change reports (reasons %s)" %
              (what, sorted(reasons)))
        check(all(rep["entries"] for rep in reps), "%s: every report carries values" % what)
        if kind == "BR":
            seqs = [rep["seq_num"] for rep in reps]
            check(seqs == sorted(seqs), "BRCB SeqNums increase: %s" % seqs)
            # enable it again, leave it enabled and vanish (TCP closed): the server keeps
            # buffering; then reconnect asking for the entries after the last one we saw
            _, lines, _ = mms(srv, ["--close", "reports", "--enable", "%s/%s" % (dom, rs[0])] +
                              opts + ["--count", "1", "--keep"])
            seen = reps + [l for l in lines if l.get("cmd") == "report"]
            last = seen[-1]
            time.sleep(3.5)
            t_back = time.time_ns()
            rc, lines, err = mms(srv, ["reports", "--enable", "%s/%s" % (dom, rs[0]),
                                       "--entry-id", last["entry_id"], "--seconds", "1.5"],
                                 want=(0, 3))
            reps2 = [l for l in lines if l.get("cmd") == "report"]
            away = [r for r in reps2 if "time_of_entry" in r and
                    iso_ns(r["time_of_entry"]["btime"]) < t_back]
            check(rc == 0 and len(away) >= 2,
                  "BRCB after a reconnect: %d reports, %d of them entries made while we were "
                  "away (TimeOfEntry before the reconnect)" % (len(reps2), len(away)))
            # The entry right after the last one seen comes first (EntryIDs count the block's
            # entries: docs/iec61850.md). SqNum counts the reports the server sent: a report
            # already on its way when the first client closed (sent, never read) took a number,
            # so the resent entry's SqNum may be higher than last + 1, never lower.
            check(int(reps2[0]["entry_id"], 16) == int(last["entry_id"], 16) + 1,
                  "BRCB: the first report after the reconnect is the entry after the last one "
                  "seen (EntryID %s -> %s)" % (last["entry_id"], reps2[0]["entry_id"]))
            check((reps2[0]["seq_num"] - last["seq_num"]) % 65536 in range(1, 100),
                  "BRCB: SqNum continues after the last one seen (%d -> %d)"
                  % (last["seq_num"], reps2[0]["seq_num"]))


def start_dip_listener(srv, dom, t_sim):
    """A URCB on LLN0's events data set, enabled before the scheduled dip, data-change and
    quality-change triggers only."""
    _, lines, _ = mms(srv, ["names", dom])
    rs = [n for n in rcbs(one(lines, "names")["names"], "RP") if "event" in n.lower()]
    if not rs:
        return None
    # until the first data-change report (the data set holds QVVR1's event attributes), with a
    # generous bound well past the dip
    secs = DIP_AT_S + 40 - (time.monotonic() - t_sim)
    args = [CLIENT, "--port", str(srv.mport), "--timeout", "10", "reports", "--enable",
            "%s/%s" % (dom, rs[0]), "--optflds", "0111110110", "--trgops", "011000",
            "--seconds", "%.1f" % secs, "--count", "1"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), rs[0]


def check_dip_report(listener):
    if listener is None:
        skip("the dip as a QVVR report", "LLN0 has no events URCB")
        return
    p, rcb = listener
    out, err = p.communicate(timeout=60)
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    reps = [l for l in lines if l.get("cmd") == "report"]
    if p.returncode == 3 and not reps:
        skip("the dip as a QVVR report", "the server answered: %s" % err.strip())
        return
    hits = [e for r in reps for e in r["entries"] if "QVVR1" in e.get("ref", "") and
            "data-change" in e.get("reason", [])]
    check(p.returncode == 0 and hits, "the scheduled dip arrived as a data-change report of "
          "QVVR1 on %s (%d reports, QVVR1 entries: %s)" %
          (rcb, len(reps), [e["ref"].split("/")[-1] for e in hits][:4]))


def refusals(srv, dom):
    """Writes outside report control blocks are refused with the right DataAccessError; unknown
    names answer object-non-existent (Read) / a confirmed-Error (GetVariableAccessAttributes)."""
    batch = ("write %s MMXU1$MX$Hz$mag$f {\"float\":1.0}\nwrite %s MMXU1$MX$NoSuch true\n"
             "read %s MMXU1$MX$NoSuch\nattrs %s NOSUCH1\nread NOSUCHDOMAIN LLN0\n" %
             (dom, dom, dom, dom))
    rc, lines, err = mms(srv, ["batch"], batch, want=(3,))
    w = [l for l in lines if l.get("cmd") == "write"]
    r = [l for l in lines if l.get("cmd") == "read"]
    a = one(lines, "attrs")
    check(w[0]["results"][0]["error"]["name"] == "object-access-denied" and
          w[1]["results"][0]["error"]["name"] == "object-non-existent",
          "Write of a measurement: object-access-denied; of an unknown name: object-non-existent")
    check(all(x["results"][0]["error"]["name"] == "object-non-existent" for x in r),
          "Read of an unknown name or domain: object-non-existent")
    check(a["error"]["kind"] == "confirmed-error" and a["error"]["class_name"] == "access" and
          a["error"]["code_name"] == "object-non-existent", "GetVariableAccessAttributes of an "
          "unknown name: confirmed-Error access/object-non-existent")
    check(one(lines, "conclude")["ok"], "the association survives the errors (exit 3 at the end)")
    # a whole LN above a 1000-octet PDU: resource / capability-unavailable (ISO 9506-2), never a
    # response above the negotiated size (the client checks every PDU against it)
    rc, lines, err = mms(srv, ["--max-pdu", "1000", "read", dom, "MMXU1"], want=(3,))
    e = one(lines, "read")["error"]
    check(e["class_name"] == "resource" and e["code_name"] == "capability-unavailable",
          "Read of MMXU1 at a 1000-octet PDU: confirmed-Error resource/capability-unavailable")


def try_lists(srv, dom):
    """Static datasets of LLN0 (read as named variable lists) and a dynamic list defined,
    read and deleted by this client."""
    rc, lines, err = mms(srv, ["names", dom, "--class", "lists"], want=(0, 3))
    lists = one(lines, "names").get("names", []) if rc == 0 else []
    if not lists:
        skip("static datasets", "GetNameList of named variable lists of %s: %s" %
             (dom, err.strip() or "none"))
    for ds in lists[:4]:
        _, l1, _ = mms(srv, ["list-attrs", dom, ds])
        items = one(l1, "list-attrs")["items"]
        _, l2, _ = mms(srv, ["read-list", dom, ds])
        res = one(l2, "read-list")["results"]
        check(len(items) > 0 and len(res) == len(items) and all("value" in r for r in res),
              "dataset %s: %d members, read as a list: %d values" % (ds, len(items), len(res)))
    batch = ("define-list %s LLN0$gsTest MMXU1$MX$PhV MMXU1$MX$Hz\nlist-attrs %s LLN0$gsTest\n"
             "read-list %s LLN0$gsTest\ndelete-list %s LLN0$gsTest\n" % (dom, dom, dom, dom))
    rc, lines, err = mms(srv, ["batch"], batch, want=(0, 3))
    d = one(lines, "define-list")
    if "error" in d:
        skip("dynamic named variable lists", "DefineNamedVariableList answered %s" % d["error"])
        return
    la = one(lines, "list-attrs")
    rl = one(lines, "read-list")
    dl = one(lines, "delete-list")
    check(la.get("items") == [dom + "/MMXU1$MX$PhV", dom + "/MMXU1$MX$Hz"] and
          len(rl.get("results", [])) == 2 and all("value" in r for r in rl["results"]) and
          dl.get("deleted") == 1, "a dynamic list: defined, its attributes, read (2 values), "
          "deleted")


def list_cfgs(srv):
    """(rc, err, top entries, .cfg paths listed) of one walk of the server's file store."""
    rc, lines, err = mms(srv, ["files"], want=(0, 3))
    if rc == 3:
        return rc, err, [], []
    ents = one(lines, "files")["entries"]
    cfgs = [e["name"] for e in ents if e["name"].lower().endswith(".cfg")]
    if not cfgs:
        # a directory per terminal: list them all (entry names relative to the directory or
        # full paths: both are accepted)
        for e in ents:
            rc2, l2, _ = mms(srv, ["files", e["name"]], want=(0, 3))
            inner = one(l2, "files").get("entries", []) if rc2 == 0 else []
            cfgs += [x["name"] if "/" in x["name"] else e["name"].rstrip("/") + "/" + x["name"]
                     for x in inner if x["name"].lower().endswith(".cfg")]
    return rc, err, ents, cfgs


def try_files(srv, tid, data, dip):
    # A record is listed once its whole window (the event's end + 1 s of post-window) is
    # stored (docs/iec61850.md "Files"); the dip was just stored and the simulator still
    # streams: wait for it, bounded.
    deadline = time.time() + 30
    while True:
        rc, err, ents, cfgs = list_cfgs(srv)
        if rc == 3:
            skip("file services (COMTRADE download)", "the server answered: %s" %
                 err.strip().splitlines()[-1])
            return
        if cfgs or time.time() > deadline:
            break
        time.sleep(0.2)
    check(cfgs, "the dip's COMTRADE record is listed within 30 s: %s" % ents[:5])
    cfg = cfgs[0]
    local = os.path.join(data, "dl")
    os.makedirs(local, exist_ok=True)
    base = os.path.join(local, os.path.basename(cfg)[:-4])
    batch = "get-file %s %s.cfg\nget-file %s %s.dat\n" % (cfg, base, cfg[:-4] + ".dat", base)
    rc, lines, err = mms(srv, ["batch"], batch, want=(0, 3))
    got = [l for l in lines if l.get("cmd") == "get-file" and "bytes" in l]
    check(len(got) == 2, "downloaded %s (%s octets) and its .dat (%s octets), each of the size "
          "FileOpen announced %s" % (cfg, got[0]["bytes"] if got else "-",
                                     got[1]["bytes"] if len(got) > 1 else "-", err.strip()))
    p = run([GRIDSENSE, "analyze", base + ".cfg", "--what", "event", "--declared-voltage",
             str(UDIN)])
    evs = [json.loads(l)["data"] for l in p.stdout.splitlines() if l.startswith("{") and
           json.loads(l).get("type") == "event"]
    same = [e for e in evs if e.get("kind") == "dip" and
            abs(e["start_ns"] - dip["start_ns"]) < 20_000_000 and
            abs(e["residual_pct"] - dip["residual_pct"]) < 1.0]
    check(same, "gridsense analyze of the downloaded COMTRADE finds the stored dip (start within "
          "a cycle, residual %.2f %% within 1 point): %s" %
          (dip["residual_pct"], [(e.get("kind"), e.get("residual_pct")) for e in evs]))


def main():
    if not os.path.exists(CLIENT):
        fail("%s not built" % CLIENT)
    if "mms" not in inspect.signature(Server.__init__).parameters:
        print("SKIP: this build's gslib Server has no MMS port (the MMS server is not built)")
        sys.exit(77)
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "E-", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", str(UDIN)])
        tids = ["E-0001", "E-0002"]
        srv = Server(data, mms=True).start()
        try:
            if not srv.mport:
                print("SKIP: the server wrote no MMS port in its port file")
                sys.exit(77)
            p = sim_start(srv.tport, secrets, 2, SIM_S,
                          ["--disturb", "0", "--schedule",
                           "dip@%g+%d:%g/1" % (DIP_AT_S, DIP_MS, DIP_LEVEL)])
            t_sim = time.monotonic()
            _, lines, _ = mms(srv, ["identify"])
            idn = one(lines, "identify")
            check(idn["vendor"] == "gridsense", "Identify: %r" % idn)
            check(one(lines, "associate")["max_pdu"] <= 65000 and one(lines, "conclude")["ok"],
                  "associated without a password, concluded")
            doms = [domain_of(t) for t in tids]
            wait_for(lambda: all(srv.json("/api/v1/terminals/%s/latest" % t)[0] == 200
                                 for t in tids), 30, "latest values of both terminals")

            def domains():
                return one(mms(srv, ["domains"])[1], "domains")["names"]
            got = wait_for(lambda: set(doms) <= set(domains()) and domains(), 20,
                           "both LDs in GetNameList")
            check(sorted(got) == sorted(doms), "domains = one LD per terminal, '-' mapped: %s"
                  % got)
            listener = start_dip_listener(srv, doms[0], t_sim)
            model = browse(srv, doms)
            types = model[doms[0]]["types"]
            mmxu_vs_api(srv, doms[0], tids[0], types)
            refusals(srv, doms[0])
            try_lists(srv, doms[0])
            try_reports(srv, doms[0], model[doms[0]]["names"])

            # abort and conclude; the server keeps serving
            _, lines, _ = mms(srv, ["--abort", "identify"])
            check(one(lines, "abort")["ok"], "an association ended with ABORT")
            _, lines, _ = mms(srv, ["status"])
            check(one(lines, "conclude")["ok"], "the next association works and concludes")

            # the dip: stored by the analysis, shown by QVVR1 (the simulator keeps streaming)
            evs = wait_for(lambda: srv.json("/api/v1/terminals/%s/events" % tids[0])[1]
                           .get("events"), 40, "the dip stored")
            dip = [e for e in evs if e["kind"] == "dip"][0]
            if "QVVR1" in types:
                def qvvr():
                    qv = one(mms(srv, ["read", doms[0], "QVVR1"])[1], "read")["results"][0]
                    v = zip_type(types["QVVR1"], qv["value"], "QVVR1")
                    return v if v["ST"]["EvtCnt"]["stVal"] >= 1 else None
                v = wait_for(qvvr, 15, "QVVR1 EvtCnt >= 1 after the stored dip")
                mx = v["MX"]
                check(abs(mx["VVaPct"]["mag"]["f"] - dip["residual_pct"]) < 0.01 and
                      abs(mx["VVaTm"]["mag"]["f"] - dip["duration_s"]) < 1e-4 and
                      abs(mx["VVa"]["t"]["ns"] - dip["start_ns"]) < 1000 and
                      v["ST"]["DipStr"]["general"] is True,
                      "QVVR1 shows the stored dip: DipStr, residual %.2f %% (%.2f), %.4f s, "
                      "t = the dip's start" % (dip["residual_pct"], mx["VVaPct"]["mag"]["f"],
                                               dip["duration_s"]))
            else:
                skip("QVVR1 (dip)", "the model has no QVVR1 LN")
            check_dip_report(listener)
            try_files(srv, tids[0], d, dip)

            # offline: the terminals vanish (the simulator stopped), values questionable + oldData
            p.terminate()
            p.communicate(timeout=60)
            wait_for(lambda: not srv.json("/api/v1/terminals/%s" % tids[0])[1].get("online"),
                     30, "terminal offline after the simulator stopped")

            def offline_q():
                res = one(mms(srv, ["read", doms[0], "MMXU1$MX$PhV$phsA"])[1],
                          "read")["results"][0]
                q = res["value"][1]
                return (validity(q) == "questionable" and qbit(q, 7)) and q
            q = wait_for(offline_q, 20, "MMXU1 PhV.phsA questionable + oldData when offline")
            check(True, "offline terminal: PhV.phsA quality %s, oldData (%r)" % (validity(q), q))
            # everything our client sent was well-formed for the server; it counted the ABORT
            m = {k: srv.metric("gridsense_mms_" + k) for k in
                 ("malformed_pdus_total", "protocol_errors_total", "aborts_received_total",
                  "associations_total", "reports_sent_total")}
            check(m["malformed_pdus_total"] == 0 and m["protocol_errors_total"] == 0 and
                  m["aborts_received_total"] >= 1 and m["associations_total"] >= 10,
                  "server metrics: no malformed PDU or protocol error from our client, "
                  "the ABORTs counted: %s" % m)
        finally:
            srv.stop()

        # ---- password ----
        pwf = os.path.join(d, "mms-passwords")
        with open(pwf, "w") as f:
            f.write("# name password\nscada top secret\n")
        os.chmod(pwf, 0o600)
        conf = os.path.join(d, "gridsense.conf")
        with open(conf, "w") as f:
            f.write("[mms]\npassword_file = %s\n" % pwf)
        os.chmod(conf, 0o600)
        srv = Server(data, mms=True, extra=["--config", conf]).start()
        try:
            rc, _, err = mms(srv, ["identify"], want=(2,))
            check("refused" in err or "rejected" in err,
                  "no password: association refused, exit 2 (%s)" % err.strip())
            rc, _, err = mms(srv, ["identify"], password="wrong", want=(2,))
            check("refused" in err or "rejected" in err,
                  "wrong password: association refused, exit 2 (%s)" % err.strip())
            _, lines, _ = mms(srv, ["identify"], password="top secret")
            check(one(lines, "identify")["vendor"] == "gridsense",
                  "the right password associates")
        finally:
            srv.stop()
    print("PASS%s" % (" (skipped: %s)" % "; ".join(SKIPPED) if SKIPPED else ""))


if __name__ == "__main__":
    main()
