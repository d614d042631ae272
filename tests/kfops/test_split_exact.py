"""Exact split behaviour at its edges, written from the mutants `make mutation` found alive.

Each test pins a value the first suite only approximated: the whole report, every error's
column, rule and text, the boundaries (2 rows, 2 groups, 2 rows per class, 50 classes), the
seed's effect on every strategy, and that the index is dropped, not kept as a column.
"""

import math

import numpy as np
import pandas as pd
import pytest

from kfops import errors, split


def _frame(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": np.arange(n) % 3,  # three classes of equal size
            "g": np.arange(n) // 2,  # two rows per group
            "t": pd.date_range("2024-01-01", periods=n, freq="D"),
            "v": np.arange(n, dtype=float) * 1.5,
        },
        index=np.arange(100, 100 + n),
    )


def _error(exc_type, fn):
    with pytest.raises(exc_type) as info:
        fn()
    return info.value


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"label": ""}, "split: label must name a column"),
        ({"label": "y", "seed": True}, "seed must be an integer in [0, 4294967295], got True"),
        ({"label": "y", "seed": 1.0}, "seed must be an integer in [0, 4294967295], got 1.0"),
        (
            {"label": "y", "strategy": "time"},
            "strategy 'time' needs time_column (the column that orders rows)",
        ),
        (
            {"label": "y", "strategy": "group"},
            "strategy 'group' needs group_column (rows that must stay together)",
        ),
    ],
)
def test_config_errors_say_exactly_what_is_wrong(kw, message):
    assert str(_error(errors.ConfigError, lambda: split.SplitConfig(**kw))) == message


def test_config_rejects_unknown_task_and_names_the_choice():
    err = _error(errors.ConfigError, lambda: split.SplitConfig(label="y", task="ranking"))
    assert "ranking" in str(err) and "classification" in str(err)
    err = _error(errors.ConfigError, lambda: split.SplitConfig(label="y", strategy="bogus"))
    assert "split strategy" in str(err) and "bogus" in str(err)


@pytest.mark.parametrize(
    ("strategy", "column", "role"),
    [("stratified", "nope", "label"), ("time", "when", "time"), ("group", "who", "group")],
)
def test_missing_column_names_column_rule_and_role(strategy, column, role):
    kw = {"label": "nope" if role == "label" else "y", "strategy": strategy}
    kw.update({"time_column": column} if role == "time" else {})
    kw.update({"group_column": column} if role == "group" else {})
    df = _frame()
    err = _error(errors.SchemaViolation, lambda: split.split(df, split.SplitConfig(**kw)))
    assert err.column == column and err.rule == "present"
    assert f"{role} column not among the data's columns {list(df.columns)}" in str(err)


def test_null_time_values_name_column_rule_and_rows():
    df = _frame()
    df.loc[df.index[[1, 2, 3, 4, 5, 7]], "t"] = pd.NaT
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t")
    err = _error(errors.SchemaViolation, lambda: split.split(df, cfg))
    assert err.column == "t" and err.rule == "not null"
    assert "6 null time values at rows [1, 2, 3, 4, 5]; drop or fill them" in str(err)


def test_two_rows_split_and_one_row_does_not():
    two = _frame(2).assign(y=[0, 1])
    result = split.split(two, split.SplitConfig(label="y", strategy="random", test_fraction=0.5))
    assert len(result.train) == 1 and len(result.test) == 1
    err = _error(errors.DataError, lambda: split.split(two.head(1), split.SplitConfig(label="y")))
    assert str(err) == "split needs at least 2 rows, got 1"


def test_fraction_that_leaves_no_training_row_is_refused_exactly():
    cfg = split.SplitConfig(label="y", strategy="random", test_fraction=0.95)
    err = _error(errors.DataError, lambda: split.split(_frame(10), cfg))
    assert str(err) == "test_fraction 0.95 of 10 rows leaves no training rows"


def test_stratified_accepts_two_rows_per_class_and_one_row_per_class_per_split():
    df = _frame(6)  # classes 0, 1, 2 with two rows each
    result = split.split(df, split.SplitConfig(label="y", test_fraction=0.5))
    assert sorted(result.test["y"]) == [0, 1, 2] and sorted(result.train["y"]) == [0, 1, 2]


def test_stratified_refuses_a_one_row_class_naming_rule_and_class():
    df = pd.concat([_frame(6), _frame(1).assign(y=7)], ignore_index=True)
    err = _error(errors.SchemaViolation, lambda: split.split(df, split.SplitConfig(label="y")))
    assert err.column == "y" and err.rule == "stratified split"
    assert str(err).endswith(
        "1 classes ['7'] have fewer than 2 rows, so they cannot be in both splits; drop them or "
        "use --param split_strategy=random"
    )


