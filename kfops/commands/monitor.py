"""`kfops monitor`: judge a model's logged traffic, write the report, optionally retrain locally."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import config, dataio, errors, localrun, parameters, registry, store
from kfops.commands import run as run_cmd
from kfops.monitor import core, fresh, params, service
from kfops.monitor import rules as mconfig
from kfops.runs import monitoring as runs_monitoring


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops monitor`."""
    p = subparsers.add_parser(
        "monitor",
        help="drift/quality of a model's logged traffic; retrain when it matters",
        description="Compares the inference logs of --name in --window with the champion's "
        "reference sample (Evidently), writes an HTML report and a JSON summary, and with "
        "--retrain runs the training pipeline locally when the decision says so.",
    )
    p.add_argument(
        "--store", default=config.LOCAL_STORE, help="store: directory or s3://bucket/prefix"
    )
    p.add_argument("--name", default="churn", help="registered model name")
    p.add_argument("--model-version", help="judge this version's traffic (default: the champion's)")
    for flag, param in monitor_flags().items():
        parameters.add_flag(p, flag, param)
    p.add_argument(
        "--labels", help="delayed labels (Parquet or CSV): kfops_request_id[, kfops_row], label"
    )
    p.add_argument(
        "--out-dir", default=".kfops/monitoring", help="report.html and summary.json go here"
    )
    p.add_argument("--retrain", action="store_true", help="run the training pipeline if needed")
    p.add_argument("--source", help="data to retrain on instead of fresh data (the champion's "
                   "snapshot plus labelled traffic); sets --retrain-on source")  # fmt: skip
    p.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                   help="training pipeline parameter, as for `kfops run`")  # fmt: skip
    p.add_argument("--runs-dir", default=".kfops/runs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def monitor_flags() -> dict[str, parameters.Param]:
    """`kfops monitor` flag -> the MonitorConfig surface entry it sets (dest: the field name)."""
    surface = parameters.surface(mconfig.MonitorConfig)
    flags = {f"--{name.replace('_', '-')}": param for name, param in surface.items()}
    flags["--key-column"] = flags.pop("--key-columns")  # repeated: one column each
    for name, param in parameters.surface(fresh.FreshDataConfig).items():
        flags.setdefault(f"--{name.replace('_', '-')}", param)  # seed is the monitor's too
    return flags


def main(args: argparse.Namespace) -> int:
    """Monitors (with --retrain: the whole monitoring pipeline), writes report and summary."""
    cfg = parameters.build(mconfig.MonitorConfig, **_monitor_values(args))
    st = store.open_store(args.store, config.StoreSettings.from_env())
    labels = _labels(args.labels)
    if args.retrain:
        result, html, retraining = _run_loop(args, st, labels)
    else:
        monitored = service.monitor_model(st, args.name, cfg, labels, args.model_version)
        result, html, retraining = monitored.to_dict(), monitored.html, None
    out = Path(args.out_dir) / args.name
    dataio.write_text(out / "report.html", html)
    dataio.write_json(result, out / "summary.json")
    runs_monitoring.record(st, result, html)  # a `kfops-monitoring` run: kfops ui, runs list
    summary = {**result, "report": str(out / "report.html"), "retraining": retraining}
    print(json.dumps(summary, sort_keys=True, default=str) if args.json else render(summary))
    return 1 if retraining is not None and retraining["status"] != "succeeded" else 0


def _labels(path: str | None) -> pd.DataFrame | None:
    if not path:
        return None
    if path.endswith(".csv"):
        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as e:
            raise errors.DataError(f"cannot read labels {path}: {e}") from e
    return dataio.read_frame(path)


def _monitor_values(args: argparse.Namespace) -> dict[str, Any]:
    """The MonitorConfig values the flags set (unset list flags are left to the default)."""
    values = {name: getattr(args, name) for name in parameters.surface(mconfig.MonitorConfig)}
    return {k: v for k, v in values.items() if v is not None}


def _run_loop(
    args: argparse.Namespace, st: store.Store, labels: pd.DataFrame | None
) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Runs the monitoring pipeline (monitor -> if retrain: training) through kfp.local.

    Returns the monitor's summary and report, and the training run's summary when it ran.

    Raises:
        PipelineFailed: the monitor step itself failed (names the step and its error).
    """
    from kfops.pipelines import monitoring, training  # noqa: PLC0415 (kfp only when running)

    arguments = _loop_arguments(args, st, labels, training.PARAMETERS)
    arguments = parameters.check_arguments(monitoring.PARAMETERS, arguments)
    run, outputs = localrun.run_pipeline(
        monitoring.monitoring, arguments, args.runs_dir, progress=None if args.json else _progress
    )
    decision = outputs / "monitor" / "decision"
    if not decision.is_file():  # the monitor step wrote no decision: it failed
        raise errors.PipelineFailed("monitor", run.error or f"see {run.log}")
    result = dataio.read_json(decision)
    html = (outputs / "monitor" / "report").read_text(encoding="utf-8")
    if not result["retrain"]:
        return result, html, None
    retraining = localrun.read_training_outputs(run, outputs).to_dict()
    built = outputs / "fresh-data" / "dataset"  # what retraining read (kfops.monitor.fresh)
    retraining["fresh_data"] = dataio.read_json(built) if built.is_file() else None
    return result, html, retraining


def _loop_arguments(
    args: argparse.Namespace,
    st: store.Store,
    labels: pd.DataFrame | None,
    training: Mapping[str, parameters.Param],
) -> dict[str, Any]:
    """Monitoring pipeline parameters: training's as `kfops run` sets them, then the monitor's.

    The champion's recorded source, label and estimator are the retraining defaults; `--param`
    sets any other training parameter and is checked against the training pipeline's list.
    """
    champion = registry.Registry(st).load(args.name)
    lineage = champion.manifest.get("metadata", {}).get("lineage", {})
    source = args.source or lineage.get("source")
    if not source:
        raise errors.ConfigError(f"champion of {args.name!r} records no source; pass --source")
    given = {
        **champion_parameters(st, lineage.get("run_id"), training),
        "model_name": args.name,
        "seed": args.seed,
        "label": champion.schema.label or None,
        "estimator": lineage.get("estimator"),
    }
    arguments = run_cmd.pipeline_arguments(
        training, source, store=args.store, given=given, param_items=args.param
    )
    arguments.update(_monitor_values(args))
    fresh_values = {n: getattr(args, n, None) for n in parameters.surface(fresh.FreshDataConfig)}
    arguments.update({k: v for k, v in fresh_values.items() if v is not None})
    if args.source:
        arguments["retrain_on"] = "source"  # an explicit --source is what to retrain on
    arguments["labels_key"] = params.store_labels(st, args.name, labels)
    return arguments


# Run plumbing: where and under which run, never carried from the champion's run to the next.
_NOT_CARRIED = {"source", "store_uri", "run_id", "code_version", "experiment"}


def champion_parameters(
    st: store.Store, run_id: Any, training: Mapping[str, parameters.Param]
) -> dict[str, Any]:
    """The training parameters the champion's run recorded: retraining trains the same way.

    Without them, a retrain would silently revert split strategy, time/group columns, schema,
    fairness, slices and gate settings to their defaults. Empty when the run was not recorded.
    """
    from kfops import runs  # noqa: PLC0415

    if not run_id:
        return {}
    try:
        recorded = runs.RunIndex(st).show(str(run_id)).get("parameters") or {}
    except (errors.NotFound, errors.ConfigError):
        return {}
    return {k: v for k, v in recorded.items() if k in training and k not in _NOT_CARRIED}


def _progress(task: str, status: str, seconds: float) -> None:
    # kfp.local's output is captured into the run log, so progress goes to the real terminal.
    if status != "running":
        print(f"  {task:<20} {status} {seconds:6.1f}s", file=sys.__stderr__, flush=True)


def render(summary: dict[str, Any]) -> str:
    """The human summary: verdict, reasons, drifted columns, where the report is."""
    name = f"{summary['model']} v{summary['version']}"
    if summary["status"] != core.JUDGED:
        head = f"{name}: not judged ({'; '.join(summary['notes'])})"
    else:
        verdict = "RETRAIN" if summary["retrain"] else "no retraining needed"
        head = (
            f"{name}: {verdict} - {summary['judged_rows']} of {summary['rows']} rows judged, "
            f"drift share {summary['drift_share']:.2f}"
        )
    lines = [head, *(f"  reason: {r}" for r in summary["reasons"])]
    lines += [f"  note: {n}" for n in summary["notes"] if summary["status"] == core.JUDGED]
    lines += [f"  {c}: {d['method']} {d['score']:.4f}" for c, d in _drifted(summary)]
    lines.append(f"  report: {summary['report']}")
    retraining = summary.get("retraining")
    if retraining:
        built = retraining.get("fresh_data") or {}
        if built.get("sha256"):
            lines.append(
                f"  fresh data: {built['rows']} rows ({built['labelled_rows']} labelled from "
                f"traffic, {built['old_rows_kept']} of the champion's) in {built['source']}"
            )
        lines.append(
            f"  retrained: run {retraining['run_id']} {retraining['status']}, "
            f"blessed={retraining['blessed']}, version={retraining['model_version']}"
        )
    return "\n".join(lines)


def _drifted(summary: dict[str, Any]):
    tested = {**summary["columns"], **summary["prediction_drift"]}
    return [(c, d) for c, d in tested.items() if d["drifted"]]
