"""`server.running` stops its in-thread server at once, not at uvicorn's next tick.

The tick is made far longer than the test allows: only the wake-up `stop` sends can end the
main loop in time (without it the exit would wait the whole tick).
"""

from __future__ import annotations

import time

import httpx

from kfops.serving import server


async def _app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_running_exits_without_waiting_for_a_tick(monkeypatch):
    monkeypatch.setattr(server._Stoppable, "tick_seconds", 60.0)
    with server.running(_app, drain_seconds=1.0) as url:
        assert httpx.get(f"{url}/x").text == "ok"
        time.sleep(0.2)  # the main loop is inside its (60 s) wait
        start = time.monotonic()
    assert time.monotonic() - start < 5.0


def test_stop_before_the_loop_runs_still_stops():
    srv = server._Stoppable(server.uvicorn.Config(_app, lifespan="off"))
    srv.stop()  # no loop yet: only the flag, which the first tick reads
    assert srv.should_exit
