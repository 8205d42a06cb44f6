"""An island: two network namespaces joined only to each other, for address
fence tests that need real peers on public, private and special-use
addresses without any traffic leaving the machine.

    with Island(v4=["8.8.8.8", "10.0.0.1"], v6=["2001:4860:4860::8888"],
                ports=[80, 6443], names={"pub.island.test": "8.8.8.8"}) as isl:
        p = isl.proxy(cordon_bin, policy_yaml, tmp_path)   # cordon proxy inside A
        isl.client(p.port, [{"kind": "connect", "target": "8.8.8.8:80"}])

  A  (ctest-<pid>-<n>)  the proxy, its DNS server (127.0.0.1), the client;
                        no default route: only the island's own addresses
                        are reachable, each with a /32 or /128 route to B.
  B  (ctest-<pid>-<m>)  every listed address on lo and an HTTP server on each
                        port of every address; it answers "island <path>" and
                        closes at once on a TLS ClientHello.

A and B are joined by one veth pair (192.0.2.1/24 and 2001:db8:1::1/64 in A,
.2 and ::2 in B); nothing joins them to the host, so an address the proxy
wrongly allowed can only reach B (or nothing). Names follow lib.netns
(ctest-<pid>-<n>), so a crashed run's namespaces are removed by
netns.cleanup_stale(); the veth lives inside the namespaces and goes with
them.
"""
import json
import os
import re
import subprocess

from lib import cordon as cordon_lib
from lib import netns, util

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))

SERVER = r"""
import socket, sys, threading
ports = [int(p) for p in sys.argv[1:]]
def serve(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()
def one(c):
    try:
        c.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d or (not data and d[:1] == b"\x16"):
                return  # closed, or a TLS ClientHello: this peer speaks plain HTTP only
            data += d
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        body = ("island " + (parts[1] if len(parts) > 1 else "?")).encode("latin-1")
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % len(body) + body)
    except OSError:
        pass
    finally:
        c.close()
for p in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", p))
    s.listen(64)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("READY", flush=True)
threading.Event().wait()
"""

# Each request: {"kind": "connect", "target": "host:port"} (CONNECT, then on
# 200 a GET /probe through the tunnel) or {"kind": "raw", "data": "..."}
# (bytes as latin-1 sent as they are, the answer read to EOF). Prints one
# JSON object per request: status, deny (X-Cordon-Deny), body.
CLIENT = r"""
import json, socket, sys
def head_and_body(s, data):
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        status = 0
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdr[k.strip().lower()] = v.strip()
    n = int(hdr.get("content-length", "0") or 0)
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, hdr, rest[:n] if n else rest
out = []
for req in json.loads(sys.argv[2]):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
    r = {}
    try:
        if req["kind"] == "connect":
            t = req["target"]
            s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (t, t)).encode("latin-1"))
            st, hdr, body = head_and_body(s, b"")
            r = {"status": st, "deny": hdr.get("x-cordon-deny"), "body": body.decode("latin-1")}
            if st == 200:
                s.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                st2, _, body2 = head_and_body(s, b"")
                r["inner"] = st2
                r["body"] = body2.decode("latin-1")
        else:
            s.sendall(req["data"].encode("latin-1"))
            st, hdr, body = head_and_body(s, b"")
            r = {"status": st, "deny": hdr.get("x-cordon-deny"), "body": body.decode("latin-1")}
    except OSError as e:
        r = {"status": -1, "deny": None, "body": "client error: %s" % e}
    finally:
        s.close()
    out.append(r)
print(json.dumps(out))
"""


def _ip(*args, ns=None):
    return util.run(["ip"] + (["-n", ns] if ns else []) + list(args), timeout=10)


class InnerProxy(cordon_lib.CordonProxy):
    """cordon proxy started inside namespace A."""

    def __init__(self, ns, *a, **kw):
        self.ns = ns
        super().__init__(*a, **kw)

    def argv(self, port):
        return ["ip", "netns", "exec", self.ns] + super().argv(port)


