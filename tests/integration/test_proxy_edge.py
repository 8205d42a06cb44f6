"""cordon proxy: edge cases of tunnels and forwarding (early data, half-close,
framing, authority parsing, Host rewriting, backpressure, policy matching)."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from lib import clients
from lib.clients import SELF_EXE, assert_denied, curl
from lib.httpclient import HttpConn, build_request, connect_tunnel, forward_once
from lib.util import wait_until


def policy(net, extra=""):
    return f"""
version: 1
network_policies:
  web:
    endpoints:
      - host: allowed.test
        ports: [80, 8080]
        allowed_ips: ["{net.cidr}"]
      - host: echo.test
        port: {net.echo}
        allowed_ips: ["{net.cidr}"]
      - host: "*.wild.test"
        port: 80
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: /usr/bin/python3
  curl_only:
    endpoints:
      - host: other.test
        port: 80
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: /usr/bin/curl
{extra}"""


@pytest.fixture
def proxy(testnet, cordon_proxy):
    return cordon_proxy(policy(testnet))


def test_connect_with_early_data(proxy):
    """Bytes sent right behind the CONNECT head (same packet) reach the upstream."""
    with HttpConn.open(proxy.addr) as c:
        c.send(b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n"
               b"GET /echo HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        r = c.read_response("CONNECT")
        assert r.status == 200, r
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/echo", r


def test_tunnel_half_close(proxy, testnet):
    """Client shuts its write side: the upstream sees EOF, and what it still
    sends comes back before the tunnel closes."""
    c, r = connect_tunnel(proxy.port, "echo.test", testnet.echo)
    with c:
        assert r.status == 200, r
        data = os.urandom(200000)
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        got = c.read_to_eof(timeout=5)
        assert got == data, "got %d of %d bytes back" % (len(got), len(data))


def test_tunnel_upstream_close_reaches_client(proxy):
    c, r = connect_tunnel(proxy.port, "allowed.test", 80)
    with c:
        assert r.status == 200
        r = c.request("GET", "/close", "allowed.test")
        assert r.status == 200 and r.body == b"bye"
        assert c.wait_closed(3) < 3


def test_forward_framing_head_204_and_close(proxy):
    with HttpConn.open(proxy.addr) as c:
        r = c.request("HEAD", "http://allowed.test/size/5000", "allowed.test")
        assert r.status == 200 and r.header("content-length") == "5000" and r.body == b""
        r = c.request("GET", "http://allowed.test/status/204", "allowed.test")
        assert r.status == 204
        r = c.request("GET", "http://allowed.test/status/304", "allowed.test")
        assert r.status == 304
        r = c.request("GET", "http://allowed.test/size/7", "allowed.test")
        assert r.status == 200 and len(r.body) == 7
        # upstream closes its side: this client connection either goes on
        # working (new upstream connection) or is closed after the response
        r = c.request("GET", "http://allowed.test/close", "allowed.test")
        assert r.status == 200 and r.body == b"bye"
        try:
            r = c.request("GET", "http://allowed.test/", "allowed.test")
            assert r.status == 200 and r.body == b"hello from upstream", r
        except (EOFError, ConnectionResetError, BrokenPipeError):
            assert (r.header("connection") or "").lower() == "close", \
                "proxy closed the client connection without saying Connection: close"


def test_forward_expect_100_continue(testnet, cordon_proxy):
    p = cordon_proxy(policy(testnet))
    body = b"e" * 2_000_000
    with HttpConn.open(p.addr, 10) as c:
        c.send(build_request("POST", "http://allowed.test/sink", "allowed.test",
                             [("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        r = c.read_response()
        assert r.status == 100, r
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and r.json()["length"] == len(body), r
    # curl uses Expect: 100-continue for big uploads by itself
    big = os.path.join(p.workdir, "upload.bin")
    with open(big, "wb") as f:
        f.write(b"c" * 3_000_000)
    r = curl(p.port, "http://other.test/sink", args=["--data-binary", "@" + big])
    assert r.code == 200 and json.loads(r.body)["length"] == 3_000_000, r


def test_forward_host_header_replaced_by_target(proxy, testnet):
    """RFC 9112 §3.2.2: the proxy ignores the received Host and uses the
    request-target's authority; otherwise an allowed name could carry a
    denied virtual host to a shared upstream."""
    with HttpConn.open(proxy.addr) as c:
        r = c.request("GET", "http://allowed.test/echo", headers=[("Host", "denied.test")])
        assert r.status == 200, r
        hosts = [v for k, v in r.json()["headers"] if k.lower() == "host"]
        assert hosts == ["allowed.test"], hosts
        r = c.request("GET", "http://allowed.test:8080/echo", headers=[("Host", "evil.test")])
        hosts = [v for k, v in r.json()["headers"] if k.lower() == "host"]
        assert hosts == ["allowed.test:8080"], hosts


@pytest.mark.parametrize("url", ["http://allowed.test:80@denied.test/",
                                 "http://allowed.test@denied.test/",
                                 "http://denied.test#@allowed.test/",
                                 "http://denied.test\\@allowed.test/"])
def test_forward_authority_confusion(proxy, testnet, url):
    """The host decided on is the host connected to; tricks with userinfo,
    fragments or backslashes never reach the upstream as allowed.test."""
    with HttpConn.open(proxy.addr) as c:
        c.send(("GET %s HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % url).encode())
        try:
            r = c.read_response()
        except (EOFError, ConnectionResetError):
            pytest.fail("%s: connection closed without a response" % url)
    assert r.status in (400, 403), "%s → %r" % (url, r)
    if r.status == 403:
        assert r.json()["host"] == "denied.test", r
    assert not testnet.dns.queried("denied.test")


def test_connect_host_case_insensitive(proxy, testnet):
    c, r = connect_tunnel(proxy.port, "ALLOWED.Test", 80)
    c.close()
    assert r.status == 200, r
    ev = proxy.wait_events(1, event="decision", decision="allow")[0]
    assert ev["host"] == "allowed.test"


def test_wildcard_host_and_port_list(proxy, testnet):
    for n in ("a.wild.test", "a.b.wild.test", "wild.test"):
        testnet.dns.set(n, testnet.ip)
    assert forward_once(proxy.port, "http://a.wild.test/").status == 200
    # "*." matches exactly one label, as in OpenShell (doc/policy.md), never the apex
    assert_denied(forward_once(proxy.port, "http://a.b.wild.test/"), "no_endpoint")
    assert_denied(forward_once(proxy.port, "http://wild.test/"), "no_endpoint")
    assert forward_once(proxy.port, "http://allowed.test:8080/").status == 200
    assert_denied(forward_once(proxy.port, "http://allowed.test:8081/"), "no_endpoint")


def test_cross_policy_binary_and_endpoint_do_not_combine(proxy, testnet):
    """python3 is in policy web, other.test:80 only in curl_only: denied."""
    r = forward_once(proxy.port, "http://other.test/")
    doc = assert_denied(r, "binary_not_allowed", "other.test", 80)
    assert doc["policy"] == "curl_only"
    assert curl(proxy.port, "http://other.test/").code == 200


def test_ipv6_literal_target_parsed(testnet, cordon_proxy):
    p = cordon_proxy("""
