"""OpenShell policies through the real binary: `cordon policy check
[--strict]`, OpenShell's asserted decision cases through `cordon policy eval`
(host wildcards, canonical paths, deny_rules, GraphQL/JSON-RPC/MCP bodies),
and the Slack Socket Mode policy shape (access without protocol) carrying a
real wss client through the inspecting proxy."""
import asyncio
import subprocess

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from inspect_fixtures import plain_tunnel, client_ctx, wait_l7  # noqa: E402
from test_inspect_upgrade import ws_session  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

CURL = "/usr/bin/curl"

POLICY = """\
version: 1
network_policies:
  web:
    endpoints:
      - { host: "*.example.com", ports: [443, 8443] }
      - { host: "*-aiplatform.googleapis.com", port: 443 }
      - { host: "*.s3.*.amazonaws.com", port: 443 }
      - { host: "**.deep.example.org", port: 443 }
    binaries: [{ path: /usr/bin/curl }]
  github:
    endpoints:
      - host: api.github.com
        port: 443
        path: /graphql
        protocol: graphql
        rules:
          - allow: { operation_type: query, fields: [viewer, repository] }
          - allow: { operation_type: mutation, operation_name: "Issue*", fields: [createIssue] }
        deny_rules:
          - { operation_type: query, fields: ["secret*"] }
      - host: api.github.com
        port: 443
        protocol: rest
        enforcement: enforce
        access: read-write
        deny_rules:
          - { method: POST, path: "/repos/*/pulls/*/reviews" }
          - { method: "*", path: "/admin/**" }
          - { method: "*", path: "/users/@admin/**" }
    binaries: [{ path: /usr/bin/curl }]
  mcp:
    endpoints:
      - host: mcp.example.net
        port: 443
        path: /mcp
        protocol: mcp
        rules:
          - allow: { method: initialize }
          - allow: { method: tools/call, tool: search_web }
        deny_rules:
          - { method: tools/call, tool: send_email }
    binaries: [{ path: /usr/bin/curl }]
  rpc:
    endpoints:
      - host: rpc.example.net
        port: 443
        protocol: json-rpc
        rules:
          - allow: { method: reports.search }
    binaries: [{ path: /usr/bin/curl }]
"""

# (host, port, method, target, body, expected exit status, text in the output)
CASES = [
    # OpenShell opa.rs wildcard_host_* cases
    ("api.example.com", 443, None, None, None, 0, "decision: allow"),
    ("api.example.com", 8443, None, None, None, 0, "decision: allow"),
    ("api.example.com", 80, None, None, None, 1, "reason_code: no_endpoint"),
    ("deep.sub.example.com", 443, None, None, None, 1, "'**.example.com'"),
    ("example.com", 443, None, None, None, 1, "no_endpoint"),
    ("API.EXAMPLE.COM", 443, None, None, None, 0, "decision: allow"),
    ("us-central1-aiplatform.googleapis.com", 443, None, None, None, 0, "allow"),
    ("us-central1.aiplatform.googleapis.com", 443, None, None, None, 1, "no_endpoint"),
    ("my-bucket.s3.us-east-1.amazonaws.com", 443, None, None, None, 0, "allow"),
    ("s3.us-east-1.amazonaws.com", 443, None, None, None, 1, "no_endpoint"),
    ("my-bucket.s3.dualstack.us-east-1.amazonaws.com", 443, None, None, None, 1, "no_endpoint"),
    ("a.b.deep.example.org", 443, None, None, None, 0, "allow"),
    # deny_rules next to access (OpenShell l7_deny_rule_* cases) and canonical paths
    ("api.github.com", 443, "POST", "/repos/o/pulls/1/reviews", None, 1, "deny_rules[0]"),
    ("api.github.com", 443, "POST", "/repos/o/pulls/1/comments", None, 0, "l7: allow"),
    ("api.github.com", 443, "DELETE", "/repos/o", None, 1, "access: read-write"),
    ("api.github.com", 443, "GET", "/admin;x/secret", None, 1, "l7_path: /admin/secret"),
    ("api.github.com", 443, "GET", "/users/%40admin/k", None, 1, "l7_path: /users/@admin/k"),
    ("api.github.com", 443, "GET", "/public/..;/secret", None, 1, "dot segment with parameters"),
    ("api.github.com", 443, "GET", "/a%2Fb", None, 1, "encoded slash"),
    ("api.github.com", 443, "GET", "/a;jsessionid=1/b", None, 0, "l7_path: /a/b"),
    # GraphQL (OpenShell graphql.rs / e2e forward_proxy_graphql_l7 shapes)
    ("api.github.com", 443, "POST", "/graphql", '{"query":"query Viewer { viewer { login } }"}',
     0, "l7: allow"),
    ("api.github.com", 443, "POST", "/graphql",
     '{"query":"mutation M { safe: deleteRepository(id:1) { id } }"}', 1, "deleteRepository"),
    ("api.github.com", 443, "POST", "/graphql",
     '{"query":"mutation IssueNew { createIssue { id } }"}', 0, "l7: allow"),
    ("api.github.com", 443, "POST", "/graphql", '{"query":"{ viewer secretKeys }"}', 1,
     "deny_rules[0]"),
    ("api.github.com", 443, "POST", "/graphql",
     '{"query":"query A { viewer } query B { repository }"}', 1, "multiple operations"),
    ("api.github.com", 443, "POST", "/graphql",
     '{"extensions":{"persistedQuery":{"sha256Hash":"abc"}}}', 1, "persisted_queries: deny"),
    ("api.github.com", 443, "POST", "/graphql", None, 1, "pass --body"),
    # MCP and JSON-RPC (OpenShell e2e forward_proxy_jsonrpc_l7 shapes)
    ("mcp.example.net", 443, "POST", "/mcp",
     '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_web"}}', 0, "allow"),
    ("mcp.example.net", 443, "POST", "/mcp",
     '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"send_email"}}', 1,
     "l7_rpc_id: 9"),
    ("mcp.example.net", 443, "POST", "/mcp",
     '[{"jsonrpc":"2.0","id":1,"method":"initialize"},'
     '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"other"}}]', 1,
     "batch element 1"),
    ("mcp.example.net", 443, "POST", "/elsewhere", '{}', 1, "outside the path"),
    ("rpc.example.net", 443, "POST", "/", '{"jsonrpc":"2.0","id":1,"method":"reports.search"}',
     0, "allow"),
    ("rpc.example.net", 443, "POST", "/", '{"jsonrpc":"2.0","id":1,"result":{}}', 1,
     "response sent by the client"),
]


