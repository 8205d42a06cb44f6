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
    def listing():
        return set(os.listdir("/run/cordon")) if os.path.isdir("/run/cordon") else set()
    before = listing()      # other cordon processes on this host may own entries there
    r = sandbox.run(["sh", "-c", "for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE "
                     "NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO; do eval echo $v=\\$$v; done; "
                     "grep -c 'BEGIN CERTIFICATE' $SSL_CERT_FILE; "
                     "openssl crl2pkcs7 -nocrl -certfile $SSL_CERT_FILE | "
                     "openssl pkcs7 -print_certs -noout | grep '^subject' | tail -1; "
                     "touch /run/cordon/x 2>&1; echo touch=$?; cat /run/cordon/ca.pem"])
    assert r.code == 0, r
    for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
              "GIT_SSL_CAINFO"):
        assert "%s=/run/cordon/ca-bundle.pem" % v in r.out, r
    assert "cordon sandbox CA" in r.out               # the proxy's CA comes last
    assert "touch=1" in r.out                         # read-only for the command
    # The tmpfs exists only inside: this run left nothing on the host.
    assert listing() - before == set(), listing() - before
    # and the root-only directory the supervisor wrote the CA certificate,
    # bundle and truststore into (/run, or /dev/shm when /run is not a
    # tmpfs) is gone. Other cordon runs on this host may be starting (their
    # own directories exist for a moment): look for this run's CA
    # certificate, not for the name.
    ca = r.out[r.out.index("-----BEGIN CERTIFICATE-----"):]
    left = []
    for top in ("/run", "/dev/shm"):
        for d in os.listdir(top):
            if d.startswith("cordon-ca."):
                try:
                    with open(os.path.join(top, d, "ca.pem")) as f:
                        if f.read().strip() == ca.strip():
                            left.append(os.path.join(top, d))
                except OSError:
                    pass        # another run's directory, removed meanwhile
    assert not left, left


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


JAVA_FETCH = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpClient c = HttpClient.newHttpClient();
        for (String u : args) {
            HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create(u)).build(),
                                            HttpResponse.BodyHandlers.ofString());
            System.out.println("status=" + r.statusCode() + " " + r.body().replace('\\n', ' '));
        }
    }
}
"""


@pytest.mark.timeout(90)
def test_java_httpclient_through_inspection_no_flags(sandbox, inet):
    """Java 17's HttpClient, with no flag of its own, goes through the proxy
    (JAVA_TOOL_OPTIONS proxy properties) and trusts the inspecting CA (the
    PKCS12 truststore in /run/cordon); L7 rules apply to its requests."""
    java = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
    if not os.path.exists(java):
        pytest.fail("Java 17 is not installed (scripts/setup installs openjdk-17-jdk-headless)")
    text = FS + inet.policy().replace("version: 1\n", "", 1)
    text = text.replace("      - path: /usr/bin/curl\n",
                        "      - path: /usr/bin/curl\n      - path: %s\n" % java, 1)
    p = sandbox.write_policy(text, "java.yaml")
    with open(os.path.join(sandbox.work, "Fetch.java"), "w") as f:
        f.write(JAVA_FETCH)
    r = sandbox.run([java, "Fetch.java", "https://api.insp.test/allowed/j",
                     "https://api.insp.test/forbidden"],
                    args=["--upstream-ca", inet.ca], policy=p, timeout=80)
    assert r.code == 0, r
    assert "status=200" in r.out and '"target": "/allowed/j"' in r.out, r
    assert "status=403" in r.out and "l7_denied" in r.out, r
    assert "PKIX" not in r.err
    assert r.events("decision", decision="allow", host="api.insp.test", binary=java)
