"""OpenShell's gateway tests, walked one by one (#13): validation.rs (104)
and policy.rs (198) of NVIDIA/OpenShell crates/openshell-server/src/grpc at
2f7fb65 (2026-08-21); names, as FILE::TEST, in openshell_server_tests.txt.

validation.rs is what the gateway checks before it accepts a request: most
of it is about the gateway's own API objects (sandbox specs, providers,
labels, exec requests); the tests of a submitted policy (policy safety,
reserved keys, static fields on update) are load decisions. policy.rs is the
gateway's policy service (updates, merges, revisions, settings, the proposal
inbox, provider composition): most tests are about the service; those that
assert whether a policy is accepted are load decisions.

Each test is one of
  C               a load decision, re-expressed as our own policy text and
                  asked of the real binary with `cordon policy check`
                  (errors carry file:line:column);
  NOT_A_DECISION  a test of the gateway's service or API objects that
                  decides nothing about a policy file, with where cordon
                  covers the concern (or why it has none);
  DIFFERS         a load decision cordon makes differently on purpose (also
                  in doc/policy.md "Where we differ").

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step: len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 302."""
import os
import re
import subprocess
import time

import pytest

from sandbox_fixtures import sandbox, BASE_POLICY  # noqa: F401  (fixture)
from lib import util

HEAD = "version: 1\nnetwork_policies:\n"
CURL = "    binaries: [{path: /usr/bin/curl}]\n"


def entry(key, ep, extra=""):
    return "  %s:\n%s    endpoints:\n      - %s\n%s" % (key, extra, ep, CURL)


def one(ep, key="p"):
    return HEAD + entry(key, ep)


def fs(ro, rw, extra=""):
    return ("version: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only: [%s]\n"
            "  read_write: [%s]\n%s" % (ro, rw, extra))


# the same host:port twice, one with tls: skip: which entry carries a
# connection would depend on the order of entries
AMBIGUOUS = (HEAD + entry("left", "{host: api.example.com, port: 443, tls: skip}") +
             entry("right", "{host: api.example.com, port: 443}"))
AMBIGUOUS_ERR = "differ in tls"

# (upstream test, policy text, None = loads | needle of the error)
C = []


def case(name, text, error=None):
    C.append((name, text, error))


V = "validation.rs::"
P = "policy.rs::"

# ---- validation.rs: the policy inside a sandbox spec ----
# a serialized policy over the gateway's size limit is refused; cordon
# refuses a policy file over 1 MiB before parsing it (a whole-file error)
case(V + "validate_sandbox_spec_rejects_oversized_policy",
     HEAD + "  " + "x" * (1 << 20) + ":\n" + "    endpoints: [{host: a.example.com, port: 443}]\n"
     + CURL, "larger than 1 MiB")
case(V + "validate_policy_safety_rejects_root_user",
     fs("/usr", "/tmp", "process: {run_as_user: root, run_as_group: sandbox}\n"),
     "process.run_as_user: the sandbox must not run as root")
case(V + "validate_policy_safety_rejects_root_user",
     fs("/usr", "/tmp", "process: {run_as_user: sandbox, run_as_group: root}\n"), "run_as_group")
case(V + "validate_policy_safety_rejects_path_traversal",
     fs("/usr/../etc/shadow", "/tmp"), "must not contain '..'")
case(V + "validate_policy_safety_rejects_path_traversal",
     fs("/usr", "/tmp/../etc"), "must not contain '..'")
case(V + "validate_policy_safety_rejects_overly_broad_path",
     fs("/usr", "/"), "read_write must not be '/'")
case(V + "validate_policy_safety_rejects_overly_broad_path",
     fs("/usr", "//"), "read_write must not be '/'")
# OpenShell's restrictive default: system paths read-only, /sandbox and /tmp
# writable, best-effort Landlock, user and group 'sandbox'
case(V + "validate_policy_safety_accepts_valid_policy",
     fs("/usr, /lib, /etc, /proc, /dev/urandom", "/sandbox, /tmp, /dev/null",
        "landlock: {compatibility: best_effort}\nprocess: {run_as_user: sandbox, run_as_group: sandbox}\n"))
case(V + "validate_policy_safety_rejects_tld_wildcard",
     one('{host: "*.com", port: 443}', key="bad"), "would match a whole top-level domain")
