"""OpenShell's policy crate tests, walked one by one (#13): ambiguity.rs (20),
l7_validate.rs (21), compose.rs (4), lib.rs (110) and merge.rs (78) of
NVIDIA/OpenShell crates/openshell-policy/src at 2f7fb65 (2026-08-21); names,
as FILE::TEST, in openshell_policy_crate_tests.txt.

Each test is one of
  CASES / EV      what it asserts about loading a policy (refused, with the
                  reason, or accepted) or about a decision, re-expressed as
                  our own policy text and asked of the real binary with
                  `cordon policy check` (C) or `cordon policy eval` (EV);
  NOT_A_DECISION  a test of a helper that decides nothing about a policy
                  file, with where cordon covers the concern;
  DIFFERS         a load decision cordon makes differently on purpose (also
                  in doc/policy.md "Where we differ").

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step: len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 233."""
import re
import subprocess

import pytest

HEAD = "version: 1\nnetwork_policies:\n"
PROVIDERS = ("OpenShell composes provider policy layers under reserved _provider_* keys; cordon "
             "has no providers (no credentials), so a policy is exactly the file")


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


def case(name, text, error=None, warn=None):
    C.append((name, text, error, warn))


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
                     ("graphql", "access: read-only"), ("sql", "enforcement: audit, access: full"),
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


# ---- lib.rs: policy types, YAML parsing, defaults, validation ----
LIB = "lib.rs::"
# eval rows: (upstream test, policy text, eval args, allowed?)
EV = []


def ev(name, text, args, allowed):
    EV.append((name, text, args, allowed))


def entry(key, eps, bins="[{path: /usr/bin/curl}]", extra=""):
    return (HEAD + "  " + key + ":\n" + extra + "    endpoints:\n" +
            "".join("      - " + e + "\n" for e in eps) + "    binaries: " + bins + "\n")


def top(body):
    return "version: 1\n" + body


CURL = ["--binary", "/usr/bin/curl"]
case(LIB + "round_trip_preserves_allowed_ips",
     entry("internal", ['{host: db.internal.corp, port: 5432, allowed_ips: ["10.0.5.0/24", "10.0.6.0/24"]}']))
case(LIB + "round_trip_preserves_policy_name",
     entry("my_api", ["{host: api.example.com, port: 443}"], extra="    name: my-custom-api-name\n"))
ev(LIB + "round_trip_preserves_policy_name",
   entry("my_api", ["{host: api.example.com, port: 443}"], extra="    name: my-custom-api-name\n"),
   ["--host", "api.example.com", "--port", "443"] + CURL, True)
MIDDLEWARES = ("network_middlewares:\n"
               "  global-redactor:\n    name: Global redactor\n    middleware: openshell/regex\n"
               "    order: 20\n    on_error: fail_open\n"
               '    endpoints:\n      include: ["api.example.com", "*.service.test"]\n'
               '      exclude: ["internal.example.com"]\n    config:\n      mode: redact\n'
               "  secondary-redactor:\n    middleware: openshell/regex\n"
               '    endpoints:\n      include: ["api.example.com"]\n')
case(LIB + "round_trip_preserves_network_middlewares",
     entry("api", ["{host: api.example.com, port: 443, protocol: rest, access: full}"]) + MIDDLEWARES,
     warn="network_middlewares.global-redactor (openshell/regex) is not applied")
ev(LIB + "restrictive_default_has_no_network_policies", top(""),
   ["--host", "api.example.com", "--port", "443"] + CURL, False)
case(LIB + "restrictive_default_version_is_one", top(""))
case(LIB + "restrictive_default_version_is_one", "version: 2\n", "version")
case(LIB + "restrictive_default_has_landlock", top("landlock: {compatibility: best_effort}\n"))
case(LIB + "parse_minimal_policy_yaml", "version: 1\n")
case(LIB + "process_identity_omission_survives_yaml_round_trip", top('process:\n  run_as_user: "1234"\n'))
NET = entry("test", ["{ host: example.com, port: 443 }"], bins="\n      - { path: /usr/bin/curl }",
            extra="    name: test_policy\n")
case(LIB + "parse_policy_with_network_rules", NET)
ev(LIB + "parse_policy_with_network_rules", NET, ["--host", "example.com", "--port", "443"] + CURL, True)
ev(LIB + "parse_policy_with_network_rules", NET, ["--host", "example.com", "--port", "443",
                                                  "--binary", "/usr/bin/wget"], False)
QUERY = entry("query_test", ['{host: api.example.com, port: 8080, protocol: rest, rules: [{allow: '
                             '{method: GET, path: /download, query: {slug: "my-*", tag: {any: '
                             '["foo-*", "bar-*"]}}}}]}'])
case(LIB + "parse_l7_query_matchers_and_round_trip", QUERY)
Q = ["--host", "api.example.com", "--port", "8080"] + CURL + ["--method", "GET"]
ev(LIB + "parse_l7_query_matchers_and_round_trip", QUERY, Q + ["--path", "/download?slug=my-x&tag=bar-1"], True)
ev(LIB + "parse_l7_query_matchers_and_round_trip", QUERY, Q + ["--path", "/download?slug=my-x&tag=baz"], False)
ev(LIB + "parse_l7_query_matchers_and_round_trip", QUERY, Q + ["--path", "/download?slug=other&tag=foo-1"], False)
case(LIB + "parse_rejects_unknown_fields", "version: 1\nbogus_field: true\n", "unknown field 'bogus_field'")
case(LIB + "parse_rejects_middleware_attachments_on_network_policies_and_endpoints",
     entry("api", ["{host: api.example.com, port: 443}"], extra="    middleware: [redact]\n"),
     "unknown field 'middleware'")
case(LIB + "parse_rejects_middleware_attachments_on_network_policies_and_endpoints",
     entry("api", ["{host: api.example.com, port: 443, middleware: [redact]}"]),
     "unknown field 'middleware'")
MCPE = "{host: mcp.example.com, port: 443, protocol: mcp, "
case(LIB + "l7_config_stanza_runtime_fields_use_canonical_schema",
     entry("m", [MCPE + "mcp: {max_body_bytes: 131072, strict_tool_names: false, "
                 "allow_all_known_mcp_methods: true}}"]))
case(LIB + "l7_config_stanza_runtime_fields_use_canonical_schema",
     entry("j", ["{host: j.example.com, port: 443, protocol: json-rpc, json_rpc: {on_parse_error: allow}, "
                 "rules: [{allow: {method: x}}]}"]), "unknown field 'on_parse_error'")


def mw(name, body, net=""):
    return top("network_middlewares:\n  " + name + ":\n" + body + net)


SEL = "    endpoints: {include: [api.example.com]}\n"
case(LIB + "structural_validation_defers_implementation_owned_config",
     mw("future", "    middleware: openshell/future\n    config: {implementation_field: 42}\n" + SEL),
     warn="is not applied")
case(LIB + "validate_rejects_root_run_as_user", top("process: {run_as_user: root, run_as_group: sandbox}\n"),
     "process.run_as_user: the sandbox must not run as root")
case(LIB + "validate_rejects_uid_zero", top('process: {run_as_user: "0", run_as_group: "0"}\n'),
     "process.run_as_group: the sandbox must not run as root")
R = "    middleware: openshell/regex\n"
case(LIB + "validate_rejects_invalid_middleware_control_fields", mw('""', R + SEL),
     "a middleware name must not be empty")
case(LIB + "validate_rejects_invalid_middleware_control_fields", mw("redactor", '    middleware: ""\n' + SEL),
     "network_middlewares.redactor.middleware: must not be empty")
case(LIB + "validate_rejects_invalid_middleware_control_fields", mw("redactor", R + "    on_error: maybe\n" + SEL),
     "'maybe' is not allowed")
case(LIB + "validate_rejects_invalid_middleware_control_fields", mw("redactor", R),
     "endpoints is required")
case(LIB + "validate_rejects_invalid_middleware_control_fields",
     mw("redactor", R + "    endpoints: {include: []}\n"), "include: empty list")
