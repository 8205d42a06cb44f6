"""cordon run: nothing leaks onto the host, and many sandboxes coexist."""
import os
import signal
import subprocess
import threading
import time

import pytest

from lib import util
from sandbox_fixtures import (added, host_state, pids_matching, quiet_host_state, sandbox,  # noqa: F401
                              wait_nothing_added)


@pytest.mark.timeout(240)
def test_100_runs_then_kill9_leave_nothing(sandbox):
    before = quiet_host_state()
    t0 = time.monotonic()
    for i in range(100):
        r = sandbox.run(["true"], timeout=20)
        assert r.code == 0, (i, r)
    elapsed = time.monotonic() - t0
    extra = wait_nothing_added(before)
    assert not extra, "100 runs left on the host: %r" % extra

    # A supervisor killed with SIGKILL while its command runs.
    marker = "4321.%d" % os.getpid()
    p = sandbox.start(["sh", "-c", "sleep %s & echo ready; wait" % marker])
    sandbox.wait_output(p, "ready")
    during = added(before, host_state())
    assert len(during.get("veths", [])) == 1, during  # the sandbox's veth exists while it runs
    os.kill(p.pid, signal.SIGKILL)
    p.wait(5)
    extra = wait_nothing_added(before)
    assert not extra, "kill -9 of the supervisor left on the host: %r" % extra
    util.wait_until(lambda: not pids_matching(marker), 5, what="the sandbox's processes to die")
    print("100 runs in %.1f s (%.0f ms each)" % (elapsed, elapsed * 10))


@pytest.mark.timeout(120)
def test_20_sandboxes_at_once(sandbox):
    before = quiet_host_state()
    n = 20
    procs = []
    for i in range(n):
        # Each asks the upstream for its own path and prints what came back.
        procs.append(sandbox.start(["sh", "-c", "sleep 0.5; curl -sS -m 20 "
                                    "http://allowed.test/echo/sandbox-%d" % i]))
    results = [sandbox.finish(p, timeout=60) for p in procs]
    subnets = set()
    for i, r in enumerate(results):
        assert r.code == 0, (i, r)
        assert '"path": "/echo/sandbox-%d"' % i in r.out, (i, r.out)
        st = r.events("sandbox_start")[0]
        subnets.add(st["subnet"])
        assert r.events("decision", decision="allow")
    assert len(subnets) == n, subnets            # every sandbox had its own /30
    extra = wait_nothing_added(before)
    assert not extra, "20 sandboxes left on the host: %r" % extra


@pytest.mark.timeout(60)
def test_sandboxes_are_isolated_from_each_other(sandbox):
    # Sandbox A listens on its loopback and on its eth0 address; sandbox B
    # cannot reach either (nor A's proxy, which only serves A).
    script_a = ("ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1 > %s/a-ip; "
                "/usr/bin/python3 -m http.server 8000 --bind 0.0.0.0 >/dev/null 2>&1" % sandbox.work)
    a = sandbox.start(["sh", "-c", script_a])
    util.wait_until(lambda: os.path.exists(sandbox.work + "/a-ip")
                    and open(sandbox.work + "/a-ip").read().strip(), 10, what="A's address")
    a_ip = open(sandbox.work + "/a-ip").read().strip()
    a_gw = a_ip.rsplit(".", 1)[0] + "." + str(int(a_ip.rsplit(".", 1)[1]) - 1)
    r = sandbox.run(["sh", "-c", "curl -sS --noproxy '*' -m 3 http://%s:8000/; echo direct=$?; "
                     "curl -sS -m 3 -x http://%s:3128 http://allowed.test/; "
                     "echo viaA=$?" % (a_ip, a_gw)])
    assert "direct=7" in r.out and "viaA=7" in r.out, r
    a.send_signal(signal.SIGTERM)
    sandbox.finish(a, timeout=10)
