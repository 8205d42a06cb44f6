"""cordon proxy: head, idle and connect timeouts, and long-lived tunnels that
outlive every timeout (WebSocket)."""
import asyncio
import socket
import threading
import time

import pytest

from lib.clients import assert_denied, curl
from lib.httpclient import HttpConn, connect_tunnel, forward_once

HEAD_MS = 1000
CONNECT_MS = 1000


def policy(net, idle="2s"):
    return f"""
version: 1
network_policies:
  web:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["{net.cidr}"]
        idle_timeout: {idle}
      - host: ws.test
        port: {net.ws}
        allowed_ips: ["{net.cidr}"]
        idle_timeout: {idle}
      - host: blackhole.test
        port: {net.blackhole}
        allowed_ips: ["{net.cidr}"]
    binaries:
      - path: /usr/bin/python3
      - path: /usr/bin/curl
"""


def start(cordon_proxy, net, idle="2s"):
    return cordon_proxy(policy(net, idle), "--head-timeout", HEAD_MS,
                        "--connect-timeout", CONNECT_MS)


@pytest.mark.timeout(30)
def test_websocket_through_tunnel_outlives_timeouts(testnet, cordon_proxy):
    import websockets
    p = start(cordon_proxy, testnet, idle="2s")
    c, r = connect_tunnel(p.port, "ws.test", testnet.ws)
    assert r.status == 200, r
    assert c.buf == b"", "bytes after the 200 head: %r" % c.buf
    sock = c.sock
    sock.setblocking(False)

    async def session():
        async with websockets.connect("ws://ws.test:%d/" % testnet.ws, sock=sock,
                                      open_timeout=5, ping_interval=None,
                                      close_timeout=2) as ws:
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < 5.0:
                msg = "frame %d %s" % (n, "x" * n)
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), 3)
                assert got == msg
                n += 1
                # one pause longer than the head and connect timeouts
                await asyncio.sleep(1.5 if n == 3 else 0.5)
            await ws.send(b"\x00\x01binary")
            assert await asyncio.wait_for(ws.recv(), 3) == b"\x00\x01binary"
            return n, time.monotonic() - t0

    n, elapsed = asyncio.run(asyncio.wait_for(session(), 20))
    assert elapsed >= 5.0 and n >= 8
    sock.close()
    ev = p.wait_events(1, event="close", host="ws.test")[0]
    assert ev["bytes_up"] > 8 * 10 and ev["bytes_down"] > 8 * 10, ev
    assert ev["duration_ms"] >= 5000, ev


@pytest.mark.parametrize("idle_s", [1, 2])
def test_idle_tunnel_closes_on_time(testnet, cordon_proxy, idle_s):
    p = start(cordon_proxy, testnet, idle="%ds" % idle_s)
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    with c:
        assert r.status == 200
        assert c.request("GET", "/", "allowed.test").status == 200
        waited = c.wait_closed(idle_s * 3 + 1)
    assert idle_s - 0.15 <= waited < idle_s * 3, "closed after %.2fs, idle_timeout %ds" % (waited, idle_s)
    ev = p.wait_events(1, event="close", host="allowed.test")[0]
    assert ev["duration_ms"] >= idle_s * 1000 - 150, ev


@pytest.mark.timeout(30)
def test_streaming_tunnel_outlives_idle_timeout(testnet, cordon_proxy):
    # the upstream talks (a chunk every 400 ms for ~4 s); the client is silent
    p = start(cordon_proxy, testnet, idle="1s")
    c, r = connect_tunnel(p.port, "allowed.test", 80)
    with c:
        assert r.status == 200
        t0 = time.monotonic()
        r = c.request("GET", "/drip/10/400", "allowed.test", timeout=15)
        assert r.status == 200 and r.body == b"tick\n" * 10
        assert time.monotonic() - t0 >= 3.5


