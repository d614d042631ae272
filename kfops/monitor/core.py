"""`monitor()`: judges a window of logged inferences against the model's reference, and decides.

The decision is data: `retrain` plus every reason that fired (drift share reached, a key column
drifted, quality below its floor), or a clear status when the window cannot be judged (no data,
too few rows). Only the model's features are tested, and a long window is judged on a uniform
sample whose error bound is stated in the result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from kfops import errors, logschema, schema
from kfops.monitor import evidently_run, reference, rules, window
from kfops.reports import monitoring as report

JUDGED, NO_DATA, TOO_SMALL = "judged", "no_data", "too_small"


@dataclasses.dataclass(frozen=True)
class MonitorResult:
    """What the monitor found and decided. `to_dict()` is the JSON summary (no HTML)."""

    status: str
    retrain: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    rows: int
    judged_rows: int
    reference_rows: int
    sample_error_bound: float
    drift_share: float | None
    drifted_columns: tuple[str, ...]
    columns: dict[str, evidently_run.ColumnDrift]
    prediction_drift: dict[str, evidently_run.ColumnDrift]
    quality: dict[str, float]
    labelled_rows: int
    config: dict[str, Any]
    model: str | None = None
    version: str | None = None
    html: str = dataclasses.field(default="", repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: decision, reasons, drift figures, quality, config."""
        out = dataclasses.asdict(self)
        del out["html"]
        return out


def monitor(
    reference_frame: pd.DataFrame,
    current: pd.DataFrame,
    data_schema: schema.Schema,
    cfg: rules.MonitorConfig,
    labels: pd.DataFrame | None = None,
    *,
    model: str | None = None,
    version: str | None = None,
) -> MonitorResult:
    """Compares logged inferences with the reference sample and decides whether to retrain.

    Args:
        reference_frame: the training sample (or its cached summary) with the model's features
            and, to test prediction drift, `kfops_prediction` / `kfops_proba`.
        current: logged rows of the window (features plus `kfops_*` columns).
        data_schema: the model's schema; only its feature columns are tested.
        cfg: thresholds, key columns, quality floor, sampling.
        labels: delayed ground truth: `kfops_request_id` plus the schema's label column.
        model: the monitored model's name, recorded in the result and the report.
        version: the version compared against, likewise recorded.

    Returns:
        The result; status "no_data" or "too_small" (never retrain) when it cannot judge.

    Raises:
        SchemaViolation: the log's columns differ from the model's (names them).
        ConfigError: a key column is not a feature or a logged prediction column.
    """
    kinds = reference.column_kinds(data_schema)
    base = dataclasses.replace(_base(len(current), cfg), model=model, version=version)
    if len(current) == 0:
        return _unjudged(base, NO_DATA, "no data in window")
    check_columns(current, data_schema, kinds)
    check_columns(reference_frame, data_schema, kinds, what="reference sample")
    pred_kinds = _prediction_kinds(reference_frame, current, data_schema)
    _check_key_columns(cfg, kinds, pred_kinds)
    if len(current) < cfg.min_rows:
        return _unjudged(
            base,
            TOO_SMALL,
            f"sample too small to judge: {len(current)} rows < min_rows {cfg.min_rows}",
        )
    return _judge(base, reference_frame, current, data_schema, cfg, labels, pred_kinds)


