"""Which model version answers: loading, warm-up and the atomic swap.

A request reads `manager.current` once and keeps that `Active` to the end, so a swap (one
attribute assignment) never changes the model under a request in flight: requests that started
before it finish on the old version, requests after it use the new one. A version that fails to
load or to answer its warm-up prediction is never swapped in; the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable

from kfops import errors, features
from kfops.serving import model, validation

log = logging.getLogger("kfops.serving")


@dataclasses.dataclass(frozen=True, eq=False)
class Active:
    """A loaded model together with the validator built for its schema."""

    model: model.ServedModel
    validator: validation.Validator
    loaded_at: float


class ModelManager:
    """Holds the active model and replaces it, whole, when asked or when the champion moves."""

    def __init__(
        self,
        source: model.ModelSource,
        name: str,
        pinned: str | None = None,
        policy: validation.ValidationPolicy = validation.DEFAULT_POLICY,
        on_swap: Callable[[Active | None, Active], None] | None = None,
        fast_path: bool = True,
    ):
        self.source = source
        self.name = name
        self.pinned = pinned
        self.policy = policy
        self.on_swap = on_swap
        self.fast_path = fast_path
        self.current: Active | None = None
        self._lock = threading.Lock()

    def load(self, version: str | None = None) -> Active:
        """Loads a version (default: the pinned one, else the champion), warms it up, swaps it in.

        Blocking; call it from a worker thread when requests are being served. Concurrent calls
        run one after the other.

        Raises:
            NotFound, IntegrityError, ModelError: the version cannot be served; nothing changes.
        """
        with self._lock:
            version = version or self.pinned or self.source.champion(self.name)
            if version is None:
                raise errors.NotFound(
                    f"model {self.name!r} has no champion yet; promote a version first"
                )
            old = self.current
            if old is not None and old.model.version == version:
                return old
            started = time.perf_counter()
            served = self.source.load(self.name, version)
            if self.fast_path:
                served = model.with_fast_path(served)
            derived = features.derived_inputs(served.pipeline)
            checker = validation.Validator(served.schema, self.policy, derived)
            active = Active(served, checker, time.time())
            _warm_up(served)
            self.current = active
            _freeze_heap(first=old is None)
            log.info(
                "model loaded",
                extra={
                    "model": self.name,
                    "version": served.version,
                    "previous": old.model.version if old else None,
                    "fast_path": served.fast_note or "off",
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
            if self.on_swap is not None:
                self.on_swap(old, active)
            return active

    def follow_champion(self) -> bool:
        """Loads the champion if it moved since the last load; False when pinned or unchanged.

        Raises:
            KfopsError: the new champion cannot be served (the old version keeps serving).
        """
        if self.pinned is not None:
            return False
        champion = self.source.champion(self.name)
        current = self.current.model.version if self.current else None
        if champion is None or champion == current:
            return False
        self.load(champion)
        return True

    async def poll(self, interval: float) -> None:
        """Checks the champion every `interval` seconds, off the event loop, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.follow_champion)
            except Exception as e:  # noqa: BLE001 (the poller must outlive any one bad version)
                log.warning(
                    "champion reload failed; keeping the current version",
                    extra={"model": self.name, "error": str(e)},
                )


def _warm_up(served: model.ServedModel) -> None:
    """One prediction on a schema-made row, so a model that cannot answer is never swapped in.

    Both paths run: sklearn on a DataFrame and, when compiled, the fast path on numpy columns.
    """
    try:
        frame = model.example_frame(served.schema)
        served.predict(frame, want_proba=True)
        served.predict({c: frame[c].to_numpy() for c in frame.columns}, want_proba=True)
    except errors.KfopsError as e:
        raise errors.ModelError(
            f"{served.name!r} v{served.version} failed its warm-up prediction: {e}"
        ) from e


def _freeze_heap(first: bool) -> None:
    """Moves every object alive now (the model, sklearn, pandas) out of the collector's sight.

    Collections then only scan the objects requests create.

    Without it, a full collection walks ~140k long-lived objects and stalls every request for
    ~80 ms whenever it runs, which is what the p99 latency showed. The first load collects
    first (at startup a pause costs nothing); a swap freezes without collecting, so it adds no
    pause under load. Frozen objects are still freed by reference counting when released.
    """
    if first:
        gc.collect()
    gc.freeze()
