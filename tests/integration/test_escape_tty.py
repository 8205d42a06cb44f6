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
