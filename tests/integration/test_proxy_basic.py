"""cordon proxy: allowed traffic through CONNECT and absolute-form, denials by
endpoint and by binary, binary matching (symlinks, ancestors)."""
import json
import os
import shutil
import socket

import pytest

from lib import clients
from lib.clients import CURL, PYTHON_REAL, SELF_EXE, assert_denied, curl, urllib_get
from lib.httpclient import HttpConn, connect_tunnel, forward_once


def curl_policy(net):
    return f"""
version: 1
network_policies:
  upstream:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: /usr/bin/curl
"""


def python_policy(net, binary="/usr/bin/python3"):
    return f"""
version: 1
network_policies:
  upstream:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["{net.cidr}"]
      - host: other.test
        port: 8080
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: {binary}
"""


def test_curl_connect_tunnel_allowed(testnet, cordon_proxy):
    p = cordon_proxy(curl_policy(testnet))
    r = curl(p.port, "http://allowed.test/", tunnel=True)
    assert r.rc == 0, r.stderr
    assert r.connect_code == 200
    assert r.code == 200 and r.body == b"hello from upstream"
    ev = p.wait_events(1, event="decision", decision="allow")[0]
    assert ev["binary"] == CURL and ev["pid"] == r.pid
    assert ev["host"] == "allowed.test" and ev["port"] == 80
    assert ev["policy"] == "upstream"
    assert clients.ip_of(ev["resolved"]) == testnet.ip
    # curl's parent is this pytest process, which is also the proxy's ancestor:
    # the proxy's own chain is never part of a caller's (issue 12 item 5).
    assert SELF_EXE not in ev["ancestors"], ev
    assert testnet.dns.queried("allowed.test")


def test_curl_forward_allowed(testnet, cordon_proxy):
    p = cordon_proxy(curl_policy(testnet))
    r = curl(p.port, "http://allowed.test/")
    assert r.rc == 0, r.stderr
    assert r.code == 200 and r.body == b"hello from upstream"
    r = curl(p.port, "http://allowed.test/echo?q=1", args=["-H", "X-Test: yes", "-d", "payload"])
    assert r.code == 200, r
    doc = json.loads(r.body)
    assert doc["method"] == "POST" and doc["path"] == "/echo?q=1", doc
    assert doc["body"] == "payload"
    hdrs = {k.lower(): v for k, v in doc["headers"]}
    assert hdrs["host"] == "allowed.test" and hdrs["x-test"] == "yes"
    ev = p.wait_events(2, event="decision", decision="allow")
    assert all(e["binary"] == CURL for e in ev)


def test_host_not_in_policy_denied_connect_and_forward(testnet, cordon_proxy):
    p = cordon_proxy(curl_policy(testnet))
    # curl sees the CONNECT refused; the raw bytes are checked below
    r = curl(p.port, "http://denied.test/", tunnel=True)
    assert r.rc != 0 and r.connect_code == 403, r
    r = curl(p.port, "http://denied.test/")
    assert r.rc == 0 and r.code == 403
    doc = clients.deny_body(r.code, r.headers.get, r.body, "no_endpoint", "denied.test", 80)
    assert doc["binary"] == CURL
    # the same body for CONNECT and absolute-form (from this process)
    c, rc = connect_tunnel(p.port, "denied.test", 80)
    c.close()
    body_c = assert_denied(rc, "no_endpoint", "denied.test", 80)
    rf = forward_once(p.port, "http://denied.test/")
    body_f = assert_denied(rf, "no_endpoint", "denied.test", 80)
    assert body_c["binary"] == body_f["binary"] == SELF_EXE
    for k in ("error", "reason_code", "host", "port", "binary", "policy"):
        assert body_c[k] == body_f[k], (k, body_c, body_f)
    ev = p.wait_events(4, event="decision", decision="deny")
    assert {e["reason_code"] for e in ev} == {"no_endpoint"}


def test_same_host_other_binary_denied(testnet, cordon_proxy):
    p = cordon_proxy(curl_policy(testnet))
    ok = curl(p.port, "http://allowed.test/")
    assert ok.code == 200
    u = urllib_get(p.port, "http://allowed.test/")
    assert u.status == 403, u
    doc = clients.deny_body(u.status, u.headers.get, u.body, "binary_not_allowed", "allowed.test", 80)
    assert doc["binary"] == PYTHON_REAL
    assert doc["policy"] == "upstream"
    # CONNECT from this (python) process: same decision
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    c.close()
    assert_denied(r, "binary_not_allowed", "allowed.test", 80)
    ev = p.wait_events(1, event="decision", decision="deny", pid=u.pid)[0]
    assert ev["reason_code"] == "binary_not_allowed" and ev["binary"] == PYTHON_REAL


