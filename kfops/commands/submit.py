"""`kfops submit`: upload the compiled pipeline to Kubeflow Pipelines and run or schedule it.

kfops submit --host http://localhost:8080 --param source=builtin:churn
kfops submit --host http://localhost:8080 --schedule "0 3 * * *" --experiment nightly
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import pathlib

from kfops import submit


def default_package() -> pathlib.Path:
    """The compiled training pipeline shipped inside the kfops package."""
    return pathlib.Path(
        str(importlib.resources.files("kfops.pipelines") / "compiled" / "training.yaml")
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops submit`."""
    p = subparsers.add_parser("submit", help="submit the compiled pipeline to a KFP cluster")
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    p.add_argument(
        "--package", type=pathlib.Path, help="compiled pipeline YAML (default: training)"
    )
    p.add_argument("--experiment", default="kfops", help="experiment name (created when missing)")
    p.add_argument("--schedule", help="cron expression: a recurring run instead of one run now")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable): NAME=VALUE, read as the type the pipeline declares "
        "(text, integer, number, true/false, JSON list or object); a wrong type is refused",
    )
    p.add_argument("--run-name", help="run name (default: pipeline name and version)")
    p.add_argument("--namespace", help="KFP namespace (multi-user installs)")
    p.add_argument(
        "--service-account", help="service account of the run's pods, e.g. kfops-deployer"
    )
    p.add_argument(
        "--allow-local-store",
        action="store_true",
        help="submit even if store_uri is a path, not s3:// (only with one volume shared by "
        "every step at that path)",
    )
    p.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait for the run to finish; exit non-zero unless it succeeded",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Reads the API token from KF_PIPELINES_TOKEN (a flag would show in `ps`), then submits."""
    config = submit.SubmitConfig(
        host=args.host,
        package=args.package or default_package(),
        experiment=args.experiment,
        schedule=args.schedule,
        params=submit.parse_params(args.param),
        run_name=args.run_name,
        namespace=args.namespace,
        service_account=args.service_account,
        token=os.environ.get("KF_PIPELINES_TOKEN") or None,
        wait_seconds=args.wait,
        allow_local_store=args.allow_local_store,
    )
    result = submit.submit(config)
    started = (
        f"run {result.run_id}" if result.run_id else f"recurring run {result.recurring_run_id}"
    )
    print(f"pipeline {result.pipeline_id} version {result.version_name}: {started}")
    print(result.url)
    return 0
