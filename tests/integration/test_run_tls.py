"""cordon run: HTTPS through the proxy's TLS inspection works inside the
sandbox, because the command trusts the per-sandbox CA (a trust bundle in a
tmpfs private to the sandbox, announced by SSL_CERT_FILE & co.)."""
import json
import os

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

pytest_plugins = ["inspect_fixtures"]

FS = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev]
  read_write: [/dev/null]
landlock:
  compatibility: best_effort
"""


def policy(sb, inet):
    return sb.write_policy(FS + inet.policy().replace("version: 1\n", "", 1), "tls.yaml")


@pytest.mark.timeout(60)
def test_trust_bundle(sandbox):
    r = sandbox.run(["sh", "-c", "for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE "
                     "NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO; do eval echo $v=\\$$v; done; "
                     "grep -c 'BEGIN CERTIFICATE' $SSL_CERT_FILE; "
                     "openssl crl2pkcs7 -nocrl -certfile $SSL_CERT_FILE | "
                     "openssl pkcs7 -print_certs -noout | grep '^subject' | tail -1; "
                     "touch /run/cordon/x 2>&1; echo touch=$?"])
    assert r.code == 0, r
    for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
              "GIT_SSL_CAINFO"):
        assert "%s=/run/cordon/ca-bundle.pem" % v in r.out, r
    assert "cordon sandbox CA" in r.out               # the proxy's CA comes last
    assert "touch=1" in r.out                         # read-only for the command
    # The tmpfs exists only inside: none of its files is on the host (other
    # cordon components may keep their own entries in /run/cordon), and the
    # root-only directory the proxy wrote its CA into is gone.
    assert not {"ca.pem", "ca-bundle.pem"} & set(os.listdir("/run/cordon"))
    assert not [d for d in os.listdir("/run") if d.startswith("cordon-ca.")]


@pytest.mark.timeout(60)
def test_https_inspected_inside_sandbox(sandbox, inet):
    p = policy(sandbox, inet)
    script = ("curl -sS -m 10 -w '\\nstatus=%{http_code}\\n' https://api.insp.test/allowed/x; "
              "curl -sS -m 10 -w '\\nstatus=%{http_code}\\n' https://api.insp.test/forbidden")
    r = sandbox.run(["sh", "-c", script], args=["--upstream-ca", inet.ca], policy=p)
    assert r.code == 0, r
    first, second = r.out.split("status=")[0:2]
    assert '"target": "/allowed/x"' in first, r   # the upstream's echo, through TLS
    assert r.out.count("status=200") == 1 and r.out.count("status=403") == 1, r
    assert r.events("decision", decision="allow", host="api.insp.test")
