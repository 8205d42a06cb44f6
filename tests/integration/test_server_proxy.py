"""`cordon server`: the HTTP proxy route /sandboxes/{id}/proxy/{port}/{path}
against real backends inside a sandbox (execd, and a Python echo server)."""
import http.client
import json
import os
import socket
import subprocess
import time

import pytest

from server_fixtures import ECHO_SRC, KEY, cordon_server, wait_backend  # noqa: F401

ECHO_PORT = 8080


def echo_sandbox(srv):
    sbx = srv.create(entrypoint=["/usr/bin/python3", "-c", ECHO_SRC, str(ECHO_PORT)])
    wait_backend(srv, sbx["id"], ECHO_PORT)
    return sbx["id"]


@pytest.mark.timeout(90)
def test_command_through_the_proxy(cordon_server):
    srv = cordon_server()
    sid = srv.create()["id"]
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % sid,
                 body=json.dumps({"command": "printf 'a\\nb\\n'; echo err >&2; exit 3"}),
                 headers=srv.headers({"Content-Type": "application/json"}))
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/event-stream"
    assert r.getheader("Transfer-Encoding") == "chunked" and r.getheader("Content-Length") is None
    raw = r.read()  # http.client checks the chunked framing, last chunk included
    events = [json.loads(b[6:]) for b in raw.decode().split("\n\n") if b.strip()]
    types = [e["type"] for e in events]
    assert "exit" in types, events
    assert [e for e in events if e["type"] == "exit"][0]["exit_code"] == 3
    # execd streams one event per line (OpenSandbox's shape), without the newline
    lines = [e.get("text", "") for e in events if e["type"] == "stdout"]
    assert lines == ["a", "b"], events
    # keep-alive: the same client connection serves the next request
    conn.request("GET", "/v1/sandboxes/%s/proxy/44772/ping" % sid, headers=srv.headers())
    r = conn.getresponse()
    assert r.status == 200
    r.read()
    conn.close()


