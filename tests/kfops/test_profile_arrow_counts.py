"""The profile's string counts (factorize + bincount) equal pandas' value_counts, ties included."""

import numpy as np
import pandas as pd
import pytest

from kfops.reports import profile


@pytest.mark.parametrize("seed", [0, 1])
def test_arrow_counts_equal_value_counts_in_value_and_order(seed):
    rng = np.random.default_rng(seed)
    ids = [f"C{i:07d}" for i in rng.permutation(20_000)]  # every count 1: all tied
    words = rng.choice(["a", "b", "", "é ü", "a ", "日本", None, np.nan], 20_000).tolist()
    for raw in (ids, words, ids[:500] + words[:500] * 3):
        values = pd.Series(raw, dtype=object, name="col")
        expected = values.value_counts(dropna=True, sort=True)
        counts, keys = profile._text_counts(values, "string", top=len(values))
        np.testing.assert_array_equal(counts, expected.to_numpy())
        assert keys == list(expected.index)  # ties in the same order
        assert all(type(k) is str for k in keys)
        counts, keys = profile._text_counts(values, "string")  # the profile's top values only
        assert keys == list(expected.index[: profile.TOP_VALUES])
        np.testing.assert_array_equal(counts, expected.to_numpy())


@pytest.mark.parametrize("raw", [[True, False, False], [False, True, True, False], [True] * 4])
def test_a_bool_column_profiles_as_its_text(raw):
    values = pd.Series(raw * 50, name="flag")
    got = profile.profile(pd.DataFrame({"flag": values}))[0]
    text = values.astype(str).value_counts(sort=True)
    assert got["top"] == [[v, int(c)] for v, c in text.items()]
    assert got["kind"] == "categorical" and got["distinct"] == len(text)
