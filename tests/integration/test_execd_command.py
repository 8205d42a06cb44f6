"""cordon execd: POST /command streams events, returns promptly, times out
whole process groups; background commands, logs, interrupt."""
import http.client
import json
import os
import time

import pytest

from execd_fixtures import Execd, execd, proc_gone, run, wait_child, wait_gone  # noqa: F401


def types(events):
    return [e["type"] for e in events]


def test_streams_and_returns_as_soon_as_the_process_exits(execd):
    ed = execd()
    st, ev, took = ed.command({"command": "echo one; sleep 0.3; echo two >&2; exit 4"})
    assert st == 200
    assert types(ev) == ["init", "stdout", "stderr", "exit", "error"], ev
    assert len(ev[0]["text"]) == 32
    assert ev[1]["text"] == "one" and ev[2]["text"] == "two"   # one event per line
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
    assert [e["text"] for e in ev if e["type"] == "stdout"] == ["/tmp", "bar"]
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
    assert types(ev) == ["init", "execution_complete"]   # as OpenSandbox: at once
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
    # line-buffered, so no line is ever split across two writes (a writer that
    # pauses mid-line for 100 ms would rightly get its partial line sent)
    st, ev, _ = ed.command({"command": "stdbuf -oL seq 1 200000"})
    out = [e["text"] for e in ev if e["type"] == "stdout"]
    assert out == [str(i) for i in range(1, 200001)]


def test_command_limit(execd):
    ed = execd("--max-commands", "2")
    for _ in range(2):
        ed.command({"command": "sleep 5", "background": True})
    st, err, _ = ed.command({"command": "true"})
    assert st == 429 and err["code"] == "COMMAND_LIMIT"


def test_one_event_per_line_blank_lines_and_cr(execd):
    # OpenSandbox's smoke test: printf 'a\n\nb\n\n\nc\n' gives a, \n, b, \n, \n, c
    ed = execd()
    st, ev, _ = ed.command({"command": r"printf 'a\n\nb\n\n\nc\n'"})
    assert [e["text"] for e in ev if e["type"] == "stdout"] == ["a", "\n", "b", "\n", "\n", "c"]
    # CR and LF both end a line, CRLF is one break; a last partial line is sent at exit
    st, ev, _ = ed.command({"command": r"printf 'x\r\ny\rz\n\xc3\xa9t\xc3\xa9'; printf 'e1\ne2' >&2"})
    assert [e["text"] for e in ev if e["type"] == "stdout"] == ["x", "y", "z", "\u00e9t\u00e9"]
    assert [e["text"] for e in ev if e["type"] == "stderr"] == ["e1", "e2"]
    # a line longer than 64 KiB arrives in pieces that add up to it
    st, ev, _ = ed.command({"command": "head -c 200000 /dev/zero | tr '\\0' x; echo"})
    parts = [e["text"] for e in ev if e["type"] == "stdout"]
    assert "".join(parts) == "x" * 200000, [len(p) for p in parts]
    assert len(parts) >= 4 and max(len(p) for p in parts) == 65536, [len(p) for p in parts]


def test_an_unfinished_line_is_sent_without_waiting_for_its_end(execd, tmp_path):
    """A prompt with no newline reaches the client while the command waits
    for input — checked by order: the command only goes on once the test has
    seen the prompt event."""
    ed = execd()
    fifo = str(tmp_path / "answer")
    os.mkfifo(fifo)
    conn = http.client.HTTPConnection("127.0.0.1", ed.port, timeout=20)
    try:
        conn.request("POST", "/command", body=json.dumps(
            {"command": "printf 'name? '; read x < %s; echo \"hi $x\"" % fifo}).encode(),
            headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        events = []
        while not any(e.get("text") == "name? " for e in events):
            line = r.readline()
            assert line, "the stream ended before the prompt: %r" % events
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
        with open(fifo, "w") as f:
            f.write("bob\n")
        rest = r.read()
    finally:
        conn.close()
    for block in rest.decode().split("\n\n"):
        if block.strip():
            events.append(json.loads(block[6:]))
    assert [e["text"] for e in events if e["type"] == "stdout"] == ["name? ", "hi bob"], events
    assert events[-1]["type"] == "execution_complete"


IGNORING_WRAPPER = """#!%s
import ctypes, os, platform, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
nr = {"x86_64": 13, "aarch64": 134}[platform.machine()]      # rt_sigaction
act = (ctypes.c_ulong * 4)(1, 0, 0, 0)                        # SIG_IGN
for s in (32, 33):
    assert ctypes.CDLL(None).syscall(nr, s, act, None, 8) == 0
os.execv(%r, [%r] + sys.argv[1:])
"""


def test_children_get_default_signal_dispositions(cordon_bin, tmp_path):
    """execd started the way a script starts a background job (SIGINT and
    SIGQUIT ignored): its commands and shells ignore nothing, so ^C and
    signal frames work."""
    # SIGINT, SIGQUIT, SIGHUP ignored, and 32 and 33 (glibc's own, which its
    # sigaction() refuses to touch; a parent had them ignored on this host)
    wrapper = tmp_path / "cordon-ignoring-int"
    wrapper.write_text(IGNORING_WRAPPER % ("/usr/bin/python3", cordon_bin, cordon_bin))
    wrapper.chmod(0o755)
    ed = Execd(str(wrapper), tmp_path, name="ignoring").start()
    try:
        with open("/proc/%d/status" % ed.proc.pid) as f:
            assert "SigIgn:\t0000000000000000" not in f.read()   # execd itself inherited them
        st, ev, _ = ed.command({"command": "grep SigIgn /proc/self/status"})
        assert [e["text"] for e in ev if e["type"] == "stdout"] == ["SigIgn:\t0000000000000000"]

        async def body():
            sid = ed.new_session()
            async with ed.attach(sid) as t:
                await t.run("echo ready")
                await t.send_line('sleep 100; echo "after""-sleep"')
                wait_child(ed.status(sid)["pid"], "sleep")
                await t.send(b"\x03")
                out = await t.run("echo alive $?")
                assert "alive 130" in out, out
        run(body())
    finally:
        assert ed.stop() == 0
