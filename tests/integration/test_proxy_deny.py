"""cordon proxy: SSRF classes, DNS failures, upstream failures, identity."""
import os
import shutil
import time

import pytest

from lib import clients
from lib.clients import CURL, SELF_EXE, assert_denied, curl
from lib.cordon import CordonProxy, NOT_BUILT, policy_check
from lib.httpclient import connect_tunnel, forward_once


def one_policy(endpoints, binary="/usr/bin/python3"):
    return ("version: 1\nnetwork_policies:\n  p:\n    endpoints:\n%s    binaries:\n"
            "      - path: %s\n" % (endpoints, binary))


def ep(host, port, allowed_ips=None, extra=""):
    s = "      - port: %d\n" % port
    if host:
        s += "        host: %s\n" % host
    if allowed_ips is not None:
        s += "        allowed_ips: [%s]\n" % ", ".join('"%s"' % a for a in allowed_ips)
    return s + extra


def both_denied(p, host, port, reason, status=403):
    """CONNECT and absolute-form to host:port both get the denial."""
    c, r = connect_tunnel(p.port, host, port)
    c.close()
    a = assert_denied(r, reason, host, port, status)
    f = forward_once(p.port, "http://%s:%d/" % (host, port))
    b = assert_denied(f, reason, host, port, status)
    return a, b


BLOCKED = ["loop.test", "meta.test", "zero.test", "mcast.test", "bcast.test"]


def test_internal_addresses_blocked_without_allowed_ips(testnet, cordon_proxy):
    p = cordon_proxy(one_policy("".join(ep(h, 80) for h in BLOCKED + ["allowed.test"])))
    for h in BLOCKED:
        both_denied(p, h, 80, "address_blocked")
    # a private address (10.231.X.2) without allowed_ips covering it
    both_denied(p, "allowed.test", 80, "address_blocked")
    ev = p.wait_events(12, event="decision", decision="deny")
    assert {e["reason_code"] for e in ev} == {"address_blocked"}


def test_always_blocked_even_with_allowed_ips(testnet, cordon_proxy):
    p = cordon_proxy(one_policy(
        "".join(ep(h, 80, ["10.0.0.0/8"]) for h in BLOCKED + ["allowed.test"])
        + ep(None, 8080, [testnet.cidr])))
    for h in BLOCKED:
        both_denied(p, h, 80, "address_blocked")
    # the allowed one works, so the denials above are about the addresses
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    c.close()
    assert r.status == 200, r
    # hostless endpoint: any name on 8080 resolving inside allowed_ips
    assert forward_once(p.port, "http://other.test:8080/").status == 200
    for h in ("loop.test", "meta.test"):
        both_denied(p, h, 8080, "address_blocked")


def test_ip_literal_to_loopback_blocked(testnet, cordon_proxy):
    p = cordon_proxy(one_policy(ep(None, 80, [testnet.cidr])))
    for host in ("127.0.0.1", "169.254.169.254", "0.0.0.0"):
        c, r = connect_tunnel(p.port, host, 80)
        c.close()
        assert r.status == 403 and r.header("x-cordon-deny") in ("address_blocked", "no_endpoint"), r


BAD_ALLOWED = [["127.0.0.0/8"], ["127.0.0.1"], ["169.254.169.254/32"], ["169.254.0.0/16"],
               ["::1"], ["fe80::/10"]]


