"""cordon execd: authentication, errors, limits and hostile clients."""
import asyncio
import base64
import json
import os
import socket
import struct
import time

import pytest
import websockets

from execd_fixtures import execd, run  # noqa: F401


def test_token_is_required_everywhere(execd):
    ed = execd(token="s3cret-token")
    for method, path in [("GET", "/ping"), ("POST", "/sessions"), ("GET", "/sessions"),
                         ("POST", "/command"), ("GET", "/pty/x/ws")]:
        st, _, body = ed.request(method, path, auth=False)
        assert st == 401, (method, path)
        assert json.loads(body)["code"] == "UNAUTHORIZED"
        st, _, _ = ed.request(method, path, auth=False,
                              headers={"X-EXECD-ACCESS-TOKEN": "s3cret-tokeN"})
        assert st == 401
    assert ed.request("GET", "/ping")[0] == 200
    sid = ed.new_session()

    async def body():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with websockets.connect(ed.ws_url(sid)):
                pass
        assert ei.value.status_code == 401  # a plain 401 before the upgrade
        async with ed.attach(sid) as t:     # with the header it works
            assert (await t.run("echo ok")).strip() == "ok"

    run(body())


def test_errors_are_json_with_stable_codes(execd):
    ed = execd()
    st, _, body = ed.request("POST", "/sessions", b'{"cwd": "/tmp", }')
    err = json.loads(body)
    assert st == 400 and err["code"] == "INVALID_REQUEST_BODY"
    assert "line 1, column 17" in err["message"]
    st, _, body = ed.request("POST", "/sessions", b'[1]')
    assert st == 400
    st, _, body = ed.request("POST", "/sessions", {"cols": 0})
    assert st == 400 and b"cols" in body
    st, _, body = ed.request("GET", "/sessions/nope")
    assert st == 404 and json.loads(body)["code"] == "CONTEXT_NOT_FOUND"
    st, _, body = ed.request("GET", "/nothing/here")
    assert st == 404 and json.loads(body)["code"] == "NOT_FOUND"
    st, _, body = ed.request("PUT", "/sessions")
    assert st == 405 and json.loads(body)["code"] == "METHOD_NOT_ALLOWED"
    # OpenSandbox aliases
    st, _, body = ed.request("POST", "/pty", {})
    assert st == 201
    sid = json.loads(body)["session_id"]
    s = ed.json("GET", "/pty/" + sid)
    assert s["session_id"] == sid and s["running"] is False and s["output_offset"] == 0


def test_unknown_session_is_404_before_the_upgrade(execd):
    ed = execd()

    async def body():
        for url in (ed.ws_url("nope"), ed.ws_url("nope", route="ws")):
            with pytest.raises(websockets.InvalidStatusCode) as ei:
                async with websockets.connect(url):
                    pass
            assert ei.value.status_code == 404

    run(body())
    sid = ed.new_session()
    st, hdr, body = ed.request("GET", "/pty/%s/ws" % sid)
    assert st == 400 and json.loads(body)["code"] == "NOT_WEBSOCKET"
    st, hdr, body = ed.request("GET", "/pty/%s/ws" % sid, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "8",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    assert st == 426 and hdr["Sec-WebSocket-Version"] == "13"
    assert ed.status(sid)["state"] == "CREATED"  # nothing was started


def test_malformed_frames_get_invalid_frame_and_the_connection_stays(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid, route="ws") as t:
            for bad in ["not json", "[1,2]", '{"type":"bogus"}', '{"type":"resize","cols":0}',
                        '{"type":"signal","signal":"SIGNOPE"}', b"", b"\x07abc"]:
                await t.ws.send(bad)
                f = await t.read_until_frame(lambda f: f.json is not None)
                assert f.json["type"] == "error" and f.json["code"] == "INVALID_FRAME", bad
            assert (await t.run("echo still-here")).strip() == "still-here"

    run(body())


def test_oversized_frame_closes_1009_and_the_session_lives(execd):
    ed = execd("--max-frame", "4K")
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid) as t:
            await t.run("echo ready")
            await t.send(b"x" * 10000)
            with pytest.raises(websockets.ConnectionClosed) as ei:
                while True:
                    await t.recv()
            assert ei.value.rcvd.code == 1009
        async with ed.attach(sid, since="tail") as t:
            await t.send(b"\x15")  # ^U: drop whatever was typed
            assert (await t.run("echo alive")).strip() == "alive"

    run(body())


