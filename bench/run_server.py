#!/usr/bin/python3
"""cordon server: PTY echo round trip and bulk output through the server's
WebSocket proxy route vs straight to execd in the same sandbox, and
create-to-first-command latency, cold (a new `cordon run` per create) and
from the warm pool (--pool), alternating in the same run. Medians over
ROUNDS; the two paths alternate inside each round so drift does not favour
one.

    make && /usr/bin/python3 bench/run_server.py          # as root
    ROUNDS=5 ECHOES=300 BULK_MB=64 CREATES=7 /usr/bin/python3 bench/run_server.py

Targets (issue #11): round trip <= 1.5x direct, throughput >= 0.8x direct,
create-to-first-command < 100 ms.
"""
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
CORDON = os.environ.get("CORDON") or os.path.join(HERE, "..", "build", "cordon")
ROUNDS = int(os.environ.get("ROUNDS", "5"))
ECHOES = int(os.environ.get("ECHOES", "300"))
BULK_MB = int(os.environ.get("BULK_MB", "64"))
CREATES = int(os.environ.get("CREATES", "7"))
POOL = int(os.environ.get("POOL", "1"))

POLICY = """\
version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, %s]
  read_write: [/dev/null, /dev/ptmx, /dev/pts, /dev/tty, /tmp]
landlock:
  compatibility: best_effort
network_policies: {}
"""


def req(port, method, path, body=None):
    r = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                               data=json.dumps(body).encode() if body is not None else None,
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=60) as f:
        data = f.read()
        return json.loads(data) if data else None


async def echo_rtt(url, n, hdrs):
    """Median microseconds for one typed byte to come back (PTY echo)."""
    async with websockets.connect(url, max_size=None, ping_interval=None,
                                  extra_headers=hdrs) as ws:
        while True:  # until `connected`
            m = await ws.recv()
            if isinstance(m, str) and json.loads(m).get("type") == "connected":
                break
        await ws.send(b"\x00stty -icanon\n")
        await asyncio.sleep(0.3)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 0.2)
        except asyncio.TimeoutError:
            pass
        times = []
        for i in range(n):
            ch = b"abcdefghij"[i % 10:i % 10 + 1]
            t0 = time.perf_counter()
            await ws.send(b"\x00" + ch)
            got = b""
            while ch not in got:
                m = await ws.recv()
                if isinstance(m, bytes):
                    got += m[1:]
            times.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(times)


async def bulk(url, mb, hdrs):
    """MB/s of a shell's output (pipe mode) read by the client."""
    async with websockets.connect(url, max_size=None, ping_interval=None,
                                  extra_headers=hdrs) as ws:
        while True:
            m = await ws.recv()
            if isinstance(m, str) and json.loads(m).get("type") == "connected":
                break
        n = mb * 1024 * 1024
        t0 = time.perf_counter()
        await ws.send(b"\x00head -c %d /dev/zero; echo; echo BULK-DONE\n" % n)
        got = 0
        tail = b""
        while True:
            m = await ws.recv()
            if isinstance(m, bytes):
                got += len(m) - 1
                tail = (tail + m[1:])[-64:]
                if b"BULK-DONE" in tail:
                    break
        return got / (time.perf_counter() - t0) / 1e6


