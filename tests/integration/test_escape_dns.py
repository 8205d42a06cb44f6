"""Escape attempts against the policy DNS: names built so that one layer
reads them as an allowed name and another as something else — a NUL byte
inside a label (`allowed\\0.test`, `evil\\0x.allowed.test`), a dot inside a
label (`a.b` as one label), a trailing-dot label, bytes outside ASCII, a
line break (audit-log injection) — are all NXDOMAIN, never forwarded, and
each is a `dns_denied` event whose name shows the odd bytes escaped. The
same name in upper case is the allowed name (DNS is case-insensitive)."""
import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from test_dns_policy import NOPROXY, POLICY

PY = "/usr/bin/python3"

RAW = r"""
import socket, struct
def q(labels, qid):
    m = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in labels:
        m += bytes([len(l)]) + l
    m += b"\0" + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.sendto(m, ("127.0.0.1", 53)); r = s.recv(4096); s.close()
    assert struct.unpack("!H", r[:2])[0] == qid
    print("%d rcode=%d an=%d" % (qid, r[3] & 15, struct.unpack("!H", r[6:8])[0]))
q([b"allowed\0", b"test"], 1)
q([b"evil\0x", b"allowed", b"test"], 2)
q([b"allowed.test"], 3)
q([b"allowed", b"test."], 4)
q([b"\xff\xfeevil", b"test"], 5)
q([b'line\n{"event":"x"}', b"test"], 6)
q([b"ALLOWED", b"TEST"], 7)
"""


@pytest.mark.timeout(60)
def test_confusable_names_are_nxdomain_and_logged(sandbox):
    pol = sandbox.write_policy(POLICY, "dns.yaml")
    r = sandbox.run(NOPROXY + [PY, "-c", RAW], policy=pol)
    assert r.code == 0, r
    res = dict(l.split(" ", 1) for l in r.out.splitlines())
    for i in "123456":
        assert res[i] == "rcode=3 an=0", (i, r.out)       # NXDOMAIN
    assert res["7"] == "rcode=0 an=1", r.out
    ev = r.events("dns_denied")
    assert len(ev) == 6, ev
    for e in ev:
        assert "\n" not in e["name"] and "\0" not in e["name"], e
        assert e["binary"].startswith("/usr/bin/python3"), e
    names = [e["name"] for e in ev]
    assert not any(n in ("allowed.test", "allowed.test.") for n in names), names
    assert not sandbox.net.dns.queried("allowed.test"), "a query left the sandbox"