case(V + "validate_policy_safety_rejects_tld_wildcard",
     one('{host: "**.com", port: 443}', key="bad"), "would match a whole top-level domain")
# both problems are reported, on their own lines
MW = ("version: 1\nnetwork_middlewares:\n  redactor:\n    middleware: openshell/regex\n"
      "    on_error: maybe\n    endpoints: {include: [\"api[.example.com\"]}\n")
case(V + "validate_policy_safety_rejects_invalid_middleware_before_acceptance", MW,
     "on_error: 'maybe' is not allowed")
case(V + "validate_policy_safety_rejects_invalid_middleware_before_acceptance", MW,
     "host pattern 'api[.example.com' contains a character other than")
# the '_provider_' prefix is reserved for the layers OpenShell composes
# from attached providers; an entry a user writes must not use it
case(V + "validate_no_reserved_provider_policy_keys_rejects_reserved_key",
     one("{host: api.github.com, port: 443}", key="_provider_work_github"),
     "reserved prefix '_provider_'")
case(V + "validate_no_reserved_provider_policy_keys_accepts_user_key",
     one("{host: api.github.com, port: 443}", key="provider_work_github"))
case(V + "validate_no_reserved_provider_policy_keys_accepts_user_key",
     one("{host: api.github.com, port: 443}", key="work_provider_"))

# ---- policy.rs: what an update, a merge or an approved proposal may carry ----
case(P + "update_config_rejects_ambiguous_policy_before_persisting_revision", AMBIGUOUS,
     AMBIGUOUS_ERR)
case(P + "update_config_global_policy_rejects_ambiguity_before_persisting", AMBIGUOUS,
     AMBIGUOUS_ERR)
# a merge that adds a second entry for an existing host:port with another
# tls handling: the merged file is refused
case(P + "merge_operations_reject_ambiguity_before_persisting_revision",
     HEAD + entry("existing", "{host: api.example.com, port: 443, protocol: rest, access: read-only}")
     + entry("added", "{host: api.example.com, port: 443, tls: skip}"), AMBIGUOUS_ERR)
case(P + "merge_operations_reject_ambiguity_before_persisting_revision",
     HEAD + entry("existing", "{host: api.example.com, port: 443, protocol: rest, access: read-only}")
     + entry("added", "{host: api.example.com, port: 443, protocol: rest, access: read-write}"))
case(P + "malformed_graphql_candidate_is_rejected_before_reviewer_inbox",
     one("{host: api.example.com, port: 443, protocol: graphql, enforcement: enforce, "
         "rules: [{allow: {fields: [viewer]}}]}", key="bad_graphql"),
     "operation_type is required")
case(P + "malformed_graphql_candidate_is_rejected_before_reviewer_inbox",
     one("{host: api.example.com, port: 443, protocol: graphql, enforcement: enforce, "
         "rules: [{allow: {operation_type: query, fields: [viewer]}}]}", key="good_graphql"))
case(P + "validate_rule_rejects_loopback_allowed_ips",
     one("{host: example.com, port: 80, allowed_ips: [127.0.0.1]}", key="bad"),
     "lies entirely in loopback space, which is always blocked")
case(P + "validate_rule_rejects_loopback_allowed_ips",
     one("{host: example.com, port: 80, allowed_ips: [\"::1\"]}", key="bad"), "always blocked")
case(P + "validate_rule_rejects_link_local_allowed_ips",
     one("{host: example.com, port: 80, allowed_ips: [169.254.169.254]}", key="bad"),
     "lies entirely in link-local space, which is always blocked")
case(P + "validate_rule_rejects_always_blocked_host",
     one("{host: 127.0.0.1, port: 80}", key="bad"), "is a loopback address, which is always blocked")
case(P + "validate_rule_rejects_always_blocked_host",
     one("{host: 169.254.169.254, port: 80}", key="bad"), "is a link-local address")
case(P + "validate_rule_rejects_localhost_host",
     one("{host: localhost, port: 8080}", key="bad"), "'localhost' always resolves to loopback")
case(P + "validate_rule_rejects_localhost_host",
     one("{host: api.localhost, port: 8080}", key="bad"), "always resolves to loopback")
