"""The data steps' shortcuts give what the plain pandas/numpy calls gave (issue 17).

split: `_member` is np.isin by a hash table; `_rows` is iloc + reset_index(drop=True) without
the copy. ingest: a Parquet file whose frame already has the default index is returned as read.
"""

import numpy as np
import pandas as pd
import pytest

from kfops import split
from kfops.ingest import readers


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_member_is_np_isin(seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**64 - 1, size=3000, dtype=np.uint64)
    values = np.concatenate([keys[:500], rng.integers(0, 2**64 - 1, 500, dtype=np.uint64)])
    pool = np.concatenate([keys[250:2000], keys[250:400]])  # repeats in the pool
    want = np.isin(values, pool)
    assert 0 < want.sum() < want.size
    np.testing.assert_array_equal(split._member(values, pool), want)
    np.testing.assert_array_equal(split._member(pool, values), np.isin(pool, values))
    np.testing.assert_array_equal(split._member(values, pool[:0]), np.zeros(values.size, bool))
    ints = rng.integers(0, 50, 200)
    np.testing.assert_array_equal(split._member(ints, ints[:20]), np.isin(ints, ints[:20]))


def test_split_parts_equal_iloc_and_reset_index_and_own_their_data():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "s": rng.choice(["a", "b", None], n).astype(object),
            "x": rng.random(n),
            "y": rng.integers(0, 2, n),
        },
        index=pd.RangeIndex(1000, 1000 + 2 * n, 2),  # the frame's index is ignored
    )
    parts = split.split(df, split.SplitConfig(label="y", seed=3))
    assert len(parts.train) + len(parts.test) == n
    for part in (parts.train, parts.test):
        assert isinstance(part.index, pd.RangeIndex)
        assert part.index.equals(pd.RangeIndex(len(part)))
    # the same rows as the plain calls, in the original order
    train_pos, test_pos = split._SPLITTERS["stratified"](
        df, np.arange(n), split.SplitConfig(label="y", seed=3)
    )
    pd.testing.assert_frame_equal(parts.train, df.iloc[train_pos].reset_index(drop=True))
    pd.testing.assert_frame_equal(parts.test, df.iloc[test_pos].reset_index(drop=True))
    before = df.copy()
    parts.train.loc[0, "x"] = -1.0  # writing to a part never writes to the input frame
    parts.test.loc[0, "s"] = "changed"
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize(
    "index",
    [None, pd.RangeIndex(5, 9), pd.RangeIndex(0, 8, 2), pd.Index([0, 1, 2, 3])],
    ids=["default", "shifted", "stepped", "int64"],
)
def test_read_parquet_gives_a_fresh_default_index(tmp_path, index):
    frame = pd.DataFrame({"a": ["w", "x", "y", "z"], "b": [1.5, 2.5, None, 4.0]})
    if index is not None:
        frame.index = index
    frame.to_parquet(tmp_path / "f.parquet")  # pandas stores a non-default index in metadata
    got = readers.read_parquet(tmp_path / "f.parquet", "f.parquet")
    assert isinstance(got.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(got, frame.reset_index(drop=True))


def test_read_parquet_keeps_a_named_range_index_as_a_column(tmp_path):
    frame = pd.DataFrame({"v": [1, 2, 3]}, index=pd.RangeIndex(3, name="row"))
    frame.to_parquet(tmp_path / "f.parquet")
    got = readers.read_parquet(tmp_path / "f.parquet", "f.parquet")
    assert list(got.columns) == ["row", "v"]
    assert got["row"].tolist() == [0, 1, 2]
