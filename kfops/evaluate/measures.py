"""Metric values on arrays: classification (binary and multiclass) and regression.

Every metric that is undefined on the rows given (ROC AUC with one class present, log loss with a
label the model never saw) comes back as None, never NaN, so results stay valid JSON; `clean`
does the same for any non-finite value and records which.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
from sklearn import metrics as sk
from sklearn import preprocessing

from kfops import jsonable


@dataclasses.dataclass(frozen=True)
class Scored:
    """Labels and model outputs for a set of rows, ready to be measured."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None  # (rows, classes), columns in `classes` order; None for regression
    classes: list[Any]  # the model's classes (empty for regression)
    positive: Any = None  # the positive class of binary (and fairness) metrics

    def subset(self, mask: np.ndarray) -> Scored:
        """The same rows filtered by a boolean mask."""
        proba = None if self.proba is None else self.proba[mask]
        return dataclasses.replace(
            self, y_true=self.y_true[mask], y_pred=self.y_pred[mask], proba=proba
        )


def measure(scored: Scored, task: str) -> dict[str, float | None]:
    """All metrics of the task on these rows (None where undefined)."""
    if task == "regression":
        return regression(scored.y_true, scored.y_pred)
    return classification(scored)


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """MAE, RMSE and R2 (R2 is None with fewer than 2 rows or a constant label)."""
    y_true, y_pred = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    with np.errstate(all="ignore"):  # an infinite prediction gives inf/NaN, nulled by `clean`
        error = y_pred - y_true
        squared = float(np.mean(error**2)) if len(error) else math.nan
        r2 = None
        if len(y_true) >= 2 and np.ptp(y_true) > 0:
            r2 = float(1.0 - squared / np.mean((y_true - y_true.mean()) ** 2))
        return {
            "mae": float(np.mean(np.abs(error))) if len(error) else None,
            "rmse": math.sqrt(squared) if math.isfinite(squared) else squared,
            "r2": r2,
        }


def classification(s: Scored) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1, ROC AUC, PR AUC, log loss (+ Brier for binary).

    Binary metrics are about `s.positive`; multiclass ones are macro averages over the classes.
    """
    binary = len(s.classes) == 2
    out: dict[str, float | None] = {"accuracy": float(np.mean(s.y_true == s.y_pred))}
    out.update(_binary_counts(s) if binary else _macro_counts(s))
    for name in ("roc_auc", "pr_auc", "log_loss", "brier"):
        out[name] = None
    if s.proba is not None:
        out.update(_binary_proba(s) if binary else _multiclass_proba(s))
    if not binary:
        out.pop("brier")
    return out


def _binary_counts(s: Scored) -> dict[str, float]:
    """Precision, recall and F1 of the positive class from counts (0 where undefined).

    Plain counting, the same values as scikit-learn with zero_division=0, without its input
    validation, which dominated evaluation time once per slice.
    """
    predicted, actual = s.y_pred == s.positive, s.y_true == s.positive
    tp = float(np.sum(predicted & actual))
    precision = tp / predicted.sum() if predicted.any() else 0.0
    recall = tp / actual.sum() if actual.any() else 0.0
    f1 = 2 * tp / (predicted.sum() + actual.sum()) if predicted.any() or actual.any() else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def _macro_counts(s: Scored) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined per-class values count as 0, by design
        return {
            name: float(fn(s.y_true, s.y_pred, average="macro", zero_division=0, labels=s.classes))
            for name, fn in (
                ("precision", sk.precision_score),
                ("recall", sk.recall_score),
                ("f1", sk.f1_score),
            )
        }


def _binary_proba(s: Scored) -> dict[str, float | None]:
    p = s.proba[:, s.classes.index(s.positive)]
    actual = s.y_true == s.positive
    both = 0 < actual.sum() < len(actual)
    return {
        "roc_auc": float(sk.roc_auc_score(actual, p)) if both else None,
        "pr_auc": float(sk.average_precision_score(actual, p)) if actual.any() else None,
        "log_loss": _log_loss(s),
        "brier": float(np.mean((p - actual) ** 2)) if len(p) else None,
    }


def _multiclass_proba(s: Scored) -> dict[str, float | None]:
    present = set(jsonable.plain_list(np.unique(s.y_true)))
    # ROC AUC needs every class among the labels and no label the model never saw (scikit-learn
    # refuses one outside `labels`): otherwise undefined, as log loss is.
    every_class = present == set(s.classes)
    onehot = preprocessing.label_binarize(s.y_true, classes=s.classes)
    per_class = [
        sk.average_precision_score(onehot[:, i], s.proba[:, i])
        for i in range(len(s.classes))
        if onehot[:, i].any()
    ]
    roc = None
    if every_class:
        roc = float(
            sk.roc_auc_score(
                s.y_true, s.proba, multi_class="ovr", average="macro", labels=s.classes
            )
        )
    return {
        "roc_auc": roc,
        "pr_auc": float(np.mean(per_class)) if per_class else None,
        "log_loss": _log_loss(s),
    }


def _log_loss(s: Scored) -> float | None:
    if len(s.y_true) == 0 or not set(jsonable.plain_list(np.unique(s.y_true))) <= set(s.classes):
        return None  # a label the model never saw has no probability column
    return float(sk.log_loss(s.y_true, s.proba, labels=s.classes))


def clean(values: dict[str, Any], where: str, notes: list[str]) -> dict[str, Any]:
    """Replaces non-finite floats with None and notes every null value.

    JSON stays strict, and a reader can tell an undefined metric from a forgotten one.
    """
    out, undefined = {}, []
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            notes.append(f"{where}{key} was {value} (not finite): reported as null")
            value = None
        elif value is None:
            undefined.append(key)
        out[key] = value
    if undefined:
        notes.append(f"{where}{', '.join(undefined)} undefined on these rows: reported as null")
    return out
