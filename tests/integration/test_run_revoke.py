"""cordon run revokes on reload by default (--revoke-on-reload, the default):
after a reload, open tunnels the new policy refuses are closed (a `revoked`
event each), and the next request of a kept connection, inspected tunnels
included, is judged by the new policy; with --no-revoke-on-reload they keep
the policy they started with."""
import os

import pytest

from sandbox_fixtures import sandbox, BASE_POLICY  # noqa: F401  (fixture)
from sandbox_fixtures import read_audit
from test_run_ux import wait_for

PY = "/usr/bin/python3"

ECHO_ENTRY = """\
  echo:
    endpoints:
      - host: echo.test
        port: 7
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: "/usr/bin/python3*"
"""

# A CONNECT tunnel to the TCP echo on echo.test:7 through the proxy; one
# round trip, "open", then (once ./next exists) a second round trip.
CLIENT = r"""
import os, socket, time, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
s = socket.create_connection((u.hostname, u.port), timeout=20)
s.sendall(b"CONNECT echo.test:7 HTTP/1.1\r\nHost: echo.test:7\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
print("connect=" + head.split(b" ")[1].decode(), flush=True)
s.sendall(b"ping1")
print("first=" + s.recv(16).decode(), flush=True)
while not os.path.exists("next"):
    time.sleep(0.02)
try:
    s.sendall(b"ping2")
    got = s.recv(16)
    print("second=" + (got.decode() or "closed"), flush=True)
except OSError as e:
    print("second=closed", e, flush=True)
"""


def _policy(sb, with_echo):
    return BASE_POLICY.format(ro=sb.ro, rw=sb.work) + (ECHO_ENTRY if with_echo else "")


def _run(sandbox, flag):
    sandbox.write_policy(_policy(sandbox, True))
    p = sandbox.start([PY, "-c", CLIENT], args=flag)
    sandbox.wait_output(p, "first=ping1")
    sandbox.write_policy(_policy(sandbox, False))     # echo.test is gone
    p.send_signal(1)                                  # SIGHUP: reload
    return p


@pytest.mark.timeout(60)
def test_revoke_on_reload_closes_the_tunnel(sandbox, testnet):
    p = _run(sandbox, [])     # the default
    wait_for(lambda: [e for e in read_audit(p.audit_path) if e["event"] == "revoked"],
             what="a revoked event")
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert r.code == 0, r
    assert "connect=200" in r.out and "second=closed" in r.out, r
    rv = r.events("revoked")
    assert len(rv) == 1, rv
    assert rv[0]["host"] == "echo.test" and rv[0]["port"] == 7
    assert rv[0]["reason_code"] == "no_endpoint" and rv[0]["policy_generation"] == 1
    assert rv[0]["new_policy_generation"] == 2 and rv[0]["binary"].startswith("/usr/bin/python3")
    assert rv[0]["state"] == "TUNNEL"
    closes = r.events("close", host="echo.test")
    assert closes and closes[0]["reason"] == "revoked", closes
    # the reload came first
    ev = [e["event"] for e in r.audit()]
    assert ev.index("policy_reload") < ev.index("revoked")


@pytest.mark.timeout(60)
def test_no_revoke_on_reload_the_tunnel_lives_on(sandbox, testnet):
    p = _run(sandbox, ["--no-revoke-on-reload"])
    wait_for(lambda: [e for e in read_audit(p.audit_path) if e["event"] == "policy_reload"],
             what="the policy_reload event")
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert r.code == 0, r
    assert "second=ping2" in r.out, r
    assert not r.events("revoked")
    assert r.events("policy_reload")[0]["result"] == "installed"


@pytest.mark.timeout(60)
def test_revoke_keeps_what_the_new_policy_allows(sandbox, testnet):
    """A reload that still allows the tunnel closes nothing."""
    sandbox.write_policy(_policy(sandbox, True))
    p = sandbox.start([PY, "-c", CLIENT], args=["--revoke-on-reload"])
    sandbox.wait_output(p, "first=ping1")
    sandbox.write_policy(_policy(sandbox, True) + "# touched\n")
    p.send_signal(1)
    wait_for(lambda: [e for e in read_audit(p.audit_path) if e["event"] == "policy_reload"],
             what="the policy_reload event")
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert r.code == 0 and "second=ping2" in r.out, r
    assert not r.events("revoked")


OTHER_ENTRY = """\
  other:
    endpoints:
      - host: other.test
        port: 80
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: "/usr/bin/python3*"
"""

# Forward-proxy requests on one keep-alive connection: allowed.test (allowed
# by both policies), then, once ./next exists, other.test (gone from the new one).
KEEPALIVE_CLIENT = r"""
import os, socket, time, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
s = socket.create_connection((u.hostname, u.port), timeout=20)
f = s.makefile("rb")
def get(host):
    s.sendall(("GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host)).encode())
    status = f.readline().split(b" ")[1].decode()
    n = 0
    while True:
        line = f.readline()
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
        if line in (b"\r\n", b""):
            break
    f.read(n)
    return status
print("first=" + get("allowed.test"), flush=True)
while not os.path.exists("next"):
    time.sleep(0.02)
try:
    print("second=" + get("other.test"), flush=True)
except OSError as e:
    print("second=closed", e, flush=True)
"""


