"""cordon run: the sandbox's cgroup (issue 12 item 7). A fork bomb and a
memory hog inside hit the sandbox's own limits (not the host's), with
limit_reached events; teardown kills everything, setsid'ed processes too,
also after the supervisor was killed with SIGKILL (the next run cleans up).

This machine is a cgroup v1 hybrid (pids, memory, cpu, freezer as v1; the
unified hierarchy has no controllers), so the default path here is v1; the
v2 path runs against the unified mount (CORDON_CGROUP_V2), without
controllers there (membership, cgroup.kill, removal), and its limit files
are checked by tests/unit/test_sandbox_cgroup.c."""
import glob
import os
import signal
import subprocess
import time

import pytest

from sandbox_fixtures import BASE_POLICY, pids_matching, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"
V1 = "/sys/fs/cgroup"
UNIFIED = "/sys/fs/cgroup/unified"

FORK_BOMB = r"""
import errno, os, signal, sys, time
kids = []
err = "none"
for i in range(10000):
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno)); break
    if pid == 0:
        signal.pause(); os._exit(0)
    kids.append(pid)
print("forked", len(kids), "then", err, flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
"""


def _until_running(marker):
    """Shell snippet: wait until a process with marker in its command line
    exists (the setsid'ed child has exec'd)."""
    pat = "^[%s]%s$" % (marker[0], marker[1:].replace(".", "\\."))   # never matches itself
    return "until grep -qsz '%s' /proc/[0-9]*/cmdline; do :; done; " % pat


def _policy(sb, limits):
    return sb.write_policy(BASE_POLICY.format(ro=sb.ro, rw=sb.work) + "limits:\n" +
                           "".join("  %s: %s\n" % kv for kv in limits.items()),
                           name="limits.yaml")


def _cgroup_dirs(supervisor_pid, root=V1, ctrls=("pids", "memory", "cpu", "freezer")):
    out = []
    for c in ctrls:
        base = os.path.join(root, c) if c else root
        out += glob.glob(os.path.join(base, "cordon", "run-%d-*" % supervisor_pid))
    return out


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.timeout(60)
def test_fork_bomb_stopped_by_pids_limit(sandbox):
    pol = _policy(sandbox, {"pids": 40})
    probe = os.path.join(sandbox.work, "bomb.py")
    with open(probe, "w") as f:
        f.write(FORK_BOMB)
    r = sandbox.run([PY, probe], policy=pol)
    assert r.code == 0, r
    words = r.out.split()
    assert words[0] == "forked" and words[3] == "EAGAIN", r
    assert int(words[1]) < 40, r
    ev = r.events("limit_reached", limit="pids")
    assert ev and ev[0]["max"] == 40 and ev[0]["refused_forks"] >= 1, r.audit()


@pytest.mark.timeout(60)
def test_default_pids_limit_is_1024(sandbox):
    p = sandbox.start(["sh", "-c", "echo ready; exec sleep 100"])
    try:
        sandbox.wait_output(p, "ready")
        dirs = _cgroup_dirs(p.pid, ctrls=("pids",))
        assert len(dirs) == 1, dirs
        assert _read(os.path.join(dirs[0], "pids.max")) == "1024"
        # Only the sandbox's processes (init and the command) are in it.
        assert len(_read(os.path.join(dirs[0], "cgroup.procs")).split()) == 2
    finally:
        p.send_signal(signal.SIGTERM)
        sandbox.finish(p)
    assert _cgroup_dirs(p.pid) == []


@pytest.mark.timeout(60)
def test_memory_limit_oom_kill_event(sandbox):
    pol = _policy(sandbox, {"memory": "48M"})
    r = sandbox.run([PY, "-c", "x = bytearray(256 << 20); x[::4096] = b'y' * len(x[::4096]); "
                     "print('survived')"], policy=pol)
    assert r.code == 128 + signal.SIGKILL, r
    assert "survived" not in r.out
    ev = r.events("limit_reached", limit="memory")
    assert ev and ev[0]["max"] == 48 << 20 and ev[0]["oom_kills"] >= 1, r.audit()


