"""Inference routing through a standalone `cordon proxy`: requests for
inference.local (any case, any port, trailing dot) are intercepted before the
network policy and routed to the fake model server on the host's loopback;
curl, python urllib and the official openai / @anthropic-ai/sdk packages are
the clients. The policy allows nothing: every answer comes from the route."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from inference_fixtures import (FAKE_KEY, KEY_ENV, NODE_MODULES, SDK_CLIENT, fake_llm,  # noqa: F401
                                fake_llm_tls, routes_file, sse_events)

POLICY = "version: 1\n"


def wait_events(p, n, **match):
    """The proxy writes an inference event once the exchange is over, which
    can be just after the client has its answer: wait for n of them."""
    from lib import util
    util.wait_until(lambda: len(p.events("inference", **match)) >= n, 10,
                    what="%d inference event(s) %r" % (n, match))
    return p.events("inference", **match)


@pytest.fixture
def infer_proxy(cordon_proxy, fake_llm, tmp_path, monkeypatch):
    """factory(idle_s=None, extra="", top="", base=None) → (proxy, ca path)"""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)

    def make(idle_s=None, extra="", top="", base=None, policy=POLICY, args=()):
        routes = routes_file(tmp_path, fake_llm, extra=extra, idle_s=idle_s, top=top, base=base)
        ca = str(tmp_path / ("ca-%d.pem" % time.monotonic_ns()))
        p = cordon_proxy(policy, "--inference-routes", routes, "--ca-cert-out", ca, *args)
        return p, ca
    return make


def curl(proxy, ca, url, body=None, headers=(), tunnel=False, timeout=30):
    a = ["curl", "-sS", "-m", str(timeout), "--noproxy", "", "-x", proxy.url, "--cacert", ca,
         "-w", "\n%{http_code}"]
    if tunnel:
        a.append("-p")
    for h in headers:
        a += ["-H", h]
    if body is not None:
        a += ["-H", "content-type: application/json", "--data-binary", json.dumps(body)]
    r = subprocess.run(a + [url], capture_output=True, text=True, timeout=timeout + 5)
    text, _, code = r.stdout.rpartition("\n")
    return int(code or 0), text, r.returncode


def chat(model, stream=False):
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.timeout(60)
def test_curl_http_https_any_port(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    cases = [("http://inference.local/v1/chat/completions", False),
             ("http://Inference.LOCAL:8000/v1/chat/completions", False),
             ("http://inference.local./v1/chat/completions", True),    # CONNECT, plaintext inside
             ("http://inference.local:8000/v1/chat/completions", True),
             ("https://inference.local/v1/chat/completions", False),  # CONNECT + TLS
             ("https://inference.local:8443/v1/chat/completions", False)]
    for url, tunnel in cases:
        code, text, rc = curl(p, ca, url, chat("fast"), tunnel=tunnel)
        assert (code, rc) == (200, 0), (url, code, text)
        body = json.loads(text)
        assert body["model"] == "fake-model-1"                  # alias rewritten
        assert body["choices"][0]["message"]["content"] == "echo:fake-model-1"
    seen = fake_llm.seen()
    assert len(seen) == len(cases)
    for s in seen:
        assert s["headers"]["authorization"] == "Bearer " + FAKE_KEY
        assert s["body"]["model"] == "fake-model-1"
        assert s["path"] == "/v1/chat/completions"
    ev = wait_events(p, len(cases), outcome="completed")
    assert len(ev) == len(cases)
    e = ev[0]
    assert e["route"] == "fake" and e["shape"] == "openai_chat_completions"
    assert e["model_requested"] == "fast" and e["model_sent"] == "fake-model-1"
    assert e["status"] == 200 and e["input_tokens"] == 5 and e["output_tokens"] == 2
    assert e["host"] == "inference.local" and e["backend"] == fake_llm.url
    assert e["ttfb_ms"] is not None and e["bytes_up"] > 0 and e["bytes_down"] > 0
    assert FAKE_KEY not in open(p.audit_path).read()            # never a credential value


@pytest.mark.timeout(60)
def test_python_urllib_http_and_https(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    ctx = ssl.create_default_context(cafile=ca)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": p.url, "https": p.url}),
        urllib.request.HTTPSHandler(context=ctx))
    for url in ("http://inference.local/v1/messages", "https://inference.local/v1/messages",
                "https://inference.local:443/v1/messages"):
        req = urllib.request.Request(url, data=json.dumps({"model": "claude-x", "max_tokens": 5,
                                                           "messages": []}).encode(),
                                     headers={"content-type": "application/json",
                                              "anthropic-version": "2023-06-01",
                                              "x-api-key": "sk-ant-sandbox"})
        with opener.open(req, timeout=20) as r:
            body = json.loads(r.read())
        assert body["content"][0]["text"] == "echo:claude-x"
    for s in fake_llm.seen():
        assert s["headers"]["x-api-key"] == FAKE_KEY
        assert s["headers"]["anthropic-version"] == "2023-06-01"


@pytest.mark.timeout(60)
def test_sandbox_credentials_never_reach_backend(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    code, text, _ = curl(p, ca, "https://inference.local/v1/chat/completions", chat("m"),
                         headers=["Authorization: Bearer sk-sandbox-secret",
                                  "x-api-key: sk-sandbox-secret", "Cookie: session=sk-sandbox-secret",
                                  "X-Goog-Api-Key: sk-sandbox-secret", "X-Custom: hello",
                                  "OpenAI-Organization: org-sandbox-secret"])
    assert code == 200, text
    (s,) = fake_llm.seen()
    assert s["headers"]["authorization"] == "Bearer " + FAKE_KEY
    assert "sandbox-secret" not in json.dumps(s)
    for h in ("x-api-key", "cookie", "x-goog-api-key", "x-custom", "openai-organization"):
        assert h not in s["headers"], h
    (e,) = wait_events(p, 1, outcome="completed")
    assert e["credentials_stripped"] == 4    # authorization, x-api-key, cookie, x-goog-api-key
    assert e["credential_injected"] == "env:" + KEY_ENV


@pytest.mark.timeout(60)
def test_streams_relayed_per_api(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    code, text, _ = curl(p, ca, "http://inference.local/v1/chat/completions", chat("m", True))
    ev = sse_events(text)
    assert code == 200 and ev[-1] == "[DONE]", text
    assert "".join(e["choices"][0]["delta"]["content"] for e in ev[:-2]) == "t0 t1 t2 "
    code, text, _ = curl(p, ca, "https://inference.local/v1/messages",
                         {"model": "m", "stream": True, "max_tokens": 5, "messages": []},
                         headers=["anthropic-version: 2023-06-01"])
    assert code == 200 and "event: message_stop" in text, text
    code, text, _ = curl(p, ca, "http://inference.local/api/chat", {"model": "m", "messages": []})
    lines = [json.loads(x) for x in text.splitlines() if x]
    assert code == 200 and lines[-1]["done"] is True and len(lines) == 4, text
    (tags,) = [curl(p, ca, "http://inference.local/api/tags")]
    assert tags[0] == 200 and json.loads(tags[1])["models"][0]["name"] == "fake-1"
    assert [s["path"] for s in fake_llm.seen()] == ["/v1/chat/completions", "/v1/messages",
                                                   "/api/chat", "/api/tags"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("url,body,marker", [
    ("http://inference.local/v1/chat/completions", {"model": "kill-2", "stream": True}, "data: {\"error\":"),
    ("https://inference.local/v1/responses", {"model": "kill-2", "stream": True}, "event: error\ndata: {\"type\":\"error\""),
    ("http://inference.local/v1/messages", {"model": "kill-2", "stream": True}, "event: error\ndata: {\"type\":\"error\""),
    ("https://inference.local/api/generate", {"model": "kill-2"}, "{\"error\":"),
])
def test_mid_stream_kill_ends_with_error_event(infer_proxy, fake_llm, url, body, marker):
    p, ca = infer_proxy()
    code, text, rc = curl(p, ca, url, body)
    assert code == 200, text
    assert "t1 " in text and marker in text, text
    assert text.rstrip().endswith("}"), text                     # the error is the last thing
    assert "[DONE]" not in text and "message_stop" not in text and "\"done\": true" not in text
    from lib import util
    util.wait_until(lambda: p.events("inference", outcome="upstream_read_error") or
                    p.events("inference", outcome="upstream_closed_mid_response"), 10,
                    what="the cut stream's inference event")
    (e,) = p.events("inference", outcome="upstream_read_error") or \
        p.events("inference", outcome="upstream_closed_mid_response")
    assert e["status"] == 200


@pytest.mark.timeout(60)
def test_slow_stream_within_idle_limit_is_never_cut(infer_proxy, fake_llm):
    """Chunks every 2 s, idle limit 5 s, 8 chunks (about 16 s): all arrive."""
    p, ca = infer_proxy(idle_s=5)
    t0 = time.monotonic()
    code, text, rc = curl(p, ca, "https://inference.local/v1/chat/completions",
                          chat("slow-2000-8", True), timeout=50)
    ev = sse_events(text)
    assert (code, rc) == (200, 0) and ev[-1] == "[DONE]", text
    assert len(ev) == 10                                          # 8 pieces, usage, [DONE]
    assert time.monotonic() - t0 >= 14                            # the stream really was slow
    (e,) = wait_events(p, 1, outcome="completed")
    assert e["output_tokens"] == 8


@pytest.mark.timeout(60)
def test_idle_backend_ends_with_error_event(infer_proxy, fake_llm):
    """Chunks every 8 s with the idle limit at 5 s: cut after the first, with an error event."""
    p, ca = infer_proxy(idle_s=5)
    code, text, rc = curl(p, ca, "http://inference.local/v1/messages",
                          {"model": "slow-8000-3", "stream": True, "max_tokens": 5, "messages": []},
                          timeout=40)
    assert code == 200, text
    assert "t0 " in text and "t1 " not in text
    assert "event: error" in text and "idle_timeout" in text, text
    assert wait_events(p, 1, outcome="idle_timeout")


@pytest.mark.timeout(60)
def test_unknown_path_gets_json_error_in_callers_shape(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    code, text, _ = curl(p, ca, "http://inference.local/v1/nothing")
    assert code == 404 and json.loads(text)["error"]["code"] == "unknown_inference_path", text
    code, text, _ = curl(p, ca, "https://inference.local/v1/other", {"x": 1},
                         headers=["anthropic-version: 2023-06-01"])
    body = json.loads(text)
    assert code == 404 and body["type"] == "error" and body["error"]["type"] == "not_found_error"
    code, text, _ = curl(p, ca, "http://inference.local/api/pull", {"name": "x"})
    assert code == 404 and "not an inference API call" in json.loads(text)["error"]
    assert fake_llm.seen() == []                                  # none of these reached it


@pytest.mark.timeout(60)
def test_first_byte_zero_refused_with_event(infer_proxy):
    p, ca = infer_proxy()
    s = socket.create_connection(p.addr, timeout=10)
    s.sendall(b"CONNECT inference.local:443 HTTP/1.1\r\nHost: inference.local:443\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.sendall(b"\x00\x00\x00\x00")
    try:
        assert s.recv(100) == b""                                  # closed ...
    except ConnectionResetError:
        pass                                                       # ... with our bytes unread
    s.close()
    (e,) = p.wait_events(1, event="decision", reason_code="inference_bad_first_byte")
    assert "0x00" in e["detail"]


@pytest.mark.timeout(60)
def test_keepalive_and_pipelining_in_one_tunnel(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    s = socket.create_connection(p.addr, timeout=10)
    body = json.dumps({"model": "fast", "input": "x"}).encode()
    s.sendall(b"CONNECT inference.local:80 HTTP/1.1\r\nHost: inference.local:80\r\n\r\n"
              b"GET /v1/models HTTP/1.1\r\nHost: inference.local\r\n\r\n"
              b"POST /v1/embeddings HTTP/1.1\r\nHost: inference.local\r\nContent-Length: %d\r\n\r\n%s"
              b"GET /api/tags HTTP/1.1\r\nHost: inference.local\r\n\r\n" % (len(body), body))
    data = b""
    while data.count(b"HTTP/1.1 200") < 4:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    s.close()
    assert b"fake-model-1" in data and b'"fake-1"' in data
    assert [x["path"] for x in fake_llm.seen()] == ["/v1/models", "/v1/embeddings", "/api/tags"]


@pytest.mark.timeout(60)
def test_body_limit_413_in_api_shape(infer_proxy, fake_llm):
    p, ca = infer_proxy(top="max_body_bytes: 2048\n")
    big = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 4000}]}
    code, text, _ = curl(p, ca, "http://inference.local/v1/messages", big,
                         headers=["anthropic-version: 2023-06-01"])
    body = json.loads(text)
    assert code == 413 and body["error"]["type"] == "request_too_large", text
    assert fake_llm.seen() == []


@pytest.mark.timeout(60)
def test_route_chosen_by_model(infer_proxy, fake_llm):
    extra = ("  - name: small\n    shapes: [openai_chat_completions]\n"
             "    base_url: %s\n    credential: {env: %s}\n    models: [\"tiny-*\"]\n"
             "    model: fake-tiny\n" % (fake_llm.url, KEY_ENV))
    p, ca = infer_proxy(extra=extra)
    code, text, _ = curl(p, ca, "http://inference.local/v1/chat/completions", chat("tiny-1"))
    assert code == 200 and json.loads(text)["model"] == "fake-tiny"
    code, text, _ = curl(p, ca, "http://inference.local/v1/chat/completions", chat("big-1"))
    assert code == 200 and json.loads(text)["model"] == "big-1"
    assert [e["route"] for e in wait_events(p, 2, outcome="completed")] == ["small", "fake"]


@pytest.mark.timeout(60)
def test_websocket_on_responses_refused_426(infer_proxy, fake_llm):
    p, ca = infer_proxy()
    code, text, _ = curl(p, ca, "http://inference.local/v1/responses",
                         headers=["Connection: Upgrade", "Upgrade: websocket",
                                  "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
    assert code == 426 and json.loads(text)["error"]["code"] == "websocket_unsupported", text
    assert fake_llm.seen() == []


@pytest.mark.timeout(60)
def test_loopback_route_works_but_direct_connect_refused(infer_proxy, fake_llm, dns_server):
    """The route points at the host's loopback; the sandbox itself may not go
    there: not by address, and not by a name the policy allows that resolves
    to it (the address fence)."""
    dns_server.set("llm-loop.test", "127.0.0.1")
    pol = ("version: 1\nnetwork_policies:\n  llm:\n    endpoints:\n"
           "      - {host: llm-loop.test, port: %d}\n    binaries:\n      - {path: /usr/bin/curl}\n"
           % fake_llm.port)
    p, ca = infer_proxy(policy=pol)
    code, text, _ = curl(p, ca, "http://inference.local/v1/chat/completions", chat("m"))
    assert code == 200
    code, text, _ = curl(p, ca, "http://llm-loop.test:%d/v1/chat/completions" % fake_llm.port, chat("m"))
    assert code == 403 and "address_blocked" in text, text
    code, text, _ = curl(p, ca, "http://llm-loop.test:%d/v1/chat/completions" % fake_llm.port, chat("m"),
                         tunnel=True)
    assert code in (0, 403), text                                  # CONNECT refused
    for host in (b"127.0.0.1", b"localhost"):
        s = socket.create_connection(p.addr, timeout=10)
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, fake_llm.port, host))
        assert s.recv(200).startswith(b"HTTP/1.1 403")
        s.close()
    assert len(fake_llm.seen()) == 1


@pytest.mark.timeout(60)
def test_no_routes_configured_answers_503(cordon_proxy):
    p = cordon_proxy(POLICY)
    r = subprocess.run(["curl", "-sS", "--noproxy", "", "-x", p.url, "-w", "\n%{http_code}",
                        "http://inference.local/v1/chat/completions", "-d", "{}"],
                       capture_output=True, text=True, timeout=20)
    text, _, code = r.stdout.rpartition("\n")
    assert code == "503" and json.loads(text)["error"]["code"] == "inference_not_configured"


@pytest.mark.timeout(60)
def test_bad_routes_file_fails_with_position(cordon_bin, tmp_path):
    pol = tmp_path / "p.yaml"
    pol.write_text(POLICY)
    routes = tmp_path / "r.yaml"
    routes.write_text("routes:\n  - name: a\n    base_url: ftp://x\n    shapez: [openai]\n")
    r = subprocess.run([cordon_bin, "proxy", "--policy", str(pol), "--listen", "127.0.0.1:0",
                        "--inference-routes", str(routes)], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "%s:3:15: error: routes[0].base_url" % routes in r.stderr, r.stderr
    assert "%s:4:5: error: routes[0]: unknown field 'shapez' (did you mean 'shapes'?)" % routes in r.stderr


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sdk,base,model", [
    ("openai", "http://inference.local/v1", "fast"),
    ("openai", "https://inference.local/v1", "fast"),
    ("anthropic", "http://inference.local", "claude-x"),
    ("anthropic", "https://inference.local", "claude-x"),
])
def test_official_sdks(infer_proxy, fake_llm, sdk, base, model):
    if not os.path.isdir(os.path.join(NODE_MODULES, "openai")):
        pytest.fail("tests/node/node_modules is missing: run scripts/setup")
    p, ca = infer_proxy()
    env = dict(os.environ, HTTPS_PROXY=p.url, HTTP_PROXY=p.url, NO_PROXY="", NODE_EXTRA_CA_CERTS=ca,
               NODE_NO_WARNINGS="1")
    want = "fake-model-1" if model == "fast" else model
    for mode in ("whole", "stream"):
        r = subprocess.run(["node", SDK_CLIENT, sdk, base, model, mode], capture_output=True, text=True,
                           timeout=40, env=env)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["error"] is None, (out, r.stderr)
        assert out["model"] == want
        assert out["text"] == ("echo:" + want if mode == "whole" else "t0 t1 t2 "), out
    r = subprocess.run(["node", SDK_CLIENT, sdk, base, "kill-2", "stream"], capture_output=True,
                       text=True, timeout=40, env=env)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["text"] == "t0 t1 " and "failed mid-way" in (out["error"] or ""), out
    for s in fake_llm.seen():
        assert "must-not-leak" not in json.dumps(s)


@pytest.mark.timeout(60)
def test_routes_reload_with_the_policy(infer_proxy, fake_llm, tmp_path):
    """SIGHUP reloads the routes with the policy; a broken file keeps the old ones."""
    import signal
    from lib import util
    p, ca = infer_proxy()
    path = str(tmp_path / "routes.yaml")
    text = open(path).read()
    with open(path, "w") as f:
        f.write(text.replace("fast: fake-model-1", "fast: fake-model-2"))
    p.send_signal(signal.SIGHUP)
    util.wait_until(lambda: "routes.yaml reloaded" in p.stderr, 10, what="routes reloaded")
    code, body, _ = curl(p, ca, "http://inference.local/v1/chat/completions", chat("fast"))
    assert code == 200 and json.loads(body)["model"] == "fake-model-2"
    with open(path, "w") as f:
        f.write("routes:\n  - name: broken\n    base_url: nope\n")
    p.send_signal(signal.SIGHUP)
    util.wait_until(lambda: "keeping the previous routes" in p.stderr, 10, what="reload refused")
    assert "routes.yaml:3:15: error: routes[0].base_url" in p.stderr
    code, body, _ = curl(p, ca, "http://inference.local/v1/chat/completions", chat("fast"))
    assert code == 200 and json.loads(body)["model"] == "fake-model-2"


def ws_handshake(sock, host=b"inference.local"):
    sock.sendall(b"GET /v1/responses HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                 b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Authorization: Bearer sk-sandbox-ws\r\n\r\n" % host)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    return head


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls", [False, True])
def test_websocket_on_responses_relayed_when_backend_supports_it(infer_proxy, fake_llm, tls):
    p, ca = infer_proxy(extra="")
    # a second file with websocket: true on the route
    path = p.args[p.args.index("--inference-routes") + 1]
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("    aliases:", "    websocket: true\n    aliases:"))
    import signal
    from lib import util
    p.send_signal(signal.SIGHUP)
    util.wait_until(lambda: "routes.yaml reloaded" in p.stderr, 10, what="routes reloaded")
    s = socket.create_connection(p.addr, timeout=10)
    s.sendall(b"CONNECT inference.local:443 HTTP/1.1\r\nHost: inference.local:443\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    if tls:
        s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="inference.local")
    head = ws_handshake(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    msg = b'{"type":"response.create"}'
    mask = b"\x01\x02\x03\x04"
    s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
    frame = b""
    while len(frame) < 2 or len(frame) < 2 + frame[1]:
        chunk = s.recv(4096)
        assert chunk, frame
        frame += chunk
    assert frame[0] == 0x81 and json.loads(frame[2:2 + frame[1]]) == {"type": "echo", "data": msg.decode()}
    s.close()
    (seen,) = fake_llm.seen()
    assert seen["headers"]["authorization"] == "Bearer " + FAKE_KEY
    assert seen["headers"]["upgrade"] == "websocket"
    util.wait_until(lambda: p.events("inference", outcome="upgraded"), 10, what="upgrade event")


@pytest.mark.timeout(60)
def test_expect_100_continue(infer_proxy, fake_llm):
    """A client that waits for 100 Continue gets it before it sends the body."""
    p, ca = infer_proxy()
    body = json.dumps(chat("fast")).encode()
    s = socket.create_connection(p.addr, timeout=10)
    s.sendall(b"POST http://inference.local/v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\n"
              b"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
              % len(body))
    assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(body)
    data = b""
    while b"echo:fake-model-1" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert "expect" not in fake_llm.seen()[0]["headers"]


@pytest.mark.timeout(60)
def test_forward_requests_reuse_the_backend_connection(infer_proxy, fake_llm):
    """Absolute-form requests on one proxy connection share one backend
    connection (conn.c drops it as soon as a request names another host)."""
    p, ca = infer_proxy()
    body = json.dumps(chat("fast")).encode()
    req = (b"POST http://inference.local/v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    s = socket.create_connection(p.addr, timeout=10)
    for i in range(3):
        s.sendall(req)
        data = b""
        while b"echo:fake-model-1" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    s.close()
    ports = {x["peer_port"] for x in fake_llm.seen()}
    assert len(fake_llm.seen()) == 3 and len(ports) == 1, fake_llm.seen()


@pytest.mark.timeout(60)
def test_https_backend_verified(infer_proxy, fake_llm_tls):
    """base_url https://: the backend's certificate is verified (here against
    --upstream-ca); without the trust anchor the request fails in the API's shape."""
    p, ca = infer_proxy(base=fake_llm_tls.url + "/v1", args=("--upstream-ca", fake_llm_tls.ca))
    code, text, _ = curl(p, ca, "https://inference.local/v1/chat/completions", chat("fast"))
    assert code == 200 and json.loads(text)["model"] == "fake-model-1", text
    code, text, _ = curl(p, ca, "http://inference.local/v1/messages",
                         {"model": "kill-1", "stream": True, "max_tokens": 5, "messages": []})
    assert "event: error" in text and "t0 " in text, text
    assert len(fake_llm_tls.seen()) == 2
    assert fake_llm_tls.seen()[0]["headers"]["authorization"] == "Bearer " + FAKE_KEY
    p2, ca2 = infer_proxy(base=fake_llm_tls.url + "/v1")          # no --upstream-ca
    code, text, _ = curl(p2, ca2, "http://inference.local/v1/chat/completions", chat("fast"))
    body = json.loads(text)
    assert code in (403, 502) and body["error"]["code"] == "upstream_tls_invalid", text
    assert len(fake_llm_tls.seen()) == 2


