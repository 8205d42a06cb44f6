"""Refusals are counted and named (issue 12 item 9): a probe inside
`cordon run` tries to cross the sandbox's boundaries as an attacker would —
ptrace and process_vm_readv on another process of the sandbox, a signal to
a host process and to the sandbox's init, a write outside the allowed paths
— and each refusal it meets is a `syscall_refused` / `signal_refused` event
naming the process, and a count in `sandbox_exit`'s "refusals" object.
Landlock's denials cannot be counted here (the kernel reports them only to
the host's audit subsystem): the event says null and why."""
import os

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

PROBE = r"""
import ctypes, errno, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def res(name, fn):
    try:
        rc = fn()
        ok = rc is None or rc >= 0
        print(name + ": " + ("ok" if ok else errno.errorcode.get(ctypes.get_errno(), "?")))
    except OSError as e:
        print(name + ": " + errno.errorcode.get(e.errno, "?"))
r, w = os.pipe()
victim = os.fork()
if victim == 0:
    os.close(r); os.write(w, b"x"); time.sleep(60); os._exit(0)
os.close(w); os.read(r, 1)
buf = ctypes.create_string_buffer(16)
iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
res("ptrace_attach", lambda: libc.syscall(101, 16, victim, 0, 0))
res("process_vm_readv", lambda: libc.syscall(310, victim, iov, 1, iov, 1, 0))
host = int(sys.argv[1])
print("host_pid_visible: %s" % os.path.exists("/proc/%d" % host))
res("kill_host", lambda: os.kill(host, 15))
res("kill_init", lambda: os.kill(1, 15))
res("kill_self", lambda: os.kill(os.getpid(), 0))
res("kill_victim", lambda: os.kill(victim, 0))
# A seccomp listener of our own would get the calls cordon refuses (and
# could let them run): refused before the kernel looks at the program.
res("own_listener", lambda: libc.syscall(317, 1, 8, None))
res("write_usr", lambda: open("/usr/cordon-refusal-probe", "w").close())
res("write_unlisted", lambda: open(sys.argv[2] + "/x", "w").close())
os.kill(victim, 9); os.waitpid(victim, 0)
"""


def _exit_refusals(r):
    ex = r.events("sandbox_exit")
    assert ex, r.audit()
    return ex[0]["refusals"]


@pytest.mark.timeout(60)
def test_crossing_each_boundary_is_counted_and_named(sandbox):
    path = os.path.join(sandbox.work, "probe.py")
    with open(path, "w") as f:
        f.write(PROBE)
    host_pid = os.getpid()   # the test runner: a host process, outside the sandbox
    r = sandbox.run([PY, path, str(host_pid), sandbox.secret])
    assert r.code == 0, r
    res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
    assert res["host_pid_visible"] == "False", res    # the number names nothing inside
    assert res["ptrace_attach"] == "EPERM", res
    assert res["process_vm_readv"] == "EPERM", res
    assert res["kill_host"] == "ESRCH", res
    assert res["kill_init"] == "EPERM", res
    assert res["kill_self"] == "ok" and res["kill_victim"] == "ok", res  # not refusals
    assert res["own_listener"] == "EPERM", res               # EFAULT if it got through
    assert res["write_usr"] == "EROFS", res
    assert res["write_unlisted"] in ("ENOENT", "EACCES"), res

    # Each refusal is named with the process that tried it.
    sc = r.events("syscall_refused")
    assert sorted(e["syscall"] for e in sc) == ["process_vm_readv", "ptrace", "seccomp"], sc
    for e in sc:
        assert e["binary"].startswith("/usr/bin/python3"), e
        assert e["errno"] == "EPERM" and e["pid"] > 0 and e["reason"], e
    sig = r.events("signal_refused")
    by_target = {e["target_pid"]: e for e in sig}
    assert set(by_target) == {host_pid, 1}, sig
    assert by_target[host_pid]["errno"] == "ESRCH" and by_target[host_pid]["signal"] == 15
    assert by_target[1]["errno"] == "EPERM"
    assert all(e["binary"].startswith("/usr/bin/python3") for e in sig), sig

    # ... and summed up at the end.
    ref = _exit_refusals(r)
    assert ref["seccomp_denials"] == 3, ref
    assert ref["seccomp_by_syscall"] == {"ptrace": 1, "process_vm_readv": 1, "seccomp": 1}, ref
    assert ref["signal_denials"] == 2, ref
    assert ref["landlock_denials"] is None and "audit" in ref["landlock_denials_why"], ref


@pytest.mark.timeout(60)
def test_nothing_refused_counts_zero(sandbox):
    # A shell that signals itself and its own child: ordinary, not refusals.
    r = sandbox.run(["sh", "-c", "sleep 5 & kill $!; wait; kill -0 $$; echo done"])
    assert r.code == 0 and "done" in r.out, r
    ref = _exit_refusals(r)
    assert ref["seccomp_denials"] == 0 and ref["signal_denials"] == 0, ref
    assert ref["seccomp_by_syscall"] == {}, ref
    assert not r.events("syscall_refused") and not r.events("signal_refused"), r.audit()


FLOOD = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for i in range(2000):
    assert libc.syscall(312, 0, 0, 0, 0, 0) < 0      # kcmp: refused
print("flooded")
"""


@pytest.mark.timeout(60)
def test_events_are_rate_limited_counts_are_not(sandbox):
    path = os.path.join(sandbox.work, "flood.py")
    with open(path, "w") as f:
        f.write(FLOOD)
    # The bucket holds 50 events and refills 10 per second; the run is bounded
    # by 30 s, so at most 50 + 300 of the 2000 refusals can be events,
    # however slow the machine is: the bounds below do not depend on timing.
    r = sandbox.run([PY, path], timeout=30)
    assert r.code == 0 and "flooded" in r.out, r
    ev = r.events("syscall_refused", syscall="kcmp")
    ref = _exit_refusals(r)
    assert ref["seccomp_by_syscall"] == {"kcmp": 2000}, ref
    assert 50 <= len(ev) <= 350, len(ev)
    # Every refusal is either an event or reported as suppressed.
    suppressed = sum(e.get("suppressed_before", 0) for e in ev) + ref.get("events_suppressed", 0)
    assert len(ev) + suppressed == 2000, (len(ev), suppressed)
