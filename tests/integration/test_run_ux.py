"""cordon run as a person meets it: the audit log only in a file the sandbox
cannot reach, one human line per denial and a summary on the terminal,
policy reload without a restart, and the CLI's own help and errors."""
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from sandbox_fixtures import sandbox, BASE_POLICY  # noqa: F401  (fixture)
from lib import util

PY = "/usr/bin/python3"


def curl(url, extra=""):
    return "curl -sS -m 10 -o /dev/null -w '%%{http_code}' %s %s" % (extra, url)


def wait_for(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


# -- the audit log and the terminal ------------------------------------------------

@pytest.mark.timeout(40)
def test_denial_line_and_summary_no_json_on_stderr(sandbox):
    r = sandbox.run(["sh", "-c", "echo s=$(%s)" % curl("http://denied.test/")],
                    args=["--name", sandbox.name()])
    assert r.code == 0 and "s=403" in r.out, r
    # one human line: what, for which binary, the fix
    lines = [l for l in r.err.splitlines() if l.startswith("cordon: DENIED")]
    assert len(lines) == 1, r.err
    assert "denied.test:80" in lines[0] and "/usr/bin/curl" in lines[0]
    assert "no_endpoint" in lines[0] and "fix: add an endpoint for denied.test:80" in lines[0]
    assert "cordon policy reload --sandbox t" in lines[0]
    # the summary
    assert re.search(r"cordon: sandbox t\d+-\d+ exited 0 after [\d.]+ s: 0 allowed, 1 denied, "
                     r"0 bypass attempts", r.err), r.err
    assert "cordon: most denied: denied.test:80 (1)" in r.err
    assert "cordon: audit log: %s" % r.audit_path in r.err
    # no audit event on stderr; the log has them, sandbox_exit last
    assert not [l for l in r.err.splitlines() if l.lstrip().startswith("{")], r.err
    ev = r.events()
    assert [e["event"] for e in ev][:2] == ["self_test", "sandbox_start"], ev[:3]
    assert r.audit()[-1]["event"] == "sandbox_exit"
    assert r.events("decision", decision="deny", host="denied.test")


@pytest.mark.timeout(40)
def test_quiet_prints_nothing_of_ours(sandbox):
    r = sandbox.run(["sh", "-c", curl("http://denied.test/")], args=["--quiet"])
    assert r.code == 0, r
    assert "cordon:" not in r.err, r.err
    assert r.events("decision", decision="deny")


@pytest.mark.timeout(40)
def test_denial_lines_are_rate_limited(sandbox):
    # 12 denials at once: 5 lines (the burst), the rest counted in the log
    script = "; ".join([curl("http://denied.test/%d" % i) for i in range(12)])
    r = sandbox.run(["sh", "-c", script])
    assert r.code == 0, r
    shown = [l for l in r.err.splitlines() if l.startswith("cordon: DENIED")]
    assert 5 <= len(shown) < 12, r.err
    assert "12 denied" in r.err
    assert len(r.events("decision", decision="deny")) == 12


@pytest.mark.timeout(40)
def test_bypass_line_and_count(sandbox):
    code = ("import socket\ns=socket.socket()\ns.settimeout(5)\n"
            "try: s.connect(('%s', 80))\nexcept OSError as e: print('refused', e.errno)\n"
            % sandbox.net.ip)
    r = sandbox.run([PY, "-c", code])
    assert r.code == 0 and "refused" in r.out, r
    lines = [l for l in r.err.splitlines() if l.startswith("cordon: BYPASS refused")]
    assert len(lines) == 1 and "/usr/bin/python3" in lines[0] and "%s:80/tcp" % sandbox.net.ip \
        in lines[0], r.err
    assert "1 bypass attempt" in r.err


@pytest.mark.timeout(40)
def test_nothing_after_sandbox_exit(sandbox):
    # repeated direct attempts leave repeat counts pending until teardown;
    # they must be written before sandbox_exit
    code = ("import socket\n"
            "for i in range(4):\n"
            "    s=socket.socket(); s.settimeout(5)\n"
            "    try: s.connect(('%s', 80))\n"
            "    except OSError: pass\n"
            "    s.close()\n" % sandbox.net.ip)
    r = sandbox.run([PY, "-c", code])
    assert r.code == 0, r
    ev = r.audit()
    assert ev[-1]["event"] == "sandbox_exit", [e["event"] for e in ev]
    assert sum(e.get("count", 0) for e in r.events("bypass_detect")) == 4


@pytest.mark.timeout(40)
def test_log_format_text(sandbox):
    r = sandbox.run(["sh", "-c", curl("http://denied.test/")], args=["--log-format", "text"])
    assert r.code == 0, r
    with open(r.audit_path) as f:
        lines = f.read().splitlines()
    assert [l.split(" ")[1] for l in lines if "selftest.cordon.invalid" not in l
            and " uid=0 " not in l][:2] == ["self_test", "sandbox_start"], lines[:4]
    deny = [l for l in lines if " decision decision=deny " in l and "host=denied.test" in l]
    assert deny and "host=denied.test" in deny[0] and "binary=/usr/bin/curl" in deny[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", deny[0])
    assert 'detail="no network_policies endpoint' in deny[0]
    assert lines[-1].split(" ")[1] == "sandbox_exit"


@pytest.mark.timeout(40)
def test_default_log_is_private_and_unreachable(sandbox):
    name = sandbox.name()
    log = sandbox.default_log(name)
    # the command tries to read, append to and replace its own log
    script = ("cat %s >/dev/null 2>&1 && echo read=yes || echo read=no; "
              "echo forged >> %s 2>/dev/null && echo append=yes || echo append=no; "
              "mv %s %s.x 2>/dev/null && echo mv=yes || echo mv=no; %s"
              % (log, log, log, log, curl("http://denied.test/")))
    r = sandbox.run(["sh", "-c", script], args=["--name", name], log=None)
    assert r.code == 0, r
    assert "read=no" in r.out and "append=no" in r.out and "mv=no" in r.out, r.out
    st = os.stat(log)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0, oct(st.st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(log)).st_mode) & 0o002 == 0
    ev = r.events()
    assert ev[1]["event"] == "sandbox_start" and ev[1]["sandbox"] == name
    assert ev[-1]["event"] == "sandbox_exit"
    assert "cordon: audit log: %s" % log in r.err


@pytest.mark.timeout(40)
def test_forged_event_on_stderr_never_reaches_the_log(sandbox):
    forged = json.dumps({"time": "2026-01-01T00:00:00.000Z", "event": "decision",
                         "decision": "allow", "host": "forged.test"})
    p = sandbox.start(["sh", "-c", "echo '%s' >&2" % forged])
    r = sandbox.finish(p)
    sandbox.stderr_paths.remove(p.err_path)   # the command's own stderr has it, by design
    assert r.code == 0, r
    assert not r.events(host="forged.test")
    assert all(e["event"] in ("self_test", "sandbox_start", "sandbox_exit") for e in r.events())


@pytest.mark.timeout(40)
def test_log_refused_where_the_sandbox_can_write(sandbox):
    # under the workdir (read_write), and in a 0777 directory not in the policy
    for path, why in ((os.path.join(sandbox.work, "audit.log"), "the sandbox can write"),
                      (os.path.join(sandbox.secret, "audit.log"), "can write the directory")):
        r = sandbox.run(["true"], log=path)
        assert r.code == 125, r
        lines = [l for l in r.err.splitlines() if l.strip()]
        assert len(lines) == 1 and why in lines[0] and "/var/log/cordon/" in lines[0], r.err
        assert not os.path.exists(path)


@pytest.mark.timeout(40)
def test_log_symlink_refused(sandbox):
    target = os.path.join(sandbox.dir, "target.log")
    link = os.path.join(sandbox.dir, "link.log")
    os.symlink(target, link)
    r = sandbox.run(["true"], log=link)
    assert r.code == 125 and "not a regular file owned by root" in r.err, r
    assert not os.path.exists(target)


# -- reload ---------------------------------------------------------------------------

OTHER_ENTRY = """\
  other:
    endpoints:
      - host: other.test
        ports: [80]
        allowed_ips: ["10.231.0.0/16"]
    binaries:
      - path: /usr/bin/curl
"""

# prints first=CODE, waits for ./next, prints second=CODE
TWICE = ("echo first=$(%s); while [ ! -e next ]; do sleep 0.05; done; echo second=$(%s)"
         % (curl("http://other.test/"), curl("http://other.test/")))


def _policy_with_other(sb):
    return BASE_POLICY.format(ro=sb.ro, rw=sb.work) + OTHER_ENTRY


def _reloads(p, n):
    return [e for e in _events(p) if e["event"] == "policy_reload"][:n]


def _events(p):
    from sandbox_fixtures import read_audit
    return read_audit(p.audit_path)


@pytest.mark.timeout(40)
def test_reload_on_sighup(sandbox):
    p = sandbox.start(["sh", "-c", TWICE])
    sandbox.wait_output(p, "first=")
    sandbox.write_policy(_policy_with_other(sandbox))
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: _reloads(p, 1), what="a policy_reload event")
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert r.code == 0, r
    assert "first=403" in r.out and "second=200" in r.out, r
    rl = r.events("policy_reload")
    assert rl[0]["result"] == "installed" and rl[0]["generation"] == 2
    assert rl[0]["trigger"] == "SIGHUP"
    # every decision names the generation that made it
    gens = [(e["host"], e["decision"], e.get("policy_generation"))
            for e in r.events("decision")]
    assert gens == [("other.test", "deny", 1), ("other.test", "allow", 2)], gens
    assert "reload (SIGHUP): ok generation 2" in r.err


