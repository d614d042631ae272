"""Run a pipeline on this machine with kfp.local and summarise what happened.

Each run gets a directory `<runs_dir>/<run_id>/` holding the kfp.local artifacts and the full step
log (`run.log`, kfp.local's output as it was, never parsed). What happened is read from the run's
records, as on a cluster: progress lines from the step records while the run goes, the outcome
from the record the pipeline's exit step writes (kfops.runs.outcome), and the outputs directory
from that record too (the runner told the exit step where its outputs go).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kfp import local

from kfops import config, dataio, errors, runs, step_containers, warm_steps
from kfops.reports import files as report_files
from kfops.reports import identity
from kfops.runs import records
from kfops.store import Store, open_store

Progress = Callable[[str, str, float], None]  # (step, "running"|"succeeded"|"failed", seconds)


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
    exit_code: int = 0
    deploy: dict[str, Any] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    champion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`kfops run --json`)."""
        return dataclasses.asdict(self)


class _StepWatch:
    """Reports step transitions by polling the run's step records (what the steps write)."""

    def __init__(self, st: Store | None, run_id: str, progress: Progress | None):
        self._st, self._run_id, self._progress = st, run_id, progress
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()

    @contextlib.contextmanager
    def watching(self, every: float = 0.3) -> Iterator[None]:
        if self._st is None or self._progress is None:
            yield
            return
        thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()
            self._poll()  # the last transitions

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(errors.KfopsError):
                self._poll()

    def _poll(self) -> None:
        prefix = records.run_prefix(self._run_id) + records.STEPS
        for key in sorted(self._st.list(prefix)):
            record = records.decode(self._st.get_bytes(key)) or {}
            name, status = str(record.get("step")), str(record.get("status"))
            if self._seen.get(name) == status:
                continue
            self._seen[name] = status
            self._progress(name, status, _seconds(record))


def _seconds(record: Mapping[str, Any]) -> float:
    start, end = record.get("started_at"), record.get("ended_at")
    if not start or not end:
        return 0.0
    import datetime  # noqa: PLC0415

    delta = datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
    return delta.total_seconds()


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
        raise_on_error=True,  # after every step, exit step included: "some step failed"
    )
    st = _store(arguments)
    start = time.monotonic()
    docker_steps = runner == "docker"
    if docker_steps:
        containers = docker_steps_kept_until_read()
    elif not warm_steps.cold_steps():
        containers = warm_steps_while_running()
    else:
        containers = contextlib.nullcontext()
    with _StepWatch(st, run_id, progress).watching(), containers:
        runner_failed = not _execute(pipeline_func, arguments, run_dir / "run.log")
    summary = RunSummary(
        run_id=run_id,
        pipeline=getattr(pipeline_func, "name", "pipeline"),
        status="failed" if runner_failed else "succeeded",
        run_dir=str(run_dir),
        log=str(run_dir / "run.log"),
        duration_s=round(time.monotonic() - start, 2),
        parameters=dict(arguments),
    )
    outcome = _read_outcome(summary, st)
    if runner_failed and summary.status != "failed":  # a step failed without a record
        summary.status, summary.exit_code = "failed", errors.PipelineFailed.exit_code
        summary.error = summary.error or f"a step failed before recording why; see {summary.log}"
    return summary, _outputs_dir(outcome, pipeline_root, own_root=not shared_root)


def _execute(pipeline_func: Callable[..., Any], arguments: Mapping[str, Any], log: Path) -> bool:
    """Runs the pipeline with its output in `log`; False when kfp.local says a step failed.

    Which step and why are in the run's records; the log is kept whole and never parsed.
    """
    with open(log, "w", encoding="utf-8") as out, keep_print():
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                pipeline_func(**arguments)
            except RuntimeError:  # kfp.local with raise_on_error: "an inner task failed"
                return False
    return True


@contextlib.contextmanager
def docker_steps_kept_until_read() -> Iterator[None]:
    """kfp.local's DockerRunner steps run through kfops.step_containers inside this block.

    kfp's handler calls its module's `run_docker_container` by name (kfp/local/
    docker_task_handler.py), so swapping that name is the one seam there is.
    """
    from kfp.local import docker_task_handler  # noqa: PLC0415

    with _swapped(docker_task_handler, "run_docker_container", step_containers.run_step_container):
        yield


@contextlib.contextmanager
def warm_steps_while_running() -> Iterator[None]:
    """kfp.local's SubprocessRunner steps fork from one warm process inside this block.

    kfp's handler calls its module's `run_local_subprocess` by name (kfp/local/
    subprocess_task_handler.py, SubprocessTaskHandler.run), so swapping that name is the one seam
    there is. kfops.warm_steps runs a step cold, through kfp's own function, when it can't fork it.
    """
    from kfp.local import subprocess_task_handler  # noqa: PLC0415

    upstream = subprocess_task_handler.run_local_subprocess
    with warm_steps.started() as zygote:
        warm = functools.partial(warm_steps.run_step, zygote, cold=upstream)
        with _swapped(subprocess_task_handler, "run_local_subprocess", warm):
            yield


