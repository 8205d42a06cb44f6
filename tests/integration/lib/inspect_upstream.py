#!/usr/bin/python3
"""Upstreams for the inspected-HTTP tests (test_inspect_*.py), run inside a
test netns:

  inspect_upstream.py --bind ADDR --certs DIR --log FILE [--git-root DIR]

Listeners (all on ADDR):
  443   HTTPS, certificate DIR/good.pem (signed by DIR/ca.pem, the test CA)
  80    plain HTTP, the same application
  8443  HTTPS with DIR/untrusted.pem (signed by a CA nobody trusts)
  8444  HTTPS with DIR/wrongname.pem (test CA, but for another host name)
  8445  HTTPS like 443, for tests that count the connections it accepts
  9443  WebSocket echo over TLS (wss, DIR/good.pem)
  9080  WebSocket echo (ws)
        under /ws/: faults on request (see ws_echo) and a log record of
        each session's end {ws_path, close_code, close_reason}

Application (HTTP/1.1, keep-alive, one thread per connection):
  /sink...            reads the body as it streams (CL or chunked), answers
                      JSON {length, sha256}
  /bytes/N            N bytes of pattern() with Content-Length, streamed
  /sse/N/MS           N server-sent events, one every MS ms, chunked; each
                      event's data is JSON {i, t} with t = time.time() at emit
  /sse-close/N/MS     the same, close-delimited (no framing, Connection: close)
  /upgrade/unsolicited  answers 101 whatever the request said, then sends
                      "SMUGGLED-AFTER-101\\n" in the same write
  /upgrade/echo       101 (only if the request has Upgrade), with
                      "OVERFLOW-HELLO\\n" in the same write as the head, then
                      echoes raw bytes until EOF
  /status/N           status N, empty body
  /git/...            git smart HTTP (git http-backend, GIT_PROJECT_ROOT=--git-root)
  anything else       echo: JSON {method, target, version, headers, body_len,
                      body_sha256, port, conn, req}
Every request line seen is appended to --log as JSON {port, method, target,
headers, conn, req} (flushed per request) so tests can prove a request never
arrived; every accepted connection as {accept: port, t}. Prints READY once every listener is bound.

pattern(n) and pattern_sha256(n) are importable for the tests.
"""
import argparse
import asyncio
import hashlib
import itertools
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK_SIZE = 1 << 20


def _block():
    out = bytearray()
    h = b"cordon-inspect-pattern"
    while len(out) < BLOCK_SIZE:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:BLOCK_SIZE])


BLOCK = _block()


def pattern_chunks(n):
    """Yields the n-byte test pattern in blocks of at most 1 MiB."""
    while n > 0:
        k = min(n, BLOCK_SIZE)
        yield BLOCK if k == BLOCK_SIZE else BLOCK[:k]
        n -= k


def pattern_sha256(n):
    h = hashlib.sha256()
    for b in pattern_chunks(n):
        h.update(b)
    return h.hexdigest()


_conn_ids = itertools.count(1)
_log_lock = threading.Lock()
LOG = None
GIT_ROOT = None


