"""Column-at-a-time forms of per-cell work on the batch path agree with the per-cell definitions.

V1 instances to columns (`v1.parse`), kfops' as_text and the encoders' category lookup
(`fastpath.steps`) each have a fast form for the usual input; these tests hold every form to the
plain per-value definition on mixed inputs: nulls, NaN objects, booleans, unseen keys.
"""

import math
import random

import numpy as np
import pandas as pd
import pytest

from kfops import modelio, schema
from kfops.serving import errors as serr
from kfops.serving import v1, validation
from kfops.serving.fastpath import steps

FEATURES = ["a", "b", "c"]
VALUES = [0, 1.5, "x", "y", None, True, False, -3]


def _reference_columns(instances: list[dict], features: list[str]) -> dict:
    """V1 objects to columns by definition: each feature, then every other key, row by row."""
    extra = sorted({k for x in instances for k in x} - set(features), key=str)
    return {n: [x.get(n, validation.MISSING) for x in instances] for n in [*features, *extra]}


def _instances(rng: random.Random, n: int, features: list[str], odd: bool) -> list[dict]:
    rows = [{f: rng.choice(VALUES) for f in features} for _ in range(n)]
    if odd:  # one instance swaps a feature for an unknown key, keeping the key count
        row = rows[rng.randrange(n)]
        del row[rng.choice(features)]
        row["zz"] = 1
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("features", [FEATURES, ["only"]])
def test_v1_objects_to_columns_as_by_definition(seed, features):
    rng = random.Random(seed)
    n = rng.choice([1, 2, 7, 1000])
    instances = _instances(rng, n, features, odd=seed % 2 == 1)
    parsed = v1.parse({"instances": instances}, features, 1000)
    expected = _reference_columns(instances, features)
    assert list(parsed.columns) == list(expected)
    assert {k: list(v) for k, v in parsed.columns.items()} == expected
    assert parsed.n_rows == n


def test_v1_swapped_key_is_reported_as_missing_and_unexpected():
    instances = [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "zz": 3}]
    parsed = v1.parse({"instances": instances}, FEATURES, 10)
    spec = schema.Schema(tuple(schema.ColumnSpec(n, "int") for n in FEATURES))
    checker = validation.Validator(spec)
    with pytest.raises(serr.InvalidInput) as info:
        checker.validate(parsed.columns, parsed.n_rows, parsed.problems)
    found = {(p.field, p.rule, tuple(p.rows or ())) for p in info.value.problems}
    assert ("c", "missing", (1,)) in found
    assert ("zz", "unexpected", (1,)) in found


def _as_text_equal(x: np.ndarray) -> None:
    got = steps._as_text(x)
    want = modelio.as_text(pd.DataFrame(x.reshape(len(x), -1))).reshape(x.shape)
    assert got.shape == want.shape and got.dtype == object
    for g, w in zip(got.ravel().tolist(), want.ravel().tolist(), strict=True):
        if isinstance(w, float) and math.isnan(w):
            assert isinstance(g, float) and math.isnan(g)
        else:
            assert type(g) is str and g == w


@pytest.mark.parametrize(
    "columns",
    [
        [["x", "y", "x"], ["p", "q", "r"]],  # all str: kept as is
        [["x", None, "y"], [True, False, True]],  # a null; booleans become "True"/"False"
        [["x", np.nan, "z"], [1, 2.5, None]],  # a NaN object; numbers as text
        [[float("nan"), "a", "b"]],
    ],
)
def test_as_text_by_columns_equals_kfops_as_text(columns):
    x = np.empty((len(columns[0]), len(columns)), object)
    for j, col in enumerate(columns):
        x[:, j] = col
    _as_text_equal(x)
    _as_text_equal(x[:, 0].copy())  # a 1-D column too


@pytest.mark.parametrize("nan_fitted", [False, True])
def test_category_lookup_of_a_column_equals_value_by_value(nan_fitted):
    cats = np.array(["a", "b", "c", *([np.nan] if nan_fitted else [])], object)
    lookup = steps._Lookup(cats)
    column = np.array(["c", "a", float("nan"), "zz", np.nan, "b", None, True, 1], object)
    got = lookup(column).tolist()
    assert got == [lookup.one(v) for v in column.tolist()]
    nan_code = 3 if nan_fitted else -1
    assert got == [2, 0, nan_code, -1, nan_code, 1, -1, -1, -1]
