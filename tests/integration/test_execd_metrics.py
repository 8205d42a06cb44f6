"""cordon execd: /metrics and /metrics/watch in OpenSandbox's shape, read
with urllib / http.client and checked against /proc."""
import http.client
import json
import os
import time
import urllib.error
import urllib.request

from execd_fixtures import execd  # noqa: F401

KEYS = {"cpu_count", "cpu_used_pct", "mem_total_mib", "mem_used_mib", "timestamp"}


def mem_total_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])


def check(m, ed):
    assert set(m) == KEYS, m
    assert m["cpu_count"] == len(os.sched_getaffinity(ed.proc.pid))
    assert 0.0 <= m["cpu_used_pct"] <= 100.0
    assert m["mem_total_mib"] == mem_total_kb() / 1024.0
    assert 0 < m["mem_used_mib"] < m["mem_total_mib"]
    assert abs(m["timestamp"] / 1000.0 - time.time()) < 60


def test_metrics(execd):
    ed = execd(token="s3cret")
    url = "http://127.0.0.1:%d/metrics" % ed.port
    try:
        urllib.request.urlopen(url, timeout=10)
        raise AssertionError("/metrics answered without the token")
    except urllib.error.HTTPError as e:
        assert e.code == 401
    req = urllib.request.Request(url, headers={"X-EXECD-ACCESS-TOKEN": "s3cret"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
        check(json.loads(r.read()), ed)
    st, _, body = ed.request("POST", "/metrics")
    assert st == 405 and b"METHOD_NOT_ALLOWED" in body


def test_metrics_watch_streams_a_line_per_sample(execd):
    ed = execd()
    conn = http.client.HTTPConnection("127.0.0.1", ed.port, timeout=15)
    try:
        conn.request("GET", "/metrics/watch")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
        samples = [json.loads(r.readline()) for _ in range(3)]
    finally:
        conn.close()
    for m in samples:
        check(m, ed)
    stamps = [m["timestamp"] for m in samples]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
