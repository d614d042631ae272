"""The monitor's outcome as Prometheus metrics: a text-format file in the store, pushed on.

The monitor is a batch job (a KFP step or `kfops monitor`), so Prometheus cannot scrape it. Every
monitoring check writes `monitoring/<model>/metrics.prom` into the store in the Prometheus text
format (0.0.4) without timestamps, the body a Pushgateway accepts as it is. `push` (run by the
CronJob in manifests/monitoring, or by hand) PUTs that file to a Pushgateway under
`job=kfops-monitor, model=<model>`; Prometheus scrapes the Pushgateway with honor_labels, as
upstream documents for batch jobs (https://prometheus.io/docs/practices/pushing/).

Usage:
    python -m kfops.monitor.exposition push --store s3://kfops/store --name churn \
        --pushgateway http://pushgateway.monitoring:9091
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from kfops import errors
from kfops.store import base

JOB = "kfops-monitor"
PREFIX = "monitoring"
FILE = "metrics.prom"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# name -> help; every series carries model (and version where the check judged one).
METRICS = {
    "kfops_monitor_last_run_timestamp_seconds": "Unix time the monitor last checked this model.",
    "kfops_monitor_judged": "1 when the last check judged the window, 0 for no data/too small.",
    "kfops_monitor_retrain": "1 when the last check decided to retrain.",
    "kfops_monitor_drift_share": "Share of the model's features that drifted (judged checks).",
    "kfops_monitor_drift_share_threshold": "The drift share at which the monitor retrains.",
    "kfops_monitor_rows": "Logged rows in the last check's window.",
    "kfops_monitor_judged_rows": "Rows the last check judged (a sample of a long window).",
    "kfops_monitor_quality": "Quality on delayed labels in the last check, by metric.",
}


def key(model: str) -> str:
    """The store key of a model's metrics file."""
    return f"{PREFIX}/{model}/{FILE}"


def render(result: Mapping[str, Any], now: float | None = None) -> bytes:
    """The text-format exposition of one `MonitorResult.to_dict()`.

    A check that could not judge (no data, too few rows) exports no drift share, so a panel or
    alert never reads a stale or made-up value as this check's.
    """
    registry = CollectorRegistry(auto_describe=True)
    model, version = str(result["model"]), str(result.get("version") or "")

    def gauge(name: str, value: float, **labels: str) -> None:
        g = Gauge(name, METRICS[name], ["model", "version", *labels], registry=registry)
        g.labels(model, version, *labels.values()).set(value)

    judged = result.get("status") == "judged"
    gauge("kfops_monitor_last_run_timestamp_seconds", time.time() if now is None else now)
    gauge("kfops_monitor_judged", 1.0 if judged else 0.0)
    gauge("kfops_monitor_retrain", 1.0 if result.get("retrain") else 0.0)
    threshold = (result.get("config") or {}).get("drift_share_threshold")
    if threshold is not None:
        gauge("kfops_monitor_drift_share_threshold", float(threshold))
    if judged and result.get("drift_share") is not None:
        gauge("kfops_monitor_drift_share", float(result["drift_share"]))
    gauge("kfops_monitor_rows", float(result.get("rows") or 0))
    gauge("kfops_monitor_judged_rows", float(result.get("judged_rows") or 0))
    quality = {k: v for k, v in (result.get("quality") or {}).items() if isinstance(v, int | float)}
    if quality:
        g = Gauge(
            "kfops_monitor_quality", METRICS["kfops_monitor_quality"],
            ["model", "version", "metric"], registry=registry,
        )  # fmt: skip
        for metric, value in sorted(quality.items()):
            g.labels(model, version, metric).set(float(value))
    return generate_latest(registry)


def write(store: base.Store, result: Mapping[str, Any], now: float | None = None) -> str:
    """Writes the model's metrics file (replacing the last one) and returns its key."""
    target = key(str(result["model"]))
    store.put_bytes(target, render(result, now))
    return target


def push(store: base.Store, model: str, gateway: str, timeout: float = 10.0) -> str:
    """PUTs the model's metrics file to a Pushgateway; returns the group URL.

    PUT replaces every metric of the group `job=kfops-monitor/model=<model>`, so a series the
    last check did not export (drift share of an unjudged check) disappears (Pushgateway API:
    https://github.com/prometheus/pushgateway#put-method).

    Raises:
        NotFound: the monitor never wrote metrics for this model.
        StorageError: the Pushgateway refused the body or could not be reached.
    """
    import httpx  # noqa: PLC0415 (only the push needs an HTTP client)

    body = store.get_bytes(key(model))
    url = f"{gateway.rstrip('/')}/metrics/job/{JOB}/model/{quote(model, safe='')}"
    try:
        response = httpx.put(url, content=body, headers={"Content-Type": CONTENT_TYPE},
                             timeout=timeout, trust_env=False)  # fmt: skip
    except httpx.HTTPError as e:
        raise errors.StorageError(f"cannot reach the Pushgateway at {url}: {e}") from e
    if response.status_code >= 300:
        raise errors.StorageError(
            f"Pushgateway {url} answered {response.status_code}: {response.text.strip()[:200]}"
        )
    return url


def main(argv: list[str] | None = None) -> int:
    """`python -m kfops.monitor.exposition push`: one line on failure, kfops.errors exit code."""
    from kfops import config, store  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m kfops.monitor.exposition")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("push", help="PUT a model's monitor metrics file to a Pushgateway")
    p.add_argument("--store", required=True, help="store: directory or s3://bucket/prefix")
    p.add_argument("--name", required=True, action="append", help="model name (repeatable)")
    p.add_argument("--pushgateway", required=True, help="e.g. http://pushgateway:9091")
    args = parser.parse_args(argv)
    try:
        st = store.open_store(args.store, config.StoreSettings.from_env())
        for name in args.name:
            print(f"pushed {push(st, name, args.pushgateway)}")
    except errors.KfopsError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
