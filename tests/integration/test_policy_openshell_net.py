"""OpenShell's policy DNS, local policy API, proxy compatibility and relay
tests, walked one by one (#13).

Every test of NVIDIA/OpenShell crates/openshell-supervisor-network/src/
{policy_local.rs (33), policy_dns/mod.rs (13), policy_dns/wire.rs (5),
proxy/tests/compatibility.rs (15), proxy/relay.rs (6)} at the revision walked
(2f7fb65; 72 tests, names as FILE::TEST in openshell_net_tests.txt) is exactly
one of

  REAL            a decision it asserts, taken for real: names asked of the
                  policy DNS responder inside a real `cordon run` (what is
                  answered, with what, what is refused and never leaves), the
                  connections that follow through the sandbox's proxy to the
                  session's upstream namespace (which resolved addresses are
                  dialled, which are refused), and raw requests to a real
                  `cordon proxy`;
  LOAD / EVAL     a decision asked of `cordon policy check` / `cordon policy
                  eval`;
  NOT_A_DECISION  machinery that decides nothing about a policy (OpenShell's
                  in-sandbox policy advisor API, OCSF event shapes, relay
                  generation guards), with what cordon does about the same
                  concern and the cordon test that covers it;
  DIFFERS         a deliberate difference (doc/policy.md "Where we differ"),
                  never more permissive than OpenShell; where cordon's side is
                  a decision it is also a REAL/LOAD/EVAL row.

cordon's policy DNS (src/sandbox/policydns.c) differs in one way that
shapes several rows: it never resolves upstream. A name the policy lists
gets a synthetic address from the sandbox's own map at once; the proxy
resolves the real name when the sandbox connects, and drops every answer
the address fence refuses (loopback, link-local, metadata, and private
addresses outside `allowed_ips`), dialling only approved ones. So where
OpenShell filters answers at DNS time and refuses the name when none is
left, cordon refuses the connection; the addresses that can be reached are
the same (or fewer: an exact host never reaches a private address without
`allowed_ips`).

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step, so the count is checkable."""
import json
import os
import socket
import subprocess

import pytest

from lib.clients import SELF_EXE
from lib.httpclient import HttpConn
from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"
CURL = "/usr/bin/curl"
LOC, DNS, WIRE = "policy_local.rs::", "policy_dns/mod.rs::", "policy_dns/wire.rs::"
COMPAT, RELAY = "proxy/tests/compatibility.rs::", "proxy/relay.rs::"

UPSTREAM = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "openshell_net_tests.txt")).read().split()
COUNTS = {"policy_local.rs": 33, "policy_dns/mod.rs": 13, "policy_dns/wire.rs": 5,
          "proxy/tests/compatibility.rs": 15, "proxy/relay.rs": 6}

NOPROXY = ["env", "-u", "HTTP_PROXY", "-u", "HTTPS_PROXY", "-u", "ALL_PROXY", "-u", "http_proxy",
           "-u", "https_proxy", "-u", "all_proxy", "-u", "NODE_USE_ENV_PROXY", "-u", "NO_PROXY",
           "-u", "no_proxy"]

# ---- REAL, policy DNS: (upstream test, query "udp|tcp NAME TYPE", expect)
# expect: "synthetic" (NOERROR, one A in 198.18/15, TTL 5), "nodata" (NOERROR,
# no answer), "nxdomain" (no answer; the name never reaches the resolver).
DNSQ = [
    (DNS + "refuses_ineligible_name_before_upstream_resolution",
     "udp other.oshnet.test A", "nxdomain"),
    (WIRE + "ineligible_query_is_refused_without_upstream_call",
     "udp other.oshnet.test A", "nxdomain"),
    (WIRE + "udp_and_tcp_queries_return_synthetic_answers", "udp DB.OSHNET.TEST A", "synthetic"),
    (WIRE + "udp_and_tcp_queries_return_synthetic_answers", "tcp db.oshnet.test A", "synthetic"),
    (WIRE + "udp_and_tcp_queries_return_synthetic_answers", "udp db.oshnet.test AAAA", "nodata"),
    (WIRE + "eligible_family_without_records_returns_empty_success",
     "udp db.oshnet.test AAAA", "nodata"),
    (WIRE + "runtime_without_ipv6_egress_suppresses_aaaa_without_resolving",
     "tcp db.oshnet.test AAAA", "nodata"),
    (WIRE + "unsupported_type_is_not_implemented_and_malformed_tcp_is_rejected",
     "udp db.oshnet.test TXT", "nxdomain"),
    (DNS + "wildcard_is_eligible_but_uses_public_only_destination_rules",
     "udp x.wild.oshnet.test A", "synthetic"),
    (DNS + "eligible_nxdomain_fails_without_publishing_a_mapping",
     "udp nx.oshnet.test A", "synthetic"),
    (DNS + "ttl_is_floored_and_capped", "udp db.oshnet.test A", "synthetic"),
    (DNS + "reserved_gateway_alias_without_trusted_address_never_queries_resolver",
     "udp host.docker.internal A", "synthetic"),
]