@pytest.fixture
def policy_file(tmp_path):
    f = tmp_path / "openshell.yaml"
    f.write_text(POLICY)
    return str(f)


@pytest.mark.parametrize("host,port,method,target,body,status,needle", CASES)
def test_eval_openshell_cases(cordon_bin, policy_file, host, port, method, target, body, status,
                              needle):
    args = [cordon_bin, "policy", "eval", policy_file, "--host", host, "--port", str(port),
            "--binary", CURL]
    if method:
        args += ["--method", method, "--path", target]
    if body is not None:
        args += ["--body", body]
    r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    assert r.returncode == status, (r.stdout, r.stderr)
    assert needle in r.stdout, (r.stdout, r.stderr)


def test_check_strict_turns_warnings_into_errors(cordon_bin, tmp_path):
    f = tmp_path / "warn.yaml"
    f.write_text("version: 1\n"
                 "network_policies:\n"
                 "  slack:\n"
                 "    endpoints:\n"
                 "      - { host: wss-primary.slack.com, port: 443, access: full }\n")
    r = subprocess.run([cordon_bin, "policy", "check", str(f)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    assert "warn.yaml:4:5: warning: network_policies.slack: no binaries" in r.stderr, r.stderr
    assert "warn.yaml:5:59: warning: network_policies.slack.endpoints[0]: access without " \
           "protocol is read as protocol: rest" in r.stderr, r.stderr
    r = subprocess.run([cordon_bin, "policy", "check", "--strict", str(f)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "0 errors, 2 warnings (--strict: warnings are errors)" in r.stderr, r.stderr
    r = subprocess.run([cordon_bin, "policy", "check", "--strict", str(tmp_path / "none.yaml")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1


def test_slack_socket_mode_shape_carries_wss(iproxy, inet):
    """The founding report's policy shape (access: full, no protocol, enforce):
    it loads, the endpoint is inspected as HTTP, and a real wss client gets
    through it and talks after the 101."""
    ips = '["%s"]' % inet.cidr
    policy = f"""
version: 1
network_policies:
  slack_websocket:
    name: slack_websocket
    endpoints:
      - {{ host: wss.insp.test, port: 9443, enforcement: enforce, access: full, allowed_ips: {ips} }}
    binaries: [{{ path: /usr/bin/node }}, {{ path: /usr/bin/curl }}, {{ path: "/usr/bin/python3*" }}]
"""
    p = iproxy(policy)
    c = plain_tunnel(p, "wss.insp.test", 9443)
    rep = asyncio.run(asyncio.wait_for(
        ws_session(c.sock, "wss://wss.insp.test:9443/link", client_ctx(p.ca), "wss.insp.test"),
        90))
    assert rep["text"] == "hello text" and rep["binary_ok"] and rep["pong"], rep
    assert rep["close_code"] == 1000, rep
    ev = wait_l7(p, 1, host="wss.insp.test", path="/link")[0]
    assert ev["l7_decision"] == "allow_upgrade" and ev["policy"] == "slack_websocket", ev
