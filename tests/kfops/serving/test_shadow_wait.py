"""The shadow lane waits for a moment with no champion request in flight without polling."""

import asyncio
import threading
import time
import types

from kfops import rollout
from kfops.serving import challenger


class _Plane:
    """A data plane whose answer blocks until the test releases it."""

    def __init__(self):
        self.release = asyncio.Event()

    async def answer_async(self, active, request, protocol, arrival):
        await self.release.wait()
        return types.SimpleNamespace(prediction=types.SimpleNamespace(predict=None))


def _lane() -> challenger.ChallengerLane:
    lane = challenger.ChallengerLane(managers=lambda version: None, events=None)
    # canary with share 0: every request is the champion's, and nothing is shadowed
    model = types.SimpleNamespace(version="1")
    lane.state = (rollout.Plan("2", rollout.CANARY, 0.0), types.SimpleNamespace(model=model))
    lane.max_yield_seconds = 5.0
    return lane


def test_shadow_job_waits_while_a_champion_request_is_in_flight_and_runs_once_it_ends():
    async def scenario():
        lane, plane = _lane(), _Plane()
        active = types.SimpleNamespace(model=types.SimpleNamespace(version="1"))
        request = types.SimpleNamespace(route_key="k", request_id="r")
        answer = asyncio.create_task(lane.infer(plane, active, request, "v1", 0.0))
        await asyncio.sleep(0.01)  # the request is now in flight
        waited = {}

        def shadow():
            start = time.monotonic()
            lane._until_idle()
            waited["seconds"] = time.monotonic() - start

        worker = threading.Thread(target=shadow)
        worker.start()
        await asyncio.sleep(0.2)
        assert "seconds" not in waited  # still waiting: a champion request is in flight
        plane.release.set()
        await answer
        await asyncio.to_thread(worker.join, 2.0)
        assert 0.15 < waited["seconds"] < 1.0  # released by the answer, not the 5 s cap

    asyncio.run(scenario())


def test_shadow_job_does_not_wait_when_no_champion_request_is_in_flight():
    lane = _lane()
    start = time.monotonic()
    lane._until_idle()
    assert time.monotonic() - start < 0.05
