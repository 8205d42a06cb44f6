"""Inference routing from inside `cordon run`: the sandboxed command talks to
http(s)://inference.local with curl, python urllib and the official openai /
@anthropic-ai/sdk packages; the route points at the fake model server on the
host's loopback, which the sandbox itself can never reach."""
import json
import os

import pytest

from inference_fixtures import (FAKE_KEY, KEY_ENV, NODE_MODULES, SDK_CLIENT, fake_llm,  # noqa: F401
                                routes_file)
from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

POLICY = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, {tests}]
  read_write: [/dev/null]
landlock:
  compatibility: best_effort
"""

URLLIB = r"""
import json, sys, urllib.request
url, body = sys.argv[1], json.dumps({"model": "fast", "messages": []}).encode()
req = urllib.request.Request(url, data=body, headers={"content-type": "application/json",
                                                      "authorization": "Bearer sk-sandbox-own"})
with urllib.request.urlopen(req, timeout=20) as r:
    print("urllib", url, json.loads(r.read())["choices"][0]["message"]["content"])
"""


def run(sb, fake, tmp_path, script, idle_s=None, timeout=60):
    routes = routes_file(tmp_path, fake, idle_s=idle_s)
    sb.write_policy(POLICY.format(tests=TESTS), "infer.yaml")
    return sb.run(["sh", "-c", script], args=["--inference-routes", routes],
                  env={KEY_ENV: FAKE_KEY}, timeout=timeout)


@pytest.mark.timeout(90)
def test_curl_and_urllib_inside_sandbox(sandbox, fake_llm, tmp_path):
    body = json.dumps({"model": "fast", "messages": []})
    curl = ("curl -sS -m 20 -H 'authorization: Bearer sk-sandbox-own' -H 'content-type: application/json' "
            "-d '%s' -w ' status=%%{http_code}\\n' " % body)
    script = "; ".join([
        curl + "http://inference.local/v1/chat/completions",
        curl + "http://inference.local:8000/v1/chat/completions",
        curl + "-p http://inference.local:8000/v1/chat/completions",
        curl + "https://inference.local/v1/chat/completions",
        curl + "https://inference.local:8443/v1/chat/completions",
        "/usr/bin/python3 -c '%s' http://inference.local/v1/chat/completions" % URLLIB.replace("'", "'\"'\"'"),
        "/usr/bin/python3 -c '%s' https://inference.local/v1/chat/completions" % URLLIB.replace("'", "'\"'\"'"),
        "echo key=${%s:-unset}" % KEY_ENV,
    ])
    r = run(sandbox, fake_llm, tmp_path, script)
    assert r.code == 0, r
    assert r.out.count("echo:fake-model-1") == 7 and r.out.count("status=200") == 5, r
    assert "key=unset" in r.out                   # the route's key is the supervisor's, not the sandbox's
    seen = fake_llm.seen()
    assert len(seen) == 7
    for s in seen:
        assert s["headers"]["authorization"] == "Bearer " + FAKE_KEY
        assert "sk-sandbox-own" not in json.dumps(s)
    ev = r.events("inference", outcome="completed")
    assert len(ev) == 7
    bins = [e["binary"] for e in ev]                 # the caller is named, for the audit only
    assert bins.count("/usr/bin/curl") == 5 and all(b.startswith("/usr/bin/python3") for b in bins[5:]), bins


@pytest.mark.timeout(120)
def test_official_sdks_inside_sandbox(sandbox, fake_llm, tmp_path):
    if not os.path.isdir(os.path.join(NODE_MODULES, "openai")):
        pytest.fail("tests/node/node_modules is missing: run scripts/setup")
    cmds = []
    for sdk, base, model in (("openai", "http://inference.local/v1", "fast"),
                             ("openai", "https://inference.local/v1", "fast"),
                             ("anthropic", "http://inference.local", "claude-x"),
                             ("anthropic", "https://inference.local", "claude-x")):
        for mode in ("whole", "stream"):
            cmds.append("NODE_NO_WARNINGS=1 node %s %s %s %s %s" % (SDK_CLIENT, sdk, base, model, mode))
    r = run(sandbox, fake_llm, tmp_path, "; ".join(cmds), timeout=100)
    assert r.code == 0, r
    outs = [json.loads(x) for x in r.out.splitlines() if x.startswith("{")]
    assert len(outs) == 8, r
    for o in outs:
        assert o["error"] is None, (o, r.err[-2000:])
        want = "fake-model-1" if o["sdk"] == "openai" else "claude-x"
        assert o["model"] == want
        assert o["text"] == ("t0 t1 t2 " if o["stream"] else "echo:" + want)
    for s in fake_llm.seen():
        assert "must-not-leak" not in json.dumps(s)
        cred = s["headers"].get("authorization") or s["headers"].get("x-api-key")
        assert FAKE_KEY in cred


@pytest.mark.timeout(90)
def test_stream_kill_and_slow_stream_inside_sandbox(sandbox, fake_llm, tmp_path):
    c = ("curl -sS -m 40 -H 'content-type: application/json' -d '{\"model\":\"%s\",\"stream\":true}' "
         "https://inference.local/v1/chat/completions; echo; echo rc=$?")
    r = run(sandbox, fake_llm, tmp_path, (c % "kill-2") + "; " + (c % "slow-2000-4"), idle_s=5, timeout=80)
    assert r.code == 0, r
    first, _, second = r.out.partition("rc=0")
    assert "t1 " in first and "data: {\"error\":" in first and "[DONE]" not in first, r.out
    assert "t3 " in second and "data: [DONE]" in second and "error" not in second, r.out


@pytest.mark.timeout(90)
def test_loopback_backend_unreachable_directly_from_sandbox(sandbox, fake_llm, tmp_path):
    port = fake_llm.port
    script = "; ".join([
        "curl -sS -m 10 -o /dev/null -w 'route=%{http_code}\\n' -d '{\"model\":\"m\"}' "
        "http://inference.local/v1/chat/completions",
        # through the proxy, by address (CONNECT and forward)
        "curl -sS -m 10 -o /dev/null -w 'fwd=%%{http_code}\\n' --noproxy '' http://127.0.0.1:%d/v1/models" % port,
        "curl -sS -m 10 -o /dev/null -w 'tunnel=%%{http_code}\\n' --noproxy '' -p http://127.0.0.1:%d/v1/models; true"
        % port,
        # around the proxy: the sandbox's loopback is its own; the host is fenced
        "curl -sS -m 5 -o /dev/null -w 'direct=%%{http_code}\\n' --noproxy '*' http://127.0.0.1:%d/v1/models; true"
        % port,
    ])
    r = run(sandbox, fake_llm, tmp_path, script)
    assert "route=200" in r.out, r
    assert "fwd=403" in r.out, r
    assert "tunnel=200" not in r.out and "direct=200" not in r.out, r
    assert [s["path"] for s in fake_llm.seen()] == ["/v1/chat/completions"]


NOPROXY = ("env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy "
           "-u all_proxy -u NO_PROXY -u no_proxy ")


@pytest.mark.timeout(90)
def test_transparent_clients_reach_inference_local(sandbox, fake_llm, tmp_path):
    """Clients that know nothing of a proxy resolve inference.local through
    the sandbox's policy DNS and are captured into the same interception,
    over plaintext and TLS; the route's key replaces the sandbox's."""
    body = json.dumps({"model": "fast", "messages": []})
    curl = (NOPROXY + "curl -sS -m 20 -H 'authorization: Bearer sk-sandbox-own' "
            "-H 'content-type: application/json' -d '%s' -w ' status=%%{http_code}\\n' " % body)
    script = "; ".join([
        NOPROXY + "getent hosts inference.local",
        curl + "http://inference.local/v1/chat/completions",
        curl + "https://inference.local/v1/chat/completions",
        NOPROXY + "/usr/bin/python3 -c '%s' http://inference.local/v1/chat/completions"
        % URLLIB.replace("'", "'\"'\"'"),
    ])
    r = run(sandbox, fake_llm, tmp_path, script)
    assert r.code == 0, r
    assert "inference.local" in r.out.splitlines()[0] and r.out.startswith("198.18."), r
    assert r.out.count("echo:fake-model-1") == 3 and r.out.count("status=200") == 2, r
    seen = fake_llm.seen()
    assert len(seen) == 3
    for s in seen:
        assert s["headers"]["authorization"] == "Bearer " + FAKE_KEY
        assert "sk-sandbox-own" not in json.dumps(s)
    ev = r.events("inference", outcome="completed")
    assert len(ev) == 3, r.audit()
