"""Validator unit tests on tiny inline columns (no server)."""

import numpy as np
import pytest

from kfops import schema
from kfops.serving import errors as serr
from kfops.serving import validation

SPEC = schema.Schema(
    (
        schema.ColumnSpec("n", "int", nullable=False, min=0, max=10),
        schema.ColumnSpec("x", "float", nullable=True),
        schema.ColumnSpec("c", "string", nullable=True, domain=("a", "b")),
        schema.ColumnSpec("t", "datetime", nullable=True),
    )
)


def _problems(columns, n_rows, policy=validation.DEFAULT_POLICY):
    with pytest.raises(serr.InvalidInput) as info:
        validation.Validator(SPEC, policy).validate(columns, n_rows)
    return {(p.field, p.rule): p for p in info.value.problems}


def _ok(**overrides):
    cols = {"n": [1, 2], "x": [0.5, None], "c": ["a", None], "t": ["2024-01-01T00:00:00Z", None]}
    return {**cols, **overrides}


def test_validate_builds_typed_frame_with_nulls_as_nan():
    out = validation.Validator(SPEC).validate(_ok(), 2)
    assert out.frame["n"].dtype == np.int64
    assert np.isnan(out.frame["x"][1]) and out.frame["c"][1] != out.frame["c"][1]
    assert list(out.frame.columns) == ["n", "x", "c", "t"]


def test_validate_accepts_integral_floats_for_int_columns():
    out = validation.Validator(SPEC).validate(_ok(n=[3.0, 4]), 2)
    assert out.frame["n"].tolist() == [3, 4] and out.frame["n"].dtype == np.int64


def test_validate_rejects_integer_beyond_64_bits_even_without_range_check():
    off = validation.ValidationPolicy(check_range=False, check_domain=False)
    assert "64 bits" in _problems(_ok(n=[2**64 - 1, 1]), 2, off)[("n", "range")].detail
    assert "64 bits" in _problems(_ok(n=[1e30, 1]), 2, off)[("n", "range")].detail


def test_validate_accepts_and_counts_out_of_range_by_default():
    out = validation.Validator(SPEC).validate(
        _ok(n=[99, -3, 5], x=[1.0, 2.0, None], c=["a"] * 3, t=[None] * 3), 3
    )
    assert out.frame["n"].tolist() == [99, -3, 5]
    assert out.out_of_range == {"n": (1, 1)}


def test_validate_counts_nothing_when_values_in_range():
    assert validation.Validator(SPEC).validate(_ok(), 2).out_of_range == {}


def test_validate_rejects_out_of_range_when_range_check_on():
    on = validation.ValidationPolicy(check_range=True)
    problem = _problems(_ok(n=[1, 11]), 2, on)[("n", "range")]
    assert problem.rows == (1,) and "11" in problem.detail


def test_validate_still_rejects_unseen_category_by_default():
    assert ("c", "domain") in _problems(_ok(c=["zzz", "a"]), 2)


def test_validate_policy_off_accepts_out_of_range_and_unseen_category():
    off = validation.ValidationPolicy(check_range=False, check_domain=False)
    out = validation.Validator(SPEC, off).validate(_ok(n=[99, 1], c=["zzz", "a"]), 2)
    assert out.frame["n"].tolist() == [99, 1]


def test_validate_names_at_most_ten_rows_but_counts_all():
    bad = ["q"] * 25
    problem = _problems(_ok(n=[1] * 25, x=[1.0] * 25, c=bad, t=[None] * 25), 25)[("c", "domain")]
    assert problem.rows == tuple(range(10)) and problem.n_rows == 25
    assert "+15 more" in str(problem)


def test_validate_rejects_unparseable_datetime():
    assert ("t", "type") in _problems(_ok(t=["yesterday", None]), 2)


def test_validate_reports_length_mismatch_as_shape():
    assert ("x", "shape") in _problems(_ok(x=[1.0]), 2)


def test_validate_reports_every_problem_at_once():
    found = _problems({"n": [None, -1], "x": ["1", 2], "c": [1, "a"], "bogus": [1, 2]}, 2)
    assert set(found) == {
        ("n", "null"),
        ("x", "type"),
        ("c", "type"),
        ("t", "missing"),
        ("bogus", "unexpected"),
    }
