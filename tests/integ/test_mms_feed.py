"""The MMS server's model is fed from the running system (mmsd, docs/iec61850.md "Server"):
a simulated terminal streams; over MMS its LD's MMXU1 frequency becomes a valid ~50 Hz value
(latest values handed from the analysis to the MMS thread), a scheduled dip becomes QVVR1's
event (the stored event read back by id and given to the model), its disturbance record is
downloaded over the file services and read back by `gridsense analyze`, and a terminal
provisioned while the server runs gets its logical device without a restart (terminal list
refresh)."""
import json
import os
import socket
import struct
import subprocess
import time

from gslib import *
from mms_wire import *


def tlv(tag, v):
    n = len(v)
    if n < 0x80:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + v


def ber_int(v):
    """INTEGER contents, minimal (ISO 8825-1 8.3.2)."""
    return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)


def mms_dt(pdu):
    fed = tlv(0x61, tlv(0x30, b"\x02\x01\x03" + tlv(0xA0, pdu)))
    cotp = b"\x02\xf0\x80" + b"\x01\x00\x01\x00" + fed
    return b"\x03\x00" + (len(cotp) + 4).to_bytes(2, "big") + cotp


def elements(b):
    """The TLVs of a span: [(tag, contents)]."""
    out, i = [], 0
    while i < len(b):
        tag = b[i]
        ln, j = ber_len(b, i + 1)
        out.append((tag, b[j:j + ln]))
        i = j + ln
    return out


def pdu_of(answer):
    t = b"".join(a[7:] for a in answer)
    (_, fed), = elements(t[4:])
    (_, pdv), = elements(fed)
    return elements(pdv)[-1][1]  # the [0] single-ASN1-type contents: one MMS PDU TLV


class Client:
    def __init__(self, port, prefix):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(prefix[0])
        check(read_answer(self.s), "CC")
        self.s.sendall(prefix[1])
        check(read_answer(self.s), "ACCEPT")
        self.invoke = 0

    def request(self, service_tlv):
        self.invoke += 1
        self.s.sendall(mms_dt(tlv(0xA0, tlv(0x02, ber_int(self.invoke)) +
                                  service_tlv)))
        (tag, body), = elements(pdu_of(read_answer(self.s)))
        check(tag == 0xA1, "confirmed-Response (got tag %#x)" % tag)
        return elements(body)[1]  # (service tag, contents)

    def domains(self):
        tag, body = self.request(tlv(0xA1, tlv(0xA0, b"\x80\x01\x09") + tlv(0xA1, b"\x80\x00")))
        return [v.decode() for t, v in elements(elements(body)[0][1])]

    def read(self, dom, item):
        """The first AccessResult: (Data tag, contents)."""
        spec = tlv(0x30, tlv(0xA0, tlv(0xA1, tlv(0x1A, dom.encode()) + tlv(0x1A, item.encode()))))
        tag, body = self.request(tlv(0xA4, tlv(0xA1, tlv(0xA0, spec))))
        for t, v in elements(body):
            if t == 0xA1:  # listOfAccessResult
                return elements(v)[0]
        fail("no listOfAccessResult")

    def close(self):
        self.s.close()


def as_float(res):
    t, v = res
    check(t == 0x87 and v[0] == 8 and len(v) == 5, "a single float (got %#x %s)" % (t, v.hex()))
    return struct.unpack(">f", v[1:])[0]


