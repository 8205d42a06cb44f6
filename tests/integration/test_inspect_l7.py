"""Inspected tunnels: L7 rules per request (access presets, allow/deny rules,
query matchers), enforce vs audit, path normalization attacks, request
smuggling, the Host check, keep-alive across a denial."""
import uuid

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from lib.clients import SELF_EXE, deny_body  # noqa: E402

from inspect_fixtures import closed_or_400, plain_tunnel, tls_tunnel, wait_l7  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

DENY_FIELDS = {"error", "reason_code", "host", "port", "binary", "policy", "method", "path",
               "detail", "hint"}


def mark():
    return uuid.uuid4().hex[:12]


def l7_denied(r, host, port, method, path):
    doc = deny_body(r.status, r.header, r.body, "l7_denied", host, port)
    missing = DENY_FIELDS - set(doc)
    assert not missing, "deny body lacks %s: %r" % (sorted(missing), doc)
    assert doc["error"] == "policy_denied" and doc["policy"] == "insp", doc
    assert doc["method"] == method and doc["path"] == path, doc
    assert doc["binary"] == SELF_EXE, doc
    return doc


# -- access presets, enforce --------------------------------------------------------------
def test_read_only_allows_reads_refuses_writes(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "ro.insp.test", 443)
    try:
        for method in ("GET", "HEAD", "OPTIONS"):
            r = t.request(method, "/ro-%s-%s" % (method, m), "ro.insp.test")
            assert r.status == 200, (method, r)
            if method != "HEAD":
                assert r.json()["method"] == method
        # a refused request without a body leaves the connection usable
        for method in ("DELETE", "POST", "PUT", "PATCH"):
            r = t.request(method, "/ro-%s-%s" % (method, m), "ro.insp.test")
            l7_denied(r, "ro.insp.test", 443, method, "/ro-%s-%s" % (method, m))
        r = t.request("GET", "/ro-after-%s" % m, "ro.insp.test")
        assert r.status == 200, r
    finally:
        t.close()
    for method in ("DELETE", "POST", "PUT", "PATCH"):
        assert not inet.seen("/ro-%s-%s" % (method, m)), method
    for method in ("GET", "HEAD", "OPTIONS"):
        assert inet.seen("/ro-%s-%s" % (method, m)), method
    ev = wait_l7(p, 1, path="/ro-POST-%s" % m)[0]
    assert ev["l7_decision"] == "deny" and ev["method"] == "POST", ev
    assert ev["host"] == "ro.insp.test" and ev["port"] == 443 and ev["policy"] == "insp", ev
    ev = wait_l7(p, 1, path="/ro-GET-%s" % m)[0]
    assert ev["l7_decision"] == "allow", ev


def test_post_with_body_refused_then_closed(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "ro.insp.test", 443)
    try:
        r = t.request("POST", "/ro-body-" + m, "ro.insp.test", body=b"x" * 5000,
                      headers=[("Content-Type", "application/octet-stream")])
        l7_denied(r, "ro.insp.test", 443, "POST", "/ro-body-" + m)
        assert (r.header("connection") or "").lower() == "close", r
        t.wait_closed(5)
    finally:
        t.close()
    assert not inet.seen("/ro-body-" + m)


def test_audit_mode_forwards_and_logs_would_deny(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "audit.insp.test", 443)
    try:
        r = t.request("POST", "/audit-post-" + m, "audit.insp.test", body=b"hello audit")
        assert r.status == 200, r
        assert r.json()["body_len"] == 11 and r.json()["method"] == "POST"
        assert r.header("x-cordon-deny") is None
        r = t.request("GET", "/audit-get-" + m, "audit.insp.test")
        assert r.status == 200, r
    finally:
        t.close()
    assert inet.seen("/audit-post-" + m)
    ev = wait_l7(p, 1, path="/audit-post-" + m)[0]
    assert ev["l7_decision"] == "would_deny" and ev["method"] == "POST", ev
    assert ev["host"] == "audit.insp.test" and ev["policy"] == "insp", ev
    ev = wait_l7(p, 1, path="/audit-get-" + m)[0]
    assert ev["l7_decision"] == "allow", ev