class BadBody(Exception):
    pass


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "insp-upstream/1"
    timeout = 120

    def setup(self):
        super().setup()
        self.conn_id = next(_conn_ids)
        self.req_no = 0

    def log_message(self, fmt, *args):
        pass

    # -- helpers -------------------------------------------------------------
    def _log(self):
        if not LOG:
            return
        rec = {"port": self.server.server_address[1], "method": self.command,
               "target": self.path, "headers": [[k, v] for k, v in self.headers.items()],
               "conn": self.conn_id, "req": self.req_no, "t": time.time()}
        line = (json.dumps(rec) + "\n").encode()
        with _log_lock:
            with open(LOG, "ab") as f:
                f.write(line)

    def body_chunks(self):
        """Yields the request body as it arrives (strict chunked parser)."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BadBody("unsupported Transfer-Encoding %r" % te)
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\r\n"):
                    raise BadBody("bad chunk size line %r" % line)
                size_s = line[:-2].split(b";")[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise BadBody("bad chunk size %r" % line)
                if size == 0:
                    while True:
                        t = self.rfile.readline(8192)
                        if t == b"\r\n":
                            return
                        if not t.endswith(b"\r\n"):
                            raise BadBody("bad trailer")
                left = size
                while left:
                    d = self.rfile.read(min(left, BLOCK_SIZE))
                    if not d:
                        raise BadBody("EOF in chunk")
                    left -= len(d)
                    yield d
                if self.rfile.read(2) != b"\r\n":
                    raise BadBody("chunk not followed by CRLF")
        n = int(self.headers.get("Content-Length", "0") or 0)
        while n > 0:
            d = self.rfile.read(min(n, BLOCK_SIZE))
            if not d:
                raise BadBody("EOF in body")
            n -= len(d)
            yield d

    def read_body(self, limit=64 << 20):
        out = bytearray()
        for d in self.body_chunks():
            out += d
            if len(out) > limit:
                raise BadBody("body too large for this route")
        return bytes(out)

    def send_simple(self, status, body=b"", ctype="text/plain", extra=()):
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

    def send_json(self, doc, status=200):
        self.send_simple(status, json.dumps(doc).encode(), "application/json")

    # -- routes --------------------------------------------------------------
    def _handle(self):
        self.req_no += 1
        self._log()
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        try:
            if path.startswith("/git/"):
                self.git()
            elif parts[0] == "sink":
                h, n = hashlib.sha256(), 0
                for d in self.body_chunks():
                    h.update(d)
                    n += len(d)
                self.send_json({"length": n, "sha256": h.hexdigest(), "conn": self.conn_id,
                                "req": self.req_no})
            elif parts[0] == "bytes" and len(parts) == 2:
                self.read_body()
                n = int(parts[1])
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                if self.command != "HEAD":
                    for b in pattern_chunks(n):
                        self.wfile.write(b)
            elif parts[0] in ("sse", "sse-close") and len(parts) == 3:
                self.read_body()
                self.sse(int(parts[1]), int(parts[2]), chunked=parts[0] == "sse")
            elif parts[0] == "upgrade" and len(parts) == 2:
                self.read_body()
                self.upgrade(parts[1])
            elif parts[0] == "status" and len(parts) == 2:
                self.read_body()
                self.send_simple(int(parts[1]))
            else:
                body = self.read_body()
                self.send_json({"method": self.command, "target": self.path,
                                "version": self.request_version,
                                "headers": [[k, v] for k, v in self.headers.items()],
                                "body_len": len(body),
                                "body_sha256": hashlib.sha256(body).hexdigest(),
                                "port": self.server.server_address[1],
                                "conn": self.conn_id, "req": self.req_no})
        except BadBody as e:
            self.close_connection = True
            try:
                self.send_simple(400, ("bad body: %s" % e).encode(), extra=[("Connection", "close")])
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    def sse(self, n, ms, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for i in range(n):
            ev = ("id: %d\ndata: %s\n\n" % (i, json.dumps({"i": i, "t": time.time()}))).encode()
            if chunked:
                ev = b"%x\r\n%s\r\n" % (len(ev), ev)
            self.wfile.write(ev)
            if i + 1 < n:
                time.sleep(ms / 1000.0)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def upgrade(self, kind):
        if kind == "unsolicited":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                             b"Upgrade: x-unsolicited\r\n\r\nSMUGGLED-AFTER-101\n")
            # anything the proxy lets through after this is logged
            self.connection.settimeout(5)
            try:
                while True:
                    d = self.rfile.read1(65536)
                    if not d:
                        break
                    self._log_raw(d)
            except (OSError, ssl.SSLError):
                pass
            return
        if kind == "echo":
            if not self.headers.get("Upgrade"):
                self.send_simple(426, b"upgrade required")
                return
            proto = self.headers.get("Upgrade")
            self.close_connection = True
            self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              "Upgrade: %s\r\n\r\n" % proto).encode() + b"OVERFLOW-HELLO\n")
            self.connection.settimeout(30)
            try:
                while True:
                    d = self.rfile.read1(65536)
                    if not d:
                        break
                    self.wfile.write(d)
            except (OSError, ssl.SSLError):
                pass
            return
        self.send_simple(404, b"no such upgrade")

    def _log_raw(self, data):
        if not LOG:
            return
        rec = {"port": self.server.server_address[1], "raw_after_101": data.decode("latin-1"),
               "conn": self.conn_id}
        with _log_lock:
            with open(LOG, "ab") as f:
                f.write((json.dumps(rec) + "\n").encode())

    def git(self):
        """CGI bridge to git http-backend (RFC 3875)."""
        body = self.read_body()
        path, _, query = self.path[len("/git"):].partition("?")
        env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": GIT_ROOT, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "REMOTE_USER": "tester", "REMOTE_ADDR": self.client_address[0],
               "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
               "CONTENT_LENGTH": str(len(body)), "HOME": GIT_ROOT}
        if self.headers.get("Content-Type"):
            env["CONTENT_TYPE"] = self.headers["Content-Type"]
        for k, v in self.headers.items():
            name = "HTTP_" + k.upper().replace("-", "_")
            if name not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                env[name] = v
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                           timeout=60)
        out = p.stdout
        sep = out.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0 or (out.find(b"\n\n") >= 0 and out.find(b"\n\n") < sep):
            sep, seplen = out.find(b"\n\n"), 2
        if sep < 0:
            self.send_simple(500, b"git http-backend failed: " + p.stderr[-500:])
            return
        head, payload = out[:sep].decode("latin-1"), out[sep + seplen:]
        status, headers = 200, []
        for line in head.replace("\r\n", "\n").split("\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k.strip():
                headers.append((k.strip(), v.strip()))
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    ssl_ctx = None

    def server_bind(self):
        # skip HTTPServer's getfqdn() (a reverse lookup that hangs in a netns)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        if LOG:
            rec = {"accept": self.server_address[1], "t": time.time()}
            with _log_lock:
                with open(LOG, "ab") as f:
                    f.write((json.dumps(rec) + "\n").encode())
        if self.ssl_ctx is not None:
            request.settimeout(10)
            try:
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            request.settimeout(None)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            try:
                request.close()
            except OSError:
                pass


def server_ctx(certs, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, name + ".pem"), os.path.join(certs, name + ".key"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def start_http(bind, port, ctx=None):
    srv = Server((bind, port), App)
    srv.ssl_ctx = ctx
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _log_ws_end(ws):
    """Records how a WebSocket under /ws/ ended: {ws_path, close_code, close_reason}."""
    if not LOG:
        return
    rec = {"ws_path": ws.path, "close_code": ws.close_code, "close_reason": ws.close_reason,
           "t": time.time()}
    with _log_lock:
        with open(LOG, "ab") as f:
            f.write((json.dumps(rec) + "\n").encode())


async def _flushed(ws):
    """Waits until what was written reached the peer's kernel: nothing left
    in the transport (TLS included) nor unacknowledged in the socket."""
    import fcntl
    import termios
    sock = ws.transport.get_extra_info("socket")
    for _ in range(1000):
        if ws.transport.get_write_buffer_size() == 0:
            out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            if int.from_bytes(out, sys.byteorder) == 0:
                return
        await asyncio.sleep(0.01)
    raise RuntimeError("the peer never took the bytes")


def _reset(ws):
    """Ends the TCP connection with a RST: no close frame, no TLS close_notify."""
    import struct
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def ws_echo(ws, path=None):
    """Echo. Under /ws/ (tests of the proxy's WebSocket relay) the message
    "reset" ends the connection with a RST, "eof" with a plain close (FIN,
    TLS close_notify) — both without a close frame — and "midframe" sends the
    header and the first 10 bytes of a 256-byte binary frame, waits until the
    peer's kernel has them, then resets; "stall" sends the same and goes
    quiet. Every /ws/ session's end is logged."""
    try:
        async for msg in ws:
            fault = msg if ws.path.startswith("/ws/") else None
            if fault in ("midframe", "stall"):
                ws.transport.write(b"\x82\x7e\x01\x00" + b"0123456789")
                await _flushed(ws)
            if fault == "stall":
                pass  # quiet inside the frame until the peer ends it
            elif fault in ("reset", "midframe"):
                _reset(ws)
            elif fault == "eof":
                ws.transport.close()
            else:
                await ws.send(msg)
                continue
            # gone: the library must not send its own close frame after this
            await ws.wait_closed()
            return
    except Exception:
        pass
    finally:
        if ws.path.startswith("/ws/"):
            _log_ws_end(ws)


async def ws_main(bind, listeners, ready):
    import websockets
    servers = []
    for port, ctx in listeners:
        servers.append(await websockets.serve(ws_echo, bind, port, ssl=ctx, ping_interval=None,
                                              max_size=64 << 20, max_queue=4))
    ready.set()
    await asyncio.Future()


def main():
    global LOG, GIT_ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--git-root", default="/nonexistent")
    a = ap.parse_args()
    LOG, GIT_ROOT = a.log, a.git_root
    good = server_ctx(a.certs, "good")
    start_http(a.bind, 443, good)
    start_http(a.bind, 80)
    start_http(a.bind, 8443, server_ctx(a.certs, "untrusted"))
    start_http(a.bind, 8444, server_ctx(a.certs, "wrongname"))
    start_http(a.bind, 8445, server_ctx(a.certs, "good"))
    ready = threading.Event()
    wss = server_ctx(a.certs, "good")
    wss.set_alpn_protocols(["http/1.1"])
    threading.Thread(target=lambda: asyncio.run(ws_main(a.bind, [(9443, wss), (9080, None)], ready)),
                     daemon=True).start()
    if not ready.wait(10):
        print("websocket servers did not start", file=sys.stderr)
        sys.exit(1)
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
