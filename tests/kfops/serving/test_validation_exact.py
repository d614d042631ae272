"""Every problem the request validator reports, exactly: field, rule, detail, rows, count.

Written from the mutants `make mutation` found alive in kfops/serving/validation.py: the first
suite checked that bad requests fail, not what the 400 body says about them.
"""

import datetime as dt

import numpy as np
import pytest

from kfops import schema
from kfops.serving import errors as serr
from kfops.serving import validation

MISSING = validation.MISSING


def _spec():
    cols = (
        schema.ColumnSpec("i", "int", nullable=False, min=0, max=10),
        schema.ColumnSpec("f", "float", nullable=True, min=-1.0, max=1.0),
        schema.ColumnSpec("b", "bool", nullable=False),
        schema.ColumnSpec("s", "string", nullable=True, domain=("a", "b")),
        schema.ColumnSpec("d", "datetime", nullable=True),
        schema.ColumnSpec("y", "int", role="label"),
    )
    return schema.Schema(cols, "y", "classification", (0, 1))


GOOD = {
    "i": [1, 2, 3],
    "f": [0.5, None, -0.5],
    "b": [True, False, True],
    "s": ["a", None, "b"],
    "d": ["2024-01-01T00:00:00Z", None, "2024-01-02"],
}


def _problems(columns, n_rows=3, policy=validation.DEFAULT_POLICY, found=()):
    with pytest.raises(serr.InvalidInput) as info:
        validation.Validator(_spec(), policy).validate(columns, n_rows, found)
    return [(p.field, p.rule, p.detail, p.rows, p.n_rows) for p in info.value.problems]


def test_valid_request_converts_every_column():
    out = validation.Validator(_spec()).validate(GOOD, 3)
    assert out.n_rows == 3 and list(out.arrays) == ["i", "f", "b", "s", "d"]
    assert out.arrays["i"].dtype == np.int64 and out.arrays["i"].tolist() == [1, 2, 3]
    assert out.arrays["f"].dtype == np.float64 and np.isnan(out.arrays["f"][1])
    assert out.arrays["b"].dtype == bool
    assert out.arrays["s"][0] == "a" and out.arrays["s"][1] != out.arrays["s"][1]  # NaN
    assert str(out.arrays["d"][0]).startswith("2024-01-01")
    assert out.out_of_range == {}
    assert list(out.frame.columns) == ["i", "f", "b", "s", "d"]


def test_unexpected_and_missing_inputs_are_named_with_rows():
    cols = {**GOOD, "zz": [1, MISSING, 3]}
    del cols["b"]
    assert _problems(cols) == [
        ("zz", "unexpected", "not an input of this model; inputs: ['i', 'f', 'b', 's', 'd']; "
         "to accept it unused (logged with the request): --passthrough zz", (0, 2), 2),
        ("b", "missing", "required input (true or false)", (), 0),
    ]  # fmt: skip


def test_a_field_the_codec_already_reported_is_not_reported_again():
    cols = {k: v for k, v in GOOD.items() if k != "d"}
    found = [serr.problem("d", "type", "codec says no")]
    assert _problems(cols, found=found) == [("d", "type", "codec says no", (), 0)]


def test_wrong_length_is_a_shape_problem():
    assert _problems({**GOOD, "f": [0.1, 0.2]}) == [
        ("f", "shape", "has 2 values, expected 3", (), 0)
    ]


def test_absent_and_null_values_in_instances_name_their_rows():
    cols = {**GOOD, "i": [1, MISSING, None], "b": [None, True, None]}
    assert _problems(cols) == [
        ("i", "missing", "absent from these instances", (1,), 1),
        ("i", "null", "null is not allowed: the schema marks this input non-nullable", (2,), 1),
        ("b", "null", "null is not allowed: the schema marks this input non-nullable", (0, 2), 2),
    ]


def test_wrong_json_types_name_the_type_and_an_example():
    cols = {**GOOD, "i": [1, "two", [3]], "s": ["a", 5, "b"], "b": [True, 1, False]}
    assert _problems(cols) == [
        ("i", "type", "expected an integer, got array, string (e.g. 'two')", (1, 2), 2),
        ("b", "type", "expected true or false, got integer (e.g. 1)", (1,), 1),
        ("s", "type", "expected a string, got integer (e.g. 5)", (1,), 1),
    ]


def test_non_finite_numbers_and_fractions_are_refused():
    cols = {**GOOD, "f": [float("nan"), None, float("inf")], "i": [1, 2.5, 3]}
    assert _problems(cols) == [
        ("i", "type", "expected an integer, got a fraction", (1,), 1),
        ("f", "finite", "NaN/Infinity not allowed", (0, 2), 2),
    ]


def test_integral_floats_are_integers_and_huge_ones_are_refused():
    ok = validation.Validator(_spec()).validate({**GOOD, "i": [1.0, 2, 3.0]}, 3)
    assert ok.arrays["i"].dtype == np.int64 and ok.arrays["i"].tolist() == [1, 2, 3]
    assert _problems({**GOOD, "i": [1.0, 2.0**63, 3]}) == [
        ("i", "range", "integer does not fit in 64 bits", (1,), 1)
    ]
    # Python ints past 64 bits fail numpy's conversion as a whole: the column, without rows.
    assert _problems({**GOOD, "i": [1, 2**64, 3]}) == [
        ("i", "range", "integer does not fit in 64 bits", (), 0)
    ]