def main():
    conns = load_connections()
    prefix = conns[("a_browse_client_example2", 0)]["c2s"][:2]
    with TempDir() as data:
        secrets = provision(data, 1, "F")
        srv = Server(data, mms=True).start()
        try:
            c = Client(srv.mport, prefix)
            doms = c.domains()
            check(len(doms) == 1 and doms[0].startswith("GRIDSENSE"), "one LD: %r" % doms)
            ld = doms[0]
            p = sim_start(srv.tport, secrets, 1, 25,
                          ["--disturbed-fraction", "0", "--schedule", "dip@6+300:40"])
            hz = None

            def fresh_hz():
                nonlocal hz
                r = c.read(ld, "MMXU1$MX$Hz$mag$f")
                hz = as_float(r) if r[0] == 0x87 else None
                q = c.read(ld, "MMXU1$MX$Hz$q")
                # quality bit string: validity (bits 0-1) good = 00
                return hz is not None and abs(hz - 50) < 0.5 and q[0] == 0x84 and \
                    (q[1][1] & 0xC0) == 0

            wait_for(fresh_hz, 40, "MMXU1 Hz valid near 50 Hz over MMS")
            print("MMXU1.Hz = %.3f" % hz)

            def dip_seen():
                r = c.read(ld, "QVVR1$ST$EvtCnt$stVal")
                return r[0] == 0x85 and int.from_bytes(r[1], "big", signed=True) >= 1

            wait_for(dip_seen, 60, "the scheduled dip as QVVR1 EvtCnt over MMS")
            g = c.read(ld, "QVVR1$ST$DipStr$general")
            check(g == (0x83, b"\xff") or (g[0] == 0x83 and g[1] != b"\x00"),
                  "DipStr.general TRUE: %r" % (g,))
            pct = as_float(c.read(ld, "QVVR1$MX$VVaPct$mag$f"))
            print("QVVR1 dip residual %.1f %%" % pct)
            check(20 < pct < 60, "dip residual near 40 %%: %.1f" % pct)
            # the dip's disturbance record over the MMS file services (build/mms_client): a
            # directory per LD (its domain name), BASE.cfg/.dat with the API's event id in BASE
            # (docs/iec61850.md "Files"; rendered off the MMS thread shortly after the event);
            # downloaded, it is a COMTRADE record in which `gridsense analyze` finds the dip again
            st, body = srv.http("/api/v1/events")
            check(st == 200, "events listed")
            evid = json.loads(body)["events"][0]["id"]
            mc = os.path.join(BUILD, "mms_client")

            def client(*args):
                r = subprocess.run([mc, "--port", str(srv.mport)] + list(args),
                                   capture_output=True, text=True, timeout=60)
                lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
                check(r.returncode == 0, "mms_client %s: %s" % (args, r.stderr[-500:]))
                return lines

            def listed():
                top = [l for l in client("files") if l["cmd"] == "files"][0]
                if [e["name"] for e in top["entries"]] != [ld]:
                    return None
                d = [l for l in client("files", ld) if l["cmd"] == "files"][0]
                names = {e["name"]: e["size"] for e in d["entries"]}
                cfgs = [n for n in names if n.endswith("_E%d_dip.cfg" % evid)]
                return cfgs and (names, cfgs[0])
            names, cfg = wait_for(listed, 30, "the dip's record listed in the LD's directory")
            dat = cfg[:-4] + ".dat"
            check(names.get(cfg, 0) > 0 and names.get(dat, 0) > 0,
                  "the event's record listed with sizes: %r" % names)
            dl = os.path.join(data, "dl")
            os.mkdir(dl)
            for remote in (cfg, dat):
                got = [l for l in client("get-file", remote,
                                         os.path.join(dl, os.path.basename(remote)))
                       if l["cmd"] == "get-file"][0]
                check(got["bytes"] == names[remote], "%s: %d octets as listed" % (remote, got["bytes"]))
            r = run([GRIDSENSE, "analyze", os.path.join(dl, os.path.basename(cfg))])
            evs = [json.loads(l)["data"] for l in r.stdout.splitlines()
                   if l.startswith('{"type":"event"')]
            check(any(e.get("kind") == "dip" for e in evs),
                  "gridsense analyze finds the dip in the downloaded record: %r" % evs)
            # a terminal provisioned while the server runs: its LD appears
            provision(data, 1, "G")
            wait_for(lambda: srv.metric("gridsense_mms_logical_devices") == 2, 30,
                     "the second LD without restart")
            check(len(c.domains()) == 2, "GetNameList lists both LDs")
            p.terminate()  # (done with it: no need to let it run its duration out)
            p.communicate(timeout=60)
        finally:
            check(srv.stop() == 0, "server stopped cleanly")
        # the association still open when the server stopped got an ACSE abort, then EOF
        t = read_tpkt(c.s, 10)
        check(t is not None and t[5] & 0xF0 == 0xF0 and t[7] == 0x19,
              "a session ABORT (with ABRT) at shutdown: %s" % (t.hex() if t else None))
        check(read_tpkt(c.s, 10) is None, "then the connection closed")
        c.close()
    print("ok")


if __name__ == "__main__":
    main()
