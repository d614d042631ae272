"""infra_validate.read_sample: the rows the smoke requests may use, as read_frame gives them."""

import datetime

import pandas as pd
import pytest

from kfops import dataio, errors, infra_validate


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "when": pd.date_range(datetime.datetime(2024, 1, 1), periods=n, freq="h"),
            "count": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
            "x": [i / 3 for i in range(n)],
            "flag": [i % 2 == 0 for i in range(n)],
            "plan": pd.Categorical(["a", "b", "c"] * (n // 3) + ["a"] * (n % 3)),
        }
    )


@pytest.mark.parametrize("rows, max_rows", [(1000, 20), (30, 20), (0, 3)])
def test_sample_is_the_head_of_the_whole_frame(tmp_path, rows, max_rows):
    path = tmp_path / "test.parquet"
    dataio.write_frame(_frame(rows), path)
    config = infra_validate.InfraConfig(max_rows=max_rows)
    sample = infra_validate.read_sample(path, config)
    want = dataio.read_frame(path).head(max_rows * infra_validate.SCANNED_PER_ROW)
    assert len(sample) == min(rows, max_rows * infra_validate.SCANNED_PER_ROW)
    pd.testing.assert_frame_equal(sample, want, check_exact=True)


def test_a_missing_file_is_one_data_error(tmp_path):
    with pytest.raises(errors.DataError, match="no such file"):
        infra_validate.read_sample(tmp_path / "absent.parquet")
