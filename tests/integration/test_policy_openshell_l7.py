"""OpenShell's L7 tests, walked one by one (#13).

Every test of NVIDIA/OpenShell crates/openshell-supervisor-network/src/l7/
{mod.rs (91), path.rs (31), graphql.rs (10), jsonrpc.rs (24), relay.rs (69),
middleware.rs (11), inference.rs (42), token_grant_injection.rs (13)} at the
revision walked (2f7fb65; 291 tests, names as FILE::TEST in
openshell_l7_tests.txt) is exactly one of

  LOAD / EVAL     a decision it asserts, re-expressed against our own fixture
                  and asked of the real binary: `cordon policy check` for what
                  loads (mod.rs validates endpoint fields and rules), `cordon
                  policy eval` (with --body for GraphQL, JSON-RPC and MCP) for
                  how a request is judged (path.rs canonical paths, graphql.rs
                  and jsonrpc.rs classification, relay.rs decisions);
  NOT_A_DECISION  a test of machinery that decides nothing about a policy
                  (relay framing, credential injection, middleware, inference
                  response formatting), with what cordon does about the same
                  concern and the cordon test that covers it;
  DIFFERS         a deliberate difference (doc/policy.md "Where we differ"),
                  never more permissive than OpenShell; where cordon's side is
                  a decision, it is a LOAD/EVAL row as well.

Decisions OpenShell makes in the relay itself (a JSON-RPC call forwarded or
answered 403, a batch with one denied element, streamed MCP responses, MCP
GET receive streams, audit mode still refusing malformed bodies) are also
made with real requests through a real cordon proxy to real servers in a
test network namespace: tests/integration/test_policy_l7_body.py, named in
the reasons below.

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step, so the count is checkable."""
import subprocess

import pytest

CURL = "/usr/bin/curl"
M, P, G, J = "mod.rs::", "path.rs::", "graphql.rs::", "jsonrpc.rs::"
R, MW, INF, TG = "relay.rs::", "middleware.rs::", "inference.rs::", "token_grant_injection.rs::"

