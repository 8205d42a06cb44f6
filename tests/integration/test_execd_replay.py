"""cordon execd: the replay ring — reconnect without gaps or duplicates,
loss reported when the ring overflowed, slow clients."""
import asyncio
import re
import time

import pytest
import websockets

from execd_fixtures import ANSI, CH_REPLAY, execd, run  # noqa: F401

SEQ_N = 200000
SEQ_BYTES = ("\n".join(str(i) for i in range(1, SEQ_N + 1)) + "\n").encode()


async def read_some(t, nbytes, until):
    """Reads until nbytes more output arrived or `until` shows up."""
    want = len(t.out) + nbytes
    while len(t.out) < want and until not in t.out and t.exit is None:
        await t.recv()


def test_reconnects_during_seq_in_a_pty_lose_and_repeat_nothing(execd):
    ed = execd("--ring-size", "8M")
    sid = ed.new_session()

    async def body():
        stream = b""
        since = 0
        chunks = 0
        async with ed.attach(sid, since=0) as t:
            await t.run("echo ready")
            await t.send_line('seq 1 %d; echo "E""ND"' % SEQ_N)
            await read_some(t, 100000, b"END\r\n")
            stream += t.out
            since = t.next_offset
            t.vanish()  # mid-stream, no close frame
        while b"END\r\n" not in stream:
            chunks += 1
            assert chunks < 50
            async with ed.attach(sid, since=since, takeover=1) as t:
                assert t.connected["lost_bytes"] == 0
                replay = [f for f in t.frames if f.channel == CH_REPLAY]
                if replay:
                    assert replay[0].offset == since
                await read_some(t, 200000, b"END\r\n")
                stream += t.out
                since = t.next_offset
                t.vanish()
        return stream, chunks

    stream, chunks = run(body())
    text = ANSI.sub("", stream.decode()).replace("\r", "")
    # the seq output sits between the echoed command and END
    start = text.rindex('seq 1 %d; echo "E""ND"' % SEQ_N)  # the last echo of the input
    lines = text[start:].split("\n")[1:]
    nums = []
    for ln in lines:
        if ln == "END":
            break
        nums.append(ln)
    assert nums == [str(i) for i in range(1, SEQ_N + 1)], "gap or duplicate in the sequence"
    assert chunks >= 1
    assert ed.status(sid)["running"]


def test_reconnects_in_pipe_mode_give_the_exact_bytes(execd):
    ed = execd("--ring-size", "4M")
    sid = ed.new_session(command="seq 1 %d" % SEQ_N)

    async def body():
        stream, since, rounds = b"", 0, 0
        while True:
            rounds += 1
            assert rounds < 100
            async with ed.attach(sid, route="ws", since=since, takeover=1) as t:
                await read_some(t, 64 * 1024, b"\xff")
                stream += t.out
                since = t.next_offset
                if t.exit is not None:
                    assert t.exit["exit_code"] == 0
                    return stream, rounds
                t.vanish()

    stream, rounds = run(body())
    assert stream == SEQ_BYTES
    assert rounds >= 2


def test_since_older_than_the_ring_reports_the_loss(execd):
    ed = execd("--ring-size", "64K")
    sid = ed.new_session(command="seq 1 100000", mode="pipe")
    st = ed.wait_exited(sid)
    total = st["output_offset"]
    assert total == len(b"".join(b"%d\n" % i for i in range(1, 100001)))
    assert st["oldest_offset"] == total - 65536

    async def body():
        async with ed.attach(sid, since=1000) as t:
            c = t.connected
            assert c["lost_bytes"] == total - 65536 - 1000
            assert c["replay_offset"] == total - 65536 and c["output_offset"] == total
            replay = [f for f in t.frames if f.channel == CH_REPLAY]
            assert len(replay) == 1 and replay[0].offset == total - 65536
            assert len(replay[0].data) == 65536
            assert replay[0].data.endswith(b"99999\n100000\n")
            f = await t.read_until_frame(lambda f: f.type == "exit")
            assert f.json["exit_code"] == 0

    run(body())


def test_since_defaults(execd):
    ed = execd()
    sid = ed.new_session(command="echo hello; sleep 30", mode="pty")
    deadline = time.monotonic() + 5
    while ed.status(sid)["output_offset"] < 7 and time.monotonic() < deadline:
        time.sleep(0.02)

    async def body():
        # /pty/{id}/ws without since: everything kept (OpenSandbox behaviour)
        async with ed.attach(sid) as t:
            assert b"hello" in t.out and t.connected["replay_offset"] == 0
        # since=tail: nothing old
        async with ed.attach(sid, since="tail") as t:
            assert t.out == b"" and t.connected["replay_offset"] == t.connected["output_offset"]
        # /ws/session/{id} without since: no replay (PR #455 behaviour)
        async with ed.attach(sid, route="ws") as t:
            assert t.out == b""
        # since past the end: clamped to the end
        async with ed.attach(sid, since=10 ** 12) as t:
            assert t.out == b"" and t.connected["lost_bytes"] == 0
        st, _, body = ed.request("GET", "/pty/%s/ws?since=12abc" % sid)
        assert st == 400 and b"INVALID_QUERY" in body

    run(body())


def test_a_client_that_stops_reading_is_told_what_it_lost(execd):
    ed = execd("--ring-size", "64K", "--client-stall", "200")
    sid = ed.new_session(command="seq 1 3000000")  # starts when we attach

    async def body():
        async with ed.attach(sid, pty=0, since=0, max_queue=1, read_limit=1 << 16,
                             write_limit=1 << 16) as t:
            first = ed.status(sid)["output_offset"]
            await asyncio.sleep(1.5)  # not reading: the shell is held, then let go
            second = ed.status(sid)["output_offset"]
            assert second > first + 4 * 65536, "output stopped flowing behind a stalled client"
            while t.exit is None:
                await t.recv(20)
            lost = [e for e in t.errors if e["code"] == "OUTPUT_LOST"]
            assert lost, "no OUTPUT_LOST frame"
            assert all(e["lost_bytes"] > 0 for e in lost)
            # every byte is either delivered or reported lost (at attach, or later)
            reported = t.connected["lost_bytes"] + sum(e["lost_bytes"] for e in lost)
            assert reported + len(t.out) == ed.status(sid)["output_offset"]
            # what did arrive is whole lines in order, ending with the last one
            assert t.out.endswith(b"2999999\n3000000\n")

    run(body())
    assert ed.status(sid)["exit_code"] == 0


@pytest.mark.parametrize("mode", ["pipe", "pty"])
def test_everything_before_the_exit_frame(execd, mode):
    """All output the shell wrote, in order, then exit: even when the client
    is slower than the shell and the pipes still hold data at the reap."""
    ed = execd()
    n = 1000000
    sid = ed.new_session(command="seq 1 %d" % n)

    async def body():
        async with ed.attach(sid, pty=int(mode == "pty"), since=0, max_queue=4) as t:
            while t.exit is None:
                await t.recv(30)
                if len(t.frames) % 50 == 0:
                    await asyncio.sleep(0.005)  # a slowish reader
            return t.out, t.errors

    out, errors = run(body())
    assert not errors
    want = "".join("%d\n" % i for i in range(1, n + 1)).encode()
    assert out.replace(b"\r\n", b"\n") == want