case(P + "validate_rule_rejects_known_metadata_hostname",
     one("{host: METADATA.GOOGLE.INTERNAL., port: 80}", key="bad"), "is a cloud metadata hostname")
case(P + "validate_rule_rejects_known_metadata_hostname",
     one("{host: metadata.google.internal, port: 80}", key="bad"), "is a cloud metadata hostname")
case(P + "validate_rule_rejects_known_metadata_hostname",
     one("{host: metadata.google.internal.example.com, port: 80}", key="good"))
case(P + "validate_merge_operations_rejects_add_allow_for_known_metadata_hostname",
     one("{host: metadata.google.internal, port: 80, protocol: rest, "
         "rules: [{allow: {method: GET, path: \"/computeMetadata/v1/**\"}}]}", key="bad"),
     "is a cloud metadata hostname")
case(P + "validate_rule_accepts_rfc1918_allowed_ips",
     one("{host: internal.corp, port: 443, allowed_ips: [10.0.5.0/24]}", key="good"))
case(P + "validate_rule_accepts_public_host", one("{host: api.github.com, port: 443}", key="good"))
# upstream records a high finding for a proposal to the link-local metadata
# address (and its approval path refuses always-blocked hosts); cordon
# refuses the endpoint at load
case(P + "agent_authored_link_local_proposal_records_high_finding",
     one("{host: 169.254.169.254, port: 80}", key="metadata"), "is a link-local address")
# SigV4 signing bound to an AWS provider: accepted upstream; cordon loads it
# and warns that it signs nothing (doc/policy.md, credential fields)
SIGV4 = ("{host: s3.amazonaws.com, port: 443, protocol: rest, access: full, "
         "credential_signing: sigv4, signing_service: s3, credential_binding: {provider: aws-prod}}")
case(P + "update_config_accepts_sigv4_bound_to_endpointless_aws_profile", one(SIGV4, key="aws"))
case(P + "update_config_accepts_sigv4_covered_by_endpointful_aws_profile",
     one(SIGV4.replace(", credential_binding: {provider: aws-prod}", ""), key="aws"))
case(P + "submit_rejects_reserved_provider_rule_name_prefix",
     one("{host: api.example.com, port: 443}", key="_provider_agent_rule"),
     "reserved prefix '_provider_'")
case(P + "update_config_user_policy_rejects_reserved_provider_key",
     one("{host: api.example.com, port: 443}", key="_provider_x"), "reserved prefix '_provider_'")
case(P + "update_config_global_policy_rejects_reserved_provider_key",
     one("{host: api.example.com, port: 443}", key="_provider_global"), "reserved prefix '_provider_'")
case(P + "merge_operation_validation_rejects_reserved_provider_add_rule_name",
     one("{host: api.example.com, port: 443}", key="_provider_added"), "reserved prefix '_provider_'")
case(P + "approve_draft_chunk_rejects_stored_reserved_provider_rule_name",
     one("{host: api.example.com, port: 443}", key="_provider_stored"), "reserved prefix '_provider_'")


# ---- not a decision about a policy file ----
SPEC = ("the gateway's CreateSandbox request (sandbox name as a DNS-1123 label, providers list, "
        "log level, environment map sizes and reserved OPENSHELL_* keys, template image, labels "
        "and resources, GPU count, main-process argv): an API object, not a policy; cordon run "
        "takes its command, name and environment on its command line and checks them there "
        "(doc/sandbox.md, test_run_ux.py)")
PROVIDER_OBJ = ("the gateway's Provider objects (name, type, credentials, config, credential "
                "handles); cordon has no providers and holds no credentials (doc/policy.md, "
                "credential fields)")
LABELS = ("Kubernetes-style label keys, values and selectors on the gateway's objects; cordon "
          "has no labelled objects")
EXEC = ("the gateway's ExecSandbox request (argument count and size, workdir, environment "
        "values, NUL bytes and newlines); cordon execd checks its own requests and answers a "
        "malformed one with an HTTP error (doc/execd.md, test_execd_command.py, test_execd_http.py)")
PROVIDERS = ("OpenShell composes provider policy layers (profiles, attachments, the providers_v2 "
             "setting, provider environments and credential revisions) into the effective "
             "policy; cordon has no providers, so a policy is exactly the file")
