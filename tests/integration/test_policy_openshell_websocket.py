"""OpenShell's WebSocket relay tests, walked one by one (#13).

Every test of NVIDIA/OpenShell
crates/openshell-supervisor-network/src/l7/websocket.rs (66 at the revision
walked, 2f7fb65 of 2026-08-21; names in openshell_websocket_tests.txt) is
one of

  CASES           a decision it asserts, re-expressed against our own fixture
                  and asked of the real binary with `cordon policy eval`;
  NOT_A_DECISION  a test of OpenShell's parsed WebSocket relay (frame
                  validation, message assembly, credential rewriting,
                  middleware, logging, reload of a live session), with what
                  cordon does about the same concern and where it is tested;
  DIFFERS         a decision cordon makes differently on purpose, never wider
                  (also in doc/policy.md "Where we differ").

cordon does not inspect WebSocket messages: after the 101 it relays frames as
they are (OpenShell's "preserve" mode), following only frame headers to put
its own close frames between them (src/proxy/wsrelay.c). Where OpenShell
would judge each client message against GraphQL operation rules, cordon
refuses the upgrade instead.

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step: len(CASES by name) + len(NOT_A_DECISION) + len(DIFFERS) == 66."""
import subprocess

import pytest

CURL = "/usr/bin/curl"

FIXTURE = """\
version: 1
network_policies:
  ws:
    endpoints:
      - host: realtime.test
        port: 443
        path: /graphql
        protocol: websocket
        rules:
          - allow: {method: GET, path: /graphql}
          - allow: {operation_type: subscription, fields: [messageAdded]}
          - allow: {operation_type: query, fields: [viewer]}
      - host: plain-ws.test
        port: 443
        protocol: websocket
        rules:
          - allow: {method: GET, path: /socket}
          - allow: {method: WEBSOCKET_TEXT, path: /socket}
    binaries: [{path: /usr/bin/curl}]
"""

# (upstream test, host, target, allow, needle in stdout)
C = [
    # the unlisted field is never sent: the upgrade itself is refused
    ("graphql_websocket_policy_denies_unlisted_operation_field", "realtime.test", "/graphql",
     False, "GraphQL-over-WebSocket"),
]

FRAMES = ("frame validation of OpenShell's parsed relay, which runs only where it inspects or "
          "rewrites messages (its preserve mode relays raw frames unvalidated: "
          "websocket_conformance_preserve_mode_relays_raw_frames_without_validation in "
          "rest.rs); cordon never inspects messages and relays frames as they are, following "
          "frame headers only to place its own close frames (src/proxy/wsrelay.c, "
          "tests/integration/test_inspect_ws_end.py)")
CREDS = ("credential placeholder rewriting in WebSocket messages; cordon holds no provider "
         "credentials and never rewrites a message (credential fields load with a warning, "
         "doc/policy.md)")
MIDDLEWARE = ("network_middlewares are not run by cordon: loaded with a warning per middleware "
              "(doc/policy.md network_middlewares)")
ASSEMBLY = ("message assembly budget of the parsed relay; cordon assembles no messages (frames "
            "are relayed as they arrive)")
RELOAD = ("a policy reload during a live WebSocket session; cordon: a connection keeps the "
          "policy snapshot it started with (doc/policy.md Runtime), and `cordon run` ends "
          "connections a reload no longer allows (tests/integration/test_run_revoke.py)")
LOGGING = ("what the logs of inspected messages contain; cordon inspects no message, so no "
           "payload reaches its audit log (the close event carries frame counts only, "
           "src/proxy/wsrelay.c)")
CLASSIFY = ("the GraphQL-over-WebSocket message classifier; cordon refuses the upgrade of an "
            "endpoint with GraphQL-over-WebSocket operation rules, so no message is classified "
            "(graphql_websocket_policy_denies_unlisted_operation_field row)")

