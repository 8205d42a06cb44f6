"""cordon proxy: request-head parsing (400, 431) and forward keep-alive."""
import json
import socket
import time

import pytest

from lib.clients import SELF_EXE, assert_denied
from lib.httpclient import HttpConn, connect_tunnel, forward_once


def policy(net):
    return f"""
version: 1
network_policies:
  web:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["{net.cidr}"]
      - host: other.test
        port: 8080
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: /usr/bin/python3
"""


MALFORMED = {
    "garbage": b"GARBAGE\r\n\r\n",
    "no_version": b"GET http://allowed.test/\r\n\r\n",
    "origin_form": b"GET /relative HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
    "connect_no_port": b"CONNECT allowed.test HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
    "connect_bad_port": b"CONNECT allowed.test:99999 HTTP/1.1\r\nHost: allowed.test:99999\r\n\r\n",
    "connect_path": b"CONNECT http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
    "empty_host": b"GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n",
    "space_in_header_name": b"GET http://allowed.test/ HTTP/1.1\r\nHost : allowed.test\r\n\r\n",
    "cl_and_te": (b"POST http://allowed.test/sink HTTP/1.1\r\nHost: allowed.test\r\n"
                  b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "bad_content_length": (b"POST http://allowed.test/sink HTTP/1.1\r\nHost: allowed.test\r\n"
                           b"Content-Length: abc\r\n\r\n"),
    "two_content_lengths": (b"POST http://allowed.test/sink HTTP/1.1\r\nHost: allowed.test\r\n"
                            b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    "nul_in_target": b"GET http://allowed.test/\x00x HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
}


@pytest.fixture
def proxy(testnet, cordon_proxy):
    return cordon_proxy(policy(testnet))


def test_malformed_requests_get_400_with_json(proxy, testnet):
    for name, raw in MALFORMED.items():
        with HttpConn.open(proxy.addr) as c:
            c.send(raw)
            try:
                r = c.read_response("GET")
            except (EOFError, ConnectionResetError) as e:
                pytest.fail("%s: connection closed without a response (%s)" % (name, e))
            assert r.status == 400, "%s: expected 400, got %r" % (name, r)
            doc = json.loads(r.body)
            assert isinstance(doc, dict) and any(isinstance(v, str) and v for v in doc.values()), \
                "%s: 400 body should give the reason: %r" % (name, r.body)
    # none of these reached DNS or the upstream, and the proxy still serves
    assert not testnet.dns.queried("allowed.test"), testnet.dns.queries
    assert forward_once(proxy.port, "http://allowed.test/").status == 200


def big_head(method, target, host, size):
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nX-Pad: " % (method, target, host)
    pad = size - len(head) - 4
    return (head + "a" * pad + "\r\n\r\n").encode()


def test_head_over_16k_gets_431(proxy, testnet):
    for method, target in (("CONNECT", "allowed.test:80"), ("GET", "http://allowed.test/echo")):
        for size in (16 * 1024 + 100, 64 * 1024):
            with HttpConn.open(proxy.addr) as c:
                try:
                    c.send(big_head(method, target, "allowed.test", size))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                r = c.read_response(method)
                assert r.status == 431, (method, size, r)
    # many small headers add up too, and arriving in small pieces changes nothing
    with HttpConn.open(proxy.addr) as c:
        c.send(b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n")
        try:
            for i in range(400):
                c.send(b"X-H%03d: %s\r\n" % (i, b"b" * 40))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 431, r
    assert not testnet.dns.queried("allowed.test")


def test_head_under_16k_is_forwarded(proxy):
    with HttpConn.open(proxy.addr) as c:
        c.send(big_head("GET", "http://allowed.test/echo", "allowed.test", 15 * 1024))
        r = c.read_response()
        assert r.status == 200, r
        pad = dict((k.lower(), v) for k, v in r.json()["headers"])["x-pad"]
        assert len(pad) > 15 * 1024 - 100
    c, r = connect_tunnel(proxy.port, "allowed.test", 80, headers=[("X-Pad", "c" * 15000)])
    c.close()
    assert r.status == 200, r


def test_forward_keepalive_checks_every_request(proxy, testnet):
    with HttpConn.open(proxy.addr) as c:
        r1 = c.request("GET", "http://allowed.test/echo", "allowed.test")
        assert r1.status == 200 and r1.json()["path"] == "/echo"
        r2 = c.request("GET", "http://allowed.test/size/1000", "allowed.test")
        assert r2.status == 200 and len(r2.body) == 1000
        r3 = c.request("GET", "http://other.test:8080/echo", "other.test:8080")
        assert r3.status == 200 and r3.json()["server_port"] == 8080
        r4 = c.request("GET", "http://denied.test/", "denied.test")
        assert_denied(r4, "no_endpoint", "denied.test", 80)
        r5 = c.request("POST", "http://allowed.test/sink", "allowed.test", body=b"z" * 3000)
        assert r5.status == 200 and r5.json()["length"] == 3000, r5
        r6 = c.request("GET", "http://allowed.test/", "allowed.test")
        assert r6.status == 200 and r6.body == b"hello from upstream"
    assert not testnet.dns.queried("denied.test")
    ev = proxy.wait_events(6, event="decision", pid=__import__("os").getpid())
    got = [(e["decision"], e["host"], e["port"]) for e in ev]
    assert got == [("allow", "allowed.test", 80), ("allow", "allowed.test", 80),
                   ("allow", "other.test", 8080), ("deny", "denied.test", 80),
                   ("allow", "allowed.test", 80), ("allow", "allowed.test", 80)], got
    assert ev[3]["reason_code"] == "no_endpoint" and ev[3]["binary"] == SELF_EXE


def test_forward_keepalive_pipelined(proxy):
    with HttpConn.open(proxy.addr) as c:
        c.send(b"GET http://allowed.test/echo HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
               b"GET http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n"
               b"GET http://allowed.test/size/10 HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        a = c.read_response()
        b = c.read_response()
        d = c.read_response()
    assert a.status == 200 and a.json()["path"] == "/echo"
    assert_denied(b, "no_endpoint", "denied.test", 80)
    assert d.status == 200 and len(d.body) == 10


def test_forward_connection_close_honoured(proxy):
    with HttpConn.open(proxy.addr) as c:
        r = c.request("GET", "http://allowed.test/", "allowed.test",
                      headers=[("Connection", "close")])
        assert r.status == 200
        assert c.wait_closed(3) < 3