@contextlib.contextmanager
def cheap_caller_names() -> Iterator[None]:
    """Inside this block kfp's task setters find their caller's name from the frames alone.

    Each setter (`set_cpu_request`, `set_display_name`...) calls `inspect.stack()[1][3]`, only to
    name itself in an error (kfp/dsl/pipeline_task.py `_ensure_container_spec_exists`).
    `inspect.stack` reads a source line and runs `inspect.getmodule` for every frame, and each
    frame of the import machinery (a `<frozen ...>` file no module owns) makes `getmodule` walk
    every module in `sys.modules`: building the training pipeline (48 setters) took ~0.5 CPU s
    among the ~2,000 modules `kfops run` has loaded by then. The swap gives that module an
    `inspect` whose `stack()` lists the same frames, names and lines, without the source context.
    """
    from kfp.dsl import pipeline_task  # noqa: PLC0415

    with _swapped(pipeline_task, "inspect", _FramesOnly(pipeline_task.inspect)):
        yield


@contextlib.contextmanager
def _swapped(module: Any, name: str, value: Any) -> Iterator[None]:
    """`module.name` is `value` inside the block and what it was after, whatever happens."""
    upstream = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, upstream)


class _FramesOnly:
    """`inspect` as kfp.dsl.pipeline_task uses it, with a `stack()` that reads no source."""

    def __init__(self, inspect_module: Any):
        self._inspect = inspect_module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inspect, name)

    def stack(self, context: int = 1) -> list[Any]:
        """The caller's frames outward, as `inspect.stack` gives them but with no code context."""
        frames, frame = [], sys._getframe(1)
        while frame is not None:
            frames.append(
                self._inspect.FrameInfo(
                    frame,
                    frame.f_code.co_filename,
                    frame.f_lineno,
                    frame.f_code.co_name,
                    None,
                    None,
                )
            )
            frame = frame.f_back
        return frames


@contextlib.contextmanager
def keep_print() -> Iterator[None]:
    """Puts `builtins.print` back as it was, whatever kfp.local left in its place.

    kfp.local indents each task's output by swapping `builtins.print` in and out
    (kfp/local/logging_utils.py `indented_print`, used by task_dispatcher.py); ParallelFor runs
    tasks on two threads, whose swaps interleave, so a run can end with print still indented.
    """
    import builtins  # noqa: PLC0415

    original = builtins.print
    try:
        yield
    finally:
        builtins.print = original


def _store(arguments: Mapping[str, Any]) -> Store | None:
    uri = arguments.get("store_uri")
    if not uri:
        return None
    return open_store(str(uri), config.StoreSettings.from_env())


def _read_outcome(summary: RunSummary, st: Store | None) -> dict[str, Any]:
    """Fills status, steps, failure, gate decision and model from the run's records."""
    if st is None:
        return {}
    try:
        detail = runs.RunIndex(st).show(summary.run_id)
    except errors.NotFound:
        return {}
    outcome = detail.get("outcome") or {}
    summary.steps = {str(s.get("step")): str(s.get("status")) for s in detail["steps"]}
    if detail["status"] == "failed":
        failed = next((s for s in detail["steps"] if s.get("status") == "failed"), outcome)
        summary.status, summary.failed_step = "failed", detail.get("failed_step")
        summary.error = detail.get("error")
        summary.exit_code = int(failed.get("exit_code") or errors.PipelineFailed.exit_code)
    summary.blessed = outcome.get("blessed")
    summary.reasons = list(outcome.get("reasons") or [])
    summary.notes = list(outcome.get("notes") or [])
    summary.deploy = outcome.get("deploy")
    if outcome.get("model"):
        summary.model_name = outcome["model"]["name"]
        summary.model_version = outcome["model"]["version"]
        summary.model_uri = outcome.get("model_uri")
    return outcome


def read_training_outputs(summary: RunSummary, outputs: Path) -> RunSummary:
    """Adds what the records do not hold: metrics with their baselines, and the report files."""
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
    # validation warnings (they never stop a run, so nothing else shows them)
    anomalies = _json(outputs / "validate" / "anomalies") or {}
    summary.warnings = [
        f"{a['column']}: {a['rule']}: {a['detail']}"
        for a in anomalies.get("anomalies", [])
        if a.get("severity") == "warning"
    ]
    # the gate's comparison with the champion, passed or not ("roc_auc 0.91 vs champion 0.89 ...")
    blessing = _json(outputs / "gate" / "blessing") or {}
    summary.champion = next(
        (c["detail"] for c in blessing.get("checks", []) if "champion" in c.get("rule", "")), None
    )
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
        st = open_store(str(store_uri), config.StoreSettings.from_env())
    except errors.KfopsError:
        return {"run_id": summary.run_id}
    return identity.from_run(st, summary.run_id)


def _json(path: Path) -> Any:
    return dataio.read_json(path) if path.is_file() else None


def _outputs_dir(outcome: Mapping[str, Any], pipeline_root: Path, *, own_root: bool) -> Path:
    """Where kfp.local put this run's artifacts.

    The exit step records it (its own output's location, as the runner gave it). Without that
    record, a pipeline root used by this run alone holds one run directory: that one.
    """
    if outcome.get("outputs"):
        return Path(outcome["outputs"])
    made = [d for d in pipeline_root.iterdir() if d.is_dir()] if pipeline_root.is_dir() else []
    return made[0] if own_root and len(made) == 1 else pipeline_root


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
