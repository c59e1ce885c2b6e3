#!/usr/bin/env python3
"""The web app's files (issue 9, first slice), served by the server itself: GET / and
/app/FILE without credentials, from the copy compiled into the binary (byte for byte the files
of web/) or from `[web] root`; a strict Content-Security-Policy on every answer and no inline
script in the page; ETag revalidation (304); no path escapes the folder; the Host check
applies; every string of the app exists in English and Simplified Chinese. (The pages' behaviour
in a browser is not tested here: that is the Playwright slice still to come.)"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import zlib

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

        # compressed answers where the client accepts them (gzip), each form with its own ETag
        total_gz = 0
        for name in [f for f in files if f.endswith((".js", ".css", ".html", ".svg"))] + list(NPM):
            plain = get(port, "/app/" + name)
            st, h, body = get(port, "/app/" + name, {"Accept-Encoding": "gzip, deflate, br"})
            if len(plain[2]) < 1024 and "content-encoding" not in h:
                # gzip may not make a small file smaller: then it is sent as it is
                check(body == plain[2] and h["etag"] == plain[1]["etag"], "%s: small, as is" % name)
                total_gz += len(body)
                continue
            src = os.path.join(WEB, name) if name in files else os.path.join(ROOT, "node_modules", NPM[name])
            check(st == 200 and h.get("content-encoding") == "gzip" and
                  zlib.decompress(body, 31) == open(src, "rb").read() and
                  "accept-encoding" in h.get("vary", "").lower() and
                  h["etag"] != plain[1]["etag"] and "content-encoding" not in plain[1],
                  "%s: gzip when accepted (%d -> %d bytes), identity otherwise, ETags differ"
                  % (name, len(plain[2]), len(body)))
            st2, _, _ = get(port, "/app/" + name, {"Accept-Encoding": "gzip", "If-None-Match": h["etag"]})
            check(st2 == 304, "%s: the gzip ETag revalidates" % name)
            total_gz += len(body)
        print("info: the app's text files and npm assets, gzip: %d bytes" % total_gz)
        for ae in ("gzip;q=0", "identity", "br"):
            st, h, body = get(port, "/app/app.js", {"Accept-Encoding": ae})
            check("content-encoding" not in h and body == open(os.path.join(WEB, "app.js"), "rb").read(),
                  "Accept-Encoding: %s: not compressed" % ae)
        st, h, body = get(port, "/app/icon-192.png", {"Accept-Encoding": "gzip"})
        check(st == 200 and "content-encoding" not in h and h["content-type"] == "image/png",
              "PNG icons are not compressed again")

        # the installable app: manifest and service worker at the root (scope "/")
        st, h, body = get(port, "/manifest.webmanifest")
        man = json.loads(body)
        check(st == 200 and h["content-type"].startswith("application/manifest+json") and
              man["start_url"] == "/#/fleet", "GET /manifest.webmanifest")
        st, h, body = get(port, "/sw.js")
        check(st == 200 and h["content-type"].startswith("text/javascript") and
              h.get("service-worker-allowed") == "/" and b"addEventListener(\"fetch\"" in body,
              "GET /sw.js: the service worker, allowed scope /")
        st, h, body = get(port, "/app/settings.json")
        check(st == 200 and json.loads(body) == {"tiles": None, "tiles_attribution": None} and
              "img-src 'self' data:;" in h["content-security-policy"],
              "settings.json without tiles; img-src only this server")
        srv.stop()

        # [web] tiles: the URL and credit reach the app; the CSP lets the tiles' origin in
        cfg = os.path.join(data, "tiles.ini")
        open(cfg, "w").write("[web]\ntiles = https://{s}.tiles.example.net/osm/{z}/{x}/{y}.png\n"
                             "tiles_attribution = Map data (c) Example contributors\n")
        srv = Server(data, extra=["--config", cfg]).start()
        st, h, body = get(srv.hport, "/app/settings.json")
        check(json.loads(body) == {"tiles": "https://{s}.tiles.example.net/osm/{z}/{x}/{y}.png",
                                   "tiles_attribution": "Map data (c) Example contributors"},
              "settings.json carries [web] tiles")
        st, h, body = get(srv.hport, "/")
        check("img-src 'self' data: https://*.tiles.example.net;" in h["content-security-policy"],
              "the CSP allows images from the tile server only (%s)" % h["content-security-policy"])
        srv.stop()
        for bad in ("ftp://x/{z}/{x}/{y}", "https://x.example/{z}/{x}.png",
                    "https://a.example/{z}/{x}/{y}.png\"; script-src *", "https://{a}.{b}.example/{z}/{x}/{y}"):
            open(cfg, "w").write("[web]\ntiles = %s\n" % bad)
            r = subprocess.run([GRIDSENSE, "serve", "--config", cfg, "--data", data, "--http",
                                "127.0.0.1:0", "--terminals", "127.0.0.1:0"],
                               capture_output=True, text=True, timeout=60)
            check(r.returncode != 0 and "web.tiles" in r.stderr + r.stdout,
                  "a bad tiles URL is refused at start: %s" % bad)

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
