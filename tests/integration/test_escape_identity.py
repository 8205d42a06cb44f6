"""Escape attempts against per-binary identity (issue 12 item 6), from
inside `cordon run`, with a policy that allows only curl to reach
allowed.test:

- a copy of curl in the workdir (the same bytes under another path);
- curl's bytes in a memfd, executed through /proc/self/fd (memfd_create +
  execve: no path at all);
- python started with argv[0] = /usr/bin/curl (`exec -a`);
- a hard link of /usr/bin/curl into the workdir or /tmp (refused by the
  kernel: they are other mounts);
- an allowed binary of the workdir replaced after its first use (TOFU);
- writing another process's memory through /proc/PID/mem (read-only /proc).

Each is denied (403) with the binary the proxy really saw in the audit
event; plain curl is allowed in the same sandbox."""
import json
import os

import pytest

from sandbox_fixtures import BASE_POLICY, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"
CURL = ["-sS", "-m", "10", "-o", "/dev/null", "-w", "status=%{http_code}\\n",
        "http://allowed.test/"]


def _curl_only(sb, extra_binary=None):
    text = BASE_POLICY.format(ro=sb.ro, rw=sb.work + ", /tmp").replace(
        '      - path: "/usr/bin/python3*"\n',
        "      - path: %s\n" % extra_binary if extra_binary else "")
    return sb.write_policy(text, name="curl-only.yaml")


MEMFD = r"""
import os, sys
fd = os.memfd_create("curl", 0)
with open("/usr/bin/curl", "rb") as f:
    os.write(fd, f.read())
os.execve("/proc/self/fd/%d" % fd, ["curl"] + sys.argv[1:], dict(os.environ))
"""

PYGET = r"""
import urllib.request
try:
    urllib.request.urlopen("http://allowed.test/", timeout=10)
    print("status=200")
except urllib.error.HTTPError as e:
    print("status=%d" % e.code)
"""


def _deny_binaries(r):
    return [e.get("binary") for e in r.events("decision", decision="deny", host="allowed.test")]


@pytest.mark.timeout(90)
def test_copies_memfd_and_argv0_do_not_get_curls_identity(sandbox):
    pol = _curl_only(sandbox)
    w = sandbox.work
    with open(os.path.join(w, "memfd.py"), "w") as f:
        f.write(MEMFD)
    with open(os.path.join(w, "get.py"), "w") as f:
        f.write(PYGET)
    q = " ".join("'%s'" % a for a in CURL)
    script = (
        "cd %s; echo plain $(curl %s);"
        "cp /usr/bin/curl ./curl; echo copy $(./curl %s);"
        "echo memfd $(%s memfd.py %s);"
        "echo argv0 $(bash -c 'exec -a /usr/bin/curl %s get.py');"
        "ln /usr/bin/curl ./curl-link 2>/dev/null; echo hardlink_work=$?;"
        "ln /usr/bin/curl /tmp/curl-link 2>/dev/null; echo hardlink_tmp=$?"
        % (w, q, q, PY, q, PY))
    r = sandbox.run(["bash", "-c", script], policy=pol)
    assert r.code == 0, r
    res = dict(l.split(" ", 1) for l in r.out.splitlines() if " " in l)
    assert res["plain"] == "status=200", r          # the policy works for the real curl
    for k in ("copy", "memfd", "argv0"):
        assert res[k] == "status=403", (k, r)
    assert "hardlink_work=1" in r.out and "hardlink_tmp=1" in r.out, r.out   # EXDEV
    denied = _deny_binaries(r)
    assert len(denied) == 3, r.audit()
    assert os.path.join(w, "curl") in denied, denied
    assert any(b and b.startswith("/memfd:curl") for b in denied), denied
    assert any(b and b.startswith("/usr/bin/python3") for b in denied), denied
    assert "/usr/bin/curl" not in denied


@pytest.mark.timeout(90)
def test_allowed_workdir_binary_replaced_after_first_use_is_denied(sandbox):
    tool = os.path.join(sandbox.work, "tool")
    pol = _curl_only(sandbox, extra_binary=tool)
    q = " ".join("'%s'" % a for a in CURL)
    script = ("cp /usr/bin/curl %s; echo first $(%s %s);"
              # the same path, other bytes: python's interpreter with a curl-like name
              "cp %s %s.new && mv %s.new %s; echo second $(%s %s/get.py)"
              % (tool, tool, q, PY, tool, tool, tool, tool, sandbox.work))
    with open(os.path.join(sandbox.work, "get.py"), "w") as f:
        f.write(PYGET)
    r = sandbox.run(["bash", "-c", script], policy=pol)
    assert r.code == 0, r
    assert "first status=200" in r.out, r
    assert "second status=403" in r.out, r
    ev = r.events("decision", decision="deny", host="allowed.test")
    assert ev and ev[0]["reason_code"] == "binary_changed", ev


MEMWRITE = r"""
import errno, os, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r); os.write(w, b"x"); time.sleep(30); os._exit(0)
os.close(w); os.read(r, 1)
line = [l for l in open("/proc/%d/maps" % pid) if "r-xp" in l][0]
addr = int(line.split("-")[0], 16)
try:
    with open("/proc/%d/mem" % pid, "r+b", buffering=0) as f:
        f.seek(addr); f.write(b"\xcc")
    print("mem_write ok")
except OSError as e:
    print("mem_write " + errno.errorcode[e.errno])
os.kill(pid, 9); os.waitpid(pid, 0)
"""


@pytest.mark.timeout(60)
def test_writing_another_process_memory_through_proc_refused(sandbox):
    path = os.path.join(sandbox.work, "memw.py")
    with open(path, "w") as f:
        f.write(MEMWRITE)
    r = sandbox.run([PY, path])
    assert r.code == 0, r
    # /proc is granted read-only (Landlock): no write access to /proc/PID/mem.
    # Reading it is possible (same user, see SECURITY.md).
    assert "mem_write EACCES" in r.out, r


SHARED = r"""
import json, os, socket, subprocess, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
# an allowed binary inherits the connected socket and just waits (curl -K -
# reads its config from stdin, which stays open)
cur = subprocess.Popen(["/usr/bin/curl", "-K", "-"], stdin=subprocess.PIPE,
                       pass_fds=(s.fileno(),))
s.sendall(b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print("status=" + data.split(b" ", 2)[1].decode())
body = data.split(b"\r\n\r\n", 1)[1]
print("reason=" + json.loads(body).get("reason_code", "") if body.startswith(b"{") else "reason=")
cur.stdin.close(); cur.wait()
"""


@pytest.mark.timeout(60)
def test_a_socket_shared_with_an_allowed_binary_does_not_borrow_its_identity(sandbox):
    """python (not allowed) connects to the proxy and lets curl (allowed)
    inherit the socket before sending its request: two processes hold the
    connection, and it is not curl's."""
    pol = _curl_only(sandbox)
    path = os.path.join(sandbox.work, "shared.py")
    with open(path, "w") as f:
        f.write(SHARED)
    r = sandbox.run([PY, path], policy=pol)
    assert r.code == 0, r
    assert "status=403" in r.out, r
    ev = r.events("decision", decision="deny", host="allowed.test")
    assert ev, r.audit()
    assert ev[0]["reason_code"] == "identity_ambiguous", ev[0]
    assert "/usr/bin/curl" in ev[0]["detail"] and "python3" in ev[0]["detail"], ev[0]
