"""Helpers for the `cordon run` suites (tests/integration/test_run_*.py).

    r = sandbox.run(["sh", "-c", "curl -s http://allowed.test/"])   # finished run
    r.code, r.out, r.err, r.events("bypass_detect"), r.wall

    p = sandbox.start(["sleep", "100"])      # a running supervisor (Popen)
    sandbox.finish(p)                        # -> result, like run()

The `sandbox` fixture writes the policy (default: BASE_POLICY with
allowed.test:80 for curl and python3) into a world-readable directory, runs
`cordon run` with the session DNS server as the proxy's resolver, and at
teardown fails the test if cordon's stderr shows a sanitizer report or an
internal-invariant alert, or if a supervisor it started is still running.

host_state() snapshots what a sandbox could leave behind on the host:
our veths (cdn*), bind-mounted namespaces, and the host's nftables ruleset.
"""
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from lib import cordon as cordon_lib
from lib import util

# Each test session takes its own /24 of cordon's default pool (64 sandboxes
# at once), so two sessions running side by side never count each other's
# sandboxes as leaks. The /24 is claimed with a lock file held for the whole
# session (not picked by luck): a second session skips octets already locked.
_POOL_LOCK_DIR = "/run" if os.path.isdir("/run") else "/tmp"


def _claim_pool_octet():
    start = os.getpid() % 250
    for i in range(250):
        octet = (start + i) % 250 + 1
        f = open(os.path.join(_POOL_LOCK_DIR, "cordon-test-pool-%d.lock" % octet), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        return octet, f          # the open file keeps the lock until this process exits
    raise RuntimeError("every 10.200.X.0/24 test pool is locked by another test session")


_POOL_OCTET, _POOL_LOCK = _claim_pool_octet()
SANDBOX_POOL = "10.200.%d.0/24" % _POOL_OCTET

BASE_POLICY = """\
version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, {ro}]
  read_write: [/dev/null, {rw}]
landlock:
  compatibility: best_effort
network_policies:
  allowed:
    endpoints:
      - host: allowed.test
        ports: [80, 8080]
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: /usr/bin/curl
      - path: "/usr/bin/python3*"
"""


class Result:
    def __init__(self, code, out, err, audit_path, wall):
        self.code, self.out, self.err, self.wall = code, out, err, wall
        self.audit_path = audit_path

    def audit(self):
        return read_audit(self.audit_path)

    def events(self, event=None, **match):
        return [e for e in self.audit() if (event is None or e.get("event") == event)
                and all(e.get(k) == v for k, v in match.items())]

    def __repr__(self):
        return "Result(code=%r, out=%r, err=%r)" % (self.code, self.out[-2000:], self.err[-3000:])


def read_audit(path):
    """Every complete line of an audit log, parsed (a non-JSON line fails)."""
    if not path or not os.path.exists(path):
        return []
    out = []
    with open(path, "rb") as f:
        data = f.read()
    for line in data.split(b"\n")[:-1]:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("audit line is not JSON (%s): %r" % (e, line[:300]))
    return out


class Sandbox:
    """Runs `cordon run` for one test. Files live in a 0755 directory so the
    sandbox user can reach its working directory."""

    def __init__(self, binary, resolver, name):
        self.binary = binary
        self.resolver = resolver
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40]     # paths go into YAML flow lists
        self.dir = tempfile.mkdtemp(prefix="cordon-run-%s-" % safe)
        os.chmod(self.dir, 0o755)
        self.work = os.path.join(self.dir, "work")       # read_write (the workdir)
        self.ro = os.path.join(self.dir, "ro")           # read_only
        self.secret = os.path.join(self.dir, "secret")   # not listed at all
        for d in (self.work, self.ro, self.secret):
            os.mkdir(d)
            os.chmod(d, 0o777)
        for d in (self.ro, self.secret):
            with open(os.path.join(d, "file.txt"), "w") as f:
                f.write("data in %s\n" % os.path.basename(d))
            os.chmod(os.path.join(d, "file.txt"), 0o644)
        self.n = 0
        self.running = []
        self.stderr_paths = []
        self.write_policy(BASE_POLICY.format(ro=self.ro, rw=self.work))

    def write_policy(self, text, name="policy.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        self.policy = path
        return path

    def argv(self, cmd, args=(), policy=None):
        self.n += 1
        audit = os.path.join(self.dir, "audit-%d.jsonl" % self.n)
        a = [self.binary, "run", "--policy", policy or self.policy, "--log", audit,
             "--workdir", self.work, "--subnet-pool", SANDBOX_POOL]
        if self.resolver:
            a += ["--resolver", self.resolver]
        return a + [str(x) for x in args] + ["--"] + list(cmd), audit

    def start(self, cmd, args=(), env=None, stdin=subprocess.DEVNULL, policy=None):
        """Starts cordon run; returns the Popen (with .audit_path, .t0)."""
        argv, audit = self.argv(cmd, args, policy)
        errp = os.path.join(self.dir, "stderr-%d.log" % self.n)
        outp = os.path.join(self.dir, "stdout-%d.log" % self.n)
        self.stderr_paths.append(errp)
        with open(errp, "wb") as err, open(outp, "wb") as out:
            p = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err,
                                 env=util.clean_env(env), start_new_session=True)
        p.audit_path, p.err_path, p.out_path, p.t0 = audit, errp, outp, time.monotonic()
        self.running.append(p)
        return p

    def finish(self, p, timeout=30):
        try:
            code = p.wait(timeout)
        except subprocess.TimeoutExpired:
            util.kill_tree(p, 1.0)
            raise AssertionError("cordon run did not finish within %ss:\n%s"
                                 % (timeout, _read(p.err_path)[-3000:]))
        wall = time.monotonic() - p.t0
        return Result(code, _read(p.out_path), _read(p.err_path), p.audit_path, wall)

    def wait_output(self, p, text, timeout=10):
        """Waits until the command's stdout contains text (fails with both
        outputs if it does not, or if cordon exits first)."""
        deadline = time.monotonic() + timeout
        while text not in _read(p.out_path):
            if p.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("no %r from the command (exit %r):\nstdout: %s\nstderr: %s"
                                     % (text, p.poll(), _read(p.out_path)[-2000:],
                                        _read(p.err_path)[-3000:]))
            time.sleep(0.02)

    def run(self, cmd, args=(), env=None, input=None, timeout=30, policy=None):
        """Runs to completion; returns a Result."""
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        p = self.start(cmd, args, env, stdin, policy)
        if input is not None:
            try:
                p.stdin.write(input.encode() if isinstance(input, str) else input)
                p.stdin.close()
            except BrokenPipeError:
                pass
        return self.finish(p, timeout)

    def problems(self):
        bad = []
        for path in self.stderr_paths:
            bad += cordon_lib.problems_in(_read(path))
        return bad

    def close(self):
        alive = [p for p in self.running if p.poll() is None]
        for p in alive:
            util.kill_tree(p, 2.0)
        shutil.rmtree(self.dir, ignore_errors=True)
        return alive


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


