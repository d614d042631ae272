"""A monitoring check recorded as a run (pipeline `kfops-monitoring`), report included.

So `kfops runs list`, `kfops ui` and anything else reading run records see when a model was last
judged, what was found (drift share, rows, quality) and the decision, next to the training runs
it may have started. The model and version judged are the run's `model`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kfops.runs import recorder as recorder_mod
from kfops.store import base

PIPELINE = "kfops-monitoring"
_FIGURES = ("rows", "judged_rows", "labelled_rows", "drift_share", "sample_error_bound")


def record(
    store: base.Store,
    result: Mapping[str, Any],
    html: str,
    parameters: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> str:
    """Records one monitoring result (`MonitorResult.to_dict()`) and its HTML report.

    The parameters are the model name and the monitor's configuration (`result["config"]`),
    the same whether the monitor step of a pipeline or `kfops monitor` records. A result that
    names its run (`run_id`, set by the monitor step) is recorded under that id, so
    `kfops monitor --retrain`, passing on the step's decision, rewrites the same record.

    Returns:
        The run id.
    """
    run_id = run_id or result.get("run_id") or f"mon-{uuid.uuid4().hex[:12]}"
    rec = recorder_mod.RunRecorder(store, run_id)
    params = {
        "model_name": result.get("model"),
        **(result.get("config") or {}),
        **(parameters or {}),
    }
    rec.start(PIPELINE, params)
    with rec.step("monitor", params) as step:
        for name in _FIGURES:
            if isinstance(result.get(name), int | float):
                step.metric(name, result[name])
        step.metric("retrain", 1.0 if result.get("retrain") else 0.0)
        for name, value in (result.get("quality") or {}).items():
            if isinstance(value, int | float):
                step.metric(f"quality/{name}", value)
        step.output(
            "decision",
            status=result.get("status"),
            retrain=bool(result.get("retrain")),
            drifted_columns=list(result.get("drifted_columns") or []),
        )
        if html:
            step.report("monitoring", html)
    model = (
        {"name": result["model"], "version": result["version"]} if result.get("version") else None
    )
    reasons = [*(result.get("reasons") or []), *(result.get("notes") or [])]
    rec.finish("succeeded", reasons=reasons, model=model)
    return run_id
