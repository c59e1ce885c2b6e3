#!/usr/bin/env python3
"""The SCL of src/ied (ied_scl_write) against the model's own answers.

Usage: ied_scl_check.py TEST_IED_BINARY [GRIDSENSE_BINARY]. `test_ied --scl FILE NAMES` writes the SCL of its fixture
model and, for one LD, every name GetNameList gives with the type GetVariableAccessAttributes
gives. This script checks that xmllint accepts the SCL (well-formed), that its structure holds
(DataTypeTemplates in the 61850-6 order, unique ids, every type reference resolves, every LN
instance names an LNodeType of its class), and that expanding the LDevice's LNs through the
DataTypeTemplates by the IEC 61850-8-1 FC mapping gives exactly the GetNameList names, each with
the GetVAA type (bType -> MMS type), and the LDevices exactly the GetNameList domains.
With GRIDSENSE_BINARY, `gridsense mms scl` on a temporary data folder with two provisioned
terminals must write a well-formed file with one LDevice per terminal (the mapped LD insts, the
provisioned names as desc) and the same DataTypeTemplates. Exit 77 (skipped) without xmllint."""
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

NS = "{http://www.iec.ch/61850/2003/SCL}"
FC_ORDER = ["MX", "ST", "SP", "CF", "DC", "EX", "BR", "RP"]
BTYPE = {"BOOLEAN": "bool", "Quality": "bits:-13", "Timestamp": "utc", "FLOAT32": "float",
         "VisString255": "vstr:-255", "INT16U": "uint:16", "INT32U": "uint:32", "INT32": "int:32",
         "Enum": "int:8"}


# IEC 61850-8-1 report control block structures (URCB of FC RP, BRCB of FC BR)
URCB = [("RptID", "vstr:-129"), ("RptEna", "bool"), ("Resv", "bool"), ("DatSet", "vstr:-129"),
        ("ConfRev", "uint:32"), ("OptFlds", "bits:-10"), ("BufTm", "uint:32"), ("SqNum", "uint:8"),
        ("TrgOps", "bits:-6"), ("IntgPd", "uint:32"), ("GI", "bool")]