@pytest.mark.timeout(90)
def test_chunked_request_bodies_are_routed(infer_proxy, fake_llm):
    """A chunked request body is decoded (at most the body limit) and sent to
    the backend with Content-Length: curl -H 'Transfer-Encoding: chunked'
    over http and https, python http.client with encode_chunked, and a
    chunked request pipelined before another in one tunnel. Too large: 413
    in the API's shape; broken framing: 400; neither reaches the backend."""
    p, ca = infer_proxy(top="max_body_bytes: 4096\n")
    for url in ("http://inference.local/v1/chat/completions",
                "https://inference.local/v1/chat/completions"):
        code, text, rc = curl(p, ca, url, chat("fast"), headers=["Transfer-Encoding: chunked"])
        assert (code, rc) == (200, 0), (url, code, text)
        assert json.loads(text)["choices"][0]["message"]["content"] == "echo:fake-model-1"
    c = http.client.HTTPConnection(p.addr[0], p.addr[1], timeout=20)
    raw = json.dumps(chat("fast")).encode()
    c.request("POST", "http://inference.local/v1/chat/completions",
              body=iter([raw[:10], raw[10:30], raw[30:]]), encode_chunked=True,
              headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    r = c.getresponse()
    assert r.status == 200 and b"echo:fake-model-1" in r.read()
    c.close()
    seen = fake_llm.seen()
    assert len(seen) == 3
    for s in seen:
        assert s["body"]["model"] == "fake-model-1", s
        assert "transfer-encoding" not in s["headers"], s["headers"]
        assert int(s["headers"]["content-length"]) > 0, s["headers"]
    # pipelined: a chunked POST, then a GET, in one plaintext tunnel
    s = socket.create_connection(p.addr, timeout=10)
    body = json.dumps({"model": "fast", "input": "x"}).encode()
    s.sendall(b"CONNECT inference.local:80 HTTP/1.1\r\nHost: inference.local:80\r\n\r\n"
              b"POST /v1/embeddings HTTP/1.1\r\nHost: inference.local\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
              b"GET /api/tags HTTP/1.1\r\nHost: inference.local\r\n\r\n" % (len(body), body))
    data = b""
    while data.count(b"HTTP/1.1 200") < 3:  # the CONNECT's, then both requests'
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    s.close()
    assert [x["path"] for x in fake_llm.seen()[3:]] == ["/v1/embeddings", "/api/tags"]
    # too large (decoded), and broken framing: never forwarded
    big = chat("fast")
    big["messages"][0]["content"] = "x" * 8000
    code, text, _ = curl(p, ca, "http://inference.local/v1/chat/completions", big,
                         headers=["Transfer-Encoding: chunked"])
    assert code == 413 and "body limit" in text, text
    s = socket.create_connection(p.addr, timeout=10)
    s.sendall(b"POST http://inference.local/v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\n"
              b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 400"), data
    assert len(fake_llm.seen()) == 5
