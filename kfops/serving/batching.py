"""Adaptive micro-batching: concurrent small requests share one scikit-learn call.

A fitted pipeline costs nearly the same for 1 row as for 64 (the per-call overhead of pandas
column selection, the ColumnTransformer and input checks dominates), so under concurrency the
server answers more requests per second by predicting them together. Requests are validated one
by one before they get here; this module only concatenates their validated columns, predicts once
on a single worker thread (off the event loop, so probes and parsing go on meanwhile), and hands
each request back exactly its own slice of the outputs.

When to predict: as soon as the worker is free, every request known to be in progress has been
queued, and as many requests are queued as the worker just served plus those that waited for it
(under steady concurrency the clients just answered come straight back; waiting for them makes
one call out of two). At concurrency 1 that means at once: no latency is added. Otherwise a
batch starts when the wait since the worker became free (or since the oldest request was queued,
if later) reaches `window`, or when `max_rows` rows are queued. While the worker is busy, new
requests queue up for the next batch. A batch only ever holds requests for the same
model version whose columns have the same dtypes, so each request sees exactly the frame it would
have seen alone; if the batched call fails, each request is retried alone, so one request's bad
values never fail another's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from kfops import errors
from kfops.serving import model, validation


class Arrival:
    """A request in progress that has not reached the queue yet (the batcher may wait for it)."""

    __slots__ = ("_batcher", "_open")

    def __init__(self, batcher: MicroBatcher):
        self._batcher, self._open = batcher, True
        batcher.arriving += 1

    def close(self) -> None:
        """The request was queued or failed before it: stop waiting for it (idempotent)."""
        if self._open:
            self._open = False
            self._batcher.arriving -= 1
            self._batcher.poke()

    def __enter__(self) -> Arrival:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass(eq=False)
class _Item:
    served: model.ServedModel
    validated: validation.Validated
    want_proba: bool
    future: asyncio.Future
    queued_at: float
    key: tuple


class MicroBatcher:
    """Queues validated requests and predicts them in batches on one worker thread.

    Args:
        window: longest a queued request waits for others, in seconds; 0 disables batching
            (every request is predicted alone, still on the worker thread).
        max_rows: a batch never exceeds this many rows; a bigger request is predicted alone.
        on_batch: called on the event loop with (requests, rows) for each predict call.
    """

    def __init__(self, window: float, max_rows: int, on_batch: Callable[[int, int], None] = None):
        self.window, self.max_rows, self.on_batch = window, max_rows, on_batch
        self.arriving = 0
        self._pending: list[_Item] = []
        self._busy = False
        self._free_at = 0.0  # when the worker last became free
        self._expected = 0  # requests likely to be queued soon (see the module docstring)
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, "kfops-predict", initializer=one_native_thread
        )

    def arrival(self) -> Arrival:
        """Marks a request as on its way: call at the start of an inference handler."""
        return Arrival(self)

    async def predict(
        self,
        served: model.ServedModel,
        validated: validation.Validated,
        want_proba: bool,
        arrival: Arrival | None = None,
    ) -> model.Prediction:
        """This request's outputs, predicted alone or together with concurrent requests.

        Args:
            served: the model version the request started on.
            validated: the request's checked columns.
            want_proba: compute class probabilities.
            arrival: the request's own `arrival()`, closed once it is queued.

        Raises:
            ModelRejectedInput / ModelError: the model failed on this request's rows.
        """
        loop = self._loop = self._loop or asyncio.get_running_loop()
        key = (served, *((n, a.dtype) for n, a in validated.arrays.items()))
        item = _Item(served, validated, want_proba, loop.create_future(), time.monotonic(), key)
        self._pending.append(item)
        if arrival is not None:
            arrival.close()
        self.poke()
        return await item.future

    def poke(self) -> None:
        """Starts a batch if one is due, else makes sure a timer will start it."""
        if self._busy or not self._pending:
            return
        waited = time.monotonic() - max(self._pending[0].queued_at, self._free_at)
        rows = sum(it.validated.n_rows for it in self._pending)
        settled = self.arriving <= 0 and len(self._pending) >= self._expected
        if settled or waited >= self.window or rows >= self.max_rows:
            self._dispatch()
        elif self._timer is None:
            self._timer = self._loop.call_later(self.window - waited, self._on_timer)

    def close(self) -> None:
        """Waits for the batch in progress, then stops the worker thread."""
        self._executor.shutdown(wait=True)

    def _on_timer(self) -> None:
        self._timer = None
        self.poke()

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self._take()
        self._busy = True
        want_proba = any(it.want_proba for it in batch)
        work = self._loop.run_in_executor(self._executor, _predict_batch, batch, want_proba)
        work.add_done_callback(lambda done: self._complete(batch, done))
        if self.on_batch is not None:
            self.on_batch(len(batch), sum(it.validated.n_rows for it in batch))

    def _take(self) -> list[_Item]:
        """The oldest request plus later ones with the same key, in order, within max_rows."""
        first = self._pending[0]
        batch, rest, rows = [first], [], first.validated.n_rows
        for it in self._pending[1:]:
            n = it.validated.n_rows
            if self.window > 0 and it.key == first.key and rows + n <= self.max_rows:
                batch.append(it)
                rows += n
            else:
                rest.append(it)
        self._pending = rest
        return batch

    def _complete(self, batch: list[_Item], done: asyncio.Future) -> None:
        self._busy = False
        self._free_at = time.monotonic()
        self._expected = len(batch) + len(self._pending)
        error = done.exception()
        outcomes = [error] * len(batch) if error is not None else done.result()
        for it, outcome in zip(batch, outcomes, strict=True):
            if it.future.done():
                continue
            if isinstance(outcome, BaseException):
                it.future.set_exception(outcome)
            else:
                it.future.set_result(outcome)
        self.poke()


def one_native_thread() -> None:
    """Limits OpenMP and BLAS to one thread for predictions made on the calling thread.

    Under load, sklearn's HistGradientBoosting predict with the default two OpenMP threads
    (passive wait, one parallel region per tree) took 108-231 ms median and up to 4 s for ONE
    row, against 13-26 ms (max 33 ms) with one thread (same process, load average 10.9): every
    region waits for a sleeping thread to be scheduled. A server scales with worker processes,
    not threads inside one predict. OpenMP's thread count is per calling thread (omp_set_num_threads
    sets the caller's ICV), so each thread that predicts calls this once.
    """
    import threadpoolctl  # noqa: PLC0415 (serving path only)

    threadpoolctl.threadpool_limits(1)


def _predict_batch(batch: list[_Item], want_proba: bool) -> list:
    """Runs on the worker thread: one predict for the batch, split per request.

    A failed batched call is retried request by request, so every request gets the outcome
    (prediction or error) it would have got alone.
    """
    served = batch[0].served
    if len(batch) == 1:
        return [_predict_one(batch[0], want_proba)]
    names = list(batch[0].validated.arrays)
    columns = {n: np.concatenate([it.validated.arrays[n] for it in batch]) for n in names}
    try:
        whole = served.predict(columns, want_proba)
    except errors.KfopsError:
        return [_predict_one(it, want_proba) for it in batch]
    out, start = [], 0
    for it in batch:
        stop = start + it.validated.n_rows
        proba = None if whole.proba is None else whole.proba[start:stop]
        out.append(model.Prediction(whole.predict[start:stop], proba, whole.path))
        start = stop
    return out


def _predict_one(item: _Item, want_proba: bool) -> model.Prediction | Exception:
    try:
        return item.served.predict(item.validated.arrays, want_proba)
    except errors.KfopsError as e:
        return e
