"""The Evidently 0.7 calls: feature drift, prediction drift, and quality on labelled traffic.

Results come back as plain dataclasses and dicts.

Evidently reports each column's score but not which way it points (a p-value drifts when small, a
distance when large), so the drift flag is derived here from `config.DISTANCE_METHODS`.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from evidently import (
    BinaryClassification,
    DataDefinition,
    Dataset,
    MulticlassClassification,
    Regression,
    Report,
)
from evidently import metrics as ev_metrics
from evidently.presets import DataDriftPreset

from kfops import logschema
from kfops.monitor import rules

_METRIC_NAMES = {
    "Accuracy": "accuracy",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1",
    "RocAuc": "roc_auc",
    "MAE": "mae",
    "RMSE": "rmse",
    "R2Score": "r2",
}


@dataclasses.dataclass(frozen=True)
class ColumnDrift:
    """One column's drift test: method, threshold, score, and whether it counts as drifted."""

    method: str
    threshold: float
    score: float
    drifted: bool


@dataclasses.dataclass(frozen=True)
class DriftRun:
    """Per-column drift results and the report HTML."""

    columns: dict[str, ColumnDrift]
    html: str


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    kinds: Mapping[str, str],
    prediction_kinds: Mapping[str, str],
    cfg: rules.MonitorConfig,
) -> DriftRun:
    """Runs `DataDriftPreset` on the features and `ValueDrift` on each prediction column.

    Args:
        reference: reference rows (or summary) holding every feature and prediction column.
        current: the (sampled) window, same columns.
        kinds: feature name -> "num" | "cat".
        prediction_kinds: prediction column -> "num" | "cat" (empty when not logged).
        cfg: methods, thresholds and the drift share.
    """
    every = {**kinds, **prediction_kinds}
    definition = DataDefinition(
        numerical_columns=[c for c, k in every.items() if k == "num"],
        categorical_columns=[c for c, k in every.items() if k == "cat"],
    )
    items: list[Any] = [
        DataDriftPreset(
            columns=list(kinds),
            drift_share=cfg.drift_share_threshold,
            num_method=cfg.num_method,
            cat_method=cfg.cat_method,
            num_threshold=cfg.num_threshold,
            cat_threshold=cfg.cat_threshold,
        )
    ]
    items += [
        ev_metrics.ValueDrift(column=c, method=_method(k, cfg), threshold=_threshold(k, cfg))
        for c, k in prediction_kinds.items()
    ]
    cols = list(every)
    snapshot = Report(items).run(
        Dataset.from_pandas(_times_as_numbers(current[cols]), data_definition=definition),
        Dataset.from_pandas(_times_as_numbers(reference[cols]), data_definition=definition),
    )
    methods = {c: _method(k, cfg) for c, k in every.items()}
    return DriftRun(_value_drifts(snapshot.dict(), methods), snapshot.get_html_str(as_iframe=False))


