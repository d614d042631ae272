"""The server hands shadow work to its child in batches, and the child predicts each in one call.

A real child process and a real registry; the data plane is driven on an event loop in this
process, so which requests go out together does not depend on HTTP timing.
"""

import asyncio
import dataclasses
import time

import numpy as np

from kfops import labels, registry, rollout
from kfops.serving import app, model, settings, shadow, v1
from tests.kfops.serving import factories
from tests.kfops.serving.test_rollout_serving import (
    _events,
    _publish,
    _start,
    store,  # noqa: F401 (the fixture)
)
from tests.kfops.serving.test_shadow_process import Pid


class Rows(Pid):
    """Answers how many rows its predict call got: shows which requests were predicted together."""

    def predict(self, x):
        return np.full(len(x), len(x))


def _shadowing(backend, tmp_path, challenger=None):
    """A data plane shadowing challenger 2 (default `Rows`); its lane, and a one-row V1 request."""
    good, spec, df = factories.classifier()
    _publish(backend, tmp_path, good, Rows().fit(None, None) if challenger is None else challenger)
    _start(backend, "shadow")  # the pointer dates the events; the flag fixes the plan
    cfg = settings.ServeConfig(name="churn", challenger="2", poll_seconds=0, log_flush_seconds=0.2)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(backend)), backend)
    plane = application.state.plane
    one = v1.parse({"instances": factories.instances(df, 1)}, spec.feature_names, 1)
    return plane, plane.rollout, one


async def _until_async(check, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_a_full_batch_goes_at_once_the_rest_after_its_time_and_each_is_one_predict(
    store,  # noqa: F811
    tmp_path,
):
    plane, lane, one = _shadowing(store, tmp_path)
    first = [f"a{i}" for i in range(shadow.BATCH)]
    rest = [f"b{i}" for i in range(5)]

    async def send(ids):
        for rid in ids:
            request = dataclasses.replace(one, request_id=rid)
            await plane.infer_async(plane.resolve("churn"), request, "v1")
        await asyncio.sleep(0)  # the hand-offs (call_soon) run

    async def run():
        lane.start()
        await _until_async(lambda: lane.worker.ready)
        worker = lane.worker
        await send(first)
        after_first = worker.frames  # the BATCH-th request sent the frame, no timer needed
        await _until_async(lambda: lane.shadowed == shadow.BATCH)  # the child read it alone
        await send(rest)
        sent_at, after_rest = time.monotonic(), worker.frames  # held: the batch is not full
        await _until_async(lambda: worker.frames >= 2, seconds=5)  # no request, no close: the timer
        waited = time.monotonic() - sent_at
        await _until_async(lambda: lane.shadowed == shadow.BATCH + len(rest))
        await asyncio.to_thread(lane.close)
        return after_first, after_rest, waited, worker.frames

    after_first, after_rest, waited, frames = asyncio.run(run())
    assert (after_first, after_rest, frames) == (1, 1, 2)
    assert waited >= shadow.BATCH_SECONDS * 0.9
    assert (lane.dropped, lane.off, lane.failed) == (0, 0, 0)
    events = _events(store)
    said = events[events[rollout.ROLE] == "shadow"].set_index(labels.REQUEST_ID)
    assert list(said.loc[first, rollout.PREDICTION]) == [str(shadow.BATCH)] * shadow.BATCH
    assert list(said.loc[rest, rollout.PREDICTION]) == ["5"] * 5
    champion = events[events[rollout.ROLE] == "champion"]
    assert sorted(champion[labels.REQUEST_ID]) == sorted(first + rest)


def test_a_batch_validates_together_only_requests_alike_and_a_bad_one_fails_alone(
    store,  # noqa: F811
    tmp_path,
):
    """The challenger refuses plan "pro" (its schema's domain); the champion takes it.

    Requests with a null charge differ in value types, so they are validated apart; the batch
    that holds the refused requests is retried request by request: only those fail.
    """
    good, spec, df = factories.classifier()
    narrow = [dataclasses.replace(c, domain=("basic", "plus")) if c.name == "plan" else c
              for c in spec.columns]  # fmt: skip
    reg = registry.Registry(store)
    factories.publish(reg, "churn", good, spec, tmp_path)
    factories.publish(
        reg,
        "churn",
        Rows().fit(None, None),
        dataclasses.replace(spec, columns=tuple(narrow)),
        tmp_path,
        promote=False,
    )
    _start(store, "shadow")  # the pointer dates the events; the flag fixes the plan
    cfg = settings.ServeConfig(name="churn", challenger="2", poll_seconds=0, log_flush_seconds=0.2)
    application = app.build_app(cfg, model.RegistrySource(registry.Registry(store)), store)
    plane, lane = application.state.plane, application.state.plane.rollout
    rows = factories.instances(df, shadow.BATCH)
    for i, row in enumerate(rows):
        row["plan"] = "pro" if i < 4 else "basic"
        row["charges"] = None if 4 <= i < 7 else 50.0
    ids = [f"r{i}" for i in range(len(rows))]

    async def run():
        lane.start()
        await _until_async(lambda: lane.worker.ready)
        for rid, row in zip(ids, rows, strict=True):
            request = v1.parse({"instances": [row]}, spec.feature_names, 1)
            request = dataclasses.replace(request, request_id=rid)
            await plane.infer_async(plane.resolve("churn"), request, "v1")
        await _until_async(lambda: lane.shadowed + lane.failed == len(rows))
        await asyncio.to_thread(lane.close)

    asyncio.run(run())
    events = _events(store)
    said = events[events[rollout.ROLE] == "shadow"].set_index(labels.REQUEST_ID)
    assert (lane.shadowed, lane.failed) == (len(rows) - 4, 4)
    assert set(said.loc[ids[:4], rollout.ERROR]) == {"InvalidInput"}
    assert list(said.loc[ids[4:7], rollout.PREDICTION]) == ["3"] * 3  # the null charges, together
    assert set(said.loc[ids[7:], rollout.PREDICTION]) == {"1"}  # their batch, retried alone
    assert set(said.loc[ids[4:], rollout.ERROR]) == {""}


def test_jobs_still_queued_when_the_loop_is_gone_go_out_at_close(
    store,  # noqa: F811
    tmp_path,
):
    """A batch waiting for its timer when the loop ends is written by `close` (no loop)."""
    plane, lane, one = _shadowing(store, tmp_path)
    ids = [f"q{i}" for i in range(3)]

    async def run():
        lane.start()
        await _until_async(lambda: lane.worker.ready)
        for rid in ids:
            request = dataclasses.replace(one, request_id=rid)
            await plane.infer_async(plane.resolve("churn"), request, "v1")
        await asyncio.sleep(0)  # the hand-offs run; the batch waits for its timer
        return lane.worker.frames

    assert asyncio.run(run()) == 0
    lane.close()  # the loop is closed: the queued batch goes out here, then the pipe's end
    assert lane.worker.frames == 0  # not through the loop's path
    events = _events(store)
    said = events[events[rollout.ROLE] == "shadow"].set_index(labels.REQUEST_ID)
    assert list(said.loc[ids, rollout.PREDICTION]) == ["3"] * 3  # one predict call for the three