@pytest.mark.timeout(40)
def test_reload_command_and_broken_policy(sandbox, cordon_bin):
    name = sandbox.name()
    good = sandbox.policy
    p = sandbox.start(["sh", "-c", TWICE], args=["--name", name])
    sandbox.wait_output(p, "first=")
    # a broken policy: the old one stays, the client and the terminal say why
    with open(good, "w") as f:
        f.write("version: 1\nnetwork_policies:\n  x:\n    endpoints: [{host: a, portz: [1]}]\n")
    c = util.run([cordon_bin, "policy", "reload", "--sandbox", name], check=False)
    assert c.returncode == 1, (c.stdout, c.stderr)
    assert re.search(r"policy\.yaml:\d+:\d+: error", c.stderr), c.stderr
    assert "generation 1 stays in force" in c.stderr
    # the good one
    sandbox.write_policy(_policy_with_other(sandbox))
    c = util.run([cordon_bin, "policy", "reload", "--sandbox", name], check=False)
    assert c.returncode == 0 and "ok generation 2" in c.stdout, (c.stdout, c.stderr)
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert "first=403" in r.out and "second=200" in r.out, r
    assert "generation 1 stays in force" in r.err and "ok generation 2" in r.err
    rl = r.events("policy_reload")
    assert [e["result"] for e in rl] == ["failed", "installed"]
    # the control socket is gone with the sandbox
    c = util.run([cordon_bin, "policy", "reload", "--sandbox", name], check=False)
    assert c.returncode == 2 and "not running" in c.stderr