# ---- LOAD: (upstream test, [endpoint, ...] as YAML flow maps, expect, needle)
# expect: "ok" (loads, no warning), "warn" (loads with a warning), "error".
# Hosts are ours; OpenShell's tests use the same shapes.
LOAD = [
    (M + "validate_websocket_credential_rewrite_warns_unless_rest_or_websocket",
     ["{host: gw.test, port: 443, websocket_credential_rewrite: true}"], "warn",
     "websocket_credential_rewrite is not applied"),
    (M + "validate_explicit_tcp_rejects_additional_l7_field_families",
     ["{host: db.test, port: 5432, protocol: tcp, enforcement: enforce}"], "error",
     "enforcement is not valid with protocol: tcp"),
    (M + "validate_explicit_tcp_rejects_additional_l7_field_families",
     ["{host: db.test, port: 5432, protocol: tcp, path: /query}"], "error",
     "path needs an inspected protocol"),
    (M + "validate_explicit_tcp_rejects_additional_l7_field_families",
     ["{host: db.test, port: 5432, protocol: tcp, allow_encoded_slash: true}"], "error",
     "allow_encoded_slash needs an inspected protocol"),
    (M + "validate_explicit_tcp_rejects_additional_l7_field_families",
     ["{host: db.test, port: 5432, protocol: tcp, persisted_queries: allow_registered}"],
     "error", "persisted_queries needs an inspected protocol"),
    (M + "validate_explicit_tcp_rejects_additional_l7_field_families",
     ["{host: db.test, port: 5432, protocol: tcp, graphql_max_body_bytes: 1024}"], "error",
     "graphql_max_body_bytes needs an inspected protocol"),
    (M + "validate_explicit_tcp_rejects_additional_l7_field_families",
     ["{host: db.test, port: 5432, protocol: tcp, mcp: {strict_tool_names: false}}"], "error",
     "mcp needs an inspected protocol"),
    (M + "validate_request_body_credential_rewrite_warns_unless_rest",
     ["{host: gw.test, port: 443, protocol: websocket, access: full, "
      "request_body_credential_rewrite: true}"], "warn",
     "request_body_credential_rewrite is not applied"),
    (M + "expand_websocket_read_write_access_includes_text_messages",
     ["{host: gw.test, port: 443, protocol: websocket, access: read-write}"], "ok", None),
    (M + "validate_websocket_accepts_graphql_operation_rules",
     ["{host: gw.test, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: "
      "/graphql}}, {allow: {operation_type: subscription, fields: [messageAdded]}}]}"], "warn",
     "GraphQL-over-WebSocket operation rules are not applied"),
    (M + "validate_websocket_graphql_rule_requires_operation_type",
     ["{host: gw.test, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: "
      "/graphql}}, {allow: {fields: [messageAdded]}}]}"], "error", "operation_type is required"),
    (M + "validate_websocket_graphql_rule_rejects_mixed_transport_fields",
     ["{host: gw.test, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: "
      "/graphql}}, {allow: {method: WEBSOCKET_TEXT, path: /graphql, operation_type: "
      "subscription}}]}"], "error", "operation_type is not a field of a protocol: websocket"),
    (M + "validate_websocket_graphql_policy_rejects_raw_text_message_rule",
     ["{host: gw.test, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: "
      "/graphql}}, {allow: {method: WEBSOCKET_TEXT, path: /graphql}}, {allow: "
      "{operation_type: query}}]}"], "error", "a WEBSOCKET_TEXT rule next to GraphQL operation"),
    (M + "validate_rules_and_access_mutual_exclusion",
     ["{host: api.test, port: 443, protocol: rest, access: read-only, rules: [{allow: "
      "{method: GET, path: '**'}}]}"], "error", "rules and access are mutually exclusive"),
    (M + "validate_jsonrpc_rejects_access_presets",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, access: full}"], "error",
     "access presets are not valid for protocol: json-rpc"),
    (M + "validate_jsonrpc_requires_method_rules",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: "
      "{path: /rpc}}]}"], "error", "path is not a field of a protocol: json-rpc rule"),
    (M + "validate_jsonrpc_requires_method_rules",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: "
      "{path: /rpc}}]}"], "error", "rules[0].allow: method is required"),
    (M + "validate_mcp_tool_selectors_use_endpoint_method_profile_and_reject_arguments",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {allow_all_known_mcp_methods:"
      " true}, rules: [{allow: {tool: {any: [read_status, 'submit_*']}}}, {allow: {method: "
      "initialize}}, {allow: {method: tools/call, tool: list_reports}}], deny_rules: [{tool: "
      "'delete_*'}]}"], "ok", None),
    (M + "validate_mcp_tool_selectors_use_endpoint_method_profile_and_reject_arguments",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {allow_all_known_mcp_methods:"
      " true}, rules: [{allow: {method: tools/call, tool: submit_report, params: {arguments: "
      "{scope: workspace/main}}}}]}"], "error", "params.arguments is not supported"),
    (M + "validate_mcp_tool_selectors_require_method_by_default",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {tool: "
      "read_status}}]}"], "error", "rules[0].allow: method is required"),
    (M + "validate_mcp_tool_selectors_require_method_by_default",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: "
      "initialize}}], deny_rules: [{tool: 'delete_*'}]}"], "error",
     "deny_rules[0]: method is required"),
    (M + "validate_mcp_method_globs_are_tools_family_only",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: "
      "vendor/extension}}, {allow: {method: 'tools/*'}}]}"], "ok", None),
    (M + "validate_mcp_method_globs_are_tools_family_only",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: "
      "'vendor/*'}}]}"], "error", "globs are allowed only in the tools/ family"),
    (M + "validate_mcp_method_globs_are_tools_family_only",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: "
      "'*'}}]}"], "error", "'*' is not an MCP method"),
    (M + "validate_mcp_wildcard_tool_requires_strict_tool_names",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {strict_tool_names: false},"
      " rules: [{allow: {method: tools/call, tool: 'read_*'}}]}"], "error",
     "wildcard tool matcher 'read_*' needs mcp.strict_tool_names: true"),
    (M + "validate_mcp_wildcard_tool_requires_strict_tool_names",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {strict_tool_names: false},"
      " rules: [{allow: {method: tools/call, params: {name: {any: [safe_tool, 'list_*']}}}}]}"],
     "error", "wildcard tool matcher 'list_*' needs mcp.strict_tool_names: true"),
    (M + "validate_mcp_wildcard_tool_requires_strict_tool_names",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {strict_tool_names: false},"
      " rules: [{allow: {method: tools/call, tool: read_status}}], deny_rules: [{method: "
      "tools/call, tool: delete_resource}]}"], "ok", None),
    (M + "validate_mcp_protocol_requires_endpoint_target",
     ["{protocol: mcp, rules: [{allow: {method: initialize}}]}"], "error",
     "host or allowed_ips is required"),
    (M + "validate_mcp_protocol_requires_endpoint_target",
     ["{protocol: mcp, rules: [{allow: {method: initialize}}]}"], "error",
     "port or ports is required"),
    (M + "validate_mcp_broad_tools_call_deny_rejects_tool_allow_rules",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: "
      "tools/call, tool: read_status}}], deny_rules: [{method: tools/call}]}"], "error",
     "deny_rules[0]: denies every tool call"),
    (M + "validate_mcp_broad_tools_call_allow_rejects_tool_allow_rules",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, rules: [{allow: {method: "
      "'tools/*'}}, {allow: {method: tools/call, tool: read_status}}]}"], "error",
     "rules[0]: allows every tool call"),
    (M + "validate_mcp_empty_allow_with_allow_all_conflicts_with_tool_rules",
     ["{host: mcp.test, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true}, "
      "rules: [{allow: {params: {name: {glob: 'read_*'}}}}, {allow: {}}]}"], "error",
     "rules[1]: allows every tool call"),
    (M + "validate_jsonrpc_rejects_params_matchers",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: {method: "
      "reports.search, params: {query: quarterly}}}]}"], "error",
     "rules[0].allow: params matchers are not supported"),
    (M + "validate_jsonrpc_rejects_params_matchers",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: {method: "
      "reports.search}}], deny_rules: [{method: reports.archive, params: {report_id: "
      "rpt-123}}]}"], "error", "deny_rules[0]: params matchers are not supported"),
    (M + "validate_mcp_strict_tool_names_is_mcp_only",
     ["{host: api.test, port: 443, protocol: rest, access: full, mcp: {strict_tool_names: "
      "false}}"], "error", "mcp options are only valid for protocol: mcp"),
    (M + "validate_mcp_strict_tool_names_is_mcp_only",
     ["{host: api.test, port: 443, protocol: rest, access: full, mcp: "
      "{allow_all_known_mcp_methods: true}}"], "error",
     "mcp options are only valid for protocol: mcp"),
    (M + "validate_mcp_strict_tool_names_is_mcp_only",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {strict_tool_names: false},"
      " rules: [{allow: {method: tools/call}}]}"], "ok", None),
    (M + "validate_mcp_options_require_bool",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: {strict_tool_names: "
      "'false'}, rules: [{allow: {method: tools/call}}]}"], "error", "expected a boolean"),
    (M + "validate_mcp_options_require_bool",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp, mcp: "
      "{allow_all_known_mcp_methods: 'false'}, rules: [{allow: {method: tools/call}}]}"],
     "error", "expected a boolean"),
    (M + "validate_mcp_requires_rules_by_default",
     ["{host: mcp.test, port: 443, path: /mcp, protocol: mcp}"], "error",
     "protocol: mcp needs rules"),
    (M + "validate_jsonrpc_deny_rules_require_method",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: {method: "
      "'*'}}], deny_rules: [{params: {name: delete_resource}}]}"], "error",
     "deny_rules[0]: method is required"),
    (M + "validate_jsonrpc_method_rejects_globs_except_allow_all",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: {method: "
      "'*'}}]}"], "ok", None),
    (M + "validate_jsonrpc_method_rejects_globs_except_allow_all",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: {method: "
      "'reports.*'}}]}"], "error", "JSON-RPC method rules take no globs"),
    (M + "validate_jsonrpc_method_rejects_globs_except_allow_all",
     ["{host: rpc.test, port: 443, path: /rpc, protocol: json-rpc, rules: [{allow: {method: "
      "'*'}}], deny_rules: [{method: 'reports/{archive,delete}'}]}"], "error",
     "JSON-RPC method rules take no globs"),
    (M + "validate_protocol_requires_rules_or_access",
     ["{host: api.test, port: 443, protocol: rest}"], "error",
     "protocol: rest needs rules or access"),
    (M + "validate_sql_enforce_blocked",
     ["{host: db.test, port: 5432, protocol: sql, enforcement: enforce, rules: [{allow: "
      "{command: SELECT}}]}"], "error", "SQL enforcement needs SQL parsing"),
    (M + "validate_tls_terminate_deprecated_warning",
     ["{host: api.test, port: 443, tls: terminate, protocol: rest, access: full}"], "warn",
     "'terminate' is deprecated"),
    (M + "validate_tls_skip_with_l7_on_443_warns",
     ["{host: api.test, port: 443, tls: skip, protocol: rest, access: read-only}"], "warn",
     "tls: skip on port 443"),
    (M + "validate_port_443_rest_no_tls_no_warning",
     ["{host: api.test, port: 443, protocol: rest, access: read-only}"], "ok", None),
    (M + "expand_read_only_preset",
     ["{host: api.test, port: 80, protocol: rest, access: read-only}"], "ok", None),
    (M + "expand_full_preset",
     ["{host: api.test, port: 80, protocol: rest, access: full}"], "ok", None),
    (M + "expand_unsupported_access_preset_warns_and_leaves_rules_unexpanded",
     ["{host: my-service.test, port: 80, protocol: rest, access: allow}"], "error",
     "'allow' is not allowed (allowed: read-only, read-write, full)"),
    (M + "expand_graphql_readonly_preset",
     ["{host: api.test, port: 443, protocol: graphql, access: read-only}"], "ok", None),
    (M + "validate_graphql_rule_requires_operation_type",
     ["{host: api.test, port: 443, protocol: graphql, rules: [{allow: {fields: [viewer]}}]}"],
     "error", "operation_type is required"),
    (M + "validate_graphql_persisted_query_mode",
     ["{host: api.test, port: 443, protocol: graphql, access: full, persisted_queries: "
      "allow_all}"], "error", "'allow_all' is not allowed"),
    (M + "l4_only_endpoint_untouched", ["{host: api.test, port: 443}"], "ok", None),
    (M + "validate_wildcard_host_star_only_error", ["{host: '*', port: 443}"], "error",
     "would match every host"),
    (M + "validate_wildcard_host_double_star_only_error", ["{host: '**', port: 443}"], "error",
     "would match every host"),
    (M + "validate_wildcard_host_middle_label_star_valid_no_error",
     ["{host: '*.s3.*.amazonaws.com', port: 443}"], "ok", None),
    (M + "validate_wildcard_host_middle_label_partial_star_error",
     ["{host: '*.s3.us-*.amazonaws.com', port: 443}"], "error", "partial wildcard"),
    (M + "validate_wildcard_host_middle_label_double_star_error",
     ["{host: '*.s3.**.amazonaws.com', port: 443}"], "error",
     "uses '**' other than as the whole first label"),
    (M + "validate_wildcard_host_single_label_error", ["{host: '*com', port: 443}"], "error",
     "wildcard in the top-level label"),
    (M + "validate_wildcard_host_recursive_intra_label_error",
     ["{host: 'foo**.example.com', port: 443}"], "error",
     "uses '**' other than as the whole first label"),
    (M + "validate_wildcard_host_tld_rejected", ["{host: '*.com', port: 443}"], "error",
     "would match a whole top-level domain"),
    (M + "validate_wildcard_host_double_star_tld_rejected", ["{host: '**.org', port: 443}"],
     "error", "would match a whole top-level domain"),
    (M + "validate_wildcard_host_valid_no_error", ["{host: '*.example.com', port: 443}"], "ok",
     None),
    (M + "validate_wildcard_host_double_star_valid_no_error",
     ["{host: '**.example.com', port: 443}"], "ok", None),
    (M + "validate_wildcard_host_intra_label_valid_no_error",
     ["{host: '*-aiplatform.googleapis.com', port: 443}"], "ok", None),
    (M + "validate_port_and_ports_mutually_exclusive",
     ["{host: api.test, port: 443, ports: [443, 8443]}"], "error",
     "port and ports are mutually exclusive"),
    (M + "validate_ports_array_rest_443_no_warning",
     ["{host: api.test, ports: [443, 8080], protocol: rest, access: read-only}"], "ok", None),
    (M + "validate_query_any_requires_non_empty_array",
     ["{host: api.test, port: 8080, protocol: rest, rules: [{allow: {method: GET, path: "
      "/download, query: {tag: {any: []}}}}]}"], "error", "allow.query.tag.any: empty list"),
    (M + "validate_query_object_rejects_unknown_keys",
     ["{host: api.test, port: 8080, protocol: rest, rules: [{allow: {method: GET, path: "
      "/download, query: {tag: {mode: 'foo-*'}}}}]}"], "error", "unknown matcher 'mode'"),
    (M + "validate_query_glob_warns_on_unclosed_bracket",
     ["{host: api.test, port: 8080, protocol: rest, rules: [{allow: {method: GET, path: "
      "/download, query: {tag: '[unclosed'}}}]}"], "error", "allow.query.tag: '[unclosed': an "
     "unclosed '['"),
    (M + "validate_query_glob_warns_on_unclosed_brace",
     ["{host: api.test, port: 8080, protocol: rest, rules: [{allow: {method: GET, path: "
      "/download, query: {format: {glob: '{json,xml'}}}}]}"], "error",
     "alternatives '{a,b}' are not supported"),
    (M + "validate_query_any_warns_on_malformed_glob_item",
     ["{host: api.test, port: 8080, protocol: rest, rules: [{allow: {method: GET, path: "
      "/download, query: {tag: {any: ['valid-*', '[bad']}}}}]}"], "error",
     "allow.query.tag.any[1]: '[bad': an unclosed '['"),
    (M + "validate_query_string_and_any_matchers_are_accepted",
     ["{host: api.test, port: 8080, protocol: rest, rules: [{allow: {method: GET, path: "
      "/download, query: {slug: 'my-*', tag: {any: ['foo-*', 'bar-*']}, owner: {glob: "
      "'org-*'}}}}]}"], "ok", None),
    (M + "validate_jsonrpc_nested_params_matchers_are_rejected",
     ["{host: rpc.test, port: 443, protocol: json-rpc, rules: [{allow: {method: reports.search,"
      " params: {query: quarterly, filters: {scope: workspace/main}}}}]}"], "error",
     "params matchers are not supported"),
    (M + "validate_deny_rules_require_protocol",
     ["{host: api.test, port: 443, deny_rules: [{method: POST, path: /admin}]}"], "error",
     "deny_rules need rules or access"),
    (M + "validate_deny_rules_require_allow_base",
     ["{host: api.test, port: 443, protocol: rest, deny_rules: [{method: POST, path: "
      "/admin}]}"], "error", "deny_rules need rules or access"),
    (M + "validate_rules_empty_list_rejected",
     ["{host: api.test, port: 443, protocol: rest, access: full, rules: []}"], "error",
     "empty list can never allow anything"),
    (M + "validate_rules_deny_all_with_empty_allow_object",
     ["{host: api.test, port: 443, protocol: rest, rules: [{allow: {method: '', path: "
      "''}}]}"], "error", "'' is not an HTTP method"),
    (M + "validate_mcp_params_selector_not_classified_as_deny_all",
     ["{host: mcp.test, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true}, "
      "rules: [{allow: {params: {name: {glob: 'read_*'}}}}]}"], "ok", None),
    (M + "validate_mcp_tool_selector_not_classified_as_deny_all",
     ["{host: mcp.test, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true}, "
      "rules: [{allow: {tool: my-tool}}]}"], "ok", None),
    (M + "validate_mcp_allow_all_with_empty_allow_not_denied",
     ["{host: mcp.test, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true}, "
      "rules: [{allow: {}}]}"], "ok", None),
    (M + "validate_deny_rules_empty_list_rejected",
     ["{host: api.test, port: 443, protocol: rest, access: full, deny_rules: []}"], "error",
     "deny_rules: empty list"),
    (M + "validate_deny_rules_valid_config_accepted",
     ["{host: api.test, port: 443, protocol: rest, access: read-write, deny_rules: [{method: "
      "POST, path: '/repos/*/pulls/*/reviews'}, {method: PUT, path: "
      "'/repos/*/branches/*/protection'}]}"], "ok", None),
    (M + "validate_deny_rules_query_empty_any_rejected",
     ["{host: api.test, port: 443, protocol: rest, access: full, deny_rules: [{method: POST, "
      "path: /admin, query: {type: {any: []}}}]}"], "error", "query.type.any: empty list"),
    (M + "validate_deny_rules_query_non_string_rejected",
     ["{host: api.test, port: 443, protocol: rest, access: full, deny_rules: [{method: POST, "
      "path: /admin, query: {force: [123]}}]}"], "error", "expected a glob string"),
    (M + "validate_deny_rules_query_valid_matchers_accepted",
     ["{host: api.test, port: 443, protocol: rest, access: full, deny_rules: [{method: POST, "
      "path: '/admin/**', query: {force: 'true', type: {any: ['admin-*', 'root-*']}, scope: "
      "{glob: 'org-*'}}}]}"], "ok", None),
    # the MCP/JSON-RPC options the parse_* tests read, accepted as OpenShell accepts them
    (M + "parse_l7_config_mcp_strict_tool_names_can_disable",
     ["{host: mcp.test, port: 443, protocol: mcp, mcp: {strict_tool_names: false}, rules: "
      "[{allow: {method: tools/call, tool: 'read status'}}]}"], "ok", None),
    (M + "parse_l7_config_allow_encoded_slash_opt_in",
     ["{host: gitlab.test, port: 443, protocol: rest, allow_encoded_slash: true, access: "
      "read-only}"], "ok", None),
    (M + "parse_l7_config_websocket_protocol",
     ["{host: gw.test, port: 443, protocol: websocket, access: full}"], "ok", None),
    (M + "parse_l7_config_skip",
     ["{host: api.test, port: 8443, protocol: rest, tls: skip, access: full}"], "ok", None),
    (M + "parse_l7_config_rest_enforce",
     ["{host: api.test, port: 443, protocol: rest, tls: terminate, enforcement: enforce, "
      "access: full}"], "warn", "'terminate' is deprecated"),
]

