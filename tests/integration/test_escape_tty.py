"""Escape attempts through terminals: with a pty, the command sees the
host's devpts (so `tty` names its own terminal), but it can open no pty
but its own — not the caller's terminal, not another terminal of the host
(a root-owned one the test opens) — and keystroke injection (TIOCSTI,
TIOCLINUX) into its own terminal is refused and counted."""
import os
import pty

import pytest

from sandbox_fixtures import read_audit, sandbox  # noqa: F401  (fixture)
from test_run_process import _pty_run

SCRIPT = r"""
import errno, fcntl, os, termios
mine = os.path.realpath(os.ttyname(0))
print("mine=" + mine)
for n in sorted(os.listdir("/dev/pts")):
    p = "/dev/pts/" + n
    if n == "ptmx" or os.path.realpath(p) == mine:
        continue
    try:
        os.close(os.open(p, os.O_RDWR | os.O_NOCTTY)); r = "ok"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print("open %s=%s" % (p, r))
for name, req in (("sti", termios.TIOCSTI), ("linux", 0x541C)):
    try:
        fcntl.ioctl(0, req, b"\x0c"); print(name + "=ok")
    except OSError as e:
        print("%s=%s" % (name, errno.errorcode.get(e.errno, str(e.errno))))
"""


@pytest.mark.timeout(30)
def test_no_pty_but_its_own(sandbox):
    # another terminal of the host, open while the sandbox runs
    other_m, other_s = pty.openpty()
    other = os.ttyname(other_s)
    path = os.path.join(sandbox.work, "tty.py")
    with open(path, "w") as f:
        f.write(SCRIPT)
    try:
        argv, audit = sandbox.argv(["/usr/bin/python3", path])
        code, out = _pty_run(argv, [])
    finally:
        os.close(other_m)
        os.close(other_s)
    assert code == 0, out
    opened = dict(l.split(" ", 1)[1].split("=") for l in out.splitlines()
                  if l.startswith("open "))
    assert other in opened, (other, out)          # the host's terminals are visible...
    assert all(v in ("EACCES", "EPERM", "EIO") for v in opened.values()), out   # ...not openable
    assert "sti=EPERM" in out and "linux=EPERM" in out, out
    ref = [e for e in read_audit(audit) if e.get("event") == "sandbox_exit"][0]["refusals"]
    assert ref["seccomp_by_syscall"].get("ioctl") == 2, ref


CALLER_TTY = r"""
import errno, fcntl, os, termios, sys
def res(name, fn):
    try:
        fn(); r = "ok"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    sys.stderr.write("%s=%s\n" % (name, r))
res("isatty1", lambda: None if os.isatty(1) else (_ for _ in ()).throw(OSError(errno.ENOTTY, "")))
res("sti", lambda: fcntl.ioctl(1, termios.TIOCSTI, b"x"))
res("sctty", lambda: fcntl.ioctl(1, termios.TIOCSCTTY, 0))
res("sctty_steal", lambda: fcntl.ioctl(1, termios.TIOCSCTTY, 1))
res("spgrp", lambda: fcntl.ioctl(1, termios.TIOCSPGRP, (os.getpgrp()).to_bytes(4, "little")))
res("dev_tty", lambda: os.close(os.open("/dev/tty", os.O_RDWR)))
"""


@pytest.mark.timeout(30)
def test_callers_terminal_as_stdout_cannot_be_taken_over(sandbox):
    """stdin is not a terminal, so the command gets no pty of its own: the
    caller's terminal (the controlling terminal of cordon's session, as in
    a shell) is its stdout as it is. It cannot push input into it (TIOCSTI),
    make it its controlling terminal (it runs in a session of its own, the
    terminal belongs to the caller's; stealing needs CAP_SYS_ADMIN), move
    the terminal's foreground group or open /dev/tty."""
    path = os.path.join(sandbox.work, "caller.py")
    with open(path, "w") as f:
        f.write(CALLER_TTY)
    argv, audit = sandbox.argv(["/usr/bin/python3", path])
    errp = os.path.join(sandbox.dir, "caller-stderr.txt")
    pid, fd = pty.fork()
    if pid == 0:
        # the session leader whose controlling terminal the pty is; stdin
        # is not a terminal, stderr goes to a file
        dn = os.open("/dev/null", os.O_RDONLY)
        os.dup2(dn, 0)
        ef = os.open(errp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(ef, 2)
        os.execv(argv[0], argv)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, st = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    with open(errp) as f:
        err = f.read()
    assert os.waitstatus_to_exitcode(st) == 0, err
    res = dict(l.split("=", 1) for l in err.splitlines() if "=" in l and " " not in l)
    assert res["isatty1"] == "ok", err                # the caller's terminal, really
    assert res["sti"] == "EPERM", res
    assert res["sctty"] == "EPERM" and res["sctty_steal"] == "EPERM", res
    assert res["spgrp"] == "ENOTTY", res               # not its controlling terminal
    assert res["dev_tty"] in ("ENXIO", "EACCES"), res  # it has none
