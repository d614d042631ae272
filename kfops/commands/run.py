"""`kfops run`: the training pipeline on this machine through kfp.local, with a readable summary."""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from kfops import config, datasets, errors, localrun, metric_catalog, parameters, recording
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
    return {
        "--source": ("source", source["source"]),
        "--format": ("source_format", source["format"]),
        "--delimiter": ("source_delimiter", source["delimiter"]),
        "--source-query": ("source_query", source["query"]),
        "--incremental": ("source_incremental", source["incremental"]),
        "--incremental-column": ("source_incremental_column", source["incremental_column"]),
        "--retention": ("source_retention", source["retention"]),
        "--label": ("label", data["label"]),
        "--task": ("task", data["task"]),
        "--slice": ("slice_columns", scored["slice_columns"]),
        "--sensitive": ("sensitive_column", scored["sensitive_column"]),
        "--seed": ("seed", fit["seed"]),
        "--estimator": ("estimator", fit["estimator"]),
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops run`: stage flags come from the stage config surfaces."""
    p = subparsers.add_parser("run", help="run the training pipeline locally (kfp.local)")
    for flag, (name, param) in stage_flags().items():
        extra = {"default": _COMPUTED[flag]} if flag in _COMPUTED else {}
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

    # before anything runs: a mistyped URI, a file or a read-only directory is one line
    kstore.open_writable(args.store, config.StoreSettings.from_env())
    given = {name: getattr(args, name) for name, _ in stage_flags().values()}
    given.update(model_name=args.model_name, experiment=args.experiment)
    arguments = pipeline_arguments(
        training.PARAMETERS, args.source, store=args.store, given=given, param_items=args.param
    )
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


def render(summary: localrun.RunSummary) -> str:
    """The human summary printed at the end of a run."""
    lines = [f"run {summary.run_id} {summary.status} in {summary.duration_s:.1f}s"]
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
