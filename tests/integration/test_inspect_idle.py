"""Inspected tunnels that idle between requests (doc/proxy.md, "Memory by
phase"): the upstream connection kept for the next request is closed after
PROXY_UPSTREAM_IDLE_MS (10 s) without one; the client's tunnel stays open,
and its next request dials the upstream again and is answered. The test
waits, bounded, for the real condition (the proxy holds one socket less),
never for a fixed time."""
import os

from lib import util

from inspect_fixtures import tls_tunnel

pytest_plugins = ["inspect_fixtures"]


def _sockets(pid):
    n = 0
    for f in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, f)).startswith("socket:")
        except FileNotFoundError:
            pass
    return n


def test_idle_tunnel_lets_its_upstream_go_and_dials_again(iproxy, inet):
    p = iproxy()
    before = inet.accepts(8445)
    base = _sockets(p.proc.pid)
    t = tls_tunnel(p, "count.insp.test", 8445)
    try:
        r = t.request("GET", "/idle-1", "count.insp.test")
        assert r.status == 200, r
        assert inet.accepts(8445) - before == 1
        # client side and upstream side are open
        util.wait_until(lambda: _sockets(p.proc.pid) == base + 2, 5,
                        what="the tunnel's two sockets")
        # idle: the kept upstream goes, the tunnel stays
        util.wait_until(lambda: _sockets(p.proc.pid) == base + 1, 40,
                        what="the idle tunnel's upstream to close")
        assert p.alive()
        r = t.request("GET", "/idle-2", "count.insp.test")
        assert r.status == 200, r
        assert inet.accepts(8445) - before == 2, "the next request dials the upstream again"
        # and the tunnel goes on as before
        r = t.request("GET", "/idle-3", "count.insp.test")
        assert r.status == 200, r
        assert inet.accepts(8445) - before == 2
    finally:
        t.close()
    closes = p.wait_events(1, event="close", host="count.insp.test")
    assert closes[0]["reason"] != "keepalive_idle", closes
