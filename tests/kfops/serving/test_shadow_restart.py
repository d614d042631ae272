"""A shadow child killed mid-run is replaced after its backoff, and never on the request path.

A real server over real HTTP and a real child, SIGKILLed. The app is wrapped in an ASGI layer that
knows which requests have not yet written their answer, and the lane's `ShadowProcess.start` is
wrapped to note, when the new child is started, which answers were still unwritten and whether a
request's task was running: the restart must come from a loop callback after the answer
(`ChallengerLane._submit`), so a request never waits for a fork and exec.
"""

import asyncio
import os
import signal
import time

import httpx
import pandas as pd

from kfops import labels, registry, rollout
from kfops.serving import app, challenger, model, server, settings, shadow
from tests.kfops.serving import factories
from tests.kfops.serving.test_rollout_serving import (
    _events,
    _publish,
    _start,
    _traffic,
    shadow_ready,
    store,  # noqa: F401 (the fixture)
)
from tests.kfops.serving.test_shadow_process import Pid, _metric, _until


class _Unanswered:
    """ASGI wrapper: the HTTP requests in flight whose answer's last body part is not yet sent."""

    def __init__(self, application):
        self.app, self.open = application, set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = object()
        self.open.add(token)

        async def sending(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.open.discard(token)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.open.discard(token)


def _answer(response):
    """What the champion answered, without the request's id."""
    body = response.json()
    return body["model_version"], body["predictions"], body["probabilities"]


def test_a_killed_child_is_replaced_after_its_backoff_from_a_callback_after_the_answer(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    good, spec, df = factories.classifier()
    _publish(store, tmp_path, good, Pid().fit(None, None))  # the challenger answers its pid
    _start(store, "shadow")
    starts = []  # per child started: (its handle, unanswered requests, a task was running)

    class Recorded(shadow.ShadowProcess):
        def start(self):
            starts.append((self, len(wrapped.open), asyncio.current_task() is not None))
            super().start()

    monkeypatch.setattr(challenger.shadow, "ShadowProcess", Recorded)
    cfg = settings.ServeConfig(name="churn", poll_seconds=0.1, log_flush_seconds=0.2)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(store)), store)
    wrapped = _Unanswered(application)
    lane = application.state.plane.rollout
    with (
        server.running(wrapped) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        shadow_ready(application)
        before = _traffic(client, df, 10)
        _until(lambda: lane.shadowed == 10)
        first = lane.worker
        os.kill(first.pid, signal.SIGKILL)  # mid-run: between requests, its pipe open
        _until(lambda: first.off)  # the server saw the ack pipe close
        dead = []  # answered while the dead child was still the lane's: counted off
        trigger = []  # the request whose hand-off started the new child
        deadline = time.monotonic() + 60
        while not trigger:
            assert time.monotonic() < deadline, "the shadow child was not restarted"
            sent = _traffic(client, df, 1, start=len(dead) % 10)  # the rows `before` asked
            # The hand-off runs in a callback queued by the answer; a request made after the
            # answer arrived is handled after that callback has run, so the lane's child is now
            # the one this request's job went to.
            client.get("/v2/health/live")
            (dead if lane.worker is first else trigger).extend(sent)
            time.sleep(0.02)
        second = lane.worker
        off_metric = _metric(client, "off")
        restarts = [line for line in client.get("/metrics").text.splitlines()
                    if line.startswith("kfops_shadow_restarts_total ")]  # fmt: skip
        shadow_ready(application)
        after = _traffic(client, df, 10)
        _until(lambda: lane.shadowed == 10 + 1 + 10)  # the trigger's job went to the new child
        answered_metric = _metric(client, "answered")
    sent = before + dead + trigger + after
    # (a) the champion answered every request, the same answer as with no rollout at all
    assert {r.status_code for _, r in sent} == {200}
    assert {r.json()["model_version"] for _, r in sent} == {"1"}
    rows = pd.DataFrame(factories.instances(df, 10, 0), columns=spec.feature_names)
    assert [r.json()["predictions"] for _, r in before] == [[p] for p in good.predict(rows)]
    rows_asked = [*range(10), *(k % 10 for k in range(len(dead) + 1)), *range(10)]
    assert [_answer(r) for _, r in sent] == [_answer(before[k][1]) for k in rows_asked]
    # (b) every request in the dead window was counted off, and nothing else was
    assert dead and lane.off == len(dead) == off_metric
    assert (lane.dropped, lane.failed) == (0, 0)
    # (c) one restart, after the backoff, a new process that answers
    assert [w for w, *_ in starts] == [first, second]
    assert lane.restarts == 1 and restarts == ["kfops_shadow_restarts_total 1.0"]
    assert second.started_at - first.lost_at >= challenger.RESTART_FIRST
    assert second.pid not in (first.pid, os.getpid())
    assert answered_metric == lane.shadowed == 21
    events = _events(store).set_index(labels.REQUEST_ID)
    shadow_events = events[events[rollout.ROLE] == "shadow"]
    assert set(shadow_events.loc[[rid for rid, _ in trigger + after], rollout.PREDICTION]) == {
        str(second.pid)
    }
    # (d) the new child was started once the trigger's answer was written, from a callback
    _, unanswered, in_task = starts[1]
    assert (unanswered, in_task) == (0, False)
    assert second.proc.poll() == 0  # it drained and exited with the server
