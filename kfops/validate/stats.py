"""Small vectorised helpers shared by inference, the checks and the leakage test."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from kfops import schema

_SHARED: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "kfops_shared_factorize", default=None
)


@contextlib.contextmanager
def shared_factorize() -> Iterator[None]:
    """Inside, `factorize` of the same object column is computed once and then reused.

    The validate step hashes each text column in inference, in the duplicate-row check and in the
    profile (an id column of 1M distinct strings: ~0.13 CPU s each time). The frame must not be
    changed inside the block: an entry is found by the column's memory (address, shape, strides)
    and kept alive with it, so no other array can take that address while the block runs.
    """
    token = _SHARED.set({} if _SHARED.get() is None else _SHARED.get())
    try:
        yield
    finally:
        _SHARED.reset(token)


def factorize(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(array)`: nulls get code -1, the distinct values in order of first appearance.

    Inside `shared_factorize` an object array's answer is remembered (read-only) and given to the
    next call over the same memory. Callers must not write into the arrays returned.
    """
    shared = _SHARED.get()
    if shared is None or array.dtype != object:
        return pd.factorize(array)
    key = _memory(array)
    held = shared.get(key)
    if held is None:
        codes, uniques = pd.factorize(array)
        codes.flags.writeable = False
        uniques.flags.writeable = False
        held = shared[key] = (array, codes, uniques)  # the array keeps its address taken
    return held[1], held[2]


def factorized(array: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """What `factorize(array)` remembered inside `shared_factorize`, else None (nothing hashed)."""
    shared = _SHARED.get()
    if shared is None or array.dtype != object:
        return None
    held = shared.get(_memory(array))
    return None if held is None else (held[1], held[2])


def sorted_counts(codes: np.ndarray, distinct: int) -> tuple[np.ndarray, np.ndarray]:
    """Each code's count (nulls, code -1, left out) and the codes in `value_counts`' order.

    Codes numbered in order of first appearance (as `factorize` gives them) list the values as
    value_counts' hash table does; its own sort then orders the counts, ties included. That
    order depends on the counts only, so no index of values is built to sort.
    """
    counts = np.bincount(codes[codes >= 0], minlength=distinct)
    return counts, pd.Series(counts).sort_values(ascending=False).index.to_numpy()


def _memory(array: np.ndarray) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """`shared_factorize`'s key: where the array's values lie (address, shape, strides)."""
    return array.__array_interface__["data"][0], array.shape, array.strides


def logical_dtype(series: pd.Series) -> str:
    """Like `schema.dtype_of`, but an object column holding only booleans (and nulls) is `bool`.

    pyarrow reads a CSV column `true,,false` as booleans with nulls, which pandas can only keep as
    Python objects; it is still a boolean column.
    """
    if series.dtype == object and len(series) and pd.api.types.infer_dtype(series) == "boolean":
        return "bool"
    return schema.dtype_of(series)


def is_integral(values: pd.Series) -> bool:
    """Whether every non-null number is a whole number (ints read as floats because of NaN)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        return True
    if not pd.api.types.is_float_dtype(values):
        return False
    array = values.to_numpy(dtype=float)
    array = array[np.isfinite(array)]
    return bool(np.all(array == np.round(array)))


def jsonable(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars unwrapped, timestamps as ISO text, inf/nan as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def top_values(values: pd.Series, limit: int) -> tuple[Any, ...]:
    """The most frequent distinct values (ties by first appearance), JSON-ready."""
    if values.empty:
        return ()
    counts = values.value_counts(sort=True, dropna=True)
    return tuple(jsonable(v) for v in counts.index[:limit])


def extreme_values(values: pd.Series, limit: int, *, largest: bool) -> tuple[Any, ...]:
    """The most extreme distinct values: the ones a reader should look at first."""
    distinct = pd.Series(values.unique())
    chosen = distinct.nlargest(limit) if largest else distinct.nsmallest(limit)
    return tuple(jsonable(v) for v in chosen)


def binary_auc(feature: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of a raw feature for a boolean target, folded to >= 0.5 (direction does not matter).

    Computed from the Mann-Whitney rank sum, so it is O(n log n) and ties count half.
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = _ranks(feature)
    auc = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(max(auc, 1.0 - auc))


def purity(codes: np.ndarray, target_codes: np.ndarray) -> tuple[float, int]:
    """How well one categorical alone predicts a class label.

    Returns:
        (fraction of rows whose class is the majority class of their value, number of distinct
        classes those majority votes predict). A feature whose every value predicts the same class
        is not informative however pure it looks, which the second number reveals.
    """
    table = pd.crosstab(codes, target_codes)
    majority = table.to_numpy().max(axis=1)
    predicted = np.unique(table.to_numpy().argmax(axis=1))
    return float(majority.sum() / len(codes)), len(predicted)


def correlation_ratio(codes: np.ndarray, target: np.ndarray) -> float:
    """Eta: the share of a numeric target's spread explained by a categorical's groups (0..1)."""
    total = float(((target - target.mean()) ** 2).sum())
    if total == 0.0:
        return 0.0
    frame = pd.DataFrame({"g": codes, "y": target})
    groups = frame.groupby("g", sort=False)["y"].agg(["mean", "count"])
    between = float((groups["count"] * (groups["mean"] - target.mean()) ** 2).sum())
    return math.sqrt(between / total)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (scipy.stats.rankdata's default, "average").

    pandas computes them; importing scipy.stats for this alone cost the validate step about a
    second of start-up. A NaN keeps its place (scipy would make every rank NaN); either way the
    correlation that uses them is NaN, so no finding changes.
    """
    return pd.Series(values).rank(method="average").to_numpy(dtype=float)


def spearman(feature: np.ndarray, target: np.ndarray) -> float:
    """Absolute Spearman rank correlation (0 when either side is constant)."""
    a, b = _ranks(feature), _ranks(target)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(a, b)[0, 1]))


