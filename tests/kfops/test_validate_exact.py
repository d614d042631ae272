"""Exact findings of each validation check: whole anomalies (rule, severity, text, examples).

Every check is met at its boundary and just past it, so a changed comparison, limit, message or
example list shows here, not only "some anomaly was found".
"""

import pandas as pd
import pytest

from kfops import schema
from kfops.validate import checks
from kfops.validate.results import TABLE, Anomaly, ValidateConfig

CFG = ValidateConfig()
INF = float("inf")


def _spec(name="x", dtype="float", **kw):
    return schema.ColumnSpec(name=name, dtype=dtype, **kw)


def _col(values, spec=None, cfg=CFG, dtype=None):
    spec = spec or _spec()
    return checks.column_checks(pd.Series(values, name=spec.name, dtype=dtype), spec, cfg)


# ---- table checks ---------------------------------------------------------------------------


def _schema():
    return schema.Schema(
        columns=(_spec("x"), _spec("k", "int", role="id"), _spec("y", "int", role="label")),
        label="y",
    )


def test_no_rows_and_missing_columns_are_named_in_schema_order():
    df = pd.DataFrame({"k": pd.Series([], dtype="int64")})
    assert checks.table_checks(df, _schema(), CFG) == [
        Anomaly(TABLE, "no_rows", "error", "the data has no rows"),
        Anomaly(
            "x", "missing_column", "error",
            "the schema expects this feature column (float); it is not in the data",
        ),
        Anomaly(
            "y", "label_missing", "error",
            "the schema expects this label column (int); it is not in the data",
        ),
    ]  # fmt: skip


def test_extra_columns_in_data_order_with_their_severity():
    df = pd.DataFrame({"z": [1], "x": [0.5], "k": [1], "y": [0], 7: [2]})
    unused = "not in the schema, so the model does not use it"
    assert checks.table_checks(df, _schema(), CFG) == [
        Anomaly("z", "extra_column", "error", unused),
        Anomaly("7", "extra_column", "error", unused),
    ]
    lenient = ValidateConfig(extra_column_severity="warning")
    assert checks.table_checks(df, _schema(), lenient) == [
        Anomaly("z", "extra_column", "warning", unused),
        Anomaly("7", "extra_column", "warning", unused),
    ]


def _rows(n, repeats):
    """n rows, the last `repeats` of them copies of the first ones."""
    x = [float(i) for i in range(n - repeats)] + [float(i) for i in range(repeats)]
    return pd.DataFrame({"x": x, "k": [1] * n, "y": [0] * n})


def test_duplicate_rows_at_the_limit_pass_and_above_it_warn_with_positions():
    assert checks.table_checks(_rows(20, 1), _schema(), CFG) == []  # 5.0 % == the limit
    detail = (
        "2 of 20 rows (10.0%) repeat an earlier row exactly, above the limit 5.0%; "
        "examples are row positions"
    )
    want = Anomaly(TABLE, "duplicate_rows", "warning", detail, (18, 19))
    assert checks.table_checks(_rows(20, 2), _schema(), CFG) == [want]
    one = ValidateConfig(max_examples=1)
    assert checks.table_checks(_rows(20, 2), _schema(), one)[0].examples == (18,)


def test_duplicate_rows_need_two_rows_and_hashable_cells():
    none_allowed = ValidateConfig(max_duplicate_fraction=0.0)
    assert checks.table_checks(_rows(1, 0), _schema(), none_allowed) == []
    two = checks.table_checks(_rows(2, 1), _schema(), none_allowed)
    assert [(a.rule, a.examples) for a in two] == [("duplicate_rows", (1,))]
    assert two[0].detail.startswith(
        "1 of 2 rows (50.0%) repeat an earlier row exactly, above the limit 0.0%"
    )
    nested = pd.DataFrame({"x": [[1], [1]], "k": [1, 1], "y": [0, 0]})
    assert checks.table_checks(nested, _schema(), none_allowed) == []


# ---- column checks: order and early stops ------------------------------------------------------


def test_all_null_column_stops_its_checks():
    assert _col([None, None], dtype=float) == [
        Anomaly("x", "all_null", "error", "all 2 values are null")
    ]
    assert _col([], dtype=float) == []  # no rows is the table's finding, not the column's


def test_label_columns_get_only_the_type_check():
    label = _spec("y", "int", role="label")
    assert _col([1.0, None, 1.0], spec=label) == []  # nulls and one class are label checks
    assert _col([None, None], spec=label, dtype=object) == []
    assert _col(["1", "a", "a"], spec=label) == [
        Anomaly(
            "y",
            "type_mismatch",
            "error",
            "the schema says int, the data holds string (object)",
            ("a",),
        )
    ]


