"""OpenShell's sandbox-side tests, walked one by one (#13): lib.rs (63) and
mechanistic_mapper.rs (22) of crates/openshell-sandbox/src, lib.rs (10) and
queries.rs (6) of crates/openshell-prover/src, NVIDIA/OpenShell at 2f7fb65;
names, as FILE::TEST, in openshell_sandbox_tests.txt (the prover's files as
prover/lib.rs and prover/queries.rs).

Each test is one of
  C / EV          what it asserts about loading a policy or about a decision,
                  re-expressed as our own policy text and asked of the real
                  binary with `cordon policy check` (C) or `cordon policy
                  eval` (EV);
  SUG             a proposal of OpenShell's mechanistic mapper (denials ->
                  a proposed rule), asked of `cordon policy suggest` on an
                  audit log we write: which hosts get an entry, which are
                  left out as comments, and what the suggested policy then
                  allows (`policy eval` on it). A proposal cordon writes
                  differently counts only where the policy would allow
                  something different;
  RUN             a real action in a real `cordon run` (filesystem);
  NOT_A_DECISION  a test of machinery that decides nothing about a policy
                  (gateway polling, settings, telemetry, sidecar topology,
                  confidence scores), with where cordon covers the concern;
  DIFFERS         a decision cordon makes differently on purpose, never
                  more permissively (doc/policy.md "Where we differ").

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step: every name classified exactly once, 101 in all."""
import json
import os
import re
import subprocess

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

HEAD = "version: 1\nnetwork_policies:\n"
LIB, MM, PL, PQ = "lib.rs::", "mechanistic_mapper.rs::", "prover/lib.rs::", "prover/queries.rs::"


def one(host, port=443, bins="[{path: /usr/bin/curl}]", extra=""):
    return (HEAD + "  p:\n    endpoints:\n      - {host: \"%s\", port: %d%s}\n    binaries: %s\n"
            % (host, port, extra, bins))


def at(host, port, binary="/usr/bin/curl", *l7):
    return ["--host", host, "--port", str(port), "--binary", binary] + list(l7)


# ---- C: `cordon policy check` (name, text, None = loads | needle of the error)
C = []


def case(name, text, error=None):
    C.append((name, text, error))


ROOT = ("version: 1\nprocess:\n  run_as_user: root\n  run_as_group: root\nfilesystem_policy:\n"
        "  include_workdir: true\n  read_only:\n    - /usr\n  read_write:\n    - /tmp\n")
# discover_policy_from_unsafe_yaml_falls_back_to_default: OpenShell drops the
# file for its restrictive default; cordon refuses it (DIFFERS below, its
# side asserted here and in test_unreadable_policy_refused)
case(LIB + "discover_policy_from_unsafe_yaml_falls_back_to_default", ROOT,
     "process.run_as_user: the sandbox must not run as root")
case(LIB + "discover_policy_from_invalid_yaml_returns_restrictive_default",
     "this is not valid yaml: [[[", "invalid YAML")
# the prover's sample policy: one entry, two endpoints, four binaries
case(PL + "test_parse_policy",
     HEAD + "  github_api:\n    name: github-api\n    endpoints:\n"
     "      - {host: api.github.com, port: 443, protocol: rest, access: read-only}\n"
     "      - {host: github.com, port: 443}\n"
     "    binaries:\n      - {path: /usr/bin/curl}\n      - {path: /usr/bin/git}\n"
     "      - {path: \"/usr/bin/python3*\"}\n      - {path: /usr/bin/node}\n")
case(PL + "test_include_workdir_false",
     "version: 1\nfilesystem_policy:\n  include_workdir: false\n  read_only:\n    - /usr\n")
# is_link_local: link-local literals are refused at load, as always blocked
for h in ("169.254.169.254", "169.254.0.1", "169.254.255.255"):
    case(PQ + "is_link_local_recognises_ipv4_169_254", one(h, 80), "is a link-local address")
