"""cordon proxy: many concurrent tunnels, and the connection limit."""
import asyncio
import json
import os
import socket
import time

import pytest

from lib.httpclient import HttpConn, connect_tunnel, forward_once
from lib.util import wait_until


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


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    body = await reader.readexactly(n) if n else b""
    return status, body


@pytest.mark.timeout(120)
def test_1000_concurrent_tunnels(testnet, cordon_proxy, raise_nofile):
    N = 1000
    assert raise_nofile >= 3 * N
    p = cordon_proxy(policy(testnet), "--max-conns", 4 * N)

    async def run():
        sem = asyncio.Semaphore(200)     # handshakes in flight; all stay open

        async def open_one(i):
            async with sem:
                r, w = await asyncio.open_connection("127.0.0.1", p.port)
                w.write(b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n")
                head = await reader_head(r)
                return r, w, head

        async def reader_head(r):
            return await r.readuntil(b"\r\n\r\n")

        conns = await asyncio.gather(*(open_one(i) for i in range(N)))
        bad = [h for _, _, h in conns if not h.startswith(b"HTTP/1.1 200")]
        assert not bad, "%d CONNECTs failed, e.g. %r" % (len(bad), bad[:3])
        # every tunnel is open at once; now a request through each
        for i, (_, w, _) in enumerate(conns):
            w.write(b"GET /echo?i=%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % i)
        results = await asyncio.gather(*(_read_response(r) for r, _, _ in conns))
        for i, (status, body) in enumerate(results):
            assert status == 200, (i, status, body[:200])
            assert json.loads(body)["path"] == "/echo?i=%d" % i
        upstream_conns = {json.loads(b)["conn"] for _, b in results}
        assert len(upstream_conns) == N, "tunnels shared upstream connections"
        for _, w, _ in conns:
            w.close()
        await asyncio.gather(*(w.wait_closed() for _, w, _ in conns), return_exceptions=True)

    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(run(), 90))
    took = time.monotonic() - t0
    ev = p.wait_events(N, timeout=20, event="close", host="allowed.test")
    assert len(ev) == N
    assert all(e["bytes_down"] > 0 for e in ev)
    assert forward_once(p.port, "http://allowed.test/").status == 200
    print("1000 tunnels in %.1fs" % took)


def test_max_conns_refuses_extras_then_recovers(testnet, cordon_proxy):
    LIMIT = 5
    p = cordon_proxy(policy(testnet), "--max-conns", LIMIT, "--workers", 2)
    tunnels = []
    for _ in range(LIMIT):
        c, r = connect_tunnel(p.port, "allowed.test", 80)
        assert r.status == 200, r
        tunnels.append(c)
    # the limit is reached: extras are refused with 503, repeatedly
    for _ in range(20):
        c = HttpConn.open(p.addr)
        try:
            c.send(b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response("CONNECT")
        c.close()
        assert r.status == 503, r
    # the open tunnels still work
    for c in tunnels:
        assert c.request("GET", "/", "allowed.test").status == 200
    # free them all: the refused ones did not leak slots
    for c in tunnels:
        c.close()

    def try_open():
        c, r = connect_tunnel(p.port, "allowed.test", 80)
        if r.status != 200:
            c.close()
            return None
        return c

    wait_until(lambda: (lambda c: c.close() or True if c else None)(try_open()), 3,
               what="a slot to free up")
    again = []
    try:
        for _ in range(LIMIT):
            c = wait_until(try_open, 3, what="reopening tunnels up to the limit")
            again.append(c)
        for c in again:
            assert c.request("GET", "/", "allowed.test").status == 200
    finally:
        for c in again:
            c.close()