case(LIB + "validate_rejects_duplicate_middleware_orders",
     top("network_middlewares:\n  alpha:\n" + R + "    order: 10\n" + SEL +
         "  beta:\n" + R + "    order: 10\n" + SEL),
     "network_middlewares.beta: order 10 is also network_middlewares.alpha's")


def many_mw(n):
    return top("network_middlewares:\n" + "".join(
        "  middleware-%d:\n%s    order: %d\n%s" % (i, R, i, SEL) for i in range(n)))


case(LIB + "validate_accepts_maximum_middleware_configs", many_mw(10))
case(LIB + "json_validation_skips_config_callbacks_when_middleware_count_is_invalid", many_mw(11),
     "11 middleware configs (at most 10)")
case(LIB + "validate_rejects_middleware_config_over_capacity", many_mw(11), "11 middleware configs (at most 10)")
case(LIB + "validate_accepts_maximum_middleware_selector_patterns",
     mw("redactor", R + "    endpoints: {include: [api.example.com], exclude: [%s]}\n" %
        ", ".join(["excluded.example.com"] * 31)))
case(LIB + "validate_rejects_middleware_selector_patterns_over_capacity",
     mw("redactor", R + "    endpoints: {include: [api.example.com], exclude: [%s]}\n" %
        ", ".join(["excluded.example.com"] * 32)), "33 include and exclude patterns (at most 32)")
case(LIB + "validate_rejects_malformed_middleware_selector_patterns",
     mw("redactor", R + '    endpoints: {include: ["api[.example.com"]}\n'), "host pattern 'api[.example.com'")
# the same host globs decide endpoints: case-insensitive, '*.' one label,
# '**.' one or more, never the apex
for pat, host, ok in (("*.Example.COM", "API.example.com", True), ("*.example.com", "example.com", False),
                      ("*.example.com", "deep.api.example.com", False),
                      ("**.example.com", "deep.api.example.com", True), ("**.example.com", "example.com", False)):
    ev(LIB + "middleware_host_selector_matching_is_case_insensitive",
       entry("w", ['{host: "%s", port: 443}' % pat]), ["--host", host, "--port", "443"] + CURL, ok)
SKIP = "network_policies:\n  api:\n    endpoints: [{host: %s, port: 443, tls: skip}]\n"
case(LIB + "validate_rejects_middleware_selector_matching_tls_skip_endpoint",
     mw("redactor", R + SEL, SKIP % "api.example.com"),
     "network_middlewares.redactor: selects network_policies.api.endpoints[0] (host 'api.example.com'")
case(LIB + "validate_accepts_fail_open_middleware_selector_matching_tls_skip_endpoint",
     mw("redactor", R + "    on_error: fail_open\n" + SEL, SKIP % "api.example.com"))
case(LIB + "validate_rejects_explicit_fail_closed_middleware_on_tls_skip_endpoint",
     mw("redactor", R + "    on_error: fail_closed\n" + SEL, SKIP % "api.example.com"), "which has tls: skip")
case(LIB + "validate_rejects_concrete_selector_overlapping_tls_skip_wildcard",
     mw("redactor", R + SEL, SKIP % '"*.example.com"'), "(host '*.example.com'")
case(LIB + "validate_rejects_concrete_selector_overlapping_tls_skip_wildcard",
     mw("redactor", R + '    endpoints: {include: ["*.example.com"], exclude: [api.example.com]}\n',
        SKIP % "api.example.com"))
case(LIB + "validate_accepts_sandbox_identity", top("process: {run_as_user: sandbox, run_as_group: sandbox}\n"))
FS = "filesystem_policy:\n  include_workdir: true\n  read_only: [%s]\n  read_write: [%s]\n"
case(LIB + "validate_rejects_path_traversal", top(FS % ("/usr/../etc/shadow", "/tmp")), "..")
case(LIB + "validate_rejects_relative_paths", top(FS % ("usr/lib", "/tmp")), "filesystem_policy.read_only[0]")
case(LIB + "validate_rejects_overly_broad_read_write_path", top(FS % ("/usr", "/")),
     "filesystem_policy.read_write[0]")
DEFAULT = top(FS % ("/usr, /lib, /proc, /dev/urandom, /app, /etc, /var/log", "/tmp, /dev/null") +
              "landlock: {compatibility: best_effort}\n")
case(LIB + "validate_accepts_valid_policy", DEFAULT)
case(LIB + "validate_rejects_yaml_tcp_endpoint_without_host_or_port",
     HEAD + '  invalid:\n    endpoints:\n      - host: ""\n        protocol: tcp\n',
     "protocol: tcp needs a DNS host name")
case(LIB + "validate_rejects_yaml_tcp_endpoint_without_host_or_port",
     HEAD + '  invalid:\n    endpoints:\n      - host: ""\n        protocol: tcp\n', "port or ports is required")
case(LIB + "validate_accepts_hostless_allowed_ips_for_non_tcp_proxy_endpoint",
     HEAD + "  legacy-proxy:\n    endpoints:\n      - port: 9443\n        allowed_ips:\n          - 10.0.5.0/24\n",
     warn="no binaries")
case(LIB + "validate_rejects_hostless_allowed_ips_for_explicit_tcp",
     HEAD + "  native-tcp:\n    endpoints:\n      - port: 6379\n        protocol: tcp\n"
     "        allowed_ips:\n          - 10.0.5.0/24\n", "not hostless")
for h in ("192.0.2.10", '"2001:db8::10"'):
    case(LIB + "validate_rejects_ip_literal_hosts_for_explicit_tcp",
         entry("native-tcp", ["{host: %s, port: 6379, protocol: tcp}" % h]), "not an IP address")
for h, why in (('" db.example.com"', "contains a character other than"),
               ("db.example.com.", "omit the trailing DNS root dot"),
               ("db..example.com", "has an empty label"),
               ('"bad name.example.com"', "contains a character other than"),
               ("a" * 64 + ".example.com", "longer than 63 characters")):
    case(LIB + "validate_rejects_malformed_dns_selectors_for_explicit_tcp",
         entry("native-tcp", ["{host: %s, port: 6379, protocol: tcp}" % h]), why)
case(LIB + "validate_rejects_raw_endpoint_zero_and_out_of_range_ports",
     entry("invalid", ["{host: database.example.com, ports: [0, 65536], protocol: tcp}"]),
     "ports[0]: 0 is out of range")
case(LIB + "validate_rejects_raw_endpoint_zero_and_out_of_range_ports",
     entry("invalid", ["{host: database.example.com, ports: [0, 65536], protocol: tcp}"]),
     "ports[1]: 65536 is out of range")
case(LIB + "validate_rejects_raw_endpoint_without_effective_port",
     entry("invalid", ["{host: database.example.com}"]), "port or ports is required")
case(LIB + "validate_accepts_empty_process", top("process: {}\n"))
for u, g in (('""', '""'), ("sandbox", '""'), ('""', '"1234"')):
    case(LIB + "validate_accepts_omitted_process_fields", top("process: {run_as_user: %s, run_as_group: %s}\n" % (u, g)))
case(LIB + "validate_rejects_too_many_paths",
     top(FS % (", ".join("/path/%d" % i for i in range(300)), "/tmp")), "256")
case(LIB + "validate_rejects_path_too_long", top(FS % ("/" + "a" * 5000, "/tmp")), "4096")
EP443 = "{host: %s, port: 443}"
case(LIB + "validate_rejects_tld_wildcard", entry("bad", [EP443 % '"*.com"']), "would match a whole top-level domain")
case(LIB + "validate_rejects_double_star_tld_wildcard", entry("bad", [EP443 % '"**.org"']),
     "would match a whole top-level domain")
for h in ('"*"', '"**"'):
    case(LIB + "validate_rejects_all_host_star_wildcards", entry("bad", [EP443 % h]), "would match every host")
