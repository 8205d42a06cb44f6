"""cordon run: the command's process — exit status, signals, stdio, the
interactive terminal, and nothing outliving the supervisor."""
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from lib import util
from sandbox_fixtures import pids_matching, sandbox  # noqa: F401  (fixture)


@pytest.mark.timeout(30)
def test_exit_status(sandbox):
    assert sandbox.run(["sh", "-c", "exit 3"]).code == 3
    assert sandbox.run(["true"]).code == 0
    r = sandbox.run(["sh", "-c", "kill -TERM $$"])
    assert r.code == 128 + signal.SIGTERM, r
    r = sandbox.run(["sh", "-c", "kill -KILL $$"])
    assert r.code == 128 + signal.SIGKILL, r
    ex = sandbox.run(["true"]).events("sandbox_exit")
    assert ex and ex[0]["exit_code"] == 0


@pytest.mark.timeout(30)
def test_exec_errors(sandbox):
    r = sandbox.run(["/no/such/program"])
    assert r.code == 127 and "No such file or directory" in r.err, r
    r = sandbox.run(["no-such-program-in-path"])
    assert r.code == 127, r
    r = sandbox.run([sandbox.ro + "/file.txt"])     # readable, not executable
    assert r.code == 126 and "Permission denied" in r.err, r


@pytest.mark.timeout(30)
def test_stdio_passes_through(sandbox):
    data = "".join("line %d\n" % i for i in range(2000))
    r = sandbox.run(["sh", "-c", "cat; echo to-stderr >&2"], input=data)
    assert r.code == 0, r
    assert r.out == data
    assert "to-stderr" in r.err


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_signals_forwarded(sandbox, sig):
    script = ("trap 'echo got-%d; exit 42' %d; echo ready; "
              "while :; do sleep 0.05; done" % (sig, sig))
    p = sandbox.start(["sh", "-c", script])
    sandbox.wait_output(p, "ready")
    p.send_signal(sig)
    r = sandbox.finish(p, timeout=10)
    assert r.code == 42, r
    assert "got-%d" % sig in r.out


@pytest.mark.timeout(30)
def test_signal_kills_command(sandbox):
    p = sandbox.start(["sleep", "100"])
    util.wait_until(lambda: sandbox_started(p), 10, what="sandbox_start")
    p.send_signal(signal.SIGTERM)
    r = sandbox.finish(p, timeout=10)
    assert r.code == 128 + signal.SIGTERM, r


def sandbox_started(p):
    try:
        return "sandbox_start" in open(p.audit_path).read()
    except FileNotFoundError:
        return False


@pytest.mark.timeout(30)
def test_nothing_outlives_supervisor_kill9(sandbox):
    marker = "1234.%d" % os.getpid()
    script = ("setsid sleep %s & (trap '' HUP TERM; sleep %s) & nohup sleep %s >/dev/null & "
              "echo ready; wait" % (marker, marker, marker))
    p = sandbox.start(["sh", "-c", script])
    sandbox.wait_output(p, "ready")
    util.wait_until(lambda: len(pids_matching("sleep\0" + marker)) == 3, 5,
                    what="three sleeps inside")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(5)
    util.wait_until(lambda: not pids_matching(marker), 5,
                    what="no process of the sandbox left after kill -9 of the supervisor")


@pytest.mark.timeout(30)
def test_background_processes_end_with_command(sandbox):
    marker = "1235.%d" % os.getpid()
    r = sandbox.run(["sh", "-c", "setsid sleep %s & echo started" % marker])
    assert r.code == 0 and "started" in r.out
    util.wait_until(lambda: not pids_matching(marker), 5, what="the background sleep to die")


def _pty_run(argv, inputs, timeout=15):
    """Runs argv on a fresh pty; feeds inputs (bytes) once output appears;
    returns (exit code, all output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.pop("HTTP_PROXY", None)
        os.execv(argv[0], argv)
    out = b""
    seen = 0
    deadline = time.monotonic() + timeout
    pending = list(inputs)
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if pending and pending[0][0] in out[seen:]:
                # Let the program settle into reading (readline may flush
                # input typed before it set up the terminal).
                time.sleep(0.2)
                seen = len(out)
                os.write(fd, pending.pop(0)[1])
        _, st = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return os.waitstatus_to_exitcode(st), out.decode("utf-8", "replace")


@pytest.mark.timeout(30)
def test_interactive_tty(sandbox):
    argv, _ = sandbox.argv(["sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty; "
                            "ps -o pid=,sid=,tpgid= -p $$; read x; echo got=$x; exit 5"])
    code, out = _pty_run(argv, [(b"both-tty", b"hello\r")])
    assert code == 5, out
    assert "/dev/pts/" in out and "both-tty" in out, out
    assert "got=hello" in out, out


@pytest.mark.timeout(30)
def test_bash_is_usable(sandbox):
    argv, _ = sandbox.argv(["bash", "--norc", "--noprofile", "-i"])
    code, out = _pty_run(argv, [(b"$ ", b"echo sum=$((6*7))\r"),
                                (b"sum=42", b"echo st''arted; sleep 30\r"),
                                (b"started", b"\x03"),                # Ctrl-C inside
                                (b"$ ", b"echo af''ter=$?; exit 7\r")])
    assert "sum=42" in out, out
    assert "after=130" in out, out             # SIGINT reached sleep, not cordon
    assert "no job control" not in out, out
    assert code == 7, out


@pytest.mark.timeout(30)
def test_tty_not_shared_with_caller(sandbox):
    # TIOCSTI into our terminal must fail (fresh session + seccomp).
    script = ("import fcntl, termios\n"
              "try:\n  fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('sti=ok')\n"
              "except OSError as e:\n  print('sti=%d' % e.errno)\n")
    argv, _ = sandbox.argv(["/usr/bin/python3", "-c", script])
    code, out = _pty_run(argv, [])
    assert code == 0, out
    assert "sti=1" in out, out                 # EPERM
