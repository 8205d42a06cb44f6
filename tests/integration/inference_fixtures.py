"""Fixtures for the inference routing tests.

  fake_llm   our fake OpenAI + Anthropic + Ollama server (lib/fake_llm.py) on
             the host's loopback, requiring the key FAKE_KEY; .port, .seen()
             (the requests it received, read directly, not through cordon),
             .url
  routes_file(tmp_path, fake_llm, extra="", idle_s=None, **kw) writes a routes
             file with one route "fake" serving every shape (credential from
             the environment variable CORDON_TEST_LLM_KEY) and returns its path
"""
import json
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "lib", "fake_llm.py")
SDK_CLIENT = os.path.join(HERE, "lib", "sdk_client.mjs")
NODE_MODULES = os.path.join(os.path.dirname(HERE), "node", "node_modules")
FAKE_KEY = "sk-route-key-9f1c"
KEY_ENV = "CORDON_TEST_LLM_KEY"


class FakeLLM:
    def __init__(self, proc, port):
        self.proc, self.port = proc, port
        self.url = "http://127.0.0.1:%d" % port

    def seen(self):
        ctx = ssl.create_default_context(cafile=self.ca) if getattr(self, "ca", None) else None
        with urllib.request.urlopen(self.url + "/_seen", timeout=5, context=ctx) as r:
            return json.loads(r.read())


def start_fake(*extra):
    p = subprocess.Popen(["/usr/bin/python3", FAKE, "--key", FAKE_KEY] + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if not line.startswith("READY "):
        p.kill()
        pytest.fail("fake LLM server did not start: %r %s" % (line, p.stderr.read().decode()))
    return FakeLLM(p, int(line.split()[1]))


def stop_fake(srv):
    srv.proc.terminate()
    try:
        srv.proc.wait(5)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait()


@pytest.fixture
def fake_llm():
    srv = start_fake()
    yield srv
    stop_fake(srv)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=30)


def make_tls_backend_certs(d):
    """ca.pem (to trust with --upstream-ca) and leaf.pem/leaf.key for IP 127.0.0.1."""
    d = str(d)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=fake llm test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "30", "-extfile", "leaf.ext", cwd=d)
    return os.path.join(d, "ca.pem"), os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key")


@pytest.fixture
def fake_llm_tls(tmp_path):
    """The fake server over HTTPS (certificate for IP 127.0.0.1); .ca is its CA."""
    d = tmp_path / "llm-tls"
    d.mkdir()
    ca, cert, key = make_tls_backend_certs(d)
    srv = start_fake("--tls-cert", cert, "--tls-key", key)
    srv.ca = ca
    srv.url = "https://127.0.0.1:%d" % srv.port
    yield srv
    stop_fake(srv)


def routes_file(dirpath, fake, extra="", idle_s=None, base=None, top=""):
    timeouts = "    timeouts: {connect_s: 5, idle_s: %d}\n" % idle_s if idle_s else ""
    text = ("version: 1\n" + top + "routes:\n" + extra +
            "  - name: fake\n"
            "    shapes: [openai, anthropic, ollama]\n"
            "    base_url: %s\n"
            "    credential: {env: %s}\n"
            "    aliases: {fast: fake-model-1}\n" % (base or fake.url + "/v1", KEY_ENV) + timeouts)
    path = os.path.join(str(dirpath), "routes.yaml")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def sse_events(text):
    """data: payloads of an SSE body, parsed as JSON where they are JSON."""
    out = []
    for line in text.splitlines():
        if line.startswith("data: "):
            d = line[6:]
            try:
                out.append(json.loads(d))
            except ValueError:
                out.append(d)
    return out
