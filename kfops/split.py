"""Split a labelled frame into train and test, disjoint by construction and checked to be so.

Strategies:
    stratified  (default) keeps each class's share equal in both splits (to within a row) and
                puts at least one row of every class on each side; a regression label falls
                back to `random`, and the report says so. numpy only (`_stratified`).
    random      a seeded shuffle (the rows scikit-learn's train_test_split picks for the seed).
    time        the latest rows (by `time_column`) go to test, so the model is judged on the
                future it will face; rows sharing the boundary timestamp all go to test.
    group       every value of `group_column` lands on one side only (no customer in both),
                via scikit-learn's GroupShuffleSplit.

The same frame, config and seed always give the same rows in the same order: each split keeps
the rows' original order.

Exact duplicate rows on both sides would score the model on rows it trained on. `cross_duplicates`
says what to do with test rows that equal a training row exactly (every column): `drop` them from
test (default), `block` the split (DataError), or `keep` them; the report counts them either way.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from typing import Any

import numpy as np
import pandas as pd

from kfops import errors, parameters
from kfops.schema import TASKS

STRATEGIES = ("stratified", "random", "time", "group")
DUPLICATE_POLICIES = ("drop", "block", "keep")
# A numeric label with more distinct values than this (or any fractional value) is continuous.
MAX_CLASSES = 50


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How to split.

    Attributes:
        label: the label column.
        strategy: one of STRATEGIES.
        test_fraction: share of rows (of groups, for `group`) that go to test, in (0, 1).
        seed: makes random, stratified and group splits reproducible.
        time_column: required by `time`.
        group_column: required by `group`.
        task: "classification" or "regression"; None infers it from the label's values.
    """

    label: str = parameters.field(help="the label column")
    strategy: str = parameters.field("stratified", "how rows go to test", choices=STRATEGIES)
    test_fraction: float = parameters.field(0.2, "share of rows (of groups) that go to test")
    seed: int = parameters.field(0, "seeds the random, stratified and group splits")
    time_column: str | None = parameters.field(
        None, "column that orders rows (time strategy); '' = none", none_as=""
    )
    group_column: str | None = parameters.field(
        None, "rows sharing a value stay together (group strategy); '' = none", none_as=""
    )
    task: str | None = parameters.field(
        None,
        "classification or regression; '' = inferred from the label",
        choices=TASKS,
        none_as="",
    )
    cross_duplicates: str = parameters.field(
        "drop",
        "test rows equal to a training row: drop them, block the split, or keep them",
        choices=DUPLICATE_POLICIES,
    )

    def __post_init__(self):
        if not self.label:
            raise errors.ConfigError("split: label must name a column")
        errors.check_choice("split strategy", self.strategy, STRATEGIES)
        if not isinstance(self.test_fraction, int | float) or not 0.0 < self.test_fraction < 1.0:
            raise errors.ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        errors.check_seed("seed", self.seed)
        if self.strategy == "time" and not self.time_column:
            raise errors.ConfigError(
                "strategy 'time' needs time_column (the column that orders rows)"
            )
        if self.strategy == "group" and not self.group_column:
            raise errors.ConfigError(
                "strategy 'group' needs group_column (rows that must stay together)"
            )
        errors.check_choice("cross_duplicates", self.cross_duplicates, DUPLICATE_POLICIES)
        if self.task is not None and self.task not in TASKS:
            raise errors.ConfigError(f"task must be one of {TASKS} or None, got {self.task!r}")


@dataclasses.dataclass(frozen=True)
class SplitResult:
    """The two splits and a JSON-ready report (rows and class balance per split, notes)."""

    train: pd.DataFrame
    test: pd.DataFrame
    report: dict[str, Any]


def split(df: pd.DataFrame, config: SplitConfig) -> SplitResult:
    """Splits `df` into train and test as `config` says.

    Args:
        df: the labelled data; its index is ignored (rows are identified by position).
        config: the split settings.

    Returns:
        Train and test frames (fresh RangeIndex, original row order) and the report.

    Raises:
        SchemaViolation: the label, time or group column is missing or has nulls, or a class is
            too small to stratify.
        DataError: too few rows (or groups) to give both splits at least one.
    """
    _check_columns(df, config)
    task = config.task or infer_task(df[config.label])
    strategy, notes = config.strategy, []
    if strategy == "stratified" and task == "regression":
        strategy = "random"
        notes.append("label is continuous (regression): stratified split fell back to random")
    positions = np.arange(len(df))
    train_pos, test_pos = _SPLITTERS[strategy](df, positions, config)
    check_disjoint(train_pos, test_pos, len(df))
    repeated = cross_duplicates(df, train_pos, test_pos)
    dropped = _handle_duplicates(repeated, test_pos, config, notes)
    if dropped.size:
        test_pos = test_pos[~_member(test_pos, dropped)]
    train, test = _rows(df, train_pos), _rows(df, test_pos)
    report = _report(train, test, config, strategy, task, notes)
    report["cross_duplicates"] = {
        "policy": config.cross_duplicates,
        "test_rows_equal_to_train_rows": int(repeated.size),
        "dropped_from_test": int(dropped.size),
        "examples": [int(p) for p in repeated[:5]],
    }
    return SplitResult(train, test, report)


