"""Ingest: read a source URI (builtin:, local path, file://, http(s)://, s3://) into a frame.

Sources come from users, so this is where unreadable input is caught and named precisely: empty
files, a header without rows, the wrong delimiter, non-UTF-8 bytes (with byte offset and line),
duplicated column names (which pandas would silently rename to `a.1`), ragged rows and corrupt
Parquet. Whether the *content* is acceptable is validate's job.

Remote sources are streamed to a temporary file (bounded size, timeout) and parsed from there, so
memory holds only the parsed table. Modules: `fetch` (URI -> local file), `readers` (file ->
frame, per format).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import config, dataio, datasets, errors, parameters
from kfops.ingest import fetch, partitions, readers, sql
from kfops.ingest import incremental as incremental_mod
from kfops.store.base import Store

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json")
_ALIASES = {"ndjson": "jsonl", "pq": "parquet"}
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json": "json",
}
DEFAULT_MAX_BYTES = 4 << 30
DEFAULT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """What to read.

    Attributes:
        source: builtin:NAME, a path, file://, http(s):// or s3:// URI.
        format: one of FORMATS (or an alias); None guesses from the extension or content type.
        delimiter: CSV/TSV field delimiter; None sniffs it.
    """

    source: str = parameters.field(help="builtin:NAME, path, file://, http(s):// or s3:// URI")
    format: str | None = parameters.field(
        None, "data format; '' = from the extension or content type",
        choices=(*FORMATS, *_ALIASES), none_as="",
    )  # fmt: skip
    delimiter: str | None = parameters.field(
        None, "CSV/TSV field delimiter; '' = sniffed", none_as=""
    )
    query: str | None = parameters.field(
        None, "SQL query for a database source URL; '' = the URL's ?table=", none_as=""
    )
    incremental: bool = parameters.field(
        False, "read only data not consumed by an earlier successful run (watermark in the store)"
    )
    incremental_column: str | None = parameters.field(
        None, "SQL sources: the column whose largest value read is the watermark", none_as=""
    )
    retention: int = parameters.field(
        0, "incremental: keep the newest N partitions (SQL: reads) in the snapshot; 0 = all"
    )


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What ingest read.

    Attributes:
        frame: the data.
        source: the source URI with credentials and query values redacted (safe for metadata).
        format: the format actually read ("builtin" for builtin: sources).
        source_bytes: size of the file read (None for builtin sources).
        source_sha256: sha256 of the file read (None for builtin sources; for SQL and partitioned
            sources, of the rows read); the Parquet artifact's own sha256 comes from
            `dataio.write_frame`.
        query: the SQL text run (SQL sources).
        rows: rows read from the source.
        incremental: what an incremental read consumed (`kfops.watermarks.Pending.summary`).
        table: with `ingest(arrow=True)` and a Parquet file, the Arrow table read; `frame` is
            then None (`as_frame()` makes it, `write` writes it without a pandas round trip).
    """

    frame: pd.DataFrame | None
    source: str
    format: str
    source_bytes: int | None = None
    source_sha256: str | None = None
    query: str | None = None
    rows: int | None = None
    incremental: dict[str, Any] | None = None
    table: Any = None

    def as_frame(self) -> pd.DataFrame:
        """The data as a frame (made from `table` when the read kept Arrow)."""
        return self.frame if self.table is None else readers.parquet_frame(self.table)

    def write(self, path: str, columns: Any = None) -> dict[str, Any]:
        """Writes the data as `dataio.write_frame(columns.cast(frame), path)` does, same bytes.

        Args:
            path: where the Parquet file goes.
            columns: a `kfops.schema.ColumnConfig` whose --type casts apply (None: none).
        """
        if self.table is not None and not (columns and columns.column_types):
            return dataio.write_table_as_frame(self.table, path, readers.parquet_frame)
        frame = self.as_frame()
        return dataio.write_frame(columns.cast(frame) if columns else frame, path)

    def metadata(self) -> dict[str, Any]:
        """JSON-ready facts for artifact metadata (no frame)."""
        facts = {
            "source": self.source,
            "format": self.format,
            "source_bytes": self.source_bytes,
            "source_sha256": self.source_sha256,
        }
        if self.query is not None:
            facts["query"] = self.query
        if self.rows is not None:
            facts["source_rows"] = self.rows
        if self.incremental is not None:
            facts["incremental"] = self.incremental
        return facts