# ---- EVAL: one fixture, hosts by concern
FIXTURE = """\
version: 1
network_policies:
  l7:
    endpoints:
      - {host: canon.test, port: 443, protocol: rest, rules: [{allow: {method: GET, path: "**"}}]}
      - {host: slash.test, port: 443, protocol: rest, allow_encoded_slash: true,
         rules: [{allow: {method: GET, path: "**"}}]}
      - {host: gateway.test, port: 443, path: "/repos/**", protocol: rest, allow_encoded_slash: true,
         rules: [{allow: {method: GET, path: "/repos/**"}}]}
      - {host: gateway.test, port: 443, path: "/admin/**", protocol: rest,
         rules: [{allow: {method: GET, path: "/admin/**"}}]}
      - {host: gql.test, port: 443, path: /graphql, protocol: graphql,
         rules: [{allow: {operation_type: query, fields: [viewer, repository]}},
                 {allow: {operation_type: mutation, fields: [safeAlias]}}]}
      - {host: rpc.test, port: 443, path: /rpc, protocol: json-rpc,
         rules: [{allow: {method: initialize}}, {allow: {method: reports.list}},
                 {allow: {method: reports.search}}],
         deny_rules: [{method: reports.delete}]}
      - {host: rpc-audit.test, port: 443, path: /rpc, protocol: json-rpc, enforcement: audit,
         rules: [{allow: {method: initialize}}]}
      - {host: mcp.test, port: 443, path: /mcp, protocol: mcp,
         rules: [{allow: {method: initialize}}, {allow: {method: tools/list}},
                 {allow: {method: tools/call, tool: {any: [read_status, search_web]}}},
                 {allow: {method: vendor/extension}}],
         deny_rules: [{method: tools/call, tool: delete_resource}]}
      - {host: mcp-loose.test, port: 443, path: /mcp, protocol: mcp, mcp: {strict_tool_names: false},
         rules: [{allow: {method: tools/call, tool: "read status"}}]}
      - {host: ws.test, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: /ws}}]}
    binaries: [{path: /usr/bin/curl}]
"""


def rpc(method=None, params=None, i=1, **kw):
    import json
    o = {"jsonrpc": "2.0", "id": i}
    if method is not None:
        o["method"] = method
    if params is not None:
        o["params"] = params
    o.update(kw)
    return json.dumps(o)


def batch(*items):
    return "[" + ",".join(items) + "]"


