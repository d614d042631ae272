"""Batch tree scoring compiled by numba: all rows through all trees in one call.

sklearn's HistGradientBoosting predict calls one Cython predictor per tree (200 calls, each with
a fixed cost and an OpenMP region), and a numpy walk over flat node arrays costs several gathers
over rows x trees per level; here one machine-code loop scores every row through every tree
(leaf bitmasks, `scorer_kernel`, for trees of at most 64 leaves; a node walk otherwise). numba
compiles with LLVM in-process (llvmlite ships it), so the image needs no C compiler. The machine
code is cached on disk where numba finds a writable place (`__pycache__` beside this file, else
NUMBA_CACHE_DIR or the user's cache directory); with none (a read-only image and home), it is
compiled once per process instead. Measured under load: importing numba 1.4 s, compiling the
HGB walk 2.0 s; it happens at model load (the callers warm the kernels up), never on a request.
This module is imported only on the serving path (`trees.batch_function`, `forests`), so no
other command pays for numba.

Accumulation order is sklearn's: each row's output starts at the baseline (HGB) or zero (forests)
and adds tree 0, 1, ... in order (`_predict_iterations`: `raw_predictions[:, k] += predict(X)`;
`_accumulate_prediction`), so sums are bit-equal. No fastmath: comparisons and NaN tests keep
IEEE semantics.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros


def _compiled(fn: Callable) -> Callable:
    """`numba.njit` without the GIL, cached on disk when numba has somewhere to write."""
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, cache=False)(fn)


@_compiled
def _hgb_walk(x, roots, n_outputs, feature, threshold, missing_left, left, right, is_leaf, value,
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


_CODES = 257  # encoded categories 0..255, then 256 for missing or unknown (`trees._NAN_CODE`)


@_compiled
def _hgb_scorer(x, n_outputs, leaf_value, leaf_start, num_start, num_threshold, num_tree,
                num_mask, nan_start, nan_tree, nan_mask, cat_feature, cat_start, cat_tree,
                cat_mask, out):  # fmt: skip
    n, n_features = x.shape
    n_trees = leaf_start.shape[0]
    every = np.uint64(0xFFFFFFFFFFFFFFFF)
    alive = np.empty(n_trees, np.uint64)
    for r in range(n):
        alive[:] = every
        for f in range(n_features):
            v = x[r, f]
            if v != v:  # NaN: only the splits that send it right
                for k in range(nan_start[f], nan_start[f + 1]):
                    alive[nan_tree[k]] &= nan_mask[k]
            else:  # splits sorted by threshold: v > threshold sends v right, up to the first not
                k, end = num_start[f], num_start[f + 1]
                while k < end and num_threshold[k] < v:
                    alive[num_tree[k]] &= num_mask[k]
                    k += 1
        for c in range(cat_feature.shape[0]):  # the splits sending this category right
            key = c * _CODES + np.intp(x[r, cat_feature[c]])
            for k in range(cat_start[key], cat_start[key + 1]):
                alive[cat_tree[k]] &= cat_mask[k]
        _add_leaves(alive, n_outputs, leaf_value, leaf_start, out, r)


@_compiled
def _hgb_binned(x, n_outputs, column, is_cat, bound_start, bounds, row_start, table, leaf_value,
                leaf_start, out):  # fmt: skip
    n = x.shape[0]
    n_trees = leaf_start.shape[0]
    alive = np.empty(n_trees, np.uint64)
    for r in range(n):
        alive[:] = np.uint64(0xFFFFFFFFFFFFFFFF)
        for u in range(column.shape[0]):
            v = x[r, column[u]]
            lo, hi = bound_start[u], bound_start[u + 1]
            if is_cat[u]:  # bounds: the known categories; row hi - lo: missing or unknown
                if v == np.inf or v == -np.inf:
                    raise ValueError("Input contains infinity")  # as sklearn's OrdinalEncoder
                b = hi - lo
                if v == v:
                    k = _below(bounds, lo, hi, v)
                    if k < hi and bounds[k] == v:
                        b = k - lo
            elif v != v:  # bounds: the distinct thresholds; row hi - lo + 1: NaN
                b = hi - lo + 1
            else:  # the thresholds below v are the splits sending v right
                b = _below(bounds, lo, hi, v) - lo
            row = row_start[u] + b
            for t in range(n_trees):
                alive[t] &= table[row, t]
        _add_leaves(alive, n_outputs, leaf_value, leaf_start, out, r)


@_compiled
def _below(bounds, lo, hi, v):
    """The first index in bounds[lo:hi] (sorted) whose value is not below v."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if bounds[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_compiled
def _add_leaves(alive, n_outputs, leaf_value, leaf_start, out, r):
    """Adds each tree's exit leaf (the lowest bit alive) to row r, tree 0, 1, ... in order."""
    n_trees = leaf_start.shape[0]
    if n_outputs == 1:  # one running sum in a register: same additions, same order
        s = out[r, 0]
        for t in range(n_trees):
            s += leaf_value[leaf_start[t] + trailing_zeros(alive[t])]
        out[r, 0] = s
        return
    k = 0
    for t in range(n_trees):  # iteration-major: tree t adds to output t % n_outputs
        out[r, k] += leaf_value[leaf_start[t] + trailing_zeros(alive[t])]
        k = k + 1 if k + 1 < n_outputs else 0


@_compiled
def _forest_walk(x, roots, feature, threshold, missing_left, left, right, value, out):
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


def kernel() -> Callable:
    """The HistGradientBoosting walk: (x, roots, n_outputs, node arrays..., out) adds into out.

    Numeric split: NaN follows `missing_left`, else left iff `x <= threshold`; categorical
    split: x holds the encoded category (256: missing or unknown), left iff `cat_left[row, code]`.
    """
    return _hgb_walk


def scorer_kernel() -> Callable:
    """The HistGradientBoosting trees scored by leaf bitmasks (QuickScorer), row by row.

    Lucchese et al., "QuickScorer: a fast algorithm to rank documents with additive ensembles
    of regression trees" (SIGIR 2015): each tree keeps a bitmask of leaves still reachable
    (bit b: the tree's b-th leaf from the left); a split that sends the row right clears the
    leaves of its left subtree; the exit leaf is the lowest bit left. Numeric splits are
    visited per feature in increasing threshold order and only while `threshold < x` (those
    are exactly the ones sending x right; NaN instead clears the splits with
    `missing_left` false); for a categorical feature, the splits its category code sends
    right are listed per code beforehand. Trees of at most 64 leaves. Same leaves as the walk,
    so the same sums in the same order.
    """
    return _hgb_scorer


def binned_kernel() -> Callable:
    """The leaf bitmasks of `scorer_kernel` combined per feature and value range at load.

    For each feature the model splits on, a table row per interval between consecutive
    thresholds (and one for NaN; for a categorical feature, a row per known category and one
    for missing or unknown) holds, per tree, the AND of the masks of every split that range of
    values sends right. A row then costs one binary search and one AND per feature and tree,
    contiguous and vectorised, instead of one scattered AND per split below the value;
    categorical values are encoded here too (binary search among the known categories, +-inf
    refused), so the caller passes the raw matrix. Same reachable leaves, so the same sums in
    the same order.
    """
    return _hgb_binned


def forest_kernel() -> Callable:
    """The walk for scikit-learn's decision-tree forests (`_tree.pyx` `_apply_dense`).

    x is float32 (sklearn casts inputs to it) and compares, promoted to float64, with the
    float64 thresholds; NaN follows `missing_go_to_left`; leaves have `left < 0`. Each leaf's
    value row is added to the row's outputs tree by tree in the forest's order.
    """
    return _forest_walk
