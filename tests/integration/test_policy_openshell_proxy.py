"""OpenShell's proxy tests, walked one by one (#13).

Every test of NVIDIA/OpenShell (2f7fb65 of 2026-08-21; names as FILE::TEST in
openshell_proxy_tests.txt) in

  crates/openshell-supervisor-network/src/proxy.rs           (270 tests)
  crates/openshell-supervisor-network/src/upstream_proxy.rs  (53)
  crates/openshell-supervisor-network/src/l7/tls.rs          (16)

is one of

  FENCE           a decision the proxy takes after the policy: the address
                  fence (private, always-blocked, allowed_ips, IP literal
                  hosts, control-plane ports) and how a CONNECT target or an
                  absolute-form URI is read. Re-expressed as real requests
                  from a real client through a real `cordon proxy`, to real
                  peers on those very addresses — all inside an island of
                  two network namespaces that reaches nothing else
                  (island.py);
  EVAL / CHECK    a policy decision, asked of `cordon policy eval`, or a
                  load decision, asked of `cordon policy check`;
  NOT_A_DECISION  a test of machinery, not of a decision (listener back-off,
                  response shapes, telemetry, credential injection,
                  middleware, inference routing internals, TLS plumbing),
                  with what cordon does about the same concern and where
                  that is tested;
  NOT_APPLICABLE  a feature cordon does not have (chaining through a
                  corporate upstream proxy, the driver's host-gateway alias);
  DIFFERENT       a deliberate difference, in doc/policy.md "Where we differ".

test_every_upstream_test_is_accounted_for keeps the lists and the name file
in step (270 + 53 + 16 = 339).

Two decisions differed and were fixed by this walk: cordon let an
`allowed_ips` or exact-host endpoint reach cluster control-plane ports
(2379, 2380, 6443, 10250, 10255), and loaded an `allowed_ips` entry that
overlaps always-blocked space (`0.0.0.0/0`) with a warning, where OpenShell
denies every connection through it."""
import json
import os
import subprocess

import pytest

from island import Island

PROXY = "crates/openshell-supervisor-network/src/proxy.rs::"
UPX = "crates/openshell-supervisor-network/src/upstream_proxy.rs::"
TLS = "crates/openshell-supervisor-network/src/l7/tls.rs::"

UPSTREAM = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "openshell_proxy_tests.txt")).read().split()

# -- the island ------------------------------------------------------------------
PUBLIC4 = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1",
           "100.63.255.255", "203.0.113.10"]
PRIVATE4 = ["10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1",
            "192.168.255.255", "100.64.0.1", "100.100.50.3", "100.127.255.255", "192.0.0.1",
            "198.18.0.1", "198.19.255.255", "198.51.100.1", "203.0.113.1", "192.168.1.105",
            "10.0.5.20", "192.168.1.100", "10.86.8.223", "10.0.0.5", "10.0.5.1", "10.0.6.1",
            "10.0.5.21"]
V6 = ["2001:4860:4860::8888", "fdc4:f303:9324::254"]
PORTS = [80, 81, 443, 2379, 2380, 6443, 8000, 8080, 9090, 10250, 10255, 65535]
# name → address, answered by the island's DNS server (the proxy's resolver)
NAMES = {
    "pub.island.test": "8.8.8.8", "one.island.test": "1.1.1.1",
    "example.island.test": "93.184.216.34", "n172-32.island.test": "172.32.0.1",
    "n100-128.island.test": "100.128.0.1", "n100-63.island.test": "100.63.255.255",
    "lo1.island.test": "127.0.0.1", "lo2.island.test": "127.0.0.2",
    "p10a.island.test": "10.0.0.1", "p10b.island.test": "10.255.255.255",
    "p172a.island.test": "172.16.0.1", "p172b.island.test": "172.31.255.255",
    "p192a.island.test": "192.168.0.1", "p192b.island.test": "192.168.255.255",
    "meta.island.test": "169.254.169.254", "ll1.island.test": "169.254.0.1",
    "ll2.island.test": "169.254.1.2", "zero.island.test": "0.0.0.0",
    "cg1.island.test": "100.64.0.1", "cg2.island.test": "100.100.50.3",
    "cg3.island.test": "100.127.255.255", "s192-0-0.island.test": "192.0.0.1",
    "s198-18.island.test": "198.18.0.1", "s198-19.island.test": "198.19.255.255",
    "s198-51.island.test": "198.51.100.1", "s203-0.island.test": "203.0.113.1",
    "m-cg.island.test": "::ffff:100.64.0.1", "v6lo.island.test": "::1",
    "v6zero.island.test": "::", "v6ll.island.test": "fe80::1",
    "ula.island.test": "fdc4:f303:9324::254", "m-priv.island.test": "::ffff:10.0.0.1",
    "m-lo.island.test": "::ffff:127.0.0.1", "m-meta.island.test": "::ffff:169.254.169.254",
    "v6pub.island.test": "2001:4860:4860::8888", "m-pub.island.test": "::ffff:8.8.8.8",
    "searxng.island.test": "192.168.1.105", "literal.island.test": "10.0.5.20",
    "kube.island.test": "10.0.0.5", "pubk8s.island.test": "8.8.8.8",
    # the same names under the other suffixes the policies below use
    "searxng.exact.test": "192.168.1.105", "loopback.exact.test": "127.0.0.1",
    "metadata.exact.test": "169.254.169.254", "kube.exact.test": "10.0.0.5",
    "pubk8s.exact.test": "8.8.8.8", "literal.exact.test": "10.0.5.20",
    "p10a.wrong.test": "10.0.0.1", "pub.wrong.test": "8.8.8.8",
    "searxng.allowed.test": "192.168.1.105",
    "mixed.island.test": "8.8.8.8,10.0.0.1",
}


@pytest.fixture(scope="module")
def island(request):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    with Island(v4=PUBLIC4 + PRIVATE4, v6=V6, ports=PORTS, names=NAMES) as isl:
        yield isl
        bad = isl.stop_proxies()
        assert not bad, bad


def policy(endpoints):
    return ("version: 1\nnetwork_policies:\n  island:\n    endpoints:\n%s"
            "    binaries:\n      - path: /usr/bin/python3\n" % endpoints)


ALLOW = "allow"

# Scenario policies. Each endpoint line is one YAML flow mapping.
SCENARIOS = {
    # a wildcard host without allowed_ips: public addresses only
    "public_only": ['{host: "*.island.test", ports: [80, 443, 6443, 65535]}'],
    # a hostless endpoint with allowed_ips (decides after resolution)
    "allowed_ips": ['{ports: [80, 443, 2379, 2380, 6443, 10250, 10255], allowed_ips: '
                    '[10.0.0.0/8, 172.16.0.0/12, 192.168.1.105/32, 100.64.0.0/10, fc00::/7, '
                    '8.8.8.0/24]}',
                    '{host: "*.wrong.test", port: 81, allowed_ips: [192.168.0.0/16]}'],
    # exact hosts, with and without allowed_ips
    "exact": ['{host: searxng.exact.test, port: 8080}',
              '{host: loopback.exact.test, port: 80}',
              '{host: metadata.exact.test, port: 80}',
              '{host: kube.exact.test, port: 6443, allowed_ips: [10.0.0.0/8]}',
              '{host: pubk8s.exact.test, ports: [443, 6443]}',
              '{host: literal.exact.test, port: 80}'],
    # IP literal hosts: the address is implied in allowed_ips
    "literal": ['{host: 10.0.5.20, port: 80}', '{host: 192.168.1.100, port: 80}',
                '{host: 10.86.8.223, port: 8000}', '{host: 10.0.0.1, ports: [9090, 8080]}',
                '{host: "2001:4860:4860::8888", port: 80}',
                '{host: 8.8.8.8, ports: [6443, 2379, 2380, 10250, 10255]}',
                '{host: 203.0.113.10, port: 443, tls: skip}',
                '{host: "*.island.test", port: 80}'],
    # allowed_ips as a CIDR and as a bare address
    "cidr": ['{ports: [80], allowed_ips: [10.0.5.0/24]}', '{ports: [81], allowed_ips: [10.0.5.20]}'],
}


