"""How a relayed WebSocket ends when the proxy ends it (issue #15 item 5).

After a 101 the proxy follows the frames in both directions (src/proxy/
wsrelay.c), so it can say why a session ended instead of cutting it:
  - the upstream resets or closes without a close frame → the client gets
    close 1011 with the proxy's reason, then a clean TCP/TLS close;
  - the upstream dies inside a frame → no frame can be added: the client's
    connection is reset (never a clean 1000);
  - the endpoint's upgrade_idle_timeout fires → close 1001 "idle timeout" to
    both the client and the upstream (masked, as a client's frame);
    a side whose direction is inside a frame is reset instead.
Each runs over the three ways a WebSocket crosses the proxy: wss inside an
inspected CONNECT (TLS terminated), ws inside an inspected CONNECT, and ws://
in absolute form. The upstream is lib/inspect_upstream.py's WebSocket
server (python websockets) in the test namespace; its /ws/ paths fault on
request and log how each session ended. Clients: python websockets, node ws.
Nothing here waits on time: each step waits for the real event (a frame,
an audit record, the upstream's log line) with a generous bound."""
import asyncio
import json
import os
import socket
import subprocess
import uuid

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from lib import util  # noqa: E402

from inspect_fixtures import NODE, client_ctx, plain_tunnel, tls_tunnel  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.realpath(os.path.join(HERE, "..", "node", "node_modules"))

MODES = ("wss", "ws_tunnel", "ws_forward")
WAIT = 30  # seconds: the bound on every wait (none is expected to come near it)

IDLE_ENDPOINT = """      - host: idle.insp.test
        ports: [9443, 9080, 443]
        protocol: rest
        access: read-write
        upgrade_idle_timeout: 1s
        allowed_ips: ["{cidr}"]
"""


def mark():
    return uuid.uuid4().hex[:12]


def target(mode, host):
    """(host, port, scheme) of the WebSocket server for a mode."""
    return (host, 9443, "wss") if mode == "wss" else (host, 9080, "ws")


def protocol_class(absolute_prefix=None):
    """The websockets client protocol, recording how its TCP connection ended
    (connection_lost's exception: None for a clean close) and, for ws://
    through the proxy in absolute form, writing the request target as
    http://host:port/path (the library only writes origin-form)."""
    from websockets.legacy.client import WebSocketClientProtocol

    class Proto(WebSocketClientProtocol):
        lost_exc = "not lost"

        def write_http_request(self, path, headers):
            super().write_http_request((absolute_prefix or "") + path, headers)

        def connection_lost(self, exc):
            self.lost_exc = exc
            super().connection_lost(exc)

    return Proto


def ws_connect(proxy, mode, host, path):
    """Opens a WebSocket to host's server through the proxy (awaitable)."""
    import websockets
    h, port, scheme = target(mode, host)
    uri = "%s://%s:%d%s" % (scheme, h, port, path)
    kw = dict(ping_interval=None, compression=None, open_timeout=WAIT, close_timeout=WAIT)
    if mode == "ws_forward":
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT)
        prefix = "http://%s:%d" % (h, port)
        kw["create_protocol"] = protocol_class(prefix)
    else:
        c = plain_tunnel(proxy, h, port)
        assert not c.buf, c.buf
        sock = c.sock
        kw["create_protocol"] = protocol_class()
    if scheme == "wss":
        kw["ssl"] = client_ctx(proxy.ca)
        kw["server_hostname"] = h
    sock.setblocking(False)
    return websockets.connect(uri, sock=sock, **kw)


async def session(proxy, mode, host, path, fault):
    """hello/echo, then `fault` (a message the server acts on, or None to
    stay silent); returns what the client saw of the end."""
    import websockets
    ws = await ws_connect(proxy, mode, host, path)
    try:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "hello"
        if fault:
            await ws.send(fault)
        try:
            extra = await asyncio.wait_for(ws.recv(), WAIT)
            pytest.fail("a message after %r: %r" % (fault, extra))
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        lost = await asyncio.wait_for(_lost(ws), WAIT)
        return {"code": ws.close_code, "reason": ws.close_reason, "lost": lost}
    finally:
        ws.transport.abort()


async def _lost(ws):
    while ws.lost_exc == "not lost":
        await asyncio.sleep(0.01)
    return ws.lost_exc


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 3 * WAIT))


