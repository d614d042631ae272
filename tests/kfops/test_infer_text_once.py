"""Inference hashes a text column once (issue 17): factorize gives its nulls and distinct values.

The schema must be what isna + dropna + unique(astype(str)) gave, for every kind of null.
"""

import decimal

import numpy as np
import pandas as pd
import pytest

from kfops.validate import infer

CASES = {
    "plain": ["b", "a", "b", "c", ""],
    "nulls": ["b", None, "a", np.nan, pd.NA, "b"],
    "nat": ["x", pd.NaT, "y", float("nan")],
    "decimal_nan": ["x", decimal.Decimal("NaN"), "y"],
    "all_null": [None, np.nan],
    "many": [f"w{i % 70}" for i in range(200)],
    "mixed": ["1", 1, "a", None],
}


def plain(series: pd.Series, role: str | None) -> dict:
    values = series.dropna()
    domain = sorted(pd.unique(values.astype(str))) if len(values) else None
    return {
        "nullable": len(values) < len(series),
        "max_null_fraction": min(1.0, round(1 - len(values) / len(series) + 0.05, 6)),
        "domain": tuple(domain) if domain and len(domain) <= 50 and role is None else None,
    }


STRING_DTYPE = ["plain", "nulls", "all_null", "many"]  # the others cannot be StringDtype


@pytest.mark.parametrize(
    ("name", "dtype"), [(n, object) for n in CASES] + [(n, "string") for n in STRING_DTYPE]
)
def test_text_spec_equals_the_plain_calls(name, dtype):
    series = pd.Series(CASES[name], dtype=dtype, name=name)
    spec = infer._column_spec(series, None, 50, 0.05)
    assert {k: getattr(spec, k) for k in ("nullable", "max_null_fraction", "domain")} == plain(
        series, None
    )
    assert spec.role == "feature"


@pytest.mark.parametrize("nulls", [0, 1])
def test_unique_text_named_like_an_id_is_an_id_only_without_nulls(nulls):
    raw = [f"C{i}" for i in range(60)] + [None] * nulls
    spec = infer._column_spec(pd.Series(raw, dtype=object, name="customer_id"), None, 50, 0.05)
    assert spec.role == ("feature" if nulls else "id")
    assert spec.nullable == bool(nulls) and spec.domain is None
