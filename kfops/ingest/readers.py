"""Readers for CSV/TSV, Parquet and JSON (lines or an array of records) with precise errors.

Each reader returns a pandas frame or raises DataError/SchemaViolation naming the file and, where
it applies, the line, byte offset or column. The fast path is pyarrow; slower diagnostics (which
line is ragged, where the bad byte is) run only after a failure.
"""

from __future__ import annotations

import codecs
import collections
import csv
import json
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from kfops import errors

_CHUNK = 1 << 20
_HEADER_LIMIT = 1 << 20
_OTHER_DELIMITERS = (";", "\t", "|")


def check_utf8(path: Path, shown: str) -> None:
    """Refuses a text file that is not valid UTF-8, naming the first bad byte, offset and line.

    pyarrow would quietly turn such a column into raw bytes and pandas would fail with an offset
    relative to an internal buffer, so the whole file is checked once, in 1 MiB chunks.
    """
    _refuse_binary(path, shown)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines = 0, 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                _raise_not_utf8(shown, pending + chunk, e, offset - len(pending), newlines)
            newlines += chunk.count(b"\n")
            offset += len(chunk)
        pending = decoder.getstate()[0]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            _raise_not_utf8(shown, pending, e, offset - len(pending), newlines)


# Leading bytes of binary files people pick by mistake (an image, an archive, a spreadsheet).
_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an .xlsx workbook)",
    b"\x1f\x8b": "a gzip archive",
    b"PAR1": "a Parquet file (use --format parquet)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document",
}


