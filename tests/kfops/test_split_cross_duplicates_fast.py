"""split.cross_duplicates narrows candidates on the typed (non-object) columns first.

The answer must be the plain one: every test row equal, in every column, to some training row.
The frames hold near-duplicates on both kinds of column (same numbers but another string, same
string but another number), nulls in both, and exact repeats.
"""

import numpy as np
import pandas as pd
import pytest

from kfops import split


def reference(df: pd.DataFrame, train_pos: np.ndarray, test_pos: np.ndarray) -> np.ndarray:
    """Test positions equal to some training row, by a merge over all columns (no hashing)."""
    test = df.iloc[test_pos].assign(_pos=test_pos)
    both = test.merge(df.iloc[train_pos].drop_duplicates(), how="inner", on=list(df.columns))
    return np.sort(np.unique(both["_pos"].to_numpy()))


def frame(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "s": rng.choice(["a", "b", "c", None], size=n).astype(object),
            "x": rng.integers(0, 4, size=n).astype(float),
            "k": rng.integers(0, 3, size=n),
            "t": pd.to_datetime(rng.integers(0, 3, size=n), unit="D"),
        }
    )
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    return df


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cross_duplicates_equal_the_plain_comparison(seed):
    df = frame(seed)
    rng = np.random.default_rng(seed + 10)
    order = rng.permutation(len(df))
    train_pos, test_pos = np.sort(order[:450]), np.sort(order[450:])
    got = split.cross_duplicates(df, train_pos, test_pos)
    want = reference(df, train_pos, test_pos)
    assert 0 < want.size < test_pos.size  # some but not all test rows repeat a training row
    np.testing.assert_array_equal(got, want)


def test_rows_equal_on_numbers_but_not_strings_are_not_duplicates():
    df = pd.DataFrame({"s": ["a", "b", "a", "c"], "x": [1.0, 1.0, 2.0, 2.0]})
    got = split.cross_duplicates(df, np.array([0, 2]), np.array([1, 3]))
    assert got.size == 0
    got = split.cross_duplicates(df, np.array([0, 3]), np.array([1, 2]))
    assert got.size == 0  # "a" appears in train, 2.0 appears in train, but not as one row
    df.loc[3, "s"] = "a"
    got = split.cross_duplicates(df, np.array([0, 3]), np.array([1, 2]))
    np.testing.assert_array_equal(got, [2])


def test_candidates_are_narrowed_on_the_typed_columns_only():
    # the numbers and dates decide which rows go on to the whole-row comparison
    df = pd.DataFrame({"s": ["a", "a", "b", "a"], "x": [1.0, 2.0, 1.0, 3.0], "k": [0, 0, 0, 0]})
    train_pos, test_pos = split._equal_on_typed_columns(df, np.array([0, 3]), np.array([1, 2]))
    np.testing.assert_array_equal(test_pos, [2])  # (1.0, 0) is in train; (2.0, 0) is not
    np.testing.assert_array_equal(train_pos, [0])  # only train rows a candidate can equal