@pytest.fixture
def sandbox(cordon_bin, dns_server, testnet, request):
    _require_root()
    sb = Sandbox(cordon_bin, dns_server.resolver, request.node.name)
    sb.net = testnet
    yield sb
    bad = sb.problems()
    alive = sb.close()
    if bad:
        pytest.fail("cordon stderr shows:\n  " + "\n  ".join(bad[:20]), pytrace=False)
    if alive:
        pytest.fail("%d cordon run supervisor(s) were still running at teardown" % len(alive),
                    pytrace=False)


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("cordon run needs root")


# -- host state (leak checks) -----------------------------------------------------
def host_state():
    """What a sandbox could leak on the host: our veths (cdn<N>h), named
    namespaces and nftables tables of ours (we create none of either), and,
    with CORDON_LEAK_STRICT=1 (a host where nothing else runs), the whole
    `ip link`, `ip netns` and `nft list ruleset` output."""
    links = util.run(["ip", "-o", "link"], check=False).stdout
    netns = util.run(["ip", "netns", "list"], check=False).stdout
    nft = util.run(["nft", "list", "ruleset"], check=False).stdout
    addrs = util.run(["ip", "-o", "-4", "addr"], check=False).stdout
    st = {
        # our veths: cdn<N>h carrying an address of this session's pool
        "veths": sorted(set(re.findall(r"^\d+: (cdn\d+h)\s+inet 10\.200\.%d\." % _POOL_OCTET,
                                       addrs, re.M))),
        "netns": sorted(l.split()[0] for l in netns.splitlines()
                        if re.match(r"(cdn|cordon)", l)),
        "nft": sorted(re.findall(r"^table \S+ (\S*cordon\S*) ", nft, re.M)),
    }
    if os.environ.get("CORDON_LEAK_STRICT") == "1":
        st["strict"] = (re.sub(r"^\d+: ", "", links, flags=re.M), netns, nft)
    return st


def added(before, now):
    """What `now` holds that `before` did not, per kind (empty dict: nothing)."""
    out = {}
    for k, v in now.items():
        if k == "strict":
            if v != before.get(k):
                out[k] = v
            continue
        extra = sorted(set(v) - set(before.get(k, ())))
        if extra:
            out[k] = extra
    return out


def quiet_host_state(timeout=30.0):
    """The baseline for a leak check: waits until none of this session's
    sandboxes is left on the host (the kernel destroys a namespace, and the
    veth in it, asynchronously after the last process of the previous test
    exits), then returns host_state(). Fails if they do not go away."""
    deadline = time.monotonic() + timeout
    while True:
        st = host_state()
        if not st["veths"]:
            return st
        if time.monotonic() >= deadline:
            raise AssertionError("this session's sandbox veths %s are still on the host %.0f s "
                                 "after their sandboxes ended" % (st["veths"], timeout))
        time.sleep(0.05)


def wait_nothing_added(before, timeout=30.0):
    """Waits until the host holds nothing that `before` did not (teardown is
    asynchronous in the kernel); returns what is still added ({} when clean)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = added(before, host_state())
        if not extra or time.monotonic() >= deadline:
            return extra
        time.sleep(0.05)


def pids_matching(marker):
    """pids of processes whose command line contains marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out
