"""Command-line behaviour: --help/--version, clear one-line errors with exit code 2, config file
errors with file:line, provisioning commands, and the HTTP API's read endpoints."""
import json
import os

from gslib import *


def usage_error(args, needle, data=None):
    p = run([GRIDSENSE] + args, check_rc=False)
    lines = [l for l in p.stderr.strip().splitlines() if l]
    check(p.returncode == 2 and len(lines) == 1 and needle in lines[0],
          "`gridsense %s` -> exit 2, one line: %s" % (" ".join(args), lines[0] if lines else "?"))


def main():
    p = run([GRIDSENSE, "--version"])
    check(p.stdout.startswith("gridsense "), "--version prints the version")
    p = run([GRIDSENSE, "serve", "--help"])
    for opt in ["--config", "--data", "--terminals", "--http", "--log-level", "--heartbeat",
                "--ack-window", "--max-per-ip", "--sync", "--port-file"]:
        check(opt in p.stdout, "serve --help documents %s" % opt)
    run([GRIDSENSE, "--help"])
    run([GRIDSENSE, "terminal", "--help"])
    run([GRIDSENSE, "command", "--help"])
    usage_error(["frobnicate"], "unknown command")
    usage_error(["serve", "--bogus", "1"], "unknown option --bogus")
    usage_error(["serve", "--terminals", "nonsense"], "ADDR:PORT")
    usage_error(["serve", "--http", "127.0.0.1:99999"], "ADDR:PORT")
    usage_error(["serve", "--heartbeat", "1"], "heartbeat")
    usage_error(["serve", "--log-level", "loud"], "log_level")
    usage_error(["serve", "--sync", "maybe"], "store.sync")
    with TempDir() as d:
        cfg = os.path.join(d, "bad.ini")
        with open(cfg, "w") as f:
            f.write("[server]\ndata = %s\n\n[terminals]\nack_window = lots\n" % d)
        usage_error(["serve", "--config", cfg], "bad.ini:5: terminals.ack_window")
        with open(cfg, "w") as f:
            f.write("[server]\nfavourite_colour = blue\n")
        usage_error(["serve", "--config", cfg], "unknown setting 'favourite_colour'")
        with open(cfg, "w") as f:
            f.write("[nosuch]\nx = 1\n")
        usage_error(["serve", "--config", cfg], "unknown section [nosuch]")
        usage_error(["serve", "--config", os.path.join(d, "missing.ini")], "cannot read config file")

        # provisioning
        p = run([GRIDSENSE, "terminal", "add", "FEEDER-7", "--name", "Feeder 7",
                 "--location", "47.5,8.7", "--nominal-hz", "60", "--vt-ratio", "100",
                 "--ct-ratio", "400", "--data", d])
        tid, secret = p.stdout.split()
        check(tid == "FEEDER-7" and len(secret) == 64, "terminal add prints id and a 64-hex secret")
        p = run([GRIDSENSE, "terminal", "add", "FEEDER-7", "--data", d], check_rc=False)
        check(p.returncode == 1 and "exists" in p.stderr, "adding an existing id fails clearly")
        usage_error(["terminal", "add", "bad id!", "--data", d], "invalid terminal id")
        usage_error(["terminal", "add", "X", "--nominal-hz", "55", "--data", d], "50 or 60")
        usage_error(["terminal", "add", "X", "--location", "91,0", "--data", d], "--location")
        p = run([GRIDSENSE, "terminal", "rotate-secret", "FEEDER-7", "--data", d])
        check(p.stdout.split()[1] != secret, "rotate-secret prints a new secret")
        sec = os.path.join(d, "fleet.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "25", "--prefix", "F", "--secrets-out", sec,
             "--data", d])
        s = read_secrets(sec)
        check(len(s) == 25 and "F0001" in s and "F0025" in s, "fleet add writes 25 secrets")
        check(oct(os.stat(sec).st_mode & 0o777) == "0o600", "secrets file is private (0600)")
        p = run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "G", "--secrets-out",
                 sec, "--data", d], check_rc=False)
        check(p.returncode == 1 and "--force" in p.stderr, "existing secrets file is not overwritten")
        sec2 = os.path.join(d, "fleet2.txt")
        p = run([GRIDSENSE, "terminal", "add", "--count", "30", "--prefix", "F", "--secrets-out",
                 sec2, "--data", d], check_rc=False)
        check(p.returncode == 1 and "F0001" in p.stderr and not os.path.exists(sec2),
              "fleet add that collides adds nothing and leaves no secrets file")
        p = run([GRIDSENSE, "terminal", "list", "--json", "--data", d])
        rows = [json.loads(l) for l in p.stdout.splitlines()]
        f7 = [r for r in rows if r["id"] == "FEEDER-7"][0]
        check(len(rows) == 26 and f7["nominal_hz"] == 60 and f7["ct_ratio"] == 400,
              "terminal list --json shows all 26 with their settings")
        run([GRIDSENSE, "terminal", "remove", "F0003", "--data", d])
        p = run([GRIDSENSE, "terminal", "remove", "F0003", "--data", d], check_rc=False)
        check(p.returncode == 1 and "no terminal" in p.stderr, "removing a missing terminal fails clearly")

        # a second server on a busy port fails with a clear message
        srv = Server(d).start()
        try:
            with TempDir() as d2:  # its own data dir: the running server holds d's lock
                p = run([GRIDSENSE, "serve", "--data", d2, "--terminals",
                         "127.0.0.1:%d" % srv.tport, "--http", "127.0.0.1:0"], check_rc=False,
                        timeout=30)
            check(p.returncode == 1 and "cannot listen" in p.stderr, "busy terminal port: clear error")
            p = run([GRIDSENSE, "serve", "--data", d, "--terminals", "127.0.0.1:0",
                     "--http", "127.0.0.1:0"], check_rc=False, timeout=30)
            check(p.returncode == 1 and "in use by a running gridsense server" in p.stderr,
                  "a second server on the same data dir: clear error")
            st, j = srv.json("/api/v1/health")
            check(st == 200 and j["status"] == "ok", "health endpoint")
            st, j = srv.json("/api/v1/terminals")
            check(st == 200 and len(j["terminals"]) == 25, "terminals endpoint lists all provisioned")
            t = [x for x in j["terminals"] if x["id"] == "FEEDER-7"][0]
            for k in ["id", "name", "online", "remote", "connected_since", "last_seen", "frames",
                      "blocks", "bytes", "reconnects", "status", "location", "durable_seq"]:
                check(k in t, "terminal JSON has %s" % k)
            check(t["name"] == "Feeder 7" and t["location"]["lat"] == 47.5 and not t["online"],
                  "terminal JSON carries name, location and online state")
            st, j = srv.json("/api/v1/terminals/FEEDER-7")
            check(st == 200 and j["id"] == "FEEDER-7", "single terminal endpoint")
            st, j = srv.json("/api/v1/terminals/NOPE")
            check(st == 404 and j["error"]["code"] == "not_found", "unknown terminal -> 404 JSON error")
            st, j = srv.json("/api/v1/terminals/%2e%2e")
            check(st == 404, "odd id -> 404")
            st, j = srv.json("/api/v1/nothing")
            check(st == 404, "unknown path -> 404")
            st, j = srv.json("/api/v1/terminals", "PUT", "{}")
            check(st == 405, "wrong method -> 405")
            st, txt = srv.http("/metrics")
            ok = all(l.startswith("#") or len(l.split(" ")) == 2 for l in txt.splitlines() if l)
            check(st == 200 and ok and "gridsense_connections_open" in txt,
                  "metrics in Prometheus text format")
        finally:
            check(srv.stop() == 0, "server exits 0")


if __name__ == "__main__":
    main()
