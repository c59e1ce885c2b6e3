"""`make run`'s script: provisions demo terminals, starts the server and the simulator, prints
where to look, and stops both gracefully on SIGINT (ports from the OS, data in a temp dir)."""
import json
import os
import re
import signal
import subprocess

from gslib import *

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main():
    with TempDir() as data:
        env = dict(os.environ, GS_BUILD_DIR=os.path.abspath(BUILD), GS_DATA=data,
                   GS_HTTP="127.0.0.1:0", GS_TERMINALS="127.0.0.1:0", GS_SIM_TERMINALS="12",
                   GS_MMS="127.0.0.1:0")
        p = subprocess.Popen([os.path.join(ROOT, "scripts", "run.sh")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            pf = os.path.join(data, "ports.json")
            wait_for(lambda: os.path.exists(pf) and os.path.getsize(pf) > 0, 60, "port file")
            ports = json.load(open(pf))
            srv = Server(data)
            srv.hport, srv.tport = ports["http"], ports["terminals"]

            def online():
                try:
                    st, j = srv.json("/api/v1/terminals")
                except OSError:
                    return False
                return st == 200 and sum(1 for t in j["terminals"] if t["online"]) == 12

            wait_for(online, 60, "12 demo terminals online")
            print("ok: 12 demo terminals online")
            st, j = srv.json("/api/v1/terminals")
            places = {(t["location"]["lat"], t["location"]["lon"]) for t in j["terminals"] if t["location"]}
            check(len(places) == 12 and all(47 < la < 48 and 8 < lo < 9 for la, lo in places) and
                  j["terminals"][0]["name"] == "demo feeder 1",
                  "each demo terminal has its own place on the map and a name")
            wait_for(lambda: (srv.metric("gridsense_blocks_stored_total") or 0) > 100, 60,
                     "blocks stored")
            print("ok: demo terminals stream and blocks are stored")
            secrets = read_secrets(os.path.join(data, "demo-secrets.txt"))
            check(len(secrets) == 12 and "DEMO-0001" in secrets, "demo terminals provisioned")
            # the IEC 61850 server: on, with the demo client's password only
            pwf = os.path.join(data, "demo-mms-passwords")
            check(os.stat(pwf).st_mode & 0o077 == 0, "demo-mms-passwords is private (0600)")
            mpw = open(pwf).read().split()[1]
            cli = [os.path.join(BUILD, "mms_client"), "--port", str(ports["mms"]), "--timeout", "20"]
            r = subprocess.run(cli + ["--password", mpw, "domains"], capture_output=True,
                               text=True, timeout=60)
            doms = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
            names = [n for d in doms if d.get("cmd") == "domains" for n in d.get("names", [])]
            check(r.returncode == 0 and len(names) == 12 and "GRIDSENSEDEMO_M0001" in names,
                  "the MMS server lists the 12 demo terminals' logical devices (%s %s)"
                  % (names[:3], r.stderr[-300:]))
            r = subprocess.run(cli + ["domains"], capture_output=True, text=True, timeout=60)
            check(r.returncode == 2, "the MMS server refuses a client without the password "
                  "(exit %d)" % r.returncode)
        finally:
            p.send_signal(signal.SIGINT)
            out, _ = p.communicate(timeout=90)
        print(out)
        check("http://127.0.0.1:%d/api/v1/terminals" % ports["http"] in out,
              "prints where to look, with the real HTTP port")
        check("Ctrl-C" in out, "says how to stop")
        check("MMS on 127.0.0.1:%d" % ports["mms"] in out and mpw in out,
              "prints the MMS server's address and the demo client's password")
        adm = os.path.join(data, "demo-admin.txt")
        check(os.stat(adm).st_mode & 0o077 == 0, "demo-admin.txt is private (0600)")
        pw = [l.split(" ", 1)[1] for l in open(adm).read().splitlines() if l.startswith("password ")]
        check(len(pw) == 1 and len(pw[0]) >= 16 and pw[0] in out,
              "a random admin password was made and printed with the URLs")
        check(os.stat(os.path.join(data, "demo-auth.hdr")).st_mode & 0o077 == 0,
              "the demo token header file is private")
        check("stopped cleanly" in open(os.path.join(data, "server.log")).read(),
              "server stopped cleanly on Ctrl-C")
        sim_out = open(os.path.join(data, "sim.log")).read()
        summ = json.loads([l for l in sim_out.splitlines() if l.startswith("{")][-1])
        check(summ["unacked"] == 0 and summ["blocks_acked"] > 0,
              "simulator drained: every block acknowledged (%d)" % summ["blocks_acked"])


if __name__ == "__main__":
    main()
