"""`kfops run`: the training pipeline on this machine through kfp.local, with a readable summary."""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from kfops import (
    config,
    datasets,
    errors,
    localrun,
    metric_catalog,
    parameters,
    recording,
    schema,
)
from kfops import store as kstore

# Sensible defaults for the built-in datasets, so `kfops run` alone does something meaningful.
BUILTIN_DEFAULTS = {
    "builtin:churn": {
        "label": datasets.CHURN_LABEL,
        "slice_columns": ["region", "plan"],
        "sensitive_column": "age_band",
    },
    "builtin:breast_cancer": {
        "label": datasets.BREAST_CANCER_LABEL,
        "slice_columns": [],
        "sensitive_column": "",
    },
}


def stage_flags() -> dict[str, tuple[str, parameters.Param]]:
    """`kfops run` flag -> (training pipeline parameter, the stage surface entry it sets)."""
    from kfops import evaluate, ingest, push, split, train  # noqa: PLC0415 (the stage surfaces)

    data, fit, scored = (parameters.surface(c) for c in (split.SplitConfig, train.TrainConfig,
                                                        evaluate.EvalConfig))  # fmt: skip
    source = parameters.surface(ingest.IngestConfig)
    columns = parameters.surface(schema.ColumnConfig)
    return {
        "--source": ("source", source["source"]),
        "--format": ("source_format", source["format"]),
        "--delimiter": ("source_delimiter", source["delimiter"]),
        "--source-query": ("source_query", source["query"]),
        "--incremental": ("source_incremental", source["incremental"]),
        "--incremental-column": ("source_incremental_column", source["incremental_column"]),
        "--retention": ("source_retention", source["retention"]),
        **{flag: (name, columns[name]) for name, flag in schema.COLUMN_FLAGS.items()},
        "--label": ("label", data["label"]),
        "--task": ("task", data["task"]),
        "--slice": ("slice_columns", scored["slice_columns"]),
        "--sensitive": ("sensitive_column", scored["sensitive_column"]),
        "--seed": ("seed", fit["seed"]),
        "--estimator": ("estimator", fit["estimator"]),
        "--feature": ("derived_features", fit["derived_features"]),
        "--positive-class": ("positive_class", fit["positive_class"]),
        "--threshold-objective": ("threshold_objective", fit["threshold_objective"]),
        "--promote": ("promote", parameters.surface(push.PushConfig)["promote"]),
    }


