"""A text column's checks hash its 1M values once (issue 17): _mixed_types' value counts also
tell _unseen_categories whether any value is outside the schema's categories."""

import numpy as np
import pandas as pd
import pytest

from kfops import schema
from kfops.validate import checks
from kfops.validate.results import ValidateConfig


def spec(domain):
    return schema.ColumnSpec(
        name="c",
        dtype="string",
        role="feature",
        nullable=True,
        max_null_fraction=1.0,
        domain=domain,
    )


@pytest.fixture
def calls(monkeypatch):
    seen = {"value_counts": 0, "isin": 0}
    for name in seen:
        plain = getattr(pd.Series, name)

        def counting(self, *args, _plain=plain, _name=name, **kwargs):
            seen[_name] += len(self) > 100  # the column, not the handful of distinct values
            return _plain(self, *args, **kwargs)

        monkeypatch.setattr(pd.Series, name, counting)
    return seen


def test_known_categories_are_hashed_once(calls):
    rng = np.random.default_rng(0)
    values = pd.Series(rng.choice(["a", "b", "c", None], 3000), dtype=object, name="c")
    assert checks.column_checks(values, spec(("a", "b", "c", "d")), ValidateConfig()) == []
    assert calls == {"value_counts": 1, "isin": 0}


@pytest.mark.parametrize("unseen", [["zz"], ["zz", "yy", "zz"] * 40])
def test_unseen_categories_are_found_as_before(unseen, calls):
    rng = np.random.default_rng(1)
    raw = rng.choice(["a", "b", None], 3000).tolist()
    raw[5 : 5 + len(unseen)] = unseen
    values = pd.Series(raw, dtype=object, name="c")
    cfg = ValidateConfig()
    found = checks.column_checks(values, spec(("a", "b")), cfg)
    assert [a.rule for a in found] == ["unseen_category"]
    present = values.dropna()
    expected = present[~present.isin(("a", "b"))]
    assert found[0].examples == tuple(expected.value_counts().index[: cfg.max_examples])
    assert f"{len(expected)} value(s)" in found[0].detail
