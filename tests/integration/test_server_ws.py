"""`cordon server`: the WebSocket proxy route into execd inside a sandbox
(python websockets clients, execd's PTY protocol through the server)."""
import asyncio
import json

import pytest
import websockets

from execd_fixtures import CH_STDOUT, Term
from server_fixtures import cordon_server  # noqa: F401

EXECD = 44772


def ws_url(srv, sid, path):
    return "ws://127.0.0.1:%d/v1/sandboxes/%s/proxy/%d%s" % (srv.port, sid, EXECD, path)


def new_session(srv, sid, **body):
    return srv.json("POST", "/sandboxes/%s/proxy/%d/sessions" % (sid, EXECD), body,
                    expect=201)["session_id"]


async def refused(srv, url, headers=None):
    try:
        async with websockets.connect(url, extra_headers=srv.headers(headers), close_timeout=1):
            pass
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code, e.headers
    raise AssertionError("handshake to %s was accepted" % url)


@pytest.mark.timeout(120)
def test_pty_through_the_server_and_reconnect_with_since(cordon_server):
    srv = cordon_server()
    sid = srv.create()["id"]
    sess = new_session(srv, sid, cwd="/tmp")

    async def main():
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws" % sess)) as t:
            assert t.connected["mode"] == "pty"
            await t.run("cd /usr && X=42")
            out = await t.run("echo $X-$(pwd)")
            assert "42-/usr" in out, out
            # binary frames with channel bytes arrive intact (0x01 + bytes)
            await t.run("printf '\\x01\\x02\\xfe\\xff-end\\n'")
            raw = [f.raw for f in t.frames if isinstance(f.raw, bytes)]
            assert all(r[0] == CH_STDOUT for r in raw[1:]), raw[:5]
            assert b"\x01\x02\xfe\xff-end" in t.out
            # output that may arrive before or after the client vanishes
            await t.send_line("sleep 0.3; echo LATE-$((40+2))")
            seen, nxt = t.out, t.next_offset
            t.vanish()  # the client dies without a close frame
        # output produced while nobody is attached
        await asyncio.sleep(0)
        st, _, _ = srv.request("POST", "/sandboxes/%s/proxy/%d/command" % (sid, EXECD),
                               {"command": "true"})
        assert st == 200
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws?since=%d" % (sess, nxt))) as t2:
            assert t2.connected["replay_offset"] == nxt and t2.connected["lost_bytes"] == 0
            await t2.read_until(b"LATE-42")
            out = await t2.run("echo again-$X")
            assert "again-42" in out
            # every byte exactly once: what the first client read plus what the
            # second got from `since` on
            assert (seen + t2.out).count(b"LATE-42") == 1, (seen[-200:], t2.out[:400])
            assert (seen + t2.out).count(b"\x01\x02\xfe\xff-end") == 1
        # the other route: /ws/session/{id}?pty=1 on a new session
        s2 = new_session(srv, sid)
        async with Term.connect(srv, ws_url(srv, sid, "/ws/session/%s?pty=1" % s2)) as t3:
            assert t3.connected["mode"] == "pty"
            assert "hi-3" in await t3.run("echo hi-$((1+2))")
    asyncio.run(main())


@pytest.mark.timeout(120)
def test_refusals_are_mirrored_and_distinguishable(cordon_server):
    srv = cordon_server()
    sid = srv.create()["id"]
    sess = new_session(srv, sid)

    async def main():
        # unknown sandbox: the server's own 404, before any backend
        st, h = await refused(srv, ws_url(srv, "nope", "/pty/%s/ws" % sess))
        assert st == 404 and "x-cordon-upstream-status" not in {k.lower() for k in h}
        # unknown session: execd's 404, mirrored (status, body) in the handshake
        st, h = await refused(srv, ws_url(srv, sid, "/pty/no-such-session/ws"))
        assert st == 404 and h["X-Cordon-Upstream-Status"] == "404"
        # a second client gets execd's 409; takeover closes the first with 4001
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws" % sess)) as first:
            st, h = await refused(srv, ws_url(srv, sid, "/pty/%s/ws" % sess))
            assert st == 409 and h["X-Cordon-Upstream-Status"] == "409"
            async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws?takeover=1" % sess)) as t2:
                with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                    while True:
                        await first.recv(10)
                assert ei.value.rcvd.code == 4001, ei.value
                assert "hi" in await t2.run("echo hi")
    asyncio.run(main())

    # the bodies differ too: the server's code vs execd's
    st, _, body = srv.request("GET", "/v1/sandboxes/nope/proxy/%d/pty/x/ws" % EXECD, headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert st == 404 and json.loads(body)["code"] == "SANDBOX::NOT_FOUND"
    st, h, body = srv.request("GET", "/v1/sandboxes/%s/proxy/%d/pty/x/ws" % (sid, EXECD), headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert st == 404 and json.loads(body)["code"] != "SANDBOX::NOT_FOUND"
    assert h["x-cordon-upstream-status"] == "404"


@pytest.mark.timeout(120)
def test_close_codes_and_message_limit(cordon_server):
    srv = cordon_server("--ws-max-message", "4096")
    sid = srv.create()["id"]

    async def main():
        # the process exits: execd's close 1000 "process exited" reaches the client
        sess = new_session(srv, sid)
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws" % sess)) as t:
            await t.send_line("exit 7")
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                while True:
                    await t.recv(10)
            assert ei.value.rcvd.code == 1000 and ei.value.rcvd.reason == "process exited"
            assert t.exit["exit_code"] == 7
        # a message over --ws-max-message: 1009 from the server
        sess = new_session(srv, sid)
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws" % sess)) as t:
            await t.ws.send(b"\x00" + b"x" * 8192)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                while True:
                    await t.recv(10)
            assert ei.value.rcvd.code == 1009
        # the session survived; the client's own close code goes through
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws" % sess)) as t:
            assert "ok" in await t.run("echo ok")
            await t.ws.close(4000, "bye")
            assert t.ws.close_code == 4000
    asyncio.run(main())


@pytest.mark.timeout(180)
def test_fifty_concurrent_proxied_pty_sessions(cordon_server):
    srv = cordon_server()
    sid = srv.create()["id"]
    sessions = [new_session(srv, sid) for _ in range(50)]

    async def one(i, sess):
        async with Term.connect(srv, ws_url(srv, sid, "/pty/%s/ws" % sess)) as t:
            out = await t.run("echo n-$((%d*3))" % i, timeout=60)
            assert "n-%d" % (i * 3) in out, out

    async def main():
        await asyncio.gather(*(one(i, s) for i, s in enumerate(sessions)))
    asyncio.run(main())
