"""Partitioned sources: a directory or `s3://bucket/prefix/` of Parquet or CSV files, one dataset.

Files are read with pyarrow datasets (streamed batch by batch, only the columns asked for),
hive-style directories (`dt=2026-11-30/part-0.parquet`) add their key as a column, and any other
layout is read as it is. Names starting with `_` or `.` (`_SUCCESS`, `.crc`) are not data. Each
data file is one partition for incremental reads (kfops.watermarks): a file that appears later,
wherever it sorts, is new.
"""

from __future__ import annotations

import dataclasses
import hashlib
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from kfops import config, errors

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclasses.dataclass(frozen=True)
class Partition:
    """One data file: its path relative to the dataset root, size and format."""

    path: str
    size: int
    format: str


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a partitioned dataset lives: a pyarrow filesystem and the root inside it."""

    filesystem: pafs.FileSystem
    root: str
    shown: str


def is_partitioned(source: str) -> bool:
    """A directory (local or file://) or an s3:// prefix ending in '/'."""
    if source.startswith("s3://"):
        return source.endswith("/")
    if "://" in source and not source.startswith("file://"):
        return False
    return _local_path(source).is_dir()


def locate(source: str, settings: config.StoreSettings | None) -> Location:
    """The filesystem and root of a partitioned source (S3 endpoint and keys from `settings`)."""
    if source.startswith("s3://"):
        s = settings or config.StoreSettings()
        fs = pafs.S3FileSystem(
            access_key=s.access_key,
            secret_key=s.secret_key,
            endpoint_override=s.endpoint,
            scheme="https" if s.secure else "http",
            region=s.region or "us-east-1",
            connect_timeout=10,
            request_timeout=60,
        )
        return Location(fs, source[len("s3://") :].rstrip("/"), source)
    path = _local_path(source)
    return Location(pafs.LocalFileSystem(), str(path.resolve()), str(path))


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        source = urllib.parse.unquote(urllib.parse.urlsplit(source).path)
    return Path(source).expanduser()


def list_partitions(where: Location) -> list[Partition]:
    """Every data file under the root, sorted by path.

    Raises:
        DataError: no data files, or both Parquet and CSV files (one dataset, one format).
        StorageError: the object store refused the listing.
    """
    try:
        infos = where.filesystem.get_file_info(pafs.FileSelector(where.root, recursive=True))
    except FileNotFoundError as e:
        raise errors.DataError(f"no such directory or prefix: {where.shown}") from e
    except OSError as e:
        raise errors.StorageError(f"cannot list {where.shown}: {e}") from e
    found = []
    for info in infos:
        rel = info.path[len(where.root) :].lstrip("/")
        if info.type != pafs.FileType.File or any(p[:1] in "_." for p in rel.split("/")):
            continue
        fmt = _FORMATS.get(Path(rel).suffix.lower())
        if fmt:
            found.append(Partition(rel, info.size, fmt))
    if not found:
        raise errors.DataError(
            f"{where.shown} is a directory with no data files (.parquet, .csv); name a file or "
            "a directory of partitions"
        )
    formats = {p.format for p in found}
    if len(formats) > 1:
        raise errors.DataError(f"{where.shown} mixes {' and '.join(sorted(formats))} files")
    return sorted(found, key=lambda p: p.path)


def read(
    where: Location, parts: list[Partition], columns: list[str] | None = None
) -> tuple[pa.Table, str]:
    """Reads the given partitions as one table (streamed), and the sha256 of its batches.

    Raises:
        DataError: a column asked for is missing, a file is unreadable, or schemas conflict.
    """
    paths = [f"{where.root}/{p.path}" for p in parts]
    fmt = parts[0].format if parts else "parquet"
    try:
        dataset = ds.dataset(
            paths,
            filesystem=where.filesystem,
            format=fmt,
            partitioning=ds.HivePartitioning.discover(infer_dictionary=False),
            partition_base_dir=where.root,
        )
        missing = [c for c in columns or [] if c not in dataset.schema.names]
        if missing:
            raise errors.DataError(
                f"{where.shown} has no column {missing[0]!r} (columns: "
                f"{', '.join(dataset.schema.names[:20])})"
            )
        digest = hashlib.sha256()
        batches = []
        for batch in dataset.to_batches(columns=columns or None):
            batches.append(batch)
            digest.update(ipc_bytes(batch))
        table = pa.Table.from_batches(batches, schema=dataset.schema if not columns else None)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise errors.DataError(f"cannot read {where.shown} as one dataset: {e}") from e
    except OSError as e:
        raise errors.StorageError(f"cannot read {where.shown}: {e}") from e
    return table, digest.hexdigest()


def read_each(
    where: Location, parts: list[Partition], columns: list[str] | None = None
) -> dict[str, pa.Table]:
    """Each partition on its own (hive keys included), for the per-partition cache."""
    return {p.path: read(where, [p], columns)[0] for p in parts}


def ipc_bytes(data: pa.RecordBatch | pa.Table) -> bytes:
    """Arrow IPC stream bytes of a batch or table: what content digests hash."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write(data)
    return sink.getvalue().to_pybytes()
