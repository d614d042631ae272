"""Checking a compiled pipeline against the sklearn pipeline it was compiled from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kfops import schema
from kfops.serving import validation
from kfops.serving.fastpath.compiler import CompiledPipeline

RTOL, ATOL = 1e-9, 1e-12


def verify(
    compiled: CompiledPipeline, fitted: Any, probe_sets: list[Mapping[str, np.ndarray]]
) -> str | None:
    """None when the compiled form answers every probe as `fitted` does, else the first difference.

    Each probe set is checked as a batch and then row by row (the single-row form). If sklearn
    refuses a set, the compiled form must refuse it too (at request time a refusal falls back to
    sklearn, which then gives its own error); if sklearn answers, the compiled form must give the
    same labels and the same numbers (to 1e-9 relative).
    """
    with np.errstate(all="ignore"):  # probes near the float64 limit overflow on purpose
        return _verify(compiled, fitted, probe_sets)


def _verify(compiled, fitted, probe_sets) -> str | None:
    want_proba = hasattr(fitted, "predict_proba")
    for i, (columns, expected) in enumerate(
        zip(probe_sets, _answers(fitted, probe_sets, want_proba), strict=True)
    ):
        problem = _compare(expected, lambda c=columns: compiled.predict(c, want_proba))
        if problem:
            return f"probe set {i}: {problem}"
        if expected is None:
            continue
        for j in range(len(expected[0])):
            row = {n: columns[n][j : j + 1].item() for n in compiled.inputs}
            want = (expected[0][j : j + 1], None if expected[1] is None else expected[1][j : j + 1])
            problem = _compare(want, lambda r=row: compiled.predict_row(r, want_proba))
            if problem:
                return f"probe set {i}, row {j} alone: {problem}"
    return None


def _answers(fitted: Any, probe_sets: list[Mapping[str, np.ndarray]], want_proba: bool) -> list:
    """The sklearn answer to each probe set (None where it refuses the set).

    Sets with the same columns and dtypes are asked together, one predict (and predict_proba)
    for all of them, and the answers cut back per set: each sklearn call has a fixed cost (an
    HGB model's 200 trees, ~6 ms), so verifying the 100k-row churn model took 75-95 CPU ms with
    2 calls x 6 sets and takes 14-18 ms with 2 calls in all.
    Answers are per row, as the row-alone checks in `_verify` already require. When sklearn
    refuses a joined batch, each of its sets is asked alone, so a refused set is still found.
    """
    answers: list = [None] * len(probe_sets)
    groups: dict[tuple, list[int]] = {}
    for i, columns in enumerate(probe_sets):
        key = tuple((name, np.asarray(v).dtype.str) for name, v in columns.items())
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        joined = None
        if len(members) > 1:
            names = list(probe_sets[members[0]])
            both = {n: np.concatenate([probe_sets[i][n] for i in members]) for n in names}
            joined = _sklearn(fitted, both, want_proba)
        if joined is None:
            for i in members:
                answers[i] = _sklearn(fitted, probe_sets[i], want_proba)
            continue
        labels, proba = joined
        start = 0
        for i in members:
            end = start + len(next(iter(probe_sets[i].values())))
            answers[i] = (labels[start:end], None if proba is None else proba[start:end])
            start = end
    return answers


def _sklearn(fitted: Any, columns: Mapping[str, np.ndarray], want_proba: bool):
    frame = pd.DataFrame(dict(columns), copy=False)
    try:
        proba = fitted.predict_proba(frame) if want_proba else None
        return np.asarray(fitted.predict(frame)), proba
    except Exception:  # noqa: BLE001 (sklearn refusing is an outcome the compiled form must match)
        return None


def _compare(expected, run) -> str | None:
    try:
        got = run()
    except Exception as e:  # noqa: BLE001
        return None if expected is None else f"compiled form failed where sklearn answered: {e}"
    if expected is None:
        return "sklearn refused it but the compiled form answered"
    (want_y, want_p), (got_y, got_p) = expected, got
    got_y = np.asarray(got_y)
    if want_y.shape != got_y.shape:
        return f"predict shape {got_y.shape} instead of {want_y.shape}"
    if want_y.dtype.kind in "fc":
        if not np.allclose(want_y, got_y, rtol=RTOL, atol=ATOL, equal_nan=True):
            return "predict values differ"
    elif not np.array_equal(want_y, got_y):
        return "predicted labels differ"
    if want_p is not None and (
        got_p is None
        or want_p.shape != got_p.shape
        or not np.allclose(want_p, got_p, rtol=RTOL, atol=ATOL)
    ):
        return "predict_proba values differ"
    return None


def probes(spec: schema.Schema) -> list[dict[str, np.ndarray]]:
    """Validated probe columns for `verify`, built from the schema the server validates against.

    Sets: every known category and range point (several rows, then the first row alone); nulls
    where the schema allows them; categories training never saw; numbers far outside the training
    range; and numbers near the float64 limit (which sklearn refuses once scaling overflows them).
    Each goes through a `Validator` (accepting unseen values), so dtypes are exactly those of real
    requests; a set the validator refuses is left out.
    """
    validator = validation.Validator(spec, validation.ValidationPolicy(False, False))
    known, nulls, unseen_cats, far, huge = {}, {}, {}, {}, {}
    for col in spec.features:
        values = known[col.name] = _known_values(col)
        nulls[col.name] = ([None] if col.nullable else []) + values[:1]
        unseen_cats[col.name] = ["<kfops-unseen>", ""] if col.dtype == "string" else values
        far[col.name] = _far_values(col) if col.dtype in ("int", "float") else values
        huge[col.name] = [1e308, -1e308] if col.dtype == "float" else values[:1]
    every = _rows(known)
    sets = [every, every[:1], *(_rows(v) for v in (nulls, unseen_cats, far, huge))]
    out = []
    for rows in sets:
        columns = {name: [r[name] for r in rows] for name in known}
        try:
            out.append(validator.validate(columns, len(rows)).arrays)
        except Exception:  # noqa: BLE001,S112 (a probe the schema refuses tells nothing)
            continue
    return out


def _rows(values: dict[str, list]) -> list[dict]:
    """Rows in which every value of every column appears (column k shifted by k)."""
    n = max(len(v) for v in values.values())
    return [
        {name: v[(i + k) % len(v)] for k, (name, v) in enumerate(values.items())} for i in range(n)
    ]


def _known_values(col: schema.ColumnSpec) -> list:
    if col.dtype == "bool":
        return [True, False]
    if col.dtype in ("int", "float"):
        lo = col.min if col.min is not None else 0
        hi = col.max if col.max is not None else lo + 100
        points = [lo, hi, lo + (hi - lo) / 2, lo + (hi - lo) / 3]
        return [int(p) for p in points] if col.dtype == "int" else [float(p) for p in points]
    if col.dtype == "string":
        return list(col.domain) or ["a", "b"]
    # Derived date parts read these: every weekday, months and hours at both ends, a leap day,
    # before 1970 (negative epoch nanoseconds), and offsets other than UTC.
    return [
        "2020-01-01T00:00:00",
        "2020-02-29T23:59:59Z",
        "2021-12-31T12:30:00+02:00",
        "1969-07-20T20:17:40Z",
        "2024-06-03T01:00:00-05:00",
        "2023-03-15T08:00:00",
        "2022-10-08T18:45:00Z",
    ]


def _far_values(col: schema.ColumnSpec) -> list:
    """Ten spans outside the training range each way, and zero (kept within int64)."""
    lo = col.min if col.min is not None else 0
    hi = col.max if col.max is not None else lo + 100
    span = max(hi - lo, 1)
    points = [max(lo - 10 * span, -(2.0**62)), min(hi + 10 * span, 2.0**62), 0]
    return [int(p) for p in points] if col.dtype == "int" else [float(p) for p in points]
