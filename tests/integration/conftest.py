"""Fixtures for cordon's integration suites (proxy, sandbox, execd).

Fixtures
  cordon_bin    path of the binary under test ($CORDON, default build/cordon)
  netns_factory makes lib.netns.Netns objects, always torn down
  dns_server    session DNS server on 127.0.0.1 (lib.dnsserver.DnsServer)
  testnet       session netns ctest-<pid>-N with the upstream servers and DNS
                names pointing at it (see TestNet); dns query log cleared per test
  cordon_proxy  factory: cordon_proxy(policy_yaml, *args, **kw) → running
                lib.cordon.CordonProxy; stopped at teardown, and the test
                FAILS if stderr shows a sanitizer report / internal invariant,
                or if SIGTERM did not stop it with exit 0.
Markers
  timeout(N)    per-test wall-clock limit in seconds (default 60)
"""
import os
import resource
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import cordon as cordon_lib      # noqa: E402
from lib import dnsserver, netns, upstream, util  # noqa: E402

DEFAULT_TIMEOUT = 60


# -- per-test time limit -------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): wall-clock limit for one test")


class TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("timeout")
    limit = m.args[0] if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded its %s s time limit" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- binaries and cleanup ------------------------------------------------------
@pytest.fixture(scope="session")
def cordon_bin():
    path = os.path.abspath(cordon_lib.default_binary())
    if not os.access(path, os.X_OK):
        pytest.fail("cordon binary not found at %s (run make, or set CORDON)" % path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _stale_netns_cleanup():
    if os.geteuid() == 0:
        netns.cleanup_stale()
    yield


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


@pytest.fixture
def netns_factory(request):
    _need_root()
    made = []

    def make():
        ns = netns.Netns().create()
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.close()


# -- DNS and the upstream namespace ---------------------------------------------
@pytest.fixture(scope="session")
def dns_server():
    srv = dnsserver.DnsServer({}).start()
    yield srv
    srv.stop()


class TestNet:
    """The session's upstream namespace. Names (all resolved by dns_server):
    allowed.test other.test ws.test denied.test echo.test closed.test
    blackhole.test → ip (the namespace address); loop.test → 127.0.0.1;
    meta.test → 169.254.169.254; zero.test → 0.0.0.0; mcast.test → 224.0.0.1;
    bcast.test → 255.255.255.255; nx.test → NXDOMAIN.
    Ports on ip: http 80 and http2 8080 (lib/upstream.py), ws 8765 (WebSocket
    echo), echo 7 (TCP echo), closed 81 (nothing listens → RST),
    blackhole 82 (SYNs dropped)."""
    __test__ = False
    http = 80
    http2 = 8080
    ws = 8765
    echo = 7
    closed = 81
    blackhole = 82
    subnet_names = ("allowed.test", "other.test", "ws.test", "denied.test", "echo.test",
                    "closed.test", "blackhole.test")
    fixed = {"loop.test": "127.0.0.1", "meta.test": "169.254.169.254", "zero.test": "0.0.0.0",
             "mcast.test": "224.0.0.1", "bcast.test": "255.255.255.255"}

    def __init__(self, ns, up, dns):
        self.ns, self.upstream, self.dns = ns, up, dns
        self.ip = ns.ns_ip
        self.host_ip = ns.host_ip
        self.cidr = "%s.%d.0/24" % (netns.SUBNET, ns.octet)


@pytest.fixture(scope="session")
def _testnet(dns_server):
    _need_root()
    ns = netns.Netns()
    try:
        ns.create()
        up = upstream.start(ns, http=(TestNet.http, TestNet.http2), ws=TestNet.ws,
                            echo=(TestNet.echo,))
        ns.drop_tcp_port(TestNet.blackhole)
        for n in TestNet.subnet_names:
            dns_server.set(n, ns.ns_ip)
        for n, a in TestNet.fixed.items():
            dns_server.set(n, a)
        yield TestNet(ns, up, dns_server)
    finally:
        ns.close()


@pytest.fixture
def testnet(_testnet):
    _testnet.dns.clear_log()
    if _testnet.upstream.proc.poll() is not None:
        pytest.fail("the upstream test server died (exit %s)" % _testnet.upstream.proc.returncode)
    return _testnet


# -- cordon proxy ----------------------------------------------------------------
@pytest.fixture
def cordon_proxy(cordon_bin, dns_server, tmp_path, request):
    """Factory: cordon_proxy(policy, *args, resolver=None, listen_host="127.0.0.1",
    start=True, name=None) → CordonProxy. args are extra CLI arguments."""
    started = []

    def make(policy, *args, resolver=None, listen_host="127.0.0.1", start=True, name=None):
        p = cordon_lib.CordonProxy(cordon_bin, policy, tmp_path,
                                   resolver=resolver or dns_server.resolver, args=args,
                                   listen_host=listen_host,
                                   name=name or "proxy%d" % len(started))
        started.append(p)
        if start:
            try:
                p.start()
            except cordon_lib.NotBuilt as e:
                pytest.skip("cordon proxy is not built yet: %s" % e)
        return p

    yield make

    errors = []
    for p in started:
        if p.proc is None:
            continue
        was_running = p.alive()
        rc = p.stop()
        bad = p.problems()
        if bad:
            errors.append("%s stderr shows:\n  %s" % (p.stderr_path, "\n  ".join(bad[:20])))
        if was_running and rc != 0:
            errors.append("cordon proxy did not exit 0 on SIGTERM (got %r); stderr tail:\n%s"
                          % (rc, p.stderr[-2000:]))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def raise_nofile():
    """Raises RLIMIT_NOFILE to the hard limit for this test (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
