"""Escape attempts at the system-call boundary (issue 12), beyond the ones
test_run_isolation, test_run_identity and test_run_refusals already try: a
C probe inside `cordon run` calls what an attacker would to leave the
sandbox or reach the host kernel's shared state, and each must be refused
(EPERM from seccomp; clone3 ENOSYS so libc falls back to clone) and counted:
io_uring, userfaultfd, the keyring, perf_event_open, bpf, every mount-API
call (umount2, pivot_root, chroot, open_tree, move_mount, fsopen, fspick,
fsmount, mount_setattr), setns (own and init's namespaces), clone with each
namespace flag, clone3, unshare(CLONE_NEWTIME), open_by_handle_at, kexec,
modules, AF_VSOCK/AF_ALG/SOCK_PACKET/raw IPv6/netlink families other than
route, a socket family with high bits set, acct, syslog, iopl, vhangup,
fanotify, a seccomp listener of our own, capset, mknod, and keystroke
injection (TIOCSTI, also with high bits in the request, TIOCLINUX) on a pty
of the sandbox and on stdin.

Also the private tmpfs the command can write (/tmp, /dev/shm, HOME) have a
size: without one each may grow to half the host's memory."""
import os
import shutil
import subprocess

import pytest

from sandbox_fixtures import BASE_POLICY, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

PROBE_C = r"""
/* Escape probe: each attempt prints "name: ok" or "name: ERRNAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <termios.h>

static const char *ename(int e)
{
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENOTTY: return "ENOTTY";
    case EFAULT: return "EFAULT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ESRCH: return "ESRCH";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EXDEV: return "EXDEV";
    default: return "E?";
    }
}

static void res(const char *name, long rc)
{
    if (rc >= 0)
        printf("%s: ok\n", name);
    else
        printf("%s: %s\n", name, ename(errno));
    fflush(stdout);
}

static int child_fn(void *arg) { return 0; }

int main(int argc, char **argv)
{
    char key[8] = "k";
    res("io_uring_setup", syscall(SYS_io_uring_setup, 8, calloc(1, 120)));
    res("userfaultfd", syscall(SYS_userfaultfd, 0));
    res("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0));
    res("add_key", syscall(SYS_add_key, "user", key, "v", 1, -3));
    res("request_key", syscall(SYS_request_key, "user", key, NULL, 0));
    char attr[128] = {0};
    res("perf_event_open", syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    res("bpf", syscall(SYS_bpf, 0 /* MAP_CREATE */, attr, 72));
    res("umount2", syscall(SYS_umount2, "/proc", 2));
    res("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    res("chroot", syscall(SYS_chroot, "/tmp"));
    res("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/usr", 1 /* OPEN_TREE_CLONE */));
    res("move_mount", syscall(SYS_move_mount, -1, "", AT_FDCWD, "/tmp", 4));
    res("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    res("fspick", syscall(SYS_fspick, AT_FDCWD, "/tmp", 0));
    res("fsmount", syscall(SYS_fsmount, -1, 0, 0));
    res("mount_setattr", syscall(SYS_mount_setattr, AT_FDCWD, "/usr", 0, attr, 32));
    int nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    res("setns_net", syscall(SYS_setns, nsfd, 0));
    int initns = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
    res("open_init_mntns", initns);
    res("setns_init_mnt", syscall(SYS_setns, initns, 0));
    static char stack[65536];
    int flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWIPC,
                   CLONE_NEWUTS, CLONE_NEWCGROUP};
    const char *fn[] = {"clone_newuser", "clone_newns", "clone_newnet", "clone_newpid",
                        "clone_newipc", "clone_newuts", "clone_newcgroup"};
    for (int i = 0; i < 7; i++) {
        int pid = clone(child_fn, stack + sizeof(stack), flags[i] | SIGCHLD, NULL);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        res(fn[i], pid);
    }
    res("unshare_newtime", syscall(SYS_unshare, 0x80));
    struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    long c3 = syscall(SYS_clone3, &ca, sizeof(ca));
    if (c3 == 0)
        _exit(0);
    res("clone3_newuser", c3);
    char handle[136] = {0};
    *(unsigned *)handle = 8;
    res("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY));
    res("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    res("init_module", syscall(SYS_init_module, NULL, 0, ""));
    res("socket_vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
    res("socket_alg", socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0));
    res("socket_packet_inet", socket(AF_INET, SOCK_PACKET, 0));
    res("socket_raw6", socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, 58));
    res("socket_family_high", syscall(SYS_socket, 0x100000000L | 17, SOCK_RAW, 0));
    res("netlink_sock_diag", socket(AF_NETLINK, SOCK_RAW, 4));
    res("netlink_netfilter", socket(AF_NETLINK, SOCK_RAW, 12));
    res("netlink_uevent", socket(AF_NETLINK, SOCK_DGRAM, 15));
    res("acct", syscall(SYS_acct, NULL));
    res("syslog", syscall(SYS_syslog, 10, NULL, 0));
    res("iopl", syscall(SYS_iopl, 3));
    res("vhangup", syscall(SYS_vhangup));
    res("fanotify_init", syscall(SYS_fanotify_init, 0, 0));
    /* seccomp listener of our own (would see cordon's refused calls) */
    res("seccomp_listener", syscall(SYS_seccomp, 1, 8, NULL));
    res("capset_all", ({
        struct { unsigned v; int pid; } h = {0x20080522, 0};
        unsigned d[6] = {~0u, ~0u, 0, ~0u, ~0u, 0};
        syscall(SYS_capset, &h, d);
    }));
    res("mknod_null", mknod("/tmp/nul", S_IFCHR | 0666, makedev(1, 3)));
    /* keystroke injection: a pty of the sandbox's own devpts */
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    res("posix_openpt", m);
    if (m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0) {
        int s = open(ptsname(m), O_RDWR | O_NOCTTY);
        res("open_pts", s);
        char ch = 'x';
        res("tiocsti", ioctl(s, TIOCSTI, &ch));
        res("tiocsti_high_bits", syscall(SYS_ioctl, s, 0x100000000UL | TIOCSTI, &ch));
        char sub = 12;
        res("tioclinux", ioctl(s, TIOCLINUX, &sub));
    }
    res("tiocsti_stdin", ioctl(0, TIOCSTI, "x"));
    return 0;
}

"""