@pytest.mark.timeout(40)
def test_control_socket_is_root_only(sandbox):
    name = sandbox.name()
    p = sandbox.start(["sleep", "30"], args=["--name", name])
    path = "/run/cordon/ctl/%s.ctl" % name
    wait_for(lambda: os.path.exists(path), what=path)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077 == 0
    # a non-root client (the sandbox's user, from the host) cannot connect
    c = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        PY, "-c",
                        "import socket; s=socket.socket(socket.AF_UNIX); s.connect(%r)" % path],
                       capture_output=True, text=True)
    assert c.returncode != 0 and "Permission denied" in c.stderr, c.stderr
    # and a second sandbox of the same name is refused
    r = sandbox.run(["true"], args=["--name", name])
    assert r.code == 125 and "already running" in r.err, r
    p.send_signal(signal.SIGTERM)
    sandbox.finish(p)


# -- CLI ------------------------------------------------------------------------------

def _cordon(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=10)


def test_version_and_help(cordon_bin):
    r = _cordon(cordon_bin, "--version")
    assert r.returncode == 0 and re.match(r"cordon \d+\.\d+\.\d+\n$", r.stdout)
    r = _cordon(cordon_bin, "help")
    assert r.returncode == 0 and "commands:" in r.stdout and "help" in r.stdout
    r = _cordon(cordon_bin, "help", "run")
    assert r.returncode == 0 and "usage: cordon run" in r.stdout
    for flag in ("--log-format", "--quiet", "--log FILE", "cordon policy reload"):
        assert flag in r.stdout, flag
    r = _cordon(cordon_bin, "help", "policy")
    assert r.returncode == 0 and "reload --sandbox NAME" in r.stdout


