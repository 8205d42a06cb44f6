"""L7 on request bodies through the real proxy: a JSON-RPC/MCP server and a
GraphQL server of our own (lib/l7_servers.py) in the inspect namespace,
behind json-rpc, mcp and graphql endpoints; python urllib as the client
(forward proxy), and a CONNECT tunnel for the inspected-tunnel path.
Allowed and denied methods, tools and operations; a batch with one denied
element; denials in the JSON-RPC / GraphQL error shape that never reach the
server; an MCP SSE response that flows before the server has finished it."""
import http.client
import json
import os
import select
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

pytest.register_assert_rewrite("inspect_fixtures")

from inspect_fixtures import PYTHON, plain_tunnel, wait_l7  # noqa: E402
from lib import util  # noqa: E402

pytest_plugins = ["inspect_fixtures"]

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "lib", "l7_servers.py")
RPC_PORT, GQL_PORT = 9701, 9702
NAMES = ("mcp.insp.test", "rpc.insp.test", "gql.insp.test", "release.insp.test",
         "rpc-audit.insp.test")


class L7Net:
    def __init__(self, inet, log, proc):
        self.inet, self.log, self.proc = inet, log, proc

    def received(self, needle):
        try:
            with open(self.log) as f:
                return [json.loads(l) for l in f if needle in l]
        except FileNotFoundError:
            return []

    def policy(self):
        ips = '["%s"]' % self.inet.cidr
        return f"""
version: 1
network_policies:
  tools:
    endpoints:
      - host: mcp.insp.test
        port: {RPC_PORT}
        path: /mcp
        protocol: mcp
        allowed_ips: {ips}
        mcp: {{max_body_bytes: 2048}}
        rules:
          - allow: {{method: initialize}}
          - allow: {{method: notifications/initialized}}
          - allow: {{method: tools/call, tool: {{any: [search_web, stream]}}}}
        deny_rules:
          - {{method: tools/call, tool: send_email}}
      - host: rpc.insp.test
        port: {RPC_PORT}
        protocol: json-rpc
        allowed_ips: {ips}
        rules:
          - allow: {{method: initialize}}
          - allow: {{method: reports.search}}
      - host: rpc-audit.insp.test
        port: {RPC_PORT}
        protocol: json-rpc
        enforcement: audit
        allowed_ips: {ips}
        rules:
          - allow: {{method: initialize}}
      - host: gql.insp.test
        port: {GQL_PORT}
        path: /graphql
        protocol: graphql
        allowed_ips: {ips}
        rules:
          - allow: {{operation_type: query, fields: [viewer, repository]}}
          - allow: {{operation_type: mutation, operation_name: "Issue*", fields: [createIssue]}}
        deny_rules:
          - {{operation_type: query, fields: ["secret*"]}}
      - host: release.insp.test
        port: {RPC_PORT}
        protocol: rest
        allowed_ips: {ips}
        rules: [{{allow: {{method: GET, path: /release}}}}]
    binaries:
      - path: "/usr/bin/python3*"
      - path: /usr/bin/curl
"""