@pytest.mark.parametrize("cidrs", BAD_ALLOWED, ids=lambda c: c[0])
@pytest.mark.parametrize("hostless", [False, True], ids=["host", "hostless"])
def test_allowed_ips_covering_blocked_rejected_at_load(cordon_bin, tmp_path, cidrs, hostless):
    bad = one_policy(ep(None if hostless else "meta.test", 80, cidrs))
    good = one_policy(ep(None if hostless else "meta.test", 80, ["10.231.0.0/16"]))
    r = policy_check(cordon_bin, good, tmp_path)
    if NOT_BUILT in r.stderr:
        pytest.skip("cordon policy is not built yet")
    assert r.returncode == 0, "valid policy rejected: %s" % r.stderr
    r = policy_check(cordon_bin, bad, tmp_path)
    assert r.returncode == 1, "policy with allowed_ips %s accepted (rc %d): %s%s" % (
        cidrs, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip() or r.stdout.strip(), "rejection must say why"


def test_proxy_refuses_to_start_with_blocked_allowed_ips(cordon_bin, tmp_path, dns_server):
    p = CordonProxy(cordon_bin, one_policy(ep("meta.test", 80, ["169.254.0.0/16"])), tmp_path,
                    resolver=dns_server.resolver)
    with pytest.raises(RuntimeError) as e:
        p.start(timeout=5)
    if NOT_BUILT in str(e.value):
        pytest.skip("cordon proxy is not built yet")
    assert not p.alive()
    assert p.proc.returncode != 0
    assert "169.254" in p.stderr, p.stderr


def test_resolve_failed(testnet, cordon_proxy):
    testnet.dns.set("servfail.test", "SERVFAIL")
    p = cordon_proxy(one_policy(ep("nx.test", 80, [testnet.cidr]) +
                                ep("servfail.test", 80, [testnet.cidr])))
    # the contract: every denial except connect_failed is a 403
    # a DNS failure is an upstream error, not a policy denial: 502, same JSON body
    both_denied(p, "nx.test", 80, "resolve_failed", status=502)
    assert testnet.dns.queried("nx.test")
    both_denied(p, "servfail.test", 80, "resolve_failed", status=502)
    assert p.alive()


def test_denied_host_never_resolved(testnet, cordon_proxy):
    p = cordon_proxy(one_policy(ep("allowed.test", 80, [testnet.cidr])) +
                     "  curlonly:\n    endpoints:\n" + ep("other.test", 80, [testnet.cidr]) +
                     "    binaries:\n      - path: /usr/bin/curl\n")
    both_denied(p, "denied.test", 80, "no_endpoint")
    both_denied(p, "allowed.test", 81, "no_endpoint")     # right host, wrong port
    both_denied(p, "other.test", 80, "binary_not_allowed")
    time.sleep(0.2)
    for name in ("denied.test", "other.test"):
        assert not testnet.dns.queried(name), testnet.dns.queries
    # and allowed names are resolved through our resolver
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    c.close()
    assert r.status == 200 and testnet.dns.queried("allowed.test")


def test_connect_failed_refused(testnet, cordon_proxy):
    p = cordon_proxy(one_policy(ep("closed.test", testnet.closed, [testnet.cidr])))
    a, b = both_denied(p, "closed.test", testnet.closed, "connect_failed", status=502)
    ev = p.wait_events(2, event="decision", reason_code="connect_failed")
    assert all(e["host"] == "closed.test" for e in ev)


def test_identity_unresolved_for_foreign_namespace(testnet, cordon_proxy):
    # listen on the veth host side; the client lives in the test namespace,
    # where the proxy cannot see its socket
    p = cordon_proxy(one_policy(ep("allowed.test", 80, [testnet.cidr]), "/usr/bin/curl"),
                     listen_host=testnet.host_ip)
    r = curl(p.port, "http://allowed.test/", proxy_host=testnet.host_ip, wrap=testnet.ns.argv)
    assert r.rc == 0, r.stderr
    clients.deny_body(r.code, r.headers.get, r.body, "identity_unresolved", "allowed.test", 80)
    r = curl(p.port, "http://allowed.test/", tunnel=True, proxy_host=testnet.host_ip,
             wrap=testnet.ns.argv)
    assert r.connect_code == 403, r
    assert not testnet.dns.queried("allowed.test")


def test_binary_changed_after_first_use(testnet, cordon_proxy, tmp_path):
    mycurl = str(tmp_path / "mycurl")
    shutil.copy(CURL, mycurl)
    p = cordon_proxy(one_policy(ep("allowed.test", 80, [testnet.cidr]), mycurl))
    r = curl(p.port, "http://allowed.test/", binary=mycurl)
    assert r.code == 200, r
    with open(mycurl, "ab") as f:       # same path, different content
        f.write(b"\0tampered\0")
    r = curl(p.port, "http://allowed.test/", binary=mycurl)
    assert r.rc == 0, r.stderr
    doc = clients.deny_body(r.code, r.headers.get, r.body, "binary_changed", "allowed.test", 80)
    assert doc["binary"] == mycurl
    ev = p.wait_events(1, event="decision", reason_code="binary_changed")[0]
    assert ev["binary"] == mycurl and ev["pid"] == r.pid
