"""cordon run: the network boundary. Inside the sandbox the egress proxy is
the only way out; everything else is refused at once and reported."""
import json
import re

import pytest

import sandbox_fixtures
from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

# A small prober run inside the sandbox: prints one JSON line per attempt
# with the outcome ("ok" or the errno name) and how long it took.
PROBE = r"""
import errno, json, os, socket, sys, time
def attempt(name, fn):
    t0 = time.monotonic()
    try:
        fn(); res = "ok"
    except OSError as e:
        res = errno.errorcode.get(e.errno, str(e.errno))
    except socket.timeout:
        res = "timeout"
    print(json.dumps({"name": name, "result": res, "ms": (time.monotonic() - t0) * 1000,
                      "pid": os.getpid()}), flush=True)
def tcp(host, port, fam=socket.AF_INET):
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(5)
    try: s.connect((host, port))
    finally: s.close()
def udp(host, port, fam=socket.AF_INET):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(5)
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    try:
        s.connect((host, port)); s.send(q); s.recv(512)
    finally: s.close()
for spec in sys.argv[1:]:
    kind, host, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    attempt(spec, lambda: (tcp if kind == "tcp" else udp)(host, int(port), fam))
"""


def probe(sb, *specs):
    path = sb.work + "/probe.py"
    with open(path, "w") as f:
        f.write(PROBE)
    r = sb.run([PY, path] + list(specs))
    assert r.code == 0, r
    return r, {d["name"]: d for d in (json.loads(l) for l in r.out.splitlines() if l.startswith("{"))}


@pytest.mark.timeout(30)
def test_allowed_host_through_proxy(sandbox):
    r = sandbox.run(["curl", "-sS", "-m", "10", "-w", "\nstatus=%{http_code}",
                     "http://allowed.test/"])
    assert r.code == 0, r
    assert "hello from upstream" in r.out
    assert "status=200" in r.out
    ev = r.events("decision", decision="allow")
    assert ev and ev[0]["host"] == "allowed.test" and ev[0]["binary"] == "/usr/bin/curl"
    start = r.events("sandbox_start")
    assert start and start[0]["fence"] == "monitored"
    assert start[0]["proxy"].startswith("http://10.200.")
    assert start[0]["subnet"].startswith(sandbox_fixtures.SANDBOX_POOL.rsplit(".", 1)[0] + ".")


@pytest.mark.timeout(30)
def test_denied_host_403_json(sandbox):
    r = sandbox.run(["curl", "-sS", "-m", "10", "-w", "\nstatus=%{http_code}",
                     "http://denied.test/"])
    assert r.code == 0, r
    assert "status=403" in r.out
    body = json.loads(r.out.split("\nstatus=")[0])
    assert body["error"] == "policy_denied"
    assert body["host"] == "denied.test"
    assert r.events("decision", decision="deny", host="denied.test")


@pytest.mark.timeout(30)
def test_noproxy_refused_fast_with_event(sandbox):
    ip = sandbox.net.ip
    script = ('t0=$(date +%%s%%N); curl -v --noproxy "*" -sS -m 10 http://%s/ 2>curl.err & p=$!; '
              'wait $p; rc=$?; t1=$(date +%%s%%N); echo "pid=$p rc=$rc ms=$(( (t1-t0)/1000000 ))"; '
              'cat curl.err' % ip)
    r = sandbox.run(["sh", "-c", script])
    assert r.code == 0, r
    m = re.search(r"pid=(\d+) rc=(\d+) ms=(\d+)", r.out)
    assert m, r
    pid, rc, ms = int(m.group(1)), int(m.group(2)), int(m.group(3))
    assert rc == 7, r                      # curl: couldn't connect
    assert ms < 500, "direct connection took %d ms to fail" % ms
    assert "Connection refused" in r.out, r
    ev = r.events("bypass_detect")
    assert len(ev) == 1, ev
    e = ev[0]
    assert e["proto"] == "tcp" and e["dst_addr"] == ip and e["dst_port"] == 80
    assert e["binary"] == "/usr/bin/curl"
    assert e["sandbox_pid"] == pid          # the pid the agent saw
    assert isinstance(e["pid"], int) and e["pid"] > 1
    assert "/usr/bin/dash" in e["ancestors"] or "/bin/dash" in e["ancestors"]
    assert "HTTPS_PROXY" in e["hint"]
    assert e["count"] == 1 and e["action"] == "refused"


@pytest.mark.timeout(30)
def test_udp_dns_direct_refused_with_event(sandbox):
    ip = sandbox.net.ip
    r, res = probe(sandbox, "udp,%s,53" % ip, "udp,%s,5000" % ip)
    for name in ("udp,%s,53" % ip, "udp,%s,5000" % ip):
        assert res[name]["result"] in ("EPERM", "ECONNREFUSED"), res
        assert res[name]["ms"] < 500, res
    dns = r.events("bypass_detect", proto="udp", dst_port=53)
    assert dns and dns[0]["dst_addr"] == ip
    assert "DNS" in dns[0]["hint"]
    other = r.events("bypass_detect", proto="udp", dst_port=5000)
    assert other and "UDP is not allowed" in other[0]["hint"]


@pytest.mark.timeout(30)
def test_resolver_fails_fast(sandbox):
    # The libc resolver inside the sandbox (whatever resolv.conf says) gets
    # a refusal at once instead of a 5 s timeout per try.
    r = sandbox.run(["sh", "-c", "t0=$(date +%s%N); getent ahosts example.com; rc=$?; "
                     "t1=$(date +%s%N); echo rc=$rc ms=$(( (t1-t0)/1000000 ))"])
    m = re.search(r"rc=(\d+) ms=(\d+)", r.out)
    assert m and m.group(1) != "0", r
    assert int(m.group(2)) < 2000, r


