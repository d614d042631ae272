"""Each answer leaves the server in one write (issue #16), without holding back streamed headers.

The server's real uvicorn protocol runs on a real socket; a subclass records what reaches the
connection's transport, so the test sees the writes themselves rather than how TCP merged them.
"""

import asyncio
import json
import socket
import threading
import time

import pytest

from kfops.serving import server
from tests.kfops.serving import factories


class _Recorder:
    """The connection's transport, noting each write before passing it on."""

    def __init__(self, transport, writes):
        self._transport, self._writes = transport, writes

    def write(self, data):
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name):
        return getattr(self._transport, name)


@pytest.fixture
def writes(monkeypatch):
    """The writes of every connection `server.running` accepts during the test."""
    seen: list[bytes] = []

    class Recording(server.OneWriteProtocol):
        def connection_made(self, transport):
            super().connection_made(_Recorder(transport, seen))

    monkeypatch.setattr(server, "OneWriteProtocol", Recording)
    return seen


def _exchange(url: str, request: bytes, expect_continue_then: bytes = b"") -> bytes:
    """Sends a raw HTTP/1.1 request (the body after 100 Continue if given); the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if expect_continue_then:
            assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(expect_continue_then)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _length(data):
            data += sock.recv(65536)
        return data


def _length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    size = next(int(ln.split(b":")[1]) for ln in lines if ln.startswith(b"content-length:"))
    return len(head) + 4 + size


def test_inference_and_route_answers_are_one_write_each(serve, clf, writes):
    pipeline, spec, df = clf
    running = serve(pipeline, spec)
    body = b'{"instances": %s}' % json.dumps(factories.instances(df, 1)).encode()
    predict = (
        b"POST /v1/models/churn:predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    answer = _exchange(running.url, predict + body)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'"predictions":[' in answer
    assert writes == [answer]
    writes.clear()
    live = _exchange(running.url, b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
    assert live.endswith(b'{"live":true}') and writes == [live]
    writes.clear()
    # Expect: 100-continue: the interim answer goes out at once (the client waits for it before
    # sending the body), then the answer in one write.
    answer = _exchange(running.url, predict[:-2] + b"expect: 100-continue\r\n\r\n", body)
    assert writes == [b"HTTP/1.1 100 Continue\r\n\r\n", answer]
    assert b'"predictions":[' in answer


def test_streamed_headers_are_sent_before_a_late_body(writes):
    """A body that comes later does not hold the headers back (they go out within a loop step)."""
    headers_seen = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"4")],
            }
        )
        deadline = time.monotonic() + 5
        while not headers_seen.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"late"})

    with server.running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            sock.settimeout(2)
            head = sock.recv(4096)  # times out if the headers wait for the body
            headers_seen.set()
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
            sock.settimeout(10)
            assert sock.recv(4096) == b"late"
    assert len(writes) == 2 and writes[1] == b"late"