@pytest.mark.timeout(60)
def test_cpu_limit_and_flags_override_policy(sandbox):
    pol = _policy(sandbox, {"pids": 64, "cpu": 1.5, "memory": "1G"})
    p = sandbox.start(["sh", "-c", "echo ready; exec sleep 100"], policy=pol,
                      args=["--pids-max", "32", "--cpus", "0.25"])
    try:
        sandbox.wait_output(p, "ready")
        d = {os.path.basename(os.path.dirname(os.path.dirname(x))): x
             for x in _cgroup_dirs(p.pid)}
        assert _read(os.path.join(d["pids"], "pids.max")) == "32"          # flag
        assert _read(os.path.join(d["cpu"], "cpu.cfs_quota_us")) == "25000"  # flag
        assert _read(os.path.join(d["cpu"], "cpu.cfs_period_us")) == "100000"
        assert _read(os.path.join(d["memory"], "memory.limit_in_bytes")) == str(1 << 30)
    finally:
        p.send_signal(signal.SIGTERM)
        sandbox.finish(p)


@pytest.mark.timeout(60)
def test_setsid_process_dies_at_teardown(sandbox):
    marker = "1000.%d" % os.getpid()
    r = sandbox.run(["sh", "-c", "setsid sleep %s </dev/null >/dev/null 2>&1 & "
                     "setsid sh -c 'sleep %s' </dev/null >/dev/null 2>&1 & %secho started"
                     % (marker, marker, _until_running(marker))])
    assert r.code == 0 and "started" in r.out, r
    assert pids_matching("sleep\0" + marker) == []
    assert glob.glob(os.path.join(V1, "*", "cordon", "run-%d-*" % r.events("sandbox_start")[0]["supervisor_pid"])) == []


@pytest.mark.timeout(90)
def test_supervisor_sigkill_cgroup_removed_at_next_start(sandbox):
    marker = "1001.%d" % os.getpid()
    p = sandbox.start(["sh", "-c", "setsid sleep %s </dev/null >/dev/null 2>&1 & %secho ready; "
                       "exec sleep 100" % (marker, _until_running(marker))])
    sandbox.wait_output(p, "ready")
    dirs = _cgroup_dirs(p.pid)
    assert dirs, "no cgroup for the sandbox"
    assert pids_matching("sleep\0" + marker)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    # Its processes die with the sandbox's init (PR_SET_PDEATHSIG, PID namespace).
    assert _wait(lambda: pids_matching("sleep\0" + marker) == []), "sandbox processes survived"
    # The dead supervisor left them behind; any cordon run starting on this
    # host (another suite's, too) removes them, so they may already be gone.
    r = sandbox.run(["true"])
    assert r.code == 0, r
    assert [d for d in dirs if os.path.isdir(d)] == [], "stale cgroups were not removed"


@pytest.mark.timeout(60)
def test_v2_hierarchy(sandbox):
    """The v2 path, on the unified mount: membership, cgroup.kill of a setsid'ed
    process, removal. (No controllers are attached there on this host: the pids
    default only warns.)"""
    if not os.path.exists(os.path.join(UNIFIED, "cgroup.procs")):
        pytest.skip("no cgroup2 mount at %s" % UNIFIED)
    marker = "1002.%d" % os.getpid()
    p = sandbox.start(["sh", "-c", "setsid sleep %s </dev/null >/dev/null 2>&1 & "
                       "%sgrep '^0::' /proc/self/cgroup; echo ready; exec sleep 100"
                       % (marker, _until_running(marker))],
                      env={"CORDON_CGROUP_V2": UNIFIED})
    try:
        sandbox.wait_output(p, "ready")
        dirs = _cgroup_dirs(p.pid, root=UNIFIED, ctrls=("",))
        assert len(dirs) == 1, dirs
        procs = [int(x) for x in _read(os.path.join(dirs[0], "cgroup.procs")).split()]
        assert len(procs) == 3                          # init, the command, the setsid'ed sleep
        sleepers = pids_matching("sleep\0" + marker)
        assert sleepers and set(sleepers) <= set(procs)
        with open("/proc/%d/cgroup" % sleepers[0]) as f:
            assert "0::/cordon/run-%d-" % p.pid in f.read()
    finally:
        p.send_signal(signal.SIGTERM)
        r = sandbox.finish(p)
    assert "0::/\n" in r.out, r                         # its own cgroup namespace
    assert pids_matching("sleep\0" + marker) == []
    assert not os.path.exists(dirs[0])