AUTH = ("the gateway's authorization of callers (sandbox vs user principals, workspaces, "
        "platform admin, cross-sandbox access); cordon's only control channel is the "
        "root-only control socket checked with SO_PEERCRED (doc/run.md, test_run_ux.py "
        "test_reload_command_and_broken_policy)")
TELEMETRY = ("the gateway's audit/OCSF messages about policy updates and merges; cordon emits a "
             "policy_reload audit event for each reload (doc/run.md, test_run_ux.py "
             "test_reload_on_sighup)")
INBOX = ("the gateway's proposal inbox (draft chunks, approve/reject/undo, auto-approval "
         "modes, dedup of mechanistic proposals, prover verdicts and findings); cordon has no "
         "inbox: `cordon policy suggest` and `run --learn` print proposals that are edited "
         "into the file by hand and loaded with `cordon policy check` (doc/policy.md)")
NOTES = ("review notes the gateway attaches to a proposed rule (private or CGNAT allowed_ips, "
         "hostless allowed_ips, uninspected credentials); the rule loads either way. cordon "
         "has no review step; what the rule then reaches is decided by the address fence "
         "(test_policy_openshell_proxy.py)")
SETTINGS = ("the gateway's settings store (registered keys and types, global vs sandbox "
            "scope, locks, concurrent writes, workspace isolation); cordon has no settings "
            "store: a sandbox's configuration is its command line and policy file")
REVISIONS = ("the gateway's policy revision history (config revisions and hashes, backfill, "
             "compare-and-swap versions, annotations and provenance); cordon keeps one policy "
             "generation in memory, the file is the source, and a reload that fails keeps the "
             "previous generation (doc/run.md)")
NO_MERGE = ("the gateway's merge operation on a stored policy; cordon has no merge: a "
            "proposal is added by hand as an entry of its own (the merge.rs walk in "
            "test_policy_openshell_crate.py)")

NOT_A_DECISION = {V + "level_matches_treats_ocsf_as_info":
                  "a log-level filter for the gateway's log stream; cordon's audit log is JSON "
                  "lines filtered by the reader (doc/run.md)"}
for n in open(__file__.replace("test_policy_openshell_server.py",
                               "openshell_server_tests.txt")).read().split():
    t = n.split("::")[1]
    if not n.startswith(V):
        continue
    if t.startswith(("validate_sandbox_spec_", "validate_exec_request_")) and \
            n != V + "validate_sandbox_spec_rejects_oversized_policy":
        NOT_A_DECISION[n] = EXEC if t.startswith("validate_exec_request_") else SPEC
    elif t.startswith("validate_provider_fields_"):
        NOT_A_DECISION[n] = PROVIDER_OBJ
    elif t.startswith("validate_label_"):
        NOT_A_DECISION[n] = LABELS
    elif t.startswith(("reject_control_chars_", "validate_exec_")):
        NOT_A_DECISION[n] = EXEC

# validate_static_fields_*: what an update of a running sandbox's policy may
# change. Taken for real: a `cordon run` sandbox is reloaded
# (test_reload_keeps_static_sections); these name the reloads it makes.
RELOADS = {V + "validate_static_fields_allows_unchanged": "the same file again: installed",
           V + "validate_static_fields_rejects_filesystem_removal": "a read_only path removed: refused",
           V + "validate_static_fields_rejects_filesystem_deletion":
               "the filesystem_policy section deleted: refused",
           V + "validate_static_fields_rejects_include_workdir_change":
               "include_workdir changed: refused"}

