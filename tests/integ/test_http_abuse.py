#!/usr/bin/env python3
"""HTTP under abuse (issue 7, section 2): the real server on port 0.

- A header whose name is a strict prefix of one libwebsockets knows ("Acc", "Cont", "Us",
  "Origi", "X-A", ...) is answered within 2 s (lws 4.1.6 alone never answers: its lexer swallows
  the rest of the head as the header name).
- Heads over the limit get 431 (lws alone closes silently).
- 1,100 idle connections from one address do not make /api/v1/health unreachable, from that
  address or another; with a small global cap neither.
- A connection that sends no complete request is closed after [http] request_timeout (408 if it
  sent part of a head); a kept-alive connection idle for longer between requests still works.
- An address whose 64 connections are all busy gets further ones closed at once, logged at a
  limited rate (log_limited: at most 5 lines per address per minute), while other addresses are
  served.
- A connection whose head had a line dropped is closed after its answer; on a kept-alive
  connection (read by lws itself) a later head that stalls lws gets 408 within about 1 s.
- /metrics: the HTTP front's counters (gridsense_http_*) move with each of the cases above.
"""

import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from gslib import Server, TempDir, check, fail, wait_for  # noqa: E402

REQUEST_TIMEOUT = 2


def first_line(sock, timeout):
    """The status line of the server's answer, or None (timeout / closed without answer)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            d = sock.recv(4096)
        except (socket.timeout, ConnectionResetError):
            return None
        if not d:
            return None
        data += d
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def ask(port, raw, timeout=2.0, src="127.0.0.1"):
    """Sends raw bytes on a fresh connection; returns (status line or None, seconds taken)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    t0 = time.monotonic()
    s.sendall(raw)
    line = first_line(s, timeout)
    took = time.monotonic() - t0
    s.close()
    return line, took


