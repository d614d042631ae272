"""`server.running` stops its in-thread server at once, not at uvicorn's next tick.

The tick is made far longer than the test allows: only the wake-up `stop` sends can end the
main loop in time (without it the exit would wait the whole tick). A server stopped before it
runs exits at once too, having answered nothing.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

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


def test_a_server_stopped_before_it_runs_exits_at_once_and_serves_nothing(monkeypatch):
    monkeypatch.setattr(server._Stoppable, "tick_seconds", 60.0)
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])
        await _app(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/x"
    srv = server._Stoppable(server.uvicorn.Config(app, lifespan="on", log_config=None))
    srv.stop()  # before `run`: no loop to wake yet
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(5.0)
    took, ran_on = time.monotonic() - start, thread.is_alive()
    if ran_on:  # stop it for real, so a failure does not leave a server behind
        srv.should_exit = True
        if srv._loop is not None:  # None: it hangs before its main loop; the flag is all there is
            srv._loop.call_soon_threadsafe(srv._wake.set)
        thread.join(5.0)
    try:
        with pytest.raises(httpx.ConnectError):  # refused; a port that accepts and hangs times out
            httpx.get(url, timeout=1.0)
    finally:
        sock.close()
    assert not ran_on and took < 5.0
    assert seen == ["lifespan"]  # started up and shut down; no request reached the app
