"""cordon run: filesystem (Landlock), syscalls (seccomp), identity (privilege
drop), and failing closed."""
import os
import re

import pytest

from sandbox_fixtures import BASE_POLICY, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

# Prints "name: ok" or "name: ERRNAME" for each attempt.
TRY = r"""
import ctypes, errno, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, fn):
    try:
        fn(); print(name + ": ok")
    except OSError as e:
        print(name + ": " + errno.errorcode.get(e.errno, str(e.errno)))
def sys_call(rc):
    if rc < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
work, ro, secret = sys.argv[1:4]
attempt("write_work", lambda: open(work + "/new.txt", "w").write("x"))
attempt("write_ro", lambda: open(ro + "/new.txt", "w"))
attempt("append_ro", lambda: open(ro + "/file.txt", "a"))
attempt("read_ro", lambda: open(ro + "/file.txt").read())
attempt("read_secret", lambda: open(secret + "/file.txt").read())
attempt("list_secret", lambda: os.listdir(secret))
attempt("read_root_home", lambda: os.listdir("/root"))
attempt("write_etc", lambda: open("/etc/cordon-probe", "w"))
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
attempt("netlink_audit", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9))
attempt("netlink_route", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
attempt("mount", lambda: sys_call(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)))
attempt("unshare_user", lambda: sys_call(libc.unshare(0x10000000)))
attempt("unshare_net", lambda: sys_call(libc.unshare(0x40000000)))
attempt("setuid0", lambda: sys_call(libc.setuid(0)))
attempt("ptrace_init", lambda: sys_call(libc.ptrace(16, 1, None, None)))   # PTRACE_ATTACH
"""


def tried(sb):
    path = sb.work + "/try.py"
    with open(path, "w") as f:
        f.write(TRY)
    r = sb.run([PY, path, sb.work, sb.ro, sb.secret])
    assert r.code == 0, r
    return r, dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)


@pytest.mark.timeout(30)
def test_filesystem_policy(sandbox):
    r, res = tried(sandbox)
    assert res["write_work"] == "ok"               # read_write (the workdir)
    assert res["write_ro"] == "EROFS"              # a read-only bind (Landlock behind it)
    assert res["append_ro"] in ("EROFS", "EACCES")
    assert res["read_ro"] == "ok"
    assert res["read_secret"] == "ENOENT"          # not listed: not in the sandbox at all
    assert res["list_secret"] == "ENOENT"
    assert res["read_root_home"] == "ENOENT"
    assert res["write_etc"] == "EROFS"
    assert os.path.exists(os.path.join(sandbox.work, "new.txt"))
    assert r.events("sandbox_start")[0]["landlock_abi"] >= 1


@pytest.mark.timeout(30)
def test_syscall_filter(sandbox):
    r, res = tried(sandbox)
    for name in ("raw_socket", "packet_socket", "netlink_audit", "mount", "unshare_user",
                 "unshare_net", "setuid0"):
        assert res[name] == "EPERM", (name, res)
    assert res["netlink_route"] == "ok"            # libc's getifaddrs needs it
    assert res["ptrace_init"] in ("EPERM", "ESRCH"), res


@pytest.mark.timeout(30)
def test_unshare_and_mount_commands(sandbox):
    r = sandbox.run(["sh", "-c", "unshare -n true; echo unshare=$?; "
                     "unshare -Ur true; echo unshare_user=$?"])
    assert "unshare=1" in r.out and "unshare_user=1" in r.out, r
    assert "Operation not permitted" in r.err


@pytest.mark.timeout(30)
def test_process_identity(sandbox):
    r = sandbox.run(["sh", "-c", "id -u; id -G; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|"
                     "NoNewPrivs|Seccomp):' /proc/self/status; ps -o pid=,sess=,comm= -p $$"])
    assert r.code == 0, r
    lines = r.out.splitlines()
    uid = int(lines[0])
    assert uid != 0
    assert lines[1].split() == [lines[1].split()[0]]   # one group: supplementary cleared
    assert int(lines[1].split()[0]) != 0
    caps = dict(re.findall(r"^(\w+):\s+(\S+)$", r.out, re.M))
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert caps[k] == "0000000000000000", caps
    assert caps["NoNewPrivs"] == "1"
    assert caps["Seccomp"] == "2"
    pid, sess, _ = lines[-1].split()
    assert pid == sess                          # a fresh session
    start = r.events("sandbox_start")[0]
    assert start["uid"] == uid and start["user"] == "cordon"


