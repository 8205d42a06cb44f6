"""cordon run --learn: egress the policy would refuse is let through and
recorded, the hard boundaries stay, and at exit the proposed policy is
written; run with it (enforce), the same workload passes and anything new is
refused."""
import os
import re
import shutil
import subprocess

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

pytest_plugins = ["inspect_fixtures"]

PY = "/usr/bin/python3"
GIT_REMOTE_HTTP = os.path.realpath("/usr/lib/git-core/git-remote-https")

FS = """version: 1
# a filesystem-only policy: no network at all
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev, {ro}]
  read_write: [/dev/null]
landlock:
  compatibility: best_effort
"""


def _cordon(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=10)


def workload(ca):
    """curl and python over plain HTTP (forwarded: method and path seen), git
    over HTTPS (a tunnel: only host and port seen), and one request the
    address fence refuses whatever the mode (loop.test is 127.0.0.1)."""
    return "; ".join([
        "curl -sS -m 10 -o /dev/null -w 'curl=%{http_code}\\n' http://allowed.test/size/12345",
        "%s -c \"import urllib.request as u; print('py=%%d' %% u.urlopen('http://other.test/echo')"
        ".status)\" 2>&1 | tail -1" % PY,
        "HOME=$PWD GIT_SSL_CAINFO=%s git ls-remote https://git.insp.test/git/repo.git "
        ">/dev/null 2>git.err && echo git=ok || { echo git=fail; cat git.err; }" % ca,
        "curl -sS -m 10 -o /dev/null -w 'loop=%{http_code}\\n' http://loop.test/",
    ])


@pytest.mark.timeout(120)
def test_learn_then_enforce(sandbox, inet, cordon_bin, testnet):
    ca = os.path.join(sandbox.ro, "upstream-ca.pem")
    shutil.copy(inet.ca, ca)
    os.chmod(ca, 0o644)
    fs = FS.format(ro=sandbox.ro)
    p0 = sandbox.write_policy(fs, "fs-only.yaml")
    out = os.path.join(sandbox.dir, "learned.yaml")
    r = sandbox.run(["sh", "-c", workload(ca)], policy=p0,
                    args=["--learn", "--learn-output", out,
                          "--learn-allowed-ips", "10.231.0.0/16",
                          "--learn-allowed-ips", inet.cidr])
    assert r.code == 0, r
    assert "curl=200" in r.out and "py=200" in r.out and "git=ok" in r.out, r
    # the hard boundary: loopback is still refused in learning mode
    assert "loop=403" in r.out, r
    assert r.events("decision", decision="deny", host="loop.test",
                    reason_code="address_blocked"), r.audit()
    # what the terminal says: learning mode, what is still refused, the file
    assert "--learn: what the policy would refuse is let through" in r.err
    assert "Still refused: loopback" in r.err
    assert re.search(r"cordon: learned 4 request\(s\) to 3 host\(s\); proposed policy: %s"
                     % re.escape(out), r.err), r.err
    # every would-be denial is a would_deny event with learn: true
    learned = [e for e in r.events("decision", decision="would_deny") if e.get("learn")]
    assert {e["host"] for e in learned} == {"allowed.test", "other.test", "git.insp.test",
                                            "loop.test"}, learned
    assert all(e["reason_code"] == "no_endpoint" for e in learned)

    with open(out) as f:
        text = f.read()
    assert os.stat(out).st_mode & 0o777 == 0o644
    # the filesystem policy in force is kept; the network part is learned
    assert "filesystem_policy:" in text and sandbox.ro in text
    assert 'host: "allowed.test"' in text and 'path: "/size/*"' in text, text
    assert 'host: "other.test"' in text and '{method: GET, path: "/echo"}' in text, text
    assert 'host: "git.insp.test"' in text and "port: 443" in text, text
    assert 'path: "%s"' % GIT_REMOTE_HTTP in text and 'path: "/usr/bin/curl"' in text, text
    assert '"loop.test"' not in text.split("network_policies:")[1], text
    assert "# not suggested (a policy entry cannot allow it): loop.test:80" in text
    c = _cordon(cordon_bin, "policy", "check", out)
    assert c.returncode == 0 and "ok (3 policies, 3 endpoints)" in c.stdout, (c.stdout, c.stderr,
                                                                              text)

    # enforce with the proposal: the same workload passes ...
    r = sandbox.run(["sh", "-c", workload(ca)], policy=out)
    assert r.code == 0, r
    assert "curl=200" in r.out and "py=200" in r.out and "git=ok" in r.out, (r, text)
    assert "loop=403" in r.out
    assert not [e for e in r.events("decision") if e.get("decision") == "would_deny"]
    # ... and what was not seen is refused: a new host, a new path, a new binary
    r = sandbox.run(["sh", "-c",
                     "curl -sS -m 10 -o /dev/null -w 'new=%%{http_code}\\n' http://denied.test/; "
                     "curl -sS -m 10 -o /dev/null -w 'path=%%{http_code}\\n' "
                     "http://allowed.test/admin; "
                     "%s -c \"import urllib.request as u\ntry: u.urlopen('http://allowed.test/"
                     "size/1')\nexcept Exception as e: print('pyerr', e)\"" % PY], policy=out)
    assert r.code == 0, r
    assert "new=403" in r.out and "path=403" in r.out and "pyerr" in r.out, r
    assert r.events("decision", decision="deny", host="denied.test", reason_code="no_endpoint")
    assert r.events("decision", decision="deny", host="allowed.test",
                    reason_code="binary_not_allowed")


