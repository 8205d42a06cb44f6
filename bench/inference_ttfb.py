#!/usr/bin/python3
"""Inference routing: time to first byte and streamed chunks/s of a
completion, through `cordon proxy` (http://inference.local, absolute form,
kept-alive connection) versus straight to the fake model server, in the same
run. Loopback only; uses tests/integration/lib/fake_llm.py as the backend.

usage: bench/inference_ttfb.py [--cordon build/cordon] [--rounds 5] [--n 300] [--chunks 2000]
Prints a markdown table: medians of the per-round medians, and ratios."""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(ROOT, "tests", "integration", "lib", "fake_llm.py")
KEY = "sk-bench"


def start(argv, env=None):
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d not listening" % port)


def request(target, model, auth):
    body = b'{"model":"%s","stream":true,"messages":[]}' % model.encode()
    return (b"POST %s HTTP/1.1\r\nHost: inference.local\r\nContent-Type: application/json\r\n"
            b"%sContent-Length: %d\r\n\r\n%s" % (target.encode(), auth, len(body), body))


def read_stream(sock, first_only_time):
    """Reads one chunked SSE response to its terminator; returns (ttfb, total) seconds."""
    buf = b""
    t_first = None
    while not buf.endswith(b"0\r\n\r\n"):
        d = sock.recv(262144)
        if not d:
            raise RuntimeError("closed: %r" % buf[-200:])
        if t_first is None and b"data: " in buf + d:
            t_first = time.perf_counter()
        buf += d
    return t_first, time.perf_counter()


def measure(addr, target, auth, n, chunks):
    s = socket.create_connection(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ttfb = []
    small = request(target, "m", auth)
    for i in range(n + 10):
        t0 = time.perf_counter()
        s.sendall(small)
        tf, _ = read_stream(s, True)
        if i >= 10:                         # warm-up
            ttfb.append((tf - t0) * 1e6)
    big = request(target, "slow-0-%d" % chunks, auth)
    t0 = time.perf_counter()
    s.sendall(big)
    _, t1 = read_stream(s, False)
    s.close()
    return statistics.median(ttfb), chunks / (t1 - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cordon", default=os.path.join(ROOT, "build", "cordon"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--chunks", type=int, default=2000)
    a = ap.parse_args()
    fake = start(["/usr/bin/python3", FAKE, "--key", KEY])
    port = int(fake.stdout.readline().split()[1])
    d = tempfile.mkdtemp(prefix="cordon-bench-infer-")
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write("version: 1\n")
    with open(os.path.join(d, "r.yaml"), "w") as f:
        f.write("routes:\n  - name: fake\n    base_url: http://127.0.0.1:%d/v1\n"
                "    credential: {env: BENCH_KEY}\n" % port)
    pport = free_port()
    proxy = start([a.cordon, "proxy", "--policy", os.path.join(d, "p.yaml"), "--listen",
                   "127.0.0.1:%d" % pport, "--inference-routes", os.path.join(d, "r.yaml"),
                   "--log", os.path.join(d, "audit.jsonl"), "--log-level", "warn"],
                  env=dict(os.environ, BENCH_KEY=KEY))
    try:
        wait_port(pport)
        rows = {"direct": ([], []), "cordon": ([], [])}
        for r in range(a.rounds):
            t, c = measure(("127.0.0.1", port), "/v1/chat/completions",
                           b"Authorization: Bearer %s\r\n" % KEY.encode(), a.n, a.chunks)
            rows["direct"][0].append(t)
            rows["direct"][1].append(c)
            t, c = measure(("127.0.0.1", pport), "http://inference.local/v1/chat/completions", b"",
                           a.n, a.chunks)
            rows["cordon"][0].append(t)
            rows["cordon"][1].append(c)
            print("round %d: direct %.0f us %.0f chunks/s | cordon %.0f us %.0f chunks/s"
                  % (r + 1, rows["direct"][0][-1], rows["direct"][1][-1], rows["cordon"][0][-1],
                     rows["cordon"][1][-1]), file=sys.stderr)
        dt, dc = statistics.median(rows["direct"][0]), statistics.median(rows["direct"][1])
        ct, cc = statistics.median(rows["cordon"][0]), statistics.median(rows["cordon"][1])
        ratios_t = [c / d for c, d in zip(rows["cordon"][0], rows["direct"][0])]
        ratios_c = [c / d for c, d in zip(rows["cordon"][1], rows["direct"][1])]
        print("| measure | direct | through cordon | cordon − direct | ratio (median of rounds) |")
        print("|---|---|---|---|---|")
        print("| TTFB, median of %d streamed requests | %.0f µs | %.0f µs | %+.0f µs | %.2f× |"
              % (a.n, dt, ct, ct - dt, statistics.median(ratios_t)))
        print("| streamed chunks/s (%d SSE events, no delay) | %.0f | %.0f | | %.2f× |"
              % (a.chunks, dc, cc, statistics.median(ratios_c)))
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(10)
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