def main():
    if os.geteuid() != 0:
        sys.exit("run as root (cordon server starts cordon run)")
    tmp = tempfile.mkdtemp(prefix="cordon-bench-server-")
    pol = os.path.join(tmp, "policy.yaml")
    with open(pol, "w") as f:
        f.write(POLICY % os.path.dirname(os.path.abspath(CORDON)))
    srv = subprocess.Popen([CORDON, "server", "--insecure", "--listen", "127.0.0.1:0", "--data",
                            os.path.join(tmp, "data"), "--policy", pol, "--log-level", "info",
                            "--pool", str(POOL)],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "w"))
    log = os.path.join(tmp, "server.log")

    def pool_ready(n):
        # "server: pool: X of N ready" once per pool sandbox that became ready
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with open(log) as f:
                if f.read().count(" ready\n") >= n:
                    return
            time.sleep(0.05)
        sys.exit("the pool did not fill; see " + log)
    try:
        select.select([srv.stdout], [], [], 10)
        port = int(srv.stdout.readline().decode().rsplit(":", 1)[1])
        # create-to-first-command: cold (env makes the pool unable to serve
        # it: a new cordon run) and pooled (the pool full before each one)
        lat = {"cold": [], "pool": []}
        claims = 0
        for i in range(2 * CREATES):
            kind = ["cold", "pool"][i % 2] if (i // 2) % 2 == 0 else ["pool", "cold"][i % 2]
            body = {"image": {"uri": "cordon-host"}, "entrypoint": ["sleep", "1000"]}
            if kind == "cold":
                body["env"] = {"BENCH": "cold"}
            else:
                pool_ready(POOL + claims)
                claims += 1
            t0 = time.perf_counter()
            s = req(port, "POST", "/v1/sandboxes", body)
            r = urllib.request.Request(
                "http://127.0.0.1:%d/sandboxes/%s/proxy/44772/command" % (port, s["id"]),
                method="POST", data=b'{"command":"echo first"}',
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(r, timeout=60) as f:
                assert b"first" in f.read()
            lat[kind].append((time.perf_counter() - t0) * 1000)
            req(port, "DELETE", "/v1/sandboxes/" + s["id"])
        with open(log) as f:
            assert f.read().count("claimed from the pool") == CREATES, "a pooled create went cold"

        sbx = req(port, "POST", "/v1/sandboxes", {"image": {"uri": "cordon-host"},
                                                  "entrypoint": ["sleep", "1000"]})
        sid = sbx["id"]
        ep = req(port, "GET", "/v1/sandboxes/%s/endpoints/44772" % sid)
        direct = ep["endpoint"]
        # straight to execd needs its token (the endpoint's headers); the
        # server's route adds it itself
        hdrs = {"server": {}, "direct": ep.get("headers") or {}}
        base = {"server": "ws://127.0.0.1:%d/sandboxes/%s/proxy/44772" % (port, sid),
                "direct": "ws://%s" % direct}
        rtt = {"server": [], "direct": []}
        thr = {"server": [], "direct": []}
        for r in range(ROUNDS):
            order = ["server", "direct"] if r % 2 == 0 else ["direct", "server"]
            for path in order:
                sess = req(port, "POST", "/sandboxes/%s/proxy/44772/sessions" % sid, {})["session_id"]
                rtt[path].append(asyncio.run(echo_rtt("%s/pty/%s/ws" % (base[path], sess), ECHOES, hdrs[path])))
                sess = req(port, "POST", "/sandboxes/%s/proxy/44772/sessions" % sid, {})["session_id"]
                thr[path].append(asyncio.run(bulk("%s/ws/session/%s" % (base[path], sess), BULK_MB, hdrs[path])))
        req(port, "DELETE", "/v1/sandboxes/" + sid)
        m = {k: statistics.median(v) for k, v in rtt.items()}
        t = {k: statistics.median(v) for k, v in thr.items()}
        print("| measure | through the server | straight to execd | ratio | target |")
        print("|---|---|---|---|---|")
        print("| PTY echo round trip (median of %d rounds x %d echoes) | %.0f us | %.0f us | %.2fx | <= 1.5x |"
              % (ROUNDS, ECHOES, m["server"], m["direct"], m["server"] / m["direct"]))
        print("| bulk shell output, %d MiB, pipe mode (median of %d) | %.0f MB/s | %.0f MB/s | %.2fx | >= 0.8x |"
              % (BULK_MB, ROUNDS, t["server"], t["direct"], t["server"] / t["direct"]))
        cold, pool = statistics.median(lat["cold"]), statistics.median(lat["pool"])
        print("| create -> first command output, warm pool (median of %d) | %.0f ms | cold: %.0f ms | %.2fx | < 100 ms |"
              % (CREATES, pool, cold, pool / cold))
        print("\nraw: rtt %r\nthroughput %r\ncreate ms cold %r pool %r" % (
            rtt, thr, [round(x) for x in lat["cold"]], [round(x) for x in lat["pool"]]))
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