def test_did_you_mean(cordon_bin):
    r = _cordon(cordon_bin, "rn")
    assert r.returncode == 2 and "did you mean 'run'?" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = _cordon(cordon_bin, "policy", "chek", "x")
    assert r.returncode == 2 and "did you mean 'check'?" in r.stderr
    r = _cordon(cordon_bin, "run", "--polcy", "x", "--", "true")
    assert r.returncode == 125 and "did you mean '--policy'?" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = _cordon(cordon_bin, "help", "polcy")
    assert r.returncode == 2 and "did you mean 'policy'?" in r.stderr


def test_missing_policy_one_line(cordon_bin, tmp_path):
    r = _cordon(cordon_bin, "run", "--policy", str(tmp_path / "nope.yaml"), "--", "true")
    assert r.returncode == 125
    assert r.stderr.splitlines() == ["cordon run: --policy %s: No such file or directory"
                                     % (tmp_path / "nope.yaml")], r.stderr


# -- a person at a terminal (tmux) ----------------------------------------------------

def _tmux(*args):
    return subprocess.run(["tmux"] + list(args), capture_output=True, text=True, timeout=10)


def _screen(session):
    return _tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session).stdout


@pytest.mark.timeout(60)
def test_interactive_bash_in_tmux(sandbox):
    import shlex
    name = sandbox.name()
    argv, audit = sandbox.argv(["bash", "--norc", "--noprofile"], args=["--name", name])
    session = "cordon-ux-%d" % os.getpid()
    cmd = "%s; echo cordon-exit=$?; sleep 60" % shlex.join(argv)
    r = _tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd)
    assert r.returncode == 0, r.stderr
    try:
        # wait for the sandbox to be up (its control socket), then type
        wait_for(lambda: os.path.exists("/run/cordon/ctl/%s.ctl" % name), 20, "the sandbox")
        _tmux("send-keys", "-t", session,
              "curl -s -o /dev/null -w 'code=%{http_code}\\n' http://denied.test/x", "Enter")
        wait_for(lambda: "code=403" in _screen(session), 20, "curl's answer")
        wait_for(lambda: "cordon: DENIED GET denied.test:80/x" in _screen(session), 20,
                 "the denial line")
        _tmux("send-keys", "-t", session, "exit", "Enter")
        wait_for(lambda: "cordon-exit=" in _screen(session), 20, "the exit")
        screen = _screen(session)
    finally:
        _tmux("kill-session", "-t", session)
    assert "cordon-exit=0" in screen, screen
    assert re.search(r"cordon: sandbox %s exited 0 after [\d.]+ s: 0 allowed, 1 denied" % name,
                     screen), screen
    assert "cordon: audit log: %s" % audit in screen
    assert '{"time"' not in screen and '"event"' not in screen, screen
    # the denial line starts at the left edge (no staircase from the raw-mode pty)
    line = [l for l in screen.splitlines() if "cordon: DENIED" in l][0]
    assert line.startswith("cordon: DENIED"), screen


# -- denials the agent can read ---------------------------------------------------------

@pytest.mark.timeout(40)
def test_connect_reason_phrase_names_the_reason(sandbox):
    code = ("import urllib.request\n"
            "try: urllib.request.urlopen('https://denied.test/', timeout=10)\n"
            "except Exception as e: print('ERR', e)\n")
    r = sandbox.run(["sh", "-c", "%s -c \"%s\"; curl -sS -v -m 10 https://denied.test/ 2>&1 | "
                     "grep '< HTTP/1.1'" % (PY, code)])
    assert r.code == 0, r
    assert "Tunnel connection failed: 403 Forbidden by cordon: no_endpoint" in r.out, r.out
    assert "< HTTP/1.1 403 Forbidden by cordon: no_endpoint" in r.out, r.out


# -- the environment ------------------------------------------------------------------

