"""OpenShell's L7 REST relay tests, walked one by one (#13).

Every test of NVIDIA/OpenShell
crates/openshell-supervisor-network/src/l7/rest.rs (149 at the revision
walked, 2f7fb65 of 2026-08-21; names in openshell_rest_tests.txt) is either

  CASES           a decision it asserts (how a request target's path and
                  query are read before the rules judge them), re-expressed
                  against our own fixture policy and asked of the real binary
                  with `cordon policy eval`;
  NOT_A_DECISION  a test of the relay, not of a policy decision: request and
                  response framing, upgrade handshakes, the 403 body's shape,
                  credential injection, middleware, reload guards — with what
                  cordon does about the same concern and where that is tested.

No test of rest.rs is a deliberate difference in a decision. Two relay
behaviours differ and are in doc/policy.md "Where we differ": cordon does
not rewrite the canonical path onto the wire (the request goes as sent; the
rules judge the canonical path), and cordon never injects credentials.

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step: len(CASES by name) + len(NOT_A_DECISION) == 149."""
import subprocess

import pytest

CURL = "/usr/bin/curl"

# The semantics of rest.rs's targets, in our own fixture: a REST endpoint
# whose rules single out the paths and query values the upstream tests parse.
FIXTURE = """\
version: 1
network_policies:
  q:
    endpoints:
      - host: api.query.test
        port: 443
        protocol: rest
        rules:
          - allow: {method: GET, path: /download, query: {tag: "a*"}}
          - allow: {method: GET, path: /skill, query: {slug: "my/skill", name: "Foo Bar"}}
          - allow: {method: GET, path: /search, query: {q: "a+b"}}
          - allow: {method: GET, path: /cafe, query: {q: "caf\u00e9"}}
          - allow: {method: GET, path: /empty, query: {tag: ""}}
          - allow: {method: GET, path: /flag, query: {verbose: ""}}
          - allow: {method: GET, path: /any}
          - allow: {method: GET, path: /secret}
          - allow: {method: GET, path: /v1/list, query: {limit: "1*"}}
          - allow: {method: GET, path: /api/v1/users}
          - allow: {method: GET, path: "/fetch/**"}
          - allow: {method: GET, path: /split, query: {slug: "my/skill", tag: {any: [foo, bar]}}}
      - host: gitlab.test
        port: 443
        protocol: rest
        allow_encoded_slash: true
        rules: [{allow: {method: GET, path: "/api/v4/projects/*"}}]
      - host: gitlab-strict.test
        port: 443
        protocol: rest
        rules: [{allow: {method: GET, path: "/api/v4/projects/**"}}]
      - host: origin.test
        port: 443
        protocol: rest
        rules: [{allow: {method: GET, path: /, query: {next: "http://example.**"}}}]
    binaries: [{path: /usr/bin/curl}]
"""

