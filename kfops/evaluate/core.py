"""Evaluate a model on the test split: overall, per slice, across a sensitive column, vs baseline.

The result, `Evaluation`, is plain JSON-ready data (`to_dict`/`from_dict`), since it crosses step
boundaries: the gate, the registry and the model card read its dict form. Undefined or non-finite
values are None and `notes` says which, so the JSON is always strict.

Example:
    cfg = EvalConfig(label="churned", task="classification", slice_columns=("region",))
    ev = evaluate(model, test_df, cfg, baseline=baseline_model)
    ev.metrics["roc_auc"], ev.slices["region=north"]["rows"], ev.fairness["recall_difference"]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import threadpoolctl

from kfops import cpus, decision, errors, jsonable, parameters
from kfops.evaluate import explain as explain_mod
from kfops.schema import TASKS

if TYPE_CHECKING:  # measures, groups and curves import sklearn: loaded on use, so EvalConfig
    from kfops.evaluate import measures  # is read for `kfops run`'s flags without it (issue 16)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to measure.

    Attributes:
        label: the label column of the test data.
        task: "classification" or "regression".
        slice_columns: columns whose values (quartiles, for many-valued numbers) are segments.
        sensitive_column: the column fairness gaps are measured across (None: no fairness).
        positive_label: the positive class of binary metrics and fairness; None takes the
            model's last class (1 of 0/1, True of False). "1" matches a class 1.
        min_slice_rows: smaller slices and groups get a row count but no metrics.
        n_threads: OpenMP/BLAS threads of prediction; 0 = the CPUs the step may use
            (kfops.cpus). Slices and fairness reuse the one prediction of the test rows.
        explain: add explanations (kfops.evaluate.explain): permutation importance, per-class
            metrics, worst slices, confidently wrong rows.
        explain_rows: test rows sampled for permutation importance.
        id_columns: the schema's id columns, shown with the confidently wrong rows.
    """

    label: str
    task: str
    slice_columns: tuple[str, ...] = parameters.field((), "columns whose values are segments")
    sensitive_column: str | None = parameters.field(
        None, "column fairness gaps are measured across; '' = no fairness", none_as=""
    )
    positive_label: Any = None
    min_slice_rows: int = 20
    n_threads: int = parameters.field(
        0, "threads of fits and predictions; 0 = the CPUs the step may use (kfops.cpus)"
    )
    explain: bool = True
    explain_rows: int = explain_mod.ExplainConfig.rows
    id_columns: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.label:
            raise errors.ConfigError("evaluate: label must name a column")
        errors.check_choice("task", self.task, TASKS)
        if isinstance(self.slice_columns, str):
            raise errors.ConfigError("slice_columns must be a list of names, not one string")
        object.__setattr__(self, "slice_columns", tuple(self.slice_columns))
        if self.label in self.slice_columns or self.label == self.sensitive_column:
            raise errors.ConfigError(
                f"the label {self.label!r} cannot be a slice or sensitive column"
            )
        minimum = self.min_slice_rows
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
            raise errors.ConfigError(f"min_slice_rows must be an integer >= 1, got {minimum!r}")
        threads = self.n_threads
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            raise errors.ConfigError(f"n_threads must be an integer >= 0, got {threads!r}")
        rows = self.explain_rows
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise errors.ConfigError(f"explain_rows must be an integer >= 1, got {rows!r}")
        object.__setattr__(self, "id_columns", tuple(self.id_columns))


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The evaluation, JSON-ready.

    Attributes:
        task: "classification" or "regression".
        n_rows: test rows.
        metrics: metric -> value (None where undefined).
        baseline_metrics: the baseline's metrics on the same rows (None without a baseline).
        slices: "col=value" -> {"rows", "too_small", metric: value...}.
        fairness: {} or {"column", "groups": {...}, "<stat>_difference", "<stat>_ratio", ...}.
        curves: "roc", "pr", "confusion", "calibration" (those that apply).
        labels: the model's classes (None for regression).
        positive_label: the class binary metrics and fairness are about.
        decision: how labels were made: positive class, why that one, threshold (kfops.decision).
        notes: what was undefined or replaced, and why.
        n_threads: the threads prediction ran with (predictions do not depend on it:
            tests/kfops/test_threads.py).
        explanations: kfops.evaluate.explain's result ({} when not asked for).
    """

    task: str
    n_rows: int
    metrics: dict[str, float | None]
    baseline_metrics: dict[str, float | None] | None
    slices: dict[str, dict[str, Any]]
    fairness: dict[str, Any]
    curves: dict[str, Any]
    labels: list[Any] | None = None
    positive_label: Any = None
    notes: list[str] = dataclasses.field(default_factory=list)
    decision: dict[str, Any] = dataclasses.field(default_factory=dict)
    n_threads: int = 1
    explanations: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (strict JSON: no NaN or infinity)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Inverse of `to_dict`; ignores keys it does not know, so newer files still load.

        Raises:
            ConfigError: a required key is missing.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as e:
            raise errors.ConfigError(f"not an evaluation: {e}") from e


def config_for(data_schema: Any, **values: Any) -> EvalConfig:
    """The EvalConfig for a schema's label and task, with the user's knobs as KFP carries them."""
    ids = tuple(c.name for c in data_schema.columns if c.role == "id")
    values.setdefault("id_columns", ids)
    return parameters.build(EvalConfig, label=data_schema.label, task=data_schema.task, **values)


def evaluate(
    model: Any, test_df: pd.DataFrame, config: EvalConfig, baseline: Any = None
) -> Evaluation:
    """Scores `model` (and `baseline`) on `test_df`.

    Args:
        model: a fitted estimator or Pipeline; given the test frame's columns it fitted on.
        test_df: the test split, label included.
        config: what to measure.
        baseline: an optional fitted baseline, measured overall on the same rows.

    Returns:
        The evaluation.

    Raises:
        DataError: no test rows.
        SchemaViolation: the label, a slice, the sensitive column or a model input is missing,
            or the label has nulls.
        ConfigError: positive_label is not one of the model's classes.
        ModelError: the model fails to predict.
    """
    from kfops.evaluate import curves as curves_mod  # noqa: PLC0415 (sklearn on use: see imports)
    from kfops.evaluate import groups, measures  # noqa: PLC0415 (sklearn on use: see imports)

    _check(test_df, config)
    notes: list[str] = []
    n_threads = cpus.resolve(config.n_threads)
    scored = _score(model, test_df, config, n_threads)
    measured = measures.clean(measures.measure(scored, config.task), "", notes)
    base = None
    if baseline is not None:
        # the baseline is measured on the candidate's positive class
        same = dataclasses.replace(config, positive_label=scored.positive)
        base_scored = _score(baseline, test_df, same, n_threads)
        base = measures.clean(measures.measure(base_scored, config.task), "baseline ", notes)
    slices = groups.slices(
        scored, test_df, config.slice_columns, config.task, config.min_slice_rows, notes
    )
    fairness = {}
    if config.sensitive_column:
        fairness = groups.fairness(
            scored, test_df, config.sensitive_column, config.task, config.min_slice_rows, notes
        )
    if config.task == "classification":
        curves = curves_mod.classification(scored)
    else:
        curves = curves_mod.regression(scored.y_true, scored.y_pred)
    classification = config.task == "classification"
    explanations = {}
    if config.explain:
        explain_cfg = explain_mod.ExplainConfig(rows=config.explain_rows, n_threads=n_threads)
        explanations = explain_mod.explain(
            model,
            test_df,
            scored,
            task=config.task,
            label=config.label,
            slices=slices,
            id_columns=config.id_columns,
            config=explain_cfg,
        )
    return Evaluation(
        task=config.task,
        n_rows=len(test_df),
        metrics=measured,
        baseline_metrics=base,
        slices=slices,
        fairness=fairness,
        curves=curves,
        labels=list(scored.classes) if classification else None,
        positive_label=scored.positive if classification else None,
        decision=_decision(model, scored, config) if classification else {},
        notes=notes,
        n_threads=n_threads,
        explanations=explanations,
    )


def flat_metrics(evaluation: Evaluation) -> dict[str, float]:
    """Every number as one flat `name -> float` map, for KFP Metrics (which cannot nest).

    Keys: "roc_auc", "baseline/roc_auc", "slice/region=north/roc_auc", "slice/region=north/rows",
    "fairness/age_band/positive_rate_difference", "importance/tenure", "class/1/f1",
    "test_rows". None values (undefined metrics,
    listed in `evaluation.notes`) are left out, since a KFP metric must be a number.
    """
    out: dict[str, float] = {"test_rows": float(evaluation.n_rows)}
    sources = [("", evaluation.metrics), ("baseline/", evaluation.baseline_metrics or {})]
    sources += [(f"slice/{name}/", values) for name, values in evaluation.slices.items()]
    if evaluation.fairness:
        stats = {
            k: v for k, v in evaluation.fairness.items() if k.endswith(("_difference", "_ratio"))
        }
        sources.append((f"fairness/{evaluation.fairness['column']}/", stats))
    for prefix, values in sources:
        for key, value in values.items():
            if _is_number(value):
                out[prefix + key] = float(value)
    out.update(explain_mod.flat(evaluation.explanations))
    return out


def kfp_curves(evaluation: Evaluation) -> list[tuple[str, tuple[Any, ...]]]:
    """Calls to make on a KFP ClassificationMetrics artifact: `[(method_name, args), ...]`.

    The library never imports kfp; the component does `getattr(artifact, name)(*args)`.
    Regression has no such curves (empty list).
    """
    calls: list[tuple[str, tuple[Any, ...]]] = []
    roc = evaluation.curves.get("roc")
    if roc:
        calls.append(("log_roc_curve", (roc["fpr"], roc["tpr"], roc["thresholds"])))
    confusion = evaluation.curves.get("confusion")
    if confusion and confusion["labels"]:
        categories = [str(label) for label in confusion["labels"]]
        calls.append(("log_confusion_matrix", (categories, confusion["matrix"])))
    return calls


def _check(df: pd.DataFrame, config: EvalConfig) -> None:
    if len(df) == 0:
        raise errors.DataError("the test data has no rows: nothing to evaluate")
    needed = [config.label, *config.slice_columns]
    needed += [config.sensitive_column] if config.sensitive_column else []
    for column in needed:
        if column not in df.columns:
            raise errors.SchemaViolation(
                column, "present", f"not among the test data's columns {list(df.columns)}"
            )
    nulls = np.flatnonzero(df[config.label].isna().to_numpy())
    if nulls.size:
        detail = f"{nulls.size} test rows have no label, e.g. rows {nulls[:5].tolist()}"
        raise errors.SchemaViolation(config.label, "not null", detail)


def _score(model: Any, df: pd.DataFrame, config: EvalConfig, n_threads: int) -> measures.Scored:
    from kfops.evaluate import measures  # noqa: PLC0415 (sklearn on use: see the imports)

    x = _inputs(model, df)
    y_true = df[config.label].to_numpy()
    try:
        # OpenMP/BLAS threads only: a random forest's joblib-parallel predict_proba adds the
        # trees' answers in the order threads finish, so its last bits would vary run to run.
        with threadpoolctl.threadpool_limits(n_threads):
            if config.task == "regression":
                return measures.Scored(
                    y_true, np.asarray(model.predict(x), dtype="float64"), None, []
                )
            if hasattr(model, "predict_proba"):
                proba = np.asarray(model.predict_proba(x), dtype="float64")
                # the model's own rule: its recorded threshold, else the most probable class
                y_pred = decision.labels(model.classes_, proba, decision.of(model))
            else:
                proba, y_pred = None, np.asarray(model.predict(x))
    except (ValueError, TypeError, AttributeError) as e:
        raise errors.ModelError(
            f"{type(model).__name__} failed to predict {len(df)} test rows: {e}"
        ) from e
    known = getattr(model, "classes_", None)
    classes = [jsonable.plain(c) for c in (known if known is not None else np.unique(y_pred))]
    wanted = config.positive_label
    positive = _positive(
        classes, decision.positive_of(classes, model) if wanted is None else wanted
    )
    return measures.Scored(y_true, y_pred, proba, classes, positive)


def _inputs(model: Any, df: pd.DataFrame) -> pd.DataFrame:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return df
    missing = [n for n in names if n not in df.columns]
    if missing:
        detail = (
            f"the model needs {missing}, absent from the test data's columns {list(df.columns)}"
        )
        raise errors.SchemaViolation(str(missing[0]), "present", detail)
    return df[list(names)]


def _decision(model: Any, scored: measures.Scored, config: EvalConfig) -> dict[str, Any]:
    rule = decision.of(model)
    if config.positive_label is not None:
        why = "set for this evaluation (positive_label)"
    else:
        why = "recorded in the model by training" if rule else decision.LAST_CLASS
    return {
        "positive_class": scored.positive,
        "positive_rule": why,
        "threshold": rule.threshold if rule else None,
        "labels": f"positive when its probability >= {rule.threshold:.4g}"
        if rule
        else "the most probable class",
    }


def _positive(classes: list[Any], wanted: Any) -> Any:
    if wanted is None:
        return classes[-1] if classes else None
    for c in classes:
        if c == wanted or str(c) == str(wanted):
            return c
    raise errors.ConfigError(
        f"positive_label {wanted!r} is not one of the model's classes {classes}"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