# Flags whose default `kfops run` computes (from the builtin dataset or the source).
_COMPUTED = {
    "--source": "builtin:churn",
    "--label": None,
    "--task": None,
    "--slice": None,
    "--sensitive": None,
}
# Flags whose value is not the parameter's own type on the command line.
_SPELLED = {
    **{flag: {"metavar": "COL"} for flag in schema.COLUMN_FLAGS.values()},
    schema.COLUMN_FLAGS["column_types"]: {
        "type": None,
        "action": "append",
        "default": None,
        "metavar": "COL=KIND",
    },
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops run`: stage flags come from the stage config surfaces.

    The pipeline is built first, before the stage modules load scikit-learn, and inside
    `localrun.cheap_caller_names`: kfp's task setters (`set_cpu_request`...) call
    `inspect.stack()` for the caller's name (kfp/dsl/pipeline_task.py
    `_ensure_container_spec_exists`), and each frame of the import machinery (a `<frozen ...>`
    file no module owns) makes `inspect.getmodule` walk every module in `sys.modules`: 48 setters
    built the pipeline in ~1.1 CPU s among kfp's ~1,600 modules, ~4.5 s among the ~3,000 once
    the stages were loaded, and 0.04-0.05 s in the block (0.43-0.64 s without it, same YAML).
    """
    with localrun.cheap_caller_names():
        from kfops.pipelines import training  # noqa: F401, PLC0415 (built here: see above)

    p = subparsers.add_parser("run", help="run the training pipeline locally (kfp.local)")
    for flag, (name, param) in stage_flags().items():
        extra = {"default": _COMPUTED[flag]} if flag in _COMPUTED else _SPELLED.get(flag, {})
        parameters.add_flag(p, flag, param, dest=name, **extra)
    p.add_argument(
        "--name", dest="model_name", help="registered model name (default: the source's)"
    )
    p.add_argument(
        "--store",
        default=config.LOCAL_STORE,
        help="registry store: directory or s3://bucket/prefix",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="any training pipeline parameter as JSON, e.g. gate_thresholds='{\"roc_auc\":0.9}'",
    )
    p.add_argument(
        "--features-file",
        metavar="PATH",
        help="derived features from a JSON or YAML file, added to --feature (kfops.features)",
    )
    p.add_argument("--runner", choices=["subprocess", "docker"], default="subprocess")
    p.add_argument(
        "--experiment", default=None, help="group runs under this name (kfops runs list)"
    )
    p.add_argument("--runs-dir", default=".kfops/runs", help="where run directories and logs go")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=main)


def pipeline_arguments(
    known: Mapping[str, parameters.Param],
    source: str,
    *,
    store: str,
    given: Mapping[str, Any] | None = None,
    param_items: Sequence[str] = (),
) -> dict[str, Any]:
    """Training pipeline parameters for a source: builtin defaults, then flags, then `--param`.

    Args:
        known: the training pipeline's parameters (names and types).
        source: the data source.
        store: the registry store (a local path is made absolute).
        given: parameters set by flags (None values are not set).
        param_items: `KEY=JSON` items; JSON that does not parse is taken as a string.

    Raises:
        ConfigError: a malformed item, an unknown key (the message lists the known ones), a
            value of the wrong type, or no label for a source that is not builtin.
    """
    base = source.split("?", 1)[0]
    arguments: dict[str, Any] = {
        "source": source,
        "model_name": _model_name(base),
        "code_version": _git_commit(),
        **BUILTIN_DEFAULTS.get(base, {}),
    }
    arguments.update({k: v for k, v in (given or {}).items() if v is not None})
    for item in param_items:
        key, sep, value = item.partition("=")
        if not sep:
            raise errors.ConfigError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
    if not arguments.get("label"):
        raise errors.ConfigError(f"--label is required for source {source!r}")
    arguments["store_uri"] = store if store.startswith("s3://") else str(Path(store).resolve())
    checked = parameters.check_arguments(known, arguments)
    # every parameter, so the run header records what the run used, defaults included
    return {**{k: p.default for k, p in known.items() if not p.required}, **checked}


def main(args: argparse.Namespace) -> int:
    """Runs the pipeline, prints the summary; exit 0 when the run completed, blessed or not."""
    from kfops.pipelines import training  # noqa: PLC0415 (kfp import only when running)

    leave_without_final_collections()
    # before anything runs: a mistyped URI, a file or a read-only directory is one line
    kstore.open_writable(args.store, config.StoreSettings.from_env())
    given = {name: getattr(args, name) for name, _ in stage_flags().values()}
    given.update(model_name=args.model_name, experiment=args.experiment)
    given["derived_features"] = derived_features(args.derived_features, args.features_file)
    given["column_types"] = column_types(args.column_types)
    arguments = pipeline_arguments(
        training.PARAMETERS, args.source, store=args.store, given=given, param_items=args.param
    )
    check_before_running(arguments)
    if args.runner == "docker":
        from kfops.components._image import KFOPS_IMAGE  # noqa: PLC0415 (the steps' image)

        check_container_engine(KFOPS_IMAGE)
    run_id = uuid.uuid4().hex[:12]
    # The header with every parameter goes first; the steps then add their own records.
    recording.recorder(arguments["store_uri"], run_id).start(
        training.training.name,
        arguments,
        experiment=args.experiment,
        code_version=arguments["code_version"],
    )
    # bound now: during the run sys.stderr is redirected into the run log
    progress = None if args.json else functools.partial(_print_progress, sys.stderr)
    summary, outputs = localrun.run_pipeline(
        training.training,
        arguments,
        args.runs_dir,
        run_id=run_id,
        runner=args.runner,
        progress=progress,
        **_container_options(args, arguments["store_uri"]),
    )
    summary = localrun.read_training_outputs(summary, outputs)
    print(json.dumps(summary.to_dict(), indent=2, sort_keys=True) if args.json else render(summary))
    return summary.exit_code if summary.status != "succeeded" else 0


def leave_without_final_collections() -> None:
    """At interpreter exit, `gc.freeze()` first: the process ends ~1 s sooner.

    With scikit-learn, pandas and kfp loaded (~3,000 modules), CPython's shutdown spent 1.1-2.2 s
    after the last atexit handler, collecting garbage while it cleared the modules; with every
    object frozen there, 0.1-0.5 s (`kfops run` processes, load 9-12). Nothing is lost: by then
    the run log is closed and the summary printed, and the standard streams are flushed by the
    interpreter, not by a collection. Registered once, however often `main` runs in a process.
    """
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def column_types(items: Sequence[str] | None) -> dict[str, str] | None:
    """`--type COL=KIND` items as the `column_types` parameter (None: no flag given).

    Raises:
        ConfigError: an item without `=`.
    """
    if not items:
        return None
    out = {}
    for item in items:
        column, sep, kind = item.rpartition("=")
        if not sep or not column:
            raise errors.ConfigError(
                f"--type expects COL=KIND (KIND: {', '.join(schema.COLUMN_KINDS)}), got {item!r}"
            )
        out[column] = kind
    return out


def check_before_running(arguments: Mapping[str, Any]) -> None:
    """Mistakes the flags alone show: caught here as one line, before any step runs.

    The steps check the same things (a run submitted to Kubeflow gets no CLI); here they cost
    nothing and leave no failed run behind.

    Raises:
        ConfigError: a column flag that contradicts itself or another flag, `--task` against
            the task of the schema given as `schema_uri`, or a derived feature that does not
            parse (kfops.features.specs, the train step's own parse).
        StorageError: that schema cannot be read.
    """
    if arguments["derived_features"]:
        from kfops import features  # noqa: PLC0415 (only runs that derive features parse them)

        features.specs(arguments["derived_features"])
    columns = parameters.build(
        schema.ColumnConfig, **{k: arguments[k] for k in parameters.surface(schema.ColumnConfig)}
    )
    columns.check_uses(
        label=arguments["label"],
        slice=arguments["slice_columns"],
        sensitive=arguments["sensitive_column"],
        time_column=arguments["time_column"],
        group_column=arguments["group_column"],
    )
    if arguments["schema_uri"]:
        held = schema.load_uri(arguments["schema_uri"], config.StoreSettings.from_env())
        columns.check_held(held, arguments["schema_uri"], arguments["task"])


def check_container_engine(image: str) -> None:
    """`--runner docker` needs a Docker API (Docker or Podman's socket) at DOCKER_HOST and `image`.

    kfp.local's DockerRunner connects with `docker.from_env()`: DOCKER_HOST, else the default
    unix:///var/run/docker.sock (docker-py `utils.default_base_url`), and pulls a step's image the
    engine lacks. Asking both first turns "no engine" and "no image" into one line before the run
    starts instead of a traceback from inside the first step.

    Raises:
        ConfigError: nothing answers there, or the image is neither there nor pullable; names
            where it looked and how to fix it.
    """
    import docker  # noqa: PLC0415 (only for --runner docker)

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (DOCKER_HOST unset)"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except docker.errors.DockerException as e:
        found = [s for s in _podman_sockets() if Path(s).is_socket()]
        fix = (
            f"export DOCKER_HOST=unix://{found[0]} (Podman's socket is there)"
            if found
            else "start Docker, or Podman's API (podman system service --time=0 unix://SOCK &) "
            "and export DOCKER_HOST=unix://SOCK"
        )
        raise errors.ConfigError(
            f"--runner docker: no container engine answers at {where} "
            f"({_root_cause(e)}); {fix}; or use --runner subprocess"
        ) from e
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.DockerException as e:
            why = str(getattr(e, "explanation", None) or _root_cause(e))[:160]
            raise errors.ConfigError(
                f"--runner docker: the steps' image {image} is not in the engine at {where} and "
                f"could not be pulled ({why}); build it with `make image` (or `make "
                "image-local`), or set KFOPS_IMAGE to an image the engine has"
            ) from e