def cross_duplicates(df: pd.DataFrame, train_pos: np.ndarray, test_pos: np.ndarray) -> np.ndarray:
    """Positions of test rows that equal some training row in every column, sorted."""
    if not len(train_pos) or not len(test_pos):
        return np.array([], dtype=int)
    try:
        train_pos, test_pos = _equal_on_typed_columns(df, train_pos, test_pos)
        rows = np.concatenate([test_pos, train_pos])
        keys = pd.util.hash_pandas_object(df.iloc[rows], index=False).to_numpy()
    except TypeError:  # unhashable cells (nested JSON): rows cannot be compared
        return np.array([], dtype=int)
    hit = test_pos[_member(keys[: test_pos.size], keys[test_pos.size :])]
    if not hit.size:
        return hit
    # A 64-bit hash match is confirmed on the values, so a collision never drops a row.
    train_rows = df.iloc[train_pos]
    candidates = df.iloc[hit]
    matched = candidates.merge(train_rows.drop_duplicates(), how="left", indicator=True)
    return np.sort(hit[(matched["_merge"] == "both").to_numpy()])


def _equal_on_typed_columns(
    df: pd.DataFrame, train_pos: np.ndarray, test_pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The train and test positions that can still be equal rows, judged on non-object columns.

    Rows equal in every column are equal in these; hashing numbers and dates costs little, while
    hashing Python strings is most of the cost at 1M rows. So only rows whose typed columns
    match a row on the other side go on to the whole-row comparison.
    """
    typed = [c for c in df.columns if df[c].dtype != object]
    if not typed or len(typed) == df.shape[1]:
        return train_pos, test_pos
    keys = pd.util.hash_pandas_object(df[typed], index=False).to_numpy()
    test_pos = test_pos[_member(keys[test_pos], keys[train_pos])]
    return train_pos[_member(keys[train_pos], keys[test_pos])], test_pos


def _rows(df: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """`df.iloc[positions].reset_index(drop=True)` without reset_index's copy of every column.

    The taken rows are already a fresh frame; only its index is replaced (~0.15 CPU s at 1M rows).
    """
    part = df.take(positions)
    part.index = pd.RangeIndex(len(part))
    return part


def _member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """`np.isin(values, pool)`, by pandas' hash table.

    numpy's isin sorts (or, numpy 2.x, hash-uniques) both arrays: ~0.65 CPU s for 200k hash keys
    against 800k, twice per split at 1M rows; the hash table takes ~0.02 s. Same answer.
    """
    return pd.Series(values, copy=False).isin(pool).to_numpy()


def _handle_duplicates(
    repeated: np.ndarray, test_pos: np.ndarray, config: SplitConfig, notes: list[str]
) -> np.ndarray:
    """The test positions to drop; raises when the policy blocks."""
    if not repeated.size:
        return repeated
    what = (
        f"{repeated.size} test rows equal a training row exactly, e.g. rows {repeated[:5].tolist()}"
    )
    if config.cross_duplicates == "block":
        raise errors.DataError(
            f"{what}; drop duplicates from the data, or set cross_duplicates to drop or keep"
        )
    if config.cross_duplicates == "keep":
        notes.append(f"{what}; kept (cross_duplicates=keep), so test scores include seen rows")
        return np.array([], dtype=int)
    if repeated.size == test_pos.size:
        raise errors.DataError(f"{what}: every test row does; nothing would be left to test on")
    notes.append(f"{what}; dropped from test (cross_duplicates=drop)")
    return repeated


def infer_task(label: pd.Series) -> str:
    """`regression` for a continuous numeric label, else `classification`."""
    if pd.api.types.is_bool_dtype(label) or not pd.api.types.is_numeric_dtype(label):
        return "classification"
    values = label.dropna()
    fractional = pd.api.types.is_float_dtype(values) and bool((values % 1 != 0).any())
    return "regression" if fractional or values.nunique() > MAX_CLASSES else "classification"


def check_disjoint(train_pos: np.ndarray, test_pos: np.ndarray, n_rows: int) -> None:
    """Asserts every row position lands in exactly one split.

    Raises:
        DataError: a row is in both splits, in neither, or twice in one.
    """
    seen = np.concatenate([train_pos, test_pos])
    if seen.size and (seen.min() < 0 or seen.max() >= n_rows):
        raise errors.DataError(f"split bug: row positions outside 0..{n_rows - 1}")
    # Counting (O(n)) rather than set operations: this runs on every split of up to 1M+ rows.
    in_train = np.bincount(train_pos, minlength=n_rows)
    in_test = np.bincount(test_pos, minlength=n_rows)
    both = np.flatnonzero((in_train > 0) & (in_test > 0))
    if both.size:
        raise errors.DataError(
            f"split bug: {both.size} rows in both train and test, e.g. {both[:5].tolist()}"
        )
    wrong = np.flatnonzero(in_train + in_test != 1)
    if wrong.size:
        raise errors.DataError(
            f"split bug: {wrong.size} rows lost or repeated, e.g. rows {wrong[:5].tolist()}"
        )


def _check_columns(df: pd.DataFrame, config: SplitConfig) -> None:
    needed = [("label", config.label)]
    if config.strategy == "time":
        needed.append(("time", config.time_column))
    if config.strategy == "group":
        needed.append(("group", config.group_column))
    for role, column in needed:
        if column not in df.columns:
            detail = f"{role} column not among the data's columns {list(df.columns)}"
            raise errors.SchemaViolation(column, "present", detail)
        nulls = np.flatnonzero(df[column].isna().to_numpy())
        if nulls.size:
            detail = (
                f"{nulls.size} null {role} values at rows {nulls[:5].tolist()}; drop or fill them"
            )
            raise errors.SchemaViolation(column, "not null", detail)
    if len(df) < 2:
        raise errors.DataError(f"split needs at least 2 rows, got {len(df)}")


def _selection() -> Any:
    """Scikit-learn's model_selection, imported only for a group split.

    Random and stratified splits are numpy's: scikit-learn's import is ~1.3 CPU s of the split
    step's start-up (scipy most of it), more than the split itself at 100k rows.
    """
    from sklearn import model_selection

    return model_selection


def _test_size(n: int, fraction: float) -> int:
    size = math.ceil(n * fraction)
    if size >= n:
        raise errors.DataError(f"test_fraction {fraction} of {n} rows leaves no training rows")
    return size


def _random(
    df: pd.DataFrame, positions: np.ndarray, config: SplitConfig
) -> tuple[np.ndarray, np.ndarray]:
    size = _test_size(len(df), config.test_fraction)
    # One seeded permutation, its first `size` rows to test: what scikit-learn's ShuffleSplit
    # draws (sklearn/model_selection/_split.py, RandomState(seed).permutation), so random
    # splits keep the rows they had. RandomState's stream is frozen across numpy versions
    # (NEP 19), unlike Generator's: the same seed gives the same split on any numpy.
    shuffled = np.random.RandomState(config.seed).permutation(positions)
    return np.sort(shuffled[size:]), np.sort(shuffled[:size])


def _stratified(
    df: pd.DataFrame, positions: np.ndarray, config: SplitConfig
) -> tuple[np.ndarray, np.ndarray]:
    counts = df[config.label].value_counts()
    counts = counts[counts > 0]  # a categorical label lists its unused categories too
    small = counts[counts < 2]
    if len(small):
        detail = (
            f"{len(small)} classes {errors.preview(_json_keys(small.index))} have fewer than 2 "
            "rows, so they cannot be in both splits; drop them or use --param "
            "split_strategy=random"
        )
        raise errors.SchemaViolation(config.label, "stratified split", detail)
    size = _test_size(len(df), config.test_fraction)
    if size < len(counts) or len(df) - size < len(counts):
        detail = (
            f"{len(counts)} classes but only {size} test and {len(df) - size} train rows; "
            "each split needs a row of every class: add rows or change test_fraction"
        )
        raise errors.SchemaViolation(config.label, "stratified split", detail)
    codes, _ = pd.factorize(df[config.label], sort=False)  # classes in order of appearance
    counts = np.bincount(codes)
    quota = _test_quota(counts, size)
    # One seeded permutation of the rows, then grouped by class (stable, so each class's rows
    # stay in shuffled order): each class's first `quota` shuffled rows go to test.
    shuffled = np.random.RandomState(config.seed).permutation(positions)
    grouped = shuffled[np.argsort(codes[shuffled], kind="stable")]
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    is_test = np.arange(len(grouped)) - starts < np.repeat(quota, counts)
    return np.sort(grouped[~is_test]), np.sort(grouped[is_test])


def _test_quota(counts: np.ndarray, size: int) -> np.ndarray:
    """Test rows per class: `size` in all, proportional to `counts`, each in [1, count - 1].

    Largest remainders (Hamilton's method): each class gets the floor of its exact share, and
    the rows still missing go to the classes with the largest fractional parts, ties to the
    earlier class. Every class keeps a row on each side (the caller checked that `size` and
    the training rows are at least the class count and every class has 2+ rows), so a rare
    class is never evaluated on nothing; a class pushed to that bound moves its surplus or
    deficit to the classes nearest their exact share.
    """
    share = counts * size / counts.sum()
    quota = np.clip(np.floor(share).astype(np.int64), 1, counts - 1)
    missing = size - int(quota.sum())
    if missing == 0:
        return quota
    # One row at a time to the class furthest below its share (above it, when rows are taken
    # back), from a heap: a rescan of every class per row was quadratic, minutes for the 1e5+
    # classes of an id-like label. The key is the rescan's own (share - quota; ties to the
    # earlier class), so the quotas, and the rows, are the same.
    step = 1 if missing > 0 else -1
    bound = counts - 1 if step > 0 else np.ones_like(counts)
    sign = -step  # heapq pops the smallest: the largest gap first when adding
    shares, quotas, bounds = share.tolist(), quota.tolist(), bound.tolist()
    heap = [
        (sign * (s - q), i)
        for i, (s, q, b) in enumerate(zip(shares, quotas, bounds, strict=True))
        if q != b
    ]
    heapq.heapify(heap)
    for _ in range(abs(missing)):
        _, i = heapq.heappop(heap)
        quotas[i] += step
        if quotas[i] != bounds[i]:
            heapq.heappush(heap, (sign * (shares[i] - quotas[i]), i))
    return np.array(quotas, dtype=np.int64)


def _time(
    df: pd.DataFrame, positions: np.ndarray, config: SplitConfig
) -> tuple[np.ndarray, np.ndarray]:
    times = df[config.time_column].to_numpy()
    order = np.argsort(times, kind="stable")
    cut = len(df) - _test_size(len(df), config.test_fraction)
    boundary = times[order[cut]]
    # Ties go to test: a timestamp on both sides would let the model see the test period.
    is_test = times >= boundary
    if is_test.all():
        raise errors.DataError(
            # plain str(), not repr(): a numpy scalar's repr reads np.int64(5)
            f"time split: every row has {config.time_column!r} >= {boundary}; "
            "nothing is left to train on"
        )
    return positions[~is_test], positions[is_test]


def _group(
    df: pd.DataFrame, positions: np.ndarray, config: SplitConfig
) -> tuple[np.ndarray, np.ndarray]:
    groups = df[config.group_column].to_numpy()
    n_groups = pd.unique(groups).size
    if n_groups < 2:
        raise errors.DataError(
            f"group split needs at least 2 groups in {config.group_column!r}, got {n_groups}"
        )
    splitter = _selection().GroupShuffleSplit(
        n_splits=1, test_size=config.test_fraction, random_state=config.seed
    )
    try:
        train, test = next(splitter.split(positions, groups=groups))
    except ValueError as e:
        raise errors.DataError(f"group split over {n_groups} groups failed: {e}") from e
    return np.sort(train), np.sort(test)


_SPLITTERS = {"random": _random, "stratified": _stratified, "time": _time, "group": _group}


def _report(
    train: pd.DataFrame,
    test: pd.DataFrame,
    config: SplitConfig,
    strategy: str,
    task: str,
    notes: list[str],
) -> dict[str, Any]:
    total = len(train) + len(test)
    report = {
        "strategy": strategy,
        "requested_strategy": config.strategy,
        "task": task,
        "seed": config.seed,
        "test_fraction": config.test_fraction,
        "rows": {"train": len(train), "test": len(test), "total": total},
        "train": _describe(train, config, task),
        "test": _describe(test, config, task),
        "notes": notes,
    }
    if strategy == "time":
        report["notes"].append(
            f"test holds rows with {config.time_column} >= {report['test']['time_min']}"
        )
    return report


def _describe(part: pd.DataFrame, config: SplitConfig, task: str) -> dict[str, Any]:
    label = part[config.label]
    out: dict[str, Any] = {"rows": len(part)}
    if task == "classification":
        counts = label.value_counts().sort_index()
        out["class_counts"] = {str(k): int(v) for k, v in counts.items()}
        out["class_balance"] = {str(k): round(float(v) / len(part), 6) for k, v in counts.items()}
    else:
        out["label_mean"] = float(label.mean())
        out["label_std"] = float(label.std(ddof=0))
    if config.strategy == "time":
        out["time_min"], out["time_max"] = (
            str(part[config.time_column].min()),
            str(part[config.time_column].max()),
        )
    if config.strategy == "group":
        out["groups"] = int(part[config.group_column].nunique())
    return out


def _json_keys(values: Any) -> list[str]:
    return sorted(str(v) for v in values)
