"""OpenShell's end-to-end suites, walked one by one (#13).

Every test of NVIDIA/OpenShell e2e/python/**/*.py and e2e/rust/tests/**/*.rs
(292 at the revision walked, 2f7fb65 of 2026-08-21; names as FILE::TEST in
openshell_e2e_tests.txt) is classified under at least one of:

  REAL            the client action the e2e test takes inside its sandbox,
                  taken here against a real `cordon proxy` or inside a real
                  `cordon run`, with servers in the session's test namespace
                  (the test function named says which);
  EVAL            the decision re-expressed in our own fixture policies and
                  asked of the real binary with `cordon policy eval` (for
                  requests whose server is public in the e2e test: TLS hosts,
                  GraphQL and JSON-RPC bodies) or `cordon policy check`;
  COVERED         a decision some other cordon test already takes with a real
                  client in a real sandbox (the test is named and must exist);
  NOT_A_DECISION  infrastructure: gateway, Kubernetes, Podman, GPU, OIDC,
                  providers and credentials, CLI plumbing, log formats — with
                  the reason and, where one exists, the nearest cordon test;
  DIFFERS         a decision (or part of one: a status code, a default) cordon makes
                  differently on purpose, never wider (also in doc/policy.md "Where we
                  differ"); a test partly different is REAL or EVAL as well;
  OPEN            a disagreement this walk found and did not fix (none left).

A test may be in several lists (REAL and EVAL rows both; an infrastructure test whose
policy decisions are also checked); one listed only under NOT_A_DECISION asserts no
decision of a policy. 71 tests assert decisions, 221 only infrastructure. We write our own cases; nothing of
OpenShell's is copied. test_every_upstream_test_is_accounted_for keeps the
lists and the names file in step: the classified names == the 292 upstream.
Hosts: the session namespace's names (allowed.test, other.test, ...; see
conftest.TestNet) stand for the e2e suites' servers; nothing leaves the host."""
import json
import os
import re
import subprocess
import sys

import pytest

from lib.httpclient import HttpConn, build_request, connect_tunnel, forward_once
from inference_fixtures import FAKE_KEY, KEY_ENV, fake_llm  # noqa: F401  (fixture)
from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

pytest_plugins = ["inspect_fixtures"]

HERE = os.path.dirname(os.path.abspath(__file__))
CURL, PY3 = "/usr/bin/curl", "/usr/bin/python3"
SP = "python/test_sandbox_policy.py::"
UPSTREAM = open(os.path.join(HERE, "openshell_e2e_tests.txt")).read().split()

# ---------------------------------------------------------------------------------------------
# Fixture policies for `cordon policy eval` (hosts as in the e2e tests: there they are public
# servers; eval decides the policy without dialling).
HEAD = "version: 1\nnetwork_policies:\n"
FIXTURES = {
    # L4: host:port + binary identity (test_sandbox_policy.py L4-*, MP-*, HW-*)
    "l4": HEAD + """\
  any_binary:
    endpoints: [{host: api.anthropic.com, port: 443}]
    binaries: [{path: "/**"}]
  curl_only:
    endpoints: [{host: example.com, port: 443}]
    binaries: [{path: /usr/bin/curl}]
  multi:
    endpoints: [{host: multi.example.org, ports: [443, 80]}]
    binaries: [{path: "/**"}]
  wildcard:
    endpoints: [{host: "*.example.net", port: 443}]
    binaries: [{path: "/**"}]
""",
    # L7 over TLS (L7-T1..T4): one host per endpoint shape
    "l7tls": HEAD + """\
  full:
    endpoints: [{host: full.anthropic.test, port: 443, protocol: rest, tls: terminate,
                 enforcement: enforce, access: full}]
    binaries: [{path: "/**"}]
  ro:
    endpoints: [{host: ro.anthropic.test, port: 443, protocol: rest, tls: terminate,
                 enforcement: enforce, access: read-only}]
    binaries: [{path: "/**"}]
  audit:
    endpoints: [{host: audit.anthropic.test, port: 443, protocol: rest, tls: terminate,
                 enforcement: audit, access: read-only}]
    binaries: [{path: "/**"}]
  paths:
    endpoints:
      - host: paths.anthropic.test
        port: 443
        protocol: rest
        tls: terminate
        enforcement: enforce
        rules: [{allow: {method: GET, path: "/v1/**"}}]
    binaries: [{path: "/**"}]
  q:
    endpoints:
      - host: q.test
        port: 19876
        protocol: rest
        rules:
          - allow: {method: GET, path: /download, query: {tag: "foo-*"}}
          - allow: {method: GET, path: /search, query: {tag: {any: ["foo-*", "bar-*"]}}}
      - host: noq.test
        port: 19876
        protocol: rest
        rules: [{allow: {method: GET, path: /download}}]
    binaries: [{path: "/**"}]
""",
    # forward_proxy_graphql_l7.rs's policy, re-expressed
    "graphql": HEAD + """\
  gql:
    endpoints:
      - host: gql.test
        port: 8000
        protocol: graphql
        enforcement: enforce
        persisted_queries: allow_registered
        graphql_persisted_queries:
          abc123: {operation_type: query, operation_name: Viewer, fields: [viewer]}
        rules:
          - allow: {operation_type: query, fields: [viewer]}
          - allow: {operation_type: mutation, fields: [createIssue]}
        deny_rules:
          - {operation_type: mutation, fields: [deleteRepository]}
    binaries: [{path: "/usr/bin/python3*"}]
""",
    # forward_proxy_jsonrpc_l7.rs's two policies, re-expressed
    "jsonrpc": HEAD + """\
  rpc:
    endpoints:
      - host: rpc.test
        port: 8000
        path: /rpc
        protocol: json-rpc
        enforcement: enforce
        rules:
          - allow: {method: initialize}
          - allow: {method: tools/list}
          - allow: {method: tools/call}
        deny_rules:
          - method: tools/delete
    binaries: [{path: "/usr/bin/python3*"}]
  rpc_default:
    endpoints:
      - host: rpc-audit.test
        port: 8000
        path: /rpc
        protocol: json-rpc
        json_rpc: {max_body_bytes: 65536}
        rules:
          - allow: {method: initialize}
    binaries: [{path: "/usr/bin/python3*"}]
""",
    # forward_proxy_l7_bypass.rs's policy
    "bypass": HEAD + """\
  l7:
    endpoints:
      - host: fwd.test
        port: 8000
        protocol: rest
        enforcement: enforce
        rules: [{allow: {method: GET, path: /allowed}}]
    binaries: [{path: /usr/bin/curl}, {path: "/usr/bin/python*"}]
""",
    # websocket_conformance.rs's endpoint (the credential profile aside)
    "ws": HEAD + """\
  ws:
    endpoints: [{host: ws.example.test, port: 443, protocol: websocket, enforcement: enforce,
                 access: read-write}]
    binaries: [{path: "/usr/bin/python3*"}]
""",
    # live_policy_update.rs: policy A, then policy B with one more host
    "live_a": HEAD + """\
  p:
    endpoints: [{host: api.anthropic.com, port: 443}]
    binaries: [{path: "/**"}]
""",
    "live_b": HEAD + """\
  p:
    endpoints: [{host: api.anthropic.com, port: 443}, {host: example.com, port: 443}]
    binaries: [{path: "/**"}]
""",
    # test_sandbox_policy.py OVL-2: two identical L7 entries for one host
    "ovl_l7": HEAD + """\
  user_api:
    endpoints: [{host: api.anthropic.com, port: 443, protocol: rest, enforcement: enforce,
                 access: read-only}]
    binaries: [{path: "/**"}]
  auto_approved_api:
    endpoints: [{host: api.anthropic.com, port: 443, protocol: rest, enforcement: enforce,
                 access: read-only}]
    binaries: [{path: "/**"}]
""",
    # host_gateway_alias.rs: the host alias with a private allowed_ips
    "hostalias": HEAD + """\
  host:
    endpoints:
      - host: host.openshell.internal
        port: 8000
        allowed_ips: ["10.0.0.0/8", "172.0.0.0/8", "192.168.0.0/16", "fc00::/7"]
    binaries: [{path: /usr/bin/curl}]
""",
    # transparent_tcp.rs: a protocol tcp endpoint (any port missing → the listed one only)
    "tcp": HEAD + """\
  pg:
    endpoints:
      - {host: postgres.test, port: 5432, protocol: tcp, allowed_ips: ["10.0.0.0/8"]}
    binaries: [{path: "/**"}]
""",
}

