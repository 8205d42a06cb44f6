"""Chunked request bodies through the real proxy (#12 item 9): a request
whose first chunk size is bad is refused with 400 before its head goes
anywhere — the upstream in the test namespace logs every request head it
receives and must never log it — on the forward proxy, in a plaintext
inspected tunnel and in a TLS-inspected tunnel. A chunk-size line split
across writes is waited for; Expect: 100-continue gets the proxy's own 100
first; a framing error after the head went resets the upstream connection
and answers 400 while no response has started."""
import time
import uuid

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from inspect_fixtures import closed_or_400, plain_tunnel, tls_tunnel  # noqa: E402
from lib.httpclient import HttpConn  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

HOST = "api.insp.test"


def mark():
    return uuid.uuid4().hex[:12]


def forward_conn(p):
    return HttpConn.open(("127.0.0.1", p.port), timeout=10)


def head(kind, m, extra=""):
    target = "/sink?m=%s" % m
    if kind == "forward":
        target = "http://%s%s" % (HOST, target)
    return ("POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n%s\r\n"
            % (target, HOST, extra)).encode()


def open_kind(p, kind):
    if kind == "forward":
        return forward_conn(p)
    if kind == "tunnel":
        return plain_tunnel(p, HOST, 80)
    return tls_tunnel(p, HOST, 443)