def _root_cause(error: BaseException) -> str:
    """The innermost reason, short: "No such file or directory", "Permission denied"..."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return (str(error).splitlines() or [type(error).__name__])[0][:80]


def _podman_sockets() -> list[str]:
    """Where Podman's API socket usually is: rootless, rootful, and `make image-local`'s."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return [
        f"{runtime}/podman/podman.sock",
        "/run/podman/podman.sock",
        str(Path(".kfops/podman/podman.sock").resolve()),
    ]


def derived_features(items: Sequence[str] | None, path: str | None) -> list | None:
    """`--feature` expressions and a `--features-file`'s specs as given (None: neither).

    Parsed once, with any `--param derived_features=...`, by `check_before_running`.

    Raises:
        ConfigError: an unreadable or malformed file (one line naming it).
    """
    if not items and not path:
        return None
    from kfops import features  # noqa: PLC0415 (only runs that derive features read them)

    return [*(items or []), *(features.load_file(path) if path else [])]


def render(summary: localrun.RunSummary) -> str:
    """The human summary printed at the end of a run."""
    lines = [f"run {summary.run_id} {summary.status} in {summary.duration_s:.1f}s"]
    lines += [f"  warning: {w}" for w in summary.warnings]
    if summary.status != "succeeded":
        lines.append(f"  step {summary.failed_step!r} failed: {summary.error}")
        if summary.model_version:  # e.g. a deploy that failed after the push
            lines.append(f"  registered {summary.model_name} v{summary.model_version} before that")
        # a failed validation's report says which rows and columns: print it here too
        lines += [f"  {name} report: {path}" for name, path in summary.reports.items()]
        lines.append(f"  full log: {summary.log}")
        return "\n".join(lines)
    verdict = "BLESSED" if summary.blessed else "NOT BLESSED"
    where = (
        f" -> registered {summary.model_name} v{summary.model_version} at {summary.model_uri}"
        if summary.model_version
        else " -> nothing registered"
    )
    lines.append(f"  gate: {verdict}{where}")
    lines += [f"  reason: {r}" for r in summary.reasons] + [f"  note: {n}" for n in summary.notes]
    if summary.champion and summary.blessed:  # when not blessed, a failed comparison is a reason
        lines.append(f"  champion: {summary.champion}")
    for k in metric_catalog.key_metrics(summary.metrics):
        shown, base = metric_catalog.get(k).show, summary.metrics.get(f"baseline/{k}")
        lines.append(
            f"  {k:<9} {shown(summary.metrics[k])}"
            + (f"  (baseline {shown(base)})" if base is not None else "")
        )
    lines += [f"  {name} report: {path}" for name, path in summary.reports.items()]
    return "\n".join(lines)