PSERV = {
    PROVIDERS: """provider_credentialed_stamping_matches_host_patterns_and_ports
        policy_bindings_add_scopes_only_for_attached_endpointless_providers
        request_paths_use_one_provider_profile_snapshot
        provider_policy_layers_skip_unknown_provider_types
        provider_policy_layers_resolve_user_profile_for_normalized_provider_type
        provider_policy_layers_include_custom_provider_profiles
        provider_policy_layers_normalize_custom_provider_type_ids
        provider_policy_layers_include_known_provider_profiles
        provider_policy_layers_respect_profile_workspace_scope
        providers_v2_enabled_defaults_false_when_unset
        providers_v2_enabled_reads_global_bool_setting
        sandbox_config_omits_provider_layers_when_v2_disabled
        sandbox_config_composes_provider_layers_when_v2_enabled
        candidate_effective_policy_rejects_provider_endpoint_ambiguity
        provider_attachment_preflight_rejects_composed_ambiguity
        sandbox_config_rejects_invalid_provider_composed_policy
        sandbox_config_skips_profileless_provider_types_when_v2_enabled
        sandbox_config_composition_is_jit_and_does_not_persist_provider_layers
        sandbox_config_uses_updated_custom_provider_profile_without_rewriting_provider
        sandbox_config_composes_user_and_provider_rules
        provider_environment_resolution_is_unchanged_by_providers_v2_setting
        provider_environment_withholds_static_credentials_from_legacy_supervisors
        provider_environment_uses_policy_binding_for_endpointless_profile
        invalid_static_binding_does_not_suppress_valid_dynamic_credentials
        provider_env_revision_changes_on_consecutive_provider_updates_without_delay
        provider_environment_revision_and_payload_share_immutable_record_snapshot
        provider_env_revision_changes_when_custom_profile_token_grant_changes
        platform_profile_narrowing_changes_platform_provider_revision_when_shadowed
        sandbox_config_and_provider_env_follow_attached_provider_lifecycle
        custom_imported_profile_policy_and_env_follow_attach_detach_lifecycle
        global_policy_suppresses_provider_profile_layers_when_v2_enabled
        enabling_provider_composition_rejects_existing_ambiguous_binding
        deleting_global_policy_rejects_reactivated_ambiguous_provider_binding
        update_config_sandbox_sync_strips_reserved_provider_keys_before_persisting""",
    NOTES: """security_notes_flag_allow_uninspected_credentials
        security_notes_use_canonical_internal_ip_classifier
        security_notes_exclude_always_blocked_destinations
        security_notes_flag_private_allowed_ips
        security_notes_flag_cidr_overlapping_cgnat
        security_notes_do_not_flag_large_public_allowed_ips
        security_notes_flag_hostless_allowed_ips
        security_notes_inspect_all_endpoints_and_effective_ports
        approve_all_skips_private_allowed_ips_unless_included
        edit_recomputes_security_notes_before_read_and_approve_all
        approve_all_recomputes_empty_legacy_security_notes""",
    AUTH: """sandbox_caller_update_validation_allows_sandbox_policy_sync
        sandbox_caller_update_validation_rejects_global_mutation
        sandbox_caller_update_validation_rejects_setting_mutation
        sandbox_caller_detected_from_principal_extension
        user_principal_not_treated_as_sandbox_caller
        get_sandbox_logs_authorizes_persisted_sandbox_workspace
        update_config_global_requires_platform_admin
        global_policy_reads_require_platform_admin
        update_config_rejects_missing_principal
        cross_sandbox_get_sandbox_config_denied
        same_sandbox_get_sandbox_config_allowed
        cross_sandbox_submit_policy_analysis_denied
        cross_sandbox_get_draft_policy_denied
        sandbox_update_config_missing_name_returns_permission_denied
        sandbox_submit_policy_analysis_missing_name_returns_permission_denied
        sandbox_get_draft_policy_missing_name_returns_permission_denied
        user_principal_can_read_any_sandbox_config
        log_stream_scope_rejects_sandbox_id_change_after_validation
        log_stream_scope_rejects_missing_sandbox
        draft_chunk_handlers_reject_cross_sandbox_chunk_ids
        non_member_gets_permission_denied_not_workspace_oracle
        id_based_policy_handlers_hide_cross_workspace_sandboxes
        get_gateway_config_accessible_without_platform_admin""",
    TELEMETRY: """sandbox_caller_policy_sync_does_not_emit_policy_update_telemetry
        first_policy_revision_does_not_emit_policy_update_telemetry
        build_gateway_policy_audit_message_formats_ocsf_config_line
        build_gateway_policy_audit_message_carries_auto_approve_provenance
        summarize_cli_policy_merge_op_formats_rest_allow_rules
        summarize_cli_policy_merge_op_formats_endpoint_additions
        summarize_cli_policy_merge_op_formats_websocket_credential_rewrite
        summarize_cli_policy_merge_op_formats_request_body_credential_rewrite""",
    INBOX: """approve_all_applies_multiple_independent_chunks_and_reuses_cached_validation
        approve_all_skips_later_batch_conflict_and_applies_compatible_prefix
        reviewed_batch_operations_stale_snapshot_apply_nothing
        security_flagged_empty_delta_does_not_auto_approve
        mechanistic_dedup_auto_approval_rechecks_edited_stored_rule
        draft_chunk_handler_lifecycle_round_trip
        reject_with_reason_persists_into_chunk_for_agent_readback
        agent_authored_exact_l7_proposal_gets_prover_pass_verdict
        agent_authored_submission_supersedes_pending_mechanistic_for_same_endpoint
        mechanistic_proposal_with_empty_delta_also_auto_approves
        mechanistic_existing_multi_port_rest_endpoint_auto_approves_narrow_overlay
        changed_policy_inputs_refresh_token_and_require_fresh_review
        policy_change_reconciles_pending_chunk_already_covered_by_live_policy
        agent_authored_l7_full_with_credential_emits_reach_expansion
        empty_delta_does_not_auto_approve_when_mode_unset
        empty_delta_does_not_auto_approve_when_mode_unknown_string
        empty_delta_does_not_auto_approve_when_mode_explicit_manual
        empty_delta_auto_approves_from_gateway_scope_setting
        gateway_manual_overrides_sandbox_auto
        agent_authored_l4_proposal_with_credential_records_high_finding
        agent_authored_l4_proposal_without_credential_emits_no_finding
        agent_authored_validation_uses_providers_v2_effective_policy
        full_loop_under_v2_auto_mode_splits_credentialed_and_uncredentialed
        agent_authored_submits_for_same_endpoint_do_not_dedup
        mechanistic_submits_for_same_endpoint_dedup_into_one_chunk
        resubmitted_mechanistic_endpoint_keeps_approved_chunk
        conditionally_reject_transitions_pending_chunk
        conditionally_reject_leaves_approved_chunk_untouched
        conditionally_reject_loses_race_to_approval
        undo_after_reject_clears_stale_rejection_reason""",
    NO_MERGE: """policy_merge_error_mapping_distinguishes_request_shape_from_state_conflicts
        merge_chunk_into_policy_adds_first_network_rule_to_empty_policy
        merge_chunk_merges_into_existing_rule_by_host_port
        merge_chunk_new_host_port_inserts_new_entry
        concurrent_merge_batches_preserve_both_updates""",
    SETTINGS: """merge_effective_settings_includes_unset_registered_keys
        materialize_global_settings_includes_unset_registered_keys
        decode_policy_from_global_settings_round_trip
        proto_setting_to_stored_rejects_unknown_key
        proto_setting_to_stored_rejects_type_mismatch
        proto_setting_to_stored_accepts_bool_for_registered_bool_key
        proto_setting_to_stored_accepts_allowed_proposal_approval_mode_values
        proto_setting_to_stored_rejects_invalid_proposal_approval_mode_value
        proto_setting_to_stored_rejection_message_lists_allowed_proposal_approval_mode_values
        update_config_global_rejects_invalid_proposal_approval_mode
        merge_effective_settings_global_overrides_sandbox_key
        merge_effective_settings_sandbox_scoped_value_has_sandbox_scope
        merge_effective_settings_unset_key_has_unspecified_scope_and_no_value
        merge_effective_settings_policy_key_is_excluded
        sandbox_settings_names_match_sandbox_names
        stored_setting_to_proto_string_round_trip
        stored_setting_to_proto_int_round_trip
        stored_setting_to_proto_bool_round_trip
        upsert_setting_value_returns_true_on_insert
        upsert_setting_value_returns_false_when_unchanged
        upsert_setting_value_returns_true_on_update
        global_settings_load_returns_default_when_empty
        sandbox_settings_load_returns_default_when_empty
        global_settings_save_and_load_round_trip
        sandbox_settings_save_and_load_round_trip
        concurrent_global_setting_mutations_are_serialized
        concurrent_global_setting_mutations_without_lock_can_lose_writes
        conflict_guard_sandbox_set_blocked_when_global_exists
        conflict_guard_sandbox_delete_blocked_when_global_exists
        delete_unlock_sandbox_set_succeeds_after_global_delete
        sandbox_settings_are_workspace_isolated
        get_sandbox_config_returns_workspace
        validate_registered_setting_key_rejects_policy
        proto_setting_to_stored_rejects_policy_key
        save_settings_detects_concurrent_modification""",
    REVISIONS: """sandbox_without_policy_stores_successfully
        sandbox_policy_backfill_on_update_when_no_baseline
        config_revision_changes_when_effective_setting_changes
        config_revision_stable_when_nothing_changes
        config_revision_changes_when_policy_changes
        policy_hash_changes_when_network_middlewares_change
        policy_hash_is_stable_across_middleware_config_field_insertion_order
        review_token_and_policy_hash_are_stable_across_nested_proto_map_order
        config_revision_changes_when_policy_source_changes
        config_revision_changes_when_validation_failure_mode_changes
        config_revision_changes_when_extension_authentication_capability_changes
        config_revision_changes_when_supervisor_middleware_services_change
        config_revision_without_policy_still_hashes_settings
        update_config_policy_backfill_cas_succeeds_with_correct_version
        update_config_policy_backfill_persists_and_returns_annotations
        update_config_same_policy_hash_with_new_provenance_creates_revision
        update_config_same_policy_and_provenance_is_idempotent
        update_config_full_policy_empty_annotations_preserves_existing_annotations
        update_config_merge_empty_annotations_preserves_existing_annotations
        update_config_merge_stores_revision_provenance_atomically
        update_config_backfill_empty_annotations_preserves_existing_annotations
        update_config_global_rejects_annotations
        update_config_rejects_invalid_annotations
        update_config_policy_backfill_cas_rejects_stale_version
        update_config_policy_backfill_concurrent_with_stale_versions""",
}
for why, names in PSERV.items():
    for t in names.split():
        NOT_A_DECISION[P + t] = why