REFUSED = {
    "io_uring_setup", "userfaultfd", "keyctl", "add_key", "request_key", "perf_event_open",
    "bpf", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fspick",
    "fsmount", "mount_setattr", "setns_net", "setns_init_mnt", "clone_newuser", "clone_newns",
    "clone_newnet", "clone_newpid", "clone_newipc", "clone_newuts", "clone_newcgroup",
    "unshare_newtime", "open_by_handle_at", "kexec_load", "init_module", "socket_vsock",
    "socket_alg", "socket_packet_inet", "socket_raw6", "socket_family_high",
    "netlink_sock_diag", "netlink_netfilter", "netlink_uevent", "acct", "syslog", "iopl",
    "vhangup", "fanotify_init", "seccomp_listener", "tiocsti", "tiocsti_high_bits",
    "tioclinux", "tiocsti_stdin",
}


def _compile(dst_dir):
    cc = shutil.which("cc")
    if not cc:
        pytest.fail("no C compiler (cc): run scripts/setup")
    src = os.path.join(dst_dir, "probe.c")
    with open(src, "w") as f:
        f.write(PROBE_C)
    exe = os.path.join(dst_dir, "probe")
    subprocess.run([cc, "-O0", "-w", "-o", exe, src], check=True, timeout=60)
    os.chmod(exe, 0o755)
    return exe


