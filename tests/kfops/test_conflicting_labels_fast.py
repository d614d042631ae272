"""Conflicting labels are found among rows repeating on the typed features first (#17).

kfops.validate.quality hashes whole rows only where the numbers and dates already repeat. The
anomaly must name the rows the plain rule names: identical features (strings included), labels
that differ, with nulls equal to nulls.
"""

import numpy as np
import pandas as pd
import pytest

from kfops import validate as v
from kfops.validate import quality


def plain(df: pd.DataFrame, features: list[str], label: str) -> tuple[int, int, tuple]:
    """(conflicting rows, sets, first row labels) by grouping on every feature, no hashing."""
    keys = df[features].astype(str)  # NaN and None group as text, which equals their hash rule
    groups = df.groupby([keys[c] for c in features], sort=False, dropna=False)[label]
    classes = groups.transform("nunique").to_numpy()
    rows = np.flatnonzero(classes > 1)
    sets = keys.iloc[rows].drop_duplicates().shape[0]
    return rows.size, sets, tuple(int(i) for i in df.index[rows][:5])


def frame(seed: int, n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=n).astype(float)
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "s": rng.choice(["a", "b"], size=n).astype(object),
            "x": x,
            "k": rng.integers(0, 150, size=n),  # many rows unique on the numbers
            "y": rng.integers(0, 2, size=n),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conflicting_labels_match_the_plain_grouping(seed):
    df = frame(seed)
    found = quality._conflicting_labels(df, v.infer_schema(df, "y"), v.ValidateConfig())
    count, sets, rows = plain(df, ["s", "x", "k"], "y")
    assert count > 0 and found is not None
    assert found.detail.startswith(f"{count} rows in {sets} sets of identical features")
    assert found.examples == rows


def test_rows_equal_on_numbers_but_not_on_strings_do_not_conflict():
    df = pd.DataFrame({"s": ["a", "b"] * 20, "x": [1.0] * 40, "y": [0, 1] * 20})
    assert quality._conflicting_labels(df, v.infer_schema(df, "y"), v.ValidateConfig()) is None
    df["s"] = "a"
    found = quality._conflicting_labels(df, v.infer_schema(df, "y"), v.ValidateConfig())
    assert found is not None and found.detail.startswith("40 rows in 1 sets")