def test_symlinked_policy_binary_matches_real_exe(testnet, cordon_proxy):
    assert os.path.islink("/usr/bin/python3") and PYTHON_REAL != "/usr/bin/python3"
    p = cordon_proxy(python_policy(testnet, "/usr/bin/python3"))
    u = urllib_get(p.port, "http://allowed.test/")
    assert u.status == 200 and u.body == b"hello from upstream", u
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    with c:
        assert r.status == 200, r
        r2 = c.request("GET", "/", "allowed.test")
        assert r2.status == 200 and r2.body == b"hello from upstream"
    ev = p.wait_events(1, event="decision", decision="allow", pid=os.getpid())[0]
    assert ev["binary"] == SELF_EXE


def test_ancestor_binary_matches(testnet, cordon_proxy, tmp_path):
    # a private copy of dash: only processes started under it may connect
    sh = str(tmp_path / "launcher-sh")
    shutil.copy("/bin/dash", sh)
    p = cordon_proxy(python_policy(testnet, sh))
    u = urllib_get(p.port, "http://allowed.test/")
    assert u.status == 403 and u.headers.get("x-cordon-deny") == "binary_not_allowed"
    # `; exit $?` keeps the shell alive as the parent of python
    script = clients.URLLIB_CLIENT.replace("'", "'\\''")
    argv = [sh, "-c", "%s -c '%s' http://127.0.0.1:%d http://allowed.test/; exit $?"
            % (clients.PYTHON, script, p.port)]
    import subprocess
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                         env=clients.util.clean_env())
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["status"] == 200, (doc, out.stderr)
    ev = p.wait_events(1, event="decision", decision="allow", pid=doc["pid"])[0]
    assert ev["binary"] == PYTHON_REAL and sh in ev["ancestors"], ev


def test_large_bodies_through_tunnel_and_forward(testnet, cordon_proxy):
    p = cordon_proxy(python_policy(testnet))
    n = 5 * 1024 * 1024
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    with c:
        assert r.status == 200
        big = c.request("GET", "/size/%d" % n, "allowed.test", timeout=20)
        assert big.status == 200 and len(big.body) == n
        up = c.request("POST", "/sink", "allowed.test", body=b"u" * n, timeout=20)
        assert up.json()["length"] == n
    with HttpConn.open(p.addr, 20) as c:
        big = c.request("GET", "http://allowed.test/size/%d" % n, "allowed.test")
        assert big.status == 200 and len(big.body) == n
        up = c.request("POST", "http://allowed.test/sink", "allowed.test", body=b"f" * n)
        assert up.status == 200 and up.json()["length"] == n


def test_forward_rewrites_to_origin_form(testnet, cordon_proxy):
    p = cordon_proxy(python_policy(testnet))
    with HttpConn.open(p.addr) as c:
        r = c.request("PUT", "http://allowed.test/echo?a=b&c=d", "allowed.test",
                      headers=[("X-One", "1")], body=b"hello")
        assert r.status == 200, r
        doc = r.json()
        assert doc["path"] == "/echo?a=b&c=d" and doc["method"] == "PUT" and doc["body"] == "hello"
        assert dict((k.lower(), v) for k, v in doc["headers"])["x-one"] == "1"
        # chunked request body, chunked response body
        body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        c.send(b"POST http://allowed.test/sink HTTP/1.1\r\nHost: allowed.test\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + body)
        r = c.read_response()
        assert r.status == 200 and r.json()["length"] == len(b"hello world"), r
        r = c.request("GET", "http://allowed.test/drip/3/10", "allowed.test")
        assert r.status == 200 and r.body == b"tick\n" * 3
        # a port other than 80 in the URL
        r = c.request("GET", "http://other.test:8080/echo", "other.test:8080")
        assert r.status == 200 and r.json()["server_port"] == 8080


def test_forward_drops_connection_listed_headers(testnet, cordon_proxy):
    """RFC 9110 §7.6.1: a proxy removes the headers named in Connection."""
    p = cordon_proxy(python_policy(testnet))
    with HttpConn.open(p.addr) as c:
        r = c.request("GET", "http://allowed.test/echo", "allowed.test",
                      headers=[("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"),
                               ("X-Keep", "1")])
        assert r.status == 200, r
        names = {k.lower() for k, _ in r.json()["headers"]}
        assert "x-keep" in names and "x-hop" not in names, names
