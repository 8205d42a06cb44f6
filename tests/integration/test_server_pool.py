"""`cordon server --pool N`: sandboxes started ahead, claimed by a create
that the pool can serve as is, refilled behind it, invisible until claimed,
and removed when a restarted server finds them idle."""
import json
import os
import re

import pytest

from lib import util
from server_fixtures import ECHO_SRC, cgroup_procs_path, cordon_server, wait_backend  # noqa: F401


def pool_ready(srv, n):
    """Waits until the server's log has said "pool: X of N ready" n times."""
    def seen():
        return len(re.findall(r"server: pool: \d+ of \d+ ready", srv.stderr)) >= n
    util.wait_until(seen, 60, what="%d pool sandboxes ready" % n)


def run(srv, sid, cmd):
    st, _, raw = srv.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % sid,
                             body={"command": cmd}, timeout=60)
    assert st == 200, raw
    events = [json.loads(b[6:]) for b in raw.decode().split("\n\n") if b.strip()]
    return [e.get("text", "") for e in events if e["type"] == "stdout"]


def pool_ids(srv):
    return re.findall(r"sandbox ([0-9a-f-]{36}): started cordon run \(pid \d+\) for the pool",
                      srv.stderr)


@pytest.mark.timeout(180)
def test_pool_claim_runs_the_entrypoint_and_refills(cordon_server):
    srv = cordon_server("--pool", "1")
    pool_ready(srv, 1)
    assert srv.sandboxes()["items"] == []  # idle pool sandboxes are not the API's
    first = pool_ids(srv)[0]
    st, _, _ = srv.request("GET", "/v1/sandboxes/" + first)
    assert st == 404
    sbx = srv.create(entrypoint=["/usr/bin/python3", "-c", ECHO_SRC, "8080"],
                     resourceLimits=None, metadata={"k": "v"}, timeout=600)
    assert sbx["id"] == first and sbx["status"]["state"] == "Running"
    assert "claimed from the pool" in srv.stderr
    wait_backend(srv, first, 8080)  # the entrypoint runs
    st, _, raw = srv.request("GET", "/sandboxes/%s/proxy/8080/x" % first)
    assert st == 201 and json.loads(raw)["target"] == "/x"
    got = srv.json("GET", "/v1/sandboxes/" + first)
    assert got["metadata"] == {"k": "v"} and got["expiresAt"]
    assert [i["id"] for i in srv.sandboxes()["items"]] == [first]
    # execd's token stays execd's: the entrypoint never sees it
    out = run(srv, first, "p=$(pgrep -f 'python3 -c' | head -1); echo pid=$p; "
                          "tr '\\0' '\\n' < /proc/$p/environ | grep -c -e '^PATH=' "
                          "-e EXECD_ACCESS_TOKEN")
    assert len(out) == 2 and re.match(r"pid=\d+$", out[0]) and out[1] == "1", out
    pool_ready(srv, 2)  # refilled
    assert len(pool_ids(srv)) == 2
    srv.json("DELETE", "/v1/sandboxes/" + first, expect=204)
    assert srv.pids(first) == []


@pytest.mark.timeout(180)
def test_requests_the_pool_cannot_serve_start_cold(cordon_server):
    srv = cordon_server("--pool", "1")
    pool_ready(srv, 1)
    pooled = pool_ids(srv)[0]
    for extra in ({"env": {"A": "1"}}, {"resourceLimits": {"pids": "64"}},
                  {"networkPolicy": {}}):
        fields = {"resourceLimits": None}
        fields.update(extra)
        sbx = srv.create(**fields)
        assert sbx["id"] != pooled, extra
    assert "claimed from the pool" not in srv.stderr
    # a pool key in metadata is the server's own
    st, _, raw = srv.request("POST", "/v1/sandboxes", body={
        "image": {"uri": "cordon-host"}, "entrypoint": ["true"],
        "metadata": {"cordon.io/pool": "idle"}})
    assert st == 400 and b"cordon.io/" in raw, raw


@pytest.mark.timeout(180)
def test_restart_removes_idle_pool_sandboxes(cordon_server):
    srv = cordon_server("--pool", "1")
    pool_ready(srv, 1)
    old = pool_ids(srv)[0]
    assert srv.pids(old)
    srv.kill9()
    srv.start()
    util.wait_until(lambda: srv.pids(old) == [], 30, what="the old pool sandbox's processes gone")
    pool_ready(srv, 2)  # a fresh one
    assert old not in [i["id"] for i in srv.sandboxes()["items"]]
    assert not os.path.exists(os.path.join(srv.data, "sandboxes", old))


@pytest.mark.timeout(120)
def test_stopping_the_server_removes_idle_pool_sandboxes(cordon_server):
    """An idle pool sandbox cannot outlive the server that would start its
    entrypoint: SIGTERM kills and removes it (claimed ones keep running)."""
    srv = cordon_server("--pool", "1")
    pool_ready(srv, 1)
    claimed = srv.create(resourceLimits=None)["id"]
    pool_ready(srv, 2)
    idle = pool_ids(srv)[1]
    assert srv.pids(idle) and srv.pids(claimed)
    paths = {k: cgroup_procs_path(srv, k) for k in (idle, claimed)}
    assert srv.stop() == 0
    assert not os.path.exists(paths[idle])  # killed, waited for, its cgroup removed
    assert not os.path.exists(os.path.join(srv.data, "sandboxes", idle))
    with open(paths[claimed]) as f:
        assert f.read().split()  # a real sandbox is kept for the next start
    srv.start()
    assert [i["id"] for i in srv.sandboxes()["items"]] == [claimed]
