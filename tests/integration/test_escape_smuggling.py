"""Escape attempts: request smuggling through the proxy's L7 inspection.

api.insp.test allows POST /sink and not GET /secret. Each attempt sends an
allowed POST whose framing is ambiguous, so that a server reading it
differently from the proxy would take the body (or part of it) for a
second request, GET /secret?m=HIDDEN, that the L7 rules never saw: both
Content-Length and Transfer-Encoding (CL.TE / TE.CL), transfer codings
other than a final chunked, a Transfer-Encoding or Content-Length header
split by obs-fold or with whitespace before the colon, duplicate
Content-Length values, a Content-Length that is not a plain decimal, and
two Host headers. Every one is refused with 400 (or the connection is
closed) before its head goes upstream, on the forward proxy and in a
plaintext inspected tunnel; the upstream, which logs every request head,
never logs the allowed request's marker nor the hidden one. A plain
request on a new connection still works afterwards."""
import uuid

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from inspect_fixtures import closed_or_400, plain_tunnel  # noqa: E402
from lib.httpclient import HttpConn  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

HOST = "api.insp.test"


def mark():
    return uuid.uuid4().hex[:12]


def smuggled(hidden):
    return ("GET /secret?m=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hidden, HOST)).encode()


def chunk(data):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)


# name -> (extra header lines, body) for a hidden marker h
CASES = {
    "cl_te": lambda h: ("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"
                        % len(b"0\r\n\r\n"), b"0\r\n\r\n" + smuggled(h)),
    "te_cl": lambda h: ("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                        chunk(smuggled(h))),
    "te_not_chunked": lambda h: ("Transfer-Encoding: xchunked\r\n", chunk(smuggled(h))),
    "te_chunked_identity": lambda h: ("Transfer-Encoding: chunked, identity\r\n",
                                      chunk(smuggled(h))),
    "te_twice": lambda h: ("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                           chunk(smuggled(h))),
    "te_obs_fold": lambda h: ("Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n",
                              b"0\r\n\r\n" + smuggled(h)),
    "te_space_before_colon": lambda h: ("Transfer-Encoding : chunked\r\n",
                                        chunk(smuggled(h))),
    "cl_obs_fold": lambda h: ("Content-Length: 5\r\n %d\r\n" % len(smuggled(h)),
                              b"hello" + smuggled(h)),
    "cl_twice_differing": lambda h: ("Content-Length: 5\r\nContent-Length: %d\r\n"
                                     % (5 + len(smuggled(h))), b"hello" + smuggled(h)),
    "cl_list_differing": lambda h: ("Content-Length: 5, %d\r\n" % (5 + len(smuggled(h))),
                                    b"hello" + smuggled(h)),
    "cl_plus": lambda h: ("Content-Length: +5\r\n", b"hello" + smuggled(h)),
    "cl_hex": lambda h: ("Content-Length: 0x5\r\n", b"hello" + smuggled(h)),
    "cl_negative": lambda h: ("Content-Length: -1\r\n", smuggled(h)),
    "obs_fold_other_header": lambda h: ("X-A: b\r\n c\r\nContent-Length: 5\r\n",
                                        b"hello" + smuggled(h)),
    "host_twice": lambda h: ("Host: deny.insp.test\r\nContent-Length: 5\r\n",
                             b"hello" + smuggled(h)),
}


def open_kind(p, kind):
    if kind == "forward":
        return HttpConn.open(("127.0.0.1", p.port), timeout=10)
    return plain_tunnel(p, HOST, 80)


def target(kind, m):
    t = "/sink?m=%s" % m
    return "http://%s%s" % (HOST, t) if kind == "forward" else t


def still_works(p, inet, kind):
    probe = mark()
    c = open_kind(p, kind)
    try:
        c.send(("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\n\r\nabc"
                % (target(kind, probe), HOST)).encode())
        r = c.read_response("POST")
        assert r.status == 200, r
    finally:
        c.close()
    assert inet.seen(probe)


@pytest.mark.parametrize("kind", ["forward", "tunnel"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_ambiguous_framing_never_smuggles_a_request(iproxy, inet, kind, case):
    p = iproxy()
    m, hidden = mark(), mark()
    extra, body = CASES[case](hidden)
    c = open_kind(p, kind)
    try:
        c.send(("POST %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target(kind, m), HOST, extra))
               .encode() + body)
        r = closed_or_400(c)
        assert r is None or r.status == 400, (case, r)
    finally:
        c.close()
    still_works(p, inet, kind)         # the upstream has answered everything before it
    assert not inet.seen(hidden), case
    assert not inet.seen(m), case