@pytest.mark.timeout(60)
def test_learn_with_a_policy_that_has_entries(sandbox, testnet):
    """With network_policies of its own, the proposal holds only the
    additions, said so; what the policy allows is not learned."""
    out = os.path.join(sandbox.dir, "more.yaml")
    r = sandbox.run(["sh", "-c", "curl -s -o /dev/null -w 'a=%{http_code}\\n' http://allowed.test/; "
                     "curl -s -o /dev/null -w 'o=%{http_code}\\n' http://other.test/echo"],
                    args=["--learn", "--learn-output", out, "--learn-allowed-ips", "10.231.0.0/16"])
    assert r.code == 0 and "a=200" in r.out and "o=200" in r.out, r
    with open(out) as f:
        text = f.read()
    assert "has network_policies of its own: merge these entries into it" in text
    assert 'host: "other.test"' in text and "allowed.test" not in text, text


@pytest.mark.timeout(60)
def test_learn_private_address_needs_learn_allowed_ips(sandbox, testnet):
    """Without --learn-allowed-ips a private upstream stays refused."""
    out = os.path.join(sandbox.dir, "none.yaml")
    r = sandbox.run(["sh", "-c", "curl -s -o /dev/null -w 'o=%{http_code}\\n' http://other.test/"],
                    args=["--learn", "--learn-output", out])
    assert r.code == 0 and "o=403" in r.out, r
    ev = r.events("decision", decision="deny", host="other.test")
    assert ev and ev[0]["reason_code"] == "address_blocked", ev
    assert "not in --learn-allowed-ips" in ev[0]["detail"]
    with open(out) as f:
        text = f.read()
    assert "# not suggested (a policy entry cannot allow it): other.test:80" in text
    assert "# nothing to allow" in text


def test_learn_options_checked(cordon_bin, tmp_path):
    r = _cordon(cordon_bin, "run", "--learn-output", str(tmp_path / "x"), "--", "true")
    assert r.returncode == 125 and "need --learn" in r.stderr
    r = _cordon(cordon_bin, "run", "--learn", "--learn-allowed-ips", "10.0.0/8", "--", "true")
    assert r.returncode == 125 and "--learn-allowed-ips '10.0.0/8'" in r.stderr
    r = _cordon(cordon_bin, "run", "--help")
    assert "--learn " in r.stdout and "--learn-output" in r.stdout and "--learn-allowed-ips" \
        in r.stdout


@pytest.mark.timeout(60)
def test_learn_output_the_sandbox_could_plant_is_refused(sandbox):
    r = sandbox.run(["true"], args=["--learn", "--learn-output",
                                    os.path.join(sandbox.work, "learned.yaml")])
    assert r.code == 125 and "--learn-output:" in r.err, r


@pytest.mark.timeout(60)
def test_learn_transparent_client(sandbox, testnet):
    """A client that ignores the proxy variables: the policy DNS answers the
    name in learning mode, the captured connection is learned."""
    out = os.path.join(sandbox.dir, "t.yaml")
    r = sandbox.run(["sh", "-c", "curl --noproxy '*' -sS -m 10 -o /dev/null "
                     "-w 't=%{http_code}\\n' http://other.test/echo"],
                    args=["--learn", "--learn-output", out, "--learn-allowed-ips", "10.231.0.0/16"])
    assert r.code == 0 and "t=200" in r.out, r
    ev = [e for e in r.events("decision", decision="would_deny", host="other.test")
          if e.get("learn")]
    assert ev and ev[0].get("via") == "transparent", r.audit()
    with open(out) as f:
        text = f.read()
    assert 'host: "other.test"' in text and "port: 80" in text, text
