"""cordon run: the policy DNS responder is the sandbox's only resolver.

Names the policy allows get a synthetic address from the sandbox's own map,
everything else NXDOMAIN at once with a dns_denied event naming the asking
process; nothing is ever forwarded (the session DNS server's query log, the
proxy's --resolver, proves a denied name never left). Queries are made by
real resolvers (glibc through getent/python) and by hand-built messages to
127.0.0.1:53 over UDP and TCP."""
import json
import os
import re

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"
NOPROXY = ["env", "-u", "HTTP_PROXY", "-u", "HTTPS_PROXY", "-u", "ALL_PROXY", "-u", "http_proxy",
           "-u", "https_proxy", "-u", "all_proxy", "-u", "NODE_USE_ENV_PROXY", "-u", "NO_PROXY",
           "-u", "no_proxy"]

POLICY = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev]
  read_write: [/dev/null]
network_policies:
  allowed:
    endpoints:
      - host: allowed.test
        ports: [80, 8080]
        allowed_ips: ["10.231.0.0/16"]
      - host: "*.wild.test"
        port: 443
    binaries:
      - path: /usr/bin/curl
      - path: "/usr/bin/python3*"
"""

# Sends one hand-built query per line of argv[1:] ("udp|tcp NAME TYPE") to
# 127.0.0.1:53 and prints one JSON line per answer: rcode, answer count,
# the A addresses and TTLs, and whether the question was echoed.
DIG = r'''
import json, socket, struct, sys
TYPES = {"A": 1, "AAAA": 28, "PTR": 12, "MX": 15, "TXT": 16, "SRV": 33, "HTTPS": 65, "ANY": 255}
def query(proto, name, qtype, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack("!HH", TYPES[qtype], 1)
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(q, ("127.0.0.1", 53))
        m = s.recv(4096)
    else:
        s = socket.create_connection(("127.0.0.1", 53), timeout=5)
        s.sendall(struct.pack("!H", len(q)) + q)
        n = struct.unpack("!H", s.recv(2))[0]
        m = b""
        while len(m) < n:
            m += s.recv(n - len(m))
    s.close()
    rid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    off = 12 + len(q) - 12
    same_q = m[12:off] == q[12:]
    addrs, ttls = [], []
    for _ in range(an):
        t, c, ttl, rdl = struct.unpack("!HHIH", m[off + 2:off + 12])
        rd = m[off + 12:off + 12 + rdl]
        if t == 1:
            addrs.append(socket.inet_ntoa(rd))
        ttls.append(ttl)
        off += 12 + rdl
    return {"q": "%s %s %s" % (proto, name, qtype), "id_ok": rid == qid, "qr": flags >> 15,
            "rcode": flags & 15, "an": an, "addrs": addrs, "ttls": ttls, "same_q": same_q}
for i, a in enumerate(sys.argv[1:]):
    p, n, t = a.split()
    print(json.dumps(query(p, n, t, 1000 + i)), flush=True)
'''


def dig(sandbox, queries, policy):
    r = sandbox.run(NOPROXY + [PY, "-c", DIG] + queries, policy=policy)
    assert r.code == 0, r
    out = {}
    for line in r.out.splitlines():
        d = json.loads(line)
        out[d["q"]] = d
    return r, out


@pytest.mark.timeout(60)
def test_allowed_names_get_synthetic_addresses(sandbox):
    p = sandbox.write_policy(POLICY, "dns.yaml")
    script = ("cat /etc/resolv.conf; getent ahostsv4 allowed.test | head -1; "
              "getent hosts a.b.wild.test; echo deep=$?; getent hosts x.wild.test; "
              "getent hosts wild.test; echo apex=$?")
    r = sandbox.run(NOPROXY + ["sh", "-c", script], policy=p)
    assert r.code == 0, r
    assert "nameserver 127.0.0.1" in r.out, r
    m = re.search(r"^(198\.18\.\d+\.\d+)\s+STREAM allowed\.test", r.out, re.M)
    assert m, r
    assert "deep=2" in r.out, r        # "*.wild.test" names one label, as in OpenShell
    assert re.search(r"^198\.18\.\d+\.\d+\s+x\.wild\.test$", r.out, re.M), r
    assert "apex=2" in r.out, r        # "*.wild.test" does not name the apex
    # The host's resolv.conf is untouched (the bind mount is the sandbox's own).
    with open("/etc/resolv.conf") as f:
        assert "cordon" not in f.read()
    # The upstream resolver never heard of any of it: answers are local.
    assert not sandbox.net.dns.queried("allowed.test")
    assert not sandbox.net.dns.queried("a.b.wild.test")
    start = r.events("sandbox_start")[0]
    assert start["transparent"] is True and start["dns"] == "127.0.0.1:53"
    assert start["capture_range"] == "198.18.0.0/16"


@pytest.mark.timeout(60)
def test_denied_name_is_nxdomain_at_once_and_never_forwarded(sandbox):
    p = sandbox.write_policy(POLICY, "dns.yaml")
    script = ("import socket, time, json\n"
              "t = time.monotonic()\n"
              "try:\n"
              "    socket.getaddrinfo('secret-exfil.denied.test', 443)\n"
              "    res = 'resolved'\n"
              "except socket.gaierror as e:\n"
              "    res = e.errno\n"
              "print(json.dumps({'err': res, 'ms': (time.monotonic() - t) * 1000}))\n")
    r = sandbox.run(NOPROXY + [PY, "-c", script], policy=p)
    assert r.code == 0, r
    d = json.loads(r.out.strip().splitlines()[-1])
    import socket
    # EAI_NONAME ("Name or service not known"), not EAI_AGAIN (temporary
    # failure): a resolver that waited for a timeout would take >= 5 s.
    assert d["err"] == socket.EAI_NONAME, r
    assert d["ms"] < 1000, d
    ev = r.events("dns_denied", name="secret-exfil.denied.test")
    assert ev, r.audit()
    e = [x for x in ev if x["qtype"] == "A"][0]
    assert e["binary"].startswith("/usr/bin/python3"), e
    assert e["pid"] > 0 and e["sandbox_pid"] > 0, e
    assert e["reason"] == "name_not_in_policy" and e["rcode"] == "NXDOMAIN"
    assert "secret-exfil.denied.test" in e["hint"] and "network_policies" in e["hint"], e
    assert not sandbox.net.dns.queried("secret-exfil.denied.test")


@pytest.mark.timeout(60)
def test_record_types_udp_and_tcp(sandbox):
    p = sandbox.write_policy(POLICY, "dns.yaml")
    qs = ["udp allowed.test A", "tcp allowed.test A", "udp ALLOWED.Test A",
          "udp allowed.test AAAA", "udp allowed.test HTTPS",
          "udp allowed.test MX", "udp allowed.test TXT", "tcp allowed.test SRV",
          "udp 2.0.18.198.in-addr.arpa PTR", "udp allowed.test ANY",
          "udp nope.test A", "tcp nope.test AAAA"]
    r, a = dig(sandbox, qs, p)
    for q, d in a.items():
        assert d["id_ok"] and d["qr"] == 1 and d["same_q"], d
    A = a["udp allowed.test A"]
    assert A["rcode"] == 0 and len(A["addrs"]) == 1 and A["addrs"][0].startswith("198.18.")
    assert A["ttls"] == [5]                                   # short TTL
    assert a["tcp allowed.test A"]["addrs"] == A["addrs"]     # same name, same address
    assert a["udp ALLOWED.Test A"]["addrs"] == A["addrs"]     # case-insensitive
    for q in ("udp allowed.test AAAA", "udp allowed.test HTTPS"):
        assert a[q]["rcode"] == 0 and a[q]["an"] == 0, a[q]  # NODATA: no IPv6 egress
    for q in ("udp allowed.test MX", "udp allowed.test TXT", "tcp allowed.test SRV",
              "udp 2.0.18.198.in-addr.arpa PTR", "udp allowed.test ANY", "udp nope.test A",
              "tcp nope.test AAAA"):
        assert a[q]["rcode"] == 3 and a[q]["an"] == 0, a[q]  # NXDOMAIN
    ev = r.events("dns_denied")
    seen = {(e["name"], e["qtype"], e["proto"]) for e in ev}
    for k in [("allowed.test", "MX", "udp"), ("allowed.test", "TXT", "udp"),
              ("allowed.test", "SRV", "tcp"), ("2.0.18.198.in-addr.arpa", "PTR", "udp"),
              ("nope.test", "A", "udp"), ("nope.test", "AAAA", "tcp")]:
        assert k in seen, (k, seen)
    for e in ev:
        assert e["binary"].startswith("/usr/bin/python3"), e
    assert not any(e["name"] == "allowed.test" and e["qtype"] in ("A", "AAAA") for e in ev)
    assert not sandbox.net.dns.queried("nope.test")


@pytest.mark.timeout(60)
def test_malformed_queries_get_an_answer_and_the_responder_keeps_serving(sandbox):
    p = sandbox.write_policy(POLICY, "dns.yaml")
    script = r'''
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
def ask(m):
    s.sendto(m, ("127.0.0.1", 53))
    try:
        r = s.recv(600); return r[3] & 15
    except socket.timeout:
        return "none"
hdr = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
print("runt", ask(b"\x01\x02"))                          # no header: dropped
print("trunc", ask(hdr + b"\x07allowed"))                # name runs past the end: FORMERR
print("ptr", ask(hdr + b"\xc0\x0c\x00\x01\x00\x01"))    # compression pointer: FORMERR
print("two", ask(struct.pack("!HHHHHH", 7, 0x0100, 2, 0, 0, 0) + b"\0\0\1\0\1" * 2))
print("opcode", ask(struct.pack("!HHHHHH", 7, 0x1100, 1, 0, 0, 0) + b"\0\0\1\0\1"))
print("resp", ask(struct.pack("!HHHHHH", 7, 0x8100, 1, 0, 0, 0) + b"\0\0\1\0\1"))
print("chaos", ask(hdr + b"\x07allowed\x04test\x00\x00\x01\x00\x03"))
print("odd", ask(hdr + b"\x07all*wed\x04test\x00\x00\x01\x00\x01"))
print("ok", ask(hdr + b"\x07allowed\x04test\x00\x00\x01\x00\x01"))
t = socket.create_connection(("127.0.0.1", 53), timeout=3)
t.sendall(b"\xff\xff")                                   # longer than we take: closed
print("tcpbig", t.recv(10))
'''
    r = sandbox.run(NOPROXY + [PY, "-c", script], policy=p)
    assert r.code == 0, r
    res = dict(l.split(" ", 1) for l in r.out.splitlines())
    assert res == {"runt": "none", "trunc": "1", "ptr": "1", "two": "1", "opcode": "4",
                   "resp": "none", "chaos": "5", "odd": "3", "ok": "0", "tcpbig": "b''"}, r


@pytest.mark.timeout(60)
def test_no_transparent_keeps_the_host_resolver_and_no_dns(sandbox):
    p = sandbox.write_policy(POLICY, "dns.yaml")
    r = sandbox.run(NOPROXY + ["sh", "-c", "grep -c cordon /etc/resolv.conf; "
                               "getent hosts allowed.test; echo rc=$?"],
                    args=["--no-transparent"], policy=p)
    assert r.code == 0, r
    assert r.out.startswith("0\n"), r
    assert "rc=2" in r.out and "198.18." not in r.out, r
    assert r.events("sandbox_start")[0]["transparent"] is False


@pytest.mark.timeout(60)
def test_repeated_denials_are_counted_not_flooded(sandbox):
    p = sandbox.write_policy(POLICY, "dns.yaml")
    script = ("import socket\n"
              "for i in range(6):\n"
              "    try: socket.gethostbyname('loop.denied.test')\n"
              "    except OSError: pass\n")
    r = sandbox.run(NOPROXY + [PY, "-c", script], policy=p)
    assert r.code == 0, r
    ev = r.events("dns_denied", name="loop.denied.test", qtype="A")
    first = [e for e in ev if not e.get("repeated")]
    rep = [e for e in ev if e.get("repeated")]
    assert len(first) == 1 and first[0]["count"] == 1, ev
    # flushed at exit at the latest, with the process it counts
    assert len(rep) == 1 and rep[0]["count"] == 5, ev
    assert rep[0]["binary"].startswith("/usr/bin/python3") and rep[0]["pid"] == first[0]["pid"]