def test_whole_endpoint_in_audit_mode(iproxy, inet):
    """enforcement: audit on a rules endpoint: a would-be denial is forwarded."""
    p = iproxy(inet.policy(enforcement="audit"))
    m = mark()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        r = t.request("DELETE", "/audit-rules-" + m, "api.insp.test")
        assert r.status == 200 and r.json()["method"] == "DELETE", r
    finally:
        t.close()
    assert inet.seen("/audit-rules-" + m)
    assert wait_l7(p, 1, path="/audit-rules-" + m)[0]["l7_decision"] == "would_deny"


# -- rules ------------------------------------------------------------------------------
RULE_CASES = [
    # (method, target, allowed)
    ("GET", "/", True),
    ("GET", "/allowed/a", True),
    ("GET", "/allowed/a/b/c", True),
    ("HEAD", "/allowed/a", True),
    ("GET", "/public/a", True),
    ("GET", "/public/a/b", False),        # '*' is one segment
    ("GET", "/publicx/a", False),
    ("POST", "/sink", True),
    ("POST", "/allowed/a", False),        # method matters
    ("GET", "/sink", False),
    ("GET", "/q?mode=readonly", True),    # query matcher
    ("GET", "/q?mode=write", False),
    ("GET", "/q", False),
    ("GET", "/other", False),
]


def test_rules_method_path_query(iproxy, inet):
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        for method, target, allowed in RULE_CASES:
            r = t.request(method, target, "api.insp.test", body=b"" if method == "POST" else None)
            if allowed:
                assert r.status == 200, (method, target, r)
            else:
                doc = deny_body(r.status, r.header, r.body, "l7_denied", "api.insp.test", 443)
                assert doc["method"] == method, (target, doc)
                assert doc["path"].split("?")[0] == target.split("?")[0], (target, doc)
    finally:
        t.close()


def test_path_field_excludes_query(iproxy, inet):
    """`path` in the deny body and the l7_request event is the path (RFC 3986
    §3.3), not the target: query strings often carry credentials
    (?api_key=...), which must not be copied into audit logs."""
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        r = t.request("GET", "/q?mode=write&api_key=SECRET-QUERY-VALUE", "api.insp.test")
        l7_denied(r, "api.insp.test", 443, "GET", "/q")
    finally:
        t.close()
    ev = wait_l7(p, 1, method="GET", l7_decision="deny")[0]
    assert ev["path"] == "/q", ev
    with open(p.audit_path) as f:
        assert "SECRET-QUERY-VALUE" not in f.read()


def test_deny_rule_wins_over_allow(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "deny.insp.test", 443)
    try:
        r = t.request("GET", "/fine-" + m, "deny.insp.test")
        assert r.status == 200, r
        r = t.request("GET", "/admin/users-" + m, "deny.insp.test")
        l7_denied(r, "deny.insp.test", 443, "GET", "/admin/users-" + m)
        r = t.request("GET", "/admin", "deny.insp.test")
        l7_denied(r, "deny.insp.test", 443, "GET", "/admin")
    finally:
        t.close()
    assert not inet.seen("/admin/users-" + m)


