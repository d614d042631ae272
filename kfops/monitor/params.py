"""Plain parameters (what a KFP component or the CLI receives) to config, and results to metrics.

The component and the CLI both call these, so a knob means the same thing in both places.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import dataio, errors
from kfops.monitor import config as config_mod
from kfops.monitor import core, window
from kfops.store import base


def build_config(
    window: str = "all",
    drift_share_threshold: float = 0.3,
    key_columns: Sequence[str] | None = None,
    quality_metric: str = "",
    quality_floor: float | None = None,
    min_rows: int = 500,
    sample_size: int = 20_000,
    reference_rows: int = 10_000,
    seed: int = 0,
) -> config_mod.MonitorConfig:
    """A validated MonitorConfig from flat parameters.

    Args:
        window: `all`, `last:N`, a duration (`24h`, `7d`) or `START..END` (see Window.parse).
        drift_share_threshold: retrain when this share of features drifted.
        key_columns: columns whose drift alone triggers a retrain.
        quality_metric: metric held to `quality_floor` ("" disables the check).
        quality_floor: the floor (ceiling for mae/rmse); required with quality_metric.
        min_rows: smaller windows are not judged.
        sample_size: rows of the window judged at most.
        reference_rows: size of the reference summary.
        seed: seed of the window sample.

    Raises:
        ConfigError: any invalid value, named.
    """
    floor = None
    if quality_metric:
        if quality_floor is None:
            raise errors.ConfigError(f"quality_metric {quality_metric!r} needs a quality_floor")
        floor = config_mod.QualityFloor(quality_metric, float(quality_floor))
    return config_mod.MonitorConfig(
        window=config_mod.Window.parse(window),
        drift_share_threshold=drift_share_threshold,
        key_columns=tuple(key_columns or ()),
        quality_floor=floor,
        min_rows=min_rows,
        sample_size=sample_size,
        reference_rows=reference_rows,
        seed=seed,
    )


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