def _judge(
    base: MonitorResult,
    reference_frame: pd.DataFrame,
    current: pd.DataFrame,
    data_schema: schema.Schema,
    cfg: rules.MonitorConfig,
    labels: pd.DataFrame | None,
    pred_kinds: dict[str, str],
) -> MonitorResult:
    """Runs the drift and quality checks on a window big enough to judge, then decides."""
    kinds = reference.column_kinds(data_schema)
    sample = _sample(current, cfg)
    summary = reference.summarise(
        reference_frame[[*kinds, *pred_kinds]], {**kinds, **pred_kinds}, cfg.reference_rows
    )
    drift = evidently_run.run_drift(summary, sample, kinds, pred_kinds, cfg)
    features = {c: d for c, d in drift.columns.items() if c in kinds}
    drifted = tuple(c for c, d in features.items() if d.drifted)
    quality, labelled, notes, quality_html = _quality(current, labels, data_schema, cfg)
    result = dataclasses.replace(
        base,
        status=JUDGED,
        judged_rows=len(sample),
        reference_rows=len(summary),
        sample_error_bound=_bound(len(sample), len(current), cfg),
        drift_share=len(drifted) / len(features) if features else 0.0,
        drifted_columns=drifted,
        columns=features,
        prediction_drift={c: d for c, d in drift.columns.items() if c in pred_kinds},
        quality=quality,
        labelled_rows=labelled,
        notes=tuple(notes),
    )
    reasons = decide(result, cfg)
    result = dataclasses.replace(result, retrain=bool(reasons), reasons=reasons)
    return dataclasses.replace(
        result, html=report.render(result.to_dict(), drift.html, quality_html)
    )


def decide(result: MonitorResult, cfg: rules.MonitorConfig) -> tuple[str, ...]:
    """Every retraining rule that fires, in a fixed order; empty means "do not retrain"."""
    reasons = []
    if result.drift_share is not None and result.drift_share >= cfg.drift_share_threshold:
        reasons.append(
            f"drift share {result.drift_share:.2f} >= threshold {cfg.drift_share_threshold:.2f} "
            f"({len(result.drifted_columns)} of {len(result.columns)} features drifted: "
            f"{', '.join(result.drifted_columns)})"
        )
    tested = {**result.columns, **result.prediction_drift}
    for name in cfg.key_columns:
        col = tested.get(name)
        if col is not None and col.drifted:
            reasons.append(
                f"key column {name!r} drifted ({col.method} {col.score:.4f}, "
                f"threshold {col.threshold:g})"
            )
    floor = cfg.floor
    if floor is not None and floor.metric in result.quality:
        value = result.quality[floor.metric]
        if floor.breached(value):
            reasons.append(f"{floor.metric} {value:.4f} {floor.word()} {floor.value:g}")
    return tuple(reasons)


def check_columns(
    frame: pd.DataFrame,
    data_schema: schema.Schema,
    kinds: dict[str, str],
    what: str = "inference log",
) -> None:
    """Fails with the column names when a frame does not match the model's features.

    Raises:
        SchemaViolation: features missing, unknown columns present, or a numeric feature
            holding non-numbers.
    """
    missing = [c for c in kinds if c not in frame.columns]
    known = set(data_schema.names) | set(logschema.META_COLUMNS) | {window.ROW}
    unknown = [c for c in frame.columns if c not in known]
    if missing or unknown:
        raise errors.SchemaViolation(
            ", ".join(missing + unknown),
            f"{what} columns match the model schema",
            f"missing features {missing}, columns unknown to the model {unknown}",
        )
    for name, kind in kinds.items():
        col = frame[name]
        numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)
        if kind == "num" and not numeric and col.notna().any():
            raise errors.SchemaViolation(
                name, "dtype", f"the model expects numbers, the {what} holds {col.dtype}"
            )


def _prediction_kinds(
    reference_frame: pd.DataFrame, current: pd.DataFrame, data_schema: schema.Schema
) -> dict[str, str]:
    """Prediction columns present (and filled) on both sides, with their drift kind."""
    kinds = {
        logschema.PREDICTION: reference.prediction_kind(data_schema),
        logschema.PROBA: "num",
    }
    return {
        c: k
        for c, k in kinds.items()
        if all(c in f.columns and f[c].notna().any() for f in (reference_frame, current))
    }


def _check_key_columns(
    cfg: rules.MonitorConfig, kinds: dict[str, str], pred_kinds: dict[str, str]
) -> None:
    unknown = [c for c in cfg.key_columns if c not in kinds and c not in pred_kinds]
    if unknown:
        raise errors.ConfigError(
            f"key columns {unknown} are neither model features {list(kinds)} nor prediction "
            f"columns logged on both sides {list(pred_kinds)}"
        )