@pytest.mark.timeout(60)
def test_revoke_on_reload_keepalive_next_request_uses_new_policy(sandbox, testnet):
    """A keep-alive forward connection whose last host the new policy still
    allows stays open; its next request is decided by the new policy, not
    the one the connection started with (review: it went to other.test)."""
    sandbox.write_policy(_policy(sandbox, False) + OTHER_ENTRY)
    p = sandbox.start([PY, "-c", KEEPALIVE_CLIENT], args=["--revoke-on-reload"])
    sandbox.wait_output(p, "first=200")
    sandbox.write_policy(_policy(sandbox, False))     # other.test is gone
    p.send_signal(1)
    wait_for(lambda: [e for e in read_audit(p.audit_path) if e["event"] == "policy_reload"],
             what="the policy_reload event")
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert r.code == 0, r
    assert "second=403" in r.out or "second=closed" in r.out, r
    assert not [e for e in r.events("decision", host="other.test") if e.get("decision") == "allow"]


INSPECTED_ENTRY = """\
  inspected:
    endpoints:
      - host: other.test
        port: 80
        protocol: rest
        access: {access}
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: "/usr/bin/python3*"
"""

# One CONNECT tunnel to other.test:80 that the proxy inspects (plain HTTP
# inside, protocol: rest): a POST, then (once ./next exists) a POST and a
# GET on the same tunnel, then (once ./last exists) a GET.
INSPECTED_CLIENT = r"""
import os, socket, time, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
s = socket.create_connection((u.hostname, u.port), timeout=20)
f = s.makefile("rb")
s.sendall(b"CONNECT other.test:80 HTTP/1.1\r\nHost: other.test:80\r\n\r\n")
while f.readline() not in (b"\r\n", b""):
    pass
def req(method):
    s.sendall(("%s / HTTP/1.1\r\nHost: other.test\r\nContent-Length: 0\r\n\r\n"
               % method).encode())
    line = f.readline()
    if not line:
        return "closed"
    n = 0
    while True:
        h = f.readline()
        if h.lower().startswith(b"content-length:"):
            n = int(h.split(b":")[1])
        if h in (b"\r\n", b""):
            break
    f.read(n)
    return line.split(b" ")[1].decode()
def wait(name):
    while not os.path.exists(name):
        time.sleep(0.02)
print("post1=" + req("POST"), flush=True)
wait("next")
print("post2=" + req("POST"), flush=True)
print("get2=" + req("GET"), flush=True)
wait("last")
try:
    print("get3=" + req("GET"), flush=True)
except OSError as e:
    print("get3=closed", e, flush=True)
"""


def _reload(sandbox, p, policy, n):
    sandbox.write_policy(policy)
    p.send_signal(1)
    wait_for(lambda: len([e for e in read_audit(p.audit_path)
                          if e["event"] == "policy_reload"]) >= n,
             what="policy_reload event %d" % n)


@pytest.mark.timeout(60)
def test_reload_judges_the_next_request_of_an_inspected_tunnel(sandbox, testnet):
    """OpenShell's relay judges each request of a kept tunnel by the policy
    in force; so does cordon: after a reload to read-only the same tunnel's
    POST is refused and its GET allowed; after a reload without the host the
    tunnel's next request is refused and the tunnel closed."""
    base = _policy(sandbox, False)
    sandbox.write_policy(base + INSPECTED_ENTRY.format(access="read-write"))
    p = sandbox.start([PY, "-c", INSPECTED_CLIENT])
    sandbox.wait_output(p, "post1=")
    _reload(sandbox, p, base + INSPECTED_ENTRY.format(access="read-only"), 1)
    open(os.path.join(sandbox.work, "next"), "w").close()
    sandbox.wait_output(p, "get2=")
    _reload(sandbox, p, base, 2)
    open(os.path.join(sandbox.work, "last"), "w").close()
    r = sandbox.finish(p)
    assert r.code == 0, r
    assert "post1=403" not in r.out and "post1=closed" not in r.out, r
    assert "post2=403" in r.out and "get2=200" in r.out, r
    # the host is gone: the idle tunnel was closed by the reload (revoked),
    # or its next request refused; either way nothing reached other.test
    assert "get3=403" in r.out or "get3=closed" in r.out, r
    l7 = r.events("l7_request", host="other.test")
    assert [(e["method"], e["decision"], e["policy_generation"]) for e in l7] == [
        ("POST", "allow", 1), ("POST", "deny", 2), ("GET", "allow", 2)], l7
    assert l7[1]["rule"] == "access: read-only", l7[1]
    # nothing of generation 3 was allowed (the tunnel was revoked or refused)
    assert not [e for e in r.audit() if e.get("host") == "other.test" and
                e.get("decision") == "allow" and e.get("policy_generation") == 3]
