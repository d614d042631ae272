"""quality._group_table (codes and one bincount) gives what the crosstab of strings gave.

`reference` is the previous computation in `_group_balance` (astype(str) of every label,
crosstab of the group and class strings); the new one must match its shares, sizes and order
exactly, with ties in class counts, null groups, numeric groups and labels of several kinds.
"""

import numpy as np
import pandas as pd
import pytest

from kfops.validate import ValidateConfig, quality


def reference(label: pd.Series, groups: pd.Series):
    classes = label.astype(str)
    overall = classes.value_counts(normalize=True)
    keys = quality._keys(groups)
    table = pd.crosstab(keys, classes, normalize="index").reindex(
        columns=overall.index, fill_value=0.0
    )
    return overall, table, keys.value_counts()


def labels(kind, rng, n):
    if kind == "int":
        return rng.choice([0, 1, 2], n, p=[0.5, 0.3, 0.2])
    if kind == "tied ints":  # equal class counts: the order among ties must hold
        return np.repeat([7, 3, 5, 1], n // 4)[rng.permutation(n)]
    if kind == "bool":
        return rng.random(n) < 0.3
    if kind == "text with nulls":
        return pd.Series(rng.choice(["yes", "no", None], n), dtype=object)
    if kind == "float with nulls":
        return np.where(rng.random(n) < 0.1, np.nan, rng.choice([0.0, 1.0], n))
    if kind == "mixed 1 and '1'":  # one class as text
        return pd.Series(np.array([1, "1", 0, "x"], dtype=object)[rng.integers(0, 4, n)])
    if kind == "dates":
        return pd.to_datetime(rng.choice(["2024-01-01", "2024-02-01"], n))
    raise AssertionError(kind)


KINDS = ["int", "tied ints", "bool", "text with nulls", "float with nulls", "mixed 1 and '1'",
         "dates"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_group_table_equals_the_crosstab(kind, seed):
    rng = np.random.default_rng(seed)
    n = 2000
    group = rng.choice(["north", "south", "east", None, "west"], n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    df = pd.DataFrame({"y": labels(kind, rng, n), "g": pd.Series(group, dtype=object)})
    df.loc[df["g"] == "west", "y"] = df["y"].dropna().iloc[0]  # a group far off the overall
    df["n"] = rng.integers(0, 4, n)  # a numeric group column
    labelled = quality._labelled(df, "y")
    for column in ("g", "n"):
        got = quality._group_table(labelled["y"], labelled[column])
        want = reference(labelled["y"], labelled[column])
        assert got[0].index.tolist() == want[0].index.tolist()  # classes, ties in order
        np.testing.assert_array_equal(got[0].to_numpy(), want[0].to_numpy())
        assert got[1].index.tolist() == want[1].index.tolist()  # groups, sorted as text
        assert got[1].columns.tolist() == want[1].columns.tolist()
        np.testing.assert_array_equal(got[1].to_numpy(), want[1].to_numpy())  # exact shares
        assert got[2].to_dict() == want[2].to_dict()
    rows, found = quality._group_balance(df, "y", "g", ValidateConfig())
    assert [r["group"] for r in rows] == ["<null>", "east", "north", "south", "west", "(all)"]
    assert any("g='west'" in a.detail for a in found)


def test_keys_with_a_known_null_mask_equal_keys_without():
    rng = np.random.default_rng(5)
    n = 300
    columns = {
        "text with nulls": pd.Series(rng.choice(["a", "b", None], n), dtype=object),
        "text": pd.Series(rng.choice(["a", "b"], n), dtype=object),
        "floats with nan": pd.Series(np.where(rng.random(n) < 0.2, np.nan, rng.random(n))),
        "ints": pd.Series(rng.integers(0, 5, n)),
    }
    for name, values in columns.items():
        want = quality._keys(values)
        got = quality._keys(values, values.isna().to_numpy())
        pd.testing.assert_series_equal(got, want, obj=name)
        assert ("<null>" in set(got)) == bool(values.isna().any())


@pytest.mark.parametrize("unlabelled", [0, 7])
def test_group_balance_reuses_slice_codes_only_for_the_whole_frame(unlabelled):
    rng = np.random.default_rng(6)
    n = 500
    df = pd.DataFrame(
        {
            "y": rng.choice([0.0, 1.0], n),
            "g": pd.Series(rng.choice(["a", "b", None], n), dtype=object),
        }
    )
    df.loc[df.index[:unlabelled], "y"] = np.nan  # rows without a label leave the balance
    df.loc[df.index[:unlabelled], "g"] = "only-unlabelled"
    keyed = {"g": quality._slice_codes(df["g"])}  # codes of every row, as _null_concentration's
    cfg = ValidateConfig()
    want = quality._group_balance(df, "y", "g", cfg)
    got = quality._group_balance(df, "y", "g", cfg, keyed)
    assert got[0] == want[0]
    assert [a.detail for a in got[1]] == [a.detail for a in want[1]]
    assert "only-unlabelled" not in {r["group"] for r in got[0]}  # those rows have no label
