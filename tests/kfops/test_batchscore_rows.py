"""A shard reads only its row range of one file or SQL source (kfops.batchscore.rows).

Each test checks two things: the range equals the same rows of the one-process read (values and
dtypes), and the rows the shard held at once are its share plus at most a row group or parse
block at each edge, counted from the Arrow tables it actually decoded (not wall time).
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfops import batchscore, datasets, errors, ingest
from kfops.batchscore import rows as ranges
from tests.kfops.test_batchscore import read_out, register, score_all


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("rows")
    reg, model, schema = register(root / "store", datasets.churn(2000, seed=0))
    return reg, model, schema, datasets.churn(3000, seed=1)


def _range(source, shard, **read):
    lo, hi = shard["offset"], shard["offset"] + shard["rows"]
    return ranges.read_range(str(source), lo, hi, None, read, planned=shard)


def _rows_of(whole, shard):
    return whole.iloc[shard["offset"] : shard["offset"] + shard["rows"]].reset_index(drop=True)


def test_parquet_shards_decode_only_the_row_groups_they_cross(trained, tmp_path):
    reg, model, schema, rows = trained
    source = tmp_path / "grouped.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), source, row_group_size=250)
    plan = batchscore.plan(str(source), 7, "1")  # 428/429 rows: ranges cut through groups
    whole = ingest.ingest(str(source)).frame
    for shard in plan:
        frame, held = _range(source, shard)
        pd.testing.assert_frame_equal(frame, _rows_of(whole, shard))
        assert len(frame) == shard["rows"] and held <= shard["rows"] + 2 * 250, held
    _, _, manifest = score_all(reg, source, tmp_path / "out", 7)
    got = read_out(tmp_path / "out")
    assert manifest["rows"] == 3000 and got["customer_id"].tolist() == rows["customer_id"].tolist()
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(rows[schema.feature_names]))


def test_parquet_one_big_row_group_is_streamed_not_held(trained, tmp_path, monkeypatch):
    """pandas writes up to 1Mi rows per row group: a shard must not hold the whole group."""
    *_, rows = trained
    source = tmp_path / "one_group.parquet"
    rows.to_parquet(source)  # pandas' defaults: one row group, RangeIndex metadata
    assert pq.ParquetFile(source).num_row_groups == 1
    monkeypatch.setattr(ranges, "PARQUET_BATCH_ROWS", 100)
    whole = ingest.ingest(str(source)).frame
    for shard in batchscore.plan(str(source), 6, "1"):
        frame, held = _range(source, shard)
        pd.testing.assert_frame_equal(frame, _rows_of(whole, shard))
        assert held <= shard["rows"] + 2 * 100, held


def test_csv_shards_stream_their_range_with_the_types_of_the_whole_file(tmp_path, monkeypatch):
    """A column whole-file inference makes float (or text) looks int to a shard reading alone."""
    n = 3000
    frame = pd.DataFrame({
        "id": np.arange(n),
        "late_float": [str(i) for i in range(n - 1)] + ["0.5"],
        "late_text": ["7"] * (n - 1) + ["seven"],
        "day": pd.date_range("2026-01-01", periods=n, freq="h").strftime("%Y-%m-%d"),
        "sparse": ["" if i % 3 else "x,y" for i in range(n)],
        "empty": [""] * n,  # a null column
        "flag": [None if i % 2 else True for i in range(n)],
        "at": ["2026-01-01T00:00:00Z"] * n,  # tz-aware timestamps
        "gappy_int": [None if i % 5 == 0 else i for i in range(n)],
    })  # fmt: skip
    source = tmp_path / "rows.csv"
    frame.to_csv(source, index=False)
    monkeypatch.setattr(ranges, "CSV_BLOCK_BYTES", 4096)  # ~150 rows a block: many blocks
    plan = batchscore.plan(str(source), 6, "1")
    whole = ingest.ingest(str(source)).frame
    assert str(whole["late_float"].dtype) == "float64" and whole["late_text"].dtype == object
    for shard in plan:
        got, held = _range(source, shard)
        pd.testing.assert_frame_equal(got, _rows_of(whole, shard))
        assert held <= shard["rows"] + 2 * 200, held


def test_sql_shards_fetch_only_their_rows_ordered_by_the_id(trained, tmp_path, postgres,
                                                            monkeypatch):  # fmt: skip
    import sqlalchemy

    from kfops.ingest import sql

    reg, model, schema, rows = trained
    monkeypatch.setenv(sql.PASSWORD_ENV, postgres.password)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    engine = sqlalchemy.create_engine(postgres.url.replace("kfops@", f"kfops:{postgres.password}@"))
    shuffled = rows.head(900).sample(frac=1.0, random_state=0)
    shuffled.to_sql("rows_unordered", engine, if_exists="replace", index=False)
    engine.dispose()
    query = "SELECT * FROM rows_unordered"  # no ORDER BY: the id column orders the shards
    plan = batchscore.plan(postgres.url, 4, "1", query=query)
    served = batchscore.load(reg, "churn", "1")
    assert batchscore.score.sql_key(served) == ["customer_id"]
    for shard in plan:
        lo, hi = shard["offset"], shard["offset"] + shard["rows"]
        frame, fetched = ranges.read_range(postgres.url, lo, hi, None, {"query": query},
                                           order_by=["customer_id"], planned=shard)  # fmt: skip
        assert fetched == len(frame) == shard["rows"]
    score_all(reg, postgres.url, tmp_path / "out", 4, query=query)
    got = read_out(tmp_path / "out")
    want = rows.head(900).sort_values("customer_id")
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(want[schema.feature_names]))


def test_sql_without_an_id_orders_by_every_input_so_ties_score_alike(tmp_path, postgres,
                                                                     monkeypatch):  # fmt: skip
    """Duplicated rows tie on every key column; any tie order gives the same output."""
    import sqlalchemy

    from kfops.ingest import sql

    no_id = datasets.churn(2000, seed=0).drop(columns="customer_id")
    reg, model, schema = register(tmp_path / "store", no_id)
    monkeypatch.setenv(sql.PASSWORD_ENV, postgres.password)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    engine = sqlalchemy.create_engine(postgres.url.replace("kfops@", f"kfops:{postgres.password}@"))
    rows = datasets.churn(300, seed=4).drop(columns="customer_id")
    pd.concat([rows, rows.head(100)]).to_sql("rows_no_id", engine, if_exists="replace",
                                             index=False)  # fmt: skip
    engine.dispose()
    query = "SELECT * FROM rows_no_id"
    outputs = []
    for shards in (1, 3, 5):
        plan, _, manifest = score_all(reg, postgres.url, tmp_path / str(shards), shards,
                                      query=query)  # fmt: skip
        assert manifest["key"] == "row" and manifest["rows"] == 400 and len(plan) == shards
        outputs.append(read_out(tmp_path / str(shards)).drop(columns="scored_at"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    pd.testing.assert_frame_equal(outputs[0], outputs[2])
    want = np.sort(model.predict(pd.concat([rows, rows.head(100)])[schema.feature_names]))
    assert np.array_equal(np.sort(outputs[0]["prediction"].to_numpy()), want)


def test_s3_objects_are_read_by_range(trained, tmp_path, s3_server, s3_shared_bucket,
                                      monkeypatch):  # fmt: skip
    """A Parquet and a CSV object on a real S3 server: each shard reads its range over S3."""
    import uuid

    *_, rows = trained
    prefix = f"rows-{uuid.uuid4().hex[:8]}"
    bucket = s3_server.store(s3_shared_bucket, prefix=prefix)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), tmp_path / "r.parquet",
                   row_group_size=400)  # fmt: skip
    rows.to_csv(tmp_path / "r.csv", index=False)
    monkeypatch.setattr(ranges, "CSV_BLOCK_BYTES", 16384)  # ~160 rows a block
    for name, bound in (("r.parquet", 2 * 400), ("r.csv", 2 * 200)):
        bucket.put_file(name, tmp_path / name)
        source = f"s3://{s3_shared_bucket}/{prefix}/{name}"
        plan = batchscore.plan(source, 5, "1", s3_server.settings)
        whole = ingest.ingest(source, settings=s3_server.settings).frame
        for shard in plan:
            lo, hi = shard["offset"], shard["offset"] + shard["rows"]
            got, held = ranges.read_range(source, lo, hi, s3_server.settings, {}, planned=shard)
            pd.testing.assert_frame_equal(got, _rows_of(whole, shard))
            assert held <= shard["rows"] + bound, (name, held)


def test_a_parquet_file_with_a_column_named_twice_is_refused_by_the_plan(tmp_path):
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["x", "x"])
    pq.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(errors.SchemaViolation, match="'x' violates duplicate_column: .* 2 times"):
        batchscore.plan(str(tmp_path / "twice.parquet"), 2, "1")
    with pytest.raises(errors.DataError, match="no such file"):
        batchscore.plan(str(tmp_path / "absent.parquet"), 2, "1")