Q = "api.query.test"
# (upstream test, host, target, allow, needle in stdout)
C = [
    # parse_target_query: repeated keys, all values must match an allow rule
    ("parse_target_query_parses_duplicate_values", Q, "/download?tag=ab&tag=ac", True, None),
    ("parse_target_query_parses_duplicate_values", Q, "/download?tag=ab&tag=b", False, None),
    # '%2F' and '+' decoded before matching (form encoding)
    ("parse_target_query_decodes_percent_and_plus", Q, "/skill?slug=my%2Fskill&name=Foo+Bar",
     True, None),
    ("parse_target_query_decodes_percent_and_plus", Q, "/skill?slug=my%2Fskill&name=Foo%20Bar",
     True, None),
    ("parse_target_query_literal_plus_via_percent_encoding", Q, "/search?q=a%2Bb", True, None),
    ("parse_target_query_literal_plus_via_percent_encoding", Q, "/search?q=a+b", False, None),
    ("parse_target_query_empty_value", Q, "/empty?tag=", True, None),
    ("parse_target_query_empty_value", Q, "/empty?tag=x", False, None),
    ("parse_target_query_key_without_value", Q, "/flag?verbose", True, None),
    ("parse_target_query_unicode_after_decoding", Q, "/cafe?q=caf%C3%A9", True, None),
    ("parse_target_query_unicode_after_decoding", Q, "/cafe?q=cafe", False, None),
    ("parse_target_query_empty_query_string", Q, "/any?", True, "l7_path: /any"),
    ("parse_target_query_rejects_malformed_percent_encoding", Q, "/download?tag=a%2", False, None),
    ("parse_target_query_rejects_malformed_percent_encoding", Q, "/download?slug=bad%2&tag=ab",
     False, None),
    # parse_http_request: the rules judge the canonical path
    ("parse_http_request_canonicalizes_target_and_rewrites_raw_header", Q, "/public/../secret",
     True, "l7_path: /secret"),
    ("parse_http_request_canonicalization_preserves_query_string", Q,
     "/public/../v1/list?limit=10&sort=asc", True, "l7_path: /v1/list"),
    ("parse_http_request_canonicalization_preserves_query_string", Q,
     "/public/../v1/list?limit=20", False, None),
    ("parse_http_request_leaves_canonical_input_byte_for_byte", Q, "/api/v1/users", True,
     "l7_path: /api/v1/users"),
    ("parse_http_request_rejects_traversal_above_root", Q, "/..", False, None),
    ("parse_http_request_rejects_traversal_above_root", Q, "/../secret", False, None),
    ("parse_http_request_accepts_encoded_slash_when_endpoint_opts_in", "gitlab.test",
     "/api/v4/projects/group%2Fproject", True, "l7_path: /api/v4/projects/group%2Fproject"),
    ("parse_http_request_rejects_encoded_slash_by_default", "gitlab-strict.test",
     "/api/v4/projects/group%2Fproject", False, None),
    ("parse_http_request_rejects_encoded_slash_by_default", "gitlab-strict.test",
     "/api/v4/projects/group%2fproject", False, None),
    ("parse_http_request_keeps_embedded_url_in_origin_form_path", Q,
     "/fetch/http://example.test?next=http://other.test", True,
     "l7_path: /fetch/http:/example.test"),
    ("parse_http_request_splits_path_and_query_params", Q,
     "/split?slug=my%2Fskill&tag=foo&tag=bar", True, "l7_path: /split"),
    ("parse_http_request_splits_path_and_query_params", Q,
     "/split?slug=my%2Fskill&tag=foo&tag=baz", False, None),
    # an embedded URL keeps a target origin-form: judged on the path "/"
    ("origin_form_targets_with_embedded_urls_use_host_authority", "origin.test",
     "/?next=http://example.test", True, "l7_path: /"),
]

FRAMING = ("request framing in the relay, not a policy decision; cordon parses request heads "
           "with llhttp and refuses Content-Length with Transfer-Encoding, differing or invalid "
           "Content-Length, broken chunk framing, obs-fold and bare LF before anything reaches "
           "the upstream (src/http/message.c; tests/unit/test_http_message.c "
           "test_smuggling_refused/test_bad_chunk/test_chunk_guard, "
           "tests/integration/test_proxy_chunked.py, test_proxy_edge.py "
           "test_bare_lf_head_is_answered_400_at_once)")
BODY = ("request body collection, not a policy decision; cordon reads GraphQL/JSON-RPC/MCP "
        "bodies (chunked decoded) within the endpoint's limit before judging them "
        "(src/proxy/reqbody.c; tests/integration/test_policy_l7_body.py, test_proxy_chunked.py)")
RESPONSE = ("response framing in the relay, not a policy decision; cordon frames responses with "
            "llhttp (src/http/message.c; tests/unit/test_http_message.c test_response_framing, "
            "tests/integration/test_inspect_stream.py, test_proxy_edge.py "
            "test_forward_framing_head_204_and_close)")
