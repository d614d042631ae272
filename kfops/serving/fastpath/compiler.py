"""From a fitted Pipeline to a `CompiledPipeline`: named validated columns in, outputs out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn import compose, pipeline

from kfops import decision, features
from kfops.serving.fastpath import estimators, steps
from kfops.serving.fastpath.steps import Unsupported


@dataclasses.dataclass(frozen=True)
class CompiledPipeline:
    """A fitted pipeline as plain functions.

    Attributes:
        inputs: the input column names the pipeline reads.
        transform: validated columns -> the float64 matrix the final estimator was fitted on.
        transform_row: one row (column name -> Python value) -> that matrix's row as a list.
        estimator: the fitted final estimator.
    """

    inputs: tuple[str, ...]
    transform: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    transform_row: Callable[[Mapping[str, Any]], list]
    estimator: Any
    _block_predict: Callable = dataclasses.field(repr=False)
    _row_predict: Callable | None = dataclasses.field(repr=False)

    def predict(self, columns: Mapping[str, np.ndarray], want_proba: bool):
        """(predictions, class probabilities or None) for validated columns, as sklearn would.

        A single row goes through the plain-Python form when the estimator has one.
        """
        first = next(iter(columns.values()))
        if len(first) == 1:
            return self.predict_row({n: columns[n].item() for n in self.inputs}, want_proba)
        return self._block_predict(self.transform(columns), want_proba)

    def predict_row(self, values: Mapping[str, Any], want_proba: bool):
        """(predictions, probabilities) for one row given as column name -> Python value."""
        r = self.transform_row(values)
        if self._row_predict is not None:
            return self._row_predict(r, want_proba)
        return self._block_predict(np.array([r], np.float64), want_proba)


def compile_pipeline(fitted: Any) -> CompiledPipeline:
    """Rewrites a fitted Pipeline([ColumnTransformer or steps..., estimator]).

    Raises:
        Unsupported: a step or setting is not covered (the caller serves with sklearn).
    """
    all_steps = list(fitted.steps) if isinstance(fitted, pipeline.Pipeline) else [(None, fitted)]
    *transformers, (_, estimator) = all_steps
    rule = decision.of(fitted)  # a recorded threshold: labels from probabilities (kfops.decision)
    estimator = decision.inner(fitted)
    transformers = [t for _, t in transformers if t is not None and t != "passthrough"]
    if not hasattr(estimator, "predict"):
        raise Unsupported(f"final step {type(estimator).__name__} has no predict")
    derive = None
    if transformers and isinstance(transformers[0], features.DerivedFeatures):
        derive = steps.derived(transformers.pop(0))
    if transformers and isinstance(transformers[0], compose.ColumnTransformer):
        inputs, parts = _column_transformer(transformers.pop(0))
    else:
        names = getattr(fitted, "feature_names_in_", None)
        if names is None:
            raise Unsupported("the pipeline was not fitted on named columns")
        inputs = tuple(map(str, names))
        parts = [(list(inputs), steps.IDENTITY)]
    rest = steps.chain([steps.build(t) for t in transformers])
    width = getattr(estimator, "n_features_in_", None)
    if derive is not None:
        # The client sends the raw inputs; derived columns are computed from them here.
        inputs = derive.inputs

    def transform(columns: Mapping[str, np.ndarray]) -> np.ndarray:
        if derive is not None:
            columns = derive.block(columns)
        blocks = [step.block(_block([columns[n] for n in names])) for names, step in parts]
        x = _matrix([rest.block(_matrix(blocks))])
        if width is not None and x.shape[1] != width:
            raise Unsupported(f"compiled {x.shape[1]} features, the estimator expects {width}")
        return x

    def transform_row(values: Mapping[str, Any]) -> list:
        if derive is not None:
            values = derive.row(values)
        r = []
        for names, step in parts:
            r.extend(step.row([values[n] for n in names]))
        r = rest.row(r)
        if width is not None and len(r) != width:
            raise Unsupported(f"compiled {len(r)} features, the estimator expects {width}")
        return r

    return CompiledPipeline(
        inputs,
        transform,
        transform_row,
        estimator,
        *_thresholded(
            estimators.block_predictor(estimator),
            estimators.row_predictor(estimator),
            rule,
            getattr(estimator, "classes_", None),
        ),
    )


def _thresholded(block: Callable, row: Callable | None, rule: Any, classes: Any):
    """The estimator's predictors with labels made from probabilities by `rule`.

    As sklearn's FixedThresholdClassifier.predict makes them (kfops.decision); unchanged without
    a rule.
    """
    if rule is None:
        return block, row

    def apply(predict: Callable) -> Callable:
        def thresholded(x, want_proba: bool):
            proba = predict(x, True)[1]
            return decision.labels(classes, proba, rule), (proba if want_proba else None)

        return thresholded

    return apply(block), (apply(row) if row is not None else None)


def _matrix(blocks: list[np.ndarray]) -> np.ndarray:
    if not blocks:
        raise Unsupported("no feature columns")
    for b in blocks:
        if b.dtype.kind not in "biuf":
            raise Unsupported(f"a {b.dtype} column reaches the estimator")
    x = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
    return x.astype(np.float64, copy=False)


def _block(cols: list[np.ndarray]) -> np.ndarray:
    """Columns side by side as one 2-D array: numeric when they all are, else object."""
    if len(cols) == 1:
        return cols[0].reshape(-1, 1)
    if all(c.dtype.kind in "biuf" for c in cols):
        return np.column_stack(cols)
    out = np.empty((len(cols[0]), len(cols)), object)
    for j, c in enumerate(cols):
        out[:, j] = c
    return out


def _column_transformer(
    ct: compose.ColumnTransformer,
) -> tuple[tuple[str, ...], list[tuple[list[str], steps.Step]]]:
    if not hasattr(ct, "transformers_"):
        raise Unsupported("the ColumnTransformer is not fitted")
    names_in = getattr(ct, "feature_names_in_", None)
    if names_in is None:
        raise Unsupported("the ColumnTransformer was not fitted on named columns")
    names_in = [str(n) for n in names_in]
    parts = []
    for _, trans, cols in ct.transformers_:
        names = _column_names(cols, names_in)
        if trans == "drop" or not names:
            continue
        parts.append((names, steps.IDENTITY if trans == "passthrough" else steps.build(trans)))
    return tuple(names_in), parts


def _column_names(cols, names_in: list[str]) -> list[str]:
    if isinstance(cols, str):
        return [cols]
    if isinstance(cols, slice) or callable(cols) or np.ndim(cols) == 0:
        # A scalar selection hands the step a 1-D column (text vectorizers), not a 2-D block.
        raise Unsupported(f"column selection {cols!r}")
    cols = cols if isinstance(cols, list) else np.asarray(cols).tolist()
    if all(isinstance(c, bool) for c in cols) and len(cols) == len(names_in):
        return [n for n, keep in zip(names_in, cols, strict=True) if keep]
    if all(isinstance(c, int) for c in cols):
        return [names_in[c] for c in cols]
    if all(isinstance(c, str) for c in cols):
        return list(cols)
    raise Unsupported(f"column selection {cols!r}")
