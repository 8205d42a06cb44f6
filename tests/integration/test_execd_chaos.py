"""cordon execd: many clients doing odd things at once (fixed seed). Passes
when execd survives, stays consistent, and (under ASan) reports nothing."""
import asyncio
import json
import random

import pytest
import websockets

from execd_fixtures import execd, run  # noqa: F401

ACTIONS = ["attach_read", "takeover", "vanish", "junk", "stdin_flood", "delete", "create",
           "command", "resize", "signal"]


@pytest.mark.timeout(90)
def test_chaos(execd):
    ed = execd("--ring-size", "64K", "--client-stall", "100", "--max-frame", "8K",
               "--ws-ping-interval", "300", "--kill-grace", "100")
    rnd = random.Random(1234)
    sids = [ed.new_session(command="while :; do seq 1 200; sleep 0.01; done") for _ in range(4)]
    sids += [ed.new_session() for _ in range(4)]

    async def attach(sid, **q):
        return await websockets.connect(ed.ws_url(sid, **q), ping_interval=None,
                                        close_timeout=0.2, max_size=None)

    async def one(i):
        r = random.Random(i)
        for _ in range(15):
            act = r.choice(ACTIONS)
            sid = r.choice(sids)
            try:
                if act == "attach_read":
                    ws = await attach(sid, since=r.choice([0, "tail", 10 ** 9]), takeover=1)
                    for _ in range(r.randint(1, 20)):
                        await asyncio.wait_for(ws.recv(), 1)
                    await ws.close()
                elif act == "takeover":
                    a = await attach(sid, takeover=1)
                    b = await attach(sid, takeover=1)
                    await b.send(b"\x00echo x\n")
                    await a.close()
                    await b.close()
                elif act == "vanish":
                    ws = await attach(sid, takeover=1)
                    await ws.send(b"\x00" + b"y" * r.randint(0, 100))
                    ws.transport.abort()
                elif act == "junk":
                    ws = await attach(sid, takeover=1)
                    for m in ["{", '{"type":"resize","cols":-1}', b"\x05", b"", "[]",
                              json.dumps({"type": "signal", "signal": "SIGWINCH"})]:
                        await ws.send(m)
                    await ws.send(b"\x00" + b"z" * 9000)  # over --max-frame: 1009
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 1)
                    except websockets.ConnectionClosed:
                        pass
                elif act == "stdin_flood":
                    ws = await attach(sid, takeover=1)
                    for _ in range(50):
                        await ws.send(b"\x00" + b"#" * 4000 + b"\n")
                    ws.transport.abort()
                elif act == "delete":
                    ed.request("DELETE", "/sessions/" + sid)
                elif act == "create":
                    sids.append(ed.new_session())
                elif act == "command":
                    ed.command({"command": r.choice(["seq 1 50000", "sleep 5", "exit 3"]),
                                "timeout_ms": 200, "background": r.random() < 0.5})
                elif act == "resize":
                    ws = await attach(sid, takeover=1, pty=1)
                    await ws.send(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
                    await ws.close()
                elif act == "signal":
                    ws = await attach(sid, takeover=1)
                    await ws.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
                    await ws.close()
            except (websockets.InvalidStatusCode, websockets.ConnectionClosed,
                    asyncio.TimeoutError, ConnectionError):
                pass

    async def body():
        await asyncio.gather(*(one(rnd.randint(0, 10 ** 6)) for _ in range(12)))

    run(body())
    assert ed.alive()
    assert ed.request("GET", "/ping")[0] == 200
    for s in ed.json("GET", "/sessions")["sessions"]:
        assert s["state"] in ("CREATED", "RUNNING", "EXITING", "EXITED")
        assert s["output_offset"] >= s["oldest_offset"]