@pytest.mark.timeout(40)
def test_env_ca_variables_and_allowlist(sandbox):
    env = {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": "/host/ca.pem", "NIX_SSL_CERT_FILE": "/host/x",
           "HTTPLIB2_CA_CERTS": "/host/y", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": "/host/z",
           "ANTHROPIC_API_KEY": "k1", "SECRET_TOKEN": "s1"}
    show = "; ".join("echo %s=${%s-unset}" % (v, v) for v in list(env) + ["PATH"])
    r = sandbox.run(["sh", "-c", show], env=env)
    assert r.code == 0, r
    for v in ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "NIX_SSL_CERT_FILE", "HTTPLIB2_CA_CERTS",
              "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"):
        assert "%s=/run/cordon/ca-bundle.pem" % v in r.out, r.out
    assert "SECRET_TOKEN=s1" in r.out          # default: the host environment passes
    r = sandbox.run(["sh", "-c", show], env=env, args=["--env-keep", "ANTHROPIC_*"])
    assert "ANTHROPIC_API_KEY=k1" in r.out and "SECRET_TOKEN=unset" in r.out, r.out
    assert "PATH=/" in r.out
    assert "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=/run/cordon/ca-bundle.pem" in r.out
    r = sandbox.run(["sh", "-c", show], env=env, args=["--env-clear"])
    assert "ANTHROPIC_API_KEY=unset" in r.out and "SECRET_TOKEN=unset" in r.out, r.out


# -- defaults -------------------------------------------------------------------------

@pytest.mark.timeout(40)
def test_no_policy_runs_the_builtin_default(sandbox):
    argv, audit = sandbox.argv(["sh", "-c", "echo s=$(%s); touch w && echo wrote"
                                % curl("http://allowed.test/")], log=None)
    i = argv.index("--policy")
    del argv[i:i + 2]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=util.clean_env())
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "s=403" in r.stdout and "wrote" in r.stdout, r.stdout
    lines = [l for l in r.stderr.splitlines() if "built-in default" in l]
    assert len(lines) == 1 and "no network" in lines[0] and "cordon policy init" in lines[0]
    assert "all egress is denied" in r.stderr
    # the default file is gone with the sandbox
    assert not [n for n in os.listdir("/run/cordon/ctl") if n.endswith(".default-policy.yaml")
                and n.startswith("run-%d" % os.getpid())]


@pytest.mark.timeout(40)
def test_workdir_not_writable_warns(sandbox):
    r = sandbox.run(["sh", "-c", "touch x 2>/dev/null && echo wrote || echo nowrite"],
                    args=["--workdir", sandbox.dir], log=None)
    assert r.code == 0 and "nowrite" in r.out, r
    warn = [l for l in r.err.splitlines() if "warning: the workdir" in l]
    assert len(warn) == 1 and sandbox.dir in warn[0] and "not writable" in warn[0], r.err
    r = sandbox.run(["true"])
    assert "warning: the workdir" not in r.err


PRESET_HOSTS = {"github": "api.github.com", "pypi": "files.pythonhosted.org",
                "npm": "registry.npmjs.org", "crates": "index.crates.io",
                "goproxy": "proxy.golang.org", "anthropic": "api.anthropic.com",
                "openai": "api.openai.com", "slack": "wss-primary.slack.com",
                "discord": "gateway.discord.gg", "telegram": "api.telegram.org"}
PRESET_BINARY = {"github": "/usr/bin/git", "pypi": "/usr/bin/python3.11",
                 "npm": "/usr/local/bin/node", "crates": "/root/.cargo/bin/cargo",
                 "goproxy": "/usr/lib/go-1.19/bin/go", "anthropic": "/usr/bin/node",
                 "openai": "/usr/bin/node", "slack": "/usr/bin/node",
                 "discord": "/usr/bin/python3.11", "telegram": "/usr/bin/node"}


def test_policy_init_presets_check_and_allow(cordon_bin, tmp_path):
    for name, host in PRESET_HOSTS.items():
        path = str(tmp_path / (name + ".yaml"))
        r = _cordon(cordon_bin, "policy", "init", "--preset", name, "--output", path)
        assert r.returncode == 0 and "wrote" in r.stderr, r.stderr
        r = _cordon(cordon_bin, "policy", "check", path)
        assert r.returncode == 0 and "ok (1 policies" in r.stdout, (name, r.stdout, r.stderr)
        r = _cordon(cordon_bin, "policy", "eval", path, "--host", host, "--port", "443",
                    "--binary", PRESET_BINARY[name])
        assert r.returncode == 0 and "decision: allow" in r.stdout, (name, r.stdout)
        r = _cordon(cordon_bin, "policy", "eval", path, "--host", "evil.example", "--port",
                    "443", "--binary", PRESET_BINARY[name])
        assert r.returncode == 1, (name, r.stdout)
    # all at once, and none
    r = _cordon(cordon_bin, "policy", "init", "--preset", ",".join(PRESET_HOSTS))
    (tmp_path / "all.yaml").write_text(r.stdout)
    r = _cordon(cordon_bin, "policy", "check", str(tmp_path / "all.yaml"))
    assert r.returncode == 0 and "ok (10 policies" in r.stdout, r.stdout
    r = _cordon(cordon_bin, "policy", "init")
    assert "# network_policies:" in r.stdout and "cordon policy reload" in r.stdout
    (tmp_path / "none.yaml").write_text(r.stdout)
    r = _cordon(cordon_bin, "policy", "check", str(tmp_path / "none.yaml"))
    assert r.returncode == 0 and "ok (0 policies" in r.stdout
    # no overwrite without --force; a mistyped preset gets a suggestion
    r = _cordon(cordon_bin, "policy", "init", "--output", str(tmp_path / "none.yaml"))
    assert r.returncode == 1 and "--force" in r.stderr
    r = _cordon(cordon_bin, "policy", "init", "--preset", "gihub")
    assert r.returncode == 2 and "did you mean 'github'?" in r.stderr


