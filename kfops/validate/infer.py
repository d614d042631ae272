"""Schema inference: turn a first batch of data into the contract later data is checked against."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from kfops import errors, jsonable, schema
from kfops.validate import stats

_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$", re.IGNORECASE)
MAX_CLASSES = 20


def infer_schema(
    df: pd.DataFrame,
    label: str | None,
    *,
    task: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    id_columns: Iterable[str] = (),
    ignore_columns: Iterable[str] = (),
    max_domain_size: int = 50,
    null_margin: float = 0.05,
) -> schema.Schema:
    """Infers types, nullability, ranges, categorical domains, label classes and roles.

    Roles: the label, `time_column` and `group_column` get their roles; `id_columns` and obvious
    ids (unique, null-free strings, or unique ints named like `*_id`) get role `id` so they never
    become features; datetime columns not named as `time_column` get `ignore`, since raw timestamps
    do not generalise to future data. Everything else is a feature.

    Args:
        df: the data.
        label: the label column, or None for unlabelled data.
        task: classification or regression; None infers it from the label (bool, string or an
            integer label with at most 20 values means classification).
        time_column: column holding event time (for time splits).
        group_column: column holding a group key (for group splits).
        id_columns: columns to mark as identifiers.
        ignore_columns: columns kept in the data (slices, ids) but never features.
        max_domain_size: string columns with at most this many distinct values get a domain.
        null_margin: each column's `max_null_fraction` is its observed null fraction plus this,
            so later batches may be slightly less complete without failing.

    Returns:
        The schema.

    Raises:
        SchemaViolation: the label, time, group or an id column is not in the data.
        ConfigError: an unknown task, or an empty frame.
    """
    if df.shape[1] == 0 or len(df) == 0:
        raise errors.ConfigError(f"cannot infer a schema from {len(df)} rows x {df.shape[1]} cols")
    roles = _declared_roles(
        df, label, time_column, group_column, tuple(id_columns), tuple(ignore_columns)
    )
    columns = tuple(
        _column_spec(df[name], roles.get(name), max_domain_size, null_margin) for name in df.columns
    )
    if label is None:
        return schema.Schema(columns)
    resolved = task or infer_task(df[label])
    if task == "classification":
        _refuse_continuous_classes(df[label])
    classes = _label_classes(df[label]) if resolved == "classification" else None
    return schema.Schema(columns, label=label, task=resolved, label_classes=classes)


def _declared_roles(
    df: pd.DataFrame,
    label: str | None,
    time_column: str | None,
    group_column: str | None,
    id_columns: tuple[str, ...],
    ignore_columns: tuple[str, ...],
) -> dict[str, str]:
    declared = [(label, "label"), (time_column, "time"), (group_column, "group")]
    declared += [(c, "id") for c in id_columns] + [(c, "ignore") for c in ignore_columns]
    roles = {}
    for name, role in declared:
        if name is None:
            continue
        if name not in df.columns:
            shown = ", ".join(map(str, df.columns[:30]))
            rule = "label_missing" if role == "label" else f"{role}_column_missing"
            raise errors.SchemaViolation(name, rule, f"not in the data; its columns are: {shown}")
        roles[name] = role
    return roles


def _column_spec(
    series: pd.Series, role: str | None, max_domain_size: int, null_margin: float
) -> schema.ColumnSpec:
    dtype = stats.logical_dtype(series)
    if dtype == "string" and pd.api.types.infer_dtype(series, skipna=True) == "string":
        # text (astype(str) changes nothing): one hashing pass finds the nulls (code -1) and the
        # distinct values in order of appearance, where isna, dropna and unique took three
        codes, uniques = stats.factorize(series.to_numpy())
        nulls = codes < 0
        values = series[~nulls] if nulls.any() else series
        uniques = uniques if len(uniques) else None  # all null (a StringDtype column)
    else:
        values = series.dropna() if series.hasnans else series
        uniques = pd.unique(values.astype(str)) if dtype == "string" and len(values) else None
    null_fraction = 1.0 - len(values) / len(series)
    role = role or _default_role(series, dtype, values, uniques)
    low, high, domain = None, None, None
    if dtype in ("int", "float") and len(values):
        finite = values[np.isfinite(values.to_numpy(dtype=float))]
        if len(finite):
            low, high = _plain(finite.min()), _plain(finite.max())
    elif uniques is not None and role not in ("id", "label") and len(uniques) <= max_domain_size:
        domain = tuple(sorted(uniques))
    return schema.ColumnSpec(
        name=str(series.name),
        dtype=dtype,
        role=role,
        nullable=null_fraction > 0,
        max_null_fraction=min(1.0, round(null_fraction + null_margin, 6)),
        min=low,
        max=high,
        domain=domain,
    )


def _default_role(
    series: pd.Series, dtype: str, values: pd.Series, uniques: np.ndarray | None
) -> str:
    if dtype == "datetime":
        return "ignore"
    if len(values) < len(series) or dtype not in ("string", "int"):
        return "feature"
    # Unique strings in more than a handful of rows are identifiers (ids, emails, names), and a
    # model would only memorise them; unique ints are ids only when named so (`customer_id`).
    named_like_id = bool(_ID_NAME.search(str(series.name)))
    if not named_like_id and (dtype == "int" or len(series) <= 50):
        return "feature"
    unique = len(uniques) == len(values) if uniques is not None else values.is_unique
    return "id" if unique else "feature"


def infer_task(label: pd.Series) -> str:
    """Classification for bool/string labels or integer-valued labels with few values."""
    dtype = stats.logical_dtype(label)
    if dtype in ("bool", "string"):
        return "classification"
    values = label.dropna()
    if dtype in ("int", "float") and stats.is_integral(values) and values.nunique() <= MAX_CLASSES:
        return "classification"
    return "regression"


def _refuse_continuous_classes(label: pd.Series) -> None:
    """A label of non-integer numbers given as classification would make every value a class."""
    values = label.dropna()
    if stats.logical_dtype(label) == "float" and not stats.is_integral(values):
        distinct = values.unique()
        raise errors.ConfigError(
            f"--task classification, but label {label.name!r} holds {len(distinct)} distinct "
            f"non-integer values {errors.preview(distinct[:5])}: it is continuous; use --task "
            "regression"
        )


def _label_classes(label: pd.Series) -> tuple[Any, ...]:
    classes = label.dropna().unique()
    if stats.logical_dtype(label) in ("int", "float") and stats.is_integral(label.dropna()):
        return tuple(sorted(int(c) for c in classes))
    return tuple(sorted((_plain(c) for c in classes), key=str))


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar; non-finite floats become None."""
    value = jsonable.plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
