"""A shadowed request counts as answered only when its evidence is kept.

The shadow child's event-log writer runs on idle CPU only (kfops.serving.shadow._background): under
saturation it falls behind, its buffer fills, and the buffer refuses events. Such a request was
not shadowed as far as the rollout's verdict can tell, so the child acks it `dropped`. A real
child and registry; the writer is held back by a flush threshold it never reaches (as a writer
that gets no CPU would be), and the buffer made small.
"""

import asyncio
import dataclasses
import time

import pytest

from kfops import labels, rollout
from kfops.serving import shadow
from tests.kfops.serving.test_rollout_serving import (  # noqa: F401 (the fixture)
    Exploding,
    _events,
    store,
)
from tests.kfops.serving.test_shadow_batching import _shadowing, _until_async

SENT, KEPT = 10, 2  # one frame; the buffer takes every champion event and KEPT shadow ones


def _through_a_small_buffer(store, tmp_path, challenger=None):  # noqa: F811
    """SENT one-row requests shadowed as one frame by a child whose event buffer holds
    SENT + KEPT rows and is never flushed before the lane closes; (shadowed, dropped, failed,
    off) and the request ids."""
    plane, lane, one = _shadowing(store, tmp_path, challenger)
    lane.worker_spec = {
        **lane.worker_spec,
        "events": {"queue_rows": SENT + KEPT, "flush_rows": 10**6, "flush_seconds": 3600.0},
    }
    ids = [f"e{i}" for i in range(SENT)]
    assert SENT < shadow.BATCH

    async def run():
        lane.start()
        await _until_async(lambda: lane.worker.ready)
        for rid in ids:  # no yield: they go out as one frame, after the batch's timer
            request = dataclasses.replace(one, request_id=rid)
            await plane.infer_async(plane.resolve("churn"), request, "v1")
        await _until_async(lambda: lane.shadowed + lane.dropped + lane.failed == SENT)
        counts = lane.shadowed, lane.dropped, lane.failed, lane.off
        await asyncio.to_thread(lane.close)  # the child drains what its buffer kept
        return counts

    return asyncio.run(run()), ids


def test_requests_whose_events_the_full_buffer_refuses_are_counted_dropped(store, tmp_path):  # noqa: F811
    counts, ids = _through_a_small_buffer(store, tmp_path)
    assert counts == (KEPT, SENT - KEPT, 0, 0)
    events = _events(store)
    champion = events[events[rollout.ROLE] == "champion"]
    assert sorted(champion[labels.REQUEST_ID]) == sorted(ids)
    # the child records every champion answer of the frame first, then the challenger's
    assert list(events[events[rollout.ROLE] == "shadow"][labels.REQUEST_ID]) == ids[:KEPT]


def test_failures_whose_events_the_full_buffer_refuses_are_counted_dropped(store, tmp_path):  # noqa: F811
    """A failing challenger's failure is evidence too (an error row): one refused is `dropped`."""
    counts, ids = _through_a_small_buffer(store, tmp_path, Exploding().fit(None, None))
    assert counts == (0, SENT - KEPT, KEPT, 0)
    events = _events(store)
    shadow_events = events[events[rollout.ROLE] == "shadow"]
    assert list(shadow_events[labels.REQUEST_ID]) == ids[:KEPT]
    assert (shadow_events[rollout.ERROR] != "").all()  # error rows: the failures it kept


class _RefusingChampionOf:
    """The child's real event log, except that it refuses the champion event of one request."""

    def __init__(self, events, request_id):
        self.events, self.request_id, self.kept = events, request_id, []

    def record(self, request_id, pair, version, role, *args, **kwargs):
        if role == "champion" and request_id == self.request_id:
            return False
        self.kept.append((role, request_id))
        return self.events.record(request_id, pair, version, role, *args, **kwargs)

    def close(self, timeout):
        self.events.close(timeout)


@pytest.mark.parametrize("failing", [False, True], ids=["answering", "failing"])
def test_a_request_whose_champion_event_is_refused_logs_no_challenger_event(
    store,  # noqa: F811
    tmp_path,
    failing,
):
    """Neither its answer nor, from a failing challenger, its error row."""
    _, lane, one = _shadowing(store, tmp_path, Exploding().fit(None, None) if failing else None)
    worker = shadow._Worker({**lane.worker_spec, "version": "2"})  # the child's side, in process
    refusing = worker.events = _RefusingChampionOf(worker.events, "p1")
    jobs = [
        (rid, ("1", "2"), 1e-4, [1], time.time_ns(), one.columns, one.n_rows, one.problems)
        for rid in ("p0", "p1", "p2")
    ]
    try:
        acks = worker.answer(jobs)
    finally:
        worker.close()
    done = shadow.FAILED if failing else shadow.ANSWERED
    assert acks == [done, shadow.DROPPED, done]
    # never half a pair in the evidence: p1 has neither event
    assert sorted(refusing.kept) == sorted(
        [("champion", "p0"), ("champion", "p2"), ("shadow", "p0"), ("shadow", "p2")]
    )
