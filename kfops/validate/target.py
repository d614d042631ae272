"""Checks about the label: nulls, a single class, unseen classes, and features that leak it.

Leakage is suspected when one feature alone predicts the label almost perfectly: a ROC AUC near 1
for a numeric feature and a binary label, categories that each map to one class, or a rank
correlation near 1 for regression. Such a feature is usually computed from the label or only known
after it (a "cancellation date" predicting churn); the model would look great and fail in use.
The check ranks a seeded sample, so its cost does not grow with the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kfops import schema
from kfops.validate import stats
from kfops.validate.results import Anomaly, ValidateConfig

_MIN_ROWS_PER_VALUE = 20


def label_checks(df: pd.DataFrame, sch: schema.Schema, cfg: ValidateConfig) -> list[Anomaly]:
    """Label nulls, a single class (or a constant regression target), unseen classes."""
    if sch.label is None or sch.label not in df.columns or len(df) == 0:
        return []
    label, y = sch.label, df[sch.label]
    found = []
    nulls = y.isna().to_numpy()
    if nulls.any():
        rows = tuple(int(i) for i in np.flatnonzero(nulls)[: cfg.max_examples])
        detail = f"{int(nulls.sum())} of {len(y)} labels are null; examples are row positions"
        found.append(Anomaly(label, "label_nulls", "error", detail, rows))
    values = y[~nulls]
    if values.empty:
        return found
    distinct = values.unique()
    if len(distinct) < 2:
        rule = "label_single_class" if sch.task != "regression" else "label_constant"
        detail = f"all {len(values)} labelled rows have the same value; there is nothing to learn"
        found.append(Anomaly(label, rule, "error", detail, (stats.jsonable(distinct[0]),)))
    if sch.task == "classification" and sch.label_classes is not None:
        found += _unseen_classes(label, distinct, sch.label_classes, cfg)
    return found


def _unseen_classes(
    label: str, distinct: np.ndarray, known: tuple[Any, ...], cfg: ValidateConfig
) -> list[Anomaly]:
    known_text = {str(_whole(k)) for k in known}
    unseen = [stats.jsonable(v) for v in distinct if str(_whole(v)) not in known_text]
    if not unseen:
        return []
    detail = f"label values outside the schema's classes {list(known)}"
    severity = cfg.categories_severity()
    return [
        Anomaly(label, "label_unseen_class", severity, detail, tuple(unseen[: cfg.max_examples]))
    ]


def _whole(value: Any) -> Any:
    """1.0 and 1 name the same class (a label column read with nulls turns ints into floats)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return value


def leakage_checks(df: pd.DataFrame, sch: schema.Schema, cfg: ValidateConfig) -> list[Anomaly]:
    """Features that alone predict the label almost perfectly, on a seeded sample of rows."""
    if cfg.leakage_threshold is None or sch.label is None or sch.label not in df.columns:
        return []
    rows = np.flatnonzero(df[sch.label].notna().to_numpy())
    if len(rows) < cfg.leakage_min_rows:
        return []
    if len(rows) > cfg.leakage_sample_rows:
        rng = np.random.default_rng(cfg.seed)
        rows = np.sort(rng.choice(rows, size=cfg.leakage_sample_rows, replace=False))
    y = df[sch.label].iloc[rows].reset_index(drop=True)
    found = []
    for spec in sch.features:
        if spec.name not in df.columns or spec.dtype == "datetime":
            continue
        x = df[spec.name].iloc[rows].reset_index(drop=True)
        scored = _score(x, y, sch.task, cfg)
        if scored is not None and scored[1] >= cfg.leakage_threshold:
            metric, score, n = scored
            detail = (
                f"alone predicts {sch.label!r} almost perfectly ({metric} {score:.4f} on {n} "
                "sampled rows): is it derived from the label, or known only after it? If so, "
                f"remove it with --drop {spec.name}"
            )
            found.append(Anomaly(spec.name, "leakage", cfg.leakage_severity, detail))
    return found


def _score(
    x: pd.Series, y: pd.Series, task: str | None, cfg: ValidateConfig
) -> tuple[str, float, int] | None:
    """(metric name, score in [0, 1], rows used) for one feature, or None when not measurable."""
    keep = x.notna().to_numpy()
    x, y = x[keep], y[keep]
    if len(x) < cfg.leakage_min_rows:
        return None
    numeric = pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)
    if task == "regression":
        return _regression_score(x, y, numeric)
    classes = pd.unique(y)
    if numeric and len(classes) == 2:
        positive = (y == classes[1]).to_numpy()
        return "ROC AUC", stats.binary_auc(x.to_numpy(dtype=float), positive), len(x)
    codes, target = _codes(x), pd.factorize(y)[0]
    if codes is None and numeric:
        score = stats.sorted_agreement(x.to_numpy(dtype=float), target, cfg.seed)
        return "sorted-neighbour agreement", score, len(x)
    if codes is None:
        return None
    purity, predicted = stats.purity(codes, target)
    return ("purity", purity, len(x)) if predicted >= 2 else None


def _regression_score(x: pd.Series, y: pd.Series, numeric: bool) -> tuple[str, float, int] | None:
    if not pd.api.types.is_numeric_dtype(y):
        return None
    target = y.to_numpy(dtype=float)
    if numeric:
        return "|Spearman|", stats.spearman(x.to_numpy(dtype=float), target), len(x)
    codes = _codes(x)
    if codes is None:
        return None
    return "eta", stats.correlation_ratio(codes, target), len(x)


def _codes(x: pd.Series) -> np.ndarray | None:
    """Category codes, or None when values are too many to trust purity (about 20+ rows each)."""
    codes, uniques = pd.factorize(x.astype(str))
    return codes if len(uniques) <= max(2, len(x) // _MIN_ROWS_PER_VALUE) else None
