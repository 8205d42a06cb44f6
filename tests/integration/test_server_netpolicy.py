"""`cordon server`: a sandbox's own policy from the create request —
OpenSandbox's networkPolicy (translated into a cordon policy), a policy by
name (--policy-dir) and an inline policy (extensions) — enforced by the
sandbox's egress proxy against real upstreams in the session's test
namespace (conftest.testnet: allowed.test, other.test, denied.test on port
80, resolved by the test DNS server)."""
import json
import os
import subprocess

import pytest

from server_fixtures import KEY, cordon_server  # noqa: F401

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")

CURL = "curl -s -o /dev/null -m 10 -w '%{http_code}' http://"


def np_server(cordon_server, testnet, *extra):
    return cordon_server("--resolver", testnet.dns.resolver, "--egress-ports", "80",
                         "--egress-allowed-ips", testnet.cidr, *extra)


def run(srv, sid, cmd):
    """Runs cmd in the sandbox through execd (via the proxy route): stdout lines."""
    st, _, raw = srv.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % sid,
                             body={"command": cmd}, timeout=60)
    assert st == 200, raw
    events = [json.loads(b[6:]) for b in raw.decode().split("\n\n") if b.strip()]
    assert any(e["type"] == "exit" for e in events), events
    return [e.get("text", "") for e in events if e["type"] == "stdout"]


def status_of(srv, sid, host):
    out = run(srv, sid, CURL + host + "/")
    return out[-1] if out else ""


def audit(srv, sid):
    path = os.path.join(srv.data, "sandboxes", sid, "audit.log")
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def denied_hosts(events):
    return {e.get("host") for e in events if e.get("decision") == "deny"}


@pytest.mark.timeout(120)
def test_network_policy_allows_the_listed_host_and_denies_the_rest(cordon_server, testnet):
    srv = np_server(cordon_server, testnet)
    sbx = srv.create(networkPolicy={"defaultAction": "deny", "egress": [
        {"action": "allow", "target": "allowed.test"},
        {"action": "deny", "target": "other.test"}]})
    sid = sbx["id"]
    assert status_of(srv, sid, "allowed.test") == "200"
    assert status_of(srv, sid, "other.test") == "403"   # denied by its rule
    assert status_of(srv, sid, "denied.test") == "403"  # denied by defaultAction
    ev = audit(srv, sid)
    assert {"other.test", "denied.test"} <= denied_hosts(ev), ev
    assert "allowed.test" not in denied_hosts(ev)
    allow = [e for e in ev if e.get("decision") == "allow" and e.get("host") == "allowed.test"]
    assert allow and allow[0].get("policy") == "egress_0000", allow
    # the sandbox's own policy is kept beside its logs; the server's is untouched
    with open(os.path.join(srv.data, "sandboxes", sid, "policy.yaml")) as f:
        text = f.read()
    assert "allowed.test" in text and "other.test" not in text
    # a sandbox without networkPolicy follows the server's --policy (no network)
    plain = srv.create()["id"]
    assert status_of(srv, plain, "allowed.test") == "403"


@pytest.mark.timeout(120)
def test_empty_network_policy_denies_everything(cordon_server, testnet):
    srv = np_server(cordon_server, testnet)
    sid = srv.create(networkPolicy={})["id"]
    assert status_of(srv, sid, "allowed.test") == "403"
    assert "allowed.test" in denied_hosts(audit(srv, sid))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("np,field", [
    ({"defaultAction": "allow"}, "networkPolicy.defaultAction"),
    ({"defaultAction": "sometimes"}, "networkPolicy.defaultAction"),
    ({"egress": [{"action": "allow", "target": "10.0.0.1"}]}, "networkPolicy.egress[0].target"),
    ({"egress": [{"action": "allow", "target": "10.0.0.0/8"}]}, "networkPolicy.egress[0].target"),
    ({"egress": [{"action": "allow", "target": "ok.test"}, {"action": "allow"}]},
     "networkPolicy.egress[1].target"),
    ({"egress": [{"action": "maybe", "target": "ok.test"}]}, "networkPolicy.egress[0].action"),
    ({"egress": [{"action": "deny", "target": "a.example.com"},
                 {"action": "allow", "target": "*.example.com"}]}, "networkPolicy.egress[0]"),
    ({"egress": "allowed.test"}, "networkPolicy.egress"),
    ({"rules": []}, "networkPolicy.rules"),
    ("deny", "networkPolicy"),
])
def test_bad_network_policy_is_400_naming_the_field(cordon_server, testnet, np, field):
    srv = np_server(cordon_server, testnet)
    body = {"image": {"uri": "cordon-host"}, "entrypoint": ["sleep", "100"], "networkPolicy": np}
    st, hdrs, raw = srv.request("POST", "/v1/sandboxes", body=body)
    assert st == 400, raw
    err = json.loads(raw)
    assert err["code"] == "SANDBOX::INVALID_PARAMETER"
    assert err["message"].startswith(field), err
    assert srv.sandboxes()["items"] == []  # nothing was started