# -- path normalization attacks --------------------------------------------------------
ALLOWLIST_ATTACKS = [      # api.insp.test allows GET /allowed/** only (plus /, /public/*)
    "/allowed/../admin-{m}",
    "/allowed/%2e%2e/admin-{m}",
    "/allowed/%2E%2E/admin-{m}",
    "/allowed/.%2e/admin-{m}",
    "/allowed/%2e./admin-{m}",
    "/allowed/./../admin-{m}",
    "/allowed/x/../../admin-{m}",
    "/public/../../admin-{m}",
    "//admin-{m}",
]
DENYLIST_ATTACKS = [       # deny.insp.test allows /** but denies /admin and /admin/**
    "//admin/x-{m}",
    "///admin/x-{m}",
    "/./admin/x-{m}",
    "/x/../admin/x-{m}",
    "/x/%2e%2e/admin/x-{m}",
    "/%2e%2e/admin/x-{m}",
    "/%61dmin/x-{m}",
    "/admin/./x-{m}",
    "/x/..//admin/x-{m}",
]
UNSAFE = [                 # encoded separators and bytes: refused, never forwarded
    "/allowed%2f..%2fadmin-{m}",
    "/allowed/..%2fadmin-{m}",
    "/allowed/%2e%2e%2fadmin-{m}",
    "/allowed/..%5cadmin-{m}",
    "/allowed/a%00-{m}",
]


@pytest.mark.parametrize("host,attacks", [("api.insp.test", ALLOWLIST_ATTACKS),
                                          ("deny.insp.test", DENYLIST_ATTACKS)])
def test_path_normalization_attacks_refused(iproxy, inet, host, attacks):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, host, 443)
    try:
        for a in attacks:
            target = a.format(m=m)
            r = t.request("GET", target, host)
            assert r.status == 403 and r.header("x-cordon-deny") == "l7_denied", (target, r)
            assert r.json()["reason_code"] == "l7_denied", (target, r)
    finally:
        t.close()
    seen = inet.seen(m)
    assert not seen, "reached the upstream: %r" % [s["target"] for s in seen]


def test_unsafe_encodings_refused(iproxy, inet):
    p = iproxy()
    m = mark()
    for a in UNSAFE:
        target = a.format(m=m)
        t = tls_tunnel(p, "api.insp.test", 443)
        try:
            t.send(b"GET %s HTTP/1.1\r\nHost: api.insp.test\r\n\r\n" % target.encode())
            r = closed_or_400(t)
            assert r is None or r.status in (400, 403), (target, r)
            if r is not None and r.status == 403:
                assert r.header("x-cordon-deny") == "l7_denied", (target, r)
        finally:
            t.close()
    seen = inet.seen(m)
    assert not seen, "reached the upstream: %r" % [s["target"] for s in seen]


def test_normalized_allowed_paths_still_pass(iproxy, inet):
    """Normalization must not break legitimate requests."""
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        for target in ("/allowed/x/../y", "/allowed//y", "/allowed/%79", "/allowed/./y",
                       "/public/%41"):
            r = t.request("GET", target, "api.insp.test")
            assert r.status == 200, (target, r)
    finally:
        t.close()


# -- smuggling ------------------------------------------------------------------------------
def smuggle_cases(m):
    H = "Host: api.insp.test\r\n"
    smuggled = "GET /admin/smuggled-%s HTTP/1.1\r\n%s\r\n" % (m, H)
    return {
        "cl_te": "POST /sink HTTP/1.1\r\n%sContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\n\r\n%s" % (H, 5 + len(smuggled), smuggled),
        "te_cl": "POST /sink HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                 "5c\r\n%s0\r\n\r\n" % (H, smuggled),
        "duplicate_cl": "POST /sink HTTP/1.1\r\n%sContent-Length: 0\r\nContent-Length: %d\r\n\r\n%s"
                        % (H, len(smuggled), smuggled),
        "cl_list": "POST /sink HTTP/1.1\r\n%sContent-Length: 0, %d\r\n\r\n%s"
                   % (H, len(smuggled), smuggled),
        "bad_chunk_size": "POST /sink HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                          "zz\r\nhello\r\n0\r\n\r\n%s" % (H, smuggled),
        "chunk_size_overflow": "POST /sink HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                               "10000000000000000005\r\nhello\r\n0\r\n\r\n%s" % (H, smuggled),
        "chunk_missing_crlf": "POST /sink HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhelloXX0\r\n\r\n%s" % (H, smuggled),
        "obs_fold": "GET /allowed/fold-%s HTTP/1.1\r\n%sX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n"
                    % (m, H),
        "obs_fold_tab": "GET /allowed/fold2-%s HTTP/1.1\r\n%sX-A: a\r\n\tb\r\n\r\n" % (m, H),
        "space_before_colon": "POST /allowed/sbc-%s HTTP/1.1\r\n%sTransfer-Encoding : chunked\r\n"
                              "Content-Length: 4\r\n\r\n0\r\n\r\n" % (m, H),
        "tab_before_colon": "GET /allowed/tbc-%s HTTP/1.1\r\n%sX-A\t: b\r\n\r\n" % (m, H),
    }


