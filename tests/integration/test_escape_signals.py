"""Escape attempts: signals aimed across the sandbox's process boundary
(issue 12 item 9, the variants kill() does not cover).

A probe inside `cordon run` signals the sandbox's init and a host process
with every signal-sending system call the kernel has — tkill, tgkill,
rt_tgsigqueueinfo, pidfd_send_signal (through pidfd_open(1)) — and each is
refused and counted as a `signal_refused` event and in sandbox_exit's
`signal_denials`. Threads signalling their own process (raise(),
pthread_kill(), Go's preemption: tgkill to its own thread group, thousands a
second) and signals to siblings are neither refused nor counted."""
import os

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

PROBE = r"""
import ctypes, errno, os, signal, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS = dict(tkill=200, tgkill=234, rt_tgsigqueueinfo=297, pidfd_send_signal=424, pidfd_open=434)
def sc(name, *args):
    rc = libc.syscall(SYS[name], *[ctypes.c_long(a) for a in args])
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
host = int(sys.argv[1])
r, w = os.pipe()
sib = os.fork()
if sib == 0:
    os.close(r); os.write(w, b"x"); time.sleep(60); os._exit(0)
os.close(w); os.read(r, 1)
info = ctypes.create_string_buffer(128)
info[8:12] = (-1).to_bytes(4, "little", signed=True)     # si_code SI_QUEUE
ctypes.memmove(ctypes.addressof(info) + 16, ctypes.byref(ctypes.c_int(os.getpid())), 4)
print("tkill_init: " + sc("tkill", 1, 15))
print("tgkill_init: " + sc("tgkill", 1, 1, 15))
print("rt_tgsigqueueinfo_init: " + sc("rt_tgsigqueueinfo", 1, 1, 15, ctypes.addressof(info)))
pfd = libc.syscall(SYS["pidfd_open"], 1, 0)
print("pidfd_open_init: " + ("ok" if pfd >= 0 else str(ctypes.get_errno())))
print("pidfd_send_signal_init: " + sc("pidfd_send_signal", pfd, 15, 0, 0))
print("tkill_host: " + sc("tkill", host, 15))
# Not refusals: our own threads, our own process, a sibling.
signal.signal(signal.SIGUSR1, lambda *a: None)
me = os.getpid()
for i in range(300):
    assert libc.syscall(SYS["tgkill"], me, me, 10) == 0
t = threading.Thread(target=time.sleep, args=(0.5,)); t.start()
print("tgkill_own_thread: " + sc("tgkill", me, t.native_id, 0))
t.join()
print("tkill_self: " + sc("tkill", me, 0))
print("tgkill_sibling: " + sc("tgkill", sib, sib, 0))
spfd = libc.syscall(SYS["pidfd_open"], sib, 0)
print("pidfd_send_signal_sibling: " + sc("pidfd_send_signal", spfd, 0, 0, 0))
print("pidfd_send_signal_notpidfd: " + sc("pidfd_send_signal", 0, 0, 0, 0))
os.kill(sib, 9); os.waitpid(sib, 0)
"""


@pytest.mark.timeout(60)
def test_thread_and_pidfd_signals_to_init_and_host_are_refused_and_counted(sandbox):
    path = os.path.join(sandbox.work, "sig.py")
    with open(path, "w") as f:
        f.write(PROBE)
    host_pid = os.getpid()
    r = sandbox.run([PY, path, str(host_pid)])
    assert r.code == 0, r
    res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
    for k in ("tkill_init", "tgkill_init", "rt_tgsigqueueinfo_init", "pidfd_send_signal_init"):
        assert res[k] == "EPERM", (k, res)
    assert res["pidfd_open_init"] == "ok", res        # naming init is fine; signalling it is not
    assert res["tkill_host"] == "ESRCH", res
    for k in ("tgkill_own_thread", "tkill_self", "tgkill_sibling", "pidfd_send_signal_sibling"):
        assert res[k] == "ok", (k, res)
    assert res["pidfd_send_signal_notpidfd"] == "EBADF", res   # the kernel's own answer

    ev = r.events("signal_refused")
    got = sorted((e["syscall"], e["target_pid"], e["signal"], e["errno"]) for e in ev)
    assert got == sorted([("tkill", 1, 15, "EPERM"), ("tgkill", 1, 15, "EPERM"),
                          ("rt_tgsigqueueinfo", 1, 15, "EPERM"),
                          ("pidfd_send_signal", 1, 15, "EPERM"),
                          ("tkill", host_pid, 15, "ESRCH")]), ev
    for e in ev:
        assert e["binary"].startswith("/usr/bin/python3") and e["reason"], e
    ref = r.events("sandbox_exit")[0]["refusals"]
    assert ref["signal_denials"] == 5, ref
    assert ref["seccomp_denials"] == 0, ref
