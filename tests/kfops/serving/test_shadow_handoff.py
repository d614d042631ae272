"""What shadowing costs the event loop per request: an append, no callback of its own.

A real child and registry, the data plane driven on an event loop in this process (as in
test_shadow_batching). The loop's `call_soon` and `call_later` are wrapped to count the callbacks
the shadow lane and its child's handle schedule.
"""

import asyncio
import dataclasses

from kfops.serving import shadow
from tests.kfops.serving.test_rollout_serving import store  # noqa: F401 (the fixture)
from tests.kfops.serving.test_shadow_batching import _shadowing, _until_async


async def _ready(lane):
    """Starts the lane's shadow child and waits until it is ready; the child's handle."""
    lane.start()
    await _until_async(lambda: lane.worker.ready)
    return lane.worker


def test_a_request_schedules_no_callback_and_a_full_batch_is_written_after_the_answer(
    store,  # noqa: F811
    tmp_path,
):
    plane, lane, one = _shadowing(store, tmp_path)
    batches = 3

    async def run():
        loop, worker = asyncio.get_running_loop(), await _ready(lane)
        scheduled, written_in_request = [], []

        def counting(name):
            original = getattr(loop, name)

            def wrapper(*args, **kwargs):
                callback = args[1] if name == "call_later" else args[0]
                if getattr(callback, "__self__", None) in (lane, worker):
                    scheduled.append(callback.__name__)
                return original(*args, **kwargs)

            return wrapper

        loop.call_soon, loop.call_later = counting("call_soon"), counting("call_later")
        for i in range(batches * shadow.BATCH):
            frames = worker.frames
            request = dataclasses.replace(one, request_id=f"h{i}")
            await plane.infer_async(plane.resolve("churn"), request, "v1")
            written_in_request.append(worker.frames - frames)
            await asyncio.sleep(0)  # the handler writes its answer and yields, as over HTTP
        await _until_async(lambda: lane.shadowed == batches * shadow.BATCH)
        del loop.call_soon, loop.call_later
        await asyncio.to_thread(lane.close)
        return scheduled, written_in_request, worker.frames

    scheduled, written_in_request, frames = asyncio.run(run())
    # One timer for a batch's first request (the batch fills first: cancelled), one call_soon
    # for its flush: two callbacks per BATCH requests, not one per request.
    assert scheduled == ["flush_pending", "flush_pending"] * batches
    assert set(written_in_request) == {0}  # no frame is written while a request is answered
    assert frames == batches
    assert (lane.dropped, lane.off, lane.failed) == (0, 0, 0)


def test_requests_past_a_full_batch_before_its_flush_join_that_frame(store, tmp_path):  # noqa: F811
    plane, lane, one = _shadowing(store, tmp_path)
    extra = 3

    async def run():
        loop, worker, soon = asyncio.get_running_loop(), await _ready(lane), []
        original = loop.call_soon

        def counting(callback, *args, **kwargs):
            if getattr(callback, "__self__", None) is worker:
                soon.append(callback.__name__)
            return original(callback, *args, **kwargs)

        loop.call_soon = counting
        for i in range(shadow.BATCH + extra):  # no yield between them: the flush has not run
            request = dataclasses.replace(one, request_id=f"p{i}")
            await plane.infer_async(plane.resolve("churn"), request, "v1")
        del loop.call_soon
        await _until_async(lambda: lane.shadowed == shadow.BATCH + extra)
        await asyncio.to_thread(lane.close)
        return soon, worker.frames

    soon, frames = asyncio.run(run())
    assert soon == ["flush_pending"]  # one callback for the full batch, not one per request
    assert frames == 1  # the requests that came before it ran went out in the same frame