@pytest.mark.parametrize(("fraction", "test", "train"), [(0.2, 3, 9), (0.8, 10, 2)])
def test_stratified_refuses_splits_smaller_than_the_class_count(fraction, test, train):
    df = _frame(12).assign(y=np.arange(12) % 4)  # four classes, three rows each
    cfg = split.SplitConfig(label="y", test_fraction=fraction)
    err = _error(errors.SchemaViolation, lambda: split.split(df, cfg))
    assert err.column == "y" and err.rule == "stratified split"
    assert str(err).endswith(
        f"4 classes but only {test} test and {train} train rows; each split needs a row of "
        "every class: add rows or change test_fraction"
    )


def test_stratified_accepts_exactly_one_row_of_each_class_in_test():
    df = _frame(12).assign(y=np.arange(12) % 4)
    result = split.split(df, split.SplitConfig(label="y", test_fraction=4 / 12 - 0.01))
    assert sorted(result.test["y"]) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("strategy", "extra"),
    [("random", {}), ("stratified", {}), ("group", {"group_column": "g"})],
)
def test_every_seeded_strategy_repeats_for_a_seed_and_moves_with_it(strategy, extra):
    df = _frame(60)

    def test_rows(seed):
        cfg = split.SplitConfig(label="y", strategy=strategy, seed=seed, test_fraction=0.3, **extra)
        return split.split(df, cfg).test["x"].tolist()

    assert test_rows(3) == test_rows(3)
    assert test_rows(3) != test_rows(4)


def test_group_split_takes_the_requested_share_of_groups():
    df = _frame(40)  # 20 groups of two rows
    for fraction in (0.5, 0.25):
        cfg = split.SplitConfig(label="y", strategy="group", group_column="g",
                                test_fraction=fraction)  # fmt: skip
        result = split.split(df, cfg)
        assert result.test["g"].nunique() == math.ceil(20 * fraction)
        assert result.report["test"]["groups"] == math.ceil(20 * fraction)
        assert not set(result.test["g"]) & set(result.train["g"])


def test_group_split_works_with_exactly_two_groups_and_not_one():
    df = _frame(4).assign(g=[0, 0, 1, 1])
    cfg = split.SplitConfig(label="y", strategy="group", group_column="g", test_fraction=0.5)
    result = split.split(df, cfg)
    assert result.test["g"].nunique() == 1 and result.train["g"].nunique() == 1
    err = _error(errors.DataError, lambda: split.split(df.assign(g=0), cfg))
    assert str(err) == "group split needs at least 2 groups in 'g', got 1"


def test_group_split_failure_is_a_data_error_with_the_cause():
    df = _frame(4).assign(g=[0, 0, 1, 1])
    cfg = split.SplitConfig(label="y", strategy="group", group_column="g", test_fraction=0.99)
    err = _error(errors.DataError, lambda: split.split(df, cfg))
    assert str(err).startswith("group split over 2 groups failed: ")


def test_splits_drop_the_input_index_instead_of_keeping_it_as_a_column():
    df = _frame(12)
    for strategy, extra in (("random", {}), ("stratified", {})):
        result = split.split(df, split.SplitConfig(label="y", strategy=strategy, **extra))
        assert list(result.train.columns) == list(df.columns)
        assert list(result.test.columns) == list(df.columns)
        assert list(result.test.index) == list(range(len(result.test)))


def test_classification_report_is_exact():
    df = _frame(12)
    result = split.split(df, split.SplitConfig(label="y", seed=5, test_fraction=0.25))
    assert result.report == {
        "strategy": "stratified",
        "requested_strategy": "stratified",
        "task": "classification",
        "seed": 5,
        "test_fraction": 0.25,
        "rows": {"train": 9, "test": 3, "total": 12},
        "train": {
            "rows": 9,
            "class_counts": {"0": 3, "1": 3, "2": 3},
            "class_balance": {"0": 0.333333, "1": 0.333333, "2": 0.333333},
        },
        "test": {
            "rows": 3,
            "class_counts": {"0": 1, "1": 1, "2": 1},
            "class_balance": {"0": 0.333333, "1": 0.333333, "2": 0.333333},
        },
        "notes": [],
        "cross_duplicates": {
            "policy": "drop",
            "test_rows_equal_to_train_rows": 0,
            "dropped_from_test": 0,
            "examples": [],
        },
    }


def test_regression_report_is_exact_and_says_it_fell_back():
    df = _frame(12)
    result = split.split(df, split.SplitConfig(label="v", seed=1, test_fraction=0.25))
    train, test = result.train["v"], result.test["v"]
    assert result.report["strategy"] == "random" and result.report["task"] == "regression"
    assert result.report["notes"] == [
        "label is continuous (regression): stratified split fell back to random"
    ]
    assert result.report["train"] == {
        "rows": 9,
        "label_mean": pytest.approx(float(np.mean(train))),
        "label_std": pytest.approx(float(np.std(train))),  # population std (ddof 0)
    }
    assert result.report["test"]["label_std"] == pytest.approx(float(np.std(test)))