# Load-time rows: (upstream, policy text, exit code, needle in stderr)
FS = ("version: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only: %s\n"
      "  read_write: %s\nprocess: {run_as_user: %s, run_as_group: sandbox}\n")
CHECKS = [
    ("python/test_policy_validation.py::test_create_sandbox_rejects_root_user",
     FS % ("[/usr]", "[/tmp]", "root"), 1, "must not run as root"),
    ("python/test_policy_validation.py::test_create_sandbox_rejects_path_traversal",
     FS % ("[/usr/../etc/shadow]", "[/tmp]", "sandbox"), 1, "must not contain '..'"),
    ("python/test_policy_validation.py::test_create_sandbox_rejects_overly_broad_paths",
     FS % ("[/usr]", "[/]", "sandbox"), 1, "must not be '/'"),
    # OVL-1: the same host:port, one endpoint with allowed_ips and one without
    (SP + "test_overlapping_policies_with_conflicting_destination_metadata_are_rejected",
     HEAD + "  user_rule:\n    endpoints: [{host: svc.test, port: 19876}]\n"
            "    binaries: [{path: \"/**\"}]\n"
            "  approved_rule:\n    endpoints: [{host: svc.test, port: 19876, "
            "allowed_ips: [10.200.0.0/24]}]\n    binaries: [{path: \"/**\"}]\n", 1, "allowed_ips"),
    ("rust/tests/proxy_egress_pipeline.rs::ambiguous_policy_update_is_rejected_without_"
     "replacing_active_policy",
     HEAD + "  a:\n    endpoints: [{host: svc.test, port: 8000, allowed_ips: [10.0.0.0/8]}]\n"
            "    binaries: [{path: \"/**\"}]\n"
            "  b:\n    endpoints: [{host: svc.test, port: 8000, tls: skip, "
            "allowed_ips: [10.0.0.0/8]}]\n    binaries: [{path: \"/**\"}]\n", 1, "tls"),
    # OVL-2: two identical L7 entries load (and their CONNECT is allowed: EVAL below)
    (SP + "test_overlapping_policies_l7_connect_does_not_crash", FIXTURES["ovl_l7"], 0, None),
    # SSRF-1/2 with the address itself as host: OpenShell loads the file and refuses each
    # connection; cordon refuses the file at load (deliberate, doc/policy.md)
    (SP + "test_ssrf_blocks_loopback_despite_policy_allow",
     HEAD + "  i:\n    endpoints: [{host: 127.0.0.1, port: 80}]\n    binaries: [{path: \"/**\"}]\n",
     1, "loopback"),
    (SP + "test_ssrf_blocks_metadata_endpoint_despite_policy_allow",
     HEAD + "  i:\n    endpoints: [{host: 169.254.169.254, port: 80}]\n"
            "    binaries: [{path: \"/**\"}]\n", 1, "link-local"),
    # landlock.rs: hard_requirement with the enriched /dev/urandom loads
    ("rust/tests/landlock.rs::hard_requirement_accepts_enriched_device_path",
     "version: 1\nfilesystem_policy:\n  read_only: [/usr, /lib, /etc, /proc, /dev/urandom]\n"
     "  read_write: [/sandbox, /tmp]\nlandlock: {compatibility: hard_requirement}\n"
     + "network_policies:\n  e:\n    endpoints: [{host: example.com, port: 443}]\n"
       "    binaries: [{path: \"/**\"}]\n", 0, None),
    # live_policy_update.rs: an empty network_policies loads, and so does the fuller one
    ("rust/tests/live_policy_update.rs::live_policy_update_from_empty_network_policies",
     "version: 1\nnetwork_policies: {}\n", 0, None),
    ("rust/tests/live_policy_update.rs::initial_sparse_policy_is_acknowledged_as_loaded",
     "version: 1\n", 0, None),
    # BFS-1/2: a policy with no filesystem_policy, or only a workdir, loads
    (SP + "test_baseline_enrichment_missing_filesystem_policy", FIXTURES["live_a"], 0, None),
    (SP + "test_baseline_enrichment_incomplete_filesystem_policy",
     "version: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only: []\n"
     "  read_write: [/sandbox]\nlandlock: {compatibility: best_effort}\n"
     + FIXTURES["live_a"][len("version: 1\n"):], 0, None),
]

# Eval rows: (upstream, fixture, host, port, binary, method, target, body, allow)
E = []


def ev(name, fx, host, port, allow, binary=PY3, method=None, target=None, body=None):
    E.append((name, fx, host, port, binary, method, target, body, allow))


AN = "api.anthropic.com"
ev(SP + "test_policy_blocks_unauthorized_proxy_connect", "l4", "example.com", 443, False)
ev(SP + "test_l4_no_policy_denies_all", "l4", "api.openai.com", 443, False)
ev(SP + "test_l4_wildcard_binary_allows_any_binary", "l4", AN, 443, True)
ev(SP + "test_l4_wildcard_binary_allows_any_binary", "l4", AN, 443, True, binary="/usr/bin/git")
ev(SP + "test_l4_wildcard_binary_allows_any_binary", "l4", "example.com", 443, False)
ev(SP + "test_l4_binary_restricted_denies_wrong_binary", "l4", "example.com", 443, False)
ev(SP + "test_l4_binary_restricted_denies_wrong_binary", "l4", "example.com", 443, True, binary=CURL)
ev(SP + "test_l4_wrong_port_denied", "l4", AN, 443, True)
ev(SP + "test_l4_wrong_port_denied", "l4", AN, 80, False)
ev(SP + "test_l4_cross_policy_denied", "l4", "example.com", 443, False)
ev(SP + "test_multi_port_allows_all_listed_ports", "l4", "multi.example.org", 443, True)
ev(SP + "test_multi_port_allows_all_listed_ports", "l4", "multi.example.org", 80, True)
ev(SP + "test_multi_port_denies_unlisted_port", "l4", "multi.example.org", 8080, False)
ev(SP + "test_single_port_backwards_compat", "l4", AN, 443, True)
ev(SP + "test_single_port_backwards_compat", "l4", AN, 80, False)
ev(SP + "test_host_wildcard_matches_subdomain", "l4", "www.example.net", 443, True)
ev(SP + "test_host_wildcard_matches_subdomain", "l4", "example.net", 443, False)
ev(SP + "test_host_wildcard_rejects_bare_domain", "l4", "example.net", 443, False)
ev(SP + "test_host_wildcard_rejects_deep_subdomain", "l4", "deep.sub.example.net", 443, False)
ev(SP + "test_l7_tls_full_access_allows_all", "l7tls", "full.anthropic.test", 443, True,
   method="GET", target="/v1/models")
ev(SP + "test_l7_tls_full_access_allows_all", "l7tls", "full.anthropic.test", 443, True,
   method="POST", target="/v1/messages")
ev(SP + "test_l7_tls_read_only_denies_post", "l7tls", "ro.anthropic.test", 443, True,
   method="GET", target="/v1/models")
ev(SP + "test_l7_tls_read_only_denies_post", "l7tls", "ro.anthropic.test", 443, False,
   method="POST", target="/v1/messages")
ev(SP + "test_l7_tls_deny_response_format", "l7tls", "ro.anthropic.test", 443, False,
   method="DELETE", target="/v1/anything")
ev(SP + "test_l7_tls_explicit_path_rules", "l7tls", "paths.anthropic.test", 443, True,
   method="GET", target="/v1/models")
ev(SP + "test_l7_tls_explicit_path_rules", "l7tls", "paths.anthropic.test", 443, False,
   method="POST", target="/v1/messages")
ev(SP + "test_l7_tls_explicit_path_rules", "l7tls", "paths.anthropic.test", 443, False,
   method="GET", target="/v2/anything")
ev(SP + "test_l7_query_matchers_enforced", "l7tls", "q.test", 19876, True,
   method="GET", target="/download?tag=foo-a&tag=foo-b")
ev(SP + "test_l7_query_matchers_enforced", "l7tls", "q.test", 19876, False,
   method="GET", target="/download?tag=foo-a&tag=evil")
ev(SP + "test_l7_query_matchers_enforced", "l7tls", "q.test", 19876, True,
   method="GET", target="/search?tag=foo-a&tag=bar-b")
ev(SP + "test_l7_query_matchers_enforced", "l7tls", "q.test", 19876, False,
   method="GET", target="/download?slug=skill-1")
ev(SP + "test_l7_rule_without_query_matcher_allows_any_query_params", "l7tls", "noq.test", 19876,
   True, method="GET", target="/download?tag=anything&slug=any-value")
