"""Several `gridsense serve` nodes on one PostgreSQL database (issue 10 section 6; docs/operations.md
"Several nodes"): two nodes, A and B, share a throwaway cluster (pgcluster.py) through
[store] backend = postgresql and [cluster] settings. B's data directory is a copy of A's (the
same master key: a secret sealed by one node must open on the other).

  - a terminal logs in on A: B's API lists it online on node A (from B's copy of the live list);
  - it logs in again on B: A's session ends (BYE REPLACED, connection closed) through the
    database's notification, and both APIs list it online on node B;
  - it logs in on A once more (B's session ends the same way); a command created through B's
    API reaches the terminal on A, woken by the command notification;
  - /metrics of both nodes count the displacements, the database is up and both nodes alive;
  - a node stopped cleanly removes its sessions: the other lists the terminal offline;
  - failover: A restarted (same node id), four simulated terminals stream through a small TCP
    balancer that spreads connections over A and B; a command created through A's API for a
    terminal on B is done; A is SIGKILLed: its terminals reconnect through the balancer to B,
    B lists all four online on B, the simulator's every block is acknowledged and PostgreSQL
    holds every block of every terminal exactly once with no gap;
  - database away: PostgreSQL crashes under B with a terminal connected; B reports the database
    down, keeps the terminal's session, logs one line when the database is lost and one when it
    is back, and claims the session again (the crash emptied the unlogged tables).
"""
import os
import shutil
import socket
import struct
import threading
import time

from gslib import *
import pgcluster


def config(path, url, node):
    with open(path, "w") as f:
        f.write("[store]\nbackend = postgresql\nurl = %s\n\n[cluster]\nnode_id = %s\n"
                "heartbeat = 1\nstale = 5\n" % (url, node))
    os.chmod(path, 0o600)
    return path


def term(srv, tid):
    st, j = srv.json("/api/v1/terminals/%s" % tid)
    check(st == 200, "GET /terminals/%s on %s: %d %r" % (tid, srv.node, st, j))
    return j


def listed_on(srv, tid, node):
    """True once srv's API shows tid online on node (None: offline)."""
    j = term(srv, tid)
    if node is None:
        return not j["online"] and j["node"] is None
    return j["online"] and j["node"] == node