@pytest.mark.parametrize("case", sorted(smuggle_cases("x")))
def test_smuggling_refused(iproxy, inet, case):
    p = iproxy()
    m = mark()
    raw = smuggle_cases(m)[case].encode("latin-1")
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        t.send(raw)
        r = closed_or_400(t)
        assert r is None or r.status == 400, (case, r)
        if r is not None:
            t.wait_closed(5)
    finally:
        t.close()
    seen = inet.seen(m)
    assert not seen, "%s: reached the upstream: %r" % (case, [s["target"] for s in seen])


def test_pipelined_requests_each_checked(iproxy, inet):
    """A denied request hidden behind an allowed one in the same write is
    still checked (and the allowed ones around it still served)."""
    p = iproxy()
    m = mark()
    H = b"Host: api.insp.test\r\n"
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        t.send(b"GET /allowed/p1-" + m.encode() + b" HTTP/1.1\r\n" + H + b"\r\n"
               b"GET /admin-p2-" + m.encode() + b" HTTP/1.1\r\n" + H + b"\r\n"
               b"GET /allowed/p3-" + m.encode() + b" HTTP/1.1\r\n" + H + b"\r\n")
        a, b, c = t.read_response(), t.read_response(), t.read_response()
    finally:
        t.close()
    assert a.status == 200 and a.json()["target"] == "/allowed/p1-" + m, a
    l7_denied(b, "api.insp.test", 443, "GET", "/admin-p2-" + m)
    assert c.status == 200 and c.json()["target"] == "/allowed/p3-" + m, c
    assert not inet.seen("/admin-p2-" + m)


# -- Host, target form -----------------------------------------------------------------------
def test_host_header_must_name_connect_authority(iproxy, inet):
    p = iproxy()
    m = mark()
    for host_hdr in ("deny.insp.test", "api.insp.test:8443", "evil.insp.test"):
        t = tls_tunnel(p, "api.insp.test", 443)
        try:
            r = t.request("GET", "/allowed/host-" + m, host_hdr)
            d = deny_body(r.status, r.header, r.body, "host_mismatch", "api.insp.test", 443)
            assert d["hint"], d
        finally:
            t.close()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        t.send(("GET /allowed/nohost-%s HTTP/1.1\r\n\r\n" % m).encode())
        r = closed_or_400(t)
        assert r is None or r.status in (400, 403), r
    finally:
        t.close()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        for ok_host in ("api.insp.test", "api.insp.test:443", "API.insp.test"):
            r = t.request("GET", "/allowed/okhost", ok_host)
            assert r.status == 200, (ok_host, r)
    finally:
        t.close()
    assert not inet.seen("/allowed/host-" + m) and not inet.seen("nohost-" + m)
    ev = p.wait_events(1, event="decision", reason_code="host_mismatch")[0]
    assert ev["decision"] == "deny", ev


def test_absolute_form_inside_tunnel_refused(iproxy, inet):
    p = iproxy()
    m = mark()
    for target in ("https://api.insp.test/allowed/abs-" + m, "http://deny.insp.test/abs2-" + m,
                   "api.insp.test:443"):
        t = tls_tunnel(p, "api.insp.test", 443)
        try:
            method = "CONNECT" if ":" in target and "/" not in target else "GET"
            t.send(("%s %s HTTP/1.1\r\nHost: api.insp.test\r\n\r\n" % (method, target)).encode())
            r = closed_or_400(t)
            assert r is None or r.status in (400, 403), (target, r)
        finally:
            t.close()
    assert not inet.seen("abs-" + m) and not inet.seen("abs2-" + m)


