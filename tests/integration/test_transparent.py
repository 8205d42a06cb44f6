"""cordon run: clients that ignore HTTPS_PROXY just work. No proxy variable
is set for any command here: names resolve through the sandbox's policy DNS
to synthetic addresses, and TCP to those is captured into the proxy's
pipeline (identity, policy, relay) with "via": "transparent" in the audit
events. Everything else stays refused by the fence with its bypass events.

Peers: the session upstream namespace (lib/upstream.py: HTTP on 80, TCP
echo on 7), names from the session DNS server (the proxy's --resolver)."""
import json
import os
import re
import subprocess
import time

import pytest

from lib import util
from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"
NOPROXY = ["env", "-u", "HTTP_PROXY", "-u", "HTTPS_PROXY", "-u", "ALL_PROXY", "-u", "http_proxy",
           "-u", "https_proxy", "-u", "all_proxy", "-u", "NODE_USE_ENV_PROXY", "-u", "NO_PROXY",
           "-u", "no_proxy"]

FS = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev]
  read_write: [/dev/null]
"""


def policy(sb, extra_endpoints="", name="t.yaml"):
    return sb.write_policy(FS + """network_policies:
  allowed:
    endpoints:
      - host: allowed.test
        ports: [80, 8080]
        allowed_ips: ["10.231.0.0/16"]
      - host: echo.test
        port: 7
        allowed_ips: ["10.231.0.0/16"]
        idle_timeout: 2s
%s    binaries:
      - path: /usr/bin/curl
      - path: "/usr/bin/python3*"
