"""cordon execd: sessions over WebSocket — shell state, PTY, signals, exit,
pipe mode, takeover, many sessions at once."""
import asyncio
import re

import pytest
import websockets

from execd_fixtures import (CH_STDERR, CH_STDOUT, execd, run, wait_child,  # noqa: F401
                            wait_gone)


@pytest.mark.parametrize("pty", [True, False], ids=["pty", "pipe"])
def test_shell_state_persists_across_inputs_and_reconnects(execd, pty):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid, pty=int(pty)) as t:
            assert t.connected["mode"] == ("pty" if pty else "pipe")
            await t.run("cd /tmp; X=1; f(){ echo hi; }; export Y=2; sleep 30 & true")
        # a disconnect in between: the same bash keeps its state
        async with ed.attach(sid, since="tail") as t:
            out = await t.run("pwd; echo $X; f; echo $Y; jobs | wc -l")
            assert out.split() == ["/tmp", "1", "hi", "2", "1"], out

    run(body())
    st = ed.status(sid)
    assert st["running"] and st["mode"] == ("pty" if pty else "pipe")


def test_pty_is_a_terminal_and_resize_applies(execd):
    ed = execd()
    sid = ed.new_session(cols=90, rows=30)

    async def body():
        async with ed.attach(sid) as t:
            out = await t.run("tty; stty size; echo $TERM")
            lines = out.split("\n")
            assert re.fullmatch(r"/dev/pts/\d+", lines[0]), out
            assert lines[1] == "30 90", out
            assert lines[2].startswith("xterm"), out
            await t.control(type="resize", cols=132, rows=43)
            out = await t.run("stty size")
            assert out.strip() == "43 132", out

    run(body())


@pytest.mark.parametrize("how", ["ctrl-c", "signal-frame"])
def test_interrupt_stops_the_job_and_the_shell_survives(execd, how):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid) as t:
            await t.run("echo ready")
            await t.send_line('sleep 100; echo "after""-sleep"')
            wait_child(ed.status(sid)["pid"], "sleep")  # the job runs in the foreground
            if how == "ctrl-c":
                await t.send(b"\x03")
            else:
                await t.control(type="signal", signal="SIGINT")
            out = await t.run("echo alive $?")   # (15 s limit; the sleep would take 100)
            assert "alive 130" in out, out
            assert b"after-sleep" not in t.out  # the whole line was interrupted

    run(body())
    assert ed.status(sid)["running"]


def test_signal_frame_in_pipe_mode_hits_the_job(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid, route="ws") as t:
            await t.run("echo ready")
            await t.send_line("sleep 100")
            wait_child(ed.status(sid)["pid"], "sleep")
            await t.control(type="signal", signal="SIGINT")
            out = await t.run("echo alive $?")
            assert "alive 130" in out

    run(body())


def test_exit_code_then_close_1000(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid) as t:
            await t.send_line("echo bye; exit 7")
            f = await t.read_until_frame(lambda f: f.type == "exit")
            assert f.json == {"type": "exit", "exit_code": 7}
            assert b"bye" in t.out
            with pytest.raises(websockets.ConnectionClosedOK) as ei:
                await t.recv()
            assert ei.value.rcvd.code == 1000

    run(body())
    st = ed.status(sid)
    assert st["running"] is False and st["exit_code"] == 7 and st["state"] == "EXITED"


def test_killed_by_signal_is_reported(execd):
    ed = execd()
    sid = ed.new_session(command="echo started; kill -9 $$")

    async def body():
        async with ed.attach(sid, since=0) as t:
            f = await t.read_until_frame(lambda f: f.type == "exit")
            assert f.json["exit_code"] == -1 and f.json["signal"] == "SIGKILL"
            assert b"started" in t.out

    run(body())
    st = ed.status(sid)
    assert st["signal"] == "SIGKILL" and st["exit_code"] == -1