case(LIB + "validate_accepts_subdomain_wildcard", entry("ok", [EP443 % '"*.example.com"']))
case(LIB + "validate_accepts_middle_label_star_wildcard", entry("ok", [EP443 % '"*.s3.*.amazonaws.com"']))
ev(LIB + "validate_accepts_middle_label_star_wildcard", entry("ok", [EP443 % '"*.s3.*.amazonaws.com"']),
   ["--host", "my-bucket.s3.us-east-1.amazonaws.com", "--port", "443"] + CURL, True)
case(LIB + "validate_rejects_partial_middle_label_wildcard", entry("bad", [EP443 % '"*.s3.us-*.amazonaws.com"']),
     "has a partial wildcard outside the first label")
case(LIB + "validate_accepts_explicit_domain", entry("ok", [EP443 % "example.com"]))
BR = "{host: bedrock-runtime.us-east-1.amazonaws.com, port: 443, "
case(LIB + "validate_rejects_credential_signing_without_signing_service",
     entry("aws", [BR + "credential_signing: sigv4}"]), "credential_signing needs signing_service")
case(LIB + "validate_accepts_credential_signing_with_signing_service",
     entry("aws", [BR + "credential_signing: sigv4, signing_service: bedrock}"]), warn="is not applied")
case(LIB + "validate_accepts_sigv4_body_with_signing_service",
     entry("aws", [BR + 'credential_signing: "sigv4:body", signing_service: bedrock}']), warn="is not applied")
S3 = "{host: s3.us-east-1.amazonaws.com, port: 443, "
case(LIB + "validate_accepts_sigv4_no_body_with_signing_service",
     entry("aws", [S3 + 'credential_signing: "sigv4:no_body", signing_service: s3}']), warn="is not applied")
case(LIB + "validate_rejects_sigv4_no_body_without_signing_service",
     entry("aws", [S3 + 'credential_signing: "sigv4:no_body"}']), "credential_signing needs signing_service")
case(LIB + "validate_rejects_unknown_credential_signing",
     entry("aws", ["{host: example.amazonaws.com, port: 443, credential_signing: sigv4_typo, "
                   "signing_service: bedrock}"]), "'sigv4_typo' is not allowed")
case(LIB + "validate_rejects_credential_signing_with_body_rewrite",
     entry("aws", [BR + "credential_signing: sigv4, signing_service: bedrock, "
                   "request_body_credential_rewrite: true}"]), "mutually exclusive")
case(LIB + "normalize_path_collapses_separators", top(FS % ("/usr//lib, /usr/./lib", "/tmp/")))
case(LIB + "normalize_path_preserves_parent_dir", top(FS % ("/usr/../etc", "/tmp")), "..")
case(LIB + "policy_violation_display", top("process: {run_as_user: root}\n"), "process.run_as_user")
case(LIB + "policy_violation_display_includes_range", top("process: {run_as_user: 4294967295}\n"),
     "out of range (allowed: ids 1-4294967294)")
PROC = "process: {run_as_user: %s, run_as_group: %s}\n"
case(LIB + "valid_identity_accepts_sandbox", top(PROC % ("sandbox", "sandbox")))
for uid in ("1", "30", "500", "999", "1000", "50000", "1000660000"):
    case(LIB + "valid_identity_accepts_non_root_numeric_uid", top(PROC % ('"%s"' % uid, uid)))
case(LIB + "valid_identity_accepts_boundary_uids", top(PROC % ("1", "4294967294")))
case(LIB + "valid_identity_rejects_zero", top(PROC % ('"0"', "sandbox")), "must not run as root")
case(LIB + "valid_identity_rejects_invalid_uid_sentinel", top(PROC % ("4294967295", "sandbox")),
     "out of range")
case(LIB + "validate_accepts_numeric_uid_in_range", top(PROC % ('"1000"', '"5000"')))
case(LIB + "validate_accepts_boundary_uids", top(PROC % ('"1"', '"4294967294"')))
case(LIB + "validate_accepts_non_root_system_uid", top(PROC % ('"500"', '"30"')))
case(LIB + "validate_rejects_uid_out_of_range_high", top(PROC % ('"4294967295"', "sandbox")),
     "process.run_as_user: 4294967295 is out of range")
case(LIB + "validate_rejects_uid_out_of_range_high", top(PROC % ('"99999999999999999999"', "sandbox")),
     "is out of range")
case(LIB + "validate_rejects_root_string", top(PROC % ("root", "sandbox")), "must not run as root")
case(LIB + "validate_accepts_mixed_sandbox_name_and_uid", top(PROC % ("sandbox", '"1000"')))
PORTS = entry("test", ["{ host: api.example.com, ports: [80, 443] }"])
case(LIB + "parse_ports_array", PORTS)
for port, ok in (("80", True), ("443", True), ("8080", False)):
    ev(LIB + "parse_ports_array", PORTS, ["--host", "api.example.com", "--port", port] + CURL, ok)
ONE = entry("test", ["{ host: api.example.com, port: 443 }"])
case(LIB + "parse_single_port_normalized_to_ports", ONE)
ev(LIB + "parse_single_port_normalized_to_ports", ONE, ["--host", "api.example.com", "--port", "443"] + CURL, True)
ev(LIB + "parse_single_port_normalized_to_ports", ONE, ["--host", "api.example.com", "--port", "80"] + CURL, False)
GQLP = entry("test", ['{host: api.example.com, port: 443, path: "/graphql", protocol: graphql, '
                      'rules: [{allow: {operation_type: query}}]}'])
case(LIB + "round_trip_preserves_endpoint_path", GQLP)
G = ["--host", "api.example.com", "--port", "443"] + CURL + ["--method", "POST", "--path", "/graphql", "--body"]
ev(LIB + "round_trip_preserves_endpoint_path", GQLP, G + ['{"query": "query { viewer { login } }"}'], True)
ev(LIB + "round_trip_preserves_endpoint_path", GQLP, G + ['{"query": "mutation { addStar { id } }"}'], False)
case(LIB + "round_trip_preserves_endpoint_credential_binding",
     HEAD + "  gcp_storage:\n    endpoints:\n      - host: storage.googleapis.com\n        port: 443\n"
     "        protocol: rest\n        access: full\n        credential_binding:\n          provider: work-gcp\n",
     warn="credential_binding is not applied")
# upstream's endpoint has protocol: rest and nothing else (not validated in
# that test); l7_validate.rs refuses it, and so do we
case(LIB + "round_trip_preserves_endpoint_credential_binding",
     HEAD + "  gcp_storage:\n    endpoints:\n      - host: storage.googleapis.com\n        port: 443\n"
     "        protocol: rest\n        credential_binding:\n          provider: work-gcp\n",
     "protocol: rest needs rules or access")
case(LIB + "round_trip_preserves_multi_port",
     entry("test", ["{host: api.example.com, ports: [80, 443]}"]))
WILD = entry("test", ['{ host: "*.example.com", port: 443 }'])
case(LIB + "parse_wildcard_host", WILD)
ev(LIB + "parse_wildcard_host", WILD, ["--host", "a.example.com", "--port", "443"] + CURL, True)
ev(LIB + "parse_wildcard_host", WILD, ["--host", "example.com", "--port", "443"] + CURL, False)
case(LIB + "round_trip_preserves_wildcard_host", WILD)
GH = ("{host: api.github.com, port: 443, protocol: rest, access: %s, deny_rules: ["
      '{method: POST, path: "/repos/*/pulls/*/reviews"}, {method: %s, path: "/repos/*/branches/*/protection"%s}]}')
DENY1 = entry("github", [GH % ("read-write", "PUT", "")])
case(LIB + "parse_deny_rules_from_yaml", DENY1)
GA = ["--host", "api.github.com", "--port", "443"] + CURL
ev(LIB + "parse_deny_rules_from_yaml", DENY1, GA + ["--method", "POST", "--path", "/repos/o/pulls/1/reviews"], False)
ev(LIB + "parse_deny_rules_from_yaml", DENY1, GA + ["--method", "PUT", "--path", "/repos/o/branches/main/protection"], False)
ev(LIB + "parse_deny_rules_from_yaml", DENY1, GA + ["--method", "POST", "--path", "/repos/o/issues"], True)
ev(LIB + "parse_deny_rules_from_yaml", DENY1, GA + ["--method", "DELETE", "--path", "/repos/o"], False)
DENY2 = entry("github", [GH % ("full", "DELETE", ', query: {force: "true"}')])
case(LIB + "round_trip_preserves_deny_rules", DENY2)
ev(LIB + "round_trip_preserves_deny_rules", DENY2,
   GA + ["--method", "DELETE", "--path", "/repos/o/branches/b/protection?force=true"], False)