@pytest.fixture(scope="module")
def l7net(inspect_net, dns_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("l7-servers")
    log = str(d / "requests.jsonl")
    err = open(str(d / "stderr"), "w+b")
    proc = inspect_net.ns.spawn([PYTHON, SERVERS, "--bind", inspect_net.ns.ns_ip,
                                 "--rpc-port", str(RPC_PORT), "--gql-port", str(GQL_PORT),
                                 "--log", log], stdout=subprocess.PIPE, stderr=err)
    r, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline() if r else b""
    err.seek(0)
    assert line.strip() == b"READY", (line, err.read()[-2000:])
    for n in NAMES:
        dns_server.set(n, inspect_net.ns.ns_ip)
    yield L7Net(inspect_net, log, proc)
    for n in NAMES:
        dns_server.set(n, None)
    proc.kill()
    proc.wait(10)


@pytest.fixture
def lproxy(l7net, cordon_proxy):
    return cordon_proxy(l7net.policy())


def opener(proxy):
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": "http://127.0.0.1:%d" % proxy.port}))


def post(proxy, url, obj, raw=None, timeout=20):
    data = raw if raw is not None else json.dumps(obj).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    try:
        with opener(proxy).open(req, timeout=timeout) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


def call(i, method, tool=None):
    c = {"jsonrpc": "2.0", "id": i, "method": method}
    if tool:
        c["params"] = {"name": tool, "arguments": {}}
    return c


MCP = "http://mcp.insp.test:%d/mcp" % RPC_PORT
RPC = "http://rpc.insp.test:%d/rpc" % RPC_PORT
GQL = "http://gql.insp.test:%d/graphql" % GQL_PORT


def test_jsonrpc_methods(lproxy, l7net):
    st, _, body = post(lproxy, RPC, call(1, "reports.search"))
    assert st == 200 and body["result"]["method"] == "reports.search", body
    st, hdr, body = post(lproxy, RPC, call("d-1", "reports.delete"))
    assert st == 403 and hdr["X-Cordon-Deny"] == "l7_denied", body
    assert body["jsonrpc"] == "2.0" and body["id"] == "d-1", body
    assert body["error"]["code"] == -32001, body
    data = body["error"]["data"]
    assert data["reason_code"] == "l7_denied" and data["policy"] == "tools", data
    assert "reports.delete" in data["detail"] and "{allow: {method: reports.delete}}" in data["hint"]
    assert not l7net.received("reports.delete")
    ev = wait_l7(lproxy, 1, host="rpc.insp.test", l7_decision="deny")[0]
    assert "reports.delete" in ev["detail"], ev


def test_jsonrpc_batch_with_one_denied_element(lproxy, l7net):
    st, _, body = post(lproxy, RPC, [call(1, "initialize"), call(2, "reports.search")])
    assert st == 200 and [r["id"] for r in body] == [1, 2], body
    st, _, body = post(lproxy, RPC, [call(3, "initialize"), call(4, "reports.purge"),
                                     call(5, "reports.search")])
    assert st == 403 and body["id"] is None, body
    assert "batch element 1" in body["error"]["data"]["detail"], body
    assert not l7net.received("reports.purge")
    # a response object sent by the client, and a body that is not JSON-RPC
    st, _, body = post(lproxy, RPC, {"jsonrpc": "2.0", "id": 9, "result": {}})
    assert st == 403 and body["id"] == 9, body
    st, _, body = post(lproxy, RPC, None, raw=b'{"jsonrpc":"2.0","id":1,"method":"initialize",'
                                             b'"method":"reports.delete"}')
    assert st == 403 and "duplicate key" in body["error"]["data"]["detail"], body


def test_audit_still_refuses_malformed_bodies_and_response_frames(lproxy, l7net):
    """enforcement: audit forwards a call no rule allows (logged would_deny),
    but, as OpenShell does, a body that cannot be judged and a JSON-RPC
    response frame from the client are refused anyway (403)."""
    url = "http://rpc-audit.insp.test:%d/rpc" % RPC_PORT
    st, _, body = post(lproxy, url, call(1, "reports.delete"))
    assert st == 200 and body["result"]["method"] == "reports.delete", body
    assert l7net.received("reports.delete")
    st, _, body = post(lproxy, url, None, raw=b"{")
    assert st == 403 and body["error"]["data"]["reason_code"] == "l7_denied", body
    st, _, body = post(lproxy, url, {"jsonrpc": "2.0", "id": 9, "result": {"ok": True}})
    assert st == 403 and "response" in body["error"]["data"]["detail"], body
    st, _, body = post(lproxy, url, {"id": 3, "method": "initialize"})
    assert st == 403, body
    assert not [r for r in l7net.received("rpc") if '"ok"' in r["body"]]


def test_mcp_tools(lproxy, l7net):
    st, _, body = post(lproxy, MCP, call(1, "initialize"))
    assert st == 200, body
    st, _, body = post(lproxy, MCP, call(2, "tools/call", "search_web"))
    assert st == 200 and body["result"]["method"] == "tools/call", body
    st, _, body = post(lproxy, MCP, call(3, "tools/call", "send_email"))
    assert st == 403 and body["id"] == 3, body
    assert "deny_rules[0]" in body["error"]["data"]["detail"], body
    st, _, body = post(lproxy, MCP, call(4, "tools/call", "drop_database"))
    assert st == 403 and "tool: drop_database" in body["error"]["data"]["hint"], body
    st, _, body = post(lproxy, MCP, [call(5, "tools/call", "search_web"),
                                     call(6, "tools/call", "send_email")])
    assert st == 403, body
    assert not l7net.received("send_email") and not l7net.received("drop_database")
    # the body limit: a larger body is refused, never forwarded
    st, _, body = post(lproxy, MCP, None, raw=json.dumps(
        dict(call(7, "tools/call", "search_web"), pad="x" * 4096)).encode())
    assert st == 403 and "larger than 2048 bytes" in body["error"]["data"]["detail"], body
    # outside the endpoint's path
    st, _, body = post(lproxy, "http://mcp.insp.test:%d/other" % RPC_PORT, call(8, "initialize"))
    assert st == 403 and "outside the path" in body["error"]["data"]["detail"], body


def test_mcp_sse_response_is_not_buffered(lproxy, l7net):
    """The server sends its first event and then waits for /release: the
    client must see that event before the stream ends (a buffering proxy
    would hold it until the server finished, and this test would time out)."""
    req = urllib.request.Request(MCP, data=json.dumps(call(11, "tools/call", "stream")).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                                         "Accept": "text/event-stream"})
    with opener(lproxy).open(req, timeout=20) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        first = b""
        while b"notifications/progress" not in first:
            line = r.readline()
            assert line, first
            first += line
        # only now is the server allowed to finish
        with opener(lproxy).open("http://release.insp.test:%d/release" % RPC_PORT,
                                 timeout=20) as rel:
            assert json.loads(rel.read()) == {"released": True}
        rest = r.read()
    assert b'"content": "done"' in rest, rest
    # GET (the server's own SSE stream) carries no client call: allowed when it
    # accepts text/event-stream and has no body (as OpenShell requires)
    req = urllib.request.Request(MCP, headers={"Accept": "application/json, text/event-stream"})
    with opener(lproxy).open(req, timeout=20) as r:
        assert b"notifications/x" in r.read()
    for headers in ({}, {"Accept": "application/json"}):
        req = urllib.request.Request(MCP, headers=headers)
        with pytest.raises(urllib.error.HTTPError) as e:
            opener(lproxy).open(req, timeout=20)
        assert e.value.code == 403 and b"event stream" in e.value.read()
    req = urllib.request.Request(MCP, method="DELETE", headers={"Accept": "text/event-stream"})
    with pytest.raises(urllib.error.HTTPError) as e:
        opener(lproxy).open(req, timeout=20)
    assert e.value.code == 403


