#!/usr/bin/env python3
"""docs/openapi.json is kept true (issue 8, section 3):

(a) the document and the route table agree: every route `gridsense routes` prints is documented
    with the same method, path and role (`x-gridsense-role`), and nothing documented is missing
    from the server; the document is sound (OpenAPI 3.1, every schema a valid JSON Schema
    2020-12, every $ref resolves, path parameters declared, 401/403 on every non-public route);
(b) GET /api/v1/openapi.json serves docs/openapi.json byte for byte, without credentials;
(c) answers validate against the schemas (python3-jsonschema): those the other integration
    tests recorded (gslib GS_API_RECORD, one api-record/<test>.jsonl per test in the build
    directory; files older than the gridsense binary are skipped as stale), and this test's own
    calls of every GET route (and the state-changing ones) against a server it starts with a
    streaming simulator (a scheduled dip and swell, so events, measurements, phasors and the
    latest values exist), so it does not depend on other tests having run. Every answer must
    have a documented status; every documented operation must have answered successfully here.
"""
import glob
import http.client
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gslib
from gslib import (BUILD, GRIDSENSE, Server, TempDir, check, fail, run, sim_finish, sim_start,
                   wait_for)

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    fail("python3-jsonschema is missing (scripts/deps.sh installs it)")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")
URI = "urn:gridsense:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Answers the HTTP front gives itself (the error shape, docs/api.md) before the API sees a request.
FRONT_STATUSES = {400, 405, 408, 411, 413, 414, 431}


def pointer(*parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Spec:
    """The document, its operations by method and path template, and validators for them."""

    def __init__(self, doc):
        self.doc = doc
        self.ops = []  # (method, template, regex, op, path item)
        for tpl, item in doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(tpl)) + "$")
            for m in METHODS:
                if m in item:
                    self.ops.append((m.upper(), tpl, rx, item[m], item))
        # a literal path wins over a template with parameters
        self.ops.sort(key=lambda o: o[1].count("{"))
        self._validators = {}
        try:  # jsonschema >= 4.18: the referencing library
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012
            reg = Registry().with_resource(URI, Resource(contents=doc,
                                                         specification=DRAFT202012))
            self._make = lambda s: Draft202012Validator(s, registry=reg)
        except ImportError:  # Debian bookworm's 4.10
            resolver = jsonschema.RefResolver(URI, doc)
            self._make = lambda s: Draft202012Validator(s, resolver=resolver)

    def resolve(self, node):
        """Follows a local $ref of a non-schema object (a response, a parameter)."""
        while isinstance(node, dict) and "$ref" in node:
            node = self.at(node["$ref"][1:])
        return node

    def ref_pointer(self, node, ptr):
        while isinstance(node, dict) and "$ref" in node:
            ptr = node["$ref"][1:]
            node = self.at(ptr)
        return node, ptr

    def at(self, ptr):
        node = self.doc
        for part in ptr.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def validator(self, ptr):
        v = self._validators.get(ptr)
        if v is None:
            v = self._validators[ptr] = self._make({"$ref": URI + "#" + ptr})
        return v

    def match(self, method, path):
        """(op entry, path known): the operation for method and path, or None."""
        known = False
        for m, tpl, rx, op, item in self.ops:
            if rx.match(path):
                known = True
                if m == method:
                    return (m, tpl, op, item), True
        return None, known


def errors_of(validator, value, limit=3):
    errs = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return ["%s at %s" % (e.message[:300], "/".join(map(str, e.absolute_path)) or "(root)")
            for e in errs[:limit]]