CREDS = ("OpenShell refuses a credential field whose provider is not attached to the sandbox, "
         "has no resolvable credential source, or would be sent uninspected (L4 or tls: skip) "
         "without allow_uninspected_credentials; cordon has no providers and applies no "
         "credential field: the policy loads with a warning naming the field, nothing is "
         "injected or signed, and what the endpoint allows is the same with or without it "
         "(test_credential_fields_load_with_warning; doc/policy.md 'Where we differ')")
STATIC = ("OpenShell accepts an update that only adds filesystem paths (or adds the section "
          "where there was none); cordon refuses any change to filesystem_policy, landlock, "
          "process or limits on reload, since they are applied once when the sandbox starts "
          "and an added path would be listed but not granted (stricter; "
          "test_reload_keeps_static_sections)")
DIFFERS = {V + "validate_static_fields_allows_additive_filesystem": STATIC,
           V + "validate_static_fields_allows_filesystem_enrichment_from_none": STATIC}
DIFFERS.update({P + t: CREDS for t in (
    "credentialed_l4_and_tls_skip_require_explicit_opt_in",
    "update_config_rejects_credential_binding_to_unattached_provider",
    "update_config_rejects_policy_binding_for_endpointful_profile",
    "update_config_gates_uninspected_endpointless_credential_binding",
    "update_config_rejects_sigv4_without_credential_source_before_persisting_revision",
    "update_config_rejects_sigv4_for_unbound_endpointless_aws_profile",
    "update_config_rejects_sigv4_outside_endpointful_aws_profile_boundary")})

