"""Run a pipeline on this machine with kfp.local and summarise what happened.

Each run gets a directory `<runs_dir>/<run_id>/` holding the kfp.local artifacts and the full step
log (`run.log`); the terminal shows one progress line per stage instead of kfp.local's verbose
executor dumps. The summary is read back from the artifacts the steps wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kfp import local

from kfops import config, dataio, errors, store
from kfops.reports import files as report_files
from kfops.reports import identity

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_ERROR_LINE = re.compile(
    r"^\s*(?:kfops\.errors\.)?(\w+(?:Error|Violation|Failed|NotFound|Exists)): (.+)$"
)

Progress = Callable[[str, str, float], None]  # (task, "started"|"SUCCESS"|"FAILURE", seconds)


@dataclasses.dataclass
class RunSummary:
    """What a run did: status, the gate's decision and reasons, metrics, model version, reports."""

    run_id: str
    pipeline: str
    status: str  # "succeeded" | "failed"
    run_dir: str
    log: str
    duration_s: float
    parameters: dict[str, Any]
    blessed: bool | None = None
    reasons: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    model_name: str | None = None
    model_version: str | None = None
    model_uri: str | None = None
    reports: dict[str, str] = dataclasses.field(default_factory=dict)
    steps: dict[str, str] = dataclasses.field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`kfops run --json`)."""
        return dataclasses.asdict(self)


class _StepLog(io.TextIOBase):
    """A stdout stand-in: writes everything to the run log and reports stage transitions."""

    def __init__(self, log: io.TextIOBase, progress: Progress | None):
        self._log, self._progress, self._buffer = log, progress, ""
        self.started: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.last_error: dict[str, str] = {}
        self._current: str | None = None

    def write(self, text: str) -> int:
        self._log.write(text)
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._observe(_ANSI.sub("", line))
        return len(text)

    def _observe(self, line: str) -> None:
        if m := _STARTED.search(line):
            self._current = m.group(1)
            self.started[self._current] = time.monotonic()
            self._emit(self._current, "started")
        elif m := _FINISHED.search(line):
            task, status = m.groups()
            self.status[task] = status
            self._emit(task, status)
        elif self._current and (m := _ERROR_LINE.match(line)):
            self.last_error[self._current] = f"{m.group(1)}: {m.group(2)}"

    def _emit(self, task: str, status: str) -> None:
        if self._progress:
            self._progress(
                task, status, time.monotonic() - self.started.get(task, time.monotonic())
            )


def run_pipeline(
    pipeline_func: Callable[..., Any],
    arguments: Mapping[str, Any],
    runs_dir: str | Path,
    *,
    run_id: str | None = None,
    runner: str = "subprocess",
    progress: Progress | None = None,
    shared_root: str | Path | None = None,
    step_env: Mapping[str, str] | None = None,
) -> tuple[RunSummary, Path]:
    """Runs a compiled-in-memory pipeline through kfp.local and returns a bare summary.

    Args:
        pipeline_func: the `@dsl.pipeline` function.
        arguments: pipeline parameters.
        runs_dir: where run directories go.
        run_id: defaults to a fresh random id.
        runner: "subprocess" (this Python environment) or "docker" (every step in the image,
            through DOCKER_HOST, e.g. podman's socket).
        progress: called on each stage start and finish.
        shared_root: docker runner only: the pipeline root to mount into every step container.
            It must contain every local path a step uses (runs dir, local store), since the
            container sees only this directory (at the same path).
        step_env: docker runner only: environment for the step containers (e.g. MINIO_*, as
            the cluster's Secret provides it).

    Returns:
        The summary (status, steps, failure) and the kfp.local directory of this run's outputs.
    """
    run_id = run_id or uuid.uuid4().hex[:12]
    if "run_id" in (pipeline_func.component_spec.inputs or {}):
        arguments = {**arguments, "run_id": run_id}  # the steps record the same id we report
    run_dir = Path(runs_dir).resolve() / run_id
    (run_dir / "workspace").mkdir(parents=True, exist_ok=True)
    pipeline_root = Path(shared_root).resolve() if shared_root else run_dir / "artifacts"
    local.init(
        runner=_runner(runner, step_env or {}),
        pipeline_root=str(pipeline_root),
        workspace_root=str(run_dir / "workspace"),
        raise_on_error=False,
    )
    start, start_wall = time.monotonic(), time.time()
    with open(run_dir / "run.log", "w", encoding="utf-8") as log:
        steps = _StepLog(log, progress)
        with contextlib.redirect_stdout(steps), contextlib.redirect_stderr(steps):
            pipeline_func(**arguments)
    failed = [t for t, s in steps.status.items() if s != "SUCCESS"]
    summary = RunSummary(
        run_id=run_id,
        pipeline=getattr(pipeline_func, "name", "pipeline"),
        status="failed" if failed else "succeeded",
        run_dir=str(run_dir),
        log=str(run_dir / "run.log"),
        duration_s=round(time.monotonic() - start, 2),
        parameters=dict(arguments),
        steps=dict(steps.status),
    )
    if failed:
        summary.failed_step = failed[0]
        summary.error = steps.last_error.get(failed[0], f"see {summary.log}")
    return summary, _outputs_dir(pipeline_root, getattr(pipeline_func, "name", ""), start_wall)


def read_training_outputs(summary: RunSummary, outputs: Path) -> RunSummary:
    """Fills the summary from the training run's artifacts: blessing, metrics, model, reports."""
    blessing = _json(outputs / "gate" / "blessing")
    if blessing is not None:
        summary.blessed = bool(blessing["blessed"])
        summary.reasons, summary.notes = list(blessing["reasons"]), list(blessing.get("notes", []))
    evaluation = _json(outputs / "evaluate" / "evaluation")
    if evaluation is not None:
        summary.metrics = {k: v for k, v in evaluation.get("metrics", {}).items() if v is not None}
        summary.metrics.update(
            {
                f"baseline/{k}": v
                for k, v in (evaluation.get("baseline_metrics") or {}).items()
                if v is not None
            }
        )
    infra = _json(outputs / "infra-validate" / "report")
    if infra is not None and not infra.get("passed"):
        summary.reasons += [f"infra-validate: {r}" for r in infra.get("reasons", [])]
    registered = _json(outputs / "push" / "registered")
    if registered is not None:
        summary.model_name, summary.model_version = registered["name"], registered["version"]
        summary.model_uri = registered["uri"]
    # KFP artifacts have no extension; people get `<run_dir>/reports/<name>.html` files.
    summary.reports = report_files.write_run_reports(
        outputs, Path(summary.run_dir) / "reports", _identity(summary)
    )
    return summary


def _identity(summary: RunSummary) -> dict[str, Any]:
    """Run id, data and model facts for the evaluation report, read from the run's records."""
    store_uri = summary.parameters.get("store_uri")
    if not store_uri:
        return {"run_id": summary.run_id}
    try:
        st = store.open_store(str(store_uri), config.StoreSettings.from_env())
    except errors.KfopsError:
        return {"run_id": summary.run_id}
    return identity.from_run(st, summary.run_id)


def _json(path: Path) -> Any:
    return dataio.read_json(path) if path.is_file() else None


def _outputs_dir(pipeline_root: Path, pipeline: str, since: float) -> Path:
    """The directory kfp.local made for this run under the pipeline root (newest since start)."""
    if not pipeline_root.is_dir():
        return pipeline_root
    made = [
        d
        for d in pipeline_root.iterdir()
        if d.is_dir() and d.name.startswith(f"{pipeline}-") and d.stat().st_mtime >= since - 1
    ]
    return max(made, key=lambda d: d.stat().st_mtime) if made else pipeline_root


def _runner(name: str, step_env: Mapping[str, str]) -> Any:
    if name == "subprocess":
        return local.SubprocessRunner(use_venv=False)
    if name == "docker":
        # Steps run as the invoking user, so what they write stays the user's own; host network
        # lets them reach a store served on 127.0.0.1 as they would reach MinIO in a cluster.
        return local.DockerRunner(
            user=f"{os.getuid()}:{os.getgid()}", network_mode="host", environment=dict(step_env)
        )
    raise errors.ConfigError(f"unknown runner {name!r}; use subprocess or docker")
