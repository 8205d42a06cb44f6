"""A client that does not trust the sandbox CA ends the inspected TLS
handshake with an alert: the proxy logs it as `tls_client_rejected` (the
alert and what it means), and the refusal's detail says so."""
import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from test_run_tls import policy

pytest_plugins = ["inspect_fixtures"]

PY = "/usr/bin/python3"
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"   # the host's anchors, not the sandbox CA


@pytest.mark.timeout(60)
def test_client_alert_is_logged(sandbox, inet):
    p = policy(sandbox, inet)
    script = ("curl -sS -m 10 --cacert %s https://api.insp.test/allowed/x 2>&1 | tail -1; "
              "%s -c \"import ssl, urllib.request as u\n"
              "ctx = ssl.create_default_context(cafile='%s')\n"
              "try: u.urlopen('https://api.insp.test/allowed/y', context=ctx, timeout=10)\n"
              "except Exception as e: print('py', type(e).__name__)\"" % (SYSTEM_CAS, PY, SYSTEM_CAS))
    r = sandbox.run(["sh", "-c", script], args=["--upstream-ca", inet.ca], policy=p)
    assert r.code == 0, r
    assert "py URLError" in r.out, r.out
    ev = r.events("tls_client_rejected")
    assert len(ev) == 2, r.audit()
    by = {e["binary"].rsplit("/", 1)[1].rstrip("0123456789."): e for e in ev}
    for name in ("curl", "python"):
        e = by[name]
        assert e["alert"] == "unknown CA" and e["alert_code"] == 48 and e["trust"] is True, e
        assert e["host"] == "api.insp.test" and "does not trust the sandbox CA" in e["detail"]
        assert "doc/tls.md" in e["detail"]
    # the refusal names it too (decision event, terminal line)
    deny = [e for e in r.events("decision", decision="deny", host="api.insp.test")
            if e["reason_code"] == "client_tls_handshake"]
    assert len(deny) == 2 and all("unknown CA" in e["detail"] for e in deny), deny
    assert "does not trust the sandbox CA" in r.err, r.err


@pytest.mark.timeout(60)
def test_trusting_client_has_no_alert(sandbox, inet):
    p = policy(sandbox, inet)
    r = sandbox.run(["sh", "-c", "curl -sS -m 10 -o /dev/null -w '%{http_code}' "
                     "https://api.insp.test/allowed/x"], args=["--upstream-ca", inet.ca], policy=p)
    assert r.code == 0 and "200" in r.out, r
    assert not r.events("tls_client_rejected")
