"""A throwaway PostgreSQL cluster for tests (docs/decisions/0007-postgresql-backend.md, section 8).

    with PgCluster() as pg:              # initdb + pg_ctl start in a temp dir, Unix socket only
        url = pg.create_db("t1")         # postgresql:///t1?host=<socket dir>&port=...&user=gridsense
        pg.psql("t1", "SELECT 1")
    # stopped and removed here, also when the test failed (and at interpreter exit, on SIGTERM)

The server binaries come from Debian's `postgresql` packages under /usr/lib/postgresql/*/bin
(PATH is not used: Debian puts only wrappers there). initdb refuses to run as root, so when this
runs as root (CI does) the cluster belongs to the unprivileged `postgres` user the package creates
and every server program runs through `runuser -u postgres --`; otherwise it runs as ourselves.
Clients (psql, the C tests) connect through the socket with trust authentication: the socket
lives in a 0700 directory of the cluster's owner, so only that user and root can reach it.

`fast=True` turns off fsync, synchronous_commit and full_page_writes: fine for tests that do not
kill the server. `no_fsync=True` turns off only fsync and full_page_writes: a COMMIT still
reaches the kernel before it returns, so committed data survives a SIGKILL of the server (not a
power cut); for crash tests on a busy machine. The default keeps PostgreSQL's safe settings.

Command line, for running a C test binary against a cluster by hand:
    python3 tests/integ/pgcluster.py run -- build/tests/test_sql     # GS_PG_URL set for it
"""

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SUPERUSER = "gridsense"
PORT = 5432  # only names the socket file (.s.PGSQL.5432) in our own directory: no clash