@pytest.mark.timeout(90)
def test_headers_query_and_body_reach_the_backend_filtered(cordon_server):
    srv = cordon_server()
    sid = echo_sandbox(srv)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.putrequest("POST", "/sandboxes/%s/proxy/%d/a/b%%2Fc?x=1&y=%%2F&&z" % (sid, ECHO_PORT),
                    skip_host=True, skip_accept_encoding=True)
    for k, v in [("Host", "front.example:9"), ("OPEN-SANDBOX-API-KEY", KEY),
                 ("Authorization", "Bearer secret"), ("Cookie", "s=1"),
                 ("Proxy-Authorization", "Basic eA=="), ("Connection", "keep-alive, X-Drop-Me"),
                 ("X-Drop-Me", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                 ("X-Trace", "t-1"), ("X-Execd-Access-Token", "tok"),
                 ("X-Forwarded-For", "10.9.9.9"), ("Content-Type", "text/plain"),
                 ("Content-Length", "11")]:
        conn.putheader(k, v)
    conn.endheaders(b"hello world")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 201, body
    echo = json.loads(body)
    hdrs = {k.lower(): v for k, v in echo["headers"]}
    assert echo["method"] == "POST"
    assert echo["target"] == "/a/b%2Fc?x=1&y=%2F&&z"  # path and query byte for byte
    assert echo["body"] == "hello world"
    for gone in ("authorization", "cookie", "open-sandbox-api-key", "proxy-authorization",
                 "x-drop-me", "keep-alive", "te"):
        assert gone not in hdrs, (gone, hdrs)
    assert hdrs["x-trace"] == "t-1" and hdrs["x-execd-access-token"] == "tok"
    assert hdrs["x-forwarded-for"] == "10.9.9.9, 127.0.0.1"
    assert hdrs["x-forwarded-proto"] == "http"
    assert hdrs["x-forwarded-host"] == "front.example:9"
    assert hdrs["content-length"] == "11"
    assert hdrs["host"].endswith(":%d" % ECHO_PORT)
    # the response: hop-by-hop and Connection-named headers removed
    assert r.getheader("X-Backend") == "echo"
    assert r.getheader("X-Hop") is None and r.getheader("Keep-Alive") is None
    assert r.getheader("X-Request-ID")
    conn.close()


@pytest.mark.timeout(90)
def test_large_response_streams_with_correct_framing(cordon_server):
    srv = cordon_server()
    sid = echo_sandbox(srv)
    n = 8 * 1024 * 1024 + 123
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("GET", "/sandboxes/%s/proxy/%d/big?n=%d" % (sid, ECHO_PORT, n),
                 headers=srv.headers())
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Length") is None and r.getheader("Transfer-Encoding") == "chunked"
    # read slowly at first: the server must hold the backend back, not buffer it all
    first = r.read(1000)
    time.sleep(0.5)
    data = first + r.read()
    assert len(data) == n
    pattern = bytes(range(256)) * 256
    assert data[:len(pattern)] == pattern and data[65536:65536 + 256] == bytes(range(256))
    conn.close()


@pytest.mark.timeout(90)
def test_errors_are_json_with_the_right_status(cordon_server):
    srv = cordon_server("--proxy-timeout", "1500")
    sid = echo_sandbox(srv)
    cases = [("/sandboxes/no-such-sandbox/proxy/80/", 404, "SANDBOX::NOT_FOUND"),
             ("/sandboxes/%s/proxy/0/" % sid, 400, "SANDBOX::INVALID_PORT"),
             ("/sandboxes/%s/proxy/70000/" % sid, 400, "SANDBOX::INVALID_PORT"),
             ("/sandboxes/%s/proxy/http/" % sid, 400, "SANDBOX::INVALID_PORT"),
             ("/sandboxes/%s/proxy/81/x" % sid, 502, "PROXY::CONNECT_FAILED"),
             ("/sandboxes/%s/proxy/%d/hang" % (sid, ECHO_PORT), 504, "PROXY::TIMEOUT"),
             ("/sandboxes/%s/proxy/%d/a/../b" % (sid, ECHO_PORT), 400,
              "SANDBOX::INVALID_PARAMETER")]
    for path, status, code in cases:
        st, h, body = srv.request("GET", path)
        assert st == status, (path, st, body)
        err = json.loads(body)
        assert err["code"] == code and err["message"], (path, err)
        assert h["content-type"] == "application/json"


def test_strict_front_door(cordon_server):
    """The server's front door refuses what the proxy refuses (http/vocab) and
    keeps serving."""
    srv = cordon_server()
    bad = [
        (b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\nHost: a\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        (b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         400),
        (b"POST /health HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\nabcXX0\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) +
         b"\r\n", 431),
        (b"GET /health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ]
    for raw, status in bad:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(raw)
        resp = b""
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            resp += d
        s.close()
        assert resp.startswith(b"HTTP/1.1 %d " % status), (raw[:80], resp[:200])
        assert b"Connection: close" in resp
    st, _, _ = srv.request("GET", "/health", auth=False)
    assert st == 200


# A backend that reads a request body in pieces (Content-Length or chunked,
# de-chunked by hand) and answers its length and SHA-256: it never holds the
# body, so a large upload costs it no memory either.
SINK_SRC = r"""
import hashlib, json, socket, sys, threading
def serve(c):
    f = c.makefile("rb")
    head = {}
    line = f.readline()
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, v = h.decode().split(":", 1)
        head[k.strip().lower()] = v.strip()
    d, n = hashlib.sha256(), 0
    if "content-length" in head:
        left = int(head["content-length"])
        while left:
            b = f.read(min(left, 1 << 16))
            if not b:
                break
            d.update(b); n += len(b); left -= len(b)
    elif head.get("transfer-encoding") == "chunked":
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            left = size
            while left:
                b = f.read(min(left, 1 << 16))
                d.update(b); n += len(b); left -= len(b)
            f.readline()
    out = json.dumps({"n": n, "sha256": d.hexdigest(), "te": head.get("transfer-encoding"),
                      "cl": head.get("content-length"), "line": line.decode().strip()}).encode()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n%s" % (len(out), out))
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

UPLOAD_MB = 256


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


@pytest.fixture(scope="module")
def upload_file(tmp_path_factory):
    """UPLOAD_MB of a non-repeating-per-MiB pattern, with its SHA-256."""
    import hashlib
    path = tmp_path_factory.mktemp("upload") / "body.bin"
    d = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(UPLOAD_MB):
            block = (i.to_bytes(4, "big") + bytes(range(252))) * 4096
            d.update(block)
            f.write(block)
    yield str(path), d.hexdigest()
    os.unlink(path)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_upload_is_streamed_with_bounded_memory(cordon_server, upload_file, framing):
    """256 MiB through the route (4x the default --max-body, which bounds only
    buffered bodies): it reaches the backend whole, with the client's framing,
    and the server's peak RSS grows by far less than the body."""
    path, digest = upload_file
    srv = cordon_server()
    sbx = srv.create(entrypoint=["/usr/bin/python3", "-c", SINK_SRC, "9000"])
    sid = sbx["id"]
    wait_backend(srv, sid, 9000)
    before = vm_hwm_kib(srv.proc.pid)
    url = "http://127.0.0.1:%d/v1/sandboxes/%s/proxy/9000/up?x=1" % (srv.port, sid)
    cmd = ["curl", "-sS", "--fail-with-body", "-H", "OPEN-SANDBOX-API-KEY: " + KEY,
           "-H", "X-Request-ID: upload-1"]
    if framing == "chunked":
        cmd += ["-T", "-", url]
        stdin = open(path, "rb")
    else:
        cmd += ["-T", path, url]
        stdin = subprocess.DEVNULL
    try:
        p = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=280)
    finally:
        if stdin is not subprocess.DEVNULL:
            stdin.close()
    assert p.returncode == 0, p
    got = json.loads(p.stdout)
    assert got["n"] == UPLOAD_MB << 20 and got["sha256"] == digest, got
    assert got["line"] == "PUT /up?x=1 HTTP/1.1"
    if framing == "chunked":
        assert got["te"] == "chunked" and got["cl"] is None, got
    else:
        assert got["cl"] == str(UPLOAD_MB << 20) and got["te"] is None, got
    growth_mib = (vm_hwm_kib(srv.proc.pid) - before) / 1024
    assert growth_mib < 64, "server peak RSS grew %.1f MiB for a %d MiB upload" % (
        growth_mib, UPLOAD_MB)


@pytest.mark.timeout(120)
def test_streamed_upload_errors_are_json(cordon_server):
    """A streamed body to a port nothing listens on: 502 as JSON once the body
    is in (the connection then still serves); to a paused sandbox: 409."""
    srv = cordon_server()
    sid = srv.create()["id"]
    body = b"x" * (3 << 20)
    st, h, raw = srv.request("POST", "/v1/sandboxes/%s/proxy/9999/x" % sid, body=body)
    assert st == 502 and json.loads(raw)["code"] == "PROXY::CONNECT_FAILED", raw
    srv.json("POST", "/v1/sandboxes/%s/pause" % sid, expect=202)
    st, h, raw = srv.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % sid, body=body)
    assert st == 409 and json.loads(raw)["code"] == "SANDBOX::NOT_RUNNING", raw
