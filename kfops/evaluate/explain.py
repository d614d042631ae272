"""Why the model decides as it does, and where it goes wrong: the explanation part of evaluation.

- Permutation importance: how much the key metric drops when one input column is shuffled, on
  a seeded sample of the test rows (capped, so it stays cheap at 1M rows), averaged over a few
  shuffles; the columns are shuffled in parallel threads within the CPUs the step may use. Each
  column has its own seeded generator, so the result does not depend on the thread count.
  Derived features (a pipeline step named DERIVED_STEP that adds columns) are shuffled after
  that step, inside the fitted pipeline.
- Per-class precision, recall, F1 and support (as scikit-learn's classification_report).
- The worst slices by the key metric, with their row counts.
- The most confidently wrong test rows (highest probability on a wrong class; for regression
  the largest errors), with their id, features, label and prediction.

The result is plain JSON-ready data, stored in `Evaluation.explanations`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import threadpoolctl

from kfops import decision, jsonable, metric_catalog

if TYPE_CHECKING:  # sklearn (and measures, which imports it) load on use: EvalConfig reads
    from kfops.evaluate import measures  # ExplainConfig for `kfops run`'s flags (issue 16)

DERIVED_STEP = "derive"  # a Pipeline step of this name adds derived features (#18)
WORST_SLICES = 5


@dataclasses.dataclass(frozen=True)
class ExplainConfig:
    """How much explaining to do.

    Attributes:
        rows: test rows sampled for permutation importance (the sample size is reported).
        repeats: shuffles per column; the mean drop and its standard deviation are reported.
        seed: seeds the sample and every shuffle.
        top_wrong: how many confidently wrong rows to list.
        n_threads: threads shuffling columns in parallel.
        derived_step: the pipeline step whose new output columns are derived features.
    """

    rows: int = 5000
    repeats: int = 2
    seed: int = 0
    top_wrong: int = 10
    n_threads: int = 1
    derived_step: str = DERIVED_STEP


def explain(
    model: Any,
    frame: pd.DataFrame,
    scored: measures.Scored,
    *,
    task: str,
    label: str,
    slices: Mapping[str, Mapping[str, Any]],
    id_columns: Sequence[str] = (),
    config: ExplainConfig = ExplainConfig(),  # noqa: B008 (frozen, never mutated)
) -> dict[str, Any]:
    """Every explanation, JSON-ready: importance, per_class, worst_slices, confidently_wrong."""
    features = _feature_columns(model, frame, label, id_columns)
    out = {
        "importance": importance(model, frame, scored, task, label, features, config),
        "worst_slices": worst_slices(slices, metric_catalog.DEFAULT_METRIC[task]),
        "confidently_wrong": confidently_wrong(
            frame, scored, task, label, features, id_columns, config.top_wrong
        ),
    }
    if task == "classification":
        out["per_class"] = per_class(scored)
    return out


# -- permutation importance --------------------------------------------------------------------


def importance(
    model: Any,
    frame: pd.DataFrame,
    scored: measures.Scored,
    task: str,
    label: str,
    features: Sequence[str],
    config: ExplainConfig = ExplainConfig(),  # noqa: B008
) -> dict[str, Any]:
    """Mean drop of the key metric when each column is shuffled, largest first.

    Returns {"metric", "rows", "of_rows", "repeats", "seed", "score", "features": [{"feature",
    "kind" ("raw" or "derived"), "mean", "std"}]}.
    """
    rng = np.random.default_rng(config.seed)
    n = len(frame)
    take = np.sort(rng.choice(n, size=min(config.rows, n), replace=False))
    sample = frame.iloc[take][list(features)].reset_index(drop=True)
    y = scored.y_true[take]
    head, tail, inputs, derived = _split(model, sample, config.derived_step)
    score_fn = _scorer(tail, task, scored.classes, y)
    metric = score_fn.metric

    def score(x: pd.DataFrame) -> float:
        return score_fn(tail, x, y)

    columns = [(c, "raw", sample) for c in features] + [(c, "derived", inputs) for c in derived]
    # A tree model scores each row on its own, bit for bit: rows a shuffle leaves as they were
    # (a quarter of them on builtin:churn: few-valued columns) keep the sample's outputs, and
    # only the others are predicted again.
    reuse = head is None and _row_exact(tail)

    def one(index: int) -> dict[str, Any]:
        name, kind, base = columns[index]
        drops = []
        # each column its own generator: results do not depend on which thread runs it
        gen = np.random.default_rng([config.seed, index])
        for _ in range(config.repeats):
            shuffled = base.copy(deep=False)
            values = base[name].iloc[gen.permutation(len(base))]
            shuffled[name] = values.set_axis(base.index)
            if reuse:
                changed = np.flatnonzero(~_same(shuffled[name], base[name]))
                drops.append(baseline - score_fn.partly(tail, shuffled, changed, outputs, y))
                continue
            if kind == "raw" and head is not None:
                shuffled = head.transform(shuffled)
            drops.append(baseline - score(shuffled))
        sign = 1.0 if metric_catalog.higher_is_better(metric) else -1.0
        return {
            "feature": name,
            "kind": kind,
            "mean": _finite(sign * float(np.mean(drops))),
            "std": _finite(float(np.std(drops))),
        }

    with threadpoolctl.threadpool_limits(1):  # parallel over columns, not inside each predict
        # the sample's outputs are those rows of the step's one prediction (row-exact model)
        outputs = _sample_outputs(scored, take, score_fn, tail) if reuse else None
        baseline = score_fn.partly(tail, inputs, [], outputs, y) if reuse else score(inputs)
        workers = max(1, min(config.n_threads, len(columns)))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            rows = list(pool.map(one, range(len(columns))))
    rows.sort(key=lambda r: (-(r["mean"] if r["mean"] is not None else -math.inf), r["feature"]))
    return {
        "metric": metric,
        "rows": len(sample),
        "of_rows": n,
        "repeats": config.repeats,
        "seed": config.seed,
        "score": _finite(baseline),
        "features": rows,
    }


def _split(model: Any, sample: pd.DataFrame, step: str) -> tuple[Any, Any, pd.DataFrame, list[str]]:
    """(head, tail, tail's input, derived columns): the model cut after its derived-feature step.

    Without such a step: (None, model, sample, []).
    """
    names = [name for name, _ in getattr(model, "steps", [])]
    if step not in names:
        return None, model, sample, []
    cut = names.index(step) + 1
    head, tail = model[:cut], model[cut:]
    inputs = head.transform(sample)
    if not isinstance(inputs, pd.DataFrame):
        return None, model, sample, []
    return head, tail, inputs, [c for c in inputs.columns if c not in sample.columns]


def _row_exact(model: Any) -> bool:
    """Whether the model is a tree ensemble (through Pipeline and wrapper steps).

    Such a model's output for a row does not depend on the other rows in the batch (sklearn
    walks each row through the trees and adds the trees in a fixed order), so predicting a
    subset of rows gives the same bits as those rows of the whole batch.
    """
    trees = _trees()
    while not isinstance(model, trees):
        if hasattr(model, "steps"):
            model = model.steps[-1][1]
        elif hasattr(model, "estimator"):  # FixedThresholdClassifier, FrozenEstimator
            model = model.estimator
        else:
            return False
    return True


def _trees() -> tuple[type, ...]:
    from sklearn import ensemble  # noqa: PLC0415 (on use: see the imports)

    return (
        ensemble.HistGradientBoostingClassifier,
        ensemble.HistGradientBoostingRegressor,
        ensemble.RandomForestClassifier,
        ensemble.RandomForestRegressor,
    )


def _sample_outputs(scored: measures.Scored, take: np.ndarray, score_fn, model) -> np.ndarray:
    """What `score_fn.outputs(model, sample)` gives, taken from the scored test rows."""
    if score_fn.task == "classification" and hasattr(model, "predict_proba"):
        return scored.proba[take]
    return scored.y_pred[take]


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Rows where two columns hold equal values (missing ones count as changed)."""
    try:
        return np.asarray(a.eq(b).fillna(False), dtype=bool)
    except (TypeError, ValueError):  # values pandas cannot compare: every row changed
        return np.zeros(len(a), dtype=bool)


