"""Escape attempts through the proxy's request line: CONNECT authorities
and absolute-form targets that a lax parser would judge as one host or port
and dial as another — userinfo (`allowed.test:80@other.test:80`), a port
past 65535 that wraps to an allowed one (65616 = 65536 + 80), signs, hex,
spaces, a missing port, percent-encoding and a NUL byte in the host. Each
is refused (400, or 403 naming a host and port that are not allowed), never
a tunnel or a response from upstream."""
import pytest

from lib.httpclient import HttpConn
from test_proxy_edge import proxy  # noqa: F401  (fixture)

CONNECT_TARGETS = [
    "user@allowed.test:80",
    "allowed.test:80@other.test:80",
    "other.test:80@allowed.test:80",
    "allowed.test:65616",
    "allowed.test:4294967376",          # 2^32 + 80
    "allowed.test:+80",
    "allowed.test:0x50",
    "allowed.test: 80",
    "allowed.test:80:80",
    "allowed.test",
    "allowed.test:",
    ":80",
    "allowed%2etest:80",
    "allowed.test%00.other.test:80",
    "allowed.test\x00.other.test:80",
    "[allowed.test]:80",
    "allowed.test:-80",
]

FORWARD_TARGETS = [
    "http://allowed.test:65616/",
    "http://allowed.test:+80/",
    "http://allowed.test:80@other.test/",
    "http://allowed.test\x00.other.test/",
    "http://[::ffff:allowed.test]/",
    "http://allowed.test:4294967376/",
]


def _raw(proxy, line, host):  # noqa: F811
    with HttpConn.open(("127.0.0.1", proxy.port), 10) as c:
        c.send(("%s\r\nHost: %s\r\n\r\n" % (line, host)).encode("latin-1"))
        try:
            return c.read_response("CONNECT" if line.startswith("CONNECT") else "GET", 10)
        except (EOFError, ConnectionResetError):
            return None


def _refused(r, what):
    assert r is None or r.status in (400, 403), (what, r)
    if r is not None and r.status == 403:
        body = r.json()
        assert not (body.get("host") == "allowed.test" and body.get("port") in (80, 8080)), \
            (what, body)


@pytest.mark.parametrize("target", CONNECT_TARGETS)
def test_connect_authority_tricks_refused(proxy, target):  # noqa: F811
    r = _raw(proxy, "CONNECT %s HTTP/1.1" % target, target)
    _refused(r, target)


@pytest.mark.parametrize("url", FORWARD_TARGETS)
def test_forward_target_tricks_refused(proxy, url):  # noqa: F811
    r = _raw(proxy, "GET %s HTTP/1.1" % url, "allowed.test")
    _refused(r, url)


def test_the_plain_forms_still_work(proxy):  # noqa: F811
    """The control: the same proxy tunnels and forwards the plain forms."""
    r = _raw(proxy, "CONNECT allowed.test:80 HTTP/1.1", "allowed.test:80")
    assert r is not None and r.status == 200, r
    r = _raw(proxy, "GET http://allowed.test/ HTTP/1.1", "allowed.test")
    assert r is not None and r.status == 200, r