def _sample(current: pd.DataFrame, cfg: rules.MonitorConfig) -> pd.DataFrame:
    if len(current) <= cfg.sample_size:
        return current
    return current.sample(n=cfg.sample_size, random_state=cfg.seed)


def _bound(judged: int, rows: int, cfg: rules.MonitorConfig) -> float:
    """0 when the whole window was judged; else the DKW bound of the sample."""
    return 0.0 if judged >= rows else round(rules.sample_error_bound(judged, cfg.error_alpha), 6)


def _quality(
    current: pd.DataFrame,
    labels: pd.DataFrame | None,
    data_schema: schema.Schema,
    cfg: rules.MonitorConfig,
) -> tuple[dict[str, float], int, list[str], str]:
    """Joins delayed labels by request id and measures quality, if there are enough of them."""
    if labels is None:
        return {}, 0, [], ""
    label = data_schema.label
    labelled = join_labels(current, labels, label)
    if len(labelled) < cfg.min_rows:
        note = f"quality not judged: {len(labelled)} labelled rows < min_rows {cfg.min_rows}"
        return {}, len(labelled), [note], ""
    labelled = _sample(labelled, cfg)
    task = data_schema.task or "classification"
    seen = labelled[label].astype(str).unique() if task == "classification" else ()
    if len(seen) == 1:
        # Precision, recall, F1 and ROC AUC are undefined without both classes in the labels
        # (Evidently raises on a positive class it cannot find); say so instead of guessing.
        note = (
            f"quality not judged: the {len(labelled)} labelled rows hold one class only "
            f"({seen[0]!r}); quality metrics need at least two"
        )
        return {}, len(labelled), [note], ""
    values, html = evidently_run.run_quality(labelled, label, task, data_schema.label_classes)
    return values, len(labelled), [], html


def join_labels(current: pd.DataFrame, labels: pd.DataFrame, label: str | None) -> pd.DataFrame:
    """The window rows that have a delayed label, with the label as a column.

    Labels name their row by `kfops_request_id` and, for batched requests, `kfops_row`.

    Raises:
        SchemaViolation: a join or label column is missing, or requests hold several rows and
            the labels cannot say which row they belong to.
    """
    keys = [logschema.REQUEST_ID] + ([window.ROW] if window.ROW in labels.columns else [])
    needed = [*keys, label]
    missing = [str(c) for c in needed if c is None or c not in labels.columns]
    missing += [f"window:{c}" for c in keys if c not in current.columns]
    if missing:
        raise errors.SchemaViolation(
            ", ".join(missing), "labels join", f"labels need {needed}; the window needs {keys}"
        )
    if len(keys) == 1 and current[logschema.REQUEST_ID].duplicated().any():
        raise errors.SchemaViolation(
            window.ROW, "labels join",
            "requests in the window hold several rows; labels must give kfops_row as well",
        )  # fmt: skip
    truth = labels[needed].drop_duplicates(keys, keep="last")
    # A log may carry the label column too (the schema allows it): the delayed label replaces it.
    logged = current.drop(columns=[label], errors="ignore")
    joined = logged.merge(truth, on=keys, how="inner").dropna(subset=[label])
    values = joined[label]
    if pd.api.types.is_float_dtype(values) and bool((values % 1 == 0).all()):
        # pandas turns an integer label column to float as soon as one label is still missing;
        # class 1 must stay "1" (the logged prediction), not "1.0", when compared as text.
        joined[label] = values.astype("int64")
    return joined


def _base(rows: int, cfg: rules.MonitorConfig) -> MonitorResult:
    return MonitorResult(
        status=JUDGED, retrain=False, reasons=(), notes=(), rows=rows, judged_rows=0,
        reference_rows=0, sample_error_bound=0.0, drift_share=None, drifted_columns=(),
        columns={}, prediction_drift={}, quality={}, labelled_rows=0, config=cfg.to_dict(),
    )  # fmt: skip


def _unjudged(base: MonitorResult, status: str, why: str) -> MonitorResult:
    result = dataclasses.replace(base, status=status, notes=(why,))
    return dataclasses.replace(result, html=report.render(result.to_dict(), "", ""))
