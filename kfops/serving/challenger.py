"""The challenger lane: a second model version beside the champion, in shadow or canary mode.

Shadow: the champion answers; the request and the champion's answer are queued (an append on
the request path; the batch's pickle and pipe write run from a loop callback, after the handler
has written its answer) and go, batched, to a child process (kfops.serving.shadow) where the
challenger validates, predicts and logs both; a thread here would take the GIL from the event
loop and cost the champion its tail. The pipe to it is bounded: when the challenger falls
behind, requests are not shadowed (counted as dropped), never delayed.
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
import dataclasses
import datetime as dt
import hashlib
import io
import logging
import time
import uuid
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors, labels, rollout
from kfops.serving import inference_log, shadow
from kfops.serving import manager as mgr

log = logging.getLogger("kfops.serving")
CHAMPION_ROLE = "champion"
_SPACE = 2**64
# Seconds before a dead shadow child is replaced: doubling from the first to the cap.
RESTART_FIRST, RESTART_MAX = 1.0, 60.0


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

    def record(
        self, request_id, pair, version, role, seconds, predict=None, error="", timestamp_ns=None
    ) -> bool:
        """Queues one answered (or failed) request; never blocks.

        Returns:
            False when the full buffer refused it (counted in `dropped`).
        """
        stamp = time.time_ns() if timestamp_ns is None else timestamp_ns
        event = _Event(request_id, *pair, version, role, seconds, error, predict, stamp)
        return self._enqueue(event)

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
            and fast path, loaded and warmed up like the champion; canary answers with it;
            in shadow mode the child loads its own and the server none).
        events: where answers logged in this process go; None records nothing (no store).
        plan_reader: returns the current plan (the registry pointer); None: the plan is fixed.
        fixed: the plan from flags, if any.
        worker_spec: what the shadow child needs (`shadow.ShadowProcess`); None: no registry
            store, so shadow mode is refused.
        on_shadow: callback(outcome, n): n shadowed requests answered, failed, dropped or off.
        pipe_bytes: how far the shadow child may fall behind (its pipe's capacity).
        on_restart: callback() each time a dead shadow child is replaced.
        check: raises when a version is not in the registry. A shadow challenger is loaded
            only by the shadow child (the server would hold a second copy it never uses), so
            this is what refuses a missing version up front.
    """

    def __init__(
        self,
        managers: Callable[[str], mgr.ModelManager],
        events: EventLog | None,
        plan_reader: Callable[[], rollout.Plan | None] | None = None,
        fixed: rollout.Plan | None = None,
        worker_spec: dict | None = None,
        on_shadow: Callable[[str, int], None] | None = None,
        pipe_bytes: int = 1 << 20,
        on_restart: Callable[[], None] | None = None,
        check: Callable[[str], object] | None = None,
    ):
        self.check = check
        self.managers, self.events, self.plan_reader = managers, events, plan_reader
        self.worker_spec, self.pipe_bytes = worker_spec, pipe_bytes
        # The plan and its challenger loaded here (None in shadow mode: the child loads it).
        self.state: tuple[rollout.Plan, mgr.Active | None] | None = None
        self.dropped = self.shadowed = self.failed = self.off = self.restarts = 0
        self._on_shadow = on_shadow or (lambda outcome, n: None)
        self._on_restart = on_restart or (lambda: None)
        self.worker: shadow.ShadowProcess | None = None
        self._worker_plan: rollout.Plan | None = None  # the plan the worker was started for
        self._delay = RESTART_FIRST  # how long a dead child of this plan waits to be replaced
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by `start`
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
        else:
            if plan.mode == rollout.SHADOW and self.worker_spec is None:
                raise errors.ConfigError("shadow mode needs the registry's store (--store)")
            if plan.mode == rollout.SHADOW:
                active = None
                if self.check is not None:
                    self.check(plan.version)
            elif (
                current is not None
                and current[1] is not None
                and (current[1].model.version == plan.version)
            ):
                active = current[1]
            else:
                manager = self.managers(plan.version)
                active = manager.load(plan.version)
            self.state = (plan, active)  # one assignment: a request sees the old or the new plan
            log.info("rollout", extra={"challenger": plan.version, "mode": plan.mode})
        worker = self.worker
        if worker is not None and (plan is None or plan.mode != rollout.SHADOW):
            # The rollout ended or left shadow: the child drains and exits. After the swap, so
            # requests stop shadowing now, not once the child has flushed its events.
            self.worker = None
            worker.close()

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
        """On the event loop: starts the shadow child now if the plan is already shadow."""
        self._started, self._loop = True, asyncio.get_running_loop()
        if self.state is not None and self.state[0].mode == rollout.SHADOW:
            self._ensure_worker(self.state[0])

    def close(self) -> None:
        """Lets the shadow child drain what it was handed and exit (any thread)."""
        self._started = False
        if self.worker is not None:
            self.worker.close()

    def _ensure_worker(self, plan: rollout.Plan) -> shadow.ShadowProcess:
        """The shadow child for `plan`, started (on the loop) when there is none.

        A dead child of the same plan is replaced once its backoff has passed: the delay doubles
        from RESTART_FIRST to RESTART_MAX while replacements die young, so a child that dies at
        start costs one start per delay, not one per request (the kubelet's CrashLoopBackOff
        does the same for containers). Until then requests are counted `off`.
        """
        worker = self.worker
        if worker is not None and worker.usable:
            return worker
        if worker is not None and self._worker_plan == plan:
            delay = self._restart_delay(worker)
            if time.monotonic() < worker.lost_at + delay:
                return worker
            self._delay = min(2 * delay, RESTART_MAX)
            self.restarts += 1
            log.warning(
                "shadow worker restarted",
                extra={"previous_pid": worker.pid, "returncode": worker.proc.poll(),
                       "after_seconds": delay, "restarts": self.restarts},
            )  # fmt: skip
            self._on_restart()
        else:
            self._delay = RESTART_FIRST
        if worker is not None:
            worker.close(0.0)
        spec = {**self.worker_spec, "version": plan.version}
        worker = shadow.ShadowProcess(spec, self._count, self.pipe_bytes, self._champion_events)
        worker.start()
        self.worker, self._worker_plan = worker, plan
        return worker

    def _restart_delay(self, worker: shadow.ShadowProcess) -> float:
        if worker.lost_at - worker.started_at >= RESTART_MAX:
            return RESTART_FIRST  # it ran a while: a new failure, not a crash loop
        return self._delay

    def _count(self, outcome: str, n: int = 1) -> None:
        if outcome == "answered":
            self.shadowed += n
        else:
            setattr(self, outcome, getattr(self, outcome) + n)
        self._on_shadow(outcome, n)

    async def infer(self, plane, active: mgr.Active, request, protocol: str, arrival):
        """Answers one request: champion or canary, then hands the shadow its copy."""
        state = self.state
        if state is None:
            return await plane.answer_async(active, request, protocol, arrival)
        plan, challenger = state
        pair = (active.model.version, plan.version)
        if plan.mode == rollout.CANARY and routed(
            request.route_key or request.request_id, plan.share
        ):
            return await self._timed(plane, challenger, request, protocol, arrival, pair, "canary")
        shadowing = plan.mode == rollout.SHADOW and self._started
        start = time.perf_counter()
        result = await self._timed(
            plane, active, request, protocol, arrival, pair, CHAMPION_ROLE, not shadowing
        )
        if shadowing:
            # Queued now (an append): the batch's pickle and pipe write run once this handler
            # has written its answer (`ShadowProcess.submit`). No `call_soon` per request: a
            # handle to allocate and run, and `get_running_loop` is a getpid syscall in 3.11
            # (~0.4 us the two, timeit). A list, not the array: pickling a one-row ndarray cost
            # ~20 us, a list ~1 us.
            job = (
                request.request_id, pair, time.perf_counter() - start,
                result.prediction.predict.tolist(), time.time_ns(), request.columns,
                request.n_rows, request.problems,
            )  # fmt: skip
            self._submit(plan, job)
        return result

    async def _timed(self, plane, active, request, protocol, arrival, pair, role, record=True):
        """The answer of `active`; logged here unless the shadow child logs it (record=False)."""
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
        if record:
            self._record(request, pair, active, role, start, result.prediction.predict)
        return result

    def _record(self, request, pair, active, role, start, predict=None, error="") -> None:
        if self.events is not None:
            seconds = time.perf_counter() - start
            self.events.record(
                request.request_id, pair, active.model.version, role, seconds, predict, error
            )

    def _submit(self, plan: rollout.Plan, job: tuple, on_path: bool = True) -> None:
        """Hands the child its job (it goes out with its batch); see `_champion_events`.

        Called on the request path, before the answer is written (`on_path`): a child to
        (re)start is started from a loop callback instead, after it.
        """
        state, worker = self.state, self.worker
        if not self._started or state is None or state[0] != plan:  # stopped or plan changed
            self._count("off")
            self._champion_events([job])
        elif worker is not None and worker.usable:
            worker.submit(job)
        elif on_path:
            self._loop.call_soon(self._submit, plan, job, False)
        else:
            self._ensure_worker(plan).submit(job)

    def _champion_events(self, jobs: list[tuple]) -> None:
        """Logs the champion's answer of jobs the child never got (it logs the others)."""
        if self.events is None:
            return
        for request_id, pair, seconds, predict, stamp, *_ in jobs:
            self.events.record(
                request_id, pair, pair[0], CHAMPION_ROLE, seconds, np.asarray(predict),
                timestamp_ns=stamp,
            )  # fmt: skip