def test_slow_head_clients_dropped_while_others_served(testnet, cordon_proxy):
    p = start(cordon_proxy, testnet)
    silent = [socket.create_connection(p.addr, timeout=5) for _ in range(50)]
    drip = socket.create_connection(p.addr, timeout=5)
    drip.sendall(b"CONNECT allowed.test:80 HTTP/1.1\r\n")
    t0 = time.monotonic()
    stop = threading.Event()
    drip_closed = []

    def dripper():
        try:
            while not stop.is_set():
                drip.sendall(b"X")
                time.sleep(0.2)
        except OSError:
            drip_closed.append(time.monotonic() - t0)

    th = threading.Thread(target=dripper, daemon=True)
    th.start()
    try:
        # the silent ones are dropped after the head timeout
        for s in silent:
            waited = _wait_dropped(s, t0, 5)
            assert HEAD_MS / 1000 - 0.15 <= waited <= 3 * HEAD_MS / 1000, waited
        waited = _wait_dropped(drip, t0, 5)
        assert waited <= 3 * HEAD_MS / 1000, "dripping client lived %.2fs" % waited
    finally:
        stop.set()
        th.join(2)
        for s in silent + [drip]:
            s.close()
    assert forward_once(p.port, "http://allowed.test/").status == 200


def test_others_served_while_slow_heads_wait(testnet, cordon_proxy):
    """Clients that send no (or a dripping) request head do not hold up the
    others. Checked by order, not by a clock: with a 60 s head timeout, each
    request is answered while every slow client is still connected."""
    p = cordon_proxy(policy(testnet), "--head-timeout", 60000)
    silent = [socket.create_connection(p.addr, timeout=5) for _ in range(50)]
    drip = socket.create_connection(p.addr, timeout=5)
    drip.sendall(b"CONNECT allowed.test:80 HTTP/1.1\r\nX")
    try:
        for i in range(3):
            r = curl(p.port, "http://allowed.test/", timeout=30)
            assert r.code == 200, r
            drip.sendall(b"X")
        for s in silent + [drip]:
            s.setblocking(False)
            try:
                got = s.recv(1)
                raise AssertionError("a slow client was answered or closed (%r)" % got)
            except BlockingIOError:
                pass                      # still waiting, as it should be
    finally:
        for s in silent + [drip]:
            s.close()


def _wait_dropped(s, t0, timeout):
    """Reads until EOF/reset; allows at most a 408 response before it.
    Returns seconds since t0."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail("slow client still connected after %.1fs" % (time.monotonic() - t0))
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    return time.monotonic() - t0


def test_connect_timeout_gives_502(testnet, cordon_proxy):
    p = start(cordon_proxy, testnet)
    for kind in ("connect", "forward"):
        t0 = time.monotonic()
        if kind == "connect":
            c, r = connect_tunnel(p.port, "blackhole.test", testnet.blackhole, timeout=10)
            c.close()
        else:
            r = forward_once(p.port, "http://blackhole.test:%d/" % testnet.blackhole, timeout=10)
        took = time.monotonic() - t0
        assert_denied(r, "connect_failed", "blackhole.test", testnet.blackhole, status=502)
        assert CONNECT_MS / 1000 - 0.15 <= took < 3 * CONNECT_MS / 1000, (kind, took)


def test_others_served_while_a_connect_hangs(testnet, cordon_proxy):
    """Checked by order, not by a clock: with a 60 s connect timeout, the
    other request is answered while the black-holed connect still hangs."""
    p = cordon_proxy(policy(testnet), "--connect-timeout", 60000)
    c = HttpConn.open(p.addr)
    c.send(b"CONNECT blackhole.test:%d HTTP/1.1\r\nHost: x\r\n\r\n" % testnet.blackhole)
    try:
        assert forward_once(p.port, "http://allowed.test/", timeout=30).status == 200
        c.sock.setblocking(False)
        try:
            got = c.sock.recv(1)
            raise AssertionError("the hanging CONNECT was answered or closed (%r)" % got)
        except BlockingIOError:
            pass
    finally:
        c.close()