# ---- REAL, the connection after the answer: (upstream test, name, expect,
# reason) - "200": dialled, and the address dialled is the one approved
# answer; otherwise the reason code of the refusal (nothing was dialled).
CONNECT = [
    (DNS + "eligible_name_filters_answers_and_publishes_bounded_mapping",
     "db.oshnet.test", "200", None),
    (DNS + "allowed_ips_filters_each_answer_without_rejecting_usable_addresses",
     "db.oshnet.test", "200", None),
    (DNS + "mapping_publication_ocsf_exposes_correlatable_resolution_chain",
     "db.oshnet.test", "200", None),
    (DNS + "wildcard_is_eligible_but_uses_public_only_destination_rules",
     "x.wild.oshnet.test", "deny", "address_blocked"),
    (DNS + "eligible_name_filters_answers_and_publishes_bounded_mapping",
     "priv.oshnet.test", "deny", "address_blocked"),
    (DNS + "eligible_nxdomain_fails_without_publishing_a_mapping", "nx.oshnet.test", "deny",
     "resolve_failed"),
    (DNS + "reserved_gateway_alias_without_trusted_address_never_queries_resolver",
     "host.docker.internal", "deny", "address_blocked"),
    (DNS + "reserved_gateway_alias_pins_only_the_exact_trusted_address",
     "host.containers.internal", "deny", "address_blocked"),
    (DNS + "reserved_gateway_alias_rejects_mismatch_metadata_private_and_wrong_family_answers",
     "host.openshell.internal", "deny", "address_blocked"),
]


def _records(ns_ip):
    """What the session's upstream resolver (the proxy's --resolver) answers
    for the names of this walk. nx.oshnet.test is absent: NXDOMAIN."""
    return {
        # loopback, metadata, a private address outside allowed_ips, and the
        # one approved address; TTL 300 (OpenShell caps its mapping at 30 s)
        "db.oshnet.test": (["127.0.0.1", "169.254.169.254", "10.231.254.254", ns_ip], 300),
        "priv.oshnet.test": ([ns_ip], 0),             # private, exact host, no allowed_ips
        "x.wild.oshnet.test": ([ns_ip], 0),           # private, wildcard host
        # OpenShell's host-gateway aliases: the link-local gateway address,
        # a mismatching/metadata/private mix, a wrong-family link-local
        "host.docker.internal": (["169.254.1.2"], 0),
        "host.containers.internal": (["169.254.169.254", "169.254.1.3", "10.2.3.4",
                                      "169.254.1.2"], 0),
        "host.openshell.internal": (["169.254.1.3", "fe80::2"], 0),
    }


def _policy(ns_ip):
    return """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev]
  read_write: [/dev/null]
network_policies:
  net:
    endpoints:
      - {host: db.oshnet.test, port: 80, allowed_ips: ["%s/32"]}
      - {host: priv.oshnet.test, port: 80}
      - {host: "*.wild.oshnet.test", port: 80}
      - {host: nx.oshnet.test, port: 80, allowed_ips: ["10.231.0.0/16"]}
      - {host: host.docker.internal, port: 80}
      - {host: host.containers.internal, port: 80}
      - {host: host.openshell.internal, port: 80}
    binaries:
      - path: /usr/bin/curl
      - path: "/usr/bin/python3*"
""" % ns_ip


