"""A step's exit ends it even when the engine leaves its log stream open (podman's API did).

Seen here with podman 4.3.1's Docker API: a container "Exited (0) 14 minutes ago" while
`logs(stream=True, follow=True)` still waited, so the step (and a CI rehearsal) hung. The fake
engine below does just that: its follow stream delivers the first line, then stays open until it
is closed; the whole log, asked for without follow, has both lines.
"""

import threading
import time
from types import SimpleNamespace

from kfops import step_containers


class _StreamLeftOpen:
    def __init__(self, first: bytes):
        self.first, self.closed = first, threading.Event()

    def __iter__(self):
        yield self.first
        self.closed.wait(60)  # open after the container exited, until someone closes it

    def close(self):
        self.closed.set()


class _ExitedContainer:
    def __init__(self):
        self.stream, self.removed = _StreamLeftOpen(b"step one\n"), False

    def logs(self, stream=False, follow=False):
        return self.stream if stream and follow else b"step one\nstep two\n"

    def wait(self):
        return {"StatusCode": 3}

    def remove(self, force=False):
        self.removed = True


def test_a_log_stream_left_open_after_the_exit_does_not_hang_the_step(monkeypatch, capsys):
    monkeypatch.setattr(step_containers, "LOG_GRACE_S", 0.2)
    container = _ExitedContainer()
    client = SimpleNamespace(
        images=SimpleNamespace(get=lambda image: None),
        containers=SimpleNamespace(run=lambda **kwargs: container),
    )
    start = time.monotonic()
    code = step_containers.run_step_container(client, "kfops:test", ["true"], {})
    assert code == 3 and time.monotonic() - start < 5
    out = capsys.readouterr().out
    assert out.count("step one") == 1 and out.count("step two") == 1
    assert container.stream.closed.is_set() and container.removed
