"""The positive class and decision threshold of a binary classifier, chosen without the test split.

The threshold comes from out-of-fold probabilities: those the search's own fits of the chosen
hyperparameters gave on each search fold's validation side (kfops.train.core keeps them, so no
fold is fitted twice; the same leak-free folds the search used: grouped or time-ordered when the
split was). The test split is never seen, so the thresholded metrics evaluate reports on it stay
honest. Objective "f1" keeps the threshold that maximises the positive class's F1 on those
probabilities; "none" keeps 0.5. The model's labels follow the rule (kfops.decision), so the
server applies it as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kfops import decision, errors

OBJECTIVES = ("f1", "none")
DEFAULT = 0.5  # predict_proba's threshold in sklearn's own classifiers (argmax of two)


def positive_class(classes: Sequence[Any], wanted: str | None, label: str) -> tuple[Any, str]:
    """(the positive class, why it is that one) for a classification label's sorted values.

    Raises:
        ConfigError: `wanted` is not a value of the label, or the label is not binary.
    """
    if wanted is None:
        return decision.positive_of(classes), decision.LAST_CLASS
    found = decision.match(wanted, classes)
    if found is None:
        raise errors.ConfigError(
            f"positive_class {wanted!r} is not a value of label {label!r}; its values are "
            f"{errors.preview(classes)} (--positive-class VALUE)"
        )
    if len(classes) != 2:
        raise errors.ConfigError(
            f"positive_class needs a binary label; {label!r} has {len(classes)} classes"
        )
    return found, decision.GIVEN


def choose(scores: np.ndarray, y: np.ndarray, positive: Any, objective: str) -> dict[str, Any]:
    """The threshold and the evidence for it, as recorded in the model's metadata.

    Args:
        scores: each search row's out-of-fold probability of `positive`; NaN where no fold
            scored it (a time-ordered split leaves early rows unscored, a fold may lack the class).
        y: the labels of the same rows.
        positive: the positive class.
        objective: one of OBJECTIVES.
    """
    errors.check_choice("threshold_objective", objective, OBJECTIVES)
    out: dict[str, Any] = {"objective": objective, "threshold": DEFAULT}
    if objective == "none":
        return out
    scored = ~np.isnan(scores)
    actual = np.asarray(y[scored] == positive, dtype=bool)
    out["validation_rows"] = int(scored.sum())
    if not actual.any():
        out["note"] = "no positive row among the validation rows: threshold left at 0.5"
        return out
    threshold, best = best_f1(scores[scored], actual)
    out.update(
        threshold=threshold,
        validation_f1=best,
        validation_f1_at_default=f1_at(scores[scored], actual, DEFAULT),
    )
    return out


def best_f1(scores: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising the positive class's F1 when `score >= threshold` is positive.

    The threshold sits halfway between the last score kept positive and the next lower score, so
    small changes of a probability do not flip a validation row. Ties in F1 keep the higher
    threshold (fewer positives).
    """
    order = np.argsort(-scores, kind="stable")
    s, a = scores[order], actual[order]
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # last row of each distinct score
    tp = np.cumsum(a)[ends]
    f1 = 2 * tp / (ends + 1 + a.sum())
    i = int(np.argmax(f1))
    cut = ends[i]
    threshold = s[cut] if cut + 1 == len(s) else (s[cut] + s[cut + 1]) / 2
    return float(threshold), float(f1[i])


def f1_at(scores: np.ndarray, actual: np.ndarray, threshold: float) -> float:
    """The positive class's F1 when `score >= threshold` is positive."""
    predicted = scores >= threshold
    denominator = predicted.sum() + actual.sum()
    return float(2 * np.sum(predicted & actual) / denominator) if denominator else 0.0