class Checker:
    """Validates recorded answers; collects what failed and what was covered."""

    def __init__(self, spec):
        self.spec = spec
        self.problems = []
        self.covered = set()   # (METHOD, template, status) validated
        self.n = 0
        self.skipped_front = 0

    def problem(self, rec, what):
        self.problems.append("%s %s -> %s: %s" % (rec["method"], rec["path"], rec["status"],
                                                   what))

    @staticmethod
    def front_answer(rec):
        """An answer of src/web itself: its statuses, with the error shape and a code the API
        does not use for them (length_required, payload_too_large, ...) or a 400/405 the API's
        router never gives for a request it saw (checked by the code)."""
        try:
            err = json.loads(rec.get("body") or "")["error"]
        except (ValueError, KeyError, TypeError):
            return False
        return err.get("code") in ("length_required", "payload_too_large", "uri_too_long",
                                   "header_fields_too_large", "request_timeout") or (
            rec["status"] in (400, 405) and err.get("message", "").startswith(("bad request",
                                                                                "method not allowed",
                                                                                "bad content-length",
                                                                                "incomplete body")))

    def check(self, rec):
        self.n += 1
        spec = self.spec
        path = urllib.parse.urlsplit(rec["path"]).path
        st = rec["status"]
        ctype = (rec.get("content_type") or "").split(";")[0].strip().lower()
        if st in FRONT_STATUSES and self.front_answer(rec):
            self.skipped_front += 1  # the HTTP front's own answer, not the API's
            return
        entry, known = spec.match(rec["method"], path)
        if entry is None:
            # Not a documented operation: the router must refuse it with the error shape.
            if 200 <= st < 300:
                self.problem(rec, "answered %d but %s is not documented" % (
                    st, "this method" if known else "this path"))
                return
            self.validate_json(rec, ctype, "/components/schemas/Error")
            return
        m, tpl, op, item = entry
        base = pointer("paths", tpl, m.lower())
        resp = op["responses"].get(str(st))
        rptr = base + pointer("responses", str(st))
        if resp is None and "default" in op["responses"]:
            resp, rptr = op["responses"]["default"], base + "/responses/default"
        if resp is None:
            self.problem(rec, "status %d is not documented for %s %s" % (st, m, tpl))
            return
        resp, rptr = spec.ref_pointer(resp, rptr)
        content = resp.get("content", {})
        if not content:
            if rec["body"]:
                self.problem(rec, "a body where the document says none")
            self.covered.add((m, tpl, st))
            return
        if ctype not in content:
            self.problem(rec, "Content-Type %r, documented: %s" % (ctype, sorted(content)))
            return
        sptr = rptr + pointer("content", ctype, "schema")
        if ctype == "application/json":
            if not self.validate_json(rec, ctype, sptr):
                return
        if 200 <= st < 300 and rec.get("request") and "requestBody" in op:
            # a request the server accepted must be one the document allows
            rb, rbptr = spec.ref_pointer(op["requestBody"], base + "/requestBody")
            if "application/json" in rb.get("content", {}):
                try:
                    req = json.loads(rec["request"])
                except ValueError:
                    self.problem(rec, "accepted a request body that is not JSON")
                    return
                errs = errors_of(spec.validator(rbptr + pointer("content", "application/json",
                                                                "schema")), req)
                if errs:
                    self.problem(rec, "accepted request does not match the documented body: "
                                 + "; ".join(errs))
                    return
        self.covered.add((m, tpl, st))

    def validate_json(self, rec, ctype, sptr):
        if ctype != "application/json":
            self.problem(rec, "Content-Type %r, expected application/json" % ctype)
            return False
        try:
            body = json.loads(rec["body"])
        except (ValueError, TypeError):
            self.problem(rec, "body is not JSON: %r" % (rec["body"] or "")[:200])
            return False
        errs = errors_of(self.spec.validator(sptr), body)
        if errs:
            self.problem(rec, "; ".join(errs) + " | body: " + json.dumps(body)[:400])
            return False
        return True


# ---- (a) the document and the route table -------------------------------------------------

