#!/usr/bin/env python3
"""The admin pages in a real browser (issue 9; tests/browser/admin.mjs, playwright-core driving
Debian's chromium) against the real server (--no-analysis) with an admin and an operator:
terminals (add with the secret shown once and checked on the real terminal link with the
simulator, edit, rotate: old secret refused and new one accepted, remove), users (generated
password, role, password, the last admin refused, remove), API tokens (create: it works; revoke:
it does not), the audit log (filters, paging, time range) and the operator's 403s, on a desktop
and a phone viewport, axe-core on every tab, no console error or failed request. Afterwards the
API's own state is checked here: the audit rows of every change, and a raw GSTP login (gslib
RawClient) with the secrets the phone flow read from its dialogs: the rotated-away secret is
refused, the new one accepted."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

ADMIN, ADMIN_PW = "ada", "ada-admin-password"
OPERATOR, OPERATOR_PW = "otto", "otto-operator-password"


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        provision(data, 2, "AD", os.path.join(d, "secrets.txt"))
        for name, role, pw in ((ADMIN, "admin", ADMIN_PW), (OPERATOR, "operator", OPERATOR_PW)):
            add_user(data, name, role, pw)
        srv = Server(data, extra=["--no-analysis"]).start()
        try:
            # ada must be the only admin (the last-admin refusal is part of the flow): the test
            # helper's own admin becomes a viewer and the checks below use a token of ada's
            run([GRIDSENSE, "user", "set-role", "gs-test-admin", "viewer"] + srv.cli_args())
            p = run([GRIDSENSE, "token", "create", ADMIN, "--name", "integ checks"] + srv.cli_args())
            srv.token = p.stdout.strip()
            st, users = srv.json("/api/v1/users")
            check(st == 200 and [u["name"] for u in users["users"] if u["role"] == "admin"] == [ADMIN],
                  "%s is the only admin" % ADMIN)
            tmp = os.path.join(d, "browser")
            os.makedirs(tmp)
            root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
            env = dict(os.environ, GS_SHOTS=browser_setup())
            os.makedirs(env["GS_SHOTS"], exist_ok=True)
            r = subprocess.run(["node", os.path.join(root, "tests", "browser", "admin.mjs"), str(srv.hport),
                                str(srv.tport), SIM, tmp, ADMIN, ADMIN_PW, OPERATOR, OPERATOR_PW],
                               capture_output=True, text=True, timeout=300, cwd=root, env=env)
            print(r.stdout)
            check(r.returncode == 0, "admin.mjs passed: %s" % (r.stderr or r.stdout)[-3000:])
            line = [l for l in r.stdout.splitlines() if l.startswith("PHONE-SECRETS ")]
            check(line, "the browser reported the phone flow's secrets")
            ph = json.loads(line[-1].split(" ", 1)[1])

            # the audit trail as the API has it: every change the browser made, by ada, ok
            st, a = srv.json("/api/v1/audit?user=%s&limit=1000" % ADMIN)
            check(st == 200, "audit list")
            got = {(e["action"], e["target"], e["outcome"]) for e in a["audit"]}
            for action, target in (("terminal.add", "terminal ADM-NEW1"), ("terminal.change", "terminal ADM-NEW1"),
                                   ("terminal.secret", "terminal ADM-NEW1"), ("terminal.remove", "terminal ADM-NEW1"),
                                   ("terminal.add", "terminal ADM-PH1"), ("terminal.secret", "terminal ADM-PH1"),
                                   ("user.add", "user carl"), ("user.role", "user carl"),
                                   ("user.passwd", "user carl"), ("user.remove", "user carl"),
                                   ("user.add", "user dora"), ("user.remove", "user dora")):
                check((action, target, "ok") in got, "audit: %s %s by %s" % (action, target, ADMIN))
            check(("user.role", "user %s" % ADMIN, "failed") in got, "audit: the refused demotion of the last admin")
            check(sum(1 for e in a["audit"] if e["action"] == "token.create" and e["outcome"] == "ok") >= 2 and
                  any(e["action"] == "token.revoke" and e["outcome"] == "ok" for e in a["audit"]),
                  "audit: tokens created and revoked")
            st, a = srv.json("/api/v1/audit?user=%s&outcome=denied" % OPERATOR)
            check(st == 200 and len(a["audit"]) >= 4, "audit: the operator's admin calls were denied (%d)" % len(a["audit"]))
            st, _ = srv.json("/api/v1/terminals/ADM-NEW1")
            check(st == 404, "ADM-NEW1 is removed")
            st, _ = srv.json("/api/v1/users/carl")
            check(st == 404, "carl is removed")

            # the phone flow's terminal: the secret it read first was rotated away, the second works
            c = RawClient(srv.tport)
            t, payload = c.login(ph["id"], bytes.fromhex(ph["old"]))
            c.close()
            check(t == REJECT and reject_reason(payload) == "BAD_AUTH",
                  "the rotated-away secret of %s is refused (%s)" % (ph["id"], t))
            c = RawClient(srv.tport)
            t, payload = c.login(ph["id"], bytes.fromhex(ph["new"]))
            check(t == WELCOME, "the new secret of %s is accepted (%s)" % (ph["id"], t))
            c.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
