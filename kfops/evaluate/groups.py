"""Per-segment metrics (slices) and fairness gaps across a sensitive column.

A numeric column with many values is cut into quartiles, so `slice/age=(18.0, 30.0]` is a useful
segment rather than one slice per distinct age. Missing values form their own `<missing>` group.
Groups smaller than `min_rows` are reported with their row count and `too_small`, but get no
metrics and do not count toward fairness gaps: a gap over a handful of rows is noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kfops.evaluate import measures

MISSING = "<missing>"
MAX_DISTINCT = 10  # numeric columns with more distinct values are binned into quartiles
FAIRNESS_STATS = {
    "classification": ("positive_rate", "recall"),
    "regression": ("mean_prediction", "mae"),
}


def keys(column: pd.Series) -> np.ndarray:
    """The group name of each row, as str."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > MAX_DISTINCT:
        column = pd.qcut(column, 4, duplicates="drop")
    names = column.astype(str).to_numpy(dtype=object)
    names[column.isna().to_numpy()] = MISSING
    return names


def slices(
    scored: measures.Scored,
    frame: pd.DataFrame,
    columns: tuple[str, ...],
    task: str,
    min_rows: int,
    notes: list[str],
) -> dict[str, dict[str, Any]]:
    """`{"col=value": {"rows", "too_small", metric: value...}}` for every value of every column."""
    out: dict[str, dict[str, Any]] = {}
    for column in columns:
        names = keys(frame[column])
        for name in sorted(set(names)):
            mask = names == name
            label = f"{column}={name}"
            rows = int(mask.sum())
            if rows < min_rows:
                out[label] = {"rows": rows, "too_small": True}
                continue
            values = measures.measure(scored.subset(mask), task)
            out[label] = {
                "rows": rows,
                "too_small": False,
                **measures.clean(values, f"slice {label}: ", notes),
            }
    return out


def fairness(
    scored: measures.Scored,
    frame: pd.DataFrame,
    column: str,
    task: str,
    min_rows: int,
    notes: list[str],
) -> dict[str, Any]:
    """Per-group rates and the largest gap (max - min) and min/max ratio of each across groups.

    Classification: positive rate (share predicted positive) and recall of the positive class.
    Regression: mean prediction and MAE.
    """
    names = keys(frame[column])
    stat_of = _classification_stats if task == "classification" else _regression_stats
    groups = {}
    for name in sorted(set(names)):
        mask = names == name
        groups[name] = {
            "rows": int(mask.sum()),
            "too_small": bool(mask.sum() < min_rows),
            **stat_of(scored, mask),
        }
    out: dict[str, Any] = {"column": column, "groups": groups}
    if task == "classification":
        out["positive_label"] = scored.positive
    for stat in FAIRNESS_STATS[task]:
        values = [g[stat] for g in groups.values() if not g["too_small"] and g[stat] is not None]
        out[f"{stat}_difference"], out[f"{stat}_ratio"] = _gap(values)
        if len(values) < 2:
            notes.append(
                f"fairness {column}: fewer than 2 groups with {min_rows}+ rows and a {stat}; no gap"
            )
    return out


def _classification_stats(scored: measures.Scored, mask: np.ndarray) -> dict[str, Any]:
    predicted = scored.y_pred[mask] == scored.positive
    actual = scored.y_true[mask] == scored.positive
    return {
        "actual_positives": int(actual.sum()),
        "positive_rate": float(predicted.mean()) if mask.any() else None,
        "recall": float((predicted & actual).sum() / actual.sum()) if actual.any() else None,
    }


def _regression_stats(scored: measures.Scored, mask: np.ndarray) -> dict[str, Any]:
    if not mask.any():
        return {"mean_prediction": None, "mae": None}
    predicted = scored.y_pred[mask].astype("float64")
    return {
        "mean_prediction": float(predicted.mean()),
        "mae": float(np.abs(predicted - scored.y_true[mask].astype("float64")).mean()),
    }


def _gap(values: list[float]) -> tuple[float | None, float | None]:
    """(max - min, min / max) over the values.

    The ratio is 1.0 when every value is 0 (all equal) and None when it means nothing (negative
    values); both are None with fewer than 2 values.
    """
    if len(values) < 2:
        return None, None
    low, high = min(values), max(values)
    if low < 0:
        return float(high - low), None
    return float(high - low), float(low / high) if high > 0 else 1.0
