"""CPU seconds per 64 MiB of bulk output: server process, execd, client, via the server vs direct."""
import asyncio, json, os, resource, select, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, "/work/wt/execd/bench")
import run_server as rs
CORDON = "/work/wt/execd/build/cordon"
tmp = tempfile.mkdtemp(prefix="cordon-cpu-")
pol = os.path.join(tmp, "policy.yaml")
open(pol, "w").write(rs.POLICY % os.path.dirname(CORDON))
srv = subprocess.Popen([CORDON, "server", "--insecure", "--listen", "127.0.0.1:0", "--data",
                        os.path.join(tmp, "data"), "--policy", pol, "--log-level", "warn"],
                       stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "w"))
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def descendants(root):
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
                kids.setdefault(int(st[1]), []).append(int(p))
            except OSError: pass
    out, todo = [], [root]
    while todo:
        x = todo.pop(); out.append(x); todo += kids.get(x, [])
    return out
try:
    select.select([srv.stdout], [], [], 10)
    port = int(srv.stdout.readline().decode().rsplit(":", 1)[1])
    sbx = rs.req(port, "POST", "/v1/sandboxes", {"image": {"uri": "cordon-host"}, "entrypoint": ["sleep", "1000"]})
    sid = sbx["id"]
    time.sleep(1)
    ep = rs.req(port, "GET", "/v1/sandboxes/%s/endpoints/44772" % sid)
    execd = [p for p in descendants(srv.pid) if b"execd" in open("/proc/%d/cmdline" % p, "rb").read().split(b"\0")[1:2]]
    print("execd pids", execd)
    base = {"server": ("ws://127.0.0.1:%d/sandboxes/%s/proxy/44772" % (port, sid), {}),
            "direct": ("ws://%s" % ep["endpoint"], ep.get("headers") or {})}
    for rnd in range(3):
        for path in ("server", "direct"):
            sess = rs.req(port, "POST", "/sandboxes/%s/proxy/44772/sessions" % sid, {})["session_id"]
            c0 = (cpu(srv.pid), sum(cpu(p) for p in execd), resource.getrusage(resource.RUSAGE_SELF))
            t0 = time.perf_counter()
            mbs = asyncio.run(rs.bulk("%s/ws/session/%s" % (base[path][0], sess), 64, base[path][1]))
            dt = time.perf_counter() - t0
            c1 = (cpu(srv.pid), sum(cpu(p) for p in execd), resource.getrusage(resource.RUSAGE_SELF))
            cl = (c1[2].ru_utime + c1[2].ru_stime) - (c0[2].ru_utime + c0[2].ru_stime)
            print("%-6s %5.1f MB/s  wall %.2fs  server cpu %.2fs  execd cpu %.2fs  client cpu %.2fs" %
                  (path, mbs, dt, c1[0] - c0[0], c1[1] - c0[1], cl))
    rs.req(port, "DELETE", "/v1/sandboxes/" + sid)
finally:
    srv.terminate(); srv.wait()
