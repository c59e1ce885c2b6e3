#!/usr/bin/env python3
"""REST resources of issue 8 section 3 against the real server: a terminal created through the
API logs in with the secret it returned (shown once), is changed (name, location, ratios,
declared voltage), gets a new secret (its session ends and the old secret stops working) and is
removed (its session ends, it can no longer log in); the terminal list filters (online, search)
and pages (limit/after); status and session history after a simulator run; the fleet-wide
command list with state and terminal filters and paging, one command, and cancel (a queued
command becomes `cancelled` and is never sent, a sent one is refused with 409); an operator
acknowledges a scheduled simulator dip (acked/acked_by/acked_at, the acked filter, a second
acknowledgement is 409); the least role of every new route (viewer 403 on changes, operator 403
on terminal changes); the audit rows of each change."""
import os
import socket
import sqlite3
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslib import (COMMAND, REJECT, WELCOME, RawClient, Server, TempDir, check, reject_reason,
                   sim_finish, sim_start, wait_for)

DIP_AT_S = 5.0
DIP_MS = 200
DIP_LEVEL = 60.0
UDIN = 57.735


SHOWN = []  # every secret the API returned: none may appear in the server's log


def recv_type(c, want, timeout=10):
    """Next frame of type `want`, skipping others (PING from the server, ...)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        t, p = c.recv_frame(timeout=left)
        if t is None or t == want:
            return t, p


def login(srv, tid, secret_hex):
    c = RawClient(srv.tport)
    t, p = c.login(tid, bytes.fromhex(secret_hex))
    return c, t, p


def error_shape(body):
    return isinstance(body, dict) and "error" in body and "code" in body["error"] \
        and "message" in body["error"]


def test_terminals(srv, op, viewer):
    # ---- create: the secret once, 64 hex digits, and the terminal logs in with it
    body = {"id": "R0001", "name": "Feeder 7 north", "location": {"lat": 47.5, "lon": 8.25},
            "nominal_hz": 50, "vt_ratio": 200, "ct_ratio": 40, "declared_voltage": UDIN}
    st, j = srv.json("/api/v1/terminals", "POST", json_dumps(body))
    check(st == 201, "POST /terminals -> 201, got %d %r" % (st, j))
    secret = j.get("secret", "")
    SHOWN.append(secret)
    check(len(secret) == 64 and all(ch in "0123456789abcdef" for ch in secret),
          "secret: 64 hex digits")
    check(j["id"] == "R0001" and j["name"] == "Feeder 7 north" and j["vt_ratio"] == 200
          and j["ct_ratio"] == 40 and j["declared_voltage"] == UDIN
          and j["location"] == {"lat": 47.5, "lon": 8.25} and j["online"] is False,
          "created terminal as sent: %r" % j)
    st, j2 = srv.json("/api/v1/terminals/R0001")
    check(st == 200 and "secret" not in j2, "the secret is not shown again")
    st, j = srv.json("/api/v1/terminals", "POST", json_dumps(body))
    check(st == 409 and j["error"]["code"] == "exists", "same id again -> 409")
    for bad in ({"id": "bad id"}, {"id": "X1", "nominal_hz": 55}, {"id": "X1", "vt_ratio": 0},
                {"id": "X1", "location": {"lat": 91, "lon": 0}}, {"id": "X1", "colour": "red"},
                {"id": "X1", "name": "n" * 65}, {"name": "no id"}):
        st, j = srv.json("/api/v1/terminals", "POST", json_dumps(bad))
        check(st == 400 and error_shape(j), "bad create %r -> 400, got %d" % (bad, st))
    st, _ = srv.http("/api/v1/terminals", "POST", "{\"id\":\"X2\"}",
                     headers={"Content-Type": "text/plain"})
    check(st == 415, "create with a text/plain body -> 415, got %d" % st)

    c, t, p = login(srv, "R0001", secret)
    check(t == WELCOME, "terminal created through the API logs in with its secret")
    wait_for(lambda: srv.json("/api/v1/terminals/R0001")[1]["online"], 10, "R0001 online")

    # ---- change: name, location cleared, ratios, declared voltage cleared, nominal Hz
    st, j = srv.json("/api/v1/terminals/R0001", "PATCH",
                     json_dumps({"name": "Feeder 7 south", "location": None, "vt_ratio": 100.5,
                                 "declared_voltage": None, "nominal_hz": 60}))
    check(st == 200 and j["name"] == "Feeder 7 south" and j["location"] is None
          and j["vt_ratio"] == 100.5 and j["ct_ratio"] == 40 and j["declared_voltage"] is None
          and j["nominal_hz"] == 60, "PATCH changes exactly the fields given: %r" % j)
    # (back to 50 Hz: the test terminal announces 50 Hz at login, 60 would be a BAD_CONFIG)
    st, j = srv.json("/api/v1/terminals/R0001", "PATCH",
                     json_dumps({"location": {"lat": 1, "lon": 2}, "nominal_hz": 50}))
    check(st == 200 and j["location"] == {"lat": 1, "lon": 2} and j["name"] == "Feeder 7 south"
          and j["nominal_hz"] == 50 and j["vt_ratio"] == 100.5, "PATCH location and Hz only")
    for bad in ({}, {"id": "R0002"}, {"ct_ratio": -1}, {"nominal_hz": "50"}):
        st, j = srv.json("/api/v1/terminals/R0001", "PATCH", json_dumps(bad))
        check(st == 400 and error_shape(j), "bad PATCH %r -> 400, got %d" % (bad, st))
    st, j = srv.json("/api/v1/terminals/NOPE", "PATCH", json_dumps({"name": "x"}))
    check(st == 404, "PATCH unknown terminal -> 404")
    check(c.closed(timeout=2) is False, "a change of name/ratios does not end the session")

    # ---- rotate the secret: the session ends within a second or two, old secret refused
    st, j = srv.json("/api/v1/terminals/R0001/secret", "POST", "{}")
    check(st == 200 and len(j.get("secret", "")) == 64 and j["secret"] != secret,
          "POST /secret -> a new secret: %r" % st)
    new_secret = j["secret"]
    SHOWN.append(new_secret)
    check(c.closed(timeout=15), "the session with the old secret ends after the rotation")
    c.close()
    c, t, p = login(srv, "R0001", secret)
    check(t == REJECT and reject_reason(p) == "BAD_AUTH", "old secret refused after rotation")
    c.close()
    c, t, p = login(srv, "R0001", new_secret)
    check(t == WELCOME, "new secret works")
    st, j = srv.json("/api/v1/terminals/NOPE/secret", "POST", "{}")
    check(st == 404, "rotate unknown terminal -> 404")

    # ---- list filters and paging
    for i, name in ((2, "Substation Alpha"), (3, "substation beta"), (4, "Pole 12"),
                    (5, "Pole 13")):
        st, j = srv.json("/api/v1/terminals", "POST",
                         json_dumps({"id": "R%04d" % i, "name": name}))
        check(st == 201, "create R%04d" % i)
    st, j = srv.json("/api/v1/terminals?search=SUBSTATION")
    check(st == 200 and [t["id"] for t in j["terminals"]] == ["R0002", "R0003"],
          "search matches names case-insensitively: %r" % [t["id"] for t in j["terminals"]])
    st, j = srv.json("/api/v1/terminals?search=r000")
    check(len(j["terminals"]) == 5, "search matches ids")
    st, j = srv.json("/api/v1/terminals?search=%25")
    check(len(j["terminals"]) == 0, "search is literal (%% is no wildcard)")
    st, j = srv.json("/api/v1/terminals?online=true")
    check([t["id"] for t in j["terminals"]] == ["R0001"], "online=true: %r" % j)
    st, j = srv.json("/api/v1/terminals?online=false&search=R")
    check([t["id"] for t in j["terminals"]] == ["R0002", "R0003", "R0004", "R0005"],
          "online=false")
    seen, after, pages = [], None, 0
    while True:
        st, j = srv.json("/api/v1/terminals?search=R&limit=2" + ("&after=" + after if after
                                                                   else ""))
        check(st == 200, "page")
        seen += [t["id"] for t in j["terminals"]]
        pages += 1
        after = j["next_after"]
        if after is None:
            break
        check(pages < 10, "paging ends")
    check(seen == ["R0001", "R0002", "R0003", "R0004", "R0005"] and pages == 3,
          "limit/after pages through every terminal once: %r in %d" % (seen, pages))
    for bad in ("online=yes", "limit=0", "limit=10001", "after=bad%20id"):
        st, j = srv.json("/api/v1/terminals?" + bad)
        check(st == 400 and error_shape(j), "%s -> 400, got %d" % (bad, st))

    # ---- roles: viewer and operator may not change terminals
    for method, path, b in (("POST", "/api/v1/terminals", {"id": "V1"}),
                            ("PATCH", "/api/v1/terminals/R0002", {"name": "x"}),
                            ("DELETE", "/api/v1/terminals/R0002", None),
                            ("POST", "/api/v1/terminals/R0002/secret", {})):
        for who, tok in (("viewer", viewer), ("operator", op)):
            st, j = srv.json(path, method, json_dumps(b) if b is not None else None, token=tok)
            check(st == 403 and error_shape(j), "%s %s %s -> 403, got %d" % (who, method, path,
                                                                             st))
        st, j = srv.json(path, method, json_dumps(b) if b is not None else None, auth=False)
        check(st == 401, "%s %s without credentials -> 401" % (method, path))
    st, j = srv.json("/api/v1/terminals?limit=1", token=viewer)
    check(st == 200, "viewer lists terminals")

    # ---- remove: the session ends, the terminal can no longer log in
    st, j = srv.json("/api/v1/terminals/R0001", "DELETE")
    check(st == 200 and j == {"removed": "R0001"}, "DELETE -> 200 %r" % j)
    check(c.closed(timeout=15), "the removed terminal's session ends")
    c.close()
    c, t, p = login(srv, "R0001", new_secret)
    check(t == REJECT and reject_reason(p) == "UNKNOWN_ID", "removed terminal cannot log in")
    c.close()
    st, j = srv.json("/api/v1/terminals/R0001", "DELETE")
    check(st == 404, "DELETE again -> 404")
    st, j = srv.json("/api/v1/terminals/R0001")
    check(st == 404, "removed terminal is gone")


def test_commands(srv, op, viewer):
    st, j = srv.json("/api/v1/terminals", "POST", json_dumps({"id": "C0001"}))
    check(st == 201, "create C0001")
    secret = j["secret"]
    # queued while offline
    ids = []
    for verb in ("get-status", "capture", "reboot"):
        st, j = srv.json("/api/v1/terminals/C0001/commands", "POST",
                         json_dumps({"verb": verb}), token=op)
        check(st == 201 and j["state"] == "queued", "%s queued for the offline terminal" % verb)
        ids.append(j["id"])
    st, j = srv.json("/api/v1/commands/%d" % ids[1], token=viewer)
    check(st == 200 and j["id"] == ids[1] and j["verb"] == "capture", "GET /commands/{id}")
    st, j = srv.json("/api/v1/commands/999999999")
    check(st == 404 and error_shape(j), "unknown command -> 404")
    st, j = srv.json("/api/v1/commands/abc")
    check(st == 404, "non-numeric command id -> 404")

    # cancel: viewer 403, operator ok
    st, j = srv.json("/api/v1/commands/%d" % ids[1], "DELETE", token=viewer)
    check(st == 403, "viewer may not cancel")
    st, j = srv.json("/api/v1/commands/%d" % ids[1], "DELETE", token=op)
    check(st == 200 and j["state"] == "cancelled" and j["id"] == ids[1],
          "queued -> cancelled: %r" % j)
    st, j = srv.json("/api/v1/commands/%d" % ids[1], "DELETE", token=op)
    check(st == 409 and j["error"]["code"] == "conflict" and "cancelled" in j["error"]["message"],
          "cancel again -> 409: %r" % j)
    st, j = srv.json("/api/v1/commands/999999999", "DELETE", token=op)
    check(st == 404, "cancel unknown -> 404")

    # the terminal logs in: the two others arrive, the cancelled one never
    c, t, p = login(srv, "C0001", secret)
    check(t == WELCOME, "C0001 logs in")
    got = []
    for _ in range(2):
        t, p = recv_type(c, COMMAND, 15)
        check(t == COMMAND, "queued command delivered")
        got.append(struct.unpack_from("<Q", p, 0)[0])
    check(sorted(got) == sorted([ids[0], ids[2]]), "delivered: %r (cancelled %d)" % (got, ids[1]))
    t, p = recv_type(c, COMMAND, 3)
    check(t is None, "the cancelled command is never sent")

    # a command sent at once to the online terminal cannot be cancelled
    st, j = srv.json("/api/v1/terminals/C0001/commands", "POST", json_dumps({"verb": "get-status"}),
                     token=op)
    check(st == 201, "command for the online terminal")
    sent_id = j["id"]
    t, p = recv_type(c, COMMAND, 15)
    check(t == COMMAND and struct.unpack_from("<Q", p, 0)[0] == sent_id, "it is sent")
    st, j = srv.json("/api/v1/commands/%d" % sent_id, "DELETE", token=op)
    check(st == 409 and "sent" in j["error"]["message"], "a sent command -> 409: %r" % j)
    c.close()

    # The race the gateway's hold closes: the cancel is with the writer (held up here by an
    # admin's write lock) when the terminal logs in and its queue is read; the command, still
    # `queued` in the database, must not be sent, and the cancel then succeeds.
    st, j = srv.json("/api/v1/terminals", "POST", json_dumps({"id": "C0002"}))
    check(st == 201, "create C0002")
    secret2 = j["secret"]
    st, j = srv.json("/api/v1/terminals/C0002/commands", "POST", json_dumps({"verb": "reboot"}),
                     token=op)
    check(st == 201 and j["state"] == "queued", "queued for C0002")
    race_id = j["id"]
    con = sqlite3.connect(os.path.join(srv.data, "gridsense.db"), timeout=30,
                          isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")  # WAL: readers go on, the writer waits
    try:
        hs = socket.create_connection(("127.0.0.1", srv.hport), timeout=60)
        hs.sendall(("DELETE /api/v1/commands/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                    "Authorization: Bearer %s\r\nContent-Length: 0\r\nConnection: close\r\n"
                    "\r\n" % (race_id, srv.hport, op)).encode())
        # a later request on another connection is answered after the DELETE was handled (one
        # loop, requests in arrival order): the hold is in place before the login below
        st, _ = srv.json("/api/v1/health")
        check(st == 200, "health during the lock")
        c2, t, p = login(srv, "C0002", secret2)
        check(t == WELCOME, "C0002 logs in while the cancel waits for the writer")
        t, p = recv_type(c2, COMMAND, 3)
        check(t is None, "a command being cancelled is not sent at login (got %r)" %
              (p and struct.unpack_from("<Q", p, 0)[0]))
    finally:
        con.execute("ROLLBACK")
        con.close()
    hs.settimeout(60)
    resp = b""
    while True:
        d = hs.recv(65536)
        if not d:
            break
        resp += d
    hs.close()
    check(resp.startswith(b"HTTP/1.1 200") and b'"cancelled"' in resp,
          "the cancel succeeds once the lock is gone: %r" % resp[:200])
    t, p = recv_type(c2, COMMAND, 2)
    check(t is None, "and the command is never sent")
    c2.close()

    # fleet-wide list: filters and paging
    st, j = srv.json("/api/v1/commands?state=cancelled", token=viewer)
    check(st == 200 and [x["id"] for x in j["commands"]] == [race_id, ids[1]],
          "state=cancelled: %r" % [x["id"] for x in j["commands"]])
    st, j = srv.json("/api/v1/commands?state=sent,cancelled&terminal=C0001")
    states = {x["state"] for x in j["commands"]}
    check(states <= {"sent", "cancelled"} and ids[1] in [x["id"] for x in j["commands"]],
          "state list filter: %r" % states)
    st, j = srv.json("/api/v1/terminals/C0001/commands?state=cancelled", token=viewer)
    check(st == 200 and [x["id"] for x in j["commands"]] == [ids[1]],
          "per-terminal list with a state filter: %r" % j)
    st, j = srv.json("/api/v1/terminals/C0001/commands?limit=2")
    check(len(j["commands"]) == 2 and j["next_before"] == j["commands"][1]["id"],
          "per-terminal list pages")
    st, j = srv.json("/api/v1/commands?terminal=NOPE")
    check(st == 200 and j["commands"] == [], "terminal filter")
    seen, before = [], None
    while True:
        st, j = srv.json("/api/v1/commands?terminal=C0001&limit=1" +
                         ("&before=%d" % before if before else ""))
        seen += [x["id"] for x in j["commands"]]
        before = j["next_before"]
        if before is None:
            break
        check(len(seen) < 20, "paging ends")
    check(seen == sorted(ids + [sent_id], reverse=True),
          "before pages newest first through all: %r" % seen)
    for bad in ("state=bogus", "limit=0", "before=-1", "terminal=a%20b"):
        st, j = srv.json("/api/v1/commands?" + bad)
        check(st == 400 and error_shape(j), "%s -> 400, got %d" % (bad, st))
    return ids[1], sent_id


def test_history_and_events(srv, d, op, viewer):
    st, j = srv.json("/api/v1/terminals", "POST",
                     json_dumps({"id": "A0001", "declared_voltage": UDIN}))
    check(st == 201, "create A0001")
    secrets = os.path.join(d, "secrets.txt")
    with open(secrets, "w") as f:
        f.write("A0001 %s\n" % j["secret"])
    p = sim_start(srv.tport, secrets, 1, 10,
                  ["--disturb", "0", "--status-interval", "1",
                   "--schedule", "dip@%g+%d:%g/1" % (DIP_AT_S, DIP_MS, DIP_LEVEL)])
    rc, summary, err = sim_finish(p, timeout=180)
    check(rc == 0, "simulator exit 0 (%s)" % err[-300:])

    # status history
    def statuses():
        st, j = srv.json("/api/v1/terminals/A0001/status", token=viewer)
        return st == 200 and len(j["status"]) >= 3 and j
    j = wait_for(statuses, 30, "status history")
    s0 = j["status"][0]
    for k in ("id", "time", "received", "rsrp_dbm", "supply_v", "temperature_c", "uptime_s",
              "buffer_permille"):
        check(k in s0, "status field %s" % k)
    check(s0["time"].endswith("Z") and "." in s0["time"], "RFC 3339 UTC with ms: %r" % s0["time"])
    times = [x["id"] for x in j["status"]]
    check(times == sorted(times, reverse=True), "status newest first")
    st, j1 = srv.json("/api/v1/terminals/A0001/status?limit=2")
    st, j2 = srv.json("/api/v1/terminals/A0001/status?limit=2&before=%d" % j1["next_before"])
    check(len(j1["status"]) == 2 and j2["status"][0]["id"] < j1["status"][1]["id"],
          "status paging with before")
    st, j = srv.json("/api/v1/terminals/A0001/status?from=2000-01-01T00:00:00Z"
                     "&to=2000-01-02T00:00:00Z")
    check(st == 200 and j["status"] == [], "status from/to")
    st, j = srv.json("/api/v1/terminals/NOPE/status")
    check(st == 404, "status of unknown terminal -> 404")

    # session history
    def sessions():
        st, j = srv.json("/api/v1/terminals/A0001/sessions", token=viewer)
        return st == 200 and j["sessions"] and j["sessions"][0]["disconnected"] and j
    j = wait_for(sessions, 30, "a closed session in the history")
    s = j["sessions"][0]
    check(s["remote"].startswith("127.0.0.1:") and s["connected"] and s["reason"]
          and s["duration_s"] > 5 and s["blocks"] > 0,
          "session: address, connect, disconnect, reason, counters: %r" % s)

    # events: the dip, acknowledged by an operator
    def dip():
        st, j = srv.json("/api/v1/terminals/A0001/events", token=viewer)
        return st == 200 and j["events"] and j["events"]
    evs = wait_for(dip, 60, "the scheduled dip as an event")
    ev = evs[0]
    check(ev["kind"] == "dip" and ev["acked"] is False and ev["acked_by"] is None
          and ev["acked_at"] is None, "new event not acknowledged: %r" % ev)
    st, j = srv.json("/api/v1/events?acked=false&terminal=A0001")
    check([e["id"] for e in j["events"]] == [e["id"] for e in evs], "acked=false lists it")
    st, j = srv.json("/api/v1/events/%d/ack" % ev["id"], "POST", token=viewer)
    check(st == 403, "viewer may not acknowledge")
    st, j = srv.json("/api/v1/events/%d/ack" % ev["id"], "POST", token=op)
    check(st == 200 and j["acked"] is True and j["acked_by"] == "rest-op"
          and j["acked_at"].endswith("Z"), "operator acknowledges: %r" % j)
    st, j = srv.json("/api/v1/events/%d/ack" % ev["id"], "POST", token=op)
    check(st == 409 and "rest-op" in j["error"]["message"], "second ack -> 409: %r" % j)
    st, j = srv.json("/api/v1/events/999999/ack", "POST", token=op)
    check(st == 404, "ack unknown -> 404")
    st, j = srv.json("/api/v1/events/%d" % ev["id"], token=viewer)
    check(st == 200 and j["acked_by"] == "rest-op", "GET /events/{id} shows the ack")
    st, j = srv.json("/api/v1/events?acked=true")
    check(ev["id"] in [e["id"] for e in j["events"]], "acked=true lists it")
    st, j = srv.json("/api/v1/events?acked=false&terminal=A0001")
    check(ev["id"] not in [e["id"] for e in j["events"]], "acked=false no longer does")
    st, j = srv.json("/api/v1/events?kind=swell&terminal=A0001")
    check(j["events"] == [], "kind filter")
    for bad in ("acked=maybe", "kind=sag", "before=999999", "limit=0"):
        st, j = srv.json("/api/v1/events?" + bad)
        check(st == 400 and error_shape(j), "events %s -> 400, got %d" % (bad, st))
    return ev["id"]


NEW_ROUTES = (("GET", "/api/v1/terminals?online=true"), ("POST", "/api/v1/terminals"),
              ("PATCH", "/api/v1/terminals/A0001"), ("DELETE", "/api/v1/terminals/A0001"),
              ("POST", "/api/v1/terminals/A0001/secret"),
              ("GET", "/api/v1/terminals/A0001/status"),
              ("GET", "/api/v1/terminals/A0001/sessions"), ("GET", "/api/v1/commands"),
              ("GET", "/api/v1/commands/1"), ("DELETE", "/api/v1/commands/1"),
              ("GET", "/api/v1/events?acked=true"), ("GET", "/api/v1/events/1"),
              ("POST", "/api/v1/events/1/ack"))


def test_unauthenticated(srv):
    for method, path in NEW_ROUTES:
        st, j = srv.json(path, method, "{}" if method in ("POST", "PATCH") else None, auth=False)
        check(st == 401 and error_shape(j), "%s %s without credentials -> 401, got %d"
              % (method, path, st))
        st, j = srv.json(path, method, "{}" if method in ("POST", "PATCH") else None,
                         token="gst_0000000000000000_revokedornotatoken")
        check(st == 401, "%s %s with an invalid token -> 401" % (method, path))


def test_audit(srv, cancelled, sent_id, ev_id):
    st, j = srv.json("/api/v1/audit?limit=1000")
    check(st == 200, "audit readable")
    rows = j["audit"]

    def has(action, target, outcome="ok", user=None):
        return any(r["action"] == action and r["target"] == target and r["outcome"] == outcome
                   and (user is None or r["user"] == user) for r in rows)
    for action, target in (("terminal.add", "terminal R0001"), ("terminal.change", "terminal R0001"),
                           ("terminal.secret", "terminal R0001"),
                           ("terminal.remove", "terminal R0001")):
        check(has(action, target, user="gs-test-admin"), "audit row %s %s" % (action, target))
    check(has("terminal.add", "terminal R0001", "failed"), "audit row of the refused re-add")
    check(has("command.cancel", "command %d" % cancelled, user="rest-op"), "audit command.cancel")
    check(has("command.cancel", "command %d" % sent_id, "failed"), "audit of the refused cancel")
    refused = [r for r in rows if r["action"] == "command.cancel"
               and r["target"] == "command %d" % sent_id][0]
    check(refused["detail"] == "terminal C0001, get-status: invalid state",
          "the refused cancel's row says what and why: %r" % refused["detail"])
    check(has("event.ack", "event %d" % ev_id, user="rest-op"), "audit event.ack")
    check(has("event.ack", "event %d" % ev_id, "failed"), "audit of the second ack")


def json_dumps(o):
    import json
    return json.dumps(o)


def main():
    with TempDir() as d:
        data = os.path.join(d, "data")
        os.makedirs(data, mode=0o700)
        srv = Server(data, extra=["--dsp-workers", "1"])
        srv.start()
        try:
            op = srv.make_token("rest-op", "operator")
            viewer = srv.make_token("rest-viewer", "viewer")
            test_terminals(srv, op, viewer)
            cancelled, sent_id = test_commands(srv, op, viewer)
            ev_id = test_history_and_events(srv, d, op, viewer)
            test_audit(srv, cancelled, sent_id, ev_id)
            test_unauthenticated(srv)
        finally:
            check(srv.stop() == 0, "server exits 0")
        log = srv.log()
        check(SHOWN and not any(x in log for x in SHOWN), "no secret in the server log")
        print("ok")


if __name__ == "__main__":
    main()
