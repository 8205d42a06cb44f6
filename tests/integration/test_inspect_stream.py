"""Inspected tunnels: streaming — server-sent events arrive as emitted,
Expect: 100-continue, chunked framing, 1 GiB both ways with bounded proxy
memory."""
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from lib import util  # noqa: E402
from lib.inspect_upstream import BLOCK_SIZE, pattern_chunks, pattern_sha256  # noqa: E402

from inspect_fixtures import (CURL, env_with_proxy, rss_limit_kib, rss_peak_kib,  # noqa: E402
                              tls_tunnel)

pytest_plugins = ["inspect_fixtures"]

GIB = 1 << 30
_sha_cache = {}


def expected_sha(n):
    if n not in _sha_cache:
        _sha_cache[n] = pattern_sha256(n)
    return _sha_cache[n]


# -- SSE ---------------------------------------------------------------------------------
def read_events(conn, n, chunked, timeout=10):
    """Reads n SSE events as they arrive; returns [(arrival_time, data_doc)].
    chunked: the body has chunked framing, decoded here as chunks complete."""
    got = []
    raw, payload = b"", b""
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, "only %d of %d events within %ss: %r" % (len(got), n, timeout, raw[-300:])
        raw += conn.read_some(timeout=left)
        now = time.time()
        if chunked:
            while True:
                i = raw.find(b"\r\n")
                if i < 0:
                    break
                size = int(raw[:i].split(b";")[0], 16)
                if len(raw) < i + 2 + size + 2:
                    break
                payload += raw[i + 2:i + 2 + size]
                raw = raw[i + 2 + size + 2:]
        else:
            payload, raw = payload + raw, b""
        while b"\n\n" in payload:
            ev, payload = payload.split(b"\n\n", 1)
            line = [l for l in ev.split(b"\n") if l.startswith(b"data: ")][0]
            got.append((now, json.loads(line[6:])))
    return got


@pytest.mark.parametrize("route,chunked", [("sse", True), ("sse-close", False)])
def test_sse_events_arrive_as_emitted(iproxy, inet, route, chunked):
    p = iproxy()
    n, gap_ms = 5, 700
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        t.send(("GET /%s/%d/%d HTTP/1.1\r\nHost: full.insp.test\r\nAccept: text/event-stream\r\n\r\n"
                % (route, n, gap_ms)).encode())
        head = t.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"text/event-stream" in head, head
        events = read_events(t, n, chunked, timeout=n * gap_ms / 1000 + 5)
    finally:
        t.close()
    assert [d["i"] for _, d in events] == list(range(n)), events
    lags = ["%.3f" % (a - d["t"]) for a, d in events]
    # each event is here before the next one is even emitted (t is the
    # upstream's emit time, same clock): a proxy that buffers fails this
    for (arrival, d), (_, nxt) in zip(events, events[1:]):
        assert arrival < nxt["t"], "event %d arrived after event %d was emitted (lags %s)" % (
            d["i"], nxt["i"], lags)
    assert events[-1][0] - events[-1][1]["t"] < gap_ms / 1000, lags


