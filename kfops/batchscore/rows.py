"""Row ranges of one file or SQL source: a shard holds its own rows, never the whole source.

The plan counts rows once; each shard then reads only [start, stop) of the global row order:

- Parquet: the file's footer gives the row count per row group; a shard streams only the row
  groups its range crosses, in batches, so it holds a batch plus its rows even when one row
  group is the whole file (local files and s3:// objects are read by byte range, http(s) is
  fetched to local disk first, as ingest does).
- CSV/TSV: the plan reads the file once through ingest (every check: UTF-8, delimiter, ragged
  rows) and records the column types pyarrow inferred over the WHOLE file, since a shard's own
  inference could differ (a column of integers with one float far below). A shard streams the
  file block by block with those types, keeps its range and stops after it, so it holds one
  block plus its rows.
- SQL: the database counts the rows (`COUNT(*)`), and each shard runs the query ordered by a key
  with LIMIT/OFFSET (kfops.ingest.sql `window`). The key rule: the model's id column when its
  schema has one (then the merge also checks the ids are unique); otherwise every input column
  of the model, so rows that tie are rows the model scores identically and the output, keyed by
  row number in that order, is the same whichever way the database breaks the tie. A SQL
  source's row numbers therefore follow the key's order, not the query's own ORDER BY.
- builtin: and JSON sources are read whole in every shard (built in memory / no row index).

`count` is the plan's half, `read_range` the shard's; both return what the other needs.
"""

from __future__ import annotations

import base64
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from kfops import config, errors, ingest
from kfops.ingest import fetch, partitions, readers, sql

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}
_ALIASES = {"pq": "parquet"}
SCHEMA_KEY = "arrow_schema"  # the plan entry's CSV column types (Arrow IPC schema, base64)
CSV_BLOCK_BYTES = 1 << 20  # what a streaming CSV shard parses at a time (pyarrow's default)
PARQUET_BATCH_ROWS = 65_536  # rows a Parquet shard decodes at a time (a row group can be 1Mi)


def kind(source: str, read: dict[str, Any]) -> str:
    """How a single (not partitioned) source is read by range: parquet, csv, tsv, sql or whole."""
    if sql.is_sql(source):
        return "sql"
    if source.startswith("builtin:"):
        return "whole"
    given = (read.get("format") or "").strip().lower()
    fmt = _ALIASES.get(given, given) or _SUFFIXES.get(Path(source.split("?", 1)[0]).suffix.lower())
    return fmt if fmt in ("parquet", "csv", "tsv") else "whole"


def count(
    source: str, settings: config.StoreSettings | None, read: dict[str, Any]
) -> tuple[int, dict[str, str]]:
    """The source's rows, and what every plan entry must carry for `read_range` ({} or types).

    Raises:
        DataError: the source cannot be read (ingest's one-line messages).
    """
    how = kind(source, read)
    if how == "sql":
        return sql.count(source, read.get("query")), {}
    if how == "parquet":
        with _parquet(source, settings) as (pf, shown):
            names = pf.schema_arrow.names
            twice = next((n for n in names if names.count(n) > 1), None)
            if twice is not None:  # pandas would keep both: which one would the model read?
                detail = f"{shown} names it {names.count(twice)} times"
                raise errors.SchemaViolation(twice, "duplicate_column", detail)
            return pf.metadata.num_rows, {}
    frame = ingest.ingest(source, settings=settings, **read).frame
    if how == "whole":
        return len(frame), {}
    types = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
    return len(frame), {SCHEMA_KEY: base64.b64encode(types.serialize().to_pybytes()).decode()}


