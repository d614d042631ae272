"""The reference side of drift: a compact per-column summary of the training sample, cached.

Evidently recomputes reference statistics on every run and cannot take precomputed ones
(evidently issues #763, #1526, #506). Drift tests are per column, so the reference only needs each
column's distribution, not its rows. The summary keeps, per column, `rows` evenly spaced quantiles
(numeric) or category counts in exact proportion (categorical), plus the model's predictions on
the reference, which a monitoring run would otherwise recompute every time. The quantisation error
is at most 1/rows in any CDF value or category share: far below any drift threshold.

The summary is cached in the store under `monitoring/<model>/<version>/`, keyed by the sha256 of
the reference file and the summary settings. It is kept outside `models/<model>/<version>/`
because registered versions are immutable and their manifest lists exactly their files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors, logschema, schema
from kfops.monitor import window
from kfops.store import base

SUMMARY_VERSION = 1


def column_kinds(data_schema: schema.Schema) -> dict[str, str]:
    """Maps each model feature to "num" or "cat", the way the drift tests will treat it.

    Integers with a declared domain are categories; booleans and strings always are.
    """
    kinds = {}
    for col in data_schema.features:
        numeric = col.dtype in ("int", "float", "datetime") and col.domain is None
        kinds[col.name] = "num" if numeric else "cat"
    return kinds


def prediction_kind(data_schema: schema.Schema) -> str:
    """How `kfops_prediction` is tested for drift: "num" for regression, else "cat"."""
    return "num" if data_schema.task == "regression" else "cat"


def with_predictions(frame: pd.DataFrame, pipeline: Any, features: list[str]) -> pd.DataFrame:
    """Adds the model's predictions (and positive-class probability) as the server logs them.

    Raises:
        ModelError: the model cannot predict on its own reference sample.
    """
    out = frame[features].copy()
    try:
        out[logschema.PREDICTION] = pipeline.predict(frame[features])
        if hasattr(pipeline, "predict_proba"):
            out[logschema.PROBA] = pipeline.predict_proba(frame[features])[:, -1]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise errors.ModelError(f"model cannot predict on its reference sample: {e}") from e
    return out


def summarise(frame: pd.DataFrame, kinds: Mapping[str, str], rows: int) -> pd.DataFrame:
    """A `rows`-row frame whose every column has the distribution of the same column in `frame`.

    Frames no longer than `rows` come back unchanged. Columns are summarised independently, so
    the rows of the summary are not real rows: use it for per-column drift only.

    Example:
        >>> s = summarise(pd.DataFrame({"x": range(1000)}), {"x": "num"}, 100)
        >>> len(s), float(s["x"].median())
        (100, 499.5)
    """
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    out = {}
    for name in frame.columns:
        kind = kinds.get(name, "num" if pd.api.types.is_float_dtype(frame[name]) else "cat")
        out[name] = (
            _numeric(frame[name], rows) if kind == "num" else _categorical(frame[name], rows)
        )
    return pd.DataFrame(out)


def _numeric(series: pd.Series, rows: int) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    n_null = _apportion(np.array([values.isna().sum(), values.notna().sum()]), rows)[0]
    known = values.dropna().to_numpy(dtype=float)
    if len(known) == 0:
        return pd.Series([np.nan] * rows)
    probs = (np.arange(rows - n_null) + 0.5) / (rows - n_null)
    quantiles = np.quantile(known, probs, method="inverted_cdf")
    return pd.Series(np.concatenate([quantiles, [np.nan] * n_null]))


def _categorical(series: pd.Series, rows: int) -> pd.Series:
    counts = series.value_counts(dropna=False, sort=False)
    counts = counts.sort_index(key=lambda idx: idx.map(str))
    repeats = _apportion(counts.to_numpy(), rows)
    return pd.Series(np.repeat(counts.index.to_numpy(dtype=object), repeats)).astype(series.dtype)


def _apportion(counts: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder rounding: integer shares of `total` proportional to `counts`."""
    exact = counts / counts.sum() * total
    whole = np.floor(exact).astype(int)
    order = np.argsort(-(exact - whole), kind="stable")
    whole[order[: total - whole.sum()]] += 1
    return whole


def cache_key(model: str, version: str, reference_sha256: str, settings: Mapping[str, Any]) -> str:
    """Store key of a cached summary; any change of reference or settings gives a new key."""
    blob = json.dumps({"sha": reference_sha256, "v": SUMMARY_VERSION, **settings}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return f"monitoring/{model}/{version}/reference-summary-{digest}.parquet"


def load_cached(store: base.Store, key: str) -> pd.DataFrame | None:
    """The cached summary, or None when absent or unreadable (it is then rebuilt)."""
    if not store.exists(key):
        return None
    try:
        return pq.read_table(pa.BufferReader(store.get_bytes(key))).to_pandas()
    except (pa.ArrowInvalid, OSError, errors.NotFound):
        return None


def save_cached(store: base.Store, key: str, summary: pd.DataFrame) -> None:
    """Writes the summary (atomic put: readers see the old one, the new one, or none)."""
    store.put_bytes(key, window.to_bytes(summary))