for h in ("fe80::1", "fe80::abcd:ef01"):
    case(PQ + "is_link_local_recognises_ipv6_fe80", one(h, 80), "is a link-local address")
for h in ("8.8.8.8", "10.0.0.1", "192.168.1.1", "2001:db8::1"):
    case(PQ + "is_link_local_rejects_non_link_local_ips", one(h, 80))
# ::1 is not link-local but loopback: refused as loopback in both
case(PQ + "is_link_local_rejects_non_link_local_ips", one("::1", 80), "is a loopback address")
case(PQ + "is_link_local_rejects_hostnames", one("api.github.com"))
case(PQ + "is_link_local_rejects_hostnames", one("", 443), "host")

# ---- EV: `cordon policy eval` (name, text, args, allowed)
EV = []


def ev(name, text, args, allowed):
    EV.append((name, text, args, allowed))


VALID = ("version: 1\nfilesystem_policy:\n  include_workdir: false\n  read_only:\n    - /usr\n"
         "  read_write:\n    - /tmp\nnetwork_policies:\n  test:\n    name: test\n    endpoints:\n"
         "      - { host: example.com, port: 443 }\n    binaries:\n      - { path: /usr/bin/curl }\n")
ev(LIB + "discover_policy_from_valid_yaml_file", VALID, at("example.com", 443), True)
ev(LIB + "discover_policy_from_valid_yaml_file", VALID, at("example.com", 443, "/usr/bin/wget"), False)
ev(LIB + "discover_policy_from_valid_yaml_file", VALID, at("example.org", 443), False)
# a policy without network entries (the restrictive default) allows no egress
EMPTY = "version: 1\nfilesystem_policy:\n  read_only: [/usr]\n"
ev(LIB + "discover_policy_restrictive_default_blocks_network", EMPTY, at("api.github.com", 443), False)
ev(LIB + "discover_policy_restrictive_default_blocks_network", EMPTY, at("inference.local", 443),
   False)
ev(PL + "test_empty_policy_no_findings", "version: 1\nnetwork_policies: {}\n",
   at("api.github.com", 443), False)
ev(PL + "test_empty_policy_no_findings", "version: 1\nnetwork_policies: {}\n",
   at("169.254.169.254", 80), False)
# the wildcard reaches the credential host (one label), not the apex
WILD = one("*.github.com", 443, extra=", protocol: rest, enforcement: enforce, access: read-write")
ev(PL + "test_wildcard_endpoint_covering_credential_host_emits_credential_reach", WILD,
   at("api.github.com", 443, "/usr/bin/curl", "--method", "POST", "--path", "/repos/x/y/issues"),
   True)
ev(PL + "test_wildcard_endpoint_covering_credential_host_emits_credential_reach", WILD,
   at("github.com", 443), False)
ev(PL + "test_parse_policy", C[2][1], at("github.com", 443, "/usr/bin/git"), True)
ev(PL + "test_parse_policy", C[2][1],
   at("api.github.com", 443, "/usr/bin/curl", "--method", "POST", "--path", "/user/repos"), False)

# ---- SUG: `cordon policy suggest` on denials we write
# (name, [(host, port, binary, method, path)], hosts with an entry, hosts
#  left out as comments, [(eval args, allowed)] on the suggested policy)
SUG = []


def sug(name, denials, entries, skipped, evals=()):
    SUG.append((name, denials, entries, skipped, list(evals)))


def d(host, port=443, binary="/usr/bin/curl", method=None, path=None):
    return (host, port, binary, method, path)


sug(MM + "test_generate_proposals_empty", [], [], [])
# one entry: host, port, binary; no allowed_ips, no protocol, no rules
sug(MM + "test_generate_proposals_basic", [d("api.example.com")], ["api.example.com"], [],
    [(at("api.example.com", 443), True), (at("api.example.com", 443, "/usr/bin/wget"), False),
     (at("api.example.com", 8443), False), (at("other.example.com", 443), False)])
