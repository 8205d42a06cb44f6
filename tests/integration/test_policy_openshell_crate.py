"""OpenShell's policy crate tests, walked one by one (#13): so far
ambiguity.rs (20), l7_validate.rs (21) and compose.rs (4) of
NVIDIA/OpenShell crates/openshell-policy/src at 2f7fb65 (2026-08-21); names,
as FILE::TEST, in openshell_policy_crate_tests.txt. lib.rs (110) and
merge.rs (78) are not walked yet (doc/policy.md says so).

Each test is one of
  CASES           what it asserts about loading a policy (refused, with the
                  reason, or accepted), re-expressed as our own policy text
                  and asked of the real binary with `cordon policy check`;
  NOT_A_DECISION  a test of a helper that decides nothing about a policy
                  file, with where cordon covers the concern;
  DIFFERS         a load decision cordon makes differently on purpose (also
                  in doc/policy.md "Where we differ").

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step: len(CASES by name) + len(NOT_A_DECISION) + len(DIFFERS) == 45."""
import subprocess

import pytest

HEAD = "version: 1\nnetwork_policies:\n"


def two(left, right, right_bin="/usr/bin/curl"):
    """Two entries, as ambiguity.rs builds them ("left", "right")."""
    return (HEAD + "  left:\n    endpoints:\n      - " + left +
            "\n    binaries: [{path: /usr/bin/curl}]\n"
            "  right:\n    endpoints:\n      - " + right +
            "\n    binaries: [{path: " + right_bin + "}]\n")


def one(ep):
    return HEAD + "  p:\n    endpoints:\n      - " + ep + "\n    binaries: [{path: /usr/bin/curl}]\n"


A = "api.example.com"
# (upstream test, policy text, None = loads | needle of the error)
C = []


def case(name, text, error=None):
    C.append((name, text, error))


AMB = "ambiguity.rs::"
case(AMB + "exact_and_wildcard_hosts_overlap",
     two("{host: api.example.com, port: 443}", '{host: "*.example.com", port: 443, tls: skip}'),
     "overlaps network_policies.left.endpoints[0]")
case(AMB + "exact_and_wildcard_hosts_overlap",
     two("{host: us-aiplatform.googleapis.com, port: 443}",
         '{host: "*-aiplatform.googleapis.com", port: 443, tls: skip}'), "differ in tls")
case(AMB + "exact_and_wildcard_hosts_overlap",
     two("{host: api.example.com, port: 443}", '{host: "*.other.com", port: 443, tls: skip}'))
case(AMB + "intersecting_wildcards_are_detected",
     two('{host: "*.example.com", port: 443}', '{host: "api.*.com", port: 443, tls: skip}'),
     "differ in tls")
case(AMB + "intersecting_wildcards_are_detected",
     two('{host: "**.example.com", port: 443}', "{host: api.example.com, port: 443, tls: skip}"),
     "differ in tls")
case(AMB + "intersecting_wildcards_are_detected",
     two('{host: "*.example.com", port: 443}', '{host: "*.example.org", port: 443, tls: skip}'))
case(AMB + "disjoint_ports_do_not_overlap",
     two("{host: api.example.com, port: 443, tls: skip}", "{host: api.example.com, port: 8443}"))
case(AMB + "compatible_request_rules_may_overlap",
     two("{host: api.example.com, port: 443, protocol: rest, tls: skip, access: read-only}",
         "{host: api.example.com, port: 443, protocol: rest, tls: skip, access: read-write}"))
case(AMB + "plain_l4_endpoint_does_not_compete_with_l7_endpoint_metadata",
     two("{host: api.example.com, port: 443}",
         "{host: api.example.com, port: 443, protocol: rest, enforcement: enforce, access: full}"))
case(AMB + "disjoint_path_specific_protocols_may_overlap",
     two("{host: api.example.com, port: 443, path: /graphql, protocol: graphql, access: read-only}",
         '{host: api.example.com, port: 443, path: "/repos/**", protocol: rest, access: full}'))
case(AMB + "disjoint_character_class_paths_may_overlap_by_host_and_port",
     two("{host: api.example.com, port: 443, path: /v12, protocol: rest, access: full}",
         "{host: api.example.com, port: 443, path: /v34, protocol: graphql, access: full}"))
case(AMB + "more_specific_path_may_override_request_pipeline_metadata",
     two("{host: api.example.com, port: 443, protocol: rest, enforcement: enforce, access: full}",
         "{host: api.example.com, port: 443, path: /graphql, protocol: graphql, "
         "enforcement: enforce, access: full}"))