def connect(t):
    return {"kind": "connect", "target": t}


def raw(data):
    return {"kind": "raw", "data": data}


def get(url, host=None):
    h = host if host is not None else url.split("://", 1)[-1].split("/", 1)[0].split("?")[0]
    return raw("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (url, h))


BAD = ("bad_target", "bad_request")
BLOCKED = "address_blocked"
# (upstream test, scenario, request, expectation): ALLOW (200, the island's
# peer answered), a deny reason (X-Cordon-Deny), or a tuple of acceptable
# ones. "island /probe" in the body proves the peer on that address answered.
FENCE = [
    # -- is_internal_ip: without allowed_ips only public addresses are reached
    ("test_rejects_ipv4_loopback", "public_only", connect("lo1.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_loopback", "public_only", connect("lo2.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_private_10", "public_only", connect("p10a.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_private_10", "public_only", connect("p10b.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_private_172_16", "public_only", connect("p172a.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_private_172_16", "public_only", connect("p172b.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_private_192_168", "public_only", connect("p192a.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_private_192_168", "public_only", connect("p192b.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_link_local_metadata", "public_only", connect("meta.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_link_local_metadata", "public_only", connect("ll1.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_unspecified", "public_only", connect("zero.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_cgnat", "public_only", connect("cg1.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_cgnat", "public_only", connect("cg2.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_cgnat", "public_only", connect("cg3.island.test:80"), BLOCKED),
    ("test_rejects_ipv4_cgnat", "public_only", connect("n100-128.island.test:80"), ALLOW),
    ("test_rejects_ipv4_cgnat", "public_only", connect("n100-63.island.test:80"), ALLOW),
    ("test_rejects_ipv4_special_use_ranges", "public_only", connect("s192-0-0.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_special_use_ranges", "public_only", connect("s198-18.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_special_use_ranges", "public_only", connect("s198-19.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_special_use_ranges", "public_only", connect("s198-51.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_special_use_ranges", "public_only", connect("s203-0.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv6_mapped_cgnat", "public_only", connect("m-cg.island.test:80"), BLOCKED),
    ("test_allows_ipv4_public", "public_only", connect("pub.island.test:80"), ALLOW),
    ("test_allows_ipv4_public", "public_only", connect("one.island.test:80"), ALLOW),
    ("test_allows_ipv4_public", "public_only", connect("example.island.test:80"), ALLOW),
    ("test_allows_ipv4_non_private_172", "public_only", connect("n172-32.island.test:80"), ALLOW),
    ("test_rejects_ipv6_loopback", "public_only", connect("v6lo.island.test:80"), BLOCKED),
    ("test_rejects_ipv6_unspecified", "public_only", connect("v6zero.island.test:80"), BLOCKED),
    ("test_rejects_ipv6_link_local", "public_only", connect("v6ll.island.test:80"), BLOCKED),
    ("test_rejects_ipv6_unique_local_address", "public_only", connect("ula.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_mapped_ipv6_private", "public_only", connect("m-priv.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_mapped_ipv6_loopback", "public_only", connect("m-lo.island.test:80"),
     BLOCKED),
    ("test_rejects_ipv4_mapped_ipv6_link_local", "public_only", connect("m-meta.island.test:80"),
     BLOCKED),
    ("test_allows_ipv6_public", "public_only", connect("v6pub.island.test:80"), ALLOW),
    ("test_allows_ipv4_mapped_ipv6_public", "public_only", connect("m-pub.island.test:80"), ALLOW),
    # /etc/hosts in OpenShell, the proxy's resolver in cordon: same fence
    ("test_resolve_from_hosts_file_contents_public_ip_passes_default_ssrf_check", "public_only",
     connect("example.island.test:80"), ALLOW),
    ("test_resolve_from_hosts_file_contents_private_ip_requires_allowed_ips", "public_only",
     get("http://searxng.island.test/"), BLOCKED),
    ("test_resolve_from_hosts_file_contents_private_ip_requires_allowed_ips", "allowed_ips",
     get("http://searxng.allowed.test/"), ALLOW),
    ("test_resolve_from_hosts_file_contents_always_blocked_ip_stays_blocked", "allowed_ips",
     connect("lo1.island.test:80"), BLOCKED),
    ("test_resolve_from_hosts_file_contents_returns_empty_without_match", "public_only",
     connect("missing.island.test:80"), "resolve_failed"),
    ("test_resolve_from_hosts_file_contents_requires_exact_alias_match", "public_only",
     connect("searxng.island:80"), "no_endpoint"),
    # cloud metadata and other link-local addresses: always blocked for any
    # host (OpenShell's metadata-only check guards its host-gateway alias)
    ("test_is_cloud_metadata_ip_blocks_known_metadata_ip", "public_only",
     connect("meta.island.test:80"), BLOCKED),
    ("test_is_cloud_metadata_ip_blocks_ipv4_mapped_metadata", "public_only",
     connect("m-meta.island.test:80"), BLOCKED),
    # resolve_and_reject_internal
    ("test_rejects_localhost_resolution", "allowed_ips", connect("localhost:80"),
     ("resolve_failed", BLOCKED)),
    ("test_rejects_loopback_ip_literal", "allowed_ips", connect("127.0.0.1:443"), BLOCKED),
    ("test_rejects_metadata_ip", "allowed_ips", connect("169.254.169.254:80"), BLOCKED),
    ("test_dns_failure_returns_error", "public_only",
     connect("this-host-does-not-exist.island.test:80"), "resolve_failed"),
    # allowed_ips
    ("test_resolve_check_allowed_ips_blocks_loopback", "allowed_ips", connect("127.0.0.1:80"),
     BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_metadata", "allowed_ips",
     connect("169.254.169.254:80"), BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_unspecified", "allowed_ips", connect("0.0.0.0:80"),
     BLOCKED),
    ("test_resolve_check_allowed_ips_rejects_outside_allowlist", "allowed_ips",
     connect("1.1.1.1:443"), BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_control_plane_ports", "allowed_ips",
     connect("8.8.8.8:6443"), BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_control_plane_ports", "allowed_ips",
     connect("8.8.8.8:2379"), BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_control_plane_ports", "allowed_ips",
     connect("8.8.8.8:10250"), BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_control_plane_ports", "allowed_ips",
     connect("10.0.0.5:2380"), BLOCKED),
    ("test_resolve_check_allowed_ips_blocks_control_plane_ports", "allowed_ips",
     connect("10.0.0.5:10255"), BLOCKED),
    ("test_resolve_check_allowed_ips_allows_non_control_plane_ports", "allowed_ips",
     connect("8.8.8.8:443"), ALLOW),
    ("test_forward_public_ip_allowed_without_allowed_ips", "public_only",
     get("http://pub.island.test/"), ALLOW),
    ("test_forward_private_ip_rejected_without_allowed_ips", "public_only",
     get("http://p10a.island.test/"), BLOCKED),
    ("test_forward_private_ip_accepted_with_allowed_ips", "allowed_ips",
     get("http://10.0.0.1/"), ALLOW),
    ("test_forward_private_ip_rejected_with_wrong_allowed_ips", "allowed_ips",
     get("http://p10a.wrong.test:81/"), BLOCKED),
    ("test_forward_loopback_always_blocked_even_with_allowed_ips", "allowed_ips",
     get("http://127.0.0.1/"), BLOCKED),
    ("test_forward_link_local_always_blocked_even_with_allowed_ips", "allowed_ips",
     get("http://169.254.169.254/"), BLOCKED),
    ("test_resolve_reject_internal_fails_closed_on_nul_hostname", "public_only",
     connect("evil.com\0.island.test:443"), BAD),
    ("test_resolve_allowed_ips_fails_closed_on_nul_hostname", "allowed_ips",
     connect("evil.com\0.safe.com:443"), BAD),
    # exact declared hosts (OpenShell lets them reach private addresses
    # without allowed_ips: a deliberate difference, see DIFFERENT)
    ("test_declared_endpoint_loopback_stays_blocked", "exact",
     connect("loopback.exact.test:80"), BLOCKED),
    ("test_declared_endpoint_link_local_stays_blocked", "exact",
     connect("metadata.exact.test:80"), BLOCKED),
    ("test_declared_endpoint_blocks_control_plane_ports", "exact",
     connect("kube.exact.test:6443"), BLOCKED),
    ("test_declared_endpoint_blocks_control_plane_ports", "exact",
     connect("pubk8s.exact.test:6443"), BLOCKED),
    ("test_declared_endpoint_blocks_control_plane_ports", "exact",
     connect("pubk8s.exact.test:443"), ALLOW),
    ("test_declared_endpoint_blocks_control_plane_ports", "public_only",
     connect("pubk8s.island.test:6443"), ALLOW),
    ("test_declared_endpoint_private_hosts_file_resolution_allowed", "exact",
     connect("searxng.exact.test:8080"), BLOCKED),
    # implicit allowed_ips of an IP literal host
    ("test_implicit_allowed_ips_allows_rfc1918", "literal", connect("10.0.5.20:80"), ALLOW),
    ("test_implicit_allowed_ips_returns_ip_for_ipv4_literal", "literal",
     connect("192.168.1.100:80"), ALLOW),
    ("test_implicit_allowed_ips_returns_empty_for_hostname", "exact",
     connect("literal.exact.test:80"), BLOCKED),
    ("test_implicit_allowed_ips_returns_empty_for_wildcard", "literal",
     connect("literal.island.test:80"), BLOCKED),
    ("test_implicit_allowed_ips_returns_empty_for_wildcard", "literal",
     connect("pub.island.test:80"), ALLOW),
    ("test_trusted_gateway_rejects_control_plane_port", "literal", connect("8.8.8.8:6443"),
     BLOCKED),
    ("test_trusted_gateway_rejects_all_control_plane_ports", "literal", connect("8.8.8.8:2379"),
     BLOCKED),
    ("test_trusted_gateway_rejects_all_control_plane_ports", "literal", connect("8.8.8.8:2380"),
     BLOCKED),
    ("test_trusted_gateway_rejects_all_control_plane_ports", "literal", connect("8.8.8.8:10250"),
     BLOCKED),
    ("test_trusted_gateway_rejects_all_control_plane_ports", "literal", connect("8.8.8.8:10255"),
     BLOCKED),
    ("test_trusted_gateway_rejects_cloud_metadata_literal", "allowed_ips",
     connect("169.254.169.254:80"), BLOCKED),
    ("test_trusted_gateway_rejects_loopback_as_trusted_gw", "allowed_ips",
     connect("127.0.0.1:80"), BLOCKED),
    ("test_trusted_gateway_rejects_unspecified_as_trusted_gw", "allowed_ips",
     connect("0.0.0.0:80"), BLOCKED),
    # allowed_ips entries: a CIDR covers its range, a bare address itself
    ("test_parse_cidr_notation", "cidr", connect("10.0.5.1:80"), ALLOW),
    ("test_parse_cidr_notation", "cidr", connect("10.0.6.1:80"), BLOCKED),
    ("test_parse_exact_ip", "cidr", connect("10.0.5.20:81"), ALLOW),
    ("test_parse_exact_ip", "cidr", connect("10.0.5.21:81"), BLOCKED),
    ("test_parse_multiple_entries", "allowed_ips", connect("10.0.0.1:80"), ALLOW),
    ("test_parse_multiple_entries", "allowed_ips", connect("172.16.0.1:80"), ALLOW),
    ("test_parse_multiple_entries", "allowed_ips", connect("192.168.1.105:80"), ALLOW),
    ("test_parse_multiple_entries", "allowed_ips", connect("192.168.0.1:80"), BLOCKED),
    # tls: skip: relayed raw, neither refused nor denied
    ("connect_handler_tls_skip_route_is_not_refused", "literal", connect("203.0.113.10:443"),
     ALLOW),
    # CONNECT targets (parse_target): what passes the parser still meets the
    # policy and the fence; cordon refuses malformed authorities outright
    ("test_parse_target_valid_baseline", "public_only", connect("pub.island.test:443"), ALLOW),
    ("test_parse_target_preserves_case", "public_only", connect("PUB.ISLAND.TEST:443"), ALLOW),
    ("test_parse_target_accepts_empty_host", "allowed_ips", connect(":443"), BAD),
    ("test_parse_target_nul_byte_passes_through", "public_only",
     connect("evil.com\0.island.test:443"), BAD),
    ("test_parse_target_control_char_passes_through", "public_only",
     connect("evil\x01.island.test:443"), BAD),
    ("test_parse_target_percent_encoded_dot_is_literal", "public_only",
     connect("evil%2eisland.test:443"), BAD + ("no_endpoint",)),
    ("test_parse_target_percent_encoded_nul_is_literal", "public_only",
     connect("evil%00.island.test:443"), BAD + ("resolve_failed",)),
    ("test_parse_target_rejects_missing_port_separator", "public_only",
     connect("pub.island.test"), BAD),
    ("test_parse_target_rejects_non_numeric_port", "public_only",
     connect("pub.island.test:notaport"), BAD),
    ("test_parse_target_rejects_port_overflow", "public_only",
     connect("pub.island.test:65536"), BAD),
    ("test_parse_target_accepts_port_zero", "allowed_ips", connect("10.0.0.1:0"),
     BAD + ("no_endpoint",)),
    ("test_parse_target_accepts_port_max", "public_only", connect("pub.island.test:65535"),
     ALLOW),
    ("test_parse_target_bracket_chars_pass_through", "public_only",
     connect("a]b[c.island.test:443"), BAD),
    ("test_parse_target_oversized_hostname_accepted", "public_only",
     connect("a" * 242 + ".island.test:443"), BAD + ("no_endpoint",)),
    ("test_parse_target_backslash_passes_through", "public_only",
     connect("evil.com\\..island.test:443"), BAD),
    ("test_parse_target_slash_passes_through", "public_only",
     connect("evil.com/../pub.island.test:443"), BAD),
    ("test_parse_target_extra_colon_fails_port_parse", "public_only",
     connect("pub.island.test:80:extra"), BAD),
    ("test_parse_target_ipv6_bracket_notation", "literal",
     connect("[2001:4860:4860::8888]:80"), ALLOW),
    ("test_parse_target_ipv6_bracket_notation", "allowed_ips", connect("[::1]:443"), BLOCKED),
    ("test_parse_target_rejects_malformed_ipv6_brackets", "allowed_ips", connect("[::1:443"), BAD),
    ("test_parse_target_rejects_malformed_ipv6_brackets", "allowed_ips", connect("[::1]"), BAD),
    ("test_parse_target_rejects_malformed_ipv6_brackets", "allowed_ips", connect("[::1]443"), BAD),
    ("test_parse_target_rejects_malformed_ipv6_brackets", "allowed_ips", connect("[::1]:"), BAD),
    ("test_parse_target_rejects_malformed_ipv6_brackets", "allowed_ips",
     connect("[::1]:notaport"), BAD),
    # absolute-form URIs (parse_proxy_uri): the path reaches the peer as sent
    ("test_parse_proxy_uri_standard", "literal", get("http://10.86.8.223:8000/screenshot/"),
     "island /screenshot/"),
    ("test_parse_proxy_uri_default_port", "public_only", get("http://pub.island.test/path"),
     "island /path"),
    # https:// defaults to 443: the exact endpoint lists 443 (not 80), so the
    # request is allowed and the proxy speaks TLS to the island's plain peer
    ("test_parse_proxy_uri_https_default_port", "exact", get("https://pubk8s.exact.test/v1/chat"),
     ("upstream_tls_handshake",)),
    ("test_parse_proxy_uri_missing_path", "literal", get("http://10.0.0.1:9090"), "island /"),
    ("test_parse_proxy_uri_with_query", "literal", get("http://10.0.0.1:9090/api?key=val&foo=bar"),
     "island /api?key=val&foo=bar"),
    ("test_parse_proxy_uri_with_query_and_no_path", "literal",
     get("http://10.0.0.1:8080?key=val&foo=bar"), "island /?key=val&foo=bar"),
    ("test_parse_proxy_uri_ipv6", "literal", get("http://[2001:4860:4860::8888]:80/test"),
     "island /test"),
    ("test_parse_proxy_uri_ipv6_default_port", "literal", get("http://[2001:4860:4860::8888]/path"),
     "island /path"),
    ("test_parse_proxy_uri_ipv6_with_query_and_no_path", "literal",
     get("http://[2001:4860:4860::8888]?key=val"), "island /?key=val"),
    ("test_parse_proxy_uri_rejects_fragment", "public_only", get("http://pub.island.test#secret"),
     BAD),
    ("test_parse_proxy_uri_rejects_fragment", "literal",
     get("http://[2001:4860:4860::8888]#secret"), BAD),
    ("test_parse_proxy_uri_missing_scheme", "public_only", get("pub.island.test/path"),
     BAD + ("not_a_proxy_request",)),
    ("test_parse_proxy_uri_empty_host", "allowed_ips", get("http://:80/path", host="x"), BAD),
    ("test_parse_proxy_uri_nul_byte_in_host", "public_only",
     get("http://evil.com\0.island.test:80/path", host="pub.island.test"), BAD),
    ("test_parse_proxy_uri_control_char_in_host", "public_only",
     get("http://evil\x01.island.test:80/", host="pub.island.test"), BAD),
    ("test_parse_proxy_uri_percent_encoded_dot_in_host", "public_only",
     get("http://evil%2eisland.test:80/", host="pub.island.test"), BAD + ("no_endpoint",)),
    ("test_parse_proxy_uri_oversized_hostname", "public_only",
     get("http://" + "a" * 242 + ".island.test:80/", host="pub.island.test"),
     BAD + ("no_endpoint",)),
    # requests the proxy refuses before any policy or dispatch
    ("malformed_forward_headers_are_rejected_before_route_or_middleware_dispatch", "public_only",
     raw("GET http://pub.island.test/ HTTP/1.1\r\nHost: pub.island.test\r\n"
         "X-Guard: before\0after\r\n\r\n"), "bad_request"),
    ("malformed_forward_headers_are_rejected_before_route_or_middleware_dispatch", "public_only",
     raw("GET http://unmatched.example.com/ HTTP/1.1\r\nHost: unmatched.example.com\r\n"
         "X-Guard: before\0after\r\n\r\n"), "bad_request"),
    ("malformed_request_lines_are_rejected_before_connect_or_forward_dispatch", "public_only",
     raw("GET http://pub.island.test/ HTTP/1.1 extra\r\nHost: pub.island.test\r\n\r\n"),
     "bad_request"),
    ("malformed_request_lines_are_rejected_before_connect_or_forward_dispatch", "public_only",
     raw("CONNECT pub.island.test:443 HTTP/1.1 extra\r\nHost: pub.island.test\r\n\r\n"),
     "bad_request"),
    ("unsupported_forward_scheme_is_rejected_before_policy_or_middleware_dispatch",
     "public_only", raw("GET ftp://pub.island.test/resource HTTP/1.1\r\n"
                        "Host: pub.island.test\r\n\r\n"), BAD),
    # an address the fence refuses is a 403 (not a 503, not a hang)
    ("connect_handler_returns_ssrf_403_for_internal_address_not_503", "allowed_ips",
     connect("127.0.0.1:443"), BLOCKED),
    ("forward_handler_preserves_ssrf_response_and_denial_stage", "allowed_ips",
     get("http://127.0.0.1/private"), BLOCKED),
]

_results = {}


def _run_scenario(island, cordon_bin, tmp_path_factory, name):
    if name not in _results:
        p = island.proxy(cordon_bin, policy("".join("      - %s\n" % e for e in SCENARIOS[name])),
                         str(tmp_path_factory.mktemp("island-" + name)), name=name)
        rows = [f for f in FENCE if f[1] == name]
        got = island.client(p.port, [r[2] for r in rows])
        _results[name] = {id(r): g for r, g in zip(rows, got)}
        _results[name]["audit"] = p.audit()
        assert p.alive(), p.stderr[-3000:]
    return _results[name]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("row", FENCE, ids=["%s-%d" % (f[0], i) for i, f in enumerate(FENCE)])
def test_fence_case(island, cordon_bin, tmp_path_factory, row):
    name, scen, req, want = row
    got = _run_scenario(island, cordon_bin, tmp_path_factory, scen)[id(row)]
    if want == ALLOW:
        assert got["status"] == 200 and got.get("inner", 200) == 200, (name, req, got)
        assert got["body"].startswith("island "), (name, req, got)
    elif isinstance(want, str) and want.startswith("island "):
        assert got["status"] == 200 and got["body"] == want, (name, req, got)
    else:
        wants = want if isinstance(want, tuple) else (want,)
        assert got["status"] in (400, 403, 502) and got["deny"] in wants, (name, req, got)
        assert not got["body"].startswith("island "), (name, req, got)


def test_mixed_answer_dials_only_the_approved_address(island, cordon_bin, tmp_path):
    """Not an upstream test: doc/policy.md's difference for a DNS answer with
    a public and a private address. OpenShell refuses the CONNECT; cordon
    drops the private answer and dials only the public one."""
    p = island.proxy(cordon_bin, policy("      - %s\n" % SCENARIOS["public_only"][0]),
                     str(tmp_path), name="mixed")
    got = island.client(p.port, [connect("mixed.island.test:80")])[0]
    assert got["status"] == 200 and got["body"] == "island /probe", got
    ev = p.wait_events(1, event="decision", host="mixed.island.test")
    assert (ev[0].get("resolved") or "").split(":")[0] == "8.8.8.8", ev


# -- policy decisions: cordon policy eval ---------------------------------------------
EVAL_POLICIES = {
    # a binary glob; the endpoint with and without tls: skip
    "glob": """\
version: 1
network_policies:
  test_allow:
    endpoints:
      - { host: "203.0.113.10", port: 443 }
      - { host: "203.0.113.11", port: 443, tls: skip }
    binaries:
      - { path: "/tmp/openshell-connect-test/*" }
""",
    # a REST catch-all and a GraphQL endpoint on /graphql, same host and port
    "route": """\
version: 1
network_policies:
  api:
    endpoints:
      - { host: api.example.com, port: 443, protocol: rest, path: "/**",
          rules: [{allow: {method: "*", path: "/**"}}] }
      - { host: api.example.com, port: 443, protocol: graphql, path: /graphql,
          rules: [{allow: {operation_type: query, fields: [viewer]}}] }
    binaries: [{ path: /usr/bin/curl }]
""",
    # OpenShell's endpoint-only test policy, and its deny-reason policy
    "l7": """\
version: 1
network_policies:
  test_l7:
    endpoints:
      - host: host.k3d.internal
        port: 56123
        protocol: rest
        enforcement: enforce
        rules:
          - allow: {method: GET, path: /allowed}
    binaries: [{ path: /usr/bin/curl }]
  allow_api:
    endpoints:
      - { host: api.example.com, port: 443 }
    binaries: [{ path: /usr/bin/curl }]
""",
    "jsonrpc": """\
version: 1
network_policies:
  rpc:
    endpoints:
      - { host: api.example.test, port: 443, protocol: json-rpc,
          rules: [{allow: {method: reports.list}}] }
    binaries: [{ path: /usr/bin/node }]
""",
}

GQL_MUTATION = '{"query": "mutation { deleteRepo }"}'
GQL_QUERY = '{"query": "query { viewer }"}'
# (upstream test, policy, eval arguments, allow, needle in stdout)
EVAL = [
    ("handler_test_policy_allows_glob_binary_and_reads_tls_mode", "glob",
     ["--host", "203.0.113.10", "--port", "443", "--binary",
      "/tmp/openshell-connect-test/connect-bash"], True, "policy: test_allow"),
    ("handler_test_policy_allows_glob_binary_and_reads_tls_mode", "glob",
     ["--host", "203.0.113.11", "--port", "443", "--binary",
      "/tmp/openshell-connect-test/connect-bash"], True, "policy: test_allow"),
    ("handler_test_policy_allows_glob_binary_and_reads_tls_mode", "glob",
     ["--host", "203.0.113.10", "--port", "443", "--binary", "/tmp/other/connect-bash"], False,
     "binary_not_allowed"),
    # the path-specific endpoint judges /graphql; the catch-all the rest
    ("l7_route_selection_prefers_path_specific_graphql_endpoint", "route",
     ["--host", "api.example.com", "--port", "443", "--binary", "/usr/bin/curl", "--method",
      "POST", "--path", "/graphql", "--body", GQL_MUTATION], False, "endpoints[1]"),
    ("l7_route_selection_prefers_path_specific_graphql_endpoint", "route",
     ["--host", "api.example.com", "--port", "443", "--binary", "/usr/bin/curl", "--method",
      "POST", "--path", "/graphql", "--body", GQL_QUERY], True, "l7: allow"),
    ("l7_route_selection_prefers_path_specific_graphql_endpoint", "route",
     ["--host", "api.example.com", "--port", "443", "--binary", "/usr/bin/curl", "--method",
      "POST", "--path", "/repos/org/repo", "--body", GQL_MUTATION], True,
     "l7_rule: rules[0]"),
    # binary identity is always required (OpenShell's relaxed mode: DIFFERENT)
    ("endpoint_only_opa_allows_declared_endpoint_without_process_identity", "l7",
     ["--host", "host.k3d.internal", "--port", "56123", "--binary", "/usr/bin/curl",
      "--method", "GET", "--path", "/allowed"], True, "policy: test_l7"),
    ("endpoint_only_opa_allows_declared_endpoint_without_process_identity", "l7",
     ["--host", "host.k3d.internal", "--port", "56123", "--binary", "/usr/bin/wget"], False,
     "binary_not_allowed"),
    ("endpoint_only_opa_allows_declared_endpoint_without_process_identity", "l7",
     ["--host", "api.example.com", "--port", "443", "--binary", "/usr/bin/wget"], False, None),
    ("endpoint_only_opa_allows_declared_endpoint_without_process_identity", "l7",
     ["--host", "api.example.org", "--port", "443", "--binary", "/usr/bin/curl"], False,
     "no_endpoint"),
    # the deny reason names the binary and the policy
    ("policy_deny_response_includes_reason", "l7",
     ["--host", "api.example.com", "--port", "443", "--binary", "/usr/bin/node",
      "--ancestor", "/usr/local/bin/claude"], False, "binary_not_allowed"),
    # JSON-RPC bodies that cannot be judged are denied, with the reason
    ("l7_hard_deny_reason_includes_jsonrpc_errors", "jsonrpc",
     ["--host", "api.example.test", "--port", "443", "--binary", "/usr/bin/node", "--method",
      "POST", "--path", "/", "--body", "not json"], False, "not valid JSON"),
    ("l7_hard_deny_reason_includes_jsonrpc_errors", "jsonrpc",
     ["--host", "api.example.test", "--port", "443", "--binary", "/usr/bin/node", "--method",
      "POST", "--path", "/", "--body", '{"id": 1, "method": "reports.list"}'], False,
     "not JSON-RPC 2.0"),
    ("l7_hard_deny_reason_includes_jsonrpc_errors", "jsonrpc",
     ["--host", "api.example.test", "--port", "443", "--binary", "/usr/bin/node", "--method",
      "POST", "--path", "/", "--body", '{"jsonrpc": "2.0", "id": 1, "method": "reports.list"}'],
     True, "l7: allow"),
]


@pytest.fixture(scope="module")
def eval_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("openshell-proxy-eval")
    out = {}
    for k, text in EVAL_POLICIES.items():
        (d / (k + ".yaml")).write_text(text, encoding="utf-8")
        out[k] = str(d / (k + ".yaml"))
    return out


def test_eval_policies_load(cordon_bin, eval_files):
    for k, f in eval_files.items():
        r = subprocess.run([cordon_bin, "policy", "check", f], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 0, (k, r.stderr)


@pytest.mark.parametrize("row", EVAL, ids=["%s-%d" % (e[0], i) for i, e in enumerate(EVAL)])
def test_eval_case(cordon_bin, eval_files, row):
    name, pol, args, allow, needle = row
    r = subprocess.run([cordon_bin, "policy", "eval", eval_files[pol]] + args,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == (0 if allow else 1), (name, r.stdout, r.stderr)
    if "--method" in args:
        assert ("l7: allow" if allow else "l7: deny") in r.stdout or not allow, (name, r.stdout)
    if needle:
        assert needle in r.stdout, (name, needle, r.stdout)


# -- load decisions: cordon policy check ---------------------------------------------
def _one(endpoint):
    return ("version: 1\nnetwork_policies:\n  a:\n    endpoints:\n      - %s\n"
            "    binaries: [{path: /usr/bin/curl}]\n" % endpoint)


def _ips(*ips):
    return _one("{port: 80, allowed_ips: [%s]}" % ", ".join('"%s"' % i for i in ips))


# (upstream test, policy text, loads, needle in stderr)
CHECK = [
    ("test_parse_invalid_entry_errors", _ips("not-an-ip"), False, "is not an IP address or CIDR"),
    ("test_parse_mixed_valid_invalid_errors", _ips("10.0.5.0/24", "garbage"), False,
     "'garbage' is not an IP address or CIDR"),
    ("test_parse_allowed_ips_broad_cidr_is_accepted", _ips("10.0.0.0/8"), True, None),
    ("test_parse_allowed_ips_rejects_loopback_cidr", _ips("127.0.0.0/8"), False, "always blocked"),
    ("test_parse_allowed_ips_rejects_link_local_cidr", _ips("169.254.0.0/16"), False,
     "always blocked"),
    ("test_parse_allowed_ips_rejects_unspecified", _ips("0.0.0.0"), False, "always blocked"),
    ("test_parse_allowed_ips_rejects_single_loopback_ip", _ips("127.0.0.1"), False,
     "always blocked"),
    ("test_parse_allowed_ips_rejects_single_metadata_ip", _ips("169.254.169.254"), False,
     "always blocked"),
    ("test_parse_allowed_ips_rejects_wildcard_cidr", _ips("0.0.0.0/0"), False,
     "overlaps always-blocked space"),
    ("test_parse_allowed_ips_rejects_wildcard_cidr", _ips("::/0"), False,
     "overlaps always-blocked space"),
    ("test_parse_allowed_ips_mixed_valid_and_blocked", _ips("10.0.5.0/24", "127.0.0.1"), False,
     "always blocked"),
    ("test_parse_allowed_ips_accepts_rfc1918", _ips("10.0.5.0/24", "192.168.1.0/24"), True, None),
    ("test_always_blocked_loopback_v4", _ips("127.0.0.2"), False, "loopback"),
    ("test_always_blocked_link_local_v4", _ips("169.254.0.1"), False, "link-local"),
    ("test_always_blocked_loopback_v6", _ips("::1"), False, "loopback"),
    ("test_always_blocked_link_local_v6", _ips("fe80::1"), False, "link-local"),
    ("test_always_blocked_ipv4_unspecified", _ips("0.0.0.0"), False, "unspecified"),
    ("test_always_blocked_ipv6_unspecified", _ips("::"), False, "unspecified"),
    ("test_always_blocked_ipv4_mapped_v6_loopback", _ips("::ffff:127.0.0.1"), False, "loopback"),
    ("test_always_blocked_ipv4_mapped_v6_link_local", _ips("::ffff:169.254.169.254"), False,
     "link-local"),
    ("test_always_blocked_allows_rfc1918", _ips("10.0.0.1", "172.16.0.1", "192.168.0.1"), True,
     None),
    ("test_always_blocked_allows_public", _ips("8.8.8.8", "2001:4860:4860::8888"), True, None),
    # an always-blocked IP literal host: OpenShell loads it and never lets it
    # through (no implicit allowed_ips); cordon says so at load
    ("test_implicit_allowed_ips_skips_loopback", _one("{host: 127.0.0.1, port: 80}"), False,
     "loopback"),
    ("test_implicit_allowed_ips_skips_link_local", _one("{host: 169.254.169.254, port: 80}"),
     False, "link-local"),
    ("test_implicit_allowed_ips_skips_unspecified", _one("{host: 0.0.0.0, port: 80}"), False,
     "unspecified"),
    ("test_implicit_allowed_ips_skips_ipv6_loopback", _one('{host: "::1", port: 80}'), False,
     "loopback"),
]


@pytest.mark.parametrize("row", CHECK, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CHECK)])
def test_check_case(cordon_bin, tmp_path, row):
    name, text, loads, needle = row
    f = tmp_path / "p.yaml"
    f.write_text(text, encoding="utf-8")
    r = subprocess.run([cordon_bin, "policy", "check", str(f)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == (0 if loads else 1), (name, r.stdout, r.stderr)
    if needle:
        assert needle in r.stderr and ":5:" in r.stderr, (name, needle, r.stderr)


# -- not a decision -------------------------------------------------------------------
AUDIT = ("the shape of OpenShell's OCSF telemetry (activity events, denial context, redacted "
         "paths, host names for logs); cordon writes one JSON audit event per decision with "
         "host, port, binary, policy, reason_code and, for requests, method and path, never "
         "query strings or credentials (doc/proxy.md 'Audit'; tests/integration/"
         "test_proxy_basic.py, test_proxy_deny.py wait_events, test_inspect_l7.py)")
MIDDLEWARE = ("network_middlewares are not run by cordon: each loads with a warning that it is "
              "not applied (doc/policy.md network_middlewares; tests/integration/"
              "test_policy_openshell.py)")
DENYBODY = ("the shape of an error answer; cordon's one contract for every denial — a JSON body "
            "(error, reason_code, detail, hint, host, port, binary, policy), X-Cordon-Deny, "
            "Content-Length, Connection: close — is checked by lib/clients.deny_body in "
            "tests/integration/test_proxy_deny.py and test_proxy_basic.py")
TUNNEL = ("what an inspected tunnel accepts; cordon refuses anything but TLS or HTTP/1.x in an "
          "inspected tunnel (l7_unsupported_protocol), refuses the HTTP/2 preface, never offers "
          "h2c upstream and offers only http/1.1 by ALPN (tests/integration/test_inspect_tls.py "
          "test_non_http_in_inspected_tunnel_refused, test_h2_preface_inside_tls_refused, "
          "test_curl_offering_h2_gets_http11; test_inspect_upgrade.py test_h2c_never_offered_*)")
WSOPT = ("options of OpenShell's WebSocket message relay (credential rewriting, message "
         "inspectors); cordon relays frames after the 101 as they are (doc/policy.md protocol: "
         "websocket; tests/integration/test_policy_openshell_websocket.py)")
INFERENCE = ("inference.local routing internals (header allowlist, buffered model discovery, "
             "stream limits, router error codes); cordon's own routing is src/proxy/infer.c, "
             "tested with real SDKs and a fake backend in tests/integration/test_inference.py "
             "(test_unknown_path_gets_json_error_in_callers_shape, test_streams_relayed_per_api, "
             "test_idle_backend_ends_with_error_event, test_mid_stream_kill_ends_with_error_event,"
             " test_body_limit_413_in_api_shape, test_no_routes_configured_answers_503, "
             "test_keepalive_and_pipelining_in_one_tunnel)")
FORWARD = ("how an absolute-form request is rewritten for the upstream; cordon sends origin-form, "
           "takes the authority from the URI and replaces Host, drops Proxy-* and "
           "Connection-listed headers, keeps the body (src/proxy/forward.c; tests/integration/"
           "test_proxy_basic.py test_forward_rewrites_to_origin_form, "
           "test_forward_drops_connection_listed_headers; test_proxy_edge.py "
           "test_forward_host_header_replaced_by_target, test_forward_authority_confusion)")
CREDS = ("credential placeholders, token grants or request signing; cordon holds no provider "
         "credentials and never rewrites a request (the credential fields load with a warning "
         "that they are not applied, doc/policy.md)")
TLSGATE = ("OpenShell's refusal when its TLS terminator is unavailable; cordon has its CA from "
           "start-up (a fresh one per run, or --ca-dir), so an inspected endpoint always "
           "terminates and tls: skip always relays raw (tests/integration/test_inspect_tls.py "
           "test_tls_skip_relays_raw, test_leaf_minted_by_per_run_ca)")
ACCEPT = ("the listener's accept-error policy (back-off, error classes); cordon's workers retry "
          "EAGAIN/ECONNABORTED/EPROTO at once and on EMFILE/ENFILE/ENOBUFS/ENOMEM release spare "
          "descriptors and pause accepting with a back-off (src/proxy/worker.c; tests/"
          "integration/test_proxy_load.py test_1000_concurrent_tunnels, "
          "test_max_conns_refuses_extras_then_recovers)")
HOSTS = ("parsing /etc/hosts; cordon's resolver (c-ares) reads /etc/hosts itself and the fence "
         "judges whatever address it returns (src/proxy/dns.c; tests/unit/test_dns.c); the "
         "fence rows above use DNS answers for the same addresses")
TLSIMPL = ("TLS plumbing: cordon's per-sandbox CA and leaf minting with a bounded cache "
           "(tests/unit/test_tls_ca.c, test_tls_leaf.c), the ClientHello peek that tells TLS from "
           "other bytes (tests/unit/test_tls_peek.c), upstream trust from the system store plus "
           "--upstream-ca PEM files (src/tls/truststore.c; tests/integration/"
           "test_inspect_tls.py test_upstream_cert_not_trusted_is_403), the trust bundle written "
           "for the sandbox (src/tls/bundle.c; tests/integration/test_run_tls.py)")

NOT_A_DECISION = {}


def _add(table, names, why):
    for n in names.split():
        assert n not in table, n
        table[n] = why


_add(NOT_A_DECISION, """forward_policy_denial_ocsf_includes_validation_rationale
forward_l7_parse_rejection_ocsf_includes_denial_context transparent_tcp_allow_ocsf_exposes_correlated_dns_and_dial_chain
forward_ocsf_events_omit_queries_and_credential_key_names
connect_activity_is_skipped_when_l7_will_count_the_request forward_l7_allowed_activity_is_deferred_until_after_ssrf
forward_middleware_denial_does_not_emit_success_activity forward_success_activity_uses_unknown_without_l7
forward_telemetry_path_omits_queries_and_redacts_credential_syntax test_extract_host_from_http_uri
test_extract_host_from_https_uri test_extract_host_from_uri_with_port test_extract_host_from_uri_ipv6
test_extract_host_from_uri_no_path test_extract_host_from_uri_empty test_extract_host_from_uri_malformed""",
     AUDIT)
_add(NOT_A_DECISION, """plaintext_websocket_preflight_denial_does_not_connect_upstream
plaintext_websocket_middleware_inspects_compressed_ws_messages
middleware_failure_response_uses_platform_text_without_policy_guidance
middleware_unavailable_response_is_complete_and_has_no_retry_hint
forward_middleware_pipeline_denies_policy_invalid_transformation
forward_reacquires_static_credentials_after_blocked_middleware
middleware_selected_forward_keeps_canonical_host_on_the_wire
middleware_deny_response_uses_policy_config_identity""", MIDDLEWARE)
_add(NOT_A_DECISION, """policy_deny_response_omits_empty_reason test_json_error_response_403
test_json_error_response_502 test_json_error_response_content_length_matches""", DENYBODY)
_add(NOT_A_DECISION, """tunnel_protocol_classification_detects_supported_protocols
tunnel_protocol_prefix_detection_waits_for_partial_supported_prefixes h2c_prior_knowledge_is_blocked_for_l7_tunnel""",
     TUNNEL)
_add(NOT_A_DECISION, """forward_websocket_upgrade_options_enable_native_policy_context
forward_websocket_upgrade_options_preserve_rest_without_rewrite
rest_websocket_upgrade_carries_guard_without_message_inspector""", WSOPT)
_add(NOT_A_DECISION, """inference_interception_applies_router_header_allowlist
inference_embeddings_served_buffered_with_content_length inference_model_discovery_served_buffered_with_content_length
inference_model_discovery_glob_path_served_buffered inference_model_discovery_error_served_buffered
inference_stream_byte_limit_injects_sse_error inference_stream_upstream_read_error_injects_sse_error
inference_stream_idle_timeout_injects_sse_error router_error_route_not_found_maps_to_400
router_error_no_compatible_route_maps_to_400 router_error_unauthorized_maps_to_401
router_error_upstream_unavailable_maps_to_503 router_error_upstream_protocol_maps_to_502
router_error_internal_maps_to_502 sanitize_response_headers_strips_hop_by_hop
test_keepalive_denies_non_inference_after_routed""", INFERENCE)
_add(NOT_A_DECISION, """test_rewrite_get_request canonical_forward_authority_formats_ports_and_ipv6
forward_host_header_is_replaced_from_absolute_target forward_host_header_is_generated_when_missing
test_rewrite_strips_proxy_headers test_rewrite_replaces_connection_header
test_rewrite_strips_connection_nominated_headers test_rewrite_preserves_body_overflow
test_rewrite_preserves_existing_via test_forward_rewrite_preserves_websocket_upgrade_connection_header""",
     FORWARD)
_add(NOT_A_DECISION, """forward_credentials_capture_endpoint_resolver_and_revision_together
forward_binding_uses_canonical_path_for_dot_segment_traversal live_forward_state_is_authoritative_after_revocation
forward_proxy_injects_token_grant_before_rewriting_request forward_proxy_token_grant_failure_returns_error_before_rewrite
test_rewrite_resolves_placeholder_auth_headers forward_relay_rewrites_urlencoded_body_alias_from_initial_read
forward_relay_rewrites_urlencoded_canonical_body_from_initial_read
forward_relay_body_endpoint_mismatch_is_typed_before_upstream_write
forward_relay_sigv4_endpoint_mismatch_is_typed_before_upstream_write""", CREDS)
_add(NOT_A_DECISION, """test_json_error_response_503_tls_termination_unavailable
connect_without_tls_termination_refused_with_503_before_200
connect_with_tls_termination_or_skip_proceeds_without_writing
connect_handler_refuses_terminating_route_with_503_before_200""", TLSGATE)
_add(NOT_A_DECISION, """accept_backoff_exponential_progression accept_backoff_zero_consecutive_errors
accept_backoff_saturates_at_cap is_resource_pressure_detects_emfile is_resource_pressure_detects_enfile
is_resource_pressure_detects_memory_pressure is_resource_pressure_rejects_other_errors
classify_accept_error_fd_exhaustion_is_transient classify_accept_error_connection_errors_are_transient
classify_accept_error_broken_listener_is_terminal classify_accept_error_unrecognized_errno_is_unknown
handle_accept_error_terminal_exits_immediately handle_accept_error_transient_retries_indefinitely
handle_accept_error_unknown_exits_after_limit handle_accept_error_transient_resets_unknown_counter
handle_accept_error_fd_exhaustion_uses_exponential_backoff classify_accept_error_network_errors_are_transient
classify_accept_error_enonet_is_transient classify_accept_error_resource_pressure_is_transient
handle_accept_error_non_resource_transient_uses_fixed_backoff handle_accept_error_unknown_uses_exponential_backoff
handle_accept_error_resource_counter_persists_across_mixed_transient
handle_accept_error_terminal_leaves_counters_unchanged""", ACCEPT)
_add(NOT_A_DECISION, """test_parse_hosts_file_for_host_handles_comments_invalid_rows_and_case
test_parse_hosts_file_single_entry test_parse_hosts_file_duplicate_same_ip_deduplicated
test_parse_hosts_file_multiple_distinct_ips test_parse_hosts_file_first_entry_wins_on_ambiguity
test_parse_hosts_file_ignores_other_aliases_on_same_line test_parse_hosts_file_alias_not_present
test_parse_hosts_file_comment_lines_skipped test_parse_hosts_file_inline_comment_stripped""", HOSTS)
NOT_A_DECISION.update({
    "test_forward_relay_guard_blocks_stale_generation_before_upstream_write":
        "reload generation guard; a cordon connection keeps the policy snapshot it started "
        "with, and --revoke-on-reload re-decides kept connections (doc/policy.md Runtime; "
        "tests/integration/test_run_revoke.py)",
    "test_forward_relay_rejects_cl_te_smuggling_before_upstream_write":
        "request framing; cordon parses heads with llhttp and refuses Content-Length with "
        "Transfer-Encoding before anything reaches the upstream (tests/unit/"
        "test_http_message.c test_smuggling_refused; tests/integration/test_proxy_chunked.py)",
    "resolve_process_identity_hashes_live_exe_after_hot_swap":
        "identity: an executable that changes after first use is refused (binary_changed; "
        "tests/integration/test_proxy_deny.py test_binary_changed_after_first_use)",
    "resolve_process_identity_denies_fork_exec_shared_socket_ambiguity":
        "identity: a socket shared by processes with different executables is refused "
        "(identity_ambiguous; tests/unit/test_identity.c)",
})
for n in """ca_generation leaf_cert_generation cache_dedup cache_overflow_clears
looks_like_tls_valid_clienthello looks_like_tls_rejects_http looks_like_tls_rejects_short_input
looks_like_tls_rejects_non_tls_binary upstream_config_alpn load_pem_certs_single_ca
load_pem_certs_multiple_cas load_pem_certs_empty_string load_pem_certs_garbage_input
load_pem_certs_malformed_pem_block load_pem_certs_mixed_valid_and_invalid
write_ca_files_includes_sandbox_ca""".split():
    NOT_A_DECISION[TLS + n] = TLSIMPL

# -- not applicable ------------------------------------------------------------------------
CHAIN = ("chaining through a corporate upstream proxy (HTTPS_PROXY/NO_PROXY for the "
         "supervisor, an auth file, CONNECT via the upstream to the validated address): cordon "
         "has no such mode; it always dials the approved address itself. Users ask for it "
         "(/work/shared/reference/user-asks.md §17: enterprises with a mandatory proxy or a "
         "DLP inspector, clusters without a default route)")
GATEWAY = ("OpenShell's host-gateway alias (host.openshell.internal, host.docker.internal, "
           "host.containers.internal → the link-local gateway address its compute driver "
           "writes into /etc/hosts, metadata addresses excluded): cordon has no such alias, and "
           "every link-local address stays blocked for every host (stricter; doc/policy.md "
           "'Where we differ')")
NOT_APPLICABLE = {}
for n in open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "openshell_proxy_tests.txt")).read().split():
    if n.startswith(UPX):
        NOT_APPLICABLE[n] = CHAIN
_add(NOT_APPLICABLE, """test_is_host_gateway_alias_recognises_known_aliases
test_is_host_gateway_alias_is_case_insensitive test_is_host_gateway_alias_rejects_unknown_hosts
test_is_cloud_metadata_ip_allows_other_link_local test_is_cloud_metadata_ip_allows_private_and_public
test_is_cloud_metadata_ip_allows_other_ipv4_mapped_link_local
test_detect_trusted_host_gateway_returns_ip_from_hosts_content
test_detect_trusted_host_gateway_ignores_cloud_metadata_ip test_detect_trusted_host_gateway_no_entry_returns_empty
test_detect_trusted_host_gateway_rejects_loopback test_detect_trusted_host_gateway_rejects_unspecified
test_detect_trusted_host_gateway_rejects_loopback_v6 test_detect_trusted_host_gateway_rejects_private_ip
test_detect_trusted_host_gateway_allows_link_local_non_metadata test_trusted_gateway_allows_link_local_gateway_ip
test_trusted_gateway_rejects_cloud_metadata_ip test_trusted_gateway_rejects_mismatched_ip
test_trusted_gateway_rejects_ip_literal_mismatch test_trusted_gateway_rejects_private_ip_as_trusted_gw""",
     GATEWAY)
NOT_APPLICABLE.update({
    "transparent_tcp_ignores_proxy_hostname_mode_and_connects_to_validated_ip": CHAIN,
    "transparent_tcp_proxy_audit_reports_validated_connect_target": CHAIN,
    "policy_local_preserves_specific_non_http_scheme_error":
        "policy.local is OpenShell's in-sandbox policy-advisor API; cordon's agent-facing "
        "endpoint is http://cordon.local/ (src/proxy/local.c), a different API; other "
        "non-http schemes are refused (the ftp:// row above)",
})

# -- deliberate differences (doc/policy.md "Where we differ") ----------------------------
DIFFERENT = {
    "test_declared_endpoint_private_hosts_file_resolution_allowed":
        "OpenShell lets an exact declared host reach private addresses without allowed_ips; "
        "cordon never does (the fence row above: 403 address_blocked)",
    "endpoint_only_opa_allows_declared_endpoint_without_process_identity":
        "OpenShell can relax binary identity (any program may use a declared endpoint); "
        "cordon always requires it (the eval rows above)",
    "forward_websocket_upgrade_blocks_text_frame_by_policy":
        "OpenShell checks each client WebSocket text message; cordon does not inspect messages "
        "and allows the upgrade only where client text messages would be allowed too",
    "forward_graphql_websocket_upgrade_blocks_unallowed_operation":
        "GraphQL-over-WebSocket operation rules: loaded with a warning, not applied, and their "
        "presence refuses the upgrade (stricter)",
    "l7_hard_deny_reason_includes_jsonrpc_response_frames":
        "an MCP JSON-RPC response POSTed by the client is judged by OpenShell's policy; cordon "
        "refuses it (only requests and notifications are judged)",
    "test_rewrite_forward_request_uses_canonical_path_on_the_wire":
        "OpenShell writes the canonical path onto the wire; cordon forwards the request as sent "
        "and the rules judge the canonical path",
    "h2c_upgrade_request_on_l7_relay_is_denied_without_upstream_write":
        "OpenShell answers a request offering h2c with 403; cordon removes the h2c offer and "
        "the rules judge the request as HTTP/1.1 (so curl --http2 on http:// works); the "
        "upgrade happens in neither (tests/integration/test_inspect_upgrade.py "
        "test_h2c_never_offered_plaintext_tunnel_and_forward, test_curl_http2_over_http_still_works)",
    "test_rewrite_forward_request_preserves_canonical_query_on_the_wire":
        "as above: the request goes upstream as sent, query included",
}


def _full(n):
    return n if "::" in n else PROXY + n


def test_every_upstream_test_is_accounted_for():
    assert len(UPSTREAM) == 339 and len(set(UPSTREAM)) == 339
    assert sum(n.startswith(PROXY) for n in UPSTREAM) == 270
    assert sum(n.startswith(UPX) for n in UPSTREAM) == 53
    assert sum(n.startswith(TLS) for n in UPSTREAM) == 16
    rows = {_full(r[0]) for r in FENCE} | {_full(r[0]) for r in EVAL} | {_full(r[0]) for r in CHECK}
    nad = {_full(n) for n in NOT_A_DECISION}
    na = {_full(n) for n in NOT_APPLICABLE}
    diff = {_full(n) for n in DIFFERENT}
    # one class per name: a difference may keep rows that show cordon's side
    assert not (nad & na) and not (nad & diff) and not (na & diff)
    assert not (rows & nad) and not (rows & na), sorted((rows & nad) | (rows & na))
    decided = rows - diff
    covered = decided | nad | na | diff
    assert sorted(covered - set(UPSTREAM)) == []
    assert [n for n in UPSTREAM if n not in covered] == []
    assert len(decided) + len(nad) + len(na) + len(diff) == 339