sug(MM + "test_generate_proposals_with_l7_samples",
    [d("icanhazdadjoke.com", 443, "/usr/bin/python3", "GET", "/"),
     d("icanhazdadjoke.com", 443, "/usr/bin/python3", "GET", "/"),
     d("icanhazdadjoke.com", 443, "/usr/bin/python3", "GET", "/j/abc123def456abcd0099")],
    ["icanhazdadjoke.com"], [],
    [(at("icanhazdadjoke.com", 443, "/usr/bin/python3", "--method", "GET", "--path", "/"), True),
     (at("icanhazdadjoke.com", 443, "/usr/bin/python3", "--method", "GET", "--path",
         "/j/0123456789abcdef01"), True),
     (at("icanhazdadjoke.com", 443, "/usr/bin/python3", "--method", "POST", "--path", "/"), False),
     (at("icanhazdadjoke.com", 443, "/usr/bin/python3", "--method", "GET", "--path", "/k/1"),
      False)])
for n, h in (("test_always_blocked_destination_loopback_ip", "127.0.0.1"),
             ("test_always_blocked_destination_link_local_ip", "169.254.169.254"),
             ("test_always_blocked_destination_unspecified_ip", "0.0.0.0"),
             ("test_always_blocked_destination_localhost_hostname", "localhost"),
             ("test_always_blocked_destination_localhost_hostname", "LOCALHOST"),
             ("test_always_blocked_destination_known_metadata_hostname", "metadata.google.internal"),
             ("test_always_blocked_destination_known_metadata_hostname", "METADATA.GOOGLE.INTERNAL."),
             ("test_generate_proposals_skips_loopback_destination", "127.0.0.1"),
             ("test_generate_proposals_skips_link_local_destination", "169.254.169.254"),
             ("test_generate_proposals_skips_known_metadata_hostname", "metadata.google.internal"),
             ("test_generate_proposals_skips_localhost_hostname", "localhost")):
    sug(MM + n, [d(h, 8080 if "localhost" in n else 80), d("api.github.com")],
        ["api.github.com"], [h])
sug(MM + "test_always_blocked_destination_allows_rfc1918", [d("10.0.5.20", 80), d("192.168.1.1", 80)],
    ["10.0.5.20", "192.168.1.1"], [], [(at("10.0.5.20", 80), True)])
sug(MM + "test_always_blocked_destination_allows_public_hostname", [d("api.github.com")],
    ["api.github.com"], [])
sug(MM + "test_generate_proposals_keeps_public_destination", [d("api.github.com")],
    ["api.github.com"], [], [(at("api.github.com", 443), True)])
GP = "api.example.com"


def gp(path, other, allowed_other):
    return [(at(GP, 443, "/usr/bin/curl", "--method", "GET", "--path", path.split("?")[0]), True),
            (at(GP, 443, "/usr/bin/curl", "--method", "GET", "--path", other), allowed_other)]


# an exact path stays exact; an identifier as the last segment becomes '*';
# the query is dropped
sug(MM + "test_generalise_path", [d(GP, method="GET", path="/api/breeds/image/random")], [GP], [],
    gp("/api/breeds/image/random", "/api/breeds/image/other", False))
sug(MM + "test_generalise_path", [d(GP, method="GET", path="/posts/42")], [GP], [],
    gp("/posts/42", "/posts/7", True))
sug(MM + "test_generalise_path",
    [d(GP, method="GET", path="/chunks/550e8400-e29b-41d4-a716-446655440000")], [GP], [],
    gp("/chunks/550e8400-e29b-41d4-a716-446655440000", "/chunks/x", True))
sug(MM + "test_generalise_path", [d(GP, method="GET", path="/json/?fields=status,country")], [GP],
    [], gp("/json/", "/json/other", False))