def test_out_of_range_values_are_counted_and_refused_only_when_asked():
    cols = {**GOOD, "i": [-1, 5, 11], "f": [2.0, None, 0.0]}
    passed = validation.Validator(_spec()).validate(cols, 3)
    assert passed.out_of_range == {"i": (1, 1), "f": (0, 1)}
    strict = validation.ValidationPolicy(check_range=True)
    assert _problems(cols, policy=strict) == [
        ("i", "range", "outside [0, 10] (e.g. -1)", (0, 2), 2),
        ("f", "range", "outside [-1.0, 1.0] (e.g. 2.0)", (0,), 1),
    ]


def test_range_on_long_columns_and_at_the_bounds():
    n = 40
    cols = {k: (v * 14)[:n] for k, v in GOOD.items()}
    cols["i"] = [0] * (n - 1) + [10]  # both bounds are inside
    assert validation.Validator(_spec()).validate(cols, n).out_of_range == {}
    cols["i"] = [0] * (n - 1) + [11]
    assert validation.Validator(_spec()).validate(cols, n).out_of_range == {"i": (0, 1)}


def test_unseen_category_is_refused_with_the_domain_unless_the_policy_allows_it():
    cols = {**GOOD, "s": ["a", "zz", "c"]}
    assert _problems(cols) == [
        ("s", "domain", "values not seen in training: 'c', 'zz'; allowed: ['a', 'b']", (1, 2), 2)
    ]
    lax = validation.ValidationPolicy(check_domain=False)
    assert validation.Validator(_spec(), lax).validate(cols, 3).arrays["s"].tolist() == [
        "a",
        "zz",
        "c",
    ]


def test_bad_datetime_is_named_with_an_example():
    cols = {**GOOD, "d": ["2024-01-01", "yesterday", None]}
    assert _problems(cols) == [
        ("d", "type", "not an ISO-8601 datetime (e.g. 'yesterday')", (1,), 1)
    ]
    parsed = validation.Validator(_spec()).validate(GOOD, 3).arrays["d"]
    assert str(parsed[1]) == "NaT"
    assert parsed[0] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # UTC-aware


def test_bool_column_with_nulls_keeps_them():
    spec = schema.Schema((schema.ColumnSpec("b", "bool", nullable=True),), None)
    out = validation.Validator(spec).validate({"b": [True, None]}, 2)
    assert out.arrays["b"].dtype == object and out.arrays["b"].tolist() == [True, None]


def test_long_examples_are_cut():
    long = "x" * 60
    problems = _problems({**GOOD, "d": [long, None, None]})
    assert problems[0][2] == f"not an ISO-8601 datetime (e.g. {repr(long)[:37]}...)"


def test_the_absent_marker_reads_as_missing():
    assert repr(MISSING) == "<missing>"


def test_datetimes_are_utc_whether_sent_naive_or_with_an_offset():
    """Naive strings are taken as UTC and offsets converted to it: one tz-aware UTC column."""
    spec = schema.Schema((schema.ColumnSpec("d", "datetime", nullable=True),), None)
    validator = validation.Validator(spec)
    naive = validator.validate({"d": ["2024-01-01", "2024-01-02T03:00:00"]}, 2).arrays["d"]
    mixed = validator.validate({"d": ["2024-01-01T01:00:00+01:00", "2024-01-01"]}, 2).arrays["d"]
    assert [str(v) for v in naive] == ["2024-01-01 00:00:00+00:00", "2024-01-02 03:00:00+00:00"]
    assert [str(v) for v in mixed] == ["2024-01-01 00:00:00+00:00"] * 2


def test_integral_floats_up_to_the_64_bit_limit_are_integers_and_nulls_stay_nan():
    ok = validation.Validator(_spec()).validate({**GOOD, "i": [200.0, 2.0**62, 3]}, 3)
    assert ok.arrays["i"].dtype == np.int64 and ok.arrays["i"].tolist() == [200, 2**62, 3]
    spec = schema.Schema((schema.ColumnSpec("n", "int", nullable=True),), None)
    out = validation.Validator(spec).validate({"n": [1.0, None, 3]}, 3).arrays["n"]
    assert out.dtype == np.float64
    assert out[[0, 2]].tolist() == [1.0, 3.0] and np.isnan(out[1])


def test_an_example_is_shown_whole_up_to_40_characters():
    fits, cut = "a" * 38, "a" * 39  # their reprs are 40 and 41 characters
    assert _problems({**GOOD, "f": [fits, None, cut]})[0][2] == (
        f"expected a number, got string (e.g. '{fits}')"
    )
    assert _problems({**GOOD, "f": [cut, None, fits]})[0][2] == (
        f"expected a number, got string (e.g. {repr(cut)[:37]}...)"
    )


