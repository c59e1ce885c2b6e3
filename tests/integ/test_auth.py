"""HTTP API authentication and authorisation against the real server (docs/api.md
"Authentication"):

- route x role table: every route `gridsense routes` lists, called without credentials (401
  unless public), with a token of each role (allowed, or 403 below the route's role) and with a
  revoked token (401);
- login sessions: cookie attributes, who am I, logout, a password change or a role change taking
  effect on the next request;
- CSRF: a cookie POST from another Origin (also text/plain, the case that created a command
  before), without Origin/Referer, login from another site: 403; same-site Referer and bearer
  tokens pass; Host not naming the server: 400;
- login rate limit: 429 with Retry-After after 10 failures for a name from one address, while
  the right password from another address still logs in, and the failures are audited;
- the audit trail records every state-changing call with user, address, action, target, outcome;
- no password, token or cookie value ever appears in the server log or in a listing.
"""
import http.client
import json
import subprocess

from gslib import *


def req(port, method, path, body=None, headers=None, src="127.0.0.1"):
    """One request on a fresh connection from address src; returns (status, json-or-text,
    response headers as a lower-case dict)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(src, 0))
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers or {})
    if body is not None and not any(k.lower() == "content-type" for k in h):
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    text = r.read().decode()
    hdrs = {}
    for k, v in r.getheaders():
        hdrs.setdefault(k.lower(), []).append(v)
    c.close()
    try:
        return r.status, json.loads(text), hdrs
    except ValueError:
        return r.status, text, hdrs


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def cli(data, *args, stdin=None):
    p = subprocess.run([GRIDSENSE] + list(args) + (["--data", data] if data else []), input=stdin,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "gridsense %s: %s" % (" ".join(args), p.stderr))
    return p.stdout.strip()


RANK = {"public": 0, "viewer": 1, "operator": 2, "admin": 3}


def concrete(method, pattern):
    """A path for the route: reads name a real terminal, changes name things that do not exist
    (an allowed change then gets 400/404, never a real effect), so every role can be tried."""
    read = method == "GET"
    p = pattern
    if "/terminals/{id}" in p:
        p = p.replace("{id}", "A0001" if read or p.endswith("/commands") else "NOPE-1")
    p = p.replace("/tokens/{id}", "/tokens/0000000000000000")
    p = p.replace("{name}", "nobody-here")
    p = p.replace("{id}", "999999999")
    return p


def main():
    with TempDir() as data:
        provision(data, 1, prefix="A")
        pw = {"vera": "vera-secret-pw-1", "otto": "otto-secret-pw-2", "ada": "ada-secret-pw-3"}
        role = {"vera": "viewer", "otto": "operator", "ada": "admin"}
        for u in pw:
            cli(data, "user", "add", u, "--role", role[u], "--password-stdin", stdin=pw[u] + "\n")
        tok = {u: cli(data, "token", "create", u, "--name", "t-" + u) for u in pw}
        revoked = cli(data, "token", "create", "vera", "--name", "old")
        rid = revoked.split("_")[1]
        cli(data, "token", "revoke", rid)
        secrets_seen = list(pw.values()) + list(tok.values()) + [revoked]

        srv = Server(data).start()
        port = srv.hport
        secrets_seen.append(srv.token)

        # ---- route x role ----
        routes = [l.split() for l in cli(None, "routes").splitlines()]
        check(len(routes) >= 20, "gridsense routes lists the table (%d routes)" % len(routes))
        for method, pattern, need in routes:
            path = concrete(method, pattern)
            body = "{}" if method in ("POST", "PATCH", "PUT") else None
            st, j, _ = req(port, method, path, body)
            if need == "public":
                check(st not in (401, 403), "%s %s without credentials: %d" % (method, path, st))
            else:
                check(st == 401 and j["error"]["code"] == "unauthorized",
                      "%s %s without credentials: 401 (%d)" % (method, path, st))
                st, j, _ = req(port, method, path, body, bearer(revoked))
                check(st == 401 and "revoked" in j["error"]["message"],
                      "%s %s with a revoked token: 401 (%d)" % (method, path, st))
            for u in ("vera", "otto", "ada"):
                st, j, _ = req(port, method, path, body, bearer(tok[u]))
                if RANK[role[u]] >= RANK[need]:
                    check(st not in (401, 403), "%s %s as %s: allowed (%d %s)"
                          % (method, path, role[u], st, j if st >= 400 else ""))
                else:
                    check(st == 403 and j["error"]["code"] == "forbidden",
                          "%s %s as %s: 403 (%d)" % (method, path, role[u], st))
                if st >= 400:
                    check(isinstance(j, dict) and set(j["error"]) == {"code", "message"},
                          "%s %s: error shape" % (method, path))
        print("ok: %d routes x (none, revoked, viewer, operator, admin) answered by role"
              % len(routes))

        # ---- login sessions ----
        login = json.dumps({"user": "otto", "password": pw["otto"]})
        st, j, h = req(port, "POST", "/api/v1/session", login)
        check(st == 200 and j["user"] == "otto" and j["role"] == "operator", "otto logs in")
        sc = h["set-cookie"][0]
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            check(attr in sc, "session cookie has %s (%s)" % (attr, sc.split(";")[0][:12]))
        check("Secure" not in sc, "no Secure attribute without TLS")
        cookie = sc.split(";")[0]
        check(len(cookie.split("=", 1)[1]) == 43, "cookie value is 256 random bits (43 base64url)")
        secrets_seen.append(cookie.split("=", 1)[1])
        ck = {"Cookie": cookie}
        st, j, _ = req(port, "GET", "/api/v1/session", None, ck)
        check(st == 200 and j == {"user": "otto", "role": "operator", "via": "cookie"},
              "GET /session says who is logged in (%s)" % j)
        st, j, _ = req(port, "POST", "/api/v1/session",
                       json.dumps({"user": "otto", "password": "wrong-password"}))
        check(st == 401 and j["error"]["message"] == "wrong user name or password",
              "wrong password: 401, not saying which was wrong")
        st, j2, _ = req(port, "POST", "/api/v1/session",
                        json.dumps({"user": "no-such-user", "password": "wrong-password"}))
        check(st == 401 and j2 == j, "unknown user: the same answer as a wrong password")

        # ---- CSRF and Host ----
        cmds = "/api/v1/terminals/A0001/commands"

        def ncmds():
            return len(srv.json(cmds)[1]["commands"])

        n0 = ncmds()
        evil = {"Origin": "http://evil.example"}
        st, j, _ = req(port, "POST", cmds, '{"verb":"reboot"}',
                       dict(ck, **evil, **{"Content-Type": "text/plain"}))
        check(st == 403 and j["error"]["code"] == "csrf",
              "text/plain cookie POST from http://evil.example: 403 csrf (%d)" % st)
        st, j, _ = req(port, "POST", cmds, '{"verb":"reboot"}', dict(ck, **evil))
        check(st == 403 and j["error"]["code"] == "csrf", "JSON cookie POST from another site: 403")
        st, j, _ = req(port, "POST", cmds, '{"verb":"reboot"}', ck)
        check(st == 403 and j["error"]["code"] == "csrf",
              "cookie POST with neither Origin nor Referer: 403")
        check(ncmds() == n0, "no command was created by the refused requests")
        same = {"Origin": "http://127.0.0.1:%d" % port}
        st, j, _ = req(port, "POST", cmds, '{"verb":"reboot"}',
                       dict(ck, **same, **{"Content-Type": "text/plain"}))
        check(st == 415, "text/plain POST from the same site: 415 (%d)" % st)
        st, j, _ = req(port, "POST", cmds, '{"verb":"get-status"}',
                       dict(ck, Referer="http://127.0.0.1:%d/app/fleet" % port))
        check(st == 201, "cookie POST with this server's Referer: created (%d)" % st)
        st, j, _ = req(port, "POST", cmds, '{"verb":"get-status"}', bearer(tok["otto"]))
        check(st == 201, "bearer POST without Origin: created (%d)" % st)
        check(ncmds() == n0 + 2, "exactly the two allowed commands exist")
        st, j, _ = req(port, "GET", "/api/v1/terminals", None, dict(bearer(tok["vera"]),
                                                                   Host="evil.example"))
        check(st == 400 and j["error"]["code"] == "bad_host", "Host evil.example: 400 bad_host")
        st, j, _ = req(port, "POST", "/api/v1/session", login, evil)
        check(st == 403 and j["error"]["code"] == "csrf", "login from another site: 403")
        print("ok: CSRF (Origin/Referer) and Host checks")

        # ---- logout, password and role changes ----
        st, j, h = req(port, "DELETE", "/api/v1/session", None, dict(ck, **same))
        check(st == 200 and "Max-Age=0" in h["set-cookie"][0], "logout clears the cookie")
        st, j, _ = req(port, "GET", "/api/v1/session", None, ck)
        check(st == 401, "the session ended with logout (%d)" % st)
        st, j, h = req(port, "POST", "/api/v1/session", login)
        ck = {"Cookie": h["set-cookie"][0].split(";")[0]}
        secrets_seen.append(ck["Cookie"].split("=", 1)[1])
        st, j, _ = req(port, "PATCH", "/api/v1/users/otto", '{"role":"viewer"}', bearer(tok["ada"]))
        check(st == 200 and j["role"] == "viewer", "admin demotes otto to viewer")
        st, j, _ = req(port, "POST", cmds, '{"verb":"get-status"}', dict(ck, **same))
        check(st == 403 and j["error"]["code"] == "forbidden",
              "otto's open session follows the new role at once (%d)" % st)
        newpw = "otto-new-password-4"
        secrets_seen.append(newpw)
        cli(data, "user", "passwd", "otto", "--password-stdin", stdin=newpw + "\n")
        st, j, _ = req(port, "GET", "/api/v1/session", None, ck)
        check(st == 401, "a new password (CLI, other process) ends the open sessions")
        st, j, _ = req(port, "POST", "/api/v1/users",
                       '{"name":"carl","role":"viewer"}', bearer(tok["ada"]))
        check(st == 201 and len(j["password"]) == 20, "admin adds a user; a password is generated")
        secrets_seen.append(j["password"])
        st, j, _ = req(port, "POST", "/api/v1/session",
                       json.dumps({"user": "carl", "password": j["password"]}))
        check(st == 200 and j["role"] == "viewer", "the new user logs in with it")
        st, j, _ = req(port, "PATCH", "/api/v1/users/gs-test-admin", '{"role":"viewer"}',
                       bearer(tok["ada"]))
        check(st == 200, "the test harness's admin demoted: ada is the last admin")
        st, j, _ = req(port, "DELETE", "/api/v1/users/ada", None, bearer(tok["ada"]))
        check(st == 409 and j["error"]["code"] == "conflict", "the last admin cannot be removed")
        st, j, _ = req(port, "PATCH", "/api/v1/users/ada", '{"role":"operator"}', bearer(tok["ada"]))
        check(st == 409, "nor demoted (%d)" % st)
        st, j, _ = req(port, "PATCH", "/api/v1/users/gs-test-admin", '{"role":"admin"}',
                       bearer(tok["ada"]))
        check(st == 200, "admin restored")
        st, j, _ = req(port, "POST", "/api/v1/tokens", '{"name":"api-made","expires_days":1}',
                       bearer(tok["ada"]))
        check(st == 201 and j["token"].startswith("gst_") and j["expires"], "token via the API")
        secrets_seen.append(j["token"])
        st, j3, _ = req(port, "GET", "/api/v1/session", None, bearer(j["token"]))
        check(st == 200 and j3["user"] == "ada", "the API-made token works")
        st, _, _ = req(port, "DELETE", "/api/v1/tokens/" + j["id"], None, bearer(tok["ada"]))
        check(st == 200, "token revoked via the API")
        st, _, _ = req(port, "GET", "/api/v1/session", None, bearer(j["token"]))
        check(st == 401, "the revoked token stops working at once")
        print("ok: logout, role and password changes and token revocation apply at once")

        # ---- login rate limit ----
        bad = json.dumps({"user": "vera", "password": "not-her-password"})
        for i in range(10):
            st, _, _ = req(port, "POST", "/api/v1/session", bad)
            check(st == 401, "failure %d for vera: 401 (%d)" % (i + 1, st))
        st, j, h = req(port, "POST", "/api/v1/session",
                       json.dumps({"user": "vera", "password": pw["vera"]}))
        check(st == 429 and int(h["retry-after"][0]) > 0,
              "after 10 failures vera from this address: 429 with Retry-After (%d)" % st)
        st, j, _ = req(port, "POST", "/api/v1/session",
                       json.dumps({"user": "vera", "password": pw["vera"]}), src="127.0.0.2")
        check(st == 200, "vera from another address is not locked out (%d)" % st)
        st, j, _ = req(port, "POST", "/api/v1/session",
                       json.dumps({"user": "carl", "password": "wrong-one-here"}))
        check(st == 401, "another name from the first address is still checked (%d)" % st)
        print("ok: login rate limit per name and address, without locking out the user")

        # ---- audit ----
        st, j, _ = req(port, "GET", "/api/v1/audit?limit=1000", None, bearer(tok["ada"]))
        check(st == 200, "audit readable by admin")
        rows = j["audit"]
        def has(action, outcome, **kw):
            return any(r["action"] == action and r["outcome"] == outcome and
                       all(r.get(k) == v for k, v in kw.items()) for r in rows)
        for action, outcome, kw in [
                ("login", "ok", {"user": "otto", "remote": "127.0.0.1"}),
                ("login", "failed", {"user": "vera"}),
                ("login", "failed", {"user": "no-such-user"}),
                ("logout", "ok", {"user": "otto"}),
                ("command.create", "ok", {"user": "otto", "target": "terminal A0001"}),
                ("user.role", "ok", {"user": "ada", "target": "user otto"}),
                ("user.passwd", "ok", {"remote": "local"}),
                ("user.add", "ok", {"user": "ada", "target": "user carl"}),
                ("user.add", "ok", {"remote": "local", "target": "user vera"}),
                ("token.create", "ok", {"user": "ada"}),
                ("token.revoke", "ok", {"user": "ada"}),
                ("token.revoke", "ok", {"remote": "local"}),
                ("request", "denied", {"user": "otto"}),
                ("terminal.add", "ok", {"remote": "local", "target": "terminals A0001..A0001"})]:
            check(has(action, outcome, **kw), "audit has %s/%s %s" % (action, outcome, kw))
        check(sum(1 for r in rows if r["action"] == "login" and r["outcome"] == "failed"
                  and r["user"] == "vera") >= 10, "every failed login audited")
        st, j, _ = req(port, "GET", "/api/v1/audit?action=user.&limit=2", None, bearer(tok["ada"]))
        check(st == 200 and len(j["audit"]) == 2 and j["next_before"], "audit paging")
        st, j2, _ = req(port, "GET", "/api/v1/audit?action=user.&before=%d" % j["next_before"],
                        None, bearer(tok["ada"]))
        check(all(r["id"] < j["next_before"] for r in j2["audit"]), "audit next page")
        out = cli(data, "audit", "list", "--action", "login", "--outcome", "failed")
        check("vera" in out, "gridsense audit list shows the failed logins")
        print("ok: audit trail (%d rows)" % len(rows))

        # ---- metrics on loopback, secrets nowhere ----
        st, txt, _ = req(port, "GET", "/metrics")
        check(st == 200 and "gridsense_" in txt, "/metrics public while bound to loopback")
        st, j, _ = req(port, "GET", "/api/v1/users", None, bearer(tok["ada"]))
        st2, j2, _ = req(port, "GET", "/api/v1/tokens", None, bearer(tok["ada"]))
        listing = json.dumps(j) + json.dumps(j2)
        check("argon2" not in listing and "pwhash" not in listing, "no password hash is listed")
        srv.stop()
        log = srv.log()
        for s in secrets_seen:
            check(s not in log and s not in listing, "secret %s... not in the log or listings"
                  % s[:4])
        print("ok: %d passwords, tokens and cookies never in the server log" % len(secrets_seen))


if __name__ == "__main__":
    main()