sug(MM + "test_generalise_path", [d(GP, method="GET", path="/")], [GP], [], gp("/", "/x", False))
# only the last segment: /users/123/repos does not reach /users/admin/repos
sug(MM + "test_generalise_path", [d(GP, method="GET", path="/users/123/repos")], [GP], [],
    gp("/users/123/repos", "/users/admin/repos", False))
# looks_like_id: 42, a UUID, 16 hex are identifiers; random, get, v1 and a
# single digit are not (the rule stays exact)
for seg, is_id in (("42", True), ("550e8400-e29b-41d4-a716-446655440000", True),
                   ("abc123def456abcd", True), ("random", False), ("get", False), ("v1", False),
                   ("7", False), ("deadbeef", False)):
    sug(MM + "test_looks_like_id", [d(GP, method="GET", path="/r/" + seg)], [GP], [],
        gp("/r/" + seg, "/r/someone-else", is_id))

# ---- RUN: a real `cordon run`
RUN = [LIB + "proto_enrichment_preserves_explicit_read_only_for_baseline_read_write_paths",
       LIB + "local_enrichment_preserves_explicit_read_only_for_baseline_read_write_paths",
       PL + "test_include_workdir_default"]     # test_section_without_include_workdir

# ---- NOT_A_DECISION
GATEWAY = ("the gateway's policy poll loop (revisions, hashes, acknowledgements, status reports); "
           "cordon has no gateway: a policy is a file, reloaded on SIGHUP, `cordon reload` or "
           "--watch-policy, and a broken file keeps the old policy (test_run_ux.py::"
           "test_reload_command_and_broken_policy, test_proxy_lifecycle.py::test_sighup_reload)")
MIDDLEWARE = ("the middleware registry across reloads; cordon runs no middleware (loaded with a "
              "warning, doc/policy.md network_middlewares)")
SETTINGS = ("gateway settings pushed to the sandbox (agent proposals, OCSF JSON); cordon's "
            "equivalents are flags (--learn, --log-format json), tested in test_run_learn.py and "
            "test_run_ux.py")
PROVIDER = ("provider policy layers and the gateway sync payload; cordon has no providers or "
            "gateway: the policy is exactly the file")
TOPOLOGY = ("where the proxy listens for the sidecar/non-sidecar topology; cordon run puts the "
            "agent in its own network namespace and hands it the proxy address itself "
            "(test_run_containment.py, test_escape_*.py)")
TCP_RT = ("transparent TCP needs a runtime capability (a driver marker, a startup substrate) "
          "before a reload may add it; cordon's `protocol: tcp` endpoints go through the same "
          "fence from the start (test_policy_openshell_e2e.py tcp rows), no driver markers")
VALIDATION = ("how a rejected policy update is reported and whether the previous generation stays "
              "active (OpenShell: fail-closed or retain-last-valid, configurable). cordon: an "
              "update that fails to load is refused and the old policy stays, as "
              "retain-last-valid; at start a policy that fails to load refuses the run, as "
              "fail-closed without a last valid one (test_run_ux.py::"
              "test_reload_command_and_broken_policy, test_unreadable_policy_refused)")
CONF = ("an advisory score or note for the person approving a proposal; cordon's proposal is a "
        "file to review, its refusals that no entry can lift are written as comments "
        "(SUG rows), the address classes by core/addrclass (tests/unit/test_addrclass.c)")
PROVER = ("a finding of the prover (a static analyzer of a policy with credentials and a binary "
          "registry); cordon has no prover and injects no credentials; the decisions under the "
          "finding are rows here")
