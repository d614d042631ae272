"""Fitted preprocessing steps rewritten from their fitted attributes, in two forms.

`block` takes and returns a 2-D numpy array (one column per input feature of the step): it serves
batches. `row` takes and returns a list of Python values (one row): it serves the single-row
request, where each numpy call on a one-element array costs more than the arithmetic. Both follow
the sklearn code they replace operation by operation (same missing-value rules, same order of
float operations); `kfops.serving.fastpath.verify` checks that they still do.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn import impute, pipeline, preprocessing

from kfops import features, modelio

NAN = float("nan")


class Unsupported(Exception):
    """The pipeline holds a step (or setting) the fast path does not rewrite."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One fitted step: `block` maps a 2-D array to a 2-D array, `row` a list to a list."""

    block: Callable[[np.ndarray], np.ndarray]
    row: Callable[[list], list]


IDENTITY = Step(lambda x: x, lambda r: r)


def build(trans: Any) -> Step:
    """The Step for a fitted transformer (a Pipeline of supported steps included).

    Raises:
        Unsupported: any other transformer, or a setting not covered.
    """
    if isinstance(trans, pipeline.Pipeline):
        return chain([build(t) for _, t in trans.steps if t is not None and t != "passthrough"])
    for kind, builder in _BUILDERS:
        if type(trans) is kind:
            return builder(trans)
    raise Unsupported(f"step {type(trans).__name__}")


def chain(steps: list[Step]) -> Step:
    """Steps applied one after the other."""
    if not steps:
        return IDENTITY
    if len(steps) == 1:
        return steps[0]

    def block(x):
        for s in steps:
            x = s.block(x)
        return x

    def row(r):
        for s in steps:
            r = s.row(r)
        return r

    return Step(block, row)


@dataclasses.dataclass(frozen=True)
class ColumnStep:
    """A step over named columns (before the ColumnTransformer): adds columns to the request's.

    `block` maps column name -> array to a dict with more columns, `row` the same for one row
    given as column name -> Python value.
    """

    inputs: tuple[str, ...]
    block: Callable[[Mapping[str, np.ndarray]], dict]
    row: Callable[[Mapping[str, Any]], dict]


def derived(step: features.DerivedFeatures) -> ColumnStep:
    """DerivedFeatures without pandas: `features.compute`, the kernel its transform calls.

    The same function on the same arrays, so the batch form agrees with sklearn by construction;
    one row runs it on one-element object arrays (the kernel converts types itself).
    """
    specs = list(step.features_)

    def block(columns: Mapping[str, np.ndarray]) -> dict:
        out = dict(columns)
        for f in specs:
            out[f.name] = features.compute(f, columns)
        return out

    def row(values: Mapping[str, Any]) -> dict:
        out = dict(values)
        for f in specs:
            one = {c: _one(values[c]) for c in f.inputs}
            out[f.name] = features.compute(f, one)[0].item()
        return out

    return ColumnStep(tuple(str(n) for n in step.feature_names_in_), block, row)


def _one(v: Any) -> np.ndarray:
    if type(v) in (int, float):  # float64 as the kernel's astype would make it, minus pd.isna
        return np.array([float(v)], np.float64)
    out = np.empty(1, object)
    out[0] = v
    return out


def is_missing(v: Any) -> bool:
    """Pandas' notion of missing for one validated value: None or NaN."""
    return v is None or (type(v) is float and v != v)


def _function(ft: preprocessing.FunctionTransformer) -> Step:
    if ft.func is None:
        return IDENTITY
    if ft.func is modelio.as_float:
        return Step(_as_float, lambda r: [NAN if is_missing(v) else float(v) for v in r])
    if ft.func is modelio.as_text:
        return Step(_as_text, lambda r: [NAN if is_missing(v) else str(v) for v in r])
    raise Unsupported(f"FunctionTransformer({getattr(ft.func, '__name__', ft.func)})")


def _as_float(x: np.ndarray) -> np.ndarray:
    """modelio.as_float: float64, every missing marker (None, pd.NA) as NaN."""
    if x.dtype.kind != "O":
        return x.astype(np.float64)
    missing = pd.isna(x)
    out = np.full(x.shape, np.nan)
    out[~missing] = x[~missing].astype(np.float64)
    return out


_NEVER_MISSING = frozenset({str, bool, int})  # types pd.isna never calls missing