ev(LIB + "round_trip_preserves_deny_rules", DENY2,
   GA + ["--method", "DELETE", "--path", "/repos/o/branches/b/protection"], True)
DENY3 = entry("test", ['{host: api.example.com, port: 443, protocol: rest, access: full, deny_rules: '
                       '[{method: POST, path: /action, query: {type: {any: ["admin-*", "root-*"]}}}]}'])
case(LIB + "parse_deny_rules_with_query_any", DENY3)
DA = ["--host", "api.example.com", "--port", "443"] + CURL + ["--method", "POST", "--path"]
ev(LIB + "parse_deny_rules_with_query_any", DENY3, DA + ["/action?type=root-1"], False)
ev(LIB + "parse_deny_rules_with_query_any", DENY3, DA + ["/action?type=user-1"], True)
GQL = entry("github_graphql", [
    "{host: api.github.com, port: 443, protocol: graphql, enforcement: enforce, "
    "persisted_queries: allow_registered, graphql_max_body_bytes: 131072, "
    "graphql_persisted_queries: {abc123: {operation_type: query, operation_name: Viewer, fields: [viewer]}}, "
    "rules: [{allow: {operation_type: query, fields: [viewer, repository]}}, "
    '{allow: {operation_type: mutation, operation_name: "Issue*", fields: [createIssue]}}], '
    "deny_rules: [{operation_type: mutation, fields: [deleteRepository]}]}"])
case(LIB + "round_trip_preserves_graphql_policy_fields", GQL)
GG = GA + ["--method", "POST", "--path", "/graphql", "--body"]
ev(LIB + "round_trip_preserves_graphql_policy_fields", GQL,
   GG + ['{"query": "query { viewer { login } }"}'], True)
ev(LIB + "round_trip_preserves_graphql_policy_fields", GQL,
   GG + ['{"query": "mutation IssueNew { createIssue(input: {}) { id } }"}'], True)
ev(LIB + "round_trip_preserves_graphql_policy_fields", GQL,
   GG + ['{"query": "mutation Other { createIssue(input: {}) { id } }"}'], False)
ev(LIB + "round_trip_preserves_graphql_policy_fields", GQL,
   GG + ['{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc123"}}}'], True)
ev(LIB + "round_trip_preserves_graphql_policy_fields", GQL,
   GG + ['{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "zzz"}}}'], False)
case(LIB + "round_trip_preserves_json_rpc_max_body_bytes",
     entry("jsonrpc_api", ["{host: jsonrpc.example.com, port: 443, protocol: json-rpc, enforcement: enforce, "
                           "json_rpc: {max_body_bytes: 131072}, rules: [{allow: {method: initialize}}]}"]))
MCP = entry("mcp", [MCPE + "path: /mcp, enforcement: enforce, mcp: {max_body_bytes: 131072, "
                    "strict_tool_names: false}, rules: [{allow: {method: initialize}}, "
                    "{allow: {method: tools/list}}, {allow: {method: tools/call, tool: {any: "
                    "[search_web, list_tools]}}}], deny_rules: [{method: tools/call, tool: send_email}]}"])
case(LIB + "parse_mcp_rules_to_runtime_fields", MCP)
MA = ["--host", "mcp.example.com", "--port", "443"] + CURL + ["--method", "POST", "--path", "/mcp", "--body"]
CALL = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "%s", "arguments": {}}}'
ev(LIB + "parse_mcp_rules_to_runtime_fields", MCP, MA + [CALL % "search_web"], True)
ev(LIB + "parse_mcp_rules_to_runtime_fields", MCP, MA + [CALL % "send_email"], False)
ev(LIB + "parse_mcp_rules_to_runtime_fields", MCP, MA + [CALL % "other"], False)
ev(LIB + "parse_mcp_rules_to_runtime_fields", MCP,
   MA + ['{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}'], True)
MCP2 = entry("mcp", [MCPE + "mcp: {max_body_bytes: 131072, strict_tool_names: false}, rules: "
                     "[{allow: {method: tools/call, tool: search_web}}], deny_rules: [{method: tools/call, "
                     "tool: {any: [send_email, delete_resource]}}]}"])
case(LIB + "round_trip_mcp_policy_serializes_mcp_expression", MCP2)
M2 = MA[:]
M2[M2.index("/mcp")] = "/"
ev(LIB + "round_trip_mcp_policy_serializes_mcp_expression", MCP2, M2 + [CALL % "delete_resource"], False)
ev(LIB + "round_trip_mcp_policy_serializes_mcp_expression", MCP2, M2 + [CALL % "search_web"], True)
case(LIB + "parse_rejects_unsupported_json_rpc_config_fields",
     entry("jsonrpc_api", ["{host: jsonrpc.example.com, port: 443, protocol: json-rpc, json_rpc: "
                           "{max_body_bytes: 131072, on_parse_error: deny, batch_policy: all}, access: full}"]),
     "unknown field 'on_parse_error'")
for key, host, flag, access in (("discord_gateway", "gateway.example.com", "websocket_credential_rewrite", "full"),
                                ("slack_api", "slack.com", "request_body_credential_rewrite", "read-write")):
    case(LIB + "round_trip_preserves_" + flag,
         entry(key, ["{host: %s, port: 443, protocol: rest, enforcement: enforce, access: %s, %s: true}"
                     % (host, access, flag)], bins="[{path: /usr/bin/node}]"), warn=flag + " is not applied")
case(LIB + "round_trip_preserves_allow_uninspected_credentials",
     HEAD + "  vendor_api:\n    endpoints:\n      - host: api.vendor.example\n        port: 443\n"
     "        tls: skip\n        allow_uninspected_credentials: true\n",
     warn="allow_uninspected_credentials has no effect")
case(LIB + "websocket_credential_rewrite_defaults_false",
     entry("gateway", ["{host: gateway.example.com, port: 443, protocol: rest, access: full}"],
           bins="[{path: /usr/bin/node}]"))
case(LIB + "parse_rejects_unknown_fields_in_deny_rule",
     entry("test", ["{host: example.com, port: 443, protocol: rest, access: full, deny_rules: "
                    "[{method: POST, path: /foo, bogus: true}]}"]), "unknown field 'bogus'")
case(LIB + "rejects_port_above_65535", entry("test", ["{host: example.com, port: 70000}"]),
     "port: 70000 is out of range")


# ---- merge.rs: the gateway's policy merge (advisor proposals and `policy
# update` operations folded into a live policy) ----
# cordon has no merge operation: `cordon policy suggest` and `run --learn`
# print proposed entries for a person to add to the file (as their own
# entries), the server replaces network_policies with OpenSandbox's
# networkPolicy, and NemoClaw presets are added as entries of their own.
# Where merge.rs guards what the merged file means, the hand-merged file is
# checked here: the proposal as its own entry (entries never combine, so a
# binary never inherits another entry's endpoint), or, where upstream
# merges into the same rule, both endpoints in one entry.
MRG = "merge.rs::"


def ents(*items):
    """items: (key, [endpoints], [binaries])"""
    out = HEAD
    for key, eps, bins in items:
        out += "  %s:\n    endpoints:\n" % key + "".join("      - %s\n" % e for e in eps)
        out += "    binaries: [%s]\n" % ", ".join("{path: %s}" % b for b in bins)
    return out


def at(host, port, binary, *l7):
    return ["--host", host, "--port", str(port), "--binary", binary] + list(l7)


def mcp_call(path, tool):
    return ["--method", "POST", "--path", path, "--body",
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "%s"}}' % tool]


