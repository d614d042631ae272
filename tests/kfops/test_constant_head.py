"""The constant check compares the first rows first, then every row: a late change still counts."""

import pandas as pd
import pytest

from kfops import validate as v
from kfops.validate import checks


def _constant(values):
    df = pd.DataFrame({"c": values, "x": range(len(values)), "y": [0, 1] * (len(values) // 2)})
    report = v.validate(df, v.infer_schema(df, "y"), v.ValidateConfig(max_duplicate_fraction=1.0))
    return [a for a in report.anomalies if a.rule == "constant"]


@pytest.mark.parametrize("late", [checks._HEAD_ROWS, checks._HEAD_ROWS + 500, 2 * 3000 - 1])
def test_a_value_changing_after_the_head_is_not_constant(late):
    values = ["same"] * 6000
    values[late] = "other"
    assert _constant(values) == []


@pytest.mark.parametrize("values", [["same"] * 6000, [7] * 6000, ["a"] * 10])
def test_a_column_equal_everywhere_is_constant(values):
    (anomaly,) = _constant(values)
    assert anomaly.column == "c" and anomaly.examples == (values[0],)
