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
from kfops.ingest import fetch, readers

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


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What ingest read.

    Attributes:
        frame: the data.
        source: the source URI with credentials and query values redacted (safe for metadata).
        format: the format actually read ("builtin" for builtin: sources).
        source_bytes: size of the file read (None for builtin sources).
        source_sha256: sha256 of the file read (None for builtin sources); the Parquet artifact's
            own sha256 comes from `dataio.write_frame`.
    """

    frame: pd.DataFrame
    source: str
    format: str
    source_bytes: int | None = None
    source_sha256: str | None = None

    def metadata(self) -> dict[str, Any]:
        """JSON-ready facts for artifact metadata (no frame)."""
        return {
            "source": self.source,
            "format": self.format,
            "source_bytes": self.source_bytes,
            "source_sha256": self.source_sha256,
        }


def ingest(
    source: str,
    *,
    format: str | None = None,
    settings: config.StoreSettings | None = None,
    max_bytes: int | None = None,
    delimiter: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
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
        frame = _read(got.path, shown, fmt, delimiter)
        digest = dataio.sha256_file(got.path)
    _check_shape(frame, shown, fmt)
    return IngestResult(frame, shown, fmt, source_bytes=size, source_sha256=digest)


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


def _check_shape(frame: pd.DataFrame, shown: str, fmt: str) -> None:
    if frame.shape[1] == 0:
        raise errors.DataError(f"{shown} has no columns")
    if len(frame) == 0:
        columns = ", ".join(map(str, frame.columns[:20]))
        what = "a header but no rows" if fmt in ("csv", "tsv") else "columns but no rows"
        raise errors.DataError(f"{shown} has {what} (columns: {columns})")
