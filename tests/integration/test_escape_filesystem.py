"""Escape attempts at the filesystem boundary beyond test_run_containment's
and test_run_isolation's:

- file descriptors the caller leaks into `cordon run` (a directory outside
  the policy, a socket) never reach the command;
- a directory outside the policy given as the command's stdin: nothing
  under it can be opened (Landlock behind the new root), nor its parent;
- the sandbox's init: /proc/1/root, /proc/1/cwd, /proc/1/environ, its fds
  and its mount namespace are out of reach;
- symlinks the command plants (to the host's /, to an unlisted directory)
  resolve inside the sandbox's own root;
- kernel knobs behind /proc (core_pattern — the classic container escape —,
  sysrq-trigger, /proc/sys/kernel) cannot be written, and device nodes the
  minimal /dev does not hold (/dev/mem, /dev/kmsg, disks) do not exist;
- with /sys listed read-only, no cgroup file can be written (the command
  cannot move itself out of its cgroup) and the cgroup namespace shows the
  sandbox's own cgroup as the root."""
import os
import socket
import subprocess

import pytest

from sandbox_fixtures import BASE_POLICY, _read, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

ATTEMPTS = r"""
import errno, os, sys
def res(name, fn):
    try:
        v = fn()
        print("%s: ok %s" % (name, repr(v)[:80]))
    except OSError as e:
        print("%s: %s" % (name, errno.errorcode.get(e.errno, str(e.errno))))
def wr(path):
    with open(path, "w") as f:
        f.write("|/tmp/x")
secret, work = sys.argv[1], sys.argv[2]
res("fds", lambda: sorted(int(x) for x in os.listdir("/proc/self/fd")))
res("init_root", lambda: os.listdir("/proc/1/root/"))
res("init_cwd", lambda: os.listdir("/proc/1/cwd/"))
res("init_environ", lambda: open("/proc/1/environ", "rb").read())
res("init_fd", lambda: os.listdir("/proc/1/fd"))
res("init_mnt_ns", lambda: os.open("/proc/1/ns/mnt", os.O_RDONLY))
os.symlink("/", work + "/hostroot")
os.symlink(secret, work + "/secretlink")
res("via_root_link", lambda: os.path.exists(work + "/hostroot" + secret + "/file.txt"))
res("via_secret_link", lambda: open(work + "/secretlink/file.txt").read())
res("core_pattern", lambda: wr("/proc/sys/kernel/core_pattern"))
res("sysrq", lambda: wr("/proc/sysrq-trigger"))
res("hostname_knob", lambda: wr("/proc/sys/kernel/hostname"))
res("overcommit_knob", lambda: wr("/proc/sys/vm/overcommit_memory"))
res("dev_mem", lambda: os.open("/dev/mem", os.O_RDONLY))
res("dev_kmsg", lambda: os.open("/dev/kmsg", os.O_RDONLY))
res("dev_vda", lambda: os.open("/dev/vda", os.O_RDONLY))
"""


def _attempts(sb, r):
    assert r.code == 0, r
    return dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)


@pytest.mark.timeout(60)
def test_leaked_fds_init_symlinks_and_kernel_knobs(sandbox):
    path = os.path.join(sandbox.work, "fs.py")
    with open(path, "w") as f:
        f.write(ATTEMPTS)
    # The caller leaks a directory fd (outside the policy) and a socket.
    d = os.open(sandbox.secret, os.O_RDONLY | os.O_DIRECTORY)
    a, b = socket.socketpair()
    argv, audit = sandbox.argv([PY, path, sandbox.secret, sandbox.work])
    try:
        p = subprocess.run(argv, pass_fds=(d, a.fileno()), capture_output=True, text=True,
                           timeout=30, start_new_session=True)
    finally:
        os.close(d)
        a.close()
        b.close()
    assert p.returncode == 0, p.stderr
    res = dict(l.split(": ", 1) for l in p.stdout.splitlines() if ": " in l)
    assert res["fds"] == "ok [0, 1, 2, 3]", res      # 3: listdir's own
    for k in ("init_root", "init_cwd", "init_environ", "init_fd", "init_mnt_ns"):
        assert res[k] == "EACCES", (k, res)
    assert res["via_root_link"] == "ok False", res     # "/" is the sandbox's own root
    assert res["via_secret_link"] == "ENOENT", res
    for k in ("core_pattern", "hostname_knob", "overcommit_knob"):
        assert res[k] in ("EACCES", "EROFS", "EPERM"), (k, res)
    # ENOENT where the kernel has no magic SysRq
    want = ("EACCES", "EROFS", "EPERM") if os.path.exists("/proc/sysrq-trigger") else ("ENOENT",)
    assert res["sysrq"] in want, res
    for k in ("dev_mem", "dev_kmsg", "dev_vda"):
        assert res[k] == "ENOENT", (k, res)


STDIN_DIR = r"""
import errno, os
def res(name, fn):
    try:
        fn(); print(name + ": ok")
    except OSError as e:
        print("%s: %s" % (name, errno.errorcode.get(e.errno, str(e.errno))))
res("open_below", lambda: os.close(os.open("file.txt", os.O_RDONLY, dir_fd=5)))
res("open_parent", lambda: os.close(os.open("..", os.O_RDONLY, dir_fd=5)))
res("via_proc", lambda: os.listdir("/proc/self/fd/5"))
res("create_below", lambda: os.close(os.open("new", os.O_CREAT | os.O_WRONLY, dir_fd=5)))
"""