UPGRADE = ("the upgrade handshake, not a policy decision; cordon offers upstream only a "
           "WebSocket upgrade the client asked for, never h2c, cuts off an unsolicited 101 and "
           "relays bytes that follow a 101 (src/proxy/upgrade.c; "
           "tests/integration/test_inspect_upgrade.py, tests/unit/test_ws_handshake.c)")
WSMSG = ("WebSocket extension negotiation and message rewriting for OpenShell's message "
         "inspection; cordon does not inspect or rewrite WebSocket messages (doc/policy.md "
         "protocol: websocket) and relays frames after the 101 as they are")
DENYBODY = ("the shape of the 403 body; cordon's own 403 JSON contract (error, reason_code, "
            "detail, hint, host, port, binary, policy, method, path) is tested in "
            "tests/integration/test_inspect_l7.py and test_proxy_deny.py")
CREDS = ("credential placeholder rewriting, injection or request signing; cordon holds no "
         "provider credentials and never rewrites a request (the credential fields load with a "
         "warning that they are not applied, doc/policy.md)")
MIDDLEWARE = ("network_middlewares are not run by cordon: loaded with a warning per middleware "
              "(doc/policy.md network_middlewares)")
HOPBYHOP = ("hop-by-hop header handling in the relay, not a policy decision; cordon removes "
            "Connection-nominated and proxy headers from forwarded absolute-form requests "
            "(src/proxy/forward.c) and keeps only the WebSocket upgrade token in an inspected "
            "request's Upgrade/Connection (src/proxy/upgrade.c, "
            "tests/integration/test_inspect_upgrade.py test_mixed_offer_keeps_only_websocket); "
            "other headers of an inspected request go upstream as sent")

NOT_A_DECISION = {}
for n in """parse_content_length buffered_request_parser_uses_shared_framing_and_query_parsing
buffered_request_parser_rejects_missing_header_terminator
buffered_request_parser_rejects_malformed_header_fields
buffered_request_parser_rejects_malformed_request_lines parse_chunked parse_no_body
reject_dual_content_length_and_transfer_encoding reject_dual_transfer_encoding_and_content_length
reject_differing_duplicate_content_length accept_identical_duplicate_content_length
reject_non_numeric_content_length reject_valid_then_invalid_content_length
reject_unsupported_transfer_encoding_sequences reject_multiple_chunked_transfer_encoding_fields
reject_content_length_with_unsupported_transfer_encoding
extreme_content_length_is_rejected_before_allocation reject_bare_lf_in_headers
reject_invalid_utf8_in_headers reject_malformed_header_fields_before_forwarding
reject_invalid_http_version parse_http_request_does_not_overread_next_request
http_method_detection http2_prior_knowledge_detection""".split():
    NOT_A_DECISION[n] = FRAMING
for n in "collect_chunked_body_decodes_payload_bytes collect_chunked_body_reads_payload_in_blocks".split():
    NOT_A_DECISION[n] = BODY
for n in """test_parse_status_code test_parse_connection_close test_response_is_event_stream
test_is_bodiless_response relay_response_no_framing_with_connection_close_reads_until_eof
relay_response_no_framing_event_stream_reads_until_eof
relay_response_no_framing_event_stream_survives_idle_gap
relay_response_no_framing_without_connection_close_treats_as_empty
relay_response_head_with_content_length_no_body relay_response_204_no_body
relay_response_chunked_body_complete_in_overflow
relay_response_chunked_with_trailers_does_not_wait_for_eof relay_response_normal_content_length
relay_response_connection_close_with_content_length""".split():
    NOT_A_DECISION[n] = RESPONSE
