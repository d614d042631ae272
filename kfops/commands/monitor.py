"""`kfops monitor`: judge a model's logged traffic, write the report, optionally retrain locally."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import config, dataio, errors, localrun, registry, store
from kfops.commands import run as run_cmd
from kfops.monitor import core, params, service


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops monitor`."""
    p = subparsers.add_parser(
        "monitor",
        help="drift/quality of a model's logged traffic; retrain when it matters",
        description="Compares the inference logs of --name in --window with the champion's "
        "reference sample (Evidently), writes an HTML report and a JSON summary, and with "
        "--retrain runs the training pipeline locally when the decision says so.",
    )
    p.add_argument("--store", default=".kfops/store", help="store: directory or s3://bucket/prefix")
    p.add_argument("--name", default="churn", help="registered model name")
    p.add_argument("--window", default="all", help="all | last:N | 24h | 7d | START..END (UTC)")
    p.add_argument("--drift-share", type=float, default=0.3, help="retrain at this drifted share")
    p.add_argument("--key-column", action="append", default=[], help="drift here alone retrains")
    p.add_argument("--quality-metric", default="", help="e.g. accuracy, roc_auc, f1, mae")
    p.add_argument("--quality-floor", type=float, help="floor (ceiling for mae/rmse)")
    p.add_argument(
        "--labels", help="delayed labels (Parquet or CSV): kfops_request_id[, kfops_row], label"
    )
    p.add_argument("--min-rows", type=int, default=500)
    p.add_argument("--sample-size", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out-dir", default=".kfops/monitoring", help="report.html and summary.json go here"
    )
    p.add_argument("--retrain", action="store_true", help="run the training pipeline if needed")
    p.add_argument("--source", help="data to retrain on (default: the champion's recorded source)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                   help="training pipeline parameter, as for `kfops run`")  # fmt: skip
    p.add_argument("--runs-dir", default=".kfops/runs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Monitors (with --retrain: the whole monitoring pipeline), writes report and summary."""
    cfg = params.build_config(
        args.window, args.drift_share, args.key_column, args.quality_metric, args.quality_floor,
        args.min_rows, args.sample_size, seed=args.seed,
    )  # fmt: skip
    st = store.open_store(args.store, config.StoreSettings.from_env())
    labels = _labels(args.labels)
    if args.retrain:
        result, html, retraining = _run_loop(args, st, labels)
    else:
        monitored = service.monitor_model(st, args.name, cfg, labels)
        result, html, retraining = monitored.to_dict(), monitored.html, None
    out = Path(args.out_dir) / args.name
    dataio.write_text(out / "report.html", html)
    dataio.write_json(result, out / "summary.json")
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


def _run_loop(
    args: argparse.Namespace, st: store.Store, labels: pd.DataFrame | None
) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Runs the monitoring pipeline (monitor -> if retrain: training) through kfp.local.

    Returns the monitor's summary and report, and the training run's summary when it ran.

    Raises:
        PipelineFailed: the monitor step itself failed (names the step and its error).
    """
    from kfops.pipelines import monitoring  # noqa: PLC0415 (kfp import only when running)

    run, outputs = localrun.run_pipeline(
        monitoring.monitoring, _loop_arguments(args, st, labels), args.runs_dir,
        progress=None if args.json else _progress,
    )  # fmt: skip
    if run.steps.get("monitor") != "SUCCESS":
        raise errors.PipelineFailed("monitor", run.error or f"see {run.log}")
    result = dataio.read_json(outputs / "monitor" / "decision")
    html = (outputs / "monitor" / "report").read_text(encoding="utf-8")
    if not result["retrain"]:
        return result, html, None
    return result, html, localrun.read_training_outputs(run, outputs).to_dict()


def _loop_arguments(
    args: argparse.Namespace, st: store.Store, labels: pd.DataFrame | None
) -> dict[str, Any]:
    """Monitoring pipeline parameters; training ones as `kfops run` sets them for the source."""
    champion = registry.Registry(st).load(args.name)
    lineage = champion.manifest.get("metadata", {}).get("lineage", {})
    source = args.source or lineage.get("source")
    if not source:
        raise errors.ConfigError(f"champion of {args.name!r} records no source; pass --source")
    training = run_cmd.pipeline_arguments(_run_namespace(args, source, champion, lineage))
    keep = ("source", "label", "task", "store_uri", "seed", "estimator", "slice_columns",
            "sensitive_column", "code_version", "search_iterations", "cv_folds",
            "gate_thresholds", "champion_tolerance", "run_id")  # fmt: skip
    arguments = {k: v for k, v in training.items() if k in keep}
    arguments.update(
        model_name=args.name, window=args.window, drift_share_threshold=args.drift_share,
        key_columns=list(args.key_column), quality_metric=args.quality_metric,
        quality_floor=args.quality_floor or 0.0, min_rows=args.min_rows,
        sample_size=args.sample_size, labels_key=params.store_labels(st, args.name, labels),
    )  # fmt: skip
    return arguments


def _run_namespace(
    args: argparse.Namespace, source: str, champion: registry.LoadedModel, lineage: dict[str, Any]
) -> argparse.Namespace:
    """`kfops run`'s own parser fills every flag it knows, so its defaults stay its own."""
    parser = argparse.ArgumentParser(prog="kfops")
    run_cmd.register(parser.add_subparsers(dest="command"))
    argv = ["run", "--source", source, "--name", args.name, "--store", args.store]
    argv += ["--seed", str(args.seed)]
    if champion.schema.label:
        argv += ["--label", champion.schema.label]
    if lineage.get("estimator"):
        argv += ["--estimator", lineage["estimator"]]
    for item in args.param:
        argv += ["--param", item]
    return parser.parse_args(argv)


def _progress(task: str, status: str, seconds: float) -> None:
    # kfp.local's output is captured into the run log, so progress goes to the real terminal.
    if status != "started":
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
        lines.append(
            f"  retrained: run {retraining['run_id']} {retraining['status']}, "
            f"blessed={retraining['blessed']}, version={retraining['model_version']}"
        )
    return "\n".join(lines)


def _drifted(summary: dict[str, Any]):
    tested = {**summary["columns"], **summary["prediction_drift"]}
    return [(c, d) for c, d in tested.items() if d["drifted"]]
