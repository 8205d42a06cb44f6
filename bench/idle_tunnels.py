#!/usr/bin/python3
"""bench/idle_tunnels.py — memory and descriptors per idle CONNECT tunnel,
and whether RSS returns after bursts (#8 item 2, #15 items 3 and 4).

Run as root (creates a network namespace):
    /usr/bin/python3 bench/idle_tunnels.py                 # 8000 tunnels, 6 waves of 1500
    N=3000 WAVES=3 WAVE=1000 /usr/bin/python3 bench/idle_tunnels.py

Topology: a holder server in netns cidle-PID (10.241.X.2:9000) accepts and
keeps every connection; `cordon proxy` on 127.0.0.1 (identity and policy on,
the upstream named by an address literal inside allowed_ips); this script
opens N CONNECT tunnels through it, waits for every 200, and reads the
proxy's VmRSS and open descriptors from /proc before and after. Then WAVES
bursts of WAVE tunnels are opened and closed; after each the proxy is given
a few seconds to settle and its RSS is read again (baseline vs peak).
Nothing leaves the machine. Prints one table; exits non-zero on setup errors.

--inspect (#8 item 2, inspected tunnels):
    N=2000 ROUNDS=3 /usr/bin/python3 bench/idle_tunnels.py --inspect
The holder is replaced by an HTTPS server (asyncio + ssl, keep-alive) on
10.241.X.2:443 with a certificate for idle.bench from a throw-away CA; the
name is resolved by lib/dnsserver.py on 127.0.0.1 (--resolver); the
endpoint is `protocol: rest`, so every tunnel is TLS-terminated by the
proxy. Each tunnel: CONNECT idle.bench:443, 200, TLS handshake with the
proxy (trusting --ca-cert-out), one GET / answered 200, then it idles with
both TLS sessions open. Per round: the proxy's RSS before the N tunnels and
1 s after the last answer; the tunnels are closed before the next round.
Prints KiB per idle inspected tunnel for each round and the median. The
"idle" reading waits (bounded by IDLE_WAIT, default 30 s) until the proxy
holds one descriptor per tunnel: the upstreams kept for the next request
close after the proxy's 10 s upstream grace. Knobs: HOLD=S keeps the idle
tunnels open S more seconds (to attach heaptrack or perf), UP_TICKETS=N sets
how many TLS 1.3 session tickets the HTTPS server sends (Python's default 2).
"""
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORDON = os.environ.get("CORDON", os.path.join(REPO, "build", "cordon"))
N = int(os.environ.get("N", "2000" if "--inspect" in sys.argv[1:] else "8000"))
WAVES = int(os.environ.get("WAVES", "6"))
WAVE = int(os.environ.get("WAVE", "1500"))
SETTLE = float(os.environ.get("SETTLE", "5"))
WORKERS = os.environ.get("CORDON_WORKERS", "")

SERVER = r'''
import resource, selectors, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], 9000)); ls.listen(4096); ls.setblocking(False)
sel = selectors.DefaultSelector(); sel.register(ls, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is ls:
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False); sel.register(c, selectors.EVENT_READ)
        else:
            try:
                d = key.fileobj.recv(4096)
            except OSError:
                d = b""
            if not d:
                sel.unregister(key.fileobj); key.fileobj.close()
'''


def sh(*a):
    subprocess.run(a, check=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def open_tunnels(port, host, n, deadline_s=120):
    """Opens n CONNECT tunnels; returns the sockets once every 200 is in."""
    socks, sel, pending = [], selectors.DefaultSelector(), {}
    req = b"CONNECT %s:9000 HTTP/1.1\r\nHost: %s:9000\r\n\r\n" % (host.encode(), host.encode())
    deadline = time.monotonic() + deadline_s
    opened = 0
    while opened < n or pending:
        while opened < n and len(pending) < 256:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
            opened += 1
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            d = s.recv(4096)
            if not d:
                raise RuntimeError("tunnel closed before its 200")
            pending[s] += d
            if b"\r\n\r\n" in pending[s]:
                if not pending[s].startswith(b"HTTP/1.1 200"):
                    raise RuntimeError("not a 200: %r" % pending[s][:200])
                sel.unregister(s)
                del pending[s]
                socks.append(s)
        if time.monotonic() > deadline:
            raise RuntimeError("timed out opening tunnels (%d of %d)" % (len(socks), n))
    return socks


HTTPS_SERVER = r'''
import asyncio, resource, ssl, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
import os
if os.environ.get("UP_TICKETS"): ctx.num_tickets = int(os.environ["UP_TICKETS"])
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            await w.drain()
    except Exception:
        pass
    w.close()
async def main():
    srv = await asyncio.start_server(handle, sys.argv[1], 443, ssl=ctx, backlog=4096)
    print("ready", flush=True)
    await srv.serve_forever()
asyncio.run(main())
'''


def make_certs(d, name):
    """A throw-away CA and a leaf for name, with the openssl CLI."""
    ca_key, ca, key, csr, crt = (os.path.join(d, f) for f in
                                 ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    ext = os.path.join(d, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" % name)
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=idle bench CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], **q)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name], **q)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext], **q)
    return ca, crt, key


