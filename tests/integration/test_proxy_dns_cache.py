"""cordon proxy: the DNS answer cache (doc/proxy.md "DNS cache").

Every test reads the test DNS server's query log (lib.dnsserver): what the
proxy asked, not how long anything took. The proxy runs one worker here:
the cache is per worker, and with several workers the kernel picks which
worker takes a connection, so the count would depend on that choice.
Names get their own TTL through dns.set(..., ttl=N); every other name in
the suite answers with TTL 0, which the proxy never keeps."""
import subprocess
import time

from lib.clients import assert_denied
from lib.httpclient import connect_tunnel, forward_once

ONE_WORKER = ("--workers", "1")


def policy(endpoints, binary="/usr/bin/python3"):
    return ("version: 1\nnetwork_policies:\n  p:\n    endpoints:\n%s    binaries:\n"
            "      - path: %s\n" % (endpoints, binary))


def ep(host, port, allowed_ips=None):
    s = "      - host: %s\n        port: %d\n" % (host, port)
    if allowed_ips is not None:
        s += "        allowed_ips: [%s]\n" % ", ".join('"%s"' % a for a in allowed_ips)
    return s


def tunnel(p, host, port=80):
    c, r = connect_tunnel(p.port, host, port)
    c.close()
    return r


def test_second_connect_within_ttl_asks_nothing(testnet, cordon_proxy):
    dns = testnet.dns
    dns.set("cache1.test", testnet.ip, ttl=300)   # capped at the default 60 s
    p = cordon_proxy(policy(ep("cache1.test", 80, [testnet.cidr]) +
                            ep("cache1.test", testnet.http2, [testnet.cidr])), *ONE_WORKER)
    assert tunnel(p, "cache1.test").status == 200
    asked = dns.count("cache1.test")
    assert asked >= 1, dns.queries
    # again, by CONNECT and by absolute-form, another port, another case:
    # answered from the cache
    assert tunnel(p, "cache1.test").status == 200
    assert forward_once(p.port, "http://CACHE1.test/").status == 200
    assert tunnel(p, "cache1.test", testnet.http2).status == 200
    assert dns.count("cache1.test") == asked, dns.queries


def test_ttl_zero_answers_are_asked_every_time(testnet, cordon_proxy):
    dns = testnet.dns
    dns.set("ttl0.test", testnet.ip, ttl=0)
    p = cordon_proxy(policy(ep("ttl0.test", 80, [testnet.cidr])), *ONE_WORKER)
    counts = []
    for _ in range(3):
        assert tunnel(p, "ttl0.test").status == 200
        counts.append(dns.count("ttl0.test"))
    assert counts[0] >= 1 and counts[1] > counts[0] and counts[2] > counts[1], counts


def test_cache_ttl_zero_turns_the_cache_off(testnet, cordon_proxy):
    dns = testnet.dns
    dns.set("off.test", testnet.ip, ttl=300)
    p = cordon_proxy(policy(ep("off.test", 80, [testnet.cidr]) +
                            ep("gone-off.test", 80, [testnet.cidr])), *ONE_WORKER,
                     "--dns-cache-ttl", "0")
    counts = []
    for _ in range(3):
        assert tunnel(p, "off.test").status == 200
        counts.append(dns.count("off.test"))
    assert counts[0] >= 1 and counts[1] > counts[0] and counts[2] > counts[1], counts
    # a name that does not exist is asked every time too
    neg = []
    for _ in range(2):
        assert_denied(tunnel(p, "gone-off.test"), "resolve_failed", status=502)
        neg.append(dns.count("gone-off.test"))
    assert 1 <= neg[0] < neg[1], (neg, dns.queries)