NOT_A_DECISION = {}
for names, why in (
    ("""rejects_rsv_bits rejects_unmasked_client_frame rejects_invalid_utf8_text
rejects_oversize_text_message rejects_reserved_opcode rejects_continuation_without_active_message
rejects_new_data_frame_before_fragment_completion rejects_fragmented_control_frame
rejects_control_frame_over_125_bytes rejects_non_minimal_extended_length
rejects_oversize_binary_frame_before_payload_buffering validates_close_frame_payloads
rejects_close_frame_with_one_byte_payload rejects_reserved_close_code
rejects_close_reason_with_invalid_utf8 rejects_frames_after_client_close_frame
invalid_close_frames_close_both_peers_and_report_protocol_session_end
invalid_close_frames_have_stable_telemetry_classes
partial_control_payload_eof_is_peer_disconnect_without_generated_close
termination_causes_map_to_protocol_close_codes_and_session_reasons
binary_frame_passes_through_unchanged""", FRAMES),
    ("""established_websocket_does_not_restore_resolver_after_detach
established_websocket_does_not_restore_resolver_after_invalid_refresh
guarded_websocket_uses_path_scoped_live_resolver websocket_rewrite_rejects_revocation_before_frame_write
rewrites_discord_like_identify_text_payload upgraded_relay_rewrites_client_text_before_upstream_receives_it
graphql_websocket_control_message_rewrites_credentials_before_relay
text_without_placeholder_passes_semantically_unchanged unknown_placeholder_fails_closed
fragmented_text_rewrites_after_final_continuation
fragmented_text_allows_interleaved_ping_pong_and_rewrites_at_completion
compressed_text_rewrites_with_permessage_deflate compressed_text_rejects_decompressed_oversize_message
credentialed_endpoint_denies_binary_frame_without_opt_in
credentialed_endpoint_denies_text_placeholder_without_rewrite""", CREDS),
    ("""websocket_preflight_forwards_workspace_to_middleware
denied_websocket_session_start_reports_middleware_failure_before_close
selected_middleware_reports_binary_gap_and_inspects_later_text_at_next_sequence
middleware_only_rest_wss_relay_observes_policy_reload
middleware_only_rest_ws_relay_stops_fragment_after_policy_reload
reload_during_middleware_evaluation_blocks_credentials_and_payload
graphql_policy_denial_reports_policy_denial_to_middleware
parsed_relay_sends_redacted_openai_event_to_upstream
fully_disabled_session_bypasses_saturated_work_budget_without_rpc
parsed_relay_uses_builtin_regex_for_complete_client_text_messages
pr2_full_duplex_external_middleware_vertical_slice
stalled_initial_text_payload_releases_middleware_admission
stalled_continuation_payload_releases_middleware_admission
missing_continuation_header_releases_middleware_admission""", MIDDLEWARE),
    ("""parsed_relays_share_assembly_budget_without_middleware
assembly_budget_bounds_waiters_and_recovers_capacity
upstream_forwarding_timeout_releases_assembly_capacity
text_assembly_total_deadline_does_not_reset_on_input_progress
stalled_assemblies_release_the_saturated_shared_work_budget""", ASSEMBLY),
    ("""reload_after_frame_header_preserves_frame_boundary_before_close
pre_upgrade_reload_finalizes_session_as_policy_reload
reload_after_forwarded_upgrade_uses_typed_close_path""", RELOAD),
    ("""classifies_graphql_websocket_control_message_without_payload_logging
graphql_websocket_log_summary_excludes_payload_variables_and_secrets
websocket_ocsf_messages_do_not_include_payload_or_secret_material""", LOGGING),
    ("""classifies_graphql_transport_ws_subscribe_operation classifies_legacy_graphql_ws_start_operation
unsupported_graphql_websocket_message_type_fails_closed""", CLASSIFY),
):
    for n in names.split():
        NOT_A_DECISION[n] = why

DIFFERS = {
    "graphql_websocket_policy_allows_subscription_operation":
        "GraphQL-over-WebSocket operation rules load but are not applied: cordon does not "
        "inspect WebSocket messages, so it refuses the upgrade (stricter; "
        "test_graphql_ws_upgrade_refused below)",
}

UPSTREAM = open(__file__.replace("test_policy_openshell_websocket.py",
                                 "openshell_websocket_tests.txt")).read().split()


def test_every_upstream_test_is_accounted_for():
    named = {c[0] for c in C}
    assert len(UPSTREAM) == 66 and len(set(UPSTREAM)) == 66
    covered = named | set(NOT_A_DECISION) | set(DIFFERS)
    assert not (named & set(NOT_A_DECISION)) and not (named & set(DIFFERS))
    assert not (set(NOT_A_DECISION) & set(DIFFERS))
    assert [n for n in UPSTREAM if n not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 66


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("openshell-ws") / "ws.yaml"
    p.write_text(FIXTURE)
    return str(p)


def _eval(cordon_bin, f, host, target):
    return subprocess.run([cordon_bin, "policy", "eval", f, "--host", host, "--port", "443",
                           "--binary", CURL, "--method", "GET", "--path", target],
                          capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("row", C, ids=["%s-%d" % (c[0], i) for i, c in enumerate(C)])
def test_websocket_case(cordon_bin, fixture_file, row):
    name, host, target, allow, needle = row
    r = _eval(cordon_bin, fixture_file, host, target)
    assert r.returncode == (0 if allow else 1), (name, r.stdout, r.stderr)
    if needle:
        assert needle in r.stdout, (name, r.stdout)


def test_graphql_ws_upgrade_refused_plain_ws_allowed(cordon_bin, fixture_file):
    """The DIFFERS row's claim: where OpenShell would allow the subscription
    message by its field rule, cordon refuses the upgrade; a WebSocket
    endpoint without GraphQL operation rules upgrades as its rules say."""
    r = _eval(cordon_bin, fixture_file, "realtime.test", "/graphql")
    assert r.returncode == 1 and "l7: deny" in r.stdout, r.stdout
    r = _eval(cordon_bin, fixture_file, "plain-ws.test", "/socket")
    assert r.returncode == 0 and "l7: allow" in r.stdout, r.stdout
    r = _eval(cordon_bin, fixture_file, "plain-ws.test", "/other")
    assert r.returncode == 1 and "l7: deny" in r.stdout, r.stdout
