"""Real clients (curl, python urllib in a child process) and common checks
for proxy tests."""
import json
import os
import subprocess
import sys
import tempfile
from collections import namedtuple

from . import util

CURL = "/usr/bin/curl"
PYTHON = "/usr/bin/python3"
# What /proc/PID/exe shows for this test process and for PYTHON children.
PYTHON_REAL = os.path.realpath(PYTHON)
SELF_EXE = os.path.realpath("/proc/self/exe")

DENY_KEYS = {"error", "reason_code", "host", "port", "binary", "policy", "detail", "hint"}

CurlResult = namedtuple("CurlResult", "rc code connect_code headers body stderr pid")


def curl(proxy_port, url, tunnel=False, args=(), timeout=10, binary=CURL, proxy_host="127.0.0.1",
         wrap=None):
    """Runs curl through the proxy (-x; -p for a CONNECT tunnel). Returns
    CurlResult(rc, http code, CONNECT code, last header block, body, stderr, pid).
    wrap: a function argv → argv (e.g. Netns.argv to run it elsewhere)."""
    with tempfile.TemporaryDirectory() as d:
        hdr, body = os.path.join(d, "h"), os.path.join(d, "b")
        argv = [binary, "-sS", "--max-time", str(max(1, timeout - 2)), "-x",
                "http://%s:%d" % (proxy_host, proxy_port), "-D", hdr, "-o", body,
                "-w", "%{http_code} %{http_connect}"]
        if tunnel:
            argv.append("-p")
        argv += list(args) + [url]
        if wrap:
            argv = wrap(argv)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=util.clean_env())
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        codes = out.decode().split()
        headers = {}
        if os.path.exists(hdr):
            blocks = [b for b in open(hdr, "rb").read().decode("latin-1").split("\r\n\r\n") if b.strip()]
            if blocks:
                for line in blocks[-1].split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
        data = open(body, "rb").read() if os.path.exists(body) else b""
        return CurlResult(p.returncode, int(codes[0]) if codes else 0,
                          int(codes[1]) if len(codes) > 1 else 0, headers, data,
                          err.decode("utf-8", "replace"), p.pid)


URLLIB_CLIENT = r"""
import json, os, sys, urllib.request, urllib.error
proxy, url = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
try:
    r = opener.open(url, timeout=8)
    status, headers, body = r.status, dict(r.headers), r.read()
except urllib.error.HTTPError as e:
    status, headers, body = e.code, dict(e.headers), e.read()
print(json.dumps({"pid": os.getpid(), "status": status,
                  "headers": {k.lower(): v for k, v in headers.items()},
                  "body": body.decode("latin-1")}))
"""

UrllibResult = namedtuple("UrllibResult", "status headers body pid")


def urllib_get(proxy_port, url, timeout=10, python=PYTHON, launcher=()):
    """GET url through the proxy (absolute-form) from a child python process.
    launcher: argv prefix (e.g. a shell) to run the child under."""
    argv = list(launcher) + [python, "-c", URLLIB_CLIENT, "http://127.0.0.1:%d" % proxy_port, url]
    p = util.run(argv, timeout=timeout, env=util.clean_env())
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    return UrllibResult(doc["status"], doc["headers"], doc["body"].encode("latin-1"), doc["pid"])


def deny_body(status, headers_get, body, reason, host=None, port=None, http_status=403):
    """Checks a denial: status, X-Cordon-Deny, JSON body with every key.
    headers_get: a function name → value. Returns the parsed body."""
    assert status == http_status, "expected %d %s, got %d: %r" % (http_status, reason, status, body[:500])
    assert headers_get("x-cordon-deny") == reason, \
        "X-Cordon-Deny is %r, expected %r" % (headers_get("x-cordon-deny"), reason)
    ctype = headers_get("content-type") or ""
    assert "application/json" in ctype, "Content-Type %r" % ctype
    doc = json.loads(body)
    missing = DENY_KEYS - set(doc)
    assert not missing, "deny body lacks %s: %r" % (sorted(missing), doc)
    assert doc["reason_code"] == reason, doc
    if http_status == 403:
        assert doc["error"] == "policy_denied", doc
    if host is not None:
        assert doc["host"] == host, doc
    if port is not None:
        assert doc["port"] in (port, str(port)), doc
    for k in ("detail", "hint"):
        assert isinstance(doc[k], str) and doc[k], "%s should explain the denial: %r" % (k, doc)
    return doc


def assert_denied(r, reason, host=None, port=None, status=403):
    """deny_body() for a lib.httpclient.Response."""
    return deny_body(r.status, r.header, r.body, reason, host, port, status)


def ip_of(resolved):
    """The address part of an audit 'resolved' value ("1.2.3.4", "1.2.3.4:80", "[::1]:80")."""
    if resolved is None:
        return None
    s = str(resolved)
    if s.startswith("["):
        return s[1:s.index("]")]
    if s.count(":") == 1:
        return s.split(":")[0]
    return s
