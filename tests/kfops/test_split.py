import json

import numpy as np
import pandas as pd
import pytest

from kfops import errors, split


def _frame(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "x": rng.normal(size=n),
            "y": np.where(np.arange(n) % 4 == 0, 1, 0),  # exactly 25% positives
            "customer": np.arange(n) // 5,  # 5 rows per customer
            "t": pd.date_range("2024-01-01", periods=n, freq="D"),
        }
    )


def test_split_config_rejects_unknown_strategy():
    with pytest.raises(errors.ConfigError, match="strategy"):
        split.SplitConfig(label="y", strategy="bogus")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_config_rejects_test_fraction_outside_open_unit_interval(fraction):
    with pytest.raises(errors.ConfigError, match="test_fraction"):
        split.SplitConfig(label="y", test_fraction=fraction)


def test_split_config_requires_time_column_for_time_strategy():
    with pytest.raises(errors.ConfigError, match="time_column"):
        split.SplitConfig(label="y", strategy="time")


def test_split_config_requires_group_column_for_group_strategy():
    with pytest.raises(errors.ConfigError, match="group_column"):
        split.SplitConfig(label="y", strategy="group")


def test_split_config_rejects_negative_seed():
    with pytest.raises(errors.ConfigError, match="seed"):
        split.SplitConfig(label="y", seed=-1)


def test_split_stratified_keeps_class_share_equal_in_both_splits():
    parts = split.split(_frame(200), split.SplitConfig(label="y", test_fraction=0.2))
    assert len(parts.test) == 40
    assert parts.train["y"].mean() == pytest.approx(0.25)
    assert parts.test["y"].mean() == pytest.approx(0.25)


def test_split_rows_are_disjoint_and_cover_the_input():
    parts = split.split(_frame(101), split.SplitConfig(label="y"))
    rows = sorted(parts.train["row"].tolist() + parts.test["row"].tolist())
    assert rows == list(range(101))


def test_split_keeps_original_row_order_and_fresh_index():
    parts = split.split(_frame(), split.SplitConfig(label="y", strategy="random", seed=3))
    assert parts.train["row"].is_monotonic_increasing
    assert list(parts.test.index) == list(range(len(parts.test)))


def test_split_is_deterministic_for_a_seed():
    a = split.split(_frame(), split.SplitConfig(label="y", seed=7))
    b = split.split(_frame(), split.SplitConfig(label="y", seed=7))
    assert a.test["row"].tolist() == b.test["row"].tolist()


def test_split_differs_between_seeds():
    a = split.split(_frame(), split.SplitConfig(label="y", seed=1))
    b = split.split(_frame(), split.SplitConfig(label="y", seed=2))
    assert a.test["row"].tolist() != b.test["row"].tolist()


def test_split_ignores_a_duplicated_input_index():
    df = _frame(50)
    df.index = [0] * 50
    parts = split.split(df, split.SplitConfig(label="y"))
    assert len(parts.train) + len(parts.test) == 50
    assert set(parts.train["row"]).isdisjoint(parts.test["row"])


def test_split_time_strategy_puts_latest_rows_in_test():
    df = _frame(10).sample(frac=1.0, random_state=0)  # shuffled input
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t", test_fraction=0.3)
    parts = split.split(df, cfg)
    assert parts.test["t"].min() > parts.train["t"].max()
    assert len(parts.test) == 3


def test_split_time_strategy_sends_boundary_ties_to_test():
    df = pd.DataFrame({"t": [1, 2, 3, 3, 3, 4], "y": [0, 1, 0, 1, 0, 1]})
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t", test_fraction=0.4)
    parts = split.split(df, cfg)
    assert sorted(parts.test["t"]) == [3, 3, 3, 4]
    assert sorted(parts.train["t"]) == [1, 2]


def test_split_time_strategy_fails_when_every_row_shares_the_boundary_time():
    df = pd.DataFrame({"t": [5] * 6, "y": [0, 1] * 3})
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t")
    with pytest.raises(errors.DataError, match="nothing is left to train on"):
        split.split(df, cfg)


