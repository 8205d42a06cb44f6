"""Inspected tunnels: TLS termination with the proxy's CA, real clients (curl,
python urllib, node, git) trusting that CA from the environment, upstream TLS
verification, SNI, protocols that cannot be inspected, tls: skip."""
import json
import os
import socket
import ssl
import time

import pytest

from lib import util

pytest.register_assert_rewrite("inspect_fixtures")

from lib.clients import deny_body
from lib.httpclient import HttpConn, forward_once

from inspect_fixtures import (CURL, GIT, GIT_REMOTE_HTTP, NODE, PYTHON, closed_or_400,
                              env_with_proxy, git_env, plain_tunnel, tls_tunnel, wait_l7)

pytest_plugins = ["inspect_fixtures"]


# -- helpers ----------------------------------------------------------------------
def curl_env(proxy, url, ca, args=(), timeout=20):
    """curl with the proxy and the CA from the environment (https_proxy,
    CURL_CA_BUNDLE: curl's own variable, it ignores SSL_CERT_FILE); no
    verification flag. Returns (rc, status, headers, body,
    stderr, http_version)."""
    argv = [CURL, "-sS", "--max-time", str(timeout - 2), "-D", "-", "-w",
            "\n%{http_code} %{http_version}"] + list(args) + [url]
    p = util.run(argv, timeout=timeout, check=False,
                 env=env_with_proxy(proxy, {"CURL_CA_BUNDLE": ca}), text=False)
    out = p.stdout
    tail = out.rsplit(b"\n", 1)
    code, ver = tail[-1].decode().split() if len(tail) == 2 else ("0", "0")
    blocks = tail[0].split(b"\r\n\r\n")
    # headers of the last response block (skip 1xx / CONNECT blocks)
    headers, body, i = {}, b"", 0
    while i < len(blocks) and blocks[i].startswith(b"HTTP/"):
        i += 1
    if i:
        for line in blocks[i - 1].decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b"\r\n\r\n".join(blocks[i:])
    return p.returncode, int(code), headers, body, p.stderr.decode("utf-8", "replace"), ver


def check_l7_deny(status, headers, body, host, port, method, path, binary=None):
    doc = deny_body(status, lambda k: headers.get(k), body, "l7_denied", host, port)
    assert doc["policy"] == "insp", doc
    assert doc["method"] == method, doc
    assert doc["path"] == path, doc
    if binary:
        assert doc["binary"] == binary, doc
    return doc


# -- curl ----------------------------------------------------------------------------
def test_curl_through_inspection_with_env_ca(iproxy, inet):
    p = iproxy()
    rc, code, hdr, body, err, ver = curl_env(p, "https://api.insp.test/allowed/curl-hello", p.ca)
    assert rc == 0, err
    assert code == 200, (code, body)
    doc = json.loads(body)
    assert doc["target"] == "/allowed/curl-hello" and doc["port"] == 443, doc
    assert inet.seen("/allowed/curl-hello")

    # the denied request: 403 + JSON, inside the TLS session, never upstream
    rc, code, hdr, body, err, ver = curl_env(p, "https://api.insp.test/secret-curl", p.ca)
    assert rc == 0, err
    check_l7_deny(code, hdr, body, "api.insp.test", 443, "GET", "/secret-curl", CURL)
    assert not inet.seen("/secret-curl")

    # audit: one decision per CONNECT, an l7_request per request, close events
    ev = wait_l7(p, 1, host="api.insp.test", path="/allowed/curl-hello")[0]
    assert ev["l7_decision"] == "allow" and ev["method"] == "GET", ev
    assert ev["port"] == 443 and ev["policy"] == "insp", ev
    ev = wait_l7(p, 1, host="api.insp.test", path="/secret-curl")[0]
    assert ev["l7_decision"] == "deny" and ev["method"] == "GET", ev
    dec = p.wait_events(2, event="decision", host="api.insp.test", kind="connect")
    conns = {}
    for e in dec:
        conns.setdefault(e["conn"], []).append(e)
    assert len(conns) == 2, dec
    for cid, evs in conns.items():
        assert len(evs) == 1, "one decision event per CONNECT expected, got %d: %r" % (len(evs), evs)
        assert evs[0]["decision"] == "allow" and evs[0]["binary"] == CURL, evs
    closes = p.wait_events(2, event="close", host="api.insp.test")
    for c in closes:
        assert c["bytes_up"] > 0 and c["bytes_down"] > 0 and c["duration_ms"] >= 0, c