ev(SP + "test_overlapping_policies_l7_connect_does_not_crash", "ovl_l7", AN, 443, True)
ev(SP + "test_overlapping_policies_l7_connect_does_not_crash", "ovl_l7", AN, 443, True,
   method="GET", target="/v1/models")

GQ = "rust/tests/forward_proxy_graphql_l7.rs::" \
     "graphql_l7_enforces_allow_and_deny_rules_on_forward_and_connect_paths"
VIEWER = "query Viewer { viewer { login } }"
REPO = 'query Repo { repository(owner:"o", name:"r") { id } }'
CREATE = ('mutation Create { createIssue(input:{repositoryId:"r", title:"t", body:"b"}) '
          '{ issue { id } } }')
DELETE = 'mutation Delete { deleteRepository(input:{repositoryId:"r"}) { clientMutationId } }'


def q(s):
    from urllib.parse import quote_plus
    return quote_plus(s)


for doc, ok in ((VIEWER, True), (REPO, False), (CREATE, True), (DELETE, False)):
    ev(GQ, "graphql", "gql.test", 8000, ok, method="POST", target="/graphql",
       body=json.dumps({"query": doc}))
ev(GQ, "graphql", "gql.test", 8000, True, method="GET", target="/graphql?query=" + q(VIEWER))
ev(GQ, "graphql", "gql.test", 8000, False, method="GET",
   target="/graphql?query=%s&query=%s" % (q(VIEWER), q(DELETE)))
PQ = '{"persistedQuery": {"version": 1, "sha256Hash": "%s"}}'
ev(GQ, "graphql", "gql.test", 8000, True, method="GET",
   target="/graphql?operationName=Viewer&extensions=" + q(PQ % "abc123"))
ev(GQ, "graphql", "gql.test", 8000, False, method="GET",
   target="/graphql?operationName=Viewer&extensions=" + q(PQ % "missing"))

JR = "rust/tests/forward_proxy_jsonrpc_l7.rs::"
JM = JR + "jsonrpc_l7_enforces_method_rules_on_forward_and_connect_paths"


def rpc(method, params=None, i=1):
    d = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        d["params"] = params
    return d


for body, ok in ((rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}), True),
                 (rpc("tools/list"), True),
                 (rpc("tools/call", {"name": "read_status"}), True),
                 (rpc("tools/call", {"name": "blocked_action", "arguments": {"scope": "ignored"}}),
                  True),
                 (rpc("tools/delete", {"name": "purge_cache"}), False),
                 ([rpc("tools/list"), rpc("tools/call", {"name": "read_status"}, 2)], True),
                 ([rpc("tools/list"), rpc("tools/delete", {"name": "purge_cache"}, 2)], False)):
    ev(JM, "jsonrpc", "rpc.test", 8000, ok, method="POST", target="/rpc", body=json.dumps(body))
ev(JM, "jsonrpc", "rpc.test", 8000, False, method="POST", target="/rpc", body="not valid json {")
# the default-enforcement policy: a response frame is refused in both
ev(JR + "jsonrpc_forward_proxy_hard_denies_response_frames_in_default_audit_mode", "jsonrpc",
   "rpc-audit.test", 8000, False, method="POST", target="/rpc",
   body=json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}))
ev(JR + "jsonrpc_forward_proxy_hard_denies_response_frames_in_default_audit_mode", "jsonrpc",
   "rpc-audit.test", 8000, True, method="POST", target="/rpc",
   body=json.dumps(rpc("initialize")))

BY = "rust/tests/forward_proxy_l7_bypass.rs::"
ev(BY + "forward_proxy_allows_l7_permitted_request", "bypass", "fwd.test", 8000, True,
   method="GET", target="/allowed")
ev(BY + "forward_proxy_denies_l7_blocked_request", "bypass", "fwd.test", 8000, False,
   method="POST", target="/allowed")
ev(BY + "forward_proxy_denies_l7_blocked_request", "bypass", "fwd.test", 8000, False,
   binary="/usr/bin/wget", method="GET", target="/allowed")
WS = "rust/tests/websocket_conformance.rs::websocket_text_placeholder_is_rewritten_through_both_adapters"
ev(WS, "ws", "ws.example.test", 443, True, method="GET", target="/ws")
ev(WS, "ws", "ws.example.test", 443, False, binary=CURL)
LV = "rust/tests/live_policy_update.rs::"
ev(LV + "live_policy_update_round_trip", "live_a", "example.com", 443, False)
ev(LV + "live_policy_update_round_trip", "live_b", "example.com", 443, True)
ev(LV + "live_policy_update_round_trip", "live_b", AN, 443, True)
ev(LV + "local_policy_override_survives_gateway_policy_polls", "live_a", AN, 443, True)
HG = "rust/tests/host_gateway_alias.rs::"
ev(HG + "sandbox_reaches_host_openshell_internal_via_host_gateway_alias", "hostalias",
   "host.openshell.internal", 8000, True, binary=CURL)
ev(HG + "sandbox_reaches_host_openshell_internal_via_host_gateway_alias", "hostalias",
   "host.openshell.internal", 8000, False, binary=PY3)
TT = "rust/tests/transparent_tcp.rs::"
ev(TT + "local_container_native_tcp_uses_policy_dns_and_fails_closed", "tcp", "postgres.test",
   5432, True)
ev(TT + "local_container_native_tcp_uses_policy_dns_and_fails_closed", "tcp", "postgres.test",
   5433, False)

# ---------------------------------------------------------------------------------------------
# REAL: upstream test -> the function of this file that takes the same client action
REAL = {}
for n in ("test_policy_blocks_unauthorized_proxy_connect test_l4_no_policy_denies_all "
          "test_l4_wildcard_binary_allows_any_binary test_l4_binary_restricted_denies_wrong_binary "
          "test_l4_wrong_port_denied test_l4_cross_policy_denied test_l4_non_connect_method_rejected "
          "test_multi_port_allows_all_listed_ports test_multi_port_denies_unlisted_port "
          "test_single_port_backwards_compat").split():
    REAL[SP + n] = "test_real_l4_connect_decisions"
for n in ("test_ssrf_blocks_loopback_despite_policy_allow "
          "test_ssrf_blocks_metadata_endpoint_despite_policy_allow "
          "test_ssrf_allowed_ips_permits_private_ip test_ssrf_allowed_ips_hostless_permits_private_ip "
          "test_ssrf_loopback_blocked_even_with_allowed_ips "
          "test_ssrf_private_ip_allowed_with_literal_ip_host "
          "test_forward_proxy_allows_private_ip_host_without_allowed_ips").split():
    REAL[SP + n] = "test_real_ssrf_decisions"
for n in ("test_forward_proxy_allows_private_ip_with_allowed_ips "
          "test_forward_proxy_denied_no_policy_match "
          "test_forward_proxy_public_ip_denied").split():
    REAL[SP + n] = "test_real_forward_decisions"
REAL["rust/tests/proxy_egress_pipeline.rs::destination_denial_modes_match_across_connect_and_"
     "forward_adapters"] = "test_real_forward_decisions"
REAL["rust/tests/proxy_egress_pipeline.rs::explicit_allowed_ips_and_implicit_ip_literals_succeed_"
     "through_both_adapters"] = "test_real_ssrf_decisions"
for n in ("test_l7_query_matchers_enforced test_l7_rule_without_query_matcher_allows_any_query_params "
          ).split():
    REAL[SP + n] = "test_real_l7_rest_decisions"
for n in ("test_l7_tls_read_only_denies_post test_l7_tls_audit_mode_allows_but_logs "
          "test_l7_tls_explicit_path_rules test_l7_tls_deny_response_format "
          "test_l7_tls_full_access_allows_all test_overlapping_policies_l7_connect_does_not_crash"
          ).split():
    REAL[SP + n] = "test_real_l7_tls_decisions"
REAL[GQ] = "test_real_graphql_decisions"
REAL[JM] = "test_real_jsonrpc_decisions"
REAL[JR + "jsonrpc_forward_proxy_hard_denies_response_frames_in_default_audit_mode"] = \
    "test_real_jsonrpc_decisions"
REAL[BY + "forward_proxy_allows_l7_permitted_request"] = "test_real_l7_rest_decisions"
REAL[BY + "forward_proxy_denies_l7_blocked_request"] = "test_real_l7_rest_decisions"
REAL["rust/tests/proxy_egress_pipeline.rs::tls_skip_connect_relays_opaque_bytes_bidirectionally"] = \
    "test_real_tls_skip_relays_opaque_bytes"