def test_split_time_strategy_reports_time_ranges():
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t", test_fraction=0.1)
    report = split.split(_frame(10), cfg).report
    assert report["test"]["time_min"] == "2024-01-10 00:00:00"
    assert report["train"]["time_max"] == "2024-01-09 00:00:00"


def test_split_group_strategy_never_shares_a_group():
    cfg = split.SplitConfig(label="y", strategy="group", group_column="customer", seed=4)
    parts = split.split(_frame(200), cfg)
    assert set(parts.train["customer"]).isdisjoint(parts.test["customer"])
    assert parts.report["test"]["groups"] + parts.report["train"]["groups"] == 40


def test_split_group_strategy_needs_two_groups():
    df = _frame(20).assign(customer=1)
    cfg = split.SplitConfig(label="y", strategy="group", group_column="customer")
    with pytest.raises(errors.DataError, match="at least 2 groups"):
        split.split(df, cfg)


def test_split_stratified_fails_clearly_when_a_class_has_one_row():
    df = pd.DataFrame({"x": range(10), "y": ["a"] * 5 + ["b"] * 4 + ["rare"]})
    with pytest.raises(
        errors.SchemaViolation, match=r"1 classes \['rare'\].*--param split_strategy=random"
    ) as info:
        split.split(df, split.SplitConfig(label="y"))
    assert info.value.column == "y"


def test_split_random_strategy_accepts_a_class_with_one_row():
    df = pd.DataFrame({"x": range(10), "y": ["a"] * 5 + ["b"] * 4 + ["rare"]})
    parts = split.split(df, split.SplitConfig(label="y", strategy="random"))
    assert len(parts.test) == 2


def test_split_stratified_falls_back_to_random_for_a_continuous_label_and_says_so():
    df = pd.DataFrame({"x": range(100), "y": np.linspace(0.0, 1.0, 100)})
    parts = split.split(df, split.SplitConfig(label="y"))
    assert parts.report["strategy"] == "random"
    assert parts.report["requested_strategy"] == "stratified"
    assert "fell back to random" in parts.report["notes"][0]
    assert "label_mean" in parts.report["test"]


def test_split_reports_rows_and_class_balance_per_split():
    report = split.split(_frame(200), split.SplitConfig(label="y")).report
    assert report["rows"] == {"train": 160, "test": 40, "total": 200}
    assert report["test"]["class_counts"] == {"0": 30, "1": 10}
    assert report["train"]["class_balance"] == {"0": 0.75, "1": 0.25}


def test_split_report_is_json_ready():
    report = split.split(_frame(), split.SplitConfig(label="y")).report
    assert json.loads(json.dumps(report)) == report


def test_split_fails_when_the_label_is_missing():
    with pytest.raises(errors.SchemaViolation, match="'target'"):
        split.split(_frame(), split.SplitConfig(label="target"))


def test_split_fails_on_null_labels_naming_the_rows():
    df = _frame(20)
    df["y"] = df["y"].astype(float)
    df.loc[[3, 7], "y"] = np.nan
    with pytest.raises(errors.SchemaViolation, match=r"2 null label values at rows \[3, 7\]"):
        split.split(df, split.SplitConfig(label="y"))


def test_split_fails_on_a_single_row():
    with pytest.raises(errors.DataError, match="at least 2 rows"):
        split.split(_frame(1), split.SplitConfig(label="y", strategy="random"))


def test_check_disjoint_raises_when_a_row_is_in_both_splits():
    with pytest.raises(errors.DataError, match="in both train and test"):
        split.check_disjoint(np.array([0, 1, 2]), np.array([2, 3]), 4)


def test_check_disjoint_raises_when_a_row_is_lost():
    with pytest.raises(errors.DataError, match="lost or repeated"):
        split.check_disjoint(np.array([0, 1]), np.array([3]), 4)


def test_infer_task_treats_integer_codes_as_classes_and_fractions_as_continuous():
    assert split.infer_task(pd.Series([0, 1, 2, 1])) == "classification"
    assert split.infer_task(pd.Series([0.0, 1.0, 1.0])) == "classification"
    assert split.infer_task(pd.Series(["yes", "no"])) == "classification"
    assert split.infer_task(pd.Series([0.5, 1.25])) == "regression"
    assert split.infer_task(pd.Series(range(500))) == "regression"