def read_range(
    source: str,
    start: int,
    stop: int,
    settings: config.StoreSettings | None,
    read: dict[str, Any],
    *,
    order_by: Sequence[str] = (),
    planned: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Rows [start, stop) of the source, and the most rows it held in memory at once.

    `order_by` is a SQL source's key (the rule is in the module docstring); `planned` is the
    plan entry (for CSV, the column types `count` recorded).

    Raises:
        DataError: the source cannot be read, or it changed since the plan (fewer rows).
    """
    how = kind(source, read)
    if how == "sql":
        got = sql.read(source, read.get("query"), window=(start, stop), order_by=order_by)
        return got.frame, got.rows
    if how == "parquet":
        return _parquet_range(source, start, stop, settings)
    if how in ("csv", "tsv"):
        types = (planned or {}).get(SCHEMA_KEY)
        if not types:  # never read the whole file silently: the plan is from elsewhere
            raise errors.DataError(
                f"the shard of {fetch.redact(source)} has no column types; make a new plan"
            )
        return _csv_range(source, start, stop, settings, read, how, types)
    frame = ingest.ingest(source, settings=settings, **read).frame
    return frame.iloc[start:stop].reset_index(drop=True), len(frame)


@contextlib.contextmanager
def _local_or_remote(source: str, settings) -> Iterator[tuple[Any, str]]:
    """(pyarrow filesystem, path) to read by range; http(s) is fetched to a temporary file."""
    if source.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="kfops-score-") as workdir:
            got = fetch.fetch(source, Path(workdir), settings=settings,
                              max_bytes=ingest.DEFAULT_MAX_BYTES,
                              timeout=ingest.DEFAULT_TIMEOUT)  # fmt: skip
            where = partitions.locate(str(got.path), settings)
            yield where.filesystem, where.root
        return
    where = partitions.locate(source, settings)
    yield where.filesystem, where.root


@contextlib.contextmanager
def _parquet(source: str, settings) -> Iterator[tuple[pq.ParquetFile, str]]:
    shown = fetch.redact(source)
    with _local_or_remote(source, settings) as (fs, path):
        try:
            with fs.open_input_file(path) as f:
                yield pq.ParquetFile(f), shown
        except FileNotFoundError as e:
            raise errors.DataError(f"no such file: {shown}") from e
        except (pa.ArrowException, OSError) as e:
            raise errors.DataError(
                f"{shown} is not a readable Parquet file (truncated, corrupt or another "
                f"format): {e}"
            ) from e


def _parquet_range(source: str, start: int, stop: int, settings) -> tuple[pd.DataFrame, int]:
    """Streams only the row groups [start, stop) crosses, batch by batch, keeping the range."""
    with _parquet(source, settings) as (pf, _):
        groups, first, base = [], 0, 0
        for i in range(pf.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            if base < stop and base + n > start:
                first = base if not groups else first
                groups.append(i)
            base += n
        if not groups:  # the file is shorter than the plan: read_shard names the mismatch
            return pd.DataFrame(), 0
        batches = pf.iter_batches(PARQUET_BATCH_ROWS, row_groups=groups, use_pandas_metadata=True)
        kept, held = _take(batches, start - first, stop - first)
    if not kept:
        return pd.DataFrame(), 0
    frame = pa.Table.from_batches(kept).to_pandas()
    # as readers.read_parquet: a named index (df.set_index("id").to_parquet) is data
    return frame.reset_index(drop=not any(n is not None for n in frame.index.names)), held


def _take(batches: Iterator[pa.RecordBatch], start: int, stop: int) -> tuple[list, int]:
    """Rows [start, stop) of a batch stream, and the most rows held at once; stops after stop."""
    kept, seen, held = [], 0, 0
    for batch in batches:
        n = batch.num_rows
        held = max(held, sum(b.num_rows for b in kept) + n)
        if seen + n > start:
            lo = max(start - seen, 0)
            kept.append(batch.slice(lo, min(stop - seen, n) - lo))
        seen += n
        if seen >= stop:
            break
    return kept, held


def _csv_range(source, start, stop, settings, read, how, types_b64) -> tuple[pd.DataFrame, int]:
    """Streams the file with the plan's column types, keeping [start, stop) and stopping there."""
    types = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(types_b64)))
    delimiter = read.get("delimiter") or ("\t" if how == "tsv" else ",")
    # newlines_in_values parses a file without quoted newlines exactly as the fast parser does
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True)
    with _local_or_remote(source, settings) as (fs, path):
        try:
            with fs.open_input_stream(path) as stream:
                reader = pa_csv.open_csv(
                    stream,
                    read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                    parse_options=parse,
                    convert_options=convert,
                )
                kept, held = _take(reader, start, stop)
                schema = reader.schema
        except (pa.ArrowInvalid, OSError) as e:
            raise errors.DataError(
                f"cannot read {fetch.redact(source)} rows {start}-{stop - 1}: {e}"
            ) from e
    table = readers.dates_to_timestamps(pa.Table.from_batches(kept, schema=schema))
    return table.to_pandas(), held
