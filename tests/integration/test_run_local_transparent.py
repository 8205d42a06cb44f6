"""http://cordon.local/ for clients that ignore the proxy variables: the
sandbox's policy DNS answers the name, and the captured connection is
answered by the proxy itself."""
import json

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

SCRIPT = r"""
curl -s -m 10 -o /dev/null -w "proxied=%%{http_code}\n" http://denied.test/one
env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy -u ALL_PROXY -u all_proxy sh -c '
echo "--- curl"
curl --noproxy "*" -s -m 10 http://cordon.local/denials
echo "--- python"
%s - <<PYEOF
import json, os, socket, urllib.request
assert "HTTP_PROXY" not in os.environ and "http_proxy" not in os.environ
print("resolved", socket.gethostbyname("cordon.local"))
r = urllib.request.urlopen(urllib.request.Request("http://cordon.local/denials",
                           headers={"Accept": "application/json"}), timeout=10)
print("JSON", json.dumps(json.loads(r.read())))
s = socket.create_connection(("cordon.local", 443), timeout=10)
try:
    s.sendall(b"GET / HTTP/1.1\r\nHost: cordon.local\r\n\r\n")
    print("tls-port", "closed" if s.recv(100) == b"" else "answered")
except ConnectionResetError:
    print("tls-port closed")
PYEOF
'
"""


@pytest.mark.timeout(60)
def test_cordon_local_for_transparent_clients(sandbox, testnet):
    r = sandbox.run(["sh", "-c", SCRIPT % PY])
    assert r.code == 0, r
    assert "proxied=403" in r.out, r
    # curl without a proxy: the text page, naming the proxied denial
    text = r.out.split("--- curl")[1].split("--- python")[0]
    assert "DENIED GET denied.test:80/one for /usr/bin/curl: no_endpoint" in text, text
    # python urllib without a proxy: the JSON page
    js = json.loads(r.out.split("JSON ", 1)[1].splitlines()[0])
    assert js["total"] == 1 and js["denials"][0]["host"] == "denied.test", js
    # the name resolved through the sandbox's policy DNS
    assert r.out.split("resolved ", 1)[1].split()[0].count(".") == 3
    # other ports of cordon.local: closed without an answer, with a reason
    assert "tls-port closed" in r.out, r.out
    ev = [e for e in r.events("decision", host="cordon.local") if e.get("via") == "transparent"]
    assert [e["decision"] for e in ev].count("allow") == 2, ev
    refused = [e for e in ev if e["decision"] == "deny"]
    assert len(refused) == 1 and refused[0]["reason_code"] == "cordon_local"
    assert refused[0]["port"] == 443
