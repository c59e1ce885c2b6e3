#!/usr/bin/env python3
"""The web app's files (issue 9, first slice), served by the server itself: GET / and
/app/FILE without credentials, from the copy compiled into the binary (byte for byte the files
of web/) or from `[web] root`; a strict Content-Security-Policy on every answer and no inline
script in the page; ETag revalidation (304); no path escapes the folder; the Host check
applies; every string of the app exists in English and Simplified Chinese. (The pages' behaviour
in a browser is not tested here: that is the Playwright slice still to come.)"""
import http.client
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import *

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
WEB = os.path.join(ROOT, "web")
# the npm files the build embeds under fixed names (src/api/CMakeLists.txt GS_NPM_ASSETS)
NPM = {"uplot.js": "uplot/dist/uPlot.iife.min.js", "uplot.css": "uplot/dist/uPlot.min.css",
       "leaflet.js": "leaflet/dist/leaflet.js", "leaflet.css": "leaflet/dist/leaflet.css"}


def get(port, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers or {})
    c.request(method, path, headers=h)
    r = c.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, body


def keys(block):
    """The property names of a JS object literal's body (string values removed first)."""
    return set(re.findall(r"\b([a-z_]+):", re.sub(r'"(?:[^"\\]|\\.)*"', '""', block)))


def main():
    files = sorted(os.listdir(WEB))
    check("index.html" in files and "app.js" in files, "web/ holds the app (%s)" % files)
    page = open(os.path.join(WEB, "index.html")).read()
    check(not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "no inline script in index.html")
    check(not re.search(r"\son[a-z]+=", page, re.I), "no inline event handlers in index.html")
    i18n = open(os.path.join(WEB, "i18n.js")).read()
    en = i18n.split("en: {", 1)[1].split("},", 1)[0]
    zh = i18n.split("zh: {", 1)[1].split("},", 1)[0]
    check(keys(en) == keys(zh) and len(keys(en)) > 20,
          "every string in English and Chinese (%d keys; missing %s)"
          % (len(keys(en)), sorted(keys(en) ^ keys(zh))))
    # every literal key the page modules look up (t("key") or t("key", {...}); keys built at
    # run time, like t("filter_" + f), are checked by the browser tests' screens)
    used = set()
    for f in files:
        if f.endswith(".js") and f != "i18n.js":
            used |= set(re.findall(r'\bt\("([a-z_0-9]+)"\s*[,)]', open(os.path.join(WEB, f)).read()))
    check(used <= keys(en), "every string the app uses is in the tables (%s missing)"
          % sorted(used - keys(en)))

    with TempDir() as data:
        srv = Server(data).start()
        port = srv.hport
        st, h, body = get(port, "/")
        check(st == 200 and h["content-type"].startswith("text/html") and
              body == open(os.path.join(WEB, "index.html"), "rb").read(),
              "GET / without credentials: the compiled-in index.html")
        csp = h.get("content-security-policy", "")
        for d in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                  "frame-ancestors 'none'", "object-src 'none'"):
            check(d in csp, "CSP has %s" % d)
        check("unsafe-inline" not in csp and "unsafe-eval" not in csp, "CSP allows no inline code")
        for ref in re.findall(r'(?:src|href)="(/app/[^"]+)"', page) + ["/app/i18n.js"]:
            st, h, body = get(port, ref)
            name = ref.split("/")[-1]
            src = os.path.join(WEB, name) if name in files else os.path.join(ROOT, "node_modules", NPM[name])
            check(st == 200 and body == open(src, "rb").read() and
                  h.get("etag") and h.get("cache-control") == "no-cache",
                  "%s served with an ETag (%s, %s)" % (ref, st, h.get("content-type")))
            st2, h2, body2 = get(port, ref, {"If-None-Match": h["etag"]})
            check(st2 == 304 and body2 == b"" and h2.get("etag") == h["etag"],
                  "%s revalidates: 304" % ref)
        ctypes = {"app.js": "text/javascript", "app.css": "text/css"}
        for name, ct in ctypes.items():
            st, h, _ = get(port, "/app/" + name)
            check(h["content-type"].startswith(ct), "%s is %s" % (name, ct))
        for bad in ("/app/", "/app/.hidden", "/app/nope.js", "/app/..%2Fgridsense.db",
                    "/app/%2e%2e/gridsense.db", "/app/%2e%2e/%2e%2e/etc/passwd", "/index.htm"):
            st, h, body = get(port, bad)
            check(st == 404 and b'"not_found"' in body, "%s: 404 with the error shape (%d)"
                  % (bad, st))
        st, h, body = get(port, "/", {"Host": "evil.example"})
        check(st == 400 and b"bad_host" in body, "the Host check applies to the app too")
        st, h, body = get(port, "/", {"Content-Length": "0"}, method="POST")
        check(st == 405, "POST / : 405 (%d)" % st)
        srv.stop()

        # [web] root: a folder instead of the compiled-in copy (development)
        dev = os.path.join(data, "webdev")
        shutil.copytree(WEB, dev)
        with open(os.path.join(dev, "index.html"), "a") as f:
            f.write("<!-- dev copy -->\n")
        cfg = os.path.join(data, "web.ini")
        open(cfg, "w").write("[web]\nroot = %s\n" % dev)
        srv = Server(data, extra=["--config", cfg]).start()
        st, h, body = get(srv.hport, "/")
        check(st == 200 and body.endswith(b"<!-- dev copy -->\n"), "[web] root serves the folder")
        st, h, body = get(srv.hport, "/app/app.js")
        check(st == 200 and body == open(os.path.join(WEB, "app.js"), "rb").read(),
              "and its other files")
        srv.stop()


if __name__ == "__main__":
    main()