for n in ("test_landlock_blocks_write_to_read_only_path test_landlock_allows_write_to_read_write_path "
          "test_landlock_allows_read_on_read_only_path test_landlock_blocks_access_outside_policy "
          "test_landlock_blocks_user_owned_path_outside_policy").split():
    REAL["python/test_sandbox_landlock.py::" + n] = "test_real_landlock_outcomes"
REAL[SP + "test_policy_applies_to_exec_commands"] = "test_real_landlock_outcomes"
REAL[SP + "test_baseline_enrichment_missing_filesystem_policy"] = \
    "test_real_baseline_without_filesystem_paths"
REAL[SP + "test_baseline_enrichment_incomplete_filesystem_policy"] = \
    "test_real_baseline_without_filesystem_paths"
for n in ("test_model_discovery_call_routed_to_backend test_inference_call_routed_to_backend "
          "test_unsupported_protocol_returns_400 "
          "test_non_inference_request_denied test_non_inference_host_is_not_intercepted").split():
    REAL["python/test_inference_routing.py::" + n] = "test_real_inference_routing"

# COVERED: upstream test -> an existing cordon test taking the same client action for real
COVERED = {
    "rust/tests/bypass_detection.rs::bypass_attempt_is_rejected_fast":
        "test_run_network.py::test_noproxy_refused_fast_with_event",
    "rust/tests/no_proxy.rs::sandbox_bypasses_proxy_for_localhost_http":
        "test_run_network.py::test_loopback_works_inside",
    "rust/tests/host_gateway_alias.rs::sandbox_inference_local_routes_to_host_openshell_internal":
        "test_inference_run.py::test_curl_and_urllib_inside_sandbox",
    "rust/tests/proxy_egress_pipeline.rs::forward_pipeline_never_reaches_upstream_as_first_"
    "request_overflow": "test_proxy_http.py::test_forward_keepalive_pipelined",
    "rust/tests/transparent_tcp.rs::local_container_native_tcp_uses_policy_dns_and_fails_closed":
        "test_transparent.py::test_other_ports_of_an_allowed_name_are_denied",
}

COVERED["rust/tests/proxy_egress_pipeline.rs::policy_reload_updates_both_adapters_and_closes_"
        "existing_http_tunnel"] = \
    "test_run_revoke.py::test_reload_judges_the_next_request_of_an_inspected_tunnel"

# OPEN: a disagreement found by this walk and not fixed in it (none left: the
# reload case is fixed, cordon run and cordon proxy re-judge open connections
# by default)
OPEN = {}

# DIFFERS: decided differently on purpose, never wider
DIFFERS = {
    SP + "test_forward_proxy_rejects_https_scheme":
        "a forward request with an https:// URI: OpenShell answers 400 (use CONNECT); cordon "
        "decides it by the same policy as any request (403 when no entry allows host:port, "
        "L7 rules on the request it reads) and then opens a verified TLS connection to the "
        "origin itself — not wider: the same host:port and rules decide it; "
        "test_real_forward_decisions",
    # partly different: the decision is the same, one status, default or load step differs
    SP + "test_ssrf_blocks_loopback_despite_policy_allow":
        "with the address itself as host (`host: 127.0.0.1`) OpenShell loads the file and "
        "refuses each connection; cordon refuses the file at load, at the host's line:column; "
        "a name resolving to loopback loads and is refused per connection in both "
        "(test_real_ssrf_decisions)",
    SP + "test_ssrf_blocks_metadata_endpoint_despite_policy_allow":
        "as test_ssrf_blocks_loopback_despite_policy_allow, for 169.254.169.254",
    SP + "test_baseline_enrichment_incomplete_filesystem_policy":
        "a filesystem_policy without the system paths: OpenShell adds its baseline (/usr /lib "
        "/etc /app /var/log /proc /dev/urandom read-only, /tmp read-write); cordon grants what "
        "the section lists (plus the workdir), so the program cannot start until they are "
        "listed — stricter (doc/policy.md Static sections); "
        "test_real_baseline_without_filesystem_paths",
    "python/test_inference_routing.py::test_non_inference_request_denied":
        "a path on inference.local that is no inference call: refused and never forwarded in "
        "both; OpenShell answers 403, cordon 404 unknown_inference_path in the caller's API "
        "shape; test_real_inference_routing",
    JR + "jsonrpc_forward_proxy_hard_denies_response_frames_in_default_audit_mode":
        "a response frame is refused in both; an unlisted method on an endpoint without "
        "`enforcement` is forwarded by OpenShell (audit default) and refused by cordon "
        "(enforce default, doc/policy.md) — stricter; test_real_jsonrpc_decisions",
    "python/test_inference_routing.py::test_unsupported_protocol_returns_400":
        "an Anthropic-shaped call when only an OpenAI route exists: OpenShell answers 400, "
        "cordon routes by request shape and answers 404 when no route takes the shape; neither "
        "forwards it; test_real_inference_routing",
}

GATEWAY = ("the OpenShell gateway / control plane (gRPC API, sandbox CRUD, workspaces, "
           "settings, labels, health); cordon has no gateway: a sandbox is one `cordon run` "
           "(nearest: test_run_status.py, test_server_api.py)")
K8S = ("Kubernetes / OpenShift namespaces and pod specs; cordon runs no cluster driver")
PODMAN = "Podman / Docker drivers and images; cordon runs no container driver"
GPU = "GPU device selection and CDI parsing; cordon passes no GPU devices"
OIDC = ("OIDC / PKCE / Cloudflare auth to the gateway; cordon has no gateway login "
        "(cordon server's own token auth: test_server_api.py)")
PROV = ("provider credentials (storage, env injection, placeholders rewritten by the proxy); "
        "cordon holds no provider credentials and never rewrites a request: the credential "
        "fields load with a warning (doc/policy.md; test_policy_openshell.py)")
CLI = "CLI help text and plumbing of the openshell CLI"
SYNC = ("file upload/download between host and sandbox; cordon run shares the workdir "
        "(test_run_home.py), execd has file endpoints (test_execd_files.py)")
LOGF = ("the format of OpenShell's OCSF log lines; cordon writes JSON audit events, whose "
        "fields for allow/deny/L7 decisions are checked in test_proxy_deny.py, "
        "test_inspect_l7.py and test_run_network.py")
EXEC = ("the Python SDK's exec_python plumbing; cordon execd runs commands "
        "(test_execd_command.py)")
VENV = ("Python virtualenv / pip / uv inside OpenShell's image; cordon runs host binaries "
        "(test_run_containment.py::test_default_policy_runs_the_usual_tools)")
MTLS = ("mTLS of the gateway's gRPC endpoint; cordon has no gateway (execd over a unix socket "
        "or loopback with a token: test_execd_http.py)")
MIDDLEWARE = ("network_middlewares are not run by cordon: loaded with a warning per middleware "
              "(doc/policy.md network_middlewares)")

NOT_A_DECISION = {}


def nad(reason, *names):
    for n in names:
        NOT_A_DECISION[n] = reason


for n in UPSTREAM:
    f = n.split("::")[0]
    if f.startswith("python/oidc/") or f in ("rust/tests/oidc_pkce.rs", "rust/tests/cf_auth_smoke.rs"):
        nad(OIDC, n)
    elif f in ("python/test_sandbox_api.py", "python/test_workspace_api.py",
               "rust/tests/gateway_start.rs", "rust/tests/vm_gateway_start.rs",
               "rust/tests/readyz_health.rs", "rust/tests/sandbox_labels.rs",
               "rust/tests/sandbox_lifecycle.rs", "rust/tests/settings_management.rs",
               "rust/tests/smoke.rs", "rust/tests/workspace_lifecycle.rs",
               "rust/tests/edge_tunnel_e2e.rs", "rust/tests/port_forward.rs",
               "rust/tests/local_driver_token_restart.rs", "rust/tests/docker_preflight.rs",
               "rust/tests/upload_create.rs"):
        nad(GATEWAY, n)
    elif f.startswith("rust/tests/workspace_namespace") or f in (
            "rust/tests/user_namespaces.rs", "rust/tests/kubernetes_corporate_proxy.rs"):
        nad(K8S, n)
    elif f.startswith("rust/tests/podman") or f in (
            "rust/tests/community_image.rs", "rust/tests/custom_image.rs",
            "rust/tests/driver_config_volume.rs"):
        nad(PODMAN, n)
    elif f.startswith("rust/tests/gpu"):
        nad(GPU, n)
    elif f in ("python/test_sandbox_providers.py", "rust/tests/credential_drivers.rs",
               "rust/tests/credential_gating.rs", "rust/tests/provider_auto_create.rs",
               "rust/tests/provider_refresh_handles.rs"):
        nad(PROV, n)
    elif f == "rust/tests/cli_smoke.rs":
        nad(CLI, n)
    elif f == "rust/tests/sync.rs":
        nad(SYNC, n)
    elif f == "python/test_sandbox_exec_python.py":
        nad(EXEC, n)
    elif f == "python/test_sandbox_venv.py":
        nad(VENV, n)
    elif f == "python/test_security_tls.py":
        nad(MTLS, n)
