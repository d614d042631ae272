"""Requests against the model's schema: columns of JSON values in, one typed DataFrame out.

Every problem is collected (not just the first) and named by field, rule and rows. The work is
per column, not per row: `set(map(type, values))` and numpy conversions run in C, and the
per-row Python scans that find offending row numbers run only when something is already wrong.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from kfops import errors, schema
from kfops.serving import errors as serr


class _Missing:
    """Marks a field absent from one V1 instance (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()
_NONE = type(None)
_SMALL = 16
_JSON_NAMES = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    dict: "object",
    _NONE: "null",
}
_ALLOWED = {
    "float": {int, float},
    "int": {int, float},
    "bool": {bool},
    "string": {str},
    "datetime": {str},
}
_EXPECTED = {
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "string": "a string",
    "datetime": "an ISO-8601 datetime string",
}


@dataclasses.dataclass(frozen=True)
class ValidationPolicy:
    """Which schema rules the server enforces beyond types and nulls.

    Attributes:
        check_range: reject numbers outside the [min, max] the schema recorded from training.
            Off by default: that range is what training happened to see, not a validity rule;
            real traffic legitimately leaves it, and rejecting those rows would hide exactly the
            drift the monitor exists to see. Out-of-range values are counted either way.
        check_domain: reject strings outside the categorical domain the schema recorded (the
            encoder has no column for an unseen category, so its prediction means nothing).
        passthrough: request fields that are not model inputs but are accepted anyway (a
            client's record id): never fed to the model, written with the request to the
            inference log and echoed in V1 answers. A name that is a model input stays an input.
    """

    check_range: bool = False
    check_domain: bool = True
    passthrough: tuple[str, ...] = ()


DEFAULT_POLICY = ValidationPolicy()


@dataclasses.dataclass(frozen=True)
class Validated:
    """A request that passed: the model's input columns as numpy arrays, in schema order.

    Attributes:
        arrays: feature name -> column (the model, the inference log and micro-batching use them).
        n_rows: number of rows.
        out_of_range: feature -> (values below the training min, values above the training max),
            only for features with any; counted for monitoring, never a reason to reject.
        passthrough: passthrough field -> its values as sent (None where an instance lacks it).
    """

    arrays: dict[str, np.ndarray]
    n_rows: int
    out_of_range: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    passthrough: dict[str, list] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """The columns as a DataFrame, built only when asked.

        The compiled fast path never needs it, and building one costs more than its predict.
        """
        return pd.DataFrame(self.arrays, copy=False)


