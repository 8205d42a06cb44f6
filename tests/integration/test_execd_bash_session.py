"""cordon execd: OpenSandbox's bash "session" API (POST /session, POST
/session/{id}/run, DELETE /session/{id}), driven with urllib as the
OpenSandbox SDKs drive it: what carries over between runs, merged output,
the terminal events, errors, and a delete that kills the run in progress."""
import http.client
import json
import os
import urllib.error
import urllib.request

import pytest

from execd_fixtures import execd, wait_gone  # noqa: F401


def call(ed, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (ed.port, path), data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        block = block.strip("\n")
        if block:
            assert block.startswith("data: "), block
            out.append(json.loads(block[6:]))
    return out


def run_in(ed, sid, command, **extra):
    st, hdr, raw = call(ed, "POST", "/session/%s/run" % sid, dict(command=command, **extra))
    assert st == 200, (st, raw)
    assert hdr["Content-Type"] == "text/event-stream"
    ev = events(raw)
    assert ev[0] == {"type": "init", "text": sid, "timestamp": ev[0]["timestamp"]}
    return ev


def stdout(ev):
    return [e["text"] for e in ev if e["type"] == "stdout"]


def test_state_carries_over_between_runs(execd, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ed = execd(env={"TMPDIR": str(tmp)})
    home = str(tmp_path / "made" / "by-create")
    st, _, body = call(ed, "POST", "/session", {"cwd": home})
    assert st == 200
    sid = json.loads(body)["session_id"]
    assert os.path.isdir(home), "POST /session creates a missing cwd"
    ev = run_in(ed, sid, "pwd; export GREETING='hi there'; LOCAL=1; cd /usr; f() { :; }; "
                         "echo to-stderr >&2")
    assert stdout(ev) == [home, "to-stderr"]            # stderr merged into stdout events
    assert ev[-1]["type"] == "execution_complete"
    ev = run_in(ed, sid, "pwd; echo \"$GREETING\"; echo \"local=$LOCAL\"; type f || true")
    out = stdout(ev)
    assert out[:3] == ["/usr", "hi there", "local="], out  # exports and cd carry over; others not
    assert "not found" in out[3]
    # a per-run cwd sticks, as in OpenSandbox
    run_in(ed, sid, "true", cwd=str(tmp_path))
    assert stdout(run_in(ed, sid, "pwd")) == [str(tmp_path)]
    assert json.loads(call(ed, "GET", "/session/" + sid)[2]) == {
        "session_id": sid, "running": False, "cwd": str(tmp_path)}
    # state is saved even when the command exits on its own
    ev = run_in(ed, sid, "export AFTER_EXIT=yes; cd /; exit 7")
    assert [e["type"] for e in ev][-1] == "error"
    assert ev[-1]["error"] == {"ename": "CommandExecError", "evalue": "7",
                               "traceback": ["exit status 7"]}
    assert not [e for e in ev if e["type"] == "execution_complete"]
    assert stdout(run_in(ed, sid, "pwd; echo $AFTER_EXIT")) == ["/", "yes"]
    assert call(ed, "DELETE", "/session/" + sid)[0] == 200
    assert call(ed, "GET", "/session/" + sid)[0] == 404
    assert os.listdir(str(tmp)) == [], "state files left behind"


def test_errors_say_what_and_where(execd):
    ed = execd()
    st, _, body = call(ed, "POST", "/session/nope/run", {"command": "true"})
    assert st == 404 and json.loads(body)["code"] == "CONTEXT_NOT_FOUND"
    sid = json.loads(call(ed, "POST", "/session")[2])["session_id"]  # an empty body is fine
    st, _, body = call(ed, "POST", "/session/%s/run" % sid, {"command": ""})
    assert st == 400 and b"command" in body
    st, _, body = call(ed, "POST", "/session/%s/run" % sid, {"command": "true",
                                                             "cwd": "/no/such/dir"})
    assert st == 400 and b"/no/such/dir" in body
    st, _, body = call(ed, "POST", "/session/%s/run" % sid, {"command": "true", "timeout": -1})
    assert st == 400 and b"timeout" in body
    st, _, body = call(ed, "PUT", "/session/" + sid)
    assert st == 405
    assert call(ed, "DELETE", "/session/nope")[0] == 404


@pytest.mark.timeout(60)
def test_one_run_at_a_time_and_delete_kills_the_run(execd):
    ed = execd()
    sid = json.loads(call(ed, "POST", "/session")[2])["session_id"]
    conn = http.client.HTTPConnection("127.0.0.1", ed.port, timeout=30)
    try:
        conn.request("POST", "/session/%s/run" % sid,
                     body=json.dumps({"command": "echo $$; sleep 100 & wait"}).encode())
        r = conn.getresponse()
        ev = []
        while not stdout(ev):             # the run has started and said who it is
            line = r.readline()
            assert line, ev
            if line.startswith(b"data: "):
                ev.append(json.loads(line[6:]))
        shell = int(stdout(ev)[0])
        assert json.loads(call(ed, "GET", "/session/" + sid)[2])["running"] is True
        st, _, body = call(ed, "POST", "/session/%s/run" % sid, {"command": "true"})
        assert st == 409 and json.loads(body)["code"] == "SESSION_BUSY"
        # DELETE /command?id=<session id> deletes the session, as in OpenSandbox
        assert call(ed, "DELETE", "/command?id=" + sid)[0] == 200
        ev += events(r.read())            # the stream ends: the run was killed
    finally:
        conn.close()
    assert ev[-1]["type"] == "error" and ev[-1]["error"]["evalue"] == "-1", ev[-1]
    assert wait_gone(shell, 5)
    assert call(ed, "GET", "/session/" + sid)[0] == 404


@pytest.mark.timeout(60)
def test_timeout_ends_the_run_and_the_session_goes_on(execd):
    ed = execd("--kill-grace", "200")
    sid = json.loads(call(ed, "POST", "/session")[2])["session_id"]
    run_in(ed, sid, "export KEEP=1")
    ev = run_in(ed, sid, "sleep 100", timeout=300)
    assert ev[-1]["type"] == "error" and ev[-1]["error"]["ename"] == "TimeoutError", ev[-1]
    assert stdout(run_in(ed, sid, "echo $KEEP")) == ["1"]