nad("process hardening (core dumps off), not a policy decision; cordon's init sets "
    "RLIMIT_CORE 0, soft and hard, for every sandboxed process (src/sandbox/init.c; "
    "test_run_limits.py::test_core_dumps_disabled)",
    "rust/tests/core_dump_hardening.rs::sandbox_processes_disable_core_dumps")
nad(LOGF, SP + "test_l4_log_fields", SP + "test_ssrf_log_shows_blocked_address",
    SP + "test_l7_tls_log_fields", SP + "test_forward_proxy_log_fields")
nad("the sandbox CA in OpenShell's trust-store paths; cordon run installs its CA and sets "
    "SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE "
    "(test_run_tls.py)", SP + "test_l7_tls_ca_trust_store_injected")
nad(PROV, "rust/tests/host_gateway_alias.rs::static_provider_credentials_are_bound_to_profile_"
    "endpoints", "rust/tests/proxy_egress_pipeline.rs::http_credentials_are_rewritten_in_headers_"
    "and_bodies_for_both_adapters", WS)
nad(MIDDLEWARE, "rust/tests/proxy_egress_pipeline.rs::middleware_redacts_request_bodies_through_"
    "both_adapters", "rust/tests/proxy_egress_pipeline.rs::fail_closed_middleware_blocks_"
    "uninspectable_connect_payload_before_upstream", "rust/tests/proxy_egress_pipeline.rs::"
    "fail_open_middleware_bypasses_uninspectable_tls_skip_connect")
nad("the CLI's inference-route verification (`inference set --no-verify`); cordon reads "
    "routes from a file and checks it at load (test_inference.py::"
    "test_bad_routes_file_fails_with_position)",
    "rust/tests/host_gateway_alias.rs::inference_set_supports_no_verify_for_unreachable_endpoint")
nad("rootless Podman's musl getaddrinfo over policy DNS; cordon answers DNS in the sandbox "
    "with its own resolver (test_dns_policy.py)",
    TT + "rootless_podman_musl_getaddrinfo_uses_udp_policy_dns")
nad("policy versions, hashes and gateway polls (policy get/list/set); cordon reloads the "
    "file it was given (SIGHUP, `cordon policy reload`); the decisions before and after are "
    "REAL (test_real_reload_decisions) and EVAL rows",
    LV + "initial_sparse_policy_is_acknowledged_as_loaded",
    LV + "local_policy_override_survives_gateway_policy_polls")
for n in (LV + "live_policy_update_round_trip", LV + "live_policy_update_from_empty_network_policies",
          "rust/tests/proxy_egress_pipeline.rs::ambiguous_policy_update_is_rejected_without_"
          "replacing_active_policy"):
    REAL[n] = "test_real_reload_decisions"
nad("UpdateConfig refusing to remove filesystem paths from a live sandbox: cordon never "
    "changes the filesystem of a running sandbox (reload re-reads network_policies only, "
    "doc/policy.md Runtime); the unsafe content it carries is a CHECKS row",
    "python/test_policy_validation.py::test_update_policy_rejects_immutable_fields")


def test_every_upstream_test_is_accounted_for():
    assert len(UPSTREAM) == 292 and len(set(UPSTREAM)) == 292
    decided = ({c[0] for c in CHECKS} | {e[0] for e in E} | set(REAL) | set(COVERED)
               | set(DIFFERS) | set(OPEN))
    nad_only = set(NOT_A_DECISION) - decided
    classified = decided | nad_only
    assert sorted(classified - set(UPSTREAM)) == []
    assert [n for n in UPSTREAM if n not in classified] == []
    assert (len(decided), len(nad_only)) == (71, 221)     # as the docstring and doc/policy.md say
    # the real tests named exist in this file, the covering ones in theirs
    mod = sys.modules[__name__]
    for fn in set(REAL.values()):
        assert callable(getattr(mod, fn, None)), fn
    for ref in COVERED.values():
        path, fn = ref.split("::")
        assert re.search(r"^def %s\(" % fn, open(os.path.join(HERE, path)).read(), re.M), ref


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("openshell-e2e")
    for k, v in FIXTURES.items():
        (d / (k + ".yaml")).write_text(v, encoding="utf-8")
    return d


