"""Escape attempts at the network boundary beyond test_run_network's:

- a host daemon on the wildcard address ([::], dual stack) reached through
  the supervisor's side of the veth over IPv6 (its ULA address), over an
  IPv4-mapped IPv6 address, and over IPv4: all refused at once, the daemon
  never sees a connection, and the attempts are bypass events;
- ICMP "ping" sockets (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6: no raw socket
  needed) cannot be opened;
- UDP broadcast and multicast go nowhere (refused like any datagram);
- the network configuration (addresses, routes, links, neighbours) cannot
  be changed: no CAP_NET_ADMIN inside."""
import errno
import json
import socket

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from test_run_network import PROBE

PY = "/usr/bin/python3"

EXTRA = r"""
import ipaddress
def gateways():
    v4 = v6 = None
    for l in open("/proc/net/route").read().splitlines()[1:]:
        f = l.split()
        if f[1] == "00000000":
            v4 = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
    for l in open("/proc/net/if_inet6"):
        a, _, plen, scope, _, dev = l.split()
        if dev != "lo" and int(scope, 16) == 0:
            net = ipaddress.ip_interface("%s/%d" % (
                ":".join(a[i:i + 4] for i in range(0, 32, 4)), int(plen, 16))).network
            v6 = str(net.network_address + 1)
    return v4, v6
def ping(fam, proto):
    socket.socket(fam, socket.SOCK_DGRAM, proto).close()
def bcast(dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.settimeout(5)
    try:
        s.sendto(b"x", (dst, 9999)); s.sendto(b"x", (dst, 9999)); s.recv(10)
    finally: s.close()
v4, v6 = gateways()
print(json.dumps({"gw4": v4, "gw6": v6}), flush=True)
port = int(sys.argv[1])
attempt("tcp6_gw", lambda: tcp(v6, port, socket.AF_INET6))
attempt("tcp_mapped_gw", lambda: tcp("::ffff:" + v4, port, socket.AF_INET6))
attempt("tcp4_gw", lambda: tcp(v4, port))
attempt("ping4", lambda: ping(socket.AF_INET, socket.IPPROTO_ICMP))
attempt("ping6", lambda: ping(socket.AF_INET6, socket.IPPROTO_ICMPV6))
attempt("bcast_all", lambda: bcast("255.255.255.255"))
attempt("mcast", lambda: bcast("224.0.0.1"))
"""


@pytest.mark.timeout(60)
def test_host_daemon_on_wildcard_unreachable_over_every_family(sandbox):
    svc = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    svc.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    svc.bind(("::", 0))
    svc.listen(8)
    svc.setblocking(False)
    port = svc.getsockname()[1]
    try:
        path = sandbox.work + "/probe.py"
        with open(path, "w") as f:
            f.write(PROBE.replace("for spec in sys.argv[1:]:", "for spec in []:") + EXTRA)
        script = (PY + " " + path + " %d; "
                  "ip addr add 10.9.9.9/32 dev eth0; echo addr=$?; "
                  "ip route add 10.8.0.0/16 dev eth0; echo route=$?; "
                  "ip link set eth0 down; echo link=$?; "
                  "ip neigh add 10.200.0.9 lladdr 02:00:00:00:00:01 dev eth0; echo neigh=$?"
                  % port)
        r = sandbox.run(["sh", "-c", script])
        assert r.code == 0, r
        lines = [json.loads(l) for l in r.out.splitlines() if l.startswith("{")]
        gws = lines[0]
        assert gws["gw4"] and gws["gw6"], r.out
        res = {d["name"]: d for d in lines[1:]}
        for k in ("tcp6_gw", "tcp_mapped_gw", "tcp4_gw"):
            assert res[k]["result"] == "ECONNREFUSED" and res[k]["ms"] < 5000, (k, res)
        for k in ("ping4", "ping6"):
            assert res[k]["result"] in ("EACCES", "EPERM"), (k, res)
        for k in ("bcast_all", "mcast"):
            assert res[k]["result"] in ("EPERM", "ECONNREFUSED", "ENETUNREACH", "EACCES"), \
                (k, res)
        for k in ("addr", "route", "link", "neigh"):
            assert "%s=2" % k in r.out or "%s=1" % k in r.out, (k, r.out)
        assert "Operation not permitted" in r.err, r.err
        # the daemon never saw a connection
        try:
            c, _ = svc.accept()
            c.close()
            pytest.fail("a connection from the sandbox reached the host daemon")
        except BlockingIOError:
            pass
        ev = r.events("bypass_detect", proto="tcp", dst_port=port)
        addrs = {e["dst_addr"] for e in ev}
        assert gws["gw6"] in addrs and gws["gw4"] in addrs, ev
    finally:
        svc.close()
