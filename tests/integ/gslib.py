"""Helpers for gridsense integration tests: start the real binaries on loopback with OS-chosen
ports and temp dirs, provision terminals, run the simulator, read the database, and speak raw
GSTP from Python (an independent encoder, so the tests do not trust the C codec blindly)."""

import hmac
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import urllib.error

BUILD = os.environ.get("GS_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
GRIDSENSE = os.path.join(BUILD, "gridsense")
SIM = os.path.join(BUILD, "gridsense-sim")
_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SANITIZED = os.environ.get("GS_SANITIZED") == "1"


_SERVERS = []

# GS_API_RECORD=FILE: every Server.http() request appends one JSON line {method, path, status,
# content_type, body, request} to FILE, for test_openapi.py to validate the answers against
# docs/openapi.json (tests/integ/integ.cmake gives each test its own file). The file is emptied
# once per test process (not by child processes, which inherit GS_API_RECORD_OWNER).
_RECORD = os.environ.get("GS_API_RECORD")
_RECORD_LOCK = threading.Lock()
if _RECORD and not os.environ.get("GS_API_RECORD_OWNER"):
    os.environ["GS_API_RECORD_OWNER"] = str(os.getpid())
    os.makedirs(os.path.dirname(os.path.abspath(_RECORD)), exist_ok=True)
    open(_RECORD, "w").close()


def _record(method, path, status, content_type, body, request):
    if not _RECORD:
        return
    line = (json.dumps({"method": method, "path": path, "status": status,
                        "content_type": content_type, "body": body, "request": request})
            + "\n").encode()
    with _RECORD_LOCK:  # threads of one test; O_APPEND and one whole line per write
        fd = os.open(_RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while line:
                line = line[os.write(fd, line):]
        finally:
            os.close(fd)


def _reap_servers():
    """At exit (a failed check, an exception): no server of this test outlives it."""
    for srv in _SERVERS:
        if srv.proc and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


import atexit  # noqa: E402
atexit.register(_reap_servers)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    for srv in _SERVERS:
        lines = srv.log().splitlines()
        print("---- last lines of %s ----" % srv.log_path, file=sys.stderr)
        for l in lines[-60:]:
            print(l, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def wait_for(pred, timeout, what):
    """Polls pred() until true or the bounded timeout passes (then fails the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    fail("timed out after %.0f s waiting for %s" % (timeout, what))


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="gs-integ-")

    def __enter__(self):
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


def run(args, check_rc=True, timeout=120, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        fail("%s exited %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


def provision(data, count, prefix="T", secrets=None):
    secrets = secrets or os.path.join(data, "secrets-%s.txt" % prefix)
    run([GRIDSENSE, "terminal", "add", "--count", str(count), "--prefix", prefix,
         "--secrets-out", secrets, "--data", data])
    return secrets


def read_secrets(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            i, s = line.split()
            out[i] = bytes.fromhex(s)
    return out


_TOKENS = {}  # data directory -> admin token made there


class Server:
    """The real `gridsense serve` on 127.0.0.1 with port 0 and a port file."""

    def __init__(self, data, extra=(), log_level="info", tport=0, hport=0, mms=False, mport=0):
        self.data = data
        self.want_tport = tport
        self.want_hport = hport
        # mms=True: the MMS server on 127.0.0.1:mport (0: any free port, read back as self.mport)
        self.mms = mms
        self.want_mport = mport
        self.mport = None
        self.extra = list(extra)
        self.log_level = log_level
        self.proc = None
        self.log_path = os.path.join(data, "server-%d.log" % int(time.time() * 1000))
        _SERVERS.append(self)

    def start(self, timeout=30):
        pf = os.path.join(self.data, "ports.json")
        if os.path.exists(pf):
            os.unlink(pf)
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [GRIDSENSE, "serve", "--data", self.data, "--terminals", "127.0.0.1:%d" % self.want_tport,
             "--http", "127.0.0.1:%d" % self.want_hport, "--port-file", pf, "--log-level", self.log_level]
            + (["--mms", "127.0.0.1:%d" % self.want_mport] if self.mms else [])
            + self.extra, stdout=self.logf, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                fail("server exited early (%d); log:\n%s" % (self.proc.returncode, self.log()))
            return os.path.exists(pf)

        wait_for(ready, timeout, "server port file")
        ports = json.load(open(pf))
        self.tport, self.hport = ports["terminals"], ports["http"]
        self.mport = ports.get("mms")
        # The admin token every request of the tests uses (made once per data directory, now,
        # before a test may hold the database locked).
        self.token = _TOKENS.get(self.data) or self.make_token()
        _TOKENS[self.data] = self.token
        return self

    def log(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("server did not stop within %d s after signal %d" % (timeout, sig))
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.logf.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()

    def cli_args(self):
        """--data and --config as the server got them, for admin commands beside it."""
        args = ["--data", self.data]
        if "--config" in self.extra:
            args += ["--config", self.extra[self.extra.index("--config") + 1]]
        return args

    def make_token(self, user="gs-test-admin", role="admin"):
        """An API token for a new user of that role (gridsense user add / token create)."""
        base, n = user, 1
        while True:
            p = subprocess.run([GRIDSENSE, "user", "add", user, "--role", role] + self.cli_args(),
                               capture_output=True, text=True, timeout=120)
            if p.returncode != 0 and "already exists" in p.stderr and n < 50:
                n += 1  # e.g. a database copied from another test's server
                user = "%s-%d" % (base, n)
                continue
            break
        check(p.returncode == 0, "user add %s: %s" % (user, p.stderr))
        p = subprocess.run([GRIDSENSE, "token", "create", user] + self.cli_args(),
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 0 and p.stdout.startswith("gst_"), "token create: %s" % p.stderr)
        return p.stdout.strip()

    def http(self, path, method="GET", body=None, token=None, auth=True, headers=None):
        """One request; by default authenticated as an admin (a token made on first use)."""
        hdrs = dict(headers or {})
        if auth and token is None:
            if not getattr(self, "token", None):
                self.token = self.make_token()
            token = self.token
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.hport, path), method=method,
                                     data=body.encode() if isinstance(body, str) else body,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                st, ctype, txt = r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            st, ctype, txt = e.code, e.headers.get("Content-Type"), e.read().decode()
        _record(method, path, st, ctype, txt,
                body.decode(errors="replace") if isinstance(body, bytes) else body)
        return st, txt

    def json(self, path, method="GET", body=None, **kw):
        st, txt = self.http(path, method, body, **kw)
        return st, json.loads(txt)

    def metric(self, name):
        st, txt = self.http("/metrics")
        total = 0.0
        found = False
        for line in txt.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        return total if found else None


def sim(server_port, secrets, terminals, duration, extra=(), timeout=300):
    """Runs gridsense-sim to completion and returns (exit code, summary dict, stderr)."""
    args = [SIM, "--server", "127.0.0.1:%d" % server_port, "--secrets", secrets,
            "--terminals", str(terminals), "--duration", str(duration), "--quiet"] + list(extra)
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    summary = json.loads(lines[-1]) if lines else None
    return p.returncode, summary, p.stderr


def sim_start(server_port, secrets, terminals, duration, extra=()):
    args = [SIM, "--server", "127.0.0.1:%d" % server_port, "--secrets", secrets,
            "--terminals", str(terminals), "--duration", str(duration), "--quiet"] + list(extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sim_finish(p, timeout=300):
    out, err = p.communicate(timeout=timeout)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return p.returncode, (json.loads(lines[-1]) if lines else None), err


def db(data):
    c = sqlite3.connect(os.path.join(data, "gridsense.db"), timeout=30)
    return c


def block_report(data):
    """Per terminal: (count, distinct seqs, min, max). Exactly-once and gap checks use these."""
    c = db(data)
    rows = c.execute("SELECT terminal_id, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) "
                     "FROM blocks GROUP BY terminal_id").fetchall()
    c.close()
    return {r[0]: r[1:] for r in rows}


# ---- raw GSTP (independent Python implementation of docs/protocol.md) ----

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


HELLO, CHALLENGE, AUTH, WELCOME, REJECT, BYE = 1, 2, 3, 4, 5, 6
WAVEFORM, STATUS, EVENT, ACK = 0x10, 0x11, 0x12, 0x13
COMMAND, RESULT, PING, PONG, ERROR = 0x20, 0x21, 0x30, 0x31, 0x3F
REJ_NAMES = {1: "PROTOCOL", 2: "VERSION", 3: "UNKNOWN_ID", 4: "BAD_AUTH", 5: "RATE_LIMIT",
             6: "BUSY", 7: "TIMEOUT", 8: "REPLACED", 9: "SHUTDOWN", 10: "DEAD", 11: "BAD_CONFIG"}


def frame(ftype, payload, version=1, flags=0):
    hdr = struct.pack("<BBBBBBH", 0xC5, 0x47, version, ftype, flags, 0, len(payload))
    hdr += struct.pack("<H", crc32c(hdr) & 0xFFFF)
    return hdr + payload + struct.pack("<I", crc32c(hdr + payload))


def tlv(tag, value):
    return struct.pack("<BH", tag, len(value)) + value


def hello_payload(tid, rate=4000, hz=50, nch=3, vt=None, ct=None):
    """HELLO payload: nch voltage channels 0..nch-1 (UA, UB, UC, ...), optional VT/CT ratios."""
    p = struct.pack("<BBH", 1, 1, 0)
    p += tlv(1, tid.encode()) + tlv(2, b"py-1.0") + tlv(6, struct.pack("<I", rate))
    p += tlv(7, bytes([hz]))
    if vt is not None:
        p += tlv(8, struct.pack("<f", vt))
    if ct is not None:
        p += tlv(9, struct.pack("<f", ct))
    for i in range(nch):
        name = ("UA", "UB", "UC")[i] if i < 3 else "U%d" % i
        p += tlv(12, struct.pack("<BBBBf", i, 1, i % 3 + 1, 1, 0.01) + name.encode())
    return p


def block_payload(seq, t0, rate, nsamples, samples, chunk_index=0, chunk_count=1, first=0, n=None,
                  nch=3):
    n = nsamples if n is None else n
    mask = (1 << nch) - 1
    h = struct.pack("<QqIIHHBBBBBBHHH", seq, t0, rate, mask, nsamples, first, 1, 1, nch,
                    chunk_index, chunk_count, 0, 0, n, 0)
    return h + samples


class RawClient:
    """A minimal terminal over a plain socket, for handshake and garbage tests."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv_frame(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\xC5\x47")
            if i >= 0 and len(self.buf) >= i + 10:
                ln = struct.unpack_from("<H", self.buf, i + 6)[0]
                if len(self.buf) >= i + 14 + ln:
                    ftype = self.buf[i + 3]
                    payload = self.buf[i + 10:i + 10 + ln]
                    self.buf = self.buf[i + 14 + ln:]
                    return ftype, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None, None
            except ConnectionResetError:
                return None, None
            if not d:
                return None, None
            self.buf += d

    def login(self, tid, secret, hp=None):
        """Returns (frame type, payload) of the server's answer to AUTH (WELCOME or REJECT).
        hp: the HELLO payload (default hello_payload(tid))."""
        hp = hp or hello_payload(tid)
        self.send(frame(HELLO, hp))
        t, p = self.recv_frame()
        if t != CHALLENGE:
            return t, p
        nonce = p[4:36]
        mac = hmac.new(secret, nonce + hp, hashlib.sha256).digest()
        self.send(frame(AUTH, mac))
        return self.recv_frame()

    def closed(self, timeout=10):
        """True once the server has closed the connection (EOF or reset)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not d:
                return True
        return False

    def close(self):
        self.s.close()


def reject_reason(payload):
    return REJ_NAMES.get(struct.unpack_from("<H", payload, 0)[0], "?")


class WsClient:
    """A minimal RFC 6455 client (text messages, client frames masked) for the live feed."""

    def __init__(self, port, path="/api/v1/live", headers=None, timeout=10, connect=True,
                 src="127.0.0.1"):
        self.port, self.path, self.headers, self.src = port, path, dict(headers or {}), src
        self.buf = b""
        self.status = None
        self.sock = None
        self.close_code = None
        if connect:
            self.connect(timeout)

    def connect(self, timeout=10):
        import base64
        key = base64.b64encode(os.urandom(16)).decode()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                     source_address=(self.src, 0))
        lines = ["GET %s HTTP/1.1" % self.path, "Host: 127.0.0.1:%d" % self.port,
                 "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
                 "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in self.headers.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        first = head.split(b"\r\n", 1)[0].decode()
        self.status = int(first.split()[1]) if len(first.split()) > 1 else 0
        self.head = head.decode(errors="replace")
        self.sock = s
        if self.status == 101:
            self.buf = rest
        else:  # the refusal's body
            self.body = rest
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    self.body += chunk
            except OSError:
                pass
            s.close()
            self.sock = None
        return self.status

    def send(self, obj):
        data = (json.dumps(obj) if not isinstance(obj, (str, bytes)) else obj)
        data = data.encode() if isinstance(data, str) else data
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _frame(self):
        """One complete frame from self.buf, or None."""
        b = self.buf
        if len(b) < 2:
            return None
        op, n, off = b[0] & 0x0F, b[1] & 0x7F, 2
        fin = b[0] & 0x80
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack(">H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack(">Q", b[2:10])[0], 10
        if len(b) < off + n:
            return None
        self.buf = b[off + n:]
        return fin, op, b[off:off + n]

    def recv(self, timeout=10):
        """The next text message as a parsed object, or None at a close / timeout."""
        deadline = time.monotonic() + timeout
        parts = b""
        while True:
            f = self._frame()
            if f is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.sock is None:
                    return None
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return None
                except OSError:
                    chunk = b""
                if not chunk:
                    self.sock.close()
                    self.sock = None
                    return None
                self.buf += chunk
                continue
            fin, op, payload = f
            if op == 0x8:  # close
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode(errors="replace")
                return None
            if op == 0x9:  # ping: answer
                mask = os.urandom(4)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask +
                                  bytes(x ^ mask[i % 4] for i, x in enumerate(payload)))
                continue
            if op in (0x1, 0x0):
                parts += payload
                if fin:
                    return json.loads(parts.decode())

    def wait_for(self, pred, timeout, what):
        """Messages until pred(msg) is true; returns (msg, all messages seen)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv(deadline - time.monotonic())
            if m is None:
                if self.sock is None:
                    break
                continue
            seen.append(m)
            if pred(m):
                return m, seen
        fail("timed out after %d s waiting for %s (close %s, %d messages)"
             % (timeout, what, self.close_code, len(seen)))

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def add_user(data, name, role, password):
    """`gridsense user add NAME --role ROLE --password-stdin` on data; fails the test if refused."""
    p = subprocess.run([GRIDSENSE, "user", "add", name, "--role", role, "--password-stdin",
                        "--data", data], input=password + "\n", capture_output=True, text=True)
    check(p.returncode == 0, "user %s (%s) added: %s" % (name, role, p.stderr.strip()))


def browser_setup():
    """Checks that chromium and playwright-core are installed (scripts/deps.sh) and returns the
    screenshot folder (build/screenshots, made if missing) the browser tests write to."""
    check(os.path.exists("/usr/bin/chromium") or os.environ.get("GS_CHROMIUM"),
          "chromium is installed (scripts/deps.sh)")
    check(os.path.isdir(os.path.join(_ROOT, "node_modules", "playwright-core")),
          "playwright-core is installed (npm ci, scripts/deps.sh)")
    shots = os.path.join(os.path.abspath(BUILD), "screenshots")
    os.makedirs(shots, exist_ok=True)
    return shots


def browser_script(script, args, timeout=300):
    """Runs tests/browser/SCRIPT with node (playwright-core driving Debian's chromium) with the
    given arguments; prints its output and fails the test with its last lines on failure.
    Screenshots go to build/screenshots (the path is passed as GS_SHOTS)."""
    env = dict(os.environ, GS_SHOTS=browser_setup())
    r = subprocess.run(["node", os.path.join(_ROOT, "tests", "browser", script)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout, cwd=_ROOT, env=env)
    print(r.stdout)
    check(r.returncode == 0, "%s passed: %s" % (script, (r.stderr or r.stdout)[-3000:]))


def mms_client(port, args, stdin=None, password=None, want=(0,), timeout=60, max_pdu=None):
    """Runs build/mms_client against 127.0.0.1:port (docs/iec61850.md "Test client"): every
    stdout line must be JSON and the exit code one of `want`, else the test fails. Returns
    (exit code, the JSON lines, stderr)."""
    cmd = [os.path.join(BUILD, "mms_client"), "--port", str(port), "--timeout", "10"]
    if password is not None:
        cmd += ["--password", password]
    if max_pdu:
        cmd += ["--max-pdu", str(max_pdu)]
    p = subprocess.run(cmd + args, input=stdin, capture_output=True, text=True, timeout=timeout)
    try:
        lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    except ValueError:
        fail("mms_client %s printed a line that is not JSON:\n%s" % (" ".join(args), p.stdout))
    if p.returncode not in want:
        fail("mms_client %s exited %d (want %s): %s\n%s" % (" ".join(args), p.returncode, want,
                                                            p.stderr.strip(), p.stdout[-3000:]))
    return p.returncode, lines, p.stderr


def mms_line(lines, cmd):
    """The first mms_client output line of command `cmd` (fails the test without one)."""
    xs = [l for l in lines if l.get("cmd") == cmd]
    if not xs:
        fail("no %s line in %r" % (cmd, lines[-5:]))
    return xs[0]