def test_attach_after_exit_replays_and_reports_exit(execd):
    ed = execd()
    sid = ed.new_session(command="echo one; echo two >&2; exit 3", mode="pipe")
    ed.wait_exited(sid)

    async def body():
        async with ed.attach(sid, since=0) as t:
            assert t.connected["running"] is False
            f = await t.read_until_frame(lambda f: f.type == "exit")
            assert f.json["exit_code"] == 3
            # replay does not keep stdout and stderr apart (as OpenSandbox)
            assert sorted(t.out.split()) == [b"one", b"two"]

    run(body())


def test_pipe_mode_keeps_stderr_apart(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid, route="ws") as t:  # /ws/session defaults to pipes
            assert t.connected["mode"] == "pipe"
            await t.send_line("echo to-out; echo to-err >&2")
            await t.read_until(b"to-err\n", stream="err")
            await t.read_until(b"to-out\n")
            assert b"to-err" not in t.out and b"to-out" not in t.err
            chans = {f.channel for f in t.frames if f.channel is not None}
            assert chans == {CH_STDOUT, CH_STDERR}

    run(body())


def test_takeover_closes_the_first_client_with_4001(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid) as a:
            await a.run("echo first")
            with pytest.raises(websockets.InvalidStatusCode) as ei:
                async with ed.attach(sid, since="tail"):
                    pass
            assert ei.value.status_code == 409
            async with ed.attach(sid, since="tail", takeover=1) as b:
                with pytest.raises(websockets.ConnectionClosed) as ci:
                    while True:
                        await a.recv()
                assert ci.value.rcvd.code == 4001 and ci.value.rcvd.reason == "TAKEN_OVER"
                out = await b.run("echo second")
                assert out.strip() == "second"

    run(body())


def test_plain_get_with_takeover_does_not_evict(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid) as a:
            st, _, data = ed.request("GET", "/pty/%s/ws?takeover=1" % sid)
            assert st == 409 and b"ALREADY_CONNECTED" in data
            assert (await a.run("echo still")).strip() == "still"

    run(body())


def test_delete_kills_the_process_group_and_reports_exit(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid) as t:
            out = await t.run("sleep 1000 & echo $!")
            bg = int(out.split()[-1])
            st, _, _ = ed.request("DELETE", "/sessions/" + sid)
            assert st == 200
            f = await t.read_until_frame(lambda f: f.type == "exit")
            assert f.json["exit_code"] == -1 and f.json["signal"] == "SIGKILL"
            return bg

    bg = run(body())
    assert ed.request("GET", "/sessions/" + sid)[0] == 404
    assert ed.request("DELETE", "/pty/" + sid)[0] == 404
    assert wait_gone(bg), "background job %d survived DELETE" % bg


def test_json_ping_and_stdin_text_frame(execd):
    ed = execd()
    sid = ed.new_session()

    async def body():
        async with ed.attach(sid, route="ws") as t:
            await t.control(type="ping")
            f = await t.read_until_frame(lambda f: f.json is not None)
            assert f.json == {"type": "pong"}
            await t.control(type="stdin", data="echo via-text\n")
            await t.read_until(b"via-text\n")

    run(body())


@pytest.mark.timeout(60)
def test_100_sessions_at_once_each_echo_their_own_id(execd):
    ed = execd()
    ids = [ed.new_session() for _ in range(100)]
    assert len(ed.json("GET", "/sessions")["sessions"]) == 100

    async def one(i, sid):
        async with ed.attach(sid, pty=1 if i % 2 else 0) as t:
            out = await t.run("echo id-%s" % sid, timeout=30)
            assert out.strip() == "id-" + sid, out

    async def body():
        await asyncio.gather(*(one(i, s) for i, s in enumerate(ids)))

    run(body())
    for sid in ids:
        assert ed.request("DELETE", "/sessions/" + sid)[0] == 200
    assert ed.json("GET", "/sessions")["sessions"] == []
