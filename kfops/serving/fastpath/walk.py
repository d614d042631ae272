"""Batch tree traversal compiled by numba: all rows through all trees in one call.

sklearn's HistGradientBoosting predict calls one Cython predictor per tree (200 calls, each with
a fixed cost and an OpenMP region), and a numpy walk over flat node arrays costs several gathers
over rows x trees per level; here one machine-code loop walks each tree for every row. numba
compiles with LLVM in-process (llvmlite ships it), so the image needs no C compiler; nothing is
cached on disk (`cache=False`), so the package directory may be read-only. Compiling takes ~1 s
once per process, at model load (`kernel()`), not on a request.

Accumulation order is sklearn's: each row's output starts at the baseline and adds tree 0, 1, ...
in iteration order (`_predict_iterations`: `raw_predictions[:, k] += predict(X)`), so sums are
bit-equal. No fastmath: comparisons and NaN tests keep IEEE semantics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np


@functools.cache
def kernel() -> Callable:
    """The compiled HistGradientBoosting walk (imports numba and compiles on first use).

    Raises:
        ImportError: numba is not installed (the caller keeps its slower paths).
    """
    import numba  # noqa: PLC0415 (~0.3 s import and ~1 s compile: serving path only)

    @numba.njit(nogil=True, cache=False)
    def walk(x, roots, n_outputs, feature, threshold, missing_left, left, right, is_leaf, value,
             cat_row, cat_left, out):  # fmt: skip
        n = x.shape[0]
        for t in range(roots.shape[0]):
            k = t % n_outputs
            root = roots[t]
            for r in range(n):
                i = root
                while not is_leaf[i]:
                    v = x[r, feature[i]]
                    c = cat_row[i]
                    if c >= 0:  # categorical: v is the encoded category, 256 for missing
                        go_left = cat_left[c, np.intp(v)]
                    elif v != v:
                        go_left = missing_left[i]
                    else:
                        go_left = v <= threshold[i]
                    i = left[i] if go_left else right[i]
                out[r, k] += value[i]

    return walk


@functools.cache
def forest_kernel() -> Callable:
    """The compiled walk for scikit-learn's decision-tree forests (`_tree.pyx` `_apply_dense`).

    x is float32 (sklearn casts inputs to it) and compares, promoted to float64, with the
    float64 thresholds; NaN follows `missing_go_to_left`. Each leaf's value row is added to the
    row's outputs tree by tree in the forest's order, as `_accumulate_prediction` does.

    Raises:
        ImportError: numba is not installed.
    """
    import numba  # noqa: PLC0415

    @numba.njit(nogil=True, cache=False)
    def walk(x, roots, feature, threshold, missing_left, left, right, value, out):  # fmt: skip
        n, k = x.shape[0], value.shape[1]
        for t in range(roots.shape[0]):
            root = roots[t]
            for r in range(n):
                i = root
                while left[i] >= 0:
                    v = x[r, feature[i]]
                    if v != v:
                        go_left = missing_left[i]
                    else:
                        go_left = v <= threshold[i]
                    i = left[i] if go_left else right[i]
                for c in range(k):
                    out[r, c] += value[i, c]

    return walk