def test_each_column_has_its_dtype_even_with_no_rows_and_strings_stay_python_objects():
    """Batch scoring validates whole shards, which can be empty: the columns keep their types."""
    empty = validation.Validator(_spec()).validate({k: [] for k in GOOD}, 0).arrays
    dtypes = {k: v.dtype for k, v in empty.items()}
    assert dtypes == {"i": np.int64, "f": np.float64, "b": bool, "s": object, "d": object}
    one = {"i": [1], "f": [1.0], "b": [True], "s": ["a"], "d": ["2024-01-01"]}
    assert validation.Validator(_spec()).validate(one, 1).arrays["s"].dtype == object


def test_an_unseen_category_message_shows_five_values_and_twenty_allowed():
    domain = tuple(f"c{n:02d}" for n in range(21))
    spec = schema.Schema((schema.ColumnSpec("s", "string", domain=domain),), None)
    unseen = [f"u{n}" for n in range(6)]
    with pytest.raises(serr.InvalidInput) as info:
        validation.Validator(spec).validate({"s": unseen}, 6)
    (problem,) = info.value.problems
    assert problem.detail == (
        f"values not seen in training: 'u0', 'u1', 'u2', 'u3', 'u4'; allowed: {list(domain[:20])}"
    )
    assert problem.rows == tuple(range(6))


def test_passthrough_fields_are_kept_as_sent_and_a_model_input_stays_an_input():
    policy = validation.ValidationPolicy(passthrough=("i", "rid"))
    validator = validation.Validator(_spec(), policy)
    assert validator.dtypes == {
        "i": "int",
        "f": "float",
        "b": "bool",
        "s": "string",
        "d": "datetime",
    }
    out = validator.validate({**GOOD, "rid": [7, MISSING, "x"]}, 3)
    assert out.passthrough == {"rid": [7, None, "x"]}
    assert out.arrays["i"].tolist() == [1, 2, 3]
    assert validator.validate(GOOD, 3).passthrough == {}
    with pytest.raises(serr.InvalidInput) as info:
        validator.validate({**GOOD, "rid": [7, 8]}, 3)
    problems = [(p.field, p.rule, p.detail, p.rows) for p in info.value.problems]
    assert problems == [("rid", "shape", "has 2 values, expected 3", ())]


def test_an_unexpected_field_lists_twelve_inputs_and_a_derived_one_names_its_inputs():
    cols = tuple(schema.ColumnSpec(f"x{n:02d}", "float") for n in range(13))
    spec = schema.Schema(cols, None)
    validator = validation.Validator(spec, derived={"ratio": ("x00", "x01")})
    data = {f"x{n:02d}": [1.0] for n in range(13)}
    with pytest.raises(serr.InvalidInput) as info:
        validator.validate({**data, "zz": [1], "ratio": [0.5]}, 1)
    names = ", ".join(f"'x{n:02d}'" for n in range(12))
    assert [(p.field, p.rule, p.detail) for p in info.value.problems] == [
        (
            "zz",
            "unexpected",
            f"not an input of this model; inputs: [{names}, ... +1 more]; "
            "to accept it unused (logged with the request): --passthrough zz",
        ),
        (
            "ratio",
            "unexpected",
            "a derived feature the model computes itself; send its inputs ['x00', 'x01'] instead",
        ),
    ]


def test_a_field_the_codec_reported_does_not_stop_the_checks_of_the_next_ones():
    cols = {k: v for k, v in GOOD.items() if k not in ("i", "b")}
    found = [serr.problem("i", "type", "codec says no")]
    assert _problems(cols, found=found) == [
        ("i", "type", "codec says no", (), 0),
        ("b", "missing", "required input (true or false)", (), 0),
    ]


def test_infinity_in_a_column_without_nulls_is_named():
    assert _problems({**GOOD, "f": [0.5, float("-inf"), 0.0]}) == [
        ("f", "finite", "NaN/Infinity not allowed", (1,), 1)
    ]


def test_a_python_type_json_has_no_name_for_is_named_by_python():
    """Batch scoring hands the validator Python values, not only JSON ones (bytes here)."""
    assert _problems({**GOOD, "f": [b"x", None, 1.0]})[0][2] == (
        "expected a number, got bytes (e.g. b'x')"
    )


def test_a_column_with_one_bound_is_checked_on_that_side_only():
    cols = (
        schema.ColumnSpec("lo", "float", min=0.0),
        schema.ColumnSpec("hi", "int", max=10),
        schema.ColumnSpec("s", "string", min=0.0, max=1.0),  # bounds only mean something on numbers
    )
    validator = validation.Validator(schema.Schema(cols, None))
    data = {"lo": [-1.0, 5e9, 0.0], "hi": [11, -(10**9), 10], "s": ["a", "b", "c"]}
    assert validator.validate(data, 3).out_of_range == {"lo": (1, 0), "hi": (0, 1)}
    inside = {"lo": [0.0, 5e9, 1.0], "hi": [10, -(10**9), 0], "s": ["a", "b", "c"]}
    assert validator.validate(inside, 3).out_of_range == {}