def sorted_agreement(feature: np.ndarray, target_codes: np.ndarray, seed: int) -> float:
    """How cleanly sorting by one numeric feature separates the classes (0 random, 1 perfect).

    Counts class changes between neighbours in feature order (ties broken by a seeded shuffle,
    so a constant feature scores like noise), scaled between the fewest changes possible (one per
    class boundary) and the number expected at random.
    """
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(feature)), feature))
    ordered = target_codes[order]
    changes = int(np.count_nonzero(ordered[1:] != ordered[:-1]))
    shares = np.bincount(target_codes) / len(target_codes)
    fewest = np.count_nonzero(shares) - 1
    expected = (1.0 - float((shares**2).sum())) * (len(ordered) - 1)
    if expected <= fewest:
        return 0.0
    return float(max(0.0, 1.0 - (changes - fewest) / (expected - fewest)))


def duplicate_mask(df: pd.DataFrame, first: tuple[str, ...] = ()) -> np.ndarray:
    """Like `df.duplicated()` (nulls equal, first occurrence kept) but stops early.

    Rows are grouped one column at a time: the `first` columns (ids, likely unique), then numbers,
    then text. Once every row is in its own group no duplicate can exist, so the remaining
    columns are skipped; with a unique id column one pass settles it.

    Raises:
        TypeError: a column holds unhashable values.
    """
    n = len(df)
    groups = np.zeros(n, dtype=np.int64)
    for position in sorted(range(df.shape[1]), key=lambda i: _grouping_cost(df, i, first)):
        column = df.iloc[:, position]
        if column.dtype == object:  # the nulls as one more value, as use_na_sentinel=False does
            codes, uniques = factorize(column.to_numpy())
            width = len(uniques) + 1
            if codes.size and codes.min() < 0:
                codes, width = np.where(codes < 0, len(uniques), codes), width + 1
        else:
            codes, uniques = pd.factorize(column, use_na_sentinel=False)
            width = len(uniques) + 1
        groups, distinct = pd.factorize(groups * width + codes)
        if len(distinct) == n:
            return np.zeros(n, dtype=bool)
    return pd.Series(groups).duplicated().to_numpy()


def _grouping_cost(df: pd.DataFrame, position: int, first: tuple[str, ...]) -> int:
    if df.columns[position] in first:
        return 0
    return 2 if df.dtypes.iloc[position] == np.dtype(object) else 1