@pytest.mark.timeout(60)
def test_directory_outside_the_policy_as_stdin_opens_nothing(sandbox):
    path = os.path.join(sandbox.work, "stdin.py")
    with open(path, "w") as f:
        f.write(STDIN_DIR)
    d = os.open(sandbox.secret, os.O_RDONLY | os.O_DIRECTORY)
    try:
        p = sandbox.start(["sh", "-c", 'exec 5<&0 0</dev/null; exec %s "$0"' % PY, path],
                          stdin=d)
    finally:
        os.close(d)
    r = sandbox.finish(p)
    res = _attempts(sandbox, r)
    for k in ("open_below", "open_parent", "via_proc", "create_below"):
        assert res[k] == "EACCES", (k, res)
    assert not os.path.exists(os.path.join(sandbox.secret, "new"))


CGROUP = r"""
import errno, os
def res(name, fn):
    try:
        v = fn(); print("%s: ok %s" % (name, v))
    except OSError as e:
        print("%s: %s" % (name, errno.errorcode.get(e.errno, str(e.errno))))
def wr(path, data):
    with open(path, "w") as f:
        f.write(data)
me = str(os.getpid())
print("self_cgroup: " + ";".join(l.strip() for l in open("/proc/self/cgroup")))
res("v1_pids_root_procs", lambda: wr("/sys/fs/cgroup/pids/cgroup.procs", me))
res("v1_pids_root_tasks", lambda: wr("/sys/fs/cgroup/pids/tasks", me))
res("v1_memory_root_procs", lambda: wr("/sys/fs/cgroup/memory/cgroup.procs", me))
res("unified_procs", lambda: wr("/sys/fs/cgroup/unified/cgroup.procs", me))
res("mkdir_cgroup", lambda: os.mkdir("/sys/fs/cgroup/pids/escape"))
res("release_agent", lambda: wr("/sys/fs/cgroup/pids/release_agent", "/tmp/x"))
"""


@pytest.mark.timeout(60)
def test_cgroup_files_cannot_be_written(sandbox):
    if not os.path.isdir("/sys/fs/cgroup/pids"):
        pytest.skip("no v1 pids hierarchy on this host")
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro + ", /sys", rw=sandbox.work),
                               name="sys.yaml")
    path = os.path.join(sandbox.work, "cg.py")
    with open(path, "w") as f:
        f.write(CGROUP)
    r = sandbox.run([PY, path], policy=pol)
    res = _attempts(sandbox, r)
    for k in ("v1_pids_root_procs", "v1_pids_root_tasks", "v1_memory_root_procs",
              "mkdir_cgroup", "release_agent"):
        assert res[k] in ("EROFS", "EACCES"), (k, res)
    assert res["unified_procs"] in ("EROFS", "EACCES", "ENOENT"), res
    # the cgroup namespace: the sandbox's own cgroup is its root
    for entry in res["self_cgroup"].split(";"):
        assert entry.split(":", 2)[2] == "/", res["self_cgroup"]


@pytest.mark.timeout(60)
def test_mountinfo_shows_only_what_the_policy_lists(sandbox):
    """/proc/self/mountinfo names every mount of the sandbox's root: each is
    a path the policy lists (at its own path: no host path appears under
    another name) or one of cordon's private mounts; nothing unlisted."""
    r = sandbox.run(["cat", "/proc/self/mountinfo"])
    assert r.code == 0, r
    listed = {"/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/dev",
              sandbox.ro, "/dev/null", sandbox.work}
    listed = {os.path.realpath(p) for p in listed if os.path.exists(p)}
    private = {"/", "/tmp", "/dev/shm", "/dev/pts", "/run/cordon", "/run/cordon-home",
               "/etc/resolv.conf"}
    devs = {"/dev/" + n for n in ("null", "zero", "full", "random", "urandom", "tty")}
    seen = []
    for line in r.out.splitlines():
        f = line.split()
        root, mnt = f[3], f[4]
        seen.append(mnt)
        assert mnt in listed | private | devs, line
        if mnt in listed and mnt not in devs and mnt != "/proc":
            assert root == mnt or root == "/", line       # bound at its own path
    assert os.path.realpath(sandbox.secret) not in seen
    assert not any(m.startswith(os.path.realpath(sandbox.secret)) for m in seen)


@pytest.mark.timeout(60)
def test_host_submount_under_a_read_only_path_is_read_only(sandbox):
    """A writable mount of the host (a tmpfs here) under a path the policy
    lists read-only is read-only inside too: the bind is recursive, and so
    is its read-only flag."""
    sub = os.path.join(sandbox.ro, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777,size=1m", "cordon-test", sub],
                   check=True)
    try:
        r = sandbox.run(["sh", "-c", "touch %s/x; echo rc=$?; grep ' %s ' /proc/self/mountinfo"
                         % (sub, sub)])
        assert "rc=1" in r.out and "Read-only file system" in r.err, r
        line = [l for l in r.out.splitlines() if (" %s " % sub) in l]
        assert line and line[0].split()[5].startswith("ro"), r.out
        assert not os.path.exists(os.path.join(sub, "x"))
    finally:
        subprocess.run(["umount", sub], check=False)