class Validator:
    """Checks columns against one schema; built once per loaded model, reused by every request."""

    def __init__(
        self,
        spec: schema.Schema,
        policy: ValidationPolicy = DEFAULT_POLICY,
        derived: Mapping[str, Sequence[str]] | None = None,
    ):
        """`derived`: the model's derived features -> their raw inputs (kfops.features)."""
        self.derived = dict(derived or {})
        self.features = spec.features
        self.names = [c.name for c in self.features]
        self.dtypes = {c.name: c.dtype for c in self.features}
        self._name_set = frozenset(self.names)
        self.policy = policy
        self._domains = {c.name: frozenset(c.domain) for c in self.features if c.domain}

    def validate(self, columns: Mapping[str, Sequence], n_rows: int, found=()) -> Validated:
        """Converts named columns of JSON values into the model's frame.

        Args:
            columns: feature name -> values (one per row; `MISSING` where a V1 instance lacked it).
            n_rows: the request's row count; every column must have exactly this many values.
            found: problems the protocol codec already found; reported together with these.

        Raises:
            InvalidInput: every problem found, each naming its field, rule and rows.
        """
        problems = list(found)
        reported = {p.field for p in problems}
        passthrough = {}
        for name in columns:
            if name not in self._name_set and name in self.policy.passthrough:
                values = columns[name]
                if len(values) == n_rows:
                    passthrough[name] = [None if v is MISSING else v for v in values]
                else:
                    detail = f"has {len(values)} values, expected {n_rows}"
                    problems.append(serr.problem(name, "shape", detail))
            elif name not in self._name_set:
                rows = _rows_where(columns[name], lambda v: v is not MISSING)
                detail = (
                    f"not an input of this model; inputs: {errors.preview(self.names, 12)}; "
                    f"to accept it unused (logged with the request): --passthrough {name}"
                )
                if name in self.derived:
                    detail = (
                        "a derived feature the model computes itself; send its inputs "
                        f"{list(self.derived[name])} instead"
                    )
                problems.append(serr.problem(name, "unexpected", detail, rows))
        arrays, out_of_range = {}, {}
        for col in self.features:
            values = columns.get(col.name)
            if values is None and col.name in reported:
                continue
            if values is None:
                problems.append(
                    serr.problem(col.name, "missing", f"required input ({_EXPECTED[col.dtype]})")
                )
            elif len(values) != n_rows:
                problems.append(
                    serr.problem(col.name, "shape", f"has {len(values)} values, expected {n_rows}")
                )
            else:
                arrays[col.name] = self._column(col, values, problems)
                self._check_range(col, arrays[col.name], problems, out_of_range)
        if problems:
            raise serr.InvalidInput(problems)
        return Validated(arrays, n_rows, out_of_range, passthrough)

    def _column(
        self, col: schema.ColumnSpec, values: Sequence, problems: list
    ) -> np.ndarray | None:
        types = set(map(type, values))
        n_before = len(problems)
        if _Missing in types:
            problems.append(
                serr.problem(
                    col.name,
                    "missing",
                    "absent from these instances",
                    _rows_where(values, lambda v: v is MISSING),
                )
            )
        has_null = _NONE in types
        if has_null and not col.nullable:
            problems.append(
                serr.problem(
                    col.name,
                    "null",
                    "null is not allowed: the schema marks this input non-nullable",
                    _rows_where(values, lambda v: v is None),
                )
            )
        bad = types - _ALLOWED[col.dtype] - {_NONE, _Missing}
        if bad:
            rows = _rows_where(values, lambda v: type(v) in bad)
            got = ", ".join(sorted(_JSON_NAMES.get(t, t.__name__) for t in bad))
            problems.append(
                serr.problem(
                    col.name,
                    "type",
                    f"expected {_EXPECTED[col.dtype]}, got {got} "
                    f"(e.g. {_preview(values[rows[0]])})",
                    rows,
                )
            )
        if len(problems) > n_before:
            return None
        return _CONVERT[col.dtype](self, col, values, types, problems)

    def _numeric(self, col, values, types, problems) -> np.ndarray | None:
        has_null = _NONE in types
        if col.dtype == "int" and types == {int}:
            try:
                arr = np.array(values, dtype=np.int64)
            except OverflowError:
                problems.append(serr.problem(col.name, "range", "integer does not fit in 64 bits"))
                return None
        else:
            arr = np.array(values, dtype=np.float64)
            finite = np.isfinite(arr)
            if not finite.all():  # nulls became NaN too: only the others are problems
                nonfinite = ~finite & ~_null_mask(values, has_null)
                if nonfinite.any():
                    rows = np.flatnonzero(nonfinite)
                    detail = "NaN/Infinity not allowed"
                    problems.append(serr.problem(col.name, "finite", detail, rows))
                    return None
            if col.dtype == "int":
                arr = _integral(col, arr, has_null, problems)
                if arr is None:
                    return None
        return arr

    def _check_range(self, col, arr, problems: list, counts: dict) -> None:
        """Counts numbers outside the training [min, max]; rejects them only if the policy says."""
        if (
            arr is None
            or col.dtype not in ("int", "float")
            or (col.min is None and col.max is None)
        ):
            return
        lo = col.min if col.min is not None else -np.inf
        hi = col.max if col.max is not None else np.inf
        # NaN compares False (without a warning): a null is never out of range. A few values
        # are checked in Python, which costs less than four numpy calls; more, by their min and
        # max (a NaN among them makes both NaN, and the exact count below runs).
        if len(arr) <= _SMALL:
            if not any(v < lo or v > hi for v in arr.tolist()):
                return
        elif lo <= arr.min() and arr.max() <= hi:
            return
        low, high = arr < lo, arr > hi
        if not (low.any() or high.any()):
            return
        n_low, n_high = int(np.count_nonzero(low)), int(np.count_nonzero(high))
        counts[col.name] = (n_low, n_high)
        if self.policy.check_range:
            out = np.flatnonzero(low | high)
            example = arr[out[0]].item()  # a Python number: no "np.int64(...)" in the message
            detail = f"outside [{col.min}, {col.max}] (e.g. {example!r})"
            problems.append(serr.problem(col.name, "range", detail, out))

    def _bool(self, col, values, types, problems) -> np.ndarray:
        return np.array(values, dtype=object if _NONE in types else bool)

    def _string(self, col, values, types, problems) -> np.ndarray | None:
        arr = np.array(values, dtype=object)
        if _NONE in types:
            arr[_null_mask(values, True)] = np.nan
        domain = self._domains.get(col.name)
        if domain is not None and self.policy.check_domain and not domain.issuperset(values):
            unseen = set(values) - domain - {None}
            if unseen:
                rows = _rows_where(values, lambda v: v in unseen)
                sample = ", ".join(_preview(v) for v in sorted(unseen)[:5])
                problems.append(
                    serr.problem(
                        col.name,
                        "domain",
                        f"values not seen in training: {sample}; allowed: {sorted(domain)[:20]}",
                        rows,
                    )
                )
                return None
        return arr

    def _datetime(self, col, values, types, problems) -> np.ndarray | None:
        has_null = _NONE in types
        parsed = pd.to_datetime(
            pd.Series(values, dtype=object), errors="coerce", format="ISO8601", utc=True
        )
        bad = parsed.isna().to_numpy() & ~_null_mask(values, has_null)
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(
                serr.problem(
                    col.name,
                    "type",
                    f"not an ISO-8601 datetime (e.g. {_preview(values[rows[0]])})",
                    rows,
                )
            )
            return None
        return parsed.to_numpy()


_CONVERT = {
    "float": Validator._numeric,
    "int": Validator._numeric,
    "bool": Validator._bool,
    "string": Validator._string,
    "datetime": Validator._datetime,
}


def _integral(col, arr: np.ndarray, has_null: bool, problems: list) -> np.ndarray | None:
    """Integer columns accept integral floats (3.0); fractions and >64-bit values are problems."""
    with np.errstate(invalid="ignore"):
        fractional = np.isfinite(arr) & (arr != np.trunc(arr))
        huge = np.abs(arr) >= 2.0**63
    if fractional.any():
        rows = np.flatnonzero(fractional)
        problems.append(serr.problem(col.name, "type", "expected an integer, got a fraction", rows))
        return None
    if huge.any():
        rows = np.flatnonzero(huge)
        problems.append(serr.problem(col.name, "range", "integer does not fit in 64 bits", rows))
        return None
    return arr if has_null else arr.astype(np.int64)


def _null_mask(values: Sequence, has_null: bool) -> np.ndarray:
    if not has_null:
        return np.zeros(len(values), dtype=bool)
    return np.fromiter((v is None for v in values), dtype=bool, count=len(values))


def _rows_where(values: Sequence, predicate) -> list[int]:
    return [i for i, v in enumerate(values) if predicate(v)]


def _preview(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