@pytest.mark.timeout(30)
def test_limits_validation_line_column(cordon_bin, tmp_path):
    pol = tmp_path / "bad.yaml"
    pol.write_text("version: 1\nlimits:\n  pids: 0\n  memory: 12Q\n  cpu: abc\n"
                   "  max_conns: -1\n  bogus: 1\n")
    r = subprocess.run([cordon_bin, "policy", "check", str(pol)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0
    assert "bad.yaml:3:9: error: limits.pids" in r.stderr, r.stderr
    assert "bad.yaml:4:11: error: limits.memory: '12Q'" in r.stderr, r.stderr
    assert "bad.yaml:5:8: error: limits.cpu: 'abc'" in r.stderr, r.stderr
    assert "bad.yaml:6:14: error: limits.max_conns" in r.stderr, r.stderr
    assert "bad.yaml:7:3: error: limits" in r.stderr and "bogus" in r.stderr, r.stderr
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nlimits:\n  pids: 256\n  memory: 2G\n  cpu: 0.5\n"
                    "  max_conns: 64\n")
    r = subprocess.run([cordon_bin, "policy", "check", str(good)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr


@pytest.mark.timeout(30)
def test_limit_flags_validated(sandbox):
    for flag, val in (("--pids-max", "0"), ("--memory", "1K"), ("--memory", "lots"),
                      ("--cpus", "0"), ("--cpus", "x")):
        argv, _ = sandbox.argv(["true"], args=[flag, val])
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert r.returncode == 125 and flag in r.stderr, (flag, val, r.stderr)


CONN_PROBE = r"""
import os, select, socket, time
from urllib.parse import urlparse
u = urlparse(os.environ["HTTP_PROXY"])
socks = [socket.create_connection((u.hostname, u.port), timeout=10) for _ in range(3)]
got = {}
deadline = time.monotonic() + 8
while len(got) < 1 and time.monotonic() < deadline:
    r, _, _ = select.select([s for s in socks if s not in got], [], [], 0.5)
    for s in r:
        got[s] = s.recv(4096)
print("answered", len(got))
for data in got.values():
    print(data.split(b"\r\n")[0].decode(), [l for l in data.decode().split("\r\n")
                                            if l.startswith("X-Cordon-Deny")])
"""


@pytest.mark.timeout(60)
def test_connection_budget(sandbox):
    """--max-conns 2: the third concurrent connection to the sandbox's proxy
    is refused at once with 503 and a connection_limit event."""
    probe = os.path.join(sandbox.work, "conns.py")
    with open(probe, "w") as f:
        f.write(CONN_PROBE)
    r = sandbox.run([PY, probe], args=["--max-conns", "2"])
    assert r.code == 0, r
    assert "answered 1" in r.out, r
    assert "HTTP/1.1 503" in r.out and "connection_limit" in r.out, r
    ev = r.events("connection_limit")
    assert len(ev) == 1 and ev[0]["max_conns"] == 2, r.audit()
    # The policy's limits.max_conns does the same.
    pol = _policy(sandbox, {"max_conns": 2})
    r = sandbox.run([PY, probe], policy=pol)
    assert "HTTP/1.1 503" in r.out and len(r.events("connection_limit")) == 1, r


@pytest.mark.timeout(60)
def test_core_dumps_disabled(sandbox):
    """RLIMIT_CORE is 0, soft and hard: a crash writes no core anywhere
    (OpenShell's core_dump_hardening asserts `ulimit -c` = 0), and the
    command cannot raise it."""
    r = sandbox.run(["sh", "-c", "ulimit -c; ulimit -H -c; ulimit -c unlimited 2>&1 || echo raise-refused"])
    assert r.code == 0, r
    lines = r.out.split()
    assert lines[:2] == ["0", "0"], r
    assert "raise-refused" in r.out, r
    r = sandbox.run([PY, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_CORE))"])
    assert r.code == 0 and r.out.strip() == "(0, 0)", r