def test_graphql_operations(lproxy, l7net):
    st, _, body = post(lproxy, GQL, {"query": "query Viewer { viewer { login } }"})
    assert st == 200 and body["data"]["ok"], body
    st, _, body = post(lproxy, GQL, {"query": "mutation IssueNew { createIssue(t: 1) { id } }",
                                     "operationName": "IssueNew"})
    assert st == 200, body
    # an alias does not hide the field; the answer is in the GraphQL shape
    st, hdr, body = post(lproxy, GQL, {"query": "mutation IssueX { createIssue: "
                                                "deleteRepository(id: 1) { id } }"})
    assert st == 403 and hdr["X-Cordon-Deny"] == "l7_denied", body
    assert body["errors"][0]["extensions"]["reason_code"] == "l7_denied", body
    assert "deleteRepository" in body["detail"], body
    st, _, body = post(lproxy, GQL, {"query": "{ viewer secretToken }"})
    assert st == 403 and "deny_rules[0]" in body["detail"], body
    st, _, body = post(lproxy, GQL, [{"query": "{ viewer }"}, {"query": "{ secretA }"}])
    assert st == 403, body
    assert not l7net.received("deleteRepository") and not l7net.received("secret")
    # GET with the document in the query string
    with opener(lproxy).open(GQL + "?query=%7Bviewer%7Blogin%7D%7D", timeout=20) as r:
        assert json.loads(r.read())["data"]["doc"] == "{viewer{login}}"
    with pytest.raises(urllib.error.HTTPError) as e:
        opener(lproxy).open(GQL + "?query=%7BsecretA%7D", timeout=20)
    assert e.value.code == 403


def test_jsonrpc_in_an_inspected_tunnel(lproxy, l7net):
    """The same decision on the inspected-tunnel path (CONNECT, then plain
    HTTP requests inside), keep-alive included."""
    c = plain_tunnel(lproxy, "rpc.insp.test", RPC_PORT)
    try:
        hdrs = [("Content-Type", "application/json")]
        r = c.request("POST", "/rpc", "rpc.insp.test:%d" % RPC_PORT, hdrs,
                      json.dumps(call(1, "reports.search")).encode())
        assert r.status == 200 and r.json()["result"]["method"] == "reports.search", r
        r = c.request("POST", "/rpc", "rpc.insp.test:%d" % RPC_PORT, hdrs,
                      json.dumps(call(2, "tunnel.secret")).encode())
        assert r.status == 403 and r.json()["id"] == 2, r
    finally:
        c.close()
    assert not l7net.received("tunnel.secret")


