"""`cordon server` driven by OpenSandbox's official JavaScript SDK
(@alibaba-group/opensandbox, installed by scripts/setup into
tests/integration/js/node_modules), directly and with use_server_proxy."""
import json
import os
import subprocess

import pytest

from server_fixtures import KEY, cordon_server  # noqa: F401

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("use_server_proxy", ["0", "1"])
def test_official_js_sdk(cordon_server, use_server_proxy):
    assert os.path.isdir(os.path.join(JS, "node_modules", "@alibaba-group", "opensandbox")), \
        "the OpenSandbox JS SDK is not installed: run scripts/setup"
    srv = cordon_server()
    p = subprocess.run(["node", "sdk_drive.mjs", str(srv.port), KEY, use_server_proxy], cwd=JS,
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, "node failed:\n%s\n%s" % (p.stdout, p.stderr)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["stdout"] == ["hello bar baz", "second line"], out  # one event per line
    assert out["stderr"] == ["to-err"], out
    assert out["failExitCode"] == 3 or out["failError"], out
    assert out["state"] == "Running"
    assert out["metadata"] == {"via": "sdk", "proxy": use_server_proxy}
    assert out["expiresAt"]
    if use_server_proxy == "1":
        assert out["endpoint"] == "127.0.0.1:%d/sandboxes/%s/proxy/44772" % (srv.port, out["id"])
    else:
        assert out["endpoint"].endswith(":44772") and "/" not in out["endpoint"]
    assert out["listed"] == [out["id"]]
    assert out["pausedState"] == "Paused"
    assert out["afterResume"] == ["after-resume"], out
    assert 1700 <= out["renewedBy"] <= 1800
    assert out["afterKill"] != "still there"
    assert srv.sandboxes()["items"] == []