C, S = "canon.test", "slash.test"
# (upstream test, host, method, target, body, allow, needle in stdout)
EVAL = [
    # path.rs: the canonical path the rules judge (l7_path), or a refusal
    (P + "literal_dot_segments_resolve", C, "GET", "/a/./b", None, True, "l7_path: /a/b\n"),
    (P + "literal_dot_segments_resolve", C, "GET", "/a/b/.", None, True, "l7_path: /a/b/\n"),
    (P + "literal_dot_segments_resolve", C, "GET", "/a/../b", None, True, "l7_path: /b\n"),
    (P + "literal_dot_segments_resolve", C, "GET", "/a/b/..", None, True, "l7_path: /a/\n"),
    (P + "percent_encoded_dot_segments_resolve_the_same_way", C, "GET", "/public/%2e%2e/secret",
     None, True, "l7_path: /secret\n"),
    (P + "percent_encoded_dot_segments_resolve_the_same_way", C, "GET", "/public/%2E%2E/secret",
     None, True, "l7_path: /secret\n"),
    (P + "percent_encoded_dot_segments_resolve_the_same_way", C, "GET", "/public/%2e/secret",
     None, True, "l7_path: /public/secret\n"),
    (P + "traversal_above_root_is_rejected", C, "GET", "/..", None, False, None),
    (P + "traversal_above_root_is_rejected", C, "GET", "/a/../..", None, False, None),
    (P + "traversal_above_root_is_rejected", C, "GET", "/a/%2e%2e/%2e%2e", None, False, None),
    (P + "doubled_slashes_collapse", C, "GET", "//", None, True, "l7_path: /\n"),
    (P + "doubled_slashes_collapse", C, "GET", "//public//../secret", None, True,
     "l7_path: /secret\n"),
    (P + "doubled_slashes_collapse", C, "GET", "/public//secret", None, True,
     "l7_path: /public/secret\n"),
    (P + "encoded_slash_rejected_by_default", C, "GET", "/a/%2f/b", None, False, None),
    (P + "encoded_slash_rejected_by_default", C, "GET", "/public/..%2fsecret", None, False, None),
    (P + "encoded_slash_preserved_when_opted_in", S, "GET", "/a/%2f/b", None, True,
     "l7_path: /a/%2F/b\n"),
    (P + "encoded_slash_preserved_when_opted_in", S, "GET", "/a/%2F/b", None, True,
     "l7_path: /a/%2F/b\n"),
    (P + "null_and_control_bytes_rejected", C, "GET", "/a%00b", None, False, None),
    (P + "null_and_control_bytes_rejected", C, "GET", "/a%0Ab", None, False, None),
    (P + "null_and_control_bytes_rejected", C, "GET", "/a%0Db", None, False, None),
    (P + "null_and_control_bytes_rejected", C, "GET", "/a%7Fb", None, False, None),
    (P + "fragment_rejected", C, "GET", "/a#b", None, False, None),
    (P + "absolute_form_strips_authority", C, "GET", "http://host/a/../b", None, True,
     "l7_path: /b\n"),
    (P + "absolute_form_strips_authority", C, "GET", "https://host", None, True, "l7_path: /\n"),
    (P + "absolute_form_strips_authority", C, "GET", "http://host:443/foo", None, True,
     "l7_path: /foo\n"),
    (P + "origin_form_with_embedded_url_is_not_stripped_as_absolute_form", C, "GET",
     "/fetch/http://example.test?next=http://other.test", None, True,
     "l7_path: /fetch/http:/example.test\n"),
    (P + "legitimate_percent_encoded_bytes_round_trip", C, "GET", "/files/hello%20world.txt",
     None, True, "l7_path: /files/hello%20world.txt\n"),
    (P + "legitimate_percent_encoded_bytes_round_trip", C, "GET", "/search/a%3Fb", None, True,
     "l7_path: /search/a%3Fb\n"),
    (P + "legitimate_percent_encoded_bytes_round_trip", C, "GET", "/users/%40alice", None, True,
     "l7_path: /users/@alice\n"),
    (P + "path_parameters_stripped_by_default", C, "GET", "/a;jsessionid=xyz/b", None, True,
     "l7_path: /a/b\n"),
    (P + "path_parameters_stripped_by_default", C, "GET", "/public;x=1/../secret", None, True,
     "l7_path: /secret\n"),
    (P + "non_ascii_raw_byte_rejected", C, "GET", "/a\u00e9", None, False, None),
    (P + "percent_encoded_non_ascii_bytes_round_trip", C, "GET", "/users/caf%C3%A9", None, True,
     "l7_path: /users/caf%C3%A9\n"),
    (P + "empty_and_root_equivalent", C, "GET", "/", None, True, "l7_path: /\n"),
    (P + "path_too_long_rejected", C, "GET", "/" + "a" * 4096, None, False, None),
    (P + "mixed_case_percent_normalizes_to_uppercase", C, "GET", "/a/caf%c3%a9", None, True,
     "l7_path: /a/caf%C3%A9\n"),
    (P + "query_suffix_is_returned_separately", C, "GET", "/a?q=1&r=2", None, True,
     "l7_path: /a\n"),
    (P + "regression_public_slash_dotdot_secret", C, "GET", "/public/../secret", None, True,
     "l7_path: /secret\n"),
    (P + "regression_public_slash_percent_dotdot_secret", C, "GET", "/public/%2e%2e/secret",
     None, True, "l7_path: /secret\n"),
    (P + "regression_public_slash_percent_dotdot_secret", C, "GET", "/public/%2E%2E/secret",
     None, True, "l7_path: /secret\n"),
    (P + "regression_percent_encoded_slash_in_dotdot_rejected", C, "GET",
     "/public/%2E%2E%2Fsecret", None, False, None),
    (P + "regression_double_slash_prefix", C, "GET", "//public/../secret", None, True,
     "l7_path: /secret\n"),
    (P + "regression_dot_slash_dotdot", C, "GET", "/public/./../secret", None, True,
     "l7_path: /secret\n"),
    # '..;' and '.;': OpenShell resolves them as '..'/'.', cordon refuses (DIFFERS)
    (P + "regression_dotdot_with_path_parameter_is_resolved_not_smuggled", C, "GET",
     "/public/..;/secret", None, False, None),
    (P + "regression_dotdot_with_path_parameter_is_resolved_not_smuggled", C, "GET",
     "/public/.;/secret", None, False, None),
    (P + "regression_percent_encoded_dotdot_with_path_parameter", C, "GET",
     "/public/%2e%2e;/secret", None, False, None),
    (P + "regression_percent_encoded_dotdot_with_path_parameter", C, "GET",
     "/public/..%3B/secret", None, False, None),
    (P + "regression_chained_dotdot_with_path_parameters_hits_root_guard", C, "GET",
     "/public/..;/..;/secret", None, False, None),
    (P + "regression_chained_dotdot_with_path_parameters_hits_root_guard", C, "GET",
     "/api/v1/..;/..;/..;/admin/keys", None, False, None),
    (P + "regression_chained_dotdot_with_path_parameters_hits_root_guard", C, "GET", "/..;",
     None, False, None),
    (P + "regression_dotdot_behind_encoded_slash_is_rejected_when_opted_in", S, "GET",
     "/a/..%2F..%2Fsecret", None, False, None),
    (P + "regression_dotdot_behind_encoded_slash_is_rejected_when_opted_in", S, "GET",
     "/a/%2e%2e%2fsecret", None, False, None),
    (P + "encoded_slash_detection_on_canonical_paths_is_exact", S, "GET",
     "/repos/group%2fproject/issues", None, True, "l7_path: /repos/group%2Fproject/issues\n"),
    (P + "canonical_output_never_contains_dot_segments", C, "GET", "/public//../secret", None,
     True, "l7_path: /secret\n"),
    (P + "canonical_output_never_contains_dot_segments", C, "GET", "/a/b/..", None, True,
     "l7_path: /a/\n"),
    # graphql.rs: what the rules see of a GraphQL request
    (G + "classifies_simple_query", "gql.test", "POST", "/graphql",
     '{"query":"query Viewer { viewer { login } }"}', True, None),
    (G + "classifies_mutation_field_not_alias", "gql.test", "POST", "/graphql",
     '{"query":"mutation M { safeAlias: volumeDelete(volumeId:\\"x\\") { id } }",'
     '"operationName":"M"}', False, "mutation M { volumeDelete }"),
    (G + "expands_root_fragments", "gql.test", "POST", "/graphql",
     '{"query":"query Q { ...RootFields } fragment RootFields on Query { viewer '
     'repository(owner:\\"o\\", name:\\"r\\") { id } }"}', True, None),
    (G + "expands_root_fragments", "gql.test", "POST", "/graphql",
     '{"query":"query Q { ...F } fragment F on Query { viewer rateLimit { limit } }"}', False,
     "rateLimit"),
    (G + "multiple_operations_without_name_errors", "gql.test", "POST", "/graphql",
     '{"query":"query A { viewer { login } } query B { rateLimit { limit } }"}', False,
     "multiple operations"),
    (G + "detects_hash_only_apollo_persisted_query", "gql.test", "POST", "/graphql",
     '{"operationName":"Viewer","extensions":{"persistedQuery":{"version":1,'
     '"sha256Hash":"abc123"}}}', False, "hash-only persisted GraphQL query abc123"),
    (G + "graphql_get_rejects_duplicate_query_parameter", "gql.test", "GET",
     "/graphql?query=query+Viewer+%7B+viewer+%7B+login+%7D+%7D&query=mutation+Delete+%7B+"
     "volumeDelete(volumeId%3A%22x%22)+%7B+id+%7D+%7D", None, False, "repeats a parameter"),
    (G + "graphql_get_rejects_ambiguous_persisted_query_ids", "gql.test", "GET",
     "/graphql?id=one&queryId=two", None, False, "combines persisted-query ids"),
    (G + "absolute_form_chunked_graphql_post_is_allowed_by_field_policy", "gql.test", "POST",
     "http://gql.test/graphql", '{"query":"query Viewer { viewer { login } }"}', True, None),
    # jsonrpc.rs: what the rules see of a JSON-RPC/MCP body
    (J + "parses_method_from_request_body", "rpc.test", "POST", "/rpc",
     rpc("initialize", {}), True, None),
    (J + "parses_jsonrpc_response_body_without_method", "rpc.test", "POST", "/rpc",
     rpc(result={"action": "accept", "content": {}}), False, "response sent by the client"),
    (J + "parses_jsonrpc_error_response_body_without_method", "rpc.test", "POST", "/rpc",
     rpc(i="request-1", error={"code": -32603, "message": "failed"}), False,
     "response sent by the client"),
    (J + "inspection_error_kinds_distinguish_invalid_json_and_messages", "rpc.test", "POST",
     "/rpc", "{", False, "not valid JSON"),
    (J + "inspection_error_kinds_distinguish_invalid_json_and_messages", "rpc.test", "POST",
     "/rpc", '{"id":1,"method":"reports.list"}', False, "not JSON-RPC 2.0"),
    (J + "ignores_params_when_extracting_method", "rpc.test", "POST", "/rpc",
     rpc("reports.search", {"query": "quarterly", "filters": {"scope": "workspace/main"}}), True,
     None),
    (J + "ignores_dotted_param_collisions_for_generic_jsonrpc", "rpc.test", "POST", "/rpc",
     rpc("reports.search", {"filters.scope": {"value": "literal"},
                            "filters": {"scope.value": "nested"}}), True, None),
    (J + "mcp_mode_validates_known_methods_and_extracts_tool", "mcp.test", "POST", "/mcp",
     rpc("tools/call", {"name": "search_web", "arguments": {"query": "openshell"}}), True, None),
    (J + "mcp_mode_rejects_non_recommended_tool_names_by_default", "mcp.test", "POST", "/mcp",
     rpc("tools/call", {"name": "read status", "arguments": {}}), False, "strict_tool_names"),
    (J + "mcp_mode_can_disable_strict_tool_names", "mcp-loose.test", "POST", "/mcp",
     rpc("tools/call", {"name": "read status", "arguments": {}}), True, None),
    (J + "mcp_mode_rejects_invalid_known_method_params", "mcp.test", "POST", "/mcp",
     rpc("tools/call", {"arguments": {"query": "openshell"}}), False, "no params.name"),
    (J + "mcp_mode_allows_unknown_extension_methods", "mcp.test", "POST", "/mcp",
     rpc("vendor/extension", {"name": "custom"}), True, None),
    (J + "mcp_mode_ignores_tool_arguments_when_extracting_policy_params", "mcp.test", "POST",
     "/mcp", rpc("tools/call", {"name": "read_status",
                                "arguments": {"scope.key": "literal", "scope": {"key": "n"}}}),
     True, None),
    (J + "accepts_any_valid_jsonrpc_params_shape", "rpc.test", "POST", "/rpc",
     rpc("reports.search", ["ignored", {"nested": True}]), True, None),
    (J + "recognizes_streamable_http_get_receive_streams", "mcp.test", "GET", "/mcp", None, True,
     "l7_requires: Accept: text/event-stream and no body"),
    (J + "bodyless_get_without_sse_accept_is_not_receive_stream", "rpc.test", "GET", "/rpc",
     None, False, "POST only"),
    (J + "rejects_requests_missing_jsonrpc_version", "rpc.test", "POST", "/rpc",
     '{"id":1,"method":"reports.list"}', False, "not JSON-RPC 2.0"),
    (J + "rejects_batch_items_missing_jsonrpc_version", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), '{"id":2,"method":"reports.search"}'), False,
     "not JSON-RPC 2.0"),
    (J + "rejects_unsupported_jsonrpc_version", "rpc.test", "POST", "/rpc",
     '{"jsonrpc":"1.0","id":1,"method":"reports.list"}', False, "not JSON-RPC 2.0"),
    (J + "parses_valid_batch_without_error", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), rpc("reports.search", {"query": "q"}, i=2)), True,
     "batch of 2 calls allowed"),
    (J + "preserves_current_mcp_batch_acceptance", "mcp.test", "POST", "/mcp",
     batch(rpc("tools/call", {"name": "read_status", "arguments": {}}),
           rpc("tools/call", {"name": "search_web", "arguments": {"query": "o"}}, i=2)), True,
     "batch of 2 calls allowed"),
    (J + "parses_batch_with_calls_and_responses", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), rpc(i=2, result={"ok": True})), False,
     "response sent by the client (batch element 1)"),
    (J + "rejects_invalid_jsonrpc_response_body", "rpc.test", "POST", "/rpc",
     rpc(result={}, error={"code": -32603, "message": "failed"}), False,
     "response sent by the client"),
    (J + "rejects_message_with_method_and_result_or_error", "rpc.test", "POST", "/rpc",
     rpc("initialize", result={}), False, "both a method and a result or error"),
    (J + "rejects_message_with_method_and_result_or_error", "rpc.test", "POST", "/rpc",
     rpc("initialize", error={"code": -32603, "message": "failed"}), False,
     "both a method and a result or error"),
    (J + "rejects_batch_item_with_method_and_result", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), rpc("initialize", i=2, result={})), False,
     "both a method and a result or error"),
    # relay.rs: decisions the relay asks the policy for
    (R + "jsonrpc_batch_evaluates_each_call", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), rpc("reports.search", {"query": "private_query_value"}, i=2)),
     True, None),
    (R + "jsonrpc_batch_evaluates_each_call", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), rpc(i=2, result={"ok": True})), False,
     "response sent by the client"),
    (R + "jsonrpc_batch_evaluates_each_call", "rpc.test", "POST", "/rpc",
     batch(rpc("reports.list"), rpc("reports.delete", i=2)), False,
     "reports.delete (batch element 1) matches deny_rules[0]"),
    (R + "jsonrpc_request_params_do_not_affect_method_policy", "rpc.test", "POST", "/rpc",
     rpc("reports.search", {"query": "delete_resource", "filters": {"scope": "w/secret"}}), True,
     None),
    (R + "jsonrpc_request_params_do_not_affect_method_policy", "rpc.test", "POST", "/rpc",
     rpc("reports.search", ["ignored", {"nested": True}]), True, None),
    (R + "mcp_tool_deny_rule_blocks_tools_call", "mcp.test", "POST", "/mcp",
     rpc("tools/call", {"name": "read_status", "arguments": {}}), True, None),
    (R + "mcp_tool_deny_rule_blocks_tools_call", "mcp.test", "POST", "/mcp",
     rpc("tools/call", {"name": "delete_resource", "arguments": {}}), False,
     "(tool delete_resource) matches deny_rules[0]"),
    (R + "jsonrpc_relay_forwards_allowed_method", "rpc.test", "POST", "/rpc", rpc("initialize"),
     True, None),
    (R + "jsonrpc_relay_denies_method_not_in_allow_list", "rpc-audit.test", "POST", "/rpc",
     rpc("reports.search", {"query": "list_repos"}), False, "enforcement: audit (the proxy"),
    (R + "jsonrpc_relay_denies_method_not_in_allow_list", "rpc.test", "POST", "/rpc",
     rpc("reports.archive"), False, "l7_reason_code: l7_denied"),
    (R + "route_selected_jsonrpc_response_frame_hard_denies_under_audit", "rpc-audit.test",
     "POST", "/rpc", rpc(i=7, result={"ok": True}), False, "denied anyway"),
    (R + "mcp_relay_forwards_jsonrpc_response_frame", "mcp.test", "POST", "/mcp",
     rpc(i=7, result={"action": "accept", "content": {}}), False, "response sent by the client"),
    (R + "route_selected_encoded_slash_optin_does_not_leak_to_other_endpoints", "gateway.test",
     "GET", "/admin/x%2Fy", None, False, "encoded slash"),
    (R + "route_selected_encoded_slash_still_allowed_on_opted_in_endpoint", "gateway.test",
     "GET", "/repos/group%2Fproject", None, True, "l7_path: /repos/group%2Fproject\n"),
    (R + "route_selected_encoded_slash_check_survives_credential_redaction", "gateway.test",
     "GET", "/admin/x%2Fy?token=secret", None, False, "encoded slash"),
    (R + "websocket_text_policy_requires_explicit_message_rule", "ws.test", "WEBSOCKET_TEXT",
     "/ws", None, False, "WEBSOCKET_TEXT /ws is not allowed by any rule"),
    (R + "websocket_upgrade_request_is_inspected_and_denied", "ws.test", "GET", "/ws", None,
     False, "the WebSocket upgrade of /ws is refused"),
    (R + "parse_rejection_detail_adds_l7_hint_for_encoded_slash", C, "GET", "/a%2Fb", None,
     False, "allowed only with allow_encoded_slash: true"),
]