@pytest.mark.parametrize("fx", sorted(FIXTURES))
def test_fixture_loads(cordon_bin, fixture_dir, fx):
    r = subprocess.run([cordon_bin, "policy", "check", str(fixture_dir / (fx + ".yaml"))],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("row", CHECKS, ids=["%s-%d" % (c[0].split("::")[1], i)
                                             for i, c in enumerate(CHECKS)])
def test_load_case(cordon_bin, tmp_path, row):
    name, text, code, needle = row
    p = tmp_path / "p.yaml"
    p.write_text(text, encoding="utf-8")
    r = subprocess.run([cordon_bin, "policy", "check", str(p)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == code, (name, r.stdout, r.stderr)
    if needle:
        assert needle in r.stderr and re.search(r"p\.yaml:\d+:\d+: error", r.stderr), r.stderr


@pytest.mark.parametrize("row", E, ids=["%s-%d" % (e[0].split("::")[1][:60], i)
                                        for i, e in enumerate(E)])
def test_eval_case(cordon_bin, fixture_dir, row):
    name, fx, host, port, binary, method, target, body, allow = row
    a = [cordon_bin, "policy", "eval", str(fixture_dir / (fx + ".yaml")), "--host", host,
         "--port", str(port), "--binary", binary]
    if method:
        a += ["--method", method, "--path", target]
    if body is not None:
        a += ["--body", body]
    r = subprocess.run(a, capture_output=True, text=True, timeout=20)
    assert r.returncode == (0 if allow else 1), (name, r.stdout, r.stderr)
    if method and allow:
        assert "l7: allow" in r.stdout, (name, r.stdout)


# ---------------------------------------------------------------------------------------------
# REAL: a real cordon proxy, the test process (/usr/bin/python3) or curl as the client, the
# session namespace's servers as upstreams.
def _pol(cidr, entries):
    out = HEAD
    for name, eps, bins in entries:
        out += "  %s:\n    endpoints:\n" % name
        for e in eps:
            out += "      - %s\n" % e
        out += "    binaries: [%s]\n" % ", ".join('{path: "%s"}' % b for b in bins)
    return out.replace("CIDR", cidr)


def _status(p, host, port):
    c, r = connect_tunnel(p.port, host, port)
    c.close()
    return r.status


def _curl_tunnel(p, url):
    r = subprocess.run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-p", "-x",
                        p.url, "--noproxy", "", "-m", "10", url],
                       capture_output=True, text=True, timeout=20)
    return r.stdout.strip()


def test_real_l4_connect_decisions(testnet, cordon_proxy):
    p = cordon_proxy(_pol(testnet.cidr, [
        ("any_binary", ["{host: allowed.test, port: 80, allowed_ips: [CIDR]}"], ["/**"]),
        ("curl_only", ["{host: other.test, port: 80, allowed_ips: [CIDR]}"], [CURL]),
        ("multi", ["{host: echo.test, ports: [80, 8080], allowed_ips: [CIDR]}"],
         ["/usr/bin/python3*"]),
    ]))
    assert _status(p, "allowed.test", 80) == 200          # L4-2: any binary
    assert _status(p, "denied.test", 80) == 403           # L4-1 / L4-2: unlisted endpoint
    assert _status(p, "allowed.test", 8080) == 403        # L4-4 / MP-3: wrong port
    assert _status(p, "other.test", 80) == 403            # L4-3 / L4-5: curl's entry
    assert _curl_tunnel(p, "http://other.test/") == "200"  # ... which curl may use
    assert _status(p, "echo.test", 80) == 200             # MP-1
    assert _status(p, "echo.test", 8080) == 200
    assert _status(p, "echo.test", 7) == 403              # MP-2
    # L4-6: a plain request for a host the policy does not list is refused
    r = forward_once(p.port, "http://denied.test/")
    assert r.status == 403 and r.header("x-cordon-deny"), r


def test_real_ssrf_decisions(testnet, cordon_proxy, cordon_bin, tmp_path):
    # SSRF-1/2: names that resolve to loopback and to the metadata address, allowed by name
    p = cordon_proxy(_pol(testnet.cidr, [
        ("internal", ["{host: loop.test, port: 80}", "{host: meta.test, port: 80}"], ["/**"]),
        ("private", ["{host: allowed.test, port: 80, allowed_ips: [CIDR]}",
                     "{port: 8080, allowed_ips: [CIDR]}"], ["/**"]),
        ("literal", ["{host: %s, port: 80}" % testnet.ip], ["/**"]),
    ]))
    for host in ("loop.test", "meta.test"):
        c, r = connect_tunnel(p.port, host, 80)
        c.close()
        assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", r
    assert _status(p, "allowed.test", 80) == 200          # SSRF-4: allowed_ips covers it
    assert _status(p, "other.test", 8080) == 200          # SSRF-5: hostless allowed_ips
    # SSRF-6 / FWD-2: a literal private IP as host is its own allowed_ips, both adapters
    assert _status(p, testnet.ip, 80) == 200
    r = forward_once(p.port, "http://%s/" % testnet.ip)
    assert r.status == 200 and b"hello from upstream" in r.body, r
    # ... that address only: the same private address on another port has no entry
    assert _status(p, testnet.ip, 7) == 403
    # SSRF-7: loopback with allowed_ips covering it: cordon refuses the file at load
    bad = tmp_path / "loop.yaml"
    bad.write_text(_pol(testnet.cidr, [("i", ["{host: loop.test, port: 80, "
                                              "allowed_ips: [127.0.0.0/8]}"], ["/**"])]))
    r = subprocess.run([cordon_bin, "policy", "check", str(bad)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1 and "loopback" in r.stderr, r.stderr


def test_real_forward_decisions(testnet, cordon_proxy):
    p = cordon_proxy(_pol(testnet.cidr, [
        ("internal_http", ["{host: allowed.test, port: 80, allowed_ips: [CIDR]}"], ["/**"]),
        ("outside", ["{host: other.test, port: 80, allowed_ips: [198.51.100.0/24]}"], ["/**"]),
    ]))
    r = forward_once(p.port, "http://allowed.test/")      # FWD-1
    assert r.status == 200 and b"hello from upstream" in r.body, r
    # FWD-3 (a deliberate difference): an https:// absolute-form request is decided like any
    # other (cordon then speaks TLS to the origin itself; here port 80 answers plain HTTP)
    r = forward_once(p.port, "https://denied.test/")
    assert r.status == 403 and r.header("x-cordon-deny") == "no_endpoint", r
    r = forward_once(p.port, "https://allowed.test:80/")
    assert r.status == 502 and r.header("x-cordon-deny") == "upstream_tls_handshake", r
    r = forward_once(p.port, "http://denied.test/")       # FWD-4: no entry
    assert r.status == 403 and r.header("x-cordon-deny") == "no_endpoint", r
    # FWD-5 / destination_denial_modes: the address is outside allowed_ips, both adapters
    r = forward_once(p.port, "http://other.test/")
    assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", r
    c, r = connect_tunnel(p.port, "other.test", 80)
    c.close()
    assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", r


def _tunnel_get(p, host, port, method, target, body=None):
    c, r = connect_tunnel(p.port, host, port)
    try:
        assert r.status == 200, r
        c.send(build_request(method, target, "%s:%d" % (host, port),
                             [("Connection", "close")], body))
        return c.read_response(method)
    finally:
        c.close()


def test_real_l7_rest_decisions(testnet, cordon_proxy):
    p = cordon_proxy(_pol(testnet.cidr, [
        ("query_api", ["{host: allowed.test, port: 80, protocol: rest, enforcement: enforce, "
                       "allowed_ips: [CIDR], rules: [{allow: {method: GET, path: /download, "
                       "query: {tag: \"foo-*\"}}}, {allow: {method: GET, path: /search, query: "
                       "{tag: {any: [\"foo-*\", \"bar-*\"]}}}}]}",
                       "{host: other.test, port: 80, protocol: rest, allowed_ips: [CIDR], "
                       "rules: [{allow: {method: GET, path: /download}}]}",
                       "{host: echo.test, port: 80, protocol: rest, access: read-only, "
                       "allowed_ips: [CIDR]}",
                       "{host: denied.test, port: 80, protocol: rest, allowed_ips: [CIDR], "
                       "rules: [{allow: {method: GET, path: \"/v1/**\"}}, "
                       "{allow: {method: GET, path: /allowed}}]}",
                       "{host: closed.test, port: 80, protocol: rest, enforcement: audit, "
                       "access: read-only, allowed_ips: [CIDR]}",
                       "{host: ws.test, port: 80, protocol: rest, access: full, "
                       "allowed_ips: [CIDR]}"],
         ["/**"]),
    ]))

    def reached(r):
        return r.header("x-cordon-deny") is None and r.header("x-upstream-conn") is not None

    def refused(r):
        return r.status == 403 and r.header("x-cordon-deny") is not None

    for via in ("tunnel", "forward"):
        def req(host, method, target, body=None):
            if via == "tunnel":
                return _tunnel_get(p, host, 80, method, target, body)
            return forward_once(p.port, "http://%s%s" % (host, target), method, body=body)
        # L7-T9 query matchers
        assert reached(req("allowed.test", "GET", "/download?tag=foo-a&tag=foo-b"))
        assert refused(req("allowed.test", "GET", "/download?tag=foo-a&tag=evil"))
        assert reached(req("allowed.test", "GET", "/search?tag=foo-a&tag=bar-b"))
        assert refused(req("allowed.test", "GET", "/download?slug=skill-1"))
        # L7-T10 no query matcher
        assert reached(req("other.test", "GET", "/download?tag=anything&slug=any-value"))
        # L7-T2 / L7-T6 read-only: GET through, POST and DELETE refused with the JSON body
        assert reached(req("echo.test", "GET", "/echo"))
        r = req("echo.test", "POST", "/v1/messages", b"{}")
        assert refused(r) and json.loads(r.body)["error"], r
        r = req("echo.test", "DELETE", "/v1/anything")
        assert refused(r) and "application/json" in r.header("content-type"), r
        # L7-T4 path rules; forward_proxy_l7_bypass GET /allowed vs POST /allowed
        assert reached(req("denied.test", "GET", "/v1/models"))
        assert refused(req("denied.test", "POST", "/v1/messages", b"{}"))
        assert refused(req("denied.test", "GET", "/v2/anything"))
        assert reached(req("denied.test", "GET", "/allowed"))
        assert refused(req("denied.test", "POST", "/allowed", b"test"))
        # L7-T3 audit: the POST goes through
        assert reached(req("closed.test", "POST", "/echo", b"{}"))
        # L7-T1 full access
        assert reached(req("ws.test", "POST", "/echo", b"{}"))
    # the audit-mode request was recorded as one that enforce would refuse
    ev = p.events("l7_request", host="closed.test", method="POST")
    assert ev and all(e["l7_decision"] == "would_deny" for e in ev), p.events("l7_request")


def test_real_tls_skip_relays_opaque_bytes(testnet, cordon_proxy):
    p = cordon_proxy(_pol(testnet.cidr, [
        ("raw", ["{host: echo.test, port: 7, tls: skip, allowed_ips: [CIDR]}"], ["/**"])]))
    c, r = connect_tunnel(p.port, "echo.test", 7)
    try:
        assert r.status == 200, r
        payload = b"\x16\x03\x01not-tls-but-opaque\x00\xff" * 8
        c.send(payload)
        got = b""
        while len(got) < len(payload):
            got += c.read_some(5.0)
        assert got == payload
    finally:
        c.close()


LANDLOCK_PROBE = r"""
import json, os, sys
def w(d):
    try:
        with open(os.path.join(d, ".landlock-test"), "w") as f:
            f.write("x")
        return "OK"
    except OSError as e:
        return "E%d" % e.errno
def r(d):
    try:
        return "OK:%d" % len(os.listdir(d))
    except OSError as e:
        return "E%d" % e.errno
ro, rw, secret = sys.argv[1:4]
print(json.dumps({"w_ro": w(ro), "w_usr": w("/usr"), "w_rw": w(rw), "r_ro": r(ro),
                  "r_etc": r("/etc"), "r_secret": r(secret), "w_secret": w(secret),
                  "r_root": r("/root"), "uid": os.getuid()}))
"""


def test_real_landlock_outcomes(sandbox):  # noqa: F811
    r = sandbox.run([PY3, "-c", LANDLOCK_PROBE, sandbox.ro, sandbox.work, sandbox.secret])
    assert r.code == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    assert out["w_ro"] != "OK" and out["w_usr"] != "OK", out      # read-only: no writes
    assert out["w_rw"] == "OK", out                                # read-write: writes
    assert out["r_ro"].startswith("OK:") and out["r_etc"].startswith("OK:"), out
    # outside the policy (a 0777 directory the sandbox user could write by DAC): nothing
    assert out["r_secret"] != "OK:1" and out["w_secret"] != "OK", out
    assert not out["r_root"].startswith("OK:"), out
    assert out["uid"] != 0, out                                    # not root inside


# -- GraphQL and JSON-RPC: forward_proxy_graphql_l7.rs / forward_proxy_jsonrpc_l7.rs -----------
L7_SERVERS = os.path.join(HERE, "lib", "l7_servers.py")
RPC_PORT, GQL_PORT = 9711, 9712          # our own servers in the session namespace
L7_NAMES = ("gql.e2e.test", "rpc.e2e.test", "rpc-audit.e2e.test")


@pytest.fixture(scope="module")
def l7_servers(_testnet, dns_server, tmp_path_factory):
    import select
    d = tmp_path_factory.mktemp("e2e-l7-servers")
    log = str(d / "requests.jsonl")
    err = open(str(d / "stderr"), "w+b")
    proc = _testnet.ns.spawn([PY3, L7_SERVERS, "--bind", _testnet.ip, "--rpc-port",
                              str(RPC_PORT), "--gql-port", str(GQL_PORT), "--log", log],
                             stdout=subprocess.PIPE, stderr=err)
    r, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline() if r else b""
    err.seek(0)
    assert line.strip() == b"READY", (line, err.read()[-2000:])
    for n in L7_NAMES:
        dns_server.set(n, _testnet.ip)
    yield log
    for n in L7_NAMES:
        dns_server.set(n, None)
    proc.kill()
    proc.wait(10)


def _received(log, needle):
    try:
        with open(log) as f:
            return [l for l in f if needle in l]
    except FileNotFoundError:
        return []


def _l7_policy(cidr):
    return HEAD + f"""\
  gql:
    endpoints:
      - host: gql.e2e.test
        port: {GQL_PORT}
        protocol: graphql
        enforcement: enforce
        allowed_ips: ["{cidr}"]
        persisted_queries: allow_registered
        graphql_persisted_queries:
          abc123: {{operation_type: query, operation_name: Viewer, fields: [viewer]}}
        rules:
          - allow: {{operation_type: query, fields: [viewer]}}
          - allow: {{operation_type: mutation, fields: [createIssue]}}
        deny_rules:
          - {{operation_type: mutation, fields: [deleteRepository]}}
      - host: rpc.e2e.test
        port: {RPC_PORT}
        path: /rpc
        protocol: json-rpc
        enforcement: enforce
        allowed_ips: ["{cidr}"]
        rules:
          - allow: {{method: initialize}}
          - allow: {{method: tools/list}}
          - allow: {{method: tools/call}}
        deny_rules:
          - method: tools/delete
      - host: rpc-audit.e2e.test
        port: {RPC_PORT}
        path: /rpc
        protocol: json-rpc
        allowed_ips: ["{cidr}"]
        json_rpc: {{max_body_bytes: 65536}}
        rules:
          - allow: {{method: initialize}}
    binaries: [{{path: "/usr/bin/python3*"}}]
"""


def _both_adapters(p, host, port, method, target, body=None):
    """The same request as a forward request and inside a CONNECT tunnel; both statuses."""
    hdrs = [("Content-Type", "application/json")] if body is not None else []
    f = forward_once(p.port, "http://%s:%d%s" % (host, port, target), method, hdrs, body)
    c, r = connect_tunnel(p.port, host, port)
    try:
        assert r.status == 200, r
        t = c.request(method, target, "%s:%d" % (host, port), hdrs, body)
    finally:
        c.close()
    return f.status, t.status


def test_real_graphql_decisions(testnet, cordon_proxy, l7_servers):
    p = cordon_proxy(_l7_policy(testnet.cidr))
    G = ("gql.e2e.test", GQL_PORT)
    for doc, want in ((VIEWER, 200), (REPO, 403), (CREATE, 200), (DELETE, 403)):
        body = json.dumps({"query": doc}).encode()
        assert _both_adapters(p, *G, "POST", "/graphql", body) == (want, want), doc
    assert _both_adapters(p, *G, "GET", "/graphql?query=" + q(VIEWER)) == (200, 200)
    # a repeated query parameter: the second, denied document is not hidden behind the first
    dup = "/graphql?query=%s&query=%s" % (q(VIEWER), q(DELETE))
    assert _both_adapters(p, *G, "GET", dup) == (403, 403)
    reg = "/graphql?operationName=Viewer&extensions=" + q(PQ % "abc123")
    assert _both_adapters(p, *G, "GET", reg) == (200, 200)
    unreg = "/graphql?operationName=Viewer&extensions=" + q(PQ % "missing")
    assert _both_adapters(p, *G, "GET", unreg) == (403, 403)
    # chunked request body, both adapters
    chunked = json.dumps({"query": VIEWER}).encode()
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunked), chunked)
    hdrs = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    with HttpConn.open(("127.0.0.1", p.port), 10) as c:
        c.send(build_request("POST", "http://gql.e2e.test:%d/graphql" % GQL_PORT,
                             "gql.e2e.test:%d" % GQL_PORT, hdrs) + framed)
        assert c.read_response("POST").status == 200
    c, r = connect_tunnel(p.port, *G)
    try:
        c.send(build_request("POST", "/graphql", "gql.e2e.test:%d" % GQL_PORT, hdrs) + framed)
        assert c.read_response("POST").status == 200
    finally:
        c.close()
    assert not _received(l7_servers, "deleteRepository") and not _received(l7_servers, "missing")


def test_real_jsonrpc_decisions(testnet, cordon_proxy, l7_servers):
    p = cordon_proxy(_l7_policy(testnet.cidr))
    R = ("rpc.e2e.test", RPC_PORT)
    for body, want in (
            (rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}), 200),
            (rpc("tools/list"), 200),
            (rpc("tools/call", {"name": "read_status"}), 200),
            (rpc("tools/call", {"name": "blocked_action", "arguments": {"scope": "ignored"}}), 200),
            (rpc("tools/delete", {"name": "purge_cache"}), 403),
            ([rpc("tools/list"), rpc("tools/call", {"name": "read_status"}, 2)], 200),
            ([rpc("tools/list"), rpc("tools/delete", {"name": "purge_cache"}, 2)], 403)):
        assert _both_adapters(p, *R, "POST", "/rpc", json.dumps(body).encode()) == (want, want), body
    assert _both_adapters(p, *R, "POST", "/rpc", b"not valid json {")[0] == 403
    assert not _received(l7_servers, "tools/delete") and not _received(l7_servers, "not valid")
    # the default-enforcement endpoint: a response frame is refused in both; an unlisted
    # method is allowed by OpenShell (audit default) and refused by cordon (enforce default)
    A = ("rpc-audit.e2e.test", RPC_PORT)
    resp = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}).encode()
    assert _both_adapters(p, *A, "POST", "/rpc", resp) == (403, 403)
    assert _both_adapters(p, *A, "POST", "/rpc", json.dumps(rpc("initialize")).encode()) == (200, 200)
    assert _both_adapters(p, *A, "POST", "/rpc", json.dumps(rpc("unknown/method")).encode()) == (403, 403)