def raw_upgrade(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_client_vanishing_mid_frame_leaves_the_session_running(execd):
    ed = execd()
    sid = ed.new_session()
    s = raw_upgrade(ed.port, "/pty/%s/ws" % sid)
    # a masked binary frame announcing 1000 bytes, of which only 10 arrive
    s.sendall(struct.pack("!BBH", 0x82, 0x80 | 126, 1000) + b"\x01\x02\x03\x04" + b"0" * 10)
    time.sleep(0.1)
    s.close()
    deadline = time.monotonic() + 5
    while ed.status(sid)["attached"] and time.monotonic() < deadline:
        time.sleep(0.02)
    st = ed.status(sid)
    assert st["running"] and not st["attached"]

    async def body():
        async with ed.attach(sid, since="tail") as t:
            assert (await t.run("echo fine")).strip() == "fine"

    run(body())


def test_session_limit_is_reported(execd):
    ed = execd("--max-sessions", "2")
    ed.new_session()
    sid = ed.new_session()
    st, _, body = ed.request("POST", "/sessions", {})
    err = json.loads(body)
    assert st == 429 and err["code"] == "SESSION_LIMIT" and "--max-sessions" in err["message"]
    ed.request("DELETE", "/sessions/" + sid)
    assert ed.request("POST", "/sessions", {})[0] == 201
    assert "session limit 2 reached" in ed.stderr


def test_body_limit_and_pipelining(execd):
    ed = execd("--max-body", "1K")
    st, _, body = ed.request("POST", "/sessions", b"{" + b" " * 2000 + b"}")
    assert st == 413 and json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
    s = socket.create_connection(("127.0.0.1", ed.port), timeout=5)
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /sessions HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
        data += s.recv(4096)
    s.close()
    assert data.count(b"HTTP/1.1 200") == 2 and b'{"sessions":[]}' in data
    # Expect: 100-continue is answered before the body is sent (no curl stall)
    s = socket.create_connection(("127.0.0.1", ed.port), timeout=2)
    s.sendall(b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
              b"Expect: 100-continue\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(b"{}")
    assert s.recv(4096).startswith(b"HTTP/1.1 201")
    s.close()


def test_quiet_session_is_never_timed_out_and_keepalive_pings(execd):
    ed = execd("--ws-ping-interval", "200")
    sid = ed.new_session()

    async def body():
        pings = []
        async with ed.attach(sid, ping_interval=None) as t:
            orig = t.ws.write_frame

            async def spy(fin, opcode, data, **kw):
                if opcode == 0xA:
                    pings.append(time.monotonic())
                return await orig(fin, opcode, data, **kw)

            t.ws.write_frame = spy
            await t.run("echo quiet")
            await asyncio.sleep(1.5)  # silence, longer than 2 ping intervals
            assert (await t.run("echo awake")).strip() == "awake"
        assert len(pings) >= 4, "expected to answer server pings"

    run(body())


def test_a_peer_that_stops_answering_pings_is_dropped(execd):
    ed = execd("--ws-ping-interval", "100")
    sid = ed.new_session()
    s = raw_upgrade(ed.port, "/pty/%s/ws" % sid)
    # read nothing, answer nothing: the server gives up after 2 intervals
    deadline = time.monotonic() + 5
    while ed.status(sid)["attached"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ed.status(sid)["attached"]
    assert ed.status(sid)["running"]
    s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def masked(payload, opcode=0x1):
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def test_a_peer_that_sends_without_reading_cannot_grow_our_memory(execd):
    # under ASan, freed memory would sit in the quarantine and look like growth
    asan = os.environ.get("ASAN_OPTIONS", "")
    ed = execd(env={"ASAN_OPTIONS": (asan + ":" if asan else "") +
                    "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"})
    sid = ed.new_session()
    s = raw_upgrade(ed.port, "/pty/%s/ws" % sid)
    before = rss_kb(ed.proc.pid)
    burst = masked(b'{"type":"ping"}') * 2000 + masked(b"\x09", 0x9) * 2000
    s.setblocking(False)
    sent, off, deadline = 0, 0, time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            n = s.send(burst[off:])
        except BlockingIOError:
            time.sleep(0.01)
            continue
        sent += n
        off = (off + n) % len(burst)  # whole frames, back to back
    grown = rss_kb(ed.proc.pid) - before
    assert sent > 4 << 20, "the client could not even send 4 MB (%d)" % sent
    assert grown < 48 << 10, "execd grew by %d kB for a peer that never reads" % grown
    s.close()
    assert ed.status(sid)["running"]