def upstream_end(inet, path):
    """The upstream's log record of how the session on path ended."""
    def find():
        try:
            with open(inet.log, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("ws_path") == path:
                return rec
        return None
    return util.wait_until(find, WAIT, what="the upstream's record of %s" % path)


def close_event(proxy, host, reason):
    ev = proxy.wait_events(1, WAIT, event="close", host=host, reason=reason)
    assert len(ev) == 1, ev
    assert "websocket" in ev[0], ev[0]
    return ev[0]["websocket"]


# -- the upstream goes away without a close frame ------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault,reason,end", [
    ("reset", "cordon: upstream connection lost", "error"),                # RST
    ("eof", "cordon: upstream closed without a close frame", "eof"),      # FIN / close_notify
])
def test_upstream_gone_gives_client_1011(iproxy, inet, mode, fault, reason, end):
    p = iproxy()
    host = "wss.insp.test" if mode == "wss" else "ws.insp.test"
    path = "/ws/%s-%s" % (fault, mark())
    seen = run(session(p, mode, host, path, fault))
    assert seen["code"] == 1011 and seen["reason"] == reason, seen
    assert seen["lost"] is None, seen            # then a clean close, no reset
    w = close_event(p, host, "websocket_upstream_lost")
    assert w["close_to_client"] == 1011 and w["close_to_upstream"] is None, w
    assert w["client_reset"] is False and w["upstream_end"] == end, w
    assert w["frames_up"] >= 2 and w["frames_down"] >= 1, w   # hello, the fault, the client's close; echo


@pytest.mark.parametrize("mode", MODES)
def test_upstream_dies_mid_frame_resets_client(iproxy, inet, mode):
    """The upstream sends the header and 10 of 256 payload bytes, then
    resets: a close frame now would be read as payload, so the client's
    connection is reset — it must never see a clean close."""
    p = iproxy()
    host = "wss.insp.test" if mode == "wss" else "ws.insp.test"
    path = "/ws/midframe-" + mark()
    seen = run(session(p, mode, host, path, "midframe"))
    assert seen["code"] == 1006, seen            # no close frame at all
    assert isinstance(seen["lost"], ConnectionResetError), seen
    w = close_event(p, host, "websocket_upstream_lost_mid_frame")
    assert w["client_reset"] is True and w["close_to_client"] is None, w
    assert w["upstream_end"] == "error", w


# -- the endpoint's idle timeout -------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_idle_timeout_sends_1001_both_ways(iproxy, inet, mode):
    p = iproxy(inet.policy(extra_endpoints=IDLE_ENDPOINT.format(cidr=inet.cidr)))
    path = "/ws/idle-" + mark()
    seen = run(session(p, mode, "idle.insp.test", path, None))
    assert seen["code"] == 1001 and seen["reason"] == "cordon: idle timeout", seen
    assert seen["lost"] is None, seen
    up = upstream_end(inet, path)                # the upstream heard it too, as a client's frame
    assert up["close_code"] == 1001 and up["close_reason"] == "cordon: idle timeout", up
    w = close_event(p, "idle.insp.test", "idle_timeout")
    assert w["close_to_client"] == 1001 and w["close_to_upstream"] == 1001, w
    assert w["client_reset"] is False, w
    ev = p.wait_events(1, WAIT, event="upgrade", host="idle.insp.test")[0]
    assert ev["idle_timeout_ms"] == 1000, ev


def test_idle_timeout_mid_frame_resets_client(iproxy, inet):
    """Idle while the upstream is inside a frame (it sent part of one and
    went quiet): the client cannot get a close frame and is reset; the
    upstream, whose direction is between frames, still gets 1001."""
    p = iproxy(inet.policy(extra_endpoints=IDLE_ENDPOINT.format(cidr=inet.cidr)))
    path = "/ws/stall-" + mark()
    seen = run(session(p, "wss", "idle.insp.test", path, "stall"))
    assert seen["code"] == 1006 and isinstance(seen["lost"], ConnectionResetError), seen
    up = upstream_end(inet, path)
    assert up["close_code"] == 1001, up
    w = close_event(p, "idle.insp.test", "idle_timeout")
    assert w["client_reset"] is True and w["close_to_client"] is None, w
    assert w["close_to_upstream"] == 1001, w


