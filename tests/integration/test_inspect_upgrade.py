"""Inspected tunnels after a 101: WebSocket over wss and ws, overflow bytes
sent with the 101 head, unsolicited 101s, the upgrade idle timeout."""
import asyncio
import hashlib
import os
import socket
import ssl
import time
import uuid

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from lib.httpclient import HttpConn  # noqa: E402

from inspect_fixtures import client_ctx, plain_tunnel, tls_tunnel, wait_l7  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

# /upgrade/echo answers 101 to any Upgrade it receives; websocket is the
# only upgrade the proxy offers upstream, so the raw-relay tests offer it.
UPGRADE_HEAD = ("GET /upgrade/echo HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n\r\n")
H2C_HEAD = ("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")


def mark():
    return uuid.uuid4().hex[:12]


# -- WebSocket --------------------------------------------------------------------------
async def ws_session(sock, uri, ssl_ctx, host):
    """Runs the exchange on an already-open tunnel socket. Returns a report."""
    import websockets
    sock.setblocking(False)
    kw = {"ssl": ssl_ctx, "server_hostname": host} if ssl_ctx else {}
    async with websockets.connect(uri, sock=sock, max_size=64 << 20, ping_interval=None,
                                  compression=None, open_timeout=10, close_timeout=10,
                                  **kw) as ws:
        out = {}
        await ws.send("hello text")
        out["text"] = await asyncio.wait_for(ws.recv(), 10)
        blob = bytes(range(256)) * 4
        await ws.send(blob)
        out["binary_ok"] = await asyncio.wait_for(ws.recv(), 10) == blob
        big = os.urandom(16 << 20)
        t0 = time.monotonic()
        await ws.send(big)
        back = await asyncio.wait_for(ws.recv(), 60)
        out["big_s"] = time.monotonic() - t0
        out["big_ok"] = len(back) == len(big) and hashlib.sha256(back).digest() == \
            hashlib.sha256(big).digest()
        pong = await ws.ping(b"are-you-there")
        await asyncio.wait_for(pong, 10)
        out["pong"] = True
        await ws.close(code=1000, reason="done")
        await asyncio.wait_for(ws.wait_closed(), 10)
        out["close_code"] = ws.close_code
        out["close_reason"] = ws.close_reason
    return out


def test_websocket_through_inspected_wss(iproxy, inet):
    p = iproxy()
    c = plain_tunnel(p, "wss.insp.test", 9443)
    assert not c.buf
    rep = asyncio.run(asyncio.wait_for(
        ws_session(c.sock, "wss://wss.insp.test:9443/chat", client_ctx(p.ca), "wss.insp.test"), 90))
    assert rep["text"] == "hello text", rep
    assert rep["binary_ok"] and rep["big_ok"] and rep["pong"], rep
    assert rep["close_code"] == 1000 and rep["close_reason"] == "done", rep
    ev = wait_l7(p, 1, host="wss.insp.test", path="/chat")[0]
    assert ev["l7_decision"] == "allow_upgrade" and ev["method"] == "GET", ev
    up = p.wait_events(1, event="upgrade", host="wss.insp.test")[0]
    assert up["l7_decision"] == "allow_upgrade", up
    cl = p.wait_events(1, event="close", host="wss.insp.test", timeout=10)[0]
    assert cl["bytes_up"] > 16 << 20 and cl["bytes_down"] > 16 << 20, cl


def test_websocket_through_inspected_plaintext_ws(iproxy, inet):
    p = iproxy()
    c = plain_tunnel(p, "ws.insp.test", 9080)
    rep = asyncio.run(asyncio.wait_for(
        ws_session(c.sock, "ws://ws.insp.test:9080/plain", None, "ws.insp.test"), 90))
    assert rep["text"] == "hello text" and rep["binary_ok"] and rep["big_ok"], rep
    assert rep["close_code"] == 1000, rep
    assert wait_l7(p, 1, host="ws.insp.test", path="/plain")[0]["l7_decision"] == "allow_upgrade"