for n in """relay_response_101_switching_protocols_returns_upgraded_with_overflow
relay_response_101_no_overflow relay_rejects_unsolicited_101_without_client_upgrade_header
relay_accepts_101_with_client_upgrade_header client_requested_upgrade_detects_websocket_headers
client_requested_upgrade_rejects_missing_upgrade_header
client_requested_upgrade_rejects_upgrade_without_connection
client_requested_upgrade_handles_comma_separated_connection
request_is_websocket_upgrade_detects_websocket_upgrade request_is_websocket_upgrade_rejects_missing_key
request_is_websocket_upgrade_rejects_wrong_method request_is_websocket_upgrade_rejects_wrong_version
validate_websocket_upgrade_ignores_plain_rest_request
validate_websocket_upgrade_ignores_non_websocket_upgrade
h2c_upgrade_detection_requires_upgrade_token_and_connection_upgrade
parse_websocket_upgrade_request_tracks_subprotocols strict_response_validation_allows_offered_subprotocol
strict_response_validation_rejects_unoffered_subprotocol
strict_response_validation_rejects_multiple_subprotocol_headers websocket_accept_matches_rfc_6455_sample
strict_response_validation_rejects_missing_upgrade_headers
opted_in_websocket_relay_rejects_invalid_upgrade_before_upstream_write
opted_in_websocket_relay_rejects_invalid_accept_before_forwarding_101""".split():
    NOT_A_DECISION[n] = UPGRADE
for n in """opted_in_websocket_relay_strips_request_extensions_and_rejects_response_extensions
permessage_deflate_mode_allows_supported_no_context_takeover
websocket_conformance_preserve_mode_relays_raw_frames_without_validation
websocket_conformance_rewrite_mode_rewrites_text_after_upgrade
websocket_conformance_deflate_rewrites_compressed_text_after_upgrade
permessage_deflate_response_must_match_exact_safe_offer
permessage_deflate_offer_requires_client_no_context_takeover
permessage_deflate_offer_canonicalizes_safe_params permessage_deflate_offer_rejects_duplicate_safe_params
permessage_deflate_offer_rejects_quoted_values permessage_deflate_response_accepts_reordered_safe_params
permessage_deflate_response_rejects_duplicate_safe_params
preserve_mode_leaves_malformed_extension_response_raw strip_websocket_extensions_removes_extension_negotiation
strip_websocket_extensions_leaves_non_websocket_request_unchanged""".split():
    NOT_A_DECISION[n] = WSMSG
for n in """deny_response_body_is_agent_readable_and_redacted
deny_response_body_omits_agent_guidance_when_policy_advisor_is_off
shared_agent_proposals_state_gates_policy_local_and_l7_next_steps
send_deny_response_writes_structured_json_403""".split():
    NOT_A_DECISION[n] = DENYBODY
for n in """credential_rewrite_rejects_aggregate_chunk_extension_overflow
credential_rewrite_chunked_request_with_trailers_is_rejected
rewrite_header_block_resolves_placeholder_auth_headers
relay_request_with_resolver_rewrites_credential_placeholders
relay_request_without_resolver_fails_closed_on_placeholder
streamed_body_guard_detects_marker_split_across_reads
streamed_body_guard_detects_fully_encoded_marker_completed_by_one_byte
guarded_content_length_does_not_forward_placeholder guarded_chunked_body_detects_encoded_placeholder
relay_request_body_rewrites_provider_alias_header_and_urlencoded_token
relay_request_body_rewrite_normalizes_chunked_payload
relay_request_body_rewrites_percent_encoded_canonical_urlencoded_token
relay_request_body_unresolved_alias_fails_before_upstream_write
relay_request_body_unresolved_encoded_canonical_fails_before_upstream_write
relay_injects_bearer_header_credential relay_injects_exact_header_credential
relay_injects_basic_auth_credential relay_injects_query_param_credential
relay_sigv4_body_signing_signs_empty_body_without_content_length
relay_injects_url_path_credential_telegram_style relay_injects_url_path_credential_standalone_segment
relay_injects_combined_path_and_header_credentials relay_fail_closed_rejects_unresolved_placeholder
relay_fail_closed_rejects_unresolved_path_placeholder detect_payload_mode_unsigned_payload
detect_payload_mode_streaming_unsigned_trailer detect_payload_mode_hex_hash_is_sign_body
detect_payload_mode_rejects_chunk_signed_streaming detect_payload_mode_rejects_unknown_streaming
detect_payload_mode_absent_with_content_length
detect_payload_mode_absent_without_content_length""".split():
    NOT_A_DECISION[n] = CREDS
