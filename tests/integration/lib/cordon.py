"""Running `cordon proxy` under test.

    p = CordonProxy(binary, policy_yaml, workdir, resolver="127.0.0.1:5353",
                    args=["--head-timeout", "1000"]).start()
    p.port; p.audit(); p.stderr; p.reload(new_yaml); p.stop()
    p.problems()      # sanitizer reports / internal invariant alerts in stderr

start() writes the policy to workdir/policy.yaml, starts the proxy on port 0,
waits (bounded) until it logs the port it listens on, and raises NotBuilt if the binary says the
subcommand is not built yet.
"""
import json
import os
import re
import signal
import subprocess
import time

from . import util

# Lines that fail a test run wherever they show up (STYLE.md "Tests").
BAD_PATTERNS = [
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "internal invariant",
]

NOT_BUILT = "not built into this binary yet"


class NotBuilt(RuntimeError):
    pass


def problems_in(text):
    """Lines of text that match a BAD_PATTERN."""
    return [l for l in text.splitlines() if any(p in l for p in BAD_PATTERNS)]


def default_binary():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", "..", ".."))
    return os.environ.get("CORDON") or os.path.join(repo, "build", "cordon")


class CordonProxy:
    def __init__(self, binary, policy, workdir, resolver=None, args=(), listen_host="127.0.0.1",
                 log=True, env=None, name="proxy"):
        self.binary = binary
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.policy_path = os.path.join(self.workdir, name + "-policy.yaml")
        self.audit_path = os.path.join(self.workdir, name + "-audit.jsonl") if log else None
        self.stderr_path = os.path.join(self.workdir, name + "-stderr.log")
        self.stdout_path = os.path.join(self.workdir, name + "-stdout.log")
        self.resolver = resolver
        self.args = [str(a) for a in args]
        self.listen_host = listen_host
        self.env = env
        self.port = None
        self.proc = None
        self.returncode = None
        self.write_policy(policy)

    # -- process -------------------------------------------------------------
    def argv(self, port):
        a = [self.binary, "proxy", "--policy", self.policy_path,
             "--listen", "%s:%d" % (self.listen_host, port)]
        if self.audit_path:
            a += ["--log", self.audit_path]
        if self.resolver:
            a += ["--resolver", self.resolver]
        return a + self.args

    def start(self, timeout=10.0):
        """Starts the proxy on port 0 (the kernel picks a free port; no guess
        that can race another process) and waits, bounded, for its
        "proxy: listening on HOST port N" line on stderr."""
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            skip = err.tell()
            self.proc = subprocess.Popen(self.argv(0), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True,
                                         env=util.clean_env(self.env))
        pat = re.compile(rb"proxy: listening on \S+ port (\d+)")
        deadline = time.monotonic() + timeout
        while True:
            with open(self.stderr_path, "rb") as f:
                f.seek(skip)
                m = pat.search(f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                text = self.stderr
                if NOT_BUILT in text:
                    raise NotBuilt(text.strip())
                raise RuntimeError("cordon proxy exited %s at start-up:\n%s"
                                   % (self.proc.returncode, text))
            if time.monotonic() >= deadline:
                util.kill_tree(self.proc)
                raise RuntimeError("cordon proxy did not say it listens within %.1fs:\n%s"
                                   % (timeout, self.stderr))
            time.sleep(0.02)

    @property
    def addr(self):
        return (self.listen_host, self.port)

    @property
    def url(self):
        return "http://%s:%d" % (self.listen_host, self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends sig and waits; SIGKILLs after timeout. Returns the exit code
        (None if it had to be killed)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                util.kill_tree(self.proc, 1.0)
                self.returncode = None
                return None
        else:
            self.returncode = self.proc.returncode
        return self.returncode

    # -- outputs -------------------------------------------------------------
    @property
    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def problems(self):
        return problems_in(self.stderr)

    def audit(self):
        """Every complete line of the audit log, parsed. A line that is not a
        JSON object raises AssertionError (the log must stay machine-readable)."""
        if not self.audit_path or not os.path.exists(self.audit_path):
            return []
        with open(self.audit_path, "rb") as f:
            data = f.read()
        out = []
        for line in data.split(b"\n")[:-1]:     # ignore a partial last line
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise AssertionError("audit line is not JSON (%s): %r" % (e, line[:500]))
            if not isinstance(obj, dict):
                raise AssertionError("audit line is not an object: %r" % line[:500])
            out.append(obj)
        return out

    def events(self, event=None, **match):
        """Audit events filtered by event type and exact field values."""
        return [e for e in self.audit()
                if (event is None or e.get("event") == event)
                and all(e.get(k) == v for k, v in match.items())]

    def wait_events(self, n=1, timeout=3.0, event=None, **match):
        """Waits until at least n matching events exist; returns them."""
        return util.wait_until(lambda: (lambda ev: ev if len(ev) >= n else None)(
            self.events(event, **match)), timeout,
            what="%d audit event(s) %s %r" % (n, event, match))

    # -- policy --------------------------------------------------------------
    def write_policy(self, text):
        """Replaces the policy file atomically (the proxy sees old or new)."""
        tmp = self.policy_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.policy_path)

    def reload(self, policy=None, settle=2.0):
        """Optionally rewrites the policy, sends SIGHUP, then waits until the
        proxy writes something to stderr or settle seconds pass (callers still
        poll for the behaviour they expect)."""
        if policy is not None:
            self.write_policy(policy)
        before = len(self.stderr)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and len(self.stderr) == before:
            time.sleep(0.05)
        time.sleep(0.05)


def policy_check(binary, policy_text, workdir, timeout=10):
    """Runs `cordon policy check FILE`; returns the CompletedProcess."""
    path = os.path.join(str(workdir), "check-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(policy_text)
    return util.run([binary, "policy", "check", path], timeout=timeout, check=False)
