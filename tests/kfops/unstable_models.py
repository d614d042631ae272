"""Candidates that train and evaluate fine but do not serve what they answer in process.

Importable by module path so joblib can unpickle them in the server's load path (in the test
process, and in a kfp.local step subprocess started from the repository root).
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class DriftingProba(ClassifierMixin, BaseEstimator):
    """Wraps a fitted classifier; every predict_proba call moves probabilities by `step` more.

    Labels never change (predict uses the wrapped model), so only a check that compares
    probabilities can tell that the served answers are not the in-process ones: a stand-in
    for inference with hidden state (a cache, a random seed drawn per call).
    """

    def __init__(self, model=None, step: float = 1e-4):
        self.model = model
        self.step = step

    def fit(self, X, y):  # noqa: N803 (scikit-learn's signature)
        self.model.fit(X, y)
        self.classes_ = self.model.classes_
        self.calls_ = 0
        return self

    def predict(self, X):  # noqa: N803
        return self.model.predict(X)

    def predict_proba(self, X):  # noqa: N803
        self.calls_ += 1
        proba = np.asarray(self.model.predict_proba(X), dtype=float)
        shift = min(self.step * self.calls_, 0.01)
        moved = proba * (1 - shift) + shift / proba.shape[1]  # still rows summing to one
        return moved


def drifting(pipeline, X, y, step: float = 1e-4):  # noqa: N803
    """`pipeline` with its final estimator wrapped in DriftingProba, refitted on X, y."""
    from sklearn.pipeline import Pipeline

    *head, (name, est) = pipeline.steps
    return Pipeline([*head, (name, DriftingProba(est, step))]).fit(X, y)
