"""Shared fixtures and helpers for the inspected-HTTP suites (test_inspect_*.py).

Loaded by each of them with `pytest_plugins = ["inspect_fixtures"]`, so the
session-scoped upstream namespace is made once per run.

Fixtures
  inspect_net   session: namespace cinsp-<pid>-N on 10.233.X.0/24 running
                lib/inspect_upstream.py (HTTPS with its own test CA, plain
                HTTP, untrusted and wrong-name HTTPS, ws and wss echo, git
                smart HTTP), the *.insp.test names in the session DNS server,
                and a bare git repo. See InspectNet.
  iproxy        factory: iproxy(policy=None, *args) → a running CordonProxy
                with --ca-cert-out/--upstream-ca set; p.ca is the path of the
                proxy CA that clients trust. policy defaults to
                inspect_net.policy().
Helpers
  tls_tunnel(proxy, host, port, ...)  CONNECT + TLS (trusting the proxy CA) →
                HttpConn over the TLS socket
  plain_tunnel(proxy, host, port)     CONNECT → HttpConn for plaintext HTTP
  l7_events(proxy, ...)               the proxy's l7_request audit events
"""
import fcntl
import json
import os
import re
import select
import ssl
import subprocess
import tempfile
import time

import pytest

from lib import netns as netns_lib
from lib import util
from lib.httpclient import HttpConn, connect_tunnel

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM_SCRIPT = os.path.join(HERE, "lib", "inspect_upstream.py")
PYTHON = "/usr/bin/python3"
CURL = "/usr/bin/curl"
NODE = os.path.realpath("/usr/bin/node")
GIT = "/usr/bin/git"
GIT_REMOTE_HTTP = os.path.realpath("/usr/lib/git-core/git-remote-https")

SUBNET = "10.233"
PREFIX = "cinsp"

# Host names served by the upstream namespace (all resolve to its address).
NAMES = ("api.insp.test", "deny.insp.test", "ro.insp.test", "audit.insp.test",
         "full.insp.test", "wss.insp.test", "ws.insp.test", "git.insp.test",
         "skip.insp.test", "bad.insp.test", "wrongname.insp.test", "idle.insp.test",
         "evil.insp.test", "count.insp.test")
GOOD_SANS = ("api.insp.test", "deny.insp.test", "ro.insp.test", "audit.insp.test",
             "full.insp.test", "wss.insp.test", "ws.insp.test", "git.insp.test",
             "skip.insp.test", "idle.insp.test", "evil.insp.test", "count.insp.test")


# -- a namespace on 10.233.0.0/16 ---------------------------------------------------
def _used_octets():
    out = util.run(["ip", "-o", "addr"], check=False).stdout
    for line in util.run(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name:
            out += util.run(["ip", "netns", "exec", name, "ip", "-o", "addr"], check=False,
                            timeout=5).stdout
    return {int(m.group(1)) for m in re.finditer(r"inet %s\.(\d+)\." % re.escape(SUBNET), out)}


class InspectNetns(netns_lib.Netns):
    """lib.netns.Netns on 10.233.X.0/24 with its own name prefix (cinsp-<pid>-N)."""

    def __init__(self):
        super().__init__(prefix=PREFIX)

    def create(self):
        ip = lambda *a, ns=None: util.run(  # noqa: E731
            ["ip"] + (["netns", "exec", ns, "ip"] if ns else []) + list(a), timeout=10)
        try:
            ip("netns", "add", self.name)
            self._created = True
            ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
            ip("link", "set", self.veth_ns, "netns", self.name)
            ip("link", "set", "lo", "up", ns=self.name)
            with open(netns_lib._LOCK, "a+") as lk:
                fcntl.flock(lk, fcntl.LOCK_EX)
                used = _used_octets()
                start = (os.getpid() * 7 + self._n()) % 250 + 2
                for i in range(250):
                    x = (start + i) % 250 + 2
                    if x not in used:
                        break
                else:
                    raise RuntimeError("no free %s.X.0/24 subnet for a test netns" % SUBNET)
                self.octet = x
                self.host_ip = "%s.%d.1" % (SUBNET, x)
                self.ns_ip = "%s.%d.2" % (SUBNET, x)
                ip("addr", "add", self.host_ip + "/24", "dev", self.veth_host)
                ip("addr", "add", self.ns_ip + "/24", "dev", self.veth_ns, ns=self.name)
            ip("link", "set", self.veth_host, "up")
            ip("link", "set", self.veth_ns, "up", ns=self.name)
            ip("route", "add", "default", "via", self.host_ip, ns=self.name)
        except BaseException:
            self.close()
            raise
        return self


# -- certificates -----------------------------------------------------------------
def _openssl(*args, cwd):
    util.run(["openssl"] + list(args), cwd=cwd, timeout=30)


def _make_ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _make_leaf(d, name, ca, sans):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n"
                % ",".join("DNS:" + s for s in sans))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + sans[0], cwd=d)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "30", "-extfile", name + ".ext",
             cwd=d)


