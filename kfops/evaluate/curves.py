"""Curves for plots and the KFP UI: ROC, precision-recall, confusion matrix, calibration.

Curves are downsampled to at most MAX_POINTS points (endpoints kept), so the JSON stays small at
any test size. Thresholds are probabilities; ROC's leading "infinite" threshold becomes 1.0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as sk
from sklearn import preprocessing

from kfops import jsonable
from kfops.evaluate import measures

MAX_POINTS = 200
MAX_SCATTER = 500  # (predicted, actual) pairs kept for the regression report's scatter plots
CALIBRATION_BINS = 10


def classification(s: measures.Scored) -> dict[str, Any]:
    """ROC, PR (positive class; micro-averaged for multiclass), confusion and calibration."""
    labels = list(s.classes) + sorted(
        {jsonable.plain(v) for v in np.unique(s.y_true)} - set(s.classes), key=str
    )
    matrix = (
        sk.confusion_matrix(s.y_true, s.y_pred, labels=labels)
        if len(s.y_true)
        else np.zeros((0, 0))
    )
    out: dict[str, Any] = {"confusion": {"labels": labels, "matrix": matrix.astype(int).tolist()}}
    if s.proba is None:
        return out
    if len(s.classes) == 2:
        actual = (s.y_true == s.positive).astype(int)
        score = s.proba[:, s.classes.index(s.positive)]
        average, kind = f"positive class {s.positive!r}", "positive"
        confidence, hit = score, actual
    else:
        actual = preprocessing.label_binarize(s.y_true, classes=s.classes).ravel()
        score = s.proba.ravel()
        average, kind = "micro-average over classes", "confidence"
        confidence, hit = s.proba.max(axis=1), (s.y_pred == s.y_true).astype(int)
    if 0 < actual.sum() < len(actual):
        out["roc"] = {**roc(actual, score), "average": average}
        out["pr"] = {**precision_recall(actual, score), "average": average}
    out["calibration"] = {"kind": kind, "bins": calibration(confidence, hit)}
    return out


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Calibration bins (predicted vs actual means in prediction deciles) and scatter points.

    The points are a seeded sample of at most MAX_SCATTER (predicted, actual) pairs, for the
    report's predicted-vs-actual and residual plots.

    Rows with a non-finite prediction are left out (the metrics' notes already flag them).
    """
    y_true, y_pred = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    finite = np.isfinite(y_pred)
    y_true, y_pred = y_true[finite], y_pred[finite]
    if not len(y_pred):
        return {"calibration": {"kind": "regression", "bins": []}}
    edges = np.unique(np.quantile(y_pred, np.linspace(0, 1, CALIBRATION_BINS + 1)))
    which = np.clip(np.searchsorted(edges, y_pred, side="right") - 1, 0, max(len(edges) - 2, 0))
    bins = []
    for i in np.unique(which):
        mask = which == i
        bins.append(
            {
                "lower": float(edges[i]),
                "upper": float(edges[min(i + 1, len(edges) - 1)]),
                "mean_predicted": float(y_pred[mask].mean()),
                "mean_actual": float(y_true[mask].mean()),
                "rows": int(mask.sum()),
            }
        )
    keep = np.arange(len(y_pred))
    if len(keep) > MAX_SCATTER:
        keep = np.sort(np.random.default_rng(0).choice(len(keep), MAX_SCATTER, replace=False))
    points = {
        "predicted": _floats(y_pred[keep]),
        "actual": _floats(y_true[keep]),
        "rows": len(y_pred),
    }
    return {"calibration": {"kind": "regression", "bins": bins}, "points": points}


def roc(actual: np.ndarray, score: np.ndarray) -> dict[str, list[float]]:
    """ROC points (fpr, tpr, thresholds), at most MAX_POINTS."""
    fpr, tpr, thresholds = sk.roc_curve(actual, score)
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    keep = downsample(len(fpr))
    return {
        "fpr": _floats(fpr[keep]),
        "tpr": _floats(tpr[keep]),
        "thresholds": _floats(thresholds[keep]),
    }


def precision_recall(actual: np.ndarray, score: np.ndarray) -> dict[str, list[float]]:
    """PR points (precision, recall, thresholds), at most MAX_POINTS.

    scikit-learn's last point (recall 0) has no threshold; it gets 1.0 so the lists align.
    """
    precision, recall, thresholds = sk.precision_recall_curve(actual, score)
    thresholds = np.append(thresholds, 1.0)
    keep = downsample(len(precision))
    return {
        "precision": _floats(precision[keep]),
        "recall": _floats(recall[keep]),
        "thresholds": _floats(thresholds[keep]),
    }


def calibration(score: np.ndarray, hit: np.ndarray) -> list[dict[str, float]]:
    """Mean score vs observed frequency in CALIBRATION_BINS equal-width bins over [0, 1]."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, CALIBRATION_BINS - 1)
    bins = []
    for i in range(CALIBRATION_BINS):
        mask = which == i
        if mask.any():
            bins.append(
                {
                    "lower": float(edges[i]),
                    "upper": float(edges[i + 1]),
                    "mean_predicted": float(score[mask].mean()),
                    "fraction_positive": float(hit[mask].mean()),
                    "rows": int(mask.sum()),
                }
            )
    return bins


def downsample(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """At most `limit` evenly spread indices into n points, first and last included."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]
