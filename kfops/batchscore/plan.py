"""The shard plan of a batch-scoring run: which rows each shard scores, with which model version.

A shard is a range of global row numbers [offset, offset + rows) of the source, cut into
segments per file: a single file (or a SQL result) is one segment list `[("", start, stop)]`, a
partitioned prefix contributes the files the range crosses. Shards are balanced by rows, not by
files, so a prefix of uneven files (or fewer files than shards) still splits evenly. The model
version and the `scored_at` stamp are fixed here, once, so every shard scores with the same
version even if the champion moves while the run goes.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pyarrow.dataset as pa_ds

from kfops import config, errors, parameters
from kfops.batchscore import rows as ranges
from kfops.ingest import fetch, partitions

ROW_KEY = "row"  # the key column's name when the schema has no id column


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """How to shard and write a batch-scoring run (the source is ingest's IngestConfig).

    Attributes:
        out: where predictions go (a local directory or s3://bucket/prefix).
        shards: how many shards (pods on KFP); fewer when the source has fewer rows.
        parallelism: shards running at once on KFP (0: all); fixed when the pipeline compiles.
        chunk_rows: rows predicted at a time inside a shard (bounds memory, not results).
    """

    out: str = parameters.field(help="where predictions go: a directory or s3://bucket/prefix")
    shards: int = parameters.field(1, "how many shards (parallel pods on KFP)")
    parallelism: int = parameters.field(0, "shards running at once on KFP; 0 = all")
    chunk_rows: int = parameters.field(65536, "rows predicted at a time inside a shard")

    def __post_init__(self):
        if not self.out:
            raise errors.ConfigError("out must name a directory or s3://bucket/prefix")
        for name in ("shards", "chunk_rows"):
            if getattr(self, name) < 1:
                raise errors.ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.parallelism < 0:
            raise errors.ConfigError(f"parallelism must be >= 0, got {self.parallelism}")


def plan(
    source: str,
    shards: int,
    version: str,
    settings: config.StoreSettings | None = None,
    **read: Any,
) -> list[dict[str, Any]]:
    """The shard list: JSON-ready dicts a KFP ParallelFor iterates over.

    Args:
        source: a file, a partitioned prefix (local or s3://, ending in '/') or a SQL URL.
        shards: requested shard count (at most one per row).
        version: the resolved model version every shard uses.
        settings: S3 endpoint and keys.
        read: ingest options for file and SQL sources (format, delimiter, query).

    Returns:
        [{"index", "count", "offset", "rows", "segments": [[file, start, stop], ...],
          "version", "scored_at"}] in index order; `count` is the number of shards. A CSV
          source's entries also carry the column types its shards read with
          (kfops.batchscore.rows).

    Raises:
        DataError: the source has no rows or cannot be read.
    """
    if partitions.is_partitioned(source):
        sizes, carried = _file_rows(source, settings), {}
    else:
        rows, carried = ranges.count(source, settings, read)
        sizes = [("", rows)]
    total = sum(n for _, n in sizes)
    if total == 0:
        raise errors.DataError(f"{fetch.redact(source)} has no rows to score")
    count = min(shards, total)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
    out = []
    for i in range(count):
        start, stop = total * i // count, total * (i + 1) // count
        out.append({
            "index": i, "count": count, "offset": start, "rows": stop - start,
            "segments": _segments(sizes, start, stop), "version": version, "scored_at": stamp,
            **carried,
        })  # fmt: skip
    return out


def _file_rows(source: str, settings) -> list[tuple[str, int]]:
    """(file relative to the prefix, rows) per data file of a partitioned source."""
    where = partitions.locate(source, settings)
    parts = partitions.list_partitions(where)
    # Parquet footers hold row counts, so this reads metadata only; CSV is scanned.
    return [(p.path, _count(where, p)) for p in parts]


def _count(where: partitions.Location, part: partitions.Partition) -> int:
    path = f"{where.root}/{part.path}"
    try:
        return pa_ds.dataset(path, filesystem=where.filesystem, format=part.format).count_rows()
    except OSError as e:
        raise errors.DataError(f"cannot read {where.shown}{part.path}: {e}") from e


def _segments(sizes: list[tuple[str, int]], start: int, stop: int) -> list[list[Any]]:
    """[file, first row, end row] of every file the global row range [start, stop) crosses."""
    out, base = [], 0
    for name, n in sizes:
        lo, hi = max(start - base, 0), min(stop - base, n)
        if lo < hi:
            out.append([name, lo, hi])
        base += n
    return out
