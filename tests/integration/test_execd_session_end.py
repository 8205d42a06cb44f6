"""cordon execd: how a session's WebSocket stream ends, whatever the client's
speed. The end is every output byte (or an OUTPUT_LOST saying exactly which
bytes), then `exit`, then close 1000 — over a rate-limited link, after a
client stall longer than --client-stall, and the takeover (4001) and
too-big-message (1009) closes come after the output already queued.

The clients are raw sockets (lib/ws_drain_client.py) so a stall really
reads nothing and every frame is recorded in arrival order."""
import json
import os
import re
import subprocess

import pytest

from execd_fixtures import execd, run  # noqa: F401
from lib import netns as netns_lib
from lib import util

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "ws_drain_client.py")
N_LINES = 100000
EXPECTED = b"".join(b"%d\n" % i for i in range(1, N_LINES + 1))   # 588,895 bytes
# more than the kernel's socket buffers can hold for one stalled client
with open("/proc/sys/net/ipv4/tcp_wmem") as _f:
    _WMEM_MAX = int(_f.read().split()[2])
N_LONG = max(1500000, (_WMEM_MAX + (4 << 20)) // 7)
EXPECTED_LONG = b"".join(b"%d\n" % i for i in range(1, N_LONG + 1))   # >= 10.9 MB


def client_argv(host, port, path, *extra):
    return [netns_lib.python(), CLIENT, host, str(port), path] + [str(x) for x in extra]


def parse(proc_out):
    res = json.loads(proc_out)
    return res


def check_stream(res, expected, close_code=1000, want_exit=True):
    """Walks the frames in arrival order: every data byte is the command's
    byte at the client's offset; OUTPUT_LOST moves the offset exactly from
    where the client is to resume_offset; `exit` comes after the last byte
    and the close after `exit`. Returns (bytes received, bytes lost)."""
    assert res["error"] is None, res["error"]
    pos = None
    got = lost = 0
    out = res["stdout"].encode("latin-1")
    taken = 0
    seen_exit = None
    ev = res["events"]
    assert ev and ev[-1] == ["close", close_code], ev[-3:]
    for i, e in enumerate(ev[:-1]):
        assert seen_exit is None, "frame after exit: %r" % (e,)
        if e[0] == "data":
            _, ch, off, n = e
            assert ch == 1, e
            if off is not None:
                pos = off
            assert pos is not None, "data before the client knew its offset"
            data = out[taken:taken + n]
            taken += n
            assert data == expected[pos:pos + n], "byte %d..%d differs from the command's" % (
                pos, pos + n)
            pos += n
            got += n
        elif e[0] == "json":
            f = e[1]
            if f["type"] == "connected":
                if pos is None:
                    pos = f["output_offset"]
                assert pos == f["output_offset"], (f, pos)
            elif f["type"] == "error":
                assert f["code"] == "OUTPUT_LOST", f
                assert f["offset"] == pos, (f, pos)
                assert f["resume_offset"] - f["offset"] == f["lost_bytes"] > 0, f
                lost += f["lost_bytes"]
                pos = f["resume_offset"]
            elif f["type"] == "exit":
                seen_exit = f
            else:
                raise AssertionError("unexpected frame %r" % f)
    if want_exit:
        assert seen_exit is not None, "no exit frame before the close (%d bytes, pos %r)" % (
            got, pos)
        assert seen_exit["exit_code"] == 0, seen_exit
        assert pos == len(expected), "the stream ended at byte %r of %d" % (pos, len(expected))
    assert res["eof"], "the server did not close the socket after the close exchange"
    return got, lost


@pytest.mark.timeout(120)
def test_end_over_a_rate_limited_link(execd, netns_factory):
    """8 Mbit/s (tc tbf on the host side of a veth): six sessions that print
    588 KB each and exit; every client gets all of it, then exit, then 1000."""
    ns = netns_factory()
    util.run(["tc", "qdisc", "add", "dev", ns.veth_host, "root", "tbf", "rate", "8mbit",
              "burst", "32kb", "latency", "400ms"])
    ed = execd(host=ns.host_ip)
    procs = []
    for _ in range(6):
        sid = ed.new_session(command="seq 1 %d" % N_LINES)
        procs.append(ns.spawn(client_argv(ns.host_ip, ed.port, "/pty/%s/ws?pty=0&since=0" % sid,
                                          "--timeout", 60),
                              stdout=subprocess.PIPE))
    for p in procs:
        out, _ = p.communicate(timeout=100)
        got, lost = check_stream(parse(out), EXPECTED)
        assert got + lost == len(EXPECTED)


@pytest.mark.timeout(120)
def test_end_after_a_client_stall_longer_than_client_stall(execd, tmp_path):
    """The client reads nothing (--client-stall 100, a 64 KiB ring, a 16 KiB
    receive buffer) until its shell has exited, having printed more than the
    kernel's socket buffers hold; then it reads: OUTPUT_LOST for exactly the
    overwritten bytes, the rest, exit, close 1000."""
    ed = execd("--client-stall", "100", "--ring-size", "64K")
    procs = []
    for i in range(6):
        sid = ed.new_session(command="seq 1 %d" % N_LONG)
        release = str(tmp_path / ("release-%d" % i))
        procs.append((sid, release, subprocess.Popen(
            client_argv("127.0.0.1", ed.port, "/pty/%s/ws?pty=0&since=0" % sid,
                        "--rcvbuf", 16384, "--stall-after", "%d:%s" % (1 + i % 3, release),
                        "--timeout", 60), stdout=subprocess.PIPE)))
    for sid, release, p in procs:
        ed.wait_exited(sid, timeout=60)
        open(release, "w").close()
    for sid, release, p in procs:
        out, _ = p.communicate(timeout=100)
        got, lost = check_stream(parse(out), EXPECTED_LONG)
        assert got + lost == len(EXPECTED_LONG)
        assert lost > 0, "nothing lost: the kernel held all of it?"


@pytest.mark.timeout(60)
def test_takeover_close_comes_after_the_queued_output(execd, tmp_path):
    """Client A stops reading with output queued for it; B takes over. A
    gets every byte execd had taken from the ring for it (up to the offset
    execd logs at the takeover), gapless, then close 4001."""
    ed = execd("--client-stall", "60000", "--ring-size", "64K")
    sid = ed.new_session(command="seq 1 %d; sleep 30" % N_LONG)
    release = str(tmp_path / "release")
    a = subprocess.Popen(client_argv("127.0.0.1", ed.port, "/pty/%s/ws?pty=0&since=0" % sid,
                                     "--rcvbuf", 16384, "--stall-after", "1:" + release,
                                     "--timeout", 30), stdout=subprocess.PIPE)
    util.wait_until(lambda: ed.status(sid)["output_offset"] > 1 << 20, 20,
                    what="the session to produce 1 MB")

    async def take():
        async with ed.attach(sid, takeover=1, pty=0, since="tail") as t:
            await t.control(type="ping")
            await t.read_until_frame(lambda f: f.type == "pong")
    run(take())
    m = util.wait_until(lambda: re.search(r"taken over by a new client; the previous one gets "
                                          r"its output up to offset (\d+)", ed.stderr), 5,
                        what="the takeover log line")
    open(release, "w").close()
    out, _ = a.communicate(timeout=30)
    got, lost = check_stream(parse(out), EXPECTED_LONG, close_code=4001, want_exit=False)
    assert lost == 0
    assert got == int(m.group(1)), "A got %d bytes; execd had taken %s for it" % (
        got, m.group(1))


@pytest.mark.timeout(60)
def test_too_big_message_close_comes_after_the_queued_output(execd, tmp_path):
    """A client stops reading, then sends a message over --max-frame while
    output is queued for it: it gets that output (gapless: at least all but
    the ring's worth of what the shell printed, since a held shell never
    overwrites unsent bytes), then close 1009; the shell keeps running."""
    ed = execd("--client-stall", "60000", "--max-frame", "8K", "--ring-size", "64K")
    sid = ed.new_session(command="seq 1 %d; sleep 30" % N_LONG)
    release = str(tmp_path / "release")
    a = subprocess.Popen(client_argv("127.0.0.1", ed.port, "/pty/%s/ws?pty=0&since=0" % sid,
                                     "--rcvbuf", 16384, "--stall-after", "1:" + release,
                                     "--send-big", 65536, "--timeout", 30),
                         stdout=subprocess.PIPE)
    produced = util.wait_until(lambda: (lambda n: n if n > 1 << 20 else 0)(
        ed.status(sid)["output_offset"]), 20, what="the session to produce 1 MB")
    open(release, "w").close()
    out, _ = a.communicate(timeout=30)
    got, lost = check_stream(parse(out), EXPECTED_LONG, close_code=1009, want_exit=False)
    assert lost == 0
    assert got >= produced - 65536, "the client got %d bytes of %d" % (got, produced)
    assert ed.status(sid)["running"]
