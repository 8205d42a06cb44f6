"""cordon proxy: the connection state machine (src/proxy/state.c).

- 1000 pipelined requests on one connection, most of them denied, are
  answered in order by a proxy whose threads have a 256 KiB stack: a denial
  in a pipeline goes round the owner's loop instead of re-entering the read
  path (the old recursion took a stack frame chain per denial).
- Every transition is logged at debug level with the connection id, and the
  logged path of a CONNECT tunnel is the documented one.
"""
import os
import re
import socket
import stat

import pytest

from lib import cordon as cordon_lib
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
    p = cordon_lib.CordonProxy(str(wrapper), policy(testnet), tmp_path,
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