# -- http://cordon.local/: the agent's view ---------------------------------------------

@pytest.mark.timeout(60)
def test_cordon_local_denials_curl_git_python(sandbox):
    name = sandbox.name()
    script = r"""
curl -s -m 10 -o /dev/null http://denied.test/one
git -c http.lowSpeedTime=10 ls-remote https://denied.test/repo.git >/dev/null 2>&1
echo "--- text"
curl -s -m 10 http://cordon.local/denials
echo "--- python"
%s - <<'PY'
import json, requests, urllib.request
try:
    requests.get("http://denied.test/three", timeout=10)
except Exception as e:
    print("requests error", e)
r = requests.get("http://cordon.local/denials", headers={"Accept": "application/json"},
                 timeout=10)
print("ctype", r.headers["Content-Type"])
print("JSON", json.dumps(r.json()))
print("STATUS", requests.get("http://cordon.local/status", timeout=10).text.replace("\n", ""))
print("POLICY", requests.get("http://cordon.local/policy", timeout=10).text.splitlines()[0])
print("MISSING", requests.get("http://cordon.local/nope", timeout=10).status_code)
PY
""" % PY
    r = sandbox.run(["sh", "-c", script], args=["--name", name])
    assert r.code == 0, r
    text = r.out.split("--- text")[1].split("--- python")[0]
    assert "DENIED GET denied.test:80/one for /usr/bin/curl: no_endpoint" in text, text
    assert "fix: add an endpoint for denied.test:80" in text
    # git's helper asked for a tunnel to denied.test:443
    assert re.search(r"DENIED denied\.test:443 for /usr/lib/git-core/git-remote-http\S*: "
                     r"no_endpoint", text), text
    js = json.loads(r.out.split("JSON ", 1)[1].splitlines()[0])
    assert js["sandbox"] == name and js["total"] == 3
    last = js["denials"][-1]
    assert last["host"] == "denied.test" and last["path"] == "/three"
    assert last["reason_code"] == "no_endpoint" and last["binary"].startswith("/usr/bin/python3")
    assert "add an endpoint for denied.test:80" in last["fix"]
    assert "ctype application/json" in r.out
    status = json.loads(r.out.split("STATUS ", 1)[1].splitlines()[0])
    assert status["fence"] == "monitored" and status["seccomp"] is True
    assert status["policy_generation"] == 1
    assert status["enforcing"] is True and status["self_test"]["proxy_denial"] == "403"
    assert "POLICY # generation 1" in r.out and "MISSING 404" in r.out
    # the deny body points the agent there
    r2 = sandbox.run(["curl", "-s", "-m", "10", "http://denied.test/"])
    assert json.loads(r2.out)["denials"] == "http://cordon.local/denials"
    # reading cordon.local is not counted as traffic
    assert re.search(r"exited 0 after [\d.]+ s: 0 allowed, 3 denied", r.err), r.err


# -- learning from denials ---------------------------------------------------------------

FS_ONLY = """\
version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev]
  read_write: [/dev/null]
"""