# -- keep-alive -------------------------------------------------------------------------------
def test_keepalive_with_denied_request_in_the_middle(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        r1 = t.request("GET", "/allowed/ka1-" + m, "api.insp.test")
        assert r1.status == 200, r1
        r2 = t.request("GET", "/admin-ka2-" + m, "api.insp.test")
        l7_denied(r2, "api.insp.test", 443, "GET", "/admin-ka2-" + m)
        r3 = t.request("GET", "/allowed/ka3-" + m, "api.insp.test")
        assert r3.status == 200, r3
        r4 = t.request("HEAD", "/allowed/ka4-" + m, "api.insp.test")
        assert r4.status == 200 and r4.body == b"", r4
        r5 = t.request("POST", "/sink", "api.insp.test", body=b"k" * 100000)
        assert r5.status == 200 and r5.json()["length"] == 100000, r5
        r6 = t.request("DELETE", "/allowed/ka6-" + m, "api.insp.test")
        l7_denied(r6, "api.insp.test", 443, "DELETE", "/allowed/ka6-" + m)
        r7 = t.request("GET", "/allowed/ka7-" + m, "api.insp.test")
        assert r7.status == 200, r7
    finally:
        t.close()
    # one upstream connection carried every allowed request, in order
    conns = {r.json()["conn"] for r in (r1, r3, r7)}
    assert len(conns) == 1, conns
    assert [r.json()["req"] for r in (r1, r3, r7)] == [1, 2, 5], (r1.json(), r3.json(), r7.json())
    assert not inet.seen("/admin-ka2-" + m) and not inet.seen("ka6-" + m)
    ev = [e for e in p.audit() if e.get("event") == "l7_request" and m in e.get("path", "")]
    assert [(e["method"], e["l7_decision"]) for e in ev] == [
        ("GET", "allow"), ("GET", "deny"), ("GET", "allow"), ("HEAD", "allow"),
        ("DELETE", "deny"), ("GET", "allow")], ev
    assert len({e["conn"] for e in ev}) == 1, ev


def test_connection_close_from_client_honoured(iproxy, inet):
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        r = t.request("GET", "/allowed/bye", "api.insp.test", headers=[("Connection", "close")])
        assert r.status == 200, r
        assert t.wait_closed(5) < 5
    finally:
        t.close()


def test_plaintext_tunnel_keepalive_and_rules(iproxy, inet):
    p = iproxy()
    m = mark()
    c = plain_tunnel(p, "api.insp.test", 80)
    try:
        r = c.request("GET", "/allowed/pk1-" + m, "api.insp.test")
        assert r.status == 200, r
        r = c.request("GET", "/allowed/../pk2-" + m, "api.insp.test")
        assert r.status == 403 and r.header("x-cordon-deny") == "l7_denied", r
        r = c.request("GET", "/allowed/pk3-" + m, "api.insp.test")
        assert r.status == 200, r
    finally:
        c.close()
    assert not inet.seen("pk2-" + m)


def test_bodyless_responses_keep_the_tunnel_in_step(iproxy, inet):
    """HEAD, 204 and 304 answers carry no body whatever their headers say;
    the next request on the tunnel still gets its own response."""
    p = iproxy()
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        for method, target, status in (("GET", "/status/204", 204), ("GET", "/status/304", 304),
                                       ("HEAD", "/bytes/5000", 200), ("GET", "/status/404", 404)):
            r = t.request(method, target, "full.insp.test")
            assert r.status == status and r.body == b"", (target, r)
            r = t.request("GET", "/after" + target, "full.insp.test")
            assert r.status == 200 and r.json()["target"] == "/after" + target, (target, r)
    finally:
        t.close()
