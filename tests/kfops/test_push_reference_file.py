"""push.reference_from_file gives the rows, dtypes and values of reference_sample(read_frame)."""

import numpy as np
import pandas as pd
import pytest

from kfops import dataio, datasets, errors, push


@pytest.mark.parametrize(("rows", "seed"), [(12_000, 0), (12_000, 7), (5_001, 3), (300, 0)])
def test_reference_from_file_equals_sampling_the_whole_frame(tmp_path, rows, seed):
    df = datasets.churn(n_rows=rows, seed=1)
    df["flag"] = pd.array(np.arange(rows) % 3 == 0, dtype=object)  # bools as objects
    df.loc[df.index[::7], "plan"] = None
    df["counts"] = pd.array(np.where(np.arange(rows) % 5 == 0, None, np.arange(rows)), "Int64")
    path = tmp_path / "train.parquet"
    dataio.write_frame(df, path)
    expected = push.reference_sample(dataio.read_frame(path), seed=seed)
    got = push.reference_from_file(path, seed=seed)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert len(got) == min(rows, push.REFERENCE_ROWS)


def test_reference_from_file_names_a_missing_file(tmp_path):
    with pytest.raises(errors.DataError, match="no such file"):
        push.reference_from_file(tmp_path / "absent.parquet")