case(AMB + "exact_wildcard_tls_conflict_is_rejected",
     two('{host: "*.example.com", port: 443, tls: skip}', "{host: api.example.com, port: 443}"),
     "error: network_policies.right.endpoints[0]: host 'api.example.com' overlaps "
     "network_policies.left.endpoints[0] (host '*.example.com', line 5) on port 443, but they "
     "differ in tls")
case(AMB + "allowed_ip_conflict_is_rejected_regardless_of_order",
     two("{host: api.example.com, port: 443, allowed_ips: [10.0.1.0/24, 10.0.0.0/24]}",
         "{host: api.example.com, port: 443, allowed_ips: [10.0.0.0/24, 10.0.1.0/24]}"))
case(AMB + "allowed_ip_conflict_is_rejected_regardless_of_order",
     two("{host: api.example.com, port: 443, allowed_ips: [10.0.1.0/24, 10.0.0.0/24]}",
         "{host: api.example.com, port: 443, allowed_ips: [10.0.2.0/24]}"),
     "differ in allowed_ips")
# refused in both; cordon names allow_encoded_slash (the signing fields are
# never applied by cordon, so they cannot conflict)
case(AMB + "credential_and_parser_conflicts_are_rejected_on_same_path",
     two("{host: api.example.com, port: 443, protocol: rest, access: full, "
         "credential_signing: sigv4, signing_service: execute-api}",
         "{host: api.example.com, port: 443, protocol: rest, access: full, "
         "credential_signing: sigv4, signing_service: bedrock, allow_encoded_slash: true}"),
     "differ in allow_encoded_slash")
case(AMB + "json_rpc_body_limit_is_compared_only_within_the_same_protocol",
     two("{host: api.example.com, port: 443, protocol: json-rpc, json_rpc: {max_body_bytes: 1024}, "
         "rules: [{allow: {method: initialize}}]}",
         "{host: api.example.com, port: 443, protocol: mcp, mcp: {max_body_bytes: 2048}, "
         "rules: [{allow: {method: initialize}}]}"),
     "but they differ in protocol: which")
case(AMB + "json_rpc_body_limit_is_compared_only_within_the_same_protocol",
     two("{host: api.example.com, port: 443, protocol: mcp, mcp: {max_body_bytes: 2048}, "
         "rules: [{allow: {method: initialize}}]}",
         "{host: api.example.com, port: 443, protocol: mcp, mcp: {max_body_bytes: 4096}, "
         "rules: [{allow: {method: initialize}}]}"),
     "differ in max_body_bytes")
case(AMB + "websocket_graphql_classification_conflict_is_rejected",
     two("{host: api.example.com, port: 443, protocol: websocket, "
         "rules: [{allow: {method: GET, path: /}}, {allow: {operation_type: subscription}}]}",
         "{host: api.example.com, port: 443, protocol: websocket, "
         "rules: [{allow: {method: GET, path: /}}, {allow: {method: WEBSOCKET_TEXT, path: /}}]}"),
     "differ in GraphQL-over-WebSocket rules")
# upstream marks both endpoints GraphQL with persisted_queries, which cordon
# refuses outside protocol: graphql, and its second rule has no
# operation_type, which cordon requires ('*' for any); both with operation
# rules is the same classification
case(AMB + "matching_websocket_graphql_classification_is_compatible",
     two("{host: api.example.com, port: 443, protocol: websocket, "
         "rules: [{allow: {method: GET, path: /}}, {allow: {operation_type: subscription}}]}",
         "{host: api.example.com, port: 443, protocol: websocket, "
         "rules: [{allow: {method: GET, path: /}}, {allow: {operation_type: '*', operation_name: Events}}]}"))
case(AMB + "different_binary_lists_do_not_hide_endpoint_ambiguity",
     two("{host: api.example.com, port: 443, tls: skip}", "{host: api.example.com, port: 443}",
         right_bin="/usr/bin/bash"), "differ in tls")
case(AMB + "explicit_tcp_and_omitted_protocol_are_ambiguous_for_native_tcp_eligibility",
     two("{host: api.example.com, port: 443, protocol: tcp, tls: skip}",
         "{host: api.example.com, port: 443, tls: skip}"), "differ in protocol: tcp")