# One hand-built query per argv item ("udp|tcp NAME TYPE") to the sandbox's
# resolver, 127.0.0.1:53; one JSON line per answer.
DIG = r'''
import json, socket, struct, sys
TYPES = {"A": 1, "AAAA": 28, "TXT": 16}
def ask(proto, name, qtype, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack("!HH", TYPES[qtype], 1)
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
        s.sendto(q, ("127.0.0.1", 53)); m = s.recv(4096)
    else:
        s = socket.create_connection(("127.0.0.1", 53), timeout=5)
        s.sendall(struct.pack("!H", len(q)) + q)
        n = struct.unpack("!H", s.recv(2))[0]; m = b""
        while len(m) < n:
            m += s.recv(n - len(m))
    s.close()
    rid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    off, addrs, ttls = len(q), [], []
    for _ in range(an):
        t, c, ttl, rdl = struct.unpack("!HHIH", m[off + 2:off + 12])
        if t == 1:
            addrs.append(socket.inet_ntoa(m[off + 12:off + 12 + rdl]))
        ttls.append(ttl); off += 12 + rdl
    return {"q": "%s %s %s" % (proto, name, qtype), "id_ok": rid == qid, "rcode": flags & 15,
            "an": an, "addrs": addrs, "ttls": ttls}
for i, a in enumerate(sys.argv[1:]):
    print(json.dumps(ask(*a.split(), 2000 + i)), flush=True)
# A TCP frame that declares 10 bytes and sends 2: no answer, the stream closes.
s = socket.create_connection(("127.0.0.1", 53), timeout=5)
s.sendall(b"\x00\x0a\x01\x02"); s.shutdown(socket.SHUT_WR)
print(json.dumps({"q": "tcp short frame", "got": s.recv(100).hex()}), flush=True)
'''


@pytest.fixture
def oshnet(sandbox):
    """The sandbox, with this walk's names at the session resolver."""
    recs = _records(sandbox.net.ip)
    for name, (addrs, ttl) in recs.items():
        sandbox.net.dns.set(name, addrs, ttl=ttl)
    try:
        yield sandbox, sandbox.write_policy(_policy(sandbox.net.ip), "net.yaml")
    finally:
        for name in recs:
            sandbox.net.dns.set(name, None)


@pytest.mark.timeout(90)
def test_policy_dns_answers(oshnet):
    sb, p = oshnet
    qs = sorted({q for _, q, _ in DNSQ})
    r = sb.run(NOPROXY + [PY, "-c", DIG] + qs, policy=p)
    assert r.code == 0, r
    got = {d["q"]: d for d in (json.loads(l) for l in r.out.splitlines())}
    assert got["tcp short frame"]["got"] == "", got
    for name, q, expect in DNSQ:
        d = got[q]
        assert d["id_ok"], (name, d)
        if expect == "synthetic":
            assert d["rcode"] == 0 and d["an"] == 1, (name, d)
            assert d["addrs"][0].startswith("198.18.") or d["addrs"][0].startswith("198.19."), d
            assert d["ttls"] == [5], (name, d)       # OpenShell: clamped to 1..30 s
        elif expect == "nodata":
            assert d["rcode"] == 0 and d["an"] == 0, (name, d)
        else:
            assert d["rcode"] == 3 and d["an"] == 0, (name, d)
    # the same name over UDP (in any case) and TCP: the same synthetic address
    assert got["udp DB.OSHNET.TEST A"]["addrs"] == got["tcp db.oshnet.test A"]["addrs"]
    # refused names got a dns_denied event; none of them reached the resolver,
    # and no name at all was resolved upstream at DNS time
    denied = {(e["name"], e["qtype"]) for e in r.events("dns_denied")}
    assert ("other.oshnet.test", "A") in denied and ("db.oshnet.test", "TXT") in denied, denied
    for n in ("other.oshnet.test", "db.oshnet.test", "x.wild.oshnet.test", "nx.oshnet.test",
              "host.docker.internal"):
        assert not sb.net.dns.queried(n), n


@pytest.mark.timeout(120)
def test_connections_after_the_answer(oshnet):
    sb, p = oshnet
    names = sorted({n for _, n, _, _ in CONNECT})
    script = "; ".join("echo %s=$(curl -s -m 10 -o /dev/null -w '%%{http_code}' http://%s/)"
                       % (n, n) for n in names)
    r = sb.run(NOPROXY + ["sh", "-c", script], policy=p, timeout=90)
    assert r.code == 0, r
    out = dict(l.split("=", 1) for l in r.out.splitlines() if "=" in l)
    for name, host, expect, reason in CONNECT:
        ev = [e for e in r.events("decision") if e.get("host") == host]
        assert ev, (name, host, r.audit())
        if expect == "200":
            assert out[host] == "200", (name, host, out)
            assert all(e["decision"] == "allow" for e in ev), (name, ev)
            assert {e["resolved"] for e in ev} == {sb.net.ip}, (name, ev)
        else:
            assert out[host] != "200", (name, host, out)
            assert all(e["decision"] == "deny" for e in ev), (name, ev)
            assert all(e["resolved"] is None and e["reason_code"] == reason for e in ev), \
                (name, ev)


