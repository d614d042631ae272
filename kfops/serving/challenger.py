"""The challenger lane: a second model version beside the champion, in shadow or canary mode.

Shadow: the champion answers; once the response is on its way (the hand-off is scheduled with
`loop.call_soon`, which runs after the handler has written its answer) the request goes to one
background thread where the challenger validates and predicts it. The queue is bounded: when
the challenger falls behind, requests are not shadowed (counted in `dropped`), never delayed.
Canary: a request whose key (the `--rollout-key-header` value, else its request id) hashes into
the configured share is answered by the challenger; the same key always lands on the same side,
in every worker and replica, because the hash is not salted. Either way both answers are logged
as rollout events (kfops.rollout.EVENT_COLUMNS) with the request id and the answering version,
and a challenger that raises in shadow mode is an event, never a failed request.

The plan comes from `kfops serve --challenger` or from the registry's rollout pointer, which the
lane polls like the champion pointer.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import hashlib
import io
import logging
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors, labels, rollout
from kfops.serving import inference_log
from kfops.serving import manager as mgr

log = logging.getLogger("kfops.serving")
CHAMPION_ROLE = "champion"
_SPACE = 2**64


def routed(key: str, share: float) -> bool:
    """Whether a request key goes to the canary: the same key always gets the same answer."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * _SPACE


@dataclasses.dataclass(frozen=True)
class _Event:
    request_id: str
    champion: str
    challenger: str
    version: str
    role: str
    seconds: float
    error: str
    predict: np.ndarray | None
    timestamp_ns: int

    @property
    def rows(self) -> int:
        return 1 if self.predict is None else len(self.predict)


class EventLog(inference_log.InferenceLogger):
    """Rollout events, buffered and written like the inference log, under rollouts/<name>/."""

    def __init__(self, store, model_name: str, **kw):
        super().__init__(store, model_name, 1.0, **kw)

    def record(self, request_id, pair, version, role, seconds, predict=None, error="") -> None:
        """Queues one answered (or failed) request; never blocks."""
        self._enqueue(
            _Event(request_id, *pair, version, role, seconds, error, predict, time.time_ns())
        )

    def _key(self) -> str:
        return rollout.events_key(self.model_name, dt.datetime.now(dt.UTC), uuid.uuid4().hex)

    def _encode(self, chunks: list[_Event]) -> bytes:
        counts = [c.rows for c in chunks]
        text, value, row = [], [], []
        for c in chunks:
            if c.predict is None:
                text.append(np.array([""], dtype=object))
                value.append(np.array([np.nan]))
                row.append(np.array([-1]))
                continue
            text.append(c.predict.astype(str).astype(object))
            value.append(_floats(c.predict))
            row.append(np.arange(c.rows))

        def each(attr):
            return np.repeat(np.array([getattr(c, attr) for c in chunks], dtype=object), counts)

        stamps = np.repeat(np.array([c.timestamp_ns for c in chunks], "datetime64[ns]"), counts)
        columns = {
            labels.REQUEST_ID: each("request_id"),
            labels.ROW: np.concatenate(row).astype("int64"),
            rollout.CHAMPION: each("champion"),
            rollout.CHALLENGER: each("challenger"),
            rollout.VERSION: each("version"),
            rollout.ROLE: each("role"),
            rollout.SECONDS: np.repeat([c.seconds for c in chunks], counts),
            rollout.ERROR: each("error"),
            rollout.PREDICTION: np.concatenate(text),
            rollout.VALUE: np.concatenate(value),
        }
        table = {k: pa.array(v) for k, v in columns.items()}
        table[rollout.TIMESTAMP] = pa.array(stamps, type=pa.timestamp("ns", tz="UTC"))
        sink = io.BytesIO()
        pq.write_table(pa.table(table), sink, compression="snappy")
        return sink.getvalue()


def _floats(arr: np.ndarray) -> np.ndarray:
    try:
        return arr.astype(float)
    except (TypeError, ValueError):
        return np.full(len(arr), np.nan)


