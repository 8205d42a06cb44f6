"""cordon run's private HOME: an empty, writable tmpfs of the sandbox's own
(nothing of the host's home in it, gone with the sandbox), holding an NSS
database (Chromium, Firefox) that trusts the sandbox CA; --host-home keeps
the old HOME."""
import os
import pwd

import pytest

from sandbox_fixtures import sandbox  # noqa: F401  (fixture)

HOME = "/run/cordon-home"

SCRIPT = r"""
echo HOME=$HOME
ls -A "$HOME" | tr '\n' ' '; echo
stat -c 'owner=%u mode=%a' "$HOME"
echo hello > "$HOME/.agentrc" && echo write=ok
cat "$HOME/.agentrc"
echo "--- nss"
certutil -L -d "sql:$HOME/.pki/nssdb"
echo "--- pem"
certutil -L -d "sql:$HOME/.pki/nssdb" -n 'cordon sandbox CA' -a
echo "--- ca"
cat /run/cordon/ca.pem
echo "--- end"
"""


@pytest.mark.timeout(60)
def test_private_home_with_nss_db(sandbox):
    r = sandbox.run(["sh", "-c", SCRIPT])
    assert r.code == 0, r
    assert "HOME=%s\n" % HOME in r.out, r.out
    # empty but for the NSS database, owned by the sandbox's user, 0700, writable
    listing = r.out.split("HOME=%s\n" % HOME)[1].splitlines()[0].split()
    assert listing == [".pki"], listing
    uid = pwd.getpwnam("cordon").pw_uid if _has_user("cordon") else None
    if uid is not None:
        assert "owner=%d mode=700" % uid in r.out, r.out
    assert "write=ok" in r.out and "hello" in r.out
    # NSS (certutil, the library Chromium and Firefox use) reads the database:
    # the sandbox CA, trusted for TLS servers
    nss = r.out.split("--- nss")[1].split("--- pem")[0]
    line = [l for l in nss.splitlines() if l.startswith("cordon sandbox CA")]
    assert line and line[0].split()[-1] == "C,,", nss
    pem = r.out.split("--- pem")[1].split("--- ca")[0].strip()
    ca = r.out.split("--- ca")[1].split("--- end")[0].strip()
    assert pem and _b64(pem) == _b64(ca), (pem, ca)
    # nothing of it is left on the host, and the next run starts empty
    assert not os.path.exists(HOME) or not os.listdir(HOME)
    r = sandbox.run(["sh", "-c", "ls -A $HOME/.agentrc 2>&1; echo rc=$?"])
    assert "rc=2" in r.out or "No such file" in r.out, r


@pytest.mark.timeout(60)
def test_host_home_flag_keeps_the_old_home(sandbox):
    r = sandbox.run(["sh", "-c", "echo HOME=$HOME"], args=["--host-home"])
    assert r.code == 0, r
    assert "HOME=%s\n" % HOME not in r.out
    # the sandbox user has no home of its own here: the workdir
    assert "HOME=%s\n" % sandbox.work in r.out or "HOME=/" in r.out, r.out


@pytest.mark.timeout(60)
def test_home_is_not_the_host_users(sandbox):
    """The host user's dotfiles are not reachable through HOME."""
    r = sandbox.run(["sh", "-c", "ls -A $HOME; cat /root/.bashrc 2>&1 | head -1"])
    assert r.code == 0, r
    assert ".bashrc" not in r.out.splitlines()[0] if r.out else True
    assert "No such file" in r.out or "Permission denied" in r.out, r.out


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _b64(pem):
    return "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