version: 1
network_policies:
  any80:
    endpoints:
      - port: 80
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/python3
""" % testnet.cidr)
    for target in ("[::1]:80", "[::ffff:127.0.0.1]:80", "[fe80::1]:80"):
        with HttpConn.open(p.addr) as c:
            c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
            r = c.read_response("CONNECT")
        assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", (target, r)
    c, r = connect_tunnel(p.port, testnet.ip, 80)     # a literal inside allowed_ips
    c.close()
    assert r.status == 200, r


def test_ipv6_forms_embedding_ipv4_judged_by_it(testnet, cordon_proxy):
    """NAT64, 6to4, Teredo and IPv4-compatible literals that carry a
    loopback or link-local IPv4 address are blocked even when allowed_ips
    covers the IPv6 range: a translator would deliver them there. (An
    allowed_ips entry covering IPv4-compatible ::127.0.0.1, such as ::/96,
    overlaps always-blocked space and is refused at load, as OpenShell
    refuses it; that literal is judged without one.)"""
    p = cordon_proxy("""
version: 1
network_policies:
  v6:
    endpoints:
      - port: 80
        allowed_ips: ["64:ff9b::/96", "2002::/16", "2001::/32", "%s"]
    binaries:
      - path: /usr/bin/python3
""" % testnet.cidr)
    for target in ("[64:ff9b::7f00:1]:80", "[64:ff9b::a9fe:a9fe]:80", "[2002:7f00:1::1]:80",
                   "[2001:0:7f00:1::1]:80", "[::127.0.0.1]:80"):
        with HttpConn.open(p.addr) as c:
            c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
            r = c.read_response("CONNECT")
        assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", (target, r)
    ev = p.wait_events(5, event="decision", decision="deny")
    assert {e["reason_code"] for e in ev} == {"address_blocked"}


def test_legacy_ipv4_spellings_are_address_blocked(testnet, cordon_proxy):
    """127.1, 2130706433, 0x7f000001 and 0177.0.0.1 mean 127.0.0.1 to the
    clients' libc: refused as address_blocked (not a retryable 502)."""
    p = cordon_proxy("""
version: 1
network_policies:
  any80:
    endpoints:
      - port: 80
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/python3
""" % testnet.cidr)
    for host in ("127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0xa9fea9fe"):
        both_ways = [connect_tunnel(p.port, host, 80), (None, forward_once(p.port, "http://%s/" % host))]
        for c, r in both_ways:
            if c:
                c.close()
            assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", (host, r)
    ev = p.wait_events(10, event="decision", decision="deny")
    assert {e["reason_code"] for e in ev} == {"address_blocked"}
    assert {e["host"] for e in ev} == {"127.0.0.1", "169.254.169.254"}


