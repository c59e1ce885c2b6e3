#!/usr/bin/env python3
"""Writes the seed corpora of the API fuzz targets (tests/fuzz/corpus/api_router, api_json).

Run from the repository root: python3 tests/fuzz/gen_api_corpus.py. Request layout and the
credential placeholders (@admin, @operator, @viewer, @revoked, @session): see the comment at the
top of tests/fuzz/targets/fuzz_api_router.c. Realistic requests for every route of
`gridsense routes`, with each kind of credential, and malformed variants."""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def req(method, target, headers=(), body=b"", host="127.0.0.1"):
    lines = [f"{method} {target}".encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    for h in headers:
        lines.append(h.encode() if isinstance(h, str) else h)
    return b"\n".join(lines) + b"\n\n" + body


ADM = "Authorization: Bearer @admin"
OPR = "Authorization: Bearer @operator"
VIEW = "Authorization: Bearer @viewer"
JSON = "Content-Type: application/json"
ORIGIN = "Origin: http://127.0.0.1"

router = {
    # public
    "health": req("GET", "/api/v1/health"),
    "metrics": req("GET", "/metrics"),
    "login_ok": req("POST", "/api/v1/session", [JSON, ORIGIN],
                    b'{"user":"fz-view","password":"fuzz-password-1"}'),
    "login_bad_pw": req("POST", "/api/v1/session", [JSON, "X-Forwarded-For: 10.0.0.9"],
                        b'{"user":"fz-admin","password":"nope"}'),
    "login_not_json": req("POST", "/api/v1/session", ["Content-Type: text/plain"],
                          b'{"user":"a","password":"b"}'),
    "login_dup_keys": req("POST", "/api/v1/session", [JSON],
                          b'{"user":"fz-view","user":"fz-admin","password":"x"}'),
    # session
    "session_get_cookie": req("GET", "/api/v1/session", ["Cookie: gs_session=@session"]),
    "session_get_token": req("GET", "/api/v1/session", [VIEW]),
    "session_delete": req("DELETE", "/api/v1/session",
                          ["Cookie: theme=dark; gs_session=@session", ORIGIN]),
    "session_delete_csrf": req("DELETE", "/api/v1/session",
                               ["Cookie: gs_session=@session", "Origin: http://evil.example"]),
    "session_delete_noref": req("DELETE", "/api/v1/session", ["Cookie: gs_session=@session"]),
    "session_delete_referer": req("DELETE", "/api/v1/session",
                                  ["Cookie: gs_session=@session",
                                   "Referer: http://127.0.0.1/app/index.html"]),
    # terminals
    "terminals": req("GET", "/api/v1/terminals", [VIEW]),
    "terminal": req("GET", "/api/v1/terminals/T1", [VIEW]),
    "terminal_missing": req("GET", "/api/v1/terminals/NOPE", [VIEW]),
    "terminal_latest": req("GET", "/api/v1/terminals/T1/latest", [VIEW]),
    "terminal_events": req("GET", "/api/v1/terminals/T1/events?from=2026-01-01T00:00:00Z&to=2026-12-31T23:59:59.999Z&limit=10", [VIEW]),
    "terminal_measurements": req("GET", "/api/v1/terminals/T1/measurements?interval=600&from=0&to=9223372036854775807&limit=5", [VIEW]),
    "terminal_measurements_10min": req("GET", "/api/v1/terminals/T1/measurements?interval=10min&from=2026-12-04T00:00:00Z&limit=2", [VIEW]),
    "terminal_events_all": req("GET", "/api/v1/terminals/T1/events?from=0", [VIEW]),
    "terminal_phasors": req("GET", "/api/v1/terminals/T1/phasors", [VIEW]),
    "terminal_commands_get": req("GET", "/api/v1/terminals/T1/commands", [OPR]),
    "terminal_commands_post": req("POST", "/api/v1/terminals/T1/commands", [OPR, JSON],
                                  b'{"verb":"get-status","ttl_s":60}'),
    "terminal_commands_post_args": req("POST", "/api/v1/terminals/T1/commands", [OPR, JSON],
                                       b'{"verb":"capture","args":{"pre_ms":100,"post_ms":200}}'),
    "terminal_commands_post_textplain": req("POST", "/api/v1/terminals/T1/commands",
                                            ["Cookie: gs_session=@session",
                                             "Origin: http://evil.example",
                                             "Content-Type: text/plain"], b'{"verb":"reboot"}'),
    "terminal_commands_viewer": req("POST", "/api/v1/terminals/T1/commands", [VIEW, JSON],
                                    b'{"verb":"get-status"}'),
    "events": req("GET", "/api/v1/events?limit=3&from=1700000000000000000", [VIEW]),
    # admin
    "users_get": req("GET", "/api/v1/users", [ADM]),
    "users_post": req("POST", "/api/v1/users", [ADM, JSON],
                      b'{"name":"alice","role":"operator","password":"correct horse battery"}'),
    "users_post_genpw": req("POST", "/api/v1/users", [ADM, JSON], b'{"name":"bob","role":"viewer"}'),
    "user_get": req("GET", "/api/v1/users/fz-oper", [ADM]),
    "user_patch": req("PATCH", "/api/v1/users/alice", [ADM, JSON], b'{"role":"admin"}'),
    "user_patch_pw": req("PATCH", "/api/v1/users/alice", [ADM, JSON],
                         b'{"password":"another long password"}'),
    "user_delete": req("DELETE", "/api/v1/users/bob", [ADM]),
    "tokens_get": req("GET", "/api/v1/tokens?user=fz-admin", [ADM]),
    "tokens_post": req("POST", "/api/v1/tokens", [ADM, JSON],
                       b'{"user":"fz-view","name":"script","expires_days":30}'),
    "token_delete": req("DELETE", "/api/v1/tokens/0123456789abcdef", [ADM]),
    "audit": req("GET", "/api/v1/audit?limit=5&action=user.&outcome=ok&user=fz-admin&from=2026-01-01T00:00:00Z", [ADM]),
    "audit_before": req("GET", "/api/v1/audit?before=100&limit=1", [ADM]),
    # auth failures
    "no_auth": req("GET", "/api/v1/terminals"),
    "revoked": req("GET", "/api/v1/terminals", ["Authorization: Bearer @revoked"]),
    "bad_scheme": req("GET", "/api/v1/terminals", ["Authorization: Basic YWRtaW46YWRtaW4="]),
    "unknown_token": req("GET", "/api/v1/terminals", ["Authorization: Bearer gst_0000000000000000_xxxx"]),
    "viewer_admin_route": req("GET", "/api/v1/users", [VIEW]),
    "operator_user_post": req("POST", "/api/v1/users", [OPR, JSON], b'{"name":"x","role":"admin"}'),
    # malformed
    "bad_host": req("GET", "/api/v1/health", host="evil.example"),
    "no_host": req("GET", "/api/v1/health", host=None),
    "host_v6": req("GET", "/api/v1/health", host="[::1]:8080"),
    "host_v6_bad": req("GET", "/api/v1/health", host="[::1"),
    "method_put": req("PUT", "/api/v1/terminals", [ADM]),
    "method_unknown": req("BREW", "/api/v1/health"),
    "traversal": req("GET", "/api/v1/../../etc/passwd", [ADM]),
    "traversal_enc": req("GET", "/api/v1/terminals/%2e%2e/%2e%2e/etc/passwd", [ADM]),
    "param_long": req("GET", "/api/v1/terminals/" + "A" * 300, [VIEW]),
    "param_bytes": req("GET", "/api/v1/users/\xff\xfe\x01", [ADM]).replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"),
    "query_bad": req("GET", "/api/v1/events?limit=-1&from=garbage&to=%zz&limit=99999999999999999999", [VIEW]),
    "query_pct": req("GET", "/api/v1/audit?user=%00&action=%&outcome=%4", [ADM]),
    "nested": req("POST", "/api/v1/users", [ADM, JSON], b"[" * 3000 + b"]" * 3000),
    "bad_utf8": req("POST", "/api/v1/users", [ADM, JSON], b'{"name":"\xc3\x28","role":"viewer"}'),
    "json_nul": req("POST", "/api/v1/tokens", [ADM, JSON], b'{"user":"fz\\u0000view","name":"a\x00b"}'),
    "json_not_object": req("POST", "/api/v1/tokens", [ADM, JSON], b'["fz-view"]'),
    "json_trailing": req("POST", "/api/v1/users", [ADM, JSON], b'{"name":"c","role":"viewer"} x'),
    "json_types": req("POST", "/api/v1/users", [ADM, JSON], b'{"name":1,"role":true,"password":null}'),
    "dup_headers": req("GET", "/api/v1/session", ["Cookie: a=1", "Cookie: gs_session=@session",
                                                  "X-Forwarded-For: 1.2.3.4, 5.6.7.8"]),
    "empty": b"",
    "crlf": b"GET /api/v1/health?x=1\r\nHost: localhost:8080\r\n\r\n",
}

# api_json: byte 0 = content type (bits 0..1) and qparam capacity (bits 2..7), then the bytes.
def j(ct, cap, payload):
    return bytes([(ct & 3) | (((cap - 1) & 63) << 2)]) + payload

api_json = {
    "obj": j(0, 64, b'{"user":"a","password":"b"}'),
    "obj_charset": j(1, 8, b'{"verb":"capture","args":{"pre_ms":1}}'),
    "textplain": j(2, 64, b'{"a":1}'),
    "no_ct": j(3, 64, b'{"a":1}'),
    "array": j(0, 64, b"[1,2,3]"),
    "dup": j(0, 64, b'{"role":"viewer","role":"admin"}'),
    "utf8_bad": j(0, 64, b'{"n":"\xed\xa0\x80"}'),
    "utf8_overlong": j(0, 64, b'{"n":"\xc0\xaf"}'),
    "nested": j(0, 64, b"[" * 2100 + b"]" * 2100),
    "nested_obj": j(0, 64, b'{"a":' * 1000 + b"1" + b"}" * 1000),
    "escape_nul": j(0, 64, b'{"a":"\\u0000"}'),
    "surrogate": j(0, 64, b'{"a":"\\ud800"}'),
    "big_num": j(0, 64, b'{"a":1e999999,"b":-99999999999999999999999}'),
    "empty": j(0, 64, b""),
    "truncated": j(0, 64, b'{"a":"'),
    "query": j(0, 16, b"limit=10&from=2026-01-01T00:00:00Z&to=1700000000000000000&user=a%40b"),
    "query_pct": j(0, 4, b"limit=%41%4&from=%zz&to=%00&user=+x+"),
    "query_long": j(0, 1, b"limit=" + b"9" * 200),
    "query_empty_names": j(0, 64, b"&&=&limit&limit=&=x&a=1"),
    "time_rfc": j(0, 64, b"2026-12-05T13:15:27.123456789Z"),
    "time_leap": j(0, 64, b"2028-02-29T23:59:59Z"),
    "time_bad_day": j(0, 64, b"2026-02-30T00:00:00Z"),
    "time_year": j(0, 64, b"2199-12-31T23:59:59.999Z"),
    "time_int": j(0, 64, b"-9223372036854775808"),
    "time_space": j(0, 64, b" 2026-01-01T00:00:00Z"),
    "time_frac": j(0, 64, b"2026-01-01T00:00:00.Z"),
}

for name, files in (("api_router", router), ("api_json", api_json)):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    for k, v in files.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
    print(f"{d}: {len(files)} files")
