"""cordon status: the running sandboxes, from their control sockets."""
import json
import os
import subprocess

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from test_run_ux import wait_for, curl


def _status(cordon_bin, *args):
    return subprocess.run([cordon_bin, "status"] + list(args), capture_output=True, text=True,
                          timeout=10)


def _mine(cordon_bin, name):
    r = _status(cordon_bin, "--json")
    assert r.returncode == 0, r.stderr
    return [o for o in json.loads(r.stdout) if o["name"] == name]


@pytest.mark.timeout(60)
def test_status_lists_a_running_sandbox(sandbox, cordon_bin, testnet):
    name = sandbox.name()
    # one denial, one allowed request, then wait for ./next
    script = ("echo d=$(%s); echo a=$(%s); echo ready; while [ ! -e next ]; do sleep 0.05; done"
              % (curl("http://denied.test/"), curl("http://allowed.test/")))
    p = sandbox.start(["sh", "-c", script], args=["--name", name, "--revoke-on-reload"])
    sandbox.wait_output(p, "ready")
    wait_for(lambda: _mine(cordon_bin, name), what="the sandbox in cordon status")
    o = _mine(cordon_bin, name)[0]
    assert o["pid"] == p.pid and o["enforcing"] is True and o["self_test"] == "passed", o
    assert o["policy"] == sandbox.policy and o["generation"] == 1, o
    assert o["denied"] == 1 and o["allowed"] == 1 and o["bypass_attempts"] == 0, o
    assert o["audit_log"] == p.audit_path and o["address"].startswith("10.200."), o
    assert o["revoke_on_reload"] is True and o["learn"] is False
    assert isinstance(o["connections"], int) and o["uptime_s"] >= 0
    # a reload shows in the generation
    p.send_signal(1)
    wait_for(lambda: _mine(cordon_bin, name)[0]["generation"] == 2, what="generation 2")
    # text: a header and one line for it
    r = _status(cordon_bin)
    assert r.returncode == 0 and r.stdout.startswith("NAME"), r.stdout
    line = [l for l in r.stdout.splitlines() if l.startswith(name + " ")]
    assert line and " yes " in line[0] and str(p.pid) in line[0] and sandbox.policy in line[0]
    r = _status(cordon_bin, name)
    assert r.returncode == 0 and name in r.stdout
    open(os.path.join(sandbox.work, "next"), "w").close()
    res = sandbox.finish(p)
    assert res.code == 0, res
    # gone with it
    r = _status(cordon_bin, name)
    assert r.returncode == 2 and "no sandbox named %s is running" % name in r.stderr
    assert not _mine(cordon_bin, name)


def test_status_options(cordon_bin):
    r = _status(cordon_bin, "--jsn")
    assert r.returncode == 2 and "did you mean '--json'" in r.stderr
    r = _status(cordon_bin, "--help")
    assert r.returncode == 0 and "--json" in r.stdout
    r = subprocess.run([cordon_bin, "help"], capture_output=True, text=True)
    assert "status" in r.stdout


@pytest.mark.timeout(60)
def test_status_finds_a_sandbox_among_many_dead_sockets(sandbox, cordon_bin):
    """Sockets left by killed supervisors stay in the control directory; a
    running sandbox is listed however many there are (a cap of 1024 once hid
    it)."""
    import socket
    ctl = "/run/cordon/ctl"
    os.makedirs(ctl, mode=0o700, exist_ok=True)
    dead = []
    try:
        for i in range(1100):
            path = os.path.join(ctl, "dead-%d-%d.ctl" % (os.getpid(), i))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)     # bound, never listening, closed: nobody answers
            s.close()
            dead.append(path)
        name = sandbox.name()
        p = sandbox.start(["sh", "-c", "echo ready; while [ ! -e next ]; do sleep 0.05; done"],
                          args=["--name", name])
        sandbox.wait_output(p, "ready")
        assert _mine(cordon_bin, name), "the running sandbox is not listed"
        open(os.path.join(sandbox.work, "next"), "w").close()
        assert sandbox.finish(p).code == 0
    finally:
        for path in dead:
            if os.path.exists(path):     # cordon status removes dead sockets itself
                os.unlink(path)