def seen_after_probe(p, inet, kind, m):
    """Whether the upstream logged m, asked after a later request on a new
    connection of the same kind has been answered by it."""
    probe = mark()
    c = open_kind(p, kind)
    try:
        c.send(head(kind, probe) + b"3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response("POST")
        assert r.status == 200 and r.json()["length"] == 3, r
    finally:
        c.close()
    assert inet.seen(probe)
    return inet.seen(m)


BAD_FIRST = {
    "not_hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "overflow": b"10000000000000000005\r\nhello\r\n0\r\n\r\n",
    "empty": b"\r\nhello\r\n0\r\n\r\n",
    "bare_lf": b"5\nhello\r\n0\r\n\r\n",
    "negative": b"-5\r\nhello\r\n0\r\n\r\n",
    "space_inside": b"5 5\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("kind", ["forward", "tunnel", "tls"])
@pytest.mark.parametrize("case", sorted(BAD_FIRST))
def test_bad_first_chunk_size_never_reaches_upstream(iproxy, inet, kind, case):
    p = iproxy()
    m = mark()
    c = open_kind(p, kind)
    try:
        c.send(head(kind, m) + BAD_FIRST[case])
        r = closed_or_400(c)
        assert r is not None and r.status == 400, (case, r)
        assert r.json()["reason_code"] == "bad_request_body", r
        assert "nothing was forwarded" in r.json()["detail"], r
    finally:
        c.close()
    assert not seen_after_probe(p, inet, kind, m), case


@pytest.mark.parametrize("kind", ["forward", "tls"])
def test_split_size_line_is_waited_for(iproxy, inet, kind):
    """The first chunk-size line arrives a byte at a time; the head is held
    until it is complete, then the request goes on normally."""
    p = iproxy()
    m = mark()
    c = open_kind(p, kind)
    try:
        c.send(head(kind, m))
        c.send(b"1")
        c.send(b"0")
        c.send(b";ext=1\r")
        c.send(b"\n" + b"x" * 16 + b"\r\n4\r\nabcd\r\n0\r\n\r\n")
        r = c.read_response("POST")
        assert r.status == 200 and r.json()["length"] == 20, r
    finally:
        c.close()
    assert len(inet.seen(m)) == 1


def test_expect_100_continue_with_chunked_body(iproxy, inet):
    """The client waits for 100 Continue before sending the chunked body the
    proxy needs first: the proxy sends its own 100, then relays as usual."""
    p = iproxy()
    m = mark()
    c = forward_conn(p)
    try:
        c.send(head("forward", m, "Expect: 100-continue\r\n"))
        first = c.read_until(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 100 "), first
        c.send(b"5\r\nhello\r\n0\r\n\r\n")
        r = c.read_response("POST")
        while r.status == 100:  # the upstream's own 100, relayed
            r = c.read_response("POST")
        assert r.status == 200 and r.json()["length"] == 5, r
    finally:
        c.close()
    assert len(inet.seen(m)) == 1


@pytest.mark.parametrize("kind", ["forward", "tls"])
def test_bad_later_chunk_resets_upstream_and_answers_400(iproxy, inet, kind):
    """The first chunk is valid, so the head and that chunk go upstream; the
    second chunk's size is bad: the upstream connection is reset (the
    truncated request never completes there) and the client, which has no
    response yet, gets a 400."""
    p = iproxy()
    m = mark()
    c = open_kind(p, kind)
    try:
        c.send(head(kind, m) + b"5\r\nhello\r\n")
        deadline = time.monotonic() + 10
        while not inet.seen(m):  # the head reached the upstream
            assert time.monotonic() < deadline, "head never reached the upstream"
            time.sleep(0.02)
        c.send(b"zz\r\nworld\r\n0\r\n\r\n")
        r = closed_or_400(c)
        assert r is not None and r.status == 400, r
        assert r.json()["reason_code"] == "bad_request_body", r
        assert "upstream connection was reset" in r.json()["detail"], r
    finally:
        c.close()


def test_long_first_size_line_is_refused(iproxy, inet):
    p = iproxy()
    m = mark()
    c = open_kind(p, "tls")
    try:
        c.send(head("tls", m) + b"5;" + b"e" * 8000 + b"\r\nhello\r\n0\r\n\r\n")
        r = closed_or_400(c)
        assert r is not None and r.status == 400, r
    finally:
        c.close()
    assert not seen_after_probe(p, inet, "tls", m)


@pytest.mark.parametrize("framing", ["content-length", "transfer-encoding"])
def test_connection_naming_a_framing_header_is_refused(iproxy, inet, framing):
    """`Connection: content-length` (or transfer-encoding) would have the
    forward proxy drop that header as hop-by-hop while it still frames the
    body by it: the upstream would then read the body as the next request,
    one the L7 rules never saw (GET /secret is not allowed). Refused with
    400 before anything goes upstream."""
    p = iproxy()
    m, hidden = mark(), mark()
    smuggled = ("GET /secret?m=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hidden, HOST)).encode()
    if framing == "content-length":
        body = smuggled
        extra = "Content-Length: %d\r\n" % len(body)
    else:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
        extra = "Transfer-Encoding: chunked\r\n"
    c = forward_conn(p)
    try:
        c.send(("POST http://%s/sink?m=%s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n%s\r\n"
                % (HOST, m, HOST, framing, extra)).encode() + body)
        r = c.read_response("POST")
        assert r.status == 400, r
    finally:
        c.close()
    assert not seen_after_probe(p, inet, "forward", m)
    assert not inet.seen(hidden)


@pytest.mark.parametrize("kind", ["forward", "tunnel"])
def test_chunked_http10_request_is_refused(iproxy, inet, kind):
    """Transfer-Encoding in an HTTP/1.0 request is faulty framing (RFC 9112
    §6.1): an HTTP/1.0 upstream may ignore it and, on a kept connection,
    read the chunks as a request of its own. Refused with 400 before
    anything goes upstream."""
    p = iproxy()
    m = mark()
    target = "/sink?m=%s" % m
    if kind == "forward":
        target = "http://%s%s" % (HOST, target)
    c = open_kind(p, kind)
    try:
        c.send(("POST %s HTTP/1.0\r\nHost: %s\r\nConnection: keep-alive\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" % (target, HOST)).encode()
               + b"3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response("POST")
        assert r.status == 400, r
    finally:
        c.close()
    assert not seen_after_probe(p, inet, kind, m)
