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