def check_document(spec, routes):
    doc = spec.doc
    check(doc.get("openapi", "").startswith("3.1."), "OpenAPI 3.1 (%s)" % doc.get("openapi"))
    documented = {}
    for m, tpl, rx, op, item in spec.ops:
        documented[(m, tpl)] = op.get("x-gridsense-role")
    served = {(m, p): r for m, p, r in routes}
    missing = sorted(set(served) - set(documented))
    extra = sorted(set(documented) - set(served))
    check(not missing, "every registered route is documented (missing: %s)" % missing)
    check(not extra, "every documented route is registered (not served: %s)" % extra)
    wrong = sorted("%s %s: server %s, document %s" % (m, p, served[(m, p)], documented[(m, p)])
                   for (m, p) in served if documented.get((m, p)) != served[(m, p)])
    check(not wrong, "x-gridsense-role of every operation is the route's role (%s)" % wrong)

    # every schema is a valid JSON Schema 2020-12; every $ref resolves
    for name, s in doc["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(s)
        except jsonschema.exceptions.SchemaError as e:
            fail("components/schemas/%s is not a valid JSON Schema: %s" % (name, e.message))
    refs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str):
                    refs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    bad = []
    for r in refs:
        try:
            check_ref = r.startswith("#/") and spec.at(r[1:]) is not None
        except (KeyError, IndexError, ValueError):
            check_ref = False
        if not check_ref:
            bad.append(r)
    check(not bad, "all %d $refs resolve (bad: %s)" % (len(refs), bad))

    try:  # the OpenAPI 3.1 meta-schema, where the (pip-only) validator is installed
        from openapi_spec_validator import validate as validate_spec
    except ImportError:
        validate_spec = None
    if validate_spec:
        try:
            validate_spec(doc)
        except Exception as e:  # its error classes differ between versions
            fail("openapi-spec-validator: %s" % str(e)[:1000])
        print("ok: openapi-spec-validator accepts the document")
    else:
        print("note: openapi-spec-validator not installed; OpenAPI meta-schema check skipped")

    ids = [op["operationId"] for m, tpl, rx, op, item in spec.ops]
    check(len(ids) == len(set(ids)), "operationIds are unique")
    schemes = set(doc["components"]["securitySchemes"])
    check(schemes == {"cookieAuth", "bearerAuth"} and
          doc["components"]["securitySchemes"]["cookieAuth"]["name"] == "gs_session",
          "security schemes: the gs_session cookie and bearer tokens")
    for m, tpl, rx, op, item in spec.ops:
        where = "%s %s" % (m, tpl)
        names = set(re.findall(r"\{([^}]+)\}", tpl))
        declared = set()
        for p in item.get("parameters", []) + op.get("parameters", []):
            p = spec.resolve(p)
            if p["in"] == "path":
                declared.add(p["name"])
                check(p.get("required") is True, "%s: path parameter %s required" % (
                    where, p["name"]))
        if names != declared:
            fail("%s: path parameters %s, declared %s" % (where, sorted(names), sorted(declared)))
        role = op["x-gridsense-role"]
        codes = set(op["responses"])
        if role != "public":
            if not {"401", "403"} <= codes:
                fail("%s (%s): 401 and 403 must be documented" % (where, role))
            if op.get("security") == []:
                fail("%s (%s): must not be documented as needing no credentials" % (where, role))
        elif op.get("security") is None:
            fail("%s is public: its security must say so ([] or [{}])" % where)
        if not any(c.startswith("2") or c == "101" for c in codes):
            fail("%s: no success answer documented" % where)
    print("ok: %d operations checked (parameters, roles, responses)" % len(spec.ops))


# ---- (c) this test's own calls ------------------------------------------------------------

def own_calls(srv):
    """A request like gslib's Server.http that also keeps its answer's Content-Type; returns
    the function and the list the answers go to."""
    import urllib.error
    import urllib.request
    recs = []

    def fetch(path, method="GET", body=None, token=None, auth=True, headers=None):
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = "Bearer " + (token or srv.token)
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (srv.hport, path), method=method,
                                     data=body.encode() if isinstance(body, str) else body,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                st, ct, txt = r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            st, ct, txt = e.code, e.headers.get("Content-Type"), e.read().decode()
        recs.append({"method": method, "path": path, "status": st, "body": txt,
                     "content_type": ct, "request": body if isinstance(body, str) else None})
        gslib._record(method, path, st, ct, txt, body)  # kept in api-record/ to look at
        return st, txt
    return fetch, recs


