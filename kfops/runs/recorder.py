"""Writing run records: the header, one record per step, and the outcome.

Every pipeline step may construct a `RunRecorder` for the same run id and call `start`; the header
is written only if absent, so whichever writer comes first (the submitter, `kfops run`, or the
first step on a cluster) sets it. Steps write only their own key, so steps running in parallel
never race on an object.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from kfops import errors
from kfops.runs import index, records
from kfops.store import base

_LOG = logging.getLogger(__name__)


class StepHandle:
    """What a step reports while it runs; written to the store when the step ends.

    Example:
        with recorder.step("split", {"test_fraction": 0.2}) as step:
            step.input("data", data.uri, data.metadata["sha256"])
            step.output("train", sha256=meta["sha256"], rows=meta["rows"])
            step.metric("train_rows", meta["rows"])
    """

    def __init__(
        self,
        name: str,
        parameters: dict[str, Any],
        started_at: str,
        recorder: RunRecorder | None = None,
    ):
        self.name, self.parameters, self.started_at = name, parameters, started_at
        self._recorder = recorder
        self.metrics: dict[str, float | None] = {}
        self.inputs: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any]] = []
        self.runtime: dict[str, Any] = {}

    def metric(self, name: str, value: float) -> None:
        """Records a scalar metric (NaN and infinities are kept as null)."""
        self.metrics[str(name)] = records.metric_value(name, value)

    def input(self, name: str, uri: str, sha256: str | None) -> None:
        """Records an input artifact: where it came from and its content hash."""
        self.inputs.append({"name": str(name), "uri": str(uri or ""), "sha256": sha256 or None})

    def output(self, name: str, /, **facts: Any) -> None:
        """Records an output artifact with any facts (sha256, rows, version, uri...).

        Raises:
            ConfigError: a fact is called "name" (that key holds the output's own name).
        """
        if "name" in facts:
            raise errors.ConfigError(
                f"output {name!r}: a fact may not be called 'name'; use e.g. model_name"
            )
        self.outputs.append({"name": str(name), **records.clean_parameters(facts)})

    def report(self, name: str, html: str) -> None:
        """Stores an HTML report of this run now (it must survive the step failing after it)."""
        if self._recorder is None:
            raise errors.ConfigError(f"step {self.name!r} has no recorder to store reports with")
        self._recorder.report(name, html)

    def record(
        self, status: str, ended_at: str | None = None, error: BaseException | None = None
    ) -> dict:
        """The step's record as stored; a failure adds the error, its class and its exit code."""
        out: dict[str, Any] = {
            "step": self.name,
            "status": status,
            "started_at": self.started_at,
            "ended_at": ended_at,
            "parameters": self.parameters,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "metrics": self.metrics,
        }
        if self.runtime:  # how the step ran (threads, CPUs): facts of the node, not results
            out["runtime"] = self.runtime
        if error is not None:
            message = str(error)
            out["error"] = f"{type(error).__name__}: {message}" if message else type(error).__name__
            out["error_class"] = type(error).__name__
            out["message"] = message
            # what `kfops run` exits with: the kfops error's own code, else "the pipeline failed"
            out["exit_code"] = getattr(error, "exit_code", errors.PipelineFailed.exit_code)
        return out


class RunRecorder:
    """Writes the records of one run into a store (local directory or S3).

    Args:
        store: the same store the registry uses.
        run_id: letters, digits, '.', '_' or '-' (a KFP job id or `kfops run`'s id).

    Raises:
        ConfigError: the run id cannot be part of a store key.
    """

    def __init__(self, store: base.Store, run_id: str):
        self.store = store
        self.run_id = records.check_name("run id", run_id)

    def start(
        self,
        pipeline: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        experiment: str | None = None,
        code_version: str = "",
        image: str = "",
    ) -> bool:
        """Writes the run header unless one exists; every step may call it.

        Args:
            pipeline: pipeline name, e.g. "kfops-training".
            parameters: pipeline parameters (secret-looking names are redacted).
            experiment: group name for `runs list --experiment`; defaults to the pipeline name.
            code_version: git commit, when known.
            image: the container image the steps run in.

        Returns:
            True if this call wrote the header, False if one was already there.
        """
        key = records.header_key(self.run_id)
        if self.store.exists(key):
            return False
        import kfops  # noqa: PLC0415 (the package version, without a cycle at import time)

        header = {
            "run_id": self.run_id,
            "pipeline": pipeline,
            "experiment": experiment or pipeline,
            "started_at": records.now(),
            "parameters": records.clean_parameters(parameters),
            "package_version": kfops.__version__,
            "code_version": code_version or "",
            "image": image or "",
        }
        try:  # create-only: of writers racing (a submitter, a retried first step), one wins
            self.store.put_bytes_if(key, records.encode(header), None)
        except base.PreconditionFailed:
            return False
        return True

    @contextlib.contextmanager
    def step(self, name: str, parameters: Mapping[str, Any] | None = None) -> Iterator[StepHandle]:
        """Records a step: "running" on entry, then "succeeded", or "failed" with the error.

        The exception is re-raised after it is recorded as "<TypeName>: <message>". If the store
        itself fails while recording a failure, the step's own error still propagates (it is the
        one the user needs); the storage error is logged.

        Raises:
            ConfigError: the step name cannot be part of a store key.
        """
        records.check_name("step name", name)
        handle = StepHandle(name, records.clean_parameters(parameters), records.now(), self)
        key = records.step_key(self.run_id, name)
        self.store.put_bytes(key, records.encode(handle.record("running")))
        try:
            yield handle
        except BaseException as e:
            try:
                self.store.put_bytes(key, records.encode(handle.record("failed", records.now(), e)))
            except errors.StorageError as storage_error:
                _LOG.warning("could not record failure of step %r: %s", name, storage_error)
            raise
        self.store.put_bytes(key, records.encode(handle.record("succeeded", records.now())))

    def report(self, name: str, html: str) -> None:
        """Writes `runs/<run_id>/reports/<name>.html`.

        A later step may replace a report with a fuller one (the gate adds its verdict to the
        evaluation report): steps run one after the other, and the last writer knows most.

        Raises:
            ConfigError: the name cannot be part of a store key.
        """
        records.check_name("report name", name)
        self.store.put_bytes(records.report_key(self.run_id, name), html.encode("utf-8"))

    def finish(
        self,
        status: str,
        *,
        blessed: bool | None = None,
        reasons: tuple[str, ...] | list[str] = (),
        model: Mapping[str, str] | None = None,
        error: str | None = None,
        **facts: Any,
    ) -> None:
        """Writes the run's outcome (replacing an earlier one: the last writer knows most).

        Call it last, after the final step's `with` block has closed: the outcome carries a digest
        of the step records at this moment, which `RunIndex.list` reads instead of every step.

        Args:
            status: "succeeded" or "failed".
            blessed: the gate's decision, None if the run never reached the gate.
            reasons: why the gate refused (or notes when it blessed).
            model: {"name", "version"} of the registered model, if any.
            error: why the run failed when no recorded step did (e.g. the runner itself failed).
            facts: more JSON-ready facts of the outcome (kfops.runs.outcome: notes, deploy,
                failed_step, exit_code, outputs).

        Raises:
            ConfigError: unknown status.
        """
        errors.check_choice("run status", status, records.END_STATUSES)
        end = {
            "run_id": self.run_id,
            "status": status,
            "ended_at": records.now(),
            "blessed": blessed,
            "reasons": [str(r) for r in reasons],
            "model": {"name": str(model["name"]), "version": str(model["version"])}
            if model
            else None,
        }
        if error:
            end["error"] = str(error)
        end.update(records.clean_parameters(facts))
        end["digest"] = index.RunIndex(self.store).digest(self.run_id)
        self.store.put_bytes(records.end_key(self.run_id), records.encode(end))
