"""Control sockets of killed supervisors (RUN_CTL_DIR/NAME.ctl) are
removed by `cordon status`, safely: only a socket nobody listens on, never
a live sandbox's, never one a starting sandbox has bound but not yet
listened on (it holds RUN_CTL_DIR/.lock from its check to listen(), and
status removes under the same lock), never a file that is not a socket."""
import fcntl
import os
import socket
import subprocess
import time

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from test_run_status import _mine, _status
from test_run_ux import wait_for

CTL = "/run/cordon/ctl"


def _dead_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                       # the file stays; nobody listens: a killed supervisor's


def _waiting_on_lock(pid, lock_path):
    """True once process pid is blocked in flock on lock_path (/proc/locks
    lists a waiter as '-> ' on the same inode)."""
    ino = os.stat(lock_path).st_ino
    with open("/proc/locks") as f:
        for line in f:
            if "->" in line and (" %d " % pid) in line and (":%d " % ino) in line:
                return True
    return False


@pytest.mark.timeout(90)
def test_status_removes_only_sockets_nobody_listens_on(sandbox, cordon_bin):
    os.makedirs(CTL, mode=0o700, exist_ok=True)
    tag = "stale%d" % os.getpid()
    dead = [os.path.join(CTL, "%s-%d.ctl" % (tag, i)) for i in range(3)]
    for p in dead:
        _dead_socket(p)
    not_sock = os.path.join(CTL, "%s-file.ctl" % tag)
    with open(not_sock, "w") as f:
        f.write("not a socket\n")
    name = sandbox.name()
    p = sandbox.start(["sh", "-c", "echo ready; while [ ! -e next ]; do sleep 0.05; done"],
                      args=["--name", name])
    sandbox.wait_output(p, "ready")
    wait_for(lambda: _mine(cordon_bin, name), what="the sandbox in cordon status")
    try:
        r = _status(cordon_bin, "--json")
        assert r.returncode == 0, r.stderr
        for d in dead:
            assert not os.path.exists(d), d                    # removed
        assert os.path.exists(os.path.join(CTL, name + ".ctl"))   # the live one stays
        assert _mine(cordon_bin, name), "the live sandbox still answers"
        assert os.path.isfile(not_sock)                        # not a socket: kept

        # A starting sandbox between bind() and listen(), holding the lock:
        # status waits for the lock, then finds it listening and keeps it.
        half = os.path.join(CTL, "%s-starting.ctl" % tag)
        lock_path = os.path.join(CTL, ".lock")
        lk = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fcntl.flock(lk, fcntl.LOCK_EX)
            s.bind(half)
            st = subprocess.Popen([cordon_bin, "status", "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
            wait_for(lambda: _waiting_on_lock(st.pid, lock_path) or st.poll() is not None,
                     what="cordon status waiting for the control directory's lock")
            assert st.poll() is None, st.communicate()
            s.listen(8)
            fcntl.flock(lk, fcntl.LOCK_UN)
            # it then asks the socket for its status: answer nothing, close
            s.settimeout(30)
            c, _ = s.accept()
            c.close()
            out, err = st.communicate(timeout=30)
            assert st.returncode == 0, err
            assert os.path.exists(half), "a socket bound under the lock was removed"
        finally:
            s.close()
            os.close(lk)
            if os.path.exists(half):
                os.unlink(half)
    finally:
        open(os.path.join(sandbox.work, "next"), "w").close()
        res = sandbox.finish(p)
        for d in dead + [not_sock]:
            if os.path.exists(d):
                os.unlink(d)
    assert res.code == 0, res
