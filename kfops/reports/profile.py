"""Per-column statistics and distributions for the validation report (what TFDV users expect).

Pure pandas/numpy; bounded work (one pass per column, histograms of at most BINS bins, the top
TOP_VALUES categories), so profiling the rows validate already holds costs little next to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from kfops import schema
from kfops.validate import stats

BINS = 20
TOP_VALUES = 10


def profile(frame: pd.DataFrame, data_schema: schema.Schema | None = None) -> list[dict[str, Any]]:
    """One dict per column of the frame (schema order first, then extra columns).

    Keys: name, dtype, role, rows, missing, missing_fraction, distinct, kind ("numeric",
    "categorical", "datetime"), and per kind: numeric: mean, std, min, median, max, zeros,
    histogram {"edges", "counts"}; categorical: top [[value, count]...], other (rows outside
    the top); datetime: min, max.
    """
    specs = {c.name: c for c in data_schema.columns} if data_schema else {}
    ordered = [n for n in specs if n in frame.columns]
    ordered += [n for n in frame.columns if n not in specs]
    return [_column(str(name), frame[name], specs.get(name)) for name in ordered]


def _column(name: str, values: pd.Series, spec: schema.ColumnSpec | None) -> dict[str, Any]:
    rows = len(values)
    dtype = spec.dtype if spec else schema.dtype_of(values)
    counted = _text_counts(values, dtype)
    if counted is not None:  # one hashing pass gives missing, distinct and the top values
        counts, keys = counted
        missing, distinct = rows - int(counts.sum()), len(counts)
    else:
        missing, distinct = int(values.isna().sum()), int(values.nunique(dropna=True))
    out: dict[str, Any] = {
        "name": name,
        "dtype": dtype,
        "role": spec.role if spec else "not in schema",
        "rows": rows,
        "missing": missing,
        "missing_fraction": missing / rows if rows else 0.0,
        "distinct": distinct,
    }
    if counted is not None:
        top = [[str(v), int(c)] for v, c in zip(keys, counts[:TOP_VALUES], strict=True)]
        out.update(kind="categorical", top=top, other=int(counts[TOP_VALUES:].sum()))
        return out
    present = values.dropna()
    if dtype == "datetime" or pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(present, errors="coerce", utc=True).dropna()
        out.update(kind="datetime", min=_iso(stamps.min()), max=_iso(stamps.max()))
    elif dtype in ("int", "float") and pd.api.types.is_numeric_dtype(values):
        out.update(kind="numeric", **_numeric(present.to_numpy(dtype="float64")))
    else:  # numpy bools count as they are: _top writes str(True) as astype(str) would
        text = present if present.dtype == bool else present.astype(str)
        out.update(kind="categorical", **_top(text.value_counts(sort=True)))
    return out


def _text_counts(
    values: pd.Series, dtype: str, top: int = TOP_VALUES
) -> tuple[np.ndarray, list[Any]] | None:
    """Counts of a column of strings (nulls aside), or None for any other column.

    For strings, `astype(str)` changes nothing, so counting the raw values gives the categorical
    profile in one pass, where nulls, distinct values and top values took four over 1M rows.
    Anything else (numbers, mixed 1 / "1", datetimes) takes the general path.
    The counts come sorted as `values.value_counts(dropna=True, sort=True)` sorts them, with the
    values of the first `top` of them (the profile shows no others).
    """
    if values.dtype != object or dtype == "datetime":
        return None
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return None
    return _hashed_counts(values, top)


def _hashed_counts(values: pd.Series, top: int) -> tuple[np.ndarray, list[Any]]:
    """`values.value_counts(dropna=True, sort=True)` of a column of str, by factorize + bincount.

    factorize hashes each string once and lists the distinct values in order of first
    appearance, as value_counts' hash table does (nulls get code -1 and are left out); bincount
    of the codes gives the counts in that order, which are then sorted by the same pandas call
    as value_counts does, so even the order among equal counts is the same. That sort's order
    depends on the counts only, so they are sorted alone and only the `top` values shown are
    taken: no 1M-entry object index to sort. At 1M rows, 1M distinct ids ~0.13 CPU s (Arrow's
    value_counts with its conversion: ~0.18), a short category ~0.03 (Arrow ~0.045).
    """
    codes, uniques = stats.factorize(values.to_numpy())  # shared with inference
    counts, order = stats.sorted_counts(codes, len(uniques))
    return counts[order], [uniques[i] for i in order[:top]]


def _numeric(array: np.ndarray) -> dict[str, Any]:
    finite = array[np.isfinite(array)]
    if not len(finite):
        return {"mean": None, "std": None, "min": None, "median": None, "max": None, "zeros": 0}
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        edges = [lo - 0.5, hi + 0.5]
        counts = [len(finite)]
    elif np.all(finite == np.round(finite)) and hi - lo < BINS * 1.5:
        # few whole numbers (counts, flags, a 0/1 label): one bar centred on each value
        edges_arr = np.arange(lo - 0.5, hi + 1.0, 1.0)
        counts_arr, _ = np.histogram(finite, bins=edges_arr)
        edges, counts = [float(e) for e in edges_arr], [int(c) for c in counts_arr]
    else:
        counts_arr, edges_arr = np.histogram(finite, bins=BINS, range=(lo, hi))
        edges, counts = [float(e) for e in edges_arr], [int(c) for c in counts_arr]
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
        "min": lo,
        "median": float(np.median(finite)),
        "max": hi,
        "zeros": int((finite == 0).sum()),
        "histogram": {"edges": edges, "counts": counts},
    }


def _top(counts: pd.Series) -> dict[str, Any]:
    top = [[str(v), int(c)] for v, c in counts.iloc[:TOP_VALUES].items()]
    return {"top": top, "other": int(counts.iloc[TOP_VALUES:].sum())}


def _iso(stamp: Any) -> str | None:
    if stamp is None or (isinstance(stamp, float) and math.isnan(stamp)) or pd.isna(stamp):
        return None
    return pd.Timestamp(stamp).isoformat()