class Island:
    def __init__(self, v4=(), v6=(), ports=(80,), names=None):
        pid = os.getpid()
        self.na, self.nb = next(netns._counter), next(netns._counter)
        self.a = "%s-%d-%d" % (netns.PREFIX, pid, self.na)
        self.b = "%s-%d-%d" % (netns.PREFIX, pid, self.nb)
        self.v4, self.v6, self.ports = list(v4), list(v6), list(ports)
        self.names = dict(names or {})
        self.procs = []
        self.proxies = []
        self.dns_port = None
        self.made = []

    def __enter__(self):
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _create(self):
        for n in (self.a, self.b):
            _ip("netns", "add", n)
            self.made.append(n)
            _ip("link", "set", "lo", "up", ns=n)
        pid = os.getpid()   # veth names carry the pid too (<= 15 chars), as lib.netns does
        va, vb = "i%da%d" % (pid, self.na), "i%db%d" % (pid, self.nb)
        _ip("link", "add", va, "netns", self.a, "type", "veth", "peer", "name", vb, "netns", self.b)
        _ip("addr", "add", "192.0.2.1/24", "dev", va, ns=self.a)
        _ip("addr", "add", "2001:db8:1::1/64", "dev", va, "nodad", ns=self.a)
        _ip("addr", "add", "192.0.2.2/24", "dev", vb, ns=self.b)
        _ip("addr", "add", "2001:db8:1::2/64", "dev", vb, "nodad", ns=self.b)
        _ip("link", "set", va, "up", ns=self.a)
        _ip("link", "set", vb, "up", ns=self.b)
        for a in self.v4:
            _ip("addr", "add", a + "/32", "dev", "lo", ns=self.b)
            _ip("route", "add", a + "/32", "via", "192.0.2.2", ns=self.a)
        for a in self.v6:
            _ip("addr", "add", a + "/128", "dev", "lo", "nodad", ns=self.b)
            _ip("-6", "route", "add", a + "/128", "via", "2001:db8:1::2", ns=self.a)
        routes = _ip("route", "show", "default", ns=self.a).stdout.strip()
        routes6 = _ip("-6", "route", "show", "default", ns=self.a).stdout.strip()
        assert not routes and not routes6, "namespace A must have no default route"
        srv = subprocess.Popen(["ip", "netns", "exec", self.b, PY, "-c", SERVER]
                               + [str(p) for p in self.ports], stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        self.procs.append(srv)
        line = srv.stdout.readline()
        assert line.strip() == "READY", "island server did not start: %r" % line
        dns = subprocess.Popen(["ip", "netns", "exec", self.a, PY,
                                os.path.join(HERE, "lib", "dnsserver.py"), "--bind", "127.0.0.1",
                                "--port", "0"]
                               + ["%s=%s" % (k, v) for k, v in sorted(self.names.items())],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               start_new_session=True, text=True)
        self.procs.append(dns)
        m = re.match(r"PORT (\d+)", dns.stdout.readline().strip())
        assert m, "island DNS server did not start"
        self.dns_port = int(m.group(1))

    def proxy(self, cordon_bin, policy, workdir, *args, name=None):
        """Starts cordon proxy in A with policy; it is stopped by stop_proxies()."""
        p = InnerProxy(self.a, cordon_bin, policy, workdir,
                       resolver="127.0.0.1:%d" % self.dns_port, args=args,
                       name=name or "island%d" % len(self.proxies))
        self.proxies.append(p)
        p.start()
        return p

    def stop_proxies(self):
        """Stops every proxy; returns problems (sanitizer reports, unclean exits)."""
        bad = []
        for p in self.proxies:
            if p.proc is None:
                continue
            alive = p.alive()
            rc = p.stop()
            bad += p.problems()
            if alive and rc != 0:
                bad.append("%s exited %r on SIGTERM" % (p.policy_path, rc))
        self.proxies = []
        return bad

    def client(self, port, requests, timeout=60):
        """Runs the client in A (python3, the binary the policies name)."""
        r = util.run(["ip", "netns", "exec", self.a, PY, "-c", CLIENT, str(port),
                      json.dumps(requests)], timeout=timeout)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def close(self):
        self.stop_proxies()
        for p in reversed(self.procs):
            util.kill_tree(p)
        self.procs = []
        for n in self.made:
            pids = util.run(["ip", "netns", "pids", n], check=False).stdout.split()
            for p in pids:
                try:
                    os.kill(int(p), 9)
                except (ProcessLookupError, ValueError):
                    pass
            util.run(["ip", "netns", "delete", n], check=False)
        self.made = []