def test_no_frame_added_to_a_stream_that_is_not_websocket(iproxy, inet):
    """After a 101 the upstream sends raw text, not frames: the tracker
    cannot follow it, so the idle timeout ends it with a plain close and not
    one byte of the proxy's own reaches the client."""
    p = iproxy(inet.policy(extra_endpoints=IDLE_ENDPOINT.format(cidr=inet.cidr)))
    t = tls_tunnel(p, "idle.insp.test", 443)
    try:
        t.send(b"GET /upgrade/echo HTTP/1.1\r\nHost: idle.insp.test\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\n\r\n")
        assert t.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
        assert t.read_until(b"OVERFLOW-HELLO\n") == b"OVERFLOW-HELLO\n"
        t.wait_closed(WAIT)                      # EOF (a plain close), within the bound
        assert t.buf == b"", t.buf               # nothing after the upstream's own bytes
    finally:
        t.close()
    w = close_event(p, "idle.insp.test", "idle_timeout")
    assert w["close_to_client"] is None and w["close_to_upstream"] is None, w
    assert w["client_reset"] is False and "untracked_down" in w, w


def test_normal_close_is_untouched(iproxy, inet):
    """A close handshake between the peers passes as it is: the proxy adds
    nothing and the end is the peers' own."""
    import websockets
    p = iproxy()

    async def go():
        ws = await ws_connect(p, "wss", "wss.insp.test", "/ws/normal-" + mark())
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "hello"
        await ws.close(code=4000, reason="bye from the client")
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        assert isinstance(ws.close_code, int)
        return ws.close_code, ws.close_reason, await asyncio.wait_for(_lost(ws), WAIT)

    code, reason, lost = run(go())
    assert (code, reason, lost) == (4000, "bye from the client", None)
    ev = p.wait_events(1, WAIT, event="close", host="wss.insp.test")[0]
    w = ev["websocket"]
    assert w["close_to_client"] is None and w["close_to_upstream"] is None, w
    assert w["client_reset"] is False and ev["reason"] in ("upstream_closed", "client_closed"), ev
    del websockets


# -- node ws ---------------------------------------------------------------------------------
NODE_CLIENT = r"""
const http = require("http"), tls = require("tls"), fs = require("fs");
const WebSocket = require(process.argv[1] + "/ws");
const [proxyPort, host, port, path, ca, fault] = process.argv.slice(2);
const req = http.request({host: "127.0.0.1", port: +proxyPort, method: "CONNECT",
                          path: host + ":" + port});
req.on("connect", (res, sock) => {
  if (res.statusCode !== 200) { console.log(JSON.stringify({connect: res.statusCode})); process.exit(1); }
  const ws = new WebSocket("wss://" + host + ":" + port + path, {
    createConnection: () => tls.connect({socket: sock, servername: host, ca: fs.readFileSync(ca),
                                         ALPNProtocols: ["http/1.1"]})});
  ws.on("open", () => ws.send("hello"));
  ws.on("message", (m) => {
    if (m.toString() === "hello" && fault !== "-") ws.send(fault);
  });
  ws.on("close", (code, reason) => {
    console.log(JSON.stringify({code, reason: reason.toString()}));
    process.exit(0);
  });
  ws.on("error", (e) => console.log(JSON.stringify({error: e.code || e.message})));
});
req.end();
"""


def node_session(p, host, path, fault):
    assert os.path.exists(os.path.join(NODE_MODULES, "ws", "package.json")), \
        "the ws npm package is missing: run scripts/setup"
    r = subprocess.run([NODE, "-e", NODE_CLIENT, NODE_MODULES, str(p.port), host, "9443", path,
                        p.ca, fault], capture_output=True, text=True, timeout=3 * WAIT)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return [l for l in lines if "code" in l][-1], lines


def test_node_ws_sees_1011_and_1001(iproxy, inet):
    p = iproxy(inet.policy(extra_endpoints=IDLE_ENDPOINT.format(cidr=inet.cidr)))
    end, lines = node_session(p, "wss.insp.test", "/ws/reset-" + mark(), "reset")
    assert end == {"code": 1011, "reason": "cordon: upstream connection lost"}, lines
    path = "/ws/idle-" + mark()
    end, lines = node_session(p, "idle.insp.test", path, "-")
    assert end == {"code": 1001, "reason": "cordon: idle timeout"}, lines
    assert upstream_end(inet, path)["close_code"] == 1001