def test_curl_refuses_when_trusting_only_the_upstream_ca(iproxy, inet):
    """The client sees the proxy's leaf, not the upstream's: trusting the
    upstream's own CA is not enough (proves termination, and that clients
    verify)."""
    p = iproxy()
    rc, code, hdr, body, err, ver = curl_env(p, "https://api.insp.test/allowed/x", inet.ca)
    assert rc == 60, (rc, err)        # CURLE_PEER_FAILED_VERIFICATION


def test_curl_offering_h2_gets_http11(iproxy, inet):
    p = iproxy()
    rc, code, hdr, body, err, ver = curl_env(p, "https://api.insp.test/allowed/h2-offer", p.ca,
                                             args=["--http2"])
    assert rc == 0, err
    assert code == 200 and ver == "1.1", (code, ver)


# -- python urllib -------------------------------------------------------------------
URLLIB = r"""
import json, sys, urllib.request, urllib.error
url, method = sys.argv[1], sys.argv[2]
data = b"posted by urllib" if method == "POST" else None
req = urllib.request.Request(url, data=data, method=method)
try:
    r = urllib.request.urlopen(req, timeout=10)        # proxy and CA from the environment
    status, headers, body = r.status, dict(r.headers), r.read()
except urllib.error.HTTPError as e:
    status, headers, body = e.code, dict(e.headers), e.read()
print(json.dumps({"status": status, "headers": {k.lower(): v for k, v in headers.items()},
                  "body": body.decode("latin-1")}))
"""


def urllib_env(proxy, url, method="GET"):
    p = util.run([PYTHON, "-c", URLLIB, url, method], timeout=20, check=False,
                 env=env_with_proxy(proxy, {"SSL_CERT_FILE": proxy.ca}))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    return doc["status"], doc["headers"], doc["body"].encode("latin-1")


def test_python_urllib_through_inspection(iproxy, inet):
    p = iproxy()
    status, hdr, body = urllib_env(p, "https://api.insp.test/allowed/urllib")
    assert status == 200, body
    assert json.loads(body)["target"] == "/allowed/urllib"
    status, hdr, body = urllib_env(p, "https://ro.insp.test/urllib-post", "POST")
    check_l7_deny(status, hdr, body, "ro.insp.test", 443, "POST", "/urllib-post",
                  os.path.realpath(PYTHON))
    assert not inet.seen("/urllib-post")


# -- node ------------------------------------------------------------------------------
NODE_CLIENT = r"""
const http = require('http'), https = require('https'), tls = require('tls');
const [proxyPort, host, port, path, method] = process.argv.slice(1);
const fail = (e) => { console.log(JSON.stringify({error: String(e)})); process.exit(0); };
setTimeout(() => fail('timeout'), 15000).unref();
const req = http.request({host: '127.0.0.1', port: +proxyPort, method: 'CONNECT',
                          path: `${host}:${port}`, headers: {Host: `${host}:${port}`}});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) fail('CONNECT ' + res.statusCode);
  const r = https.request({host, port: +port, path, method,
      createConnection: () => tls.connect({socket, servername: host, ALPNProtocols: ['http/1.1']})},
    (resp) => {
      let body = '';
      resp.setEncoding('latin1');
      resp.on('data', (d) => { body += d; });
      resp.on('end', () => {
        console.log(JSON.stringify({status: resp.statusCode, headers: resp.headers, body,
                                    authorized: resp.socket.authorized}));
        process.exit(0);
      });
    });
  r.on('error', fail);
  if (method === 'POST') r.write('posted by node');
  r.end();
});
req.on('error', fail);
req.end();
"""


def node_get(proxy, host, port, path, method="GET"):
    p = util.run([NODE, "-e", NODE_CLIENT, str(proxy.port), host, str(port), path, method],
                 timeout=25, check=False,
                 env=util.clean_env({"NODE_EXTRA_CA_CERTS": proxy.ca}))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_node_through_inspection(iproxy, inet):
    p = iproxy()
    doc = node_get(p, "api.insp.test", 443, "/allowed/node")
    assert "error" not in doc, doc
    assert doc["status"] == 200 and doc["authorized"] is True, doc
    assert json.loads(doc["body"])["target"] == "/allowed/node"
    doc = node_get(p, "ro.insp.test", 443, "/node-post", "POST")
    assert "error" not in doc, doc
    check_l7_deny(doc["status"], doc["headers"], doc["body"].encode("latin-1"), "ro.insp.test",
                  443, "POST", "/node-post", NODE)
    assert not inet.seen("/node-post")
    ev = wait_l7(p, 1, path="/allowed/node")[0]
    assert ev["binary"] == NODE and ev["l7_decision"] == "allow", ev