""" % extra_endpoints, name)


def run(sb, cmd, p, **kw):
    return sb.run(NOPROXY + cmd, policy=p, **kw)


@pytest.mark.timeout(60)
def test_http_by_name_without_proxy_variables(sandbox):
    p = policy(sandbox)
    r = run(sandbox, ["sh", "-c", "env | grep -iE '^[a-z_]*proxy='; echo n=$?; curl -sS -m 10 http://allowed.test/; "
                      "curl -sS -m 10 http://allowed.test:8080/echo"], p)
    assert r.code == 0, r
    assert r.out.startswith("n=1\n"), r                 # really no proxy variable
    assert "hello from upstream" in r.out, r
    echo = json.loads(r.out[r.out.index("{"):])
    assert ["Host", "allowed.test:8080"] in echo["headers"], echo
    ev = r.events("decision", decision="allow", host="allowed.test")
    assert {e["port"] for e in ev} == {80, 8080}, ev
    for e in ev:
        assert e["via"] == "transparent" and e["kind"] == "connect", e
        assert e["binary"] == "/usr/bin/curl" and e["pid"] > 0, e
        assert e["resolved"] == sandbox.net.ip, e        # the real address, resolved by the proxy
    closes = r.events("close", host="allowed.test")
    assert closes and all(c["via"] == "transparent" for c in closes), closes


@pytest.mark.timeout(60)
def test_loopback_proxy_address_inside(sandbox):
    # Without NOPROXY: the variables point at 127.0.0.1:3128 inside the
    # sandbox, a socket the proxy's workers serve like their own listener.
    p = policy(sandbox)
    r = sandbox.run(["sh", "-c", "echo $HTTPS_PROXY; curl -sS -m 10 http://allowed.test/"],
                    policy=p)
    assert r.code == 0, r
    assert r.out.startswith("http://127.0.0.1:3128\n"), r
    assert "hello from upstream" in r.out, r
    ev = r.events("decision", decision="allow", host="allowed.test")
    assert ev and "via" not in ev[0] and ev[0]["kind"] == "forward", ev
    assert ev[0]["binary"] == "/usr/bin/curl", ev   # identity works on the loopback listener
    assert ev[0]["client"] == "127.0.0.1"


ECHO = r'''
import socket, sys, time, hashlib
s = socket.create_connection(("echo.test", 7), timeout=10)
data = bytes(range(256)) * 4096                     # 1 MiB each way
s.sendall(data)
got = b""
while len(got) < len(data):
    c = s.recv(65536)
    if not c: break
    got += c
print("echo", got == data, flush=True)
s.sendall(b"second\n")
print("again", s.recv(100), flush=True)
# idle longer than the endpoint's idle_timeout (2 s): the proxy closes it
t = time.monotonic()
s.settimeout(20)
try:
    r = s.recv(10)
except ConnectionResetError:
    r = b"reset"
print("idle_close", r, round(time.monotonic() - t, 1), flush=True)
'''


@pytest.mark.timeout(60)
def test_raw_tcp_endpoint_relays_both_ways_and_idles_out(sandbox):
    p = policy(sandbox)
    r = run(sandbox, [PY, "-c", ECHO], p)
    assert r.code == 0, r
    assert "echo True" in r.out and "again b'second\\n'" in r.out, r
    m = re.search(r"idle_close b'' ([\d.]+)", r.out)
    assert m and float(m.group(1)) >= 1.5, r
    c = r.events("close", host="echo.test")
    assert c and c[0]["via"] == "transparent" and c[0]["reason"] == "idle_timeout", c
    assert c[0]["bytes_up"] == (1 << 20) + 7 and c[0]["bytes_down"] == (1 << 20) + 7, c


@pytest.mark.timeout(60)
def test_other_ports_of_an_allowed_name_are_denied(sandbox):
    p = policy(sandbox)
    script = ("import socket\ns = socket.create_connection(('allowed.test', 9999), timeout=10)\n"
              "try:\n    print('read', s.recv(10))\nexcept OSError as e:\n    print('err', e)\n")
    r = run(sandbox, [PY, "-c", script], p)
    assert r.code == 0, r
    assert "read b''" in r.out or "Connection reset" in r.out, r
    ev = r.events("decision", decision="deny", host="allowed.test", port=9999)
    assert ev and ev[0]["via"] == "transparent" and ev[0]["reason_code"] == "no_endpoint", ev
    assert ev[0]["binary"].startswith("/usr/bin/python3"), ev


@pytest.mark.timeout(60)
def test_direct_dials_are_still_refused(sandbox):
    p = policy(sandbox)
    ip = sandbox.net.ip
    script = ("import socket, errno\n"
              "def dial(a, port):\n"
              "    s = socket.socket()\n    s.settimeout(10)\n"
              "    try:\n        s.connect((a, port)); s.settimeout(5); d = s.recv(10)\n"
              "        return 'data %%r' %% d\n"
              "    except OSError as e:\n        return errno.errorcode.get(e.errno, str(e))\n"
              "print('real', dial('%s', 80))\n"
              "print('unassigned', dial('198.18.0.200', 80))\n"
              "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "a = socket.gethostbyname('allowed.test')\n"
              "try:\n    u.sendto(b'quic', (a, 443)); u.settimeout(5); u.recv(10); print('quic', 'answered')\n"
              "except OSError as e:\n    print('quic', errno.errorcode.get(e.errno, str(e)))\n" % ip)
    r = run(sandbox, [PY, "-c", script], p)
    assert r.code == 0, r
    assert "real ECONNREFUSED" in r.out, r
    # never handed out: captured (the whole range is), then refused by the proxy
    assert re.search(r"unassigned (data b''|ECONNRESET)", r.out), r
    assert re.search(r"quic (ECONNREFUSED|EPERM)", r.out), r      # refused at once
    assert r.events("bypass_detect", dst_addr=ip, dst_port=80)
    assert r.events("bypass_detect", proto="udp", dst_port=443)
    ev = r.events("decision", decision="deny", reason_code="address_not_handed_out")
    assert ev and ev[0]["via"] == "transparent" and ev[0]["host"] == "198.18.0.200", ev


@pytest.mark.timeout(180)
def test_twenty_sandboxes_each_have_their_own_map(sandbox):
    names = ["s%d.map.test" % i for i in range(20)]
    for n in names:
        sandbox.net.dns.set(n, sandbox.net.ip)
    procs = []
    try:
        for i, n in enumerate(names):
            p = sandbox.write_policy(FS + """network_policies:
  own:
    endpoints:
      - host: %s
        port: 8080
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: /usr/bin/curl
""" % n, "map-%d.yaml" % i)
            script = ("getent hosts %s; getent hosts %s; curl -sS -m 20 http://%s:8080/echo"
                      % (n, names[(i + 1) % 20], n))
            procs.append(sandbox.start(NOPROXY + ["sh", "-c", script], policy=p))
        results = [sandbox.finish(pr, timeout=120) for pr in procs]
    finally:
        for n in names:
            sandbox.net.dns.set(n, None)
    for i, r in enumerate(results):
        assert r.code == 0, r
        # every sandbox's first name is the first address of its own map
        assert re.search(r"^198\.18\.0\.1\s+%s$" % re.escape(names[i]), r.out, re.M), r
        assert names[(i + 1) % 20] not in r.out.split("{")[0], r   # its neighbour's is not named
        echo = json.loads(r.out[r.out.index("{"):])
        assert ["Host", "%s:8080" % names[i]] in echo["headers"], echo
        ev = r.events("decision", decision="allow")
        assert [e["host"] for e in ev] == [names[i]], ev
