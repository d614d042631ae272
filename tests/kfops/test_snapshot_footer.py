"""A snapshot's rows and columns come from the Parquet footer: the file is copied, not read."""

import pytest

from kfops import dataio, datasets, errors, snapshots, store


def test_put_file_records_rows_and_columns_without_reading_the_frame(tmp_path, monkeypatch):
    frame = datasets.churn(1234, seed=4).rename(columns={"plan": 7})  # a non-text name too
    path = tmp_path / "train.parquet"
    dataio.write_frame(frame, path)
    read_back = dataio.read_frame(path)

    def refuse(*_):
        raise AssertionError("put_file read the whole frame")

    monkeypatch.setattr(dataio, "read_frame", refuse)
    snap = snapshots.put_file(store.open_store(str(tmp_path / "store")), path, {"source": "t"})
    assert snap.rows == len(read_back) == 1234
    assert snap.metadata["rows"] == 1234
    assert snap.metadata["columns"] == [str(c) for c in read_back.columns]


def test_put_file_names_a_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("customer_id,plan\n1,basic\n")
    with pytest.raises(errors.DataError, match="cannot read Parquet"):
        snapshots.put_file(store.open_store(str(tmp_path / "store")), path)