class _Scorer:
    """The key metric of a model on rows; falls back to accuracy where it is undefined."""

    def __init__(self, task: str, classes: list[Any], metric: str):
        self.task, self.classes, self.metric = task, classes, metric

    def outputs(self, model: Any, x: pd.DataFrame) -> np.ndarray:
        """What the metric is computed from: probabilities where it uses them, else predictions."""
        if self.task == "classification" and hasattr(model, "predict_proba"):
            return np.asarray(model.predict_proba(x), dtype="float64")
        if self.task == "regression":
            return np.asarray(model.predict(x), "float64")
        return np.asarray(model.predict(x))

    def partly(
        self, model: Any, x: pd.DataFrame, changed, outputs: np.ndarray, y: np.ndarray
    ) -> float:
        """The metric on rows `x` whose outputs are `outputs` but for the rows `changed`.

        The same value as `self(model, x, y)` for a model whose rows are scored on their own.
        """
        try:
            out = outputs
            if len(changed):
                out = outputs.copy()
                out[changed] = self.outputs(model, x.iloc[changed])
            return self._from(model, out, y)
        except ValueError:  # e.g. a non-finite probability: no score, reported as null
            return math.nan

    def _from(self, model: Any, out: np.ndarray, y: np.ndarray) -> float:
        from sklearn import metrics as sk  # noqa: PLC0415 (on use: see the imports)

        from kfops.evaluate import measures  # noqa: PLC0415 (on use: see the imports)

        if self.task == "regression":
            r2 = measures.regression(y, out)["r2"]
            return math.nan if r2 is None else r2
        if not hasattr(model, "predict_proba"):
            return float(np.mean(out == y))
        if self.metric == "accuracy":
            return float(np.mean(decision.labels(self.classes, out, decision.of(model)) == y))
        if len(self.classes) == 2:
            return float(sk.roc_auc_score(y == self.classes[1], out[:, 1]))
        return float(
            sk.roc_auc_score(y, out, multi_class="ovr", average="macro", labels=self.classes)
        )

    def __call__(self, model: Any, x: pd.DataFrame, y: np.ndarray) -> float:
        from kfops.evaluate import measures  # noqa: PLC0415 (on use: see the imports)

        if self.task == "regression":  # None (constant label) or non-finite: NaN, then null
            r2 = measures.regression(y, np.asarray(model.predict(x), "float64"))["r2"]
            return math.nan if r2 is None else r2
        try:
            return self._classification(model, x, y)
        except ValueError:  # e.g. a non-finite probability: no score, reported as null
            return math.nan

    def _classification(self, model: Any, x: pd.DataFrame, y: np.ndarray) -> float:
        from sklearn import metrics as sk  # noqa: PLC0415 (on use: see the imports)

        if self.metric == "accuracy":
            if hasattr(model, "predict_proba"):  # labelled as kfops.evaluate labels them
                proba = np.asarray(model.predict_proba(x), dtype="float64")
                return float(np.mean(decision.labels(self.classes, proba, decision.of(model)) == y))
            return float(np.mean(np.asarray(model.predict(x)) == y))
        proba = np.asarray(model.predict_proba(x), dtype="float64")
        if len(self.classes) == 2:
            return float(sk.roc_auc_score(y == self.classes[1], proba[:, 1]))
        return float(
            sk.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=self.classes)
        )