def mcp_ep(host, ports, tool, extra=""):
    return ("{host: %s, ports: %s, protocol: mcp, %srules: [{allow: {method: tools/call, tool: %s}}]}"
            % (host, ports, extra, tool))


# a new binary never inherits an existing endpoint it did not declare
INH = ents(("existing", ["{host: admin.example.com, port: 443, protocol: rest, rules: "
                         "[{allow: {method: GET, path: /admin}}]}"], ["/usr/bin/trusted"]),
           ("proposal", ["{host: public.example.com, port: 443}"], ["/usr/bin/untrusted"]))
case(MRG + "new_binary_cannot_inherit_an_undeclared_existing_rest_endpoint", INH)
for b, h, ok in (("/usr/bin/untrusted", "admin.example.com", False), ("/usr/bin/untrusted", "public.example.com", True),
                 ("/usr/bin/trusted", "public.example.com", False)):
    ev(MRG + "new_binary_cannot_inherit_an_undeclared_existing_rest_endpoint", INH, at(h, 443, b), ok)
INHM = ents(("existing", [mcp_ep("mcp.example.com", "[443]", "tool")], ["/usr/bin/trusted"]),
            ("proposal", ["{host: public.example.com, port: 443}"], ["/usr/bin/untrusted"]))
case(MRG + "new_binary_cannot_inherit_an_undeclared_existing_mcp_endpoint", INHM)
ev(MRG + "new_binary_cannot_inherit_an_undeclared_existing_mcp_endpoint", INHM,
   at("mcp.example.com", 443, "/usr/bin/untrusted"), False)
ev(MRG + "new_binary_cannot_inherit_an_undeclared_existing_mcp_endpoint", INHM,
   at("mcp.example.com", 443, "/usr/bin/trusted", *mcp_call("/", "tool")), True)
INHM2 = ents(("existing", [mcp_ep("a.example.com", "[443]", "tool"), mcp_ep("b.example.com", "[443]", "tool")],
              ["/usr/bin/trusted"]),
             ("proposal", [mcp_ep("a.example.com", "[443]", "tool")], ["/usr/bin/new"]))
case(MRG + "new_binary_must_declare_every_existing_mcp_endpoint", INHM2)
ev(MRG + "new_binary_must_declare_every_existing_mcp_endpoint", INHM2, at("b.example.com", 443, "/usr/bin/new"), False)
ev(MRG + "new_binary_must_declare_every_existing_mcp_endpoint", INHM2,
   at("a.example.com", 443, "/usr/bin/new", *mcp_call("/", "tool")), True)
NEWM = ents(("existing", ["{host: rest.example.com, port: 443}"], ["/usr/bin/first", "/usr/bin/second"]),
            ("proposal", [mcp_ep("mcp.example.com", "[443]", "new-tool")], ["/usr/bin/first"]))
case(MRG + "existing_binary_scope_must_be_declared_for_a_new_mcp_endpoint", NEWM)
ev(MRG + "existing_binary_scope_must_be_declared_for_a_new_mcp_endpoint", NEWM,
   at("mcp.example.com", 443, "/usr/bin/second"), False)
ev(MRG + "existing_binary_scope_must_be_declared_for_a_new_mcp_endpoint", NEWM,
   at("mcp.example.com", 443, "/usr/bin/first", *mcp_call("/", "new-tool")), True)
# upstream's "any binary" is an empty binaries list; in cordon such an
# entry allows nothing (doc/policy.md "Binaries")
ANY = HEAD + "  existing:\n    endpoints: [{host: api.example.com, port: 443}]\n"
case(MRG + "existing_any_binary_scope_requires_an_incoming_any_binary_declaration", ANY, warn="no binaries")
ev(MRG + "existing_any_binary_scope_requires_an_incoming_any_binary_declaration", ANY,
   at("api.example.com", 443, "/usr/bin/curl"), False)
# widening one port of a multi-port endpoint: the proposal as its own entry
# carries only the port it declared
PORTW = ents(("existing", ["{host: api.example.com, ports: [443, 8443], protocol: rest, rules: "
                           "[{allow: {method: GET, path: /x}}]}"], ["/usr/bin/only"]),
             ("proposal", ["{host: api.example.com, port: 443, protocol: rest, rules: "
                           "[{allow: {method: POST, path: /y}}]}"], ["/usr/bin/only"]))
case(MRG + "declaring_every_binary_does_not_license_an_undeclared_port", PORTW)
ev(MRG + "declaring_every_binary_does_not_license_an_undeclared_port", PORTW,
   at("api.example.com", 8443, "/usr/bin/only", "--method", "POST", "--path", "/y"), False)
ev(MRG + "declaring_every_binary_does_not_license_an_undeclared_port", PORTW,
   at("api.example.com", 8443, "/usr/bin/only", "--method", "GET", "--path", "/x"), True)
BOTHP = ents(("existing", ["{host: api.example.com, ports: [443, 8443], protocol: rest, rules: "
                           "[{allow: {method: GET, path: /x}}, {allow: {method: POST, path: /y}}]}"], ["/usr/bin/only"]))
case(MRG + "naming_every_changed_port_is_accepted", BOTHP)
for port in (443, 8443):
    ev(MRG + "naming_every_changed_port_is_accepted", BOTHP,
       at("api.example.com", port, "/usr/bin/only", "--method", "POST", "--path", "/y"), True)
SPLIT = ents(("existing", ["{host: api.example.com, ports: [443, 8443]}"], ["/usr/bin/trusted"]),
             ("proposal", ["{host: api.example.com, port: 443}", "{host: api.example.com, port: 8443}"],
              ["/usr/bin/trusted", "/usr/bin/second"]))
case(MRG + "new_binary_may_declare_one_endpoints_ports_across_several_declarations", SPLIT)
for port in (443, 8443):
    ev(MRG + "new_binary_may_declare_one_endpoints_ports_across_several_declarations", SPLIT,
       at("api.example.com", port, "/usr/bin/second"), True)
SPLIT2 = ents(("existing", ["{host: api.example.com, ports: [443, 8443]}"], ["/usr/bin/trusted"]),
              ("proposal", ["{host: api.example.com, port: 443}"], ["/usr/bin/second"]))
case(MRG + "new_binary_split_declaration_must_still_cover_every_port", SPLIT2)
ev(MRG + "new_binary_split_declaration_must_still_cover_every_port", SPLIT2,
   at("api.example.com", 8443, "/usr/bin/second"), False)
ANYP = ents(("existing", ["{host: api.example.com, port: 443}", "{host: admin.example.com, port: 443}"],
             ["/usr/bin/trusted"]),
            ("proposal", ["{host: api.example.com, port: 443}"], ["/usr/bin/other"]))
case(MRG + "any_binary_proposal_cannot_inherit_undeclared_endpoints", ANYP)
ev(MRG + "any_binary_proposal_cannot_inherit_undeclared_endpoints", ANYP,
   at("admin.example.com", 443, "/usr/bin/other"), False)
OVP = ents(("existing", ["{host: api.example.com, port: 443}", "{host: admin.example.com, port: 443}"],
            ["/usr/bin/trusted"]),
           ("requested", ["{host: api.example.com, port: 443}"], ["/usr/bin/new"]))
case(MRG + "overlapping_partial_authorization_keeps_its_requested_rule_name", OVP)
ev(MRG + "overlapping_partial_authorization_keeps_its_requested_rule_name", OVP,
   at("admin.example.com", 443, "/usr/bin/new"), False)
ev(MRG + "overlapping_partial_authorization_keeps_its_requested_rule_name", OVP,
   at("api.example.com", 443, "/usr/bin/new"), True)
UPC = PORTW.replace("  proposal:", "  narrow:")
case(MRG + "undeclared_port_conflict_keeps_a_differently_named_rule_separate", UPC)
ev(MRG + "undeclared_port_conflict_keeps_a_differently_named_rule_separate", UPC,
   at("api.example.com", 8443, "/usr/bin/only", "--method", "POST", "--path", "/y"), False)