@pytest.mark.timeout(60)
def test_policy_suggest_from_denials_allows_exactly_those(sandbox, cordon_bin):
    three = "; ".join("echo %s=$(%s)" % (h, curl("http://%s/" % h))
                      for h in ("denied.test", "other.test", "echo.test"))
    p0 = sandbox.write_policy(FS_ONLY, "nonet.yaml")
    r = sandbox.run(["sh", "-c", three], policy=p0)
    assert r.out.count("=403") == 3, r
    s = _cordon(cordon_bin, "policy", "suggest", r.audit_path, "--allowed-ips", sandbox.net.cidr)
    assert s.returncode == 0, s.stderr
    assert "allows exactly the 3 refusal(s)" in s.stdout
    suggested = FS_ONLY + s.stdout.split("version: 1\n", 1)[1]
    p1 = sandbox.write_policy(suggested, "suggested.yaml")
    c = _cordon(cordon_bin, "policy", "check", p1)
    assert c.returncode == 0 and "ok (3 policies, 3 endpoints)" in c.stdout, (c.stdout, c.stderr)
    r = sandbox.run(["sh", "-c", three + "; echo allowed.test=$(%s)" % curl("http://allowed.test/")],
                    policy=p1)
    assert r.code == 0, r
    for h in ("denied.test", "other.test", "echo.test"):
        assert "%s=200" % h in r.out, r.out
    assert "allowed.test=403" in r.out, r.out          # the fourth stays denied
    # python3 was never refused, so it is not allowed either
    r = sandbox.run([PY, "-c", "import urllib.request as u\ntry: u.urlopen('http://denied.test/')\n"
                     "except Exception as e: print('ERR', e)"], policy=p1)
    assert "binary_not_allowed" in r.out, r.out


def test_policy_suggest_l7_rules_and_generalised_paths(cordon_bin, tmp_path):
    log = tmp_path / "audit.jsonl"
    evs = [{"event": "l7_request", "decision": "deny", "host": "api.example.com", "port": 443,
            "method": "GET", "path": "/users/%d" % n, "binary": "/usr/bin/curl",
            "reason_code": "l7_denied"} for n in (123, 456)]
    evs.append({"event": "decision", "decision": "deny", "host": "meta.test", "port": 80,
                "reason_code": "address_blocked", "binary": "/usr/bin/curl", "detail": "x"})
    evs.append({"event": "close", "host": "api.example.com"})
    log.write_text("".join(json.dumps(e) + "\n" for e in evs))
    s = _cordon(cordon_bin, "policy", "suggest", str(log))
    assert s.returncode == 0, s.stderr
    assert s.stdout.count('- allow: {method: GET, path: "/users/*"}') == 1, s.stdout
    assert "protocol: rest" in s.stdout
    assert "# not suggested (a policy entry cannot allow it): meta.test:80" in s.stdout
    (tmp_path / "p.yaml").write_text(s.stdout)
    c = _cordon(cordon_bin, "policy", "check", str(tmp_path / "p.yaml"))
    assert c.returncode == 0, c.stderr
    e = _cordon(cordon_bin, "policy", "eval", str(tmp_path / "p.yaml"), "--host", "api.example.com",
                "--port", "443", "--binary", "/usr/bin/curl", "--method", "GET", "--path",
                "/users/789")
    assert e.returncode == 0, e.stdout
    # a text log is refused with the line
    (tmp_path / "t.log").write_text("2026-01-01T00:00:00.000Z decision decision=deny\n")
    s = _cordon(cordon_bin, "policy", "suggest", str(tmp_path / "t.log"))
    assert s.returncode == 1 and "t.log:1: not a JSON audit event" in s.stderr


# -- the enforcement self-test -------------------------------------------------------------

@pytest.mark.timeout(40)
def test_selftest_passes_and_is_recorded(sandbox):
    r = sandbox.run(["true"])
    assert r.code == 0, r
    st = r.events("self_test")
    assert len(st) == 1 and st[0]["enforcing"] is True, r.audit()
    assert st[0]["direct_dial"].startswith("refused") and st[0]["proxy_denial"] == "403"
    # the probe's own traffic is in the log but not on the terminal
    assert "bypass attempt" in r.err and "0 bypass attempts" in r.err and "0 denied" in r.err


@pytest.mark.timeout(40)
def test_selftest_without_fence_still_enforcing(sandbox):
    r = sandbox.run(["true"], env={"CORDON_DISABLE_FENCE": "1"})
    assert r.code == 0, r
    st = r.events("self_test")
    assert st and st[0]["enforcing"] is True and "unreachable" in st[0]["direct_dial"], st


