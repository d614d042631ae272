"""The decision rule of a binary classifier: which class is positive, and at what probability.

Training wraps a binary classifier's final step in scikit-learn's `FixedThresholdClassifier`
(threshold and `pos_label` chosen by kfops.train.threshold), so the saved pipeline's own
`predict` applies the rule: evaluation, the kfops server on both its paths, and any runtime that
only calls `predict` (KServe's sklearn server) give the same labels. The rule is sklearn's
(sklearn/metrics/_scorer.py `_threshold_scores_to_class_labels`): the positive class when
`proba[:, positive] >= threshold`, else the other class.

A model without the wrapper (trained before it existed, multiclass, a regressor) has no
recorded rule: its positive class is the last class in sorted order, its labels argmax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from kfops import jsonable

LAST_CLASS = "the last label value in sorted order (no --positive-class given)"
GIVEN = "set by --positive-class"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A binary decision rule: `positive` when its probability >= `threshold`."""

    positive: Any
    threshold: float


def _fixed_threshold() -> type:
    """The FixedThresholdClassifier class, imported on use (issue 16).

    `kfops run`'s flags read modules importing this one; they need no scikit-learn.
    """
    from sklearn.model_selection import FixedThresholdClassifier  # noqa: PLC0415 (see above)

    return FixedThresholdClassifier


def final_step(model: Any) -> Any:
    """The estimator a Pipeline ends with (the model itself when it is not a Pipeline)."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def of(model: Any) -> Rule | None:
    """The rule a fitted model carries, or None (argmax labels)."""
    final = final_step(model)
    if not isinstance(final, _fixed_threshold()):
        return None
    return Rule(jsonable.plain(final.pos_label), float(final.threshold))


def inner(model: Any) -> Any:
    """The fitted classifier inside a wrapped final step (the final step itself otherwise)."""
    final = final_step(model)
    if not isinstance(final, _fixed_threshold()):
        return final
    fitted = getattr(final, "estimator_", final.estimator)
    return getattr(fitted, "estimator", fitted)  # through sklearn.frozen.FrozenEstimator


def wrap(model: Any, rule: Rule, x: Any, y: np.ndarray) -> None:
    """Replaces a fitted Pipeline's final step by that step under `rule` (sklearn's prefit form).

    FrozenEstimator keeps the fitted classifier as it is: fitting the wrapper fits nothing.
    """
    from sklearn.frozen import FrozenEstimator  # noqa: PLC0415 (see _fixed_threshold)

    name, fitted = model.steps[-1]
    wrapper = _fixed_threshold()(FrozenEstimator(fitted), threshold=rule.threshold,
                             pos_label=rule.positive, response_method="predict_proba")  # fmt: skip
    model.steps[-1] = (name, wrapper.fit(x, y))


def labels(classes: Sequence[Any], proba: np.ndarray, rule: Rule | None) -> np.ndarray:
    """Labels from class probabilities (columns in `classes` order), as the model predicts them."""
    classes = np.asarray(classes)
    if rule is None:
        return classes[np.asarray(proba).argmax(axis=1)]
    index = [jsonable.plain(c) for c in classes.tolist()].index(rule.positive)
    negative = classes[1 - index]
    hit = np.asarray(proba)[:, index] >= rule.threshold
    return np.where(hit, classes[index], negative)


def positive_of(classes: Sequence[Any], model: Any = None) -> Any:
    """The positive class: the model's recorded one, else the last class (sorted order)."""
    rule = of(model) if model is not None else None
    if rule is not None:
        return rule.positive
    return jsonable.plain(classes[-1]) if len(classes) else None


def match(value: Any, values: Sequence[Any]) -> Any:
    """The label value `value` names (text "1" names the integer 1), or None."""
    for v in values:
        if v == value or str(v) == str(value):
            return jsonable.plain(v)
    return None
