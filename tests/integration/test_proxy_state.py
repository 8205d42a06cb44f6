"""cordon proxy: the connection state machine (src/proxy/state.c).

- 1000 pipelined requests on one connection, most of them denied, are
  answered in order by a proxy whose threads have a 256 KiB stack: a denial
  in a pipeline goes round the owner's loop instead of re-entering the read
  path (the old recursion took a stack frame chain per denial).
- Every transition is logged at debug level with the connection id, and the
  logged path of a CONNECT tunnel is the documented one.
"""
import errno
import os
import re
import select
import socket
import stat
import time

import pytest

from lib import cordon as cordon_lib
from lib import util
from lib.httpclient import HttpConn, connect_tunnel


def policy(net):
    return f"""
version: 1
network_policies:
  web:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: /usr/bin/python3
"""


@pytest.fixture
def small_stack_proxy(cordon_bin, dns_server, testnet, tmp_path):
    """A proxy whose threads get a 256 KiB stack (glibc sizes thread stacks
    from RLIMIT_STACK), started through a tiny wrapper."""
    wrapper = tmp_path / "cordon-small-stack"
    wrapper.write_text("#!/bin/sh\nulimit -s 256 || exit 97\nexec '%s' \"$@\"\n" % cordon_bin)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    pol = policy(testnet) + """  literal:
    endpoints:
      - host: "%s"
        port: 80
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/python3
""" % (testnet.ip, testnet.cidr)
    p = cordon_lib.CordonProxy(str(wrapper), pol, tmp_path,
                               resolver=dns_server.resolver, name="smallstack")
    p.start()
    yield p
    rc = p.stop()
    bad = p.problems()
    assert not bad, "stderr shows:\n  " + "\n  ".join(bad[:20])
    assert rc == 0, "proxy did not exit 0 (%r); stderr tail:\n%s" % (rc, p.stderr[-2000:])


ALLOWED_AT = {0, 1, 500, 998}


def test_1000_pipelined_requests_with_denials_do_not_grow_the_stack(small_stack_proxy):
    n = 1000
    reqs = []
    for i in range(n):
        if i in ALLOWED_AT:
            reqs.append(b"GET http://allowed.test/size/%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
                        % (10 + i % 7))
        else:
            reqs.append(b"GET http://denied%d.test/x HTTP/1.1\r\nHost: denied%d.test\r\n\r\n"
                        % (i, i))
    with HttpConn.open(small_stack_proxy.addr, timeout=20.0) as c:
        c.send(b"".join(reqs))
        for i in range(n):
            r = c.read_response()
            if i in ALLOWED_AT:
                assert r.status == 200 and len(r.body) == 10 + i % 7, (i, r)
            else:
                assert r.status == 403, (i, r)
                assert r.header("x-cordon-deny") == "no_endpoint", (i, r)
                assert r.json()["host"] == "denied%d.test" % i, (i, r)
        # the connection is still usable afterwards
        r = c.request("GET", "http://allowed.test/size/3", "allowed.test")
        assert r.status == 200 and len(r.body) == 3
    assert small_stack_proxy.alive()
    deny = small_stack_proxy.wait_events(n - len(ALLOWED_AT), timeout=10, event="decision",
                                         decision="deny")
    assert len(deny) == n - len(ALLOWED_AT)