# -- git ------------------------------------------------------------------------------------
def git_run(proxy, args, home, cwd=None, timeout=30):
    env = git_env(home, {"GIT_SSL_CAINFO": proxy.ca,
                         "https_proxy": "http://127.0.0.1:%d" % proxy.port})
    return util.run([GIT] + list(args), timeout=timeout, check=False, env=env, cwd=cwd)


def bare_head(inet):
    return util.run([GIT, "--git-dir", os.path.join(inet.git_root, "repo.git"), "rev-parse",
                     "refs/heads/main"], env=git_env(inet.git_root)).stdout.strip()


@pytest.mark.timeout(90)
def test_git_clone_allowed_push_refused_by_rule(iproxy, inet, tmp_path):
    p = iproxy()
    home = str(tmp_path)
    dest = str(tmp_path / "clone")
    r = git_run(p, ["clone", "https://git.insp.test/git/repo.git", dest], home)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(dest, "README")) as f:
        assert "inspected git server" in f.read()
    before = bare_head(inet)
    with open(os.path.join(dest, "NEW"), "w") as f:
        f.write("pushed through the proxy?\n")
    env = git_env(home)
    util.run([GIT, "-C", dest, "add", "NEW"], env=env)
    util.run([GIT, "-C", dest, "commit", "-q", "-m", "try push"], env=env)
    r = git_run(p, ["push", "origin", "main"], home, cwd=dest)
    assert r.returncode != 0, "push should be refused: %s %s" % (r.stdout, r.stderr)
    assert "403" in r.stderr, r.stderr
    assert bare_head(inet) == before
    ev = wait_l7(p, 1, method="POST", path="/git/repo.git/git-receive-pack")[0]
    assert ev["l7_decision"] == "deny" and ev["host"] == "git.insp.test", ev
    assert ev["binary"] == GIT_REMOTE_HTTP, ev
    # allowed through the ancestor: the policy lists git, not git-remote-https
    dec = p.wait_events(1, event="decision", host="git.insp.test", decision="allow")[0]
    assert dec["binary"] == GIT_REMOTE_HTTP and GIT in dec["ancestors"], dec
    assert wait_l7(p, 1, method="POST", path="/git/repo.git/git-upload-pack",
                   l7_decision="allow")


@pytest.mark.timeout(90)
def test_git_push_allowed_when_policy_allows(iproxy, inet, tmp_path):
    """Control for the test above: the same push passes when the rule allows it."""
    extra = """      - host: git.insp.test
        port: 443
        protocol: rest
        access: full
        allowed_ips: ["%s"]
""" % inet.cidr
    pol = inet.policy().replace("      - host: git.insp.test\n        port: 443\n", "      - host: unused-git.insp.test\n        port: 443\n")
    pol = pol.replace("    binaries:", extra + "    binaries:")
    p = iproxy(pol)
    home = str(tmp_path)
    dest = str(tmp_path / "clone")
    r = git_run(p, ["clone", "https://git.insp.test/git/repo.git", dest], home)
    assert r.returncode == 0, r.stderr
    env = git_env(home)
    with open(os.path.join(dest, "PUSHED-%d" % os.getpid()), "w") as f:
        f.write("pushed\n")
    util.run([GIT, "-C", dest, "add", "-A"], env=env)
    util.run([GIT, "-C", dest, "commit", "-q", "-m", "push ok"], env=env)
    head = util.run([GIT, "-C", dest, "rev-parse", "HEAD"], env=env).stdout.strip()
    r = git_run(p, ["push", "origin", "main"], home, cwd=dest)
    assert r.returncode == 0, r.stderr
    assert bare_head(inet) == head


# -- the certificate the client sees ------------------------------------------------------------
def cert_text(path):
    return util.run(["openssl", "x509", "-in", path, "-noout", "-text"]).stdout