def test_type_mismatch_quotes_the_values_that_are_not_numbers():
    detail = "the schema says int, the data holds string (object)"
    values = ["1", "x", "y", "x", "2", None]
    assert _col(values, spec=_spec(dtype="int")) == [
        Anomaly("x", "type_mismatch", "error", detail, ("x", "y"))
    ]
    one = ValidateConfig(max_examples=1)
    assert _col(values, spec=_spec(dtype="int"), cfg=one)[0].examples == ("x",)


def test_type_mismatch_of_non_text_quotes_the_most_frequent_values():
    assert _col([1.5, 2.5, 1.5], spec=_spec(dtype="string")) == [
        Anomaly(
            "x", "type_mismatch", "error",
            "the schema says string, the data holds float (float64)", (1.5, 2.5),
        )
    ]  # fmt: skip
    assert _col([True, True, False], spec=_spec(dtype="int")) == [
        Anomaly(
            "x", "type_mismatch", "error", "the schema says int, the data holds bool (bool)",
            (True, False),
        )
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([1, 2], "float"), ([True, False], "float"), ([1.0, None, 3.0], "int"), ([1, 2], "int")],
)
def test_compatible_types_are_not_a_mismatch(values, dtype):
    assert _col(values, spec=_spec(dtype=dtype)) == []


def test_a_fractional_float_is_not_an_int():
    assert [a.rule for a in _col([1.0, None, 2.5], spec=_spec(dtype="int"))] == ["type_mismatch"]


def test_checks_run_in_order_and_all_report():
    spec = _spec(nullable=False, min=0.0, max=10.0)
    found = _col([1.0, None, INF, 50.0, 2.0], spec=spec)
    assert [a.rule for a in found] == ["unexpected_nulls", "inf_values", "out_of_range"]


# ---- nulls ------------------------------------------------------------------------------------


def test_null_fraction_at_the_limit_passes_and_above_it_fails():
    spec = _spec(max_null_fraction=0.25)
    assert _col([1.0, None, 2.0, 3.0], spec=spec) == []
    assert _col([1.0, None, None, 3.0], spec=spec) == [
        Anomaly("x", "null_fraction", "error", "50.0% null (2 of 4), above the limit 25.0%")
    ]
    tolerant = ValidateConfig(null_tolerance=0.25)
    assert _col([1.0, None, None, 3.0], spec=spec, cfg=tolerant) == []
    assert _col([1.0, None, None, None], spec=spec, cfg=tolerant) == [
        Anomaly("x", "null_fraction", "error", "75.0% null (3 of 4), above the limit 50.0%")
    ]


def test_nulls_in_a_column_that_had_none_warn():
    spec = _spec(nullable=False, max_null_fraction=0.5)
    assert _col([1.0, None, 2.0, 3.0], spec=spec) == [
        Anomaly(
            "x", "unexpected_nulls", "warning", "1 null value(s) (25.00%) in a column that had none"
        )
    ]
    assert _col([1.0, 4.0, 2.0, 3.0], spec=spec) == []


# ---- infinities -------------------------------------------------------------------------------


def test_infinities_are_counted_and_each_sign_quoted_once():
    assert _col([1.0, INF, -INF, INF, 2.0]) == [
        Anomaly(
            "x", "inf_values", "error", "3 infinite value(s); models and metrics cannot use them",
            ("-inf", "inf"),
        )
    ]  # fmt: skip
    assert _col([1.0, None, 2.0]) == []


# ---- mixed types ------------------------------------------------------------------------------


def test_mixed_python_types_name_each_type_with_one_example():
    values = [1, "a", 2.5, "b", None]
    detail = "values of several Python types (float, int, str) in one column"
    assert _col(values, spec=_spec(dtype="string")) == [
        Anomaly("x", "mixed_types", "error", detail, (2.5, 1, "a"))
    ]
    cfg = ValidateConfig(max_examples=2, mixed_types_severity="warning")
    assert _col(values, spec=_spec(dtype="string"), cfg=cfg) == [
        Anomaly("x", "mixed_types", "warning", detail, (2.5, 1))
    ]
    assert _col(values, spec=_spec(dtype="string", role="id")) == []


def test_mixed_types_look_at_the_first_ten_thousand_values():
    values = ["a"] * 10_000 + [5]
    assert _col(values, spec=_spec(dtype="string"))[0].detail == (
        "values of several Python types (str) in one column"
    )


def test_text_that_is_mostly_numbers_has_mixed_types_counted_per_value():
    found = _col(["1"] * 5 + ["x", "x", "y"], spec=_spec(dtype="string"))
    assert found == [
        Anomaly(
            "x",
            "mixed_types",
            "error",
            "62.5% of values are numbers, the rest are text",
            ("x", "y"),
        )
    ]
    at_share = _col(["1", "x", None], spec=_spec(dtype="string"))
    assert [(a.rule, a.detail) for a in at_share] == [
        ("mixed_types", "50.0% of values are numbers, the rest are text")
    ]
    assert _col(["1", "x", "y"], spec=_spec(dtype="string")) == []  # 33 % < 50 %
    assert _col(["1", "2", "2"], spec=_spec(dtype="string")) == []  # all numbers
    one = ValidateConfig(max_examples=1)
    assert _col(["1"] * 5 + ["x", "x", "y"], spec=_spec(dtype="string"), cfg=one)[0].examples == (
        "x",
    )