# inspection contracts on one host and port (ConflictingInspectionContracts,
# McpContractConflict): the merged file, loaded
REST_THEN_MCP = ("{host: api.example.com, port: 443, protocol: rest, rules: [{allow: {method: GET, path: /}}]}",
                 mcp_ep("api.example.com", "[443]", "tool"))
case(MRG + "established_rest_endpoint_cannot_be_reinterpreted_as_mcp",
     ents(("existing", list(REST_THEN_MCP), ["/usr/bin/client"])), "but they differ in protocol")
case(MRG + "mcp_overlap_uses_effective_defaults_and_rejects_body_limit_changes",
     ents(("existing", [mcp_ep("mcp.example.com", "[443, 8443]", "tool")], ["/usr/bin/client"]),
          ("incoming", [mcp_ep("mcp.example.com", "[8443]", "tool",
                               "mcp: {strict_tool_names: true, allow_all_known_mcp_methods: false}, ")],
           ["/usr/bin/client"])))
case(MRG + "mcp_overlap_uses_effective_defaults_and_rejects_body_limit_changes",
     ents(("existing", [mcp_ep("mcp.example.com", "[443, 8443]", "tool")], ["/usr/bin/client"]),
          ("incoming", [mcp_ep("mcp.example.com", "[8443]", "tool", "mcp: {max_body_bytes: 131072}, ")],
           ["/usr/bin/client"])), "differ in max_body_bytes")
case(MRG + "non_overlapping_mcp_endpoints_may_use_different_contracts",
     ents(("existing", [mcp_ep("first.example.com", "[443, 8443]", "first-tool"),
                        mcp_ep("second.example.com", "[443]", "second-tool",
                               "mcp: {strict_tool_names: false, allow_all_known_mcp_methods: true, "
                               "max_body_bytes: 131072}, ")], ["/usr/bin/client"])))
# two MCP endpoints on one host:port under different paths: OpenShell's
# supervisor keeps one MCP contract per host and port, so its merge refuses
# differing ones; cordon picks the endpoint by path and applies that
# endpoint's own options, and OpenShell's loader accepts the same file too
TWO = ents(("existing", ['{host: mcp.example.com, port: 443, path: /a, protocol: mcp, '
                         'rules: [{allow: {method: tools/call, tool: first}}]}',
                         '{host: mcp.example.com, port: 443, path: /b, protocol: mcp, '
                         'mcp: {max_body_bytes: 131072}, rules: [{allow: {method: tools/call, tool: second}}]}'],
            ["/usr/bin/only"]))
case(MRG + "two_mcp_contracts_on_one_host_and_port_are_rejected_across_paths", TWO)
for path, tool, ok in (("/a", "first", True), ("/a", "second", False), ("/b", "second", True), ("/b", "first", False)):
    ev(MRG + "two_mcp_contracts_on_one_host_and_port_are_rejected_across_paths", TWO,
       at("mcp.example.com", 443, "/usr/bin/only", *mcp_call(path, tool)), ok)
SAME = TWO.replace("mcp: {max_body_bytes: 131072}, ", "")
case(MRG + "matching_mcp_contracts_on_one_host_and_port_are_accepted", SAME)
case(MRG + "a_preexisting_mcp_conflict_does_not_block_an_unrelated_update",
     TWO + "  unrelated:\n    endpoints: [{host: other.example.com, port: 443}]\n    binaries: [{path: /usr/bin/c}]\n")
V12 = ents(("existing", ["{host: api.example.com, port: 443, path: /v1, protocol: rest, rules: [{allow: {method: GET, path: /x}}]}",
                         "{host: api.example.com, port: 443, path: /v2, protocol: rest, rules: [{allow: {method: GET, path: /y}}]}"],
            ["/usr/bin/only"]))
case(MRG + "same_protocol_on_one_host_and_port_across_paths_is_accepted", V12)
# the broad REST endpoint and the narrow GraphQL endpoint: the more specific
# path judges (upstream's GraphQL endpoint has no rules, which its loader
# refuses as we do; read-only stands in)
PD = ents(("existing", ['{host: api.github.com, port: 443, path: "/**", protocol: rest, '
                        'rules: [{allow: {method: GET, path: "/repos/**"}}]}',
                        "{host: api.github.com, port: 443, path: /graphql, protocol: graphql, access: read-only}"],
           ["/usr/bin/only"]))
case(MRG + "path_disambiguated_protocols_on_one_host_and_port_are_accepted", PD)
GQ = ["--method", "POST", "--path", "/graphql", "--body"]
ev(MRG + "path_disambiguated_protocols_on_one_host_and_port_are_accepted", PD,
   at("api.github.com", 443, "/usr/bin/only", *(GQ + ['{"query": "query { viewer { login } }"}'])), True)
ev(MRG + "path_disambiguated_protocols_on_one_host_and_port_are_accepted", PD,
   at("api.github.com", 443, "/usr/bin/only", *(GQ + ['{"query": "mutation { addStar { id } }"}'])), False)
ev(MRG + "path_disambiguated_protocols_on_one_host_and_port_are_accepted", PD,
   at("api.github.com", 443, "/usr/bin/only", "--method", "GET", "--path", "/repos/a/b"), True)
# the same, listed the other way round: the most specific path still judges
PDR = ents(("existing", ["{host: api.github.com, port: 443, path: /graphql, protocol: graphql, access: read-only}",
                         '{host: api.github.com, port: 443, path: "/**", protocol: rest, '
                         'rules: [{allow: {method: GET, path: "/repos/**"}}]}'], ["/usr/bin/only"]))
ev(MRG + "path_disambiguated_protocols_on_one_host_and_port_are_accepted", PDR,
   at("api.github.com", 443, "/usr/bin/only", "--method", "GET", "--path", "/repos/a/b"), True)
ev(MRG + "path_disambiguated_protocols_on_one_host_and_port_are_accepted", PDR,
   at("api.github.com", 443, "/usr/bin/only", *(GQ + ['{"query": "query { viewer { login } }"}'])), True)
BROAD = ('{host: svc.example.com, port: 443, path: "/**", protocol: rest, enforcement: enforce, '
         'rules: [{allow: {method: POST, path: "/**"}}]}')
NARROW = "{host: svc.example.com, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: tools/call, tool: safe}}]}"
case(MRG + "mcp_alongside_a_broader_rest_endpoint_is_rejected",
     ents(("existing", [BROAD, NARROW], ["/usr/bin/agent"])), "mcp beside another inspected protocol")
case(MRG + "mcp_alongside_a_broader_rest_endpoint_in_another_rule_is_rejected",
     ents(("existing", [BROAD], ["/usr/bin/agent"]), ("incoming", [NARROW], ["/usr/bin/agent"])),
     "mcp beside another inspected protocol")
case(MRG + "overlapping_mcp_contract_conflict_is_not_deflected_to_a_separate_rule",
     ents(("existing", [mcp_ep("mcp.example.com", "[443]", "tool")], ["/usr/bin/client"]),
          ("fallback", [mcp_ep("mcp.example.com", "[443]", "tool", "mcp: {strict_tool_names: false}, ")],
           ["/usr/bin/client"])), "differ in mcp.strict_tool_names")
# merged L7 rules: the result a merge produces, as a file
MERGED = ents(("github", ["{host: api.github.com, port: 443, protocol: rest, rules: [{allow: {method: GET, path: \"/**\"}}, "
                          "{allow: {method: HEAD, path: \"/**\"}}, {allow: {method: OPTIONS, path: \"/**\"}}, "
                          "{allow: {method: POST, path: \"/repos/*/issues\"}}]}"], ["/usr/bin/curl"]))
case(MRG + "add_allow_expands_access_preset", MERGED)
ev(MRG + "add_allow_expands_access_preset", MERGED,
   at("api.github.com", 443, "/usr/bin/curl", "--method", "POST", "--path", "/repos/o/issues"), True)
ev(MRG + "add_allow_expands_access_preset", MERGED,
   at("api.github.com", 443, "/usr/bin/curl", "--method", "DELETE", "--path", "/repos/o"), False)
