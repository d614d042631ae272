"""The validation report's column profile: strings counted in one pass give the general answer.

kfops.reports.profile counts a column of strings once (nulls, distinct and top values from one
value_counts); every other column takes the general path (isna, nunique, astype(str)). Both must
agree, including on ties, None / NaN / pd.NA and more than TOP_VALUES distinct values.
"""

import numpy as np
import pandas as pd
import pytest

from kfops.reports import profile


def general(values: pd.Series) -> dict:
    """The profile as the general path computes it, for comparison."""
    present = values.dropna()
    counts = present.astype(str).value_counts(sort=True)
    top = [[str(v), int(c)] for v, c in counts.iloc[: profile.TOP_VALUES].items()]
    return {
        "missing": int(values.isna().sum()),
        "distinct": int(values.nunique(dropna=True)),
        "top": top,
        "other": int(counts.iloc[profile.TOP_VALUES :].sum()),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_string_column_profiles_as_the_general_path_does(seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(14)]  # more than TOP_VALUES, many tied counts
    raw = rng.choice(words + ["", None, np.nan, pd.NA], size=3000).tolist()
    values = pd.Series(raw, dtype=object)
    assert profile._text_counts(values, "string") is not None  # the one-pass path is taken
    got = profile.profile(pd.DataFrame({"c": values}))[0]
    assert got["kind"] == "categorical" and got["rows"] == 3000
    assert {k: got[k] for k in ("missing", "distinct", "top", "other")} == general(values)
    assert got["missing"] > 0 and got["other"] > 0


def test_mixed_values_take_the_general_path():
    # 1 and "1" are one value after astype(str) but two to value_counts: not the one-pass path
    values = pd.Series(["1", 1, "a", None, True, "True"] * 5, dtype=object)
    assert profile._text_counts(values, "string") is None
    got = profile.profile(pd.DataFrame({"c": values}))[0]
    assert {k: got[k] for k in ("missing", "distinct", "top", "other")} == general(values)