@pytest.mark.timeout(90)
def test_kernel_attack_surface_and_escape_calls_refused_and_counted(sandbox):
    exe = _compile(sandbox.work)
    # /dev/pts read-write, as cordon's default policy has it: new ptys work
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work + ", /dev/pts"),
                               name="pts.yaml")
    r = sandbox.run([exe], policy=pol)
    assert r.code == 0, r
    res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
    missing = REFUSED - set(res)
    assert not missing, (missing, r)
    got = {k: res[k] for k in REFUSED if res[k] != "EPERM"}
    assert not got, got
    assert res["clone3_newuser"] == "ENOSYS", res        # libc falls back to clone
    # opening init's namespace is refused before setns is even tried
    assert res["open_init_mntns"] == "EACCES", res
    assert res["capset_all"] == "EPERM", res             # the kernel's: no caps to raise
    assert res["mknod_null"] in ("EPERM", "EACCES"), res
    assert res["posix_openpt"] == "ok" and res["open_pts"] == "ok", res   # the pty is real
    # Each seccomp refusal is counted (the argument rules under their call's name).
    ref = r.events("sandbox_exit")[0]["refusals"]
    by = ref["seccomp_by_syscall"]
    for name in ("io_uring_setup", "userfaultfd", "keyctl", "perf_event_open", "bpf",
                 "pivot_root", "open_tree", "fsopen", "setns", "open_by_handle_at",
                 "seccomp", "unshare"):
        assert by.get(name, 0) >= 1, (name, by)
    assert by.get("clone", 0) == 7, by
    assert by.get("socket", 0) == 8, by
    assert by.get("ioctl", 0) == 4, by
    assert "clone3" not in by, by                       # ENOSYS stays silent
    assert ref["seccomp_denials"] == sum(by.values()), ref


TMPFS_PROBE = r"""
import errno, os
mem = int([l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal:")][0]) * 1024
for p in ("/tmp", os.environ["HOME"], "/dev/shm"):
    st = os.statvfs(p)
    size = st.f_blocks * st.f_frsize
    print("%s size_fraction=%.3f inodes=%d" % (p, size / mem, st.f_files))
    if size < mem:           # bounded: asking for more than the size fails at once
        fd = os.open(p + "/fill", os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            os.posix_fallocate(fd, 0, size + (1 << 20))
            print("%s fallocate ok" % p)
        except OSError as e:
            print("%s fallocate %s" % (p, errno.errorcode[e.errno]))
        os.close(fd)
        os.unlink(p + "/fill")
"""


@pytest.mark.timeout(60)
def test_private_tmpfs_have_a_size(sandbox):
    path = os.path.join(sandbox.work, "tmpfs.py")
    with open(path, "w") as f:
        f.write(TMPFS_PROBE)
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro,
                                                  rw=sandbox.work + ", /tmp, /dev/shm"),
                               name="tmp.yaml")
    r = sandbox.run([PY, path], policy=pol)
    assert r.code == 0, r
    lines = {l.split()[0]: l for l in r.out.splitlines() if "size_fraction" in l}
    home = [k for k in lines if k not in ("/tmp", "/dev/shm")]
    assert len(lines) == 3 and home == ["/run/cordon-home"], r.out
    total = 0.0
    for p, line in lines.items():
        frac = float(line.split("size_fraction=")[1].split()[0])
        inodes = int(line.split("inodes=")[1])
        assert 0 < frac <= 0.21, line                  # never tmpfs's default of 50 %
        assert inodes <= 1 << 20, line
        total += frac
        assert "%s fallocate ENOSPC" % p in r.out, r.out
    assert total <= 0.51, r.out                        # all three together: half the memory


ABI_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs one attempt in a child; prints how it ended. */
static void attempt(const char *name, int which)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        long rc;
        if (which == 0) {
            /* x32: unshare(CLONE_NEWUSER) with the x32 bit */
            rc = syscall(0x40000000L | SYS_unshare, CLONE_NEWUSER);
        } else {
            /* i386 int 0x80: unshare is 310 there */
            long nr = 310, flags = CLONE_NEWUSER;
            __asm__ volatile("int $0x80" : "=a"(rc) : "a"(nr), "b"(flags) : "memory");
            if (rc < 0) {
                errno = (int)-rc;
                rc = -1;
            }
        }
        printf("%s: %s\n", name, rc == 0 ? "ran" : strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s: killed by %s\n", name, sigabbrev_np(WTERMSIG(st)));
}

