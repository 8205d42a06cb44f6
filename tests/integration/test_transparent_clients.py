"""cordon run: real clients that ignore HTTPS_PROXY reach allowed HTTPS
hosts by name with the L7 rules applied, through transparent capture. No
proxy variable is set for any of them (the founding Discord report: the
`ws` npm package, Node 20 fetch, python websockets, Go net/http, Java 17
HttpClient all failed with a resolver error before).

Upstreams: the inspect namespace (lib/inspect_upstream.py): ro.insp.test
(read-only rest endpoint, 443), wss.insp.test:9443 (wss echo, read-write),
api.insp.test:80 (plain HTTP, rules). The proxy trusts their test CA
(--upstream-ca); the clients trust the sandbox CA through SSL_CERT_FILE &
co., set by cordon (Java through a trust store made inside with keytool)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from lib import util
from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

pytest_plugins = ["inspect_fixtures"]

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.realpath(os.path.join(HERE, "..", "node", "node_modules"))
PY = "/usr/bin/python3"
NODE = os.path.realpath("/usr/bin/node")
JAVA = os.path.realpath(shutil.which("java") or "/usr/bin/java")
KEYTOOL = os.path.realpath(shutil.which("keytool") or "/usr/bin/keytool")
GO = shutil.which("go") or "/usr/bin/go"
NOPROXY = ["env", "-u", "HTTP_PROXY", "-u", "HTTPS_PROXY", "-u", "ALL_PROXY", "-u", "http_proxy",
           "-u", "https_proxy", "-u", "all_proxy", "-u", "NODE_USE_ENV_PROXY", "-u", "NO_PROXY",
           "-u", "no_proxy",
           # cordon run also hands Java its proxy settings (JAVA_TOOL_OPTIONS):
           # these clients are the ones that know nothing of a proxy
           "-u", "JAVA_TOOL_OPTIONS"]


def policy(sb, inet, binaries=()):
    text = inet.policy(extra_endpoints="""      - host: echo.test
        port: 7
        allowed_ips: ["10.231.0.0/16"]
        idle_timeout: 2s
""")
    text = text.replace("version: 1\n", "", 1).rstrip() + "\n"
    for b in binaries:
        text += "      - path: %s\n" % b
    fs = """version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, %s]
  read_write: [/dev/null]