def _as_text(x: np.ndarray) -> np.ndarray:
    """modelio.as_text: str of every value, every missing marker as NaN."""
    if x.dtype.kind != "O":
        out = x.astype(str).astype(object)
        if x.dtype.kind == "f":
            out[np.isnan(x)] = np.nan
        return out
    cols = x.reshape(-1, 1) if x.ndim == 1 else x
    out = None
    for j in range(cols.shape[1]):  # column by column: a column of str (the usual) is kept as is
        col = cols[:, j].tolist()
        kinds = set(map(type, col))
        if kinds == {str}:
            continue
        if out is None:  # the first column to change: a copy (x may be the request's own array)
            out = cols.copy()
        out[:, j] = [str(v) for v in col]
        if not kinds <= _NEVER_MISSING:
            column = cols[:, j]
            out[pd.isna(column), j] = np.nan
    return x if out is None else out.reshape(x.shape)


def _sk_missing(x: np.ndarray, marker: Any) -> np.ndarray:
    """Sklearn's own missing mask (`_get_mask`): None is *not* NaN in object columns."""
    if isinstance(marker, float) and math.isnan(marker):
        if x.dtype.kind == "f":
            return np.isnan(x)
        if x.dtype.kind == "O":
            return x != x
        return np.zeros(x.shape, bool)
    return x == marker


def _imputer(imp: impute.SimpleImputer) -> Step:
    if imp.add_indicator:
        raise Unsupported("SimpleImputer(add_indicator=True)")
    stats, marker, strategy = imp.statistics_, imp.missing_values, imp.strategy
    if strategy not in ("mean", "median", "most_frequent", "constant"):
        raise Unsupported(f"SimpleImputer(strategy={strategy!r})")
    keep = None
    if strategy != "constant" and not imp.keep_empty_features:
        valid = ~_sk_missing(np.asarray(stats), np.nan)
        if not valid.all():  # sklearn drops the features that were all missing in training
            keep, stats = np.flatnonzero(valid), stats[valid]
    if stats.dtype.kind == "O" and all(type(v) in (int, float) for v in stats.tolist()):
        stats = stats.astype(np.float64)  # a numeric fill_value is stored in an object array
    numeric_stats = stats.dtype.kind in "biuf"
    nan_marker = isinstance(marker, float) and math.isnan(marker)
    fill = stats.tolist()

    def block(x: np.ndarray) -> np.ndarray:
        if keep is not None:
            x = x[:, keep]
        x = x.astype(np.float64 if numeric_stats and x.dtype.kind in "biuf" else object)
        mask = _sk_missing(x, marker)
        return np.where(mask, stats, x) if mask.any() else x

    kept = keep.tolist() if keep is not None else None

    def row(r: list) -> list:
        if kept is not None:
            r = [r[i] for i in kept]
        out = []
        for v, value in zip(r, fill, strict=True):
            if numeric_stats and type(v) in (int, float, bool):
                v = float(v)
            missing = (v != v) if nan_marker else (v == marker)
            out.append(value if missing else v)
        return out

    return Step(block, row)