@pytest.mark.timeout(40)
def test_selftest_failure_refuses_to_start(sandbox):
    r = sandbox.run(["sh", "-c", "echo SHOULD-NOT-RUN"], env={"CORDON_SELFTEST_DIRECT": "leak"})
    assert r.code == 125, r
    assert "SHOULD-NOT-RUN" not in r.out
    fail = [l for l in r.err.splitlines() if "self-test failed" in l]
    assert len(fail) == 1 and "got an answer" in fail[0] and "not started" in fail[0], r.err
    st = r.events("self_test")
    assert st and st[0]["enforcing"] is False and "failure" in st[0]
    assert not r.events("sandbox_start")


@pytest.mark.timeout(40)
def test_print_address_reaches_a_server_inside(sandbox):
    code = ("import http.server, socketserver, threading, time\n"
            "s = socketserver.TCPServer(('0.0.0.0', 8777), http.server.SimpleHTTPRequestHandler)\n"
            "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
            "print('listening', flush=True)\n"
            "while True: time.sleep(1)\n")
    p = sandbox.start([PY, "-c", code], args=["--print-address"])
    sandbox.wait_output(p, "listening")
    with open(p.err_path) as f:
        m = re.search(r"cordon: sandbox \S+ address (10\.200\.\d+\.\d+) \(proxy "
                      r"(10\.200\.\d+\.\d+):3128\)", f.read())
    assert m, open(p.err_path).read()
    c = subprocess.run(["curl", "-s", "-m", "5", "--noproxy", "*", "-o", "/dev/null", "-w",
                        "%{http_code}", "http://%s:8777/" % m.group(1)],
                       capture_output=True, text=True, timeout=10)
    assert c.stdout == "200", c
    p.send_signal(signal.SIGTERM)
    sandbox.finish(p)


@pytest.mark.timeout(40)
def test_watch_policy_reloads_on_change(sandbox):
    p = sandbox.start(["sh", "-c", TWICE], args=["--watch-policy"])
    sandbox.wait_output(p, "first=")
    # an editor's rename-replace of a broken file: refused, generation 1 stays
    tmp = sandbox.policy + ".tmp"
    with open(tmp, "w") as f:
        f.write("version: 1\nnetwork_policies: [\n")
    os.rename(tmp, sandbox.policy)
    wait_for(lambda: _reloads(p, 1), what="the failed reload")
    assert _reloads(p, 1)[0]["result"] == "failed"
    with open(tmp, "w") as f:
        f.write(_policy_with_other(sandbox))
    os.rename(tmp, sandbox.policy)
    wait_for(lambda: len(_reloads(p, 2)) == 2, what="the second reload")
    open(os.path.join(sandbox.work, "next"), "w").close()
    r = sandbox.finish(p)
    assert "first=403" in r.out and "second=200" in r.out, r
    rl = r.events("policy_reload")
    assert [(e["result"], e["trigger"], e["generation"]) for e in rl] == \
        [("failed", "file changed", 1), ("installed", "file changed", 2)], rl
    assert "reload (file changed): error:" in r.err


@pytest.mark.timeout(40)
def test_publish_relays_host_port_into_the_sandbox(sandbox):
    code = ("import socket, threading\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('0.0.0.0', 8779)); s.listen(8)\n"
            "print('listening', flush=True)\n"
            "def serve(c):\n"
            "    data = b''\n"
            "    while True:\n"
            "        b = c.recv(65536)\n"
            "        if not b: break\n"
            "        data += b\n"
            "    c.sendall(b'echo:' + data); c.close()\n"
            "while True:\n"
            "    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()\n")
    p = sandbox.start([PY, "-c", code], args=["--publish", "0:8779"])
    sandbox.wait_output(p, "listening")
    with open(p.err_path) as f:
        m = re.search(r"cordon: published 127\.0\.0\.1:(\d+) -> sandbox \S+:8779", f.read())
    assert m, open(p.err_path).read()
    import socket as pysock
    payload = os.urandom(300000)      # more than the relay's buffers: backpressure
    for _ in range(2):                # two connections, each half-closed by the client
        c = pysock.create_connection(("127.0.0.1", int(m.group(1))), timeout=10)
        c.sendall(payload)
        c.shutdown(pysock.SHUT_WR)
        got = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += b
        c.close()
        assert got == b"echo:" + payload
    p.send_signal(signal.SIGTERM)
    r = sandbox.finish(p)
    assert r.code == 128 + signal.SIGTERM or r.code == 143, r
