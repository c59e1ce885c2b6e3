#!/usr/bin/env python3
"""TLS on the HTTP port ([http] cert/key, docs/api.md): the API answers over HTTPS, a login's
session cookie gets Secure, the live feed upgrades over TLS, plain HTTP to the TLS port gets no
answer, and a cert without its key is a configuration error at start."""
import http.client
import json
import os
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        os.makedirs(data)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-keyout", key, "-out", cert], check=True,
                       capture_output=True)
        os.chmod(key, 0o600)
        cfg = os.path.join(d, "tls.ini")
        open(cfg, "w").write("[http]\ncert = %s\nkey = %s\n" % (cert, key))
        pw = "tls-user-password"
        p = subprocess.run([GRIDSENSE, "user", "add", "tina", "--role", "viewer",
                            "--password-stdin", "--data", data], input=pw + "\n",
                           capture_output=True, text=True)
        check(p.returncode == 0, "user added")
        srv = Server(data, extra=["--config", cfg]).start()
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        c = http.client.HTTPSConnection("127.0.0.1", srv.hport, context=ctx, timeout=30)
        c.request("GET", "/api/v1/health")
        r = c.getresponse()
        check(r.status == 200 and json.loads(r.read())["status"] == "ok", "health over HTTPS")
        c.request("POST", "/api/v1/session", json.dumps({"user": "tina", "password": pw}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        sc = r.getheader("Set-Cookie")
        check(r.status == 200 and "; Secure" in sc and "HttpOnly" in sc,
              "the session cookie is Secure over TLS")
        cookie = sc.split(";")[0]
        c.request("GET", "/api/v1/terminals", headers={"Cookie": cookie})
        r = c.getresponse()
        check(r.status == 200 and "terminals" in json.loads(r.read()), "the cookie works")
        c.close()
        # plain HTTP to the TLS port: no HTTP answer
        c = http.client.HTTPConnection("127.0.0.1", srv.hport, timeout=10)
        try:
            c.request("GET", "/api/v1/health")
            r = c.getresponse()
            check(r.status >= 400, "plain HTTP is not served (%d)" % r.status)
        except (http.client.HTTPException, OSError):
            print("ok: plain HTTP to the TLS port gets no answer")
        # the live feed over TLS
        raw = socket.create_connection(("127.0.0.1", srv.hport), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(("GET /api/v1/live HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (srv.hport, srv.token)).encode())
        head = s.recv(4096)
        check(head.startswith(b"HTTP/1.1 101"), "the live feed upgrades over TLS (%r)" % head[:20])
        s.close()
        srv.stop()
        # a cert without a key
        bad = os.path.join(d, "bad.ini")
        open(bad, "w").write("[http]\ncert = %s\n" % cert)
        p = subprocess.run([GRIDSENSE, "serve", "--data", data, "--config", bad, "--http",
                            "127.0.0.1:0", "--terminals", "127.0.0.1:0"], capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 1 and "cert and key go together" in p.stderr,
              "cert without key refused at start (%d)" % p.returncode)


if __name__ == "__main__":
    main()