NOT_A_DECISION = {
    LIB + "transparent_tcp_capability_requires_exact_driver_marker": TCP_RT,
    LIB + "tcp_policy_reload_without_startup_substrate_is_rejected_and_keeps_previous_policy": TCP_RT,
    LIB + "tcp_policy_reload_on_unsupported_runtime_is_rejected": TCP_RT,
    LIB + "poll_rejects_first_tcp_expansion_and_reports_previous_policy_active": TCP_RT,
    LIB + "sidecar_process_policy_sets_loopback_proxy_addr": TOPOLOGY,
    LIB + "non_sidecar_process_policy_preserves_proxy_addr": TOPOLOGY,
    LIB + "sidecar_control_provider_env_update_orders_by_generation": PROVIDER,
    LIB + "sidecar_control_agent_proposals_update_flips_shared_state": SETTINGS,
    LIB + "apply_agent_proposals_enabled_installs_only_on_false_to_true": SETTINGS,
    LIB + "apply_ocsf_json_setting_enables_from_initial_settings_snapshot": SETTINGS,
    LIB + "apply_ocsf_json_setting_disables_when_setting_is_unset": SETTINGS,
    LIB + "agent_proposals_setting_enables_from_initial_settings_snapshot": SETTINGS,
    LIB + "agent_proposals_setting_defaults_false_when_unset": SETTINGS,
    LIB + "settings_snapshot_carries_workspace_for_policy_sync": SETTINGS,
    LIB + "proto_strip_provider_policy_entries_removes_only_reserved_entries": PROVIDER,
    LIB + "proto_sync_payload_not_created_for_provider_entries_without_enrichment": PROVIDER,
    LIB + "proto_sync_payload_for_enrichment_strips_provider_entries_without_mutating_runtime_policy":
        PROVIDER,
    LIB + "no_signer_capability_uses_legacy_middleware_connector_without_credentials": MIDDLEWARE,
    LIB + "enabled_extension_authentication_keeps_credential_failure_fail_closed": MIDDLEWARE,
    LIB + "failed_external_startup_registry_build_preserves_installed_builtins": MIDDLEWARE,
    LIB + "unavailable_middleware_reload_keeps_last_known_good_runtime_active": MIDDLEWARE,
    LIB + "policy_rejection_after_middleware_outage_is_not_deduplicated": MIDDLEWARE,
    LIB + "policy_only_change_does_not_rebuild_middleware_registry": MIDDLEWARE,
    LIB + "registry_rebuild_requires_service_set_change_or_degraded_registry": MIDDLEWARE,
    LIB + "same_hash_ack_waits_for_failed_middleware_reconciliation_and_retries_once": MIDDLEWARE,
    LIB + "credential_gating_unavailable_for_local_override_with_credentials": PROVIDER,
    LIB + "credential_gating_available_without_local_override_or_credentials": PROVIDER,
    LIB + "fail_closed_validation_failure_deactivates_previous_generation": VALIDATION,
    LIB + "retain_validation_failure_keeps_previous_generation_active": VALIDATION,
    LIB + "retain_validation_failure_without_last_valid_policy_stays_fail_closed": VALIDATION,
    LIB + "validation_failure_ocsf_states_whether_previous_policy_is_active": VALIDATION,
    LIB + "has_gpu_devices_reflects_dxg_or_nvidiactl":
        "a GPU detection helper feeding the baseline (DIFFERS below); cordon's /dev is minimal "
        "and lists no GPU nodes (test_run_containment.py::test_only_listed_paths_exist)",
    MM + "test_generate_rule_name":
        "the proposal's entry key (allow_example_com_443); cordon names an entry after its host "
        "(example_com) and puts every refused port in it: a key decides nothing",
    MM + "test_generate_rule_name_subdomain": "the same key helper",
    MM + "test_compute_confidence": CONF,
    MM + "test_security_notes_ssrf": CONF,
    MM + "test_security_notes_internal_ip_uses_canonical_classifier": CONF,
    PL + "test_filesystem_policy":
        "the prover's list of readable paths; cordon grants exactly the listed paths plus the "
        "workdir (test_run_containment.py::test_only_listed_paths_exist, RUN rows here)",
    PL + "test_include_workdir_no_duplicate": "the prover's path list (no duplicate entry)",
    PL + "test_include_workdir_preserves_explicit_sandbox_path":
        "the prover's path list with a resolved workdir; cordon grants a listed path and the "
        "workdir both (test_run_isolation.py)",
    PL + "test_findings_for_github_policy": PROVER,
    PL + "test_known_metadata_hostname_emits_link_local_finding":
        PROVER + "; cordon loads `host: metadata.google.internal` as OpenShell does and the "
        "address fence refuses the link-local address it resolves to "
        "(test_policy_openshell_proxy.py metadata rows); suggest never proposes it (SUG rows)",
    PQ + "is_known_metadata_hostname_recognises_gcp_variants":
        "the prover's classifier; cordon's suggest reads the same variants as always blocked "
        "(SUG rows for metadata.google.internal and METADATA.GOOGLE.INTERNAL.)",
    PQ + "is_known_metadata_hostname_rejects_other_hostnames": "the same classifier (api.github.com "
        "and '' are not metadata names; SUG rows keep api.github.com)",
}
for n in ("same_hash_poll_revision_is_acknowledged_once_without_opa_reload",
          "same_hash_ack_poll_loop_rejects_local_global_empty_equal_and_older_scopes",
          "changed_hash_poll_uses_normal_opa_reload_and_status_path",
          "failed_gateway_runtime_snapshot_is_retried_without_revision_change",
          "gateway_runtime_reconciliation_tracks_policy_and_service_changes",
          "initial_ack_candidate_matches_sandbox_revision", "initial_ack_candidate_ignores_global_policy",
          "initial_ack_candidate_ignores_version_zero", "initial_ack_candidate_ignores_local_file_mode",
          "initial_ack_candidate_rejects_mismatched_identity",
          "initial_poll_reconciles_provider_composition_that_was_not_loaded",
          "initial_poll_tracks_local_override_without_reconciliation",
          "initial_poll_reconciles_unbound_gateway_policy",
          "unchanged_sandbox_policy_revision_candidate_is_strictly_scoped",
          "unchanged_policy_revision_waits_for_required_runtime_reconciliation",
          "policy_status_outbox_preserves_all_revision_order"):
    NOT_A_DECISION[LIB + n] = GATEWAY