for n in """ordered_header_mutations_replay_against_raw_request
middleware_deny_response_identifies_config_without_policy_remediation
middleware_fixed_read_ahead_consumes_expect_continue middleware_chunked_read_ahead_consumes_expect_continue
middleware_chunked_request_with_trailers_is_rejected middleware_chunked_wire_body_at_cap_is_allowed
middleware_chunked_wire_body_over_cap_is_rejected middleware_chunked_body_can_exceed_credential_rewrite_limit
middleware_chunked_invalid_size_is_not_over_capacity
middleware_chunked_over_capacity_still_maps_to_buffer_over_capacity
middleware_none_body_with_header_overshoot_is_rejected
middleware_none_body_without_overshoot_buffers_empty""".split():
    NOT_A_DECISION[n] = MIDDLEWARE
for n in """strip_connection_nominated_headers_before_forwarding
connection_sanitization_preserves_only_websocket_upgrade_exception
connect_rest_relay_strips_connection_nominated_headers_upstream
connect_rest_relay_canonicalizes_websocket_upgrade_headers""".split():
    NOT_A_DECISION[n] = HOPBYHOP
NOT_A_DECISION.update({
    "relay_request_guard_blocks_stale_generation_before_upstream_write":
        "reload generation guard; cordon: a connection keeps the policy snapshot it started "
        "with and a reload swaps one pointer (doc/policy.md Runtime)",
    "parse_http_request_rejects_absolute_authority_mismatched_with_host":
        "inside a tunnel cordon refuses any absolute-form target (400 bad_target) and a Host "
        "naming another authority (403 host_mismatch) before the rules are asked "
        "(src/proxy/decide.c; tests/integration/test_inspect_l7.py); a forward request takes "
        "its host from the URI and replaces Host (test_proxy_edge.py "
        "test_forward_authority_confusion, test_forward_host_header_replaced_by_target)",
    "parse_http_request_preserves_http_10_version_on_rewrite":
        "request-line rewriting; cordon never rewrites the request line (the request goes "
        "upstream as sent, the rules judge the canonical path: doc/policy.md 'Where we differ')",
})

UPSTREAM = open(__file__.replace("test_policy_openshell_rest.py",
                                 "openshell_rest_tests.txt")).read().split()


def test_every_upstream_test_is_accounted_for():
    named = {c[0] for c in C}
    assert len(UPSTREAM) == 149 and len(set(UPSTREAM)) == 149
    covered = named | set(NOT_A_DECISION)
    assert not (named & set(NOT_A_DECISION))
    assert [n for n in UPSTREAM if n not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(named) + len(NOT_A_DECISION) == 149


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("openshell-rest") / "rest.yaml"
    p.write_text(FIXTURE, encoding="utf-8")
    return str(p)


def test_fixture_loads(cordon_bin, fixture_file):
    r = subprocess.run([cordon_bin, "policy", "check", fixture_file], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("row", C, ids=["%s-%d" % (c[0], i) for i, c in enumerate(C)])
def test_rest_case(cordon_bin, fixture_file, row):
    name, host, target, allow, needle = row
    r = subprocess.run([cordon_bin, "policy", "eval", fixture_file, "--host", host, "--port",
                        "443", "--binary", CURL, "--method", "GET", "--path", target],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == (0 if allow else 1), (name, r.stdout, r.stderr)
    assert ("l7: allow" if allow else "l7: deny") in r.stdout, (name, r.stdout)
    if needle:
        assert needle in r.stdout, (name, r.stdout)
