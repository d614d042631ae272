"""The null-concentration check hashes each slice column once: same anomalies as grouping by it.

`_reference` is the check written with pandas' groupby per (null column, slice column), as it
was before the slice columns were factorized once; both must agree on every case, ties included.
"""

import numpy as np
import pandas as pd
import pytest

from kfops import validate as v
from kfops.validate import quality


def _reference(df, sch, slices):
    found = []
    for spec in sch.columns:
        if spec.name not in df.columns or spec.role in ("id", "ignore"):
            continue
        nulls = df[spec.name].isna()
        count = int(nulls.sum())
        if count < quality.MIN_NULLS or count == len(df):
            continue
        overall, best = count / len(df), None
        for column in [s for s in slices if s != spec.name]:
            keys = df[column].astype(str).where(df[column].notna(), "<null>")
            stats = nulls.groupby(keys, sort=True).agg(["mean", "size", "sum"])
            if len(stats) > quality.MAX_SLICE_VALUES:
                continue
            stats = stats[stats["size"] >= quality.MIN_SLICE_ROWS]
            hot = stats[
                (stats["mean"] >= quality.CONCENTRATION * overall)
                & (stats["mean"] - overall >= quality.MIN_EXCESS)
            ]
            for value, row in hot.iterrows():
                if best is None or float(row["mean"]) > best[2]:
                    share = float(row["sum"]) / count
                    best = (column, str(value), float(row["mean"]), int(row["size"]), share)
        if best is not None:
            found.append((spec.name, best))
    return found


def _case(seed, n=3000):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west", None], n),
            "plan": rng.choice(["a", "b", "c"], n),
            "tier": rng.integers(0, 3, n).astype(float),
            "grp": np.repeat(["g2", "g1", "g0", "g3"], [100, 100, 10, n - 210]),
            "many": rng.integers(0, 60, n).astype(str),
            "income": rng.normal(50, 5, n),
            "age": rng.normal(40, 9, n),
            "score": rng.normal(0, 1, n),
            "y": rng.integers(0, 2, n),
        }
    )
    df.loc[df.sample(frac=0.02, random_state=seed).index, "tier"] = np.nan
    north = np.flatnonzero(df["region"] == "north")
    df.loc[north[:: 2 + seed % 2], "income"] = np.nan  # about half of north
    df.loc[200:209, "income"] = np.nan  # every row of g0: too few rows to count as a slice
    # the same count in two slices of the same size: a tie, the first value in order wins
    df.loc[[*range(50), *range(100, 150)], "age"] = np.nan
    df.loc[np.flatnonzero(df["many"] == "7")[: 20 + seed], "score"] = np.nan  # too many values
    df.loc[rng.choice(n, 4, replace=False), "plan"] = None  # fewer nulls than MIN_NULLS
    return df


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_null_concentration_equals_grouping_each_column_by_each_slice(seed):
    df = _case(seed)
    sch = v.infer_schema(df, "y")
    slices = quality._slice_columns(df, sch, "many")
    assert {"region", "plan", "grp", "many"} <= set(slices)
    got = quality._null_concentration(df, sch, slices, v.ValidateConfig())
    want = _reference(df, sch, slices)
    assert [(c, b[1]) for c, b in want] == [("income", "north"), ("age", "g1")]
    assert [(a.column, a.examples[0]) for a in got] == [(c, b[1]) for c, b in want]
    for anomaly, (_, (column, value, rate, size, share)) in zip(got, want, strict=True):
        assert f"{column}={value!r}: {rate:.1%} of its {size} rows" in anomaly.detail
        assert f"({share:.0%} of this column's" in anomaly.detail


def test_nulls_concentrated_where_the_slice_is_null_name_it_null():
    df = _case(0)
    unknown = np.flatnonzero(df["region"].isna())
    df.loc[unknown[::2], "score"] = np.nan  # half the rows with no region
    sch = v.infer_schema(df, "y")
    slices = quality._slice_columns(df, sch, "many")
    got = quality._null_concentration(df, sch, slices, v.ValidateConfig())
    want = _reference(df, sch, slices)
    assert ("score", "<null>") in [(c, b[1]) for c, b in want]
    assert [(a.column, a.examples[0]) for a in got] == [(c, b[1]) for c, b in want]