# ---- DIFFERS
BASELINE = ("OpenShell adds baseline filesystem paths (/usr /lib /etc /app /var/log /proc, "
            "/dev/urandom read-only, /tmp read-write, GPU device nodes and their libraries when a "
            "GPU is present) to a policy with network entries; cordon grants what the file lists "
            "(plus the workdir): on the host these would be the host's own /etc and /var/log "
            "(doc/policy.md 'Where we differ'; stricter; test_no_baseline_paths_added)")
FALLBACK = ("OpenShell replaces a policy file that is missing, is not YAML or is unsafe (root) "
            "with its restrictive default and runs the sandbox; cordon refuses it and does not "
            "run (an error with file:line:column; stricter: nothing runs under a policy nobody "
            "wrote; test_unreadable_policy_refused and the C rows)")
DIFFERS = {
    LIB + "proc_not_in_both_read_only_and_read_write_when_gpu_present": BASELINE,
    LIB + "proc_in_read_only_without_gpu": BASELINE,
    LIB + "baseline_read_write_does_not_hardcode_sandbox": BASELINE,
    LIB + "enumerate_gpu_device_nodes_skips_bare_nvidia": BASELINE,
    LIB + "no_duplicate_paths_in_baseline": BASELINE,
    LIB + "proto_gpu_enrichment_promotes_proc_without_network_policy": BASELINE,
    LIB + "gpu_baseline_read_write_contains_dxg": BASELINE,
    LIB + "gpu_baseline_read_only_contains_usr_lib_wsl": BASELINE,
    LIB + "discover_policy_from_nonexistent_path_returns_restrictive_default": FALLBACK,
}
# the two fall-backs whose C rows assert cordon's side
for n in ("discover_policy_from_invalid_yaml_returns_restrictive_default",
          "discover_policy_from_unsafe_yaml_falls_back_to_default"):
    DIFFERS[LIB + n] = FALLBACK