# -- inference routing: test_inference_routing.py ----------------------------------------------
def test_real_inference_routing(cordon_proxy, fake_llm, tmp_path, monkeypatch):  # noqa: F811
    """An OpenAI-only route (as the e2e suite's managed route); requests for inference.local
    are answered by the route, nothing else is."""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    routes = tmp_path / "routes.yaml"
    routes.write_text("version: 1\nroutes:\n  - name: managed\n    shapes: [openai]\n"
                      "    base_url: %s/v1\n    credential: {env: %s}\n" % (fake_llm.url, KEY_ENV))
    p = cordon_proxy("version: 1\n", "--inference-routes", str(routes))

    def post(url, obj, headers=()):
        hdrs = [("Content-Type", "application/json")] + list(headers)
        return forward_once(p.port, url, "POST", hdrs, json.dumps(obj).encode(), timeout=20)
    chat = {"model": "test-model", "messages": [{"role": "user", "content": "hello"}]}
    r = post("http://inference.local/v1/chat/completions", chat,
             [("Authorization", "Bearer dummy-key")])
    assert r.status == 200 and r.json()["choices"][0]["message"]["content"], r
    assert len(fake_llm.seen()) == 1
    assert fake_llm.seen()[0]["headers"]["authorization"] == "Bearer " + FAKE_KEY
    # model discovery is routed too
    r = forward_once(p.port, "http://inference.local/v1/models", timeout=20)
    assert r.status == 200 and r.json()["data"], r
    seen = len(fake_llm.seen())
    # a path that is no inference call: refused without reaching the backend
    r = forward_once(p.port, "http://inference.local/v1/not-inference", timeout=20)
    assert r.status == 404 and r.header("x-upstream-conn") is None, r  # OpenShell: 403
    # an Anthropic call with only an OpenAI route: refused without reaching the backend
    r = post("http://inference.local/v1/messages",
             {"model": "claude-test", "max_tokens": 64, "messages": []},
             [("anthropic-version", "2023-06-01"), ("x-api-key", "dummy-key")])
    assert r.status == 404 and r.header("x-upstream-conn") is None, r   # OpenShell: 400
    # another host is not intercepted: the (empty) network policy decides it
    c, r = connect_tunnel(p.port, "api.openai.test", 443)
    c.close()
    assert r.status == 403 and r.header("x-cordon-deny") == "no_endpoint", r
    assert len(fake_llm.seen()) == seen


