"""ingest(arrow=True) + IngestResult.write gives the bytes the pandas round trip gave (issue 17).

The component used to write `dataio.write_frame(read_parquet(source))`: Arrow -> pandas -> Arrow.
Lineage and run digests hang on that file's sha256, so the shortcut (no round trip when it would
change nothing) must give the same bytes for every input, and fall back when it would not.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfops import dataio, datasets, schema
from kfops.ingest import core, readers

N = 3000


def _frame_source(tmp_path):
    path = tmp_path / "src.parquet"
    dataio.write_frame(datasets.churn(N, seed=0), path)
    return path


def _tables():
    rng = np.random.default_rng(0)
    x = rng.random(N)
    with_nan = x.copy()
    with_nan[7] = np.nan
    ints = pa.array(rng.integers(-5, 5, N))
    words = pa.array(rng.choice(["a", "b", "é", ""], N))
    stamps = pa.array((rng.integers(0, 10**12, N) * 1000).astype("datetime64[ns]"))
    return {
        "plain": pa.table({"i": ints, "x": x, "s": words, "t": stamps, "b": x > 0.5}),
        "int_nulls": pa.table({"i": pa.array([1, None] * (N // 2)), "x": x}),
        "bool_nulls": pa.table({"b": pa.array([True, None, False] * (N // 3))}),
        "float_nan": pa.table({"x": pa.array(with_nan, from_pandas=False)}),
        "float_null": pa.table({"x": pa.array(with_nan, from_pandas=True)}),
        "string_nulls": pa.table({"s": pa.array(["a", None] * (N // 2))}),
        "string_late": pa.table({"s": pa.array([None] * (N - 1) + ["z"], pa.string())}),
        "all_null": pa.table({"s": pa.array([None] * N, pa.string()), "x": x}),
        "large_string": pa.table({"s": words.cast(pa.large_string())}),
        "dictionary": pa.table({"s": words.dictionary_encode()}),
        "int32_uint8": pa.table(
            {"a": ints.cast(pa.int32()), "u": pa.array(np.arange(N) % 7, pa.uint8())}
        ),
        "float32": pa.table({"f": pa.array(x.astype(np.float32))}),
        "stamp_us": pa.table({"t": stamps.cast(pa.timestamp("us"))}),
        "stamp_tz": pa.table({"t": stamps.cast(pa.timestamp("ns", "Europe/Paris"))}),
        "stamp_min": pa.table({"t": pa.array([-(1 << 63), 0] * (N // 2), pa.timestamp("ns"))}),
        "date32": pa.table(
            {"d": pa.array(rng.integers(0, 20000, N), pa.int32()).cast(pa.date32())}
        ),
        "required": pa.Table.from_arrays(
            [ints], schema=pa.schema([pa.field("i", pa.int64(), nullable=False)])
        ),
        "field_meta": pa.Table.from_arrays(
            [ints], schema=pa.schema([pa.field("i", pa.int64(), metadata={"k": "v"})])
        ),
        "no_rows_after_probe": pa.table({"i": ints}).slice(0, 5),
    }


def _pandas_sources():
    df = datasets.churn(N, seed=1)
    return {
        "range_index": df.set_axis(pd.RangeIndex(10, 10 + N)),
        "named_index": df.set_index("customer_id"),
        "named_range": df.set_axis(pd.RangeIndex(N, name="row")),  # only in the pandas metadata
        "int_index": df.set_axis(pd.Index(np.arange(N) * 2)),
        "default": df,
    }


def _old_bytes(src, out):
    frame = core.ingest(str(src)).frame
    dataio.write_frame(schema.ColumnConfig().cast(frame), out)
    return out.read_bytes()


def _new(src, out):
    result = core.ingest(str(src), arrow=True)
    assert result.frame is None and result.table is not None
    meta = result.write(str(out), schema.ColumnConfig())
    assert meta["sha256"] == dataio.sha256_file(out)
    return meta, out.read_bytes()


def _write_sources(tmp_path):
    paths = {}
    for name, table in _tables().items():
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(table, paths[name], row_group_size=1000)  # several row groups and chunks
    for name, df in _pandas_sources().items():
        paths[name] = tmp_path / f"{name}.parquet"
        df.to_parquet(paths[name])
    paths["write_frame"] = _frame_source(tmp_path)
    return paths


def test_same_bytes_as_the_pandas_round_trip(tmp_path):
    for name, src in _write_sources(tmp_path).items():
        old = _old_bytes(src, tmp_path / f"{name}.old")
        meta, new = _new(src, tmp_path / f"{name}.new")
        assert new == old, name
        frame = pd.read_parquet(tmp_path / f"{name}.old")
        assert meta["rows"] == len(frame) and meta["columns"] == [str(c) for c in frame.columns]


def test_shortcut_taken_only_where_the_round_trip_changes_nothing(tmp_path):
    taken = {
        name: dataio._round_trip_free(readers.read_parquet_table(src, name), readers.parquet_frame)
        is not None
        for name, src in _write_sources(tmp_path).items()
    }
    assert {name for name, yes in taken.items() if yes} == {
        "plain", "float_null", "string_nulls", "int32_uint8", "float32", "required",
        "field_meta", "no_rows_after_probe", "default", "range_index", "write_frame",
    }  # fmt: skip


def test_a_write_frame_source_is_ingested_as_itself(tmp_path):
    src = _frame_source(tmp_path)
    meta, new = _new(src, tmp_path / "out")
    assert new == src.read_bytes()
    assert meta["sha256"] == dataio.sha256_file(src)


def test_column_types_still_cast(tmp_path):
    src = _frame_source(tmp_path)
    columns = schema.ColumnConfig(column_types={"support_calls": "categorical"})
    result = core.ingest(str(src), arrow=True)
    result.write(str(tmp_path / "new"), columns)
    dataio.write_frame(columns.cast(core.ingest(str(src)).frame), tmp_path / "old")
    assert (tmp_path / "new").read_bytes() == (tmp_path / "old").read_bytes()


@pytest.mark.parametrize("table", [pa.table({"a": pa.array([], pa.int64())}), pa.table({})])
def test_empty_parquet_refused_as_before(tmp_path, table):
    src = tmp_path / "e.parquet"
    pq.write_table(table, src)
    with pytest.raises(Exception) as old:
        core.ingest(str(src))
    with pytest.raises(Exception) as new:
        core.ingest(str(src), arrow=True)
    assert type(new.value) is type(old.value) and str(new.value) == str(old.value)