def posted(l7net, ids):
    """The server's records of POSTs whose JSON-RPC id is in ids."""
    out = []
    for x in l7net.received('"POST"'):
        try:
            doc = json.loads(x["body"])
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("id") in ids:
            out.append(x)
    return out


def chunked_post(proxy, url, pieces, timeout=20):
    """python http.client sending the body chunked (one chunk per piece),
    absolute-form through the forward proxy."""
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        c.request("POST", url, body=iter(pieces), encode_chunked=True,
                  headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        r = c.getresponse()
        return r.status, r.headers, json.loads(r.read())
    finally:
        c.close()


def curl_chunked(url, data, proxy, extra=()):
    r = subprocess.run(["/usr/bin/curl", "-sS", "--max-time", "20", "-x",
                        "http://127.0.0.1:%d" % proxy.port, "-H", "Transfer-Encoding: chunked",
                        "-H", "Content-Type: application/json", "--data-binary", "@-",
                        "-w", "\n%{http_code}", *extra, url],
                       input=data, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code), json.loads(body)


def test_chunked_bodies_are_decoded_and_judged(lproxy, l7net):
    """Chunked request bodies are decoded (framing removed, at most the
    endpoint's limit), judged like Content-Length bodies, and forwarded as
    received: the server sees the same chunks. A denied call split across
    chunks never reaches the server."""
    ok = json.dumps(call(31, "reports.search")).encode()
    st, _, body = chunked_post(lproxy, RPC, [ok[:7], ok[7:20], ok[20:]])
    assert st == 200 and body["id"] == 31, body
    seen = posted(l7net, [31])
    assert len(seen) == 1 and seen[0]["body"] == ok.decode(), seen
    raw = seen[0]["raw_chunked"].encode("latin-1")
    assert raw == b"".join(b"%X\r\n%s\r\n" % (len(p), p) for p in (ok[:7], ok[7:20], ok[20:])) \
        + b"0\r\n\r\n", raw
    bad = json.dumps(call(32, "reports.chunkdelete")).encode()
    st, hdr, body = chunked_post(lproxy, RPC, [bad[:25], bad[25:]])
    assert st == 403 and hdr["X-Cordon-Deny"] == "l7_denied" and body["id"] == 32, body
    assert "reports.chunkdelete" in body["error"]["data"]["detail"], body
    # MCP: an allowed tool and a denied one; the limit counts decoded bytes
    st, _, body = chunked_post(lproxy, MCP, [json.dumps(call(33, "tools/call", "search_web"))
                                             .encode()])
    assert st == 200 and body["id"] == 33, body
    st, _, body = chunked_post(lproxy, MCP, [json.dumps(call(34, "tools/call", "send_email"))
                                             .encode()])
    assert st == 403 and body["id"] == 34 and "deny_rules[0]" in body["error"]["data"]["detail"]
    big = json.dumps(dict(call(35, "tools/call", "search_web"), pad="y" * 3000)).encode()
    st, _, body = chunked_post(lproxy, MCP, [big[i:i + 500] for i in range(0, len(big), 500)])
    assert st == 403 and "larger than 2048 bytes" in body["error"]["data"]["detail"], body
    # GraphQL
    st, _, body = chunked_post(lproxy, GQL, [b'{"query": "query V { vie', b'wer { login } }"}'])
    assert st == 200 and body["data"]["ok"], body
    st, _, body = chunked_post(lproxy, GQL, [b'{"query": "mutation IssueX { delete', b'Repo }"}'])
    assert st == 403 and body["errors"][0]["extensions"]["reason_code"] == "l7_denied", body
    assert not l7net.received("chunkdelete") and not l7net.received("send_email")
    assert not l7net.received("deleteRepo")


def test_chunked_bodies_from_curl(lproxy, l7net):
    """curl -H 'Transfer-Encoding: chunked' (forward proxy): allowed and
    denied JSON-RPC calls, and the same through CONNECT (--proxytunnel)."""
    st, body = curl_chunked(RPC, json.dumps(call(41, "reports.search")).encode(), lproxy)
    assert st == 200 and body["id"] == 41, body
    st, body = curl_chunked(RPC, json.dumps(call(42, "reports.curldelete")).encode(), lproxy)
    assert st == 403 and body["id"] == 42, body
    st, body = curl_chunked(RPC, json.dumps(call(43, "reports.search")).encode(), lproxy,
                            ("--proxytunnel",))
    assert st == 200 and body["id"] == 43, body
    st, body = curl_chunked(RPC, json.dumps(call(44, "reports.curldelete")).encode(), lproxy,
                            ("--proxytunnel",))
    assert st == 403 and body["id"] == 44, body
    seen = posted(l7net, [41, 42, 43, 44])
    assert sorted(json.loads(x["body"])["id"] for x in seen) == [41, 43], seen
    assert all("raw_chunked" in x for x in seen), seen
    assert not l7net.received("curldelete")


def test_chunked_body_with_bad_framing_is_refused(lproxy, l7net):
    """A judged chunked body with broken framing: 400, nothing forwarded."""
    for n, raw in enumerate((b"zz\r\n{}\r\n0\r\n\r\n",
                             b"5\r\n{\"a\":XX0\r\n\r\n",
                             b"3;ext\n{}\r\n0\r\n\r\n")):
        c = plain_tunnel(lproxy, "rpc.insp.test", RPC_PORT)
        try:
            c.send(("POST /rpc-badframe-%d HTTP/1.1\r\nHost: rpc.insp.test:%d\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n" % (n, RPC_PORT)).encode() + raw)
            r = c.read_response("POST")
            assert r.status == 400 and r.json()["reason_code"] == "bad_request_body", r
        finally:
            c.close()
    assert not l7net.received("badframe")


def test_body_in_pieces_and_larger_than_the_input_buffer(lproxy, l7net):
    """The proxy waits for the whole Content-Length body, however it arrives,
    and a body larger than its usual input buffer (40 KiB, under the 64 KiB
    default limit) is held, judged and forwarded byte for byte."""
    c = plain_tunnel(lproxy, "rpc.insp.test", RPC_PORT)
    try:
        body = json.dumps(dict(call(21, "reports.search"), params={"pad": "p" * 40000})).encode()
        head = ("POST /rpc HTTP/1.1\r\nHost: rpc.insp.test:%d\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (RPC_PORT, len(body))).encode()
        c.send(head)
        c.send(body[:1000])
        c.send(body[1000:])
        r = c.read_response("POST")
        assert r.status == 200 and r.json()["id"] == 21, r
        seen = [x for x in l7net.received("p" * 100) if x["method"] == "POST"]
        assert len(seen) == 1 and seen[0]["body"] == body.decode(), len(seen)
        # the same connection goes on with the next request
        r = c.request("POST", "/rpc", "rpc.insp.test:%d" % RPC_PORT,
                      [("Content-Type", "application/json")],
                      json.dumps(call(22, "reports.nope")).encode())
        assert r.status == 403 and r.json()["id"] == 22, r
    finally:
        c.close()


def test_refused_body_over_the_limit_is_still_answered(lproxy, l7net):
    """A body over the endpoint's limit (2048 bytes for mcp.insp.test) is
    refused as soon as the proxy knows; the client, still sending the rest
    (200 KiB here), must read the 403 and not a reset: the proxy shuts its
    write side after the answer and reads and drops what the client still
    sends until the client closes (lingering close)."""
    body = b"x" * (200 * 1024)
    for framing in ("length", "chunked"):
        s = socket.create_connection(("127.0.0.1", lproxy.port), timeout=20)
        try:
            head = ("POST %s HTTP/1.1\r\nHost: mcp.insp.test:%d\r\n"
                    "Content-Type: application/json\r\n" % (MCP, RPC_PORT))
            if framing == "length":
                s.sendall((head + "Content-Length: %d\r\n\r\n" % len(body)).encode())
                s.sendall(body)
            else:
                s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
                for i in range(0, len(body), 1000):
                    s.sendall(b"3E8\r\n" + body[i:i + 1000] + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            got = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        finally:
            s.close()
        status = got.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 403"), (framing, got[:300])
        assert b"larger than 2048 bytes" in got, (framing, got[:600])
    assert not l7net.received("xxxxxxxxxxxxxxxx")
