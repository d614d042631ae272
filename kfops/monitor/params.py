"""Monitor results as KFP metrics and metadata, and delayed labels through the store.

The component and the CLI both call these, so a figure means the same thing in both places.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import dataio
from kfops.monitor import core, window
from kfops.store import base


def metric_values(result: core.MonitorResult) -> dict[str, float]:
    """Numeric figures for KFP Metrics: decision, rows, drift share, per-column scores, quality."""
    values: dict[str, float] = {
        "retrain": float(result.retrain),
        "rows": float(result.rows),
        "judged_rows": float(result.judged_rows),
        "drifted_columns": float(len(result.drifted_columns)),
    }
    if result.drift_share is not None:
        values["drift_share"] = round(result.drift_share, 6)
    for name, col in {**result.columns, **result.prediction_drift}.items():
        values[f"drift_score/{name}"] = round(col.score, 6)
    for name, value in result.quality.items():
        values[f"quality/{name}"] = round(value, 6)
    return values


def decision_metadata(result: core.MonitorResult) -> dict[str, Any]:
    """Small JSON facts for the decision artifact's metadata (shown in the KFP UI)."""
    return {
        "retrain": result.retrain,
        "status": result.status,
        "reasons": list(result.reasons),
        "notes": list(result.notes),
        "drifted_columns": list(result.drifted_columns),
        "model": result.model,
        "version": result.version,
    }


def store_labels(store: base.Store, name: str, labels: pd.DataFrame | None) -> str:
    """Puts delayed labels in the store for `read_labels`; returns the key ("" for None)."""
    if labels is None:
        return ""
    data = window.to_bytes(labels)
    key = f"monitoring/{name}/labels/{dataio.sha256_bytes(data)[:16]}.parquet"
    store.put_bytes(key, data)
    return key


def read_labels(store: base.Store, key: str) -> pd.DataFrame | None:
    """Delayed labels stored as Parquet under `key` in the store; None when key is empty."""
    if not key:
        return None
    with tempfile.TemporaryDirectory(prefix="kfops-labels-") as tmp:
        store.get_file(key, Path(tmp, "labels.parquet"))
        return dataio.read_frame(Path(tmp, "labels.parquet"))