WSD = ents(("chat", ["{host: chat.example.com, port: 443, protocol: websocket, access: full, "
                     "deny_rules: [{method: GET, path: /admin}]}"], ["/usr/bin/node"]))
case(MRG + "add_deny_accepts_websocket_protocol", WSD)
ev(MRG + "add_deny_accepts_websocket_protocol", WSD,
   at("chat.example.com", 443, "/usr/bin/node", "--method", "GET", "--path", "/admin"), False)
# upstream refuses to add deny rules to a sql endpoint; cordon relays sql as
# TCP and applies no L7 rules there, so the merged file is refused too
case(MRG + "add_deny_rejects_unsupported_protocol",
     ents(("db", ["{host: db.example.com, port: 5432, protocol: sql, enforcement: audit, "
                  "deny_rules: [{method: POST, path: /admin}]}"], ["/usr/bin/psql"])),
     "protocol: sql needs rules or access (deny_rules alone deny from nothing)")
RM = ents(("multi", ["{host: api.example.com, ports: [443]}"], ["/usr/bin/curl"]))
case(MRG + "remove_endpoint_drops_only_requested_port", RM)
ev(MRG + "remove_endpoint_drops_only_requested_port", RM, at("api.example.com", 8443, "/usr/bin/curl"), False)
ev(MRG + "remove_endpoint_drops_only_requested_port", RM, at("api.example.com", 443, "/usr/bin/curl"), True)

NO_MERGE = ("cordon has no merge operation (no gateway, no advisor approvals): a proposal from "
            "`cordon policy suggest`/`run --learn` is added to the file by hand as its own entry, "
            "then `cordon policy check` and `cordon policy reload`; ")
MERGE_NOT = {
    "canonicalize_advisor_expands_existing_inspected_rule_without_l7_downgrade":
        NO_MERGE + "a suggested entry for a host:port that an inspected endpoint already has is "
        "refused at load if it would change the connection metadata (ambiguity check, rows above)",
    "canonicalize_advisor_mirrors_provider_contract_into_sandbox_overlay": NO_MERGE + PROVIDERS,
    "canonicalize_advisor_narrows_multi_port_contract_and_keeps_overlay": NO_MERGE +
        "suggest writes only the ports it saw refused (tests/integration/test_run_learn.py)",
    "generated_rule_name_sanitizes_host": "the merge's key for an advisor rule "
        "(allow_api_github_com_443); `cordon policy suggest` writes keys the same way without the "
        "prefix (api_github_com; tests/integration/test_run_learn.py)",
    "add_rule_rejects_empty_endpoints_at_the_library_boundary": NO_MERGE +
        "an entry without endpoints loads and allows nothing",
    "merge_reports_the_first_failing_operation_in_request_order": NO_MERGE +
        "the loader reports every problem, in file order",
    "l4_endpoint_promotion_to_mcp_requires_the_complete_existing_binary_scope": NO_MERGE +
        "nothing changes an existing endpoint's protocol in place; a new mcp entry is its own entry",
    "l4_endpoint_promotion_to_mcp_preserves_the_declared_contract": NO_MERGE +
        "nothing changes an existing endpoint's protocol in place",
    "merged_policy_covers_the_rule_it_merged": NO_MERGE + "no policy_covers_rule long-poll either",
    "add_rule_merges_l7_fields_into_existing_endpoint": NO_MERGE + "fields are written where they apply",
    "add_rule_user_binary_clears_advisor_marker_for_same_path": NO_MERGE + "no advisor provenance markers",
    "add_rule_duplicate_binaries_prefer_user_declared_marker": NO_MERGE + "no advisor provenance markers",
    "add_rule_preserves_advisor_endpoint_marker_when_binary_is_deduped": NO_MERGE + "no advisor provenance markers",
    "add_rule_merges_websocket_credential_rewrite_flag": NO_MERGE + "and credential fields are not applied",
    "add_rule_merges_request_body_credential_rewrite_flag": NO_MERGE + "and credential fields are not applied",
    "add_rule_merges_allow_uninspected_credentials_flag": NO_MERGE + "and credential fields are not applied",
    "add_allow_expands_websocket_access_preset": NO_MERGE + "(the REST case is re-expressed above)",
    "remove_binary_removes_rule_when_last_binary_is_deleted": NO_MERGE +
        "an entry whose binaries are all removed allows nothing (existing_any_binary_scope row)",
    "add_rule_without_existing_match_inserts_requested_key": NO_MERGE + "a new entry keeps its key",
    "add_rule_does_not_merge_agent_chunk_into_provider_rule": NO_MERGE + PROVIDERS,
    "add_rule_still_merges_user_chunk_into_user_rule_by_endpoint_overlap": NO_MERGE +
        "entries are never folded into each other",
    "overlapping_complete_authorization_still_folds_into_the_existing_rule": NO_MERGE +
        "entries are never folded into each other",
    "declaration_may_omit_retained_fields_it_does_not_change": NO_MERGE +
        "an omitted field takes its default in the entry that omits it",
    "declaration_that_contradicts_a_retained_field_is_still_rejected": NO_MERGE +
        "two endpoints of one host:port that disagree on protocol are refused at load "
        "(established_rest_endpoint_cannot_be_reinterpreted_as_mcp row)",
    "l7_operations_reject_an_endpoint_carried_by_several_rules": NO_MERGE +
        "rules are written into the endpoint they belong to",
    "l7_operations_reject_two_paths_on_one_host_and_port_within_a_rule": NO_MERGE +
        "rules are written into the endpoint they belong to",
    "l7_operations_still_apply_when_one_rule_carries_the_endpoint": NO_MERGE +
        "rules are written into the endpoint they belong to",
    "remove_binary_rejects_an_any_binary_rule_instead_of_doing_nothing": NO_MERGE +
        "and no any-binary scope (existing_any_binary_scope row)",
    "remove_binary_deletes_the_rule_rather_than_widening_it": NO_MERGE +
        "and an entry without binaries allows nothing, so removing the last one never widens",
    "naming_binaries_does_not_narrow_an_any_binary_rule": NO_MERGE + "and no any-binary scope",
    "any_binary_proposal_replaces_a_restricted_scope_once_fully_declared": NO_MERGE + "and no any-binary scope",
    "undeclared_port_conflict_still_fails_on_a_same_key_update": NO_MERGE +
        "a widened rule is written into the endpoint (and ports) it is meant for",
    "every_accepted_merge_reads_back_as_covered": NO_MERGE + "no coverage check",
}
COVERAGE = ("policy_covers_rule, the gateway's 'is my approved rule loaded yet?' check for the "
            "sandbox's /wait long-poll; cordon has no such check: `cordon policy reload` answers "
            "with the load result directly (test_run_ux.py reload tests)")
