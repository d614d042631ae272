"""The protocol-agnostic data plane: resolve the model, validate, predict, record.

The V1 and V2 REST handlers (`app`) and the V2 gRPC servicer (`grpc_server`) parse requests into
an `InferRequest` and format an `InferResult`; everything between (which model answers, schema
validation, prediction, metrics, inference logging) happens here once for every protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping, Sequence

import numpy as np

from kfops.serving import batching, model
from kfops.serving import errors as serr
from kfops.serving import manager as mgr

# Requests the compiled model answers faster than this go inline (see `DataPlane._inline`).
# 0.1 ms: a single row of the make-run model (35-80 us) stays inline; its 100-row requests
# (~0.15-0.3 ms since the binned tree kernel) go to the batcher, which answered them at lower
# CPU per request than inline (in-process ASGI, 8 clients, six interleaved pairs on a loaded
# machine: 0.67-1.12 against 0.72-1.34 ms, and 1.5-2.5x the requests/s; bench/RESULTS.md).
INLINE_SECONDS = 0.0001


@dataclasses.dataclass(frozen=True)
class InferRequest:
    """A parsed request: feature name -> JSON values, plus what the caller asked for.

    Attributes:
        columns: one sequence of values per input name, each `n_rows` long.
        n_rows: batch size.
        want_proba: compute class probabilities.
        request_id: caller's id (V2 `id`); the route fills one in when empty.
        outputs: V2 output names asked for (empty: protocol default).
        problems: what the codec already found wrong; reported together with schema problems.
        binary_outputs: V2 outputs to answer as raw bytes (binary tensor data extension).
        route_key: what a canary rollout hashes to pick the answering version (a header the
            operator names); empty: the request id.
    """

    columns: Mapping[str, Sequence]
    n_rows: int
    want_proba: bool = False
    request_id: str = ""
    outputs: tuple[str, ...] = ()
    problems: tuple = ()
    binary_outputs: frozenset = frozenset()
    route_key: str = ""


@dataclasses.dataclass(frozen=True)
class InferResult:
    """Outputs for one request, with the model version that produced them."""

    model: model.ServedModel
    prediction: model.Prediction
    n_rows: int
    want_proba: bool
    outputs: tuple[str, ...]
    passthrough: Mapping[str, list] = dataclasses.field(default_factory=dict)  # V1 echoes it


class DataPlane:
    """Runs requests against whichever model version is active when each request starts.

    Args:
        manager: holds the active model version.
        metrics: `metrics.Metrics` to record into.
        inference_log: `InferenceLogger`, or None when logging is off.
        batcher: `MicroBatcher` that `infer_async` predicts through; None predicts inline.
    """

    def __init__(
        self,
        manager: mgr.ModelManager,
        metrics,
        inference_log=None,
        batcher: batching.MicroBatcher | None = None,
    ):
        self.manager = manager
        self.metrics = metrics
        self.inference_log = inference_log
        self.batcher = batcher
        self.rollout = None  # a challenger.ChallengerLane while a shadow or canary rollout runs

    def resolve(self, name: str, version: str | None = None) -> mgr.Active:
        """The active model, checked against the name (and version) in the URL.

        Raises:
            ModelNotReady: nothing loaded yet.
            ModelNotFound: another model name, or a version that is not the one loaded.
        """
        active = self.manager.current
        if active is None:
            raise serr.ModelNotReady("no model loaded yet")
        served = active.model
        if name != served.name:
            raise serr.ModelNotFound(
                f"model {name!r} is not served here; this server serves {served.name!r}"
            )
        if version is not None and version != served.version:
            raise serr.ModelNotFound(
                f"version {version!r} of {name!r} is not loaded; serving version {served.version!r}"
            )
        return active

    def arrival(self) -> contextlib.AbstractContextManager:
        """Context for one inference handler: the batcher waits briefly for requests under way."""
        return self.batcher.arrival() if self.batcher is not None else contextlib.nullcontext()

    def infer(self, active: mgr.Active, request: InferRequest, protocol: str) -> InferResult:
        """Validates, predicts inline on this thread, and records metrics and logs.

        Raises:
            InvalidInput: the request breaks the schema (every problem listed).
            ModelRejectedInput / ModelError: the estimator failed.
        """
        validated, want_proba, sampled = self._validate(active, request)
        prediction = active.model.predict(validated.arrays, want_proba)
        return self._finish(active, request, protocol, validated, prediction, sampled)

    async def infer_async(
        self, active: mgr.Active, request: InferRequest, protocol: str, arrival=None
    ) -> InferResult:
        """Like `infer`, but through the micro-batcher; a running rollout picks the version.

        Args and behaviour as `answer_async`, which answers with the given version.
        """
        if self.rollout is None:
            return await self.answer_async(active, request, protocol, arrival)
        return await self.rollout.infer(self, active, request, protocol, arrival)

    async def answer_async(
        self, active: mgr.Active, request: InferRequest, protocol: str, arrival=None
    ) -> InferResult:
        """Like `infer`, but predicts through the micro-batcher, off the event loop.

        Small requests to a compiled model are the exception: see `_inline`.

        Validation runs here, per request, so a bad request fails alone before it can join a
        batch; the batcher hands back exactly this request's rows of the batch's outputs.

        Args:
            active: the model version the request started on.
            request: the parsed request.
            protocol: "v1" or "v2" (a metrics label).
            arrival: the handler's `arrival()`; the batcher closes it once the request is queued
                (the handler's `with` closes it when the request fails before).
        """
        if self.batcher is None or self._inline(active, request):
            return self.infer(active, request, protocol)
        validated, want_proba, sampled = self._validate(active, request)
        prediction = await self.batcher.predict(active.model, validated, want_proba, arrival)
        return self._finish(active, request, protocol, validated, prediction, sampled)

    def _inline(self, active: mgr.Active, request: InferRequest) -> bool:
        """Whether to predict on the event loop rather than through the batcher's thread.

        A compiled linear model predicts a request in microseconds, less than the hand-off to
        the thread costs. Anything estimated (from timings taken at load) to take longer than
        INLINE_SECONDS goes to the thread, where concurrent requests share predict calls, the
        compiled tree kernels (which release the GIL) run beside the event loop, and health
        probes are never held up.
        """
        return active.model.fast_seconds(request.n_rows) < INLINE_SECONDS

    def _validate(self, active: mgr.Active, request: InferRequest):
        validated = active.validator.validate(request.columns, request.n_rows, request.problems)
        log = self.inference_log
        sampled = log is not None and log.sampled()
        return validated, request.want_proba or sampled, sampled

    def _finish(self, active, request, protocol, validated, prediction, sampled) -> InferResult:
        served = active.model
        self.metrics.observe_batch(protocol, request.n_rows)
        if validated.out_of_range:
            self.metrics.observe_out_of_range(served.name, validated.out_of_range)
        self.metrics.observe_predictions(served, prediction.predict)
        self.metrics.observe_path(served.name, prediction.path)
        if sampled:
            self.inference_log.submit(
                validated.arrays,
                prediction,
                served,
                request.request_id,
                time.time_ns(),
                passthrough=validated.passthrough,
            )
        return InferResult(
            served,
            prediction,
            request.n_rows,
            request.want_proba,
            request.outputs or served.output_names,
            validated.passthrough,
        )


def jsonable(arr: np.ndarray):
    """Numeric arrays go to orjson as they are (it serialises numpy natively); others as lists."""
    if arr.dtype.kind in "biuf" and arr.flags.c_contiguous:
        return arr
    return arr.tolist()
