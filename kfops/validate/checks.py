"""The checks: each a small function of (data, spec, config) returning anomalies.

Every check is vectorised (pandas/numpy over whole columns, no per-row Python), so a 1M-row
batch validates in seconds. Column checks stop at the first structural problem (all null, wrong
type) because later checks would only repeat it in other words.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from kfops import schema
from kfops.validate import stats
from kfops.validate.results import TABLE, Anomaly, ValidateConfig


class _Counts:
    """`values.value_counts()` of the column being checked: counted once, when a check first asks.

    _mixed_types counts a text column's values and _unseen_categories needs its distinct values:
    one hashing pass over the 1M strings serves both.
    """

    def __init__(self, values: pd.Series, series: pd.Series | None = None) -> None:
        self._values = values
        self._series = series
        self._counts: pd.Series | None = None

    def __call__(self) -> pd.Series:
        if self._counts is None:
            self._counts = self._from_shared()
        if self._counts is None:
            self._counts = self._values.value_counts()
        return self._counts

    def _from_shared(self) -> pd.Series | None:
        """The counts from inference's factorize of a text column (`stats.shared_factorize`).

        Codes in first-appearance order, as value_counts' hash table gives its keys; bincount
        counts them and the same pandas sort orders them, ties included.
        """
        if self._series is None or self._series.dtype != object:
            return None
        held = stats.factorized(self._series.to_numpy())
        if held is None or pd.api.types.infer_dtype(self._values, skipna=True) != "string":
            return None
        codes, uniques = held
        counts, order = stats.sorted_counts(codes, len(uniques))
        if counts.sum() != len(self._values):
            return None
        names = pd.Index(np.asarray(uniques)[order], dtype=object, name=self._values.name)
        return pd.Series(counts[order], index=names, name="count")


ColumnCheck = Callable[
    [pd.Series, pd.Series, schema.ColumnSpec, ValidateConfig, _Counts], Anomaly | None
]


def table_checks(df: pd.DataFrame, sch: schema.Schema, cfg: ValidateConfig) -> list[Anomaly]:
    """No rows, missing and extra columns, duplicate rows."""
    found = []
    if len(df) == 0:
        found.append(Anomaly(TABLE, "no_rows", "error", "the data has no rows"))
    for spec in sch.columns:
        if spec.name not in df.columns:
            rule = "label_missing" if spec.role == "label" else "missing_column"
            detail = (
                f"the schema expects this {spec.role} column ({spec.dtype}); it is not in the data"
            )
            found.append(Anomaly(spec.name, rule, "error", detail))
    listed, unused = set(sch.names), "not in the schema, so the model does not use it"
    found += [
        Anomaly(str(name), "extra_column", cfg.extra_column_severity, unused)
        for name in df.columns
        if name not in listed
    ]
    found += _duplicate_rows(df, sch, cfg)
    return found


def _duplicate_rows(df: pd.DataFrame, sch: schema.Schema, cfg: ValidateConfig) -> list[Anomaly]:
    if len(df) < 2:
        return []
    try:
        ids = tuple(c.name for c in sch.columns if c.role == "id")
        duplicated = stats.duplicate_mask(df, first=ids)
    except TypeError:  # unhashable cells (nested JSON): not comparable, so not checked
        return []
    count = int(duplicated.sum())
    if count / len(df) <= cfg.max_duplicate_fraction:
        return []
    rows = tuple(int(i) for i in np.flatnonzero(duplicated)[: cfg.max_examples])
    detail = (
        f"{count} of {len(df)} rows ({count / len(df):.1%}) repeat an earlier row exactly, above "
        f"the limit {cfg.max_duplicate_fraction:.1%}; examples are row positions"
    )
    return [Anomaly(TABLE, "duplicate_rows", "warning", detail, rows)]


def column_checks(
    series: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    nulls: np.ndarray | None = None,
) -> list[Anomaly]:
    """Runs the column checks in order; all-null and type mismatch end the column's checks.

    `nulls`: the column's null mask (`series.isna()`) when the caller has it already.
    """
    if nulls is None:
        values = series.dropna() if series.hasnans else series
    else:
        values = series[~nulls] if nulls.any() else series
    if spec.role == "label":
        return [a for a in (_type_mismatch(series, values, spec, cfg),) if a]
    if len(series) and values.empty:
        return [Anomaly(spec.name, "all_null", "error", f"all {len(series)} values are null")]
    mismatch = _type_mismatch(series, values, spec, cfg)
    if mismatch is not None:
        return [mismatch]
    counted = _Counts(values, series)
    found = (check(series, values, spec, cfg, counted) for check in _VALUE_CHECKS)
    return [a for a in found if a is not None]


def _type_mismatch(
    series: pd.Series, values: pd.Series, spec: schema.ColumnSpec, cfg: ValidateConfig
) -> Anomaly | None:
    observed = stats.logical_dtype(series)
    if values.empty or _compatible(observed, spec.dtype, values):
        return None
    if observed == "string" and spec.dtype in ("int", "float", "bool"):
        not_numbers = values[pd.to_numeric(values, errors="coerce").isna()]
        examples = stats.top_values(not_numbers.astype(str), cfg.max_examples)
    else:
        examples = stats.top_values(values, cfg.max_examples)
    detail = f"the schema says {spec.dtype}, the data holds {observed} ({series.dtype})"
    return Anomaly(spec.name, "type_mismatch", "error", detail, examples)


def _compatible(observed: str, expected: str, values: pd.Series) -> bool:
    if observed == expected:
        return True
    if expected == "float" and observed in ("int", "bool"):
        return True
    # An int column with nulls comes back from CSV/Parquet as float: fine if all whole numbers.
    return expected == "int" and observed == "float" and stats.is_integral(values)


def _nulls(
    series: pd.Series,
    values: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    _counted: _Counts,
) -> Anomaly | None:
    count = len(series) - len(values)
    if count == 0:
        return None
    fraction = count / len(series)
    limit = min(1.0, spec.max_null_fraction + cfg.null_tolerance)
    if fraction > limit:
        detail = f"{fraction:.1%} null ({count} of {len(series)}), above the limit {limit:.1%}"
        return Anomaly(spec.name, "null_fraction", "error", detail)
    if not spec.nullable:
        detail = f"{count} null value(s) ({fraction:.2%}) in a column that had none"
        return Anomaly(spec.name, "unexpected_nulls", "warning", detail)
    return None


def _inf(
    series: pd.Series,
    values: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    _counted: _Counts,
) -> Anomaly | None:
    if not pd.api.types.is_float_dtype(values):
        return None
    array = values.to_numpy(dtype=float)
    infinite = np.isinf(array)
    count = int(infinite.sum())
    if count == 0:
        return None
    examples = tuple(str(v) for v in np.unique(array[infinite]))
    detail = f"{count} infinite value(s); models and metrics cannot use them"
    return Anomaly(spec.name, "inf_values", "error", detail, examples)


def _mixed_types(
    series: pd.Series,
    values: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    counted: _Counts,
) -> Anomaly | None:
    if series.dtype != object or spec.role == "id" or values.empty:
        return None
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind.startswith("mixed"):
        head = values.iloc[:10_000]
        by_type = head.groupby(head.map(lambda v: type(v).__name__), sort=True).first()
        examples = tuple(stats.jsonable(v) for v in by_type.to_numpy()[: cfg.max_examples])
        detail = f"values of several Python types ({', '.join(by_type.index)}) in one column"
        return Anomaly(spec.name, "mixed_types", cfg.mixed_types_severity, detail, examples)
    if kind != "string":
        return None
    counts = counted()
    numeric = pd.to_numeric(counts.index.to_series(), errors="coerce").notna().to_numpy()
    share = counts.to_numpy()[numeric].sum() / len(values)
    if numeric.all() or share < cfg.mixed_numeric_fraction:
        return None
    examples = tuple(stats.jsonable(v) for v in counts.index[~numeric][: cfg.max_examples])
    detail = f"{share:.1%} of values are numbers, the rest are text"
    return Anomaly(spec.name, "mixed_types", cfg.mixed_types_severity, detail, examples)


def _out_of_range(
    series: pd.Series,
    values: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    _counted: _Counts,
) -> Anomaly | None:
    if spec.dtype not in ("int", "float") or not pd.api.types.is_numeric_dtype(values):
        return None
    numbers = values[np.isfinite(values.to_numpy(dtype=float))]
    none = pd.Series(False, index=numbers.index)
    low = numbers < spec.min if spec.min is not None else none
    high = numbers > spec.max if spec.max is not None else none
    count = int(low.sum() + high.sum())
    if count == 0:
        return None
    # The margin is a share of the trained range's width, so it means the same for ages and
    # incomes; a one-value range (min == max) widens by the share of that value instead.
    lo, hi = spec.min, spec.max
    known = [v for v in (lo, hi) if v is not None]
    width = (hi - lo) if lo is not None and hi is not None and hi > lo else max(map(abs, known))
    slack = cfg.range_margin * (width or 1.0)
    far_low = numbers < lo - slack if lo is not None else none
    far_high = numbers > hi + slack if hi is not None else none
    far = int(far_low.sum() + far_high.sum())
    if far:
        low, high = far_low, far_high
    examples = stats.extreme_values(numbers[low], cfg.max_examples, largest=False)
    examples += stats.extreme_values(numbers[high], cfg.max_examples, largest=True)
    if far:
        detail = (
            f"{far} value(s) ({far / len(series):.1%}) beyond the trained range [{lo}, {hi}] "
            f"by more than the margin {cfg.range_margin:g} of its width"
        )
        return Anomaly(spec.name, "out_of_range", cfg.range_severity, detail, examples)
    detail = f"{count} value(s) outside the trained range [{lo}, {hi}], within the margin"
    return Anomaly(spec.name, "near_range", "warning", detail, examples)


def _unseen_categories(
    series: pd.Series,
    values: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    counted: _Counts,
) -> Anomaly | None:
    if spec.domain is None:
        return None
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        if counted().index.isin(spec.domain).all():  # every distinct value is a known category
            return None
        text = values
    else:
        text = values.astype(str)
    unseen = text[~text.isin(spec.domain)]
    if unseen.empty:
        return None
    examples = stats.top_values(unseen, cfg.max_examples)
    share = len(unseen) / len(values)
    detail = (
        f"{len(unseen)} value(s) ({share:.1%}, tolerance {cfg.max_unseen_fraction:.1%}) outside "
        f"the schema's {len(spec.domain)} categories "
        f"{list(spec.domain[:10])}{' ...' if len(spec.domain) > 10 else ''}"
    )
    severity = cfg.categories_severity(share)
    return Anomaly(spec.name, "unseen_category", severity, detail, examples)


def _constant(
    series: pd.Series,
    values: pd.Series,
    spec: schema.ColumnSpec,
    cfg: ValidateConfig,
    _counted: _Counts,
) -> Anomaly | None:
    if spec.role != "feature" or len(series) < 2:
        return None
    try:
        first = values.iloc[0]
        # the first rows nearly always differ already: comparing all 1M strings to settle it
        # cost ~0.05 CPU s a column; the whole column is compared only when the head agrees
        varies = (
            len(values) < len(series)
            or bool((values.iloc[:_HEAD_ROWS] != first).any())
            or bool((values != first).any())
        )
    except (TypeError, ValueError):  # incomparable objects, or arrays (Parquet list columns)
        return None
    if varies:
        return None
    detail = (
        f"every one of {len(series)} rows holds the same value; a model cannot learn from it "
        f"(--drop {spec.name} removes it, --ignore {spec.name} keeps it out of the model)"
    )
    return Anomaly(spec.name, "constant", cfg.constant_severity, detail, (stats.jsonable(first),))


_HEAD_ROWS = 1000

_VALUE_CHECKS: tuple[ColumnCheck, ...] = (
    _nulls,
    _inf,
    _mixed_types,
    _out_of_range,
    _unseen_categories,
    _constant,
)
