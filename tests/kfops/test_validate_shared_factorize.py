"""The validate step hashes each text column once (issue 17): inference, the duplicate-row check
and the profile share one factorize per column inside `stats.shared_factorize`.

Every output (schema, anomalies, the HTML report) must be what the unshared calls gave.
"""

import decimal

import numpy as np
import pandas as pd
import pytest

from kfops import schema
from kfops import validate as core
from kfops.reports import validation as rendering
from kfops.validate import stats

N = 300


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(N)],
            "plan": rng.choice(["basic", "pro", "team"], N).astype(object),
            "region": rng.choice(["n", "s", "e", "w"], N).astype(object),
            "age_band": rng.choice(["18-30", "31-50", "51+"], N).astype(object),
            "tenure": rng.integers(0, 60, N),
            "spend": rng.normal(50, 10, N).round(1),
            "churned": rng.integers(0, 2, N),
        }
    )
    df.loc[rng.choice(N, 25, replace=False), "plan"] = None
    df.loc[rng.choice(N, 9, replace=False), "region"] = np.nan
    df.loc[5, "region"] = pd.NA
    df.loc[7, "region"] = pd.NaT
    return df


def outputs(df: pd.DataFrame, shared: bool) -> tuple[str, str, str]:
    def run() -> tuple[str, str, str]:
        sch = core.infer_schema(df, "churned")
        result = core.validate(df, sch, core.ValidateConfig(), sensitive_column="age_band")
        page = rendering.validation_html(result, sch, df)
        return repr(sch.to_dict()), repr(result.to_dict()), page

    if not shared:
        return run()
    with stats.shared_factorize():
        return run()


@pytest.mark.parametrize("duplicates", [False, True])
def test_shared_outputs_equal_the_unshared(duplicates):
    df = frame()
    if duplicates:  # no id column: the duplicate check walks the text columns too
        df = df.drop(columns="customer_id")
        df = pd.concat([df, df.iloc[:40]], ignore_index=True)
    assert outputs(df, shared=True) == outputs(df, shared=False)


def test_each_text_column_is_factorized_once(monkeypatch):
    df = frame()
    text = {"customer_id", "plan", "region", "age_band"}
    seen: list[str] = []
    real = pd.factorize

    def counting(values, *args, **kwargs):
        array = np.asarray(values)
        if array.dtype == object and len(array) == N:
            for name in text:  # which column's values were hashed
                if array[:3].tolist() == df[name].iloc[:3].tolist():
                    seen.append(name)
        return real(values, *args, **kwargs)

    monkeypatch.setattr(pd, "factorize", counting)
    outputs(df, shared=True)
    shared = sorted(seen)
    seen.clear()
    outputs(df, shared=False)
    unshared = sorted(seen)
    # infer, duplicate check (the id column settles it) and profile each hashed customer_id
    assert unshared.count("customer_id") == 3
    assert shared.count("customer_id") == 1
    assert shared.count("plan") == 1 and shared.count("region") == 1
    assert len(shared) < len(unshared)


def test_outside_the_block_nothing_is_remembered():
    values = np.array(["a", "b", "a", None], dtype=object)
    with stats.shared_factorize():
        codes, uniques = stats.factorize(values)
        again = stats.factorize(values)
        assert again[0] is codes and again[1] is uniques
        assert not codes.flags.writeable and not uniques.flags.writeable
        with stats.shared_factorize():  # nested: the same memory
            assert stats.factorize(values)[0] is codes
    values[0] = "z"
    fresh_codes, fresh_uniques = stats.factorize(values)
    assert fresh_uniques.tolist() == ["z", "b", "a"]
    np.testing.assert_array_equal(fresh_codes, [0, 1, 2, -1])


CASES = {
    "nulls": ["b", None, "a", np.nan, pd.NA, "b", None, "a"],
    "nat": ["x", pd.NaT, "y", float("nan"), "x", None],
    "decimal_nan": ["x", decimal.Decimal("NaN"), "y", decimal.Decimal("NaN"), "x"],
    "mixed": ["1", 1, "a", None, 1, "1"],
    "no_nulls": ["p", "q", "p", "q"],
}


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_duplicate_mask_equals_duplicated(name, shared):
    raw = CASES[name]
    df = pd.DataFrame({"t": pd.Series(raw, dtype=object), "n": [i % 2 for i in range(len(raw))]})
    if shared:
        with stats.shared_factorize():
            got = stats.duplicate_mask(df)
    else:
        got = stats.duplicate_mask(df)
    np.testing.assert_array_equal(got, df.duplicated().to_numpy())


def test_schema_module_unchanged_by_sharing():
    df = frame()
    with stats.shared_factorize():
        inside = core.infer_schema(df, "churned")
    assert inside == core.infer_schema(df, "churned")
    assert isinstance(inside, schema.Schema)


SLICES = {
    "nulls": ["b", None, "a", np.nan, "b", pd.NA, "c"],
    "null_text_too": ["<null>", None, "a", "<null>", np.nan, "Z"],
    "no_nulls": ["team", "basic", "pro", "basic"],
    "all_null": [None, np.nan, None],
    "empty": [],
    "unicode_order": ["é", "e", "E", "ß", "", None],
}


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("name", list(SLICES))
def test_slice_codes_equal_sorted_keys(name, shared):
    from kfops.validate import quality

    values = pd.Series(SLICES[name], dtype=object)
    codes, names = pd.factorize(quality._keys(values), sort=True)
    if shared:
        with stats.shared_factorize():
            stats.factorize(values.to_numpy())
            got_codes, got_names = quality._slice_codes(values)
    else:
        got_codes, got_names = quality._slice_codes(values)
    np.testing.assert_array_equal(got_codes, codes)
    assert got_names.dtype == object and got_names.tolist() == list(names)


COUNTED = {
    "ties": ["b", "a", "c", "a", "b", "d", None, "c"],
    "rising": ["a", "b", "b", "c", "c", "c", None, "c"],
    "many_ties": [f"t{(i * 37) % 101}" for i in range(101 * 3)]
    + [f"t{i}" for i in range(0, 101, 3)],
    "nulls": ["x", None, np.nan, "y", "x", pd.NA],
    "mixed": ["1", 1, "a", "a"],  # not text: value_counts as before
    "many": [f"v{(i * 7) % 13}" for i in range(300)],
}


@pytest.mark.parametrize("name", list(COUNTED))
def test_counts_from_shared_equal_value_counts(name, monkeypatch):
    from kfops.validate import checks

    series = pd.Series(COUNTED[name], dtype=object, name=name)
    values = series.dropna()
    expected = values.value_counts()
    if name != "mixed":  # a text column's counts must not hash its values again
        monkeypatch.setattr(pd.Series, "value_counts", None)
    with stats.shared_factorize():
        stats.factorize(series.to_numpy())
        counted = checks._Counts(values, series)
        got = counted()
        shared = counted._from_shared() is not None
    pd.testing.assert_series_equal(got, expected)
    assert got.index.tolist() == expected.index.tolist()  # the order of ties too
    assert shared == (name != "mixed")
