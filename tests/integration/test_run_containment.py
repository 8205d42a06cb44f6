"""cordon run: the ways out an adversarial suite found (issue 12), each tried
from inside the sandbox by a probe program, as an attacker would.

- the filesystem view: host daemons' unix sockets under /tmp, /run and an
  unlisted directory, and abstract sockets, are not reachable;
- IPC, UTS and cgroup namespaces of its own;
- the default policy still runs curl, git, python, node and bash.
"""
import ctypes
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

# argv: kind path...; prints "<path>: ok|ERRNAME" for each connect attempt.
CONNECT_PROBE = r"""
import errno, socket, sys
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path.replace("@", "\0", 1) if path.startswith("@") else path)
        s.sendall(b"stolen data from the sandbox")
        print(path + ": ok")
    except OSError as e:
        print(path + ": " + errno.errorcode.get(e.errno, str(e.errno)))
    s.close()
"""


def _listener(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(addr)
    if not addr.startswith("\0"):
        os.chmod(addr, 0o777)
    s.listen(8)
    s.setblocking(False)
    return s


def _nothing_pending(s):
    """True when no connection ever reached the listener (after the probe
    finished: a connect that succeeded is queued until accepted)."""
    try:
        c, _ = s.accept()
    except BlockingIOError:
        return True
    c.close()
    return False


@pytest.mark.timeout(60)
def test_host_unix_sockets_unreachable(sandbox):
    """A host daemon's 0777 socket in a 0777 directory under /tmp, /run and
    an unlisted directory, and an abstract socket, from inside: all fail."""
    tmpdir = tempfile.mkdtemp(prefix="cordon-hostsock-", dir="/tmp")
    rundir = tempfile.mkdtemp(prefix="cordon-hostsock-", dir="/run")
    for d in (tmpdir, rundir):
        os.chmod(d, 0o777)
    paths = [os.path.join(tmpdir, "daemon.sock"), os.path.join(rundir, "daemon.sock"),
             os.path.join(sandbox.secret, "daemon.sock")]
    abstract = "cordon-test-abstract-%d" % os.getpid()
    listeners = []
    try:
        listeners += [_listener(p) for p in paths] + [_listener("\0" + abstract)]
        probe = os.path.join(sandbox.work, "probe.py")
        with open(probe, "w") as f:
            f.write(CONNECT_PROBE)
        r = sandbox.run([PY, probe] + paths + ["@" + abstract])
        assert r.code == 0, r
        res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
        for p in paths:
            assert res[p] in ("ENOENT", "EACCES"), (p, res)
        assert res["@" + abstract] in ("ECONNREFUSED", "EACCES", "EPERM"), res
        for s in listeners:
            assert _nothing_pending(s), "a connection reached the host's listener"
        # Control: the listeners do take connections (from the host).
        for p, s in zip(paths, listeners):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(p)
            assert not _nothing_pending(s)
            c.close()
    finally:
        for s in listeners:
            s.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        shutil.rmtree(rundir, ignore_errors=True)


@pytest.mark.timeout(60)
def test_only_listed_paths_exist(sandbox):
    """The sandbox's tree holds only what filesystem_policy lists: the host's
    /root, /home, /var, /srv, /run contents and the unlisted directory do not
    exist; /tmp and /dev/shm are private; /dev is minimal; /proc is its own."""
    marker = tempfile.mkdtemp(prefix="cordon-host-tmp-", dir="/tmp")
    with open("/dev/shm/cordon-host-shm-%d" % os.getpid(), "w") as f:
        f.write("host")
    try:
        r = sandbox.run(["sh", "-c",
                         "for p in /root /home /var /srv /run/systemd %s %s /dev/shm/%s "
                         "/dev/vda /dev/mem /dev/kmsg /sys; do "
                         "if test -e $p; then echo \"$p: exists\"; else echo \"$p: absent\"; fi; "
                         "done; echo x > /dev/shm/mine && echo shm-writable; "
                         "echo x > /tmp/mine && echo tmp-writable; "
                         "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                         "echo x > /dev/null && echo devnull-ok; head -c4 /dev/urandom | wc -c"
                         % (sandbox.secret, marker, "cordon-host-shm-%d" % os.getpid())])
        assert r.code == 0, r
        for p in ("/root", "/home", "/var", "/srv", "/run/systemd", sandbox.secret, marker,
                  "/dev/shm/cordon-host-shm-%d" % os.getpid(), "/dev/vda", "/dev/mem",
                  "/dev/kmsg", "/sys"):
            assert "%s: absent" % p in r.out, (p, r)
        assert "shm-writable" in r.out and "tmp-writable" in r.out, r
        assert not os.path.exists("/tmp/mine") and not os.path.exists("/dev/shm/mine")
        assert "devnull-ok" in r.out and r.out.rstrip().endswith("4"), r
    finally:
        shutil.rmtree(marker, ignore_errors=True)
        os.unlink("/dev/shm/cordon-host-shm-%d" % os.getpid())


@pytest.mark.timeout(60)
def test_root_is_read_only(sandbox):
    r = sandbox.run(["sh", "-c", "mkdir /newdir; echo x > /usr/cordon-probe; "
                     "echo x > /etc/cordon-probe; true"])
    assert r.code == 0, r
    assert r.err.count("Read-only file system") == 3, r
    assert not os.path.exists("/newdir") and not os.path.exists("/usr/cordon-probe")


@pytest.mark.timeout(60)
def test_own_ipc_namespace(sandbox):
    """A SysV message queue of the host is not visible inside."""
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x434f0000 + os.getpid() % 0xffff
    qid = libc.msgget(key, 0o1000 | 0o666)             # IPC_CREAT
    assert qid >= 0, os.strerror(ctypes.get_errno())
    try:
        r = sandbox.run([PY, "-c",
                         "import ctypes, errno; libc = ctypes.CDLL(None, use_errno=True); "
                         "q = libc.msgget(%d, 0o666); "
                         "print('msgget', q, errno.errorcode.get(ctypes.get_errno()))" % key])
        assert r.code == 0, r
        assert "msgget -1 ENOENT" in r.out, r
    finally:
        libc.msgctl(qid, 0, None)                      # IPC_RMID


@pytest.mark.timeout(60)
def test_own_uts_and_cgroup_namespaces(sandbox):
    host_uts = os.readlink("/proc/self/ns/uts")
    host_cg = os.readlink("/proc/self/ns/cgroup")
    r = sandbox.run(["sh", "-c", "hostname; hostname evil 2>/dev/null; echo set=$?; "
                     "readlink /proc/self/ns/uts /proc/self/ns/cgroup /proc/self/ns/ipc; "
                     "cat /proc/self/cgroup"], args=["--name", "contained-1"])
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "contained-1", r
    assert lines[1] != "set=0", r
    assert lines[2] != host_uts and lines[3] != host_cg, r
    assert lines[4] != os.readlink("/proc/self/ns/ipc"), r
    for l in lines[5:]:                                # rooted at the sandbox's cgroup
        assert l.split(":", 2)[2] == "/", r
    assert socket.gethostname() != "contained-1"


@pytest.mark.timeout(120)
def test_default_policy_runs_the_usual_tools(sandbox):
    """Without filesystem_policy (the default view), curl through the proxy,
    git, python, node and bash work normally."""
    pol = sandbox.write_policy("""\
version: 1
network_policies:
  allowed:
    endpoints:
      - host: allowed.test
        ports: [80]
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: /usr/bin/curl
""", name="default-fs.yaml")
    script = ("set -e; curl -sS --max-time 20 http://allowed.test/; "
              "git init -q repo; cd repo; git -c user.email=a@b -c user.name=a commit -q "
              "--allow-empty -m first; git log --oneline | wc -l; cd ..; "
              "/usr/bin/python3 -c 'import json, ssl, sqlite3; print(\"py\", 6*7)'; "
              "node -e 'console.log(\"node\", require(\"os\").hostname().length > 0)'; "
              "bash -c 'echo bash $((6*7))'; echo done")
    r = sandbox.run(["bash", "-c", script], policy=pol, timeout=90)
    assert r.code == 0, r
    assert "hello from upstream" in r.out, r
    assert "py 42" in r.out and "node true" in r.out and "bash 42" in r.out, r
    assert r.out.rstrip().endswith("done"), r


@pytest.mark.timeout(30)
def test_workdir_covering_system_paths_refused(sandbox):
    for wd in ("/", "/usr", "/etc/ssl", "/tmp"):
        argv, _ = sandbox.argv(["true"])
        argv[argv.index("--workdir") + 1] = wd
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert r.returncode == 125, (wd, r.stderr)
        assert "workdir" in r.stderr and wd in r.stderr, r.stderr


BIND_LO = r"""
import errno, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
s.settimeout(20)
t = time.monotonic()
try:
    s.connect((sys.argv[1], 80)); print("connected")
except OSError as e:
    print("error", errno.errorcode.get(e.errno, str(e.errno)), time.monotonic() - t)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
socket.create_connection(l.getsockname(), timeout=5); print("loopback ok")
"""


@pytest.mark.timeout(60)
def test_bindtodevice_lo_to_remote_refused_with_event(sandbox):
    """A socket bound to lo (SO_BINDTODEVICE needs no privilege) sending to
    a non-loopback address: refused at once (not after a retransmission)
    and reported; loopback itself still works."""
    probe = os.path.join(sandbox.work, "bindlo.py")
    with open(probe, "w") as f:
        f.write(BIND_LO)
    r = sandbox.run([PY, probe, sandbox.net.ip])
    assert r.code == 0, r
    words = r.out.split()
    assert words[:2] == ["error", "ECONNREFUSED"], r
    # "at once" is the kernel's reject rule for lo (tests/unit/test_sandbox_net.c
    # checks the ruleset); here: refused, reported, loopback unaffected.
    assert "loopback ok" in r.out, r
    ev = r.events("bypass_detect", dst_addr=sandbox.net.ip)
    assert ev and ev[0]["proto"] == "tcp", r.audit()