def _refuse_binary(path: Path, shown: str) -> None:
    """A binary file is not a CSV with a bad byte: say what it is instead of "re-save as UTF-8"."""
    with open(path, "rb") as f:
        head = f.read(4096)
    kind = next((what for magic, what in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None and b"\x00" in head:
        kind = "a binary file (it contains NUL bytes)"
    if kind is not None:
        raise errors.DataError(f"{shown} is not a CSV/text file: it is {kind}")


def _raise_not_utf8(
    shown: str, buffer: bytes, e: UnicodeDecodeError, base: int, newlines: int
) -> None:
    line = newlines + buffer[: max(e.start, 0)].count(b"\n") + 1
    bad = buffer[e.start : e.start + 1]
    raise errors.DataError(
        f"{shown} is not UTF-8: byte 0x{bad.hex()} at offset {base + e.start} (line {line}) "
        f"is invalid ({e.reason}); re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8"
    ) from e


def sniff_format(path: Path) -> str:
    """Guesses the format from the first bytes: Parquet magic, JSON, else CSV."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def read_csv(path: Path, shown: str, delimiter: str, delimiter_given: bool) -> pd.DataFrame:
    """Reads delimited text with pyarrow after checking the header.

    Args:
        path: local file.
        shown: how to name the source in errors.
        delimiter: the field separator.
        delimiter_given: the user chose the delimiter, so never second-guess it.

    Raises:
        DataError: wrong delimiter, ragged rows, unparsable content.
        SchemaViolation: a duplicated or empty column name.
    """
    header_line = _first_line(path)
    names = next(csv.reader([header_line], delimiter=delimiter), [])
    if len(names) == 1 and not delimiter_given:
        _refuse_other_delimiter(shown, header_line, delimiter)
    _check_names(shown, names)
    table = _parse_csv(path, shown, delimiter, len(names))
    return dates_to_timestamps(table).to_pandas()


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(_HEADER_LIMIT)
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode("utf-8-sig")


def _refuse_other_delimiter(shown: str, header_line: str, delimiter: str) -> None:
    counts = {d: header_line.count(d) for d in _OTHER_DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best]:
        raise errors.DataError(
            f"{shown} looks {best!r}-delimited, not {delimiter!r}-delimited: its header "
            f"{header_line[:120]!r} splits into one column; pass --delimiter {_shell(best)} "
            "(or --format tsv)"
        )


def _shell(text: str) -> str:
    """A value as the user types it in a shell (a tab written the bash way)."""
    return "$'\\t'" if text == "\t" else shlex.quote(text)


def _check_names(shown: str, names: list[str]) -> None:
    """Refuses duplicated or empty column names before pandas renames them (`a` -> `a.1`)."""
    counts = collections.Counter(names)
    for name, count in counts.items():
        if count > 1:
            positions = [i + 1 for i, n in enumerate(names) if n == name]
            raise errors.SchemaViolation(
                name,
                "duplicate_column",
                f"{shown} names it {count} times (columns {positions}); names must be unique",
            )
    if "" in counts:
        raise errors.SchemaViolation(
            "",
            "empty_column_name",
            f"{shown} column {names.index('') + 1} has no name "
            "(a pandas index saved with to_csv? save with index=False)",
        )


def _parse_csv(path: Path, shown: str, delimiter: str, n_columns: int) -> pa.Table:
    convert = pa_csv.ConvertOptions(strings_can_be_null=True)
    try:
        return _pa_read_csv(path, delimiter, convert, newlines_in_values=False)
    except pa.ArrowInvalid:
        pass  # maybe quoted fields span lines: retry with the slower, newline-aware parser
    try:
        return _pa_read_csv(path, delimiter, convert, newlines_in_values=True)
    except pa.ArrowInvalid as e:
        ragged = _first_ragged_row(path, delimiter, n_columns)
        if ragged is not None:
            line, fields, text = ragged
            raise errors.DataError(
                f"{shown} has ragged rows: line {line} has {fields} field(s), the header has "
                f"{n_columns}: {text[:120]!r}"
            ) from e
        raise errors.DataError(f"cannot parse {shown} as delimited text: {e}") from e


def _pa_read_csv(path, delimiter, convert, *, newlines_in_values: bool) -> pa.Table:
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=newlines_in_values)
    return pa_csv.read_csv(path, parse_options=parse, convert_options=convert)


def _first_ragged_row(path: Path, delimiter: str, n_columns: int) -> tuple[int, int, str] | None:
    """(line number, field count, row text) of the first row whose width differs from the header."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        for row in reader:
            if row and len(row) != n_columns:
                return reader.line_num, len(row), delimiter.join(row)
    return None


def dates_to_timestamps(table: pa.Table) -> pa.Table:
    """Casts date32 columns (pyarrow's guess for `2024-01-31`) to timestamps pandas handles."""
    for i, field in enumerate(table.schema):
        if pa.types.is_date(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp("ns")))
    return table


def read_parquet(path: Path, shown: str) -> pd.DataFrame:
    """Reads a Parquet file; refuses corrupt or truncated files and duplicated column names.

    Raises:
        DataError: not readable as Parquet.
        SchemaViolation: a duplicated column name.
    """
    return parquet_frame(read_parquet_table(path, shown))


def read_parquet_table(path: Path, shown: str) -> pa.Table:
    """The Arrow table of a Parquet file, checked as `read_parquet` checks it (no frame yet)."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise errors.DataError(
            f"{shown} is not a readable Parquet file (truncated, corrupt or another format): {e}"
        ) from e
    _check_names(shown, table.column_names)
    return table


def parquet_frame(table: pa.Table) -> pd.DataFrame:
    """The frame of a table read by `read_parquet_table` (a named index becomes a column)."""
    frame = table.to_pandas()
    # A named index (e.g. written by df.set_index("id").to_parquet) is data: keep it as a column.
    has_named_index = any(name is not None for name in frame.index.names)
    fresh = isinstance(frame.index, pd.RangeIndex) and frame.index.equals(pd.RangeIndex(len(frame)))
    if fresh and not has_named_index:
        return frame  # what reset_index(drop=True) gives, without its copy (~0.1 CPU s at 1M rows)
    return frame.reset_index(drop=not has_named_index)


def read_jsonl(path: Path, shown: str) -> pd.DataFrame:
    """Reads JSON lines (one object per line) with pyarrow, or with `json` when pyarrow refuses.

    pyarrow refuses a column whose type changes between rows; the `json` fallback keeps such a
    column as mixed Python objects so validate can name it, and gives the line of invalid JSON.

    Raises:
        DataError: invalid JSON or a line that is not an object.
        SchemaViolation: an object with a duplicated key.
    """
    try:
        return dates_to_timestamps(pa_json.read_json(path)).to_pandas()
    except pa.ArrowInvalid:
        pass  # slower path with precise diagnostics and mixed-type columns
    records = []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                records.append(_record(_loads(line, shown, number), shown, number))
    return _mixed_as_text(pd.DataFrame.from_records(records))


def read_json(path: Path, shown: str) -> pd.DataFrame:
    """Reads a JSON array of records; a file of one object per line is read as JSON lines.

    Raises:
        DataError: invalid JSON, or JSON that is not records.
    """
    text = path.read_text(encoding="utf-8-sig")
    if not text.lstrip().startswith("["):
        return read_jsonl(path, shown)
    data = _loads(text, shown, None)
    records = [_record(item, shown, None) for item in data]
    return _mixed_as_text(pd.DataFrame.from_records(records))


def _mixed_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Turns columns mixing Python types (1 and "seven", nested objects) into text.

    Such a column cannot be stored as Parquet (the pipeline's Dataset format); as text it can,
    and validate then reports it as `mixed_types`, naming the values that are not numbers.
    """
    for name in frame.columns:
        column = frame[name]
        mixed = pd.api.types.infer_dtype(column, skipna=True) in ("mixed", "mixed-integer")
        if column.dtype == object and mixed:
            text = column.map(lambda v: v if isinstance(v, str) else json.dumps(v))
            frame[name] = text.where(column.notna(), None)
    return frame


def _loads(text: str, shown: str, line: int | None) -> Any:
    where = f"line {line}" if line is not None else "the array"

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dupes = [k for k in keys if keys.count(k) > 1]
        if dupes:
            detail = f"{shown}: an object at {where} names it twice; keys must be unique"
            raise errors.SchemaViolation(dupes[0], "duplicate_column", detail)
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as e:
        at = where if line is not None else f"line {e.lineno} column {e.colno}"
        raise errors.DataError(f"{shown} has invalid JSON at {at}: {e.msg}") from e


def _record(item: Any, shown: str, line: int | None) -> dict[str, Any]:
    if not isinstance(item, dict):
        where = f"line {line}" if line is not None else "the array"
        raise errors.DataError(
            f"{shown}: {where} holds a JSON {type(item).__name__}, expected an object (a record)"
        )
    return item


def text_is_blank(path: Path) -> bool:
    """True when the file holds only whitespace (or a BOM), read in chunks."""
    with open(path, "rb") as f:
        first = True
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            if first and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            first = False
            if chunk.strip():
                return False
    return True
