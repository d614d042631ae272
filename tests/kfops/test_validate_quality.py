"""Data-quality checks beyond the schema: conflicting labels, concentrated nulls, group balance."""

import numpy as np
import pandas as pd

from kfops import validate as v


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n).round(6),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "income": rng.normal(50, 5, n),
            "sex": rng.choice(["f", "m"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def _found(report, rule):
    return [a for a in report.anomalies if a.rule == rule]


def test_identical_features_with_different_labels_are_reported():
    df = _frame()
    clean = v.validate(df, v.infer_schema(df, "y"))
    assert _found(clean, "conflicting_labels") == []
    conflicted = pd.concat([df, df.iloc[:7].assign(y=1 - df["y"].iloc[:7])], ignore_index=True)
    (anomaly,) = _found(
        v.validate(conflicted, v.infer_schema(conflicted, "y")), "conflicting_labels"
    )
    assert anomaly.severity == "warning"
    assert anomaly.detail.startswith("14 rows in 7 sets of identical features")
    assert anomaly.examples == (0, 1, 2, 3, 4)


def test_same_features_and_same_label_are_duplicates_not_conflicts():
    df = _frame()
    repeated = pd.concat([df, df.iloc[:7]], ignore_index=True)
    report = v.validate(repeated, v.infer_schema(repeated, "y"))
    assert _found(report, "conflicting_labels") == []


def test_nulls_concentrated_in_one_slice_are_reported_with_the_slice():
    df = _frame()
    north = np.flatnonzero(df["region"] == "north")
    df.loc[north[: len(north) // 2], "income"] = np.nan  # half of north, none elsewhere
    df.loc[np.flatnonzero(df["region"] == "south")[:2], "income"] = np.nan
    (anomaly,) = _found(v.validate(df, v.infer_schema(df, "y")), "null_concentration")
    assert anomaly.column == "income" and anomaly.examples == ("north",)
    assert "region='north'" in anomaly.detail


def test_nulls_spread_evenly_are_not_concentrated():
    df = _frame()
    df.loc[::8, "income"] = np.nan
    assert _found(v.validate(df, v.infer_schema(df, "y")), "null_concentration") == []


def test_class_balance_per_sensitive_group_is_in_the_report_and_skew_is_flagged():
    df = _frame()
    women = df["sex"] == "f"
    df.loc[women, "y"] = (np.arange(women.sum()) % 10 == 0).astype(int)  # 10% positives
    report = v.validate(df, v.infer_schema(df, "y"), sensitive_column="sex")
    table = report.to_dict()["quality"]["class_balance_by_group"]
    assert table["column"] == "sex"
    groups = {row["group"]: row for row in table["groups"]}
    assert groups["f"]["rows"] == int(women.sum())
    assert groups["f"]["class_share"]["1"] == round(float(df.loc[women, "y"].mean()), 4)
    assert groups["(all)"]["class_share"]["1"] == round(float(df["y"].mean()), 4)
    flagged = {a.examples for a in _found(report, "group_class_balance")}
    assert ("f",) in flagged
    assert v.ValidationReport.from_dict(report.to_dict()) == report


def test_balanced_groups_are_reported_but_not_flagged():
    df = _frame()
    report = v.validate(df, v.infer_schema(df, "y"), sensitive_column="sex")
    assert _found(report, "group_class_balance") == []
    assert len(report.quality["class_balance_by_group"]["groups"]) == 3
    assert v.validate(df, v.infer_schema(df, "y")).quality == {}