class ChallengerLane:
    """Runs the plan's challenger beside the data plane's champion.

    Args:
        managers: makes a pinned `ModelManager` for a version (the challenger's own validator
            and fast path, loaded and warmed up like the champion).
        events: where both answers go; None records nothing (no store).
        plan_reader: returns the current plan (the registry pointer); None: the plan is fixed.
        fixed: the plan from flags, if any.
        max_pending: shadow requests queued at most; beyond it they are dropped and counted.
        max_yield_seconds: the longest a shadow job waits for a moment without champion
            requests in flight before it runs anyway.
        on_shadow: callback(outcome) per shadowed request: answered, failed or dropped.
    """

    def __init__(
        self,
        managers: Callable[[str], mgr.ModelManager],
        events: EventLog | None,
        plan_reader: Callable[[], rollout.Plan | None] | None = None,
        fixed: rollout.Plan | None = None,
        max_pending: int = 1024,
        max_yield_seconds: float = 0.02,
        on_shadow: Callable[[str], None] | None = None,
    ):
        self.managers, self.events, self.plan_reader = managers, events, plan_reader
        self.state: tuple[rollout.Plan, mgr.Active] | None = None
        self.max_pending, self.dropped, self.shadowed = max_pending, 0, 0
        self.busy, self.max_yield_seconds = 0, max_yield_seconds
        self._idle = threading.Event()  # set while no champion request is in flight
        self._idle.set()
        self._on_shadow = on_shadow or (lambda outcome: None)
        self._jobs: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="kfops-shadow", daemon=True)
        if fixed is not None:
            self.apply(fixed)

    def apply(self, plan: rollout.Plan | None) -> None:
        """Loads the plan's challenger (blocking) and swaps the plan in; None stops the rollout.

        Raises:
            KfopsError: the challenger cannot be served; the previous plan stays.
        """
        current = self.state
        if plan is None or (current is not None and current[0] == plan):
            self.state = None if plan is None else current
            return
        if current is not None and current[1].model.version == plan.version:
            active = current[1]
        else:
            manager = self.managers(plan.version)
            active = manager.load(plan.version)
        self.state = (plan, active)  # one assignment: a request sees the old or the new plan
        log.info("rollout", extra={"challenger": plan.version, "mode": plan.mode})

    def follow(self) -> None:
        """Applies the registry's current plan (polled off the event loop)."""
        if self.plan_reader is not None:
            self.apply(self.plan_reader())

    async def poll(self, interval: float) -> None:
        """Follows the rollout pointer every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.follow)
            except Exception as e:  # noqa: BLE001 (a bad challenger must not stop the champion)
                log.warning("rollout reload failed; keeping the plan", extra={"error": str(e)})

    def start(self) -> None:
        """Starts the shadow worker."""
        self._thread.start()

    def close(self) -> None:
        """Stops the shadow worker after the queued requests."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(10.0)

    async def infer(self, plane, active: mgr.Active, request, protocol: str, arrival):
        """Answers one request: champion or canary, then hands the shadow its copy."""
        state = self.state
        if state is None:
            return await plane.answer_async(active, request, protocol, arrival)
        self.busy += 1  # the event loop's thread only: no lock needed
        if self.busy == 1:
            self._idle.clear()
        try:
            return await self._answer(plane, active, request, protocol, arrival, state)
        finally:
            self.busy -= 1
            if not self.busy:
                self._idle.set()

    async def _answer(self, plane, active, request, protocol, arrival, state):
        plan, challenger = state
        pair = (active.model.version, challenger.model.version)
        key = request.route_key or request.request_id
        if plan.mode == rollout.CANARY and routed(key, plan.share):
            return await self._timed(plane, challenger, request, protocol, arrival, pair, "canary")
        result = await self._timed(plane, active, request, protocol, arrival, pair, CHAMPION_ROLE)
        if plan.mode == rollout.SHADOW:
            # Runs once this handler has written its answer and yielded to the loop.
            asyncio.get_running_loop().call_soon(self._submit, challenger, request, pair)
        return result

    async def _timed(self, plane, active, request, protocol, arrival, pair, role):
        start = time.perf_counter()
        try:
            result = await plane.answer_async(active, request, protocol, arrival)
        except errors.KfopsError as e:
            if e.http_status >= 500:  # the model failed, not the caller
                self._record(request, pair, active, role, start, error=type(e).__name__)
            raise
        except Exception as e:
            self._record(request, pair, active, role, start, error=type(e).__name__)
            raise
        self._record(request, pair, active, role, start, result.prediction.predict)
        return result

    def _record(self, request, pair, active, role, start, predict=None, error="") -> None:
        if self.events is not None:
            seconds = time.perf_counter() - start
            self.events.record(
                request.request_id, pair, active.model.version, role, seconds, predict, error
            )

    def _submit(self, challenger: mgr.Active, request, pair) -> None:
        with self._cond:
            if len(self._jobs) >= self.max_pending or self._closed:
                self.dropped += 1
                self._on_shadow("dropped")
                return
            self._jobs.append((challenger, request, pair))
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs:
                    return
                challenger, request, pair = self._jobs.popleft()
            self._until_idle()
            self._shadow(challenger, request, pair)

    def _until_idle(self) -> None:
        """Waits while champion requests are being answered, at most `max_yield_seconds`.

        The shadow thread competes with the event loop for the GIL and the CPU; waiting for a
        moment with no request in flight keeps that competition off the champion's latency.
        Under sustained load the cap bounds the wait, so the shadow still runs (one job per
        cap at worst) and the bounded queue sheds what it cannot take. It blocks on an Event
        rather than polling `busy`: a poll every 0.2 ms took the GIL from the event loop ~5000
        times a second, which itself slowed the champion (bench/shadow.py, 4 clients).
        """
        self._idle.wait(self.max_yield_seconds)

    def _shadow(self, challenger: mgr.Active, request, pair) -> None:
        """The challenger's answer to a request the champion already answered; never raises."""
        start = time.perf_counter()
        try:
            validated = challenger.validator.validate(
                request.columns, request.n_rows, request.problems
            )
            prediction = challenger.model.predict(validated.arrays, False)
        except Exception as e:  # noqa: BLE001 (a failing challenger is evidence, not an outage)
            self._record(request, pair, challenger, rollout.SHADOW, start, error=type(e).__name__)
            self._on_shadow("failed")
            return
        self.shadowed += 1
        self._on_shadow("answered")
        self._record(request, pair, challenger, rollout.SHADOW, start, prediction.predict)
