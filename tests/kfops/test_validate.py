import json
import re

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest

from kfops import errors, schema
from kfops import validate as v
from kfops.reports import validation as rendering
from kfops.validate import stats


def _frame(n=60, seed=0):
    """Small, clean, labelled data: a float, an int, a category, a 0/1 label with noise."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0, 1, n), 3)
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 10, n),
            "c": np.asarray(["a", "b"], dtype=object)[rng.integers(0, 2, n)],
            "y": (x + rng.normal(0, 1.5, n) > 0).astype(int),
        }
    )


def _spec(name, dtype, **kw):
    return schema.ColumnSpec(name=name, dtype=dtype, **kw)


# Tiny frames repeat rows by construction; tests about other rules switch that rule off.
ANY_DUPES = v.ValidateConfig(max_duplicate_fraction=1.0)


def _rules(report):
    return {(a.column, a.rule, a.severity) for a in report.anomalies}


# ---- infer_schema -------------------------------------------------------------------------


def test_infer_schema_records_types_ranges_and_domains():
    df = pd.DataFrame(
        {"i": [1, 5, 3], "f": [0.5, np.nan, 2.0], "s": ["b", "a", "b"], "b": [True, False, True]}
    )
    sch = v.infer_schema(df, None)
    i, f, s, b = sch.columns
    assert (i.dtype, i.min, i.max, i.nullable) == ("int", 1, 5, False)
    assert (f.dtype, f.min, f.max, f.nullable) == ("float", 0.5, 2.0, True)
    assert (s.dtype, s.domain) == ("string", ("a", "b"))
    assert b.dtype == "bool" and b.domain is None
    assert sch.label is None and sch.task is None


def test_infer_schema_allows_observed_nulls_plus_margin():
    df = pd.DataFrame({"f": [1.0, None, 3.0, 4.0]})
    assert v.infer_schema(df, None, null_margin=0.1).column("f").max_null_fraction == 0.35
    assert v.infer_schema(df.dropna(), None).column("f").max_null_fraction == 0.05


def test_infer_schema_skips_domain_for_high_cardinality_text():
    df = pd.DataFrame({"s": [f"v{i % 8}" for i in range(20)]})
    assert v.infer_schema(df, None, max_domain_size=5).column("s").domain is None
    assert len(v.infer_schema(df, None, max_domain_size=8).column("s").domain) == 8


def test_infer_schema_infers_classification_for_int_label():
    sch = v.infer_schema(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 1]}), "y")
    assert sch.task == "classification" and sch.label_classes == (0, 1)
    assert sch.column("y").role == "label" and sch.feature_names == ["x"]


def test_infer_schema_infers_classification_for_string_label():
    sch = v.infer_schema(pd.DataFrame({"x": [1, 2, 3], "y": ["no", "yes", "no"]}), "y")
    assert sch.task == "classification" and sch.label_classes == ("no", "yes")


def test_infer_schema_reads_float_label_with_whole_values_as_classes():
    sch = v.infer_schema(pd.DataFrame({"x": [1, 2, 3], "y": [0.0, 1.0, 1.0]}), "y")
    assert sch.task == "classification" and sch.label_classes == (0, 1)


def test_infer_schema_infers_regression_for_continuous_label():
    sch = v.infer_schema(pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.7, 9.2]}), "y")
    assert sch.task == "regression" and sch.label_classes is None


def test_infer_schema_honours_explicit_task():
    sch = v.infer_schema(pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 2]}), "y", task="regression")
    assert sch.task == "regression" and sch.label_classes is None


def test_infer_schema_marks_unique_strings_as_id():
    df = pd.DataFrame({"name": [f"n{i}" for i in range(60)], "x": range(60)})
    assert v.infer_schema(df, None).column("name").role == "id"
    assert v.infer_schema(df.head(10), None).column("name").role == "feature"


def test_infer_schema_marks_id_named_unique_columns_as_id():
    df = pd.DataFrame({"customer_id": [10, 11, 12], "order_id": ["a", "b", "c"], "x": [1, 2, 3]})
    sch = v.infer_schema(df, None)
    assert sch.column("customer_id").role == "id" and sch.column("order_id").role == "id"
    assert sch.column("x").role == "feature"


def test_infer_schema_applies_declared_roles():
    df = pd.DataFrame(
        {"t": pd.to_datetime(["2024-01-01", "2024-01-02"]), "g": [1, 1], "ref": [7, 8], "y": [0, 1]}
    )
    sch = v.infer_schema(df, "y", time_column="t", group_column="g", id_columns=["ref"])
    assert [c.role for c in sch.columns] == ["time", "group", "id", "label"]


def test_infer_schema_ignores_undeclared_datetime_columns():
    df = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "x": [1, 2]})
    assert v.infer_schema(df, None).column("when").role == "ignore"


def test_infer_schema_names_missing_label_and_lists_columns():
    with pytest.raises(
        errors.SchemaViolation, match="'y' violates label_missing.*columns are: a, b"
    ):
        v.infer_schema(pd.DataFrame({"a": [1], "b": [2]}), "y")


def test_infer_schema_names_missing_time_column():
    with pytest.raises(errors.SchemaViolation, match="'ts' violates time_column_missing"):
        v.infer_schema(pd.DataFrame({"a": [1]}), None, time_column="ts")


def test_infer_schema_refuses_empty_frame():
    with pytest.raises(errors.ConfigError, match="cannot infer a schema from 0 rows"):
        v.infer_schema(pd.DataFrame({"a": []}), None)


def test_infer_schema_output_round_trips_through_json(churn_frame):
    sch = v.infer_schema(churn_frame, "churned")
    assert schema.Schema.from_dict(json.loads(json.dumps(sch.to_dict()))) == sch
    assert "customer_id" not in sch.feature_names and "signup_date" not in sch.feature_names


# ---- validate: table and column rules -----------------------------------------------------


def test_validate_finds_nothing_in_the_data_the_schema_came_from(churn_frame):
    report = v.validate(churn_frame, v.infer_schema(churn_frame, "churned"))
    assert report.anomalies == () and report.ok
    assert (report.n_rows, report.n_columns, report.label) == (800, 13, "churned")


def test_validate_reports_missing_and_extra_columns():
    sch = schema.Schema((_spec("a", "int"), _spec("b", "int")))
    report = v.validate(pd.DataFrame({"a": [1, 2], "z": [3, 4]}), sch)
    # The columns changed: both block by default (the batch no longer matches the contract).
    assert _rules(report) == {("b", "missing_column", "error"), ("z", "extra_column", "error")}


def test_validate_reports_missing_label_as_label_missing():
    sch = schema.Schema((_spec("a", "int"), _spec("y", "int", role="label")), label="y")
    assert ("y", "label_missing", "error") in _rules(v.validate(pd.DataFrame({"a": [1, 2]}), sch))


def test_validate_reports_no_rows():
    sch = schema.Schema((_spec("a", "int"),))
    assert _rules(v.validate(pd.DataFrame({"a": pd.Series([], dtype=int)}), sch)) == {
        ("*", "no_rows", "error")
    }


def test_validate_reports_type_mismatch_with_the_non_numbers():
    sch = schema.Schema((_spec("a", "int"),))
    report = v.validate(pd.DataFrame({"a": ["1", "two", "3"]}), sch)
    (anomaly,) = report.anomalies
    assert (anomaly.rule, anomaly.examples) == ("type_mismatch", ("two",))
    assert "the schema says int, the data holds string" in anomaly.detail


def test_validate_accepts_ints_for_float_and_whole_floats_for_int():
    sch = schema.Schema((_spec("f", "float"), _spec("i", "int")))
    df = pd.DataFrame({"f": [1, 2], "i": [3.0, np.nan]})
    assert v.validate(df, sch).anomalies == ()


def test_validate_refuses_fractional_floats_for_int():
    sch = schema.Schema((_spec("i", "int"),))
    assert _rules(v.validate(pd.DataFrame({"i": [1.5, 2.0]}), sch)) == {
        ("i", "type_mismatch", "error")
    }


def test_validate_reports_null_fraction_over_limit():
    sch = schema.Schema((_spec("a", "float", max_null_fraction=0.25),))
    report = v.validate(pd.DataFrame({"a": [1.0, None, None, 4.0]}), sch, ANY_DUPES)
    (anomaly,) = report.anomalies
    assert anomaly.rule == "null_fraction" and "50.0% null (2 of 4), above the limit 25.0%" in (
        anomaly.detail
    )


def test_validate_null_tolerance_raises_the_limit():
    sch = schema.Schema((_spec("a", "float", max_null_fraction=0.25),))
    cfg = v.ValidateConfig(null_tolerance=0.3, max_duplicate_fraction=1.0)
    assert v.validate(pd.DataFrame({"a": [1.0, None, None, 4.0]}), sch, cfg).anomalies == ()


def test_validate_warns_about_nulls_in_a_column_that_had_none():
    sch = schema.Schema((_spec("a", "float", nullable=False, max_null_fraction=0.5),))
    report = v.validate(pd.DataFrame({"a": [1.0, None, 3.0, 4.0]}), sch)
    assert _rules(report) == {("a", "unexpected_nulls", "warning")}


def test_validate_reports_all_null_column():
    sch = schema.Schema((_spec("a", "float"),))
    assert _rules(v.validate(pd.DataFrame({"a": [None, None]}), sch, ANY_DUPES)) == {
        ("a", "all_null", "error")
    }


def test_validate_reports_infinite_values():
    sch = schema.Schema((_spec("a", "float"),))
    (anomaly,) = v.validate(pd.DataFrame({"a": [1.0, np.inf, -np.inf]}), sch).anomalies
    assert anomaly.rule == "inf_values" and anomaly.examples == ("-inf", "inf")


def test_validate_blocks_values_beyond_the_range_and_its_margin():
    sch = schema.Schema((_spec("a", "int", min=0, max=10),))
    # margin 0.2 of the width 10: [-2, 12] passes as near_range; -3 and 99 are beyond it
    (anomaly,) = v.validate(pd.DataFrame({"a": [-3, 5, 11, 99, -3]}), sch, ANY_DUPES).anomalies
    assert (anomaly.rule, anomaly.severity) == ("out_of_range", "error")
    assert anomaly.examples == (-3, 99) and anomaly.detail.startswith("3 value(s) (60.0%) beyond")


def test_validate_warns_on_values_within_the_margin():
    sch = schema.Schema((_spec("a", "int", min=0, max=10),))
    (anomaly,) = v.validate(pd.DataFrame({"a": [-2, 5, 12]}), sch, ANY_DUPES).anomalies
    assert (anomaly.rule, anomaly.severity, anomaly.examples) == ("near_range", "warning", (-2, 12))
    wider = v.ValidateConfig(range_margin=10.0, max_duplicate_fraction=1.0)
    assert v.validate(pd.DataFrame({"a": [99]}), sch, wider).ok
    narrow = v.ValidateConfig(range_margin=0.0)
    assert ("a", "out_of_range", "error") in _rules(
        v.validate(pd.DataFrame({"a": [11]}), sch, narrow)
    )


def test_rule_severities_override_any_rule():
    sch = schema.Schema((_spec("a", "int", min=0, max=10),))
    relaxed = v.ValidateConfig(rule_severities={"out_of_range": "warning"})
    report = v.validate(pd.DataFrame({"a": [99, 1]}), sch, relaxed)
    assert report.ok and _rules(report) == {("a", "out_of_range", "warning")}
    stricter = v.ValidateConfig(rule_severities={"near_range": "error"})
    assert not v.validate(pd.DataFrame({"a": [11, 1]}), sch, stricter).ok


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"no_such_rule": "error"}, "rule_severities: rule"),
        ({"out_of_range": "fatal"}, "rule_severities['out_of_range']"),
        ("out_of_range", "rule_severities must map"),
    ],
)
def test_rule_severities_refuse_unknown_rules_and_severities(value, message):
    with pytest.raises(errors.ConfigError, match=re.escape(message)):
        v.ValidateConfig(rule_severities=value)


def test_validate_range_severity_can_block():
    sch = schema.Schema((_spec("a", "int", min=0, max=10),))
    cfg = v.ValidateConfig(range_severity="error")
    assert not v.validate(pd.DataFrame({"a": [1, 50]}), sch, cfg).ok


def test_validate_unseen_category_warns_unless_strict():
    sch = schema.Schema((_spec("c", "string", domain=("a", "b")),))
    df = pd.DataFrame({"c": ["a", "zz", "zz", "q"]})
    # 3 of 4 values unseen: far above the default tolerance (1%), so it blocks
    (blocked,) = v.validate(df, sch, ANY_DUPES).anomalies
    assert (blocked.rule, blocked.severity, blocked.examples) == (
        "unseen_category",
        "error",
        ("zz", "q"),
    )
    tolerant = v.ValidateConfig(max_unseen_fraction=0.75, max_duplicate_fraction=1.0)
    (loose,) = v.validate(df, sch, tolerant).anomalies
    assert loose.severity == "warning" and "75.0%, tolerance 75.0%" in loose.detail
    strict_cfg = v.ValidateConfig(
        strict_categories=True, max_unseen_fraction=0.75, max_duplicate_fraction=1.0
    )
    (strict,) = v.validate(df, sch, strict_cfg).anomalies
    assert strict.severity == "error"


def test_validate_compares_non_text_categories_as_text():
    sch = schema.Schema((_spec("c", "string", domain=("1", "2")),))
    df = pd.DataFrame({"c": pd.Series([1, 2, 3], dtype=object).astype(str)})
    assert [a.examples for a in v.validate(df, sch).anomalies] == [("3",)]


def test_validate_warns_about_duplicate_rows_above_threshold():
    sch = schema.Schema((_spec("a", "int"), _spec("b", "string")))
    df = pd.DataFrame({"a": [1, 1, 2, 3], "b": ["x", "x", "y", "z"]})
    (anomaly,) = v.validate(df, sch).anomalies
    assert (anomaly.column, anomaly.rule, anomaly.severity) == ("*", "duplicate_rows", "warning")
    assert anomaly.examples == (1,)
    assert v.validate(df, sch, v.ValidateConfig(max_duplicate_fraction=0.3)).anomalies == ()


def test_validate_reports_constant_feature():
    sch = schema.Schema((_spec("a", "int"),))
    (anomaly,) = v.validate(pd.DataFrame({"a": [7, 7, 7]}), sch, ANY_DUPES).anomalies
    assert (anomaly.rule, anomaly.severity, anomaly.examples) == ("constant", "error", (7,))
    cfg = v.ValidateConfig(constant_severity="warning", max_duplicate_fraction=1.0)
    assert v.validate(pd.DataFrame({"a": [7, 7, 7]}), sch, cfg).ok


def test_validate_constant_ignores_non_features_and_columns_with_nulls():
    sch = schema.Schema((_spec("g", "int", role="group"), _spec("a", "float")))
    df = pd.DataFrame({"g": [1, 1, 1], "a": [2.0, None, 2.0]})
    assert v.validate(df, sch, ANY_DUPES).anomalies == ()


def test_validate_reports_mixed_python_types():
    sch = schema.Schema((_spec("a", "string"),))
    (anomaly,) = v.validate(pd.DataFrame({"a": [1, "x", 2]}), sch).anomalies
    assert anomaly.rule == "mixed_types" and "(int, str)" in anomaly.detail
    assert anomaly.examples == (1, "x")


def test_validate_reports_text_among_numbers():
    sch = schema.Schema((_spec("a", "string"),))
    df = pd.DataFrame({"a": ["1.5", "2", "3e2", "oops", "4"]})
    (anomaly,) = v.validate(df, sch).anomalies
    assert anomaly.rule == "mixed_types" and anomaly.examples == ("oops",)
    assert anomaly.detail.startswith("80.0% of values are numbers")


def test_validate_accepts_text_with_a_few_numbers():
    sch = schema.Schema((_spec("a", "string"),))
    df = pd.DataFrame({"a": ["red", "blue", "green", "7"]})
    assert v.validate(df, sch).anomalies == ()


# ---- validate: label rules and leakage ----------------------------------------------------


def _labelled_schema(df, **kw):
    return v.infer_schema(df, "y", **kw)


def test_validate_reports_label_nulls_with_row_positions():
    df = _frame()
    sch = _labelled_schema(df)
    df["y"] = df["y"].astype(float)
    df.loc[[4, 8], "y"] = np.nan
    (anomaly,) = v.validate(df, sch).anomalies
    assert (anomaly.rule, anomaly.examples) == ("label_nulls", (4, 8))


def test_validate_reports_single_class_label():
    df = _frame()
    sch = _labelled_schema(df)
    df["y"] = 1
    (anomaly,) = [a for a in v.validate(df, sch).anomalies if a.column == "y"]
    assert (anomaly.rule, anomaly.examples) == ("label_single_class", (1,))


def test_validate_reports_constant_regression_target():
    df = pd.DataFrame({"x": range(10), "y": [2.5] * 10})
    sch = v.infer_schema(df, "y", task="regression")
    assert ("y", "label_constant", "error") in _rules(v.validate(df, sch))


def test_validate_unseen_label_class_warns_unless_strict():
    df = _frame()
    sch = _labelled_schema(df)
    df.loc[0, "y"] = 2
    # a new class changes the task: it blocks unless its severity is lowered on purpose
    assert ("y", "label_unseen_class", "error") in _rules(v.validate(df, sch))
    relaxed = v.ValidateConfig(rule_severities={"label_unseen_class": "warning"})
    assert ("y", "label_unseen_class", "warning") in _rules(v.validate(df, sch, relaxed))


def test_validate_flags_numeric_feature_that_separates_binary_label():
    df = _frame(200)
    df["leak"] = df["y"] * 3 + df["k"] / 100
    (anomaly,) = v.validate(df, _labelled_schema(df)).anomalies
    assert (anomaly.column, anomaly.rule, anomaly.severity) == ("leak", "leakage", "error")
    assert "ROC AUC 1.0000 on 200 sampled rows" in anomaly.detail


def test_validate_flags_category_that_maps_to_one_class_each():
    df = _frame(200)
    df["status"] = np.where(df["y"] == 1, "cancelled", "active")
    (anomaly,) = v.validate(df, _labelled_schema(df)).anomalies
    assert (anomaly.column, anomaly.rule) == ("status", "leakage") and "purity 1.0000" in (
        anomaly.detail
    )


def test_validate_ignores_pure_category_that_always_predicts_the_majority():
    df = pd.DataFrame({"y": [0] * 198 + [1, 1], "c": ["a", "b"] * 100, "x": np.arange(200.0)})
    report = v.validate(df, _labelled_schema(df), v.ValidateConfig(leakage_threshold=0.95))
    assert "leakage" not in {a.rule for a in report.anomalies if a.column == "c"}


def test_validate_flags_feature_that_ranks_regression_target():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"noise": rng.normal(size=100), "y": rng.normal(size=100)})
    df["twice"] = df["y"] * 2 + 1
    report = v.validate(df, v.infer_schema(df, "y"))
    assert {(a.column, a.rule) for a in report.anomalies} == {("twice", "leakage")}


def test_validate_flags_numeric_feature_that_bins_a_multiclass_label():
    df = pd.DataFrame({"y": np.repeat([0, 1, 2], 100), "noise": np.tile(np.arange(100.0), 3)})
    df["leak"] = df["y"] * 10.0 + np.tile(np.linspace(0, 1, 100), 3)
    report = v.validate(df, v.infer_schema(df, "y"))
    assert {(a.column, a.rule) for a in report.anomalies} == {("leak", "leakage")}
    assert "sorted-neighbour agreement 1.0000" in report.anomalies[0].detail


def test_validate_skips_leakage_on_too_few_rows():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 0, 1, 1]})
    assert v.validate(df, v.infer_schema(df, "y")).anomalies == ()


def test_validate_leakage_can_be_turned_off():
    df = _frame(200)
    df["leak"] = df["y"] * 3.0
    cfg = v.ValidateConfig(leakage_threshold=None)
    assert v.validate(df, _labelled_schema(df), cfg).anomalies == ()


def test_validate_leakage_uses_a_bounded_sample():
    df = _frame(1000)
    df["leak"] = df["y"] * 3.0
    cfg = v.ValidateConfig(leakage_sample_rows=100)
    (anomaly,) = v.validate(df, _labelled_schema(df), cfg).anomalies
    assert "on 100 sampled rows" in anomaly.detail


def test_validate_does_not_flag_churn_features_as_leakage(churn_frame):
    report = v.validate(churn_frame, v.infer_schema(churn_frame, "churned"))
    assert "leakage" not in {a.rule for a in report.anomalies}


# ---- report, config and raising -----------------------------------------------------------


def _mixed_report():
    sch = schema.Schema((_spec("a", "int", min=0, max=5), _spec("b", "float")))
    loose = v.ValidateConfig(range_severity="warning", extra_column_severity="warning")
    return v.validate(pd.DataFrame({"a": [1, 9], "b": [np.inf, 1.0], "z": [0, 0]}), sch, loose)


def test_report_lists_errors_before_warnings():
    report = _mixed_report()
    assert [a.severity for a in report.anomalies] == ["error", "warning", "warning"]
    assert len(report.blocking) == 1 and len(report.warnings) == 2 and not report.ok


def test_report_round_trips_through_json():
    report = _mixed_report()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["blocking"] == 1 and data["warnings"] == 2 and data["ok"] is False
    assert v.ValidationReport.from_dict(data) == report


def test_raise_for_blocking_lists_every_blocking_anomaly():
    sch = schema.Schema((_spec("a", "float"), _spec("c", "string", domain=("x",))))
    df = pd.DataFrame({"a": [np.inf, 1.0], "c": ["x", "bad"]})
    report = v.validate(df, sch, v.ValidateConfig(strict_categories=True))
    with pytest.raises(errors.ValidationFailed) as caught:
        v.raise_for_blocking(report)
    message = str(caught.value)
    assert message.startswith("2 blocking anomalies")
    assert "column 'a' violates inf_values" in message and "['inf']" in message
    assert "column 'c' violates unseen_category" in message and "['bad']" in message
    assert [(e.column, e.rule) for e in caught.value.violations] == [
        ("a", "inf_values"),
        ("c", "unseen_category"),
    ]


def test_raise_for_blocking_ignores_warnings():
    sch = schema.Schema((_spec("a", "int", min=0, max=10),))
    report = v.validate(pd.DataFrame({"a": [0, 11]}), sch)
    assert report.warnings
    v.raise_for_blocking(report)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_duplicate_fraction": 1.5}, "max_duplicate_fraction must be a number in \\[0, 1\\]"),
        ({"leakage_threshold": -0.1}, "leakage_threshold must be"),
        ({"range_severity": "fatal"}, "range_severity must be one of"),
        ({"leakage_sample_rows": 0}, "leakage_sample_rows must be >= 1"),
    ],
)
def test_validate_config_refuses_bad_values(kwargs, message):
    with pytest.raises(errors.ConfigError, match=message):
        v.ValidateConfig(**kwargs)


def test_validation_markdown_shows_verdict_and_each_anomaly():
    text = rendering.validation_markdown(_mixed_report())
    assert "FAILED: 1 blocking, 2 warning(s) in 2 rows x 3 columns" in text
    assert "| error | b | inf_values |" in text and "| warning | z | extra_column |" in text


def test_validation_html_escapes_values_and_says_passed():
    sch = schema.Schema((_spec("c", "string", domain=("x",)),))
    report = v.validate(
        pd.DataFrame({"c": ["<script>"]}), sch, v.ValidateConfig(max_unseen_fraction=1)
    )
    page = rendering.validation_html(report)
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "PASSED" in page and page.startswith("<!doctype html>")


def test_validation_reports_say_when_there_are_no_anomalies(churn_frame):
    report = v.validate(churn_frame, v.infer_schema(churn_frame, "churned"))
    assert "No anomalies" in rendering.validation_markdown(report)
    assert "No anomalies" in rendering.validation_html(report)


def test_duplicate_mask_matches_pandas_with_nulls_and_text():
    df = pd.DataFrame(
        {
            "f": [1.0, np.nan, 1.0, np.nan, 2.0, 1.0],
            "s": ["a", None, "a", None, "a", "b"],
            "i": [1, 2, 1, 2, 1, 1],
        }
    )
    assert stats.duplicate_mask(df).tolist() == df.duplicated().tolist()
    assert stats.duplicate_mask(df).tolist() == [False, False, True, True, False, False]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([0.5, 1.5, None]), st.sampled_from(["a", "b", None]), st.integers(0, 2)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_duplicate_mask_agrees_with_dataframe_duplicated(rows):
    df = pd.DataFrame(rows, columns=["f", "s", "i"])
    assert stats.duplicate_mask(df).tolist() == df.duplicated().tolist()


def test_leakage_ranks_equal_scipys_rankdata_with_ties_and_infinities():
    """The leakage checks rank with pandas (no scipy import in the validate step): same ranks."""
    from scipy import stats as sp_stats

    from kfops.validate import stats as vstats

    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(1, 400))
        x = rng.integers(0, int(rng.integers(1, 20)), n).astype(float)  # many ties
        if trial % 3 == 0:
            x = rng.normal(size=n)
        x[: trial % 4] = np.inf
        assert np.array_equal(vstats._ranks(x), sp_stats.rankdata(x)), trial
