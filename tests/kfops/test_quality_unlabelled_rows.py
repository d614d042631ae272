"""Rows without a label are left out of conflicting labels and group balance, and only they."""

import numpy as np
import pandas as pd

from kfops import validate as v


def test_unlabelled_rows_neither_conflict_nor_count_in_group_balance():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n).round(6),
            "sex": rng.choice(["f", "m"], n),
            "y": rng.integers(0, 2, n).astype(float),
        }
    )
    # 7 rows repeated with the other label: conflicts; 7 more repeated without a label: not
    df = pd.concat(
        [df, df.iloc[:7].assign(y=1 - df["y"].iloc[:7]), df.iloc[7:14].assign(y=np.nan)],
        ignore_index=True,
    )
    sch = v.infer_schema(df.dropna(), "y")
    report = v.validate(df, sch, v.ValidateConfig(), sensitive_column="sex")
    (conflict,) = [a for a in report.anomalies if a.rule == "conflicting_labels"]
    assert conflict.detail.startswith("14 rows in 7 sets of identical features")
    groups = report.quality["class_balance_by_group"]["groups"]
    assert groups[-1] == {
        "group": "(all)",
        "rows": n + 7,
        "class_share": {
            str(k): round(float(c), 4)
            for k, c in df["y"].dropna().astype(str).value_counts(normalize=True).items()
        },
    }
    assert sum(g["rows"] for g in groups[:-1]) == n + 7


def test_group_balance_groups_by_text_whatever_the_values_types():
    n = 300
    mixed = pd.Series([1, "1", "x"] * (n // 3), dtype=object)  # 1 and "1": one group "1"
    numbers = pd.Series([2, 10, 10] * (n // 3))  # as text "10" sorts before "2"
    df = pd.DataFrame({"m": mixed, "k": numbers, "y": [0, 1, 1, 0, 1] * (n // 5)})
    sch = v.infer_schema(df, "y")
    for column, expected in (("m", ["1", "x", "(all)"]), ("k", ["10", "2", "(all)"])):
        report = v.validate(df, sch, v.ValidateConfig(), sensitive_column=column)
        groups = report.quality["class_balance_by_group"]["groups"]
        assert [g["group"] for g in groups] == expected