BODY_HARNESS = "tests/integration/test_policy_l7_body.py"
RELAYED = ("decided in the relay with a real cordon proxy, a real client and a real server in a "
           "test namespace: " + BODY_HARNESS + " %s")
CREDS = ("credential injection, placeholder resolution, token grants or request signing; "
         "cordon holds no provider credentials and never rewrites a request (the credential "
         "fields load with a warning that they are not applied: doc/policy.md)")
MIDDLEWARE = ("network_middlewares are not run by cordon: each one loads with a warning that "
              "names it (doc/policy.md network_middlewares), so there is no middleware chain, "
              "admission, redaction or re-evaluation of a transformed body")
WSMSG = ("WebSocket message inspection or rewriting after the 101; cordon relays frames as they "
         "are and opens the channel only where client text messages would be allowed "
         "(doc/policy.md protocol: websocket; tests/integration/test_policy_openshell_websocket.py)")
INFER_FRAME = ("inference.local request/response framing; cordon parses requests with llhttp and "
               "relays responses as they stream (src/inference/, src/proxy/infer.c; "
               "tests/integration/test_inference.py %s)")
INFER_SHAPE = ("which inference.local requests are model API calls; cordon matches method and "
               "exact path after dropping the query (src/inference/shape.c; tests/unit/"
               "test_inference.c test_shapes)")