@pytest.mark.timeout(30)
def test_ipv6_direct_refused(sandbox):
    r, res = probe(sandbox, "tcp,2001:db8::1,443", "udp,2001:db8::53,53")
    t = res["tcp,2001:db8::1,443"]
    assert t["result"] == "ECONNREFUSED" and t["ms"] < 500, res
    u = res["udp,2001:db8::53,53"]
    assert u["result"] in ("EPERM", "ECONNREFUSED") and u["ms"] < 500, res
    ev = r.events("bypass_detect", proto="tcp", dst_addr="2001:db8::1")
    assert ev and ev[0]["dst_port"] == 443
    assert ev[0]["binary"].startswith("/usr/bin/python3")
    assert ev[0]["sandbox_pid"] == t["pid"]


@pytest.mark.timeout(30)
def test_gateway_is_not_a_way_out(sandbox):
    # The supervisor side answers only the proxy port; host services bound to
    # 0.0.0.0 (here: the DNS fixture's port on 127.0.0.1 is not even reachable)
    # are refused like any other destination.
    r0 = sandbox.run(["sh", "-c", "echo $HTTP_PROXY"])
    gw = re.search(r"http://([\d.]+):3128", r0.out).group(1)
    r, res = probe(sandbox, "tcp,%s,22" % gw, "tcp,%s,3129" % gw, "tcp,127.0.0.1,9")
    assert res["tcp,%s,22" % gw]["result"] == "ECONNREFUSED"
    assert res["tcp,%s,3129" % gw]["result"] == "ECONNREFUSED"
    assert res["tcp,127.0.0.1,9"]["result"] == "ECONNREFUSED"    # loopback: nothing there
    assert r.events("bypass_detect", dst_addr=gw, dst_port=22)
    assert not r.events("bypass_detect", dst_addr="127.0.0.1")   # loopback is allowed


@pytest.mark.timeout(30)
def test_loopback_works_inside(sandbox):
    script = ("%s -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 & s=$!; "
              "for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8765/ && break; "
              "sleep 0.1; done; curl -s -w 'status=%%{http_code}' -o /dev/null "
              "http://127.0.0.1:8765/; kill $s" % PY)
    r = sandbox.run(["sh", "-c", script])
    assert "status=200" in r.out, r          # NO_PROXY covers 127.0.0.1
    assert not r.events("bypass_detect")


@pytest.mark.timeout(30)
def test_child_environment(sandbox):
    r = sandbox.run(["env"])
    env = dict(l.split("=", 1) for l in r.out.splitlines() if "=" in l)
    url = env["HTTP_PROXY"]
    assert re.match(r"^http://10\.200\.\d+\.\d+:3128$", url)
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        assert env[k] == url, k
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert not any(k.startswith("CORDON_") and k != "CORDON_SANDBOX" for k in env)


@pytest.mark.timeout(30)
def test_repeated_attempts_are_counted(sandbox):
    ip = sandbox.net.ip
    r = sandbox.run(["sh", "-c", "for i in 1 2 3 4 5; do curl -s --noproxy '*' -m 3 "
                     "http://%s:8080/ ; done; true" % ip])
    assert r.code == 0, r
    ev = r.events("bypass_detect", dst_port=8080)
    # Each curl is its own process: five first events. Within one process,
    # repeats are counted (next test).
    assert len(ev) == 5
    script = ("import socket\nfor i in range(4):\n  s=socket.socket()\n"
              "  try: s.connect(('%s', 81))\n  except OSError: pass\n  s.close()\n" % ip)
    r = sandbox.run([PY, "-c", script])
    ev = r.events("bypass_detect", dst_port=81)
    first = [e for e in ev if not e.get("repeated")]
    rep = [e for e in ev if e.get("repeated")]
    assert len(first) == 1, ev
    assert len(rep) == 1 and rep[0]["count"] == 3, ev    # flushed at exit at the latest


@pytest.mark.timeout(60)
def test_proxy_never_dials_the_supervisor_host(sandbox):
    """An agent whose policy lets the whole sandbox pool through allowed_ips
    tries to reach a host daemon on 0.0.0.0 through the supervisor's side of
    the veth, and the proxy's own port there: both refused as address_blocked."""
    import socket
    svc = socket.socket()
    svc.bind(("0.0.0.0", 0))
    svc.listen(8)
    sport = svc.getsockname()[1]
    try:
        pol = sandbox_fixtures.BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work) + """\
  lan:
    endpoints:
      - port: %d
        allowed_ips: ["%s"]
      - port: 3128
        allowed_ips: ["%s"]
    binaries:
      - path: /usr/bin/curl
""" % (sport, sandbox_fixtures.SANDBOX_POOL, sandbox_fixtures.SANDBOX_POOL)
        path = sandbox.write_policy(pol, name="lan.yaml")
        script = ('h=${HTTP_PROXY#http://}; h=${h%%:*}; '
                  'for p in %d 3128; do curl -sS -m 10 -o /dev/null -w "%%{http_code}\\n" '
                  'http://$h:$p/; done' % sport)
        r = sandbox.run(["sh", "-c", script], policy=path)
        assert r.out.split() == ["403", "403"], r
        ev = r.events("decision", decision="deny")
        assert [e["reason_code"] for e in ev] == ["address_blocked"] * 2, ev
        assert all("own host" in e["detail"] for e in ev), ev
    finally:
        svc.close()