def open_inspected(port, host, n, cafile, threads=8):
    """Opens n inspected tunnels: CONNECT, 200, TLS with the proxy, one GET
    answered 200. Returns the TLS sockets (idle, open)."""
    import ssl
    import threading
    ctx = ssl.create_default_context(cafile=cafile)
    req_connect = b"CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (host.encode(), host.encode())
    req_get = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode()
    out, errs, lock = [], [], threading.Lock()
    left = [n]

    def read_head(s):
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(4096)
            if not d:
                raise RuntimeError("closed before a response head")
            data += d
        return data

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(req_connect)
        h = read_head(s)
        if not h.startswith(b"HTTP/1.1 200"):
            raise RuntimeError("CONNECT: %r" % h[:200])
        t = ctx.wrap_socket(s, server_hostname=host)
        t.sendall(req_get)
        h = read_head(t)
        if not h.startswith(b"HTTP/1.1 200"):
            raise RuntimeError("GET: %r" % h[:300])
        body = h.split(b"\r\n\r\n", 1)[1]
        while len(body) < 2:
            body += t.recv(16)
        return t

    def worker():
        while True:
            with lock:
                if left[0] == 0 or errs:
                    return
                left[0] -= 1
            try:
                t = one()
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errs.append(e)
                return
            with lock:
                out.append(t)

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    if errs:
        for t in out:
            t.close()
        raise RuntimeError("opening inspected tunnels: %r" % errs[0])
    return out