def _scorer(model: Any, task: str, classes: list[Any], y: np.ndarray) -> _Scorer:
    """The task's key metric, or accuracy where that is undefined.

    Undefined: no probabilities, or a class missing from the sample.
    """
    metric = metric_catalog.DEFAULT_METRIC[task]
    if task == "classification":
        every_class = set(jsonable.plain(v) for v in np.unique(y)) >= set(classes)
        if not (hasattr(model, "predict_proba") and len(classes) >= 2 and every_class):
            metric = "accuracy"
    return _Scorer(task, classes, metric)


def _feature_columns(
    model: Any, frame: pd.DataFrame, label: str, id_columns: Sequence[str]
) -> list[str]:
    """The model's raw inputs: what it fitted on, else every column but the label and ids."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [c for c in frame.columns if c != label and c not in id_columns]


# -- per-class metrics, worst slices, confidently wrong rows ---------------------------------


def per_class(scored: measures.Scored) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class (0 where undefined, as zero_division=0)."""
    out = []
    for c in scored.classes:
        predicted, actual = scored.y_pred == c, scored.y_true == c
        tp = float(np.sum(predicted & actual))
        p, a = float(predicted.sum()), float(actual.sum())
        out.append(
            {
                "label": c,
                "precision": tp / p if p else 0.0,
                "recall": tp / a if a else 0.0,
                "f1": 2 * tp / (p + a) if p + a else 0.0,
                "support": int(a),
            }
        )
    return out