def test_transitions_are_logged_with_the_connection_id(testnet, cordon_proxy):
    p = cordon_proxy(policy(testnet), "--log-level", "debug")
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    assert r.status == 200, r
    c.send(b"GET /size/5 HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
    resp = c.read_response()
    assert resp.status == 200 and len(resp.body) == 5
    c.close()
    ev = p.wait_events(1, event="close", host="allowed.test")
    conn = ev[0]["conn"]
    want = ["accepted -> REQ_HEAD", "REQ_HEAD -> IDENTIFY", "IDENTIFY -> DECIDE",
            "DECIDE -> RESOLVE", "RESOLVE -> CONNECT", "CONNECT -> TUNNEL", "TUNNEL -> CLOSED"]
    got = re.findall(r"proxy: conn %d: (\S+ -> \S+)" % conn, p.stderr)
    assert got == want, got


def test_stalled_identity_lookup_does_not_delay_another_client(testnet, cordon_proxy, tmp_path):
    """One worker; the first identity lookup is held (CORDON_TEST_IDENTITY_HOLD
    names a FIFO: the identity thread opens it and waits for its writer to
    close). While it is held, another client's whole tunnel completes on the
    same worker; then the held client is released and served."""
    fifo = str(tmp_path / "hold")
    os.mkfifo(fifo)
    p = cordon_proxy(policy(testnet), "--workers", "1", start=False)
    p.env = {"CORDON_TEST_IDENTITY_HOLD": fifo}
    p.start()
    held = HttpConn.open(p.addr, timeout=10.0)
    held.send(b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n")
    # the identity thread is inside the lookup once it has the FIFO open:
    # a non-blocking open for writing succeeds only when a reader is there
    deadline = time.monotonic() + 10
    wfd = None
    while wfd is None:
        try:
            wfd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    try:
        c, r = connect_tunnel(p.port, "allowed.test", 80)
        assert r.status == 200, r
        c.send(b"GET /size/7 HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200 and len(resp.body) == 7
        c.close()
        # the held client has had no answer yet
        held.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            held.sock.recv(1)
        held.sock.settimeout(10.0)
    finally:
        os.close(wfd)                 # release the held lookup
    r = held.read_response("CONNECT")
    assert r.status == 200, r
    held.send(b"GET /size/4 HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
    resp = held.read_response()
    assert resp.status == 200 and len(resp.body) == 4
    held.close()


def _nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _nsockets(pid):
    n = 0
    for f in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, f)).startswith("socket:")
        except FileNotFoundError:
            pass
    return n


def test_fd_pressure_is_a_retryable_503_not_a_denial(cordon_bin, dns_server, testnet, tmp_path):
    """The proxy runs with 96 descriptors. Tunnels are opened one after
    another and held until the proxy runs short; whichever step runs short
    first (identifying the caller, dialling, the relay pipes), the answer is
    a retryable 503 out_of_resources with an audit event — never a policy
    denial (it used to be 403 identity_unresolved) or 502. When even
    accept() fails (the proxy logs it), one held tunnel is closed so the
    waiting client gets its answer. Once descriptors are free again the
    same request succeeds."""
    wrapper = tmp_path / "cordon-few-fds"
    wrapper.write_text("#!/bin/sh\nulimit -n 96 || exit 97\nexec '%s' \"$@\"\n" % cordon_bin)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    pol = policy(testnet) + """  literal:
    endpoints:
      - host: "%s"
        port: 80
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/python3
""" % (testnet.ip, testnet.cidr)
    p = cordon_lib.CordonProxy(str(wrapper), pol, tmp_path,
                               resolver=dns_server.resolver, args=["--workers", "1", "--max-conns", "1000"],
                               name="fewfds")
    p.start()
    idle = []
    # an address literal: no resolver socket is needed
    req = b"CONNECT %s:80 HTTP/1.1\r\nHost: %s:80\r\n\r\n" % (testnet.ip.encode(),
                                                                  testnet.ip.encode())
    try:
        r = None
        for _ in range(120):
            c = HttpConn.open(p.addr, timeout=10.0)
            c.send(req)
            accept_failures = p.stderr.count("accept failed")
            deadline = time.monotonic() + 30
            while not select.select([c.sock], [], [], 0.1)[0]:
                assert time.monotonic() < deadline, "no answer and no accept failure"
                if p.stderr.count("accept failed") > accept_failures and idle:
                    idle.pop().close()  # let the waiting connection in
                    accept_failures = p.stderr.count("accept failed")
            r = c.read_response("CONNECT")
            if r.status == 200:
                idle.append(c)
                continue
            c.close()
            break
        assert r is not None and r.status == 503, r
        assert r.header("x-cordon-deny") == "out_of_resources", r
        body = r.json()
        assert body["retryable"] is True and body["error"] == "proxy_unavailable", body
        ev = p.wait_events(1, event="decision", reason_code="out_of_resources")
        assert ev[0]["decision"] == "deny"
        assert not p.events(event="decision", decision="deny", reason_code="identity_unresolved")
        assert not p.events(event="decision", decision="deny", reason_code="connect_failed")
        closed = len(p.events(event="close"))
        for s in idle[:8]:
            s.close()
        idle = idle[8:]
        # the proxy frees a tunnel's descriptors when it ends it (after both
        # sides closed), which its "close" event marks: wait for those 8
        p.wait_events(closed + 8, timeout=30.0, event="close")
        c, r = connect_tunnel(p.port, testnet.ip, 80)
        assert r.status == 200, r
        c.close()
    finally:
        for s in idle:
            s.close()
        rc = p.stop()
    bad = p.problems()
    assert not bad, "stderr shows:\n  " + "\n  ".join(bad[:20])
    assert rc == 0, "proxy did not exit 0 (%r); stderr tail:\n%s" % (rc, p.stderr[-2000:])