L7V = "l7_validate.rs::"
E = "{host: a.test, port: 443, "
case(L7V + "valid_endpoint_produces_no_errors", one(E + "protocol: rest, access: read-only}"))
case(L7V + "rejects_unknown_protocol", one(E + "protocol: ftp}"), "'ftp' is not allowed")
case(L7V + "rejects_rules_and_access_together",
     one(E + "protocol: rest, access: full, rules: [{allow: {method: GET, path: /x}}]}"),
     "rules and access are mutually exclusive")
case(L7V + "rejects_jsonrpc_with_access_presets", one(E + "protocol: json-rpc, access: full}"),
     "access presets are not valid for protocol: json-rpc")
case(L7V + "rejects_mcp_with_access_presets", one(E + "protocol: mcp, access: full}"),
     "allow_all_known_mcp_methods")
case(L7V + "rejects_jsonrpc_without_rules", one(E + "protocol: json-rpc}"),
     "protocol: json-rpc needs rules")
case(L7V + "rejects_protocol_without_rules_or_access", one(E + "protocol: rest}"),
     "protocol: rest needs rules or access")
case(L7V + "rejects_mcp_without_rules_when_allow_all_false", one(E + "protocol: mcp}"),
     "protocol: mcp needs rules")
case(L7V + "accepts_mcp_with_allow_all_true",
     one(E + "protocol: mcp, mcp: {allow_all_known_mcp_methods: true}}"))
# an allow that names nothing: upstream's "would deny all traffic"; cordon
# refuses the empty allow itself
case(L7V + "rejects_rules_that_deny_all", one(E + "protocol: rest, rules: [{allow: {}}]}"),
     "method is required")
case(L7V + "rejects_rules_that_deny_all",
     one(E + "protocol: rest, rules: [{deny: {method: GET, path: /x}}]}"), "only deny rules")
case(L7V + "mcp_allow_all_with_empty_allow_not_rejected",
     one(E + "protocol: mcp, mcp: {allow_all_known_mcp_methods: true}, rules: [{allow: {}}]}"))
case(L7V + "rejects_deny_rules_without_protocol", one(E + "deny_rules: [{method: GET, path: /x}]}"),
     "deny_rules need rules or access")
case(L7V + "rejects_deny_rules_without_allow_base",
     one(E + "protocol: rest, deny_rules: [{method: GET, path: /x}]}"),
     "deny_rules need rules or access")
case(L7V + "no_protocol_no_errors", one(E.rstrip(", ") + "}"))
case(L7V + "explicit_tcp_is_valid_without_l7_fields", one(E + "protocol: tcp}"))
case(L7V + "explicit_tcp_is_valid_without_l7_fields", one(E + "protocol: TCP}"))
case(L7V + "explicit_tcp_rejects_l7_fields", one(E + "protocol: tcp, access: full}"),
     "access is not valid with protocol: tcp")
case(L7V + "explicit_tcp_rejects_additional_l7_fields", one(E + "protocol: tcp, enforcement: enforce}"),
     "enforcement is not valid with protocol: tcp")
case(L7V + "explicit_tcp_rejects_additional_l7_fields", one(E + "protocol: rest, enforcement: enforce, access: full}"))
for proto, extra in (("rest", "access: full"), ("websocket", "access: full"),
                     ("graphql", "access: read-only"), ("sql", "enforcement: audit"),
                     ("json-rpc", "rules: [{allow: {method: x}}]"),
                     ("mcp", "rules: [{allow: {method: x}}]"),
                     ("REST", "access: full"), ("Mcp", "rules: [{allow: {method: x}}]"),
                     ("JSON-RPC", "rules: [{allow: {method: x}}]")):
    case(L7V + "l7_protocol_parse_known_variants", one(E + "protocol: %s, %s}" % (proto, extra)))
case(L7V + "l7_protocol_parse_known_variants", one(E + "protocol: unknown}"), "'unknown' is not allowed")
case(L7V + "l7_protocol_parse_known_variants", one(E + 'protocol: ""}'), "is not allowed")
# refused in both; cordon reports every problem, so it also names the missing rules
case(L7V + "jsonrpc_with_access_emits_single_diagnostic", one(E + "protocol: json-rpc, access: full}"),
     "access presets are not valid for protocol: json-rpc")
case(L7V + "jsonrpc_without_rules_or_access_emits_single_diagnostic", one(E + "protocol: json-rpc}"),
     "protocol: json-rpc needs rules")