# -- Expect: 100-continue ------------------------------------------------------------------
def test_expect_100_continue_raw(iproxy, inet):
    p = iproxy()
    body = os.urandom(200000)
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        t.send(b"POST /sink HTTP/1.1\r\nHost: full.insp.test\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
        interim = t.read_response(timeout=3)     # before any body byte was sent
        assert interim.status == 100, interim
        t.send(body)
        r = t.read_response(timeout=10)
        assert r.status == 200, r
        assert r.json()["length"] == len(body)
        assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
        # the connection is still in step: a next request gets its own answer
        r2 = t.request("GET", "/after-100-continue", "full.insp.test")
        assert r2.status == 200 and r2.json()["target"] == "/after-100-continue", r2
    finally:
        t.close()


def test_expect_100_continue_denied_before_body(iproxy, inet):
    """A denied request with Expect: 100-continue gets its 403 without the
    client having to send the body."""
    p = iproxy()
    t = tls_tunnel(p, "ro.insp.test", 443)
    try:
        t.send(b"POST /expect-denied HTTP/1.1\r\nHost: ro.insp.test\r\nContent-Length: 100000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = t.read_response(timeout=3)
        assert r.status == 403 and r.header("x-cordon-deny") == "l7_denied", r
    finally:
        t.close()
    assert not inet.seen("/expect-denied")


def test_expect_100_continue_curl(iproxy, inet, tmp_path):
    p = iproxy()
    f = tmp_path / "upload.bin"
    data = os.urandom(3 << 20)
    f.write_bytes(data)
    t0 = time.monotonic()
    r = util.run([CURL, "-sS", "--max-time", "40", "--expect100-timeout", "30",
                  "-H", "Expect: 100-continue", "--data-binary", "@" + str(f),
                  "https://full.insp.test/sink"], timeout=45, check=False,
                 env=env_with_proxy(p, {"CURL_CA_BUNDLE": p.ca}))
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["length"] == len(data) and doc["sha256"] == hashlib.sha256(data).hexdigest(), doc
    # curl got the 100 (without it, it would wait 30 s before sending)
    assert took < 15, took


# -- chunked framing ------------------------------------------------------------------------
def test_chunked_request_and_response_framing(iproxy, inet):
    p = iproxy()
    parts = [b"a" * 10, b"b" * 70000, b"c"]
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(x), x) for x in parts) + b"0\r\nX-Trailer: t\r\n\r\n"
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        t.send(b"POST /sink HTTP/1.1\r\nHost: full.insp.test\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        r = t.read_response(timeout=10)
        assert r.status == 200, r
        assert r.json()["length"] == sum(map(len, parts)), r.json()
        assert r.json()["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
        # a chunked response (SSE route) keeps its framing and the connection
        t.send(b"GET /sse/3/10 HTTP/1.1\r\nHost: full.insp.test\r\n\r\n")
        r = t.read_response(timeout=10)
        assert r.status == 200 and (r.header("transfer-encoding") or "").lower() == "chunked", r
        assert r.body.count(b"data: ") == 3, r.body
        r = t.request("GET", "/after-chunked", "full.insp.test")
        assert r.status == 200, r
    finally:
        t.close()


# -- 1 GiB each way --------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_1gib_upload_through_inspected_tls(iproxy, inet):
    p = iproxy()
    argv = [CURL, "-sS", "--max-time", "90", "-T", "-", "-H", "Content-Type: application/octet-stream",
            "https://full.insp.test/sink"]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_with_proxy(p, {"CURL_CA_BUNDLE": p.ca}))
    err = []

    def feed():
        try:
            for b in pattern_chunks(GIB):
                proc.stdin.write(b)
            proc.stdin.close()
        except (BrokenPipeError, ValueError) as e:
            err.append(e)

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    try:
        proc.wait(timeout=100)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        pytest.fail("1 GiB upload did not finish within 100 s")
    finally:
        th.join(5)
        out, stderr = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    took = time.monotonic() - t0
    assert proc.returncode == 0, stderr
    doc = json.loads(out)
    assert doc["length"] == GIB, doc
    assert doc["sha256"] == expected_sha(GIB), doc
    assert took < 60, "1 GiB upload took %.1fs" % took
    peak = rss_peak_kib(p.proc.pid)
    assert peak < rss_limit_kib(p.proc.pid), "proxy peak RSS %d KiB: the body was buffered" % peak


@pytest.mark.timeout(120)
def test_1gib_download_through_inspected_tls(iproxy, inet):
    p = iproxy()
    argv = [CURL, "-sS", "--max-time", "90", "-o", "-", "https://full.insp.test/bytes/%d" % GIB]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_with_proxy(p, {"CURL_CA_BUNDLE": p.ca}))
    h = hashlib.sha256()
    n = 0
    try:
        while True:
            b = proc.stdout.read(BLOCK_SIZE)
            if not b:
                break
            h.update(b)
            n += len(b)
            if time.monotonic() - t0 > 100:
                pytest.fail("1 GiB download did not finish within 100 s (%d bytes)" % n)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    took = time.monotonic() - t0
    assert proc.returncode == 0, stderr
    assert n == GIB, n
    assert h.hexdigest() == expected_sha(GIB)
    assert took < 60, "1 GiB download took %.1fs" % took
    peak = rss_peak_kib(p.proc.pid)
    assert peak < rss_limit_kib(p.proc.pid), "proxy peak RSS %d KiB: the body was buffered" % peak