UPSTREAM = open(os.path.join(os.path.dirname(__file__), "openshell_sandbox_tests.txt")).read().split()


def test_every_upstream_test_is_accounted_for():
    per_file = {}
    for n in UPSTREAM:
        per_file[n.split("::")[0]] = per_file.get(n.split("::")[0], 0) + 1
    assert per_file == {"lib.rs": 63, "mechanistic_mapper.rs": 22, "prover/lib.rs": 10,
                        "prover/queries.rs": 6}, per_file
    assert len(set(UPSTREAM)) == 101
    # a fall-back in DIFFERS may also have a C row showing cordon's side
    named = ({c[0] for c in C} | {e[0] for e in EV} | {s[0] for s in SUG} | set(RUN)) - set(DIFFERS)
    groups = [named, set(NOT_A_DECISION), set(DIFFERS)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not (groups[i] & groups[j]), groups[i] & groups[j]
    covered = named | set(NOT_A_DECISION) | set(DIFFERS)
    assert [n for n in UPSTREAM if n not in covered] == []
    assert sorted(covered - set(UPSTREAM)) == []
    assert len(named) + len(NOT_A_DECISION) + len(DIFFERS) == 101


def _cordon(cordon_bin, *args):
    return subprocess.run([cordon_bin] + list(args), capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("row", C, ids=["%s-%d" % (c[0].split("::")[1], i) for i, c in enumerate(C)])
def test_sandbox_check(cordon_bin, tmp_path, row):
    name, text, error = row
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    r = _cordon(cordon_bin, "policy", "check", str(p))
    if error is None:
        assert r.returncode == 0, (name, r.stderr)
    else:
        assert r.returncode == 1, (name, r.stderr)
        line = [ln for ln in r.stderr.splitlines() if error in ln]
        assert line and re.match(r"^\S*policy\.yaml:\d+:\d+: error: ", line[0]), (name, r.stderr)


def _eval(cordon_bin, path, args, allowed, name):
    r = _cordon(cordon_bin, "policy", "eval", str(path), *args)
    assert r.returncode == (0 if allowed else 1), (name, args, r.stdout, r.stderr)
    word = "allow" if allowed else "deny"
    if "--method" in args:  # the connection is allowed; the request's rules decide
        assert "decision: allow" in r.stdout and ("\nl7: %s\n" % word) in r.stdout, (name, r.stdout)
    else:
        assert ("decision: %s\n" % word) in r.stdout, (name, r.stdout)


@pytest.mark.parametrize("row", EV, ids=["%s-%d" % (e[0].split("::")[1], i) for i, e in enumerate(EV)])
def test_sandbox_eval(cordon_bin, tmp_path, row):
    name, text, args, allowed = row
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    _eval(cordon_bin, p, args, allowed, name)


@pytest.mark.parametrize("row", SUG, ids=["%s-%d" % (s[0].split("::")[1], i) for i, s in enumerate(SUG)])
def test_sandbox_suggest(cordon_bin, tmp_path, row):
    name, denials, entries, skipped, evals = row
    evs = []
    for host, port, binary, method, path in denials:
        if method:
            evs.append({"event": "l7_request", "decision": "deny", "host": host, "port": port,
                        "binary": binary, "method": method, "path": path,
                        "reason_code": "l7_denied"})
        else:
            evs.append({"event": "decision", "decision": "deny", "host": host, "port": port,
                        "binary": binary, "reason_code": "no_endpoint"})
    log = tmp_path / "audit.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in evs))
    s = _cordon(cordon_bin, "policy", "suggest", str(log))
    assert s.returncode == 0, (name, s.stderr)
    hosts = re.findall(r'^      - host: "([^"]*)"$', s.stdout, re.M)
    assert hosts == entries, (name, s.stdout)
    if not entries:
        assert "# nothing to allow" in s.stdout, s.stdout
    for h in skipped:
        assert re.search(r"^# not suggested \(a policy entry cannot allow it\): %s:\d+ for "
                         r"\S+: always blocked" % re.escape(h), s.stdout, re.M), (name, s.stdout)
    # never allowed_ips unless asked (--allowed-ips), as OpenShell's two-step approval
    assert "allowed_ips" not in s.stdout, s.stdout
    p = tmp_path / "suggested.yaml"
    p.write_text(s.stdout)
    c = _cordon(cordon_bin, "policy", "check", str(p))
    assert c.returncode == 0, (name, c.stderr, s.stdout)
    if any(m for _, _, _, m, _ in denials):
        assert "protocol: rest" in s.stdout, s.stdout
    else:
        assert "protocol:" not in s.stdout and "rules:" not in s.stdout, s.stdout
    for args, allowed in evals:
        _eval(cordon_bin, p, args, allowed, name)


def test_unreadable_policy_refused(cordon_bin, tmp_path):
    """OpenShell falls back to its restrictive default; cordon refuses."""
    r = _cordon(cordon_bin, "policy", "check", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "cannot read the policy: No such file or directory" in r.stderr
    # cordon run refuses before anything runs (no restrictive default)
    (tmp_path / "bad.yaml").write_text("this is not valid yaml: [[[")
    (tmp_path / "root.yaml").write_text(ROOT)
    marker = tmp_path / "ran"
    for pol, needle in (("missing.yaml", "No such file or directory"), ("bad.yaml", "invalid YAML"),
                        ("root.yaml", "must not run as root")):
        r = subprocess.run([cordon_bin, "run", "--policy", str(tmp_path / pol), "--", "touch",
                            str(marker)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 125 and needle in r.stderr, (pol, r.stderr)
        assert not marker.exists()


@pytest.mark.timeout(60)
def test_no_baseline_paths_added(sandbox):
    """RUN rows: an explicit read_only /tmp stays read-only (OpenShell's
    enrichment must not promote it either); and cordon adds no baseline:
    /var/log, which OpenShell would add read-only, does not exist."""
    p = sandbox.write_policy(
        "version: 1\nfilesystem_policy:\n  include_workdir: false\n"
        "  read_only: [/usr, /lib, /lib64, /bin, /etc, /tmp]\n  read_write: [/dev/null]\n"
        "landlock:\n  compatibility: best_effort\nnetwork_policies:\n  test:\n    endpoints:\n"
        "      - {host: example.com, port: 443}\n    binaries: [{path: /usr/bin/curl}]\n", "ro.yaml")
    r = sandbox.run(["sh", "-c", "echo x > /tmp/f && echo tmp-written; "
                     "test -e /var/log && echo varlog-exists; test -e /app && echo app-exists; "
                     "test -d /tmp && echo tmp-listed; true"], policy=p)
    assert r.code == 0, r
    assert "cannot create /tmp/f" in r.err and "tmp-written" not in r.out, r
    assert "tmp-listed" in r.out, r
    assert "varlog-exists" not in r.out and "app-exists" not in r.out, r


@pytest.mark.timeout(60)
def test_section_without_include_workdir(sandbox):
    """RUN row (the prover's test_include_workdir_default): a filesystem_policy
    section without include_workdir leaves the workdir out, as OpenShell reads
    it; the same section with include_workdir: true grants it read-write."""
    sec = ("version: 1\nfilesystem_policy:\n%s"
           "  read_only: [/usr, /lib, /lib64, /bin, /etc]\n  read_write: [/dev/null]\n"
           "landlock:\n  compatibility: best_effort\n")
    script = ["sh", "-c", "echo x > f && echo work-written; true"]
    r = sandbox.run(script, policy=sandbox.write_policy(sec % "", "nowd.yaml"))
    assert r.code == 0 and "work-written" not in r.out, r
    r = sandbox.run(script, policy=sandbox.write_policy(sec % "  include_workdir: true\n",
                                                        "wd.yaml"))
    assert r.code == 0 and "work-written" in r.out, r