UPSTREAM = open(__file__.replace("test_policy_openshell_server.py",
                                 "openshell_server_tests.txt")).read().split()


def test_every_upstream_test_is_accounted_for():
    named = {c[0] for c in C} | set(RELOADS)
    per_file = {}
    for n in UPSTREAM:
        per_file[n.split("::")[0]] = per_file.get(n.split("::")[0], 0) + 1
    assert per_file == {"validation.rs": 104, "policy.rs": 198}, per_file
    assert len(set(UPSTREAM)) == 302
    covered = named | set(NOT_A_DECISION) | set(DIFFERS)
    assert not (named & set(NOT_A_DECISION)) and not (named & set(DIFFERS))
    assert not (set(NOT_A_DECISION) & set(DIFFERS))
    assert [n for n in UPSTREAM if n not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 302


def _check(cordon_bin, tmp_path, text):
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return subprocess.run([cordon_bin, "policy", "check", str(p)], capture_output=True,
                          text=True, timeout=20)


@pytest.mark.parametrize("row", C, ids=["%s-%d" % (c[0].split("::")[1], i) for i, c in enumerate(C)])
def test_server_case(cordon_bin, tmp_path, row):
    name, text, error = row
    r = _check(cordon_bin, tmp_path, text)
    if error is None:
        assert r.returncode == 0, (name, r.stderr)
        return
    assert r.returncode == 1, (name, r.stderr)
    line = [ln for ln in r.stderr.splitlines() if error in ln]
    assert line, (name, r.stderr)
    if "larger than" in error:  # refused before parsing: the whole file
        assert re.match(r"^\S*policy\.yaml: error: ", line[0]), (name, line[0])
    else:  # every other error names file:line:column
        assert re.match(r"^\S*policy\.yaml:\d+:\d+: error: ", line[0]), (name, line[0])


def test_credential_fields_load_with_warning(cordon_bin, tmp_path):
    """cordon's side of the DIFFERS rows: a binding to a provider nobody
    attached, SigV4 without a binding, a credentialed L4 endpoint -- each
    loads, with a warning naming the field it does not apply."""
    for ep, field in (("{host: api.cloud.example, port: 443, credential_binding: "
                       "{provider: missing-provider}}", "credential_binding"),
                      ("{host: s3.amazonaws.com, port: 443, protocol: rest, access: full, "
                       "credential_signing: sigv4, signing_service: s3}", "credential_signing"),
                      ("{host: api.vendor.example, port: 443, tls: skip, credential_binding: "
                       "{provider: vendor}}", "credential_binding")):
        r = _check(cordon_bin, tmp_path, one(ep))
        assert r.returncode == 0, r.stderr
        assert re.search(r"policy\.yaml:\d+:\d+: warning: .*%s is not applied" % field,
                         r.stderr), r.stderr


def _wait_for(cond, what, timeout=10):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail("timed out waiting for " + what)
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_reload_keeps_static_sections(sandbox, cordon_bin):
    """The RELOADS rows (validation.rs validate_static_fields_*) and cordon's
    side of the STATIC difference, on a running `cordon run` sandbox:
    a reload that changes a static section is refused, with the change
    named, and the running generation stays; the same file reloads."""
    name = sandbox.name()
    base = BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work)
    p = sandbox.start(["sleep", "30"], args=["--name", name])
    ctl = "/run/cordon/ctl/%s.ctl" % name
    _wait_for(lambda: os.path.exists(ctl), ctl)

    def reload(text):
        sandbox.write_policy(text)
        return util.run([cordon_bin, "policy", "reload", "--sandbox", name], check=False)

    refused = (
        (base.replace("/lib64, ", ""), "filesystem_policy.read_only: '/lib64' was removed"),
        (base.replace("/lib64, ", "/lib64, /opt, "), "filesystem_policy.read_only: '/opt' was added"),
        # the section deleted: the default paths, which have no /dev
        (base.split("filesystem_policy:")[0] + "landlock:" + base.split("landlock:")[1],
         "filesystem_policy.read_only: '/dev' was removed"),
        (base.replace("include_workdir: true", "include_workdir: false"),
         "filesystem_policy.include_workdir changed to false"),
        (base.replace("best_effort", "hard_requirement"), "landlock.compatibility changed"),
        (base + "limits: {pids: 77}\n", "limits changed"),
    )
    for text, why in refused:
        c = reload(text)
        assert c.returncode == 1, (why, c.stdout, c.stderr)
        assert re.search(r"policy\.yaml: error: %s: filesystem_policy, landlock, process and "
                         r"limits are applied when the sandbox starts" % re.escape(why),
                         c.stderr), (why, c.stderr)
        assert "generation 1 stays in force" in c.stderr, c.stderr
    # the same static sections with a network change: installed
    c = reload(base.replace("ports: [80, 8080]", "ports: [80]"))
    assert c.returncode == 0 and "ok generation 2" in c.stdout, (c.stdout, c.stderr)
    c = reload(base)
    assert c.returncode == 0 and "ok generation 3" in c.stdout, (c.stdout, c.stderr)
    p.send_signal(15)
    r = sandbox.finish(p)
    rl = r.events("policy_reload")
    assert [e["result"] for e in rl] == ["failed"] * len(refused) + ["installed"] * 2, rl
    assert rl[0]["detail"] == "filesystem_policy.read_only: '/lib64' was removed", rl[0]
