"""Escape attempts through protocol upgrades, beyond test_inspect_upgrade's:
an upgrade to a raw relay is the way out of L7 inspection, so only the
protocol the forwarded request offered may be switched to.

- the client offers websocket (allowed on the endpoint) and the upstream
  switches to another protocol (`Upgrade: x-unsolicited`): cut off like an
  unsolicited 101 — nothing after the 101 reaches the client, nothing the
  client sends next reaches the upstream;
- websocket offered in two Upgrade lines together with h2c, or spelled in
  another case, is offered upstream as websocket alone."""
import json

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from inspect_fixtures import plain_tunnel, tls_tunnel  # noqa: E402
from lib.httpclient import HttpConn  # noqa: E402
from test_inspect_upgrade import assert_cut_off, mark  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

WS_OFFER = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def test_switch_to_a_protocol_not_offered_is_cut_off(iproxy, inet):
    p = iproxy()
    m = mark()
    t = tls_tunnel(p, "full.insp.test", 443)
    try:
        t.send(b"GET /upgrade/unsolicited HTTP/1.1\r\nHost: full.insp.test\r\n" + WS_OFFER)
        assert_cut_off(t, inet, m)
    finally:
        t.close()
    m2 = mark()
    c = plain_tunnel(p, "full.insp.test", 80)
    try:
        c.send(b"GET /upgrade/unsolicited HTTP/1.1\r\nHost: full.insp.test\r\n" + WS_OFFER)
        assert_cut_off(c, inet, m2)
    finally:
        c.close()
    m3 = mark()
    with HttpConn.open(p.addr) as c:
        c.send(b"GET http://full.insp.test/upgrade/unsolicited HTTP/1.1\r\n"
               b"Host: full.insp.test\r\n" + WS_OFFER)
        assert_cut_off(c, inet, m3)
    assert len(p.wait_events(3, event="close", reason="unsolicited_101")) == 3
    assert not p.events("upgrade"), p.events("upgrade")


@pytest.mark.parametrize("offer", [
    b"Upgrade: h2c\r\nUpgrade: websocket\r\n",
    b"Upgrade: WebSocket, H2C\r\n",
])
def test_split_or_cased_offers_keep_only_websocket(iproxy, inet, offer):
    p = iproxy()
    c = plain_tunnel(p, "full.insp.test", 80)
    try:
        c.send(b"GET /upgrade/echo HTTP/1.1\r\nHost: full.insp.test\r\n"
               b"Connection: Upgrade, HTTP2-Settings\r\n" + offer +
               b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        head = c.read_until(b"\r\n\r\n", timeout=5)
        assert head.startswith(b"HTTP/1.1 101"), head
        up = [l.split(b":", 1)[1].strip().lower() for l in head.split(b"\r\n")
              if l.lower().startswith(b"upgrade:")]
        assert up == [b"websocket"], head                # what the upstream was offered
    finally:
        c.close()
