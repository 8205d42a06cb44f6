"""Self-tests of the integration-test infrastructure (no cordon needed):
the namespace, the upstream servers, the DNS server and the proxy runner."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from lib import cordon as cordon_lib
from lib import dnsserver, netns, util
from lib.httpclient import HttpConn


def test_upstream_http_keepalive(testnet):
    with HttpConn.open((testnet.ip, testnet.http)) as c:
        r1 = c.request("GET", "/", "allowed.test")
        assert r1.status == 200 and r1.body == b"hello from upstream"
        r2 = c.request("POST", "/echo?x=1", "allowed.test", body=b"abc")
        doc = r2.json()
        assert doc["method"] == "POST" and doc["path"] == "/echo?x=1" and doc["body"] == "abc"
        assert r2.header("x-upstream-conn") == r1.header("x-upstream-conn")
        assert r2.header("x-upstream-req") == "2"
        r3 = c.request("GET", "/size/100000", "allowed.test")
        assert len(r3.body) == 100000
        r4 = c.request("POST", "/sink", "allowed.test", body=b"x" * 5000)
        assert r4.json()["length"] == 5000
        r5 = c.request("GET", "/drip/3/10", "allowed.test")
        assert r5.body == b"tick\n" * 3


def test_upstream_ws_and_echo(testnet):
    import websockets

    async def go():
        async with websockets.connect("ws://%s:%d/" % (testnet.ip, testnet.ws),
                                      open_timeout=5, ping_interval=None) as ws:
            await ws.send("ping")
            return await asyncio.wait_for(ws.recv(), 5)

    assert asyncio.run(go()) == "ping"
    with socket.create_connection((testnet.ip, testnet.echo), timeout=5) as s:
        s.sendall(b"hello")
        assert s.recv(100) == b"hello"


def test_upstream_closed_and_blackhole(testnet):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((testnet.ip, testnet.closed), timeout=2).close()
    t0 = time.monotonic()
    with pytest.raises(socket.timeout):
        socket.create_connection((testnet.ip, testnet.blackhole), timeout=0.5).close()
    assert time.monotonic() - t0 >= 0.45


def test_dns_server_names(testnet):
    srv = (testnet.dns.addr, testnet.dns.port)
    assert dnsserver.query(srv, "allowed.test") == (0, [testnet.ip])
    assert dnsserver.query(srv, "META.test") == (0, ["169.254.169.254"])
    assert dnsserver.query(srv, "allowed.test", "AAAA") == (0, [])
    assert dnsserver.query(srv, "nx.test")[0] == 3
    assert testnet.dns.queried("allowed.test") and testnet.dns.queried("nx.test")
    assert not testnet.dns.queried("denied.test")


def test_netns_teardown_and_stale_cleanup(netns_factory):
    ns = netns_factory()
    assert ns.name in util.run(["ip", "netns", "list"]).stdout
    p = ns.spawn(["sleep", "30"])
    ns.close()
    assert p.poll() is not None
    assert ns.name not in util.run(["ip", "netns", "list"]).stdout
    assert ns.veth_host not in util.run(["ip", "-o", "link"]).stdout
    # a namespace left behind by a dead pid is removed; ours are not
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = "%s-%d-1" % (netns.PREFIX, dead.pid)
    util.run(["ip", "netns", "add", stale])
    live = netns_factory()
    removed = netns.cleanup_stale()     # (a concurrent run may have removed it first)
    assert live.name not in removed
    listing = util.run(["ip", "netns", "list"]).stdout
    assert stale not in listing and live.name in listing


FAKE_PROXY = textwrap.dedent("""\
    import signal, socket, sys
    port = int(sys.argv[sys.argv.index("--listen") + 1].rsplit(":", 1)[1])
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(5)
    sys.stderr.write("proxy: listening on 127.0.0.1 port %d\\n" % s.getsockname()[1])
    sys.stderr.write(MSG); sys.stderr.flush()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *a: (sys.stderr.write("reloaded\\n"), sys.stderr.flush()))
    while True:
        s.accept()[0].close()
    """)


def _fake(tmp_path, msg):
    path = tmp_path / "fake-cordon"
    path.write_text("#!/usr/bin/python3\nMSG = %r\n%s" % (msg, FAKE_PROXY))
    path.chmod(0o755)
    return str(path)


def test_runner_detects_sanitizer_reports(tmp_path):
    for msg in ("==1==ERROR: AddressSanitizer: heap-use-after-free\n",
                "src/x.c:3:5: runtime error: signed integer overflow\n",
                "proxy: internal invariant violated: x\n"):
        p = cordon_lib.CordonProxy(_fake(tmp_path, msg), "version: 1\n", tmp_path,
                                   name="fake%d" % len(msg)).start()
        try:
            util.wait_until(lambda: p.problems(), 3, what="stderr")
            p.reload()
            # reload() settles on a clock; wait for the fake's answer itself
            util.wait_until(lambda: "reloaded" in p.stderr, 30, what="reloaded")
        finally:
            assert p.stop() == 0
        assert p.problems() == [msg.strip()]
    p = cordon_lib.CordonProxy(_fake(tmp_path, "all fine\n"), "version: 1\n", tmp_path).start()
    assert p.stop() == 0 and p.problems() == []


def test_runner_reports_not_built(tmp_path):
    path = tmp_path / "nb"
    path.write_text("#!/bin/sh\necho \"cordon: 'proxy' is not built into this binary yet\" >&2\nexit 2\n")
    path.chmod(0o755)
    with pytest.raises(cordon_lib.NotBuilt):
        cordon_lib.CordonProxy(str(path), "version: 1\n", tmp_path).start()