def test_time_report_states_the_ranges_and_the_boundary():
    df = _frame(10)
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t", test_fraction=0.2)
    report = split.split(df, cfg).report
    assert report["test"]["time_min"] == "2024-01-09 00:00:00"
    assert report["train"]["time_max"] == "2024-01-08 00:00:00"
    assert report["notes"] == ["test holds rows with t >= 2024-01-09 00:00:00"]


def test_infer_task_boundary_at_fifty_classes():
    assert split.infer_task(pd.Series(np.arange(50))) == "classification"
    assert split.infer_task(pd.Series(np.arange(51))) == "regression"
    assert split.infer_task(pd.Series([True, False] * 30)) == "classification"
    assert split.infer_task(pd.Series(["a", "b"])) == "classification"


def test_check_disjoint_messages_show_at_most_five_rows():
    with pytest.raises(errors.DataError) as info:
        split.check_disjoint(np.arange(8), np.arange(8), 8)
    assert str(info.value) == "split bug: 8 rows in both train and test, e.g. [0, 1, 2, 3, 4]"
    with pytest.raises(errors.DataError) as info:
        split.check_disjoint(np.arange(2), np.array([], dtype=int), 8)
    assert str(info.value) == "split bug: 6 rows lost or repeated, e.g. rows [2, 3, 4, 5, 6]"


@pytest.mark.parametrize(
    ("train", "test"), [([0, 1], [2, 3, 4]), ([-1, 0], [1, 2]), ([0, 1], [2, 8])]
)
def test_check_disjoint_refuses_positions_outside_the_frame(train, test):
    with pytest.raises(errors.DataError) as info:
        split.check_disjoint(np.array(train), np.array(test), 4)
    assert str(info.value) == "split bug: row positions outside 0..3"


def test_check_disjoint_accepts_the_last_row():
    split.check_disjoint(np.array([0, 1]), np.array([2, 3]), 4)


@pytest.mark.parametrize(
    ("times", "shown"),
    [([5] * 6, "5"), (pd.to_datetime(["2024-01-05"] * 4), "2024-01-05T00:00:00.000000000")],
)
def test_time_split_with_one_timestamp_says_so_in_plain_values(times, shown):
    df = pd.DataFrame({"t": times, "y": [0, 1] * (len(times) // 2)})
    cfg = split.SplitConfig(label="y", strategy="time", time_column="t")
    error = _error(errors.DataError, lambda: split.split(df, cfg))
    assert str(error) == f"time split: every row has 't' >= {shown}; nothing is left to train on"


def test_cross_duplicates_answers_empty_int_positions_when_nothing_can_match():
    df = pd.DataFrame({"x": [1, 1, 2]})
    for train, test in ((np.array([], int), np.array([0, 1])), (np.array([0]), np.array([], int))):
        found = split.cross_duplicates(df, train, test)
        assert (found.dtype, found.size) == (np.dtype(int), 0)
    nested = pd.DataFrame({"x": [[1], [1]]})  # unhashable cells cannot be compared
    found = split.cross_duplicates(nested, np.array([0]), np.array([1]))
    assert (found.dtype, found.size) == (np.dtype(int), 0)


def _handled(policy, repeated, test_size):
    notes = []
    config = split.SplitConfig(label="y", cross_duplicates=policy)
    dropped = split._handle_duplicates(np.array(repeated), np.arange(test_size), config, notes)
    return dropped, notes


def test_duplicate_policies_say_exactly_what_they_did():
    what = "6 test rows equal a training row exactly, e.g. rows [0, 1, 2, 3, 4]"
    dropped, notes = _handled("keep", range(6), 10)
    assert (dropped.dtype, dropped.size) == (np.dtype(int), 0)
    assert notes == [f"{what}; kept (cross_duplicates=keep), so test scores include seen rows"]
    dropped, notes = _handled("drop", range(6), 10)
    assert list(dropped) == list(range(6))
    assert notes == [f"{what}; dropped from test (cross_duplicates=drop)"]
    error = _error(errors.DataError, lambda: _handled("drop", range(6), 6))
    assert str(error) == f"{what}: every test row does; nothing would be left to test on"


def test_report_lists_five_example_duplicates_and_the_strategy_error_names_its_setting():
    df = pd.DataFrame({"x": [1] * 60, "y": [0, 1] * 30})
    cfg = split.SplitConfig(label="y", strategy="random", cross_duplicates="keep")
    report = split.split(df, cfg).report["cross_duplicates"]
    assert report["test_rows_equal_to_train_rows"] > 5
    assert len(report["examples"]) == 5
    error = _error(errors.ConfigError, lambda: split.SplitConfig(label="y", strategy="rolling"))
    assert str(error).startswith("split strategy must be one of ")


def test_an_unknown_duplicate_policy_is_named():
    error = _error(errors.ConfigError, lambda: split.SplitConfig(label="y", cross_duplicates="x"))
    assert str(error).startswith("cross_duplicates must be one of ")