def test_websocket_upgrade_denied_by_rule(iproxy, inet):
    """The upgrade request itself is an L7 request: a path no rule allows is
    refused before any 101."""
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        t.send(b"GET /chat HTTP/1.1\r\nHost: api.insp.test\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        r = t.read_response()
        assert r.status == 403 and r.header("x-cordon-deny") == "l7_denied", r
    finally:
        t.close()


def test_websocket_upgrade_refused_on_read_only(iproxy, inet):
    """access: read-only allows GET, but not a GET that upgrades: after the
    101 anything could flow upstream."""
    rw = "      - host: wss.insp.test\n        port: 9443\n        protocol: rest\n        access: read-write\n"
    pol = inet.policy()
    assert rw in pol
    p = iproxy(pol.replace(rw, rw.replace("read-write", "read-only")))
    t = tls_tunnel(p, "wss.insp.test", 9443)
    try:
        t.send(b"GET /chat HTTP/1.1\r\nHost: wss.insp.test:9443\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        r = t.read_response()
        assert r.status == 403 and r.header("x-cordon-deny") == "l7_denied", r
        assert "read-only" in r.body.decode(), r.body
        # a plain GET on the same connection is still allowed
        t.send(b"GET /plain-get HTTP/1.1\r\nHost: wss.insp.test:9443\r\n\r\n")
        assert t.read_response().status != 403
    finally:
        t.close()
    assert not p.events("upgrade"), p.events("upgrade")


# -- 101 overflow ------------------------------------------------------------------------
def read_101_then_overflow(conn):
    head = conn.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    # nothing sent yet: these bytes came with the 101 head
    data = conn.read_until(b"OVERFLOW-HELLO\n", timeout=5)
    assert data == b"OVERFLOW-HELLO\n", data
    conn.send(b"raw ping 1\n")
    assert conn.read_until(b"raw ping 1\n", timeout=5) == b"raw ping 1\n"
    conn.send(b"\x00\x01\x02binary\xff\n")
    assert conn.read_until(b"binary\xff\n", timeout=5) == b"\x00\x01\x02binary\xff\n"


def test_overflow_after_101_arrives_tls(iproxy, inet):
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        t.send(UPGRADE_HEAD.format(host="api.insp.test").encode())
        read_101_then_overflow(t)
    finally:
        t.close()
    up = p.wait_events(1, event="upgrade", host="api.insp.test")[0]
    assert up["l7_decision"] == "allow_upgrade", up
    assert up.get("idle_timeout_ms") == 3600 * 1000, up      # default 1 h


def test_overflow_after_101_arrives_plaintext_tunnel(iproxy, inet):
    p = iproxy()
    c = plain_tunnel(p, "api.insp.test", 80)
    try:
        c.send(UPGRADE_HEAD.format(host="api.insp.test").encode())
        read_101_then_overflow(c)
    finally:
        c.close()


def test_overflow_after_101_arrives_absolute_form(iproxy, inet):
    p = iproxy()
    with HttpConn.open(p.addr) as c:
        c.send(b"GET http://api.insp.test/upgrade/echo HTTP/1.1\r\nHost: api.insp.test\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        read_101_then_overflow(c)


# -- h2c and other upgrades are never offered upstream ------------------------------------
def h2c_exchange(conn, host, target):
    conn.send(H2C_HEAD.format(host=host, target=target).encode())
    return conn.read_response("GET")


def assert_h2c_withheld(conn, host, absolute=False):
    """An upstream that switches to whatever it is offered (/upgrade/echo)
    never sees h2c: it answers 426, and the connection goes on as HTTP/1.1;
    the echo endpoint shows what was forwarded."""
    pre = "http://%s" % host if absolute else ""
    r = h2c_exchange(conn, host, pre + "/upgrade/echo")
    assert r.status == 426, r
    r = h2c_exchange(conn, host, pre + "/echo-h2c")
    assert r.status == 200, r
    import json as _json
    hdrs = {k.lower(): v for k, v in _json.loads(r.body)["headers"]}
    assert "upgrade" not in hdrs and "http2-settings" not in hdrs, hdrs
    assert "upgrade" not in hdrs.get("connection", "").lower(), hdrs
    assert "http2-settings" not in hdrs.get("connection", "").lower(), hdrs


def test_h2c_never_offered_tls(iproxy, inet):
    p = iproxy()
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        assert_h2c_withheld(t, "full.insp.test")
    finally:
        t.close()
    assert not p.events("upgrade", host="full.insp.test"), p.events("upgrade")


def test_h2c_never_offered_plaintext_tunnel_and_forward(iproxy, inet):
    p = iproxy()
    c = plain_tunnel(p, "full.insp.test", 80)
    try:
        assert_h2c_withheld(c, "full.insp.test")
    finally:
        c.close()
    with HttpConn.open(p.addr) as c:
        assert_h2c_withheld(c, "full.insp.test", absolute=True)
    assert not p.events("upgrade"), p.events("upgrade")


def test_mixed_offer_keeps_only_websocket(iproxy, inet):
    """Upgrade: h2c, websocket → the upstream is offered websocket alone."""
    p = iproxy()
    c = plain_tunnel(p, "full.insp.test", 80)
    try:
        c.send(b"GET /upgrade/echo HTTP/1.1\r\nHost: full.insp.test\r\n"
               b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c, websocket\r\n"
               b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        head = c.read_until(b"\r\n\r\n", timeout=5)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"Upgrade: websocket\r\n" in head, head      # what the upstream was offered
    finally:
        c.close()


def test_curl_http2_over_http_still_works(iproxy, inet):
    """curl --http2 offers h2c on every http:// request: it must still get
    its answer, over HTTP/1.1."""
    import subprocess
    from inspect_fixtures import env_with_proxy
    p = iproxy()
    r = subprocess.run(["curl", "-sS", "--http2", "-m", "10", "-o", "/dev/null", "-w",
                        "%{http_code} %{http_version}", "http://full.insp.test/echo-curl"],
                       env=env_with_proxy(p), capture_output=True, text=True, timeout=20)
    assert r.stdout == "200 1.1", (r.stdout, r.stderr)


# -- unsolicited 101 ---------------------------------------------------------------------
def assert_cut_off(conn, inet, m):
    """After an unsolicited 101: the bytes after the head never arrive, the
    connection closes, and what the client sends next never reaches the
    upstream."""
    try:
        conn.send(("CLIENT-AFTER-101-%s\n" % m).encode())
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass
    try:
        conn.wait_closed(5)
    except socket.timeout:
        pytest.fail("the connection is still open 5 s after an unsolicited 101 (got %r)" % conn.buf)
    except (ssl.SSLError, OSError):
        pass
    assert b"SMUGGLED-AFTER-101" not in conn.buf, conn.buf
    time.sleep(0.3)
    assert not inet.seen("CLIENT-AFTER-101-" + m)


def test_unsolicited_101_cut_off_tls(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        t.send(b"GET /upgrade/unsolicited HTTP/1.1\r\nHost: full.insp.test\r\n\r\n")
        assert_cut_off(t, inet, m)
    finally:
        t.close()
    p.wait_events(1, event="close", host="full.insp.test", reason="unsolicited_101")
    assert not p.events("upgrade", host="full.insp.test"), p.events("upgrade")


def test_unsolicited_101_cut_off_plaintext_and_forward(iproxy, inet):
    p = iproxy()
    m = mark()
    c = plain_tunnel(p, "full.insp.test", 80)
    try:
        c.send(b"GET /upgrade/unsolicited HTTP/1.1\r\nHost: full.insp.test\r\n\r\n")
        assert_cut_off(c, inet, m)
    finally:
        c.close()
    m2 = mark()
    with HttpConn.open(p.addr) as c:
        c.send(b"GET http://full.insp.test/upgrade/unsolicited HTTP/1.1\r\nHost: full.insp.test\r\n\r\n")
        assert_cut_off(c, inet, m2)
    assert len(p.wait_events(2, event="close", reason="unsolicited_101")) == 2


def test_upgrade_without_connection_upgrade_is_not_offered(iproxy, inet):
    """Upgrade without Connection: upgrade is not an upgrade request: the
    proxy does not forward the Upgrade header, so an upstream that switches
    to whatever it is offered never switches."""
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        t.send(b"GET /upgrade/echo HTTP/1.1\r\nHost: api.insp.test\r\nUpgrade: websocket\r\n\r\n")
        r = t.read_response("GET")
        assert r.status == 426, r
        assert b"OVERFLOW-HELLO" not in t.buf, t.buf
    finally:
        t.close()
    assert not p.events("upgrade", host="api.insp.test"), p.events("upgrade")


# -- idle timeout after the upgrade -------------------------------------------------------
def test_upgrade_idle_timeout(iproxy, inet):
    extra = """      - host: idle.insp.test
        port: 443
        protocol: rest
        access: full
        upgrade_idle_timeout: 1s
        allowed_ips: ["%s"]
""" % inet.cidr
    p = iproxy(inet.policy(extra_endpoints=extra))
    t = tls_tunnel(p, "idle.insp.test", 443)
    try:
        t.send(UPGRADE_HEAD.format(host="idle.insp.test").encode())
        assert t.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
        assert t.read_until(b"OVERFLOW-HELLO\n") == b"OVERFLOW-HELLO\n"
        # traffic keeps it alive past the timeout ...
        for i in range(3):
            time.sleep(0.5)
            t.send(b"keep %d\n" % i)
            assert t.read_until(b"keep %d\n" % i, timeout=3)
        # ... silence ends it
        t0 = time.monotonic()
        try:
            waited = t.wait_closed(8)
        except (ssl.SSLError, OSError):
            waited = time.monotonic() - t0
        assert 0.5 <= waited <= 6, waited
    finally:
        t.close()
    up = p.wait_events(1, event="upgrade", host="idle.insp.test")[0]
    assert up["idle_timeout_ms"] == 1000, up
    p.wait_events(1, event="close", host="idle.insp.test", reason="idle_timeout")