int main(void)
{
    attempt("x32_unshare", 0);
    attempt("int80_unshare", 1);
    return 0;
}

"""


@pytest.mark.timeout(60)
def test_foreign_syscall_abis_never_run(sandbox):
    """The filter is written for x86_64 numbers: a call through the x32 ABI
    (number | 0x40000000) or the i386 one (int 0x80) must not slip past it
    under another number. Each attempt (unshare(CLONE_NEWUSER)) runs in a
    child that is killed: SIGSYS from the filter's bad-architecture action,
    or SIGSEGV where the kernel has no i386 emulation at all."""
    cc = shutil.which("cc")
    if not cc:
        pytest.fail("no C compiler (cc): run scripts/setup")
    src = os.path.join(sandbox.work, "abi.c")
    with open(src, "w") as f:
        f.write(ABI_C)
    exe = os.path.join(sandbox.work, "abi")
    subprocess.run([cc, "-w", "-o", exe, src], check=True, timeout=60)
    r = sandbox.run([exe])
    assert r.code == 0, r
    res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
    assert res["x32_unshare"] == "killed by SYS", res
    assert res["int80_unshare"] in ("killed by SYS", "killed by SEGV"), res


OTHER_PID_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static void res(const char *name, long rc)
{
    printf("%s: %s\n", name, rc >= 0 ? "ok" : strerrorname_np(errno));
}
int main(void)
{
    int p[2];
    if (pipe(p) < 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char c = 'x';
        write(p[1], &c, 1);
        pause();
        _exit(0);
    }
    char c;
    read(p[0], &c, 1);
    void *pages[1] = {(void *)main};
    int status[1];
    unsigned long mask = 1;
    void *head;
    size_t len;
    res("move_pages_sibling", syscall(SYS_move_pages, pid, 1, pages, NULL, status, 0));
    res("migrate_pages_sibling", syscall(SYS_migrate_pages, pid, 64, &mask, &mask));
    res("get_robust_list_sibling", syscall(SYS_get_robust_list, pid, &head, &len));
    res("move_pages_high_bits", syscall(SYS_move_pages, 0x100000000L | pid, 1, pages, NULL,
                                        status, 0));
    res("move_pages_self", syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0));
    res("get_robust_list_self", syscall(SYS_get_robust_list, 0, &head, &len));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}
"""


@pytest.mark.timeout(60)
def test_other_processes_memory_layout_is_not_readable(sandbox):
    """move_pages (which addresses of a sibling are mapped), migrate_pages
    and get_robust_list (an address inside a sibling's libc) on another
    process of the sandbox: refused and counted; on the caller itself
    (pid 0) they work."""
    cc = shutil.which("cc")
    if not cc:
        pytest.fail("no C compiler (cc): run scripts/setup")
    src = os.path.join(sandbox.work, "otherpid.c")
    with open(src, "w") as f:
        f.write(OTHER_PID_C)
    exe = os.path.join(sandbox.work, "otherpid")
    subprocess.run([cc, "-w", "-o", exe, src], check=True, timeout=60)
    r = sandbox.run([exe])
    assert r.code == 0, r
    res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
    for k in ("move_pages_sibling", "migrate_pages_sibling", "get_robust_list_sibling",
              "move_pages_high_bits"):
        assert res[k] == "EPERM", (k, res)
    assert res["move_pages_self"] == "ok" and res["get_robust_list_self"] == "ok", res
    by = r.events("sandbox_exit")[0]["refusals"]["seccomp_by_syscall"]
    assert by == {"move_pages": 2, "migrate_pages": 1, "get_robust_list": 1}, by
    ev = r.events("syscall_refused", syscall="get_robust_list")
    assert ev and "robust-futex" in ev[0]["reason"], ev