@pytest.mark.timeout(30)
def test_own_pid_namespace_and_proc(sandbox):
    r = sandbox.run(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    pid, nprocs = r.out.split()
    assert int(pid) == 2                        # init is 1
    assert int(nprocs) <= 4                     # only the sandbox's processes are visible


@pytest.mark.timeout(30)
def test_hard_requirement_missing_path_never_runs(sandbox):
    marker = os.path.join(sandbox.work, "ran")
    pol = BASE_POLICY.format(ro=sandbox.ro + ", /no/such/dir", rw=sandbox.work).replace(
        "best_effort", "hard_requirement")
    p = sandbox.write_policy(pol, "hard.yaml")
    r = sandbox.run(["sh", "-c", "touch %s" % marker], policy=p)
    assert r.code == 125, r
    assert not os.path.exists(marker)
    assert "/no/such/dir" in r.err and "hard_requirement" in r.err
    # best_effort skips it with a warning and runs.
    p = sandbox.write_policy(pol.replace("hard_requirement", "best_effort"), "best.yaml")
    r = sandbox.run(["sh", "-c", "touch %s" % marker], policy=p)
    assert r.code == 0, r
    assert os.path.exists(marker)
    assert "skipping read_only /no/such/dir" in r.err


@pytest.mark.timeout(30)
def test_empty_ruleset_refused(sandbox):
    pol = ("version: 1\nfilesystem_policy:\n  include_workdir: false\n"
           "  read_only: [/no/such/a]\n  read_write: [/no/such/b]\n")
    p = sandbox.write_policy(pol, "empty.yaml")
    r = sandbox.run(["true"], policy=p)
    assert r.code == 125, r
    assert "empty ruleset" in r.err


@pytest.mark.timeout(30)
def test_root_user_refused(sandbox):
    pol = BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work) + \
        "process:\n  run_as_user: root\n"
    p = sandbox.write_policy(pol, "root.yaml")
    marker = os.path.join(sandbox.work, "ran-as-root")
    r = sandbox.run(["touch", marker], policy=p)
    assert r.code == 125 and not os.path.exists(marker), r
    # The policy loader refuses it (privdrop refuses uid/gid 0 again).
    assert "run_as_user" in r.err and "root" in r.err


@pytest.mark.timeout(30)
def test_run_as_user_from_policy(sandbox):
    pol = BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work) + \
        "process:\n  run_as_user: nobody\n  run_as_group: nogroup\n"
    p = sandbox.write_policy(pol, "nobody.yaml")
    r = sandbox.run(["id", "-un"], policy=p)
    assert r.code == 0 and r.out.strip() == "nobody", r


@pytest.mark.timeout(30)
def test_fail_closed_when_no_subnet(sandbox):
    # A pool that overlaps the host's routes entirely: no sandbox network,
    # so the command must not run.
    net = sandbox.net.cidr.rsplit(".", 1)[0] + ".0/28"   # inside the test network's /24
    marker = os.path.join(sandbox.work, "ran")
    argv, audit = sandbox.argv(["touch", marker])
    argv[argv.index("--subnet-pool") + 1] = net
    import subprocess
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert p.returncode == 125, p
    assert not os.path.exists(marker)
    assert "no free /30" in p.stderr


@pytest.mark.timeout(30)
def test_degraded_without_fence(sandbox):
    ip = sandbox.net.ip
    script = ("curl -s -o /dev/null -w 'proxy=%%{http_code}\\n' http://allowed.test/; "
              "curl -s --noproxy '*' -m 3 http://%s/; echo direct=$?" % ip)
    r = sandbox.run(["sh", "-c", script], env={"CORDON_DISABLE_FENCE": "1"})
    assert r.code == 0, r
    assert "proxy=200" in r.out                     # still works through the proxy
    assert "direct=7" in r.out                      # isolated: no route out
    assert r.err.count("fast-fail and bypass detection are OFF") == 1
    assert r.events("sandbox_start")[0]["fence"] == "off"
    assert not r.events("bypass_detect")


@pytest.mark.timeout(30)
def test_require_fence(sandbox):
    marker = os.path.join(sandbox.work, "ran")
    for env in ({"CORDON_DISABLE_FENCE": "1"}, {"CORDON_DISABLE_NFLOG": "1"}):
        r = sandbox.run(["touch", marker], args=["--require-fence"], env=env)
        assert r.code == 125, r
        assert not os.path.exists(marker)
        assert "--require-fence" in r.err
    r = sandbox.run(["touch", marker], args=["--require-fence"])
    assert r.code == 0 and os.path.exists(marker), r


@pytest.mark.timeout(30)
def test_reject_only_without_nflog(sandbox):
    ip = sandbox.net.ip
    r = sandbox.run(["sh", "-c", "curl -sS --noproxy '*' -m 3 http://%s/; echo direct=$?" % ip],
                    env={"CORDON_DISABLE_NFLOG": "1"})
    assert "direct=7" in r.out and "Couldn't connect" in r.err, r
    assert r.err.count("bypass detection is OFF") == 1
    assert r.events("sandbox_start")[0]["fence"] == "reject"
