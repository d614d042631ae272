import pandas as pd
import pytest

from kfops import dataio, errors


def test_write_frame_is_deterministic(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    m1 = dataio.write_frame(df, tmp_path / "one.parquet")
    m2 = dataio.write_frame(df, tmp_path / "two.parquet")
    assert m1["sha256"] == m2["sha256"]
    assert m1["rows"] == 3 and m1["columns"] == ["a", "b"]
    pd.testing.assert_frame_equal(dataio.read_frame(tmp_path / "one.parquet"), df)


def test_read_frame_names_missing_file(tmp_path):
    with pytest.raises(errors.DataError, match="no such file"):
        dataio.read_frame(tmp_path / "missing.parquet")


def test_read_json_names_invalid_json(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(errors.DataError, match="invalid JSON"):
        dataio.read_json(tmp_path / "bad.json")


def test_write_json_handles_numpy_scalars(tmp_path):
    import numpy as np

    dataio.write_json({"x": np.float64(0.5), "n": np.int64(3)}, tmp_path / "m.json")
    assert dataio.read_json(tmp_path / "m.json") == {"x": 0.5, "n": 3}