BRCB = [("RptID", "vstr:-129"), ("RptEna", "bool"), ("DatSet", "vstr:-129"),
        ("ConfRev", "uint:32"), ("OptFlds", "bits:-10"), ("BufTm", "uint:32"),
        ("SqNum", "uint:16"), ("TrgOps", "bits:-6"), ("IntgPd", "uint:32"), ("GI", "bool"),
        ("PurgeBuf", "bool"), ("EntryID", "octets:8"), ("TimeofEntry", "bintime"),
        ("ResvTms", "int:16")]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    if not shutil.which("xmllint"):
        return 77
    binary = sys.argv[1]
    d = tempfile.mkdtemp()
    scl, names = os.path.join(d, "m.icd"), os.path.join(d, "names.txt")
    subprocess.run([binary, "--scl", scl, names], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["xmllint", "--noout", scl], check=True)
    root = ET.parse(scl).getroot()
    if root.tag != NS + "SCL":
        fail("root is not SCL")
    order = [c.tag[len(NS):] for c in root]
    if order != ["Header", "Communication", "IED", "DataTypeTemplates"]:
        fail("top-level order %s" % order)
    dtt = root.find(NS + "DataTypeTemplates")
    kinds = [c.tag[len(NS):] for c in dtt]
    rank = {"LNodeType": 0, "DOType": 1, "DAType": 2, "EnumType": 3}
    if [rank[k] for k in kinds] != sorted(rank[k] for k in kinds):
        fail("DataTypeTemplates not in LNodeType, DOType, DAType, EnumType order")
    types = {}
    for c in dtt:
        i = c.get("id")
        if i in types:
            fail("duplicate type id " + i)
        types[i] = c

    def ref(i, kind):
        t = types.get(i)
        if t is None or t.tag != NS + kind:
            fail("%s %s does not resolve" % (kind, i))
        return t

    for t in dtt.findall(NS + "DOType"):
        for c in t:
            if c.tag == NS + "SDO":
                ref(c.get("type"), "DOType")
            elif c.get("bType") == "Struct":
                ref(c.get("type"), "DAType")
            elif c.get("bType") == "Enum":
                ref(c.get("type"), "EnumType")
            if c.tag == NS + "DA" and c.get("fc") not in FC_ORDER:
                fail("DA %s fc %s" % (c.get("name"), c.get("fc")))
    for t in dtt.findall(NS + "DAType"):
        for c in t:
            if c.get("bType") == "Struct":
                ref(c.get("type"), "DAType")
            elif c.get("bType") == "Enum":
                ref(c.get("type"), "EnumType")

    def da_tree(da):
        """(name, typecode, children) of a DA/BDA."""
        if da.get("bType") == "Struct":
            kids = [da_tree(b) for b in ref(da.get("type"), "DAType").findall(NS + "BDA")]
            return (da.get("name"), "struct", kids)
        return (da.get("name"), BTYPE[da.get("bType")], [])

    def do_view(dotype_id, fc):
        """(typecode, children) of a DO type restricted to fc, or None if it has nothing of fc."""
        t = ref(dotype_id, "DOType")
        kids = []
        for c in t:
            if c.tag == NS + "SDO":
                v = do_view(c.get("type"), fc)
                if v is not None:
                    if c.get("count"):
                        kids.append((c.get("name"), "array:" + c.get("count"), []))
                    else:
                        kids.append((c.get("name"),) + v)
            elif c.get("fc") == fc:
                kids.append(da_tree(c))
        return ("struct", kids) if kids else None

    def walk(prefix, node, out):
        name, code, kids = node
        path = prefix + "$" + name if prefix else name
        out[path] = code
        if not code.startswith("array"):
            for k in kids:
                walk(path, k, out)

    ied = root.find(NS + "IED")
    ied_name = ied.get("name")
    lds = ied.findall(".//" + NS + "LDevice")
    want_domains, want_vars = [], {}
    for line in open(names):
        f = line.rstrip("\n").split("\t")
        if f[0] == "domain":
            want_domains.append(f[1])
        else:
            want_vars[f[1]] = f[2]
    got_domains = sorted(ied_name + ld.get("inst") for ld in lds)
    if got_domains != sorted(want_domains):
        fail("domains: SCL %s, GetNameList %s" % (got_domains, want_domains))
    ld = [x for x in lds if ied_name + x.get("inst") == "GRIDSENSEDEMO_M0001"][0]
    got = {}
    for ln in ld:
        lnt = ref(ln.get("lnType"), "LNodeType")
        if lnt.get("lnClass") != ln.get("lnClass"):
            fail("LN %s of class %s has type of class %s" % (ln.get("lnType"), ln.get("lnClass"),
                                                             lnt.get("lnClass")))
        lnname = (ln.get("prefix") or "") + ln.get("lnClass") + (ln.get("inst") or "")
        fcs = []
        for fc in FC_ORDER:
            dos = []
            for do in lnt.findall(NS + "DO"):
                v = do_view(do.get("type"), fc)
                if v is not None:
                    dos.append((do.get("name"),) + v)
            if fc in ("BR", "RP"):
                for rc in ln.findall(NS + "ReportControl"):
                    if (rc.get("buffered") == "true") != (fc == "BR"):
                        continue
                    attrs = BRCB if fc == "BR" else URCB
                    n = int(rc.find(NS + "RptEnabled").get("max"))
                    for k in range(1, n + 1):
                        dos.append(("%s%02d" % (rc.get("name"), k), "struct",
                                    [(a, c, []) for a, c in attrs]))
            if dos:
                fcs.append((fc, "struct", dos))
        walk("", (lnname, "struct", fcs), got)
        for ds in ln.findall(NS + "DataSet"):
            for fcda in ds.findall(NS + "FCDA"):
                fref = "%s%s%s$%s$%s" % (fcda.get("prefix") or "", fcda.get("lnClass"),
                                       fcda.get("lnInst") or "", fcda.get("fc"),
                                       fcda.get("doName"))
                if fref not in want_vars or fcda.get("ldInst") != ld.get("inst"):
                    fail("DataSet %s member %s is not a variable of the LD" % (ds.get("name"),
                                                                                fref))
        for rc in ln.findall(NS + "ReportControl"):
            if rc.get("datSet") not in [x.get("name") for x in ln.findall(NS + "DataSet")]:
                fail("ReportControl %s: datSet %s" % (rc.get("name"), rc.get("datSet")))
    missing = sorted(set(want_vars) - set(got))
    extra = sorted(set(got) - set(want_vars))
    if missing or extra:
        fail("names only in GetNameList: %s; only in the SCL: %s" % (missing[:10], extra[:10]))
    wrong = [(n, got[n], want_vars[n]) for n in sorted(got) if got[n] != want_vars[n]]
    if wrong:
        fail("types differ (name, SCL, GetVAA): %s" % wrong[:10])
    print("SCL consistent: %d LDs, %d variables of one LD, %d types" %
          (len(lds), len(got), len(types)))
    if len(sys.argv) > 2:
        gs = sys.argv[2]
        data = os.path.join(d, "data")
        for tid, name in (("DEMO-0001", "Feeder <1> & 'x'"), ("a.b", "")):
            cmd = [gs, "terminal", "add", tid, "--data", data]
            if name:
                cmd += ["--name", name]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = os.path.join(d, "cli.icd")
        subprocess.run([gs, "mms", "scl", "--data", data, "--out", out, "--ied-name", "SUB1"],
                       check=True)
        subprocess.run(["xmllint", "--noout", out], check=True)
        r2 = ET.parse(out).getroot()
        lds2 = r2.findall(".//" + NS + "LDevice")
        got2 = sorted((x.get("inst"), x.get("desc")) for x in lds2)
        if got2 != [("DEMO_M0001", "Feeder <1> & 'x'"), ("a_Db", "a.b")]:
            fail("gridsense mms scl LDevices: %s" % got2)
        if r2.find(NS + "IED").get("name") != "SUB1":
            fail("gridsense mms scl: IED name")
        t1 = ET.tostring(dtt)
        t2 = ET.tostring(r2.find(NS + "DataTypeTemplates"))
        if t1 != t2:
            fail("gridsense mms scl: DataTypeTemplates differ from the model's")
        conf = os.path.join(d, "gs.ini")
        with open(conf, "w") as f:
            f.write("[mms]\nied_name = CFGNAME\n")
        out2 = os.path.join(d, "cfg.icd")
        subprocess.run([gs, "mms", "scl", "--config", conf, "--data", data, "--out", out2],
                       check=True)
        r3 = ET.parse(out2).getroot()
        if r3.find(NS + "IED").get("name") != "CFGNAME":
            fail("gridsense mms scl: the IED name of [mms] ied_name")
        bad = subprocess.run([gs, "mms", "scl", "--data", data, "--ied-name", "1x"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if bad.returncode != 2:
            fail("an invalid --ied-name must exit 2, got %d" % bad.returncode)
        print("gridsense mms scl: %d LDevices" % len(lds2))
    shutil.rmtree(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