def test_negative_answers_are_kept_briefly(testnet, cordon_proxy):
    """NXDOMAIN is kept (a second connect asks nothing) but for at most 5 s:
    once the name exists, the proxy finds it without a restart. The 5 s
    bound itself is checked on the cache's own clock in
    tests/unit/test_dnscache.c; here the test waits, bounded, for the real
    condition (the name resolves)."""
    dns = testnet.dns
    dns.set("later.test", None)
    p = cordon_proxy(policy(ep("later.test", 80, [testnet.cidr])), *ONE_WORKER)
    t0 = time.monotonic()
    assert_denied(tunnel(p, "later.test"), "resolve_failed", status=502)
    asked = dns.count("later.test")
    assert asked >= 1
    assert_denied(forward_once(p.port, "http://later.test/"), "resolve_failed", status=502)
    if time.monotonic() - t0 < 4.0:   # still inside the shortest negative life
        assert dns.count("later.test") == asked, dns.queries
    dns.set("later.test", testnet.ip, ttl=0)
    deadline = time.monotonic() + 30
    while True:
        r = tunnel(p, "later.test")
        if r.status == 200:
            break
        assert_denied(r, "resolve_failed", status=502)
        assert time.monotonic() < deadline, "the NXDOMAIN answer was kept for 30 s"
        time.sleep(0.2)
    assert dns.count("later.test") > asked


def test_denied_name_is_never_asked(testnet, cordon_proxy):
    dns = testnet.dns
    dns.set("deniedc.test", testnet.ip, ttl=300)
    dns.set("allowedc.test", testnet.ip, ttl=300)
    p = cordon_proxy(policy(ep("allowedc.test", 80, [testnet.cidr])), *ONE_WORKER)
    assert tunnel(p, "allowedc.test").status == 200
    for _ in range(2):
        assert_denied(tunnel(p, "deniedc.test"), "no_endpoint", "deniedc.test", 80)
        assert_denied(forward_once(p.port, "http://deniedc.test/"), "no_endpoint")
    # allowed name, wrong port: the policy says no before any lookup either
    assert_denied(tunnel(p, "allowedc.test", 81), "no_endpoint")
    assert dns.count("deniedc.test") == 0, dns.queries


def test_cached_address_is_fenced_on_every_connect(testnet, cordon_proxy):
    """The cache keeps answers, never verdicts: the address fence runs on
    every connect. fenced.test's private address is allowed on port 80
    (allowed_ips) and not on 8080; loopc.test answers 127.0.0.1."""
    dns = testnet.dns
    dns.set("fenced.test", testnet.ip, ttl=300)
    dns.set("loopc.test", "127.0.0.1", ttl=300)
    p = cordon_proxy(policy(ep("fenced.test", 80, [testnet.cidr]) +
                            ep("fenced.test", testnet.http2) +
                            ep("loopc.test", 80, ["10.0.0.0/8"])), *ONE_WORKER)
    assert tunnel(p, "fenced.test").status == 200
    asked = dns.count("fenced.test")
    for _ in range(2):
        assert_denied(tunnel(p, "fenced.test", testnet.http2), "address_blocked",
                      "fenced.test", testnet.http2)
        assert tunnel(p, "fenced.test").status == 200
    assert dns.count("fenced.test") == asked, dns.queries
    for _ in range(3):
        assert_denied(tunnel(p, "loopc.test"), "address_blocked", "loopc.test", 80)
        assert_denied(forward_once(p.port, "http://loopc.test/"), "address_blocked")
    n = dns.count("loopc.test")
    assert 1 <= n <= 2, dns.queries     # one A and one AAAA query, then the cache
    ev = p.wait_events(6, event="decision", decision="deny", reason_code="address_blocked",
                       host="loopc.test")
    assert len(ev) == 6


def test_help_and_bad_value(cordon_bin):
    out = subprocess.run([cordon_bin, "proxy", "--help"], capture_output=True, text=True,
                         timeout=10)
    assert "--dns-cache-ttl SECONDS" in out.stdout, out.stdout
    bad = subprocess.run([cordon_bin, "proxy", "--policy", "/dev/null", "--listen",
                          "127.0.0.1:0", "--dns-cache-ttl", "soon"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0
    assert "--dns-cache-ttl: 'soon' is not a number in 0..86400" in bad.stderr, bad.stderr