def worst_slices(
    slices: Mapping[str, Mapping[str, Any]], metric: str, n: int = WORST_SLICES
) -> dict[str, Any]:
    """The `n` slices with the worst value of `metric` (judged ones only), worst first."""
    judged = [
        (name, v) for name, v in slices.items() if not v.get("too_small") and _num(v.get(metric))
    ]
    sign = 1.0 if metric_catalog.higher_is_better(metric) else -1.0
    judged.sort(key=lambda item: (sign * item[1][metric], item[0]))
    rows = [{"slice": name, "rows": v["rows"], "value": v[metric]} for name, v in judged[:n]]
    return {"metric": metric, "slices": rows}


def confidently_wrong(
    frame: pd.DataFrame,
    scored: measures.Scored,
    task: str,
    label: str,
    features: Sequence[str],
    id_columns: Sequence[str],
    top: int,
) -> dict[str, Any]:
    """The wrong rows the model was surest of: highest probability on a wrong class.

    Regression has no probability: its rows are those with the largest absolute error.
    Classification without probabilities lists nothing (there is no confidence to rank by).
    """
    if task == "regression":
        error = np.abs(scored.y_pred.astype("float64") - scored.y_true.astype("float64"))
        order = np.argsort(-error, kind="stable")[:top]
        kind, errors, confidence = "absolute error", len(error), error
    elif scored.proba is None:
        return {"by": "probability", "errors": None, "columns": [], "rows": []}
    else:
        confidence = scored.proba.max(axis=1)
        wrong = np.flatnonzero(scored.y_pred != scored.y_true)
        order = wrong[np.argsort(-confidence[wrong], kind="stable")][:top]
        kind, errors = "probability", len(wrong)
    ids = [c for c in id_columns if c in frame.columns]
    columns = [*ids, *features]
    rows = []
    for i in order:
        values = {c: _plain(frame[c].iat[i]) for c in columns}
        values.update(
            {
                "row": int(i),
                label: _plain(scored.y_true[i]),
                "prediction": _plain(scored.y_pred[i]),
                kind: _finite(float(confidence[i])),
            }
        )
        rows.append(values)
    features_shown = [c for c in columns if c not in ids]
    header = ["row", *ids, label, "prediction", kind, *features_shown]
    return {"by": kind, "errors": int(errors), "columns": header, "rows": rows}


def flat(explanations: Mapping[str, Any]) -> dict[str, float]:
    """KFP Metrics keys: importance/<feature>, class/<label>/<precision|recall|f1|support>."""
    out: dict[str, float] = {}
    for row in (explanations.get("importance") or {}).get("features", []):
        if _num(row["mean"]):
            out[f"importance/{row['feature']}"] = float(row["mean"])
    for row in explanations.get("per_class") or []:
        for stat in ("precision", "recall", "f1", "support"):
            out[f"class/{row['label']}/{stat}"] = float(row[stat])
    return out


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """A cell as JSON holds it: numpy scalars unwrapped, missing as None, times as text."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    value = jsonable.plain(value)
    if isinstance(value, float):
        return _finite(value)
    return value if isinstance(value, int | str | bool) else str(value)