def test_leaf_minted_by_per_run_ca(iproxy, inet):
    p1 = iproxy()
    with open(p1.ca) as f:
        pem = f.read()
    assert "PRIVATE KEY" not in pem, "--ca-cert-out must hold the certificate only"
    text = cert_text(p1.ca)
    assert "prime256v1" in text or "P-256" in text, text
    assert "CA:TRUE" in text, text
    t = tls_tunnel(p1, "api.insp.test", 443, alpn=("h2", "http/1.1"))
    try:
        cert = t.sock.getpeercert()
        assert ("DNS", "api.insp.test") in cert["subjectAltName"], cert
        issuer = dict(x[0] for x in cert["issuer"])
        assert issuer.get("organizationName") == "cordon", cert
        assert t.sock.selected_alpn_protocol() == "http/1.1"
        r = t.request("GET", "/allowed/leaf", "api.insp.test")
        assert r.status == 200, r
    finally:
        t.close()
    # a second proxy run has a different CA, and does not trust the first's
    p2 = iproxy()
    assert open(p1.ca).read() != open(p2.ca).read()
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_tunnel(p2, "api.insp.test", 443, cafile=p1.ca).close()


def test_ca_dir_from_ca_init(iproxy, inet, cordon_bin, tmp_path):
    d = str(tmp_path / "ca")
    util.run([cordon_bin, "ca", "init", "--dir", d])
    p = iproxy(None, "--ca-dir", d)
    assert util.run(["openssl", "x509", "-in", p.ca, "-noout", "-fingerprint", "-sha256"]).stdout == \
        util.run(["openssl", "x509", "-in", os.path.join(d, "ca.pem"), "-noout", "-fingerprint",
                  "-sha256"]).stdout
    t = tls_tunnel(p, "api.insp.test", 443, cafile=os.path.join(d, "ca.pem"))
    try:
        assert t.request("GET", "/allowed/cadir", "api.insp.test").status == 200
    finally:
        t.close()


# -- upstream verification ---------------------------------------------------------------------
@pytest.mark.parametrize("host,port", [("bad.insp.test", 8443), ("wrongname.insp.test", 8444)])
def test_upstream_cert_not_trusted_is_403(iproxy, inet, host, port):
    p = iproxy()
    url = "https://%s:%d/never-%s" % (host, port, host)
    rc, code, hdr, body, err, ver = curl_env(p, url, p.ca)
    assert rc == 0, err       # the client's own TLS (to the proxy) is fine
    doc = deny_body(code, lambda k: hdr.get(k), body, "upstream_tls_invalid", host, port)
    assert doc["detail"], doc
    assert not inet.seen("/never-" + host)
    ev = p.wait_events(1, event="decision", host=host, reason_code="upstream_tls_invalid")[0]
    assert ev["decision"] == "deny", ev


def test_absolute_form_https_verifies_upstream(iproxy, inet):
    p = iproxy()
    r = forward_once(p.port, "https://api.insp.test/allowed/abs-https")
    assert r.status == 200, r
    assert r.json()["target"] == "/allowed/abs-https"
    r = forward_once(p.port, "https://api.insp.test/abs-https-denied")
    deny_body(r.status, r.header, r.body, "l7_denied", "api.insp.test", 443)
    r = forward_once(p.port, "https://bad.insp.test:8443/abs-bad")
    deny_body(r.status, r.header, r.body, "upstream_tls_invalid", "bad.insp.test", 8443)
    assert not inet.seen("/abs-https-denied") and not inet.seen("/abs-bad")


# -- what is not inspectable is refused ---------------------------------------------------------
def test_sni_mismatch_refused(iproxy, inet):
    p = iproxy()
    with pytest.raises((ssl.SSLError, OSError, EOFError)):
        t = tls_tunnel(p, "api.insp.test", 443, sni="evil.insp.test")
        try:
            t.request("GET", "/allowed/sni-evil", "evil.insp.test")
        finally:
            t.close()
    ev = p.wait_events(1, event="decision", reason_code="sni_mismatch")[0]
    assert ev["decision"] == "deny" and ev["host"] == "api.insp.test", ev
    assert not inet.seen("/allowed/sni-evil")


@pytest.mark.parametrize("name,first", [
    ("h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00"),
    ("ssh_banner", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
    ("binary", bytes(range(256))),
])
def test_non_http_in_inspected_tunnel_refused(iproxy, inet, name, first):
    p = iproxy()
    c = plain_tunnel(p, "api.insp.test", 443)
    try:
        c.send(first)
        try:
            c.wait_closed(5)
        except socket.timeout:
            pytest.fail("%s: the tunnel is still open 5 s after non-HTTP bytes" % name)
        assert b"HTTP/1.1 200" not in c.buf and b"insp-upstream" not in c.buf, c.buf
    finally:
        c.close()
    ev = p.wait_events(1, event="decision", reason_code="l7_unsupported_protocol")[0]
    assert ev["decision"] == "deny" and ev["host"] == "api.insp.test", ev


def test_h2_preface_inside_tls_refused(iproxy, inet):
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443, alpn=("http/1.1",))
    try:
        t.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        r = closed_or_400(t)
        assert r is None or r.status == 400, r
    finally:
        t.close()
    assert not [x for x in inet.seen("") if x.get("method") == "PRI"]


