"""Test network namespaces: a netns joined to the host by a veth pair.

    with Netns() as ns:                  # ctest-<pid>-<n>, 10.231.X.0/24
        ns.host_ip, ns.ns_ip             # 10.231.X.1 (host side), 10.231.X.2 (inside)
        p = ns.spawn([sys.executable, "server.py"])   # runs inside, killed on close
        ns.run(["ip", "addr"])          # short command inside, bounded

Names carry the creating pid, so cleanup_stale() can remove what crashed runs
left behind without touching namespaces of runs that are still alive. The
subnet octet X is allocated under a lock file after checking `ip -o addr`, so
concurrent runs (and other suites) never pick the same /24.
"""
import fcntl
import itertools
import os
import re
import subprocess
import sys

from . import util

PREFIX = "ctest"
SUBNET = "10.231"
_LOCK = "/run/ctest-netns.lock" if os.path.isdir("/run") else "/tmp/ctest-netns.lock"
_counter = itertools.count(1)


def _ip(*args, ns=None, check=True, timeout=10):
    argv = ["ip"] + (["netns", "exec", ns, "ip"] if ns else []) + list(args)
    return util.run(argv, timeout=timeout, check=check)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _used_octets():
    """Third octets of 10.231.X.* addresses present in this or any test netns
    (named by us), plus the octets recorded by live owners in the lock dir."""
    used = set()
    out = _ip("-o", "addr", check=False).stdout
    namespaces = [l.split()[0] for l in _ip("netns", "list", check=False).stdout.splitlines() if l.strip()]
    for ns in namespaces:
        if ns.startswith(PREFIX + "-"):
            out += _ip("-o", "addr", ns=ns, check=False).stdout
    for m in re.finditer(r"inet %s\.(\d+)\." % re.escape(SUBNET), out):
        used.add(int(m.group(1)))
    return used


def cleanup_stale(prefix=PREFIX):
    """Deletes namespaces `<prefix>-<pid>-*` and veths `c<pid>h*` whose pid is
    no longer alive (left behind by a crashed run). Returns the names removed."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.match(r"%s-(\d+)-\d+$" % re.escape(prefix), name)
        if m and not _pid_alive(int(m.group(1))):
            # kill anything still running in it, then delete
            pids = util.run(["ip", "netns", "pids", name], check=False).stdout.split()
            for p in pids:
                try:
                    os.kill(int(p), 9)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "delete", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", check=False).stdout.splitlines():
        m = re.match(r"\d+: (c(\d+)h\d+)[@:]", line)
        if m and not _pid_alive(int(m.group(2))):
            _ip("link", "delete", m.group(1), check=False)
            removed.append(m.group(1))
    return removed


class Netns:
    """One namespace + veth pair. Use as a context manager or call create()
    then close() (close() is idempotent and never raises)."""

    def __init__(self, prefix=PREFIX):
        n = next(_counter)
        pid = os.getpid()
        self.name = "%s-%d-%d" % (prefix, pid, n)
        self.veth_host = "c%dh%d" % (pid, n)     # <= 15 chars for pid < 10^8, n < 1000
        self.veth_ns = "c%dn%d" % (pid, n)
        self.octet = None
        self.host_ip = None
        self.ns_ip = None
        self.procs = []
        self._created = False

    # -- lifecycle -----------------------------------------------------------
    def create(self):
        try:
            _ip("netns", "add", self.name)
            self._created = True
            _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
            _ip("link", "set", self.veth_ns, "netns", self.name)
            _ip("link", "set", "lo", "up", ns=self.name)
            with open(_LOCK, "a+") as lk:
                fcntl.flock(lk, fcntl.LOCK_EX)
                used = _used_octets()
                start = (os.getpid() * 7 + self._n()) % 250 + 2
                for i in range(250):
                    x = (start + i) % 250 + 2     # 2..251
                    if x not in used:
                        break
                else:
                    raise RuntimeError("no free %s.X.0/24 subnet for a test netns" % SUBNET)
                self.octet = x
                self.host_ip = "%s.%d.1" % (SUBNET, x)
                self.ns_ip = "%s.%d.2" % (SUBNET, x)
                _ip("addr", "add", self.host_ip + "/24", "dev", self.veth_host)
                _ip("addr", "add", self.ns_ip + "/24", "dev", self.veth_ns, ns=self.name)
            _ip("link", "set", self.veth_host, "up")
            _ip("link", "set", self.veth_ns, "up", ns=self.name)
            _ip("route", "add", "default", "via", self.host_ip, ns=self.name)
        except BaseException:
            self.close()
            raise
        return self

    def _n(self):
        return int(self.name.rsplit("-", 1)[1])

    def close(self):
        for p in reversed(self.procs):
            try:
                util.kill_tree(p)
            except Exception:
                pass
        self.procs = []
        if self._created:
            pids = util.run(["ip", "netns", "pids", self.name], check=False).stdout.split()
            for p in pids:
                try:
                    os.kill(int(p), 9)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("link", "delete", self.veth_host, check=False)
            _ip("netns", "delete", self.name, check=False)
            self._created = False

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.close()

    # -- running things inside -----------------------------------------------
    def argv(self, argv):
        """argv prefixed to run inside the namespace."""
        return ["ip", "netns", "exec", self.name] + list(argv)

    def spawn(self, argv, **kw):
        """Starts argv inside the namespace in its own session; it is killed on
        close(). Returns the Popen."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.argv(argv), **kw)
        self.procs.append(p)
        return p

    def run(self, argv, timeout=10, check=True, **kw):
        """Runs a short command inside the namespace (bounded by timeout)."""
        return util.run(self.argv(argv), timeout=timeout, check=check, **kw)

    def nft(self, script):
        """Loads an nftables script inside the namespace (e.g. drop rules)."""
        return self.run(["nft", "-f", "-"], input=script)

    def drop_tcp_port(self, port):
        """Silently drops SYNs to `port` inside the namespace (a black hole, for
        connect-timeout tests)."""
        return self.nft("table inet ctest_drop_%d {\n chain input {\n"
                        "  type filter hook input priority 0; policy accept;\n"
                        "  tcp dport %d drop\n }\n}\n" % (port, port))


def python():
    """The interpreter to run helper scripts with (Debian's, with its packages)."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