NOT_A_DECISION = {
    M + "parse_l7_config_defaults":
        "the defaults of an endpoint's config: OpenShell's enforcement default is audit, "
        "cordon's enforce (doc/policy.md 'Where we differ'); tls auto in both",
    M + "parse_credential_signing_sigv4": CREDS,
    M + "parse_credential_signing_sigv4_body": CREDS,
    M + "parse_credential_signing_sigv4_no_body": CREDS,
    M + "is_sigv4_false_for_none": CREDS,
    M + "parse_l7_config_no_protocol":
        "an endpoint without protocol is L4 in both: cordon relays it as a tunnel "
        "(LOAD row l4_only_endpoint_untouched; `cordon policy eval` prints 'l7: not inspected')",
    M + "parse_endpoint_credential_guard_handles_l4_and_opt_in": CREDS,
    M + "generic_resolver_enables_rest_body_backstop_without_provider_marker": CREDS,
    M + "parse_l7_config_allow_encoded_slash_defaults_false":
        "allow_encoded_slash defaults to false in both (EVAL rows "
        "encoded_slash_rejected_by_default)",
    M + "parse_l7_config_mcp_strict_tool_names_defaults_true":
        "mcp.strict_tool_names defaults to true in both (EVAL row "
        "mcp_mode_rejects_non_recommended_tool_names_by_default)",
    M + "parse_l7_config_websocket_credential_rewrite_defaults_false": CREDS,
    M + "parse_l7_config_websocket_credential_rewrite_opt_in": CREDS,
    M + "parse_l7_config_request_body_credential_rewrite_defaults_false": CREDS,
    M + "parse_l7_config_request_body_credential_rewrite_opt_in": CREDS,
    M + "parse_l7_config_websocket_graphql_policy_defaults_false":
        "an internal flag for OpenShell's WebSocket message parser; cordon does not parse "
        "messages (" + WSMSG + ")",
    M + "parse_l7_config_websocket_graphql_policy_detects_operation_rules":
        "an internal flag for OpenShell's WebSocket message parser; cordon loads such rules "
        "with a warning and refuses the upgrade (LOAD row "
        "validate_websocket_accepts_graphql_operation_rules, DIFFERS)",
    # path.rs
    P + "rewritten_flag_reflects_transformation":
        "whether OpenShell rewrites the request line; cordon never rewrites it (the request "
        "goes upstream as sent, the rules judge the canonical path: doc/policy.md 'Where we "
        "differ'; EVAL rows show the canonical path judged)",
    P + "path_parameters_preserved_when_disabled":
        "an option of OpenShell's canonicalizer that no policy field reaches; cordon always "
        "strips ';params' (EVAL rows path_parameters_stripped_by_default)",
    # graphql.rs
    G + "chunked_graphql_post_is_normalized_after_inspection":
        RELAYED % "test_chunked_bodies_are_decoded_and_judged (chunked GraphQL/JSON-RPC bodies "
        "are decoded before judging and relayed as sent)",
    G + "absolute_form_chunked_graphql_post_classifies_after_inspection":
        RELAYED % "test_chunked_bodies_from_curl (curl's chunked POST through the forward "
        "proxy, absolute-form)",
}
for n in """websocket_preflight_input_carries_real_sandbox_name
scoped_context_captures_endpoint_resolver_and_revision_together
denied_websocket_preflight_has_no_token_grant_side_effects admitted_websocket_preflight_precedes_token_grant
l7_rest_middleware_redacts_body_before_upstream l7_rest_middleware_acknowledges_expect_continue_before_reading_body
l7_rest_exhausted_middleware_admission_returns_503_before_body_or_upstream
l7_rest_middleware_fail_closed_does_not_reach_upstream audit_endpoint_forwards_policy_denied_request_through_healthy_chain
audit_endpoint_still_enforces_middleware_deny jsonrpc_middleware_fail_closed_does_not_reach_upstream
l7_rest_middleware_over_capacity_fails_closed over_capacity_resolution_honors_on_error
body_limit_ignores_unresolved_entries connect_reacquires_static_credentials_after_blocked_middleware
transformed_jsonrpc_body_is_reevaluated_and_denied transformed_jsonrpc_body_policy_deny_forwards_under_audit
unparseable_transformation_denies_even_under_audit transformed_graphql_body_is_reevaluated_and_denied
sql_passthrough_denies_with_fail_closed_middleware sql_passthrough_relays_with_fail_open_middleware
uninspectable_gate_reflects_chain_on_error body_over_smallest_stage_limit_is_buffered_and_evaluated
all_unresolved_fail_open_forwards_body_unbuffered middleware_keeps_the_raw_request_query
middleware_request_input_preserves_plain_http_scheme middleware_ocsf_events_are_audit_safe
passthrough_relay_runs_middleware_redaction rest_websocket_middleware_inspects_compressed_wss_messages""".split():
    NOT_A_DECISION[R + n] = MIDDLEWARE
for n in """body_only_endpoint_mismatch_returns_typed_403 implicit_sigv4_endpoint_mismatch_returns_typed_403
single_config_jsonrpc_credential_mismatch_is_typed_and_telemetry_safe
single_config_mcp_credential_mismatch_returns_typed_denial
single_config_graphql_credential_mismatch_returns_typed_denial
l7_rest_relay_injects_token_grant_authorization_header l7_rest_relay_token_grant_failure_does_not_forward_request
l7_denial_precedes_credential_endpoint_resolution connect_rejects_credential_request_with_mismatched_host_authority
connect_http10_without_authority_cannot_resolve_static_credential
connect_origin_form_omitted_port_rejects_non_default_tunnel
connect_absolute_form_omitted_port_rejects_non_default_tunnel
connect_http10_without_authority_forwards_credential_free_request
passthrough_relay_injects_token_grant_authorization_header
passthrough_relay_token_grant_failure_returns_bad_gateway_without_forwarding""".split():
    NOT_A_DECISION[R + n] = CREDS