# -- L7 behind TLS termination: test_sandbox_policy.py L7-T1..T4, T6, OVL-2 -------------------
def test_real_l7_tls_decisions(iproxy, inet):
    import uuid
    from inspect_fixtures import tls_tunnel
    ips = '["%s"]' % inet.cidr
    ep = ("      - {host: %s, port: 443, protocol: rest, tls: terminate, allowed_ips: " + ips
          + ", %s}\n")
    pol = (HEAD + "  anthropic:\n    endpoints:\n"
           + ep % ("full.insp.test", "enforcement: enforce, access: full")
           + ep % ("ro.insp.test", "enforcement: enforce, access: read-only")
           + ep % ("audit.insp.test", "enforcement: audit, access: read-only")
           + ep % ("api.insp.test", "enforcement: enforce, rules: [{allow: {method: GET, "
                   "path: \"/v1/**\"}}]")
           + "    binaries: [{path: \"/usr/bin/python3*\"}]\n"
           # OVL-2: two identical L7 entries for one host load and carry the CONNECT
           + "".join("  %s:\n    endpoints:\n" % n
                     + ep % ("deny.insp.test", "enforcement: enforce, access: read-only")
                     + "    binaries: [{path: \"/**\"}]\n"
                     for n in ("user_api", "auto_approved_api")))
    p = iproxy(pol)
    m = uuid.uuid4().hex[:10]

    def req(host, method, path, body=None):
        t = tls_tunnel(p, host, 443)
        try:
            return t.request(method, path, host, body=body)
        finally:
            t.close()

    def reached(host, method, path):
        path += "%s-%s" % (host.split(".")[0], m)          # unique per call: the upstream log
        r = req(host, method, path, b"{}" if method == "POST" else None)
        return r.status != 403 and r.header("x-cordon-deny") is None and inet.seen(path)

    def refused(host, method, path):
        path += "%s-%s" % (host.split(".")[0], m)
        r = req(host, method, path, b"{}" if method == "POST" else None)
        if r.status != 403 or inet.seen(path):
            return None
        return json.loads(r.body)

    assert reached("full.insp.test", "GET", "/v1/models-")                 # L7-T1
    assert reached("full.insp.test", "POST", "/v1/messages-")
    assert reached("ro.insp.test", "GET", "/v1/models-")                   # L7-T2
    doc = refused("ro.insp.test", "POST", "/v1/messages-")
    assert doc and doc["error"] == "policy_denied", doc
    doc = refused("ro.insp.test", "DELETE", "/v1/anything-")               # L7-T6
    assert doc and doc["error"] == "policy_denied" and doc["policy"] == "anthropic", doc
    assert doc["detail"] and doc["reason_code"] == "l7_denied", doc
    assert reached("audit.insp.test", "POST", "/v1/messages-")             # L7-T3
    assert reached("api.insp.test", "GET", "/v1/models-")                  # L7-T4
    assert refused("api.insp.test", "POST", "/v1/messages-") is not None
    assert refused("api.insp.test", "GET", "/v2/anything-") is not None
    assert reached("deny.insp.test", "GET", "/v1/models-")                 # OVL-2
    assert refused("deny.insp.test", "POST", "/v1/messages-") is not None


# -- live policy updates: live_policy_update.rs, proxy_egress_pipeline.rs ---------------------
def test_real_reload_decisions(testnet, cordon_proxy):
    from lib.util import wait_until
    ep = "{host: %s, port: 80, allowed_ips: [CIDR]}"
    a = _pol(testnet.cidr, [("p", [ep % "allowed.test"], ["/usr/bin/python3*"])])
    b = _pol(testnet.cidr, [("p", [ep % "allowed.test", ep % "other.test"], ["/usr/bin/python3*"])])
    p = cordon_proxy("version: 1\nnetwork_policies: {}\n")     # from empty network_policies
    assert _status(p, "allowed.test", 80) == 403
    p.reload(a)
    wait_until(lambda: _status(p, "allowed.test", 80) == 200, 5, what="policy A in force")
    assert _status(p, "other.test", 80) == 403
    p.reload(b)                                                 # A -> B adds a host
    wait_until(lambda: _status(p, "other.test", 80) == 200, 5, what="policy B in force")
    # an ambiguous update is refused and B stays in force
    before = len(p.stderr)
    p.reload(b + "  q:\n    endpoints:\n      - {host: other.test, port: 80, tls: skip, "
                 "allowed_ips: [%s]}\n    binaries: [{path: \"/**\"}]\n" % testnet.cidr)
    wait_until(lambda: "has errors" in p.stderr[before:], 5, what="the reload refusal on stderr")
    assert re.search(r"overlaps .* differ in tls", p.stderr[before:]), p.stderr[before:]
    assert _status(p, "other.test", 80) == 200 and _status(p, "allowed.test", 80) == 200
    assert p.alive()


BASELINE_PROBE = r"""
import json, os, sys
def w(d):
    p = os.path.join(d, "enrichment-%d.txt" % os.getpid())
    try:
        with open(p, "w") as f:
            f.write("ok")
        ok = open(p).read() == "ok"
        os.unlink(p)
        return ok
    except OSError as e:
        return "E%d" % e.errno
print(json.dumps({"resolv_conf": os.path.exists("/etc/resolv.conf"),
                  "lib": os.path.isdir("/usr/lib"), "tmp": w("/tmp"), "work": w(sys.argv[1])}))
"""


BASELINE_FS = ("filesystem_policy:\n  include_workdir: true\n  read_only: %s\n  read_write: %s\n"
               "landlock: {compatibility: best_effort}\n")


@pytest.mark.parametrize("fs,runs", [
    ("", True),                                         # BFS-1: no filesystem_policy
    (BASELINE_FS % ("[]", "[]"), False),                # BFS-2 as written: cordon adds nothing
    (BASELINE_FS % ("[/usr, /lib, /lib64, /etc, /proc, /dev/urandom]", "[/tmp]"), True),
], ids=["no_filesystem_policy", "workdir_only", "workdir_and_openshell_baseline_listed"])
def test_real_baseline_without_filesystem_paths(sandbox, fs, runs):  # noqa: F811
    """BFS-1/2: a policy with network entries and no (or almost no) filesystem paths.
    Without the section cordon's default runs the usual tools (libraries and /etc readable,
    /tmp and the workdir writable). OpenShell adds its baseline paths to a section that
    lacks them; cordon does not (a deliberate difference): the section is what is granted,
    so listing the same baseline paths gives the same result."""
    pol = sandbox.write_policy("version: 1\n" + fs + "network_policies:\n  t:\n    endpoints: "
                               "[{host: allowed.test, port: 80, allowed_ips: [\"%s\"]}]\n"
                               "    binaries: [{path: /usr/bin/curl}]\n" % sandbox.net.cidr,
                               name="baseline.yaml")
    r = sandbox.run([PY3, "-c", BASELINE_PROBE, sandbox.work], policy=pol)
    if not runs:
        assert r.code == 127 and "cannot execute the command /usr/bin/python3" in r.err, r
        # and the terminal says why and what to add
        assert "does not list /usr /lib /etc" in r.err and "add them to read_only" in r.err, r
        return
    assert r.code == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    assert out == {"resolv_conf": True, "lib": True, "tmp": True, "work": True}, out