def test_proxy_never_dials_its_own_host(testnet, cordon_proxy):
    """allowed_ips covering the host's own side of the test veth must not
    open a way to a host service on 0.0.0.0, nor to the proxy itself."""
    lan = """
version: 1
network_policies:
  lan:
    endpoints:
%s    binaries:
      - path: /usr/bin/python3
"""
    ep = "      - port: %%d\n        allowed_ips: [\"%s\"]\n" % testnet.cidr
    svc = socket.socket()
    svc.bind(("0.0.0.0", 0))
    svc.listen(8)
    try:
        sport = svc.getsockname()[1]
        p = cordon_proxy(lan % (ep % sport + ep % testnet.echo), listen_host="0.0.0.0")

        def refused(port):
            out = []
            for c, r in (connect_tunnel(p.port, testnet.host_ip, port),
                         (None, forward_once(p.port, "http://%s:%d/" % (testnet.host_ip, port)))):
                if c:
                    c.close()
                out.append(r)
            return out

        for r in refused(sport):
            assert r.status == 403 and r.header("x-cordon-deny") == "address_blocked", r
            assert "own host" in json.loads(r.body)["detail"], r.body
        # now an endpoint names the proxy's own port: still never dialled
        p.reload(lan % (ep % sport + ep % testnet.echo + ep % p.port), settle=0.5)
        wait_until(lambda: all(r.header("x-cordon-deny") == "address_blocked"
                               for r in refused(p.port)), timeout=10)
        # the namespace on the other side of the veth is still reachable
        c, r = connect_tunnel(p.port, testnet.ip, testnet.echo)
        c.close()
        assert r.status == 200, r
    finally:
        svc.close()


@pytest.mark.timeout(30)
def test_dns_timeout_gives_resolve_failed(testnet, cordon_proxy):
    testnet.dns.set("silent.test", "DROP")
    p = cordon_proxy(policy(testnet, """  silent:
    endpoints:
      - host: silent.test
        port: 80
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/python3
""" % testnet.cidr))
    # a client that gives up while the query is pending does no harm
    c = HttpConn.open(p.addr)
    c.send(build_request("CONNECT", "silent.test:80", "silent.test:80"))
    time.sleep(0.3)
    c.close()
    t0 = time.monotonic()
    r = forward_once(p.port, "http://silent.test/", timeout=20)
    assert_denied(r, "resolve_failed", "silent.test", 80, 502)
    assert time.monotonic() - t0 < 15
    assert forward_once(p.port, "http://allowed.test/").status == 200