PROVIDERS = ("OpenShell composes provider policy layers under reserved _provider_* keys; cordon "
             "has no providers (no credentials), so a policy is exactly the file")
NOT_A_DECISION = {
    AMB + "negated_character_class_paths_follow_runtime_glob_semantics":
        "the character-class glob helper; cordon has no character classes in paths ('[' is "
        "literal, with a warning: doc/policy.md)",
    L7V + "l7_protocol_jsonrpc_family": "an enum helper (json-rpc and mcp are one family; "
        "cordon: the same endpoints share the JSON-RPC body reader, tests/unit/test_policy_l7_body.c)",
    "compose.rs::provider_rule_name_sanitizes_provider_names": PROVIDERS,
    "compose.rs::provider_rule_name_prefix_identifies_reserved_keys": PROVIDERS,
    "compose.rs::strip_provider_rule_names_removes_only_reserved_keys": PROVIDERS,
    "compose.rs::compose_concatenates_provider_rules_without_overwriting_user_rules": PROVIDERS,
}

DIFFERS = {
    AMB + "question_mark_path_overlap_is_detected":
        "cordon refuses '?' in an endpoint path at load (OpenShell reads it as a glob), so "
        "this policy is refused in both, for different reasons (test_path_glob_metachars)",
    AMB + "overlapping_character_class_paths_are_detected":
        "cordon refuses '[' in a path glob at load (OpenShell reads it as a class, cordon "
        "would read it literally), so this policy is refused in both, for different reasons "
        "(test_path_glob_metachars)",
    AMB + "credential_binding_conflicts_are_rejected_on_same_endpoint":
        "cordon never applies credential_binding (warning), so two providers on one "
        "endpoint change nothing it does; the policy loads (test_credential_only_conflict_loads)",
}

UPSTREAM = open(__file__.replace("test_policy_openshell_crate.py",
                                 "openshell_policy_crate_tests.txt")).read().split()


def test_every_upstream_test_is_accounted_for():
    named = {c[0] for c in C}
    per_file = {}
    for n in UPSTREAM:
        per_file[n.split("::")[0]] = per_file.get(n.split("::")[0], 0) + 1
    assert per_file == {"ambiguity.rs": 20, "l7_validate.rs": 21, "compose.rs": 4}, per_file
    assert len(set(UPSTREAM)) == 45
    covered = named | set(NOT_A_DECISION) | set(DIFFERS)
    assert not (named & set(NOT_A_DECISION)) and not (named & set(DIFFERS))
    assert not (set(NOT_A_DECISION) & set(DIFFERS))
    assert [n for n in UPSTREAM if n not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 45


def _check(cordon_bin, tmp_path, text):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return subprocess.run([cordon_bin, "policy", "check", str(p)], capture_output=True,
                          text=True, timeout=20)


@pytest.mark.parametrize("row", C, ids=["%s-%d" % (c[0].split("::")[1], i) for i, c in enumerate(C)])
def test_crate_case(cordon_bin, tmp_path, row):
    name, text, error = row
    r = _check(cordon_bin, tmp_path, text)
    if error is None:
        assert r.returncode == 0, (name, r.stderr)
    else:
        assert r.returncode == 1, (name, r.stderr)
        assert error in r.stderr, (name, r.stderr)
        assert "policy.yaml:" in r.stderr


def test_path_glob_metachars(cordon_bin, tmp_path):
    r = _check(cordon_bin, tmp_path, two(
        "{host: api.example.com, port: 443, path: /v?, protocol: rest, access: full}",
        "{host: api.example.com, port: 443, path: /v1, protocol: graphql, access: full}"))
    assert r.returncode == 1 and "contains '?'" in r.stderr, r.stderr
    r = _check(cordon_bin, tmp_path, two(
        "{host: api.example.com, port: 443, path: \"/v[12]\", protocol: rest, access: full}",
        "{host: api.example.com, port: 443, path: \"/v[23]\", protocol: graphql, access: full}"))
    assert r.returncode == 1 and "'[' in a path glob is not supported" in r.stderr, r.stderr


def test_credential_only_conflict_loads(cordon_bin, tmp_path):
    r = _check(cordon_bin, tmp_path, two(
        "{host: api.example.com, port: 443, credential_binding: {provider: provider-a}}",
        "{host: api.example.com, port: 443, credential_binding: {provider: provider-b}}"))
    assert r.returncode == 0, r.stderr
    assert "credential_binding" in r.stderr and "warning" in r.stderr, r.stderr
