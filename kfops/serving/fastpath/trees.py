"""HistGradientBoosting predictions without 200 Cython calls per request.

sklearn's `_raw_predict` loops in Python over every TreePredictor, each call with a fixed cost
(~10 us, OpenMP included), so one row of a 200-iteration model takes 2-5 ms for a few thousand
comparisons. Here every tree's nodes are concatenated into flat arrays once, and from them a
Python function is generated: one nested conditional expression per tree, ~20-40 us a row, where
walking the node arrays in a Python loop would cost ~10x more. Batches of two rows or more go
through numba-compiled code (`walk`): for trees of at most 64 leaves, leaf bitmasks scored feature
by feature (QuickScorer, ~4 us of CPU a row for 200 trees), else a walk over the same arrays
(~6-8 us a row), against sklearn's ~2 ms fixed cost plus ~10 us a row; without numba, batches up to
`ROWS_ONE_BY_ONE` rows go row by row and larger ones through sklearn's own walk (a numpy walk of
all trees level by level with index arrays was measured slower than both at every size: each
level costs several gathers over rows x trees).

Semantics follow sklearn 1.9's `_predictor.pyx` and `gradient_boosting.py`:
- numeric split: NaN follows `missing_go_to_left`, otherwise left iff `x <= num_threshold`
  (+-inf are valid inputs: HGB validates with `ensure_all_finite=False`);
- categorical features go first through the estimator's own OrdinalEncoder (unknown or NaN ->
  NaN, +-inf refused); an encoded category goes left if in the split's left bitset, right if a
  known category, otherwise (unknown, NaN) it follows `missing_go_to_left`;
- raw predictions are the baseline plus each iteration's tree, summed in sklearn's order, then
  mapped with the estimator's own loss (expit / softmax / inverse link).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import ensemble, preprocessing
from sklearn._loss import link, loss

from kfops.serving.fastpath.steps import Unsupported

Output = tuple[np.ndarray, np.ndarray | None]

_NAN_CODE = 256  # column of `cat_left` for a missing or unknown category
ROWS_ONE_BY_ONE = 100  # up to here row by row beats sklearn (crossover measured ~120 rows)
ROWS_ONE_BY_ONE_JIT = 1  # row function vs walk: 1 row 29 vs 36 us, 2 rows 60 vs 53 us (measured)
# Python's parser refuses ~200 nested parentheses: deeper trees are left to sklearn.
_MAX_ROW_DEPTH = 90
_CLASSIFIER_LOSSES = (loss.HalfBinomialLoss, loss.HalfMultinomialLoss)
_REGRESSOR_LINKS = (link.IdentityLink, link.LogLink)


@dataclasses.dataclass(frozen=True)
class Forest:
    """All trees of a fitted HistGradientBoosting model as flat node arrays.

    Node arrays are indexed by global node number; `roots[t]` is tree t's root (iteration-major:
    tree t adds to output t % n_outputs). Leaves point to themselves. Features are the
    estimator's input columns (the internal categorical reordering is undone).
    """

    n_features: int
    n_outputs: int
    depth: int
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    is_categorical: np.ndarray
    cat_row: np.ndarray  # row of `cat_left` for a categorical node
    cat_left: np.ndarray  # (n categorical nodes, 257): goes left for encoded category c (256: NaN)
    categories: dict[int, np.ndarray]  # input column -> sorted known categories (raw values)
    baseline: np.ndarray  # (n_outputs,)
    predictors: Any = dataclasses.field(repr=False)  # the estimator's list, to detect a refit


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ROW_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_forest(est: Any) -> Forest:
    """The estimator's trees as a `Forest` (cached per fitted estimator).

    Raises:
        Unsupported: not a fitted HistGradientBoosting model, or a loss or preprocessing this
            module does not reproduce.
    """
    cached = _CACHE.get(est)
    if cached is not None and cached.predictors is getattr(est, "_predictors", None):
        return cached
    forest = _compile(est)
    _CACHE[est] = forest
    return forest


def block_predictor(est: Any) -> Callable[[np.ndarray, bool], Output]:
    """(matrix, want_proba) -> (predictions, probabilities or None), as sklearn would answer.

    With numba, every batch goes through the compiled walk over the flat node arrays (`walk`),
    except up to `ROWS_ONE_BY_ONE_JIT` rows, where the generated row function is cheaper.
    Without numba, up to `ROWS_ONE_BY_ONE` rows go row by row and more to sklearn's own tree
    walk, whose fixed cost (~2 ms) is then repaid by its per-row speed. Raw predictions are then
    mapped once for both outputs.

    Raises:
        Unsupported: as `compile_forest`, or, without numba, trees too deep for a generated
            expression.
    """
    finish = _finisher(est)
    raw_batch = batch_function(compile_forest(est))
    try:
        raw_row = _row_function(est)
        by_row = ROWS_ONE_BY_ONE if raw_batch is None else ROWS_ONE_BY_ONE_JIT
    except Unsupported:
        if raw_batch is None:
            raise
        raw_row, by_row = None, 0  # trees too deep for one expression: the walk takes every size

    def block(x: np.ndarray, want_proba: bool) -> Output:
        if 0 < len(x) <= by_row:
            raw = np.array([raw_row(r) for r in np.asarray(x, dtype=np.float64).tolist()])
        elif raw_batch is not None:
            raw = raw_batch(x)
        else:
            raw = est._raw_predict(x)  # validates x as predict does
        return finish(raw, want_proba)

    return block


def batch_function(forest: Forest) -> Callable[[np.ndarray], np.ndarray] | None:
    """Feature matrix -> raw predictions (rows, outputs) by numba kernels; None without numba.

    Trees of at most 64 leaves are scored by leaf bitmasks: combined per feature and value
    range (`walk.binned_kernel`) up to `BINNED_BYTES` of tables, else split by split
    (`walk.scorer_kernel`); larger trees are walked. Categorical columns are encoded as HGB's
    OrdinalEncoder does (code = index among the known categories; unknown or NaN -> the missing
    column of `cat_left`; +-inf refused), in the binned kernel itself or here for the others.
    """
    try:
        from kfops.serving.fastpath import walk  # noqa: PLC0415 (numba: serving path only)
    except ImportError:
        return None
    cats = [(j, c) for j, c in sorted(forest.categories.items())]
    cat_left = np.ascontiguousarray(forest.cat_left)
    binned = _binned_tables(forest)
    tables = _scorer_tables(forest) if binned is None else None
    if binned is not None:  # the categories are encoded in the kernel: `raw` passes x as is
        cats, scorer = [], walk.binned_kernel()

        def kernel(x, out):
            scorer(x, forest.n_outputs, *binned, out)

    elif tables is not None:  # ~1.5x faster than the walk on the make-run model (RESULTS.md)
        scorer = walk.scorer_kernel()

        def kernel(x, out):
            scorer(x, forest.n_outputs, *tables, out)
    else:
        walker = walk.kernel()
        nodes = (
            forest.feature,
            forest.threshold,
            forest.missing_left,
            forest.left,
            forest.right,
            forest.is_leaf,
            forest.value,
            forest.cat_row,
            cat_left,
        )

        def kernel(x, out):
            walker(x, forest.roots, forest.n_outputs, *nodes, out)

    def raw(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != forest.n_features or len(x) == 0:
            # sklearn's check_array and n_features check refuse these too
            raise ValueError(f"X has shape {x.shape}, expected (>= 1, {forest.n_features})")
        if cats:
            x = x.copy()
            for j, known in cats:
                x[:, j] = _encoded(x[:, j], known)
        else:
            x = np.ascontiguousarray(x)
        out = np.empty((len(x), forest.n_outputs), dtype=np.float64)
        out[:] = forest.baseline
        kernel(x, out)
        return out

    raw(np.zeros((1, forest.n_features)))  # compiles the kernel now, not on a request
    return raw


SCORER_LEAVES = 64  # a tree's reachable leaves are one uint64 in `walk.scorer_kernel`
# Largest `walk.binned_kernel` table (features' value ranges x trees x 8 bytes); the make-run
# model's is ~0.5 MB. Above it the scorer's per-split lists take less memory than tables.
BINNED_BYTES = 16 << 20


def _leaf_masks(forest: Forest) -> tuple[list, list, list] | None:
    """(leaf values, each tree's first leaf, splits as (tree, node, mask)); None over 64 leaves.

    Leaves are numbered left to right within each tree; a split's mask clears the leaves of
    its left subtree (unreachable once the row goes right).
    """
    leaves = np.add.reduceat(forest.is_leaf.astype(np.intp), forest.roots)
    if leaves.max() > SCORER_LEAVES:
        return None
    left, right, is_leaf = forest.left.tolist(), forest.right.tolist(), forest.is_leaf.tolist()
    value = forest.value.tolist()
    leaf_value, leaf_start, splits = [], [], []  # splits: (tree, node, mask)
    for t, root in enumerate(forest.roots.tolist()):
        leaf_start.append(len(leaf_value))
        first = len(leaf_value)
        stack, bits = [(root, False)], {}  # bits: node -> (first leaf, end) of its subtree
        while stack:  # post-order without recursion
            i, done = stack.pop()
            if is_leaf[i]:
                bits[i] = (len(leaf_value) - first, len(leaf_value) - first + 1)
                leaf_value.append(value[i])
            elif done:
                lo, mid = bits[left[i]]
                bits[i] = (lo, bits[right[i]][1])
                splits.append((t, i, ~(((1 << mid) - 1) ^ ((1 << lo) - 1)) & (2**64 - 1)))
            else:
                stack += [(i, True), (right[i], False), (left[i], False)]
    return leaf_value, leaf_start, splits


def _scorer_tables(forest: Forest) -> tuple[np.ndarray, ...] | None:
    """The forest as `walk.scorer_kernel`'s tables; None if a tree has more than 64 leaves."""
    masks = _leaf_masks(forest)
    if masks is None:
        return None
    leaf_value, leaf_start, splits = masks
    feature, threshold = forest.feature.tolist(), forest.threshold.tolist()
    cat_row, missing_left = forest.cat_row.tolist(), forest.missing_left.tolist()

    def column(rows: list, k: int, dtype) -> np.ndarray:
        return np.array([r[k] for r in rows], dtype=dtype)

    def starts(rows: list) -> np.ndarray:  # rows sorted by feature: where each feature begins
        return np.searchsorted(column(rows, 0, np.intp), np.arange(forest.n_features + 1))

    numeric = sorted((feature[i], threshold[i], t, m, i) for t, i, m in splits if cat_row[i] < 0)
    nan = [s for s in numeric if not missing_left[s[4]]]  # NaN goes right at these
    # Per categorical feature and category code: the splits that send that code right.
    cat_features = sorted(forest.categories)
    slot = {j: c for c, j in enumerate(cat_features)}
    cat = []
    for t, i, m in splits:
        if cat_row[i] >= 0:
            for code in np.flatnonzero(~forest.cat_left[cat_row[i]]).tolist():
                cat.append((slot[feature[i]] * (_NAN_CODE + 1) + code, t, m))
    cat.sort()
    cat_start = np.searchsorted(
        column(cat, 0, np.intp), np.arange(len(cat_features) * (_NAN_CODE + 1) + 1)
    )

    return (
        np.array(leaf_value, np.float64),
        np.array(leaf_start, np.intp),
        starts(numeric).astype(np.intp),
        column(numeric, 1, np.float64),
        column(numeric, 2, np.intp),
        column(numeric, 3, np.uint64),
        starts(nan).astype(np.intp),
        column(nan, 2, np.intp),
        column(nan, 3, np.uint64),
        np.array(cat_features, np.intp),
        cat_start.astype(np.intp),
        column(cat, 1, np.intp),
        column(cat, 2, np.uint64),
    )


def _binned_tables(forest: Forest) -> tuple[np.ndarray, ...] | None:
    """The forest as `walk.binned_kernel`'s arguments; None over 64 leaves or `BINNED_BYTES`.

    Per feature some split uses (`column`, `is_cat`): its sorted bounds (distinct thresholds,
    or known categories) in `bounds[bound_start[u]:bound_start[u + 1]]`, and from
    `row_start[u]` its rows of `table` (one uint64 per tree: the AND of the masks of the
    feature's splits in that tree that the row's range of values sends right). Numeric row b:
    values above the b lowest thresholds and not above the next; then NaN. Categorical row b:
    the b-th known category; then missing or unknown.
    """
    masks = _leaf_masks(forest)
    if masks is None:
        return None
    leaf_value, leaf_start, splits = masks
    by_feature: dict[int, list] = {}
    for t, i, m in splits:
        by_feature.setdefault(int(forest.feature[i]), []).append((t, i, m))
    for j in forest.categories:  # never split on, still checked for +-inf as sklearn does
        by_feature.setdefault(j, [])
    bounds = {
        j: forest.categories[j]
        if j in forest.categories
        else np.unique(forest.threshold[[i for _, i, _ in found]])
        for j, found in by_feature.items()
    }
    used = sorted(by_feature)
    sizes = [len(bounds[j]) + (1 if j in forest.categories else 2) for j in used]
    n_trees = len(forest.roots)
    if sum(sizes) * n_trees * 8 > BINNED_BYTES:
        return None
    row_start = np.cumsum([0, *sizes])
    table = np.full((row_start[-1], n_trees), 2**64 - 1, np.uint64)
    for j, first, size in zip(used, row_start.tolist(), sizes, strict=False):
        rows = table[first : first + size]
        for t, i, m in by_feature[j]:
            mask = np.uint64(m)
            if j in forest.categories:  # the categories (then missing) this split sends right
                right = ~forest.cat_left[forest.cat_row[i]]
                sends = np.append(right[: size - 1], right[_NAN_CODE])
                rows[sends, t] &= mask
                continue
            k = int(np.searchsorted(bounds[j], forest.threshold[i]))
            rows[k + 1 : size - 1, t] &= mask  # values above this threshold go right
            if not forest.missing_left[i]:
                rows[size - 1, t] &= mask  # and NaN does too
    return (
        np.array(used, np.intp),
        np.array([j in forest.categories for j in used], np.bool_),
        np.cumsum([0, *(len(bounds[j]) for j in used)]).astype(np.intp),
        np.concatenate([np.asarray(bounds[j], np.float64) for j in used]),
        row_start[:-1].astype(np.intp),
        table,
        np.array(leaf_value, np.float64),
        np.array(leaf_start, np.intp),
    )


def _encoded(column: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Raw categorical values -> their code among `known` (sorted), `_NAN_CODE` if unknown/NaN."""
    if np.isinf(column).any():
        raise ValueError("Input contains infinity")  # as sklearn's OrdinalEncoder
    if len(known) == 0:
        return np.full(len(column), float(_NAN_CODE))
    code = np.searchsorted(known, column)  # NaN sorts last
    hit = known[np.minimum(code, len(known) - 1)] == column  # False for NaN
    return np.where(hit, code, _NAN_CODE).astype(np.float64)


def row_predictor(est: Any) -> Callable[[list, bool], Output]:
    """(feature row, want_proba) -> outputs for one row, in plain Python.

    Raises:
        Unsupported: as `compile_forest`, or trees too deep for a generated expression.
    """
    raw_row = _row_function(est)
    finish = _finisher(est)
    k = compile_forest(est).n_outputs
    return lambda r, want_proba: finish(np.array(raw_row(r)).reshape(1, k), want_proba)


def _row_function(est: Any) -> Callable[[list], tuple[float, ...]]:
    """`row_function` of the estimator's forest, generated once (~0.1 s for 200 trees)."""
    forest = compile_forest(est)
    cached = _ROW_CACHE.get(est)
    if cached is not None and cached[0] is forest:
        return cached[1]
    raw_row = row_function(forest)
    _ROW_CACHE[est] = (forest, raw_row)
    return raw_row


def row_function(forest: Forest) -> Callable[[list], tuple[float, ...]]:
    """A generated function: feature row -> raw predictions, one nested conditional per tree.

    Raises:
        Unsupported: a tree deeper than Python's parser accepts as one expression.
    """
    if forest.depth > _MAX_ROW_DEPTH:
        raise Unsupported(f"trees of depth {forest.depth} for a generated row function")
    env: dict[str, Any] = {"INF": math.inf, "__builtins__": {"ValueError": ValueError}}
    names = [f"x{j}" for j in range(forest.n_features)]
    lines = ["def raw(r):", f"    {', '.join(names)}, = r"]
    for j in sorted(forest.categories):
        # sklearn's OrdinalEncoder refuses infinite categories (NaN is "missing").
        lines.append(f"    if x{j} == INF or x{j} == -INF:")
        lines.append("        raise ValueError('Input contains infinity')")
    k = forest.n_outputs
    lines += [f"    s{c} = {_literal(forest.baseline[c])}" for c in range(k)]
    nodes = _node_lists(forest)
    for t, root in enumerate(forest.roots.tolist()):
        lines.append(f"    s{t % k} += {_expression(nodes, root, env)}")
    lines.append(f"    return ({''.join(f's{c}, ' for c in range(k))})")
    exec(compile("\n".join(lines), "<kfops-hgb-trees>", "exec"), env)  # noqa: S102 (numbers only)
    return env["raw"]


def _compile(est: Any) -> Forest:
    if not isinstance(
        est, ensemble.HistGradientBoostingClassifier | ensemble.HistGradientBoostingRegressor
    ):
        raise Unsupported(f"{type(est).__name__} is not a HistGradientBoosting model")
    predictors = getattr(est, "_predictors", None)
    if not predictors:
        raise Unsupported("the model is not fitted")
    _check_loss(est)
    k = est.n_trees_per_iteration_
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    if baseline.shape != (k,) or any(len(p) != k for p in predictors):
        raise Unsupported("trees per iteration do not match the baseline")
    n_features = int(est.n_features_in_)
    column_of, categories, encoded = _columns(est, n_features)
    known_bitsets, f_idx_map = (None, None)
    if encoded:
        known_bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()

    parts, cat_tables, roots, offset = [], [], [], 0
    for tree in (p for iteration in predictors for p in iteration):
        nodes, raw_left = tree.nodes, tree.raw_left_cat_bitsets
        leaf = nodes["is_leaf"].astype(bool)
        cat = nodes["is_categorical"].astype(bool) & ~leaf
        if cat.any() and not encoded:
            raise Unsupported("categorical splits without the estimator's category encoder")
        own = np.arange(len(nodes), dtype=np.intp) + offset
        feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        if (feature < 0).any() or (feature >= n_features).any():
            raise Unsupported("a split on a feature index out of range")
        feature = column_of[feature]
        threshold = np.where(cat, np.nan, nodes["num_threshold"]).astype(np.float64)
        if np.isnan(threshold[~leaf & ~cat]).any() or not np.isfinite(nodes["value"][leaf]).all():
            raise Unsupported("a NaN threshold or a non-finite leaf value")
        cat_row = np.full(len(nodes), -1, dtype=np.intp)
        for i in np.flatnonzero(cat):
            cat_row[i] = len(cat_tables)
            cat_tables.append(
                _category_table(
                    raw_left[nodes["bitset_idx"][i]],
                    known_bitsets[f_idx_map[nodes["feature_idx"][i]]],
                    bool(nodes["missing_go_to_left"][i]),
                )
            )
        parts.append(
            {
                "feature": np.where(leaf, 0, feature),
                "threshold": np.where(leaf, 0.0, threshold),
                "missing_left": nodes["missing_go_to_left"].astype(bool),
                "left": np.where(leaf, own, nodes["left"].astype(np.intp) + offset),
                "right": np.where(leaf, own, nodes["right"].astype(np.intp) + offset),
                "is_leaf": leaf,
                "value": np.where(leaf, nodes["value"], 0.0).astype(np.float64),
                "is_categorical": cat,
                "cat_row": cat_row,
            }
        )
        roots.append(offset)
        offset += len(nodes)
    flat = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    depth = max(int(p.nodes["depth"].max()) for it in predictors for p in it)
    return Forest(
        n_features=n_features,
        n_outputs=k,
        depth=depth,
        roots=np.array(roots, dtype=np.intp),
        cat_left=np.array(cat_tables, dtype=bool).reshape(-1, _NAN_CODE + 1),
        categories=categories,
        baseline=baseline,
        predictors=predictors,
        **flat,
    )


def _check_loss(est: Any) -> None:
    """Only losses whose output mapping is known: the binomial/multinomial ones, or a link."""
    est_loss = getattr(est, "_loss", None)
    if isinstance(est, ensemble.HistGradientBoostingClassifier):
        if type(est_loss) not in _CLASSIFIER_LOSSES:
            raise Unsupported(f"classifier loss {type(est_loss).__name__}")
        n_classes = len(est.classes_)
        if est.n_trees_per_iteration_ != (1 if n_classes == 2 else n_classes):
            raise Unsupported("trees per iteration do not match the classes")
    elif type(getattr(est_loss, "link", None)) not in _REGRESSOR_LINKS:
        raise Unsupported(f"regressor loss {type(est_loss).__name__}")
    elif est.n_trees_per_iteration_ != 1:
        raise Unsupported("a regressor with several trees per iteration")


def _columns(est: Any, n_features: int) -> tuple[np.ndarray, dict[int, np.ndarray], bool]:
    """Where the trees' features come from among the inputs, and the categorical inputs.

    With categorical features, HGB's own ColumnTransformer puts the ordinal-encoded categorical
    columns first and the numeric ones after: tree feature i is input column `column_of[i]`.
    """
    pre = getattr(est, "_preprocessor", None)
    if pre is None:
        return np.arange(n_features, dtype=np.intp), {}, False
    mask = np.asarray(est.is_categorical_, dtype=bool)
    named = dict((name, (trans, cols)) for name, trans, cols in pre.transformers_)
    encoder, enc_cols = named.get("encoder", (None, None))
    numeric, num_cols = named.get("numerical", (None, None))
    remainder = named.get("remainder", ("drop", []))
    ok = (
        mask.shape == (n_features,)
        and isinstance(encoder, preprocessing.OrdinalEncoder)
        and np.array_equal(np.asarray(enc_cols), mask)
        and np.array_equal(np.asarray(num_cols), ~mask)
        and remainder[0] == "drop"
        and pre.output_indices_["encoder"] == slice(0, int(mask.sum()))
        and encoder.handle_unknown == "use_encoded_value"
        and _is_nan(encoder.unknown_value)
        and _is_nan(encoder.encoded_missing_value)
        and encoder.max_categories is None
        and encoder.min_frequency is None
        and isinstance(getattr(numeric, "func", None), functools.partial)
        and numeric.func.keywords.get("ensure_all_finite") is False
    )
    if not ok:
        raise Unsupported("an unexpected HistGradientBoosting preprocessor")
    column_of = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)]).astype(np.intp)
    categories = {}
    for j, cats in zip(np.flatnonzero(mask).tolist(), encoder.categories_, strict=True):
        cats = np.asarray(cats, dtype=np.float64)
        cats = cats[~np.isnan(cats)]
        if not np.all(np.diff(cats) > 0) or not np.isfinite(cats).all() or len(cats) > 255:
            raise Unsupported("categories that are not sorted, finite, at most 255")
        categories[j] = cats
    return column_of, categories, True


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _category_table(raw_left: np.ndarray, known: np.ndarray, missing_left: bool) -> np.ndarray:
    """Goes-left for each encoded category 0..255 and, last, for missing (`_predictor.pyx`)."""
    codes = np.arange(256)
    in_left = (raw_left[codes // 32] >> (codes % 32)) & 1 == 1
    in_known = (known[codes // 32] >> (codes % 32)) & 1 == 1
    table = np.empty(_NAN_CODE + 1, dtype=bool)
    table[:256] = in_left | (~in_known & missing_left)  # an unknown category counts as missing
    table[_NAN_CODE] = missing_left
    return table


def _finisher(est: Any) -> Callable[[np.ndarray, bool], Output]:
    """Raw predictions -> (predictions, probabilities or None), with the estimator's own loss."""
    est_loss = est._loss
    if isinstance(est, ensemble.HistGradientBoostingRegressor):
        inverse = est_loss.link.inverse
        return lambda raw, want_proba: (inverse(raw.ravel()), None)
    classes = est.classes_

    def classify(raw: np.ndarray, want_proba: bool) -> Output:
        # HistGradientBoostingClassifier.predict: "raw > 0" for two classes (a tie is class 0).
        if raw.shape[1] == 1:
            encoded = (raw.ravel() > 0).astype(int)
        else:
            encoded = np.argmax(raw, axis=1)
        return classes[encoded], (est_loss.predict_proba(raw) if want_proba else None)

    return classify


def _node_lists(forest: Forest) -> dict[str, list]:
    names = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")
    lists = {name: getattr(forest, name).tolist() for name in names}
    lists["cat_row"] = forest.cat_row.tolist()
    lists["cat_left"] = forest.cat_left
    lists["categories"] = forest.categories
    return lists


def _expression(nodes: dict[str, list], i: int, env: dict[str, Any]) -> str:
    """Tree rooted at node i as `(left if condition else right)`."""
    if nodes["is_leaf"][i]:
        return _literal(nodes["value"][i])
    x = f"x{nodes['feature'][i]}"
    row = nodes["cat_row"][i]
    if row >= 0:
        # Decide on raw values: left set; right if a known category; else the missing side.
        table, cats = nodes["cat_left"][row], nodes["categories"][nodes["feature"][i]].tolist()
        goes_left = frozenset(c for code, c in enumerate(cats) if table[code])
        goes_right = frozenset(c for code, c in enumerate(cats) if not table[code])
        name = f"C{row}"
        if nodes["missing_left"][i]:  # NaN and unknown values: left
            env[name] = goes_right
            condition = f"{x} not in {name}"
        else:
            env[name] = goes_left
            condition = f"{x} in {name}"
    elif nodes["missing_left"][i]:
        condition = f"({x} <= {_literal(nodes['threshold'][i])} or {x} != {x})"
    else:
        condition = f"{x} <= {_literal(nodes['threshold'][i])}"
    left = _expression(nodes, nodes["left"][i], env)
    right = _expression(nodes, nodes["right"][i], env)
    return f"({left} if {condition} else {right})"


def _literal(v: float) -> str:
    """A float as source text that reads back as exactly the same float."""
    if math.isinf(v):
        return "INF" if v > 0 else "(-INF)"
    return repr(float(v))