def main():
    with open(DOC_PATH, "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    spec = Spec(doc)

    # ---- (a)
    p = run([GRIDSENSE, "routes"])
    routes = [tuple(l.split()) for l in p.stdout.splitlines() if l.strip()]
    check(len(routes) >= 20 and all(len(r) == 3 for r in routes),
          "gridsense routes: %d routes" % len(routes))
    check_document(spec, routes)

    checker = Checker(spec)
    with TempDir() as d:
        data = os.path.join(d, "data")
        secrets = os.path.join(d, "secrets.txt")
        run([GRIDSENSE, "terminal", "add", "--count", "2", "--prefix", "OA", "--secrets-out",
             secrets, "--data", data, "--declared-voltage", "57.735", "--vt-ratio", "100"])
        # one with a location and ratios, so those fields are not only null / 1
        run([GRIDSENSE, "terminal", "add", "OA0003", "--name", "feeder 3", "--location",
             "47.37,8.54", "--ct-ratio", "40", "--data", data])
        cfg = os.path.join(d, "gridsense.ini")
        with open(cfg, "w") as f:
            f.write("[analysis]\nphasor_rate = 10\n")
        srv = Server(data, extra=["--config", cfg]).start()
        viewer = srv.make_token("oa-viewer", "viewer")
        fetch, recs = own_calls(srv)

        # ---- (b)
        st, txt = fetch("/api/v1/openapi.json", auth=False)
        check(st == 200 and txt.encode() == raw,
              "GET /api/v1/openapi.json without credentials serves docs/openapi.json (%d, %d "
              "bytes)" % (st, len(txt)))
        check(recs[-1]["content_type"].split(";")[0] == "application/json",
              "served as application/json")
        st, health = fetch("/api/v1/health", auth=False)
        check(json.loads(health)["version"] == doc["info"]["version"],
              "info.version is the server's version (%s)" % doc["info"]["version"])

        # ---- seed data: two terminals stream for a while, with a dip and a swell
        sim_t0 = time.time_ns()
        sim = sim_start(srv.tport, secrets, 2, 14,
                        ["--disturb", "0", "--schedule", "dip@4+200:40/1",
                         "--schedule", "swell@7+200:115/2"])
        try:
            def have_latest():
                st, txt = srv.http("/api/v1/terminals/OA0001/latest")
                return st == 200 and "phasor" in json.loads(txt) and "t_start" in txt
            wait_for(have_latest, 90, "latest values with a phasor report")
            # while online: the terminal's runtime fields are filled in
            fetch("/api/v1/terminals")
            fetch("/api/v1/terminals/OA0001")
            st, txt = fetch("/api/v1/terminals/OA0001/commands", "POST",
                            json.dumps({"verb": "get-status"}))
            check(st == 201, "command to an online terminal: %d %s" % (st, txt[:200]))
            cmd_id = json.loads(txt)["id"]
            fetch("/api/v1/terminals/OA0002/commands", "POST",
                  json.dumps({"verb": "capture", "args": {"cycles": 10, "pretrigger": 2},
                              "ttl_s": 600}))
            fetch("/api/v1/terminals/OA0002/commands", "POST",
                  json.dumps({"verb": "set-config", "args": {"stream": "on", "dip": 85}}))

            def cmd_done():
                st, txt = srv.http("/api/v1/terminals/OA0001/commands")
                return any(c["id"] == cmd_id and "result_status" in c
                           for c in json.loads(txt)["commands"])
            wait_for(cmd_done, 60, "a RESULT for the get-status command")
            fetch("/api/v1/terminals/OA0001")  # now with its STATUS

            def events():
                st, txt = srv.http("/api/v1/events")
                kinds = {e["kind"] for e in json.loads(txt)["events"]}
                return {"dip", "swell"} <= kinds
            wait_for(events, 90, "the scheduled dip and swell as stored events")
        finally:
            rc, summary, err = sim_finish(sim, timeout=180)
        check(rc == 0, "simulator exit 0 (%s)" % err[-300:])

        def measurements():
            st, txt = srv.http("/api/v1/terminals/OA0001/measurements?interval=3s")
            st2, txt2 = srv.http("/api/v1/terminals/OA0001/measurements?interval=10s")
            st3, txt3 = srv.http("/api/v1/terminals/OA0001/phasors")
            return (json.loads(txt)["measurements"] and json.loads(txt2)["measurements"]
                    and json.loads(txt3)["seconds"])
        wait_for(measurements, 90, "3 s and 10 s values and phasor rows stored")

        # ---- every GET route, and its query variants
        st, txt = srv.http("/api/v1/events")
        ev = json.loads(txt)["events"][0]
        concrete = {"/api/v1/terminals/{id}": "/api/v1/terminals/OA0001",
                    "/api/v1/users/{name}": "/api/v1/users/oa-viewer",
                    "/api/v1/events/{id}": "/api/v1/events/%d" % ev["id"],
                    "/api/v1/commands/{id}": "/api/v1/commands/%d" % cmd_id}
        variants = {
            "/api/v1/terminals/{id}/measurements": [
                "?interval=3s", "?interval=10s", "?interval=10min", "?interval=2h",
                "?interval=3s&limit=1&from=0", "?interval=3s&from=2026-01-01T00:00:00Z",
                "?interval=fortnight", "?limit=0"],
            "/api/v1/terminals/{id}/phasors": ["", "?limit=1", "?to=1", "?from=2026-13-01"],
            "/api/v1/terminals/{id}/events": ["", "?limit=1", "?from=0&to=%d" % (2**62),
                                              "?limit=10001", "?kind=dip&acked=false"],
            "/api/v1/events": ["", "?limit=2", "?from=garbage", "?kind=swell",
                               "?terminal=OA0002&acked=false", "?kind=quake"],
            "/api/v1/audit": ["", "?limit=2", "?action=command.create", "?outcome=ok&user=" +
                              "gs-test-admin", "?before=1", "?limit=0"],
            "/api/v1/tokens": ["", "?user=oa-viewer", "?user=bad%20name"],
            # stored samples: raw (4000 sets in 1 s), an envelope, one channel, the secondary
            # side, a range with a gap (after the simulator stopped), bad parameters
            "/api/v1/terminals/{id}/waveform": [
                "", "?from=%d&to=%d&max_points=100000" % (sim_t0 + 5 * 10**9, sim_t0 + 6 * 10**9),
                "?from=%d&to=%d&max_points=50" % (sim_t0 + 3 * 10**9, sim_t0 + 9 * 10**9),
                "?from=%d&to=%d&channels=ua&side=secondary&max_points=10"
                % (sim_t0 + 3 * 10**9, sim_t0 + 4 * 10**9),
                "?from=%d&to=%d&max_points=20" % (sim_t0 + 10 * 10**9, sim_t0 + 60 * 10**9),
                "?from=10&to=5", "?max_points=0", "?side=upside", "?channels=zz&from=%d&to=%d"
                % (sim_t0 + 3 * 10**9, sim_t0 + 4 * 10**9),
                # a long range: the envelope from the summary pyramid
                "?from=%d&to=%d&max_points=100" % (sim_t0 - 3600 * 10**9, sim_t0 + 3600 * 10**9)],
            "/api/v1/terminals/{id}/trend": ["?quantity=u2_pct", "?quantity=Ua.rms&interval=2h&limit=1",
                                             "?quantity=nope"],
            "/api/v1/measurements/ranking": ["?quantity=u2_pct", "?quantity=freq&stat=avg&from=0",
                                             "?quantity=u2_pct&stat=median"],
            # the REST resources' filters and paging (where the server has them)
            "/api/v1/terminals": ["", "?online=true", "?online=false&limit=1", "?search=oa00",
                                  "?after=OA0001&limit=1", "?online=maybe"],
            "/api/v1/commands": ["", "?state=queued,sent,done", "?terminal=OA0002&limit=1",
                                 "?state=lost"],
            "/api/v1/terminals/{id}/commands": ["", "?state=done,sent&limit=1", "?state=lost"],
            "/api/v1/terminals/{id}/status": ["", "?limit=1", "?before=0"],
            "/api/v1/terminals/{id}/sessions": ["", "?limit=1", "?from=garbage"],
            # exports (text forms only: fetch() decodes the body): CSV, an ASCII .cff,
            # measurements as CSV, bad parameters
            "/api/v1/terminals/{id}/export": [
                "?format=csv&from=%d&to=%d" % (sim_t0 + 5 * 10**9, sim_t0 + 6 * 10**9),
                "?dat=ascii&container=cff&side=secondary&from=%d&to=%d"
                % (sim_t0 + 5 * 10**9, sim_t0 + 6 * 10**9),
                "?format=csv&what=measurements&interval=3s&from=0&to=%d" % (2**62),
                "", "?from=10&to=5", "?format=pdf&from=0&to=1", "?from=0&to=1000"],
            "/api/v1/events/{id}/export": ["?format=csv&pre=0.2&post=0.2",
                                           "?dat=ascii&container=cff&revision=2013", "?pre=61",
                                           "?dat=float32&revision=1999"],
            "/api/v1/events/{id}/waveform": ["", "?pre=0.2&post=0.2&max_points=50",
                                             "?side=secondary&max_points=100000", "?pre=61"],
        }

        def concrete_path(tpl):
            for prefix, real in sorted(concrete.items(), key=lambda kv: -len(kv[0])):
                if tpl.startswith(prefix):
                    return real + tpl[len(prefix):]
            if "{" in tpl:
                fail("no concrete value for %s: add one to test_openapi.py" % tpl)
            return tpl

        gets = [(m, p) for m, p, r in routes if m == "GET"]
        for m, tpl in gets:
            path = concrete_path(tpl)
            for q in variants.get(tpl, [""]):
                fetch(path + q)
        # terminals not seen since the start, unknown ones, a terminal's other form
        fetch("/api/v1/terminals/OA0002")
        fetch("/api/v1/terminals/NOPE-1")
        fetch("/api/v1/terminals/NOPE-1/latest")
        fetch("/api/v1/terminals/NOPE-1/commands")
        fetch("/api/v1/users/nobody-here")
        fetch("/api/v1/terminals/NOPE-1/waveform")
        fetch("/api/v1/events/999999/waveform")
        fetch("/api/v1/terminals/NOPE-1/export?from=0&to=1")
        fetch("/api/v1/events/999999/export?format=csv")

        # ---- the state-changing routes
        st, txt = fetch("/api/v1/users", "POST", json.dumps({"name": "oa-gen", "role": "operator"}))
        check(st == 201 and "password" in json.loads(txt), "user added with a generated password")
        fetch("/api/v1/users", "POST", json.dumps({"name": "oa-pw", "role": "viewer",
                                                   "password": "a-long-password-1"}))
        fetch("/api/v1/users", "POST", json.dumps({"name": "oa-pw", "role": "viewer"}))  # 409
        fetch("/api/v1/users", "POST", json.dumps({"name": "x", "role": "king"}))        # 400
        fetch("/api/v1/users", "POST", json.dumps({"name": "oa-w", "role": "viewer",
                                                   "password": "short"}))             # 400
        fetch("/api/v1/users", "POST", "name=x", headers={"Content-Type": "text/plain"})  # 415
        fetch("/api/v1/users/oa-gen", "PATCH", json.dumps({"role": "viewer"}))
        fetch("/api/v1/users/oa-pw", "PATCH", json.dumps({"password": "another-long-pw-2"}))
        fetch("/api/v1/users/oa-pw", "PATCH", json.dumps({"role": "viewer", "password": "x"}))
        fetch("/api/v1/users/gs-test-admin", "PATCH", json.dumps({"role": "viewer"}))  # 409
        st, txt = fetch("/api/v1/tokens", "POST", json.dumps({"user": "oa-gen", "name": "ci",
                                                              "expires_days": 30}))
        check(st == 201, "token created: %d" % st)
        tok = json.loads(txt)
        fetch("/api/v1/tokens", "POST", json.dumps({"name": "mine"}))
        fetch("/api/v1/tokens", "POST", json.dumps({"expires_days": 0}))  # 400
        fetch("/api/v1/tokens?user=oa-gen")
        fetch("/api/v1/tokens/%s" % tok["id"], "DELETE")
        fetch("/api/v1/tokens/%s" % tok["id"], "DELETE")  # 409 already revoked
        fetch("/api/v1/tokens/0000000000000000", "DELETE")  # 404
        fetch("/api/v1/tokens")
        fetch("/api/v1/users/oa-gen", "DELETE")
        fetch("/api/v1/users/oa-gen", "DELETE")  # 404
        fetch("/api/v1/terminals/OA0001/commands", "POST", json.dumps({"verb": "fly"}))
        fetch("/api/v1/terminals/OA0001/commands", "POST",
              json.dumps({"verb": "capture", "args": {"cycles": 0}}))
        fetch("/api/v1/terminals/OA0001/commands", "POST",
              json.dumps({"verb": "reboot", "ttl_s": 0}))
        fetch("/api/v1/terminals/NOPE-1/commands", "POST", json.dumps({"verb": "reboot"}))
        fetch("/api/v1/terminals/OA0001/commands", "POST", "[1]")
        fetch("/api/v1/terminals/OA0001/commands")
        # the REST resources' changes, where the server has them (h-rest)
        served = {(m, p) for m, p, r in routes}
        if ("POST", "/api/v1/terminals") in served:
            st, txt = fetch("/api/v1/terminals", "POST", json.dumps(
                {"id": "OA0009", "name": "new one", "location": {"lat": 1.5, "lon": 2.5},
                 "nominal_hz": 60, "vt_ratio": 100, "ct_ratio": 20, "declared_voltage": 63.5}))
            check(st == 201, "terminal created: %d %s" % (st, txt[:200]))
            fetch("/api/v1/terminals", "POST", json.dumps({"id": "OA0009"}))        # 409
            fetch("/api/v1/terminals", "POST", json.dumps({"id": "bad id!"}))       # 400
            fetch("/api/v1/terminals", "POST", json.dumps({"id": "OA0010", "colour": 1}))
        if ("PATCH", "/api/v1/terminals/{id}") in served:
            fetch("/api/v1/terminals/OA0009", "PATCH",
                  json.dumps({"name": "renamed", "location": None, "declared_voltage": None}))
            fetch("/api/v1/terminals/OA0009", "PATCH", json.dumps({}))              # 400
            fetch("/api/v1/terminals/NOPE-1", "PATCH", json.dumps({"name": "x"}))   # 404
        if ("POST", "/api/v1/terminals/{id}/secret") in served:
            fetch("/api/v1/terminals/OA0009/secret", "POST", "{}")
            fetch("/api/v1/terminals/NOPE-1/secret", "POST", "{}")                 # 404
        if ("DELETE", "/api/v1/terminals/{id}") in served:
            fetch("/api/v1/terminals/OA0009", "DELETE")
            fetch("/api/v1/terminals/OA0009", "DELETE")                            # 404
        if ("DELETE", "/api/v1/commands/{id}") in served:
            # OA0003 never logs in: its command stays queued and can be cancelled
            st, txt = fetch("/api/v1/terminals/OA0003/commands", "POST",
                            json.dumps({"verb": "reboot"}))
            qid = json.loads(txt)["id"]
            fetch("/api/v1/commands/%d" % qid, "DELETE")
            fetch("/api/v1/commands/%d" % qid, "DELETE")                           # 409
            fetch("/api/v1/commands/%d" % cmd_id, "DELETE")                        # 409
            fetch("/api/v1/commands/999999", "DELETE")                             # 404
            fetch("/api/v1/commands/999999")                                       # 404
        if ("POST", "/api/v1/events/{id}/ack") in served:
            fetch("/api/v1/events/%d/ack" % ev["id"], "POST", "{}")
            fetch("/api/v1/events/%d/ack" % ev["id"], "POST", "{}")                # 409
            fetch("/api/v1/events/999999/ack", "POST", "{}")                       # 404
            fetch("/api/v1/events?acked=true")
            fetch("/api/v1/events/999999")                                         # 404

        if ("GET", "/api/v1/live") in served:
            # the live feed's WebSocket handshake (101), refused from another site's page (403)
            # or without credentials (401), and a plain GET (426)
            import base64
            ws = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                  "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                  "Host": "127.0.0.1:%d" % srv.hport}
            for extra in ({"Authorization": "Bearer " + srv.token},
                          {"Authorization": "Bearer " + srv.token,
                           "Origin": "http://evil.example"}, {}):
                c = http.client.HTTPConnection("127.0.0.1", srv.hport, timeout=60)
                c.request("GET", "/api/v1/live", headers=dict(ws, **extra))
                r = c.getresponse()
                body = "" if r.status == 101 else r.read().decode()
                recs.append({"method": "GET", "path": "/api/v1/live", "status": r.status,
                             "body": body, "content_type": r.getheader("Content-Type"),
                             "request": None})
                c.close()
            check(recs[-3]["status"] == 101, "live feed handshake: %d" % recs[-3]["status"])
            fetch("/api/v1/live")

        # session: log in, who am I (cookie and token), log out; wrong password; token logout
        st, txt = fetch("/api/v1/session", "POST",
                        json.dumps({"user": "oa-pw", "password": "another-long-pw-2"}),
                        auth=False)
        check(st == 200, "login: %d %s" % (st, txt[:200]))
        fetch("/api/v1/session", "POST", json.dumps({"user": "oa-pw", "password": "wrong-pw"}),
              auth=False)
        fetch("/api/v1/session", "POST", json.dumps({"user": 1}), auth=False)
        fetch("/api/v1/session")
        fetch("/api/v1/session", "DELETE")  # 400 not_a_session (a token)
        # the cookie routes with the session cookie (urllib: set the header by hand)
        # a session cookie (fetch() does not hand back response headers)
        c = http.client.HTTPConnection("127.0.0.1", srv.hport, timeout=60)
        c.request("POST", "/api/v1/session",
                  json.dumps({"user": "oa-pw", "password": "another-long-pw-2"}),
                  {"Content-Type": "application/json", "Host": "127.0.0.1:%d" % srv.hport})
        r = c.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        c.close()
        origin = {"Cookie": cookie, "Origin": "http://127.0.0.1:%d" % srv.hport}
        fetch("/api/v1/session", auth=False, headers={"Cookie": cookie})
        fetch("/api/v1/users", "POST", json.dumps({"name": "oa-z", "role": "viewer"}),
              auth=False, headers={"Cookie": cookie, "Origin": "http://evil.example"})  # 403
        fetch("/api/v1/session", "DELETE", auth=False, headers=origin)
        fetch("/api/v1/session", auth=False, headers={"Cookie": cookie})  # 401 after logout
        # roles and credentials
        fetch("/api/v1/terminals", auth=False)                       # 401
        fetch("/api/v1/terminals", token="gst_0000000000000000_" + "A" * 43)  # 401
        fetch("/api/v1/users", token=viewer)                         # 403
        fetch("/api/v1/terminals/OA0001/commands", "POST", json.dumps({"verb": "reboot"}),
              token=viewer)                                          # 403
        fetch("/api/v1/terminals", token=viewer)
        fetch("/metrics")
        # the router: unknown path, a method the path does not serve, a foreign Host
        fetch("/api/v1/nothing-here")
        fetch("/api/v1/terminals", "DELETE")
        fetch("/api/v1/health", auth=False, headers={"Host": "attacker.example"})
        srv.stop()

        # ---- (c) validate this test's answers
        for rec in recs:
            checker.check(rec)
        own_problems = list(checker.problems)
        for p in own_problems:
            print("FAIL: " + p, file=sys.stderr)
        check(not own_problems, "this test's %d answers match the document" % len(recs))
        ok_ops = {(m, t) for m, t, s in checker.covered if 200 <= s < 300 or s == 101}
        uncovered = sorted("%s %s" % (m, t) for m, t, rx, op, item in spec.ops
                           if (m, t) not in ok_ops)
        check(not uncovered, "every documented operation answered successfully and matched "
              "its schema (not: %s)" % uncovered)

    # ---- (c) what the other integration tests recorded
    rec_dir = os.path.join(BUILD, "api-record")
    mine = os.environ.get("GS_API_RECORD")
    binary_t = os.path.getmtime(GRIDSENSE)
    files = stale = 0
    other = Checker(spec)
    for path in sorted(glob.glob(os.path.join(rec_dir, "*.jsonl"))):
        if mine and os.path.abspath(path) == os.path.abspath(mine):
            continue
        if os.path.getmtime(path) < binary_t:
            stale += 1  # recorded by an older build
            continue
        files += 1
        with open(path) as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:
                    continue  # being written by a test that still runs
                fail("%s line %d is not JSON" % (path, i + 1))
            other.check(rec)
    for p in other.problems:
        print("FAIL (recorded): " + p, file=sys.stderr)
    check(not other.problems, "%d answers recorded by %d other integration tests match the "
          "document (%d HTTP-front answers skipped, %d stale files skipped)"
          % (other.n, files, other.skipped_front, stale))
    print("ok: coverage of the recorded answers: %d (operation, status) pairs"
          % len(other.covered))


if __name__ == "__main__":
    main()