def recv_type(c, want, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        t, p = c.recv_frame(timeout=left)
        if t is None or t == want:
            return t, p


def login(port, tid, secret):
    c = RawClient(port)
    t, p = c.login(tid, secret)
    check(t == WELCOME, "login of %s on port %d: frame %r %r" % (tid, port, t, p))
    return c


def main():
    with pgcluster.PgCluster(fast=True) as pg, TempDir() as tmp:
        url = pg.create_db("gs_nodes")
        da, db_ = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        os.makedirs(da, mode=0o700)
        cfa = config(os.path.join(tmp, "a.ini"), url, "A")
        cfb = config(os.path.join(tmp, "b.ini"), url, "B")
        secrets = read_secrets(provision_cfg(da, cfa))
        tid = sorted(secrets)[0]
        # B: the same master key (and, on SQLite, the same terminal rows)
        shutil.copytree(da, db_)
        a = Server(da, extra=["--config", cfa, "--no-analysis"]).start()
        b = Server(db_, extra=["--config", cfb, "--no-analysis"]).start()
        a.node, b.node = "A", "B"
        try:
            wait_for(lambda: a.metric("gridsense_cluster_db_up") == 1 and
                     b.metric("gridsense_cluster_db_up") == 1, 30, "both nodes connected")
            check(term(b, tid)["online"] is False and term(b, tid)["node"] is None,
                  "offline before any login")

            # 1. on A: B's API lists it online on A
            c1 = login(a.tport, tid, secrets[tid])
            wait_for(lambda: listed_on(b, tid, "A"), 30, "B lists %s online on A" % tid)
            check(listed_on(a, tid, "A"), "A lists it online here")
            jb = term(b, tid)
            check(jb["remote"] and jb["remote"].startswith("127.0.0.1:"),
                  "B shows A's remote address: %r" % jb["remote"])
            st, lst = b.json("/api/v1/terminals?online=true")
            check(st == 200 and [t["id"] for t in lst["terminals"]] == [tid],
                  "B's online filter counts A's terminal: %r" % lst)

            # 2. the same terminal on B: A's session is displaced
            c2 = login(b.tport, tid, secrets[tid])
            t, p = recv_type(c1, BYE)
            check(t == BYE and reject_reason(p) == "REPLACED", "A sent BYE REPLACED: %r %r" % (t, p))
            check(c1.closed(20), "A closed the displaced session")
            wait_for(lambda: listed_on(a, tid, "B") and listed_on(b, tid, "B"), 30,
                     "both list %s on B" % tid)
            check(b.metric("gridsense_cluster_displacements_total") == 1, "B displaced one")
            check(a.metric("gridsense_cluster_displaced_total") == 1, "A lost one")

            # 3. back on A; a command created through B reaches it there
            c3 = login(a.tport, tid, secrets[tid])
            t, p = recv_type(c2, BYE)
            check(t == BYE and reject_reason(p) == "REPLACED", "B sent BYE REPLACED")
            check(c2.closed(20), "B closed the displaced session")
            wait_for(lambda: listed_on(b, tid, "A"), 30, "B lists %s on A again" % tid)
            st, cmd = b.json("/api/v1/terminals/%s/commands" % tid, "POST",
                             json.dumps({"verb": "get-status"}))
            check(st in (200, 201, 202), "POST command on B: %d %r" % (st, cmd))
            t, p = recv_type(c3, COMMAND, 30)
            check(t == COMMAND, "the command reached the terminal on A")
            cid = struct.unpack_from("<Q", p, 0)[0]
            check(cid == cmd["id"], "the command created on B: %d vs %r" % (cid, cmd))
            check(a.metric("gridsense_cluster_command_wakeups_total") >= 1,
                  "A was woken by the command notification")
            check(a.metric("gridsense_cluster_nodes_alive") == 2, "two nodes alive")

            # 4. A stops cleanly: its session's row goes, B lists the terminal offline
            c3.close()
            a.stop()
            wait_for(lambda: listed_on(b, tid, None), 30, "B lists %s offline" % tid)
            for c in (c1, c2):
                c.close()

            failover(pg, url, da, cfa, b)
            b_before_outage = outage(pg, b, tid, secrets[tid])
        finally:
            a.stop()
            b.stop()
        for s, log in ((a, a.log()), (b, b_before_outage)):
            # (B's store logs its own errors while the database is away, after this point)
            check("ERROR" not in log, "no ERROR in node %s's log:\n%s" % (s.node, log[-3000:]))
            check(url not in s.log(), "the database URL is never logged raw")
    print("ok")


class Balancer:
    """A TCP balancer for the test (HAProxy's role): each new connection goes to the next
    backend in turn that accepts it; bytes are copied both ways until either side closes."""

    def __init__(self, ports):
        self.ports = list(ports)
        self.next = 0
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            up = None
            for i in range(len(self.ports)):
                port = self.ports[(self.next + i) % len(self.ports)]
                try:
                    up = socket.create_connection(("127.0.0.1", port), timeout=5)
                    up.settimeout(None)
                    self.next = (self.next + i + 1) % len(self.ports)
                    break
                except OSError:
                    up = None
            if up is None:
                c.close()
                continue
            for a, b in ((c, up), (up, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.ls.close()


def failover(pg, url, da, cfa, b):
    """Terminals spread over A and B by the balancer; A is killed; they move to B."""
    secrets_f = os.path.join(da, "secrets-F.txt")
    run([GRIDSENSE, "terminal", "add", "--count", "4", "--prefix", "F", "--secrets-out", secrets_f,
         "--data", da, "--config", cfa])
    a = Server(da, extra=["--config", cfa, "--no-analysis"]).start()  # A again, same node id
    a.node = "A"
    lb = Balancer([a.tport, b.tport])
    try:
        wait_for(lambda: a.metric("gridsense_cluster_db_up") == 1, 30, "A connected again")
        sp = sim_start(lb.port, secrets_f, 4, 6, ["--seed", "7", "--drain", "60"])
        ids = ["F%04d" % i for i in range(1, 5)]

        def where():
            return {t: term(b, t)["node"] for t in ids}

        wait_for(lambda: None not in where().values() and set(where().values()) == {"A", "B"},
                 30, "the four terminals online, spread over A and B")
        # a command created on A for a terminal on B is delivered by B
        on_b = [t for t, n in where().items() if n == "B"][0]
        st, cmd = a.json("/api/v1/terminals/%s/commands" % on_b, "POST",
                         json.dumps({"verb": "get-status"}))
        check(st == 201, "POST command on A for %s: %d %r" % (on_b, st, cmd))

        def done():
            st, j = a.json("/api/v1/commands/%d" % cmd["id"])
            check(st == 200, "GET /commands/%d on A: %d %r" % (cmd["id"], st, j))
            return j["state"] == "done"

        wait_for(done, 30, "the command created on A done by %s on B" % on_b)
        wait_for(lambda: (a.metric("gridsense_blocks_stored_total") or 0) >= 10, 30,
                 "blocks stored through A")
        on_a = sum(1 for n in where().values() if n == "A")
        a.kill()  # SIGKILL: A's rows stay until B takes its terminals over
        wait_for(lambda: set(where().values()) == {"B"} and all(term(b, t)["online"] for t in ids),
                 60, "every terminal online on B")
        check(b.metric("gridsense_cluster_displacements_total") >= 1 + on_a,
              "B took A's %d terminals over (their rows named A; one displacement before)" % on_a)
        rc, summary, err = sim_finish(sp, timeout=120)
        check(rc == 0, "every block the simulator made was acknowledged: %r %s" % (summary, err[-500:]))
        rows = pg.psql("gs_nodes", "SELECT terminal_id, count(*), count(DISTINCT seq), min(seq),"
                       " max(seq) FROM blocks WHERE terminal_id LIKE 'F%' GROUP BY terminal_id"
                       " ORDER BY terminal_id").split()
        got = {}
        for line in rows:
            f = line.split("|")
            got[f[0]] = tuple(int(x) for x in f[1:])
        check(sorted(got) == ids, "blocks of every terminal: %r" % got)
        for t, (n, nd, lo, hi) in got.items():
            check(n == nd and hi - lo + 1 == n and n > 0,
                  "%s: %d blocks, %d distinct, seq %d..%d: once each, no gap" % (t, n, nd, lo, hi))
    finally:
        lb.close()
        a.stop()


def public_metric(srv, name):
    """A metric read without a token (the token check would need the database)."""
    st, txt = srv.http("/metrics", auth=False)
    check(st == 200, "/metrics: %d" % st)
    for line in txt.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def outage(pg, b, tid, secret):
    c = login(b.tport, tid, secret)
    try:
        wait_for(lambda: listed_on(b, tid, "B"), 30, "%s online on B" % tid)
        before = b.log()
        pg.crash()
        wait_for(lambda: public_metric(b, "gridsense_cluster_db_up") == 0, 30, "B sees it down")
        check(not c.closed(0.5), "the terminal's session stays open while the database is away")
        pg.restart()
        wait_for(lambda: public_metric(b, "gridsense_cluster_db_up") == 1, 60, "B back")
        # the crash emptied the unlogged tables: B claims its session again (read in the
        # database: after a crash of PostgreSQL the store's own reading connections do not
        # come back yet, so B's API cannot check a token; see the report of this work)
        wait_for(lambda: pg.psql("gs_nodes", "SELECT node_id FROM gs_live WHERE terminal_id = '%s'"
                                 % tid).strip() == "B", 30, "%s claimed again on B" % tid)
        wait_for(lambda: public_metric(b, "gridsense_cluster_terminals_live") == 1, 30,
                 "B's copy of the live list refreshed")
        log = b.log()[len(before):]
        lost = [l for l in log.splitlines() if "[cluster] database lost" in l]
        back = [l for l in log.splitlines() if "[cluster] database back" in l]
        check(len(lost) == 1 and len(back) == 1,
              "one line when lost, one when back: %r %r" % (lost, back))
        check("[cluster] resynchronised: 1 session(s) claimed" in log, "B claimed its session again")
    finally:
        c.close()
    return before


def provision_cfg(data, cfg):
    """One terminal, provisioned through node A's configuration (its store)."""
    secrets = os.path.join(data, "secrets.txt")
    run([GRIDSENSE, "terminal", "add", "--count", "1", "--prefix", "N", "--secrets-out", secrets,
         "--data", data, "--config", cfg])
    return secrets


if __name__ == "__main__":
    main()
