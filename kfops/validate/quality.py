"""Data-quality checks beyond the schema: what a contract of column types and ranges cannot see.

Each looks at rows together: identical features with different labels (the label cannot be
learned there), nulls piling up in one slice of the data (a broken source for one region, a
form field one group never gets), and the class balance of each sensitive group (a model
trained where one group has almost no positives will judge that group on little evidence).
All are warnings: they call for a look, not a stop, unless `rule_severities` says otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kfops import schema
from kfops.validate import stats
from kfops.validate.results import TABLE, Anomaly, ValidateConfig

MIN_SLICE_ROWS = 20  # a slice smaller than this is too small to call its null rate concentrated
MIN_NULLS = 5
CONCENTRATION = 3.0  # a slice's null rate at least this many times the column's overall rate
MIN_EXCESS = 0.1  # ... and at least this much above it
MAX_BALANCE_GAP = 0.2  # a group's class share this far from the overall share is reported
MAX_SLICE_VALUES = 50


def quality_checks(
    df: pd.DataFrame,
    sch: schema.Schema,
    cfg: ValidateConfig,
    sensitive_column: str | None = None,
    masks: dict[str, np.ndarray] | None = None,
) -> tuple[list[Anomaly], dict[str, Any]]:
    """Conflicting labels, concentrated nulls and per-group class balance.

    `masks`: null masks (`df[name].isna()` as arrays) the caller took already, by column name.

    Returns:
        The anomalies found, and the tables behind them for the report (JSON-ready).
    """
    found: list[Anomaly] = []
    tables: dict[str, Any] = {}
    conflict = _conflicting_labels(df, sch, cfg)
    if conflict is not None:
        found.append(conflict)
    slices = _slice_columns(df, sch, sensitive_column)
    keyed: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # each slice column hashed once
    found += _null_concentration(df, sch, slices, cfg, keyed, masks)
    if sensitive_column and sch.task == "classification":
        balance, anomalies = _group_balance(df, sch.label, sensitive_column, cfg, keyed)
        if balance:
            tables["class_balance_by_group"] = {"column": sensitive_column, "groups": balance}
        found += anomalies
    return found, tables


def _conflicting_labels(
    df: pd.DataFrame, sch: schema.Schema, cfg: ValidateConfig
) -> Anomaly | None:
    """Rows whose features are all equal but whose labels differ (classification only)."""
    label = sch.label
    features = [n for n in sch.feature_names if n in df.columns]
    if sch.task != "classification" or label not in df.columns or not features or len(df) < 2:
        return None
    labelled = _labelled(df, label)
    try:
        repeated = _repeated_on_typed(labelled, features)
        keys = pd.util.hash_pandas_object(labelled[features].iloc[repeated], index=False).to_numpy()
    except TypeError:  # unhashable cells (nested JSON): not comparable
        return None
    labels = labelled[label].iloc[repeated].astype(str).to_numpy()
    frame = pd.DataFrame({"key": keys, "label": labels})
    classes = frame.groupby("key", sort=False)["label"].transform("nunique").to_numpy()
    hit = np.flatnonzero(classes > 1)
    if hit.size == 0:
        return None
    conflicting = repeated[hit]
    sets = int(pd.unique(keys[hit]).size)
    rows = tuple(int(i) for i in labelled.index[conflicting][: cfg.max_examples])
    detail = (
        f"{conflicting.size} rows in {sets} sets of identical features carry different labels "
        f"(the model cannot fit both); examples are row labels of the frame"
    )
    return Anomaly(TABLE, "conflicting_labels", "warning", detail, rows)


def _labelled(df: pd.DataFrame, label: str) -> pd.DataFrame:
    """The rows that have a label: the frame itself when every row has one.

    Masking copies every column, ~0.1 CPU s per call at 1M rows, for nothing in the usual case.
    """
    present = df[label].notna()
    return df if present.all() else df[present]


def _repeated_on_typed(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Positions of rows whose non-object features repeat another row's values.

    Only those rows can share every feature with another row; hashing numbers costs little next
    to hashing Python strings, so the whole-row hash is taken of these rows alone.
    """
    typed = [n for n in features if frame[n].dtype != object]
    if not typed or len(typed) == len(features):
        return np.arange(len(frame))
    keys = pd.util.hash_pandas_object(frame[typed], index=False)
    return np.flatnonzero(keys.duplicated(keep=False).to_numpy())


