"""Partitioned and incremental sources, on a local directory and on the SeaweedFS S3 fixture.

A run's claim becomes the watermark only when the run's end.json says succeeded; these tests
write that record the way the exit step does (kfops.runs.records layout) to end each run.
"""

from __future__ import annotations

import io
import uuid

import pandas as pd
import pytest

from kfops import errors, watermarks
from kfops.ingest import core
from kfops.runs import records
from kfops.store import local


class Source:
    """A partitioned prefix that tests add hive-style day partitions to."""

    def __init__(self, kind: str, tmp_path, request):
        self.kind = kind
        if kind == "local":
            self.root = tmp_path / "events"
            self.root.mkdir()
            self.uri, self.settings = str(self.root), None
            self.store = local.LocalStore(tmp_path / "store")
        else:
            server = request.getfixturevalue("s3_server")
            bucket = request.getfixturevalue("s3_shared_bucket")
            self.prefix = f"src-{uuid.uuid4().hex[:10]}/events"
            self.client, self.bucket = server.client(), bucket
            self.uri, self.settings = f"s3://{bucket}/{self.prefix}/", server.settings
            self.store = server.store(bucket, prefix=f"st-{uuid.uuid4().hex[:10]}")

    def add(self, day: str, n: int, start: int = 0, fmt: str = "parquet") -> None:
        frame = pd.DataFrame({"id": range(start, start + n), "x": [float(i) for i in range(n)]})
        buffer = io.BytesIO()
        if fmt == "parquet":
            frame.to_parquet(buffer, index=False)
        else:
            buffer.write(frame.to_csv(index=False).encode())
        rel = f"dt={day}/part-0.{fmt}"
        if self.kind == "local":
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_bytes(buffer.getvalue())
        else:
            data = buffer.getvalue()
            self.client.put_object(self.bucket, f"{self.prefix}/{rel}", io.BytesIO(data), len(data))

    def run(self, run_id: str, retention: int = 0, ok: bool | None = True, **kw):
        """One incremental ingest as run `run_id`; ends the run (end.json) unless ok is None."""
        try:
            got = core.ingest(
                self.uri, settings=self.settings, incremental=True, retention=retention,
                store=self.store, run_id=run_id, **kw,
            )  # fmt: skip
        finally:
            if ok is not None:
                status = "succeeded" if ok else "failed"
                self.store.put_bytes(records.end_key(run_id), records.encode({"status": status}))
        return got


@pytest.fixture(params=["local", "s3"])
def source(request, tmp_path):
    return Source(request.param, tmp_path, request)


def test_directory_is_one_dataset_with_hive_keys_and_projection(source):
    source.add("2026-11-29", 3)
    source.add("2026-11-30", 2, start=3)
    got = core.ingest(source.uri, settings=source.settings)
    assert got.format == "partitioned" and got.rows == 5
    assert sorted(got.frame["id"]) == [0, 1, 2, 3, 4]
    assert set(got.frame.columns) == {"id", "x", "dt"}
    assert sorted(got.frame["dt"].astype(str).unique()) == ["2026-11-29", "2026-11-30"]
    only = core.ingest(source.uri, settings=source.settings, columns=["id"])
    assert list(only.frame.columns) == ["id"] and only.rows == 5
    assert len(got.source_sha256) == 64 and got.source_sha256 != only.source_sha256


def test_incremental_second_run_reads_only_new_partitions(source):
    source.add("2026-11-28", 4)
    source.add("2026-11-29", 3, start=4)
    first = source.run("r1")
    assert first.incremental["new_partitions"] == 2 and first.incremental["new_rows"] == 7
    assert len(first.frame) == 7
    source.add("2026-11-30", 2, start=7)
    second = source.run("r2")
    assert second.incremental["new_partitions"] == 1 and second.incremental["new_rows"] == 2
    assert second.incremental["previous_partitions"] == 2
    assert second.rows == 2 and len(second.frame) == 9  # the snapshot: previous + new
    assert sorted(second.frame["id"]) == list(range(9))
    third = source.run("r3")  # nothing new: the snapshot alone
    assert third.incremental["new_partitions"] == 0 and len(third.frame) == 9


def test_failed_run_leaves_the_watermark_and_its_partitions_are_read_again(source):
    source.add("2026-11-28", 4)
    source.run("r1")
    key = source.run("r1b").incremental["watermark"]  # nothing new, succeeded
    before = watermarks.committed(source.store, key)
    source.add("2026-11-29", 3, start=4)
    failed = source.run("r2", ok=False)
    assert failed.incremental["new_partitions"] == 1
    assert watermarks.committed(source.store, key) == before  # not advanced
    again = source.run("r3")
    assert again.incremental["new"] == ["dt=2026-11-29/part-0.parquet"]
    assert sorted(watermarks.committed(source.store, key)["partitions"]) == [
        "dt=2026-11-28/part-0.parquet",
        "dt=2026-11-29/part-0.parquet",
    ]


def test_run_in_flight_reserves_its_partitions(source):
    """Two runs never consume the same partition: the second skips what the first claimed."""
    source.add("2026-11-28", 4)
    first = source.run("a", ok=None)  # still running: no end.json yet
    source.add("2026-11-29", 3, start=4)
    second = source.run("b", ok=None)
    assert first.incremental["new"] == ["dt=2026-11-28/part-0.parquet"]
    assert second.incremental["new"] == ["dt=2026-11-29/part-0.parquet"]
    retried = source.run("a", ok=True)  # a retried step of run a gets the same claim back
    assert retried.incremental["new"] == first.incremental["new"]


def test_late_partition_is_picked_up(source):
    source.add("2026-11-28", 2)
    source.add("2026-11-30", 2, start=2)
    source.run("r1")
    source.add("2026-11-29", 5, start=4)  # arrives late, sorts in the middle
    late = source.run("r2")
    assert late.incremental["new"] == ["dt=2026-11-29/part-0.parquet"] and late.rows == 5


def test_snapshot_follows_the_retention_policy(source):
    for i, day in enumerate(["2026-11-27", "2026-11-28", "2026-11-29"]):
        source.add(day, 2, start=2 * i)
    first = source.run("r1", retention=2)
    assert first.incremental["snapshot_partitions"] == 2 and len(first.frame) == 4
    assert sorted(first.frame["id"]) == [2, 3, 4, 5]  # the newest two days
    source.add("2026-11-30", 3, start=6)
    second = source.run("r2", retention=2)
    assert second.rows == 3 and len(second.frame) == 5
    assert sorted(second.frame["dt"].astype(str).unique()) == ["2026-11-29", "2026-11-30"]
    grown = source.run("r3", retention=0)  # no window: everything consumed so far
    assert len(grown.frame) == 9


def test_csv_partitions_and_bad_input(source):
    source.add("2026-11-28", 2, fmt="csv")
    assert core.ingest(source.uri, settings=source.settings).rows == 2
    with pytest.raises(errors.DataError, match="has no column 'nope'"):
        core.ingest(source.uri, settings=source.settings, columns=["nope"])
    source.add("2026-11-29", 2, fmt="parquet")
    with pytest.raises(errors.DataError, match="mixes csv and parquet files"):
        core.ingest(source.uri, settings=source.settings)


def test_incremental_needs_a_directory_and_a_store(tmp_path):
    one = tmp_path / "a.csv"
    one.write_text("a\n1\n")
    with pytest.raises(errors.ConfigError, match="not one file"):
        core.ingest(str(one), incremental=True)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("a\n1\n")
    with pytest.raises(errors.ConfigError, match="need a store and a run id"):
        core.ingest(str(tmp_path / "d"), incremental=True)