for n in """websocket_rewrite_stays_parsed_when_live_credentials_are_revoked_before_upgrade
route_selected_websocket_rewrites_text_credentials_after_upgrade
route_selected_graphql_websocket_rewrites_connection_init_credentials_after_upgrade""".split():
    NOT_A_DECISION[R + n] = WSMSG
NOT_A_DECISION.update({
    R + "bracketed_ipv6_host_matches_bracket_free_connect_endpoint":
        "Host-header authority matching inside a tunnel; cordon compares the Host of an "
        "inspected request with the CONNECT target, brackets included, and refuses a mismatch "
        "with 403 host_mismatch (src/proxy/decide.c; tests/integration/test_inspect_l7.py)",
    R + "missing_request_default_port_does_not_infer_the_connect_port":
        "Host-header authority matching inside a tunnel (as above); a Host without a port "
        "means the scheme's default port, never the CONNECT port "
        "(tests/integration/test_inspect_l7.py)",
    R + "parse_rejection_detail_adds_passthrough_hint_for_encoded_slash":
        "the hint text of a passthrough (uninspected) endpoint; cordon does not parse requests "
        "on a tunnel, so there is no such rejection (the EVAL row "
        "parse_rejection_detail_adds_l7_hint_for_encoded_slash shows the inspected hint)",
    R + "parse_rejection_detail_preserves_other_errors":
        "the text of other parse rejections; cordon's own details are EVAL rows above "
        "(traversal, control bytes, fragments)",
    R + "jsonrpc_inspection_error_opa_projection_remains_string_or_null":
        "the shape of OpenShell's Rego input; cordon has no Rego input (l7_detail of the EVAL "
        "rows inspection_error_kinds_distinguish_invalid_json_and_messages)",
    R + "jsonrpc_log_records_method_names_not_params":
        "log redaction; cordon's audit event for an L7 decision carries the method and the "
        "JSON-RPC method/tool, never params (src/proxy/l7.c audit_l7; "
        "tests/integration/test_policy_l7_body.py)",
    R + "l7_relay_closes_keep_alive_tunnel_after_policy_generation_change":
        "a reload while a tunnel is open; cordon re-decides kept connections on reload and "
        "closes those the new policy refuses (src/proxy/revoke.c; "
        "tests/integration/test_reload.py)",
    R + "passthrough_relay_closes_keep_alive_tunnel_after_policy_generation_change":
        "the same for an uninspected tunnel (src/proxy/revoke.c; "
        "tests/integration/test_reload.py)",
    R + "route_selected_websocket_upgrade_rejects_invalid_accept_without_forwarding_101":
        "upgrade handshake validation; cordon checks Sec-WebSocket-Accept before relaying a "
        "101 (src/proxy/upgrade.c; tests/integration/test_inspect_upgrade.py, "
        "tests/unit/test_ws_handshake.c)",
})
for n in """admission_exhaustion_event_contains_only_platform_context
websocket_coverage_events_distinguish_selection_from_message_support
websocket_preflight_findings_match_http_mapping websocket_message_findings_match_http_mapping
direct_denial_uses_middleware_response_without_service_text middleware_input_carries_real_sandbox_name
middleware_failure_uses_platform_response_without_policy_guidance
middleware_headers_exclude_origin_and_proxy_credentials middleware_headers_preserve_repeated_names_in_wire_order
middleware_headers_omit_standard_and_connection_nominated_hop_by_hop_fields
middleware_headers_reject_malformed_fields_instead_of_dropping_them""".split():
    NOT_A_DECISION[MW + n] = MIDDLEWARE
for n in """dynamic_credential_key_matches_endpoint_host_port_and_path
dynamic_credential_key_matches_wildcard_hosts_and_empty_path
dynamic_credential_key_matches_case_insensitive_intra_label_wildcard
dynamic_credential_key_matches_double_wildcard_hosts dynamic_credential_match_score_prefers_path_specific_key
inject_token_grant_header_replaces_existing_authorization
inject_token_grant_header_replaces_existing_authorization_with_ows_before_colon
token_grant_header_rejects_framing_and_connection_headers
inject_token_grant_header_preserves_header_terminator_before_body
inject_token_grant_header_uses_custom_header_style inject_token_grant_header_rejects_malformed_access_token
inject_if_needed_uses_configured_resolver inject_if_needed_rejects_malformed_resolver_token""".split():
    NOT_A_DECISION[TG + n] = CREDS
for n in """detect_openai_chat_completions detect_openai_responses detect_anthropic_messages
detect_with_query_string no_match_for_get detect_get_models detect_get_model_details
detect_openai_embeddings""".split():
    NOT_A_DECISION[INF + n] = INFER_SHAPE
NOT_A_DECISION[INF + "protocol_framing_classification"] = INFER_FRAME % (
    "test_streams_relayed_per_api: which APIs stream and which answer one body")
for n in """parse_simple_post_request parse_incomplete_headers parse_chunked_decodes_body
parse_chunked_incomplete parse_chunked_multi_chunk_body parse_chunked_rejects_too_many_chunks
parse_chunked_within_chunk_count_limit te_substring_not_chunked reject_differing_duplicate_content_length
accept_identical_duplicate_content_length reject_non_numeric_content_length
reject_two_non_numeric_content_lengths reject_dual_content_length_and_transfer_encoding
reject_dual_transfer_encoding_and_content_length""".split():
    NOT_A_DECISION[INF + n] = INFER_FRAME % (
        "test_chunked_request_bodies_are_routed; tests/unit/test_http_message.c "
        "test_smuggling_refused")
for n in """format_response_basic format_response_header_chunked
format_response_header_strips_upstream_framing format_chunk_basic format_chunk_empty
format_chunk_terminator_value format_chunk_large_hex""".split():
    NOT_A_DECISION[INF + n] = INFER_FRAME % "test_streams_relayed_per_api"
for n in """format_sse_error_produces_valid_sse_json format_sse_error_escapes_quotes_in_reason
format_sse_error_escapes_control_characters_in_reason format_sse_error_does_not_inject_extra_sse_events""".split():
    NOT_A_DECISION[INF + n] = INFER_FRAME % (
        "test_mid_stream_kill_ends_with_error_event, test_idle_backend_ends_with_error_event "
        "(the error event is built with jansson, so quotes and control characters are escaped)")

BEDROCK = ("AWS Bedrock InvokeModel on inference.local: OpenShell routes it; cordon has no such "
           "API shape, so the request gets an error in the caller's shape and nothing leaves "
           "(stricter; tests/unit/test_inference.c test_shapes)")
DIFFERS = {
    M + "validate_websocket_accepts_graphql_operation_rules":
        "loads in both; cordon warns that GraphQL-over-WebSocket rules are not applied and "
        "refuses the upgrade (it does not inspect messages) - stricter (LOAD row)",
    M + "expand_unsupported_access_preset_warns_and_leaves_rules_unexpanded":
        "OpenShell warns and leaves the endpoint without rules; cordon refuses the unknown "
        "access value at load with the allowed values (LOAD row)",
    M + "validate_query_glob_warns_on_unclosed_bracket":
        "OpenShell warns and the glob never compiles at run time; cordon refuses it at load "
        "(LOAD row)",
    M + "validate_query_glob_warns_on_unclosed_brace":
        "OpenShell warns; cordon refuses '{' alternatives in value globs at load (LOAD row)",
    M + "validate_query_any_warns_on_malformed_glob_item":
        "OpenShell warns; cordon refuses the malformed item at load (LOAD row)",
    P + "empty_and_root_equivalent":
        "OpenShell reads an empty target as '/'; cordon refuses it (an HTTP/1.1 request line "
        "always has a target; EVAL row for '/')",
    P + "regression_dotdot_with_path_parameter_is_resolved_not_smuggled":
        "OpenShell resolves '..;' as '..' and '.;' as '.'; cordon refuses both (EVAL rows) - "
        "stricter",
    P + "regression_percent_encoded_dotdot_with_path_parameter":
        "the same for '%2e%2e;' and '..%3B': refused (EVAL rows)",
    R + "mcp_relay_forwards_jsonrpc_response_frame":
        "OpenShell relays a JSON-RPC response POSTed by an MCP client; cordon refuses it "
        "(doc/policy.md 'Where we differ'; EVAL row)",
    R + "websocket_upgrade_request_is_inspected_and_denied":
        "OpenShell's test denies the upgrade with a fail-closed middleware; cordon runs no "
        "middleware, and refuses this upgrade anyway: with only {GET /ws} client text messages "
        "would not be allowed (EVAL row) - stricter",
    INF + "detect_aws_bedrock_invoke": BEDROCK,
    INF + "aws_bedrock_invoke_stream_pattern_is_deferred": BEDROCK,
    INF + "aws_bedrock_invoke_with_query_string": BEDROCK,
    INF + "aws_bedrock_rejects_empty_model_id": BEDROCK,
    INF + "aws_bedrock_rejects_multi_segment_model_id": BEDROCK,
    INF + "aws_bedrock_rejects_get": BEDROCK,
    INF + "aws_bedrock_rejects_unknown_action": BEDROCK,
    INF + "aws_bedrock_invoke_is_buffered": BEDROCK,
}

