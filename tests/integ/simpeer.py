"""A scripted GSTP server for testing gridsense-sim's terminal side against docs/protocol.md:
one listening socket on 127.0.0.1 port 0, connections accepted one at a time, frames built and
checked with gslib's independent Python encoder (not the C codec the simulator uses)."""

import hashlib
import hmac
import os
import signal
import socket
import struct
import subprocess
import time

from gslib import *

TID = "P0001"
SECRET = bytes(range(0x40, 0x60))


class Peer(RawClient):
    """One accepted connection (the terminal's side is the simulator)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def expect(self, ftype, timeout=10, what=None):
        t, p = self.recv_frame(timeout)
        if t != ftype:
            fail("%s: expected frame 0x%02x, got %r" % (what or "peer", ftype, t))
        return p

    def handshake(self, heartbeat=30, window=8, resume=0, session=1):
        """Full login of the simulated terminal; checks its AUTH MAC (protocol.md 6.2)."""
        hp = self.expect(HELLO, what="HELLO")
        nonce = os.urandom(32)
        self.send(frame(CHALLENGE, struct.pack("<B3x", 1) + nonce))
        mac = self.expect(AUTH, what="AUTH")
        want = hmac.new(SECRET, nonce + hp, hashlib.sha256).digest()
        if mac[:32] != want:
            fail("AUTH MAC does not match HMAC-SHA256(secret, nonce || HELLO payload)")
        self.send(frame(WELCOME, struct.pack("<qHHQI", time.time_ns(), heartbeat, window, resume,
                                             session)))

    def send_reject(self, bye, reason, retry=0, msg=b""):
        self.send(frame(BYE if bye else REJECT, struct.pack("<HH", reason, retry) + msg))

    def wait_eof(self, timeout):
        """Returns the monotonic time the simulator closed the connection, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic()
            if not d:
                return time.monotonic()
            self.buf += d
        return None

    def results(self, n, timeout=15):
        """Reads frames until n RESULTs arrived; returns [(id, status)]."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            t, p = self.recv_frame(max(0.1, deadline - time.monotonic()))
            if t is None:
                break
            if t == RESULT:
                out.append(struct.unpack_from("<QH", p, 0))
        return out


class SimPeer:
    """Listens for the simulator (one terminal, no streaming unless asked) and runs it."""

    def __init__(self, data, extra=()):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        secrets = os.path.join(data, "secrets-sim-peer.txt")
        with open(secrets, "w") as f:
            f.write("%s %s\n" % (TID, SECRET.hex()))
        args = [SIM, "--server", "127.0.0.1:%d" % self.port, "--secrets", secrets,
                "--terminals", "1", "--duration", "0", "--drain", "0", "--no-stream", "--quiet",
                "--log-level", "info"] + list(extra)
        self.errf = open(os.path.join(data, "sim-peer.log"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.errf)

    def accept(self, timeout=30, what="connection"):
        """Returns (Peer, monotonic accept time)."""
        self.ls.settimeout(timeout)
        try:
            s, _ = self.ls.accept()
        except socket.timeout:
            fail("simulator did not connect within %d s (%s)" % (timeout, what))
        return Peer(s), time.monotonic()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()
        self.ls.close()