def _container_options(args: argparse.Namespace, store_uri: str) -> dict[str, Any]:
    """For `--runner docker`: what every step container must see (paths and S3 settings)."""
    if args.runner != "docker":
        return {}
    paths = [str(Path(args.runs_dir).resolve())]
    if not store_uri.startswith("s3://"):
        paths.append(store_uri)
    root = os.path.commonpath(paths)
    if root == os.path.dirname(root):  # the filesystem root: never mount that into a container
        raise errors.ConfigError(
            "with --runner docker, keep --runs-dir and a local --store under one directory "
            f"(they share only {root!r}); the step containers see just that directory"
        )
    env = {k: v for k, v in os.environ.items() if k.startswith("MINIO_")}
    return {"shared_root": root, "step_env": env}


def _print_progress(stream: TextIO, task: str, status: str, seconds: float) -> None:
    """One line per stage; in a terminal the "running" line is overwritten when the stage ends."""
    if status == "running":
        if stream.isatty():
            print(f"  … {task}", end="\r", file=stream, flush=True)
        return
    mark = {"succeeded": "✓", "failed": "✗"}.get(status, "?")
    print(f"  {mark} {task} ({seconds:.1f}s)   ", file=stream, flush=True)


def _model_name(base_source: str) -> str:
    if base_source.startswith("builtin:"):
        return base_source.split(":", 1)[1]
    stem = Path(base_source.split("?", 1)[0]).stem or "model"
    return (
        "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-").lower() or "model"
    )


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
