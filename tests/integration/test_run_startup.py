"""cordon run's start-up order: the proxy's TLS set-up (its TLS contexts and
the upstream trust anchors of --upstream-ca) finishes while the command
starts. A connection that needs TLS before it is done waits for it and is
then served; a set-up that fails stops the sandbox with a clear error.

The set-up is held back deterministically by giving --upstream-ca a FIFO:
the proxy's TLS thread reads it, and blocks until the test writes it."""
import os
import time

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from test_run_tls import policy  # the same inspected-upstream policy as the TLS tests

pytest_plugins = ["inspect_fixtures"]


def fifo(sb):
    path = os.path.join(sb.dir, "upstream-ca.fifo")
    os.mkfifo(path, 0o600)
    return path


def wait_for(pred, what, p, timeout=30):
    deadline = time.monotonic() + timeout
    while not pred():
        assert p.poll() is None, "cordon run exited (%r) while waiting for %s" % (p.poll(), what)
        assert time.monotonic() < deadline, "no %s within %ss" % (what, timeout)
        time.sleep(0.02)


def audit_has(path, text):
    try:
        with open(path) as f:
            return text in f.read()
    except OSError:
        return False


@pytest.mark.timeout(120)
def test_connection_waits_for_late_tls_setup(sandbox, inet):
    ca_fifo = fifo(sandbox)
    script = ("echo started; "
              "curl -sS -m 60 -w '\\nstatus=%{http_code}\\n' https://api.insp.test/allowed/x")
    p = sandbox.start(["sh", "-c", script], args=["--upstream-ca", ca_fifo],
                      policy=policy(sandbox, inet))
    # The command runs although the proxy's TLS set-up cannot finish yet
    # (its upstream trust anchors are still unread).
    sandbox.wait_output(p, "started", timeout=60)
    # curl's CONNECT was decided; its TLS handshake now waits for the set-up.
    wait_for(lambda: audit_has(p.audit_path, '"host":"api.insp.test"'), "CONNECT decision", p)
    assert "status=" not in open(p.out_path).read()
    with open(inet.ca) as src, open(ca_fifo, "w") as dst:
        dst.write(src.read())
    r = sandbox.finish(p, timeout=90)
    assert r.code == 0, r
    assert '"target": "/allowed/x"' in r.out and "status=200" in r.out, r
    assert r.events("decision", decision="allow", host="api.insp.test")


@pytest.mark.timeout(120)
def test_failed_late_tls_setup_stops_the_sandbox(sandbox, inet):
    ca_fifo = fifo(sandbox)
    p = sandbox.start(["sh", "-c", "echo started; exec sleep 300"],
                      args=["--upstream-ca", ca_fifo], policy=policy(sandbox, inet))
    sandbox.wait_output(p, "started", timeout=60)
    with open(ca_fifo, "w") as dst:
        dst.write("not a certificate\n")
    r = sandbox.finish(p, timeout=60)     # not the 300 s of the command
    assert r.code == 125, r
    assert "cannot load upstream CA certificates" in r.err, r
    assert "the egress proxy could not finish starting" in r.err, r
    assert "the sandbox is stopped" in r.err, r
    assert r.wall < 60, r


@pytest.mark.timeout(60)
def test_missing_upstream_ca_is_refused_before_the_start(sandbox):
    r = sandbox.run(["sh", "-c", "echo ran"],
                    args=["--upstream-ca", os.path.join(sandbox.dir, "missing.pem")])
    assert r.code == 125, r
    assert "ran" not in r.out, r
    assert "--upstream-ca" in r.err and "the command was not started" in r.err, r


@pytest.mark.timeout(60)
def test_bad_upstream_ca_stops_the_sandbox(sandbox):
    bad = os.path.join(sandbox.dir, "bad.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    # Read while the sandbox is built or after the command started (the
    # order is the scheduler's): either way cordon run fails with 125 and
    # says why.
    r = sandbox.run(["sh", "-c", "sleep 30"], args=["--upstream-ca", bad])
    assert r.code == 125, r
    assert "cannot load upstream CA certificates" in r.err, r
    assert "the egress proxy could not finish starting" in r.err, r
    assert r.wall < 30, r
