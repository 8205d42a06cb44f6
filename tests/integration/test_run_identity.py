"""Binary identity against code running as the same user (issue 12 items 5
and 6), tried from inside `cordon run` as an attacker would:

- cross-process fd and memory access (pidfd_getfd, process_vm_readv/writev,
  process_madvise, ptrace, kcmp) is refused by seccomp;
- an allowed binary started with a code-injection variable (LD_PRELOAD,
  NODE_OPTIONS --require, ...) does not get its identity (identity_tainted)
  unless its binaries entry says allow_env_injection: true;
- ancestor chains stop below the sandbox's init (the cordon binary), and,
  for `cordon proxy`, below the proxy's own ancestors.
"""
import json
import os
import subprocess

import pytest

from lib.clients import curl
from sandbox_fixtures import BASE_POLICY, sandbox  # noqa: F401  (fixture)

PY = "/usr/bin/python3"

# The victim (a child holding a socket) and the attempts on it.
CROSS_PROCESS = r"""
import ctypes, errno, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
a, b = socket.socketpair()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r); os.write(w, b"x"); time.sleep(60); os._exit(0)
os.close(w); os.read(r, 1)
def sc(name, *args):
    rc = libc.syscall(*args)
    print(name + ": " + ("ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")))
    return rc
pidfd = sc("pidfd_open", 434, pid, 0)
sc("pidfd_getfd", 438, pidfd, a.fileno(), 0)
buf = ctypes.create_string_buffer(16)
iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
sc("process_vm_readv", 310, pid, iov, 1, iov, 1, 0)
sc("process_vm_writev", 311, pid, iov, 1, iov, 1, 0)
sc("process_madvise", 440, pidfd, iov, 1, 8, 0)      # MADV_FREE
sc("ptrace_attach", 101, 16, pid, 0, 0)
sc("kcmp", 312, os.getpid(), pid, 0, 0, 0)            # KCMP_FILE
os.kill(pid, 9); os.waitpid(pid, 0)
"""


@pytest.mark.timeout(60)
def test_cross_process_fd_and_memory_access_refused(sandbox):
    path = os.path.join(sandbox.work, "xproc.py")
    with open(path, "w") as f:
        f.write(CROSS_PROCESS)
    r = sandbox.run([PY, path])
    assert r.code == 0, r
    res = dict(l.split(": ", 1) for l in r.out.splitlines() if ": " in l)
    assert res["pidfd_open"] == "ok", res                 # the attempt below is real
    for name in ("pidfd_getfd", "process_vm_readv", "process_vm_writev", "process_madvise",
                 "ptrace_attach", "kcmp"):
        assert res[name] == "EPERM", (name, res)


def _status_and_body(out):
    body, _, status = out.rpartition("\nstatus=")
    return status.strip(), body


CURL_ALLOWED = ["curl", "-sS", "-m", "10", "-w", "\nstatus=%{http_code}", "http://allowed.test/"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("var,value", [
    ("LD_PRELOAD", "libc.so.6"),
    ("LD_AUDIT", "/nonexistent/audit.so"),
])
def test_tainted_curl_is_denied(sandbox, var, value):
    r = sandbox.run(["env", "%s=%s" % (var, value)] + CURL_ALLOWED)
    status, body = _status_and_body(r.out)
    assert status == "403", r
    assert json.loads(body)["reason_code"] == "identity_tainted", body
    ev = r.events("decision", decision="deny", host="allowed.test")
    assert ev and ev[0]["reason_code"] == "identity_tainted", r.audit()
    assert var in json.dumps(ev[0]), ev[0]
    # The same command without the variable is allowed (the denial is the taint).
    r = sandbox.run(CURL_ALLOWED)
    assert _status_and_body(r.out)[0] == "200", r


@pytest.mark.timeout(60)
def test_tainted_binary_allowed_when_entry_opts_in(sandbox):
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work).replace(
        "      - path: /usr/bin/curl\n",
        "      - path: /usr/bin/curl\n        allow_env_injection: true\n"), name="optin.yaml")
    r = sandbox.run(["env", "LD_PRELOAD=libc.so.6"] + CURL_ALLOWED, policy=pol)
    assert _status_and_body(r.out)[0] == "200", r


NODE_GET = r"""
const http = require('http');
const u = new URL(process.env.HTTP_PROXY);
http.get({host: u.hostname, port: u.port, path: 'http://allowed.test/',
          headers: {Host: 'allowed.test'}}, (res) => {
  let b = ''; res.on('data', (d) => b += d);
  res.on('end', () => console.log('status=' + res.statusCode + ' ' + b.slice(0, 200)));
}).on('error', (e) => console.log('error ' + e.message));
"""


@pytest.mark.timeout(60)
def test_node_options_require_taints_but_other_options_do_not(sandbox):
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work).replace(
        "      - path: /usr/bin/curl\n", "      - path: /usr/bin/curl\n"
        "      - path: /usr/bin/node\n      - path: /usr/bin/nodejs\n"), name="node.yaml")
    script = os.path.join(sandbox.work, "get.js")
    hook = os.path.join(sandbox.work, "hook.js")
    with open(script, "w") as f:
        f.write(NODE_GET)
    with open(hook, "w") as f:
        f.write("// code an attacker wants to run as node\n")
    r = sandbox.run(["env", "NODE_OPTIONS=--require %s" % hook, "node", script], policy=pol)
    assert "status=403" in r.out and "identity_tainted" in r.out, r
    r = sandbox.run(["env", "NODE_OPTIONS=--max-old-space-size=128", "node", script], policy=pol)
    assert "status=200" in r.out, r


@pytest.mark.timeout(60)
def test_ancestor_chain_stops_below_the_sandbox_init(sandbox, cordon_bin):
    """A binaries glob covering cordon's own directory allows nothing: the
    sandbox's init (the cordon binary) is not in any chain."""
    pol = sandbox.write_policy(BASE_POLICY.format(ro=sandbox.ro, rw=sandbox.work).replace(
        "      - path: /usr/bin/curl\n      - path: \"/usr/bin/python3*\"\n",
        "      - path: \"%s/*\"\n" % os.path.dirname(os.path.realpath(cordon_bin))),
        name="glob.yaml")
    r = sandbox.run(["sh", "-c", "curl -sS -m 10 -w '\\nstatus=%{http_code}' "
                     "http://allowed.test/; true"], policy=pol)
    status, body = _status_and_body(r.out)
    assert status == "403", r
    assert json.loads(body)["reason_code"] == "binary_not_allowed", body
    ev = r.events("decision", decision="deny", host="allowed.test")[0]
    assert os.path.realpath(cordon_bin) not in json.dumps(ev), ev


@pytest.mark.timeout(60)
def test_proxy_ancestors_are_not_in_chains(testnet, cordon_proxy):
    """`cordon proxy` started by this test (python3): a curl this test starts
    has python3 as an ancestor, but that python3 is the proxy's own ancestor,
    so a policy naming python3 does not let curl through."""
    p = cordon_proxy("""
version: 1
network_policies:
  upstream:
    endpoints:
      - host: allowed.test
        port: 80
        allowed_ips: ["%s"]
    binaries:
      - path: "/usr/bin/python3*"
""" % testnet.cidr)
    r = curl(p.port, "http://allowed.test/")
    assert r.code == 403, r
    ev = p.wait_events(1, event="decision", host="allowed.test")[0]
    assert ev["reason_code"] == "binary_not_allowed", ev