def _scaler(sc: preprocessing.StandardScaler) -> Step:
    mean = sc.mean_ if sc.with_mean else None
    scale = sc.scale_ if sc.with_std else None
    n = sc.n_features_in_
    mean_l = mean.tolist() if mean is not None else [0.0] * n
    scale_l = scale.tolist() if scale is not None else None

    def block(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        if mean is not None:
            x -= mean
        if scale is not None:
            x /= scale
        return x

    def row(r: list) -> list:
        centred = [float(v) - m for v, m in zip(r, mean_l, strict=True)]
        if scale_l is None:
            return centred
        return [v / s for v, s in zip(centred, scale_l, strict=True)]

    return Step(block, row)


def _min_max(sc: preprocessing.MinMaxScaler) -> Step:
    lo, hi = sc.feature_range
    scale_l, min_l = sc.scale_.tolist(), sc.min_.tolist()

    def block(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64) * sc.scale_ + sc.min_
        return np.clip(x, lo, hi) if sc.clip else x

    def row(r: list) -> list:
        out = [float(v) * s + m for v, s, m in zip(r, scale_l, min_l, strict=True)]
        return [min(max(v, lo), hi) for v in out] if sc.clip else out

    return Step(block, row)


class _Lookup:
    """Category -> index for one encoded column, with NaN (any NaN object) found by value."""

    def __init__(self, categories: np.ndarray):
        cats = categories.tolist()
        self.nan_index = next(
            (i for i, v in enumerate(cats) if isinstance(v, float) and math.isnan(v)), None
        )
        self.index = {v: i for i, v in enumerate(cats) if i != self.nan_index}
        self.size = len(cats)
        self.miss = -1 if self.nan_index is None else self.nan_index

    def one(self, v: Any) -> int:
        """Index of one value, -1 when unseen in training."""
        return self.index.get(v, self.miss if v != v else -1)

    def __call__(self, c: np.ndarray) -> np.ndarray:
        """Index of each value of a column, -1 for values unseen in training."""
        values = c.tolist()
        out = np.fromiter(map(self.index.get, values, itertools.repeat(-1)), np.intp, len(values))
        if self.miss != -1:  # a NaN category was fitted: NaN values (not in `index`) map to it
            for i in np.flatnonzero(out < 0).tolist():
                if values[i] != values[i]:
                    out[i] = self.miss
        return out


def _lookups(enc) -> list[_Lookup]:
    if getattr(enc, "_infrequent_enabled", False):
        raise Unsupported(f"{type(enc).__name__} with infrequent categories")
    return [_Lookup(np.asarray(cats)) for cats in enc.categories_]


def _unknown(j: int, values: list) -> ValueError:
    shown = sorted({str(v) for v in values})
    return ValueError(f"Found unknown categories {shown} in column {j} during transform")


def _one_hot(enc: preprocessing.OneHotEncoder) -> Step:
    lookups = _lookups(enc)
    drop = enc.drop_idx_ if enc.drop_idx_ is not None else [None] * len(lookups)
    raise_unknown = enc.handle_unknown == "error"
    offsets = np.cumsum([0] + [lk.size for lk in lookups]).tolist()
    kept = [
        o + k
        for lk, o, d in zip(lookups, offsets, drop, strict=False)
        for k in range(lk.size)
        if d is None or k != d
    ]
    all_kept = len(kept) == offsets[-1]
    one, zero = np.dtype(enc.dtype).type(1).item(), np.dtype(enc.dtype).type(0).item()

    def block(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), offsets[-1]), enc.dtype)
        for j, lookup in enumerate(lookups):
            idx = lookup(x[:, j])
            known = idx >= 0
            if known.all():
                out[np.arange(len(x)), offsets[j] + idx] = 1
                continue
            if raise_unknown:
                raise _unknown(j, x[~known, j].tolist())
            out[np.flatnonzero(known), offsets[j] + idx[known]] = 1
        return out if all_kept else out[:, kept]

    def row(r: list) -> list:
        out = [zero] * offsets[-1]
        for j, (v, lookup) in enumerate(zip(r, lookups, strict=True)):
            i = lookup.one(v)
            if i >= 0:
                out[offsets[j] + i] = one
            elif raise_unknown:
                raise _unknown(j, [v])
        return out if all_kept else [out[k] for k in kept]

    return Step(block, row)


def _ordinal(enc: preprocessing.OrdinalEncoder) -> Step:
    lookups = _lookups(enc)
    use_unknown = enc.handle_unknown == "use_encoded_value"
    # Without a NaN category, an unknown value (NaN included) is `unknown_value`: each value's
    # code is then one dict lookup straight to the output dtype, no index array in between.
    direct = [
        {v: np.dtype(enc.dtype).type(i) for v, i in lk.index.items()}
        if use_unknown and lk.nan_index is None
        else None
        for lk in lookups
    ]
    unknown = enc.unknown_value

    def block(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, enc.dtype)
        for j, lookup in enumerate(lookups):
            codes = direct[j]
            if codes is not None:
                values = x[:, j].tolist()
                get = codes.get
                out[:, j] = np.fromiter(map(get, values, itertools.repeat(unknown)), enc.dtype)
                continue
            idx = lookup(x[:, j])
            if not use_unknown and (idx < 0).any():
                raise _unknown(j, x[idx < 0, j].tolist())
            codes = idx.astype(enc.dtype)
            if lookup.nan_index is not None:
                codes[idx == lookup.nan_index] = enc.encoded_missing_value
            if use_unknown:
                codes[idx < 0] = enc.unknown_value
            out[:, j] = codes
        return out

    def row(r: list) -> list:
        out = []
        for j, (v, lookup) in enumerate(zip(r, lookups, strict=True)):
            i = lookup.one(v)
            if i < 0:
                if not use_unknown:
                    raise _unknown(j, [v])
                out.append(enc.unknown_value)
            elif i == lookup.nan_index:
                out.append(enc.encoded_missing_value)
            else:
                out.append(float(i))
        return out

    return Step(block, row)


_BUILDERS: tuple[tuple[type, Callable[[Any], Step]], ...] = (
    (preprocessing.FunctionTransformer, _function),
    (impute.SimpleImputer, _imputer),
    (preprocessing.StandardScaler, _scaler),
    (preprocessing.MinMaxScaler, _min_max),
    (preprocessing.OneHotEncoder, _one_hot),
    (preprocessing.OrdinalEncoder, _ordinal),
)
