"""Raw HTTP/1.1 over sockets, for talking to the proxy byte by byte.

    c = HttpConn.open(("127.0.0.1", port))
    r = c.request("GET", "http://allowed.test/echo", host="allowed.test")
    r.status, r.header("x-cordon-deny"), r.json()
    c, r = connect_tunnel(port, "allowed.test", 80)     # r.status == 200 → c is a tunnel

Every read has a deadline; nothing here blocks forever.
"""
import json
import socket
import time


class ProtocolError(Exception):
    pass


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers          # [(name, value)] in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r headers=%r body=%r>" % (self.status, self.reason, self.headers,
                                                         self.body[:300])


class HttpConn:
    """A socket with a read buffer and deadlines."""

    def __init__(self, sock, timeout=5.0):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.sent = 0          # bytes written by send()
        self.received = 0      # bytes taken out of the socket

    @classmethod
    def open(cls, addr, timeout=5.0):
        s = socket.create_connection(addr, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)
        self.sent += len(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read deadline passed (have %d bytes: %r)" % (len(self.buf), self.buf[:200]))
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        self.received += len(data)
        if not data:
            raise EOFError("connection closed (have %d bytes: %r)" % (len(self.buf), self.buf[:200]))
        self.buf += data

    def read_until(self, marker, timeout=None, limit=1 << 20):
        deadline = time.monotonic() + (timeout or self.timeout)
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (marker, limit))
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline)
        except (EOFError, ConnectionResetError):
            pass
        out, self.buf = self.buf, b""
        return out

    def read_some(self, timeout=None):
        """Whatever arrives next (at least one byte), or raises EOFError."""
        if not self.buf:
            self._fill(time.monotonic() + (timeout or self.timeout))
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout):
        """Waits for EOF or reset from the peer, discarding data. Returns the
        seconds waited; raises socket.timeout if still open after timeout."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("connection still open after %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return time.monotonic() - t0
            except socket.timeout:
                raise socket.timeout("connection still open after %.1fs" % timeout)
            if not data:
                return time.monotonic() - t0
            self.buf += data

    def read_response(self, method="GET", timeout=None):
        """Reads one response. Bodies: none for HEAD, 1xx/204/304 and 2xx to
        CONNECT; chunked; Content-Length; else until EOF."""
        timeout = timeout or self.timeout
        raw = self.read_until(b"\r\n\r\n", timeout, limit=256 * 1024)
        lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError("bad status line %r" % lines[0])
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for l in lines[1:]:
            k, sep, v = l.partition(":")
            if not sep:
                raise ProtocolError("bad header line %r" % l)
            headers.append((k.strip(), v.strip()))
        r = Response(version, status, reason, headers, b"", raw)
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304) or \
                (method == "CONNECT" and 200 <= status < 300):
            return r
        if "chunked" in te:
            body = b""
            while True:
                line = self.read_until(b"\r\n", timeout)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n", timeout) != b"\r\n":
                        pass
                    break
                body += self.read_exact(size, timeout)
                self.read_exact(2, timeout)
            r.body = body
        elif cl is not None:
            r.body = self.read_exact(int(cl), timeout)
        else:
            r.body = self.read_to_eof(timeout)
        return r

    def request(self, method, target, host=None, headers=(), body=None, timeout=None,
                version="HTTP/1.1"):
        """Sends one request and reads its response."""
        self.send(build_request(method, target, host, headers, body, version))
        return self.read_response(method, timeout)


def build_request(method, target, host=None, headers=(), body=None, version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)]
    names = {k.lower() for k, _ in headers}
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data + (body or b"")


def connect_tunnel(proxy_port, host, port, headers=(), timeout=5.0, proxy_host="127.0.0.1"):
    """Opens a connection to the proxy and sends CONNECT host:port. Returns
    (HttpConn, Response); on 200 the HttpConn is a raw tunnel."""
    c = HttpConn.open((proxy_host, proxy_port), timeout)
    authority = "%s:%d" % (host, port)
    try:
        c.send(build_request("CONNECT", authority, authority, headers))
        r = c.read_response("CONNECT", timeout)
    except BaseException:
        c.close()
        raise
    return c, r


def forward_once(proxy_port, url, method="GET", headers=(), body=None, timeout=5.0):
    """One absolute-form request on a fresh connection; returns the Response."""
    host = url.split("://", 1)[1].split("/", 1)[0]
    with HttpConn.open(("127.0.0.1", proxy_port), timeout) as c:
        return c.request(method, url, host, headers, body, timeout)