def find_bindir():
    """The bin directory of the newest PostgreSQL installed from Debian's packages."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bindir = os.path.dirname(initdb)
        ver = os.path.basename(os.path.dirname(bindir))
        if os.access(os.path.join(bindir, "pg_ctl"), os.X_OK):
            try:
                key = tuple(int(x) for x in ver.split("."))
            except ValueError:
                key = (0,)
            found.append((key, bindir))
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql/*/bin "
                           "(apt-get install postgresql; scripts/deps.sh does)")
    return max(found)[1]


_LIVE = []


def _stop_all():
    for c in list(_LIVE):
        c.stop()


atexit.register(_stop_all)


def _alive(pid):
    """True while pid is a running process (a zombie waiting for its reaper counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(ppid):
    """Pids whose parent is ppid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def reap_orphans(base):
    """Stops and removes clusters left in base by test processes that died without cleaning
    up (SIGKILL, OOM): those whose owner.pid names a process that no longer exists. A cluster
    being set up (no owner.pid yet) or of a live process is left alone."""
    for d in glob.glob(os.path.join(base, "gs-pg-*")):
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                owner = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        try:
            with open(os.path.join(d, "data", "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            pid = None
        if pid and _alive(pid):
            for p in [pid] + _children(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        shutil.rmtree(d, ignore_errors=True)


def _on_sigterm(signum, frame):
    # ctest kills a test that timed out with SIGTERM: leave through atexit, which stops the cluster
    raise SystemExit(128 + signum)


class PgCluster:
    def __init__(self, fast=False, no_fsync=False, log_statements=False):
        self.fast = fast
        self.no_fsync = no_fsync
        self.log_statements = log_statements
        self.bindir = find_bindir()
        self.dir = None
        self.started = False
        self.start_seconds = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run the "
                                   "server as (the Debian postgresql package creates it)")
            self.owner = (pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        else:
            self.owner = None
            self.prefix = []

    # -- life cycle --

    def start(self):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
        t0 = time.monotonic()
        # /tmp rather than a TMPDIR that may sit under root's 0700 home, where `postgres` cannot
        # reach; short, because a Unix socket path is limited to 107 bytes.
        base = "/tmp" if os.geteuid() == 0 else tempfile.gettempdir()
        reap_orphans(base)
        self.dir = tempfile.mkdtemp(prefix="gs-pg-", dir=base)
        _LIVE.append(self)
        # who owns this cluster: a later run stops it if we die without cleaning up (SIGKILL)
        with open(os.path.join(self.dir, "owner.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.log = os.path.join(self.dir, "server.log")
        if self.owner:
            os.chown(self.dir, *self.owner)
        os.chmod(self.dir, 0o700)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", SUPERUSER,
                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        conf = [
            "listen_addresses = ''",
            "unix_socket_directories = '%s'" % self.sock,
            "port = %d" % PORT,
            "max_connections = 40",
            "shared_buffers = 32MB",
            "max_locks_per_transaction = 256",  # partition DDL takes many locks
            "logging_collector = off",
            "log_min_messages = warning",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        elif self.no_fsync:
            # COMMIT still waits for its WAL to be written to the kernel: durable across a crash
            # of PostgreSQL's processes (what the crash tests do), not across one of the machine
            conf += ["fsync = off", "full_page_writes = off"]
        if self.log_statements:
            conf += ["log_statement = 'all'"]
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# gridsense test cluster (tests/integ/pgcluster.py)\n")
            f.write("\n".join(conf) + "\n")
        # The log file is created by the server's user (pg_ctl -l), inside our directory.
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log, "-w",
                   "-t", "60", "-s", "start"])
        self.started = True
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self):
        """Stops the server (immediate: nothing in it is worth a checkpoint) and removes the
        directory. Safe to call twice and after a failed start."""
        if self.dir is None:
            return
        try:
            pid = self.postmaster_pid()
            if self.started or pid:
                self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m",
                           "immediate", "-w", "-t", "60", "-s", "stop"], check=False)
            # pg_ctl returns when the pid file is gone, a moment before the postmaster exits
            deadline = time.monotonic() + 30
            while pid and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            self.started = False
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            if self in _LIVE:
                _LIVE.remove(self)

    def crash(self):
        """SIGKILLs the postmaster and every backend at once, as a crash of the server would:
        nothing is flushed or checkpointed; restart() then runs PostgreSQL's crash recovery."""
        pid = self.postmaster_pid()
        if not pid:
            raise RuntimeError("no running server to crash")
        victims = [pid] + _children(pid)
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in victims) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = [p for p in victims if _alive(p)]
        if left:
            raise RuntimeError("server processes survived SIGKILL: %r" % left)
        # The new postmaster refuses to start while kill(old pid, 0) succeeds, which it does for
        # a zombie our init has not reaped yet (some container inits never do). A zombie holds
        # no memory and no shared segment: its stale lock files (data dir, socket) can go.
        if os.path.exists("/proc/%d" % pid):
            for lock in (os.path.join(self.data, "postmaster.pid"),
                         os.path.join(self.sock, ".s.PGSQL.%d.lock" % PORT)):
                if os.path.exists(lock):
                    os.unlink(lock)
        self.started = False

    def restart(self):
        """Starts the server again on the same data directory (after stop or crash)."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log, "-w",
                   "-t", "60", "-s", "start"])
        self.started = True

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- clients --

    def url(self, dbname="postgres"):
        """A libpq URI for the database, through our socket."""
        return "postgresql:///%s?host=%s&port=%d&user=%s" % (dbname, self.sock, PORT, SUPERUSER)

    def psql(self, dbname, sql, check=True):
        """Runs SQL with psql (ON_ERROR_STOP); returns its stdout (unaligned, tuples only)."""
        p = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-d", self.url(dbname), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError("psql %r failed (%d): %s" % (sql, p.returncode, p.stderr.strip()))
        return p.stdout

    def create_db(self, name):
        """Creates an empty database and returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError("database name %r" % name)
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return self.url(name)

    def postmaster_pid(self):
        """The server's pid from its pid file, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError, AttributeError):
            return None

    def server_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- internals --

    def _run(self, argv, check=True):
        p = subprocess.run(self.prefix + argv, cwd=self.dir, capture_output=True, text=True,
                           timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s\n%s" % (
                os.path.basename(argv[0]), p.returncode, p.stdout, p.stderr,
                self.server_log()[-2000:]))
        return p


def main(argv):
    if len(argv) < 3 or argv[1] != "run" or "--" not in argv:
        sys.stderr.write("usage: pgcluster.py run [--fast] -- COMMAND ARGS...  "
                         "(runs COMMAND with GS_PG_URL set to a fresh database)\n")
        return 2
    i = argv.index("--")
    fast = "--fast" in argv[2:i]
    with PgCluster(fast=fast) as pg:
        env = dict(os.environ, GS_PG_URL=pg.create_db("gs_run"))
        return subprocess.run(argv[i + 1:], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
