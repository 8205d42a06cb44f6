"""`cordon server`: the lifecycle API (OpenSandbox wire shapes), auth, state
across restarts, expiry, pause/resume and delete (every process gone)."""
import http.client
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from lib import util
from server_fixtures import (KEY, alive, cordon_server, cgroup_dir, cgroup_procs_path,  # noqa: F401
                             cgroup_v2_root)

UNIFIED = "/sys/fs/cgroup/unified"


def _read(path):
    with open(path) as f:
        return f.read()


def test_refuses_to_start_without_a_key(cordon_bin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\n")
    env = {k: v for k, v in os.environ.items() if k != "OPEN_SANDBOX_API_KEY"}
    p = subprocess.run([cordon_bin, "server", "--data", str(tmp_path / "d"), "--policy", str(pol),
                        "--listen", "127.0.0.1:0"], env=env, capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2
    assert "no API key" in p.stderr and "--insecure" in p.stderr


def test_auth_on_every_route(cordon_server):
    srv = cordon_server()
    # /health is open (liveness probes); every other route needs the key
    st, h, body = srv.request("GET", "/health", auth=False)
    assert st == 200 and json.loads(body) == {"status": "healthy"}
    assert len(h["x-request-id"]) == 32
    for method, path in [("GET", "/sandboxes"), ("GET", "/v1/sandboxes"), ("POST", "/v1/sandboxes"),
                         ("GET", "/v1/sandboxes/x"), ("DELETE", "/sandboxes/x"),
                         ("GET", "/v1/sandboxes/x/proxy/44772/ping"),
                         ("POST", "/sandboxes/x/proxy/8080/a/b"),
                         ("GET", "/v1/sandboxes/x/endpoints/44772")]:
        st, h, body = srv.request(method, path, auth=False, headers={"X-Request-ID": "rid-1"})
        assert st == 401, (method, path, st)
        assert json.loads(body)["code"] == "MISSING_API_KEY"
        assert h["x-request-id"] == "rid-1"
        st, _, body = srv.request(method, path, auth=False,
                                  headers={"OPEN-SANDBOX-API-KEY": KEY + "x"})
        assert st == 401 and json.loads(body)["code"] == "INVALID_API_KEY", (method, path)
    # the WebSocket handshake on a proxy route is authenticated before anything
    st, _, body = srv.request("GET", "/sandboxes/x/proxy/44772/pty/s/ws", auth=False, headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert st == 401 and json.loads(body)["code"] == "MISSING_API_KEY"
    # with the key: unknown sandbox is a 404 {code, message}
    st, _, body = srv.request("GET", "/v1/sandboxes/nope")
    assert st == 404 and set(json.loads(body)) == {"code", "message"}


@pytest.mark.timeout(120)
def test_lifecycle(cordon_server):
    srv = cordon_server()
    a = srv.create(metadata={"team": "red", "app": "x"}, timeout=600,
                   env={"GREETING": "hello there"})
    b = srv.create(metadata={"team": "blue"})
    assert a["status"]["state"] == "Running"
    assert a["metadata"] == {"team": "red", "app": "x"}
    assert a["entrypoint"] == ["sleep", "1000"]
    assert a["expiresAt"].endswith("Z") and "expiresAt" not in b  # no timeout: no expiry
    got = srv.json("GET", "/sandboxes/" + a["id"])
    assert got["image"] == {"uri": "cordon-host"} and got["id"] == a["id"]
    # list: newest first, filters, pagination
    lst = srv.sandboxes()
    assert [i["id"] for i in lst["items"]] == [b["id"], a["id"]]
    assert lst["pagination"] == {"page": 1, "pageSize": 20, "totalItems": 2, "totalPages": 1,
                                 "hasNextPage": False}
    red = srv.sandboxes("?metadata=team%3Dred")
    assert [i["id"] for i in red["items"]] == [a["id"]]
    assert srv.sandboxes("?metadata=team%3Dred%26app%3Dy")["items"] == []
    p1 = srv.sandboxes("?page=1&pageSize=1")
    assert len(p1["items"]) == 1 and p1["pagination"]["hasNextPage"] is True
    assert p1["pagination"]["totalPages"] == 2
    assert srv.sandboxes("?state=Running&state=Paused")["pagination"]["totalItems"] == 2
    assert srv.sandboxes("?state=Failed")["items"] == []
    st, _, body = srv.request("GET", "/v1/sandboxes?state=Bogus")
    assert st == 400 and "Bogus" in json.loads(body)["message"]
    st, _, _ = srv.request("GET", "/v1/sandboxes?pageSize=500")
    assert st == 400
    # metadata merge patch
    got = srv.json("PATCH", "/v1/sandboxes/%s/metadata" % a["id"], {"app": None, "tier": "1"})
    assert got["metadata"] == {"team": "red", "tier": "1"}
    st, _, body = srv.request("PATCH", "/v1/sandboxes/%s/metadata" % a["id"],
                              {"opensandbox.io/x": "1"})
    assert st == 400 and "reserved" in json.loads(body)["message"]
    # env reached the sandbox; execd answers through the proxy
    st, _, out = srv.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % a["id"],
                             {"command": "echo \"$GREETING\""})
    assert st == 200 and b"hello there" in out, out
    # pause: the cgroup is frozen, the proxy refuses; resume brings it back
    st, _, _ = srv.request("POST", "/v1/sandboxes/%s/pause" % a["id"])
    assert st == 202
    assert srv.json("GET", "/sandboxes/" + a["id"])["status"]["state"] == "Paused"
    st, _, body = srv.request("POST", "/v1/sandboxes/%s/pause" % a["id"])
    assert st == 409
    st, _, body = srv.request("GET", "/v1/sandboxes/%s/proxy/44772/ping" % a["id"])
    assert st == 409 and json.loads(body)["code"] == "SANDBOX::NOT_RUNNING"
    procs = cgroup_procs_path(srv, a["id"])
    group = os.path.dirname(procs)
    if cgroup_v2_root(srv.env):
        assert _read(os.path.join(group, "cgroup.freeze")).strip() == "1"
    else:
        assert _read(os.path.join(group, "freezer.state")).strip() in ("FROZEN", "FREEZING")
    st, _, _ = srv.request("POST", "/v1/sandboxes/%s/resume" % a["id"])
    assert st == 202
    st, _, _ = srv.request("POST", "/v1/sandboxes/%s/resume" % a["id"])
    assert st == 409
    st, _, _ = srv.request("GET", "/v1/sandboxes/%s/proxy/44772/ping" % a["id"])
    assert st == 200
    # renew-expiration
    got = srv.json("POST", "/v1/sandboxes/%s/renew-expiration" % a["id"],
                   {"expiresAt": "2099-01-01T00:00:00Z"})
    assert got == {"expiresAt": "2099-01-01T00:00:00.000Z"}
    st, _, body = srv.request("POST", "/v1/sandboxes/%s/renew-expiration" % a["id"],
                              {"expiresAt": "2001-01-01T00:00:00+02:00"})
    assert st == 400 and json.loads(body)["code"] == "SANDBOX::INVALID_EXPIRATION"
    st, _, _ = srv.request("POST", "/v1/sandboxes/%s/renew-expiration" % b["id"],
                           {"expiresAt": "2099-01-01T00:00:00Z"})
    assert st == 409  # b has no expiry
    # endpoints
    ep = srv.json("GET", "/v1/sandboxes/%s/endpoints/44772?use_server_proxy=true" % a["id"])
    assert ep["endpoint"] == "127.0.0.1:%d/sandboxes/%s/proxy/44772" % (srv.port, a["id"])
    ep = srv.json("GET", "/v1/sandboxes/%s/endpoints/44772" % a["id"])
    assert ep["endpoint"].endswith(":44772")
    # straight to execd needs the sandbox's token (the endpoint's headers);
    # without it, a process on the host cannot drive the sandbox
    tok = ep["headers"]["X-EXECD-ACCESS-TOKEN"]
    assert len(tok) == 32
    ip, eport = ep["endpoint"].split(":")
    c = http.client.HTTPConnection(ip, int(eport), timeout=10)
    c.request("POST", "/command", body=b'{"command":"echo direct"}',
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 401, r.status
    r.read()
    c.request("POST", "/command", body=b'{"command":"echo direct"}',
              headers={"Content-Type": "application/json", "X-EXECD-ACCESS-TOKEN": tok})
    r = c.getresponse()
    assert r.status == 200 and b"direct" in r.read()
    c.close()
    # through the server the token is added for the client, and a client's own is replaced
    st, _, out = srv.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % a["id"],
                             {"command": "echo proxied; env | grep -c EXECD_ACCESS_TOKEN"},
                             headers={"X-EXECD-ACCESS-TOKEN": "wrong"})
    assert st == 200 and b"proxied" in out
    assert b'"text":"0"' in out or b'"text":"0\\n"' in out, out  # the shells never see the token
    assert "headers" not in srv.json(
        "GET", "/v1/sandboxes/%s/endpoints/8080" % a["id"])
    st, _, _ = srv.request("GET", "/v1/sandboxes/%s/endpoints/0" % a["id"])
    assert st == 400
    # delete: 204 once every process of the sandbox is gone
    pids = srv.pids(a["id"])
    assert len(pids) >= 3, pids  # cordon run, its init, execd, the entrypoint
    st, _, body = srv.request("DELETE", "/v1/sandboxes/" + a["id"])
    assert st == 204 and body == b""
    assert [p for p in pids if alive(p)] == []
    assert not os.path.exists(procs)
    st, _, _ = srv.request("GET", "/v1/sandboxes/" + a["id"])
    assert st == 404
    st, _, _ = srv.request("DELETE", "/v1/sandboxes/" + a["id"])
    assert st == 404


def test_create_validation(cordon_server):
    srv = cordon_server("--image", "python:3.11", "--image", "ubuntu")
    st, _, body = srv.request("POST", "/v1/sandboxes", {"image": {"uri": "alpine"},
                                                        "entrypoint": ["true"]})
    err = json.loads(body)
    assert st == 400 and "'python:3.11'" in err["message"] and "'ubuntu'" in err["message"]
    for bad, word in [({"entrypoint": ["x"]}, "image"),
                      ({"image": {"uri": "ubuntu"}}, "entrypoint"),
                      ({"image": {"uri": "ubuntu"}, "entrypoint": ["x"], "timeout": 0}, "timeout"),
                      ({"image": {"uri": "ubuntu"}, "entrypoint": ["x"], "env": {"A-B": "1"}}, "A-B"),
                      ({"image": {"uri": "ubuntu"}, "entrypoint": ["x"],
                        "env": {"EXECD_ACCESS_TOKEN": "1"}}, "EXECD_ACCESS_TOKEN"),
                      ({"image": {"uri": "ubuntu"}, "entrypoint": ["x"],
                        "resourceLimits": {"gpu": "1"}}, "gpu"),
                      ({"image": {"uri": "ubuntu"}, "entrypoint": ["x"],
                        "resourceLimits": {"memory": "lots"}}, "memory"),
                      ({"image": {"uri": "ubuntu"}, "entrypoint": ["x"],
                        "networkPolicy": {"defaultAction": "allow"}}, "networkPolicy")]:
        st, _, body = srv.request("POST", "/v1/sandboxes", bad)
        assert st == 400, bad
        assert word in json.loads(body)["message"], (bad, body)
    st, _, body = srv.request("POST", "/v1/sandboxes", b"{not json")
    assert st == 400 and "JSON" in json.loads(body)["message"]
    assert srv.sandboxes()["items"] == []


@pytest.mark.timeout(90)
def test_timeout_expiry_kills_every_process(cordon_server):
    srv = cordon_server()
    sbx = srv.create(entrypoint=["sh", "-c", "sleep 1000 & sleep 1000"], timeout=3)
    pids = srv.pids(sbx["id"])
    assert len(pids) >= 4, pids

    def gone():
        st, _, _ = srv.request("GET", "/v1/sandboxes/" + sbx["id"])
        return st == 404
    util.wait_until(gone, 30, what="the sandbox to expire")
    assert [p for p in pids if alive(p)] == []


@pytest.mark.timeout(120)
def test_kill9_and_restart_keeps_the_sandboxes(cordon_server):
    srv = cordon_server()
    keep = srv.create(metadata={"n": "keep"}, timeout=3600)
    lost = srv.create(metadata={"n": "lost"})
    short = srv.create(metadata={"n": "short"}, timeout=4)
    lost_pids = srv.pids(lost["id"])
    short_pids = srv.pids(short["id"])
    srv.kill9()
    # while the server is down: one sandbox dies, another expires
    for p in lost_pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    util.wait_until(lambda: not any(alive(p) for p in lost_pids), 10, what="lost sandbox dead")
    util.wait_until(lambda: time.time() > time.mktime(time.strptime(
        short["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + 1, 20,
        what="the short sandbox's expiry to pass")
    srv.start()
    # short expired during the outage: the restarted server removes it at once
    util.wait_until(lambda: srv.request("GET", "/v1/sandboxes/" + short["id"])[0] == 404, 20,
                    what="the expired sandbox to be removed after the restart")
    items = {i["metadata"]["n"]: i for i in srv.sandboxes()["items"]}
    assert set(items) == {"keep", "lost"}, items
    assert [p for p in short_pids if alive(p)] == []
    assert items["keep"]["status"]["state"] == "Running"
    assert items["keep"]["expiresAt"] == keep["expiresAt"]
    assert items["lost"]["status"]["state"] == "Failed"
    assert items["lost"]["status"]["reason"] == "SANDBOX_LOST"
    assert "gone" in items["lost"]["status"]["message"]
    st, _, _ = srv.request("GET", "/sandboxes/%s/proxy/44772/ping" % keep["id"])
    assert st == 200
    st, _, _ = srv.request("DELETE", "/v1/sandboxes/" + lost["id"])
    assert st == 204


@pytest.mark.timeout(90)
def test_signed_url_opens_only_that_proxy_route(cordon_server):
    srv = cordon_server()
    a = srv.create()
    b = srv.create()
    exp = int(time.time()) + 120
    ep = srv.json("GET", "/v1/sandboxes/%s/endpoints/44772?expires=%d" % (a["id"], exp))["endpoint"]
    host, rest = ep.split("/", 1)
    assert host == "127.0.0.1:%d" % srv.port and rest.startswith("s/%d-" % exp), ep
    path = "/" + rest
    st, _, _ = srv.request("GET", path + "/ping", auth=False)
    assert st == 200
    tok = rest.split("/")[1]
    for bad in ["/s/%s/sandboxes/%s/proxy/44772/ping" % (tok, b["id"]),       # other sandbox
                "/s/%s/sandboxes/%s/proxy/8080/" % (tok, a["id"]),           # other port
                "/s/%s/sandboxes/%s" % (tok, a["id"]),                        # lifecycle API
                "/s/%s/sandboxes" % tok,
                "/s/%d-%s/sandboxes/%s/proxy/44772/ping" % (exp + 1, tok.split("-")[1], a["id"]),
                "/s/garbage/sandboxes/%s/proxy/44772/ping" % a["id"]]:
        st, _, body = srv.request("GET", bad, auth=False)
        assert st == 401, (bad, st, body)
    st, _, _ = srv.request("DELETE", "/s/%s/sandboxes/%s" % (tok, a["id"]), auth=False)
    assert st == 401
    st, _, _ = srv.request("GET", "/v1/sandboxes/%s/endpoints/44772?expires=%d" % (
        a["id"], int(time.time()) - 5))
    assert st == 400
    st, _, _ = srv.request("GET", "/v1/sandboxes/%s/endpoints/44772?expires=%d&use_server_proxy=true"
                           % (a["id"], exp))
    assert st == 400


@pytest.mark.timeout(90)
def test_resource_limits_are_the_sandbox_cgroup(cordon_server):
    srv = cordon_server()
    sbx = srv.create(resourceLimits={"pids": "40", "memory": "256Mi", "cpu": "500m"})
    v2 = cgroup_v2_root(srv.env) is not None

    def limit(ctrl, v1file, v2file):
        with open(os.path.join(cgroup_dir(srv, sbx["id"], ctrl), v2file if v2 else v1file)) as f:
            return f.read().strip()
    assert limit("pids", "pids.max", "pids.max") == "40"
    assert limit("memory", "memory.limit_in_bytes", "memory.max") == str(256 << 20)
    if v2:
        assert limit("cpu", "", "cpu.max") == "50000 100000"
    else:
        assert limit("cpu", "cpu.cfs_quota_us", "") == "50000"
    # the pids limit holds inside: 60 more processes cannot all start (dash
    # says so at once; the sandbox's deletion at teardown reaps the rest)
    st, _, out = srv.request("POST", "/v1/sandboxes/%s/proxy/44772/command" % sbx["id"], {
        "command": "/bin/dash -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done' 2>&1"})
    assert st == 200
    assert b"Cannot fork" in out, out[-600:]


@pytest.mark.timeout(90)
def test_v2_hierarchy_pause_resume_delete(cordon_server):
    """The server's v2 path (sandbox/cgroup.c on a cgroup2 mount): the group
    <root>/cordon/sbx-ID holds every process, pause writes cgroup.freeze and
    the kernel reports the group frozen, resume thaws it, delete kills all
    (cgroup.kill) and removes the group. On this v1-hybrid host the unified
    mount has no controllers, so a resource limit there is refused."""
    if not os.path.exists(os.path.join(UNIFIED, "cgroup.procs")):
        pytest.skip("no cgroup2 mount at %s" % UNIFIED)
    srv = cordon_server(env={"CORDON_CGROUP_V2": UNIFIED})
    sbx = srv.create(resourceLimits=None)
    group = cgroup_dir(srv, sbx["id"])
    assert group == os.path.join(UNIFIED, "cordon", "sbx-" + sbx["id"])
    pids = srv.pids(sbx["id"])
    assert len(pids) >= 3, pids
    for p in pids:
        assert "0::/cordon/sbx-%s\n" % sbx["id"] in _read("/proc/%d/cgroup" % p)
    st, _, _ = srv.request("POST", "/v1/sandboxes/%s/pause" % sbx["id"])
    assert st == 202
    assert _read(os.path.join(group, "cgroup.freeze")).strip() == "1"
    util.wait_until(lambda: "frozen 1" in _read(os.path.join(group, "cgroup.events")), 10,
                    what="the group frozen")
    st, _, body = srv.request("GET", "/v1/sandboxes/%s/proxy/44772/ping" % sbx["id"])
    assert st == 409
    st, _, _ = srv.request("POST", "/v1/sandboxes/%s/resume" % sbx["id"])
    assert st == 202
    assert _read(os.path.join(group, "cgroup.freeze")).strip() == "0"
    st, _, _ = srv.request("GET", "/v1/sandboxes/%s/proxy/44772/ping" % sbx["id"])
    assert st == 200
    # a limit needs a controller the unified mount does not have here
    st, _, body = srv.request("POST", "/v1/sandboxes", {
        "image": {"uri": "cordon-host"}, "entrypoint": ["sleep", "100"],
        "resourceLimits": {"pids": "10"}})
    assert st == 500 and "pids controller is not available on " + UNIFIED in \
        json.loads(body)["message"], (st, body)
    # delete: every process killed, the group removed
    st, _, _ = srv.request("DELETE", "/v1/sandboxes/" + sbx["id"])
    assert st == 204
    assert [p for p in pids if alive(p)] == []
    assert not os.path.exists(group)