def test_tls_skip_relays_raw(iproxy, inet):
    p = iproxy()
    # the upstream's own certificate arrives: trust only the upstream's CA
    t = tls_tunnel(p, "skip.insp.test", 443, cafile=inet.ca)
    try:
        issuer = dict(x[0] for x in t.sock.getpeercert()["issuer"])
        assert issuer.get("commonName") == "cordon inspect test upstream CA", issuer
        # a raw relay applies no rule: POST passes although the endpoint is read-only
        r = t.request("POST", "/skip-raw-post", "skip.insp.test", body=b"raw")
        assert r.status == 200 and r.json()["body_len"] == 3, r
    finally:
        t.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_tunnel(p, "skip.insp.test", 443).close()
    assert not p.events("l7_request", host="skip.insp.test")


def test_plaintext_http_in_tunnel_is_inspected(iproxy, inet):
    p = iproxy()
    c = plain_tunnel(p, "api.insp.test", 80)
    try:
        r = c.request("GET", "/allowed/plain-1", "api.insp.test")
        assert r.status == 200 and r.json()["port"] == 80, r
        r = c.request("GET", "/plain-denied", "api.insp.test")
        deny_body(r.status, r.header, r.body, "l7_denied", "api.insp.test", 80)
        r = c.request("GET", "/allowed/plain-2", "api.insp.test")
        assert r.status == 200, r
    finally:
        c.close()
    assert not inet.seen("/plain-denied")


def test_absolute_form_http_rules(iproxy, inet):
    p = iproxy()
    with HttpConn.open(p.addr) as c:
        r = c.request("GET", "http://api.insp.test/allowed/abs-1", "api.insp.test")
        assert r.status == 200 and r.json()["target"] == "/allowed/abs-1", r
        r = c.request("GET", "http://api.insp.test/abs-denied", "api.insp.test")
        doc = deny_body(r.status, r.header, r.body, "l7_denied", "api.insp.test", 80)
        assert doc["method"] == "GET" and doc["path"] == "/abs-denied", doc
        r = c.request("GET", "http://api.insp.test/allowed/../abs-admin", "api.insp.test")
        deny_body(r.status, r.header, r.body, "l7_denied", "api.insp.test", 80)
        r = c.request("GET", "http://api.insp.test/allowed/abs-2", "api.insp.test")
        assert r.status == 200, r
    assert not inet.seen("abs-denied") and not inet.seen("abs-admin")
    ev = wait_l7(p, 1, path="/abs-denied")[0]
    assert ev["l7_decision"] == "deny" and ev["port"] == 80, ev


def test_requests_after_idle_pauses(iproxy, inet):
    """An agent may open a tunnel and think before its first request: TLS 1.3
    session tickets the upstream sends after its handshake must not make the
    proxy drop the upstream (the request would then be lost)."""
    p = iproxy()
    t = tls_tunnel(p, "api.insp.test", 443)
    try:
        for i in range(3):
            time.sleep(0.4)
            r = t.request("GET", "/allowed/after-pause-%d" % i, "api.insp.test")
            assert r.status == 200, (i, r)
    finally:
        t.close()


def test_one_upstream_connection_per_tunnel(iproxy, inet):
    """A keep-alive inspected tunnel uses one upstream connection while the
    upstream keeps it open: TLS 1.3 session tickets sent after the upstream
    handshake are not "unsolicited bytes" (src/proxy/upstream.c
    idle_upstream_event), so a pause does not cost a second dial and TLS
    handshake."""
    p = iproxy()
    before = inet.accepts(8445)
    t = tls_tunnel(p, "count.insp.test", 8445)
    try:
        for i in range(3):
            time.sleep(0.4)
            r = t.request("GET", "/count-%d" % i, "count.insp.test")
            assert r.status == 200, (i, r)
    finally:
        t.close()
    time.sleep(0.2)
    assert inet.accepts(8445) - before == 1, "the tunnel dialed the upstream %d times" % (
        inet.accepts(8445) - before)