def _slice_columns(df: pd.DataFrame, sch: schema.Schema, sensitive: str | None) -> list[str]:
    """Categorical features (with a domain) and the sensitive column: the slices to look in."""
    names = [c.name for c in sch.features if c.domain is not None and c.name in df.columns]
    if sensitive and sensitive in df.columns and sensitive not in names:
        names.append(sensitive)
    return names


def _null_concentration(
    df: pd.DataFrame,
    sch: schema.Schema,
    slices: list[str],
    cfg: ValidateConfig,
    keyed: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    given: dict[str, np.ndarray] | None = None,
) -> list[Anomaly]:
    """Columns whose nulls pile up in one slice value; fills `keyed` with the slices' codes.

    `given`: null masks the caller has, by column name (not scanned again).
    """
    keyed = {} if keyed is None else keyed
    found = []
    masks = dict(given or {})  # null masks, reused when a masked column is a slice
    for spec in sch.columns:
        if spec.name not in df.columns or spec.role in ("id", "ignore"):
            continue
        nulls = masks.get(spec.name)
        if nulls is None:
            nulls = masks[spec.name] = df[spec.name].isna().to_numpy()
        count = int(nulls.sum())
        if count < MIN_NULLS or count == len(df):
            continue
        overall = count / len(df)
        for column in slices:
            if column not in keyed:
                keyed[column] = _slice_codes(df[column], masks.get(column))
        others = {c: keyed[c] for c in slices if c != spec.name}
        worst = _worst_slice(nulls, count, others, overall)
        if worst is None:
            continue
        column, value, rate, size, share = worst
        detail = (
            f"nulls concentrate where {column}={value!r}: {rate:.1%} of its {size} rows are null "
            f"vs {overall:.1%} overall ({share:.0%} of this column's {count} nulls)"
        )
        found.append(Anomaly(spec.name, "null_concentration", "warning", detail, (value,)))
    return found


def _slice_codes(
    values: pd.Series, nulls: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A slice column's rows as positions among its sorted text values ("<null>" for nulls).

    Computed once per column and shared by every column whose nulls are looked at: grouping
    each null column by the slice's strings hashed the same 1M strings again per column.
    """
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string":
        return _sorted_codes(*stats.factorize(values.to_numpy()))  # inference's hashing
    codes, uniques = pd.factorize(_keys(values, nulls), sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _sorted_codes(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`factorize(_keys(values), sort=True)` of a text column from its plain factorize.

    The nulls (code -1) become "<null>" (one value with a "<null>" string already there); the
    distinct values are put in sorted order and the codes renumbered to match.
    """
    names = np.asarray(uniques, dtype=object)
    codes = np.asarray(codes)
    if codes.size and codes.min() < 0:
        held = np.flatnonzero(names == "<null>")
        if len(held):
            null_code = int(held[0])
        else:
            null_code, names = len(names), np.append(names, np.array(["<null>"], dtype=object))
        codes = np.where(codes < 0, null_code, codes)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[codes], names[order]


def _keys(values: pd.Series, nulls: np.ndarray | None = None) -> pd.Series:
    """A slice or group column as text, "<null>" for its nulls.

    `astype(str)` is skipped for a column that holds only str (and nulls) already: the nulls
    are replaced either way, and the copy cost ~0.05 CPU s per 1M rows. `nulls`: the column's
    null mask when the caller has it, so the column is not scanned for nulls again; a column
    without nulls is not copied by `where`.
    """
    text = values
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) != "string":
        text = values.astype(str)
    if nulls is None:
        nulls = values.isna().to_numpy()
    return text.where(~nulls, "<null>") if nulls.any() else text