def run_inspect(port, cp, cafile):
    rounds = int(os.environ.get("ROUNDS", "3"))
    for t in open_inspected(port, "idle.bench", 50, cafile):   # warm-up: leaf, sessions, identity
        t.close()
    wait_fds(cp.pid, nfds(cp.pid))
    time.sleep(SETTLE)
    per = []
    for r in range(rounds):
        base_rss, base_fds = rss_kib(cp.pid), nfds(cp.pid)
        t0 = time.monotonic()
        socks = open_inspected(port, "idle.bench", N, cafile)
        took = time.monotonic() - t0
        time.sleep(1)
        rss1, fds1 = rss_kib(cp.pid), nfds(cp.pid)
        # then idle past the proxy's upstream grace (PROXY_UPSTREAM_IDLE_MS,
        # 10 s): the kept upstream connections close, the tunnels stay
        wait_fds(cp.pid, base_fds + N, timeout=float(os.environ.get("IDLE_WAIT", "30")))
        time.sleep(1)
        rss, fds = rss_kib(cp.pid), nfds(cp.pid)
        waited = time.monotonic() - t0 - took
        per.append((rss - base_rss) / N)
        print("round %d: %d inspected tunnels (opened in %.1f s); 1 s after the last answer: "
              "RSS %d -> %d KiB, %.2f KiB and %.2f fds per tunnel; idle %.0f s: RSS %d KiB, "
              "%.2f KiB and %.2f fds per tunnel"
              % (r + 1, N, took, base_rss, rss1, (rss1 - base_rss) / N, (fds1 - base_fds) / N,
                 waited, rss, per[-1], (fds - base_fds) / N), flush=True)
        time.sleep(float(os.environ.get("HOLD", "0")))  # time to attach a profiler to the idle proxy
        for t in socks:
            t.close()
        wait_fds(cp.pid, base_fds + 8)
        time.sleep(SETTLE)
    per.sort()
    print("median of %d rounds: %.2f KiB per idle inspected tunnel (idle past the upstream grace)"
          % (rounds, per[len(per) // 2]))


def wait_fds(pid, target, timeout=60):
    deadline = time.monotonic() + timeout
    while nfds(pid) > target and time.monotonic() < deadline:
        time.sleep(0.1)


def main():
    inspect = "--inspect" in sys.argv[1:]
    if os.geteuid() != 0:
        sys.exit("run as root")
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    ns, vh, vn = "cidle-%d" % os.getpid(), "cih%d" % os.getpid(), "cin%d" % os.getpid()
    x = 0
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    while "inet 10.241.%d." % x in addrs:
        x += 1
    net = "10.241.%d" % x
    up = net + ".2"
    tmp = tempfile.mkdtemp(prefix="cordon-idle.")
    procs = []
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", vh, "type", "veth", "peer", "name", vn)
        sh("ip", "link", "set", vn, "netns", ns)
        sh("ip", "addr", "add", net + ".1/24", "dev", vh)
        sh("ip", "link", "set", vh, "up")
        sh("ip", "-n", ns, "addr", "add", up + "/24", "dev", vn)
        sh("ip", "-n", ns, "link", "set", vn, "up")
        extra = []
        if inspect:
            upca, crt, key = make_certs(tmp, "idle.bench")
            srv = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", HTTPS_SERVER,
                                    up, crt, key], stdout=subprocess.PIPE, text=True)
            procs.append(srv)
            assert srv.stdout.readline().strip() == "ready"
            dns = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "integration", "lib",
                                                                     "dnsserver.py"),
                                    "--bind", "127.0.0.1", "--port", "0", "idle.bench=" + up],
                                   stdout=subprocess.PIPE, text=True)
            procs.append(dns)
            dns_port = int(dns.stdout.readline().split()[1])
            proxy_ca = os.path.join(tmp, "proxy-ca.pem")
            extra = ["--resolver", "127.0.0.1:%d" % dns_port, "--upstream-ca", upca,
                     "--ca-cert-out", proxy_ca]
            endpoint = ("      - host: idle.bench\n        port: 443\n        protocol: rest\n"
                        "        access: full\n        allowed_ips: [\"%s.0/24\"]\n" % net)
        else:
            srv = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", SERVER, up],
                                   stdout=subprocess.PIPE, text=True)
            procs.append(srv)
            assert srv.stdout.readline().strip() == "ready"
            endpoint = ("      - host: \"%s\"\n        port: 9000\n        allowed_ips: [\"%s.0/24\"]\n"
                        % (up, net))
        pol = os.path.join(tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nnetwork_policies:\n  bench:\n    endpoints:\n" + endpoint +
                    "    binaries:\n      - path: /usr/bin/python3\n")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        args = [CORDON, "proxy", "--policy", pol, "--listen", "127.0.0.1:%d" % port,
                "--log", os.path.join(tmp, "audit.jsonl")]
        if WORKERS:
            args += ["--workers", WORKERS]
        args += extra
        err = open(os.path.join(tmp, "stderr.log"), "w")
        cp = subprocess.Popen(args, stderr=err)
        procs.append(cp)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        if inspect:
            run_inspect(port, cp, proxy_ca)
            cp.send_signal(signal.SIGTERM)
            cp.wait(10)
            return
        # warm-up: identity cache, first binary hash, pipe pools
        for sk in open_tunnels(port, up, 50):
            sk.close()
        time.sleep(SETTLE)
        base_rss, base_fds = rss_kib(cp.pid), nfds(cp.pid)
        t0 = time.monotonic()
        socks = open_tunnels(port, up, N)
        took = time.monotonic() - t0
        time.sleep(1)
        rss, fds = rss_kib(cp.pid), nfds(cp.pid)
        print("idle CONNECT tunnels: %d (opened in %.1f s)" % (N, took))
        print("proxy RSS: %d KiB -> %d KiB: %.2f KiB per tunnel" % (base_rss, rss, (rss - base_rss) / N))
        print("proxy fds: %d -> %d: %.2f per tunnel" % (base_fds, fds, (fds - base_fds) / N))
        for sk in socks:
            sk.close()
        wait_fds(cp.pid, base_fds + 8)
        time.sleep(SETTLE)
        print("after closing them (+%.0f s): RSS %d KiB, fds %d" % (SETTLE, rss_kib(cp.pid), nfds(cp.pid)))
        print("waves of %d tunnels: baseline RSS %d KiB" % (WAVE, rss_kib(cp.pid)))
        for w in range(WAVES):
            socks = open_tunnels(port, up, WAVE)
            peak = rss_kib(cp.pid)
            for sk in socks:
                sk.close()
            wait_fds(cp.pid, base_fds + 8)
            time.sleep(SETTLE)
            print("  wave %d: peak %d KiB, after +%.0f s %d KiB" % (w + 1, peak, SETTLE, rss_kib(cp.pid)))
        cp.send_signal(signal.SIGTERM)
        cp.wait(10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", vh], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
