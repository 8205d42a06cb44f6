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
N = int(os.environ.get("N", "8000"))
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


def wait_fds(pid, target, timeout=60):
    deadline = time.monotonic() + timeout
    while nfds(pid) > target and time.monotonic() < deadline:
        time.sleep(0.1)


def main():
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
        srv = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", SERVER, up],
                               stdout=subprocess.PIPE, text=True)
        procs.append(srv)
        assert srv.stdout.readline().strip() == "ready"
        pol = os.path.join(tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nnetwork_policies:\n  bench:\n    endpoints:\n"
                    "      - host: \"%s\"\n        port: 9000\n        allowed_ips: [\"%s.0/24\"]\n"
                    "    binaries:\n      - path: /usr/bin/python3\n" % (up, net))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        args = [CORDON, "proxy", "--policy", pol, "--listen", "127.0.0.1:%d" % port,
                "--log", os.path.join(tmp, "audit.jsonl")]
        if WORKERS:
            args += ["--workers", WORKERS]
        err = open(os.path.join(tmp, "stderr.log"), "w")
        cp = subprocess.Popen(args, stderr=err)
        procs.append(cp)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
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