def ingest(
    source: str,
    *,
    format: str | None = None,
    settings: config.StoreSettings | None = None,
    max_bytes: int | None = None,
    delimiter: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    query: str | None = None,
    incremental: bool = False,
    incremental_column: str | None = None,
    retention: int = 0,
    columns: list[str] | None = None,
    store: Store | None = None,
    run_id: str | None = None,
    arrow: bool = False,
) -> IngestResult:
    """Reads a source into a frame, refusing malformed input with a specific error.

    Args:
        source: `builtin:NAME[?opts]`, a local path, `file://...`, `http(s)://...` or
            `s3://bucket/key`.
        format: csv, tsv, parquet, jsonl (ndjson) or json; None infers it from the file
            extension, then the HTTP Content-Type, then the first bytes.
        settings: S3 endpoint and keys for s3:// sources (read from the environment by the caller).
        max_bytes: refuse sources larger than this (default 4 GiB).
        delimiter: CSV field separator (default "," for csv, tab for tsv).
        timeout: seconds to wait on an http(s) server.
        query: SQL text for a database URL (else the URL names ?table=).
        incremental: read only what no successful run consumed (kfops.watermarks in `store`);
            the frame is the previous snapshot plus the new data.
        incremental_column: SQL sources: the column that orders new rows (needed when
            incremental).
        retention: incremental: the newest N partitions (SQL: reads) kept; 0 keeps all.
        columns: partitioned sources: read only these columns.
        store: the registry store holding watermarks (incremental reads).
        run_id: the run claiming the new data (incremental reads).
        arrow: a Parquet file is returned as its Arrow table (`IngestResult.table`, frame None).

    Returns:
        IngestResult with the frame and lineage facts.

    Raises:
        ConfigError: unknown format or builtin dataset, unsupported URI scheme.
        DataError: unreadable, empty or malformed input (the message says which and where).
        SchemaViolation: duplicated or empty column names.
        StorageError: the object store failed.

    Example:
        >>> ingest("builtin:churn?rows=100").frame.shape
        (100, 13)
    """
    fmt = _normalise_format(format)
    if source.startswith("builtin:"):
        return IngestResult(frame=datasets.load_builtin(source), source=source, format="builtin")
    if sql.is_sql(source):
        return _from_sql(source, query, incremental, incremental_column, retention, store, run_id)
    if query:
        raise errors.ConfigError("a query needs a database source URL, e.g. postgresql://...")
    if partitions.is_partitioned(source):
        return _from_partitions(source, settings, incremental, retention, columns, store, run_id)
    if incremental:
        raise errors.ConfigError(
            f"incremental reads need a directory, an s3://bucket/prefix/ or a SQL source, "
            f"not one file ({fetch.redact(source)})"
        )
    limit = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    shown = fetch.redact(source)
    with tempfile.TemporaryDirectory(prefix="kfops-ingest-") as workdir:
        got = fetch.fetch(
            source, Path(workdir), settings=settings, max_bytes=limit, timeout=timeout
        )
        size = got.path.stat().st_size
        if size == 0 or readers.text_is_blank(got.path):
            raise errors.DataError(f"{shown} is empty ({size} bytes)")
        fmt = fmt or _infer_format(got)
        if arrow and fmt == "parquet":
            table = readers.read_parquet_table(got.path, shown)
            digest = dataio.sha256_file(got.path)
            _check_shape(readers.parquet_frame(table.slice(0, 0)), shown, fmt, table.num_rows)
            return IngestResult(None, shown, fmt, size, digest, table=table)
        frame = _read(got.path, shown, fmt, delimiter)
        digest = dataio.sha256_file(got.path)
    _check_shape(frame, shown, fmt)
    return IngestResult(frame, shown, fmt, source_bytes=size, source_sha256=digest)


def _from_sql(source, query, incremental, column, retention, store, run_id) -> IngestResult:
    if incremental != bool(column):
        raise errors.ConfigError(
            "an incremental SQL source needs incremental_column (--incremental-column COL), "
            "and incremental_column needs incremental=true"
        )
    if not incremental:
        got = sql.read(source, query)
        _check_shape(got.frame, got.source, "sql")
        return IngestResult(got.frame, got.source, "sql", None, got.sha256, got.query, got.rows)
    facts = incremental_mod.sql_source(
        source, query, column, store=store, run_id=run_id, retention=retention
    )
    digest = partitions_digest(facts["table"])
    return IngestResult(
        facts["table"].to_pandas(), sql.parse(source, query)[2], "sql", None, digest,
        facts["query"], facts["new_rows"], facts["summary"],
    )  # fmt: skip


def _from_partitions(source, settings, incremental, retention, columns, store, run_id):
    where = partitions.locate(source, settings)
    if incremental:
        facts = incremental_mod.partitioned(
            source, settings=settings, store=store, run_id=run_id, retention=retention,
            columns=columns,
        )  # fmt: skip
        table, rows, summary = facts["table"], facts["new_rows"], facts["summary"]
        digest = partitions_digest(table)
    else:
        found = partitions.list_partitions(where)
        table, digest = partitions.read(where, found, columns)
        rows, summary = table.num_rows, None
    frame = readers.dates_to_timestamps(table).to_pandas()
    _check_shape(frame, where.shown, "parquet")
    return IngestResult(frame, where.shown, "partitioned", None, digest, None, rows, summary)


def partitions_digest(table) -> str:
    """sha256 of a table's rows in Arrow IPC form (same rows and types, same digest)."""
    return dataio.sha256_bytes(partitions.ipc_bytes(table))


def _normalise_format(format: str | None) -> str | None:
    if format is None or format == "":
        return None
    fmt = _ALIASES.get(format.strip().lower(), format.strip().lower())
    if fmt not in FORMATS:
        raise errors.ConfigError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    return fmt


def _infer_format(got: fetch.Fetched) -> str:
    """Extension first (most specific), then Content-Type, then the file's first bytes."""
    suffix = Path(got.name).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if got.content_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[got.content_type]
    return readers.sniff_format(got.path)


def _read(path: Path, shown: str, fmt: str, delimiter: str | None) -> pd.DataFrame:
    if fmt == "parquet":
        return readers.read_parquet(path, shown)
    readers.check_utf8(path, shown)
    if fmt == "jsonl":
        return readers.read_jsonl(path, shown)
    if fmt == "json":
        return readers.read_json(path, shown)
    chosen = delimiter or ("\t" if fmt == "tsv" else ",")
    return readers.read_csv(path, shown, chosen, delimiter_given=delimiter is not None)


def _check_shape(frame: pd.DataFrame, shown: str, fmt: str, rows: int | None = None) -> None:
    if frame.shape[1] == 0:
        raise errors.DataError(f"{shown} has no columns")
    if (len(frame) if rows is None else rows) == 0:
        columns = ", ".join(map(str, frame.columns[:20]))
        what = "a header but no rows" if fmt in ("csv", "tsv") else "columns but no rows"
        raise errors.DataError(f"{shown} has {what} (columns: {columns})")
