"""cordon execd: POST /command streams events, returns promptly, times out
whole process groups; background commands, logs, interrupt."""
import os
import time

import pytest

from execd_fixtures import execd, proc_gone, run, wait_gone  # noqa: F401


def types(events):
    return [e["type"] for e in events]


def test_streams_and_returns_as_soon_as_the_process_exits(execd):
    ed = execd()
    st, ev, took = ed.command({"command": "echo one; sleep 0.3; echo two >&2; exit 4"})
    assert st == 200
    assert types(ev) == ["init", "stdout", "stderr", "exit", "error"], ev
    assert len(ev[0]["text"]) == 32
    assert ev[1]["text"] == "one\n" and ev[2]["text"] == "two\n"
    assert ev[3]["exit_code"] == 4 and ev[3]["execution_time"] >= 300
    assert ev[4]["error"] == {"ename": "CommandExecError", "evalue": "4",
                              "traceback": ["exit status 4"]}
    st, ev, took = ed.command({"command": "true"})
    assert types(ev) == ["init", "exit", "execution_complete"] and ev[1]["exit_code"] == 0


def test_a_background_child_holding_stdout_does_not_delay_the_end(execd):
    # "as soon as the process exits", checked without a clock: the stream has
    # ended while the background child that holds stdout still runs
    ed = execd()
    st, ev, took = ed.command({"command": "sleep 60 & echo $!"})
    assert types(ev) == ["init", "stdout", "exit", "execution_complete"]
    bg = int(ev[1]["text"])
    assert not proc_gone(bg), "the stream waited for the background child"
    os.kill(bg, 9)


def test_cwd_env_and_bad_input(execd):
    ed = execd()
    st, ev, _ = ed.command({"command": "pwd; echo $FOO", "cwd": "/tmp", "env": {"FOO": "bar"}})
    assert "".join(e.get("text", "") for e in ev if e["type"] == "stdout") == "/tmp\nbar\n"
    st, err, _ = ed.command({"command": "pwd", "cwd": "/nonexistent"})
    assert st == 400 and err["code"] == "INVALID_REQUEST_BODY"
    st, err, _ = ed.command({"cwd": "/tmp"})
    assert st == 400 and "command" in err["message"]
    st, _, body = ed.request("POST", "/command", b'{"command": "x",}')
    assert st == 400 and b"INVALID_REQUEST_BODY" in body and b"column 17" in body


@pytest.mark.timeout(30)
def test_timeout_kills_a_group_that_ignores_sigterm(execd):
    ed = execd("--kill-grace", "300")
    cmd = "trap '' TERM; sleep 100 & echo $!; sleep 100; echo never"
    st, ev, took = ed.command({"command": cmd, "timeout_ms": 1000})
    assert st == 200
    bg = int(ev[1]["text"].split()[0])
    ex = [e for e in ev if e["type"] == "exit"][0]
    assert ex["timed_out"] is True and ex["signal"] == "SIGKILL" and ex["exit_code"] == -1
    assert types(ev)[-1] == "error" and ev[-1]["error"]["ename"] == "TimeoutError"
    assert took > 1.0  # not before the timeout (a hang is caught by the stream ending at all)
    assert "never" not in str(ev)
    # the background sleep in the same group is gone too
    assert wait_gone(bg, 3), "the background sleep survived the timeout"


def test_background_logs_status_and_interrupt(execd):
    ed = execd("--kill-grace", "300")
    st, ev, took = ed.command({"command": "for i in 1 2 3; do echo line$i; done; sleep 100",
                               "background": True})
    assert types(ev) == ["init"]
    cid = ev[0]["text"]
    assert ed.json("GET", "/command/" + cid)["running"] is True  # returned before the end
    deadline = time.monotonic() + 5
    while True:
        st, hdr, body = ed.request("GET", "/command/%s/logs" % cid)
        if body == b"line1\nline2\nline3\n" or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert st == 200 and body == b"line1\nline2\nline3\n"
    assert hdr["EXECD-COMMANDS-TAIL-CURSOR"] == "18"
    st, hdr, body = ed.request("GET", "/command/%s/logs?cursor=12" % cid)
    assert body == b"line3\n"
    s = ed.json("GET", "/command/" + cid)
    assert s["running"] is True and s["exit_code"] is None and s["background"] is True
    assert ed.json("GET", "/command/status/" + cid)["id"] == cid  # OpenSandbox path
    r = ed.json("DELETE", "/command/" + cid)
    assert r["interrupted"] is True
    deadline = time.monotonic() + 5
    while ed.json("GET", "/command/" + cid)["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    s = ed.json("GET", "/command/" + cid)
    assert s["running"] is False and s["signal"] == "SIGTERM" and s["finished_at"]
    st, _, body = ed.request("DELETE", "/command?id=" + cid)
    assert st == 409 and b"NOT_RUNNING" in body
    assert ed.request("GET", "/command/nope")[0] == 404
    assert ed.request("GET", "/command/nope/logs")[0] == 404


def test_interrupt_escalates_to_sigkill(execd):
    ed = execd("--kill-grace", "200")
    st, ev, _ = ed.command({"command": "trap '' TERM; echo ready; sleep 100",
                            "background": True})
    cid = ev[0]["text"]
    deadline = time.monotonic() + 10
    while ed.request("GET", "/command/%s/logs" % cid)[2] != b"ready\n":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    ed.json("DELETE", "/command/" + cid)
    deadline = time.monotonic() + 5
    while ed.json("GET", "/command/" + cid)["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ed.json("GET", "/command/" + cid)["signal"] == "SIGKILL"


def test_output_is_streamed_before_exit_and_big_output_is_complete(execd):
    ed = execd()
    st, ev, _ = ed.command({"command": "seq 1 200000"})
    out = "".join(e["text"] for e in ev if e["type"] == "stdout")
    assert out == "".join("%d\n" % i for i in range(1, 200001))


def test_command_limit(execd):
    ed = execd("--max-commands", "2")
    for _ in range(2):
        ed.command({"command": "sleep 5", "background": True})
    st, err, _ = ed.command({"command": "true"})
    assert st == 429 and err["code"] == "COMMAND_LIMIT"