def test_client_gone_while_connecting(testnet, cordon_proxy):
    p = cordon_proxy(policy(testnet, """  hole:
    endpoints:
      - host: blackhole.test
        port: %d
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/python3
""" % (testnet.blackhole, testnet.cidr)), "--connect-timeout", 1000)
    for _ in range(10):
        c = HttpConn.open(p.addr)
        c.send(build_request("CONNECT", "blackhole.test:%d" % testnet.blackhole, "x"))
        time.sleep(0.02)
        c.close()
    time.sleep(1.5)      # the pending connects time out after their clients left
    assert p.alive()
    assert forward_once(p.port, "http://allowed.test/").status == 200


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.timeout(60)
def test_backpressure_bounds_memory(proxy):
    """A client that does not read a 400 MB download: the proxy stops reading
    the upstream instead of buffering it."""
    n = 400 * 1024 * 1024
    conns = []
    base = _rss_kb(proxy.proc.pid)
    try:
        for target in ("tunnel", "forward"):
            if target == "tunnel":
                c, r = connect_tunnel(proxy.port, "allowed.test", 80)
                assert r.status == 200
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                c.send(b"GET /stream/%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % n)
            else:
                c = HttpConn.open(proxy.addr)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                c.send(b"GET http://allowed.test/stream/%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % n)
            conns.append(c)
        time.sleep(3)
        grown = _rss_kb(proxy.proc.pid) - base
        assert grown < 64 * 1024, "proxy RSS grew by %d MiB with two stalled readers" % (grown // 1024)
        # the streams still flow once the clients read
        for c in conns:
            got = 0
            deadline = time.monotonic() + 5
            while got < 4 * 1024 * 1024 and time.monotonic() < deadline:
                got += len(c.read_some(timeout=5))
            assert got >= 4 * 1024 * 1024
    finally:
        for c in conns:
            c.close()
    assert forward_once(proxy.port, "http://allowed.test/").status == 200


@pytest.mark.timeout(30)
def test_bare_lf_head_is_answered_400_at_once(testnet, cordon_proxy):
    """A head with bare-LF line ends is refused with 400 as soon as it is
    complete, not after the head timeout (the default 30 s would outlast
    this test's own timeout)."""
    p = cordon_proxy("version: 1\n")
    for raw in (b"GET http://allowed.test/ HTTP/1.1\nHost: allowed.test\n\n",
                b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test\n\r\n"):
        with HttpConn.open(p.addr) as c:
            c.send(raw)
            r = c.read_response("GET", timeout=10)
        assert r.status == 400 and r.header("x-cordon-deny") == "bad_request", r


CUT_SERVER = r"""
import socket, struct, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 8099))
srv.listen(8)
print("READY", flush=True)
while True:
    c, _ = srv.accept()
    c.recv(65536)
    # a close-delimited body (no Content-Length, not chunked), cut by a reset
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + b"x" * 1000)
    sys.stdin.readline()  # the test has received these bytes through the proxy: now cut
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
"""


@pytest.mark.timeout(60)
def test_reset_upstream_is_never_a_clean_end(cordon_proxy, netns_factory):
    """An upstream reset in the middle of a close-delimited response reaches
    the client as a reset, not as the normal end of the body."""
    ns = netns_factory()
    srv = ns.spawn(["/usr/bin/python3", "-c", CUT_SERVER, ns.ns_ip], stdout=subprocess.PIPE,
                   stdin=subprocess.PIPE)
    assert srv.stdout.readline().startswith(b"READY")
    p = cordon_proxy("""
version: 1
network_policies:
  cut:
    endpoints:
      - port: 8099
        allowed_ips: ["%s/32"]
    binaries:
      - path: /usr/bin/python3
""" % ns.ns_ip)
    for attempt in range(5):
        s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
        s.sendall(("GET http://%s:8099/ HTTP/1.1\r\nHost: x\r\n\r\n" % ns.ns_ip).encode())
        got, outcome = b"", None
        while len(got) < 1000:  # the head and some body came through: the upstream may cut now
            d = s.recv(65536)
            assert d, got
            got += d
        srv.stdin.write(b"go\n")
        srv.stdin.flush()
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    outcome = "eof"
                    break
                got += d
        except ConnectionResetError:
            outcome = "reset"
        s.close()
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
        assert outcome == "reset", (attempt, outcome, len(got))
    ev = p.wait_events(5, event="close")
    assert {e["reason"] for e in ev} <= {"upstream_read_error", "upstream_closed_mid_response"}, ev
