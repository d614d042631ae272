"""Random forests and extra-trees predictions by one compiled walk instead of a call per tree.

sklearn's forest predict runs every tree's Cython `predict` through joblib (one call, a lock and
a (rows, classes) temporary per tree): ~50-100 us per tree whatever the rows. Here all trees'
nodes are concatenated once and `walk.forest_kernel` walks them for every row in one call.

Semantics follow sklearn 1.9's `ForestClassifier.predict_proba` / `ForestRegressor.predict`:
inputs are cast to float32 and refused if infinite (or too large for float32) and, unless the
trees support missing values, if NaN; each row sums its leaves' values tree by tree in the
forest's order from zeros, then divides by the number of trees; a classifier's label is
`classes_[argmax(proba)]`. The sums are sklearn's to the bit when the forest predicts with one
job (its default); with several, sklearn itself adds trees in whatever order its threads finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import ensemble

from kfops.serving.fastpath.steps import Unsupported

Output = tuple[np.ndarray, np.ndarray | None]
FORESTS = (
    ensemble.RandomForestClassifier,
    ensemble.RandomForestRegressor,
    ensemble.ExtraTreesClassifier,
    ensemble.ExtraTreesRegressor,
)


def block_predictor(est: Any) -> Callable[[np.ndarray, bool], Output]:
    """(matrix, want_proba) -> outputs as the forest's predict / predict_proba would answer.

    Raises:
        Unsupported: not a fitted single-output forest, or numba is not installed.
    """
    if not isinstance(est, FORESTS) or not getattr(est, "estimators_", None):
        raise Unsupported("not a fitted random forest or extra-trees model")
    if getattr(est, "n_outputs_", 1) != 1:
        raise Unsupported("a forest with several outputs")
    try:
        from kfops.serving.fastpath import walk  # noqa: PLC0415 (numba: serving path only)

        kernel = walk.forest_kernel()
    except ImportError as e:
        raise Unsupported("numba is not installed") from e
    n_features = int(est.n_features_in_)
    arrays = _flatten(est)
    n_trees = len(est.estimators_)
    # The trees' own rule (sklearn >= 1.4): NaN allowed when they were fitted to route it.
    allow_nan = bool(est.estimators_[0]._support_missing_values(np.zeros((1, n_features))))
    classes = getattr(est, "classes_", None)
    is_classifier = isinstance(est, ensemble.RandomForestClassifier | ensemble.ExtraTreesClassifier)

    def block(x: np.ndarray, want_proba: bool) -> Output:
        x = _checked(x, n_features, allow_nan)
        out = np.zeros((len(x), arrays[-1].shape[1]), dtype=np.float64)
        kernel(x, *arrays, out)
        out /= n_trees
        if not is_classifier:
            return out[:, 0], None
        return classes.take(np.argmax(out, axis=1), axis=0), (out if want_proba else None)

    block(np.zeros((1, n_features)), False)  # compiles the kernel now, not on a request
    return block


def _checked(x: np.ndarray, n_features: int, allow_nan: bool) -> np.ndarray:
    """The input as sklearn's `_validate_X_predict` makes it (C-order float32), or ValueError."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != n_features or len(x) == 0:
        raise ValueError(f"X has shape {x.shape}, expected (>= 1, {n_features})")
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.ascontiguousarray(x, dtype=np.float32)
    nan = np.isnan(x)
    if not np.isfinite(x[~nan]).all():
        raise ValueError("Input X contains infinity or a value too large for dtype('float32').")
    if not allow_nan and nan.any():
        raise ValueError("Input X contains NaN.")
    return x


def _flatten(est: Any) -> tuple[np.ndarray, ...]:
    """(roots, feature, threshold, missing_left, left, right, value) over all trees."""
    parts, roots, offset = [], [], 0
    for tree in (e.tree_ for e in est.estimators_):
        left = tree.children_left.astype(np.intp)
        leaf = left < 0
        missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, np.uint8))
        value = np.asarray(tree.value, dtype=np.float64)
        if value.ndim != 3 or value.shape[1] != 1:
            raise Unsupported("tree values of an unexpected shape")
        n_classes = getattr(est, "n_classes_", None)
        value = value[:, 0, :n_classes] if n_classes is not None else value[:, 0, :1]
        parts.append(
            (
                np.where(leaf, 0, tree.feature).astype(np.intp),
                tree.threshold.astype(np.float64),
                np.asarray(missing, dtype=bool),
                np.where(leaf, -1, left + offset),
                np.where(leaf, -1, tree.children_right.astype(np.intp) + offset),
                np.ascontiguousarray(value),
            )
        )
        roots.append(offset)
        offset += tree.node_count
    flat = [np.concatenate([p[j] for p in parts]) for j in range(6)]
    return (np.array(roots, dtype=np.intp), *flat)