# ---- ranges -----------------------------------------------------------------------------------


def test_values_within_the_margin_are_near_range_warnings():
    spec = _spec(min=0.0, max=10.0)  # margin 0.2 of width 10: up to 2 beyond
    assert _col([-1.0, 5.0, 11.0, 12.0, -2.0], spec=spec) == [
        Anomaly(
            "x", "near_range", "warning",
            "4 value(s) outside the trained range [0.0, 10.0], within the margin",
            (-2.0, -1.0, 12.0, 11.0),
        )
    ]  # fmt: skip
    assert _col([0.0, 5.0, 10.0], spec=spec) == []


def test_values_beyond_the_margin_block_and_only_they_are_quoted():
    spec = _spec(min=0.0, max=10.0)
    assert _col([-3.0, 5.0, 12.5, 11.0, -1.0, None], spec=spec) == [
        Anomaly(
            "x", "out_of_range", "error",
            "2 value(s) (33.3%) beyond the trained range [0.0, 10.0] by more than the margin "
            "0.2 of its width",
            (-3.0, 12.5),
        )
    ]  # fmt: skip
    cfg = ValidateConfig(range_severity="warning", max_examples=1, range_margin=0.05)
    assert _col([-3.0, -4.0, 5.0, 12.5, 13.0], spec=spec, cfg=cfg) == [
        Anomaly(
            "x", "out_of_range", "warning",
            "4 value(s) (80.0%) beyond the trained range [0.0, 10.0] by more than the margin "
            "0.05 of its width",
            (-4.0, 13.0),
        )
    ]  # fmt: skip


def test_one_value_range_widens_by_a_share_of_the_value():
    spec = _spec(min=100.0, max=100.0)  # slack 20
    found = _col([100.0, 115.0, 121.0], spec=spec)
    assert [(a.rule, a.examples) for a in found] == [("out_of_range", (121.0,))]
    assert _col([100.0, 120.0], spec=spec)[0].rule == "near_range"
    negative = _spec(min=-100.0, max=-100.0)
    assert _col([-100.0, -80.0], spec=negative)[0].rule == "near_range"
    zero = _spec(min=0.0, max=0.0)  # slack 0.2 of 1
    assert [(a.rule, a.examples) for a in _col([0.1, 0.3, 0.0], spec=zero)] == [
        ("out_of_range", (0.3,))
    ]


def test_one_sided_ranges_use_the_bound_as_width():
    low_only = _spec(min=10.0)  # slack 2
    found = _col([9.0, 7.0, 20.0], spec=low_only)
    assert found == [
        Anomaly(
            "x", "out_of_range", "error",
            "1 value(s) (33.3%) beyond the trained range [10.0, None] by more than the margin "
            "0.2 of its width",
            (7.0,),
        )
    ]  # fmt: skip
    high_only = _spec(max=-10.0)  # slack 2
    assert [(a.rule, a.examples) for a in _col([-9.0, -20.0], spec=high_only)] == [
        ("near_range", (-9.0,))
    ]


def test_int_ranges_quote_ints_and_skip_non_numbers():
    spec = _spec(dtype="int", min=0.0, max=10.0)
    assert _col([11, 5], spec=spec)[0].examples == (11,)
    assert type(_col([11, 5], spec=spec)[0].examples[0]) is int
    text = _spec(dtype="string", min=0.0, max=1.0)
    assert (
        _col(["5", "7", "z"] * 2, spec=text, cfg=ValidateConfig(mixed_numeric_fraction=1.0)) == []
    )


def test_infinities_are_not_out_of_range():
    assert [a.rule for a in _col([INF, 5.0], spec=_spec(min=0.0, max=1.0))] == [
        "inf_values",
        "out_of_range",
    ]
    assert [a.rule for a in _col([INF, 0.5], spec=_spec(min=0.0, max=1.0))] == ["inf_values"]


# ---- categories -------------------------------------------------------------------------------


def test_unseen_categories_above_the_tolerance_block():
    spec = _spec(dtype="string", domain=("a", "b"))
    assert _col(["a", "c", "c", "d", None], spec=spec) == [
        Anomaly(
            "x", "unseen_category", "error",
            "3 value(s) (75.0%, tolerance 1.0%) outside the schema's 2 categories ['a', 'b']",
            ("c", "d"),
        )
    ]  # fmt: skip
    one = ValidateConfig(max_examples=1)
    assert _col(["a", "c", "c", "d"], spec=spec, cfg=one)[0].examples == ("c",)


