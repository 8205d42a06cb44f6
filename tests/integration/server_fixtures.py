"""Fixtures and clients for the `cordon server` integration tests.

    srv = cordon_server(*extra_args, key=KEY)   # fixture factory → running Server
    st, hdrs, body = srv.request("GET", "/v1/sandboxes")
    sbx = srv.create(entrypoint=["sleep", "1000"], timeout=600)   # → Sandbox JSON
    srv.pids(sbx["id"])                         # every process of the sandbox (its cgroup)
    srv.kill9(); srv.start()                    # crash and restart on the same --data

Every server is stopped at teardown after deleting what is left of its
sandboxes through the API (so their processes are gone); the test fails if
the server's stderr shows a sanitizer report or an internal-invariant alert.
"""
import http.client
import json
import os
import select
import signal
import subprocess
import time

import pytest

from lib.cordon import problems_in
from lib import util
from sandbox_fixtures import SANDBOX_POOL

KEY = "test-key-0123456789abcdef"

POLICY = """\
version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, {bindir}]
  read_write: [/dev/null, /dev/ptmx, /dev/pts, /dev/tty, /tmp]
landlock:
  compatibility: best_effort
network_policies: {{}}
"""

# An HTTP echo server for the sandbox's entrypoint: answers every request with
# the method, target, headers and body it received as JSON; /big?n=N streams N
# bytes; /hang never answers.
ECHO_SRC = r"""
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path.startswith("/hang"):
            time.sleep(3600)
        if self.path.startswith("/big"):
            n = int(self.path.split("n=")[1])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.send_header("X-Backend", "echo")
            self.end_headers()
            chunk = bytes(range(256)) * 256
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        out = json.dumps({"method": self.command, "target": self.path,
                          "headers": [[k, v] for k, v in self.headers.items()],
                          "body": body.decode("latin-1")}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close, X-Hop")
        self.send_header("X-Hop", "must-not-pass")
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("X-Backend", "echo")
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


def cgroup_v2_root(env=None):
    """The hierarchy sandbox/cgroup.c picks (cgroup_detect): CORDON_CGROUP_V2,
    else a cgroup2 mount with the pids controller, else None (v1)."""
    forced = (env or {}).get("CORDON_CGROUP_V2")
    if forced:
        return forced
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "pids" in f.read().split():
                    return root
        except OSError:
            pass
    return None


def cgroup_dir(srv, sid, ctrl="freezer"):
    """A sandbox's group: <v2 root>/cordon/sbx-ID, or the v1 controller's
    /sys/fs/cgroup/<ctrl>/cordon/sbx-ID."""
    root = cgroup_v2_root(srv.env)
    if root:
        return os.path.join(root, "cordon", "sbx-" + sid)
    return os.path.join("/sys/fs/cgroup", ctrl, "cordon", "sbx-" + sid)


def cgroup_procs_path(srv, sid):
    """cgroup.procs of a sandbox's group (v2, else the v1 freezer)."""
    return os.path.join(cgroup_dir(srv, sid), "cgroup.procs")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


class Server:
    def __init__(self, binary, workdir, args=(), key=KEY, name="server", env=None):
        self.binary = binary
        self.env = dict(env or {})   # added to the server's environment
        self.workdir = str(workdir)
        self.key = key
        self.args = [str(a) for a in args]
        self.data = os.path.join(self.workdir, name + "-data")
        self.policy_path = os.path.join(self.workdir, name + "-policy.yaml")
        self.key_path = os.path.join(self.workdir, name + "-key")
        self.stderr_path = os.path.join(self.workdir, name + "-stderr.log")
        self.proc = None
        self.port = None
        self.pid_seen = None
        with open(self.policy_path, "w") as f:
            f.write(POLICY.format(bindir=os.path.dirname(os.path.abspath(binary))))
        if key is not None:
            with open(self.key_path, "w") as f:
                f.write(key + "\n")

    def argv(self):
        a = [self.binary, "server", "--listen", "127.0.0.1:0", "--data", self.data,
             "--policy", self.policy_path, "--subnet-pool", SANDBOX_POOL,
             "--min-timeout", "1", "--log-level", "info"]
        a += ["--api-key-file", self.key_path] if self.key is not None else ["--insecure"]
        return a + self.args

    def start(self, timeout=10.0):
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env=dict(os.environ, **self.env))
        err.close()
        self.pid_seen = self.proc.pid
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise RuntimeError("server did not announce its port; stderr:\n" + self.stderr)
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                raise RuntimeError("server exited (%s); stderr:\n%s"
                                   % (self.proc.wait(), self.stderr))
            line += ch
        self.port = int(line.decode().rsplit(":", 1)[1])
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()

    def stop(self, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed"
        self.proc.stdout.close()
        return self.proc.returncode

    @property
    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- HTTP --------------------------------------------------------------------
    def headers(self, extra=None):
        h = {"OPEN-SANDBOX-API-KEY": self.key} if self.key else {}
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None, timeout=30.0, auth=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            h = self.headers(headers) if auth else dict(headers or {})
            if body is not None:
                h.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, expect=200, **kw):
        st, _, data = self.request(method, path, body, **kw)
        assert st == expect, "%s %s: %d %r" % (method, path, st, data[:800])
        return json.loads(data) if data else None

    def create(self, entrypoint=("sleep", "1000"), expect=202, **fields):
        body = {"image": {"uri": "cordon-host"}, "entrypoint": list(entrypoint),
                "resourceLimits": {"cpu": "1", "memory": "512Mi"}}
        body.update(fields)
        return self.json("POST", "/v1/sandboxes", body, expect=expect)

    def sandboxes(self, query=""):
        return self.json("GET", "/v1/sandboxes" + query)

    def pids(self, sid):
        try:
            with open(cgroup_procs_path(self, sid)) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def cleanup(self):
        """Deletes every sandbox left (the server must be running)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            items = self.json("GET", "/v1/sandboxes?pageSize=200")["items"]
        except Exception:  # noqa: BLE001 - best effort at teardown
            return
        for it in items:
            self.request("DELETE", "/v1/sandboxes/" + it["id"])


@pytest.fixture
def cordon_server(cordon_bin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (cordon run)")
    servers = []

    def factory(*args, key=KEY, name=None, start=True, env=None):
        s = Server(cordon_bin, tmp_path, args, key=key, name=name or "server%d" % len(servers),
                   env=env)
        servers.append(s)
        return s.start() if start else s

    yield factory
    problems = []
    for s in servers:
        s.cleanup()
        rc = s.stop()
        if rc not in (0, None, -9):
            problems.append("server exited %r" % (rc,))
        problems += problems_in(s.stderr)
    assert not problems, "server problems:\n" + "\n".join(problems)


def wait_backend(srv, sid, port, path="/", timeout=15.0):
    """Waits until the sandbox's port answers through the proxy (not 502)."""
    def ok():
        st, _, _ = srv.request("GET", "/sandboxes/%s/proxy/%d%s" % (sid, port, path))
        return st != 502
    util.wait_until(ok, timeout, what="port %d in sandbox %s" % (port, sid))