for n in ("policy_coverage_checks_full_mcp_matchers_ports_contract_and_defaults",
          "policy_coverage_requires_proposed_denies_but_allows_loaded_only_denies",
          "policy_coverage_requires_endpoint_advisor_provenance_to_be_loaded",
          "policy_coverage_checks_every_binary_endpoint_pair_across_rule_union",
          "policy_covers_rule_returns_true_when_merged_rule_present",
          "policy_covers_rule_returns_false_when_unrelated_rule_present",
          "policy_covers_rule_handles_merge_into_existing_endpoint",
          "policy_covers_rule_returns_false_when_binary_missing",
          "policy_covers_rule_returns_false_for_empty_proposed_endpoints",
          "policy_covers_rule_returns_false_when_proposed_l7_method_not_loaded",
          "policy_covers_rule_returns_true_after_l7_merge_lands",
          "policy_covers_rule_returns_true_for_l4_only_proposed_when_endpoint_present",
          "policy_covers_rule_requires_loaded_any_binary_scope_for_any_binary_proposal",
          "coverage_treats_an_omitted_retained_field_as_unspecified",
          "coverage_resolves_each_port_across_the_loaded_rule_union",
          "coverage_rejects_a_portless_endpoint_no_loaded_rule_matches"):
    MERGE_NOT[n] = COVERAGE

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
    LIB + "truncate_for_display_handles_multi_byte_utf8_without_panicking":
        "a message helper that shortens over-long paths; cordon bounds every quoted value in a "
        "diagnostic ('%.64s') and names the field path instead (validate_rejects_path_too_long row)",
    LIB + "truncate_for_display_leaves_short_strings_untouched": "the same message helper",
    LIB + "serialized_yaml_uses_filesystem_policy_key":
        "policy serialization (proto to YAML); cordon never re-serializes a policy: it reads the "
        "file as written, and `cordon policy init`/`suggest` write filesystem_policy (test_policy_init)",
    LIB + "serialized_json_uses_policy_schema_keys":
        "serialization to JSON; its policy ('protocol: https') is only parsed, never validated, "
        "in that test (l7_validate.rs::rejects_unknown_protocol refuses it, as we do)",
    LIB + "serialize_single_port_uses_compact_form": "serialization (port vs ports)",
    LIB + "restrictive_default_has_filesystem_policy":
        "OpenShell's built-in policy when none is given; cordon's default without a "
        "filesystem_policy section (doc/policy.md 'Static sections') is checked by "
        "tests/unit/test_policy.c test_load_minimal_and_defaults and enforced in "
        "test_run_containment.py::test_only_listed_paths_exist",
    LIB + "restrictive_default_omits_process_identity":
        "the built-in default leaves the identity to the runtime; cordon: unset means the "
        "runner's default (test_load_minimal_and_defaults)",
    LIB + "ensure_sandbox_process_identity_fills_each_omitted_field":
        "a runtime helper filling omitted identities with 'sandbox'; cordon's runner picks its "
        "own default user (doc/sandbox.md); omitted fields load (validate_accepts_omitted_process_fields)",
    LIB + "container_policy_path_is_expected":
        "the path an image ships its policy at; cordon reads only the file named by --policy",
    LIB + "legacy_container_policy_path_is_expected": "the same, its pre-rename path",
    LIB + "valid_identity_rejects_empty_string":
        "the identity helper on ''; in a policy file '' is an omitted field and loads, in both "
        "(validate_accepts_omitted_process_fields rows)",
}

NOT_A_DECISION.update({MRG + k: v for k, v in MERGE_NOT.items()})

NAMES = ("cordon runs on a host whose users have names, so run_as_user/run_as_group may be any "
         "non-root user or group name or id, not only 'sandbox' (doc/policy.md 'Where we differ'); "
         "root and 0 are refused in both")
DIFFERS = {
    MRG + "two_mcp_contracts_on_one_host_and_port_are_rejected_across_rules":
        "the two MCP endpoints in two entries (/a and /b, one binary): OpenShell's loader accepts "
        "the file and authorizes a request by any matching endpoint; cordon binds a connection "
        "to the first entry (by key) that allows it and judges its requests by that entry's "
        "endpoints only, so a call to /b is refused (stricter; test_entries_do_not_combine_for_requests)",
    MRG + "an_l4_endpoint_does_not_conflict_with_an_inspected_one":
        "upstream's L4 endpoint carries `path: /raw`; cordon refuses `path` without an inspected "
        "protocol (it could never be applied to a tunnel), stricter; without the path the two "
        "load (test_entries_do_not_combine_for_requests)",
    LIB + "validate_rejects_non_sandbox_user": NAMES,
    LIB + "validate_rejects_nobody_string": NAMES,
    LIB + "valid_identity_rejects_non_numeric_names": NAMES,
    LIB + "json_validation_delegates_implementation_owned_config":
        "OpenShell asks the installed middleware implementation to validate its config; cordon "
        "runs no middleware, so it checks the shape and loads with a warning that the middleware "
        "is not applied (doc/policy.md network_middlewares; --strict refuses it)",
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
    named = {c[0] for c in C} | {e[0] for e in EV}
    per_file = {}
    for n in UPSTREAM:
        per_file[n.split("::")[0]] = per_file.get(n.split("::")[0], 0) + 1
    assert per_file == {"ambiguity.rs": 20, "l7_validate.rs": 21, "compose.rs": 4,
                        "lib.rs": 110, "merge.rs": 78}, per_file
    assert len(set(UPSTREAM)) == 233
    covered = named | set(NOT_A_DECISION) | set(DIFFERS)
    assert not (named & set(NOT_A_DECISION)) and not (named & set(DIFFERS))
    assert not (set(NOT_A_DECISION) & set(DIFFERS))
    assert [n for n in UPSTREAM if n not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 233


def _check(cordon_bin, tmp_path, text):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return subprocess.run([cordon_bin, "policy", "check", str(p)], capture_output=True,
                          text=True, timeout=20)


@pytest.mark.parametrize("row", C, ids=["%s-%d" % (c[0].split("::")[1], i) for i, c in enumerate(C)])
def test_crate_case(cordon_bin, tmp_path, row):
    name, text, error, warn = row
    r = _check(cordon_bin, tmp_path, text)
    if error is None:
        assert r.returncode == 0, (name, r.stderr)
    else:
        assert r.returncode == 1, (name, r.stderr)
        line = [ln for ln in r.stderr.splitlines() if error in ln]
        assert line, (name, r.stderr)
        # every error names file:line:column
        assert re.match(r"^\S*policy\.yaml:\d+:\d+: error: ", line[0]), (name, line[0])
    if warn is not None:
        line = [ln for ln in r.stderr.splitlines() if warn in ln]
        assert line and re.match(r"^\S*policy\.yaml:\d+:\d+: warning: ", line[0]), (name, r.stderr)


@pytest.mark.parametrize("row", EV, ids=["%s-%d" % (e[0].split("::")[1], i) for i, e in enumerate(EV)])
def test_crate_eval(cordon_bin, tmp_path, row):
    name, text, args, allowed = row
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    r = subprocess.run([cordon_bin, "policy", "eval", str(p)] + args, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == (0 if allowed else 1), (name, args, r.stdout, r.stderr)
    word = "allow" if allowed else "deny"
    if "--method" in args:  # the connection is allowed; the request's rules decide
        assert "decision: allow" in r.stdout and ("\nl7: %s\n" % word) in r.stdout, (name, r.stdout)
    else:
        assert ("decision: %s\n" % word) in r.stdout, (name, r.stdout)


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


def test_entries_do_not_combine_for_requests(cordon_bin, tmp_path):
    """A connection is judged by the first entry (by key) that allows it,
    and its requests by that entry's endpoints only (the merge.rs
    differences above)."""
    text = ents(("existing", ["{host: mcp.example.com, port: 443, path: /a, protocol: mcp, "
                              "rules: [{allow: {method: tools/call, tool: first}}]}"], ["/usr/bin/only"]),
                ("incoming", ["{host: mcp.example.com, port: 443, path: /b, protocol: mcp, "
                              "rules: [{allow: {method: tools/call, tool: second}}]}"], ["/usr/bin/only"]))
    assert _check(cordon_bin, tmp_path, text).returncode == 0
    p = tmp_path / "policy.yaml"
    r = subprocess.run([cordon_bin, "policy", "eval", str(p)] +
                       at("mcp.example.com", 443, "/usr/bin/only", *mcp_call("/b", "second")),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "outside the path" in r.stdout, r.stdout
    # an L4 endpoint with a path is refused; without it, it loads beside
    # the inspected one
    r = _check(cordon_bin, tmp_path, ents(("existing", [
        "{host: api.example.com, port: 443, protocol: rest, rules: [{allow: {method: GET, path: /x}}]}",
        "{host: api.example.com, port: 443, path: /raw}"], ["/usr/bin/only"])))
    assert r.returncode == 1 and "path needs an inspected protocol" in r.stderr, r.stderr
    r = _check(cordon_bin, tmp_path, ents(("existing", [
        "{host: api.example.com, port: 443, protocol: rest, rules: [{allow: {method: GET, path: /x}}]}",
        "{host: api.example.com, port: 443}"], ["/usr/bin/only"])))
    assert r.returncode == 0, r.stderr