def _times_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as UTC epoch days, since Evidently raises on a timestamp column.

    A served model has one when a derived feature reads it (kfops.features), and
    reference.column_kinds counts it as numeric. Naive values count as UTC, as in serving.
    """
    out = frame.reset_index(drop=True)
    for name in out.columns:
        column = out[name]
        if column.dtype == object:
            first = column.dropna().head(1).tolist()
            if not first or not isinstance(first[0], datetime.datetime | datetime.date):
                continue
        elif not pd.api.types.is_datetime64_any_dtype(column):
            continue
        stamps = pd.to_datetime(column, utc=True, errors="coerce")
        days = stamps.astype("int64").astype("float64") / 86_400e9
        out[name] = days.where(stamps.notna())
    return out


def _method(kind: str, cfg: rules.MonitorConfig) -> str:
    return cfg.num_method if kind == "num" else cfg.cat_method


def _threshold(kind: str, cfg: rules.MonitorConfig) -> float | None:
    return cfg.num_threshold if kind == "num" else cfg.cat_threshold


def _value_drifts(summary: Mapping[str, Any], methods: Mapping[str, str]) -> dict[str, ColumnDrift]:
    """Per-column results; `methods` (column -> method id) says which way each score points."""
    out = {}
    for metric in summary["metrics"]:
        conf = metric["config"]
        if not conf["type"].endswith(":ValueDrift"):
            continue
        method = methods[conf["column"]]
        score, threshold = float(metric["value"]), float(conf["threshold"])
        if method in rules.DISTANCE_METHODS:
            drifted = score >= threshold
        else:
            drifted = score < threshold
        out[conf["column"]] = ColumnDrift(method, threshold, score, drifted)
    return out


def run_quality(
    labelled: pd.DataFrame,
    label: str,
    task: str,
    classes: Sequence[Any] | None,
) -> tuple[dict[str, float], str]:
    """Quality of the logged predictions against delayed ground truth, on current data only.

    The reference summary holds no real rows, so quality is judged against an absolute floor
    (config.QualityFloor), not against the reference.

    Args:
        labelled: window rows joined with their labels; holds `label` and `kfops_prediction`
            (and `kfops_proba` for binary classifiers, when logged).
        label: the label column.
        task: "classification" or "regression".
        classes: the label classes (classification).

    Returns:
        Metric name -> value, and the report HTML.
    """
    frame, definition, items = _quality_setup(labelled, label, task, classes)
    snapshot = Report(items).run(Dataset.from_pandas(frame, data_definition=definition), None)
    values = {}
    for metric in snapshot.dict()["metrics"]:
        name = _METRIC_NAMES.get(metric["config"]["type"].rsplit(":", 1)[-1])
        value = metric["value"]
        if name is not None:
            values[name] = float(value["mean"] if isinstance(value, dict) else value)
    return values, snapshot.get_html_str(as_iframe=False)


def _quality_setup(
    labelled: pd.DataFrame, label: str, task: str, classes: Sequence[Any] | None
) -> tuple[pd.DataFrame, DataDefinition, list[Any]]:
    pred, proba = logschema.PREDICTION, logschema.PROBA
    if task == "regression":
        frame = labelled[[label, pred]].astype(float).reset_index(drop=True)
        definition = DataDefinition(
            numerical_columns=[label, pred], regression=[Regression(target=label, prediction=pred)]
        )
        return frame, definition, [ev_metrics.MAE(), ev_metrics.RMSE(), ev_metrics.R2Score()]
    # Labels arrive from another system than the server; comparing as text avoids 1 != "1".
    frame = labelled[[label, pred]].astype(str).reset_index(drop=True)
    items: list[Any] = [ev_metrics.Accuracy(), ev_metrics.F1Score()]
    classes = [str(c) for c in classes] if classes else sorted(set(frame[label]) | set(frame[pred]))
    if len(classes) <= 2:
        # Two tasks: label metrics from the logged labels, ROC AUC from the logged probability.
        # Given both in one task, Evidently would re-derive labels from the probability.
        tasks = [BinaryClassification(target=label, prediction_labels=pred, pos_label=classes[-1])]
        items += [ev_metrics.Precision(), ev_metrics.Recall()]
        if proba in labelled.columns and labelled[proba].notna().all():
            frame[proba] = labelled[proba].astype(float).to_numpy()
            tasks.append(
                BinaryClassification(
                    name="proba",
                    target=label,
                    prediction_labels=None,
                    prediction_probas=proba,
                    pos_label=classes[-1],
                )
            )
            items.append(ev_metrics.RocAuc(classification_name="proba"))
        definition = DataDefinition(
            categorical_columns=[label, pred],
            numerical_columns=[proba] if len(tasks) == 2 else [],
            classification=tasks,
        )
        return frame, definition, items
    definition = DataDefinition(
        categorical_columns=[label, pred],
        classification=[MulticlassClassification(target=label, prediction_labels=pred)],
    )
    return frame, definition, items