def make_certs(d):
    """The test CA (ca.pem, trusted by the proxy for upstreams), a leaf for
    every served name (good.pem), an untrusted CA + leaf for bad.insp.test
    (untrusted.pem), and a test-CA leaf for another name (wrongname.pem)."""
    _make_ca(d, "ca", "cordon inspect test upstream CA")
    _make_ca(d, "evilca", "nobody trusts this CA")
    _make_leaf(d, "good", "ca", GOOD_SANS)
    _make_leaf(d, "untrusted", "evilca", ("bad.insp.test",))
    _make_leaf(d, "wrongname", "ca", ("somebody-else.insp.test",))


# -- git ----------------------------------------------------------------------------
def git_env(home, extra=None):
    env = util.clean_env({"HOME": home, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                          "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                          "LC_ALL": "C"})
    if extra:
        env.update(extra)
    return env


def make_git_repo(root, work):
    """root/repo.git: a bare repository with one commit (README)."""
    os.makedirs(work)
    env = git_env(work)
    util.run([GIT, "init", "-q", "-b", "main", work], env=env)
    with open(os.path.join(work, "README"), "w") as f:
        f.write("hello from the inspected git server\n")
    util.run([GIT, "-C", work, "add", "README"], env=env)
    util.run([GIT, "-C", work, "commit", "-q", "-m", "first"], env=env)
    util.run([GIT, "clone", "-q", "--bare", work, os.path.join(root, "repo.git")], env=env)
    util.run([GIT, "-C", os.path.join(root, "repo.git"), "config", "http.receivepack", "true"],
             env=env)


# -- the upstream namespace ---------------------------------------------------------
class InspectNet:
    """ip: the namespace address; ca: the test CA (PEM path) the upstreams'
    certificates chain to; certs: the directory with every cert; log: the
    upstream's request log; git_root: GIT_PROJECT_ROOT of the git server."""
    __test__ = False

    def __init__(self, ns, certs, log, git_root, proc):
        self.ns, self.certs, self.log, self.git_root, self.proc = ns, certs, log, git_root, proc
        self.ip = ns.ns_ip
        self.ca = os.path.join(certs, "ca.pem")
        self.cidr = "%s.%d.0/24" % (SUBNET, ns.octet)

    def seen(self, needle):
        """Upstream log records whose target (or raw bytes after a 101)
        contains needle."""
        try:
            with open(self.log, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for l in lines:
            try:
                rec = json.loads(l)
            except ValueError:
                continue
            if needle in rec.get("target", "") or needle in rec.get("raw_after_101", ""):
                out.append(rec)
        return out

    def accepts(self, port):
        """How many connections the upstream accepted on port so far."""
        try:
            with open(self.log, "rb") as f:
                return sum(1 for l in f if b'"accept": %d,' % port in l)
        except FileNotFoundError:
            return 0

    def policy(self, extra_endpoints="", enforcement="enforce"):
        """The standard policy: one entry `insp` with every test endpoint and
        the binaries the suites use."""
        ips = '["%s"]' % self.cidr
        return f"""
version: 1
network_policies:
  insp:
    name: inspected endpoints under test
    endpoints:
      - host: api.insp.test
        ports: [443, 80]
        protocol: rest
        enforcement: {enforcement}
        allowed_ips: {ips}
        rules:
          - allow: {{method: GET, path: "/"}}
          - allow: {{method: GET, path: "/allowed/**"}}
          - allow: {{method: GET, path: "/public/*"}}
          - allow: {{method: HEAD, path: "/allowed/**"}}
          - allow: {{method: POST, path: "/sink"}}
          - allow: {{method: GET, path: "/q", query: {{mode: "read*"}}}}
          - allow: {{method: GET, path: "/upgrade/*"}}
      - host: deny.insp.test
        port: 443
        protocol: rest
        allowed_ips: {ips}
        rules:
          - allow: {{method: "*", path: "/**"}}
          - deny: {{method: "*", path: "/admin/**"}}
          - deny: {{method: "*", path: "/admin"}}
      - host: ro.insp.test
        port: 443
        protocol: rest
        access: read-only
        allowed_ips: {ips}
      - host: audit.insp.test
        port: 443
        protocol: rest
        enforcement: audit
        access: read-only
        allowed_ips: {ips}
      - host: full.insp.test
        ports: [443, 80]
        protocol: rest
        access: full
        allowed_ips: {ips}
      - host: wss.insp.test
        port: 9443
        protocol: rest
        access: read-write
        allowed_ips: {ips}
      - host: ws.insp.test
        port: 9080
        protocol: rest
        access: read-write
        allowed_ips: {ips}
      - host: git.insp.test
        port: 443
        protocol: rest
        allowed_ips: {ips}
        rules:
          - allow: {{method: GET, path: "/git/**"}}
          - allow: {{method: POST, path: "/git/**/git-upload-pack"}}
          - deny: {{method: POST, path: "/**/git-receive-pack"}}
      - host: skip.insp.test
        port: 443
        protocol: rest
        tls: skip
        access: read-only
        allowed_ips: {ips}
      - host: bad.insp.test
        port: 8443
        protocol: rest
        access: full
        allowed_ips: {ips}
      - host: count.insp.test
        port: 8445
        protocol: rest
        access: full
        allowed_ips: {ips}
      - host: wrongname.insp.test
        port: 8444
        protocol: rest
        access: full
        allowed_ips: {ips}
{extra_endpoints}
    binaries:
      - path: /usr/bin/curl
      - path: /usr/bin/python3*
      - path: {NODE}
      - path: {GIT}
"""


def _start_upstream(ns, certs, log, git_root, timeout=15.0):
    errf = tempfile.TemporaryFile()
    proc = ns.spawn([PYTHON, UPSTREAM_SCRIPT, "--bind", ns.ns_ip, "--certs", certs, "--log", log,
                     "--git-root", git_root], stdout=subprocess.PIPE, stderr=errf)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            errf.seek(0)
            raise RuntimeError("inspect upstream did not start: %r %r" % (line, errf.read()))
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            c = os.read(proc.stdout.fileno(), 1)
            if c:
                line += c
    if line.strip() != b"READY":
        raise RuntimeError("inspect upstream said %r" % line)
    proc.stdout.close()
    proc.stderr_file = errf
    return proc


@pytest.fixture(scope="session")
def inspect_net(dns_server, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    netns_lib.cleanup_stale(prefix=PREFIX)
    base = str(tmp_path_factory.mktemp("inspect-net"))
    certs = os.path.join(base, "certs")
    git_root = os.path.join(base, "git")
    os.makedirs(certs)
    os.makedirs(git_root)
    make_certs(certs)
    make_git_repo(git_root, os.path.join(base, "git-work"))
    log = os.path.join(base, "requests.jsonl")
    ns = InspectNetns()
    try:
        ns.create()
        proc = _start_upstream(ns, certs, log, git_root)
        for n in NAMES:
            dns_server.set(n, ns.ns_ip)
        yield InspectNet(ns, certs, log, git_root, proc)
    finally:
        for n in NAMES:
            dns_server.set(n, None)
        ns.close()


@pytest.fixture
def inet(inspect_net):
    """inspect_net, failing the test if the upstream died."""
    if inspect_net.proc.poll() is not None:
        inspect_net.proc.stderr_file.seek(0)
        pytest.fail("the inspect upstream died (exit %s): %r" % (
            inspect_net.proc.returncode, inspect_net.proc.stderr_file.read()[-2000:]))
    return inspect_net


@pytest.fixture
def iproxy(inet, cordon_proxy, tmp_path):
    n = [0]

    def make(policy=None, *args, **kw):
        n[0] += 1
        ca = str(tmp_path / ("proxy-ca-%d.pem" % n[0]))
        p = cordon_proxy(policy if policy is not None else inet.policy(),
                         "--ca-cert-out", ca, "--upstream-ca", inet.ca, *args, **kw)
        util.wait_until(lambda: os.path.exists(ca) and os.path.getsize(ca) > 0, 5,
                        what="the proxy CA at %s" % ca)
        p.ca = ca
        return p

    return make


# -- clients ------------------------------------------------------------------------
def client_ctx(cafile, alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=cafile)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_tunnel(proxy, host, port, cafile=None, sni=None, alpn=("http/1.1",), timeout=10.0):
    """CONNECT host:port, then TLS inside trusting cafile (default the proxy CA)
    with SNI sni (default host). Returns an HttpConn over the SSLSocket
    (conn.sock.selected_alpn_protocol(), conn.sock.getpeercert() work)."""
    c, r = connect_tunnel(proxy.port, host, port, timeout=timeout)
    if r.status != 200:
        c.close()
        raise AssertionError("CONNECT %s:%d answered %r" % (host, port, r))
    ctx = client_ctx(cafile or proxy.ca, alpn)
    c.sock.settimeout(timeout)
    try:
        s = ctx.wrap_socket(c.sock, server_hostname=sni or host)
    except BaseException:
        c.close()
        raise
    t = HttpConn(s, timeout)
    t.buf = c.buf
    return t


def plain_tunnel(proxy, host, port, timeout=10.0):
    c, r = connect_tunnel(proxy.port, host, port, timeout=timeout)
    if r.status != 200:
        c.close()
        raise AssertionError("CONNECT %s:%d answered %r" % (host, port, r))
    return c


def get(conn, target, host, method="GET", headers=(), body=None, timeout=None):
    return conn.request(method, target, host, headers, body, timeout)


def l7_events(proxy, **match):
    return proxy.events("l7_request", **match)


def wait_l7(proxy, n=1, timeout=3.0, **match):
    return proxy.wait_events(n, timeout, event="l7_request", **match)


def closed_or_400(conn, timeout=5.0):
    """After a refused request: either a 400 response (then EOF) or the
    connection is closed. Returns the Response or None."""
    try:
        r = conn.read_response(timeout=timeout)
    except (EOFError, ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return None
    return r


def env_with_proxy(proxy, extra=None):
    url = "http://127.0.0.1:%d" % proxy.port
    env = util.clean_env({"https_proxy": url, "HTTPS_PROXY": url, "http_proxy": url,
                          "HTTP_PROXY": url})
    if extra:
        env.update(extra)
    return env


def sanitized(pid):
    """True when the process runs under AddressSanitizer (its shadow memory and
    quarantine, 256 MiB by default, inflate RSS)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def rss_limit_kib(pid):
    """A peak RSS that a proxy streaming with bounded buffers stays under
    (and one holding a 1 GiB body cannot)."""
    return (768 if sanitized(pid) else 256) * 1024


def rss_peak_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