""" % NODE_MODULES
    return sb.write_policy(fs + text, "clients.yaml")


def run(sb, inet, cmd, binaries=(), timeout=60):
    return sb.run(NOPROXY + cmd, args=["--upstream-ca", inet.ca], policy=policy(sb, inet, binaries),
                  timeout=timeout)


def transparent_decisions(r, host):
    ev = r.events("decision", host=host)
    assert ev, r.audit()
    for e in ev:
        assert e["via"] == "transparent", e
    return ev


WS_NPM = r'''
const WebSocket = require(process.argv[1] + "/ws");
const net = require("net");
const IDLE_MS = 3500;            // longer than echo.test's idle_timeout (2 s)
const log = (m) => console.log(m);
// The timer proof: a raw TCP connection on an endpoint with idle_timeout 2s
// is closed by the proxy while the WebSocket below sits idle for longer.
const raw = net.connect(7, "echo.test", () => log("raw open"));
const t0 = Date.now();
raw.on("close", () => log("raw closed after " + (Date.now() - t0)));
raw.on("error", (e) => log("raw error " + e.code));
const ws = new WebSocket("wss://wss.insp.test:9443/chat");
ws.on("open", () => { log("open"); ws.send("first message"); });
ws.on("message", (m) => {
  m = m.toString();
  log("got " + m);
  if (m === "first message") setTimeout(() => ws.send("after idle"), IDLE_MS);
  else ws.close();
});
ws.on("close", () => { log("closed"); process.exit(0); });
ws.on("error", (e) => { log("error " + e.message); process.exit(1); });
'''


@pytest.mark.timeout(90)
def test_ws_npm_package_by_name(sandbox, inet):
    assert os.path.exists(os.path.join(NODE_MODULES, "ws", "package.json")), \
        "the ws npm package is missing: run scripts/setup"
    r = run(sandbox, inet, [NODE, "-e", WS_NPM, NODE_MODULES])
    assert r.code == 0, r
    out = r.out.splitlines()
    assert out.index("open") < out.index("got first message") < out.index("got after idle"), r
    m = re.search(r"raw closed after (\d+)", r.out)
    assert m and 1500 <= int(m.group(1)) < 3500, r          # the idle timer fired, ws lived on
    ev = transparent_decisions(r, "wss.insp.test")
    assert ev[0]["binary"] == NODE and ev[0]["port"] == 9443, ev
    up = r.events("upgrade", host="wss.insp.test")
    assert up and up[0]["via"] == "transparent", r.audit()
    c = r.events("close", host="echo.test")
    assert c and c[0]["reason"] == "idle_timeout" and c[0]["via"] == "transparent", c


FETCH = r'''
(async () => {
  let r = await fetch("https://ro.insp.test/read/me");
  console.log("get " + r.status + " " + JSON.parse(await r.text()).target);
  r = await fetch("https://ro.insp.test/write", {method: "POST", body: "x"});
  const b = await r.json();
  console.log("post " + r.status + " " + b.reason_code);
})().catch((e) => { console.log("error " + e + " " + (e.cause && e.cause.code)); process.exit(1); });
'''


@pytest.mark.timeout(90)
def test_node20_fetch(sandbox, inet):
    r = run(sandbox, inet, [NODE, "-e", FETCH])
    assert r.code == 0, r
    assert "get 200 /read/me" in r.out and "post 403 l7_denied" in r.out, r
    ev = transparent_decisions(r, "ro.insp.test")
    assert any(e["binary"] == NODE for e in ev)
    assert not inet.seen("/write")                      # the POST never reached the upstream


PY_WS = r'''
import asyncio, json, ssl, urllib.request, urllib.error, websockets
async def main():
    async with websockets.connect("wss://wss.insp.test:9443/py") as ws:
        await ws.send("hello")
        print("ws", await ws.recv())
asyncio.run(main())
print("get", urllib.request.urlopen("https://ro.insp.test/py-get", timeout=10).status)
try:
    urllib.request.urlopen(urllib.request.Request("https://ro.insp.test/py-post", data=b"x"),
                           timeout=10)
except urllib.error.HTTPError as e:
    print("post", e.code, json.loads(e.read())["reason_code"])
'''


@pytest.mark.timeout(90)
def test_python_websockets_and_urllib(sandbox, inet):
    r = run(sandbox, inet, [PY, "-c", PY_WS])
    assert r.code == 0, r
    assert "ws hello" in r.out and "get 200" in r.out and "post 403 l7_denied" in r.out, r
    transparent_decisions(r, "wss.insp.test")
    transparent_decisions(r, "ro.insp.test")


GO_SRC = r'''package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

func main() {
	r, err := http.Get("https://ro.insp.test/go-get")
	if err != nil {
		fmt.Println("error", err)
		return
	}
	io.Copy(io.Discard, r.Body)
	fmt.Println("get", r.StatusCode)
	r, err = http.Post("https://ro.insp.test/go-post", "text/plain", strings.NewReader("x"))
	if err != nil {
		fmt.Println("error", err)
		return
	}
	b, _ := io.ReadAll(r.Body)
	fmt.Println("post", r.StatusCode, strings.Contains(string(b), "\"reason_code\":\"l7_denied\""))
}
'''


@pytest.mark.timeout(180)
def test_go_net_http(sandbox, inet):
    if not os.path.exists(GO):
        pytest.fail("go is missing: run scripts/setup (golang-go)")
    src = os.path.join(sandbox.dir, "main.go")
    with open(src, "w") as f:
        f.write(GO_SRC)
    exe = os.path.join(sandbox.work, "gohttp")
    env = util.clean_env({"GOCACHE": os.path.join(sandbox.dir, "gocache"),
                          "GOPATH": os.path.join(sandbox.dir, "gopath"), "GO111MODULE": "off",
                          "HOME": sandbox.dir, "CGO_ENABLED": "0"})
    b = subprocess.run([GO, "build", "-o", exe, src], env=env, capture_output=True, timeout=150)
    assert b.returncode == 0, b.stderr.decode()
    os.chmod(exe, 0o755)
    r = run(sandbox, inet, [exe], binaries=[exe])
    assert r.code == 0, r
    assert "get 200" in r.out and "post 403 true" in r.out, r
    ev = transparent_decisions(r, "ro.insp.test")
    assert ev[0]["binary"] == exe, ev


JAVA_SRC = r'''
import java.net.URI;
import java.net.http.*;

public class Main {
    public static void main(String[] a) throws Exception {
        HttpClient c = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create("https://ro.insp.test/java-get")).build(),
                                        HttpResponse.BodyHandlers.ofString());
        System.out.println("get " + r.statusCode());
        r = c.send(HttpRequest.newBuilder(URI.create("https://ro.insp.test/java-post"))
                       .POST(HttpRequest.BodyPublishers.ofString("x")).build(),
                   HttpResponse.BodyHandlers.ofString());
        System.out.println("post " + r.statusCode() + " " + r.body().contains("\"l7_denied\""));
    }
}
'''


@pytest.mark.timeout(240)
def test_java17_httpclient(sandbox, inet):
    if not os.path.exists(JAVA):
        pytest.fail("java is missing: run scripts/setup (default-jdk-headless)")
    with open(os.path.join(sandbox.work, "Main.java"), "w") as f:
        f.write(JAVA_SRC)
    # The sandbox CA into a trust store (Java does not read SSL_CERT_FILE),
    # made inside the sandbox from the CA cordon put there.
    script = ("%s -importcert -noprompt -alias cordon -file /run/cordon/ca.pem -keystore ts.jks "
              "-storepass changeit >/dev/null 2>&1 || echo keytool failed; "
              "exec %s -Xshare:off -Djava.io.tmpdir=$PWD -Djavax.net.ssl.trustStore=ts.jks "
              "-Djavax.net.ssl.trustStorePassword=changeit Main.java" % (KEYTOOL, JAVA))
    r = run(sandbox, inet, ["sh", "-c", script], binaries=[JAVA], timeout=200)
    assert r.code == 0, r
    assert "get 200" in r.out and "post 403 true" in r.out, r
    ev = transparent_decisions(r, "ro.insp.test")
    assert ev[0]["binary"] == JAVA, ev


SNI = r'''
import socket, ssl
ctx = ssl.create_default_context()
s = socket.create_connection(("ro.insp.test", 443), timeout=10)
try:
    t = ctx.wrap_socket(s, server_hostname="api.insp.test")
    print("handshake ok")
except (ssl.SSLError, OSError) as e:
    print("refused", type(e).__name__)
h = socket.create_connection(("api.insp.test", 80), timeout=10)
h.sendall(b"GET /allowed/transparent-fronted HTTP/1.1\r\nHost: full.insp.test\r\nConnection: close\r\n\r\n")
d = b""
while True:
    c = h.recv(65536)
    if not c: break
    d += c
print("host", d.split(b"\r\n")[0].decode(), b"host_mismatch" in d)
'''


@pytest.mark.timeout(60)
def test_sni_and_host_must_name_the_resolved_host(sandbox, inet):
    r = run(sandbox, inet, [PY, "-c", SNI])
    assert r.code == 0, r
    assert "refused" in r.out, r
    assert "host HTTP/1.1 403 Forbidden by cordon: host_mismatch True" in r.out, r
    ev = r.events("decision", decision="deny", reason_code="sni_mismatch")
    assert ev and ev[0]["via"] == "transparent" and ev[0]["host"] == "ro.insp.test", ev
    ev = r.events("decision", decision="deny", reason_code="host_mismatch")
    assert ev and ev[0]["via"] == "transparent" and ev[0]["host"] == "api.insp.test", ev
    assert not inet.seen("/allowed/transparent-fronted")   # never reached the upstream