def test_unseen_categories_at_the_tolerance_warn_unless_strict():
    spec = _spec(dtype="string", domain=("a", "b"))
    values = ["a"] * 99 + ["z"]
    detail = "1 value(s) (1.0%, tolerance 1.0%) outside the schema's 2 categories ['a', 'b']"
    assert _col(values, spec=spec) == [Anomaly("x", "unseen_category", "warning", detail, ("z",))]
    strict = ValidateConfig(strict_categories=True)
    assert _col(values, spec=spec, cfg=strict)[0].severity == "error"
    assert _col(["a", "b", "a"], spec=spec) == []


def test_long_domains_are_cut_at_ten_and_numbers_compare_as_text():
    ten = tuple("abcdefghij")
    spec = _spec(dtype="string", domain=ten)
    assert _col(["a", "z"], spec=spec)[0].detail.endswith(
        "outside the schema's 10 categories ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']"
    )
    spec = _spec(dtype="string", domain=(*ten, "k"))
    assert _col(["a", "z"], spec=spec)[0].detail.endswith(
        "outside the schema's 11 categories ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] ..."
    )
    numbers = _spec(dtype="int", domain=("1", "2"))
    assert [(a.rule, a.examples) for a in _col([1, 2, 3, 1], spec=numbers)] == [
        ("unseen_category", ("3",))
    ]


# ---- constant ---------------------------------------------------------------------------------


def test_a_constant_feature_is_named_with_its_value_and_the_way_out():
    spec = _spec("c", "string")
    assert _col(["a", "a", "a"], spec=spec) == [
        Anomaly(
            "c", "constant", "error",
            "every one of 3 rows holds the same value; a model cannot learn from it "
            "(--drop c removes it, --ignore c keeps it out of the model)",
            ("a",),
        )
    ]  # fmt: skip
    lenient = ValidateConfig(constant_severity="warning")
    assert [a.severity for a in _col([7, 7], spec=_spec("c", "int"), cfg=lenient)] == ["warning"]
    assert _col([7, 7], spec=_spec("c", "int"))[0].examples == (7,)


@pytest.mark.parametrize(
    ("values", "role"),
    [
        (["a"], "feature"),
        (["a", None, "a"], "feature"),
        (["a", "a"], "id"),
        (["a", "b"], "feature"),
    ],
)
def test_not_constant(values, role):
    assert _col(values, spec=_spec("c", "string", role=role)) == []


def test_a_parquet_list_column_is_validated_not_crashed(tmp_path):
    """pyarrow reads a list column as numpy arrays, which `!=` cannot compare to one array."""
    pd.DataFrame({"a": [1, 2, 3], "c": [[1, 2], [1, 2], [1, 2]]}).to_parquet(tmp_path / "d.parquet")
    column = pd.read_parquet(tmp_path / "d.parquet")["c"]
    found = checks.column_checks(column, _spec("c", "string"), CFG)
    assert "constant" not in [a.rule for a in found]


def test_ranges_apply_to_number_columns_only():
    flags = _spec(dtype="bool", min=0.0, max=0.0)  # a hand-written schema may bound anything
    assert _col([True, False, True], spec=flags) == []


@pytest.mark.parametrize(
    ("bounds", "rule"), [({"min": 10.0}, "out_of_range"), ({"max": 1.0}, "out_of_range")]
)
def test_one_sided_ranges_of_nullable_ints(bounds, rule):
    """pandas' nullable Int64 cannot compare with None: the unset side must not be compared."""
    found = _col([5, 20, None, 11], spec=_spec(dtype="int", **bounds), dtype="Int64")
    assert [a.rule for a in found] == [rule]


def test_the_margin_is_a_share_of_the_range_width_not_of_its_values():
    spec = _spec(min=100.0, max=110.0)  # width 10: slack 2, whatever the magnitude
    assert [(a.rule, a.examples) for a in _col([105.0, 113.0, 97.0], spec=spec)] == [
        ("out_of_range", (97.0, 113.0))
    ]
    assert [a.rule for a in _col([105.0, 112.0, 98.0], spec=spec)] == ["near_range"]


@pytest.mark.parametrize("dtype", ["float", "bool"])
def test_text_in_a_float_or_bool_column_quotes_only_the_non_numbers(dtype):
    found = _col(["1.5", "0", "x", "x", "y"], spec=_spec(dtype=dtype))
    assert [(a.rule, a.examples) for a in found] == [("type_mismatch", ("x", "y"))]


def test_type_mismatch_quotes_at_most_max_examples_values():
    one = ValidateConfig(max_examples=1)
    assert _col([1.5, 2.5, 1.5], spec=_spec(dtype="string"), cfg=one)[0].examples == (1.5,)
