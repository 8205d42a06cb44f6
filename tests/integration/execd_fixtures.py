"""Fixtures and clients for the `cordon execd` integration tests.

    ed = execd(*extra_args, token=None, host="127.0.0.1")   # factory → running Execd
    ed.request("GET", "/ping") → (status, headers, body bytes)
    sid = ed.new_session(cwd="/tmp")       # POST /sessions → id
    async with ed.attach(sid, pty=True, since=None) as t:   # WebSocket client
        await t.send_line("echo hi")
        out = await t.read_until(b"hi")

Every execd started by the factory is stopped with SIGTERM at teardown; the
test fails if it did not exit 0 or if its stderr shows a sanitizer report.
"""
import asyncio
import contextlib
import http.client
import json
import os
import re
import select
import signal
import struct
import subprocess
import time

import pytest
import websockets

from lib.cordon import problems_in

CH_STDIN, CH_STDOUT, CH_STDERR, CH_REPLAY = 0, 1, 2, 3
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Execd:
    def __init__(self, binary, workdir, args=(), token=None, name="execd", env=None,
                 host="127.0.0.1"):
        self.binary = binary
        self.host = host
        self.env = env
        self.args = [str(a) for a in args]
        self.token = token
        self.stderr_path = os.path.join(str(workdir), name + "-stderr.log")
        self.token_path = os.path.join(str(workdir), name + "-token")
        self.proc = None
        self.port = None

    def start(self, timeout=5.0):
        argv = [self.binary, "execd", "--listen", "%s:0" % self.host] + self.args
        if self.token is not None:
            with open(self.token_path, "w") as f:
                f.write(self.token + "\n")
            argv += ["--token-file", self.token_path]
        err = open(self.stderr_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL, env=env)
        err.close()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                raise RuntimeError("execd did not announce its port; stderr:\n" + self.stderr)
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                raise RuntimeError("execd exited (%s); stderr:\n%s"
                                   % (self.proc.wait(), self.stderr))
            line += ch
        # "listening 127.0.0.1:PORT"
        self.port = int(line.decode().rsplit(":", 1)[1])
        st, _, _ = self.request("GET", "/ping")
        assert st == 200, "execd /ping answered %d" % st
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed"
        return self.proc.returncode

    @property
    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- HTTP ----------------------------------------------------------------
    def headers(self, extra=None):
        h = {}
        if self.token is not None:
            h["X-EXECD-ACCESS-TOKEN"] = self.token
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None, timeout=10.0, auth=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            h = self.headers(headers) if auth else dict(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, expect=200, **kw):
        st, _, data = self.request(method, path, body, **kw)
        assert st == expect, "%s %s: %d %r" % (method, path, st, data[:500])
        return json.loads(data) if data else None

    def new_session(self, **body):
        return self.json("POST", "/sessions", body, expect=201)["session_id"]

    def status(self, sid):
        return self.json("GET", "/sessions/" + sid)

    def wait_exited(self, sid, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status(sid)
            if s["state"] == "EXITED":
                return s
            time.sleep(0.02)
        raise AssertionError("session %s did not exit: %r" % (sid, self.status(sid)))

    def command(self, body, timeout=30.0):
        """POST /command; returns (events, seconds until the stream ended)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.request("POST", "/command", body=json.dumps(body).encode(),
                         headers=self.headers({"Content-Type": "application/json"}))
            r = conn.getresponse()
            if r.status != 200:
                return r.status, json.loads(r.read()), time.monotonic() - t0
            assert r.getheader("Content-Type") == "text/event-stream"
            raw = r.read()  # http.client checks the chunked framing, incl. the last chunk
            took = time.monotonic() - t0
        finally:
            conn.close()
        events = []
        for block in raw.decode().split("\n\n"):
            if block.strip():
                assert block.startswith("data: "), block
                events.append(json.loads(block[6:]))
        return 200, events, took

    # -- WebSocket -------------------------------------------------------------
    def ws_url(self, sid, route="pty", **query):
        path = "/pty/%s/ws" % sid if route == "pty" else "/ws/session/%s" % sid
        q = "&".join("%s=%s" % (k, v) for k, v in query.items() if v is not None)
        return "ws://%s:%d%s%s" % (self.host, self.port, path, "?" + q if q else "")

    def attach(self, sid, route="pty", **query):
        return Term.connect(self, self.ws_url(sid, route, **query))


class Frame:
    def __init__(self, raw):
        self.raw = raw
        self.json = None
        self.channel = None
        self.offset = None
        self.data = b""
        if isinstance(raw, str):
            self.json = json.loads(raw)
        else:
            self.channel = raw[0]
            if self.channel == CH_REPLAY:
                self.offset = struct.unpack(">Q", raw[1:9])[0]
                self.data = raw[9:]
            else:
                self.data = raw[1:]

    @property
    def type(self):
        return self.json.get("type") if self.json else None

    def __repr__(self):
        return "Frame(%r)" % (self.json if self.json else (self.channel, self.data[:60]))


class Term:
    """A WebSocket client of a session that tracks the byte offset of the
    next output byte (replay offset + every payload since)."""

    def __init__(self, ws):
        self.ws = ws
        self.frames = []
        self.out = b""        # stdout (and replay) bytes seen
        self.err = b""        # stderr bytes seen
        self.next_offset = None
        self.connected = None
        self.exit = None
        self.errors = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, ed, url, **kw):
        kw.setdefault("max_size", 64 << 20)
        kw.setdefault("ping_interval", None)
        kw.setdefault("close_timeout", 2)
        async with websockets.connect(url, extra_headers=ed.headers(), **kw) as ws:
            t = cls(ws)
            await t.wait_connected()
            yield t

    def _take(self, f):
        self.frames.append(f)
        if f.json:
            if f.type == "connected":
                self.connected = f.json
                if self.next_offset is None:
                    self.next_offset = f.json["output_offset"]
            elif f.type == "exit":
                self.exit = f.json
            elif f.type == "error":
                self.errors.append(f.json)
                if f.json.get("code") == "OUTPUT_LOST":
                    self.next_offset = f.json["resume_offset"]
            return
        if f.channel == CH_REPLAY:
            self.next_offset = f.offset + len(f.data)
            self.out += f.data
        elif f.channel == CH_STDERR:
            self.err += f.data
            self.next_offset = (self.next_offset or 0) + len(f.data)
        else:
            self.out += f.data
            self.next_offset = (self.next_offset or 0) + len(f.data)

    async def recv(self, timeout=10.0):
        f = Frame(await asyncio.wait_for(self.ws.recv(), timeout))
        self._take(f)
        return f

    async def wait_connected(self, timeout=10.0):
        while self.connected is None:
            await self.recv(timeout)

    def vanish(self):
        """Drops the TCP connection with no close frame (a client that dies)."""
        self.ws.close_timeout = 0.1  # nothing will answer our own close
        self.ws.transport.abort()

    async def send(self, data):
        await self.ws.send(bytes([CH_STDIN]) + data)

    async def send_line(self, line):
        await self.send(line.encode() + b"\n")

    async def control(self, **obj):
        await self.ws.send(json.dumps(obj))

    async def read_until(self, needle, timeout=15.0, stream="out"):
        """Reads frames until needle (bytes) shows up in stdout (or stderr)."""
        deadline = time.monotonic() + timeout
        while needle not in getattr(self, stream):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError()
                await self.recv(left)
            except asyncio.TimeoutError:
                raise AssertionError("timed out waiting for %r; got %r"
                                     % (needle, getattr(self, stream)[-400:])) from None
        return getattr(self, stream)

    async def read_until_frame(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for a frame")
            f = await self.recv(left)
            if pred(f):
                return f

    async def run(self, cmd, timeout=15.0):
        """Runs cmd in the shell and returns its output, using a marker whose
        echo (PTY mode) differs from its output."""
        n = len(self.frames)
        mark, echoed = "__END%d__" % n, '"__E""ND%d__"' % n
        start = len(self.out)
        await self.send_line("%s; echo %s" % (cmd, echoed))
        nl = "\r\n" if self.connected["mode"] == "pty" else "\n"
        await self.read_until((mark + nl).encode(), timeout)
        text = ANSI.sub("", self.out[start:].decode(errors="replace")).replace("\r", "")
        # PTY mode echoes the input (maybe twice: the tty, then readline's
        # redraw after the prompt): keep what follows the last echo
        if echoed in text:
            text = text[text.rindex(echoed):].split("\n", 1)[1]
        return text.split(mark)[0]


@pytest.fixture
def execd(cordon_bin, tmp_path):
    started = []

    def make(*args, token=None, env=None, host="127.0.0.1"):
        e = Execd(cordon_bin, tmp_path, args=args, token=token, env=env,
                  name="execd%d" % len(started), host=host)
        started.append(e)
        return e.start()

    yield make
    errors = []
    for e in started:
        was_running = e.alive()
        rc = e.stop()
        bad = problems_in(e.stderr)
        if bad:
            errors.append("%s shows:\n  %s" % (e.stderr_path, "\n  ".join(bad[:20])))
        if was_running and rc != 0:
            errors.append("execd did not exit 0 on SIGTERM (got %r); stderr tail:\n%s"
                          % (rc, e.stderr[-3000:]))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


def proc_gone(pid):
    """True when pid has exited (absent, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def children(ppid, name=None):
    """Pids whose parent is ppid (and whose comm is name)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        if int(st.rsplit(")", 1)[1].split()[1]) == ppid and (name is None or comm == name):
            out.append(int(d))
    return out


def wait_child(ppid, name, timeout=10.0):
    """Waits until ppid has a child called name (e.g. a job really started)."""
    deadline = time.monotonic() + timeout
    while not children(ppid, name):
        assert time.monotonic() < deadline, "no %s child of %d" % (name, ppid)
        time.sleep(0.02)


def wait_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not proc_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def run(coro):
    """Runs an async test body on a fresh event loop."""
    return asyncio.run(coro)