# ---- REAL, through a real `cordon proxy` (the session upstream namespace)
def _proxy_policy(net):
    return """version: 1
network_policies:
  pc:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["%s"]
        protocol: rest
        rules:
          - allow: {method: GET, path: /echo}
          - allow: {method: POST, path: /echo}
      - {host: loop.test, port: 80}
      - {host: meta.test, port: 443}
      - {host: "*.example.com", port: 443}
    binaries:
      - path: %s
""" % (net.cidr, SELF_EXE)


# (upstream test, raw request(s), [(status, reason_code or None)], method of the first)
PIPE = [
    (COMPAT + "forward_rewrite_does_not_treat_a_pipelined_request_as_body_overflow",
     b"GET http://allowed.test/echo HTTP/1.1\r\nHost: allowed.test\r\nConnection: keep-alive"
     b"\r\n\r\nPOST http://allowed.test/blocked HTTP/1.1\r\nHost: allowed.test\r\n"
     b"Content-Length: 0\r\n\r\n"),
    (COMPAT + "forward_rewrite_trims_pipeline_after_content_length_body",
     b"POST http://allowed.test/echo HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 4\r\n\r\n"
     b"bodyGET http://allowed.test/blocked HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
    (COMPAT + "forward_rewrite_trims_pipeline_after_complete_chunked_body",
     b"POST http://allowed.test/echo HTTP/1.1\r\nHost: allowed.test\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
     b"GET http://allowed.test/blocked HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
]

# (upstream test, raw request, status, reason_code in the JSON body)
DENY = [
    (COMPAT + "destination_denials_preserve_adapter_specific_wire_contracts",
     b"CONNECT loop.test:80 HTTP/1.1\r\nHost: loop.test:80\r\n\r\n", 403, "address_blocked"),
    (COMPAT + "destination_denials_preserve_adapter_specific_wire_contracts",
     b"POST http://loop.test/v1/items HTTP/1.1\r\nHost: loop.test\r\nContent-Length: 0\r\n\r\n",
     403, "address_blocked"),
    (COMPAT + "destination_denials_preserve_adapter_specific_wire_contracts",
     b"CONNECT meta.test:443 HTTP/1.1\r\nHost: meta.test:443\r\n\r\n", 403, "address_blocked"),
    (COMPAT + "authoritative_evaluation_error_denies_without_metadata_fallback",
     b"CONNECT sub\x00.example.com:443 HTTP/1.1\r\nHost: sub.example.com:443\r\n\r\n", 400, None),
    (COMPAT + "authoritative_evaluation_error_denies_without_metadata_fallback",
     b"GET http://sub\x00.example.com:443/ HTTP/1.1\r\nHost: sub.example.com\r\n\r\n", 400, None),
]


@pytest.fixture
def net_proxy(testnet, cordon_proxy):
    return cordon_proxy(_proxy_policy(testnet))


def test_pipelined_forward_requests_are_each_judged(net_proxy, testnet):
    for name, raw in PIPE:
        with HttpConn.open(net_proxy.addr) as c:
            c.send(raw)
            a = c.read_response(raw.split(b" ", 1)[0].decode())
            b = c.read_response()
        assert a.status == 200 and a.json()["path"] == "/echo", (name, a)
        assert b.status == 403 and b.json()["reason_code"] == "l7_denied", (name, b)
    seen = net_proxy.wait_events(3, event="l7_request", path="/blocked")
    assert len(seen) == 3 and all(e["l7_decision"] == "deny" for e in seen), seen


def test_destination_denials_and_unreadable_hosts(net_proxy):
    for name, raw, status, reason in DENY:
        with HttpConn.open(net_proxy.addr) as c:
            c.send(raw)
            r = c.read_response("CONNECT" if raw.startswith(b"CONNECT") else "GET")
        assert r.status == status, (name, raw, r)
        assert r.header("Content-Type", "").startswith("application/json"), (name, r)
        body = r.json()
        assert body["error"], (name, body)
        if reason:
            assert body["reason_code"] == reason, (name, body)


# ---- REAL, what the agent reads back about its denials (policy_local.rs's
# recent-denials route; cordon's is http://cordon.local/denials)
LOCAL_POLICY = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev]
  read_write: [/dev/null]
network_policies:
  web:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["10.231.0.0/16"]
        protocol: rest
        rules:
          - allow: {method: GET, path: /echo}
    binaries:
      - path: /usr/bin/curl
"""


@pytest.mark.timeout(90)
def test_what_the_agent_reads_about_its_denials_and_policy(sandbox):
    p = sandbox.write_policy(LOCAL_POLICY, "local.yaml")
    script = ("curl -s -m 10 -o /dev/null 'http://denied.test/x?access_token=secret-token-1234'; "
              "curl -s -m 10 -o /dev/null 'http://allowed.test/other?token=secret-456&a=b'; "
              "echo '--- text'; curl -s -m 10 http://cordon.local/denials; "
              "echo '--- json'; curl -s -m 10 -H 'Accept: application/json' "
              "http://cordon.local/denials; "
              "echo routes=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "
              "-d '{}' http://cordon.local/v1/proposals)"
              ",$(curl -s -m 10 -o /dev/null -w '%{http_code}' http://cordon.local/v1/proposals/1);"
              "echo '--- policy'; curl -s -m 10 http://cordon.local/policy")
    r = sandbox.run(["sh", "-c", script], policy=p)
    r.out, pol = r.out.split("--- policy\n", 1)
    # no route by which the agent proposes or waits for policy: 405 / 404
    assert "routes=405,404\n" in r.out, r.out
    r.out = r.out.split("routes=")[0]
    # the policy in force, as the file says it, with its generation
    assert pol.startswith("# generation 1") and LOCAL_POLICY in pol, pol
    assert r.code == 0, r
    text, js = r.out.split("--- text\n", 1)[1].split("--- json\n", 1)
    # cordon's events carry the path without its query (OpenShell redacts the
    # query to "?[redacted]"): nothing of it reaches the agent, or the log
    assert "secret" not in r.out and "access_token" not in r.out, r.out
    assert "denied.test:80/x for" in text and "allowed.test:80/other for" in text, text
    d = json.loads(js)["denials"]
    paths = {e["host"]: e.get("path") for e in d}
    assert paths == {"denied.test": "/x", "allowed.test": "/other"}, d
    assert [e["reason_code"] for e in d] == ["no_endpoint", "l7_denied"], d
    assert not [e for e in r.events("decision") + r.events("l7_request")
                if "secret" in json.dumps(e)]


# ---- LOAD (upstream test, policy text, expect "ok"|"error", needle) and EVAL
# (upstream test, host, port, binary, method, path, allow, needle) against
# our own fixture.
GH = """version: 1
network_policies:
  github_api_repo_create:
    endpoints:
      - {host: api.github.com, port: 443, protocol: rest, rules: [%s]}
    binaries: [{path: /usr/bin/gh}]
"""
LOAD = [
    (LOC + "proposal_chunks_from_body_accepts_add_rule_operation",
     GH % "{allow: {method: POST, path: /user/repos}}", "ok", None),
    (LOC + "proposal_chunks_from_body_rejects_query_in_l7_path",
     GH % "{allow: {method: GET, path: \"/repos?token=secret\"}}", "error", "contains '?'"),
]

FIXTURE = (GH % "{allow: {method: POST, path: /user/repos}}") + """  pc:
    endpoints:
      - {host: target.example, port: 443}
    binaries: [{path: /usr/bin/curl}]
"""
EVAL = [
    (LOC + "proposal_chunks_from_body_accepts_add_rule_operation",
     "api.github.com", 443, "/usr/bin/gh", "POST", "/user/repos", True, "l7: allow"),
    (LOC + "proposal_chunks_from_body_accepts_add_rule_operation",
     "api.github.com", 443, "/usr/bin/gh", "GET", "/user/repos", False, "l7: deny"),
    (LOC + "proposal_chunks_from_body_accepts_add_rule_operation",
     "api.github.com", 443, CURL, "POST", "/user/repos", False, "binary_not_allowed"),
    (COMPAT + "identity_required_policy_accepts_real_binary_and_rejects_empty_exec_path",
     "target.example", 443, CURL, None, None, True, None),
    (COMPAT + "identity_required_policy_accepts_real_binary_and_rejects_empty_exec_path",
     "target.example", 443, "", None, None, False, "binary_not_allowed"),
    (COMPAT + "identity_required_policy_accepts_real_binary_and_rejects_empty_exec_path",
     "target.example", 443, "/usr/bin/wget", None, None, False, "binary_not_allowed"),
    # an endpoint without L7 fields: allowed at L4, no request rules at all
    (COMPAT + "missing_authorized_l7_metadata_preserves_l4_only_fallback",
     "target.example", 443, CURL, None, None, True, "!l7:"),
    (COMPAT + "missing_authorized_l7_metadata_preserves_l4_only_fallback",
     "target.example", 443, CURL, "DELETE", "/anything", True, "!l7: deny"),
]

# ---- NOT_A_DECISION: upstream test -> what cordon does about the concern
ADVISOR = ("OpenShell's in-sandbox policy advisor API (proposals, approval status, long-poll "
           "for a reload, agent guidance behind a feature flag). cordon has none: the agent "
           "cannot propose or wait for policy; the operator proposes with `cordon policy "
           "suggest`/`cordon run --learn` on the host (test_run_learn.py), and "
           "http://cordon.local/ answers only GET of /, /denials, /policy, /status "
           "(test_what_the_agent_reads_about_its_denials_and_policy: a POST to "
           "/v1/proposals is 405, /v1/proposals/1 is 404)")
DENIALS = ("the recent-denials route reads OpenShell's log files; cordon.local/denials is fed "
           "by the audit observer in memory (deny and would_deny decisions, L7 denials, the "
           "first of repeated bypass attempts; the last 64, the total named, newest last), so "
           "there are no log lines to filter, parse, find missing or cut: "
           "test_what_the_agent_reads_about_its_denials_and_policy, "
           "test_run_local_transparent.py::test_cordon_local_for_transparent_clients")
GUIDANCE = ("guidance for the agent: cordon puts it in every denial (403 body `hint`, "
            "cordon.local/denials `fix`: the entry that would allow it), always on; "
            "test_run_network.py::test_denied_host_403_json, "
            "test_what_the_agent_reads_about_its_denials_and_policy")
NOT_A_DECISION = {}
for n in """parse_timeout_query_defaults_and_clamps is_terminal_status_matches_only_approved_and_rejected
chunk_state_payload_surfaces_loop_fields chunk_state_payload_includes_policy_reloaded_when_approved
proposal_routes_reject_malformed_paths proposal_status_route_returns_503_when_no_gateway
proposal_wait_route_returns_503_when_no_gateway proposal_routes_return_feature_disabled_when_flag_off
summarize_chunk_for_audit_includes_endpoint_l7_path_and_binary
wait_returns_reloaded_true_when_rule_already_loaded wait_does_not_wake_on_unrelated_policy_change
wait_wakes_when_matching_rule_arrives_mid_flight wait_returns_reloaded_false_at_deadline_when_no_coverage
sanitize_reason_for_audit_strips_control_chars_and_caps_length
summarize_chunk_for_audit_falls_back_to_rule_name_without_rule
route_request_returns_feature_disabled_when_flag_off""".split():
    NOT_A_DECISION[LOC + n] = ADVISOR
for n in """parse_last_query_clamps_to_max is_ocsf_denial_line_filters_correctly
recent_denials_returns_newest_first_from_shorthand_lines recent_denials_skips_jsonl_log_files
recent_denials_signals_when_log_is_missing truncate_at_char_boundary_does_not_panic_on_multibyte
recent_denials_truncates_pathological_lines redact_query_strings_handles_multibyte_chars""".split():
    NOT_A_DECISION[LOC + n] = DENIALS
for n in """agent_next_steps_returns_empty_when_flag_off agent_next_steps_returns_full_array_when_flag_on
agent_guidance_is_absent_when_flag_off agent_guidance_points_to_policy_advisor_when_flag_on""".split():
    NOT_A_DECISION[LOC + n] = GUIDANCE
NOT_A_DECISION.update({
    DNS + "delayed_stale_resolution_cannot_replace_newer_generation_mapping":
        "cordon's DNS answer never waits on a resolution (the map is the sandbox's own and "
        "answers at once); the proxy resolves per connection under the generation that "
        "decided it, and a reload re-judges open connections: "
        "test_run_revoke.py::test_revoke_on_reload_closes_the_tunnel, "
        "test_revoke_keeps_what_the_new_policy_allows",
    DNS + "policy_dns_failure_events_have_stable_actionable_context":
        "OCSF event shape; cordon's refusals are dns_denied events (name, qtype, proto, "
        "binary, pid, reason, rcode, hint): "
        "test_dns_policy.py::test_denied_name_is_nxdomain_at_once_and_never_forwarded",
    DNS + "resolver_and_publication_failures_have_stable_reason_codes":
        "reason-code strings; cordon's are fixed too (name_not_in_policy, resolve_failed, "
        "address_blocked) and asserted by test_policy_dns_answers and "
        "test_connections_after_the_answer; the map cannot be exhausted or go stale "
        "(tests/unit/test_sandbox_dns.c test_addrmap)",
    COMPAT + "representative_adapter_denials_preserve_ocsf_fields":
        "OCSF fields; cordon's decision events (host, port, binary, pid, ancestors, policy, "
        "reason_code, via): test_proxy_lifecycle.py::test_audit_log_fields",
    COMPAT + "representative_adapter_allows_preserve_ocsf_fields":
        "the same for allows: test_proxy_lifecycle.py::test_audit_log_fields, "
        "test_transparent.py::test_http_by_name_without_proxy_variables",
    COMPAT + "missing_authorized_tls_metadata_preserves_auto_fallback":
        "internal default of a metadata lookup; cordon's endpoint always carries its TLS "
        "mode (omitted = automatic: terminated when the endpoint needs inspection; `tls: "
        "terminate` is read as automatic): test_inspect_tls.py",
    COMPAT + "missing_authorized_allowed_ips_preserves_empty_fallback":
        "internal default; an endpoint without allowed_ips reaches no private address: "
        "test_connections_after_the_answer (priv.oshnet.test)",
    COMPAT + "missing_authorized_exact_host_preserves_false_fallback":
        "internal default; cordon reads exact and wildcard hosts from the entry itself: "
        "test_connections_after_the_answer (x.wild.oshnet.test)",
    COMPAT + "identity_required_mode_is_explicitly_unsupported_off_linux":
        "cordon runs on Linux only; where identity cannot be read the connection is denied "
        "(test_run_identity.py, tests/unit identity tests)",
    COMPAT + "proxy_performance_baseline":
        "an ignored benchmark; cordon's measurements are in bench/ (bench/RESULTS*.md)",
})
GENERATION = ("the relay keeps the policy generation that allowed the connection; a newer L7 "
              "lookup cannot freshen a stale allow. cordon: a connection is decided once under "
              "one generation (proxy/generation.c); on reload (the default --revoke-on-reload) "
              "open connections are re-judged on their workers and closed if the new policy "
              "refuses them, an in-flight request the old policy allowed finishes first: "
              "test_run_revoke.py::test_revoke_on_reload_closes_the_tunnel, "
              "test_reload_judges_the_next_request_of_an_inspected_tunnel, "
              "test_proxy_lifecycle.py::test_sighup_reload_revokes_by_default")
for n in """relay_without_route_pins_l4_decision_generation empty_hydrated_route_cannot_replace_stale_l4_generation
inspected_route_cannot_replace_stale_l4_generation raw_route_cannot_replace_stale_l4_generation
stale_generation_fails_before_relay_context_is_created""".split():
    NOT_A_DECISION[RELAY + n] = GENERATION

# ---- DIFFERS: deliberate, never more permissive (doc/policy.md "Where we differ")
DIFFERS = {
    DNS + "eligible_nxdomain_fails_without_publishing_a_mapping":
        "OpenShell resolves a listed name at DNS time and answers NXDOMAIN; cordon's policy "
        "DNS never resolves upstream, answers a synthetic address, and the connection is "
        "refused (resolve_failed) when the proxy cannot resolve the name - nothing is dialled "
        "in either (REAL rows)",
    DNS + "eligible_name_filters_answers_and_publishes_bounded_mapping":
        "loopback and other always-blocked answers are dropped in both; OpenShell pins a "
        "private answer of an exact host without allowed_ips, cordon refuses it (needs "
        "allowed_ips) - stricter (REAL rows db/priv.oshnet.test)",
    DNS + "reserved_gateway_alias_without_trusted_address_never_queries_resolver":
        "no host-gateway alias in cordon: host.docker.internal & co. are ordinary names, "
        "resolved by the proxy at connect time, and every link-local answer stays blocked "
        "(REAL rows)",
    DNS + "reserved_gateway_alias_pins_only_the_exact_trusted_address":
        "no alias: the trusted gateway address (link-local) is refused too - stricter",
    DNS + "reserved_gateway_alias_rejects_mismatch_metadata_private_and_wrong_family_answers":
        "refused in both (cordon: link-local always blocked, private needs allowed_ips)",
    WIRE + "ineligible_query_is_refused_without_upstream_call":
        "a name the policy does not list: OpenShell REFUSED, cordon NXDOMAIN (so resolvers "
        "fail at once instead of trying another server); never forwarded in either (REAL row)",
    WIRE + "udp_and_tcp_queries_return_synthetic_answers":
        "A over UDP and TCP as in OpenShell; AAAA is NODATA, because a cordon sandbox has no "
        "IPv6 egress (OpenShell's own rule without IPv6 egress; REAL rows)",
    WIRE + "unsupported_type_is_not_implemented_and_malformed_tcp_is_rejected":
        "other record types (TXT, MX, SRV, PTR, ANY): OpenShell NOTIMP, cordon NXDOMAIN with a "
        "dns_denied event; a short TCP frame gets no answer in both (REAL rows)",
    COMPAT + "forward_https_absolute_form_rejection_is_snapshotted":
        "OpenShell answers a forward request for https:// with 400; cordon decides it like "
        "any request and opens its own verified TLS connection (doc/policy.md; "
        "test_policy_openshell_proxy.py)",
}

DIFFERS[RELAY + "raw_relay_closes_immediately_when_fail_closed_generation_is_published"] = (
    "a candidate policy that fails validation inside the sandbox: OpenShell's supervisor "
    "quarantines (previous policy deactivated, new egress denied, live relays closed); "
    "cordon validates before it installs anything, as OpenShell's gateway does for an update "
    "(its e2e ambiguous_policy_update_is_rejected_without_replacing_active_policy asserts the "
    "active policy stays): the previous generation stays in force, the terminal, the "
    "`policy_reload` event (result failed) and `cordon policy reload` (exit 1) say why "
    "(test_run_ux.py::test_reload_command_and_broken_policy)")

# ---- OPEN: a disagreement this walk found and did not settle (none left)
OPEN = {}


def test_every_upstream_test_is_accounted_for():
    assert len(UPSTREAM) == 72 and len(set(UPSTREAM)) == 72
    for f, n in COUNTS.items():
        assert sum(1 for u in UPSTREAM if u.startswith(f + "::")) == n, f
    rows = ({r[0] for r in DNSQ} | {r[0] for r in CONNECT} | {r[0] for r in PIPE} |
            {r[0] for r in DENY} | {r[0] for r in LOAD} | {r[0] for r in EVAL} | set(REAL_OTHER))
    decided = rows - set(DIFFERS)
    for a, b in ((decided, NOT_A_DECISION), (DIFFERS, NOT_A_DECISION), (OPEN, NOT_A_DECISION),
                 (OPEN, DIFFERS), (OPEN, decided)):
        assert not (set(a) & set(b))
    covered = decided | set(NOT_A_DECISION) | set(DIFFERS) | set(OPEN)
    assert [u for u in UPSTREAM if u not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(decided) + len(NOT_A_DECISION) + len(DIFFERS) + len(OPEN) == 72


# the upstream tests the REAL cordon.local test re-expresses
REAL_OTHER = [LOC + "redact_query_strings_removes_query_from_url_token",
              LOC + "redact_query_strings_removes_query_in_reason_tag",
              LOC + "current_policy_route_returns_yaml_envelope"]


@pytest.mark.parametrize("row", LOAD, ids=["%s-%d" % (r[0], i) for i, r in enumerate(LOAD)])
def test_load_case(cordon_bin, tmp_path, row):
    name, text, expect, needle = row
    f = tmp_path / "policy.yaml"
    f.write_text(text, encoding="utf-8")
    r = subprocess.run([cordon_bin, "policy", "check", str(f)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == (1 if expect == "error" else 0), (name, r.stderr)
    if needle:
        hits = [l for l in r.stderr.splitlines() if ": error: " in l and needle in l]
        assert hits and all(l.startswith(str(f) + ":") for l in hits), (name, r.stderr)


@pytest.mark.parametrize("row", EVAL, ids=["%s-%d" % (r[0], i) for i, r in enumerate(EVAL)])
def test_eval_case(cordon_bin, tmp_path, row):
    name, host, port, binary, method, path, allow, needle = row
    f = tmp_path / "fixture.yaml"
    f.write_text(FIXTURE, encoding="utf-8")
    cmd = [cordon_bin, "policy", "eval", str(f), "--host", host, "--port", str(port),
           "--binary", binary]
    if method:
        cmd += ["--method", method, "--path", path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert r.returncode == (0 if allow else 1), (name, r.stdout, r.stderr)
    if allow:
        assert "decision: allow\n" in r.stdout and "l7: deny" not in r.stdout, (name, r.stdout)
    else:   # refused for the connection, or (L4 allowed) for the request
        assert "decision: deny\n" in r.stdout or "l7: deny\n" in r.stdout, (name, r.stdout)
    if needle and needle.startswith("!"):
        assert needle[1:] not in r.stdout, (name, r.stdout)
    elif needle:
        assert needle in r.stdout, (name, needle, r.stdout)
