"""Escape attempts from one sandbox into another running at the same time
(the same user id inside both): sandbox A holds an abstract unix socket, a
SysV message queue and shared-memory segment under a fixed key, files in
its private /tmp, /dev/shm and HOME; sandbox B reaches none of them."""
import ctypes  # noqa: F401  (used inside the probes)
import os

import pytest

from lib import util
from sandbox_fixtures import BASE_POLICY, _read, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"
KEY = 0x0C0D0A11

HOLDER = r"""
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0cordon-cross-sandbox")
s.listen(8)
q = libc.msgget(%(key)d, 0o1666)          # IPC_CREAT | 0666
m = libc.shmget(%(key)d, 4096, 0o1666)
for p in ("/tmp/a-secret", "/dev/shm/a-secret", os.environ["HOME"] + "/a-secret"):
    open(p, "w").write("A's data\n")
open(sys.argv[1] + "/a-ready", "w").write("%%d %%d\n" %% (q, m))
while not os.path.exists(sys.argv[1] + "/a-done"):
    time.sleep(0.05)
"""

PROBER = r"""
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def res(name, rc_or_fn):
    try:
        rc = rc_or_fn() if callable(rc_or_fn) else rc_or_fn
        if isinstance(rc, int) and rc < 0:
            print("%%s: %%s" %% (name, errno.errorcode.get(ctypes.get_errno(), "?")))
        else:
            print(name + ": ok")
    except OSError as e:
        print("%%s: %%s" %% (name, errno.errorcode.get(e.errno, str(e.errno))))
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0cordon-cross-sandbox")
res("abstract", conn)
res("msgget", lambda: libc.msgget(%(key)d, 0o666))
res("shmget", lambda: libc.shmget(%(key)d, 4096, 0o666))
for p in ("/tmp/a-secret", "/dev/shm/a-secret", os.environ["HOME"] + "/a-secret"):
    res("file " + p.rsplit("/", 2)[1], lambda p=p: open(p).read())
"""


@pytest.mark.timeout(60)
def test_nothing_of_one_sandbox_reaches_another(sandbox):
    holder = os.path.join(sandbox.work, "holder.py")
    prober = os.path.join(sandbox.work, "prober.py")
    with open(holder, "w") as f:
        f.write(HOLDER % {"key": KEY})
    with open(prober, "w") as f:
        f.write(PROBER % {"key": KEY})
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro,
                                                  rw=sandbox.work + ", /tmp, /dev/shm"),
                               name="tmp.yaml")
    a = sandbox.start([PY, holder, sandbox.work], policy=pol)
    try:
        util.wait_until(lambda: os.path.exists(sandbox.work + "/a-ready") or
                        a.poll() is not None, 20, what="sandbox A's objects")
        assert a.poll() is None, _read(a.err_path)
        q, m = (int(x) for x in open(sandbox.work + "/a-ready").read().split())
        assert q >= 0 and m >= 0, (q, m)            # A really made them
        r = sandbox.run([PY, prober], policy=pol)
        assert r.code == 0, r
        res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
        assert res["abstract"] == "ECONNREFUSED", res  # another network namespace
        assert res["msgget"] == "ENOENT" and res["shmget"] == "ENOENT", res  # another IPC ns
        for k in ("file tmp", "file shm", "file cordon-home"):
            assert res[k] == "ENOENT", (k, res)
    finally:
        open(sandbox.work + "/a-done", "w").close()
    assert sandbox.finish(a).code == 0