NAMED = """\
version: 1
filesystem_policy:
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, {bindir}]
  read_write: [/dev/null, /dev/ptmx, /dev/pts, /dev/tty, /tmp]
network_policies:
  upstream:
    endpoints:
      - host: other.test
        port: 80
        allowed_ips: ["{cidr}"]
    binaries:
      - path: /usr/bin/curl
"""


@pytest.mark.timeout(150)
def test_policy_by_name_and_inline(cordon_server, testnet, tmp_path, cordon_bin):
    pdir = tmp_path / "policies"
    pdir.mkdir()
    named = NAMED.format(bindir=os.path.dirname(cordon_bin), cidr=testnet.cidr)
    (pdir / "curl-other.yaml").write_text(named)
    (pdir / "broken.yaml").write_text("version: 1\nnetwork_policies:\n  x: {endpoint: []}\n")
    srv = np_server(cordon_server, testnet, "--policy-dir", str(pdir))
    sid = srv.create(extensions={"cordon.io/policy": "curl-other"})["id"]
    assert status_of(srv, sid, "other.test") == "200"
    assert status_of(srv, sid, "allowed.test") == "403"
    # a networkPolicy replaces the named policy's network_policies, nothing else
    both = srv.create(extensions={"cordon.io/policy": "curl-other"}, networkPolicy={
        "egress": [{"action": "allow", "target": "allowed.test"}]})["id"]
    assert status_of(srv, both, "allowed.test") == "200"
    assert status_of(srv, both, "other.test") == "403"
    # inline: the whole policy in the request
    inl = srv.create(extensions={"cordon.io/policy-inline": named.replace("other.test",
                                                                          "denied.test")})["id"]
    assert status_of(srv, inl, "denied.test") == "200"
    assert status_of(srv, inl, "other.test") == "403"
    n = len(srv.sandboxes()["items"])

    def bad(ext, *want):
        body = {"image": {"uri": "cordon-host"}, "entrypoint": ["sleep", "100"], "extensions": ext}
        st, _, raw = srv.request("POST", "/v1/sandboxes", body=body)
        assert st == 400, raw
        msg = json.loads(raw)["message"]
        for w in want:
            assert w in msg, msg
    bad({"cordon.io/policy": "nosuch"}, "extensions.cordon.io/policy", "nosuch")
    bad({"cordon.io/policy": "../curl-other"}, "extensions.cordon.io/policy")
    bad({"cordon.io/policy": "broken"}, "broken.yaml:3:7: error:", "endpoint")
    bad({"cordon.io/policy-inline": "version: 1\nnetwork_policy: {}\n"},
        "extensions.cordon.io/policy-inline:2:1: error:", "unknown field 'network_policy'")
    bad({"cordon.io/policy": "curl-other", "cordon.io/policy-inline": named}, "not both")
    assert len(srv.sandboxes()["items"]) == n


@pytest.mark.timeout(60)
def test_policy_by_name_needs_a_policy_dir(cordon_server, testnet):
    srv = np_server(cordon_server, testnet)
    body = {"image": {"uri": "cordon-host"}, "entrypoint": ["sleep", "100"],
            "extensions": {"cordon.io/policy": "x"}}
    st, _, raw = srv.request("POST", "/v1/sandboxes", body=body)
    assert st == 400 and b"--policy-dir" in raw, raw


@pytest.mark.timeout(60)
def test_bad_egress_options_refuse_to_start(cordon_server):
    for args, want in [(("--egress-ports", "80,x"), "--egress-ports"),
                       (("--egress-allowed-ips", "127.0.0.1/32"), "allowed_ips")]:
        s = cordon_server(*args, start=False)
        p = subprocess.run(s.argv(), capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p
        assert want in p.stderr, p.stderr


@pytest.mark.timeout(180)
def test_network_policy_with_the_official_js_sdk(cordon_server, testnet):
    assert os.path.isdir(os.path.join(JS, "node_modules", "@alibaba-group", "opensandbox")), \
        "the OpenSandbox JS SDK is not installed: run scripts/setup"
    srv = np_server(cordon_server, testnet)
    p = subprocess.run(["node", "sdk_netpolicy.mjs", str(srv.port), KEY], cwd=JS,
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, "node failed:\n%s\n%s" % (p.stdout, p.stderr)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["allowed"] == ["200"], out
    assert out["denied"] == ["403"], out
    assert out["refused"]["status"] == 400, out
    assert "networkPolicy.egress[0].target" in out["refused"]["message"], out
    assert "denied.test" in denied_hosts(audit(srv, out["id"]))