def _group_table(
    label: pd.Series, groups: pd.Series, keyed: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """The class shares overall and per group, and the groups' sizes.

    The table's rows are the groups in sorted text order, its columns the classes in `overall`'s
    order: what `crosstab(_keys(groups), label.astype(str), normalize="index")` gave, by one
    bincount over the group and class codes (crosstab grouped 1M strings twice: ~0.3 -> 0.07
    CPU s at 1M rows). `keyed`: `_slice_codes(groups)` when the caller has them.
    """
    class_codes, overall = _class_shares(label)
    group_codes, names = keyed if keyed is not None else _slice_codes(groups)
    width = len(overall)
    counts = np.bincount(group_codes * width + class_codes, minlength=len(names) * width)
    counts = counts.reshape(len(names), width)
    sizes = pd.Series(counts.sum(axis=1), index=names)
    table = pd.DataFrame(counts / sizes.to_numpy()[:, None], index=names, columns=overall.index)
    return overall, table, sizes


def _class_shares(label: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's class as a position in `overall`, and `overall` itself.

    `overall` is `label.astype(str).value_counts(normalize=True)`: same order, ties included.
    An int or bool label is counted on its values, and only the distinct values are turned to
    text: `astype(str)` of every row cost ~0.1 CPU s at 1M rows. Any other label is turned to
    text row by row, as before (a datetime's text depends on all values; 1 and "1" are one
    class).
    """
    if pd.api.types.is_integer_dtype(label.dtype) or pd.api.types.is_bool_dtype(label.dtype):
        codes, uniques = pd.factorize(label.to_numpy())
        text = pd.Series(uniques).astype(str)
    else:
        codes, text = pd.factorize(label.astype(str).to_numpy())
        text = pd.Series(text, dtype=object)
    # value_counts lists values in order of first appearance (as factorize does), then sorts
    counts = pd.Series(np.bincount(codes, minlength=len(text)), index=pd.Index(text, dtype=object))
    ordered = counts.sort_values(ascending=False)
    overall = ordered / ordered.sum()
    position = np.empty(len(text), dtype=np.int64)
    position[counts.index.get_indexer(ordered.index)] = np.arange(len(ordered))
    return position[codes], overall


def _worst_slice(
    nulls: np.ndarray, count: int, slices: dict[str, tuple[np.ndarray, np.ndarray]], overall: float
) -> tuple[str, Any, float, int, float] | None:
    """The slice value with the highest null rate among those concentrating the nulls.

    Ties keep the first found: slices in order, values in sorted order (as grouping by the
    values with sort=True did).
    """
    best = None
    for column, (codes, values) in slices.items():
        if len(values) > MAX_SLICE_VALUES:
            continue
        size = np.bincount(codes, minlength=len(values))
        in_nulls = np.bincount(codes, weights=nulls, minlength=len(values))
        rate = in_nulls / size
        hot = (size >= MIN_SLICE_ROWS) & (rate >= CONCENTRATION * overall)
        for i in np.flatnonzero(hot & (rate - overall >= MIN_EXCESS)):
            candidate = (column, str(values[i]), float(rate[i]), int(size[i]))
            share = float(in_nulls[i]) / float(count)
            if best is None or candidate[2] > best[2]:
                best = (*candidate, share)
    return best


def _group_balance(
    df: pd.DataFrame,
    label: str | None,
    column: str,
    cfg: ValidateConfig,
    keyed: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[list[dict[str, Any]], list[Anomaly]]:
    """Each group's rows and class shares next to the overall shares; far-off groups reported.

    `keyed`: slice codes of the whole frame's columns (`_null_concentration`'s), reused when
    every row is labelled.
    """
    if label not in df.columns or column not in df.columns:
        return [], []
    labelled = _labelled(df, label)
    if labelled.empty:
        return [], []
    codes = (keyed or {}).get(column) if labelled is df else None
    overall, table, sizes = _group_table(labelled[label], labelled[column], codes)
    rows, found = [], []
    for group, shares in table.iterrows():
        gaps = (shares - overall).abs()
        rows.append(
            {
                "group": str(group),
                "rows": int(sizes[group]),
                "class_share": {str(k): round(float(v), 4) for k, v in shares.items()},
            }
        )
        if gaps.max() > MAX_BALANCE_GAP:
            cls = str(gaps.idxmax())
            detail = (
                f"class {cls!r} is {shares[cls]:.1%} of {column}={group!r} ({int(sizes[group])} "
                f"rows) vs {overall[cls]:.1%} overall"
            )
            found.append(Anomaly(column, "group_class_balance", "warning", detail, (str(group),)))
    rows.append(
        {
            "group": "(all)",
            "rows": int(len(labelled)),
            "class_share": {str(k): round(float(v), 4) for k, v in overall.items()},
        }
    )
    return rows, found[: cfg.max_examples * 4]