def health(port, extra=b"", src="127.0.0.1", timeout=10.0):
    return ask(port, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n", timeout, src)


def eof_within(sock, timeout):
    """True if the server closes `sock` within timeout (data before the close is ignored)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            d = sock.recv(4096)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and (hard == resource.RLIM_INFINITY or hard >= need):
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        soft = need
    return soft


def open_idle(port, n, srcs):
    """n connections that send nothing, spread over the source addresses srcs."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((srcs[i % len(srcs)], 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def count_closed(socks, wait):
    """How many of socks the server has closed, polling for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    closed = set()
    while time.monotonic() < deadline:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        if len(closed) == len(socks):
            break
        time.sleep(0.2)
    return len(closed)


def metrics(srv):
    """The /metrics samples as {name{labels}: value}."""
    st, text = srv.http("/metrics")
    check(st == 200, "/metrics answered")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def config(dirpath, body):
    path = os.path.join(dirpath, "gridsense.ini")
    with open(path, "w") as f:
        f.write(body)
    return path


def test_prefix_headers_and_431(port):
    # Strict prefixes of names in lws's table, one letter, and a prefix of a method token.
    for name in [b"Acc", b"Cont", b"Us", b"Origi", b"X-A", b"A", b"Ho", b"Ge", b"Content-Len",
                 b"Accept-Encodin", b"Sec-WebSocket-Ke"]:
        line, took = health(port, name + b": x\r\n", timeout=2.0)
        check(line is not None and took < 2.0,
              "header %r answered within 2 s (%s, %.2f s)" % (name.decode(), line, took))
        check(line.startswith("HTTP/1.1 200"), "header %r: request served (%s)" %
              (name.decode(), line))
    # The connection of a rewritten head closes after the answer (its later requests would be
    # read by lws alone, which stalls on the same header).
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAcc: x\r\n\r\n")
    s.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            break
        head += d
    closes = eof_within(s, 5)
    s.close()
    check(head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower() and closes,
          "rewritten head: served, then the connection is closed (%r)" % head[:40])
    # The dropped line does not hide the lines after it.
    line, _ = ask(port, b"GET /api/v1/health HTTP/1.1\r\nAcc: x\r\nHost: 127.0.0.1\r\n\r\n")
    check(line and line.startswith("HTTP/1.1 200"), "a known header after a dropped one still "
          "parses (%s)" % line)
    # With a body the head cannot be rewritten (see web.c): a clear 400, at once.
    line, took = ask(port, b"POST /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nCont: x\r\n"
                           b"Content-Length: 2\r\n\r\n{}")
    check(line is not None and line.startswith("HTTP/1.1 400") and took < 2.0,
          "prefix header with a body: 400 within 2 s (%s)" % line)
    # A header line without a colon stalls lws the same way: 400.
    line, took = health(port, b"NoColonHere\r\n", timeout=2.0)
    check(line is not None and line.startswith("HTTP/1.1 400"), "header line without colon: "
          "400 (%s, %.2f s)" % (line, took))
    line, _ = health(port, b"Bad Name: x\r\n", timeout=2.0)
    check(line and line.startswith("HTTP/1.1 400"), "space in a header name: 400 (%s)" % line)
    # Over the head limit (8 KiB): 431, not a silent close.
    line, _ = health(port, b"X-Big: " + b"a" * 9000 + b"\r\n", timeout=5.0)
    check(line is not None and line.startswith("HTTP/1.1 431"), "9 KB header: 431 (%s)" % line)
    many = b"".join(b"X-F%d: v\r\n" % i for i in range(70))
    line, _ = health(port, many, timeout=5.0)
    check(line is not None and line.startswith("HTTP/1.1 431"), "70 header lines: 431 (%s)" %
          line)
    line, _ = health(port, b"X-Ok: " + b"a" * 7000 + b"\r\n", timeout=5.0)
    check(line is not None and line.startswith("HTTP/1.1 200"), "7 KB header: served (%s)" % line)


def test_timeouts(port):
    # Sends nothing: closed after request_timeout, not before.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    closed = eof_within(s, REQUEST_TIMEOUT + 10)
    took = time.monotonic() - t0
    s.close()
    check(closed and REQUEST_TIMEOUT - 0.5 <= took,
          "idle connection without a request closed after the request timeout (%.2f s)" % took)
    # Part of a head: 408.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHo")
    line = first_line(s, REQUEST_TIMEOUT + 10)
    s.close()
    check(line is not None and line.startswith("HTTP/1.1 408"), "partial head: 408 (%s)" % line)
    # A head in two pieces within the timeout is served.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHo")
    time.sleep(0.5)
    s.sendall(b"st: 127.0.0.1\r\n\r\n")
    line = first_line(s, 10)
    s.close()
    check(line is not None and line.startswith("HTTP/1.1 200"), "head in two pieces: served "
          "(%s)" % line)
    # Keep-alive: a good client idle between requests for longer than the request timeout
    # keeps its connection (the keep-alive timeout applies).
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    line1 = first_line(s, 10)
    s.settimeout(0.5)
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        pass
    time.sleep(REQUEST_TIMEOUT + 1.0)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    line2 = first_line(s, 10)
    s.close()
    check(line1 and line1.startswith("HTTP/1.1 200") and line2 and line2.startswith("HTTP/1.1 200"),
          "keep-alive connection idle %d s between requests still served (%s / %s)" %
          (REQUEST_TIMEOUT + 1, line1, line2))


def test_keepalive_stalled(port):
    """A later head on a kept-alive connection whose last line stalls lws's lexer: 408 from the
    front after about 1 s (before: closed without an answer at request_timeout)."""
    for tail in [b"Acc: x\r\n", b"NoColonHere\r\n"]:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        line1 = first_line(s, 10)
        s.settimeout(0.5)
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            pass
        t0 = time.monotonic()
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + tail + b"\r\n")
        line2 = first_line(s, 10)
        took = time.monotonic() - t0
        s.close()
        check(line1 and line1.startswith("HTTP/1.1 200") and line2 is not None and
              line2.startswith("HTTP/1.1 408") and took < REQUEST_TIMEOUT,
              "kept-alive head ending in %r: 408 after %.2f s (%s)" % (tail, took, line2))


def test_idle_flood(port, srcs, n, what):
    socks = open_idle(port, n, srcs)
    try:
        line, took = health(port, timeout=10.0)
        check(line is not None and line.startswith("HTTP/1.1 200"),
              "%s: /api/v1/health from 127.0.0.1 answered (%s, %.2f s)" % (what, line, took))
        line, took = health(port, src="127.0.0.9", timeout=10.0)
        check(line is not None and line.startswith("HTTP/1.1 200"),
              "%s: /api/v1/health from 127.0.0.9 answered (%s, %.2f s)" % (what, line, took))
        return count_closed(socks, 3.0)
    finally:
        for s in socks:
            s.close()


def test_busy_cap(srv):
    """64 connections of one address busy with a request (a body that never comes) fill its cap:
    more from that address are closed at once without an answer, logged at a limited rate;
    other addresses are served; once the busy ones go, the address is served again."""
    port = srv.hport
    busy = []
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
        busy.append(s)
    time.sleep(1.0)  # lets the server adopt them; the checks below do not depend on it
    refused = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        refused.append(s)
    closed = count_closed(refused, 5.0)
    for s in refused:
        s.close()
    check(closed == 300, "over the per-address cap with all 64 busy: %d of 300 new connections "
          "closed at once" % closed)
    line, _ = health(port, src="127.0.0.9", timeout=10.0)
    check(line is not None and line.startswith("HTTP/1.1 200"),
          "another address is still served (%s)" % line)
    lines = [l for l in srv.log().splitlines() if "refused" in l]
    check(1 <= len(lines) <= 5, "300 refusals logged in %d line(s) (log_limited: 5 a minute per "
          "address, the rest summed up in one 'suppressed' line after the minute)" % len(lines))
    for s in busy:
        s.close()

    def served():
        line, _ = health(port, timeout=5.0)
        return line is not None and line.startswith("HTTP/1.1 200")
    wait_for(served, 30, "127.0.0.1 served again after the busy connections closed")
    check(True, "127.0.0.1 served again after the busy connections closed")


def main():
    if raise_nofile(4096) < 1400:
        fail("the test needs 1,400 open files")
    with TempDir() as d:
        cfg = config(d, "[http]\nrequest_timeout = %d\n" % REQUEST_TIMEOUT)
        srv = Server(d, extra=["--config", cfg]).start()
        try:
            m0 = metrics(srv)
            for k in ["gridsense_http_connections_open", "gridsense_http_connections_max",
                      "gridsense_http_connections_total",
                      'gridsense_http_connections_refused_total{cap="address"}',
                      'gridsense_http_connections_refused_total{cap="total"}',
                      "gridsense_http_connections_evicted_total",
                      "gridsense_http_request_timeouts_total",
                      "gridsense_http_heads_rewritten_total",
                      'gridsense_http_front_responses_total{code="400"}',
                      'gridsense_http_front_responses_total{code="408"}',
                      'gridsense_http_front_responses_total{code="414"}',
                      'gridsense_http_front_responses_total{code="431"}']:
                check(k in m0, "/metrics has %s" % k)
            test_prefix_headers_and_431(srv.hport)
            m1 = metrics(srv)
            d1 = {k: m1[k] - m0[k] for k in m0}
            check(d1["gridsense_http_heads_rewritten_total"] >= 13,
                  "heads rewritten counted (%d)" % d1["gridsense_http_heads_rewritten_total"])
            check(d1['gridsense_http_front_responses_total{code="400"}'] >= 3,
                  "400s counted (%d)" % d1['gridsense_http_front_responses_total{code="400"}'])
            check(d1['gridsense_http_front_responses_total{code="431"}'] >= 2,
                  "431s counted (%d)" % d1['gridsense_http_front_responses_total{code="431"}'])
            check(d1["gridsense_http_connections_total"] >= 18,
                  "connections counted (%d)" % d1["gridsense_http_connections_total"])
            test_timeouts(srv.hport)
            test_keepalive_stalled(srv.hport)
            m2 = metrics(srv)
            check(m2['gridsense_http_front_responses_total{code="408"}'] -
                  m1['gridsense_http_front_responses_total{code="408"}'] >= 3,
                  "408s counted (partial first head, two stalled kept-alive heads)")
            check(m2["gridsense_http_request_timeouts_total"] -
                  m1["gridsense_http_request_timeouts_total"] >= 4,
                  "request timeouts counted (silent close, 408s)")
            # 1,100 idle connections from one address (the per-address cap is 64 by default):
            # beyond the cap the oldest idle ones are closed, and others are still served.
            closed = test_idle_flood(srv.hport, ["127.0.0.1"], 1100, "1,100 idle from one address")
            check(closed >= 1100 - 64 - 2, "the server closed %d of 1,100 idle connections "
                  "(all but the per-address cap)" % closed)
            st, _ = srv.http("/api/v1/health")
            check(st == 200, "served after the flood")
            m3 = metrics(srv)
            check(m3["gridsense_http_connections_evicted_total"] -
                  m2["gridsense_http_connections_evicted_total"] >= 1000,
                  "evictions counted (%d)" % (m3["gridsense_http_connections_evicted_total"] -
                                              m2["gridsense_http_connections_evicted_total"]))
            test_busy_cap(srv)
            m4 = metrics(srv)
            refused = (m4['gridsense_http_connections_refused_total{cap="address"}'] -
                       m3['gridsense_http_connections_refused_total{cap="address"}'])
            check(refused >= 300, "refusals at the per-address cap counted (%d)" % refused)
            check(m4['gridsense_http_connections_refused_total{cap="total"}'] == 0,
                  "no refusal at the total cap")
            check(m4["gridsense_http_connections_open"] >= 1, "open connections shown")
        finally:
            rc = srv.stop()
        check(rc == 0, "server stopped cleanly")

    with TempDir() as d:
        # A small global cap, many addresses: the oldest idle connections make room.
        cfg = config(d, "[http]\nrequest_timeout = 30\nmax_connections = 200\n"
                        "max_connections_per_address = 1000\n")
        srv = Server(d, extra=["--config", cfg]).start()
        try:
            srcs = ["127.0.0.%d" % i for i in range(2, 12)]
            closed = test_idle_flood(srv.hport, srcs, 1100, "1,100 idle over a cap of 200")
            check(closed >= 1100 - 200 - 2, "the server closed %d of 1,100 idle connections "
                  "(all but the global cap)" % closed)
        finally:
            rc = srv.stop()
        check(rc == 0, "server stopped cleanly")
    print("PASS")


if __name__ == "__main__":
    main()