UPSTREAM = open(__file__.replace("test_policy_openshell_l7.py",
                                 "openshell_l7_tests.txt")).read().split()
COUNTS = {"mod.rs": 91, "path.rs": 31, "graphql.rs": 10, "jsonrpc.rs": 24, "relay.rs": 69,
          "middleware.rs": 11, "inference.rs": 42, "token_grant_injection.rs": 13}


def test_every_upstream_test_is_accounted_for():
    assert len(UPSTREAM) == 291 and len(set(UPSTREAM)) == 291
    for f, n in COUNTS.items():
        assert sum(1 for u in UPSTREAM if u.startswith(f + "::")) == n, f
    rows = {r[0] for r in LOAD} | {r[0] for r in EVAL}
    decided = rows - set(DIFFERS)
    assert not (decided & set(NOT_A_DECISION))
    assert not (set(DIFFERS) & set(NOT_A_DECISION))
    covered = decided | set(NOT_A_DECISION) | set(DIFFERS)
    assert [u for u in UPSTREAM if u not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(decided) + len(NOT_A_DECISION) + len(DIFFERS) == 291


def _policy(endpoints):
    return ("version: 1\nnetwork_policies:\n  test:\n    endpoints:\n" +
            "".join("      - %s\n" % e for e in endpoints) +
            "    binaries: [{path: /usr/bin/curl}]\n")


@pytest.mark.parametrize("row", LOAD, ids=["%s-%d" % (r[0], i) for i, r in enumerate(LOAD)])
def test_load_case(cordon_bin, tmp_path, row):
    name, endpoints, expect, needle = row
    f = tmp_path / "policy.yaml"
    f.write_text(_policy(endpoints), encoding="utf-8")
    r = subprocess.run([cordon_bin, "policy", "check", str(f)], capture_output=True, text=True,
                       timeout=20)
    if expect == "error":
        assert r.returncode == 1, (name, r.stderr)
        lines = [l for l in r.stderr.splitlines() if ": error: " in l]
    else:
        assert r.returncode == 0, (name, r.stderr)
        lines = [l for l in r.stderr.splitlines() if ": warning: " in l]
        if expect == "ok":
            assert lines == [], (name, r.stderr)
    if needle:
        hits = [l for l in lines if needle in l]
        assert hits, (name, needle, r.stderr)
        # every message names file:line:column
        assert all(l.startswith(str(f) + ":") and l.split(":")[1].isdigit() for l in hits), hits


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("openshell-l7") / "l7.yaml"
    p.write_text(FIXTURE, encoding="utf-8")
    return str(p)


def test_fixture_loads(cordon_bin, fixture_file):
    r = subprocess.run([cordon_bin, "policy", "check", fixture_file], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def _eval(cordon_bin, fixture_file, host, method, target, body=None):
    cmd = [cordon_bin, "policy", "eval", fixture_file, "--host", host, "--port", "443",
           "--binary", CURL, "--method", method, "--path", target]
    if body is not None:
        cmd += ["--body", body]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("row", EVAL, ids=["%s-%d" % (r[0], i) for i, r in enumerate(EVAL)])
def test_eval_case(cordon_bin, fixture_file, row):
    name, host, method, target, body, allow, needle = row
    r = _eval(cordon_bin, fixture_file, host, method, target, body)
    audit = "enforcement: audit (the proxy" in r.stdout
    assert r.returncode == (0 if allow or audit else 1), (name, r.stdout, r.stderr)
    assert ("l7: allow\n" if allow else "l7: deny\n") in r.stdout, (name, r.stdout)
    if needle:
        assert needle in r.stdout, (name, needle, r.stdout)


# ---- #13: value globs as OpenShell matches them (query values, MCP tools,
# JSON-RPC-family names): '*' stops at '.', '**' only as a whole segment, and
# path globs' trailing '/**' needs the '/'. Not tied to one upstream test.
GLOBS = """\
version: 1
network_policies:
  g:
    endpoints:
      - host: q.test
        port: 443
        protocol: rest
        rules:
          - allow: {method: GET, path: /v, query: {ver: "v1.*"}}
          - allow: {method: GET, path: /any, query: {ver: "v1.**"}}
          - allow: {method: GET, path: /mid, query: {ver: "v**9"}}
          - allow: {method: GET, path: /one, query: {c: "[a-c]?"}}
          - allow: {method: GET, path: "/repos/**"}
          - allow: {method: GET, path: "/x**"}
        deny_rules:
          - {method: GET, path: /v, query: {ver: "v1.9*"}}
      - host: mcp.test
        port: 443
        path: /mcp
        protocol: mcp
        rules:
          - allow: {method: tools/call, tool: "github.*"}
    binaries: [{path: /usr/bin/curl}]
"""
GLOB_ROWS = [
    ("q.test", "/v?ver=v1.2", None, True),
    ("q.test", "/v?ver=v1.2.3", None, False),       # '*' stops at '.'
    ("q.test", "/v?ver=v1.", None, True),
    ("q.test", "/v?ver=v1.9", None, False),         # the deny rule
    ("q.test", "/v?ver=v1.2&ver=v1.9x", None, False),  # any value matching a deny denies
    ("q.test", "/any?ver=v1.2.3", None, True),      # '.**' crosses
    ("q.test", "/any?ver=v1", None, False),         # but needs the '.'
    ("q.test", "/mid?ver=v19", None, True),         # '**' inside a segment is '*'
    ("q.test", "/mid?ver=v1.9", None, False),
    ("q.test", "/one?c=b1", None, True),
    ("q.test", "/one?c=b.", None, False),           # '?' never matches '.'
    ("q.test", "/one?c=d1", None, False),
    ("q.test", "/one?c=b%FF", None, False),         # not UTF-8 after decoding: refused
    ("q.test", "/repos/a/b", None, True),
    ("q.test", "/repos", None, False),              # '/repos/**' needs the '/'
    ("q.test", "/repos/", None, True),
    ("q.test", "/xyz", None, True),
    ("q.test", "/x/y", None, False),                # '/x**' is '/x*'
    ("mcp.test", "/mcp", '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                         '"params":{"name":"github.search"}}', True),
    ("mcp.test", "/mcp", '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                         '"params":{"name":"github.repo.delete"}}', False),
]


@pytest.fixture(scope="module")
def globs_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("openshell-globs") / "globs.yaml"
    p.write_text(GLOBS, encoding="utf-8")
    return str(p)


@pytest.mark.parametrize("row", GLOB_ROWS, ids=["%s%s" % (r[0], r[1]) for r in GLOB_ROWS])
def test_value_glob_case(cordon_bin, globs_file, row):
    host, target, body, allow = row
    r = _eval(cordon_bin, globs_file, host, "POST" if body else "GET", target, body)
    assert r.returncode == (0 if allow else 1), (row, r.stdout, r.stderr)
    assert ("l7: allow\n" if allow else "l7: deny\n") in r.stdout, (row, r.stdout)


def test_value_glob_errors_name_the_position(cordon_bin, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(GLOBS.replace('"v1.*"}', '"v{1,2}"}').replace('"github.*"', '"[.]x"'),
                 encoding="utf-8")
    r = subprocess.run([cordon_bin, "policy", "check", str(f)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1, r.stderr
    assert "%s:9:" % f in r.stderr and "alternatives '{a,b}' are not supported" in r.stderr
    assert "'.' is the delimiter" in r.stderr, r.stderr
