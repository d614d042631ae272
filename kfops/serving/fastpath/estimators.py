"""The final estimator on the compiled feature matrix (or on one feature row).

Linear models are a dot product, so they are computed directly: sklearn's predict spends ~100 us
validating a one-row input before a 1 us dot product. What that validation refuses is refused here
too: a NaN or an infinity in the features (a huge input can overflow once scaled) raises, and the
request falls back to sklearn, which answers with its own error. Any other estimator is called on
the float64 matrix it was fitted on, with sklearn's own input checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special
from sklearn import ensemble, linear_model, tree
from sklearn.utils import extmath

from kfops.serving.fastpath import forests, trees

# Linear models whose predict is exactly `X @ coef_.T + intercept_`
# (LinearModel._decision_function).
_LINEAR_REGRESSORS = (
    linear_model.LinearRegression,
    linear_model.Ridge,
    linear_model.Lasso,
    linear_model.ElasticNet,
)

_HIST_GRADIENT_BOOSTING = (
    ensemble.HistGradientBoostingClassifier,
    ensemble.HistGradientBoostingRegressor,
)
# Classifiers whose predict is `classes_[argmax(predict_proba)]` in sklearn's own code.
_ARGMAX_CLASSIFIERS = (
    ensemble.HistGradientBoostingClassifier,
    ensemble.RandomForestClassifier,
    ensemble.ExtraTreesClassifier,
    tree.DecisionTreeClassifier,
)
Output = tuple[np.ndarray, np.ndarray | None]  # (predictions, class probabilities or None)


def block_predictor(est: Any) -> Callable[[np.ndarray, bool], Output]:
    """(matrix, want_proba) -> outputs, as `est.predict` / `est.predict_proba` would answer."""
    if isinstance(est, _HIST_GRADIENT_BOOSTING):
        try:
            return trees.block_predictor(est)  # flat node arrays, not 200 Cython calls
        except trees.Unsupported:
            pass  # sklearn's own predict on the compiled matrix, below
    if isinstance(est, forests.FORESTS):
        try:
            return forests.block_predictor(est)  # one compiled walk, not a joblib call per tree
        except forests.Unsupported:
            pass  # sklearn's own predict on the compiled matrix, below
    if isinstance(est, linear_model.LogisticRegression):
        return lambda x, want_proba: _logistic(est, _finite(x), want_proba)
    if isinstance(est, _LINEAR_REGRESSORS):
        coef = est.coef_.T if est.coef_.ndim == 2 else est.coef_
        return lambda x, want_proba: (_finite(x) @ coef + est.intercept_, None)

    if isinstance(est, _ARGMAX_CLASSIFIERS) and getattr(est, "n_outputs_", 1) == 1:

        def argmax(x: np.ndarray, want_proba: bool) -> Output:
            if not want_proba:
                return np.asarray(est.predict(x)), None
            proba = est.predict_proba(x)  # predict is argmax(predict_proba): one pass, not two
            return est.classes_[np.argmax(proba, axis=1)], proba

        return argmax

    def generic(x: np.ndarray, want_proba: bool) -> Output:
        proba = est.predict_proba(x) if want_proba else None
        return np.asarray(est.predict(x)), proba

    return generic


def row_predictor(est: Any) -> Callable[[list, bool], Output] | None:
    """(feature row, want_proba) -> outputs for one row in plain Python.

    None when the estimator has no such form: the caller then uses `block_predictor` on a
    one-row matrix.
    """
    if isinstance(est, _HIST_GRADIENT_BOOSTING):
        try:
            return trees.row_predictor(est)  # one generated expression per tree
        except trees.Unsupported:
            return None
    if isinstance(est, linear_model.LogisticRegression) and est.coef_.shape[0] == 1:
        coef, intercept = est.coef_[0].tolist(), float(est.intercept_[0])
        negative, positive = est.classes_[0:1], est.classes_[1:2]

        def logistic(r: list, want_proba: bool) -> Output:
            score = _dot(coef, _finite_row(r)) + intercept
            label = positive if score > 0 else negative
            if not want_proba:
                return label, None
            p = _expit(score)
            return label, np.array([[1.0 - p, p]])

        return logistic
    if isinstance(est, _LINEAR_REGRESSORS) and est.coef_.ndim == 1:
        coef, intercept = est.coef_.tolist(), float(est.intercept_)
        return lambda r, want_proba: (np.array([_dot(coef, _finite_row(r)) + intercept]), None)
    return None


def _finite(x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise ValueError("Input X contains NaN or infinity")
    return x


def _finite_row(r: list) -> list:
    for v in r:
        if not math.isfinite(v):
            raise ValueError("Input X contains NaN or infinity")
    return r


def _dot(coef: list[float], r: list) -> float:
    total = 0.0
    for c, v in zip(coef, r, strict=True):
        total += c * v
    return total


def _expit(x: float) -> float:
    """1 / (1 + exp(-x)) without overflow for very negative x."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _logistic(est: linear_model.LogisticRegression, x: np.ndarray, want_proba: bool) -> Output:
    """LinearClassifierMixin.decision_function/predict and LogisticRegression.predict_proba."""
    scores = x @ est.coef_.T + est.intercept_
    if scores.shape[1] == 1:
        scores = scores.reshape(-1)
        labels = est.classes_[(scores > 0).astype(np.intp)]
        if not want_proba:
            return labels, None
        proba = np.empty((len(scores), 2))
        proba[:, 1] = special.expit(scores)
        proba[:, 0] = 1 - proba[:, 1]
        return labels, proba
    labels = est.classes_[np.argmax(scores, axis=1)]
    return labels, (extmath.softmax(scores, copy=True) if want_proba else None)
