#!/usr/bin/python3
"""Upstream test servers, run inside a test netns (see netns.py):

  upstream.py --bind ADDR --http PORT [--http PORT ...] [--ws PORT] [--echo PORT]

HTTP/1.1 with keep-alive (stdlib ThreadingHTTPServer, no idle timeout):
  /            200 "hello from upstream"
  /echo        200 JSON {method, path, version, headers: [[k, v]...], body, conn, req, server_port}
  /size/N      200 N bytes (a repeating ASCII pattern)
  /stream/N    200 N bytes written in 64 KiB pieces (never held in memory)
  /sink        200 JSON {length, sha256} of the request body
  /slow/MS     sleeps MS ms, then 200 "slow done"
  /status/N    responds with status N (empty body)
  /close       200 "bye" with Connection: close
  /drip/N/MS   N chunks of "tick\\n" every MS ms (chunked encoding)
Every response carries X-Upstream-Conn (a per-TCP-connection id) and
X-Upstream-Req (the request number on that connection).
WebSocket echo (python3-websockets) on --ws; raw TCP echo on --echo.
Prints "READY" on stdout once every listener is bound.
"""
import argparse
import asyncio
import hashlib
import itertools
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
_conn_ids = itertools.count(1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ctest-upstream/1"
    timeout = None   # keep-alive connections idle forever; the proxy decides

    def setup(self):
        super().setup()
        self.conn_id = next(_conn_ids)
        self.req_no = 0

    def log_message(self, fmt, *args):   # quiet
        pass

    def _body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=b"", ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream-Conn", str(self.conn_id))
        self.send_header("X-Upstream-Req", str(self.req_no))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _handle(self):
        self.req_no += 1
        body = self._body()
        path = self.path
        parts = path.split("?", 1)[0].strip("/").split("/")
        try:
            if path == "/" or path.startswith("/?"):
                self._send(200, b"hello from upstream")
            elif parts[0] == "echo":
                doc = {"method": self.command, "path": self.path,
                       "version": self.request_version,
                       "headers": [[k, v] for k, v in self.headers.items()],
                       "body": body.decode("latin-1"), "conn": self.conn_id,
                       "req": self.req_no, "server_port": self.server.server_address[1]}
                self._send(200, json.dumps(doc).encode(), "application/json")
            elif parts[0] == "size" and len(parts) == 2:
                n = int(parts[1])
                data = (PATTERN * (n // len(PATTERN) + 1))[:n]
                self._send(200, data, "application/octet-stream")
            elif parts[0] == "stream" and len(parts) == 2:
                n = int(parts[1])
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                chunk = PATTERN * (65536 // len(PATTERN))
                while n > 0:
                    k = min(n, len(chunk))
                    self.wfile.write(chunk[:k])
                    n -= k
            elif parts[0] == "sink":
                doc = {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
                self._send(200, json.dumps(doc).encode(), "application/json")
            elif parts[0] == "slow" and len(parts) == 2:
                time.sleep(int(parts[1]) / 1000.0)
                self._send(200, b"slow done")
            elif parts[0] == "status" and len(parts) == 2:
                self._send(int(parts[1]))
            elif parts[0] == "close":
                self.close_connection = True
                self._send(200, b"bye", extra=[("Connection", "close")])
            elif parts[0] == "drip" and len(parts) == 3:
                n, ms = int(parts[1]), int(parts[2])
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(n):
                    self.wfile.write(b"5\r\ntick\n\r\n")
                    self.wfile.flush()
                    time.sleep(ms / 1000.0)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self._send(404, b"not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096     # 1000-tunnel tests connect in bursts

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that
        # hangs inside a namespace with no resolver; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


async def ws_echo(ws, path=None):
    try:
        async for msg in ws:
            await ws.send(msg)
    except Exception:
        pass


async def ws_main(bind, port, ready):
    import websockets
    async with websockets.serve(ws_echo, bind, port, ping_interval=None,
                                max_size=2 ** 22, backlog=4096):
        ready.set()
        await asyncio.Future()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--http", type=int, action="append", default=[])
    ap.add_argument("--ws", type=int)
    ap.add_argument("--echo", type=int, action="append", default=[])
    a = ap.parse_args()
    for port in a.http:
        srv = Server((a.bind, port), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    for port in a.echo:
        srv = EchoServer((a.bind, port), EchoHandler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    if a.ws:
        ready = threading.Event()
        t = threading.Thread(target=lambda: asyncio.run(ws_main(a.bind, a.ws, ready)), daemon=True)
        t.start()
        if not ready.wait(10):
            print("websocket server did not start", file=sys.stderr)
            sys.exit(1)
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


class Upstream:
    """Handle returned by start(): addresses and ports of a running upstream."""

    def __init__(self, proc, addr, http, ws, echo):
        self.proc, self.addr, self.http, self.ws, self.echo = proc, addr, http, ws, echo


def start(ns, http=(80,), ws=None, echo=(), timeout=10.0):
    """Starts this script inside Netns `ns` bound to ns.ns_ip and waits for
    READY (bounded). The process is owned by ns (killed on ns.close())."""
    import os
    import select
    import subprocess
    argv = ["/usr/bin/python3", os.path.abspath(__file__), "--bind", ns.ns_ip]
    for p in http:
        argv += ["--http", str(p)]
    for p in echo:
        argv += ["--echo", str(p)]
    if ws:
        argv += ["--ws", str(ws)]
    import tempfile
    errf = tempfile.TemporaryFile()   # a file, not a pipe: a full pipe would stall the server
    proc = ns.spawn(argv, stdout=subprocess.PIPE, stderr=errf)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            errf.seek(0)
            err = errf.read()
            raise RuntimeError("upstream did not start: %r %r" % (line, err))
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            c = os.read(proc.stdout.fileno(), 1)
            if not c:
                continue
            line += c
    if line.strip() != b"READY":
        raise RuntimeError("upstream said %r" % line)
    proc.stdout.close()
    u = Upstream(proc, ns.ns_ip, list(http), ws, list(echo))
    u.stderr_file = errf
    return u


if __name__ == "__main__":
    main()
